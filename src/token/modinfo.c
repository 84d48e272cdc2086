/*
 * modinfo.c - what a module says about itself and its tokens, read so that
 * no module can overflow or confuse us: slot and mechanism lists sized by
 * the module (not fixed arrays), token info with NUL padding turned into
 * the blanks PKCS#11 requires, and the token family those identify.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include "tokenfam.h"
#include "util.h"

/*
 * Ask for the count, then the list; again while the module says the buffer
 * is too small (a slot may appear in between).  With `first` > 0 the list
 * is first asked for in one call, into a buffer of that many entries (the
 * usual case, one round trip fewer on a network HSM).  Not for mechanism
 * lists: NSS softokn 3.87 writes its whole mechanism list past a short
 * buffer instead of answering CKR_BUFFER_TOO_SMALL (tokens/nss-softokn.conf).
 * `get` is C_GetSlotList or C_GetMechanismList bound to its first argument.
 */
typedef CK_RV (*list_fn)(CK_FUNCTION_LIST *fn, CK_ULONG arg, CK_ULONG *buf, CK_ULONG *n);

static int
sized_list(CK_FUNCTION_LIST *fn, list_fn get, CK_ULONG arg, CK_ULONG first, CK_ULONG **out,
    CK_ULONG *n)
{
    CK_ULONG *buf = NULL;
    CK_RV rv;

    *out = NULL;
    *n = 0;
    if (first > 0) {
        CK_ULONG got = first;
        if ((buf = calloc(first, sizeof(*buf))) == NULL)
            return -1;
        if ((rv = get(fn, arg, buf, &got)) == CKR_OK && got <= first) {
            *out = buf;
            *n = got;
            return 0;
        }
        free(buf);
        buf = NULL;
        if (rv != CKR_BUFFER_TOO_SMALL)
            return -1;
    }
    for (int tries = 0; tries < 4; tries++) {
        CK_ULONG want = 0;
        if ((rv = get(fn, arg, NULL, &want)) != CKR_OK)
            return -1;
        if (want == 0)
            return 0;
        if (want > 1 << 16 || (buf = calloc(want, sizeof(*buf))) == NULL)
            return -1;
        rv = get(fn, arg, buf, &want);
        if (rv == CKR_OK) {
            *out = buf;
            *n = want;
            return 0;
        }
        free(buf);
        buf = NULL;
        if (rv != CKR_BUFFER_TOO_SMALL)
            return -1;
    }
    return -1;
}

static CK_RV
get_slots(CK_FUNCTION_LIST *fn, CK_ULONG present, CK_ULONG *buf, CK_ULONG *n)
{
    return fn->C_GetSlotList((CK_BBOOL)present, buf, n);
}

static CK_RV
get_mechs(CK_FUNCTION_LIST *fn, CK_ULONG slot, CK_ULONG *buf, CK_ULONG *n)
{
    return fn->C_GetMechanismList(slot, buf, n);
}

int
tok_slot_list(CK_FUNCTION_LIST *fn, CK_SLOT_ID **out, CK_ULONG *n)
{
    return sized_list(fn, get_slots, CK_TRUE, 1024, out, n);
}

int
tok_mechanism_list(CK_FUNCTION_LIST *fn, CK_SLOT_ID slot, CK_MECHANISM_TYPE **out, CK_ULONG *n)
{
    return sized_list(fn, get_mechs, slot, 0, out, n);
}

/* Trailing NULs of a padded field become blanks (tpm2-pkcs11 pads its model with NULs). */
static void
unpad(CK_UTF8CHAR *f, size_t n)
{
    while (n > 0 && f[n - 1] == '\0')
        f[--n] = ' ';
}

void
tok_clean_info(CK_TOKEN_INFO *ti)
{
    unpad(ti->label, sizeof(ti->label));
    unpad(ti->manufacturerID, sizeof(ti->manufacturerID));
    unpad(ti->model, sizeof(ti->model));
    unpad(ti->serialNumber, sizeof(ti->serialNumber));
}

const struct token_family *
tok_family(CK_FUNCTION_LIST *fn, const CK_TOKEN_INFO *ti)
{
    CK_INFO mi;
    char lmanu[33] = "", ldesc[33] = "", manu[33], model[17];
    char *module = tok_module_name(fn);
    const struct token_family *f;

    tok_padded(manu, ti->manufacturerID, sizeof(ti->manufacturerID));
    tok_padded(model, ti->model, sizeof(ti->model));
    struct tokenfam_ident id = { lmanu, ldesc, module, manu, model };
    /* CK_INFO only when a family that needs it could match (not for plain SoftHSM). */
    if (tokenfam_needs_library(&id) && fn->C_GetInfo(&mi) == CKR_OK) {
        tok_padded(lmanu, mi.manufacturerID, sizeof(mi.manufacturerID));
        tok_padded(ldesc, mi.libraryDescription, sizeof(mi.libraryDescription));
    }
    f = tokenfam_find(&id);
    free(module);
    return f;
}

bool
tok_family_offers(const struct token_family *f, const char *type)
{
    const char *p;
    size_t n = strlen(type);

    if (f == NULL || f->keytypes == NULL)
        return true;
    for (p = f->keytypes; (p = strstr(p, type)) != NULL; p += n) {
        bool start = p == f->keytypes || p[-1] == ' ' || p[-1] == ',';
        bool end = p[n] == '\0' || p[n] == ' ' || p[n] == ',';
        if (start && end)
            return true;
    }
    return false;
}

bool
token_labels_fixed(const struct token *tok)
{
    return tok->family != NULL && tok->family->label_immutable;
}

const char *
tok_loaded_hint(const struct token *tok)
{
    if (tok->family == NULL || !tok->family->objects_left_loaded)
        return "";
    return "; this token may keep objects loaded by a failed or killed run: when it is used "
        "without a resource manager, run tpm2_flushcontext -t and tpm2_flushcontext -l before "
        "the next command";
}

bool
token_wrap_ignores_extractable(const struct token *tok)
{
    return tok->family != NULL && tok->family->wrap_ignores_extractable;
}
