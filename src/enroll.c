/* enroll.c - profile -> plan -> key -> CSR, and installing the certificate. */
#include "enroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <libgen.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "acme.h"
#include "acme_enroll.h"
#include "child.h"
#include "csr.h"
#include "fault.h"
#include "file.h"
#include "state.h"
#include "util.h"

int
enroll_plan(const char *profile_path, struct enroll *e)
{
    memset(e, 0, sizeof(*e));
    if (profile_load(profile_path, &e->prof) == -1)
        return -1;
    if (plan_build(e->prof, &e->plan) == -1) {
        if (e->plan == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            return -1;
        }
        json_t *j = plan_to_json(e->plan);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        err_input(e->plan->error.code, "%s: [%s] %s: %s", profile_path,
            e->plan->error.section ? e->plan->error.section : "edge",
            e->plan->error.key ? e->plan->error.key : "?", e->plan->error.message);
        err_set_json(s);
        free(s);
        json_decref(j);
        return -1;
    }
    for (size_t i = 0; i < e->plan->nwarnings; i++)
        warnmsg("%s: %s", e->plan->warnings[i].code, e->plan->warnings[i].message);
    return 0;
}

int
enroll_open(struct enroll *e, const struct token_opts *over)
{
    struct token_opts o = {
        .uri = over && over->uri ? over->uri : e->prof->token.uri,
        .module_path = over && over->module_path ? over->module_path : e->prof->token.module,
        .pin_file = over && over->pin_file ? over->pin_file : e->prof->token.pin_file,
        .allow_final_try = over && over->allow_final_try,
        .login = true,
    };
    if (o.uri == NULL) {
        err_input("E_MISSING", "%s: [token] uri is required", e->prof->name);
        return -1;
    }
    return token_open(&o, &e->tok);
}

/* ---- journalled key generation ------------------------------------------------ */

#define KEYGEN_JOURNAL "keygen.journal"

/* <state-dir>/keygen.journal, or NULL when there is no state dir to write to. */
static char *
keygen_journal(const struct enroll *e)
{
    char *path = NULL;
    /* No state dir, or one not made yet (csr before any enroll): nowhere to journal. */
    if (e->prof == NULL || e->prof->output.state_dir == NULL ||
        access(e->prof->output.state_dir, W_OK | X_OK) == -1 ||
        asprintf(&path, "%s/" KEYGEN_JOURNAL, e->prof->output.state_dir) == -1)
        return NULL;
    return path;
}

