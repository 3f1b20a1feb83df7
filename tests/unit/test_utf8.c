/*
 * lib/utf8.c: named cases, then the fast path (8 bytes at a time over printable ASCII) against
 * the byte-at-a-time reference of tests/common/utf8_ref.h: every string of one and two bytes,
 * every three-byte string that starts a multi-byte character, every four-byte string with a
 * four-byte lead and continuation bytes at the edges, tokens at every position and alignment
 * around the word boundaries, and random strings, under each combination of flags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"
#include "../common/utf8_ref.h"

static const unsigned all_flags[] = {0, LIA_UTF8_MULTILINE, LIA_UTF8_CONTROLS,
                                     LIA_UTF8_MULTILINE | LIA_UTF8_CONTROLS};
#define N_FLAGS (sizeof all_flags / sizeof all_flags[0])

static void same(const unsigned char *s, size_t n)
{
    for (size_t f = 0; f < N_FLAGS; f++) {
        bool want = utf8_ref(s, n, all_flags[f]);
        if (lia_utf8_valid((const char *)s, n, all_flags[f]) != want) {
            print_error("flags %u, %zu bytes:", all_flags[f], n);
            for (size_t i = 0; i < n; i++)
                print_error(" %02x", s[i]);
            print_error(": reference says %d\n", want);
            fail();
        }
    }
}

static void test_named(void **state)
{
    (void)state;
    assert_true(lia_utf8_valid("", 0, 0));
    assert_true(lia_utf8_valid(NULL, 0, 0));
    assert_false(lia_utf8_valid(NULL, 1, 0));
    assert_true(lia_utf8_valid("Agence nationale \xc3\xa9", 19, 0));
    assert_true(lia_utf8_valid("\xe2\x82\xac \xf0\x9f\x9a\x90", 8, 0)); /* euro sign, a vehicle */
    assert_true(lia_utf8_valid("\xf4\x8f\xbf\xbf", 4, 0));              /* U+10FFFF */
    assert_false(lia_utf8_valid("\xf4\x90\x80\x80", 4, LIA_UTF8_CONTROLS)); /* above it */
    assert_false(lia_utf8_valid("\xc0\xaf", 2, LIA_UTF8_CONTROLS));         /* overlong '/' */
    assert_false(lia_utf8_valid("\xe0\x80\xaf", 3, LIA_UTF8_CONTROLS));     /* overlong */
    assert_false(lia_utf8_valid("\xed\xa0\x80", 3, LIA_UTF8_CONTROLS));     /* surrogate */
    assert_false(lia_utf8_valid("\xe2\x82", 2, LIA_UTF8_CONTROLS));         /* truncated */
    assert_false(lia_utf8_valid("\x80", 1, LIA_UTF8_CONTROLS));             /* lone continuation */
    /* Control characters: refused by default, line breaks with MULTILINE, all with CONTROLS. */
    assert_false(lia_utf8_valid("a\nb", 3, 0));
    assert_true(lia_utf8_valid("a\nb\tc\r", 6, LIA_UTF8_MULTILINE));
    assert_false(lia_utf8_valid("a\x0b", 2, LIA_UTF8_MULTILINE));
    assert_false(lia_utf8_valid("\xc2\x85", 2, LIA_UTF8_MULTILINE)); /* NEL, a C1 control */
    assert_true(lia_utf8_valid("\xc2\x85", 2, LIA_UTF8_CONTROLS));
    assert_false(lia_utf8_valid("abc\0def", 7, 0));
    assert_true(lia_utf8_valid("abc\0def", 7, LIA_UTF8_CONTROLS));
    assert_false(lia_utf8_valid("0123456\x7f", 8, 0)); /* DEL in a whole word */
    assert_true(lia_utf8_valid("0123456\x7f", 8, LIA_UTF8_CONTROLS));
    assert_true(lia_text_valid("Agence nationale \xc3\xa9", 19));
    assert_false(lia_text_valid("a\tb", 3));
}

static void test_short_strings_exhaustive(void **state)
{
    unsigned char s[4];
    (void)state;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        same(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            same(s, 2);
        }
    }
    /* Three bytes from every lead of a multi-byte character (and the invalid leads). */
    for (unsigned a = 0xc0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (unsigned c = 0; c < 256; c += (b & 0xc0) == 0x80 ? 1 : 51) {
                s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = (unsigned char)c;
                same(s, 3);
            }
    /* Four bytes from each four-byte lead, continuation bytes at and around their edges. */
    static const unsigned char edge[] = {0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0};
    for (unsigned a = 0xf0; a < 256; a++)
        for (size_t b = 0; b < sizeof edge; b++)
            for (size_t c = 0; c < sizeof edge; c++)
                for (size_t d = 0; d < sizeof edge; d++) {
                    s[0] = (unsigned char)a, s[1] = edge[b], s[2] = edge[c], s[3] = edge[d];
                    same(s, 4);
                }
}

/* The tokens of utf8_ref.h at every position of printable filler of every length 0..40, from
 * every alignment 0..7 of the buffer. */

static size_t token_len(const char *t)
{
    return t[0] == '\0' ? 1 : strlen(t);
}

static void test_word_boundaries(void **state)
{
    unsigned char buf[8 + 48];
    (void)state;
    for (size_t len = 0; len <= 40; len++)
        for (size_t off = 0; off < 8; off++) {
            unsigned char *s = buf + off;
            memset(s, 'a', len);
            same(s, len);
            for (size_t t = 0; t < UTF8_N_TOKENS; t++)
                for (size_t pos = 0; pos + token_len(utf8_tokens[t]) <= len; pos++) {
                    memset(s, 'a', len);
                    memcpy(s + pos, utf8_tokens[t], token_len(utf8_tokens[t]));
                    same(s, len);
                }
        }
}

static void test_random_strings(void **state)
{
    static const unsigned char alphabet[] = {
        'a',  'Z',  ' ',  '~',  0x00, 0x01, 0x1f, 0x7f, '\t', '\n', '\r', 0x80, 0x85, 0x9f,
        0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
    };
    unsigned char buf[8 + 64];
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: the same strings on every run */
    (void)state;
    for (int r = 0; r < 50000; r++) {
        size_t len, off, i = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        len = x % 57;
        off = (x >> 8) % 8;
        while (i < len) {
            /* mostly printable ASCII, so that whole words of it occur */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned pick = (x >> 32) % 8, v = (unsigned)(x >> 40);
            if (pick < 6) {
                buf[off + i++] = (unsigned char)(0x20 + v % 0x5f);
            } else if (pick == 6) {
                buf[off + i++] = alphabet[v % sizeof alphabet];
            } else {
                const char *t = utf8_tokens[v % UTF8_N_TOKENS];
                for (size_t j = 0; j < token_len(t) && i < len; j++)
                    buf[off + i++] = (unsigned char)t[j];
            }
        }
        same(buf + off, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_short_strings_exhaustive),
        cmocka_unit_test(test_word_boundaries),
        cmocka_unit_test(test_random_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
