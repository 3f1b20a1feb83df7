/* The officer registry: configuration (with file:line errors), who may read which channel,
 * run-time assignments and their precedence, and the stored encoding of run-time assignments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "officers.h"
#include "testutil.h"

static const lia_config_directive known[] = {
    {"officer", 2, 2, 1, 0, "officer id and account"},
    {"assign", 2, -1, 1, 0, "officer and channels"},
    {"channel", 2, -1, 1, 0, "channel and members"},
};
#define N_KNOWN (sizeof known / sizeof known[0])

/* Loads text as a configuration and builds the registry; expect_rc is what the registry
 * construction must return (the file itself always parses). */
static lia_officers_t *load(const char *text, int expect_rc, char *err, size_t err_len)
{
    const char *dir = tu_mkdtemp("officers");
    const char *path = tu_path(dir, "node.conf");
    lia_config_t *c = NULL;
    lia_officers_t *o = NULL;
    tu_write_file(path, text, strlen(text), 0600);
    assert_int_equal(lia_config_load(path, known, N_KNOWN, &c, err, err_len), 0);
    assert_int_equal(lia_officers_from_config(c, &o, err, err_len), expect_rc);
    lia_config_destroy(&c);
    if (expect_rc)
        assert_null(o);
    return o;
}

static void test_ids(void **state)
{
    char long_id[LIA_OFFICER_ID_MAX + 2];
    (void)state;
    assert_true(lia_officer_id_valid("anna"));
    assert_true(lia_officer_id_valid("k.huber_2-x"));
    assert_true(lia_officer_id_valid("0"));
    assert_false(lia_officer_id_valid(""));
    assert_false(lia_officer_id_valid(NULL));
    assert_false(lia_officer_id_valid("Anna"));
    assert_false(lia_officer_id_valid(".anna"));
    assert_false(lia_officer_id_valid("an na"));
    assert_false(lia_officer_id_valid("an:na"));
    memset(long_id, 'a', sizeof long_id);
    long_id[LIA_OFFICER_ID_MAX] = '\0';
    assert_true(lia_officer_id_valid(long_id));
    long_id[LIA_OFFICER_ID_MAX] = 'a';
    long_id[LIA_OFFICER_ID_MAX + 1] = '\0';
    assert_false(lia_officer_id_valid(long_id));
    assert_true(lia_officer_target_valid("case:2026-0042"));
    assert_true(lia_officer_target_valid("@direct"));
    assert_true(lia_officer_target_valid("*"));
    assert_false(lia_officer_target_valid("@other"));
    assert_false(lia_officer_target_valid("**"));
    assert_false(lia_officer_target_valid(""));
    assert_false(lia_officer_target_valid(NULL));
}

