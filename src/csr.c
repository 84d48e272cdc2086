/*
 * csr.c - PKCS#10 requests (RFC 2986) built with OpenSSL and signed by a
 * signer, and the certificate checks that import and enrollment share.
 *
 * The request is assembled by OpenSSL, its CertificationRequestInfo is
 * encoded with i2d_re_X509_REQ_tbs() and signed by the signer (the token
 * in the product: the private key never leaves it), then the signature is
 * attached and verified with the signer's public key before anyone sees
 * the request.
 */
#include "csr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "util.h"

#define CERT_FILE_MAX (1024 * 1024)

/* AD CS reads the template from this request attribute (szOID_ENROLLMENT_NAME_VALUE_PAIR). */
#define OID_ENROLLMENT_NAME_VALUE_PAIR "1.3.6.1.4.1.311.13.2.1"

int
csr_spec_from_plan(const struct plan *plan, const struct profile *prof, struct csr_spec *spec,
    const char ***names)
{
    const char **v = calloc(plan->nsans + 1, sizeof(*v));

    memset(spec, 0, sizeof(*spec));
    *names = NULL;
    if (v == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < plan->nsans; i++)
        v[i] = plan->sans[i].name;
    spec->cn = plan->cn;
    spec->sans = v;
    spec->nsans = plan->nsans;
    for (size_t i = 0; i < plan->neku; i++) {
        if (strcmp(plan->eku[i], "serverAuth") == 0)
            spec->server_auth = true;
        else if (strcmp(plan->eku[i], "clientAuth") == 0)
            spec->client_auth = true;
    }
    spec->c = prof->subject.c;
    spec->st = prof->subject.st;
    spec->l = prof->subject.l;
    spec->o = prof->subject.o;
    spec->ou = prof->subject.ou;
    spec->digest = prof->csr.hash ? prof->csr.hash : "sha256";
    spec->ms_template = prof->csr.ms_template;
    *names = v;
    return 0;
}

/* Subject: the [subject] attributes, then the CN (the usual DN order). */
static int
add_subject(X509_REQ *req, const struct csr_spec *spec)
{
    X509_NAME *name = X509_NAME_new();
    const struct { const char *field, *value, *key; } rdn[] = {
        { "C", spec->c, "[subject] c" }, { "ST", spec->st, "[subject] st" },
        { "L", spec->l, "[subject] l" }, { "O", spec->o, "[subject] o" },
        { "OU", spec->ou, "[subject] ou" }, { "CN", spec->cn, "subject CN" },
    };
    int rc = -1;

    if (name == NULL)
        goto out;
    for (size_t i = 0; i < sizeof(rdn) / sizeof(rdn[0]); i++) {
        if (rdn[i].value == NULL)
            continue;
        if (strcmp(rdn[i].field, "C") == 0 && strlen(rdn[i].value) != 2) {
            err_input("E_SUBJECT", "%s = %s: a country is two letters (ISO 3166)", rdn[i].key,
                rdn[i].value);
            goto out;
        }
        if (strlen(rdn[i].value) > 64 ||
            !X509_NAME_add_entry_by_txt(name, rdn[i].field, MBSTRING_UTF8,
                (const unsigned char *)rdn[i].value, -1, -1, 0)) {
            err_input("E_SUBJECT", "%s = %s: not a valid attribute value (at most 64 characters)",
                rdn[i].key, rdn[i].value);
            goto out;
        }
    }
    if (!X509_REQ_set_subject_name(req, name))
        goto out;
    rc = 0;
out:
    X509_NAME_free(name);
    return rc;
}

static int
add_extensions(X509_REQ *req, const struct csr_spec *spec, bool rsa)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *gens = NULL;
    ASN1_BIT_STRING *ku = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    int rc = -1;

    if (spec->nsans > 0) {
        if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
            goto out;
        for (size_t i = 0; i < spec->nsans; i++) {
            GENERAL_NAME *g = GENERAL_NAME_new();
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            if (g == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, spec->sans[i], -1)) {
                GENERAL_NAME_free(g);
                ASN1_IA5STRING_free(ia5);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
            if (!sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                goto out;
            }
        }
        if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
            goto out;
    }
    /* keyUsage: digitalSignature, and keyEncipherment for RSA (TLS 1.2 RSA kx). */
    if ((ku = ASN1_BIT_STRING_new()) == NULL || !ASN1_BIT_STRING_set_bit(ku, 0, 1) ||
        (rsa && !ASN1_BIT_STRING_set_bit(ku, 2, 1)) ||
        X509V3_add1_i2d(&exts, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1)
        goto out;
    if (spec->server_auth || spec->client_auth) {
        if ((eku = sk_ASN1_OBJECT_new_null()) == NULL ||
            (spec->server_auth && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth))) ||
            (spec->client_auth && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth))) ||
            X509V3_add1_i2d(&exts, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
            goto out;
    }
    if (!X509_REQ_add_extensions(req, exts))
        goto out;
    rc = 0;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_free(eku);   /* static objects: not freed one by one */
    if (rc != 0)
        err_runtime("E_CRYPTO", "building the request's extensions failed");
    return rc;
}

