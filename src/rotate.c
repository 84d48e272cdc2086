/*
 * rotate.c - journalled key rotation on the token (rotate.h).
 *
 * The order of a renewal, each step journalled before it acts:
 *
 *   keygen   C_GenerateKeyPair for L.pending.<t> with the journalled id
 *            (a rerun finds the pair by that id instead of making another)
 *   order    acme_enroll_run() with the pending key: the ACME order (whose
 *            URL acme.c keeps in <state-dir>/acme-order.url, so a rerun
 *            resumes it), the certificate stored next to the pending key,
 *            the [output] files written
 *   switch   L -> L.retired.<t>, then L.pending.<t> -> L, both found by
 *            CKA_ID, so a rerun completes a half-done switch
 *   deploy   [hooks] deploy, once the new pair is L and the files are there
 *
 * The one window without a pair labelled L is between the two relabels of
 * the switch (two C_SetAttributeValue calls): PKCS#11 has no transaction,
 * and the other order would leave two pairs labelled L instead.
 */
#include "rotate.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/rand.h>

#include "acme_enroll.h"
#include "fault.h"
#include "util.h"

/* ---- lookups ------------------------------------------------------------------ */

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

static bool
key_has_id(const struct token_key *key, const char *hex)
{
    char *mine = key_hex_id(key);
    bool same = mine != NULL && hex != NULL && strcmp(mine, hex) == 0;
    free(mine);
    return same;
}

