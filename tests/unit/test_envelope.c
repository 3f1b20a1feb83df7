/*
 * Sealed envelopes: round trips, and every way an envelope must be refused (tampered bytes,
 * wrong recipient, non-member, moved between channels, wrong epoch, replay, gap, re-signed by
 * another node, surreptitious forwarding, expired/revoked/foreign certificates), plus batch
 * proofs of batches of 1, 2, 3, 64 and 1,000. Tampered envelopes are built here with an
 * independent implementation of the leaf and batch-signature rules of docs/protocol.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cert.h"
#include "envelope.h"
#include "error.h"
#include "merkle.h"
#include "trust.h"
#include "vault.h"

#include "liaison/v1/envelope.pb-c.h"

enum { ALICE, BOB, CAROL, MALLORY, N_NODES };
static const char *const node_ids[N_NODES] = {"fr-ncp", "de-ncp", "it-ncp", "zz-mallory"};

struct fixture {
    lia_identity_t *authority;
    lia_authority_info auth;
    lia_identity_t *id[N_NODES];
    uint8_t *cert_bytes[N_NODES];
    size_t cert_len[N_NODES];
    lia_cert_info cert[N_NODES];
    lia_trust_t *trust;
    lia_opener_t *open[N_NODES];
    lia_symkey_t *key; /* alice's key for the test channel, epoch 1 */
    uint64_t now_ms;
};

/* Channel membership for the tests: case:1 = alice, bob, carol, mallory; case:2 = alice, bob. */
static int member(void *arg, const char *channel, const char *node)
{
    (void)arg;
    if (strcmp(channel, "case:1") == 0)
        return 1;
    if (strcmp(channel, "case:2") == 0)
        return strcmp(node, "fr-ncp") == 0 || strcmp(node, "de-ncp") == 0;
    return 0;
}

static void make_node(struct fixture *f, int i, uint64_t nb, uint64_t na)
{
    uint8_t *req;
    size_t req_len;
    lia_cert_info r;
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, node_ids[i], &f->id[i]), 0);
    assert_int_equal(
        lia_cert_request_create(f->id[i], LIA_ROLE_CONTACT_POINT, "FR", &req, &req_len), 0);
    assert_int_equal(lia_cert_request_parse(req, req_len, &r), 0);
    free(req);
    assert_int_equal(
        lia_cert_issue(f->authority, &r, nb, na, NULL, &f->cert_bytes[i], &f->cert_len[i]), 0);
    assert_int_equal(lia_cert_parse(f->cert_bytes[i], f->cert_len[i], &f->auth, &f->cert[i]), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    uint8_t *ab;
    size_t al;
    uint64_t now = (uint64_t)time(NULL);

    assert_non_null(f);
    f->now_ms = now * 1000;
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "Test Authority", &f->authority),
                     0);
    assert_int_equal(lia_authority_create(f->authority, now, &ab, &al), 0);
    assert_int_equal(lia_authority_parse(ab, al, &f->auth), 0);
    free(ab);
    assert_int_equal(lia_trust_new(&f->auth, &f->trust), 0);
    for (int i = 0; i < N_NODES; i++) {
        make_node(f, i, now - 86400, now + 86400);
        assert_int_equal(lia_trust_add_cert(f->trust, f->cert_bytes[i], f->cert_len[i], NULL), 0);
    }
    for (int i = 0; i < N_NODES; i++) {
        assert_int_equal(lia_opener_new(f->trust, f->id[i], node_ids[i], &f->open[i]), 0);
        lia_opener_set_membership(f->open[i], member, NULL);
    }
    assert_int_equal(lia_symkey_generate(&f->key), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < N_NODES; i++) {
        lia_opener_destroy(&f->open[i]);
        lia_identity_destroy(&f->id[i]);
        free(f->cert_bytes[i]);
    }
    lia_trust_destroy(&f->trust);
    lia_identity_destroy(&f->authority);
    lia_symkey_destroy(&f->key);
    free(f);
    return 0;
}

/* Grant list for case:1 members other than alice, ascending by node id. */
static void grant_all(struct fixture *f, const lia_cert_info *g[3])
{
    g[0] = &f->cert[BOB];     /* de-ncp */
    g[1] = &f->cert[CAROL];   /* it-ncp */
    g[2] = &f->cert[MALLORY]; /* zz-mallory */
}

static lia_seal_item channel_item(struct fixture *f, const char *channel, uint64_t seq,
                                  const char *payload)
{
    lia_seal_item it;
    memset(&it, 0, sizeof it);
    it.dest.channel = channel;
    it.epoch = 1;
    it.seq = seq;
    it.created_at_ms = f->now_ms;
    it.key = f->key;
    it.payload = (const uint8_t *)payload;
    it.payload_len = strlen(payload);
    return it;
}

static lia_buf seal1(struct fixture *f, int sender, const lia_seal_item *it)
{
    lia_buf b;
    assert_int_equal(lia_envelope_seal_batch(f->id[sender], node_ids[sender], it, 1, &b), 0);
    return b;
}

static void expect_open(struct fixture *f, int who, lia_buf b, const char *payload)
{
    lia_opened *m = NULL;
    int rc = lia_opener_open(f->open[who], b.data, b.len, f->now_ms, &m);
    if (rc != 0)
        fail_msg("open failed: %s", lia_strerror(rc));
    assert_int_equal(m->payload_len, strlen(payload));
    assert_memory_equal(m->payload, payload, m->payload_len);
    lia_opened_free(&m);
    assert_null(m);
}

