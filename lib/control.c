/*
 * The node's local control socket (see control.h): AF_UNIX stream socket, frames of
 * u32be(length) || bytes, peer uid checked with SO_PEERCRED on accept.
 */
#define _GNU_SOURCE /* struct ucred, accept4, MSG_NOSIGNAL */
#include "control.h"

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* First allocation for a frame body; grown (doubling, up to the announced length) as bytes
 * arrive, so a peer that announces a large frame and stalls costs little memory. */
#define CTL_INITIAL_BUF (64u << 10)

struct lia_ctl_server {
    int fd;
    char *path;
    dev_t dev; /* identity of the socket file we bound, to unlink only our own */
    ino_t ino;
    uid_t *allowed;
    size_t n_allowed;
    uid_t self;
};

struct lia_ctl_conn {
    int fd;    /* -1 once the connection was dropped */
    uid_t uid; /* peer uid (server side), own uid (client side) */
    uint8_t hdr[4];
    size_t hdr_have;
    int in_body;   /* header complete, reading the body */
    uint32_t want; /* body length of the frame being read */
    uint8_t *buf;
    size_t cap;
    size_t have;
    uint8_t rb[16384]; /* read-ahead: rb[rb_off..rb_len) received but not yet consumed */
    size_t rb_off, rb_len;
    uint8_t *out; /* queued output (lia_ctl_send): out[out_off..out_len) still to go */
    size_t out_cap, out_len, out_off;
};

static int errno_to_err(int e)
{
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
        return LIA_ERR_NOT_FOUND;
    case EACCES:
    case EPERM:
        return LIA_ERR_PERMISSION;
    case ENOMEM:
    case ENOBUFS:
        return LIA_ERR_NOMEM;
    default:
        return LIA_ERR_IO;
    }
}

static int close_keep_errno(int fd)
{
    int saved = errno;
    int rc = 0;
    if (fd >= 0 && close(fd) != 0 && errno != EINTR)
        rc = -1;
    errno = saved;
    return rc;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
    size_t n;
    if (!path || !*path)
        return LIA_ERR_INVALID;
    n = strlen(path);
    if (n >= sizeof(sa->sun_path))
        return LIA_ERR_TOO_LARGE;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

/* Creates the directory holding path (one level) with mode 0750 if it does not exist. */
static int ensure_dir(const char *path)
{
    char *dir = strdup(path);
    char *slash;
    struct stat st;
    int rc = 0;

    if (!dir)
        return LIA_ERR_NOMEM;
    slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0; /* relative name in the working directory, or in "/" */
    }
    *slash = '\0';
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            log_err("control socket directory %s is not a directory", dir);
            rc = LIA_ERR_WRONG_KIND;
        }
    } else if (errno != ENOENT) {
        log_err_errno("cannot inspect control socket directory %s", dir);
        rc = errno_to_err(errno);
    } else if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        log_err_errno("cannot create control socket directory %s", dir);
        rc = errno_to_err(errno);
    } else if (chmod(dir, 0750) != 0) { /* the umask may have removed bits */
        log_err_errno("cannot set mode 0750 on %s", dir);
        rc = errno_to_err(errno);
    }
    free(dir);
    return rc;
}

/* 1 if a server answers on the socket at sa, 0 if nobody does (stale), negative on error. */
static int socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;
    if (fd < 0)
        return errno_to_err(errno);
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    if (rc == 0)
        rc = 1;
    else if (errno == ECONNREFUSED)
        rc = 0;
    else if (errno == EAGAIN || errno == EINTR)
        rc = 1; /* a backlog is full or we were interrupted: someone is there */
    else
        rc = errno_to_err(errno);
    close_keep_errno(fd);
    return rc;
}

/* Removes a stale socket at path; refuses anything that is not a socket or that is live. */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    int live;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        log_err_errno("cannot inspect %s", path);
        return errno_to_err(errno);
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_err("%s exists and is not a socket; refusing to replace it", path);
        return LIA_ERR_EXISTS;
    }
    live = socket_is_live(sa);
    if (live < 0) {
        log_err_errno("cannot probe existing socket %s", path);
        return live;
    }
    if (live) {
        log_err("another process is listening on %s", path);
        return LIA_ERR_EXISTS;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        log_err_errno("cannot remove stale socket %s", path);
        return errno_to_err(errno);
    }
    return 0;
}

