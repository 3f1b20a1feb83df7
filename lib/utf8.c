/*
 * UTF-8 validation (see utf8.h). The language is defined one character at a time by
 * utf8_char; lia_utf8_valid only skips ahead of it over 8-byte words that cannot hold anything
 * it refuses, so both accept exactly the same strings (tests/unit/test_utf8.c compares them
 * against a plain byte loop, and tests/fuzz/fuzz_utf8.c keeps comparing).
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length in bytes of the character at s[i] (i < n), or 0 if the bytes there are not one that
 * flags allow. */
static size_t utf8_char(const unsigned char *s, size_t n, size_t i, unsigned flags)
{
    unsigned c = s[i];
    size_t k;
    unsigned long cp;

    if (c < 0x80) {
        if (flags & LIA_UTF8_CONTROLS)
            return 1;
        if ((c < 0x20 &&
             !((flags & LIA_UTF8_MULTILINE) && (c == '\t' || c == '\n' || c == '\r'))) ||
            c == 0x7f)
            return 0;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        k = 1;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        k = 2;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        k = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n - i <= k)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[i + j] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if ((k == 1 && cp < 0x80) /* overlong */ ||
        (k == 1 && cp < 0xA0 && !(flags & LIA_UTF8_CONTROLS)) /* C1 control */ ||
        (k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k + 1;
}

#define BYTES_01 UINT64_C(0x0101010101010101)
#define BYTES_60 UINT64_C(0x6060606060606060)
#define BYTES_7F UINT64_C(0x7F7F7F7F7F7F7F7F)
#define BYTES_80 UINT64_C(0x8080808080808080)

/* True if each of the 8 bytes of w is printable ASCII (0x20..0x7E). Per byte, with t = the
 * byte's low 7 bits: t + 0x60 reaches 0x80 iff t >= 0x20, and t + 0x01 reaches 0x80 iff
 * t == 0x7F; neither sum exceeds 0xFF, so no carry crosses into the next byte and the test is
 * exact for every byte, whatever the byte order of the load. */
static bool word_printable(uint64_t w)
{
    uint64_t t = w & BYTES_7F;
    return ((w | ~(t + BYTES_60) | (t + BYTES_01)) & BYTES_80) == 0;
}

/* True if w can be skipped under flags: 8 characters each of which utf8_char accepts. */
static bool word_skippable(uint64_t w, unsigned flags)
{
    if (flags & LIA_UTF8_CONTROLS)
        return (w & BYTES_80) == 0; /* any ASCII */
    return word_printable(w);
}

bool lia_utf8_valid(const char *str, size_t n, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    if (!s)
        return n == 0;
    while (i < n) {
        size_t stop = n;
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, sizeof w);
            if (word_skippable(w, flags)) {
                i += 8;
                continue;
            }
            stop = i + 8; /* the character at stop - 1 may end past it */
        }
        while (i < stop) {
            size_t len = utf8_char(s, n, i, flags);
            if (len == 0)
                return false;
            i += len;
        }
    }
    return true;
}

int lia_text_valid(const char *s, size_t len)
{
    return lia_utf8_valid(s, len, 0);
}
