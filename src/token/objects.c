/*
 * objects.c - reading many objects in few calls (issue 12): every handle a
 * search matches from C_FindObjects into one large buffer, and each
 * object's attributes in one batched C_GetAttributeValue that never
 * reports, so that the caller can fall back to reading them one by one as
 * before when a token refuses the batch as a whole (SoftHSM does for an
 * object a torn write left without one of the attributes asked for).
 * `keys` and `status` visit every object: on a network HSM each call is a
 * round trip.  The pass `status` shares between its key listing and its
 * stray scan (token_objects_read()) reads each object once.
 *
 * Callers put only public attributes in a template: never a private key's
 * value.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define FIRST_BUFFER 1024     /* handles asked for by the first C_FindObjects */
#define MAX_HANDLES (1UL << 20) /* more from one search: a module that never ends it */

long
tok_find_all(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out)
{
    CK_OBJECT_HANDLE *all = NULL, *p;
    CK_ULONG count = 0, cap = 0, got;
    bool too_many = false;
    CK_RV rv;

    *out = NULL;
    if ((rv = tok->fn->C_FindObjectsInit(tok->session, tmpl, n)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjectsInit: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    /*
     * PKCS#11 ends a search only with a count of 0: a token may return
     * fewer handles than asked for and still have more (HSMs that page
     * their answers), so ask until it says 0, growing a full buffer.
     */
    do {
        if (count == cap) {
            if (cap >= MAX_HANDLES) {
                too_many = true;
                rv = CKR_GENERAL_ERROR;
                break;
            }
            cap = cap == 0 ? FIRST_BUFFER : 2 * cap;
            if ((p = realloc(all, cap * sizeof(*all))) == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            all = p;
        }
        got = 0;
        if ((rv = tok->fn->C_FindObjects(tok->session, all + count, cap - count, &got)) != CKR_OK)
            break;
        if (got > cap - count) {    /* a module that claims more than fits */
            rv = CKR_GENERAL_ERROR;
            break;
        }
        count += got;
    } while (got > 0);
    tok->fn->C_FindObjectsFinal(tok->session);
    if (rv != CKR_OK) {
        free(all);
        if (rv == CKR_HOST_MEMORY)
            return err_nomem();
        if (too_many)
            err_runtime("E_TOKEN", "token %s: a search returned over %lu objects", tok->label,
                (unsigned long)MAX_HANDLES);
        else
            err_runtime("E_TOKEN", "token %s: C_FindObjects: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    *out = all;
    all = NULL; /* transferred */
    return (long)count;
}

int
tok_read_batch(struct token *tok, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *a, CK_ULONG n,
    CK_RV *rvp)
{
    CK_ULONG cap[TOK_OBJ_MAX_ATTRS];
    CK_RV rv;

    if (n > TOK_OBJ_MAX_ATTRS) {
        err_runtime("E_TOKEN", "internal: %lu attributes in one read", n);
        return -1;
    }
    for (CK_ULONG i = 0; i < n; i++)
        cap[i] = a[i].ulValueLen;
    rv = tok->fn->C_GetAttributeValue(tok->session, obj, a, n);
    if (rvp != NULL)
        *rvp = rv;
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE &&
        rv != CKR_BUFFER_TOO_SMALL) {
        for (CK_ULONG i = 0; i < n; i++)
            a[i].ulValueLen = cap[i];
        return -1;
    }
    /* v2.20 tokens report the needed length of a value that did not fit. */
    for (CK_ULONG i = 0; i < n; i++)
        if (a[i].ulValueLen > cap[i])
            a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    return 0;
}

int
tok_batch_copy(struct token *tok, CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *a, size_t cap,
    uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    /* Absent, too long, or SoftHSM's untouched length for an empty value: ask alone. */
    if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION || a->ulValueLen >= cap)
        return tok_get_attr(tok, obj, a->type, out, outlen);
    if ((*out = malloc(a->ulValueLen + 1)) == NULL)
        return err_nomem();
    memcpy(*out, a->pValue, a->ulValueLen);
    (*out)[a->ulValueLen] = '\0';
    *outlen = a->ulValueLen;
    return 0;
}

/* ---- one pass over the objects --------------------------------------------------- */

/* Bytes the widest template below reads into: id, label, four public values, a certificate. */
#define SCRATCH (6 * TOK_PUBVAL_MAX + TOK_CERT_MAX + 16 * sizeof(CK_ULONG))

/*
 * The read for an object its class search found (TOK_FOUND_OTHER: the
 * class, label and id only), laid out in `buf`.  Public attributes only:
 * CKA_VALUE is asked of certificates alone.  The number of attributes.
 */
static CK_ULONG
pass_template(CK_OBJECT_CLASS found, uint8_t *buf, CK_ATTRIBUTE *a)
{
    static const CK_ATTRIBUTE_TYPE pubvals[4] = { CKA_MODULUS, CKA_PUBLIC_EXPONENT,
        CKA_EC_PARAMS, CKA_EC_POINT };
    CK_BBOOL v[TOK_NFLAGS];
    CK_ULONG n = 0;

    a[n++] = (CK_ATTRIBUTE){ CKA_CLASS, NULL, sizeof(CK_OBJECT_CLASS) };
    a[n++] = (CK_ATTRIBUTE){ CKA_LABEL, NULL, TOK_PUBVAL_MAX };
    a[n++] = (CK_ATTRIBUTE){ CKA_ID, NULL, TOK_PUBVAL_MAX };
    if (found == CKO_PRIVATE_KEY) {
        a[n++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, NULL, sizeof(CK_KEY_TYPE) };
        a[n++] = (CK_ATTRIBUTE){ CKA_ALWAYS_AUTHENTICATE, NULL, sizeof(CK_BBOOL) };
        tok_flags_template(v, a + n);
        n += TOK_NFLAGS;
    } else if (found == CKO_PUBLIC_KEY) {
        for (size_t k = 0; k < 4; k++)
            a[n++] = (CK_ATTRIBUTE){ pubvals[k], NULL, TOK_PUBVAL_MAX };
    } else if (found == CKO_CERTIFICATE) {
        a[n++] = (CK_ATTRIBUTE){ CKA_VALUE, NULL, TOK_CERT_MAX };
    }
    /* Lay the buffers out one after the other, each aligned for a CK_ULONG. */
    for (CK_ULONG i = 0, off = 0; i < n; i++) {
        a[i].pValue = buf + off;
        off += (a[i].ulValueLen + sizeof(CK_ULONG) - 1) / sizeof(CK_ULONG) * sizeof(CK_ULONG);
    }
    return n;
}

/*
 * Read one object in one C_GetAttributeValue and keep what came back
 * (o->a, one block).  A refusal as a whole leaves o->whole false.  0, or
 * -1 after reporting (memory).
 */
static int
pass_read(struct token *tok, struct tok_obj *o, uint8_t *buf)
{
    CK_ATTRIBUTE a[TOK_OBJ_MAX_ATTRS];
    CK_ULONG n, cap[TOK_OBJ_MAX_ATTRS];
    size_t size;
    uint8_t *p;

    /*
     * A module that refuses an attribute without marking its length
     * unavailable would leave the last object's bytes here: zeros instead.
     */
    memset(buf, 0, SCRATCH);
    n = pass_template(o->found, buf, a);
    size = n * sizeof(*a);
    for (CK_ULONG i = 0; i < n; i++)
        cap[i] = a[i].ulValueLen;
    if (tok_read_batch(tok, o->h, a, n, NULL) == -1)
        return 0;
    for (CK_ULONG i = 0; i < n; i++)
        if (a[i].ulValueLen <= cap[i])
            size += a[i].ulValueLen;
    if ((o->a = malloc(size)) == NULL)
        return err_nomem();
    p = (uint8_t *)(o->a + n);
    for (CK_ULONG i = 0; i < n; i++) {
        o->a[i] = (CK_ATTRIBUTE){ a[i].type, NULL, a[i].ulValueLen };
        if (a[i].ulValueLen > cap[i])
            continue;   /* CK_UNAVAILABLE_INFORMATION */
        memcpy(p, a[i].pValue, a[i].ulValueLen);
        o->a[i].pValue = p;
        p += a[i].ulValueLen;
    }
    o->n = n;
    o->whole = true;
    return 0;
}

/* qsort()/bsearch() order of object handles. */
static int
handle_cmp(const void *a, const void *b)
{
    CK_OBJECT_HANDLE x = *(const CK_OBJECT_HANDLE *)a, y = *(const CK_OBJECT_HANDLE *)b;
    return x < y ? -1 : x > y;
}

/*
 * The objects of the pass, each with the class search that found it: with
 * every object (all, nall) in their order, else those of the class
 * searches one class after the other.  0, or -1 after reporting.
 */
static int
pass_list(const CK_OBJECT_HANDLE *all, long nall, CK_OBJECT_HANDLE *found[3], long nf[3],
    struct token_objects *objs)
{
    static const CK_OBJECT_CLASS classes[3] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
        CKO_CERTIFICATE };
    size_t max = all != NULL ? (size_t)nall : (size_t)(nf[0] + nf[1] + nf[2]);

    if ((objs->o = calloc(max + 1, sizeof(*objs->o))) == NULL)
        return err_nomem();
    for (int c = 0; c < 3; c++) {
        if (all != NULL && nf[c] > 0)
            qsort(found[c], (size_t)nf[c], sizeof(*found[c]), handle_cmp);
        for (long i = 0; all == NULL && i < nf[c]; i++)
            objs->o[objs->n++] = (struct tok_obj){ .h = found[c][i], .found = classes[c] };
    }
    for (long i = 0; all != NULL && i < nall; i++) {
        struct tok_obj *o = &objs->o[objs->n++];
        *o = (struct tok_obj){ .h = all[i], .found = TOK_FOUND_OTHER };
        for (int c = 0; c < 3; c++)
            if (nf[c] > 0 && bsearch(&all[i], found[c], (size_t)nf[c], sizeof(*found[c]), handle_cmp))
                o->found = classes[c];
    }
    return 0;
}

int
token_objects_read(struct token *tok, unsigned what, struct token_objects **out)
{
    static const CK_OBJECT_CLASS classes[3] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
        CKO_CERTIFICATE };
    CK_OBJECT_HANDLE *all = NULL, *found[3] = { NULL, NULL, NULL };
    long nall = 0, nf[3] = { 0, 0, 0 };
    struct token_objects *objs = NULL;
    uint8_t *buf = NULL;
    int rc = -1;

    *out = NULL;
    if (what & TOKEN_OBJ_ALL)
        what |= TOKEN_OBJ_CERTS;    /* the strays' certificate values */
    if ((objs = calloc(1, sizeof(*objs))) == NULL || (buf = malloc(SCRATCH)) == NULL) {
        err_nomem();
        goto out;
    }
    objs->what = what;
    /*
     * The keys, every object, the certificates: SoftHSM numbers handles as
     * searches first meet objects and lists them by handle, so in this
     * order the keys and the strays come in the order they always had
     * (status listed the keys before it looked for strays).
     */
    for (int c = 0; c < 3; c++) {
        CK_ATTRIBUTE t = { CKA_CLASS, (void *)&classes[c], sizeof(classes[c]) };
        if (c == 2 && (what & TOKEN_OBJ_ALL) && (nall = tok_find_all(tok, NULL, 0, &all)) == -1)
            goto out;
        if ((what & (c < 2 ? TOKEN_OBJ_KEYS : TOKEN_OBJ_CERTS)) &&
            (nf[c] = tok_find_all(tok, &t, 1, &found[c])) == -1)
            goto out;
    }
    if (pass_list((what & TOKEN_OBJ_ALL) ? all : NULL, nall, found, nf, objs) == -1)
        goto out;
    for (size_t i = 0; i < objs->n; i++)
        if (pass_read(tok, &objs->o[i], buf) == -1)
            goto out;
    *out = objs;
    objs = NULL; /* transferred */
    rc = 0;
out:
    token_objects_free(objs);
    free(all);
    for (int c = 0; c < 3; c++)
        free(found[c]);
    free(buf);
    return rc;
}

void
token_objects_free(struct token_objects *objs)
{
    if (objs == NULL)
        return;
    for (size_t i = 0; i < objs->n; i++)
        free(objs->o[i].a);
    free(objs->o);
    free(objs);
}

int
tok_obj_fill(const struct tok_obj *o, CK_ATTRIBUTE *a, CK_ULONG n)
{
    if (!o->whole)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *got = NULL;
        for (CK_ULONG k = 0; k < o->n && got == NULL; k++)
            if (o->a[k].type == a[i].type)
                got = &o->a[k];
        if (got == NULL || got->pValue == NULL || got->ulValueLen > a[i].ulValueLen) {
            a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            continue;
        }
        memcpy(a[i].pValue, got->pValue, got->ulValueLen);
        a[i].ulValueLen = got->ulValueLen;
    }
    return 0;
}
