/*
 * libFuzzer target: revocation lists, parsed against a fixed authority (seed 32 x 0x42, public
 * half only) and decoded without verification so that entry checks are reached too.
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
    sodium_memzero(sk, sizeof sk);
    done = 1;
}

static void walk(const lia_crl_t *crl)
{
    lia_crl_entry_info e;
    uint64_t prev = 0, at;

    for (size_t i = 0; i < lia_crl_count(crl); i++) {
        if (lia_crl_entry(crl, i, &e) != 0 || e.serial <= prev)
            __builtin_trap();
        if (!lia_crl_lookup(crl, e.serial, &at) || at != e.revoked_at)
            __builtin_trap();
        prev = e.serial;
    }
    (void)lia_crl_lookup(crl, prev + 1, &at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_crl_t *crl = NULL;

    init();
    if (lia_crl_parse(data, size, &auth, &crl) == 0)
        walk(crl);
    lia_crl_destroy(&crl);
    if (lia_crl_decode_unverified(data, size, &crl) == 0)
        walk(crl);
    lia_crl_destroy(&crl);
    return 0;
}
