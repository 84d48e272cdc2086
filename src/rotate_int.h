/*
 * rotate_int.h - what the rotate*.c files share and nothing else uses: the
 * state-dir helpers and the steps that live outside rotate.c.
 */
#ifndef P11E_ROTATE_INT_H
#define P11E_ROTATE_INT_H

#include <stdbool.h>

#include "rotate.h"
#include "state.h"

/* The leaf and chain the order step staged for the files step. */
#define STAGED_CHAIN "renew-next.pem"

/* "<state-dir>/<name>" (caller frees), or NULL when out of memory. */
char *rotate_state_file(const struct rotate *r, const char *name);
/* Remove a file of the state dir; absent is fine.  0, or -1 after reporting. */
int rotate_unlink_state_file(const struct rotate *r, const char *name);
/* Journal `step` (state_save).  0, or -1 after reporting. */
int rotate_save_step(struct rotate *r, enum state_step step);
/* Does the key's CKA_ID, in hex, equal `hex`? */
bool rotate_key_has_id(const struct token_key *key, const char *hex);

/* rotate_files.c: the [output] files, then the deploy hook (rotate.c's last two steps). */
int rotate_step_files(struct rotate *r);
int rotate_step_deploy(struct rotate *r);

#endif