static void expect_refused(struct fixture *f, int who, lia_buf b, int err)
{
    lia_opened *m = (lia_opened *)1;
    int rc = lia_opener_open(f->open[who], b.data, b.len, f->now_ms, &m);
    if (rc != err)
        fail_msg("expected %s, got %s", lia_errname(err), lia_errname(rc));
    assert_null(m);
}

static void test_channel_round_trip(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[3];
    lia_seal_item it = channel_item(f, "case:1", 1, "alert one");
    lia_buf b1, b2;
    lia_opened *m;

    grant_all(f, g);
    it.grant = g;
    it.n_grant = 3;
    b1 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:1", 2, "alert two");
    b2 = seal1(f, ALICE, &it);
    /* Bob reads both: the key came with the first. */
    assert_int_equal(lia_opener_open(f->open[BOB], b1.data, b1.len, f->now_ms, &m), 0);
    assert_string_equal(m->sender, "fr-ncp");
    assert_string_equal(m->channel, "case:1");
    assert_int_equal(m->seq, 1);
    assert_int_equal(m->epoch, 1);
    assert_int_equal(m->sender_cert_serial, f->cert[ALICE].serial);
    assert_int_equal(m->batch_size, 1);
    lia_opened_free(&m);
    expect_open(f, BOB, b2, "alert two");
    /* Carol too, independently. */
    expect_open(f, CAROL, b1, "alert one");
    expect_open(f, CAROL, b2, "alert two");
    /* Replays are refused. */
    expect_refused(f, BOB, b1, LIA_ERR_REPLAY);
    expect_refused(f, BOB, b2, LIA_ERR_REPLAY);
    free(b1.data);
    free(b2.data);
}

static void test_direct_and_forwarding(void **state)
{
    struct fixture *f = *state;
    const char *rcpt[] = {"de-ncp"};
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_seal_item it;
    lia_buf b;

    memset(&it, 0, sizeof it);
    it.dest.recipients = rcpt;
    it.dest.n_recipients = 1;
    it.epoch = 1;
    it.seq = 1;
    it.created_at_ms = f->now_ms;
    it.key = f->key;
    it.grant = g;
    it.n_grant = 1;
    it.payload = (const uint8_t *)"for bob only";
    it.payload_len = 12;
    b = seal1(f, ALICE, &it);
    /* Surreptitious forwarding: bob hands it to carol, who is not a recipient. */
    expect_refused(f, CAROL, b, LIA_ERR_NOT_RECIPIENT);
    expect_open(f, BOB, b, "for bob only");
    free(b.data);

    /* Recipients must be sorted and unique: one canonical form per set. */
    const char *unsorted[] = {"it-ncp", "de-ncp"};
    it.dest.recipients = unsorted;
    it.dest.n_recipients = 2;
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", &it, 1, &b), LIA_ERR_INVALID);
}

static void test_non_member(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB], &f->cert[CAROL]};
    lia_seal_item it = channel_item(f, "case:2", 1, "members only");
    lia_buf b;

    it.grant = g;
    it.n_grant = 2;
    b = seal1(f, ALICE, &it);
    /* Carol holds a wrapped key in the grant but is not a member of case:2. */
    expect_refused(f, CAROL, b, LIA_ERR_NOT_MEMBER);
    expect_open(f, BOB, b, "members only");
    free(b.data);
    /* Carol publishing to case:2: bob refuses (sender not a member). */
    it = channel_item(f, "case:2", 1, "intruder");
    const lia_cert_info *gb[] = {&f->cert[BOB]};
    it.grant = gb;
    it.n_grant = 1;
    b = seal1(f, CAROL, &it);
    expect_refused(f, BOB, b, LIA_ERR_NOT_MEMBER);
    free(b.data);
    /* No membership view at all: fail closed. */
    lia_opener_set_membership(f->open[BOB], NULL, NULL);
    it = channel_item(f, "case:1", 1, "x");
    it.grant = gb;
    it.n_grant = 1;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_NOT_MEMBER);
    lia_opener_set_membership(f->open[BOB], member, NULL);
    free(b.data);
}

static void test_epochs(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_seal_item it = channel_item(f, "case:1", 1, "epoch one");
    lia_symkey_t *k2;
    lia_buf b;

    it.grant = g;
    it.n_grant = 1;
    b = seal1(f, ALICE, &it);
    expect_open(f, BOB, b, "epoch one");
    free(b.data);
    /* Epoch 2 without a grant: bob has no key for it. */
    it = channel_item(f, "case:1", 2, "epoch two");
    it.epoch = 2;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_NO_KEY);
    free(b.data);
    /* Epoch 2 with a new key handed to carol only: bob still cannot read it. */
    assert_int_equal(lia_symkey_generate(&k2), 0);
    const lia_cert_info *gc[] = {&f->cert[CAROL]};
    it = channel_item(f, "case:1", 2, "epoch two");
    it.epoch = 2;
    it.key = k2;
    it.grant = gc;
    it.n_grant = 1;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_NO_KEY);
    free(b.data);
    /* Wrong epoch: a header claiming epoch 1 sealed with the epoch-2 key fails to decrypt. */
    it = channel_item(f, "case:1", 2, "mislabelled");
    it.epoch = 1;
    it.key = k2;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_DECRYPT);
    free(b.data);
    lia_symkey_destroy(&k2);
}

