/*
 * pool.h - members of an Edge pool sharing one key on one network HSM
 * ([pool] in the profile): who renews, and how the others follow.  The
 * members share nothing but the token, so everything they agree on lives
 * there, in two kinds of CKO_DATA objects (CKA_APPLICATION "p11enroll-pool"):
 *
 *   <name>.lease    held by the member renewing now: "member, nonce,
 *                   expires".  Taken by create-then-check (token.h data
 *                   objects): a member wins only when, after creating its
 *                   lease, it sees no other unexpired lease; otherwise it
 *                   destroys its own and backs off.  Of two members whose
 *                   leases overlap at least one sees the other, so at most
 *                   one wins (the token must show one member's objects to
 *                   the others at once: one HSM, or a cluster that
 *                   replicates synchronously).
 *   <name>.record   the current certificate, its chain, who renewed it and
 *                   when: what a follower needs to write its [output] files
 *                   (the token keeps no chain) and to see in a handful of
 *                   calls that it has nothing to do.
 *
 * The leader renews when due; a follower only picks up the certificate
 * (files, deploy hook), and takes over when the leader has not renewed by
 * takeover-after into the renewal window.  --force renews on any member.
 */
#ifndef P11E_POOL_H
#define P11E_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "profile.h"
#include "renew.h"
#include "token.h"

#define POOL_APP "p11enroll-pool"

struct pool {
    const char *name;           /* [pool] name (borrowed), NULL: not in a pool */
    char member[65];            /* [pool] member, default the host name */
    bool leader;                /* role = leader (the default) */
    bool takeover_is_fraction;  /* takeover-after = A/B of the time left at due_at */
    unsigned num, den;
    uint64_t takeover_secs;
    uint64_t lease_secs;        /* [pool] lease (default 15m) */
    bool held;                  /* this run holds the lease */
    unsigned long lease_obj;
};

/*
 * [pool] of the profile into *out (out->name NULL when there is none).
 * 0, or -1 after reporting (exit 2: bad member or name characters).
 */
int pool_from_profile(const struct profile *p, struct pool *out);

/* The record of the current certificate on the token. */
struct pool_record {
    char member[65];            /* who installed it (checked charset) */
    time_t at;
    X509 *leaf;
    STACK_OF(X509) *chain;      /* may be empty */
};

/*
 * Read <name>.record (the newest when several).  0 and *out
 * (pool_record_clear()), 1 when there is none or it does not parse
 * (warned), -1 after reporting (token error).
 */
int pool_record_read(struct token *tok, const struct pool *pl, struct pool_record *out);
void pool_record_clear(struct pool_record *r);

/*
 * Replace <name>.record with `leaf` and `chain` (may be NULL), installed by
 * this member: the new object is created before the old ones go.  0 or -1.
 */
int pool_record_write(struct token *tok, const struct pool *pl, X509 *leaf,
    STACK_OF(X509) *chain, time_t now);

/*
 * Take the pool's lease: wait while another member holds an unexpired one
 * (with !wait: fail with E_POOL_BUSY naming the holder).  Expired leases
 * and this member's own leftovers (a killed run) are destroyed.  0 (held),
 * or -1 after reporting.
 */
int pool_lease_take(struct token *tok, struct pool *pl, bool wait);

/*
 * Does another member hold the lease now?  1 (its id into member), 0, or -1
 * after reporting.  Expired leases are removed on the way.
 */
int pool_lease_held(struct token *tok, const struct pool *pl, char *member, size_t cap);

/* With -v: "pool <name> [<member> <epoch.ms>]: <fmt...>" (lease and record decisions). */
void pool_trace(const struct pool *pl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Destroy this run's lease (a failure is a warning: it expires).  Accepts !held. */
void pool_lease_release(struct token *tok, struct pool *pl);

/*
 * When a follower takes over a renewal due at `due_at` for a certificate
 * expiring at `not_after`: due_at + takeover-after (a duration, or a
 * fraction of the time then left).  Pure.
 */
time_t pool_takeover_at(const struct pool *pl, time_t due_at, time_t not_after);

/* Is `path` a PEM file whose first certificate is `cert`? */
bool pool_file_is(const char *path, X509 *cert);

/* ---- a member's side of renew and status (pool_flow.c) ---- */

struct renew_ctx;
struct renew_result;
struct renew_decision;

/*
 * A follower's no-op check, before anything else is read: the record names
 * the certificate this member's [output] cert holds and it is not time to
 * take over.  1 (nothing to do: *d says why), 0 (look closer), -1 after
 * reporting.  One find and one read on the token.
 */
int pool_quick_check(struct renew_ctx *c, bool force, struct renew_decision *d);

/*
 * A follower does not renew while the leader should: a due decision becomes
 * not due until pool_takeover_at() (time and expiry), or for good (other
 * reasons: the leader's profile decides).  No-op for leaders, --force and
 * outside a pool.
 */
void pool_gate(struct renew_ctx *c, bool force, struct renew_decision *d);

/*
 * Before renew_run()/renew_resume() change anything: take the lease.  Then,
 * when another member renewed meanwhile (the current certificate is not
 * the one the decision saw, or the journal's old pair is no longer
 * current), abandon this member's own unfinished renewal and pick up
 * instead.  0 (go on, lease held), 1 (picked up into *res), -1 after
 * reporting.
 */
int pool_before_change(struct renew_ctx *c, bool resuming, struct renew_result *res);

/* After a renewal (rc 0): record the new certificate.  Then release the lease. */
int pool_after_change(struct renew_ctx *c, int rc);

/*
 * Not due: write the [output] files from the token when they do not hold
 * its current certificate, and run the deploy hook (res->picked_up); repair
 * a missing or stale record when this member's files are current.  0, or
 * -1 after reporting.
 */
int pool_sync(struct renew_ctx *c, struct renew_result *res);

/* The pool's part of `status` (a JSON object), or NULL outside a pool. */
json_t *pool_status_json(struct renew_ctx *c);

#endif
