/* cmd_import.c - p11enroll import: the issued certificate onto the token, next to its key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "cmdopt.h"
#include "commands.h"
#include "csr.h"
#include "enroll.h"
#include "renew_flow.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll import --token URI --cert F [--chain F] [--profile F] [--json]\n"
    "\n"
    "Store an issued certificate on the token as a CKO_CERTIFICATE with the CKA_ID\n"
    "and label of its key.  The key is found by public key: a certificate that\n"
    "matches no key on the token is refused and the token is left unchanged.\n"
    "Importing the same certificate again changes nothing.  --cert may hold the\n"
    "whole chain (leaf first); --chain adds intermediates, which must link.\n"
    "With --profile the certificate's names must equal the plan's, and the\n"
    "[output] cert, chain and fullchain files are written atomically; --token\n"
    "then defaults to the profile's [token] uri.\n"
    "With a [ca] type = manual profile whose renewal waits for the CA ('renew'\n"
    "exited 4), the certificate must be for the renewal's pending key and the\n"
    "plan, and importing it completes the renewal as 'renew --cert F' does:\n"
    "switch, [output] files, [hooks] deploy, old pair retired; output and exit\n"
    "codes are renew's.\n"
    "\n"
    "  --token URI            PKCS#11 URI of the token\n"
    "  --cert F               the certificate, PEM or DER\n"
    "  --chain F              intermediate certificates, PEM or DER\n"
    "  --profile F            check names against the plan, write [output] files\n"
    "  --json                 print the result as JSON\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done, 1 no matching key, names differ, chain that does not link,\n"
    "token or file failure, 2 usage error, unreadable or malformed certificate, a\n"
    "certificate that is expired, not yet valid, a CA or lacks a planned EKU.\n";

/* import's own options: the certificate and chain files. */
struct import_args {
    const char *certfile, *chainfile;
};
enum { OPT_CERT = CMDOPT_OWN, OPT_CHAIN };

static int
import_opt(int id, const char *arg, void *ctx)
{
    struct import_args *a = ctx;
    if (id == OPT_CERT)
        a->certfile = arg;
    else if (id == OPT_CHAIN)
        a->chainfile = arg;
    return 0;
}

int
cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "token", required_argument, NULL, CMDOPT_TOKEN },
        { "cert", required_argument, NULL, OPT_CERT },
        { "chain", required_argument, NULL, OPT_CHAIN },
        { "profile", required_argument, NULL, CMDOPT_PROFILE },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts to = { .login = true };
    struct import_args a = { 0 };
    const char *profile = NULL;
    bool json = false;
    struct enroll e = { 0 };
    struct enroll_result res = { 0 };
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    const struct cmdopt_spec spec = { .longopts = opts, .usage = usage, .token = &to,
        .json = &json, .profile = &profile, .on_opt = import_opt, .ctx = &a };
    int r, rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    const char *certfile = a.certfile, *chainfile = a.chainfile;
    if (certfile == NULL)
        cmdopt_usage_error("--cert is required");
    else if (to.uri == NULL && profile == NULL)
        cmdopt_usage_error("--token is required (or --profile with [token] uri)");
    else
        goto run;
    return cmdopt_fail(json);

run:
    /* Everything that can be checked without the token first. */
    if (profile != NULL && enroll_plan(profile, &e) == -1)
        goto fail;
    if (cmdopt_read_certs(certfile, chainfile, &leaf, &chain) == -1)
        goto fail;
    /* [ca] type = manual with a renewal waiting for the CA: this certificate completes it. */
    if (profile != NULL && (r = renew_in_progress(&e)) != 0) {
        if (r == -1)
            goto fail;
        enroll_free(&e);
        rc = renew_complete_cmd(profile, &to, leaf, chain, json);
        goto done;
    }
    /* Chain and names (exit 1, as install() reports them), then validity, CA, EKUs (exit 2). */
    if ((chain != NULL && cert_check_chain(leaf, chain) == -1) ||
        (e.plan != NULL && cert_check_names(leaf, e.plan) == -1) ||
        cert_check_usable(leaf, e.plan, CERT_FROM_FILE) == -1)
        goto fail;
    if (profile != NULL) {
        if (enroll_open(&e, &to) == -1)
            goto fail;
    } else if (token_open(&to, &e.tok) == -1) {
        goto fail;
    }
    if (enroll_install(&e, leaf, chain, &res) == -1)
        goto fail;

    cmdopt_print_installed(&res, "stored with", NULL, json);
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    enroll_result_clear(&res);
    enroll_free(&e);
    return rc;
}
