/*
 * test_plan.c - the SAN planner through its API: every worked case of
 * edge-san-rules.md §5, every error and warning code of §3 with the profile
 * key it names, the three Edge certificates, [names], and the JSON shape.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "profile.h"

/* The seed topology (case 1) as [edge] keys; tests override some. */
static const char *const seed_keys[][2] = {
    { "access-edge", "sip.contoso.com" },
    { "webconf-edge", "webcon.contoso.com" },
    { "av-edge", "av.contoso.com" },
    { "sip-domains", "contoso.com,fabrikam.com" },
    { "xmpp-domains", "contoso.com" },
};
#define NSEED (sizeof(seed_keys) / sizeof(seed_keys[0]))

/*
 * A profile: the seed's [edge] keys with overrides, given as key, value
 * pairs ending in NULL.  A NULL value removes a seed key; other keys are
 * added.  `extra` is appended verbatim (other sections).
 */
static char *
edge_ini(const char *extra, ...)
{
    const char *keys[64], *vals[64];
    size_t n = 0;
    va_list ap;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    for (size_t i = 0; i < NSEED; i++) {
        keys[n] = seed_keys[i][0];
        vals[n++] = seed_keys[i][1];
    }
    va_start(ap, extra);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        const char *v = va_arg(ap, const char *);
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(keys[i], k) == 0)
                break;
        keys[i] = k;
        vals[i] = v;
        if (i == n)
            n++;
    }
    va_end(ap);
    fprintf(f, "[edge]\n");
    for (size_t i = 0; i < n; i++)
        if (vals[i] != NULL)
            fprintf(f, "%s = %s\n", keys[i], vals[i]);
    if (extra != NULL)
        fprintf(f, "%s", extra);
    fclose(f);
    return out;
}

static struct plan *
plan_text(const char *ini)
{
    struct profile *p = NULL;
    struct plan *pl = NULL;

    cr_assert_eq(profile_load_mem("test.ini", ini, strlen(ini), &p), 0,
        "profile did not load:\n%s", ini);
    plan_build(p, &pl);
    profile_free(p);    /* the plan must not point into the profile */
    cr_assert_not_null(pl);
    return pl;
}

static struct plan *
plan_ini(char *ini)
{
    struct plan *pl = plan_text(ini);
    free(ini);
    return pl;
}

/* Exactly these SANs in this order (NULL-terminated). */
static void
expect_sans(const struct plan *pl, ...)
{
    va_list ap;
    size_t i = 0;

    cr_assert_null(pl->error.code, "unexpected error %s: %s", pl->error.code,
        pl->error.message);
    va_start(ap, pl);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        cr_assert_lt(i, pl->nsans, "SAN %zu missing (want %s)", i + 1, want);
        cr_assert_str_eq(pl->sans[i].name, want, "SAN %zu", i + 1);
    }
    va_end(ap);
    cr_assert_eq(pl->nsans, i, "%zu SANs, want %zu", pl->nsans, i);
}

static void
expect_eku(const struct plan *pl, bool client)
{
    cr_assert_eq(pl->neku, client ? 2u : 1u);
    cr_assert_str_eq(pl->eku[0], "serverAuth");
    if (client)
        cr_assert_str_eq(pl->eku[1], "clientAuth");
}

static bool
has_warning(const struct plan *pl, const char *code, const char *key)
{
    for (size_t i = 0; i < pl->nwarnings; i++)
        if (strcmp(pl->warnings[i].code, code) == 0 &&
            (key == NULL || (pl->warnings[i].key && strcmp(pl->warnings[i].key, key) == 0)))
            return true;
    return false;
}

static void
expect_error(const struct plan *pl, const char *code, const char *key, const char *name)
{
    cr_assert_not_null(pl->error.code, "expected %s, got a plan", code);
    cr_assert_str_eq(pl->error.code, code, "got %s (%s)", pl->error.code, pl->error.message);
    cr_assert_str_eq(pl->error.key, key, "error names key %s", pl->error.key);
    if (name != NULL)
        cr_assert_str_eq(pl->error.name, name);
    cr_assert_not_null(pl->error.message);
    cr_assert(strstr(pl->error.message, key) != NULL, "message lacks the key: %s",
        pl->error.message);
}