/*
 * Streams interleaved at one opener (it reuses the hashes of the last stream it saw): two
 * senders on one channel, a second channel, a direct message and a new epoch in between; each
 * envelope opens with its own stream's key, and a replay is refused in its own stream only.
 */
static void test_streams_interleaved(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g_bob[] = {&f->cert[BOB]};
    const char *const to_bob[] = {"de-ncp"};
    lia_symkey_t *kc, *k2;
    lia_seal_item it;
    lia_buf a1, c1, a2, x1, d1, a3e2, c2, a4;

    assert_int_equal(lia_symkey_generate(&kc), 0);
    assert_int_equal(lia_symkey_generate(&k2), 0);
    it = channel_item(f, "case:1", 1, "alice one");
    it.grant = g_bob;
    it.n_grant = 1;
    a1 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:1", 1, "carol one");
    it.key = kc;
    it.grant = g_bob;
    it.n_grant = 1;
    c1 = seal1(f, CAROL, &it);
    it = channel_item(f, "case:1", 2, "alice two");
    a2 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:2", 1, "alice on case 2");
    it.grant = g_bob;
    it.n_grant = 1;
    x1 = seal1(f, ALICE, &it);
    memset(&it, 0, sizeof it);
    it.dest.recipients = to_bob;
    it.dest.n_recipients = 1;
    it.epoch = 1;
    it.seq = 1;
    it.created_at_ms = f->now_ms;
    it.key = f->key;
    it.payload = (const uint8_t *)"direct";
    it.payload_len = 6;
    it.grant = g_bob;
    it.n_grant = 1;
    d1 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:1", 3, "alice epoch two");
    it.epoch = 2;
    it.key = k2;
    it.grant = g_bob;
    it.n_grant = 1;
    a3e2 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:1", 2, "carol two");
    it.key = kc;
    c2 = seal1(f, CAROL, &it);
    it = channel_item(f, "case:1", 4, "alice epoch two again");
    it.epoch = 2;
    it.key = k2;
    a4 = seal1(f, ALICE, &it);

    expect_open(f, BOB, a1, "alice one");
    expect_open(f, BOB, c1, "carol one");
    expect_open(f, BOB, a2, "alice two");
    expect_open(f, BOB, x1, "alice on case 2");
    expect_open(f, BOB, d1, "direct");
    expect_open(f, BOB, a3e2, "alice epoch two");
    expect_open(f, BOB, c2, "carol two");
    expect_refused(f, BOB, c2, LIA_ERR_REPLAY); /* carol's stream, just after it was seen */
    expect_refused(f, BOB, a2, LIA_ERR_REPLAY); /* alice's, while carol's was the last */
    expect_open(f, BOB, a4, "alice epoch two again");
    expect_refused(f, BOB, x1, LIA_ERR_REPLAY); /* the other channel's stream */
    free(a1.data);
    free(c1.data);
    free(a2.data);
    free(x1.data);
    free(d1.data);
    free(a3e2.data);
    free(c2.data);
    free(a4.data);
    lia_symkey_destroy(&kc);
    lia_symkey_destroy(&k2);
}

static void test_sequence_gap(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_seal_item it = channel_item(f, "case:1", 1, "one");
    lia_buf b1, b3;

    it.grant = g;
    it.n_grant = 1;
    b1 = seal1(f, ALICE, &it);
    it = channel_item(f, "case:1", 3, "three");
    b3 = seal1(f, ALICE, &it);
    expect_open(f, BOB, b1, "one");
    expect_refused(f, BOB, b3, LIA_ERR_SEQ_GAP);
    free(b1.data);
    free(b3.data);
    /* A stream may start later than 1 for a node named in a key grant (it joined then). */
    it = channel_item(f, "case:1", 5, "joined late");
    it.grant = g;
    it.n_grant = 1;
    b1 = seal1(f, CAROL, &it);
    expect_open(f, BOB, b1, "joined late");
    free(b1.data);
}

/* ---- tampering helpers: an independent implementation of protocol.md 4.5 and 4.6 ---- */

static void ref_leaf(const uint8_t *h, size_t hl, const uint8_t *c, size_t cl, uint8_t out[32])
{
    crypto_generichash_state st;
    uint8_t pre = 0,
            n[4] = {(uint8_t)(hl >> 24), (uint8_t)(hl >> 16), (uint8_t)(hl >> 8), (uint8_t)hl};
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, &pre, 1);
    crypto_generichash_update(&st, (const uint8_t *)"liaison.v1.leaf", 16);
    crypto_generichash_update(&st, n, 4);
    crypto_generichash_update(&st, h, hl);
    crypto_generichash_update(&st, c, cl);
    crypto_generichash_final(&st, out, 32);
}

