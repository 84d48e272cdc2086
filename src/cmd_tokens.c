/* cmd_tokens.c - p11enroll tokens: modules, tokens and what they can generate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "cmdopt.h"
#include "commands.h"
#include "token_list.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll tokens [--module PATH] [--json]\n"
    "\n"
    "List every token of every PKCS#11 module registered with p11-kit (or of the\n"
    "one --module library): its URI, label, manufacturer, model, serial, flags\n"
    "(initialised, login required, PIN pad, PIN counters), the key types it can\n"
    "generate, and the known token family with its notes (tokens/ profiles).\n"
    "Modules that fail to start are skipped (shown with -v).  No login.\n"
    "\n"
    "  --module PATH          use this PKCS#11 library instead of the p11-kit registry\n"
    "  --json                 print a JSON object\n"
    "\n"
    "Exit codes: 0 done, 1 module failure, 2 usage error.\n";

static const struct { unsigned long flag; const char *name; } flag_names[] = {
    { CKF_TOKEN_INITIALIZED, "initialized" },
    { CKF_LOGIN_REQUIRED, "login_required" },
    { CKF_PROTECTED_AUTHENTICATION_PATH, "pin_pad" },
    { CKF_USER_PIN_INITIALIZED, "user_pin_initialized" },
    { CKF_USER_PIN_COUNT_LOW, "user_pin_count_low" },
    { CKF_USER_PIN_FINAL_TRY, "user_pin_final_try" },
    { CKF_USER_PIN_LOCKED, "user_pin_locked" },
    { CKF_WRITE_PROTECTED, "write_protected" },
};

struct listing {
    bool json;
    json_t *tokens;
};

static int
one_token(const struct token_desc *d, void *arg)
{
    struct listing *l = arg;
    size_t nflags = sizeof(flag_names) / sizeof(flag_names[0]);

    if (l->json) {
        json_t *flags = json_object(), *gen = json_array();
        for (size_t i = 0; i < nflags; i++)
            json_object_set_new(flags, flag_names[i].name,
                json_boolean(d->flags & flag_names[i].flag));
        for (size_t i = 0; d->gen[i] != NULL; i++)
            json_array_append_new(gen, json_string(d->gen[i]->name));
        json_array_append_new(l->tokens, json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s?, s:s?}",
            "module", cmdopt_jstr(d->module), "uri", d->uri, "label", cmdopt_jstr(d->label),
            "manufacturer", cmdopt_jstr(d->manufacturer), "model", cmdopt_jstr(d->model),
            "serial", cmdopt_jstr(d->serial),
            "flags", flags, "keygen", gen, "family", d->family, "notes", d->family_notes));
        return 0;
    }
    printf("%s\n", d->label);
    printf("  uri           %s\n", d->uri);
    printf("  module        %s\n", d->module);
    printf("  manufacturer  %s, model %s, serial %s\n", d->manufacturer, d->model, d->serial);
    printf("  flags        ");
    for (size_t i = 0; i < nflags; i++)
        if (d->flags & flag_names[i].flag)
            printf(" %s", flag_names[i].name);
    printf("\n  keygen       ");
    if (d->gen[0] == NULL)
        printf(" none");
    for (size_t i = 0; d->gen[i] != NULL; i++)
        printf(" %s", d->gen[i]->name);
    printf("\n");
    if (d->family != NULL)
        printf("  family        %s\n  notes         %s\n", d->family,
            d->family_notes ? d->family_notes : "");
    return 0;
}

int
cmd_tokens(int argc, char **argv)
{
    static const struct option opts[] = {
        { "module", required_argument, NULL, CMDOPT_MODULE },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct token_opts to = { 0 };   /* only --module */
    struct listing l = { 0 };
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = usage, .token = &to, .json = &l.json,
    };
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    l.tokens = json_array();
    if (token_enumerate(to.module_path, one_token, &l) == -1) {
        json_decref(l.tokens);
        return cmdopt_fail(l.json);
    }
    if (l.json)
        cmdopt_print_json(json_pack("{s:o}", "tokens", l.tokens));
    else
        json_decref(l.tokens);
    return EXIT_DONE;
}
