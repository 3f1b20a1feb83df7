/*
 * Open-addressing hash map with SipHash-2-4 slot selection (see map.h for why). The table is
 * kept at most 3/4 full; capacity is a power of two.
 */
#include "map.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct slot {
    void *value; /* NULL = empty slot */
    uint64_t hash;
};

struct lia_map {
    size_t key_len;
    size_t cap; /* power of two */
    size_t count;
    struct slot *slots;
    uint8_t *keys; /* cap * key_len */
    void (*free_value)(void *);
    uint8_t sipkey[crypto_shorthash_KEYBYTES];
};

static uint64_t hash_key(const lia_map_t *m, const uint8_t *key)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, key, m->key_len, m->sipkey);
    memcpy(&h, out, sizeof h);
    return h;
}

static int alloc_table(lia_map_t *m, size_t cap)
{
    m->slots = calloc(cap, sizeof *m->slots);
    m->keys = malloc(cap * m->key_len);
    if (!m->slots || !m->keys) {
        free(m->slots);
        free(m->keys);
        m->slots = NULL;
        m->keys = NULL;
        return LIA_ERR_NOMEM;
    }
    m->cap = cap;
    return 0;
}

int lia_map_new(size_t key_len, void (*free_value)(void *), lia_map_t **out)
{
    lia_map_t *m;

    *out = NULL;
    if (key_len == 0 || key_len > LIA_MAP_KEY_MAX)
        return LIA_ERR_INVALID;
    m = calloc(1, sizeof *m);
    if (!m)
        return LIA_ERR_NOMEM;
    m->key_len = key_len;
    m->free_value = free_value;
    randombytes_buf(m->sipkey, sizeof m->sipkey);
    if (alloc_table(m, 16) != 0) {
        free(m);
        return LIA_ERR_NOMEM;
    }
    *out = m;
    return 0;
}

void lia_map_destroy(lia_map_t **p)
{
    lia_map_t *m;
    if (!p || !*p)
        return;
    m = *p;
    if (m->free_value)
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].value)
                m->free_value(m->slots[i].value);
    free(m->slots);
    free(m->keys);
    free(m);
    *p = NULL;
}

size_t lia_map_size(const lia_map_t *m)
{
    return m->count;
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t find_slot(const lia_map_t *m, const uint8_t *key, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slots[i].value &&
           (m->slots[i].hash != h || memcmp(m->keys + i * m->key_len, key, m->key_len) != 0))
        i = (i + 1) & mask;
    return i;
}

static int grow(lia_map_t *m)
{
    lia_map_t old = *m;
    if (m->cap > SIZE_MAX / 2 / (m->key_len > sizeof(struct slot) ? m->key_len : sizeof(struct slot)))
        return LIA_ERR_NOMEM;
    if (alloc_table(m, old.cap * 2) != 0) {
        *m = old;
        return LIA_ERR_NOMEM;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].value)
            continue;
        size_t j = find_slot(m, old.keys + i * m->key_len, old.slots[i].hash);
        m->slots[j] = old.slots[i];
        memcpy(m->keys + j * m->key_len, old.keys + i * m->key_len, m->key_len);
    }
    free(old.slots);
    free(old.keys);
    return 0;
}

void *lia_map_get(const lia_map_t *m, const uint8_t *key)
{
    return m->slots[find_slot(m, key, hash_key(m, key))].value;
}

int lia_map_put(lia_map_t *m, const uint8_t *key, void *value)
{
    uint64_t h = hash_key(m, key);
    size_t i;

    if (!value)
        return LIA_ERR_INVALID;
    i = find_slot(m, key, h);
    if (m->slots[i].value) {
        if (m->free_value && m->slots[i].value != value)
            m->free_value(m->slots[i].value);
        m->slots[i].value = value;
        return 0;
    }
    if ((m->count + 1) * 4 > m->cap * 3) {
        if (grow(m) != 0)
            return LIA_ERR_NOMEM;
        i = find_slot(m, key, h);
    }
    m->slots[i].value = value;
    m->slots[i].hash = h;
    memcpy(m->keys + i * m->key_len, key, m->key_len);
    m->count++;
    return 0;
}

int lia_map_remove(lia_map_t *m, const uint8_t *key)
{
    size_t mask = m->cap - 1, i = find_slot(m, key, hash_key(m, key)), j;

    if (!m->slots[i].value)
        return 0;
    if (m->free_value)
        m->free_value(m->slots[i].value);
    m->slots[i].value = NULL;
    m->count--;
    /* Backward-shift: move later members of the probe run into the hole. */
    j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].value)
            break;
        size_t home = (size_t)m->slots[j].hash & mask;
        /* Entry at j may move to i only if its home is not cyclically within (i, j]. */
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        m->slots[i] = m->slots[j];
        memcpy(m->keys + i * m->key_len, m->keys + j * m->key_len, m->key_len);
        m->slots[j].value = NULL;
        i = j;
    }
    return 1;
}

int lia_map_foreach(const lia_map_t *m, int (*fn)(void *arg, const uint8_t *key, void *value),
                    void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        int rc;
        if (m->slots[i].value && (rc = fn(arg, m->keys + i * m->key_len, m->slots[i].value)) != 0)
            return rc;
    }
    return 0;
}
