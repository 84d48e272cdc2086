/*
 * plan.c - the SAN planner: which subject, SANs and EKUs a profile gives,
 * and why (edge-san-rules.md §2-§4).  This file holds the builder (the one
 * error, warnings, the SAN list, the subject) and the generic [names]
 * certificate; the Edge rules are in plan_edge.c, name checks in
 * plan_names.c, JSON in plan_json.c.  Pure: no I/O and no printing, so the
 * rules are unit-tested and fuzzed directly.
 */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytype.h"
#include "plan_int.h"
#include "log.h"

#define CN_MAX 64           /* RFC 5280 ub-common-name */

/* Record the plan's one error (the first wins).  Always returns -1. */
int
pb_fail(struct builder *b, const char *code, const char *section, const char *key,
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

void
pb_warn(struct builder *b, const char *code, const char *key, const char *fmt, ...)
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

struct plan_name *
pb_san_find(struct plan *pl, const char *name)
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
void
pb_san_add(struct builder *b, const char *name, const char *from, const char *rule)
{
    struct plan *pl = b->pl;
    struct plan_name *e = pb_san_find(pl, name), *v;
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

void
pb_warn_repeat(struct builder *b, const char *key, const struct list *l, size_t i, long j)
{
    pb_warn(b, "W_DUPLICATE_FOLDED", key, "%s: '%s' repeats '%s'; dropped", key,
        l->v[i].raw, l->v[j].raw);
}

/*
 * extra-sans, in the order given: repeats and names already on the
 * certificate are dropped with W_DUPLICATE_FOLDED; a wildcard (only valid on
 * the internal certificate, R-I2) gets W_INTERNAL_WILDCARD.
 */
void
pb_add_extra_sans(struct builder *b, const struct list *extra, const char *rule)
{
    for (size_t i = 0; i < extra->n; i++) {
        long j = pb_list_repeat(extra, i);
        struct plan_name *e;

        if (j >= 0) {
            pb_warn_repeat(b, "extra-sans", extra, i, j);
            continue;
        }
        if ((e = pb_san_find(b->pl, extra->v[i].norm)) != NULL) {
            pb_warn(b, "W_DUPLICATE_FOLDED", "extra-sans", "extra-sans: '%s' is "
                "already on the certificate from %s; dropped", extra->v[i].raw, e->src.from);
            continue;
        }
        if (extra->v[i].norm[0] == '*')
            pb_warn(b, "W_INTERNAL_WILDCARD", "extra-sans", "extra-sans: wildcard "
                "'%s' on the internal certificate (R-I2)", extra->v[i].raw);
        pb_san_add(b, extra->v[i].norm, "extra-sans", rule);
    }
}

/* The static spelling of v in set (so the plan never points into the profile). */
const char *
pb_pick(struct builder *b, const char *key, const char *v, const char *const *set,
    const char *dflt)
{
    if (v == NULL)
        return dflt;
    for (; *set != NULL; set++)
        if (strcmp(v, *set) == 0)
            return *set;
    pb_fail(b, "E_VALUE", "edge", key, v, "%s = '%s' is not a value this key takes", key, v);
    return NULL;
}

int
pb_pick_bool(struct builder *b, const char *key, const char *v, bool *out)
{
    *out = false;
    if (v == NULL)
        return 0;
    if (profile_bool(v, out) == -1)
        return pb_fail(b, "E_VALUE", "edge", key, v, "%s = '%s': yes or no", key, v);
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
void
pb_make_subject(struct builder *b, const char *cn, const char *from, const char *rule)
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

int
pb_check_cn(struct builder *b, const char *section, const char *key, const struct item *it)
{
    if (strlen(it->norm) <= CN_MAX)
        return 0;
    return pb_fail(b, "E_CN_TOO_LONG", section, key, it->raw,
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
            pb_warn(b, "W_IDN_ALABEL", key, "%s: '%s' has an IDN label (xn--): valid "
                "DNS, but Lync/SfB do not support IDNs", key, name);
            return;
        }
    }
}

void
pb_warn_idn_all(struct builder *b)
{
    struct plan *pl = b->pl;

    if (pl->cn != NULL && pb_san_find(pl, pl->cn) == NULL)
        warn_idn(b, pl->cn, pl->subject_src.from);
    for (size_t i = 0; i < pl->nsans; i++)
        warn_idn(b, pl->sans[i].name, pl->sans[i].src.from);
}

const struct keytype *
pb_key_type(struct builder *b)
{
    const char *t = b->p->key.type != NULL ? b->p->key.type : "rsa:2048";
    const struct keytype *kt = keytype_parse(t);

    if (kt == NULL)
        pb_fail(b, "E_KEY_TYPE", "key", "type", t, "type = '%s': unknown key type (one of: %s)",
            t, keytype_all());
    return kt;
}

void
pb_set_eku(struct plan *pl, bool client_auth)
{
    pl->eku[pl->neku++] = "serverAuth";
    if (client_auth)
        pl->eku[pl->neku++] = "clientAuth";
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
        pb_fail(b, "E_MISSING", "names", "subject", NULL,
            "[names] needs subject, the certificate's CN");
        goto out;
    }
    if ((kt = pb_key_type(b)) == NULL)
        goto out;
    pl->key = kt->name;
    if (pb_list_add(b, &subject, p->names.subject, strlen(p->names.subject)) == -1 ||
        pb_list_split(b, p->names.sans, &sans) == -1)
        goto out;
    if (pb_check_list(b, "names", "subject", &subject, true) == -1 ||
        pb_check_list(b, "names", "sans", &sans, true) == -1 ||
        pb_check_cn(b, "names", "subject", &subject.v[0]) == -1)
        goto out;

    pb_make_subject(b, subject.v[0].norm, "subject", "R-N1");
    for (size_t i = 0; i < sans.n; i++)
        if (strcmp(sans.v[i].norm, subject.v[0].norm) == 0)
            listed = true;
    if (!listed)
        pb_san_add(b, subject.v[0].norm, "subject", "R-N1");
    for (size_t i = 0; i < sans.n; i++) {
        long j = pb_list_repeat(&sans, i);

        if (j >= 0) {
            pb_warn_repeat(b, "sans", &sans, i, j);
            continue;
        }
        pb_san_add(b, sans.v[i].norm, "sans", "R-N2");
    }
    pb_set_eku(pl, false);
    pb_warn_idn_all(b);
    rc = 0;
out:
    pb_list_free(&subject);
    pb_list_free(&sans);
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
        return err_nomem();
    if (p->has_names || p->names.subject != NULL || p->names.sans != NULL)
        build_names(&b);
    else if (edge_given(p))
        pb_build_edge(&b);
    else
        pb_fail(&b, "E_MISSING", NULL, "edge", NULL,
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
