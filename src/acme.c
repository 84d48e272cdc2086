/*
 * acme.c - RFC 8555 client: directory, nonces, account, order,
 * authorizations with http-01 (built-in responder or webroot) or dns-01
 * (hook), finalize, download.  Modelled on uacme's authorize loop and
 * OpenBSD acme-client's netproc: every server value is checked before use,
 * every wait is bounded.
 */
#include "acme.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "util.h"

#define ACME_BODY_CAP       (1024 * 1024)
#define ACME_CHAIN_CAP      (256 * 1024)
#define ACME_NONCE_RETRIES  20  /* badNonce retries per request */
#define ACME_URL_MAX        2048
#define ACME_TOKEN_MAX      256
#define ACME_POLL_START_MS  150
#define ACME_POLL_MAX_MS    5000
#define ACME_RETRY_AFTER_MAX 60
#define ACME_PROBLEM_MAX    1024

/* ---- pure pieces -------------------------------------------------------- */

static const char *const status_names[] = {
    [ACME_S_UNKNOWN] = "unknown", [ACME_S_PENDING] = "pending",
    [ACME_S_READY] = "ready", [ACME_S_PROCESSING] = "processing",
    [ACME_S_VALID] = "valid", [ACME_S_INVALID] = "invalid",
    [ACME_S_EXPIRED] = "expired", [ACME_S_DEACTIVATED] = "deactivated",
    [ACME_S_REVOKED] = "revoked",
};

const char *
acme_status_name(enum acme_status s)
{
    if ((size_t)s < sizeof(status_names) / sizeof(status_names[0]))
        return status_names[s];
    return "unknown";
}

static enum acme_status
status_parse(const char *s)
{
    for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(s, status_names[i]) == 0)
            return (enum acme_status)i;
    return ACME_S_UNKNOWN;
}

bool
acme_url_ok(const char *url, bool allow_http)
{
    const char *p;
    size_t n;

    if (url == NULL)
        return false;
    if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else if (allow_http && strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else
        return false;
    if (*p == '\0' || *p == '/')
        return false;
    n = strlen(url);
    if (n > ACME_URL_MAX)
        return false;
    /* RFC 3986 unreserved, reserved and '%': nothing a shell or a log could misread. */
    for (p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c))
            continue;
        if (strchr("-._~:/?#[]@!$&'()*+,;=%", c) == NULL)
            return false;
    }
    return true;
}

/* Parse a JSON object, reporting what is wrong with it as `what`. */
static json_t *
load_object(const char *text, size_t len, const char *what)
{
    json_error_t e;
    json_t *j;

    if (text == NULL) {
        err_runtime("E_ACME_RESPONSE", "%s: empty response", what);
        return NULL;
    }
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        char *why = sanitize(e.text, 200);
        err_runtime("E_ACME_RESPONSE", "%s: not JSON: %s", what, why ? why : "?");
        free(why);
        return NULL;
    }
    if (!json_is_object(j)) {
        err_runtime("E_ACME_RESPONSE", "%s: not a JSON object", what);
        json_decref(j);
        return NULL;
    }
    return j;
}

/*
 * A string member.  required: missing is an error.  url: must pass
 * acme_url_ok().  Returns 0 with *out (NULL when absent) or -1 after
 * reporting.
 */
