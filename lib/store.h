/*
 * Durable storage: the only module that includes SQLite. Two stores share it:
 *
 *  - the broker's log (lia_bstore_*): every accepted envelope once, and for each receiving node
 *    its own delivery sequence (1, 2, 3...) and a durable cursor (highest sequence the node
 *    acknowledged);
 *  - a node's store (lia_nstore_*): the outbox (sealed envelopes not yet acknowledged by the
 *    broker), the inbox (opened messages, payload encrypted at rest), the cursor, and the
 *    sender/receiver stream state that must survive restarts.
 *
 * Durability contract: nothing is durable until lia_*_commit returns 0. Commit runs in
 * WAL mode with synchronous=FULL, i.e. it fsyncs; callers group many appends per commit
 * (group commit) and acknowledge only after it returns. A failed commit returns
 * LIA_ERR_STORAGE and leaves the store unusable: the caller must exit (a failed fsync is not
 * retried). Every blob is bounded on the way in and re-checked on the way out.
 */
#ifndef LIA_STORE_H
#define LIA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

/* ---------------- broker log ---------------- */

/* Recipients of one append: a channel fan-out may exceed LIA_RECIPIENTS_MAX. */
#define LIA_BSTORE_RECIPIENTS_MAX 100000

typedef struct lia_bstore lia_bstore_t;

typedef struct {
    uint64_t seq;  /* the node's delivery sequence */
    uint8_t *data; /* envelope bytes, malloc'd, owned by the caller */
    size_t len;
} lia_bstore_item;

/* Opens (creating if needed, mode 0600) the log at path. */
int lia_bstore_open(const char *path, lia_bstore_t **out) LIA_WUR;
void lia_bstore_close(lia_bstore_t **p);

/* Starts a group of appends and acks that lia_bstore_commit makes durable at once. */
int lia_bstore_begin(lia_bstore_t *s) LIA_WUR;

/*
 * Within a group: stores an envelope once and gives each of the n recipients (node ids) the
 * next sequence of its own delivery stream. If message_id is already stored, stores nothing
 * and sets *duplicate = 1 (the caller acknowledges again: retries are idempotent).
 */
int lia_bstore_append(lia_bstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES],
                      const char *sender, const uint8_t *env, size_t len,
                      const char *const *recipients, size_t n, int *duplicate) LIA_WUR;

/*
 * Per sender stream (sender, destination; lia_envelope_stream_id), the last sender sequence
 * stored, so that the broker stores each stream in order: a publish that skips ahead is not
 * stored (the sender republishes its outbox in order).
 */
int lia_bstore_stream_last(lia_bstore_t *s, const uint8_t stream[LIA_STREAM_ID_BYTES],
                           uint64_t *last) LIA_WUR;
/* *found = 1 if an envelope with this message id is stored, or was and has not been forgotten
 * yet (lia_bstore_prune): collection of its bytes does not forget it. */
int lia_bstore_has(lia_bstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES],
                   int *found) LIA_WUR;
/* Within a group: seq is now the last sequence stored for the stream. */
int lia_bstore_stream_set(lia_bstore_t *s, const uint8_t stream[LIA_STREAM_ID_BYTES],
                          uint64_t seq) LIA_WUR;

/* Within a group: the node has durably stored everything up to seq (cursor only moves up: a
 * lower seq is a no-op; seq above the durable head is LIA_ERR_INVALID). Deliveries up to the
 * cursor are collected, and an envelope's bytes once every recipient acknowledged it (its
 * message id stays until lia_bstore_prune, so a late retry is still a duplicate). */
int lia_bstore_ack(lia_bstore_t *s, const char *node, uint64_t seq) LIA_WUR;

/* Ends the group: one fsync. LIA_ERR_STORAGE is fatal for the store. */
int lia_bstore_commit(lia_bstore_t *s) LIA_WUR;

