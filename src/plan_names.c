/*
 * plan_names.c - the planner's names: normalising and checking one DNS name
 * (edge-san-rules.md §3), lists of names as written in a profile, and how
 * names relate (repeats, at or below a domain, onmicrosoft.com).
 */
#include "plan.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

#define NAME_MAX_LEN 253    /* DNS name without the root dot */
#define LABEL_MAX 63

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

void
pb_list_free(struct list *l)
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
int
pb_list_add(struct builder *b, struct list *l, const char *s, size_t len)
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
int
pb_list_split(struct builder *b, const char *v, struct list *l)
{
    const char *comma;

    if (v == NULL)
        return 0;
    for (;;) {
        comma = strchr(v, ',');
        if (pb_list_add(b, l, v, comma != NULL ? (size_t)(comma - v) : strlen(v)) == -1)
            return -1;
        if (comma == NULL)
            return 0;
        v = comma + 1;
    }
}

/* Validate one name of `key`; reports the first failure. */
int
pb_check_item(struct builder *b, const char *section, const char *key,
    const struct item *it, bool wildcard)
{
    char why[200];
    const char *code = plan_check_name(it->norm, wildcard, why, sizeof(why));

    if (code == NULL)
        return 0;
    return pb_fail(b, code, section, key, it->raw, "%s = '%s': %s", key, it->raw, why);
}

int
pb_check_list(struct builder *b, const char *section, const char *key,
    const struct list *l, bool wildcard)
{
    for (size_t i = 0; i < l->n; i++)
        if (pb_check_item(b, section, key, &l->v[i], wildcard) == -1)
            return -1;
    return 0;
}

bool
pb_is_onmicrosoft(const char *d)
{
    size_t n = strlen(d), m = strlen("onmicrosoft.com");

    return strcmp(d, "onmicrosoft.com") == 0 ||
        (n > m && d[n - m - 1] == '.' && strcmp(d + n - m, "onmicrosoft.com") == 0);
}

/* d equals base or lies below it. */
bool
pb_at_or_below(const char *d, const char *base)
{
    size_t n = strlen(d), m = strlen(base);

    return strcmp(d, base) == 0 ||
        (n > m && d[n - m - 1] == '.' && strcmp(d + n - m, base) == 0);
}

/*
 * Index of an earlier entry of `l` with the same normal form as entry i, or
 * -1: an input name repeated (possibly in another letter case).
 */
long
pb_list_repeat(const struct list *l, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(l->v[j].norm, l->v[i].norm) == 0)
            return (long)j;
    return -1;
}
