/*
 * The trust store: the one authority a node trusts, the certificates it has verified against
 * that authority, and the newest revocation list. Every lookup answers "may this key speak for
 * this node at this time?" from that data alone; nothing the broker says is taken on trust.
 */
#ifndef LIA_TRUST_H
#define LIA_TRUST_H

#include "cert.h"

typedef struct lia_trust lia_trust_t;

/* New store anchored at auth (copied). */
int lia_trust_new(const lia_authority_info *auth, lia_trust_t **out) LIA_WUR;
void lia_trust_destroy(lia_trust_t **p);
const lia_authority_info *lia_trust_authority(const lia_trust_t *t);

/*
 * Verifies a certificate against the authority and adds it (a certificate with the same serial
 * already present is not added twice). *out, if not NULL, points into the store.
 */
int lia_trust_add_cert(lia_trust_t *t, const uint8_t *buf, size_t len,
                       const lia_cert_info **out) LIA_WUR;

/*
 * Verifies a revocation list and installs it if it is newer than the current one: a higher
 * serial and an issued_at not earlier than the current list's (LIA_ERR_STALE otherwise: a store
 * never goes back to an older list). A refused list changes nothing.
 */
int lia_trust_set_crl(lia_trust_t *t, const uint8_t *buf, size_t len) LIA_WUR;

/* Called by lia_trust_update_crl for each entry the previous list did not have. */
typedef void (*lia_trust_revoked_fn)(void *arg, const lia_crl_entry_info *entry);

/*
 * lia_trust_set_crl that also reports what the new list adds: *newly (if not NULL) is the
 * number of its entries whose certificate serial the previous list did not list (every entry
 * when no list was held), and fn (if not NULL) is called for each of them once the list is
 * installed. On error nothing changes, *newly is 0 and fn is not called.
 */
int lia_trust_update_crl(lia_trust_t *t, const uint8_t *buf, size_t len, size_t *newly,
                         lia_trust_revoked_fn fn, void *arg) LIA_WUR;

uint64_t lia_trust_crl_serial(const lia_trust_t *t);

/* The installed revocation list, or NULL if none. */
const lia_crl_t *lia_trust_crl(const lia_trust_t *t);

/*
 * The certificate of node_id whose signing key has key id sign_key_id, if valid at time at
 * (Unix seconds) and not revoked at or before at. Errors: LIA_ERR_UNKNOWN_SENDER (no
 * certificate for node_id), LIA_ERR_KEY_MISMATCH (none with that key), LIA_ERR_EXPIRED,
 * LIA_ERR_REVOKED.
 */
int lia_trust_find(const lia_trust_t *t, const char *node_id,
                   const uint8_t sign_key_id[LIA_KEY_ID_BYTES], uint64_t at,
                   const lia_cert_info **out) LIA_WUR;

/* The certificate of node_id valid at time at with the latest not_after (for wrapping keys). */
int lia_trust_find_current(const lia_trust_t *t, const char *node_id, uint64_t at,
                           const lia_cert_info **out) LIA_WUR;

/*
 * Like lia_trust_find_current, for handing a key over now: also skips every certificate the
 * revocation list names, whatever its revocation time (a certificate the authority has decided
 * to revoke gets no new key, even before the time it is revoked from). LIA_ERR_REVOKED when
 * only listed certificates remain.
 */
int lia_trust_find_grantee(const lia_trust_t *t, const char *node_id, uint64_t at,
                           const lia_cert_info **out) LIA_WUR;

#endif
