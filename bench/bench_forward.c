/*
 * Baseline for the end-to-end benchmark: raw ZeroMQ CURVE forwarding through a ROUTER with
 * the project's ZAP admission, no storage, no envelope cryptography. One sender (DEALER)
 * sends 1 KiB messages that the server forwards to one receiver (DEALER), each on its own
 * thread, all on 127.0.0.1. Prints one JSON line. Usage: bench_forward [messages]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "error.h"
#include "transport.h"
#include "vault.h"

static lia_identity_t *srv_id, *a_id, *b_id;
static lia_server_t *srv;
static size_t total;
static volatile int done;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int admit(void *arg, const uint8_t key[32], char node_id[LIA_NODE_ID_MAX + 1])
{
    (void)arg;
    if (sodium_memcmp(key, lia_identity_transport_pk(a_id), 32) == 0)
        strcpy(node_id, "sender");
    else if (sodium_memcmp(key, lia_identity_transport_pk(b_id), 32) == 0)
        strcpy(node_id, "receiver");
    else
        return LIA_ERR_PERMISSION;
    return 0;
}

/* Forwards everything from "sender" to "receiver" once the receiver has said hello. */
static void *serve(void *arg)
{
    lia_peer receiver;
    int have_receiver = 0;
    (void)arg;
    while (!done) {
        lia_peer p;
        uint8_t *d = NULL;
        size_t len;
        if (lia_server_recv(srv, 100, &p, &d, &len) != 0)
            continue;
        if (strcmp(p.node_id, "receiver") == 0) {
            receiver = p;
            have_receiver = 1;
        } else if (have_receiver) {
            while (lia_server_send(srv, &receiver, d, len) == LIA_ERR_LIMIT)
                ;
        }
        free(d);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    lia_transport_opts o = {.max_msg = 1u << 20, .sndhwm = 100000, .rcvhwm = 100000};
    lia_client_t *a, *b;
    pthread_t t;
    uint8_t msg[1024];
    uint8_t *d;
    size_t len, got = 0;
    double t0, t1;

    total = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    if (lia_vault_init() || lia_identity_generate(LIA_SECRET_NODE, "broker", &srv_id) ||
        lia_identity_generate(LIA_SECRET_NODE, "sender", &a_id) ||
        lia_identity_generate(LIA_SECRET_NODE, "receiver", &b_id) ||
        lia_server_new(srv_id, "tcp://127.0.0.1:*", &o, admit, NULL, &srv))
        return 1;
    if (pthread_create(&t, NULL, serve, NULL) != 0)
        return 1;
    if (lia_client_new(b_id, lia_server_endpoint(srv), lia_identity_transport_pk(srv_id), &o, &b) ||
        lia_client_new(a_id, lia_server_endpoint(srv), lia_identity_transport_pk(srv_id), &o, &a))
        return 1;
    /* The receiver announces itself until the server has seen it (first forwarded message). */
    randombytes_buf(msg, sizeof msg);
    for (;;) {
        if (lia_client_send(b, (const uint8_t *)"hi", 2) != 0)
            continue;
        if (lia_client_send(a, msg, sizeof msg) != 0)
            continue;
        if (lia_client_recv(b, 200, &d, &len) == 0) {
            free(d);
            break;
        }
    }
    t0 = now_s();
    size_t sent = 0;
    while (got < total) {
        while (sent < total && sent - got < 5000 && lia_client_send(a, msg, sizeof msg) == 0)
            sent++;
        while (lia_client_recv(b, sent - got >= 5000 ? 100 : 0, &d, &len) == 0) {
            free(d);
            got++;
        }
    }
    t1 = now_s();
    printf("{\"bench\":\"zmq_curve_forward\",\"payload_bytes\":%zu,\"messages\":%zu,"
           "\"seconds\":%.3f,\"forwarded_per_s\":%.0f}\n",
           sizeof msg, got, t1 - t0, (double)got / (t1 - t0));
    done = 1;
    pthread_join(t, NULL);
    lia_client_destroy(&a);
    lia_client_destroy(&b);
    lia_server_destroy(&srv);
    lia_identity_destroy(&srv_id);
    lia_identity_destroy(&a_id);
    lia_identity_destroy(&b_id);
    return 0;
}
