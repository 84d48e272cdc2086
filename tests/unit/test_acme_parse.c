/*
 * test_acme_parse.c - ACME response parsing, problem documents, HTTP header
 * helpers and the EAB key file, against responses as Pebble 2.4 sends them
 * and against malformed ones.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme.h"
#include "http.h"
#include "util.h"

#define LEN(s) strlen(s)

/* ---- recorded responses (Pebble 2.4.0, 127.0.0.1) ----------------------- */

static const char pebble_dir[] =
    "{\n"
    "   \"keyChange\": \"https://127.0.0.1:22998/rollover-account-key\",\n"
    "   \"meta\": {\n"
    "      \"externalAccountRequired\": false,\n"
    "      \"termsOfService\": \"data:text/plain,Do%20what%20thou%20wilt\"\n"
    "   },\n"
    "   \"newAccount\": \"https://127.0.0.1:22998/sign-me-up\",\n"
    "   \"newNonce\": \"https://127.0.0.1:22998/nonce-plz\",\n"
    "   \"newOrder\": \"https://127.0.0.1:22998/order-plz\",\n"
    "   \"revokeCert\": \"https://127.0.0.1:22998/revoke-cert\"\n"
    "}";

static const char pebble_order[] =
    "{\n"
    "   \"status\": \"pending\",\n"
    "   \"expires\": \"2026-11-30T02:05:25Z\",\n"
    "   \"identifiers\": [\n"
    "      {\"type\": \"dns\", \"value\": \"sip.contoso.com\"},\n"
    "      {\"type\": \"dns\", \"value\": \"webcon.contoso.com\"}\n"
    "   ],\n"
    "   \"finalize\": \"https://127.0.0.1:22998/finalize-order/Xq2dqmc4bC3kOPKN6bvcdn9dBFq5f0ATrkCRhGiI5Ws\",\n"
    "   \"authorizations\": [\n"
    "      \"https://127.0.0.1:22998/authZ/GdH9yWMqqW3c7vYqiGb5FwuyU2l2fnLAcYsP1w0lu7w\",\n"
    "      \"https://127.0.0.1:22998/authZ/Hmv7Fe8MfvzXVdAvdpG1lK_YSaJjB6LNxTnrcHlPT9w\"\n"
    "   ]\n"
    "}";

static const char pebble_order_valid[] =
    "{\"status\": \"valid\", \"expires\": \"2026-11-30T02:05:25Z\","
    " \"identifiers\": [{\"type\": \"dns\", \"value\": \"a.example\"}],"
    " \"finalize\": \"https://127.0.0.1:22998/finalize-order/x\","
    " \"authorizations\": [\"https://127.0.0.1:22998/authZ/y\"],"
    " \"certificate\": \"https://127.0.0.1:22998/certZ/4e1f\"}";

static const char pebble_authz[] =
    "{\n"
    "   \"status\": \"pending\",\n"
    "   \"identifier\": {\"type\": \"dns\", \"value\": \"sip.contoso.com\"},\n"
    "   \"challenges\": [\n"
    "      {\"type\": \"tls-alpn-01\", \"url\": \"https://127.0.0.1:22998/chalZ/a1\","
    " \"token\": \"kk/../../x\", \"status\": \"pending\"},\n"
    "      {\"type\": \"http-01\", \"url\": \"https://127.0.0.1:22998/chalZ/b2\","
    " \"token\": \"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\", \"status\": \"pending\"},\n"
    "      {\"type\": \"dns-01\", \"url\": \"https://127.0.0.1:22998/chalZ/c3\","
    " \"token\": \"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\", \"status\": \"pending\"}\n"
    "   ],\n"
    "   \"expires\": \"2026-11-29T03:05:25Z\"\n"
    "}";

static const char pebble_authz_invalid[] =
    "{\"status\": \"invalid\", \"identifier\": {\"type\": \"dns\", \"value\": \"example.com\"},"
    " \"wildcard\": true,"
    " \"challenges\": [{\"type\": \"dns-01\", \"url\": \"https://127.0.0.1:22998/chalZ/c3\","
    " \"token\": \"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\", \"status\": \"invalid\","
    " \"error\": {\"type\": \"urn:ietf:params:acme:error:unauthorized\","
    " \"detail\": \"Correct value not found for DNS challenge\", \"status\": 403}}]}";

/* ---- directory ------------------------------------------------------------ */

