/*
 * The vault: secret keys in guarded memory and every operation that needs their bytes.
 * See vault.h for the contract and docs/protocol.md for the exact constructions (key file
 * sealing, key wrapping).
 */
#include "vault.h"
#include "error.h"
#include "file.h"

#include <string.h>
#include <stdlib.h>

#include <sodium.h>

#include "liaison/v1/identity.pb-c.h"

#define SECRET_FILE_MAX    4096
#define SIGN_SK_BYTES      64
#define ENC_SK_BYTES       32
#define TRANSPORT_SK_BYTES 32
#define SEC_BYTES          (SIGN_SK_BYTES + ENC_SK_BYTES + TRANSPORT_SK_BYTES)
/* Guarded scratch for key agreement (shared secret, key-encryption key), allocated with the
 * keys: a sodium_malloc per wrap or unwrap costs several system calls and page faults, which
 * dominated the cost of a key grant to many members (bench/bench_epoch). Wiped after each use. */
#define SCRATCH_BYTES  (crypto_scalarmult_BYTES + LIA_SYMKEY_BYTES)
#define NAME_MAX_BYTES 128
#define KDF_SALT_BYTES 16

static const char wrap_label[] = "liaison.v1.wrap"; /* hashed with its NUL */
static const char secretfile_label[] = "liaison.v1.secretfile";

struct lia_identity {
    lia_secret_kind kind;
    char name[NAME_MAX_BYTES + 1];
    uint8_t sign_pk[32];
    uint8_t enc_pk[32];
    uint8_t transport_pk[32];
    uint8_t *sec; /* sodium_malloc: sign_sk(64) | enc_sk(32) | transport_sk(32) | scratch */
};

struct lia_symkey {
    uint8_t *k; /* sodium_malloc(32) */
};

struct lia_wrapper {
    uint8_t pk[32];
    uint8_t *sk; /* sodium_malloc: sk(32) | scratch */
};

#define SIGN_SK(id)      ((id)->sec)
#define ENC_SK(id)       ((id)->sec + SIGN_SK_BYTES)
#define TRANSPORT_SK(id) ((id)->sec + SIGN_SK_BYTES + ENC_SK_BYTES)
#define ID_SCRATCH(id)   ((id)->sec + SEC_BYTES)

/* protobuf-c allocator that keeps decoded secret bundles in guarded memory. */
static void *secure_alloc(void *data, size_t size)
{
    (void)data;
    return sodium_malloc(size ? size : 1);
}

static void secure_free(void *data, void *ptr)
{
    (void)data;
    sodium_free(ptr); /* sodium_free wipes before unmapping and accepts NULL */
}

static ProtobufCAllocator secure_allocator = {secure_alloc, secure_free, NULL};

int lia_vault_init(void)
{
    return sodium_init() < 0 ? LIA_ERR_CRYPTO : 0;
}

static lia_identity_t *identity_alloc(lia_secret_kind kind, const char *name)
{
    lia_identity_t *id;
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > NAME_MAX_BYTES)
        return NULL;
    id = calloc(1, sizeof *id);
    if (!id)
        return NULL;
    id->sec = sodium_malloc(SEC_BYTES + SCRATCH_BYTES);
    if (!id->sec) {
        free(id);
        return NULL;
    }
    sodium_memzero(id->sec, SEC_BYTES + SCRATCH_BYTES);
    id->kind = kind;
    memcpy(id->name, name, n);
    return id;
}

void lia_identity_destroy(lia_identity_t **p)
{
    if (!p || !*p)
        return;
    sodium_free((*p)->sec);
    sodium_memzero(*p, sizeof **p);
    free(*p);
    *p = NULL;
}

