/* The control socket: framing, bounds, partial reads, queued output (also of protobuf messages
 * packed in place), peer credentials, path safety. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "liaison/v1/control.pb-c.h"
#include "error.h"
#include "testutil.h"

#define NOBODY 65534

static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, 10000);
    while (rc < 0 && errno == EINTR);
    assert_int_equal(rc, 1);
}

static lia_ctl_conn_t *accept_one(lia_ctl_server_t *s)
{
    lia_ctl_conn_t *c = NULL;
    wait_readable(lia_ctl_server_fd(s));
    assert_int_equal(lia_ctl_accept(s, &c), 0);
    assert_non_null(c);
    return c;
}

/* Reads one frame from a non-blocking server connection, polling while incomplete. */
static int read_wait(lia_ctl_conn_t *c, uint8_t **data, size_t *len)
{
    for (;;) {
        int rc = lia_ctl_read(c, data, len);
        if (rc != LIA_ERR_LIMIT)
            return rc;
        wait_readable(lia_ctl_conn_fd(c));
    }
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 31u + seed);
}

static const size_t sizes[] = {0, 1, 1u << 20};

/* Child: sends the three frames, then expects them echoed back. */
static int echo_client(const char *path)
{
    lia_ctl_conn_t *c = NULL;
    uint8_t *buf = malloc(1u << 20);
    int ok = buf != NULL && lia_ctl_connect(path, &c) == 0;
    for (size_t i = 0; ok && i < 3; i++) {
        fill(buf, sizes[i], (unsigned)i);
        ok = lia_ctl_write(c, buf, sizes[i]) == 0;
    }
    for (size_t i = 0; ok && i < 3; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        fill(buf, sizes[i], (unsigned)i);
        ok = lia_ctl_read(c, &d, &n) == 0 && d != NULL && n == sizes[i] && memcmp(d, buf, n) == 0;
        free(d);
    }
    lia_ctl_conn_destroy(&c);
    free(buf);
    return ok ? 0 : 1;
}

static void test_round_trip(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    char path[4096];
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *c;
    int status;
    pid_t pid;
    (void)state;

    snprintf(path, sizeof path, "%s/node.sock", dir);
    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(echo_client(path));
    c = accept_one(s);
    assert_int_equal(lia_ctl_conn_uid(c), geteuid());
    for (size_t i = 0; i < 3; i++) {
        uint8_t *d = NULL, *want = malloc(sizes[i] + 1);
        size_t n = 99;
        assert_non_null(want);
        assert_int_equal(read_wait(c, &d, &n), 0);
        assert_non_null(d);
        assert_int_equal(n, sizes[i]);
        fill(want, sizes[i], (unsigned)i);
        if (n)
            assert_memory_equal(d, want, n);
        assert_int_equal(lia_ctl_write(c, d, n), 0);
        free(d);
        free(want);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The child hung up after the last frame. */
    {
        uint8_t *d = NULL;
        size_t n;
        assert_int_equal(read_wait(c, &d, &n), LIA_ERR_NOT_FOUND);
        assert_null(d);
    }
    lia_ctl_conn_destroy(&c);
    lia_ctl_server_destroy(&s);
    assert_null(s);
    /* The server removes its socket file. */
    assert_int_equal(access(path, F_OK), -1);
}

/* Connects a raw client socket (to write arbitrary bytes). */
static int raw_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void check_oversized(uint32_t n)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *c;
    uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    uint8_t *d = NULL, b;
    size_t len = 0;
    int fd;

    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    fd = raw_connect(path);
    c = accept_one(s);
    /* Only the length prefix is sent: the refusal cannot wait for (or allocate) a body. */
    assert_int_equal(write(fd, hdr, sizeof hdr), 4);
    assert_int_equal(read_wait(c, &d, &len), LIA_ERR_TOO_LARGE);
    assert_null(d);
    assert_int_equal(len, 0);
    /* The connection is dropped: the server side is closed, the client sees end of file. */
    assert_int_equal(lia_ctl_conn_fd(c), -1);
    assert_int_equal(lia_ctl_read(c, &d, &len), LIA_ERR_NOT_FOUND);
    assert_int_equal(read(fd, &b, 1), 0);
    assert_int_equal(close(fd), 0);
    lia_ctl_conn_destroy(&c);
    lia_ctl_server_destroy(&s);
}

