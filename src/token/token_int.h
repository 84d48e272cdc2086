/*
 * token_int.h - what the files of the token layer (src/token/) share and
 * nobody else sees: the token and key structures, the object and
 * attribute helpers, the key-generation template, the raw signing call.
 *
 * Unit tests include it for the pure parts (templates, login checks).
 */
#ifndef P11E_TOKEN_INT_H
#define P11E_TOKEN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/p11-kit.h>

#include <openssl/evp.h>

#include "keytype.h"
#include "token.h"

struct pin;
struct token_family;

struct token {
    CK_FUNCTION_LIST **modules;   /* initialised modules, NULL-terminated */
    CK_FUNCTION_LIST *fn;         /* the selected token's module */
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    bool have_session, logged_in;
    CK_TOKEN_INFO info;
    char label[33], serial[17];
    char *uri;                    /* token URI, formatted */
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
    bool generated;               /* the handle came from C_GenerateKeyPair */
};

/* ---- session.c ------------------------------------------------------------ */

/* Readable text for a CK_RV ("PIN incorrect"); never NULL (static buffer for others). */
const char *token_rv_text(unsigned long rv);

/*
 * The checks before C_Login, given CK_TOKEN_INFO.flags: refuse a locked PIN,
 * and the final try unless allowed.  0 or -1 (reported).
 */
int token_login_precheck(unsigned long flags, bool allow_final_try, const char *label);

/*
 * Load and initialise the module at `path`, or every module registered with
 * p11-kit (skipping, under -v, those that fail to start).  0 and *out
 * (NULL-terminated; free with tok_modules_free()), or -1 after reporting.
 */
int tok_modules_load(const char *path, CK_FUNCTION_LIST ***out);
/* Finalise and release the modules, then the array.  Accepts NULL. */
void tok_modules_free(CK_FUNCTION_LIST **mods);
/* The module's file name or name, new string (caller frees); never NULL. */
char *tok_module_name(CK_FUNCTION_LIST *mod);

/* Copy a blank-padded CK_UTF8CHAR field of `n` bytes into dst[n + 1]. */
void tok_padded(char *dst, const CK_UTF8CHAR *src, size_t n);
/* The token URI (token= manufacturer= model= serial=); caller frees, NULL on failure. */
char *tok_format_uri(const CK_TOKEN_INFO *info);

/* Find up to `max` objects matching a template.  Returns the count, or -1 after reporting. */
long tok_find_objects(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE *found, CK_ULONG max);
/*
 * Read one variable-length attribute into a new buffer (caller frees;
 * NUL-terminated).  Returns 0, 1 when the object does not have it (or it
 * is sensitive), -1 after reporting.
 */
int tok_get_attr(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    uint8_t **out, size_t *outlen);
/*
 * Read several attributes in one C_GetAttributeValue into the caller's
 * buffers (ulValueLen: capacity).  As PKCS#11 v2.40 §5.7 says, an attribute
 * the object lacks, keeps sensitive or that does not fit comes back with
 * ulValueLen CK_UNAVAILABLE_INFORMATION and the others are still filled.
 * SoftHSM 2.6 leaves ulValueLen unchanged for an empty value: a length equal
 * to the capacity is ambiguous, read such a value alone (tok_get_attr()).
 * 0 (check each ulValueLen), or -1 after reporting.
 */
int tok_get_attrs(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *a, CK_ULONG n);
/* The most attributes tok_get_attrs() and tok_read_batch() read in one call. */
#define TOK_OBJ_MAX_ATTRS 16
/* Does the token's slot offer `mech`?  Its info in *info when not NULL. */
bool tok_have_mechanism(struct token *tok, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info);

/* ---- objects.c ------------------------------------------------------------ */

/*
 * Every object matching the template (n 0: every object the session can
 * see), in as few C_FindObjects calls as the count allows (two below
 * 1 024 objects: the handles, then the 0 that ends the search).  The
 * count and *out (caller frees), or -1 after reporting.
 */
long tok_find_all(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out);
/* A certificate's value read in a batch; a longer one is read again alone. */
#define TOK_CERT_MAX 16384
/*
 * tok_get_attrs() without a word on failure: 0 when the attributes can be
 * looked at one by one (each ulValueLen: the length, or
 * CK_UNAVAILABLE_INFORMATION); -1 when the token refused the read as a
 * whole (the lengths are left as given; read them alone instead).  The
 * call's CK_RV in *rv when not NULL.
 */
