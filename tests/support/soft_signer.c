/* soft_signer.c - software signer and JWS signer for tests (see soft_signer.h). */
#include "soft_signer.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>

#include "util.h"

static int
soft_sign(void *ctx, const char *digest, const uint8_t *in, size_t len, uint8_t **sig,
    size_t *siglen)
{
    EVP_PKEY *pkey = ctx;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *der = NULL;
    size_t derlen = 0;
    int rc = -1;

    *sig = NULL;
    *siglen = 0;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519)
        digest = NULL;          /* pure EdDSA */
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, digest, NULL, NULL, pkey, NULL) != 1 ||
        EVP_DigestSign(md, NULL, &derlen, in, len) != 1 || (der = malloc(derlen)) == NULL ||
        EVP_DigestSign(md, der, &derlen, in, len) != 1) {
        err_runtime("E_SIGN", "software signature failed");
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        /* DER ECDSA-Sig-Value -> raw r||s, as the token returns it. */
        const uint8_t *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
        int n = (EVP_PKEY_get_bits(pkey) + 7) / 8;
        uint8_t *raw = malloc(2 * (size_t)n);
        if (es == NULL || raw == NULL ||
            BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, n) != n ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + n, n) != n) {
            ECDSA_SIG_free(es);
            free(raw);
            err_runtime("E_SIGN", "bad ECDSA signature");
            goto out;
        }
        ECDSA_SIG_free(es);
        *sig = raw;
        *siglen = 2 * (size_t)n;
    } else {
        *sig = der;
        *siglen = derlen;
        der = NULL;
    }
    rc = 0;
out:
    free(der);
    EVP_MD_CTX_free(md);
    return rc;
}

static void
soft_free(void *ctx)
{
    EVP_PKEY_free(ctx);
}

int
soft_signer_new(EVP_PKEY *pkey, struct signer *out)
{
    memset(out, 0, sizeof(*out));
    if (EVP_PKEY_up_ref(pkey) != 1) {
        err_runtime("E_CRYPTO", "software key: no reference");
        return -1;
    }
    out->pub = pkey;
    out->name = "software key";
    out->sign = soft_sign;
    out->ctx = pkey;
    out->ctx_free = soft_free;
    return 0;
}

int
soft_signer_init(EVP_PKEY *pkey, struct jws_signer *out)
{
    struct signer s;

    memset(out, 0, sizeof(*out));
    if (soft_signer_new(pkey, &s) == -1)
        return -1;
    return jws_signer_from_signer(&s, out);     /* s transferred */
}

int
soft_verify(EVP_PKEY *pkey, const char *alg, const uint8_t *in, size_t len,
    const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *digest = strcmp(alg, "ES384") == 0 ? "SHA384"
        : strcmp(alg, "ES512") == 0 ? "SHA512" : "SHA256";
    uint8_t *der = NULL;
    int derlen = 0, ok = 0;

    if (alg[0] == 'E') {
        ECDSA_SIG *es = ECDSA_SIG_new();
        size_t n = siglen / 2;
        BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);
        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            goto out;
        }
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (derlen <= 0)
            goto out;
        sig = der;
        siglen = (size_t)derlen;
    }
    ok = md != NULL && EVP_DigestVerifyInit_ex(md, NULL, digest, NULL, NULL, pkey, NULL) == 1 &&
        EVP_DigestVerify(md, sig, siglen, in, len) == 1;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}
