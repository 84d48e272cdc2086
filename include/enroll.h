/*
 * enroll.h - the steps every enrollment path shares: profile and plan, the
 * token and its key, the CSR, and installing the issued certificate (on
 * the token next to its key, and to the [output] files).
 */
#ifndef P11E_ENROLL_H
#define P11E_ENROLL_H

#include <stdbool.h>

#include <openssl/x509.h>

#include "plan.h"
#include "profile.h"
#include "token.h"

struct acme_client;

struct enroll {
    struct profile *prof;
    struct plan *plan;
    struct token *tok;
    struct token_key *key;    /* NULL until enroll_key() */
    bool key_created;         /* this run generated the key */
    bool skip_deploy_hook;    /* the caller runs [hooks] deploy itself (renew) */
    bool skip_result;         /* the caller prints the result itself (renew) */
    const char *stage_fullchain; /* when set, install writes leaf + chain to this file
                                    only, not the [output] files (renew writes those
                                    after its switch, with enroll_write_outputs()) */
    struct acme_client *acme; /* the run's ACME client (acme_enroll_client()), or NULL */
};

/*
 * Load the profile and plan it (plan errors: exit 2, with --json the
 * planner's error object is recorded for err_print_json()).  No token I/O.
 */
int enroll_plan(const char *profile_path, struct enroll *e);

/*
 * Open the profile's token ([token] uri, module, pin-file; the non-NULL
 * fields of `over` win) and log in.
 */
int enroll_open(struct enroll *e, const struct token_opts *over);

enum enroll_key_mode {
    KEY_EXISTING,   /* the key must be there */
    KEY_NEW,        /* generate it; a taken label is refused (csr --new-key) */
    KEY_ANY,        /* use it, or generate it when missing (enroll) */
};

/*
 * Find the key named by [key] label, or generate it (type from the plan),
 * as `mode` says.  A missing key under KEY_EXISTING fails (exit 1) saying
 * how to make one; an existing key of another type than the plan's is
 * refused.
 */
int enroll_key(struct enroll *e, enum enroll_key_mode mode);

/* Build the CSR from the plan and sign it on the token. */
int enroll_csr(struct enroll *e, X509_REQ **out);

/*
 * Install an issued certificate: it must be for e->key (or, with no key
 * selected yet, for some key on the token, which becomes e->key), carry
 * the plan's names when there is a plan, and its chain must link.  Then
 * the certificate is stored on the token and the [output] files are
 * written atomically.  Nothing is changed when a check fails.
 */
int enroll_install(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain);

/*
 * Write the [output] cert, chain and fullchain files for `leaf` and its
 * chain (may be NULL), each atomically; an output path that is a directory
 * or an unwritable directory is refused before any file changes.
 */
int enroll_write_outputs(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain);

/* Run [hooks] deploy once (sh -c) with P11ENROLL_* variables; 0 or -1. */
int enroll_deploy_hook(struct enroll *e);

void enroll_free(struct enroll *e);

#endif
