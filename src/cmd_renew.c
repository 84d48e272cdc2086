/* cmd_renew.c - p11enroll renew: enroll again when due, rotating the key, crash-safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cmdopt.h"
#include "commands.h"
#include "acme_enroll.h"
#include "enroll.h"
#include "pool.h"
#include "renew.h"
#include "renew_flow.h"
#include "rotate.h"
#include "rotate_manual.h"
#include "state.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll renew --profile F [--force] [--dry-run] [--no-wait] [--json]\n"
    "       p11enroll renew --profile F --abandon [--no-wait] [--json]\n"
    "       p11enroll renew --profile F --cert F [--chain F] [--json]\n"
    "\n"
    "Renew the profile's certificate when it is due ([renewal] renew-before, jitter,\n"
    "or the CA's ACME Renewal Information window; or when the plan's names, EKUs or\n"
    "key type changed).  With rotate = yes (the default) a new key pair is made for\n"
    "each renewal; once its certificate is installed it takes the label [key] label,\n"
    "and the old pair is kept as <label>.retired.<time> for retire-after, then\n"
    "destroyed.  Every step is journalled in [output] state-dir first: a run that\n"
    "was killed is completed by the next one.  With rotate = yes the [output] files\n"
    "switch to the new certificate right after the labels do; [hooks] deploy runs\n"
    "once, at the end.  A run that is not due still destroys retired pairs past\n"
    "retire-after (and exits 3: no new certificate).\n"
    "\n"
    "With [ca] type = manual (an enterprise CA such as AD CS, or any offline CA)\n"
    "the renewal stops after making the pending pair: its CSR (with [csr]\n"
    "ms-template when set) goes to [csr] out (default <state-dir>/<label>.csr),\n"
    "[hooks] csr-ready runs with P11ENROLL_CSR set to that path, and renew exits\n"
    "4 (waiting for the CA).  A renew while waiting makes no second key: it writes\n"
    "the CSR again when it is missing and exits 4 again.  The issued certificate,\n"
    "given to 'renew --cert F' or 'import --profile F --cert F', must be for the\n"
    "pending key and the plan; it completes the rotation (switch, files, deploy).\n"
    "\n"
    "  --profile F            the enrollment profile (INI; [ca] type = acme or manual)\n"
    "  --force                renew now even when not due\n"
    "  --dry-run              say whether it is due and what would happen; change nothing\n"
    "  --abandon              give up a renewal left unfinished (one that cannot be\n"
    "                         completed): destroy its journalled pending key pair\n"
    "                         (that id only), forget the journal entry and the ACME\n"
    "                         order; the current key stays current.  Exit 0.  Not\n"
    "                         after the switch (then a plain renew finishes it)\n"
    "  --cert F               [ca] type = manual: the CA's certificate for the\n"
    "                         renewal waiting for it (PEM or DER, may hold the chain)\n"
    "  --chain F              with --cert: intermediate certificates\n"
    "  --no-wait              when another run for the profile holds the lock, fail\n"
    "                         (exit 1) instead of waiting\n"
    "  --json                 print the result as JSON\n"
    CMDOPT_TOKEN_HELP
    "  -q (before the command) hides progress; -v adds detail.\n"
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 a new certificate is installed (--dry-run: due; --abandon: done;\n"
    "a failure to destroy retired pairs after a renewal is only a warning), 1 token,\n"
    "CA, network, file or lock failure, 2 usage or profile error (rotate = no with a\n"
    "changed [key] type: nothing changed), 3 not due: no new certificate (retired\n"
    "pairs past retire-after may still have been destroyed), 4 waiting for the CA\n"
    "([ca] type = manual: the CSR is written, no new certificate yet).\n";

static void
fmt_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(buf, cap, "-");
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The outcome on stdout: text, or one JSON object (consumed). */
static void
report(json_t *j, bool json)
{
    const char *k;
    json_t *v;

    if (json) {
        cmdopt_print_json(j);
        return;
    }
    json_object_foreach(j, k, v) {
        if (json_is_string(v))
            printf("%-12s %s\n", k, json_string_value(v));
        else if (json_is_boolean(v))
            printf("%-12s %s\n", k, json_is_true(v) ? "yes" : "no");
        else if (json_is_array(v) && json_array_size(v) > 0) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) printf("%-12s %s\n", k, json_string_value(x));
        }
    }
    json_decref(j);
}

