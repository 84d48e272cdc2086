/*
 * token.c - the PKCS#11 layer: modules through p11-kit, token selection by
 * RFC 7512 URI, login, key generation, lookup, signing and certificates.
 *
 * Every object lookup is a C_FindObjects template (class plus CKA_ID or
 * CKA_LABEL), so the cost of a command does not grow with the number of
 * objects on the token.  No code here reads a private key's value or wraps
 * a key: only public attributes and signatures come off the token.
 */
#include "token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "pin.h"
#include "tokenfam.h"
#include "util.h"

#define MAX_CANDIDATES 32

struct token {
    CK_FUNCTION_LIST **modules;   /* initialised modules, NULL-terminated */
    CK_FUNCTION_LIST *fn;         /* the selected token's module */
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    bool have_session, logged_in;
    CK_TOKEN_INFO info;
    char label[33], serial[17];
    char *uri;                    /* token URI, formatted */
    char *object;                 /* object= of the opened URI */
    uint8_t *id;                  /* id= of the opened URI */
    size_t idlen;
    struct pin *pin;              /* kept for CKA_ALWAYS_AUTHENTICATE keys */
    const struct token_family *family;
};

struct token_key {
    CK_OBJECT_HANDLE priv, pub;
    uint8_t *id;
    size_t idlen;
    char *label;
    const struct keytype *type;
    char type_name[32];
    EVP_PKEY *pkey;
    char *uri;
    char spki_sha256[65];
    bool always_auth;
};

/* ---- readable CK_RV ------------------------------------------------------- */

const char *
token_rv_text(unsigned long rv)
{
    switch (rv) {
    case CKR_OK: return "OK";
    case CKR_PIN_INCORRECT: return "PIN incorrect";
    case CKR_PIN_LOCKED: return "PIN locked";
    case CKR_PIN_EXPIRED: return "PIN expired";
    case CKR_PIN_INVALID: return "PIN contains invalid characters";
    case CKR_PIN_LEN_RANGE: return "PIN length out of range";
    case CKR_USER_NOT_LOGGED_IN: return "not logged in";
    case CKR_USER_ALREADY_LOGGED_IN: return "already logged in";
    case CKR_USER_PIN_NOT_INITIALIZED: return "user PIN not initialised";
    case CKR_USER_TYPE_INVALID: return "user type invalid";
    case CKR_TOKEN_NOT_PRESENT: return "token not present";
    case CKR_TOKEN_NOT_RECOGNIZED: return "token not recognised";
    case CKR_TOKEN_WRITE_PROTECTED: return "token is write-protected";
    case CKR_DEVICE_ERROR: return "device error";
    case CKR_DEVICE_MEMORY: return "token memory full";
    case CKR_DEVICE_REMOVED: return "token removed";
    case CKR_HOST_MEMORY: return "out of host memory";
    case CKR_GENERAL_ERROR: return "general error in the module";
    case CKR_FUNCTION_FAILED: return "function failed";
    case CKR_FUNCTION_NOT_SUPPORTED: return "function not supported by the module";
    case CKR_ARGUMENTS_BAD: return "bad arguments";
    case CKR_SLOT_ID_INVALID: return "slot id invalid";
    case CKR_SESSION_HANDLE_INVALID: return "session handle invalid";
    case CKR_SESSION_CLOSED: return "session closed";
    case CKR_SESSION_READ_ONLY: return "session is read-only";
    case CKR_SESSION_COUNT: return "too many sessions";
    case CKR_OBJECT_HANDLE_INVALID: return "object handle invalid";
    case CKR_KEY_HANDLE_INVALID: return "key handle invalid";
    case CKR_KEY_TYPE_INCONSISTENT: return "key type inconsistent with mechanism";
    case CKR_KEY_SIZE_RANGE: return "key size out of range";
    case CKR_KEY_FUNCTION_NOT_PERMITTED: return "key may not be used for this";
    case CKR_MECHANISM_INVALID: return "mechanism not supported";
    case CKR_MECHANISM_PARAM_INVALID: return "mechanism parameter invalid";
    case CKR_ATTRIBUTE_READ_ONLY: return "attribute is read-only";
    case CKR_ATTRIBUTE_SENSITIVE: return "attribute is sensitive";
    case CKR_ATTRIBUTE_TYPE_INVALID: return "attribute type invalid";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "attribute value invalid";
    case CKR_TEMPLATE_INCOMPLETE: return "template incomplete";
    case CKR_TEMPLATE_INCONSISTENT: return "template inconsistent";
    case CKR_DATA_LEN_RANGE: return "data length out of range";
    case CKR_DATA_INVALID: return "data invalid";
    case CKR_BUFFER_TOO_SMALL: return "buffer too small";
    case CKR_OPERATION_ACTIVE: return "another operation is active";
    case CKR_OPERATION_NOT_INITIALIZED: return "operation not initialised";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "module not initialised";
    case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "module already initialised";
    case CKR_ACTION_PROHIBITED: return "action prohibited by the token";
    case CKR_CURVE_NOT_SUPPORTED: return "curve not supported";
    case CKR_DOMAIN_PARAMS_INVALID: return "domain parameters invalid";
    case CKR_SIGNATURE_INVALID: return "signature invalid";
    case CKR_RANDOM_NO_RNG: return "token has no random number generator";
    default: {
        static char buf[48];
        snprintf(buf, sizeof(buf), "PKCS#11 error 0x%08lx", rv);
        return buf;
    }
    }
}

/* ---- modules -------------------------------------------------------------- */

static void
modules_free(CK_FUNCTION_LIST **mods)
{
    if (mods == NULL)
        return;
    for (size_t i = 0; mods[i] != NULL; i++) {
        p11_kit_module_finalize(mods[i]);
        p11_kit_module_release(mods[i]);
    }
    free(mods);
}

static char *
module_name(CK_FUNCTION_LIST *mod)
{
    char *name = p11_kit_module_get_filename(mod);
    if (name == NULL)
        name = p11_kit_module_get_name(mod);
    return name != NULL ? name : strdup("(unnamed module)");
}

/*
 * Load and initialise one module by path, or every module registered with
 * p11-kit.  A registered module that fails to start is skipped with a note
 * under -v: this machine may carry modules for absent hardware.
 */
static int
modules_load(const char *path, CK_FUNCTION_LIST ***out)
{
    CK_FUNCTION_LIST **mods = NULL, **loaded = NULL;
    size_t n = 0;
    CK_RV rv;

    *out = NULL;
    if (path != NULL) {
        CK_FUNCTION_LIST *mod = p11_kit_module_load(path, 0);
        if (mod == NULL) {
            err_runtime("E_MODULE", "module %s: cannot load: %s", path,
                p11_kit_message() ? p11_kit_message() : "unknown error");
            return -1;
        }
        if ((rv = p11_kit_module_initialize(mod)) != CKR_OK) {
            err_runtime("E_MODULE", "module %s: C_Initialize: %s", path, token_rv_text(rv));
            p11_kit_module_release(mod);
            return -1;
        }
        if ((mods = calloc(2, sizeof(*mods))) == NULL) {
            p11_kit_module_finalize(mod);
            p11_kit_module_release(mod);
            err_runtime("E_NOMEM", "out of memory");
            return -1;
        }
        mods[0] = mod;
        *out = mods;
        return 0;
    }
    loaded = p11_kit_modules_load(NULL, 0);
    if (loaded == NULL) {
        err_runtime("E_MODULE", "cannot load the PKCS#11 modules registered with p11-kit: %s",
            p11_kit_message() ? p11_kit_message() : "unknown error");
        return -1;
    }
    for (n = 0; loaded[n] != NULL; n++)
        ;
    if ((mods = calloc(n + 1, sizeof(*mods))) == NULL) {
        p11_kit_modules_release(loaded);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    n = 0;
    for (size_t i = 0; loaded[i] != NULL; i++) {
        char *name = module_name(loaded[i]);
        if ((rv = p11_kit_module_initialize(loaded[i])) != CKR_OK) {
            verbose("module %s skipped: C_Initialize: %s", name, token_rv_text(rv));
            p11_kit_module_release(loaded[i]);
        } else {
            mods[n++] = loaded[i];
        }
        free(name);
    }
    free(loaded);               /* the array only; modules moved to mods */
    *out = mods;
    return 0;
}

/* ---- small helpers -------------------------------------------------------- */

/* Copy a blank-padded CK_UTF8CHAR field into a NUL-terminated string. */
static void
padded(char *dst, const CK_UTF8CHAR *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        dst[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = '?';
}

static char *
format_token_uri(const CK_TOKEN_INFO *info)
{
    P11KitUri *uri = p11_kit_uri_new();
    char *s = NULL;

    if (uri == NULL)
        return NULL;
    memcpy(p11_kit_uri_get_token_info(uri), info, sizeof(*info));
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_TOKEN, &s) != P11_KIT_URI_OK)
        s = NULL;
    p11_kit_uri_free(uri);
    return s;
}

