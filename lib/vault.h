/*
 * The vault: the only module that touches secret key bytes. Secret keys live in
 * sodium_malloc'd memory (guard pages, locked, wiped on free) behind opaque handles; other
 * modules ask the vault to sign, encrypt, decrypt, wrap and unwrap, and never see the bytes.
 *
 * Key files are SecretFile protobufs (proto/liaison/v1/identity.proto), mode 0600, created
 * with O_EXCL and written atomically; optionally sealed under a passphrase with Argon2id and
 * XChaCha20-Poly1305.
 */
#ifndef LIA_VAULT_H
#define LIA_VAULT_H

#include <stddef.h>
#include <stdint.h>

#define LIA_WUR __attribute__((warn_unused_result))

#define LIA_SIGN_PK_BYTES   32
#define LIA_SIGNATURE_BYTES 64
#define LIA_ENC_PK_BYTES    32
#define LIA_CURVE_PK_BYTES  32
#define LIA_SYMKEY_BYTES    32
#define LIA_NONCE_BYTES     24
#define LIA_AEAD_TAG_BYTES  16
#define LIA_WRAPPED_BYTES   (LIA_SYMKEY_BYTES + LIA_AEAD_TAG_BYTES)

typedef enum { LIA_SECRET_AUTHORITY = 1, LIA_SECRET_NODE = 2 } lia_secret_kind;

/* Argon2id cost for passphrase-protected files. */
typedef enum {
    LIA_KDF_INTERACTIVE = 0, /* tests only */
    LIA_KDF_MODERATE = 1,    /* default: ~256 MiB, under a second */
    LIA_KDF_SENSITIVE = 2    /* offline authority keys: ~1 GiB, seconds */
} lia_kdf_strength;

typedef struct lia_identity lia_identity_t; /* a set of secret keys */
typedef struct lia_symkey lia_symkey_t;     /* a 32-byte XChaCha20-Poly1305 key */
typedef struct lia_wrapper lia_wrapper_t;   /* an ephemeral X25519 key for one key grant */

/* Initialises libsodium; call once before anything else. */
int lia_vault_init(void) LIA_WUR;

/*
 * Generates a new identity: an Ed25519 signing key pair, and for nodes also an X25519
 * encryption key pair and a Curve25519 transport key pair. name is copied (1..128 bytes).
 */
int lia_identity_generate(lia_secret_kind kind, const char *name, lia_identity_t **out) LIA_WUR;

/*
 * Loads a secret key file. The file must be a regular file not accessible by group or others
 * (LIA_ERR_PERMISSION). If the file is passphrase-protected and passphrase is NULL, returns
 * LIA_ERR_PASSPHRASE without deriving anything, so that a CLI can then prompt; a wrong
 * passphrase also returns LIA_ERR_PASSPHRASE. A malformed or truncated file returns
 * LIA_ERR_DECODE; a file of another kind (wanted != 0 and different) LIA_ERR_WRONG_KIND.
 */
int lia_identity_load(const char *path, lia_secret_kind wanted, const char *passphrase,
                      size_t passphrase_len, lia_identity_t **out) LIA_WUR;

/*
 * Writes the identity to a new file (never overwrites: LIA_ERR_EXISTS), mode 0600, atomically.
 * With a passphrase the bundle is sealed under an Argon2id-derived key.
 */
int lia_identity_save(const lia_identity_t *id, const char *path, const char *passphrase,
                      size_t passphrase_len, lia_kdf_strength strength) LIA_WUR;

/* Wipes and frees the identity; accepts NULL and sets *p to NULL. */
void lia_identity_destroy(lia_identity_t **p);

lia_secret_kind lia_identity_kind(const lia_identity_t *id);
const char *lia_identity_name(const lia_identity_t *id);
const uint8_t *lia_identity_sign_pk(const lia_identity_t *id);      /* 32 bytes */
const uint8_t *lia_identity_enc_pk(const lia_identity_t *id);       /* 32 bytes, nodes */
const uint8_t *lia_identity_transport_pk(const lia_identity_t *id); /* 32 bytes, nodes */

/* Ed25519 signature of msg. */
int lia_identity_sign(const lia_identity_t *id, const uint8_t *msg, size_t len,
                      uint8_t sig[LIA_SIGNATURE_BYTES]) LIA_WUR;

