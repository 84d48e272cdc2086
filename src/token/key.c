/*
 * key.c - key pairs on the token: finding a pair by label, id or public
 * key value, decoding its public key object into an EVP_PKEY, its URI and
 * fingerprint, and reading its protection flags.
 *
 * Only public attributes come off the token: nothing here reads a private
 * key's value.
 */
#include "token_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "tokenfam.h"
#include "util.h"

/* The curve OID in CKA_EC_PARAMS -> OpenSSL NID (or NID_ED25519). */
static int
ec_params_nid(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    ASN1_OBJECT *obj;
    int nid = NID_undef;

    /* PKCS#11 3.0 also allows a PrintableString curve name for Edwards keys. */
    if (len >= 2 && der[0] == 0x13) {
        if (len == 2 + 12 && memcmp(der + 2, "edwards25519", 12) == 0)
            return NID_ED25519;
        return NID_undef;
    }
    if ((obj = d2i_ASN1_OBJECT(NULL, &p, (long)len)) != NULL) {
        nid = OBJ_obj2nid(obj);
        ASN1_OBJECT_free(obj);
    }
    return nid;
}

/*
 * The point from CKA_EC_POINT: PKCS#11 says a DER OCTET STRING, some tokens
 * return the raw point.  `rawlen` is the expected raw length.
 */
static int
ec_point(const uint8_t *v, size_t len, size_t rawlen, const uint8_t **pt)
{
    if (len == rawlen) {
        *pt = v;
        return 0;
    }
    if (rawlen < 128 && len == rawlen + 2 && v[0] == 0x04 && v[1] == rawlen) {
        *pt = v + 2;
        return 0;
    }
    if (rawlen >= 128 && rawlen < 256 && len == rawlen + 3 && v[0] == 0x04 && v[1] == 0x81 &&
        v[2] == rawlen) {
        *pt = v + 3;
        return 0;
    }
    /* tpm2-pkcs11 1.9.0 writes the P-521 point's length (133) in short
     * form: 04 85 <133 bytes>, invalid DER but unambiguous. */
    if (rawlen >= 128 && rawlen < 256 && len == rawlen + 2 && v[0] == 0x04 &&
        v[1] == rawlen) {
        *pt = v + 2;
        return 0;
    }
    return -1;
}

static EVP_PKEY *
pkey_from_params(const char *alg, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *pkey = NULL;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int
tok_set_public(struct token *tok, struct token_key *key, CK_KEY_TYPE kt, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = NULL, *e = NULL;
    int rc = -1;

    if (bld == NULL)
        goto out;
    if (kt == CKK_RSA) {
        if (alen == 0 || blen == 0)
            goto bad;
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            (key->pkey = pkey_from_params("RSA", bld)) == NULL)
            goto bad;
        unsigned bits = (unsigned)EVP_PKEY_get_bits(key->pkey);
        key->type = keytype_lookup(KEY_RSA, bits);
        snprintf(key->type_name, sizeof(key->type_name), "rsa:%u", bits);
    } else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
        const uint8_t *pt;
        int nid;
        if (alen == 0 || blen == 0)
            goto bad;
        nid = ec_params_nid(a, alen);
        if (kt == CKK_EC_EDWARDS || nid == NID_ED25519) {
            if (nid != NID_ED25519 || ec_point(b, blen, 32, &pt) == -1 ||
                (key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, 32)) == NULL)
                goto bad;
            key->type = keytype_parse("ed25519");
            snprintf(key->type_name, sizeof(key->type_name), "ed25519");
        } else {
            const char *group = OBJ_nid2sn(nid);
            EC_GROUP *g = nid != NID_undef ? EC_GROUP_new_by_curve_name(nid) : NULL;
            size_t fieldbytes = g ? ((size_t)EC_GROUP_get_degree(g) + 7) / 8 : 0;
            EC_GROUP_free(g);
            if (fieldbytes == 0 || ec_point(b, blen, 2 * fieldbytes + 1, &pt) == -1 ||
                !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
                !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
                    2 * fieldbytes + 1) ||
                (key->pkey = pkey_from_params("EC", bld)) == NULL)
                goto bad;
            unsigned bits = (unsigned)EVP_PKEY_get_bits(key->pkey);
            key->type = keytype_lookup(KEY_EC, bits);
            if (key->type != NULL && strcmp(key->type->curve, group) != 0)
                key->type = NULL;
            snprintf(key->type_name, sizeof(key->type_name), "ec:%s",
                key->type ? key->type->name + 3 : group);
        }
    } else {
        snprintf(key->type_name, sizeof(key->type_name), "keytype-0x%lx", kt);
        err_runtime("E_KEY", "key %s: key type 0x%lx is not supported", key->label, kt);
        goto out;
    }
    rc = 0;
    goto out;
