/*
 * The node daemon's logic: a durable outbox (sealed envelopes stay until the broker
 * acknowledges them), a durable inbox (a delivery is acknowledged only after it is stored),
 * verification and decryption of every envelope, and the local control socket for the CLI.
 */
#ifndef LIA_NODE_H
#define LIA_NODE_H

#include <stdint.h>
#include <stdio.h>

typedef struct node node_t;

/* Loads and checks the configuration; prints "file:line: ..." and returns a sysexits status
 * on error. */
int node_load(const char *path, node_t **out);
void node_print(const node_t *n, FILE *f);
/* Bytes of heap to touch at start (memory-reserve; see lia_daemon_reserve_memory). */
uint64_t node_memory_reserve(const node_t *n);
/* Serves until SIGTERM/SIGINT (finish the current group, commit, exit 0). */
int node_run(node_t *n);
void node_destroy(node_t **p);

#endif
