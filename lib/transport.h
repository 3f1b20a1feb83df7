/*
 * Transport: the only module that includes ZeroMQ (libzmq, czmq). Every connection uses CURVE.
 * The server runs the project's own ZAP handler, bound before the server socket binds, that
 * admits a client only if the admission callback maps its CURVE public key to a node id
 * (enrolled, unexpired, unrevoked certificate) and refuses everything else: NULL and PLAIN
 * mechanisms, unknown keys, and any request it cannot parse. The node id attached to each
 * received message comes from that ZAP decision (ZMTP "User-Id"), never from the peer.
 *
 * Messages are single frames of at most max_msg bytes (enforced by libzmq before delivery).
 */
#ifndef LIA_TRANSPORT_H
#define LIA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "vault.h"

/* Maps an authenticated CURVE client key to a node id; 0 to admit, negative to refuse. */
typedef int (*lia_admit_fn)(void *arg, const uint8_t client_key[32],
                            char node_id[LIA_NODE_ID_MAX + 1]);

typedef struct lia_server lia_server_t;
typedef struct lia_client lia_client_t;

/* A connected peer as the server knows it. */
typedef struct {
    uint8_t routing_id[256];
    size_t routing_id_len;
    char node_id[LIA_NODE_ID_MAX + 1];
} lia_peer;

typedef struct {
    size_t max_msg;          /* bytes, > 0 */
    int heartbeat_ivl_ms;    /* ZMTP heartbeats; 0 disables */
    int heartbeat_timeout_ms;
    size_t sndhwm, rcvhwm;   /* 0: libzmq default */
} lia_transport_opts;

/*
 * Binds a CURVE server (ROUTER) at endpoint with the transport key of id, after starting the
 * ZAP handler with admit/arg. *out owned by the caller.
 */
int lia_server_new(const lia_identity_t *id, const char *endpoint, const lia_transport_opts *o,
                   lia_admit_fn admit, void *arg, lia_server_t **out) LIA_WUR;
void lia_server_destroy(lia_server_t **p);

/*
 * Waits up to timeout_ms (-1: forever) for one message; answers ZAP requests meanwhile.
 * Returns 0 with *data (malloc'd, owned by the caller) and *peer filled; LIA_ERR_LIMIT on
 * timeout; LIA_ERR_PROTOCOL for a multi-part or oversized message (dropped, peer filled).
 */
int lia_server_recv(lia_server_t *s, int timeout_ms, lia_peer *peer, uint8_t **data,
                    size_t *len) LIA_WUR;

/* Sends one message to a peer; LIA_ERR_LIMIT if it would block (peer slow or gone). */
int lia_server_send(lia_server_t *s, const lia_peer *peer, const uint8_t *data, size_t len) LIA_WUR;

/* Drops every connection (peers reconnect and pass ZAP again): used to cut revoked nodes. */
int lia_server_rebind(lia_server_t *s) LIA_WUR;

/* A CURVE client (DEALER) to a server with the given transport public key; reconnects with
 * backoff on its own. */
int lia_client_new(const lia_identity_t *id, const char *endpoint, const uint8_t server_key[32],
                   const lia_transport_opts *o, lia_client_t **out) LIA_WUR;
void lia_client_destroy(lia_client_t **p);
int lia_client_send(lia_client_t *c, const uint8_t *data, size_t len) LIA_WUR;
int lia_client_recv(lia_client_t *c, int timeout_ms, uint8_t **data, size_t *len) LIA_WUR;

/* Readiness file descriptor for integrating clients and servers into a poll loop. */
int lia_client_fd(lia_client_t *c);
int lia_server_fd(lia_server_t *s);

#endif
