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
 * A file that others can read, or group or others can write, is refused
 * (see pin_file_mode_ok(); input error, exit 2).  0 or -1 (reported).
 * *out is freed by the caller with pin_free().
 */
int pin_from_file(const char *path, const char *what, struct pin **out);

/*
 * The mode rule for PIN files (st_mode bits; the file type is ignored):
 * 0 when the file is private enough (0600, 0400, 0640, 0440: owner, plus
 * reading by a service group), -1 when others can read it or group or
 * others can write it.  Pure; reports nothing.
 */
int pin_file_mode_ok(unsigned mode);

/* A copy of a literal value (URI pin-value, P11ENROLL_PIN). */
int pin_from_value(const char *value, const char *what, struct pin **out);

/*
 * Prompt on the terminal without echo.  Returns 0 and *out, 1 when stdin is
 * not a terminal (nothing asked), -1 after reporting.
 */
int pin_prompt(const char *prompt, struct pin **out);

#endif