/* Find up to `max` objects matching a template.  Returns the count or -1. */
static long
find_objects(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_ULONG count = 0;
    CK_RV rv;

    if ((rv = tok->fn->C_FindObjectsInit(tok->session, tmpl, n)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjectsInit: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    rv = tok->fn->C_FindObjects(tok->session, found, max, &count);
    tok->fn->C_FindObjectsFinal(tok->session);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjects: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    return (long)count;
}

/*
 * Read one variable-length attribute into a new buffer.  Returns 0, 1 when
 * the object does not have it (or it is sensitive), -1 after reporting.
 */
static int
get_attr(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    uint8_t **out, size_t *outlen)
{
    CK_ATTRIBUTE a = { type, NULL, 0 };
    CK_RV rv;

    *out = NULL;
    *outlen = 0;
    rv = tok->fn->C_GetAttributeValue(tok->session, obj, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return 1;
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_GetAttributeValue: %s", tok->label,
            token_rv_text(rv));
        return -1;
    }
    if (a.ulValueLen > 1 << 20) {
        err_runtime("E_TOKEN", "token %s: attribute 0x%lx is implausibly large (%lu bytes)",
            tok->label, type, a.ulValueLen);
        return -1;
    }
    if ((a.pValue = malloc(a.ulValueLen + 1)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rv = tok->fn->C_GetAttributeValue(tok->session, obj, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        err_runtime("E_TOKEN", "token %s: C_GetAttributeValue: %s", tok->label,
            token_rv_text(rv));
        return -1;
    }
    ((uint8_t *)a.pValue)[a.ulValueLen] = '\0';
    *out = a.pValue;
    *outlen = a.ulValueLen;
    return 0;
}

static bool
have_mechanism(struct token *tok, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info)
{
    CK_MECHANISM_INFO tmp;
    return tok->fn->C_GetMechanismInfo(tok->slot, mech, info ? info : &tmp) == CKR_OK;
}

/* ---- opening a token -------------------------------------------------------- */

const char *token_uri(const struct token *tok) { return tok->uri; }
const char *token_label(const struct token *tok) { return tok->label; }
const char *token_uri_object(const struct token *tok) { return tok->object; }

const uint8_t *
token_uri_id(const struct token *tok, size_t *len)
{
    *len = tok->idlen;
    return tok->id;
}

struct candidate {
    CK_FUNCTION_LIST *fn;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
};

/* One line per token for "no token matches" / "several tokens match". */
static void
list_candidates(char *buf, size_t cap, struct candidate *c, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++) {
        char label[33], serial[17];
        padded(label, c[i].info.label, sizeof(c[i].info.label));
        padded(serial, c[i].info.serialNumber, sizeof(c[i].info.serialNumber));
        off += (size_t)snprintf(buf + off, cap - off, "%s\"%s\" (serial %s)",
            i ? ", " : "", label, serial);
    }
    if (off >= cap && cap > 4)
        strcpy(buf + cap - 4, "...");
}

static int
collect_tokens(CK_FUNCTION_LIST **mods, P11KitUri *uri, struct candidate *all,
    size_t *nall, struct candidate *match, size_t *nmatch)
{
    *nall = *nmatch = 0;
    for (size_t m = 0; mods[m] != NULL; m++) {
        CK_INFO minfo;
        CK_SLOT_ID slots[64];
        CK_ULONG nslots = 64;
        bool module_ok;

        if (mods[m]->C_GetInfo(&minfo) != CKR_OK)
            continue;
        module_ok = uri == NULL || p11_kit_uri_match_module_info(uri, &minfo);
        if (mods[m]->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK)
            continue;
        for (CK_ULONG s = 0; s < nslots; s++) {
            CK_TOKEN_INFO tinfo;
            CK_SLOT_INFO sinfo;
            if (mods[m]->C_GetTokenInfo(slots[s], &tinfo) != CKR_OK ||
                mods[m]->C_GetSlotInfo(slots[s], &sinfo) != CKR_OK)
                continue;
            if (*nall < MAX_CANDIDATES)
                all[(*nall)++] = (struct candidate){ mods[m], slots[s], tinfo };
            if (module_ok && uri != NULL && p11_kit_uri_match_token_info(uri, &tinfo) &&
                p11_kit_uri_match_slot_info(uri, &sinfo) && *nmatch < MAX_CANDIDATES)
                match[(*nmatch)++] = (struct candidate){ mods[m], slots[s], tinfo };
        }
    }
    return 0;
}

static int token_login(struct token *tok, const struct token_opts *opts, P11KitUri *uri);

int
token_open(const struct token_opts *opts, struct token **out)
{
    struct token *tok = NULL;
    P11KitUri *uri = NULL;
    struct candidate all[MAX_CANDIDATES], match[MAX_CANDIDATES];
    size_t nall, nmatch;
    char list[1024];
    const char *module_path = opts->module_path;
    CK_ATTRIBUTE *a;
    CK_RV rv;
    int r;
    /* Messages name the URI, but never a PIN it may carry. */
    char *shown = uri_redact(opts->uri);

    *out = NULL;
    if (opts->uri == NULL || strncmp(opts->uri, "pkcs11:", 7) != 0) {
        err_input("E_URI", "token URI %s: not a pkcs11: URI", opts->uri ? shown : "(none)");
        free(shown);
        return -1;
    }
    if ((uri = p11_kit_uri_new()) == NULL || (tok = calloc(1, sizeof(*tok))) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    /*
     * Parse for object-on-token-and-module: a URI parsed for the token alone
     * never matches an object, and we also honour module-path/module-name.
     */
    if ((r = p11_kit_uri_parse(opts->uri, P11_KIT_URI_FOR_ANY, uri)) != P11_KIT_URI_OK) {
        err_input("E_URI", "token URI %s: %s", shown, p11_kit_uri_message(r));
        goto fail;
    }
    if (p11_kit_uri_any_unrecognized(uri)) {
        err_input("E_URI", "token URI %s: unrecognised attribute", shown);
        goto fail;
    }
    if (module_path == NULL)
        module_path = p11_kit_uri_get_module_path(uri);
    if (modules_load(module_path, &tok->modules) == -1)
        goto fail;
    collect_tokens(tok->modules, uri, all, &nall, match, &nmatch);
    if (nmatch != 1) {
        list_candidates(list, sizeof(list), nmatch ? match : all, nmatch ? nmatch : nall);
        if (nmatch == 0)
            err_runtime("E_NO_TOKEN", "no token matches %s; tokens present: %s", shown,
                nall ? list : "none");
        else
            err_runtime("E_AMBIGUOUS_TOKEN", "%zu tokens match %s: %s; add token= or serial=",
                nmatch, shown, list);
        goto fail;
    }
    tok->fn = match[0].fn;
    tok->slot = match[0].slot;
    tok->info = match[0].info;
    padded(tok->label, tok->info.label, sizeof(tok->info.label));
    padded(tok->serial, tok->info.serialNumber, sizeof(tok->info.serialNumber));
    {
        char manu[33], model[17];
        padded(manu, tok->info.manufacturerID, sizeof(tok->info.manufacturerID));
        padded(model, tok->info.model, sizeof(tok->info.model));
        tok->family = tokenfam_match(manu, model);
    }
    if ((tok->uri = format_token_uri(&tok->info)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    if (!(tok->info.flags & CKF_TOKEN_INITIALIZED)) {
        err_runtime("E_TOKEN", "token %s is not initialised", tok->label);
        goto fail;
    }
    if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL &&
        (tok->object = strndup(a->pValue, a->ulValueLen)) == NULL)
        goto fail;
    if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)) != NULL && a->ulValueLen > 0) {
        if ((tok->id = malloc(a->ulValueLen)) == NULL)
            goto fail;
        memcpy(tok->id, a->pValue, a->ulValueLen);
        tok->idlen = a->ulValueLen;
    }
    rv = tok->fn->C_OpenSession(tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
        &tok->session);
    if (rv == CKR_TOKEN_WRITE_PROTECTED)
        rv = tok->fn->C_OpenSession(tok->slot, CKF_SERIAL_SESSION, NULL, NULL, &tok->session);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_OpenSession: %s", tok->label, token_rv_text(rv));
        goto fail;
    }
    tok->have_session = true;
    if (opts->login && token_login(tok, opts, uri) == -1)
        goto fail;
    p11_kit_uri_free(uri);
    free(shown);
    *out = tok;
    return 0;
fail:
    p11_kit_uri_free(uri);
    free(shown);
    token_close(tok);
    return -1;
}