static int
get_str(json_t *obj, const char *key, bool required, int url, bool allow_http,
    const char *what, char **out)
{
    json_t *v = json_object_get(obj, key);
    const char *s;

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        err_runtime("E_ACME_RESPONSE", "%s: \"%s\" missing", what, key);
        return -1;
    }
    if (!json_is_string(v)) {
        err_runtime("E_ACME_RESPONSE", "%s: \"%s\" is not a string", what, key);
        return -1;
    }
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strlen(s) > ACME_URL_MAX) {
        err_runtime("E_ACME_RESPONSE", "%s: \"%s\" is malformed", what, key);
        return -1;
    }
    if (url && !acme_url_ok(s, allow_http)) {
        char *san = sanitize(s, 200);
        err_runtime("E_ACME_RESPONSE", "%s: \"%s\" is not an acceptable URL: %s", what,
            key, san ? san : "?");
        free(san);
        return -1;
    }
    if ((*out = strdup(s)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    return 0;
}

static int
get_status(json_t *obj, const char *what, enum acme_status *out)
{
    json_t *v = json_object_get(obj, "status");

    if (!json_is_string(v)) {
        err_runtime("E_ACME_RESPONSE", "%s: \"status\" %s", what,
            v == NULL ? "missing" : "is not a string");
        return -1;
    }
    if ((*out = status_parse(json_string_value(v))) == ACME_S_UNKNOWN) {
        char *san = sanitize(json_string_value(v), 40);
        err_runtime("E_ACME_RESPONSE", "%s: unknown status \"%s\"", what, san ? san : "?");
        free(san);
        return -1;
    }
    return 0;
}

/* Append sanitised text to a bounded buffer. */
static void
cat_clean(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);
    for (; s != NULL && *s && n + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
}

static const char *
short_type(const char *type)
{
    static const char prefix[] = "urn:ietf:params:";
    if (type != NULL && strncmp(type, prefix, sizeof(prefix) - 1) == 0)
        return type + sizeof(prefix) - 1;
    return type;
}

/* Format a parsed problem object; NULL when it is not one. */
static char *
problem_from_json(json_t *p)
{
    char buf[ACME_PROBLEM_MAX] = "";
    const char *type, *detail;
    json_t *subs, *sp;
    size_t i;

    if (!json_is_object(p))
        return NULL;
    type = json_string_value(json_object_get(p, "type"));
    detail = json_string_value(json_object_get(p, "detail"));
    if (type == NULL && detail == NULL)
        return NULL;
    cat_clean(buf, sizeof(buf), type ? short_type(type) : "about:blank");
    if (detail != NULL) {
        cat_clean(buf, sizeof(buf), ": ");
        cat_clean(buf, sizeof(buf), detail);
    }
    subs = json_object_get(p, "subproblems");
    if (json_is_array(subs) && json_array_size(subs) > 0) {
        cat_clean(buf, sizeof(buf), " (subproblems: ");
        json_array_foreach(subs, i, sp) {
            json_t *id = json_object_get(sp, "identifier");
            if (i >= 10) {
                cat_clean(buf, sizeof(buf), "; ...");
                break;
            }
            if (i > 0)
                cat_clean(buf, sizeof(buf), "; ");
            if (json_is_object(id)) {
                cat_clean(buf, sizeof(buf), json_string_value(json_object_get(id, "type")));
                cat_clean(buf, sizeof(buf), " ");
                cat_clean(buf, sizeof(buf), json_string_value(json_object_get(id, "value")));
                cat_clean(buf, sizeof(buf), ": ");
            }
            cat_clean(buf, sizeof(buf),
                short_type(json_string_value(json_object_get(sp, "type"))));
            cat_clean(buf, sizeof(buf), ": ");
            cat_clean(buf, sizeof(buf), json_string_value(json_object_get(sp, "detail")));
        }
        cat_clean(buf, sizeof(buf), ")");
    }
    return strdup(buf);
}

char *
acme_problem_format(const char *text, size_t len, char **type)
{
    json_t *j;
    char *s;

    if (type != NULL)
        *type = NULL;
    if (text == NULL || (j = json_loadb(text, len, 0, NULL)) == NULL)
        return NULL;
    s = problem_from_json(j);
    if (s != NULL && type != NULL) {
        const char *t = json_string_value(json_object_get(j, "type"));
        *type = t ? strdup(t) : NULL;
    }
    json_decref(j);
    return s;
}

void
acme_directory_clear(struct acme_directory *d)
{
    if (d == NULL)
        return;
    free(d->new_nonce);
    free(d->new_account);
    free(d->new_order);
    free(d->revoke_cert);
    free(d->key_change);
    free(d->terms_of_service);
    memset(d, 0, sizeof(*d));
}

int
acme_parse_directory(const char *text, size_t len, bool allow_http,
    struct acme_directory *out)
{
    const char *what = "ACME directory";
    json_t *j, *meta;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((j = load_object(text, len, what)) == NULL)
        return -1;
    if (get_str(j, "newNonce", true, 1, allow_http, what, &out->new_nonce) != 0 ||
        get_str(j, "newAccount", true, 1, allow_http, what, &out->new_account) != 0 ||
        get_str(j, "newOrder", true, 1, allow_http, what, &out->new_order) != 0 ||
        get_str(j, "revokeCert", false, 1, allow_http, what, &out->revoke_cert) != 0 ||
        get_str(j, "keyChange", false, 1, allow_http, what, &out->key_change) != 0)
        goto out;
    meta = json_object_get(j, "meta");
    if (meta != NULL && !json_is_null(meta)) {
        json_t *eab;
        if (!json_is_object(meta)) {
            err_runtime("E_ACME_RESPONSE", "%s: \"meta\" is not an object", what);
            goto out;
        }
        /* Terms are shown, not fetched: any string is accepted, sanitised on output. */
        if (get_str(meta, "termsOfService", false, 0, allow_http, what,
            &out->terms_of_service) != 0)
            goto out;
        eab = json_object_get(meta, "externalAccountRequired");
        if (eab != NULL && !json_is_boolean(eab)) {
            err_runtime("E_ACME_RESPONSE", "%s: \"externalAccountRequired\" is not a boolean",
                what);
            goto out;
        }
        out->eab_required = json_is_true(eab);
    }
    rc = 0;
out:
    json_decref(j);
    if (rc != 0)
        acme_directory_clear(out);
    return rc;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
acme_order_clear(struct acme_order *o)
{
    if (o == NULL)
        return;
    strv_free(o->names, o->n_names);
    strv_free(o->authzs, o->n_authzs);
    free(o->finalize);
    free(o->certificate);
    free(o->error);
    memset(o, 0, sizeof(*o));
}

int
acme_parse_order(const char *text, size_t len, bool allow_http, struct acme_order *out)
{
    const char *what = "ACME order";
    json_t *j, *ids, *authzs, *v;
    size_t i;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((j = load_object(text, len, what)) == NULL)
        return -1;
    if (get_status(j, what, &out->status) != 0)
        goto out;
    ids = json_object_get(j, "identifiers");
    authzs = json_object_get(j, "authorizations");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 100) {
        err_runtime("E_ACME_RESPONSE", "%s: \"identifiers\" missing or malformed", what);
        goto out;
    }
    if (!json_is_array(authzs) || json_array_size(authzs) > 100) {
        err_runtime("E_ACME_RESPONSE", "%s: \"authorizations\" missing or malformed", what);
        goto out;
    }
    if ((out->names = calloc(json_array_size(ids), sizeof(char *))) == NULL ||
        (out->authzs = calloc(json_array_size(authzs) + 1, sizeof(char *))) == NULL)
        goto oom;
    json_array_foreach(ids, i, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        char *value;
        if (type == NULL || get_str(v, "value", true, 0, allow_http, what, &value) != 0) {
            if (type == NULL)
                err_runtime("E_ACME_RESPONSE", "%s: identifier without a type", what);
            goto out;
        }
        if (strcmp(type, "dns") != 0) {
            free(value);
            continue;   /* compared against our names later; foreign types never match */
        }
        out->names[out->n_names++] = value;
    }
    json_array_foreach(authzs, i, v) {
        if (!json_is_string(v) || !acme_url_ok(json_string_value(v), allow_http)) {
            err_runtime("E_ACME_RESPONSE", "%s: authorization %zu is not an acceptable URL",
                what, i);
            goto out;
        }
        if ((out->authzs[out->n_authzs] = strdup(json_string_value(v))) == NULL)
            goto oom;
        out->n_authzs++;
    }
    if (get_str(j, "finalize", true, 1, allow_http, what, &out->finalize) != 0 ||
        get_str(j, "certificate", false, 1, allow_http, what, &out->certificate) != 0)
        goto out;
    if (out->status == ACME_S_VALID && out->certificate == NULL) {
        err_runtime("E_ACME_RESPONSE", "%s: valid but no \"certificate\" URL", what);
        goto out;
    }
    out->error = problem_from_json(json_object_get(j, "error"));
    rc = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    json_decref(j);
    if (rc != 0)
        acme_order_clear(out);
    return rc;
}

void
acme_authz_clear(struct acme_authz *a)
{
    if (a == NULL)
        return;
    free(a->name);
    for (size_t i = 0; i < a->n_chall; i++) {
        free(a->chall[i].type);
        free(a->chall[i].url);
        free(a->chall[i].token);
        free(a->chall[i].error);
    }
    free(a->chall);
    memset(a, 0, sizeof(*a));
}

int
acme_parse_authz(const char *text, size_t len, bool allow_http, struct acme_authz *out)
{
    const char *what = "ACME authorization";
    json_t *j, *id, *challs, *v, *wc;
    const char *idtype;
    size_t i;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((j = load_object(text, len, what)) == NULL)
        return -1;
    if (get_status(j, what, &out->status) != 0)
        goto out;
    id = json_object_get(j, "identifier");
    idtype = json_string_value(json_object_get(id, "type"));
    if (!json_is_object(id) || idtype == NULL || strcmp(idtype, "dns") != 0) {
        err_runtime("E_ACME_RESPONSE", "%s: no dns identifier", what);
        goto out;
    }
    if (get_str(id, "value", true, 0, allow_http, what, &out->name) != 0)
        goto out;
    /* The name reaches hooks and messages: hostname characters only. */
    for (const char *p = out->name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_') {
            char *san = sanitize(out->name, 100);
            err_runtime("E_ACME_RESPONSE", "%s: identifier \"%s\" is not a DNS name", what,
                san ? san : "?");
            free(san);
            goto out;
        }
    }
    if (out->name[0] == '\0' || strlen(out->name) > 253) {
        err_runtime("E_ACME_RESPONSE", "%s: identifier is not a DNS name", what);
        goto out;
    }
    wc = json_object_get(j, "wildcard");
    if (wc != NULL && !json_is_boolean(wc)) {
        err_runtime("E_ACME_RESPONSE", "%s: \"wildcard\" is not a boolean", what);
        goto out;
    }
    out->wildcard = json_is_true(wc);
    challs = json_object_get(j, "challenges");
    if (!json_is_array(challs) || json_array_size(challs) > 32) {
        err_runtime("E_ACME_RESPONSE", "%s: \"challenges\" missing or malformed", what);
        goto out;
    }
    if ((out->chall = calloc(json_array_size(challs) + 1, sizeof(*out->chall))) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto out;
    }
    json_array_foreach(challs, i, v) {
        struct acme_chall *c = &out->chall[out->n_chall];
        char *token = NULL;
        if (!json_is_object(v)) {
            err_runtime("E_ACME_RESPONSE", "%s: challenge %zu is not an object", what, i);
            goto out;
        }
        out->n_chall++;
        if (get_str(v, "type", true, 0, allow_http, what, &c->type) != 0 ||
            get_str(v, "url", true, 1, allow_http, what, &c->url) != 0 ||
            get_status(v, what, &c->status) != 0)
            goto out;
        if (strcmp(c->type, "http-01") == 0 || strcmp(c->type, "dns-01") == 0) {
            /* The token becomes a file name, a URL path or a hook argument. */
            json_t *t = json_object_get(v, "token");
            if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t) ||
                !b64url_valid(json_string_value(t), ACME_TOKEN_MAX)) {
                err_runtime("E_ACME_RESPONSE",
                    "%s: %s challenge token missing or not base64url", what, c->type);
                goto out;
            }
            if ((token = strdup(json_string_value(t))) == NULL) {
                err_runtime("E_NOMEM", "out of memory");
                goto out;
            }
            c->token = token;
        }
        c->error = problem_from_json(json_object_get(v, "error"));
    }
    rc = 0;
