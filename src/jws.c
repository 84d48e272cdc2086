/*
 * jws.c - JWS assembly for ACME: base64url, JWKs, thumbprints, the flattened
 * JSON serialisation and the External Account Binding MAC.  The account's
 * private key is only ever reached through the signer (signer.h).
 */
#include "jws.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util.h"

void
jws_signer_clear(struct jws_signer *s)
{
    if (s == NULL)
        return;
    json_decref(s->jwk);
    if (s->ctx_free != NULL)
        s->ctx_free(s->ctx);
    memset(s, 0, sizeof(*s));
}

/* ---- base64url ---------------------------------------------------------- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
b64url_encode(const uint8_t *in, size_t len)
{
    char *out = malloc(len / 3 * 4 + 5), *o = out;
    size_t i = 0;

    if (out == NULL)
        return NULL;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = b64url_chars[v >> 18 & 63];
        *o++ = b64url_chars[v >> 12 & 63];
        *o++ = b64url_chars[v >> 6 & 63];
        *o++ = b64url_chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = b64url_chars[v >> 18 & 63];
        *o++ = b64url_chars[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = b64url_chars[v >> 18 & 63];
        *o++ = b64url_chars[v >> 12 & 63];
        *o++ = b64url_chars[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

static int
b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int
b64url_decode(const char *in, uint8_t **out, size_t *outlen)
{
    size_t n = strlen(in), o = 0;
    uint8_t *buf;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *outlen = 0;
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    if ((buf = malloc(n * 3 / 4 + 1)) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(in[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Non-zero leftover bits mean a non-canonical encoding. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return -1;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

bool
b64url_valid(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (n >= max || b64url_val(s[n]) < 0)
            return false;
    return n > 0;
}

/* ---- keys --------------------------------------------------------------- */

static int
json_set_b64(json_t *obj, const char *key, const uint8_t *buf, size_t len)
{
    char *s = b64url_encode(buf, len);
    int rc = (s != NULL && json_object_set_new(obj, key, json_string(s)) == 0) ? 0 : -1;
    free(s);
    return rc;
}

/* A BIGNUM as base64url: big-endian, `pad` bytes (0: minimal length). */
static int
json_set_bn(json_t *obj, const char *key, const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    uint8_t *buf;
    int rc = -1;

    if (n <= 0 || (buf = malloc((size_t)n)) == NULL)
        return -1;
    if ((pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf)) == n)
        rc = json_set_b64(obj, key, buf, (size_t)n);
    free(buf);
    return rc;
}

int
jws_jwk_from_pkey(EVP_PKEY *pkey, json_t **jwk, const char **alg)
{
    json_t *j = json_object();
    BIGNUM *a = NULL, *b = NULL;
    int rc = -1;

    *jwk = NULL;
    *alg = NULL;
    if (j == NULL)
        goto oom;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        char group[64];
        const char *crv;
        int coord;
        if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL)) {
            err_runtime("E_JWK", "account key: cannot read the EC curve");
            goto out;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            crv = "P-256"; coord = 32; *alg = "ES256";
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            crv = "P-384"; coord = 48; *alg = "ES384";
        } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            crv = "P-521"; coord = 66; *alg = "ES512";
        } else {
            err_runtime("E_JWK", "account key: curve %s cannot sign JWS", group);
            goto out;
        }
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b)) {
            err_runtime("E_JWK", "account key: cannot read the EC point");
            goto out;
        }
        if (json_object_set_new(j, "kty", json_string("EC")) != 0 ||
            json_object_set_new(j, "crv", json_string(crv)) != 0 ||
            json_set_bn(j, "x", a, coord) != 0 || json_set_bn(j, "y", b, coord) != 0)
            goto oom;
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            err_runtime("E_JWK", "account key: RSA keys under 2048 bits are refused");
            goto out;
        }
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b)) {
            err_runtime("E_JWK", "account key: cannot read the RSA public key");
            goto out;
        }
        *alg = "RS256";
        if (json_object_set_new(j, "kty", json_string("RSA")) != 0 ||
            json_set_bn(j, "n", a, 0) != 0 || json_set_bn(j, "e", b, 0) != 0)
            goto oom;
    } else {
        err_runtime("E_JWK", "account key: only EC and RSA keys can sign ACME requests");
        goto out;
    }
    *jwk = j;
    j = NULL;   /* transferred */
    rc = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    if (rc != 0)
        *alg = NULL;
    BN_free(a);
    BN_free(b);
    json_decref(j);
    return rc;
}

