/*
 * Unit tests for owner-signed channel membership: the chain rules (owner, serial, link, time),
 * what a broker could try (alter, replay, reorder, fork, drop), certificates (revoked, expired,
 * role), epochs, history, export and import, bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "envelope.h"
#include "error.h"
#include "membership.h"
#include "testutil.h"
#include "trust.h"
#include "vault.h"

#include "liaison/v1/membership.pb-c.h"

#define NOW UINT64_C(1767225600)
#define DAY UINT64_C(86400)
#define T0  (NOW * 1000 + 1000) /* ms */
#define CH  "case:2026-0042"

enum { FR, DE, IT, ES, PT, HUB, NODES };

static const char *const names[NODES] = {"fr-ncp", "de-ncp", "it-ncp",
                                         "es-ncp", "pt-ncp", "europol-hub"};

struct fixture {
    lia_identity_t *auth;
    lia_identity_t *id[NODES];
    uint64_t serial[NODES];
    lia_trust_t *trust;
    lia_membership_t *owner_view; /* what the owner's node holds */
    lia_membership_t *member;     /* what another member's node holds */
};

/* ---- Set-up ------------------------------------------------------------------------------ */

static void enroll(struct fixture *f, int i, lia_role role, uint64_t nb, uint64_t na)
{
    uint8_t *req = NULL, *cert = NULL;
    size_t rl = 0, cl = 0;
    lia_cert_info r;

    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, names[i], &f->id[i]), 0);
    assert_int_equal(lia_cert_request_create(f->id[i], role, "FR", &req, &rl), 0);
    assert_int_equal(lia_cert_request_parse(req, rl, &r), 0);
    assert_int_equal(lia_cert_issue(f->auth, &r, nb, na, &f->serial[i], &cert, &cl), 0);
    assert_int_equal(lia_trust_add_cert(f->trust, cert, cl, NULL), 0);
    free(req);
    free(cert);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    lia_authority_info ai;
    uint8_t *ab = NULL;
    size_t al = 0;

    if (!f || lia_vault_init() != 0 ||
        lia_identity_generate(LIA_SECRET_AUTHORITY, "Test authority", &f->auth) != 0 ||
        lia_authority_create(f->auth, NOW, &ab, &al) != 0 ||
        lia_authority_parse(ab, al, &ai) != 0 || lia_trust_new(&ai, &f->trust) != 0)
        return -1;
    free(ab);
    enroll(f, FR, LIA_ROLE_CONTACT_POINT, NOW - DAY, NOW + 30 * DAY);
    enroll(f, DE, LIA_ROLE_CONTACT_POINT, NOW - DAY, NOW + 30 * DAY);
    enroll(f, IT, LIA_ROLE_CONTACT_POINT, NOW - DAY, NOW + 30 * DAY);
    /* es-ncp's certificate ends 100 s after T0. */
    enroll(f, ES, LIA_ROLE_CONTACT_POINT, NOW - DAY, NOW + 101);
    enroll(f, PT, LIA_ROLE_CONTACT_POINT, NOW - DAY, NOW + 30 * DAY);
    enroll(f, HUB, LIA_ROLE_HUB, NOW - DAY, NOW + 30 * DAY);
    if (lia_membership_new(f->trust, &f->owner_view) != 0 ||
        lia_membership_new(f->trust, &f->member) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    lia_membership_destroy(&f->owner_view);
    lia_membership_destroy(&f->member);
    lia_trust_destroy(&f->trust);
    for (int i = 0; i < NODES; i++)
        lia_identity_destroy(&f->id[i]);
    lia_identity_destroy(&f->auth);
    free(f);
    return 0;
}

/* ---- Helpers ----------------------------------------------------------------------------- */

struct change {
    uint8_t *buf;
    size_t len;
};

static void apply_both(struct fixture *f, const struct change *c, uint64_t now_ms)
{
    assert_int_equal(lia_membership_apply(f->owner_view, c->buf, c->len, now_ms), 0);
    assert_int_equal(lia_membership_apply(f->member, c->buf, c->len, now_ms), 0);
}

/* fr-ncp opens CH with fr-ncp and de-ncp; both views apply it. */
static struct change open_channel(struct fixture *f)
{
    static const char *const m[] = {"de-ncp", "fr-ncp"};
    struct change c = {0};

    assert_int_equal(lia_membership_create(f->owner_view, f->id[FR], "fr-ncp", CH, m, 2, 1,
                                           "Smuggling network, route A", T0, &c.buf, &c.len),
                     0);
    apply_both(f, &c, T0);
    return c;
}

static struct change add(struct fixture *f, int signer, const char *node, uint64_t at)
{
    struct change c = {0};

    assert_int_equal(lia_membership_add(f->owner_view, f->id[signer], names[signer], CH, node, at,
                                        &c.buf, &c.len),
                     0);
    return c;
}

/* History callback: keeps the last link hash. */
static int collect(void *arg, const lia_membership_event *ev)
{
    memcpy(arg, ev->hash, 32);
    return 0;
}

/* A change with every field chosen by the caller, continuing the owner's view. */
static struct change draft(struct fixture *f, int signer, lia_membership_action action,
                           const char *node, uint64_t serial_delta, uint64_t at)
{
    struct change c = {0};
    lia_membership_draft d = {.channel = CH, .created_at_ms = at, .action = action, .node = node};
    struct {
        uint8_t hash[32];
        uint64_t serial;
    } last = {{0}, 0};

    last.serial = lia_membership_serial(f->owner_view, CH);
    if (last.serial > 0) {
        /* the last link hash, from the history */
        assert_int_equal(lia_membership_history(f->owner_view, CH, collect, last.hash), 0);
    }
    d.serial = last.serial + serial_delta;
    d.prev_hash = last.hash;
    assert_int_equal(lia_membership_sign(f->id[signer], names[signer], &d, &c.buf, &c.len), 0);
    return c;
}

struct snapshot {
    uint64_t serial, epoch;
    size_t n;
    char owner[LIA_NODE_ID_MAX + 1];
    char members[16][LIA_NODE_ID_MAX + 1];
};

static void snap(const lia_membership_t *r, struct snapshot *s)
{
    const char *const *m;
    const char *o = lia_membership_owner(r, CH);

    memset(s, 0, sizeof *s);
    s->serial = lia_membership_serial(r, CH);
    s->epoch = lia_membership_epoch(r, CH);
    m = lia_membership_members(r, CH, &s->n);
    assert_true(s->n <= 16);
    for (size_t i = 0; i < s->n; i++)
        snprintf(s->members[i], sizeof s->members[i], "%s", m[i]);
    if (o)
        snprintf(s->owner, sizeof s->owner, "%s", o);
}

static void assert_unchanged(const lia_membership_t *r, const struct snapshot *before)
{
    struct snapshot now;

    snap(r, &now);
    assert_memory_equal(&now, before, sizeof now);
}

static void expect_members(const lia_membership_t *r, const char *const *want, size_t n)
{
    size_t got_n = 99;
    const char *const *got = lia_membership_members(r, CH, &got_n);

    assert_int_equal(got_n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(got[i], want[i]);
        assert_true(lia_membership_is_member((void *)r, CH, want[i]));
    }
}

static void change_free(struct change *c)
{
    free(c->buf);
    c->buf = NULL;
}

