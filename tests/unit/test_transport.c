/*
 * Transport: CURVE server and clients in-process over tcp://127.0.0.1 (ephemeral ports), the
 * ZAP handler's decisions, size bounds, rebind. No sleeps: every wait is a receive or a poll
 * with a timeout, looping until a condition holds or a deadline passes.
 *
 * The implementation is included (not only linked) so that the ZAP tests can reach the
 * server's private zmq context and send hand-made requests to its handler socket; the library
 * has no test hook. It must come first: it sets _POSIX_C_SOURCE before any system header.
 */
#include "transport.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>

#define DEADLINE_MS 10000
#define QUIET_MS    300

/* ------------------------------------------------------------------------------------------ */
/* Admission table                                                                              */

enum { K_A, K_B, K_BADNAME, K_N };

typedef struct {
    uint8_t key[K_N][32];
    const char *node[K_N];
    int allowed[K_N];
    int admitted[K_N];
    int refused[K_N];
    int unknown_refused; /* keys not in the table */
    int calls;
} keytab;

static struct {
    lia_identity_t *server, *id[K_N], *stranger;
    keytab tab;
} g;

static int admit(void *arg, const uint8_t client_key[32], char node_id[LIA_NODE_ID_MAX + 1])
{
    keytab *t = arg;

    t->calls++;
    for (int i = 0; i < K_N; i++) {
        if (memcmp(t->key[i], client_key, 32) != 0)
            continue;
        if (!t->allowed[i]) {
            t->refused[i]++;
            return LIA_ERR_REVOKED;
        }
        t->admitted[i]++;
        snprintf(node_id, LIA_NODE_ID_MAX + 1, "%s", t->node[i]);
        return 0;
    }
    t->unknown_refused++;
    return LIA_ERR_UNKNOWN_SENDER;
}

