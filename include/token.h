/*
 * token.h - what p11enroll does with keys on a PKCS#11 token (the
 * implementation is src/token/; listing tokens is token_list.h).
 *
 * Callers never see a session, a PIN or a CK_FUNCTION_LIST: they open a
 * token by URI, find or generate a key, and get a signer for it
 * (token_signer()).  Private key material never leaves the token; nothing
 * here can read or wrap it.
 */
#ifndef P11E_TOKEN_H
#define P11E_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "keytype.h"
#include "signer.h"

struct token;
struct token_key;

struct token_opts {
    const char *uri;          /* RFC 7512 URI naming the token (and maybe an object) */
    const char *module_path;  /* --module / profile module=, or NULL: p11-kit registry */
    const char *pin_file;     /* --pin-file / profile pin-file=, or NULL */
    bool allow_final_try;     /* --allow-final-pin-try */
    bool login;               /* log in as the user after opening */
};

/*
 * Load the modules, select exactly one token matching opts->uri (an error
 * lists the candidates when none or several match), open a read-write
 * session and, with opts->login, log in using the PIN sources of cli.md.
 * Returns 0 and *out (free with token_close()), or -1 after reporting.
 */
int token_open(const struct token_opts *opts, struct token **out);

/* Log out, close the session, finalise the modules.  Accepts NULL. */
void token_close(struct token *tok);

/* The token's URI (token= manufacturer= model= serial=), borrowed. */
const char *token_uri(const struct token *tok);
/* The token's label (trailing blanks removed), borrowed. */
const char *token_label(const struct token *tok);
/* Does the token's family (tokens/ profiles) refuse C_SetAttributeValue(CKA_LABEL)? */
bool token_labels_fixed(const struct token *tok);
/*
 * Does the token's family let C_WrapKey export private keys whatever their
 * CKA_EXTRACTABLE says (NSS softokn 3.87)?  Its keys are then not
 * protected by the token against a process that knows the PIN.
 */
bool token_wrap_ignores_extractable(const struct token *tok);

/*
 * Does the RFC 7512 `uri` name this open token?  On success *object gets a
 * copy of its object= label (NULL when it has none; caller frees).
 * Returns 1 (it does), 0 (another token), -1 after reporting (bad URI).
 */
int token_matches_uri(const struct token *tok, const char *uri, char **object);

/*
 * Find the key pair with this label (or, when label is NULL, this CKA_ID):
 * the private key and the public key object with the same CKA_ID.
 * Returns 0 and *out (free with token_key_free()), 1 when there is no such
 * key (nothing reported), -1 after reporting (several keys match, token
 * error, unusable public key).
 */
int token_find_key(struct token *tok, const char *label, const uint8_t *id,
    size_t idlen, struct token_key **out);

/*
 * Find the key pair whose public key is `pub` (for importing a certificate):
 * the public key object is found by value (CKA_MODULUS or CKA_EC_POINT),
 * its private key by CKA_ID, and the two compared with EVP_PKEY_eq().
 * Returns 0 and *out, 1 when no key on the token matches, -1 after reporting.
 */
int token_find_key_by_public(struct token *tok, EVP_PKEY *pub, struct token_key **out);

/*
 * Generate a key pair of `type` on the token: private half token, private,
 * sensitive, not extractable, sign only; both halves share `label` and the
 * CKA_ID (`id`, or 16 random bytes when id is NULL).  Refuses a taken label
 * or id and a mechanism or size the token lacks.  After generation the
 * attributes are read back; a pair whose flags the token did not honour is
 * destroyed and the call fails.  Returns 0 and *out, or -1 after reporting.
 */
int token_keygen(struct token *tok, const struct keytype *type,
    const char *label, const uint8_t *id, size_t idlen, struct token_key **out);

/*
 * token_keygen() with an id of at least 16 bytes the caller drew at random
 * (and journalled before generating): no search for a clash, which is as
 * unlikely as for the id token_keygen() draws itself (2^-128), and costs a
 * search linear in the token's size.
 */
int token_keygen_random_id(struct token *tok, const struct keytype *type,
    const char *label, const uint8_t *id, size_t idlen, struct token_key **out);

/* Free a key (the objects on the token stay).  Accepts NULL. */
void token_key_free(struct token_key *key);

/* Accessors; all borrowed, valid while the key lives. */
/* The key's type, or NULL when p11enroll does not support it (rsa:1024). */
const struct keytype *token_key_type(const struct token_key *key);
/* Its spelling even when unsupported ("rsa:1024", "ec:secp256k1"). */
const char *token_key_type_name(const struct token_key *key);
const char *token_key_label(const struct token_key *key);
const uint8_t *token_key_id(const struct token_key *key, size_t *len);
/* The public key, built from the token's public key object. */
EVP_PKEY *token_key_public(const struct token_key *key);
/* pkcs11:token=…;id=…;object=…;type=private (borrowed). */
const char *token_key_uri(const struct token_key *key);
/* Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo (borrowed). */
const char *token_key_spki_sha256(const struct token_key *key);

