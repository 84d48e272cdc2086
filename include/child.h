/*
 * child.h - run a hook program as a child process: no secrets in its
 * environment, nothing on our stdout, bounded in time.
 */
#ifndef P11E_CHILD_H
#define P11E_CHILD_H

enum child_end {
    CHILD_EXITED,       /* code: its exit status */
    CHILD_SIGNALED,     /* code: the signal that ended it */
    CHILD_TIMED_OUT,    /* killed (its whole process group) at the timeout */
};

struct child_result {
    enum child_end end;
    int code;
};

/*
 * Run argv[0] (a path: no shell, no PATH lookup) with argv in its own
 * process group.  Its environment is built before fork: ours without the
 * secrets (P11ENROLL_PIN), plus envp ("NAME=value" strings, NULL-terminated,
 * may be NULL; each replaces a variable of the same name).  stdin is
 * /dev/null and its stdout goes to our stderr (stdout may carry --json).
 * After timeout_ms (> 0) the whole group is killed.  An exec failure is
 * told on stderr by the child and ends it with exit status 127.
 *
 * Returns 0 with *res filled however the child ended (the caller judges
 * and reports), or -1 after reporting (err_runtime E_HOOK: out of memory,
 * fork or waitpid failed).
 */
int run_child(const char *const argv[], const char *const envp[], long timeout_ms,
    struct child_result *res);

#endif
