/*
 * plan.c - the SAN planner: which subject, SANs and EKUs a profile gives,
 * and why (edge-san-rules.md §2-§4).  Pure: no I/O and no printing, so the
 * rules are unit-tested and fuzzed directly.
 *
 * The order of work is the spec's: read the keys and check their shape
 * (required, conflicting, unsupported), normalise and validate every name
 * given or derived, and only then build the SAN list in the canonical order
 * of §3.  The first failure becomes the plan's one error.
 */
#include "plan.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytype.h"

#define CN_MAX 64           /* RFC 5280 ub-common-name */
#define NAME_MAX_LEN 253    /* DNS name without the root dot */
#define LABEL_MAX 63
#define POOL_MAX 12         /* R-E20 */

#define SHARED_KEY_NOTE \
    "every pool member must use the same key object (R-E12/R-I5): with an HSM " \
    "that means one network-HSM partition shared by all members; p11enroll " \
    "never makes a key exportable"

/* A name as written in the profile and normalised. */
struct item {
    char *raw;
    char *norm;
};

struct list {
    struct item *v;
    size_t n;
};

struct builder {
    const struct profile *p;
    struct plan *pl;
    bool oom;
};

static const char *const set_certificate[] = { "external", "internal", "av", NULL };
static const char *const set_product[] = { "lync2013", "sfb2015", "sfb2019", NULL };
static const char *const set_topology[] = { "single", "pool", NULL };
static const char *const set_lb[] = { "dns", "hardware", NULL };
static const char *const set_internal_san[] = { "none", "subject", NULL };
static const char *const set_ca_kind[] = { "public", "private", NULL };

static int fail(struct builder *b, const char *code, const char *section,
    const char *key, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void warn(struct builder *b, const char *code, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Record the plan's one error (the first wins).  Always returns -1. */
static int
fail(struct builder *b, const char *code, const char *section, const char *key,
    const char *name, const char *fmt, ...)
{
    struct plan_error *e = &b->pl->error;
    va_list ap;

    if (e->code != NULL)
        return -1;
    e->code = code;
    e->section = section;
    e->key = key;
    if (name != NULL && (e->name = strdup(name)) == NULL)
        b->oom = true;
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) == -1) {
        e->message = NULL;
        b->oom = true;
    }
    va_end(ap);
    return -1;
}

static void
warn(struct builder *b, const char *code, const char *key, const char *fmt, ...)
{
    struct plan *pl = b->pl;
    struct plan_warning *w;
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) == -1) {
        va_end(ap);
        b->oom = true;
        return;
    }
    va_end(ap);
    w = realloc(pl->warnings, (pl->nwarnings + 1) * sizeof(*w));
    if (w == NULL) {
        free(msg);
        b->oom = true;
        return;
    }
    pl->warnings = w;
    w[pl->nwarnings].code = code;
    w[pl->nwarnings].key = key;
    w[pl->nwarnings].message = msg;
    pl->nwarnings++;
}

char *
plan_normalise(const char *in)
{
    size_t n;
    char *s;

    while (*in == ' ' || *in == '\t')
        in++;
    n = strlen(in);
    while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n > 0 && in[n - 1] == '.')
        n--;                    /* one trailing dot only: "a.b.." stays wrong */
    if ((s = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    s[n] = '\0';
    return s;
}

/*
 * An IP literal: IPv4 dotted quad, IPv6 (with or without brackets or a zone),
 * or any name whose last label is a number, which URL parsers (WHATWG URL,
 * "ends in a number") and inet_aton() take for an IPv4 address ("10.1",
 * "0x7f.1", "999.1.1.1").
 */
static bool
is_ip_literal(const char *s)
{
    char buf[64];
    unsigned char addr[16];
    size_t n = strlen(s);
    const char *last, *end;

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (memchr(s, ':', n) != NULL && n < sizeof(buf)) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        buf[strcspn(buf, "%")] = '\0';  /* zone id */
        if (inet_pton(AF_INET6, buf, addr) == 1)
            return true;
    }
    if (n < sizeof(buf)) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET, buf, addr) == 1)
            return true;
    }
    /* Last label (or the one before an empty last label). */
    end = s + n;
    if (end > s && end[-1] == '.')
        end--;
    for (last = end; last > s && last[-1] != '.'; last--)
        ;
    if (last == end)
        return false;
    if (end - last >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        for (const char *q = last + 2; q < end; q++)
            if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                    (*q >= 'A' && *q <= 'F')))
                return false;
        return true;
    }
    for (const char *q = last; q < end; q++)
        if (*q < '0' || *q > '9')
            return false;
    return true;
}

const char *
plan_check_name(const char *name, bool wildcard, char *why, size_t len)
{
    size_t n = strlen(name), labels = 0;
    const char *base = name, *s;

    if (n == 0) {
        snprintf(why, len, "empty name");
        return "E_NAME_EMPTY";
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] >= 0x80) {
            snprintf(why, len, "non-ASCII characters (IDNs are not supported by "
                "Lync/SfB; R-E22)");
            return "E_NON_ASCII";
        }
    }
    if (is_ip_literal(name)) {
        snprintf(why, len, "an IP address, not a DNS name (R-E22)");
        return "E_IP_LITERAL";
    }
    if (strchr(name, '*') != NULL) {
        if (!wildcard) {
            snprintf(why, len, "a wildcard is not allowed here (R-E3, R-E10, R-I2)");
            return "E_WILDCARD";
        }
        if (strncmp(name, "*.", 2) == 0)
            base = name + 2;
        else if (strcmp(name, "*") == 0)
            base = name + 1;
        /* any other '*' is a bad character, reported below */
    }
    if (*base == '\0') {
        snprintf(why, len, "a wildcard needs at least two labels below it");
        return "E_SINGLE_LABEL";
    }
    for (s = base;; s++) {
        const char *dot = strchr(s, '.');
        size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);

        if (l == 0) {
            snprintf(why, len, "empty label (a leading dot, two dots in a row, "
                "or two trailing dots)");
            return "E_LABEL_EMPTY";
        }
        if (l > LABEL_MAX) {
            snprintf(why, len, "label '%.20s...' is %zu characters long (at most %d)",
                s, l, LABEL_MAX);
            return "E_LABEL_TOO_LONG";
        }
        for (size_t i = 0; i < l; i++) {
            char c = s[i];
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
                continue;
            if (c > 0x20 && c < 0x7f)
                snprintf(why, len, "label '%.*s' has '%c': only letters, digits and "
                    "'-' are allowed (R-E22)", (int)(l > 63 ? 63 : l), s, c);
            else
                snprintf(why, len, "label '%.*s' has byte 0x%02x: only letters, digits "
                    "and '-' are allowed (R-E22)", (int)(l > 63 ? 63 : l), s,
                    (unsigned char)c);
            return "E_LABEL_CHARS";
        }
        if (s[0] == '-' || s[l - 1] == '-') {
            snprintf(why, len, "label '%.*s' starts or ends with '-'", (int)l, s);
            return "E_LABEL_HYPHEN";
        }
        labels++;
        if (dot == NULL)
            break;
        s = dot;
    }
    if (labels < 2) {
        snprintf(why, len, "a single-label name: an FQDN is needed (R-E22)");
        return "E_SINGLE_LABEL";
    }
    if (n > NAME_MAX_LEN) {
        snprintf(why, len, "%zu characters long (at most %d)", n, NAME_MAX_LEN);
        return "E_NAME_TOO_LONG";
    }
    return NULL;
}

