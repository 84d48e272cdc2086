/* tokenfam.c - load the tokens/ profiles and match a token to its family. */
#include "tokenfam.h"

#include <dirent.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifndef P11E_TOKENS_DIR
#define P11E_TOKENS_DIR "/usr/local/share/p11enroll/tokens"
#endif

#define MAX_FAMILIES 32

static struct token_family families[MAX_FAMILIES];
static size_t nfamilies;
static bool loaded;

static bool
yes(const char *v)
{
    return strcmp(v, "yes") == 0 || strcmp(v, "true") == 0;
}

static int
on_entry(void *arg, const char *section, const char *key, const char *value)
{
    struct token_family *f = arg;
    char **slot = NULL;

    if (strcmp(section, "family") != 0)
        return 1;               /* other sections are documentation */
    if (strcmp(key, "name") == 0)
        slot = &f->name;
    else if (strcmp(key, "manufacturer") == 0)
        slot = &f->manufacturer;
    else if (strcmp(key, "model") == 0)
        slot = &f->model;
    else if (strcmp(key, "keytypes") == 0)
        slot = &f->keytypes;
    else if (strcmp(key, "notes") == 0)
        slot = &f->notes;
    else if (strcmp(key, "label-immutable") == 0)
        f->label_immutable = yes(value);
    else if (strcmp(key, "no-public-key-object") == 0)
        f->no_public_key_object = yes(value);
    if (slot != NULL && *slot != NULL && strcmp(key, "notes") == 0) {
        /* Continuation lines of a long note arrive as the same key again. */
        char *joined;
        if (asprintf(&joined, "%s %s", *slot, value) != -1) {
            free(*slot);
            *slot = joined;
        }
    } else if (slot != NULL) {
        free(*slot);
        *slot = strdup(value);
    }
    return 1;
}

static bool
load_dir(const char *dir)
{
    DIR *d;
    struct dirent *e;

    if (dir == NULL || *dir == '\0' || (d = opendir(dir)) == NULL)
        return false;
    while ((e = readdir(d)) != NULL && nfamilies < MAX_FAMILIES) {
        size_t n = strlen(e->d_name);
        char path[4096];
        struct token_family *f = &families[nfamilies];

        if (n < 6 || strcmp(e->d_name + n - 5, ".conf") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        memset(f, 0, sizeof(*f));
        if (ini_parse(path, on_entry, f) != 0 || f->manufacturer == NULL) {
            verbose("token profile %s is malformed; ignored", path);
            continue;
        }
        f->id = strndup(e->d_name, n - 5);
        nfamilies++;
    }
    closedir(d);
    return nfamilies > 0;
}

const struct token_family *
tokenfam_match(const char *manufacturer, const char *model)
{
    if (!loaded) {
        loaded = true;
        const char *dir = getenv("P11ENROLL_TOKENS_DIR");

        /* The environment (tests, scripts run from the build tree) replaces
         * the installed directory; there is no build-time fallback. */
        load_dir(dir != NULL && *dir != '\0' ? dir : P11E_TOKENS_DIR);
    }
    for (size_t i = 0; i < nfamilies; i++) {
        const struct token_family *f = &families[i];
        if (fnmatch(f->manufacturer, manufacturer, 0) == 0 &&
            (f->model == NULL || fnmatch(f->model, model, 0) == 0))
            return f;
    }
    return NULL;
}
