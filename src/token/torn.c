/*
 * torn.c - what a crash leaves on a token whose objects are not written
 * atomically (SoftHSM's file backend rewrites an object file in place: a
 * kill -9 leaves it empty, and the object is gone, or half written, and
 * some of its attributes cannot be read): rebuilding a key's missing public
 * half from its certificate, destroying every object of an id p11enroll
 * made or what is left of a pair whose private key is gone, and finding
 * the objects nothing can read or use (from one pass over the token's
 * objects, token_objects_read(): one read per object).
 *
 * Only public attributes are read and only public objects created: the
 * private key is never read, copied or wrapped.
 */
#include "token_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "util.h"

/* Objects of `cls` with CKA_ID id (up to max).  Count or -1. */
static long
find_class_id(struct token *tok, CK_OBJECT_CLASS cls, const uint8_t *id, size_t idlen,
    CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_ATTRIBUTE tmpl[2] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_ID, (void *)id, idlen },
    };
    return tok_find_objects(tok, tmpl, 2, found, max);
}

/* The first certificate with the id that parses, or NULL. */
static X509 *
cert_of_id(struct token *tok, const uint8_t *id, size_t idlen)
{
    CK_OBJECT_HANDLE objs[8];
    long n = find_class_id(tok, CKO_CERTIFICATE, id, idlen, objs, 8);
    X509 *x = NULL;

    for (long i = 0; i < n && x == NULL; i++)
        x = tok_cert_value(tok, objs[i], NULL);
    err_clear();    /* a failed search */
    return x;
}

/* Does the private key's public attribute `type` equal buf?  (RSA modulus, EC params.) */
static bool
priv_attr_is(struct token *tok, CK_OBJECT_HANDLE priv, CK_ATTRIBUTE_TYPE type,
    const uint8_t *buf, size_t len)
{
    uint8_t *v = NULL;
    size_t vlen;
    bool same = tok_get_attr(tok, priv, type, &v, &vlen) == 0 && v != NULL && vlen == len &&
                memcmp(v, buf, len) == 0;
    free(v);
    err_clear();
    return same;
}

/*
 * Create the public key object for `pub` (from the certificate) next to
 * the private key `priv`, with its id and label, after checking what the
 * private key tells about itself (RSA: its modulus; EC: its curve).
 * 0, 1 (the certificate is not for this private key), -1 after reporting.
 */
static int
create_public(struct token *tok, CK_OBJECT_HANDLE priv, EVP_PKEY *pub, const uint8_t *id,
    size_t idlen, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_TYPE kt;
    uint8_t *a = NULL, *b = NULL, pt[2 + 133], params[16];
    size_t alen = 0, blen = 0, ptlen = 0;
    BIGNUM *n = NULL, *e = NULL;
    int rc = 1, id_nid = EVP_PKEY_get_base_id(pub);
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    if (id_nid == EVP_PKEY_RSA) {
        kt = CKK_RSA;
        if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &e))
            goto out;
        alen = (size_t)BN_num_bytes(n);
        blen = (size_t)BN_num_bytes(e);
        if ((a = malloc(alen)) == NULL || (b = malloc(blen)) == NULL)
            goto out;
        BN_bn2bin(n, a);
        BN_bn2bin(e, b);
        if (!priv_attr_is(tok, priv, CKA_MODULUS, a, alen))
            goto out;
    } else if (id_nid == EVP_PKEY_EC || id_nid == EVP_PKEY_ED25519) {
        char group[64];
        unsigned char *op = params;
        int nid, plen;
        size_t raw;
        kt = id_nid == EVP_PKEY_EC ? CKK_EC : CKK_EC_EDWARDS;
        if (id_nid == EVP_PKEY_EC) {
            if (!EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                    sizeof(group), NULL) || (nid = OBJ_sn2nid(group)) == NID_undef)
                goto out;
        } else {
            nid = NID_ED25519;
        }
        if ((plen = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), NULL)) <= 0 || plen > (int)sizeof(params))
            goto out;
        i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &op);
        if (!priv_attr_is(tok, priv, CKA_EC_PARAMS, params, (size_t)plen))
            goto out;
        if (id_nid == EVP_PKEY_EC) {
            EVP_PKEY_set_utf8_string_param(pub, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                "uncompressed");
            if (!EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt + 2,
                    sizeof(pt) - 3, &raw))
                goto out;
        } else {
            raw = sizeof(pt) - 3;
            if (!EVP_PKEY_get_raw_public_key(pub, pt + 2, &raw))
                goto out;
        }
        if (raw > 127) { /* P-521: 133 bytes, a long-form length */
            memmove(pt + 3, pt + 2, raw);
            pt[0] = 0x04, pt[1] = 0x81, pt[2] = (uint8_t)raw;
            ptlen = raw + 3;
        } else {
            pt[0] = 0x04, pt[1] = (uint8_t)raw;
            ptlen = raw + 2;
        }
        alen = (size_t)plen;
    } else {
        goto out;
    }
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_PRIVATE, &no, sizeof(no) },
        { CKA_VERIFY, &yes, sizeof(yes) },
        { CKA_ID, (void *)id, idlen },
        { CKA_LABEL, (void *)label, strlen(label) },
        { kt == CKK_RSA ? CKA_MODULUS : CKA_EC_PARAMS, kt == CKK_RSA ? a : params, alen },
        { kt == CKK_RSA ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, kt == CKK_RSA ? b : pt,
          kt == CKK_RSA ? blen : ptlen },
    };
    if ((rv = tok->fn->C_CreateObject(tok->session, t, 9, &h)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: rebuilding the public key of %s: %s", tok->label,
            label, token_rv_text(rv));
        rc = -1;
        goto out;
    }
    rc = 0;