/* Signs raw body bytes as a MembershipChange (for bodies the builders cannot produce). */
static struct change sign_body(const lia_identity_t *id, const uint8_t *body, size_t blen)
{
    static const char label[] = "liaison.v1.membership";
    Liaison__V1__MembershipChange o = LIAISON__V1__MEMBERSHIP_CHANGE__INIT;
    uint8_t sig[64], *m = malloc(sizeof label + blen);
    struct change c = {0};

    assert_non_null(m);
    memcpy(m, label, sizeof label);
    memcpy(m + sizeof label, body, blen);
    assert_int_equal(lia_identity_sign(id, m, sizeof label + blen, sig), 0);
    free(m);
    o.body.data = (uint8_t *)body;
    o.body.len = blen;
    o.signature.data = sig;
    o.signature.len = 64;
    c.len = liaison__v1__membership_change__get_packed_size(&o);
    c.buf = malloc(c.len);
    assert_non_null(c.buf);
    liaison__v1__membership_change__pack(&o, c.buf);
    return c;
}

/* Packs a MembershipChain of the given changes. */
static struct change chain_of(const struct change *v, size_t n)
{
    Liaison__V1__MembershipChain ch = LIAISON__V1__MEMBERSHIP_CHAIN__INIT;
    ProtobufCBinaryData *d = calloc(n, sizeof *d);
    struct change c = {0};

    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        d[i].data = v[i].buf;
        d[i].len = v[i].len;
    }
    ch.version = 1;
    ch.n_changes = n;
    ch.changes = d;
    c.len = liaison__v1__membership_chain__get_packed_size(&ch);
    c.buf = malloc(c.len);
    assert_non_null(c.buf);
    liaison__v1__membership_chain__pack(&ch, c.buf);
    free(d);
    return c;
}

/* ---- Tests ------------------------------------------------------------------------------- */

struct events {
    size_t n;
    lia_membership_event ev[16];
    char node[16][LIA_NODE_ID_MAX + 1];
    char signer[16][LIA_NODE_ID_MAX + 1];
    size_t n_members0;
};

static int record(void *arg, const lia_membership_event *ev)
{
    struct events *e = arg;

    if (e->n >= 16)
        return -99;
    e->ev[e->n] = *ev;
    snprintf(e->node[e->n], sizeof e->node[0], "%s", ev->node);
    snprintf(e->signer[e->n], sizeof e->signer[0], "%s", ev->signer);
    if (ev->action == LIA_MEMBERSHIP_CREATE)
        e->n_members0 = ev->n_members;
    e->n++;
    return 0;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct change c[6];
    struct events ev = {0};
    uint64_t joined = 0;
    lia_member_fn fn = lia_membership_is_member; /* fits the envelope layer */
    static const char *const m1[] = {"de-ncp", "fr-ncp"};
    static const char *const m2[] = {"de-ncp", "fr-ncp", "it-ncp"};
    static const char *const m3[] = {"fr-ncp", "it-ncp"};
    static const char *const m4[] = {"es-ncp", "fr-ncp", "it-ncp"};

    assert_null(lia_membership_owner(f->member, CH));
    assert_int_equal(lia_membership_epoch(f->member, CH), 0);
    assert_false(fn(f->member, CH, "fr-ncp"));

    c[0] = open_channel(f);
    assert_string_equal(lia_membership_owner(f->member, CH), "fr-ncp");
    assert_int_equal(lia_membership_epoch(f->member, CH), 1);
    assert_int_equal(lia_membership_serial(f->member, CH), 1);
    assert_true(lia_membership_copy_to_hub(f->member, CH));
    expect_members(f->member, m1, 2);
    assert_true(fn(f->member, CH, "de-ncp"));
    assert_false(fn(f->member, CH, "it-ncp"));
    assert_false(fn(f->member, "case:other", "de-ncp"));

    c[1] = add(f, FR, "it-ncp", T0 + 1000);
    apply_both(f, &c[1], T0 + 1000);
    expect_members(f->member, m2, 3);
    assert_int_equal(lia_membership_epoch(f->member, CH), 1); /* adding keeps the epoch */
    assert_int_equal(lia_membership_joined(f->member, CH, "it-ncp", &joined), 0);
    assert_int_equal(joined, 2);
    assert_int_equal(lia_membership_joined(f->member, CH, "de-ncp", &joined), 0);
    assert_int_equal(joined, 1);

    assert_int_equal(lia_membership_remove(f->owner_view, f->id[FR], "fr-ncp", CH, "de-ncp",
                                           T0 + 2000, &c[2].buf, &c[2].len),
                     0);
    apply_both(f, &c[2], T0 + 2000);
    expect_members(f->member, m3, 2);
    assert_false(fn(f->member, CH, "de-ncp"));
    assert_int_equal(lia_membership_epoch(f->member, CH), 2); /* removing starts an epoch */
    assert_int_equal(lia_membership_joined(f->member, CH, "de-ncp", &joined), LIA_ERR_NOT_MEMBER);

    assert_int_equal(lia_membership_transfer(f->owner_view, f->id[FR], "fr-ncp", CH, "it-ncp",
                                             T0 + 3000, &c[3].buf, &c[3].len),
                     0);
    apply_both(f, &c[3], T0 + 3000);
    assert_string_equal(lia_membership_owner(f->member, CH), "it-ncp");
    assert_int_equal(lia_membership_epoch(f->member, CH), 2);

    /* The new owner manages the channel. */
    c[4] = add(f, IT, "es-ncp", T0 + 4000);
    apply_both(f, &c[4], T0 + 4000);
    expect_members(f->member, m4, 3);
    expect_members(f->owner_view, m4, 3);

    assert_int_equal(lia_membership_history(f->member, CH, record, &ev), 0);
    assert_int_equal(ev.n, 5);
    assert_int_equal(ev.n_members0, 2);
    static const lia_membership_action act[] = {LIA_MEMBERSHIP_CREATE, LIA_MEMBERSHIP_ADD,
                                                LIA_MEMBERSHIP_REMOVE, LIA_MEMBERSHIP_TRANSFER,
                                                LIA_MEMBERSHIP_ADD};
    static const char *const node[] = {"fr-ncp", "it-ncp", "de-ncp", "it-ncp", "es-ncp"};
    static const char *const signer[] = {"fr-ncp", "fr-ncp", "fr-ncp", "fr-ncp", "it-ncp"};
    static const uint64_t epoch[] = {1, 1, 2, 2, 2};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(ev.ev[i].serial, i + 1);
        assert_int_equal(ev.ev[i].action, act[i]);
        assert_string_equal(ev.node[i], node[i]);
        assert_string_equal(ev.signer[i], signer[i]);
        assert_int_equal(ev.ev[i].created_at_ms, T0 + 1000 * i);
        assert_int_equal(ev.ev[i].epoch, epoch[i]);
    }
    /* A callback's non-zero return stops the listing and is returned. */
    ev.n = 16;
    assert_int_equal(lia_membership_history(f->member, CH, record, &ev), -99);
    assert_int_equal(lia_membership_history(f->member, "case:none", record, &ev),
                     LIA_ERR_NOT_FOUND);
    for (int i = 0; i < 5; i++)
        change_free(&c[i]);
}

