/*
 * The transport module: CURVE-only ZeroMQ sockets and the project's ZAP handler. It is the only
 * file of the library that includes zmq.h.
 *
 * It uses raw libzmq rather than czmq: czmq's socket option setters assert instead of
 * returning errors, its sockets all live in one process-wide context (so a process could run
 * only one ZAP handler, at one fixed inproc endpoint) and its zsys layer installs signal
 * handlers. Each server and each client owns a private zmq context instead; the server binds
 * its ZAP handler (a REP socket at inproc://zeromq.zap.01) in its context before the ROUTER
 * binds, so libzmq never runs a CURVE handshake with nobody answering ZAP (libzmq would admit
 * everyone then). ZMQ_ZAP_ENFORCE_DOMAIN (a DRAFT option, number 93) is also requested: with
 * it libzmq refuses when the ZAP handler is missing instead of admitting.
 *
 * The ZAP handler is serviced by lia_server_recv's poll loop, on the caller's thread. It parses
 * each request strictly per RFC 27 (ZAP 1.0) and admits only CURVE clients of domain
 * "liaison" whose key the admission callback maps to a node id; the reply carries that node
 * id as the ZAP user id, which libzmq attaches to every message of the connection as the
 * "User-Id" metadata property. lia_server_recv reads the node id from there only.
 *
 * Every libzmq call's result is checked, except zmq_msg_init (documented to always return 0)
 * and zmq_msg_close on messages this file initialised (fails only for an invalid message).
 *
 * Secret keys are copied out of the vault into a stack buffer only to hand them to libzmq and
 * are wiped right after.
 */
#define _POSIX_C_SOURCE 200809L

#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "error.h"
#include "log.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_DOMAIN     "liaison"
#define ZAP_VERSION    "1.0"
#define ZAP_MAX_FRAMES 8   /* a CURVE request has 7; more is malformed */
#define ZAP_FRAME_MAX  512 /* no legitimate request frame is longer */

/* ZMQ_ZAP_ENFORCE_DOMAIN is DRAFT in libzmq 4.3: zmq.h hides its number without the draft
 * API, so it is spelled out here; the option is tried and its absence tolerated. */
#define OPT_ZAP_ENFORCE_DOMAIN 93

