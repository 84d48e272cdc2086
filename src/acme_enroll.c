/*
 * acme_enroll.c - `enroll` against an ACME CA with every key on the token.
 *
 * The ACME client (src/acme/) never touches the token: it asks a jws_signer to
 * sign, and this file gives it one backed by the account key on the token,
 * and a callback that builds the CSR signed by the certificate key.  The
 * certificate that comes back is checked (key, names, chain) and installed
 * by enroll_install(), like an offline import.
 */
#include "acme_enroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme.h"
#include "csr.h"
#include "jws.h"
#include "profile.h"
#include "renew.h"
#include "util.h"

#define DEFAULT_ACCOUNT_LABEL "p11enroll-acme-account"

/* ---- the account key on the token ------------------------------------------ */

int
acme_account_label(struct enroll *e, char **label)
{
    const char *uri = e->prof->ca.account_key;
    int r;

    *label = NULL;
    if (uri == NULL)
        return (*label = strdup(DEFAULT_ACCOUNT_LABEL)) != NULL ? 0 : -1;
    if ((r = token_matches_uri(e->tok, uri, label)) == -1)
        return -1;
    if (r == 0 || *label == NULL) {
        char *shown = uri_redact(uri);
        err_input("E_ACCOUNT_KEY", "%s: [ca] account-key %s must name an object "
            "(object=) on the profile's token %s", e->prof->name, shown, token_label(e->tok));
        free(shown);
        free(*label);
        *label = NULL;
        return -1;
    }
    return 0;
}

/*
 * The account key named by [ca] account-key (an object on the profile's
 * token), created on first use as EC P-256.  *key is freed by the caller
 * after the signer built on it is cleared.
 */
static int
account_key(struct enroll *e, struct token_key **key)
{
    char *label = NULL;
    int r, rc = -1;

    *key = NULL;
    if (acme_account_label(e, &label) == -1)
        return -1;
    if (enroll_keygen_recover(e) == -1 ||
        (r = token_find_key(e->tok, label, NULL, 0, key)) == -1)
        goto out;
    if (r == 1) {
        progress("creating the ACME account key %s on token %s", label, token_label(e->tok));
        if (enroll_keygen(e, keytype_parse("ec:p256"), label, key) == -1)
            goto out;
    }
    rc = 0;
out:
    free(label);
    return rc;
}

/* ---- configuration -------------------------------------------------------- */

