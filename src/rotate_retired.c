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

int
rotate_housekeeping(struct rotate *r, json_t *destroyed)
{
    struct state *st = r->st;
    struct token_key *cur = NULL;
    X509 *cert = NULL;
    char *cur_id = NULL;
    int n = 0, rc = -1;

    if (st->nretired == 0)
        return 0;
    if (rotate_find_current(r, &cur, &cert) == -1)
        return -1;
    if (cur != NULL) {
        size_t len;
        const uint8_t *id = token_key_id(cur, &len);
        cur_id = hex_encode(id, len);
    }
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
    token_key_free(cur);
    X509_free(cert);
    return rc;
}