bad:
    err_runtime("E_KEY", "key %s on token %s: the public key object is malformed or unsupported",
        key->label, tok->label);
out:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

/*
 * Read the public key object's values for a key of type `kt` in one
 * C_GetAttributeValue (modulus and exponent, or curve and point) and build
 * the EVP_PKEY.  0, or -1 after reporting.
 */
static int
load_public(struct token *tok, struct token_key *key, CK_KEY_TYPE kt)
{
    uint8_t v[2][TOK_PUBVAL_MAX];
    bool rsa = kt == CKK_RSA;
    CK_ATTRIBUTE a[] = {
        { rsa ? CKA_MODULUS : CKA_EC_PARAMS, v[0], sizeof(v[0]) },
        { rsa ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT, v[1], sizeof(v[1]) },
    };

    if (kt != CKK_RSA && kt != CKK_EC && kt != CKK_EC_EDWARDS)
        return tok_set_public(tok, key, kt, NULL, 0, NULL, 0);
    if (tok_get_attrs(tok, key->pub, a, 2) == -1)
        return -1;
    for (size_t i = 0; i < 2; i++)
        if (a[i].ulValueLen >= sizeof(v[0]))    /* absent, too long, or ambiguous */
            a[i].ulValueLen = 0;
    return tok_set_public(tok, key, kt, v[0], a[0].ulValueLen, v[1], a[1].ulValueLen);
}

int
tok_finish_key(struct token *tok, struct token_key *key)
{
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int len;
    P11KitUri *uri;
    CK_ATTRIBUTE attrs[2];
    CK_TOKEN_INFO *ti;
    char *hex;

    if ((len = i2d_PUBKEY(key->pkey, &der)) <= 0) {
        err_runtime("E_KEY", "key %s: cannot encode its public key", key->label);
        return -1;
    }
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    if ((hex = hex_encode(md, sizeof(md))) == NULL)
        return err_nomem();
    memcpy(key->spki_sha256, hex, 65);
    free(hex);

    if ((uri = p11_kit_uri_new()) == NULL)
        return err_nomem();
    ti = p11_kit_uri_get_token_info(uri);
    memcpy(ti->label, tok->info.label, sizeof(ti->label));
    memcpy(ti->serialNumber, tok->info.serialNumber, sizeof(ti->serialNumber));
    attrs[0] = (CK_ATTRIBUTE){ CKA_ID, key->id, key->idlen };
    attrs[1] = (CK_ATTRIBUTE){ CKA_LABEL, key->label, strlen(key->label) };
    p11_kit_uri_set_attributes(uri, attrs, 2);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE ca = { CKA_CLASS, &cls, sizeof(cls) };
    p11_kit_uri_set_attribute(uri, &ca);
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &key->uri) != P11_KIT_URI_OK)
        key->uri = NULL;
    p11_kit_uri_free(uri);
    return key->uri != NULL ? 0 : -1;
}

