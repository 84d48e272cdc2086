/* pin.c - PIN sources; every PIN buffer is wiped before it is freed. */
#include "pin.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "util.h"

#define PIN_FILE_MAX 4096

void
pin_free(struct pin *pin)
{
    if (pin == NULL)
        return;
    if (pin->value != NULL) {
        wipe(pin->value, pin->len);
        free(pin->value);
    }
    free(pin);
}

static int
pin_new(char *value, size_t len, const char *what, struct pin **out)
{
    struct pin *pin = calloc(1, sizeof(*pin));
    if (pin == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    pin->value = value;
    pin->len = len;
    pin->source = what;
    *out = pin;
    return 0;
}

int
pin_file_mode_ok(unsigned mode)
{
    /* A PIN is as secret as a key: no reader outside owner and group, no writer but the owner. */
    return (mode & 0026) == 0 ? 0 : -1;
}

int
pin_from_file(const char *path, const char *what, struct pin **out)
{
    uint8_t *buf;
    size_t len;
    struct stat st;

    *out = NULL;
    if (strncmp(path, "file:", 5) == 0)
        path += 5;
    if (read_file_capped_st(path, PIN_FILE_MAX, &buf, &len, &st) == -1) {
        err_input("E_PIN_FILE", "%s %s: %s", what, path,
            errno == EFBIG ? "larger than 4 KiB, not a PIN file"
            : errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (len == 0 || memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL) {
        wipe(buf, len);
        free(buf);
        err_input("E_PIN_FILE", "%s %s: %s", what, path,
            len == 0 ? "empty" : "more than one line");
        return -1;
    }
    if (pin_file_mode_ok(st.st_mode) == -1) {
        wipe(buf, len);
        free(buf);
        err_input("E_PIN_FILE_MODE", "%s %s has mode %04o: %s; "
            "chmod 0600 (or 0640 for a service group)", what, path,
            (unsigned)(st.st_mode & 07777),
            (st.st_mode & 0004) ? "others can read it" : "group or others can write it");
        return -1;
    }
    return pin_new((char *)buf, len, what, out);
}

int
pin_from_value(const char *value, const char *what, struct pin **out)
{
    char *copy;

    *out = NULL;
    if (value == NULL || *value == '\0') {
        err_input("E_PIN", "%s: empty PIN", what);
        return -1;
    }
    if ((copy = strdup(value)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    return pin_new(copy, strlen(copy), what, out);
}

/* The terminal state to restore if a signal arrives while echo is off. */
static int tty_fd = -1;
static struct termios tty_saved;

static void
restore_tty(int sig)
{
    if (tty_fd != -1)
        (void)tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

int
pin_prompt(const char *prompt, struct pin **out)
{
    struct termios quiet;
    struct sigaction sa = { .sa_handler = restore_tty }, old[3];
    const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
    char buf[256];
    size_t n = 0;
    int fd, rc = -1;

    *out = NULL;
    if (!isatty(STDIN_FILENO))
        return 1;
    if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
        return 1;
    if (tcgetattr(fd, &tty_saved) == -1) {
        close(fd);
        return 1;
    }
    quiet = tty_saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    tty_fd = fd;
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, &old[i]);
    /* Never read a PIN with echo on. */
    if (tcsetattr(fd, TCSAFLUSH, &quiet) == -1) {
        err_runtime("E_TERMINAL", "cannot turn off echo on the terminal; not reading the PIN");
        goto out;
    }
    (void)!write(fd, prompt, strlen(prompt));
    /* read(), not stdio: no library buffer keeps a copy of the PIN. */
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n < sizeof(buf) - 1)
            buf[n++] = c;
        c = 0;
    }
    (void)tcsetattr(fd, TCSAFLUSH, &tty_saved);
    (void)!write(fd, "\n", 1);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        err_input("E_PIN", "no PIN entered");
        goto out;
    }
    buf[n] = '\0';
    if (pin_from_value(buf, "prompt", out) == -1)
        goto out;
    rc = 0;
out:
    wipe(buf, sizeof(buf));
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
    tty_fd = -1;
    close(fd);
    return rc;
}
