/*
 * modules_rss.c - the memory floor of "every registered module" (issue 12):
 * loads and initialises what p11-kit's registry holds, reads every slot's
 * token info, and prints its own peak RSS in KiB.  Whatever p11enroll's
 * `tokens` needs beyond this number is p11enroll's own share.
 *
 * usage: modules_rss [MODULE]   (MODULE: one library instead of the registry)
 * Exit 0, or 1 when nothing could be loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <p11-kit/p11-kit.h>

/* Reads each slot's token info, as a token listing must. */
static void
touch_tokens(CK_FUNCTION_LIST *m)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO ti;

    if (m->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return;
    for (CK_ULONG i = 0; i < n; i++)
        (void)m->C_GetTokenInfo(slots[i], &ti);
}

int
main(int argc, char **argv)
{
    CK_FUNCTION_LIST *one[2] = { NULL, NULL }, **mods = one;
    struct rusage ru;

    if (argc > 1)
        one[0] = p11_kit_module_load(argv[1], 0);
    else
        mods = p11_kit_modules_load(NULL, 0);
    if (mods == NULL || mods[0] == NULL) {
        fprintf(stderr, "modules_rss: nothing loaded\n");
        return 1;
    }
    for (size_t i = 0; mods[i] != NULL; i++)
        if (p11_kit_module_initialize(mods[i]) == CKR_OK)
            touch_tokens(mods[i]);
    getrusage(RUSAGE_SELF, &ru);
    printf("%ld\n", ru.ru_maxrss);
    return 0;
}