int lia_ctl_listen(const char *path, const uid_t *allowed, size_t n_allowed, lia_ctl_server_t **out)
{
    struct sockaddr_un sa;
    lia_ctl_server_t *s;
    struct stat st;
    mode_t old_mask;
    int rc;

    if (!out || (n_allowed && !allowed))
        return LIA_ERR_INVALID;
    *out = NULL;
    rc = fill_addr(path, &sa);
    if (rc < 0)
        return rc;
    if (n_allowed > 65536)
        return LIA_ERR_TOO_LARGE;
    rc = ensure_dir(path);
    if (rc < 0)
        return rc;
    rc = clear_path(path, &sa);
    if (rc < 0)
        return rc;

    s = calloc(1, sizeof(*s));
    if (!s)
        return LIA_ERR_NOMEM;
    s->fd = -1;
    s->self = geteuid();
    s->path = strdup(path);
    if (n_allowed) {
        s->allowed = calloc(n_allowed, sizeof(uid_t));
        if (s->allowed)
            memcpy(s->allowed, allowed, n_allowed * sizeof(uid_t));
    }
    s->n_allowed = n_allowed;
    if (!s->path || (n_allowed && !s->allowed)) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd < 0) {
        log_err_errno("socket(AF_UNIX)");
        rc = errno_to_err(errno);
        goto fail;
    }
    /* The socket file gets mode 0660 from the umask at bind time (no window with wider
     * permissions). umask is process-wide: call this before starting threads. */
    old_mask = umask(0117);
    rc = bind(s->fd, (const struct sockaddr *)&sa, sizeof(sa));
    umask(old_mask);
    if (rc != 0) {
        log_err_errno("cannot bind control socket %s", path);
        rc = errno_to_err(errno);
        goto fail;
    }
    if (lstat(path, &st) != 0) {
        log_err_errno("cannot inspect %s after bind", path);
        rc = errno_to_err(errno);
        goto fail;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    if (listen(s->fd, 64) != 0) {
        log_err_errno("cannot listen on %s", path);
        rc = errno_to_err(errno);
        if (unlink(path) != 0)
            log_warn_errno("cannot remove %s", path);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    close_keep_errno(s->fd);
    free(s->allowed);
    free(s->path);
    free(s);
    return rc;
}

void lia_ctl_server_destroy(lia_ctl_server_t **p)
{
    lia_ctl_server_t *s;
    struct stat st;

    if (!p || !*p)
        return;
    s = *p;
    *p = NULL;
    if (s->fd >= 0 && close(s->fd) != 0)
        log_warn_errno("close(control socket)");
    /* Remove the socket file only if it is still the one we created. */
    if (s->path && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino &&
        unlink(s->path) != 0)
        log_warn_errno("cannot remove %s", s->path);
    free(s->allowed);
    free(s->path);
    free(s);
}

int lia_ctl_server_fd(const lia_ctl_server_t *s)
{
    return s ? s->fd : -1;
}

static lia_ctl_conn_t *conn_new(int fd, uid_t uid)
{
    lia_ctl_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->uid = uid;
    return c;
}

static int uid_allowed(const lia_ctl_server_t *s, uid_t uid)
{
    if (uid == s->self)
        return 1;
    for (size_t i = 0; i < s->n_allowed; i++)
        if (s->allowed[i] == uid)
            return 1;
    return 0;
}

int lia_ctl_accept(lia_ctl_server_t *s, lia_ctl_conn_t **out)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    lia_ctl_conn_t *c;
    int fd;

    if (!s || !out || s->fd < 0)
        return LIA_ERR_INVALID;
    *out = NULL;
    for (;;) {
        fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return LIA_ERR_LIMIT;
        log_warn_errno("accept on control socket");
        return errno == EMFILE || errno == ENFILE ? LIA_ERR_LIMIT : errno_to_err(errno);
    }
    memset(&cred, 0, sizeof(cred));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || clen != sizeof(cred)) {
        log_warn_errno("SO_PEERCRED on control connection");
        close_keep_errno(fd);
        return LIA_ERR_PERMISSION;
    }
    if (!uid_allowed(s, cred.uid)) {
        log_warn("control connection refused: uid %lu (pid %ld) is not allowed",
                 (unsigned long)cred.uid, (long)cred.pid);
        close_keep_errno(fd);
        return LIA_ERR_PERMISSION;
    }
    c = conn_new(fd, cred.uid);
    if (!c) {
        close_keep_errno(fd);
        return LIA_ERR_NOMEM;
    }
    *out = c;
    return 0;
}

