/* cmd_csr.c - p11enroll csr: the PKCS#10 request from a profile, signed on the token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmdopt.h"
#include "commands.h"
#include "csr.h"
#include "enroll.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll csr --profile F [--new-key] [--out F] [--der] [--json]\n"
    "\n"
    "Plan the certificate from the profile and build its PKCS#10 request for the\n"
    "key named by [key] label on [token] uri: subject (CN from the plan, then the\n"
    "[subject] attributes), SANs in plan order, keyUsage, extendedKeyUsage and the\n"
    "optional AD CS template ([csr] ms-template).  The request is signed on the\n"
    "token, then verified with the token's public key before it is written.\n"
    "\n"
    "  --profile F            the enrollment profile (INI)\n"
    "  --new-key              generate the key first ([key] type); refused if the label is taken\n"
    "  --out F                write the request to F (atomically); default: standard output\n"
    "  --der                  DER instead of PEM\n"
    "  --json                 print a JSON summary (with --out) or the request and summary\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done, 1 token, key or file failure, 2 usage or profile error.\n";

static json_t *
summary_json(struct enroll *e, X509_REQ *req)
{
    json_t *sans = json_array();
    char *subject = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;

    for (size_t i = 0; i < e->plan->nsans; i++)
        json_array_append_new(sans, json_string(e->plan->sans[i].name));
    if (b && X509_NAME_print_ex(b, X509_REQ_get_subject_name(req), 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) >= 0)
        subject = strndup(data, (size_t)n);
    BIO_free(b);
    json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:s, s:b}", "subject", subject ? subject : "",
        "sans", sans, "key", token_key_uri(e->key), "key_type", token_key_type_name(e->key),
        "spki_sha256", token_key_spki_sha256(e->key), "key_created", e->key_created);
    free(subject);
    return o;
}

static void
print_summary(FILE *f, json_t *s, const char *out)
{
    json_t *v;
    size_t i;
    fprintf(f, "subject      %s\n", json_string_value(json_object_get(s, "subject")));
    fprintf(f, "san         ");
    json_array_foreach(json_object_get(s, "sans"), i, v)
        fprintf(f, "%s %s", i ? "," : "", json_string_value(v));
    fprintf(f, "%s\n", json_array_size(json_object_get(s, "sans")) ? "" : " (none)");
    fprintf(f, "key          %s\n", json_string_value(json_object_get(s, "key")));
    fprintf(f, "spki-sha256  %s\n", json_string_value(json_object_get(s, "spki_sha256")));
    if (out != NULL)
        fprintf(f, "csr          %s\n", out);
}

enum { OPT_PROFILE = CMDOPT_OWN, OPT_NEW_KEY, OPT_OUT, OPT_DER };

static const struct option opts[] = {
    { "profile", required_argument, NULL, OPT_PROFILE },
    { "new-key", no_argument, NULL, OPT_NEW_KEY },
    { "out", required_argument, NULL, OPT_OUT },
    { "der", no_argument, NULL, OPT_DER },
    { "json", no_argument, NULL, CMDOPT_JSON },
    { "help", no_argument, NULL, CMDOPT_HELP },
    CMDOPT_TOKEN_ROWS,
    { NULL, 0, NULL, 0 },
};

struct csr_args {
    const char *profile, *out;
    bool new_key, der;
};

/* cmdopt_parse() callback for csr's own options. */
static int
csr_opt(int id, const char *arg, void *ctx)
{
    struct csr_args *a = ctx;

    switch (id) {
    case OPT_PROFILE: a->profile = arg; break;
    case OPT_NEW_KEY: a->new_key = true; break;
    case OPT_OUT: a->out = arg; break;
    case OPT_DER: a->der = true; break;
    }
    return 0;
}

int
cmd_csr(int argc, char **argv)
{
    struct token_opts over = { 0 };
    struct csr_args a = { 0 };
    bool json = false;
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = usage, .token = &over, .json = &json,
        .on_opt = csr_opt, .ctx = &a,
    };
    struct enroll e = { 0 };
    X509_REQ *req = NULL;
    unsigned char *buf = NULL;
    size_t len;
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    if (a.profile == NULL) {
        cmdopt_usage_error("--profile is required");
        return cmdopt_fail(json);
    }
    if (a.der && a.out == NULL && json) {
        cmdopt_usage_error("--der --json needs --out: JSON carries a PEM request only");
        return cmdopt_fail(json);
    }
    if (a.der && a.out == NULL && isatty(STDOUT_FILENO)) {
        cmdopt_usage_error("--der without --out would write binary to the terminal");
        return cmdopt_fail(json);
    }
    if (enroll_plan(a.profile, &e) == -1 || enroll_open(&e, &over) == -1 ||
        enroll_key(&e, a.new_key ? KEY_NEW : KEY_EXISTING) == -1)
        goto fail;
    if (enroll_csr(&e, &req) == -1 || csr_encode(req, a.der, &buf, &len) == -1 ||
        (a.out != NULL && write_file_atomic(a.out, buf, len, 0644) == -1)) {
        /* A key this run made for a request that was never written goes again. */
        if (e.key_created && token_destroy_key(e.tok, e.key) > 0)
            warnmsg("the key generated for this request was destroyed again");
        goto fail;
    }
    json_t *s = summary_json(&e, req);
    if (json) {
        if (a.out != NULL)
            json_object_set_new(s, "csr_file", json_string(a.out));
        else if (!a.der)
            json_object_set_new(s, "csr", json_stringn((char *)buf, len));
        cmdopt_print_json(s);
    } else {
        if (a.out == NULL)
            fwrite(buf, 1, len, stdout);
        print_summary(a.out ? stdout : stderr, s, a.out);
        json_decref(s);
    }
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    free(buf);
    X509_REQ_free(req);
    enroll_free(&e);
    return rc;
}
