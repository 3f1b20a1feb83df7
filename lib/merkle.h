/*
 * Batch signing trees. A node under load signs one Merkle root over a batch of envelope leaf
 * hashes; each envelope carries its inclusion proof. The tree shape, hash domain separation
 * and proof verification follow RFC 9162 (Certificate Transparency 2.0) section 2.1, with
 * BLAKE2b-256 as the hash:
 *   leaf hash  = given by the caller (computed with a 0x00 prefix, see envelope.c)
 *   node hash  = BLAKE2b-256(0x01 || left || right)
 * A batch of one has an empty proof and its root is the leaf hash.
 */
#ifndef LIA_MERKLE_H
#define LIA_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define LIA_HASH_BYTES        32
#define LIA_MERKLE_MAX_LEAVES 65536u
#define LIA_MERKLE_MAX_DEPTH  16 /* ceil(log2(LIA_MERKLE_MAX_LEAVES)) */

typedef struct {
    uint8_t path[LIA_MERKLE_MAX_DEPTH][LIA_HASH_BYTES]; /* sibling hashes, leaf to root */
    uint8_t len;
} lia_merkle_proof;

/*
 * Computes the root over n leaf hashes (1 <= n <= LIA_MERKLE_MAX_LEAVES) and, if proofs is
 * not NULL, the inclusion proof of every leaf (proofs has n entries).
 */
int lia_merkle_build(const uint8_t (*leaves)[LIA_HASH_BYTES], size_t n,
                     uint8_t root[LIA_HASH_BYTES], lia_merkle_proof *proofs)
    __attribute__((warn_unused_result));

/*
 * Recomputes the root implied by a leaf hash and its proof for position index in a tree of
 * size leaves. Returns LIA_ERR_PROOF if index/size/path length are inconsistent. The caller
 * must still check the root against a verified signature.
 */
int lia_merkle_root_from_proof(const uint8_t leaf[LIA_HASH_BYTES], uint32_t index, uint32_t size,
                               const uint8_t (*path)[LIA_HASH_BYTES], size_t path_len,
                               uint8_t root[LIA_HASH_BYTES]) __attribute__((warn_unused_result));

/*
 * The authenticated nodes of one tree whose root the caller has verified (a batch signature):
 * a receiver proves every further leaf of that batch by walking up only until it meets a node
 * it already knows, typically one or two hashes instead of one per level. Trees of up to
 * LIA_MERKLE_KNOWN_MAX_LEAVES leaves; memory about 2 * size * 33 bytes.
 */
#define LIA_MERKLE_KNOWN_MAX_LEAVES 4096u

typedef struct lia_merkle_known lia_merkle_known_t;

/* A set holding only the root of a tree of size leaves. LIA_ERR_INVALID for a size out of range. */
int lia_merkle_known_new(uint32_t size, const uint8_t root[LIA_HASH_BYTES],
                         lia_merkle_known_t **out) __attribute__((warn_unused_result));
void lia_merkle_known_destroy(lia_merkle_known_t **p);

/*
 * Proves that leaf sits at position index of the known tree, using the proof's path exactly
 * as lia_merkle_root_from_proof would (the same RFC 9162 walk and the same refusals), but
 * stopping at the first node already known. On success the nodes this proof established
 * become known. LIA_ERR_PROOF if the walk meets a known node (or the root) with another hash,
 * or the proof is inconsistent; the set is then unchanged.
 */
int lia_merkle_known_prove(lia_merkle_known_t *k, const uint8_t leaf[LIA_HASH_BYTES],
                           uint32_t index, const uint8_t (*path)[LIA_HASH_BYTES], size_t path_len)
    __attribute__((warn_unused_result));

#endif
