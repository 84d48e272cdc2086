/* keytype.c - the table of supported key types. */
#include "keytype.h"

#include <stddef.h>
#include <string.h>

static const struct keytype types[] = {
    { KEY_RSA, 2048, "rsa:2048", NULL },
    { KEY_RSA, 3072, "rsa:3072", NULL },
    { KEY_RSA, 4096, "rsa:4096", NULL },
    { KEY_EC, 256, "ec:p256", "prime256v1" },
    { KEY_EC, 384, "ec:p384", "secp384r1" },
    { KEY_EC, 521, "ec:p521", "secp521r1" },
    { KEY_ED25519, 255, "ed25519", NULL },
};

const struct keytype *
keytype_parse(const char *s)
{
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(types[i].name, s) == 0)
            return &types[i];
    return NULL;
}

const struct keytype *
keytype_lookup(enum key_alg alg, unsigned bits)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (types[i].alg == alg && types[i].bits == bits)
            return &types[i];
    return NULL;
}

const char *
keytype_all(void)
{
    return "rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384, ec:p521, ed25519";
}