int
token_matches_uri(const struct token *tok, const char *s, char **object)
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_ATTRIBUTE *a;
    int r, rc = -1;

    *object = NULL;
    if (uri == NULL)
        return -1;
    if (strncmp(s, "pkcs11:", 7) != 0 ||
        (r = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri)) != P11_KIT_URI_OK) {
        char *shown = uri_redact(s);
        err_input("E_URI", "%s: not a valid PKCS#11 URI", shown);
        free(shown);
        goto out;
    }
    if (!p11_kit_uri_match_token_info(uri, &tok->info)) {
        rc = 0;
        goto out;
    }
    if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)) != NULL &&
        (*object = strndup(a->pValue, a->ulValueLen)) == NULL)
        goto out;
    rc = 1;
out:
    p11_kit_uri_free(uri);
    return rc;
}

void
token_close(struct token *tok)
{
    if (tok == NULL)
        return;
    if (tok->logged_in)
        tok->fn->C_Logout(tok->session);
    if (tok->have_session)
        tok->fn->C_CloseSession(tok->session);
    modules_free(tok->modules);
    pin_free(tok->pin);
    free(tok->uri);
    free(tok->object);
    free(tok->id);
    free(tok);
}

/* ---- login ---------------------------------------------------------------- */

/* The PIN sources of cli.md, first found wins.  1: use the PIN pad. */
static int
find_pin(struct token *tok, const struct token_opts *opts, P11KitUri *uri, struct pin **out)
{
    const char *v;
    char prompt[96];
    int r;

    *out = NULL;
    if ((v = p11_kit_uri_get_pin_source(uri)) != NULL)
        return pin_from_file(v, "URI pin-source", out);
    if ((v = p11_kit_uri_get_pin_value(uri)) != NULL)
        return pin_from_value(v, "URI pin-value", out);
    if (opts->pin_file != NULL)
        return pin_from_file(opts->pin_file, "PIN file", out);
    if ((v = getenv("P11ENROLL_PIN")) != NULL)
        return pin_from_value(v, "P11ENROLL_PIN", out);
    snprintf(prompt, sizeof(prompt), "PIN for token %s: ", tok->label);
    if ((r = pin_prompt(prompt, out)) != 1)
        return r;
    if (tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
        return 1;
    err_input("E_NO_PIN", "token %s needs a PIN: give --pin-file, P11ENROLL_PIN, "
        "pin-source= in the URI, or run on a terminal", tok->label);
    return -1;
}

int
token_login_precheck(unsigned long flags, bool allow_final_try, const char *label)
{
    if (flags & CKF_USER_PIN_LOCKED) {
        err_runtime("E_PIN_LOCKED", "token %s: the user PIN is locked; unlock it with the SO PIN",
            label);
        return -1;
    }
    if ((flags & CKF_USER_PIN_FINAL_TRY) && !allow_final_try) {
        err_runtime("E_PIN_FINAL_TRY", "token %s: one PIN attempt left before the token locks; "
            "refusing to try (use --allow-final-pin-try if the PIN is certainly right)", label);
        return -1;
    }
    if (flags & CKF_USER_PIN_COUNT_LOW)
        warnmsg("token %s: a wrong PIN was entered recently; the token may lock soon", label);
    return 0;
}

static int
token_login(struct token *tok, const struct token_opts *opts, P11KitUri *uri)
{
    struct pin *pin = NULL;
    CK_RV rv;
    int r;

    /* Fresh flags: the counters may have changed since enumeration. */
    if ((rv = tok->fn->C_GetTokenInfo(tok->slot, &tok->info)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_GetTokenInfo: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    if (!(tok->info.flags & CKF_LOGIN_REQUIRED))
        return 0;
    if (token_login_precheck(tok->info.flags, opts->allow_final_try, tok->label) == -1)
        return -1;
    if ((r = find_pin(tok, opts, uri, &pin)) == -1)
        return -1;
    if (r == 1)
        progress("enter the PIN on the PIN pad of token %s", tok->label);
    rv = tok->fn->C_Login(tok->session, CKU_USER, pin ? (CK_UTF8CHAR *)pin->value : NULL,
        pin ? pin->len : 0);
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK;
    if (rv != CKR_OK) {
        /* Never retried: a token locks after a few wrong PINs. */
        if (rv == CKR_PIN_INCORRECT)
            err_runtime("E_PIN_INCORRECT", "token %s: PIN incorrect (from %s); not retried",
                tok->label, pin ? pin->source : "PIN pad");
        else if (rv == CKR_PIN_LOCKED)
            err_runtime("E_PIN_LOCKED", "token %s: PIN locked; unlock it with the SO PIN",
                tok->label);
        else if (rv == CKR_PIN_EXPIRED)
            err_runtime("E_PIN_EXPIRED", "token %s: PIN expired; set a new one first",
                tok->label);
        else if (rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID)
            err_runtime("E_PIN_INCORRECT", "token %s: PIN rejected (from %s): %s", tok->label,
                pin ? pin->source : "PIN pad", token_rv_text(rv));
        else
            err_runtime("E_LOGIN", "token %s: C_Login: %s", tok->label, token_rv_text(rv));
        pin_free(pin);
        return -1;
    }
    tok->logged_in = true;
    tok->pin = pin;
    return 0;
}

/* ---- public keys ---------------------------------------------------------- */

/* The curve OID in CKA_EC_PARAMS -> OpenSSL NID (or NID_ED25519). */
static int
ec_params_nid(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    ASN1_OBJECT *obj;
    int nid = NID_undef;

    /* PKCS#11 3.0 also allows a PrintableString curve name for Edwards keys. */
    if (len >= 2 && der[0] == 0x13) {
        if (len == 2 + 12 && memcmp(der + 2, "edwards25519", 12) == 0)
            return NID_ED25519;
        return NID_undef;
    }
    if ((obj = d2i_ASN1_OBJECT(NULL, &p, (long)len)) != NULL) {
        nid = OBJ_obj2nid(obj);
        ASN1_OBJECT_free(obj);
    }
    return nid;
}

/*
 * The point from CKA_EC_POINT: PKCS#11 says a DER OCTET STRING, some tokens
 * return the raw point.  `rawlen` is the expected raw length.
 */
static int
ec_point(const uint8_t *v, size_t len, size_t rawlen, const uint8_t **pt)
{
    if (len == rawlen) {
        *pt = v;
        return 0;
    }
    if (rawlen < 128 && len == rawlen + 2 && v[0] == 0x04 && v[1] == rawlen) {
        *pt = v + 2;
        return 0;
    }
    if (rawlen >= 128 && rawlen < 256 && len == rawlen + 3 && v[0] == 0x04 && v[1] == 0x81 &&
        v[2] == rawlen) {
        *pt = v + 3;
        return 0;
    }
    return -1;
}

static EVP_PKEY *
pkey_from_params(const char *alg, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *pkey = NULL;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* Build the EVP_PKEY from the public key object's attributes. */
static int
load_public(struct token *tok, struct token_key *key, CK_KEY_TYPE kt)
{
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = NULL, *e = NULL;
    int rc = -1;

    if (bld == NULL)
        goto out;
    if (kt == CKK_RSA) {
        if (get_attr(tok, key->pub, CKA_MODULUS, &a, &alen) != 0 ||
            get_attr(tok, key->pub, CKA_PUBLIC_EXPONENT, &b, &blen) != 0)
            goto bad;
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            (key->pkey = pkey_from_params("RSA", bld)) == NULL)
            goto bad;
        unsigned bits = (unsigned)EVP_PKEY_get_bits(key->pkey);
        key->type = keytype_lookup(KEY_RSA, bits);
        snprintf(key->type_name, sizeof(key->type_name), "rsa:%u", bits);
    } else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
        const uint8_t *pt;
        int nid;
        if (get_attr(tok, key->pub, CKA_EC_PARAMS, &a, &alen) != 0 ||
            get_attr(tok, key->pub, CKA_EC_POINT, &b, &blen) != 0)
            goto bad;
        nid = ec_params_nid(a, alen);
        if (kt == CKK_EC_EDWARDS || nid == NID_ED25519) {
            if (nid != NID_ED25519 || ec_point(b, blen, 32, &pt) == -1 ||
                (key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, 32)) == NULL)
                goto bad;
            key->type = keytype_parse("ed25519");
            snprintf(key->type_name, sizeof(key->type_name), "ed25519");
        } else {
            const char *group = OBJ_nid2sn(nid);
            EC_GROUP *g = nid != NID_undef ? EC_GROUP_new_by_curve_name(nid) : NULL;
            size_t fieldbytes = g ? ((size_t)EC_GROUP_get_degree(g) + 7) / 8 : 0;
            EC_GROUP_free(g);
            if (fieldbytes == 0 || ec_point(b, blen, 2 * fieldbytes + 1, &pt) == -1 ||
                !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
                !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
                    2 * fieldbytes + 1) ||
                (key->pkey = pkey_from_params("EC", bld)) == NULL)
                goto bad;
            unsigned bits = (unsigned)EVP_PKEY_get_bits(key->pkey);
            key->type = keytype_lookup(KEY_EC, bits);
            if (key->type != NULL && strcmp(key->type->curve, group) != 0)
                key->type = NULL;
            snprintf(key->type_name, sizeof(key->type_name), "ec:%s",
                key->type ? key->type->name + 3 : group);
        }
    } else {
        snprintf(key->type_name, sizeof(key->type_name), "keytype-0x%lx", kt);
        err_runtime("E_KEY_TYPE", "key %s: key type 0x%lx is not supported", key->label, kt);
        goto out;
    }
    rc = 0;
    goto out;
bad:
    err_runtime("E_KEY", "key %s on token %s: the public key object is malformed or unsupported",
        key->label, tok->label);
out:
    free(a);
    free(b);
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

static int
finish_key(struct token *tok, struct token_key *key)
{
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int len;
    P11KitUri *uri;
    CK_ATTRIBUTE attrs[2];
    CK_TOKEN_INFO *ti;
    char *hex;

    if ((len = i2d_PUBKEY(key->pkey, &der)) <= 0) {
        err_runtime("E_KEY", "key %s: cannot encode its public key", key->label);
        return -1;
    }
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    if ((hex = hex_encode(md, sizeof(md))) == NULL)
        return -1;
    memcpy(key->spki_sha256, hex, 65);
    free(hex);

    if ((uri = p11_kit_uri_new()) == NULL)
        return -1;
    ti = p11_kit_uri_get_token_info(uri);
    memcpy(ti->label, tok->info.label, sizeof(ti->label));
    memcpy(ti->serialNumber, tok->info.serialNumber, sizeof(ti->serialNumber));
    attrs[0] = (CK_ATTRIBUTE){ CKA_ID, key->id, key->idlen };
    attrs[1] = (CK_ATTRIBUTE){ CKA_LABEL, key->label, strlen(key->label) };
    p11_kit_uri_set_attributes(uri, attrs, 2);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE ca = { CKA_CLASS, &cls, sizeof(cls) };
    p11_kit_uri_set_attribute(uri, &ca);
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &key->uri) != P11_KIT_URI_OK)
        key->uri = NULL;
    p11_kit_uri_free(uri);
    return key->uri != NULL ? 0 : -1;
}

