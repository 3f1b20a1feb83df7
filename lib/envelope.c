/*
 * Sealing and opening envelopes (see envelope.h for the order of checks and
 * docs/protocol.md for the byte strings). Everything decoded here is untrusted: sizes are
 * bounded before unpacking, encodings must be canonical (no unknown fields, re-packed size
 * equals the received size), and every field is checked before it is used.
 */
#define _POSIX_C_SOURCE 200809L
#include "envelope.h"
#include "arena.h"
#include "error.h"
#include "map.h"
#include "merkle.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "liaison/v1/envelope.pb-c.h"

static const char label_dest[] = "liaison.v1.dest";
static const char label_stream[] = "liaison.v1.stream";
static const char label_leaf[] = "liaison.v1.leaf";
static const char label_batch[] = "liaison.v1.batch";
static const char label_wrap_ad[] = "liaison.v1.wrap-ad";
static const char label_keyslot[] = "liaison.v1.keyslot";

#define ROOT_CACHE_SIZE 1024
#define BATCH_TREES     8 /* batches whose verified nodes are kept (a few senders interleaved) */
#define KEY_SLOTS_MAX   100000
#define ARENA_SLACK     (64u << 10) /* decoder allocations allowed beyond 16 x the size */
#define REPLAY_IDS      65536
#define BATCH_MSG_BYTES (sizeof label_batch + LIA_KEY_ID_BYTES + 4 + LIA_HASH_BYTES)
#define WRAP_AD_BYTES   (sizeof label_wrap_ad + 2 * LIA_KEY_ID_BYTES + LIA_DEST_DIGEST_BYTES + 8)

struct lia_opener {
    lia_trust_t *trust;
    const lia_identity_t *me;
    char my_id[LIA_NODE_ID_MAX + 1];
    uint8_t my_enc_key_id[LIA_KEY_ID_BYTES];
    lia_member_fn member;
    void *member_arg;
    lia_map_t *keys;  /* key slot -> lia_symkey_t* */
    lia_map_t *roots; /* hash of (signed batch message, signature) -> marker */
    uint8_t root_ring[ROOT_CACHE_SIZE][LIA_HASH_BYTES];
    size_t root_next, root_count;
    /* The most recently verified batches: their known Merkle nodes prove the next envelopes of
     * the same batch with a hash or two instead of a walk to the root. */
    struct {
        uint8_t key_id[LIA_KEY_ID_BYTES];
        uint32_t count;
        uint8_t signature[LIA_SIGNATURE_BYTES];
        lia_merkle_known_t *known;
    } trees[BATCH_TREES];
    size_t tree_next;
    lia_replay_t *replay;
    /* The hashes of the last channel stream opened (see cached_stream), and its key slot for
     * the epoch last seen on it: the next envelopes of the stream reuse them (three BLAKE2b
     * each otherwise). Pure functions of the stream's fields: no invalidation needed. */
    struct {
        lia_inspect_cache stream;
        int slot_valid;
        uint64_t epoch;
        uint8_t slot[LIA_HASH_BYTES];
    } last;
};

static int marker;

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void hash_str16(crypto_generichash_state *st, const char *s)
{
    uint8_t len[2];
    size_t n = strlen(s);
    put_u16(len, (uint16_t)n);
    crypto_generichash_update(st, len, 2);
    crypto_generichash_update(st, (const uint8_t *)s, n);
}

int lia_channel_valid(const char *s)
{
    size_t n = s ? strnlen(s, LIA_CHANNEL_MAX + 1) : 0;
    if (n == 0 || n > LIA_CHANNEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')))
            return 0;
    }
    return 1;
}

int lia_dest_digest(const lia_dest *d, uint8_t out[LIA_DEST_DIGEST_BYTES])
{
    crypto_generichash_state st;
    uint8_t tag, n[4];

    crypto_generichash_init(&st, NULL, 0, LIA_DEST_DIGEST_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label_dest, sizeof label_dest);
    if (d->channel) {
        if (!lia_channel_valid(d->channel) || d->n_recipients != 0)
            return LIA_ERR_INVALID;
        tag = 0x01;
        crypto_generichash_update(&st, &tag, 1);
        hash_str16(&st, d->channel);
    } else {
        if (d->n_recipients == 0 || d->n_recipients > LIA_RECIPIENTS_MAX || !d->recipients)
            return LIA_ERR_INVALID;
        for (size_t i = 0; i < d->n_recipients; i++) {
            if (!lia_node_id_valid(d->recipients[i]))
                return LIA_ERR_INVALID;
            if (i > 0 && strcmp(d->recipients[i - 1], d->recipients[i]) >= 0)
                return LIA_ERR_INVALID; /* must be strictly ascending: one canonical form */
        }
        tag = 0x02;
        crypto_generichash_update(&st, &tag, 1);
        put_u32(n, (uint32_t)d->n_recipients);
        crypto_generichash_update(&st, n, 4);
        for (size_t i = 0; i < d->n_recipients; i++)
            hash_str16(&st, d->recipients[i]);
    }
    crypto_generichash_final(&st, out, LIA_DEST_DIGEST_BYTES);
    return 0;
}

static void stream_id(const char *sender, const uint8_t dest[LIA_DEST_DIGEST_BYTES],
                      uint8_t out[LIA_STREAM_ID_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, LIA_STREAM_ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label_stream, sizeof label_stream);
    hash_str16(&st, sender);
    crypto_generichash_update(&st, dest, LIA_DEST_DIGEST_BYTES);
    crypto_generichash_final(&st, out, LIA_STREAM_ID_BYTES);
}

