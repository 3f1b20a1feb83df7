/*
 * libFuzzer target: certificates. Each input is parsed against a fixed authority (key pair
 * from a fixed seed; only its public half is used here) and decoded without verification, so
 * that the body checks are reached too. Seeds in tests/fuzz/corpus/cert/ are signed by that
 * authority (seed: 32 bytes of 0x42).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lia_authority_info auth;

static void init(void)
{
    static int done;
    uint8_t seed[32], sk[64];

    if (done)
        return;
    if (sodium_init() < 0)
        __builtin_trap();
    memset(seed, 0x42, sizeof seed);
    crypto_sign_seed_keypair(auth.sign_pk, sk, seed);
    lia_key_id(auth.sign_pk, auth.key_id);
    strcpy(auth.name, "Fuzz Authority");
    sodium_memzero(sk, sizeof sk);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_cert_info c;
    char fpr[LIA_FINGERPRINT_CHARS];

    init();
    if (lia_cert_parse(data, size, &auth, &c) == 0) {
        if (c.serial == 0 || c.not_before >= c.not_after || !lia_node_id_valid(c.node_id))
            __builtin_trap();
        (void)lia_cert_check_time(&c, c.not_before);
        lia_node_fingerprint(&c, fpr);
    }
    if (lia_cert_decode_unverified(data, size, &c) == 0) {
        if (!lia_node_id_valid(c.node_id) || strlen(c.country) != 2)
            __builtin_trap();
    }
    return 0;
}