/* ---- §5 worked cases ---- */

Test(worked, case01_seed)
{
    struct plan *pl = plan_ini(edge_ini(NULL, NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    cr_assert_str_eq(pl->certificate, "external");
    cr_assert_str_eq(pl->key, "rsa:2048");
    expect_eku(pl, false);
    cr_assert_eq(pl->nwarnings, 0, "warning %s", pl->nwarnings ? pl->warnings[0].code : "");
    /* why: the explanation of each name */
    cr_assert_str_eq(pl->sans[0].src.from, "webconf-edge");
    cr_assert_str_eq(pl->sans[0].src.rule, "R-E5");
    cr_assert_str_eq(pl->sans[1].src.from, "access-edge");
    cr_assert_str_eq(pl->sans[1].src.rule, "R-E4");
    cr_assert_eq(pl->sans[1].nalso, 1);
    cr_assert_str_eq(pl->sans[1].also[0].from, "sip-domains");
    cr_assert_str_eq(pl->sans[2].src.rule, "R-E6");
    cr_assert_str_eq(pl->sans[3].src.from, "xmpp-domains");
    cr_assert_str_eq(pl->sans[3].src.rule, "R-E8");
    cr_assert_str_eq(pl->subject_src.rule, "R-E3");
    cr_assert_str_eq(pl->ca_kind, "public");
    cr_assert_str_eq(pl->product, "lync2013");
    cr_assert_not(pl->pool);
    plan_free(pl);
}

Test(worked, case02_no_xmpp)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", NULL, NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    expect_eku(pl, false);
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(worked, case03_xmpp_child_domains)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains",
        "corp.contoso.com,finance.contoso.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "corp.contoso.com", "finance.contoso.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    expect_eku(pl, false);
    cr_assert_eq(pl->nwarnings, 0, "no warning expected, got %s",
        pl->nwarnings ? pl->warnings[0].code : "");
    plan_free(pl);
}

Test(worked, case04_access_not_sip)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", "access.contoso.com",
        "av-edge", NULL, "xmpp-domains", NULL, NULL));
    expect_sans(pl, "webcon.contoso.com", "access.contoso.com", "sip.contoso.com",
        "sip.fabrikam.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=access.contoso.com");
    expect_eku(pl, false);
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(worked, case05_internal)
{
    struct plan *pl = plan_text("[edge]\ncertificate = internal\n"
        "internal-fqdn = lsedge.contoso.net\n");
    expect_sans(pl, NULL);      /* no SAN extension */
    cr_assert_str_eq(pl->subject, "CN=lsedge.contoso.net");
    cr_assert_str_eq(pl->certificate, "internal");
    cr_assert_str_eq(pl->subject_src.from, "internal-fqdn");
    cr_assert_str_eq(pl->subject_src.rule, "R-I1");
    cr_assert_str_eq(pl->ca_kind, "private");
    expect_eku(pl, false);
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(worked, case06_pool)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", NULL, "topology", "pool",
        "load-balancing", "dns", "members", "edge01.contoso.net,edge02.contoso.net", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    expect_eku(pl, false);
    cr_assert(has_warning(pl, "W_KEY_SHARED_MEMBERS", NULL));
    cr_assert_eq(pl->nwarnings, 1);
    cr_assert(pl->pool);
    cr_assert_str_eq(pl->load_balancing, "dns");
    cr_assert_eq(pl->nmembers, 2);
    cr_assert_str_eq(pl->members[0], "edge01.contoso.net");
    cr_assert_str_eq(pl->members[1], "edge02.contoso.net");
    cr_assert(strstr(pl->shared_key_note, "network-HSM partition") != NULL);
    cr_assert(strstr(pl->shared_key_note, "never makes a key exportable") != NULL);
    plan_free(pl);
}

Test(worked, case07_case_folding)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", "SIP.Contoso.COM",
        "webconf-edge", "WebCon.contoso.com",
        "sip-domains", "Contoso.com,contoso.COM,Fabrikam.com",
        "xmpp-domains", "CONTOSO.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    expect_eku(pl, false);
    cr_assert(has_warning(pl, "W_DUPLICATE_FOLDED", "sip-domains"));
    cr_assert_eq(pl->nwarnings, 1);
    plan_free(pl);
}