static int group_setup(void **state)
{
    static const char *names[K_N] = {"node-a", "node-b", "Not A Node Id"};
    (void)state;
    lia_log_set_level(LIA_LOG_NOTICE);
    if (lia_vault_init() != 0 || lia_identity_generate(LIA_SECRET_NODE, "srv", &g.server) != 0 ||
        lia_identity_generate(LIA_SECRET_NODE, "stranger", &g.stranger) != 0)
        return -1;
    for (int i = 0; i < K_N; i++) {
        if (lia_identity_generate(LIA_SECRET_NODE, names[i], &g.id[i]) != 0)
            return -1;
        memcpy(g.tab.key[i], lia_identity_transport_pk(g.id[i]), 32);
        g.tab.node[i] = names[i];
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    lia_identity_destroy(&g.server);
    lia_identity_destroy(&g.stranger);
    for (int i = 0; i < K_N; i++)
        lia_identity_destroy(&g.id[i]);
    return 0;
}

/* Every test starts with a, b and the bad-name entry allowed and all counters at zero. */
static int reset(void **state)
{
    (void)state;
    for (int i = 0; i < K_N; i++) {
        g.tab.allowed[i] = 1;
        g.tab.admitted[i] = g.tab.refused[i] = 0;
    }
    g.tab.unknown_refused = g.tab.calls = 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */

static lia_transport_opts opts(size_t max_msg)
{
    lia_transport_opts o = {max_msg, 1000, 3000, 0, 0};
    return o;
}

static lia_server_t *server_start(size_t max_msg)
{
    lia_transport_opts o = opts(max_msg);
    lia_server_t *s = NULL;

    assert_int_equal(lia_server_new(g.server, "tcp://127.0.0.1:*", &o, admit, &g.tab, &s), 0);
    assert_non_null(s);
    return s;
}

static lia_client_t *client_start(const lia_identity_t *id, lia_server_t *s, size_t max_msg)
{
    lia_transport_opts o = opts(max_msg);
    lia_client_t *c = NULL;

    assert_int_equal(
        lia_client_new(id, lia_server_endpoint(s), lia_identity_transport_pk(g.server), &o, &c), 0);
    return c;
}

static void client_send_str(lia_client_t *c, const char *str)
{
    assert_int_equal(lia_client_send(c, (const uint8_t *)str, strlen(str)), 0);
}

/* Receives one message within the deadline and checks its node id and content. */
static void server_expect(lia_server_t *s, const char *node, const char *str, lia_peer *peer)
{
    uint8_t *data;
    size_t len;

    assert_int_equal(lia_server_recv(s, DEADLINE_MS, peer, &data, &len), 0);
    assert_string_equal(peer->node_id, node);
    assert_int_equal(len, strlen(str));
    assert_memory_equal(data, str, len);
    free(data);
}

static void client_expect(lia_client_t *c, const char *str)
{
    uint8_t *data;
    size_t len;

    assert_int_equal(lia_client_recv(c, DEADLINE_MS, &data, &len), 0);
    assert_int_equal(len, strlen(str));
    assert_memory_equal(data, str, len);
    free(data);
}

/* Serves the server (ZAP included) until *counter >= target, failing if any message arrives
 * or the deadline passes. */
static void server_quiet_until(lia_server_t *s, const int *counter, int target)
{
    int64_t deadline = now_ms() + DEADLINE_MS;
    lia_peer peer;
    uint8_t *data;
    size_t len;

    while (*counter < target) {
        assert_true(now_ms() < deadline);
        assert_int_equal(lia_server_recv(s, 20, &peer, &data, &len), LIA_ERR_LIMIT);
        assert_null(data);
    }
}

/* Nothing arrives for QUIET_MS. */
static void server_quiet(lia_server_t *s)
{
    lia_peer peer;
    uint8_t *data;
    size_t len;

    assert_int_equal(lia_server_recv(s, QUIET_MS, &peer, &data, &len), LIA_ERR_LIMIT);
}

/* ------------------------------------------------------------------------------------------ */
/* Round trips                                                                                  */

static void test_round_trip(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *c = client_start(g.id[K_A], s, 4096);
    lia_peer peer;
    (void)state;

    assert_true(strncmp(lia_server_endpoint(s), "tcp://127.0.0.1:", 16) == 0);
    assert_null(strchr(lia_server_endpoint(s), '*'));
    client_send_str(c, "hello");
    server_expect(s, "node-a", "hello", &peer);
    assert_int_equal(g.tab.admitted[K_A], 1);
    assert_int_equal(lia_server_send(s, &peer, (const uint8_t *)"world", 5), 0);
    client_expect(c, "world");
    /* Empty messages are messages. */
    assert_int_equal(lia_client_send(c, NULL, 0), 0);
    server_expect(s, "node-a", "", &peer);
    /* Size bounds are checked before anything is queued. */
    static uint8_t big[4097];
    assert_int_equal(lia_client_send(c, big, sizeof big), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_server_send(s, &peer, big, sizeof big), LIA_ERR_TOO_LARGE);
    /* ROUTER_MANDATORY: an unknown routing id fails instead of vanishing. */
    lia_peer ghost = peer;
    ghost.routing_id[ghost.routing_id_len - 1] ^= 0x5a;
    assert_int_equal(lia_server_send(s, &ghost, (const uint8_t *)"x", 1), LIA_ERR_NOT_FOUND);
    print_message("ZMQ_ZAP_ENFORCE_DOMAIN accepted by this libzmq: %s\n",
                  s->enforce_domain ? "yes" : "no");
    lia_client_destroy(&c);
    assert_null(c);
    lia_server_destroy(&s);
    assert_null(s);
    lia_client_destroy(NULL);
    lia_server_destroy(NULL);
}

/* Drives the server through its readiness descriptor only: poll, then drain with timeout 0. */
static void test_fd_loop(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *c = client_start(g.id[K_A], s, 4096);
    int64_t deadline = now_ms() + DEADLINE_MS;
    struct pollfd pfd = {lia_server_fd(s), POLLIN, 0};
    lia_peer peer;
    uint8_t *data = NULL;
    size_t len;
    int rc = LIA_ERR_LIMIT;
    (void)state;

    assert_true(pfd.fd >= 0);
    assert_true(lia_client_fd(c) >= 0);
    client_send_str(c, "via fd");
    while (rc == LIA_ERR_LIMIT) {
        assert_true(now_ms() < deadline);
        assert_true(poll(&pfd, 1, 1000) >= 0);
        rc = lia_server_recv(s, 0, &peer, &data, &len);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(peer.node_id, "node-a");
    assert_int_equal(len, 6);
    free(data);
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

static void test_two_clients_two_ids(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *a = client_start(g.id[K_A], s, 4096), *b = client_start(g.id[K_B], s, 4096);
    lia_peer p1, p2, pa, pb;
    uint8_t *d;
    size_t l;
    (void)state;

    client_send_str(a, "same");
    client_send_str(b, "same");
    /* Arrival order between connections is not defined. */
    assert_int_equal(lia_server_recv(s, DEADLINE_MS, &p1, &d, &l), 0);
    free(d);
    assert_int_equal(lia_server_recv(s, DEADLINE_MS, &p2, &d, &l), 0);
    free(d);
    assert_string_not_equal(p1.node_id, p2.node_id);
    pa = strcmp(p1.node_id, "node-a") == 0 ? p1 : p2;
    pb = strcmp(p1.node_id, "node-a") == 0 ? p2 : p1;
    assert_string_equal(pa.node_id, "node-a");
    assert_string_equal(pb.node_id, "node-b");
    assert_false(pa.routing_id_len == pb.routing_id_len &&
                 memcmp(pa.routing_id, pb.routing_id, pa.routing_id_len) == 0);
    assert_int_equal(lia_server_send(s, &pa, (const uint8_t *)"to-a", 4), 0);
    assert_int_equal(lia_server_send(s, &pb, (const uint8_t *)"to-b", 4), 0);
    client_expect(a, "to-a");
    client_expect(b, "to-b");
    lia_client_destroy(&a);
    lia_client_destroy(&b);
    lia_server_destroy(&s);
}

/* ------------------------------------------------------------------------------------------ */
/* Refusals                                                                                     */

static void test_unknown_key_refused(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *c = client_start(g.stranger, s, 4096);
    (void)state;

    client_send_str(c, "let me in");
    server_quiet_until(s, &g.tab.unknown_refused, 1);
    server_quiet(s);
    for (int i = 0; i < K_N; i++)
        assert_int_equal(g.tab.admitted[i], 0);
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

/* A client the admission maps to something that is not a node id is refused too. */
static void test_invalid_node_id_refused(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *c = client_start(g.id[K_BADNAME], s, 4096);
    (void)state;

    client_send_str(c, "hi");
    server_quiet_until(s, &g.tab.admitted[K_BADNAME], 1);
    server_quiet(s);
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

/*
 * A raw libzmq DEALER (NULL or PLAIN mechanism) against the CURVE server: the handshake must
 * fail (seen through the client's socket monitor), nothing is delivered and no admission is
 * ever asked for (the mechanism mismatch stops the handshake before ZAP).
 */
static void raw_mechanism_refused(int plain)
{
    lia_server_t *s = server_start(4096);
    void *ctx = zmq_ctx_new(), *d, *mon;
    int zero = 0, failed = 0, succeeded = 0;
    int64_t deadline = now_ms() + DEADLINE_MS;

    assert_non_null(ctx);
    d = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(d);
    assert_int_equal(zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero), 0);
    if (plain) {
        assert_int_equal(zmq_setsockopt(d, ZMQ_PLAIN_USERNAME, "node-a", 6), 0);
        assert_int_equal(zmq_setsockopt(d, ZMQ_PLAIN_PASSWORD, "secret", 6), 0);
    }
    assert_int_equal(zmq_socket_monitor(d, "inproc://mon", ZMQ_EVENT_ALL), 0);
    mon = zmq_socket(ctx, ZMQ_PAIR);
    assert_non_null(mon);
    assert_int_equal(zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(mon, "inproc://mon"), 0);
    assert_int_equal(zmq_connect(d, lia_server_endpoint(s)), 0);
    assert_int_equal(zmq_send(d, "hello", 5, ZMQ_DONTWAIT), 5);
    while (!failed) {
        zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
        uint8_t ev[6];
        char addr[256];

        assert_true(now_ms() < deadline);
        {
            lia_peer peer;
            uint8_t *data;
            size_t len;

            /* Serve the server (it must deliver nothing), then look at the monitor. */
            assert_int_equal(lia_server_recv(s, 20, &peer, &data, &len), LIA_ERR_LIMIT);
        }
        assert_true(zmq_poll(&it, 1, 20) >= 0);
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        assert_int_equal(zmq_recv(mon, ev, sizeof ev, 0), 6);
        assert_true(zmq_recv(mon, addr, sizeof addr, 0) >= 0);
        uint16_t e = (uint16_t)(ev[0] | ev[1] << 8);
        if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            succeeded = 1;
        if (e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
            e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            failed = 1;
    }
    assert_false(succeeded);
    server_quiet(s);
    assert_int_equal(g.tab.calls, 0);
    assert_int_equal(zmq_socket_monitor(d, NULL, 0), 0);
    assert_int_equal(zmq_close(mon), 0);
    assert_int_equal(zmq_close(d), 0);
    assert_int_equal(zmq_ctx_term(ctx), 0);
    lia_server_destroy(&s);
}

static void test_null_mechanism_refused(void **state)
{
    (void)state;
    raw_mechanism_refused(0);
}

static void test_plain_mechanism_refused(void **state)
{
    (void)state;
    raw_mechanism_refused(1);
}

/* A raw CURVE client with an admitted key sends a multi-part message: reported, dropped, and
 * the connection keeps working. */
static void test_multipart_dropped(void **state)
{
    lia_server_t *s = server_start(4096);
    void *ctx = zmq_ctx_new(), *d;
    uint8_t sk[32], *data;
    size_t len;
    int zero = 0;
    lia_peer peer;
    (void)state;

    assert_non_null(ctx);
    d = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(d);
    assert_int_equal(zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(
        zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, lia_identity_transport_pk(g.server), 32), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, g.tab.key[K_A], 32), 0);
    assert_int_equal(lia_identity_transport_sk(g.id[K_A], sk), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sk, 32), 0);
    sodium_memzero(sk, sizeof sk);
    assert_int_equal(zmq_connect(d, lia_server_endpoint(s)), 0);
    assert_int_equal(zmq_send(d, "one", 3, ZMQ_SNDMORE), 3);
    assert_int_equal(zmq_send(d, "two", 3, ZMQ_SNDMORE), 3);
    assert_int_equal(zmq_send(d, "three", 5, 0), 5);
    assert_int_equal(zmq_send(d, "single", 6, 0), 6);
    assert_int_equal(lia_server_recv(s, DEADLINE_MS, &peer, &data, &len), LIA_ERR_PROTOCOL);
    assert_null(data);
    assert_string_equal(peer.node_id, "node-a");
    server_expect(s, "node-a", "single", &peer);
    assert_int_equal(zmq_close(d), 0);
    assert_int_equal(zmq_ctx_term(ctx), 0);
    lia_server_destroy(&s);
}

/*
 * A client whose own bound is larger sends more than the server's max_msg: libzmq drops the
 * connection before delivery (the client reconnects and passes ZAP again, which is how the
 * test sees it), the server keeps serving another client, and the big client works again.
 */
static void test_oversized_dropped(void **state)
{
    lia_server_t *s = server_start(1024);
    lia_client_t *big = client_start(g.id[K_A], s, 65536);
    lia_client_t *other = client_start(g.id[K_B], s, 1024);
    static uint8_t huge[4096];
    lia_peer peer;
    (void)state;

    client_send_str(big, "first");
    server_expect(s, "node-a", "first", &peer);
    assert_int_equal(g.tab.admitted[K_A], 1);
    assert_int_equal(lia_client_send(big, huge, sizeof huge), 0);
    server_quiet_until(s, &g.tab.admitted[K_A], 2); /* dropped, reconnected, re-admitted */
    client_send_str(other, "still serving");
    server_expect(s, "node-b", "still serving", &peer);
    client_send_str(big, "back");
    server_expect(s, "node-a", "back", &peer);
    server_quiet(s);
    lia_client_destroy(&big);
    lia_client_destroy(&other);
    lia_server_destroy(&s);
}

/* ------------------------------------------------------------------------------------------ */
/* Rebind                                                                                       */

/* Sends "ping" from c until the server receives it from node (messages in flight when the
 * connection was cut are lost: retrying is the outbox's job), ignoring duplicates. Also drives
 * the client, which re-dials from within its own calls. */
static void ping_until_received(lia_server_t *s, lia_client_t *c, const char *node, lia_peer *peer)
{
    int64_t deadline = now_ms() + DEADLINE_MS;
    uint8_t *data;
    size_t len;
    int rc;

    do {
        assert_true(now_ms() < deadline);
        /* LIA_ERR_LIMIT while the client has no connection (refused, before its re-dial). */
        rc = lia_client_send(c, (const uint8_t *)"ping", 4);
        assert_true(rc == 0 || rc == LIA_ERR_LIMIT);
        if (rc == LIA_ERR_LIMIT)
            assert_int_equal(lia_client_recv(c, 0, &data, &len), LIA_ERR_LIMIT);
        rc = lia_server_recv(s, 200, peer, &data, &len);
        if (rc == 0) {
            assert_string_equal(peer->node_id, node);
            assert_memory_equal(data, "ping", 4);
            free(data);
        } else {
            assert_int_equal(rc, LIA_ERR_LIMIT);
        }
    } while (rc != 0);
}

/*
 * libzmq ends a client's session for good on a refused handshake; the client must come back by
 * itself (re-dial with backoff) once the server admits its key.
 */
static void test_refused_then_admitted(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *c;
    lia_peer peer;
    (void)state;

    g.tab.allowed[K_A] = 0;
    c = client_start(g.id[K_A], s, 4096);
    client_send_str(c, "lost");
    /* Refused, re-dialled, refused again: the re-dial happens inside the client's calls. */
    int64_t deadline = now_ms() + DEADLINE_MS;
    uint8_t *data;
    size_t len;
    while (g.tab.refused[K_A] < 2) {
        assert_true(now_ms() < deadline);
        assert_int_equal(lia_client_recv(c, 10, &data, &len), LIA_ERR_LIMIT);
        assert_int_equal(lia_server_recv(s, 10, &peer, &data, &len), LIA_ERR_LIMIT);
    }
    g.tab.allowed[K_A] = 1;
    ping_until_received(s, c, "node-a", &peer);
    assert_int_equal(lia_server_send(s, &peer, (const uint8_t *)"in", 2), 0);
    client_expect(c, "in");
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

/*
 * A message over the client's own max_msg from the server: libzmq drops the connection on the
 * client side (a protocol error, which ends the session); the client re-dials and works again.
 */
static void test_oversized_to_client(void **state)
{
    lia_server_t *s = server_start(65536);
    lia_client_t *c = client_start(g.id[K_A], s, 1024);
    static uint8_t huge[4096];
    lia_peer peer;
    uint8_t *data;
    size_t len;
    (void)state;

    client_send_str(c, "hi");
    server_expect(s, "node-a", "hi", &peer);
    assert_int_equal(lia_server_send(s, &peer, huge, sizeof huge), 0);
    /* Nothing is delivered to the client; it comes back through ZAP. */
    int64_t deadline = now_ms() + DEADLINE_MS;
    while (g.tab.admitted[K_A] < 2) {
        assert_true(now_ms() < deadline);
        assert_int_equal(lia_client_recv(c, 10, &data, &len), LIA_ERR_LIMIT);
        assert_int_equal(lia_server_recv(s, 10, &peer, &data, &len), LIA_ERR_LIMIT);
    }
    ping_until_received(s, c, "node-a", &peer);
    assert_int_equal(lia_server_send(s, &peer, (const uint8_t *)"small", 5), 0);
    client_expect(c, "small");
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

static void test_rebind(void **state)
{
    lia_server_t *s = server_start(4096);
    lia_client_t *a = client_start(g.id[K_A], s, 4096), *b = client_start(g.id[K_B], s, 4096);
    lia_peer pa, pb, old_a;
    char endpoint[ENDPOINT_MAX];
    int fd = lia_server_fd(s);
    uint8_t *data;
    size_t len;
    int64_t deadline;
    (void)state;

    snprintf(endpoint, sizeof endpoint, "%s", lia_server_endpoint(s));
    client_send_str(a, "a1");
    server_expect(s, "node-a", "a1", &pa);
    client_send_str(b, "b1");
    server_expect(s, "node-b", "b1", &pb);
    old_a = pa;

    g.tab.allowed[K_B] = 0; /* b is revoked */
    assert_int_equal(lia_server_rebind(s), 0);
    assert_string_equal(lia_server_endpoint(s), endpoint);
    assert_int_equal(lia_server_fd(s), fd);
    /* The old connections are gone. */
    assert_int_equal(lia_server_send(s, &old_a, (const uint8_t *)"x", 1), LIA_ERR_NOT_FOUND);

    ping_until_received(s, a, "node-a", &pa);
    assert_int_equal(g.tab.admitted[K_A], 2);
    assert_int_equal(lia_server_send(s, &pa, (const uint8_t *)"welcome back", 12), 0);
    client_expect(a, "welcome back");

    /* b keeps knocking and stays out; a's extra pings may still arrive. */
    int sent = lia_client_send(b, (const uint8_t *)"b2", 2);
    assert_true(sent == 0 || sent == LIA_ERR_LIMIT); /* LIMIT once b knows it was refused */
    deadline = now_ms() + DEADLINE_MS;
    while (g.tab.refused[K_B] < 1) {
        int rc = lia_server_recv(s, 20, &pa, &data, &len);

        assert_true(now_ms() < deadline);
        if (rc == 0) {
            assert_string_equal(pa.node_id, "node-a");
            free(data);
        } else {
            assert_int_equal(rc, LIA_ERR_LIMIT);
        }
    }
    while (lia_server_recv(s, QUIET_MS, &pa, &data, &len) == 0) {
        assert_string_equal(pa.node_id, "node-a");
        free(data);
    }
    assert_int_equal(g.tab.admitted[K_B], 1);

    /* A second rebind works as well, and b comes back once allowed again. */
    g.tab.allowed[K_B] = 1;
    assert_int_equal(lia_server_rebind(s), 0);
    ping_until_received(s, b, "node-b", &pb);
    lia_client_destroy(&a);
    lia_client_destroy(&b);
    lia_server_destroy(&s);
}

/* ------------------------------------------------------------------------------------------ */
/* ZAP handler, fed hand-made requests on its socket                                            */

typedef struct {
    const void *data;
    size_t len;
} frame;

#define F(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Sends the frames as one ZAP request, lets the server answer, returns the status code and
 * copies the user id. */
static void zap_ask(lia_server_t *s, void *req, const frame *f, size_t n, char code[4],
                    char user[LIA_NODE_ID_MAX + 1])
{
    char buf[6][256];
    int sizes[6], more = 1, i = 0;
    size_t l = sizeof more;
    lia_peer peer;
    uint8_t *data;
    size_t len;
    zmq_pollitem_t it = {req, 0, ZMQ_POLLIN, 0};

    for (size_t k = 0; k < n; k++)
        assert_int_equal(zmq_send(req, f[k].data, f[k].len, k + 1 < n ? ZMQ_SNDMORE : 0),
                         (int)f[k].len);
    assert_int_equal(lia_server_recv(s, 50, &peer, &data, &len), LIA_ERR_LIMIT);
    assert_int_equal(zmq_poll(&it, 1, DEADLINE_MS), 1);
    while (more) {
        assert_true(i < 6);
        sizes[i] = zmq_recv(req, buf[i], sizeof buf[i] - 1, 0);
        assert_true(sizes[i] >= 0 && sizes[i] < (int)sizeof buf[i]);
        buf[i][sizes[i]] = '\0';
        assert_int_equal(zmq_getsockopt(req, ZMQ_RCVMORE, &more, &l), 0);
        i++;
    }
    assert_int_equal(i, 6);
    assert_string_equal(buf[0], "1.0");
    /* The request id is echoed (when there was one). */
    if (n >= 2) {
        assert_int_equal(sizes[1], (int)f[1].len);
        assert_memory_equal(buf[1], f[1].data, f[1].len);
    }
    assert_int_equal(sizes[2], 3);
    memcpy(code, buf[2], 4);
    assert_true(sizes[4] <= LIA_NODE_ID_MAX);
    memcpy(user, buf[4], (size_t)sizes[4] + 1);
    assert_int_equal(sizes[5], 0);
}

static void test_zap_requests(void **state)
{
    lia_server_t *s = server_start(4096);
    void *req = zmq_socket(s->ctx, ZMQ_REQ);
    int zero = 0;
    char code[4], user[LIA_NODE_ID_MAX + 1];
    static char longaddr[600];
    const uint8_t *ka = g.tab.key[K_A];
    const uint8_t *ku = lia_identity_transport_pk(g.stranger);
    (void)state;

    memset(longaddr, '1', sizeof longaddr);
    assert_non_null(req);
    assert_int_equal(zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(req, ZAP_ENDPOINT), 0);

    const frame ok[] = {F("1.0"), F("7"), F("liaison"), F("10.0.0.1"), F(""), F("CURVE"), {ka, 32}};
    zap_ask(s, req, ok, 7, code, user);
    assert_string_equal(code, "200");
    assert_string_equal(user, "node-a");
    assert_int_equal(g.tab.admitted[K_A], 1);

    struct {
        const char *what;
        frame f[12];
        size_t n;
    } bad[] = {
        {"unknown key", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("CURVE"), {ku, 32}}, 7},
        {"version", {F("2.0"), F("1"), F("liaison"), F("a"), F(""), F("CURVE"), {ka, 32}}, 7},
        {"domain", {F("1.0"), F("1"), F("global"), F("a"), F(""), F("CURVE"), {ka, 32}}, 7},
        {"empty domain", {F("1.0"), F("1"), F(""), F("a"), F(""), F("CURVE"), {ka, 32}}, 7},
        {"NULL", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("NULL")}, 6},
        {"PLAIN",
         {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("PLAIN"), F("node-a"), F("pw")},
         8},
        {"GSSAPI", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("GSSAPI"), F("t")}, 7},
        {"mechanism", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("curve"), {ka, 32}}, 7},
        {"short key", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("CURVE"), {ka, 31}}, 7},
        {"no key", {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("CURVE")}, 6},
        {"two keys",
         {F("1.0"), F("1"), F("liaison"), F("a"), F(""), F("CURVE"), {ka, 32}, {ka, 32}},
         8},
        {"too few frames", {F("1.0"), F("1"), F("liaison")}, 3},
        {"one frame", {F("1.0")}, 1},
        {"too many frames",
         {F("1.0"),
          F("1"),
          F("liaison"),
          F("a"),
          F(""),
          F("CURVE"),
          {ka, 32},
          F(""),
          F(""),
          F(""),
          F(""),
          F("")},
         12},
        {"oversized frame",
         {F("1.0"), F("1"), F("liaison"), {longaddr, sizeof longaddr}, F(""), F("CURVE"), {ka, 32}},
         7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("ZAP case: %s\n", bad[i].what);
        zap_ask(s, req, bad[i].f, bad[i].n, code, user);
        assert_string_equal(code, "400");
        assert_string_equal(user, "");
    }
    /* Only the well-formed CURVE requests reached the admission callback. */
    assert_int_equal(g.tab.calls, 2);
    assert_int_equal(g.tab.admitted[K_A], 1);
    assert_int_equal(g.tab.unknown_refused, 1);

    /* Refused by the callback, or mapped to something that is not a node id. */
    g.tab.allowed[K_A] = 0;
    zap_ask(s, req, ok, 7, code, user);
    assert_string_equal(code, "400");
    const frame badname[] = {
        F("1.0"), F("2"), F("liaison"), F("a"), F(""), F("CURVE"), {g.tab.key[K_BADNAME], 32}};
    zap_ask(s, req, badname, 7, code, user);
    assert_string_equal(code, "400");

    assert_int_equal(zmq_close(req), 0);
    lia_server_destroy(&s);
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments                                                                                    */

static void test_arguments(void **state)
{
    lia_transport_opts o = opts(4096), z = opts(0), hb = opts(4096);
    lia_server_t *s = NULL, *s2 = NULL;
    lia_client_t *c = NULL;
    lia_identity_t *auth = NULL;
    uint8_t key[32] = {0};
    (void)state;

    hb.heartbeat_timeout_ms = -1;
    assert_int_equal(lia_server_new(g.server, "tcp://127.0.0.1:*", &o, NULL, NULL, &s),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_server_new(g.server, "tcp://127.0.0.1:*", &z, admit, &g.tab, &s),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_server_new(g.server, "tcp://127.0.0.1:*", &hb, admit, &g.tab, &s),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_server_new(g.server, "bogus://here", &o, admit, &g.tab, &s),
                     LIA_ERR_INVALID);
    assert_null(s);
    assert_int_equal(lia_identity_generate(LIA_SECRET_AUTHORITY, "auth", &auth), 0);
    assert_int_equal(lia_server_new(auth, "tcp://127.0.0.1:*", &o, admit, &g.tab, &s),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_client_new(auth, "tcp://127.0.0.1:1", key, &o, &c), LIA_ERR_INVALID);
    lia_identity_destroy(&auth);
    assert_int_equal(lia_client_new(g.id[K_A], "tcp://127.0.0.1:1", key, &z, &c), LIA_ERR_INVALID);
    assert_null(c);

    /* A second server on a taken endpoint fails cleanly; the first keeps working. */
    s = server_start(4096);
    assert_int_not_equal(lia_server_new(g.server, lia_server_endpoint(s), &o, admit, &g.tab, &s2),
                         0);
    assert_null(s2);
    c = client_start(g.id[K_A], s, 4096);
    client_send_str(c, "ok");
    lia_peer peer;
    server_expect(s, "node-a", "ok", &peer);
    lia_client_destroy(&c);
    lia_server_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_round_trip, reset),
        cmocka_unit_test_setup(test_fd_loop, reset),
        cmocka_unit_test_setup(test_two_clients_two_ids, reset),
        cmocka_unit_test_setup(test_unknown_key_refused, reset),
        cmocka_unit_test_setup(test_invalid_node_id_refused, reset),
        cmocka_unit_test_setup(test_null_mechanism_refused, reset),
        cmocka_unit_test_setup(test_plain_mechanism_refused, reset),
        cmocka_unit_test_setup(test_multipart_dropped, reset),
        cmocka_unit_test_setup(test_oversized_dropped, reset),
        cmocka_unit_test_setup(test_refused_then_admitted, reset),
        cmocka_unit_test_setup(test_oversized_to_client, reset),
        cmocka_unit_test_setup(test_rebind, reset),
        cmocka_unit_test_setup(test_zap_requests, reset),
        cmocka_unit_test_setup(test_arguments, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