/*
 * Unwraps a symmetric key that a sender wrapped to this identity's encryption key with
 * ephemeral public key eph_pk and associated data ad (see docs/protocol.md, key wrapping).
 * On success *out is a new key owned by the caller. Works in guarded scratch memory held by
 * the identity: calls on one identity must not run concurrently.
 */
int lia_identity_unwrap(const lia_identity_t *id, const uint8_t eph_pk[32], const uint8_t *ad,
                        size_t ad_len, const uint8_t wrapped[LIA_WRAPPED_BYTES],
                        lia_symkey_t **out) LIA_WUR;

/*
 * Copies the transport (CURVE) secret key into out, for the transport module to hand to
 * libzmq. The caller wipes out with sodium_memzero as soon as libzmq has copied it.
 */
int lia_identity_transport_sk(const lia_identity_t *id, uint8_t out[32]) LIA_WUR;

/*
 * The node's storage key, for encrypting data at rest (inbox payloads, symmetric keys in the
 * node store): BLAKE2b-256(key = signing seed, "liaison.v1.storage\0"). Owned by the caller.
 */
int lia_identity_storage_key(const lia_identity_t *id, lia_symkey_t **out) LIA_WUR;

/* A fresh random symmetric key owned by the caller. */
int lia_symkey_generate(lia_symkey_t **out) LIA_WUR;
void lia_symkey_destroy(lia_symkey_t **p);

/* XChaCha20-Poly1305-IETF: ct receives pt_len + LIA_AEAD_TAG_BYTES bytes. */
int lia_symkey_encrypt(const lia_symkey_t *key, const uint8_t nonce[LIA_NONCE_BYTES],
                       const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *ct) LIA_WUR;

/* Inverse of lia_symkey_encrypt; pt receives ct_len - 16 bytes. LIA_ERR_DECRYPT on forgery. */
int lia_symkey_decrypt(const lia_symkey_t *key, const uint8_t nonce[LIA_NONCE_BYTES],
                       const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t ct_len,
                       uint8_t *pt) LIA_WUR;

#define LIA_SEALED_KEY_BYTES (LIA_NONCE_BYTES + LIA_WRAPPED_BYTES)

/*
 * Seals key under kek (the node's storage key) for keeping it on disk: a random nonce
 * followed by XChaCha20-Poly1305(key) with ad bound. out receives LIA_SEALED_KEY_BYTES.
 */
int lia_symkey_seal(const lia_symkey_t *kek, const lia_symkey_t *key, const uint8_t *ad,
                    size_t ad_len, uint8_t out[LIA_SEALED_KEY_BYTES]) LIA_WUR;

/* Inverse of lia_symkey_seal; *out owned by the caller. LIA_ERR_DECRYPT if tampered. */
int lia_symkey_unseal(const lia_symkey_t *kek, const uint8_t in[LIA_SEALED_KEY_BYTES],
                      const uint8_t *ad, size_t ad_len, lia_symkey_t **out) LIA_WUR;

/* A fresh ephemeral X25519 key pair for one key grant. */
int lia_wrapper_new(lia_wrapper_t **out) LIA_WUR;
const uint8_t *lia_wrapper_pk(const lia_wrapper_t *w); /* 32 bytes */

/* Wraps key to the recipient's X25519 public key, binding ad. out receives 48 bytes. Works in
 * the wrapper's guarded scratch memory: calls on one wrapper must not run concurrently. */
int lia_wrapper_wrap(const lia_wrapper_t *w, const lia_symkey_t *key,
                     const uint8_t recipient_pk[32], const uint8_t *ad, size_t ad_len,
                     uint8_t out[LIA_WRAPPED_BYTES]) LIA_WUR;
void lia_wrapper_destroy(lia_wrapper_t **p);

#define LIA_INDEX_TOKEN_BYTES 32

/*
 * A search token for an index kept at rest (the hub index, lib/store.c): BLAKE2b-256 over msg,
 * keyed with a subkey of key, index_key = BLAKE2b-256(key = key, "liaison.v1.index-key\0").
 * The same key and msg always give the same token, so equal terms can be found by equality;
 * without the key a token says nothing about msg (and cannot be tested against guesses).
 * 0, LIA_ERR_INVALID (NULL argument) or LIA_ERR_CRYPTO.
 */
int lia_symkey_index_token(const lia_symkey_t *key, const uint8_t *msg, size_t len,
                           uint8_t out[LIA_INDEX_TOKEN_BYTES]) LIA_WUR;

#endif
