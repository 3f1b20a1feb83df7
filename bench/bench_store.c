/*
 * Store throughput with real fsyncs (wall clock): broker appends of 1 KiB envelopes to 1 and 4
 * recipients in groups of 1, 64 and 512 per commit; fetch and ack of the streams; node outbox
 * add+ack and inbox add (payload encrypted at rest). Each configuration runs for about
 * `seconds` on a fresh file in dir. Prints one JSON object per configuration; not a test.
 * Usage: bench_store [dir] [seconds]   (dir must exist and be on the disk to measure)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "error.h"
#include "store.h"
#include "vault.h"

#define ENV_BYTES 1024
#define N_NODES   64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench_store: %s: %s\n", what, lia_strerror(rc));
        exit(1);
    }
}

static const char *fresh(const char *dir, const char *name)
{
    static char path[4096];
    char aux[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    snprintf(aux, sizeof aux, "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s-shm", path);
    unlink(aux);
    return path;
}

static void report(const char *bench, int recipients, int group, uint64_t n, double secs)
{
    printf("{\"bench\":\"%s\",\"recipients\":%d,\"group\":%d,\"bytes\":%d,\"n\":%llu,"
           "\"seconds\":%.3f,\"per_s\":%.0f}\n",
           bench, recipients, group, ENV_BYTES, (unsigned long long)n, secs, (double)n / secs);
    fflush(stdout);
}

static char node_names[N_NODES][16];
static const char *nodes[N_NODES];

/* Appends for about `seconds`, then (if measure_fetch) fetches and acks every stream. */
static void bench_append(const char *dir, int k, int group, double seconds, int measure_fetch)
{
    uint8_t env[ENV_BYTES], id[LIA_MESSAGE_ID_BYTES];
    lia_bstore_item *items;
    const char *rcpt[4];
    lia_bstore_t *s;
    uint64_t n = 0, fetched = 0, next = 0;
    double t0, t;
    int dup;

    randombytes_buf(env, sizeof env);
    check(lia_bstore_open(fresh(dir, "bench-bstore.db"), &s), "open");
    t0 = now();
    do {
        check(lia_bstore_begin(s), "begin");
        for (int i = 0; i < group; i++) {
            randombytes_buf(id, sizeof id);
            for (int j = 0; j < k; j++)
                rcpt[j] = nodes[(next + (uint64_t)j) % N_NODES];
            next++;
            check(lia_bstore_append(s, id, "sender", env, sizeof env, rcpt, (size_t)k, &dup),
                  "append");
        }
        check(lia_bstore_commit(s), "commit");
        n += (uint64_t)group;
        t = now() - t0;
    } while (t < seconds);
    report("bstore_append", k, group, n, t);

    if (measure_fetch) {
        items = calloc(256, sizeof *items);
        if (!items)
            exit(1);
        t0 = now();
        for (int j = 0; j < N_NODES; j++) {
            uint64_t after = 0;
            size_t got;
            do {
                check(lia_bstore_fetch(s, nodes[j], after, 256, items, &got), "fetch");
                if (got)
                    after = items[got - 1].seq;
                fetched += got;
                lia_bstore_items_free(items, got);
            } while (got);
        }
        t = now() - t0;
        report("bstore_fetch", k, 256, fetched, t);
        /* Ack every stream in steps of 256, one commit per step (collects the envelopes). */
        t0 = now();
        fetched = 0;
        for (int j = 0; j < N_NODES; j++) {
            uint64_t cur, head;
            check(lia_bstore_cursor(s, nodes[j], &cur, &head), "cursor");
            for (uint64_t a = 256; a < head + 256; a += 256) {
                uint64_t to = a < head ? a : head;
                check(lia_bstore_begin(s), "begin");
                check(lia_bstore_ack(s, nodes[j], to), "ack");
                check(lia_bstore_commit(s), "commit");
                fetched += to - (a - 256);
            }
        }
        t = now() - t0;
        report("bstore_ack", k, 256, fetched, t);
        free(items);
    }
    lia_bstore_close(&s);
}

static void bench_outbox(const char *dir, const lia_symkey_t *key, int group, double seconds)
{
    uint8_t env[ENV_BYTES], (*ids)[LIA_MESSAGE_ID_BYTES];
    lia_nstore_t *s;
    uint64_t n = 0;
    double t0, t;

    ids = calloc((size_t)group, LIA_MESSAGE_ID_BYTES);
    if (!ids)
        exit(1);
    randombytes_buf(env, sizeof env);
    check(lia_nstore_open(fresh(dir, "bench-nstore.db"), key, &s), "open");
    t0 = now();
    do {
        check(lia_nstore_begin(s), "begin");
        for (int i = 0; i < group; i++) {
            randombytes_buf(ids[i], LIA_MESSAGE_ID_BYTES);
            check(lia_nstore_outbox_add(s, ids[i], env, sizeof env, NULL), "outbox add");
        }
        check(lia_nstore_commit(s), "commit");
        check(lia_nstore_begin(s), "begin");
        for (int i = 0; i < group; i++)
            check(lia_nstore_outbox_ack(s, ids[i]), "outbox ack");
        check(lia_nstore_commit(s), "commit");
        n += (uint64_t)group;
        t = now() - t0;
    } while (t < seconds);
    report("nstore_outbox_add_ack", 1, group, n, t);
    lia_nstore_close(&s);
    free(ids);
}

static void bench_inbox(const char *dir, const lia_symkey_t *key, int group, double seconds)
{
    uint8_t payload[ENV_BYTES];
    lia_nstore_msg m;
    lia_nstore_t *s;
    uint64_t n = 0;
    double t0, t;

    memset(&m, 0, sizeof m);
    randombytes_buf(payload, sizeof payload);
    strcpy(m.sender, "node-007");
    strcpy(m.channel, "case-2024-0001");
    m.payload = payload;
    m.payload_len = sizeof payload;
    check(lia_nstore_open(fresh(dir, "bench-nstore.db"), key, &s), "open");
    t0 = now();
    do {
        check(lia_nstore_begin(s), "begin");
        for (int i = 0; i < group; i++) {
            n++;
            m.delivery_seq = n;
            m.sender_seq = n;
            m.created_at_ms = m.received_at_ms = 1700000000000ull + n;
            randombytes_buf(m.message_id, sizeof m.message_id);
            check(lia_nstore_inbox_add(s, &m), "inbox add");
        }
        check(lia_nstore_commit(s), "commit");
        t = now() - t0;
    } while (t < seconds);
    report("nstore_inbox_add", 1, group, n, t);
    lia_nstore_close(&s);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    const int groups[] = {1, 64, 512};
    lia_symkey_t *key;

    check(lia_vault_init(), "init");
    if (seconds <= 0)
        seconds = 2.0;
    for (int i = 0; i < N_NODES; i++) {
        snprintf(node_names[i], sizeof node_names[i], "node-%03d", i);
        nodes[i] = node_names[i];
    }
    for (int k = 1; k <= 4; k += 3)
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            bench_append(dir, k, groups[g], seconds, groups[g] == 512);
    check(lia_symkey_generate(&key), "key");
    bench_outbox(dir, key, 1, seconds);
    bench_outbox(dir, key, 64, seconds);
    bench_inbox(dir, key, 1, seconds);
    bench_inbox(dir, key, 64, seconds);
    lia_symkey_destroy(&key);
    unlink(fresh(dir, "bench-bstore.db"));
    unlink(fresh(dir, "bench-nstore.db"));
    return 0;
}
