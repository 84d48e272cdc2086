/* test_jws.c - base64url, JWKs, thumbprints, JWS and EAB assembly. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "jws.h"
#include "util.h"
#include "../support/soft_signer.h"

static char *
enc(const char *s)
{
    return b64url_encode((const uint8_t *)s, strlen(s));
}

Test(b64url, rfc4648_vectors)
{
    static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const out[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char *e = enc(in[i]);
        cr_assert_str_eq(e, out[i]);
        uint8_t *d;
        size_t n;
        cr_assert_eq(b64url_decode(e, &d, &n), 0);
        cr_assert_eq(n, strlen(in[i]));
        cr_assert_eq(memcmp(d, in[i], n), 0);
        free(d);
        free(e);
    }
}

Test(b64url, url_alphabet_and_padding)
{
    const uint8_t in[] = { 0xfb, 0xff, 0xbf };
    char *e = b64url_encode(in, sizeof(in));
    cr_assert_str_eq(e, "-_-_");
    free(e);
    uint8_t *d;
    size_t n;
    cr_assert_eq(b64url_decode("Zm8=", &d, &n), 0, "trailing padding is tolerated");
    cr_assert_eq(n, 2);
    free(d);
}

Test(b64url, rejects_bad_input)
{
    uint8_t *d;
    size_t n;
    cr_assert_eq(b64url_decode("Zm9+", &d, &n), -1, "'+' is not base64url");
    cr_assert_eq(b64url_decode("Zm9/", &d, &n), -1);
    cr_assert_eq(b64url_decode("Zm9vY", &d, &n), -1, "impossible length");
    cr_assert_eq(b64url_decode("Zh", &d, &n), -1, "non-canonical trailing bits");
    cr_assert_eq(b64url_decode("Zm 9", &d, &n), -1);
    cr_assert_null(d);
}

Test(b64url, valid_tokens)
{
    cr_assert(b64url_valid("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", 256));
    cr_assert_not(b64url_valid("", 256));
    cr_assert_not(b64url_valid("../../etc/passwd", 256));
    cr_assert_not(b64url_valid("abc def", 256));
    cr_assert_not(b64url_valid("abc;rm", 256));
    cr_assert_not(b64url_valid("abc=", 256));
    cr_assert_not(b64url_valid("abcdef", 5), "over the length cap");
    cr_assert(b64url_valid("abcde", 5));
    cr_assert_not(b64url_valid(NULL, 5));
}

Test(jwk, rfc7638_thumbprint)
{
    /* RFC 7638 §3.1. */
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA",
        "n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhD"
             "R1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0"
             "h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91C"
             "bOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-c"
             "sFCur-kEgU8awapJzKnqDKgw",
        "e", "AQAB", "alg", "RS256", "kid", "2011-04-29");
    char *t;
    cr_assert_eq(jws_thumbprint(jwk, &t), 0);
    cr_assert_str_eq(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    free(t);
    json_decref(jwk);
}

Test(jwk, thumbprint_rejects_incomplete)
{
    json_t *jwk = json_pack("{s:s, s:s}", "kty", "EC", "crv", "P-256");
    char *t;
    cr_assert_eq(jws_thumbprint(jwk, &t), -1);
    cr_assert_null(t);
    json_decref(jwk);
    jwk = json_pack("{s:s}", "kty", "oct");
    cr_assert_eq(jws_thumbprint(jwk, &t), -1);
    json_decref(jwk);
}

static EVP_PKEY *
ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    cr_assert_not_null(k);
    return k;
}

static EVP_PKEY *
rsa_key(size_t bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    cr_assert_not_null(k);
    return k;
}

Test(jwk, ec_coordinates_have_fixed_length)
{
    static const struct { const char *curve, *crv, *alg; size_t chars; } t[] = {
        { "P-256", "P-256", "ES256", 43 },
        { "P-384", "P-384", "ES384", 64 },
        { "P-521", "P-521", "ES512", 88 },
    };
    for (size_t i = 0; i < 3; i++) {
        /* Several keys, so a coordinate with a leading zero byte is likely met. */
        for (int k = 0; k < 8; k++) {
            EVP_PKEY *key = ec_key(t[i].curve);
            json_t *jwk;
            const char *alg;
            cr_assert_eq(jws_jwk_from_pkey(key, &jwk, &alg), 0);
            cr_assert_str_eq(alg, t[i].alg);
            cr_assert_str_eq(json_string_value(json_object_get(jwk, "kty")), "EC");
            cr_assert_str_eq(json_string_value(json_object_get(jwk, "crv")), t[i].crv);
            cr_assert_eq(strlen(json_string_value(json_object_get(jwk, "x"))), t[i].chars);
            cr_assert_eq(strlen(json_string_value(json_object_get(jwk, "y"))), t[i].chars);
            json_decref(jwk);
            EVP_PKEY_free(key);
        }
    }
}

