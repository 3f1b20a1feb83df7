/* The shared canonical-encoding check: accepts exactly the canonical bytes, refuses padding,
 * duplicates and unknown fields; empty bytes fields and empty messages are handled without
 * touching NULL pointers (regression found by fuzz_membership under UBSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "canonical.h"

#include "liaison/v1/transport.pb-c.h"

static int check(const uint8_t *buf, size_t len)
{
    Liaison__V1__Publish *p = liaison__v1__publish__unpack(NULL, len, buf);
    int ok;
    if (!p)
        return -1;
    ok = lia_pb_canonical(&p->base, buf, len);
    liaison__v1__publish__free_unpacked(p, NULL);
    return ok;
}

static void test_canonical(void **state)
{
    static const uint8_t empty_elem[] = {0x0a, 0x00};            /* one empty envelope */
    static const uint8_t two[] = {0x0a, 0x01, 0x41, 0x0a, 0x00}; /* "A" then empty */
    static const uint8_t long_len[] = {0x0a, 0x81, 0x00, 0x41};  /* non-minimal length 1 */
    static const uint8_t unknown[] = {0x0a, 0x01, 0x41, 0x10, 0x01}; /* field 2 unknown */
    (void)state;
    assert_int_equal(check(empty_elem, sizeof empty_elem), 1);
    assert_int_equal(check(two, sizeof two), 1);
    assert_int_equal(check(long_len, sizeof long_len), 0);
    assert_int_equal(check(unknown, sizeof unknown), 0);
    assert_int_equal(check(NULL, 0), 1); /* the empty message */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_canonical)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
