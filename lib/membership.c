/*
 * Owner-signed channel membership. See membership.h for the contract and docs/protocol.md
 * section 6 for the bytes.
 *
 * Checking one change (parse_verify, then check):
 *   1. bound the size, decode MembershipChange strictly (canonical, no unknown fields), require
 *      a 64-byte signature;
 *   2. decode the body strictly; it names its signer and the signer's key id, which are needed
 *      to find the key (as for self-signed objects in cert.c), so only version, signer,
 *      signer_key_id and created_at_ms are read before the signature is verified;
 *   3. find the signer's certificate for that key, valid and not revoked at created_at;
 *   4. verify Ed25519 over "liaison.v1.membership\0" || body, the exact bytes received;
 *   5. only then check every other field;
 *   6. against the channel's state: serial and link (replay, fork, gap), the owner, time order,
 *      and the action's rules.
 * Applying prepares every allocation first and mutates last, so a refusal, including an
 * allocation failure, leaves the registry as it was.
 */
#define _POSIX_C_SOURCE 200809L
#include "membership.h"
#include "canonical.h"

#include "error.h"
#include "utf8.h"
#include "map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "liaison/v1/membership.pb-c.h"

static const char label_membership[] = "liaison.v1.membership";
static const char label_link[] = "liaison.v1.membership-link";

#define FORMAT_VERSION 1
#define HASH_BYTES     LIA_MEMBERSHIP_HASH_BYTES

typedef Liaison__V1__MembershipChangeBody Body;

struct entry {
    uint64_t serial;
    lia_membership_action action;
    char node[LIA_NODE_ID_MAX + 1];
    char signer[LIA_NODE_ID_MAX + 1];
    uint64_t created_at_ms;
    uint64_t epoch; /* chain epoch after this change */
    uint8_t hash[HASH_BYTES];
    uint8_t *bytes; /* the serialised change, as received */
    size_t len;
    char **members; /* Create only: the initial members */
    size_t n_members;
};

struct channel {
    char name[LIA_CHANNEL_MAX + 1];
    char owner[LIA_NODE_ID_MAX + 1];
    int copy_to_hub;
    uint64_t chain_epoch; /* 1 + removals */
    uint64_t bumps;       /* local epoch bumps */
    char **ids;           /* members, ascending */
    uint64_t *joined;     /* serial that made ids[i] a member */
    size_t n, cap;
    struct entry *hist; /* hist[i].serial == i + 1 */
    size_t n_hist, cap_hist;
};

struct lia_membership {
    lia_trust_t *trust;
    lia_map_t *channels; /* padded channel name -> struct channel */
};

/* A change that passed parse_verify. */
struct parsed {
    Liaison__V1__MembershipChange *outer;
    Body *body;
    const lia_cert_info *cert; /* the signer's, in the trust store */
    uint8_t hash[HASH_BYTES];
};

/* ---- Helpers ----------------------------------------------------------------------------- */

static void parsed_free(struct parsed *p)
{
    if (p->body)
        liaison__v1__membership_change_body__free_unpacked(p->body, NULL);
    if (p->outer)
        liaison__v1__membership_change__free_unpacked(p->outer, NULL);
    memset(p, 0, sizeof *p);
}

/* link hash = BLAKE2b-256("liaison.v1.membership-link\0" || change). */
static void link_hash(const uint8_t *buf, size_t len, uint8_t out[HASH_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)label_link, sizeof label_link);
    crypto_generichash_update(&st, buf, len);
    crypto_generichash_final(&st, out, HASH_BYTES);
}

static int verify_labelled(const ProtobufCBinaryData *body, const ProtobufCBinaryData *sig,
                           const uint8_t pk[32])
{
    uint8_t *m = malloc(sizeof label_membership + body->len);
    int rc;

    if (!m)
        return LIA_ERR_NOMEM;
    memcpy(m, label_membership, sizeof label_membership);
    if (body->len)
        memcpy(m + sizeof label_membership, body->data, body->len);
    rc = crypto_sign_verify_detached(sig->data, m, sizeof label_membership + body->len, pk) == 0
             ? 0
             : LIA_ERR_SIGNATURE;
    free(m);
    return rc;
}

static int is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void channel_key(const char *name, uint8_t key[LIA_MAP_KEY_MAX])
{
    memset(key, 0, LIA_MAP_KEY_MAX);
    memcpy(key, name, strlen(name));
}

static struct channel *find_channel(const lia_membership_t *reg, const char *name)
{
    uint8_t key[LIA_MAP_KEY_MAX];

    if (!reg || !lia_channel_valid(name))
        return NULL;
    channel_key(name, key);
    return lia_map_get(reg->channels, key);
}

/* Index of the first member >= node. */
static size_t lower_bound(const struct channel *ch, const char *node)
{
    size_t lo = 0, hi = ch->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ch->ids[mid], node) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int has_member(const struct channel *ch, const char *node, size_t *at)
{
    size_t i = lower_bound(ch, node);

    if (at)
        *at = i;
    return i < ch->n && strcmp(ch->ids[i], node) == 0;
}

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void channel_free(void *p)
{
    struct channel *ch = p;

    if (!ch)
        return;
    free_strings(ch->ids, ch->n);
    free(ch->joined);
    for (size_t i = 0; i < ch->n_hist; i++) {
        free(ch->hist[i].bytes);
        free_strings(ch->hist[i].members, ch->hist[i].n_members);
    }
    free(ch->hist);
    free(ch);
}

static uint64_t trust_time(const Body *b)
{
    return b->created_at_ms / 1000;
}

static int node_field_ok(const char *s)
{
    return lia_node_id_valid(s);
}

