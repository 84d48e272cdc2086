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
    bool no_cka_local;     /* generated keys never report CKA_LOCAL (NSS) */
    bool objects_left_loaded; /* a failed keygen leaves objects loaded (TPM) */
    bool wrap_ignores_extractable; /* C_WrapKey exports a CKA_EXTRACTABLE=false key (NSS) */
    bool serial_shared;    /* every token reports the same serial: select by label */
    char *library_manufacturer; /* glob matched against CK_INFO.manufacturerID */
    char *library_description;  /* glob matched against CK_INFO.libraryDescription */
    char *module;          /* glob matched against the module file's base name */
};

/* What identifies a module and token; every string blank- and NUL-trimmed. */
struct tokenfam_ident {
    const char *library_manufacturer;  /* CK_INFO.manufacturerID */
    const char *library_description;   /* CK_INFO.libraryDescription */
    const char *module;                /* the module's file name (a path is fine) */
    const char *manufacturer;          /* CK_TOKEN_INFO.manufacturerID */
    const char *model;                 /* CK_TOKEN_INFO.model */
};

/*
 * The family of a module and token, or NULL.  A family matches when every
 * glob it sets (library-manufacturer, library-description, module,
 * manufacturer, model) matches; when several match, the one setting the
 * most wins, ties going to the first file name.  The profiles are read
 * once, from $P11ENROLL_TOKENS_DIR if set, else from the installed
 * directory (share/p11enroll/tokens); the result is borrowed.
 */
const struct token_family *tokenfam_find(const struct tokenfam_ident *id);

/*
 * Could a family that sets library-manufacturer or library-description
 * match, judging by the rest of `id`?  Only then is the module's CK_INFO
 * worth a C_GetInfo (a round trip on a network HSM).
 */
bool tokenfam_needs_library(const struct tokenfam_ident *id);

#endif