/*
 * A copy of a variable-length value read by tok_get_attrs() into buf[cap],
 * NUL-terminated; a value that filled the buffer is read again alone (too
 * long, or SoftHSM's untouched length for an empty value).  0, 1 when the
 * object does not have it, -1 after reporting.
 */
static int
batched_value(struct token *tok, CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *a, size_t cap,
    uint8_t **out, size_t *outlen)
{
    if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION || a->ulValueLen >= cap)
        return tok_get_attr(tok, obj, a->type, out, outlen);
    *outlen = a->ulValueLen;
    if ((*out = malloc(*outlen + 1)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    memcpy(*out, a->pValue, *outlen);
    (*out)[*outlen] = '\0';
    return 0;
}

/* The public key object with the key's CKA_ID: exactly one.  0 or -1 (reported). */
static int
find_public_half(struct token *tok, struct token_key *key)
{
    CK_OBJECT_CLASS pubcls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &pubcls, sizeof(pubcls) },
        { CKA_ID, key->id, key->idlen },
    };
    CK_OBJECT_HANDLE found[2];
    long n;

    if ((n = tok_find_objects(tok, tmpl, 2, found, 2)) == -1)
        return -1;
    if (n != 1) {
        if (n == 0)
            err_runtime("E_KEY", "key %s on token %s has no public key object with the same "
                "CKA_ID%s", key->label, tok->label, tok->family != NULL &&
                tok->family->no_public_key_object ? " (this token keeps the public key only in "
                "its certificate, which p11enroll cannot use yet)" : "");
        else
            err_runtime("E_KEY", "key %s on token %s: several public key objects share its "
                "CKA_ID", key->label, tok->label);
        return -1;
    }
    key->pub = found[0];
    return 0;
}

/*
 * Complete a key from its private key handle: one C_GetAttributeValue for
 * its id, label, key type and CKA_ALWAYS_AUTHENTICATE, one search for the
 * public key object, one read of its values.
 */
int
tok_load_key(struct token *tok, CK_OBJECT_HANDLE priv, struct token_key **out)
{
    struct token_key *key = calloc(1, sizeof(*key));
    CK_KEY_TYPE kt = 0;
    CK_BBOOL always = CK_FALSE;
    uint8_t idbuf[TOK_PUBVAL_MAX], labelbuf[TOK_PUBVAL_MAX];
    CK_ATTRIBUTE a[] = {
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always) },
        { CKA_ID, idbuf, sizeof(idbuf) },
        { CKA_LABEL, labelbuf, sizeof(labelbuf) },
    };

    *out = NULL;
    if (key == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    key->priv = priv;
    if (tok_get_attrs(tok, priv, a, 4) == -1 ||
        batched_value(tok, priv, &a[2], sizeof(idbuf), &key->id, &key->idlen) == -1 ||
        batched_value(tok, priv, &a[3], sizeof(labelbuf), (uint8_t **)&key->label,
            &(size_t){ 0 }) == -1)
        goto fail;
    if (key->label == NULL && (key->label = strdup("")) == NULL) {
        err_nomem();
        goto fail;
    }
    if (a[0].ulValueLen != sizeof(kt)) {
        err_runtime("E_KEY", "key %s on token %s does not report its key type", key->label,
            tok->label);
        goto fail;
    }
    key->always_auth = a[1].ulValueLen == sizeof(always) && always == CK_TRUE;
    if (key->id == NULL || key->idlen == 0) {
        err_runtime("E_KEY", "key %s on token %s has no CKA_ID; cannot pair it with its public key",
            key->label, tok->label);
        goto fail;
    }
    if (find_public_half(tok, key) == -1 || load_public(tok, key, kt) == -1 ||
        tok_finish_key(tok, key) == -1)
        goto fail;
    *out = key;
    return 0;
fail:
    token_key_free(key);
    return -1;
}

