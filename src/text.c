/* text.c - text helpers: hex, sanitising untrusted text, wiping, redacting PKCS#11 URIs. */
#include "text.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>


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

char *
uri_redact(const char *uri)
{
    static const char *const secret[] = { "pin-value=", "pin-source=" };
    size_t len = uri ? strlen(uri) : 0;
    char *out = malloc(2 * len + 16), *o = out;
    const char *p = uri ? uri : "";

    if (out == NULL)
        return strdup("(URI)");
    while (*p) {
        bool hit = false;
        for (size_t i = 0; i < 2 && !hit; i++) {
            size_t n = strlen(secret[i]);
            /* Only at an attribute boundary: start of query or after ';' '&' '?'. */
            if (strncmp(p, secret[i], n) == 0 && p > uri && strchr("?;&", p[-1])) {
                memcpy(o, p, n);
                o += n;
                memcpy(o, "(hidden)", 8);
                o += 8;
                p += n;
                while (*p && *p != ';' && *p != '&')
                    p++;
                hit = true;
            }
        }
        if (!hit)
            *o++ = *p++;
    }
    *o = '\0';
    return out;
}
