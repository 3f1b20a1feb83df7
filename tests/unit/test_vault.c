/* Unit tests for the vault: key files, passphrases, key wrapping, symmetric keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "error.h"
#include "testutil.h"
#include "vault.h"

#include "liaison/v1/identity.pb-c.h"

static const char pass[] = "correct horse battery staple";
#define PASS_ARGS pass, sizeof pass - 1

static int setup(void **state)
{
    (void)state;
    return lia_vault_init() == 0 ? 0 : -1;
}

static void save_load(lia_secret_kind kind, const char *name, int with_pass)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    lia_identity_t *id = NULL, *back = NULL;
    struct stat st;

    assert_int_equal(lia_identity_generate(kind, name, &id), 0);
    assert_int_equal(lia_identity_save(id, path, with_pass ? pass : NULL,
                                       with_pass ? sizeof pass - 1 : 0, LIA_KDF_INTERACTIVE),
                     0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lia_identity_load(path, kind, with_pass ? pass : NULL,
                                       with_pass ? sizeof pass - 1 : 0, &back),
                     0);
    assert_int_equal(lia_identity_kind(back), kind);
    assert_string_equal(lia_identity_name(back), name);
    assert_memory_equal(lia_identity_sign_pk(back), lia_identity_sign_pk(id), 32);
    if (kind == LIA_SECRET_NODE) {
        assert_memory_equal(lia_identity_enc_pk(back), lia_identity_enc_pk(id), 32);
        assert_memory_equal(lia_identity_transport_pk(back), lia_identity_transport_pk(id), 32);
    }
    /* The loaded key signs verifiably with the original public key. */
    {
        uint8_t sig[LIA_SIGNATURE_BYTES];
        assert_int_equal(lia_identity_sign(back, (const uint8_t *)"m", 1, sig), 0);
        assert_int_equal(
            crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, lia_identity_sign_pk(id)), 0);
    }
    lia_identity_destroy(&id);
    lia_identity_destroy(&back);
    assert_null(back);
}

static void test_round_trip(void **state)
{
    (void)state;
    save_load(LIA_SECRET_NODE, "fr-cp", 0);
    save_load(LIA_SECRET_NODE, "fr-cp", 1);
    save_load(LIA_SECRET_AUTHORITY, "Network Authority", 0);
    save_load(LIA_SECRET_AUTHORITY, "Network Authority", 1);
}

static void test_excl(void **state)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    lia_identity_t *id = NULL;
    uint8_t *buf;
    size_t len;
    struct stat st;

    (void)state;
    tu_write_file(path, "keep me", 7, 0600);
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "n1", &id), 0);
    assert_int_equal(lia_identity_save(id, path, NULL, 0, LIA_KDF_INTERACTIVE), LIA_ERR_EXISTS);
    buf = tu_read_file(path, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "keep me", 7);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    free(buf);
    lia_identity_destroy(&id);
}

static void test_permissions(void **state)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    lia_identity_t *id = NULL, *back = NULL;
    static const unsigned modes[] = {0640, 0604, 0660, 0644, 0610};

    (void)state;
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "n1", &id), 0);
    assert_int_equal(lia_identity_save(id, path, NULL, 0, LIA_KDF_INTERACTIVE), 0);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        assert_int_equal(lia_identity_load(path, LIA_SECRET_NODE, NULL, 0, &back),
                         LIA_ERR_PERMISSION);
        assert_null(back);
    }
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(lia_identity_load(path, LIA_SECRET_NODE, NULL, 0, &back), 0);
    lia_identity_destroy(&back);
    lia_identity_destroy(&id);
}

static void test_passphrase(void **state)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    lia_identity_t *id = NULL, *back = NULL;

    (void)state;
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "auth", &id), 0);
    assert_int_equal(lia_identity_save(id, path, PASS_ARGS, LIA_KDF_INTERACTIVE), 0);
    assert_int_equal(lia_identity_load(path, LIA_SECRET_AUTHORITY, "wrong", 5, &back),
                     LIA_ERR_PASSPHRASE);
    assert_null(back);
    assert_int_equal(lia_identity_load(path, LIA_SECRET_AUTHORITY, NULL, 0, &back),
                     LIA_ERR_PASSPHRASE);
    /* Only a prefix of the right passphrase is still wrong. */
    assert_int_equal(lia_identity_load(path, LIA_SECRET_AUTHORITY, pass, sizeof pass - 2, &back),
                     LIA_ERR_PASSPHRASE);
    assert_null(back);
    lia_identity_destroy(&id);
}