Test(directory, pebble)
{
    struct acme_directory d;
    cr_assert_eq(acme_parse_directory(pebble_dir, LEN(pebble_dir), false, &d), 0);
    cr_assert_str_eq(d.new_nonce, "https://127.0.0.1:22998/nonce-plz");
    cr_assert_str_eq(d.new_account, "https://127.0.0.1:22998/sign-me-up");
    cr_assert_str_eq(d.new_order, "https://127.0.0.1:22998/order-plz");
    cr_assert_str_eq(d.key_change, "https://127.0.0.1:22998/rollover-account-key");
    cr_assert_str_eq(d.terms_of_service, "data:text/plain,Do%20what%20thou%20wilt");
    cr_assert_not(d.eab_required);
    acme_directory_clear(&d);
    acme_directory_clear(&d);   /* twice is harmless */
}

Test(directory, eab_required_and_minimal)
{
    static const char t[] = "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\","
        "\"newOrder\":\"https://ca/o\",\"meta\":{\"externalAccountRequired\":true}}";
    struct acme_directory d;
    cr_assert_eq(acme_parse_directory(t, LEN(t), false, &d), 0);
    cr_assert(d.eab_required);
    cr_assert_null(d.revoke_cert);
    cr_assert_null(d.terms_of_service);
    acme_directory_clear(&d);
}

Test(directory, malformed)
{
    static const char *const bad[] = {
        "",                                             /* empty */
        "not json",
        "[\"https://ca/n\"]",                           /* not an object */
        "{\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",   /* no newNonce */
        "{\"newNonce\":42,\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"http://ca/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"https://ca/n x\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"https://ca/\\\"n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"file:///etc/passwd\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"https://ca/n\",\"newNonce\":\"https://evil/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}",
        "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\",\"meta\":[]}",
        "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\",\"meta\":{\"externalAccountRequired\":\"yes\"}}",
        "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acme_directory d;
        err_clear();
        cr_assert_eq(acme_parse_directory(bad[i], LEN(bad[i]), false, &d), -1, "case %zu", i);
        cr_assert_null(d.new_nonce, "case %zu leaves nothing behind", i);
        cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
    }
}

Test(directory, embedded_nul_and_oversized_url)
{
    static const char nul[] = "{\"newNonce\":\"https://ca/n\\u0000x\",\"newAccount\":\"https://ca/a\","
        "\"newOrder\":\"https://ca/o\"}";
    struct acme_directory d;
    cr_assert_eq(acme_parse_directory(nul, LEN(nul), false, &d), -1);
    char *big = malloc(5000), *p = big;
    cr_assert_not_null(big);
    p += sprintf(p, "{\"newNonce\":\"https://ca/");
    memset(p, 'a', 3000);
    p += 3000;
    sprintf(p, "\",\"newAccount\":\"https://ca/a\",\"newOrder\":\"https://ca/o\"}");
    cr_assert_eq(acme_parse_directory(big, strlen(big), false, &d), -1);
    free(big);
}

Test(directory, http_only_when_allowed)
{
    static const char t[] = "{\"newNonce\":\"http://127.0.0.1:1/n\",\"newAccount\":\"http://127.0.0.1:1/a\","
        "\"newOrder\":\"http://127.0.0.1:1/o\"}";
    struct acme_directory d;
    cr_assert_eq(acme_parse_directory(t, LEN(t), false, &d), -1);
    cr_assert_eq(acme_parse_directory(t, LEN(t), true, &d), 0);
    acme_directory_clear(&d);
}

/* ---- order ---------------------------------------------------------------- */

Test(order, pebble_pending)
{
    struct acme_order o;
    cr_assert_eq(acme_parse_order(pebble_order, LEN(pebble_order), false, &o), 0);
    cr_assert_eq(o.status, ACME_S_PENDING);
    cr_assert_eq(o.n_names, 2);
    cr_assert_str_eq(o.names[1], "webcon.contoso.com");
    cr_assert_eq(o.n_authzs, 2);
    cr_assert_str_eq(o.authzs[0],
        "https://127.0.0.1:22998/authZ/GdH9yWMqqW3c7vYqiGb5FwuyU2l2fnLAcYsP1w0lu7w");
    cr_assert_null(o.certificate);
    cr_assert_null(o.error);
    const char *const same[] = { "WEBCON.contoso.com", "sip.contoso.com" };
    const char *const other[] = { "sip.contoso.com", "contoso.com" };
    cr_assert(acme_order_names_match(&o, same, 2));
    cr_assert_not(acme_order_names_match(&o, other, 2));
    cr_assert_not(acme_order_names_match(&o, same, 1));
    acme_order_clear(&o);
}