static void test_oversized_refused(void **state)
{
    (void)state;
    check_oversized(LIA_CONTROL_MAX_FRAME + 1u);
    check_oversized(0xffffffffu);
}

static void test_write_oversized_refused(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *cl = NULL, *c;
    uint8_t x = 0;
    (void)state;
    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    assert_int_equal(lia_ctl_connect(path, &cl), 0);
    c = accept_one(s);
    /* The length is checked before the data pointer is touched. */
    assert_int_equal(lia_ctl_write(cl, &x, (size_t)LIA_CONTROL_MAX_FRAME + 1), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_ctl_write(cl, NULL, 1), LIA_ERR_INVALID);
    lia_ctl_conn_destroy(&cl);
    lia_ctl_conn_destroy(&c);
    lia_ctl_server_destroy(&s);
}

static void test_partial_frames(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    static const uint8_t wire[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 2, 'o', 'k'};
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *c;
    uint8_t *d = NULL;
    size_t len = 0;
    int fd, frames = 0;
    (void)state;

    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    fd = raw_connect(path);
    c = accept_one(s);
    assert_int_equal(lia_ctl_read(c, &d, &len), LIA_ERR_LIMIT); /* nothing yet */
    for (size_t i = 0; i < sizeof wire; i++) {
        int rc;
        assert_int_equal(write(fd, wire + i, 1), 1);
        wait_readable(lia_ctl_conn_fd(c));
        rc = lia_ctl_read(c, &d, &len);
        if (i == 8 || i == sizeof wire - 1) {
            assert_int_equal(rc, 0);
            if (frames++ == 0) {
                assert_int_equal(len, 5);
                assert_memory_equal(d, "hello", 5);
            } else {
                assert_int_equal(len, 2);
                assert_memory_equal(d, "ok", 2);
            }
            free(d);
            d = NULL;
        } else {
            assert_int_equal(rc, LIA_ERR_LIMIT);
            assert_null(d);
        }
    }
    assert_int_equal(frames, 2);
    /* Closing in the middle of a frame is a protocol error, not a clean close. */
    assert_int_equal(write(fd, wire, 6), 6);
    assert_int_equal(close(fd), 0);
    assert_int_equal(read_wait(c, &d, &len), LIA_ERR_PROTOCOL);
    lia_ctl_conn_destroy(&c);
    lia_ctl_server_destroy(&s);
}

/* Queued sends never block: a client that does not read lets output pile up (pending > 0)
 * without stalling the server; as it reads, flushing delivers every frame intact and in
 * order; a client that lets more than the bound pile up is dropped. */
static void test_queued_send(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *cl = NULL, *c;
    static uint8_t frame[64 * 1024];
    const size_t n = 200; /* 12.8 MiB: far more than the socket buffers hold */
    int status, go[2];
    pid_t pid;
    (void)state;

    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the reader: starts reading only after the server queued everything */
        lia_ctl_conn_t *r = NULL;
        char byte;
        int ok = lia_ctl_connect(path, &r) == 0;
        ok = ok && read(go[0], &byte, 1) == 1; /* the parent has queued everything */
        for (size_t i = 0; ok && i < n; i++) {
            uint8_t *d = NULL;
            size_t len = 0;
            ok = lia_ctl_read(r, &d, &len) == 0 && len == sizeof frame &&
                 d[0] == (uint8_t)(i & 0xff) && d[len - 1] == (uint8_t)(i & 0xff);
            free(d);
        }
        lia_ctl_conn_destroy(&r);
        _exit(ok ? 0 : 1);
    }
    c = accept_one(s);
    for (size_t i = 0; i < n; i++) {
        memset(frame, (int)(i & 0xff), sizeof frame);
        assert_int_equal(lia_ctl_send(c, frame, sizeof frame), 0);
    }
    assert_true(lia_ctl_pending(c) > 0); /* did not block, did not drop */
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[0]);
    close(go[1]);
    while (lia_ctl_pending(c)) {
        struct pollfd p = {lia_ctl_conn_fd(c), POLLOUT, 0};
        assert_int_equal(poll(&p, 1, 10000), 1);
        int rc = lia_ctl_flush(c);
        assert_true(rc == 0 || rc == LIA_ERR_LIMIT);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    lia_ctl_conn_destroy(&c);

    /* A client that never reads: past the bound its connection is dropped. */
    assert_int_equal(lia_ctl_connect(path, &cl), 0);
    c = accept_one(s);
    {
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < LIA_CONTROL_QUEUE_MAX / sizeof frame + 16; i++)
            rc = lia_ctl_send(c, frame, sizeof frame);
        assert_int_equal(rc, LIA_ERR_LIMIT);
        assert_int_equal(lia_ctl_conn_fd(c), -1);
    }
    lia_ctl_conn_destroy(&c);
    lia_ctl_conn_destroy(&cl);
    lia_ctl_server_destroy(&s);
}

