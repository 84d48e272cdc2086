#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

Test(hex, roundtrip)
{
    const uint8_t in[] = { 0x00, 0x7f, 0x80, 0xff };
    char *s = hex_encode(in, sizeof(in));
    cr_assert_str_eq(s, "007f80ff");
    uint8_t *out;
    size_t n;
    cr_assert_eq(hex_decode("00:7F:80:ff", &out, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(in, out, 4), 0);
    free(s);
    free(out);
}

Test(hex, rejects_bad_input)
{
    uint8_t *out;
    size_t n;
    cr_assert_eq(hex_decode("abc", &out, &n), -1);
    cr_assert_eq(hex_decode("zz", &out, &n), -1);
    cr_assert_eq(hex_decode("", &out, &n), -1);
    cr_assert_null(out);
}

Test(sanitize, replaces_control_bytes)
{
    char *s = sanitize("a\x1b[31mb\xc3\xa9", 100);
    cr_assert_str_eq(s, "a?[31mb??");
    free(s);
    s = sanitize("abcdef", 3);
    cr_assert_str_eq(s, "abc");
    free(s);
}

Test(files, atomic_write_and_capped_read)
{
    char dir[] = "/tmp/p11e-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/f", dir);
    cr_assert_eq(write_file_atomic(path, "hello", 5, 0600), 0);
    uint8_t *buf;
    size_t n;
    cr_assert_eq(read_file_capped(path, 16, &buf, &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_str_eq((char *)buf, "hello");
    free(buf);
    cr_assert_eq(read_file_capped(path, 4, &buf, &n), -1);
    cr_assert_null(buf);
    unlink(path);
    rmdir(dir);
}

Test(files, atomic_write_fails_cleanly_in_missing_dir)
{
    cr_assert_eq(write_file_atomic("/nonexistent-dir/x", "a", 1, 0600), -1);
    cr_assert_eq(err_exit_code(), EXIT_RUNTIME);
}

/* uri_redact(): the copy, and that `secret` appears nowhere in it. */
static void
redacts(const char *uri, const char *want, const char *secret)
{
    char *s = uri_redact(uri);

    cr_assert_not_null(s);
    cr_assert_str_eq(s, want, "uri_redact(%s)", uri);
    if (secret != NULL)
        cr_assert_null(strstr(s, secret), "%s leaks %s", s, secret);
    free(s);
}

Test(uri_redact, leading_pin_value)
{
    /* Nothing after a secret in the path is shown (see the p11-kit quirk below). */
    redacts("pkcs11:pin-value=1234;token=x", "pkcs11:pin-value=(hidden)", "1234");
    redacts("pkcs11:pin-value=1234", "pkcs11:pin-value=(hidden)", "1234");
}

Test(uri_redact, pin_in_query)
{
    redacts("pkcs11:token=x?pin-value=1234", "pkcs11:token=x?pin-value=(hidden)", "1234");
    redacts("pkcs11:token=x?module-name=softhsm2&pin-source=file:/p",
        "pkcs11:token=x?module-name=softhsm2&pin-source=(hidden)", "/p");
    /* In the query only '&' separates: a ';' belongs to the value. */
    redacts("pkcs11:token=x?pin-value=12;34", "pkcs11:token=x?pin-value=(hidden)", "34");
}

/* Found by fuzz_uri_pin: p11-kit drops white space anywhere, also inside a name. */
Test(uri_redact, blanks_inside_name)
{
    redacts("pkcs11:token=edge?pin-valu   e=123456", "pkcs11:token=edge?pin-valu   e=(hidden)",
        "123456");
    redacts("pkcs11:p in-so urce=/p", "pkcs11:p in-so urce=(hidden)", "/p");
    /* A tab is no printable byte: the whole URI is withheld. */
    redacts("pkcs11:pin-val\tue=1234", "(unparsable URI hidden)", "1234");
}

Test(uri_redact, percent_encoded_name)
{
    redacts("pkcs11:pin%2dvalue=1234;token=x", "pkcs11:pin%2dvalue=(hidden)", "1234");
    redacts("pkcs11:token=x?%70%69%6e-source=/p", "pkcs11:token=x?%70%69%6e-source=(hidden)",
        "/p");
}

Test(uri_redact, mixed_case)
{
    redacts("pkcs11:PIN-Value=1234", "pkcs11:PIN-Value=(hidden)", "1234");
    redacts("PKCS11:token=x?Pin-Source=/p", "PKCS11:token=x?Pin-Source=(hidden)", "/p");
    redacts("pkcs11: pin-value =1234", "pkcs11: pin-value =(hidden)", "1234");
}

Test(uri_redact, several_pins)
{
    redacts("pkcs11:token=x;pin-source=/a?pin-value=2222&pin-source=/b",
        "pkcs11:token=x;pin-source=(hidden)", "2222");
    redacts("pkcs11:pin-value=1111;pin-value=2222", "pkcs11:pin-value=(hidden)", "2222");
}

/*
 * Found by fuzz_uri_pin: after an empty path attribute, p11-kit 0.24 reads
 * a PIN on past ';' ("pkcs11:;pin-value=1;token=x" logs in with "1;token=x").
 */
Test(uri_redact, pin_running_past_semicolon)
{
    redacts("pkcs11:;pin-value=1;token=x", "pkcs11:;pin-value=(hidden)", "token=x");
    redacts("pkcs11:token=a;;pin-value=12;token=x?module-name=m",
        "pkcs11:token=a;;pin-value=(hidden)", "token=x");
    /* ... and after one, '&' separates path attributes: "pkcs11:;x=1&pin-value=2". */
    redacts("pkcs11:;x=1&pin-value=2;", "pkcs11:;x=1&pin-value=(hidden)", "2;");
}

Test(uri_redact, leaves_other_attributes)
{
    redacts("pkcs11:token=edge;object=k;type=private", "pkcs11:token=edge;object=k;type=private",
        NULL);
    redacts("pkcs11:", "pkcs11:", NULL);
    redacts("pkcs11:pin-valued=1;xpin-value=2", "pkcs11:pin-valued=1;xpin-value=2", NULL);
    redacts(NULL, "", NULL);
}

Test(uri_redact, garbage_is_not_echoed)
{
    redacts("pkcs11:pin%2=1234", "(unparsable URI hidden)", "1234");
    redacts("pkcs11:pin%zzvalue=1234", "(unparsable URI hidden)", "1234");
    redacts("pkcs11:pin%00-value=1234", "(unparsable URI hidden)", "1234");
    redacts("pkcs11:token=x?pin-value%=1234", "(unparsable URI hidden)", "1234");
    redacts("pin-value=1234;token=x", "(unparsable URI hidden)", "1234");
    redacts("token=x?pin-value=1234", "(unparsable URI hidden)", "1234");
}

/* Issue 11 finding 7: the origin the ACME client compares every CA URL with. */
Test(url_origin, normalised_and_refused)
{
    static const struct { const char *url, *origin; } ok[] = {
        { "https://ca.example.net/dir", "https://ca.example.net:443" },
        { "HTTPS://CA.Example.NET:443/acme/order/1?x#y", "https://ca.example.net:443" },
        { "https://127.0.0.1:14000", "https://127.0.0.1:14000" },
        { "https://[::1]:8443/dir", "https://[::1]:8443" },
        { "http://ca.example.net/dir", "http://ca.example.net:80" },
    };
    static const char *const bad[] = {
        "ftp://ca.example.net/", "https://", "https:///dir", "https://ca:0/", "https://ca:65536/",
        "https://ca:x/", "https://user@ca.example.net/", "https://[::1/", "ca.example.net",
        "https://ca:-1/",
    };
    char buf[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect_eq(url_origin(ok[i].url, buf, sizeof(buf)), 0, "%s", ok[i].url);
        cr_expect_str_eq(buf, ok[i].origin, "%s", ok[i].url);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(url_origin(bad[i], buf, sizeof(buf)), -1, "%s", bad[i]);
    /* 127.0.0.2 is another origin than 127.0.0.1 (the hostile CA's foreign-url). */
    char other[128];
    cr_assert_eq(url_origin("https://127.0.0.2:5/x", other, sizeof(other)), 0);
    cr_assert_eq(url_origin("https://127.0.0.1:5/dir", buf, sizeof(buf)), 0);
    cr_expect_str_neq(buf, other);
}

/* Issue 11 finding 5: sanitize() and sanitize_cat() are one rule. */
Test(sanitize, one_rule_for_copies_and_appends)
{
    const char *in = "ok \x1b[31m\x07\x9b" "end";
    char *s = sanitize(in, 100), buf[32] = "> ";

    cr_assert_str_eq(s, "ok ?[31m??end");
    sanitize_cat(buf, sizeof(buf), in);
    cr_assert_str_eq(buf, "> ok ?[31m??end");
    free(s);
}
