/*
 * data.c - small CKO_DATA objects on the token (token.h "data objects"):
 * list them by application and label, create one, destroy one.  The pool
 * (pool.c) keeps its lease and its record of the current certificate in
 * such objects, the only thing its members share.  Nothing here touches
 * keys: every template names CKO_DATA.
 */
#include "token_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DATA 16
#define MAX_VALUE (256 * 1024)  /* a record holds a certificate and its chain */
#define FIRST_TRY 16384

/*
 * CKA_VALUE of a data object into d->value (NUL-terminated), or NULL
 * without a word when the object went away since the find or cannot be
 * read now (another session destroying or still writing it: the caller
 * decides what that means).  0, or -1 after reporting (no memory).
 */
static int
read_value(struct token *tok, CK_OBJECT_HANDLE h, struct token_data *d)
{
    /* One round trip for what pool objects hold (a few KiB); a second only when larger. */
    CK_ATTRIBUTE a = { CKA_VALUE, malloc(FIRST_TRY + 1), FIRST_TRY };
    CK_RV rv;

    if (a.pValue == NULL)
        return err_nomem();
    rv = tok->fn->C_GetAttributeValue(tok->session, h, &a, 1);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        free(a.pValue);
        a.pValue = NULL;
        a.ulValueLen = 0;
        if (tok->fn->C_GetAttributeValue(tok->session, h, &a, 1) != CKR_OK ||
            a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > MAX_VALUE)
            return 0;
        if ((a.pValue = malloc(a.ulValueLen + 1)) == NULL)
            return err_nomem();
        rv = tok->fn->C_GetAttributeValue(tok->session, h, &a, 1);
    }
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        free(a.pValue);
        return 0;
    }
    ((uint8_t *)a.pValue)[a.ulValueLen] = '\0';
    d->value = a.pValue;
    d->len = a.ulValueLen;
    return 0;
}

long
token_data_list(struct token *tok, const char *app, const char *label,
    struct token_data **out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE find[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_APPLICATION, (void *)app, strlen(app) },
        { CKA_LABEL, (void *)label, strlen(label) },
    };
    CK_OBJECT_HANDLE h[MAX_DATA];
    struct token_data *d;
    long n, i;

    *out = NULL;
    if ((n = tok_find_objects(tok, find, 3, h, MAX_DATA)) <= 0)
        return n;
    if ((d = calloc((size_t)n, sizeof(*d))) == NULL)
        return err_nomem();
    for (i = 0; i < n; i++) {
        d[i].obj = h[i];
        if (read_value(tok, h[i], &d[i]) == -1) {
            token_data_free(d, i + 1);
            return -1;
        }
    }
    *out = d;
    return n;
}

void
token_data_free(struct token_data *d, long n)
{
    for (long i = 0; d != NULL && i < n; i++)
        free(d[i].value);
    free(d);
}

int
token_data_create(struct token *tok, const char *app, const char *label, const void *value,
    size_t len, unsigned long *obj)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_APPLICATION, (void *)app, strlen(app) },
        { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_VALUE, (void *)value, len },
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv;

    if ((rv = tok->fn->C_CreateObject(tok->session, tmpl, 6, &h)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_CreateObject (data object %s): %s", tok->label,
            label, token_rv_text(rv));
        return -1;
    }
    if (obj != NULL)
        *obj = h;
    return 0;
}

int
token_data_destroy(struct token *tok, unsigned long obj)
{
    CK_RV rv = tok->fn->C_DestroyObject(tok->session, obj);

    if (rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID)
        return 0;
    err_runtime("E_TOKEN", "token %s: C_DestroyObject (data object): %s", tok->label,
        token_rv_text(rv));
    return -1;
}
