/*
 * parse.c - the pure half of the ACME client: response parsers (directory,
 * order, authorization), problem documents as one sanitised line, status
 * names, the URL check every server value passes, and the newOrder
 * payload.  No I/O: unit-tested
 * against recorded responses.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "acme_int.h"
#include "util.h"

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
    sanitize_cat(buf, sizeof(buf), type ? short_type(type) : "about:blank");
    if (detail != NULL) {
        sanitize_cat(buf, sizeof(buf), ": ");
        sanitize_cat(buf, sizeof(buf), detail);
    }
    subs = json_object_get(p, "subproblems");
    if (json_is_array(subs) && json_array_size(subs) > 0) {
        sanitize_cat(buf, sizeof(buf), " (subproblems: ");
        json_array_foreach(subs, i, sp) {
            json_t *id = json_object_get(sp, "identifier");
            if (i >= 10) {
                sanitize_cat(buf, sizeof(buf), "; ...");
                break;
            }
            if (i > 0)
                sanitize_cat(buf, sizeof(buf), "; ");
            if (json_is_object(id)) {
                sanitize_cat(buf, sizeof(buf), json_string_value(json_object_get(id, "type")));
                sanitize_cat(buf, sizeof(buf), " ");
                sanitize_cat(buf, sizeof(buf), json_string_value(json_object_get(id, "value")));
                sanitize_cat(buf, sizeof(buf), ": ");
            }
            sanitize_cat(buf, sizeof(buf),
                short_type(json_string_value(json_object_get(sp, "type"))));
            sanitize_cat(buf, sizeof(buf), ": ");
            sanitize_cat(buf, sizeof(buf), json_string_value(json_object_get(sp, "detail")));
        }
        sanitize_cat(buf, sizeof(buf), ")");
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
    free(d->renewal_info);
    memset(d, 0, sizeof(*d));
}

int
acme_parse_directory(const char *text, size_t len, bool allow_http,
    struct acme_directory *out)
{
    const char *what = "ACME directory", *ri;
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
    /*
     * ARI (RFC 9773) is optional and only advice: a malformed renewalInfo
     * must not stop issuance, so it is kept as found and ari.c checks it.
     */
    ri = json_string_value(json_object_get(j, "renewalInfo"));
    if (ri != NULL && strlen(ri) <= ACME_URL_MAX && (out->renewal_info = strdup(ri)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto out;
    }
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


char *
acme_order_payload(const char *const *names, size_t n, const char *replaces)
{
    json_t *p = json_pack("{s:[]}", "identifiers"), *ids;
    char *out = NULL;

    if (p == NULL)
        return NULL;
    ids = json_object_get(p, "identifiers");
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns",
            "value", names[i])) != 0)
            goto out;
    if (replaces != NULL && json_object_set_new(p, "replaces", json_string(replaces)) != 0)
        goto out;
    out = json_dumps(p, JSON_COMPACT);
out:
    json_decref(p);
    return out;
}
