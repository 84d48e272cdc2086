/*
 * rotate_files.c - the last two steps of a renewal (rotate.c has the order
 * of them all): the [output] files written from the certificate now on the
 * token next to L, with the chain staged at the order, and then the deploy
 * hook, after which the journal closes.  Both are idempotent: a rerun after
 * a kill writes the same files and runs the hook again.
 */
#include "rotate_int.h"

#include <unistd.h>

#include <openssl/x509.h>

#include "csr.h"
#include "enroll.h"
#include "fault.h"
#include "token.h"
#include "util.h"

/*
 * The chain to write with `leaf`: the one staged at the order (when it is
 * this leaf's), else the current [output] chain file when it links to the
 * leaf (same intermediate), else none (with a warning).  *chain may be NULL.
 */
static void
files_chain(struct rotate *r, X509 *leaf, STACK_OF(X509) **chain)
{
    const char *outchain = r->e->prof->output.chain;
    char *staged = rotate_state_file(r, STAGED_CHAIN);
    X509 *first = NULL;
    STACK_OF(X509) *rest = NULL;

    *chain = NULL;
    if (staged != NULL && access(staged, F_OK) == 0 &&
        cert_read(staged, "the staged chain", &first, &rest) == 0 && X509_cmp(first, leaf) == 0 &&
        cert_check_chain(leaf, rest) == 0) {
        *chain = rest;
        rest = NULL; /* transferred */
        goto out;
    }
    X509_free(first);
    first = NULL;
    sk_X509_pop_free(rest, X509_free);
    rest = NULL;
    err_clear();
    /* The [output] chain file holds the chain alone: its first certificate too. */
    if (outchain != NULL && access(outchain, F_OK) == 0 &&
        cert_read(outchain, "[output] chain", &first, &rest) == 0) {
        if (rest == NULL)
            rest = sk_X509_new_null();
        if (rest != NULL && sk_X509_insert(rest, first, 0) > 0) {
            first = NULL; /* transferred */
            if (cert_check_chain(leaf, rest) == 0) {
                warnmsg("the staged chain of the new certificate is missing; using the chain "
                    "in %s, which links to it", outchain);
                *chain = rest;
                rest = NULL; /* transferred */
                goto out;
            }
        }
    }
    err_clear();
    warnmsg("the chain of the new certificate is unknown: [output] chain/fullchain hold the "
        "certificate alone until the next renewal");
out:
    X509_free(first);
    sk_X509_pop_free(rest, X509_free);
    free(staged);
}

/*
 * The new pair is L but its certificate is gone: a torn write (SoftHSM
 * rewrites an object's file in place) during its relabel.  The issued leaf
 * is still staged in <state-dir>/renew-next.pem: store it again when it is
 * this key's.  0 (*cert set, or left NULL when there is nothing to restore
 * from), -1 after reporting.
 */
static int
restore_cert(struct rotate *r, const struct token_key *key, X509 **cert)
{
    char *staged = rotate_state_file(r, STAGED_CHAIN);
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = NULL;
    int rc = 0;

    if (staged == NULL || access(staged, F_OK) == -1 ||
        cert_read(staged, "the staged chain", &leaf, &rest) == -1 ||
        EVP_PKEY_eq(X509_get0_pubkey(leaf), token_key_public(key)) != 1) {
        err_clear();
        goto out;
    }
    if (token_store_cert(r->e->tok, key, leaf) == -1) {
        rc = -1;
        goto out;
    }
    warnmsg("the certificate of %s was lost on token %s (a torn write?); stored it again from "
        "%s", r->label, token_label(r->e->tok), staged);
    *cert = leaf;
    leaf = NULL; /* transferred */
out:
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    free(staged);
    return rc;
}

/*
 * Write the [output] files from the current pair's certificate on the
 * token, now that L names that pair.  Idempotent: a rerun writes the same
 * files again.
 */
int
rotate_step_files(struct rotate *r)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    int found, rc = -1;

    fault_point("files");
    if ((found = rotate_find_current(r, &key, &cert)) == 0 && cert == NULL &&
        restore_cert(r, key, &cert) == -1)
        goto out;
    if (found != 0 || cert == NULL) {
        if (found != -1)
            err_runtime("E_NO_KEY", "no current key %s with a certificate on token %s after "
                "the switch", r->label, token_label(r->e->tok));
        goto out;
    }
    if (!rotate_key_has_id(key, r->st->txn.pending_id)) {
        err_runtime("E_STATE", "after the switch, %s on token %s is not the new key (id %s)",
            r->label, token_label(r->e->tok), r->st->txn.pending_id);
        goto out;
    }
    files_chain(r, cert, &chain);
    progress("renewal: writing the [output] files for %s", r->label);
    if (enroll_write_outputs(r->e, cert, chain) == -1) {
        warnmsg("the new key is current but the [output] files still hold the old "
            "certificate; the next run writes them again");
        goto out;
    }
    fault_point("filed");
    if ((rc = rotate_save_step(r, STEP_DEPLOY)) == 0 && rotate_unlink_state_file(r, STAGED_CHAIN) == -1)
        err_clear(); /* a stale staged chain is harmless: rotate_begin() removes it */
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    token_key_free(key);
    return rc;
}

/* Run [hooks] deploy for the current pair, then close the journal.  0 or -1. */
int
rotate_step_deploy(struct rotate *r)
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
