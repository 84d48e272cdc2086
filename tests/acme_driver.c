/*
 * acme_driver.c - ACME protocol test harness: runs acme_issue() against a
 * real CA (Pebble) with an OpenSSL software account key and a software
 * CSR.  Test-only: the product signs both on the token.
 *
 *   acme_driver --directory URL --ca-bundle F [options] NAME...
 *
 * Options:
 *   --account-key F     PEM account key; created (EC P-256, or RSA with
 *                       --account-rsa) when missing, so reruns reuse it
 *   --account-rsa       create an RSA-2048 account key
 *   --cert-rsa          the certificate key is RSA-2048 (default EC P-256)
 *   --challenge T       http-01 (default) | dns-01
 *   --http-listen A     built-in http-01 responder address
 *   --webroot D         http-01 webroot
 *   --dns-hook H        dns-01 hook
 *   --eab-kid K --eab-hmac-file F
 *   --state-dir D       account and order URLs kept in D/account-url, D/order-url
 *   --timeout S         overall deadline
 *   --dns-wait S        dns-01: wait S s after the hook adds (not counted in --timeout)
 *   --out F             write the PEM chain here
 *   --contact C
 *   --token URI --account-label L [--account-type T] [--module M]
 *                       the account key on a PKCS#11 token (found by label,
 *                       generated as T, default ec:p256, when missing),
 *                       signing through token_signer(); PIN from
 *                       P11ENROLL_PIN or the URI
 *
 * On success prints "serial=HEX" and "names=a,b" on stdout after checking
 * that the leaf's key is the CSR key and its SANs are exactly the names.
 * Exit codes as p11enroll's (0, 1 runtime, 2 input).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "keytype.h"
#include "token.h"
#include "util.h"
#include "support/soft_signer.h"

struct csr_arg {
    EVP_PKEY *key;
    const char *const *names;
    size_t n;
    int calls;
};

static int
make_csr(void *arg, uint8_t **der, size_t *len)
{
    struct csr_arg *c = arg;
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subj = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    X509_EXTENSION *ext = NULL;
    int n, rc = -1;

    *der = NULL;
    *len = 0;
    c->calls++;
    if (req == NULL || subj == NULL || exts == NULL || gens == NULL)
        goto out;
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
        (const unsigned char *)c->names[0], -1, -1, 0);
    X509_REQ_set_subject_name(req, subj);
    X509_REQ_set_pubkey(req, c->key);
    for (size_t i = 0; i < c->n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        ASN1_STRING_set(s, c->names[i], -1);
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(gens, g);
    }
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req, exts);
    if (X509_REQ_sign(req, c->key, EVP_sha256()) <= 0)
        goto out;
    if ((n = i2d_X509_REQ(req, der)) <= 0)
        goto out;
    *len = (size_t)n;
    rc = 0;
out:
    if (rc != 0)
        err_runtime("E_CSR", "cannot build the test CSR");
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subj);
    X509_REQ_free(req);
    return rc;
}

static EVP_PKEY *
account_key(const char *path, bool rsa)
{
    EVP_PKEY *k = NULL;
    FILE *f;

    if (path != NULL && (f = fopen(path, "r")) != NULL) {
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return k;
    }
    k = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (k != NULL && path != NULL && (f = fopen(path, "w")) != NULL) {
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
        fclose(f);
    }
    return k;
}

/* The leaf must carry the CSR key and exactly the requested names. */
static int
check_leaf(const char *chain, EVP_PKEY *key, const char *const *names, size_t n)
{
    BIO *b = BIO_new_mem_buf(chain, -1);
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    GENERAL_NAMES *gens = NULL;
    int rc = -1, count = 0;

    if (leaf == NULL) {
        fprintf(stderr, "acme_driver: the chain has no certificate\n");
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        fprintf(stderr, "acme_driver: the leaf's key is not the CSR key\n");
        goto out;
    }
    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        bool found = false;
        if (g->type != GEN_DNS)
            continue;
        count++;
        for (size_t k = 0; k < n && !found; k++)
            found = strcasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), names[k]) == 0;
        if (!found) {
            fprintf(stderr, "acme_driver: unexpected SAN %s\n",
                (const char *)ASN1_STRING_get0_data(g->d.dNSName));
            goto out;
        }
    }
    if ((size_t)count != n) {
        fprintf(stderr, "acme_driver: %d SANs for %zu names\n", count, n);
        goto out;
    }
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = BN_bn2hex(bn);
    printf("serial=%s\nnames=", hex);
    for (size_t k = 0; k < n; k++)
        printf("%s%s", k ? "," : "", names[k]);
    printf("\n");
    OPENSSL_free(hex);
    BN_free(bn);
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    X509_free(leaf);
    BIO_free(b);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "directory", required_argument, NULL, 'd' },
        { "ca-bundle", required_argument, NULL, 'c' },
        { "account-key", required_argument, NULL, 'k' },
        { "account-rsa", no_argument, NULL, 'R' },
        { "cert-rsa", no_argument, NULL, 'r' },
        { "challenge", required_argument, NULL, 'C' },
        { "http-listen", required_argument, NULL, 'l' },
        { "webroot", required_argument, NULL, 'w' },
        { "dns-hook", required_argument, NULL, 'H' },
        { "eab-kid", required_argument, NULL, 'e' },
        { "eab-hmac-file", required_argument, NULL, 'E' },
        { "state-dir", required_argument, NULL, 's' },
        { "timeout", required_argument, NULL, 't' },
        { "dns-wait", required_argument, NULL, 'W' },
        { "out", required_argument, NULL, 'o' },
        { "contact", required_argument, NULL, 'm' },
        { "token", required_argument, NULL, 'T' },
        { "account-label", required_argument, NULL, 'L' },
        { "account-type", required_argument, NULL, 'Y' },
        { "module", required_argument, NULL, 'M' },
        { NULL, 0, NULL, 0 },
    };
    struct acme_config cfg = { .challenge = ACME_HTTP01 };
    struct acme_server srv = { 0 };
    struct acme_client *client = NULL;
    struct jws_signer signer = { 0 };
    struct csr_arg ca = { 0 };
    const char *keypath = NULL, *eabfile = NULL, *out = NULL, *state = NULL;
    const char *token_uri = NULL, *acct_label = NULL, *acct_type = "ec:p256", *module = NULL;
    struct token *tok = NULL;
    struct token_key *tkey = NULL;
    char *acct_state = NULL, *order_state = NULL, *chain = NULL;
    uint8_t *eab = NULL;
    size_t eablen = 0;
    bool acct_rsa = false, cert_rsa = false;
    EVP_PKEY *akey = NULL;
    int c, rc = EXIT_INPUT;

    util_set_command("acme_driver");
    util_set_verbosity(getenv("ACME_DRIVER_VERBOSE") ? 1 : 0);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': srv.directory_url = optarg; break;
        case 'c': srv.ca_bundle = optarg; break;
        case 'k': keypath = optarg; break;
        case 'R': acct_rsa = true; break;
        case 'r': cert_rsa = true; break;
        case 'C':
            if (strcmp(optarg, "dns-01") == 0)
                cfg.challenge = ACME_DNS01;
            else if (strcmp(optarg, "http-01") != 0)
                return EXIT_INPUT;
            break;
        case 'l': cfg.http_listen = optarg; break;
        case 'w': cfg.webroot = optarg; break;
        case 'H': cfg.dns_hook = optarg; break;
        case 'e': cfg.eab_kid = optarg; break;
        case 'E': eabfile = optarg; break;
        case 's': state = optarg; break;
        case 't': srv.timeout_s = (unsigned)atoi(optarg); break;
        case 'W': cfg.dns_wait_s = (unsigned)atoi(optarg); break;
        case 'o': out = optarg; break;
        case 'm': cfg.contact = optarg; break;
        case 'T': token_uri = optarg; break;
        case 'L': acct_label = optarg; break;
        case 'Y': acct_type = optarg; break;
        case 'M': module = optarg; break;
        default: return EXIT_INPUT;
        }
    }
    if (optind >= argc || srv.directory_url == NULL) {
        fprintf(stderr, "usage: acme_driver --directory URL --ca-bundle F [options] NAME...\n");
        return EXIT_INPUT;
    }
    ca.names = (const char *const *)argv + optind;
    ca.n = (size_t)(argc - optind);
    if (state != NULL && (asprintf(&acct_state, "%s/account-url", state) == -1 ||
        asprintf(&order_state, "%s/order-url", state) == -1))
        return EXIT_RUNTIME;
    cfg.account_state = acct_state;
    cfg.order_state = order_state;
    if (eabfile != NULL) {
        if (acme_read_eab_key(eabfile, &eab, &eablen) != 0)
            return err_exit_code();
        cfg.eab_hmac = eab;
        cfg.eab_hmac_len = eablen;
    }
    if ((ca.key = cert_rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
        fprintf(stderr, "acme_driver: key generation failed\n");
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (token_uri != NULL) {
        /* The product's signer: the account key never leaves the token. */
        struct token_opts to = { .uri = token_uri, .module_path = module, .login = true };
        const struct keytype *kt = keytype_parse(acct_type);
        struct signer ts;
        int f;
        if (acct_label == NULL || kt == NULL) {
            fprintf(stderr, "acme_driver: --token needs --account-label and a valid --account-type\n");
            goto done;
        }
        if (token_open(&to, &tok) != 0 ||
            (f = token_find_key(tok, acct_label, NULL, 0, &tkey)) == -1 ||
            (f == 1 && token_keygen(tok, kt, acct_label, NULL, 0, &tkey) != 0) ||
            token_signer(tok, tkey, &ts) != 0 || jws_signer_from_signer(&ts, &signer) != 0) {
            rc = err_exit_code();
            goto done;
        }
        fprintf(stderr, "acme_driver: account key %s on the token (%s, %s)\n", acct_label,
            f == 1 ? "generated" : "found", signer.alg);
    } else if ((akey = account_key(keypath, acct_rsa)) == NULL ||
        soft_signer_init(akey, &signer) != 0) {
        fprintf(stderr, "acme_driver: no account key\n");
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (acme_client_new(&srv, &client) != 0 ||
        acme_issue(client, &cfg, &signer, ca.names, ca.n, make_csr, &ca, &chain) != 0) {
        rc = err_exit_code();
        goto done;
    }
    if (check_leaf(chain, ca.key, ca.names, ca.n) != 0 ||
        (out != NULL && write_file_atomic(out, chain, strlen(chain), 0644) != 0)) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    fprintf(stderr, "acme_driver: make_csr called %d time(s)\n", ca.calls);
    acme_forget_order(&cfg);
    rc = EXIT_DONE;
done:
    acme_client_free(client);
    free(chain);
    jws_signer_clear(&signer);
    token_key_free(tkey);
    token_close(tok);
    EVP_PKEY_free(akey);
    EVP_PKEY_free(ca.key);
    if (eab != NULL) {
        wipe(eab, eablen);
        free(eab);
    }
    free(acct_state);
    free(order_state);
    return rc;
}
