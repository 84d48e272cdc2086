/* test_cmdopt.c - the shared option prologue, cmdopt_parse(). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "cmdopt.h"
#include "util.h"

enum { OPT_LABEL = CMDOPT_OWN, OPT_FAIL };

static const struct option opts[] = {
    { "token", required_argument, NULL, CMDOPT_TOKEN },
    { "label", required_argument, NULL, OPT_LABEL },
    { "fail", no_argument, NULL, OPT_FAIL },
    { "json", no_argument, NULL, CMDOPT_JSON },
    { "help", no_argument, NULL, CMDOPT_HELP },
    CMDOPT_TOKEN_ROWS,
    { NULL, 0, NULL, 0 },
};

struct args {
    struct token_opts to;
    const char *label;
    bool json;
    int calls;
};

static int
on_opt(int id, const char *arg, void *ctx)
{
    struct args *a = ctx;

    a->calls++;
    if (id == OPT_FAIL) {
        err_runtime("E_TEST", "refused");
        return -1;
    }
    cr_assert_eq(id, OPT_LABEL);
    a->label = arg;
    return 0;
}

static int
parse(struct args *a, int argc, char **argv)
{
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = "usage: test\n", .token = &a->to, .json = &a->json,
        .on_opt = on_opt, .ctx = a,
    };
    return cmdopt_parse(argc, argv, &spec);
}

#define ARGV(...) (char *[]){ "test", __VA_ARGS__, NULL }
#define ARGC(...) ((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(a, ...) parse(a, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

/* Messages name the command "test"; one of the streams is captured. */
static void
capture_out(void)
{
    util_set_command("test");
    cr_redirect_stdout();
}

static void
capture_err(void)
{
    util_set_command("test");
    cr_redirect_stderr();
}

Test(cmdopt, shared_and_own_ids, .init = capture_err)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--token", "pkcs11:token=a", "--label", "L", "--module", "m.so",
                     "--pin-file", "p", "--allow-final-pin-try", "--json"), CMDOPT_RUN);
    cr_assert_str_eq(a.to.uri, "pkcs11:token=a");
    cr_assert_str_eq(a.to.module_path, "m.so");
    cr_assert_str_eq(a.to.pin_file, "p");
    cr_assert(a.to.allow_final_try);
    cr_assert(a.json);
    cr_assert_str_eq(a.label, "L");
    cr_assert_eq(a.calls, 1, "only the command's own id reaches on_opt");
}

Test(cmdopt, parses_again_from_argv_1, .init = capture_err)
{
    struct args a = { 0 }, b = { 0 };

    cr_assert_eq(PARSE(&a, "--label", "one"), CMDOPT_RUN);
    cr_assert_eq(PARSE(&b, "--label", "two"), CMDOPT_RUN);
    cr_assert_str_eq(b.label, "two");
}

Test(cmdopt, help_prints_usage_and_exits_0, .init = capture_out)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--label", "x", "--help", "--bogus"), EXIT_DONE);
    fflush(stdout);
    cr_assert_stdout_eq_str("usage: test\n");
}

Test(cmdopt, unknown_option_is_a_usage_error, .init = capture_err)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--bogus", "--label", "x"), EXIT_INPUT);
    cr_assert_eq(a.calls, 0, "parsing stops at the first error");
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "p11enroll: test: unknown or incomplete option --bogus (see 'p11enroll test --help')\n");
}

Test(cmdopt, missing_value_is_a_usage_error, .init = capture_err)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--label"), EXIT_INPUT);
    cr_assert_eq(a.calls, 0);
}

Test(cmdopt, stops_at_the_first_operand, .init = capture_err)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "stray", "--json"), EXIT_INPUT);
    cr_assert_not(a.json, "no option after an operand is read");
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "p11enroll: test: unexpected argument stray (see 'p11enroll test --help')\n");
}

Test(cmdopt, json_usage_error_on_stdout, .init = capture_out)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--json", "stray"), EXIT_INPUT);
    fflush(stdout);
    cr_assert_stdout_eq_str("{\"error\": {\"code\": \"E_USAGE\", \"message\": \"unexpected "
                            "argument stray (see 'p11enroll test --help')\"}}\n");
}

Test(cmdopt, on_opt_failure_ends_parsing, .init = capture_err)
{
    struct args a = { 0 };

    cr_assert_eq(PARSE(&a, "--fail", "--label", "x"), EXIT_RUNTIME);
    cr_assert_eq(a.calls, 1);
    cr_assert_null(a.label);
}

Test(cmdopt, quoted_style, .init = capture_err)
{
    static const struct option popts[] = {
        { "profile", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    const struct cmdopt_spec spec = {
        .longopts = popts, .shortopts = ":p:jh", .usage = "", .style = CMDOPT_QUOTED,
        .json = &json,
    };

    cr_assert_eq(cmdopt_parse(ARGC("--profile"), ARGV("--profile"), &spec), EXIT_INPUT);
    cr_assert_eq(cmdopt_parse(ARGC("-x"), ARGV("-x"), &spec), EXIT_INPUT);
    cr_assert_eq(cmdopt_parse(ARGC("-j", "op"), ARGV("-j", "op"), &spec), EXIT_INPUT);
    cr_assert(json, "-j is --json");
    fflush(stderr);
    cr_assert_stderr_eq_str("p11enroll: test: --profile needs a value\n"
                            "p11enroll: test: unknown option '-x'\n"
                            "p11enroll: test: unexpected argument 'op'\n");
}
