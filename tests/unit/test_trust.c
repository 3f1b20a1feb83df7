/* Unit tests for the trust store: certificate lookup, validity, revocation, list freshness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "error.h"
#include "testutil.h"
#include "trust.h"
#include "vault.h"

#define NOW UINT64_C(1767225600)
#define DAY UINT64_C(86400)

struct fixture {
    lia_identity_t *auth, *other_auth, *a, *b;
    lia_authority_info ai, other_ai;
    lia_cert_info ra, rb;
    uint8_t *ca, *cb, *ca2;
    size_t la, lb, la2;
    uint64_t sa, sb, sa2;
};

static int request_of(lia_identity_t *node, lia_cert_info *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = lia_cert_request_create(node, LIA_ROLE_HUB, "NL", &buf, &len);
    if (rc == 0)
        rc = lia_cert_request_parse(buf, len, out);
    free(buf);
    return rc;
}

static int authority_of(lia_identity_t *id, lia_authority_info *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = lia_authority_create(id, NOW, &buf, &len);
    if (rc == 0)
        rc = lia_authority_parse(buf, len, out);
    free(buf);
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (!f || lia_vault_init() != 0 ||
        lia_identity_generate(LIA_SECRET_AUTHORITY, "auth", &f->auth) != 0 ||
        lia_identity_generate(LIA_SECRET_AUTHORITY, "other", &f->other_auth) != 0 ||
        lia_identity_generate(LIA_SECRET_NODE, "node-a", &f->a) != 0 ||
        lia_identity_generate(LIA_SECRET_NODE, "node-b", &f->b) != 0 ||
        authority_of(f->auth, &f->ai) != 0 || authority_of(f->other_auth, &f->other_ai) != 0 ||
        request_of(f->a, &f->ra) != 0 || request_of(f->b, &f->rb) != 0)
        return -1;
    /* node-a: valid [NOW, NOW+10d); renewed with the same keys [NOW+9d, NOW+40d). */
    if (lia_cert_issue(f->auth, &f->ra, NOW, NOW + 10 * DAY, &f->sa, &f->ca, &f->la) != 0 ||
        lia_cert_issue(f->auth, &f->ra, NOW + 9 * DAY, NOW + 40 * DAY, &f->sa2, &f->ca2, &f->la2) !=
            0 ||
        lia_cert_issue(f->auth, &f->rb, NOW, NOW + 10 * DAY, &f->sb, &f->cb, &f->lb) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    lia_identity_destroy(&f->auth);
    lia_identity_destroy(&f->other_auth);
    lia_identity_destroy(&f->a);
    lia_identity_destroy(&f->b);
    free(f->ca);
    free(f->ca2);
    free(f->cb);
    free(f);
    return 0;
}

static lia_trust_t *store(struct fixture *f)
{
    lia_trust_t *t = NULL;
    const lia_cert_info *c = NULL;

    assert_int_equal(lia_trust_new(&f->ai, &t), 0);
    assert_int_equal(lia_trust_add_cert(t, f->ca, f->la, &c), 0);
    assert_non_null(c);
    assert_int_equal(c->serial, f->sa);
    assert_int_equal(lia_trust_add_cert(t, f->cb, f->lb, NULL), 0);
    return t;
}

static void test_find(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = store(f);
    const lia_cert_info *c = NULL;

    assert_memory_equal(lia_trust_authority(t)->key_id, f->ai.key_id, LIA_KEY_ID_BYTES);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 1, &c), 0);
    assert_int_equal(c->serial, f->sa);
    assert_int_equal(lia_trust_find(t, "nobody", f->ra.sign_key_id, NOW + 1, &c),
                     LIA_ERR_UNKNOWN_SENDER);
    assert_null(c);
    assert_int_equal(lia_trust_find(t, "node-a", f->rb.sign_key_id, NOW + 1, &c),
                     LIA_ERR_KEY_MISMATCH);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW - 1, &c), LIA_ERR_EXPIRED);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 10 * DAY, &c),
                     LIA_ERR_EXPIRED);
    assert_null(c);
    lia_trust_destroy(&t);
    assert_null(t);
}

static void test_add_cert_checks(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    const lia_cert_info *c1 = NULL, *c2 = NULL;

    assert_int_equal(lia_trust_new(&f->ai, &t), 0);
    assert_int_equal(lia_cert_issue(f->other_auth, &f->ra, NOW, NOW + DAY, NULL, &buf, &len), 0);
    assert_int_equal(lia_trust_add_cert(t, buf, len, &c1), LIA_ERR_WRONG_AUTHORITY);
    assert_null(c1);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 1, &c1),
                     LIA_ERR_UNKNOWN_SENDER);
    free(buf);
    /* Same certificate twice: one entry. Many certificates: the store grows. */
    assert_int_equal(lia_trust_add_cert(t, f->ca, f->la, &c1), 0);
    assert_int_equal(lia_trust_add_cert(t, f->ca, f->la, &c2), 0);
    assert_ptr_equal(c1, c2);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(lia_cert_issue(f->auth, &f->rb, NOW, NOW + DAY, NULL, &buf, &len), 0);
        assert_int_equal(lia_trust_add_cert(t, buf, len, NULL), 0);
        free(buf);
    }
    /* Pointers handed out stay valid as the store grows. */
    assert_int_equal(c1->serial, f->sa);
    assert_int_equal(lia_trust_find(t, "node-b", f->rb.sign_key_id, NOW + 1, &c2), 0);
    lia_trust_destroy(&t);
}

