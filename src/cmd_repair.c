/*
 * cmd_repair.c - p11enroll repair: show, then with --yes remove, the objects
 * a crash left on the profile's token that nothing can use or find again
 * (token_find_strays()), and finish an interrupted key generation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdopt.h"
#include "commands.h"
#include "enroll.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll repair --profile F [--yes] [--json]\n"
    "\n"
    "Find the objects on the profile's token that nothing can use or find again:\n"
    "an object whose class cannot be read, a key or certificate with neither a\n"
    "label nor an id, a public key or certificate with the profile's label whose\n"
    "private key is gone.  A kill -9 while a token without atomic writes\n"
    "(SoftHSM's file backend) creates or rewrites an object leaves such objects;\n"
    "`status` reports them.  Without --yes, repair only prints what it would\n"
    "remove and exits 0; with --yes it removes them.  Other objects are never\n"
    "touched (renew and enroll clean those they journalled).\n"
    "\n"
    "  --profile F            the enrollment profile (INI)\n"
    "  --yes                  remove what is listed\n"
    "  --json                 print the result as JSON\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done (or nothing to do), 1 token failure, 2 usage or profile error.\n";

enum { OPT_PROFILE = CMDOPT_OWN, OPT_YES };

static const struct option opts[] = {
    { "profile", required_argument, NULL, OPT_PROFILE },
    { "yes", no_argument, NULL, OPT_YES },
    { "json", no_argument, NULL, CMDOPT_JSON },
    { "help", no_argument, NULL, CMDOPT_HELP },
    CMDOPT_TOKEN_ROWS,
    { NULL, 0, NULL, 0 },
};

struct repair_args {
    const char *profile;
    bool yes;
};

static int
repair_opt(int id, const char *arg, void *ctx)
{
    struct repair_args *a = ctx;

    switch (id) {
    case OPT_PROFILE: a->profile = arg; break;
    case OPT_YES: a->yes = true; break;
    }
    return 0;
}

/* List (and with --yes destroy) the strays; their JSON into `out`.  0 or -1. */
static int
repair_strays(struct enroll *e, bool yes, json_t *out)
{
    struct token_stray *s = NULL;
    size_t n;
    int rc = 0;

    if (enroll_find_strays(e, NULL, &s, &n) == -1)
        return -1;
    if (n == 0)
        progress("token %s: no unreadable or unfindable objects", token_label(e->tok));
    for (size_t i = 0; i < n; i++) {
        bool gone = yes && token_destroy_stray(e->tok, &s[i]) == 0;
        if (yes && !gone)
            rc = -1;
        progress("%s: %s on token %s (%s)", gone ? "removed" : yes ? "could not remove" :
            "would remove", s[i].what, token_label(e->tok), s[i].why);
        json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "object", s[i].what,
            "why", s[i].why, "removed", gone));
    }
    if (n > 0 && !yes)
        progress("nothing removed: run again with --yes to remove %zu object(s)", n);
    free(s);
    return rc;
}

int
cmd_repair(int argc, char **argv)
{
    struct token_opts over = { 0 };
    struct repair_args a = { 0 };
    bool json = false;
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = usage, .token = &over, .json = &json,
        .on_opt = repair_opt, .ctx = &a,
    };
    struct enroll e = { 0 };
    json_t *strays = NULL;
    int rc, lockfd = -2;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    if (a.profile == NULL) {
        cmdopt_usage_error("--profile is required");
        return cmdopt_fail(json);
    }
    if (enroll_plan(a.profile, &e) == -1)
        goto fail;
    if ((strays = json_array()) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    /* Under the profile's lock: a running renew or enroll is never repaired under its feet. */
    if ((lockfd = enroll_lock(&e, a.profile)) == -1 || enroll_open(&e, &over) == -1)
        goto fail;
    if (a.yes && enroll_keygen_recover(&e) == -1)
        goto fail;
    if (repair_strays(&e, a.yes, strays) == -1)
        goto fail;
    if (json)
        cmdopt_print_json(json_pack("{s:b, s:O}", "removed", a.yes, "strays", strays));
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    json_decref(strays);
    enroll_unlock(lockfd);
    enroll_free(&e);
    return rc;
}
