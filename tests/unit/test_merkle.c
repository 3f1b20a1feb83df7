/* Batch trees: every leaf of batches of 1, 2, 3, 64 and 1,000 verifies alone against the
 * root; any altered proof, leaf or position fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "error.h"
#include "merkle.h"

/* Reference MTH straight from RFC 9162 2.1.1, written independently of merkle.c. */
static void ref_mth(uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
    uint8_t l[32], r[32], buf[65];
    size_t k = 1;
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    ref_mth(leaves, k, l);
    ref_mth(leaves + k, n - k, r);
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    crypto_generichash(out, 32, buf, sizeof buf, NULL, 0);
}

/* Every tampering refused by a known set, whatever it already holds; the set unchanged by it. */
static void expect_tampered_refused(lia_merkle_known_t *k, uint8_t (*leaves)[32],
                                    lia_merkle_proof *proofs, size_t n, size_t i)
{
    const uint8_t(*path)[32] = (const uint8_t(*)[32])proofs[i].path;
    size_t len = proofs[i].len;

    leaves[i][31] ^= 0x04;
    assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)i, path, len), LIA_ERR_PROOF);
    leaves[i][31] ^= 0x04;
    if (len > 0) {
        size_t j = randombytes_uniform((uint32_t)len), b = randombytes_uniform(32);
        proofs[i].path[j][b] ^= 0x10;
        assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)i, path, len),
                         LIA_ERR_PROOF);
        proofs[i].path[j][b] ^= 0x10;
    }
    if (n > 1)
        assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)((i + 1) % n), path, len),
                         LIA_ERR_PROOF);
    if (len > 0)
        assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)i, path, len - 1),
                         LIA_ERR_PROOF);
    assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)n, path, len), LIA_ERR_PROOF);
}

/* Proves every leaf against a set that knows only the root, in a random order, twice. */
static void check_known(uint8_t (*leaves)[32], lia_merkle_proof *proofs, size_t n,
                        const uint8_t root[32])
{
    lia_merkle_known_t *k;
    size_t *order;

    if (n > LIA_MERKLE_KNOWN_MAX_LEAVES) {
        assert_int_equal(lia_merkle_known_new((uint32_t)n, root, &k), LIA_ERR_INVALID);
        return;
    }
    assert_int_equal(lia_merkle_known_new((uint32_t)n, root, &k), 0);
    assert_non_null(order = malloc(n * sizeof *order));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = randombytes_uniform((uint32_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int round = 0; round < 2; round++)
        for (size_t o = 0; o < n; o++) {
            size_t i = order[o];
            if (n <= 70 || o % 13 == 0)
                expect_tampered_refused(k, leaves, proofs, n, i);
            assert_int_equal(lia_merkle_known_prove(k, leaves[i], (uint32_t)i,
                                                    (const uint8_t(*)[32])proofs[i].path,
                                                    proofs[i].len),
                             0);
        }
    free(order);
    lia_merkle_known_destroy(&k);
    assert_null(k);
}

static void check_batch(size_t n)
{
    uint8_t(*leaves)[32] = malloc(n * 32);
    lia_merkle_proof *proofs = malloc(n * sizeof *proofs);
    uint8_t root[32], ref[32], got[32];
    assert_non_null(leaves);
    assert_non_null(proofs);
    randombytes_buf(leaves, n * 32);
    assert_int_equal(lia_merkle_build((const uint8_t(*)[32])leaves, n, root, proofs), 0);
    ref_mth(leaves, n, ref);
    assert_memory_equal(root, ref, 32);

    for (size_t i = 0; i < n; i++) {
        const uint8_t(*path)[32] = (const uint8_t(*)[32])proofs[i].path;
        size_t len = proofs[i].len;
        assert_int_equal(
            lia_merkle_root_from_proof(leaves[i], (uint32_t)i, (uint32_t)n, path, len, got), 0);
        assert_memory_equal(got, root, 32);

        /* Wrong position, wrong size, truncated or extended path: refused or another root. */
        if (n > 1) {
            uint32_t other = (uint32_t)((i + 1) % n);
            int rc = lia_merkle_root_from_proof(leaves[i], other, (uint32_t)n, path, len, got);
            assert_true(rc != 0 || memcmp(got, root, 32) != 0);
        }
        /* A different size can imply the same root (leaf 0 of 3 and of 4 have the same
         * path shape): that is why the batch signature covers leaf_count as well as the root
         * (test_envelope flips every byte of it). */
        if (len > 0)
            assert_int_equal(lia_merkle_root_from_proof(leaves[i], (uint32_t)i, (uint32_t)n, path,
                                                        len - 1, got) == 0 &&
                                 memcmp(got, root, 32) == 0,
                             0);
        /* Altered proof bytes: sample leaves for large batches to keep the test quick. */
        if (n <= 64 || i % 97 == 0) {
            for (size_t j = 0; j < len; j++)
                for (size_t b = 0; b < 32; b++) {
                    proofs[i].path[j][b] ^= 0x01;
                    int rc = lia_merkle_root_from_proof(leaves[i], (uint32_t)i, (uint32_t)n, path,
                                                        len, got);
                    assert_true(rc != 0 || memcmp(got, root, 32) != 0);
                    proofs[i].path[j][b] ^= 0x01;
                }
            /* Altered leaf. */
            leaves[i][0] ^= 0x80;
            assert_int_equal(
                lia_merkle_root_from_proof(leaves[i], (uint32_t)i, (uint32_t)n, path, len, got), 0);
            assert_memory_not_equal(got, root, 32);
            leaves[i][0] ^= 0x80;
        }
    }
    check_known(leaves, proofs, n, root);
    free(leaves);
    free(proofs);
}

static void test_batch_1(void **state)
{
    (void)state;
    check_batch(1);
}
static void test_batch_2(void **state)
{
    (void)state;
    check_batch(2);
}
static void test_batch_3(void **state)
{
    (void)state;
    check_batch(3);
}
static void test_batch_64(void **state)
{
    (void)state;
    check_batch(64);
}
static void test_batch_1000(void **state)
{
    (void)state;
    check_batch(1000);
}
static void test_all_sizes_to_70(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 70; n++)
        check_batch(n);
}

