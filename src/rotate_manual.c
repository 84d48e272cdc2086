/*
 * rotate_manual.c - the order step of a renewal with [ca] type = manual
 * (rotate_manual.h): the CSR out to the CA and waiting, or the CA's
 * certificate in.
 *
 * Crash safety: the CSR path is journalled before the file is written, and
 * txn.waiting_since only once [hooks] csr-ready has succeeded, so a run
 * killed in between writes the request again when it is missing and runs
 * the hook again (at least once, never zero times).  Installing the
 * certificate is enroll_install_staged(), as for ACME; rotate.c's order
 * step finds a certificate already next to the pending key and moves on.
 */
#include "rotate_manual.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "fault.h"
#include "util.h"

bool
rotate_is_manual(const struct profile *p)
{
    return p->ca.type != NULL && strcmp(p->ca.type, "manual") == 0;
}

/* Does the file at path hold a CSR for `key`?  Unreadable or absent: no. */
static bool
csr_is_for(const char *path, const struct token_key *key)
{
    BIO *b = BIO_new_file(path, "r");
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
    bool same = pub != NULL && EVP_PKEY_eq(pub, token_key_public(key)) == 1;

    X509_REQ_free(req);
    BIO_free(b);
    ERR_clear_error();
    return same;
}

/* Install the CA's certificate r->issued for r->e->key.  0 or -1. */
static int
install_issued(struct rotate *r, const char *staged)
{
    struct enroll_result res = { 0 };
    int rc;

    progress("installing the CA's certificate on token %s next to %s", token_label(r->e->tok),
        token_key_label(r->e->key));
    rc = staged != NULL ? enroll_install_staged(r->e, r->issued, r->issued_chain, staged, &res)
                        : enroll_install(r->e, r->issued, r->issued_chain, &res);
    enroll_result_clear(&res);
    return rc;
}

/* The CSR out (journalled first), the hook, and waiting.  0 or -1. */
static int
request(struct rotate *r)
{
    struct state_txn *t = &r->st->txn;
    char *path = enroll_csr_path(r->e), when[32];
    bool wrote = false;
    struct tm tm;
    int rc = -1;

    if (path == NULL)
        return -1;
    if (t->csr_path == NULL || strcmp(t->csr_path, path) != 0) {
        free(t->csr_path);
        t->csr_path = path;
        path = NULL; /* transferred to the journal */
        if (state_save(r->st) == -1)
            goto out;
    }
    if (!csr_is_for(t->csr_path, r->e->key)) {
        if (enroll_write_csr(r->e, t->csr_path) == -1)
            goto out;
        progress("wrote the certificate request for %s to %s", token_key_label(r->e->key),
            t->csr_path);
        wrote = true;
    }
    fault_point("csr-written");
    if (t->waiting_since == 0 || wrote) {
        if (enroll_csr_ready_hook(r->e, t->csr_path) == -1)
            goto out;
        fault_point("csr-ready");
        if (t->waiting_since == 0) {
            t->waiting_since = r->now;
            if (state_save(r->st) == -1)
                goto out;
        }
    }
    if (gmtime_r(&t->waiting_since, &tm) == NULL ||
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, sizeof(when), "?");
    progress("waiting for the CA since %s: submit %s, then run 'p11enroll import --profile %s "
        "--cert ISSUED.pem'", when, t->csr_path, r->e->prof->name);
    r->waiting = true;
    rc = 0;
out:
    free(path);
    return rc;
}

int
rotate_manual_order(struct rotate *r, const char *staged)
{
    if (r->issued != NULL)
        return install_issued(r, staged);
    return request(r);
}

int
rotate_manual_check_done(struct rotate *r, X509 *leaf)
{
    const struct state_txn *t = &r->st->txn;
    struct token_key *key = NULL;
    X509 *cert = NULL;
    int found, rc = -1;

    if (t->rotate)
        found = rotate_find_id(r->e->tok, t->pending_id, &key);
    else
        found = rotate_find_current(r, &key, &cert);
    if (found == 1)
        err_runtime("E_STATE", "the renewal's key (id %s) is no longer on token %s",
            t->pending_id ? t->pending_id : "-", token_label(r->e->tok));
    if (found != 0)
        goto out;
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), token_key_public(key)) != 1) {
        err_runtime("E_CERT_KEY", "the renewal in progress has installed its certificate "
            "already, and this certificate is not for its key %s; nothing changed",
            token_key_label(key));
        goto out;
    }
    rc = 0;
out:
    X509_free(cert);
    token_key_free(key);
    return rc;
}

void
rotate_manual_forget(struct rotate *r)
{
    const char *path = r->st->txn.csr_path;

    if (path != NULL && unlink(path) == -1 && errno != ENOENT)
        warnmsg("%s: %s", path, strerror(errno));
}
