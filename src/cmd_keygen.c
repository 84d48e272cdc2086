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

int
cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        { "token", required_argument, NULL, 't' },
        { "label", required_argument, NULL, 'l' },
        { "type", required_argument, NULL, 'T' },
        { "id", required_argument, NULL, 'i' },
        { "pubout", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts to = { .login = true };
    const char *label = NULL, *typestr = NULL, *idhex = NULL, *pubout = NULL;
    const struct keytype *type;
    uint8_t *id = NULL;
    size_t idlen = 0;
    struct token *tok = NULL;
    struct token_key *key = NULL;
    bool json = false;
    json_t *probe = NULL;
    int c, rc = EXIT_DONE;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (cmdopt_token(c, optarg, &to))
            continue;
        switch (c) {
        case 't': to.uri = optarg; break;
        case 'l': label = optarg; break;
        case 'T': typestr = optarg; break;
        case 'i': idhex = optarg; break;
        case 'o': pubout = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_DONE;
        default:
            cmdopt_usage_error("unknown or incomplete option %s", argv[optind - 1]);
            return cmdopt_fail(json);
        }
    }
    if (optind < argc)
        cmdopt_usage_error("unexpected argument %s", argv[optind]);
    else if (to.uri == NULL || label == NULL || typestr == NULL)
        cmdopt_usage_error("--token, --label and --type are required");
    else if ((type = keytype_parse(typestr)) == NULL)
        err_input("E_KEY_TYPE", "--type %s: unknown key type (one of %s)", typestr,
            keytype_all());
    else if (*label == '\0' || strlen(label) > 255 || (probe = json_string(label)) == NULL)
        err_input("E_LABEL", "--label: must be 1 to 255 bytes of UTF-8");
    else if (pubout != NULL && file_writable(pubout, "--pubout") == -1)
        ;
    else if (idhex != NULL && (hex_decode(idhex, &id, &idlen) == -1 || idlen > 64))
        err_input("E_ID", "--id %s: not hex, or longer than 64 bytes", idhex);
    else
        goto run;
    free(id);
    json_decref(probe);
    return cmdopt_fail(json);

run:
    json_decref(probe);
    if (token_open(&to, &tok) == -1 || token_keygen(tok, type, label, id, idlen, &key) == -1)
        goto fail;
    if (pubout != NULL) {
        BIO *b = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        if (b == NULL || !PEM_write_bio_PUBKEY(b, token_key_public(key)) ||
            (n = BIO_get_mem_data(b, &pem)) <= 0 ||
            write_file_atomic(pubout, pem, (size_t)n, 0644) == -1) {
            BIO_free(b);
            /* A command that fails leaves no key behind. */
            if (token_destroy_key(tok, key) > 0)
                warnmsg("the new key %s was destroyed again", label);
            goto fail;
        }
        BIO_free(b);
    }
    size_t kidlen;
    const uint8_t *kid = token_key_id(key, &kidlen);
    char *kidhex = hex_encode(kid, kidlen);
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:b, s:b, s:b}}",
            "uri", token_key_uri(key), "token", token_uri(tok), "label", label,
            "id", kidhex ? kidhex : "", "type", type->name,
            "spki_sha256", token_key_spki_sha256(key),
            "flags", "sensitive", 1, "extractable", 0, "local", 1);
        if (pubout != NULL)
            json_object_set_new(o, "pubout", json_string(pubout));
        cmdopt_print_json(o);
    } else {
        printf("key          %s\n", token_key_uri(key));
        printf("type         %s\n", type->name);
        printf("id           %s\n", kidhex ? kidhex : "");
        printf("spki-sha256  %s\n", token_key_spki_sha256(key));
        printf("protection   sensitive, never extractable, generated on the token\n");
        if (pubout != NULL)
            printf("public key   %s\n", pubout);
    }
    free(kidhex);
    goto out;
fail:
    rc = cmdopt_fail(json);
out:
    token_key_free(key);
    token_close(tok);
    free(id);
    return rc;
}
