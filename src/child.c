/*
 * child.c - the one child-process runner (the dns-01 hook, [hooks] deploy).
 *
 * The process is threaded (the http-01 responder), so the child does
 * nothing between fork and execve but async-signal-safe calls: its argv
 * and environment are built before the fork, never by setenv/unsetenv in
 * the child.
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

#define CHILD_POLL_MS 20

/* Variables a child never inherits: the token PIN is none of a hook's business. */
static const char *const secret_vars[] = { "P11ENROLL_PIN" };

/* True when `entry` ("NAME=value") sets the variable `name` ("NAME=..." or "NAME"). */
static bool
same_name(const char *entry, const char *name)
{
    size_t n = strcspn(name, "=");
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static bool
is_secret(const char *entry)
{
    for (size_t i = 0; i < sizeof(secret_vars) / sizeof(secret_vars[0]); i++)
        if (same_name(entry, secret_vars[i]))
            return true;
    return false;
}

/* An inherited variable the child does not get: a secret, or one envp replaces. */
static bool
dropped(const char *entry, const char *const envp[])
{
    if (is_secret(entry))
        return true;
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (same_name(entry, envp[i]))
            return true;
    return false;
}

/*
 * The child's environment: environ minus the secrets and the names envp
 * sets, then envp.  Returns a NULL-terminated array of borrowed strings
 * (free the array only), or NULL when out of memory.
 */
static char **
child_env(const char *const envp[])
{
    size_t n = 0, k = 0, extra = 0;
    char **env;

    while (environ != NULL && environ[n] != NULL)
        n++;
    while (envp != NULL && envp[extra] != NULL)
        extra++;
    if ((env = calloc(n + extra + 1, sizeof(*env))) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!dropped(environ[i], envp))
            env[k++] = environ[i];
    for (size_t i = 0; i < extra; i++)
        if (!is_secret(envp[i]))
            env[k++] = (char *)envp[i];
    env[k] = NULL;
    return env;
}

/* In the child: stdin /dev/null, stdout onto stderr, own group, exec.  Never returns. */
static void
child_exec(const char *const argv[], char **env, int devnull)
{
    static const char pre[] = "p11enroll: ", msg[] = ": cannot execute\n";

    (void)setpgid(0, 0);    /* its own group: a timeout kills its children too */
    (void)signal(SIGPIPE, SIG_DFL); /* token_open() ignores it; a hook gets the default */
    if (devnull != -1)
        (void)dup2(devnull, STDIN_FILENO);
    (void)dup2(STDERR_FILENO, STDOUT_FILENO);
    execve(argv[0], (char *const *)argv, env);
    /* async-signal-safe report: write(2) only */
    (void)!write(STDERR_FILENO, pre, sizeof(pre) - 1);
    (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(127);
}

int
run_child(const char *const argv[], const char *const envp[], long timeout_ms,
    struct child_result *res)
{
    struct timespec tick = { 0, CHILD_POLL_MS * 1000000L };
    char **env = child_env(envp);
    int devnull, status = 0, rc = -1;
    pid_t pid;

    memset(res, 0, sizeof(*res));
    if (env == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fflush(NULL);   /* nothing buffered may be written twice or after the child's output */
    if ((pid = fork()) == -1) {
        err_runtime("E_HOOK", "%s: fork: %s", argv[0], strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(argv, env, devnull);
    (void)setpgid(pid, pid);    /* also from here: no window where a kill misses the group */
    for (long waited = 0;; waited += CHILD_POLL_MS) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w == -1 && errno != EINTR) {
            err_runtime("E_HOOK", "%s: waitpid: %s", argv[0], strerror(errno));
            goto out;
        }
        if (waited >= timeout_ms) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            res->end = CHILD_TIMED_OUT;
            rc = 0;
            goto out;
        }
        nanosleep(&tick, NULL);
    }
    if (WIFEXITED(status)) {
        res->end = CHILD_EXITED;
        res->code = WEXITSTATUS(status);
    } else {
        res->end = CHILD_SIGNALED;
        res->code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    rc = 0;
out:
    if (devnull != -1)
        close(devnull);
    free(env);
    return rc;
}