/* The member node named by a non-Create action. */
static const char *action_node(const Body *b)
{
    switch (b->action_case) {
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER:
        return b->add_member->node;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER:
        return b->remove_member->node;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_TRANSFER_OWNERSHIP:
        return b->transfer_ownership->new_owner;
    default:
        return NULL;
    }
}

static lia_membership_action action_of(const Body *b)
{
    switch (b->action_case) {
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER:
        return LIA_MEMBERSHIP_ADD;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER:
        return LIA_MEMBERSHIP_REMOVE;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_TRANSFER_OWNERSHIP:
        return LIA_MEMBERSHIP_TRANSFER;
    default:
        return LIA_MEMBERSHIP_CREATE;
    }
}

/* Every field rule that does not depend on the channel's state (after the signature). */
static int fields_ok(const Body *b)
{
    const Liaison__V1__MembershipCreate *c;
    const char *node;
    size_t dlen;

    if (!lia_channel_valid(b->channel) || b->serial == 0 || b->prev_hash.len != HASH_BYTES)
        return 0;
    if ((b->serial == 1) != is_zero(b->prev_hash.data, HASH_BYTES))
        return 0;
    if ((b->serial == 1) != (b->action_case == LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_CREATE))
        return 0;
    if (b->action_case != LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_CREATE) {
        node = action_node(b);
        if (!node)
            return 0;
        /* The nested message must carry no unknown fields (the outer check cannot see them). */
        switch (b->action_case) {
        case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER:
            if (b->add_member->base.n_unknown_fields)
                return 0;
            break;
        case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER:
            if (b->remove_member->base.n_unknown_fields)
                return 0;
            break;
        default:
            if (b->transfer_ownership->base.n_unknown_fields)
                return 0;
            break;
        }
        return node_field_ok(node);
    }
    c = b->create;
    if (c->base.n_unknown_fields || c->n_members == 0 || c->n_members > LIA_MEMBERSHIP_CREATE_MAX)
        return 0;
    for (size_t i = 0; i < c->n_members; i++) {
        if (!node_field_ok(c->members[i]))
            return 0;
        if (i > 0 && strcmp(c->members[i - 1], c->members[i]) >= 0)
            return 0;
    }
    dlen = strlen(c->description);
    return dlen <= LIA_MEMBERSHIP_DESCRIPTION_MAX && lia_text_valid(c->description, dlen);
}

/* Steps 1-5: decoding, the signer's certificate, the signature, the fields. */
static int parse_verify(const lia_trust_t *trust, const uint8_t *buf, size_t len, struct parsed *p)
{
    Liaison__V1__MembershipChange *o;
    Body *b;
    int rc;

    memset(p, 0, sizeof *p);
    if (len > LIA_MEMBERSHIP_CHANGE_MAX)
        return LIA_ERR_TOO_LARGE;
    if (!buf || len == 0)
        return LIA_ERR_DECODE;
    rc = LIA_ERR_DECODE;
    o = p->outer = liaison__v1__membership_change__unpack(NULL, len, buf);
    if (!o || !lia_pb_canonical(&o->base, buf, len) || o->signature.len != LIA_SIGNATURE_BYTES ||
        o->body.len == 0)
        goto fail;
    b = p->body = liaison__v1__membership_change_body__unpack(NULL, o->body.len, o->body.data);
    if (!b || !lia_pb_canonical(&b->base, o->body.data, o->body.len))
        goto fail;
    if (b->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    if (!lia_node_id_valid(b->signer) || b->signer_key_id.len != LIA_KEY_ID_BYTES ||
        b->created_at_ms == 0)
        goto fail;
    if ((rc = lia_trust_find(trust, b->signer, b->signer_key_id.data, trust_time(b), &p->cert)) !=
        0)
        goto fail;
    if ((rc = verify_labelled(&o->body, &o->signature, p->cert->sign_pk)) != 0)
        goto fail;
    rc = LIA_ERR_DECODE;
    if (!fields_ok(b))
        goto fail;
    link_hash(buf, len, p->hash);
    return 0;
fail:
    parsed_free(p);
    return rc;
}

/* A valid certificate for node at time at (any key): the node can be reached and verified. */
static int node_certified(const lia_trust_t *trust, const char *node, uint64_t at,
                          const lia_cert_info **out)
{
    const lia_cert_info *c = NULL;
    int rc = lia_trust_find_current(trust, node, at, &c);

    if (out)
        *out = c;
    return rc;
}

/* Step 6: the change against the channel's state (ch NULL: a channel not held yet). */
static int check(const lia_trust_t *trust, const struct channel *ch, const struct parsed *p,
                 uint64_t now_ms)
{
    const Body *b = p->body;
    const struct entry *last;
    const lia_cert_info *c;
    const char *node;
    size_t at;
    int rc;

    if (b->created_at_ms > LIA_CLOCK_SKEW_MS && b->created_at_ms - LIA_CLOCK_SKEW_MS > now_ms)
        return LIA_ERR_CLOCK;
    if (!ch) {
        if (b->serial != 1)
            return LIA_ERR_SEQ_GAP; /* the beginning of the chain is missing */
        if (p->cert->role != LIA_ROLE_CONTACT_POINT)
            return LIA_ERR_NOT_OWNER; /* only contact points open (and own) channels */
        if (!has_member(&(struct channel){.ids = b->create->members, .n = b->create->n_members},
                        b->signer, NULL))
            return LIA_ERR_MEMBER_STATE;
        for (size_t i = 0; i < b->create->n_members; i++)
            if ((rc = node_certified(trust, b->create->members[i], trust_time(b), NULL)) != 0)
                return rc;
        return 0;
    }
    if (strcmp(b->channel, ch->name) != 0)
        return LIA_ERR_FORK; /* a change of another channel inside a chain */
    last = &ch->hist[ch->n_hist - 1];
    if (b->serial <= last->serial) {
        const struct entry *e = &ch->hist[b->serial - 1];
        return sodium_memcmp(e->hash, p->hash, HASH_BYTES) == 0 ? LIA_ERR_REPLAY : LIA_ERR_FORK;
    }
    if (b->serial > last->serial + 1)
        return LIA_ERR_SEQ_GAP;
    if (sodium_memcmp(b->prev_hash.data, last->hash, HASH_BYTES) != 0)
        return LIA_ERR_FORK;
    if (strcmp(b->signer, ch->owner) != 0)
        return LIA_ERR_NOT_OWNER;
    if (b->created_at_ms < last->created_at_ms)
        return LIA_ERR_STALE;
    if (ch->n_hist >= LIA_MEMBERSHIP_CHANGES_MAX)
        return LIA_ERR_LIMIT;
    node = action_node(b);
    switch (b->action_case) {
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER:
        if (has_member(ch, node, &at))
            return LIA_ERR_MEMBER_STATE;
        if (ch->n >= LIA_MEMBERSHIP_MEMBERS_MAX)
            return LIA_ERR_LIMIT;
        return node_certified(trust, node, trust_time(b), NULL);
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER:
        if (!has_member(ch, node, &at))
            return LIA_ERR_NOT_MEMBER;
        return strcmp(node, ch->owner) == 0 ? LIA_ERR_MEMBER_STATE : 0;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_TRANSFER_OWNERSHIP:
        if (!has_member(ch, node, &at))
            return LIA_ERR_NOT_MEMBER;
        if (strcmp(node, ch->owner) == 0)
            return LIA_ERR_MEMBER_STATE;
        if ((rc = node_certified(trust, node, trust_time(b), &c)) != 0)
            return rc;
        return c->role == LIA_ROLE_CONTACT_POINT ? 0 : LIA_ERR_NOT_OWNER;
    default:
        return LIA_ERR_DECODE; /* unreachable: fields_ok ties Create to serial 1 */
    }
}

static void entry_fill(struct entry *e, const Body *b, const struct parsed *p, uint64_t epoch,
                       uint8_t *bytes, size_t len)
{
    const char *node = action_node(b);

    memset(e, 0, sizeof *e);
    e->serial = b->serial;
    e->action = action_of(b);
    memcpy(e->signer, b->signer, strlen(b->signer) + 1);
    if (!node)
        node = b->signer;
    memcpy(e->node, node, strlen(node) + 1);
    e->created_at_ms = b->created_at_ms;
    e->epoch = epoch;
    memcpy(e->hash, p->hash, HASH_BYTES);
    e->bytes = bytes;
    e->len = len;
}

static char **copy_strings(char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            free_strings(out, i);
            return NULL;
        }
    }
    return out;
}