/*
 * Up to max envelopes of node's stream with sequence > after, in order; *n set to the number
 * returned. Only committed sequences are returned (never one that a lost group could take back).
 * Items are owned by the caller (lia_bstore_items_free).
 */
int lia_bstore_fetch(lia_bstore_t *s, const char *node, uint64_t after, size_t max,
                     lia_bstore_item *items, size_t *n) LIA_WUR;
void lia_bstore_items_free(lia_bstore_item *items, size_t n);

/* The node's durable cursor and the highest sequence durably assigned to it (0 if none). */
int lia_bstore_cursor(lia_bstore_t *s, const char *node, uint64_t *cursor, uint64_t *head) LIA_WUR;

/*
 * What the log still holds for delivery: the number of batch bodies (the envelopes of one
 * group for one recipient list) and their bytes. A body goes when every recipient of every
 * envelope in it has acknowledged it, so an absent node holds only the batches addressed to it.
 */
int lia_bstore_held(lia_bstore_t *s, uint64_t *batches, uint64_t *bytes) LIA_WUR;

/*
 * Within a group: one step of forgetting envelopes stored before before_ms (Unix ms) that every
 * recipient has acknowledged. Their message ids go, so a retry of one after this is no longer
 * recognised (lia_bstore_has says 0). Never one still owed to a node, never the newest. A step
 * looks at no more than `scan` rows, oldest first, and goes on where the last one stopped;
 * *done is set when a round has looked at every row stored before before_ms (the next step
 * starts again from the oldest). *pruned = how many this step forgot.
 */
int lia_bstore_prune(lia_bstore_t *s, uint64_t before_ms, size_t scan, size_t *pruned,
                     int *done) LIA_WUR;

#define LIA_NSTORE_STATE_MAX     (64u << 10) /* bytes of one state value */
#define LIA_NSTORE_STATE_KEY_MAX 128         /* bytes of a state key */
#define LIA_NSTORE_REASON_MAX    256         /* bytes of a refusal reason */
#define LIA_BSTORE_STATE_MAX     (64u << 10) /* bytes of one broker state value */

typedef struct {
    char *key;
    uint8_t *val;
    size_t len;
} lia_nstore_kv;

/*
 * Broker state that must survive restarts (the channels' membership changes, one per key):
 * 1..LIA_BSTORE_STATE_MAX bytes under a text key of 1..LIA_NSTORE_STATE_KEY_MAX bytes. Not
 * encrypted (nothing secret: what the broker relays). put: within a group, durable at commit.
 * list: every entry whose key starts with prefix, in key order; *out owned by the caller
 * (lia_nstore_kv_free).
 */
int lia_bstore_state_put(lia_bstore_t *s, const char *key, const uint8_t *val, size_t len) LIA_WUR;
int lia_bstore_state_list(lia_bstore_t *s, const char *prefix, lia_nstore_kv **out,
                          size_t *n) LIA_WUR;

/* ---------------- node store ---------------- */

typedef struct lia_nstore lia_nstore_t;

typedef struct {
    uint64_t id; /* outbox row id, ascending in submission order */
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint8_t *data; /* envelope, malloc'd, owned by the caller */
    size_t len;
} lia_nstore_out;

typedef struct {
    uint64_t delivery_seq; /* broker's delivery sequence to this node */
    char sender[LIA_NODE_ID_MAX + 1];
    char channel[LIA_CHANNEL_MAX + 1];
    uint64_t sender_seq;
    uint64_t created_at_ms;
    uint64_t received_at_ms;
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint8_t *payload; /* plaintext, malloc'd, owned by the caller (wipe before free) */
    size_t payload_len;
} lia_nstore_msg;

/*
 * Opens (creating if needed, mode 0600) a node store. storage_key encrypts payloads and
 * symmetric keys at rest (borrowed; from lia_identity_storage_key). Every change (outbox,
 * inbox, state) happens between begin and commit (LIA_ERR_INVALID otherwise).
 */
