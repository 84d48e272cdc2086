/*
 * fuzz_uri_pin.c - libFuzzer target: PKCS#11 URIs and PIN sources.
 *
 * The bytes are a PKCS#11 URI as a user gives it (--token, [token] uri):
 * p11_kit_uri_parse() as token.c calls it, uri_redact() for messages, and
 * the PIN sources of pin.c: a pin-value goes through pin_from_value(), the
 * first bytes double as a PIN file mode for pin_file_mode_ok(), whose rule
 * is checked against its definition.  Built and run by scripts/fuzz with
 * ASan, UBSan and LSan.  With -DFUZZ_REDACT_CHECK (FUZZ_REDACT_CHECK=1
 * scripts/fuzz, as scripts/test runs it) a PIN that p11-kit still reads in
 * uri_redact()'s output is a finding (issue 11, finding 1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "pin.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *shown;
    P11KitUri *uri;
    struct pin *pin = NULL;

    if (size >= 2) {
        unsigned mode = ((unsigned)data[0] << 8 | data[1]) & 07777;
        bool ok = (mode & 0004) == 0 && (mode & 0022) == 0;
        if ((pin_file_mode_ok(mode) == 0) != ok)
            abort();
    }
    if (size > 4096 || (s = malloc(size + 1)) == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    shown = uri_redact(s);
    if (shown == NULL)
        abort();    /* documented: never NULL */
    if ((uri = p11_kit_uri_new()) != NULL &&
        p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri) == P11_KIT_URI_OK) {
        const char *v = p11_kit_uri_get_pin_value(uri);
        if (v != NULL && pin_from_value(v, "pin-value", &pin) == 0 &&
            (pin->len != strlen(v) || strcmp(pin->value, v) != 0))
            abort();
#ifdef FUZZ_REDACT_CHECK
        /*
         * What p11-kit would read as the PIN in the printed text is hidden:
         * parse the redacted URI the way the module registry does.
         */
        P11KitUri *again = p11_kit_uri_new();
        if (again != NULL &&
            p11_kit_uri_parse(shown, P11_KIT_URI_FOR_ANY, again) == P11_KIT_URI_OK) {
            const char *pv = p11_kit_uri_get_pin_value(again);
            const char *ps = p11_kit_uri_get_pin_source(again);
            if ((pv != NULL && strcmp(pv, "(hidden)") != 0) ||
                (ps != NULL && strcmp(ps, "(hidden)") != 0))
                abort();
        }
        p11_kit_uri_free(again);
#endif
        (void)p11_kit_uri_get_pin_source(uri);
    }
    pin_free(pin);
    p11_kit_uri_free(uri);
    free(shown);
    free(s);
    err_clear();
    return 0;
}
