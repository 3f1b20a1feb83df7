/*
 * The reference definition of lib/utf8.c's language, one byte at a time and written for
 * plainness rather than speed, for the unit test and the fuzzer to compare against. It is the
 * union of the three loops the project had before lib/utf8.c: payload text (with and without
 * line breaks), names (lia_text_valid) and JSON strings (any control character).
 */
#ifndef LIA_TEST_UTF8_REF_H
#define LIA_TEST_UTF8_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "utf8.h"

static bool utf8_ref(const unsigned char *s, size_t n, unsigned flags)
{
    bool controls = (flags & LIA_UTF8_CONTROLS) != 0;
    bool multiline = (flags & LIA_UTF8_MULTILINE) != 0;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], need;
        unsigned long cp;
        if (c < 0x80) {
            bool line_break = c == '\t' || c == '\n' || c == '\r';
            if (!controls && (c < 0x20 || c == 0x7f) && !(multiline && line_break))
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false; /* a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
        }
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (!controls && cp >= 0x80 && cp <= 0x9f))
            return false;
        i += need + 1;
    }
    return true;
}

/* Characters (and broken ones) that the 8-byte skip must stop at, or may pass (' ', '~'): the
 * first is NUL, one byte long. */
static const char *const utf8_tokens[] = {
    "\x00",
    "\x1f",
    " ",
    "~",
    "\x7f",
    "\x80",
    "\xc2",
    "\t",
    "\n",
    "\r",
    "\xc2\xa0",
    "\xc2\x85",
    "\xe2\x82\xac",
    "\xed\xa0\x80",
    "\xf0\x9f\x9a\x90",
    "\xf4\x90\x80\x80",
};
#define UTF8_N_TOKENS (sizeof utf8_tokens / sizeof utf8_tokens[0])

#endif
