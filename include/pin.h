/*
 * pin.h - a PIN as a type that wipes itself, and the PIN sources of cli.md.
 */
#ifndef P11E_PIN_H
#define P11E_PIN_H

#include <stdbool.h>
#include <stddef.h>

struct pin {
    char *value;       /* NUL-terminated; may be NULL for "use the PIN pad" */
    size_t len;
    const char *source; /* where it came from, for messages ("--pin-file /x") */
};

/* Wipe and free.  Accepts NULL. */
void pin_free(struct pin *pin);

/*
 * Read a PIN file: at most 4 KiB, one trailing "\n" or "\r\n" removed, a
 * "file:" prefix accepted (RFC 7512 pin-source).  An empty PIN is an error.
 * A file readable by group or others gets a warning.  0 or -1 (reported).
 */
int pin_from_file(const char *path, const char *what, struct pin **out);

/* A copy of a literal value (URI pin-value, P11ENROLL_PIN). */
int pin_from_value(const char *value, const char *what, struct pin **out);

/*
 * Prompt on the terminal without echo.  Returns 0 and *out, 1 when stdin is
 * not a terminal (nothing asked), -1 after reporting.
 */
int pin_prompt(const char *prompt, struct pin **out);

#endif