out:
    free(a);
    free(b);
    BN_free(n);
    BN_free(e);
    ERR_clear_error();
    return rc;
}

int
token_rebuild_public(struct token *tok, const uint8_t *id, size_t idlen, struct token_key **out)
{
    CK_OBJECT_HANDLE priv[2], pubs[4];
    X509 *cert = NULL;
    char *label = NULL;
    long np, nq;
    int rc = 1, c;
    CK_RV rv;

    *out = NULL;
    if ((np = find_class_id(tok, CKO_PRIVATE_KEY, id, idlen, priv, 2)) == -1)
        return -1;
    if (np != 1)
        return 1;
    if (tok_load_key(tok, priv[0], out) == 0)
        return 0; /* a whole pair: nothing to rebuild */
    err_clear();
    if ((cert = cert_of_id(tok, id, idlen)) == NULL)
        return 1;
    if (tok_get_attr(tok, priv[0], CKA_LABEL, (uint8_t **)&label, &(size_t){ 0 }) == -1)
        goto out;
    if (label == NULL && (label = strdup("")) == NULL)
        goto out;
    /* The torn remains of the public half go first: the rebuilt one replaces them. */
    if ((nq = find_class_id(tok, CKO_PUBLIC_KEY, id, idlen, pubs, 4)) == -1)
        goto fail;
    for (long i = 0; i < nq; i++)
        if ((rv = tok->fn->C_DestroyObject(tok->session, pubs[i])) != CKR_OK) {
            err_runtime("E_TOKEN", "token %s: removing the unreadable public key of %s: %s",
                tok->label, label, token_rv_text(rv));
            goto fail;
        }
    if ((c = create_public(tok, priv[0], X509_get0_pubkey(cert), id, idlen, label)) != 0) {
        rc = c;
        goto out;
    }
    warnmsg("token %s: key %s had lost its public key object (a torn write?); rebuilt it from "
        "its certificate", tok->label, label);
    rc = tok_load_key(tok, priv[0], out) == 0 ? 0 : -1;
    goto out;
fail:
    rc = -1;
out:
    X509_free(cert);
    free(label);
    return rc;
}

int
token_destroy_own_id(struct token *tok, const uint8_t *id, size_t idlen)
{
    CK_OBJECT_HANDLE certs[16];
    long n = find_class_id(tok, CKO_CERTIFICATE, id, idlen, certs, 16);
    int keys;
    CK_RV rv;

    if (n == -1)
        return -1;
    /* Every certificate with the id first: token_destroy_id() keeps those of half a pair. */
    for (long i = 0; i < n; i++)
        if ((rv = tok->fn->C_DestroyObject(tok->session, certs[i])) != CKR_OK) {
            err_runtime("E_TOKEN", "token %s: destroying a certificate of a key pair: %s",
                tok->label, token_rv_text(rv));
            return -1;
        }
    if ((keys = token_destroy_id(tok, id, idlen)) == -1)
        return -1;
    return (int)n + keys;
}

