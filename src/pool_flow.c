/*
 * pool_flow.c - a pool member's side of `renew` and `status` (pool.h): the
 * follower's quick no-op check and its takeover gate, the lease around a
 * renewal, picking up a certificate another member installed (files from
 * the token, deploy hook), and the record of who renewed.
 *
 * Picking up is journalled by one file, <state-dir>/pool-pickup, written
 * before the files and removed after the deploy hook: a run killed in
 * between runs the hook again next time (at least once, as renew does).
 */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csr.h"
#include "file.h"
#include "renew_flow.h"
#include "util.h"

#define PICKUP_FILE "pool-pickup"

static bool files_current(struct renew_ctx *c, X509 *cert, const struct pool_record *rec);
static void gate(struct renew_ctx *c, bool force, time_t not_after, struct renew_decision *d);

int
pool_quick_check(struct renew_ctx *c, bool force, struct renew_decision *d)
{
    struct pool *pl = &c->pool;
    struct pool_record rec;
    struct renew_cert facts = { 0 };
    char *marker = NULL;
    int r, rc = 0;

    if (pl->name == NULL || pl->leader || force || c->st->txn.step != STEP_NONE ||
        c->st->nretired > 0)
        return 0;
    if ((r = pool_record_read(c->e.tok, pl, &rec)) != 0)
        return r == 1 ? 0 : -1;     /* no record: look closer */
    if (asprintf(&marker, "%s/%s", c->e.prof->output.state_dir, PICKUP_FILE) == -1) {
        marker = NULL;
        rc = err_nomem();
        goto out;
    }
    if (access(marker, F_OK) == 0 || !files_current(c, rec.leaf, &rec) ||
        renew_cert_from_x509(rec.leaf, &facts) == -1)
        goto out;
    renew_decide(&(struct renew_input){ .now = c->r.now, .cert = &facts, .plan = c->e.plan,
                     .pol = &c->pol, .rnd = renew_rand_cert, .rnd_ctx = rec.leaf }, d);
    gate(c, false, facts.not_after, d);
    rc = d->due ? 0 : 1;
out:
    err_clear();
    free(marker);
    renew_cert_clear(&facts);
    pool_record_clear(&rec);
    return rc;
}

/* pool_gate() for a certificate expiring at not_after. */
static void
gate(struct renew_ctx *c, bool force, time_t not_after, struct renew_decision *d)
{
    const struct pool *pl = &c->pool;
    char when[32], was[sizeof(d->detail)];
    time_t t;

    if (pl->name == NULL || pl->leader || force || !d->due)
        return;
    snprintf(was, sizeof(was), "%s", d->detail);
    if (d->reason == RENEW_TIME || d->reason == RENEW_ARI || d->reason == RENEW_EXPIRED) {
        t = pool_takeover_at(pl, d->due_at ? d->due_at : c->r.now, not_after);
        if (c->r.now >= t) {
            snprintf(d->detail, sizeof(d->detail), "%.400s; the leader of pool %s has not "
                "renewed: this follower takes over", was, pl->name);
            return;
        }
        text_utc(t, when, sizeof(when));
        d->due_at = t;
        snprintf(d->detail, sizeof(d->detail), "%.300s; the leader of pool %s renews it (this "
            "follower takes over at %s if it has not)", was, pl->name, when);
    } else {
        snprintf(d->detail, sizeof(d->detail), "%.400s; the leader of pool %s renews it",
            was, pl->name);
    }
    d->due = false;
    d->reason = RENEW_NOT_DUE;
}

void
pool_gate(struct renew_ctx *c, bool force, struct renew_decision *d)
{
    gate(c, force, c->cert ? c->facts.not_after : c->r.now, d);
}

/* The chain of `leaf` from the record when it is the record's, else from this member's files. */
static STACK_OF(X509) *
leaf_chain(struct renew_ctx *c, X509 *leaf, const struct pool_record *rec)
{
    const struct profile *p = c->e.prof;
    X509 *first = NULL;
    STACK_OF(X509) *rest = NULL;

    if (rec != NULL && rec->leaf != NULL && X509_cmp(rec->leaf, leaf) == 0) {
        if (cert_check_chain(leaf, rec->chain) == 0)
            return X509_chain_up_ref(rec->chain);
        err_clear();
        warnmsg("pool %s: the chain in the pool record does not link to the certificate; "
            "ignored", c->pool.name);
    }
    /* This member's fullchain, when it is for this leaf. */
    if (p->output.fullchain != NULL && access(p->output.fullchain, F_OK) == 0 &&
        cert_read(p->output.fullchain, "[output] fullchain", &first, &rest) == 0 &&
        X509_cmp(first, leaf) == 0 && cert_check_chain(leaf, rest) == 0) {
        X509_free(first);
        return rest;
    }
    err_clear();
    X509_free(first);
    sk_X509_pop_free(rest, X509_free);
    return NULL;
}

