/*
 * cert.c - certificate objects next to a key (read, store, prune, roll
 * back; or a pair and its certificate at a glance, by label or id) and the
 * operations on a whole pair with its own certificates: destroy and relabel.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util.h"

/* Certificates stored with the key's CKA_ID, up to `max`.  -1 after reporting. */
static long
key_certs(struct token *tok, const struct token_key *key, CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE find[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_ID, key->id, key->idlen },
    };
    return tok_find_objects(tok, find, 2, found, max);
}

X509 *
tok_cert_value(struct token *tok, CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *batched)
{
    uint8_t *der = NULL;
    size_t len = 0;
    const unsigned char *p;
    X509 *x = NULL;

    if ((batched != NULL ? tok_batch_copy(tok, obj, batched, TOK_CERT_MAX, &der, &len)
                         : tok_get_attr(tok, obj, CKA_VALUE, &der, &len)) == 0 && der != NULL) {
        p = der;
        x = d2i_X509(NULL, &p, (long)len);
    }
    free(der);
    ERR_clear_error();
    err_clear();
    return x;
}

/*
 * The certificate in a CKO_CERTIFICATE object, or NULL when it cannot be
 * read: its value in one read under TOK_CERT_MAX (16 KiB), else two.
 */
static X509 *
read_cert(struct token *tok, CK_OBJECT_HANDLE obj)
{
    uint8_t *buf = malloc(TOK_CERT_MAX);
    X509 *x;

    if (buf == NULL)
        return NULL;
    CK_ATTRIBUTE a = { CKA_VALUE, buf, TOK_CERT_MAX };
    x = tok_cert_value(tok, obj, tok_read_batch(tok, obj, &a, 1, NULL) == 0 ? &a : NULL);
    free(buf);
    return x;
}

int
token_find_cert(struct token *tok, const struct token_key *key, X509 **out)
{
    CK_OBJECT_HANDLE found[4];
    X509 *best = NULL;
    long n;

    *out = NULL;
    if ((n = key_certs(tok, key, found, 4)) == -1)
        return -1;
    /* Several certificates for one key: the one that expires last. */
    for (long i = 0; i < n; i++) {
        X509 *x = read_cert(tok, found[i]);
        if (x == NULL)
            continue;
        if (best == NULL || ASN1_TIME_compare(X509_get0_notAfter(x),
                                X509_get0_notAfter(best)) > 0) {
            X509_free(best);
            best = x;
        } else {
            X509_free(x);
        }
    }
    if (best == NULL)
        return 1;
    *out = best;
    return 0;
}

/* The objects one label (or id) carries for the glance: a key pair and its certificate. */
#define GLANCE_OBJECTS 3
#define GLANCE_ID_MAX 256   /* a longer CKA_ID is not one p11enroll made: look closer */

int
token_glance_pair(struct token *tok, const char *label, const uint8_t *id, size_t idlen,
    X509 **out)
{
    CK_OBJECT_HANDLE found[GLANCE_OBJECTS + 1], cert = CK_INVALID_HANDLE;
    CK_ATTRIBUTE tmpl = label != NULL ?
        (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) } :
        (CK_ATTRIBUTE){ CKA_ID, (void *)id, idlen };
    uint8_t first[GLANCE_ID_MAX];
    CK_ULONG firstlen = 0;
    unsigned seen = 0;
    long n;

    *out = NULL;
    if ((n = tok_find_objects(tok, &tmpl, 1, found, GLANCE_OBJECTS + 1)) == -1) {
        err_clear();    /* the caller looks closer, and reports what it finds */
        return 1;
    }
    if (n != GLANCE_OBJECTS)
        return 1;
    for (long i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
        uint8_t oid[GLANCE_ID_MAX];
        CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, oid, sizeof(oid) } };
        unsigned bit;

        if (tok_read_batch(tok, found[i], a, 2, NULL) == -1 ||
            a[0].ulValueLen != sizeof(cls) || a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
            a[1].ulValueLen == 0 || a[1].ulValueLen >= sizeof(oid))
            return 1;
        if (i == 0) {
            memcpy(first, oid, a[1].ulValueLen);
            firstlen = a[1].ulValueLen;
        } else if (a[1].ulValueLen != firstlen || memcmp(oid, first, firstlen) != 0) {
            return 1;
        }
        bit = cls == CKO_PRIVATE_KEY ? 1 : cls == CKO_PUBLIC_KEY ? 2 : cls == CKO_CERTIFICATE ? 4 : 8;
        if (seen & bit)
            return 1;
        seen |= bit;
        if (cls == CKO_CERTIFICATE)
            cert = found[i];
    }
    if (seen != 7 || (*out = read_cert(tok, cert)) == NULL)
        return 1;
    return 0;
}

