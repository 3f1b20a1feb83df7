/*
 * The hub role (see hub.h): term extraction from payloads, normalisation, and indexing through
 * the node store. Payload content passes through here in clear: nothing of it is ever logged,
 * and term buffers are wiped before they are freed.
 */
#include "hub.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "error.h"
#include "log.h"
#include "payload.h"

#define CATCH_UP_BATCH 64 /* messages decrypted and indexed per group */

/* ---------------- normalisation ---------------- */

/* Decodes one UTF-8 sequence at s[*i] (strict: no overlong forms, no surrogates, at most
 * U+10FFFF); -1 if invalid. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    size_t n;

    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if (len - *i < n + 1)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        unsigned char d = s[*i + k];
        if ((d & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return (int32_t)cp;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Simple case folding (Unicode CaseFolding.txt, status C and S) for the letters of the
 * European scripts the network's names use; everything else is returned as is. Every mapping
 * keeps the UTF-8 length, so a folded term is never longer than its input.
 */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) /* Latin-1 capitals */
        return c + 32;
    if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177) ||
        (c >= 0x200 && c <= 0x21f)) /* Latin Extended-A/B pairs: even capital, odd small */
        return (c & 1) ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) /* odd capital, even small */
        return (c & 1) ? c + 1 : c;
    if (c == 0x178) /* Y with diaeresis */
        return 0xff;
    if (c == 0x17f) /* long s */
        return 's';
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) /* Greek capitals */
        return c + 0x20;
    if (c == 0x386)
        return 0x3ac;
    if (c >= 0x388 && c <= 0x38a)
        return c + 0x25;
    if (c == 0x38c)
        return 0x3cc;
    if (c == 0x38e || c == 0x38f)
        return c + 0x3f;
    if (c == 0x3c2) /* final sigma */
        return 0x3c3;
    if (c >= 0x410 && c <= 0x42f) /* Cyrillic capitals */
        return c + 0x20;
    if (c >= 0x400 && c <= 0x40f)
        return c + 0x50;
    return c;
}

static int is_blank(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xa0;
}

/* Codes (document numbers, plates) lose these entirely. */
static int is_code_separator(uint32_t c)
{
    return is_blank(c) || c == '-' || c == '.';
}

