/* cmd_enroll.c - p11enroll enroll: plan, key, CSR, CA, import, files, hook. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_enroll.h"
#include "cmdopt.h"
#include "commands.h"
#include "csr.h"
#include "enroll.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll enroll --profile F [--json]\n"
    "\n"
    "The whole path for the profile: plan the names, find the key [key] label on\n"
    "the token (generating it when missing), build the CSR and sign it on the\n"
    "token, then by [ca] type:\n"
    "  manual  write the CSR to [csr] out (default: <state-dir>/<label>.csr) and say\n"
    "          what to do next: submit it to the CA, then 'p11enroll import'.\n"
    "  acme    order the certificate from the ACME CA at [ca] directory, answer\n"
    "          its challenges, store the certificate on the token next to its key,\n"
    "          write the [output] files and run [hooks] deploy once.\n"
    "\n"
    "  --profile F            the enrollment profile (INI)\n"
    "  --json                 print the result as JSON\n"
    CMDOPT_TOKEN_HELP
    "  -q (before the command) hides progress; -v adds detail.\n"
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done, 1 token, CA, network or file failure, 2 usage or profile error.\n";

static int
enroll_manual(struct enroll *e, bool json)
{
    char *path = NULL;
    int rc = -1;

    if ((path = enroll_csr_path(e)) == NULL)
        return -1;
    if (enroll_write_csr(e, path) == -1)
        goto out;
    if (json) {
        json_t *sans = json_array();
        for (size_t i = 0; i < e->plan->nsans; i++)
            json_array_append_new(sans, json_string(e->plan->sans[i].name));
        cmdopt_print_json(json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:s}", "ca", "manual",
            "csr_file", path, "subject", e->plan->subject, "sans", sans,
            "key", token_key_uri(e->key), "key_created", e->key_created,
            "next", "submit the CSR to the CA, then run p11enroll import"));
    } else {
        printf("wrote the certificate request to %s\n", path);
        printf("  subject  %s\n  key      %s%s\n", e->plan->subject, token_key_uri(e->key),
            e->key_created ? " (generated now)" : "");
        printf("\nNext:\n  1. submit %s to your CA%s\n", path,
            e->prof->csr.ms_template ? " (AD CS template in the request)" : "");
        printf("  2. p11enroll import --profile %s --cert ISSUED.pem [--chain CHAIN.pem]\n",
            e->prof->name);
    }
    rc = 0;
out:
    free(path);
    return rc;
}

/* ACME: order and install, print the result, then run [hooks] deploy. */
static int
enroll_acme(struct enroll *e, bool json)
{
    struct enroll_result res = { 0 };
    json_t *sans;
    int rc = -1;

    if (acme_enroll_run(e, NULL, &res) == -1)
        goto out;
    sans = json_array();
    for (size_t i = 0; i < e->plan->nsans; i++)
        json_array_append_new(sans, json_string(e->plan->sans[i].name));
    cmdopt_print_installed(&res, "key", json_pack("{s:s, s:o, s:b}", "ca", "acme", "sans", sans,
        "key_created", res.key_created), json);
    if (enroll_deploy_hook(e) == -1)
        goto out;
    rc = 0;
out:
    enroll_result_clear(&res);
    return rc;
}

int
cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = {
        { "profile", required_argument, NULL, CMDOPT_PROFILE },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts over = { 0 };
    const char *profile = NULL;
    bool json = false;
    struct enroll e = { 0 };
    const struct cmdopt_spec spec = { .longopts = opts, .usage = usage, .token = &over,
        .json = &json, .profile = &profile };
    int rc, lockfd = -2;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    if (profile == NULL) {
        cmdopt_usage_error("--profile is required");
        return cmdopt_fail(json);
    }
    if (enroll_plan(profile, &e) == -1)
        goto fail;
    bool manual = e.prof->ca.type != NULL && strcmp(e.prof->ca.type, "manual") == 0;
    if (!manual && acme_enroll_check(&e) == -1)
        goto fail;
    if ((lockfd = enroll_lock(&e, profile)) == -1 || enroll_open(&e, &over) == -1 ||
        enroll_key(&e, KEY_ANY) == -1)
        goto fail;
    if (manual ? enroll_manual(&e, json) == -1 : enroll_acme(&e, json) == -1) {
        /*
         * Offline: a key made for a request that was never written goes again.
         * ACME keeps it: a rerun resumes the order, which is bound to the key.
         */
        if (manual && e.key_created && token_destroy_key(e.tok, e.key) > 0)
            warnmsg("the key generated for this request was destroyed again");
        goto fail;
    }
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    enroll_free(&e);
    enroll_unlock(lockfd);
    return rc;
}
