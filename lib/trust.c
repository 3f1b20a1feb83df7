/*
 * The trust store (see trust.h): one authority, a growable array of verified certificates and
 * the newest verified revocation list. Lookups are linear over the certificates: a node knows
 * hundreds of peers, and a lookup happens once per peer key, not per byte.
 */
#include "trust.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

struct lia_trust {
    lia_authority_info auth;
    lia_cert_info **certs; /* each malloc'd so that pointers handed out stay valid */
    size_t n, cap;
    lia_crl_t *crl; /* NULL until a list is installed */
};

int lia_trust_new(const lia_authority_info *auth, lia_trust_t **out)
{
    lia_trust_t *t;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return LIA_ERR_NOMEM;
    t->auth = *auth;
    lia_key_id(t->auth.sign_pk, t->auth.key_id); /* never trust a caller-supplied id */
    *out = t;
    return 0;
}

void lia_trust_destroy(lia_trust_t **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++)
        free((*p)->certs[i]);
    free((*p)->certs);
    lia_crl_destroy(&(*p)->crl);
    free(*p);
    *p = NULL;
}

const lia_authority_info *lia_trust_authority(const lia_trust_t *t)
{
    return &t->auth;
}

static int same_cert(const lia_cert_info *a, const lia_cert_info *b)
{
    return a->serial == b->serial && strcmp(a->node_id, b->node_id) == 0 && a->role == b->role &&
           strcmp(a->country, b->country) == 0 && memcmp(a->sign_pk, b->sign_pk, 32) == 0 &&
           memcmp(a->enc_pk, b->enc_pk, 32) == 0 &&
           memcmp(a->transport_pk, b->transport_pk, 32) == 0 && a->not_before == b->not_before &&
           a->not_after == b->not_after;
}

int lia_trust_add_cert(lia_trust_t *t, const uint8_t *buf, size_t len, const lia_cert_info **out)
{
    lia_cert_info info;
    lia_cert_info *copy = NULL;
    int rc;

    if (out)
        *out = NULL;
    if ((rc = lia_cert_parse(buf, len, &t->auth, &info)) != 0)
        goto fail;
    for (size_t i = 0; i < t->n; i++) {
        if (t->certs[i]->serial != info.serial)
            continue;
        /* Serials are unique per authority: a different certificate with it is an error. */
        if (!same_cert(t->certs[i], &info)) {
            rc = LIA_ERR_EXISTS;
            goto fail;
        }
        if (out)
            *out = t->certs[i];
        return 0;
    }
    rc = LIA_ERR_NOMEM;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        lia_cert_info **grown = realloc(t->certs, cap * sizeof *grown);
        if (!grown)
            goto fail;
        t->certs = grown;
        t->cap = cap;
    }
    copy = malloc(sizeof *copy);
    if (!copy)
        goto fail;
    *copy = info;
    t->certs[t->n++] = copy;
    if (out)
        *out = copy;
    return 0;
fail:
    free(copy);
    return rc;
}

int lia_trust_update_crl(lia_trust_t *t, const uint8_t *buf, size_t len, size_t *newly,
                         lia_trust_revoked_fn fn, void *arg)
{
    lia_crl_t *crl = NULL, *old;
    size_t count = 0;
    int rc;

    if (newly)
        *newly = 0;
    if ((rc = lia_crl_parse(buf, len, &t->auth, &crl)) != 0)
        goto fail;
    /* Newer means a higher serial, and not issued before the list held: a list signed earlier
     * under a higher serial can only come from a confused authority clock; refusing it keeps
     * "newer" one notion instead of two. */
    if (t->crl && (lia_crl_serial(crl) <= lia_crl_serial(t->crl) ||
                   lia_crl_issued_at(crl) < lia_crl_issued_at(t->crl))) {
        rc = LIA_ERR_STALE;
        goto fail;
    }
    for (size_t i = 0; i < lia_crl_count(crl); i++) {
        lia_crl_entry_info e;
        uint64_t when;
        if (lia_crl_entry(crl, i, &e) == 0 && !(t->crl && lia_crl_lookup(t->crl, e.serial, &when)))
            count++;
    }
    /* Installed; the previous list is kept until the new entries were reported against it. */
    old = t->crl;
    t->crl = crl;
    for (size_t i = 0; fn && count && i < lia_crl_count(crl); i++) {
        lia_crl_entry_info e;
        uint64_t when;
        if (lia_crl_entry(crl, i, &e) == 0 && !(old && lia_crl_lookup(old, e.serial, &when)))
            fn(arg, &e);
    }
    lia_crl_destroy(&old);
    if (newly)
        *newly = count;
    return 0;
fail:
    lia_crl_destroy(&crl);
    return rc;
}