void lia_envelope_stream_id(const char *sender, const uint8_t dest[LIA_DEST_DIGEST_BYTES],
                            uint8_t out[LIA_STREAM_ID_BYTES])
{
    stream_id(sender, dest, out);
}

static void key_slot(const char *sender, const uint8_t dest[LIA_DEST_DIGEST_BYTES], uint64_t epoch,
                     uint8_t out[LIA_HASH_BYTES])
{
    crypto_generichash_state st;
    uint8_t e[8];
    put_u64(e, epoch);
    crypto_generichash_init(&st, NULL, 0, LIA_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label_keyslot, sizeof label_keyslot);
    hash_str16(&st, sender);
    crypto_generichash_update(&st, dest, LIA_DEST_DIGEST_BYTES);
    crypto_generichash_update(&st, e, 8);
    crypto_generichash_final(&st, out, LIA_HASH_BYTES);
}

static void leaf_hash(const uint8_t *hdr, size_t hdr_len, const uint8_t *ct, size_t ct_len,
                      uint8_t out[LIA_HASH_BYTES])
{
    crypto_generichash_state st;
    static const uint8_t prefix = 0x00;
    uint8_t n[4];
    put_u32(n, (uint32_t)hdr_len);
    crypto_generichash_init(&st, NULL, 0, LIA_HASH_BYTES);
    crypto_generichash_update(&st, &prefix, 1);
    crypto_generichash_update(&st, (const uint8_t *)label_leaf, sizeof label_leaf);
    crypto_generichash_update(&st, n, 4);
    crypto_generichash_update(&st, hdr, hdr_len);
    crypto_generichash_update(&st, ct, ct_len);
    crypto_generichash_final(&st, out, LIA_HASH_BYTES);
}

static void batch_message(const uint8_t key_id[LIA_KEY_ID_BYTES], uint32_t count,
                          const uint8_t root[LIA_HASH_BYTES], uint8_t out[BATCH_MSG_BYTES])
{
    uint8_t *p = out;
    memcpy(p, label_batch, sizeof label_batch);
    p += sizeof label_batch;
    memcpy(p, key_id, LIA_KEY_ID_BYTES);
    p += LIA_KEY_ID_BYTES;
    put_u32(p, count);
    p += 4;
    memcpy(p, root, LIA_HASH_BYTES);
}

static void wrap_ad(const uint8_t sender_key_id[LIA_KEY_ID_BYTES],
                    const uint8_t recipient_key_id[LIA_KEY_ID_BYTES],
                    const uint8_t dest[LIA_DEST_DIGEST_BYTES], uint64_t epoch,
                    uint8_t out[WRAP_AD_BYTES])
{
    uint8_t *p = out;
    memcpy(p, label_wrap_ad, sizeof label_wrap_ad);
    p += sizeof label_wrap_ad;
    memcpy(p, sender_key_id, LIA_KEY_ID_BYTES);
    p += LIA_KEY_ID_BYTES;
    memcpy(p, recipient_key_id, LIA_KEY_ID_BYTES);
    p += LIA_KEY_ID_BYTES;
    memcpy(p, dest, LIA_DEST_DIGEST_BYTES);
    p += LIA_DEST_DIGEST_BYTES;
    put_u64(p, epoch);
}

/* ---- sealing ---- */

struct sealing {
    uint8_t *hdr;
    size_t hdr_len;
    uint8_t *ct;
    size_t ct_len;
};

/* 1 if a and b name the same destination (their digests are equal). */
static int same_dest(const lia_dest *a, const lia_dest *b)
{
    if (a->channel || b->channel)
        return a->channel && b->channel && strcmp(a->channel, b->channel) == 0;
    if (a->n_recipients != b->n_recipients)
        return 0;
    for (size_t i = 0; i < a->n_recipients; i++)
        if (strcmp(a->recipients[i], b->recipients[i]) != 0)
            return 0;
    return 1;
}

/* Builds, packs and encrypts one item whose destination digest is digest; fills s. */
static int seal_one(const lia_identity_t *sender, const char *sender_id,
                    const uint8_t sender_key_id[LIA_KEY_ID_BYTES], const lia_seal_item *it,
                    const uint8_t digest[LIA_DEST_DIGEST_BYTES],
                    const uint8_t seed[crypto_stream_chacha20_KEYBYTES], uint64_t index,
                    struct sealing *s)
{
    Liaison__V1__EnvelopeHeader h = LIAISON__V1__ENVELOPE_HEADER__INIT;
    Liaison__V1__Destination dest = LIAISON__V1__DESTINATION__INIT;
    Liaison__V1__RecipientSet rs = LIAISON__V1__RECIPIENT_SET__INIT;
    Liaison__V1__KeyGrant grant = LIAISON__V1__KEY_GRANT__INIT;
    Liaison__V1__WrappedKey *wk = NULL, **wkp = NULL;
    uint8_t(*wrapped)[LIA_WRAPPED_BYTES] = NULL;
    uint8_t msgid[LIA_MESSAGE_ID_BYTES], nonce[LIA_NONCE_BYTES];
    uint8_t ad[WRAP_AD_BYTES];
    lia_wrapper_t *w = NULL;
    int rc;

