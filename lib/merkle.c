/*
 * RFC 9162 Merkle trees over leaf hashes: building all proofs of a batch in O(n log n) and
 * recomputing a root from one proof (section 2.1.3.2, "verifying an inclusion proof").
 */
#include "merkle.h"
#include "error.h"

#include <string.h>

#include <sodium.h>

static void node_hash(const uint8_t *left, const uint8_t *right, uint8_t out[LIA_HASH_BYTES])
{
    crypto_generichash_state st;
    static const uint8_t prefix = 0x01;
    crypto_generichash_init(&st, NULL, 0, LIA_HASH_BYTES);
    crypto_generichash_update(&st, &prefix, 1);
    crypto_generichash_update(&st, left, LIA_HASH_BYTES);
    crypto_generichash_update(&st, right, LIA_HASH_BYTES);
    crypto_generichash_final(&st, out, LIA_HASH_BYTES);
}

/* Largest power of two strictly less than n (n >= 2). */
static size_t split_point(size_t n)
{
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* MTH(leaves[lo..hi)), appending each subtree's sibling to the proofs of the other side. */
static void build(const uint8_t (*leaves)[LIA_HASH_BYTES], size_t lo, size_t hi,
                  uint8_t out[LIA_HASH_BYTES], lia_merkle_proof *proofs)
{
    uint8_t left[LIA_HASH_BYTES], right[LIA_HASH_BYTES];
    size_t k;

    if (hi - lo == 1) {
        memcpy(out, leaves[lo], LIA_HASH_BYTES);
        return;
    }
    k = split_point(hi - lo);
    build(leaves, lo, lo + k, left, proofs);
    build(leaves, lo + k, hi, right, proofs);
    if (proofs) {
        for (size_t i = lo; i < lo + k; i++)
            memcpy(proofs[i].path[proofs[i].len++], right, LIA_HASH_BYTES);
        for (size_t i = lo + k; i < hi; i++)
            memcpy(proofs[i].path[proofs[i].len++], left, LIA_HASH_BYTES);
    }
    node_hash(left, right, out);
}

int lia_merkle_build(const uint8_t (*leaves)[LIA_HASH_BYTES], size_t n,
                     uint8_t root[LIA_HASH_BYTES], lia_merkle_proof *proofs)
{
    if (n == 0 || n > LIA_MERKLE_MAX_LEAVES)
        return LIA_ERR_INVALID;
    if (proofs)
        for (size_t i = 0; i < n; i++)
            proofs[i].len = 0;
    build(leaves, 0, n, root, proofs);
    return 0;
}

int lia_merkle_root_from_proof(const uint8_t leaf[LIA_HASH_BYTES], uint32_t index, uint32_t size,
                               const uint8_t (*path)[LIA_HASH_BYTES], size_t path_len,
                               uint8_t root[LIA_HASH_BYTES])
{
    uint64_t fn = index, sn;
    uint8_t r[LIA_HASH_BYTES];

    if (size == 0 || size > LIA_MERKLE_MAX_LEAVES || index >= size ||
        path_len > LIA_MERKLE_MAX_DEPTH)
        return LIA_ERR_PROOF;
    sn = (uint64_t)size - 1;
    memcpy(r, leaf, LIA_HASH_BYTES);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0)
            return LIA_ERR_PROOF;
        if ((fn & 1) || fn == sn) {
            node_hash(path[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            node_hash(r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return LIA_ERR_PROOF;
    memcpy(root, r, LIA_HASH_BYTES);
    return 0;
}
