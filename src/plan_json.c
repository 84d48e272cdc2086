/* plan_json.c - a plan (or its one error) as the JSON object of cli.md. */
#include "plan.h"

#include <stdbool.h>

/* json_object_set_new() that remembers a failure instead of returning it. */
static void
jset(json_t *o, const char *k, json_t *v, bool *bad)
{
    if (v == NULL || json_object_set_new(o, k, v) == -1)
        *bad = true;
}

static void
jpush(json_t *a, json_t *v, bool *bad)
{
    if (v == NULL || json_array_append_new(a, v) == -1)
        *bad = true;
}

static json_t *
source_json(const struct plan_source *s, bool *bad)
{
    json_t *o = json_object();

    if (o == NULL) {
        *bad = true;
        return NULL;
    }
    jset(o, "from", json_string(s->from), bad);
    jset(o, "rule", json_string(s->rule), bad);
    return o;
}

static json_t *
error_json(const struct plan *pl, bool *bad)
{
    const struct plan_error *e = &pl->error;
    json_t *root = json_object(), *o = json_object();

    if (root == NULL || o == NULL) {
        json_decref(root);
        json_decref(o);
        *bad = true;
        return NULL;
    }
    jset(o, "code", json_string(e->code), bad);
    jset(o, "key", e->key ? json_string(e->key) : json_null(), bad);
    jset(o, "name", e->name ? json_string(e->name) : json_null(), bad);
    jset(o, "message", json_string(e->message ? e->message : e->code), bad);
    jset(root, "error", o, bad);
    return root;
}

json_t *
plan_to_json(const struct plan *pl)
{
    json_t *o, *a;
    bool bad = false;

    if (pl->error.code != NULL) {
        o = error_json(pl, &bad);
        goto out;
    }
    if ((o = json_object()) == NULL)
        return NULL;
    jset(o, "certificate", json_string(pl->certificate), &bad);
    jset(o, "subject", json_string(pl->subject), &bad);
    if ((a = json_array()) != NULL)
        for (size_t i = 0; i < pl->nsans; i++)
            jpush(a, json_string(pl->sans[i].name), &bad);
    jset(o, "sans", a, &bad);
    if ((a = json_array()) != NULL)
        for (size_t i = 0; i < pl->neku; i++)
            jpush(a, json_string(pl->eku[i]), &bad);
    jset(o, "eku", a, &bad);
    jset(o, "key", json_string(pl->key), &bad);
    if ((a = json_array()) != NULL) {
        for (size_t i = 0; i < pl->nsans; i++) {
            const struct plan_name *n = &pl->sans[i];
            json_t *e = json_object(), *also;
            if (e == NULL) {
                bad = true;
                break;
            }
            jset(e, "name", json_string(n->name), &bad);
            jset(e, "from", json_string(n->src.from), &bad);
            jset(e, "rule", json_string(n->src.rule), &bad);
            if (n->nalso > 0) {
                if ((also = json_array()) != NULL)
                    for (size_t k = 0; k < n->nalso; k++)
                        jpush(also, source_json(&n->also[k], &bad), &bad);
                jset(e, "also", also, &bad);
            }
            jpush(a, e, &bad);
        }
    }
    jset(o, "names", a, &bad);
    if ((a = json_array()) != NULL) {
        for (size_t i = 0; i < pl->nwarnings; i++) {
            json_t *w = json_object();
            if (w == NULL) {
                bad = true;
                break;
            }
            jset(w, "code", json_string(pl->warnings[i].code), &bad);
            jset(w, "message", json_string(pl->warnings[i].message), &bad);
            jpush(a, w, &bad);
        }
    }
    jset(o, "warnings", a, &bad);
    /* Extensions of the cli.md shape. */
    jset(o, "cn", json_string(pl->cn), &bad);
    jset(o, "subject_from", source_json(&pl->subject_src, &bad), &bad);
    if (pl->kind != PLAN_NAMES) {
        json_t *pool;

        jset(o, "product", json_string(pl->product), &bad);
        jset(o, "ca_kind", json_string(pl->ca_kind), &bad);
        jset(o, "topology", json_string(pl->pool ? "pool" : "single"), &bad);
        jset(o, "nat", json_boolean(pl->nat), &bad);
        if (pl->pool && (pool = json_object()) != NULL) {
            if ((a = json_array()) != NULL)
                for (size_t i = 0; i < pl->nmembers; i++)
                    jpush(a, json_string(pl->members[i]), &bad);
            jset(pool, "members", a, &bad);
            jset(pool, "load_balancing", json_string(pl->load_balancing), &bad);
            jset(pool, "shared_key", json_string(pl->shared_key_note), &bad);
            jset(o, "pool", pool, &bad);
        } else if (pl->pool)
            bad = true;
    }
out:
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
