/*
 * Owner-signed channel membership (docs/protocol.md section 6).
 *
 * A channel's membership is a hash chain of changes. Serial 1 is a Create signed by a contact
 * point, who becomes the owner; every later change has serial last + 1, names the link hash of
 * the last applied change and is signed by the current owner with a certificate valid (and not
 * revoked) at the change's creation time. Each member applies every change to its registry and
 * so holds the same view; the broker relays changes but cannot forge, alter, replay, reorder or
 * fork them. A refused change (or chain) changes nothing.
 *
 * Key epochs: a channel starts at epoch 1; every RemoveMember starts a new epoch; adding a member
 * does not. lia_membership_bump_epoch starts one locally (revocation, periodic rollover).
 *
 * Not thread-safe: one registry per thread, or the caller serialises.
 */
#ifndef LIA_MEMBERSHIP_H
#define LIA_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "envelope.h"
#include "store.h"
#include "trust.h"
#include "vault.h"

#define LIA_MEMBERSHIP_CHANGE_MAX      (64u << 10) /* one serialised change, before decoding */
#define LIA_MEMBERSHIP_CREATE_MAX      512         /* members named by a Create */
#define LIA_MEMBERSHIP_MEMBERS_MAX     10000       /* members of one channel */
#define LIA_MEMBERSHIP_CHANGES_MAX     65536       /* changes in one channel's history */
#define LIA_MEMBERSHIP_CHANNELS_MAX    4096        /* channels in one registry */
#define LIA_MEMBERSHIP_DESCRIPTION_MAX 256         /* bytes of a Create's description */
#define LIA_MEMBERSHIP_CHAIN_MAX       (32u << 20) /* one exported chain, before decoding */
#define LIA_MEMBERSHIP_HASH_BYTES      32
#define LIA_MEMBERSHIP_UPDATE_MAX      (256u << 10) /* one MembershipUpdate frame (transport) */
#define LIA_MEMBERSHIP_CHANGE_ID_BYTES 16 /* change id: BLAKE2b-256(change)[0..16), in Errors */

typedef struct lia_membership lia_membership_t;

typedef enum {
    LIA_MEMBERSHIP_CREATE = 1,
    LIA_MEMBERSHIP_ADD = 2,
    LIA_MEMBERSHIP_REMOVE = 3,
    LIA_MEMBERSHIP_TRANSFER = 4
} lia_membership_action;

/* One applied change, as listed by lia_membership_history. Pointers valid during the call. */
typedef struct {
    uint64_t serial;
    lia_membership_action action;
    const char *node;   /* member added or removed, or new owner; the owner for a Create */
    const char *signer; /* the owner who signed it */
    uint64_t created_at_ms;
    uint64_t epoch;                          /* the channel's chain epoch after it */
    const char *const *members;              /* Create only: initial members, ascending */
    size_t n_members;                        /* Create only, else 0 */
    uint8_t hash[LIA_MEMBERSHIP_HASH_BYTES]; /* its link hash (the next one's prev_hash) */
    const uint8_t *change;                   /* the serialised change, as applied */
    size_t change_len;
} lia_membership_event;

/* What lia_membership_apply_ex applied. */
typedef struct {
    char channel[LIA_CHANNEL_MAX + 1];
    uint64_t serial;
    lia_membership_action action;
    char node[LIA_NODE_ID_MAX + 1]; /* member added or removed, new owner; "" for a Create */
} lia_membership_applied;

/* Called once per change, oldest first; a non-zero return stops the listing and is returned. */
typedef int (*lia_membership_history_fn)(void *arg, const lia_membership_event *ev);

/* Every field of a change, for lia_membership_sign. */
typedef struct {
    const char *channel;
    uint64_t serial;
    const uint8_t *prev_hash; /* 32 bytes; NULL means 32 zero bytes */
    uint64_t created_at_ms;
    lia_membership_action action;
    const char *node;           /* ADD, REMOVE: the member; TRANSFER: the new owner */
    const char *const *members; /* CREATE */
    size_t n_members;           /* CREATE */
    int copy_to_hub;            /* CREATE */
    const char *description;    /* CREATE; NULL is "" */
} lia_membership_draft;

/* A new, empty registry; trust is borrowed and must outlive it. */
int lia_membership_new(lia_trust_t *trust, lia_membership_t **out) LIA_WUR;
void lia_membership_destroy(lia_membership_t **p);