static void test_revocation(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = store(f);
    const lia_cert_info *c = NULL;
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1, l2;
    lia_crl_t *crl1 = NULL;

    assert_int_equal(lia_trust_crl_serial(t), 0);
    /* node-a revoked as of NOW + 5 days. */
    assert_int_equal(lia_crl_issue(f->auth, NULL, f->sa, "node-a", NOW + 5 * DAY, "test",
                                   NOW + 5 * DAY, &b1, &l1),
                     0);
    assert_int_equal(lia_trust_set_crl(t, b1, l1), 0);
    assert_int_equal(lia_trust_crl_serial(t), 1);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 5 * DAY - 1, &c), 0);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 5 * DAY, &c),
                     LIA_ERR_REVOKED);
    assert_null(c);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 6 * DAY, &c),
                     LIA_ERR_REVOKED);
    /* Other nodes are unaffected. */
    assert_int_equal(lia_trust_find(t, "node-b", f->rb.sign_key_id, NOW + 6 * DAY, &c), 0);

    /* The same list again, or an older one, is stale. */
    assert_int_equal(lia_trust_set_crl(t, b1, l1), LIA_ERR_STALE);
    assert_int_equal(lia_crl_parse(b1, l1, &f->ai, &crl1), 0);
    assert_int_equal(
        lia_crl_issue(f->auth, crl1, f->sb, "node-b", NOW + 7 * DAY, "", NOW + 7 * DAY, &b2, &l2),
        0);
    assert_int_equal(lia_trust_set_crl(t, b2, l2), 0);
    assert_int_equal(lia_trust_crl_serial(t), 2);
    assert_int_equal(lia_trust_set_crl(t, b1, l1), LIA_ERR_STALE);
    assert_int_equal(lia_trust_crl_serial(t), 2);
    assert_int_equal(lia_trust_find(t, "node-b", f->rb.sign_key_id, NOW + 7 * DAY, &c),
                     LIA_ERR_REVOKED);
    /* A list from another authority or a damaged one is refused and changes nothing. */
    b2[l2 / 2] ^= 1;
    assert_true(lia_trust_set_crl(t, b2, l2) < 0);
    assert_int_equal(lia_trust_crl_serial(t), 2);
    lia_crl_destroy(&crl1);
    free(b1);
    free(b2);
    assert_int_equal(lia_crl_issue(f->other_auth, NULL, 1, "x", NOW, "", NOW, &b1, &l1), 0);
    assert_int_equal(lia_trust_set_crl(t, b1, l1), LIA_ERR_WRONG_AUTHORITY);
    free(b1);
    lia_trust_destroy(&t);
}

static void test_renewal_and_current(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = store(f);
    const lia_cert_info *c = NULL;
    uint8_t *b = NULL;
    size_t l;

    assert_int_equal(lia_trust_add_cert(t, f->ca2, f->la2, NULL), 0);
    /* In the overlap the later-expiring certificate is current. */
    assert_int_equal(lia_trust_find_current(t, "node-a", NOW + 9 * DAY + 1, &c), 0);
    assert_int_equal(c->serial, f->sa2);
    assert_int_equal(lia_trust_find_current(t, "node-a", NOW + 1, &c), 0);
    assert_int_equal(c->serial, f->sa);
    /* After the first expires, the key is still valid through the renewal. */
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 20 * DAY, &c), 0);
    assert_int_equal(c->serial, f->sa2);
    assert_int_equal(lia_trust_find_current(t, "node-a", NOW + 50 * DAY, &c), LIA_ERR_EXPIRED);
    assert_int_equal(lia_trust_find_current(t, "nobody", NOW, &c), LIA_ERR_UNKNOWN_SENDER);
    /* Revoking the renewal leaves only the first certificate. */
    assert_int_equal(lia_crl_issue(f->auth, NULL, f->sa2, "node-a", NOW, "", NOW, &b, &l), 0);
    assert_int_equal(lia_trust_set_crl(t, b, l), 0);
    assert_int_equal(lia_trust_find_current(t, "node-a", NOW + 9 * DAY + 1, &c), 0);
    assert_int_equal(c->serial, f->sa);
    assert_int_equal(lia_trust_find(t, "node-a", f->ra.sign_key_id, NOW + 20 * DAY, &c),
                     LIA_ERR_REVOKED);
    free(b);
    lia_trust_destroy(&t);
}