static int
dir_writable(const char *path, const char *what)
{
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : ".";
    int rc = 0;

    if (access(dir, W_OK | X_OK) == -1) {
        err_runtime("E_FILE", "%s %s: directory %s is not writable: %s; nothing changed", what,
            path, dir, strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

int
rotate_check_outputs(const struct profile *p)
{
    if ((p->output.cert && dir_writable(p->output.cert, "[output] cert") == -1) ||
        (p->output.chain && dir_writable(p->output.chain, "[output] chain") == -1) ||
        (p->output.fullchain && dir_writable(p->output.fullchain, "[output] fullchain") == -1))
        return -1;
    if (access(p->output.state_dir, W_OK | X_OK) == -1) {
        err_runtime("E_FILE", "[output] state-dir %s is not writable: %s; nothing changed",
            p->output.state_dir, strerror(errno));
        return -1;
    }
    return 0;
}

static char *
order_file(const struct rotate *r)
{
    char *path = NULL;
    if (asprintf(&path, "%s/acme-order.url", r->e->prof->output.state_dir) == -1)
        return NULL;
    return path;
}

static int
save_step(struct rotate *r, enum state_step step)
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
    if (t->rotate)
        progress("renewal: new key pair %s (id %s) for %s", t->pending_label, t->pending_id,
            r->label);
    else
        progress("renewal: re-using key %s (rotate = no)", r->label);
    return save_step(r, t->rotate ? STEP_KEYGEN : STEP_ORDER);
nomem:
    err_runtime("E_NOMEM", "out of memory");
    return -1;
}

/* ---- the steps ---------------------------------------------------------------------- */

static int
step_keygen(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    struct token_key *key = NULL;
    const struct keytype *type = keytype_parse(r->e->plan->key);
    uint8_t *id = NULL;
    size_t idlen;
    int found, rc = -1;

    fault_point("keygen");
    if ((found = rotate_find_id(r->e->tok, t->pending_id, &key)) == -1)
        return -1;
    if (found == 0) {
        progress("renewal: found the pending key %s from the interrupted run", t->pending_label);
    } else {
        if (type == NULL) {
            err_input("E_KEY_TYPE", "%s: key type %s is not supported", r->e->prof->name,
                r->e->plan->key);
            return -1;
        }
        if (hex_decode(t->pending_id, &id, &idlen) == -1)
            goto out;
        /* Halves of a pair whose generation was interrupted carry our journalled id. */
        int n = token_destroy_id(r->e->tok, id, idlen);
        if (n == -1)
            goto out;
        if (n > 0)
            progress("renewal: removed %d object(s) of an interrupted key generation", n);
        if (token_keygen(r->e->tok, type, t->pending_label, id, idlen, &key) == -1)
            goto out;
    }
    fault_point("generated");
    rc = save_step(r, STEP_ORDER);
out:
    free(id);
    token_key_free(key);
    return rc;
}

static int
step_order(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    struct token_key *key = NULL;
    X509 *cert = NULL;
    char *of = NULL, *serial = NULL;
    bool installed = false;
    int found, rc = -1;

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
    if (found == -1)
        goto out;
    if (found == 1) {
        err_runtime("E_STATE", "the key %s (id %s) the renewal journal %s records is no longer "
            "on token %s; remove the \"txn\" entry of the journal to start over",
            t->rotate ? t->pending_label : r->label, t->rotate ? t->pending_id : "-",
            r->st->path, token_label(r->e->tok));
        goto out;
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
        r->e->skip_deploy_hook = true;
        r->e->skip_result = true;
        rc = acme_enroll_run(r->e, r->json);
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
        rc = -1;
    }
    fault_point("installed");
    if (t->rotate) {
        free(t->retired_label);
        t->retired_label = NULL;
        if (t->old_id != NULL && (t->retired_label = new_label(r, "retired", t->old_id)) == NULL)
            goto out;
        rc = save_step(r, STEP_SWITCH);
    } else {
        rc = save_step(r, STEP_DEPLOY);
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

static int
step_switch(struct rotate *r)
{
    struct state *st = r->st;
    struct state_txn *t = &st->txn;
    struct token_key *old = NULL, *pending = NULL, *other = NULL;
    const char *old_label = NULL;
    bool immutable = st->labels_immutable;
    int found, rc = -1, x;

    fault_point("switch");
    if (t->old_id != NULL) {
        if ((found = rotate_find_id(r->e->tok, t->old_id, &old)) == -1)
            goto out;
        if (found == 0 && !immutable && strcmp(token_key_label(old), t->retired_label) != 0) {
            progress("renewal: retiring %s as %s", token_key_label(old), t->retired_label);
            if ((x = token_relabel_key(r->e->tok, old, t->retired_label)) == -2) {
                immutable = true;
                /* Objects relabelled before the refusal get the stable label back. */
                (void)token_relabel_key(r->e->tok, old, r->label);
            } else if (x == -1)
                goto out;
        }
    }
    fault_point("switch-half");
    if ((found = rotate_find_id(r->e->tok, t->pending_id, &pending)) != 0) {
        if (found == 1)
            err_runtime("E_STATE", "the new key %s (id %s) is no longer on token %s",
                t->pending_label, t->pending_id, token_label(r->e->tok));
        goto out;
    }
    if (!immutable && strcmp(token_key_label(pending), r->label) != 0) {
        /* The stable label must be free: only our old pair may have held it. */
        if ((found = token_find_key(r->e->tok, r->label, NULL, 0, &other)) == -1)
            goto out;
        if (found == 0 && !key_has_id(other, t->pending_id)) {
            err_runtime("E_LABEL_TAKEN", "token %s has a key labelled %s that this renewal did "
                "not expect (not id %s); not switching: the new key stays %s",
                token_label(r->e->tok), r->label, t->old_id ? t->old_id : "-", t->pending_label);
            goto out;
        }
        progress("renewal: %s becomes %s", t->pending_label, r->label);
        if ((x = token_relabel_key(r->e->tok, pending, r->label)) == -2) {
            immutable = true;
            /* Give the stable label back to the old pair: it stays usable. */
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
        if ((st->current_id = strdup(t->pending_id)) == NULL)
            goto out;
        old_label = old ? token_key_label(old) : NULL;
    } else {
        free(st->current_id);
        st->current_id = NULL;
        old_label = t->retired_label;
    }
    if (old != NULL && !retired_has(st, t->old_id) &&
        state_retired_add(st, t->old_id, old_label, r->now) == -1)
        goto out;
    if (old != NULL)
        snprintf(r->retired, sizeof(r->retired), "%s", old_label);
    rc = save_step(r, STEP_DEPLOY);
    fault_point("switched");
out:
    token_key_free(old);
    token_key_free(pending);
    token_key_free(other);
    return rc;
}

static int
step_deploy(struct rotate *r)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;
    int found, rc;

    fault_point("deploy");
    if ((found = rotate_find_current(r, &key, &cert)) != 0) {
        if (found == 1)
            err_runtime("E_NO_KEY", "no current key %s on token %s after the switch", r->label,
                token_label(r->e->tok));
        return -1;
    }
    X509_free(cert);
    r->e->key = key; /* transferred */
    rc = enroll_deploy_hook(r->e);
    token_key_free(r->e->key);
    r->e->key = NULL;
    if (rc == -1) {
        warnmsg("the new certificate is installed; the next run runs the deploy hook again");
        return -1;
    }
    fault_point("deployed");
    r->st->last_renewal = r->now;
    state_txn_clear(r->st);
    return state_save(r->st);
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
        case STEP_DEPLOY: rc = step_deploy(r); break;
        default: rc = -1; break;
        }
        if (rc == -1)
            return -1;
    }
}

/* ---- retired pairs ------------------------------------------------------------------ */

int
rotate_housekeeping(struct rotate *r, json_t *destroyed)
{
    struct state *st = r->st;
    struct token_key *cur = NULL;
    X509 *cert = NULL;
    char *cur_id = NULL;
    int n = 0, rc = -1;

    if (st->nretired == 0)
        return 0;
    if (rotate_find_current(r, &cur, &cert) == -1)
        return -1;
    cur_id = cur ? key_hex_id(cur) : NULL;
    for (size_t i = st->nretired; i-- > 0;) {
        struct state_retired *e = &st->retired[i];
        uint8_t *id = NULL;
        size_t idlen;
        int d;

        if (r->now < e->retired_at ||
            (uint64_t)(r->now - e->retired_at) < r->pol->retire_after_secs)
            continue;
        /* Never the current pair, nor one the journal still needs. */
        if ((cur_id && strcmp(cur_id, e->id) == 0) ||
            (st->txn.pending_id && strcmp(st->txn.pending_id, e->id) == 0) ||
            (st->txn.old_id && strcmp(st->txn.old_id, e->id) == 0)) {
            warnmsg("retired key %s (id %s) is in use again; forgetting it, not destroying it",
                e->label, e->id);
            state_retired_remove(st, i);
            if (state_save(st) == -1)
                goto out;
            continue;
        }
        free(st->destroying_id);
        if ((st->destroying_id = strdup(e->id)) == NULL || state_save(st) == -1)
            goto out;
        fault_point("destroy");
        if (hex_decode(e->id, &id, &idlen) == -1)
            goto out;
        d = token_destroy_id(r->e->tok, id, idlen);
        free(id);
        if (d == -1)
            goto out;
        progress("destroyed the retired key pair %s (%d object(s), retired %lld s ago)", e->label,
            d, (long long)(r->now - e->retired_at));
        if (destroyed != NULL)
            json_array_append_new(destroyed, json_string(e->label));
        state_retired_remove(st, i);
        free(st->destroying_id);
        st->destroying_id = NULL;
        if (state_save(st) == -1)
            goto out;
        n++;
    }
    rc = n;
out:
    free(cur_id);
    token_key_free(cur);
    X509_free(cert);
    return rc;
}
