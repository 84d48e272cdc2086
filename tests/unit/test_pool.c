/* test_pool.c - the pure parts of pool.h: [pool] settings and the takeover time. */
#include <criterion/criterion.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "profile.h"

static struct profile *
load(const char *text)
{
    struct profile *p = NULL;
    cr_assert_eq(profile_load_mem("t.ini", text, strlen(text), &p), 0);
    return p;
}

#define OUT "[output]\ncert = /tmp/c.pem\nstate-dir = /tmp/s\n"

Test(pool, none)
{
    struct profile *p = load(OUT);
    struct pool pl;
    cr_assert_eq(pool_from_profile(p, &pl), 0);
    cr_assert_null(pl.name);
    profile_free(p);
}

Test(pool, settings)
{
    struct profile *p = load(OUT "[pool]\nname = edge-pool-1\nrole = follower\nmember = e2\n"
                                 "takeover-after = 2d\nlease = 5m\n");
    struct pool pl;
    cr_assert_eq(pool_from_profile(p, &pl), 0);
    cr_assert_str_eq(pl.name, "edge-pool-1");
    cr_assert_str_eq(pl.member, "e2");
    cr_assert(!pl.leader);
    cr_assert(!pl.takeover_is_fraction);
    cr_assert_eq(pl.takeover_secs, 2 * 86400);
    cr_assert_eq(pl.lease_secs, 300);
    cr_assert_eq(pool_takeover_at(&pl, 1000, 999999), 1000 + 2 * 86400);
    profile_free(p);
}

Test(pool, takeover_fraction_default)
{
    struct profile *p = load(OUT "[pool]\nname = p\nmember = m\n");
    struct pool pl;
    cr_assert_eq(pool_from_profile(p, &pl), 0);
    cr_assert(pl.leader);
    /* Half the time left after the due time; never before it. */
    cr_assert_eq(pool_takeover_at(&pl, 1000, 2000), 1500);
    cr_assert_eq(pool_takeover_at(&pl, 1000, 900), 1000);
    profile_free(p);
}

Test(pool, refused)
{
    static const char *bad[] = {
        OUT "[pool]\nname = a b\nmember = m\n",          /* name characters */
        OUT "[pool]\nname = p\nmember = m/../x\n",       /* member characters */
        OUT "[pool]\nrole = leader\n",                   /* no name */
        "[output]\nstate-dir = /tmp/s\n[pool]\nname = p\nmember = m\n", /* no [output] cert */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct profile *p = load(bad[i]);
        struct pool pl;
        cr_assert_eq(pool_from_profile(p, &pl), -1, "case %zu", i);
        err_clear();
        profile_free(p);
    }
    struct profile *p = NULL;
    const char *role = "[pool]\nname = p\nrole = boss\n";
    cr_assert_eq(profile_load_mem("t.ini", role, strlen(role), &p), -1);
    err_clear();
}
