/* cmd_renew.c - p11enroll renew: enroll again when due, rotating the key, crash-safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "acme_enroll.h"
#include "cmdopt.h"
#include "commands.h"
#include "enroll.h"
#include "http.h"
#include "renew.h"
#include "rotate.h"
#include "state.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll renew --profile F [--force] [--dry-run] [--no-wait] [--json]\n"
    "       p11enroll renew --profile F --abandon [--no-wait] [--json]\n"
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
    "  --profile F            the enrollment profile (INI; [ca] type = acme)\n"
    "  --force                renew now even when not due\n"
    "  --dry-run              say whether it is due and what would happen; change nothing\n"
    "  --abandon              give up a renewal left unfinished (one that cannot be\n"
    "                         completed): destroy its journalled pending key pair\n"
    "                         (that id only), forget the journal entry and the ACME\n"
    "                         order; the current key stays current.  Exit 0.  Not\n"
    "                         after the switch (then a plain renew finishes it)\n"
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
    "pairs past retire-after may still have been destroyed).\n";

#define ARI_MAX_BODY (64 * 1024)
#define ARI_DEFAULT_POLL (6 * 3600)

/*
 * The CA's suggested window for `cert` (RFC 9773), from the state's cache
 * until its Retry-After passes, else from the directory's renewalInfo.
 * Returns 1 (cached) or 2 (fetched now; the cache in `st` is updated) and
 * *out, or 0 when there is none (no ARI, no AKI, any failure: the
 * renew-before rule then applies; failures are warnings).
 */
static int
ari_window(const struct profile *p, struct state *st, X509 *cert, time_t now,
    struct renew_ari *out)
{
    struct http_opts ho = { .ca_bundle = p->ca.ca_bundle, .timeout_ms = 15000 };
    struct http *h = NULL;
    struct http_response resp = { 0 };
    char *cert_id = renew_ari_cert_id(cert), *url = NULL, why[128];
    json_t *dir = NULL;
    const char *ri;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (cert_id == NULL)
        return 0;
    if (st->ari.cert_id != NULL && strcmp(st->ari.cert_id, cert_id) == 0 &&
        now < st->ari.next_poll) {
        out->start = st->ari.start;
        out->end = st->ari.end;
        free(cert_id);
        return 1;
    }
    if (p->ca.directory == NULL || p->ca.ca_bundle == NULL)
        goto out;
    if (http_new(&ho, &h) == -1 || http_get(h, p->ca.directory, ARI_MAX_BODY,
                                       "application/json", &resp) == -1)
        goto fail;
    if (resp.status != 200 || resp.body == NULL ||
        (dir = json_loadb(resp.body, resp.body_len, 0, NULL)) == NULL)
        goto fail;
    if ((ri = json_string_value(json_object_get(dir, "renewalInfo"))) == NULL) {
        verbose("the CA's directory offers no renewalInfo (ARI): using renew-before");
        goto out;
    }
    if (!acme_url_ok(ri, false) || asprintf(&url, "%s/%s", ri, cert_id) == -1) {
        url = NULL;
        goto fail;
    }
    http_response_clear(&resp);
    if (http_get(h, url, ARI_MAX_BODY, "application/json", &resp) == -1 || resp.status != 200)
        goto fail;
    if (renew_ari_parse(resp.body, resp.body_len, out, why, sizeof(why)) == -1) {
        warnmsg("ignoring the CA's renewal information: %s", why);
        goto out;
    }
    verbose("ARI: suggested window %lld..%lld", (long long)out->start, (long long)out->end);
    /* Cache it; poll again after Retry-After (capped to [1 min, 1 day]). */
    long ra = resp.retry_after < 0 ? ARI_DEFAULT_POLL
            : resp.retry_after < 60 ? 60 : resp.retry_after > 86400 ? 86400 : resp.retry_after;
    free(st->ari.cert_id);
    st->ari.cert_id = cert_id;
    cert_id = NULL; /* transferred */
    st->ari.start = out->start;
    st->ari.end = out->end;
    st->ari.next_poll = now + ra;
    rc = 2;
    goto out;
fail:
    err_clear();
    warnmsg("could not fetch the CA's renewal information (ARI%s%ld); using renew-before",
        resp.status ? ": HTTP " : "", resp.status);
out:
    json_decref(dir);
    http_response_clear(&resp);
    http_free(h);
    free(url);
    free(cert_id);
    return rc;
}

/*
 * [ca] account-key must name an object on the profile's token.  acme_enroll
 * finds out only when it signs, after the new key exists: checked here
 * first so that a profile error changes nothing (exit 2).
 */
static int
check_account_key(struct enroll *e)
{
    char *object = NULL;
    int r;

    if (e->prof->ca.account_key == NULL)
        return 0;
    if ((r = token_matches_uri(e->tok, e->prof->ca.account_key, &object)) == -1)
        return -1;
    free(object);
    if (r == 0 || object == NULL) {
        err_input("E_ACCOUNT_KEY", "%s: [ca] account-key %s must name an object (object=) on "
            "the profile's token %s; nothing changed", e->prof->name, e->prof->ca.account_key,
            token_label(e->tok));
        return -1;
    }
    return 0;
}