#define LINGER_MS            200 /* bound on close: pending messages are dropped after it */
#define RECONNECT_IVL_MS     100
#define RECONNECT_IVL_MAX_MS 5000
#define HEARTBEAT_TTL_MAX_MS 6553599 /* libzmq's limit for ZMQ_HEARTBEAT_TTL */
#define REBIND_WAIT_MS       2000    /* how long rebind waits for the old listener to go */
#define ENDPOINT_MAX         512
#define MONITOR_ENDPOINT     "inproc://liaison.client.monitor" /* private context per client */
#define SERVER_MONITOR_FMT   "inproc://liaison.server.monitor.%u" /* one per ROUTER (rebind) */
#define SERVER_MONITOR_EVENTS                                                                      \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                               \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
#define FD_NAMES_MAX         65536 /* connections named in disconnect logs: fds below this */
#define MONITOR_EVENTS                                                                             \
    (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED |                 \
     ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |                                      \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* Internal result of taking one message from a socket: nothing usable, keep waiting. */
#define TAKE_NONE 1

#define FAST_BURST 64

struct lia_server {
    void *ctx;
    void *zap;    /* REP bound at ZAP_ENDPOINT */
    void *router; /* CURVE server */
    void *mon;    /* PAIR receiving the ROUTER's monitor events (refusals libzmq makes alone) */
    unsigned mon_seq;
    int epfd;     /* epoll over the ZMQ_FDs of zap, router and mon */
    int router_fd, mon_fd;
    char (*fd_node)[LIA_NODE_ID_MAX + 1]; /* node id last seen on each connection's fd */
    size_t fd_cap;
    const lia_identity_t *id; /* borrowed; read again by rebind */
    lia_transport_opts opts;
    lia_admit_fn admit;
    void *arg;
    int enforce_domain; /* 1 if libzmq accepted ZMQ_ZAP_ENFORCE_DOMAIN */
    unsigned burst;     /* messages taken without a poll since the last one */
    char endpoint[ENDPOINT_MAX];
};

struct lia_client {
    void *ctx;
    void *dealer;
    void *mon;   /* PAIR receiving the DEALER's monitor events */
    int epfd;    /* epoll over the ZMQ_FDs of dealer and mon, and tfd */
    int tfd;     /* timerfd: wakes a poll loop when a re-dial is due */
    int suspect; /* the connection dropped and libzmq may not retry: re-dial at redial_at */
    int64_t redial_at;
    long backoff_ms;
    size_t max_msg;
    unsigned burst; /* messages taken without servicing the monitor since the last time */
    char endpoint[ENDPOINT_MAX];
};

/* Maps a libzmq errno to a lia_err. */
static int map_errno(int e)
{
    switch (e) {
    case ENOMEM:
        return LIA_ERR_NOMEM;
    case EAGAIN:
        return LIA_ERR_LIMIT;
    case EHOSTUNREACH:
        return LIA_ERR_NOT_FOUND;
    case EMSGSIZE:
        return LIA_ERR_TOO_LARGE;
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
        return LIA_ERR_INVALID;
    default:
        return LIA_ERR_IO;
    }
}

/* Logs the failed libzmq call `what` with zmq's error text and returns the mapped lia_err. */
static int zerr(const char *what)
{
    int e = zmq_errno();

    log_err("transport: %s: %s", what, zmq_strerror(e));
    return map_errno(e);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline for zmq_poll: -1 when waiting forever, else >= 0. */
static long remaining_ms(int timeout_ms, int64_t deadline)
{
    int64_t left;

    if (timeout_ms < 0)
        return -1;
    left = deadline - now_ms();
    return left > 0 ? (long)left : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int set_int(void *sock, int opt, int v, const char *name)
{
    if (zmq_setsockopt(sock, opt, &v, sizeof v) != 0)
        return zerr(name);
    return 0;
}

static int set_bytes(void *sock, int opt, const void *v, size_t len, const char *name)
{
    if (zmq_setsockopt(sock, opt, v, len) != 0)
        return zerr(name);
    return 0;
}

/* LIA_ERR_INVALID unless the options are usable (see lia_transport_opts). */
static int opts_check(const lia_transport_opts *o)
{
    if (!o || o->max_msg == 0 || (uint64_t)o->max_msg > (uint64_t)INT64_MAX)
        return LIA_ERR_INVALID;
    if (o->heartbeat_ivl_ms < 0 || o->heartbeat_timeout_ms < 0 ||
        o->heartbeat_timeout_ms > HEARTBEAT_TTL_MAX_MS)
        return LIA_ERR_INVALID;
    if (o->sndhwm > INT_MAX || o->rcvhwm > INT_MAX)
        return LIA_ERR_INVALID;
    return 0;
}

/*
 * Applies the options shared by server and client sockets: bounded linger, message size
 * bound, queue bounds and heartbeats. The options must have passed opts_check.
 */
static int apply_common(void *sock, const lia_transport_opts *o)
{
    int64_t max = (int64_t)o->max_msg;
    int rc;

    if ((rc = set_int(sock, ZMQ_LINGER, LINGER_MS, "ZMQ_LINGER")) != 0)
        return rc;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0)
        return zerr("ZMQ_MAXMSGSIZE");
    if (o->sndhwm && (rc = set_int(sock, ZMQ_SNDHWM, (int)o->sndhwm, "ZMQ_SNDHWM")) != 0)
        return rc;
    if (o->rcvhwm && (rc = set_int(sock, ZMQ_RCVHWM, (int)o->rcvhwm, "ZMQ_RCVHWM")) != 0)
        return rc;
    if (o->heartbeat_ivl_ms > 0) {
        rc = set_int(sock, ZMQ_HEARTBEAT_IVL, o->heartbeat_ivl_ms, "ZMQ_HEARTBEAT_IVL");
        if (rc == 0 && o->heartbeat_timeout_ms > 0)
            rc = set_int(sock, ZMQ_HEARTBEAT_TIMEOUT, o->heartbeat_timeout_ms,
                         "ZMQ_HEARTBEAT_TIMEOUT");
        if (rc == 0 && o->heartbeat_timeout_ms > 0)
            rc = set_int(sock, ZMQ_HEARTBEAT_TTL, o->heartbeat_timeout_ms, "ZMQ_HEARTBEAT_TTL");
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Closes *sock (if any) after setting its linger to linger_ms; sets *sock to NULL. */
static void sock_close(void **sock, int linger_ms)
{
    if (!*sock)
        return;
    if (zmq_setsockopt(*sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0)
        log_warn("transport: ZMQ_LINGER on close: %s", zmq_strerror(zmq_errno()));
    if (zmq_close(*sock) != 0)
        log_warn("transport: zmq_close: %s", zmq_strerror(zmq_errno()));
    *sock = NULL;
}

/* Terminates *ctx (if any), retrying when interrupted; sets *ctx to NULL. */
static void ctx_term(void **ctx)
{
    if (!*ctx)
        return;
    while (zmq_ctx_term(*ctx) != 0) {
        if (zmq_errno() != EINTR) {
            log_warn("transport: zmq_ctx_term: %s", zmq_strerror(zmq_errno()));
            break;
        }
    }
    *ctx = NULL;
}

static int sock_fd(void *sock, int *fd)
{
    size_t l = sizeof *fd;

    if (zmq_getsockopt(sock, ZMQ_FD, fd, &l) != 0)
        return zerr("ZMQ_FD");
    return 0;
}

/* Receives and discards the remaining parts of a multi-part message. */
static int drain_parts(void *sock)
{
    zmq_msg_t m;
    int more = 1, rc = 0;

    if (zmq_msg_init(&m) != 0)
        return zerr("zmq_msg_init");
    while (more) {
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            rc = zerr("zmq_msg_recv (drain)");
            break;
        }
        more = zmq_msg_more(&m);
    }
    zmq_msg_close(&m);
    return rc;
}

/* A malloc'd copy of a message body (at least one byte allocated, so never NULL on success). */
static int copy_body(zmq_msg_t *m, uint8_t **data, size_t *len)
{
    size_t n = zmq_msg_size(m);
    uint8_t *buf = malloc(n ? n : 1);

    if (!buf)
        return LIA_ERR_NOMEM;
    if (n)
        memcpy(buf, zmq_msg_data(m), n);
    *data = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ZAP handler                                                                                  */

/* Copies a peer address frame into out as printable ASCII (for logs only). */
static void printable(const zmq_msg_t *m, char *out, size_t cap)
{
    const unsigned char *p = zmq_msg_data((zmq_msg_t *)m);
    size_t n = zmq_msg_size((zmq_msg_t *)m), i;

    for (i = 0; i < n && i + 1 < cap; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[i] = '\0';
    if (i == 0)
        snprintf(out, cap, "?");
}

static int frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);

    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/*
 * Checks a ZAP request of n frames (truncated if more than ZAP_MAX_FRAMES arrived or a frame
 * exceeded ZAP_FRAME_MAX). Returns NULL for a well-formed CURVE request of our domain, with
 * *key pointing at its 32-byte client key; otherwise the reason to refuse it.
 */
static const char *zap_check(zmq_msg_t *f, size_t n, int malformed, const uint8_t **key)
{
    *key = NULL;
    /* version, request id, domain, address, identity, mechanism, credentials... */
    if (malformed || n < 6)
        return "malformed request";
    if (!frame_is(&f[0], ZAP_VERSION))
        return "unsupported ZAP version";
    if (!frame_is(&f[2], ZAP_DOMAIN))
        return "wrong domain";
    if (frame_is(&f[5], "CURVE")) {
        if (n != 7 || zmq_msg_size(&f[6]) != 32)
            return "malformed CURVE credentials";
        *key = zmq_msg_data(&f[6]);
        return NULL;
    }
    if (frame_is(&f[5], "NULL") || frame_is(&f[5], "PLAIN") || frame_is(&f[5], "GSSAPI"))
        return "mechanism refused (CURVE only)";
    return "unknown mechanism";
}

/* Sends the six-frame ZAP reply (version, request id, status code and text, user id, empty
 * metadata). */
static int zap_reply(void *zap, zmq_msg_t *reqid, const char *code, const char *text,
                     const char *user)
{
    const void *rid = reqid ? zmq_msg_data(reqid) : "";
    size_t rid_len = reqid ? zmq_msg_size(reqid) : 0;
    const int more = ZMQ_SNDMORE | ZMQ_DONTWAIT;

    if (zmq_send(zap, ZAP_VERSION, strlen(ZAP_VERSION), more) < 0 ||
        zmq_send(zap, rid, rid_len, more) < 0 || zmq_send(zap, code, strlen(code), more) < 0 ||
        zmq_send(zap, text, strlen(text), more) < 0 ||
        zmq_send(zap, user, strlen(user), more) < 0 || zmq_send(zap, "", 0, ZMQ_DONTWAIT) < 0)
        return zerr("ZAP reply");
    return 0;
}

/*
 * Receives one ZAP request (if any is waiting) and answers it: "200" with the node id as user
 * id when the request is a well-formed CURVE request of our domain and admit accepts the key,
 * "400" with a reason otherwise. Each refusal is logged with the peer address and a short
 * fingerprint of the key (never the key). Returns 0, or a negative lia_err if the handler
 * socket failed.
 */
static int zap_serve(lia_server_t *s)
{
    zmq_msg_t f[ZAP_MAX_FRAMES], extra;
    size_t n = 0;
    int more = 1, malformed = 0, rc = 0;
    char addr[64] = "?", node[LIA_NODE_ID_MAX + 1], fp[LIA_FINGERPRINT_CHARS] = "-";
    const char *reason;
    const uint8_t *key;

    for (size_t i = 0; i < ZAP_MAX_FRAMES; i++)
        zmq_msg_init(&f[i]);
    zmq_msg_init(&extra);
    while (more) {
        zmq_msg_t *m = n < ZAP_MAX_FRAMES ? &f[n] : &extra;

        if (zmq_msg_recv(m, s->zap, ZMQ_DONTWAIT) < 0) {
            if (n == 0 && zmq_errno() == EAGAIN)
                goto done; /* spurious wake-up */
            rc = zerr("ZAP recv");
            goto done;
        }
        more = zmq_msg_more(m);
        if (zmq_msg_size(m) > ZAP_FRAME_MAX || m == &extra)
            malformed = 1;
        if (m != &extra)
            n++;
    }
    if (n >= 4)
        printable(&f[3], addr, sizeof addr);
    reason = zap_check(f, n, malformed, &key);
    if (!reason) {
        lia_fingerprint(key, 32, fp);
        fp[9] = '\0'; /* "xxxx xxxx": enough to correlate, not the key */
        memset(node, 0, sizeof node);
        if (s->admit(s->arg, key, node) != 0) {
            reason = "key not admitted";
        } else {
            node[LIA_NODE_ID_MAX] = '\0';
            if (!lia_node_id_valid(node))
                reason = "admission returned an invalid node id";
        }
    }
    if (reason) {
        log_warn("transport: ZAP refused client %s from %s: %s", fp, addr, reason);
        rc = zap_reply(s->zap, n >= 2 ? &f[1] : NULL, "400", reason, "");
    } else {
        log_info("transport: ZAP admitted node %s (key %s) from %s", node, fp, addr);
        rc = zap_reply(s->zap, &f[1], "200", "OK", node);
    }
done:
    for (size_t i = 0; i < ZAP_MAX_FRAMES; i++)
        zmq_msg_close(&f[i]);
    zmq_msg_close(&extra);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Server                                                                                       */

/*
 * The ROUTER's monitor. libzmq refuses some peers without asking the ZAP handler and without
 * telling the application: a NULL or PLAIN client (mechanism mismatch during the handshake),
 * a malformed handshake, and after admission a message over max_msg (ZMQ_MAXMSGSIZE: the
 * connection is closed). The monitor makes these visible in the log. A disconnection carries
 * no reason in libzmq 4.3, so the log names the node last seen on that connection and the
 * possible causes.
 */
static int server_watch(lia_server_t *s, void *router, void **mon_out, int *fd_out)
{
    char ep[64];
    void *mon;
    int rc;

    *mon_out = NULL;
    *fd_out = -1;
    snprintf(ep, sizeof ep, SERVER_MONITOR_FMT, s->mon_seq++);
    if (zmq_socket_monitor(router, ep, SERVER_MONITOR_EVENTS) != 0)
        return zerr("zmq_socket_monitor");
    mon = zmq_socket(s->ctx, ZMQ_PAIR);
    if (!mon)
        return zerr("zmq_socket(PAIR)");
    if ((rc = set_int(mon, ZMQ_RCVHWM, 0, "ZMQ_RCVHWM")) != 0 ||
        (rc = set_int(mon, ZMQ_LINGER, 0, "ZMQ_LINGER")) != 0)
        goto fail;
    if (zmq_connect(mon, ep) != 0) {
        rc = zerr("zmq_connect(monitor)");
        goto fail;
    }
    if ((rc = sock_fd(mon, fd_out)) != 0)
        goto fail;
    *mon_out = mon;
    return 0;
fail:
    sock_close(&mon, 0);
    return rc;
}

/* Stops a ROUTER's monitor and closes its PAIR (accepts NULLs). */
static void server_unwatch(void *router, void **mon)
{
    if (router && *mon && zmq_socket_monitor(router, NULL, 0) != 0)
        log_warn("transport: stopping the monitor: %s", zmq_strerror(zmq_errno()));
    sock_close(mon, 0);
}

/* Remembers which node a connection (by its fd, from ZMQ_SRCFD) belongs to, for the logs. */
static void fd_note(lia_server_t *s, zmq_msg_t *m, const char *node)
{
    int fd = zmq_msg_get(m, ZMQ_SRCFD);

    if (fd < 0 || fd >= FD_NAMES_MAX)
        return;
    if ((size_t)fd >= s->fd_cap) {
        size_t cap = s->fd_cap ? s->fd_cap : 64;
        char(*p)[LIA_NODE_ID_MAX + 1];

        while (cap <= (size_t)fd)
            cap *= 2;
        p = realloc(s->fd_node, cap * sizeof *p);
        if (!p)
            return; /* only the log loses the name */
        memset(p + s->fd_cap, 0, (cap - s->fd_cap) * sizeof *p);
        s->fd_node = p;
        s->fd_cap = cap;
    }
    if (strcmp(s->fd_node[fd], node) != 0)
        snprintf(s->fd_node[fd], sizeof s->fd_node[fd], "%s", node);
}

static const char *zmtp_error_text(uint32_t v)
{
    switch (v) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch (NULL or PLAIN client; this server is CURVE only)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "CURVE cryptographic error (wrong server key?)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO:
    case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE:
        return "malformed CURVE handshake";
    default:
        return "ZMTP protocol error";
    }
}

/* Logs every pending monitor event of the server's ROUTER. Non-blocking. */
static void server_monitor_drain(lia_server_t *s)
{
    zmq_msg_t m;

    if (!s->mon)
        return;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, s->mon, ZMQ_DONTWAIT) >= 0) {
        uint16_t ev = 0;
        uint32_t val = 0;

        if (zmq_msg_size(&m) == 6) {
            memcpy(&ev, zmq_msg_data(&m), 2);
            memcpy(&val, (const uint8_t *)zmq_msg_data(&m) + 2, 4);
        }
        if (zmq_msg_more(&m) && drain_parts(s->mon) != 0)
            break;
        switch (ev) {
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            log_warn("transport: handshake refused: %s (ZMTP error 0x%x)", zmtp_error_text(val),
                     val);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            /* Typically the client closed first: a NULL or PLAIN client that saw our CURVE
             * greeting, or a client with a wrong server key. */
            log_warn("transport: handshake failed: %s (client gave up: NULL or PLAIN "
                     "mechanism, or a wrong server key?)",
                     zmq_strerror((int)val));
            break;
        case ZMQ_EVENT_DISCONNECTED:
            /* The event may overtake the connection's last messages: a connection that closes
             * right after its first message is not named yet. */
            if ((size_t)val < s->fd_cap && s->fd_node[val][0]) {
                log_info("transport: connection of node %s closed (the node left, missed "
                         "heartbeats, or broke the protocol: e.g. a message over %zu bytes)",
                         s->fd_node[val], s->opts.max_msg);
                s->fd_node[val][0] = '\0';
            } else {
                log_info("transport: a connection closed before any of its messages was "
                         "received (handshake refused, client left, or a message over %zu "
                         "bytes)",
                         s->opts.max_msg);
            }
            break;
        default:
            break;
        }
    }
    zmq_msg_close(&m);
}

/*
 * Creates the server's ROUTER with every option set (CURVE server with the identity's
 * transport key, ZAP domain, mandatory routing, size bound, heartbeats), not yet bound.
 */
static int router_open(lia_server_t *s, void **out)
{
    uint8_t sk[32];
    void *r;
    int rc, one = 1;

    *out = NULL;
    r = zmq_socket(s->ctx, ZMQ_ROUTER);
    if (!r)
        return zerr("zmq_socket(ROUTER)");
    if ((rc = apply_common(r, &s->opts)) != 0)
        goto fail;
    if ((rc = set_int(r, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY")) != 0)
        goto fail;
    if ((rc = set_int(r, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")) != 0)
        goto fail;
    if ((rc = lia_identity_transport_sk(s->id, sk)) != 0)
        goto fail;
    rc = set_bytes(r, ZMQ_CURVE_SECRETKEY, sk, sizeof sk, "ZMQ_CURVE_SECRETKEY");
    sodium_memzero(sk, sizeof sk);
    if (rc != 0)
        goto fail;
    rc = set_bytes(r, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN), "ZMQ_ZAP_DOMAIN");
    if (rc != 0)
        goto fail;
    /* DRAFT option: refuse when no ZAP handler answers. Tolerated if this build lacks it. */
    s->enforce_domain = zmq_setsockopt(r, OPT_ZAP_ENFORCE_DOMAIN, &one, sizeof one) == 0;
    *out = r;
    return 0;
fail:
    sock_close(&r, 0);
    return rc;
}

/*
 * Binds sock at endpoint; while the address is still held (EADDRINUSE: libzmq releases an
 * unbound listener asynchronously in its I/O thread) retries for up to wait_ms.
 */
static int bind_retry(void *sock, const char *endpoint, long wait_ms)
{
    int64_t deadline = now_ms() + wait_ms;
    long pause = 1;

    while (zmq_bind(sock, endpoint) != 0) {
        if (zmq_errno() != EADDRINUSE || now_ms() >= deadline)
            return zerr("zmq_bind");
        sleep_ms(pause);
        if (pause < 64)
            pause *= 2;
    }
    return 0;
}

/* Records the endpoint actually bound (ephemeral port resolved). */
static int read_endpoint(void *sock, char out[ENDPOINT_MAX])
{
    size_t l = ENDPOINT_MAX;

    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &l) != 0)
        return zerr("ZMQ_LAST_ENDPOINT");
    out[ENDPOINT_MAX - 1] = '\0';
    return 0;
}

static int epoll_add(int epfd, int fd)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_err_errno("transport: epoll_ctl(ADD)");
        return LIA_ERR_IO;
    }
    return 0;
}

int lia_server_new(const lia_identity_t *id, const char *endpoint, const lia_transport_opts *o,
                   lia_admit_fn admit, void *arg, lia_server_t **out)
{
    lia_server_t *s = NULL;
    int rc, zap_fd;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    if (!id || !endpoint || !admit || lia_identity_kind(id) != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    if ((rc = opts_check(o)) != 0)
        return rc;
    s = calloc(1, sizeof *s);
    if (!s)
        return LIA_ERR_NOMEM;
    s->epfd = s->mon_fd = -1;
    s->id = id;
    s->opts = *o;
    s->admit = admit;
    s->arg = arg;
    rc = LIA_ERR_NOMEM;
    s->ctx = zmq_ctx_new();
    if (!s->ctx) {
        rc = zerr("zmq_ctx_new");
        goto fail;
    }
    /* The ZAP handler first: once the ROUTER is bound, handshakes may start. */
    s->zap = zmq_socket(s->ctx, ZMQ_REP);
    if (!s->zap) {
        rc = zerr("zmq_socket(REP)");
        goto fail;
    }
    if ((rc = set_int(s->zap, ZMQ_LINGER, 0, "ZMQ_LINGER")) != 0)
        goto fail;
    if (zmq_bind(s->zap, ZAP_ENDPOINT) != 0) {
        rc = zerr("zmq_bind(" ZAP_ENDPOINT ")");
        goto fail;
    }
    if ((rc = router_open(s, &s->router)) != 0)
        goto fail;
    if ((rc = server_watch(s, s->router, &s->mon, &s->mon_fd)) != 0)
        goto fail;
    if (!s->enforce_domain)
        log_notice("transport: libzmq lacks ZMQ_ZAP_ENFORCE_DOMAIN; relying on the bound ZAP "
                   "handler");
    if (zmq_bind(s->router, endpoint) != 0) {
        rc = zerr("zmq_bind");
        log_err("transport: cannot bind %s", endpoint);
        goto fail;
    }
    if ((rc = read_endpoint(s->router, s->endpoint)) != 0)
        goto fail;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        log_err_errno("transport: epoll_create1");
        rc = LIA_ERR_IO;
        goto fail;
    }
    if ((rc = sock_fd(s->zap, &zap_fd)) != 0 || (rc = sock_fd(s->router, &s->router_fd)) != 0)
        goto fail;
    if ((rc = epoll_add(s->epfd, zap_fd)) != 0 || (rc = epoll_add(s->epfd, s->router_fd)) != 0 ||
        (rc = epoll_add(s->epfd, s->mon_fd)) != 0)
        goto fail;
    log_info("transport: server bound at %s", s->endpoint);
    *out = s;
    return 0;
fail:
    lia_server_destroy(&s);
    return rc;
}

void lia_server_destroy(lia_server_t **p)
{
    lia_server_t *s;

    if (!p || !*p)
        return;
    s = *p;
    server_unwatch(s->router, &s->mon);
    sock_close(&s->router, LINGER_MS); /* first: no new ZAP requests after this */
    sock_close(&s->zap, 0);
    if (s->epfd >= 0)
        close(s->epfd);
    ctx_term(&s->ctx);
    free(s->fd_node);
    free(s);
    *p = NULL;
}

const char *lia_server_endpoint(const lia_server_t *s)
{
    return s ? s->endpoint : NULL;
}

int lia_server_fd(lia_server_t *s)
{
    return s ? s->epfd : LIA_ERR_INVALID;
}

/*
 * Takes one message from the ROUTER if one is waiting. Returns 0 with peer and data filled,
 * LIA_ERR_PROTOCOL (peer filled) for a multi-part message, TAKE_NONE when nothing usable was
 * there (message without a valid User-Id is dropped and logged), or a negative lia_err.
 */
static int router_take(lia_server_t *s, lia_peer *peer, uint8_t **data, size_t *len)
{
    zmq_msg_t rid, body;
    const char *uid;
    int rc, multipart;

    zmq_msg_init(&rid);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&rid, s->router, ZMQ_DONTWAIT) < 0) {
        rc = zmq_errno() == EAGAIN ? TAKE_NONE : zerr("zmq_msg_recv(ROUTER)");
        goto done;
    }
    if (!zmq_msg_more(&rid)) { /* ROUTER always prefixes a routing id: cannot happen */
        log_warn("transport: routing id without a message, dropped");
        rc = TAKE_NONE;
        goto done;
    }
    if (zmq_msg_recv(&body, s->router, ZMQ_DONTWAIT) < 0) {
        rc = zerr("zmq_msg_recv(ROUTER body)");
        goto done;
    }
    multipart = zmq_msg_more(&body);
    if (multipart && (rc = drain_parts(s->router)) != 0)
        goto done;
    uid = zmq_msg_gets(&body, "User-Id");
    if (!uid || !lia_node_id_valid(uid)) {
        log_err("transport: message without an authenticated node id dropped");
        rc = TAKE_NONE;
        goto done;
    }
    if (zmq_msg_size(&rid) == 0 || zmq_msg_size(&rid) > sizeof peer->routing_id) {
        log_warn("transport: message from node %s with a bad routing id dropped", uid);
        rc = TAKE_NONE;
        goto done;
    }
    memset(peer, 0, sizeof *peer);
    memcpy(peer->routing_id, zmq_msg_data(&rid), zmq_msg_size(&rid));
    peer->routing_id_len = zmq_msg_size(&rid);
    snprintf(peer->node_id, sizeof peer->node_id, "%s", uid);
    fd_note(s, &body, uid);
    if (multipart || zmq_msg_size(&body) > s->opts.max_msg) {
        log_warn("transport: %s message from node %s dropped",
                 multipart ? "multi-part" : "oversized", uid);
        rc = LIA_ERR_PROTOCOL;
        goto done;
    }
    rc = copy_body(&body, data, len);
done:
    zmq_msg_close(&rid);
    zmq_msg_close(&body);
    return rc;
}

int lia_server_recv(lia_server_t *s, int timeout_ms, lia_peer *peer, uint8_t **data, size_t *len)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc;

    if (!data || !len)
        return LIA_ERR_INVALID;
    *data = NULL;
    *len = 0;
    if (!s || !peer)
        return LIA_ERR_INVALID;
    /* Fast path under load: take the next message without a poll; every FAST_BURST messages,
     * and whenever the ROUTER is empty, poll so that ZAP requests and monitor events are
     * served too. */
    if (s->burst < FAST_BURST) {
        rc = router_take(s, peer, data, len);
        if (rc != TAKE_NONE) {
            s->burst++;
            return rc;
        }
    }
    s->burst = 0;
    for (;;) {
        zmq_pollitem_t items[3] = {{s->zap, 0, ZMQ_POLLIN, 0},
                                   {s->router, 0, ZMQ_POLLIN, 0},
                                   {s->mon, 0, ZMQ_POLLIN, 0}};
        long wait = remaining_ms(timeout_ms, deadline);

        rc = zmq_poll(items, 3, wait);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return zerr("zmq_poll");
        }
        if (items[2].revents & ZMQ_POLLIN)
            server_monitor_drain(s);
        if (items[0].revents & ZMQ_POLLIN) {
            if ((rc = zap_serve(s)) != 0)
                return rc;
            continue; /* re-poll: more ZAP requests or a message may be waiting */
        }
        if (items[1].revents & ZMQ_POLLIN) {
            rc = router_take(s, peer, data, len);
            if (rc != TAKE_NONE)
                return rc;
            continue;
        }
        if (wait == 0)
            return LIA_ERR_LIMIT;
    }
}

