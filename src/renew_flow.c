/*
 * renew_flow.c - the renew/status workflow (renew_flow.h): one setup for both
 * commands, and the renewal runs built on rotate.h, returning their outcome.
 */
#include "renew_flow.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme_enroll.h"
#include "rotate_manual.h"
#include "util.h"

/* ---- setup -------------------------------------------------------------------- */

/* [ca] type = manual: [output] state-dir, and a place for the CSR.  0 or -1. */
static int
check_manual(struct renew_ctx *c, const char *profile)
{
    char *csr;

    if (c->e.prof->output.state_dir == NULL) {
        err_input("E_MISSING", "%s: renew needs [output] state-dir (the renewal journal)",
            profile);
        return -1;
    }
    if ((csr = enroll_csr_path(&c->e)) == NULL)
        return -1;
    free(csr);
    return 0;
}

/* The profile can be renewed: [ca] type = acme with its settings, or manual; [key] label. */
static int
check_renewable(struct renew_ctx *c, const char *profile)
{
    const struct profile *p = c->e.prof;

    if (p->ca.type != NULL && strcmp(p->ca.type, "acme") != 0 && !rotate_is_manual(p)) {
        err_input("E_CA_TYPE", "%s: renew needs [ca] type = acme or manual", profile);
        return -1;
    }
    if ((rotate_is_manual(p) ? check_manual(c, profile) : acme_enroll_check(&c->e)) == -1 ||
        renew_policy_from_profile(p, &c->pol) == -1)
        return -1;
    if (p->key.label == NULL) {
        err_input("E_MISSING", "%s: [key] label is required", profile);
        return -1;
    }
    return 0;
}

/* The lock is ours: temp files older than this moment belong to killed runs. */
static void
clean_after_lock(struct renew_ctx *c)
{
    struct timespec now;

    if (clock_gettime(CLOCK_REALTIME, &now) == 0)
        enroll_clean_tmp(&c->e, &now);
}

int
renew_setup(const char *profile, const struct token_opts *over, enum renew_use use,
    bool wait, struct renew_ctx *c)
{
    const struct profile *p;

    memset(c, 0, sizeof(*c));
    c->lockfd = -1;
    c->wait = wait;
    /* Input checks first: nothing below changes anything before they pass. */
    if (enroll_plan(profile, &c->e) == -1)
        return -1;
    p = c->e.prof;
    if (pool_from_profile(p, &c->pool) == -1)
        return -1;
    if (use == RENEW_FOR_STATUS) {
        if (renew_policy_from_profile(p, &c->pol) == -1)
            return -1;
        if (p->key.label == NULL || p->output.state_dir == NULL) {
            err_input("E_MISSING", "%s: status needs [key] label and [output] state-dir",
                profile);
            return -1;
        }
    } else if (check_renewable(c, profile) == -1) {
        return -1;
    }
    if (use == RENEW_FOR_RUN) {
        if (state_mkdir(p->output.state_dir) == -1 ||
            (c->lockfd = state_lock(p->output.state_dir, wait, profile)) == -1)
            return -1;
        clean_after_lock(c);
    }
    if (state_load(p->output.state_dir, p->key.label, &c->st) == -1)
        return -1;
    /*
     * The pair at a glance may decide "not due" (renew_current_cert()): not
     * for status (it shows the key), a pool member (its record comes first)
     * or a killed run's work (it needs the keys).
     */
    c->glance = use != RENEW_FOR_STATUS && c->pool.name == NULL &&
        c->st->txn.step == STEP_NONE;
    if (enroll_open(&c->e, over) == -1)
        return -1;
    c->r = (struct rotate){ .e = &c->e, .st = c->st, .pol = &c->pol, .label = p->key.label,
        .now = time(NULL) };
    return 0;
}

int
renew_current(struct renew_ctx *c)
{
    renew_current_clear(c);
    if (rotate_find_current(&c->r, &c->cur, &c->cert) == -1)
        return -1;
    c->e.renewing = c->cert;    /* newOrder "replaces" it (ARI) */
    if (c->cert != NULL && renew_cert_from_x509(c->cert, &c->facts) == -1) {
        err_runtime("E_CERT", "the certificate of key %s cannot be read", c->r.label);
        return -1;
    }
    return 0;
}