int lia_identity_generate(lia_secret_kind kind, const char *name, lia_identity_t **out)
{
    lia_identity_t *id;

    *out = NULL;
    if (kind != LIA_SECRET_AUTHORITY && kind != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    id = identity_alloc(kind, name);
    if (!id)
        return name && *name && strlen(name) <= NAME_MAX_BYTES ? LIA_ERR_NOMEM : LIA_ERR_INVALID;
    if (crypto_sign_keypair(id->sign_pk, SIGN_SK(id)) != 0)
        goto fail;
    if (kind == LIA_SECRET_NODE) {
        if (crypto_box_keypair(id->enc_pk, ENC_SK(id)) != 0)
            goto fail;
        if (crypto_box_keypair(id->transport_pk, TRANSPORT_SK(id)) != 0)
            goto fail;
    }
    *out = id;
    return 0;
fail:
    lia_identity_destroy(&id);
    return LIA_ERR_CRYPTO;
}

lia_secret_kind lia_identity_kind(const lia_identity_t *id)
{
    return id->kind;
}

const char *lia_identity_name(const lia_identity_t *id)
{
    return id->name;
}

const uint8_t *lia_identity_sign_pk(const lia_identity_t *id)
{
    return id->sign_pk;
}

const uint8_t *lia_identity_enc_pk(const lia_identity_t *id)
{
    return id->enc_pk;
}

const uint8_t *lia_identity_transport_pk(const lia_identity_t *id)
{
    return id->transport_pk;
}

static void kdf_limits(lia_kdf_strength s, uint64_t *ops, uint64_t *mem)
{
    switch (s) {
    case LIA_KDF_INTERACTIVE:
        *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
        break;
    case LIA_KDF_SENSITIVE:
        *ops = crypto_pwhash_OPSLIMIT_SENSITIVE;
        *mem = crypto_pwhash_MEMLIMIT_SENSITIVE;
        break;
    default:
        *ops = crypto_pwhash_OPSLIMIT_MODERATE;
        *mem = crypto_pwhash_MEMLIMIT_MODERATE;
        break;
    }
}

/* Bounds on KDF parameters read from a file, so a doctored file cannot ask for 1 TiB. */
static int kdf_params_ok(const Liaison__V1__PassphraseKdf *kdf)
{
    return kdf->algorithm == crypto_pwhash_ALG_ARGON2ID13 && kdf->opslimit >= 1 &&
           kdf->opslimit <= 32 && kdf->memlimit >= 8192 && kdf->memlimit <= (2ULL << 30) &&
           kdf->salt.len == KDF_SALT_BYTES;
}

static int derive_file_key(const char *pass, size_t pass_len, const Liaison__V1__PassphraseKdf *kdf,
                           uint8_t *key)
{
    if (crypto_pwhash(key, LIA_SYMKEY_BYTES, pass, pass_len, kdf->salt.data, kdf->opslimit,
                      (size_t)kdf->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return LIA_ERR_NOMEM; /* libsodium fails here only when it cannot get the memory */
    return 0;
}

static void file_ad(lia_secret_kind kind, uint8_t ad[sizeof secretfile_label + 1])
{
    memcpy(ad, secretfile_label, sizeof secretfile_label);
    ad[sizeof secretfile_label] = (uint8_t)kind;
}

int lia_identity_save(const lia_identity_t *id, const char *path, const char *passphrase,
                      size_t passphrase_len, lia_kdf_strength strength)
{
    Liaison__V1__SecretBundle bundle = LIAISON__V1__SECRET_BUNDLE__INIT;
    Liaison__V1__SecretFile file = LIAISON__V1__SECRET_FILE__INIT;
    Liaison__V1__PassphraseKdf kdf = LIAISON__V1__PASSPHRASE_KDF__INIT;
    uint8_t salt[KDF_SALT_BYTES], nonce[LIA_NONCE_BYTES];
    uint8_t ad[sizeof secretfile_label + 1];
    uint8_t *plain = NULL, *sealed = NULL, *key = NULL, *out = NULL;
    size_t plain_len, out_len;
    int rc = LIA_ERR_NOMEM;

    bundle.kind = (Liaison__V1__SecretKind)id->kind;
    bundle.sign_sk.data = SIGN_SK(id);
    bundle.sign_sk.len = SIGN_SK_BYTES;
    if (id->kind == LIA_SECRET_NODE) {
        bundle.enc_sk.data = ENC_SK(id);
        bundle.enc_sk.len = ENC_SK_BYTES;
        bundle.transport_sk.data = TRANSPORT_SK(id);
        bundle.transport_sk.len = TRANSPORT_SK_BYTES;
    }
    bundle.name = (char *)id->name;
    plain_len = liaison__v1__secret_bundle__get_packed_size(&bundle);
    plain = sodium_malloc(plain_len + 1);
    if (!plain)
        goto fail;
    liaison__v1__secret_bundle__pack(&bundle, plain);

    file.version = 1;
    file.kind = (Liaison__V1__SecretKind)id->kind;
    if (passphrase) {
        sealed = sodium_malloc(plain_len + LIA_AEAD_TAG_BYTES);
        key = sodium_malloc(LIA_SYMKEY_BYTES);
        if (!sealed || !key)
            goto fail;
        randombytes_buf(salt, sizeof salt);
        randombytes_buf(nonce, sizeof nonce);
        kdf.algorithm = crypto_pwhash_ALG_ARGON2ID13;
        kdf_limits(strength, &kdf.opslimit, &kdf.memlimit);
        kdf.salt.data = salt;
        kdf.salt.len = sizeof salt;
        if ((rc = derive_file_key(passphrase, passphrase_len, &kdf, key)) != 0)
            goto fail;
        file_ad(id->kind, ad);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, NULL, plain, plain_len, ad,
                                                       sizeof ad, NULL, nonce, key) != 0) {
            rc = LIA_ERR_CRYPTO;
            goto fail;
        }
        file.kdf = &kdf;
        file.nonce.data = nonce;
        file.nonce.len = sizeof nonce;
        file.bundle.data = sealed;
        file.bundle.len = plain_len + LIA_AEAD_TAG_BYTES;
    } else {
        file.bundle.data = plain;
        file.bundle.len = plain_len;
    }
    out_len = liaison__v1__secret_file__get_packed_size(&file);
    out = sodium_malloc(out_len + 1);
    rc = LIA_ERR_NOMEM;
    if (!out)
        goto fail;
    liaison__v1__secret_file__pack(&file, out);
    rc = lia_file_write_atomic(path, out, out_len, 0600, LIA_FILE_EXCL);
fail:
    sodium_free(plain);
    sodium_free(sealed);
    sodium_free(key);
    sodium_free(out);
    return rc;
}

/* Checks a decoded bundle and copies it into a new identity. */
static int identity_from_bundle(const Liaison__V1__SecretBundle *b, lia_secret_kind kind,
                                lia_identity_t **out)
{
    uint8_t pk[32];
    uint8_t *sk2 = NULL;
    lia_identity_t *id = NULL;
    int rc = LIA_ERR_DECODE;

    if ((lia_secret_kind)b->kind != kind || b->sign_sk.len != SIGN_SK_BYTES || !b->name ||
        b->base.n_unknown_fields != 0)
        goto fail;
    if (kind == LIA_SECRET_NODE &&
        (b->enc_sk.len != ENC_SK_BYTES || b->transport_sk.len != TRANSPORT_SK_BYTES))
        goto fail;
    if (kind == LIA_SECRET_AUTHORITY && (b->enc_sk.len != 0 || b->transport_sk.len != 0))
        goto fail;
    id = identity_alloc(kind, b->name);
    if (!id)
        goto fail;
    /* Recompute the public key from the seed: a file whose halves disagree is corrupt. */
    sk2 = sodium_malloc(SIGN_SK_BYTES);
    if (!sk2) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    if (crypto_sign_seed_keypair(pk, sk2, b->sign_sk.data) != 0 ||
        sodium_memcmp(sk2, b->sign_sk.data, SIGN_SK_BYTES) != 0)
        goto fail;
    memcpy(SIGN_SK(id), b->sign_sk.data, SIGN_SK_BYTES);
    memcpy(id->sign_pk, pk, 32);
    if (kind == LIA_SECRET_NODE) {
        memcpy(ENC_SK(id), b->enc_sk.data, ENC_SK_BYTES);
        memcpy(TRANSPORT_SK(id), b->transport_sk.data, TRANSPORT_SK_BYTES);
        if (crypto_scalarmult_base(id->enc_pk, ENC_SK(id)) != 0 ||
            crypto_scalarmult_base(id->transport_pk, TRANSPORT_SK(id)) != 0)
            goto fail;
    }
    sodium_free(sk2);
    *out = id;
    return 0;
fail:
    sodium_free(sk2);
    lia_identity_destroy(&id);
    return rc;
}

int lia_identity_load(const char *path, lia_secret_kind wanted, const char *passphrase,
                      size_t passphrase_len, lia_identity_t **out)
{
    uint8_t *raw = NULL, *plain = NULL, *key = NULL;
    size_t raw_len = 0, plain_len = 0;
    uint8_t ad[sizeof secretfile_label + 1];
    Liaison__V1__SecretFile *file = NULL;
    Liaison__V1__SecretBundle *bundle = NULL;
    int rc;

    *out = NULL;
    if ((rc = lia_file_check_private(path)) != 0)
        return rc;
    if ((rc = lia_file_read(path, SECRET_FILE_MAX, LIA_FILE_SECURE, &raw, &raw_len)) != 0)
        return rc;
    rc = LIA_ERR_DECODE;
    file = liaison__v1__secret_file__unpack(&secure_allocator, raw_len, raw);
    if (!file || file->base.n_unknown_fields != 0)
        goto fail;
    if (file->version != 1) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    if (file->kind != LIAISON__V1__SECRET_KIND__SECRET_KIND_AUTHORITY &&
        file->kind != LIAISON__V1__SECRET_KIND__SECRET_KIND_NODE)
        goto fail;
    if (wanted && (lia_secret_kind)file->kind != wanted) {
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (file->kdf) {
        if (!kdf_params_ok(file->kdf) || file->nonce.len != LIA_NONCE_BYTES ||
            file->bundle.len < LIA_AEAD_TAG_BYTES)
            goto fail;
        if (!passphrase) {
            rc = LIA_ERR_PASSPHRASE;
            goto fail;
        }
        key = sodium_malloc(LIA_SYMKEY_BYTES);
        plain_len = file->bundle.len - LIA_AEAD_TAG_BYTES;
        plain = sodium_malloc(plain_len + 1);
        if (!key || !plain) {
            rc = LIA_ERR_NOMEM;
            goto fail;
        }
        if ((rc = derive_file_key(passphrase, passphrase_len, file->kdf, key)) != 0)
            goto fail;
        file_ad((lia_secret_kind)file->kind, ad);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, file->bundle.data,
                                                       file->bundle.len, ad, sizeof ad,
                                                       file->nonce.data, key) != 0) {
            rc = LIA_ERR_PASSPHRASE;
            goto fail;
        }
        bundle = liaison__v1__secret_bundle__unpack(&secure_allocator, plain_len, plain);
    } else {
        if (file->nonce.len != 0)
            goto fail;
        bundle = liaison__v1__secret_bundle__unpack(&secure_allocator, file->bundle.len,
                                                    file->bundle.data);
    }
    rc = LIA_ERR_DECODE;
    if (!bundle)
        goto fail;
    rc = identity_from_bundle(bundle, (lia_secret_kind)file->kind, out);
fail:
    if (bundle)
        liaison__v1__secret_bundle__free_unpacked(bundle, &secure_allocator);
    if (file)
        liaison__v1__secret_file__free_unpacked(file, &secure_allocator);
    sodium_free(plain);
    sodium_free(key);
    sodium_free(raw);
    return rc;
}