    (void)sender;
    if (it->seq == 0 || it->created_at_ms == 0 || !it->key || it->n_grant > LIA_RECIPIENTS_MAX ||
        (it->payload_len > 0 && !it->payload) ||
        it->payload_len > LIA_ENVELOPE_MAX - LIA_HEADER_MAX - 1024)
        return LIA_ERR_INVALID;
    /* Message id and nonce come from a ChaCha20 stream keyed by a fresh random seed per
     * batch, indexed by position: as unpredictable as the system generator, without a system
     * call per envelope. The id is time-ordered, u48be(created_at_ms) || 10 bytes of the
     * stream: every store indexes message ids, and a B-tree of random keys dirties one page
     * per insert once it is large (the broker's append rate fell from 42,000 to 13,000 per
     * second over its first two million envelopes), while time-ordered keys append. The header
     * shows created_at_ms to the broker anyway; 80 random bits keep ids unique. */
    {
        uint8_t rnd[LIA_MESSAGE_ID_BYTES + LIA_NONCE_BYTES], n8[crypto_stream_chacha20_NONCEBYTES];
        for (int i = 0; i < 8; i++)
            n8[i] = (uint8_t)(index >> (8 * i));
        crypto_stream_chacha20(rnd, sizeof rnd, n8, seed);
        for (int i = 0; i < 6; i++)
            msgid[i] = (uint8_t)(it->created_at_ms >> (40 - 8 * i));
        memcpy(msgid + 6, rnd, sizeof msgid - 6);
        memcpy(nonce, rnd + sizeof msgid, sizeof nonce);
        sodium_memzero(rnd, sizeof rnd);
    }
    if (it->message_id_out)
        memcpy(it->message_id_out, msgid, sizeof msgid);

    h.version = 1;
    h.sender = (char *)sender_id;
    h.sender_key_id.data = (uint8_t *)sender_key_id;
    h.sender_key_id.len = LIA_KEY_ID_BYTES;
    if (it->dest.channel) {
        dest.kind_case = LIAISON__V1__DESTINATION__KIND_CHANNEL;
        dest.channel = (char *)it->dest.channel;
    } else {
        rs.n_node_ids = it->dest.n_recipients;
        rs.node_ids = (char **)it->dest.recipients;
        dest.kind_case = LIAISON__V1__DESTINATION__KIND_RECIPIENTS;
        dest.recipients = &rs;
    }
    h.destination = &dest;
    h.key_epoch = it->epoch;
    h.message_id.data = msgid;
    h.message_id.len = sizeof msgid;
    h.sender_seq = it->seq;
    h.created_at_ms = it->created_at_ms;
    h.expires_at_ms = it->expires_at_ms;
    h.nonce.data = nonce;
    h.nonce.len = sizeof nonce;

    rc = LIA_ERR_NOMEM;
    if (it->n_grant > 0) {
        wk = calloc(it->n_grant, sizeof *wk);
        wkp = calloc(it->n_grant, sizeof *wkp);
        wrapped = calloc(it->n_grant, sizeof *wrapped);
        if (!wk || !wkp || !wrapped)
            goto fail;
        if ((rc = lia_wrapper_new(&w)) != 0)
            goto fail;
        for (size_t i = 0; i < it->n_grant; i++) {
            const lia_cert_info *c = it->grant[i];
            if (i > 0 && strcmp(it->grant[i - 1]->node_id, c->node_id) >= 0) {
                rc = LIA_ERR_INVALID;
                goto fail;
            }
            wrap_ad(sender_key_id, c->enc_key_id, digest, it->epoch, ad);
            if ((rc = lia_wrapper_wrap(w, it->key, c->enc_pk, ad, sizeof ad, wrapped[i])) != 0)
                goto fail;
            liaison__v1__wrapped_key__init(&wk[i]);
            wk[i].recipient = (char *)c->node_id;
            wk[i].recipient_key_id.data = (uint8_t *)c->enc_key_id;
            wk[i].recipient_key_id.len = LIA_KEY_ID_BYTES;
            wk[i].wrapped.data = wrapped[i];
            wk[i].wrapped.len = LIA_WRAPPED_BYTES;
            wkp[i] = &wk[i];
        }
        grant.ephemeral_pk.data = (uint8_t *)lia_wrapper_pk(w);
        grant.ephemeral_pk.len = 32;
        grant.n_keys = it->n_grant;
        grant.keys = wkp;
        h.key_grant = &grant;
    }

    s->hdr_len = liaison__v1__envelope_header__get_packed_size(&h);
    if (s->hdr_len > LIA_HEADER_MAX) {
        rc = LIA_ERR_TOO_LARGE;
        goto fail;
    }
    s->hdr = malloc(s->hdr_len);
    s->ct_len = it->payload_len + LIA_AEAD_TAG_BYTES;
    s->ct = malloc(s->ct_len);
    rc = LIA_ERR_NOMEM;
    if (!s->hdr || !s->ct)
        goto fail;
    liaison__v1__envelope_header__pack(&h, s->hdr);
    rc =
        lia_symkey_encrypt(it->key, nonce, s->hdr, s->hdr_len, it->payload, it->payload_len, s->ct);
fail:
    lia_wrapper_destroy(&w);
    free(wk);
    free(wkp);
    free(wrapped);
    return rc;
}

