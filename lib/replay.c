/*
 * Replay window: a map of streams to their last sequence, and a ring of recent message ids
 * indexed by a map so that the memory stays bounded whatever a peer sends.
 */
#include "replay.h"
#include "error.h"
#include "map.h"

#include <stdlib.h>
#include <string.h>

struct stream_state {
    uint64_t last;
};

struct lia_replay {
    lia_map_t *streams; /* stream id -> struct stream_state* */
    lia_map_t *ids;     /* message id -> non-NULL marker */
    uint8_t (*ring)[LIA_MESSAGE_ID_BYTES];
    size_t ring_cap, ring_next, ring_count;
};

static int marker; /* any non-NULL pointer marks presence in ids */

int lia_replay_new(size_t id_memory, lia_replay_t **out)
{
    lia_replay_t *r;

    *out = NULL;
    if (id_memory == 0)
        return LIA_ERR_INVALID;
    r = calloc(1, sizeof *r);
    if (!r)
        return LIA_ERR_NOMEM;
    r->ring = calloc(id_memory, LIA_MESSAGE_ID_BYTES);
    r->ring_cap = id_memory;
    if (!r->ring || lia_map_new(LIA_STREAM_ID_BYTES, free, &r->streams) != 0 ||
        lia_map_new(LIA_MESSAGE_ID_BYTES, NULL, &r->ids) != 0) {
        lia_replay_destroy(&r);
        return LIA_ERR_NOMEM;
    }
    *out = r;
    return 0;
}

void lia_replay_destroy(lia_replay_t **p)
{
    if (!p || !*p)
        return;
    lia_map_destroy(&(*p)->streams);
    lia_map_destroy(&(*p)->ids);
    free((*p)->ring);
    free(*p);
    *p = NULL;
}

int lia_replay_check(const lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES],
                     uint64_t seq, const uint8_t msgid[LIA_MESSAGE_ID_BYTES], int may_start)
{
    const struct stream_state *s;

    if (seq == 0)
        return LIA_ERR_INVALID;
    if (lia_map_get(r->ids, msgid))
        return LIA_ERR_REPLAY;
    s = lia_map_get(r->streams, stream);
    if (!s)
        return (seq == 1 || may_start) ? 0 : LIA_ERR_SEQ_GAP;
    if (seq <= s->last)
        return LIA_ERR_REPLAY;
    if (seq != s->last + 1)
        return LIA_ERR_SEQ_GAP;
    return 0;
}

int lia_replay_set_last(lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES], uint64_t seq)
{
    struct stream_state *s = lia_map_get(r->streams, stream);
    if (!s) {
        s = malloc(sizeof *s);
        if (!s)
            return LIA_ERR_NOMEM;
        if (lia_map_put(r->streams, stream, s) != 0) {
            free(s);
            return LIA_ERR_NOMEM;
        }
    }
    s->last = seq;
    return 0;
}

int lia_replay_commit(lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES], uint64_t seq,
                      const uint8_t msgid[LIA_MESSAGE_ID_BYTES])
{
    int rc;

    if (r->ring_count == r->ring_cap) {
        /* Forget the oldest id; the sequence check still covers everything older. */
        lia_map_remove(r->ids, r->ring[r->ring_next]);
        r->ring_count--;
    }
    if ((rc = lia_map_put(r->ids, msgid, &marker)) != 0)
        return rc;
    memcpy(r->ring[r->ring_next], msgid, LIA_MESSAGE_ID_BYTES);
    r->ring_next = (r->ring_next + 1) % r->ring_cap;
    r->ring_count++;
    return lia_replay_set_last(r, stream, seq);
}

uint64_t lia_replay_last(const lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES])
{
    const struct stream_state *s = lia_map_get(r->streams, stream);
    return s ? s->last : 0;
}