static void test_wrong_kind(void **state)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    lia_identity_t *id = NULL, *back = NULL;

    (void)state;
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "auth", &id), 0);
    assert_int_equal(lia_identity_save(id, path, NULL, 0, LIA_KDF_INTERACTIVE), 0);
    assert_int_equal(lia_identity_load(path, LIA_SECRET_NODE, NULL, 0, &back), LIA_ERR_WRONG_KIND);
    assert_null(back);
    assert_int_equal(lia_identity_load(path, 0, NULL, 0, &back), 0); /* any kind */
    assert_int_equal(lia_identity_kind(back), LIA_SECRET_AUTHORITY);
    lia_identity_destroy(&back);
    lia_identity_destroy(&id);
}

/* Every truncation of a valid file and some garbage are refused without crashing. */
static void check_truncations(int with_pass)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    const char *cut = tu_path(dir, "cut.key");
    lia_identity_t *id = NULL, *back = NULL;
    uint8_t *buf;
    size_t len;

    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "n1", &id), 0);
    assert_int_equal(lia_identity_save(id, path, with_pass ? pass : NULL,
                                       with_pass ? sizeof pass - 1 : 0, LIA_KDF_INTERACTIVE),
                     0);
    buf = tu_read_file(path, &len);
    for (size_t n = 0; n < len; n++) {
        int rc;
        tu_write_file(cut, buf, n, 0600);
        rc = lia_identity_load(cut, LIA_SECRET_NODE, with_pass ? pass : NULL,
                               with_pass ? sizeof pass - 1 : 0, &back);
        assert_true(rc < 0);
        assert_null(back);
    }
    for (int i = 0; i < 50; i++) {
        uint8_t junk[200];
        size_t jl = 1 + randombytes_uniform(sizeof junk);
        randombytes_buf(junk, jl);
        tu_write_file(cut, junk, jl, 0600);
        assert_true(lia_identity_load(cut, 0, PASS_ARGS, &back) < 0);
        assert_null(back);
    }
    free(buf);
    lia_identity_destroy(&id);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    check_truncations(0);
    check_truncations(1);
}

/* Rewrites the KDF parameters of a sealed file and expects a refusal. */
static void test_doctored_kdf(void **state)
{
    const char *dir = tu_mkdtemp("vault");
    const char *path = tu_path(dir, "id.key");
    const char *bad = tu_path(dir, "bad.key");
    lia_identity_t *id = NULL, *back = NULL;
    uint8_t *buf, *out;
    size_t len, olen;
    Liaison__V1__SecretFile *f;

    (void)state;
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "n1", &id), 0);
    assert_int_equal(lia_identity_save(id, path, PASS_ARGS, LIA_KDF_INTERACTIVE), 0);
    buf = tu_read_file(path, &len);
    for (int variant = 0; variant < 5; variant++) {
        f = liaison__v1__secret_file__unpack(NULL, len, buf);
        assert_non_null(f);
        assert_non_null(f->kdf);
        switch (variant) {
        case 0:
            f->kdf->memlimit = UINT64_C(1) << 40;
            break; /* 1 TiB */
        case 1:
            f->kdf->opslimit = 1000000;
            break;
        case 2:
            f->kdf->algorithm = 1;
            break; /* Argon2i */
        case 3:
            f->kdf->salt.len = 8;
            break;
        default:
            f->kdf->opslimit = 0;
            break;
        }
        olen = liaison__v1__secret_file__get_packed_size(f);
        out = malloc(olen);
        assert_non_null(out);
        liaison__v1__secret_file__pack(f, out);
        tu_write_file(bad, out, olen, 0600);
        assert_int_equal(lia_identity_load(bad, LIA_SECRET_NODE, PASS_ARGS, &back), LIA_ERR_DECODE);
        assert_null(back);
        free(out);
        liaison__v1__secret_file__free_unpacked(f, NULL);
    }
    free(buf);
    lia_identity_destroy(&id);
}