Test(worked, case08_trailing_dots)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", NULL,
        "access-edge", "sip.contoso.com.", "sip-domains", "contoso.com.,fabrikam.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(worked, case09_underscore)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "webconf-edge", "web_con.contoso.com", NULL));
    expect_error(pl, "E_LABEL_CHARS", "webconf-edge", "web_con.contoso.com");
    plan_free(pl);
}

Test(worked, case10_single_label)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", "sipedge", NULL));
    expect_error(pl, "E_SINGLE_LABEL", "access-edge", "sipedge");
    plan_free(pl);
}

Test(worked, case11_ipv4)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", "131.107.155.10", NULL));
    expect_error(pl, "E_IP_LITERAL", "access-edge", "131.107.155.10");
    plan_free(pl);
}

Test(worked, case12_wildcard)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", "*.contoso.com", NULL));
    expect_error(pl, "E_WILDCARD", "access-edge", "*.contoso.com");
    plan_free(pl);
}

Test(worked, case13_double_dot)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains", "contoso.com..", NULL));
    expect_error(pl, "E_LABEL_EMPTY", "sip-domains", "contoso.com..");
    plan_free(pl);
}

Test(worked, case14_client_auth)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "client-auth", "yes", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", NULL);
    expect_eku(pl, true);
    cr_assert(has_warning(pl, "W_CLIENT_EKU_PUBLIC_CA", "client-auth"));
    cr_assert_eq(pl->nwarnings, 1);
    plan_free(pl);
}

/* ---- every error code of §3, with the key it names ---- */

Test(errors, name_empty)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", ".", NULL));
    expect_error(pl, "E_NAME_EMPTY", "access-edge", ".");
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "sip-domains", "contoso.com,,fabrikam.com", NULL));
    expect_error(pl, "E_NAME_EMPTY", "sip-domains", "");
    plan_free(pl);
}

Test(errors, label_too_long)
{
    char label[80], ini[200];
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(ini, sizeof(ini), "%s.contoso.com", label);
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-host", ini, NULL));
    expect_error(pl, "E_LABEL_TOO_LONG", "xmpp-host", ini);
    plan_free(pl);
    label[63] = '\0';   /* 63 is fine */
    snprintf(ini, sizeof(ini), "%s.contoso.com", label);
    pl = plan_ini(edge_ini(NULL, "xmpp-host", ini, NULL));
    cr_assert_null(pl->error.code);
    cr_assert_str_eq(pl->sans[3].name, ini);
    cr_assert_str_eq(pl->sans[3].src.from, "xmpp-host");
    plan_free(pl);
}

Test(errors, label_hyphen)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", "-corp.contoso.com", NULL));
    expect_error(pl, "E_LABEL_HYPHEN", "xmpp-domains", "-corp.contoso.com");
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "webconf-edge", "webcon-.contoso.com", NULL));
    expect_error(pl, "E_LABEL_HYPHEN", "webconf-edge", NULL);
    plan_free(pl);
}

Test(errors, non_ascii)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains", "contoso.com,b\xc3\xbc" "cher.de", NULL));
    expect_error(pl, "E_NON_ASCII", "sip-domains", "b\xc3\xbc" "cher.de");
    plan_free(pl);
}

Test(errors, name_too_long_derived)
{
    /* 249 characters: valid itself, but sip.<d> is 253 + 4 = over the limit. */
    char d[300] = "";
    for (int i = 0; i < 4; i++)
        strcat(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");   /* 62 */
    strcat(d, "com");   /* 4 * 62 + 3 = 251 */
    cr_assert_eq(strlen(d), 251);
    cr_assert_null(plan_check_name(d, false, (char[100]){ 0 }, 100));
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains", d, NULL));
    expect_error(pl, "E_NAME_TOO_LONG", "sip-domains", d);
    cr_assert(strstr(pl->error.message, "sip.aaaa") != NULL);
    plan_free(pl);
}

Test(errors, ip_literals)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "webconf-edge", "2001:db8::20", NULL));
    expect_error(pl, "E_IP_LITERAL", "webconf-edge", "2001:db8::20");
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "xmpp-host", "[2001:DB8::20]", NULL));
    expect_error(pl, "E_IP_LITERAL", "xmpp-host", "[2001:DB8::20]");
    plan_free(pl);
}

