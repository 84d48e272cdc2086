/*
 * Unit tests for csr.c: requests built and signed through the signer
 * interface with in-memory keys, and the certificate checks (names against
 * a plan, chain linkage, PEM/DER parsing).  Keys here are OpenSSL software
 * keys: these tests are about the requests and checks, not the token.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../support/soft_signer.h"
#include "csr.h"
#include "plan.h"
#include "util.h"

static EVP_PKEY *
ec_key(void)
{
    return EVP_EC_gen("P-256");
}

/* A certificate for `key` with these DNS SANs, signed by `ca_key` (self when NULL). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *ca, EVP_PKEY *ca_key)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
    X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
    if (san != NULL) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, ca_key ? ca_key : key, EVP_sha256());
    return x;
}

static struct plan *
plan_of(const char *ini)
{
    struct profile *p;
    struct plan *pl;
    cr_assert_eq(profile_load_mem("t.ini", ini, strlen(ini), &p), 0);
    cr_assert_eq(plan_build(p, &pl), 0);
    profile_free(p);
    return pl;
}

static const char seed[] = "[edge]\naccess-edge = sip.contoso.com\nwebconf-edge = webcon.contoso.com\n"
                           "sip-domains = contoso.com, fabrikam.com\nxmpp-domains = contoso.com\n";

Test(names, equal_sets_pass_in_any_order_and_case)
{
    struct plan *pl = plan_of(seed);
    EVP_PKEY *k = ec_key();
    X509 *x = make_cert(k, "sip.contoso.com",
        "DNS:contoso.com,DNS:SIP.contoso.com,DNS:webcon.contoso.com,DNS:sip.fabrikam.com", NULL, NULL);
    cr_assert_eq(cert_check_names(x, pl), 0);
    X509_free(x);
    EVP_PKEY_free(k);
    plan_free(pl);
}

Test(names, missing_extra_duplicate_fail)
{
    struct plan *pl = plan_of(seed);
    EVP_PKEY *k = ec_key();
    const char *bad[] = {
        "DNS:webcon.contoso.com,DNS:sip.contoso.com,DNS:sip.fabrikam.com",
        "DNS:webcon.contoso.com,DNS:sip.contoso.com,DNS:sip.fabrikam.com,DNS:contoso.com,DNS:x.contoso.com",
        "DNS:webcon.contoso.com,DNS:sip.contoso.com,DNS:sip.fabrikam.com,DNS:contoso.com,DNS:Contoso.com",
    };
    for (size_t i = 0; i < 3; i++) {
        X509 *x = make_cert(k, "sip.contoso.com", bad[i], NULL, NULL);
        cr_assert_eq(cert_check_names(x, pl), -1, "case %zu", i);
        cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
        X509_free(x);
    }
    EVP_PKEY_free(k);
    plan_free(pl);
}

Test(names, internal_without_san_checks_cn)
{
    struct plan *pl = plan_of("[edge]\ncertificate = internal\ninternal-fqdn = lsedge.contoso.net\n");
    EVP_PKEY *k = ec_key();
    X509 *good = make_cert(k, "LSEdge.contoso.net", NULL, NULL, NULL);
    X509 *bad = make_cert(k, "other.contoso.net", NULL, NULL, NULL);
    cr_assert_eq(cert_check_names(good, pl), 0);
    cr_assert_eq(cert_check_names(bad, pl), -1);
    X509_free(good);
    X509_free(bad);
    EVP_PKEY_free(k);
    plan_free(pl);
}

Test(chain, links_and_breaks)
{
    EVP_PKEY *cak = ec_key(), *k = ec_key(), *otherk = ec_key();
    X509 *ca = make_cert(cak, "CA", NULL, NULL, NULL);
    X509 *other = make_cert(otherk, "Other CA", NULL, NULL, NULL);
    X509 *leaf = make_cert(k, "leaf", "DNS:a.example.com", ca, cak);
    STACK_OF(X509) *good = sk_X509_new_null(), *bad = sk_X509_new_null();
    sk_X509_push(good, ca);
    sk_X509_push(bad, other);
    cr_assert_eq(cert_check_chain(leaf, good), 0);
    cr_assert_eq(cert_check_chain(leaf, bad), -1);
    cr_assert_eq(err_exit_code(), EXIT_RUNTIME); /* a CA fault (issue 11) */
    sk_X509_free(good);
    sk_X509_free(bad);
    X509_free(ca);
    X509_free(other);
    X509_free(leaf);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
    EVP_PKEY_free(otherk);
}