static void test_non_owner_refused(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), bad;
    struct snapshot before;
    uint8_t *out = (uint8_t *)1;
    size_t len = 1;

    snap(f->member, &before);
    /* de-ncp is a member and a contact point, but not the owner. */
    bad = draft(f, DE, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 + 10);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10), LIA_ERR_NOT_OWNER);
    assert_unchanged(f->member, &before);
    change_free(&bad);
    bad = draft(f, IT, LIA_MEMBERSHIP_REMOVE, "de-ncp", 1, T0 + 10);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10), LIA_ERR_NOT_OWNER);
    assert_unchanged(f->member, &before);
    change_free(&bad);
    /* The builders refuse to produce it in the first place. */
    assert_int_equal(
        lia_membership_add(f->owner_view, f->id[DE], "de-ncp", CH, "it-ncp", T0 + 10, &out, &len),
        LIA_ERR_NOT_OWNER);
    assert_null(out);
    assert_int_equal(len, 0);
    /* Claiming to be the owner with another key: the owner's certificate has no such key. */
    {
        lia_membership_draft d = {.channel = CH,
                                  .serial = 2,
                                  .created_at_ms = T0 + 10,
                                  .action = LIA_MEMBERSHIP_ADD,
                                  .node = "it-ncp"};
        uint8_t h[32];
        assert_int_equal(lia_membership_history(f->member, CH, collect, h), 0);
        d.prev_hash = h;
        assert_int_equal(lia_membership_sign(f->id[DE], "fr-ncp", &d, &bad.buf, &bad.len), 0);
        assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                         LIA_ERR_KEY_MISMATCH);
        change_free(&bad);
    }
    assert_unchanged(f->member, &before);
    change_free(&c0);
}

static void test_old_owner_after_transfer(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), t = {0}, bad;
    struct snapshot before;

    assert_int_equal(lia_membership_transfer(f->owner_view, f->id[FR], "fr-ncp", CH, "de-ncp",
                                             T0 + 10, &t.buf, &t.len),
                     0);
    apply_both(f, &t, T0 + 10);
    snap(f->member, &before);
    bad = draft(f, FR, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 + 20);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 20), LIA_ERR_NOT_OWNER);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_TRANSFER, "fr-ncp", 1, T0 + 20);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 20), LIA_ERR_NOT_OWNER);
    change_free(&bad);
    assert_unchanged(f->member, &before);
    /* The new owner can. */
    bad = draft(f, DE, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 + 20);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 20), 0);
    change_free(&bad);
    change_free(&t);
    change_free(&c0);
}

static void test_replay_and_reorder(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), c1, c2 = {0};
    struct snapshot before;

    /* The owner makes two changes; the member receives them out of order. */
    c1 = add(f, FR, "it-ncp", T0 + 10);
    assert_int_equal(lia_membership_apply(f->owner_view, c1.buf, c1.len, T0 + 10), 0);
    assert_int_equal(lia_membership_remove(f->owner_view, f->id[FR], "fr-ncp", CH, "de-ncp",
                                           T0 + 20, &c2.buf, &c2.len),
                     0);
    assert_int_equal(lia_membership_apply(f->owner_view, c2.buf, c2.len, T0 + 20), 0);

    snap(f->member, &before);
    assert_int_equal(lia_membership_apply(f->member, c2.buf, c2.len, T0 + 20), LIA_ERR_SEQ_GAP);
    assert_unchanged(f->member, &before);
    assert_int_equal(lia_membership_apply(f->member, c1.buf, c1.len, T0 + 20), 0);
    assert_int_equal(lia_membership_apply(f->member, c2.buf, c2.len, T0 + 20), 0);

    /* Replays of anything applied, including the Create. */
    snap(f->member, &before);
    assert_int_equal(lia_membership_apply(f->member, c1.buf, c1.len, T0 + 30), LIA_ERR_REPLAY);
    assert_int_equal(lia_membership_apply(f->member, c2.buf, c2.len, T0 + 30), LIA_ERR_REPLAY);
    assert_int_equal(lia_membership_apply(f->member, c0.buf, c0.len, T0 + 30), LIA_ERR_REPLAY);
    assert_unchanged(f->member, &before);

    /* A later change of a channel never created here: its beginning is missing. */
    {
        lia_membership_t *fresh = NULL;
        assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
        assert_int_equal(lia_membership_apply(fresh, c1.buf, c1.len, T0 + 30), LIA_ERR_SEQ_GAP);
        assert_null(lia_membership_owner(fresh, CH));
        lia_membership_destroy(&fresh);
        assert_null(fresh);
    }
    change_free(&c0);
    change_free(&c1);
    change_free(&c2);
}

static void test_every_byte_flipped(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), c1 = add(f, FR, "it-ncp", T0 + 10);
    struct snapshot before;
    uint8_t *copy = malloc(c1.len);

    assert_non_null(copy);
    snap(f->member, &before);
    for (size_t i = 0; i < c1.len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, c1.buf, c1.len);
            copy[i] ^= (uint8_t)(1u << bit);
            int rc = lia_membership_apply(f->member, copy, c1.len, T0 + 10);
            if (rc == 0)
                fail_msg("byte %zu bit %d flipped was accepted", i, bit);
            assert_true(rc < 0 && rc > LIA_ERR__LAST);
            assert_unchanged(f->member, &before);
        }
    }
    /* Truncated at every length. */
    for (size_t n = 0; n < c1.len; n++)
        assert_int_not_equal(lia_membership_apply(f->member, c1.buf, n, T0 + 10), 0);
    assert_unchanged(f->member, &before);
    assert_int_equal(lia_membership_apply(f->member, c1.buf, c1.len, T0 + 10), 0);
    assert_true(lia_membership_is_member(f->member, CH, "it-ncp"));
    free(copy);
    change_free(&c0);
    change_free(&c1);
}

static void test_broker_alters(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), c1 = add(f, FR, "it-ncp", T0 + 10), forged = {0};
    Liaison__V1__MembershipChange *o;
    Liaison__V1__MembershipChangeBody *b;
    struct snapshot before;
    uint8_t *nb;
    size_t nl;
    char *orig;

    snap(f->member, &before);
    /* The broker swaps the added member and re-encodes the body, keeping the signature. */
    o = liaison__v1__membership_change__unpack(NULL, c1.len, c1.buf);
    assert_non_null(o);
    b = liaison__v1__membership_change_body__unpack(NULL, o->body.len, o->body.data);
    assert_non_null(b);
    assert_int_equal(b->action_case, LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER);
    orig = b->add_member->node; /* owned by b: restored before freeing */
    b->add_member->node = (char *)"europol-hub";
    nl = liaison__v1__membership_change_body__get_packed_size(b);
    nb = malloc(nl);
    assert_non_null(nb);
    liaison__v1__membership_change_body__pack(b, nb);
    b->add_member->node = orig;
    {
        ProtobufCBinaryData keep = o->body;
        o->body.data = nb;
        o->body.len = nl;
        forged.len = liaison__v1__membership_change__get_packed_size(o);
        forged.buf = malloc(forged.len);
        assert_non_null(forged.buf);
        liaison__v1__membership_change__pack(o, forged.buf);
        o->body = keep;
    }
    assert_int_equal(lia_membership_apply(f->member, forged.buf, forged.len, T0 + 10),
                     LIA_ERR_SIGNATURE);
    assert_false(lia_membership_is_member(f->member, CH, "europol-hub"));
    assert_unchanged(f->member, &before);
    change_free(&forged);

    /* The broker re-signs with its own key: not the owner's key. */
    {
        lia_identity_t *broker = NULL;
        assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "broker", &broker), 0);
        forged = sign_body(broker, nb, nl);
        assert_int_equal(lia_membership_apply(f->member, forged.buf, forged.len, T0 + 10),
                         LIA_ERR_SIGNATURE);
        change_free(&forged);
        lia_identity_destroy(&broker);
    }
    /* An unknown field appended to the outer message: not canonical. */
    forged.len = c1.len + 2;
    forged.buf = malloc(forged.len);
    assert_non_null(forged.buf);
    memcpy(forged.buf, c1.buf, c1.len);
    forged.buf[c1.len] = (9 << 3) | 0; /* field 9, varint */
    forged.buf[c1.len + 1] = 1;
    assert_int_equal(lia_membership_apply(f->member, forged.buf, forged.len, T0 + 10),
                     LIA_ERR_DECODE);
    change_free(&forged);
    assert_unchanged(f->member, &before);

    free(nb);
    liaison__v1__membership_change_body__free_unpacked(b, NULL);
    liaison__v1__membership_change__free_unpacked(o, NULL);
    change_free(&c0);
    change_free(&c1);
}

