/*
 * renew.c - is a renewal due, and when?  Pure code (renew.h): no token, no
 * network, no clock; the caller passes `now` and a random source.
 */
#include "renew.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "jws.h"
#include "keytype.h"
#include "util.h"

/* ---- policy ------------------------------------------------------------------ */

int
renew_policy_from_profile(const struct profile *p, struct renew_policy *out)
{
    const char *v;

    memset(out, 0, sizeof(*out));
    out->before_is_fraction = true;
    out->num = 1;
    out->den = 3;
    out->retire_after_secs = RENEW_DEFAULT_RETIRE_AFTER;
    out->rotate = true;
    if ((v = p->renewal.renew_before) != NULL) {
        if (strchr(v, '/') != NULL) {
            if (profile_fraction(v, &out->num, &out->den) == -1)
                goto bad_before;
        } else {
            out->before_is_fraction = false;
            if (profile_duration(v, &out->before_secs) == -1 || out->before_secs == 0)
                goto bad_before;
        }
    }
    if ((v = p->renewal.jitter) != NULL && profile_duration(v, &out->jitter_secs) == -1) {
        err_input("E_PROFILE", "%s:%u: [renewal] jitter = %s: not a duration", p->name,
            profile_line(p, "renewal", "jitter"), v);
        return -1;
    }
    if ((v = p->renewal.retire_after) != NULL &&
        profile_duration(v, &out->retire_after_secs) == -1) {
        err_input("E_PROFILE", "%s:%u: [renewal] retire-after = %s: not a duration", p->name,
            profile_line(p, "renewal", "retire-after"), v);
        return -1;
    }
    if ((v = p->renewal.rotate) != NULL && profile_bool(v, &out->rotate) == -1) {
        err_input("E_PROFILE", "%s:%u: [renewal] rotate = %s: not yes or no", p->name,
            profile_line(p, "renewal", "rotate"), v);
        return -1;
    }
    return 0;
bad_before:
    err_input("E_PROFILE", "%s:%u: [renewal] renew-before = %s: want a fraction A/B "
        "(0 < A < B) or a non-zero duration", p->name,
        profile_line(p, "renewal", "renew-before"), p->renewal.renew_before);
    return -1;
}

/* ---- the current certificate ------------------------------------------------- */

static time_t
asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static int
add_name(struct renew_cert *c, const char *s, size_t len)
{
    char **p = realloc(c->names, (c->nnames + 1) * sizeof(*p));
    char *copy;

    if (p == NULL)
        return -1;
    c->names = p;
    if ((copy = strndup(s, len)) == NULL)
        return -1;
    for (char *q = copy; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    /* One trailing dot is the same name. */
    if (len > 0 && copy[strlen(copy) - 1] == '.')
        copy[strlen(copy) - 1] = '\0';
    c->names[c->nnames++] = copy;
    return 0;
}

int
renew_cert_from_x509(X509 *x, struct renew_cert *out)
{
    GENERAL_NAMES *gens = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    EVP_PKEY *pk;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->not_before = asn1_to_time(X509_get0_notBefore(x));
    out->not_after = asn1_to_time(X509_get0_notAfter(x));
    if (out->not_after == 0)
        return -1;
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS &&
            add_name(out, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                (size_t)ASN1_STRING_length(g->d.dNSName)) == -1)
            goto out;
    }
    if (out->nnames == 0) {
        X509_NAME *subj = X509_get_subject_name(x);
        int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (idx >= 0) {
            ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
            if (add_name(out, (const char *)ASN1_STRING_get0_data(cn),
                    (size_t)ASN1_STRING_length(cn)) == -1)
                goto out;
        }
    }
    if ((eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL)) != NULL) {
        out->has_eku = true;
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
            int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
            if (nid == NID_server_auth)
                out->server_auth = true;
            else if (nid == NID_client_auth)
                out->client_auth = true;
            else if (nid == NID_anyExtendedKeyUsage)
                out->server_auth = out->client_auth = true;
        }
    }
    snprintf(out->key_type, sizeof(out->key_type), "unknown");
    if ((pk = X509_get0_pubkey(x)) != NULL) {
        const struct keytype *kt = NULL;
        char group[64];
        switch (EVP_PKEY_get_base_id(pk)) {
        case EVP_PKEY_RSA:
            kt = keytype_lookup(KEY_RSA, (unsigned)EVP_PKEY_get_bits(pk));
            if (kt == NULL)
                snprintf(out->key_type, sizeof(out->key_type), "rsa:%d", EVP_PKEY_get_bits(pk));
            break;
        case EVP_PKEY_EC:
            kt = keytype_lookup(KEY_EC, (unsigned)EVP_PKEY_get_bits(pk));
            /* keytype_lookup goes by size: make sure the curve is the NIST one. */
            if (kt != NULL && (!EVP_PKEY_get_utf8_string_param(pk, "group", group,
                                   sizeof(group), NULL) ||
                                  kt->curve == NULL || strcmp(group, kt->curve) != 0))
                kt = NULL;
            break;
        case EVP_PKEY_ED25519:
            kt = keytype_lookup(KEY_ED25519, 255);
            break;
        default:
            break;
        }
        if (kt != NULL)
            snprintf(out->key_type, sizeof(out->key_type), "%s", kt->name);
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    EXTENDED_KEY_USAGE_free(eku);
    if (rc == -1)
        renew_cert_clear(out);
    return rc;
}