static void
list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].raw);
        free(l->v[i].norm);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Append a raw piece of `len` bytes (blanks trimmed) and its normal form. */
static int
list_add(struct builder *b, struct list *l, const char *s, size_t len)
{
    struct item *v, it;

    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if ((it.raw = strndup(s, len)) == NULL)
        goto oom;
    if ((it.norm = plan_normalise(it.raw)) == NULL) {
        free(it.raw);
        goto oom;
    }
    if ((v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
        free(it.raw);
        free(it.norm);
        goto oom;
    }
    l->v = v;
    l->v[l->n++] = it;
    return 0;
oom:
    b->oom = true;
    return -1;
}

/* Split a comma-separated value; an absent value is an empty list. */
static int
list_split(struct builder *b, const char *v, struct list *l)
{
    const char *comma;

    if (v == NULL)
        return 0;
    for (;;) {
        comma = strchr(v, ',');
        if (list_add(b, l, v, comma != NULL ? (size_t)(comma - v) : strlen(v)) == -1)
            return -1;
        if (comma == NULL)
            return 0;
        v = comma + 1;
    }
}

/* Validate one name of `key`; reports the first failure. */
static int
check_item(struct builder *b, const char *section, const char *key,
    const struct item *it, bool wildcard)
{
    char why[200];
    const char *code = plan_check_name(it->norm, wildcard, why, sizeof(why));

    if (code == NULL)
        return 0;
    return fail(b, code, section, key, it->raw, "%s = '%s': %s", key, it->raw, why);
}

static int
check_list(struct builder *b, const char *section, const char *key,
    const struct list *l, bool wildcard)
{
    for (size_t i = 0; i < l->n; i++)
        if (check_item(b, section, key, &l->v[i], wildcard) == -1)
            return -1;
    return 0;
}

static bool
is_onmicrosoft(const char *d)
{
    size_t n = strlen(d), m = strlen("onmicrosoft.com");

    return strcmp(d, "onmicrosoft.com") == 0 ||
        (n > m && d[n - m - 1] == '.' && strcmp(d + n - m, "onmicrosoft.com") == 0);
}

/* d equals base or lies below it. */
static bool
at_or_below(const char *d, const char *base)
{
    size_t n = strlen(d), m = strlen(base);

    return strcmp(d, base) == 0 ||
        (n > m && d[n - m - 1] == '.' && strcmp(d + n - m, base) == 0);
}

static struct plan_name *
san_find(struct plan *pl, const char *name)
{
    for (size_t i = 0; i < pl->nsans; i++)
        if (strcmp(pl->sans[i].name, name) == 0)
            return &pl->sans[i];
    return NULL;
}

/*
 * Add a name to the SAN list unless it is already there (first occurrence
 * wins, §3); a repeat is remembered as another reason for the name.
 */
static void
san_add(struct builder *b, const char *name, const char *from, const char *rule)
{
    struct plan *pl = b->pl;
    struct plan_name *e = san_find(pl, name), *v;
    struct plan_source *a;

    if (e != NULL) {
        if ((a = realloc(e->also, (e->nalso + 1) * sizeof(*a))) == NULL) {
            b->oom = true;
            return;
        }
        e->also = a;
        a[e->nalso].from = from;
        a[e->nalso].rule = rule;
        e->nalso++;
        return;
    }
    if ((v = realloc(pl->sans, (pl->nsans + 1) * sizeof(*v))) == NULL) {
        b->oom = true;
        return;
    }
    pl->sans = v;
    memset(&v[pl->nsans], 0, sizeof(v[0]));
    if ((v[pl->nsans].name = strdup(name)) == NULL) {
        b->oom = true;
        return;
    }
    v[pl->nsans].src.from = from;
    v[pl->nsans].src.rule = rule;
    pl->nsans++;
}

/*
 * Index of an earlier entry of `l` with the same normal form as entry i, or
 * -1: an input name repeated (possibly in another letter case).
 */
static long
list_repeat(const struct list *l, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(l->v[j].norm, l->v[i].norm) == 0)
            return (long)j;
    return -1;
}

static void
warn_repeat(struct builder *b, const char *key, const struct list *l, size_t i, long j)
{
    warn(b, "W_DUPLICATE_FOLDED", key, "%s: '%s' repeats '%s'; dropped", key,
        l->v[i].raw, l->v[j].raw);
}

/*
 * extra-sans, in the order given: repeats and names already on the
 * certificate are dropped with W_DUPLICATE_FOLDED; a wildcard (only valid on
 * the internal certificate, R-I2) gets W_INTERNAL_WILDCARD.
 */