static void test_fork(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), a, b, next;
    struct snapshot before;

    /* The owner signs two different changes with serial 2. */
    a = draft(f, FR, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 + 10);
    b = draft(f, FR, LIA_MEMBERSHIP_ADD, "es-ncp", 1, T0 + 10);
    assert_int_equal(lia_membership_apply(f->member, a.buf, a.len, T0 + 10), 0);
    snap(f->member, &before);
    assert_int_equal(lia_membership_apply(f->member, b.buf, b.len, T0 + 10), LIA_ERR_FORK);
    assert_false(lia_membership_is_member(f->member, CH, "es-ncp"));
    assert_unchanged(f->member, &before);

    /* A change on top of the other branch (serial 3, prev_hash of b): a broken link. */
    assert_int_equal(lia_membership_apply(f->owner_view, b.buf, b.len, T0 + 10), 0);
    next = draft(f, FR, LIA_MEMBERSHIP_ADD, "pt-ncp", 1, T0 + 20);
    assert_int_equal(lia_membership_apply(f->member, next.buf, next.len, T0 + 20), LIA_ERR_FORK);
    assert_unchanged(f->member, &before);
    /* Another contact point opening a channel of the same name: a fork of serial 1. */
    {
        static const char *const m[] = {"de-ncp"};
        struct change other = {0};
        lia_membership_t *fresh = NULL;
        assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
        assert_int_equal(lia_membership_create(fresh, f->id[DE], "de-ncp", CH, m, 1, 0, NULL,
                                               T0 + 30, &other.buf, &other.len),
                         0);
        assert_int_equal(lia_membership_apply(f->member, other.buf, other.len, T0 + 30),
                         LIA_ERR_FORK);
        assert_unchanged(f->member, &before);
        lia_membership_destroy(&fresh);
        change_free(&other);
    }
    change_free(&c0);
    change_free(&a);
    change_free(&b);
    change_free(&next);
}

static void test_epochs(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), c[4] = {{0}};
    uint64_t e = 0;

    c[0] = add(f, FR, "it-ncp", T0 + 10);
    apply_both(f, &c[0], T0 + 10);
    assert_int_equal(lia_membership_epoch(f->member, CH), 1);
    assert_int_equal(lia_membership_remove(f->owner_view, f->id[FR], "fr-ncp", CH, "it-ncp",
                                           T0 + 20, &c[1].buf, &c[1].len),
                     0);
    apply_both(f, &c[1], T0 + 20);
    assert_int_equal(lia_membership_epoch(f->member, CH), 2);
    /* Re-adding does not change the epoch; removing again starts epoch 3. */
    c[2] = add(f, FR, "it-ncp", T0 + 30);
    apply_both(f, &c[2], T0 + 30);
    assert_int_equal(lia_membership_epoch(f->member, CH), 2);
    assert_int_equal(lia_membership_remove(f->owner_view, f->id[FR], "fr-ncp", CH, "de-ncp",
                                           T0 + 40, &c[3].buf, &c[3].len),
                     0);
    apply_both(f, &c[3], T0 + 40);
    assert_int_equal(lia_membership_epoch(f->member, CH), 3);
    /* Local bumps (revocation, rollover) add to it and survive later changes. */
    assert_int_equal(lia_membership_bump_epoch(f->member, CH, &e), 0);
    assert_int_equal(e, 4);
    assert_int_equal(lia_membership_epoch(f->member, CH), 4);
    assert_int_equal(lia_membership_epoch(f->owner_view, CH), 3);
    assert_int_equal(lia_membership_bump_epoch(f->member, "case:none", &e), LIA_ERR_NOT_FOUND);
    {
        struct change t = {0};
        assert_int_equal(lia_membership_transfer(f->owner_view, f->id[FR], "fr-ncp", CH, "it-ncp",
                                                 T0 + 50, &t.buf, &t.len),
                         0);
        apply_both(f, &t, T0 + 50);
        assert_int_equal(lia_membership_epoch(f->member, CH), 4);
        change_free(&t);
    }
    for (int i = 0; i < 4; i++)
        change_free(&c[i]);
    change_free(&c0);
}

static void test_action_rules(void **state)
{
    struct fixture *f = *state;
    struct change c0 = open_channel(f), bad;
    struct snapshot before;

    snap(f->member, &before);
    bad = draft(f, FR, LIA_MEMBERSHIP_ADD, "de-ncp", 1, T0 + 10); /* already a member */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_MEMBER_STATE);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_ADD, "nobody", 1, T0 + 10); /* no certificate */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_UNKNOWN_SENDER);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_REMOVE, "it-ncp", 1, T0 + 10); /* not a member */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_NOT_MEMBER);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_REMOVE, "fr-ncp", 1, T0 + 10); /* the owner */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_MEMBER_STATE);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_TRANSFER, "it-ncp", 1, T0 + 10); /* not a member */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_NOT_MEMBER);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_TRANSFER, "fr-ncp", 1, T0 + 10); /* to itself */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10),
                     LIA_ERR_MEMBER_STATE);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 - 1); /* time goes backwards */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 10), LIA_ERR_STALE);
    change_free(&bad);
    bad = draft(f, FR, LIA_MEMBERSHIP_ADD, "it-ncp", 1, T0 + 301000); /* 5 min + 1 s ahead */
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0), LIA_ERR_CLOCK);
    assert_int_equal(lia_membership_apply(f->member, bad.buf, bad.len, T0 + 1000), 0);
    change_free(&bad);
    assert_int_equal(lia_membership_apply(f->owner_view, NULL, 0, T0), LIA_ERR_DECODE);
    change_free(&c0);
}