/* DER of a BMPString holding ASCII text, appended at *p. */
static int
bmp_der(const char *s, unsigned char **der)
{
    ASN1_STRING *bmp = NULL;
    int len;

    *der = NULL;
    if (ASN1_mbstring_copy(&bmp, (const unsigned char *)s, -1, MBSTRING_ASC,
            B_ASN1_BMPSTRING) <= 0)
        return -1;
    len = i2d_ASN1_BMPSTRING(bmp, der);
    ASN1_STRING_free(bmp);
    return len;
}

/*
 * The AD CS template: EnrollmentNameValuePair ::= SEQUENCE { name BMPString,
 * value BMPString } with name "CertificateTemplate" (what certreq -attrib
 * "CertificateTemplate:NAME" sends).
 */
static int
add_ms_template(X509_REQ *req, const char *tmpl)
{
    unsigned char *n = NULL, *v = NULL, *seq = NULL, *p;
    int nl, vl, total, rc = -1;
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_ENROLLMENT_NAME_VALUE_PAIR, 1);

    for (const char *c = tmpl; *c; c++)
        if (*c < 0x20 || *c > 0x7e) {
            err_input("E_TEMPLATE", "[csr] ms-template = %s: printable ASCII only", tmpl);
            goto out;
        }
    if (strlen(tmpl) > 64) {
        err_input("E_TEMPLATE", "[csr] ms-template: at most 64 characters");
        goto out;
    }
    if (obj == NULL || (nl = bmp_der("CertificateTemplate", &n)) <= 0 ||
        (vl = bmp_der(tmpl, &v)) <= 0)
        goto crypto;
    total = ASN1_object_size(1, nl + vl, V_ASN1_SEQUENCE);
    if (total <= 0 || (seq = p = OPENSSL_malloc((size_t)total)) == NULL)
        goto crypto;
    ASN1_put_object(&p, 1, nl + vl, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, n, (size_t)nl);
    memcpy(p + nl, v, (size_t)vl);
    if (!X509_REQ_add1_attr_by_OBJ(req, obj, V_ASN1_SEQUENCE, seq, total))
        goto crypto;
    rc = 0;
    goto out;
crypto:
    err_runtime("E_CRYPTO", "encoding the AD CS template attribute failed");
out:
    OPENSSL_free(n);
    OPENSSL_free(v);
    OPENSSL_free(seq);
    ASN1_OBJECT_free(obj);
    return rc;
}

/* Raw r||s from the token -> DER ECDSA-Sig-Value for X.509. */
static int
ecdsa_raw_to_der(const uint8_t *raw, size_t len, unsigned char **der, int *derlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);

    *der = NULL;
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return -1;
    }
    *derlen = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *derlen > 0 ? 0 : -1;
}

static int
signature_nid(int base, const char *digest)
{
    bool s384 = strcmp(digest, "sha384") == 0, s512 = strcmp(digest, "sha512") == 0;
    if (base == EVP_PKEY_RSA)
        return s384 ? NID_sha384WithRSAEncryption : s512 ? NID_sha512WithRSAEncryption
                                                         : NID_sha256WithRSAEncryption;
    if (base == EVP_PKEY_EC)
        return s384 ? NID_ecdsa_with_SHA384 : s512 ? NID_ecdsa_with_SHA512 : NID_ecdsa_with_SHA256;
    return NID_ED25519;
}

