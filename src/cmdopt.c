/*
 * cmdopt.c - what the cmd_*.c files share: the getopt_long prologue and
 * usage errors, the token options, and output helpers (JSON, times,
 * subjects, an installed certificate).
 */
#include "cmdopt.h"
#include "token.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>

#include "csr.h"
#include "enroll.h"
#include "util.h"

/* A CMDOPT_TOKEN_ROWS option or --token into *o; true when `c` was one. */
static bool
cmdopt_token(int c, const char *arg, struct token_opts *o)
{
    switch (c) {
    case CMDOPT_TOKEN: o->uri = arg; return true;
    case CMDOPT_MODULE: o->module_path = arg; return true;
    case CMDOPT_PIN_FILE: o->pin_file = arg; return true;
    case CMDOPT_ALLOW_FINAL_TRY: o->allow_final_try = true; return true;
    default: return false;
    }
}

/*
 * Report an option getopt_long refused (`c` is '?' or ':') or a stray
 * operand (`c` is 0) in the spec's wording.  Returns the exit code, after
 * the JSON error object when --json was seen.
 */
static int
refuse(const struct cmdopt_spec *spec, int c, const char *arg)
{
    bool json = spec->json != NULL && *spec->json;

    if (spec->style == CMDOPT_QUOTED) {
        if (c == ':')
            err_input("E_USAGE", "%s needs a value", arg);
        else
            err_input("E_USAGE", "%s '%s'", c == 0 ? "unexpected argument" : "unknown option",
                arg);
    } else if (c == 0) {
        cmdopt_usage_error("unexpected argument %s", arg);
    } else {
        cmdopt_usage_error("unknown or incomplete option %s", arg);
    }
    return cmdopt_fail(json);
}

int
cmdopt_parse(int argc, char **argv, const struct cmdopt_spec *spec)
{
    const char *shortopts = spec->shortopts != NULL ? spec->shortopts : "+h";
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, spec->longopts, NULL)) != -1) {
        if (c == CMDOPT_HELP) {
            fputs(spec->usage, stdout);
            return EXIT_DONE;
        }
        if (c == CMDOPT_JSON && spec->json != NULL) {
            *spec->json = true;
            continue;
        }
        if (spec->token != NULL && cmdopt_token(c, optarg, spec->token))
            continue;
        if (c == CMDOPT_PROFILE && spec->profile != NULL) {
            *spec->profile = optarg;
            continue;
        }
        if (c == '?' || c == ':' || spec->on_opt == NULL)
            return refuse(spec, c, argv[optind - 1]);
        if (spec->on_opt(c, optarg, spec->ctx) == -1)
            return cmdopt_fail(spec->json != NULL && *spec->json);
    }
    if (optind < argc)
        return refuse(spec, 0, argv[optind]);
    return CMDOPT_RUN;
}

int
cmdopt_usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_input("E_USAGE", "%s (see 'p11enroll %s --help')", msg, util_command());
    return EXIT_INPUT;
}

int
cmdopt_fail(bool json)
{
    if (json)
        err_print_json();
    return err_exit_code();
}

void
cmdopt_print_json(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(v);
}

json_t *
cmdopt_extra_usages(const struct token_key_flags *f, char *text, size_t cap)
{
    const struct { bool on; const char *name; } u[] = {
        { f->decrypt, "decrypt" }, { f->unwrap, "unwrap" }, { f->derive, "derive" },
    };
    json_t *a = json_array();
    size_t off = 0;

    if (text != NULL && cap > 0)
        text[0] = '\0';
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        if (!u[i].on)
            continue;
        json_array_append_new(a, json_string(u[i].name));
        if (text != NULL && off < cap)
            off += (size_t)snprintf(text + off, cap - off, "%s%s", off ? ", " : "", u[i].name);
    }
    return a;
}

json_t *
cmdopt_jstr(const char *s)
{
    json_t *j;
    char *clean;

    if (s == NULL)
        return json_null();
    if ((j = json_string(s)) != NULL)
        return j;
    clean = sanitize(s, 4096);
    j = json_string(clean ? clean : "?");
    free(clean);
    return j;
}

void
cmdopt_time(const ASN1_TIME *t, char *buf, size_t cap)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        snprintf(buf, cap, "unknown");
        return;
    }
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *
cmdopt_subject(X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL, *data;
    long n;

    if (b == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) >= 0)
        s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

void
cmdopt_print_installed(const struct enroll_result *res, const char *key_caption, json_t *extra,
    bool json)
{
    static const char *const names[3] = { "cert", "chain", "fullchain" };
    char notafter[32], *subject = cmdopt_subject(res->leaf), *serial = NULL;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(res->leaf), NULL);
    int chain_len = res->chain == NULL || sk_X509_num(res->chain) < 0 ? 0
                                                                      : sk_X509_num(res->chain);

    serial = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    cmdopt_time(X509_get0_notAfter(res->leaf), notafter, sizeof(notafter));
    if (json) {
        json_t *files = json_object();
        for (int i = 0; i < 3; i++)
            if (res->files[i] != NULL)
                json_object_set_new(files, names[i], json_string(res->files[i]));
        json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:i, s:o}",
            "subject", cmdopt_jstr(subject ? subject : ""), "serial", serial ? serial : "",
            "not_after", notafter, "key", res->key_uri, "chain_length", chain_len,
            "files", files);
        if (extra != NULL)
            json_object_update(o, extra);
        cmdopt_print_json(o);
    } else {
        printf("certificate  %s\n", subject ? subject : "");
        printf("serial       %s\n", serial ? serial : "");
        printf("expires      %s\n", notafter);
        printf("%-12s %s%s\n", key_caption, res->key_uri,
            res->key_created ? " (generated now)" : "");
        for (int i = 0; i < 3; i++)
            if (res->files[i] != NULL)
                printf("wrote        %s\n", res->files[i]);
    }
    json_decref(extra);
    free(subject);
    OPENSSL_free(serial);
}

int
cmdopt_read_certs(const char *certfile, const char *chainfile, X509 **leaf,
    STACK_OF(X509) **chain)
{
    X509 *extra = NULL;
    STACK_OF(X509) *more = NULL;
    int rc = -1;

    *leaf = NULL;
    *chain = NULL;
    if (cert_read(certfile, "--cert", leaf, chain) == -1)
        goto out;
    if (chainfile != NULL) {
        if (cert_read(chainfile, "--chain", &extra, &more) == -1)
            goto out;
        if (*chain == NULL && (*chain = sk_X509_new_null()) == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            goto out;
        }
        sk_X509_push(*chain, extra);
        extra = NULL; /* transferred */
        while (sk_X509_num(more) > 0)
            sk_X509_push(*chain, sk_X509_shift(more));
    }
    if (*chain != NULL && cert_check_chain(*leaf, *chain) == -1)
        goto out;
    rc = 0;
out:
    X509_free(extra);
    sk_X509_pop_free(more, X509_free);
    if (rc == -1) {
        X509_free(*leaf);
        sk_X509_pop_free(*chain, X509_free);
        *leaf = NULL;
        *chain = NULL;
    }
    return rc;
}
