/*
 * signer.h - the one signing interface: a public key and a sign() callback
 * over a private key the caller never sees.
 *
 * CSR signing (csr.c) and JWS signing (jws.c) take a signer; the product's
 * signer is the token (token_signer() in token.h), tests use a software key
 * (tests/support/soft_signer.c).  Nothing here knows about PKCS#11.
 */
#ifndef P11E_SIGNER_H
#define P11E_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/*
 * sign() signs `data` with the private key and returns in *sig (caller
 * frees) the signature bytes, the same for every implementation:
 *   RSA      PKCS#1 v1.5 over digest(data) (modulus length),
 *   ECDSA    raw r||s over digest(data) (2 x field bytes),
 *   Ed25519  pure EdDSA over data (64 bytes; digest ignored).
 * digest: "sha256", "sha384" or "sha512".  Returns 0, or -1 after reporting.
 */
struct signer {
    EVP_PKEY *pub;              /* the public key; borrowed from ctx, valid while it lives */
    const char *name;           /* the key's name for messages ("key %s"); borrowed */
    int (*sign)(void *ctx, const char *digest, const uint8_t *data, size_t len,
        uint8_t **sig, size_t *siglen);
    void *ctx;
    void (*ctx_free)(void *ctx);    /* optional, called by signer_clear() */
};

/* Free the context; leaves *s zeroed.  Accepts NULL. */
void signer_clear(struct signer *s);

#endif
