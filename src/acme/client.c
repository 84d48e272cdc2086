/*
 * client.c - the ACME client flow (RFC 8555): the client object (one HTTP
 * handle, the directory fetched once), nonces, signed POST and
 * POST-as-GET, account, order, finalize, download (authorizations: authz.c).
 * Modelled on uacme's authorize loop and OpenBSD acme-client's netproc:
 * every server value is checked before use, every wait is bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "acme_int.h"
#include "util.h"

/* ---- EAB key file ------------------------------------------------------- */

int
acme_read_eab_key(const char *path, uint8_t **key, size_t *len)
{
    uint8_t *buf = NULL;
    size_t n = 0, k = 0;
    int rc = -1;

    *key = NULL;
    *len = 0;
    if (read_file_capped(path, 4096, &buf, &n) != 0) {
        err_input("E_EAB", "eab-hmac-file %s: %s", path,
            errno == EFBIG ? "larger than 4 KiB" : strerror(errno));
        return -1;
    }
    /* Keep the key characters, mapping standard base64 onto base64url. */
    for (size_t i = 0; i < n; i++) {
        char c = (char)buf[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        buf[k++] = (uint8_t)(c == '+' ? '-' : c == '/' ? '_' : c);
    }
    buf[k] = '\0';
    if (k == 0 || b64url_decode((const char *)buf, key, len) != 0 || *len == 0) {
        if (*key != NULL) {
            wipe(*key, *len);
            free(*key);
            *key = NULL;
        }
        *len = 0;
        err_input("E_EAB", "eab-hmac-file %s: not a base64url key", path);
        goto out;
    }
    rc = 0;
out:
    wipe(buf, n);
    free(buf);
    return rc;
}

int
acme_forget_order(const struct acme_config *cfg)
{
    if (cfg->order_state == NULL || unlink(cfg->order_state) == 0 || errno == ENOENT)
        return 0;
    err_runtime("E_FILE", "%s: %s", cfg->order_state, strerror(errno));
    return -1;
}

/* ---- the client object ------------------------------------------------ */

int
acme_client_new(const struct acme_server *srv, struct acme_client **out)
{
    struct http_opts ho = {
        .ca_bundle = srv->ca_bundle,
        .timeout_ms = (long)(srv->request_timeout_s ? srv->request_timeout_s : 30) * 1000L,
        .allow_http = srv->allow_http,
    };
    struct acme_client *c;
    unsigned deadline_s = srv->timeout_s ? srv->timeout_s : ACME_DEFAULT_TIMEOUT_S;
    char name[64];

    *out = NULL;
    if (!acme_url_ok(srv->directory_url, srv->allow_http)) {
        err_input("E_PROFILE", "[ca] directory: not an https URL");
        return -1;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL ||
        (c->directory_url = strdup(srv->directory_url)) == NULL ||
        (srv->allow_origins != NULL &&
            (c->allow_origins = strdup(srv->allow_origins)) == NULL)) {
        if (c != NULL)
            free(c->directory_url);
        free(c);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    c->allow_http = srv->allow_http;
    if (http_new(&ho, &c->http) != 0) {
        acme_client_free(c);
        return -1;
    }
    snprintf(name, sizeof(name), "[ca] timeout = %u s", deadline_s);
    http_set_deadline(c->http, (long)deadline_s * 1000L, name);
    *out = c;
    return 0;
}

void
acme_client_free(struct acme_client *c)
{
    if (c == NULL)
        return;
    acme_directory_clear(&c->dir);
    http_free(c->http);
    free(c->directory_url);
    free(c->allow_origins);
    free(c);
}

int
acme_client_directory(struct acme_client *c, const struct acme_directory **dir)
{
    struct http_response r;

    *dir = NULL;
    if (!c->have_dir) {
        if (http_get(c->http, c->directory_url, ACME_DIR_CAP, "application/json", &r) != 0)
            return -1;
        if (r.status != 200)
            acme_report_response("ACME directory", &r);
        else if (acme_parse_directory(r.body, r.body_len, c->allow_http, &c->dir) == 0 &&
            acme_origin_check_directory(c, &c->dir) == 0)
            c->have_dir = true;
        http_response_clear(&r);
        if (!c->have_dir)
            return -1;
    }
    *dir = &c->dir;
    return 0;
}

/* ---- the client --------------------------------------------------------- */

long
acme_time_left_ms(const struct acme *a)
{
    return http_time_left_ms(a->http);
}

/*
 * Sleep before the next poll: the back-off, which starts short and doubles
 * up to a cap, or longer when the server's Retry-After asks for it (capped,
 * so a hostile value cannot park us; "0" cannot make us spin).  Fails when
 * the wait would pass the deadline.
 */
int
acme_poll_wait(struct acme *a, long retry_after, long *backoff_ms, const char *what)
{
    long wait = *backoff_ms;
    struct timespec ts;

    if (retry_after > 0) {
        long ra = (retry_after > ACME_RETRY_AFTER_MAX ? ACME_RETRY_AFTER_MAX : retry_after) * 1000L;
        if (ra > wait)
            wait = ra;
    }
    if (wait >= acme_time_left_ms(a)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s: still not done", what);
        http_deadline_passed(a->http, msg);
        return -1;
    }
    verbose("%s: waiting %ld ms", what, wait);
    ts.tv_sec = wait / 1000;
    ts.tv_nsec = (wait % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
    *backoff_ms = *backoff_ms * 2 > ACME_POLL_MAX_MS ? ACME_POLL_MAX_MS : *backoff_ms * 2;
    return 0;
}

static void
take_nonce(struct acme *a, struct http_response *r)
{
    if (r->nonce != NULL && b64url_valid(r->nonce, 256)) {
        free(a->nonce);
        a->nonce = r->nonce;
        r->nonce = NULL;    /* transferred */
    }
}

void
acme_report_response(const char *what, const struct http_response *r)
{
    char *p = NULL;

    if (r->content_type != NULL && strcmp(r->content_type, "application/problem+json") == 0)
        p = acme_problem_format(r->body, r->body_len, NULL);
    if (p != NULL)
        err_runtime("E_ACME", "%s: %s", what, p);
    else
        err_runtime("E_ACME", "%s: HTTP %ld from the server", what, r->status);
    free(p);
}

/* The problem type of an error response ("" when none), borrowed from buf. */
static const char *
problem_type(const struct http_response *r, char *buf, size_t size)
{
    char *type = NULL, *s;

    buf[0] = '\0';
    if (r->status < 400 || r->content_type == NULL ||
        strcmp(r->content_type, "application/problem+json") != 0)
        return buf;
    s = acme_problem_format(r->body, r->body_len, &type);
    if (type != NULL)
        snprintf(buf, size, "%s", type);
    free(s);
    free(type);
    return buf;
}

static int
get_nonce(struct acme *a)
{
    struct http_response r;

    if (http_head(a->http, a->dir->new_nonce, &r) != 0)
        return -1;
    if ((r.status != 200 && r.status != 204) || r.nonce == NULL ||
        !b64url_valid(r.nonce, 256)) {
        err_runtime("E_ACME", "newNonce: HTTP %ld without a usable Replay-Nonce", r.status);
        http_response_clear(&r);
        return -1;
    }
    take_nonce(a, &r);
    http_response_clear(&r);
    return 0;
}

static int account_register(struct acme *a);

/*
 * A signed POST (payload NULL: POST-as-GET), retried on badNonce with the
 * nonce the error carried.  use_jwk: sign with the JWK (newAccount), else
 * with the account URL.  A saved account the server does not know is
 * registered again, once.  Returns 0 with *resp for any status (caller
 * judges), or -1 after reporting.
 */
int
acme_post(struct acme *a, const char *url, const char *payload, bool use_jwk,
    size_t cap, const char *accept, struct http_response *resp)
{
    char type[128];

    if (acme_origin_check(a->client, url, "request URL") != 0)
        return -1;
    for (int attempt = 0;; attempt++) {
        char *body = NULL;
        int rc;

        if (a->nonce == NULL && get_nonce(a) != 0)
            return -1;
        rc = jws_build(a->signer, url, a->nonce, use_jwk ? NULL : a->kid, payload, &body);
        free(a->nonce);
        a->nonce = NULL;    /* each nonce is used once */
        if (rc != 0)
            return -1;
        rc = http_post_jose(a->http, url, body, cap, accept, resp);
        free(body);
        if (rc != 0)
            return -1;
        take_nonce(a, resp);
        problem_type(resp, type, sizeof(type));
        if (strcmp(type, "urn:ietf:params:acme:error:badNonce") == 0 &&
            attempt + 1 < ACME_NONCE_RETRIES) {
            verbose("badNonce from the server, retrying (%d)", attempt + 1);
            http_response_clear(resp);
            continue;
        }
        if (!use_jwk && !a->reregistered &&
            strcmp(type, "urn:ietf:params:acme:error:accountDoesNotExist") == 0) {
            progress("account: the server no longer knows %s; registering again", a->kid);
            a->reregistered = true;
            http_response_clear(resp);
            free(a->kid);
            a->kid = NULL;
            if (account_register(a) != 0)
                return -1;
            continue;
        }
        return 0;
    }
}

/* True when both URLs have the same scheme://host:port. */
static bool
same_origin(const char *a, const char *b)
{
    const char *ha = strstr(a, "://"), *hb = strstr(b, "://");
    size_t la, lb;

    if (ha == NULL || hb == NULL)
        return false;
    la = (size_t)(ha - a) + 3 + strcspn(ha + 3, "/?#");
    lb = (size_t)(hb - b) + 3 + strcspn(hb + 3, "/?#");
    return la == lb && strncasecmp(a, b, la) == 0;
}

/*
 * A URL from a state file, or NULL (absent or unusable: then ignored).  A
 * URL of another server (the profile's directory changed) is ignored too.
 */
static char *
state_read_url(const char *path, bool allow_http, const char *server)
{
    uint8_t *buf = NULL;
    size_t n;
    char *s;

    if (path == NULL || read_file_capped(path, ACME_URL_MAX + 2, &buf, &n) != 0)
        return NULL;
    s = (char *)buf;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    if (!acme_url_ok(s, allow_http)) {
        warnmsg("%s: not a URL, ignored", path);
        free(buf);
        return NULL;
    }
    if (!same_origin(s, server)) {
        verbose("%s: for another server, ignored", path);
        free(buf);
        return NULL;
    }
    return s;
}

static int
state_write_url(const char *path, const char *url)
{
    char *text;
    int rc;

    if (path == NULL)
        return 0;
    if (asprintf(&text, "%s\n", url) == -1) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rc = write_file_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

/*
 * newAccount.  only_existing: look the key up without creating (returns 1
 * when the server has no account for it).  Else create, agreeing to the
 * terms, with contact and EAB.
 */
static int
account_request(struct acme *a, bool only_existing)
{
    json_t *p = json_object(), *eab = NULL;
    char *payload = NULL, *san = NULL, type[128];
    struct http_response r = { 0 };
    int rc = -1;

    if (p == NULL)
        goto oom;
    if (only_existing) {
        json_object_set_new(p, "onlyReturnExisting", json_true());
    } else {
        json_object_set_new(p, "termsOfServiceAgreed", json_true());
        if (a->cfg->contact != NULL && a->cfg->contact[0] != '\0')
            json_object_set_new(p, "contact", json_pack("[s]", a->cfg->contact));
        if (a->cfg->eab_kid != NULL) {
            if (jws_eab(a->cfg->eab_kid, a->cfg->eab_hmac, a->cfg->eab_hmac_len,
                a->signer->jwk, a->dir->new_account, &eab) != 0)
                goto out;
            json_object_set_new(p, "externalAccountBinding", eab);
        } else if (a->dir->eab_required) {
            err_input("E_EAB_REQUIRED", "the ACME server requires External Account Binding: "
                "set eab-kid and eab-hmac-file");
            goto out;
        }
    }
    if ((payload = json_dumps(p, JSON_COMPACT)) == NULL)
        goto oom;
    if (acme_post(a, a->dir->new_account, payload, true, ACME_BODY_CAP,
        "application/json", &r) != 0)
        goto out;
    problem_type(&r, type, sizeof(type));
    if (only_existing && strcmp(type, "urn:ietf:params:acme:error:accountDoesNotExist") == 0) {
        rc = 1;
        goto out;
    }
    if (r.status != 200 && r.status != 201) {
        acme_report_response(only_existing ? "account lookup" : "account registration", &r);
        goto out;
    }
    if (!acme_url_ok(r.location, a->allow_http)) {
        err_runtime("E_ACME_RESPONSE", "newAccount: no acceptable Location for the account");
        goto out;
    }
    if (acme_origin_check(a->client, r.location, "newAccount Location") != 0)
        goto out;
    a->kid = r.location;
    r.location = NULL;  /* transferred */
    san = sanitize(a->kid, 256);
    progress("account: %s %s", r.status == 201 ? "created" : "found", san ? san : "?");
    if (state_write_url(a->cfg->account_state, a->kid) != 0)
        goto out;
    rc = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    http_response_clear(&r);
    json_decref(p);
    free(payload);
    free(san);
    return rc;
}

static int
account_register(struct acme *a)
{
    int rc = account_request(a, true);
    if (rc == 1)
        rc = account_request(a, false);
    return rc;
}

static int
account_setup(struct acme *a)
{
    if ((a->kid = state_read_url(a->cfg->account_state, a->allow_http,
        a->dir->new_account)) != NULL) {
        char *san = sanitize(a->kid, 256);
        progress("account: %s", san ? san : "?");
        free(san);
        return 0;
    }
    return account_register(a);
}

/* POST-as-GET a resource that must answer 200. */
int
acme_fetch(struct acme *a, const char *url, const char *what, struct http_response *r)
{
    if (acme_post(a, url, NULL, false, ACME_BODY_CAP, "application/json", r) != 0)
        return -1;
    if (r->status != 200) {
        acme_report_response(what, r);
        http_response_clear(r);
        return -1;
    }
    return 0;
}

int
acme_fetch_order(struct acme *a, const char *url, struct acme_order *o, long *retry_after)
{
    struct http_response r;
    int rc;

    if (acme_fetch(a, url, "order", &r) != 0)
        return -1;
    rc = acme_parse_order(r.body, r.body_len, a->allow_http, o);
    if (retry_after != NULL)
        *retry_after = r.retry_after;
    http_response_clear(&r);
    return rc;
}

/*
 * Resume the saved order when it is still good for these names; returns 1
 * (and nothing reported) when there is none to resume.
 */
static int
order_resume(struct acme *a, const char *const *names, size_t n, char **url,
    struct acme_order *o)
{
    struct http_response r;
    char *saved = state_read_url(a->cfg->order_state, a->allow_http, a->dir->new_order);
    char *san;
    int rc = 1;

    if (saved == NULL)
        return 1;
    san = sanitize(saved, 256);
    if (acme_post(a, saved, NULL, false, ACME_BODY_CAP, "application/json", &r) != 0) {
        rc = -1;
        goto out;
    }
    if (r.status != 200) {
        progress("order: saved order %s is gone (HTTP %ld); starting a new one",
            san ? san : "?", r.status);
    } else if (acme_parse_order(r.body, r.body_len, a->allow_http, o) != 0) {
        err_clear();
        progress("order: saved order %s is unreadable; starting a new one", san ? san : "?");
    } else if (o->status == ACME_S_INVALID || o->status == ACME_S_EXPIRED ||
        o->status == ACME_S_REVOKED || o->status == ACME_S_DEACTIVATED) {
        progress("order: saved order %s is %s; starting a new one", san ? san : "?",
            acme_status_name(o->status));
        acme_order_clear(o);
    } else if (!acme_order_names_match(o, names, n)) {
        progress("order: saved order %s is for other names; starting a new one",
            san ? san : "?");
        acme_order_clear(o);
    } else {
        progress("order: resuming %s (%s)", san ? san : "?", acme_status_name(o->status));
        *url = saved;
        saved = NULL;   /* transferred */
        rc = 0;
    }
    http_response_clear(&r);
out:
    free(saved);
    free(san);
    return rc;
}

/* POST newOrder for names (with "replaces" when not NULL): as acme_post(). */
static int
order_post(struct acme *a, const char *const *names, size_t n, const char *replaces,
    struct http_response *r)
{
    char *payload = acme_order_payload(names, n, replaces);
    int rc;

    if (payload == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (replaces != NULL)
        verbose("order: replaces %s (ARI)", replaces);
    rc = acme_post(a, a->dir->new_order, payload, false, ACME_BODY_CAP, "application/json", r);
    free(payload);
    return rc;
}

/*
 * A new order, its URL saved at once.  A renewal's order names the
 * certificate it replaces (RFC 9773 §5) when the CA speaks ARI; a CA that
 * refuses that (already replaced, another account...) is asked again
 * without it, so "replaces" can never block a renewal.
 */
static int
order_new(struct acme *a, const char *const *names, size_t n, char **url,
    struct acme_order *o)
{
    const char *replaces = a->dir->renewal_info != NULL ? a->cfg->replaces : NULL;
    char *san = NULL;
    struct http_response r = { 0 };
    int rc = -1;

    if (order_post(a, names, n, replaces, &r) != 0)
        goto out;
    if (replaces != NULL && r.status >= 400 && r.status < 500) {
        char *why = acme_problem_format(r.body, r.body_len, NULL);
        warnmsg("the CA refused an order replacing the current certificate (%s); ordering "
            "without \"replaces\"", why ? why : "no problem document");
        free(why);
        http_response_clear(&r);
        if (order_post(a, names, n, NULL, &r) != 0)
            goto out;
    }
    if (r.status != 201) {
        acme_report_response("new order", &r);
        goto out;
    }
    if (!acme_url_ok(r.location, a->allow_http)) {
        err_runtime("E_ACME_RESPONSE", "new order: no acceptable Location for the order");
        goto out;
    }
    if (acme_origin_check(a->client, r.location, "new order Location") != 0)
        goto out;
    if (acme_parse_order(r.body, r.body_len, a->allow_http, o) != 0)
        goto out;
    if (!acme_order_names_match(o, names, n)) {
        err_runtime("E_ACME_RESPONSE", "new order: the server changed the names");
        goto out;
    }
    /* Saved at once: a rerun after an interruption continues this order. */
    if (state_write_url(a->cfg->order_state, r.location) != 0)
        goto out;
    san = sanitize(r.location, 256);
    progress("order: created %s for %zu name%s", san ? san : "?", n, n == 1 ? "" : "s");
    *url = r.location;
    r.location = NULL;  /* transferred */
    rc = 0;
out:
    if (rc != 0)
        acme_order_clear(o);
    http_response_clear(&r);
    free(san);
    return rc;
}

/* Send the CSR; *o becomes the order the answer carries, *retry_after its Retry-After. */
static int
finalize(struct acme *a, struct acme_order *o, long *retry_after,
    int (*make_csr)(void *arg, uint8_t **der, size_t *len), void *arg)
{
    uint8_t *der = NULL;
    size_t len = 0;
    char *csr64 = NULL, *payload = NULL;
    json_t *p = NULL;
    struct http_response r = { 0 };
    int rc = -1;

    if (make_csr(arg, &der, &len) != 0)
        return -1;
    progress("finalize: sending the CSR (%zu bytes)", len);
    if ((csr64 = b64url_encode(der, len)) == NULL ||
        (p = json_pack("{s:s}", "csr", csr64)) == NULL ||
        (payload = json_dumps(p, JSON_COMPACT)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto out;
    }
    if (acme_post(a, o->finalize, payload, false, ACME_BODY_CAP, "application/json", &r) != 0)
        goto out;
    if (r.status != 200) {
        acme_report_response("finalize", &r);
        goto out;
    }
    acme_order_clear(o);
    if (acme_parse_order(r.body, r.body_len, a->allow_http, o) != 0)
        goto out;
    *retry_after = r.retry_after;
    rc = 0;
out:
    http_response_clear(&r);
    json_decref(p);
    free(payload);
    free(csr64);
    free(der);
    return rc;
}

static int
download(struct acme *a, const char *url, char **chain)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    struct http_response r;
    const char *s;
    int rc = -1;

    if (acme_post(a, url, NULL, false, ACME_CHAIN_CAP, "application/pem-certificate-chain",
        &r) != 0)
        return -1;
    if (r.status != 200) {
        acme_report_response("certificate download", &r);
        goto out;
    }
    if (r.content_type != NULL && strcmp(r.content_type, "application/pem-certificate-chain") != 0) {
        char *ct = sanitize(r.content_type, 80);
        err_runtime("E_ACME_RESPONSE", "certificate download: unexpected Content-Type %s",
            ct ? ct : "?");
        free(ct);
        goto out;
    }
    for (s = r.body; *s == ' ' || *s == '\r' || *s == '\n'; s++)
        ;
    if (strlen(r.body) != r.body_len || strncmp(s, begin, sizeof(begin) - 1) != 0) {
        err_runtime("E_ACME_RESPONSE", "certificate download: not a PEM certificate chain");
        goto out;
    }
    progress("download: certificate chain (%zu bytes)", r.body_len);
    *chain = r.body;
    r.body = NULL;  /* transferred */
    rc = 0;
out:
    http_response_clear(&r);
    return rc;
}

int
acme_issue(struct acme_client *c, const struct acme_config *cfg,
    const struct jws_signer *account, const char *const *names, size_t n_names,
    int (*make_csr)(void *arg, uint8_t **der, size_t *len), void *arg,
    char **chain_pem)
{
    struct acme a = { .cfg = cfg, .signer = account, .client = c, .http = c->http,
        .allow_http = c->allow_http };
    struct acme_order o = { 0 };
    char *order_url = NULL;
    bool authorized = false, finalized = false;
    long backoff = ACME_POLL_START_MS, retry_after = -1;
    int rc = -1, r;

    *chain_pem = NULL;
    if (n_names == 0) {
        err_input("E_NAMES", "no names to order a certificate for");
        return -1;
    }
    if (jws_thumbprint(account->jwk, &a.thumbprint) != 0 ||
        acme_client_directory(c, &a.dir) != 0 || account_setup(&a) != 0)
        goto out;

    if ((r = order_resume(&a, names, n_names, &order_url, &o)) == -1)
        goto out;
    if (r == 1 && order_new(&a, names, n_names, &order_url, &o) != 0)
        goto out;
    for (;;) {
        switch (o.status) {
        case ACME_S_PENDING:
            if (authorized) {
                err_runtime("E_ACME", "order is still pending after its authorizations");
                goto out;
            }
            if (acme_authorize(&a, order_url, &o) != 0)
                goto out;
            authorized = true;
            continue;   /* o is the order as last polled */
        case ACME_S_READY:
            if (finalized) {
                err_runtime("E_ACME", "order is still ready after finalize");
                goto out;
            }
            if (finalize(&a, &o, &retry_after, make_csr, arg) != 0)
                goto out;
            finalized = true;
            backoff = ACME_POLL_START_MS;
            continue;   /* the finalize response carries the order */
        case ACME_S_PROCESSING:
            if (acme_poll_wait(&a, retry_after, &backoff, "order") != 0)
                goto out;
            break;
        case ACME_S_VALID:
            progress("order: valid");
            rc = download(&a, o.certificate, chain_pem);
            goto out;
        default:
            err_runtime("E_ACME", "order is %s: %s", acme_status_name(o.status),
                o.error ? o.error : "no reason given");
            goto out;
        }
        acme_order_clear(&o);
        if (acme_fetch_order(&a, order_url, &o, &retry_after) != 0)
            goto out;
    }
out:
    acme_order_clear(&o);
    free(order_url);
    free(a.nonce);
    free(a.kid);
    free(a.thumbprint);
    return rc;
}