/*
 * Do this member's files hold `cert`, with its chain when the record has
 * it?  A cert file written before the record existed (no chain) is not
 * current once the record brings the chain.
 */
static bool
files_current(struct renew_ctx *c, X509 *cert, const struct pool_record *rec)
{
    STACK_OF(X509) *own;
    bool linked;

    if (!pool_file_is(c->e.prof->output.cert, cert))
        return false;
    if (c->e.prof->output.fullchain == NULL || rec == NULL || rec->leaf == NULL ||
        X509_cmp(rec->leaf, cert) != 0 || sk_X509_num(rec->chain) == 0)
        return true;
    own = leaf_chain(c, cert, NULL);
    linked = own != NULL && sk_X509_num(own) > 0;
    sk_X509_pop_free(own, X509_free);
    return linked;
}

/* <state-dir>/PICKUP_FILE (caller frees), or NULL (reported). */
static char *
pickup_path(const struct renew_ctx *c)
{
    char *path;
    if (asprintf(&path, "%s/%s", c->e.prof->output.state_dir, PICKUP_FILE) == -1) {
        err_nomem();
        return NULL;
    }
    return path;
}

/*
 * Write the [output] files from the token's current pair when they hold
 * another certificate (or a killed pickup left its marker), then run the
 * deploy hook.  0 (res->picked_up says whether anything was done), -1.
 */
static int
pickup(struct renew_ctx *c, const struct pool_record *rec, struct renew_result *res)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    char *marker = pickup_path(c), *serial = NULL;
    bool files_ok;
    int rc = -1, r;

    if (marker == NULL)
        return -1;
    if ((r = rotate_find_current(&c->r, &key, &cert)) != 0 || cert == NULL) {
        rc = r == -1 ? -1 : 0;  /* nothing on the token to pick up */
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), token_key_public(key)) != 1) {
        err_runtime("E_CERT", "pool %s: the certificate stored with key %s on token %s is not "
            "that key's; not writing it", c->pool.name, c->r.label, token_label(c->e.tok));
        goto out;
    }
    files_ok = files_current(c, cert, rec);
    if (files_ok && access(marker, F_OK) == -1) {
        rc = 0;
        goto out;
    }
    serial = rotate_serial(cert);
    if (!files_ok && (rec == NULL || rec->leaf == NULL || X509_cmp(rec->leaf, cert) != 0)) {
        /* No chain for it yet: the member that renewed records it when it is done. */
        char who[65];
        if ((r = pool_lease_held(c->e.tok, &c->pool, who, sizeof(who))) == -1)
            goto out;
        if (r == 1) {
            progress("pool %s: member %s is still renewing; certificate %s is picked up "
                "once it is recorded", c->pool.name, who, serial ? serial : "?");
            rc = 0;
            goto out;
        }
    }
    if (!files_ok) {
        progress("pool %s: the token holds certificate %s, newer than this member's files; "
            "writing them", c->pool.name, serial ? serial : "?");
        if ((chain = leaf_chain(c, cert, rec)) == NULL)
            warnmsg("pool %s: the chain of certificate %s is unknown (no pool record for it): "
                "[output] chain/fullchain hold the certificate alone", c->pool.name,
                serial ? serial : "?");
        if (write_file_atomic(marker, serial ? serial : "?", strlen(serial ? serial : "?"),
                0600) == -1 || enroll_write_outputs(&c->e, cert, chain) == -1)
            goto out;
    }
    c->e.key = key;
    r = enroll_deploy_hook(&c->e);
    c->e.key = NULL; /* taken back */
    if (r == -1) {
        warnmsg("the files hold the new certificate; the next run runs the deploy hook again");
        goto out;
    }
    if (unlink(marker) == -1 && errno != ENOENT)
        warnmsg("%s: %s", marker, strerror(errno));
    res->picked_up = true;
    res->key_uri = strdup(token_key_uri(key));
    res->cert = cert;
    cert = NULL; /* transferred */
    rc = 0;
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    token_key_free(key);
    free(marker);
    free(serial);
    return rc;
}

/* The serial of the decision's certificate, to tell whether another member renewed since. */
static bool
same_current(struct renew_ctx *c, X509 *before)
{
    struct token_key *key = NULL;
    X509 *now = NULL;
    bool same;

    if (rotate_find_current(&c->r, &key, &now) == -1) {
        err_clear();
        return true;    /* the renewal reports the token error */
    }
    same = (before == NULL && now == NULL) ||
           (before != NULL && now != NULL && X509_cmp(before, now) == 0);
    {
        char *sb = before ? rotate_serial(before) : NULL, *sn = now ? rotate_serial(now) : NULL;
        pool_trace(&c->pool, "lease held; decided on certificate %s, the token's current is %s: "
            "%s", sb ? sb : "none", sn ? sn : "none", same ? "renewing" : "picking up");
        free(sb);
        free(sn);
    }
    X509_free(now);
    token_key_free(key);
    return same;
}

