/*
 * origin.c - which servers the ACME client talks to: every URL the CA
 * hands out (directory entries, account and order Locations,
 * authorizations, challenges, finalize, certificate) must have the
 * directory's origin (scheme, host, port) or one that [ca] allow-origins
 * lists.  A CA cannot send the client, with its signed requests, elsewhere.
 */
#include <stdlib.h>
#include <string.h>

#include "acme_int.h"
#include "util.h"

#define ORIGIN_MAX 512

/* Is `origin` one of the comma-separated origins in `list` (NULL: none)? */
static bool
origin_listed(const char *origin, const char *list)
{
    char item[ORIGIN_MAX], o[ORIGIN_MAX];

    for (const char *p = list; (p = list_next(p, item, sizeof(item))) != NULL;)
        if (url_origin(item, o, sizeof(o)) == 0 && strcmp(o, origin) == 0)
            return true;
    return false;
}

int
acme_origin_check(const struct acme_client *c, const char *url, const char *what)
{
    char dir[ORIGIN_MAX], got[ORIGIN_MAX];

    if (url == NULL)
        return 0;
    if (url_origin(c->directory_url, dir, sizeof(dir)) == 0 &&
        url_origin(url, got, sizeof(got)) == 0 &&
        (strcmp(got, dir) == 0 || origin_listed(got, c->allow_origins)))
        return 0;
    char *shown = sanitize(url, 256);
    err_runtime("E_ACME_ORIGIN", "%s: the CA sent %s, outside the directory's origin %s; "
        "refused (list other origins of this CA in [ca] allow-origins)", what,
        shown ? shown : "?", dir);
    free(shown);
    return -1;
}

int
acme_origin_check_directory(const struct acme_client *c, const struct acme_directory *d)
{
    const struct { const char *url, *what; } urls[] = {
        { d->new_nonce, "directory newNonce" }, { d->new_account, "directory newAccount" },
        { d->new_order, "directory newOrder" }, { d->revoke_cert, "directory revokeCert" },
        { d->key_change, "directory keyChange" }, { d->renewal_info, "directory renewalInfo" },
    };

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
        if (acme_origin_check(c, urls[i].url, urls[i].what) == -1)
            return -1;
    return 0;
}