static void
add_extra_sans(struct builder *b, const struct list *extra, const char *rule)
{
    for (size_t i = 0; i < extra->n; i++) {
        long j = list_repeat(extra, i);
        struct plan_name *e;

        if (j >= 0) {
            warn_repeat(b, "extra-sans", extra, i, j);
            continue;
        }
        if ((e = san_find(b->pl, extra->v[i].norm)) != NULL) {
            warn(b, "W_DUPLICATE_FOLDED", "extra-sans", "extra-sans: '%s' is "
                "already on the certificate from %s; dropped", extra->v[i].raw, e->src.from);
            continue;
        }
        if (extra->v[i].norm[0] == '*')
            warn(b, "W_INTERNAL_WILDCARD", "extra-sans", "extra-sans: wildcard "
                "'%s' on the internal certificate (R-I2)", extra->v[i].raw);
        san_add(b, extra->v[i].norm, "extra-sans", rule);
    }
}

/* The static spelling of v in set (so the plan never points into the profile). */
static const char *
pick(struct builder *b, const char *key, const char *v, const char *const *set,
    const char *dflt)
{
    if (v == NULL)
        return dflt;
    for (; *set != NULL; set++)
        if (strcmp(v, *set) == 0)
            return *set;
    fail(b, "E_VALUE", "edge", key, v, "%s = '%s' is not a value this key takes", key, v);
    return NULL;
}

static int
pick_bool(struct builder *b, const char *key, const char *v, bool *out)
{
    *out = false;
    if (v == NULL)
        return 0;
    if (profile_bool(v, out) == -1)
        return fail(b, "E_VALUE", "edge", key, v, "%s = '%s': yes or no", key, v);
    return 0;
}