int lia_ctl_connect(const char *path, lia_ctl_conn_t **out)
{
    struct sockaddr_un sa;
    lia_ctl_conn_t *c;
    int fd, rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    rc = fill_addr(path, &sa);
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_to_err(errno);
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINTR && errno != EINPROGRESS) {
            rc = errno_to_err(errno);
            close_keep_errno(fd);
            return rc;
        }
        /* Interrupted: the connection completes asynchronously; wait for it. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof(err);
        do
            rc = poll(&pfd, 1, 5000);
        while (rc < 0 && errno == EINTR);
        if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            if (rc == 0)
                errno = ETIMEDOUT;
            else if (err)
                errno = err;
            rc = errno_to_err(errno);
            close_keep_errno(fd);
            return rc;
        }
    }
    c = conn_new(fd, geteuid());
    if (!c) {
        close_keep_errno(fd);
        return LIA_ERR_NOMEM;
    }
    *out = c;
    return 0;
}

/* Drops the connection (the struct stays valid until lia_ctl_conn_destroy). */
static void conn_drop(lia_ctl_conn_t *c)
{
    if (c->fd >= 0) {
        if (close(c->fd) != 0 && errno != EINTR)
            log_warn_errno("close(control connection)");
        c->fd = -1;
    }
    free(c->buf);
    c->buf = NULL;
    c->cap = c->have = 0;
    c->hdr_have = 0;
    c->in_body = 0;
    if (c->out)
        sodium_memzero(c->out, c->out_cap); /* replies carry message plaintext */
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_len = c->out_off = 0;
}

void lia_ctl_conn_destroy(lia_ctl_conn_t **p)
{
    if (!p || !*p)
        return;
    conn_drop(*p);
    free(*p);
    *p = NULL;
}

int lia_ctl_conn_fd(const lia_ctl_conn_t *c)
{
    return c ? c->fd : -1;
}

uid_t lia_ctl_conn_uid(const lia_ctl_conn_t *c)
{
    return c ? c->uid : (uid_t)-1;
}

/* One recv(): >0 bytes read, 0 closed, LIA_ERR_LIMIT would block, other negative errors. */
static ssize_t recv_raw(lia_ctl_conn_t *c, void *dst, size_t n);

/*
 * Up to n bytes of the stream: from the read-ahead buffer if it holds any, else one recv —
 * into the buffer for small reads (so that one system call brings in many small frames),
 * straight into dst for large ones.
 */
static ssize_t recv_some(lia_ctl_conn_t *c, void *dst, size_t n)
{
    if (c->rb_off == c->rb_len && n < sizeof c->rb) {
        ssize_t r = recv_raw(c, c->rb, sizeof c->rb);
        if (r <= 0)
            return r;
        c->rb_off = 0;
        c->rb_len = (size_t)r;
    }
    if (c->rb_off < c->rb_len) {
        size_t k = c->rb_len - c->rb_off < n ? c->rb_len - c->rb_off : n;
        memcpy(dst, c->rb + c->rb_off, k);
        c->rb_off += k;
        return (ssize_t)k;
    }
    return recv_raw(c, dst, n);
}

size_t lia_ctl_buffered(const lia_ctl_conn_t *c)
{
    return c ? c->rb_len - c->rb_off : 0;
}