/*
 * Why the pair at a glance can decide "not due" (bench/calls.md): the
 * decision reads nothing but the certificate, and the glance also sees
 * that the pair it belongs to is whole (its private and public key, one
 * id); renew_current() finds both again, with every check and message,
 * when the renewal runs.  The run is logged in, as every renew is: a wrong
 * or locked PIN is an error on the daily run, not only when the
 * certificate is due.  The objects found are the ones renew_current()
 * would find: p11enroll stores the pair's certificate with the pair's label
 * (token_store_cert()) and a relabel moves it with the pair
 * (token_relabel_key()); with labels the token keeps fixed, both look by
 * the journalled CKA_ID.  The only window where a label and its pair
 * disagree is inside a switch, and then the journal has a step:
 * renew_setup() logs in and the run resumes instead.  Anything else than
 * one whole pair (none, several, a torn one, an unreadable certificate, a
 * token error): 1, look closer.
 */
int
renew_current_cert(struct renew_ctx *c)
{
    const struct state *st = c->st;
    uint8_t *id = NULL;
    size_t idlen = 0;
    int r = 1;

    renew_current_clear(c);
    if (st->labels_immutable && st->current_id != NULL) {
        if (hex_decode(st->current_id, &id, &idlen) == 0 && idlen > 0)
            r = token_glance_pair(c->e.tok, NULL, id, idlen, &c->cert);
        free(id);
    } else {
        r = token_glance_pair(c->e.tok, c->r.label, NULL, 0, &c->cert);
    }
    if (r == 0 && renew_cert_from_x509(c->cert, &c->facts) == -1)
        r = 1;  /* renew_current() says what is wrong with it */
    if (r != 0) {
        err_clear();
        renew_current_clear(c);
        return 1;
    }
    c->e.renewing = c->cert;
    return 0;
}

void
renew_current_clear(struct renew_ctx *c)
{
    renew_cert_clear(&c->facts);
    X509_free(c->cert);
    c->cert = NULL;
    c->e.renewing = NULL;
    token_key_free(c->cur);
    c->cur = NULL;
}

void
renew_ctx_free(struct renew_ctx *c)
{
    renew_current_clear(c);
    if (c->e.tok != NULL)
        pool_lease_release(c->e.tok, &c->pool);
    free(c->r.retired);
    enroll_free(&c->e);
    state_free(c->st);
    state_unlock(c->lockfd);
    memset(c, 0, sizeof(*c));
    c->lockfd = -1;
}

void
renew_result_clear(struct renew_result *res)
{
    json_decref(res->destroyed);
    X509_free(res->cert);
    free(res->key_uri);
    memset(res, 0, sizeof(*res));
}

/* ---- the runs ------------------------------------------------------------------- */

/*
 * [ca] account-key must name an object on the profile's token.  acme_enroll
 * finds out only when it signs, after the new key exists: checked here
 * first so that a profile error changes nothing (exit 2).
 */
static int
check_account_key(struct enroll *e)
{
    char *object = NULL;
    int r;

    if (e->prof->ca.account_key == NULL)
        return 0;
    if ((r = token_matches_uri(e->tok, e->prof->ca.account_key, &object)) == -1)
        return -1;
    free(object);
    if (r == 0 || object == NULL) {
        err_input("E_ACCOUNT_KEY", "%s: [ca] account-key %s must name an object (object=) on "
            "the profile's token %s; nothing changed", e->prof->name, e->prof->ca.account_key,
            token_label(e->tok));
        return -1;
    }
    return 0;
}

/* The outputs and the account key can be used: checked before anything changes. */
static int
check_before_change(struct renew_ctx *c)
{
    if (rotate_check_outputs(c->e.prof) == -1 || check_account_key(&c->e) == -1)
        return -1;
    return 0;
}

/*
 * After a renewal: destroy retired pairs past retire-after (a failure is a
 * warning: the new certificate is installed and the hook ran, a later run
 * tries again), and the new current pair into *res.  0 or -1 (no memory).
 */