/* ---- objects nothing can use ------------------------------------------------------- */

static const char *
class_name(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_PRIVATE_KEY: return "private key";
    case CKO_PUBLIC_KEY: return "public key";
    case CKO_CERTIFICATE: return "certificate";
    default: return "object";
    }
}

/* Is `label` (len bytes) one of `ours`, or "<one of ours>.<anything>"? */
static bool
label_is_ours(const uint8_t *label, size_t len, const char *const *ours)
{
    for (; ours != NULL && *ours != NULL; ours++) {
        size_t n = strlen(*ours);
        if (len >= n && memcmp(label, *ours, n) == 0 && (len == n || label[n] == '.'))
            return true;
    }
    return false;
}

/* Is `label` (len bytes) exactly one of `labels`? */
static bool
label_in(const uint8_t *label, size_t len, const char *const *labels)
{
    for (; labels != NULL && *labels != NULL; labels++)
        if (strlen(*labels) == len && memcmp(label, *labels, len) == 0)
            return true;
    return false;
}

int
token_destroy_half(struct token *tok, const uint8_t *id, size_t idlen,
    const char *const *labels)
{
    static const CK_OBJECT_CLASS classes[2] = { CKO_CERTIFICATE, CKO_PUBLIC_KEY };
    CK_OBJECT_HANDLE objs[16];
    long n = find_class_id(tok, CKO_PRIVATE_KEY, id, idlen, objs, 1);
    int done = 0;
    CK_RV rv;

    if (n != 0)
        return n == -1 ? -1 : 0; /* the private key is there: not half a pair */
    for (int c = 0; c < 2; c++) {
        if ((n = find_class_id(tok, classes[c], id, idlen, objs, 16)) == -1)
            return -1;
        for (long i = 0; i < n; i++) {
            uint8_t *label = NULL;
            size_t llen = 0;
            bool ours = tok_get_attr(tok, objs[i], CKA_LABEL, &label, &llen) == 0 &&
                        label != NULL && label_in(label, llen, labels);
            free(label);
            err_clear();
            if (!ours)
                continue;
            if ((rv = tok->fn->C_DestroyObject(tok->session, objs[i])) != CKR_OK) {
                err_runtime("E_TOKEN", "token %s: destroying the %s of a key whose private "
                    "key is gone: %s", tok->label, class_name(classes[c]), token_rv_text(rv));
                return -1;
            }
            done++;
        }
    }
    return done;
}

/* Does the certificate object hold a certificate that parses?  (batched: as tok_cert_value().) */
static bool
cert_readable(struct token *tok, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *batched)
{
    X509 *x = tok_cert_value(tok, h, batched);

    X509_free(x);
    return x != NULL;
}

/* One object as the stray scan saw it. */
struct seen {
    CK_OBJECT_CLASS cls;        /* (CK_OBJECT_CLASS)-1: unreadable */
    const char *why;            /* a stray for what it says of itself, or NULL */
    bool check_private;         /* p11enroll's public key or certificate: is its private key there? */
    uint8_t *id;                /* for private keys and check_private */
    size_t idlen;
};

/*
 * The object's class, label and id (and a certificate's value when the
 * pass found it with the certificates) as the pass read them, or when the
 * token refused that read as a whole, read one by one as before; then
 * judge it (token.h, struct token_stray) by all but the private key it may
 * lack, which needs every object seen.
 */
