/*
 * test_state.c - the renewal state (state.h): save/load round trip, a
 * missing file, malformed files (fatal: the journal must not be guessed),
 * and caches with bad times (dropped with a warning, never fatal: a bad
 * cached ARI window once made every later run exit 1).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "util.h"

static char dir[64];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/p11e-state-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
    unlink(path);
    rmdir(dir);
}

static void
put(const char *text)
{
    char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
    cr_assert_not_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

TestSuite(state, .init = setup, .fini = teardown);

Test(state, missing_file_is_an_empty_state)
{
    struct state *st = NULL;
    cr_assert_eq(state_load(dir, "web", &st), 0);
    cr_assert_eq(st->txn.step, STEP_NONE);
    cr_assert_eq(st->nretired, 0);
    cr_assert_null(st->ari.cert_id);
    state_free(st);
}

Test(state, save_load_round_trip)
{
    struct state *st = NULL, *back = NULL;
    char path[128];
    struct stat sb;

    cr_assert_eq(state_load(dir, "web", &st), 0);
    st->labels_immutable = true;
    st->current_id = strdup("0a0b");
    st->last_renewal = 1767225600;
    cr_assert_eq(state_retired_add(st, "01ff", "web.retired.1", 1767225000), 0);
    cr_assert_eq(state_retired_add(st, "02ee", "web.retired.2", 1767225100), 0);
    st->ari.cert_id = strdup("aYhb.AIdl");
    st->ari.start = 1767225600;
    st->ari.end = 1767312000;
    st->ari.next_poll = 1767247200;
    st->txn.step = STEP_FILES;
    st->txn.rotate = true;
    st->txn.started = 1767225500;
    st->txn.reason = strdup("forced");
    st->txn.old_id = strdup("01ff");
    st->txn.old_serial = strdup("ABCD");
    st->txn.pending_label = strdup("web.pending.1");
    st->txn.pending_id = strdup("03dd");
    st->txn.retired_label = strdup("web.retired.3");
    cr_assert_eq(state_save(st), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "the state is private");

    cr_assert_eq(state_load(dir, "web", &back), 0);
    cr_assert(back->labels_immutable);
    cr_assert_str_eq(back->current_id, "0a0b");
    cr_assert_eq(back->last_renewal, 1767225600);
    cr_assert_eq(back->nretired, 2);
    cr_assert_str_eq(back->retired[1].id, "02ee");
    cr_assert_str_eq(back->retired[1].label, "web.retired.2");
    cr_assert_eq(back->retired[1].retired_at, 1767225100);
    cr_assert_str_eq(back->ari.cert_id, "aYhb.AIdl");
    cr_assert_eq(back->ari.start, 1767225600);
    cr_assert_eq(back->ari.end, 1767312000);
    cr_assert_eq(back->ari.next_poll, 1767247200);
    cr_assert_eq(back->txn.step, STEP_FILES);
    cr_assert_str_eq(state_step_name(back->txn.step), "files");
    cr_assert(back->txn.rotate);
    cr_assert_eq(back->txn.started, 1767225500);
    cr_assert_str_eq(back->txn.reason, "forced");
    cr_assert_str_eq(back->txn.old_id, "01ff");
    cr_assert_str_eq(back->txn.old_serial, "ABCD");
    cr_assert_str_eq(back->txn.pending_label, "web.pending.1");
    cr_assert_str_eq(back->txn.pending_id, "03dd");
    cr_assert_str_eq(back->txn.retired_label, "web.retired.3");

    /* Idle again: the txn is gone after a save and load. */
    state_txn_clear(back);
    state_retired_remove(back, 0);
    cr_assert_eq(state_save(back), 0);
    state_free(back);
    cr_assert_eq(state_load(dir, "web", &back), 0);
    cr_assert_eq(back->txn.step, STEP_NONE);
    cr_assert_eq(back->nretired, 1);
    cr_assert_str_eq(back->retired[0].id, "02ee");
    state_free(back);
    state_free(st);
}

Test(state, malformed_journal_is_fatal)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"version\": 2, \"label\": \"web\"}",
        "{\"version\": 1, \"label\": \"other\"}",
        "{\"version\": 1, \"label\": \"web\", \"retired\": [{\"id\": \"XYZ\", \"label\": \"a\"}]}",
        "{\"version\": 1, \"label\": \"web\", \"retired\": [{\"id\": \"01\", \"label\": \"a\", "
        "\"retired_at\": -5}]}",
        "{\"version\": 1, \"label\": \"web\", \"txn\": {\"step\": \"dance\"}}",
        "{\"version\": 1, \"label\": \"web\", \"txn\": {\"step\": \"order\", \"rotate\": true}}",
        "{\"version\": 1, \"label\": \"web\", \"txn\": {\"step\": \"order\", \"started\": -1}}",
        "{\"version\": 1, \"label\": \"web\", \"current_id\": \"0g\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct state *st = (struct state *)1;
        put(bad[i]);
        cr_assert_eq(state_load(dir, "web", &st), -1, "accepted: %s", bad[i]);
        cr_assert_null(st);
        err_clear();
    }
}

Test(state, bad_cache_entries_are_dropped_not_fatal)
{
    static const char *const cached[] = {
        /* What an older build cached from a pre-1970 ARI window. */
        "{\"version\": 1, \"label\": \"web\", \"ari\": {\"cert_id\": \"a.b\", \"start\": "
        "-86400, \"end\": -3600, \"next_poll\": 1767247200}, \"last_renewal\": 5}",
        "{\"version\": 1, \"label\": \"web\", \"ari\": {\"cert_id\": \"a.b\", \"start\": 10, "
        "\"end\": 5, \"next_poll\": 1}, \"last_renewal\": 5}",
        "{\"version\": 1, \"label\": \"web\", \"ari\": {\"cert_id\": 7}, \"last_renewal\": 5}",
        "{\"version\": 1, \"label\": \"web\", \"ari\": \"x\", \"last_renewal\": 5}",
    };
    for (size_t i = 0; i < sizeof(cached) / sizeof(cached[0]); i++) {
        struct state *st = NULL;
        put(cached[i]);
        cr_assert_eq(state_load(dir, "web", &st), 0, "refused: %s", cached[i]);
        cr_assert_null(st->ari.cert_id, "%s", cached[i]);
        cr_assert_eq(st->ari.start, 0);
        cr_assert_eq(st->ari.end, 0);
        cr_assert_eq(st->last_renewal, 5, "the rest of the state is kept");
        cr_assert(st->repaired, "the caller is told to save the repaired state");
        /* Saved again without the bad entry: the next load is clean. */
        cr_assert_eq(state_save(st), 0);
        state_free(st);
        cr_assert_eq(state_load(dir, "web", &st), 0);
        cr_assert_null(st->ari.cert_id);
        state_free(st);
    }
    /* A negative last_renewal (a note for `status`) is dropped too. */
    struct state *st = NULL;
    put("{\"version\": 1, \"label\": \"web\", \"last_renewal\": -7}");
    cr_assert_eq(state_load(dir, "web", &st), 0);
    cr_assert_eq(st->last_renewal, 0);
    state_free(st);
}
