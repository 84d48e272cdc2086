/* cmd_status.c - p11enroll status: the current pair, retired pairs, pending work, next renewal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cmdopt.h"
#include "commands.h"
#include "enroll.h"
#include "renew.h"
#include "rotate.h"
#include "state.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll status --profile F [--json]\n"
    "\n"
    "Show the profile's current key and certificate (serial, expiry, names), the\n"
    "retired pairs and when they will be destroyed, a renewal left unfinished by a\n"
    "killed run, and whether renewal is due and when.  Reads the token and the\n"
    "state dir only: it changes nothing and does not contact the CA (the ACME\n"
    "Renewal Information window is the one the last 'renew' fetched).\n"
    "\n"
    "  --profile F            the enrollment profile (INI)\n"
    "  --json                 print one JSON object\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 shown, 1 token or state failure, 2 usage or profile error.\n";

static json_t *
jtime(time_t t)
{
    char buf[32];
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL)
        return json_null();
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static bool
recorded(const struct state *st, const char *id)
{
    if ((st->txn.pending_id && strcmp(st->txn.pending_id, id) == 0) ||
        (st->current_id && strcmp(st->current_id, id) == 0))
        return true;
    for (size_t i = 0; i < st->nretired; i++)
        if (strcmp(st->retired[i].id, id) == 0)
            return true;
    return false;
}

struct scan {
    const struct state *st;
    const char *label;
    json_t *unmanaged;
};

/* Pairs named like ours (L.pending.*, L.retired.*) that the state does not record. */
static int
scan_cb(struct token *tok, struct token_key *key, void *arg)
{
    struct scan *s = arg;
    const char *l = token_key_label(key);
    size_t n = strlen(s->label), idlen;
    const uint8_t *id = token_key_id(key, &idlen);
    char *hex;

    (void)tok;
    if (strncmp(l, s->label, n) != 0 ||
        (strncmp(l + n, ".pending.", 9) != 0 && strncmp(l + n, ".retired.", 9) != 0))
        return 0;
    if ((hex = hex_encode(id, idlen)) == NULL)
        return -1;
    if (!recorded(s->st, hex))
        json_array_append_new(s->unmanaged, json_pack("{s:s, s:s}", "label", l, "id", hex));
    free(hex);
    return 0;
}

static void
print_text(json_t *j)
{
    json_t *cur = json_object_get(j, "current"), *ren = json_object_get(j, "renewal"), *v;
    json_t *pend = json_object_get(j, "pending"), *ret = json_object_get(j, "retired");
    json_t *un = json_object_get(j, "unmanaged");
    size_t i;

#define S(o, k) (json_string_value(json_object_get((o), (k))) ? \
                 json_string_value(json_object_get((o), (k))) : "-")
    printf("profile      %s\n", S(j, "profile"));
    printf("key          %s\n", cur ? S(cur, "key") : "none");
    if (cur && json_object_get(cur, "serial")) {
        printf("serial       %s\n", S(cur, "serial"));
        printf("not before   %s\n", S(cur, "not_before"));
        printf("not after    %s\n", S(cur, "not_after"));
        json_array_foreach(json_object_get(cur, "sans"), i, v)
            printf("san          %s\n", json_string_value(v));
    } else {
        printf("certificate  none\n");
    }
    printf("renewal      %s: %s\n", json_is_true(json_object_get(ren, "due")) ? "due" : "not due",
        S(ren, "detail"));
    if (json_object_get(ren, "due_at") && !json_is_null(json_object_get(ren, "due_at")))
        printf("due at       %s\n", S(ren, "due_at"));
    if (json_is_object(pend))
        printf("pending      renewal interrupted at step %s (started %s, new key %s); "
               "'p11enroll renew' finishes it ('renew --abandon' gives it up)\n", S(pend, "step"), S(pend, "started"),
            S(pend, "pending_label"));
    else
        printf("pending      none\n");
    json_array_foreach(ret, i, v)
        printf("retired      %s (id %s), retired %s, destroyed after %s\n", S(v, "label"),
            S(v, "id"), S(v, "retired_at"), S(v, "destroy_after"));
    json_array_foreach(un, i, v)
        printf("unmanaged    %s (id %s): not in the state, never touched by p11enroll\n",
            S(v, "label"), S(v, "id"));
    if (json_is_true(json_object_get(j, "labels_immutable")))
        printf("note         the token refuses label changes: the current key is found by id\n");
#undef S
}