int
enroll_keygen_recover(struct enroll *e)
{
    char *path = keygen_journal(e), *sp;
    uint8_t *buf = NULL, *id = NULL;
    size_t len, idlen;
    int n, rc = -1;

    if (path == NULL || access(path, F_OK) == -1) {
        free(path);
        return 0;
    }
    if (read_file_capped(path, 4096, &buf, &len) == -1) {
        err_runtime("E_FILE", "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((sp = strchr((char *)buf, ' ')) != NULL)
        *sp = '\0';
    if (hex_decode((char *)buf, &id, &idlen) == -1 || idlen == 0) {
        err_runtime("E_STATE", "%s: not a key generation journal; remove it by hand", path);
        goto out;
    }
    /* The id is 16 random bytes this program journalled: every object with it is its own. */
    if ((n = token_destroy_own_id(e->tok, id, idlen)) == -1)
        goto out;
    if (n > 0)
        warnmsg("removed %d object(s) of a key generation an earlier run did not finish", n);
    if (unlink(path) == -1 && errno != ENOENT) {
        err_runtime("E_FILE", "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    free(id);
    free(path);
    return rc;
}

int
enroll_keygen(struct enroll *e, const struct keytype *type, const char *label,
    struct token_key **out)
{
    char *path = keygen_journal(e), *hex = NULL, *line = NULL;
    uint8_t id[16];
    int rc = -1;

    *out = NULL;
    if (path == NULL) /* no state dir: nowhere to journal */
        return token_keygen(e->tok, type, label, NULL, 0, out);
    if (RAND_bytes(id, sizeof(id)) != 1) {
        err_runtime("E_RANDOM", "no random bytes for the new key id");
        goto out;
    }
    if ((hex = hex_encode(id, sizeof(id))) == NULL || asprintf(&line, "%s %s\n", hex, label) == -1) {
        line = NULL;
        err_runtime("E_NOMEM", "out of memory");
        goto out;
    }
    /* Journalled before C_GenerateKeyPair: a run killed inside it leaves an id to clean. */
    if (write_file_atomic(path, line, strlen(line), 0600) == -1)
        goto out;
    if (token_keygen_random_id(e->tok, type, label, id, sizeof(id), out) == -1) {
        (void)enroll_keygen_recover(e);
        goto out;
    }
    fault_point("enroll-keygen");
    if (unlink(path) == -1)
        warnmsg("%s: %s", path, strerror(errno));
    rc = 0;
out:
    free(hex);
    free(line);
    free(path);
    return rc;
}

int
enroll_key(struct enroll *e, enum enroll_key_mode mode)
{
    const char *label = e->prof->key.label;
    const struct keytype *type = keytype_parse(e->plan->key);
    int r;

    if (label == NULL) {
        err_input("E_MISSING", "%s: [key] label is required", e->prof->name);
        return -1;
    }
    if (enroll_keygen_recover(e) == -1)
        return -1;
    /* --new-key: token_keygen()'s one label search is the only one (a taken label is refused). */
    r = mode == KEY_NEW ? 1 : token_find_key(e->tok, label, NULL, 0, &e->key);
    if (r == -1)
        return -1;
    if (r == 1) {
        if (mode == KEY_EXISTING) {
            err_runtime("E_NO_KEY", "no key labelled %s on token %s; generate it with --new-key "
                "or 'p11enroll keygen'", label, token_label(e->tok));
            return -1;
        }
        if (type == NULL) {
            err_input("E_KEY_TYPE", "%s: key type %s is not supported", e->prof->name,
                e->plan->key);
            return -1;
        }
        if (enroll_keygen(e, type, label, &e->key) == -1)
            return -1;
        e->key_created = true;
        return 0;
    }
    if (token_key_type(e->key) != type) {
        err_runtime("E_KEY_MISMATCH", "key %s on token %s is %s, but the profile asks for %s",
            label, token_label(e->tok), token_key_type_name(e->key), e->plan->key);
        return -1;
    }
    return 0;
}

int
enroll_csr(struct enroll *e, X509_REQ **out)
{
    struct csr_spec spec;
    struct signer signer;
    const char **names;
    int rc;

    if (csr_spec_from_plan(e->plan, e->prof, &spec, &names) == -1)
        return -1;
    rc = token_signer(e->tok, e->key, &signer) == -1 ? -1 : csr_build(&signer, &spec, out);
    signer_clear(&signer);
    free(names);
    return rc;
}

/* PEM of the leaf, of the chain, and of both (fullchain). */
static int
output_pems(X509 *leaf, STACK_OF(X509) *chain, char **pem, size_t *len)
{
    for (int i = 0; i < 3; i++) {
        pem[i] = NULL;
        len[i] = 0;
    }
    if (cert_pem_append(leaf, &pem[0], &len[0]) == -1 ||
        cert_pem_append(leaf, &pem[2], &len[2]) == -1)
        return -1;
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (cert_pem_append(sk_X509_value(chain, i), &pem[1], &len[1]) == -1 ||
            cert_pem_append(sk_X509_value(chain, i), &pem[2], &len[2]) == -1)
            return -1;
    if (pem[1] == NULL && (pem[1] = strdup("")) == NULL)
        return err_nomem();
    return 0;
}

/* The [output] cert, chain and fullchain files of the profile (NULL: none). */
static void
profile_targets(const struct enroll *e, const char **targets)
{
    targets[0] = e->prof ? e->prof->output.cert : NULL;
    targets[1] = e->prof ? e->prof->output.chain : NULL;
    targets[2] = e->prof ? e->prof->output.fullchain : NULL;
}

int
enroll_lock(struct enroll *e, const char *profile)
{
    const char *dir = e->prof->output.state_dir;
    struct timespec now;
    int fd;

    if (dir == NULL)
        return -2;
    if (state_mkdir(dir) == -1 || (fd = state_lock(dir, true, profile)) == -1)
        return -1;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0)
        enroll_clean_tmp(e, &now);
    return fd;
}

void
enroll_unlock(int fd)
{
    if (fd >= 0)
        state_unlock(fd);
}

int
enroll_find_strays(struct enroll *e, const struct token_objects *objs,
    struct token_stray **out, size_t *n)
{
    char *account = NULL;
    const char *ours[3] = { e->prof->key.label, NULL, NULL };
    int rc;

    /* Without a usable account-key setting the key label alone is known to be ours. */
    if (acme_account_label(e, &account) == 0)
        ours[ours[0] != NULL ? 1 : 0] = account;
    err_clear();
    rc = token_find_strays(e->tok, objs, ours, out, n);
    free(account);
    return rc;
}

void
enroll_clean_tmp(const struct enroll *e, const struct timespec *locked)
{
    const char *targets[3];

    profile_targets(e, targets);
    for (int i = 0; i < 3; i++) {
        char *copy = targets[i] ? strdup(targets[i]) : NULL;
        if (copy != NULL)
            (void)file_clean_tmp(dirname(copy), locked);
        free(copy);
    }
    if (e->prof != NULL && e->prof->output.state_dir != NULL)
        (void)file_clean_tmp(e->prof->output.state_dir, locked);
}

/* Temp files for every target (cert, chain, fullchain; NULL: none), or none (all refused). */
static int
prepare_outputs(X509 *leaf, STACK_OF(X509) *chain, const char *const *targets, char **tmp)
{
    static const char *const keys[3] = { "[output] cert", "[output] chain",
        "[output] fullchain" };
    char *pem[3];
    size_t len[3];
    int rc = -1;

    for (int i = 0; i < 3; i++)
        tmp[i] = NULL;
    if (output_pems(leaf, chain, pem, len) == -1)
        goto out;
    if ((targets[1] || targets[2]) && sk_X509_num(chain) <= 0)
        warnmsg("no chain given: [output] chain/fullchain hold the certificate alone");
    for (int i = 0; i < 3; i++)
        if (targets[i] != NULL && file_writable(targets[i], keys[i]) == -1)
            goto out;
    for (int i = 0; i < 3; i++)
        if (targets[i] != NULL && file_prepare(targets[i], pem[i], len[i], 0644, &tmp[i]) == -1)
            goto out;
    rc = 0;
out:
    if (rc != 0)
        for (int i = 0; i < 3; i++) {
            file_abort(tmp[i]);
            tmp[i] = NULL;
        }
    for (int i = 0; i < 3; i++)
        free(pem[i]);
    return rc;
}

int
enroll_write_outputs(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain)
{
    char *tmp[3];
    const char *targets[3];
    int rc = 0;

    profile_targets(e, targets);
    if (prepare_outputs(leaf, chain, targets, tmp) == -1)
        return -1;
    for (int i = 0; i < 3; i++)
        if (tmp[i] != NULL && file_commit(tmp[i], targets[i]) == -1)
            rc = -1;
    return rc;
}

/* The key e->key, or the token's key whose public key the leaf's is: it becomes e->key. */
static int
install_key(struct enroll *e, X509 *leaf)
{
    int r;

    if (e->key != NULL) {
        if (EVP_PKEY_eq(X509_get0_pubkey(leaf), token_key_public(e->key)) != 1) {
            err_runtime("E_CERT_KEY", "the certificate is not for key %s (its public key differs)",
                token_key_label(e->key));
            return -1;
        }
        return 0;
    }
    if ((r = token_find_key_by_public(e->tok, X509_get0_pubkey(leaf), &e->key)) == -1)
        return -1;
    if (r == 1) {
        err_runtime("E_CERT_KEY", "the certificate matches no key on token %s; token unchanged",
            token_label(e->tok));
        return -1;
    }
    return 0;
}

/* Fill *res for an installed leaf and chain and the files in `written`.  0 or -1. */
static int
install_result(const struct enroll *e, X509 *leaf, STACK_OF(X509) *chain,
    const char *const *written, struct enroll_result *res)
{
    if (X509_up_ref(leaf) != 1)
        goto nomem;
    res->leaf = leaf;
    if (chain != NULL && (res->chain = X509_chain_up_ref(chain)) == NULL)
        goto nomem;
    if ((res->key_uri = strdup(token_key_uri(e->key))) == NULL)
        goto nomem;
    res->key_created = e->key_created;
    for (int i = 0; i < 3; i++)
        res->files[i] = written[i];
    return 0;
nomem:
    err_runtime("E_NOMEM", "out of memory");
    return -1;
}

/*
 * The install of enroll_install() and enroll_install_staged(), writing the
 * files `targets` (cert, chain, fullchain; NULL: not that one).
 */
static int
install(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain, const char *const *targets,
    struct enroll_result *res)
{
    char *tmp[3] = { NULL, NULL, NULL };
    int rc = -1, stored = -1;

    memset(res, 0, sizeof(*res));
    /* 1. Which key: the selected one, or the one whose public key this is. */
    if (install_key(e, leaf) == -1)
        goto out;
    /*
     * 2. Names, chain, validity, not a CA, the plan's EKUs: before anything
     * changes, so a bad certificate never replaces the one in place.
     */
    if (e->plan != NULL && cert_check_names(leaf, e->plan) == -1)
        goto out;
    if (chain != NULL && cert_check_chain(leaf, chain) == -1)
        goto out;
    if (cert_check_usable(leaf, e->plan, CERT_FROM_CA) == -1)
        goto out;
    /*
     * 3. All or nothing: the files are written to temp files first; then the
     * certificate goes on the token (beside the old one); then the files
     * are renamed into place; only then do the old certificates go.
     */
    if (prepare_outputs(leaf, chain, targets, tmp) == -1)
        goto out;
    if ((stored = token_store_cert(e->tok, e->key, leaf)) == -1)
        goto out;
    for (int i = 0; i < 3; i++) {
        if (tmp[i] == NULL)
            continue;
        int r = file_commit(tmp[i], targets[i]);
        tmp[i] = NULL; /* freed by file_commit */
        if (r == -1) {
            if (stored == 0)
                (void)token_remove_cert(e->tok, e->key, leaf);
            goto out;
        }
    }
    (void)token_prune_certs(e->tok, e->key, leaf);
    rc = install_result(e, leaf, chain, targets, res);
out:
    for (int i = 0; i < 3; i++)
        file_abort(tmp[i]);
    if (rc != 0)
        enroll_result_clear(res);
    return rc;
}

int
enroll_install(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain, struct enroll_result *res)
{
    const char *targets[3];

    profile_targets(e, targets);
    return install(e, leaf, chain, targets, res);
}

int
enroll_install_staged(struct enroll *e, X509 *leaf, STACK_OF(X509) *chain,
    const char *fullchain, struct enroll_result *res)
{
    const char *const targets[3] = { NULL, NULL, fullchain };
    int rc = install(e, leaf, chain, targets, res);

    res->files[2] = NULL; /* a staging file, not an [output] file */
    return rc;
}

void
enroll_result_clear(struct enroll_result *res)
{
    if (res == NULL)
        return;
    X509_free(res->leaf);
    sk_X509_pop_free(res->chain, X509_free);
    free(res->key_uri);
    memset(res, 0, sizeof(*res));
}

#define HOOK_TIMEOUT_S 300

/* Append "NAME=value" to vars[*n] when value is set.  0, or -1 after reporting. */
static int
hook_var(char **vars, size_t *n, const char *name, const char *value)
{
    if (value == NULL)
        return 0;
    if (asprintf(&vars[*n], "%s=%s", name, value) == -1) {
        vars[*n] = NULL;
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    (*n)++;
    return 0;
}

/*
 * Run the hook `cmd` ([hooks] `what`) with sh -c and the n variables in
 * vars (NULL-terminated; freed here).  `done` says what stands when it
 * fails.  what == NULL: the variables could not be made (reported), only
 * free them and return -1.  0, or -1 after reporting (E_HOOK).
 */
static int
run_hook(const char *what, const char *cmd, char **vars, size_t n, const char *done)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    struct child_result res;
    int rc = -1;

    if (what == NULL ||
        run_child(argv, (const char *const *)vars, HOOK_TIMEOUT_S * 1000L, &res) == -1)
        goto out;
    if (res.end == CHILD_TIMED_OUT)
        err_runtime("E_HOOK", "[hooks] %s (%s) did not finish in %d s and was killed; %s",
            what, cmd, HOOK_TIMEOUT_S, done);
    else if (res.end != CHILD_EXITED || res.code != 0)
        err_runtime("E_HOOK", "[hooks] %s (%s) failed with %s %d; %s", what, cmd,
            res.end == CHILD_EXITED ? "exit status" : "signal", res.code, done);
    else
        rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(vars[i]);
    return rc;
}

int
enroll_deploy_hook(struct enroll *e)
{
    const char *cmd = e->prof->hooks.deploy;
    char *vars[6] = { NULL };   /* NULL-terminated */
    size_t n = 0;

    if (cmd == NULL)
        return 0;
    progress("running the deploy hook");
    /* The hook gets the files and the key's URI, never the PIN (run_child drops it). */
    if (hook_var(vars, &n, "P11ENROLL_CERT", e->prof->output.cert) == -1 ||
        hook_var(vars, &n, "P11ENROLL_CHAIN", e->prof->output.chain) == -1 ||
        hook_var(vars, &n, "P11ENROLL_FULLCHAIN", e->prof->output.fullchain) == -1 ||
        hook_var(vars, &n, "P11ENROLL_KEY_URI", e->key ? token_key_uri(e->key) : NULL) == -1 ||
        hook_var(vars, &n, "P11ENROLL_PROFILE", e->prof->name) == -1)
        return run_hook(NULL, cmd, vars, n, NULL);
    return run_hook("deploy", cmd, vars, n, "the certificate is installed");
}

int
enroll_csr_ready_hook(struct enroll *e, const char *csr_path)
{
    const char *cmd = e->prof->hooks.csr_ready;
    char *vars[4] = { NULL };   /* NULL-terminated */
    size_t n = 0;

    if (cmd == NULL)
        return 0;
    progress("running the csr-ready hook");
    if (hook_var(vars, &n, "P11ENROLL_CSR", csr_path) == -1 ||
        hook_var(vars, &n, "P11ENROLL_KEY_URI", e->key ? token_key_uri(e->key) : NULL) == -1 ||
        hook_var(vars, &n, "P11ENROLL_PROFILE", e->prof->name) == -1)
        return run_hook(NULL, cmd, vars, n, NULL);
    return run_hook("csr-ready", cmd, vars, n, "the request is written; the next run runs "
        "the hook again");
}

char *
enroll_csr_path(const struct enroll *e)
{
    char *path = NULL;

    if (e->prof->csr.out != NULL) {
        path = strdup(e->prof->csr.out);
    } else if (e->prof->output.state_dir != NULL) {
        if (asprintf(&path, "%s/%s.csr", e->prof->output.state_dir, e->prof->key.label) == -1)
            path = NULL;
    } else {
        err_input("E_MISSING", "%s: [ca] type = manual needs [csr] out (or [output] state-dir)",
            e->prof->name);
        return NULL;
    }
    if (path == NULL)
        err_runtime("E_NOMEM", "out of memory");
    return path;
}

int
enroll_write_csr(struct enroll *e, const char *path)
{
    X509_REQ *req = NULL;
    unsigned char *pem = NULL;
    size_t len;
    int rc = -1;

    if (enroll_csr(e, &req) == 0 && csr_encode(req, false, &pem, &len) == 0 &&
        write_file_atomic(path, pem, len, 0644) == 0)
        rc = 0;
    free(pem);
    X509_REQ_free(req);
    return rc;
}

void
enroll_free(struct enroll *e)
{
    acme_client_free(e->acme);
    token_key_free(e->key);
    token_close(e->tok);
    plan_free(e->plan);
    profile_free(e->prof);
    memset(e, 0, sizeof(*e));
}