int
tok_key_generated(struct token *tok, const struct tok_pair *p, struct token_key **out)
{
    struct token_key *key = calloc(1, sizeof(*key));

    *out = NULL;
    if (key == NULL || (key->label = strdup(p->label)) == NULL ||
        (key->id = malloc(p->idlen)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    memcpy(key->id, p->id, p->idlen);
    key->idlen = p->idlen;
    key->priv = p->priv;
    key->pub = p->pub;
    key->always_auth = p->always_auth;
    if (p->alen != 0 && p->blen != 0) {
        if (tok_set_public(tok, key, p->kt, p->a, p->alen, p->b, p->blen) == -1)
            goto fail;
    } else if (load_public(tok, key, p->kt) == -1) {
        goto fail;
    }
    if (tok_finish_key(tok, key) == -1)
        goto fail;
    *out = key;
    return 0;
fail:
    token_key_free(key);
    return -1;
}

long
tok_find_class(struct token *tok, CK_OBJECT_CLASS cls, const char *label, const uint8_t *id,
    size_t idlen, CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) } };

    if (label != NULL)
        tmpl[1] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
    else
        tmpl[1] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, idlen };
    return tok_find_objects(tok, tmpl, 2, found, max);
}

int
token_find_key(struct token *tok, const char *label, const uint8_t *id, size_t idlen,
    struct token_key **out)
{
    CK_OBJECT_HANDLE found[2];
    long n;

    *out = NULL;
    if ((n = tok_find_class(tok, CKO_PRIVATE_KEY, label, id, idlen, found, 2)) == -1)
        return -1;
    if (n == 0)
        return 1;
    if (n > 1) {
        err_runtime("E_AMBIGUOUS_KEY", "several private keys on token %s have %s %s; "
            "select one by id=", tok->label, label ? "label" : "the id",
            label ? label : "given");
        return -1;
    }
    return tok_load_key(tok, found[0], out);
}

/* Public key objects holding this value; up to `max` handles. */
static long
find_public_by_value(struct token *tok, EVP_PKEY *pub, CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) } };
    uint8_t *raw = NULL, wrapped[3 + 256];
    size_t rawlen = 0;
    BIGNUM *n = NULL;
    long count = 0;

    switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_RSA:
        if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n))
            return 0;
        rawlen = (size_t)BN_num_bytes(n);
        if ((raw = malloc(rawlen)) == NULL) {
            BN_free(n);
            return -1;
        }
        BN_bn2bin(n, raw);
        BN_free(n);
        tmpl[1] = (CK_ATTRIBUTE){ CKA_MODULUS, raw, rawlen };
        count = tok_find_objects(tok, tmpl, 2, found, max);
        break;
    case EVP_PKEY_EC:
    case EVP_PKEY_ED25519:
        if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
            rawlen = EVP_PKEY_get1_encoded_public_key(pub, &raw);
        } else {
            raw = malloc(32);
            rawlen = 32;
            if (raw == NULL || !EVP_PKEY_get_raw_public_key(pub, raw, &rawlen))
                rawlen = 0;
        }
        if (rawlen == 0 || rawlen > 255) {
            OPENSSL_free(raw);
            return 0;
        }
        /* DER OCTET STRING as PKCS#11 specifies, then the raw point some tokens keep. */
        size_t hdr = rawlen < 128 ? 2 : 3;
        wrapped[0] = 0x04;
        if (hdr == 2) {
            wrapped[1] = (uint8_t)rawlen;
        } else {
            wrapped[1] = 0x81;
            wrapped[2] = (uint8_t)rawlen;
        }
        memcpy(wrapped + hdr, raw, rawlen);
        tmpl[1] = (CK_ATTRIBUTE){ CKA_EC_POINT, wrapped, hdr + rawlen };
        count = tok_find_objects(tok, tmpl, 2, found, max);
        if (count == 0) {
            tmpl[1] = (CK_ATTRIBUTE){ CKA_EC_POINT, raw, rawlen };
            count = tok_find_objects(tok, tmpl, 2, found, max);
        }
        break;
    default:
        break;
    }
    OPENSSL_free(raw);
    return count;
}