static int
renewed(struct renew_ctx *c, struct renew_result *res)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;

    res->retired = c->r.retired; /* borrowed from the context, may be NULL */
    if ((res->destroyed = json_array()) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (rotate_housekeeping(&c->r, res->destroyed) == -1) {
        err_clear();
        warnmsg("the renewal is done, but destroying retired key pairs failed (see above); "
            "a later run tries again");
    }
    if (rotate_find_current(&c->r, &key, &cert) == 0 && cert != NULL) {
        res->cert = cert;
        cert = NULL; /* transferred */
        res->key_uri = strdup(token_key_uri(key));
    }
    err_clear();
    token_key_free(key);
    X509_free(cert);
    return 0;
}

/*
 * The run stopped with the CSR out (r.waiting): destroy retired pairs past
 * retire-after (a failure is a warning) and say so in *res.  0 or -1.
 */
static int
waiting(struct renew_ctx *c, struct renew_result *res)
{
    res->waiting = true;
    if ((res->destroyed = json_array()) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (rotate_housekeeping(&c->r, res->destroyed) == -1) {
        err_clear();
        warnmsg("destroying retired key pairs failed (see above); a later run tries again");
    }
    return 0;
}

int
renew_abandon(struct renew_ctx *c, bool *had)
{
    *had = c->st->txn.step != STEP_NONE;
    return rotate_abandon(&c->r);
}

int
renew_resume(struct renew_ctx *c, struct renew_result *res)
{
    int rc;

    memset(res, 0, sizeof(*res));
    progress("resuming the renewal started %lld s ago (step %s)",
        (long long)(c->r.now - c->st->txn.started), state_step_name(c->st->txn.step));
    if (check_before_change(c) == -1)
        return -1;
    if ((rc = pool_before_change(c, true, res)) != 0)
        return rc == 1 ? 0 : -1;
    if (rotate_resume(&c->r) == -1)
        rc = -1;
    else
        rc = c->r.waiting ? waiting(c, res) : renewed(c, res);
    return pool_after_change(c, rc);
}

int
renew_complete(struct renew_ctx *c, X509 *leaf, STACK_OF(X509) *chain,
    struct renew_result *res)
{
    enum state_step step = c->st->txn.step;
    int rc;

    memset(res, 0, sizeof(*res));
    if (!rotate_is_manual(c->e.prof)) {
        err_input("E_CA_TYPE", "%s: a renewal is completed with a certificate only with [ca] "
            "type = manual", c->e.prof->name);
        return -1;
    }
    if (step == STEP_NONE) {
        err_runtime("E_STATE", "no renewal of %s is waiting for a certificate; 'p11enroll "
            "renew --profile %s' starts one", c->r.label, c->e.prof->name);
        return -1;
    }
    if (step > STEP_ORDER && rotate_manual_check_done(&c->r, leaf) == -1)
        return -1;
    c->r.issued = leaf;
    c->r.issued_chain = chain;
    rc = renew_resume(c, res);
    c->r.issued = NULL;
    c->r.issued_chain = NULL;
    return rc;
}

int
renew_in_progress(const struct enroll *e)
{
    struct state *st = NULL;
    int r;

    if (!rotate_is_manual(e->prof) || e->prof->output.state_dir == NULL ||
        e->prof->key.label == NULL)
        return 0;
    if (state_load(e->prof->output.state_dir, e->prof->key.label, &st) == -1)
        return -1;
    r = st->txn.step != STEP_NONE;
    state_free(st);
    return r;
}

int
renew_run(struct renew_ctx *c, const char *reason, struct renew_result *res)
{
    int rc;

    memset(res, 0, sizeof(*res));
    if (check_before_change(c) == -1)
        return -1;
    if ((rc = pool_before_change(c, false, res)) != 0)
        return rc == 1 ? 0 : -1;
    if (rotate_begin(&c->r, c->cur, c->cert, c->pol.rotate, reason) == -1 ||
        rotate_resume(&c->r) == -1)
        rc = -1;
    else
        rc = c->r.waiting ? waiting(c, res) : renewed(c, res);
    return pool_after_change(c, rc);
}

int
renew_not_due(struct renew_ctx *c, bool save, struct renew_result *res)
{
    memset(res, 0, sizeof(*res));
    if ((res->destroyed = json_array()) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (save && state_save(c->st) == -1)
        return -1;
    if (rotate_housekeeping(&c->r, res->destroyed) == -1)
        return -1;
    return pool_sync(c, res);
}
