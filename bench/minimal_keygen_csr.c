/*
 * minimal_keygen_csr.c - the floor p11enroll's keygen + CSR is measured
 * against (issue 12): raw PKCS#11 through dlopen of the module, in one
 * process, making only the calls the operation needs, and a PKCS#10 request
 * built with OpenSSL and signed on the token.
 *
 * usage: minimal_keygen_csr [-c] [-n N] MODULE TOKEN-LABEL KEY-LABEL TYPE OUT CN [SAN...]
 *   TYPE  ec:p256 or rsa:2048;  PIN from $P11ENROLL_PIN;  OUT gets the PEM CSR.
 *   -c    first checks that no object has the label KEY-LABEL (one search:
 *         C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal), the check
 *         p11enroll makes because a taken label is an error (cli.md).  On
 *         SoftHSM's file store every search opens every object file, so this
 *         is the floor p11enroll's time on a full token is measured against.
 *   -n N  generates N key pairs (labels KEY-LABEL-1 ... -N, the last one signs):
 *         the bench fills a token with 1 000 keys this way in one session.
 *
 * Calls: C_GetFunctionList, C_Initialize, C_GetSlotList x2 (count, list),
 * C_GetTokenInfo per slot until the label matches, C_OpenSession, C_Login,
 * C_GenerateKeyPair, C_GetAttributeValue (public key, buffers pre-sized so no
 * length query), C_SignInit, C_Sign (buffer pre-sized), C_Logout,
 * C_CloseSession, C_Finalize.  The CKA_ID is 16 random bytes from OpenSSL, so
 * neither a clash search nor C_GenerateRandom is needed.  The private key is
 * sensitive, non-extractable and sign-only; nothing secret is ever read.
 * Exit 0 on success, 1 on a failure (one line on stderr), 2 on usage.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

/* A generated key pair's public half, as read from the token. */
struct pub {
    int ec;
    CK_BYTE point[160];             /* EC: CKA_EC_POINT (DER OCTET STRING) */
    CK_BYTE mod[512], exp[16];      /* RSA: CKA_MODULUS, CKA_PUBLIC_EXPONENT */
    CK_ULONG point_len, mod_len, exp_len;
};

static CK_FUNCTION_LIST *f;

/* Prints "minimal: WHAT: rv 0x..." and returns -1 when rv is not CKR_OK. */
static int
ck(CK_RV rv, const char *what)
{
    if (rv == CKR_OK)
        return 0;
    fprintf(stderr, "minimal: %s: rv 0x%lx\n", what, (unsigned long)rv);
    return -1;
}

