/*
 * fuzz_plan.c - libFuzzer target: profile parsing and planning, end to end.
 *
 * Any byte string is a candidate profile.  The target loads it with
 * profile_load_mem(), plans the certificate, renders the JSON (the plan's
 * or the error's), and checks the planner's name rules on the raw bytes as a
 * name.  Built and run by scripts/fuzz-plan with ASan, UBSan and LSan: a
 * crash, an undefined behaviour report or a leak fails the run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "plan.h"
#include "profile.h"
#include "util.h"

static void
check_plan(const struct plan *pl)
{
    json_t *j = plan_to_json(pl);
    char *s = j != NULL ? json_dumps(j, 0) : NULL;

    /* A plan is either an error or a certificate, never both or neither. */
    if (pl->error.code == NULL && (pl->cn == NULL || pl->subject == NULL ||
            pl->key == NULL || pl->neku == 0))
        abort();
    if (pl->error.code != NULL && pl->error.message == NULL)
        abort();
    /* Every SAN is a valid name, once. */
    for (size_t i = 0; i < pl->nsans && pl->error.code == NULL; i++) {
        char why[256];
        if (plan_check_name(pl->sans[i].name, true, why, sizeof(why)) != NULL)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(pl->sans[i].name, pl->sans[k].name) == 0)
                abort();
    }
    free(s);
    json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct profile *p = NULL;
    struct plan *pl = NULL;

    if (profile_load_mem("fuzz.ini", (const char *)data, size, &p) == 0) {
        (void)plan_build(p, &pl);   /* NULL only when out of memory */
        if (pl != NULL)
            check_plan(pl);
        plan_free(pl);
        profile_free(p);
    }
    err_clear();

    /* The raw bytes as one name. */
    if (size < 512) {
        char *s = malloc(size + 1), *n, why[256];
        if (s == NULL)
            return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if ((n = plan_normalise(s)) != NULL) {
            (void)plan_check_name(n, false, why, sizeof(why));
            (void)plan_check_name(n, true, why, sizeof(why));
            free(n);
        }
        free(s);
    }
    return 0;
}
