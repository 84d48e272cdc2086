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
