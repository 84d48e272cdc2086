/*
 * acme.h - the ACME client (RFC 8555): account, order, challenges, finalize,
 * download, and the CA's renewal information (RFC 9773).  It never touches
 * the token: requests are signed through a struct jws_signer and the CSR
 * comes from a caller callback.  One struct acme_client per run carries the
 * HTTP connection and the directory, so both are set up once.
 */
#ifndef P11E_ACME_H
#define P11E_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include <openssl/x509.h>

#include "jws.h"

struct renew_ari;
struct state;

/* The ACME server: what the client object is made from. */
struct acme_server {
    const char *directory_url;      /* [ca] directory (https) */
    const char *ca_bundle;          /* [ca] ca-bundle: the only trust anchors */
    unsigned request_timeout_s;     /* per HTTP request; 0: 30 */
    unsigned timeout_s;             /* [ca] timeout: the run's deadline, from
                                       acme_client_new(), for every request and
                                       wait (ARI included); 0: 120 */
    bool allow_http;                /* tests only: permit a plain-http directory */
    const char *allow_origins;      /* [ca] allow-origins: other origins the CA may use */
};

#define ACME_DEFAULT_TIMEOUT_S 120

/*
 * A client for one run: one HTTP handle (so one TLS connection serves
 * ARI and issuance alike) and the directory, fetched on first use and
 * kept.  The run's deadline (srv->timeout_s) starts now.  No network I/O here.  Returns 0 and *out (free with
 * acme_client_free(), which accepts NULL), or -1 after reporting
 * (err_input: directory not an https URL; curl failure).
 */
struct acme_client;
int acme_client_new(const struct acme_server *srv, struct acme_client **out);
void acme_client_free(struct acme_client *c);

enum acme_challenge_type { ACME_HTTP01, ACME_DNS01 };

struct acme_config {
    const char *contact;            /* [ca] contact ("mailto:..."), or NULL */
    const char *eab_kid;            /* [ca] eab-kid, or NULL */
    const uint8_t *eab_hmac;        /* decoded HMAC key (acme_read_eab_key) */
    size_t eab_hmac_len;
    enum acme_challenge_type challenge;
    const char *http_listen;        /* http-01 built-in responder "host:port" */
    const char *webroot;            /* http-01 webroot (used when http_listen is NULL) */
    const char *dns_hook;           /* dns-01: executable path, run (no shell, no PATH
                                       lookup, P11ENROLL_PIN removed) as
                                       HOOK add|remove _acme-challenge.NAME VALUE */
    const char *account_state;      /* file keeping the account URL, or NULL */
    const char *order_state;        /* file keeping the current order URL, or NULL */
    unsigned hook_timeout_s;        /* per dns-hook run; 0: 60 (within the deadline) */
    unsigned dns_wait_s;            /* [ca] dns-wait: after the dns-hook adds, wait this
                                       long for the records to propagate before the
                                       CA is asked to look; not counted in the deadline */
    const char *replaces;           /* ARI CertID of the certificate this order
                                       replaces (RFC 9773 §5), or NULL; sent only
                                       when the directory offers renewalInfo */
};

/*
 * Obtain a certificate for `names` (DNS names, wildcards as "*.example.com")
 * from the server of `c`.
 *
 *  1. Directory (the one c already fetched, if any); account: the URL in cfg->account_state if present, else
 *     newAccount with onlyReturnExisting, else a new account (terms agreed,
 *     contact, External Account Binding when cfg->eab_kid is set); the URL
 *     is saved to cfg->account_state.  A saved account the server no longer
 *     knows is registered again.
 *  2. Order: the one in cfg->order_state when it is still usable (same
 *     names, not invalid, not gone), else a new one, whose URL is saved
 *     there at once so an interrupted run resumes it.
 *  3. Each pending authorization: the configured challenge is set up
 *     (responder, webroot files or dns-hook add, then cfg->dns_wait_s) and
 *     answered; the order is polled until it leaves "pending"; the setup is
 *     always undone (dns-hook remove runs even after failures).
 *  4. make_csr(arg, &der, &len) is called once the order is ready (never for
 *     an order that was already finalized); the DER is freed by acme_issue.
 *  5. Poll until valid; download the PEM chain (leaf first).
 *
 * The order is polled (not each authorization: RFC 8555 §7.1.6, it is
 * ready once every authorization is valid), first after a few ms, then
 * with exponential back-off, honouring Retry-After; every request and
 * wait stays within the client's deadline (E_TIMEOUT naming it).
 * badNonce is retried (at most 20 times per request), every response's
 * nonce is used for the next request.
 * Returns 0 and *chain_pem (caller frees), or -1 after reporting (problem
 * documents are shown sanitised with their type).  The order state file is
 * left in place: call acme_forget_order() once the certificate is installed.
 * NOTE: a resumed order that was already finalized yields the certificate
 * for the CSR sent then; the caller must check the leaf's key and names.
 */
int acme_issue(struct acme_client *c, const struct acme_config *cfg,
    const struct jws_signer *account, const char *const *names, size_t n_names,
    int (*make_csr)(void *arg, uint8_t **der, size_t *len), void *arg,
    char **chain_pem);

/* Remove cfg->order_state (absent is fine).  0, or -1 after reporting. */
int acme_forget_order(const struct acme_config *cfg);