const char *
jws_alg_digest(const char *alg)
{
    if (strcmp(alg, "ES256") == 0 || strcmp(alg, "RS256") == 0)
        return "sha256";
    if (strcmp(alg, "ES384") == 0)
        return "sha384";
    if (strcmp(alg, "ES512") == 0)
        return "sha512";
    return NULL;
}

size_t
jws_alg_ec_siglen(const char *alg)
{
    if (strcmp(alg, "ES256") == 0)
        return 64;
    if (strcmp(alg, "ES384") == 0)
        return 96;
    if (strcmp(alg, "ES512") == 0)
        return 132;
    return 0;
}

/* base64url(SHA-256(s)); NULL on no memory. */
static char *
b64url_sha256(const char *s)
{
    uint8_t md[SHA256_DIGEST_LENGTH];

    if (SHA256((const unsigned char *)s, strlen(s), md) == NULL)
        return NULL;
    return b64url_encode(md, sizeof(md));
}

int
jws_thumbprint(const json_t *jwk, char **out)
{
    static const char *const ec[] = { "crv", "kty", "x", "y", NULL };
    static const char *const rsa[] = { "e", "kty", "n", NULL };
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *const *members;
    json_t *canon = json_object();
    char *text = NULL;
    int rc = -1;

    *out = NULL;
    if (canon == NULL)
        goto out;
    if (kty != NULL && strcmp(kty, "EC") == 0)
        members = ec;
    else if (kty != NULL && strcmp(kty, "RSA") == 0)
        members = rsa;
    else {
        err_runtime("E_JWK", "JWK thumbprint: unsupported key type");
        goto out;
    }
    for (; *members != NULL; members++) {
        json_t *v = json_object_get(jwk, *members);
        if (!json_is_string(v)) {
            err_runtime("E_JWK", "JWK thumbprint: member %s missing", *members);
            goto out;
        }
        json_object_set(canon, *members, v);
    }
    /* RFC 7638 §3: required members only, sorted, no whitespace. */
    if ((text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
        (*out = b64url_sha256(text)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(text);
    json_decref(canon);
    return rc;
}

char *
jws_key_authorization(const char *token, const char *thumbprint)
{
    char *s;
    if (asprintf(&s, "%s.%s", token, thumbprint) == -1)
        return NULL;
    return s;
}

char *
jws_dns01_value(const char *key_authorization)
{
    return b64url_sha256(key_authorization);
}

/* ---- JWS ---------------------------------------------------------------- */

/* base64url of a JSON value's compact text. */
static char *
b64url_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT), *s;
    if (text == NULL)
        return NULL;
    s = b64url_encode((const uint8_t *)text, strlen(text));
    free(text);
    return s;
}

static char *
b64url_str(const char *s)
{
    return b64url_encode((const uint8_t *)s, strlen(s));
}

int
jws_build(const struct jws_signer *signer, const char *url, const char *nonce,
    const char *kid, const char *payload, char **out)
{
    json_t *hdr = NULL, *body = NULL;
    char *p64 = NULL, *pl64 = NULL, *input = NULL, *s64 = NULL;
    uint8_t *sig = NULL;
    size_t siglen = 0, want;
    int rc = -1;

    *out = NULL;
    if (signer == NULL || signer->alg == NULL || signer->sign == NULL ||
        (kid == NULL && signer->jwk == NULL) || url == NULL || nonce == NULL) {
        err_runtime("E_JWS", "JWS: incomplete signer or request");
        return -1;
    }
    if ((hdr = json_pack("{s:s, s:s, s:s}", "alg", signer->alg, "nonce", nonce,
        "url", url)) == NULL)
        goto oom;
    if (kid != NULL ? json_object_set_new(hdr, "kid", json_string(kid)) != 0
                    : json_object_set(hdr, "jwk", signer->jwk) != 0)
        goto oom;
    if ((p64 = b64url_json(hdr)) == NULL ||
        (pl64 = payload != NULL ? b64url_str(payload) : strdup("")) == NULL ||
        asprintf(&input, "%s.%s", p64, pl64) == -1) {
        input = NULL;
        goto oom;
    }
    if (signer->sign(signer->ctx, (const uint8_t *)input, strlen(input), &sig, &siglen) != 0)
        goto out;
    want = jws_alg_ec_siglen(signer->alg);
    if (siglen == 0 || (want != 0 && siglen != want)) {
        err_runtime("E_JWS", "JWS: the signer returned %zu bytes for %s", siglen,
            signer->alg);
        goto out;
    }
    if ((s64 = b64url_encode(sig, siglen)) == NULL ||
        (body = json_pack("{s:s, s:s, s:s}", "protected", p64, "payload", pl64,
            "signature", s64)) == NULL ||
        (*out = json_dumps(body, JSON_COMPACT)) == NULL)
        goto oom;
    rc = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    json_decref(hdr);
    json_decref(body);
    free(p64);
    free(pl64);
    free(input);
    free(s64);
    free(sig);
    return rc;
}

int
jws_eab(const char *eab_kid, const uint8_t *hmac_key, size_t hmac_len,
    const json_t *account_jwk, const char *url, json_t **out)
{
    json_t *hdr = NULL;
    char *p64 = NULL, *pl64 = NULL, *input = NULL, *s64 = NULL;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    int rc = -1;

    *out = NULL;
    if (hmac_len == 0) {
        err_input("E_EAB", "EAB: empty HMAC key");
        return -1;
    }
    if ((hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid,
        "url", url)) == NULL ||
        (p64 = b64url_json(hdr)) == NULL || (pl64 = b64url_json(account_jwk)) == NULL ||
        asprintf(&input, "%s.%s", p64, pl64) == -1) {
        input = NULL;
        goto oom;
    }
    if (HMAC(EVP_sha256(), hmac_key, (int)hmac_len, (const unsigned char *)input,
        strlen(input), mac, &maclen) == NULL) {
        err_runtime("E_CRYPTO", "EAB: HMAC-SHA256 failed");
        goto out;
    }
    if ((s64 = b64url_encode(mac, maclen)) == NULL ||
        (*out = json_pack("{s:s, s:s, s:s}", "protected", p64, "payload", pl64,
            "signature", s64)) == NULL)
        goto oom;
    rc = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    wipe(mac, sizeof(mac));
    json_decref(hdr);
    free(p64);
    free(pl64);
    free(input);
    free(s64);
    return rc;
}

