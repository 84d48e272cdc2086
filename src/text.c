/*
 * text.c - text helpers: hex, sanitising untrusted text, wiping, redacting
 * PKCS#11 URIs, the origin of a URL.
 */
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

/* The one rule for untrusted text: printable ASCII stays, any other byte becomes '?'. */
static char
clean_byte(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f) ? (char)c : '?';
}

char *
sanitize(const char *in, size_t max)
{
    size_t n = in ? strnlen(in, max) : 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = clean_byte((unsigned char)in[i]);
    s[n] = '\0';
    return s;
}

void
sanitize_cat(char *buf, size_t size, const char *in)
{
    size_t n = strlen(buf);

    for (; in != NULL && *in && n + 1 < size; in++)
        buf[n++] = clean_byte((unsigned char)*in);
    buf[n] = '\0';
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
 * Is the attribute name s[0..n) (percent-encoded, any case, blanks anywhere
 * in it ignored as p11-kit ignores them) pin-value or pin-source?  1 yes,
 * 0 no, -1 when the name is malformed: a bad %-escape, or a decoded byte
 * that is not printable ASCII.
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
        if (c == ' ' || c == '\t')
            continue;           /* p11-kit drops white space anywhere in a URI */
        if (k + 1 < sizeof(name))
            name[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        else
            fits = false;       /* longer than any secret name */
    }
    name[k] = '\0';
    for (size_t i = 0; fits && i < sizeof(secret) / sizeof(secret[0]); i++)
        if (strcmp(name, secret[i]) == 0)
            return 1;
    return 0;
}

/*
 * Redact by parsing, not by pattern: every attribute after "pkcs11:" (path
 * and query alike, separated by ';', '?' or '&') is taken apart and its name
 * decoded, so a pin-value or pin-source anywhere, in any case, %-encoded or
 * with blanks inside, is found.  From the first secret on nothing more is
 * shown: p11-kit 0.24 does not always end a value where RFC 7512 says (after
 * an empty path attribute, "pkcs11:;pin-value=1;token=x" logs in with the
 * PIN "1;token=x", and '&' then separates path attributes too), so the safe
 * end of a secret is the end of the URI.  What cannot be parsed is not echoed.
 */
char *
uri_redact(const char *uri)
{
    size_t scheme = strlen(URI_SCHEME);
    const char *s, *end;
    char *out;

    if (uri == NULL)
        return strdup("");
    if (strncasecmp(uri, URI_SCHEME, scheme) != 0)
        return strdup(URI_UNPARSABLE);
    end = uri + strlen(uri);
    for (s = uri + scheme; s < end; ) {
        size_t len = strcspn(s, ";?&");
        const char *eq = memchr(s, '=', len);
        int secret = attr_is_secret(s, eq != NULL ? (size_t)(eq - s) : len);

        if (secret == -1)
            return strdup(URI_UNPARSABLE);
        if (secret && eq != NULL) {
            size_t keep = (size_t)(eq - uri) + 1;
            if ((out = malloc(keep + strlen(URI_HIDDEN) + 1)) == NULL)
                return strdup("(URI)");
            memcpy(out, uri, keep);
            strcpy(out + keep, URI_HIDDEN);
            return out;
        }
        s += len + (s[len] != '\0');
    }
    return strdup(uri);
}

/*
 * RFC 6454 origin of an http(s) URL, the way a browser compares them:
 * scheme and host lower-cased, the default port made explicit.  A URL with
 * user information ('@' before the path) has no usable origin.
 */
int
url_origin(const char *url, char *buf, size_t size)
{
    const char *host, *end, *colon, *port = NULL;
    bool https;
    size_t hlen;
    long pnum;

    if (url == NULL)
        return -1;
    if (strncasecmp(url, "https://", 8) == 0)
        https = true, host = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        https = false, host = url + 7;
    else
        return -1;
    end = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(end - host)) != NULL)
        return -1;
    colon = host[0] == '[' ? memchr(host, ']', (size_t)(end - host)) : host;
    if (colon == NULL)
        return -1;
    colon = memchr(colon, ':', (size_t)(end - colon));
    hlen = (size_t)((colon != NULL ? colon : end) - host);
    if (hlen == 0)
        return -1;
    if (colon != NULL) {
        char *stop;
        port = colon + 1;
        pnum = strtol(port, &stop, 10);
        if (stop != end || port == end || *port == '-' || *port == '+' || pnum < 1 ||
            pnum > 65535)
            return -1;
    } else {
        pnum = https ? 443 : 80;
    }
    if ((size_t)snprintf(buf, size, "%s://%.*s:%ld", https ? "https" : "http", (int)hlen, host,
            pnum) >= size)
        return -1;
    for (char *c = buf; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return 0;
}

const char *
list_next(const char *p, char *item, size_t size)
{
    size_t n;
    const char *s, *e;

    if (p == NULL || *p == '\0')
        return NULL;
    n = strcspn(p, ",");
    s = p;
    e = p + n;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    snprintf(item, size, "%.*s", (int)(e - s), s);
    return p + n + (p[n] == ',');
}

void
text_utc(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "?");
}
