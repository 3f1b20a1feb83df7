/*
 * The node's local control socket: a Unix-domain stream socket (mode 0660 in a 0750
 * directory) carrying length-prefixed protobuf frames (proto/liaison/v1/control.proto).
 * The server learns each client's uid from SO_PEERCRED and refuses uids that are not allowed;
 * frame lengths are bounded before anything is allocated.
 */
#ifndef LIA_CONTROL_H
#define LIA_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#define LIA_CONTROL_MAX_FRAME (64u << 20)

/* Bound on the time lia_ctl_write may wait for the peer to drain its socket buffer. */
#define LIA_CONTROL_WRITE_TIMEOUT_MS 5000

typedef struct lia_ctl_server lia_ctl_server_t;
typedef struct lia_ctl_conn lia_ctl_conn_t;

/*
 * Listens on path (an existing stale socket file is replaced; any other file, or a socket on
 * which a server still answers, is refused with LIA_ERR_EXISTS). The socket's directory is
 * created with mode 0750 if missing (one level); the socket gets mode 0660 through the umask
 * at bind time (umask is process-wide: call before starting threads). Only the given uids
 * (and the daemon's own effective uid) may connect. The server socket is non-blocking.
 */
int lia_ctl_listen(const char *path, const uid_t *allowed, size_t n_allowed, lia_ctl_server_t **out)
    __attribute__((warn_unused_result));
void lia_ctl_server_destroy(lia_ctl_server_t **p);
int lia_ctl_server_fd(const lia_ctl_server_t *s);

/* Accepts one pending connection (non-blocking); LIA_ERR_LIMIT if none is pending,
 * LIA_ERR_PERMISSION (connection closed) if the peer's uid is not allowed. */
int lia_ctl_accept(lia_ctl_server_t *s, lia_ctl_conn_t **out) __attribute__((warn_unused_result));

/* Client side: connects to a daemon's socket (a blocking connection). Errors:
 * LIA_ERR_NOT_FOUND (no socket, or nobody listening), LIA_ERR_PERMISSION, LIA_ERR_IO;
 * errno tells the system reason for those three. */
int lia_ctl_connect(const char *path, lia_ctl_conn_t **out) __attribute__((warn_unused_result));

void lia_ctl_conn_destroy(lia_ctl_conn_t **p);
int lia_ctl_conn_fd(const lia_ctl_conn_t *c);
uid_t lia_ctl_conn_uid(const lia_ctl_conn_t *c); /* peer uid (server side) */

/*
 * Reads one frame. Server connections are non-blocking: LIA_ERR_LIMIT means "not complete
 * yet, poll again" (partial data is kept). Returns LIA_ERR_NOT_FOUND when the peer closed
 * between frames, LIA_ERR_PROTOCOL when it closed in the middle of one, LIA_ERR_TOO_LARGE
 * when the length prefix exceeds LIA_CONTROL_MAX_FRAME (checked before allocating). After
 * any error other than LIA_ERR_LIMIT and LIA_ERR_NOMEM the connection is dropped (its fd
 * closed, lia_ctl_conn_fd returns -1; later calls return LIA_ERR_NOT_FOUND); the caller still
 * destroys it. On success *data is malloc'd (never NULL, also for an empty frame), owned by
 * the caller.
 */
int lia_ctl_read(lia_ctl_conn_t *c, uint8_t **data, size_t *len)
    __attribute__((warn_unused_result));

/* Writes one frame completely (blocking, bounded by LIA_CONTROL_WRITE_TIMEOUT_MS; never
 * raises SIGPIPE). LIA_ERR_NOT_FOUND if the peer has gone, LIA_ERR_IO with errno ETIMEDOUT on
 * timeout; after a failure the connection is dropped (a partial frame may have been sent). */
int lia_ctl_write(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));

/*
 * Bytes already received and buffered but not yet returned by lia_ctl_read: a client that
 * polls the descriptor before reading must read first while this is not 0.
 */
size_t lia_ctl_buffered(const lia_ctl_conn_t *c);

/* Bound on output queued for one connection (lia_ctl_send). */
#define LIA_CONTROL_QUEUE_MAX (64u << 20)

/*
 * Server side, never blocks: queues one frame and sends what the socket takes now; the rest
 * goes out with lia_ctl_flush when the descriptor is writable (poll for POLLOUT while
 * lia_ctl_pending is not 0). A peer that lets more than LIA_CONTROL_QUEUE_MAX pile up is
 * dropped (LIA_ERR_LIMIT). Queued bytes are wiped once sent.
 */
int lia_ctl_send(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));
/* Like lia_ctl_send without sending anything yet: the caller flushes once for many frames. */
int lia_ctl_queue(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));
/*
 * Like lia_ctl_queue with the packed form of m as the frame, packed straight into the queue:
 * no intermediate buffer, no copy of the frame. The same limits apply to the packed size
 * (LIA_ERR_TOO_LARGE, nothing queued; beyond LIA_CONTROL_QUEUE_MAX the connection is
 * dropped, LIA_ERR_LIMIT). m must not change while it is packed.
 */
int lia_ctl_queue_msg(lia_ctl_conn_t *c, const ProtobufCMessage *m)
    __attribute__((warn_unused_result));
/* Sends queued output: 0 when all went, LIA_ERR_LIMIT if some remains, other errors drop. */
int lia_ctl_flush(lia_ctl_conn_t *c) __attribute__((warn_unused_result));
/* Bytes queued and not yet sent. */
size_t lia_ctl_pending(const lia_ctl_conn_t *c);

#endif