/* Rebuilds env as a batch of one with header hdr (or its own), signed by signer. */
static lia_buf resign(const lia_buf in, const uint8_t *hdr, size_t hdr_len,
                      const lia_identity_t *signer)
{
    Liaison__V1__Envelope *e = liaison__v1__envelope__unpack(NULL, in.len, in.data);
    Liaison__V1__BatchProof bp = LIAISON__V1__BATCH_PROOF__INIT;
    uint8_t leaf[32], msg[17 + 16 + 4 + 32], sig[64], kid[16];
    lia_buf out;

    ProtobufCBinaryData own_header;
    assert_non_null(e);
    own_header = e->header;
    if (hdr) {
        e->header.data = (uint8_t *)hdr; /* restored before free_unpacked */
        e->header.len = hdr_len;
    }
    ref_leaf(e->header.data, e->header.len, e->ciphertext.data, e->ciphertext.len, leaf);
    lia_key_id(lia_identity_sign_pk(signer), kid);
    memcpy(msg, "liaison.v1.batch", 17);
    memcpy(msg + 17, kid, 16);
    memcpy(msg + 33, "\0\0\0\1", 4);
    memcpy(msg + 37, leaf, 32);
    assert_int_equal(lia_identity_sign(signer, msg, sizeof msg, sig), 0);
    bp.leaf_index = 0;
    bp.leaf_count = 1;
    bp.signature.data = sig;
    bp.signature.len = 64;
    Liaison__V1__BatchProof *old = e->proof;
    e->proof = &bp;
    out.len = liaison__v1__envelope__get_packed_size(e);
    out.data = malloc(out.len);
    liaison__v1__envelope__pack(e, out.data);
    e->proof = old;
    e->header = own_header;
    liaison__v1__envelope__free_unpacked(e, NULL);
    return out;
}

/* Decodes the header of env, lets edit() change it, re-encodes it into *out. */
static void edit_header(const lia_buf env, void (*edit)(Liaison__V1__EnvelopeHeader *, void *),
                        void *arg, uint8_t **out, size_t *out_len)
{
    Liaison__V1__Envelope *e = liaison__v1__envelope__unpack(NULL, env.len, env.data);
    Liaison__V1__EnvelopeHeader *h;
    assert_non_null(e);
    h = liaison__v1__envelope_header__unpack(NULL, e->header.len, e->header.data);
    assert_non_null(h);
    edit(h, arg);
    *out_len = liaison__v1__envelope_header__get_packed_size(h);
    *out = malloc(*out_len);
    liaison__v1__envelope_header__pack(h, *out);
    liaison__v1__envelope_header__free_unpacked(h, NULL);
    liaison__v1__envelope__free_unpacked(e, NULL);
}

static void move_channel(Liaison__V1__EnvelopeHeader *h, void *arg)
{
    /* Replaced with heap copies: free_unpacked releases them with the header. */
    free(h->destination->channel);
    h->destination->channel = strdup(arg);
}

static void test_moved_to_other_channel(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_seal_item it = channel_item(f, "case:1", 1, "stay here");
    lia_buf b, moved, signed_moved;
    uint8_t *h;
    size_t hl;
    char other[] = "case:2";

    it.grant = g;
    it.n_grant = 1;
    b = seal1(f, ALICE, &it);
    edit_header(b, move_channel, other, &h, &hl);
    /* The broker moves it without re-signing: the proof no longer matches. */
    {
        Liaison__V1__Envelope *e = liaison__v1__envelope__unpack(NULL, b.len, b.data);
        uint8_t *keep = e->header.data;
        size_t keep_len = e->header.len;
        e->header.data = h;
        e->header.len = hl;
        moved.len = liaison__v1__envelope__get_packed_size(e);
        moved.data = malloc(moved.len);
        liaison__v1__envelope__pack(e, moved.data);
        e->header.data = keep;
        e->header.len = keep_len;
        liaison__v1__envelope__free_unpacked(e, NULL);
    }
    expect_refused(f, BOB, moved, LIA_ERR_SIGNATURE);
    /* Even re-signed by the rightful sender's key, the payload tag binds the old header. */
    signed_moved = resign(b, h, hl, f->id[ALICE]);
    expect_refused(f, BOB, signed_moved, LIA_ERR_DECRYPT);
    expect_open(f, BOB, b, "stay here");
    free(h);
    free(b.data);
    free(moved.data);
    free(signed_moved.data);
}

struct as_sender {
    const char *id;
    const uint8_t *key_id;
};

static void claim_sender(Liaison__V1__EnvelopeHeader *h, void *arg)
{
    struct as_sender *s = arg;
    free(h->sender);
    h->sender = strdup(s->id);
    memcpy(h->sender_key_id.data, s->key_id, 16);
}

static void test_stripped_and_resigned(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB], &f->cert[CAROL], &f->cert[MALLORY]};
    lia_seal_item it = channel_item(f, "case:1", 1, "from alice");
    lia_buf b, forged;
    uint8_t *h;
    size_t hl;

    it.grant = g;
    it.n_grant = 3;
    b = seal1(f, ALICE, &it);
    /* Mallory strips alice's signature and signs with its own key: wrong key for alice. */
    forged = resign(b, NULL, 0, f->id[MALLORY]);
    expect_refused(f, BOB, forged, LIA_ERR_SIGNATURE);
    free(forged.data);
    /* Mallory claims the message as its own (header names mallory) and re-signs: the grant
     * in the header is alice's, so the wrapped key's AD no longer matches. */
    struct as_sender s = {"zz-mallory", f->cert[MALLORY].sign_key_id};
    edit_header(b, claim_sender, &s, &h, &hl);
    forged = resign(b, h, hl, f->id[MALLORY]);
    expect_refused(f, BOB, forged, LIA_ERR_DECRYPT);
    free(forged.data);
    free(h);
    /* Alice's original is untouched by all this. */
    expect_open(f, BOB, b, "from alice");
    free(b.data);
}