static void test_config(void **state)
{
    char err[256] = "";
    unsigned line = 99;
    (void)state;
    /* An assignment may come before its officer's line; root is resolved by name. */
    lia_officers_t *o = load("assign anna case:x @direct\n"
                             "officer anna 60501\n"
                             "officer bruno 60502\n"
                             "officer admin root\n"
                             "assign bruno case:y case:y\n"
                             "assign admin *\n",
                             0, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(lia_officers_count(o), 3);
    assert_string_equal(lia_officers_id(o, 0), "anna");
    assert_string_equal(lia_officers_account(o, 0), "60501");
    assert_int_equal(lia_officers_uid(o, 0), 60501);
    assert_int_equal(lia_officers_uid(o, 2), 0);
    assert_null(lia_officers_id(o, 3));
    assert_string_equal(lia_officers_by_uid(o, 60502), "bruno");
    assert_string_equal(lia_officers_by_uid(o, 0), "admin");
    assert_null(lia_officers_by_uid(o, 60503));
    assert_true(lia_officers_exists(o, "anna"));
    assert_false(lia_officers_exists(o, "carla"));
    assert_int_equal(lia_officers_n_assigned(o, "anna"), 2);
    assert_string_equal(lia_officers_assigned(o, "anna", 1, &line), "@direct");
    assert_int_equal(line, 1);
    assert_int_equal(lia_officers_n_assigned(o, "bruno"), 1); /* the repeat adds nothing */
    assert_null(lia_officers_assigned(o, "bruno", 1, NULL));
    assert_int_equal(lia_officers_n_assigned(o, "carla"), 0);

    /* Who reads what: a channel, direct messages, everything. */
    assert_true(lia_officers_may_read(o, "anna", "case:x"));
    assert_false(lia_officers_may_read(o, "anna", "case:y"));
    assert_true(lia_officers_may_read(o, "anna", ""));
    assert_true(lia_officers_may_read(o, "anna", NULL));
    assert_true(lia_officers_may_read(o, "bruno", "case:y"));
    assert_false(lia_officers_may_read(o, "bruno", "case:x"));
    assert_false(lia_officers_may_read(o, "bruno", ""));
    assert_true(lia_officers_may_read(o, "admin", "case:z"));
    assert_true(lia_officers_may_read(o, "admin", ""));
    assert_false(lia_officers_may_read(o, "admin", "Not A Channel"));
    assert_false(lia_officers_may_read(o, "carla", "case:x"));
    assert_false(lia_officers_may_read(o, NULL, "case:x"));
    lia_officers_destroy(&o);
    assert_null(o);

    /* No officer lines: an empty registry, nobody reads. */
    o = load("channel case:x a b\n", 0, err, sizeof err);
    assert_int_equal(lia_officers_count(o), 0);
    assert_false(lia_officers_may_read(o, "anna", "case:x"));
    lia_officers_destroy(&o);
}

static void expect_error(const char *text, const char *fragment)
{
    char err[256] = "";
    (void)load(text, LIA_ERR_CONFIG, err, sizeof err);
    if (!strstr(err, fragment))
        fail_msg("error '%s' does not contain '%s'", err, fragment);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("officer Anna 60501\n",
                 "node.conf:1: invalid officer id (1..64 of a-z 0-9 . _ -): 'Anna'");
    expect_error("officer anna no-such-user-liaison-test\n",
                 "node.conf:1: no such local account (give a user name or a numeric uid): "
                 "'no-such-user-liaison-test'");
    expect_error("officer anna 99999999999\n", "node.conf:1: no such local account");
    expect_error("officer anna 12x\n", "node.conf:1: no such local account");
    expect_error("officer anna 1\nofficer anna 2\n", "node.conf:2: officer declared twice: 'anna'");
    expect_error("officer anna 1\nofficer bruno 1\n",
                 "node.conf:2: account already mapped to another officer: '1'");
    expect_error("officer anna 1\n\nassign bruno case:x\n",
                 "node.conf:3: no such officer (declare it first: officer ID ACCOUNT): 'bruno'");
    expect_error("officer anna 1\nassign anna case:x Bad\n",
                 "node.conf:2: invalid channel (a channel name, @direct or *): 'Bad'");
}

static void test_runtime(void **state)
{
    char err[256] = "";
    uint8_t *val = NULL;
    size_t len = 0;
    unsigned line = 7;
    (void)state;
    lia_officers_t *o =
        load("officer anna 60501\nofficer bruno 60502\nassign anna case:x\n", 0, err, sizeof err);

    /* Assign: new, already (by either source), unknown officer, bad target. */
    assert_int_equal(lia_officers_assign(o, "anna", "case:y"), 0);
    assert_true(lia_officers_may_read(o, "anna", "case:y"));
    assert_string_equal(lia_officers_assigned(o, "anna", 1, &line), "case:y");
    assert_int_equal(line, 0);
    assert_int_equal(lia_officers_assign(o, "anna", "case:y"), LIA_ERR_EXISTS);
    assert_int_equal(lia_officers_assign(o, "anna", "case:x"), LIA_ERR_EXISTS);
    assert_int_equal(lia_officers_assign(o, "carla", "case:x"), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_officers_assign(o, "anna", "Bad"), LIA_ERR_INVALID);
    assert_int_equal(lia_officers_assign(o, "anna", "@direct"), 0);

    /* Stored form: run-time assignments only, in order, one per line. */
    assert_int_equal(lia_officers_runtime_encode(o, "anna", &val, &len), 0);
    assert_int_equal(len, strlen("case:y\n@direct"));
    assert_memory_equal(val, "case:y\n@direct", len);
    free(val);
    assert_int_equal(lia_officers_runtime_encode(o, "bruno", &val, &len), 0);
    assert_int_equal(len, 0);
    free(val);
    assert_int_equal(lia_officers_runtime_encode(o, "carla", &val, &len), LIA_ERR_NOT_FOUND);

    /* Unassign: the configuration wins; run-time ones go; unknown ones are not found. */
    assert_int_equal(lia_officers_unassign(o, "anna", "case:x"), LIA_ERR_CONFIG);
    assert_true(lia_officers_may_read(o, "anna", "case:x"));
    assert_int_equal(lia_officers_unassign(o, "anna", "case:y"), 0);
    assert_false(lia_officers_may_read(o, "anna", "case:y"));
    assert_int_equal(lia_officers_unassign(o, "anna", "case:y"), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_officers_unassign(o, "carla", "case:y"), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_officers_n_assigned(o, "anna"), 2);
    assert_string_equal(lia_officers_assigned(o, "anna", 1, NULL), "@direct");
    lia_officers_destroy(&o);
}

static void test_runtime_decode(void **state)
{
    char err[256] = "";
    (void)state;
    lia_officers_t *o = load("officer anna 60501\nassign anna case:x\n", 0, err, sizeof err);
    const char *good = "case:y\ncase:x\n@direct\ncase:y";

    /* What a restart does: stored targets added; held ones skipped, not duplicated. */
    assert_int_equal(lia_officers_runtime_decode(o, "anna", (const uint8_t *)good, strlen(good)),
                     0);
    assert_int_equal(lia_officers_n_assigned(o, "anna"), 3);
    assert_true(lia_officers_may_read(o, "anna", "case:y"));
    assert_true(lia_officers_may_read(o, "anna", ""));
    assert_int_equal(lia_officers_runtime_decode(o, "anna", NULL, 0), 0);
    assert_int_equal(lia_officers_runtime_decode(o, "carla", (const uint8_t *)"case:z", 6),
                     LIA_ERR_NOT_FOUND);
    /* Bad input changes nothing, wherever the fault is. */
    static const char *const bad[] = {"case:z\n",    "\ncase:z",   "case:z\n\ncase:w",
                                      "case:z\nBad", "case:z\n@x", "case:z\r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            lia_officers_runtime_decode(o, "anna", (const uint8_t *)bad[i], strlen(bad[i])),
            LIA_ERR_DECODE);
        assert_false(lia_officers_may_read(o, "anna", "case:z"));
    }
    assert_int_equal(lia_officers_runtime_decode(o, "anna", (const uint8_t *)"case:z\0x", 8),
                     LIA_ERR_DECODE);
    assert_int_equal(lia_officers_runtime_decode(o, "anna", NULL, 3), LIA_ERR_INVALID);
    {
        size_t n = LIA_OFFICER_RUNTIME_MAX + 1;
        uint8_t *big = malloc(n);
        assert_non_null(big);
        memset(big, 'a', n);
        assert_int_equal(lia_officers_runtime_decode(o, "anna", big, n), LIA_ERR_TOO_LARGE);
        free(big);
    }
    lia_officers_destroy(&o);
}