Test(order, pebble_valid)
{
    struct acme_order o;
    cr_assert_eq(acme_parse_order(pebble_order_valid, LEN(pebble_order_valid), false, &o), 0);
    cr_assert_eq(o.status, ACME_S_VALID);
    cr_assert_str_eq(o.certificate, "https://127.0.0.1:22998/certZ/4e1f");
    acme_order_clear(&o);
}

Test(order, invalid_with_problem)
{
    static const char t[] = "{\"status\":\"invalid\",\"identifiers\":[{\"type\":\"dns\","
        "\"value\":\"a.example\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[],"
        "\"error\":{\"type\":\"urn:ietf:params:acme:error:badCSR\",\"detail\":\"bad\\u001b[31m\"}}";
    struct acme_order o;
    cr_assert_eq(acme_parse_order(t, LEN(t), false, &o), 0);
    cr_assert_eq(o.status, ACME_S_INVALID);
    cr_assert_str_eq(o.error, "acme:error:badCSR: bad?[31m");
    acme_order_clear(&o);
}

Test(order, malformed)
{
    static const char *const bad[] = {
        "{}",
        "{\"status\":\"pending\"}",
        "{\"status\":\"bogus\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":7,\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":\"pending\",\"identifiers\":[],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"authorizations\":[]}",
        "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":\"https://ca/z\"}",
        "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[17]}",
        "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[\"https://ca/<z>\"]}",
        "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":\"pending\",\"identifiers\":[{\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":\"valid\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[]}",
        "{\"status\":\"valid\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],\"finalize\":\"https://ca/f\",\"authorizations\":[],\"certificate\":\"ftp://ca/c\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acme_order o;
        cr_assert_eq(acme_parse_order(bad[i], LEN(bad[i]), false, &o), -1, "case %zu", i);
        cr_assert_null(o.names);
    }
}

Test(order, too_many_authorizations)
{
    size_t cap = 200 * 40 + 200;
    char *t = malloc(cap), *p = t;
    cr_assert_not_null(t);
    p += sprintf(p, "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a\"}],"
        "\"finalize\":\"https://ca/f\",\"authorizations\":[");
    for (int i = 0; i < 101; i++)
        p += sprintf(p, "%s\"https://ca/z/%d\"", i ? "," : "", i);
    sprintf(p, "]}");
    struct acme_order o;
    cr_assert_eq(acme_parse_order(t, strlen(t), false, &o), -1);
    free(t);
}

/* ---- authorization --------------------------------------------------------- */

