/* Replay window and the hash map under it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "error.h"
#include "map.h"
#include "replay.h"

static void id_of(uint64_t n, uint8_t out[16])
{
    memset(out, 0, 16);
    memcpy(out, &n, sizeof n);
}

static void test_in_order_and_replay(void **state)
{
    lia_replay_t *r;
    uint8_t s[32] = {1}, id[16];
    (void)state;
    assert_int_equal(lia_replay_new(100, &r), 0);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        id_of(seq, id);
        assert_int_equal(lia_replay_check(r, s, seq, id, 0), 0);
        assert_int_equal(lia_replay_commit(r, s, seq, id), 0);
        /* The same message again is a replay. */
        assert_int_equal(lia_replay_check(r, s, seq, id, 0), LIA_ERR_REPLAY);
    }
    assert_int_equal(lia_replay_last(r, s), 10);
    id_of(99, id);
    /* An old sequence with a fresh id is still a replay; a skip is a gap. */
    assert_int_equal(lia_replay_check(r, s, 5, id, 0), LIA_ERR_REPLAY);
    assert_int_equal(lia_replay_check(r, s, 12, id, 0), LIA_ERR_SEQ_GAP);
    assert_int_equal(lia_replay_check(r, s, 11, id, 0), 0);
    /* A known id on another stream is a replay too (message-id memory). */
    uint8_t s2[32] = {2};
    id_of(3, id);
    assert_int_equal(lia_replay_check(r, s2, 1, id, 0), LIA_ERR_REPLAY);
    assert_int_equal(lia_replay_check(r, s2, 0, id, 0), LIA_ERR_INVALID);
    lia_replay_destroy(&r);
    assert_null(r);
    lia_replay_destroy(NULL);
}

static void test_stream_start(void **state)
{
    lia_replay_t *r;
    uint8_t s[32] = {7}, id[16];
    (void)state;
    assert_int_equal(lia_replay_new(8, &r), 0);
    id_of(1, id);
    assert_int_equal(lia_replay_check(r, s, 5, id, 0), LIA_ERR_SEQ_GAP);
    assert_int_equal(lia_replay_check(r, s, 5, id, 1), 0);
    assert_int_equal(lia_replay_commit(r, s, 5, id), 0);
    id_of(2, id);
    assert_int_equal(lia_replay_check(r, s, 6, id, 0), 0);
    /* Restored state from a durable store. */
    uint8_t s3[32] = {9};
    assert_int_equal(lia_replay_set_last(r, s3, 41), 0);
    assert_int_equal(lia_replay_check(r, s3, 41, id, 0), LIA_ERR_REPLAY);
    assert_int_equal(lia_replay_check(r, s3, 42, id, 0), 0);
    lia_replay_destroy(&r);
}

static void test_id_memory_bounded(void **state)
{
    lia_replay_t *r;
    uint8_t id[16];
    (void)state;
    assert_int_equal(lia_replay_new(4, &r), 0);
    for (uint64_t i = 1; i <= 10; i++) {
        uint8_t s[32] = {0};
        memcpy(s, &i, sizeof i); /* a new stream each time */
        id_of(i, id);
        assert_int_equal(lia_replay_commit(r, s, 1, id), 0);
    }
    /* Only the last 4 ids are remembered. */
    uint8_t fresh[32] = {0xff};
    id_of(10, id);
    assert_int_equal(lia_replay_check(r, fresh, 1, id, 0), LIA_ERR_REPLAY);
    id_of(7, id);
    assert_int_equal(lia_replay_check(r, fresh, 1, id, 0), LIA_ERR_REPLAY);
    id_of(6, id);
    assert_int_equal(lia_replay_check(r, fresh, 1, id, 0), 0);
    lia_replay_destroy(&r);
}

static int freed;
static void count_free(void *p)
{
    freed++;
    free(p);
}

static void test_map_many(void **state)
{
    lia_map_t *m;
    uint8_t k[20];
    const size_t n = 5000;
    (void)state;
    assert_int_equal(lia_map_new(20, count_free, &m), 0);
    for (size_t i = 0; i < n; i++) {
        memset(k, 0, sizeof k);
        memcpy(k, &i, sizeof i);
        size_t *v = malloc(sizeof *v);
        *v = i;
        assert_int_equal(lia_map_put(m, k, v), 0);
    }
    assert_int_equal(lia_map_size(m), n);
    /* Remove every third key; the rest must still be found (backward-shift deletion). */
    for (size_t i = 0; i < n; i += 3) {
        memset(k, 0, sizeof k);
        memcpy(k, &i, sizeof i);
        assert_int_equal(lia_map_remove(m, k), 1);
        assert_int_equal(lia_map_remove(m, k), 0);
    }
    for (size_t i = 0; i < n; i++) {
        memset(k, 0, sizeof k);
        memcpy(k, &i, sizeof i);
        size_t *v = lia_map_get(m, k);
        if (i % 3 == 0) {
            assert_null(v);
        } else {
            assert_non_null(v);
            assert_int_equal(*v, i);
        }
    }
    /* Replacing frees the old value. */
    int before = freed;
    size_t one = 1;
    memset(k, 0, sizeof k);
    memcpy(k, &one, sizeof one);
    assert_int_equal(lia_map_put(m, k, malloc(8)), 0);
    assert_int_equal(freed, before + 1);
    lia_map_destroy(&m);
    assert_null(m);
    assert_int_equal(lia_map_new(0, NULL, &m), LIA_ERR_INVALID);
    assert_int_equal(lia_map_new(LIA_MAP_KEY_MAX + 1, NULL, &m), LIA_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_replay),
        cmocka_unit_test(test_stream_start),
        cmocka_unit_test(test_id_memory_bounded),
        cmocka_unit_test(test_map_many),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
