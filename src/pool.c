/*
 * pool.c - pool members sharing one key on one token (pool.h): the
 * [pool] settings, the lease and the record of the current certificate
 * (CKO_DATA objects on the token), and the follower's side of a renewal.
 */
#include "pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "csr.h"
#include "util.h"

#define LEASE_MAGIC "p11enroll-pool-lease 1"
#define RECORD_MAGIC "p11enroll-pool-record 1"
#define MAX_CONTENDED 50        /* lease attempts lost to a simultaneous taker */
#define SETTLE_MS 500           /* between the two checks of a new lease */

/* Member ids and pool names: what may reach a label, a message and a hook. */
static bool
id_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

int
pool_from_profile(const struct profile *p, struct pool *out)
{
    char host[256];

    memset(out, 0, sizeof(*out));
    out->leader = true;
    out->lease_secs = 15 * 60;
    out->takeover_is_fraction = true;
    out->num = 1;
    out->den = 2;
    if (p->pool.name == NULL) {
        if (p->pool.role || p->pool.member || p->pool.takeover_after || p->pool.lease) {
            err_input("E_MISSING", "%s:%u: [pool] needs name", p->name,
                profile_line(p, "pool", p->pool.role ? "role" : p->pool.member ? "member"
                    : p->pool.lease ? "lease" : "takeover-after"));
            return -1;
        }
        return 0;
    }
    if (!id_ok(p->pool.name)) {
        err_input("E_PROFILE_VALUE", "%s:%u: [pool] name: 1 to 64 of A-Z a-z 0-9 . - _",
            p->name, profile_line(p, "pool", "name"));
        return -1;
    }
    out->name = p->pool.name;
    out->leader = p->pool.role == NULL || strcmp(p->pool.role, "leader") == 0;
    if (p->pool.member != NULL) {
        snprintf(host, sizeof(host), "%s", p->pool.member);
    } else if (gethostname(host, sizeof(host)) == -1) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    if (!id_ok(host)) {
        err_input("E_PROFILE_VALUE", "%s:%u: [pool] member (default: the host name) must be 1 "
            "to 64 of A-Z a-z 0-9 . - _", p->name, profile_line(p, "pool", "member"));
        return -1;
    }
    snprintf(out->member, sizeof(out->member), "%s", host);
    if (p->output.cert == NULL || p->output.state_dir == NULL) {
        err_input("E_MISSING", "%s: a pool member needs [output] cert and state-dir (it "
            "compares its files with the token)", p->name);
        return -1;
    }
    if (p->pool.takeover_after != NULL &&
        profile_fraction(p->pool.takeover_after, &out->num, &out->den) == -1) {
        out->takeover_is_fraction = false;
        (void)profile_duration(p->pool.takeover_after, &out->takeover_secs);
    }
    if (p->pool.lease != NULL)
        (void)profile_duration(p->pool.lease, &out->lease_secs);
    if (out->lease_secs < 10)
        out->lease_secs = 10;
    return 0;
}

time_t
pool_takeover_at(const struct pool *pl, time_t due_at, time_t not_after)
{
    if (!pl->takeover_is_fraction)
        return due_at + (time_t)pl->takeover_secs;
    if (not_after <= due_at)
        return due_at;
    return due_at + (time_t)((double)(not_after - due_at) * pl->num / pl->den);
}

/* "<pool>.<what>" into buf. */
static const char *
obj_label(const struct pool *pl, const char *what, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", pl->name, what);
    return buf;
}

/*
 * The value of line "<key> <value>" in text (copied into buf, at most cap
 * - 1 bytes), or NULL.  Lines end at '\n'.
 */
static const char *
field(const char *text, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);

    for (const char *l = text; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l ? l + 1 : l) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            const char *v = l + kl + 1, *e = strchr(v, '\n');
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap)
                return NULL;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

/* ---- the record ------------------------------------------------------------------ */