/*
 * Read an EAB HMAC key file: base64url text (standard base64 and '='
 * padding tolerated), surrounding white space ignored, at most 4 KiB.
 * Returns 0 and *key (caller wipe()s and frees), or -1 after reporting
 * (err_input: unreadable or malformed).
 */
int acme_read_eab_key(const char *path, uint8_t **key, size_t *len);

/*
 * The CA's suggested renewal window for `cert` (ARI, RFC 9773): from the
 * state's cache (st->ari) until its Retry-After passes, else asked of the
 * directory's renewalInfo through c.  Returns 1 (cached) or 2 (fetched
 * now; st->ari is updated: save the state) with *out (renew_ari_clear()),
 * or 0 when there is none: no ARI, no AKI in the certificate, or any
 * failure, which is only a warning (the renew-before rule then applies).
 */
int acme_ari_window(struct acme_client *c, struct state *st, X509 *cert, time_t now,
    struct renew_ari *out);

/* ---- the built-in http-01 responder (used by acme_issue; tests use it) -- */

struct acme_responder;
struct acme_http01 {
    const char *token;              /* base64url, checked again here */
    const char *key_authorization;
};

/*
 * Listen on `listen_addr` ("host:port", "[v6]:port", ":port"; port 0 picks
 * one) and serve, from a thread, exactly "GET /.well-known/acme-challenge/
 * <token>" with its key authorization; anything else gets 404.  The items
 * are copied.  Returns 0 and *out, or -1 after reporting (bad address,
 * port taken).
 */
int acme_responder_start(const char *listen_addr, const struct acme_http01 *items,
    size_t n, struct acme_responder **out);
/* The port it listens on. */
unsigned acme_responder_port(const struct acme_responder *rs);
/* Stop the thread and close the socket.  Accepts NULL. */
void acme_responder_stop(struct acme_responder *rs);

/* ---- pure pieces (unit-tested against recorded responses) -------------- */

enum acme_status {
    ACME_S_UNKNOWN = 0, ACME_S_PENDING, ACME_S_READY, ACME_S_PROCESSING,
    ACME_S_VALID, ACME_S_INVALID, ACME_S_EXPIRED, ACME_S_DEACTIVATED,
    ACME_S_REVOKED,
};

/* True for an https URL (http when allow_http) of at most 2048 safe characters. */
bool acme_url_ok(const char *url, bool allow_http);

struct acme_directory {
    char *new_nonce, *new_account, *new_order;     /* required */
    char *revoke_cert, *key_change;                 /* optional */
    char *terms_of_service;                         /* meta, optional */
    char *renewal_info;     /* RFC 9773, optional; kept as found (not URL-checked) */
    bool eab_required;                              /* meta.externalAccountRequired */
};

struct acme_order {
    enum acme_status status;
    char **names;           /* dns identifier values */
    size_t n_names;
    char **authzs;          /* authorization URLs */
    size_t n_authzs;
    char *finalize;
    char *certificate;      /* when valid */
    char *error;            /* formatted problem, or NULL */
};

struct acme_chall {
    char *type;             /* "http-01", "dns-01", ... */
    char *url;
    char *token;            /* base64url-checked for http-01/dns-01; else NULL */
    enum acme_status status;
    char *error;            /* formatted problem, or NULL */
};

struct acme_authz {
    enum acme_status status;
    char *name;             /* identifier value (no "*." for wildcards) */
    bool wildcard;
    struct acme_chall *chall;
    size_t n_chall;
};

/*
 * Parse a response body.  Each returns 0 and fills *out (clear with the
 * matching *_clear(), which accepts a zeroed struct), or -1 after
 * reporting with err_runtime("E_ACME_RESPONSE", ...) what is malformed:
 * not JSON, not an object, a missing or mistyped field, an unknown status,
 * a URL outside acme_url_ok(), a challenge token outside base64url.
 * allow_http: as in acme_url_ok().
 */
int acme_parse_directory(const char *text, size_t len, bool allow_http,
    struct acme_directory *out);
int acme_parse_order(const char *text, size_t len, bool allow_http,
    struct acme_order *out);
int acme_parse_authz(const char *text, size_t len, bool allow_http,
    struct acme_authz *out);
void acme_directory_clear(struct acme_directory *d);
void acme_order_clear(struct acme_order *o);
void acme_authz_clear(struct acme_authz *a);

/*
 * A problem document (RFC 7807 / RFC 8555 §6.7) as one sanitised line:
 * "acme:error:TYPE: detail (subproblems: dns NAME: TYPE: detail; ...)".
 * Returns a new string (caller frees), or NULL when `text` is not a problem
 * object.  *type (optional) receives the full type URI (caller frees).
 */
char *acme_problem_format(const char *text, size_t len, char **type);

/*
 * The newOrder payload: {"identifiers": [{"type": "dns", "value": NAME}...]}
 * and, when replaces is not NULL, "replaces": replaces (RFC 9773 §5).
 * Returns compact JSON (caller frees), or NULL (out of memory).
 */
char *acme_order_payload(const char *const *names, size_t n, const char *replaces);

/* True when the order's names equal `names` as sets (ASCII case ignored). */
bool acme_order_names_match(const struct acme_order *o,
    const char *const *names, size_t n_names);

#endif