int lia_envelope_seal_batch(const lia_identity_t *sender, const char *sender_id,
                            const lia_seal_item *items, size_t n, lia_buf *out)
{
    struct sealing *s = NULL;
    uint8_t(*leaves)[LIA_HASH_BYTES] = NULL;
    lia_merkle_proof *proofs = NULL;
    uint8_t key_id[LIA_KEY_ID_BYTES], root[LIA_HASH_BYTES], msg[BATCH_MSG_BYTES];
    uint8_t sig[LIA_SIGNATURE_BYTES], seed[crypto_stream_chacha20_KEYBYTES];
    uint8_t digest[LIA_DEST_DIGEST_BYTES];
    int rc = LIA_ERR_INVALID;

    if (n == 0 || n > LIA_MERKLE_MAX_LEAVES || !lia_node_id_valid(sender_id) ||
        lia_identity_kind(sender) != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        out[i] = (lia_buf){NULL, 0};
    lia_key_id(lia_identity_sign_pk(sender), key_id);
    randombytes_buf(seed, sizeof seed);
    s = calloc(n, sizeof *s);
    leaves = malloc(n * sizeof *leaves);
    proofs = malloc(n * sizeof *proofs);
    if (!s || !leaves || !proofs) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        /* A batch is mostly one destination: its digest is computed once per run. */
        if ((i == 0 || !same_dest(&items[i - 1].dest, &items[i].dest)) &&
            (rc = lia_dest_digest(&items[i].dest, digest)) != 0)
            goto fail;
        if ((rc = seal_one(sender, sender_id, key_id, &items[i], digest, seed, i, &s[i])) != 0)
            goto fail;
        leaf_hash(s[i].hdr, s[i].hdr_len, s[i].ct, s[i].ct_len, leaves[i]);
    }
    if ((rc = lia_merkle_build((const uint8_t(*)[LIA_HASH_BYTES])leaves, n, root, proofs)) != 0)
        goto fail;
    batch_message(key_id, (uint32_t)n, root, msg);
    if ((rc = lia_identity_sign(sender, msg, sizeof msg, sig)) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        Liaison__V1__Envelope env = LIAISON__V1__ENVELOPE__INIT;
        Liaison__V1__BatchProof bp = LIAISON__V1__BATCH_PROOF__INIT;
        ProtobufCBinaryData path[LIA_MERKLE_MAX_DEPTH];

        for (size_t j = 0; j < proofs[i].len; j++)
            path[j] = (ProtobufCBinaryData){LIA_HASH_BYTES, proofs[i].path[j]};
        bp.leaf_index = (uint32_t)i;
        bp.leaf_count = (uint32_t)n;
        bp.n_path = proofs[i].len;
        bp.path = path;
        bp.signature = (ProtobufCBinaryData){sizeof sig, sig};
        env.header = (ProtobufCBinaryData){s[i].hdr_len, s[i].hdr};
        env.ciphertext = (ProtobufCBinaryData){s[i].ct_len, s[i].ct};
        env.proof = &bp;
        out[i].len = liaison__v1__envelope__get_packed_size(&env);
        out[i].data = malloc(out[i].len);
        if (!out[i].data) {
            rc = LIA_ERR_NOMEM;
            goto fail;
        }
        liaison__v1__envelope__pack(&env, out[i].data);
    }
    rc = 0;
fail:
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            free(out[i].data);
            out[i] = (lia_buf){NULL, 0};
        }
    if (s)
        for (size_t i = 0; i < n; i++) {
            free(s[i].hdr);
            free(s[i].ct);
        }
    free(s);
    free(leaves);
    free(proofs);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

/* ---- opening ---- */

static void free_symkey(void *k)
{
    lia_symkey_t *key = k;
    lia_symkey_destroy(&key);
}

int lia_opener_new(lia_trust_t *trust, const lia_identity_t *me, const char *my_id,
                   lia_opener_t **out)
{
    lia_opener_t *o;

    *out = NULL;
    if (!trust || !me || lia_identity_kind(me) != LIA_SECRET_NODE || !lia_node_id_valid(my_id))
        return LIA_ERR_INVALID;
    o = calloc(1, sizeof *o);
    if (!o)
        return LIA_ERR_NOMEM;
    o->trust = trust;
    o->me = me;
    strcpy(o->my_id, my_id);
    lia_key_id(lia_identity_enc_pk(me), o->my_enc_key_id);
    if (lia_map_new(LIA_HASH_BYTES, free_symkey, &o->keys) != 0 ||
        lia_map_new(LIA_HASH_BYTES, NULL, &o->roots) != 0 ||
        lia_replay_new(REPLAY_IDS, &o->replay) != 0) {
        lia_opener_destroy(&o);
        return LIA_ERR_NOMEM;
    }
    *out = o;
    return 0;
}

void lia_opener_destroy(lia_opener_t **p)
{
    if (!p || !*p)
        return;
    lia_map_destroy(&(*p)->keys);
    lia_map_destroy(&(*p)->roots);
    for (size_t i = 0; i < BATCH_TREES; i++)
        lia_merkle_known_destroy(&(*p)->trees[i].known);
    lia_replay_destroy(&(*p)->replay);
    free(*p);
    *p = NULL;
}

int lia_opener_add_key(lia_opener_t *o, const char *sender,
                       const uint8_t dest_digest[LIA_DEST_DIGEST_BYTES], uint64_t epoch,
                       lia_symkey_t *key)
{
    uint8_t slot[LIA_HASH_BYTES];
    int rc;

    if (!lia_node_id_valid(sender) || !key) {
        lia_symkey_destroy(&key);
        return LIA_ERR_INVALID;
    }
    key_slot(sender, dest_digest, epoch, slot);
    if ((rc = lia_map_put(o->keys, slot, key)) != 0)
        lia_symkey_destroy(&key);
    return rc;
}

