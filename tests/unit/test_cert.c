/* Unit tests for public identities: authorities, requests, certificates, revocation lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "error.h"
#include "testutil.h"
#include "utf8.h"
#include "vault.h"

#include "liaison/v1/identity.pb-c.h"

#define NOW UINT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define DAY UINT64_C(86400)

struct fixture {
    lia_identity_t *auth, *auth2, *node;
    lia_authority_info ai, ai2;
    lia_cert_info req;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    uint8_t *buf = NULL;
    size_t len = 0;

    if (!f || lia_vault_init() != 0)
        return -1;
    if (lia_identity_generate(LIA_SECRET_AUTHORITY, "Authority One", &f->auth) != 0 ||
        lia_identity_generate(LIA_SECRET_AUTHORITY, "Authority Two", &f->auth2) != 0 ||
        lia_identity_generate(LIA_SECRET_NODE, "fr-cp.paris", &f->node) != 0)
        return -1;
    if (lia_authority_create(f->auth, NOW, &buf, &len) != 0 ||
        lia_authority_parse(buf, len, &f->ai) != 0)
        return -1;
    free(buf);
    if (lia_authority_create(f->auth2, NOW, &buf, &len) != 0 ||
        lia_authority_parse(buf, len, &f->ai2) != 0)
        return -1;
    free(buf);
    if (lia_cert_request_create(f->node, LIA_ROLE_CONTACT_POINT, "FR", &buf, &len) != 0 ||
        lia_cert_request_parse(buf, len, &f->req) != 0)
        return -1;
    free(buf);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    lia_identity_destroy(&f->auth);
    lia_identity_destroy(&f->auth2);
    lia_identity_destroy(&f->node);
    free(f);
    return 0;
}

static void test_authority_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t kid[LIA_KEY_ID_BYTES];

    assert_string_equal(f->ai.name, "Authority One");
    assert_int_equal(f->ai.created_at, NOW);
    assert_memory_equal(f->ai.sign_pk, lia_identity_sign_pk(f->auth), 32);
    lia_key_id(f->ai.sign_pk, kid);
    assert_memory_equal(f->ai.key_id, kid, sizeof kid);
}

static void test_request_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    lia_cert_info r;

    assert_string_equal(f->req.node_id, "fr-cp.paris");
    assert_int_equal(f->req.role, LIA_ROLE_CONTACT_POINT);
    assert_string_equal(f->req.country, "FR");
    assert_memory_equal(f->req.sign_pk, lia_identity_sign_pk(f->node), 32);
    assert_memory_equal(f->req.enc_pk, lia_identity_enc_pk(f->node), 32);
    assert_memory_equal(f->req.transport_pk, lia_identity_transport_pk(f->node), 32);
    /* Bad inputs to create. */
    assert_int_equal(lia_cert_request_create(f->node, LIA_ROLE_HUB, "fr", &buf, &len),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_cert_request_create(f->node, (lia_role)9, "FR", &buf, &len),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_cert_request_create(f->auth, LIA_ROLE_HUB, "FR", &buf, &len),
                     LIA_ERR_WRONG_KIND);
    assert_null(buf);
    /* Every bit flip of a request is refused (the proof of possession covers everything). */
    assert_int_equal(lia_cert_request_create(f->node, LIA_ROLE_HUB, "NL", &buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_true(lia_cert_request_parse(buf, len, &r) < 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(lia_cert_request_parse(buf, len, &r), 0);
    free(buf);
}

/* A request whose signature is by another key than the one it carries. */
static void test_request_bad_pop(void **state)
{
    struct fixture *f = *state;
    Liaison__V1__CertificateRequestBody body = LIAISON__V1__CERTIFICATE_REQUEST_BODY__INIT;
    Liaison__V1__CertificateRequest outer = LIAISON__V1__CERTIFICATE_REQUEST__INIT;
    lia_identity_t *other = NULL;
    uint8_t bb[512], ob[700], msg[600], sig[64];
    size_t blen, olen;
    static const char label[] = "liaison.v1.request";
    lia_cert_info r;

    assert_int_equal(lia_identity_generate(LIA_SECRET_NODE, "other", &other), 0);
    body.version = 1;
    body.node_id = "fr-cp.paris";
    body.role = LIAISON__V1__NODE_ROLE__NODE_ROLE_CONTACT_POINT;
    body.country = "FR";
    body.sign_pk.data = (uint8_t *)lia_identity_sign_pk(f->node);
    body.sign_pk.len = 32;
    body.enc_pk.data = (uint8_t *)lia_identity_enc_pk(f->node);
    body.enc_pk.len = 32;
    body.transport_pk.data = (uint8_t *)lia_identity_transport_pk(f->node);
    body.transport_pk.len = 32;
    blen = liaison__v1__certificate_request_body__pack(&body, bb);
    memcpy(msg, label, sizeof label);
    memcpy(msg + sizeof label, bb, blen);
    /* Signed by another node's key: no proof of possession of body.sign_pk. */
    assert_int_equal(lia_identity_sign(other, msg, sizeof label + blen, sig), 0);
    outer.body.data = bb;
    outer.body.len = blen;
    outer.signature.data = sig;
    outer.signature.len = 64;
    olen = liaison__v1__certificate_request__pack(&outer, ob);
    assert_int_equal(lia_cert_request_parse(ob, olen, &r), LIA_ERR_SIGNATURE);
    /* Signed by the right key but without the label's NUL: also refused. */
    assert_int_equal(lia_identity_sign(f->node, msg, sizeof label - 1, sig), 0);
    memmove(msg + sizeof label - 1, bb, blen);
    assert_int_equal(lia_identity_sign(f->node, msg, sizeof label - 1 + blen, sig), 0);
    olen = liaison__v1__certificate_request__pack(&outer, ob);
    assert_int_equal(lia_cert_request_parse(ob, olen, &r), LIA_ERR_SIGNATURE);
    /* With the proper label it parses (the construction above is right). */
    memcpy(msg, label, sizeof label);
    memcpy(msg + sizeof label, bb, blen);
    assert_int_equal(lia_identity_sign(f->node, msg, sizeof label + blen, sig), 0);
    olen = liaison__v1__certificate_request__pack(&outer, ob);
    assert_int_equal(lia_cert_request_parse(ob, olen, &r), 0);
    lia_identity_destroy(&other);
}

static void test_cert_round_trip_and_flips(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t serial = 0;
    lia_cert_info c;
    uint8_t kid[LIA_KEY_ID_BYTES];

    assert_int_equal(lia_cert_issue(f->auth, &f->req, NOW, NOW + 30 * DAY, &serial, &buf, &len), 0);
    assert_true(serial != 0);
    assert_true(len <= LIA_CERT_MAX_BYTES);
    assert_int_equal(lia_cert_parse(buf, len, &f->ai, &c), 0);
    assert_int_equal(c.serial, serial);
    assert_string_equal(c.node_id, "fr-cp.paris");
    assert_int_equal(c.role, LIA_ROLE_CONTACT_POINT);
    assert_string_equal(c.country, "FR");
    assert_memory_equal(c.sign_pk, f->req.sign_pk, 32);
    assert_memory_equal(c.enc_pk, f->req.enc_pk, 32);
    assert_memory_equal(c.transport_pk, f->req.transport_pk, 32);
    assert_int_equal(c.not_before, NOW);
    assert_int_equal(c.not_after, NOW + 30 * DAY);
    assert_memory_equal(c.authority_id, f->ai.key_id, LIA_KEY_ID_BYTES);
    lia_key_id(c.sign_pk, kid);
    assert_memory_equal(c.sign_key_id, kid, sizeof kid);
    lia_key_id(c.enc_pk, kid);
    assert_memory_equal(c.enc_key_id, kid, sizeof kid);

    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_true(lia_cert_parse(buf, len, &f->ai, &c) < 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t n = 0; n < len; n++)
        assert_true(lia_cert_parse(buf, n, &f->ai, &c) < 0);
    /* Trailing bytes (an unknown or repeated field) are refused too. */
    {
        uint8_t *longer = malloc(len + 3);
        assert_non_null(longer);
        memcpy(longer, buf, len);
        memcpy(longer + len, "\x18\x01", 2); /* field 3, varint 1: unknown */
        assert_int_equal(lia_cert_parse(longer, len + 2, &f->ai, &c), LIA_ERR_DECODE);
        free(longer);
    }
    assert_int_equal(lia_cert_parse(buf, LIA_CERT_MAX_BYTES + 1, &f->ai, &c), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_cert_parse(buf, len, &f->ai, &c), 0);
    free(buf);
}

static void test_cert_wrong_authority(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    lia_cert_info c;

    assert_int_equal(lia_cert_issue(f->auth2, &f->req, NOW, NOW + DAY, NULL, &buf, &len), 0);
    assert_int_equal(lia_cert_parse(buf, len, &f->ai, &c), LIA_ERR_WRONG_AUTHORITY);
    assert_int_equal(lia_cert_parse(buf, len, &f->ai2, &c), 0);
    free(buf);
    /* Only an authority identity can issue. */
    assert_int_equal(lia_cert_issue(f->node, &f->req, NOW, NOW + DAY, NULL, &buf, &len),
                     LIA_ERR_WRONG_KIND);
    assert_null(buf);
}

static void test_cert_time(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    lia_cert_info c;

    assert_int_equal(lia_cert_issue(f->auth, &f->req, NOW, NOW + DAY, NULL, &buf, &len), 0);
    assert_int_equal(lia_cert_parse(buf, len, &f->ai, &c), 0);
    assert_int_equal(lia_cert_check_time(&c, NOW - 1), LIA_ERR_EXPIRED);
    assert_int_equal(lia_cert_check_time(&c, NOW), 0);
    assert_int_equal(lia_cert_check_time(&c, NOW + DAY - 1), 0);
    assert_int_equal(lia_cert_check_time(&c, NOW + DAY), LIA_ERR_EXPIRED);
    free(buf);
    assert_int_equal(lia_cert_issue(f->auth, &f->req, NOW, NOW, NULL, &buf, &len), LIA_ERR_INVALID);
    assert_null(buf);
}

static void test_cert_issue_rejects_bad_fields(void **state)
{
    struct fixture *f = *state;
    lia_cert_info r;
    uint8_t *buf = NULL;
    size_t len = 0;

    r = f->req;
    strcpy(r.node_id, "Upper");
    assert_int_equal(lia_cert_issue(f->auth, &r, NOW, NOW + 1, NULL, &buf, &len), LIA_ERR_INVALID);
    r = f->req;
    memset(r.sign_pk, 0, 32); /* small-order point */
    assert_int_equal(lia_cert_issue(f->auth, &r, NOW, NOW + 1, NULL, &buf, &len), LIA_ERR_INVALID);
    r = f->req;
    memset(r.enc_pk, 0, 32);
    assert_int_equal(lia_cert_issue(f->auth, &r, NOW, NOW + 1, NULL, &buf, &len), LIA_ERR_INVALID);
    r = f->req;
    strcpy(r.country, "F1");
    assert_int_equal(lia_cert_issue(f->auth, &r, NOW, NOW + 1, NULL, &buf, &len), LIA_ERR_INVALID);
    assert_null(buf);
}

static void test_node_id_and_roles(void **state)
{
    lia_role r;
    char id65[66];

    (void)state;
    assert_true(lia_node_id_valid("fr-cp.paris_1"));
    assert_true(lia_node_id_valid("0abc"));
    assert_false(lia_node_id_valid(""));
    assert_false(lia_node_id_valid("-abc"));
    assert_false(lia_node_id_valid(".abc"));
    assert_false(lia_node_id_valid("Abc"));
    assert_false(lia_node_id_valid("a b"));
    assert_false(lia_node_id_valid("a/b"));
    memset(id65, 'a', 65);
    id65[65] = '\0';
    assert_false(lia_node_id_valid(id65));
    id65[64] = '\0';
    assert_true(lia_node_id_valid(id65));
    assert_int_equal(lia_role_parse("hub", &r), 0);
    assert_int_equal(r, LIA_ROLE_HUB);
    assert_int_equal(lia_role_parse("contact-point", &r), 0);
    assert_int_equal(r, LIA_ROLE_CONTACT_POINT);
    assert_int_equal(lia_role_parse("Hub", &r), LIA_ERR_INVALID);
    assert_string_equal(lia_role_name(LIA_ROLE_BROKER), "broker");
    assert_true(lia_text_valid("Agence nationale \xc3\xa9", 19));
    assert_false(lia_text_valid("a\nb", 3));
    assert_false(lia_text_valid("\xc0\xaf", 2));     /* overlong */
    assert_false(lia_text_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(lia_text_valid("\xc2\x85", 2));     /* C1 control */
    assert_false(lia_text_valid("\xe2\x82", 2));     /* truncated */
}

/* Known answers computed here directly with crypto_generichash. */
static void test_key_id_and_fingerprint_kat(void **state)
{
    uint8_t pk[32], kid[LIA_KEY_ID_BYTES], h[32], msg[64];
    static const char kl[] = "liaison.v1.keyid";
    static const char fl[] = "liaison.v1.fingerprint";
    char fpr[LIA_FINGERPRINT_CHARS], want[LIA_FINGERPRINT_CHARS];
    size_t o = 0;

    (void)state;
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i;
    lia_key_id(pk, kid);
    memcpy(msg, kl, sizeof kl);
    memcpy(msg + sizeof kl, pk, 32);
    crypto_generichash(h, 32, msg, sizeof kl + 32, NULL, 0);
    assert_memory_equal(kid, h, LIA_KEY_ID_BYTES);

    lia_fingerprint(pk, 32, fpr);
    memcpy(msg, fl, sizeof fl);
    memcpy(msg + sizeof fl, pk, 32);
    crypto_generichash(h, 32, msg, sizeof fl + 32, NULL, 0);
    for (int i = 0; i < 20; i += 2) {
        if (i)
            want[o++] = ' ';
        o += (size_t)snprintf(want + o, 5, "%02x%02x", h[i], h[i + 1]);
    }
    assert_string_equal(fpr, want);
    assert_int_equal(strlen(fpr), 49);
    /* Stable: the same input again, and a different input differs. */
    {
        char again[LIA_FINGERPRINT_CHARS];
        lia_fingerprint(pk, 32, again);
        assert_string_equal(fpr, again);
        pk[0] ^= 1;
        lia_fingerprint(pk, 32, again);
        assert_string_not_equal(fpr, again);
    }
}

static void test_authority_tamper(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    lia_authority_info a;

    assert_int_equal(lia_authority_create(f->auth, NOW, &buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        assert_true(lia_authority_parse(buf, len, &a) < 0);
        buf[i] ^= 0x01;
    }
    assert_int_equal(lia_authority_parse(buf, len, &a), 0);
    free(buf);
    assert_int_equal(lia_authority_create(f->node, NOW, &buf, &len), LIA_ERR_WRONG_KIND);
}

static void test_crl_chain(void **state)
{
    struct fixture *f = *state;
    uint8_t *b1 = NULL, *b2 = NULL, *b3 = NULL, *bad = NULL;
    size_t l1, l2, l3, lbad;
    lia_crl_t *c1 = NULL, *c2 = NULL, *c3 = NULL, *tmp = NULL;
    lia_crl_entry_info e;
    uint64_t when = 0;

    assert_int_equal(lia_crl_issue(f->auth, NULL, 500, "n500", NOW, "compromised", NOW, &b1, &l1),
                     0);
    assert_int_equal(lia_crl_parse(b1, l1, &f->ai, &c1), 0);
    assert_int_equal(lia_crl_serial(c1), 1);
    assert_int_equal(lia_crl_count(c1), 1);
    assert_int_equal(lia_crl_issue(f->auth, c1, 100, "n100", NOW + 5, NULL, NOW + 1, &b2, &l2), 0);
    assert_int_equal(lia_crl_parse(b2, l2, &f->ai, &c2), 0);
    assert_int_equal(lia_crl_issue(f->auth, c2, 300, "n300", NOW + 9, "left", NOW + 2, &b3, &l3),
                     0);
    assert_int_equal(lia_crl_parse(b3, l3, &f->ai, &c3), 0);
    assert_int_equal(lia_crl_serial(c3), 3);
    assert_int_equal(lia_crl_count(c3), 3);
    assert_int_equal(lia_crl_issued_at(c3), NOW + 2);
    /* Entries carried over and kept in ascending order. */
    assert_int_equal(lia_crl_entry(c3, 0, &e), 0);
    assert_int_equal(e.serial, 100);
    assert_string_equal(e.node_id, "n100");
    assert_string_equal(e.reason, "");
    assert_int_equal(lia_crl_entry(c3, 1, &e), 0);
    assert_int_equal(e.serial, 300);
    assert_int_equal(lia_crl_entry(c3, 2, &e), 0);
    assert_int_equal(e.serial, 500);
    assert_string_equal(e.reason, "compromised");
    assert_int_equal(e.revoked_at, NOW);
    assert_int_equal(lia_crl_entry(c3, 3, &e), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_crl_lookup(c3, 300, &when), 1);
    assert_int_equal(when, NOW + 9);
    assert_int_equal(lia_crl_lookup(c3, 301, &when), 0);
    assert_int_equal(lia_crl_lookup(c3, 1, &when), 0);
    assert_int_equal(lia_crl_lookup(c3, 999, &when), 0);

    /* Duplicate serial, other authority, bad reason, bad node id. */
    assert_int_equal(lia_crl_issue(f->auth, c3, 300, "n300", NOW, "", NOW, &bad, &lbad),
                     LIA_ERR_EXISTS);
    assert_int_equal(lia_crl_issue(f->auth2, c3, 301, "n301", NOW, "", NOW, &bad, &lbad),
                     LIA_ERR_WRONG_AUTHORITY);
    assert_int_equal(lia_crl_issue(f->auth, c3, 302, "n302", NOW, "a\tb", NOW, &bad, &lbad),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_crl_issue(f->auth, c3, 302, "N302", NOW, "", NOW, &bad, &lbad),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_crl_issue(f->auth, c3, 0, "n0", NOW, "", NOW, &bad, &lbad),
                     LIA_ERR_INVALID);
    assert_null(bad);

    /* Another authority's view of the list, and tampering. */
    assert_int_equal(lia_crl_parse(b3, l3, &f->ai2, &tmp), LIA_ERR_WRONG_AUTHORITY);
    assert_null(tmp);
    for (size_t i = 0; i < l3; i++) {
        b3[i] ^= 0x10;
        assert_true(lia_crl_parse(b3, l3, &f->ai, &tmp) < 0);
        assert_null(tmp);
        b3[i] ^= 0x10;
    }
    assert_int_equal(lia_crl_parse(b3, LIA_CRL_MAX_BYTES + 1, &f->ai, &tmp), LIA_ERR_TOO_LARGE);

    lia_crl_destroy(&c1);
    lia_crl_destroy(&c2);
    lia_crl_destroy(&c3);
    assert_null(c3);
    free(b1);
    free(b2);
    free(b3);
}

/* A list signed by the authority but with entries out of order is refused. */
static void test_crl_unordered(void **state)
{
    struct fixture *f = *state;
    Liaison__V1__RevocationListBody body = LIAISON__V1__REVOCATION_LIST_BODY__INIT;
    Liaison__V1__RevocationList outer = LIAISON__V1__REVOCATION_LIST__INIT;
    Liaison__V1__RevokedCertificate e1 = LIAISON__V1__REVOKED_CERTIFICATE__INIT;
    Liaison__V1__RevokedCertificate e2 = LIAISON__V1__REVOKED_CERTIFICATE__INIT;
    Liaison__V1__RevokedCertificate *list[2] = {&e1, &e2};
    static const char label[] = "liaison.v1.crl";
    uint8_t bb[512], ob[700], msg[600], sig[64];
    size_t blen, olen;
    lia_crl_t *crl = NULL;

    e1.serial = 9;
    e1.node_id = "a";
    e2.serial = 4;
    e2.node_id = "b";
    body.version = 1;
    body.authority_id.data = f->ai.key_id;
    body.authority_id.len = LIA_KEY_ID_BYTES;
    body.serial = 1;
    body.n_revoked = 2;
    body.revoked = list;
    for (int variant = 0; variant < 3; variant++) {
        if (variant == 1)
            e2.serial = 9; /* duplicate */
        if (variant == 2)
            e2.serial = 10; /* in order: accepted */
        blen = liaison__v1__revocation_list_body__pack(&body, bb);
        memcpy(msg, label, sizeof label);
        memcpy(msg + sizeof label, bb, blen);
        assert_int_equal(lia_identity_sign(f->auth, msg, sizeof label + blen, sig), 0);
        outer.body.data = bb;
        outer.body.len = blen;
        outer.signature.data = sig;
        outer.signature.len = 64;
        olen = liaison__v1__revocation_list__pack(&outer, ob);
        assert_int_equal(lia_crl_parse(ob, olen, &f->ai, &crl), variant == 2 ? 0 : LIA_ERR_DECODE);
        lia_crl_destroy(&crl);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authority_round_trip),
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_bad_pop),
        cmocka_unit_test(test_cert_round_trip_and_flips),
        cmocka_unit_test(test_cert_wrong_authority),
        cmocka_unit_test(test_cert_time),
        cmocka_unit_test(test_cert_issue_rejects_bad_fields),
        cmocka_unit_test(test_node_id_and_roles),
        cmocka_unit_test(test_key_id_and_fingerprint_kat),
        cmocka_unit_test(test_authority_tamper),
        cmocka_unit_test(test_crl_chain),
        cmocka_unit_test(test_crl_unordered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
