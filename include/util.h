/*
 * util.h - error reporting, exit codes, small helpers shared by every module.
 *
 * Convention: functions return 0 on success and -1 on failure.  The failing
 * function reports once, with err_input() (bad input: exit 2) or err_runtime()
 * (token, CA, network or file system: exit 1).  The command then returns
 * err_exit_code(), which maps the recorded class onto the exit code.
 */
#ifndef P11E_UTIL_H
#define P11E_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    EXIT_DONE = 0,      /* done */
    EXIT_RUNTIME = 1,   /* runtime failure: token, PIN, CA, network, files */
    EXIT_INPUT = 2,     /* usage or input error; nothing changed */
    EXIT_NOT_DUE = 3,   /* renew: not due, nothing changed */
};

/* Name of the running command ("keygen"), used as the message prefix. */
void util_set_command(const char *name);
const char *util_command(void);

/* Verbosity: -1 quiet (-q), 0 normal, 1+ verbose (-v). */
void util_set_verbosity(int level);
int util_verbosity(void);

/*
 * Report an error: "p11enroll: <command>: <message>" on stderr.  `code` is
 * a short machine-readable identifier (e.g. "E_PIN_INCORRECT") used in
 * --json error objects; may be NULL (then "E_INPUT"/"E_RUNTIME").  The last
 * error is remembered for err_exit_code() and err_print_json().
 */
void err_input(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void err_runtime(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Exit code for the last reported error: 2 for input, 1 otherwise. */
int err_exit_code(void);
/* Forget the last error (used where a failure is handled and not fatal). */
void err_clear(void);
/* Print {"error": {"code": ..., "message": ...}} on stdout for --json. */
void err_print_json(void);
/* Record a pre-built JSON error object (planner errors carry more keys). */
void err_set_json(const char *json_text);

/* Informational output on stderr: progress (hidden by -q) and verbose notes (-v). */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lower-case hex of `len` bytes into a new string (caller frees). */
char *hex_encode(const uint8_t *buf, size_t len);
/* Parse hex (even length, optional ':' separators).  0 or -1; *out freed by caller. */
int hex_decode(const char *hex, uint8_t **out, size_t *outlen);

/*
 * Read a whole file of at most `cap` bytes.  Returns 0 and a NUL-terminated
 * buffer (caller frees), or -1 with errno set (EFBIG when over the cap).
 * Does not report.
 */
int read_file_capped(const char *path, size_t cap, uint8_t **out, size_t *outlen);
/*
 * The same, also filling *st (may be NULL) from the descriptor that was
 * read.  Only regular files are read (a FIFO or device gives EINVAL,
 * a directory EISDIR), so no input can hang the program.
 */
struct stat;
int read_file_capped_st(const char *path, size_t cap, uint8_t **out, size_t *outlen,
    struct stat *st);

/*
 * A copy of a PKCS#11 URI fit for messages: the values of pin-value= and
 * pin-source= are replaced by "(hidden)".  Never NULL (caller frees).
 */
char *uri_redact(const char *uri);

/*
 * Write `len` bytes to `path` atomically: a temp file in the same directory,
 * fsync, chmod `mode`, rename; the temp file is removed on any error and
 * `path` is then left as it was.  Reports with err_runtime() on failure.
 */
int write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode);

/*
 * Can `path` be written by write_file_atomic()?  Its directory must exist
 * and be writable, and `path` must not be a directory.  `what` names the
 * input in the message ("[output] cert", "--pubout").  0, or -1 after
 * reporting (exit 1).  Called before anything changes.
 */
int file_writable(const char *path, const char *what);

/*
 * The two halves of write_file_atomic(), for writing several files all or
 * nothing: file_prepare() writes, fsyncs and chmods a temp file next to
 * `path` (refusing a `path` that is a directory) and returns its name in
 * *tmp; file_commit() renames it into place (freeing tmp; on failure the
 * temp file is removed); file_abort() removes and frees it (NULL is fine).
 */
int file_prepare(const char *path, const void *buf, size_t len, unsigned mode, char **tmp);
int file_commit(char *tmp, const char *path);
void file_abort(char *tmp);

/*
 * Copy `in` replacing bytes outside printable ASCII with '?' and capping the
 * length at `max` (for text that came from a server or a token).  Caller frees.
 */
char *sanitize(const char *in, size_t max);

/* Wipe memory the compiler may not optimise away. */
void wipe(void *p, size_t len);

#endif
