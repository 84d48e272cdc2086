/* text.c - text helpers: hex, sanitising untrusted text, wiping, redacting PKCS#11 URIs. */
#include "text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


char *
hex_encode(const uint8_t *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[buf[i] >> 4];
        s[2 * i + 1] = digits[buf[i] & 0xf];
    }
    s[2 * len] = '\0';
    return s;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
hex_decode(const char *hex, uint8_t **out, size_t *outlen)
{
    size_t n = 0, cap = strlen(hex) / 2 + 1;
    uint8_t *buf = malloc(cap);
    int hi = -1;

    *out = NULL;
    *outlen = 0;
    if (buf == NULL)
        return -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ':' && hi < 0)
            continue;
        int v = hexval(*p);
        if (v < 0)
            goto fail;
        if (hi < 0) {
            hi = v;
        } else {
            buf[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0 || n == 0)
        goto fail;
    *out = buf;
    *outlen = n;
    return 0;
fail:
    free(buf);
    return -1;
}

char *
sanitize(const char *in, size_t max)
{
    size_t n = in ? strnlen(in, max) : 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    s[n] = '\0';
    return s;
}

void
wipe(void *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
}

#define URI_SCHEME "pkcs11:"
#define URI_HIDDEN "(hidden)"
#define URI_UNPARSABLE "(unparsable URI hidden)"

/*
 * Is the attribute name s[0..n) (percent-encoded, any case, blanks around
 * it ignored) pin-value or pin-source?  1 yes, 0 no, -1 when the name is
 * malformed: a bad %-escape, or a decoded byte that is not printable ASCII.
 */
static int
attr_is_secret(const char *s, size_t n)
{
    static const char *const secret[] = { "pin-value", "pin-source" };
    char name[16];
    size_t k = 0;
    bool fits = true;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c < 0x20 || c >= 0x7f)
            return -1;
        if ((c == ' ' || c == '\t') && k == 0)
            continue;           /* leading blank (trailing ones: below) */
        if (k + 1 < sizeof(name))
            name[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        else
            fits = false;       /* longer than any secret name */
    }
    while (k > 0 && (name[k - 1] == ' ' || name[k - 1] == '\t'))
        k--;
    name[k] = '\0';
    for (size_t i = 0; fits && i < sizeof(secret) / sizeof(secret[0]); i++)
        if (strcmp(name, secret[i]) == 0)
            return 1;
    return 0;
}

/*
 * Copy the attributes of s[0..n), separated by `sep`, to *o: a secret
 * attribute's value becomes "(hidden)".  0, or -1 when a name is malformed.
 */
static int
redact_attrs(const char *s, size_t n, char sep, char **o)
{
    const char *end = s + n;

    while (s < end) {
        const char *next = memchr(s, sep, (size_t)(end - s));
        const char *eq;
        size_t len = (next != NULL ? next : end) - s;
        int secret;

        eq = memchr(s, '=', len);
        secret = attr_is_secret(s, eq != NULL ? (size_t)(eq - s) : len);
        if (secret == -1)
            return -1;
        if (secret && eq != NULL) {
            memcpy(*o, s, (size_t)(eq - s) + 1);
            *o += eq - s + 1;
            memcpy(*o, URI_HIDDEN, strlen(URI_HIDDEN));
            *o += strlen(URI_HIDDEN);
        } else {
            memcpy(*o, s, len);
            *o += len;
        }
        if (next == NULL)
            break;
        *(*o)++ = sep;
        s = next + 1;
    }
    return 0;
}

/*
 * RFC 7512 by parsing, not by pattern: the path attributes (after "pkcs11:",
 * separated by ';') and the query attributes (after '?', separated by '&')
 * are taken apart and each name decoded, so a pin-value anywhere, in any
 * case or %-encoded, is hidden.  What cannot be parsed is not echoed.
 */
char *
uri_redact(const char *uri)
{
    size_t len = uri ? strlen(uri) : 0, scheme = strlen(URI_SCHEME);
    const char *path, *query;
    char *out, *o;

    if (uri == NULL)
        return strdup("");
    if (strncasecmp(uri, URI_SCHEME, scheme) != 0)
        return strdup(URI_UNPARSABLE);
    /* Each hidden value grows by at most strlen("(hidden)") over its name. */
    if ((out = malloc(2 * len + 16)) == NULL)
        return strdup("(URI)");
    memcpy(out, uri, scheme);
    o = out + scheme;
    path = uri + scheme;
    query = strchr(path, '?');
    if (redact_attrs(path, query != NULL ? (size_t)(query - path) : strlen(path), ';', &o) == -1)
        goto unparsable;
    if (query != NULL) {
        *o++ = '?';
        if (redact_attrs(query + 1, strlen(query + 1), '&', &o) == -1)
            goto unparsable;
    }
    *o = '\0';
    return out;
unparsable:
    free(out);
    return strdup(URI_UNPARSABLE);
}

void
text_utc(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
}