out:
    json_decref(j);
    if (rc != 0)
        acme_authz_clear(out);
    return rc;
}

bool
acme_order_names_match(const struct acme_order *o, const char *const *names,
    size_t n_names)
{
    if (o->n_names != n_names)
        return false;
    for (size_t i = 0; i < n_names; i++) {
        bool found = false;
        for (size_t k = 0; k < o->n_names && !found; k++)
            found = strcasecmp(names[i], o->names[k]) == 0;
        if (!found)
            return false;
    }
    for (size_t k = 0; k < o->n_names; k++) {
        bool found = false;
        for (size_t i = 0; i < n_names && !found; i++)
            found = strcasecmp(names[i], o->names[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

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

/* ---- the client --------------------------------------------------------- */

struct acme {
    const struct acme_config *cfg;
    const struct jws_signer *signer;
    struct http *http;
    struct acme_directory dir;
    char *nonce;
    char *kid;              /* account URL */
    char *thumbprint;
    struct timespec start;
    bool reregistered;
};

static long
elapsed_ms(const struct acme *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - a->start.tv_sec) * 1000L + (now.tv_nsec - a->start.tv_nsec) / 1000000L;
}

static long
deadline_ms(const struct acme *a)
{
    return (long)(a->cfg->timeout_s ? a->cfg->timeout_s : 120) * 1000L;
}

/*
 * Sleep before the next poll: the back-off, which starts short and doubles
 * up to a cap, or longer when the server's Retry-After asks for it (capped,
 * so a hostile value cannot park us; "0" cannot make us spin).  Fails when
 * the wait would pass the deadline.
 */
static int
poll_wait(struct acme *a, long retry_after, long *backoff_ms, const char *what)
{
    long wait = *backoff_ms;
    struct timespec ts;

    if (retry_after > 0) {
        long ra = (retry_after > ACME_RETRY_AFTER_MAX ? ACME_RETRY_AFTER_MAX : retry_after) * 1000L;
        if (ra > wait)
            wait = ra;
    }
    if (elapsed_ms(a) + wait > deadline_ms(a)) {
        err_runtime("E_TIMEOUT", "%s: still not done after %ld s (deadline)", what,
            deadline_ms(a) / 1000);
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

/* Report a failed response: its problem document, else its status. */
static void
report_response(const char *what, const struct http_response *r)
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

    if (http_head(a->http, a->dir.new_nonce, &r) != 0)
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
static int
acme_post(struct acme *a, const char *url, const char *payload, bool use_jwk,
    size_t cap, const char *accept, struct http_response *resp)
{
    char type[128];

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

static int
fetch_directory(struct acme *a)
{
    struct http_response r;
    int rc = -1;

    if (http_get(a->http, a->cfg->directory_url, 64 * 1024, "application/json", &r) != 0)
        return -1;
    if (r.status != 200)
        report_response("ACME directory", &r);
    else
        rc = acme_parse_directory(r.body, r.body_len, a->cfg->allow_http, &a->dir);
    http_response_clear(&r);
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
                a->signer->jwk, a->dir.new_account, &eab) != 0)
                goto out;
            json_object_set_new(p, "externalAccountBinding", eab);
        } else if (a->dir.eab_required) {
            err_input("E_EAB_REQUIRED", "the ACME server requires External Account Binding: "
                "set eab-kid and eab-hmac-file");
            goto out;
        }
    }
    if ((payload = json_dumps(p, JSON_COMPACT)) == NULL)
        goto oom;
    if (acme_post(a, a->dir.new_account, payload, true, ACME_BODY_CAP,
        "application/json", &r) != 0)
        goto out;
    problem_type(&r, type, sizeof(type));
    if (only_existing && strcmp(type, "urn:ietf:params:acme:error:accountDoesNotExist") == 0) {
        rc = 1;
        goto out;
    }
    if (r.status != 200 && r.status != 201) {
        report_response(only_existing ? "account lookup" : "account registration", &r);
        goto out;
    }
    if (!acme_url_ok(r.location, a->cfg->allow_http)) {
        err_runtime("E_ACME_RESPONSE", "newAccount: no acceptable Location for the account");
        goto out;
    }
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
    if ((a->kid = state_read_url(a->cfg->account_state, a->cfg->allow_http,
        a->dir.new_account)) != NULL) {
        char *san = sanitize(a->kid, 256);
        progress("account: %s", san ? san : "?");
        free(san);
        return 0;
    }
    return account_register(a);
}

/* POST-as-GET a resource that must answer 200. */
static int
fetch(struct acme *a, const char *url, const char *what, struct http_response *r)
{
    if (acme_post(a, url, NULL, false, ACME_BODY_CAP, "application/json", r) != 0)
        return -1;
    if (r->status != 200) {
        report_response(what, r);
        http_response_clear(r);
        return -1;
    }
    return 0;
}

static int
fetch_order(struct acme *a, const char *url, struct acme_order *o, long *retry_after)
{
    struct http_response r;
    int rc;

    if (fetch(a, url, "order", &r) != 0)
        return -1;
    rc = acme_parse_order(r.body, r.body_len, a->cfg->allow_http, o);
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
    char *saved = state_read_url(a->cfg->order_state, a->cfg->allow_http, a->dir.new_order);
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
    } else if (acme_parse_order(r.body, r.body_len, a->cfg->allow_http, o) != 0) {
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

static int
order_new(struct acme *a, const char *const *names, size_t n, char **url,
    struct acme_order *o)
{
    json_t *p = json_pack("{s:[]}", "identifiers"), *ids;
    char *payload = NULL, *san = NULL;
    struct http_response r = { 0 };
    int rc = -1;

    if (p == NULL)
        goto oom;
    ids = json_object_get(p, "identifiers");
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns",
            "value", names[i])) != 0)
            goto oom;
    if ((payload = json_dumps(p, JSON_COMPACT)) == NULL)
        goto oom;
    if (acme_post(a, a->dir.new_order, payload, false, ACME_BODY_CAP,
        "application/json", &r) != 0)
        goto out;
    if (r.status != 201) {
        report_response("new order", &r);
        goto out;
    }
    if (!acme_url_ok(r.location, a->cfg->allow_http)) {
        err_runtime("E_ACME_RESPONSE", "new order: no acceptable Location for the order");
        goto out;
    }
    if (acme_parse_order(r.body, r.body_len, a->cfg->allow_http, o) != 0)
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
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    if (rc != 0)
        acme_order_clear(o);
    http_response_clear(&r);
    json_decref(p);
    free(payload);
    free(san);
    return rc;
}

