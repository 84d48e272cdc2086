/* cmd_keygen.c - p11enroll keygen: a non-extractable key pair on the token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cmdopt.h"
#include "commands.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll keygen --token URI --label L --type T [--id HEX] [--pubout F] [--json]\n"
    "\n"
    "Generate a key pair inside the token.  The private key is created sensitive,\n"
    "never extractable and for signing only; both halves share the label and a\n"
    "CKA_ID (16 random bytes unless --id).  The flags are read back after\n"
    "generation: a pair the token did not protect is destroyed and the command\n"
    "fails.  A label or id already in use is refused.\n"
    "\n"
    "  --token URI            PKCS#11 URI of the token (pkcs11:token=edge)\n"
    "  --label L              the key's label (CKA_LABEL)\n"
    "  --type T               rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 ed25519\n"
    "  --id HEX               the key's CKA_ID in hex (default: random)\n"
    "  --pubout F             also write the public key (PEM) to F\n"
    "  --json                 print the result as JSON\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done, 1 token or PIN failure, label or id taken, 2 usage error.\n";

enum { OPT_LABEL = CMDOPT_OWN, OPT_TYPE, OPT_ID, OPT_PUBOUT };

static const struct option opts[] = {
    { "token", required_argument, NULL, CMDOPT_TOKEN },
    { "label", required_argument, NULL, OPT_LABEL },
    { "type", required_argument, NULL, OPT_TYPE },
    { "id", required_argument, NULL, OPT_ID },
    { "pubout", required_argument, NULL, OPT_PUBOUT },
    { "json", no_argument, NULL, CMDOPT_JSON },
    { "help", no_argument, NULL, CMDOPT_HELP },
    CMDOPT_TOKEN_ROWS,
    { NULL, 0, NULL, 0 },
};

/* The command line, and what check_args() makes of it. */
struct keygen_args {
    struct token_opts to;
    const char *label, *typestr, *idhex, *pubout;
    bool json;
    const struct keytype *type;
    uint8_t *id;                /* owned: free() */
    size_t idlen;
};

/* cmdopt_parse() callback for keygen's own options. */
static int
keygen_opt(int id, const char *arg, void *ctx)
{
    struct keygen_args *a = ctx;

    switch (id) {
    case OPT_LABEL: a->label = arg; break;
    case OPT_TYPE: a->typestr = arg; break;
    case OPT_ID: a->idhex = arg; break;
    case OPT_PUBOUT: a->pubout = arg; break;
    }
    return 0;
}

/*
 * Everything that can be refused before the token is touched: required
 * options, the key type, the label, --pubout's directory, --id's hex.
 * Returns 0 with a->type and a->id set, or -1 after reporting.
 */
static int
check_args(struct keygen_args *a)
{
    json_t *probe = NULL;
    int rc = -1;

    if (a->to.uri == NULL || a->label == NULL || a->typestr == NULL)
        cmdopt_usage_error("--token, --label and --type are required");
    else if ((a->type = keytype_parse(a->typestr)) == NULL)
        err_input("E_KEY_TYPE", "--type %s: unknown key type (one of %s)", a->typestr,
            keytype_all());
    else if (*a->label == '\0' || strlen(a->label) > 255 ||
             (probe = json_string(a->label)) == NULL)
        err_input("E_LABEL", "--label: must be 1 to 255 bytes of UTF-8");
    else if (a->pubout != NULL && file_writable(a->pubout, "--pubout") == -1)
        ;
    else if (a->idhex != NULL && (hex_decode(a->idhex, &a->id, &a->idlen) == -1 || a->idlen > 64))
        err_input("E_ID", "--id %s: not hex, or longer than 64 bytes", a->idhex);
    else
        rc = 0;
    json_decref(probe);
    return rc;
}

/* Write the new key's public half to `path` (PEM).  Returns 0 or -1 after reporting. */
static int
write_pubout(struct token_key *key, const char *path)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem;
    long n;
    int rc = -1;

    if (b != NULL && PEM_write_bio_PUBKEY(b, token_key_public(key)) &&
        (n = BIO_get_mem_data(b, &pem)) > 0)
        rc = write_file_atomic(path, pem, (size_t)n, 0644);
    else
        err_runtime("E_CRYPTO", "encoding the public key failed");
    BIO_free(b);
    return rc;
}

/* Print the new key: one JSON object, or aligned lines. */
static void
print_key(const struct keygen_args *a, struct token *tok, struct token_key *key)
{
    size_t kidlen;
    const uint8_t *kid = token_key_id(key, &kidlen);
    char *kidhex = hex_encode(kid, kidlen), extra[64];
    /* token_keygen() verified the protection; only the usages are news. */
    struct token_key_flags f = { .sensitive = true, .local = true };
    json_t *usages;

    if (token_key_flags(tok, key, &f) == -1)
        err_clear();
    usages = cmdopt_extra_usages(&f, extra, sizeof(extra));
    if (token_wrap_ignores_extractable(tok))
        warnmsg("token %s exports private keys through C_WrapKey although they are marked "
            "not extractable (tokens/ profile: wrap-ignores-extractable): anyone with the "
            "PIN can copy key %s", token_label(tok), a->label);
    if (a->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:b, s:b, s:b}, s:o}",
            "uri", token_key_uri(key), "token", token_uri(tok), "label", a->label,
            "id", kidhex ? kidhex : "", "type", a->type->name,
            "spki_sha256", token_key_spki_sha256(key),
            "flags", "sensitive", 1, "extractable", 0, "local", 1, "extra_usages", usages);
        if (a->pubout != NULL)
            json_object_set_new(o, "pubout", json_string(a->pubout));
        json_object_set_new(o, "wrap_ignores_extractable",
            json_boolean(token_wrap_ignores_extractable(tok)));
        cmdopt_print_json(o);
    } else {
        printf("key          %s\n", token_key_uri(key));
        printf("type         %s\n", a->type->name);
        printf("id           %s\n", kidhex ? kidhex : "");
        printf("spki-sha256  %s\n", token_key_spki_sha256(key));
        printf("protection   sensitive, never extractable, generated on the token\n");
        if (extra[0] != '\0')
            printf("usages       sign; the token also allows: %s\n", extra);
        json_decref(usages);
        if (a->pubout != NULL)
            printf("public key   %s\n", a->pubout);
    }
    free(kidhex);
}

int
cmd_keygen(int argc, char **argv)
{
    struct keygen_args a = { .to = { .login = true } };
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = usage, .token = &a.to, .json = &a.json,
        .on_opt = keygen_opt, .ctx = &a,
    };
    struct token *tok = NULL;
    struct token_key *key = NULL;
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    rc = EXIT_DONE;
    if (check_args(&a) == -1 || token_open(&a.to, &tok) == -1 ||
        token_keygen(tok, a.type, a.label, a.id, a.idlen, &key) == -1)
        goto fail;
    if (a.pubout != NULL && write_pubout(key, a.pubout) == -1) {
        /* A command that fails leaves no key behind. */
        if (token_destroy_key(tok, key) > 0)
            warnmsg("the new key %s was destroyed again", a.label);
        goto fail;
    }
    print_key(&a, tok, key);
    goto out;
fail:
    rc = cmdopt_fail(a.json);
out:
    token_key_free(key);
    token_close(tok);
    free(a.id);
    return rc;
}