/* Have the signer sign the CertificationRequestInfo and attach the signature. */
static int
sign_request(const struct signer *signer, X509_REQ *req, const char *digest)
{
    int base = EVP_PKEY_get_base_id(signer->pub);
    unsigned char *tbs = NULL, *der = NULL;
    uint8_t *sig = NULL;
    size_t siglen;
    int tbslen, derlen, rc = -1;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;

    if ((tbslen = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
        err_runtime("E_CRYPTO", "encoding the request failed");
        goto out;
    }
    if (signer->sign(signer->ctx, digest, tbs, (size_t)tbslen, &sig, &siglen) == -1)
        goto out;
    if (base == EVP_PKEY_EC) {
        if (ecdsa_raw_to_der(sig, siglen, &der, &derlen) == -1)
            goto crypto;
    } else {
        der = OPENSSL_memdup(sig, siglen);
        derlen = (int)siglen;
        if (der == NULL)
            goto crypto;
    }
    if ((alg = X509_ALGOR_new()) == NULL ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(signature_nid(base, digest)),
            base == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL) ||
        !X509_REQ_set1_signature_algo(req, alg))
        goto crypto;
    if ((bits = ASN1_BIT_STRING_new()) == NULL || !ASN1_BIT_STRING_set(bits, der, derlen))
        goto crypto;
    /*
     * Mark "no unused bits": without this OpenSSL derives the unused-bit
     * count from trailing zero bytes and drops them, corrupting about one
     * signature in 256.
     */
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL; /* transferred */
    rc = 0;
    goto out;
crypto:
    err_runtime("E_CRYPTO", "attaching the token's signature to the request failed");
out:
    OPENSSL_free(tbs);
    OPENSSL_free(der);
    free(sig);
    X509_ALGOR_free(alg);
    ASN1_BIT_STRING_free(bits);
    return rc;
}

int
csr_build(const struct signer *signer, const struct csr_spec *spec, X509_REQ **out)
{
    X509_REQ *req = X509_REQ_new();
    EVP_PKEY *pub = signer->pub;
    const char *digest = spec->digest ? spec->digest : "sha256";
    int base = EVP_PKEY_get_base_id(pub);

    *out = NULL;
    if (req == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (strcmp(digest, "sha256") != 0 && strcmp(digest, "sha384") != 0 &&
        strcmp(digest, "sha512") != 0) {
        err_input("E_DIGEST", "[csr] hash = %s: use sha256, sha384 or sha512", digest);
        goto fail;
    }
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, pub)) {
        err_runtime("E_CRYPTO", "building the request failed");
        goto fail;
    }
    if (add_subject(req, spec) == -1 || add_extensions(req, spec, base == EVP_PKEY_RSA) == -1 ||
        (spec->ms_template != NULL && add_ms_template(req, spec->ms_template) == -1) ||
        sign_request(signer, req, digest) == -1)
        goto fail;
    /* Check before anyone sees it: the signer's key made a valid signature. */
    if (X509_REQ_verify(req, pub) != 1) {
        err_runtime("E_SIGN", "the request signed by key %s does not verify; not written",
            signer->name);
        goto fail;
    }
    if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub) != 1) {
        err_runtime("E_SIGN", "the request's public key is not the token key's");
        goto fail;
    }
    *out = req;
    return 0;
fail:
    X509_REQ_free(req);
    ERR_clear_error();
    return -1;
}

int
csr_encode(X509_REQ *req, bool der, unsigned char **buf, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int ok;

    *buf = NULL;
    *len = 0;
    if (b == NULL)
        return -1;
    ok = der ? i2d_X509_REQ_bio(b, req) : PEM_write_bio_X509_REQ(b, req);
    if (ok && (n = BIO_get_mem_data(b, &data)) > 0 && (*buf = malloc((size_t)n)) != NULL) {
        memcpy(*buf, data, (size_t)n);
        *len = (size_t)n;
    }
    BIO_free(b);
    if (*buf == NULL) {
        err_runtime("E_CRYPTO", "encoding the request failed");
        return -1;
    }
    return 0;
}

/* ---- certificates ----------------------------------------------------------- */