/* A new channel from a checked Create. */
static int channel_from_create(const struct parsed *p, const uint8_t *buf, size_t len,
                               struct channel **out)
{
    const Body *b = p->body;
    const Liaison__V1__MembershipCreate *c = b->create;
    struct channel *ch = calloc(1, sizeof *ch);
    uint8_t *bytes = NULL;

    *out = NULL;
    if (!ch)
        return LIA_ERR_NOMEM;
    memcpy(ch->name, b->channel, strlen(b->channel) + 1);
    memcpy(ch->owner, b->signer, strlen(b->signer) + 1);
    ch->copy_to_hub = c->copy_to_hub ? 1 : 0;
    ch->chain_epoch = 1;
    ch->cap = c->n_members;
    ch->cap_hist = 16;
    ch->ids = copy_strings(c->members, c->n_members);
    ch->joined = calloc(ch->cap, sizeof *ch->joined);
    ch->hist = calloc(ch->cap_hist, sizeof *ch->hist);
    bytes = malloc(len);
    if (!ch->ids || !ch->joined || !ch->hist || !bytes)
        goto nomem;
    ch->n = c->n_members;
    for (size_t i = 0; i < ch->n; i++)
        ch->joined[i] = 1;
    memcpy(bytes, buf, len);
    entry_fill(&ch->hist[0], b, p, 1, bytes, len);
    ch->n_hist = 1;
    bytes = NULL;
    ch->hist[0].members = copy_strings(c->members, c->n_members);
    if (!ch->hist[0].members)
        goto nomem;
    ch->hist[0].n_members = c->n_members;
    *out = ch;
    return 0;
nomem:
    free(bytes);
    ch->n = ch->ids ? c->n_members : 0;
    channel_free(ch);
    return LIA_ERR_NOMEM;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *np;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    np = realloc(*p, ncap * elem);
    if (!np)
        return LIA_ERR_NOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/* Applies a checked non-Create change to ch. Allocates first; mutates only once nothing can
 * fail. */
static int channel_apply(struct channel *ch, const struct parsed *p, const uint8_t *buf, size_t len)
{
    const Body *b = p->body;
    const char *node = action_node(b);
    uint8_t *bytes = NULL;
    char *id = NULL;
    size_t at = 0, cap_ids, cap_joined;
    uint64_t epoch = ch->chain_epoch;

    bytes = malloc(len);
    if (!bytes)
        return LIA_ERR_NOMEM;
    memcpy(bytes, buf, len);
    if (grow((void **)&ch->hist, &ch->cap_hist, ch->n_hist + 1, sizeof *ch->hist) != 0)
        goto nomem;
    if (b->action_case == LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER) {
        id = strdup(node);
        cap_ids = cap_joined = ch->cap;
        if (!id || grow((void **)&ch->ids, &cap_ids, ch->n + 1, sizeof *ch->ids) != 0 ||
            grow((void **)&ch->joined, &cap_joined, ch->n + 1, sizeof *ch->joined) != 0) {
            /* Both arrays keep their contents; remember the smaller capacity. */
            ch->cap = cap_ids < cap_joined ? cap_ids : cap_joined;
            goto nomem;
        }
        ch->cap = cap_ids < cap_joined ? cap_ids : cap_joined;
    }
    /* Nothing can fail from here on. */
    switch (b->action_case) {
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER:
        (void)has_member(ch, node, &at);
        memmove(&ch->ids[at + 1], &ch->ids[at], (ch->n - at) * sizeof *ch->ids);
        memmove(&ch->joined[at + 1], &ch->joined[at], (ch->n - at) * sizeof *ch->joined);
        ch->ids[at] = id;
        ch->joined[at] = b->serial;
        ch->n++;
        break;
    case LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER:
        (void)has_member(ch, node, &at);
        free(ch->ids[at]);
        memmove(&ch->ids[at], &ch->ids[at + 1], (ch->n - at - 1) * sizeof *ch->ids);
        memmove(&ch->joined[at], &ch->joined[at + 1], (ch->n - at - 1) * sizeof *ch->joined);
        ch->n--;
        epoch = ++ch->chain_epoch;
        break;
    default: /* transfer */
        memcpy(ch->owner, node, strlen(node) + 1);
        break;
    }
    entry_fill(&ch->hist[ch->n_hist], b, p, epoch, bytes, len);
    ch->n_hist++;
    return 0;
nomem:
    free(id);
    free(bytes);
    return LIA_ERR_NOMEM;
}

/* Checks p against *chp and applies it; a Create makes a new channel in *chp. */
static int step(const lia_trust_t *trust, struct channel **chp, const struct parsed *p,
                const uint8_t *buf, size_t len, uint64_t now_ms)
{
    int rc = check(trust, *chp, p, now_ms);

    if (rc != 0)
        return rc;
    if (!*chp)
        return channel_from_create(p, buf, len, chp);
    return channel_apply(*chp, p, buf, len);
}

/* ---- Registry ---------------------------------------------------------------------------- */

int lia_membership_new(lia_trust_t *trust, lia_membership_t **out)
{
    lia_membership_t *reg;

    *out = NULL;
    if (!trust)
        return LIA_ERR_INVALID;
    reg = calloc(1, sizeof *reg);
    if (!reg)
        return LIA_ERR_NOMEM;
    if (lia_map_new(LIA_MAP_KEY_MAX, channel_free, &reg->channels) != 0) {
        free(reg);
        return LIA_ERR_NOMEM;
    }
    reg->trust = trust;
    *out = reg;
    return 0;
}

void lia_membership_destroy(lia_membership_t **p)
{
    if (!p || !*p)
        return;
    lia_map_destroy(&(*p)->channels);
    free(*p);
    *p = NULL;
}

static int install(lia_membership_t *reg, struct channel *ch)
{
    uint8_t key[LIA_MAP_KEY_MAX];

    channel_key(ch->name, key);
    return lia_map_put(reg->channels, key, ch) == 0 ? 0 : LIA_ERR_NOMEM;
}

int lia_membership_apply(lia_membership_t *reg, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    return lia_membership_apply_ex(reg, buf, len, now_ms, NULL);
}

int lia_membership_apply_ex(lia_membership_t *reg, const uint8_t *buf, size_t len, uint64_t now_ms,
                            lia_membership_applied *info)
{
    struct parsed p;
    struct channel *ch;
    int rc;

    if (!reg)
        return LIA_ERR_INVALID;
    if ((rc = parse_verify(reg->trust, buf, len, &p)) != 0)
        return rc;
    ch = find_channel(reg, p.body->channel);
    if (!ch && p.body->serial == 1 && lia_map_size(reg->channels) >= LIA_MEMBERSHIP_CHANNELS_MAX) {
        rc = check(reg->trust, NULL, &p, now_ms);
        if (rc == 0)
            rc = LIA_ERR_LIMIT;
        goto done;
    }
    if (ch) {
        rc = step(reg->trust, &ch, &p, buf, len, now_ms);
    } else {
        rc = step(reg->trust, &ch, &p, buf, len, now_ms);
        if (rc == 0 && (rc = install(reg, ch)) != 0)
            channel_free(ch);
    }
    if (rc == 0 && info) {
        const char *node = action_node(p.body);
        memset(info, 0, sizeof *info);
        /* Both were checked by fields_ok: bounded, valid names. */
        snprintf(info->channel, sizeof info->channel, "%s", p.body->channel);
        info->serial = p.body->serial;
        info->action = action_of(p.body);
        snprintf(info->node, sizeof info->node, "%s", node ? node : "");
    }
done:
    parsed_free(&p);
    return rc;
}

/* ---- Builders ---------------------------------------------------------------------------- */

int lia_membership_sign(const lia_identity_t *signer, const char *signer_id,
                        const lia_membership_draft *d, uint8_t **out, size_t *out_len)
{
    static const uint8_t zeros[HASH_BYTES];
    Body body = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__INIT;
    Liaison__V1__MembershipChange outer = LIAISON__V1__MEMBERSHIP_CHANGE__INIT;
    Liaison__V1__MembershipCreate create = LIAISON__V1__MEMBERSHIP_CREATE__INIT;
    Liaison__V1__MembershipAddMember add = LIAISON__V1__MEMBERSHIP_ADD_MEMBER__INIT;
    Liaison__V1__MembershipRemoveMember rem = LIAISON__V1__MEMBERSHIP_REMOVE_MEMBER__INIT;
    Liaison__V1__MembershipTransferOwnership tr = LIAISON__V1__MEMBERSHIP_TRANSFER_OWNERSHIP__INIT;
    uint8_t key_id[LIA_KEY_ID_BYTES], sig[LIA_SIGNATURE_BYTES];
    uint8_t *bb = NULL, *m = NULL, *ob = NULL;
    size_t blen, olen;
    int rc = LIA_ERR_INVALID;

    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!signer || !signer_id || !d || !out || !out_len || !d->channel ||
        strlen(d->channel) > LIA_CHANNEL_MAX || strlen(signer_id) > LIA_NODE_ID_MAX)
        return LIA_ERR_INVALID;
    if (lia_identity_kind(signer) != LIA_SECRET_NODE)
        return LIA_ERR_WRONG_KIND;
    lia_key_id(lia_identity_sign_pk(signer), key_id);
    body.version = FORMAT_VERSION;
    body.channel = (char *)d->channel;
    body.serial = d->serial;
    body.prev_hash.data = (uint8_t *)(d->prev_hash ? d->prev_hash : zeros);
    body.prev_hash.len = HASH_BYTES;
    body.signer = (char *)signer_id;
    body.signer_key_id.data = key_id;
    body.signer_key_id.len = sizeof key_id;
    body.created_at_ms = d->created_at_ms;
    switch (d->action) {
    case LIA_MEMBERSHIP_CREATE:
        if ((d->n_members && !d->members) || d->n_members > LIA_MEMBERSHIP_CREATE_MAX)
            return LIA_ERR_INVALID;
        for (size_t i = 0; i < d->n_members; i++)
            if (!d->members[i] || strlen(d->members[i]) > LIA_NODE_ID_MAX)
                return LIA_ERR_INVALID;
        if (d->description && strlen(d->description) > LIA_MEMBERSHIP_DESCRIPTION_MAX)
            return LIA_ERR_INVALID;
        create.n_members = d->n_members;
        create.members = (char **)d->members;
        create.copy_to_hub = d->copy_to_hub ? 1 : 0;
        create.description = (char *)(d->description ? d->description : "");
        body.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_CREATE;
        body.create = &create;
        break;
    case LIA_MEMBERSHIP_ADD:
    case LIA_MEMBERSHIP_REMOVE:
    case LIA_MEMBERSHIP_TRANSFER:
        if (!d->node || strlen(d->node) > LIA_NODE_ID_MAX)
            return LIA_ERR_INVALID;
        if (d->action == LIA_MEMBERSHIP_ADD) {
            add.node = (char *)d->node;
            body.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_ADD_MEMBER;
            body.add_member = &add;
        } else if (d->action == LIA_MEMBERSHIP_REMOVE) {
            rem.node = (char *)d->node;
            body.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_REMOVE_MEMBER;
            body.remove_member = &rem;
        } else {
            tr.new_owner = (char *)d->node;
            body.action_case = LIAISON__V1__MEMBERSHIP_CHANGE_BODY__ACTION_TRANSFER_OWNERSHIP;
            body.transfer_ownership = &tr;
        }
        break;
    default:
        return LIA_ERR_INVALID;
    }
    rc = LIA_ERR_NOMEM;
    blen = liaison__v1__membership_change_body__get_packed_size(&body);
    bb = malloc(blen);
    m = malloc(sizeof label_membership + blen);
    if (!bb || !m)
        goto done;
    liaison__v1__membership_change_body__pack(&body, bb);
    memcpy(m, label_membership, sizeof label_membership);
    memcpy(m + sizeof label_membership, bb, blen);
    if ((rc = lia_identity_sign(signer, m, sizeof label_membership + blen, sig)) != 0)
        goto done;
    outer.body.data = bb;
    outer.body.len = blen;
    outer.signature.data = sig;
    outer.signature.len = sizeof sig;
    olen = liaison__v1__membership_change__get_packed_size(&outer);
    rc = LIA_ERR_LIMIT;
    if (olen > LIA_MEMBERSHIP_CHANGE_MAX)
        goto done;
    rc = LIA_ERR_NOMEM;
    ob = malloc(olen);
    if (!ob)
        goto done;
    liaison__v1__membership_change__pack(&outer, ob);
    *out = ob;
    *out_len = olen;
    rc = 0;
done:
    free(bb);
    free(m);
    return rc;
}