Test(errors, wildcard_external_extra)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "extra-sans", "*.contoso.com", NULL));
    expect_error(pl, "E_WILDCARD", "extra-sans", "*.contoso.com");
    plan_free(pl);
}

Test(errors, wildcard_internal_subject)
{
    struct plan *pl = plan_text("[edge]\ncertificate = internal\ninternal-fqdn = *.contoso.net\n");
    expect_error(pl, "E_WILDCARD", "internal-fqdn", "*.contoso.net");
    plan_free(pl);
}

Test(errors, cn_too_long)
{
    /* 65 characters: a fine SAN, too long for the CN. */
    const char *n = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz.contoso.com";
    cr_assert_eq(strlen(n), 64);
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", n, NULL));
    cr_assert_null(pl->error.code, "64 is fine: %s", pl->error.message);
    plan_free(pl);
    n = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzz.contoso.com";
    pl = plan_ini(edge_ini(NULL, "access-edge", n, NULL));
    expect_error(pl, "E_CN_TOO_LONG", "access-edge", n);
    plan_free(pl);
    /* the same name as webconf-edge (SAN only) is fine */
    pl = plan_ini(edge_ini(NULL, "webconf-edge", n, NULL));
    cr_assert_null(pl->error.code);
    plan_free(pl);
}

Test(errors, no_sip_domain)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains", NULL, "xmpp-domains", NULL, NULL));
    expect_error(pl, "E_NO_SIP_DOMAIN", "sip-domains", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "sip-domains", "contoso.onmicrosoft.com",
        "xmpp-domains", NULL, NULL));
    expect_error(pl, "E_NO_SIP_DOMAIN", "sip-domains", NULL);
    plan_free(pl);
}

Test(errors, xmpp_sfb2019)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "product", "sfb2019", NULL));
    expect_error(pl, "E_XMPP_UNSUPPORTED", "xmpp-domains", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "product", "sfb2019", "xmpp-domains", NULL,
        "xmpp-host", "xmpp.contoso.com", NULL));
    expect_error(pl, "E_XMPP_UNSUPPORTED", "xmpp-host", NULL);
    plan_free(pl);
    /* sfb2015 still has XMPP */
    pl = plan_ini(edge_ini(NULL, "product", "sfb2015", NULL));
    cr_assert_null(pl->error.code);
    plan_free(pl);
}

Test(errors, hlb_nat)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing",
        "hardware", "nat", "yes", NULL));
    expect_error(pl, "E_HLB_NAT", "nat", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing", "dns", "nat", "yes", NULL));
    cr_assert_null(pl->error.code);
    cr_assert(pl->nat);
    plan_free(pl);
}

Test(errors, missing)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "access-edge", NULL, NULL));
    expect_error(pl, "E_MISSING", "access-edge", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "webconf-edge", NULL, NULL));
    expect_error(pl, "E_MISSING", "webconf-edge", NULL);
    plan_free(pl);
    pl = plan_text("[edge]\ncertificate = internal\n");
    expect_error(pl, "E_MISSING", "internal-fqdn", NULL);
    plan_free(pl);
    pl = plan_text("[edge]\ncertificate = internal\ntopology = pool\nload-balancing = dns\n"
        "internal-fqdn = lsedge.contoso.net\n");
    expect_error(pl, "E_MISSING", "pool-fqdn", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "topology", "pool", NULL));
    expect_error(pl, "E_MISSING", "load-balancing", NULL);
    plan_free(pl);
    pl = plan_text("[token]\nuri = pkcs11:token=x\n");
    expect_error(pl, "E_MISSING", "edge", NULL);
    plan_free(pl);
    pl = plan_text("[names]\nsans = a.example.com\n");
    expect_error(pl, "E_MISSING", "subject", NULL);
    plan_free(pl);
}