/*
 * Verifies one serialised MembershipChange received at now_ms and applies it. Errors, besides
 * too_large, decode and version: the signer's certificate (unknown_sender, key_mismatch,
 * expired, revoked), signature, not_owner (not signed by the current owner, or a Create or a
 * transfer to a node that is not a contact point), replay (exactly a change already applied),
 * fork (a different change with an applied serial, or a prev_hash that is not the last
 * change's), seq_gap (serial beyond last + 1, or a channel not yet created), stale
 * (created_at_ms before the last change's), clock (more than 5 minutes ahead of now_ms),
 * not_member and member_state (the action does not fit the members), limit (a bound is full).
 * On any error the registry is unchanged.
 */
int lia_membership_apply(lia_membership_t *reg, const uint8_t *buf, size_t len,
                         uint64_t now_ms) LIA_WUR;

/* As lia_membership_apply; on success *info (if not NULL) says what was applied. */
int lia_membership_apply_ex(lia_membership_t *reg, const uint8_t *buf, size_t len, uint64_t now_ms,
                            lia_membership_applied *info) LIA_WUR;

/*
 * Builders: sign a change with the owner's identity (owner_id is its node id) that continues
 * the registry's view of the channel (serial, prev_hash), and check it exactly as
 * lia_membership_apply would at now = created_at_ms, without applying it. On success *out is
 * malloc'd and owned by the caller; the caller applies it (and publishes it) itself.
 */
int lia_membership_create(const lia_membership_t *reg, const lia_identity_t *owner,
                          const char *owner_id, const char *channel, const char *const *members,
                          size_t n_members, int copy_to_hub, const char *description,
                          uint64_t created_at_ms, uint8_t **out, size_t *out_len) LIA_WUR;
int lia_membership_add(const lia_membership_t *reg, const lia_identity_t *owner,
                       const char *owner_id, const char *channel, const char *node,
                       uint64_t created_at_ms, uint8_t **out, size_t *out_len) LIA_WUR;
int lia_membership_remove(const lia_membership_t *reg, const lia_identity_t *owner,
                          const char *owner_id, const char *channel, const char *node,
                          uint64_t created_at_ms, uint8_t **out, size_t *out_len) LIA_WUR;
int lia_membership_transfer(const lia_membership_t *reg, const lia_identity_t *owner,
                            const char *owner_id, const char *channel, const char *new_owner,
                            uint64_t created_at_ms, uint8_t **out, size_t *out_len) LIA_WUR;

/*
 * Signs exactly the draft (field syntax checked, no state): for tools and tests that must
 * produce changes a registry will refuse. *out owned by the caller.
 */
int lia_membership_sign(const lia_identity_t *signer, const char *signer_id,
                        const lia_membership_draft *d, uint8_t **out, size_t *out_len) LIA_WUR;

/* 1 if node is a member of channel, else 0. Usable as a lia_member_fn with arg = the registry. */
int lia_membership_is_member(void *reg, const char *channel, const char *node);

/*
 * Members of channel in ascending order (*n set), or NULL (and *n = 0) for an unknown channel.
 * Valid until the next change to the registry.
 */
const char *const *lia_membership_members(const lia_membership_t *reg, const char *channel,
                                          size_t *n);

/* The channel's current owner, or NULL. Valid until the next change to the registry. */
const char *lia_membership_owner(const lia_membership_t *reg, const char *channel);

/* Current epoch (chain epoch plus local bumps), or 0 for an unknown channel. */
uint64_t lia_membership_epoch(const lia_membership_t *reg, const char *channel);

/* Serial of the last applied change, or 0 for an unknown channel. */
uint64_t lia_membership_serial(const lia_membership_t *reg, const char *channel);

/* Whether the Create marked the channel for copy to a hub (0 also for an unknown channel). */
int lia_membership_copy_to_hub(const lia_membership_t *reg, const char *channel);

/*
 * The serial of the change that last made node a member of channel (1 for the initial members;
 * a sender hands its current key to a member that joined after its last key grant).
 * LIA_ERR_NOT_FOUND if the channel is unknown, LIA_ERR_NOT_MEMBER if node is not a member.
 */
int lia_membership_joined(const lia_membership_t *reg, const char *channel, const char *node,
                          uint64_t *serial) LIA_WUR;

/*
 * Starts a new epoch locally (certificate revocation of a member, periodic rollover); *epoch,
 * if not NULL, receives it. Local bumps are not part of the chain: they are kept across later
 * changes and imports of the channel in this registry, not exported.
 */
int lia_membership_bump_epoch(lia_membership_t *reg, const char *channel, uint64_t *epoch) LIA_WUR;