int lia_server_send(lia_server_t *s, const lia_peer *peer, const uint8_t *data, size_t len)
{
    if (!s || !peer || (!data && len) || peer->routing_id_len == 0 ||
        peer->routing_id_len > sizeof peer->routing_id)
        return LIA_ERR_INVALID;
    if (len > s->opts.max_msg)
        return LIA_ERR_TOO_LARGE;
    /* With ZMQ_ROUTER_MANDATORY the routing-id frame fails if the peer is gone (EHOSTUNREACH)
     * or its queue is full (EAGAIN); once it is accepted the body cannot fail that way. */
    if (zmq_send(s->router, peer->routing_id, peer->routing_id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
        0) {
        int e = zmq_errno();

        if (e == EAGAIN || e == EHOSTUNREACH) {
            log_debug("transport: send to node %s: %s", peer->node_id, zmq_strerror(e));
            return map_errno(e);
        }
        return zerr("zmq_send(routing id)");
    }
    if (zmq_send(s->router, len ? (const void *)data : "", len, ZMQ_DONTWAIT) < 0)
        return zerr("zmq_send");
    return 0;
}

int lia_server_rebind(lia_server_t *s)
{
    void *fresh = NULL, *fresh_mon = NULL;
    int fresh_fd = -1, fresh_mon_fd = -1, rc;

    if (!s)
        return LIA_ERR_INVALID;
    /* Everything that can fail without touching the live socket comes first. */
    if ((rc = router_open(s, &fresh)) != 0)
        return rc;
    if ((rc = sock_fd(fresh, &fresh_fd)) != 0 || (rc = epoll_add(s->epfd, fresh_fd)) != 0)
        goto fail;
    if ((rc = server_watch(s, fresh, &fresh_mon, &fresh_mon_fd)) != 0 ||
        (rc = epoll_add(s->epfd, fresh_mon_fd)) != 0)
        goto fail;
    if (zmq_unbind(s->router, s->endpoint) != 0) {
        rc = zerr("zmq_unbind");
        goto fail;
    }
    if ((rc = bind_retry(fresh, s->endpoint, REBIND_WAIT_MS)) != 0) {
        /* Put the old socket back so that the endpoint stays served. */
        if (bind_retry(s->router, s->endpoint, REBIND_WAIT_MS) != 0)
            log_err("transport: %s is left UNBOUND after a failed rebind", s->endpoint);
        goto fail;
    }
    if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->router_fd, NULL) != 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->mon_fd, NULL) != 0)
        log_warn_errno("transport: epoll_ctl(DEL)");
    server_unwatch(s->router, &s->mon);
    sock_close(&s->router, 0); /* drop what was queued for the cut connections */
    s->router = fresh;
    s->router_fd = fresh_fd;
    s->mon = fresh_mon;
    s->mon_fd = fresh_mon_fd;
    if (s->fd_node)
        memset(s->fd_node, 0, s->fd_cap * sizeof *s->fd_node); /* every connection was cut */
    log_notice("transport: rebound %s; every client must pass ZAP again", s->endpoint);
    return 0;