void lia_opener_set_membership(lia_opener_t *o, lia_member_fn fn, void *arg)
{
    o->member = fn;
    o->member_arg = arg;
}

void lia_opener_set_trust(lia_opener_t *o, lia_trust_t *trust)
{
    if (trust)
        o->trust = trust;
}

lia_replay_t *lia_opener_replay(lia_opener_t *o)
{
    return o->replay;
}

void lia_opened_free(lia_opened **p)
{
    if (!p || !*p)
        return;
    if ((*p)->payload) {
        sodium_memzero((*p)->payload, (*p)->payload_len);
        free((*p)->payload);
    }
    free(*p);
    *p = NULL;
}

static int no_unknown(const ProtobufCMessage *m)
{
    return m->n_unknown_fields == 0;
}

/* Strict structural checks on the outer envelope. */
static int check_envelope(const Liaison__V1__Envelope *e, size_t len)
{
    const Liaison__V1__BatchProof *p = e->proof;

    if (!no_unknown(&e->base) || liaison__v1__envelope__get_packed_size(e) != len)
        return LIA_ERR_DECODE;
    if (e->header.len == 0 || e->header.len > LIA_HEADER_MAX ||
        e->ciphertext.len < LIA_AEAD_TAG_BYTES || !p || !no_unknown(&p->base))
        return LIA_ERR_DECODE;
    if (p->signature.len != LIA_SIGNATURE_BYTES || p->leaf_count == 0 ||
        p->leaf_count > LIA_MERKLE_MAX_LEAVES || p->leaf_index >= p->leaf_count ||
        p->n_path > LIA_MERKLE_MAX_DEPTH)
        return LIA_ERR_DECODE;
    for (size_t i = 0; i < p->n_path; i++)
        if (p->path[i].len != LIA_HASH_BYTES)
            return LIA_ERR_DECODE;
    return 0;
}

/* Strict checks on the decoded header; fills d with a view of its destination. */
static int check_header(const Liaison__V1__EnvelopeHeader *h, size_t len, lia_dest *d)
{
    const Liaison__V1__Destination *dst = h->destination;

    if (!no_unknown(&h->base) || liaison__v1__envelope_header__get_packed_size(h) != len)
        return LIA_ERR_DECODE;
    if (h->version != 1)
        return LIA_ERR_VERSION;
    if (!lia_node_id_valid(h->sender) || h->sender_key_id.len != LIA_KEY_ID_BYTES || !dst ||
        !no_unknown(&dst->base) || h->message_id.len != LIA_MESSAGE_ID_BYTES ||
        h->sender_seq == 0 || h->created_at_ms == 0 || h->nonce.len != LIA_NONCE_BYTES)
        return LIA_ERR_DECODE;
    memset(d, 0, sizeof *d);
    if (dst->kind_case == LIAISON__V1__DESTINATION__KIND_CHANNEL) {
        d->channel = dst->channel;
    } else if (dst->kind_case == LIAISON__V1__DESTINATION__KIND_RECIPIENTS && dst->recipients &&
               no_unknown(&dst->recipients->base)) {
        d->recipients = (const char *const *)dst->recipients->node_ids;
        d->n_recipients = dst->recipients->n_node_ids;
    } else {
        return LIA_ERR_DECODE;
    }
    if (h->key_grant) {
        const Liaison__V1__KeyGrant *g = h->key_grant;
        if (!no_unknown(&g->base) || g->ephemeral_pk.len != 32 || g->n_keys == 0 ||
            g->n_keys > LIA_RECIPIENTS_MAX)
            return LIA_ERR_DECODE;
        for (size_t i = 0; i < g->n_keys; i++) {
            const Liaison__V1__WrappedKey *k = g->keys[i];
            if (!no_unknown(&k->base) || !lia_node_id_valid(k->recipient) ||
                k->recipient_key_id.len != LIA_KEY_ID_BYTES || k->wrapped.len != LIA_WRAPPED_BYTES)
                return LIA_ERR_DECODE;
            if (i > 0 && strcmp(g->keys[i - 1]->recipient, k->recipient) >= 0)
                return LIA_ERR_DECODE;
        }
    }
    return 0;
}

/* The channel whose digest c holds, or NULL (for decode_strict). */
static const char *cached_channel(const lia_inspect_cache *c)
{
    return c && c->valid ? c->channel : NULL;
}

/*
 * The stream id of sender to destination d (digest: d's): c's when it holds the same channel
 * and sender, otherwise hashed and, for a channel, kept in c (optional) with the digest.
 * Returns 1 when c answered. Lengths were checked by check_header.
 */
static int cached_stream(lia_inspect_cache *c, const char *sender, const lia_dest *d,
                         const uint8_t digest[LIA_DEST_DIGEST_BYTES],
                         uint8_t stream[LIA_STREAM_ID_BYTES])
{
    if (c && c->valid && d->channel && strcmp(d->channel, c->channel) == 0 &&
        strcmp(sender, c->sender) == 0) {
        memcpy(stream, c->stream, LIA_STREAM_ID_BYTES);
        return 1;
    }
    stream_id(sender, digest, stream);
    if (c && d->channel) {
        c->valid = 1;
        strcpy(c->channel, d->channel);
        strcpy(c->sender, sender);
        memcpy(c->digest, digest, LIA_DEST_DIGEST_BYTES);
        memcpy(c->stream, stream, LIA_STREAM_ID_BYTES);
    }
    return 0;
}

