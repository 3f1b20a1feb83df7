/* The hub index: normalisation, the terms taken from a payload, indexing inside a store group,
 * search by each kind of entity and by sender, channel and time, paging, catch-up of messages
 * stored before the index existed, and that no indexed term is in the store file in clear. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "error.h"
#include "hub.h"
#include "log.h"
#include "payload.h"
#include "store.h"
#include "testutil.h"
#include "vault.h"

#define T0 1700000000000ull

static lia_symkey_t *new_key(void)
{
    lia_symkey_t *k;
    assert_int_equal(lia_symkey_generate(&k), 0);
    return k;
}

/* Normalises NUL-terminated text; returns the result in a static buffer, or NULL on error. */
static const char *norm(lia_hub_kind kind, const char *in)
{
    static char out[LIA_HUB_TERM_MAX + 1];
    size_t len;
    if (lia_hub_normalise(kind, in, strlen(in), out, LIA_HUB_TERM_MAX, &len) != 0)
        return NULL;
    out[len] = '\0';
    return out;
}

static void test_normalise(void **state)
{
    char big[LIA_HUB_TERM_MAX + 2], out[8];
    size_t len;
    (void)state;

    assert_string_equal(norm(LIA_HUB_PERSON, "  Dritan \t  HOXHA \n"), "dritan hoxha");
    assert_string_equal(norm(LIA_HUB_CASE, "2026-0042"), "2026-0042");
    assert_string_equal(norm(LIA_HUB_VEHICLE, "B-123 xy"), "b123xy");
    assert_string_equal(norm(LIA_HUB_VEHICLE, "b.123.XY"), "b123xy");
    assert_string_equal(norm(LIA_HUB_DOCUMENT, "ba 123-4567"), "ba1234567");
    /* Latin-1, Latin Extended-A/B, Greek, Cyrillic; accents stay. */
    assert_string_equal(norm(LIA_HUB_PERSON, "MÜLLER"), "müller");
    assert_string_equal(norm(LIA_HUB_PERSON, "ŞERBAN Ștefan ŁUKASZ Źdźbło"),
                        "şerban ștefan łukasz źdźbło");
    assert_string_equal(norm(LIA_HUB_PERSON, "ΣΟΦΙΑ ΠΑΠΑΔΟΠΟΥΛΟΣ"), "σοφια παπαδοπουλοσ");
    assert_string_equal(norm(LIA_HUB_PERSON, "ИВАНОВ Ёжик"), "иванов ёжик");
    assert_string_equal(norm(LIA_HUB_PLACE, "Munich,\u00a0Fröttmaning"), "munich, fröttmaning");
    assert_string_not_equal(norm(LIA_HUB_PERSON, "Muller"), "müller");
    /* Nothing but blanks: an empty term. */
    assert_int_equal(lia_hub_normalise(LIA_HUB_PERSON, "  \t ", 4, out, sizeof out, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(lia_hub_normalise(LIA_HUB_VEHICLE, "- . -", 5, out, sizeof out, &len), 0);
    assert_int_equal(len, 0);
    /* Refused: invalid UTF-8, overlong forms, surrogates, control characters, bad kinds. */
    assert_null(norm(LIA_HUB_PERSON, "abc\xff"));
    assert_null(norm(LIA_HUB_PERSON, "\xc0\xaf"));
    assert_null(norm(LIA_HUB_PERSON, "\xed\xa0\x80"));
    assert_null(norm(LIA_HUB_PERSON, "\xc3"));
    assert_null(norm(LIA_HUB_PERSON, "a\x01z"));
    assert_null(norm(LIA_HUB_PERSON, "a\xc2\x85z")); /* C1 control */
    assert_int_equal(lia_hub_normalise(0, "x", 1, out, sizeof out, &len), LIA_ERR_INVALID);
    assert_int_equal(lia_hub_normalise(LIA_HUB_KIND_MAX + 1, "x", 1, out, sizeof out, &len),
                     LIA_ERR_INVALID);
    /* Bounds: the output buffer, then LIA_HUB_TERM_MAX. */
    assert_int_equal(lia_hub_normalise(LIA_HUB_PERSON, "abcdefghij", 10, out, sizeof out, &len),
                     LIA_ERR_TOO_LARGE);
    memset(big, 'a', sizeof big);
    {
        char *o = malloc(2 * sizeof big);
        assert_non_null(o);
        assert_int_equal(
            lia_hub_normalise(LIA_HUB_PERSON, big, LIA_HUB_TERM_MAX, o, 2 * sizeof big, &len), 0);
        assert_int_equal(len, LIA_HUB_TERM_MAX);
        assert_int_equal(
            lia_hub_normalise(LIA_HUB_PERSON, big, LIA_HUB_TERM_MAX + 1, o, 2 * sizeof big, &len),
            LIA_ERR_TOO_LARGE);
        free(o);
    }
}

/* Tokens: deterministic for one key and message, different for another key, another message
 * (kind byte included) or a subkey-free hash; arguments checked. */
static void test_index_token(void **state)
{
    static const uint8_t m1[] = "\x02hoxha", m2[] = "\x03hoxha";
    uint8_t a[LIA_INDEX_TOKEN_BYTES], b[LIA_INDEX_TOKEN_BYTES], c[LIA_INDEX_TOKEN_BYTES];
    lia_symkey_t *k1 = new_key(), *k2 = new_key();
    (void)state;

    assert_int_equal(lia_symkey_index_token(k1, m1, sizeof m1 - 1, a), 0);
    assert_int_equal(lia_symkey_index_token(k1, m1, sizeof m1 - 1, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(lia_symkey_index_token(k2, m1, sizeof m1 - 1, c), 0);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(lia_symkey_index_token(k1, m2, sizeof m2 - 1, c), 0);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(crypto_generichash(c, sizeof c, m1, sizeof m1 - 1, NULL, 0), 0);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(lia_symkey_index_token(NULL, m1, 1, a), LIA_ERR_INVALID);
    assert_int_equal(lia_symkey_index_token(k1, NULL, 1, a), LIA_ERR_INVALID);
    assert_int_equal(lia_symkey_index_token(k1, m1, 1, NULL), LIA_ERR_INVALID);
    lia_symkey_destroy(&k1);
    lia_symkey_destroy(&k2);
}

/* What to put into a test payload (NULL: keep the example's value). */
struct spec {
    const char *case_ref, *officer, *family, *given, *document, *plate, *place;
    int route; /* route intelligence instead of a case alert */
};

/*
 * A valid serialised payload: the library's example case alert (a suspect HOXHA Dritan alias
 * "Dritan the Driver", passport BA1234567, van "B 123 XY", a route BG -> AT -> DE) with the
 * fields of sp replaced.
 */
static uint8_t *make_payload(const struct spec *sp, size_t *len)
{
    Liaison__V1__Payload *p = NULL;
    Liaison__V1__RouteIntelligence ri = LIAISON__V1__ROUTE_INTELLIGENCE__INIT;
    Liaison__V1__CaseAlert *ca;
    Liaison__V1__EntitySet *es;
    char *saved[7];
    uint8_t *ex = NULL, *out;
    size_t exlen = 0;

    assert_int_equal(lia_payload_example_case_alert(sp->case_ref ? sp->case_ref : "2026-0042",
                                                    sp->officer ? sp->officer : "officer.a", &ex,
                                                    &exlen),
                     0);
    assert_int_equal(lia_payload_decode(ex, exlen, &p), 0);
    free(ex);
    ca = p->case_alert;
    es = ca->entities;
    saved[0] = es->persons[0]->family_name;
    saved[1] = es->persons[0]->given_names;
    saved[2] = es->documents[0]->number;
    saved[3] = es->vehicles[0]->plate;
    saved[4] = es->locations[2]->name;
    if (sp->family)
        es->persons[0]->family_name = (char *)sp->family;
    if (sp->given)
        es->persons[0]->given_names = (char *)sp->given;
    if (sp->document)
        es->documents[0]->number = (char *)sp->document;
    if (sp->plate)
        es->vehicles[0]->plate = (char *)sp->plate;
    if (sp->place)
        es->locations[2]->name = (char *)sp->place;
    if (sp->route) {
        ri.title = "Route of the network";
        ri.modus_operandi = "Vans with false walls";
        ri.entities = es;
        p->body_case = LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE;
        p->route_intelligence = &ri;
    }
    assert_int_equal(lia_payload_validate(p), 0);
    *len = liaison__v1__payload__get_packed_size(p);
    out = malloc(*len);
    assert_non_null(out);
    liaison__v1__payload__pack(p, out);
    if (sp->route) {
        p->body_case = LIAISON__V1__PAYLOAD__BODY_CASE_ALERT;
        p->case_alert = ca;
    }
    es->persons[0]->family_name = saved[0];
    es->persons[0]->given_names = saved[1];
    es->documents[0]->number = saved[2];
    es->vehicles[0]->plate = saved[3];
    es->locations[2]->name = saved[4];
    lia_payload_free(&p);
    return out;
}

static int has_term(const lia_hub_terms *t, lia_hub_kind kind, const char *text)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && t->v[i].len == strlen(text) &&
            memcmp(t->v[i].text, text, t->v[i].len) == 0)
            return 1;
    return 0;
}

static void test_terms_of(void **state)
{
    struct spec sp = {.case_ref = "2026-0042", .officer = "Officer.Smith"};
    Liaison__V1__Payload *p = NULL;
    lia_hub_terms t;
    uint8_t *buf;
    size_t len;
    (void)state;

    buf = make_payload(&sp, &len);
    assert_int_equal(lia_payload_decode(buf, len, &p), 0);
    assert_int_equal(lia_hub_terms_of(p, &t), 0);
    assert_true(has_term(&t, LIA_HUB_CASE, "2026-0042"));
    assert_true(has_term(&t, LIA_HUB_OFFICER, "officer.smith"));
    assert_true(has_term(&t, LIA_HUB_PERSON, "hoxha"));
    assert_true(has_term(&t, LIA_HUB_PERSON, "dritan"));
    assert_true(has_term(&t, LIA_HUB_PERSON, "dritan hoxha"));
    assert_true(has_term(&t, LIA_HUB_PERSON, "hoxha dritan"));
    assert_true(has_term(&t, LIA_HUB_PERSON, "dritan the driver"));
    assert_true(has_term(&t, LIA_HUB_DOCUMENT, "ba1234567"));
    assert_true(has_term(&t, LIA_HUB_VEHICLE, "b123xy"));
    assert_true(has_term(&t, LIA_HUB_VEHICLE, "wdb9066331s123456"));
    assert_true(has_term(&t, LIA_HUB_PLACE, "kapitan andreevo border crossing point"));
    assert_true(has_term(&t, LIA_HUB_PLACE, "munich, fröttmaning park-and-ride"));
    assert_true(has_term(&t, LIA_HUB_PLACE, "bg"));
    assert_true(has_term(&t, LIA_HUB_PLACE, "at"));
    assert_true(has_term(&t, LIA_HUB_PLACE, "de"));
    /* Not indexed: free text, other fields. */
    assert_false(has_term(&t, LIA_HUB_PERSON, "lorry driver"));
    assert_false(has_term(&t, LIA_HUB_PLACE, "durrës"));
    /* Distinct and sorted: "nickelsdorf..." is both the end of leg 1 and the start of leg 2. */
    for (size_t i = 1; i < t.n; i++) {
        assert_true(t.v[i - 1].kind <= t.v[i].kind);
        if (t.v[i - 1].kind == t.v[i].kind)
            assert_true(t.v[i - 1].len != t.v[i].len ||
                        memcmp(t.v[i - 1].text, t.v[i].text, t.v[i].len) != 0);
    }
    assert_int_equal(t.n, 16);
    lia_hub_terms_free(&t);
    assert_int_equal(t.n, 0);
    lia_payload_free(&p);
    free(buf);
}

/* Stores and indexes message seq (inside the open group). */
static void put(lia_nstore_t *s, uint64_t seq, const char *sender, const char *channel,
                uint64_t created, const uint8_t *payload, size_t len, int index)
{
    lia_nstore_msg m;
    memset(&m, 0, sizeof m);
    m.delivery_seq = seq;
    snprintf(m.sender, sizeof m.sender, "%s", sender);
    snprintf(m.channel, sizeof m.channel, "%s", channel);
    m.sender_seq = seq;
    m.created_at_ms = created;
    m.received_at_ms = created + 5;
    randombytes_buf(m.message_id, sizeof m.message_id);
    m.payload = (uint8_t *)payload;
    m.payload_len = len;
    assert_int_equal(lia_nstore_inbox_add(s, &m), 0);
    if (index)
        assert_int_equal(lia_hub_index(s, seq, payload, len), 0);
}

/* Runs a query with one optional term; returns the delivery sequences found as a string
 * "1,3,4" (static buffer). */
static const char *found(lia_nstore_t *s, const lia_nstore_hub_query *base, lia_hub_kind kind,
                         const char *text, uint64_t after, size_t max)
{
    static char out[256];
    lia_nstore_hub_query q = *base;
    lia_nstore_msg got[16];
    size_t n = 0, o = 0;

    if (text)
        assert_int_equal(lia_hub_query_add(s, &q, kind, text), 0);
    assert_int_equal(lia_nstore_hub_search(s, &q, after, max, got, &n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%llu", i ? "," : "",
                              (unsigned long long)got[i].delivery_seq);
    lia_nstore_msgs_free(got, n);
    return out;
}

static int file_has(const char *path, const char *needle)
{
    size_t len;
    uint8_t *buf;
    int hit;
    if (access(path, F_OK) != 0)
        return 0;
    buf = tu_read_file(path, &len);
    hit = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return hit;
}

static void test_index_and_search(void **state)
{
    char dir[512], path[600], wal[600];
    struct spec s1 = {.case_ref = "2026-0042", .officer = "officer.a"};
    struct spec s2 = {.case_ref = "2026-0077",
                      .officer = "officer.b",
                      .family = "KOVAČ",
                      .given = "Marta Ana",
                      .document = "X9876543",
                      .plate = "ZG 4471-KL",
                      .place = "Bregana border crossing point",
                      .route = 1};
    struct spec s3 = {.case_ref = "2026-0077", .officer = "officer.a", .family = "Petrov"};
    lia_symkey_t *key = new_key();
    lia_nstore_hub_query q0, q;
    lia_nstore_msg got[4];
    uint8_t *p1, *p2, *p3;
    size_t l1, l2, l3, n;
    uint64_t upto;
    lia_nstore_t *s;
    (void)state;

    /* Own copies: tu_path's buffers rotate. */
    snprintf(dir, sizeof dir, "%s", tu_mkdtemp("hub-search"));
    snprintf(path, sizeof path, "%s/node.db", dir);
    snprintf(wal, sizeof wal, "%s/node.db-wal", dir);
    memset(&q0, 0, sizeof q0);
    p1 = make_payload(&s1, &l1);
    p2 = make_payload(&s2, &l2);
    p3 = make_payload(&s3, &l3);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    /* Not a hub yet. */
    assert_int_equal(lia_nstore_hub_search(s, &q0, 0, 4, got, &n), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_hub_enable(s), 0);
    assert_int_equal(lia_nstore_hub_enable(s), 0);                        /* idempotent */
    assert_int_equal(lia_nstore_hub_add(s, 1, NULL, 0), LIA_ERR_INVALID); /* no group */
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_hub_enable(s), LIA_ERR_INVALID); /* not inside a group */
    put(s, 1, "fr-ncp", "ch-balkan", T0 + 1000, p1, l1, 1);
    put(s, 2, "de-ncp", "ch-adriatic", T0 + 2000, p2, l2, 1);
    put(s, 4, "fr-ncp", "", T0 + 3000, p3, l3, 1); /* a direct message */
    put(s, 5, "de-ncp", "ch-balkan", T0 + 4000, (const uint8_t *)"not a payload", 13, 1);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_hub_indexed(s, &upto), 0);
    assert_int_equal(upto, 5);

    /* Each kind of entity, in any spelling that normalises the same. */
    assert_string_equal(found(s, &q0, LIA_HUB_CASE, "2026-0042", 0, 16), "1");
    assert_string_equal(found(s, &q0, LIA_HUB_CASE, " 2026-0077 ", 0, 16), "2,4");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "hoxha", 0, 16), "1");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "DRITAN   HOXHA", 0, 16), "1");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "dritan", 0, 16), "1,4");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "Dritan the driver", 0, 16), "1,2,4");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "kovač", 0, 16), "2");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "Marta Ana Kovač", 0, 16), "2");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "petrov dritan", 0, 16), "4");
    assert_string_equal(found(s, &q0, LIA_HUB_DOCUMENT, "ba 1234567", 0, 16), "1,4");
    assert_string_equal(found(s, &q0, LIA_HUB_DOCUMENT, "x9876543", 0, 16), "2");
    assert_string_equal(found(s, &q0, LIA_HUB_VEHICLE, "ZG4471KL", 0, 16), "2");
    assert_string_equal(found(s, &q0, LIA_HUB_VEHICLE, "b-123-xy", 0, 16), "1,4");
    assert_string_equal(found(s, &q0, LIA_HUB_PLACE, "bregana border crossing point", 0, 16), "2");
    assert_string_equal(found(s, &q0, LIA_HUB_PLACE, "AT", 0, 16), "1,2,4");
    assert_string_equal(found(s, &q0, LIA_HUB_OFFICER, "officer.a", 0, 16), "1,4");
    /* Exact terms only: no substring, no prefix, no other kind. */
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "hox", 0, 16), "");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "hoxha dritan the", 0, 16), "");
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "ba1234567", 0, 16), "");
    assert_string_equal(found(s, &q0, LIA_HUB_CASE, "2026", 0, 16), "");

    /* Several terms: all must match. */
    q = q0;
    assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_PERSON, "dritan the driver"), 0);
    assert_string_equal(found(s, &q, LIA_HUB_CASE, "2026-0077", 0, 16), "2,4");
    assert_string_equal(found(s, &q, LIA_HUB_OFFICER, "officer.b", 0, 16), "2");
    assert_string_equal(found(s, &q, LIA_HUB_OFFICER, "officer.c", 0, 16), "");

    /* Sender, channel (a direct message is channel ""), time, with and without terms. */
    q = q0;
    snprintf(q.sender, sizeof q.sender, "fr-ncp");
    assert_string_equal(found(s, &q, 0, NULL, 0, 16), "1,4");
    assert_string_equal(found(s, &q, LIA_HUB_PERSON, "petrov", 0, 16), "4");
    q = q0;
    q.by_channel = 1;
    snprintf(q.channel, sizeof q.channel, "ch-balkan");
    assert_string_equal(found(s, &q, 0, NULL, 0, 16), "1,5");
    q.channel[0] = '\0';
    assert_string_equal(found(s, &q, 0, NULL, 0, 16), "4");
    assert_string_equal(found(s, &q, LIA_HUB_DOCUMENT, "ba1234567", 0, 16), "4");
    q = q0;
    q.since_ms = T0 + 2000;
    assert_string_equal(found(s, &q, 0, NULL, 0, 16), "2,4,5");
    q.until_ms = T0 + 4000;
    assert_string_equal(found(s, &q, 0, NULL, 0, 16), "2,4");
    assert_string_equal(found(s, &q, LIA_HUB_PLACE, "de", 0, 16), "2,4");
    q.since_ms = 0;
    assert_string_equal(found(s, &q, LIA_HUB_PERSON, "hoxha", 0, 16), "1");

    /* Paging: after and max. */
    assert_string_equal(found(s, &q0, LIA_HUB_PLACE, "at", 0, 2), "1,2");
    assert_string_equal(found(s, &q0, LIA_HUB_PLACE, "at", 2, 2), "4");
    assert_string_equal(found(s, &q0, 0, NULL, 1, 2), "2,4");

    /* The payload comes back decrypted, as stored. */
    q = q0;
    assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_VEHICLE, "zg 4471 kl"), 0);
    assert_int_equal(lia_nstore_hub_search(s, &q, 0, 4, got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].sender, "de-ncp");
    assert_string_equal(got[0].channel, "ch-adriatic");
    assert_int_equal(got[0].payload_len, l2);
    assert_memory_equal(got[0].payload, p2, l2);
    lia_nstore_msgs_free(got, n);

    /* Query bounds. */
    q = q0;
    for (int i = 0; i < LIA_HUB_QUERY_TERMS_MAX; i++)
        assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_PERSON, "x"), 0);
    assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_PERSON, "x"), LIA_ERR_LIMIT);
    q = q0;
    assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_PERSON, "   "), LIA_ERR_INVALID);
    assert_int_equal(lia_hub_query_add(s, &q, LIA_HUB_PERSON, "\xff"), LIA_ERR_INVALID);
    assert_int_equal(q.n_tokens, 0);
    lia_nstore_close(&s);

    /* At rest: no indexed term in clear, in any spelling, in the database or its WAL. */
    {
        static const char *const terms[] = {
            "2026-0042", "2026-0077", "HOXHA",     "hoxha",     "Dritan",      "dritan",
            "KOVA",      "kova",      "Petrov",    "petrov",    "BA1234567",   "ba1234567",
            "X9876543",  "x9876543",  "B 123 XY",  "b123xy",    "ZG 4471",     "zg4471kl",
            "Bregana",   "bregana",   "officer.a", "officer.b", "Nickelsdorf", "nickelsdorf"};
        for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
            assert_false(file_has(path, terms[i]));
            assert_false(file_has(wal, terms[i]));
        }
    }

    /* Reopened: the index is still there and searchable. Another storage key makes other
     * tokens: it finds nothing (and could not decrypt the rows anyway). */
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_hub_enable(s), 0);
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "kovač", 0, 16), "2");
    lia_nstore_close(&s);
    {
        lia_symkey_t *k2 = new_key();
        assert_int_equal(lia_nstore_open(path, k2, &s), 0);
        assert_int_equal(lia_nstore_hub_enable(s), 0);
        assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "kovač", 0, 16), "");
        lia_nstore_close(&s);
        lia_symkey_destroy(&k2);
    }
    free(p1);
    free(p2);
    free(p3);
    lia_symkey_destroy(&key);
}

