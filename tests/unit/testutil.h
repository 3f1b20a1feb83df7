/*
 * Helpers shared by the unit tests: a fresh private directory per test, file helpers.
 * Included after <setjmp.h>, <stdarg.h>, <stddef.h> and <cmocka.h>.
 */
#ifndef LIA_TESTUTIL_H
#define LIA_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a new empty directory under $LIA_TEST_TMPDIR (or /tmp) and returns its path
 * (static storage, valid until the next call). Fails the test on error. */
const char *tu_mkdtemp(const char *tag);

/* Joins dir and name into a static buffer (one of 4 rotating buffers). */
const char *tu_path(const char *dir, const char *name);

/* Writes len bytes to path, replacing it, with the given mode. Fails the test on error. */
void tu_write_file(const char *path, const void *buf, size_t len, unsigned mode);

/* Reads a whole file into a malloc'd buffer. Fails the test on error. */
uint8_t *tu_read_file(const char *path, size_t *len);

#endif