void
renew_cert_clear(struct renew_cert *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    memset(c, 0, sizeof(*c));
}

/* ---- ARI (RFC 9773) ---------------------------------------------------------- */

/* RFC 3339 to time_t, any year (negative before 1970).  0 or -1. */
static int
parse_time_any(const char *s, time_t *out)
{
    struct tm tm;
    int n = 0, off = 0;
    const char *p;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || strlen(s) < 20 ||
        sscanf(s, "%4d-%2d-%2d%*[Tt]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
        return -1;
    for (int i = 0; i < 19; i++) {
        bool digit = i != 4 && i != 7 && i != 10 && i != 13 && i != 16;
        if (digit != (isdigit((unsigned char)s[i]) != 0))
            return -1;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    p = s + 19;
    if (*p == '.') {    /* fractions of a second: ignored */
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh > 23 || mm > 59)
            return -1;
        off = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    if ((t = timegm(&tm)) == (time_t)-1)
        return -1;
    *out = t - off;
    return 0;
}

int
renew_parse_time(const char *s, time_t *out)
{
    time_t t;

    /* Before 1970 is no time a certificate or the state can use. */
    if (parse_time_any(s, &t) == -1 || t < 0)
        return -1;
    *out = t;
    return 0;
}

int
renew_ari_parse(const char *text, size_t len, struct renew_ari *out, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *win, *u;
    const char *s, *e;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    snprintf(why, whylen, "malformed");
    if (root == NULL || !json_is_object(root)) {
        snprintf(why, whylen, "not a JSON object");
        goto out;
    }
    if (!json_is_object(win = json_object_get(root, "suggestedWindow"))) {
        snprintf(why, whylen, "no suggestedWindow object");
        goto out;
    }
    s = json_string_value(json_object_get(win, "start"));
    e = json_string_value(json_object_get(win, "end"));
    if (s == NULL || e == NULL) {
        snprintf(why, whylen, "suggestedWindow needs start and end strings");
        goto out;
    }
    if (parse_time_any(s, &out->start) == -1 || parse_time_any(e, &out->end) == -1) {
        snprintf(why, whylen, "suggestedWindow times are not RFC 3339");
        goto out;
    }
    /* §4.2: a window whose end is not after its start is invalid. */
    if (out->end <= out->start) {
        snprintf(why, whylen, "suggestedWindow ends before it starts");
        goto out;
    }
    /*
     * Before 1970: a window in the past all the same (renew now), clamped
     * so that no negative time reaches the decision or the state's cache.
     */
    if (out->end <= 0) {
        out->start = 0;
        out->end = 1;
    } else if (out->start < 0) {
        out->start = 0;
    }
    if ((u = json_object_get(root, "explanationURL")) != NULL && json_is_string(u))
        out->explanation_url = sanitize(json_string_value(u), 512);
    rc = 0;
out:
    json_decref(root);
    if (rc == -1)
        renew_ari_clear(out);
    return rc;
}

void
renew_ari_clear(struct renew_ari *a)
{
    if (a == NULL)
        return;
    free(a->explanation_url);
    memset(a, 0, sizeof(*a));
}

char *
renew_ari_cert_id(X509 *x)
{
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    unsigned char *der = NULL;
    char *a = NULL, *b = NULL, *id = NULL;
    int len;

    if (akid == NULL || serial == NULL)
        return NULL;
    /* The serial's DER without tag and length: at most 20 octets, short form. */
    if ((len = i2d_ASN1_INTEGER(serial, &der)) < 3 || der[1] >= 0x80 || der[1] + 2 != len)
        goto out;
    a = b64url_encode(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid));
    b = b64url_encode(der + 2, (size_t)len - 2);
    if (a != NULL && b != NULL && asprintf(&id, "%s.%s", a, b) == -1)
        id = NULL;
out:
    OPENSSL_free(der);
    free(a);
    free(b);
    return id;
}

double
renew_rand_cert(void *ctx)
{
    X509 *x = ctx;
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int len = x ? i2d_X509(x, &der) : -1;
    uint64_t v = 0;

    if (len <= 0)
        return 0.0;
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    /* 53 bits: exactly representable, strictly below 1. */
    return (double)(v >> 11) / 9007199254740992.0;
}

/* ---- the decision ------------------------------------------------------------ */

const char *
renew_reason_name(enum renew_reason r)
{
    switch (r) {
    case RENEW_NOT_DUE: return "not-due";
    case RENEW_FORCED: return "forced";
    case RENEW_NO_CERT: return "no-certificate";
    case RENEW_KEY_TYPE: return "key-type";
    case RENEW_NAMES: return "names";
    case RENEW_EKU: return "eku";
    case RENEW_EXPIRED: return "expired";
    case RENEW_TIME: return "renew-before";
    case RENEW_ARI: return "ari";
    }
    return "?";
}

static bool
has_name(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], name) == 0)
            return true;
    return false;
}

