/*
 * cmdopt.h - the options every token-using command shares, and small output
 * helpers for the cmd_*.c files.
 */
#ifndef P11E_CMDOPT_H
#define P11E_CMDOPT_H

#include <getopt.h>
#include <stdbool.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "token.h"

/* getopt_long rows: --module, --pin-file, --allow-final-pin-try. */
#define CMDOPT_TOKEN_ROWS \
    { "module", required_argument, NULL, 0x100 }, \
    { "pin-file", required_argument, NULL, 0x101 }, \
    { "allow-final-pin-try", no_argument, NULL, 0x102 }

#define CMDOPT_TOKEN_HELP \
    "  --module PATH          use this PKCS#11 library instead of the p11-kit registry\n" \
    "  --pin-file PATH        read the user PIN from PATH (trailing newline ignored)\n" \
    "  --allow-final-pin-try  log in even when one PIN attempt is left\n"

#define CMDOPT_PIN_HELP \
    "PIN sources, first found wins: the URI's pin-source=, the URI's pin-value=,\n" \
    "--pin-file, $P11ENROLL_PIN, a prompt on a terminal, the token's PIN pad.\n"

/* Handle a CMDOPT_TOKEN_ROWS option; true when `c` was one of them. */
bool cmdopt_token(int c, const char *arg, struct token_opts *o);

/* Report an unknown option / stray argument (exit 2) with a pointer to --help. */
int cmdopt_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Finish a command: with --json print the error object, return the exit code. */
int cmdopt_fail(bool json);

/* Print a JSON value on stdout (indented), consuming the reference. */
void cmdopt_print_json(json_t *v);

/*
 * A JSON string for text that came from a token or a file: as it is when
 * it is valid UTF-8, else with every byte outside printable ASCII as '?'.
 * Never NULL for non-NULL input.
 */
json_t *cmdopt_jstr(const char *s);

/* RFC 3339 UTC for an ASN1_TIME ("2026-11-29T10:00:00Z"); buf >= 32 bytes. */
void cmdopt_time(const ASN1_TIME *t, char *buf, size_t cap);

struct enroll_result;

/*
 * Print an installed certificate (enroll.h): subject, serial, notAfter, the
 * key it is stored with (shown as `key_caption`), the [output] files
 * written, and the chain length.  With `json`, one object, to which
 * `extra` (consumed, may be NULL) is added.
 */
void cmdopt_print_installed(const struct enroll_result *res, const char *key_caption,
    json_t *extra, bool json);

/* One-line RFC 2253 subject of a certificate; caller frees. */
char *cmdopt_subject(X509 *cert);

#endif
