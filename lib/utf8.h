/*
 * Text validation shared by every decoder: well-formed UTF-8 (shortest form, no surrogates,
 * nothing above U+10FFFF) and, unless asked otherwise, no control characters. One definition,
 * so that a name the authority signs, a membership description and a payload's text obey the
 * same rules.
 */
#ifndef LIA_UTF8_H
#define LIA_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Flags of lia_utf8_valid. */
#define LIA_UTF8_MULTILINE 1u /* TAB, LF and CR are allowed */
#define LIA_UTF8_CONTROLS  2u /* every control character is allowed (NUL, C0, DEL, C1) */

/*
 * True if s[0..n) is well-formed UTF-8 in which, unless flags allow them, no character is a
 * control character: NUL, C0 (U+0000..U+001F), DEL (U+007F) or C1 (U+0080..U+009F). s may hold
 * NUL bytes; n == 0 is valid. Runs of printable ASCII are checked 8 bytes at a time.
 */
bool lia_utf8_valid(const char *s, size_t n, unsigned flags);

/* 1 if s[0..len) is UTF-8 without control characters: names, revocation reasons, keys. */
int lia_text_valid(const char *s, size_t len);

#endif