fail:
    if (fresh_fd >= 0)
        (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fresh_fd, NULL); /* may not be registered */
    if (fresh_mon_fd >= 0)
        (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fresh_mon_fd, NULL);
    server_unwatch(fresh, &fresh_mon);
    sock_close(&fresh, 0);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                       */
/*
 * libzmq 4.3 reconnects a DEALER by itself only after connection errors. A protocol error,
 * and a refused or failed handshake is one (ZAP "400", wrong server key, a message over
 * max_msg from the server), terminates the connection's session for good: the socket would
 * then stay silent forever and every send would fail with EAGAIN. The client therefore
 * watches its socket monitor: a disconnection that libzmq does not follow with a retry of its
 * own within the backoff makes the client re-dial (zmq_disconnect + zmq_connect, which passes
 * ZAP again), with the backoff doubling from 100 ms to 5 s and reset by a successful handshake.
 */

static int timer_arm(int tfd, long ms)
{
    struct itimerspec its;

    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (ms % 1000) * 1000000L + 1; /* 0 would disarm */
    if (timerfd_settime(tfd, 0, &its, NULL) != 0) {
        log_err_errno("transport: timerfd_settime");
        return LIA_ERR_IO;
    }
    return 0;
}

static void timer_clear(int tfd)
{
    uint64_t expirations;

    if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        log_warn_errno("transport: timerfd read");
}

