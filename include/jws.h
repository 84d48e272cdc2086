/*
 * jws.h - JSON Web Signatures for ACME (RFC 7515, 7517, 7638, RFC 8555 §6.2).
 *
 * Pure code: the private key is behind a signer (signer.h; the token in the
 * product, see jws_signer_from_signer()); this module only assembles what
 * is signed and what is sent.
 */
#ifndef P11E_JWS_H
#define P11E_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "signer.h"

/*
 * Something that signs with the ACME account key.  sign() signs `in`
 * (hashing it itself with the algorithm's hash) and returns in *sig
 * (caller frees) the JWS signature bytes: raw r||s for ES* (RFC 7518
 * §3.4), the PKCS#1 v1.5 signature for RS256.  Returns 0 or -1 after
 * reporting.
 */
struct jws_signer {
    const char *alg;            /* "ES256", "ES384", "ES512" or "RS256" (static) */
    json_t *jwk;                /* public JWK, owned (jws_signer_clear frees it) */
    int (*sign)(void *ctx, const uint8_t *in, size_t len, uint8_t **sig, size_t *siglen);
    void *ctx;
    void (*ctx_free)(void *ctx);    /* optional, called by jws_signer_clear() */
};

/* Free the JWK and the context; leaves *s zeroed.  Accepts NULL. */
void jws_signer_clear(struct jws_signer *s);

/*
 * The JWS signer over a signer (the account key on the token in the
 * product, token_signer()): the algorithm and JWK come from signer->pub,
 * sign() asks the signer with the algorithm's hash (ES256/ES384/ES512 as
 * raw r||s, RS256 as PKCS#1 v1.5).  Takes over *s, also on failure (*s is
 * left zeroed).  Returns 0 (clear *out with jws_signer_clear()), or -1
 * after reporting (Ed25519, small RSA).
 */
int jws_signer_from_signer(struct signer *s, struct jws_signer *out);

/* base64url without padding.  Returns a new string (caller frees) or NULL. */
char *b64url_encode(const uint8_t *in, size_t len);
/*
 * Decode base64url (no padding, or '=' padding tolerated at the end).
 * Returns 0 and *out (caller frees; NUL-terminated for convenience), or -1
 * on a character outside the alphabet or a bad length.  Does not report.
 */
int b64url_decode(const char *in, uint8_t **out, size_t *outlen);
/* True when s is 1..max characters, all of [A-Za-z0-9_-]. */
bool b64url_valid(const char *s, size_t max);

/*
 * The public JWK of an EC (P-256, P-384, P-521) or RSA key, with
 * fixed-length EC coordinates, and the JWS algorithm it signs with
 * (ES256/ES384/ES512/RS256, static string).  Returns 0 and *jwk (caller
 * json_decref), or -1 after reporting (unsupported key).
 */
int jws_jwk_from_pkey(EVP_PKEY *pkey, json_t **jwk, const char **alg);

/* The digest name ("sha256" ...) a JWS algorithm hashes with, or NULL. */
const char *jws_alg_digest(const char *alg);
/* Signature length an ES* algorithm must produce (64, 96, 132), 0 for others. */
size_t jws_alg_ec_siglen(const char *alg);

/*
 * RFC 7638 thumbprint: base64url(SHA-256(canonical JWK)).  Returns 0 and
 * *out (caller frees), or -1 after reporting.
 */
int jws_thumbprint(const json_t *jwk, char **out);

/* token "." thumbprint (RFC 8555 §8.1); caller frees, NULL on no memory. */
char *jws_key_authorization(const char *token, const char *thumbprint);

/* dns-01 TXT value: base64url(SHA-256(key authorization)); caller frees. */
char *jws_dns01_value(const char *key_authorization);

/*
 * A flattened JWS JSON body for an ACME request: protected header
 * {alg, nonce, url, kid} or, when kid is NULL, {alg, nonce, url, jwk};
 * payload = base64url(payload), or "" when payload is NULL (POST-as-GET).
 * Checks the signer's signature length for ES*.  Returns 0 and *out (a JSON
 * text, caller frees), or -1 after reporting.
 */
int jws_build(const struct jws_signer *signer, const char *url, const char *nonce,
    const char *kid, const char *payload, char **out);

/*
 * The externalAccountBinding object of a newAccount payload (RFC 8555
 * §7.3.4): a JWS with protected {alg: HS256, kid: eab_kid, url}, payload =
 * the account JWK, MAC'ed with the HMAC key.  Returns 0 and *out (caller
 * json_decref), or -1 after reporting.
 */
int jws_eab(const char *eab_kid, const uint8_t *hmac_key, size_t hmac_len,
    const json_t *account_jwk, const char *url, json_t **out);

#endif
