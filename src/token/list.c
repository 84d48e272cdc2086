/*
 * list.c - walking what is there: every private key on an open token (for
 * `keys`) and every token of every module (for `tokens`).
 */
#include "token_int.h"
#include "token_list.h"

#include <stdio.h>
#include <stdlib.h>

#include "tokenfam.h"
#include "util.h"

int
token_each_key(struct token *tok, int (*cb)(struct token *, struct token_key *, void *),
    void *arg)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
    CK_OBJECT_HANDLE *all = NULL;
    CK_ULONG n = 0, cap = 0, got;
    CK_RV rv;
    int rc = -1;

    if ((rv = tok->fn->C_FindObjectsInit(tok->session, &tmpl, 1)) != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjectsInit: %s", tok->label, token_rv_text(rv));
        return -1;
    }
    for (;;) {
        if (n + 64 > cap) {
            CK_OBJECT_HANDLE *p = realloc(all, (cap + 256) * sizeof(*all));
            if (p == NULL)
                break;
            all = p;
            cap += 256;
        }
        rv = tok->fn->C_FindObjects(tok->session, all + n, 64, &got);
        if (rv != CKR_OK || got == 0)
            break;
        n += got;
    }
    tok->fn->C_FindObjectsFinal(tok->session);
    if (rv != CKR_OK) {
        err_runtime("E_TOKEN", "token %s: C_FindObjects: %s", tok->label, token_rv_text(rv));
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        struct token_key *key;
        if (tok_load_key(tok, all[i], &key) == -1) {
            /* A key we cannot use is listed by the caller as unusable, not fatal. */
            warnmsg("skipping one private key on token %s", tok->label);
            err_clear();
            continue;
        }
        int r = cb(tok, key, arg);
        token_key_free(key);
        if (r != 0)
            goto out;
    }
    rc = 0;
out:
    free(all);
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
