/*
 * http.c - HTTPS over one libcurl handle, with the trust anchor, sizes,
 * redirects and time all pinned down by the caller, never by the
 * environment (see http.h).
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <time.h>

#include <curl/curl.h>

#include "util.h"

struct http {
    CURL *curl;
    unsigned long requests, connects;
    long timeout_ms;            /* per request */
    long long deadline_ms;      /* CLOCK_MONOTONIC ms; 0: none */
    char deadline_name[64];
    char errbuf[CURL_ERROR_SIZE];
    char useragent[128];
};

/* State of one transfer, shared by the body and header callbacks. */
struct xfer {
    struct http_response *resp;
    size_t cap;
    size_t alloc;
    bool too_big;
};

static bool curl_ready;

int
http_new(const struct http_opts *opts, struct http **out)
{
    struct http *h = NULL;
    CURL *c;
    long cto = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    long to = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;

    *out = NULL;
    if (opts->ca_bundle == NULL || opts->ca_bundle[0] == '\0') {
        err_input("E_CA_BUNDLE", "no CA bundle given for the ACME server");
        return -1;
    }
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            err_runtime("E_HTTP", "cannot initialise libcurl");
            return -1;
        }
        curl_ready = true;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL || (h->curl = curl_easy_init()) == NULL) {
        err_runtime("E_HTTP", "cannot create an HTTP client");
        free(h);
        return -1;
    }
    c = h->curl;
    h->timeout_ms = to;
    snprintf(h->useragent, sizeof(h->useragent), "p11enroll/%s %s", P11E_VERSION,
        curl_version());
    /*
     * Trust exactly the configured bundle.  Clearing CAPATH matters: a
     * libcurl built with a default CA path would otherwise add it.
     */
    if (curl_easy_setopt(c, CURLOPT_CAINFO, opts->ca_bundle) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
            opts->allow_http ? "https,http" : "https") != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 0L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cto) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, to) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_USERAGENT, h->useragent) != CURLE_OK ||
        /* A proxy from the environment may serve the CA, never loopback. */
        curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1") != CURLE_OK) {
        err_runtime("E_HTTP", "libcurl refused an option (too old a libcurl?)");
        http_free(h);
        return -1;
    }
    *out = h;
    return 0;
}

