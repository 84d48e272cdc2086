/*
 * test_profile.c - the profile loader: the whole cli.md format, and each
 * class of malformed input rejected (exit 2) with a message naming the line.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile.h"
#include "util.h"

/*
 * Load `len` bytes; returns the loader's result and, in msg, what it printed
 * on stderr (one line expected).
 */
static int
load(const char *ini, size_t len, struct profile **p, char *msg, size_t msglen)
{
    FILE *tmp = tmpfile();
    int saved = dup(2), rc;
    size_t n;

    cr_assert_not_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), 2);
    err_clear();
    rc = profile_load_mem("test.ini", ini, len, p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(msg, 1, msglen - 1, tmp);
    msg[n] = '\0';
    fclose(tmp);
    return rc;
}

/* A malformed profile: -1, exit code 2, the code and "test.ini:<line>:". */
static void
expect_bad(const char *ini, size_t len, const char *code, unsigned line, const char *what)
{
    struct profile *p = (struct profile *)1;
    char msg[2048], want[64];

    cr_assert_eq(load(ini, len, &p, msg, sizeof(msg)), -1, "accepted:\n%s", ini);
    cr_assert_null(p);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
    snprintf(want, sizeof(want), "test.ini:%u: ", line);
    cr_assert(strstr(msg, want) != NULL, "message lacks '%s': %s", want, msg);
    cr_assert(strstr(msg, what) != NULL, "message lacks '%s': %s", what, msg);
    cr_assert_eq(strchr(msg, '\n'), msg + strlen(msg) - 1, "not one line: %s", msg);
    /* the code is what --json prints */
    FILE *tmp = tmpfile();
    int saved = dup(1);
    char out[2048];
    size_t n;
    fflush(stdout);
    dup2(fileno(tmp), 1);
    err_print_json();
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    cr_assert(strstr(out, code) != NULL, "code %s not in %s", code, out);
}

#define BAD(ini, code, line, what) expect_bad(ini, strlen(ini), code, line, what)

static const char full[] =
    "; every section and key of cli.md\n"
    "[token]\n"
    "uri = pkcs11:token=edge-hsm          ; which token\n"
    "module = /usr/lib/softhsm/libsofthsm2.so   ; optional\n"
    "pin-file = /etc/p11enroll/edge.pin   ; optional, mode 0600\n"
    "\n"
    "[key]\n"
    "label = edge-external\n"
    "type = ec:p384\n"
    "\n"
    "[edge]                               ; or [names]\n"
    "product = sfb2015\n"
    "certificate = internal\n"
    "topology = pool\n"
    "load-balancing = dns\n"
    "nat = no\n"
    "members = edge01.contoso.net,edge02.contoso.net\n"
    "access-edge = sip.contoso.com\n"
    "webconf-edge = webcon.contoso.com\n"
    "av-edge = av.contoso.com\n"
    "sip-domains = contoso.com,fabrikam.com\n"
    "xmpp-domains = contoso.com\n"
    "xmpp-host = xmpp.contoso.com\n"
    "internal-fqdn = lsedge.contoso.net\n"
    "pool-fqdn = edgepool.contoso.net\n"
    "internal-san = subject\n"
    "extra-sans = a.contoso.net\n"
    "client-auth = no\n"
    "ca-kind = private\n"
    "split-av = no\n"
    "\n"
    "[subject]\n"
    "o = Contoso Ltd\n"
    "c = US\n"
    "ou = UC\n"
    "l = Redmond\n"
    "st = WA\n"
    "[csr]\n"
    "hash = sha384\n"
    "ms-template = WebServer\n"
    "[ca]\n"
    "type = acme\n"
    "directory = https://127.0.0.1:14000/dir\n"
    "ca-bundle = /path/to/acme-server-ca.pem\n"
    "contact = mailto:pki@contoso.com\n"
    "account-key = pkcs11:token=edge-hsm;object=acme-account   ; created on first use\n"
    "eab-kid = kid-1\n"
    "eab-hmac-file = /etc/p11enroll/eab.key\n"
    "challenge = dns-01\n"
    "http-listen = 127.0.0.1:5002\n"
    "webroot = /var/www/acme\n"
    "dns-hook = /usr/local/bin/dns-hook\n"
    "[output]\n"
    "cert = /etc/edge/cert.pem\n"
    "chain = /etc/edge/chain.pem\n"
    "fullchain = /etc/edge/fullchain.pem\n"
    "state-dir = /var/lib/p11enroll/edge-external\n"
    "[renewal]\n"
    "renew-before = 30d\n"
    "rotate = yes\n"
    "retire-after = 0\n"
    "jitter = 6h\n"
    "[hooks]\n"
    "deploy = systemctl reload edge-proxy ; run once\n";