static void test_every_byte_flipped(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB], &f->cert[CAROL]};
    lia_seal_item items[3];
    lia_buf b[3];
    int counts[64] = {0};

    for (int i = 0; i < 3; i++) {
        items[i] = channel_item(f, "case:1", (uint64_t)i + 1, "a case alert, tamper with me");
        if (i == 0) {
            items[i].grant = g;
            items[i].n_grant = 2;
        }
    }
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", items, 3, b), 0);
    /* Envelope 1 of 3 (with a grant and a two-entry proof), every byte, three patterns. */
    static const uint8_t patterns[] = {0x01, 0x80, 0xff};
    for (size_t p = 0; p < sizeof patterns; p++)
        for (size_t i = 0; i < b[0].len; i++) {
            lia_opened *m = NULL;
            b[0].data[i] ^= patterns[p];
            int rc = lia_opener_open(f->open[BOB], b[0].data, b[0].len, f->now_ms, &m);
            b[0].data[i] ^= patterns[p];
            if (rc == 0)
                fail_msg("flipping byte %zu with 0x%02x was accepted", i, patterns[p]);
            assert_null(m);
            counts[-rc]++;
        }
    /* Truncations, and a byte appended. */
    for (size_t n = 0; n < b[0].len; n++) {
        lia_opened *m = NULL;
        assert_true(lia_opener_open(f->open[BOB], b[0].data, n, f->now_ms, &m) < 0);
    }
    {
        uint8_t *longer = malloc(b[0].len + 1);
        lia_opened *m = NULL;
        memcpy(longer, b[0].data, b[0].len);
        longer[b[0].len] = 0;
        assert_true(lia_opener_open(f->open[BOB], longer, b[0].len + 1, f->now_ms, &m) < 0);
        free(longer);
    }
    print_message("%zu-byte envelope, 3 patterns; refusals by reason:", b[0].len);
    for (int e = 1; e < 64; e++)
        if (counts[e])
            print_message(" %s=%d", lia_errname(-e), counts[e]);
    print_message("\n");
    /* Nothing changed: the untouched batch still opens, in order. */
    expect_open(f, BOB, b[0], "a case alert, tamper with me");
    expect_open(f, BOB, b[1], "a case alert, tamper with me");
    expect_open(f, BOB, b[2], "a case alert, tamper with me");
    for (int i = 0; i < 3; i++)
        free(b[i].data);
}

static void check_batch_of(struct fixture *f, size_t n)
{
    lia_seal_item *items = calloc(n, sizeof *items);
    lia_buf *b = calloc(n, sizeof *b);
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_opener_t *o;
    char chan[32];

    snprintf(chan, sizeof chan, "batch:%zu", n);
    /* A fresh stream per batch size: channel membership is open for "case:1" only, so use
     * direct messages to bob. */
    const char *rcpt[] = {"de-ncp"};
    for (size_t i = 0; i < n; i++) {
        items[i].dest.recipients = rcpt;
        items[i].dest.n_recipients = 1;
        items[i].epoch = n;
        items[i].seq = i + 1;
        items[i].created_at_ms = f->now_ms;
        items[i].key = f->key;
        items[i].payload = (const uint8_t *)chan;
        items[i].payload_len = strlen(chan);
    }
    items[0].grant = g;
    items[0].n_grant = 1;
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", items, n, b), 0);
    assert_int_equal(lia_opener_new(f->trust, f->id[BOB], "de-ncp", &o), 0);
    for (size_t i = 0; i < n; i++) {
        lia_opened *m;
        int rc = lia_opener_open(o, b[i].data, b[i].len, f->now_ms, &m);
        if (rc != 0)
            fail_msg("batch %zu, envelope %zu: %s", n, i, lia_strerror(rc));
        assert_int_equal(m->batch_size, n);
        assert_int_equal(m->seq, i + 1);
        lia_opened_free(&m);
    }
    lia_opener_destroy(&o);
    for (size_t i = 0; i < n; i++)
        free(b[i].data);
    free(b);
    free(items);
}

static void test_batches(void **state)
{
    struct fixture *f = *state;
    check_batch_of(f, 1);
    check_batch_of(f, 2);
    check_batch_of(f, 3);
    check_batch_of(f, 64);
    check_batch_of(f, 1000);
}

