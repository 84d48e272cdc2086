/*
 * renew.h - the renewal decision (pure code): is a renewal due, and when?
 *
 * Inputs are plain facts (the current certificate's validity, names, EKUs
 * and key type; the plan; the [renewal] policy; an optional ACME Renewal
 * Information window, RFC 9773) and a caller-supplied random source, so the
 * decision is unit-tested without a token, a CA or a clock.  Nothing here
 * does I/O; the ARI response is fetched by the caller (cmd_renew.c) and
 * parsed here.
 */
#ifndef P11E_RENEW_H
#define P11E_RENEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "plan.h"
#include "profile.h"

#define RENEW_DEFAULT_RETIRE_AFTER (7 * 86400)

/* [renewal], with the defaults of cli.md filled in. */
struct renew_policy {
    bool before_is_fraction;    /* renew-before = A/B (default 1/3) */
    unsigned num, den;
    uint64_t before_secs;       /* renew-before = duration */
    uint64_t jitter_secs;       /* jitter (default 0) */
    uint64_t retire_after_secs; /* retire-after (default 7d) */
    bool rotate;                /* rotate (default yes) */
};

/*
 * Read [renewal] from a loaded profile.  Returns 0, or -1 after reporting
 * with err_input() (a value the loader let through but that is unusable).
 */
int renew_policy_from_profile(const struct profile *p, struct renew_policy *out);

/* The facts about the current certificate that the decision uses. */
struct renew_cert {
    time_t not_before, not_after;
    char **names;               /* DNS SANs lower-cased (the CN when none) */
    size_t nnames;
    bool has_eku;               /* an extendedKeyUsage extension is present */
    bool server_auth, client_auth;
    char key_type[32];          /* "rsa:2048", "ec:p256", ... or "unknown" */
};

/* Extract them from a certificate.  0, or -1 (out of memory / unreadable). */
int renew_cert_from_x509(X509 *x, struct renew_cert *out);
void renew_cert_clear(struct renew_cert *c);

/* A suggested renewal window from an ARI response (RFC 9773 §4.2). */
struct renew_ari {
    time_t start, end;          /* start < end */
    char *explanation_url;      /* sanitised, or NULL */
};

/*
 * Parse a renewalInfo response body.  Returns 0 and fills *out (clear with
 * renew_ari_clear()), or -1 with a short reason in why[len] (not JSON, no
 * suggestedWindow, unparsable or inverted times).  Does not report.
 */
int renew_ari_parse(const char *text, size_t len, struct renew_ari *out, char *why,
    size_t whylen);
void renew_ari_clear(struct renew_ari *a);

/*
 * The ARI CertID of a certificate (RFC 9773 §4.1):
 * base64url(AKI keyIdentifier) "." base64url(serial number octets).
 * Returns a new string (caller frees), or NULL when the certificate has no
 * authority key identifier.
 */
char *renew_ari_cert_id(X509 *x);

/* RFC 3339 timestamp to time_t (UTC).  0, or -1 when malformed or before 1970. */
int renew_parse_time(const char *s, time_t *out);

/* A random source: a uniform value in [0, 1). */
typedef double (*renew_rand_fn)(void *ctx);

/*
 * A random source that is stable for a certificate and spread across a
 * fleet: the first 64 bits of SHA-256 of the certificate's DER, so reruns
 * (a timer firing twice a day) pick the same time instead of drawing anew
 * and drifting early.  ctx is the X509 *.
 */
double renew_rand_cert(void *ctx);

enum renew_reason {
    RENEW_NOT_DUE = 0,
    RENEW_FORCED,       /* --force */
    RENEW_NO_CERT,      /* no current certificate (or key) */
    RENEW_KEY_TYPE,     /* the key type differs from the plan's */
    RENEW_NAMES,        /* the names differ from the plan's */
    RENEW_EKU,          /* an EKU of the plan is missing */
    RENEW_EXPIRED,      /* already expired */
    RENEW_TIME,         /* inside the renew-before window (jitter applied) */
    RENEW_ARI,          /* inside the CA's suggested window */
};

/* "forced", "no-certificate", ... (for JSON). */
const char *renew_reason_name(enum renew_reason r);

struct renew_input {
    time_t now;
    const struct renew_cert *cert;      /* NULL: no current certificate */
    const struct plan *plan;            /* names, EKUs, key type wanted */
    const struct renew_policy *pol;
    const struct renew_ari *ari;        /* NULL: the CA offers no ARI */
    bool force;
    renew_rand_fn rnd;                  /* NULL: no jitter, window start */
    void *rnd_ctx;
};

struct renew_decision {
    bool due;
    enum renew_reason reason;   /* why it is due; RENEW_NOT_DUE otherwise */
    time_t due_at;              /* when it is (or was) due; 0 when due for a change */
    time_t window_start;        /* renew-before window (or ARI start), unjittered */
    time_t latest;              /* the jitter never goes past this */
    bool before_capped;         /* renew-before >= lifetime: 1/3 used instead */
    bool from_ari;              /* the time came from the ARI window */
    bool clock_behind;          /* now < notBefore: not due; warn about the clock */
    char detail[512];           /* one line for people: what differs, or when */
};

/*
 * Decide.  Order: --force; no certificate; key type; names; EKUs; expired;
 * then time.  Time without ARI: the window opens renew-before ahead of
 * notAfter (a fraction of the lifetime, or a duration; a duration not
 * shorter than the lifetime falls back to 1/3); jitter delays that by
 * rnd() * jitter, but never past `latest` = notAfter minus half the window,
 * so half of the window is left for retries.  With ARI: a time rnd() of the
 * way into the suggested window, never past the same `latest` (notAfter
 * minus half the renew-before window); an end in the past means now.  A
 * certificate not valid yet (now < notBefore: the host clock is behind) is
 * not due, with clock_behind set.
 */
void renew_decide(const struct renew_input *in, struct renew_decision *out);

#endif
