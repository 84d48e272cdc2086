/* cmd_keys.c - p11enroll keys: private keys on a token and their certificates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdopt.h"
#include "commands.h"
#include "util.h"

static const char usage[] =
    "usage: p11enroll keys --token URI [--json]\n"
    "\n"
    "List the private keys on the token: label, id, type and size, whether the\n"
    "key is sensitive, never extractable and was generated on the token, and the\n"
    "certificate stored with the same CKA_ID (subject, notAfter), if any.\n"
    "\n"
    "  --token URI            PKCS#11 URI of the token\n"
    "  --json                 print a JSON object\n"
    CMDOPT_TOKEN_HELP
    "\n" CMDOPT_PIN_HELP
    "Exit codes: 0 done, 1 token or PIN failure, 2 usage error.\n";

struct listing {
    bool json;
    json_t *keys;
    size_t n;
};

static int
one_key(struct token *tok, struct token_key *key, const struct token_key_listing *kl, void *arg)
{
    struct listing *l = arg;
    const struct token_key_flags f = kl->flags;
    X509 *cert = kl->cert; /* borrowed */
    size_t idlen;
    const uint8_t *id = token_key_id(key, &idlen);
    char *idhex = hex_encode(id, idlen), *subject = NULL;
    char notafter[32] = "", extra[64];

    if (cert != NULL) {
        subject = cmdopt_subject(cert);
        cmdopt_time(X509_get0_notAfter(cert), notafter, sizeof(notafter));
    }
    if (l->json) {
        json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b}",
            "label", cmdopt_jstr(token_key_label(key)), "id", idhex ? idhex : "",
            "type", token_key_type_name(key), "uri", token_key_uri(key),
            "spki_sha256", token_key_spki_sha256(key),
            "sensitive", f.sensitive, "always_sensitive", f.always_sensitive,
            "extractable", f.extractable, "never_extractable", f.never_extractable,
            "local", f.local);
        json_object_set_new(o, "local_unrecorded", json_boolean(f.local_unrecorded));
        json_object_set_new(o, "extra_usages", cmdopt_extra_usages(&f, NULL, 0));
        json_object_set_new(o, "wrap_ignores_extractable",
            json_boolean(token_wrap_ignores_extractable(tok)));
        json_object_set_new(o, "certificate", cert == NULL ? json_null()
            : json_pack("{s:o, s:s}", "subject", cmdopt_jstr(subject ? subject : ""),
                "not_after", notafter));
        json_array_append_new(l->keys, o);
    } else {
        char *label = sanitize(token_key_label(key), 256);
        json_decref(cmdopt_extra_usages(&f, extra, sizeof(extra)));
        printf("%s\n  id %s, %s%s%s%s%s%s\n", label ? label : "?", idhex ? idhex : "",
            token_key_type_name(key), f.sensitive ? ", sensitive" : ", NOT sensitive",
            f.never_extractable && !f.extractable ? ", never extractable"
                : f.extractable ? ", EXTRACTABLE" : ", not extractable",
            f.local ? ", generated on the token"
                : f.local_unrecorded ? ", origin not recorded by this token" : ", imported",
            extra[0] ? ", can also " : "", extra);
        if (token_wrap_ignores_extractable(tok))
            printf("  WARNING: this token exports it through C_WrapKey (not extractable "
                "notwithstanding)\n");
        printf("  %s\n", token_key_uri(key));
        if (cert != NULL)
            printf("  certificate %s, expires %s\n", subject ? subject : "?", notafter);
        else
            printf("  no certificate\n");
        free(label);
    }
    l->n++;
    free(subject);
    free(idhex);
    return 0;
}

int
cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        { "token", required_argument, NULL, CMDOPT_TOKEN },
        { "json", no_argument, NULL, CMDOPT_JSON },
        { "help", no_argument, NULL, CMDOPT_HELP },
        CMDOPT_TOKEN_ROWS,
        { NULL, 0, NULL, 0 },
    };
    struct token_opts to = { .login = true };
    struct token *tok = NULL;
    struct listing l = { 0 };
    const struct cmdopt_spec spec = {
        .longopts = opts, .usage = usage, .token = &to, .json = &l.json,
    };
    int rc;

    if ((rc = cmdopt_parse(argc, argv, &spec)) != CMDOPT_RUN)
        return rc;
    if (to.uri == NULL) {
        cmdopt_usage_error("--token is required");
        return cmdopt_fail(l.json);
    }
    rc = EXIT_DONE;
    l.keys = json_array();
    if (token_open(&to, &tok) == -1 || token_each_key(tok, true, one_key, &l) == -1) {
        rc = cmdopt_fail(l.json);
    } else if (l.json) {
        cmdopt_print_json(json_pack("{s:s, s:o, s:O}", "token", token_uri(tok),
            "label", cmdopt_jstr(token_label(tok)), "keys", l.keys));
    } else if (l.n == 0) {
        printf("no private keys on token %s\n", token_label(tok));
    }
    json_decref(l.keys);
    token_close(tok);
    return rc;
}