/* Is the journal's old pair still the current one? */
static bool
journal_still_current(struct renew_ctx *c)
{
    const struct state_txn *t = &c->st->txn;
    struct token_key *key = NULL;
    X509 *cert = NULL;
    const uint8_t *id;
    size_t len;
    char *hex;
    bool same = true;

    if (t->step >= STEP_FILES || t->old_id == NULL)
        return true;
    if (rotate_find_current(&c->r, &key, &cert) == 0) {
        id = token_key_id(key, &len);
        hex = hex_encode(id, len);
        same = hex == NULL || strcmp(hex, t->old_id) == 0 ||
               (t->pending_id != NULL && strcmp(hex, t->pending_id) == 0);
        pool_trace(&c->pool, "lease held; journal (step %s) old id %.16s, token's current "
            "id %.16s: %s", state_step_name(t->step), t->old_id, hex ? hex : "?",
            same ? "resuming" : "abandoning");
        free(hex);
    }
    err_clear();
    X509_free(cert);
    token_key_free(key);
    return same;
}

int
pool_before_change(struct renew_ctx *c, bool resuming, struct renew_result *res)
{
    struct pool_record rec;
    int r;

    if (c->pool.name == NULL)
        return 0;
    if (pool_lease_take(c->e.tok, &c->pool, c->wait) == -1)
        return -1;
    if (resuming ? journal_still_current(c) : same_current(c, c->cert))
        return 0;
    progress("pool %s: another member renewed meanwhile; picking up its certificate instead",
        c->pool.name);
    if (resuming && rotate_abandon(&c->r) == -1)
        return -1;
    if ((r = pool_record_read(c->e.tok, &c->pool, &rec)) == -1)
        return -1;
    r = pickup(c, r == 0 ? &rec : NULL, res);
    pool_record_clear(&rec);
    pool_lease_release(c->e.tok, &c->pool);
    if (r == -1)
        return -1;
    res->picked_up = true;
    return 1;
}

/* Record the current certificate (with this member's chain for it). */
static int
record_current(struct renew_ctx *c, X509 *cert)
{
    STACK_OF(X509) *chain = leaf_chain(c, cert, NULL);
    int rc = pool_record_write(c->e.tok, &c->pool, cert, chain, time(NULL));

    sk_X509_pop_free(chain, X509_free);
    return rc;
}

int
pool_after_change(struct renew_ctx *c, int rc)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;

    if (c->pool.name == NULL)
        return rc;
    if (rc == 0 && rotate_find_current(&c->r, &key, &cert) == 0 && cert != NULL &&
        record_current(c, cert) == -1) {
        err_clear();
        warnmsg("pool %s: the certificate is installed, but the pool record could not be "
            "written; the next run writes it", c->pool.name);
    }
    err_clear();
    X509_free(cert);
    token_key_free(key);
    pool_lease_release(c->e.tok, &c->pool);
    return rc;
}

int
pool_sync(struct renew_ctx *c, struct renew_result *res)
{
    struct pool_record rec;
    int r, rc = -1;

    if (c->pool.name == NULL)
        return 0;
    if ((r = pool_record_read(c->e.tok, &c->pool, &rec)) == -1)
        return -1;
    if (pickup(c, r == 0 ? &rec : NULL, res) == -1)
        goto out;
    /* Files current, record missing or stale: this member has the chain, repair it. */
    if (!res->picked_up && c->cert != NULL && (r == 1 || X509_cmp(rec.leaf, c->cert) != 0) &&
        pool_file_is(c->e.prof->output.cert, c->cert)) {
        progress("pool %s: recording the current certificate for the other members",
            c->pool.name);
        if (record_current(c, c->cert) == -1)
            goto out;
    }
    rc = 0;
out:
    pool_record_clear(&rec);
    return rc;
}

json_t *
pool_status_json(struct renew_ctx *c)
{
    struct pool_record rec;
    char at[32];
    int r;
    json_t *j;

    if (c->pool.name == NULL)
        return NULL;
    j = json_pack("{s:s, s:s, s:s}", "name", c->pool.name, "member", c->pool.member,
        "role", c->pool.leader ? "leader" : "follower");
    if ((r = pool_record_read(c->e.tok, &c->pool, &rec)) == 0) {
        text_utc(rec.at, at, sizeof(at));
        json_object_set_new(j, "renewed_by", json_string(rec.member));
        json_object_set_new(j, "renewed_at", json_string(at));
        json_object_set_new(j, "record_current", json_boolean(c->cert != NULL &&
            X509_cmp(rec.leaf, c->cert) == 0));
    } else {
        json_object_set_new(j, "renewed_by", json_null());
    }
    err_clear();
    json_object_set_new(j, "files_match", json_boolean(c->cert != NULL &&
        pool_file_is(c->e.prof->output.cert, c->cert)));
    pool_record_clear(&rec);
    return j;
}
