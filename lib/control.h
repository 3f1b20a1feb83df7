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

#define LIA_CONTROL_MAX_FRAME (64u << 20)

typedef struct lia_ctl_server lia_ctl_server_t;
typedef struct lia_ctl_conn lia_ctl_conn_t;

/*
 * Listens on path (an existing stale socket file is replaced; any other file is refused).
 * Only the given uids (and the daemon's own) may connect.
 */
int lia_ctl_listen(const char *path, const uid_t *allowed, size_t n_allowed,
                   lia_ctl_server_t **out) __attribute__((warn_unused_result));
void lia_ctl_server_destroy(lia_ctl_server_t **p);
int lia_ctl_server_fd(const lia_ctl_server_t *s);

/* Accepts one pending connection (non-blocking); LIA_ERR_LIMIT if none is pending,
 * LIA_ERR_PERMISSION (connection closed) if the peer's uid is not allowed. */
int lia_ctl_accept(lia_ctl_server_t *s, lia_ctl_conn_t **out) __attribute__((warn_unused_result));

/* Client side: connects to a daemon's socket. */
int lia_ctl_connect(const char *path, lia_ctl_conn_t **out) __attribute__((warn_unused_result));

void lia_ctl_conn_destroy(lia_ctl_conn_t **p);
int lia_ctl_conn_fd(const lia_ctl_conn_t *c);
uid_t lia_ctl_conn_uid(const lia_ctl_conn_t *c); /* peer uid (server side) */

/*
 * Reads one frame. Server connections are non-blocking: LIA_ERR_LIMIT means "not complete
 * yet, poll again" (partial data is kept). Returns LIA_ERR_NOT_FOUND when the peer closed.
 * *data malloc'd, owned by the caller.
 */
int lia_ctl_read(lia_ctl_conn_t *c, uint8_t **data, size_t *len) __attribute__((warn_unused_result));

/* Writes one frame completely (blocking, bounded by a timeout of a few seconds). */
int lia_ctl_write(lia_ctl_conn_t *c, const uint8_t *data, size_t len) __attribute__((warn_unused_result));

#endif
