/*
 * Transport: the only module that includes ZeroMQ (libzmq). Every connection uses CURVE.
 * The server runs the project's own ZAP handler, bound before the server socket binds, that
 * admits a client only if the admission callback maps its CURVE public key to a node id
 * (enrolled, unexpired, unrevoked certificate) and refuses everything else: NULL and PLAIN
 * mechanisms, unknown keys, and any request it cannot parse. The node id attached to each
 * received message comes from that ZAP decision (ZMTP "User-Id"), never from the peer.
 *
 * Messages are single frames of at most max_msg bytes. libzmq enforces the bound on receipt
 * (ZMQ_MAXMSGSIZE): a peer that sends a bigger frame has its connection dropped before
 * anything is delivered, so an oversized message never reaches lia_server_recv or
 * lia_client_recv; the peer reconnects (and passes ZAP again) on its own. The server watches
 * its ROUTER's monitor and logs what libzmq refuses on its own: handshakes that fail before
 * ZAP (NULL or PLAIN clients: mechanism mismatch) and closed connections (with the node last
 * seen on them; libzmq 4.3 gives no reason, so the log lists the possible ones).
 *
 * Threading: a server or a client is used by one thread at a time. The server's ZAP handler
 * runs inside lia_server_recv on the caller's thread: a server that is not being received on
 * admits nobody (handshakes wait, then time out). The admission callback therefore runs on
 * the thread that calls lia_server_recv and must not call back into the same server.
 *
 * Poll-loop integration: lia_server_fd and lia_client_fd return a descriptor that becomes
 * readable when the object may have work. It is a hint, edge-like: after it is readable, and
 * after every send, the caller must call the recv function with timeout 0 until it returns
 * LIA_ERR_LIMIT before waiting on the descriptor again.
 */
#ifndef LIA_TRANSPORT_H
#define LIA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "vault.h"

/*
 * Maps an authenticated CURVE client key to a node id; 0 to admit, negative to refuse.
 * node_id arrives zeroed; on admission it must hold a valid node id (lia_node_id_valid),
 * otherwise the client is refused.
 */
typedef int (*lia_admit_fn)(void *arg, const uint8_t client_key[32],
                            char node_id[LIA_NODE_ID_MAX + 1]);

typedef struct lia_server lia_server_t;
typedef struct lia_client lia_client_t;

/* A connected peer as the server knows it (valid for one connection: a reconnect changes
 * routing_id). */
typedef struct {
    uint8_t routing_id[256];
    size_t routing_id_len;
    char node_id[LIA_NODE_ID_MAX + 1];
} lia_peer;

typedef struct {
    size_t max_msg;           /* bytes, > 0 */
    int heartbeat_ivl_ms;     /* ZMTP heartbeats; 0 disables */
    int heartbeat_timeout_ms; /* 0: libzmq default (= interval); also sent as the TTL */
    size_t sndhwm, rcvhwm;    /* 0: libzmq default */
} lia_transport_opts;

/*
 * Binds a CURVE server (ROUTER) at endpoint (e.g. "tcp://127.0.0.1:*" for an ephemeral port)
 * with the transport key of id, after starting the ZAP handler with admit/arg (admit must not
 * be NULL). id must outlive the server (lia_server_rebind reads the key again). *out owned by
 * the caller.
 */
int lia_server_new(const lia_identity_t *id, const char *endpoint, const lia_transport_opts *o,
                   lia_admit_fn admit, void *arg, lia_server_t **out) LIA_WUR;

/* Closes the server (pending replies get a bounded linger); accepts NULL, sets *p to NULL. */
void lia_server_destroy(lia_server_t **p);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT: the ephemeral port resolved). */
const char *lia_server_endpoint(const lia_server_t *s);

/*
 * Waits up to timeout_ms (-1: forever, 0: no wait) for one message; answers ZAP requests
 * meanwhile. Returns 0 with *data (malloc'd, owned by the caller, non-NULL even for len 0)
 * and *peer filled; LIA_ERR_LIMIT on timeout; LIA_ERR_PROTOCOL for a multi-part message
 * (dropped, peer filled). A message without a valid authenticated node id is dropped and
 * logged, and waiting continues.
 */
int lia_server_recv(lia_server_t *s, int timeout_ms, lia_peer *peer, uint8_t **data,
                    size_t *len) LIA_WUR;

/*
 * Sends one message to a peer without blocking. LIA_ERR_LIMIT if the peer's queue is full
 * (slow peer), LIA_ERR_NOT_FOUND if the peer is no longer connected (ZMQ_ROUTER_MANDATORY),
 * LIA_ERR_TOO_LARGE if len > max_msg.
 */
int lia_server_send(lia_server_t *s, const lia_peer *peer, const uint8_t *data, size_t len) LIA_WUR;

/*
 * Drops every connection (peers reconnect and pass ZAP again): used to cut revoked nodes.
 * A new ROUTER is bound on the same resolved endpoint; on failure the old socket is bound
 * again, so the endpoint is never left unbound unless both binds fail (logged). May block up
 * to about 2 s while the old listener is released. lia_server_fd stays the same.
 */
int lia_server_rebind(lia_server_t *s) LIA_WUR;

/*
 * A CURVE client (DEALER) to a server with the given transport public key; reconnects with
 * backoff (100 ms to 5 s) on its own. Messages sent before the connection is up are queued
 * (up to sndhwm). After a refused handshake (ZAP "400", wrong server key) or a protocol error
 * libzmq gives the connection up; the client then re-dials with backoff from within its own
 * calls (send, recv, or recv after lia_client_fd woke up: the descriptor includes a timer for
 * the re-dial), so a poll loop must watch lia_client_fd. Until the re-dial, sends fail with
 * LIA_ERR_LIMIT.
 */
int lia_client_new(const lia_identity_t *id, const char *endpoint, const uint8_t server_key[32],
                   const lia_transport_opts *o, lia_client_t **out) LIA_WUR;
void lia_client_destroy(lia_client_t **p);

/*
 * Non-blocking send: LIA_ERR_LIMIT if the queue is full or there is no connection to queue on
 * (refused, waiting to re-dial), LIA_ERR_TOO_LARGE if len > max_msg.
 */
int lia_client_send(lia_client_t *c, const uint8_t *data, size_t len) LIA_WUR;

/* Like lia_server_recv, for the client (LIA_ERR_PROTOCOL for a multi-part message). */
int lia_client_recv(lia_client_t *c, int timeout_ms, uint8_t **data, size_t *len) LIA_WUR;

/*
 * Readiness descriptors (see the poll-loop paragraph above); negative lia_err on failure.
 * Both are epoll descriptors: the server's over the ZMQ_FDs of the ZAP handler, the ROUTER
 * and its monitor (stable across lia_server_rebind), the client's over the DEALER's and its monitor's ZMQ_FD
 * and the re-dial timer. Owned by the object; valid until it is destroyed.
 */
int lia_client_fd(lia_client_t *c);
int lia_server_fd(lia_server_t *s);

#endif