/* Parse one record value into *r.  0, or -1 (not a record: nothing reported). */
static int
record_parse(const uint8_t *val, size_t len, struct pool_record *r)
{
    const char *text = (const char *)val, *pem;
    char at[32];

    memset(r, 0, sizeof(*r));
    if (val == NULL || strlen(text) != len || strncmp(text, RECORD_MAGIC "\n",
            sizeof(RECORD_MAGIC)) != 0)
        return -1;
    if (field(text, "member", r->member, sizeof(r->member)) == NULL || !id_ok(r->member) ||
        field(text, "at", at, sizeof(at)) == NULL || (pem = strstr(text, "-----BEGIN")) == NULL)
        return -1;
    r->at = (time_t)strtoll(at, NULL, 10);
    if (cert_parse((const uint8_t *)pem, len - (size_t)(pem - text), "the pool record",
            &r->leaf, &r->chain) == -1) {
        err_clear();
        return -1;
    }
    if (r->chain == NULL && (r->chain = sk_X509_new_null()) == NULL) {
        pool_record_clear(r);
        return -1;
    }
    return 0;
}

void
pool_record_clear(struct pool_record *r)
{
    X509_free(r->leaf);
    sk_X509_pop_free(r->chain, X509_free);
    memset(r, 0, sizeof(*r));
}

int
pool_record_read(struct token *tok, const struct pool *pl, struct pool_record *out)
{
    struct token_data *d = NULL;
    char label[96];
    long n;
    int rc = 1;

    memset(out, 0, sizeof(*out));
    if ((n = token_data_list(tok, POOL_APP, obj_label(pl, "record", label, sizeof(label)),
             &d)) == -1)
        return -1;
    for (long i = 0; i < n; i++) {
        struct pool_record r;
        if (record_parse(d[i].value, d[i].len, &r) == -1) {
            if (d[i].value != NULL)
                warnmsg("token %s: the data object %s does not hold a pool record; ignored",
                    token_label(tok), label);
            continue;
        }
        if (rc == 1 || r.at > out->at) {
            pool_record_clear(out);
            *out = r; /* transferred */
            rc = 0;
        } else {
            pool_record_clear(&r);
        }
    }
    token_data_free(d, n);
    return rc;
}

/* PEM of x appended to b.  0 or -1. */
static int
pem_append(BIO *b, X509 *x)
{
    return PEM_write_bio_X509(b, x) == 1 ? 0 : -1;
}

int
pool_record_write(struct token *tok, const struct pool *pl, X509 *leaf,
    STACK_OF(X509) *chain, time_t now)
{
    struct token_data *d = NULL;
    char label[96];
    unsigned long mine;
    BIO *b = BIO_new(BIO_s_mem());
    char *mem;
    long n = 0, len;
    int rc = -1;

    obj_label(pl, "record", label, sizeof(label));
    if (b == NULL || BIO_printf(b, RECORD_MAGIC "\nmember %s\nat %lld\n", pl->member,
            (long long)now) <= 0 || pem_append(b, leaf) == -1)
        goto nomem;
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (pem_append(b, sk_X509_value(chain, i)) == -1)
            goto nomem;
    len = BIO_get_mem_data(b, &mem);
    /* The old records, found before ours exists, go after it is there. */
    if ((n = token_data_list(tok, POOL_APP, label, &d)) == -1 ||
        token_data_create(tok, POOL_APP, label, mem, (size_t)len, &mine) == -1)
        goto out;
    for (long i = 0; i < n; i++)
        if (d[i].obj != mine && token_data_destroy(tok, d[i].obj) == -1)
            goto out;
    rc = 0;
    goto out;
nomem:
    err_nomem();
out:
    token_data_free(d, n);
    BIO_free(b);
    return rc;
}

/* ---- the lease ------------------------------------------------------------------- */

struct lease {
    char member[65], nonce[33];
    time_t expires;
};