/* An envelope taken from a batch and given another position or batch size fails. */
static void test_batch_position_altered(void **state)
{
    struct fixture *f = *state;
    lia_seal_item items[5];
    lia_buf b[5];
    const lia_cert_info *g[] = {&f->cert[BOB]};

    for (int i = 0; i < 5; i++)
        items[i] = channel_item(f, "case:1", (uint64_t)i + 1, "batched");
    items[0].grant = g;
    items[0].n_grant = 1;
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", items, 5, b), 0);
    for (int i = 0; i < 5; i++) {
        Liaison__V1__Envelope *e = liaison__v1__envelope__unpack(NULL, b[i].len, b[i].data);
        for (int variant = 0; variant < 3; variant++) {
            uint32_t idx = e->proof->leaf_index, cnt = e->proof->leaf_count;
            if (variant == 0)
                e->proof->leaf_index = (idx + 1) % cnt;
            else if (variant == 1)
                e->proof->leaf_count = cnt + 1;
            else
                e->proof->leaf_count = cnt + 3;
            lia_buf t;
            t.len = liaison__v1__envelope__get_packed_size(e);
            t.data = malloc(t.len);
            liaison__v1__envelope__pack(e, t.data);
            lia_opened *m = NULL;
            int rc = lia_opener_open(f->open[BOB], t.data, t.len, f->now_ms, &m);
            assert_true(rc == LIA_ERR_PROOF || rc == LIA_ERR_SIGNATURE);
            free(t.data);
            e->proof->leaf_index = idx;
            e->proof->leaf_count = cnt;
        }
        liaison__v1__envelope__free_unpacked(e, NULL);
    }
    for (int i = 0; i < 5; i++) {
        expect_open(f, BOB, b[i], "batched");
        free(b[i].data);
    }
}

/*
 * Once a batch is known (its early envelopes verified), later envelopes of it are proved
 * against its known nodes: any altered byte of their proof path, even above the first known
 * node, is still refused, and the untouched envelopes still open.
 */
static void test_batch_known_nodes_altered(void **state)
{
    struct fixture *f = *state;
    enum { N = 64 };
    lia_seal_item items[N];
    lia_buf b[N];
    const lia_cert_info *g[] = {&f->cert[BOB]};
    const char *rcpt[] = {"de-ncp"};
    lia_opener_t *o;

    memset(items, 0, sizeof items);
    for (size_t i = 0; i < N; i++) {
        items[i].dest.recipients = rcpt;
        items[i].dest.n_recipients = 1;
        items[i].epoch = 7;
        items[i].seq = i + 1;
        items[i].created_at_ms = f->now_ms;
        items[i].key = f->key;
        items[i].payload = (const uint8_t *)"known nodes";
        items[i].payload_len = 11;
    }
    items[0].grant = g;
    items[0].n_grant = 1;
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", items, N, b), 0);
    assert_int_equal(lia_opener_new(f->trust, f->id[BOB], "de-ncp", &o), 0);
    for (size_t i = 0; i < N; i++) {
        Liaison__V1__Envelope *e = liaison__v1__envelope__unpack(NULL, b[i].len, b[i].data);
        assert_non_null(e);
        for (size_t j = 0; i >= 8 && j < e->proof->n_path; j++)
            for (size_t k = 0; k < LIA_HASH_BYTES; k += 5) {
                lia_buf t;
                lia_opened *m = NULL;
                e->proof->path[j].data[k] ^= 0x20;
                t.len = liaison__v1__envelope__get_packed_size(e);
                assert_non_null(t.data = malloc(t.len));
                liaison__v1__envelope__pack(e, t.data);
                e->proof->path[j].data[k] ^= 0x20;
                int rc = lia_opener_open(o, t.data, t.len, f->now_ms, &m);
                if (rc != LIA_ERR_PROOF && rc != LIA_ERR_SIGNATURE)
                    fail_msg("envelope %zu, path %zu byte %zu altered: %s", i, j, k,
                             lia_strerror(rc));
                free(t.data);
            }
        liaison__v1__envelope__free_unpacked(e, NULL);
        lia_opened *m = NULL;
        int rc = lia_opener_open(o, b[i].data, b[i].len, f->now_ms, &m);
        if (rc != 0)
            fail_msg("envelope %zu: %s", i, lia_strerror(rc));
        lia_opened_free(&m);
    }
    lia_opener_destroy(&o);
    for (size_t i = 0; i < N; i++)
        free(b[i].data);
}

/* Message ids are time-ordered (u48be(created_at_ms) || 10 random bytes) and unique. */
static void test_message_ids_time_ordered(void **state)
{
    struct fixture *f = *state;
    enum { N = 16 };
    lia_seal_item items[N];
    lia_buf b[N];
    uint8_t ids[N][LIA_MESSAGE_ID_BYTES];

    for (int i = 0; i < N; i++) {
        items[i] = channel_item(f, "case:1", (uint64_t)i + 1, "ordered");
        items[i].created_at_ms = f->now_ms + (uint64_t)(i / 4); /* four per millisecond */
        items[i].message_id_out = ids[i];
    }
    assert_int_equal(lia_envelope_seal_batch(f->id[ALICE], "fr-ncp", items, N, b), 0);
    for (int i = 0; i < N; i++) {
        uint64_t t = 0;
        for (int k = 0; k < 6; k++)
            t = (t << 8) | ids[i][k];
        assert_int_equal(t, (f->now_ms + (uint64_t)(i / 4)) & 0xffffffffffffULL);
        for (int j = 0; j < i; j++) {
            assert_memory_not_equal(ids[i], ids[j], LIA_MESSAGE_ID_BYTES);
            if (i / 4 > j / 4)
                assert_true(memcmp(ids[i], ids[j], LIA_MESSAGE_ID_BYTES) > 0);
        }
        lia_envelope_meta *m = NULL;
        assert_int_equal(lia_envelope_inspect(b[i].data, b[i].len, &m), 0);
        assert_memory_equal(m->message_id, ids[i], LIA_MESSAGE_ID_BYTES);
        lia_envelope_meta_free(&m);
        free(b[i].data);
    }
}

