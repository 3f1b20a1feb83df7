/*
 * Unit tests for arena.c: blocks come from the arena's own buffer first, then from heap chunks,
 * are aligned and disjoint, the budget refuses what goes beyond it (and says so), and a
 * released arena starts again from its own buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"

static void *take(lia_arena *a, size_t n)
{
    return a->pb.alloc(a->pb.allocator_data, n);
}

static int inside_first(const lia_arena *a, const void *p)
{
    const unsigned char *c = p;
    return c >= a->first && c < a->first + sizeof a->first;
}

static void test_first_buffer_then_heap(void **state)
{
    (void)state;
    lia_arena *a = malloc(sizeof *a);
    assert_non_null(a);
    lia_arena_init(a, SIZE_MAX);
    unsigned char *p = take(a, 100);
    assert_ptr_equal(p, a->first); /* payload.c relies on this */
    unsigned char *q = take(a, 1);
    assert_true(inside_first(a, q));
    assert_int_equal((uintptr_t)q % 16, 0);
    assert_true(q >= p + 100);
    /* More than the first buffer holds: heap chunks, each block usable in full. */
    unsigned char *big = take(a, 3 * LIA_ARENA_FIRST);
    assert_non_null(big);
    assert_false(inside_first(a, big));
    memset(big, 0xA5, 3 * LIA_ARENA_FIRST);
    unsigned char *small[64];
    for (size_t i = 0; i < 64; i++) {
        small[i] = take(a, 200);
        assert_non_null(small[i]);
        assert_int_equal((uintptr_t)small[i] % 16, 0);
        memset(small[i], (int)i, 200);
    }
    for (size_t i = 0; i < 64; i++)
        for (size_t k = 0; k < 200; k++)
            assert_int_equal(small[i][k], (unsigned char)i);
    for (size_t k = 0; k < 3 * LIA_ARENA_FIRST; k++)
        assert_int_equal(big[k], 0xA5);
    assert_false(lia_arena_exhausted(a));
    lia_arena_release(a);
    assert_ptr_equal(take(a, 8), a->first);
    lia_arena_release(a);
    free(a);
}

static void test_budget(void **state)
{
    (void)state;
    lia_arena a;
    lia_arena_init(&a, 1000);
    assert_non_null(take(&a, 500));
    assert_false(lia_arena_exhausted(&a));
    assert_null(take(&a, 500)); /* 500 + 500 + the per-block overhead > 1000 */
    assert_true(lia_arena_exhausted(&a));
    assert_null(take(&a, SIZE_MAX)); /* no wrap-around in the rounding */
    lia_arena_release(&a);
    assert_false(lia_arena_exhausted(&a));
    lia_arena_init(&a, 1000);
    assert_non_null(take(&a, 900));
    lia_arena_release(&a);
}

static void test_zero_and_free(void **state)
{
    (void)state;
    lia_arena a;
    lia_arena_init(&a, SIZE_MAX);
    void *p = take(&a, 0), *q = take(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    a.pb.free(a.pb.allocator_data, p); /* a no-op: blocks go with the arena */
    lia_arena_release(&a);
    lia_arena_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_buffer_then_heap),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_zero_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
