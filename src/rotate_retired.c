/*
 * rotate_retired.c - destroying the retired pairs of key rotation (rotate.h)
 * once retire-after has passed, each destruction journalled first.  Split
 * from rotate.c, which holds the renewal's own steps.
 */
#include "rotate.h"

#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "util.h"

/* The current pair's id (hex) into *cur_id (NULL when there is none; caller frees).  0 or -1. */
static int
current_id(struct rotate *r, char **cur_id)
{
    struct token_key *cur = NULL;
    X509 *cert = NULL;
    size_t len;

    *cur_id = NULL;
    if (rotate_find_current(r, &cur, &cert) == -1)
        return -1;
    const uint8_t *id = cur != NULL ? token_key_id(cur, &len) : NULL;
    if (id != NULL && (*cur_id = hex_encode(id, len)) == NULL) {
        token_key_free(cur);
        X509_free(cert);
        return err_nomem();
    }
    token_key_free(cur);
    X509_free(cert);
    return 0;
}

/*
 * The token is read only once an entry is past retire-after: the current
 * pair is looked up only to make sure it is never the one destroyed, and an
 * entry not yet due is not touched at all.  A pair
 * whose destruction a killed run left half done is still in the list, past
 * retire-after, so it gets here again.
 */
int
rotate_housekeeping(struct rotate *r, json_t *destroyed)
{
    struct state *st = r->st;
    char *cur_id = NULL;
    bool looked = false;
    int n = 0, rc = -1;

    for (size_t i = st->nretired; i-- > 0;) {
        struct state_retired *e = &st->retired[i];
        uint8_t *id = NULL;
        size_t idlen;
        int d;

        if (r->now < e->retired_at) {
            /*
             * Retired "in the future": the clock was ahead then, or is
             * behind now.  Keep the pair, but count retire-after from now,
             * or it would be kept until the clock caught up (for ever, for
             * a clock once set years ahead).
             */
            warnmsg("retired key %s (id %s) was retired %lld s in the future: the host clock "
                "was ahead or is behind (check NTP); keeping it for retire-after from now",
                e->label, e->id, (long long)(e->retired_at - r->now));
            e->retired_at = r->now;
            if (state_save(st) == -1)
                goto out;
            continue;
        }
        if ((uint64_t)(r->now - e->retired_at) < r->pol->retire_after_secs)
            continue;
        if (!looked && current_id(r, &cur_id) == -1)
            goto out;
        looked = true;
        /* Never the current pair, nor one the journal still needs. */
        if ((cur_id && strcmp(cur_id, e->id) == 0) ||
            (st->txn.pending_id && strcmp(st->txn.pending_id, e->id) == 0) ||
            (st->txn.old_id && strcmp(st->txn.old_id, e->id) == 0)) {
            warnmsg("retired key %s (id %s) is in use again; forgetting it, not destroying it",
                e->label, e->id);
            state_retired_remove(st, i);
            if (state_save(st) == -1)
                goto out;
            continue;
        }
        free(st->destroying_id);
        if ((st->destroying_id = strdup(e->id)) == NULL) {
            err_nomem();
            goto out;
        }
        if (state_save(st) == -1)
            goto out;
        fault_point("destroy");
        if (hex_decode(e->id, &id, &idlen) == -1)
            goto out;
        d = token_destroy_id(r->e->tok, id, idlen);
        free(id);
        if (d == -1)
            goto out;
        progress("destroyed the retired key pair %s (%d object(s), retired %lld s ago)", e->label,
            d, (long long)(r->now - e->retired_at));
        if (destroyed != NULL)
            json_array_append_new(destroyed, json_string(e->label));
        state_retired_remove(st, i);
        free(st->destroying_id);
        st->destroying_id = NULL;
        if (state_save(st) == -1)
            goto out;
        n++;
    }
    rc = n;
out:
    free(cur_id);
    return rc;
}