static void test_batch_4096(void **state)
{
    (void)state;
    check_batch(4096);
}

static void test_bounds(void **state)
{
    uint8_t leaf[32] = {0}, root[32], path[LIA_MERKLE_MAX_DEPTH + 1][32];
    (void)state;
    memset(path, 0, sizeof path);
    assert_int_equal(lia_merkle_build(NULL, 0, root, NULL), LIA_ERR_INVALID);
    assert_int_equal(lia_merkle_root_from_proof(leaf, 0, 0, NULL, 0, root), LIA_ERR_PROOF);
    assert_int_equal(lia_merkle_root_from_proof(leaf, 5, 5, NULL, 0, root), LIA_ERR_PROOF);
    assert_int_equal(lia_merkle_root_from_proof(leaf, 0, LIA_MERKLE_MAX_LEAVES + 1, NULL, 0, root),
                     LIA_ERR_PROOF);
    assert_int_equal(lia_merkle_root_from_proof(leaf, 0, 2, (const uint8_t(*)[32])path,
                                                LIA_MERKLE_MAX_DEPTH + 1, root),
                     LIA_ERR_PROOF);
    /* A batch of one has an empty proof: a non-empty one is refused. */
    assert_int_equal(lia_merkle_root_from_proof(leaf, 0, 1, (const uint8_t(*)[32])path, 1, root),
                     LIA_ERR_PROOF);
    assert_int_equal(lia_merkle_root_from_proof(leaf, 0, 1, NULL, 0, root), 0);
    assert_memory_equal(root, leaf, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_1),         cmocka_unit_test(test_batch_2),
        cmocka_unit_test(test_batch_3),         cmocka_unit_test(test_batch_64),
        cmocka_unit_test(test_batch_1000),      cmocka_unit_test(test_batch_4096),
        cmocka_unit_test(test_all_sizes_to_70), cmocka_unit_test(test_bounds),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
