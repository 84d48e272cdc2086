/*
 * sign.c - signing with a private key on the token (C_SignInit/C_Sign with
 * the mechanism the key and the token allow), and the token's
 * implementation of the signer interface (signer.h).
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include "pin.h"
#include "util.h"

static const EVP_MD *
digest_md(const char *digest)
{
    if (digest == NULL || strcmp(digest, "sha256") == 0)
        return EVP_sha256();
    if (strcmp(digest, "sha384") == 0)
        return EVP_sha384();
    if (strcmp(digest, "sha512") == 0)
        return EVP_sha512();
    return NULL;
}

/* DER DigestInfo prefixes (RFC 8017 §9.2 note 1). */
static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

int
token_sign(struct token *tok, const struct token_key *key, const char *digest,
    const uint8_t *data, size_t len, uint8_t **sig, size_t *siglen)
{
    const EVP_MD *md = digest_md(digest);
    uint8_t buf[19 + EVP_MAX_MD_SIZE];
    const uint8_t *in = data;
    size_t inlen = len, expect;
    unsigned mdlen;
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_ULONG outlen = 0;
    uint8_t *out = NULL;
    bool initialised = false;
    CK_RV rv;

    *sig = NULL;
    *siglen = 0;
    if (md == NULL) {
        err_input("E_DIGEST", "digest %s is not supported (sha256, sha384, sha512)", digest);
        return -1;
    }
    switch (EVP_PKEY_get_base_id(key->pkey)) {
    case EVP_PKEY_RSA: {
        CK_MECHANISM_TYPE combined = md == EVP_sha256() ? CKM_SHA256_RSA_PKCS
            : md == EVP_sha384() ? CKM_SHA384_RSA_PKCS : CKM_SHA512_RSA_PKCS;
        expect = (size_t)EVP_PKEY_get_size(key->pkey);
        /* Try the combined mechanism: a token without it says so in C_SignInit. */
        mech.mechanism = combined;
        if ((rv = tok->fn->C_SignInit(tok->session, &mech, key->priv)) == CKR_OK) {
            initialised = true;
        } else if (rv != CKR_MECHANISM_INVALID) {
            goto pkcs11;
        } else {
            /* Hash on the host and let the token pad and sign the DigestInfo. */
            const uint8_t *prefix = md == EVP_sha256() ? di_sha256
                : md == EVP_sha384() ? di_sha384 : di_sha512;
            memcpy(buf, prefix, 19);
            if (!EVP_Digest(data, len, buf + 19, &mdlen, md, NULL))
                goto crypto;
            in = buf;
            inlen = 19 + mdlen;
            mech.mechanism = CKM_RSA_PKCS;
        }
        break;
    }
    case EVP_PKEY_EC:
        expect = 2 * (((size_t)EVP_PKEY_get_bits(key->pkey) + 7) / 8);
        if (!EVP_Digest(data, len, buf, &mdlen, md, NULL))
            goto crypto;
        in = buf;
        inlen = mdlen;
        mech.mechanism = CKM_ECDSA;
        break;
    case EVP_PKEY_ED25519:
        expect = 64;
        mech.mechanism = CKM_EDDSA;
        break;
    default:
        err_runtime("E_KEY", "key %s: cannot sign with a %s key", key->label,
            key->type_name);
        return -1;
    }
    if (!initialised && (rv = tok->fn->C_SignInit(tok->session, &mech, key->priv)) != CKR_OK)
        goto pkcs11;
    if (key->always_auth) {
        /* A key that wants the PIN again for every signature (PIV 9c). */
        rv = tok->fn->C_Login(tok->session, CKU_CONTEXT_SPECIFIC,
            tok->pin ? (CK_UTF8CHAR *)tok->pin->value : NULL, tok->pin ? tok->pin->len : 0);
        if (rv != CKR_OK) {
            /* End the signing operation (a failed C_Sign does), or the session stays busy. */
            CK_BYTE scratch[1024];
            CK_ULONG slen = sizeof(scratch);
            (void)tok->fn->C_Sign(tok->session, (CK_BYTE *)in, inlen, scratch, &slen);
            goto pkcs11;
        }
    }
    /* Room for the largest signature this key can make, plus slack. */
    outlen = expect + 16;
    if ((out = malloc(outlen)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rv = tok->fn->C_Sign(tok->session, (CK_BYTE *)in, inlen, out, &outlen);
    if (rv != CKR_OK)
        goto pkcs11;
    if (outlen != expect) {
        free(out);
        err_runtime("E_SIGN", "key %s: the token returned a %lu-byte signature, expected %zu",
            key->label, outlen, expect);
        return -1;
    }
    wipe(buf, sizeof(buf));
    *sig = out;
    *siglen = outlen;
    return 0;
pkcs11:
    free(out);
    err_runtime("E_SIGN", "key %s on token %s: signing failed: %s", key->label, tok->label,
        token_rv_text(rv));
    return -1;
crypto:
    err_runtime("E_CRYPTO", "hashing failed");
    return -1;
}

/* ---- the signer interface ------------------------------------------------ */

struct tok_signer {
    struct token *tok;              /* borrowed */
    const struct token_key *key;    /* borrowed */
};

static int
tok_signer_sign(void *ctx, const char *digest, const uint8_t *data, size_t len,
    uint8_t **sig, size_t *siglen)
{
    struct tok_signer *t = ctx;
    return token_sign(t->tok, t->key, digest, data, len, sig, siglen);
}

int
token_signer(struct token *tok, const struct token_key *key, struct signer *out)
{
    struct tok_signer *t;

    memset(out, 0, sizeof(*out));
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    t->tok = tok;
    t->key = key;
    out->pub = key->pkey;
    out->name = key->label;
    out->sign = tok_signer_sign;
    out->ctx = t;
    out->ctx_free = free;
    return 0;
}
