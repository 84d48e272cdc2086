/*
 * fuzz_acme.c - libFuzzer target: the ACME response parsers.
 *
 * Any byte string is a candidate directory, order, authorization and problem
 * document (acme_parse_directory/order/authz, acme_problem_format), with and
 * without http:// URLs allowed.  A parsed result must keep the parsers'
 * promises: every URL passes acme_url_ok(), a problem line holds no control
 * byte.  Built and run by scripts/fuzz with ASan, UBSan and LSan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "util.h"

static void
check_line(const char *s)
{
    /* Sanitised text: nothing a terminal would act on. */
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

static void
one(const char *text, size_t len, bool allow_http)
{
    struct acme_directory d = { 0 };
    struct acme_order o = { 0 };
    struct acme_authz a = { 0 };
    char *type = NULL, *line;

    if (acme_parse_directory(text, len, allow_http, &d) == 0 &&
        (!acme_url_ok(d.new_nonce, allow_http) || !acme_url_ok(d.new_order, allow_http)))
        abort();
    acme_directory_clear(&d);
    if (acme_parse_order(text, len, allow_http, &o) == 0) {
        for (size_t i = 0; i < o.n_authzs; i++)
            if (!acme_url_ok(o.authzs[i], allow_http))
                abort();
        check_line(o.error);
    }
    acme_order_clear(&o);
    if (acme_parse_authz(text, len, allow_http, &a) == 0)
        for (size_t i = 0; i < a.n_chall; i++) {
            if (!acme_url_ok(a.chall[i].url, allow_http))
                abort();
            check_line(a.chall[i].error);
        }
    acme_authz_clear(&a);
    line = acme_problem_format(text, len, &type);
    check_line(line);
    free(line);
    free(type);
    err_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one((const char *)data, size, false);
    one((const char *)data, size, true);
    return 0;
}