Test(authz, pebble_pending)
{
    struct acme_authz a;
    cr_assert_eq(acme_parse_authz(pebble_authz, LEN(pebble_authz), false, &a), 0);
    cr_assert_eq(a.status, ACME_S_PENDING);
    cr_assert_str_eq(a.name, "sip.contoso.com");
    cr_assert_not(a.wildcard);
    cr_assert_eq(a.n_chall, 3);
    cr_assert_str_eq(a.chall[0].type, "tls-alpn-01");
    cr_assert_null(a.chall[0].token, "tokens of challenges we never use are not kept");
    cr_assert_str_eq(a.chall[1].type, "http-01");
    cr_assert_str_eq(a.chall[1].token, "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
    cr_assert_str_eq(a.chall[1].url, "https://127.0.0.1:22998/chalZ/b2");
    cr_assert_eq(a.chall[2].status, ACME_S_PENDING);
    acme_authz_clear(&a);
}

Test(authz, invalid_wildcard_with_error)
{
    struct acme_authz a;
    cr_assert_eq(acme_parse_authz(pebble_authz_invalid, LEN(pebble_authz_invalid), false, &a), 0);
    cr_assert_eq(a.status, ACME_S_INVALID);
    cr_assert(a.wildcard);
    cr_assert_str_eq(a.chall[0].error,
        "acme:error:unauthorized: Correct value not found for DNS challenge");
    acme_authz_clear(&a);
}

/* An authorization with one http-01 challenge whose token is `tok` (JSON text). */
static char *
authz_with_token(const char *tok)
{
    char *s;
    cr_assert_neq(asprintf(&s, "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
        "\"value\":\"a.example\"},\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://ca/c\","
        "\"status\":\"pending\",\"token\":%s}]}", tok), -1);
    return s;
}

Test(authz, rejects_tokens_outside_base64url)
{
    static const char *const bad[] = {
        "\"../../../etc/passwd\"", "\"abc def\"", "\"abc;reboot\"", "\"$(id)\"",
        "\"tok+en/==\"", "\"\"", "null", "42", "\"a\\u0000b\"", "\"t\\u00e9st\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = authz_with_token(bad[i]);
        struct acme_authz a;
        cr_assert_eq(acme_parse_authz(t, strlen(t), false, &a), -1, "token %s", bad[i]);
        free(t);
    }
    char big[400];
    big[0] = '"';
    memset(big + 1, 'A', 300);
    strcpy(big + 301, "\"");
    char *t = authz_with_token(big);
    struct acme_authz a;
    cr_assert_eq(acme_parse_authz(t, strlen(t), false, &a), -1, "oversized token");
    free(t);
    t = authz_with_token("\"good_token-123\"");
    cr_assert_eq(acme_parse_authz(t, strlen(t), false, &a), 0);
    acme_authz_clear(&a);
    free(t);
}

Test(authz, malformed)
{
    static const char *const bad[] = {
        "{\"status\":\"pending\",\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\",\"value\":\"127.0.0.1\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a b.example\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a;rm -rf\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"}}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"challenges\":{}}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"challenges\":[7]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"wildcard\":1,\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"challenges\":[{\"type\":\"http-01\",\"status\":\"pending\",\"token\":\"abc\"}]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://ca/c\",\"status\":\"weird\",\"token\":\"abc\"}]}",
        "{\"status\":\"ready\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"challenges\":[]} x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acme_authz a;
        cr_assert_eq(acme_parse_authz(bad[i], LEN(bad[i]), false, &a), -1, "case %zu", i);
        cr_assert_null(a.chall);
    }
}

/* ---- problems ------------------------------------------------------------- */

Test(problem, with_subproblems)
{
    static const char t[] =
        "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Some of the identifiers "
        "requested were rejected\",\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:"
        "rejectedIdentifier\",\"detail\":\"Invalid underscore in DNS name \\\"_example.org\\\"\","
        "\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},{\"type\":\"urn:ietf:params:"
        "acme:error:rejectedIdentifier\",\"detail\":\"This CA will not issue for \\\"example.net\\\"\","
        "\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}}]}";
    char *type;
    char *s = acme_problem_format(t, LEN(t), &type);
    cr_assert_str_eq(s, "acme:error:malformed: Some of the identifiers requested were rejected "
        "(subproblems: dns _example.org: acme:error:rejectedIdentifier: Invalid underscore in DNS "
        "name \"_example.org\"; dns example.net: acme:error:rejectedIdentifier: This CA will not "
        "issue for \"example.net\")");
    cr_assert_str_eq(type, "urn:ietf:params:acme:error:malformed");
    free(s);
    free(type);
}

Test(problem, sanitised_one_line_and_capped)
{
    static const char t[] = "{\"type\":\"urn:ietf:params:acme:error:badNonce\","
        "\"detail\":\"line1\\nline2\\r\\u001b]0;owned\\u0007\"}";
    char *s = acme_problem_format(t, LEN(t), NULL);
    cr_assert_str_eq(s, "acme:error:badNonce: line1?line2??]0;owned?");
    free(s);
    char *big = malloc(10000);
    cr_assert_not_null(big);
    sprintf(big, "{\"type\":\"about:blank\",\"detail\":\"");
    memset(big + strlen(big), 'x', 5000);
    strcpy(big + strlen("{\"type\":\"about:blank\",\"detail\":\"") + 5000, "\"}");
    s = acme_problem_format(big, strlen(big), NULL);
    cr_assert_not_null(s);
    cr_assert_lt(strlen(s), 1024);
    free(s);
    free(big);
}

Test(problem, not_a_problem)
{
    cr_assert_null(acme_problem_format("<html>502</html>", 16, NULL));
    cr_assert_null(acme_problem_format("{\"status\":400}", 14, NULL));
    cr_assert_null(acme_problem_format("[1]", 3, NULL));
    cr_assert_null(acme_problem_format(NULL, 0, NULL));
}

/* ---- URLs ------------------------------------------------------------------ */