/* Complete a key from its private key handle: attributes, public key, URI. */
static int
load_key(struct token *tok, CK_OBJECT_HANDLE priv, struct token_key **out)
{
    struct token_key *key = calloc(1, sizeof(*key));
    CK_OBJECT_CLASS pubcls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = 0;
    CK_BBOOL always = CK_FALSE;
    CK_ATTRIBUTE small[2] = {
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always) },
    };
    CK_OBJECT_HANDLE found[2];
    long n;
    CK_RV rv;

    *out = NULL;
    if (key == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    key->priv = priv;
    if (get_attr(tok, priv, CKA_ID, &key->id, &key->idlen) == -1)
        goto fail;
    if (get_attr(tok, priv, CKA_LABEL, (uint8_t **)&key->label, &(size_t){ 0 }) == -1)
        goto fail;
    if (key->label == NULL && (key->label = strdup("")) == NULL)
        goto fail;
    rv = tok->fn->C_GetAttributeValue(tok->session, priv, small, 2);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        err_runtime("E_TOKEN", "key %s: C_GetAttributeValue: %s", key->label, token_rv_text(rv));
        goto fail;
    }
    if (small[0].ulValueLen != sizeof(kt)) {
        err_runtime("E_KEY", "key %s on token %s does not report its key type", key->label,
            tok->label);
        goto fail;
    }
    key->always_auth = small[1].ulValueLen == sizeof(always) && always == CK_TRUE;
    if (key->id == NULL || key->idlen == 0) {
        err_runtime("E_KEY", "key %s on token %s has no CKA_ID; cannot pair it with its public key",
            key->label, tok->label);
        goto fail;
    }
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &pubcls, sizeof(pubcls) },
        { CKA_ID, key->id, key->idlen },
    };
    if ((n = find_objects(tok, tmpl, 2, found, 2)) == -1)
        goto fail;
    if (n == 0) {
        err_runtime("E_KEY", "key %s on token %s has no public key object with the same CKA_ID",
            key->label, tok->label);
        goto fail;
    }
    if (n > 1) {
        err_runtime("E_KEY", "key %s on token %s: several public key objects share its CKA_ID",
            key->label, tok->label);
        goto fail;
    }
    key->pub = found[0];
    if (load_public(tok, key, kt) == -1 || finish_key(tok, key) == -1)
        goto fail;
    *out = key;
    return 0;
