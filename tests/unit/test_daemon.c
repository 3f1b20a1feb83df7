/*
 * Unit tests for daemon.c: the allocator settings and the heap reserve (memory kept mapped at
 * the top of the main arena, not handed back to the kernel).
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemon.h"
#include "error.h"

#if defined(__SANITIZE_ADDRESS__)
#define LIA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIA_TEST_ASAN 1
#endif
#endif

static void test_reserve_kept(void **state)
{
    (void)state;
#ifdef LIA_TEST_ASAN
    skip(); /* the sanitizer's allocator neither trims nor keeps a free top */
#else
    assert_int_equal(lia_daemon_tune_memory(), 0);
    assert_int_equal(lia_daemon_reserve_memory(8u << 20), 0);
    /* keepcost: the free top of the main arena, what a trim would hand back. */
    assert_true(mallinfo2().keepcost >= (8u << 20));
    /* A burst carved from it and freed leaves it in place. */
    void *p = malloc(4u << 20);
    assert_non_null(p);
    free(p);
    assert_true(mallinfo2().keepcost >= (8u << 20));
#endif
}

static void test_reserve_above_trim_threshold(void **state)
{
    (void)state;
#ifdef LIA_TEST_ASAN
    skip();
#else
    /* Larger than the 64 MiB the allocator keeps by default: the threshold follows. */
    assert_int_equal(lia_daemon_tune_memory(), 0);
    assert_int_equal(lia_daemon_reserve_memory(80u << 20), 0);
    assert_true(mallinfo2().keepcost >= (80u << 20));
#endif
}

static void test_reserve_none(void **state)
{
    (void)state;
    assert_int_equal(lia_daemon_reserve_memory(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_none),
        cmocka_unit_test(test_reserve_kept),
        cmocka_unit_test(test_reserve_above_trim_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