int lia_nstore_open(const char *path, const lia_symkey_t *storage_key, lia_nstore_t **out) LIA_WUR;
void lia_nstore_close(lia_nstore_t **p);
int lia_nstore_begin(lia_nstore_t *s) LIA_WUR;
/* Commits the group and makes it durable (fdatasync of the WAL) before returning 0. */
int lia_nstore_commit(lia_nstore_t *s) LIA_WUR;

/*
 * Deferred durability, for a loop that prepares its next group while the last one syncs:
 * lia_nstore_commit_unsynced commits (the group is visible to this handle's reads and will be
 * in every later sync) but it may be lost in a crash until a sync started after it returns 0.
 * lia_nstore_sync_start starts that fdatasync on the store's thread (LIA_ERR_INVALID if one
 * is running); lia_nstore_sync_fd becomes readable when it ended; lia_nstore_sync_wait waits
 * for it: 0 means every group committed before the start is durable, LIA_ERR_STORAGE that the
 * sync failed and the store is failed (nothing is retried). Nothing that depends on a group
 * may leave the process before then. lia_nstore_commit also makes unsynced groups durable.
 */
int lia_nstore_commit_unsynced(lia_nstore_t *s) LIA_WUR;
int lia_nstore_sync_start(lia_nstore_t *s) LIA_WUR;
int lia_nstore_sync_fd(const lia_nstore_t *s);
int lia_nstore_sync_running(const lia_nstore_t *s);
int lia_nstore_sync_wait(lia_nstore_t *s) LIA_WUR;

/* Outbox. add: LIA_ERR_EXISTS if message_id is pending; ack: idempotent. */
int lia_nstore_outbox_add(lia_nstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES],
                          const uint8_t *env, size_t len, uint64_t *id) LIA_WUR;
int lia_nstore_outbox_ack(lia_nstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES]) LIA_WUR;
/* Up to max unacknowledged envelopes with id > after, in order. */
int lia_nstore_outbox_pending(lia_nstore_t *s, uint64_t after, size_t max, lia_nstore_out *out,
                              size_t *n) LIA_WUR;
void lia_nstore_out_free(lia_nstore_out *out, size_t n);
int lia_nstore_outbox_count(lia_nstore_t *s, uint64_t *count) LIA_WUR;

/* Inbox: a message opened from delivery delivery_seq; advances the cursor to it. */
int lia_nstore_inbox_add(lia_nstore_t *s, const lia_nstore_msg *m) LIA_WUR;
/* The durable cursor (highest delivery_seq stored by a committed group, refusals included). */
int lia_nstore_cursor(lia_nstore_t *s, uint64_t *cursor) LIA_WUR;
/* Records a delivery that was refused (with its reason) so the cursor still advances. */
int lia_nstore_inbox_refused(lia_nstore_t *s, uint64_t delivery_seq, const char *reason) LIA_WUR;
/* Messages with delivery_seq > after (optionally one channel), in order. */
int lia_nstore_inbox_list(lia_nstore_t *s, uint64_t after, const char *channel, size_t max,
                          lia_nstore_msg *out, size_t *n) LIA_WUR;
void lia_nstore_msgs_free(lia_nstore_msg *m, size_t n);

/* Key-value state that must survive restarts (sender sequences, epochs, stream windows,
 * symmetric keys...): up to LIA_NSTORE_STATE_MAX bytes under a text key; the store encrypts
 * every value at rest with the storage key. get: LIA_ERR_NOT_FOUND if unset. */
int lia_nstore_state_put(lia_nstore_t *s, const char *key, const uint8_t *val, size_t len) LIA_WUR;
int lia_nstore_state_get(lia_nstore_t *s, const char *key, uint8_t **val, size_t *len) LIA_WUR;

/* Every state entry whose key starts with prefix, in key order; *out owned by the caller
 * (lia_nstore_kv_free wipes the values). */
int lia_nstore_state_list(lia_nstore_t *s, const char *prefix, lia_nstore_kv **out,
                          size_t *n) LIA_WUR;
