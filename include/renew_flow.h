/*
 * renew_flow.h - the workflow behind `renew` and `status`: one setup (profile,
 * plan, state dir, lock, token, current pair) and the renewal runs (abandon,
 * resume, renew, not due), each returning what it did for the command to
 * print.  Nothing here prints to stdout.
 */
#ifndef P11E_RENEW_FLOW_H
#define P11E_RENEW_FLOW_H

#include <stdbool.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "enroll.h"
#include "pool.h"
#include "renew.h"
#include "rotate.h"
#include "state.h"

/* What renew_setup() is for: which checks it makes and whether it locks. */
enum renew_use {
    RENEW_FOR_STATUS,   /* [key] label and [output] state-dir; no lock, any [ca] */
    RENEW_FOR_DRY_RUN,  /* [ca] type = acme and its settings; no lock */
    RENEW_FOR_RUN,      /* as DRY_RUN, and the state dir made and locked */
};

struct renew_ctx {
    struct enroll e;            /* profile, plan, open token */
    struct renew_policy pol;    /* [renewal] */
    struct state *st;           /* the state journal, loaded */
    struct rotate r;            /* the rotation over e and st */
    int lockfd;                 /* RENEW_FOR_RUN: the state dir's lock, else -1 */
    bool wait;                  /* wait for the lock (and a pool's lease) */
    struct pool pool;           /* [pool]; pool.name NULL outside a pool */
    bool glance;                /* renew_current_cert() may decide "not due" */
    /* renew_current(): */
    struct token_key *cur;      /* the current pair, or NULL */
    X509 *cert;                 /* its certificate, or NULL */
    struct renew_cert facts;    /* what the decision needs of cert */
};

/*
 * Everything `renew` and `status` need before they decide: load and plan
 * the profile, check it for `use` (exit 2 on error; nothing changed), make
 * and lock the state dir for RENEW_FOR_RUN (waiting for another run unless
 * !wait), load the state, open the token.  On -1 (reported) the caller
 * still calls renew_ctx_free().
 */
int renew_setup(const char *profile, const struct token_opts *over, enum renew_use use,
    bool wait, struct renew_ctx *c);

/*
 * Find the current pair and its certificate into c->cur, c->cert and
 * c->facts (each may be absent).  0, or -1 after reporting.
 */
int renew_current(struct renew_ctx *c);

/*
 * The current pair at a glance (token_glance_pair(): its private key,
 * public key and certificate, found by [key] label, or by the journalled
 * CKA_ID with fixed labels) into c->cert and c->facts; c->cur stays NULL.
 * Only "not due" may be decided from it: for anything else,
 * renew_current().  0, or 1 when it cannot tell (nothing reported,
 * nothing kept).
 */
int renew_current_cert(struct renew_ctx *c);

/* Forget what renew_current() or renew_current_cert() found. */
void renew_current_clear(struct renew_ctx *c);

/* Release everything in *c (and the lock); a zeroed or failed ctx is fine. */
void renew_ctx_free(struct renew_ctx *c);

/* What a renewal run did. */
struct renew_result {
    const char *retired;        /* the label the old pair was retired under, or NULL
                                   (borrowed from the ctx) */
    json_t *destroyed;          /* labels of the retired pairs destroyed (array) */
    X509 *cert;                 /* renewed: the new current certificate, or NULL */
    char *key_uri;              /* renewed: its key's URI, or NULL */
    bool picked_up;             /* pool: another member's certificate was deployed */
    bool waiting;               /* [ca] type = manual: the CSR is out, waiting for the CA
                                   (c->st->txn has its path and since when) */
};

/* Free what a renew_result holds and empty it. */
void renew_result_clear(struct renew_result *res);

/*
 * `renew --abandon`: give up the renewal in progress (rotate_abandon()).
 * *had says whether there was one.  0, or -1 after reporting.
 */
int renew_abandon(struct renew_ctx *c, bool *had);

/*
 * Finish the renewal a killed run left (the journal has a step), then
 * destroy retired pairs past retire-after.  0 and *res, or -1 after
 * reporting.
 */
int renew_resume(struct renew_ctx *c, struct renew_result *res);

/*
 * Renew now (the caller decided it is due, for `reason`): journal it,
 * generate or re-use the key, order, switch, files, deploy hook; then
 * destroy retired pairs past retire-after.  renew_current() first.  0 and
 * *res, or -1 after reporting.
 */
int renew_run(struct renew_ctx *c, const char *reason, struct renew_result *res);

/*
 * [ca] type = manual: complete the renewal waiting for the CA with the
 * certificate it issued (`import --profile`, `renew --cert`): checked
 * against the pending key and the plan, then installed and the rotation
 * finished as renew_resume() does.  A renewal past its order step (a rerun
 * after a crash) only checks that leaf is for its key.  No renewal in
 * progress: -1 (E_STATE).  0 and *res, or -1 after reporting.
 */
int renew_complete(struct renew_ctx *c, X509 *leaf, STACK_OF(X509) *chain,
    struct renew_result *res);

/*
 * Is a renewal of this (planned) profile in progress, so that `import`
 * should complete it?  Only for [ca] type = manual with a state dir; reads
 * the journal without the lock (renew_setup() takes it and reads again).
 * 1 yes, 0 no, -1 after reporting (unreadable state).
 */
int renew_in_progress(const struct enroll *e);

/*
 * Not due: save the state when `save` (a fetched ARI window, a repaired
 * state) and destroy retired pairs past retire-after.  0 and *res (only
 * destroyed), or -1 after reporting.
 */
int renew_not_due(struct renew_ctx *c, bool save, struct renew_result *res);

#endif
