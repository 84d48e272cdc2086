/*
 * ari.c - ACME Renewal Information (RFC 9773): the CA's suggested renewal
 * window for a certificate, asked of the directory's renewalInfo through
 * the run's client and cached in the renewal state until its Retry-After.
 * The pure pieces (CertID, response parser) are in renew.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_int.h"
#include "renew.h"
#include "state.h"
#include "util.h"

#define ARI_MAX_BODY (64 * 1024)
#define ARI_DEFAULT_POLL (6 * 3600)

/* The cached window for cert_id while it is fresh: 1 and *out, else 0. */
static int
ari_cached(const struct state *st, const char *cert_id, time_t now, struct renew_ari *out)
{
    if (st->ari.cert_id == NULL || strcmp(st->ari.cert_id, cert_id) != 0 ||
        now >= st->ari.next_poll)
        return 0;
    out->start = st->ari.start;
    out->end = st->ari.end;
    return 1;
}

/* Keep the answer; poll again after Retry-After (capped to [1 min, 1 day]). */
static void
ari_cache(struct state *st, char *cert_id, const struct renew_ari *w, long retry_after,
    time_t now)
{
    long ra = retry_after < 0 ? ARI_DEFAULT_POLL
            : retry_after < 60 ? 60 : retry_after > 86400 ? 86400 : retry_after;

    free(st->ari.cert_id);
    st->ari.cert_id = cert_id;  /* transferred from the caller */
    st->ari.start = w->start;
    st->ari.end = w->end;
    st->ari.next_poll = now + ra;
}

int
acme_ari_window(struct acme_client *c, struct state *st, X509 *cert, time_t now,
    struct renew_ari *out)
{
    struct http_response resp = { 0 };
    const struct acme_directory *dir;
    char *cert_id = renew_ari_cert_id(cert), *url = NULL, why[128];
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (cert_id == NULL)
        return 0;
    if (ari_cached(st, cert_id, now, out)) {
        free(cert_id);
        return 1;
    }
    err_hold(true);     /* a failure here is one warning, below: not an error line too */
    if (c == NULL || acme_client_directory(c, &dir) == -1)
        goto fail;
    if (dir->renewal_info == NULL) {
        verbose("the CA's directory offers no renewalInfo (ARI): using renew-before");
        goto out;
    }
    if (!acme_url_ok(dir->renewal_info, c->allow_http) ||
        asprintf(&url, "%s/%s", dir->renewal_info, cert_id) == -1) {
        url = NULL;
        goto fail;
    }
    if (http_get(c->http, url, ARI_MAX_BODY, "application/json", &resp) == -1 ||
        resp.status != 200)
        goto fail;
    if (renew_ari_parse(resp.body, resp.body_len, out, why, sizeof(why)) == -1) {
        warnmsg("ignoring the CA's renewal information: %s", why);
        goto out;
    }
    verbose("ARI: suggested window %lld..%lld", (long long)out->start, (long long)out->end);
    ari_cache(st, cert_id, out, resp.retry_after, now);
    cert_id = NULL; /* transferred */
    rc = 2;
    goto out;
fail:
    if (resp.status != 0)
        warnmsg("could not fetch the CA's renewal information (ARI): HTTP %ld; using "
            "renew-before", resp.status);
    else
        warnmsg("could not fetch the CA's renewal information (ARI): %s; using renew-before",
            err_last_message()[0] ? err_last_message() : "no CA configured");
    err_clear();
out:
    err_hold(false);
    http_response_clear(&resp);
    free(url);
    free(cert_id);
    return rc;
}