fail:
    token_key_free(key);
    return -1;
}

int
token_find_key(struct token *tok, const char *label, const uint8_t *id, size_t idlen,
    struct token_key **out)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) } };
    CK_OBJECT_HANDLE found[2];
    long n;

    *out = NULL;
    if (label != NULL)
        tmpl[1] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
    else
        tmpl[1] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, idlen };
    if ((n = find_objects(tok, tmpl, 2, found, 2)) == -1)
        return -1;
    if (n == 0)
        return 1;
    if (n > 1) {
        err_runtime("E_AMBIGUOUS_KEY", "several private keys on token %s have %s %s; "
            "select one by id=", tok->label, label ? "label" : "the id",
            label ? label : "given");
        return -1;
    }
    return load_key(tok, found[0], out);
}

/* Public key objects holding this value; up to `max` handles. */
static long
find_public_by_value(struct token *tok, EVP_PKEY *pub, CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) } };
    uint8_t *raw = NULL, wrapped[3 + 256];
    size_t rawlen = 0;
    BIGNUM *n = NULL;
    long count = 0;

    switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_RSA:
        if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n))
            return 0;
        rawlen = (size_t)BN_num_bytes(n);
        if ((raw = malloc(rawlen)) == NULL) {
            BN_free(n);
            return -1;
        }
        BN_bn2bin(n, raw);
        BN_free(n);
        tmpl[1] = (CK_ATTRIBUTE){ CKA_MODULUS, raw, rawlen };
        count = find_objects(tok, tmpl, 2, found, max);
        break;
    case EVP_PKEY_EC:
    case EVP_PKEY_ED25519:
        if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
            rawlen = EVP_PKEY_get1_encoded_public_key(pub, &raw);
        } else {
            raw = malloc(32);
            rawlen = 32;
            if (raw == NULL || !EVP_PKEY_get_raw_public_key(pub, raw, &rawlen))
                rawlen = 0;
        }
        if (rawlen == 0 || rawlen > 255) {
            OPENSSL_free(raw);
            return 0;
        }
        /* DER OCTET STRING as PKCS#11 specifies, then the raw point some tokens keep. */
        size_t hdr = rawlen < 128 ? 2 : 3;
        wrapped[0] = 0x04;
        if (hdr == 2) {
            wrapped[1] = (uint8_t)rawlen;
        } else {
            wrapped[1] = 0x81;
            wrapped[2] = (uint8_t)rawlen;
        }
        memcpy(wrapped + hdr, raw, rawlen);
        tmpl[1] = (CK_ATTRIBUTE){ CKA_EC_POINT, wrapped, hdr + rawlen };
        count = find_objects(tok, tmpl, 2, found, max);
        if (count == 0) {
            tmpl[1] = (CK_ATTRIBUTE){ CKA_EC_POINT, raw, rawlen };
            count = find_objects(tok, tmpl, 2, found, max);
        }
        break;
    default:
        break;
    }
    OPENSSL_free(raw);
    return count;
}

int
token_find_key_by_public(struct token *tok, EVP_PKEY *pub, struct token_key **out)
{
    CK_OBJECT_HANDLE pubs[4];
    long n;

    *out = NULL;
    if (pub == NULL)
        return 1;
    if ((n = find_public_by_value(tok, pub, pubs, 4)) == -1)
        return -1;
    for (long i = 0; i < n; i++) {
        uint8_t *id;
        size_t idlen;
        struct token_key *key;
        int r;
        if (get_attr(tok, pubs[i], CKA_ID, &id, &idlen) != 0 || idlen == 0) {
            free(id);
            continue;
        }
        r = token_find_key(tok, NULL, id, idlen, &key);
        free(id);
        if (r == -1)
            return -1;
        if (r == 0 && EVP_PKEY_eq(key->pkey, pub) == 1) {
            *out = key;
            return 0;
        }
        token_key_free(key);
    }
    return 1;
}

void
token_key_free(struct token_key *key)
{
    if (key == NULL)
        return;
    free(key->id);
    free(key->label);
    EVP_PKEY_free(key->pkey);
    free(key->uri);
    free(key);
}

const struct keytype *token_key_type(const struct token_key *key) { return key->type; }
const char *token_key_type_name(const struct token_key *key) { return key->type_name; }
const char *token_key_label(const struct token_key *key) { return key->label; }
EVP_PKEY *token_key_public(const struct token_key *key) { return key->pkey; }
const char *token_key_uri(const struct token_key *key) { return key->uri; }
const char *token_key_spki_sha256(const struct token_key *key) { return key->spki_sha256; }

const uint8_t *
token_key_id(const struct token_key *key, size_t *len)
{
    *len = key->idlen;
    return key->id;
}

int
token_key_flags(struct token *tok, const struct token_key *key, struct token_key_flags *out)
{
    CK_BBOOL v[5] = { 0 };
    CK_ATTRIBUTE a[5] = {
        { CKA_SENSITIVE, &v[0], 1 }, { CKA_ALWAYS_SENSITIVE, &v[1], 1 },
        { CKA_EXTRACTABLE, &v[2], 1 }, { CKA_NEVER_EXTRACTABLE, &v[3], 1 },
        { CKA_LOCAL, &v[4], 1 },
    };
    CK_RV rv = tok->fn->C_GetAttributeValue(tok->session, key->priv, a, 5);

    memset(out, 0, sizeof(*out));
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        err_runtime("E_TOKEN", "key %s: C_GetAttributeValue: %s", key->label, token_rv_text(rv));
        return -1;
    }
    /* An attribute the token does not report counts as the unsafe value. */
    out->sensitive = a[0].ulValueLen == 1 && v[0];
    out->always_sensitive = a[1].ulValueLen == 1 && v[1];
    out->extractable = a[2].ulValueLen != 1 || v[2];
    out->never_extractable = a[3].ulValueLen == 1 && v[3];
    out->local = a[4].ulValueLen == 1 && v[4];
    return 0;
}

/* ---- key generation --------------------------------------------------------- */

/* DER OIDs for CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

/* Is an object (any class) with this attribute already on the token? */
static int
taken(struct token *tok, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
    CK_ATTRIBUTE tmpl = { type, (void *)v, len };
    CK_OBJECT_HANDLE h;
    long n = find_objects(tok, &tmpl, 1, &h, 1);
    return n < 0 ? -1 : n > 0;
}

static void
destroy_pair(struct token *tok, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    CK_RV rv1 = tok->fn->C_DestroyObject(tok->session, priv);
    CK_RV rv2 = tok->fn->C_DestroyObject(tok->session, pub);
    if (rv1 != CKR_OK || rv2 != CKR_OK)
        warnmsg("token %s: could not destroy the rejected key pair: %s", tok->label,
            token_rv_text(rv1 != CKR_OK ? rv1 : rv2));
}

