/*
 * csr.h - PKCS#10 requests built with OpenSSL and signed by a signer (the
 * token in the product), and the certificate checks shared by import and
 * enrollment.
 */
#ifndef P11E_CSR_H
#define P11E_CSR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "plan.h"
#include "profile.h"
#include "signer.h"

/* Everything that goes into a request; borrowed strings. */
struct csr_spec {
    const char *cn;
    const char *const *sans;      /* DNS names in certificate order; may be empty */
    size_t nsans;
    bool server_auth, client_auth;
    const char *c, *st, *l, *o, *ou;  /* optional [subject] attributes */
    const char *digest;           /* "sha256" (default), "sha384", "sha512" */
    const char *ms_template;      /* AD CS certificate template name, or NULL */
};

/*
 * Fill `spec` from a plan and its profile.  `names` receives the SAN
 * pointers (caller frees the array only; the strings belong to the plan).
 */
int csr_spec_from_plan(const struct plan *plan, const struct profile *prof,
    struct csr_spec *spec, const char ***names);

/*
 * Build the request for the signer's public key and have the signer sign
 * it (token_signer() in the product; borrowed).  Before returning, the
 * signature is verified with signer->pub and the request's key is checked
 * to be the signer's.  Returns 0 and *out (X509_REQ_free), or -1 after
 * reporting.
 */
int csr_build(const struct signer *signer, const struct csr_spec *spec, X509_REQ **out);

/* PEM (or DER) encoding of a request, in a new buffer (caller frees). */
int csr_encode(X509_REQ *req, bool der, unsigned char **buf, size_t *len);

/*
 * Read certificates from a PEM or DER file (at most 1 MiB): the first is
 * *leaf, any more are appended to *chain (may be NULL when not wanted).
 * `what` names the input in messages.  -1 after reporting (exit 2).
 */
int cert_read(const char *path, const char *what, X509 **leaf, STACK_OF(X509) **chain);

/* The same for `len` bytes in memory (an ACME download); `what` names them. */
int cert_parse(const uint8_t *buf, size_t len, const char *what, X509 **leaf,
    STACK_OF(X509) **chain);

/*
 * Check that each certificate of `chain` issued the one before it (the
 * first issued `leaf`).  -1 after reporting (E_CHAIN, exit 1).
 */
int cert_check_chain(X509 *leaf, STACK_OF(X509) *chain);

/*
 * Where a certificate came from, which decides whose fault a bad one is
 * for cert_check_usable(): the CA's (exit 1, E_CERT) or the input file's
 * (exit 2, E_CERT_INVALID).
 */
enum cert_source { CERT_FROM_CA, CERT_FROM_FILE };

/* How far the host clock may be behind the CA's: a notBefore this far ahead is accepted. */
#define CERT_SKEW_S 600

/*
 * Is `cert` fit to install at time `now`: notBefore <= now + CERT_SKEW_S
 * and now < notAfter; not a CA (basicConstraints cA absent or false, no
 * keyCertSign); and it carries each of the `neku` EKUs named in `eku`
 * ("serverAuth", "clientAuth").  Pure: 0, or -1 with the reason in
 * why[size] (nothing reported).
 */
int cert_usable(X509 *cert, const char *const *eku, size_t neku, time_t now, char *why,
    size_t size);

/*
 * cert_usable() now, with the plan's EKUs (none without a plan); -1 after
 * reporting (exit 1 or 2 by `src`).
 */
int cert_check_usable(X509 *cert, const struct plan *plan, enum cert_source src);

/*
 * Compare the certificate's DNS SANs (and CN when there are none) with the
 * plan: missing, extra and duplicate names are reported.  -1 after
 * reporting (exit 1).
 */
int cert_check_names(X509 *cert, const struct plan *plan);

/* PEM text of one certificate or a whole chain appended to `out`. */
int cert_pem_append(X509 *cert, char **out, size_t *len);

#endif
