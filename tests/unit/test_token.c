/* Unit tests for the pure parts of the token layer. */
#include <criterion/criterion.h>

#include <p11-kit/pkcs11.h>

#include "keytype.h"
#include "token.h"
#include "util.h"

Test(login_precheck, refuses_locked_pin)
{
    cr_assert_eq(token_login_precheck(CKF_LOGIN_REQUIRED | CKF_USER_PIN_LOCKED, true, "t"), -1);
    cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
}

Test(login_precheck, refuses_final_try_unless_allowed)
{
    cr_assert_eq(token_login_precheck(CKF_USER_PIN_FINAL_TRY, false, "t"), -1);
    cr_assert_eq(token_login_precheck(CKF_USER_PIN_FINAL_TRY, true, "t"), 0);
}

Test(login_precheck, allows_normal_and_count_low)
{
    cr_assert_eq(token_login_precheck(CKF_LOGIN_REQUIRED, false, "t"), 0);
    cr_assert_eq(token_login_precheck(CKF_USER_PIN_COUNT_LOW, false, "t"), 0);
}

Test(rv_text, readable)
{
    cr_assert_str_eq(token_rv_text(CKR_PIN_INCORRECT), "PIN incorrect");
    cr_assert_str_eq(token_rv_text(CKR_PIN_LOCKED), "PIN locked");
    cr_assert_str_eq(token_rv_text(0x12345678UL), "PKCS#11 error 0x12345678");
}

Test(keytype, parse_all_and_reject_others)
{
    const char *ok[] = { "rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384", "ec:p521",
        "ed25519" };
    for (size_t i = 0; i < 7; i++) {
        const struct keytype *t = keytype_parse(ok[i]);
        cr_assert_not_null(t, "%s", ok[i]);
        cr_assert_str_eq(t->name, ok[i]);
        cr_assert_eq(keytype_lookup(t->alg, t->bits), t);
    }
    cr_assert_null(keytype_parse("rsa:1024"));
    cr_assert_null(keytype_parse("ec:p224"));
    cr_assert_null(keytype_parse("RSA:2048"));
    cr_assert_null(keytype_parse(NULL));
}