Test(parse, pem_chain_der_and_garbage)
{
    EVP_PKEY *k = ec_key();
    X509 *a = make_cert(k, "a", NULL, NULL, NULL), *b = make_cert(k, "b", NULL, NULL, NULL);
    char *pem = NULL;
    size_t len = 0;
    cr_assert_eq(cert_pem_append(a, &pem, &len), 0);
    cr_assert_eq(cert_pem_append(b, &pem, &len), 0);
    X509 *leaf;
    STACK_OF(X509) *chain = NULL;
    cr_assert_eq(cert_parse((uint8_t *)pem, len, "t", &leaf, &chain), 0);
    cr_assert_eq(sk_X509_num(chain), 1);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    chain = NULL;
    /* Truncated PEM, garbage, DER with trailing bytes. */
    cr_assert_eq(cert_parse((uint8_t *)pem, len / 3, "t", &leaf, &chain), -1);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
    cr_assert_eq(cert_parse((const uint8_t *)"xyz", 3, "t", &leaf, NULL), -1);
    unsigned char *der = NULL;
    int dl = i2d_X509(a, &der);
    unsigned char *der2 = malloc((size_t)dl + 1);
    memcpy(der2, der, (size_t)dl);
    der2[dl] = 0;
    cr_assert_eq(cert_parse(der2, (size_t)dl, "t", &leaf, NULL), 0);
    X509_free(leaf);
    cr_assert_eq(cert_parse(der2, (size_t)dl + 1, "t", &leaf, NULL), -1);
    OPENSSL_free(der);
    free(der2);
    free(pem);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(k);
}

/* ---- csr_build through a software signer ---------------------------------- */

static const char *const test_sans[] = { "webcon.contoso.com", "sip.contoso.com",
    "sip.fabrikam.com" };

/* Build a request for `key` with `digest`, check it in memory and after DER. */
static void
build_and_verify(EVP_PKEY *key, const char *digest, int want_md_nid)
{
    struct signer s;
    struct csr_spec spec = { .cn = "sip.contoso.com", .sans = test_sans, .nsans = 3,
        .server_auth = true, .digest = digest, .o = "Contoso" };
    X509_REQ *req = NULL, *back;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len, md_nid = NID_undef, pk_nid;
    STACK_OF(X509_EXTENSION) *exts;
    GENERAL_NAMES *gens;
    char cn[64];

    cr_assert_not_null(key);
    cr_assert_eq(soft_signer_new(key, &s), 0);
    cr_assert_eq(csr_build(&s, &spec, &req), 0);
    cr_assert_eq(X509_REQ_verify(req, key), 1);
    cr_assert_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
    /* Through DER: the signature BIT STRING must survive a round trip. */
    cr_assert_gt(len = i2d_X509_REQ(req, &der), 0);
    p = der;
    cr_assert_not_null(back = d2i_X509_REQ(NULL, &p, len));
    cr_assert_eq(X509_REQ_verify(back, key), 1);
    cr_assert_eq(OBJ_find_sigid_algs(X509_REQ_get_signature_nid(back), &md_nid, &pk_nid), 1);
    cr_assert_eq(md_nid, want_md_nid);
    cr_assert_gt(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(back), NID_commonName,
        cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "sip.contoso.com");
    cr_assert_not_null(exts = X509_REQ_get_extensions(back));
    cr_assert_not_null(gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL));
    cr_assert_eq(sk_GENERAL_NAME_num(gens), 3);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    OPENSSL_free(der);
    X509_REQ_free(back);
    X509_REQ_free(req);
    signer_clear(&s);
    cr_assert_null(s.ctx);
}

Test(build, ec_keys_sign_and_verify)
{
    EVP_PKEY *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384"),
             *p521 = EVP_EC_gen("P-521");
    build_and_verify(p256, "sha256", NID_sha256);
    build_and_verify(p384, "sha384", NID_sha384);
    build_and_verify(p521, "sha512", NID_sha512);
    /* Many signatures: about one in 256 has a trailing zero byte. */
    for (int i = 0; i < 64; i++)
        build_and_verify(p256, NULL, NID_sha256);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
}

Test(build, rsa_key_signs_and_verifies)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    build_and_verify(rsa, "sha256", NID_sha256);
    build_and_verify(rsa, "sha512", NID_sha512);
    EVP_PKEY_free(rsa);
}