/* Takes one monitor event if one is waiting: 1 with *ev and *val set, 0 if none, or a
 * negative lia_err. An event is two frames: 6 bytes (uint16 event, uint32 value, native byte
 * order) and the endpoint. */
static int monitor_take(lia_client_t *c, uint16_t *ev, uint32_t *val)
{
    zmq_msg_t m;
    int rc = 0;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0) {
        rc = zmq_errno() == EAGAIN ? 0 : zerr("zmq_msg_recv(monitor)");
        goto done;
    }
    if (zmq_msg_size(&m) == 6) {
        memcpy(ev, zmq_msg_data(&m), 2);
        memcpy(val, (const uint8_t *)zmq_msg_data(&m) + 2, 4);
        rc = 1;
    } else {
        *ev = 0;
        *val = 0;
        rc = 1; /* not a 4.3 event: ignored */
    }
    if (zmq_msg_more(&m) && (rc = drain_parts(c->mon)) == 0)
        rc = 1;
done:
    zmq_msg_close(&m);
    return rc;
}

/* Marks the connection as possibly dead and schedules a re-dial after the current backoff. */
static int client_suspect(lia_client_t *c)
{
    if (c->suspect)
        return 0;
    c->suspect = 1;
    c->redial_at = now_ms() + c->backoff_ms;
    if (timer_arm(c->tfd, c->backoff_ms) != 0)
        c->redial_at = now_ms(); /* re-dial at the next call instead */
    c->backoff_ms =
        c->backoff_ms * 2 > RECONNECT_IVL_MAX_MS ? RECONNECT_IVL_MAX_MS : c->backoff_ms * 2;
    return 0;
}