int lia_identity_sign(const lia_identity_t *id, const uint8_t *msg, size_t len,
                      uint8_t sig[LIA_SIGNATURE_BYTES])
{
    return crypto_sign_detached(sig, NULL, msg, len, SIGN_SK(id)) == 0 ? 0 : LIA_ERR_CRYPTO;
}

/*
 * kek = BLAKE2b-256(key = X25519(a, B), msg = "liaison.v1.wrap\0" || eph_pk || recipient_pk).
 * Fails on a low-order recipient key (all-zero shared secret).
 */
/*
 * kek = BLAKE2b-256(key = X25519(sk, peer_pk), label || eph_pk || recipient_pk), through the
 * caller's guarded scratch (SCRATCH_BYTES): the shared secret is wiped before returning, the
 * kek (at scratch + crypto_scalarmult_BYTES) is the caller's to wipe.
 */
static int wrap_kek(const uint8_t *sk, const uint8_t peer_pk[32], const uint8_t eph_pk[32],
                    const uint8_t recipient_pk[32], uint8_t *scratch)
{
    crypto_generichash_state st;
    uint8_t *shared = scratch, *kek = scratch + crypto_scalarmult_BYTES;
    int rc = LIA_ERR_CRYPTO;

    if (crypto_scalarmult(shared, sk, peer_pk) != 0)
        goto fail;
    if (crypto_generichash_init(&st, shared, crypto_scalarmult_BYTES, LIA_SYMKEY_BYTES) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)wrap_label, sizeof wrap_label) != 0 ||
        crypto_generichash_update(&st, eph_pk, 32) != 0 ||
        crypto_generichash_update(&st, recipient_pk, 32) != 0 ||
        crypto_generichash_final(&st, kek, LIA_SYMKEY_BYTES) != 0)
        goto fail;
    rc = 0;