static void
fmt_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(buf, cap, "-");
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The outcome on stdout: text, or one JSON object. */
static void
report(struct rotate *r, json_t *j, bool renewed, bool json)
{
    struct token_key *key = NULL;
    X509 *cert = NULL;

    if (renewed && rotate_find_current(r, &key, &cert) == 0 && cert != NULL) {
        char na[32], *serial = rotate_serial(cert), *subject = cmdopt_subject(cert);
        cmdopt_time(X509_get0_notAfter(cert), na, sizeof(na));
        json_object_set_new(j, "serial", json_string(serial ? serial : ""));
        json_object_set_new(j, "not_after", json_string(na));
        json_object_set_new(j, "subject", json_string(subject ? subject : ""));
        json_object_set_new(j, "key", json_string(token_key_uri(key)));
        free(serial);
        free(subject);
    }
    err_clear();
    token_key_free(key);
    X509_free(cert);
    if (json) {
        cmdopt_print_json(j);
        return;
    }
    const char *k;
    json_t *v;
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

int
cmd_renew(int argc, char **argv)
{
    static const struct option opts[] = {
        { "profile", required_argument, NULL, 'p' },
        { "force", no_argument, NULL, 'f' },
        { "dry-run", no_argument, NULL, 'n' },
        { "no-wait", no_argument, NULL, 'W' },
        { "abandon", no_argument, NULL, 'A' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts over = { 0 };
    const char *profile = NULL;
    bool json = false, force = false, dry_run = false, no_wait = false, abandon = false;
    struct enroll e = { 0 };
    struct renew_policy pol;
    struct state *st = NULL;
    struct rotate r = { 0 };
    struct token_key *cur = NULL;
    X509 *cert = NULL;
    struct renew_cert facts = { 0 };
    struct renew_ari ari = { 0 };
    struct renew_decision d;
    json_t *out = NULL, *destroyed = json_array();
    int c, rc = EXIT_DONE, lockfd = -1, found, ari_rc = 0;
    bool have_facts = false;
    char t1[32];

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (cmdopt_token(c, optarg, &over))
            continue;
        switch (c) {
        case 'p': profile = optarg; break;
        case 'f': force = true; break;
        case 'n': dry_run = true; break;
        case 'W': no_wait = true; break;
        case 'A': abandon = true; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); json_decref(destroyed); return EXIT_DONE;
        default:
            cmdopt_usage_error("unknown or incomplete option %s", argv[optind - 1]);
            json_decref(destroyed);
            return cmdopt_fail(json);
        }
    }
    if (optind < argc || profile == NULL || (abandon && (force || dry_run))) {
        if (optind < argc)
            cmdopt_usage_error("unexpected argument %s", argv[optind]);
        else if (profile == NULL)
            cmdopt_usage_error("--profile is required");
        else
            cmdopt_usage_error("--abandon goes with neither --force nor --dry-run");
        json_decref(destroyed);
        return cmdopt_fail(json);
    }

    /* Input checks first: nothing below changes anything before they pass. */
    if (enroll_plan(profile, &e) == -1)
        goto fail;
    if (e.prof->ca.type != NULL && strcmp(e.prof->ca.type, "acme") != 0) {
        err_input("E_CA_TYPE", "%s: renew needs [ca] type = acme (with type = manual, run "
            "'p11enroll csr' and 'p11enroll import' again)", profile);
        goto fail;
    }
    if (acme_enroll_check(&e) == -1 || renew_policy_from_profile(e.prof, &pol) == -1)
        goto fail;
    if (e.prof->key.label == NULL) {
        err_input("E_MISSING", "%s: [key] label is required", profile);
        goto fail;
    }
    if (!dry_run) {
        if (state_mkdir(e.prof->output.state_dir) == -1 ||
            (lockfd = state_lock(e.prof->output.state_dir, !no_wait, profile)) == -1)
            goto fail;
    }
    if (state_load(e.prof->output.state_dir, e.prof->key.label, &st) == -1)
        goto fail;
    if (enroll_open(&e, &over) == -1)
        goto fail;
    r = (struct rotate){ .e = &e, .st = st, .pol = &pol, .label = e.prof->key.label,
        .now = time(NULL) };
    out = json_object();
    json_object_set_new(out, "profile", json_string(profile));

    if (abandon) {
        bool had = st->txn.step != STEP_NONE;
        if (had)
            json_object_set_new(out, "abandoned", json_string(state_step_name(st->txn.step)));
        if (rotate_abandon(&r) == -1)
            goto fail;
        json_object_set_new(out, "abandoned_renewal", json_boolean(had));
        report(&r, out, false, json);
        out = NULL; /* consumed */
        goto done;
    }

    /* Work a killed run left comes first, due or not. */
    if (st->txn.step != STEP_NONE) {
        json_object_set_new(out, "resumed", json_string(state_step_name(st->txn.step)));
        json_object_set_new(out, "reason", json_string(st->txn.reason ? st->txn.reason : "?"));
        if (dry_run) {
            json_object_set_new(out, "due", json_true());
            json_object_set_new(out, "detail", json_string("an interrupted renewal is in "
                "progress; a run would finish it"));
            json_object_set_new(out, "dry_run", json_true());
            report(&r, out, false, json);
            out = NULL; /* consumed */
            goto done;
        }
        progress("resuming the renewal started %lld s ago (step %s)",
            (long long)(r.now - st->txn.started), state_step_name(st->txn.step));
        if (rotate_check_outputs(e.prof) == -1 || check_account_key(&e) == -1 ||
            rotate_resume(&r) == -1)
            goto fail;
        goto renewed;
    }

    if ((found = rotate_find_current(&r, &cur, &cert)) == -1)
        goto fail;
    if (cert != NULL) {
        if (renew_cert_from_x509(cert, &facts) == -1) {
            err_runtime("E_CERT", "the certificate of key %s cannot be read", r.label);
            goto fail;
        }
        have_facts = true;
    }
    struct renew_input in = { .now = r.now, .cert = have_facts ? &facts : NULL, .plan = e.plan,
        .pol = &pol, .force = force, .rnd = renew_rand_cert, .rnd_ctx = cert };
    renew_decide(&in, &d);
    /* Only a decision by time asks the CA for its window (RFC 9773). */
    if (have_facts && (d.reason == RENEW_TIME || d.reason == RENEW_NOT_DUE) &&
        (ari_rc = ari_window(e.prof, st, cert, r.now, &ari)) > 0) {
        in.ari = &ari;
        renew_decide(&in, &d);
    }
    if (d.clock_behind)
        warnmsg("%s", d.detail);
    if (d.before_capped)
        warnmsg("[renewal] renew-before is not shorter than the certificate's lifetime; "
            "using 1/3 of it");
    json_object_set_new(out, "due", json_boolean(d.due));
    json_object_set_new(out, "reason", json_string(renew_reason_name(d.reason)));
    json_object_set_new(out, "detail", json_string(d.detail));
    if (d.due_at) {
        fmt_time(d.due_at, t1, sizeof(t1));
        json_object_set_new(out, "due_at", json_string(t1));
    }
    if (!d.due) {
        if (!dry_run) {
            /* The ARI cache, or a state whose bad cache entry load dropped. */
            if ((ari_rc == 2 || st->repaired) && state_save(st) == -1)
                goto fail;
            if (rotate_housekeeping(&r, destroyed) == -1)
                goto fail;
        }
        json_object_set_new(out, "renewed", json_false());
        json_object_set_new(out, "destroyed", json_incref(destroyed));
        if (!json)
            progress("not due: %s", d.detail);
        report(&r, out, false, json);
        out = NULL; /* consumed */
        rc = EXIT_NOT_DUE;
        goto done;
    }
    if (!pol.rotate && cur != NULL && d.reason == RENEW_KEY_TYPE) {
        /* The profile contradicts itself: a profile error (exit 2), nothing changed. */
        err_input("E_KEY_TYPE", "%s: %s; with [renewal] rotate = no the key is kept: set "
            "rotate = yes (or change [key] type back); nothing changed", profile, d.detail);
        goto fail;
    }
    if (dry_run) {
        json_object_set_new(out, "dry_run", json_true());
        json_object_set_new(out, "would", json_string(pol.rotate || cur == NULL
            ? "generate a new key pair, order its certificate, switch labels, retire the old pair"
            : "order a new certificate for the current key (rotate = no)"));
        report(&r, out, false, json);
        out = NULL; /* consumed */
        goto done;
    }
    progress("renewing: %s", d.detail);
    if (rotate_check_outputs(e.prof) == -1 || check_account_key(&e) == -1)
        goto fail;
    if (rotate_begin(&r, cur, cert, pol.rotate, renew_reason_name(d.reason)) == -1 ||
        rotate_resume(&r) == -1)
        goto fail;
renewed:
    if (r.retired[0] != '\0')
        json_object_set_new(out, "retired", json_string(r.retired));
    /*
     * The new certificate is installed and the hook ran: that is exit 0.
     * Retired pairs that could not be destroyed are a warning; a later run
     * tries again.
     */
    if (rotate_housekeeping(&r, destroyed) == -1) {
        err_clear();
        warnmsg("the renewal is done, but destroying retired key pairs failed (see above); "
            "a later run tries again");
    }
    json_object_set_new(out, "renewed", json_true());
    json_object_set_new(out, "destroyed", json_incref(destroyed));
    report(&r, out, true, json);
    out = NULL; /* consumed */
    rc = EXIT_DONE;
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    json_decref(out);
    json_decref(destroyed);
    renew_cert_clear(&facts);
    renew_ari_clear(&ari);
    X509_free(cert);
    token_key_free(cur);
    enroll_free(&e);
    state_free(st);
    state_unlock(lockfd);
    return rc;
}