/* Signs d and checks the result against the registry as lia_membership_apply would. */
static int build(const lia_membership_t *reg, const lia_identity_t *owner, const char *owner_id,
                 const lia_membership_draft *d, uint8_t **out, size_t *out_len)
{
    struct parsed p;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (!reg)
        return LIA_ERR_INVALID;
    if ((rc = lia_membership_sign(owner, owner_id, d, &buf, &len)) != 0)
        return rc;
    if ((rc = parse_verify(reg->trust, buf, len, &p)) == 0) {
        const struct channel *ch = find_channel(reg, d->channel);
        rc = check(reg->trust, ch, &p, d->created_at_ms);
        if (rc == 0 && !ch && lia_map_size(reg->channels) >= LIA_MEMBERSHIP_CHANNELS_MAX)
            rc = LIA_ERR_LIMIT;
        parsed_free(&p);
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int lia_membership_create(const lia_membership_t *reg, const lia_identity_t *owner,
                          const char *owner_id, const char *channel, const char *const *members,
                          size_t n_members, int copy_to_hub, const char *description,
                          uint64_t created_at_ms, uint8_t **out, size_t *out_len)
{
    lia_membership_draft d = {.channel = channel,
                              .serial = 1,
                              .created_at_ms = created_at_ms,
                              .action = LIA_MEMBERSHIP_CREATE,
                              .members = members,
                              .n_members = n_members,
                              .copy_to_hub = copy_to_hub,
                              .description = description};

    return build(reg, owner, owner_id, &d, out, out_len);
}

static int build_next(const lia_membership_t *reg, const lia_identity_t *owner,
                      const char *owner_id, const char *channel, lia_membership_action action,
                      const char *node, uint64_t created_at_ms, uint8_t **out, size_t *out_len)
{
    const struct channel *ch = find_channel(reg, channel);
    lia_membership_draft d = {
        .channel = channel, .created_at_ms = created_at_ms, .action = action, .node = node};

    *out = NULL;
    *out_len = 0;
    if (!ch)
        return LIA_ERR_NOT_FOUND;
    d.serial = ch->hist[ch->n_hist - 1].serial + 1;
    d.prev_hash = ch->hist[ch->n_hist - 1].hash;
    return build(reg, owner, owner_id, &d, out, out_len);
}

int lia_membership_add(const lia_membership_t *reg, const lia_identity_t *owner,
                       const char *owner_id, const char *channel, const char *node,
                       uint64_t created_at_ms, uint8_t **out, size_t *out_len)
{
    return build_next(reg, owner, owner_id, channel, LIA_MEMBERSHIP_ADD, node, created_at_ms, out,
                      out_len);
}

int lia_membership_remove(const lia_membership_t *reg, const lia_identity_t *owner,
                          const char *owner_id, const char *channel, const char *node,
                          uint64_t created_at_ms, uint8_t **out, size_t *out_len)
{
    return build_next(reg, owner, owner_id, channel, LIA_MEMBERSHIP_REMOVE, node, created_at_ms,
                      out, out_len);
}

int lia_membership_transfer(const lia_membership_t *reg, const lia_identity_t *owner,
                            const char *owner_id, const char *channel, const char *new_owner,
                            uint64_t created_at_ms, uint8_t **out, size_t *out_len)
{
    return build_next(reg, owner, owner_id, channel, LIA_MEMBERSHIP_TRANSFER, new_owner,
                      created_at_ms, out, out_len);
}

/* ---- Queries ----------------------------------------------------------------------------- */

int lia_membership_is_member(void *reg, const char *channel, const char *node)
{
    const struct channel *ch = find_channel(reg, channel);

    return ch && node && has_member(ch, node, NULL);
}

const char *const *lia_membership_members(const lia_membership_t *reg, const char *channel,
                                          size_t *n)
{
    const struct channel *ch = find_channel(reg, channel);

    *n = ch ? ch->n : 0;
    return ch ? (const char *const *)ch->ids : NULL;
}

const char *lia_membership_owner(const lia_membership_t *reg, const char *channel)
{
    const struct channel *ch = find_channel(reg, channel);

    return ch ? ch->owner : NULL;
}

uint64_t lia_membership_epoch(const lia_membership_t *reg, const char *channel)
{
    const struct channel *ch = find_channel(reg, channel);

    return ch ? ch->chain_epoch + ch->bumps : 0;
}

uint64_t lia_membership_serial(const lia_membership_t *reg, const char *channel)
{
    const struct channel *ch = find_channel(reg, channel);

    return ch ? ch->hist[ch->n_hist - 1].serial : 0;
}

int lia_membership_copy_to_hub(const lia_membership_t *reg, const char *channel)
{
    const struct channel *ch = find_channel(reg, channel);

    return ch ? ch->copy_to_hub : 0;
}

int lia_membership_joined(const lia_membership_t *reg, const char *channel, const char *node,
                          uint64_t *serial)
{
    const struct channel *ch = find_channel(reg, channel);
    size_t at;

    if (!ch)
        return LIA_ERR_NOT_FOUND;
    if (!node || !has_member(ch, node, &at))
        return LIA_ERR_NOT_MEMBER;
    if (serial)
        *serial = ch->joined[at];
    return 0;
}

int lia_membership_bump_epoch(lia_membership_t *reg, const char *channel, uint64_t *epoch)
{
    struct channel *ch = find_channel(reg, channel);

    if (!ch)
        return LIA_ERR_NOT_FOUND;
    if (ch->chain_epoch + ch->bumps == UINT64_MAX)
        return LIA_ERR_LIMIT;
    ch->bumps++;
    if (epoch)
        *epoch = ch->chain_epoch + ch->bumps;
    return 0;
}

int lia_membership_history(const lia_membership_t *reg, const char *channel,
                           lia_membership_history_fn fn, void *arg)
{
    const struct channel *ch = find_channel(reg, channel);

    if (!ch)
        return LIA_ERR_NOT_FOUND;
    if (!fn)
        return LIA_ERR_INVALID;
    for (size_t i = 0; i < ch->n_hist; i++) {
        const struct entry *e = &ch->hist[i];
        lia_membership_event ev = {.serial = e->serial,
                                   .action = e->action,
                                   .node = e->node,
                                   .signer = e->signer,
                                   .created_at_ms = e->created_at_ms,
                                   .epoch = e->epoch,
                                   .members = (const char *const *)e->members,
                                   .n_members = e->n_members};
        int rc;
        memcpy(ev.hash, e->hash, HASH_BYTES);
        ev.change = e->bytes;
        ev.change_len = e->len;
        if ((rc = fn(arg, &ev)) != 0)
            return rc;
    }
    return 0;
}

/* ---- Export and import ------------------------------------------------------------------- */

int lia_membership_export(const lia_membership_t *reg, const char *channel, uint8_t **out,
                          size_t *out_len)
{
    const struct channel *ch = find_channel(reg, channel);
    Liaison__V1__MembershipChain chain = LIAISON__V1__MEMBERSHIP_CHAIN__INIT;
    ProtobufCBinaryData *v;
    uint8_t *buf = NULL;
    size_t len;
    int rc = LIA_ERR_NOMEM;

    *out = NULL;
    *out_len = 0;
    if (!ch)
        return LIA_ERR_NOT_FOUND;
    v = calloc(ch->n_hist, sizeof *v);
    if (!v)
        return LIA_ERR_NOMEM;
    for (size_t i = 0; i < ch->n_hist; i++) {
        v[i].data = ch->hist[i].bytes;
        v[i].len = ch->hist[i].len;
    }
    chain.version = FORMAT_VERSION;
    chain.n_changes = ch->n_hist;
    chain.changes = v;
    len = liaison__v1__membership_chain__get_packed_size(&chain);
    if (len > LIA_MEMBERSHIP_CHAIN_MAX) {
        rc = LIA_ERR_LIMIT;
        goto done;
    }
    buf = malloc(len);
    if (!buf)
        goto done;
    liaison__v1__membership_chain__pack(&chain, buf);
    *out = buf;
    *out_len = len;
    rc = 0;
done:
    free(v);
    return rc;
}

/*
 * Verifies the chain changes[0..n) from its Create into a scratch channel and installs it (see
 * lia_membership_import). All or nothing.
 */
static int import_changes(lia_membership_t *reg, const ProtobufCBinaryData *changes, size_t n,
                          uint64_t now_ms, char channel_out[LIA_CHANNEL_MAX + 1])
{
    struct channel *scratch = NULL, *held;
    char name[LIA_CHANNEL_MAX + 1];
    int rc = LIA_ERR_DECODE;

    if (n == 0)
        return LIA_ERR_DECODE;
    if (n > LIA_MEMBERSHIP_CHANGES_MAX)
        return LIA_ERR_TOO_LARGE;
    /* Verify the whole chain from its Create into a scratch channel. */
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *c = &changes[i];
        struct parsed p;
        if ((rc = parse_verify(reg->trust, c->data, c->len, &p)) != 0)
            goto done;
        /* A chain is exactly serials 1, 2, 3, ...: an old change repeated inside it is a
         * broken chain, not a replay. */
        if (p.body->serial != i + 1)
            rc = p.body->serial > i + 1 ? LIA_ERR_SEQ_GAP : LIA_ERR_FORK;
        else
            rc = step(reg->trust, &scratch, &p, c->data, c->len, now_ms);
        parsed_free(&p);
        if (rc != 0)
            goto done;
    }
    memcpy(name, scratch->name, sizeof name);
    held = find_channel(reg, name);
    if (held) {
        size_t common = held->n_hist < scratch->n_hist ? held->n_hist : scratch->n_hist;
        for (size_t i = 0; i < common; i++) {
            if (sodium_memcmp(held->hist[i].hash, scratch->hist[i].hash, HASH_BYTES) != 0) {
                rc = LIA_ERR_FORK;
                goto done;
            }
        }
        if (scratch->n_hist > held->n_hist) {
            scratch->bumps = held->bumps; /* local bumps survive */
            if ((rc = install(reg, scratch)) != 0)
                goto done;
            scratch = NULL;
        }
        /* else: nothing newer than what is held; scratch is dropped. */
    } else {
        rc = LIA_ERR_LIMIT;
        if (lia_map_size(reg->channels) >= LIA_MEMBERSHIP_CHANNELS_MAX)
            goto done;
        if ((rc = install(reg, scratch)) != 0)
            goto done;
        scratch = NULL;
    }
    if (channel_out)
        memcpy(channel_out, name, sizeof name);
    rc = 0;
done:
    channel_free(scratch);
    return rc;
}

int lia_membership_import(lia_membership_t *reg, const uint8_t *buf, size_t len, uint64_t now_ms,
                          char channel_out[LIA_CHANNEL_MAX + 1])
{
    Liaison__V1__MembershipChain *chain = NULL;
    int rc = LIA_ERR_INVALID;

    if (channel_out)
        channel_out[0] = '\0';
    if (!reg)
        return LIA_ERR_INVALID;
    if (len > LIA_MEMBERSHIP_CHAIN_MAX)
        return LIA_ERR_TOO_LARGE;
    rc = LIA_ERR_DECODE;
    if (!buf || len == 0)
        goto done;
    chain = liaison__v1__membership_chain__unpack(NULL, len, buf);
    if (!chain || !lia_pb_canonical(&chain->base, buf, len))
        goto done;
    if (chain->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto done;
    }
    rc = import_changes(reg, chain->changes, chain->n_changes, now_ms, channel_out);
done:
    if (chain)
        liaison__v1__membership_chain__free_unpacked(chain, NULL);
    return rc;
}

int lia_membership_import_changes(lia_membership_t *reg, const uint8_t *const *changes,
                                  const size_t *lens, size_t n, uint64_t now_ms,
                                  char channel_out[LIA_CHANNEL_MAX + 1])
{
    ProtobufCBinaryData *v;
    int rc;

    if (channel_out)
        channel_out[0] = '\0';
    if (!reg || (n && (!changes || !lens)))
        return LIA_ERR_INVALID;
    if (n > LIA_MEMBERSHIP_CHANGES_MAX)
        return LIA_ERR_TOO_LARGE;
    if (!(v = calloc(n ? n : 1, sizeof *v)))
        return LIA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].data = (uint8_t *)changes[i];
        v[i].len = lens[i];
    }
    rc = import_changes(reg, v, n, now_ms, channel_out);
    free(v);
    return rc;
}