/* Loads MODULE, initialises it and finds the slot whose token is LABEL. */
static int
open_token(const char *module, const char *label, CK_SLOT_ID *slot)
{
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_TOKEN_INFO ti;
    char want[32];
    void *lib;
    int rc = -1;

    if ((lib = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL ||
        (get = (CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList")) == NULL) {
        fprintf(stderr, "minimal: cannot load %s\n", module);
        return -1;
    }
    if (ck(get(&f), "C_GetFunctionList") < 0 || ck(f->C_Initialize(NULL), "C_Initialize") < 0 ||
        ck(f->C_GetSlotList(CK_TRUE, NULL, &n), "C_GetSlotList") < 0)
        return -1;
    if (n == 0 || (slots = calloc(n, sizeof(*slots))) == NULL ||
        ck(f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList") < 0)
        goto out;
    memset(want, ' ', sizeof(want));
    memcpy(want, label, strnlen(label, sizeof(want)));
    for (i = 0; i < n; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, want, 32) == 0) {
            *slot = slots[i];
            rc = 0;
            goto out;
        }
    }
    fprintf(stderr, "minimal: no token labelled %s\n", label);
out:
    free(slots);
    return rc;
}

/* Generates a sign-only, sensitive, non-extractable key pair labelled LABEL
 * with a random 16-byte CKA_ID, and reads its public half in one call. */
static int
generate(CK_SESSION_HANDLE s, int ec, const char *label, CK_OBJECT_HANDLE *priv, struct pub *pub)
{
    static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    static CK_BYTE e65537[] = { 0x01, 0x00, 0x01 };
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048, lablen = strlen(label);
    CK_BYTE id[16];
    CK_MECHANISM mech = { ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    CK_ATTRIBUTE pubt[] = {
        { CKA_TOKEN, &yes, 1 }, { CKA_VERIFY, &yes, 1 }, { CKA_ENCRYPT, &no, 1 },
        { CKA_WRAP, &no, 1 }, { CKA_ID, id, sizeof(id) }, { CKA_LABEL, (void *)label, lablen },
        { ec ? CKA_EC_PARAMS : CKA_MODULUS_BITS, ec ? (void *)p256 : (void *)&bits,
          ec ? sizeof(p256) : sizeof(bits) },
        { CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537) },
    };
    CK_ATTRIBUTE privt[] = {
        { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 }, { CKA_SENSITIVE, &yes, 1 },
        { CKA_EXTRACTABLE, &no, 1 }, { CKA_SIGN, &yes, 1 }, { CKA_DECRYPT, &no, 1 },
        { CKA_UNWRAP, &no, 1 }, { CKA_DERIVE, &no, 1 }, { CKA_ID, id, sizeof(id) },
        { CKA_LABEL, (void *)label, lablen },
    };
    CK_ATTRIBUTE ecget[] = { { CKA_EC_POINT, pub->point, sizeof(pub->point) } };
    CK_ATTRIBUTE rsaget[] = { { CKA_MODULUS, pub->mod, sizeof(pub->mod) },
                              { CKA_PUBLIC_EXPONENT, pub->exp, sizeof(pub->exp) } };
    CK_OBJECT_HANDLE pubh;

    if (RAND_bytes(id, sizeof(id)) != 1)
        return -1;
    if (ck(f->C_GenerateKeyPair(s, &mech, pubt, ec ? 7 : 8, privt, 10, &pubh, priv),
           "C_GenerateKeyPair") < 0)
        return -1;
    pub->ec = ec;
    if (ec) {
        if (ck(f->C_GetAttributeValue(s, pubh, ecget, 1), "C_GetAttributeValue") < 0)
            return -1;
        pub->point_len = ecget[0].ulValueLen;
    } else {
        if (ck(f->C_GetAttributeValue(s, pubh, rsaget, 2), "C_GetAttributeValue") < 0)
            return -1;
        pub->mod_len = rsaget[0].ulValueLen;
        pub->exp_len = rsaget[1].ulValueLen;
    }
    return 0;
}

/* The public key as an OpenSSL EVP_PKEY (caller frees), or NULL. */
static EVP_PKEY *
to_pkey(const struct pub *pub)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, pub->ec ? "EC" : "RSA", NULL);
    ASN1_OCTET_STRING *os = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pk = NULL;
    const unsigned char *p = pub->point;

    if (b == NULL || ctx == NULL)
        goto out;
    if (pub->ec) {
        /* SoftHSM returns the point DER-wrapped in an OCTET STRING. */
        if ((os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)pub->point_len)) == NULL ||
            !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, os->data, (size_t)os->length))
            goto out;
    } else {
        n = BN_bin2bn(pub->mod, (int)pub->mod_len, NULL);
        e = BN_bin2bn(pub->exp, (int)pub->exp_len, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e))
            goto out;
    }
    if ((params = OSSL_PARAM_BLD_to_param(b)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    ASN1_OCTET_STRING_free(os);
    BN_free(n);
    BN_free(e);
    return pk;
}

/* The unsigned request: subject CN, subjectAltName dNSNames, public key. */
static X509_REQ *
build_req(EVP_PKEY *pk, const char *cn, char **sans, int nsans)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = NULL;
    int i, ok = 0;

    if (req == NULL || name == NULL || gens == NULL || exts == NULL ||
        X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_pubkey(req, pk) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1)
        goto out;
    for (i = 0; i < nsans; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();

        if (g == NULL || s == NULL || ASN1_STRING_set(s, sans[i], -1) != 1) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(gens, g);
    }
    if (nsans > 0 && ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
                      !sk_X509_EXTENSION_push(exts, ext) || X509_REQ_add_extensions(req, exts) != 1))
        goto out;
    ok = 1;
out:
    X509_NAME_free(name);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!ok) {
        X509_REQ_free(req);
        req = NULL;
    }
    return req;
}

/* Signs the request's TBS part with PRIV on the token (ECDSA over the SHA-256
 * digest, or CKM_SHA256_RSA_PKCS over the data) and attaches the signature. */