struct token_key_flags {
    bool sensitive, always_sensitive, extractable, never_extractable;
    /* Generated on the token: CKA_LOCAL, or the key came from token_keygen(). */
    bool local;
    /* Not local, but the token's family never sets CKA_LOCAL (NSS): the
     * origin of a key found later cannot be told. */
    bool local_unrecorded;
    /* Usages beyond signing that the token gave the key (a TPM key may decrypt). */
    bool decrypt, unwrap, derive;
};
/*
 * Read the private key's protection flags and usages into *out; an
 * attribute the token does not report counts as the unsafe value (for a
 * usage: absent).  0 or -1 (reported).
 */
int token_key_flags(struct token *tok, const struct token_key *key,
    struct token_key_flags *out);

/*
 * A signer (signer.h) for the key on the token: sign() is a C_Sign on the
 * token (RSA PKCS#1 v1.5 and ECDSA hashed on the token when it has the
 * combined mechanism, else on the host; pure EdDSA for Ed25519), with the
 * length checked against the key; pub is token_key_public(key) and name
 * its label.  `tok` and `key` are borrowed and must outlive the signer
 * (and the key keep its label while it lives).
 * Returns 0 (release with signer_clear()), or -1 after reporting.
 */
int token_signer(struct token *tok, const struct token_key *key, struct signer *out);

/*
 * Store `cert` as a CKO_CERTIFICATE next to `key` (same CKA_ID and label).
 * Returns 0 when it was stored, 1 when that certificate was already there
 * (nothing changed), -1 after reporting.  Other certificates of the key
 * stay until token_prune_certs(): a new one is in place before the old
 * ones go.  The caller has checked that the certificate is for the key.
 */
int token_store_cert(struct token *tok, const struct token_key *key, X509 *cert);

/* Destroy the key's certificates other than `keep`.  0, or -1 (warned). */
int token_prune_certs(struct token *tok, const struct token_key *key, X509 *keep);

/* Destroy the key's certificate `cert` (rolling a store back).  0 or -1. */
int token_remove_cert(struct token *tok, const struct token_key *key, X509 *cert);

/*
 * The certificate stored with the key's CKA_ID, if any: 0 and *out
 * (X509_free), 1 when there is none, -1 after reporting.
 */
int token_find_cert(struct token *tok, const struct token_key *key, X509 **out);

/*
 * The current pair at a glance, in a logged-in session: the objects with
 * this CKA_LABEL (or, when label is NULL, this CKA_ID) are exactly one
 * private key, one public key and one certificate, all with the same
 * CKA_ID.  One search, one read of class and id per object and, for a
 * value under 16 KiB, one read of the certificate.  Returns 0 and *out
 * (X509_free); 1 for anything else, a token error included (nothing
 * reported: the caller looks closer, with token_find_key()).
 */
int token_glance_pair(struct token *tok, const char *label, const uint8_t *id, size_t idlen,
    X509 **out);

/*
 * Destroy a key pair and its own certificates (CKA_ID and public key both
 * the key's; an unrelated object sharing the id is left alone).  Returns the
 * number of objects destroyed, or -1 after reporting.
 */
int token_destroy_key(struct token *tok, struct token_key *key);

/*
 * Destroy the key pair with CKA_ID `id` and its own certificates, or, for
 * half a pair (generation or destruction interrupted), its key objects
 * only, private key last.  Objects that merely share the id are left
 * alone.  Only for ids p11enroll recorded (renew's journal).  Returns the
 * number of objects destroyed, or -1 after reporting.
 */
int token_destroy_id(struct token *tok, const uint8_t *id, size_t idlen);

/*
 * Half a pair that a torn write left (SoftHSM's file backend is not
 * crash-atomic): the private key with CKA_ID `id` whose public key object
 * is gone or unreadable gets it back, rebuilt from the certificate stored
 * with the id (after checking the private key's modulus or curve against
 * it; the unreadable remains are destroyed first).  A whole pair is just
 * loaded.  Returns 0 and *out, 1 when there is nothing to rebuild from (no
 * single private key, no certificate, or one not for the key; nothing
 * changed), -1 after reporting.
 */
int token_rebuild_public(struct token *tok, const uint8_t *id, size_t idlen,
    struct token_key **out);

/*
 * Destroy every certificate, public key and private key with CKA_ID `id`,
 * whole pair or not, private key last.  Only for an id p11enroll made
 * itself (16 random bytes it journalled before the key existed): all
 * objects carrying it are its own.  The number destroyed, or -1.
 */
int token_destroy_own_id(struct token *tok, const uint8_t *id, size_t idlen);

/*
 * What a torn write leaves of a pair whose private key is gone (SoftHSM
 * empties the private key's file when a kill lands inside its relabel):
 * when no private key has CKA_ID `id`, destroy the certificates and public
 * keys with that id whose label is exactly one of `labels` (NULL-terminated);
 * others sharing the id are left alone.  Only for an id a journal records.
 * The number destroyed (0 when the private key is there), or -1 after
 * reporting.
 */
int token_destroy_half(struct token *tok, const uint8_t *id, size_t idlen,
    const char *const *labels);