/* Fills r as a ControlReply carrying an InboxMessage with an n-byte payload derived from seed. */
static void make_reply(Liaison__V1__ControlReply *r, Liaison__V1__InboxMessage *m, uint8_t *payload,
                       size_t n, unsigned seed)
{
    Liaison__V1__ControlReply ri = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__InboxMessage mi = LIAISON__V1__INBOX_MESSAGE__INIT;
    *r = ri;
    *m = mi;
    fill(payload, n, seed);
    m->delivery_seq = seed + 1;
    m->sender = "fr-ncp";
    m->channel = "case:2026-0042";
    m->payload.data = payload;
    m->payload.len = n;
    r->kind_case = LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE;
    r->message = m;
}

/* lia_ctl_queue_msg queues exactly the frame lia_ctl_queue would queue for the packed
 * message, interleaved with lia_ctl_queue frames in order (also an empty message: a 0-byte
 * frame); a message over LIA_CONTROL_MAX_FRAME is refused and nothing is queued; the queue
 * bound drops the connection after exactly as many frames as lia_ctl_queue allows. */
static void test_queue_msg(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    static const size_t lens[] = {0, 1, 100, 4000, 10000, 3};
    static uint8_t payload[10000];
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *cl = NULL, *c;
    Liaison__V1__ControlReply r;
    Liaison__V1__InboxMessage m;
    const Liaison__V1__ControlReply empty = LIAISON__V1__CONTROL_REPLY__INIT;
    (void)state;

    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    assert_int_equal(lia_ctl_queue_msg(NULL, &empty.base), LIA_ERR_INVALID);
    assert_int_equal(lia_ctl_connect(path, &cl), 0);
    c = accept_one(s);
    assert_int_equal(lia_ctl_queue_msg(c, NULL), LIA_ERR_INVALID);

    /* Frames in order: each message, then a raw frame, then the empty message. */
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t raw[3] = {0xde, 0xad, (uint8_t)i};
        make_reply(&r, &m, payload, lens[i], (unsigned)i);
        assert_int_equal(lia_ctl_queue_msg(c, &r.base), 0);
        assert_int_equal(lia_ctl_queue(c, raw, sizeof raw), 0);
    }
    assert_int_equal(lia_ctl_queue_msg(c, &empty.base), 0);
    assert_int_equal(lia_ctl_flush(c), 0); /* ~15 KiB: the socket buffer takes it all */
    assert_int_equal(lia_ctl_pending(c), 0);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *d = NULL, *want;
        size_t len = 0, want_len;
        make_reply(&r, &m, payload, lens[i], (unsigned)i);
        want_len = liaison__v1__control_reply__get_packed_size(&r);
        want = malloc(want_len ? want_len : 1);
        assert_non_null(want);
        liaison__v1__control_reply__pack(&r, want);
        assert_int_equal(lia_ctl_read(cl, &d, &len), 0);
        assert_int_equal(len, want_len);
        assert_memory_equal(d, want, len);
        {
            Liaison__V1__ControlReply *u = liaison__v1__control_reply__unpack(NULL, len, d);
            assert_non_null(u);
            assert_int_equal(u->kind_case, LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE);
            assert_int_equal(u->message->payload.len, lens[i]);
            assert_int_equal(u->message->delivery_seq, i + 1);
            liaison__v1__control_reply__free_unpacked(u, NULL);
        }
        free(want);
        free(d);
        assert_int_equal(lia_ctl_read(cl, &d, &len), 0);
        assert_int_equal(len, 3);
        assert_int_equal(d[2], (uint8_t)i);
        free(d);
    }
    {
        uint8_t *d = NULL;
        size_t len = 1;
        assert_int_equal(lia_ctl_read(cl, &d, &len), 0);
        assert_int_equal(len, 0);
        free(d);
    }

    /* Over the frame bound: refused before anything is packed; the connection stays. */
    {
        size_t big = LIA_CONTROL_MAX_FRAME + 1;
        uint8_t *huge = calloc(1, big); /* untouched pages: nothing is read */
        assert_non_null(huge);
        make_reply(&r, &m, payload, 0, 0);
        m.payload.data = huge;
        m.payload.len = big;
        assert_int_equal(lia_ctl_queue_msg(c, &r.base), LIA_ERR_TOO_LARGE);
        assert_int_equal(lia_ctl_pending(c), 0);
        assert_true(lia_ctl_conn_fd(c) >= 0);
        free(huge);
    }
    lia_ctl_conn_destroy(&c);
    lia_ctl_conn_destroy(&cl);

    /* The queue bound: a client that never reads is dropped at the same frame with either
     * function (frames of the same size), and later calls find the connection gone. */
    {
        size_t accepted[2];
        make_reply(&r, &m, payload, sizeof payload, 7);
        size_t frame = liaison__v1__control_reply__get_packed_size(&r);
        uint8_t *raw = malloc(frame);
        assert_non_null(raw);
        liaison__v1__control_reply__pack(&r, raw);
        for (int way = 0; way < 2; way++) {
            int rc = 0;
            size_t k = 0;
            assert_int_equal(lia_ctl_connect(path, &cl), 0);
            c = accept_one(s);
            while (rc == 0 && k <= LIA_CONTROL_QUEUE_MAX / frame + 1) {
                rc = way == 0 ? lia_ctl_queue(c, raw, frame) : lia_ctl_queue_msg(c, &r.base);
                if (rc == 0)
                    k++;
            }
            assert_int_equal(rc, LIA_ERR_LIMIT);
            assert_int_equal(lia_ctl_conn_fd(c), -1);
            assert_int_equal(lia_ctl_queue_msg(c, &r.base), LIA_ERR_NOT_FOUND);
            accepted[way] = k;
            lia_ctl_conn_destroy(&c);
            lia_ctl_conn_destroy(&cl);
        }
        assert_int_equal(accepted[0], LIA_CONTROL_QUEUE_MAX / (frame + 4));
        assert_int_equal(accepted[1], accepted[0]);
        free(raw);
    }
    lia_ctl_server_destroy(&s);
}