int
cert_parse(const uint8_t *buf, size_t len, const char *what, X509 **leaf, STACK_OF(X509) **chain)
{
    BIO *b = NULL;
    X509 *x;
    int n = 0, rc = -1;

    *leaf = NULL;
    ERR_clear_error();  /* judge only what this parse leaves behind */
    if (len >= 11 && memmem(buf, len, "-----BEGIN ", 11) != NULL) {
        if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
            goto out;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            if (n++ == 0)
                *leaf = x;
            else if (chain == NULL || (*chain == NULL && (*chain = sk_X509_new_null()) == NULL) ||
                !sk_X509_push(*chain, x))
                X509_free(x);
        }
        /* The normal end is "no start line"; anything else is a broken block. */
        unsigned long e = ERR_peek_last_error();
        if (n == 0 || (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
            err_input("E_CERT_FILE", "%s: %s", what,
                memmem(buf, len, "-----BEGIN CERTIFICATE-----", 27) == NULL
                    ? "no PEM certificate in it" : "a PEM block is corrupt or truncated");
            goto out;
        }
    } else {
        const unsigned char *p = buf;
        *leaf = d2i_X509(NULL, &p, (long)len);
        if (*leaf == NULL || p != buf + len) {
            err_input("E_CERT_FILE", "%s: not a PEM or DER certificate (corrupt or truncated)",
                what);
            goto out;
        }
    }
    if (X509_get0_pubkey(*leaf) == NULL) {
        err_input("E_CERT_FILE", "%s: the certificate's public key cannot be read", what);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        X509_free(*leaf);
        *leaf = NULL;
        if (chain != NULL) {
            sk_X509_pop_free(*chain, X509_free);
            *chain = NULL;
        }
    }
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

int
cert_read(const char *path, const char *what, X509 **leaf, STACK_OF(X509) **chain)
{
    uint8_t *buf = NULL;
    size_t len;
    char *label = NULL;
    int rc;

    *leaf = NULL;
    if (read_file_capped(path, CERT_FILE_MAX, &buf, &len) == -1) {
        err_input("E_CERT_FILE", "%s %s: %s", what, path,
            errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        return -1;
    }
    if (asprintf(&label, "%s %s", what, path) == -1)
        label = NULL;
    rc = cert_parse(buf, len, label ? label : path, leaf, chain);
    free(label);
    free(buf);
    return rc;
}

int
cert_check_chain(X509 *leaf, STACK_OF(X509) *chain)
{
    X509 *child = leaf;

    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *issuer = sk_X509_value(chain, i);
        if (X509_check_issued(issuer, child) != X509_V_OK ||
            X509_verify(child, X509_get0_pubkey(issuer)) != 1) {
            char *s = X509_NAME_oneline(X509_get_subject_name(issuer), NULL, 0);
            char *clean = sanitize(s ? s : "?", 256);
            err_runtime("E_CHAIN", "chain certificate %d (%s) did not issue the certificate "
                "before it; the chain does not link", i + 1, clean ? clean : "?");
            free(clean);
            OPENSSL_free(s);
            ERR_clear_error();
            return -1;
        }
        child = issuer;
    }
    return 0;
}

/* "notBefore 2026-01-02T03:04:05Z" style text of an ASN1_TIME into buf. */
static void
time_text(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "(unreadable)");
}

/* The validity part of cert_usable(). */
static int
usable_time(X509 *cert, time_t now, char *why, size_t size)
{
    const ASN1_TIME *nb = X509_get0_notBefore(cert), *na = X509_get0_notAfter(cert);
    time_t soon = now + CERT_SKEW_S;
    char when[32];

    if (nb == NULL || X509_cmp_time(nb, &soon) >= 0) {
        time_text(nb, when, sizeof(when));
        snprintf(why, size, "the certificate is not valid yet (notBefore %s; the host clock "
            "may be up to %d s behind)", when, CERT_SKEW_S);
        return -1;
    }
    if (na == NULL || X509_cmp_time(na, &now) <= 0) {
        time_text(na, when, sizeof(when));
        snprintf(why, size, "the certificate has expired (notAfter %s)", when);
        return -1;
    }
    return 0;
}

int
cert_usable(X509 *cert, const char *const *eku, size_t neku, time_t now, char *why,
    size_t size)
{
    uint32_t xku;

    if (usable_time(cert, now, why, size) == -1)
        return -1;
    /* X509_get_extension_flags() caches the parsed extensions; an invalid one sets EXFLAG_INVALID. */
    if (X509_get_extension_flags(cert) & EXFLAG_INVALID) {
        snprintf(why, size, "the certificate has a malformed extension");
        return -1;
    }
    if (X509_get_extension_flags(cert) & EXFLAG_CA) {
        snprintf(why, size, "the certificate is a CA certificate (basicConstraints cA), "
            "not a server certificate");
        return -1;
    }
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) &&
        (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
        snprintf(why, size, "the certificate may sign certificates (keyUsage keyCertSign), "
            "a server certificate must not");
        return -1;
    }
    xku = X509_get_extension_flags(cert) & EXFLAG_XKUSAGE ? X509_get_extended_key_usage(cert)
                                                          : 0;
    for (size_t i = 0; i < neku; i++) {
        uint32_t bit = strcmp(eku[i], "serverAuth") == 0 ? XKU_SSL_SERVER
            : strcmp(eku[i], "clientAuth") == 0          ? XKU_SSL_CLIENT
                                                         : 0;
        if (bit != 0 && (xku & bit) == 0) {
            snprintf(why, size, "the certificate lacks the extended key usage %s, which the "
                "plan asks for", eku[i]);
            return -1;
        }
    }
    return 0;
}