/* RFC 4514 escaping of one attribute value, appended to *s. */
static int
dn_append(char **s, const char *attr, const char *value, bool upper)
{
    size_t n = strlen(*s), vl = strlen(value);
    char *t = realloc(*s, n + strlen(attr) + 2 + 2 * vl + 2);
    char *q;

    if (t == NULL)
        return -1;
    *s = t;
    q = t + n;
    q += sprintf(q, "%s%s=", n > 0 ? "," : "", attr);
    for (size_t i = 0; i < vl; i++) {
        char c = value[i];
        if (strchr("\"+,;<>\\", c) != NULL || (i == 0 && (c == '#' || c == ' ')) ||
            (i == vl - 1 && c == ' '))
            *q++ = '\\';
        *q++ = (upper && c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    *q = '\0';
    return 0;
}

/* Subject: CN first, then the [subject] extras, most specific first. */
static void
make_subject(struct builder *b, const char *cn, const char *from, const char *rule)
{
    const struct profile *p = b->p;
    struct plan *pl = b->pl;
    char *s = strdup("");

    pl->subject_src.from = from;
    pl->subject_src.rule = rule;
    if ((pl->cn = strdup(cn)) == NULL || s == NULL ||
        dn_append(&s, "CN", cn, false) == -1 ||
        (p->subject.ou != NULL && dn_append(&s, "OU", p->subject.ou, false) == -1) ||
        (p->subject.o != NULL && dn_append(&s, "O", p->subject.o, false) == -1) ||
        (p->subject.l != NULL && dn_append(&s, "L", p->subject.l, false) == -1) ||
        (p->subject.st != NULL && dn_append(&s, "ST", p->subject.st, false) == -1) ||
        (p->subject.c != NULL && dn_append(&s, "C", p->subject.c, true) == -1)) {
        free(s);
        b->oom = true;
        return;
    }
    pl->subject = s;
}

static int
check_cn(struct builder *b, const char *section, const char *key, const struct item *it)
{
    if (strlen(it->norm) <= CN_MAX)
        return 0;
    return fail(b, "E_CN_TOO_LONG", section, key, it->raw,
        "%s = '%s': %zu characters, but the subject CN holds at most %d (RFC 5280)",
        key, it->raw, strlen(it->norm), CN_MAX);
}

/* W_IDN_ALABEL for every distinct name on the certificate. */
static void
warn_idn(struct builder *b, const char *name, const char *key)
{
    for (const char *s = name; s != NULL; s = strchr(s, '.')) {
        if (*s == '.')
            s++;
        if (strncmp(s, "xn--", 4) == 0) {
            warn(b, "W_IDN_ALABEL", key, "%s: '%s' has an IDN label (xn--): valid "
                "DNS, but Lync/SfB do not support IDNs", key, name);
            return;
        }
    }
}

static void
warn_idn_all(struct builder *b)
{
    struct plan *pl = b->pl;

    if (pl->cn != NULL && san_find(pl, pl->cn) == NULL)
        warn_idn(b, pl->cn, pl->subject_src.from);
    for (size_t i = 0; i < pl->nsans; i++)
        warn_idn(b, pl->sans[i].name, pl->sans[i].src.from);
}

/* R-E15: key types Lync/SfB can use for Edge certificates. */
static int
check_edge_key(struct builder *b, const struct keytype *kt)
{
    /*
     * Decision: rsa:2048, rsa:4096 and the three NIST curves, exactly the
     * list of R-E15 (Request-CsCertificate -KeySize 2048/4096, -KeyAlg ECC).
     * rsa:3072 is refused although SChannel could verify it: Microsoft's
     * tooling and documentation never offer it for Edge.  ed25519 is refused:
     * SChannel on the Windows versions Lync/SfB run on has no Ed25519
     * certificates at all.  A [names] profile may use any supported type.
     */
    if ((kt->alg == KEY_RSA && (kt->bits == 2048 || kt->bits == 4096)) || kt->alg == KEY_EC)
        return 0;
    return fail(b, "E_KEY_TYPE", "key", "type", kt->name,
        "type = '%s': Lync/SfB Edge certificates take rsa:2048, rsa:4096, ec:p256, "
        "ec:p384 or ec:p521 (R-E15)", kt->name);
}

static const struct keytype *
key_type(struct builder *b)
{
    const char *t = b->p->key.type != NULL ? b->p->key.type : "rsa:2048";
    const struct keytype *kt = keytype_parse(t);

    if (kt == NULL)
        fail(b, "E_KEY_TYPE", "key", "type", t, "type = '%s': unknown key type (one of: %s)",
            t, keytype_all());
    return kt;
}

static void
set_eku(struct plan *pl, bool client_auth)
{
    pl->eku[pl->neku++] = "serverAuth";
    if (client_auth)
        pl->eku[pl->neku++] = "clientAuth";
}

/* Where an [edge] key's value lives in the profile. */
#define EDGE(m) offsetof(struct profile, edge.m)

static const char *
edge_value(const struct profile *p, size_t off)
{
    return *(char *const *)((const char *)p + off);
}

/* The name keys of [edge], in the order their names are checked (§3). */
enum edge_name {
    EN_ACCESS, EN_WEBCONF, EN_AV, EN_SIP, EN_XHOST, EN_XMPP, EN_EXTRA,
    EN_IFQDN, EN_PFQDN, EN_MEMBERS, EN_COUNT
};

static const struct edge_key {
    const char *key;
    size_t off;                 /* the value in struct profile */
    bool split;                 /* a comma-separated list, else one name */
} edge_names[EN_COUNT] = {
    [EN_ACCESS] = { "access-edge", EDGE(access_edge), false },
    [EN_WEBCONF] = { "webconf-edge", EDGE(webconf_edge), false },
    [EN_AV] = { "av-edge", EDGE(av_edge), false },
    [EN_SIP] = { "sip-domains", EDGE(sip_domains), true },
    [EN_XHOST] = { "xmpp-host", EDGE(xmpp_host), false },
    [EN_XMPP] = { "xmpp-domains", EDGE(xmpp_domains), true },
    [EN_EXTRA] = { "extra-sans", EDGE(extra_sans), true },
    [EN_IFQDN] = { "internal-fqdn", EDGE(internal_fqdn), false },
    [EN_PFQDN] = { "pool-fqdn", EDGE(pool_fqdn), false },
    [EN_MEMBERS] = { "members", EDGE(members), true },
};

/* What an [edge] profile says: its picked values and its names. */
struct edge {
    const char *cert, *product, *lb, *isan, *ca_kind;
    bool split_av, nat, client_auth, pool;
    struct list n[EN_COUNT];
};

/*
 * The shape of an [edge] profile: required, conflicting and unsupported
 * keys, checked in this order before any name is looked at.  A row fires
 * when the certificate kind is in `kinds`, the topology matches, `key` is
 * given or missing as `presence` says, and `fact` holds; its error is
 * "<message> (<rule>)", naming `key` (and its value when `name_is_value`).
 */
enum shape_topo { TOPO_ANY, TOPO_SINGLE, TOPO_POOL };
enum shape_presence { KEY_ANY, KEY_GIVEN, KEY_MISSING };
enum shape_fact { FACT_NONE, FACT_NO_SPLIT_AV, FACT_HW_LB_NAT, FACT_SFB2019, FACT_ISAN_NOT_SUBJECT };

#define KIND_EXT (1u << PLAN_EXTERNAL)
#define KIND_INT (1u << PLAN_INTERNAL)
#define KIND_AV (1u << PLAN_AV)
#define KIND_ALL (KIND_EXT | KIND_INT | KIND_AV)

static const struct shape_rule {
    unsigned kinds;
    enum shape_topo topo;
    const char *key;
    size_t off;                 /* key's value in struct profile */
    enum shape_presence presence;
    enum shape_fact fact;
    bool name_is_value;
    const char *code, *rule, *message;
} shape_rules[] = {
    { KIND_AV, TOPO_ANY, "certificate", EDGE(certificate), KEY_ANY, FACT_NO_SPLIT_AV, false,
        "E_CONFLICT", "R-E1", "certificate = av needs split-av = yes: without it A/V "
        "Authentication uses the external certificate" },
    { KIND_ALL, TOPO_POOL, "load-balancing", EDGE(load_balancing), KEY_MISSING, FACT_NONE,
        false, "E_MISSING", NULL, "topology = pool needs load-balancing = dns or hardware" },
    { KIND_ALL, TOPO_SINGLE, "load-balancing", EDGE(load_balancing), KEY_GIVEN, FACT_NONE,
        false, "E_CONFLICT", NULL, "load-balancing is for topology = pool" },
    { KIND_ALL, TOPO_SINGLE, "members", EDGE(members), KEY_GIVEN, FACT_NONE, false,
        "E_CONFLICT", NULL, "members is for topology = pool" },
    { KIND_ALL, TOPO_ANY, "nat", EDGE(nat), KEY_ANY, FACT_HW_LB_NAT, false, "E_HLB_NAT",
        "R-E19", "nat = yes with load-balancing = hardware: NAT is supported with DNS "
        "load balancing only" },
    { KIND_ALL, TOPO_ANY, "xmpp-domains", EDGE(xmpp_domains), KEY_GIVEN, FACT_SFB2019, true,
        "E_XMPP_UNSUPPORTED", "R-E8", "xmpp-domains with product = sfb2019: SfB Server "
        "2019 has no XMPP gateway" },
    { KIND_ALL, TOPO_ANY, "xmpp-host", EDGE(xmpp_host), KEY_GIVEN, FACT_SFB2019, true,
        "E_XMPP_UNSUPPORTED", "R-E8", "xmpp-host with product = sfb2019: SfB Server 2019 "
        "has no XMPP gateway" },
    { KIND_EXT, TOPO_ANY, "access-edge", EDGE(access_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E3", "the external certificate needs access-edge, the Access Edge "
        "external FQDN" },
    { KIND_AV, TOPO_ANY, "access-edge", EDGE(access_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E3", "the av certificate needs access-edge, the Access Edge "
        "external FQDN" },
    { KIND_EXT, TOPO_ANY, "webconf-edge", EDGE(webconf_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E5; the same name as access-edge in single-FQDN mode, R-E18",
        "the external certificate needs webconf-edge, the Web Conferencing Edge external "
        "FQDN" },
    { KIND_EXT, TOPO_ANY, "sip-domains", EDGE(sip_domains), KEY_MISSING, FACT_NONE, false,
        "E_NO_SIP_DOMAIN", "R-E6", "the external certificate needs sip-domains: every SIP "
        "domain d gets sip.<d>" },
    { KIND_INT, TOPO_SINGLE, "internal-fqdn", EDGE(internal_fqdn), KEY_MISSING, FACT_NONE,
        false, "E_MISSING", "R-I1", "the internal certificate of a single Edge needs "
        "internal-fqdn" },
    { KIND_INT, TOPO_POOL, "pool-fqdn", EDGE(pool_fqdn), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-I1", "the internal certificate of an Edge pool needs pool-fqdn, the "
        "internal pool (or VIP) FQDN" },
    { KIND_INT, TOPO_ANY, "extra-sans", EDGE(extra_sans), KEY_GIVEN, FACT_ISAN_NOT_SUBJECT,
        false, "E_CONFLICT", "R-I2", "extra-sans on the internal certificate needs "
        "internal-san = subject: without it there is no SAN" },
    { KIND_AV, TOPO_ANY, "extra-sans", EDGE(extra_sans), KEY_GIVEN, FACT_NONE, false,
        "E_CONFLICT", NULL, "the A/V Authentication certificate has the subject as its only "
        "SAN" },
};

static bool
shape_fact_holds(const struct edge *e, enum shape_fact fact)
{
    switch (fact) {
    case FACT_NONE:
        return true;
    case FACT_NO_SPLIT_AV:
        return !e->split_av;
    case FACT_HW_LB_NAT:
        return e->nat && e->lb != NULL && strcmp(e->lb, "hardware") == 0;
    case FACT_SFB2019:
        return strcmp(e->product, "sfb2019") == 0;
    case FACT_ISAN_NOT_SUBJECT:
        return strcmp(e->isan, "subject") != 0;
    }
    return false;
}

/* The first shape_rules row that fires becomes the plan's error.  0 or -1. */
static int
check_edge_shape(struct builder *b, const struct edge *e)
{
    for (size_t i = 0; i < sizeof(shape_rules) / sizeof(shape_rules[0]); i++) {
        const struct shape_rule *r = &shape_rules[i];
        const char *v = edge_value(b->p, r->off);

        if (!(r->kinds & (1u << b->pl->kind)) ||
            (r->topo == TOPO_SINGLE && e->pool) || (r->topo == TOPO_POOL && !e->pool) ||
            (r->presence == KEY_GIVEN && v == NULL) ||
            (r->presence == KEY_MISSING && v != NULL) || !shape_fact_holds(e, r->fact))
            continue;
        return fail(b, r->code, "edge", r->key, r->name_is_value ? v : NULL, "%s%s%s%s",
            r->message, r->rule ? " (" : "", r->rule ? r->rule : "", r->rule ? ")" : "");
    }
    return 0;
}

/* Pick the [edge] values (defaults of §4) and the certificate kind.  0 or -1. */
static int
read_edge(struct builder *b, struct edge *e)
{
    const struct profile *p = b->p;
    struct plan *pl = b->pl;
    const char *topology;

    if ((e->cert = pick(b, "certificate", p->edge.certificate, set_certificate, "external")) == NULL ||
        (e->product = pick(b, "product", p->edge.product, set_product, "lync2013")) == NULL ||
        (topology = pick(b, "topology", p->edge.topology, set_topology, "single")) == NULL ||
        (e->isan = pick(b, "internal-san", p->edge.internal_san, set_internal_san, "none")) == NULL ||
        pick_bool(b, "split-av", p->edge.split_av, &e->split_av) == -1 ||
        pick_bool(b, "nat", p->edge.nat, &e->nat) == -1 ||
        pick_bool(b, "client-auth", p->edge.client_auth, &e->client_auth) == -1)
        return -1;
    e->lb = pick(b, "load-balancing", p->edge.load_balancing, set_lb, NULL);
    pl->kind = strcmp(e->cert, "external") == 0 ? PLAN_EXTERNAL :
        strcmp(e->cert, "internal") == 0 ? PLAN_INTERNAL : PLAN_AV;
    e->ca_kind = pick(b, "ca-kind", p->edge.ca_kind, set_ca_kind,
        pl->kind == PLAN_INTERNAL ? "private" : "public");
    if (pl->error.code != NULL)
        return -1;
    pl->certificate = e->cert;
    pl->product = e->product;
    pl->ca_kind = e->ca_kind;
    e->pool = strcmp(topology, "pool") == 0;
    return 0;
}

/* sip-domains: each domain, then the sip.<d> it gives (none for onmicrosoft.com). */
static int
check_sip_domains(struct builder *b, const struct list *sip)
{
    for (size_t i = 0; i < sip->n; i++) {
        char *derived;
        char why[200];
        const char *code;

        if (check_item(b, "edge", "sip-domains", &sip->v[i], false) == -1)
            return -1;
        if (is_onmicrosoft(sip->v[i].norm))
            continue;
        if (asprintf(&derived, "sip.%s", sip->v[i].norm) == -1) {
            b->oom = true;
            return -1;
        }
        code = plan_check_name(derived, false, why, sizeof(why));
        if (code != NULL)
            fail(b, code, "edge", "sip-domains", sip->v[i].raw,
                "sip-domains = '%s': the derived name %s: %s", sip->v[i].raw, derived, why);
        free(derived);
        if (code != NULL)
            return -1;
    }
    return 0;
}

/* Read every name key into e->n and check each name, given or derived (§3). */
static int
read_edge_names(struct builder *b, struct edge *e)
{
    for (size_t i = 0; i < EN_COUNT; i++) {
        const char *v = edge_value(b->p, edge_names[i].off);

        if (v != NULL && (edge_names[i].split ? list_split(b, v, &e->n[i]) :
                list_add(b, &e->n[i], v, strlen(v))) == -1)
            return -1;
    }
    for (size_t i = 0; i < EN_COUNT; i++) {
        /* A wildcard only in extra-sans of the internal certificate (R-I2). */
        bool wildcard = i == EN_EXTRA && b->pl->kind == PLAN_INTERNAL;

        if ((i == EN_SIP ? check_sip_domains(b, &e->n[i]) :
                check_list(b, "edge", edge_names[i].key, &e->n[i], wildcard)) == -1)
            return -1;
    }
    return 0;
}

/* sip.<d> for every SIP domain (R-E6, R-E21).  0, or -1 when none is left. */
static int
add_sip_sans(struct builder *b, const struct edge *e)
{
    const struct list *sip = &e->n[EN_SIP];
    size_t nsip = 0;

    for (size_t i = 0; i < sip->n; i++) {
        char *derived;
        long j = list_repeat(sip, i);

        if (j >= 0) {
            warn_repeat(b, "sip-domains", sip, i, j);
            continue;
        }
        if (is_onmicrosoft(sip->v[i].norm)) {
            warn(b, "W_ONMICROSOFT_SKIPPED", "sip-domains", "sip-domains: '%s' is "
                "an onmicrosoft.com domain, served by Microsoft 365: no sip.<d> (R-E21)",
                sip->v[i].raw);
            continue;
        }
        if (strncmp(sip->v[i].norm, "sip.", 4) == 0)
            warn(b, "W_SIP_PREFIX_IN_DOMAIN", "sip-domains", "sip-domains: '%s' "
                "begins with 'sip.', giving sip.%s: list the SIP domain itself",
                sip->v[i].raw, sip->v[i].norm);
        if (asprintf(&derived, "sip.%s", sip->v[i].norm) == -1) {
            b->oom = true;
            return -1;
        }
        san_add(b, derived, "sip-domains", "R-E6");
        free(derived);
        nsip++;
    }
    if (nsip == 0)
        return fail(b, "E_NO_SIP_DOMAIN", "edge", "sip-domains", b->p->edge.sip_domains,
            "sip-domains = '%s': no SIP domain is left for the external "
            "certificate (onmicrosoft.com domains are skipped, R-E21)",
            b->p->edge.sip_domains);
    return 0;
}

/* xmpp-host, then xmpp-domains, each warned about unless at or below a SIP domain (R-E8). */
static void
add_xmpp_sans(struct builder *b, const struct edge *e)
{
    const struct list *sip = &e->n[EN_SIP], *xmpp = &e->n[EN_XMPP];

    if (e->n[EN_XHOST].n > 0)
        san_add(b, e->n[EN_XHOST].v[0].norm, "xmpp-host", "R-E8");
    for (size_t i = 0; i < xmpp->n; i++) {
        long j = list_repeat(xmpp, i);
        bool under = false;

        if (j >= 0) {
            warn_repeat(b, "xmpp-domains", xmpp, i, j);
            continue;
        }
        for (size_t k = 0; k < sip->n && !under; k++)
            under = at_or_below(xmpp->v[i].norm, sip->v[k].norm);
        if (!under)
            warn(b, "W_XMPP_NOT_SIP_DOMAIN", "xmpp-domains", "xmpp-domains: '%s' "
                "is neither a SIP domain nor below one", xmpp->v[i].raw);
        san_add(b, xmpp->v[i].norm, "xmpp-domains", "R-E8");
    }
}

/* Names that must not end up on the external certificate (R-E7, R-E11).  0 or -1. */
static int
check_external_conflicts(struct builder *b, const struct edge *e)
{
    const struct list *access = &e->n[EN_ACCESS], *webconf = &e->n[EN_WEBCONF];
    const struct list *av = &e->n[EN_AV], *members = &e->n[EN_MEMBERS];
    struct plan_name *found;

    /* R-E7: the A/V Edge FQDN only when it is also a name that must be there. */
    if (av->n > 0 && strcmp(av->v[0].norm, access->v[0].norm) != 0 &&
        strcmp(av->v[0].norm, webconf->v[0].norm) != 0 &&
        (found = san_find(b->pl, av->v[0].norm)) != NULL)
        return fail(b, "E_CONFLICT", "edge", found->src.from, av->v[0].raw, "%s puts the "
            "A/V Edge external FQDN '%s' on the certificate: it belongs in "
            "neither subject nor SAN (R-E7)", found->src.from, av->v[0].raw);
    /* R-E11: member FQDNs never on the external certificate. */
    for (size_t i = 0; i < members->n; i++)
        if ((found = san_find(b->pl, members->v[i].norm)) != NULL)
            return fail(b, "E_CONFLICT", "edge", found->src.from, members->v[i].raw, "%s "
                "puts the pool member '%s' on the external certificate: pools use "
                "pool-level names only (R-E11)", found->src.from, members->v[i].raw);
    return 0;
}

/* The external certificate, in the canonical order of §3.  0 or -1. */
static int
build_external(struct builder *b, const struct edge *e)
{
    const struct item *access = &e->n[EN_ACCESS].v[0];

    make_subject(b, access->norm, "access-edge", "R-E3");
    san_add(b, e->n[EN_WEBCONF].v[0].norm, "webconf-edge", "R-E5");
    san_add(b, access->norm, "access-edge", "R-E4");
    if (add_sip_sans(b, e) == -1)
        return -1;
    add_xmpp_sans(b, e);
    add_extra_sans(b, &e->n[EN_EXTRA], "R-X1");
    return check_external_conflicts(b, e);
}

/* The internal certificate: the internal or pool FQDN (R-I1), SANs only if asked (R-I2). */
static int
build_internal(struct builder *b, const struct edge *e)
{
    const struct item *subj = &e->n[e->pool ? EN_PFQDN : EN_IFQDN].v[0];

    make_subject(b, subj->norm, e->pool ? "pool-fqdn" : "internal-fqdn", "R-I1");
    if (strcmp(e->isan, "subject") == 0) {
        san_add(b, subj->norm, "internal-san", "R-I2");
        add_extra_sans(b, &e->n[EN_EXTRA], "R-I2");
    }
    return 0;
}

/* The A/V Authentication certificate: the Access Edge FQDN only (R-E3, R-E4). */
static int
build_av(struct builder *b, const struct edge *e)
{
    const struct item *access = &e->n[EN_ACCESS].v[0];

    make_subject(b, access->norm, "access-edge", "R-E3");
    san_add(b, access->norm, "access-edge", "R-E4");
    return 0;
}

/* Pool facts: members (repeats dropped), shared-key and pool-size warnings. */
static int
edge_pool(struct builder *b, const struct edge *e)
{
    struct plan *pl = b->pl;
    const struct list *members = &e->n[EN_MEMBERS];

    pl->pool = true;
    pl->load_balancing = e->lb;
    pl->shared_key_note = SHARED_KEY_NOTE;
    for (size_t i = 0; i < members->n; i++) {
        long j = list_repeat(members, i);
        char **m;

        if (j >= 0) {
            warn_repeat(b, "members", members, i, j);
            continue;
        }
        if ((m = realloc(pl->members, (pl->nmembers + 1) * sizeof(*m))) == NULL) {
            b->oom = true;
            return -1;
        }
        pl->members = m;
        if ((m[pl->nmembers] = strdup(members->v[i].norm)) == NULL) {
            b->oom = true;
            return -1;
        }
        pl->nmembers++;
    }
    warn(b, "W_KEY_SHARED_MEMBERS", "topology", "an Edge pool (%zu member%s "
        "listed): every member uses this certificate and must use the same key "
        "object, with an HSM a shared network-HSM partition (%s)", pl->nmembers,
        pl->nmembers == 1 ? "" : "s", pl->kind == PLAN_INTERNAL ? "R-I5" : "R-E12");
    if (pl->nmembers > POOL_MAX)
        warn(b, "W_POOL_GT_12", "members", "members: %zu servers, but an Edge pool "
            "supports at most %d (R-E20)", pl->nmembers, POOL_MAX);
    return 0;
}

/*
 * Edge certificates: external, internal, av (§1, §3, §4).  The shape of the
 * profile first (required, conflicting, unsupported), then every name given
 * or derived, and only then the certificate of its kind.
 */
static int
build_edge(struct builder *b)
{
    static int (*const build_kind[])(struct builder *, const struct edge *) = {
        [PLAN_EXTERNAL] = build_external,
        [PLAN_INTERNAL] = build_internal,
        [PLAN_AV] = build_av,
    };
    struct plan *pl = b->pl;
    struct edge e = { 0 };
    const struct keytype *kt;
    int rc = -1;

    if (read_edge(b, &e) == -1 || check_edge_shape(b, &e) == -1)
        goto out;
    if ((kt = key_type(b)) == NULL || check_edge_key(b, kt) == -1)
        goto out;
    pl->key = kt->name;
    if (read_edge_names(b, &e) == -1)
        goto out;
    if (pl->kind == PLAN_INTERNAL) {
        if (check_cn(b, "edge", e.pool ? "pool-fqdn" : "internal-fqdn",
                &e.n[e.pool ? EN_PFQDN : EN_IFQDN].v[0]) == -1)
            goto out;
    } else if (check_cn(b, "edge", "access-edge", &e.n[EN_ACCESS].v[0]) == -1) {
        goto out;
    }
    if (build_kind[pl->kind](b, &e) == -1)
        goto out;
    set_eku(pl, e.client_auth);
    if (e.pool && edge_pool(b, &e) == -1)
        goto out;
    pl->nat = e.nat;
    if (e.client_auth && strcmp(e.ca_kind, "public") == 0)
        warn(b, "W_CLIENT_EKU_PUBLIC_CA", "client-auth", "client-auth = yes from a "
            "public CA: public CAs are dropping clientAuth from TLS certificates "
            "(2025-2027), so the issued certificate may lack it (R-E13)");
    if (pl->kind != PLAN_INTERNAL && strcmp(e.ca_kind, "private") == 0)
        warn(b, "W_EXTERNAL_PRIVATE_CA", "ca-kind", "ca-kind = private for the %s "
            "certificate: federation partners and remote clients need a public CA (R-E2)",
            e.cert);
    warn_idn_all(b);
    rc = 0;
out:
    for (size_t i = 0; i < EN_COUNT; i++)
        list_free(&e.n[i]);
    return pl->error.code != NULL || b->oom ? -1 : rc;
}

/* Generic certificate: [names] subject and sans (§4, last paragraph). */
static int
build_names(struct builder *b)
{
    const struct profile *p = b->p;
    struct plan *pl = b->pl;
    struct list subject = { 0 }, sans = { 0 };
    const struct keytype *kt;
    bool listed = false;
    int rc = -1;

    pl->kind = PLAN_NAMES;
    pl->certificate = "names";
    if (p->names.subject == NULL) {
        fail(b, "E_MISSING", "names", "subject", NULL,
            "[names] needs subject, the certificate's CN");
        goto out;
    }
    if ((kt = key_type(b)) == NULL)
        goto out;
    pl->key = kt->name;
    if (list_add(b, &subject, p->names.subject, strlen(p->names.subject)) == -1 ||
        list_split(b, p->names.sans, &sans) == -1)
        goto out;
    if (check_list(b, "names", "subject", &subject, true) == -1 ||
        check_list(b, "names", "sans", &sans, true) == -1 ||
        check_cn(b, "names", "subject", &subject.v[0]) == -1)
        goto out;

    make_subject(b, subject.v[0].norm, "subject", "R-N1");
    for (size_t i = 0; i < sans.n; i++)
        if (strcmp(sans.v[i].norm, subject.v[0].norm) == 0)
            listed = true;
    if (!listed)
        san_add(b, subject.v[0].norm, "subject", "R-N1");
    for (size_t i = 0; i < sans.n; i++) {
        long j = list_repeat(&sans, i);

        if (j >= 0) {
            warn_repeat(b, "sans", &sans, i, j);
            continue;
        }
        san_add(b, sans.v[i].norm, "sans", "R-N2");
    }
    set_eku(pl, false);
    warn_idn_all(b);
    rc = 0;
out:
    list_free(&subject);
    list_free(&sans);
    return pl->error.code != NULL || b->oom ? -1 : rc;
}

static bool
edge_given(const struct profile *p)
{
    const char *const *f = (const char *const *)&p->edge;
    size_t n = sizeof(p->edge) / sizeof(char *);

    if (p->has_edge)
        return true;
    for (size_t i = 0; i < n; i++)
        if (f[i] != NULL)
            return true;
    return false;
}

int
plan_build(const struct profile *p, struct plan **out)
{
    struct builder b = { p, NULL, false };

    *out = NULL;
    if ((b.pl = calloc(1, sizeof(*b.pl))) == NULL)
        return -1;
    if (p->has_names || p->names.subject != NULL || p->names.sans != NULL)
        build_names(&b);
    else if (edge_given(p))
        build_edge(&b);
    else
        fail(&b, "E_MISSING", NULL, "edge", NULL,
            "the profile has neither an [edge] nor a [names] section");
    if (b.oom) {
        plan_free(b.pl);
        return -1;
    }
    *out = b.pl;
    return b.pl->error.code != NULL ? -1 : 0;
}

void
plan_free(struct plan *pl)
{
    if (pl == NULL)
        return;
    free(pl->cn);
    free(pl->subject);
    for (size_t i = 0; i < pl->nsans; i++) {
        free(pl->sans[i].name);
        free(pl->sans[i].also);
    }
    free(pl->sans);
    for (size_t i = 0; i < pl->nwarnings; i++)
        free(pl->warnings[i].message);
    free(pl->warnings);
    for (size_t i = 0; i < pl->nmembers; i++)
        free(pl->members[i]);
    free(pl->members);
    free(pl->error.name);
    free(pl->error.message);
    free(pl);
}

/* json_object_set_new() that remembers a failure instead of returning it. */
static void
jset(json_t *o, const char *k, json_t *v, bool *bad)
{
    if (v == NULL || json_object_set_new(o, k, v) == -1)
        *bad = true;
}

static void
jpush(json_t *a, json_t *v, bool *bad)
{
    if (v == NULL || json_array_append_new(a, v) == -1)
        *bad = true;
}

static json_t *
source_json(const struct plan_source *s, bool *bad)
{
    json_t *o = json_object();

    if (o == NULL) {
        *bad = true;
        return NULL;
    }
    jset(o, "from", json_string(s->from), bad);
    jset(o, "rule", json_string(s->rule), bad);
    return o;
}

static json_t *
error_json(const struct plan *pl, bool *bad)
{
    const struct plan_error *e = &pl->error;
    json_t *root = json_object(), *o = json_object();

    if (root == NULL || o == NULL) {
        json_decref(root);
        json_decref(o);
        *bad = true;
        return NULL;
    }
    jset(o, "code", json_string(e->code), bad);
    jset(o, "key", e->key ? json_string(e->key) : json_null(), bad);
    jset(o, "name", e->name ? json_string(e->name) : json_null(), bad);
    jset(o, "message", json_string(e->message ? e->message : e->code), bad);
    jset(root, "error", o, bad);
    return root;
}

json_t *
plan_to_json(const struct plan *pl)
{
    json_t *o, *a;
    bool bad = false;

    if (pl->error.code != NULL) {
        o = error_json(pl, &bad);
        goto out;
    }
    if ((o = json_object()) == NULL)
        return NULL;
    jset(o, "certificate", json_string(pl->certificate), &bad);
    jset(o, "subject", json_string(pl->subject), &bad);
    if ((a = json_array()) != NULL)
        for (size_t i = 0; i < pl->nsans; i++)
            jpush(a, json_string(pl->sans[i].name), &bad);
    jset(o, "sans", a, &bad);
    if ((a = json_array()) != NULL)
        for (size_t i = 0; i < pl->neku; i++)
            jpush(a, json_string(pl->eku[i]), &bad);
    jset(o, "eku", a, &bad);
    jset(o, "key", json_string(pl->key), &bad);
    if ((a = json_array()) != NULL) {
        for (size_t i = 0; i < pl->nsans; i++) {
            const struct plan_name *n = &pl->sans[i];
            json_t *e = json_object(), *also;
            if (e == NULL) {
                bad = true;
                break;
            }
            jset(e, "name", json_string(n->name), &bad);
            jset(e, "from", json_string(n->src.from), &bad);
            jset(e, "rule", json_string(n->src.rule), &bad);
            if (n->nalso > 0) {
                if ((also = json_array()) != NULL)
                    for (size_t k = 0; k < n->nalso; k++)
                        jpush(also, source_json(&n->also[k], &bad), &bad);
                jset(e, "also", also, &bad);
            }
            jpush(a, e, &bad);
        }
    }
    jset(o, "names", a, &bad);
    if ((a = json_array()) != NULL) {
        for (size_t i = 0; i < pl->nwarnings; i++) {
            json_t *w = json_object();
            if (w == NULL) {
                bad = true;
                break;
            }
            jset(w, "code", json_string(pl->warnings[i].code), &bad);
            jset(w, "message", json_string(pl->warnings[i].message), &bad);
            jpush(a, w, &bad);
        }
    }
    jset(o, "warnings", a, &bad);
    /* Extensions of the cli.md shape. */
    jset(o, "cn", json_string(pl->cn), &bad);
    jset(o, "subject_from", source_json(&pl->subject_src, &bad), &bad);
    if (pl->kind != PLAN_NAMES) {
        json_t *pool;

        jset(o, "product", json_string(pl->product), &bad);
        jset(o, "ca_kind", json_string(pl->ca_kind), &bad);
        jset(o, "topology", json_string(pl->pool ? "pool" : "single"), &bad);
        jset(o, "nat", json_boolean(pl->nat), &bad);
        if (pl->pool && (pool = json_object()) != NULL) {
            if ((a = json_array()) != NULL)
                for (size_t i = 0; i < pl->nmembers; i++)
                    jpush(a, json_string(pl->members[i]), &bad);
            jset(pool, "members", a, &bad);
            jset(pool, "load_balancing", json_string(pl->load_balancing), &bad);
            jset(pool, "shared_key", json_string(pl->shared_key_note), &bad);
            jset(o, "pool", pool, &bad);
        } else if (pl->pool)
            bad = true;
    }
out:
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
