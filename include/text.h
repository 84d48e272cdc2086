/*
 * text.h - text helpers: hex, sanitising untrusted text, wiping memory,
 * PKCS#11 URIs fit for messages, the origin of a URL.
 */
#ifndef P11E_TEXT_H
#define P11E_TEXT_H

#include <stddef.h>
#include <time.h>
#include <stdint.h>

/* Lower-case hex of `len` bytes into a new string (caller frees). */
char *hex_encode(const uint8_t *buf, size_t len);
/* Parse hex (even length, optional ':' separators).  0 or -1; *out freed by caller. */
int hex_decode(const char *hex, uint8_t **out, size_t *outlen);

/*
 * A copy of a PKCS#11 URI fit for messages.  The URI is parsed (RFC 7512:
 * path attributes after "pkcs11:" separated by ';', query attributes after
 * '?' separated by '&'; names %-decoded, any case) and the values of
 * pin-value and pin-source are replaced by "(hidden)".  A string that is not
 * a pkcs11: URI, or whose attribute names cannot be decoded, is not echoed:
 * the copy is then "(unparsable URI hidden)".  NULL gives "".  New string
 * (caller frees); NULL only when memory ran out.
 */
char *uri_redact(const char *uri);

/* `t` as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf, or "?" when it cannot be shown. */
void text_utc(time_t t, char *buf, size_t cap);

/*
 * Copy `in` replacing bytes outside printable ASCII with '?' and capping the
 * length at `max`.  The one sanitiser: every byte from outside (CA, server
 * certificate, token, file) goes through it before it is printed.  Caller frees.
 */
char *sanitize(const char *in, size_t max);
/* The same rule, appending `in` to the string in buf[size] (truncated to fit). */
void sanitize_cat(char *buf, size_t size, const char *in);

/*
 * The origin of an http(s) URL, "scheme://host:port" (scheme and host
 * lower-cased, default port explicit) in buf[size].  0, or -1 when `url`
 * is not an http(s) URL with a host (or carries user information).
 */
int url_origin(const char *url, char *buf, size_t size);

/*
 * Walk a comma-separated list: the item at p, blanks trimmed, into
 * item[size] (cut to fit); returns where the next item starts, NULL when
 * p is NULL or at the end.  for (p = list; (p = list_next(p, it, n)); ).
 */
const char *list_next(const char *p, char *item, size_t size);

/* Wipe memory the compiler may not optimise away. */
void wipe(void *p, size_t len);

#endif
