/*
 * plan.h - the SAN planner (edge-san-rules.md): profile in, plan out.
 *
 * Pure code: no I/O, no printing, no global state.  A plan is either a
 * complete certificate description (kind, subject, ordered SANs with the
 * profile key and rule that put each name there, EKUs, key type, warnings,
 * pool facts) or exactly one error (code, profile key, offending name).
 */
#ifndef P11E_PLAN_H
#define P11E_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "profile.h"

enum plan_kind {
    PLAN_EXTERNAL,      /* Access Edge / Web Conferencing / A/V auth, public CA */
    PLAN_INTERNAL,      /* Edge internal interface */
    PLAN_AV,            /* separate A/V Authentication certificate (split-av) */
    PLAN_NAMES,         /* generic certificate from [names] */
};

/* Why a name is on the certificate: the profile key and the rule id. */
struct plan_source {
    const char *from;           /* profile key, e.g. "webconf-edge" */
    const char *rule;           /* rule id, e.g. "R-E5" */
};

struct plan_name {
    char *name;                 /* normalised: lower case, no trailing dot */
    struct plan_source src;     /* the first (winning) source */
    struct plan_source *also;   /* later sources that gave the same name */
    size_t nalso;
};

struct plan_warning {
    const char *code;           /* "W_DUPLICATE_FOLDED", ... */
    const char *key;            /* profile key concerned, or NULL */
    char *message;
};

struct plan_error {
    const char *code;           /* NULL: no error */
    const char *section;        /* "edge", "names", "key", or NULL */
    const char *key;            /* profile key, e.g. "webconf-edge" */
    char *name;                 /* offending name as written, or NULL */
    char *message;              /* one line, without file or line */
};

struct plan {
    enum plan_kind kind;
    const char *certificate;    /* "external", "internal", "av", "names" */
    const char *product;        /* "lync2013", ...; NULL for [names] */
    const char *ca_kind;        /* "public" / "private"; NULL for [names] */
    char *cn;                   /* subject common name */
    char *subject;              /* RFC 4514 string, "CN=..." first */
    struct plan_source subject_src;
    struct plan_name *sans;     /* in certificate order; none: no SAN extension */
    size_t nsans;
    const char *eku[2];         /* "serverAuth", then "clientAuth" if asked */
    size_t neku;
    const char *key;            /* canonical key type, e.g. "rsa:2048" */
    struct plan_warning *warnings;
    size_t nwarnings;

    /* Topology facts (Edge only). */
    bool pool;
    const char *load_balancing; /* "dns" / "hardware" for a pool, else NULL */
    bool nat;
    char **members;             /* normalised, duplicates dropped */
    size_t nmembers;
    const char *shared_key_note;/* set for a pool: R-E12 / R-I5 */

    struct plan_error error;
};

/*
 * Plan the certificate a profile describes.  Returns 0 and a plan in *out, or
 * -1 with *out holding a plan whose error.code is set (and nothing else is
 * meaningful), or -1 with *out == NULL when memory ran out.  The caller frees
 * *out with plan_free().
 */
int plan_build(const struct profile *p, struct plan **out);

/* Free a plan; NULL is fine. */
void plan_free(struct plan *pl);

/*
 * The plan as the JSON object of cli.md (or, for a failed plan,
 * {"error": {"code", "key", "name", "message"}}).  New reference (caller
 * json_decref()s it), NULL on out of memory.
 */
json_t *plan_to_json(const struct plan *pl);

/*
 * Check one normalised name (edge-san-rules.md §3).  `wildcard` allows a
 * leading "*." label.  Returns NULL when the name is valid, else the error
 * code, with a short reason in why[len].
 */
const char *plan_check_name(const char *name, bool wildcard, char *why, size_t len);

/*
 * Normalise a name as §3 says: trim blanks, lower-case ASCII, drop one
 * trailing dot.  New string (caller frees), NULL on out of memory.
 */
char *plan_normalise(const char *in);

#endif
