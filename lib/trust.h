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
 * Verifies a revocation list and installs it if its serial is higher than the current one
 * (LIA_ERR_STALE otherwise: a store never goes back to an older list).
 */
int lia_trust_set_crl(lia_trust_t *t, const uint8_t *buf, size_t len) LIA_WUR;
uint64_t lia_trust_crl_serial(const lia_trust_t *t);

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

#endif
