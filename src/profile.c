/*
 * profile.c - load the INI profile of cli.md with inih.
 *
 * inih does the INI syntax (sections, "key = value", " ;" comments); this file
 * feeds it one line at a time through ini_parse_stream() so that it can
 *  - count lines itself (the distribution's inih is built without
 *    INI_HANDLER_LINENO, so the handler is not told the line);
 *  - refuse, before inih sees them, lines that are too long, contain NUL,
 *    control or non-UTF-8 bytes, or open an unknown or repeated section
 *    (inih calls the handler only for key = value lines, so an empty unknown
 *    section would otherwise pass silently);
 *  - strip leading blanks, so an indented line is an ordinary line and never
 *    a multi-line continuation (inih's INI_ALLOW_MULTILINE would otherwise
 *    glue "  x" onto the previous key as a second value).
 *
 * Behaviour of the installed inih, checked empirically (Debian libinih 55):
 * inline comments need a blank before ';' ("a;b" stays a value, "a ;b" is
 * "a"); '#' starts a comment only at the start of a line; "key: value" is
 * accepted like "key = value"; quotes are not special; lines longer than the
 * build's line buffer (200 by default) are silently cut.  Debian's build
 * exports its settings as variables, and we raise ini_max_line to fit
 * PROFILE_MAX_LINE; where inih has no such variable (upstream builds), a
 * line that does not fit inih's buffer is an error instead of being cut.
 */
#include "profile.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytype.h"
#include "util.h"

/*
 * Debian's inih exports its compile-time options as variables; upstream's
 * does not.  A weak reference lets the same source build against both.
 */
#pragma weak ini_max_line
extern int ini_max_line;

enum check {
    CK_NONE,
    CK_ORIGINS,
    CK_KEYTYPE,
    CK_BOOL,
    CK_HASH,
    CK_CA_TYPE,
    CK_CHALLENGE,
    CK_DURATION,
    CK_SECONDS,         /* 0 .. 1 day */
    CK_TIMEOUT,         /* 1 s .. 1 day */
    CK_RENEW_BEFORE,
    CK_PRODUCT,
    CK_CERTIFICATE,
    CK_TOPOLOGY,
    CK_LOAD_BALANCING,
    CK_INTERNAL_SAN,
    CK_CA_KIND,
    CK_COUNTRY,
    CK_ROLE,
};

#define F(m) offsetof(struct profile, m)

