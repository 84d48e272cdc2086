/*
 * keygen.c - generating a key pair on the token: the generation template
 * (pure, unit-tested), the checks before C_GenerateKeyPair, and reading
 * back what the token made, destroying a pair it did not protect.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tokenfam.h"
#include "util.h"

/* DER OIDs for CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

/* ---- the template (pure) ---------------------------------------------------- */

CK_MECHANISM_TYPE
keygen_mechanism(const struct keytype *type)
{
    switch (type->alg) {
    case KEY_RSA:
        return CKM_RSA_PKCS_KEY_PAIR_GEN;
    case KEY_EC:
        return CKM_EC_KEY_PAIR_GEN;
    case KEY_ED25519:
    default:
        return CKM_EC_EDWARDS_KEY_PAIR_GEN;
    }
}

void
keygen_template(const struct keytype *type, const char *label, const uint8_t *id,
    size_t idlen, struct keygen_template *t)
{
    const uint8_t *params = NULL;
    size_t paramslen = 0;
    CK_ULONG n;

    memset(t, 0, sizeof(*t));
    t->yes = CK_TRUE;
    t->no = CK_FALSE;
    t->pubcls = CKO_PUBLIC_KEY;
    t->privcls = CKO_PRIVATE_KEY;
    t->bits = type->bits;
    t->exponent[0] = 0x01;      /* 65537 */
    t->exponent[1] = 0x00;
    t->exponent[2] = 0x01;
    t->mech = (CK_MECHANISM){ keygen_mechanism(type), NULL, 0 };
    switch (type->alg) {
    case KEY_RSA:
        t->kt = CKK_RSA;
        break;
    case KEY_EC:
        t->kt = CKK_EC;
        params = t->bits == 256 ? oid_p256 : t->bits == 384 ? oid_p384 : oid_p521;
        paramslen = t->bits == 256 ? sizeof(oid_p256) : t->bits == 384 ? sizeof(oid_p384)
                                                                       : sizeof(oid_p521);
        break;
    case KEY_ED25519:
    default:
        t->kt = CKK_EC_EDWARDS;
        params = oid_ed25519;
        paramslen = sizeof(oid_ed25519);
        break;
    }

    CK_ATTRIBUTE pubt[] = {
        { CKA_CLASS, &t->pubcls, sizeof(t->pubcls) },
        { CKA_KEY_TYPE, &t->kt, sizeof(t->kt) },
        { CKA_TOKEN, &t->yes, 1 },
        { CKA_PRIVATE, &t->no, 1 },
        /* No CKA_VERIFY / CKA_ENCRYPT: a TPM couples them to the private
         * key's CKA_DECRYPT / CKA_SIGN and fails on any contradiction
         * (tokens/tpm2-pkcs11.conf, usage-coupling).  The public object is
         * never used on the token: OpenSSL verifies. */
        { CKA_WRAP, &t->no, 1 },
        { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_ID, (void *)id, idlen },
    };
    memcpy(t->pub, pubt, sizeof(pubt));
    n = sizeof(pubt) / sizeof(pubt[0]);
    if (type->alg == KEY_RSA) {
        t->pub[n++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &t->bits, sizeof(t->bits) };
        t->pub[n++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, t->exponent, sizeof(t->exponent) };
    } else {
        t->pub[n++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)params, paramslen };
    }
    t->npub = n;

    CK_ATTRIBUTE privt[] = {
        { CKA_CLASS, &t->privcls, sizeof(t->privcls) },
        { CKA_KEY_TYPE, &t->kt, sizeof(t->kt) },
        { CKA_TOKEN, &t->yes, 1 },
        { CKA_PRIVATE, &t->yes, 1 },
        { CKA_SENSITIVE, &t->yes, 1 },
        { CKA_EXTRACTABLE, &t->no, 1 },
        { CKA_SIGN, &t->yes, 1 },
        { CKA_DECRYPT, &t->no, 1 },
        { CKA_UNWRAP, &t->no, 1 },
        { CKA_DERIVE, &t->no, 1 },
        { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_ID, (void *)id, idlen },
    };
    memcpy(t->priv, privt, sizeof(privt));
    t->npriv = sizeof(privt) / sizeof(privt[0]);
}

/* ---- on the token ------------------------------------------------------------ */

