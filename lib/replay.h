/*
 * Receiver-side replay protection, reusable by the node and by tests: per stream (a sender
 * and a destination) the highest sender sequence accepted so far, plus a bounded memory of
 * recent message ids. Within a stream messages must arrive in order: a sequence at or below
 * the last one is a replay, one that skips ahead is a gap (the caller holds it until the
 * missing ones arrive). check and commit are separate so that state changes only after the
 * message was fully verified and stored.
 */
#ifndef LIA_REPLAY_H
#define LIA_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define LIA_STREAM_ID_BYTES 32
#define LIA_MESSAGE_ID_BYTES 16

typedef struct lia_replay lia_replay_t;

/* id_memory: how many recent message ids are remembered (>= 1). */
int lia_replay_new(size_t id_memory, lia_replay_t **out) __attribute__((warn_unused_result));
void lia_replay_destroy(lia_replay_t **p);

/*
 * 0 if a message with this sequence and id may be accepted now; LIA_ERR_REPLAY if the id was
 * seen or seq <= the stream's last; LIA_ERR_SEQ_GAP if seq skips ahead. On an unknown stream
 * only seq 1 is accepted, unless may_start is set (the envelope starts a key epoch that
 * includes this node, so the stream legitimately starts later for it).
 */
int lia_replay_check(const lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES],
                     uint64_t seq, const uint8_t msgid[LIA_MESSAGE_ID_BYTES], int may_start)
    __attribute__((warn_unused_result));

/* Records an accepted message (call only after lia_replay_check returned 0). */
int lia_replay_commit(lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES], uint64_t seq,
                      const uint8_t msgid[LIA_MESSAGE_ID_BYTES]) __attribute__((warn_unused_result));

/* Last accepted sequence of a stream (0 if unknown), and restoring it from a durable store. */
uint64_t lia_replay_last(const lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES]);
int lia_replay_set_last(lia_replay_t *r, const uint8_t stream[LIA_STREAM_ID_BYTES], uint64_t seq)
    __attribute__((warn_unused_result));

#endif