Test(url, strict)
{
    cr_assert(acme_url_ok("https://127.0.0.1:14000/my-account/1", false));
    cr_assert(acme_url_ok("https://acme.example/acme/authz-v3/12?x=1&y=%20", false));
    cr_assert_not(acme_url_ok("http://127.0.0.1:14000/dir", false));
    cr_assert(acme_url_ok("http://127.0.0.1:14000/dir", true));
    cr_assert_not(acme_url_ok("https://", false));
    cr_assert_not(acme_url_ok("https:///path", false));
    cr_assert_not(acme_url_ok("https://ca/a b", false));
    cr_assert_not(acme_url_ok("https://ca/a\"b", false));
    cr_assert_not(acme_url_ok("https://ca/a\nb", false));
    cr_assert_not(acme_url_ok("https://ca/a`id`", false));
    cr_assert_not(acme_url_ok("HTTPS://ca/", false));
    cr_assert_not(acme_url_ok(NULL, false));
}

/* ---- HTTP header helpers ------------------------------------------------- */

Test(http, retry_after)
{
    cr_assert_eq(http_parse_retry_after("3", 0), 3);
    cr_assert_eq(http_parse_retry_after(" 120 ", 0), 120);
    cr_assert_eq(http_parse_retry_after("-1", 0), -1);
    cr_assert_eq(http_parse_retry_after("1.5", 0), -1);
    cr_assert_eq(http_parse_retry_after("soon", 0), -1);
    cr_assert_eq(http_parse_retry_after("", 0), -1);
    cr_assert_eq(http_parse_retry_after("99999999999999999999", 0), -1);
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    cr_assert_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7);
    cr_assert_eq(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111999), 0);
}

struct links { char got[8][2][256]; int n; };

static void
link_collect(const char *target, const char *rel, void *arg)
{
    struct links *l = arg;
    if (l->n < 8) {
        snprintf(l->got[l->n][0], 256, "%s", target);
        snprintf(l->got[l->n][1], 256, "%s", rel);
        l->n++;
    }
}

Test(http, link_header)
{
    struct links l = { .n = 0 };
    cr_assert_eq(http_parse_link("<https://ca/dir>;rel=\"index\", <https://ca/cert/1/alt>; "
        "rel=\"up\" ; title=\"x, y\",<https://ca/i>;rel=\"up alternate\"", link_collect, &l), 0);
    cr_assert_eq(l.n, 4);
    cr_assert_str_eq(l.got[0][0], "https://ca/dir");
    cr_assert_str_eq(l.got[0][1], "index");
    cr_assert_str_eq(l.got[1][0], "https://ca/cert/1/alt");
    cr_assert_str_eq(l.got[1][1], "up");
    cr_assert_str_eq(l.got[2][1], "up");
    cr_assert_str_eq(l.got[3][1], "alternate");
    l.n = 0;
    cr_assert_eq(http_parse_link("<https://ca/x>;REL=UP", link_collect, &l), 0);
    cr_assert_str_eq(l.got[0][1], "up");
    cr_assert_eq(http_parse_link("https://ca/x; rel=up", link_collect, &l), -1);
    cr_assert_eq(http_parse_link("<https://ca/x; rel=up", link_collect, &l), -1);
    cr_assert_eq(http_parse_link("<https://ca/x>; rel=\"up", link_collect, &l), -1);
}

/* ---- EAB key file ---------------------------------------------------------- */

