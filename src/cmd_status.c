/* cmd_status.c - p11enroll status: the current pair, retired pairs, pending work, next renewal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cmdopt.h"
#include "pool.h"
#include "commands.h"
#include "renew.h"
#include "renew_flow.h"
#include "rotate.h"
#include "state.h"
#include "text.h"
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
scan_cb(struct token *tok, struct token_key *key, const struct token_key_listing *kl, void *arg)
{
    struct scan *s = arg;
    const char *l = token_key_label(key);
    size_t n = strlen(s->label), idlen;
    const uint8_t *id = token_key_id(key, &idlen);
    char *hex;

    (void)tok;
    (void)kl;
    if (strncmp(l, s->label, n) != 0 ||
        (strncmp(l + n, ".pending.", 9) != 0 && strncmp(l + n, ".retired.", 9) != 0))
        return 0;
    if ((hex = hex_encode(id, idlen)) == NULL)
        return err_nomem();
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
    if (json_is_object(pend) && json_is_true(json_object_get(pend, "waiting")))
        printf("pending      waiting for a certificate since %s (CSR: %s, new key %s); "
               "'p11enroll import --profile %s --cert ISSUED.pem' completes it "
               "('renew --abandon' gives it up)\n", S(pend, "waiting_since"), S(pend, "csr"),
            S(pend, "pending_label"), S(j, "profile"));
    else if (json_is_object(pend))
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
    if ((v = json_object_get(j, "pool")) != NULL)
        printf("pool         %s, member %s (%s); last renewed by %s at %s; this member's "
               "files %s the token\n", S(v, "name"), S(v, "member"), S(v, "role"),
            S(v, "renewed_by"), S(v, "renewed_at"),
            json_is_true(json_object_get(v, "files_match")) ? "match" : "do NOT match");
    json_array_foreach(json_object_get(j, "unreadable"), i, v)
        printf("unreadable   %s: %s (left by a crash?); 'p11enroll repair' removes it\n",
            S(v, "object"), S(v, "why"));
    if (json_is_true(json_object_get(j, "labels_immutable")))
        printf("note         the token refuses label changes: the current key is found by id\n");
#undef S
}

/* The current pair and certificate ("current"), or NULL when there is no pair. */
static json_t *
current_json(const struct renew_ctx *c)
{
    size_t len;
    const uint8_t *id;
    char *idhex, *serial;
    json_t *jc, *sans;

    if (c->cur == NULL)
        return NULL;
    id = token_key_id(c->cur, &len);
    idhex = hex_encode(id, len);
    jc = json_object();
    json_object_set_new(jc, "key", json_string(token_key_uri(c->cur)));
    json_object_set_new(jc, "key_id", json_string(idhex ? idhex : ""));
    json_object_set_new(jc, "key_type", json_string(token_key_type_name(c->cur)));
    free(idhex);
    if (c->cert == NULL)
        return jc;
    serial = rotate_serial(c->cert);
    sans = json_array();
    for (size_t i = 0; i < c->facts.nnames; i++)
        json_array_append_new(sans, json_string(c->facts.names[i]));
    json_object_set_new(jc, "serial", json_string(serial ? serial : ""));
    json_object_set_new(jc, "not_before", jtime(c->facts.not_before));
    json_object_set_new(jc, "not_after", jtime(c->facts.not_after));
    json_object_set_new(jc, "sans", sans);
    free(serial);
    return jc;
}

/* The renewal decision ("renewal"), with the cached ARI window only: status does not talk to the CA. */
static json_t *
renewal_json(const struct renew_ctx *c)
{
    const struct state *st = c->st;
    struct renew_ari ari = { 0 };
    struct renew_decision d;
    bool have_ari = false, pending = st->txn.step != STEP_NONE;

    if (c->cert != NULL) {
        char *cid = renew_ari_cert_id(c->cert);
        if (cid && st->ari.cert_id && strcmp(cid, st->ari.cert_id) == 0) {
            ari.start = st->ari.start;
            ari.end = st->ari.end;
            have_ari = true;
        }
        free(cid);
    }
    renew_decide(&(struct renew_input){ .now = c->r.now, .cert = c->cert ? &c->facts : NULL,
                     .plan = c->e.plan, .pol = &c->pol, .ari = have_ari ? &ari : NULL,
                     .rnd = renew_rand_cert, .rnd_ctx = c->cert }, &d);
    return json_pack("{s:b, s:s, s:s, s:o, s:o, s:o, s:b, s:b}",
        "due", d.due || pending, "reason", renew_reason_name(d.reason),
        "detail", !pending ? d.detail : st->txn.waiting_since != 0
            ? "waiting for the CA's certificate (renew exited 4)"
            : "an interrupted renewal is in progress",
        "due_at", jtime(d.due_at), "window_start", jtime(d.window_start),
        "latest", jtime(d.latest), "from_ari", d.from_ari, "rotate", c->pol.rotate);
}

/*
 * [ca] type = manual: a renewal waiting for the CA (its CSR is out) adds
 * waiting, waiting_since and csr to `pend`.
 */