static void test_peer_close(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *path = tu_path(dir, "s");
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *cl = NULL, *c;
    uint8_t *d = NULL;
    size_t len;
    (void)state;

    assert_int_equal(lia_ctl_listen(path, NULL, 0, &s), 0);
    assert_int_equal(lia_ctl_connect(path, &cl), 0);
    c = accept_one(s);
    lia_ctl_conn_destroy(&cl);
    assert_null(cl);
    assert_int_equal(read_wait(c, &d, &len), LIA_ERR_NOT_FOUND);
    /* Writing to a peer that has gone fails cleanly (no SIGPIPE kills the test). */
    assert_int_equal(lia_ctl_write(c, (const uint8_t *)"x", 1), LIA_ERR_NOT_FOUND);
    lia_ctl_conn_destroy(&c);

    assert_int_equal(lia_ctl_connect(path, &cl), 0);
    c = accept_one(s);
    lia_ctl_conn_destroy(&c);
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR); /* a SIGPIPE would kill the test */
    {
        int rc = lia_ctl_write(cl, (const uint8_t *)"abc", 3);
        /* The first write may still be buffered by the kernel; the second one sees EPIPE. */
        if (rc == 0)
            rc = lia_ctl_write(cl, (const uint8_t *)"abc", 3);
        assert_int_equal(rc, LIA_ERR_NOT_FOUND);
    }
    assert_int_equal(lia_ctl_read(cl, &d, &len), LIA_ERR_NOT_FOUND);
    lia_ctl_conn_destroy(&cl);
    lia_ctl_server_destroy(&s);
}

/* Child running as nobody: connects and reports 0 if connected and then closed by the
 * server (end of file), 2 if the connection itself failed. */
static int nobody_client(const char *path)
{
    lia_ctl_conn_t *c = NULL;
    uint8_t *d = NULL;
    size_t len;
    int rc;
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
        return 3;
    if (lia_ctl_connect(path, &c) != 0)
        return 2;
    rc = lia_ctl_read(c, &d, &len);
    free(d);
    lia_ctl_conn_destroy(&c);
    return rc == LIA_ERR_NOT_FOUND ? 0 : 1;
}