/* A run's result into `out`: retired, renewed, destroyed, and the new certificate. */
static void
put_result(json_t *out, const struct renew_result *res, bool renewed)
{
    if (res->retired != NULL)
        json_object_set_new(out, "retired", json_string(res->retired));
    json_object_set_new(out, "renewed", json_boolean(renewed && !res->picked_up));
    if (res->picked_up)
        json_object_set_new(out, "picked_up", json_true());
    json_object_set_new(out, "destroyed",
        res->destroyed ? json_incref(res->destroyed) : json_array());
    if (res->cert != NULL) {
        char na[32], *serial = rotate_serial(res->cert), *subject = cmdopt_subject(res->cert);
        cmdopt_time(X509_get0_notAfter(res->cert), na, sizeof(na));
        json_object_set_new(out, "serial", json_string(serial ? serial : ""));
        json_object_set_new(out, "not_after", json_string(na));
        json_object_set_new(out, "subject", json_string(subject ? subject : ""));
        json_object_set_new(out, "key", json_string(res->key_uri ? res->key_uri : ""));
        free(serial);
        free(subject);
    }
}

/* The run stopped with the CSR out: where it is and since when.  EXIT_WAITING. */
static int
put_waiting(struct renew_ctx *c, const struct renew_result *res, json_t *out)
{
    const struct state_txn *t = &c->st->txn;
    char when[32];

    fmt_time(t->waiting_since, when, sizeof(when));
    json_object_set_new(out, "waiting", json_true());
    json_object_set_new(out, "waiting_since", json_string(when));
    json_object_set_new(out, "csr", cmdopt_jstr(t->csr_path ? t->csr_path : ""));
    json_object_set_new(out, "pending_key", json_string(t->pending_label ? t->pending_label
                                                                         : c->r.label));
    put_result(out, res, false);
    return EXIT_WAITING;
}

/* --abandon.  Exit code, or -1 after reporting. */
static int
run_abandon(struct renew_ctx *c, json_t *out)
{
    bool had;

    if (c->st->txn.step != STEP_NONE)
        json_object_set_new(out, "abandoned", json_string(state_step_name(c->st->txn.step)));
    if (renew_abandon(c, &had) == -1)
        return -1;
    json_object_set_new(out, "abandoned_renewal", json_boolean(had));
    return EXIT_DONE;
}

/* Work a killed run left comes first, due or not.  Exit code, or -1 after reporting. */
static int
run_resume(struct renew_ctx *c, bool dry_run, json_t *out)
{
    struct renew_result res = { 0 };
    const struct state_txn *t = &c->st->txn;

    json_object_set_new(out, "resumed", json_string(state_step_name(t->step)));
    json_object_set_new(out, "reason", json_string(t->reason ? t->reason : "?"));
    if (dry_run) {
        json_object_set_new(out, "due", json_true());
        json_object_set_new(out, "detail", json_string("an interrupted renewal is in "
            "progress; a run would finish it"));
        json_object_set_new(out, "dry_run", json_true());
        return EXIT_DONE;
    }
    int rc = renew_resume(c, &res);
    if (rc == 0)
        rc = res.waiting ? put_waiting(c, &res, out) : (put_result(out, &res, true), EXIT_DONE);
    renew_result_clear(&res);
    return rc;
}

/* acme_ari_window()'s client: the run's, created only when ARI is asked online. */
static struct acme_client *
ari_client(void *e)
{
    return acme_enroll_client(e);
}

/*
 * The decision for the certificate in c->facts: the renewal policy, and
 * when the decision is by time, the CA's ARI window (*ari_rc:
 * acme_ari_window()).
 */
static void
decide_cert(struct renew_ctx *c, bool force, struct renew_decision *d, struct renew_ari *ari,
    int *ari_rc)
{
    struct renew_input in = { .now = c->r.now, .cert = c->cert ? &c->facts : NULL,
        .plan = c->e.plan, .pol = &c->pol, .force = force, .rnd = renew_rand_cert,
        .rnd_ctx = c->cert };

    renew_ari_clear(ari);
    *ari_rc = 0;
    renew_decide(&in, d);
    /* Only a decision by time asks the CA for its window (RFC 9773). */
    if (c->cert != NULL && (d->reason == RENEW_TIME || d->reason == RENEW_NOT_DUE) &&
        !rotate_is_manual(c->e.prof) &&
        (*ari_rc = acme_ari_window(ari_client, &c->e, c->st, c->cert, c->r.now, ari)) > 0) {
        in.ari = ari;
        renew_decide(&in, d);
    }
}