/* A node that becomes a hub indexes what it stored before, once. */
static void test_catch_up(void **state)
{
    const char *path = tu_path(tu_mkdtemp("hub-catch-up"), "node.db");
    struct spec sp = {.case_ref = "2026-0101", .family = "Novak"};
    lia_nstore_hub_query q0;
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    uint64_t count, upto;
    uint8_t *p;
    size_t len;
    (void)state;

    memset(&q0, 0, sizeof q0);
    p = make_payload(&sp, &len);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 1; i <= 300; i++)
        put(s, i, "fr-ncp", "ch-a", T0 + i, p, len, 0);
    assert_int_equal(lia_nstore_inbox_refused(s, 301, "signature"), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    lia_nstore_close(&s);

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_hub_enable(s), 0);
    assert_int_equal(lia_nstore_hub_indexed(s, &upto), 0);
    assert_int_equal(upto, 0);
    assert_int_equal(lia_hub_catch_up(s, &count), 0);
    assert_int_equal(count, 300);
    assert_int_equal(lia_nstore_hub_indexed(s, &upto), 0);
    assert_int_equal(upto, 300);
    assert_string_equal(found(s, &q0, LIA_HUB_PERSON, "novak", 297, 16), "298,299,300");
    /* New messages are indexed as they are stored; a second catch-up has nothing to do. */
    assert_int_equal(lia_nstore_begin(s), 0);
    put(s, 302, "de-ncp", "ch-a", T0 + 302, p, len, 1);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_hub_catch_up(s, &count), 0);
    assert_int_equal(count, 0);
    assert_string_equal(found(s, &q0, LIA_HUB_CASE, "2026-0101", 299, 16), "300,302");
    lia_nstore_close(&s);
    free(p);
    lia_symkey_destroy(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise), cmocka_unit_test(test_index_token),
        cmocka_unit_test(test_terms_of),  cmocka_unit_test(test_index_and_search),
        cmocka_unit_test(test_catch_up),
    };
    if (lia_vault_init() != 0)
        return 1;
    lia_log_set_level(LIA_LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