/*
 * An object nothing can use or ever find (what a creation or rewrite cut
 * short by a kill leaves on a token that is not crash-atomic): its class
 * cannot be read; a key or certificate with neither a label nor an id; or
 * one labelled like p11enroll's objects (a label in `ours`, or that label
 * followed by ".") but without an id, or such a certificate whose value
 * does not parse, or such a public key or certificate whose id no private
 * key has (the private key was torn away: nothing can sign for it again).
 */
struct token_stray {
    unsigned long handle;       /* valid in this session only */
    const char *what;           /* "private key", "public key", "certificate", "object" */
    const char *why;            /* static text */
};

/*
 * List the strays on the token (`ours`: NULL-terminated labels p11enroll
 * uses, may be NULL) from `objs`, a pass read with TOKEN_OBJ_ALL, or when
 * objs is NULL from a pass of its own: 0 and *out (free()), *n entries, in
 * the order the token lists its objects; -1 after reporting.  Reads public
 * attributes only; changes nothing.
 */
struct token_objects;
int token_find_strays(struct token *tok, const struct token_objects *objs,
    const char *const *ours, struct token_stray **out, size_t *n);

/* Destroy one stray found in this session.  0 or -1 after reporting. */
int token_destroy_stray(struct token *tok, const struct token_stray *s);

/*
 * Change the label of the key pair and its own certificates (as for
 * token_destroy_key).  All or nothing: on a failure the labels already
 * changed are put back.  0; -2 when the token refuses to change labels
 * (E_LABEL_IMMUTABLE, reported); -1 on other failures.  Idempotent.
 */
int token_relabel_key(struct token *tok, struct token_key *key, const char *label);

/* What token_each_key() read with a key; borrowed for the callback's duration. */
struct token_key_listing {
    struct token_key_flags flags; /* as token_key_flags() gives them */
    X509 *cert;                   /* as token_find_cert() finds it (with `certs`), or NULL */
};
/*
 * Visit every private key on the token (for `keys` and `status`) with its
 * flags and, when `certs`, its certificate; a key that cannot be loaded is
 * skipped with a warning.  The callback returns 0 to go on.  One pass
 * (token_objects_read(): one search per class of object and one
 * C_GetAttributeValue per object, whatever the token holds, issue 12).
 * 0, or -1 after reporting or when the callback did not return 0.
 */
int token_each_key(struct token *tok, bool certs,
    int (*cb)(struct token *tok, struct token_key *key, const struct token_key_listing *l,
        void *arg), void *arg);

/* What token_objects_read() reads (or'ed). */
#define TOKEN_OBJ_KEYS  1u  /* private and public keys: token_objects_each_key() */
#define TOKEN_OBJ_CERTS 2u  /* certificates and their values: its `certs` */
#define TOKEN_OBJ_ALL   4u  /* every object the session sees (with CERTS): token_find_strays() */
/*
 * One pass over the token's objects for token_objects_each_key() and
 * token_find_strays() to share (`status` wants both): a search for every
 * object (TOKEN_OBJ_ALL) and one per class asked for, then one
 * C_GetAttributeValue per object of the public attributes both use (never
 * a sensitive one), whatever the token holds.  An object the token
 * refuses to read as a whole is read again attribute by attribute, as
 * before, by whoever uses it.  0 and *out (token_objects_free()), or -1
 * after reporting.
 */
int token_objects_read(struct token *tok, unsigned what, struct token_objects **out);
/* Free a pass.  Accepts NULL. */
void token_objects_free(struct token_objects *objs);
/*
 * token_each_key() from a pass read with TOKEN_OBJ_KEYS (and
 * TOKEN_OBJ_CERTS for `certs`), in the order the token listed the keys.
 */
int token_objects_each_key(struct token *tok, const struct token_objects *objs, bool certs,
    int (*cb)(struct token *tok, struct token_key *key, const struct token_key_listing *l,
        void *arg), void *arg);

/*
 * Data objects (CKO_DATA, token and private), found by CKA_APPLICATION and
 * CKA_LABEL: what the members of a pool share (pool.h).  Nothing here
 * touches keys.
 */
struct token_data {
    unsigned long obj;  /* the object's handle in this session */
    uint8_t *value;     /* CKA_VALUE, NUL-terminated; NULL when unreadable */
    size_t len;
};

/*
 * Every data object with this application and label (at most 16), with
 * its value.  Returns the count and *out (token_data_free()), 0 when there
 * is none, or -1 after reporting.  An object another session destroyed
 * since the find has value NULL.
 */
long token_data_list(struct token *tok, const char *app, const char *label,
    struct token_data **out);
void token_data_free(struct token_data *d, long n);

/*
 * Create a data object.  PKCS#11 does not refuse a second object with the
 * same label: callers that need one winner arbitrate (pool.c).  *obj (may
 * be NULL) gets its handle.  0, or -1 after reporting.
 */
int token_data_create(struct token *tok, const char *app, const char *label, const void *value,
    size_t len, unsigned long *obj);

/* Destroy a data object (already gone is fine).  0, or -1 after reporting. */
int token_data_destroy(struct token *tok, unsigned long obj);

#endif
