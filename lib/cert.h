/*
 * Public identities: the network authority, node certificates, certificate requests and the
 * revocation list. Every signed object travels as (body bytes, signature); parsing verifies the
 * signature over the exact body bytes received and only then decodes the body. Fields are
 * bounded and checked (node id syntax, key sizes, validity order) before anything is returned.
 * Signing goes through the vault; this module never sees a secret key.
 */
#ifndef LIA_CERT_H
#define LIA_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "vault.h"

#define LIA_KEY_ID_BYTES       16
#define LIA_NODE_ID_MAX        64
#define LIA_AUTHORITY_NAME_MAX 128
#define LIA_FINGERPRINT_CHARS  64 /* "xxxx xxxx ..." incl. NUL, see lia_fingerprint */
#define LIA_CERT_MAX_BYTES     4096
#define LIA_CRL_MAX_BYTES      (4u << 20)
#define LIA_CRL_MAX_ENTRIES    65536
#define LIA_REVOKE_REASON_MAX  256

typedef enum {
    LIA_ROLE_CONTACT_POINT = 1,
    LIA_ROLE_HUB = 2,
    LIA_ROLE_LIAISON = 3,
    LIA_ROLE_BROKER = 4
} lia_role;

typedef struct {
    char name[LIA_AUTHORITY_NAME_MAX + 1];
    uint8_t sign_pk[32];
    uint8_t key_id[LIA_KEY_ID_BYTES];
    uint64_t created_at;
} lia_authority_info;

typedef struct {
    uint64_t serial;
    char node_id[LIA_NODE_ID_MAX + 1];
    lia_role role;
    char country[3];
    uint8_t sign_pk[32];
    uint8_t enc_pk[32];
    uint8_t transport_pk[32];
    uint8_t sign_key_id[LIA_KEY_ID_BYTES]; /* lia_key_id(sign_pk) */
    uint8_t enc_key_id[LIA_KEY_ID_BYTES];  /* lia_key_id(enc_pk) */
    uint64_t not_before;
    uint64_t not_after;
    uint8_t authority_id[LIA_KEY_ID_BYTES];
} lia_cert_info;

typedef struct lia_crl lia_crl_t; /* a verified, parsed revocation list */

/* key id = first 16 bytes of BLAKE2b-256("liaison.v1.keyid\0" || pk). */
void lia_key_id(const uint8_t pk[32], uint8_t out[LIA_KEY_ID_BYTES]);

/*
 * Human fingerprint of public key material for out-of-band comparison (docs/protocol.md,
 * section 3): BLAKE2b-256("liaison.v1.fingerprint\0" || data), first 20 bytes as 10 groups of 4
 * lower-case hex digits separated by single spaces ("3f2a 9c01 ..."), 49 characters and a NUL.
 */
void lia_fingerprint(const uint8_t *data, size_t len, char out[LIA_FINGERPRINT_CHARS]);

/* 1 if s is a valid node id: 1..64 bytes of [a-z0-9._-], starting with [a-z0-9]. */
int lia_node_id_valid(const char *s);

/* Role names used on the command line and in JSON ("contact-point", "hub", ...). */
const char *lia_role_name(lia_role r);
int lia_role_parse(const char *s, lia_role *out);

/* Self-signed authority description; *out malloc'd, owned by the caller. */
int lia_authority_create(const lia_identity_t *authority, uint64_t now, uint8_t **out,
                         size_t *out_len) LIA_WUR;
int lia_authority_parse(const uint8_t *buf, size_t len, lia_authority_info *out) LIA_WUR;

/* Certificate request signed by the node (proof of possession); *out owned by the caller. */
int lia_cert_request_create(const lia_identity_t *node, lia_role role, const char *country,
                            uint8_t **out, size_t *out_len) LIA_WUR;
/* Verifies the self-signature; fills node_id, role, country and the keys of *out. */
int lia_cert_request_parse(const uint8_t *buf, size_t len, lia_cert_info *out) LIA_WUR;

/*
 * Issues a certificate for the identity fields and keys in *req, valid from not_before to
 * not_after; a random non-zero serial is chosen and written to *serial_out if not NULL.
 */
int lia_cert_issue(const lia_identity_t *authority, const lia_cert_info *req, uint64_t not_before,
                   uint64_t not_after, uint64_t *serial_out, uint8_t **out,
                   size_t *out_len) LIA_WUR;

/*
 * Verifies and decodes a certificate. LIA_ERR_WRONG_AUTHORITY if issued by another authority,
 * LIA_ERR_SIGNATURE if the signature fails. Does not check the time (lia_cert_check_time).
 */
int lia_cert_parse(const uint8_t *buf, size_t len, const lia_authority_info *auth,
                   lia_cert_info *out) LIA_WUR;

/*
 * Decodes and checks a certificate WITHOUT verifying its signature or authority, for display
 * only (liaison-keys show without --authority). Never use the result to trust a key.
 */
int lia_cert_decode_unverified(const uint8_t *buf, size_t len, lia_cert_info *out) LIA_WUR;

/* Fingerprint of an authority: lia_fingerprint(sign_pk). */
void lia_authority_fingerprint(const lia_authority_info *a, char out[LIA_FINGERPRINT_CHARS]);

/*
 * Fingerprint of a node's keys, the same for its request and its certificates:
 * lia_fingerprint(sign_pk || enc_pk || transport_pk).
 */
void lia_node_fingerprint(const lia_cert_info *c, char out[LIA_FINGERPRINT_CHARS]);

/* LIA_ERR_EXPIRED unless not_before <= at < not_after. */
int lia_cert_check_time(const lia_cert_info *c, uint64_t at) LIA_WUR;

/*
 * Issues a revocation list: the entries of prev (may be NULL) plus one new entry, with serial
 * prev's + 1 (or 1). *out owned by the caller. LIA_ERR_EXISTS if cert_serial is already listed,
 * LIA_ERR_WRONG_AUTHORITY if prev belongs to another authority, LIA_ERR_LIMIT when full.
 */
int lia_crl_issue(const lia_identity_t *authority, const lia_crl_t *prev, uint64_t cert_serial,
                  const char *node_id, uint64_t revoked_at, const char *reason, uint64_t now,
                  uint8_t **out, size_t *out_len) LIA_WUR;
int lia_crl_parse(const uint8_t *buf, size_t len, const lia_authority_info *auth,
                  lia_crl_t **out) LIA_WUR;
/* Like lia_crl_parse without the signature and authority checks: for display only. */
int lia_crl_decode_unverified(const uint8_t *buf, size_t len, lia_crl_t **out) LIA_WUR;
void lia_crl_destroy(lia_crl_t **p);
uint64_t lia_crl_serial(const lia_crl_t *crl);
uint64_t lia_crl_issued_at(const lia_crl_t *crl);
void lia_crl_authority_id(const lia_crl_t *crl, uint8_t out[LIA_KEY_ID_BYTES]);
size_t lia_crl_count(const lia_crl_t *crl);

typedef struct {
    uint64_t serial;
    const char *node_id; /* points into the list; valid while it lives */
    uint64_t revoked_at;
    const char *reason; /* "" when none */
} lia_crl_entry_info;

/* Entry i (0 <= i < lia_crl_count) in ascending serial order; LIA_ERR_NOT_FOUND past the end. */
int lia_crl_entry(const lia_crl_t *crl, size_t i, lia_crl_entry_info *out) LIA_WUR;
/* 1 and *revoked_at set if cert_serial is listed, else 0. */
int lia_crl_lookup(const lia_crl_t *crl, uint64_t cert_serial, uint64_t *revoked_at);

#endif
