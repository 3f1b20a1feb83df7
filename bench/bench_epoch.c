/*
 * Cost of a key epoch change in a channel of N members (N = 5, 30, 100 by default): the owner
 * signs a RemoveMember change; every member verifies and applies it; each remaining sender
 * starts a new epoch by handing a fresh key to the remaining members in its next envelope
 * (one X25519 wrap per member), and each member unwraps its key when it opens that envelope.
 * Prints one JSON object per channel size with CPU microseconds per operation (one core) and
 * bytes on the wire; not a test. Usage: bench_epoch [iterations] [sizes...]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench_common.h"
#include "envelope.h"
#include "error.h"
#include "membership.h"

#define PROG        "bench_epoch"
#define MEMBERS_MAX 1000
#define CHANNEL     "case:bench-epoch"

static int everyone(void *arg, const char *channel, const char *node)
{
    (void)arg;
    (void)channel;
    (void)node;
    return 1;
}

/* Seals one 1 KiB envelope to the channel, with a key grant to grant[0..n_grant). */
static lia_buf seal_one(lia_identity_t *sender, const char *sender_id, const lia_symkey_t *key,
                        uint64_t epoch, uint64_t now_ms, const lia_cert_info *const *grant,
                        size_t n_grant, const uint8_t *payload)
{
    lia_seal_item it;
    lia_buf out;

    memset(&it, 0, sizeof it);
    it.dest.channel = CHANNEL;
    it.epoch = epoch;
    it.seq = 1;
    it.created_at_ms = now_ms;
    it.key = key;
    it.grant = grant;
    it.n_grant = n_grant;
    it.payload = payload;
    it.payload_len = 1024;
    bench_check(PROG, lia_envelope_seal_batch(sender, sender_id, &it, 1, &out), "seal");
    return out;
}

