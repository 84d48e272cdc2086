/*
 * objects.c - reading many objects in few calls (issue 12): every handle a
 * search matches from C_FindObjects into one large buffer, and each
 * object's attributes in one batched C_GetAttributeValue that never
 * reports, so that the caller can fall back to reading them one by one as
 * before when a token refuses the batch as a whole (SoftHSM does for an
 * object a torn write left without one of the attributes asked for).
 * `keys` and `status` visit every object: on a network HSM each call is a
 * round trip.
 *
 * Callers put only public attributes in a template: never a private key's
 * value.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define FIRST_BUFFER 1024     /* handles asked for by the first C_FindObjects */

long
tok_find_all(struct token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out)
{
    CK_OBJECT_HANDLE *all = NULL, *p;
    CK_ULONG count = 0, cap = 0, got;
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