static void test_hub_and_create_rules(void **state)
{
    struct fixture *f = *state;
    static const char *const with_hub[] = {"europol-hub", "fr-ncp"};
    static const char *const unsorted[] = {"fr-ncp", "de-ncp"};
    static const char *const without_signer[] = {"de-ncp"};
    static const char *const dup[] = {"fr-ncp", "fr-ncp"};
    static const char *const uncertified[] = {"fr-ncp", "zz-ncp"};
    lia_membership_draft d = {
        .channel = CH, .serial = 1, .created_at_ms = T0, .action = LIA_MEMBERSHIP_CREATE};
    struct change c = {0};

    /* A hub may not open a channel. */
    assert_int_equal(lia_membership_create(f->member, f->id[HUB], "europol-hub", CH, with_hub, 2, 0,
                                           NULL, T0, &c.buf, &c.len),
                     LIA_ERR_NOT_OWNER);
    d.members = with_hub;
    d.n_members = 2;
    assert_int_equal(lia_membership_sign(f->id[HUB], "europol-hub", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_NOT_OWNER);
    assert_null(lia_membership_owner(f->member, CH));
    change_free(&c);

    d.members = unsorted;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
    change_free(&c);
    d.members = dup;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
    change_free(&c);
    d.members = without_signer;
    d.n_members = 1;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_MEMBER_STATE);
    change_free(&c);
    d.members = uncertified;
    d.n_members = 2;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_UNKNOWN_SENDER);
    change_free(&c);
    d.n_members = 0;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
    change_free(&c);
    /* Serial 1 must be a Create, and a Create serial 1 with a zero prev_hash. */
    d.action = LIA_MEMBERSHIP_ADD;
    d.node = "de-ncp";
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
    change_free(&c);
    {
        static const uint8_t ones[32] = {1};
        d.action = LIA_MEMBERSHIP_CREATE;
        d.members = with_hub;
        d.prev_hash = ones;
        assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
        change_free(&c);
        d.prev_hash = NULL;
        d.serial = 2;
        assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), 0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
        change_free(&c);
    }
    /* A hub as an initial member is fine; but ownership cannot go to it. */
    assert_int_equal(lia_membership_create(f->owner_view, f->id[FR], "fr-ncp", CH, with_hub, 2, 1,
                                           "", T0, &c.buf, &c.len),
                     0);
    apply_both(f, &c, T0);
    change_free(&c);
    assert_int_equal(lia_membership_transfer(f->owner_view, f->id[FR], "fr-ncp", CH, "europol-hub",
                                             T0 + 10, &c.buf, &c.len),
                     LIA_ERR_NOT_OWNER);
    c = draft(f, FR, LIA_MEMBERSHIP_TRANSFER, "europol-hub", 1, T0 + 10);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0 + 10), LIA_ERR_NOT_OWNER);
    assert_string_equal(lia_membership_owner(f->member, CH), "fr-ncp");
    change_free(&c);
}

static void test_signer_certificates(void **state)
{
    struct fixture *f = *state;
    static const char *const es[] = {"de-ncp", "es-ncp"};
    static const char *const pt[] = {"de-ncp", "pt-ncp"};
    struct change c = {0}, a;
    uint8_t *crl = NULL;
    size_t crl_len = 0;

    /* es-ncp's certificate ends at NOW + 101 s: a Create dated after that is refused. */
    assert_int_equal(lia_membership_create(f->member, f->id[ES], "es-ncp", "case:es", es, 2, 0,
                                           NULL, (NOW + 101) * 1000, &c.buf, &c.len),
                     LIA_ERR_EXPIRED);
    {
        lia_membership_draft d = {.channel = "case:es",
                                  .serial = 1,
                                  .created_at_ms = (NOW + 101) * 1000,
                                  .action = LIA_MEMBERSHIP_CREATE,
                                  .members = es,
                                  .n_members = 2};
        assert_int_equal(lia_membership_sign(f->id[ES], "es-ncp", &d, &c.buf, &c.len), 0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, (NOW + 101) * 1000),
                         LIA_ERR_EXPIRED);
        change_free(&c);
        d.created_at_ms = (NOW + 100) * 1000;
        assert_int_equal(lia_membership_sign(f->id[ES], "es-ncp", &d, &c.buf, &c.len), 0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, (NOW + 101) * 1000), 0);
        change_free(&c);
    }
    /* es-ncp, now the owner of case:es, cannot sign after its certificate ended. */
    {
        lia_membership_draft d = {.channel = "case:es",
                                  .serial = 2,
                                  .created_at_ms = (NOW + 200) * 1000,
                                  .action = LIA_MEMBERSHIP_ADD,
                                  .node = "it-ncp"};
        struct events ev = {0};
        assert_int_equal(lia_membership_history(f->member, "case:es", record, &ev), 0);
        d.prev_hash = ev.ev[0].hash;
        assert_int_equal(lia_membership_sign(f->id[ES], "es-ncp", &d, &c.buf, &c.len), 0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, (NOW + 200) * 1000),
                         LIA_ERR_EXPIRED);
        change_free(&c);
    }

    /* pt-ncp opens a channel, then is revoked from NOW + 50 s. */
    assert_int_equal(lia_membership_create(f->owner_view, f->id[PT], "pt-ncp", CH, pt, 2, 0, NULL,
                                           T0, &c.buf, &c.len),
                     0);
    apply_both(f, &c, T0);
    change_free(&c);
    assert_int_equal(lia_crl_issue(f->auth, NULL, f->serial[PT], "pt-ncp", NOW + 50, "key lost",
                                   NOW + 60, &crl, &crl_len),
                     0);
    assert_int_equal(lia_trust_set_crl(f->trust, crl, crl_len), 0);
    free(crl);
    a = draft(f, PT, LIA_MEMBERSHIP_ADD, "it-ncp", 1, (NOW + 50) * 1000);
    assert_int_equal(lia_membership_apply(f->member, a.buf, a.len, (NOW + 60) * 1000),
                     LIA_ERR_REVOKED);
    assert_false(lia_membership_is_member(f->member, CH, "it-ncp"));
    change_free(&a);
    /* Dated before the revocation it still verifies (history stays valid). */
    a = draft(f, PT, LIA_MEMBERSHIP_ADD, "it-ncp", 1, (NOW + 49) * 1000);
    assert_int_equal(lia_membership_apply(f->member, a.buf, a.len, (NOW + 60) * 1000), 0);
    change_free(&a);
    /* A revoked node cannot be added either (de-ncp is fine, pt-ncp is not). */
    {
        lia_membership_t *r = NULL;
        static const char *const m[] = {"fr-ncp"};
        assert_int_equal(lia_membership_new(f->trust, &r), 0);
        assert_int_equal(lia_membership_create(r, f->id[FR], "fr-ncp", "case:b", m, 1, 0, NULL,
                                               (NOW + 60) * 1000, &c.buf, &c.len),
                         0);
        assert_int_equal(lia_membership_apply(r, c.buf, c.len, (NOW + 60) * 1000), 0);
        change_free(&c);
        assert_int_equal(lia_membership_add(r, f->id[FR], "fr-ncp", "case:b", "pt-ncp",
                                            (NOW + 61) * 1000, &c.buf, &c.len),
                         LIA_ERR_REVOKED);
        assert_int_equal(lia_membership_add(r, f->id[FR], "fr-ncp", "case:b", "es-ncp",
                                            (NOW + 200) * 1000, &c.buf, &c.len),
                         LIA_ERR_EXPIRED);
        lia_membership_destroy(&r);
    }
}