fail:
    sodium_memzero(&st, sizeof st);
    sodium_memzero(shared, crypto_scalarmult_BYTES);
    return rc;
}

static const uint8_t zero_nonce[LIA_NONCE_BYTES];

int lia_identity_unwrap(const lia_identity_t *id, const uint8_t eph_pk[32], const uint8_t *ad,
                        size_t ad_len, const uint8_t wrapped[LIA_WRAPPED_BYTES], lia_symkey_t **out)
{
    uint8_t *kek = ID_SCRATCH(id) + crypto_scalarmult_BYTES;
    lia_symkey_t *k = NULL;
    int rc;

    *out = NULL;
    if (id->kind != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    if ((rc = wrap_kek(ENC_SK(id), eph_pk, eph_pk, id->enc_pk, ID_SCRATCH(id))) != 0)
        goto fail;
    if ((rc = lia_symkey_generate(&k)) != 0)
        goto fail;
    /* The kek is unique to (ephemeral key, recipient), so a fixed nonce is never reused. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(k->k, NULL, NULL, wrapped, LIA_WRAPPED_BYTES, ad,
                                                   ad_len, zero_nonce, kek) != 0) {
        rc = LIA_ERR_DECRYPT;
        goto fail;
    }
    *out = k;
    k = NULL;
fail:
    lia_symkey_destroy(&k);
    sodium_memzero(kek, LIA_SYMKEY_BYTES);
    return rc;
}

int lia_identity_transport_sk(const lia_identity_t *id, uint8_t out[32])
{
    if (id->kind != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    memcpy(out, TRANSPORT_SK(id), TRANSPORT_SK_BYTES);
    return 0;
}

int lia_identity_storage_key(const lia_identity_t *id, lia_symkey_t **out)
{
    static const char label[] = "liaison.v1.storage";
    lia_symkey_t *k;
    int rc = lia_symkey_generate(&k);

    *out = NULL;
    if (rc != 0)
        return rc;
    /* The Ed25519 secret key starts with its 32-byte seed. */
    if (crypto_generichash(k->k, LIA_SYMKEY_BYTES, (const uint8_t *)label, sizeof label,
                           SIGN_SK(id), 32) != 0) {
        lia_symkey_destroy(&k);
        return LIA_ERR_CRYPTO;
    }
    *out = k;
    return 0;
}

int lia_symkey_generate(lia_symkey_t **out)
{
    lia_symkey_t *k = calloc(1, sizeof *k);

    *out = NULL;
    if (!k)
        return LIA_ERR_NOMEM;
    k->k = sodium_malloc(LIA_SYMKEY_BYTES);
    if (!k->k) {
        free(k);
        return LIA_ERR_NOMEM;
    }
    crypto_aead_xchacha20poly1305_ietf_keygen(k->k);
    *out = k;
    return 0;
}

void lia_symkey_destroy(lia_symkey_t **p)
{
    if (!p || !*p)
        return;
    sodium_free((*p)->k);
    free(*p);
    *p = NULL;
}

int lia_symkey_encrypt(const lia_symkey_t *key, const uint8_t nonce[LIA_NONCE_BYTES],
                       const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *ct)
{
    return crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, pt, pt_len, ad, ad_len, NULL, nonce,
                                                      key->k) == 0
               ? 0
               : LIA_ERR_CRYPTO;
}