static void test_wrap_unwrap(void **state)
{
    lia_identity_t *alice = NULL, *bob = NULL, *auth = NULL;
    lia_symkey_t *k = NULL, *got = NULL;
    lia_wrapper_t *w = NULL;
    uint8_t wrapped[LIA_WRAPPED_BYTES];
    static const uint8_t ad[] = "channel 7 epoch 3";
    static const uint8_t nonce[LIA_NONCE_BYTES] = {1};
    uint8_t ct[5 + LIA_AEAD_TAG_BYTES], pt[5];

    (void)state;
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "alice", &alice), 0);
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "bob", &bob), 0);
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "auth", &auth), 0);
    assert_int_equal(lia_symkey_generate(&k), 0);
    assert_int_equal(lia_wrapper_new(&w), 0);
    assert_int_equal(lia_wrapper_wrap(w, k, lia_identity_enc_pk(alice), ad, sizeof ad, wrapped), 0);

    assert_int_equal(lia_identity_unwrap(alice, lia_wrapper_pk(w), ad, sizeof ad, wrapped, &got),
                     0);
    /* The unwrapped key decrypts what the original encrypts. */
    assert_int_equal(lia_symkey_encrypt(k, nonce, ad, sizeof ad, (const uint8_t *)"hello", 5, ct),
                     0);
    assert_int_equal(lia_symkey_decrypt(got, nonce, ad, sizeof ad, ct, sizeof ct, pt), 0);
    assert_memory_equal(pt, "hello", 5);
    lia_symkey_destroy(&got);

    assert_int_equal(
        lia_identity_unwrap(alice, lia_wrapper_pk(w), ad, sizeof ad - 1, wrapped, &got),
        LIA_ERR_DECRYPT);
    assert_null(got);
    assert_int_equal(lia_identity_unwrap(bob, lia_wrapper_pk(w), ad, sizeof ad, wrapped, &got),
                     LIA_ERR_DECRYPT);
    assert_null(got);
    assert_int_equal(lia_identity_unwrap(auth, lia_wrapper_pk(w), ad, sizeof ad, wrapped, &got),
                     LIA_ERR_INVALID);
    wrapped[3] ^= 1;
    assert_int_equal(lia_identity_unwrap(alice, lia_wrapper_pk(w), ad, sizeof ad, wrapped, &got),
                     LIA_ERR_DECRYPT);
    assert_null(got);
    lia_wrapper_destroy(&w);
    lia_symkey_destroy(&k);
    lia_identity_destroy(&alice);
    lia_identity_destroy(&bob);
    lia_identity_destroy(&auth);
}

static void test_symkey(void **state)
{
    lia_symkey_t *k = NULL, *other = NULL;
    static const uint8_t nonce[LIA_NONCE_BYTES] = {9};
    static const uint8_t ad[] = "ad";
    const uint8_t msg[] = "case alert";
    uint8_t ct[sizeof msg + LIA_AEAD_TAG_BYTES], pt[sizeof msg];

    (void)state;
    assert_int_equal(lia_symkey_generate(&k), 0);
    assert_int_equal(lia_symkey_generate(&other), 0);
    assert_int_equal(lia_symkey_encrypt(k, nonce, ad, sizeof ad, msg, sizeof msg, ct), 0);
    assert_int_equal(lia_symkey_decrypt(k, nonce, ad, sizeof ad, ct, sizeof ct, pt), 0);
    assert_memory_equal(pt, msg, sizeof msg);
    assert_int_equal(lia_symkey_decrypt(other, nonce, ad, sizeof ad, ct, sizeof ct, pt),
                     LIA_ERR_DECRYPT);
    assert_int_equal(lia_symkey_decrypt(k, nonce, ad, 1, ct, sizeof ct, pt), LIA_ERR_DECRYPT);
    assert_int_equal(lia_symkey_decrypt(k, nonce, ad, sizeof ad, ct, 10, pt), LIA_ERR_DECRYPT);
    for (size_t i = 0; i < sizeof ct; i++) {
        ct[i] ^= 0x40;
        assert_int_equal(lia_symkey_decrypt(k, nonce, ad, sizeof ad, ct, sizeof ct, pt),
                         LIA_ERR_DECRYPT);
        ct[i] ^= 0x40;
    }
    lia_symkey_destroy(&k);
    lia_symkey_destroy(&other);
    assert_null(k);
}

static void test_generate_invalid(void **state)
{
    lia_identity_t *id = NULL;
    char longname[200];

    (void)state;
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "", &id), LIA_ERR_INVALID);
    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, longname, &id), LIA_ERR_INVALID);
    assert_int_equal(lia_identity_generate((lia_secret_kind)7, "x", &id), LIA_ERR_INVALID);
    assert_null(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_excl),
        cmocka_unit_test(test_permissions),  cmocka_unit_test(test_passphrase),
        cmocka_unit_test(test_wrong_kind),   cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_doctored_kdf), cmocka_unit_test(test_wrap_unwrap),
        cmocka_unit_test(test_symkey),       cmocka_unit_test(test_generate_invalid),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