int
token_keygen(struct token *tok, const struct keytype *type, const char *label,
    const uint8_t *id, size_t idlen, struct token_key **out)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS pubcls = CKO_PUBLIC_KEY, privcls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt;
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_MECHANISM_INFO mi;
    CK_ULONG bits = type->bits;
    CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
    uint8_t rid[16];
    const uint8_t *params = NULL;
    size_t paramslen = 0;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_RV rv;
    int r;

    *out = NULL;
    switch (type->alg) {
    case KEY_RSA:
        kt = CKK_RSA;
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        break;
    case KEY_EC:
        kt = CKK_EC;
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        params = bits == 256 ? oid_p256 : bits == 384 ? oid_p384 : oid_p521;
        paramslen = bits == 256 ? sizeof(oid_p256) : bits == 384 ? sizeof(oid_p384)
                                                                 : sizeof(oid_p521);
        break;
    case KEY_ED25519:
    default:
        kt = CKK_EC_EDWARDS;
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        params = oid_ed25519;
        paramslen = sizeof(oid_ed25519);
        break;
    }
    /* Refuse before trying: "this token cannot generate ec:p521". */
    if (!have_mechanism(tok, mech.mechanism, &mi) || !(mi.flags & CKF_GENERATE_KEY_PAIR) ||
        (type->alg != KEY_ED25519 && mi.ulMaxKeySize != 0 &&
            (bits < mi.ulMinKeySize || bits > mi.ulMaxKeySize))) {
        err_runtime("E_UNSUPPORTED", "token %s cannot generate %s", tok->label, type->name);
        return -1;
    }
    if (label == NULL || *label == '\0') {
        err_input("E_LABEL", "a key needs a non-empty label");
        return -1;
    }
    if ((r = taken(tok, CKA_LABEL, label, strlen(label))) != 0) {
        if (r > 0)
            err_runtime("E_LABEL_TAKEN", "token %s already has an object labelled %s",
                tok->label, label);
        return -1;
    }
    if (id == NULL) {
        if (RAND_bytes(rid, sizeof(rid)) != 1) {
            err_runtime("E_RANDOM", "no random bytes for the key id");
            return -1;
        }
        id = rid;
        idlen = sizeof(rid);
    }
    if ((r = taken(tok, CKA_ID, id, idlen)) != 0) {
        if (r > 0) {
            char *hex = hex_encode(id, idlen);
            err_runtime("E_ID_TAKEN", "token %s already has an object with id %s", tok->label,
                hex ? hex : "?");
            free(hex);
        }
        return -1;
    }

    CK_ATTRIBUTE pubt[11] = {
        { CKA_CLASS, &pubcls, sizeof(pubcls) },
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_TOKEN, &yes, 1 },
        { CKA_PRIVATE, &no, 1 },
        { CKA_VERIFY, &yes, 1 },
        { CKA_ENCRYPT, &no, 1 },
        { CKA_WRAP, &no, 1 },
        { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_ID, (void *)id, idlen },
    };
    CK_ULONG npub = 9;
    if (type->alg == KEY_RSA) {
        pubt[npub++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
        pubt[npub++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent) };
    } else {
        pubt[npub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)params, paramslen };
    }
    CK_ATTRIBUTE privt[] = {
        { CKA_CLASS, &privcls, sizeof(privcls) },
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_TOKEN, &yes, 1 },
        { CKA_PRIVATE, &yes, 1 },
        { CKA_SENSITIVE, &yes, 1 },
        { CKA_EXTRACTABLE, &no, 1 },
        { CKA_SIGN, &yes, 1 },
        { CKA_DECRYPT, &no, 1 },
        { CKA_UNWRAP, &no, 1 },
        { CKA_DERIVE, &no, 1 },
        { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_ID, (void *)id, idlen },
    };
    progress("generating %s key %s on token %s", type->name, label, tok->label);
    rv = tok->fn->C_GenerateKeyPair(tok->session, &mech, pubt, npub, privt,
        sizeof(privt) / sizeof(privt[0]), &pub, &priv);
    if (rv != CKR_OK) {
        err_runtime("E_KEYGEN", "token %s: generating %s failed: %s", tok->label, type->name,
            token_rv_text(rv));
        return -1;
    }

    /* Trust, but verify: read back what the token actually did. */
    struct token_key_flags f;
    struct token_key probe = { .priv = priv, .label = (char *)label };
    if (token_key_flags(tok, &probe, &f) == -1 || !f.sensitive || f.extractable ||
        !f.always_sensitive || !f.never_extractable || !f.local) {
        destroy_pair(tok, priv, pub);
        err_clear();
        err_runtime("E_KEY_UNSAFE", "token %s did not honour the key's protection (sensitive %d, "
            "extractable %d, always sensitive %d, never extractable %d, local %d); "
            "the new pair was destroyed", tok->label, f.sensitive, f.extractable,
            f.always_sensitive, f.never_extractable, f.local);
        return -1;
    }
    if (load_key(tok, priv, out) == -1) {
        destroy_pair(tok, priv, pub);
        return -1;
    }
    if ((*out)->type != type) {
        err_runtime("E_KEYGEN", "token %s generated a %s key instead of %s; destroyed",
            tok->label, (*out)->type_name, type->name);
        token_key_free(*out);
        *out = NULL;
        destroy_pair(tok, priv, pub);
        return -1;
    }
    return 0;
}

/* ---- signing ---------------------------------------------------------------- */

static const EVP_MD *
digest_md(const char *digest)
{
    if (digest == NULL || strcmp(digest, "sha256") == 0)
        return EVP_sha256();
    if (strcmp(digest, "sha384") == 0)
        return EVP_sha384();
    if (strcmp(digest, "sha512") == 0)
        return EVP_sha512();
    return NULL;
}

/* DER DigestInfo prefixes (RFC 8017 §9.2 note 1). */
static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

