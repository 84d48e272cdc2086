/*
 * state.c - the renewal journal and lock in the profile's state directory
 * (state.h).  One small JSON document, rewritten whole and atomically at
 * every step: simpler to reason about after a crash than an append log.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "util.h"

#define STATE_MAX (256 * 1024)

static const char *const step_names[] = {
    [STEP_NONE] = "none", [STEP_KEYGEN] = "keygen", [STEP_ORDER] = "order",
    [STEP_SWITCH] = "switch", [STEP_FILES] = "files", [STEP_DEPLOY] = "deploy",
};

const char *
state_step_name(enum state_step s)
{
    return (unsigned)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s] : "?";
}

int
state_mkdir(const char *dir)
{
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        err_runtime("E_FILE", "[output] state-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- JSON <-> struct ----------------------------------------------------------- */

/* A copy of an optional string member; false when present but not a string. */
static bool
get_str(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    return (*out = strdup(json_string_value(v))) != NULL;
}

static bool
get_time(json_t *o, const char *key, time_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (time_t)json_integer_value(v);
    return true;
}

/* A key id as stored: non-empty lower-case hex of at most 255 bytes. */
static bool
id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n % 2 || n > 510)
        return false;
    return strspn(s, "0123456789abcdef") == n;
}

static int
parse(struct state *st, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v;
    int rc = -1;
    char *label = NULL;

    if (root == NULL || !json_is_object(root))
        goto out;
    if (!json_is_integer(v = json_object_get(root, "version")) || json_integer_value(v) != 1)
        goto out;
    if (!get_str(root, "label", &label))
        goto out;
    if (label != NULL && strcmp(label, st->label) != 0) {
        /* Another key's state: refuse rather than act on the wrong pairs. */
        err_runtime("E_STATE", "%s is the renewal state of key %s, but the profile's [key] label "
            "is %s; use another [output] state-dir or restore the label", st->path, label,
            st->label);
        free(label);
        json_decref(root);
        return -2;
    }
    free(label);
    v = json_object_get(root, "labels_immutable");
    st->labels_immutable = json_is_true(v);
    if (!get_str(root, "current_id", &st->current_id) ||
        (st->current_id && !id_ok(st->current_id)) ||
        !get_str(root, "destroying_id", &st->destroying_id) ||
        (st->destroying_id && !id_ok(st->destroying_id)))
        goto out;
    /* A note for `status` only: a bad value is dropped, not fatal. */
    if (!get_time(root, "last_renewal", &st->last_renewal)) {
        warnmsg("%s: ignoring a malformed last_renewal", st->path);
        st->last_renewal = 0;
        st->repaired = true;
    }
    if ((v = json_object_get(root, "retired")) != NULL) {
        size_t i;
        json_t *r;
        if (!json_is_array(v))
            goto out;
        json_array_foreach(v, i, r) {
            char *id = NULL, *lab = NULL;
            time_t at;
            if (!json_is_object(r) || !get_str(r, "id", &id) || !id_ok(id) ||
                !get_str(r, "label", &lab) || lab == NULL || !get_time(r, "retired_at", &at) ||
                state_retired_add(st, id, lab, at) == -1) {
                free(id);
                free(lab);
                goto out;
            }
            free(id);
            free(lab);
        }
    }
    /*
     * The ARI window is a cache: one that does not load (a negative time
     * an older version stored from a pre-1970 window, an inverted window) is
     * dropped with a warning and fetched again, never fatal.
     */
    if ((v = json_object_get(root, "ari")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v) || !get_str(v, "cert_id", &st->ari.cert_id) ||
            st->ari.cert_id == NULL || !get_time(v, "start", &st->ari.start) ||
            !get_time(v, "end", &st->ari.end) || !get_time(v, "next_poll", &st->ari.next_poll) ||
            st->ari.end <= st->ari.start) {
            warnmsg("%s: dropping a malformed cached ACME Renewal Information window; it "
                "is fetched again", st->path);
            free(st->ari.cert_id);
            memset(&st->ari, 0, sizeof(st->ari));
            st->repaired = true;
        }
    }
    if ((v = json_object_get(root, "txn")) != NULL && !json_is_null(v)) {
        struct state_txn *t = &st->txn;
        const char *step;
        if (!json_is_object(v) || (step = json_string_value(json_object_get(v, "step"))) == NULL)
            goto out;
        for (unsigned i = STEP_KEYGEN; i <= STEP_DEPLOY; i++)
            if (strcmp(step, step_names[i]) == 0)
                t->step = (enum state_step)i;
        if (t->step == STEP_NONE)
            goto out;
        t->rotate = json_is_true(json_object_get(v, "rotate"));
        if (!get_time(v, "started", &t->started) || !get_str(v, "reason", &t->reason) ||
            !get_str(v, "old_id", &t->old_id) || (t->old_id && !id_ok(t->old_id)) ||
            !get_str(v, "old_serial", &t->old_serial) ||
            !get_str(v, "pending_label", &t->pending_label) ||
            !get_str(v, "pending_id", &t->pending_id) ||
            !get_str(v, "retired_label", &t->retired_label) ||
            !get_str(v, "csr_path", &t->csr_path) ||
            !get_time(v, "waiting_since", &t->waiting_since))
            goto out;
        if (t->rotate && (t->pending_label == NULL || !id_ok(t->pending_id)))
            goto out;
        if (t->step >= STEP_SWITCH && t->rotate && t->old_id && t->retired_label == NULL)
            goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static json_t *
str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static char *
serialise(const struct state *st)
{
    json_t *root = json_object(), *ret = json_array();
    char *text;

    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "label", json_string(st->label));
    json_object_set_new(root, "labels_immutable", json_boolean(st->labels_immutable));
    if (st->current_id)
        json_object_set_new(root, "current_id", json_string(st->current_id));
    if (st->last_renewal)
        json_object_set_new(root, "last_renewal", json_integer(st->last_renewal));
    for (size_t i = 0; i < st->nretired; i++)
        json_array_append_new(ret, json_pack("{s:s, s:s, s:I}", "id", st->retired[i].id,
            "label", st->retired[i].label, "retired_at", (json_int_t)st->retired[i].retired_at));
    json_object_set_new(root, "retired", ret);
    if (st->destroying_id)
        json_object_set_new(root, "destroying_id", json_string(st->destroying_id));
    if (st->ari.cert_id && st->ari.start >= 0 && st->ari.end > st->ari.start &&
        st->ari.next_poll >= 0)
        json_object_set_new(root, "ari", json_pack("{s:s, s:I, s:I, s:I}", "cert_id",
            st->ari.cert_id, "start", (json_int_t)st->ari.start, "end", (json_int_t)st->ari.end,
            "next_poll", (json_int_t)st->ari.next_poll));
    if (st->txn.step != STEP_NONE) {
        const struct state_txn *t = &st->txn;
        json_object_set_new(root, "txn", json_pack("{s:s, s:b, s:I, s:o, s:o, s:o, s:o, s:o, s:o}",
            "step", state_step_name(t->step), "rotate", t->rotate,
            "started", (json_int_t)t->started, "reason", str_or_null(t->reason),
            "old_id", str_or_null(t->old_id), "old_serial", str_or_null(t->old_serial),
            "pending_label", str_or_null(t->pending_label),
            "pending_id", str_or_null(t->pending_id),
            "retired_label", str_or_null(t->retired_label)));
        if (t->csr_path != NULL)
            json_object_set_new(json_object_get(root, "txn"), "csr_path",
                json_string(t->csr_path));
        if (t->waiting_since != 0)
            json_object_set_new(json_object_get(root, "txn"), "waiting_since",
                json_integer(t->waiting_since));
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

/* ---- load / save ------------------------------------------------------------------ */

int
state_load(const char *dir, const char *label, struct state **out)
{
    struct state *st = calloc(1, sizeof(*st));
    uint8_t *buf = NULL;
    size_t len;
    int r;

    *out = NULL;
    if (st == NULL || (st->dir = strdup(dir)) == NULL || (st->label = strdup(label)) == NULL ||
        asprintf(&st->path, "%s/%s", dir, STATE_FILE) == -1) {
        if (st)
            st->path = NULL;
        state_free(st);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (read_file_capped(st->path, STATE_MAX, &buf, &len) == -1) {
        if (errno == ENOENT) {
            *out = st;
            return 0;
        }
        err_runtime("E_STATE", "%s: %s", st->path, strerror(errno));
        state_free(st);
        return -1;
    }
    r = parse(st, (const char *)buf, len);
    free(buf);
    if (r != 0) {
        if (r == -1)
            err_runtime("E_STATE", "%s: malformed renewal state; p11enroll writes it atomically, "
                "so it was changed by hand: fix or remove it (see 'p11enroll status')", st->path);
        state_free(st);
        return -1;
    }
    *out = st;
    return 0;
}

int
state_save(struct state *st)
{
    char *text = serialise(st);
    int rc = -1, fd;

    if (text == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if (write_file_atomic(st->path, text, strlen(text), 0600) == 0) {
        rc = 0;
        /* The rename is durable only once the directory is on disk. */
        if ((fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
            (void)fsync(fd);
            close(fd);
        }
    }
    free(text);
    return rc;
}

static void
txn_free(struct state_txn *t)
{
    free(t->reason);
    free(t->old_id);
    free(t->old_serial);
    free(t->pending_label);
    free(t->pending_id);
    free(t->retired_label);
    free(t->csr_path);
    memset(t, 0, sizeof(*t));
}

void
state_txn_clear(struct state *st)
{
    txn_free(&st->txn);
}

void
state_free(struct state *st)
{
    if (st == NULL)
        return;
    txn_free(&st->txn);
    for (size_t i = 0; i < st->nretired; i++) {
        free(st->retired[i].id);
        free(st->retired[i].label);
    }
    free(st->retired);
    free(st->ari.cert_id);
    free(st->destroying_id);
    free(st->current_id);
    free(st->label);
    free(st->path);
    free(st->dir);
    free(st);
}

int
state_retired_add(struct state *st, const char *id, const char *label, time_t at)
{
    struct state_retired *r = realloc(st->retired, (st->nretired + 1) * sizeof(*r));

    if (r == NULL)
        return -1;
    st->retired = r;
    r += st->nretired;
    r->id = strdup(id);
    r->label = strdup(label);
    r->retired_at = at;
    if (r->id == NULL || r->label == NULL) {
        free(r->id);
        free(r->label);
        return -1;
    }
    st->nretired++;
    return 0;
}

void
state_retired_remove(struct state *st, size_t i)
{
    if (i >= st->nretired)
        return;
    free(st->retired[i].id);
    free(st->retired[i].label);
    memmove(st->retired + i, st->retired + i + 1, (st->nretired - i - 1) * sizeof(*st->retired));
    st->nretired--;
}

/* ---- lock ----------------------------------------------------------------------- */

int
state_lock(const char *dir, bool wait, const char *profile)
{
    char *path = NULL;
    int fd;

    if (asprintf(&path, "%s/%s", dir, STATE_LOCK) == -1) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
        err_runtime("E_FILE", "lock %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno != EWOULDBLOCK) {
            err_runtime("E_FILE", "lock %s: %s", path, strerror(errno));
            goto fail;
        }
        if (!wait) {
            err_runtime("E_LOCKED", "another p11enroll run for profile %s holds the lock %s; "
                "not waiting (--no-wait): try again when it is done", profile, path);
            goto fail;
        }
        progress("waiting for another p11enroll run for profile %s (lock %s)", profile, path);
        while (flock(fd, LOCK_EX) == -1) {
            if (errno != EINTR) {
                err_runtime("E_FILE", "lock %s: %s", path, strerror(errno));
                goto fail;
            }
        }
    }
    free(path);
    return fd;
fail:
    close(fd);
    free(path);
    return -1;
}

void
state_unlock(int fd)
{
    if (fd >= 0) {
        (void)flock(fd, LOCK_UN);
        close(fd);
    }
}