static ssize_t recv_raw(lia_ctl_conn_t *c, void *dst, size_t n)
{
    for (;;) {
        ssize_t r = recv(c->fd, dst, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return LIA_ERR_LIMIT;
        if (errno == ECONNRESET)
            return 0;
        return errno_to_err(errno);
    }
}

int lia_ctl_read(lia_ctl_conn_t *c, uint8_t **data, size_t *len)
{
    ssize_t r;

    if (!c || !data || !len)
        return LIA_ERR_INVALID;
    *data = NULL;
    *len = 0;
    if (c->fd < 0)
        return LIA_ERR_NOT_FOUND;

    while (!c->in_body) {
        r = recv_some(c, c->hdr + c->hdr_have, sizeof(c->hdr) - c->hdr_have);
        if (r == 0) {
            int mid = c->hdr_have > 0;
            conn_drop(c);
            return mid ? LIA_ERR_PROTOCOL : LIA_ERR_NOT_FOUND;
        }
        if (r < 0) {
            if (r != LIA_ERR_LIMIT)
                conn_drop(c);
            return (int)r;
        }
        c->hdr_have += (size_t)r;
        if (c->hdr_have < sizeof(c->hdr))
            continue;
        c->want = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 | (uint32_t)c->hdr[2] << 8 |
                  (uint32_t)c->hdr[3];
        if (c->want > LIA_CONTROL_MAX_FRAME) {
            /* Checked before any allocation; the stream cannot be resynchronised. */
            log_warn("control frame of %lu bytes exceeds the limit of %u; dropping connection",
                     (unsigned long)c->want, LIA_CONTROL_MAX_FRAME);
            conn_drop(c);
            return LIA_ERR_TOO_LARGE;
        }
        c->in_body = 1;
        c->have = 0;
    }

    while (c->have < c->want) {
        if (c->have == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : CTL_INITIAL_BUF;
            uint8_t *nb;
            if (ncap > c->want)
                ncap = c->want;
            nb = realloc(c->buf, ncap);
            if (!nb)
                return LIA_ERR_NOMEM; /* state kept: the caller may retry */
            c->buf = nb;
            c->cap = ncap;
        }
        r = recv_some(c, c->buf + c->have, c->cap - c->have);
        if (r == 0) {
            conn_drop(c);
            return LIA_ERR_PROTOCOL; /* closed in the middle of a frame */
        }
        if (r < 0) {
            if (r != LIA_ERR_LIMIT)
                conn_drop(c);
            return (int)r;
        }
        c->have += (size_t)r;
    }

    /* Complete frame: hand the buffer over (a 1-byte buffer for an empty frame, so that
     * *data is never NULL on success). */
    if (!c->buf) {
        c->buf = malloc(1);
        if (!c->buf)
            return LIA_ERR_NOMEM;
    }
    *data = c->buf;
    *len = c->want;
    c->buf = NULL;
    c->cap = c->have = 0;
    c->hdr_have = 0;
    c->in_body = 0;
    c->want = 0;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lia_ctl_write(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
{
    uint8_t hdr[4];
    struct iovec iov[2];
    size_t total, sent = 0;
    int64_t deadline;

    if (!c || (len && !data))
        return LIA_ERR_INVALID;
    if (c->fd < 0)
        return LIA_ERR_NOT_FOUND;
    if (len > LIA_CONTROL_MAX_FRAME)
        return LIA_ERR_TOO_LARGE;
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    total = len + sizeof(hdr);
    deadline = now_ms() + LIA_CONTROL_WRITE_TIMEOUT_MS;

    while (sent < total) {
        struct msghdr mh;
        int n = 0;
        ssize_t w;

        if (sent < sizeof(hdr)) {
            iov[n].iov_base = hdr + sent;
            iov[n++].iov_len = sizeof(hdr) - sent;
            if (len) {
                iov[n].iov_base = (void *)data;
                iov[n++].iov_len = len;
            }
        } else {
            iov[n].iov_base = (void *)(data + (sent - sizeof(hdr)));
            iov[n++].iov_len = total - sent;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int64_t left = deadline - now_ms();
            int pr;
            if (left <= 0) {
                errno = ETIMEDOUT;
                conn_drop(c); /* a partial frame may have gone out */
                return LIA_ERR_IO;
            }
            pr = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
            if (pr < 0 && errno != EINTR) {
                int rc = errno_to_err(errno);
                conn_drop(c);
                return rc;
            }
            if (pr > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) &&
                !(pfd.revents & POLLOUT)) {
                errno = EPIPE;
                conn_drop(c);
                return LIA_ERR_NOT_FOUND;
            }
            continue;
        }
        {
            int e = w < 0 ? errno : EPIPE;
            int rc = (e == EPIPE || e == ECONNRESET) ? LIA_ERR_NOT_FOUND : errno_to_err(e);
            conn_drop(c);
            errno = e;
            return rc;
        }
    }
    return 0;
}

int lia_ctl_flush(lia_ctl_conn_t *c)
{
    if (!c)
        return LIA_ERR_INVALID;
    if (c->fd < 0)
        return LIA_ERR_NOT_FOUND;
    while (c->out_off < c->out_len) {
        ssize_t w =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return LIA_ERR_LIMIT;
        int rc = w < 0 ? errno_to_err(errno) : LIA_ERR_IO;
        conn_drop(c);
        return rc;
    }
    sodium_memzero(c->out, c->out_len);
    c->out_len = c->out_off = 0;
    return 0;
}

size_t lia_ctl_pending(const lia_ctl_conn_t *c)
{
    return c ? c->out_len - c->out_off : 0;
}

int lia_ctl_send(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
{
    int rc = lia_ctl_queue(c, data, len);
    if (rc != 0)
        return rc;
    rc = lia_ctl_flush(c);
    return rc == LIA_ERR_LIMIT ? 0 : rc;
}

/*
 * Makes room at the end of c's queue for one frame with a len-byte body and writes its length
 * prefix; the caller fills the body and then commits it (c->out_len += len + 4). Nothing is
 * committed on failure, so a frame is queued whole or not at all. The limits are the ones the
 * public functions document: LIA_ERR_TOO_LARGE above LIA_CONTROL_MAX_FRAME (the connection
 * stays), and a peer with more than LIA_CONTROL_QUEUE_MAX pending is dropped (LIA_ERR_LIMIT).
 * The buffer is reused: emptied when everything was sent, compacted before it grows, and
 * never shrunk, so a steady stream settles on one allocation.
 */
static int queue_reserve(lia_ctl_conn_t *c, size_t len, uint8_t **body)
{
    size_t need;

    if (c->fd < 0)
        return LIA_ERR_NOT_FOUND;
    if (len > LIA_CONTROL_MAX_FRAME)
        return LIA_ERR_TOO_LARGE;
    if (lia_ctl_pending(c) + len + 4 > LIA_CONTROL_QUEUE_MAX) {
        conn_drop(c); /* the peer does not read what it asked for */
        return LIA_ERR_LIMIT;
    }
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_len = c->out_off = 0;
    need = c->out_len + len + 4;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        uint8_t *b;
        while (cap < need)
            cap *= 2;
        /* Compact before growing so that a steady stream does not grow the buffer; the bytes
         * vacated at the end are wiped (replies carry message plaintext). */
        if (c->out_off > 0) {
            size_t old_len = c->out_len;
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
            sodium_memzero(c->out + c->out_len, old_len - c->out_len);
            need = c->out_len + len + 4;
        }
        if (need > c->out_cap) {
            b = malloc(cap);
            if (!b)
                return LIA_ERR_NOMEM;
            if (c->out_len)
                memcpy(b, c->out, c->out_len);
            if (c->out) {
                sodium_memzero(c->out, c->out_cap);
                free(c->out);
            }
            c->out = b;
            c->out_cap = cap;
        }
    }
    c->out[c->out_len] = (uint8_t)(len >> 24);
    c->out[c->out_len + 1] = (uint8_t)(len >> 16);
    c->out[c->out_len + 2] = (uint8_t)(len >> 8);
    c->out[c->out_len + 3] = (uint8_t)len;
    *body = c->out + c->out_len + 4;
    return 0;
}

int lia_ctl_queue(lia_ctl_conn_t *c, const uint8_t *data, size_t len)
{
    uint8_t *body;
    int rc;

    if (!c || (len && !data))
        return LIA_ERR_INVALID;
    if ((rc = queue_reserve(c, len, &body)) != 0)
        return rc;
    if (len)
        memcpy(body, data, len);
    c->out_len += len + 4;
    return 0;
}

int lia_ctl_queue_msg(lia_ctl_conn_t *c, const ProtobufCMessage *m)
{
    uint8_t *body;
    size_t len;
    int rc;

    if (!c || !m)
        return LIA_ERR_INVALID;
    len = protobuf_c_message_get_packed_size(m);
    if ((rc = queue_reserve(c, len, &body)) != 0)
        return rc;
    if (protobuf_c_message_pack(m, body) != len) { /* only if m changed since it was sized */
        sodium_memzero(body, len);
        return LIA_ERR_INVALID;
    }
    c->out_len += len + 4;
    return 0;
}