/* Does the certificate object hold exactly this DER? */
static bool
cert_is(struct token *tok, CK_OBJECT_HANDLE obj, const unsigned char *der, size_t len)
{
    uint8_t *v;
    size_t vlen;
    bool same;

    if (tok_get_attr(tok, obj, CKA_VALUE, &v, &vlen) != 0)
        return false;
    same = vlen == len && memcmp(v, der, len) == 0;
    free(v);
    return same;
}

int
token_store_cert(struct token *tok, const struct token_key *key, X509 *cert)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char *value = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
    int lv, ls, li, lsn;
    CK_OBJECT_HANDLE old[8], created;
    long nold;
    CK_RV rv;
    int rc = -1;

    lv = i2d_X509(cert, &value);
    ls = i2d_X509_NAME(X509_get_subject_name(cert), &subject);
    li = i2d_X509_NAME(X509_get_issuer_name(cert), &issuer);
    lsn = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &serial);
    if (lv <= 0 || ls <= 0 || li <= 0 || lsn <= 0) {
        err_runtime("E_CERT", "cannot encode the certificate");
        goto out;
    }
    if ((nold = key_certs(tok, key, old, 8)) == -1)
        goto out;
    for (long i = 0; i < nold; i++)
        if (cert_is(tok, old[i], value, (size_t)lv)) {
            verbose("certificate already stored with key %s", key->label);
            rc = 1;
            goto out;
        }
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
        { CKA_TOKEN, &yes, 1 },
        { CKA_PRIVATE, &no, 1 },
        { CKA_ID, key->id, key->idlen },
        { CKA_LABEL, key->label, strlen(key->label) },
        { CKA_SUBJECT, subject, (CK_ULONG)ls },
        { CKA_ISSUER, issuer, (CK_ULONG)li },
        { CKA_SERIAL_NUMBER, serial, (CK_ULONG)lsn },
        { CKA_VALUE, value, (CK_ULONG)lv },
    };
    rv = tok->fn->C_CreateObject(tok->session, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &created);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: storing the certificate failed: %s", tok->label,
            token_rv_text(rv));
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(value);
    OPENSSL_free(subject);
    OPENSSL_free(issuer);
    OPENSSL_free(serial);
    return rc;
}

/*
 * Destroy the key's certificates that are (`match`) or are not (!`match`)
 * `cert`: pruning the previous ones after a switch, or rolling back.
 */
static int
drop_certs(struct token *tok, const struct token_key *key, X509 *cert, bool match)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der), rc = 0;
    CK_OBJECT_HANDLE objs[8];
    long n;
    CK_RV rv;

    if (len <= 0 || (n = key_certs(tok, key, objs, 8)) == -1) {
        OPENSSL_free(der);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        if (cert_is(tok, objs[i], der, (size_t)len) != match)
            continue;
        if ((rv = tok->fn->C_DestroyObject(tok->session, objs[i])) != CKR_OK) {
            warnmsg("token %s: could not remove a certificate of %s: %s", tok->label,
                key->label, token_rv_text(rv));
            rc = -1;
        }
    }
    OPENSSL_free(der);
    return rc;
}

int
token_prune_certs(struct token *tok, const struct token_key *key, X509 *keep)
{
    return drop_certs(tok, key, keep, false);
}

int
token_remove_cert(struct token *tok, const struct token_key *key, X509 *cert)
{
    return drop_certs(tok, key, cert, true);
}

/* ---- destroy, relabel ------------------------------------------------------------ */

/*
 * The key's own certificates: those with its CKA_ID whose public key is the
 * key's.  Another object that merely shares the id (a CA certificate given
 * id 01 by hand) is not the key's and is never touched.
 */