static void run(size_t n, size_t iters, lia_identity_t *auth, const lia_authority_info *ai,
                uint64_t now)
{
    static char ids[MEMBERS_MAX][24];
    lia_identity_t **idn = calloc(n, sizeof *idn);
    lia_cert_info *ci = calloc(n, sizeof *ci);
    const char **members = calloc(n, sizeof *members);
    const lia_cert_info **grant = calloc(n, sizeof *grant);
    lia_trust_t *trust;
    lia_membership_t *reg;
    uint8_t *create, *change, *chain, payload[1024];
    size_t create_len, change_len, chain_len, n_grant = 0;
    uint64_t now_ms = now * 1000;
    double t0, sign_us, apply_us, seal_grant_us, seal_plain_us, open_grant_us;
    lia_buf with, without;

    if (!idn || !ci || !members || !grant) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    randombytes_buf(payload, sizeof payload);
    bench_check(PROG, lia_trust_new(ai, &trust), "trust");
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "n%03zu", i);
        idn[i] = bench_node(PROG, auth, ai, ids[i], now, trust, &ci[i]);
        members[i] = ids[i];
    }
    /* The owner n000 opens the channel with everyone, then removes n001. */
    bench_check(PROG, lia_membership_new(trust, &reg), "registry");
    bench_check(PROG,
                lia_membership_create(reg, idn[0], ids[0], CHANNEL, members, n, 0, "", now_ms - 10,
                                      &create, &create_len),
                "create");
    bench_check(PROG, lia_membership_apply(reg, create, create_len, now_ms), "apply create");
    bench_check(PROG, lia_membership_export(reg, CHANNEL, &chain, &chain_len), "export");

    t0 = bench_cpu_now();
    for (size_t k = 0; k < iters; k++) {
        bench_check(PROG,
                    lia_membership_remove(reg, idn[0], ids[0], CHANNEL, ids[1], now_ms, &change,
                                          &change_len),
                    "remove");
        free(change);
    }
    sign_us = (bench_cpu_now() - t0) * 1e6 / (double)iters;
    bench_check(
        PROG,
        lia_membership_remove(reg, idn[0], ids[0], CHANNEL, ids[1], now_ms, &change, &change_len),
        "remove");

    /* A member verifies and applies the change (registry set up outside the clock). */
    apply_us = 0;
    for (size_t k = 0; k < iters; k++) {
        lia_membership_t *m;
        bench_check(PROG, lia_membership_new(trust, &m), "registry");
        bench_check(PROG, lia_membership_import(m, chain, chain_len, now_ms, NULL), "import");
        t0 = bench_cpu_now();
        bench_check(PROG, lia_membership_apply(m, change, change_len, now_ms), "apply remove");
        apply_us += bench_cpu_now() - t0;
        lia_membership_destroy(&m);
    }
    apply_us = apply_us * 1e6 / (double)iters;

    /* A sender (n002) hands a new key to every remaining member but itself. */
    for (size_t i = 0; i < n; i++)
        if (i != 1 && i != 2)
            grant[n_grant++] = &ci[i];
    lia_symkey_t *key;
    bench_check(PROG, lia_symkey_generate(&key), "key");
    t0 = bench_cpu_now();
    for (size_t k = 0; k < iters; k++) {
        lia_buf b = seal_one(idn[2], ids[2], key, 2, now_ms, grant, n_grant, payload);
        free(b.data);
    }
    seal_grant_us = (bench_cpu_now() - t0) * 1e6 / (double)iters;
    t0 = bench_cpu_now();
    for (size_t k = 0; k < iters; k++) {
        lia_buf b = seal_one(idn[2], ids[2], key, 2, now_ms, NULL, 0, payload);
        free(b.data);
    }
    seal_plain_us = (bench_cpu_now() - t0) * 1e6 / (double)iters;
    with = seal_one(idn[2], ids[2], key, 2, now_ms, grant, n_grant, payload);
    without = seal_one(idn[2], ids[2], key, 2, now_ms, NULL, 0, payload);

    /* The last member opens the grant envelope: finds its wrapped key, unwraps, decrypts. */
    open_grant_us = 0;
    for (size_t k = 0; k < iters; k++) {
        lia_opener_t *o;
        lia_opened *m;
        bench_check(PROG, lia_opener_new(trust, idn[n - 1], ids[n - 1], &o), "opener");
        lia_opener_set_membership(o, everyone, NULL);
        t0 = bench_cpu_now();
        bench_check(PROG, lia_opener_open(o, with.data, with.len, now_ms, &m), "open");
        open_grant_us += bench_cpu_now() - t0;
        lia_opened_free(&m);
        lia_opener_destroy(&o);
    }
    open_grant_us = open_grant_us * 1e6 / (double)iters;

    printf("{\"bench\":\"epoch_change\",\"members\":%zu,\"iterations\":%zu,"
           "\"change_bytes\":%zu,\"owner_sign_change_us\":%.1f,\"member_apply_change_us\":%.1f,"
           "\"grant_envelope_bytes\":%zu,\"plain_envelope_bytes\":%zu,\"grant_extra_bytes\":%zu,"
           "\"sender_seal_with_grant_us\":%.1f,\"sender_seal_plain_us\":%.1f,"
           "\"member_open_grant_envelope_us\":%.1f,"
           "\"broker_bytes_out_change\":%zu,\"broker_bytes_out_grants_all_senders\":%zu}\n",
           n, iters, change_len, sign_us, apply_us, with.len, without.len, with.len - without.len,
           seal_grant_us, seal_plain_us, open_grant_us,
           /* the change goes to every member before and after it */
           change_len * n,
           /* each of the n - 1 remaining members re-keys: its grant extra to n - 2 others */
           (with.len - without.len) * (n - 1) * (n - 2));
    fflush(stdout);

    free(with.data);
    free(without.data);
    lia_symkey_destroy(&key);
    free(create);
    free(change);
    free(chain);
    lia_membership_destroy(&reg);
    for (size_t i = 0; i < n; i++)
        lia_identity_destroy(&idn[i]);
    lia_trust_destroy(&trust);
    free(idn);
    free(ci);
    free(members);
    free(grant);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {5, 30, 100};
    size_t iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
    lia_identity_t *auth;
    lia_authority_info ai;
    uint8_t *ab;
    size_t al;
    uint64_t now = (uint64_t)time(NULL);

    if (iters == 0)
        iters = 1;
    bench_check(PROG, lia_vault_init(), "init");
    bench_check(PROG, lia_identity_generate(LIA_SECRET_AUTHORITY, "Bench Authority", &auth),
                "authority");
    bench_check(PROG, lia_authority_create(auth, now, &ab, &al), "authority create");
    bench_check(PROG, lia_authority_parse(ab, al, &ai), "authority parse");
    free(ab);
    if (argc > 2) {
        for (int i = 2; i < argc; i++) {
            size_t n = strtoul(argv[i], NULL, 10);
            if (n < 3 || n > MEMBERS_MAX) {
                fprintf(stderr, PROG ": a channel size is 3..%d members\n", MEMBERS_MAX);
                return 64;
            }
            run(n, iters, auth, &ai, now);
        }
    } else {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            run(sizes[i], iters, auth, &ai, now);
    }
    lia_identity_destroy(&auth);
    return 0;
}