/*
 * Decodes buf strictly into *env and *hdr, both carved from arena a (which this initialises
 * once buf's size is checked; the caller releases it once done with them, and on failure
 * nothing is left to release),
 * and fills d (pointing into *hdr) and digest. known_channel/known_digest (optional): a
 * channel already hashed, whose digest is reused when the destination is that channel.
 * An envelope that would make the decoder allocate more than 16 times its size (plus
 * ARENA_SLACK) is refused as LIA_ERR_TOO_LARGE.
 */
static int decode_strict(lia_arena *a, const uint8_t *buf, size_t len, Liaison__V1__Envelope **env,
                         Liaison__V1__EnvelopeHeader **hdr, lia_dest *d,
                         uint8_t digest[LIA_DEST_DIGEST_BYTES], const char *known_channel,
                         const uint8_t *known_digest)
{
    Liaison__V1__Envelope *e = NULL;
    Liaison__V1__EnvelopeHeader *h = NULL;
    int rc = LIA_ERR_DECODE;

    *env = NULL;
    *hdr = NULL;
    if (!buf || len == 0)
        return LIA_ERR_DECODE;
    if (len > LIA_ENVELOPE_MAX)
        return LIA_ERR_TOO_LARGE;
    lia_arena_init(a, 16 * (size_t)len + ARENA_SLACK); /* bounded: len is at most 32 MiB */
    e = liaison__v1__envelope__unpack(&a->pb, len, buf);
    if (!e || (rc = check_envelope(e, len)) != 0)
        goto fail;
    rc = LIA_ERR_DECODE;
    h = liaison__v1__envelope_header__unpack(&a->pb, e->header.len, e->header.data);
    if (!h || (rc = check_header(h, e->header.len, d)) != 0)
        goto fail;
    if (known_channel && d->channel && strcmp(d->channel, known_channel) == 0) {
        memcpy(digest, known_digest, LIA_DEST_DIGEST_BYTES); /* a valid channel, hashed */
    } else if (lia_dest_digest(d, digest) != 0) {
        rc = LIA_ERR_DECODE;
        goto fail;
    }
    *env = e;
    *hdr = h;
    return 0;
fail:
    if (lia_arena_exhausted(a))
        rc = LIA_ERR_TOO_LARGE;
    lia_arena_release(a);
    return rc;
}

int lia_envelope_inspect(const uint8_t *buf, size_t len, lia_envelope_meta **out)
{
    return lia_envelope_inspect_cached(buf, len, NULL, out);
}

int lia_envelope_inspect_cached(const uint8_t *buf, size_t len, lia_inspect_cache *cache,
                                lia_envelope_meta **out)
{
    lia_arena arena;
    Liaison__V1__Envelope *e;
    Liaison__V1__EnvelopeHeader *h;
    lia_envelope_meta *m;
    lia_dest d;
    uint8_t digest[LIA_DEST_DIGEST_BYTES];
    int rc;

    *out = NULL;
    if ((rc = decode_strict(&arena, buf, len, &e, &h, &d, digest, cached_channel(cache),
                            cache ? cache->digest : NULL)) != 0)
        return rc;
    rc = LIA_ERR_NOMEM;
    m = calloc(1, sizeof *m);
    if (!m)
        goto done;
    if (d.n_recipients > 0) {
        m->recipients = calloc(d.n_recipients, sizeof *m->recipients);
        if (!m->recipients) {
            free(m);
            goto done;
        }
        for (size_t i = 0; i < d.n_recipients; i++)
            strcpy(m->recipients[i], d.recipients[i]);
    }
    m->n_recipients = d.n_recipients;
    strcpy(m->sender, h->sender);
    memcpy(m->sender_key_id, h->sender_key_id.data, LIA_KEY_ID_BYTES);
    if (d.channel)
        strcpy(m->channel, d.channel);
    m->epoch = h->key_epoch;
    m->seq = h->sender_seq;
    m->created_at_ms = h->created_at_ms;
    m->expires_at_ms = h->expires_at_ms;
    memcpy(m->message_id, h->message_id.data, LIA_MESSAGE_ID_BYTES);
    memcpy(m->dest_digest, digest, LIA_DEST_DIGEST_BYTES);
    (void)cached_stream(cache, h->sender, &d, digest, m->stream_id);
    m->n_granted = h->key_grant ? h->key_grant->n_keys : 0;
    m->leaf_index = e->proof->leaf_index;
    m->leaf_count = e->proof->leaf_count;
    m->header_len = e->header.len;
    m->ciphertext_len = e->ciphertext.len;
    *out = m;
    rc = 0;
done:
    lia_arena_release(&arena);
    return rc;
}

void lia_envelope_meta_free(lia_envelope_meta **p)
{
    if (!p || !*p)
        return;
    free((*p)->recipients);
    free(*p);
    *p = NULL;
}

static int is_recipient(const lia_dest *d, const char *id)
{
    for (size_t i = 0; i < d->n_recipients; i++)
        if (strcmp(d->recipients[i], id) == 0)
            return 1;
    return 0;
}

/* The known nodes of the batch this envelope claims to belong to, if it was verified lately. */
static lia_merkle_known_t *known_tree(lia_opener_t *o, const lia_cert_info *cert,
                                      const Liaison__V1__BatchProof *p)
{
    for (size_t i = 0; i < BATCH_TREES; i++)
        if (o->trees[i].known && o->trees[i].count == p->leaf_count &&
            memcmp(o->trees[i].key_id, cert->sign_key_id, LIA_KEY_ID_BYTES) == 0 &&
            memcmp(o->trees[i].signature, p->signature.data, LIA_SIGNATURE_BYTES) == 0)
            return o->trees[i].known;
    return NULL;
}

