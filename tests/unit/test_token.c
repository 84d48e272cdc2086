/* Unit tests for the pure parts of the token layer. */
#include <criterion/criterion.h>

#include <string.h>

#include <p11-kit/pkcs11.h>

#include "../../src/token/token_int.h"
#include "keytype.h"
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

/* ---- the key-generation template (pure) ---------------------------------- */

static const CK_ATTRIBUTE *
attr(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    const CK_ATTRIBUTE *found = NULL;
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == type) {
            cr_assert_null(found, "attribute 0x%lx twice", type);
            found = &t[i];
        }
    return found;
}

static void
assert_bool(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_BBOOL want)
{
    const CK_ATTRIBUTE *a = attr(t, n, type);
    cr_assert_not_null(a, "attribute 0x%lx missing", type);
    cr_assert_eq(a->ulValueLen, 1);
    cr_assert_eq(*(CK_BBOOL *)a->pValue, want, "attribute 0x%lx", type);
}

static void
assert_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG want)
{
    const CK_ATTRIBUTE *a = attr(t, n, type);
    cr_assert_not_null(a, "attribute 0x%lx missing", type);
    cr_assert_eq(a->ulValueLen, sizeof(CK_ULONG));
    cr_assert_eq(*(CK_ULONG *)a->pValue, want, "attribute 0x%lx", type);
}

static void
assert_bytes(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, const void *want,
    size_t len)
{
    const CK_ATTRIBUTE *a = attr(t, n, type);
    cr_assert_not_null(a, "attribute 0x%lx missing", type);
    cr_assert_eq(a->ulValueLen, len, "attribute 0x%lx length", type);
    cr_assert_eq(memcmp(a->pValue, want, len), 0, "attribute 0x%lx value", type);
}

static const uint8_t test_id[] = { 0xde, 0xad, 0xbe, 0xef };

struct flag {
    CK_ATTRIBUTE_TYPE type;
    CK_BBOOL want;
};

static const struct flag priv_flags[] = {
    { CKA_TOKEN, CK_TRUE }, { CKA_PRIVATE, CK_TRUE }, { CKA_SENSITIVE, CK_TRUE },
    { CKA_EXTRACTABLE, CK_FALSE }, { CKA_SIGN, CK_TRUE }, { CKA_DECRYPT, CK_FALSE },
    { CKA_UNWRAP, CK_FALSE }, { CKA_DERIVE, CK_FALSE },
};

static const struct flag pub_flags[] = {
    { CKA_TOKEN, CK_TRUE }, { CKA_PRIVATE, CK_FALSE }, { CKA_WRAP, CK_FALSE },
};

/* Every key type: the private half is locked down, both halves named alike. */
Test(keygen_template, private_half_is_protected)
{
    const char *types[] = { "rsa:2048", "rsa:4096", "ec:p256", "ec:p384", "ec:p521", "ed25519" };
    for (size_t i = 0; i < 6; i++) {
        struct keygen_template t;
        keygen_template(keytype_parse(types[i]), "edge", test_id, sizeof(test_id), &t);
        cr_assert_eq(t.npriv, 12, "%s", types[i]);
        assert_ulong(t.priv, t.npriv, CKA_CLASS, CKO_PRIVATE_KEY);
        for (size_t k = 0; k < sizeof(priv_flags) / sizeof(priv_flags[0]); k++)
            assert_bool(t.priv, t.npriv, priv_flags[k].type, priv_flags[k].want);
        /* Never asked for: a value the generator could be told to reveal. */
        cr_assert_null(attr(t.priv, t.npriv, CKA_VALUE));
        cr_assert_null(attr(t.priv, t.npriv, CKA_PRIVATE_EXPONENT));
        assert_ulong(t.pub, t.npub, CKA_CLASS, CKO_PUBLIC_KEY);
        for (size_t k = 0; k < sizeof(pub_flags) / sizeof(pub_flags[0]); k++)
            assert_bool(t.pub, t.npub, pub_flags[k].type, pub_flags[k].want);
        /* No usage flags on the public half: a TPM couples CKA_VERIFY with
         * CKA_DECRYPT and CKA_ENCRYPT with CKA_SIGN and fails on a
         * contradiction (tokens/tpm2-pkcs11.conf, usage-coupling). */
        cr_assert_null(attr(t.pub, t.npub, CKA_VERIFY));
        cr_assert_null(attr(t.pub, t.npub, CKA_ENCRYPT));
        for (int half = 0; half < 2; half++) {
            const CK_ATTRIBUTE *at = half ? t.pub : t.priv;
            CK_ULONG n = half ? t.npub : t.npriv;
            assert_bytes(at, n, CKA_LABEL, "edge", 4);
            assert_bytes(at, n, CKA_ID, test_id, sizeof(test_id));
        }
    }
}

Test(keygen_template, rsa_carries_size_and_exponent)
{
    struct keygen_template t;
    const uint8_t f4[] = { 0x01, 0x00, 0x01 };

    keygen_template(keytype_parse("rsa:3072"), "k", test_id, sizeof(test_id), &t);
    cr_assert_eq(t.mech.mechanism, CKM_RSA_PKCS_KEY_PAIR_GEN);
    cr_assert_eq(t.npub, 9);
    assert_ulong(t.pub, t.npub, CKA_KEY_TYPE, CKK_RSA);
    assert_ulong(t.priv, t.npriv, CKA_KEY_TYPE, CKK_RSA);
    assert_ulong(t.pub, t.npub, CKA_MODULUS_BITS, 3072);
    assert_bytes(t.pub, t.npub, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
    cr_assert_null(attr(t.pub, t.npub, CKA_EC_PARAMS));
}

Test(keygen_template, ec_carries_the_curve_oid)
{
    static const struct { const char *type; uint8_t oid[10]; size_t len; } curves[] = {
        { "ec:p256", { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 }, 10 },
        { "ec:p384", { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 }, 7 },
        { "ec:p521", { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 }, 7 },
    };
    for (size_t i = 0; i < 3; i++) {
        struct keygen_template t;
        keygen_template(keytype_parse(curves[i].type), "k", test_id, sizeof(test_id), &t);
        cr_assert_eq(t.mech.mechanism, CKM_EC_KEY_PAIR_GEN);
        cr_assert_eq(t.npub, 8);
        assert_ulong(t.pub, t.npub, CKA_KEY_TYPE, CKK_EC);
        assert_ulong(t.priv, t.npriv, CKA_KEY_TYPE, CKK_EC);
        assert_bytes(t.pub, t.npub, CKA_EC_PARAMS, curves[i].oid, curves[i].len);
        cr_assert_null(attr(t.pub, t.npub, CKA_MODULUS_BITS));
    }
}

Test(keygen_template, ed25519_carries_its_oid)
{
    struct keygen_template t;
    const uint8_t oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

    keygen_template(keytype_parse("ed25519"), "k", test_id, sizeof(test_id), &t);
    cr_assert_eq(t.mech.mechanism, CKM_EC_EDWARDS_KEY_PAIR_GEN);
    cr_assert_eq(keygen_mechanism(keytype_parse("ed25519")), CKM_EC_EDWARDS_KEY_PAIR_GEN);
    assert_ulong(t.pub, t.npub, CKA_KEY_TYPE, CKK_EC_EDWARDS);
    assert_bytes(t.pub, t.npub, CKA_EC_PARAMS, oid, sizeof(oid));
}