static long
own_certs(struct token *tok, const struct token_key *key, CK_OBJECT_HANDLE *own, CK_ULONG max)
{
    CK_OBJECT_HANDLE all[16];
    long n = key_certs(tok, key, all, 16), k = 0;

    if (n == -1)
        return -1;
    for (long i = 0; i < n && (CK_ULONG)k < max; i++) {
        X509 *x = read_cert(tok, all[i]);
        if (x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), key->pkey) == 1)
            own[k++] = all[i];
        X509_free(x);
    }
    ERR_clear_error();
    return k;
}

int
token_destroy_key(struct token *tok, struct token_key *key)
{
    CK_OBJECT_HANDLE certs[8];
    long n = own_certs(tok, key, certs, 8);
    CK_RV rv;

    if (n == -1)
        return -1;
    for (long i = 0; i < n; i++)
        if ((rv = tok->fn->C_DestroyObject(tok->session, certs[i])) != CKR_OK)
            goto fail;
    /* Private key last: while it exists the pair can still be found and retried. */
    if ((rv = tok->fn->C_DestroyObject(tok->session, key->pub)) != CKR_OK ||
        (rv = tok->fn->C_DestroyObject(tok->session, key->priv)) != CKR_OK)
        goto fail;
    return (int)n + 2;
fail:
    err_runtime("E_TOKEN", "token %s: destroying key %s: %s", tok->label, key->label,
        token_rv_text(rv));
    return -1;
}

int
token_relabel_key(struct token *tok, struct token_key *key, const char *label)
{
    CK_ATTRIBUTE la = { CKA_LABEL, (void *)label, strlen(label) };
    CK_ATTRIBUTE back = { CKA_LABEL, key->label, strlen(key->label) };
    CK_OBJECT_HANDLE objs[10];
    long n = own_certs(tok, key, objs + 2, 8);
    char *copy;
    CK_RV rv;

    if (n == -1)
        return -1;
    objs[0] = key->pub;
    objs[1] = key->priv;
    for (long i = 0; i < n + 2; i++) {
        if ((rv = tok->fn->C_SetAttributeValue(tok->session, objs[i], &la, 1)) != CKR_OK) {
            bool immutable = rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ACTION_PROHIBITED;
            /* All or nothing: put back the labels already changed. */
            for (long j = 0; j < i; j++)
                (void)tok->fn->C_SetAttributeValue(tok->session, objs[j], &back, 1);
            err_runtime(immutable ? "E_LABEL_IMMUTABLE" : "E_TOKEN",
                "token %s: relabelling key %s to %s: %s", tok->label, key->label, label,
                token_rv_text(rv));
            return immutable ? -2 : -1;
        }
    }
    if ((copy = strdup(label)) == NULL)
        return err_nomem();
    free(key->label);
    key->label = copy;
    free(key->uri);
    key->uri = NULL;
    return tok_finish_key(tok, key);
}

int
token_destroy_id(struct token *tok, const uint8_t *id, size_t idlen)
{
    CK_OBJECT_CLASS classes[2] = { CKO_PUBLIC_KEY, CKO_PRIVATE_KEY };
    struct token_key *key = NULL;
    int r, done = 0;
    CK_RV rv;

    /* A complete pair: it and its own certificates. */
    if ((r = token_find_key(tok, NULL, id, idlen, &key)) == 0) {
        r = token_destroy_key(tok, key);
        token_key_free(key);
        return r;
    }
    err_clear();
    /*
     * Half a pair (generation or destruction interrupted): only key objects
     * with the id, public first; certificates cannot be told apart here.
     */
    for (int c = 0; c < 2; c++) {
        CK_ATTRIBUTE tmpl[2] = {
            { CKA_CLASS, &classes[c], sizeof(classes[c]) },
            { CKA_ID, (void *)id, idlen },
        };
        CK_OBJECT_HANDLE objs[4];
        long n = tok_find_objects(tok, tmpl, 2, objs, 4);
        if (n == -1)
            return -1;
        for (long i = 0; i < n; i++) {
            if ((rv = tok->fn->C_DestroyObject(tok->session, objs[i])) != CKR_OK) {
                err_runtime("E_TOKEN", "token %s: destroying an object of a key pair: %s",
                    tok->label, token_rv_text(rv));
                return -1;
            }
            done++;
        }
    }
    return done;
}

