/* util.c - error reporting, hex, files: the helpers every module shares. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *command = "p11enroll";
static int verbosity;

static struct {
    int exit_code;              /* 0: nothing reported */
    char code[64];
    char message[1024];
    char *json;                 /* pre-built error object, or NULL */
} last;

void util_set_command(const char *name) { command = name; }
const char *util_command(void) { return command; }
void util_set_verbosity(int level) { verbosity = level; }
int util_verbosity(void) { return verbosity; }

static void
record(int exit_code, const char *code, const char *fmt, va_list ap)
{
    last.exit_code = exit_code;
    snprintf(last.code, sizeof(last.code), "%s",
        code ? code : exit_code == EXIT_INPUT ? "E_INPUT" : "E_RUNTIME");
    vsnprintf(last.message, sizeof(last.message), fmt, ap);
    free(last.json);
    last.json = NULL;
    if (strcmp(command, "p11enroll") == 0)
        fprintf(stderr, "p11enroll: %s\n", last.message);
    else
        fprintf(stderr, "p11enroll: %s: %s\n", command, last.message);
}

void
err_input(const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(EXIT_INPUT, code, fmt, ap);
    va_end(ap);
}

void
err_runtime(const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(EXIT_RUNTIME, code, fmt, ap);
    va_end(ap);
}

int
err_exit_code(void)
{
    return last.exit_code ? last.exit_code : EXIT_RUNTIME;
}

void
err_clear(void)
{
    last.exit_code = 0;
    last.code[0] = last.message[0] = '\0';
    free(last.json);
    last.json = NULL;
}

void
err_set_json(const char *json_text)
{
    free(last.json);
    last.json = json_text ? strdup(json_text) : NULL;
}

/* Minimal JSON string escaping for the error object. */
static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void
err_print_json(void)
{
    if (last.json != NULL) {
        printf("%s\n", last.json);
        return;
    }
    printf("{\"error\": {\"code\": ");
    json_str(stdout, last.code[0] ? last.code : "E_RUNTIME");
    printf(", \"message\": ");
    json_str(stdout, last.message);
    printf("}}\n");
}

static void
vnote(int min_level, const char *fmt, va_list ap)
{
    if (verbosity < min_level)
        return;
    fprintf(stderr, "p11enroll: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(0, fmt, ap);
    va_end(ap);
}

void
verbose(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(1, fmt, ap);
    va_end(ap);
}

void
warnmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "p11enroll: %s: warning: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

char *
hex_encode(const uint8_t *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[buf[i] >> 4];
        s[2 * i + 1] = digits[buf[i] & 0xf];
    }
    s[2 * len] = '\0';
    return s;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
hex_decode(const char *hex, uint8_t **out, size_t *outlen)
{
    size_t n = 0, cap = strlen(hex) / 2 + 1;
    uint8_t *buf = malloc(cap);
    int hi = -1;

    *out = NULL;
    *outlen = 0;
    if (buf == NULL)
        return -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ':' && hi < 0)
            continue;
        int v = hexval(*p);
        if (v < 0)
            goto fail;
        if (hi < 0) {
            hi = v;
        } else {
            buf[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0 || n == 0)
        goto fail;
    *out = buf;
    *outlen = n;
    return 0;
fail:
    free(buf);
    return -1;
}

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
    if (asprintf(&tmp, "%s/.p11enroll-tmp.XXXXXX", dir) == -1) {
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

char *
sanitize(const char *in, size_t max)
{
    size_t n = in ? strnlen(in, max) : 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    s[n] = '\0';
    return s;
}

void
wipe(void *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
}

char *
uri_redact(const char *uri)
{
    static const char *const secret[] = { "pin-value=", "pin-source=" };
    size_t len = uri ? strlen(uri) : 0;
    char *out = malloc(2 * len + 16), *o = out;
    const char *p = uri ? uri : "";

    if (out == NULL)
        return strdup("(URI)");
    while (*p) {
        bool hit = false;
        for (size_t i = 0; i < 2 && !hit; i++) {
            size_t n = strlen(secret[i]);
            /* Only at an attribute boundary: start of query or after ';' '&' '?'. */
            if (strncmp(p, secret[i], n) == 0 && p > uri && strchr("?;&", p[-1])) {
                memcpy(o, p, n);
                o += n;
                memcpy(o, "(hidden)", 8);
                o += 8;
                p += n;
                while (*p && *p != ';' && *p != '&')
                    p++;
                hit = true;
            }
        }
        if (!hit)
            *o++ = *p++;
    }
    *o = '\0';
    return out;
}
