/* log.c - error reporting (err_*, exit class, --json error), progress and verbose notes. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *command = "p11enroll";
static int verbosity;
static bool held;               /* err_hold(): record errors, do not print them */

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
    if (held)
        return;
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

void
err_hold(bool hold)
{
    held = hold;
}

const char *
err_last_message(void)
{
    return last.message;
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

int
err_nomem(void)
{
    err_runtime("E_NOMEM", "out of memory");
    return -1;
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
