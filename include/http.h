/*
 * http.h - the HTTPS client the ACME code talks through (libcurl).
 *
 * One handle serves the whole run, so one TLS connection is reused.  The
 * server is verified against the given CA bundle only: CURLOPT_CAINFO is set
 * explicitly and CURLOPT_CAPATH cleared, so no environment variable or
 * system default decides whom we trust.  Redirects are not followed (ACME
 * needs none), response bodies are capped, only https is spoken, and every
 * request has a connect and a total timeout.
 */
#ifndef P11E_HTTP_H
#define P11E_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct http;

struct http_opts {
    const char *ca_bundle;      /* PEM file of trusted CAs (required) */
    long connect_timeout_ms;    /* 0: 10 s */
    long timeout_ms;            /* whole request; 0: 30 s */
    bool allow_http;            /* tests only: also speak plain http */
};

#define HTTP_MAX_LINKS 8

struct http_response {
    long status;                /* HTTP status code */
    char *body;                 /* NUL-terminated (may hold NULs), or NULL */
    size_t body_len;
    char *content_type;         /* media type, lower case, no parameters */
    char *location;             /* Location header, or NULL */
    char *nonce;                /* Replay-Nonce header, or NULL */
    long retry_after;           /* seconds from now, or -1 when absent/unparsable */
    char *link_up[HTTP_MAX_LINKS];  /* Link rel="up" targets (alternates, issuer) */
    size_t n_link_up;
    char *link_index;           /* Link rel="index" (the directory), or NULL */
};

/*
 * Create the client.  Returns 0 and *out (free with http_free()), or -1
 * after reporting (no CA bundle, curl failure).
 */
int http_new(const struct http_opts *opts, struct http **out);
/* Free the client; with -v it notes how many requests and connections it made. */
void http_free(struct http *h);

/*
 * The run's deadline, `ms` milliseconds from now (< 0: none).  A request
 * started after it fails at once, and each request's own timeout is cut to
 * the time left, so no server can stretch a run past it.  `name` says
 * which setting it is, for the message (e.g. "[ca] timeout = 120 s").
 */
void http_set_deadline(struct http *h, long ms, const char *name);
/* Move the deadline `ms` later: for a wait that does not count against it. */
void http_extend_deadline(struct http *h, long ms);
/* Milliseconds left before the deadline (LONG_MAX without one; <= 0 when passed). */
long http_time_left_ms(const struct http *h);
/* Report E_TIMEOUT for `what`, naming the deadline (one line). */
void http_deadline_passed(const struct http *h, const char *what);

/*
 * Requests.  `cap` limits the response body (a larger one fails).  `accept`
 * is the Accept header value or NULL.  Each returns 0 with *resp filled for
 * any HTTP status (the caller judges it), or -1 after reporting a transport
 * failure (connect, TLS, timeout, oversized body).  *resp is cleared on
 * entry; release it with http_response_clear().
 */
int http_get(struct http *h, const char *url, size_t cap, const char *accept,
    struct http_response *resp);
int http_head(struct http *h, const char *url, struct http_response *resp);
/* POST with Content-Type: application/jose+json. */
int http_post_jose(struct http *h, const char *url, const char *body,
    size_t cap, const char *accept, struct http_response *resp);

void http_response_clear(struct http_response *resp);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

/*
 * Retry-After value: delta-seconds or an HTTP-date.  Returns seconds from
 * `now` (0 for a date in the past), or -1 when unparsable.
 */
long http_parse_retry_after(const char *value, time_t now);

/*
 * One Link header value (may hold several comma-separated links): call
 * cb(target, rel) for each link that has a rel parameter (each of a
 * space-separated rel list).  Targets are returned without the angle
 * brackets.  Returns 0, or -1 when the value is malformed.
 */
int http_parse_link(const char *value,
    void (*cb)(const char *target, const char *rel, void *arg), void *arg);

#endif
