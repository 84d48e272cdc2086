/*
 * acme_int.h - what the files of the ACME client (src/acme/) share and no
 * one else sees: limits, the client object, the state of one issuance run,
 * and the challenge set-up the authorization loop drives.
 */
#ifndef P11E_ACME_INT_H
#define P11E_ACME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "acme.h"
#include "http.h"

#define ACME_BODY_CAP       (1024 * 1024)
#define ACME_CHAIN_CAP      (256 * 1024)
#define ACME_DIR_CAP        (64 * 1024)
#define ACME_NONCE_RETRIES  20  /* badNonce retries per request */
#define ACME_URL_MAX        2048
#define ACME_TOKEN_MAX      256
#define ACME_POLL_START_MS  5     /* a CA with nothing to do answers at once */
#define ACME_POLL_MAX_MS    5000
#define ACME_RETRY_AFTER_MAX 60
#define ACME_PROBLEM_MAX    1024

/* One per run: one HTTP handle (one TLS connection) and one directory fetch. */
struct acme_client {
    char *directory_url;
    char *allow_origins;        /* [ca] allow-origins, or NULL */
    bool allow_http;
    struct http *http;
    struct acme_directory dir;
    bool have_dir;              /* dir fetched and parsed */
};

/* One acme_issue() run. */
struct acme {
    const struct acme_config *cfg;
    const struct jws_signer *signer;
    struct acme_client *client;     /* borrowed */
    struct http *http;              /* client->http */
    const struct acme_directory *dir;   /* client->dir */
    bool allow_http;                /* client->allow_http */
    char *nonce;
    char *kid;              /* account URL */
    char *thumbprint;
    bool reregistered;
};

/* A pending authorization and the challenge we answer for it. */
struct pending {
    char *authz_url;
    char *name;
    bool wildcard;
    char *chall_url;
    enum acme_status chall_status;
    char *token;
    char *keyauth;
    bool done;
    bool published;     /* file written / hook "add" attempted: undo it */
};

/* The status's name ("pending"), "unknown" when out of range. */
const char *acme_status_name(enum acme_status s);

/*
 * The directory, fetched through c on first use and kept for the run.
 * Returns 0 and a borrowed *dir, or -1 after reporting (transport, HTTP
 * status with its problem document, malformed directory); a failed fetch
 * is tried again by the next call.
 */
int acme_client_directory(struct acme_client *c, const struct acme_directory **dir);

/*
 * 0 when `url` (NULL: nothing to check) has the directory's origin or one
 * of [ca] allow-origins; else -1 after reporting E_ACME_ORIGIN (exit 1),
 * `what` naming the URL's role.  The _directory form checks every URL of
 * a parsed directory.
 */
int acme_origin_check(const struct acme_client *c, const char *url, const char *what);
int acme_origin_check_directory(const struct acme_client *c, const struct acme_directory *d);

/* Report a failed response: its problem document, else its HTTP status. */
void acme_report_response(const char *what, const struct http_response *r);

/*
 * A signed POST (payload NULL: POST-as-GET), retried on badNonce.
 * use_jwk: sign with the JWK (newAccount), else with the account URL.
 * Returns 0 with *resp for any status (caller judges), or -1 after reporting.
 */
int acme_post(struct acme *a, const char *url, const char *payload, bool use_jwk,
    size_t cap, const char *accept, struct http_response *resp);
/* POST-as-GET a resource that must answer 200: 0 and *r, or -1 after reporting. */
int acme_fetch(struct acme *a, const char *url, const char *what, struct http_response *r);
/* POST-as-GET and parse an order; *retry_after (optional) gets its Retry-After. */
int acme_fetch_order(struct acme *a, const char *url, struct acme_order *o,
    long *retry_after);
/*
 * Sleep before the next poll: *backoff_ms (then doubled, capped) or the
 * server's Retry-After (capped) when longer.  -1 after reporting E_TIMEOUT
 * when the wait would pass the run's deadline.
 */
int acme_poll_wait(struct acme *a, long retry_after, long *backoff_ms, const char *what);

/*
 * Answer the pending authorizations of the order at url (*o, as fetched)
 * and wait until the order leaves "pending" (*o is refreshed).  0, or -1
 * after reporting (the failed challenge and the CA's reason).
 */
int acme_authorize(struct acme *a, const char *url, struct acme_order *o);

/* Milliseconds left before the run's deadline (the client's; may be <= 0). */
long acme_time_left_ms(const struct acme *a);

/*
 * Publish every pending challenge response (built-in responder, webroot
 * files or dns-hook add).  0, or -1 after reporting; what was published
 * stays marked for acme_challenges_unpublish(), which always runs after,
 * reports problems as warnings and never fails.
 */
int acme_challenges_publish(struct acme *a, struct pending *p, size_t n,
    struct acme_responder **rs);
void acme_challenges_unpublish(struct acme *a, struct pending *p, size_t n,
    struct acme_responder *rs);
/* Free n pending entries and the array.  Accepts NULL. */
void acme_pending_free(struct pending *p, size_t n);

#endif
