/*
 * keytype.h - the key types p11enroll generates and signs with (pure code).
 */
#ifndef P11E_KEYTYPE_H
#define P11E_KEYTYPE_H

#include <stdbool.h>

enum key_alg { KEY_RSA, KEY_EC, KEY_ED25519 };

struct keytype {
    enum key_alg alg;
    unsigned bits;          /* RSA modulus bits, EC field bits, 255 for Ed25519 */
    const char *name;       /* canonical spelling: "rsa:2048", "ec:p256", "ed25519" */
    const char *curve;      /* OpenSSL group name for EC ("prime256v1"), else NULL */
};

/*
 * Parse a key type as written in cli.md ("rsa:2048", "ec:p256", "ed25519").
 * Returns the static description, or NULL when the spelling is unknown.
 */
const struct keytype *keytype_parse(const char *s);

/* The static description for an algorithm and size, or NULL if unsupported. */
const struct keytype *keytype_lookup(enum key_alg alg, unsigned bits);

/* Comma-separated list of every supported spelling, for error messages. */
const char *keytype_all(void);

#endif
