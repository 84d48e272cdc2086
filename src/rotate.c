/*
 * rotate.c - journalled key rotation on the token (rotate.h).
 *
 * The order of a renewal, each step journalled before it acts:
 *
 *   keygen   C_GenerateKeyPair for L.pending.<t> with the journalled id
 *            (a rerun finds the pair by that id instead of making another)
 *   order    acme_enroll_run() with the pending key: the ACME order (whose
 *            URL acme.c keeps in <state-dir>/acme-order.url, so a rerun
 *            resumes it), the certificate stored next to the pending key;
 *            the [output] files are NOT written yet (with rotate = yes they
 *            would name a key that is not L until the switch): the issued
 *            chain is staged in <state-dir>/renew-next.pem instead
 *   switch   L -> L.retired.<t>, then L.pending.<t> -> L, both found by
 *            CKA_ID, so a rerun completes a half-done switch (each relabel
 *            is all or nothing and is simply done again)
 *   files    the [output] files from the certificate now on the token next
 *            to L (and the staged chain)
 *   deploy   [hooks] deploy, once the new pair is L and the files are there
 *
 * The one window without a pair labelled L is between the two relabels of
 * the switch (two C_SetAttributeValue calls): PKCS#11 has no transaction,
 * and the other order would leave two pairs labelled L instead.  Between
 * the switch and the files step the files still hold the old certificate
 * (the old key stays on the token, so it still works); the next run
 * finishes both without the network.  With rotate = no the key does not
 * change and the files are written at install, as `enroll` does.
 */
#include "rotate_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/rand.h>

#include "acme_enroll.h"
#include "csr.h"
#include "rotate_manual.h"
#include "fault.h"
#include "util.h"

/* ---- lookups ------------------------------------------------------------------ */

/*
 * token_find_key() refused the pair with this id: when a torn write took
 * its public key object (a kill inside a relabel on SoftHSM), rebuild it
 * from the certificate, else report again why the pair is unusable.
 */
static int
find_torn(struct token *tok, const uint8_t *id, size_t len, struct token_key **key)
{
    int r;

    err_clear();
    if ((r = token_rebuild_public(tok, id, len, key)) == 1)
        return token_find_key(tok, NULL, id, len, key);
    return r;
}

int
rotate_find_id(struct token *tok, const char *hex, struct token_key **key)
{
    uint8_t *id = NULL;
    size_t len;
    int r;

    *key = NULL;
    if (hex_decode(hex, &id, &len) == -1 || len == 0) {
        free(id);
        err_runtime("E_STATE", "bad key id %s in the renewal state", hex);
        return -1;
    }
    r = token_find_key(tok, NULL, id, len, key);
    if (r == -1)
        r = find_torn(tok, id, len, key);
    free(id);
    return r;
}

int
rotate_find_current(struct rotate *r, struct token_key **key, X509 **cert)
{
    int rc;

    *key = NULL;
    *cert = NULL;
    if (r->st->labels_immutable && r->st->current_id != NULL)
        rc = rotate_find_id(r->e->tok, r->st->current_id, key);
    else
        rc = token_find_key(r->e->tok, r->label, NULL, 0, key);
    if (rc != 0)
        return rc;
    if ((rc = token_find_cert(r->e->tok, *key, cert)) == -1) {
        token_key_free(*key);
        *key = NULL;
        return -1;
    }
    return 0;
}

char *
rotate_serial(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL, *copy = h ? strdup(h) : NULL;

    BN_free(bn);
    OPENSSL_free(h);
    return copy;
}

static char *
key_hex_id(const struct token_key *key)
{
    size_t len;
    const uint8_t *id = token_key_id(key, &len);
    return hex_encode(id, len);
}

bool
rotate_key_has_id(const struct token_key *key, const char *hex)
{
    char *mine = key_hex_id(key);
    bool same = mine != NULL && hex != NULL && strcmp(mine, hex) == 0;
    free(mine);
    return same;
}

int
rotate_check_outputs(const struct profile *p)
{
    if ((p->output.cert && file_writable(p->output.cert, "[output] cert") == -1) ||
        (p->output.chain && file_writable(p->output.chain, "[output] chain") == -1) ||
        (p->output.fullchain && file_writable(p->output.fullchain, "[output] fullchain") == -1))
        return -1;
    if (access(p->output.state_dir, W_OK | X_OK) == -1) {
        err_runtime("E_FILE", "[output] state-dir %s is not writable: %s; nothing changed",
            p->output.state_dir, strerror(errno));
        return -1;
    }
    return 0;
}