static void test_export_import(void **state)
{
    struct fixture *f = *state;
    struct change c[4], chain = {0}, bad = {0};
    lia_membership_t *fresh = NULL;
    struct snapshot want, before;
    char name[LIA_CHANNEL_MAX + 1];
    struct events e1 = {0}, e2 = {0};

    c[0] = open_channel(f);
    c[1] = add(f, FR, "it-ncp", T0 + 10);
    apply_both(f, &c[1], T0 + 10);
    c[2] = draft(f, FR, LIA_MEMBERSHIP_REMOVE, "de-ncp", 1, T0 + 20);
    apply_both(f, &c[2], T0 + 20);
    c[3] = draft(f, FR, LIA_MEMBERSHIP_TRANSFER, "it-ncp", 1, T0 + 30);
    apply_both(f, &c[3], T0 + 30);

    assert_int_equal(lia_membership_export(f->member, CH, &chain.buf, &chain.len), 0);
    assert_int_equal(lia_membership_export(f->member, "case:none", &bad.buf, &bad.len),
                     LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
    assert_int_equal(lia_membership_import(fresh, chain.buf, chain.len, T0 + 40, name), 0);
    assert_string_equal(name, CH);
    snap(f->member, &want);
    assert_unchanged(fresh, &want);
    assert_int_equal(lia_membership_history(f->member, CH, record, &e1), 0);
    assert_int_equal(lia_membership_history(fresh, CH, record, &e2), 0);
    assert_int_equal(e1.n, e2.n);
    for (size_t i = 0; i < e1.n; i++)
        assert_memory_equal(e1.ev[i].hash, e2.ev[i].hash, 32);
    /* The same chain again: nothing newer, no change. Export of the import: same bytes. */
    assert_int_equal(lia_membership_import(fresh, chain.buf, chain.len, T0 + 40, NULL), 0);
    assert_unchanged(fresh, &want);
    {
        struct change again = {0};
        assert_int_equal(lia_membership_export(fresh, CH, &again.buf, &again.len), 0);
        assert_int_equal(again.len, chain.len);
        assert_memory_equal(again.buf, chain.buf, chain.len);
        change_free(&again);
    }
    lia_membership_destroy(&fresh);

    /* A registry holding a prefix (with a local bump) takes the newer changes. */
    assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
    assert_int_equal(lia_membership_apply(fresh, c[0].buf, c[0].len, T0), 0);
    assert_int_equal(lia_membership_bump_epoch(fresh, CH, NULL), 0);
    assert_int_equal(lia_membership_import(fresh, chain.buf, chain.len, T0 + 40, NULL), 0);
    assert_string_equal(lia_membership_owner(fresh, CH), "it-ncp");
    assert_int_equal(lia_membership_epoch(fresh, CH), want.epoch + 1);
    lia_membership_destroy(&fresh);

    /* Broken chains, each refused, leaving the registry unchanged. */
    assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
    assert_int_equal(lia_membership_apply(fresh, c[0].buf, c[0].len, T0), 0);
    assert_int_equal(lia_membership_bump_epoch(fresh, CH, NULL), 0);
    snap(fresh, &before);
    {
        /* a change whose prev_hash is not the previous change's: signed by the real owner */
        struct change forked = {0}, v[4];
        lia_membership_draft d = {.channel = CH,
                                  .serial = 3,
                                  .created_at_ms = T0 + 20,
                                  .action = LIA_MEMBERSHIP_REMOVE,
                                  .node = "de-ncp"};
        d.prev_hash = e1.ev[0].hash; /* the Create's, not serial 2's */
        assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &forked.buf, &forked.len), 0);
        v[0] = c[0];
        v[1] = c[1];
        v[2] = forked;
        bad = chain_of(v, 3);
        assert_int_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, name),
                         LIA_ERR_FORK);
        assert_string_equal(name, "");
        change_free(&bad);
        change_free(&forked);
        /* a change left out */
        v[0] = c[0];
        v[1] = c[2];
        bad = chain_of(v, 2);
        assert_int_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, NULL),
                         LIA_ERR_SEQ_GAP);
        change_free(&bad);
        /* two changes swapped */
        v[0] = c[0];
        v[1] = c[2];
        v[2] = c[1];
        bad = chain_of(v, 3);
        assert_int_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, NULL),
                         LIA_ERR_SEQ_GAP);
        change_free(&bad);
        /* a change repeated */
        v[0] = c[0];
        v[1] = c[1];
        v[2] = c[1];
        bad = chain_of(v, 3);
        assert_int_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, NULL),
                         LIA_ERR_FORK);
        change_free(&bad);
        /* not starting with the Create */
        v[0] = c[1];
        bad = chain_of(v, 1);
        assert_int_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, NULL),
                         LIA_ERR_SEQ_GAP);
        change_free(&bad);
        /* a change altered inside the chain */
        bad = chain;
        bad.buf = malloc(chain.len);
        assert_non_null(bad.buf);
        memcpy(bad.buf, chain.buf, chain.len);
        bad.buf[chain.len - 70] ^= 1; /* inside the last change's body or signature */
        assert_int_not_equal(lia_membership_import(fresh, bad.buf, bad.len, T0 + 40, NULL), 0);
        change_free(&bad);
        /* a different channel history under the same name */
        {
            static const char *const m[] = {"de-ncp"};
            lia_membership_t *other = NULL;
            struct change oc = {0}, ochain = {0};
            assert_int_equal(lia_membership_new(f->trust, &other), 0);
            assert_int_equal(lia_membership_create(other, f->id[DE], "de-ncp", CH, m, 1, 0, NULL,
                                                   T0, &oc.buf, &oc.len),
                             0);
            assert_int_equal(lia_membership_apply(other, oc.buf, oc.len, T0), 0);
            assert_int_equal(lia_membership_export(other, CH, &ochain.buf, &ochain.len), 0);
            assert_int_equal(lia_membership_import(fresh, ochain.buf, ochain.len, T0, NULL),
                             LIA_ERR_FORK);
            lia_membership_destroy(&other);
            change_free(&oc);
            change_free(&ochain);
        }
        /* empty, garbage, wrong version */
        assert_int_equal(lia_membership_import(fresh, chain.buf, 0, T0, NULL), LIA_ERR_DECODE);
        assert_int_equal(lia_membership_import(fresh, (const uint8_t *)"\x08\x02", 2, T0, NULL),
                         LIA_ERR_VERSION);
        assert_int_equal(lia_membership_import(fresh, (const uint8_t *)"\x08\x01", 2, T0, NULL),
                         LIA_ERR_DECODE);
        assert_int_equal(lia_membership_import(fresh, (const uint8_t *)"\xff\xff", 2, T0, NULL),
                         LIA_ERR_DECODE);
    }
    assert_unchanged(fresh, &before);
    lia_membership_destroy(&fresh);
    for (int i = 0; i < 4; i++)
        change_free(&c[i]);
    change_free(&chain);
}