/* Append "missing a, b; extra c" to buf: the differences between plan and certificate. */
static bool
names_differ(const struct plan *pl, const struct renew_cert *c, char *buf, size_t cap)
{
    const char *cnonly[1] = { pl->cn };
    size_t n = pl->nsans ? pl->nsans : (pl->cn ? 1 : 0);
    size_t used = 0;
    bool differ = false, first = true;

#define WANT(i) (pl->nsans ? pl->sans[i].name : cnonly[0])
    for (size_t i = 0; i < n; i++) {
        if (has_name(c->names, c->nnames, WANT(i)))
            continue;
        used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s%s",
            first ? "missing " : ", ", WANT(i));
        if (used >= cap)
            used = cap - 1;
        first = false;
        differ = true;
    }
    first = true;
    for (size_t i = 0; i < c->nnames; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcasecmp(c->names[i], WANT(j)) == 0;
        if (found)
            continue;
        used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s%s",
            first ? (differ ? "; extra " : "extra ") : ", ", c->names[i]);
        if (used >= cap)
            used = cap - 1;
        first = false;
        differ = true;
    }
#undef WANT
    return differ;
}

void
renew_decide(const struct renew_input *in, struct renew_decision *out)
{
    const struct renew_cert *c = in->cert;
    const struct plan *pl = in->plan;
    double u;
    char diff[400], t1[32];

    memset(out, 0, sizeof(*out));
    out->due = true;
    if (in->force) {
        out->reason = RENEW_FORCED;
        snprintf(out->detail, sizeof(out->detail), "--force");
        return;
    }
    if (c == NULL) {
        out->reason = RENEW_NO_CERT;
        snprintf(out->detail, sizeof(out->detail), "there is no current certificate");
        return;
    }
    if (pl->key != NULL && strcmp(c->key_type, pl->key) != 0) {
        out->reason = RENEW_KEY_TYPE;
        snprintf(out->detail, sizeof(out->detail), "the certificate's key is %s, the profile "
            "asks for %s", c->key_type, pl->key);
        return;
    }
    diff[0] = '\0';
    if (names_differ(pl, c, diff, sizeof(diff))) {
        out->reason = RENEW_NAMES;
        snprintf(out->detail, sizeof(out->detail), "the names differ from the plan: %s", diff);
        return;
    }
    for (size_t i = 0; i < pl->neku && c->has_eku; i++) {
        bool have = strcmp(pl->eku[i], "serverAuth") == 0 ? c->server_auth
                  : strcmp(pl->eku[i], "clientAuth") == 0 ? c->client_auth : true;
        if (!have) {
            out->reason = RENEW_EKU;
            snprintf(out->detail, sizeof(out->detail), "the certificate lacks the %s EKU "
                "the plan asks for", pl->eku[i]);
            return;
        }
    }
    if (in->now >= c->not_after) {
        out->reason = RENEW_EXPIRED;
        out->due_at = c->not_after;
        snprintf(out->detail, sizeof(out->detail), "the certificate is expired");
        return;
    }

    /* The renew-before window; with ARI its second half is the retry margin. */
    int64_t life = (int64_t)(c->not_after - c->not_before), before;
    bool capped = false;
    if (life <= 0)
        life = 1;
    if (in->pol->before_is_fraction)
        before = (int64_t)((double)life * in->pol->num / in->pol->den);
    else
        before = in->pol->before_secs > (uint64_t)INT64_MAX ? INT64_MAX
                                                             : (int64_t)in->pol->before_secs;
    if (before >= life) {
        /* A window as long as the lifetime would renew at every run. */
        before = life / 3;
        capped = true;
    }
    u = in->rnd ? in->rnd(in->rnd_ctx) : 0.0;
    if (!(u >= 0.0 && u < 1.0))
        u = 0.0;
    if (in->ari != NULL) {
        /*
         * The CA's window; a random point inside it, but never later than
         * notAfter minus half the renew-before window, so that a failed
         * renewal has time for retries (a window ending at notAfter would
         * leave none).
         */
        time_t margin_end = c->not_after - (time_t)(before / 2);
        out->from_ari = true;
        out->window_start = in->ari->start;
        out->latest = in->ari->end < margin_end ? in->ari->end : margin_end;
        out->due_at = in->ari->start + (time_t)(u * (double)(in->ari->end - in->ari->start));
        if (out->due_at > out->latest)
            out->due_at = out->latest;
        out->reason = RENEW_ARI;
    } else {
        out->before_capped = capped;
        out->window_start = c->not_after - (time_t)before;
        out->latest = c->not_after - (time_t)(before / 2);
        uint64_t delay = (uint64_t)(u * (double)in->pol->jitter_secs);
        if (delay > (uint64_t)(out->latest - out->window_start))
            delay = (uint64_t)(out->latest - out->window_start);
        out->due_at = out->window_start + (time_t)delay;
        out->reason = RENEW_TIME;
    }
    /*
     * Not valid yet: the host clock is behind the CA's (a renewal now would
     * get a certificate that is not valid yet either).  Not due; the caller
     * warns about the clock.
     */
    if (in->now < c->not_before) {
        out->due = false;
        out->reason = RENEW_NOT_DUE;
        out->clock_behind = true;
        text_utc(c->not_before, t1, sizeof(t1));
        snprintf(out->detail, sizeof(out->detail), "the certificate is not valid until %s: "
            "the host clock is behind (check NTP); not renewing", t1);
        return;
    }
    text_utc(out->due_at, t1, sizeof(t1));
    if (in->now >= out->due_at) {
        snprintf(out->detail, sizeof(out->detail), "%s since %s",
            out->from_ari ? "inside the CA's suggested renewal window (ARI)"
                          : "inside the renew-before window", t1);
        return;
    }
    out->due = false;
    out->reason = RENEW_NOT_DUE;
    snprintf(out->detail, sizeof(out->detail), "not due until %s%s", t1,
        out->from_ari ? " (the CA's suggested window, ARI)" : "");
}