/* Lists the channel's applied changes, oldest first. LIA_ERR_NOT_FOUND for an unknown channel. */
int lia_membership_history(const lia_membership_t *reg, const char *channel,
                           lia_membership_history_fn fn, void *arg) LIA_WUR;

/* Called once per channel of the registry, in no particular order; non-zero stops the walk. */
typedef int (*lia_membership_channel_fn)(void *arg, const char *channel);
int lia_membership_channels(const lia_membership_t *reg, lia_membership_channel_fn fn,
                            void *arg) LIA_WUR;

/*
 * 1 if node is a member of channel now or was named a member by any change of its history
 * (the initial members of the Create, every added member), else 0: the nodes that must learn
 * of every change to the channel, so that a removed member learns of its removal.
 */
int lia_membership_was_member(const lia_membership_t *reg, const char *channel, const char *node);

/*
 * Replaces the borrowed trust store (a reload of certificates and revocation list): what was
 * applied stays, later changes are checked against the new store. trust must outlive reg.
 */
void lia_membership_set_trust(lia_membership_t *reg, lia_trust_t *trust);

/* Serialises the channel's whole chain (a MembershipChain); *out owned by the caller. */
int lia_membership_export(const lia_membership_t *reg, const char *channel, uint8_t **out,
                          size_t *out_len) LIA_WUR;

/*
 * Verifies a whole exported chain from its Create (every rule of lia_membership_apply, at
 * now_ms) and installs it. If the registry already holds the channel, its history must be a
 * prefix of the chain (else fork) and only the newer changes take effect; a chain no longer
 * than the one held changes nothing. channel_out, if not NULL, receives the channel name.
 * All or nothing: on error the registry is unchanged.
 */
int lia_membership_import(lia_membership_t *reg, const uint8_t *buf, size_t len, uint64_t now_ms,
                          char channel_out[LIA_CHANNEL_MAX + 1]) LIA_WUR;

/*
 * As lia_membership_import, for a chain given as its n serialised changes (serial 1, 2, ...
 * in order) rather than as a MembershipChain: for stores that keep one change per record.
 */
int lia_membership_import_changes(lia_membership_t *reg, const uint8_t *const *changes,
                                  const size_t *lens, size_t n, uint64_t now_ms,
                                  char channel_out[LIA_CHANNEL_MAX + 1]) LIA_WUR;

/* The change id of a serialised change: the first 16 bytes of BLAKE2b-256(change). */
void lia_membership_change_id(const uint8_t *buf, size_t len,
                              uint8_t out[LIA_MEMBERSHIP_CHANGE_ID_BYTES]);

/*
 * Stores keep one change per record under "mc:" CHANNEL ":" 16 lower-case hex digits of the
 * serial (ascending key order is serial order within a channel). lia_membership_key writes
 * that key into out (LIA_MEMBERSHIP_KEY_MAX bytes); LIA_ERR_INVALID for a bad channel.
 */
#define LIA_MEMBERSHIP_KEY_PREFIX "mc:"
#define LIA_MEMBERSHIP_KEY_MAX    (3 + LIA_CHANNEL_MAX + 1 + 16 + 1)
int lia_membership_key(const char *channel, uint64_t serial,
                       char out[LIA_MEMBERSHIP_KEY_MAX]) LIA_WUR;

/* Called once per restored channel with the outcome of its import (0 or an error). */
typedef void (*lia_membership_restore_fn)(void *arg, const char *channel, size_t n_changes, int rc);

/*
 * Rebuilds the registry from n stored records (keys from lia_membership_key, values the
 * changes), in any order: groups them by channel, orders them by serial and imports each
 * channel's chain with every check (lia_membership_import_changes at now_ms), all or nothing
 * per channel. A record whose key does not parse counts as a channel of its own that fails
 * with LIA_ERR_DECODE. report (if not NULL) hears of each channel. Returns 0, or
 * LIA_ERR_NOMEM / LIA_ERR_INVALID (nothing about the records themselves).
 */
int lia_membership_restore(lia_membership_t *reg, const char *const *keys,
                           const uint8_t *const *vals, const size_t *lens, size_t n,
                           uint64_t now_ms, lia_membership_restore_fn report, void *arg) LIA_WUR;

/* lia_membership_restore over the records as a store lists them (lia_nstore_state_list,
 * lia_bstore_state_list under LIA_MEMBERSHIP_KEY_PREFIX); the records stay the caller's. */
int lia_membership_restore_kv(lia_membership_t *reg, const lia_nstore_kv *kv, size_t n,
                              uint64_t now_ms, lia_membership_restore_fn report, void *arg) LIA_WUR;

#endif
