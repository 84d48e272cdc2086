/*
 * list.c - walking what is there: every private key on an open token with
 * its public key, flags and certificate, from one pass over its objects
 * (token_objects_read(): one search per class of object and one read per
 * object, for `keys` and `status`), and every token of every module (for
 * `tokens`).
 */
#include "token_int.h"
#include "token_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "tokenfam.h"
#include "util.h"

/* ---- every private key ----------------------------------------------------------- */

/*
 * A public key object or certificate, read once for every private key to
 * pair with by CKA_ID.
 */
struct half {
    CK_OBJECT_HANDLE h;
    uint8_t *id;                /* NULL: unreadable, pairs with nothing */
    size_t idlen;
    bool whole;                 /* read in one batch; else read again alone when paired */
    uint8_t *v[4];              /* public key: modulus, exponent, EC params, EC point; */
    size_t vlen[4];             /* a certificate: its DER in v[0] */
};

struct halves {
    struct half *h;
    size_t n;
};

static void
halves_free(struct halves *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->h[i].id);
        for (size_t k = 0; k < 4; k++)
            free(hs->h[i].v[k]);
    }
    free(hs->h);
    hs->h = NULL;
    hs->n = 0;
}

/*
 * The CKA_ID alone, without a word when it cannot be read (a search by id
 * would not match such an object either).  0 and *id (caller frees), or -1.
 */