void
http_free(struct http *h)
{
    if (h == NULL)
        return;
    if (h->requests > 0)
        verbose("acme: %lu HTTP request%s over %lu connection%s", h->requests,
            h->requests == 1 ? "" : "s", h->connects, h->connects == 1 ? "" : "s");
    if (h->curl != NULL)
        curl_easy_cleanup(h->curl);
    free(h);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
http_set_deadline(struct http *h, long ms, const char *name)
{
    h->deadline_ms = ms < 0 ? 0 : now_ms() + ms;
    snprintf(h->deadline_name, sizeof(h->deadline_name), "%s", name ? name : "deadline");
}

void
http_extend_deadline(struct http *h, long ms)
{
    if (h->deadline_ms != 0 && ms > 0)
        h->deadline_ms += ms;
}

long
http_time_left_ms(const struct http *h)
{
    long long left;

    if (h->deadline_ms == 0)
        return LONG_MAX;
    left = h->deadline_ms - now_ms();
    return left > LONG_MAX ? LONG_MAX : left < LONG_MIN ? LONG_MIN : (long)left;
}

void
http_deadline_passed(const struct http *h, const char *what)
{
    err_runtime("E_TIMEOUT", "%s: the run's deadline passed (%s)", what, h->deadline_name);
}

void
http_response_clear(struct http_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    free(resp->content_type);
    free(resp->location);
    free(resp->nonce);
    for (size_t i = 0; i < resp->n_link_up; i++)
        free(resp->link_up[i]);
    free(resp->link_index);
    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
}

/* Drop captured headers (a 1xx interim response came before the real one). */
static void
headers_reset(struct http_response *resp)
{
    free(resp->content_type);
    free(resp->location);
    free(resp->nonce);
    for (size_t i = 0; i < resp->n_link_up; i++)
        free(resp->link_up[i]);
    free(resp->link_index);
    resp->content_type = resp->location = resp->nonce = resp->link_index = NULL;
    resp->n_link_up = 0;
    resp->retry_after = -1;
}

static size_t
body_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    struct http_response *r = x->resp;
    size_t n = size * nmemb;

    if (n > x->cap || r->body_len > x->cap - n) {
        x->too_big = true;
        return 0;       /* aborts the transfer */
    }
    if (r->body_len + n + 1 > x->alloc) {
        size_t want = x->alloc ? x->alloc : 4096;
        while (want < r->body_len + n + 1)
            want *= 2;
        char *p = realloc(r->body, want);
        if (p == NULL)
            return 0;
        r->body = p;
        x->alloc = want;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static void
link_cb(const char *target, const char *rel, void *arg)
{
    struct http_response *r = arg;

    if (strcmp(rel, "up") == 0 && r->n_link_up < HTTP_MAX_LINKS) {
        char *t = strdup(target);
        if (t != NULL)
            r->link_up[r->n_link_up++] = t;
    } else if (strcmp(rel, "index") == 0 && r->link_index == NULL) {
        r->link_index = strdup(target);
    }
}

/* Capture the headers ACME uses; ignore the rest. */
static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    struct http_response *r = x->resp;
    size_t n = size * nmemb;
    char line[4096], *colon, *v, *end;

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        headers_reset(r);
        return n;
    }
    if (n >= sizeof(line))
        return n;       /* no header we use is this long; ignore it */
    memcpy(line, ptr, n);
    line[n] = '\0';
    if ((colon = strchr(line, ':')) == NULL)
        return n;
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    end = v + strlen(v);
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
        end[-1] == '\t'))
        *--end = '\0';
    if (strcasecmp(line, "replay-nonce") == 0) {
        free(r->nonce);
        r->nonce = strdup(v);
    } else if (strcasecmp(line, "location") == 0) {
        free(r->location);
        r->location = strdup(v);
    } else if (strcasecmp(line, "retry-after") == 0) {
        r->retry_after = http_parse_retry_after(v, time(NULL));
    } else if (strcasecmp(line, "content-type") == 0) {
        char *semi = strchr(v, ';');
        if (semi != NULL)
            *semi = '\0';
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        for (char *p = v; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        free(r->content_type);
        r->content_type = strdup(v);
    } else if (strcasecmp(line, "link") == 0) {
        (void)http_parse_link(v, link_cb, r);
    }
    return n;
}

/* Run the configured transfer and turn curl's verdict into our convention. */
static int
perform(struct http *h, const char *method, const char *url, size_t cap,
    const char *accept, const char *content_type, struct http_response *resp)
{
    struct curl_slist *hdrs = NULL, *t;
    struct xfer x = { .resp = resp, .cap = cap };
    char hbuf[256];
    CURLcode rc;
    long left = http_time_left_ms(h);
    int ret = -1;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    h->errbuf[0] = '\0';
    if (left <= 0) {
        char *u = sanitize(url, 256);
        snprintf(hbuf, sizeof(hbuf), "%s %s", method, u ? u : "?");
        free(u);
        http_deadline_passed(h, hbuf);
        return -1;
    }
    /* No request outlives the run's deadline. */
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, left < h->timeout_ms ? left : h->timeout_ms);
    /* No "Expect: 100-continue" round trip for our small bodies. */
    if ((t = curl_slist_append(hdrs, "Expect:")) == NULL)
        goto oom;
    hdrs = t;
    if (accept != NULL) {
        snprintf(hbuf, sizeof(hbuf), "Accept: %s", accept);
        if ((t = curl_slist_append(hdrs, hbuf)) == NULL)
            goto oom;
        hdrs = t;
    }
    if (content_type != NULL) {
        snprintf(hbuf, sizeof(hbuf), "Content-Type: %s", content_type);
        if ((t = curl_slist_append(hdrs, hbuf)) == NULL)
            goto oom;
        hdrs = t;
    }
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);

    rc = curl_easy_perform(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    {
        long nc = 0;
        h->requests++;
        if (curl_easy_getinfo(h->curl, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK && nc > 0)
            h->connects += (unsigned long)nc;
    }
    if (rc != CURLE_OK) {
        char *u = sanitize(url, 256);
        /* curl's text may quote the server's certificate (its CN): cleaned like all server text. */
        char *clean = sanitize(h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
            CURL_ERROR_SIZE);
        const char *why = clean ? clean : "?";
        if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED)
            err_runtime("E_HTTP_SIZE", "%s %s: response larger than %zu bytes",
                method, u ? u : "?", cap);
        else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
            rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM)
            err_runtime("E_TLS", "%s %s: TLS error: %s", method, u ? u : "?", why);
        else if (rc == CURLE_OPERATION_TIMEDOUT && http_time_left_ms(h) <= 0) {
            snprintf(hbuf, sizeof(hbuf), "%s %s", method, u ? u : "?");
            http_deadline_passed(h, hbuf);
        } else if (rc == CURLE_OPERATION_TIMEDOUT)
            err_runtime("E_TIMEOUT", "%s %s: timed out: %s", method, u ? u : "?", why);
        else
            err_runtime("E_NETWORK", "%s %s: %s", method, u ? u : "?", why);
        free(clean);
        free(u);
        goto out;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (resp->body == NULL && (resp->body = strdup("")) == NULL)
        goto oom;
    ret = 0;
    goto out;
oom:
    err_runtime("E_NOMEM", "out of memory");
out:
    curl_slist_free_all(hdrs);
    if (ret != 0)
        http_response_clear(resp);
    return ret;
}