static int
sign_req(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, int ec, X509_REQ *req)
{
    CK_MECHANISM mech = { ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, NULL, 0 };
    unsigned char *tbs = NULL, *der = NULL, dgst[32], sig[512];
    CK_ULONG siglen = sizeof(sig);
    ECDSA_SIG *es = NULL;
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    int tbslen, derlen = 0, rc = -1;
    unsigned int dlen = sizeof(dgst);

    if (bits == NULL || alg == NULL || (tbslen = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0)
        goto out;
    if (ec && EVP_Digest(tbs, (size_t)tbslen, dgst, &dlen, EVP_sha256(), NULL) != 1)
        goto out;
    if (ck(f->C_SignInit(s, &mech, priv), "C_SignInit") < 0 ||
        ck(f->C_Sign(s, ec ? dgst : tbs, ec ? dlen : (CK_ULONG)tbslen, sig, &siglen), "C_Sign") < 0)
        goto out;
    if (ec) {
        /* PKCS#11 gives r || s; X.509 wants a DER ECDSA-Sig-Value. */
        if ((es = ECDSA_SIG_new()) == NULL || siglen != 64 ||
            ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)) != 1 ||
            (derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
            goto out;
    }
    if (ASN1_BIT_STRING_set(bits, ec ? der : sig, ec ? derlen : (int)siglen) != 1)
        goto out;
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;   /* no unused bits */
    if (X509_ALGOR_set0(alg, OBJ_nid2obj(ec ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption),
                        ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) != 1 ||
        X509_REQ_set1_signature_algo(req, alg) != 1)
        goto out;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;   /* transferred */
    rc = 0;
out:
    OPENSSL_free(tbs);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    return rc;
}

/* Builds, signs on the token and writes the PEM request to OUT. */
static int
write_csr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, const struct pub *pub, const char *out,
          const char *cn, char **sans, int nsans)
{
    EVP_PKEY *pk = to_pkey(pub);
    X509_REQ *req = pk ? build_req(pk, cn, sans, nsans) : NULL;
    FILE *fp = NULL;
    int rc = -1;

    if (req == NULL || sign_req(s, priv, pub->ec, req) < 0)
        goto out;
    if ((fp = fopen(out, "w")) == NULL || PEM_write_X509_REQ(fp, req) != 1)
        goto out;
    rc = 0;
out:
    if (fp != NULL && fclose(fp) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "minimal: cannot build or write the request to %s\n", out);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    return rc;
}

/* Is an object labelled LABEL on the token?  1, 0, or -1 on a failure. */
static int
label_taken(CK_SESSION_HANDLE s, const char *label)
{
    CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
    CK_OBJECT_HANDLE h;
    CK_ULONG found = 0;

    if (ck(f->C_FindObjectsInit(s, &t, 1), "C_FindObjectsInit") < 0)
        return -1;
    if (ck(f->C_FindObjects(s, &h, 1, &found), "C_FindObjects") < 0)
        found = (CK_ULONG)-1;
    if (ck(f->C_FindObjectsFinal(s), "C_FindObjectsFinal") < 0)
        return -1;
    if (found == (CK_ULONG)-1)
        return -1;
    if (found > 0)
        fprintf(stderr, "minimal: the label %s is taken\n", label);
    return found > 0;
}

int
main(int argc, char **argv)
{
    const char *pin = getenv("P11ENROLL_PIN");
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    struct pub pub;
    char label[256];
    long i, n = 1;
    int ec, check = 0, rc = 1;

    if (argc > 1 && strcmp(argv[1], "-c") == 0) {
        check = 1;
        argc--;
        argv++;
    }
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        n = strtol(argv[2], NULL, 10);
        argc -= 2;
        argv += 2;
    }
    if (argc < 7 || n < 1 || pin == NULL ||
        (strcmp(argv[4], "ec:p256") != 0 && strcmp(argv[4], "rsa:2048") != 0)) {
        fprintf(stderr, "usage: P11ENROLL_PIN=PIN minimal_keygen_csr [-c] [-n N] MODULE TOKEN-LABEL"
                        " KEY-LABEL ec:p256|rsa:2048 OUT CN [SAN...]\n");
        return 2;
    }
    ec = argv[4][0] == 'e';
    if (open_token(argv[1], argv[2], &slot) < 0 ||
        ck(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
           "C_OpenSession") < 0)
        return 1;
    if (ck(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login") < 0)
        goto close;
    for (i = 1; i <= n; i++) {
        if (n > 1)
            snprintf(label, sizeof(label), "%s-%ld", argv[3], i);
        else
            snprintf(label, sizeof(label), "%s", argv[3]);
        if (check && label_taken(s, label) != 0)
            goto logout;
        if (generate(s, ec, label, &priv, &pub) < 0)
            goto logout;
    }
    if (write_csr(s, priv, &pub, argv[5], argv[6], argv + 7, argc - 7) == 0)
        rc = 0;
logout:
    f->C_Logout(s);
close:
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    return rc;
}
