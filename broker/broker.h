/*
 * The broker daemon's logic: admission of enrolled nodes, routing of envelopes to channel
 * members and direct recipients, persist-before-acknowledge with group commit, per-node
 * ordered delivery with a durable cursor and a bounded in-flight window.
 */
#ifndef LIA_BROKER_H
#define LIA_BROKER_H

#include <stdint.h>
#include <stdio.h>

typedef struct broker broker_t;

/*
 * Loads and checks the configuration at path (certificates, revocation list, identity, store
 * path). On error prints "file:line: ..." to stderr and returns a sysexits status.
 */
int broker_load(const char *path, broker_t **out);

/* Prints the configuration as understood (check-only mode, -n). */
void broker_print(const broker_t *b, FILE *f);
/* Bytes of heap to touch at start (memory-reserve; see lia_daemon_reserve_memory). */
uint64_t broker_memory_reserve(const broker_t *b);

/* Opens the store, binds, and serves until SIGTERM/SIGINT (drain, commit, exit 0). Returns a
 * sysexits status. */
int broker_run(broker_t *b);

void broker_destroy(broker_t **p);

#endif