static void
pending_waiting(const struct state *st, json_t *pend)
{
    const struct state_txn *t = &st->txn;
    bool w = t->step == STEP_ORDER && t->waiting_since != 0 && t->csr_path != NULL;

    json_object_set_new(pend, "waiting", json_boolean(w));
    if (w) {
        json_object_set_new(pend, "waiting_since", jtime(t->waiting_since));
        char *csr = sanitize(t->csr_path, 4096); /* read back from the state file */
        json_object_set_new(pend, "csr", json_string(csr ? csr : "?"));
        free(csr);
    }
}

/* The renewal a killed run left, or one waiting for the CA ("pending"), or JSON null. */
static json_t *
pending_json(const struct state *st)
{
    json_t *pend;

    if (st->txn.step == STEP_NONE)
        return json_null();
    pend = json_pack("{s:s, s:o, s:o, s:o, s:o, s:b}",
        "step", state_step_name(st->txn.step), "started", jtime(st->txn.started),
        "reason", st->txn.reason ? json_string(st->txn.reason) : json_null(),
        "pending_label", st->txn.pending_label ? json_string(st->txn.pending_label)
                                               : json_null(),
        "pending_id", st->txn.pending_id ? json_string(st->txn.pending_id) : json_null(),
        "rotate", st->txn.rotate);
    if (pend != NULL)
        pending_waiting(st, pend);
    return pend;
}

/* The retired pairs and when each will be destroyed ("retired"). */
static json_t *
retired_json(const struct state *st, const struct renew_policy *pol)
{
    json_t *ret = json_array();

    for (size_t i = 0; i < st->nretired; i++)
        json_array_append_new(ret, json_pack("{s:s, s:s, s:o, s:o}", "label",
            st->retired[i].label, "id", st->retired[i].id, "retired_at",
            jtime(st->retired[i].retired_at), "destroy_after",
            jtime(st->retired[i].retired_at + (time_t)pol->retire_after_secs)));
    return ret;
}

/*
 * "unreadable": the objects a crash left that nothing can use or find
 * (token_find_strays(), from the pass `objs`); `p11enroll repair` removes
 * them.  0 or -1.
 */
static int
strays_json(struct renew_ctx *c, const struct token_objects *objs, json_t *j)
{
    struct token_stray *s = NULL;
    json_t *a = json_array();
    size_t n;

    if (a == NULL || enroll_find_strays(&c->e, objs, &s, &n) == -1) {
        json_decref(a);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "object", s[i].what, "why", s[i].why));
    free(s);
    json_object_set_new(j, "unreadable", a);
    return 0;
}

/*
 * Everything status shows, as one JSON object into *out: the key listing
 * and the stray scan share one pass over the token's objects (issue 12:
 * one read per object).  0, or -1 after reporting.
 */
static int
status_json(struct renew_ctx *c, const char *profile, json_t **out)
{
    json_t *j = json_object(), *jc = current_json(c);
    struct token_objects *objs = NULL;
    struct scan sc;

    json_object_set_new(j, "profile", json_string(profile));
    json_object_set_new(j, "token", json_string(token_uri(c->e.tok)));
    json_object_set_new(j, "label", json_string(c->r.label));
    json_object_set_new(j, "current", jc ? jc : json_null());
    json_object_set_new(j, "renewal", renewal_json(c));
    json_object_set_new(j, "pending", pending_json(c->st));
    json_object_set_new(j, "retired", retired_json(c->st, &c->pol));
    sc = (struct scan){ .st = c->st, .label = c->r.label, .unmanaged = json_array() };
    json_object_set_new(j, "unmanaged", sc.unmanaged);
    if (token_objects_read(c->e.tok, TOKEN_OBJ_KEYS | TOKEN_OBJ_ALL, &objs) == -1 ||
        token_objects_each_key(c->e.tok, objs, false, scan_cb, &sc) == -1 ||
        strays_json(c, objs, j) == -1) {
        token_objects_free(objs);
        json_decref(j);
        return -1;
    }
    token_objects_free(objs);
    json_object_set_new(j, "labels_immutable", json_boolean(c->st->labels_immutable));
    json_object_set_new(j, "last_renewal", jtime(c->st->last_renewal));
    if (c->pool.name != NULL)
        json_object_set_new(j, "pool", pool_status_json(c));
    *out = j;
    return 0;
}

int
cmd_status(int argc, char **argv)
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
    struct renew_ctx ctx = { .lockfd = -1 };
    json_t *j = NULL;
    const struct cmdopt_spec spec = { .longopts = opts, .usage = usage, .token = &over,
        .json = &json, .profile = &profile };
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    if (profile == NULL) {
        cmdopt_usage_error("--profile is required");
        return cmdopt_fail(json);
    }
    if (renew_setup(profile, &over, RENEW_FOR_STATUS, false, &ctx) == -1 ||
        renew_current(&ctx) == -1 || status_json(&ctx, profile, &j) == -1) {
        rc = cmdopt_fail(json);
    } else if (json) {
        cmdopt_print_json(j);
    } else {
        print_text(j);
        json_decref(j);
    }
    renew_ctx_free(&ctx);
    return rc;
}
