/*
 * session.c - opening a token: PKCS#11 modules through p11-kit, selecting
 * one token by RFC 7512 URI, the session, login, and the object and
 * attribute helpers every other file of the token layer uses.
 *
 * Every object lookup is a C_FindObjects template (class plus CKA_ID or
 * CKA_LABEL), so the cost of a command does not grow with the number of
 * objects on the token.
 */
#include "token_int.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/uri.h>

#include "pin.h"
#include "tokenfam.h"
#include "util.h"

#define MAX_CANDIDATES 32

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

void
tok_modules_free(CK_FUNCTION_LIST **mods)
{
    if (mods == NULL)
        return;
    for (size_t i = 0; mods[i] != NULL; i++) {
        p11_kit_module_finalize(mods[i]);
        p11_kit_module_release(mods[i]);
    }
    free(mods);
}

char *
tok_module_name(CK_FUNCTION_LIST *mod)
{
    char *name = p11_kit_module_get_filename(mod);
    if (name == NULL)
        name = p11_kit_module_get_name(mod);
    return name != NULL ? name : strdup("(unnamed module)");
}

/*
 * Before loading every registered module: keep the chatter of modules for
 * absent hardware off the user's terminal.  libtpm2-pkcs11 (through
 * libtss2 and its own log, which has no "off" level) prints a dozen ERROR
 * lines at C_Initialize when there is no TPM: TSS2_LOG (unless the user set
 * it) quiets libtss2, and without -v stderr goes to /dev/null while the
 * modules start (they print then; p11enroll reports nothing in between).
 * Returns the saved stderr for unquiet_modules(), or -1 (nothing to undo).
 */
static int
quiet_modules(void)
{
    int saved, null;

    setenv("TSS2_LOG", "all+NONE", 0);
    if (util_verbosity() >= 1)
        return -1;
    fflush(stderr);
    if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
        return -1;
    if ((saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) != -1 &&
        dup2(null, STDERR_FILENO) == -1) {
        close(saved);
        saved = -1;
    }
    close(null);
    return saved;
}

static void
unquiet_modules(int saved)
{
    if (saved == -1)
        return;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/*
 * Load and initialise one module by path, or every module registered with
 * p11-kit.  A registered module that fails to start is skipped with a note
 * under -v: this machine may carry modules for absent hardware.
 */
int
tok_modules_load(const char *path, CK_FUNCTION_LIST ***out)
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
    int saved = quiet_modules();
    loaded = p11_kit_modules_load(NULL, 0);
    if (loaded == NULL) {
        unquiet_modules(saved);
        err_runtime("E_MODULE", "cannot load the PKCS#11 modules registered with p11-kit: %s",
            p11_kit_message() ? p11_kit_message() : "unknown error");
        return -1;
    }
    for (n = 0; loaded[n] != NULL; n++)
        ;
    if ((mods = calloc(n + 1, sizeof(*mods))) == NULL) {
        unquiet_modules(saved);
        p11_kit_modules_release(loaded);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    n = 0;
    for (size_t i = 0; loaded[i] != NULL; i++) {
        char *name = tok_module_name(loaded[i]);
        if ((rv = p11_kit_module_initialize(loaded[i])) != CKR_OK) {
            /* stderr is quiet unless -v: then this line shows. */
            verbose("module %s skipped: C_Initialize: %s", name, token_rv_text(rv));
            p11_kit_module_release(loaded[i]);
        } else {
            mods[n++] = loaded[i];
        }
        free(name);
    }
    unquiet_modules(saved);
    free(loaded);               /* the array only; modules moved to mods */
    *out = mods;
    return 0;
}

/* ---- small helpers -------------------------------------------------------- */

/* Copy a blank-tok_padded CK_UTF8CHAR field into a NUL-terminated string. */
void
tok_padded(char *dst, const CK_UTF8CHAR *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        dst[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = '?';
}

char *
tok_format_uri(const CK_TOKEN_INFO *info)
{
    P11KitUri *uri = p11_kit_uri_new();
    char *s = NULL;

    if (uri == NULL)
        return NULL;
    memcpy(p11_kit_uri_get_token_info(uri), info, sizeof(*info));
    tok_clean_info(p11_kit_uri_get_token_info(uri));  /* no %00 in the URI */
    if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_TOKEN, &s) != P11_KIT_URI_OK)
        s = NULL;
    p11_kit_uri_free(uri);
    return s;
}

/* Find up to `max` objects matching a template.  Returns the count or -1. */
long
tok_find_objects(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
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
int
tok_get_attr(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
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

int
tok_get_attrs(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *a, CK_ULONG n)
{
    CK_RV rv = CKR_OK;

    if (tok_read_batch(tok, obj, a, n, &rv) == 0)
        return 0;
    if (rv != CKR_OK)       /* CKR_OK: too many attributes, reported already */
        err_runtime("E_TOKEN", "token %s: C_GetAttributeValue: %s", tok->label,
            token_rv_text(rv));
    return -1;
}

bool
tok_have_mechanism(struct token *tok, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info)
{
    CK_MECHANISM_INFO tmp;
    return tok->fn->C_GetMechanismInfo(tok->slot, mech, info ? info : &tmp) == CKR_OK;
}

/* ---- opening a token -------------------------------------------------------- */

const char *token_uri(const struct token *tok) { return tok->uri; }
const char *token_label(const struct token *tok) { return tok->label; }

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
        tok_padded(label, c[i].info.label, sizeof(c[i].info.label));
        tok_padded(serial, c[i].info.serialNumber, sizeof(c[i].info.serialNumber));
        off += (size_t)snprintf(buf + off, cap - off, "%s\"%s\" (serial %s)",
            i ? ", " : "", label, serial);
    }
    if (off >= cap && cap > 4)
        strcpy(buf + cap - 4, "...");
}