/*
 * The broker's inspection with a cache kept across envelopes gives the digest and stream id of
 * each envelope's own destination and sender, whatever came before it.
 */
static void test_inspect_cached(void **state)
{
    struct fixture *f = *state;
    const char *const to_bob[] = {"de-ncp"};
    lia_inspect_cache cache;
    lia_seal_item it[5];
    const int from[5] = {ALICE, CAROL, ALICE, ALICE, CAROL};
    lia_buf b[5];

    memset(&cache, 0, sizeof cache);
    it[0] = channel_item(f, "case:1", 1, "a");
    it[1] = channel_item(f, "case:1", 1, "c");
    it[2] = channel_item(f, "case:2", 1, "a2");
    it[3] = channel_item(f, "case:1", 1, "direct");
    it[3].dest.channel = NULL;
    it[3].dest.recipients = to_bob;
    it[3].dest.n_recipients = 1;
    it[4] = channel_item(f, "case:1", 2, "c again");
    for (int i = 0; i < 5; i++)
        b[i] = seal1(f, from[i], &it[i]);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 5; i++) {
            lia_envelope_meta *m = NULL;
            uint8_t digest[LIA_DEST_DIGEST_BYTES], stream[LIA_STREAM_ID_BYTES];
            assert_int_equal(lia_envelope_inspect_cached(b[i].data, b[i].len, &cache, &m), 0);
            assert_int_equal(lia_dest_digest(&it[i].dest, digest), 0);
            lia_envelope_stream_id(node_ids[from[i]], digest, stream);
            assert_string_equal(m->sender, node_ids[from[i]]);
            assert_memory_equal(m->dest_digest, digest, sizeof digest);
            assert_memory_equal(m->stream_id, stream, sizeof stream);
            lia_envelope_meta_free(&m);
        }
    for (int i = 0; i < 5; i++)
        free(b[i].data);
}

static void test_certificates(void **state)
{
    struct fixture *f = *state;
    const lia_cert_info *g[] = {&f->cert[BOB]};
    lia_seal_item it = channel_item(f, "case:1", 1, "old");
    lia_buf b;
    uint64_t now = f->now_ms / 1000;

    it.grant = g;
    it.n_grant = 1;
    /* Created after the sender's certificate expired. */
    it.created_at_ms = (now + 2 * 86400) * 1000;
    b = seal1(f, ALICE, &it);
    {
        lia_opened *m = NULL;
        assert_int_equal(lia_opener_open(f->open[BOB], b.data, b.len, it.created_at_ms, &m),
                         LIA_ERR_EXPIRED);
    }
    free(b.data);
    /* Too far in the future for the receiver's clock. */
    it.created_at_ms = f->now_ms + LIA_CLOCK_SKEW_MS + 1000;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_CLOCK);
    free(b.data);
    /* Expired message. */
    it.created_at_ms = f->now_ms - 10000;
    it.expires_at_ms = f->now_ms - 1;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_EXPIRED_MSG);
    free(b.data);
    it.expires_at_ms = 0;

    /* Revocation: alice revoked from now on. An envelope created before still opens. */
    uint8_t *crl;
    size_t crl_len;
    assert_int_equal(lia_crl_issue(f->authority, NULL, f->cert[ALICE].serial, "fr-ncp", now,
                                   "key compromise", now, &crl, &crl_len),
                     0);
    assert_int_equal(lia_trust_set_crl(f->trust, crl, crl_len), 0);
    free(crl);
    it.created_at_ms = f->now_ms - 60000;
    b = seal1(f, ALICE, &it);
    expect_open(f, BOB, b, "old");
    free(b.data);
    /* The boundary, to the millisecond: created 1 ms before the revocation time opens;
     * created at it is refused (revoked "at or after"). */
    it = channel_item(f, "case:1", 2, "just before");
    it.created_at_ms = now * 1000 - 1;
    b = seal1(f, ALICE, &it);
    expect_open(f, BOB, b, "just before");
    free(b.data);
    it = channel_item(f, "case:1", 3, "at the revocation time");
    it.created_at_ms = now * 1000;
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_REVOKED);
    free(b.data);
    it = channel_item(f, "case:1", 3, "after revocation");
    b = seal1(f, ALICE, &it);
    expect_refused(f, BOB, b, LIA_ERR_REVOKED);
    free(b.data);

    /* A certificate from another authority is not accepted into the store, and an envelope
     * signed with such a key is refused. */
    lia_identity_t *other_auth, *evil;
    lia_authority_info oa;
    uint8_t *ab, *req, *cb;
    size_t al, rl, cl;
    lia_cert_info r;
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "Other", &other_auth), 0);
    assert_int_equal(lia_authority_create(other_auth, now, &ab, &al), 0);
    assert_int_equal(lia_authority_parse(ab, al, &oa), 0);
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "it-ncp", &evil), 0);
    assert_int_equal(lia_cert_request_create(evil, LIA_ROLE_CONTACT_POINT, "IT", &req, &rl), 0);
    assert_int_equal(lia_cert_request_parse(req, rl, &r), 0);
    assert_int_equal(lia_cert_issue(other_auth, &r, now - 10, now + 1000, NULL, &cb, &cl), 0);
    assert_int_equal(lia_trust_add_cert(f->trust, cb, cl, NULL), LIA_ERR_WRONG_AUTHORITY);
    it = channel_item(f, "case:1", 1, "foreign");
    assert_int_equal(lia_envelope_seal_batch(evil, "it-ncp", &it, 1, &b), 0);
    expect_refused(f, BOB, b, LIA_ERR_KEY_MISMATCH);
    free(b.data);
    assert_int_equal(lia_envelope_seal_batch(evil, "xx-unknown", &it, 1, &b), 0);
    expect_refused(f, BOB, b, LIA_ERR_UNKNOWN_SENDER);
    free(b.data);
    free(ab);
    free(req);
    free(cb);
    lia_identity_destroy(&evil);
    lia_identity_destroy(&other_auth);
}