/*
 * Processes pending monitor events, logs handshake failures and re-dials when due. Called by
 * every client operation; non-blocking.
 */
static int client_service(lia_client_t *c)
{
    uint16_t ev = 0;
    uint32_t val = 0;
    int rc;

    timer_clear(c->tfd);
    while ((rc = monitor_take(c, &ev, &val)) == 1) {
        switch (ev) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            c->backoff_ms = RECONNECT_IVL_MS;
            c->suspect = 0;
            break;
        case ZMQ_EVENT_CONNECTED:
        case ZMQ_EVENT_CONNECT_DELAYED:
        case ZMQ_EVENT_CONNECT_RETRIED:
            c->suspect = 0; /* libzmq is (re)connecting by itself */
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            log_warn("transport: %s refused this node (ZAP status %u)", c->endpoint, val);
            client_suspect(c);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            log_warn("transport: handshake with %s failed (ZMTP error 0x%x)", c->endpoint, val);
            client_suspect(c);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            log_warn("transport: handshake with %s failed: %s", c->endpoint,
                     zmq_strerror((int)val));
            client_suspect(c);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            client_suspect(c);
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (c->suspect && now_ms() >= c->redial_at) {
        c->suspect = 0;
        log_info("transport: re-dialling %s", c->endpoint);
        if (zmq_disconnect(c->dealer, c->endpoint) != 0 && zmq_errno() != ENOENT)
            return zerr("zmq_disconnect");
        if (zmq_connect(c->dealer, c->endpoint) != 0)
            return zerr("zmq_connect");
    }
    return 0;
}

/* Starts the DEALER's monitor and the client's epoll set (before the DEALER connects). */
static int client_watch(lia_client_t *c)
{
    int fd, rc;

    if (zmq_socket_monitor(c->dealer, MONITOR_ENDPOINT, MONITOR_EVENTS) != 0)
        return zerr("zmq_socket_monitor");
    c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
    if (!c->mon)
        return zerr("zmq_socket(PAIR)");
    /* rcvhwm 0: the monitor never blocks libzmq's I/O thread on a full pipe. */
    if ((rc = set_int(c->mon, ZMQ_RCVHWM, 0, "ZMQ_RCVHWM")) != 0 ||
        (rc = set_int(c->mon, ZMQ_LINGER, 0, "ZMQ_LINGER")) != 0)
        return rc;
    if (zmq_connect(c->mon, MONITOR_ENDPOINT) != 0)
        return zerr("zmq_connect(monitor)");
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->tfd < 0 || c->epfd < 0) {
        log_err_errno("transport: timerfd_create/epoll_create1");
        return LIA_ERR_IO;
    }
    if ((rc = epoll_add(c->epfd, c->tfd)) != 0)
        return rc;
    if ((rc = sock_fd(c->mon, &fd)) != 0 || (rc = epoll_add(c->epfd, fd)) != 0)
        return rc;
    if ((rc = sock_fd(c->dealer, &fd)) != 0 || (rc = epoll_add(c->epfd, fd)) != 0)
        return rc;
    return 0;
}