static int
lease_parse(const uint8_t *val, size_t len, struct lease *l)
{
    const char *text = (const char *)val;
    char exp[32];

    memset(l, 0, sizeof(*l));
    if (val == NULL || strlen(text) != len ||
        strncmp(text, LEASE_MAGIC "\n", sizeof(LEASE_MAGIC)) != 0 ||
        field(text, "member", l->member, sizeof(l->member)) == NULL || !id_ok(l->member) ||
        field(text, "nonce", l->nonce, sizeof(l->nonce)) == NULL ||
        field(text, "expires", exp, sizeof(exp)) == NULL)
        return -1;
    l->expires = (time_t)strtoll(exp, NULL, 10);
    return 0;
}

void
pool_trace(const struct pool *pl, const char *fmt, ...)
{
    struct timespec ts;
    char msg[512];
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    verbose("pool %s [%s %lld.%03ld]: %s", pl->name, pl->member, (long long)ts.tv_sec,
        ts.tv_nsec / 1000000L, msg);
}

/* Sleep ms milliseconds. */
static void
nap(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/*
 * One look at the leases: destroy the expired ones, this member's
 * leftovers and the unreadable ones (except `nonce`, ours), and count the
 * others' unexpired ones (*holder: one of them).  Returns that count, or
 * -1 after reporting.
 */
static long
lease_others(struct token *tok, const struct pool *pl, const char *label, const char *nonce,
    bool purge, struct lease *holder)
{
    struct token_data *d = NULL;
    long n, others = 0;
    time_t now = time(NULL);

    if ((n = token_data_list(tok, POOL_APP, label, &d)) == -1)
        return -1;
    for (long i = 0; i < n; i++) {
        struct lease l;
        bool readable = d[i].value != NULL && lease_parse(d[i].value, d[i].len, &l) == 0;
        if (!readable && !purge) {
            /*
             * Found but not readable as a lease: destroyed since the find, or (a
             * token whose processes share a file store, as SoftHSM behind
             * p11-kit server) another member's lease still being written.
             * Counted as held: taking it for gone lets two members win.
             */
            pool_trace(pl, "lease object %lu found but not readable: counted as held",
                d[i].obj);
            snprintf(holder->member, sizeof(holder->member), "?");
            holder->expires = now + (time_t)pl->lease_secs;
            others++;
            continue;
        }
        if (readable) {
            if (nonce != NULL && strcmp(l.nonce, nonce) == 0)
                continue;
            /*
             * This member's leftover (its run was killed; the state dir's
             * lock says no other run of ours is alive) goes only once our
             * new lease exists: the others never see the lease free.
             */
            if (nonce == NULL && strcmp(l.member, pl->member) == 0 && l.expires > now)
                continue;
            if (strcmp(l.member, pl->member) != 0 && l.expires > now) {
                *holder = l;
                others++;
                continue;
            }
            if (strcmp(l.member, pl->member) == 0)
                progress("pool %s: removing this member's lease left by an earlier run",
                    pl->name);
            else
                warnmsg("pool %s: the lease of member %s expired %lld s ago; removing it",
                    pl->name, l.member, (long long)(now - l.expires));
        } else {
            warnmsg("pool %s: token %s has held an unreadable lease object for longer than "
                "a lease; removing it", pl->name, token_label(tok));
        }
        if (token_data_destroy(tok, d[i].obj) == -1) {
            token_data_free(d, n);
            return -1;
        }
    }
    token_data_free(d, n);
    return others;
}

int
pool_lease_take(struct token *tok, struct pool *pl, bool wait)
{
    char label[96], nonce[33], val[256];
    uint8_t rnd[16];
    struct lease holder;
    bool said = false, purge;
    long others, waited_unknown = 0;
    int lost = 0;

    obj_label(pl, "lease", label, sizeof(label));
    for (;;) {
        purge = waited_unknown > (long)pl->lease_secs;
        if ((others = lease_others(tok, pl, label, NULL, purge, &holder)) == -1)
            return -1;
        if (others > 0 && !said)
            pool_trace(pl, "lease held by %s (%ld lease objects of others)", holder.member,
                others);
        if (others > 0) {
            /* Only unreadable objects for longer than a lease: garbage, purged next. */
            waited_unknown = strcmp(holder.member, "?") == 0 ? waited_unknown + 1 : 0;
            if (!wait) {
                err_runtime("E_POOL_BUSY", "pool %s: member %s is renewing (its lease expires "
                    "in %lld s); not waiting (--no-wait)", pl->name, holder.member,
                    (long long)(holder.expires - time(NULL)));
                return -1;
            }
            if (!said)
                progress("pool %s: member %s is renewing; waiting for it (its lease expires in "
                    "%lld s)", pl->name, holder.member, (long long)(holder.expires - time(NULL)));
            said = true;
            nap(1000);
            continue;
        }
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            err_runtime("E_RANDOM", "no random bytes for the pool lease");
            return -1;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
        snprintf(val, sizeof(val), LEASE_MAGIC "\nmember %s\nnonce %s\nexpires %lld\n",
            pl->member, nonce, (long long)(time(NULL) + (time_t)pl->lease_secs));
        if (token_data_create(tok, POOL_APP, label, val, strlen(val), &pl->lease_obj) == -1)
            return -1;
        pl->held = true;
        pool_trace(pl, "lease free: created lease object %lu (nonce %.8s)", pl->lease_obj,
            nonce);
        /*
         * Create, then check: whoever sees another lease after creating its
         * own backs off.  Checked twice, SETTLE_MS apart: a token whose
         * sessions may show another's new object a moment late (SoftHSM
         * behind p11-kit server: one process per client over one file
         * store) must not let two members that created at the same instant
         * both see nothing.
         */
        if ((others = lease_others(tok, pl, label, nonce, false, &holder)) == 0) {
            nap(SETTLE_MS);
            others = lease_others(tok, pl, label, nonce, false, &holder);
            pool_trace(pl, "second check: %ld other leases", others);
        } else {
            pool_trace(pl, "first check: %ld other leases", others);
        }
        if (others == -1)
            return -1;  /* the caller releases */
        if (others == 0) {
            verbose("pool %s: lease taken by %s", pl->name, pl->member);
            return 0;
        }
        pool_lease_release(tok, pl);
        if (++lost >= MAX_CONTENDED) {
            err_runtime("E_POOL_BUSY", "pool %s: the lease stays contended (member %s); try "
                "again", pl->name, holder.member);
            return -1;
        }
        verbose("pool %s: member %s took the lease at the same time; backing off", pl->name,
            holder.member);
        RAND_bytes(rnd, 2);
        nap(100 + (unsigned)((rnd[0] << 8 | rnd[1]) % 1400));
    }
}

int
pool_lease_held(struct token *tok, const struct pool *pl, char *member, size_t cap)
{
    char label[96];
    struct lease holder;
    long n = lease_others(tok, pl, obj_label(pl, "lease", label, sizeof(label)), NULL, false,
        &holder);

    if (n > 0)
        snprintf(member, cap, "%s", holder.member);
    return n > 0 ? 1 : (int)n;
}

void
pool_lease_release(struct token *tok, struct pool *pl)
{
    if (!pl->held)
        return;
    pool_trace(pl, "releasing lease object %lu", pl->lease_obj);
    if (token_data_destroy(tok, pl->lease_obj) == -1) {
        err_clear();
        warnmsg("pool %s: could not remove this member's lease; it expires by itself",
            pl->name);
    }
    pl->held = false;
}

bool
pool_file_is(const char *path, X509 *cert)
{
    X509 *first = NULL;
    STACK_OF(X509) *rest = NULL;
    bool same;

    if (path == NULL || access(path, F_OK) == -1)
        return false;
    same = cert_read(path, "[output] cert", &first, &rest) == 0 && X509_cmp(first, cert) == 0;
    err_clear();
    X509_free(first);
    sk_X509_pop_free(rest, X509_free);
    return same;
}