static void
see_object(struct token *tok, const struct tok_obj *obj, uint8_t *buf,
    const char *const *ours, struct seen *o)
{
    CK_OBJECT_HANDLE h = obj->h;
    bool cert = obj->found == CKO_CERTIFICATE;
    CK_ATTRIBUTE a[4] = {
        { CKA_CLASS, &o->cls, sizeof(o->cls) },
        { CKA_LABEL, buf, TOK_PUBVAL_MAX },
        { CKA_ID, buf + TOK_PUBVAL_MAX, TOK_PUBVAL_MAX },
        { CKA_VALUE, buf + 2 * TOK_PUBVAL_MAX, TOK_CERT_MAX },
    };
    bool whole = tok_obj_fill(obj, a, cert ? 4 : 3) == 0;
    uint8_t *label = NULL, *id = NULL;
    size_t llen = 0, ilen = 0;
    int rl, ri;

    if ((!whole && tok->fn->C_GetAttributeValue(tok->session, h, a, 1) != CKR_OK) ||
        a[0].ulValueLen != sizeof(o->cls)) {
        o->cls = (CK_OBJECT_CLASS)-1;
        o->why = "its class cannot be read";
        return;
    }
    if (o->cls != CKO_PRIVATE_KEY && o->cls != CKO_PUBLIC_KEY && o->cls != CKO_CERTIFICATE)
        return;
    rl = whole ? tok_batch_copy(tok, h, &a[1], TOK_PUBVAL_MAX, &label, &llen)
               : tok_get_attr(tok, h, CKA_LABEL, &label, &llen);
    ri = whole ? tok_batch_copy(tok, h, &a[2], TOK_PUBVAL_MAX, &id, &ilen)
               : tok_get_attr(tok, h, CKA_ID, &id, &ilen);
    err_clear();
    bool has_label = rl == 0 && llen > 0, has_id = ri == 0 && ilen > 0;
    bool mine = has_label && label_is_ours(label, llen, ours);
    if (rl != 0 && ri != 0)
        o->why = "its label and id cannot be read";
    else if (!has_label && !has_id)
        o->why = "it has neither a label nor an id";
    else if (mine && !has_id)
        o->why = "it has p11enroll's label but no id";
    else if (mine && o->cls == CKO_CERTIFICATE &&
             !cert_readable(tok, h, whole && cert ? &a[3] : NULL))
        o->why = "it has p11enroll's label but its certificate cannot be read";
    else if (mine && o->cls != CKO_PRIVATE_KEY)
        o->check_private = true;
    if (has_id && (o->check_private || o->cls == CKO_PRIVATE_KEY)) {
        o->id = id;
        o->idlen = ilen;
        id = NULL; /* transferred */
    }
    free(label);
    free(id);
}

/* Did the scan see a private key with this CKA_ID? */
static bool
seen_private(const struct seen *all, size_t n, const uint8_t *id, size_t idlen)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].cls == CKO_PRIVATE_KEY && all[i].id != NULL && all[i].idlen == idlen &&
            memcmp(all[i].id, id, idlen) == 0)
            return true;
    return false;
}

/*
 * Every object of the pass (issue 12: no search and no second read per
 * object; the certificates' values came with their class).
 */
int
token_find_strays(struct token *tok, const struct token_objects *objs,
    const char *const *ours, struct token_stray **out, size_t *n)
{
    struct token_objects *mine = NULL;
    struct seen *seen = NULL;
    struct token_stray *s = NULL;
    uint8_t *buf = malloc(2 * TOK_PUBVAL_MAX + TOK_CERT_MAX);
    size_t count = 0, k = 0;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (buf == NULL) {
        err_nomem();
        goto out;
    }
    if (objs == NULL && token_objects_read(tok, TOKEN_OBJ_ALL, &mine) == -1)
        goto out;
    if (objs == NULL)
        objs = mine;
    if (!(objs->what & TOKEN_OBJ_ALL)) {
        err_runtime("E_TOKEN", "internal: strays from a pass that did not read every object");
        goto out;
    }
    count = objs->n;
    if ((seen = calloc(count + 1, sizeof(*seen))) == NULL ||
        (s = calloc(count + 1, sizeof(*s))) == NULL) {
        err_nomem();
        goto out;
    }
    for (size_t i = 0; i < count; i++)
        see_object(tok, &objs->o[i], buf, ours, &seen[i]);
    for (size_t i = 0; i < count; i++) {
        struct seen *o = &seen[i];
        if (o->check_private && !seen_private(seen, count, o->id, o->idlen))
            o->why = "it has p11enroll's label but its private key is gone";
        if (o->why == NULL)
            continue;
        s[k].handle = objs->o[i].h;
        s[k].what = class_name(o->cls);
        s[k].why = o->why;
        k++;
    }
    *out = s;
    s = NULL; /* transferred */
    *n = k;
    rc = 0;
out:
    for (size_t i = 0; seen != NULL && i < count; i++)
        free(seen[i].id);
    free(seen);
    token_objects_free(mine);
    free(buf);
    free(s);
    return rc;
}

int
token_destroy_stray(struct token *tok, const struct token_stray *s)
{
    CK_RV rv = tok->fn->C_DestroyObject(tok->session, s->handle);

    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: destroying a %s that %s: %s", tok->label, s->what,
            s->why, token_rv_text(rv));
        return -1;
    }
    return 0;
}
