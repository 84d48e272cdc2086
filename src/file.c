/* file.c - file I/O: capped reads of regular files, atomic private writes. */
#include "file.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

#define TMP_PREFIX ".p11enroll-tmp."


int
read_file_capped_st(const char *path, size_t cap, uint8_t **out, size_t *outlen, struct stat *st)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    struct stat sb;
    int fd, saved, flags;

    *out = NULL;
    *outlen = 0;
    /* Non-blocking open: a FIFO must not hang us before fstat says what it is. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) == -1)
        return -1;
    if (fstat(fd, &sb) == -1)
        goto fail;
    if (!S_ISREG(sb.st_mode)) {
        errno = S_ISDIR(sb.st_mode) ? EISDIR : EINVAL;
        goto fail;
    }
    if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
        goto fail;
    if ((buf = malloc(cap + 1)) == NULL)
        goto fail;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap + 1 - n);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > cap) {
            errno = EFBIG;
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    if (st != NULL)
        *st = sb;
    return 0;
fail:
    saved = errno;
    if (buf != NULL) {
        wipe(buf, cap + 1);
        free(buf);
    }
    close(fd);
    errno = saved;
    return -1;
}

int
read_file_capped(const char *path, size_t cap, uint8_t **out, size_t *outlen)
{
    return read_file_capped_st(path, cap, out, outlen, NULL);
}

int
file_writable(const char *path, const char *what)
{
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : ".";
    struct stat st;
    int rc = 0;

    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        err_runtime("E_FILE", "%s %s: is a directory, not a file", what, path);
        rc = -1;
    } else if (access(dir, W_OK | X_OK) == -1) {
        err_runtime("E_FILE", "%s %s: directory %s is not writable: %s", what, path, dir,
            strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

int
file_prepare(const char *path, const void *buf, size_t len, unsigned mode, char **tmpout)
{
    char *dircopy = NULL, *tmp = NULL;
    const char *dir;
    const uint8_t *p = buf;
    struct stat st;
    int fd = -1, rc = -1;

    *tmpout = NULL;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        err_runtime("E_FILE", "%s: is a directory, not a file", path);
        return -1;
    }
    if ((dircopy = strdup(path)) == NULL) {
        err_runtime("E_FILE", "%s: out of memory", path);
        goto out;
    }
    dir = dirname(dircopy);
    if (asprintf(&tmp, "%s/" TMP_PREFIX "XXXXXX", dir) == -1) {
        tmp = NULL;
        err_runtime("E_FILE", "%s: out of memory", path);
        goto out;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
        err_runtime("E_FILE", "%s: cannot create a file in %s: %s", path, dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            err_runtime("E_FILE", "%s: write: %s", path, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
        err_runtime("E_FILE", "%s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) == -1) {
        fd = -1;
        err_runtime("E_FILE", "%s: close: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    *tmpout = tmp;
    tmp = NULL; /* transferred */
    rc = 0;
out:
    if (fd != -1)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(dircopy);
    return rc;
}

int
file_commit(char *tmp, const char *path)
{
    char *dircopy;
    int fd;

    if (rename(tmp, path) == -1) {
        err_runtime("E_FILE", "%s: rename: %s", path, strerror(errno));
        file_abort(tmp);
        return -1;
    }
    free(tmp);
    /* Make the rename itself durable. */
    if ((dircopy = strdup(path)) != NULL) {
        if ((fd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
            (void)fsync(fd);
            close(fd);
        }
        free(dircopy);
    }
    return 0;
}

void
file_abort(char *tmp)
{
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
}

int
write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode)
{
    char *tmp;

    if (file_prepare(path, buf, len, mode, &tmp) == -1)
        return -1;
    return file_commit(tmp, path);
}

static bool
older(const struct stat *st, const struct timespec *t)
{
    return st->st_mtim.tv_sec < t->tv_sec ||
           (st->st_mtim.tv_sec == t->tv_sec && st->st_mtim.tv_nsec < t->tv_nsec);
}

int
file_clean_tmp(const char *dir, const struct timespec *before)
{
    DIR *d;
    struct dirent *de;
    struct stat st;
    int dfd, n = 0;

    if ((d = opendir(dir)) == NULL)
        return 0; /* no folder: nothing left in it */
    dfd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0 ||
            fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
            !S_ISREG(st.st_mode) || !older(&st, before))
            continue;
        if (unlinkat(dfd, de->d_name, 0) == -1) {
            char *safe = sanitize(de->d_name, strlen(de->d_name));
            warnmsg("cannot remove the leftover temp file %s/%s: %s", dir,
                safe ? safe : "?", strerror(errno));
            free(safe);
            continue;
        }
        n++;
    }
    closedir(d);
    if (n > 0)
        progress("removed %d temp file(s) an interrupted run left in %s", n, dir);
    return n;
}
