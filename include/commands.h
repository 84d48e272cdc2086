/*
 * commands.h - one entry point per subcommand.  Each cmd_*.c owns its
 * getopt_long table and usage text; main.c only dispatches.
 * Each returns the process exit code (util.h).
 */
#ifndef P11E_COMMANDS_H
#define P11E_COMMANDS_H

#include <stdbool.h>

#include <openssl/x509.h>

int cmd_tokens(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_csr(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_repair(int argc, char **argv);

struct token_opts;

/*
 * `renew --profile F --cert F`, also run by `import --profile F` when a
 * renewal of a [ca] type = manual profile waits for the CA: complete it
 * with leaf and chain (borrowed) and print renew's result.  Exit code.
 */
int renew_complete_cmd(const char *profile, const struct token_opts *over, X509 *leaf,
    STACK_OF(X509) *chain, bool json);

#endif
