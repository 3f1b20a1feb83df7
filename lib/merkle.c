/*
 * RFC 9162 Merkle trees over leaf hashes: building all proofs of a batch in O(n log n) and
 * recomputing a root from one proof (section 2.1.3.2, "verifying an inclusion proof").
 */
#include "merkle.h"
#include "error.h"

#include <stdlib.h>
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

/*
 * Nodes are addressed by (level, position): level l has positions 0 .. (size - 1) >> l, and
 * position j covers leaves [j << l, min((j + 1) << l, size)); a right-edge node without a
 * sibling has the same hash as its parent (RFC 9162 trees promote it), which is why the walk
 * below promotes before it combines. Each level is a dense array with a "known" flag.
 */
struct lia_merkle_known {
    uint32_t size, depth;
    uint32_t off[LIA_MERKLE_MAX_DEPTH + 2]; /* first slot of each level */
    uint8_t *known;
    uint8_t (*hash)[LIA_HASH_BYTES];
};

int lia_merkle_known_new(uint32_t size, const uint8_t root[LIA_HASH_BYTES],
                         lia_merkle_known_t **out)
{
    lia_merkle_known_t *k;
    uint32_t total = 0, l;

    *out = NULL;
    if (size == 0 || size > LIA_MERKLE_KNOWN_MAX_LEAVES)
        return LIA_ERR_INVALID;
    if (!(k = calloc(1, sizeof *k)))
        return LIA_ERR_NOMEM;
    k->size = size;
    for (l = 0;; l++) {
        k->off[l] = total;
        total += ((size - 1) >> l) + 1;
        if (((size - 1) >> l) == 0)
            break;
    }
    k->depth = l;
    k->known = calloc(total, 1);
    k->hash = malloc((size_t)total * LIA_HASH_BYTES);
    if (!k->known || !k->hash) {
        lia_merkle_known_destroy(&k);
        return LIA_ERR_NOMEM;
    }
    memcpy(k->hash[k->off[k->depth]], root, LIA_HASH_BYTES);
    k->known[k->off[k->depth]] = 1;
    *out = k;
    return 0;
}

void lia_merkle_known_destroy(lia_merkle_known_t **p)
{
    if (!p || !*p)
        return;
    free((*p)->known);
    free((*p)->hash);
    free(*p);
    *p = NULL;
}

struct learned {
    uint32_t slot;
    const uint8_t *h;
};

int lia_merkle_known_prove(lia_merkle_known_t *k, const uint8_t leaf[LIA_HASH_BYTES],
                           uint32_t index, const uint8_t (*path)[LIA_HASH_BYTES], size_t path_len)
{
    /* One node per level (computed or promoted) and one sibling per step. */
    uint8_t r[LIA_MERKLE_MAX_DEPTH + 1][LIA_HASH_BYTES];
    struct learned learn[3 * LIA_MERKLE_MAX_DEPTH + 2];
    size_t n_learn = 0, i, nr = 0;
    uint32_t fn = index, sn, l = 0, slot;

    if (index >= k->size || path_len > LIA_MERKLE_MAX_DEPTH)
        return LIA_ERR_PROOF;
    sn = k->size - 1;
    memcpy(r[0], leaf, LIA_HASH_BYTES);
    /*
     * Hash up until a known node; from there on every sibling of the proof must be the one
     * already known, so that acceptance never depends on what this set happens to hold (the
     * same proofs pass and fail as with lia_merkle_root_from_proof).
     */
    int met = 0;
/* Meets node (l, fn) with hash r[nr]: compare if known, else remember to learn it. */
#define VISIT()                                                                                    \
    do {                                                                                           \
        if (l > k->depth)                                                                          \
            return LIA_ERR_PROOF;                                                                  \
        slot = k->off[l] + fn;                                                                     \
        if (!met && k->known[slot]) {                                                              \
            if (memcmp(k->hash[slot], r[nr], LIA_HASH_BYTES) != 0)                                 \
                return LIA_ERR_PROOF;                                                              \
            met = 1;                                                                               \
        } else if (!met) {                                                                         \
            learn[n_learn].slot = slot;                                                            \
            learn[n_learn++].h = r[nr];                                                            \
        }                                                                                          \
    } while (0)
    for (i = 0;; i++) {
        int left;
        VISIT();
        if (sn == 0)
            break;
        if (i == path_len)
            return LIA_ERR_PROOF;
        if ((fn & 1) || fn == sn) {
            /* Promote a right-edge node to where it is a right child, then combine. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
                l++;
                VISIT();
            }
            if (fn == 0)
                return LIA_ERR_PROOF;
            slot = k->off[l] + fn - 1;
            left = 1;
        } else {
            slot = k->off[l] + fn + 1;
            left = 0;
        }
        if (met) {
            if (!k->known[slot] || memcmp(k->hash[slot], path[i], LIA_HASH_BYTES) != 0)
                return LIA_ERR_PROOF;
        } else {
            learn[n_learn].slot = slot;
            learn[n_learn++].h = path[i];
            if (left)
                node_hash(path[i], r[nr], r[nr + 1]);
            else
                node_hash(r[nr], path[i], r[nr + 1]);
            nr++;
        }
        fn >>= 1;
        sn >>= 1;
        l++;
    }
#undef VISIT
    if (i != path_len || !met)
        return LIA_ERR_PROOF;
    for (size_t j = 0; j < n_learn; j++) {
        memcpy(k->hash[learn[j].slot], learn[j].h, LIA_HASH_BYTES);
        k->known[learn[j].slot] = 1;
    }
    return 0;
}
