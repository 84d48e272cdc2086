/*
 * state.h - what `renew` keeps in the profile's state directory: the lock,
 * and one JSON file (renew.json) holding the journal of the renewal in
 * progress and the pairs it retired.
 *
 * The journal is written atomically (temp file, fsync, rename, directory
 * fsync) BEFORE each step changes the token or the files, so a run killed
 * at any point leaves a record from which the next run finishes the work:
 * it finds the pending key by the journalled CKA_ID instead of generating a
 * second one, and completes a half-done switch by CKA_ID, not by label.
 *
 * Key ids are kept as lower-case hex strings.
 */
#ifndef P11E_STATE_H
#define P11E_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define STATE_FILE "renew.json"
#define STATE_LOCK "renew.lock"

/* The step a renewal is about to take (recorded before taking it). */
enum state_step {
    STEP_NONE = 0,  /* no renewal in progress */
    STEP_KEYGEN,    /* pending label and id chosen; the pair may not exist yet */
    STEP_ORDER,     /* the pending pair exists; ordering / installing its certificate */
    STEP_SWITCH,    /* certificate installed; relabelling old -> retired, pending -> label */
    STEP_FILES,     /* rotate: switched; writing the [output] files from the new pair */
    STEP_DEPLOY,    /* switched, files in place; running [hooks] deploy */
};

struct state_txn {
    enum state_step step;
    bool rotate;            /* a new pair (false: re-use the current key) */
    time_t started;
    char *reason;           /* why it started (renew_reason_name) */
    char *old_id;           /* the current pair at the start, or NULL */
    char *old_serial;       /* its certificate's serial (hex), or NULL */
    char *pending_label;    /* rotate: the new pair's label until the switch */
    char *pending_id;       /* rotate: its CKA_ID */
    char *retired_label;    /* set at STEP_SWITCH: the old pair's new label */
    /* [ca] type = manual, at STEP_ORDER: waiting for the CA (rotate_manual.c) */
    char *csr_path;         /* where the pending key's CSR was written, or NULL */
    time_t waiting_since;   /* when the csr-ready hook succeeded, or 0 */
};

struct state_retired {
    char *id;               /* CKA_ID (hex) */
    char *label;            /* its label on the token */
    time_t retired_at;
};

struct state {
    char *dir, *path;
    char *label;                /* [key] label this state is for */
    bool labels_immutable;      /* the token refused C_SetAttributeValue(CKA_LABEL) */
    char *current_id;           /* with immutable labels: the current pair's CKA_ID */
    struct state_retired *retired;
    size_t nretired;
    struct state_txn txn;       /* step STEP_NONE when idle */
    char *destroying_id;        /* a retired pair being destroyed, or NULL */
    struct {                    /* the last ARI answer, cached until next_poll */
        char *cert_id;
        time_t start, end, next_poll;
    } ari;
    time_t last_renewal;
    bool repaired;              /* load dropped a bad cache entry: save to make it stick */
};

/*
 * Read <dir>/renew.json; a missing file gives an empty state for `label`.
 * Returns 0 and *out (state_free()), or -1 after reporting (unreadable or
 * malformed file: exit 1, naming the file).  Entries that are only a cache
 * or a note (the ARI window, last_renewal) are dropped with a warning when
 * malformed (a negative time, say) instead: they must never make every
 * later run fail.
 */
int state_load(const char *dir, const char *label, struct state **out);

/* Write the state atomically (0600) and make the rename durable.  0 or -1. */
int state_save(struct state *st);

void state_free(struct state *st);

/* Forget the renewal in progress (the caller saves). */
void state_txn_clear(struct state *st);

/* Record a retired pair (copies the strings).  0 or -1. */
int state_retired_add(struct state *st, const char *id, const char *label, time_t at);
/* Drop entry i of st->retired. */
void state_retired_remove(struct state *st, size_t i);

const char *state_step_name(enum state_step s);

/*
 * Take the profile's lock, <dir>/STATE_LOCK, with flock(2): released by the
 * kernel when the process dies, so a crash never leaves it held.  When
 * another run holds it: wait (saying so), or with !wait fail with E_LOCKED.
 * Returns the descriptor to keep open (state_unlock()), or -1 after
 * reporting.
 */
int state_lock(const char *dir, bool wait, const char *profile);
void state_unlock(int fd);

/* Create the state directory (0700) when missing.  0 or -1 after reporting. */
int state_mkdir(const char *dir);

#endif
