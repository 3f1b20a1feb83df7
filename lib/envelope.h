/*
 * Sealed envelopes: the unit that nodes exchange through the broker.
 *
 * Sealing encrypts a payload with the sender's symmetric key for (destination, epoch)
 * (XChaCha20-Poly1305, the exact header bytes as associated data), hashes header and
 * ciphertext into a Merkle leaf, and signs the root of the batch once (Ed25519). Opening checks,
 * in order: size bounds, strict decoding, the sender's certificate at the creation time,
 * that this node is entitled (recipient or channel member), the batch proof and signature,
 * the key (possibly handed over in the header), replay and sequence, and finally decrypts.
 * Nothing in the opener's state changes unless every check passed. docs/protocol.md gives
 * every byte.
 */
#ifndef LIA_ENVELOPE_H
#define LIA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "replay.h"
#include "trust.h"
#include "vault.h"

#define LIA_ENVELOPE_MAX      (32u << 20) /* whole envelope, checked before decoding */
#define LIA_HEADER_MAX        (64u << 10) /* header including a key grant */
#define LIA_CHANNEL_MAX       64
#define LIA_RECIPIENTS_MAX    256 /* recipients of a direct message, and key grants */
#define LIA_CLOCK_SKEW_MS     (5u * 60u * 1000u)
#define LIA_DEST_DIGEST_BYTES 32

/* A destination: a channel name, or a set of node ids in strictly ascending order. */
typedef struct {
    const char *channel;           /* non-NULL: channel destination */
    const char *const *recipients; /* otherwise: direct message */
    size_t n_recipients;
} lia_dest;

typedef struct {
    lia_dest dest;
    uint64_t epoch;
    uint64_t seq; /* sender sequence for (sender, destination), from 1 */
    uint64_t created_at_ms;
    uint64_t expires_at_ms;            /* 0: none */
    const lia_symkey_t *key;           /* sender's key for (destination, epoch) */
    const lia_cert_info *const *grant; /* if n_grant > 0: hand key to these nodes */
    size_t n_grant;                    /* ascending by node id */
    const uint8_t *payload;            /* serialised Payload */
    size_t payload_len;
    uint8_t *message_id_out; /* if not NULL: receives the envelope's 16-byte message id */
} lia_seal_item;

typedef struct {
    uint8_t *data; /* malloc'd; owned by the caller */
    size_t len;
} lia_buf;

/* What an opened envelope says; free with lia_opened_free. */
typedef struct {
    char sender[LIA_NODE_ID_MAX + 1];
    uint64_t sender_cert_serial;
    char channel[LIA_CHANNEL_MAX + 1]; /* empty for a direct message */
    size_t n_recipients;               /* direct message: number of recipients */
    uint64_t epoch;
    uint64_t seq;
    uint64_t created_at_ms;
    uint64_t expires_at_ms;
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint32_t batch_size;
    uint8_t stream_id[LIA_STREAM_ID_BYTES]; /* for persisting the replay window */
    uint8_t dest_digest[LIA_DEST_DIGEST_BYTES];
    const lia_symkey_t *new_key; /* key this envelope handed over (owned by the opener), or NULL */
    uint8_t *payload;            /* plaintext, wiped on free */
    size_t payload_len;
} lia_opened;

/* Routing metadata of an envelope, decoded strictly but NOT verified (see lia_envelope_inspect). */
typedef struct {
    char sender[LIA_NODE_ID_MAX + 1];
    uint8_t sender_key_id[LIA_KEY_ID_BYTES];
    char channel[LIA_CHANNEL_MAX + 1]; /* empty for a direct message */
    size_t n_recipients;
    char (*recipients)[LIA_NODE_ID_MAX + 1]; /* n_recipients entries, ascending */
    uint64_t epoch;
    uint64_t seq;
    uint64_t created_at_ms;
    uint64_t expires_at_ms;
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint8_t dest_digest[LIA_DEST_DIGEST_BYTES];
    uint8_t stream_id[LIA_STREAM_ID_BYTES]; /* lia_envelope_stream_id(sender, dest_digest) */
    size_t n_granted;                       /* wrapped keys in a key grant, 0 if none */
    uint32_t leaf_index;
    uint32_t leaf_count;
    size_t header_len;
    size_t ciphertext_len;
} lia_envelope_meta;

