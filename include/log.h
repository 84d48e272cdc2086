/*
 * log.h - error reporting, exit codes, progress and verbose notes.
 *
 * Convention: functions return 0 on success and -1 on failure.  The failing
 * function reports once, with err_input() (bad input: exit 2) or err_runtime()
 * (token, CA, network or file system: exit 1).  The command then returns
 * err_exit_code(), which maps the recorded class onto the exit code.
 */
#ifndef P11E_LOG_H
#define P11E_LOG_H

#include <stdbool.h>

enum {
    EXIT_DONE = 0,      /* done */
    EXIT_RUNTIME = 1,   /* runtime failure: token, PIN, CA, network, files */
    EXIT_INPUT = 2,     /* usage or input error; nothing changed */
    EXIT_NOT_DUE = 3,   /* renew: not due, nothing changed */
    EXIT_WAITING = 4,   /* renew, [ca] type = manual: waiting for the CA's certificate */
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
/*
 * While held, errors are recorded but not printed: for a caller that turns
 * a failure into one warning of its own (err_last_message() gives the cause).
 */
void err_hold(bool hold);
/* The last error's message ("" when none); valid until the next report. */
const char *err_last_message(void);
/* Forget the last error (used where a failure is handled and not fatal). */
void err_clear(void);
/* Report "out of memory" (E_NOMEM, exit 1) and return -1, for allocation failures. */
int err_nomem(void);
/* Print {"error": {"code": ..., "message": ...}} on stdout for --json. */
void err_print_json(void);
/* Record a pre-built JSON error object (planner errors carry more keys). */
void err_set_json(const char *json_text);

/* Informational output on stderr: progress (hidden by -q) and verbose notes (-v). */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
