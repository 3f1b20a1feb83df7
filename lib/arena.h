/*
 * A bump arena for decoding untrusted protobuf: every block protobuf-c allocates while it
 * unpacks one message comes from the arena, and the whole decoded message goes at once with
 * lia_arena_release. A decoded envelope or payload is a few dozen small blocks; carving them
 * from the arena's own first buffer (and, past it, from a few heap chunks) costs a fraction
 * of a malloc and free each. The arena also holds a budget: wire bytes can make protobuf-c
 * allocate far more than they weigh (a one-byte field becomes a whole struct), so an arena
 * refuses to hand out more than its limit, and the decode fails instead of the process.
 *
 * The struct is declared here so that a decoder can keep its arena on the stack; its fields
 * are private to arena.c.
 */
#ifndef LIA_ARENA_H
#define LIA_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#define LIA_ARENA_FIRST (8u << 10) /* bytes in the arena itself, before any heap chunk */

struct lia_arena_chunk;

typedef struct lia_arena {
    ProtobufCAllocator pb; /* give &arena->pb to an unpack function */
    size_t charged, limit; /* budget: what was handed out (with overhead) and its ceiling */
    bool exhausted;        /* a request was refused for the budget */
    unsigned char *next;   /* the free space of the current buffer... */
    size_t left;           /* ...and its size */
    size_t grow;           /* the size of the next heap chunk */
    struct lia_arena_chunk *chunks; /* heap chunks, newest first */
    _Alignas(16) unsigned char first[LIA_ARENA_FIRST];
} lia_arena;

/*
 * Prepares a (for example stack-allocated) arena that hands out at most limit bytes, counting
 * a small overhead per block. The first block handed out starts at a->first.
 */
void lia_arena_init(lia_arena *a, size_t limit);

/* Frees the arena's heap chunks, which releases everything it handed out; the arena can then
 * be initialised again. Accepts NULL. */
void lia_arena_release(lia_arena *a);

/* True if a request was refused because the budget was spent (a decode then failed for
 * that reason, not for the bytes). */
bool lia_arena_exhausted(const lia_arena *a);

#endif