static char *
tmpfile_with(const char *content)
{
    char *path = strdup("/tmp/p11e-eab-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

Test(eab, key_file)
{
    /* Pebble's example key, with a trailing newline. */
    char *p = tmpfile_with("zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W\n");
    uint8_t *k;
    size_t n;
    cr_assert_eq(acme_read_eab_key(p, &k, &n), 0);
    cr_assert_eq(n, 48);
    cr_assert_eq(k[0], 0xcd);
    free(k);
    unlink(p);
    free(p);
    p = tmpfile_with("  q80=\n");   /* standard base64 with padding */
    cr_assert_eq(acme_read_eab_key(p, &k, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(k[0], 0xab);
    cr_assert_eq(k[1], 0xcd);
    free(k);
    unlink(p);
    free(p);
    p = tmpfile_with("not a key!\n");
    err_clear();
    cr_assert_eq(acme_read_eab_key(p, &k, &n), -1);
    cr_assert_null(k);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
    unlink(p);
    free(p);
    cr_assert_eq(acme_read_eab_key("/nonexistent/eab", &k, &n), -1);
}

/* ---- the built-in http-01 responder ---------------------------------------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Send `req` to 127.0.0.1:port and return the whole response (caller frees). */
static char *
exchange(unsigned port, const char *req)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char *buf = calloc(1, 8192);
    size_t n = 0;
    ssize_t r;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (req[0] != '\0')
        cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    while (n < 8191 && (r = read(fd, buf + n, 8191 - n)) > 0)
        n += (size_t)r;
    close(fd);
    return buf;
}

static const char tok1[] = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
static const char ka1[] = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.thumb";

Test(responder, serves_only_its_tokens)
{
    const struct acme_http01 items[] = {
        { tok1, ka1 }, { "second_token-2", "second_token-2.thumb" },
    };
    struct acme_responder *rs;
    cr_assert_eq(acme_responder_start("127.0.0.1:0", items, 2, &rs), 0);
    unsigned port = acme_responder_port(rs);
    cr_assert_gt(port, 0);
    char *r, req[512];

    snprintf(req, sizeof(req), "GET /.well-known/acme-challenge/%s HTTP/1.1\r\n"
        "Host: sip.contoso.com\r\nUser-Agent: Pebble\r\n\r\n", tok1);
    r = exchange(port, req);
    cr_assert(strncmp(r, "HTTP/1.1 200 ", 13) == 0, "got: %s", r);
    cr_assert_str_eq(strstr(r, "\r\n\r\n") + 4, ka1);
    free(r);
    r = exchange(port, "GET /.well-known/acme-challenge/second_token-2 HTTP/1.0\r\n\r\n");
    cr_assert_str_eq(strstr(r, "\r\n\r\n") + 4, "second_token-2.thumb");
    free(r);

    static const char *const refused[] = {
        "GET /.well-known/acme-challenge/unknownToken HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjx HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0x HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0/ HTTP/1.1\r\n\r\n",
        "POST /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0 HTTP/1.1\r\n\r\n",
        "HEAD /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0 HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/../../etc/passwd HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",    /* a TLS ClientHello */
        "",                                               /* nothing at all */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        r = exchange(port, refused[i]);
        cr_assert(strncmp(r, "HTTP/1.1 404 ", 13) == 0, "case %zu got: %.40s", i, r);
        cr_assert_null(strstr(r, ".thumb"), "case %zu leaks a key authorization", i);
        free(r);
    }
    /* Still serving after all that. */
    r = exchange(port, req);
    cr_assert(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
    free(r);
    acme_responder_stop(rs);
    acme_responder_stop(NULL);
}

Test(responder, refuses_bad_setup)
{
    const struct acme_http01 bad[] = { { "../x", "k" } };
    const struct acme_http01 good[] = { { tok1, ka1 } };
    struct acme_responder *rs, *rs2;
    cr_assert_eq(acme_responder_start("127.0.0.1:0", bad, 1, &rs), -1, "unsafe token");
    cr_assert_null(rs);
    err_clear();
    cr_assert_eq(acme_responder_start("nonsense", good, 1, &rs), -1);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
    cr_assert_eq(acme_responder_start("127.0.0.1:http", good, 1, &rs), -1);
    cr_assert_eq(acme_responder_start("127.0.0.1:0", good, 1, &rs), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", acme_responder_port(rs));
    err_clear();
    cr_assert_eq(acme_responder_start(addr, good, 1, &rs2), -1, "port taken");
    cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
    acme_responder_stop(rs);
    /* "[v6]:port" parses; binding may fail where the host has no IPv6. */
    err_clear();
    if (acme_responder_start("[::1]:0", good, 1, &rs) == 0)
        acme_responder_stop(rs);
    else
        cr_assert_eq(err_exit_code(), EXIT_RUNTIME, "[::1]:0 is a valid address");
}

/* ---- the newOrder payload (RFC 8555 §7.4, RFC 9773 §5) ------------------ */

Test(order_payload, identifiers_then_replaces)
{
    const char *names[] = { "webcon.contoso.com", "sip.contoso.com" };
    char *p = acme_order_payload(names, 2, NULL);

    cr_assert_not_null(p);
    cr_expect_str_eq(p, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"webcon.contoso.com\"},"
        "{\"type\":\"dns\",\"value\":\"sip.contoso.com\"}]}");
    cr_expect_null(strstr(p, "replaces"), "no ARI: no replaces");
    free(p);
    p = acme_order_payload(names, 1, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    cr_assert_not_null(p);
    cr_expect_str_eq(p, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"webcon.contoso.com\"}],"
        "\"replaces\":\"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE\"}");
    free(p);
}
