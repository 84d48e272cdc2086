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
    struct acme_client *acme; /* the run's ACME client (acme_enroll_client()), or NULL */
    X509 *renewing;           /* renew: the certificate being replaced (borrowed), or NULL;
                                 its ARI CertID goes in newOrder's "replaces" */
};

/*
 * What an install did, for the command to print: the certificate and chain
 * installed, the key they are stored with, and the [output] files written.
 * Cleared by enroll_result_clear().
 */
struct enroll_result {
    X509 *leaf;                 /* the installed certificate */
    STACK_OF(X509) *chain;      /* its chain; NULL when none was given */
    char *key_uri;              /* PKCS#11 URI of its key */
    bool key_created;           /* this run generated the key */
    const char *files[3];       /* [output] cert, chain, fullchain written, or NULL
                                   (borrowed from the profile: valid while it is) */
};

/*
 * Load the profile and plan it (plan errors: exit 2, with --json the
 * planner's error object is recorded for err_print_json()).  No token I/O.
 */
int enroll_plan(const char *profile_path, struct enroll *e);

/*
 * Open the profile's token ([token] uri, module, pin-file; the non-NULL
 * fields of `over` win) and log in.  0, or -1 after reporting.
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

/*
 * token_keygen() with a fresh random CKA_ID journalled first in
 * <state-dir>/keygen.journal (without a writable state dir: none), removed once
 * the pair is whole.  A run killed inside C_GenerateKeyPair (a torn token
 * may keep half a pair) leaves the journal: enroll_keygen_recover() then
 * destroys every object with that id.  0 and *out, or -1 after reporting.
 */
int enroll_keygen(struct enroll *e, const struct keytype *type, const char *label,
    struct token_key **out);

/* Clean up after a key generation the journal says was interrupted.  0 or -1. */
int enroll_keygen_recover(struct enroll *e);

/* Build the CSR from the plan and sign it on the token. */
int enroll_csr(struct enroll *e, X509_REQ **out);

/*
 * Install an issued certificate: it must be for e->key (or, with no key
 * selected yet, for some key on the token, which becomes e->key), carry
 * the plan's names when there is a plan, its chain must link, and it must
 * be valid now, not a CA and carry the plan's EKUs (cert_check_usable(),
 * reported as the CA's fault: exit 1).  Then
 * the certificate is stored on the token and the [output] files are
 * written atomically.  Nothing is changed when a check fails.  0 and *res
 * (its own references to leaf and chain; enroll_result_clear()), or -1
 * after reporting (*res empty).
 */
int enroll_install(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain,
    struct enroll_result *res);

/*
 * enroll_install(), but leaf + chain go to the one file `fullchain` (a
 * staging file) instead of the [output] files, which a caller writes
 * later with enroll_write_outputs() (renew, after its switch).  res->files
 * stay NULL.
 */
int enroll_install_staged(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain,
    const char *fullchain, struct enroll_result *res);

/* Free what an enroll_result holds and empty it; NULL and empty are fine. */
void enroll_result_clear(struct enroll_result *res);

/*
 * Write the [output] cert, chain and fullchain files for `leaf` and its
 * chain (may be NULL), each atomically; an output path that is a directory
 * or an unwritable directory is refused before any file changes.
 */
int enroll_write_outputs(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain);

/* Run [hooks] deploy once (sh -c) with P11ENROLL_* variables; 0 or -1. */
int enroll_deploy_hook(struct enroll *e);

/*
 * Run [hooks] csr-ready once (sh -c) with P11ENROLL_CSR=csr_path, the
 * profile and the key's URI (e->key), never the PIN.  No hook: 0.  0, or -1
 * after reporting (E_HOOK).
 */
int enroll_csr_ready_hook(struct enroll *e, const char *csr_path);

/*
 * Where [ca] type = manual writes the CSR: [csr] out, else
 * <state-dir>/<label>.csr.  A new string (caller frees), or NULL after
 * reporting (E_MISSING when neither is set).
 */
char *enroll_csr_path(const struct enroll *e);

/* Build the CSR for e->key, sign it on the token and write it (PEM, 0644) to path.  0 or -1. */
int enroll_write_csr(struct enroll *e, const char *path);

/*
 * Remove the temp files a killed run left next to the [output] files and
 * in the state dir (file_clean_tmp()), those changed before `locked`, the
 * time the caller took the profile's lock.  Warnings only.
 */
struct timespec;
void enroll_clean_tmp(const struct enroll *e, const struct timespec *locked);

/*
 * token_find_strays() on the open token with the profile's labels ([key]
 * label and the ACME account key's) as p11enroll's own, from `objs`, a pass
 * over the token's objects read with TOKEN_OBJ_ALL (`status` shares it with
 * its key listing), or when objs is NULL from a pass of its own.  0 and
 * *out (free()), or -1 after reporting.
 */
int enroll_find_strays(struct enroll *e, const struct token_objects *objs,
    struct token_stray **out, size_t *n);

/*
 * With [output] state-dir, take the profile's lock (waiting) as renew does
 * and remove the temp files a killed run left (enroll_clean_tmp()).
 * Returns the lock descriptor (enroll_unlock()), -2 without a state dir,
 * or -1 after reporting.
 */
int enroll_lock(struct enroll *e, const char *profile);
/* Release enroll_lock()'s lock; any other value (-2, -1) is ignored. */
void enroll_unlock(int fd);

void enroll_free(struct enroll *e);

#endif