/*
 * Decodes an envelope and its header with every structural check of lia_opener_open (sizes,
 * canonical encoding, field syntax) but no cryptography: for the broker's routing, which is
 * tied to the authenticated connection, and for diagnostics. On success *out is owned by the
 * caller (lia_envelope_meta_free).
 */
int lia_envelope_inspect(const uint8_t *buf, size_t len, lia_envelope_meta **out) LIA_WUR;
void lia_envelope_meta_free(lia_envelope_meta **p);

/*
 * The hashes of the last channel stream inspected, for lia_envelope_inspect_cached: the
 * envelopes of one Publish are mostly one stream, whose destination digest and stream id need
 * hashing once. Caller-owned and zeroed before first use; what it holds is reused only for the
 * same channel and sender strings.
 */
typedef struct {
    int valid;
    char channel[LIA_CHANNEL_MAX + 1];
    char sender[LIA_NODE_ID_MAX + 1];
    uint8_t digest[LIA_DEST_DIGEST_BYTES];
    uint8_t stream[LIA_STREAM_ID_BYTES];
} lia_inspect_cache;

/* lia_envelope_inspect, reusing and updating cache (NULL: none). */
int lia_envelope_inspect_cached(const uint8_t *buf, size_t len, lia_inspect_cache *cache,
                                lia_envelope_meta **out) LIA_WUR;

/* 1 if node_id may send to and read channel (the caller's membership view). */
typedef int (*lia_member_fn)(void *arg, const char *channel, const char *node_id);

typedef struct lia_opener lia_opener_t;

/* 1 if s is a valid channel name: 1..64 bytes of [a-z0-9._:-], starting with [a-z0-9]. */
int lia_channel_valid(const char *s);

/* The replay stream of (sender, destination digest): protocol.md section 4.8. */
void lia_envelope_stream_id(const char *sender, const uint8_t dest[LIA_DEST_DIGEST_BYTES],
                            uint8_t out[LIA_STREAM_ID_BYTES]);

/* Validates a destination and computes its digest (protocol.md, "destination digest"). */
int lia_dest_digest(const lia_dest *d, uint8_t out[LIA_DEST_DIGEST_BYTES]) LIA_WUR;

/*
 * Seals n items (1..LIA_MERKLE_MAX_LEAVES) from sender_id with one signature. out has n
 * entries; on success each receives a malloc'd envelope owned by the caller. On failure no
 * output is left allocated.
 */
int lia_envelope_seal_batch(const lia_identity_t *sender, const char *sender_id,
                            const lia_seal_item *items, size_t n, lia_buf *out) LIA_WUR;

/*
 * A new opener for node my_id holding identity me; trust and me are borrowed and must outlive
 * the opener. Channel envelopes are refused until a membership function is set.
 */
int lia_opener_new(lia_trust_t *trust, const lia_identity_t *me, const char *my_id,
                   lia_opener_t **out) LIA_WUR;
void lia_opener_destroy(lia_opener_t **p);
void lia_opener_set_membership(lia_opener_t *o, lia_member_fn fn, void *arg);
/*
 * Replaces the borrowed trust store (a node reloading its certificates); the old one may be
 * destroyed afterwards. Keys, replay state and verified batch roots are kept: every open
 * still looks the sender's certificate up in the new store first. NULL is ignored.
 */
void lia_opener_set_trust(lia_opener_t *o, lia_trust_t *trust);
lia_replay_t *lia_opener_replay(lia_opener_t *o);

/*
 * Gives the opener a key restored from the node's store (ownership of key moves to the
 * opener, also on error).
 */
int lia_opener_add_key(lia_opener_t *o, const char *sender,
                       const uint8_t dest_digest[LIA_DEST_DIGEST_BYTES], uint64_t epoch,
                       lia_symkey_t *key) LIA_WUR;

/*
 * Verifies and decrypts one envelope received at now_ms. On success *out is owned by the
 * caller. On any error the opener is unchanged and *out is NULL.
 */
int lia_opener_open(lia_opener_t *o, const uint8_t *buf, size_t len, uint64_t now_ms,
                    lia_opened **out) LIA_WUR;
void lia_opened_free(lia_opened **p);

#endif