/*
 * Is it due?  First from the pair at a glance (renew_current_cert()): when
 * that says not due, the run is done with a handful of token calls.
 * Otherwise the current pair and certificate with every check
 * (renew_current()), decided again only when the certificate differs: the
 * decision depends on nothing else.  0, or -1 after reporting.
 */
static int
decide(struct renew_ctx *c, bool force, struct renew_decision *d, struct renew_ari *ari,
    int *ari_rc)
{
    X509 *quick = NULL;
    int q = force || !c->glance ? 1 : renew_current_cert(c);

    if (q == 0) {
        decide_cert(c, force, d, ari, ari_rc);
        if (!d->due)
            goto done;
        quick = X509_dup(c->cert);
    }
    if (renew_current(c) == -1) {
        X509_free(quick);
        return -1;
    }
    if (quick == NULL || c->cert == NULL || X509_cmp(quick, c->cert) != 0)
        decide_cert(c, force, d, ari, ari_rc);
    X509_free(quick);
done:
    if (d->clock_behind)
        warnmsg("%s", d->detail);
    if (d->before_capped)
        warnmsg("[renewal] renew-before is not shorter than the certificate's lifetime; "
            "using 1/3 of it");
    return 0;
}

/* Decide, then renew when due (or say what a run would do).  Exit code, or -1. */
static int
run_renew(struct renew_ctx *c, const char *profile, bool force, bool dry_run, bool json,
    json_t *out)
{
    struct renew_decision d;
    struct renew_ari ari = { 0 };
    struct renew_result res = { 0 };
    int rc = -1, ari_rc = 0, quick;
    char t1[32];

    /* A pool follower with nothing to do finds out in a few token calls. */
    if ((quick = pool_quick_check(c, force, &d)) == -1 ||
        (quick == 0 && decide(c, force, &d, &ari, &ari_rc) == -1))
        goto out;
    pool_gate(c, force, &d);
    json_object_set_new(out, "due", json_boolean(d.due));
    json_object_set_new(out, "reason", json_string(renew_reason_name(d.reason)));
    json_object_set_new(out, "detail", json_string(d.detail));
    if (d.due_at) {
        fmt_time(d.due_at, t1, sizeof(t1));
        json_object_set_new(out, "due_at", json_string(t1));
    }
    if (!d.due) {
        /* The ARI cache, or a state whose bad cache entry load dropped. */
        if (!dry_run && !quick &&
            renew_not_due(c, ari_rc == 2 || c->st->repaired, &res) == -1)
            goto out;
        put_result(out, &res, res.picked_up);
        if (!json)
            progress("not due: %s", d.detail);
        rc = res.picked_up ? EXIT_DONE : EXIT_NOT_DUE;
        goto out;
    }
    if (!c->pol.rotate && c->cur != NULL && d.reason == RENEW_KEY_TYPE) {
        /* The profile contradicts itself: a profile error (exit 2), nothing changed. */
        err_input("E_KEY_TYPE", "%s: %s; with [renewal] rotate = no the key is kept: set "
            "rotate = yes (or change [key] type back); nothing changed", profile, d.detail);
        goto out;
    }
    if (dry_run) {
        json_object_set_new(out, "dry_run", json_true());
        json_object_set_new(out, "would", json_string(c->pol.rotate || c->cur == NULL
            ? "generate a new key pair, order its certificate, switch labels, retire the old pair"
            : "order a new certificate for the current key (rotate = no)"));
        rc = EXIT_DONE;
        goto out;
    }
    progress("renewing: %s", d.detail);
    if (renew_run(c, renew_reason_name(d.reason), &res) == -1)
        goto out;
    if (res.waiting) {
        rc = put_waiting(c, &res, out);
        goto out;
    }
    put_result(out, &res, true);
    rc = EXIT_DONE;
out:
    renew_result_clear(&res);
    renew_ari_clear(&ari);
    return rc;
}

int
renew_complete_cmd(const char *profile, const struct token_opts *over, X509 *leaf,
    STACK_OF(X509) *chain, bool json)
{
    struct renew_ctx ctx = { .lockfd = -1 };
    struct renew_result res = { 0 };
    json_t *out = NULL;
    int rc = -1;

    if (renew_setup(profile, over, RENEW_FOR_RUN, true, &ctx) == -1 ||
        renew_complete(&ctx, leaf, chain, &res) == -1)
        goto done;
    out = json_object();
    json_object_set_new(out, "profile", json_string(profile));
    json_object_set_new(out, "completed", json_true());
    put_result(out, &res, true);
    report(out, json);
    rc = EXIT_DONE;
done:
    if (rc == -1)
        rc = cmdopt_fail(json);
    renew_result_clear(&res);
    renew_ctx_free(&ctx);
    return rc;
}

