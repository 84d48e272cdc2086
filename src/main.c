/* main.c - p11enroll: dispatch to the subcommand. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "commands.h"
#include "util.h"

#ifndef P11E_VERSION
#define P11E_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    { "tokens", cmd_tokens, "list modules and tokens, and the key types they can generate" },
    { "keygen", cmd_keygen, "generate a non-extractable key pair on a token" },
    { "keys", cmd_keys, "list the private keys on a token and their certificates" },
    { "plan", cmd_plan, "print the subject, ordered SANs and EKUs a profile gives, and why" },
    { "csr", cmd_csr, "build the CSR from a profile's plan and sign it on the token" },
    { "import", cmd_import, "store an issued certificate on the token next to its key" },
    { "enroll", cmd_enroll, "the whole path: plan, key, CSR, CA (ACME or manual), import, files" },
    { "renew", cmd_renew, "enroll again when due, rotating the key; crash-safe, for timers" },
    { "status", cmd_status, "current key and certificate, retired pairs, pending work, next renewal" },
    { "repair", cmd_repair, "show, then remove (--yes), objects a crash left that nothing can use" },
};

/*
 * A core dump of this process could hold the PIN or an EAB key: no core file
 * (RLIMIT_CORE 0, soft and hard, inherited by hooks) and not dumpable (no
 * core, no ptrace by other users' processes, /proc/<pid> owned by root).
 * Returns 0, or -1 after reporting.
 */
static int
no_core_dumps(void)
{
    const struct rlimit none = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &none) == -1 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
        err_runtime("E_NO_CORE", "cannot turn off core dumps: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: p11enroll [-v|-q] <command> [options]\n\n"
               "Enroll TLS certificates whose private keys stay in a PKCS#11 token.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'p11enroll <command> --help' explains a command.\n"
               "Exit codes: 0 done, 1 runtime failure, 2 usage or input error,\n"
               "3 renew: not due.\n");
}

int
main(int argc, char **argv)
{
    int i = 1, verbosity = 0;

    if (no_core_dumps() == -1)
        return EXIT_RUNTIME;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)
            verbosity++;
        else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0)
            verbosity = -1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_DONE;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("p11enroll %s\n", P11E_VERSION);
            return EXIT_DONE;
        } else {
            fprintf(stderr, "p11enroll: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_INPUT;
        }
    }
    util_set_verbosity(verbosity);
    if (i >= argc) {
        usage(stderr);
        return EXIT_INPUT;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
        if (strcmp(argv[i], commands[c].name) == 0) {
            util_set_command(commands[c].name);
            return commands[c].run(argc - i, argv + i);
        }
    }
    fprintf(stderr, "p11enroll: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return EXIT_INPUT;
}
