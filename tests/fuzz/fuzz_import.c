/*
 * fuzz_import.c - libFuzzer target: certificate and chain input to `import`.
 *
 * `p11enroll import --cert F --chain G` reads both files with cert_read(),
 * which is cert_parse() over the file's bytes (PEM bundle or DER, at most
 * 1 MiB), then checks the chain with cert_check_chain().  The target runs
 * the same two steps on arbitrary bytes, the input split in two at its first
 * byte so a --cert and a --chain are fuzzed together.  Built and run by
 * scripts/fuzz with ASan, UBSan and LSan.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "csr.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509 *leaf = NULL, *extra = NULL;
    STACK_OF(X509) *chain = NULL, *more = NULL;
    size_t cut = size > 0 ? data[0] : 0;

    if (size > 0) {
        data++;
        size--;
    }
    if (cut > size)
        cut = size;
    /* The whole input as one --cert file, as import reads it. */
    if (cert_parse(data, size, "--cert", &leaf, &chain) == 0) {
        if (leaf == NULL)
            abort();    /* success promises a leaf */
        if (chain != NULL)
            (void)cert_check_chain(leaf, chain);
    }
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    leaf = NULL;
    chain = NULL;
    /* A --cert and a --chain: the chain's certificates follow the cert's. */
    if (cert_parse(data, cut, "--cert", &leaf, &chain) == 0 &&
        cert_parse(data + cut, size - cut, "--chain", &extra, &more) == 0) {
        if (chain == NULL)
            chain = sk_X509_new_null();
        if (chain != NULL && sk_X509_push(chain, extra) > 0) {
            extra = NULL;   /* transferred */
            while (sk_X509_num(more) > 0)
                sk_X509_push(chain, sk_X509_shift(more));
            (void)cert_check_chain(leaf, chain);
        }
    }
    X509_free(leaf);
    X509_free(extra);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(more, X509_free);
    err_clear();
    return 0;
}