int
token_sign(struct token *tok, const struct token_key *key, const char *digest,
    const uint8_t *data, size_t len, uint8_t **sig, size_t *siglen)
{
    const EVP_MD *md = digest_md(digest);
    uint8_t buf[19 + EVP_MAX_MD_SIZE];
    const uint8_t *in = data;
    size_t inlen = len, expect;
    unsigned mdlen;
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_ULONG outlen = 0;
    uint8_t *out = NULL;
    CK_RV rv;

    *sig = NULL;
    *siglen = 0;
    if (md == NULL) {
        err_input("E_DIGEST", "digest %s is not supported (sha256, sha384, sha512)", digest);
        return -1;
    }
    switch (EVP_PKEY_get_base_id(key->pkey)) {
    case EVP_PKEY_RSA: {
        CK_MECHANISM_TYPE combined = md == EVP_sha256() ? CKM_SHA256_RSA_PKCS
            : md == EVP_sha384() ? CKM_SHA384_RSA_PKCS : CKM_SHA512_RSA_PKCS;
        expect = (size_t)EVP_PKEY_get_size(key->pkey);
        if (have_mechanism(tok, combined, NULL)) {
            mech.mechanism = combined;
        } else {
            /* Hash on the host and let the token pad and sign the DigestInfo. */
            const uint8_t *prefix = md == EVP_sha256() ? di_sha256
                : md == EVP_sha384() ? di_sha384 : di_sha512;
            memcpy(buf, prefix, 19);
            if (!EVP_Digest(data, len, buf + 19, &mdlen, md, NULL))
                goto crypto;
            in = buf;
            inlen = 19 + mdlen;
            mech.mechanism = CKM_RSA_PKCS;
        }
        break;
    }
    case EVP_PKEY_EC:
        expect = 2 * (((size_t)EVP_PKEY_get_bits(key->pkey) + 7) / 8);
        if (!EVP_Digest(data, len, buf, &mdlen, md, NULL))
            goto crypto;
        in = buf;
        inlen = mdlen;
        mech.mechanism = CKM_ECDSA;
        break;
    case EVP_PKEY_ED25519:
        expect = 64;
        mech.mechanism = CKM_EDDSA;
        break;
    default:
        err_runtime("E_KEY_TYPE", "key %s: cannot sign with a %s key", key->label,
            key->type_name);
        return -1;
    }
    if ((rv = tok->fn->C_SignInit(tok->session, &mech, key->priv)) != CKR_OK)
        goto pkcs11;
    if (key->always_auth) {
        /* A key that wants the PIN again for every signature (PIV 9c). */
        rv = tok->fn->C_Login(tok->session, CKU_CONTEXT_SPECIFIC,
            tok->pin ? (CK_UTF8CHAR *)tok->pin->value : NULL, tok->pin ? tok->pin->len : 0);
        if (rv != CKR_OK) {
            /* End the signing operation (a failed C_Sign does), or the session stays busy. */
            CK_BYTE scratch[1024];
            CK_ULONG slen = sizeof(scratch);
            (void)tok->fn->C_Sign(tok->session, (CK_BYTE *)in, inlen, scratch, &slen);
            goto pkcs11;
        }
    }
    /* Room for the largest signature this key can make, plus slack. */
    outlen = expect + 16;
    if ((out = malloc(outlen)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rv = tok->fn->C_Sign(tok->session, (CK_BYTE *)in, inlen, out, &outlen);
    if (rv != CKR_OK)
        goto pkcs11;
    if (outlen != expect) {
        free(out);
        err_runtime("E_SIGN", "key %s: the token returned a %lu-byte signature, expected %zu",
            key->label, outlen, expect);
        return -1;
    }
    wipe(buf, sizeof(buf));
    *sig = out;
    *siglen = outlen;
    return 0;
pkcs11:
    free(out);
    err_runtime("E_SIGN", "key %s on token %s: signing failed: %s", key->label, tok->label,
        token_rv_text(rv));
    return -1;
crypto:
    err_runtime("E_CRYPTO", "hashing failed");
    return -1;
}

/* ---- certificates ------------------------------------------------------------ */

/* Certificates stored with the key's CKA_ID, up to `max`.  -1 after reporting. */
static long
key_certs(struct token *tok, const struct token_key *key, CK_OBJECT_HANDLE *found, CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE find[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_ID, key->id, key->idlen },
    };
    return find_objects(tok, find, 2, found, max);
}

/* The certificate in a CKO_CERTIFICATE object, or NULL when it cannot be read. */
static X509 *
read_cert(struct token *tok, CK_OBJECT_HANDLE obj)
{
    uint8_t *der;
    size_t len;
    const unsigned char *p;
    X509 *x;

    if (get_attr(tok, obj, CKA_VALUE, &der, &len) != 0)
        return NULL;
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    free(der);
    return x;
}

int
token_find_cert(struct token *tok, const struct token_key *key, X509 **out)
{
    CK_OBJECT_HANDLE found[4];
    X509 *best = NULL;
    long n;

    *out = NULL;
    if ((n = key_certs(tok, key, found, 4)) == -1)
        return -1;
    /* Several certificates for one key: the one that expires last. */
    for (long i = 0; i < n; i++) {
        X509 *x = read_cert(tok, found[i]);
        if (x == NULL)
            continue;
        if (best == NULL || ASN1_TIME_compare(X509_get0_notAfter(x),
                                X509_get0_notAfter(best)) > 0) {
            X509_free(best);
            best = x;
        } else {
            X509_free(x);
        }
    }
    if (best == NULL)
        return 1;
    *out = best;
    return 0;
}

/* Does the certificate object hold exactly this DER? */
static bool
cert_is(struct token *tok, CK_OBJECT_HANDLE obj, const unsigned char *der, size_t len)
{
    uint8_t *v;
    size_t vlen;
    bool same;

    if (get_attr(tok, obj, CKA_VALUE, &v, &vlen) != 0)
        return false;
    same = vlen == len && memcmp(v, der, len) == 0;
    free(v);
    return same;
}

int
token_store_cert(struct token *tok, const struct token_key *key, X509 *cert)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char *value = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
    int lv, ls, li, lsn;
    CK_OBJECT_HANDLE old[8], created;
    long nold;
    CK_RV rv;
    int rc = -1;

    lv = i2d_X509(cert, &value);
    ls = i2d_X509_NAME(X509_get_subject_name(cert), &subject);
    li = i2d_X509_NAME(X509_get_issuer_name(cert), &issuer);
    lsn = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &serial);
    if (lv <= 0 || ls <= 0 || li <= 0 || lsn <= 0) {
        err_runtime("E_CERT", "cannot encode the certificate");
        goto out;
    }
    if ((nold = key_certs(tok, key, old, 8)) == -1)
        goto out;
    for (long i = 0; i < nold; i++)
        if (cert_is(tok, old[i], value, (size_t)lv)) {
            verbose("certificate already stored with key %s", key->label);
            rc = 1;
            goto out;
        }
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
        { CKA_TOKEN, &yes, 1 },
        { CKA_PRIVATE, &no, 1 },
        { CKA_ID, key->id, key->idlen },
        { CKA_LABEL, key->label, strlen(key->label) },
        { CKA_SUBJECT, subject, (CK_ULONG)ls },
        { CKA_ISSUER, issuer, (CK_ULONG)li },
        { CKA_SERIAL_NUMBER, serial, (CK_ULONG)lsn },
        { CKA_VALUE, value, (CK_ULONG)lv },
    };
    rv = tok->fn->C_CreateObject(tok->session, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &created);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: storing the certificate failed: %s", tok->label,
            token_rv_text(rv));
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(value);
    OPENSSL_free(subject);
    OPENSSL_free(issuer);
    OPENSSL_free(serial);
    return rc;
}

/*
 * Destroy the key's certificates that are (`match`) or are not (!`match`)
 * `cert`: pruning the previous ones after a switch, or rolling back.
 */
static int
drop_certs(struct token *tok, const struct token_key *key, X509 *cert, bool match)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der), rc = 0;
    CK_OBJECT_HANDLE objs[8];
    long n;
    CK_RV rv;

    if (len <= 0 || (n = key_certs(tok, key, objs, 8)) == -1) {
        OPENSSL_free(der);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        if (cert_is(tok, objs[i], der, (size_t)len) != match)
            continue;
        if ((rv = tok->fn->C_DestroyObject(tok->session, objs[i])) != CKR_OK) {
            warnmsg("token %s: could not remove a certificate of %s: %s", tok->label,
                key->label, token_rv_text(rv));
            rc = -1;
        }
    }
    OPENSSL_free(der);
    return rc;
}

int
token_prune_certs(struct token *tok, const struct token_key *key, X509 *keep)
{
    return drop_certs(tok, key, keep, false);
}

int
token_remove_cert(struct token *tok, const struct token_key *key, X509 *cert)
{
    return drop_certs(tok, key, cert, true);
}

/* ---- destroy, relabel, enumerate keys ---------------------------------------- */

/*
 * The key's own certificates: those with its CKA_ID whose public key is the
 * key's.  Another object that merely shares the id (a CA certificate given
 * id 01 by hand) is not the key's and is never touched.
 */
static long
own_certs(struct token *tok, const struct token_key *key, CK_OBJECT_HANDLE *own, CK_ULONG max)
{
    CK_OBJECT_HANDLE all[16];
    long n = key_certs(tok, key, all, 16), k = 0;

    if (n == -1)
        return -1;
    for (long i = 0; i < n && (CK_ULONG)k < max; i++) {
        X509 *x = read_cert(tok, all[i]);
        if (x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), key->pkey) == 1)
            own[k++] = all[i];
        X509_free(x);
    }
    ERR_clear_error();
    return k;
}

int
token_destroy_key(struct token *tok, struct token_key *key)
{
    CK_OBJECT_HANDLE certs[8];
    long n = own_certs(tok, key, certs, 8);
    CK_RV rv;

    if (n == -1)
        return -1;
    for (long i = 0; i < n; i++)
        if ((rv = tok->fn->C_DestroyObject(tok->session, certs[i])) != CKR_OK)
            goto fail;
    /* Private key last: while it exists the pair can still be found and retried. */
    if ((rv = tok->fn->C_DestroyObject(tok->session, key->pub)) != CKR_OK ||
        (rv = tok->fn->C_DestroyObject(tok->session, key->priv)) != CKR_OK)
        goto fail;
    return (int)n + 2;
fail:
    err_runtime("E_TOKEN", "token %s: destroying key %s: %s", tok->label, key->label,
        token_rv_text(rv));
    return -1;
}