static void test_bounds(void **state)
{
    struct fixture *f = *state;
    uint8_t *big = calloc(1, LIA_MEMBERSHIP_CHAIN_MAX + 1);
    lia_membership_draft d = {
        .channel = CH, .serial = 1, .created_at_ms = T0, .action = LIA_MEMBERSHIP_CREATE};
    const char **many = calloc(LIA_MEMBERSHIP_CREATE_MAX + 1, sizeof *many);
    char(*ids)[16] = calloc(LIA_MEMBERSHIP_CREATE_MAX + 1, sizeof *ids);
    struct change c = {0};
    char desc[LIA_MEMBERSHIP_DESCRIPTION_MAX + 2];

    assert_non_null(big);
    assert_non_null(many);
    assert_non_null(ids);
    /* Sizes are checked before decoding. */
    assert_int_equal(lia_membership_apply(f->member, big, LIA_MEMBERSHIP_CHANGE_MAX + 1, T0),
                     LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_membership_import(f->member, big, LIA_MEMBERSHIP_CHAIN_MAX + 1, T0, NULL),
                     LIA_ERR_TOO_LARGE);
    free(big);
    /* At most 512 members in a Create: the builder refuses more, and so does a member. */
    for (int i = 0; i <= LIA_MEMBERSHIP_CREATE_MAX; i++) {
        snprintf(ids[i], sizeof ids[i], "n%05d", i);
        many[i] = ids[i];
    }
    d.members = many;
    d.n_members = LIA_MEMBERSHIP_CREATE_MAX + 1;
    assert_int_equal(lia_membership_sign(f->id[FR], "fr-ncp", &d, &c.buf, &c.len), LIA_ERR_INVALID);
    {
        Liaison__V1__MembershipChangeBody b = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__INIT;
        Liaison__V1__MembershipCreate cr = LIAISON__V1__MEMBERSHIP_CREATE__INIT;
        uint8_t zero[32] = {0}, ones[32], kid[16], *bb;
        size_t bl;
        lia_key_id(lia_identity_sign_pk(f->id[FR]), kid);
        memset(ones, 1, sizeof ones);
        b.version = 1;
        b.channel = (char *)CH;
        b.serial = 1;
        b.prev_hash.data = zero;
        b.prev_hash.len = 32;
        b.signer = (char *)"fr-ncp";
        b.signer_key_id.data = kid;
        b.signer_key_id.len = 16;
        b.created_at_ms = T0;
        b.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_CREATE;
        b.create = &cr;
        cr.members = (char **)many;
        cr.n_members = LIA_MEMBERSHIP_CREATE_MAX + 1;
        bl = liaison__v1__membership_change_body__get_packed_size(&b);
        bb = malloc(bl);
        assert_non_null(bb);
        liaison__v1__membership_change_body__pack(&b, bb);
        c = sign_body(f->id[FR], bb, bl);
        assert_true(c.len <= LIA_MEMBERSHIP_CHANGE_MAX);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
        change_free(&c);
        free(bb);

        /* An unknown field inside the nested action message. */
        Liaison__V1__MembershipAddMember am = LIAISON__V1__MEMBERSHIP_ADD_MEMBER__INIT;
        ProtobufCMessageUnknownField uf = {.tag = 7,
                                           .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
                                           .len = 1,
                                           .data = (uint8_t *)"\x01"};
        am.node = (char *)"it-ncp";
        am.base.n_unknown_fields = 1;
        am.base.unknown_fields = &uf;
        b.serial = 2;
        b.prev_hash.data = ones; /* a plausible link: only the unknown field is wrong */
        b.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER;
        b.add_member = &am;
        bl = liaison__v1__membership_change_body__get_packed_size(&b);
        bb = malloc(bl);
        assert_non_null(bb);
        liaison__v1__membership_change_body__pack(&b, bb);
        c = sign_body(f->id[FR], bb, bl);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_DECODE);
        change_free(&c);
        free(bb);
        /* Control: the same without the unknown field decodes (and lacks its Create). */
        am.base.n_unknown_fields = 0;
        bl = liaison__v1__membership_change_body__get_packed_size(&b);
        bb = malloc(bl);
        assert_non_null(bb);
        liaison__v1__membership_change_body__pack(&b, bb);
        c = sign_body(f->id[FR], bb, bl);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_SEQ_GAP);
        change_free(&c);
        free(bb);
        /* Wrong version. */
        b.version = 2;
        b.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_CREATE;
        cr.n_members = 1;
        bl = liaison__v1__membership_change_body__get_packed_size(&b);
        bb = malloc(bl);
        assert_non_null(bb);
        liaison__v1__membership_change_body__pack(&b, bb);
        c = sign_body(f->id[FR], bb, bl);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_VERSION);
        change_free(&c);
        free(bb);
    }
    /* Descriptions: at most 256 bytes of text. */
    memset(desc, 'a', sizeof desc - 1);
    desc[sizeof desc - 1] = '\0';
    assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", CH,
                                           (const char *const[]){"fr-ncp"}, 1, 0, desc, T0, &c.buf,
                                           &c.len),
                     LIA_ERR_INVALID);
    desc[LIA_MEMBERSHIP_DESCRIPTION_MAX] = '\0';
    assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", CH,
                                           (const char *const[]){"fr-ncp"}, 1, 0, desc, T0, &c.buf,
                                           &c.len),
                     0);
    change_free(&c);
    desc[3] = '\n';
    assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", CH,
                                           (const char *const[]){"fr-ncp"}, 1, 0, desc, T0, &c.buf,
                                           &c.len),
                     LIA_ERR_DECODE);
    /* Invalid names. */
    assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", "Case:X",
                                           (const char *const[]){"fr-ncp"}, 1, 0, NULL, T0, &c.buf,
                                           &c.len),
                     LIA_ERR_DECODE);
    assert_int_equal(lia_membership_add(f->member, f->id[FR], "fr-ncp", "case:none", "de-ncp", T0,
                                        &c.buf, &c.len),
                     LIA_ERR_NOT_FOUND);
    assert_false(lia_membership_is_member(NULL, CH, "fr-ncp"));
    assert_false(lia_membership_is_member(f->member, NULL, "fr-ncp"));
    assert_false(lia_membership_is_member(f->member, CH, NULL));
    free(many);
    free(ids);
}

/* The registry holds at most LIA_MEMBERSHIP_CHANNELS_MAX channels. */
static void test_channel_limit(void **state)
{
    struct fixture *f = *state;
    static const char *const m[] = {"fr-ncp"};
    char name[32];
    struct change c = {0};

    for (int i = 0; i < LIA_MEMBERSHIP_CHANNELS_MAX; i++) {
        snprintf(name, sizeof name, "case:%05d", i);
        assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", name, m, 1, 0, NULL,
                                               T0, &c.buf, &c.len),
                         0);
        assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), 0);
        change_free(&c);
    }
    assert_int_equal(lia_membership_create(f->member, f->id[FR], "fr-ncp", "case:more", m, 1, 0,
                                           NULL, T0, &c.buf, &c.len),
                     LIA_ERR_LIMIT);
    assert_int_equal(lia_membership_create(f->owner_view, f->id[FR], "fr-ncp", "case:more", m, 1, 0,
                                           NULL, T0, &c.buf, &c.len),
                     0);
    assert_int_equal(lia_membership_apply(f->member, c.buf, c.len, T0), LIA_ERR_LIMIT);
    assert_null(lia_membership_owner(f->member, "case:more"));
    /* Existing channels still take changes. */
    assert_true(lia_membership_is_member(f->member, "case:00000", "fr-ncp"));
    change_free(&c);
}

/* ---- Wiring helpers: apply_ex, channel walk, was_member, records and restore ------------- */

static int count_walk(void *arg, const char *channel)
{
    assert_true(lia_channel_valid(channel));
    (*(int *)arg)++;
    return 0;
}

static int stop_walk(void *arg, const char *channel)
{
    (void)arg;
    (void)channel;
    return 7;
}

static int keep_change(void *arg, const lia_membership_event *ev)
{
    struct change *v = arg;
    v[ev->serial - 1].buf = malloc(ev->change_len);
    assert_non_null(v[ev->serial - 1].buf);
    memcpy(v[ev->serial - 1].buf, ev->change, ev->change_len);
    v[ev->serial - 1].len = ev->change_len;
    return 0;
}

struct reported {
    int calls, failed;
    char last[LIA_CHANNEL_MAX + 1];
};

static void report(void *arg, const char *channel, size_t n, int rc)
{
    struct reported *r = arg;
    (void)n;
    r->calls++;
    if (rc != 0)
        r->failed++;
    snprintf(r->last, sizeof r->last, "%s", channel);
}