/*
 * Keeps the nodes of a batch whose root the signature just proved (evicting the oldest batch).
 * Only a speed-up: on any failure the next envelope of the batch is verified in full.
 */
static void remember_tree(lia_opener_t *o, const lia_cert_info *cert,
                          const Liaison__V1__BatchProof *p, const uint8_t root[LIA_HASH_BYTES],
                          const uint8_t leaf[LIA_HASH_BYTES], const uint8_t (*path)[LIA_HASH_BYTES])
{
    lia_merkle_known_t *k;

    if (p->leaf_count < 2 || p->leaf_count > LIA_MERKLE_KNOWN_MAX_LEAVES ||
        lia_merkle_known_new(p->leaf_count, root, &k) != 0)
        return;
    if (lia_merkle_known_prove(k, leaf, p->leaf_index, path, p->n_path) != 0) {
        lia_merkle_known_destroy(&k);
        return;
    }
    lia_merkle_known_destroy(&o->trees[o->tree_next].known);
    memcpy(o->trees[o->tree_next].key_id, cert->sign_key_id, LIA_KEY_ID_BYTES);
    o->trees[o->tree_next].count = p->leaf_count;
    memcpy(o->trees[o->tree_next].signature, p->signature.data, LIA_SIGNATURE_BYTES);
    o->trees[o->tree_next].known = k;
    o->tree_next = (o->tree_next + 1) % BATCH_TREES;
}

/*
 * Verifies that the leaf belongs to a batch signed by cert: against the known nodes of a batch
 * verified lately (same key, size and signature), else by recomputing the root from the proof
 * and checking the signature unless this exact (root, signature) was verified before. *cached
 * is 1 when no signature check was needed (cache_key is then only set on the second path).
 */
static int check_batch(lia_opener_t *o, const lia_cert_info *cert, const Liaison__V1__Envelope *e,
                       const uint8_t leaf[LIA_HASH_BYTES], uint8_t cache_key[LIA_HASH_BYTES],
                       int *cached)
{
    const Liaison__V1__BatchProof *p = e->proof;
    uint8_t path[LIA_MERKLE_MAX_DEPTH][LIA_HASH_BYTES], root[LIA_HASH_BYTES];
    uint8_t msg[BATCH_MSG_BYTES];
    lia_merkle_known_t *known;
    int rc;

    for (size_t i = 0; i < p->n_path; i++)
        memcpy(path[i], p->path[i].data, LIA_HASH_BYTES);
    if ((known = known_tree(o, cert, p)) != NULL &&
        lia_merkle_known_prove(known, leaf, p->leaf_index, (const uint8_t(*)[LIA_HASH_BYTES])path,
                               p->n_path) == 0) {
        *cached = 1;
        return 0;
    }
    /* Not a batch seen lately (or not proved by it): the full check decides, as it always did. */
    if ((rc = lia_merkle_root_from_proof(leaf, p->leaf_index, p->leaf_count,
                                         (const uint8_t(*)[LIA_HASH_BYTES])path, p->n_path,
                                         root)) != 0)
        return rc;
    batch_message(cert->sign_key_id, p->leaf_count, root, msg);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, LIA_HASH_BYTES);
    crypto_generichash_update(&st, msg, sizeof msg);
    crypto_generichash_update(&st, p->signature.data, LIA_SIGNATURE_BYTES);
    crypto_generichash_final(&st, cache_key, LIA_HASH_BYTES);
    *cached = lia_map_get(o->roots, cache_key) != NULL;
    if (!*cached &&
        crypto_sign_verify_detached(p->signature.data, msg, sizeof msg, cert->sign_pk) != 0)
        return LIA_ERR_SIGNATURE;
    if (!known)
        remember_tree(o, cert, p, root, leaf, (const uint8_t(*)[LIA_HASH_BYTES])path);
    return 0;
}

static int remember_root(lia_opener_t *o, const uint8_t cache_key[LIA_HASH_BYTES])
{
    if (o->root_count == ROOT_CACHE_SIZE) {
        lia_map_remove(o->roots, o->root_ring[o->root_next]);
        o->root_count--;
    }
    if (lia_map_put(o->roots, cache_key, &marker) != 0)
        return LIA_ERR_NOMEM;
    memcpy(o->root_ring[o->root_next], cache_key, LIA_HASH_BYTES);
    o->root_next = (o->root_next + 1) % ROOT_CACHE_SIZE;
    o->root_count++;
    return 0;
}

/* Unwraps the key handed to this node in h's key grant, if any; *granted = 1 if there was. */
static int take_grant(lia_opener_t *o, const Liaison__V1__EnvelopeHeader *h,
                      const uint8_t dest[LIA_DEST_DIGEST_BYTES], lia_symkey_t **key, int *granted)
{
    const Liaison__V1__KeyGrant *g = h->key_grant;
    uint8_t ad[WRAP_AD_BYTES];

    *granted = 0;
    *key = NULL;
    if (!g)
        return 0;
    for (size_t i = 0; i < g->n_keys; i++) {
        const Liaison__V1__WrappedKey *k = g->keys[i];
        if (strcmp(k->recipient, o->my_id) != 0)
            continue;
        if (sodium_memcmp(k->recipient_key_id.data, o->my_enc_key_id, LIA_KEY_ID_BYTES) != 0)
            return LIA_ERR_KEY_MISMATCH;
        wrap_ad(h->sender_key_id.data, o->my_enc_key_id, dest, h->key_epoch, ad);
        *granted = 1;
        return lia_identity_unwrap(o->me, g->ephemeral_pk.data, ad, sizeof ad, k->wrapped.data,
                                   key);
    }
    return 0;
}

