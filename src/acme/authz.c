/*
 * authz.c - answering an order's authorizations: collect the pending ones
 * and their challenge, publish the answers (challenge.c), tell the CA,
 * then poll the order (RFC 8555 §7.1.6) until every authorization is
 * valid, and on failure report the CA's reason for the challenge.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme_int.h"
#include "util.h"

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

        if (acme_fetch(a, o->authzs[i], "authorization", &r) != 0)
            goto out;
        if (acme_parse_authz(r.body, r.body_len, a->allow_http, &az) != 0) {
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
        acme_pending_free(p, n);
    return rc;
}

/*
 * The order went invalid while its authorizations were being validated:
 * report the first failed challenge with the CA's reason (a few requests
 * more, on the failure path only), else the order's own error.
 */
static void
authz_report_failure(struct acme *a, const struct pending *p, size_t n,
    const struct acme_order *o)
{
    const char *want = a->cfg->challenge == ACME_HTTP01 ? "http-01" : "dns-01";

    for (size_t i = 0; i < n; i++) {
        struct http_response r;
        struct acme_authz az;
        const char *why = NULL;

        if (acme_fetch(a, p[i].authz_url, "authorization", &r) != 0)
            return;
        if (acme_parse_authz(r.body, r.body_len, a->allow_http, &az) != 0) {
            http_response_clear(&r);
            return;
        }
        http_response_clear(&r);
        if (az.status != ACME_S_PENDING && az.status != ACME_S_VALID) {
            for (size_t k = 0; k < az.n_chall && why == NULL; k++)
                if (strcmp(az.chall[k].type, want) == 0)
                    why = az.chall[k].error;
            err_runtime("E_ACME_CHALLENGE", "authorization %s%s is %s: %s: %s",
                p[i].wildcard ? "*." : "", p[i].name, acme_status_name(az.status), want,
                why ? why : "no reason given");
            acme_authz_clear(&az);
            return;
        }
        acme_authz_clear(&az);
    }
    err_runtime("E_ACME", "order is %s: %s", acme_status_name(o->status),
        o->error ? o->error : "no reason given");
}

/*
 * Tell the server each challenge is ready, then poll the order (not each
 * authorization, RFC 8555 §7.1.6) until it leaves "pending": *o is then
 * the order as last fetched from url.
 */
static int
authz_complete(struct acme *a, struct pending *p, size_t n, const char *url,
    struct acme_order *o)
{
    const char *want = a->cfg->challenge == ACME_HTTP01 ? "http-01" : "dns-01";
    long backoff = ACME_POLL_START_MS, retry_after = -1;

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
            acme_report_response(what, &r);
            http_response_clear(&r);
            return -1;
        }
        http_response_clear(&r);
    }
    while (o->status == ACME_S_PENDING) {
        if (acme_poll_wait(a, retry_after, &backoff, "authorizations") != 0)
            return -1;
        acme_order_clear(o);
        if (acme_fetch_order(a, url, o, &retry_after) != 0)
            return -1;
    }
    if (o->status == ACME_S_INVALID) {
        authz_report_failure(a, p, n, o);
        return -1;
    }
    /* Ready, processing or valid: every authorization is valid. */
    for (size_t i = 0; i < n; i++)
        progress("authorization %s%s: valid (%s)", p[i].wildcard ? "*." : "", p[i].name,
            want);
    return 0;
}

/*
 * Answer the order's pending authorizations and wait until the order
 * leaves "pending" (*o is refreshed).  A dns-01 propagation wait
 * ([ca] dns-wait) moves the run's deadline by as much.
 */
int
acme_authorize(struct acme *a, const char *url, struct acme_order *o)
{
    struct pending *p = NULL;
    struct acme_responder *rs = NULL;
    size_t n = 0;
    int rc = -1;

    if (authz_collect(a, o, &p, &n) != 0)
        return -1;
    if (n == 0) {
        rc = authz_complete(a, p, 0, url, o);   /* all valid already: wait for "ready" */
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
    if (acme_challenges_publish(a, p, n, &rs) == 0) {
        if (a->cfg->challenge == ACME_DNS01 && a->cfg->dns_wait_s > 0) {
            struct timespec ts = { .tv_sec = a->cfg->dns_wait_s };
            progress("dns-01: waiting %u s for the records to propagate ([ca] dns-wait)",
                a->cfg->dns_wait_s);
            while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
            http_extend_deadline(a->http, (long)a->cfg->dns_wait_s * 1000L);
        }
        rc = authz_complete(a, p, n, url, o);
    }
    acme_challenges_unpublish(a, p, n, rs);
out:
    acme_pending_free(p, n);
    return rc;
}