int lia_client_new(const lia_identity_t *id, const char *endpoint, const uint8_t server_key[32],
                   const lia_transport_opts *o, lia_client_t **out)
{
    lia_client_t *c = NULL;
    uint8_t sk[32];
    int rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    if (!id || !endpoint || !server_key || lia_identity_kind(id) != LIA_SECRET_NODE)
        return LIA_ERR_INVALID;
    if ((rc = opts_check(o)) != 0)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c)
        return LIA_ERR_NOMEM;
    c->epfd = c->tfd = -1;
    c->backoff_ms = RECONNECT_IVL_MS;
    c->max_msg = o->max_msg;
    if (strlen(endpoint) >= sizeof c->endpoint) {
        rc = LIA_ERR_INVALID;
        goto fail;
    }
    memcpy(c->endpoint, endpoint, strlen(endpoint) + 1);
    c->ctx = zmq_ctx_new();
    if (!c->ctx) {
        rc = zerr("zmq_ctx_new");
        goto fail;
    }
    c->dealer = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!c->dealer) {
        rc = zerr("zmq_socket(DEALER)");
        goto fail;
    }
    if ((rc = apply_common(c->dealer, o)) != 0)
        goto fail;
    if ((rc = set_int(c->dealer, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS, "ZMQ_RECONNECT_IVL")) ||
        (rc = set_int(c->dealer, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS,
                      "ZMQ_RECONNECT_IVL_MAX")))
        goto fail;
    if ((rc = set_bytes(c->dealer, ZMQ_CURVE_SERVERKEY, server_key, 32, "ZMQ_CURVE_SERVERKEY")) ||
        (rc = set_bytes(c->dealer, ZMQ_CURVE_PUBLICKEY, lia_identity_transport_pk(id), 32,
                        "ZMQ_CURVE_PUBLICKEY")))
        goto fail;
    if ((rc = lia_identity_transport_sk(id, sk)) != 0)
        goto fail;
    rc = set_bytes(c->dealer, ZMQ_CURVE_SECRETKEY, sk, sizeof sk, "ZMQ_CURVE_SECRETKEY");
    sodium_memzero(sk, sizeof sk);
    if (rc != 0)
        goto fail;
    if ((rc = client_watch(c)) != 0)
        goto fail;
    if (zmq_connect(c->dealer, endpoint) != 0) {
        rc = zerr("zmq_connect");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    lia_client_destroy(&c);
    return rc;
}