int lia_symkey_decrypt(const lia_symkey_t *key, const uint8_t nonce[LIA_NONCE_BYTES],
                       const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t ct_len,
                       uint8_t *pt)
{
    if (ct_len < LIA_AEAD_TAG_BYTES)
        return LIA_ERR_DECRYPT;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, ct_len, ad, ad_len, nonce,
                                                      key->k) == 0
               ? 0
               : LIA_ERR_DECRYPT;
}

int lia_symkey_seal(const lia_symkey_t *kek, const lia_symkey_t *key, const uint8_t *ad,
                    size_t ad_len, uint8_t out[LIA_SEALED_KEY_BYTES])
{
    randombytes_buf(out, LIA_NONCE_BYTES);
    return crypto_aead_xchacha20poly1305_ietf_encrypt(out + LIA_NONCE_BYTES, NULL, key->k,
                                                      LIA_SYMKEY_BYTES, ad, ad_len, NULL, out,
                                                      kek->k) == 0
               ? 0
               : LIA_ERR_CRYPTO;
}

int lia_symkey_unseal(const lia_symkey_t *kek, const uint8_t in[LIA_SEALED_KEY_BYTES],
                      const uint8_t *ad, size_t ad_len, lia_symkey_t **out)
{
    lia_symkey_t *k;
    int rc = lia_symkey_generate(&k);

    *out = NULL;
    if (rc != 0)
        return rc;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(k->k, NULL, NULL, in + LIA_NONCE_BYTES,
                                                   LIA_WRAPPED_BYTES, ad, ad_len, in,
                                                   kek->k) != 0) {
        lia_symkey_destroy(&k);
        return LIA_ERR_DECRYPT;
    }
    *out = k;
    return 0;
}