static void test_apply_ex_and_walk(void **state)
{
    struct fixture *f = *state;
    struct change c1 = open_channel(f), c2, c3;
    lia_membership_t *fresh = NULL;
    lia_membership_applied info;
    int count = 0;

    c2 = add(f, FR, "it-ncp", T0 + 1);
    memset(&info, 0x55, sizeof info);
    assert_int_equal(lia_membership_apply_ex(f->owner_view, c2.buf, c2.len, T0 + 1, &info), 0);
    assert_string_equal(info.channel, CH);
    assert_int_equal(info.serial, 2);
    assert_int_equal(info.action, LIA_MEMBERSHIP_ADD);
    assert_string_equal(info.node, "it-ncp");
    assert_int_equal(lia_membership_apply_ex(f->owner_view, c2.buf, c2.len, T0 + 1, &info),
                     LIA_ERR_REPLAY);
    assert_int_equal(lia_membership_remove(f->owner_view, f->id[FR], "fr-ncp", CH, "it-ncp", T0 + 2,
                                           &c3.buf, &c3.len),
                     0);
    assert_int_equal(lia_membership_apply_ex(f->owner_view, c3.buf, c3.len, T0 + 2, &info), 0);
    assert_int_equal(info.action, LIA_MEMBERSHIP_REMOVE);

    /* A removed member was a member: it must hear of its removal. */
    assert_false(lia_membership_is_member(f->owner_view, CH, "it-ncp"));
    assert_true(lia_membership_was_member(f->owner_view, CH, "it-ncp"));
    assert_true(lia_membership_was_member(f->owner_view, CH, "de-ncp"));
    assert_false(lia_membership_was_member(f->owner_view, CH, "es-ncp"));
    assert_false(lia_membership_was_member(f->owner_view, "case:none", "de-ncp"));

    assert_int_equal(lia_membership_channels(f->owner_view, count_walk, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(lia_membership_channels(f->owner_view, stop_walk, NULL), 7);

    /* set_trust: what was applied stays. */
    lia_membership_set_trust(f->owner_view, f->trust);
    assert_int_equal(lia_membership_serial(f->owner_view, CH), 3);

    /* import_changes: the same chain as separate records, all or nothing. */
    {
        const uint8_t *v[3] = {c1.buf, c2.buf, c3.buf}, *bad[2] = {c1.buf, c3.buf};
        size_t l[3] = {c1.len, c2.len, c3.len}, badl[2] = {c1.len, c3.len};
        char name[LIA_CHANNEL_MAX + 1];
        assert_int_equal(lia_membership_new(f->trust, &fresh), 0);
        assert_int_equal(lia_membership_import_changes(fresh, bad, badl, 2, T0 + 3, name),
                         LIA_ERR_SEQ_GAP); /* serial 2 missing */
        assert_null(lia_membership_owner(fresh, CH));
        assert_int_equal(lia_membership_import_changes(fresh, v, l, 0, T0 + 3, name),
                         LIA_ERR_DECODE);
        assert_int_equal(lia_membership_import_changes(fresh, v, l, 3, T0 + 3, name), 0);
        assert_string_equal(name, CH);
        assert_int_equal(lia_membership_serial(fresh, CH), 3);
        assert_int_equal(lia_membership_epoch(fresh, CH), 2);
        lia_membership_destroy(&fresh);
    }
    free(c1.buf);
    free(c2.buf);
    free(c3.buf);
}

static void test_records_and_restore(void **state)
{
    struct fixture *f = *state;
    struct change c1 = open_channel(f), c2 = add(f, FR, "it-ncp", T0 + 1), got[2] = {{0}};
    char k1[LIA_MEMBERSHIP_KEY_MAX], k2[LIA_MEMBERSHIP_KEY_MAX], k3[LIA_MEMBERSHIP_KEY_MAX];
    uint8_t id1[LIA_MEMBERSHIP_CHANGE_ID_BYTES], id2[LIA_MEMBERSHIP_CHANGE_ID_BYTES];
    lia_membership_t *r = NULL;
    struct reported rep;

    apply_both(f, &c2, T0 + 1);
    /* History hands out each change's bytes, as applied. */
    assert_int_equal(lia_membership_history(f->member, CH, keep_change, got), 0);
    assert_int_equal(got[0].len, c1.len);
    assert_memory_equal(got[0].buf, c1.buf, c1.len);
    assert_memory_equal(got[1].buf, c2.buf, c2.len);

    lia_membership_change_id(c1.buf, c1.len, id1);
    lia_membership_change_id(c2.buf, c2.len, id2);
    assert_memory_not_equal(id1, id2, sizeof id1);

    assert_int_equal(lia_membership_key(CH, 1, k1), 0);
    assert_string_equal(k1, "mc:" CH ":0000000000000001");
    assert_int_equal(lia_membership_key(CH, 2, k2), 0);
    assert_int_equal(lia_membership_key("Bad Name", 1, k3), LIA_ERR_INVALID);

    /* Records in any order come back as the chain. */
    {
        const char *keys[2] = {k2, k1};
        const uint8_t *vals[2] = {c2.buf, c1.buf};
        size_t lens[2] = {c2.len, c1.len};
        memset(&rep, 0, sizeof rep);
        assert_int_equal(lia_membership_new(f->trust, &r), 0);
        assert_int_equal(lia_membership_restore(r, keys, vals, lens, 2, T0 + 2, report, &rep), 0);
        assert_int_equal(rep.calls, 1);
        assert_int_equal(rep.failed, 0);
        assert_int_equal(lia_membership_serial(r, CH), 2);
        assert_true(lia_membership_is_member(r, CH, "it-ncp"));
        lia_membership_destroy(&r);
    }
    /* A missing record (serial 1): the channel fails closed, as a whole. A key that does not
     * parse is reported on its own. */
    {
        const char *keys[2] = {k2, "mc:nonsense"};
        const uint8_t *vals[2] = {c2.buf, c1.buf};
        size_t lens[2] = {c2.len, c1.len};
        memset(&rep, 0, sizeof rep);
        assert_int_equal(lia_membership_new(f->trust, &r), 0);
        assert_int_equal(lia_membership_restore(r, keys, vals, lens, 2, T0 + 2, report, &rep), 0);
        assert_int_equal(rep.calls, 2);
        assert_int_equal(rep.failed, 2);
        assert_null(lia_membership_owner(r, CH));
        lia_membership_destroy(&r);
    }
    /* A record altered in the store: refused, channel unavailable. */
    {
        const char *keys[2] = {k1, k2};
        const uint8_t *vals[2] = {c1.buf, c2.buf};
        size_t lens[2] = {c1.len, c2.len};
        c2.buf[c2.len - 1] ^= 1;
        memset(&rep, 0, sizeof rep);
        assert_int_equal(lia_membership_new(f->trust, &r), 0);
        assert_int_equal(lia_membership_restore(r, keys, vals, lens, 2, T0 + 2, report, &rep), 0);
        assert_int_equal(rep.failed, 1);
        assert_null(lia_membership_owner(r, CH));
        assert_int_equal(lia_membership_restore(r, NULL, NULL, NULL, 0, T0, NULL, NULL), 0);
        lia_membership_destroy(&r);
    }
    for (int i = 0; i < 2; i++)
        free(got[i].buf);
    free(c1.buf);
    free(c2.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_owner_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_owner_after_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_alters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_and_create_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_ex_and_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_and_restore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
