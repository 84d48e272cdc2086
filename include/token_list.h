/*
 * token_list.h - listing every token of every module, for `tokens`.
 */
#ifndef P11E_TOKEN_LIST_H
#define P11E_TOKEN_LIST_H

#include "keytype.h"

struct token_desc {
    const char *module;           /* module file or name */
    const char *uri;
    const char *label, *manufacturer, *model, *serial;
    unsigned long flags;          /* CK_TOKEN_INFO.flags */
    const char *family;           /* token family from tokens/, or NULL */
    const char *family_notes;     /* its notes, or NULL */
    const struct keytype *gen[8]; /* key types it can generate, NULL-terminated */
};

/*
 * Visit every token of every module (module_path NULL: the p11-kit
 * registry, skipping modules that fail to start, with a note under -v).
 * The description is borrowed for the callback's duration; the callback
 * returns 0 to go on.  Returns 0, the callback's non-zero value, or -1
 * after reporting (no module could be loaded).
 */
int token_enumerate(const char *module_path,
    int (*cb)(const struct token_desc *desc, void *arg), void *arg);

#endif