int lia_wrapper_new(lia_wrapper_t **out)
{
    lia_wrapper_t *w = calloc(1, sizeof *w);

    *out = NULL;
    if (!w)
        return LIA_ERR_NOMEM;
    w->sk = sodium_malloc(32 + SCRATCH_BYTES);
    if (!w->sk) {
        free(w);
        return LIA_ERR_NOMEM;
    }
    if (crypto_box_keypair(w->pk, w->sk) != 0) {
        lia_wrapper_destroy(&w);
        return LIA_ERR_CRYPTO;
    }
    *out = w;
    return 0;
}

const uint8_t *lia_wrapper_pk(const lia_wrapper_t *w)
{
    return w->pk;
}

int lia_wrapper_wrap(const lia_wrapper_t *w, const lia_symkey_t *key,
                     const uint8_t recipient_pk[32], const uint8_t *ad, size_t ad_len,
                     uint8_t out[LIA_WRAPPED_BYTES])
{
    uint8_t *scratch = w->sk + 32, *kek = scratch + crypto_scalarmult_BYTES;
    int rc;

    if ((rc = wrap_kek(w->sk, recipient_pk, w->pk, recipient_pk, scratch)) == 0 &&
        crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, key->k, LIA_SYMKEY_BYTES, ad, ad_len,
                                                   NULL, zero_nonce, kek) != 0)
        rc = LIA_ERR_CRYPTO;
    sodium_memzero(kek, LIA_SYMKEY_BYTES);
    return rc;
}

void lia_wrapper_destroy(lia_wrapper_t **p)
{
    if (!p || !*p)
        return;
    sodium_free((*p)->sk);
    free(*p);
    *p = NULL;
}

/* Keyed BLAKE2b under a subkey of key (see vault.h); the subkey lives on the stack only for
 * the call and is wiped. */
int lia_symkey_index_token(const lia_symkey_t *key, const uint8_t *msg, size_t len,
                           uint8_t out[LIA_INDEX_TOKEN_BYTES])
{
    static const char label[] = "liaison.v1.index-key";
    uint8_t sub[crypto_generichash_KEYBYTES];
    int rc = 0;

    if (!key || !key->k || !out || (!msg && len))
        return LIA_ERR_INVALID;
    if (crypto_generichash(sub, sizeof sub, (const uint8_t *)label, sizeof label, key->k,
                           LIA_SYMKEY_BYTES) != 0 ||
        crypto_generichash(out, LIA_INDEX_TOKEN_BYTES, msg, len, sub, sizeof sub) != 0)
        rc = LIA_ERR_CRYPTO;
    sodium_memzero(sub, sizeof sub);
    return rc;
}
