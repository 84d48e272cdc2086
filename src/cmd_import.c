/* cmd_import.c - p11enroll import: the issued certificate onto the token, next to its key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "cmdopt.h"
#include "commands.h"
#include "csr.h"
#include "enroll.h"
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

int
cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "token", required_argument, NULL, 't' },
        { "cert", required_argument, NULL, 'c' },
        { "chain", required_argument, NULL, 'C' },
        { "profile", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts to = { .login = true };
    const char *certfile = NULL, *chainfile = NULL, *profile = NULL;
    bool json = false;
    struct enroll e = { 0 };
    struct enroll_result res = { 0 };
    X509 *leaf = NULL, *extra = NULL;
    STACK_OF(X509) *chain = NULL, *more = NULL;
    int c, rc = EXIT_DONE;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (cmdopt_token(c, optarg, &to))
            continue;
        switch (c) {
        case 't': to.uri = optarg; break;
        case 'c': certfile = optarg; break;
        case 'C': chainfile = optarg; break;
        case 'p': profile = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_DONE;
        default:
            cmdopt_usage_error("unknown or incomplete option %s", argv[optind - 1]);
            return cmdopt_fail(json);
        }
    }
    if (optind < argc)
        cmdopt_usage_error("unexpected argument %s", argv[optind]);
    else if (certfile == NULL)
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
    if (cert_read(certfile, "--cert", &leaf, &chain) == -1)
        goto fail;
    if (chainfile != NULL) {
        if (cert_read(chainfile, "--chain", &extra, &more) == -1)
            goto fail;
        if (chain == NULL && (chain = sk_X509_new_null()) == NULL)
            goto fail;
        sk_X509_push(chain, extra);
        extra = NULL; /* transferred */
        while (sk_X509_num(more) > 0)
            sk_X509_push(chain, sk_X509_shift(more));
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
    X509_free(extra);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(more, X509_free);
    enroll_result_clear(&res);
    enroll_free(&e);
    return rc;
}
