/*
 * soft_signer.h - a signer (signer.h) over an OpenSSL software key, and a
 * JWS signer built on it, for tests and the ACME protocol driver only.  The
 * product signs on the token; this file is deliberately not part of the
 * core library.
 */
#ifndef P11E_SOFT_SIGNER_H
#define P11E_SOFT_SIGNER_H

#include <openssl/evp.h>

#include "jws.h"
#include "signer.h"

/*
 * Fill *out for `pkey` (a reference is taken; signer_clear() drops it):
 * signatures in the token's formats (raw r||s for ECDSA).  0, or -1 after
 * reporting.
 */
int soft_signer_new(EVP_PKEY *pkey, struct signer *out);

/* The JWS signer over soft_signer_new(pkey).  0, or -1 after reporting. */
int soft_signer_init(EVP_PKEY *pkey, struct jws_signer *out);

/* Verify a JWS signature (raw r||s for ES*) over `in`: 1 good, 0 bad. */
int soft_verify(EVP_PKEY *pkey, const char *alg, const uint8_t *in, size_t len,
    const uint8_t *sig, size_t siglen);

#endif
