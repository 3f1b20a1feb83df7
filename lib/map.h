/*
 * A hash map from fixed-size binary keys to pointers, for the in-memory indexes of the
 * envelope layer (keys by sender/destination/epoch, verified batch roots, replay streams).
 * Keys may be chosen by a peer, so slots are picked with SipHash under a per-map random key
 * (libsodium crypto_shorthash): a peer cannot aim collisions. Open addressing with linear
 * probing and backward-shift deletion; no tombstones.
 */
#ifndef LIA_MAP_H
#define LIA_MAP_H

#include <stddef.h>
#include <stdint.h>

#define LIA_MAP_KEY_MAX 64

typedef struct lia_map lia_map_t;

/* A map for keys of exactly key_len bytes (1..LIA_MAP_KEY_MAX). free_value, if not NULL, is
 * called on values that the map drops (lia_map_remove, lia_map_destroy). */
int lia_map_new(size_t key_len, void (*free_value)(void *), lia_map_t **out);
void lia_map_destroy(lia_map_t **p);

size_t lia_map_size(const lia_map_t *m);

/* The value for key, or NULL. */
void *lia_map_get(const lia_map_t *m, const uint8_t *key);

/* Inserts or replaces; a replaced value is passed to free_value. The map takes ownership of
 * value. LIA_ERR_NOMEM leaves the map unchanged (and value still owned by the caller). */
int lia_map_put(lia_map_t *m, const uint8_t *key, void *value);

/* Removes key if present (value passed to free_value). Returns 1 if removed, 0 if absent. */
int lia_map_remove(lia_map_t *m, const uint8_t *key);

/*
 * Calls fn(arg, key, value) for every entry, in no particular order; a non-zero return stops
 * the walk and is returned. fn must not change the map.
 */
int lia_map_foreach(const lia_map_t *m, int (*fn)(void *arg, const uint8_t *key, void *value),
                    void *arg);

#endif