int tok_read_batch(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *a, CK_ULONG n,
    CK_RV *rv);
/*
 * A copy (caller frees; NUL-terminated) of a variable-length value read by
 * tok_read_batch() into a buffer of `cap` bytes; one that is unavailable or
 * filled the buffer (too long, or SoftHSM's untouched length for an empty
 * value) is read again alone with tok_get_attr().  0, 1 when the object
 * does not have it, -1 after reporting.
 */
/*
 * The certificate in certificate object `obj`: from `batched` (its
 * CKA_VALUE as tok_read_batch() read it into TOK_CERT_MAX bytes), or read
 * alone when batched is NULL or did not hold it whole.  NULL when it cannot
 * be read or does not parse, with nothing reported.  Caller X509_free()s.
 */
X509 *tok_cert_value(struct token *tok, CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *batched);
int tok_batch_copy(struct token *tok, CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *a,
    size_t cap, uint8_t **out, size_t *outlen);

/* tok_obj.found of an object only the search for every object found. */
#define TOK_FOUND_OTHER ((CK_OBJECT_CLASS)-1)

/*
 * One object as token_objects_read() read it: the public attributes its
 * class search says it has (every object: CKA_CLASS, CKA_LABEL, CKA_ID;
 * a private key also its key type, CKA_ALWAYS_AUTHENTICATE and the
 * protection flags; a public key its public values; a certificate its
 * CKA_VALUE), in one C_GetAttributeValue.
 */
struct tok_obj {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS found;      /* the class search that found it, or TOK_FOUND_OTHER */
    bool whole;                 /* false: the token refused the read as a whole, a is empty */
    CK_ATTRIBUTE *a;            /* the read, its values copied after it (one block, owned) */
    CK_ULONG n;
};

/* The objects of one pass over the token (token.h: token_objects_read()). */
struct token_objects {
    unsigned what;              /* TOKEN_OBJ_*, as read */
    struct tok_obj *o;          /* TOKEN_OBJ_ALL: in the order the token listed them */
    size_t n;
};

/*
 * tok_read_batch() of `a` from the pass instead of the token: each
 * attribute the pass read comes back as the token gave it (length or
 * CK_UNAVAILABLE_INFORMATION; the buffers must be those of the pass,
 * TOK_PUBVAL_MAX and TOK_CERT_MAX), one it did not read as unavailable.
 * 0, or -1 (nothing filled) when the token refused the object's read as
 * a whole: read it alone as before.  No I/O.
 */
int tok_obj_fill(const struct tok_obj *o, CK_ATTRIBUTE *a, CK_ULONG n);

/* ---- modinfo.c ------------------------------------------------------------ */

/* The module's present slots, as many as it has.  0 and *out (caller frees), or -1. */
int tok_slot_list(CK_FUNCTION_LIST *fn, CK_SLOT_ID **out, CK_ULONG *n);
/* The slot's mechanisms, as many as it has.  0 and *out (caller frees), or -1. */
int tok_mechanism_list(CK_FUNCTION_LIST *fn, CK_SLOT_ID slot, CK_MECHANISM_TYPE **out,
    CK_ULONG *n);
/* Turn trailing NULs of the padded text fields into blanks, in place. */
void tok_clean_info(CK_TOKEN_INFO *ti);
/* The family (a tokens/ profile) of this module's token, or NULL; borrowed. */
const struct token_family *tok_family(CK_FUNCTION_LIST *fn, const CK_TOKEN_INFO *ti);
/* Does the family list `type` ("ec:p521") in keytypes?  True without a family or list. */
bool tok_family_offers(const struct token_family *f, const char *type);
/*
 * For a family whose failed or killed calls may leave objects loaded (a TPM
 * used without a resource manager), the hint to append to the error of a
 * general failure: how to free them; else "".  Borrowed.
 */
const char *tok_loaded_hint(const struct token *tok);

/* ---- key.c ---------------------------------------------------------------- */

/* Buffer size for one public value (an RSA modulus up to 8 192 bits, a point). */
#define TOK_PUBVAL_MAX 1040