void lia_nstore_kv_free(lia_nstore_kv *kv, size_t n);

/* ---------------- hub index (node store) ---------------- */

/*
 * A hub keeps a search index of the messages in its inbox (lib/hub.c decides which terms of a
 * payload are indexed and how they are normalised). Terms are never stored in clear: each
 * (kind, normalised term) becomes a token, BLAKE2b-256 keyed with a subkey of the storage key
 * (lia_symkey_index_token), and the table hub_terms(token, delivery_seq) maps tokens to
 * deliveries. A search therefore finds exact (normalised) values only: no substring, prefix
 * or fuzzy match. The table, its statements and the watermark (meta "hub_indexed": every
 * message up to that delivery is indexed) exist once lia_nstore_hub_enable ran.
 */

/* Kinds of indexed terms; part of every token, so equal text of two kinds never matches. */
typedef enum {
    LIA_HUB_CASE = 1,     /* case reference, or request id of an information exchange */
    LIA_HUB_PERSON = 2,   /* a person's names and aliases */
    LIA_HUB_DOCUMENT = 3, /* document number */
    LIA_HUB_VEHICLE = 4,  /* registration plate or VIN */
    LIA_HUB_PLACE = 5,    /* a place (name or country code) on a route */
    LIA_HUB_OFFICER = 6,  /* the accountable officer named in the payload */
    LIA_HUB_KIND_MAX = 6
} lia_hub_kind;

#define LIA_HUB_TERM_MAX        1024 /* bytes of one normalised term */
#define LIA_HUB_QUERY_TERMS_MAX 8    /* terms in one query (all must match) */

typedef struct {
    lia_hub_kind kind;
    const char *text; /* normalised (lia_hub_normalise), not NUL-terminated necessarily */
    size_t len;       /* 1..LIA_HUB_TERM_MAX */
} lia_nstore_term;

/* A search: every condition given must hold. */
typedef struct {
    uint8_t tokens[LIA_HUB_QUERY_TERMS_MAX][LIA_INDEX_TOKEN_BYTES]; /* lia_nstore_hub_query_add */
    size_t n_tokens;
    char sender[LIA_NODE_ID_MAX + 1];  /* "" = any sender */
    char channel[LIA_CHANNEL_MAX + 1]; /* with by_channel: this channel ("" = direct messages) */
    int by_channel;
    uint64_t since_ms; /* created_at_ms >= since_ms (0: no lower bound) */
    uint64_t until_ms; /* created_at_ms < until_ms (0: no upper bound) */
} lia_nstore_hub_query;

/* Creates the index table if missing and prepares its statements (idempotent; outside a
 * group). */
int lia_nstore_hub_enable(lia_nstore_t *s) LIA_WUR;

/* In a group: indexes the n terms of the stored message delivery_seq (duplicates ignored) and
 * moves the watermark up to delivery_seq (n may be 0: "nothing to index, but done"). */
int lia_nstore_hub_add(lia_nstore_t *s, uint64_t delivery_seq, const lia_nstore_term *terms,
                       size_t n) LIA_WUR;

/* The watermark: every inbox message up to *upto is indexed (0 if never). */
int lia_nstore_hub_indexed(lia_nstore_t *s, uint64_t *upto) LIA_WUR;

/* Adds one term to a query as its token (LIA_ERR_LIMIT beyond LIA_HUB_QUERY_TERMS_MAX). */
int lia_nstore_hub_query_add(lia_nstore_t *s, lia_nstore_hub_query *q,
                             const lia_nstore_term *t) LIA_WUR;

/*
 * Up to max stored messages with delivery_seq > after that match q, in delivery order; like
 * lia_nstore_inbox_list otherwise (payloads decrypted, owned by the caller).
 */
int lia_nstore_hub_search(lia_nstore_t *s, const lia_nstore_hub_query *q, uint64_t after,
                          size_t max, lia_nstore_msg *out, size_t *n) LIA_WUR;

#endif