/* ---- over a signer ---------------------------------------------------------- */

struct over_signer {
    struct signer s;                /* owned */
    const char *digest;             /* the JWS algorithm's hash */
};

static int
over_signer_sign(void *ctx, const uint8_t *in, size_t len, uint8_t **sig, size_t *siglen)
{
    struct over_signer *o = ctx;
    return o->s.sign(o->s.ctx, o->digest, in, len, sig, siglen);
}

static void
over_signer_free(void *ctx)
{
    struct over_signer *o = ctx;
    if (o == NULL)
        return;
    signer_clear(&o->s);
    free(o);
}

int
jws_signer_from_signer(struct signer *s, struct jws_signer *out)
{
    struct over_signer *o = NULL;

    memset(out, 0, sizeof(*out));
    if (s->pub == NULL) {
        err_runtime("E_JWK", "account key: no public key");
        goto fail;
    }
    if (jws_jwk_from_pkey(s->pub, &out->jwk, &out->alg) != 0)
        goto fail;
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    o->s = *s;
    memset(s, 0, sizeof(*s)); /* transferred */
    o->digest = jws_alg_digest(out->alg);
    out->sign = over_signer_sign;
    out->ctx = o;
    out->ctx_free = over_signer_free;
    return 0;
fail:
    jws_signer_clear(out);
    signer_clear(s);
    return -1;
}