Test(jwk, rsa_members)
{
    EVP_PKEY *key = rsa_key(2048);
    json_t *jwk;
    const char *alg;
    cr_assert_eq(jws_jwk_from_pkey(key, &jwk, &alg), 0);
    cr_assert_str_eq(alg, "RS256");
    cr_assert_str_eq(json_string_value(json_object_get(jwk, "e")), "AQAB");
    /* 256 bytes -> 342 base64url characters, no leading zero byte. */
    cr_assert_eq(strlen(json_string_value(json_object_get(jwk, "n"))), 342);
    json_decref(jwk);
    EVP_PKEY_free(key);
}

Test(jwk, refuses_small_rsa_and_ed25519)
{
    EVP_PKEY *key = rsa_key(1024);
    json_t *jwk;
    const char *alg;
    cr_assert_eq(jws_jwk_from_pkey(key, &jwk, &alg), -1);
    cr_assert_null(jwk);
    EVP_PKEY_free(key);
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_eq(jws_jwk_from_pkey(key, &jwk, &alg), -1);
    EVP_PKEY_free(key);
}

Test(jws, key_authorization_and_dns_value)
{
    char *ka = jws_key_authorization("tok", "thumb");
    cr_assert_str_eq(ka, "tok.thumb");
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)ka, strlen(ka), md);
    char *want = b64url_encode(md, sizeof(md)), *v = jws_dns01_value(ka);
    cr_assert_str_eq(v, want);
    cr_assert_eq(strlen(v), 43);
    free(ka);
    free(want);
    free(v);
}

/* Decode a base64url member of a JWS body into a JSON object. */
static json_t *
decode_member(json_t *body, const char *key)
{
    uint8_t *d;
    size_t n;
    cr_assert_eq(b64url_decode(json_string_value(json_object_get(body, key)), &d, &n), 0);
    json_t *j = json_loadb((const char *)d, n, 0, NULL);
    free(d);
    return j;
}

/* Build a JWS with `key`, check its header and verify its signature. */
static void
check_jws(EVP_PKEY *key, const char *kid, const char *payload)
{
    struct jws_signer s;
    char *text;
    cr_assert_eq(soft_signer_init(key, &s), 0);
    cr_assert_eq(jws_build(&s, "https://127.0.0.1:14000/sign-me-up", "NONCE_abc-1", kid,
        payload, &text), 0);
    json_t *body = json_loads(text, 0, NULL);
    cr_assert_not_null(body);
    cr_assert_eq(json_object_size(body), 3);
    json_t *hdr = decode_member(body, "protected");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), s.alg);
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "nonce")), "NONCE_abc-1");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "url")),
        "https://127.0.0.1:14000/sign-me-up");
    if (kid != NULL) {
        cr_assert_str_eq(json_string_value(json_object_get(hdr, "kid")), kid);
        cr_assert_null(json_object_get(hdr, "jwk"), "kid and jwk are exclusive");
    } else {
        cr_assert(json_equal(json_object_get(hdr, "jwk"), s.jwk));
        cr_assert_null(json_object_get(hdr, "kid"));
    }
    const char *p64 = json_string_value(json_object_get(body, "payload"));
    if (payload == NULL) {
        cr_assert_str_eq(p64, "", "POST-as-GET has an empty payload");
    } else {
        json_t *pl = decode_member(body, "payload"), *want = json_loads(payload, 0, NULL);
        cr_assert(json_equal(pl, want));
        json_decref(pl);
        json_decref(want);
    }
    char *input;
    cr_assert_neq(asprintf(&input, "%s.%s",
        json_string_value(json_object_get(body, "protected")), p64), -1);
    uint8_t *sig;
    size_t siglen;
    cr_assert_eq(b64url_decode(json_string_value(json_object_get(body, "signature")), &sig,
        &siglen), 0);
    if (jws_alg_ec_siglen(s.alg) != 0)
        cr_assert_eq(siglen, jws_alg_ec_siglen(s.alg));
    cr_assert(soft_verify(key, s.alg, (const uint8_t *)input, strlen(input), sig, siglen),
        "%s signature verifies", s.alg);
    /* A flipped bit must not verify (the check can fail). */
    input[3] ^= 1;
    cr_assert_not(soft_verify(key, s.alg, (const uint8_t *)input, strlen(input), sig, siglen));
    free(input);
    free(sig);
    json_decref(hdr);
    json_decref(body);
    free(text);
    jws_signer_clear(&s);
}

