/* Bump arena for protobuf-c decoding (see arena.h). */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

struct lia_arena_chunk {
    struct lia_arena_chunk *next;
    _Alignas(16) unsigned char data[];
};

#define ALIGN    16u
#define OVERHEAD 16u /* charged per block: about what malloc would have spent */

/* Carves size bytes (rounded up to ALIGN) from the current buffer, or from a new heap chunk
 * of at least twice the last one's size; NULL if the budget or the heap says no. */
static void *arena_alloc(void *data, size_t size)
{
    lia_arena *a = data;
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1), cost = size + OVERHEAD;
    void *p;

    if (need < size || cost < size || cost > a->limit - a->charged) {
        a->exhausted = true;
        return NULL;
    }
    if (need == 0)
        need = ALIGN;
    if (a->left < need) {
        size_t cap = a->grow;
        struct lia_arena_chunk *c;
        if (cap < need)
            cap = need;
        if (cap > SIZE_MAX - sizeof *c || !(c = malloc(sizeof *c + cap)))
            return NULL;
        c->next = a->chunks;
        a->chunks = c;
        a->next = c->data;
        a->left = cap;
        if (a->grow <= SIZE_MAX / 2)
            a->grow *= 2;
    }
    a->charged += cost;
    p = a->next;
    a->next += need;
    a->left -= need;
    return p;
}

/* Blocks go with the arena, never one by one (protobuf-c frees only on a failed unpack). */
static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void lia_arena_init(lia_arena *a, size_t limit)
{
    a->pb.alloc = arena_alloc;
    a->pb.free = arena_free;
    a->pb.allocator_data = a;
    a->charged = 0;
    a->limit = limit;
    a->exhausted = false;
    a->next = a->first;
    a->left = sizeof a->first;
    a->grow = sizeof a->first;
    a->chunks = NULL;
}

void lia_arena_release(lia_arena *a)
{
    if (!a)
        return;
    while (a->chunks) {
        struct lia_arena_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    a->next = a->first;
    a->left = sizeof a->first;
    a->grow = sizeof a->first;
    a->charged = 0;
    a->exhausted = false;
}

bool lia_arena_exhausted(const lia_arena *a)
{
    return a->exhausted;
}
