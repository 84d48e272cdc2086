/*
 * rotate_manual.h - the order step of a renewal for [ca] type = manual (an
 * enterprise or offline CA, such as AD CS): write the pending key's CSR,
 * run [hooks] csr-ready and wait; later, install the certificate the CA
 * issued (given to `import` or `renew --cert`) next to the pending key.
 * The rest of the rotation (switch, files, deploy, retire) is rotate.c's.
 */
#ifndef P11E_ROTATE_MANUAL_H
#define P11E_ROTATE_MANUAL_H

#include <stdbool.h>

#include <openssl/x509.h>

#include "rotate.h"

/* The profile's [ca] type is manual. */
bool rotate_is_manual(const struct profile *p);

/*
 * The order step for r->e->key (the pending key, or the current one with
 * rotate = no).  With r->issued: check it against the key and the plan and
 * install it (on the token; to the staging file `staged` when not NULL,
 * else to the [output] files).  Without: journal the CSR path, write the
 * CSR when the file is missing or not for this key, run [hooks] csr-ready
 * when it has not succeeded yet (or the CSR was written again), and set
 * r->waiting.  0, or -1 after reporting.
 */
int rotate_manual_order(struct rotate *r, const char *staged);

/*
 * A renewal past its order step is given `leaf` again (a rerun of the
 * completing import): it must be for the renewal's new key.  0, or -1
 * after reporting (E_CERT_KEY, token errors).
 */
int rotate_manual_check_done(struct rotate *r, X509 *leaf);

/* Remove the journalled CSR file of a renewal being abandoned (absent is fine). */
void rotate_manual_forget(struct rotate *r);

#endif
