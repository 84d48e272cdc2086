/*
 * acme_enroll.h - `enroll` with [ca] type = acme: the profile's ACME
 * settings, the account key on the token, the order, and installing the
 * certificate through enroll.h.
 */
#ifndef P11E_ACME_ENROLL_H
#define P11E_ACME_ENROLL_H

#include "enroll.h"

/* Check the [ca] settings before any token or network I/O (exit 2 on error). */
int acme_enroll_check(struct enroll *e);

/*
 * The run's ACME client for [ca] directory and ca-bundle: made on first
 * use and kept in e->acme (freed by enroll_free()), so ARI and the order
 * share one connection and one directory fetch.  Returns it (borrowed), or
 * NULL after reporting.
 */
struct acme_client *acme_enroll_client(struct enroll *e);

/*
 * Order, validate, finalize with a CSR signed on the token (e->key), and
 * install the certificate: enroll_install(), or with `stage_fullchain`
 * set enroll_install_staged() to that file.  Prints nothing and runs no
 * hook: the caller prints *res and runs enroll_deploy_hook().  0 and *res
 * (enroll_result_clear()), or -1 after reporting.
 */
int acme_enroll_run(struct enroll *e, const char *stage_fullchain, struct enroll_result *res);

/*
 * The label of the ACME account key: the object= of [ca] account-key (which
 * must name the profile's open token), or the default.  0 and *label
 * (caller frees), or -1 after reporting.
 */
int acme_account_label(struct enroll *e, char **label);

#endif