/*
 * Is an object (any class) with this attribute already on the token?  One
 * search; *what names it for the message ("a key", "an object").
 */
static int
taken(struct token *tok, CK_ATTRIBUTE_TYPE type, const void *v, size_t len, const char **what)
{
    CK_ATTRIBUTE tmpl = { type, (void *)v, len };
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    CK_ATTRIBUTE ca = { CKA_CLASS, &cls, sizeof(cls) };
    CK_OBJECT_HANDLE h;
    long n = tok_find_objects(tok, &tmpl, 1, &h, 1);

    if (n <= 0)
        return (int)n;
    /* The error path only: one more call to name what is in the way. */
    (void)tok->fn->C_GetAttributeValue(tok->session, h, &ca, 1);
    *what = cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY ? "a key" : "an object";
    return 1;
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

/*
 * Before generating: the label is non-empty and free (one search), and a
 * caller's id is free (one more search).  A random id (16 bytes into rid[]
 * when *id is NULL) needs no search: a clash is a 2^-128 event.  Whether
 * the token can make this type is asked only when generation fails.
 * 0, or -1 after reporting.
 */
static int
keygen_precheck(struct token *tok, const char *label, const uint8_t **id, size_t *idlen,
    uint8_t rid[16], bool id_random)
{
    const char *what = "an object";
    int r;

    if (label == NULL || *label == '\0') {
        err_input("E_LABEL", "a key needs a non-empty label");
        return -1;
    }
    if ((r = taken(tok, CKA_LABEL, label, strlen(label), &what)) != 0) {
        if (r > 0)
            err_runtime("E_LABEL_TAKEN", "token %s already has %s labelled %s",
                tok->label, what, label);
        return -1;
    }
    if (*id == NULL) {
        if (RAND_bytes(rid, 16) != 1) {
            err_runtime("E_RANDOM", "no random bytes for the key id");
            return -1;
        }
        *id = rid;
        *idlen = 16;
        return 0;
    }
    if (id_random)
        return 0;   /* the caller drew it: a clash is as unlikely as for ours */
    if ((r = taken(tok, CKA_ID, *id, *idlen, &what)) != 0) {
        if (r > 0) {
            char *hex = hex_encode(*id, *idlen);
            err_runtime("E_ID_TAKEN", "token %s already has an object with id %s", tok->label,
                hex ? hex : "?");
            free(hex);
        }
        return -1;
    }
    return 0;
}

/*
 * C_GenerateKeyPair failed with `rv`: say whether the token cannot make
 * this type at all (its mechanism info, asked now rather than before every
 * generation) or failed otherwise.  A TPM used without a resource manager
 * keeps the transient objects of the failed call (tpm2-pkcs11.conf,
 * objects-left-loaded); no handle came back, so nothing can be destroyed
 * here: say how to recover.  The caller's token_close() closes the session
 * and finalises the module.  Always -1.
 */
static int
keygen_failed(struct token *tok, const struct keytype *type, CK_RV rv)
{
    CK_MECHANISM_INFO mi;
    CK_ULONG bits = type->bits;

    if (!tok_have_mechanism(tok, keygen_mechanism(type), &mi) ||
        !(mi.flags & CKF_GENERATE_KEY_PAIR) ||
        (type->alg != KEY_ED25519 && mi.ulMaxKeySize != 0 &&
            (bits < mi.ulMinKeySize || bits > mi.ulMaxKeySize))) {
        err_runtime("E_UNSUPPORTED", "token %s cannot generate %s", tok->label, type->name);
        return -1;
    }
    err_runtime("E_KEYGEN", "token %s: generating %s failed: %s%s", tok->label, type->name,
        token_rv_text(rv), tok_loaded_hint(tok));
    return -1;
}

/*
 * After generating: trust, but verify.  One C_GetAttributeValue on the
 * private key reads what the token actually did (protection flags,
 * CKA_ALWAYS_AUTHENTICATE and, for RSA, the modulus and exponent every RSA
 * private key object carries); a pair whose protection flags or key type
 * are not what was asked for is destroyed.  CKA_LOCAL is not required
 * here: these are the handles C_GenerateKeyPair itself returned, so the
 * key was generated on the token whatever the token says (NSS never sets
 * it).  0 and *out, or -1 after
 * reporting.
 */
static int
keygen_verify(struct token *tok, const struct keytype *type, const char *label,
    const uint8_t *id, size_t idlen, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
    struct token_key **out)
{
    struct token_key_flags f = { 0 };
    CK_BBOOL v[TOK_NFLAGS], always = CK_FALSE;
    uint8_t mod[TOK_PUBVAL_MAX], exp[16];
    CK_ATTRIBUTE a[TOK_NFLAGS + 3];
    CK_ULONG n = TOK_NFLAGS + 1;
    struct tok_pair p = { .priv = priv, .pub = pub, .label = label, .id = id, .idlen = idlen,
        .kt = type->alg == KEY_RSA ? CKK_RSA : type->alg == KEY_EC ? CKK_EC : CKK_EC_EDWARDS };

    tok_flags_template(v, a);
    a[TOK_NFLAGS] = (CK_ATTRIBUTE){ CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always) };
    if (type->alg == KEY_RSA) {
        a[n++] = (CK_ATTRIBUTE){ CKA_MODULUS, mod, sizeof(mod) };
        a[n++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, exp, sizeof(exp) };
    }
    if (tok_get_attrs(tok, priv, a, n) == -1 ||
        (tok_flags_eval(a, v, &f), !f.sensitive) || f.extractable ||
        !f.always_sensitive || !f.never_extractable) {
        destroy_pair(tok, priv, pub);
        err_clear();
        err_runtime("E_KEY_UNSAFE", "token %s did not honour the key's protection (sensitive %d, "
            "extractable %d, always sensitive %d, never extractable %d); "
            "the new pair was destroyed", tok->label, f.sensitive, f.extractable,
            f.always_sensitive, f.never_extractable);
        return -1;
    }
    p.always_auth = a[TOK_NFLAGS].ulValueLen == sizeof(always) && always == CK_TRUE;
    /* A length that filled the buffer may be SoftHSM's untouched one: read the public key. */
    if (n == TOK_NFLAGS + 3 && a[TOK_NFLAGS + 1].ulValueLen < sizeof(mod) &&
        a[TOK_NFLAGS + 2].ulValueLen < sizeof(exp)) {
        p.a = mod;
        p.alen = a[TOK_NFLAGS + 1].ulValueLen;
        p.b = exp;
        p.blen = a[TOK_NFLAGS + 2].ulValueLen;
    }
    if (tok_key_generated(tok, &p, out) == -1) {
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
    (*out)->generated = true;
    return 0;
}

/* token_keygen() and token_keygen_random_id(): `id_random` skips the id search. */
static int
keygen(struct token *tok, const struct keytype *type, const char *label, const uint8_t *id,
    size_t idlen, bool id_random, struct token_key **out)
{
    struct keygen_template t;
    uint8_t rid[16];
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_RV rv;

    *out = NULL;
    /* A type the token family cannot use (keytypes in its tokens/ file): no call at all. */
    if (!tok_family_offers(tok->family, type->name)) {
        err_runtime("E_UNSUPPORTED", "token %s cannot generate %s: not usable on a %s token "
            "(see `p11enroll tokens`)", tok->label, type->name, tok->family->name);
        return -1;
    }
    if (keygen_precheck(tok, label, &id, &idlen, rid, id_random) == -1)
        return -1;
    keygen_template(type, label, id, idlen, &t);
    progress("generating %s key %s on token %s", type->name, label, tok->label);
    rv = tok->fn->C_GenerateKeyPair(tok->session, &t.mech, t.pub, t.npub, t.priv, t.npriv,
        &pub, &priv);
    if (rv != CKR_OK)
        return keygen_failed(tok, type, rv);
    return keygen_verify(tok, type, label, id, idlen, priv, pub, out);
}

int
token_keygen(struct token *tok, const struct keytype *type, const char *label,
    const uint8_t *id, size_t idlen, struct token_key **out)
{
    return keygen(tok, type, label, id, idlen, false, out);
}

int
token_keygen_random_id(struct token *tok, const struct keytype *type, const char *label,
    const uint8_t *id, size_t idlen, struct token_key **out)
{
    if (idlen < 16) {
        err_runtime("E_STATE", "a journalled key id of %zu bytes is too short to be random", idlen);
        return -1;
    }
    return keygen(tok, type, label, id, idlen, true, out);
}
