/* pin.c - PIN sources; every PIN buffer is wiped before it is freed. */
#include "pin.h"

#include <errno.h>
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
pin_from_file(const char *path, const char *what, struct pin **out)
{
    uint8_t *buf;
    size_t len;
    struct stat st;

    *out = NULL;
    if (strncmp(path, "file:", 5) == 0)
        path += 5;
    if (read_file_capped(path, PIN_FILE_MAX, &buf, &len) == -1) {
        err_input("E_PIN_FILE", "%s %s: %s", what, path,
            errno == EFBIG ? "larger than 4 KiB, not a PIN file" : strerror(errno));
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
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        warnmsg("%s %s is readable by group or others (mode %03o); use 0600",
            what, path, (unsigned)(st.st_mode & 0777));
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

int
pin_prompt(const char *prompt, struct pin **out)
{
    struct termios old, quiet;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    FILE *tty;

    *out = NULL;
    if (!isatty(STDIN_FILENO))
        return 1;
    if ((tty = fopen("/dev/tty", "r+")) == NULL)
        return 1;
    fprintf(tty, "%s", prompt);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == -1) {
        fclose(tty);
        return 1;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    (void)tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    n = getline(&line, &cap, tty);
    (void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fprintf(tty, "\n");
    fclose(tty);
    if (n <= 0) {
        if (line != NULL) {
            wipe(line, cap);
            free(line);
        }
        err_input("E_PIN", "no PIN entered");
        return -1;
    }
    if (line[n - 1] == '\n')
        line[--n] = '\0';
    if (n == 0) {
        wipe(line, cap);
        free(line);
        err_input("E_PIN", "no PIN entered");
        return -1;
    }
    /* getline's buffer may be larger than the PIN: wipe all of it on free. */
    if (pin_new(line, cap, "prompt", out) == -1) {
        wipe(line, cap);
        free(line);
        return -1;
    }
    (*out)->len = (size_t)n;
    return 0;
}