/* Encode then decode into a fresh registry gives the same run-time assignments; the limit on
 * assignments per officer holds for both sources. */
static void test_roundtrip_and_limit(void **state)
{
    lia_officers_t *o = NULL, *p = NULL;
    uint8_t *val = NULL;
    size_t len = 0;
    char ch[32];
    (void)state;
    assert_int_equal(lia_officers_new(&o), 0);
    assert_int_equal(lia_officers_new(&p), 0);
    assert_int_equal(lia_officers_add(o, "anna", "anna", 1), 0);
    assert_int_equal(lia_officers_add(o, "anna", "x", 2), LIA_ERR_EXISTS);
    assert_int_equal(lia_officers_add(o, "bruno", "x", 1), LIA_ERR_EXISTS);
    assert_int_equal(lia_officers_add(o, "Bad", "x", 3), LIA_ERR_INVALID);
    assert_int_equal(lia_officers_add(p, "anna", "anna", 1), 0);
    for (unsigned i = 0; i < LIA_OFFICER_ASSIGN_MAX; i++) {
        snprintf(ch, sizeof ch, "case:%u", i);
        assert_int_equal(lia_officers_assign(o, "anna", ch), 0);
    }
    assert_int_equal(lia_officers_assign(o, "anna", "case:more"), LIA_ERR_LIMIT);
    assert_int_equal(lia_officers_runtime_encode(o, "anna", &val, &len), 0);
    assert_true(len <= LIA_OFFICER_RUNTIME_MAX);
    assert_int_equal(lia_officers_runtime_decode(p, "anna", val, len), 0);
    assert_int_equal(lia_officers_n_assigned(p, "anna"), LIA_OFFICER_ASSIGN_MAX);
    assert_true(lia_officers_may_read(p, "anna", "case:999"));
    /* Already full: stored targets beyond the limit are refused as a whole. */
    assert_int_equal(lia_officers_runtime_decode(p, "anna", (const uint8_t *)"case:new", 8),
                     LIA_ERR_LIMIT);
    assert_false(lia_officers_may_read(p, "anna", "case:new"));
    free(val);
    lia_officers_destroy(&o);
    lia_officers_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_runtime),
        cmocka_unit_test(test_runtime_decode),
        cmocka_unit_test(test_roundtrip_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
