/*
 * Seal and open rates for 1 KiB payloads, per core (single thread), for several batch sizes.
 * Prints one JSON object per configuration; not a test (no pass/fail), figures for notes.
 * Usage: bench_envelope [total_messages] [payload_bytes] [batch]  (default: batches 1 and 64)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench_common.h"
#include "cert.h"
#include "envelope.h"
#include "error.h"
#include "trust.h"
#include "vault.h"

static double cpu_now(void)
{
    return bench_cpu_now();
}

static void check(int rc, const char *what)
{
    bench_check("bench_envelope", rc, what);
}

static int everyone(void *arg, const char *channel, const char *node)
{
    (void)arg;
    (void)channel;
    (void)node;
    return 1;
}

static lia_identity_t *node(lia_identity_t *auth, const lia_authority_info *ai, const char *id,
                            uint64_t now, lia_trust_t *trust, lia_cert_info *ci)
{
    return bench_node("bench_envelope", auth, ai, id, now, trust, ci);
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 64000;
    size_t plen = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    size_t batches[] = {1, 64};
    size_t n_batches = sizeof batches / sizeof batches[0];
    lia_identity_t *auth, *alice, *bob;
    lia_authority_info ai;
    lia_trust_t *trust;
    lia_cert_info ca, cb;
    lia_symkey_t *key;
    uint8_t *ab, *payload;
    size_t al;
    uint64_t now = (uint64_t)time(NULL);

    check(lia_vault_init(), "init");
    check(lia_identity_generate(LIA_SECRET_AUTHORITY, "Bench Authority", &auth), "authority");
    check(lia_authority_create(auth, now, &ab, &al), "authority create");
    check(lia_authority_parse(ab, al, &ai), "authority parse");
    free(ab);
    check(lia_trust_new(&ai, &trust), "trust");
    alice = node(auth, &ai, "fr-ncp", now, trust, &ca);
    bob = node(auth, &ai, "de-ncp", now, trust, &cb);
    check(lia_symkey_generate(&key), "key");
    if (argc > 3) { /* one batch size only, e.g. to profile it */
        batches[0] = strtoul(argv[3], NULL, 10);
        n_batches = 1;
        if (batches[0] == 0 || batches[0] > total)
            check(LIA_ERR_INVALID, "batch size");
    }
    payload = malloc(plen);
    randombytes_buf(payload, plen);

    for (size_t bi = 0; bi < n_batches; bi++) {
        size_t batch = batches[bi], n = total - total % batch;
        lia_buf *out = calloc(n, sizeof *out);
        lia_seal_item *items = calloc(batch, sizeof *items);
        const lia_cert_info *grant[] = {&cb};
        lia_opener_t *op;
        double t0, t1, t2;
        size_t bytes = 0;

        for (size_t i = 0; i < batch; i++) {
            items[i].dest.channel = "case:bench";
            items[i].epoch = 1;
            items[i].created_at_ms = now * 1000;
            items[i].key = key;
            items[i].payload = payload;
            items[i].payload_len = plen;
        }
        t0 = cpu_now();
        for (size_t done = 0; done < n; done += batch) {
            for (size_t i = 0; i < batch; i++) {
                items[i].seq = done + i + 1;
                items[i].grant = done + i == 0 ? grant : NULL;
                items[i].n_grant = done + i == 0 ? 1 : 0;
            }
            check(lia_envelope_seal_batch(alice, "fr-ncp", items, batch, out + done), "seal");
        }
        t1 = cpu_now();
        check(lia_opener_new(trust, bob, "de-ncp", &op), "opener");
        lia_opener_set_membership(op, everyone, NULL);
        for (size_t i = 0; i < n; i++) {
            lia_opened *m;
            check(lia_opener_open(op, out[i].data, out[i].len, now * 1000, &m), "open");
            lia_opened_free(&m);
            bytes += out[i].len;
        }
        t2 = cpu_now();
        printf("{\"bench\":\"envelope\",\"payload_bytes\":%zu,\"batch\":%zu,\"messages\":%zu,"
               "\"envelope_bytes\":%zu,\"seal_per_s\":%.0f,\"open_per_s\":%.0f,"
               "\"seal_us\":%.2f,\"open_us\":%.2f}\n",
               plen, batch, n, bytes / n, (double)n / (t1 - t0), (double)n / (t2 - t1),
               (t1 - t0) * 1e6 / (double)n, (t2 - t1) * 1e6 / (double)n);
        fflush(stdout);
        for (size_t i = 0; i < n; i++)
            free(out[i].data);
        free(out);
        free(items);
        lia_opener_destroy(&op);
    }
    free(payload);
    lia_symkey_destroy(&key);
    lia_identity_destroy(&alice);
    lia_identity_destroy(&bob);
    lia_identity_destroy(&auth);
    lia_trust_destroy(&trust);
    return 0;
}