/* ---- precedence of §3: the most specific code ---- */

Test(precedence, specific_first)
{
    char why[200];
    cr_assert_str_eq(plan_check_name("2001:db8::20", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("b\xc3\xbc_r.de", false, why, sizeof(why)), "E_NON_ASCII");
    cr_assert_str_eq(plan_check_name("*.a_b.com", false, why, sizeof(why)), "E_WILDCARD");
    cr_assert_str_eq(plan_check_name("1.2.3.4", true, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("a_b", false, why, sizeof(why)), "E_LABEL_CHARS");
    cr_assert_str_eq(plan_check_name("a b.com", false, why, sizeof(why)), "E_LABEL_CHARS");
    cr_assert_str_eq(plan_check_name(".a.com", false, why, sizeof(why)), "E_LABEL_EMPTY");
    cr_assert_str_eq(plan_check_name("a.com.", false, why, sizeof(why)), "E_LABEL_EMPTY");
    cr_assert_str_eq(plan_check_name("", false, why, sizeof(why)), "E_NAME_EMPTY");
}

Test(precedence, wildcards_where_allowed)
{
    char why[200];
    cr_assert_null(plan_check_name("*.contoso.com", true, why, sizeof(why)));
    cr_assert_str_eq(plan_check_name("*.com", true, why, sizeof(why)), "E_SINGLE_LABEL");
    cr_assert_str_eq(plan_check_name("*", true, why, sizeof(why)), "E_SINGLE_LABEL");
    cr_assert_str_eq(plan_check_name("a.*.com", true, why, sizeof(why)), "E_LABEL_CHARS");
    cr_assert_str_eq(plan_check_name("w*.contoso.com", true, why, sizeof(why)), "E_LABEL_CHARS");
    cr_assert_str_eq(plan_check_name("*.*.contoso.com", true, why, sizeof(why)), "E_LABEL_CHARS");
}

Test(precedence, ip_like_names)
{
    char why[200];
    cr_assert_str_eq(plan_check_name("10.1", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("999.1.1.1", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("0x7f.1", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("::1", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_str_eq(plan_check_name("fe80::1%eth0", false, why, sizeof(why)), "E_IP_LITERAL");
    cr_assert_null(plan_check_name("1.2.3.example", false, why, sizeof(why)));
    cr_assert_null(plan_check_name("123.example.com", false, why, sizeof(why)));
}

Test(normalise, rules)
{
    const char *cases[][2] = {
        { "  SIP.Contoso.COM.  ", "sip.contoso.com" },
        { "contoso.com..", "contoso.com." },
        { ".", "" },
        { "\tA\t", "a" },
        { "B\xc3\x9c", "b\xc3\x9c" },   /* only ASCII is folded */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *n = plan_normalise(cases[i][0]);
        cr_assert_str_eq(n, cases[i][1]);
        free(n);
    }
}

/* ---- every warning code of §3 ---- */

Test(warnings, onmicrosoft_skipped)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains",
        "contoso.com,contoso.onmicrosoft.com,fabrikam.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", NULL);
    cr_assert(has_warning(pl, "W_ONMICROSOFT_SKIPPED", "sip-domains"));
    plan_free(pl);
}

Test(warnings, xmpp_not_sip_domain)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", "contoso.com,litware.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", "litware.com", NULL);
    cr_assert(has_warning(pl, "W_XMPP_NOT_SIP_DOMAIN", "xmpp-domains"));
    cr_assert_eq(pl->nwarnings, 1);
    plan_free(pl);
}

Test(warnings, pool_gt_12)
{
    char members[1024] = "";
    for (int i = 1; i <= 13; i++) {
        char m[64];
        snprintf(m, sizeof(m), "%sedge%02d.contoso.net", i > 1 ? "," : "", i);
        strcat(members, m);
    }
    struct plan *pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing",
        "hardware", "members", members, NULL));
    cr_assert_null(pl->error.code);
    cr_assert_eq(pl->nmembers, 13);
    cr_assert(has_warning(pl, "W_POOL_GT_12", "members"));
    cr_assert(has_warning(pl, "W_KEY_SHARED_MEMBERS", NULL));
    plan_free(pl);
}

Test(warnings, pool_of_12_is_fine)
{
    char members[1024] = "";
    for (int i = 1; i <= 12; i++) {
        char m[64];
        snprintf(m, sizeof(m), "%sedge%02d.contoso.net", i > 1 ? "," : "", i);
        strcat(members, m);
    }
    struct plan *pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing",
        "dns", "members", members, NULL));
    cr_assert_not(has_warning(pl, "W_POOL_GT_12", NULL));
    plan_free(pl);
}