int lia_hub_normalise(lia_hub_kind kind, const char *in, size_t in_len, char *out, size_t cap,
                      size_t *len)
{
    const unsigned char *s = (const unsigned char *)in;
    int code = kind == LIA_HUB_DOCUMENT || kind == LIA_HUB_VEHICLE;
    size_t i = 0, o = 0;
    int pending_space = 0;

    if (!len)
        return LIA_ERR_INVALID;
    *len = 0;
    if (!in || !out || kind < 1 || kind > LIA_HUB_KIND_MAX)
        return LIA_ERR_INVALID;
    if (cap > LIA_HUB_TERM_MAX)
        cap = LIA_HUB_TERM_MAX;
    while (i < in_len) {
        int32_t cp = utf8_next(s, in_len, &i);
        char enc[4];
        size_t k;
        if (cp < 0)
            return LIA_ERR_INVALID;
        if (code ? is_code_separator((uint32_t)cp) : is_blank((uint32_t)cp)) {
            pending_space = !code && o > 0;
            continue;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            return LIA_ERR_INVALID;
        k = utf8_put(fold((uint32_t)cp), enc);
        if (o + (size_t)pending_space + k > cap)
            return LIA_ERR_TOO_LARGE;
        if (pending_space)
            out[o++] = ' ';
        pending_space = 0;
        memcpy(out + o, enc, k);
        o += k;
    }
    *len = o;
    return 0;
}

/* ---------------- term extraction ---------------- */

void lia_hub_terms_free(lia_hub_terms *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        sodium_memzero((void *)t->v[i].text, t->v[i].len);
        free((void *)t->v[i].text);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Normalises text (NUL-terminated, may be NULL or empty: nothing added) and appends it. A text
 * that does not normalise (cannot happen for a validated payload) is skipped. */
static int add_term(lia_hub_terms *t, lia_hub_kind kind, const char *text)
{
    char buf[LIA_HUB_TERM_MAX];
    size_t len;
    char *copy;

    if (!text || !*text)
        return 0;
    if (lia_hub_normalise(kind, text, strlen(text), buf, sizeof buf, &len) != 0 || len == 0)
        return 0;
    if (t->n == LIA_HUB_TERMS_MAX) {
        t->truncated = 1;
        sodium_memzero(buf, len);
        return 0;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 32;
        lia_nstore_term *nv = realloc(t->v, ncap * sizeof *nv);
        if (!nv) {
            sodium_memzero(buf, len);
            return LIA_ERR_NOMEM;
        }
        t->v = nv;
        t->cap = ncap;
    }
    copy = malloc(len + 1);
    if (!copy) {
        sodium_memzero(buf, len);
        return LIA_ERR_NOMEM;
    }
    memcpy(copy, buf, len);
    copy[len] = '\0';
    sodium_memzero(buf, len);
    t->v[t->n++] = (lia_nstore_term){kind, copy, len};
    return 0;
}

/* "a b" from two parts (either may be empty: then nothing is added, the parts are indexed
 * alone). */
static int add_pair(lia_hub_terms *t, lia_hub_kind kind, const char *a, const char *b)
{
    size_t la, lb;
    char *both;
    int rc;

    if (!a || !*a || !b || !*b)
        return 0;
    la = strlen(a);
    lb = strlen(b);
    if (!(both = malloc(la + lb + 2)))
        return LIA_ERR_NOMEM;
    memcpy(both, a, la);
    both[la] = ' ';
    memcpy(both + la + 1, b, lb + 1);
    rc = add_term(t, kind, both);
    sodium_memzero(both, la + lb + 1);
    free(both);
    return rc;
}

static int cmp_loc(const void *a, const void *b)
{
    const Liaison__V1__Location *x = *(const Liaison__V1__Location *const *)a;
    const Liaison__V1__Location *y = *(const Liaison__V1__Location *const *)b;
    return strcmp(x->id, y->id);
}

/* The location with local id, in a sorted array (NULL if none). */
static const Liaison__V1__Location *find_loc(Liaison__V1__Location **sorted, size_t n,
                                             const char *id)
{
    size_t lo = 0, hi = n;
    if (!id)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid]->id, id);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int add_place(lia_hub_terms *t, const Liaison__V1__Location *l)
{
    int rc;
    if (!l)
        return 0;
    if ((rc = add_term(t, LIA_HUB_PLACE, l->name)) != 0)
        return rc;
    return add_term(t, LIA_HUB_PLACE, l->country);
}

/* Every indexed term of one entity set. Locations are looked up through a sorted copy of
 * their list, so a large set costs n log n, not legs times locations. */
static int add_entities(lia_hub_terms *t, const Liaison__V1__EntitySet *es)
{
    Liaison__V1__Location **locs = NULL;
    int rc = 0;

    if (!es)
        return 0;
    for (size_t i = 0; i < es->n_persons && rc == 0; i++) {
        const Liaison__V1__Person *p = es->persons[i];
        if ((rc = add_term(t, LIA_HUB_PERSON, p->family_name)) != 0 ||
            (rc = add_term(t, LIA_HUB_PERSON, p->given_names)) != 0 ||
            (rc = add_term(t, LIA_HUB_PERSON, p->maiden_name)) != 0 ||
            (rc = add_pair(t, LIA_HUB_PERSON, p->given_names, p->family_name)) != 0 ||
            (rc = add_pair(t, LIA_HUB_PERSON, p->family_name, p->given_names)) != 0)
            break;
        for (size_t k = 0; k < p->n_aliases && rc == 0; k++)
            rc = add_term(t, LIA_HUB_PERSON, p->aliases[k]);
    }
    for (size_t i = 0; i < es->n_documents && rc == 0; i++)
        rc = add_term(t, LIA_HUB_DOCUMENT, es->documents[i]->number);
    for (size_t i = 0; i < es->n_vehicles && rc == 0; i++) {
        if ((rc = add_term(t, LIA_HUB_VEHICLE, es->vehicles[i]->plate)) == 0)
            rc = add_term(t, LIA_HUB_VEHICLE, es->vehicles[i]->vin);
    }
    if (rc != 0 || es->n_routes == 0)
        return rc;
    if (es->n_locations) {
        if (!(locs = malloc(es->n_locations * sizeof *locs)))
            return LIA_ERR_NOMEM;
        memcpy(locs, es->locations, es->n_locations * sizeof *locs);
        qsort(locs, es->n_locations, sizeof *locs, cmp_loc);
    }
    for (size_t i = 0; i < es->n_routes && rc == 0; i++) {
        const Liaison__V1__Route *r = es->routes[i];
        for (size_t k = 0; k < r->n_legs && rc == 0; k++) {
            if ((rc = add_place(t, find_loc(locs, es->n_locations, r->legs[k]->from_ref))) == 0)
                rc = add_place(t, find_loc(locs, es->n_locations, r->legs[k]->to_ref));
        }
    }
    free(locs);
    return rc;
}

static int cmp_term(const void *a, const void *b)
{
    const lia_nstore_term *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if ((c = memcmp(x->text, y->text, n)) != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

int lia_hub_terms_of(const Liaison__V1__Payload *p, lia_hub_terms *out)
{
    int rc = 0;
    size_t w;

    if (!out)
        return LIA_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!p)
        return LIA_ERR_INVALID;
    if (p->governance)
        rc = add_term(out, LIA_HUB_CASE, p->governance->case_reference);
    if (rc == 0)
        rc = add_term(out, LIA_HUB_OFFICER, p->officer);
    if (rc != 0)
        return rc;
    switch (p->body_case) {
    case LIAISON__V1__PAYLOAD__BODY_CASE_ALERT:
        rc = add_entities(out, p->case_alert->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE:
        rc = add_entities(out, p->route_intelligence->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE:
        rc = add_entities(out, p->analysis_share->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT:
        if (p->falsified_document_alert->document)
            rc = add_term(out, LIA_HUB_DOCUMENT, p->falsified_document_alert->document->number);
        if (rc == 0)
            rc = add_entities(out, p->falsified_document_alert->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_INFORMATION_REQUEST:
        if ((rc = add_term(out, LIA_HUB_CASE, p->information_request->request_id)) == 0)
            rc = add_entities(out, p->information_request->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_RESPONSE:
        if ((rc = add_term(out, LIA_HUB_CASE, p->response->request_id)) == 0)
            rc = add_entities(out, p->response->entities);
        break;
    case LIAISON__V1__PAYLOAD__BODY_DELAY_NOTICE:
        rc = add_term(out, LIA_HUB_CASE, p->delay_notice->request_id);
        break;
    case LIAISON__V1__PAYLOAD__BODY_REFUSAL:
        rc = add_term(out, LIA_HUB_CASE, p->refusal->request_id);
        break;
    case LIAISON__V1__PAYLOAD__BODY_RECEIPT:
        rc = add_term(out, LIA_HUB_CASE, p->receipt->request_id);
        break;
    default:
        break;
    }
    if (rc != 0 || out->n < 2)
        return rc;
    /* Distinct terms only: one row per term and message. */
    qsort(out->v, out->n, sizeof *out->v, cmp_term);
    w = 1;
    for (size_t i = 1; i < out->n; i++) {
        if (cmp_term(&out->v[w - 1], &out->v[i]) == 0) {
            sodium_memzero((void *)out->v[i].text, out->v[i].len);
            free((void *)out->v[i].text);
        } else {
            out->v[w++] = out->v[i];
        }
    }
    out->n = w;
    return 0;
}

/* ---------------- indexing ---------------- */

int lia_hub_index(lia_nstore_t *s, uint64_t delivery_seq, const uint8_t *payload, size_t len)
{
    Liaison__V1__Payload *p = NULL;
    lia_hub_terms t;
    int rc;

    memset(&t, 0, sizeof t);
    if (!s || (!payload && len))
        return LIA_ERR_INVALID;
    rc = lia_payload_decode(payload, len, &p);
    if (rc == LIA_ERR_NOMEM)
        return rc;
    if (rc != 0) {
        log_warn("hub: delivery %llu has a payload that does not validate (%s); not indexed",
                 (unsigned long long)delivery_seq, lia_strerror(rc));
        return lia_nstore_hub_add(s, delivery_seq, NULL, 0);
    }
    rc = lia_hub_terms_of(p, &t);
    lia_payload_free(&p);
    if (rc == 0) {
        if (t.truncated)
            log_warn("hub: delivery %llu has more than %u terms; only the first are indexed",
                     (unsigned long long)delivery_seq, LIA_HUB_TERMS_MAX);
        rc = lia_nstore_hub_add(s, delivery_seq, t.v, t.n);
    }
    lia_hub_terms_free(&t);
    return rc;
}

int lia_hub_catch_up(lia_nstore_t *s, uint64_t *count)
{
    lia_nstore_msg msgs[CATCH_UP_BATCH];
    uint64_t after = 0, done = 0;
    size_t got = 0;
    int rc;

    if (count)
        *count = 0;
    if (!s)
        return LIA_ERR_INVALID;
    if ((rc = lia_nstore_hub_indexed(s, &after)) != 0)
        return rc;
    do {
        if ((rc = lia_nstore_inbox_list(s, after, NULL, CATCH_UP_BATCH, msgs, &got)) != 0)
            return rc;
        if (got == 0)
            break;
        if ((rc = lia_nstore_begin(s)) != 0)
            goto fail;
        for (size_t i = 0; i < got && rc == 0; i++)
            rc = lia_hub_index(s, msgs[i].delivery_seq, msgs[i].payload, msgs[i].payload_len);
        if (rc == 0)
            rc = lia_nstore_commit(s);
        if (rc != 0)
            goto fail; /* a failed group leaves the store unusable: nothing to undo */
        after = msgs[got - 1].delivery_seq;
        done += got;
        lia_nstore_msgs_free(msgs, got);
    } while (got == CATCH_UP_BATCH);
    if (count)
        *count = done;
    return 0;
fail:
    lia_nstore_msgs_free(msgs, got);
    return rc;
}

int lia_hub_query_add(lia_nstore_t *s, lia_nstore_hub_query *q, lia_hub_kind kind, const char *text)
{
    char buf[LIA_HUB_TERM_MAX];
    lia_nstore_term t;
    size_t len;
    int rc;

    if (!s || !q || !text)
        return LIA_ERR_INVALID;
    if ((rc = lia_hub_normalise(kind, text, strlen(text), buf, sizeof buf, &len)) != 0)
        return rc;
    if (len == 0)
        return LIA_ERR_INVALID;
    t = (lia_nstore_term){kind, buf, len};
    rc = lia_nstore_hub_query_add(s, q, &t);
    sodium_memzero(buf, len);
    return rc;
}

const char *lia_hub_kind_name(lia_hub_kind kind)
{
    switch (kind) {
    case LIA_HUB_CASE:
        return "case";
    case LIA_HUB_PERSON:
        return "person";
    case LIA_HUB_DOCUMENT:
        return "document";
    case LIA_HUB_VEHICLE:
        return "vehicle";
    case LIA_HUB_PLACE:
        return "place";
    case LIA_HUB_OFFICER:
        return "officer";
    }
    return "unknown";
}
