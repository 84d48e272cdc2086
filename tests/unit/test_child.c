/*
 * test_child.c - run_child() (child.h): exit status and signals, the
 * timeout kill (the whole process group, within a bound), the child's
 * environment (secret removed, variables added or replaced), stdin from
 * /dev/null and nothing on our stdout.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

static struct child_result
sh(const char *script, const char *const envp[], long timeout_ms)
{
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    struct child_result r;
    cr_assert_eq(run_child(argv, envp, timeout_ms, &r), 0);
    return r;
}

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

Test(child, exit_status)
{
    struct child_result r = sh("exit 0", NULL, 5000);
    cr_assert_eq(r.end, CHILD_EXITED);
    cr_assert_eq(r.code, 0);
    r = sh("exit 7", NULL, 5000);
    cr_assert_eq(r.end, CHILD_EXITED);
    cr_assert_eq(r.code, 7);
    r = sh("kill -TERM $$", NULL, 5000);
    cr_assert_eq(r.end, CHILD_SIGNALED);
    cr_assert_eq(r.code, 15);
}

Test(child, exec_failure_is_127)
{
    const char *argv[] = { "/nonexistent/hook", "add", NULL };
    struct child_result r;
    cr_assert_eq(run_child(argv, NULL, 5000, &r), 0);
    cr_assert_eq(r.end, CHILD_EXITED);
    cr_assert_eq(r.code, 127);
}

Test(child, timeout_kills_the_group)
{
    char path[] = "/tmp/test_child_XXXXXX", script[512];
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    close(fd);
    unlink(path);
    /* A grandchild that would outlive its parent writes the file after 2 s. */
    snprintf(script, sizeof(script), "(sleep 2; echo late > %s) & sleep 30", path);
    long t0 = now_ms();
    struct child_result r = sh(script, NULL, 300);
    long took = now_ms() - t0;
    cr_assert_eq(r.end, CHILD_TIMED_OUT);
    cr_assert(took >= 300 && took < 1500, "killed after %ld ms", took);
    sleep(3);
    cr_assert_eq(access(path, F_OK), -1, "the grandchild survived the kill");
}

Test(child, environment)
{
    char path[] = "/tmp/test_child_XXXXXX", buf[256] = "";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    setenv("P11ENROLL_PIN", "1234", 1);
    setenv("TEST_CHILD_KEEP", "kept", 1);
    setenv("TEST_CHILD_OVER", "old", 1);
    const char *envp[] = { "TEST_CHILD_ADD=added", "TEST_CHILD_OVER=new",
        "P11ENROLL_PIN=9999", NULL };
    char script[512];
    snprintf(script, sizeof(script), "printf '%%s|%%s|%%s|%%s' \"${P11ENROLL_PIN-unset}\" "
        "\"$TEST_CHILD_KEEP\" \"$TEST_CHILD_ADD\" \"$TEST_CHILD_OVER\" > %s", path);
    struct child_result r = sh(script, envp, 5000);
    cr_assert_eq(r.end, CHILD_EXITED);
    cr_assert_eq(r.code, 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0);
    cr_assert_str_eq(buf, "unset|kept|added|new");
    cr_assert_str_eq(getenv("P11ENROLL_PIN"), "1234", "our own environment is untouched");
}

Test(child, stdin_null_and_no_stdout_leak)
{
    char out[] = "/tmp/test_child_XXXXXX", err[] = "/tmp/test_child_XXXXXX", buf[256] = "";
    int ofd = mkstemp(out), efd = mkstemp(err), saved_out = dup(1), saved_err = dup(2);
    cr_assert(ofd != -1 && efd != -1 && saved_out != -1 && saved_err != -1);
    fflush(NULL);
    dup2(ofd, 1);
    dup2(efd, 2);
    struct child_result r = sh("echo to-stdout; read x && echo stdin-had-data; "
        "echo to-stderr >&2", NULL, 5000);
    fflush(NULL);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    cr_assert_eq(r.end, CHILD_EXITED);
    cr_assert_eq(lseek(ofd, 0, SEEK_END), 0, "the child wrote on our stdout");
    lseek(efd, 0, SEEK_SET);
    cr_assert_gt(read(efd, buf, sizeof(buf) - 1), 0);
    cr_assert_str_eq(buf, "to-stdout\nto-stderr\n");
    close(ofd);
    close(efd);
    unlink(out);
    unlink(err);
}