int
cert_check_usable(X509 *cert, const struct plan *plan, enum cert_source src)
{
    char why[200];

    if (cert_usable(cert, plan ? plan->eku : NULL, plan ? plan->neku : 0, time(NULL), why,
            sizeof(why)) == 0)
        return 0;
    if (src == CERT_FROM_FILE)
        err_input("E_CERT_INVALID", "%s; nothing installed", why);
    else
        err_runtime("E_CERT", "%s; nothing installed, the previous certificate stays", why);
    return -1;
}

int
cert_check_names(X509 *cert, const struct plan *plan)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    char **have = calloc((size_t)n + 1, sizeof(*have));
    size_t nhave = 0;
    int rc = -1;

    if (have == NULL)
        goto out;
    for (int i = 0; i < n; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        /* The plan has DNS names only: an IP, URI or e-mail SAN is an extra name. */
        if (g->type != GEN_DNS) {
            err_runtime("E_CERT_NAMES", "the certificate carries a non-DNS subjectAltName (type %d), "
                "which is not in the plan", g->type);
            goto out;
        }
        const ASN1_IA5STRING *s = g->d.dNSName;
        size_t slen = (size_t)ASN1_STRING_length(s);
        const char *data = (const char *)ASN1_STRING_get0_data(s);
        if (memchr(data, '\0', slen) != NULL) {
            err_runtime("E_CERT_NAMES", "the certificate carries a DNS name with a NUL byte");
            goto out;
        }
        /* Cleaned here (a control byte becomes '?', never a planned name): it may be printed. */
        char *name = sanitize(data, slen);
        if (name == NULL)
            goto out;
        for (char *c = name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        for (size_t j = 0; j < nhave; j++)
            if (strcmp(have[j], name) == 0) {
                err_runtime("E_CERT_NAMES", "the certificate names %s twice", name);
                free(name);
                goto out;
            }
        have[nhave++] = name;
    }
    for (size_t i = 0; i < plan->nsans; i++) {
        bool found = false;
        for (size_t j = 0; j < nhave && !found; j++)
            found = strcmp(have[j], plan->sans[i].name) == 0;
        if (!found) {
            err_runtime("E_CERT_NAMES", "the certificate lacks %s, which the plan requires (%s)",
                plan->sans[i].name, plan->sans[i].src.rule);
            goto out;
        }
    }
    for (size_t j = 0; j < nhave; j++) {
        /* No SAN planned: CAs (public ones must) repeat the CN as a SAN. */
        bool found = plan->nsans == 0 && strcasecmp(have[j], plan->cn) == 0;
        for (size_t i = 0; i < plan->nsans && !found; i++)
            found = strcmp(have[j], plan->sans[i].name) == 0;
        if (!found) {
            err_runtime("E_CERT_NAMES", "the certificate names %s, which is not in the plan", have[j]);
            goto out;
        }
    }
    if (plan->nsans == 0) {
        /* No SAN planned (internal Edge): the CN must be the plan's subject. */
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
        if (strcasecmp(cn, plan->cn) != 0) {
            char *clean = sanitize(cn, sizeof(cn));
            err_runtime("E_CERT_NAMES", "the certificate's CN is %s, the plan's is %s",
                clean ? clean : "?", plan->cn);
            free(clean);
            goto out;
        }
    }
    rc = 0;
out:
    for (size_t j = 0; j < nhave; j++)
        free(have[j]);
    free(have);
    GENERAL_NAMES_free(gens);
    return rc;
}

int
cert_pem_append(X509 *cert, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *grown;
    long n;
    int rc = -1;

    if (b != NULL && PEM_write_bio_X509(b, cert) && (n = BIO_get_mem_data(b, &data)) > 0 &&
        (grown = realloc(*out, *len + (size_t)n + 1)) != NULL) {
        memcpy(grown + *len, data, (size_t)n);
        *len += (size_t)n;
        grown[*len] = '\0';
        *out = grown;
        rc = 0;
    }
    BIO_free(b);
    if (rc != 0)
        err_runtime("E_CRYPTO", "encoding a certificate failed");
    return rc;
}