Test(build, refuses_a_signature_that_does_not_verify)
{
    EVP_PKEY *signing = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    struct signer s;
    struct csr_spec spec = { .cn = "sip.contoso.com", .sans = test_sans, .nsans = 3,
        .server_auth = true };
    X509_REQ *req = NULL;

    /* The signer claims `other` as its public key but signs with `signing`. */
    cr_assert_eq(soft_signer_new(signing, &s), 0);
    s.pub = other;
    cr_assert_eq(csr_build(&s, &spec, &req), -1);
    cr_assert_null(req);
    cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
    signer_clear(&s);
    EVP_PKEY_free(signing);
    EVP_PKEY_free(other);
}

Test(build, refuses_an_unknown_digest)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    struct signer s;
    struct csr_spec spec = { .cn = "sip.contoso.com", .digest = "md5" };
    X509_REQ *req = NULL;

    cr_assert_eq(soft_signer_new(key, &s), 0);
    cr_assert_eq(csr_build(&s, &spec, &req), -1);
    cr_assert_null(req);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
    signer_clear(&s);
    EVP_PKEY_free(key);
}

/*
 * A self-signed certificate valid from now+nb to now+na seconds, with the
 * given extensions (config strings, NULL: absent), for cert_usable().
 */
static X509 *
make_usable(EVP_PKEY *key, long nb, long na, const char *bc, const char *ku, const char *eku)
{
    X509 *x = make_cert(key, "a.example.com", "DNS:a.example.com", NULL, NULL);
    const struct { int nid; const char *v; } ext[] = {
        { NID_basic_constraints, bc }, { NID_key_usage, ku }, { NID_ext_key_usage, eku },
    };
    X509V3_CTX ctx;

    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (ext[i].v == NULL)
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].v);
        cr_assert_not_null(e, "extension %s", ext[i].v);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, key, EVP_sha256());
    return x;
}

/* cert_usable() at now with serverAuth required; the reason when refused. */
static int
usable(X509 *x, const char *const *eku, size_t neku, char *why)
{
    why[0] = '\0';
    return cert_usable(x, eku, neku, time(NULL), why, 200);
}

Test(usable, validity_with_clock_skew_allowance)
{
    static const char *const sa[] = { "serverAuth" };
    EVP_PKEY *k = ec_key();
    char why[200];
    struct { long nb, na; int rc; const char *why; } cases[] = {
        { -60, 3600, 0, "" },                                   /* valid now */
        { CERT_SKEW_S / 2, 3600, 0, "" },                       /* CA clock a bit ahead */
        { CERT_SKEW_S + 120, 3600, -1, "not valid yet" },       /* beyond the allowance */
        { 365L * 86400, 400L * 86400, -1, "not valid yet" },    /* next year */
        { -86400 * 60, -86400, -1, "has expired" },             /* the past */
        { -3600, -1, -1, "has expired" },                       /* just expired */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x = make_usable(k, cases[i].nb, cases[i].na, "critical,CA:FALSE", NULL,
            "serverAuth");
        cr_expect_eq(usable(x, sa, 1, why), cases[i].rc, "case %zu: %s", i, why);
        cr_expect(strstr(why, cases[i].why) != NULL, "case %zu: %s", i, why);
        X509_free(x);
    }
    EVP_PKEY_free(k);
}

Test(usable, ca_keycertsign_and_ekus)
{
    static const char *const sa[] = { "serverAuth" }, *const both[] = { "serverAuth",
        "clientAuth" };
    EVP_PKEY *k = ec_key();
    char why[200];
    struct { const char *bc, *ku, *eku; const char *const *want; size_t n; int rc;
        const char *why; } cases[] = {
        { "critical,CA:FALSE", "critical,digitalSignature", "serverAuth", sa, 1, 0, "" },
        { NULL, NULL, "serverAuth,clientAuth", both, 2, 0, "" },      /* no basicConstraints */
        { "critical,CA:TRUE", NULL, "serverAuth", sa, 1, -1, "CA certificate" },
        { NULL, "critical,keyCertSign,digitalSignature", "serverAuth", sa, 1, -1,
            "keyCertSign" },
        { NULL, NULL, "clientAuth", sa, 1, -1, "serverAuth" },
        { NULL, NULL, "serverAuth", both, 2, -1, "clientAuth" },
        { NULL, NULL, NULL, sa, 1, -1, "serverAuth" },                /* no EKU at all */
        { NULL, NULL, NULL, NULL, 0, 0, "" },                         /* no plan: no EKU asked */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x = make_usable(k, -60, 3600, cases[i].bc, cases[i].ku, cases[i].eku);
        cr_expect_eq(usable(x, cases[i].want, cases[i].n, why), cases[i].rc, "case %zu: %s", i,
            why);
        cr_expect(strstr(why, cases[i].why) != NULL, "case %zu: %s", i, why);
        X509_free(x);
    }
    EVP_PKEY_free(k);
}