int lia_trust_set_crl(lia_trust_t *t, const uint8_t *buf, size_t len)
{
    return lia_trust_update_crl(t, buf, len, NULL, NULL, NULL);
}

uint64_t lia_trust_crl_serial(const lia_trust_t *t)
{
    return t->crl ? lia_crl_serial(t->crl) : 0;
}

const lia_crl_t *lia_trust_crl(const lia_trust_t *t)
{
    return t->crl;
}

/* 1 if c is revoked at time at: listed with revoked_at <= at. */
static int revoked_at_time(const lia_trust_t *t, const lia_cert_info *c, uint64_t at)
{
    uint64_t when;

    return t->crl && lia_crl_lookup(t->crl, c->serial, &when) && when <= at;
}

int lia_trust_find(const lia_trust_t *t, const char *node_id,
                   const uint8_t sign_key_id[LIA_KEY_ID_BYTES], uint64_t at,
                   const lia_cert_info **out)
{
    int rc = LIA_ERR_UNKNOWN_SENDER;

    *out = NULL;
    /* Several certificates may carry the same key (renewal); any valid one answers. Otherwise
     * the most telling failure is reported: revoked, then expired, then key mismatch. */
    for (size_t i = 0; i < t->n; i++) {
        const lia_cert_info *c = t->certs[i];
        if (strcmp(c->node_id, node_id) != 0)
            continue;
        if (memcmp(c->sign_key_id, sign_key_id, LIA_KEY_ID_BYTES) != 0) {
            if (rc == LIA_ERR_UNKNOWN_SENDER)
                rc = LIA_ERR_KEY_MISMATCH;
            continue;
        }
        if (revoked_at_time(t, c, at)) {
            rc = LIA_ERR_REVOKED;
            continue;
        }
        if (lia_cert_check_time(c, at) != 0) {
            if (rc != LIA_ERR_REVOKED)
                rc = LIA_ERR_EXPIRED;
            continue;
        }
        *out = c;
        return 0;
    }
    return rc;
}

/* The best certificate of node_id valid at at: not revoked at at (any_listing: not listed at
 * all), with the latest not_after. */
static int find_best(const lia_trust_t *t, const char *node_id, uint64_t at, int any_listing,
                     const lia_cert_info **out)
{
    const lia_cert_info *best = NULL;
    int rc = LIA_ERR_UNKNOWN_SENDER;

    *out = NULL;
    for (size_t i = 0; i < t->n; i++) {
        const lia_cert_info *c = t->certs[i];
        uint64_t when;
        if (strcmp(c->node_id, node_id) != 0)
            continue;
        if (any_listing ? t->crl && lia_crl_lookup(t->crl, c->serial, &when)
                        : revoked_at_time(t, c, at)) {
            rc = LIA_ERR_REVOKED;
            continue;
        }
        if (lia_cert_check_time(c, at) != 0) {
            if (rc != LIA_ERR_REVOKED)
                rc = LIA_ERR_EXPIRED;
            continue;
        }
        if (!best || c->not_after > best->not_after)
            best = c;
    }
    if (!best)
        return rc;
    *out = best;
    return 0;
}

int lia_trust_find_current(const lia_trust_t *t, const char *node_id, uint64_t at,
                           const lia_cert_info **out)
{
    return find_best(t, node_id, at, 0, out);
}

int lia_trust_find_grantee(const lia_trust_t *t, const char *node_id, uint64_t at,
                           const lia_cert_info **out)
{
    return find_best(t, node_id, at, 1, out);
}
