/* tokenfam.c - load the tokens/ profiles and match a module and token to its family. */
#include "tokenfam.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stddef.h>
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

/* The [family] keys: strings, then yes/no flags. */
static const struct { const char *key; size_t off; } strings[] = {
    { "name", offsetof(struct token_family, name) },
    { "manufacturer", offsetof(struct token_family, manufacturer) },
    { "model", offsetof(struct token_family, model) },
    { "library-manufacturer", offsetof(struct token_family, library_manufacturer) },
    { "library-description", offsetof(struct token_family, library_description) },
    { "module", offsetof(struct token_family, module) },
    { "keytypes", offsetof(struct token_family, keytypes) },
    { "notes", offsetof(struct token_family, notes) },
};
static const struct { const char *key; size_t off; } flags[] = {
    { "label-immutable", offsetof(struct token_family, label_immutable) },
    { "no-public-key-object", offsetof(struct token_family, no_public_key_object) },
    { "no-cka-local", offsetof(struct token_family, no_cka_local) },
    { "objects-left-loaded", offsetof(struct token_family, objects_left_loaded) },
    { "wrap-ignores-extractable", offsetof(struct token_family, wrap_ignores_extractable) },
    { "serial-shared", offsetof(struct token_family, serial_shared) },
};

static int
on_entry(void *arg, const char *section, const char *key, const char *value)
{
    struct token_family *f = arg;
    char **slot = NULL;

    if (strcmp(section, "family") != 0)
        return 1;               /* other sections are documentation */
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (strcmp(key, strings[i].key) == 0)
            slot = (char **)((char *)f + strings[i].off);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(key, flags[i].key) == 0)
            *(bool *)((char *)f + flags[i].off) = yes(value);
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

/* How many match keys a family sets; 0: it matches nothing (malformed). */
static int
specificity(const struct token_family *f)
{
    return (f->library_manufacturer != NULL) + (f->library_description != NULL) +
        (f->module != NULL) + (f->manufacturer != NULL) + (f->model != NULL);
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Load every *.conf of `dir`, sorted by file name (ties in matching go to the first). */
static bool
load_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n;

    if (dir == NULL || *dir == '\0' || (n = scandir(dir, &names, NULL, by_name)) < 0)
        return false;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        char path[4096];
        struct token_family *f = &families[nfamilies];

        if (nfamilies < MAX_FAMILIES && len >= 6 && strcmp(name + len - 5, ".conf") == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            memset(f, 0, sizeof(*f));
            if (ini_parse(path, on_entry, f) != 0 || specificity(f) == 0)
                verbose("token profile %s is malformed; ignored", path);
            else if ((f->id = strndup(name, len - 5)) != NULL)
                nfamilies++;
        }
        free(names[i]);
    }
    free(names);
    return nfamilies > 0;
}

/* A family's glob against a field: unset matches anything, NULL field nothing. */
static bool
glob_ok(const char *pattern, const char *value)
{
    return pattern == NULL || (value != NULL && fnmatch(pattern, value, 0) == 0);
}

static void
load_once(void)
{
    if (!loaded) {
        loaded = true;
        const char *dir = getenv("P11ENROLL_TOKENS_DIR");

        /* The environment (tests, scripts run from the build tree) replaces
         * the installed directory; there is no build-time fallback. */
        load_dir(dir != NULL && *dir != '\0' ? dir : P11E_TOKENS_DIR);
    }
}

/* Does family f match on what the token and the module's file name say? */
static bool
cheap_match(const struct token_family *f, const struct tokenfam_ident *id)
{
    const char *base = id->module ? strrchr(id->module, '/') : NULL;

    base = base != NULL ? base + 1 : id->module;
    return glob_ok(f->module, base) && glob_ok(f->manufacturer, id->manufacturer) &&
        glob_ok(f->model, id->model);
}

bool
tokenfam_needs_library(const struct tokenfam_ident *id)
{
    load_once();
    for (size_t i = 0; i < nfamilies; i++)
        if ((families[i].library_manufacturer != NULL ||
                families[i].library_description != NULL) && cheap_match(&families[i], id))
            return true;
    return false;
}

const struct token_family *
tokenfam_find(const struct tokenfam_ident *id)
{
    const struct token_family *best = NULL;
    int bestscore = 0;

    load_once();
    /* Every key a family sets must match; the most specific family wins,
     * ties go to the first file name (the list is sorted). */
    for (size_t i = 0; i < nfamilies; i++) {
        const struct token_family *f = &families[i];
        int score = specificity(f);

        if (glob_ok(f->library_manufacturer, id->library_manufacturer) &&
            glob_ok(f->library_description, id->library_description) &&
            cheap_match(f, id) && score > bestscore) {
            best = f;
            bestscore = score;
        }
    }
    return best;
}