/*
 * Build key->pkey and its type from the public values: modulus and exponent
 * for CKK_RSA, CKA_EC_PARAMS and CKA_EC_POINT for CKK_EC/CKK_EC_EDWARDS.
 * 0, or -1 after reporting (malformed or unsupported).
 */
int tok_set_public(struct token *tok, struct token_key *key, CK_KEY_TYPE kt, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen);

/* A pair just generated, as keygen.c knows it (everything borrowed). */
struct tok_pair {
    CK_OBJECT_HANDLE priv, pub;
    const char *label;
    const uint8_t *id;
    size_t idlen;
    CK_KEY_TYPE kt;
    bool always_auth;
    /* the public values when already read (RSA, from the private key), else lengths 0 */
    const uint8_t *a, *b;
    size_t alen, blen;
};
/*
 * The key for a pair keygen.c made, from the handles C_GenerateKeyPair
 * returned: no search, and the public key object read only when the
 * values are not in *p.  0 and *out, or -1 after reporting.
 */
int tok_key_generated(struct token *tok, const struct tok_pair *p, struct token_key **out);

/* The protection flags' template (CKA_SENSITIVE ... CKA_LOCAL) into v[5], a[5]. */
#define TOK_NFLAGS 8
void tok_flags_template(CK_BBOOL v[TOK_NFLAGS], CK_ATTRIBUTE a[TOK_NFLAGS]);
/* The flags from a template read by tok_get_attrs(); unreported counts as unsafe. */
void tok_flags_eval(const CK_ATTRIBUTE a[TOK_NFLAGS], const CK_BBOOL v[TOK_NFLAGS],
    struct token_key_flags *out);

/*
 * Objects of class `cls` with this CKA_LABEL (or, label NULL, this CKA_ID):
 * one search, up to `max` handles.  The count, or -1 after reporting.
 */
long tok_find_class(struct token *tok, CK_OBJECT_CLASS cls, const char *label,
    const uint8_t *id, size_t idlen, CK_OBJECT_HANDLE *found, CK_ULONG max);

/*
 * Complete a key from its private key handle: attributes, the public key
 * object with the same CKA_ID, the public key, URI and fingerprint.
 * Returns 0 and *out (token_key_free), or -1 after reporting.
 */
int tok_load_key(struct token *tok, CK_OBJECT_HANDLE priv, struct token_key **out);
/* Fill key->spki_sha256 and key->uri from its public key, label and id.  0 or -1. */
int tok_finish_key(struct token *tok, struct token_key *key);

/* ---- keygen.c ------------------------------------------------------------- */

/*
 * The C_GenerateKeyPair arguments for one key type.  Attributes point into
 * the structure itself and at the borrowed label and id: build it in place
 * with keygen_template() and do not copy it.
 */
struct keygen_template {
    CK_MECHANISM mech;
    CK_ATTRIBUTE pub[9], priv[12];
    CK_ULONG npub, npriv;
    /* storage the attributes point into */
    CK_BBOOL yes, no;
    CK_OBJECT_CLASS pubcls, privcls;
    CK_KEY_TYPE kt;
    CK_ULONG bits;
    CK_BYTE exponent[3];
};

/* The key-pair generation mechanism for a key type. */
CK_MECHANISM_TYPE keygen_mechanism(const struct keytype *type);

/*
 * Fill *t for a pair of `type` with this label and CKA_ID: public half on
 * the token, not private, no usage flags (the token's defaults); private half token, private,
 * sensitive, not extractable, sign only.  Pure: no I/O.
 */
void keygen_template(const struct keytype *type, const char *label, const uint8_t *id,
    size_t idlen, struct keygen_template *t);

/* ---- sign.c --------------------------------------------------------------- */

/*
 * Sign `data` with the private key on the token, in the format of
 * struct signer (signer.h): digest "sha256", "sha384" or "sha512" for RSA
 * and ECDSA (hashed on the token when it has the combined mechanism, else
 * on the host), ignored for Ed25519.  The length is checked against the
 * key.  Returns 0 and *sig (caller frees), or -1 after reporting.
 */
int token_sign(struct token *tok, const struct token_key *key,
    const char *digest, const uint8_t *data, size_t len,
    uint8_t **sig, size_t *siglen);

#endif