static void test_bounds_and_garbage(void **state)
{
    struct fixture *f = *state;
    lia_opened *m = NULL;
    uint8_t junk[4096] = {0};

    assert_int_equal(lia_opener_open(f->open[BOB], junk, 0, f->now_ms, &m), LIA_ERR_DECODE);
    assert_int_equal(
        lia_opener_open(f->open[BOB], junk, (size_t)LIA_ENVELOPE_MAX + 1, f->now_ms, &m),
        LIA_ERR_TOO_LARGE);
    for (int i = 0; i < 2000; i++) {
        size_t n = 1 + randombytes_uniform(sizeof junk);
        randombytes_buf(junk, n);
        assert_true(lia_opener_open(f->open[BOB], junk, n, f->now_ms, &m) < 0);
        assert_null(m);
    }
}

/* Appends a protobuf length-delimited field (tag, varint length, bytes) at p; returns the end. */
static uint8_t *put_field(uint8_t *p, uint8_t tag, const uint8_t *data, size_t len)
{
    *p++ = tag;
    for (size_t v = len;; v >>= 7) {
        *p++ = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        if (v <= 0x7F)
            break;
    }
    if (len)
        memcpy(p, data, len);
    return p + len;
}

/*
 * An envelope of about 60 KB whose header holds a key grant of 29,000 empty wrapped keys: two
 * wire bytes each, a whole struct each once decoded (about 3 MB). The decoder's budget (16
 * times the envelope's size) refuses it before it allocates that much, at the broker (inspect)
 * and at a node (open) alike.
 */
static void test_decoder_amplification(void **state)
{
    struct fixture *f = *state;
    enum { KEYS = 29000 };
    size_t grant_len = 2 * KEYS, hdr_cap = grant_len + 16, env_cap = hdr_cap + 512;
    uint8_t *grant = malloc(grant_len), *hdr = malloc(hdr_cap), *env = malloc(env_cap);
    uint8_t ct[32] = {0}, sig[64] = {0}, proof[80], *p;
    lia_envelope_meta *meta = NULL;
    lia_opened *m = NULL;

    assert_non_null(grant);
    assert_non_null(hdr);
    assert_non_null(env);
    for (size_t i = 0; i < KEYS; i++) { /* KeyGrant.keys (2): an empty WrappedKey */
        grant[2 * i] = 0x12;
        grant[2 * i + 1] = 0x00;
    }
    p = put_field(hdr, 0x5A, grant, grant_len); /* EnvelopeHeader.key_grant (11) */
    size_t hdr_len = (size_t)(p - hdr);
    assert_true(hdr_len <= LIA_HEADER_MAX);
    p = proof; /* BatchProof: leaf_index 0, leaf_count (2) = 1, signature (4) */
    *p++ = 0x10;
    *p++ = 0x01;
    p = put_field(p, 0x22, sig, sizeof sig);
    size_t proof_len = (size_t)(p - proof);
    p = put_field(env, 0x0A, hdr, hdr_len); /* Envelope.header (1) */
    p = put_field(p, 0x12, ct, sizeof ct);  /* Envelope.ciphertext (2) */
    p = put_field(p, 0x1A, proof, proof_len);
    size_t env_len = (size_t)(p - env);

    assert_int_equal(lia_envelope_inspect(env, env_len, &meta), LIA_ERR_TOO_LARGE);
    assert_null(meta);
    assert_int_equal(lia_opener_open(f->open[BOB], env, env_len, f->now_ms, &m), LIA_ERR_TOO_LARGE);
    assert_null(m);
    /* The same header with 8 keys decodes, and is refused for what it is (no version...). */
    p = put_field(hdr, 0x5A, grant, 2 * 8);
    hdr_len = (size_t)(p - hdr);
    p = put_field(env, 0x0A, hdr, hdr_len);
    p = put_field(p, 0x12, ct, sizeof ct);
    p = put_field(p, 0x1A, proof, proof_len);
    assert_int_equal(lia_envelope_inspect(env, (size_t)(p - env), &meta), LIA_ERR_VERSION);
    free(grant);
    free(hdr);
    free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_channel_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_and_forwarding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_to_other_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_and_resigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_known_nodes_altered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_ids_time_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_position_altered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoder_amplification, setup, teardown),
    };
    if (lia_vault_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