/* ---- challenges ---------------------------------------------------------- */

struct pending {
    char *authz_url;
    char *name;
    bool wildcard;
    char *chall_url;
    enum acme_status chall_status;
    char *token;
    char *keyauth;
    bool done;
    bool published;     /* file written / hook "add" attempted: undo it */
};

static void
pending_free(struct pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].authz_url);
        free(p[i].name);
        free(p[i].chall_url);
        free(p[i].token);
        free(p[i].keyauth);
    }
    free(p);
}

/*
 * The http-01 responder: a tiny HTTP/1.1 server in its own thread that
 * answers "GET /.well-known/acme-challenge/<token>" for its own tokens and
 * 404 to everything else, one connection at a time (Connection: close).
 * The thread never reports errors (the error state is not thread-safe);
 * it only counts.
 */
struct acme_responder {
    int lfd;
    int stop[2];
    pthread_t thread;
    struct acme_http01 *items;      /* owned copies */
    size_t n;
    unsigned port;
    unsigned long served, refused;
};

static void
respond(int fd, const struct acme_responder *rs, unsigned long *served, unsigned long *refused)
{
    static const char prefix[] = "GET /.well-known/acme-challenge/";
    char req[4096];
    size_t n = 0;
    const char *body = NULL;
    char head[256];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    struct timespec start, now;
    long left;

    /* Read the request head: 2 s in all (a slow sender cannot hold us), 4 KiB at most. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n < sizeof(req) - 1) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = 2000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
            break;
    }
    req[n] = '\0';
    if (strncmp(req, prefix, sizeof(prefix) - 1) == 0) {
        const char *tok = req + sizeof(prefix) - 1;
        size_t tl = strcspn(tok, " ");
        if (strncmp(tok + tl, " HTTP/1.", 8) == 0) {
            for (size_t i = 0; i < rs->n; i++) {
                if (strlen(rs->items[i].token) == tl &&
                    memcmp(rs->items[i].token, tok, tl) == 0) {
                    body = rs->items[i].key_authorization;
                    break;
                }
            }
        }
    }
    if (body != NULL) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
        (*served)++;
    } else {
        body = "not found\n";
        snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
        (*refused)++;
    }
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) > 0)
        (void)send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void *
responder_main(void *arg)
{
    struct acme_responder *rs = arg;
    struct pollfd pfd[2] = {
        { .fd = rs->lfd, .events = POLLIN }, { .fd = rs->stop[0], .events = POLLIN },
    };
    int fl = fcntl(rs->lfd, F_GETFL);

    /* Non-blocking listener: a connection reset between poll and accept must not block. */
    if (fl != -1)
        (void)fcntl(rs->lfd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents != 0)
            break;
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(rs->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd == -1)
                continue;
            respond(fd, rs, &rs->served, &rs->refused);
            close(fd);
        }
    }
    return NULL;
}