int
token_relabel_key(struct token *tok, struct token_key *key, const char *label)
{
    CK_ATTRIBUTE la = { CKA_LABEL, (void *)label, strlen(label) };
    CK_ATTRIBUTE back = { CKA_LABEL, key->label, strlen(key->label) };
    CK_OBJECT_HANDLE objs[10];
    long n = own_certs(tok, key, objs + 2, 8);
    char *copy;
    CK_RV rv;

    if (n == -1)
        return -1;
    objs[0] = key->pub;
    objs[1] = key->priv;
    for (long i = 0; i < n + 2; i++) {
        if ((rv = tok->fn->C_SetAttributeValue(tok->session, objs[i], &la, 1)) != CKR_OK) {
            bool immutable = rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ACTION_PROHIBITED;
            /* All or nothing: put back the labels already changed. */
            for (long j = 0; j < i; j++)
                (void)tok->fn->C_SetAttributeValue(tok->session, objs[j], &back, 1);
            err_runtime(immutable ? "E_LABEL_IMMUTABLE" : "E_TOKEN",
                "token %s: relabelling key %s to %s: %s", tok->label, key->label, label,
                token_rv_text(rv));
            return immutable ? -2 : -1;
        }
    }
    if ((copy = strdup(label)) == NULL)
        return -1;
    free(key->label);
    key->label = copy;
    free(key->uri);
    key->uri = NULL;
    return finish_key(tok, key);
}

int
token_destroy_id(struct token *tok, const uint8_t *id, size_t idlen)
{
    CK_OBJECT_CLASS classes[2] = { CKO_PUBLIC_KEY, CKO_PRIVATE_KEY };
    struct token_key *key = NULL;
    int r, done = 0;
    CK_RV rv;

    /* A complete pair: it and its own certificates. */
    if ((r = token_find_key(tok, NULL, id, idlen, &key)) == 0) {
        r = token_destroy_key(tok, key);
        token_key_free(key);
        return r;
    }
    err_clear();
    /*
     * Half a pair (generation or destruction interrupted): only key objects
     * with the id, public first; certificates cannot be told apart here.
     */
    for (int c = 0; c < 2; c++) {
        CK_ATTRIBUTE tmpl[2] = {
            { CKA_CLASS, &classes[c], sizeof(classes[c]) },
            { CKA_ID, (void *)id, idlen },
        };
        CK_OBJECT_HANDLE objs[4];
        long n = find_objects(tok, tmpl, 2, objs, 4);
        if (n == -1)
            return -1;
        for (long i = 0; i < n; i++) {
            if ((rv = tok->fn->C_DestroyObject(tok->session, objs[i])) != CKR_OK) {
                err_runtime("E_TOKEN", "token %s: destroying an object of a key pair: %s",
                    tok->label, token_rv_text(rv));
                return -1;
            }
            done++;
        }
    }
    return done;
}

int
token_each_key(struct token *tok, int (*cb)(struct token *, struct token_key *, void *),
    void *arg)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
    CK_OBJECT_HANDLE *all = NULL;
    CK_ULONG n = 0, cap = 0, got;
    CK_RV rv;
    int rc = -1;

    if ((rv = tok->fn->C_FindObjectsInit(tok->session, &tmpl, 1)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjectsInit: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    for (;;) {
        if (n + 64 > cap) {
            CK_OBJECT_HANDLE *p = realloc(all, (cap + 256) * sizeof(*all));
            if (p == NULL)
                break;
            all = p;
            cap += 256;
        }
        rv = tok->fn->C_FindObjects(tok->session, all + n, 64, &got);
        if (rv != CKR_OK || got == 0)
            break;
        n += got;
    }
    tok->fn->C_FindObjectsFinal(tok->session);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjects: %s", tok->label, token_rv_text(rv));
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        struct token_key *key;
        if (load_key(tok, all[i], &key) == -1) {
            /* A key we cannot use is listed by the caller as unusable, not fatal. */
            warnmsg("skipping one private key on token %s", tok->label);
            err_clear();
            continue;
        }
        int r = cb(tok, key, arg);
        token_key_free(key);
        if (r != 0)
            goto out;
    }
    rc = 0;
out:
    free(all);
    return rc;
}

/* ---- enumeration for `tokens` ------------------------------------------------- */

int
token_enumerate(const char *module_path, int (*cb)(const struct token_desc *, void *),
    void *arg)
{
    CK_FUNCTION_LIST **mods;
    int rc = 0;

    if (modules_load(module_path, &mods) == -1)
        return -1;
    for (size_t m = 0; mods[m] != NULL && rc == 0; m++) {
        CK_SLOT_ID slots[64];
        CK_ULONG nslots = 64;
        char *name = module_name(mods[m]);

        if (mods[m]->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK)
            nslots = 0;
        for (CK_ULONG s = 0; s < nslots && rc == 0; s++) {
            CK_TOKEN_INFO ti;
            struct token_desc d = { .module = name };
            char label[33], manu[33], model[17], serial[17];
            CK_MECHANISM_INFO mi;
            size_t ng = 0;

            if (mods[m]->C_GetTokenInfo(slots[s], &ti) != CKR_OK)
                continue;
            padded(label, ti.label, sizeof(ti.label));
            padded(manu, ti.manufacturerID, sizeof(ti.manufacturerID));
            padded(model, ti.model, sizeof(ti.model));
            padded(serial, ti.serialNumber, sizeof(ti.serialNumber));
            if (!(ti.flags & CKF_TOKEN_INITIALIZED) && label[0] == '\0')
                snprintf(label, sizeof(label), "(uninitialised token)");
            d.label = label;
            d.manufacturer = manu;
            d.model = model;
            d.serial = serial;
            d.flags = ti.flags;
            char *uri = format_token_uri(&ti);
            d.uri = uri ? uri : "";
            const struct token_family *fam = tokenfam_match(manu, model);
            d.family = fam ? fam->name : NULL;
            d.family_notes = fam ? fam->notes : NULL;
            static const struct { CK_MECHANISM_TYPE mech; const char *names[3]; } gens[] = {
                { CKM_RSA_PKCS_KEY_PAIR_GEN, { "rsa:2048", "rsa:3072", "rsa:4096" } },
                { CKM_EC_KEY_PAIR_GEN, { "ec:p256", "ec:p384", "ec:p521" } },
                { CKM_EC_EDWARDS_KEY_PAIR_GEN, { "ed25519", NULL, NULL } },
            };
            CK_MECHANISM_TYPE mechs[512];
            CK_ULONG nmechs = 512;
            /* Ask only for listed mechanisms: some modules object otherwise. */
            if (mods[m]->C_GetMechanismList(slots[s], mechs, &nmechs) != CKR_OK)
                nmechs = 0;
            for (size_t g = 0; g < 3; g++) {
                bool listed = false;
                for (CK_ULONG i = 0; i < nmechs && !listed; i++)
                    listed = mechs[i] == gens[g].mech;
                if (!listed ||
                    mods[m]->C_GetMechanismInfo(slots[s], gens[g].mech, &mi) != CKR_OK ||
                    !(mi.flags & CKF_GENERATE_KEY_PAIR))
                    continue;
                for (size_t k = 0; k < 3 && gens[g].names[k]; k++) {
                    const struct keytype *t = keytype_parse(gens[g].names[k]);
                    if (t->alg == KEY_ED25519 || mi.ulMaxKeySize == 0 ||
                        (t->bits >= mi.ulMinKeySize && t->bits <= mi.ulMaxKeySize))
                        d.gen[ng++] = t;
                }
            }
            rc = cb(&d, arg);
            free(uri);
        }
        free(name);
    }
    modules_free(mods);
    return rc;
}