static int
id_alone(struct token *tok, CK_OBJECT_HANDLE h, uint8_t **id, size_t *idlen)
{
    CK_ATTRIBUTE a = { CKA_ID, NULL, 0 };

    if (tok->fn->C_GetAttributeValue(tok->session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > TOK_PUBVAL_MAX ||
        (a.pValue = malloc(a.ulValueLen + 1)) == NULL)
        return -1;
    if (tok->fn->C_GetAttributeValue(tok->session, h, &a, 1) != CKR_OK) {
        free(a.pValue);
        return -1;
    }
    *id = a.pValue;
    *idlen = a.ulValueLen;
    return 0;
}

/*
 * One public key object (id and public values of any key type: the token
 * marks the others unavailable) or certificate (id and value) as the pass
 * read it, into `buf`.  0, or -1 after reporting.
 */
static int
read_half(struct token *tok, struct half *o, const struct tok_obj *obj, bool cert, uint8_t *buf)
{
    static const CK_ATTRIBUTE_TYPE pubtypes[5] = { CKA_ID, CKA_MODULUS, CKA_PUBLIC_EXPONENT,
        CKA_EC_PARAMS, CKA_EC_POINT };
    CK_ATTRIBUTE a[5];
    CK_ULONG n = cert ? 2 : 5;

    for (CK_ULONG i = 0; i < n; i++)
        a[i] = (CK_ATTRIBUTE){ cert && i == 1 ? CKA_VALUE : pubtypes[i], buf + i * TOK_PUBVAL_MAX,
            cert && i == 1 ? TOK_CERT_MAX : TOK_PUBVAL_MAX };
    if (tok_obj_fill(obj, a, n) == -1) {
        (void)id_alone(tok, o->h, &o->id, &o->idlen);
        return 0;
    }
    o->whole = true;
    /* An id or certificate that cannot be read pairs with nothing, as a search would. */
    if (a[0].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
        tok_batch_copy(tok, o->h, &a[0], TOK_PUBVAL_MAX, &o->id, &o->idlen) == -1)
        err_clear();
    if (cert) {
        if (tok_batch_copy(tok, o->h, &a[1], TOK_CERT_MAX, &o->v[0], &o->vlen[0]) == -1)
            err_clear();
        return 0;
    }
    for (size_t k = 0; k < 4; k++) {
        /* As key.c reads them: absent, too long or ambiguous counts as missing. */
        if (a[k + 1].ulValueLen >= TOK_PUBVAL_MAX)
            continue;
        if ((o->v[k] = malloc(a[k + 1].ulValueLen + 1)) == NULL)
            return err_nomem();
        memcpy(o->v[k], a[k + 1].pValue, a[k + 1].ulValueLen);
        o->vlen[k] = a[k + 1].ulValueLen;
    }
    return 0;
}

/* Every object of class `cls` (public keys or certificates) in the pass.  0 or -1 (reported). */
static int
read_halves(struct token *tok, const struct token_objects *objs, CK_OBJECT_CLASS cls,
    struct halves *hs)
{
    uint8_t *buf = malloc(TOK_PUBVAL_MAX + (TOK_CERT_MAX > 4 * TOK_PUBVAL_MAX ? TOK_CERT_MAX
                                                                      : 4 * TOK_PUBVAL_MAX));
    int rc = -1;

    if (buf == NULL)
        return err_nomem();
    if (objs->n > 0 && (hs->h = calloc(objs->n, sizeof(*hs->h))) == NULL) {
        err_nomem();
        goto out;
    }
    for (size_t i = 0; i < objs->n; i++) {
        if (objs->o[i].found != cls)
            continue;
        hs->h[hs->n].h = objs->o[i].h;
        if (read_half(tok, &hs->h[hs->n++], &objs->o[i], cls == CKO_CERTIFICATE, buf) == -1)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* The one public key object with this CKA_ID among `pubs`, or NULL (none, or several). */
static const struct half *
public_half(const struct halves *pubs, const uint8_t *id, size_t idlen)
{
    const struct half *found = NULL;
    size_t n = 0;

    for (size_t i = 0; i < pubs->n; i++)
        if (pubs->h[i].id != NULL && pubs->h[i].idlen == idlen &&
            memcmp(pubs->h[i].id, id, idlen) == 0 && n++ == 0)
            found = &pubs->h[i];
    return n == 1 ? found : NULL;
}

/*
 * Load the private key `obj` and its flags from the pass's read of it
 * (key type, CKA_ALWAYS_AUTHENTICATE, id, label, the protection flags),
 * paired with its public key object among `pubs` (tok_key_generated()
 * builds the key: no search).  A key that is not whole (no key type, no
 * id, not one public key object with its id) or a token that refuses the
 * read as a whole goes through tok_load_key() and token_key_flags(), which
 * say what is wrong as they always did.  0 and *out; 1 when the key cannot
 * be used (reported); -1 after reporting.
 */
static int
load_private(struct token *tok, const struct tok_obj *obj, const struct halves *pubs,
    struct token_key **out, struct token_key_flags *f)
{
    CK_OBJECT_HANDLE priv = obj->h;
    CK_KEY_TYPE kt = 0;
    CK_BBOOL always = CK_FALSE, v[TOK_NFLAGS];
    uint8_t idbuf[TOK_PUBVAL_MAX], labelbuf[TOK_PUBVAL_MAX], *id = NULL, *label = NULL;
    CK_ATTRIBUTE a[4 + TOK_NFLAGS] = {
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always) },
        { CKA_ID, idbuf, sizeof(idbuf) },
        { CKA_LABEL, labelbuf, sizeof(labelbuf) },
    };
    const struct half *pub = NULL;
    size_t idlen = 0;
    int rc = 1;

    *out = NULL;
    tok_flags_template(v, a + 4);
    if (tok_obj_fill(obj, a, 4 + TOK_NFLAGS) == 0 &&
        tok_batch_copy(tok, priv, &a[2], sizeof(idbuf), &id, &idlen) != -1 &&
        tok_batch_copy(tok, priv, &a[3], sizeof(labelbuf), &label, &(size_t){ 0 }) != -1 &&
        a[0].ulValueLen == sizeof(kt) && idlen > 0 &&
        (pub = public_half(pubs, id, idlen)) != NULL) {
        bool rsa = kt == CKK_RSA;
        const struct tok_pair p = { .priv = priv, .pub = pub->h, .id = id, .idlen = idlen,
            .label = label ? (const char *)label : "", .kt = kt,
            .always_auth = a[1].ulValueLen == sizeof(always) && always == CK_TRUE,
            /* none when the batch failed or the values are missing: it reads them alone */
            .a = pub->v[rsa ? 0 : 2], .alen = pub->vlen[rsa ? 0 : 2],
            .b = pub->v[rsa ? 1 : 3], .blen = pub->vlen[rsa ? 1 : 3] };
        if (tok_key_generated(tok, &p, out) == 0) {
            tok_flags_eval(a + 4, v, f);
            f->local_unrecorded = !f->local && tok->family != NULL && tok->family->no_cka_local;
            rc = 0;
        }
    } else {
        err_clear();
        if (tok_load_key(tok, priv, out) == 0) {
            if ((rc = token_key_flags(tok, *out, f)) == -1) {
                token_key_free(*out);
                *out = NULL;
            }
        }
    }
    free(id);
    free(label);
    return rc;
}

/*
 * The key's certificate among `certs`, as token_find_cert() picks it: of
 * the first four with its CKA_ID, the one that parses and expires last.
 * NULL when none (caller frees).
 */
static X509 *
key_cert(struct token *tok, const struct token_key *key, const struct halves *certs)
{
    X509 *best = NULL;
    size_t seen = 0;

    for (size_t i = 0; i < certs->n && seen < 4; i++) {
        const struct half *c = &certs->h[i];
        uint8_t *der = NULL;
        size_t len = c->vlen[0];
        const unsigned char *p;
        X509 *x = NULL;
        if (c->id == NULL || c->idlen != key->idlen || memcmp(c->id, key->id, c->idlen) != 0)
            continue;
        seen++;
        if (!c->whole && tok_get_attr(tok, c->h, CKA_VALUE, &der, &len) != 0)
            continue;
        if ((p = c->whole ? c->v[0] : der) != NULL)
            x = d2i_X509(NULL, &p, (long)len);
        free(der);
        if (x == NULL)
            continue;
        if (best == NULL ||
            ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(best)) > 0) {
            X509_free(best);
            best = x;
        } else {
            X509_free(x);
        }
    }
    return best;
}