void lia_client_destroy(lia_client_t **p)
{
    lia_client_t *c;

    if (!p || !*p)
        return;
    c = *p;
    if (c->dealer && c->mon && zmq_socket_monitor(c->dealer, NULL, 0) != 0)
        log_warn("transport: stopping the monitor: %s", zmq_strerror(zmq_errno()));
    sock_close(&c->mon, 0);
    sock_close(&c->dealer, LINGER_MS);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->tfd >= 0)
        close(c->tfd);
    ctx_term(&c->ctx);
    free(c);
    *p = NULL;
}

int lia_client_send(lia_client_t *c, const uint8_t *data, size_t len)
{
    int rc;

    if (!c || (!data && len))
        return LIA_ERR_INVALID;
    if (len > c->max_msg)
        return LIA_ERR_TOO_LARGE;
    if ((rc = client_service(c)) != 0)
        return rc;
    if (zmq_send(c->dealer, len ? (const void *)data : "", len, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN)
            return LIA_ERR_LIMIT;
        return zerr("zmq_send");
    }
    return 0;
}

/* Takes one message from the DEALER if one is waiting: 0, TAKE_NONE, LIA_ERR_PROTOCOL for a
 * multi-part message (dropped), or a negative lia_err. */
static int dealer_take(lia_client_t *c, uint8_t **data, size_t *len)
{
    zmq_msg_t m;
    int rc;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->dealer, ZMQ_DONTWAIT) < 0) {
        rc = zmq_errno() == EAGAIN ? TAKE_NONE : zerr("zmq_msg_recv(DEALER)");
        goto done;
    }
    if (zmq_msg_more(&m)) {
        log_warn("transport: multi-part message from the server dropped");
        rc = drain_parts(c->dealer);
        if (rc == 0)
            rc = LIA_ERR_PROTOCOL;
        goto done;
    }
    rc = copy_body(&m, data, len);
done:
    zmq_msg_close(&m);
    return rc;
}

int lia_client_recv(lia_client_t *c, int timeout_ms, uint8_t **data, size_t *len)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc;

    if (!data || !len)
        return LIA_ERR_INVALID;
    *data = NULL;
    *len = 0;
    if (!c)
        return LIA_ERR_INVALID;
    /* Fast path under load, as for the server: the monitor is serviced every FAST_BURST
     * messages and whenever the DEALER is empty. */
    if (c->burst < FAST_BURST) {
        rc = dealer_take(c, data, len);
        if (rc != TAKE_NONE) {
            c->burst++;
            return rc;
        }
    }
    c->burst = 0;
    for (;;) {
        zmq_pollitem_t items[2] = {{c->dealer, 0, ZMQ_POLLIN, 0}, {c->mon, 0, ZMQ_POLLIN, 0}};
        long wait = remaining_ms(timeout_ms, deadline), poll_wait = wait;

        if ((rc = client_service(c)) != 0)
            return rc;
        if (c->suspect) { /* wake up for the re-dial */
            int64_t due = c->redial_at - now_ms();

            if (due < 0)
                due = 0;
            if (poll_wait < 0 || due < poll_wait)
                poll_wait = (long)due;
        }
        rc = zmq_poll(items, 2, poll_wait);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return zerr("zmq_poll");
        }
        if (items[0].revents & ZMQ_POLLIN) {
            rc = dealer_take(c, data, len);
            if (rc != TAKE_NONE)
                return rc;
            continue;
        }
        if (wait == 0)
            return LIA_ERR_LIMIT;
    }
}

int lia_client_fd(lia_client_t *c)
{
    return c ? c->epfd : LIA_ERR_INVALID;
}
