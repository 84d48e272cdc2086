/*
 * profile.h - the enrollment profile (INI, cli.md "Profile"), parsed with inih.
 *
 * The loader knows every section and key of the format and keeps each value
 * as a plain string (NULL when absent), so later modules only add meaning.
 * It rejects what it cannot read safely: unknown sections and keys, repeated
 * sections or keys, empty values, lines over PROFILE_MAX_LINE bytes, NUL,
 * control or non-UTF-8 bytes, and values of
 * already-defined enumerations that are not one of their spellings (key type,
 * yes/no, [csr] hash, [ca] type and challenge, durations, renew-before,
 * [edge] product/certificate/topology/load-balancing/internal-san/ca-kind).
 * Each error is reported once with err_input() as "<file>:<line>: <what>" and
 * exits 2.  Semantic checks of names are the planner's job (plan.h).
 * Indented lines are ordinary lines: there are no multi-line values.
 */
#ifndef P11E_PROFILE_H
#define P11E_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROFILE_MAX_LINE 4096           /* bytes, without the line ending */
#define PROFILE_MAX_SIZE (1024 * 1024)  /* bytes in one profile file */

struct profile {
    char *name;                 /* the file name used in messages */

    struct {                    /* [token] */
        char *uri, *module, *pin_file;
    } token;
    struct {                    /* [key] */
        char *label, *type;
    } key;
    struct {                    /* [edge]: edge-san-rules.md §4 */
        char *product, *certificate, *topology, *load_balancing, *nat;
        char *members, *access_edge, *webconf_edge, *av_edge;
        char *sip_domains, *xmpp_domains, *xmpp_host;
        char *internal_fqdn, *pool_fqdn, *internal_san, *extra_sans;
        char *client_auth, *ca_kind, *split_av;
    } edge;
    struct {                    /* [names]: generic certificates */
        char *subject, *sans;
    } names;
    struct {                    /* [subject]: extra DN attributes */
        char *c, *st, *l, *o, *ou;
    } subject;
    struct {                    /* [csr] */
        char *hash, *ms_template, *out;  /* out: where enroll (manual) writes the CSR */
    } csr;
    struct {                    /* [ca] */
        char *type, *directory, *ca_bundle, *contact, *account_key;
        char *eab_kid, *eab_hmac_file, *challenge, *http_listen, *webroot;
        char *dns_hook, *timeout, *dns_wait;
        char *allow_origins;    /* other origins the CA may send URLs for, "," separated */
    } ca;
    struct {                    /* [output] */
        char *cert, *chain, *fullchain, *state_dir;
    } output;
    struct {                    /* [renewal] */
        char *renew_before, *rotate, *retire_after, *jitter;
    } renewal;
    struct {                    /* [hooks] */
        char *deploy;
        char *csr_ready;        /* renew with [ca] type = manual: the CSR is written */
    } hooks;
    struct {                    /* [pool]: members sharing one key (pool.h) */
        char *name, *role, *member, *takeover_after, *lease;
    } pool;

    bool has_edge, has_names;   /* the section header was present */
    unsigned *lines;            /* internal: line of each known key, 0 = absent */
};

/*
 * Load the profile at `path` (at most PROFILE_MAX_SIZE bytes).  Returns 0 and
 * a new profile in *out (free with profile_free()), or -1 after reporting
 * with err_input() (unreadable file included: exit 2) and *out == NULL.
 */
int profile_load(const char *path, struct profile **out);

/*
 * Same as profile_load() for `len` bytes at `buf` (need not be
 * NUL-terminated); `name` is used in messages.  For tests and the fuzzer.
 */
int profile_load_mem(const char *name, const char *buf, size_t len,
    struct profile **out);

/* Free a profile; NULL is fine. */
void profile_free(struct profile *p);

/*
 * Line of `key` in `[section]`, or 0 when the key was not given (or is not a
 * key of the format).  Used to point messages at the profile.
 */
unsigned profile_line(const struct profile *p, const char *section, const char *key);

/*
 * Value helpers, shared with later modules.  Each returns 0 on success and -1
 * on a bad spelling, without reporting.
 *   profile_bool:     "yes" / "no"
 *   profile_duration: "0" or N followed by s, m, h or d; *secs in seconds
 *   profile_seconds:  N (seconds) or a duration, at most 1 day
 *   profile_fraction: "A/B" with 0 < A < B (renew-before)
 */
int profile_bool(const char *v, bool *out);
int profile_duration(const char *v, uint64_t *secs);
int profile_seconds(const char *v, uint64_t *secs);
int profile_fraction(const char *v, unsigned *num, unsigned *den);

#endif