int
token_find_key_by_public(struct token *tok, EVP_PKEY *pub, struct token_key **out)
{
    CK_OBJECT_HANDLE pubs[4];
    long n;

    *out = NULL;
    if (pub == NULL)
        return 1;
    if ((n = find_public_by_value(tok, pub, pubs, 4)) == -1)
        return -1;
    for (long i = 0; i < n; i++) {
        uint8_t *id;
        size_t idlen;
        struct token_key *key;
        int r;
        if (tok_get_attr(tok, pubs[i], CKA_ID, &id, &idlen) != 0 || idlen == 0) {
            free(id);
            continue;
        }
        r = token_find_key(tok, NULL, id, idlen, &key);
        free(id);
        if (r == -1)
            return -1;
        if (r == 0 && EVP_PKEY_eq(key->pkey, pub) == 1) {
            *out = key;
            return 0;
        }
        token_key_free(key);
    }
    return 1;
}

void
token_key_free(struct token_key *key)
{
    if (key == NULL)
        return;
    free(key->id);
    free(key->label);
    EVP_PKEY_free(key->pkey);
    free(key->uri);
    free(key);
}

const struct keytype *token_key_type(const struct token_key *key) { return key->type; }
const char *token_key_type_name(const struct token_key *key) { return key->type_name; }
const char *token_key_label(const struct token_key *key) { return key->label; }
EVP_PKEY *token_key_public(const struct token_key *key) { return key->pkey; }
const char *token_key_uri(const struct token_key *key) { return key->uri; }
const char *token_key_spki_sha256(const struct token_key *key) { return key->spki_sha256; }

const uint8_t *
token_key_id(const struct token_key *key, size_t *len)
{
    *len = key->idlen;
    return key->id;
}

void
tok_flags_template(CK_BBOOL v[TOK_NFLAGS], CK_ATTRIBUTE a[TOK_NFLAGS])
{
    static const CK_ATTRIBUTE_TYPE types[TOK_NFLAGS] = { CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE,
        CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE };
    for (size_t i = 0; i < TOK_NFLAGS; i++) {
        v[i] = CK_FALSE;
        a[i] = (CK_ATTRIBUTE){ types[i], &v[i], 1 };
    }
}

void
tok_flags_eval(const CK_ATTRIBUTE a[TOK_NFLAGS], const CK_BBOOL v[TOK_NFLAGS],
    struct token_key_flags *out)
{
    /* An attribute the token does not report counts as the unsafe value. */
    out->sensitive = a[0].ulValueLen == 1 && v[0];
    out->always_sensitive = a[1].ulValueLen == 1 && v[1];
    out->extractable = a[2].ulValueLen != 1 || v[2];
    out->never_extractable = a[3].ulValueLen == 1 && v[3];
    out->local = a[4].ulValueLen == 1 && v[4];
    out->decrypt = a[5].ulValueLen == 1 && v[5];
    out->unwrap = a[6].ulValueLen == 1 && v[6];
    out->derive = a[7].ulValueLen == 1 && v[7];
}

int
token_key_flags(struct token *tok, const struct token_key *key, struct token_key_flags *out)
{
    CK_BBOOL v[TOK_NFLAGS];
    CK_ATTRIBUTE a[TOK_NFLAGS];

    memset(out, 0, sizeof(*out));
    tok_flags_template(v, a);
    if (tok_get_attrs(tok, key->priv, a, TOK_NFLAGS) == -1)
        return -1;
    tok_flags_eval(a, v, out);
    /* A handle C_GenerateKeyPair returned was made on the token, whatever CKA_LOCAL says. */
    out->local = out->local || key->generated;
    out->local_unrecorded = !out->local && tok->family != NULL && tok->family->no_cka_local;
    return 0;
}