Test(warnings, internal_wildcard)
{
    struct plan *pl = plan_text("[edge]\ncertificate = internal\n"
        "internal-fqdn = lsedge.contoso.net\ninternal-san = subject\n"
        "extra-sans = *.contoso.net, lsedge2.contoso.net\n");
    expect_sans(pl, "lsedge.contoso.net", "*.contoso.net", "lsedge2.contoso.net", NULL);
    cr_assert(has_warning(pl, "W_INTERNAL_WILDCARD", "extra-sans"));
    cr_assert_str_eq(pl->sans[0].src.rule, "R-I2");
    cr_assert_str_eq(pl->sans[1].src.from, "extra-sans");
    plan_free(pl);
}

Test(warnings, sip_prefix_in_domain)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "sip-domains", "contoso.com,sip.fabrikam.com",
        "xmpp-domains", NULL, NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.sip.fabrikam.com", NULL);
    cr_assert(has_warning(pl, "W_SIP_PREFIX_IN_DOMAIN", "sip-domains"));
    plan_free(pl);
}

Test(warnings, idn_alabel)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-domains", "xn--bcher-kva.contoso.com", NULL));
    cr_assert_null(pl->error.code);
    cr_assert_str_eq(pl->sans[3].name, "xn--bcher-kva.contoso.com");
    cr_assert(has_warning(pl, "W_IDN_ALABEL", "xmpp-domains"));
    plan_free(pl);
}

Test(warnings, duplicate_extra_san)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "extra-sans",
        "WebCon.contoso.com, meet.contoso.com, meet.contoso.com.", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", "meet.contoso.com", NULL);
    cr_assert_eq(pl->nwarnings, 2);
    cr_assert(has_warning(pl, "W_DUPLICATE_FOLDED", "extra-sans"));
    cr_assert_str_eq(pl->sans[4].src.rule, "R-X1");
    plan_free(pl);
}

Test(warnings, external_private_ca)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "ca-kind", "private", "client-auth", "yes", NULL));
    cr_assert(has_warning(pl, "W_EXTERNAL_PRIVATE_CA", "ca-kind"));
    cr_assert_not(has_warning(pl, "W_CLIENT_EKU_PUBLIC_CA", NULL));
    expect_eku(pl, true);
    plan_free(pl);
}

/* ---- the three Edge certificates, topology rules, key types ---- */

Test(edge, single_fqdn_mode_collapses)
{
    /* R-E18: the three services share one FQDN. */
    struct plan *pl = plan_ini(edge_ini(NULL, "webconf-edge", "edge.contoso.com",
        "access-edge", "edge.contoso.com", "av-edge", "edge.contoso.com",
        "xmpp-domains", NULL, NULL));
    expect_sans(pl, "edge.contoso.com", "sip.contoso.com", "sip.fabrikam.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=edge.contoso.com");
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(edge, av_fqdn_never_on_certificate)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "extra-sans", "av.contoso.com", NULL));
    expect_error(pl, "E_CONFLICT", "extra-sans", "av.contoso.com");
    plan_free(pl);
}

Test(edge, member_never_on_external)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing", "dns",
        "members", "edge01.contoso.com", "extra-sans", "edge01.contoso.com", NULL));
    expect_error(pl, "E_CONFLICT", "extra-sans", "edge01.contoso.com");
    plan_free(pl);
}

Test(edge, xmpp_host)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "xmpp-host", "xmpp.contoso.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "xmpp.contoso.com", "contoso.com", NULL);
    plan_free(pl);
    /* not added again when already present */
    pl = plan_ini(edge_ini(NULL, "xmpp-host", "sip.contoso.com", NULL));
    expect_sans(pl, "webcon.contoso.com", "sip.contoso.com", "sip.fabrikam.com",
        "contoso.com", NULL);
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
}

