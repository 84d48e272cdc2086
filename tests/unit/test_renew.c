/*
 * test_renew.c - the renewal decision (renew.h): due by force, missing
 * certificate, key type, names, EKUs, expiry, renew-before (fraction and
 * duration), jitter and its cap, ARI windows; the ARI parser against
 * recorded responses (tests/data/ari/, Pebble 2.4.0 has no ARI), the ARI
 * CertID of RFC 9773 §4.1, and [renewal] policy parsing.
 */
#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "plan.h"
#include "profile.h"
#include "renew.h"
#include "util.h"

#define DAY 86400
#define T0 ((time_t)1767225600)  /* 2026-01-01T00:00:00Z */

static const char names_profile[] =
    "[key]\nlabel = web\ntype = ec:p256\n"
    "[names]\nsubject = www.example.com\nsans = www.example.com, example.com\n";

static struct profile *
load_profile(const char *text)
{
    struct profile *p = NULL;
    cr_assert_eq(profile_load_mem("t.ini", text, strlen(text), &p), 0, "profile: %s", text);
    return p;
}

static struct plan *
make_plan(const char *text, struct profile **prof)
{
    struct plan *pl = NULL;
    *prof = load_profile(text);
    cr_assert_eq(plan_build(*prof, &pl), 0);
    return pl;
}

/* A 90-day certificate for the plan's names, serverAuth, ec:p256. */
static char *good_names[] = { "www.example.com", "example.com" };
static struct renew_cert
good_cert(void)
{
    struct renew_cert c = {
        .not_before = T0, .not_after = T0 + 90 * DAY, .names = good_names, .nnames = 2,
        .has_eku = true, .server_auth = true,
    };
    strcpy(c.key_type, "ec:p256");
    return c;
}

static struct renew_policy
policy(const char *renewal)
{
    char buf[1024];
    struct profile *p;
    struct renew_policy pol;
    snprintf(buf, sizeof(buf), "%s[renewal]\n%s", names_profile, renewal);
    p = load_profile(buf);
    cr_assert_eq(renew_policy_from_profile(p, &pol), 0);
    profile_free(p);
    return pol;
}

static double fixed_u;
static double
fixed(void *ctx)
{
    (void)ctx;
    return fixed_u;
}

static struct renew_decision
decide(time_t now, const struct renew_cert *c, const struct plan *pl,
    const struct renew_policy *pol, const struct renew_ari *ari, bool force, double u)
{
    struct renew_decision d;
    fixed_u = u;
    renew_decide(&(struct renew_input){ .now = now, .cert = c, .plan = pl, .pol = pol,
                     .ari = ari, .force = force, .rnd = fixed }, &d);
    return d;
}

Test(renew, defaults_from_profile)
{
    struct renew_policy pol = policy("");
    cr_assert(pol.before_is_fraction);
    cr_assert_eq(pol.num, 1);
    cr_assert_eq(pol.den, 3);
    cr_assert_eq(pol.jitter_secs, 0);
    cr_assert_eq(pol.retire_after_secs, 7 * DAY);
    cr_assert(pol.rotate);
    pol = policy("renew-before = 30d\nrotate = no\nretire-after = 2s\njitter = 6h\n");
    cr_assert(!pol.before_is_fraction);
    cr_assert_eq(pol.before_secs, 30 * DAY);
    cr_assert_eq(pol.jitter_secs, 6 * 3600);
    cr_assert_eq(pol.retire_after_secs, 2);
    cr_assert(!pol.rotate);
}

Test(renew, force_and_no_certificate_come_first)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("");
    struct renew_cert c = good_cert();
    struct renew_decision d = decide(T0 + DAY, &c, pl, &pol, NULL, true, 0);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_FORCED);
    d = decide(T0 + DAY, NULL, pl, &pol, NULL, false, 0);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_NO_CERT);
    cr_assert_str_eq(renew_reason_name(d.reason), "no-certificate");
    plan_free(pl);
    profile_free(p);
}