/* Split "host:port", "[v6]:port" or ":port" (all addresses). */
static int
split_hostport(const char *s, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= hsize)
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || (size_t)(colon - s) >= hsize)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    if (colon[1] == '\0' || strlen(colon + 1) >= psize ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    snprintf(port, psize, "%s", colon + 1);
    return 0;
}

static void
responder_free(struct acme_responder *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free((char *)rs->items[i].token);
        free((char *)rs->items[i].key_authorization);
    }
    free(rs->items);
    free(rs);
}

int
acme_responder_start(const char *listen_addr, const struct acme_http01 *items, size_t n,
    struct acme_responder **out)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    struct acme_responder *rs;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[256], port[16];
    int one = 1, gai, e;

    *out = NULL;
    if (split_hostport(listen_addr, host, sizeof(host), port, sizeof(port)) != 0) {
        err_input("E_HTTP_LISTEN", "http-listen %s: want host:port", listen_addr);
        return -1;
    }
    if ((gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
        err_input("E_HTTP_LISTEN", "http-listen %s: %s", listen_addr, gai_strerror(gai));
        return -1;
    }
    if ((rs = calloc(1, sizeof(*rs))) == NULL ||
        (rs->items = calloc(n + 1, sizeof(*rs->items))) == NULL) {
        free(rs);
        freeaddrinfo(res);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rs->stop[0] = rs->stop[1] = -1;
    rs->lfd = -1;
    for (; rs->n < n; rs->n++) {
        /* Only tokens that are safe in a URL path (acme_parse_authz checked them). */
        if (!b64url_valid(items[rs->n].token, ACME_TOKEN_MAX)) {
            err_runtime("E_ACME_RESPONSE", "http-01: refusing a token outside base64url");
            goto fail;
        }
        rs->items[rs->n].token = strdup(items[rs->n].token);
        rs->items[rs->n].key_authorization = strdup(items[rs->n].key_authorization);
        if (rs->items[rs->n].token == NULL || rs->items[rs->n].key_authorization == NULL) {
            rs->n++;
            err_runtime("E_NOMEM", "out of memory");
            goto fail;
        }
    }
    rs->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rs->lfd == -1 ||
        setsockopt(rs->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(rs->lfd, res->ai_addr, res->ai_addrlen) == -1 || listen(rs->lfd, 16) == -1 ||
        getsockname(rs->lfd, (struct sockaddr *)&ss, &sslen) == -1) {
        err_runtime("E_HTTP_LISTEN", "http-01 responder on %s: %s", listen_addr,
            strerror(errno));
        goto fail;
    }
    rs->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(rs->stop, O_CLOEXEC) == -1) {
        err_runtime("E_HTTP_LISTEN", "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((e = pthread_create(&rs->thread, NULL, responder_main, rs)) != 0) {
        err_runtime("E_HTTP_LISTEN", "http-01 responder thread: %s", strerror(e));
        goto fail;
    }
    freeaddrinfo(res);
    verbose("http-01 responder listening on %s", listen_addr);
    *out = rs;
    return 0;
fail:
    freeaddrinfo(res);
    if (rs->lfd != -1)
        close(rs->lfd);
    if (rs->stop[0] != -1) {
        close(rs->stop[0]);
        close(rs->stop[1]);
    }
    responder_free(rs);
    return -1;
}

unsigned
acme_responder_port(const struct acme_responder *rs)
{
    return rs->port;
}

void
acme_responder_stop(struct acme_responder *rs)
{
    if (rs == NULL)
        return;
    (void)!write(rs->stop[1], "x", 1);
    pthread_join(rs->thread, NULL);
    close(rs->lfd);
    close(rs->stop[0]);
    close(rs->stop[1]);
    verbose("http-01 responder stopped: %lu served, %lu refused", rs->served, rs->refused);
    responder_free(rs);
}

/*
 * Run the dns-hook with argv (no shell): HOOK add|remove NAME VALUE.  Its
 * stdout goes to our stderr (stdout may carry --json).  Bounded in time.
 */
static void hook_fail(bool fatal, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report a hook failure: an error, or only a warning (removal after the fact). */
static void
hook_fail(bool fatal, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (fatal)
        err_runtime("E_HOOK", "%s", msg);
    else
        warnmsg("%s", msg);
}

static int
run_hook(const struct acme *a, const char *action, const char *name, const char *value,
    bool fatal)
{
    const char *hook = a->cfg->dns_hook;
    char *argv[] = { (char *)hook, (char *)action, (char *)name, (char *)value, NULL };
    long limit = (long)(a->cfg->hook_timeout_s ? a->cfg->hook_timeout_s : 60) * 1000L;

    /* "add" also stays within the run's deadline; "remove" always gets its time. */
    if (fatal && deadline_ms(a) - elapsed_ms(a) < limit)
        limit = deadline_ms(a) - elapsed_ms(a) > 1000 ? deadline_ms(a) - elapsed_ms(a) : 1000;
    int status;
    pid_t pid;

    fflush(NULL);
    if ((pid = fork()) == -1) {
        hook_fail(fatal, "dns-hook: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDONLY);
        (void)setpgid(0, 0);    /* its own group: a timeout kills its children too */
        if (fd != -1) {
            dup2(fd, STDIN_FILENO);
            close(fd);
        }
        dup2(STDERR_FILENO, STDOUT_FILENO);
        unsetenv("P11ENROLL_PIN");  /* the token PIN is none of the hook's business */
        execv(hook, argv);
        fprintf(stderr, "p11enroll: dns-hook %s: %s\n", hook, strerror(errno));
        _exit(127);
    }
    for (long waited = 0;; waited += 20) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w == -1 && errno != EINTR) {
            hook_fail(fatal, "dns-hook: waitpid: %s", strerror(errno));
            return -1;
        }
        if (waited >= limit) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            hook_fail(fatal, "dns-hook %s %s %s: killed after %ld s", hook, action,
                name, limit / 1000);
            return -1;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        hook_fail(fatal, "dns-hook %s %s %s: exit status %d", hook, action, name,
            WEXITSTATUS(status));
    else
        hook_fail(fatal, "dns-hook %s %s %s: killed by signal %d", hook, action, name,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

static char *
dns_record_name(const struct pending *p)
{
    char *s;
    /* RFC 8555 §8.4: the base name, "*." already stripped from the identifier. */
    if (asprintf(&s, "_acme-challenge.%s", p->name) == -1)
        return NULL;
    return s;
}

static char *
webroot_path(const struct acme *a, const char *token)
{
    char *s;
    if (asprintf(&s, "%s/.well-known/acme-challenge/%s", a->cfg->webroot, token) == -1)
        return NULL;
    return s;
}

static int
mkdir_one(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    err_runtime("E_WEBROOT", "%s: %s", path, strerror(errno));
    return -1;
}

/* Publish every pending challenge response; on failure what was published stays marked. */
static int
challenges_publish(struct acme *a, struct pending *p, size_t n, struct acme_responder **rs)
{
    if (a->cfg->challenge == ACME_HTTP01 && a->cfg->http_listen != NULL) {
        struct acme_http01 *h = calloc(n + 1, sizeof(*h));
        int rc;
        if (h == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            h[i].token = p[i].token;
            h[i].key_authorization = p[i].keyauth;
        }
        rc = acme_responder_start(a->cfg->http_listen, h, n, rs);
        free(h);
        return rc;
    }
    if (a->cfg->challenge == ACME_HTTP01) {
        char *d1 = NULL, *d2 = NULL;
        int rc = -1;
        if (asprintf(&d1, "%s/.well-known", a->cfg->webroot) == -1 ||
            asprintf(&d2, "%s/.well-known/acme-challenge", a->cfg->webroot) == -1) {
            err_runtime("E_NOMEM", "out of memory");
            free(d1);
            return -1;
        }
        if (mkdir_one(d1) == 0 && mkdir_one(d2) == 0) {
            rc = 0;
            for (size_t i = 0; i < n && rc == 0; i++) {
                char *path = webroot_path(a, p[i].token);
                /* Served to the CA by the web server: world-readable on purpose. */
                if (path == NULL || write_file_atomic(path, p[i].keyauth,
                    strlen(p[i].keyauth), 0644) != 0)
                    rc = -1;
                else
                    p[i].published = true;
                free(path);
            }
        }
        free(d1);
        free(d2);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        char *rname = dns_record_name(&p[i]), *value = jws_dns01_value(p[i].keyauth);
        int rc = -1;
        if (rname == NULL || value == NULL) {
            err_runtime("E_NOMEM", "out of memory");
        } else {
            /* Marked before the hook runs: a failed add may have half-happened. */
            p[i].published = true;
            rc = run_hook(a, "add", rname, value, true);
        }
        free(rname);
        free(value);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Undo challenges_publish(): always runs, reports but never fails the run. */
static void
challenges_unpublish(struct acme *a, struct pending *p, size_t n, struct acme_responder *rs)
{
    if (a->cfg->challenge == ACME_HTTP01 && a->cfg->http_listen != NULL) {
        acme_responder_stop(rs);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!p[i].published)
            continue;
        if (a->cfg->challenge == ACME_HTTP01) {
            char *path = webroot_path(a, p[i].token);
            if (path != NULL && unlink(path) != 0 && errno != ENOENT)
                warnmsg("%s: %s", path, strerror(errno));
            free(path);
        } else {
            char *rname = dns_record_name(&p[i]), *value = jws_dns01_value(p[i].keyauth);
            /* A failed removal is worth a warning, not the certificate. */
            if (rname != NULL && value != NULL &&
                run_hook(a, "remove", rname, value, false) != 0)
                warnmsg("dns-hook remove %s failed; remove the record by hand", rname);
            free(rname);
            free(value);
        }
        p[i].published = false;
    }
}

/*
 * Look at every authorization of the order; collect the pending ones with
 * the challenge we use.  Valid ones need nothing.
 */
static int
authz_collect(struct acme *a, const struct acme_order *o, struct pending **out, size_t *nout)
{
    const char *want = a->cfg->challenge == ACME_HTTP01 ? "http-01" : "dns-01";
    struct pending *p = calloc(o->n_authzs + 1, sizeof(*p));
    size_t n = 0;
    int rc = -1;

    *out = NULL;
    *nout = 0;
    if (p == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < o->n_authzs; i++) {
        struct http_response r;
        struct acme_authz az;
        struct acme_chall *c = NULL;

        if (fetch(a, o->authzs[i], "authorization", &r) != 0)
            goto out;
        if (acme_parse_authz(r.body, r.body_len, a->cfg->allow_http, &az) != 0) {
            http_response_clear(&r);
            goto out;
        }
        http_response_clear(&r);
        if (az.status == ACME_S_VALID) {
            progress("authorization %s%s: valid", az.wildcard ? "*." : "", az.name);
            acme_authz_clear(&az);
            continue;
        }
        if (az.status != ACME_S_PENDING) {
            err_runtime("E_ACME", "authorization %s%s is %s", az.wildcard ? "*." : "",
                az.name, acme_status_name(az.status));
            acme_authz_clear(&az);
            goto out;
        }
        for (size_t k = 0; k < az.n_chall && c == NULL; k++)
            if (strcmp(az.chall[k].type, want) == 0)
                c = &az.chall[k];
        if (c == NULL) {
            err_runtime("E_ACME", "authorization %s%s: the server offers no %s challenge",
                az.wildcard ? "*." : "", az.name, want);
            acme_authz_clear(&az);
            goto out;
        }
        p[n].authz_url = strdup(o->authzs[i]);
        p[n].name = az.name;
        az.name = NULL;     /* transferred */
        p[n].wildcard = az.wildcard;
        p[n].chall_url = c->url;
        c->url = NULL;      /* transferred */
        p[n].chall_status = c->status;
        p[n].token = c->token;
        c->token = NULL;    /* transferred */
        p[n].keyauth = jws_key_authorization(p[n].token, a->thumbprint);
        n++;
        acme_authz_clear(&az);
        if (p[n - 1].authz_url == NULL || p[n - 1].keyauth == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            goto out;
        }
    }
    *out = p;
    *nout = n;
    p = NULL;
    rc = 0;
out:
    if (p != NULL)
        pending_free(p, n);
    return rc;
}

/* Tell the server each challenge is ready, then poll the authorizations. */
static int
authz_complete(struct acme *a, struct pending *p, size_t n)
{
    long backoff = ACME_POLL_START_MS, retry_after = -1;
    size_t left = n;

    for (size_t i = 0; i < n; i++) {
        struct http_response r;
        char what[300];

        if (p[i].chall_status != ACME_S_PENDING)
            continue;   /* already answered by an earlier run */
        snprintf(what, sizeof(what), "challenge for %s%s", p[i].wildcard ? "*." : "",
            p[i].name);
        if (acme_post(a, p[i].chall_url, "{}", false, ACME_BODY_CAP, "application/json",
            &r) != 0)
            return -1;
        if (r.status != 200) {
            report_response(what, &r);
            http_response_clear(&r);
            return -1;
        }
        http_response_clear(&r);
    }
    while (left > 0) {
        if (poll_wait(a, retry_after, &backoff, "authorizations") != 0)
            return -1;
        retry_after = -1;
        for (size_t i = 0; i < n; i++) {
            struct http_response r;
            struct acme_authz az;
            const char *want = a->cfg->challenge == ACME_HTTP01 ? "http-01" : "dns-01";

            if (p[i].done)
                continue;
            if (fetch(a, p[i].authz_url, "authorization", &r) != 0)
                return -1;
            if (acme_parse_authz(r.body, r.body_len, a->cfg->allow_http, &az) != 0) {
                http_response_clear(&r);
                return -1;
            }
            if (r.retry_after > retry_after)
                retry_after = r.retry_after;
            http_response_clear(&r);
            if (az.status == ACME_S_VALID) {
                progress("authorization %s%s: valid (%s)", p[i].wildcard ? "*." : "",
                    p[i].name, want);
                p[i].done = true;
                left--;
            } else if (az.status != ACME_S_PENDING) {
                const char *why = NULL;
                for (size_t k = 0; k < az.n_chall && why == NULL; k++)
                    if (strcmp(az.chall[k].type, want) == 0)
                        why = az.chall[k].error;
                err_runtime("E_ACME_CHALLENGE", "authorization %s%s is %s: %s: %s",
                    p[i].wildcard ? "*." : "", p[i].name, acme_status_name(az.status), want,
                    why ? why : "no reason given");
                acme_authz_clear(&az);
                return -1;
            }
            acme_authz_clear(&az);
        }
    }
    return 0;
}

static int
authorize(struct acme *a, const struct acme_order *o)
{
    struct pending *p = NULL;
    struct acme_responder *rs = NULL;
    size_t n = 0;
    int rc = -1;

    if (authz_collect(a, o, &p, &n) != 0)
        return -1;
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if (a->cfg->challenge == ACME_HTTP01 && a->cfg->http_listen == NULL &&
        a->cfg->webroot == NULL) {
        err_input("E_PROFILE", "http-01 needs http-listen or webroot");
        goto out;
    }
    if (a->cfg->challenge == ACME_DNS01 && a->cfg->dns_hook == NULL) {
        err_input("E_PROFILE", "dns-01 needs dns-hook");
        goto out;
    }
    if (challenges_publish(a, p, n, &rs) == 0)
        rc = authz_complete(a, p, n);
    challenges_unpublish(a, p, n, rs);
out:
    pending_free(p, n);
    return rc;
}

static int
finalize(struct acme *a, struct acme_order *o,
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
        report_response("finalize", &r);
        goto out;
    }
    acme_order_clear(o);
    if (acme_parse_order(r.body, r.body_len, a->cfg->allow_http, o) != 0)
        goto out;
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
        report_response("certificate download", &r);
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
acme_issue(const struct acme_config *cfg, const struct jws_signer *account,
    const char *const *names, size_t n_names,
    int (*make_csr)(void *arg, uint8_t **der, size_t *len), void *arg,
    char **chain_pem)
{
    struct http_opts ho = {
        .ca_bundle = cfg->ca_bundle,
        .timeout_ms = (long)(cfg->request_timeout_s ? cfg->request_timeout_s : 30) * 1000L,
        .allow_http = cfg->allow_http,
    };
    struct acme a = { .cfg = cfg, .signer = account };
    struct acme_order o = { 0 };
    char *order_url = NULL;
    bool authorized = false, finalized = false;
    long backoff = ACME_POLL_START_MS, retry_after = -1;
    int rc = -1, r;

    *chain_pem = NULL;
    clock_gettime(CLOCK_MONOTONIC, &a.start);
    if (n_names == 0) {
        err_input("E_NAMES", "no names to order a certificate for");
        return -1;
    }
    if (!acme_url_ok(cfg->directory_url, cfg->allow_http)) {
        err_input("E_PROFILE", "[ca] directory: not an https URL");
        return -1;
    }
    if (jws_thumbprint(account->jwk, &a.thumbprint) != 0 || http_new(&ho, &a.http) != 0 ||
        fetch_directory(&a) != 0 || account_setup(&a) != 0)
        goto out;

    if ((r = order_resume(&a, names, n_names, &order_url, &o)) == -1)
        goto out;
    if (r == 1 && order_new(&a, names, n_names, &order_url, &o) != 0)
        goto out;
    for (;;) {
        switch (o.status) {
        case ACME_S_PENDING:
            if (!authorized) {
                if (authorize(&a, &o) != 0)
                    goto out;
                authorized = true;
                retry_after = -1;   /* look again at once */
                backoff = ACME_POLL_START_MS;
                break;
            }
            if (poll_wait(&a, retry_after, &backoff, "order") != 0)
                goto out;
            break;
        case ACME_S_READY:
            if (finalized) {
                err_runtime("E_ACME", "order is still ready after finalize");
                goto out;
            }
            if (finalize(&a, &o, make_csr, arg) != 0)
                goto out;
            finalized = true;
            backoff = ACME_POLL_START_MS;
            continue;   /* the finalize response carries the order */
        case ACME_S_PROCESSING:
            if (poll_wait(&a, retry_after, &backoff, "order") != 0)
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
        if (fetch_order(&a, order_url, &o, &retry_after) != 0)
            goto out;
    }
out:
    acme_order_clear(&o);
    free(order_url);
    acme_directory_clear(&a.dir);
    free(a.nonce);
    free(a.kid);
    free(a.thumbprint);
    http_free(a.http);
    return rc;
}