Test(edge, av_certificate)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "certificate", "av", "split-av", "yes", NULL));
    expect_sans(pl, "sip.contoso.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com");
    cr_assert_str_eq(pl->certificate, "av");
    expect_eku(pl, false);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "certificate", "av", NULL));
    expect_error(pl, "E_CONFLICT", "certificate", NULL);
    plan_free(pl);
}

Test(edge, internal_pool)
{
    struct plan *pl = plan_text("[edge]\ncertificate = internal\ntopology = pool\n"
        "load-balancing = hardware\npool-fqdn = edgepool.contoso.net\n"
        "members = edge01.contoso.net, edge02.contoso.net, EDGE01.contoso.net\n");
    expect_sans(pl, NULL);
    cr_assert_str_eq(pl->subject, "CN=edgepool.contoso.net");
    cr_assert_str_eq(pl->subject_src.from, "pool-fqdn");
    cr_assert(has_warning(pl, "W_KEY_SHARED_MEMBERS", NULL));
    cr_assert(has_warning(pl, "W_DUPLICATE_FOLDED", "members"));
    cr_assert_eq(pl->nmembers, 2);
    plan_free(pl);
}

Test(edge, internal_extra_needs_san)
{
    struct plan *pl = plan_text("[edge]\ncertificate = internal\n"
        "internal-fqdn = lsedge.contoso.net\nextra-sans = x.contoso.net\n");
    expect_error(pl, "E_CONFLICT", "extra-sans", NULL);
    plan_free(pl);
}

Test(edge, topology_conflicts)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "members", "edge01.contoso.net", NULL));
    expect_error(pl, "E_CONFLICT", "members", NULL);
    plan_free(pl);
    pl = plan_ini(edge_ini(NULL, "load-balancing", "dns", NULL));
    expect_error(pl, "E_CONFLICT", "load-balancing", NULL);
    plan_free(pl);
}

Test(edge, key_types)
{
    const char *ok[] = { "rsa:2048", "rsa:4096", "ec:p256", "ec:p384", "ec:p521" };
    const char *bad[] = { "rsa:3072", "ed25519" };
    for (size_t i = 0; i < 5; i++) {
        char extra[64];
        snprintf(extra, sizeof(extra), "[key]\ntype = %s\n", ok[i]);
        struct plan *pl = plan_ini(edge_ini(extra, NULL));
        cr_assert_null(pl->error.code, "%s: %s", ok[i], pl->error.message);
        cr_assert_str_eq(pl->key, ok[i]);
        plan_free(pl);
    }
    for (size_t i = 0; i < 2; i++) {
        char extra[64];
        snprintf(extra, sizeof(extra), "[key]\ntype = %s\n", bad[i]);
        struct plan *pl = plan_ini(edge_ini(extra, NULL));
        expect_error(pl, "E_KEY_TYPE", "type", bad[i]);
        cr_assert_str_eq(pl->error.section, "key");
        plan_free(pl);
    }
}

Test(edge, subject_extras)
{
    struct plan *pl = plan_ini(edge_ini("[subject]\no = Contoso, Ltd\nc = us\nou = Unified Comms\n",
        NULL));
    cr_assert_str_eq(pl->subject, "CN=sip.contoso.com,OU=Unified Comms,O=Contoso\\, Ltd,C=US");
    cr_assert_str_eq(pl->cn, "sip.contoso.com");
    plan_free(pl);
}

/* ---- [names]: generic certificates ---- */

Test(names, subject_first_when_missing)
{
    struct plan *pl = plan_text("[names]\nsubject = www.example.com\n"
        "sans = Example.com, *.example.com, example.com.\n[key]\ntype = ed25519\n");
    expect_sans(pl, "www.example.com", "example.com", "*.example.com", NULL);
    cr_assert_str_eq(pl->certificate, "names");
    cr_assert_str_eq(pl->key, "ed25519");
    cr_assert(has_warning(pl, "W_DUPLICATE_FOLDED", "sans"));
    cr_assert_str_eq(pl->sans[0].src.rule, "R-N1");
    cr_assert_str_eq(pl->sans[1].src.rule, "R-N2");
    expect_eku(pl, false);
    plan_free(pl);
}

