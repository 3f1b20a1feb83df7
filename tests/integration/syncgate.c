/*
 * syncgate: an LD_PRELOAD shim for test_persist_before_ack.sh. It holds back the fsyncs of
 * SQLite write-ahead logs (a descriptor whose path ends in "-wal") while the test wants them
 * held: as long as the file named by LIA_SYNC_ARMED exists and the one named by LIA_SYNC_GATE
 * does not, fsync and fdatasync of such a file wait, and the file named by LIA_SYNC_BLOCKED is
 * created to say that one is waiting. Everything else goes straight through. Without the three
 * variables it does nothing. A hold lasts HOLD_MAX_MS at most (the test opens the gate within
 * seconds), so a test that fails before opening it never leaves a daemon stuck.
 * With LIA_SYNC_FAIL set (test_sync_failure.sh), while the file it names exists, fsync and
 * fdatasync of a WAL fail with EIO instead, as a failing disk would have them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MAX_MS 60000

static int is_wal(int fd)
{
    char link[64], path[4096];
    ssize_t n;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n < 4)
        return 0;
    path[n] = '\0';
    return strcmp(path + n - 4, "-wal") == 0;
}

static void hold(int fd)
{
    const char *armed = getenv("LIA_SYNC_ARMED"), *gate = getenv("LIA_SYNC_GATE"),
               *blocked = getenv("LIA_SYNC_BLOCKED");

    if (!armed || !gate || !blocked || !is_wal(fd))
        return;
    /* A wait on a condition (files the test creates), bounded; 1 ms is its polling interval. */
    for (int ms = 0; ms < HOLD_MAX_MS && access(armed, F_OK) == 0 && access(gate, F_OK) != 0;
         ms++) {
        int f = open(blocked, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        struct timespec ts = {0, 1000000};
        if (f >= 0)
            close(f);
        nanosleep(&ts, NULL);
    }
}

/* 1 if this sync is to fail (LIA_SYNC_FAIL names a file that exists and fd is a WAL). */
static int failing(int fd)
{
    const char *fail = getenv("LIA_SYNC_FAIL");
    return fail && access(fail, F_OK) == 0 && is_wal(fd);
}

/* A sync of fd through real: failed, or held back, as the test asks, then done. */
static int gated(int fd, int (*real)(int))
{
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    hold(fd);
    return real(fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "fsync");
    return gated(fd, real);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
    return gated(fd, real);
}
