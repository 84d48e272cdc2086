/*
 * rotate.h - the token side of `renew`: the current pair, the journalled
 * steps of a renewal (pending pair, order, switch, deploy hook) and the
 * destruction of retired pairs.  Every step is recorded in the state
 * journal (state.h) before it changes anything, and each is idempotent, so
 * rotate_resume() finishes whatever a killed run left.
 *
 * Naming on the token, for [key] label L:
 *   L                   the current pair and its certificate (the stable URI)
 *   L.pending.<unix>    a new pair until the switch
 *   L.retired.<unix>    a previous pair, destroyed retire-after later
 * Pairs are found by the CKA_IDs in the journal, never by these labels,
 * and only pairs whose ids p11enroll recorded are ever destroyed.
 */
#ifndef P11E_ROTATE_H
#define P11E_ROTATE_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "enroll.h"
#include "renew.h"
#include "state.h"

struct rotate {
    struct enroll *e;               /* plan, profile and open token */
    struct state *st;               /* loaded, lock held by the caller */
    const struct renew_policy *pol;
    const char *label;              /* [key] label */
    time_t now;
    char *retired;                  /* out: the label the old pair was retired under, or
                                       NULL (owned: freed by renew_ctx_free()) */
    /* [ca] type = manual (rotate_manual.h): */
    X509 *issued;                   /* in: the CA's certificate, or NULL (borrowed) */
    STACK_OF(X509) *issued_chain;   /* in: its chain, or NULL (borrowed) */
    bool waiting;                   /* out: the CSR is out; the order step waits for the CA */
    bool regenerated;               /* the pending pair was made again in this run */
};

/*
 * The current pair: labelled L, or on a token that refused to relabel, the
 * pair with the journalled current id.  *cert is its certificate when
 * there is one (X509_free).  Returns 0, 1 (no current pair; nothing
 * reported), -1 after reporting.
 */
int rotate_find_current(struct rotate *r, struct token_key **key, X509 **cert);

/* The pair whose CKA_ID is `hex`.  0, 1 (none), -1 after reporting. */
int rotate_find_id(struct token *tok, const char *hex, struct token_key **key);

/* Upper-case hex serial of a certificate (caller frees), or NULL. */
char *rotate_serial(X509 *x);

/*
 * Check before anything changes that the [output] files and the state dir
 * can be written (their directories exist and are writable).  0 or -1
 * (reported, exit 1).
 */
int rotate_check_outputs(const struct profile *p);

/*
 * Start a renewal: journal it (STEP_KEYGEN with a new pending label and
 * random CKA_ID, or STEP_ORDER when the current key is re-used).  `cur`
 * and `cert` are the current pair and certificate, either may be NULL;
 * without a current pair a new one is always generated.
 */
int rotate_begin(struct rotate *r, const struct token_key *cur, X509 *cert, bool rotate,
    const char *reason);

/*
 * Run the journalled renewal to its end: generate (or find, and check) the
 * pending pair, order and install its certificate (acme_enroll_run: on the
 * token; with rotate = no also the [output] files), switch the labels,
 * write the [output] files from the new pair's certificate, run [hooks]
 * deploy once, and clear the journal.  With [ca] type = manual and no
 * r->issued the order step writes the CSR and stops there with r->waiting
 * set (0; the journal stays at the order step).  On failure the journal keeps the
 * step to resume from and the current pair stays current; a key generation
 * that fails before anything exists abandons the renewal instead.  0, or
 * -1 after reporting.
 */
int rotate_resume(struct rotate *r);

/*
 * Give up the renewal in progress (`renew --abandon`): destroy the
 * journalled pending pair (by its id, token_destroy_id(); nothing else),
 * give the old pair its label back when a switch had begun, and clear the
 * journal's txn, the ACME order state (acme-order.url, acme-order.key) and
 * the staged chain.  Nothing in progress: 0, saying so.  A renewal that has
 * already switched (step files or deploy) cannot be abandoned: -1 (E_STATE,
 * run renew to finish it).  0, or -1 after reporting.
 */
int rotate_abandon(struct rotate *r);

/*
 * Destroy retired pairs whose retire-after has passed (each journalled
 * first), appending their labels to `destroyed` (may be NULL).  A pair
 * retired "in the future" (clock skew) is kept and its retire-after counted
 * from now, with a warning.  Returns the number destroyed, or -1 after
 * reporting.
 */
int rotate_housekeeping(struct rotate *r, json_t *destroyed);

#endif