Test(renew, not_due_early_due_inside_window)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("");
    struct renew_cert c = good_cert();
    /* 1/3 of 90 days: the window opens at day 60. */
    struct renew_decision d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due, "%s", d.detail);
    cr_assert_eq(d.reason, RENEW_NOT_DUE);
    cr_assert_eq(d.due_at, T0 + 60 * DAY);
    cr_assert_eq(d.window_start, T0 + 60 * DAY);
    cr_assert(strstr(d.detail, "not due until 2026-03-02T00:00:00Z") != NULL, "%s", d.detail);
    d = decide(T0 + 60 * DAY - 1, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due);
    d = decide(T0 + 60 * DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_TIME);
    plan_free(pl);
    profile_free(p);
}

Test(renew, duration_and_cap)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("renew-before = 30d\n");
    struct renew_cert c = good_cert();
    struct renew_decision d = decide(T0 + 59 * DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due);
    cr_assert_eq(d.due_at, T0 + 60 * DAY);
    cr_assert(!d.before_capped);
    /* A window as long as the certificate would renew at every run: 1/3 instead. */
    pol = policy("renew-before = 100d\n");
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due);
    cr_assert(d.before_capped);
    cr_assert_eq(d.window_start, T0 + 60 * DAY);
    plan_free(pl);
    profile_free(p);
}

Test(renew, jitter_delays_but_never_past_half_the_window)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("jitter = 6h\n");
    struct renew_cert c = good_cert();
    struct renew_decision d = decide(T0, &c, pl, &pol, NULL, false, 0.5);
    cr_assert_eq(d.due_at, T0 + 60 * DAY + 3 * 3600);
    d = decide(T0 + 60 * DAY + 3 * 3600 - 1, &c, pl, &pol, NULL, false, 0.5);
    cr_assert(!d.due);
    d = decide(T0 + 60 * DAY + 3 * 3600, &c, pl, &pol, NULL, false, 0.5);
    cr_assert(d.due);
    /* Jitter longer than half the window: capped at notAfter - window/2 (day 75). */
    pol = policy("jitter = 40d\n");
    d = decide(T0, &c, pl, &pol, NULL, false, 0.99);
    cr_assert_eq(d.latest, T0 + 75 * DAY);
    cr_assert_eq(d.due_at, T0 + 75 * DAY);
    /* A bad random source (outside [0,1)) is treated as 0. */
    d = decide(T0, &c, pl, &pol, NULL, false, 1.5);
    cr_assert_eq(d.due_at, T0 + 60 * DAY);
    plan_free(pl);
    profile_free(p);
}

Test(renew, names_key_type_and_eku_changes)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("");
    struct renew_cert c = good_cert();
    char *fewer[] = { "www.example.com" }, *more[] = { "www.example.com", "example.com",
                                                         "old.example.com" };
    char *upper[] = { "EXAMPLE.com", "www.example.com" };
    struct renew_decision d;

    c.names = fewer;
    c.nnames = 1;
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_NAMES);
    cr_assert(strstr(d.detail, "missing example.com") != NULL, "%s", d.detail);
    c.names = more;
    c.nnames = 3;
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert_eq(d.reason, RENEW_NAMES);
    cr_assert(strstr(d.detail, "extra old.example.com") != NULL, "%s", d.detail);
    /* Order and case do not matter. */
    c.names = upper;
    c.nnames = 2;
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due, "%s", d.detail);

    c = good_cert();
    strcpy(c.key_type, "rsa:2048");
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert_eq(d.reason, RENEW_KEY_TYPE);
    cr_assert(strstr(d.detail, "rsa:2048") && strstr(d.detail, "ec:p256"), "%s", d.detail);

    /* An extra EKU from the CA (Pebble adds clientAuth) is no reason; a missing one is. */
    c = good_cert();
    c.client_auth = true;
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due, "%s", d.detail);
    c.server_auth = false;
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert_eq(d.reason, RENEW_EKU);
    plan_free(pl);
    profile_free(p);
}

Test(renew, expired_or_not_yet_valid)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("");
    struct renew_cert c = good_cert();
    struct renew_decision d = decide(T0 + 90 * DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert_eq(d.reason, RENEW_EXPIRED);
    plan_free(pl);
    profile_free(p);
}