int
acme_enroll_check(struct enroll *e)
{
    const struct profile *p = e->prof;
    const char *ch = p->ca.challenge ? p->ca.challenge : "http-01";

#define NEED(v, what) \
    do { \
        if ((v) == NULL) { \
            err_input("E_MISSING", "%s: [ca] type = acme needs %s", p->name, what); \
            return -1; \
        } \
    } while (0)
    NEED(p->ca.directory, "[ca] directory");
    NEED(p->ca.ca_bundle, "[ca] ca-bundle (the ACME server's TLS trust anchors)");
    NEED(p->output.state_dir, "[output] state-dir (account and order state)");
    if (strcmp(ch, "http-01") == 0 && p->ca.http_listen == NULL && p->ca.webroot == NULL) {
        err_input("E_MISSING", "%s: challenge http-01 needs [ca] http-listen or webroot", p->name);
        return -1;
    }
    if (strcmp(ch, "dns-01") == 0)
        NEED(p->ca.dns_hook, "[ca] dns-hook for challenge dns-01");
    if ((p->ca.eab_kid == NULL) != (p->ca.eab_hmac_file == NULL)) {
        err_input("E_MISSING", "%s: External Account Binding needs both [ca] eab-kid and "
            "eab-hmac-file", p->name);
        return -1;
    }
#undef NEED
    if (strcmp(ch, "http-01") == 0 && p->ca.http_listen != NULL) {
        const char *colon = strrchr(p->ca.http_listen, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        /* An empty HOST (":80") listens on all addresses, as documented. */
        if (colon == NULL || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
            err_input("E_HTTP_LISTEN", "%s: [ca] http-listen = %s: expected [HOST]:PORT",
                p->name, p->ca.http_listen);
            return -1;
        }
    }
    if (access(p->ca.ca_bundle, R_OK) == -1) {
        err_input("E_CA_BUNDLE", "%s: [ca] ca-bundle %s: %s", p->name, p->ca.ca_bundle,
            strerror(errno));
        return -1;
    }
    if (!acme_url_ok(p->ca.directory, false)) {
        err_input("E_URL", "%s: [ca] directory %s: not an https URL", p->name, p->ca.directory);
        return -1;
    }
    return 0;
}

static int
state_path(const struct profile *p, const char *file, char **out)
{
    if (asprintf(out, "%s/%s", p->output.state_dir, file) == -1) {
        *out = NULL;
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    return 0;
}

/* ---- the run ---------------------------------------------------------------- */

struct acme_client *
acme_enroll_client(struct enroll *e)
{
    struct acme_server srv = {
        .directory_url = e->prof->ca.directory,
        .ca_bundle = e->prof->ca.ca_bundle,
        .allow_origins = e->prof->ca.allow_origins,
    };
    uint64_t secs;

    /* Checked when the profile was loaded. */
    if (profile_seconds(e->prof->ca.timeout, &secs) == 0)
        srv.timeout_s = (unsigned)secs;
    if (e->acme == NULL && acme_client_new(&srv, &e->acme) == -1)
        return NULL;
    return e->acme;
}

static int
make_csr(void *arg, uint8_t **der, size_t *len)
{
    struct enroll *e = arg;
    X509_REQ *req = NULL;
    unsigned char *buf = NULL;
    int rc = -1;

    *der = NULL;
    *len = 0;
    progress("signing the certificate request with %s on token %s", token_key_label(e->key),
        token_label(e->tok));
    if (enroll_csr(e, &req) == 0 && csr_encode(req, true, &buf, len) == 0) {
        *der = buf;
        rc = 0;
    }
    X509_REQ_free(req);
    return rc;
}

/* What one run holds: the ACME settings and the state files they name. */
struct run {
    struct acme_config cfg;
    char *account_state, *order_state, *order_key, *replaces;
    uint8_t *hmac;
    size_t hmaclen;
};

/*
 * The ACME settings from the profile, the state dir made, the EAB key
 * read; for a renewal the replaced certificate's ARI CertID.
 */
static int
run_config(const struct enroll *e, struct run *run)
{
    const struct profile *p = e->prof;
    uint64_t secs;

    run->cfg = (struct acme_config){
        .contact = p->ca.contact,
        .eab_kid = p->ca.eab_kid,
        .challenge = p->ca.challenge && strcmp(p->ca.challenge, "dns-01") == 0 ? ACME_DNS01
                                                                                : ACME_HTTP01,
        .http_listen = p->ca.http_listen,
        .webroot = p->ca.webroot,
        .dns_hook = p->ca.dns_hook,
    };
    if (profile_seconds(p->ca.dns_wait, &secs) == 0)
        run->cfg.dns_wait_s = (unsigned)secs;
    /* No AKI, no CertID: then the order simply replaces nothing. */
    if (e->renewing != NULL && (run->replaces = renew_ari_cert_id(e->renewing)) != NULL)
        run->cfg.replaces = run->replaces;
    if (mkdir(p->output.state_dir, 0700) == -1 && errno != EEXIST) {
        err_runtime("E_FILE", "[output] state-dir %s: %s", p->output.state_dir, strerror(errno));
        return -1;
    }
    if (state_path(p, "acme-account.url", &run->account_state) == -1 ||
        state_path(p, "acme-order.url", &run->order_state) == -1)
        return -1;
    run->cfg.account_state = run->account_state;
    run->cfg.order_state = run->order_state;
    if (p->ca.eab_hmac_file != NULL) {
        if (acme_read_eab_key(p->ca.eab_hmac_file, &run->hmac, &run->hmaclen) == -1)
            return -1;
        run->cfg.eab_hmac = run->hmac;
        run->cfg.eab_hmac_len = run->hmaclen;
    }
    return 0;
}

static void
run_clear(struct run *run)
{
    if (run->hmac != NULL) {
        wipe(run->hmac, run->hmaclen);
        free(run->hmac);
    }
    free(run->account_state);
    free(run->order_state);
    free(run->order_key);
    free(run->replaces);
    memset(run, 0, sizeof(*run));
}

/*
 * The JWS signer on the account key (*acct, freed by the caller after the
 * signer is cleared), which must not be the certificate key.
 */
static int
account_signer(struct enroll *e, struct token_key **acct, struct jws_signer *signer)
{
    if (account_key(e, acct) == -1)
        return -1;
    if (EVP_PKEY_eq(token_key_public(*acct), token_key_public(e->key)) == 1) {
        err_input("E_ACCOUNT_KEY", "%s: [ca] account-key names the certificate key %s; the CA "
            "refuses a CSR signed by the account key: use a separate object", e->prof->name,
            token_key_label(e->key));
        return -1;
    }
    struct signer s;
    if (token_signer(e->tok, *acct, &s) == -1 || jws_signer_from_signer(&s, signer) == -1)
        return -1;
    return 0;
}

/* The names to order: the plan's SANs, or its CN when there are none.  Caller frees *names. */
static int
order_names(const struct plan *plan, const char ***names, size_t *n)
{
    *n = plan->nsans;
    if ((*names = calloc(*n + 1, sizeof(**names))) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        (*names)[i] = plan->sans[i].name;
    if (*n == 0) {
        (*names)[0] = plan->cn;
        *n = 1;
    }
    return 0;
}

/*
 * A saved order belongs to the key it was opened for: when the key has
 * changed since (regenerated, rotated), the old order is dropped.  Records
 * the key's SPKI hash in acme-order.key for the next run.
 */
static int
order_for_key(struct enroll *e, struct run *run)
{
    uint8_t *saved = NULL;
    size_t slen;
    const char *spki = token_key_spki_sha256(e->key);

    if (state_path(e->prof, "acme-order.key", &run->order_key) == -1)
        return -1;
    if (read_file_capped(run->order_key, 128, &saved, &slen) == 0 &&
        (slen < 64 || memcmp(saved, spki, 64) != 0)) {
        progress("order: the saved order was for another key; starting a new one");
        (void)acme_forget_order(&run->cfg);
    }
    free(saved);
    return write_file_atomic(run->order_key, spki, strlen(spki), 0600);
}

/* ACME CAs choose the subject; Edge servers want the planned CN (R-E3). */
static void
warn_subject_cn(const struct enroll *e, X509 *leaf)
{
    char cn[256] = "";

    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    if (e->plan->kind != PLAN_NAMES && strcasecmp(cn, e->plan->cn) != 0) {
        char *clean = sanitize(cn, sizeof(cn));    /* the CA's text */
        warnmsg("the CA set the subject CN to %s, not %s (R-E3: Lync/SfB Edge expect the "
            "Access Edge FQDN as subject); the SANs are as planned",
            clean && clean[0] ? clean : "(none)", e->plan->cn);
        free(clean);
    }
}

int
acme_enroll_run(struct enroll *e, const char *stage_fullchain, struct enroll_result *res)
{
    struct run run = { 0 };
    struct jws_signer signer = { 0 };
    struct acme_client *client;
    struct token_key *acct = NULL;
    const char **names = NULL;
    char *chain_pem = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    size_t n;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (run_config(e, &run) == -1 || account_signer(e, &acct, &signer) == -1 ||
        order_names(e->plan, &names, &n) == -1 || order_for_key(e, &run) == -1)
        goto out;
    if ((client = acme_enroll_client(e)) == NULL ||
        acme_issue(client, &run.cfg, &signer, names, n, make_csr, e, &chain_pem) == -1)
        goto out;
    if (cert_parse((const uint8_t *)chain_pem, strlen(chain_pem), "the CA's certificate chain",
            &leaf, &chain) == -1) {
        err_clear();
        err_runtime("E_ACME_RESPONSE", "the certificate the CA returned cannot be read");
        goto out;
    }
    /* The same checks as an offline import: key, names, chain; then install. */
    progress("installing the certificate on token %s next to %s", token_label(e->tok),
        token_key_label(e->key));
    if ((stage_fullchain != NULL ? enroll_install_staged(e, leaf, chain, stage_fullchain, res)
                                 : enroll_install(e, leaf, chain, res)) == -1)
        goto out;
    (void)acme_forget_order(&run.cfg);
    (void)unlink(run.order_key);
    warn_subject_cn(e, leaf);
    rc = 0;
out:
    jws_signer_clear(&signer);
    token_key_free(acct);
    run_clear(&run);
    free(names);
    free(chain_pem);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}
