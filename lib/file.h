/*
 * Files on disk: bounded reads and crash-safe writes (write a temporary file, fsync it, rename
 * or link it into place, fsync the directory). Everything read from disk is untrusted input;
 * the bound is checked before any allocation.
 */
#ifndef LIA_FILE_H
#define LIA_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    LIA_FILE_REPLACE = 0, /* replace an existing file atomically */
    LIA_FILE_EXCL = 1,    /* fail with LIA_ERR_EXISTS if the file exists */
    LIA_FILE_SECURE = 2   /* read into sodium_malloc'd memory (secret material) */
};

/*
 * Reads a whole regular file of at most max bytes into a new buffer owned by the caller.
 * With LIA_FILE_SECURE the buffer comes from sodium_malloc (free it with sodium_free after
 * wiping); otherwise from malloc. Returns LIA_ERR_NOT_FOUND, LIA_ERR_TOO_LARGE,
 * LIA_ERR_WRONG_KIND (not a regular file), LIA_ERR_IO or 0.
 */
int lia_file_read(const char *path, size_t max, int flags, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/*
 * Writes buf to path with the given mode so that after a crash the path holds either the old
 * content or the new, never a mix. With LIA_FILE_EXCL an existing path is never touched
 * (the new file is linked into place, which fails if the name exists). A failed fsync is
 * reported as LIA_ERR_IO and the temporary file removed.
 */
int lia_file_write_atomic(const char *path, const uint8_t *buf, size_t len, mode_t mode,
                          int flags) __attribute__((warn_unused_result));

/* Returns LIA_ERR_PERMISSION if path is readable or writable by group or others. */
int lia_file_check_private(const char *path) __attribute__((warn_unused_result));

#endif