int lia_opener_open(lia_opener_t *o, const uint8_t *buf, size_t len, uint64_t now_ms,
                    lia_opened **out)
{
    lia_arena arena;
    Liaison__V1__Envelope *e = NULL;
    Liaison__V1__EnvelopeHeader *h = NULL;
    const lia_cert_info *cert;
    lia_symkey_t *new_key = NULL;
    const lia_symkey_t *key;
    lia_opened *res = NULL;
    lia_dest d;
    uint8_t digest[LIA_DEST_DIGEST_BYTES], leaf[LIA_HASH_BYTES], cache_key[LIA_HASH_BYTES];
    uint8_t slot[LIA_HASH_BYTES], stream[LIA_STREAM_ID_BYTES];
    int rc, cached, granted;

    *out = NULL;
    if ((rc = decode_strict(&arena, buf, len, &e, &h, &d, digest, cached_channel(&o->last.stream),
                            o->last.stream.digest)) != 0)
        return rc;
    if (h->created_at_ms > now_ms + LIA_CLOCK_SKEW_MS) {
        rc = LIA_ERR_CLOCK;
        goto fail;
    }
    if (h->expires_at_ms != 0 && now_ms > h->expires_at_ms) {
        rc = LIA_ERR_EXPIRED_MSG;
        goto fail;
    }
    if ((rc = lia_trust_find(o->trust, h->sender, h->sender_key_id.data, h->created_at_ms / 1000,
                             &cert)) != 0)
        goto fail;
    /* Entitlement before any further work: a node never processes what is not for it. */
    if (d.channel) {
        if (!o->member || !o->member(o->member_arg, d.channel, o->my_id) ||
            !o->member(o->member_arg, d.channel, h->sender)) {
            rc = LIA_ERR_NOT_MEMBER;
            goto fail;
        }
    } else if (!is_recipient(&d, o->my_id)) {
        rc = LIA_ERR_NOT_RECIPIENT;
        goto fail;
    }
    leaf_hash(e->header.data, e->header.len, e->ciphertext.data, e->ciphertext.len, leaf);
    if ((rc = check_batch(o, cert, e, leaf, cache_key, &cached)) != 0)
        goto fail;
    if ((rc = take_grant(o, h, digest, &new_key, &granted)) != 0)
        goto fail;
    if (cached_stream(&o->last.stream, h->sender, &d, digest, stream) && o->last.slot_valid &&
        h->key_epoch == o->last.epoch) {
        memcpy(slot, o->last.slot, sizeof slot);
    } else {
        key_slot(h->sender, digest, h->key_epoch, slot);
        o->last.slot_valid = d.channel != NULL; /* the cache now holds this stream */
        o->last.epoch = h->key_epoch;
        memcpy(o->last.slot, slot, sizeof slot);
    }
    key = new_key ? new_key : lia_map_get(o->keys, slot);
    if (!key) {
        rc = LIA_ERR_NO_KEY;
        goto fail;
    }
    if (new_key && lia_map_size(o->keys) >= KEY_SLOTS_MAX) {
        rc = LIA_ERR_LIMIT;
        goto fail;
    }
    if ((rc = lia_replay_check(o->replay, stream, h->sender_seq, h->message_id.data, granted)) != 0)
        goto fail;
    rc = LIA_ERR_NOMEM;
    res = calloc(1, sizeof *res);
    if (!res)
        goto fail;
    res->payload_len = e->ciphertext.len - LIA_AEAD_TAG_BYTES;
    res->payload = malloc(res->payload_len ? res->payload_len : 1);
    if (!res->payload)
        goto fail;
    if ((rc = lia_symkey_decrypt(key, h->nonce.data, e->header.data, e->header.len,
                                 e->ciphertext.data, e->ciphertext.len, res->payload)) != 0)
        goto fail;
    /* Every check passed: now, and only now, change state. */
    if (new_key) {
        if ((rc = lia_map_put(o->keys, slot, new_key)) != 0)
            goto fail;
        res->new_key = new_key;
        new_key = NULL;
    }
    if ((rc = lia_replay_commit(o->replay, stream, h->sender_seq, h->message_id.data)) != 0)
        goto fail;
    /* A full root cache only costs a signature check later, so failure here is harmless. */
    if (!cached)
        (void)remember_root(o, cache_key);
    strcpy(res->sender, h->sender);
    res->sender_cert_serial = cert->serial;
    if (d.channel)
        strcpy(res->channel, d.channel);
    res->n_recipients = d.n_recipients;
    res->epoch = h->key_epoch;
    res->seq = h->sender_seq;
    res->created_at_ms = h->created_at_ms;
    res->expires_at_ms = h->expires_at_ms;
    memcpy(res->message_id, h->message_id.data, LIA_MESSAGE_ID_BYTES);
    res->batch_size = e->proof->leaf_count;
    memcpy(res->stream_id, stream, sizeof stream);
    memcpy(res->dest_digest, digest, sizeof digest);
    *out = res;
    res = NULL;
    rc = 0;
fail:
    lia_opened_free(&res);
    lia_symkey_destroy(&new_key);
    lia_arena_release(&arena);
    return rc;
}
