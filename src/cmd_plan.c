/*
 * cmd_plan.c - p11enroll plan: print the subject, ordered SANs and EKUs a
 * profile gives, and why each name is there.  Reads the profile, writes
 * nothing anywhere but stdout and stderr.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdopt.h"
#include "pool.h"
#include "commands.h"
#include "plan.h"
#include "profile.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll plan --profile FILE [--json]\n"
    "\n"
    "Print the certificate a profile describes: subject, SANs in certificate\n"
    "order with the profile key and rule (edge-san-rules.md) behind each name,\n"
    "EKUs, key type, Edge pool facts and warnings.  Reads the profile only:\n"
    "no token, no network, nothing written.\n"
    "\n"
    "  -p, --profile FILE   the enrollment profile (INI)\n"
    "  -j, --json           one JSON object on stdout (cli.md shape)\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit codes: 0 a valid plan (warnings included), 2 usage error, unreadable\n"
    "or malformed profile, or a profile that gives no valid certificate.\n";

static void
print_sources(const struct plan_name *n)
{
    printf("%s (%s)", n->src.from, n->src.rule);
    for (size_t i = 0; i < n->nalso; i++)
        printf("%s%s (%s)", i == 0 ? "; also " : ", ", n->also[i].from, n->also[i].rule);
}

/* The human report: a short table of names and why, then the facts. */
static void
print_plan(const struct plan *pl)
{
    size_t w = strlen("SAN");

    printf("certificate  %s", pl->certificate);
    if (pl->product != NULL)
        printf(" (%s, %s CA)", pl->product, pl->ca_kind);
    printf("\nsubject      %s    %s (%s)\n", pl->subject, pl->subject_src.from,
        pl->subject_src.rule);
    printf("key          %s\n", pl->key);
    printf("eku          ");
    for (size_t i = 0; i < pl->neku; i++)
        printf("%s%s", i ? ", " : "", pl->eku[i]);
    printf("\n");
    if (pl->kind != PLAN_NAMES) {
        printf("topology     %s", pl->pool ? "pool" : "single server");
        if (pl->pool)
            printf(", %s load balancing", pl->load_balancing);
        printf(", %s\n", pl->nat ? "NAT" : "no NAT");
    }
    printf("\n");
    if (pl->nsans == 0) {
        printf("SAN          none: no subjectAltName extension\n");
    } else {
        for (size_t i = 0; i < pl->nsans; i++)
            if (strlen(pl->sans[i].name) > w)
                w = strlen(pl->sans[i].name);
        printf(" #  %-*s  why\n", (int)w, "SAN");
        for (size_t i = 0; i < pl->nsans; i++) {
            printf("%2zu  %-*s  ", i + 1, (int)w, pl->sans[i].name);
            print_sources(&pl->sans[i]);
            printf("\n");
        }
    }
    if (pl->pool) {
        printf("\npool members (%zu):", pl->nmembers);
        for (size_t i = 0; i < pl->nmembers; i++)
            printf("%s%s", i ? ", " : " ", pl->members[i]);
        if (pl->nmembers == 0)
            printf(" not listed");
        printf("\nshared key:  %s\n", pl->shared_key_note);
    }
    if (pl->nwarnings == 0) {
        printf("\nwarnings: none\n");
    } else {
        printf("\nwarnings:\n");
        for (size_t i = 0; i < pl->nwarnings; i++)
            printf("  %s: %s\n", pl->warnings[i].code, pl->warnings[i].message);
    }
}

/* [pool] (pool.h): the members sharing the key on one token, as JSON; NULL when none. */
static json_t *
key_pool_json(const struct pool *kp, const struct profile *p)
{
    if (kp->name == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", kp->name, "member", kp->member,
        "role", kp->leader ? "leader" : "follower", "takeover_after",
        p->pool.takeover_after ? p->pool.takeover_after : "1/2", "lease",
        p->pool.lease ? p->pool.lease : "15m");
}

/* Report a failed plan on stderr and, with --json, the error object on stdout. */
static void
report_error(const struct profile *p, const struct plan *pl, bool json)
{
    const struct plan_error *e = &pl->error;
    unsigned line = profile_line(p, e->section, e->key);
    char *msg = NULL, *text = NULL;
    json_t *j;

    if ((line > 0 ? asprintf(&msg, "%s:%u: [%s] %s", p->name, line, e->section, e->message)
                  : asprintf(&msg, "%s: %s", p->name, e->message)) == -1)
        msg = NULL;
    err_input(e->code, "%s", msg != NULL ? msg : e->message);
    if (json) {
        /* The planner's object, with the message as printed (file and line). */
        if ((j = plan_to_json(pl)) != NULL && msg != NULL)
            json_object_set_new(json_object_get(j, "error"), "message", json_string(msg));
        if (j != NULL && (text = json_dumps(j, 0)) != NULL)
            err_set_json(text);
        json_decref(j);
        free(text);
        err_print_json();
    }
    free(msg);
}

/* Plan's only option of its own; its id is its short form, -p. */
enum { OPT_PROFILE = 'p' };

/* cmdopt_parse() callback: --profile. */
static int
plan_opt(int id, const char *arg, void *ctx)
{
    if (id == OPT_PROFILE)
        *(const char **)ctx = arg;
    return 0;
}

int
cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        { "profile", required_argument, NULL, OPT_PROFILE },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    bool json = false;
    const struct cmdopt_spec spec = {
        .longopts = opts, .shortopts = ":p:jh", .usage = usage, .style = CMDOPT_QUOTED,
        .json = &json, .on_opt = plan_opt, .ctx = &path,
    };
    struct profile *p = NULL;
    struct plan *pl = NULL;
    struct pool kp;
    json_t *j = NULL;
    char *text = NULL;
    int rc;

    /* Known before parsing, so a usage error is JSON too when --json is given. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
            json = true;
    if ((rc = cmdopt_parse(argc, argv, &spec)) == CMDOPT_RUN && path == NULL) {
        err_input("E_USAGE", "--profile is required");
        rc = cmdopt_fail(json);
    }
    if (rc != CMDOPT_RUN) {
        /* Without --json, a usage error shows the usage. */
        if (rc == EXIT_INPUT && !json)
            fputs(usage, stderr);
        return rc;
    }
    if (profile_load(path, &p) == -1) {
        rc = cmdopt_fail(json);
        goto out;
    }
    if (plan_build(p, &pl) == -1) {
        if (pl == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            rc = EXIT_RUNTIME;
        } else {
            report_error(p, pl, json);
            rc = EXIT_INPUT;
        }
        goto out;
    }
    if (pool_from_profile(p, &kp) == -1) {
        rc = cmdopt_fail(json);
        goto out;
    }
    if (json) {
        if ((j = plan_to_json(pl)) != NULL && kp.name != NULL)
            json_object_set_new(j, "key_pool", key_pool_json(&kp, p));
        if (j == NULL || (text = json_dumps(j, 0)) == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            rc = EXIT_RUNTIME;
            goto out;
        }
        printf("%s\n", text);
    } else {
        print_plan(pl);
        if (kp.name != NULL)
            printf("key pool     %s: member %s is the %s (takeover-after %s, lease %s); "
                   "every member uses the one key on the shared token\n", kp.name, kp.member,
                kp.leader ? "leader" : "follower",
                p->pool.takeover_after ? p->pool.takeover_after : "1/2",
                p->pool.lease ? p->pool.lease : "15m");
    }
    rc = fflush(stdout) == 0 ? EXIT_DONE : EXIT_RUNTIME;
out:
    free(text);
    json_decref(j);
    plan_free(pl);
    profile_free(p);
    return rc;
}
