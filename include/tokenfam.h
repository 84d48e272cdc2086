/*
 * tokenfam.h - token families and their known quirks, from the profiles in
 * tokens/ (installed to share/p11enroll/tokens).
 */
#ifndef P11E_TOKENFAM_H
#define P11E_TOKENFAM_H

#include <stdbool.h>

struct token_family {
    char *id;            /* file name without .conf: "softhsm2" */
    char *name;          /* "SoftHSM 2" */
    char *manufacturer;  /* glob matched against CK_TOKEN_INFO.manufacturerID */
    char *model;         /* glob matched against CK_TOKEN_INFO.model */
    char *keytypes;      /* key types the family can generate, as documented */
    char *notes;         /* one paragraph for `tokens` */
    bool label_immutable;  /* C_SetAttributeValue(CKA_LABEL) is refused */
    bool no_public_key_object; /* the public key is only in the certificate */
};

/*
 * The family whose manufacturer and model globs match, or NULL.  The
 * profiles are read once, from $P11ENROLL_TOKENS_DIR if set, else from the
 * installed directory (share/p11enroll/tokens); the result is borrowed.
 */
const struct token_family *tokenfam_match(const char *manufacturer, const char *model);

#endif