Test(jws, es256_with_jwk)
{
    EVP_PKEY *k = ec_key("P-256");
    check_jws(k, NULL, "{\"termsOfServiceAgreed\":true}");
    EVP_PKEY_free(k);
}

Test(jws, es384_with_kid)
{
    EVP_PKEY *k = ec_key("P-384");
    check_jws(k, "https://127.0.0.1:14000/my-account/1", "{\"identifiers\":[]}");
    EVP_PKEY_free(k);
}

Test(jws, rs256_post_as_get)
{
    EVP_PKEY *k = rsa_key(2048);
    check_jws(k, "https://127.0.0.1:14000/my-account/1", NULL);
    EVP_PKEY_free(k);
}

static int
short_sign(void *ctx, const uint8_t *in, size_t len, uint8_t **sig, size_t *siglen)
{
    (void)ctx; (void)in; (void)len;
    *sig = calloc(1, 63);
    *siglen = 63;
    return 0;
}

static int
failing_sign(void *ctx, const uint8_t *in, size_t len, uint8_t **sig, size_t *siglen)
{
    (void)ctx; (void)in; (void)len;
    *sig = NULL;
    *siglen = 0;
    err_runtime("E_SIGN", "token said no");
    return -1;
}

Test(jws, checks_the_signer)
{
    struct jws_signer s = { .alg = "ES256", .jwk = json_pack("{s:s}", "kty", "EC"),
                            .sign = short_sign };
    char *out;
    cr_assert_eq(jws_build(&s, "https://x/", "n", NULL, "{}", &out), -1,
        "an ES256 signature of 63 bytes is refused");
    cr_assert_null(out);
    s.sign = failing_sign;
    cr_assert_eq(jws_build(&s, "https://x/", "n", NULL, "{}", &out), -1);
    cr_assert_eq(jws_build(&s, "https://x/", NULL, NULL, "{}", &out), -1, "no nonce");
    json_decref(s.jwk);
}

Test(jws, eab_binding)
{
    static const char kid[] = "kid-1";
    const uint8_t key[] = "0123456789abcdef0123456789abcdef";
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
        "x", "AAAA", "y", "BBBB"), *eab;
    cr_assert_eq(jws_eab(kid, key, 32, jwk, "https://ca/new-acct", &eab), 0);
    json_t *hdr = decode_member(eab, "protected"), *pl = decode_member(eab, "payload");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), "HS256");
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "kid")), kid);
    cr_assert_str_eq(json_string_value(json_object_get(hdr, "url")), "https://ca/new-acct");
    cr_assert_null(json_object_get(hdr, "nonce"), "RFC 8555 §7.3.4: no nonce");
    cr_assert(json_equal(pl, jwk), "payload is the account JWK");
    /* Recompute the MAC. */
    char *input;
    cr_assert_neq(asprintf(&input, "%s.%s", json_string_value(json_object_get(eab, "protected")),
        json_string_value(json_object_get(eab, "payload"))), -1);
    uint8_t mac[32];
    unsigned maclen;
    HMAC(EVP_sha256(), key, 32, (const uint8_t *)input, strlen(input), mac, &maclen);
    char *want = b64url_encode(mac, maclen);
    cr_assert_str_eq(json_string_value(json_object_get(eab, "signature")), want);
    free(want);
    free(input);
    json_decref(hdr);
    json_decref(pl);
    json_decref(eab);
    cr_assert_eq(jws_eab(kid, key, 0, jwk, "https://ca/new-acct", &eab), -1, "empty key");
    json_decref(jwk);
}