int
token_objects_each_key(struct token *tok, const struct token_objects *objs, bool certs,
    int (*cb)(struct token *, struct token_key *, const struct token_key_listing *, void *),
    void *arg)
{
    struct halves pubs = { 0 }, crts = { 0 };
    int rc = -1;

    if (!(objs->what & TOKEN_OBJ_KEYS) || (certs && !(objs->what & TOKEN_OBJ_CERTS))) {
        err_runtime("E_TOKEN", "internal: the keys of a pass that did not read them");
        return -1;
    }
    if (read_halves(tok, objs, CKO_PUBLIC_KEY, &pubs) == -1 ||
        (certs && read_halves(tok, objs, CKO_CERTIFICATE, &crts) == -1))
        goto out;
    for (size_t i = 0; i < objs->n; i++) {
        struct token_key *key;
        struct token_key_listing l = { .cert = NULL };
        int r;
        if (objs->o[i].found != CKO_PRIVATE_KEY)
            continue;
        r = load_private(tok, &objs->o[i], &pubs, &key, &l.flags);
        if (r == -1)
            goto out;
        if (r == 1) {
            /* A key we cannot use is listed by the caller as unusable, not fatal. */
            warnmsg("skipping one private key on token %s", tok->label);
            err_clear();
            continue;
        }
        l.cert = certs ? key_cert(tok, key, &crts) : NULL;
        r = cb(tok, key, &l, arg);
        X509_free(l.cert);
        token_key_free(key);
        if (r != 0)
            goto out;
    }
    rc = 0;
out:
    halves_free(&pubs);
    halves_free(&crts);
    return rc;
}

int
token_each_key(struct token *tok, bool certs,
    int (*cb)(struct token *, struct token_key *, const struct token_key_listing *, void *),
    void *arg)
{
    struct token_objects *objs;
    int rc;

    if (token_objects_read(tok, TOKEN_OBJ_KEYS | (certs ? TOKEN_OBJ_CERTS : 0), &objs) == -1)
        return -1;
    rc = token_objects_each_key(tok, objs, certs, cb, arg);
    token_objects_free(objs);
    return rc;
}

int
token_enumerate(const char *module_path, int (*cb)(const struct token_desc *, void *),
    void *arg)
{
    CK_FUNCTION_LIST **mods;
    int rc = 0;

    if (tok_modules_load(module_path, &mods) == -1)
        return -1;
    for (size_t m = 0; mods[m] != NULL && rc == 0; m++) {
        CK_SLOT_ID *slots = NULL;
        CK_ULONG nslots = 0;
        char *name = tok_module_name(mods[m]);

        if (tok_slot_list(mods[m], &slots, &nslots) == -1)
            verbose("module %s: cannot list its slots", name);
        for (CK_ULONG s = 0; s < nslots && rc == 0; s++) {
            CK_TOKEN_INFO ti;
            struct token_desc d = { .module = name };
            char label[33], manu[33], model[17], serial[17];
            CK_MECHANISM_INFO mi;
            size_t ng = 0;

            if (mods[m]->C_GetTokenInfo(slots[s], &ti) != CKR_OK)
                continue;
            tok_clean_info(&ti);
            tok_padded(label, ti.label, sizeof(ti.label));
            tok_padded(manu, ti.manufacturerID, sizeof(ti.manufacturerID));
            tok_padded(model, ti.model, sizeof(ti.model));
            tok_padded(serial, ti.serialNumber, sizeof(ti.serialNumber));
            if (!(ti.flags & CKF_TOKEN_INITIALIZED) && label[0] == '\0')
                snprintf(label, sizeof(label), "(uninitialised token)");
            d.label = label;
            d.manufacturer = manu;
            d.model = model;
            d.serial = serial;
            d.flags = ti.flags;
            char *uri = tok_format_uri(&ti);
            d.uri = uri ? uri : "";
            const struct token_family *fam = tok_family(mods[m], &ti);
            d.family = fam ? fam->name : NULL;
            d.family_notes = fam ? fam->notes : NULL;
            static const struct { CK_MECHANISM_TYPE mech; const char *names[3]; } gens[] = {
                { CKM_RSA_PKCS_KEY_PAIR_GEN, { "rsa:2048", "rsa:3072", "rsa:4096" } },
                { CKM_EC_KEY_PAIR_GEN, { "ec:p256", "ec:p384", "ec:p521" } },
                { CKM_EC_EDWARDS_KEY_PAIR_GEN, { "ed25519", NULL, NULL } },
            };
            CK_MECHANISM_TYPE *mechs = NULL;
            CK_ULONG nmechs = 0;
            /* Ask only for listed mechanisms: some modules object otherwise. */
            if (tok_mechanism_list(mods[m], slots[s], &mechs, &nmechs) == -1)
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
                    /* Only what the family can really do (tpm2: no P-521 point). */
                    if ((t->alg == KEY_ED25519 || mi.ulMaxKeySize == 0 ||
                        (t->bits >= mi.ulMinKeySize && t->bits <= mi.ulMaxKeySize)) &&
                        tok_family_offers(fam, t->name))
                        d.gen[ng++] = t;
                }
            }
            free(mechs);
            rc = cb(&d, arg);
            free(uri);
        }
        free(slots);
        free(name);
    }
    tok_modules_free(mods);
    return rc;
}