/* renew --cert F [--chain F]: read them, then renew_complete_cmd().  Exit code. */
static int
renew_with_cert(const char *profile, const struct token_opts *over, const char *certfile,
    const char *chainfile, bool json)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc;

    if (cmdopt_read_certs(certfile, chainfile, &leaf, &chain) == -1)
        return cmdopt_fail(json);
    rc = renew_complete_cmd(profile, over, leaf, chain, json);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* renew's own options. */
struct renew_args {
    const char *certfile, *chainfile;
    bool force, dry_run, no_wait, abandon;
};
enum { OPT_FORCE = CMDOPT_OWN, OPT_DRY_RUN, OPT_NO_WAIT, OPT_ABANDON, OPT_CERT, OPT_CHAIN };

static int
renew_opt(int id, const char *arg, void *ctx)
{
    struct renew_args *a = ctx;
    switch (id) {
    case OPT_FORCE: a->force = true; break;
    case OPT_DRY_RUN: a->dry_run = true; break;
    case OPT_NO_WAIT: a->no_wait = true; break;
    case OPT_ABANDON: a->abandon = true; break;
    case OPT_CERT: a->certfile = arg; break;
    case OPT_CHAIN: a->chainfile = arg; break;
    }
    return 0;
}

/* The combinations renew refuses; 0, or -1 after a usage error. */
static int
renew_args_check(const char *profile, const struct renew_args *a)
{
    if (profile == NULL)
        cmdopt_usage_error("--profile is required");
    else if (a->abandon && (a->force || a->dry_run))
        cmdopt_usage_error("--abandon goes with neither --force nor --dry-run");
    else if (a->chainfile && !a->certfile)
        cmdopt_usage_error("--chain goes with --cert");
    else if (a->certfile && (a->abandon || a->force || a->dry_run))
        cmdopt_usage_error("--cert goes with none of --abandon, --force, --dry-run");
    else
        return 0;
    return -1;
}

int
cmd_renew(int argc, char **argv)
{
    static const struct option opts[] = {
        { "profile", required_argument, NULL, CMDOPT_PROFILE },
        { "force", no_argument, NULL, OPT_FORCE },
        { "dry-run", no_argument, NULL, OPT_DRY_RUN },
        { "no-wait", no_argument, NULL, OPT_NO_WAIT },
        { "abandon", no_argument, NULL, OPT_ABANDON },
        { "cert", required_argument, NULL, OPT_CERT },
        { "chain", required_argument, NULL, OPT_CHAIN },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts over = { 0 };
    struct renew_args a = { 0 };
    const char *profile = NULL;
    bool json = false;
    struct renew_ctx ctx = { .lockfd = -1 };
    json_t *out = NULL;
    const struct cmdopt_spec spec = { .longopts = opts, .usage = usage, .token = &over,
        .json = &json, .profile = &profile, .on_opt = renew_opt, .ctx = &a };
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    if (renew_args_check(profile, &a) == -1)
        return cmdopt_fail(json);
    const char *certfile = a.certfile, *chainfile = a.chainfile;
    bool force = a.force, dry_run = a.dry_run, no_wait = a.no_wait, abandon = a.abandon;
    if (certfile != NULL)
        return renew_with_cert(profile, &over, certfile, chainfile, json);

    if (renew_setup(profile, &over, dry_run ? RENEW_FOR_DRY_RUN : RENEW_FOR_RUN, !no_wait,
            &ctx) == -1) {
        rc = -1;
        goto done;
    }
    out = json_object();
    json_object_set_new(out, "profile", json_string(profile));
    if (abandon)
        rc = run_abandon(&ctx, out);
    else if (ctx.st->txn.step != STEP_NONE)
        rc = run_resume(&ctx, dry_run, out);
    else
        rc = run_renew(&ctx, profile, force, dry_run, json, out);
    if (rc != -1) {
        report(out, json);
        out = NULL; /* consumed */
    }
done:
    if (rc == -1)
        rc = cmdopt_fail(json);
    json_decref(out);
    renew_ctx_free(&ctx);
    return rc;
}
