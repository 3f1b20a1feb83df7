/* Configuration parsing: directives, arguments, and error messages that quote file:line:text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "testutil.h"

static const lia_config_directive known[] = {
    {"listen", 1, 1, 0, 1, "endpoint to bind"},
    {"channel", 2, -1, 1, 0, "channel and its members"},
    {"max-message-bytes", 1, 1, 0, 0, "largest envelope"},
    {"name", 1, 1, 0, 0, "display name"},
};
#define N_KNOWN (sizeof known / sizeof known[0])

static lia_config_t *load(const char *text, int expect_rc, char *err, size_t err_len)
{
    const char *dir = tu_mkdtemp("config");
    const char *path = tu_path(dir, "test.conf");
    lia_config_t *c = NULL;
    tu_write_file(path, text, strlen(text), 0600);
    assert_int_equal(lia_config_load(path, known, N_KNOWN, &c, err, err_len), expect_rc);
    return c;
}

static void test_good(void **state)
{
    char err[256] = "";
    uint64_t v;
    size_t n;
    (void)state;
    lia_config_t *c = load("# broker\nlisten tcp://127.0.0.1:7450   # comment\n"
                           "channel case:1 fr-ncp de-ncp\r\nchannel case:2 fr-ncp\n"
                           "max-message-bytes 4M\nname \"Test broker\"\n",
                           0, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(lia_config_str(c, "listen", NULL), "tcp://127.0.0.1:7450");
    assert_string_equal(lia_config_str(c, "name", NULL), "Test broker");
    const lia_config_entry *e = lia_config_entries(c, &n);
    assert_int_equal(n, 5);
    assert_string_equal(e[1].name, "channel");
    assert_int_equal(e[1].n_args, 3);
    assert_string_equal(e[1].args[2], "de-ncp");
    assert_int_equal(e[2].line, 4);
    assert_int_equal(lia_config_uint(c, "max-message-bytes", 1, 1u << 30, 0, &v, err, sizeof err),
                     0);
    assert_int_equal(v, 4u << 20);
    assert_int_equal(lia_config_uint(c, "absent", 1, 10, 7, &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    assert_int_equal(lia_config_uint(c, "max-message-bytes", 1, 1024, 0, &v, err, sizeof err),
                     LIA_ERR_CONFIG);
    assert_non_null(strstr(err, "test.conf:5: 'max-message-bytes' wants a whole number"));
    assert_non_null(strstr(err, "'4M'"));
    lia_config_destroy(&c);
    assert_null(c);
}

static void expect_error(const char *text, const char *fragment)
{
    char err[256] = "";
    lia_config_t *c = load(text, LIA_ERR_CONFIG, err, sizeof err);
    assert_null(c);
    if (!strstr(err, fragment))
        fail_msg("error '%s' does not contain '%s'", err, fragment);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("listen a\nlisen b\n", "test.conf:2: unknown directive (did you mean 'listen'?): 'lisen'");
    expect_error("listen a b\n", "test.conf:1: 'listen' takes 1 argument(s): 'listen'");
    expect_error("listen a\nlisten b\n", "test.conf:2: directive given twice: 'listen'");
    expect_error("channel x y\n", "missing required directive 'listen'");
    expect_error("listen a\nchannel x\n", "test.conf:2: 'channel' takes at least 2 argument(s)");
    expect_error("listen \"a b\n", "test.conf:1: unterminated or misplaced quote");
    expect_error("listen a\x01\n", "test.conf:1: control character in line");
}

static void test_missing_file(void **state)
{
    char err[256] = "";
    lia_config_t *c;
    (void)state;
    assert_int_equal(lia_config_load("/nonexistent/x.conf", known, N_KNOWN, &c, err, sizeof err),
                     LIA_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "/nonexistent/x.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
