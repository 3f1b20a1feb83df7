/*
 * Crash-safe file replacement and bounded reads. The temporary file lives in the target's
 * directory so that rename(2) and link(2) stay within one filesystem.
 */
#define _GNU_SOURCE
#include "file.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

int lia_file_read(const char *path, size_t max, int flags, uint8_t **out, size_t *out_len)
{
    int fd, rc = LIA_ERR_IO;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? LIA_ERR_NOT_FOUND : LIA_ERR_IO;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        rc = LIA_ERR_TOO_LARGE;
        goto fail;
    }
    buf = (flags & LIA_FILE_SECURE) ? sodium_malloc((size_t)st.st_size + 1)
                                    : malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    /* Read one byte past the size seen by fstat to notice a file that grew meanwhile. */
    while (got <= (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)st.st_size) {
        rc = got > max ? LIA_ERR_TOO_LARGE : LIA_ERR_IO;
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    *out = buf;
    *out_len = got;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (buf) {
        sodium_memzero(buf, (size_t)st.st_size + 1);
        if (flags & LIA_FILE_SECURE)
            sodium_free(buf);
        else
            free(buf);
    }
    return rc;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char copy[PATH_MAX];
    int dfd, rc;

    if (strlen(path) >= sizeof copy)
        return -1;
    strcpy(copy, path);
    dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    rc = fsync(dfd);
    if (close(dfd) != 0)
        rc = -1;
    return rc;
}

int lia_file_write_atomic(const char *path, const uint8_t *buf, size_t len, mode_t mode,
                          int flags)
{
    char tmp[PATH_MAX];
    unsigned char rnd[8];
    int fd = -1, rc = LIA_ERR_IO, n;

    randombytes_buf(rnd, sizeof rnd);
    n = snprintf(tmp, sizeof tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return LIA_ERR_INVALID;
    if ((flags & LIA_FILE_EXCL) && access(path, F_OK) == 0)
        return LIA_ERR_EXISTS;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return errno == EACCES ? LIA_ERR_PERMISSION : LIA_ERR_IO;
    /* open() applies the umask; a key file must end up with exactly the requested mode. */
    if (fchmod(fd, mode) != 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (flags & LIA_FILE_EXCL) {
        if (link(tmp, path) != 0) {
            rc = errno == EEXIST ? LIA_ERR_EXISTS : LIA_ERR_IO;
            goto fail;
        }
        if (unlink(tmp) != 0)
            goto fail;
    } else if (rename(tmp, path) != 0) {
        goto fail;
    }
    if (fsync_dir_of(path) != 0)
        return LIA_ERR_IO;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int lia_file_check_private(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? LIA_ERR_NOT_FOUND : LIA_ERR_IO;
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return LIA_ERR_PERMISSION;
    return 0;
}