Test(renew, not_valid_yet_is_a_clock_problem_not_a_reason)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("");
    struct renew_cert c = good_cert();
    /* The host clock is behind the CA's: a new certificate would not be valid yet either. */
    struct renew_decision d = decide(T0 - 10, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.due, "%s", d.detail);
    cr_assert_eq(d.reason, RENEW_NOT_DUE);
    cr_assert(d.clock_behind);
    cr_assert(strstr(d.detail, "clock") != NULL, "%s", d.detail);
    /* Not even a passed ARI window makes it due. */
    struct renew_ari ari = { .start = T0 - 100, .end = T0 - 50 };
    d = decide(T0 - 10, &c, pl, &pol, &ari, false, 0);
    cr_assert(!d.due);
    cr_assert(d.clock_behind);
    /* Changed names still are a reason (the plan, not the clock). */
    char *fewer[] = { "www.example.com" };
    c.names = fewer;
    c.nnames = 1;
    d = decide(T0 - 10, &c, pl, &pol, NULL, false, 0);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_NAMES);
    /* A valid certificate: no clock warning. */
    c = good_cert();
    d = decide(T0 + DAY, &c, pl, &pol, NULL, false, 0);
    cr_assert(!d.clock_behind);
    plan_free(pl);
    profile_free(p);
}

Test(renew, ari_window_replaces_renew_before)
{
    struct profile *p;
    struct plan *pl = make_plan(names_profile, &p);
    struct renew_policy pol = policy("jitter = 6h\n");
    struct renew_cert c = good_cert();
    struct renew_ari ari = { .start = T0 + 40 * DAY, .end = T0 + 42 * DAY };
    struct renew_decision d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.25);
    cr_assert(!d.due);
    cr_assert(d.from_ari);
    cr_assert_eq(d.due_at, T0 + 40 * DAY + DAY / 2);
    d = decide(T0 + 40 * DAY + DAY / 2, &c, pl, &pol, &ari, false, 0.25);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_ARI);
    /* A window in the past (the CA is about to revoke): due now. */
    ari = (struct renew_ari){ .start = T0 - 2, .end = T0 - 1 };
    d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.9);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_ARI);
    /*
     * Never later than notAfter minus half the renew-before window (1/3 of
     * 90 days: 30, half of it 15: day 75), whatever the CA says, so that a
     * failed renewal has time left for retries.
     */
    ari = (struct renew_ari){ .start = T0 + 80 * DAY, .end = T0 + 200 * DAY };
    d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.99);
    cr_assert_eq(d.latest, T0 + 75 * DAY);
    cr_assert_eq(d.due_at, T0 + 75 * DAY);
    /* A window ending exactly at notAfter: capped the same way. */
    ari = (struct renew_ari){ .start = T0 + 89 * DAY, .end = T0 + 90 * DAY };
    d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.5);
    cr_assert_eq(d.due_at, T0 + 75 * DAY);
    cr_assert(d.due_at < c.not_after);
    d = decide(T0 + 75 * DAY, &c, pl, &pol, &ari, false, 0.5);
    cr_assert(d.due);
    cr_assert_eq(d.reason, RENEW_ARI);
    /* A window well before the margin is used as it is. */
    ari = (struct renew_ari){ .start = T0 + 40 * DAY, .end = T0 + 42 * DAY };
    d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.99);
    cr_assert(d.due_at > T0 + 41 * DAY && d.due_at < T0 + 42 * DAY);
    /* Changed names still win over the window. */
    char *fewer[] = { "www.example.com" };
    c.names = fewer;
    c.nnames = 1;
    d = decide(T0 + DAY, &c, pl, &pol, &ari, false, 0.99);
    cr_assert_eq(d.reason, RENEW_NAMES);
    plan_free(pl);
    profile_free(p);
}

/* ---- ARI responses ------------------------------------------------------------- */