/* ---- Enumeration and trust --------------------------------------------------------------- */

struct walk {
    lia_membership_channel_fn fn;
    void *arg;
};

static int walk_one(void *arg, const uint8_t *key, void *value)
{
    const struct walk *w = arg;
    (void)key;
    return w->fn(w->arg, ((const struct channel *)value)->name);
}

int lia_membership_channels(const lia_membership_t *reg, lia_membership_channel_fn fn, void *arg)
{
    struct walk w = {fn, arg};

    if (!reg || !fn)
        return LIA_ERR_INVALID;
    return lia_map_foreach(reg->channels, walk_one, &w);
}

int lia_membership_was_member(const lia_membership_t *reg, const char *channel, const char *node)
{
    const struct channel *ch = find_channel(reg, channel);

    if (!ch || !node)
        return 0;
    if (has_member(ch, node, NULL))
        return 1;
    for (size_t i = 0; i < ch->n_hist; i++) {
        const struct entry *e = &ch->hist[i];
        if (e->action == LIA_MEMBERSHIP_ADD && strcmp(e->node, node) == 0)
            return 1;
        for (size_t j = 0; j < e->n_members; j++)
            if (strcmp(e->members[j], node) == 0)
                return 1;
    }
    return 0;
}

void lia_membership_set_trust(lia_membership_t *reg, lia_trust_t *trust)
{
    if (reg && trust)
        reg->trust = trust;
}