Test(profile, whole_format)
{
    struct profile *p;
    char msg[1024];

    cr_assert_eq(load(full, strlen(full), &p, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_str_eq(p->token.uri, "pkcs11:token=edge-hsm");
    cr_assert_str_eq(p->token.module, "/usr/lib/softhsm/libsofthsm2.so");
    cr_assert_str_eq(p->token.pin_file, "/etc/p11enroll/edge.pin");
    cr_assert_str_eq(p->key.label, "edge-external");
    cr_assert_str_eq(p->key.type, "ec:p384");
    cr_assert_str_eq(p->edge.product, "sfb2015");
    cr_assert_str_eq(p->edge.members, "edge01.contoso.net,edge02.contoso.net");
    cr_assert_str_eq(p->edge.split_av, "no");
    cr_assert_str_eq(p->subject.o, "Contoso Ltd");
    cr_assert_str_eq(p->subject.st, "WA");
    cr_assert_str_eq(p->csr.hash, "sha384");
    cr_assert_str_eq(p->ca.account_key, "pkcs11:token=edge-hsm;object=acme-account");
    cr_assert_str_eq(p->ca.dns_hook, "/usr/local/bin/dns-hook");
    cr_assert_str_eq(p->output.state_dir, "/var/lib/p11enroll/edge-external");
    cr_assert_str_eq(p->renewal.renew_before, "30d");
    cr_assert_str_eq(p->renewal.retire_after, "0");
    cr_assert_str_eq(p->hooks.deploy, "systemctl reload edge-proxy");
    cr_assert(p->has_edge);
    cr_assert_not(p->has_names);
    cr_assert_null(p->names.subject);
    cr_assert_eq(profile_line(p, "token", "uri"), 3);
    cr_assert_eq(profile_line(p, "edge", "members"), 17);
    cr_assert_eq(profile_line(p, "edge", "nope"), 0);
    cr_assert_eq(profile_line(p, "names", "subject"), 0);
    profile_free(p);
    profile_free(NULL);
}

Test(profile, inih_behaviour)
{
    /* ';' after a blank is a comment; without one it is part of the value;
     * indented lines are ordinary lines, never continuations; CRLF, a BOM
     * and "key: value" are accepted; quotes are not special. */
    const char ini[] = "\xef\xbb\xbf[token]\r\n"
        "uri = pkcs11:token=a;object=b\r\n"
        "  module = /m.so ; comment\r\n"
        "\tpin-file: /p\r\n"
        "# comment\n"
        "[key]\n"
        "label = \"x ; y\"\n";
    struct profile *p;
    char msg[1024];

    cr_assert_eq(load(ini, strlen(ini), &p, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_str_eq(p->token.uri, "pkcs11:token=a;object=b");
    cr_assert_str_eq(p->token.module, "/m.so");
    cr_assert_str_eq(p->token.pin_file, "/p");
    cr_assert_str_eq(p->key.label, "\"x");
    profile_free(p);
}

Test(profile, long_values_are_not_cut)
{
    /* inih's default buffer is 200 bytes; a long deploy line must survive. */
    char ini[PROFILE_MAX_LINE + 64];
    size_t vlen = PROFILE_MAX_LINE - strlen("deploy = ");
    struct profile *p;
    char msg[1024];

    strcpy(ini, "[hooks]\ndeploy = ");
    memset(ini + strlen(ini), 'x', vlen);
    strcpy(ini + strlen("[hooks]\ndeploy = ") + vlen, "\n");
    cr_assert_eq(load(ini, strlen(ini), &p, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(strlen(p->hooks.deploy), vlen);
    profile_free(p);
}

Test(malformed, unknown_section)
{
    BAD("[token]\nuri = x\n\n[tokens]\n", "E_PROFILE_UNKNOWN", 4, "unknown section [tokens]");
    BAD("[Edge]\n", "E_PROFILE_UNKNOWN", 1, "[Edge]");
}

Test(malformed, unknown_key)
{
    BAD("[edge]\naccess-edge = a.b\nsip-domain = a.b\n", "E_PROFILE_UNKNOWN", 3,
        "unknown key 'sip-domain' in [edge]");
}

Test(malformed, duplicate_key)
{
    BAD("[edge]\naccess-edge = a.b\n\naccess-edge = c.d\n", "E_PROFILE_DUPLICATE", 4,
        "access-edge given twice (first on line 2)");
}

Test(malformed, duplicate_section)
{
    BAD("[key]\nlabel = a\n[token]\nuri = x\n[key]\ntype = rsa:2048\n",
        "E_PROFILE_DUPLICATE", 5, "section [key] given twice");
}

Test(malformed, empty_value)
{
    BAD("[key]\nlabel =   ; nothing\n", "E_PROFILE_EMPTY", 2, "[key] label has an empty value");
    BAD("[key]\nlabel =\n", "E_PROFILE_EMPTY", 2, "empty value");
}

Test(malformed, line_too_long)
{
    char ini[PROFILE_MAX_LINE + 64];
    size_t n = strlen("[hooks]\n\ndeploy = ");

    strcpy(ini, "[hooks]\n\ndeploy = ");
    memset(ini + n, 'x', PROFILE_MAX_LINE);
    strcpy(ini + n + PROFILE_MAX_LINE, "\n");
    expect_bad(ini, strlen(ini), "E_PROFILE_LINE_TOO_LONG", 3, "longer than 4096 bytes");
    /* a long comment line too */
    ini[0] = ';';
    memset(ini + 1, ' ', PROFILE_MAX_LINE + 1);
    strcpy(ini + PROFILE_MAX_LINE + 2, "\n");
    expect_bad(ini, strlen(ini), "E_PROFILE_LINE_TOO_LONG", 1, "longer than");
}

Test(malformed, non_utf8)
{
    BAD("[subject]\no = Soci\xe9t\xe9\n", "E_PROFILE_ENCODING", 2, "invalid UTF-8 at column 9");
    BAD("[subject]\no = \xc0\xaf\n", "E_PROFILE_ENCODING", 2, "invalid UTF-8");     /* overlong */
    BAD("[subject]\no = \xed\xa0\x80\n", "E_PROFILE_ENCODING", 2, "invalid UTF-8"); /* surrogate */
    BAD("[subject]\no = \xe2\x82\n", "E_PROFILE_ENCODING", 2, "invalid UTF-8");     /* cut */
}

Test(malformed, nul_and_control_bytes)
{
    expect_bad("[key]\nlabel = a\0b\n", 18, "E_PROFILE_ENCODING", 2, "NUL byte");
    BAD("[key]\nlabel = a\x1b[31mb\n", "E_PROFILE_ENCODING", 2, "control character 0x1b");
}

Test(malformed, valid_utf8_is_fine)
{
    const char ini[] = "[subject]\no = Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale \xe2\x82\xac\xf0\x9f\x94\x92\n";
    struct profile *p;
    char msg[256];

    cr_assert_eq(load(ini, strlen(ini), &p, msg, sizeof(msg)), 0, "%s", msg);
    profile_free(p);
}

Test(malformed, syntax)
{
    BAD("[edge]\naccess-edge = a.b\nsip-domains\n", "E_PROFILE_SYNTAX", 3,
        "expected '[section]' or 'key = value'");
    BAD("[edge\n", "E_PROFILE_SYNTAX", 1, "without ']'");
    BAD("[edge] x\n", "E_PROFILE_SYNTAX", 1, "text after the section header");
    BAD("uri = x\n[token]\n", "E_PROFILE_SYNTAX", 1, "before any [section]");
    BAD("[token]\n= x\n", "E_PROFILE_SYNTAX", 2, "key name missing");
    /* the first error wins, whichever part of the loader finds it */
    BAD("[token]\nnoequals\n[bogus]\n", "E_PROFILE_SYNTAX", 2, "expected");
    BAD("[bogus]\nnoequals\n", "E_PROFILE_UNKNOWN", 1, "[bogus]");
}

Test(malformed, edge_and_names)
{
    BAD("[edge]\naccess-edge = a.b\n[names]\nsubject = a.b\n", "E_PROFILE_CONFLICT", 3,
        "[edge] and [names] cannot both be given");
}

Test(values, enumerations)
{
    BAD("[key]\ntype = rsa:1024\n", "E_PROFILE_VALUE", 2, "[key] type: unknown key type 'rsa:1024'");
    BAD("[edge]\nnat = true\n", "E_PROFILE_VALUE", 2, "[edge] nat: 'true' is not one of: yes, no");
    BAD("[edge]\nclient-auth = Yes\n", "E_PROFILE_VALUE", 2, "client-auth");
    BAD("[edge]\nsplit-av = 1\n", "E_PROFILE_VALUE", 2, "split-av");
    BAD("[renewal]\nrotate = on\n", "E_PROFILE_VALUE", 2, "rotate");
    /* Issue 11 finding 7: [ca] allow-origins takes https origins only. */
    BAD("[ca]\nallow-origins = https://a.example:8443, http://b.example\n", "E_PROFILE_VALUE", 2,
        "'http://b.example' is not an https origin");
    BAD("[ca]\nallow-origins = https://a.example/acme\n", "E_PROFILE_VALUE", 2, "allow-origins");
    BAD("[csr]\nhash = sha1\n", "E_PROFILE_VALUE", 2, "sha256, sha384, sha512");
    BAD("[ca]\ntype = est\n", "E_PROFILE_VALUE", 2, "acme, manual");
    BAD("[ca]\nchallenge = tls-alpn-01\n", "E_PROFILE_VALUE", 2, "http-01, dns-01");
    BAD("[edge]\nproduct = lync2010\n", "E_PROFILE_VALUE", 2, "lync2013, sfb2015, sfb2019");
    BAD("[edge]\ncertificate = both\n", "E_PROFILE_VALUE", 2, "external, internal, av");
    BAD("[edge]\ntopology = cluster\n", "E_PROFILE_VALUE", 2, "single, pool");
    BAD("[edge]\nload-balancing = hlb\n", "E_PROFILE_VALUE", 2, "dns, hardware");
    BAD("[edge]\ninternal-san = all\n", "E_PROFILE_VALUE", 2, "none, subject");
    BAD("[edge]\nca-kind = enterprise\n", "E_PROFILE_VALUE", 2, "public, private");
    BAD("[subject]\nc = USA\n", "E_PROFILE_VALUE", 2, "two-letter country code");
}

Test(values, durations)
{
    BAD("[renewal]\njitter = 6\n", "E_PROFILE_VALUE", 2, "[renewal] jitter: '6' is not a duration");
    BAD("[renewal]\nretire-after = 7w\n", "E_PROFILE_VALUE", 2, "retire-after");
    BAD("[renewal]\nretire-after = -1d\n", "E_PROFILE_VALUE", 2, "retire-after");
    BAD("[renewal]\nretire-after = 1234567890d\n", "E_PROFILE_VALUE", 2, "retire-after");
    BAD("[renewal]\nrenew-before = 3/2\n", "E_PROFILE_VALUE", 2, "renew-before");
    BAD("[renewal]\nrenew-before = 0/3\n", "E_PROFILE_VALUE", 2, "renew-before");
    BAD("[renewal]\nrenew-before = 1/\n", "E_PROFILE_VALUE", 2, "renew-before");
    BAD("[renewal]\nrenew-before = 33%\n", "E_PROFILE_VALUE", 2, "renew-before");

    uint64_t s;
    unsigned a, b;
    cr_assert_eq(profile_duration("0", &s), 0);
    cr_assert_eq(s, 0);
    cr_assert_eq(profile_duration("90s", &s), 0);
    cr_assert_eq(s, 90);
    cr_assert_eq(profile_duration("15m", &s), 0);
    cr_assert_eq(s, 900);
    cr_assert_eq(profile_duration("6h", &s), 0);
    cr_assert_eq(s, 21600);
    cr_assert_eq(profile_duration("30d", &s), 0);
    cr_assert_eq(s, 2592000);
    cr_assert_eq(profile_duration("d", &s), -1);
    cr_assert_eq(profile_duration("", &s), -1);
    cr_assert_eq(profile_duration("1.5h", &s), -1);
    cr_assert_eq(profile_fraction("1/3", &a, &b), 0);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 3);
    cr_assert_eq(profile_fraction("1/1", &a, &b), -1);
    bool v;
    cr_assert_eq(profile_bool("yes", &v), 0);
    cr_assert(v);
    cr_assert_eq(profile_bool("no", &v), 0);
    cr_assert_not(v);
    cr_assert_eq(profile_bool("YES", &v), -1);
}

Test(values, ca_times)
{
    BAD("[ca]\ntimeout = 0\n", "E_PROFILE_VALUE", 2, "[ca] timeout: '0' is not a time from 1 s");
    BAD("[ca]\ntimeout = 2 min\n", "E_PROFILE_VALUE", 2, "[ca] timeout");
    BAD("[ca]\ntimeout = 2d\n", "E_PROFILE_VALUE", 2, "to 1 day");
    BAD("[ca]\ndns-wait = -5\n", "E_PROFILE_VALUE", 2, "[ca] dns-wait: '-5' is not a time from 0");

    static const struct { const char *v; int rc; uint64_t secs; } cases[] = {
        { "15", 0, 15 }, { "2m", 0, 120 }, { "0", 0, 0 }, { "86400", 0, 86400 },
        { "86401", -1, 0 }, { "", -1, 0 }, { NULL, -1, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t s = 0;
        cr_assert_eq(profile_seconds(cases[i].v, &s), cases[i].rc, "%s", cases[i].v);
        if (cases[i].rc == 0)
            cr_assert_eq(s, cases[i].secs, "%s", cases[i].v);
    }
}

Test(profile, unreadable_file)
{
    struct profile *p = (struct profile *)1;

    err_clear();
    cr_assert_eq(profile_load("/nonexistent/p11enroll.ini", &p), -1);
    cr_assert_null(p);
    cr_assert_eq(err_exit_code(), EXIT_INPUT);
}

Test(profile, from_file)
{
    char path[] = "/tmp/p11e-profile-XXXXXX";
    int fd = mkstemp(path);
    struct profile *p;

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, full, strlen(full)), (ssize_t)strlen(full));
    close(fd);
    cr_assert_eq(profile_load(path, &p), 0);
    cr_assert_str_eq(p->name, path);
    cr_assert_str_eq(p->edge.pool_fqdn, "edgepool.contoso.net");
    profile_free(p);
    unlink(path);
}