int
http_get(struct http *h, const char *url, size_t cap, const char *accept,
    struct http_response *resp)
{
    curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    return perform(h, "GET", url, cap, accept, NULL, resp);
}

int
http_head(struct http *h, const char *url, struct http_response *resp)
{
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
    return perform(h, "HEAD", url, 64 * 1024, NULL, NULL, resp);
}

int
http_post_jose(struct http *h, const char *url, const char *body, size_t cap,
    const char *accept, struct http_response *resp)
{
    curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h->curl, CURLOPT_COPYPOSTFIELDS, body);
    return perform(h, "POST", url, cap, accept, "application/jose+json", resp);
}

long
http_parse_retry_after(const char *value, time_t now)
{
    const char *p = value;
    long n = 0;

    if (value == NULL)
        return -1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (isdigit((unsigned char)*p)) {
        for (; isdigit((unsigned char)*p); p++) {
            if (n > 100000000L)
                return -1;
            n = n * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t')
            p++;
        return *p == '\0' ? n : -1;
    }
    /* An HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT"). */
    time_t when = curl_getdate(p, NULL);
    if (when == (time_t)-1)
        return -1;
    return when <= now ? 0 : (long)(when - now > 100000000L ? 100000000L : when - now);
}

int
http_parse_link(const char *value,
    void (*cb)(const char *target, const char *rel, void *arg), void *arg)
{
    const char *p = value;

    for (;;) {
        char target[2048], rel[256];
        const char *gt;
        size_t n;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        if (*p != '<' || (gt = strchr(p, '>')) == NULL)
            return -1;
        n = (size_t)(gt - p - 1);
        if (n >= sizeof(target))
            return -1;
        memcpy(target, p + 1, n);
        target[n] = '\0';
        p = gt + 1;
        rel[0] = '\0';
        /* Parameters: ; name=token | ; name="quoted" */
        for (;;) {
            char name[64], val[256];
            size_t nn = 0, nv = 0;

            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ';')
                break;
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            while (*p && *p != '=' && *p != ';' && *p != ',' && *p != ' ') {
                if (nn + 1 >= sizeof(name))
                    return -1;
                name[nn++] = *p++;
            }
            name[nn] = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p == '"') {
                    for (p++; *p && *p != '"'; p++) {
                        if (*p == '\\' && p[1] != '\0')
                            p++;
                        if (nv + 1 >= sizeof(val))
                            return -1;
                        val[nv++] = *p;
                    }
                    if (*p != '"')
                        return -1;
                    p++;
                } else {
                    while (*p && *p != ';' && *p != ',' && *p != ' ' && *p != '\t') {
                        if (nv + 1 >= sizeof(val))
                            return -1;
                        val[nv++] = *p++;
                    }
                }
            }
            val[nv] = '\0';
            if (strcasecmp(name, "rel") == 0 && rel[0] == '\0')
                snprintf(rel, sizeof(rel), "%s", val);
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ',' && *p != '\0')
            return -1;
        /* rel may list several relation types separated by spaces. */
        for (char *save = NULL, *r = strtok_r(rel, " \t", &save); r != NULL;
             r = strtok_r(NULL, " \t", &save)) {
            for (char *q = r; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            cb(target, r, arg);
        }
    }
}