/* ---- Store records ----------------------------------------------------------------------- */

void lia_membership_change_id(const uint8_t *buf, size_t len,
                              uint8_t out[LIA_MEMBERSHIP_CHANGE_ID_BYTES])
{
    uint8_t h[32];

    crypto_generichash(h, sizeof h, buf, len, NULL, 0);
    memcpy(out, h, LIA_MEMBERSHIP_CHANGE_ID_BYTES);
}

int lia_membership_key(const char *channel, uint64_t serial, char out[LIA_MEMBERSHIP_KEY_MAX])
{
    if (!channel || !lia_channel_valid(channel))
        return LIA_ERR_INVALID;
    snprintf(out, LIA_MEMBERSHIP_KEY_MAX, LIA_MEMBERSHIP_KEY_PREFIX "%s:%016llx", channel,
             (unsigned long long)serial);
    return 0;
}

struct record {
    char channel[LIA_CHANNEL_MAX + 1]; /* "" if the key does not parse */
    uint64_t serial;
    const uint8_t *val;
    size_t len;
};

/* Parses "mc:" CHANNEL ":" 16 hex digits; 0 or LIA_ERR_DECODE. */
static int parse_key(const char *key, struct record *r)
{
    size_t len = key ? strlen(key) : 0, plen = sizeof LIA_MEMBERSHIP_KEY_PREFIX - 1, clen;
    uint64_t v = 0;

    if (len < plen + 1 + 1 + 16 || memcmp(key, LIA_MEMBERSHIP_KEY_PREFIX, plen) != 0 ||
        key[len - 17] != ':')
        return LIA_ERR_DECODE;
    clen = len - 17 - plen;
    if (clen > LIA_CHANNEL_MAX)
        return LIA_ERR_DECODE;
    for (size_t i = len - 16; i < len; i++) {
        char c = key[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return LIA_ERR_DECODE;
        v = (v << 4) | (uint64_t)d;
    }
    memcpy(r->channel, key + plen, clen);
    r->channel[clen] = '\0';
    if (!lia_channel_valid(r->channel) || v == 0) {
        r->channel[0] = '\0';
        return LIA_ERR_DECODE;
    }
    r->serial = v;
    return 0;
}

static int cmp_record(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);

    if (c)
        return c;
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

int lia_membership_restore(lia_membership_t *reg, const char *const *keys,
                           const uint8_t *const *vals, const size_t *lens, size_t n,
                           uint64_t now_ms, lia_membership_restore_fn report, void *arg)
{
    struct record *r = NULL;
    const uint8_t **cv = NULL;
    size_t *cl = NULL;
    int rc = LIA_ERR_NOMEM;

    if (!reg || (n && (!keys || !vals || !lens)))
        return LIA_ERR_INVALID;
    if (n == 0)
        return 0;
    r = calloc(n, sizeof *r);
    cv = calloc(n, sizeof *cv);
    cl = calloc(n, sizeof *cl);
    if (!r || !cv || !cl)
        goto done;
    for (size_t i = 0; i < n; i++) {
        r[i].val = vals[i];
        r[i].len = lens[i];
        if (parse_key(keys[i], &r[i]) != 0 && report)
            report(arg, keys[i] ? keys[i] : "", 1, LIA_ERR_DECODE);
    }
    qsort(r, n, sizeof *r, cmp_record);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int irc;
        while (j < n && strcmp(r[j].channel, r[i].channel) == 0) {
            cv[j - i] = r[j].val;
            cl[j - i] = r[j].len;
            j++;
        }
        if (r[i].channel[0]) {
            irc = lia_membership_import_changes(reg, cv, cl, j - i, now_ms, NULL);
            if (irc == LIA_ERR_NOMEM)
                goto done;
            if (report)
                report(arg, r[i].channel, j - i, irc);
        }
        i = j;
    }
    rc = 0;
done:
    free(r);
    free(cv);
    free(cl);
    return rc;
}

int lia_membership_restore_kv(lia_membership_t *reg, const lia_nstore_kv *kv, size_t n,
                              uint64_t now_ms, lia_membership_restore_fn report, void *arg)
{
    const char **keys = calloc(n + 1, sizeof *keys);
    const uint8_t **vals = calloc(n + 1, sizeof *vals);
    size_t *lens = calloc(n + 1, sizeof *lens);
    int rc = LIA_ERR_NOMEM;

    if (!keys || !vals || !lens)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        keys[i] = kv[i].key;
        vals[i] = kv[i].val;
        lens[i] = kv[i].len;
    }
    rc = lia_membership_restore(reg, keys, vals, lens, n, now_ms, report, arg);
fail:
    free(keys);
    free(vals);
    free(lens);
    return rc;
}
