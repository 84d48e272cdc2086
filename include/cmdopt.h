/*
 * cmdopt.h - what the cmd_*.c files share: the getopt_long prologue
 * (cmdopt_parse), the option ids and token options, usage errors, and small
 * output helpers.
 */
#ifndef P11E_CMDOPT_H
#define P11E_CMDOPT_H

#include <getopt.h>
#include <stdbool.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "token.h"

/*
 * Option ids, the .val of a struct option row.  cmdopt_parse() handles the
 * shared ones itself; a command numbers its own from CMDOPT_OWN, except an
 * option that also has a short form (plan's -p), whose id is its letter.
 */
enum cmdopt_id {
    CMDOPT_HELP = 'h',              /* --help (and -h): usage on stdout, exit 0 */
    CMDOPT_JSON = 'j',              /* --json: errors and results as JSON */
    CMDOPT_MODULE = 0x100,          /* --module PATH */
    CMDOPT_PIN_FILE,                /* --pin-file PATH */
    CMDOPT_ALLOW_FINAL_TRY,         /* --allow-final-pin-try */
    CMDOPT_TOKEN,                   /* --token URI */
    CMDOPT_PROFILE,                 /* --profile F (into spec->profile) */
    CMDOPT_OWN,                     /* a command's own ids start here */
};

/* getopt_long rows: --module, --pin-file, --allow-final-pin-try. */
#define CMDOPT_TOKEN_ROWS \
    { "module", required_argument, NULL, CMDOPT_MODULE }, \
    { "pin-file", required_argument, NULL, CMDOPT_PIN_FILE }, \
    { "allow-final-pin-try", no_argument, NULL, CMDOPT_ALLOW_FINAL_TRY }

#define CMDOPT_TOKEN_HELP \
    "  --module PATH          use this PKCS#11 library instead of the p11-kit registry\n" \
    "  --pin-file PATH        read the user PIN from PATH (trailing newline ignored)\n" \
    "  --allow-final-pin-try  log in even when one PIN attempt is left\n"

#define CMDOPT_PIN_HELP \
    "PIN sources, first found wins: the URI's pin-source=, the URI's pin-value=,\n" \
    "--pin-file, $P11ENROLL_PIN, a prompt on a terminal, the token's PIN pad.\n"


/* How cmdopt_parse() words a usage error. */
enum cmdopt_style {
    CMDOPT_SEE_HELP = 0,    /* "unknown or incomplete option --x (see 'p11enroll keygen --help')" */
    CMDOPT_QUOTED,          /* plan: "unknown option '--x'", "--profile needs a value" */
};

/*
 * One command's options, for cmdopt_parse().  The command owns the table
 * and the usage text; the parser owns the loop.
 */
struct cmdopt_spec {
    const struct option *longopts;  /* ends with a zero row */
    const char *shortopts;          /* NULL: "+h" (stop at the first operand; -h is --help) */
    const char *usage;              /* printed on stdout for --help */
    enum cmdopt_style style;
    struct token_opts *token;       /* gets --token and CMDOPT_TOKEN_ROWS; NULL: none */
    bool *json;                     /* set by --json (may be set before the call); NULL: none */
    const char **profile;           /* gets --profile (CMDOPT_PROFILE); NULL: none */
    /* Every other id, with its argument (NULL for a flag): 0, or -1 after reporting. */
    int (*on_opt)(int id, const char *arg, void *ctx);
    void *ctx;
};

/* cmdopt_parse() result when the command goes on (never an exit code). */
#define CMDOPT_RUN (-1)

/*
 * The getopt_long prologue every command shares: parse argv from argv[1]
 * (optind reset), handle the shared ids (see enum cmdopt_id), pass the rest
 * to spec->on_opt, and refuse an unknown or incomplete option and a stray
 * operand.  Returns CMDOPT_RUN to go on, or the exit code to return now:
 * EXIT_DONE after --help, or the usage error's code after reporting it once
 * (with *json, as the JSON error object on stdout).  Nothing to free.
 *
 * A command converts to it like this: its ids become an enum from
 * CMDOPT_OWN (shared ones: CMDOPT_TOKEN, CMDOPT_JSON, CMDOPT_HELP), its
 * variables move into a struct that `ctx` points to, its switch moves into
 * an on_opt callback, and its loop and the "unexpected argument" check
 * become
 *
 *     if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
 *         return rc;
 *
 * Checks that need all options (required ones, conflicts) stay after it.
 */
int cmdopt_parse(int argc, char **argv, const struct cmdopt_spec *spec);

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

struct token_key_flags;

/*
 * The usages beyond signing a token gave a key ("decrypt", "unwrap",
 * "derive"), as a JSON array (new reference, may be empty) and, when text
 * is not NULL, as ", "-separated text in text[cap] ("" when none).
 */
json_t *cmdopt_extra_usages(const struct token_key_flags *f, char *text, size_t cap);

/* One-line RFC 2253 subject of a certificate; caller frees. */
char *cmdopt_subject(X509 *cert);

/*
 * The certificates of --cert F (leaf first, maybe its chain) and --chain F
 * (intermediates; may be NULL), which must link.  0 and *leaf, *chain (may
 * be NULL; the caller frees both), or -1 after reporting (nothing to free).
 */
int cmdopt_read_certs(const char *certfile, const char *chainfile, X509 **leaf,
    STACK_OF(X509) **chain);

#endif