char *
rotate_state_file(const struct rotate *r, const char *name)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s", r->e->prof->output.state_dir, name) == -1)
        return NULL;
    return path;
}

static char *
order_file(const struct rotate *r)
{
    return rotate_state_file(r, "acme-order.url");
}

/* Remove a file of the state dir; absent is fine.  0, or -1 after reporting. */
int
rotate_unlink_state_file(const struct rotate *r, const char *name)
{
    char *path = rotate_state_file(r, name);
    int rc = 0;

    if (path == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (unlink(path) == -1 && errno != ENOENT) {
        err_runtime("E_FILE", "%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
}

int
rotate_save_step(struct rotate *r, enum state_step step)
{
    r->st->txn.step = step;
    verbose("journal: %s", state_step_name(step));
    return state_save(r->st);
}

/*
 * "<label>.<what>.<unix time>", or with "-<8 hex of the id>" appended when a
 * key already has that label (two renewals in one second).  Caller frees.
 */
static char *
new_label(struct rotate *r, const char *what, const char *idhex)
{
    struct token_key *k = NULL;
    char *l = NULL;
    int found;

    if (asprintf(&l, "%s.%s.%lld", r->label, what, (long long)r->now) == -1)
        return NULL;
    found = token_find_key(r->e->tok, l, NULL, 0, &k);
    token_key_free(k);
    err_clear();
    if (found != 1) {
        free(l);
        if (asprintf(&l, "%s.%s.%lld-%.8s", r->label, what, (long long)r->now, idhex) == -1)
            return NULL;
    }
    return l;
}

/* ---- begin ------------------------------------------------------------------------ */

int
rotate_begin(struct rotate *r, const struct token_key *cur, X509 *cert, bool rotate,
    const char *reason)
{
    struct state_txn *t = &r->st->txn;
    uint8_t rid[16];
    char *of = NULL;

    state_txn_clear(r->st);
    t->rotate = rotate || cur == NULL;
    t->started = r->now;
    if ((t->reason = strdup(reason)) == NULL)
        goto nomem;
    if (cur != NULL && (t->old_id = key_hex_id(cur)) == NULL)
        goto nomem;
    if (cert != NULL && (t->old_serial = rotate_serial(cert)) == NULL)
        goto nomem;
    if (t->rotate) {
        if (RAND_bytes(rid, sizeof(rid)) != 1) {
            err_runtime("E_RANDOM", "no random bytes for the new key id");
            return -1;
        }
        if ((t->pending_id = hex_encode(rid, sizeof(rid))) == NULL ||
            (t->pending_label = new_label(r, "pending", t->pending_id)) == NULL)
            goto nomem;
    }
    /*
     * An order file left by an earlier, unrelated run (a failed `enroll`)
     * would be resumed with a CSR for another key: this renewal orders
     * afresh, and from now on the order file is this renewal's.
     */
    if ((of = order_file(r)) == NULL)
        goto nomem;
    if (unlink(of) == -1 && errno != ENOENT) {
        err_runtime("E_FILE", "%s: %s", of, strerror(errno));
        free(of);
        return -1;
    }
    free(of);
    if (rotate_unlink_state_file(r, STAGED_CHAIN) == -1)
        return -1;
    if (t->rotate)
        progress("renewal: new key pair %s (id %s) for %s", t->pending_label, t->pending_id,
            r->label);
    else
        progress("renewal: re-using key %s (rotate = no)", r->label);
    return rotate_save_step(r, t->rotate ? STEP_KEYGEN : STEP_ORDER);
nomem:
    err_runtime("E_NOMEM", "out of memory");
    return -1;
}

/* ---- the steps ---------------------------------------------------------------------- */

/*
 * Is the pending key of the type the plan asks for, and as safe as
 * token_keygen() makes keys (sensitive, never extractable, generated on the
 * token)?  A resumed key was made by an earlier run, the profile may have
 * changed since, and its id is in a file anyone with the state dir can
 * read.  0 (yes), 1 (no: warned, with why), -1 after reporting.
 */
static int
pending_key_ok(struct rotate *r, const struct token_key *key)
{
    struct token_key_flags f;

    if (token_key_type(key) == NULL || token_key_type(key) != keytype_parse(r->e->plan->key)) {
        warnmsg("the pending key %s is %s, but the profile asks for %s: replacing it",
            token_key_label(key), token_key_type_name(key), r->e->plan->key);
        return 1;
    }
    if (token_key_flags(r->e->tok, key, &f) == -1)
        return -1;
    /* On a family that never sets CKA_LOCAL (NSS), always sensitive and
     * never extractable are all the token can say (README "Token families"). */
    if (!f.sensitive || f.extractable || !f.always_sensitive || !f.never_extractable ||
        !(f.local || f.local_unrecorded)) {
        warnmsg("the pending key %s is not sensitive, never extractable and generated on the "
            "token (sensitive=%d always_sensitive=%d extractable=%d never_extractable=%d "
            "local=%d): replacing it", token_key_label(key), f.sensitive, f.always_sensitive,
            f.extractable, f.never_extractable, f.local);
        return 1;
    }
    return 0;
}

/*
 * Forget the renewal in progress: the txn, the ACME order state and the
 * staged chain.  The caller has dealt with the token.  0 or -1.
 */
/* Forget the ACME order state and the staged chain.  0 or -1. */
static int
forget_order(struct rotate *r)
{
    if (rotate_unlink_state_file(r, "acme-order.url") == -1 ||
        rotate_unlink_state_file(r, "acme-order.key") == -1 ||
        rotate_unlink_state_file(r, STAGED_CHAIN) == -1)
        return -1;
    return 0;
}

static int
forget_txn(struct rotate *r)
{
    state_txn_clear(r->st);
    if (state_save(r->st) == -1)
        return -1;
    return forget_order(r);
}

static int
step_keygen(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    struct token_key *key = NULL;
    const struct keytype *type = keytype_parse(r->e->plan->key);
    uint8_t *id = NULL;
    size_t idlen;
    int found, ok, n, rc = -1;

    fault_point("keygen");
    if ((found = rotate_find_id(r->e->tok, t->pending_id, &key)) == -1) {
        /* Half a pair nothing can rebuild (a torn write): ours, so made again below. */
        err_clear();
        warnmsg("the pending key %s (id %s) is half a pair: making it again", t->pending_label,
            t->pending_id);
        found = 1;
    }
    if (found == 0) {
        progress("renewal: found the pending key %s from the interrupted run", t->pending_label);
        if ((ok = pending_key_ok(r, key)) == -1)
            goto out;
        if (ok == 1) {
            /* The journal already names this id: destroying and regenerating it is idempotent. */
            if ((n = token_destroy_key(r->e->tok, key)) == -1)
                goto out;
            progress("renewal: destroyed the unfit pending key (%d object(s))", n);
            token_key_free(key);
            key = NULL;
            found = 1;
        }
    }
    if (found == 1) {
        if (type == NULL) {
            err_input("E_KEY_TYPE", "%s: key type %s is not supported", r->e->prof->name,
                r->e->plan->key);
            goto out;
        }
        if (hex_decode(t->pending_id, &id, &idlen) == -1)
            goto out;
        /* Halves of a pair whose generation was interrupted carry our journalled id. */
        if ((n = token_destroy_own_id(r->e->tok, id, idlen)) == -1)
            goto out;
        if (n > 0)
            progress("renewal: removed %d object(s) of an interrupted key generation", n);
        if (token_keygen_random_id(r->e->tok, type, t->pending_label, id, idlen, &key) == -1) {
            /*
             * Nothing of this renewal exists on the token (token_keygen
             * removes a pair it made but could not use; halves carrying our
             * id go here): abandon it, so that the next run starts afresh
             * instead of resuming a renewal that has nothing to resume.
             */
            bool had_old = t->old_id != NULL;
            if (token_destroy_own_id(r->e->tok, id, idlen) != -1 && forget_txn(r) == 0)
                warnmsg("the renewal stopped before it created anything and is abandoned; "
                    "%s", had_old ? "the current key stays current" : "the next run starts "
                    "afresh");
            goto out;
        }
    }
    fault_point("generated");
    rc = rotate_save_step(r, STEP_ORDER);
out:
    free(id);
    token_key_free(key);
    return rc;
}

/*
 * Run the ACME order for e->key.  With rotate = yes the certificate goes on
 * the token only, and its chain to <state-dir>/renew-next.pem (leaf and
 * chain, as a fullchain file), not to the [output] files: the files step
 * writes those after the switch.  The deploy hook runs at the deploy step.
 */
static int
run_order(struct rotate *r, bool rotate)
{
    struct enroll_result res = { 0 };
    char *staged = NULL;
    int rc;

    if (rotate && (staged = rotate_state_file(r, STAGED_CHAIN)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (rotate_is_manual(r->e->prof))
        rc = rotate_manual_order(r, staged);
    else
        rc = acme_enroll_run(r->e, staged, &res);
    enroll_result_clear(&res);
    free(staged);
    return rc;
}

/*
 * Before the switch the pending pair is this renewal's alone: when it is
 * gone or half a pair nothing can rebuild (a torn write took its private
 * key, or it was removed by hand), destroy what is left of it (every
 * object with its id, certificate too), forget the order made for it and
 * go back to keygen.  Once per run, so a token that keeps failing stops.
 */
static int
regenerate_pending(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    uint8_t *id = NULL;
    size_t idlen;
    int n;

    err_clear();
    r->regenerated = true;
    if (hex_decode(t->pending_id, &id, &idlen) == -1) {
        err_runtime("E_STATE", "bad key id %s in the renewal state", t->pending_id);
        return -1;
    }
    n = token_destroy_own_id(r->e->tok, id, idlen);
    free(id);
    if (n == -1)
        return -1;
    warnmsg("the pending key %s (id %s) is gone or half a pair: removed %d object(s) left of "
        "it; making a new pair and ordering again", t->pending_label, t->pending_id, n);
    if (forget_order(r) == -1)
        return -1;
    return rotate_save_step(r, STEP_KEYGEN);
}

static int
step_order(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    struct token_key *key = NULL;
    X509 *cert = NULL;
    char *of = NULL, *serial = NULL;
    bool installed = false;
    int found, rc = -1, ok;

    fault_point("order");
    if ((of = order_file(r)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (t->rotate) {
        found = rotate_find_id(r->e->tok, t->pending_id, &key);
    } else {
        /* The current pair (by id on a token with immutable labels). */
        found = rotate_find_current(r, &key, &cert);
        X509_free(cert);
        cert = NULL;
    }
    if (t->rotate && found != 0 && !r->regenerated) {
        rc = regenerate_pending(r);
        goto out;
    }
    if (found == -1)
        goto out;
    if (found == 1) {
        err_runtime("E_STATE", "the key %s (id %s) the renewal journal %s records is no longer "
            "on token %s; 'p11enroll renew --profile %s --abandon' gives up this renewal",
            t->rotate ? t->pending_label : r->label, t->rotate ? t->pending_id : "-",
            r->st->path, token_label(r->e->tok), r->e->prof->name);
        goto out;
    }
    /* A resumed pending key is checked again: back to keygen when it does not fit. */
    if (t->rotate) {
        if ((ok = pending_key_ok(r, key)) == -1)
            goto out;
        if (ok == 1) {
            rc = rotate_save_step(r, STEP_KEYGEN);
            goto out;
        }
    }
    /*
     * acme_enroll_run() forgets the order file only after installing (token
     * and files).  No order file and a certificate that is not the old one
     * means a killed run got that far: ordering again would make a second
     * order and certificate.
     */
    if (access(of, F_OK) == -1 && token_find_cert(r->e->tok, key, &cert) == 0) {
        serial = rotate_serial(cert);
        installed = t->rotate || t->old_serial == NULL ||
                    (serial != NULL && strcmp(serial, t->old_serial) != 0);
    }
    err_clear();
    if (installed) {
        progress("renewal: the certificate %s is already installed next to %s",
            serial ? serial : "?", token_key_label(key));
    } else {
        r->e->key = key;
        key = NULL; /* transferred to the enrollment for acme_enroll_run */
        rc = run_order(r, t->rotate);
        key = r->e->key;
        r->e->key = NULL; /* taken back */
        if (rc == -1) {
            if (t->old_id != NULL)
                warnmsg("the renewal stopped; key %s and its certificate stay current%s",
                    r->label, t->rotate ? "; the next run resumes it with the pending key" : "");
            else
                warnmsg("the renewal stopped; the next run resumes it with the pending key %s",
                    t->pending_label);
            goto out;
        }
        if (r->waiting)
            goto out; /* rc 0: the CSR is out, the journal stays at this step */
        rc = -1;
    }
    fault_point("installed");
    if (t->rotate) {
        free(t->retired_label);
        t->retired_label = NULL;
        if (t->old_id != NULL && (t->retired_label = new_label(r, "retired", t->old_id)) == NULL)
            goto out;
        rc = rotate_save_step(r, STEP_SWITCH);
    } else {
        rc = rotate_save_step(r, STEP_DEPLOY);
    }
out:
    free(of);
    free(serial);
    X509_free(cert);
    token_key_free(key);
    return rc;
}

static bool
retired_has(const struct state *st, const char *id)
{
    for (size_t i = 0; i < st->nretired; i++)
        if (strcmp(st->retired[i].id, id) == 0)
            return true;
    return false;
}

/*
 * The old pair's private key is gone: a kill inside its relabel (L to
 * L.retired.<t> or back) emptied its object file on SoftHSM.  What is left
 * with the journalled old id under either label (its public key, its
 * certificate) can never sign again and would leave L naming half a pair
 * next to the new one: remove it.  0 or -1.
 */
static int
drop_lost_old(struct rotate *r)
{
    const struct state_txn *t = &r->st->txn;
    const char *labels[3] = { r->label, t->retired_label, NULL };
    uint8_t *id = NULL;
    size_t idlen;
    int n;

    if (hex_decode(t->old_id, &id, &idlen) == -1) {
        err_runtime("E_STATE", "bad key id %s in the renewal state", t->old_id);
        return -1;
    }
    n = token_destroy_half(r->e->tok, id, idlen, labels);
    free(id);
    if (n > 0)
        warnmsg("the old key %s (id %s) lost its private key (a torn write?): removed the %d "
            "object(s) left of it", r->label, t->old_id, n);
    return n == -1 ? -1 : 0;
}

/* A switch that had begun is undone: the old pair takes the stable label back.  0 or -1. */
static int
unswitch(struct rotate *r)
{
    struct token_key *old = NULL;
    int found, rc = 0;

    if (r->st->txn.old_id == NULL || r->st->labels_immutable)
        return 0;
    if ((found = rotate_find_id(r->e->tok, r->st->txn.old_id, &old)) == -1)
        rc = -1;
    else if (found == 1)
        rc = drop_lost_old(r);
    else if (found == 0 && strcmp(token_key_label(old), r->label) != 0 &&
             token_relabel_key(r->e->tok, old, r->label) != 0)
        rc = -1;
    token_key_free(old);
    return rc;
}

/*
 * The switch.  Each relabel is all or nothing and idempotent, so a resumed
 * switch simply does both again: a run killed inside one (some objects of a
 * pair relabelled, others not) is finished instead of being taken as done
 * because its private key already carries the new label.
 */
static int
step_switch(struct rotate *r)
{
    struct state *st = r->st;
    struct state_txn *t = &st->txn;
    struct token_key *old = NULL, *pending = NULL, *other = NULL;
    const char *old_label = NULL;
    /* A family known to refuse label changes takes that path up front. */
    bool immutable = st->labels_immutable || token_labels_fixed(r->e->tok);
    int found, rc = -1, x;

    fault_point("switch");
    /*
     * The new pair first: one that is gone or half a pair (a torn write)
     * is made again and ordered again, and the old pair keeps (or gets
     * back) the stable label, instead of a switch to nothing.
     */
    if ((found = rotate_find_id(r->e->tok, t->pending_id, &pending)) != 0 && !r->regenerated) {
        rc = unswitch(r) == -1 ? -1 : regenerate_pending(r);
        goto out;
    }
    token_key_free(pending);
    pending = NULL;
    if (t->old_id != NULL) {
        if ((found = rotate_find_id(r->e->tok, t->old_id, &old)) == -1 ||
            (found == 1 && drop_lost_old(r) == -1))
            goto out;
        if (found == 0 && !immutable) {
            if (strcmp(token_key_label(old), t->retired_label) != 0)
                progress("renewal: retiring %s as %s", token_key_label(old), t->retired_label);
            if ((x = token_relabel_key(r->e->tok, old, t->retired_label)) == -2) {
                /* Nothing changed (all or nothing): the old pair keeps L. */
                immutable = true;
            } else if (x == -1) {
                goto out;
            }
        }
    }
    fault_point("switch-half");
    if ((found = rotate_find_id(r->e->tok, t->pending_id, &pending)) != 0) {
        if (found == 1)
            err_runtime("E_STATE", "the new key %s (id %s) is no longer on token %s",
                t->pending_label, t->pending_id, token_label(r->e->tok));
        goto out;
    }
    if (!immutable) {
        /* The stable label must be free: only our old pair or the new one may hold it. */
        if ((found = token_find_key(r->e->tok, r->label, NULL, 0, &other)) == -1)
            goto out;
        if (found == 0 && !rotate_key_has_id(other, t->pending_id)) {
            err_runtime("E_LABEL_TAKEN", "token %s has a key labelled %s that this renewal did "
                "not expect (not id %s); not switching: the new key stays %s and the [output] "
                "files keep the old certificate; remove or rename that key and run renew "
                "again, or give up with --abandon", token_label(r->e->tok), r->label,
                t->pending_id, t->pending_label);
            goto out;
        }
        if (strcmp(token_key_label(pending), r->label) != 0)
            progress("renewal: %s becomes %s", t->pending_label, r->label);
        if ((x = token_relabel_key(r->e->tok, pending, r->label)) == -2) {
            immutable = true;
            /*
             * Refused, and undone: the new pair keeps its pending label on
             * every object (put it there again in case a killed run had
             * left part of it labelled L), and the old pair gets L back, so
             * that L names one whole pair.
             */
            (void)token_relabel_key(r->e->tok, pending, t->pending_label);
            if (old != NULL && token_relabel_key(r->e->tok, old, r->label) != 0)
                warnmsg("could not give key %s its label back", t->old_id);
        } else if (x == -1) {
            goto out;
        }
    }
    if (immutable) {
        err_clear();
        if (!st->labels_immutable)
            warnmsg("token %s refuses to change labels: the new key keeps the label %s and is "
                "the current key by its id (%s); the label %s names the old key until it is "
                "destroyed.  Point services at P11ENROLL_KEY_URI (deploy hook), or set "
                "rotate = no", token_label(r->e->tok), t->pending_label, token_key_uri(pending),
                r->label);
        st->labels_immutable = true;
        free(st->current_id);
        if ((st->current_id = strdup(t->pending_id)) == NULL) {
            err_nomem();
            goto out;
        }
        old_label = old ? token_key_label(old) : NULL;
    } else {
        free(st->current_id);
        st->current_id = NULL;
        old_label = t->retired_label;
    }
    if (old != NULL && !retired_has(st, t->old_id) &&
        state_retired_add(st, t->old_id, old_label, r->now) == -1)
        goto out;
    /* Allocated, not a fixed buffer: a long [key] label is never cut short. */
    if (old != NULL) {
        free(r->retired);
        if ((r->retired = strdup(old_label)) == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            goto out;
        }
    }
    rc = rotate_save_step(r, STEP_FILES);
    fault_point("switched");
out:
    token_key_free(old);
    token_key_free(pending);
    token_key_free(other);
    return rc;
}

int
rotate_resume(struct rotate *r)
{
    for (;;) {
        int rc;
        switch (r->st->txn.step) {
        case STEP_NONE: return 0;
        case STEP_KEYGEN: rc = step_keygen(r); break;
        case STEP_ORDER: rc = step_order(r); break;
        case STEP_SWITCH: rc = step_switch(r); break;
        case STEP_FILES: rc = rotate_step_files(r); break;
        case STEP_DEPLOY: rc = rotate_step_deploy(r); break;
        default: rc = -1; break;
        }
        if (rc == -1)
            return -1;
        if (r->waiting)
            return 0;
    }
}

/* ---- giving up ---------------------------------------------------------------------- */

int
rotate_abandon(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    uint8_t *id = NULL;
    size_t idlen;
    int n = 0, rc = -1;

    if (t->step == STEP_NONE) {
        progress("no renewal in progress: nothing to abandon");
        return 0;
    }
    if (t->step >= STEP_FILES) {
        err_runtime("E_STATE", "the renewal in progress has already switched: the new key is "
            "%s and the old one is retired; nothing to abandon: run 'p11enroll renew --profile "
            "%s' to finish it (files, deploy hook)", r->label, r->e->prof->name);
        return -1;
    }
    progress("abandoning the renewal started %lld s ago (step %s)",
        (long long)(r->now - t->started), state_step_name(t->step));
    if (t->rotate && t->pending_id != NULL) {
        /* Only the journalled id: objects p11enroll did not create are never touched. */
        if (hex_decode(t->pending_id, &id, &idlen) == -1) {
            err_runtime("E_STATE", "bad key id %s in the renewal state", t->pending_id);
            goto out;
        }
        /* All of its objects: a torn pair may have lost its private key, not its certificate. */
        if ((n = token_destroy_own_id(r->e->tok, id, idlen)) == -1)
            goto out;
        progress("destroyed the pending key pair %s (id %s, %d object(s))",
            t->pending_label ? t->pending_label : "?", t->pending_id, n);
    }
    if (t->step == STEP_SWITCH && unswitch(r) == -1)
        goto out;
    rotate_manual_forget(r);
    if (forget_txn(r) == -1)
        goto out;
    progress("the renewal is abandoned; %s stays current", r->label);
    rc = 0;
out:
    free(id);
    return rc;
}
