/*
 * challenge.c - publishing and withdrawing the answers to the CA's
 * challenges: the built-in http-01 responder, files under a webroot, or
 * the dns-01 hook (add before validation, remove always after).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme_int.h"
#include "child.h"
#include "util.h"

void
acme_pending_free(struct pending *p, size_t n)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].authz_url);
        free(p[i].name);
        free(p[i].chall_url);
        free(p[i].token);
        free(p[i].keyauth);
    }
    free(p);
}


/* Report a hook failure: an error, or only a warning (removal after the fact). */
static void hook_fail(bool fatal, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
hook_fail(bool fatal, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (fatal)
        err_runtime("E_HOOK", "%s", msg);
    else
        warnmsg("%s", msg);
}

/*
 * Run the dns-hook (no shell): HOOK add|remove NAME VALUE, through
 * run_child() (no PIN in its environment, its stdout on our stderr).
 * Bounded in time: "add" also within the run's deadline.  fatal: a
 * failure is an error, else only a warning.  0 or -1.
 */
static int
run_hook(const struct acme *a, const char *action, const char *name, const char *value,
    bool fatal)
{
    const char *hook = a->cfg->dns_hook;
    const char *argv[] = { hook, action, name, value, NULL };
    long limit = (long)(a->cfg->hook_timeout_s ? a->cfg->hook_timeout_s : 60) * 1000L;
    long left = acme_time_left_ms(a);
    struct child_result res;

    /* "add" also stays within the run's deadline; "remove" always gets its time. */
    if (fatal && left < limit)
        limit = left > 1000 ? left : 1000;
    if (run_child(argv, NULL, limit, &res) != 0) {
        if (!fatal) {
            err_clear();
            warnmsg("dns-hook %s %s %s could not be run", hook, action, name);
        }
        return -1;
    }
    switch (res.end) {
    case CHILD_EXITED:
        if (res.code == 0)
            return 0;
        hook_fail(fatal, "dns-hook %s %s %s: exit status %d", hook, action, name, res.code);
        break;
    case CHILD_SIGNALED:
        hook_fail(fatal, "dns-hook %s %s %s: killed by signal %d", hook, action, name,
            res.code);
        break;
    case CHILD_TIMED_OUT:
        hook_fail(fatal, "dns-hook %s %s %s: killed after %ld s", hook, action, name,
            limit / 1000);
        break;
    }
    return -1;
}

static char *
dns_record_name(const struct pending *p)
{
    char *s;
    /* RFC 8555 §8.4: the base name, "*." already stripped from the identifier. */
    if (asprintf(&s, "_acme-challenge.%s", p->name) == -1)
        return NULL;
    return s;
}

static char *
webroot_path(const struct acme *a, const char *token)
{
    char *s;
    if (asprintf(&s, "%s/.well-known/acme-challenge/%s", a->cfg->webroot, token) == -1)
        return NULL;
    return s;
}

static int
mkdir_one(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    err_runtime("E_WEBROOT", "%s: %s", path, strerror(errno));
    return -1;
}

/* Publish every pending challenge response; on failure what was published stays marked. */
int
acme_challenges_publish(struct acme *a, struct pending *p, size_t n, struct acme_responder **rs)
{
    if (a->cfg->challenge == ACME_HTTP01 && a->cfg->http_listen != NULL) {
        struct acme_http01 *h = calloc(n + 1, sizeof(*h));
        int rc;
        if (h == NULL) {
            err_runtime("E_NOMEM", "out of memory");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            h[i].token = p[i].token;
            h[i].key_authorization = p[i].keyauth;
        }
        rc = acme_responder_start(a->cfg->http_listen, h, n, rs);
        free(h);
        return rc;
    }
    if (a->cfg->challenge == ACME_HTTP01) {
        char *d1 = NULL, *d2 = NULL;
        int rc = -1;
        if (asprintf(&d1, "%s/.well-known", a->cfg->webroot) == -1 ||
            asprintf(&d2, "%s/.well-known/acme-challenge", a->cfg->webroot) == -1) {
            err_runtime("E_NOMEM", "out of memory");
            free(d1);
            return -1;
        }
        if (mkdir_one(d1) == 0 && mkdir_one(d2) == 0) {
            rc = 0;
            for (size_t i = 0; i < n && rc == 0; i++) {
                char *path = webroot_path(a, p[i].token);
                /* Served to the CA by the web server: world-readable on purpose. */
                if (path == NULL || write_file_atomic(path, p[i].keyauth,
                    strlen(p[i].keyauth), 0644) != 0)
                    rc = -1;
                else
                    p[i].published = true;
                free(path);
            }
        }
        free(d1);
        free(d2);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        char *rname = dns_record_name(&p[i]), *value = jws_dns01_value(p[i].keyauth);
        int rc = -1;
        if (rname == NULL || value == NULL) {
            err_runtime("E_NOMEM", "out of memory");
        } else {
            /* Marked before the hook runs: a failed add may have half-happened. */
            p[i].published = true;
            rc = run_hook(a, "add", rname, value, true);
        }
        free(rname);
        free(value);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Undo acme_challenges_publish(): always runs, reports but never fails the run. */
void
acme_challenges_unpublish(struct acme *a, struct pending *p, size_t n, struct acme_responder *rs)
{
    if (a->cfg->challenge == ACME_HTTP01 && a->cfg->http_listen != NULL) {
        acme_responder_stop(rs);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!p[i].published)
            continue;
        if (a->cfg->challenge == ACME_HTTP01) {
            char *path = webroot_path(a, p[i].token);
            if (path != NULL && unlink(path) != 0 && errno != ENOENT)
                warnmsg("%s: %s", path, strerror(errno));
            free(path);
        } else {
            char *rname = dns_record_name(&p[i]), *value = jws_dns01_value(p[i].keyauth);
            /* A failed removal is worth a warning, not the certificate. */
            if (rname != NULL && value != NULL &&
                run_hook(a, "remove", rname, value, false) != 0)
                warnmsg("dns-hook remove %s failed; remove the record by hand", rname);
            free(rname);
            free(value);
        }
        p[i].published = false;
    }
}