static void run_nobody(const uid_t *allowed, size_t n_allowed, int expect_accept)
{
    char dir[] = "/tmp/lia-ctl-XXXXXX";
    char path[64];
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *c = NULL;
    int status, rc;
    pid_t pid;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run/node.sock", dir);
    assert_int_equal(lia_ctl_listen(path, allowed, n_allowed, &s), 0);
    /* Open the file permissions so that only the SO_PEERCRED check can refuse. */
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(tu_path(dir, "run"), 0755), 0);
    assert_int_equal(chmod(path, 0666), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(nobody_client(path));
    wait_readable(lia_ctl_server_fd(s));
    rc = lia_ctl_accept(s, &c);
    if (expect_accept) {
        assert_int_equal(rc, 0);
        assert_int_equal(lia_ctl_conn_uid(c), NOBODY);
        lia_ctl_conn_destroy(&c);
    } else {
        assert_int_equal(rc, LIA_ERR_PERMISSION);
        assert_null(c);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* connected, then closed by the server */
    lia_ctl_server_destroy(&s);
    assert_int_equal(rmdir(tu_path(dir, "run")), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_uid_refused(void **state)
{
    const uid_t others[] = {1000, 1001};
    const uid_t with_nobody[] = {1000, NOBODY};
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the uid refusal test needs root (to setuid to nobody)\n");
        skip();
    }
    run_nobody(others, 2, 0);
    run_nobody(NULL, 0, 0);
    run_nobody(with_nobody, 2, 1);
}

static void test_path_safety(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    const char *file = tu_path(dir, "notasocket");
    const char *sub = tu_path(dir, "run");
    char sock[4096];
    lia_ctl_server_t *s = NULL, *s2 = NULL;
    struct stat st;
    uint8_t *back;
    size_t n;
    (void)state;

    /* A regular file is never replaced. */
    tu_write_file(file, "keep", 4, 0600);
    assert_int_equal(lia_ctl_listen(file, NULL, 0, &s), LIA_ERR_EXISTS);
    assert_null(s);
    back = tu_read_file(file, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(back, "keep", 4);
    free(back);

    /* A missing directory is created 0750; the socket is 0660. */
    snprintf(sock, sizeof sock, "%s/node.sock", sub);
    assert_int_equal(lia_ctl_listen(sock, NULL, 0, &s), 0);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);

    /* A socket with a live server is not taken over. */
    assert_int_equal(lia_ctl_listen(sock, NULL, 0, &s2), LIA_ERR_EXISTS);
    assert_null(s2);
    assert_int_equal(lstat(sock, &st), 0);

    /* A stale socket (no server) is replaced. */
    {
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        const char *stale = tu_path(dir, "stale.sock");
        assert_true(fd >= 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        strcpy(sa.sun_path, stale);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(close(fd), 0);
        assert_int_equal(lia_ctl_listen(stale, NULL, 0, &s2), 0);
        lia_ctl_server_destroy(&s2);
    }

    /* Nothing is listening after destroy: a client gets "not found". */
    lia_ctl_server_destroy(&s);
    {
        lia_ctl_conn_t *c = NULL;
        assert_int_equal(lia_ctl_connect(sock, &c), LIA_ERR_NOT_FOUND);
        assert_int_equal(errno, ENOENT);
        assert_null(c);
    }
    /* Bad arguments. */
    assert_int_equal(lia_ctl_listen("", NULL, 0, &s), LIA_ERR_INVALID);
    {
        char longp[200];
        memset(longp, 'a', sizeof longp - 1);
        longp[sizeof longp - 1] = '\0';
        assert_int_equal(lia_ctl_listen(longp, NULL, 0, &s), LIA_ERR_TOO_LARGE);
    }
}

static void test_accept_none_pending(void **state)
{
    const char *dir = tu_mkdtemp("ctl");
    lia_ctl_server_t *s = NULL;
    lia_ctl_conn_t *c = NULL;
    (void)state;
    assert_int_equal(lia_ctl_listen(tu_path(dir, "s"), NULL, 0, &s), 0);
    assert_int_equal(lia_ctl_accept(s, &c), LIA_ERR_LIMIT);
    assert_null(c);
    lia_ctl_server_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_write_oversized_refused),
        cmocka_unit_test(test_partial_frames),
        cmocka_unit_test(test_peer_close),
        cmocka_unit_test(test_queued_send),
        cmocka_unit_test(test_queue_msg),
        cmocka_unit_test(test_uid_refused),
        cmocka_unit_test(test_path_safety),
        cmocka_unit_test(test_accept_none_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