Test(names, order_given_when_listed)
{
    struct plan *pl = plan_text("[names]\nsubject = www.example.com\n"
        "sans = example.com, www.example.com\n");
    expect_sans(pl, "example.com", "www.example.com", NULL);
    cr_assert_eq(pl->nwarnings, 0);
    plan_free(pl);
    pl = plan_text("[names]\nsubject = *.example.com\n");
    expect_sans(pl, "*.example.com", NULL);
    cr_assert_str_eq(pl->subject, "CN=*.example.com");
    plan_free(pl);
}

Test(names, validation)
{
    struct plan *pl = plan_text("[names]\nsubject = www.example.com\nsans = a.*.example.com\n");
    expect_error(pl, "E_LABEL_CHARS", "sans", "a.*.example.com");
    cr_assert_str_eq(pl->error.section, "names");
    plan_free(pl);
    pl = plan_text("[names]\nsubject = 192.0.2.1\n");
    expect_error(pl, "E_IP_LITERAL", "subject", "192.0.2.1");
    plan_free(pl);
}

/* ---- JSON: the shape of cli.md ---- */

Test(json, seed_shape)
{
    struct plan *pl = plan_ini(edge_ini(NULL, NULL));
    json_t *j = plan_to_json(pl);
    char *s;

    cr_assert_not_null(j);
    s = json_dumps(j, 0);
    cr_assert(strncmp(s, "{\"certificate\": \"external\", \"subject\": \"CN=sip.contoso.com\", "
        "\"sans\": [\"webcon.contoso.com\", \"sip.contoso.com\", \"sip.fabrikam.com\", "
        "\"contoso.com\"], \"eku\": [\"serverAuth\"], \"key\": \"rsa:2048\", \"names\": "
        "[{\"name\": \"webcon.contoso.com\", \"from\": \"webconf-edge\", \"rule\": \"R-E5\"}, ",
        strlen("{\"certificate\": \"external\", \"subject\": \"CN=sip.contoso.com\", "
        "\"sans\": [\"webcon.contoso.com\", \"sip.contoso.com\", \"sip.fabrikam.com\", "
        "\"contoso.com\"], \"eku\": [\"serverAuth\"], \"key\": \"rsa:2048\", \"names\": "
        "[{\"name\": \"webcon.contoso.com\", \"from\": \"webconf-edge\", \"rule\": \"R-E5\"}, ")) == 0,
        "%s", s);
    cr_assert_eq(json_array_size(json_object_get(j, "warnings")), 0);
    free(s);
    json_decref(j);
    plan_free(pl);
}

Test(json, error_shape)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "webconf-edge", "web_con.contoso.com", NULL));
    json_t *j = plan_to_json(pl), *e = json_object_get(j, "error");

    cr_assert_not_null(e);
    cr_assert_eq(json_object_size(j), 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), "E_LABEL_CHARS");
    cr_assert_str_eq(json_string_value(json_object_get(e, "key")), "webconf-edge");
    cr_assert_str_eq(json_string_value(json_object_get(e, "name")), "web_con.contoso.com");
    cr_assert_not_null(json_string_value(json_object_get(e, "message")));
    json_decref(j);
    plan_free(pl);
}

Test(json, pool_facts)
{
    struct plan *pl = plan_ini(edge_ini(NULL, "topology", "pool", "load-balancing", "dns",
        "members", "edge01.contoso.net,edge02.contoso.net", NULL));
    json_t *j = plan_to_json(pl), *pool = json_object_get(j, "pool");

    cr_assert_not_null(pool);
    cr_assert_str_eq(json_string_value(json_object_get(pool, "load_balancing")), "dns");
    cr_assert_eq(json_array_size(json_object_get(pool, "members")), 2);
    cr_assert_not_null(json_string_value(json_object_get(pool, "shared_key")));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
        json_object_get(j, "warnings"), 0), "code")), "W_KEY_SHARED_MEMBERS");
    json_decref(j);
    plan_free(pl);
}