struct seen {
    size_t n;
    uint64_t serials[4];
};

static void note_revoked(void *arg, const lia_crl_entry_info *e)
{
    struct seen *s = arg;
    if (s->n < 4)
        s->serials[s->n] = e->serial;
    s->n++;
}

/* lia_trust_update_crl reports exactly the entries the list held did not have; a list with a
 * higher serial but an earlier issued_at is stale; a refused list reports nothing. */
static void test_update_crl(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = store(f);
    uint8_t *b1 = NULL, *b2 = NULL, *b2early = NULL;
    size_t l1, l2, l2early, newly = 99;
    lia_crl_t *crl1 = NULL;
    struct seen seen = {0};

    assert_null(lia_trust_crl(t));
    assert_int_equal(
        lia_crl_issue(f->auth, NULL, f->sa, "node-a", NOW + DAY, "stolen", NOW + DAY, &b1, &l1), 0);
    assert_int_equal(lia_crl_parse(b1, l1, &f->ai, &crl1), 0);
    assert_int_equal(
        lia_crl_issue(f->auth, crl1, f->sb, "node-b", NOW + 2 * DAY, "", NOW + 2 * DAY, &b2, &l2),
        0);
    /* Serial 2 as well, but signed before list 1 was issued. */
    assert_int_equal(
        lia_crl_issue(f->auth, crl1, f->sb, "node-b", NOW, "", NOW, &b2early, &l2early), 0);

    /* First list: its one entry is new. */
    assert_int_equal(lia_trust_update_crl(t, b1, l1, &newly, note_revoked, &seen), 0);
    assert_int_equal(newly, 1);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.serials[0], f->sa);
    assert_non_null(lia_trust_crl(t));
    assert_int_equal(lia_crl_issued_at(lia_trust_crl(t)), NOW + DAY);

    /* Stale by issued_at despite its higher serial: refused, nothing reported or changed. */
    seen.n = 0;
    assert_int_equal(lia_trust_update_crl(t, b2early, l2early, &newly, note_revoked, &seen),
                     LIA_ERR_STALE);
    assert_int_equal(newly, 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(lia_trust_crl_serial(t), 1);

    /* Damaged: refused, nothing reported. */
    b2[l2 - 1] ^= 1;
    assert_true(lia_trust_update_crl(t, b2, l2, &newly, note_revoked, &seen) < 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(lia_trust_crl_serial(t), 1);
    b2[l2 - 1] ^= 1;

    /* Second list: only node-b's entry is new (node-a's was already listed). */
    assert_int_equal(lia_trust_update_crl(t, b2, l2, &newly, note_revoked, &seen), 0);
    assert_int_equal(newly, 1);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.serials[0], f->sb);
    assert_int_equal(lia_trust_crl_serial(t), 2);
    assert_int_equal(lia_crl_count(lia_trust_crl(t)), 2);

    lia_crl_destroy(&crl1);
    free(b1);
    free(b2);
    free(b2early);
    lia_trust_destroy(&t);
}

/* A certificate on the list gets no key from lia_trust_find_grantee, even before its
 * revocation time; a renewal that is not listed does. */
static void test_find_grantee(void **state)
{
    struct fixture *f = *state;
    lia_trust_t *t = store(f);
    const lia_cert_info *c = NULL;
    uint8_t *b = NULL;
    size_t l;

    assert_int_equal(lia_trust_find_grantee(t, "node-a", NOW + 1, &c), 0);
    assert_int_equal(c->serial, f->sa);
    /* node-a revoked from NOW + 5 days on. */
    assert_int_equal(lia_crl_issue(f->auth, NULL, f->sa, "node-a", NOW + 5 * DAY, "", NOW, &b, &l),
                     0);
    assert_int_equal(lia_trust_set_crl(t, b, l), 0);
    /* Before the revocation time: still verifiable, but no new key. */
    assert_int_equal(lia_trust_find_current(t, "node-a", NOW + 1, &c), 0);
    assert_int_equal(lia_trust_find_grantee(t, "node-a", NOW + 1, &c), LIA_ERR_REVOKED);
    assert_null(c);
    assert_int_equal(lia_trust_find_grantee(t, "node-b", NOW + 1, &c), 0);
    assert_int_equal(lia_trust_find_grantee(t, "nobody", NOW + 1, &c), LIA_ERR_UNKNOWN_SENDER);
    /* A renewal that is not listed is the one keys go to. */
    assert_int_equal(lia_trust_add_cert(t, f->ca2, f->la2, NULL), 0);
    assert_int_equal(lia_trust_find_grantee(t, "node-a", NOW + 9 * DAY + 1, &c), 0);
    assert_int_equal(c->serial, f->sa2);
    free(b);
    lia_trust_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),       cmocka_unit_test(test_add_cert_checks),
        cmocka_unit_test(test_revocation), cmocka_unit_test(test_renewal_and_current),
        cmocka_unit_test(test_update_crl), cmocka_unit_test(test_find_grantee),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