int
cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        { "profile", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts over = { 0 };
    const char *profile = NULL;
    bool json = false;
    struct enroll e = { 0 };
    struct renew_policy pol;
    struct state *st = NULL;
    struct rotate r = { 0 };
    struct token_key *cur = NULL;
    X509 *cert = NULL;
    struct renew_cert facts = { 0 };
    struct renew_ari ari = { 0 };
    struct renew_decision d;
    json_t *j = NULL, *jc = NULL;
    struct scan sc;
    int c, rc = EXIT_DONE;
    bool have_ari = false;
    char *idhex = NULL;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (cmdopt_token(c, optarg, &over))
            continue;
        switch (c) {
        case 'p': profile = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_DONE;
        default:
            cmdopt_usage_error("unknown or incomplete option %s", argv[optind - 1]);
            return cmdopt_fail(json);
        }
    }
    if (optind < argc || profile == NULL) {
        if (optind < argc)
            cmdopt_usage_error("unexpected argument %s", argv[optind]);
        else
            cmdopt_usage_error("--profile is required");
        return cmdopt_fail(json);
    }
    if (enroll_plan(profile, &e) == -1 || renew_policy_from_profile(e.prof, &pol) == -1)
        goto fail;
    if (e.prof->key.label == NULL || e.prof->output.state_dir == NULL) {
        err_input("E_MISSING", "%s: status needs [key] label and [output] state-dir", profile);
        goto fail;
    }
    if (state_load(e.prof->output.state_dir, e.prof->key.label, &st) == -1 ||
        enroll_open(&e, &over) == -1)
        goto fail;
    r = (struct rotate){ .e = &e, .st = st, .pol = &pol, .label = e.prof->key.label,
        .now = time(NULL) };
    if (rotate_find_current(&r, &cur, &cert) == -1)
        goto fail;
    j = json_object();
    json_object_set_new(j, "profile", json_string(profile));
    json_object_set_new(j, "token", json_string(token_uri(e.tok)));
    json_object_set_new(j, "label", json_string(r.label));
    if (cur != NULL) {
        size_t len;
        const uint8_t *id = token_key_id(cur, &len);
        jc = json_object();
        idhex = hex_encode(id, len);
        json_object_set_new(jc, "key", json_string(token_key_uri(cur)));
        json_object_set_new(jc, "key_id", json_string(idhex ? idhex : ""));
        json_object_set_new(jc, "key_type", json_string(token_key_type_name(cur)));
    }
    if (cert != NULL) {
        char *serial = rotate_serial(cert);
        if (renew_cert_from_x509(cert, &facts) == -1) {
            err_runtime("E_CERT", "the certificate of key %s cannot be read", r.label);
            free(serial);
            goto fail;
        }
        json_t *sans = json_array();
        for (size_t i = 0; i < facts.nnames; i++)
            json_array_append_new(sans, json_string(facts.names[i]));
        json_object_set_new(jc, "serial", json_string(serial ? serial : ""));
        json_object_set_new(jc, "not_before", jtime(facts.not_before));
        json_object_set_new(jc, "not_after", jtime(facts.not_after));
        json_object_set_new(jc, "sans", sans);
        free(serial);
        /* The cached ARI window only: status does not talk to the CA. */
        char *cid = renew_ari_cert_id(cert);
        if (cid && st->ari.cert_id && strcmp(cid, st->ari.cert_id) == 0) {
            ari.start = st->ari.start;
            ari.end = st->ari.end;
            have_ari = true;
        }
        free(cid);
    }
    json_object_set_new(j, "current", jc ? jc : json_null());
    renew_decide(&(struct renew_input){ .now = r.now, .cert = cert ? &facts : NULL,
                     .plan = e.plan, .pol = &pol, .ari = have_ari ? &ari : NULL,
                     .rnd = renew_rand_cert, .rnd_ctx = cert }, &d);
    json_object_set_new(j, "renewal", json_pack("{s:b, s:s, s:s, s:o, s:o, s:o, s:b, s:b}",
        "due", d.due || st->txn.step != STEP_NONE, "reason", renew_reason_name(d.reason),
        "detail", st->txn.step != STEP_NONE ? "an interrupted renewal is in progress" : d.detail,
        "due_at", jtime(d.due_at), "window_start", jtime(d.window_start),
        "latest", jtime(d.latest), "from_ari", d.from_ari, "rotate", pol.rotate));
    if (st->txn.step != STEP_NONE)
        json_object_set_new(j, "pending", json_pack("{s:s, s:o, s:o, s:o, s:o, s:b}",
            "step", state_step_name(st->txn.step), "started", jtime(st->txn.started),
            "reason", st->txn.reason ? json_string(st->txn.reason) : json_null(),
            "pending_label", st->txn.pending_label ? json_string(st->txn.pending_label)
                                                   : json_null(),
            "pending_id", st->txn.pending_id ? json_string(st->txn.pending_id) : json_null(),
            "rotate", st->txn.rotate));
    else
        json_object_set_new(j, "pending", json_null());
    json_t *ret = json_array();
    for (size_t i = 0; i < st->nretired; i++)
        json_array_append_new(ret, json_pack("{s:s, s:s, s:o, s:o}", "label",
            st->retired[i].label, "id", st->retired[i].id, "retired_at",
            jtime(st->retired[i].retired_at), "destroy_after",
            jtime(st->retired[i].retired_at + (time_t)pol.retire_after_secs)));
    json_object_set_new(j, "retired", ret);
    sc = (struct scan){ .st = st, .label = r.label, .unmanaged = json_array() };
    json_object_set_new(j, "unmanaged", sc.unmanaged);
    if (token_each_key(e.tok, scan_cb, &sc) == -1)
        goto fail;
    json_object_set_new(j, "labels_immutable", json_boolean(st->labels_immutable));
    json_object_set_new(j, "last_renewal", jtime(st->last_renewal));
    if (json) {
        cmdopt_print_json(j);
    } else {
        print_text(j);
        json_decref(j);
    }
    j = NULL; /* consumed */
    goto done;
fail:
    rc = cmdopt_fail(json);
done:
    json_decref(j);
    free(idhex);
    renew_cert_clear(&facts);
    X509_free(cert);
    token_key_free(cur);
    enroll_free(&e);
    state_free(st);
    return rc;
}