static int
parse_file(const char *name, struct renew_ari *a, char *why, size_t whylen)
{
    char path[1024], *dir = strdup(__FILE__);
    uint8_t *buf = NULL;
    size_t len;
    int rc = -1;

    /* The source tree relative to the build dir (meson test), else to the cwd. */
    snprintf(path, sizeof(path), "%s/../data/ari/%s", dirname(dir), name);
    free(dir);
    if (read_file_capped(path, 65536, &buf, &len) == -1) {
        snprintf(path, sizeof(path), "%s/tests/data/ari/%s",
            getenv("SRCDIR") ? getenv("SRCDIR") : ".", name);
        rc = read_file_capped(path, 65536, &buf, &len);
    } else {
        rc = 0;
    }
    cr_assert_eq(rc, 0, "cannot read %s", path);
    rc = renew_ari_parse((const char *)buf, len, a, why, whylen);
    free(buf);
    return rc;
}

Test(ari, recorded_valid_responses)
{
    struct renew_ari a;
    char why[128];
    time_t s, e;

    cr_assert_eq(renew_parse_time("2025-01-02T04:00:00Z", &s), 0);
    cr_assert_eq(renew_parse_time("2025-01-03T04:00:00Z", &e), 0);
    cr_assert_eq(parse_file("rfc9773-example.json", &a, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.start, s);
    cr_assert_eq(a.end, e);
    cr_assert_str_eq(a.explanation_url, "https://acme.example.com/docs/ari");
    renew_ari_clear(&a);
    /* Numeric offsets: the same window. The control byte in the URL is sanitised. */
    cr_assert_eq(parse_file("offset.json", &a, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.start, s);
    cr_assert_eq(a.end, e);
    cr_assert_str_eq(a.explanation_url, "https://ca.example/why?now");
    renew_ari_clear(&a);
    cr_assert_eq(parse_file("boulder-fractional.json", &a, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.end - a.start, 2 * DAY);
    cr_assert_null(a.explanation_url);
    renew_ari_clear(&a);
    cr_assert_eq(parse_file("revoked-past.json", &a, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.start, (time_t)946684800);
    renew_ari_clear(&a);
}

Test(ari, recorded_malformed_responses)
{
    static const struct { const char *file, *why; } bad[] = {
        { "inverted.json", "ends before it starts" },
        { "empty-window.json", "ends before it starts" },
        { "missing-window.json", "no suggestedWindow" },
        { "bad-time.json", "not RFC 3339" },
        { "not-json.txt", "not a JSON object" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct renew_ari a;
        char why[128];
        cr_assert_eq(parse_file(bad[i].file, &a, why, sizeof(why)), -1, "%s", bad[i].file);
        cr_assert(strstr(why, bad[i].why) != NULL, "%s: %s", bad[i].file, why);
        cr_assert_eq(a.start, 0);
        cr_assert_null(a.explanation_url);
    }
}

Test(ari, rfc3339_edges)
{
    time_t t;
    cr_assert_eq(renew_parse_time("1970-01-01T00:00:00Z", &t), 0);
    cr_assert_eq(t, 0);
    cr_assert_eq(renew_parse_time("2026-01-01t00:00:00.5z", &t), 0);
    cr_assert_eq(t, T0);
    cr_assert_eq(renew_parse_time("2026-01-01T01:00:00+01:00", &t), 0);
    cr_assert_eq(t, T0);
    const char *bad[] = { "", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00Zjunk",
        "2026-1-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00+2:00",
        "2026-01-01T00:00:00.Z", "+026-01-01T00:00:00Z", "2026-01-01T00:00:00+25:00" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(renew_parse_time(bad[i], &t), -1, "%s", bad[i]);
    /* Before 1970: refused (a negative time would poison the state's cache). */
    t = 42;
    cr_assert_eq(renew_parse_time("1969-12-31T23:59:59Z", &t), -1);
    cr_assert_eq(renew_parse_time("0001-01-01T00:00:00Z", &t), -1);
    cr_assert_eq(renew_parse_time("1970-01-01T00:30:00+01:00", &t), -1);
    cr_assert_eq(t, 42, "unchanged on failure");
}

Test(ari, pre_1970_windows_are_clamped_not_negative)
{
    static const char past[] = "{\"suggestedWindow\": {\"start\": \"1969-01-01T00:00:00Z\","
                               " \"end\": \"1969-01-02T00:00:00Z\"}}";
    static const char straddle[] = "{\"suggestedWindow\": {\"start\": \"1969-12-31T00:00:00Z\","
                                   " \"end\": \"2026-01-01T00:00:00Z\"}}";
    struct renew_ari a;
    char why[128];
    cr_assert_eq(renew_ari_parse(past, strlen(past), &a, why, sizeof(why)), 0, "%s", why);
    cr_assert(a.start >= 0 && a.end > a.start, "%lld..%lld", (long long)a.start,
        (long long)a.end);
    cr_assert(a.end < T0, "still a window in the past: renew now");
    renew_ari_clear(&a);
    cr_assert_eq(renew_ari_parse(straddle, strlen(straddle), &a, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(a.start, 0);
    cr_assert_eq(a.end, T0);
    renew_ari_clear(&a);
}

/* ---- certificates ------------------------------------------------------------- */

static X509 *
make_cert(const char *sans, const char *eku, long serial, const uint8_t *akid, size_t akidlen)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    cr_assert_not_null(k);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 90L * DAY);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
        (const unsigned char *)"www.example.com", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (sans) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (eku) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (akid) {
        AUTHORITY_KEYID *ak = AUTHORITY_KEYID_new();
        ak->keyid = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(ak->keyid, akid, (int)akidlen);
        X509_add1_ext_i2d(x, NID_authority_key_identifier, ak, 0, 0);
        AUTHORITY_KEYID_free(ak);
    }
    X509_sign(x, k, EVP_sha256());
    EVP_PKEY_free(k);
    return x;
}

Test(ari, cert_id_rfc9773_example)
{
    /* RFC 9773 §4.1: keyIdentifier 69:88:5B:..., serial 0x0087654321. */
    static const uint8_t akid[] = { 0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
        0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4 };
    X509 *x = make_cert("DNS:www.example.com", NULL, 0x87654321L, akid, sizeof(akid));
    char *id = renew_ari_cert_id(x);
    cr_assert_str_eq(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
    X509_free(x);
    x = make_cert("DNS:www.example.com", NULL, 1, NULL, 0);
    cr_assert_null(renew_ari_cert_id(x), "no AKI, no CertID");
    X509_free(x);
}

Test(renew, facts_from_a_certificate)
{
    X509 *x = make_cert("DNS:WWW.example.com, DNS:example.com., IP:127.0.0.1",
        "serverAuth, clientAuth", 7, NULL, 0);
    struct renew_cert c;
    cr_assert_eq(renew_cert_from_x509(x, &c), 0);
    cr_assert_eq(c.nnames, 2);
    cr_assert_str_eq(c.names[0], "www.example.com");
    cr_assert_str_eq(c.names[1], "example.com");
    cr_assert(c.has_eku && c.server_auth && c.client_auth);
    cr_assert_str_eq(c.key_type, "ec:p256");
    cr_assert_eq(c.not_after - c.not_before, 90 * DAY);
    renew_cert_clear(&c);
    X509_free(x);
    /* No SAN: the CN stands in; no EKU extension: any use. */
    x = make_cert(NULL, NULL, 8, NULL, 0);
    cr_assert_eq(renew_cert_from_x509(x, &c), 0);
    cr_assert_eq(c.nnames, 1);
    cr_assert_str_eq(c.names[0], "www.example.com");
    cr_assert(!c.has_eku);
    renew_cert_clear(&c);
    X509_free(x);
}

Test(renew, random_source_is_stable_per_certificate)
{
    X509 *a = make_cert("DNS:a.example", NULL, 1, NULL, 0);
    X509 *b = make_cert("DNS:b.example", NULL, 2, NULL, 0);
    double ua = renew_rand_cert(a), ub = renew_rand_cert(b);
    cr_assert(ua >= 0.0 && ua < 1.0);
    cr_assert(ub >= 0.0 && ub < 1.0);
    cr_assert(ua == renew_rand_cert(a), "the same certificate, the same time");
    cr_assert(ua != ub);
    cr_assert(renew_rand_cert(NULL) == 0.0);
    X509_free(a);
    X509_free(b);
}