/* Every section and key of the format: the only ones accepted. */
static const struct field {
    const char *section, *key;
    size_t off;
    enum check check;
} fields[] = {
    { "token", "uri", F(token.uri), CK_NONE },
    { "token", "module", F(token.module), CK_NONE },
    { "token", "pin-file", F(token.pin_file), CK_NONE },
    { "key", "label", F(key.label), CK_NONE },
    { "key", "type", F(key.type), CK_KEYTYPE },
    { "edge", "product", F(edge.product), CK_PRODUCT },
    { "edge", "certificate", F(edge.certificate), CK_CERTIFICATE },
    { "edge", "topology", F(edge.topology), CK_TOPOLOGY },
    { "edge", "load-balancing", F(edge.load_balancing), CK_LOAD_BALANCING },
    { "edge", "nat", F(edge.nat), CK_BOOL },
    { "edge", "members", F(edge.members), CK_NONE },
    { "edge", "access-edge", F(edge.access_edge), CK_NONE },
    { "edge", "webconf-edge", F(edge.webconf_edge), CK_NONE },
    { "edge", "av-edge", F(edge.av_edge), CK_NONE },
    { "edge", "sip-domains", F(edge.sip_domains), CK_NONE },
    { "edge", "xmpp-domains", F(edge.xmpp_domains), CK_NONE },
    { "edge", "xmpp-host", F(edge.xmpp_host), CK_NONE },
    { "edge", "internal-fqdn", F(edge.internal_fqdn), CK_NONE },
    { "edge", "pool-fqdn", F(edge.pool_fqdn), CK_NONE },
    { "edge", "internal-san", F(edge.internal_san), CK_INTERNAL_SAN },
    { "edge", "extra-sans", F(edge.extra_sans), CK_NONE },
    { "edge", "client-auth", F(edge.client_auth), CK_BOOL },
    { "edge", "ca-kind", F(edge.ca_kind), CK_CA_KIND },
    { "edge", "split-av", F(edge.split_av), CK_BOOL },
    { "names", "subject", F(names.subject), CK_NONE },
    { "names", "sans", F(names.sans), CK_NONE },
    { "subject", "c", F(subject.c), CK_COUNTRY },
    { "subject", "st", F(subject.st), CK_NONE },
    { "subject", "l", F(subject.l), CK_NONE },
    { "subject", "o", F(subject.o), CK_NONE },
    { "subject", "ou", F(subject.ou), CK_NONE },
    { "csr", "hash", F(csr.hash), CK_HASH },
    { "csr", "ms-template", F(csr.ms_template), CK_NONE },
    { "csr", "out", F(csr.out), CK_NONE },
    { "ca", "type", F(ca.type), CK_CA_TYPE },
    { "ca", "directory", F(ca.directory), CK_NONE },
    { "ca", "ca-bundle", F(ca.ca_bundle), CK_NONE },
    { "ca", "contact", F(ca.contact), CK_NONE },
    { "ca", "account-key", F(ca.account_key), CK_NONE },
    { "ca", "eab-kid", F(ca.eab_kid), CK_NONE },
    { "ca", "eab-hmac-file", F(ca.eab_hmac_file), CK_NONE },
    { "ca", "challenge", F(ca.challenge), CK_CHALLENGE },
    { "ca", "http-listen", F(ca.http_listen), CK_NONE },
    { "ca", "webroot", F(ca.webroot), CK_NONE },
    { "ca", "dns-hook", F(ca.dns_hook), CK_NONE },
    { "ca", "timeout", F(ca.timeout), CK_TIMEOUT },
    { "ca", "dns-wait", F(ca.dns_wait), CK_SECONDS },
    { "ca", "allow-origins", F(ca.allow_origins), CK_ORIGINS },
    { "output", "cert", F(output.cert), CK_NONE },
    { "output", "chain", F(output.chain), CK_NONE },
    { "output", "fullchain", F(output.fullchain), CK_NONE },
    { "output", "state-dir", F(output.state_dir), CK_NONE },
    { "renewal", "renew-before", F(renewal.renew_before), CK_RENEW_BEFORE },
    { "renewal", "rotate", F(renewal.rotate), CK_BOOL },
    { "renewal", "retire-after", F(renewal.retire_after), CK_DURATION },
    { "renewal", "jitter", F(renewal.jitter), CK_DURATION },
    { "hooks", "deploy", F(hooks.deploy), CK_NONE },
    { "pool", "name", F(pool.name), CK_NONE },
    { "pool", "role", F(pool.role), CK_ROLE },
    { "pool", "member", F(pool.member), CK_NONE },
    { "pool", "takeover-after", F(pool.takeover_after), CK_RENEW_BEFORE },
    { "pool", "lease", F(pool.lease), CK_DURATION },
    { "hooks", "csr-ready", F(hooks.csr_ready), CK_NONE },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const sections[] = {
    "token", "key", "edge", "names", "subject", "csr", "ca", "output",
    "renewal", "hooks", "pool",
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* Spellings of the enumerations, for checking and for the messages. */
static const char *const enum_bool[] = { "yes", "no", NULL };
static const char *const enum_hash[] = { "sha256", "sha384", "sha512", NULL };
static const char *const enum_ca_type[] = { "acme", "manual", NULL };
static const char *const enum_challenge[] = { "http-01", "dns-01", NULL };
static const char *const enum_product[] = { "lync2013", "sfb2015", "sfb2019", NULL };
static const char *const enum_certificate[] = { "external", "internal", "av", NULL };
static const char *const enum_topology[] = { "single", "pool", NULL };
static const char *const enum_lb[] = { "dns", "hardware", NULL };
static const char *const enum_internal_san[] = { "none", "subject", NULL };
static const char *const enum_ca_kind[] = { "public", "private", NULL };
static const char *const enum_role[] = { "leader", "follower", NULL };

/* Loader state, shared by the line reader and the inih handler. */
struct ctx {
    const char *buf;
    size_t len, pos;
    unsigned line;                  /* line last handed to inih */
    bool seen[NSECTIONS];
    unsigned edge_line, names_line;
    struct profile *p;
    /* First error: its line, code and message (without the file prefix). */
    unsigned err_line;
    const char *err_code;
    char err_msg[512];
};

static void ctx_error(struct ctx *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ctx_error(struct ctx *c, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (c->err_code != NULL)
        return;             /* keep the first */
    c->err_line = c->line;
    c->err_code = code;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
    va_end(ap);
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;

    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static int
section_index(const char *name, size_t len)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strlen(sections[i]) == len && memcmp(sections[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Track a "[section]" line; reports unknown, repeated and conflicting ones. */
static void
section_line(struct ctx *c, const char *s, size_t n)
{
    const char *end = memchr(s, ']', n);
    size_t i;
    int idx;

    if (end == NULL) {
        ctx_error(c, "E_PROFILE_SYNTAX", "section header without ']'");
        return;
    }
    for (i = (size_t)(end - s) + 1; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (i < n && s[i] != ';' && s[i] != '#') {
        ctx_error(c, "E_PROFILE_SYNTAX", "text after the section header");
        return;
    }
    idx = section_index(s + 1, (size_t)(end - s - 1));
    if (idx < 0) {
        ctx_error(c, "E_PROFILE_UNKNOWN", "unknown section [%.*s]",
            (int)(end - s - 1 > 64 ? 64 : end - s - 1), s + 1);
        return;
    }
    if (c->seen[idx]) {
        ctx_error(c, "E_PROFILE_DUPLICATE", "section [%s] given twice", sections[idx]);
        return;
    }
    c->seen[idx] = true;
    if (strcmp(sections[idx], "edge") == 0)
        c->edge_line = c->line;
    else if (strcmp(sections[idx], "names") == 0)
        c->names_line = c->line;
    if (c->edge_line && c->names_line)
        ctx_error(c, "E_PROFILE_CONFLICT",
            "[edge] and [names] cannot both be given (one certificate per profile)");
}

/*
 * inih's line reader: hands out the next line of the buffer after checking
 * it, or NULL at the end or after the first error (which stops inih).
 */
static char *
reader(char *str, int num, void *stream)
{
    struct ctx *c = stream;
    const char *s, *nl;
    size_t n, content;

    if (c->err_code != NULL || c->pos >= c->len)
        return NULL;
    s = c->buf + c->pos;
    nl = memchr(s, '\n', c->len - c->pos);
    n = nl != NULL ? (size_t)(nl - s) : c->len - c->pos;
    c->pos += n + (nl != NULL);
    c->line++;

    content = n;
    if (content > 0 && s[content - 1] == '\r')
        content--;
    /* A UTF-8 byte order mark may open the file (inih allows it too). */
    if (c->line == 1 && content >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        s += 3;
        content -= 3;
    }
    if (content > PROFILE_MAX_LINE) {
        ctx_error(c, "E_PROFILE_LINE_TOO_LONG", "line longer than %d bytes",
            PROFILE_MAX_LINE);
        return NULL;
    }
    for (size_t i = 0; i < content;) {
        unsigned char b = (unsigned char)s[i];
        size_t k;
        if (b == 0) {
            ctx_error(c, "E_PROFILE_ENCODING", "NUL byte at column %zu", i + 1);
            return NULL;
        }
        if ((b < 0x20 && b != '\t') || b == 0x7f) {
            ctx_error(c, "E_PROFILE_ENCODING", "control character 0x%02x at column %zu",
                b, i + 1);
            return NULL;
        }
        if ((k = utf8_seq((const unsigned char *)s + i, content - i)) == 0) {
            ctx_error(c, "E_PROFILE_ENCODING", "invalid UTF-8 at column %zu", i + 1);
            return NULL;
        }
        i += k;
    }
    /* Blanks before a line never make it a continuation (see the top). */
    while (content > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        content--;
    }
    if (content > 0 && *s == '[')
        section_line(c, s, content);
    if (c->err_code != NULL)
        return NULL;
    if (num < 2 || content + 2 > (size_t)num) {
        ctx_error(c, "E_PROFILE_LINE_TOO_LONG",
            "line longer than this inih build allows (%d bytes)", num - 2);
        return NULL;
    }
    memcpy(str, s, content);
    str[content] = '\n';
    str[content + 1] = '\0';
    return str;
}

static int
one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(v, *set) == 0)
            return 0;
    return -1;
}

static void
join(char *buf, size_t size, const char *const *set)
{
    buf[0] = '\0';
    for (size_t i = 0; set[i] != NULL; i++) {
        if (i > 0)
            strncat(buf, ", ", size - strlen(buf) - 1);
        strncat(buf, set[i], size - strlen(buf) - 1);
    }
}

int
profile_bool(const char *v, bool *out)
{
    if (v == NULL)
        return -1;
    if (strcmp(v, "yes") == 0)
        *out = true;
    else if (strcmp(v, "no") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* At most 9 decimal digits, so every product below fits in 64 bits. */
static int
parse_count(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int
profile_duration(const char *v, uint64_t *secs)
{
    size_t n;
    uint64_t count, unit;

    if (v == NULL || (n = strlen(v)) == 0)
        return -1;
    if (strcmp(v, "0") == 0) {
        *secs = 0;
        return 0;
    }
    switch (v[n - 1]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return -1;
    }
    if (parse_count(v, n - 1, &count) == -1)
        return -1;
    *secs = count * unit;
    return 0;
}

int
profile_seconds(const char *v, uint64_t *secs)
{
    uint64_t n;

    if (v == NULL)
        return -1;
    if (parse_count(v, strlen(v), &n) == -1 && profile_duration(v, &n) == -1)
        return -1;
    if (n > 86400)
        return -1;
    *secs = n;
    return 0;
}

int
profile_fraction(const char *v, unsigned *num, unsigned *den)
{
    const char *slash;
    uint64_t a, b;

    if (v == NULL || (slash = strchr(v, '/')) == NULL)
        return -1;
    if (parse_count(v, (size_t)(slash - v), &a) == -1 ||
        parse_count(slash + 1, strlen(slash + 1), &b) == -1)
        return -1;
    if (a == 0 || a >= b)
        return -1;
    *num = (unsigned)a;
    *den = (unsigned)b;
    return 0;
}

/*
 * [ca] allow-origins: a comma-separated list of https origins
 * (https://host[:port], a trailing '/' at most).  0 or -1 (reported).
 */
static int
check_origins(struct ctx *c, const struct field *f, const char *v)
{
    char item[512], origin[512];

    for (const char *p = v; (p = list_next(p, item, sizeof(item))) != NULL;) {
        const char *path = strstr(item, "://");
        path = path ? path + 3 + strcspn(path + 3, "/?#") : item;
        if (strncmp(item, "https://", 8) != 0 || (*path && strcmp(path, "/") != 0) ||
            url_origin(item, origin, sizeof(origin)) == -1) {
            ctx_error(c, "E_PROFILE_VALUE", "[%s] %s: '%.64s' is not an https origin "
                "(https://host[:port])", f->section, f->key, item);
            return -1;
        }
    }
    return 0;
}

/* Check a value of a key whose spelling is already defined; 0 or -1 (reported). */
static int
check_value(struct ctx *c, const struct field *f, const char *v)
{
    const char *const *set = NULL;
    char list[160];
    uint64_t secs;
    unsigned a, b;

    switch (f->check) {
    case CK_NONE:
        return 0;
    case CK_KEYTYPE:
        if (keytype_parse(v) != NULL)
            return 0;
        ctx_error(c, "E_PROFILE_VALUE", "[%s] %s: unknown key type '%.64s' (one of: %s)",
            f->section, f->key, v, keytype_all());
        return -1;
    case CK_DURATION:
        if (profile_duration(v, &secs) == 0)
            return 0;
        ctx_error(c, "E_PROFILE_VALUE",
            "[%s] %s: '%.64s' is not a duration (0, or a number with s, m, h or d)",
            f->section, f->key, v);
        return -1;
    case CK_SECONDS:
    case CK_TIMEOUT:
        if (profile_seconds(v, &secs) == 0 && (secs > 0 || f->check == CK_SECONDS))
            return 0;
        ctx_error(c, "E_PROFILE_VALUE",
            "[%s] %s: '%.64s' is not a time from %s to 1 day (seconds, or a number with "
            "s, m, h or d)", f->section, f->key, v, f->check == CK_SECONDS ? "0" : "1 s");
        return -1;
    case CK_RENEW_BEFORE:
        if (profile_fraction(v, &a, &b) == 0 || profile_duration(v, &secs) == 0)
            return 0;
        ctx_error(c, "E_PROFILE_VALUE",
            "[%s] %s: '%.64s' is neither a fraction A/B below 1 nor a duration "
            "(0, or a number with s, m, h or d)", f->section, f->key, v);
        return -1;
    case CK_ORIGINS:
        return check_origins(c, f, v);
    case CK_COUNTRY:
        if (strlen(v) == 2 && ((v[0] | 0x20) >= 'a' && (v[0] | 0x20) <= 'z') &&
            ((v[1] | 0x20) >= 'a' && (v[1] | 0x20) <= 'z'))
            return 0;
        ctx_error(c, "E_PROFILE_VALUE",
            "[%s] %s: '%.64s' is not a two-letter country code", f->section, f->key, v);
        return -1;
    case CK_BOOL: set = enum_bool; break;
    case CK_HASH: set = enum_hash; break;
    case CK_CA_TYPE: set = enum_ca_type; break;
    case CK_CHALLENGE: set = enum_challenge; break;
    case CK_PRODUCT: set = enum_product; break;
    case CK_CERTIFICATE: set = enum_certificate; break;
    case CK_TOPOLOGY: set = enum_topology; break;
    case CK_LOAD_BALANCING: set = enum_lb; break;
    case CK_INTERNAL_SAN: set = enum_internal_san; break;
    case CK_CA_KIND: set = enum_ca_kind; break;
    case CK_ROLE: set = enum_role; break;
    }
    if (set == NULL || one_of(v, set) == 0)
        return 0;
    join(list, sizeof(list), set);
    ctx_error(c, "E_PROFILE_VALUE", "[%s] %s: '%.64s' is not one of: %s",
        f->section, f->key, v, list);
    return -1;
}

/* inih handler: one key = value line of a known section. */
static int
handler(void *user, const char *section, const char *name, const char *value)
{
    struct ctx *c = user;
    const struct field *f = NULL;
    size_t i;
    char **slot;

    if (c->err_code != NULL)
        return 1;
    if (*section == '\0') {
        ctx_error(c, "E_PROFILE_SYNTAX", "'%.64s' before any [section]", name);
        return 0;
    }
    if (*name == '\0') {
        ctx_error(c, "E_PROFILE_SYNTAX", "[%s]: key name missing before '='", section);
        return 0;
    }
    for (i = 0; i < NFIELDS; i++) {
        if (strcmp(fields[i].section, section) == 0 && strcmp(fields[i].key, name) == 0) {
            f = &fields[i];
            break;
        }
    }
    if (f == NULL) {
        ctx_error(c, "E_PROFILE_UNKNOWN", "unknown key '%.64s' in [%s]", name, section);
        return 0;
    }
    if (c->p->lines[i] != 0) {
        ctx_error(c, "E_PROFILE_DUPLICATE", "[%s] %s given twice (first on line %u)",
            section, name, c->p->lines[i]);
        return 0;
    }
    if (value == NULL || *value == '\0') {
        ctx_error(c, "E_PROFILE_EMPTY", "[%s] %s has an empty value", section, name);
        return 0;
    }
    if (check_value(c, f, value) == -1)
        return 0;
    slot = (char **)(void *)((char *)c->p + f->off);
    if ((*slot = strdup(value)) == NULL) {
        ctx_error(c, "E_NOMEM", "out of memory");
        return 0;
    }
    c->p->lines[i] = c->line;
    return 1;
}

int
profile_load_mem(const char *name, const char *buf, size_t len, struct profile **out)
{
    struct ctx c;
    struct profile *p = NULL;
    int rc;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    if ((p = calloc(1, sizeof(*p))) == NULL ||
        (p->lines = calloc(NFIELDS, sizeof(*p->lines))) == NULL ||
        (p->name = strdup(name)) == NULL) {
        err_runtime("E_NOMEM", "%s: out of memory", name);
        profile_free(p);
        return -1;
    }
    /* Let Debian's inih take our longest line (see the top of the file). */
    if (&ini_max_line != NULL && ini_max_line < PROFILE_MAX_LINE + 3)
        ini_max_line = PROFILE_MAX_LINE + 3;

    c.buf = buf;
    c.len = len;
    c.p = p;
    rc = ini_parse_stream(reader, &c, handler, &c);
    if (rc < 0 && c.err_code == NULL) {
        err_runtime("E_NOMEM", "%s: inih could not allocate its line buffer", name);
        profile_free(p);
        return -1;
    }
    /*
     * inih reports the first line it could not parse (no '=', no ']');
     * our own first error may come before or after it.
     */
    if (rc > 0 && (c.err_code == NULL || (unsigned)rc < c.err_line)) {
        c.err_code = NULL;
        c.line = (unsigned)rc;
        ctx_error(&c, "E_PROFILE_SYNTAX", "expected '[section]' or 'key = value'");
    }
    if (c.err_code != NULL) {
        err_input(c.err_code, "%s:%u: %s", name, c.err_line, c.err_msg);
        profile_free(p);
        return -1;
    }
    p->has_edge = c.edge_line != 0;
    p->has_names = c.names_line != 0;
    *out = p;
    p = NULL;   /* transferred */
    return 0;
}

int
profile_load(const char *path, struct profile **out)
{
    uint8_t *buf;
    size_t len;
    int rc;

    *out = NULL;
    if (read_file_capped(path, PROFILE_MAX_SIZE, &buf, &len) == -1) {
        if (errno == EFBIG)
            err_input("E_PROFILE_READ", "%s: larger than %d bytes", path, PROFILE_MAX_SIZE);
        else
            err_input("E_PROFILE_READ", "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    rc = profile_load_mem(path, (const char *)buf, len, out);
    free(buf);
    return rc;
}

void
profile_free(struct profile *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < NFIELDS; i++)
        free(*(char **)(void *)((char *)p + fields[i].off));
    free(p->lines);
    free(p->name);
    free(p);
}

unsigned
profile_line(const struct profile *p, const char *section, const char *key)
{
    if (p == NULL || p->lines == NULL || section == NULL || key == NULL)
        return 0;
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].section, section) == 0 && strcmp(fields[i].key, key) == 0)
            return p->lines[i];
    return 0;
}