/*
 * Does the URI name a module (library-description, library-manufacturer,
 * library-version)?  Only then is C_GetInfo worth a call.
 */
static bool
uri_names_module(P11KitUri *uri)
{
    P11KitUri *any = p11_kit_uri_new();    /* what p11-kit keeps for "not given" */
    bool named = uri == NULL || any == NULL ||
        memcmp(p11_kit_uri_get_module_info(uri), p11_kit_uri_get_module_info(any),
            sizeof(CK_INFO)) != 0;
    p11_kit_uri_free(any);
    return uri != NULL && named;
}

/* Does the slot match the URI's slot-description/-manufacturer?  C_GetSlotInfo only then. */
static bool
slot_matches(CK_FUNCTION_LIST *mod, CK_SLOT_ID slot, P11KitUri *uri)
{
    P11KitUri *any = p11_kit_uri_new();    /* what p11-kit keeps for "not given" */
    CK_SLOT_INFO sinfo;
    bool named = any == NULL || memcmp(p11_kit_uri_get_slot_info(uri),
        p11_kit_uri_get_slot_info(any), sizeof(CK_SLOT_INFO)) != 0;

    p11_kit_uri_free(any);
    if (!named)
        return true;
    return mod->C_GetSlotInfo(slot, &sinfo) == CKR_OK && p11_kit_uri_match_slot_info(uri, &sinfo);
}

static int
collect_tokens(CK_FUNCTION_LIST **mods, P11KitUri *uri, struct candidate *all,
    size_t *nall, struct candidate *match, size_t *nmatch)
{
    *nall = *nmatch = 0;
    for (size_t m = 0; mods[m] != NULL; m++) {
        CK_INFO minfo;
        CK_SLOT_ID *slots;
        CK_ULONG nslots;
        bool module_ok = true;

        if (uri_names_module(uri)) {
            if (mods[m]->C_GetInfo(&minfo) != CKR_OK)
                continue;
            module_ok = p11_kit_uri_match_module_info(uri, &minfo);
        }
        if (tok_slot_list(mods[m], &slots, &nslots) == -1)
            continue;
        for (CK_ULONG s = 0; s < nslots; s++) {
            CK_TOKEN_INFO tinfo;
            if (mods[m]->C_GetTokenInfo(slots[s], &tinfo) != CKR_OK)
                continue;
            tok_clean_info(&tinfo);
            if (*nall < MAX_CANDIDATES)
                all[(*nall)++] = (struct candidate){ mods[m], slots[s], tinfo };
            if (module_ok && uri != NULL && p11_kit_uri_match_token_info(uri, &tinfo) &&
                slot_matches(mods[m], slots[s], uri) && *nmatch < MAX_CANDIDATES)
                match[(*nmatch)++] = (struct candidate){ mods[m], slots[s], tinfo };
        }
        free(slots);
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
    CK_RV rv;
    int r;
    /* Messages name the URI, but never a PIN it may carry. */
    char *shown = uri_redact(opts->uri);

    *out = NULL;
    /*
     * A remote module (p11-kit-client.so: a network HSM) writes to a socket
     * the server may have closed: that must be a CK_RV the caller reports
     * (exit 1), not a SIGPIPE that kills the run without a word.
     */
    (void)signal(SIGPIPE, SIG_IGN);
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
    if (tok_modules_load(module_path, &tok->modules) == -1)
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
    tok_padded(tok->label, tok->info.label, sizeof(tok->info.label));
    tok_padded(tok->serial, tok->info.serialNumber, sizeof(tok->info.serialNumber));
    tok->family = tok_family(tok->fn, &tok->info);
    if ((tok->uri = tok_format_uri(&tok->info)) == NULL) {
        err_runtime("E_NOMEM", "out of memory");
        goto fail;
    }
    if (!(tok->info.flags & CKF_TOKEN_INITIALIZED)) {
        err_runtime("E_TOKEN", "token %s is not initialised", tok->label);
        goto fail;
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
        return err_nomem();
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
    /* No C_Logout: closing the last session ends the login (PKCS#11 v2.40 §5.6). */
    if (tok->have_session)
        tok->fn->C_CloseSession(tok->session);
    tok_modules_free(tok->modules);
    pin_free(tok->pin);
    free(tok->uri);
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

    /*
     * The flags read when the token was selected, a moment ago, are fresh
     * enough: a second C_GetTokenInfo would only repeat them.
     */
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
            err_runtime("E_LOGIN", "token %s: C_Login: %s%s", tok->label, token_rv_text(rv),
                rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_MEMORY ? tok_loaded_hint(tok) : "");
        pin_free(pin);
        return -1;
    }
    tok->logged_in = true;
    tok->pin = pin;
    return 0;
}

