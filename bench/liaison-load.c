/*
 * liaison-load: drives a node daemon through its control socket, for the end-to-end benchmark
 * and the integration tests.
 *
 *   liaison-load send --socket S (--channel C | --to NODE) --count N [--rate R] [--start I]
 *       sends N example case alerts whose case reference carries their index and whose summary
 *       carries the send time; prints one JSON line with the count accepted and the rate.
 *   liaison-load recv --socket S --count N [--channel C] [--after SEQ] [--timeout-ms T]
 *       follows the node until N messages arrived; checks that the indexes are exactly
 *       start..start+N-1, in order, each once; prints one JSON line with latency percentiles.
 *       Exits 0 only if every message arrived once and in order. With --stop-after K it stops
 *       itself (SIGSTOP) after the K-th message, for a test to play a follower that stops
 *       reading; SIGCONT resumes it.
 *
 *   Both take --connect-timeout-ms T: keep retrying to connect to the control socket for up
 *   to T ms (the node may be restarting; default 0: one attempt).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "control.h"
#include "error.h"
#include "payload.h"

#include "liaison/v1/control.pb-c.h"
#include "liaison/v1/payload.pb-c.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects to the control socket, retrying every 20 ms for up to timeout_ms while the node is
 * not there (no socket, or a stale one nobody answers). */
static int connect_retry(const char *sock, int timeout_ms, lia_ctl_conn_t **c)
{
    double end = now_s() + (double)timeout_ms / 1e3;
    int rc;

    while ((rc = lia_ctl_connect(sock, c)) != 0 && now_s() < end) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL); /* polling interval of a bounded wait */
    }
    return rc;
}

static int write_req(lia_ctl_conn_t *c, const Liaison__V1__ControlRequest *r)
{
    size_t len = liaison__v1__control_request__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    int rc;
    if (!buf)
        return LIA_ERR_NOMEM;
    liaison__v1__control_request__pack(r, buf);
    rc = lia_ctl_write(c, buf, len);
    free(buf);
    return rc;
}

/*
 * A bump allocator for decoding: a message and everything in it come from one buffer that is
 * reset after the message is handled, instead of a malloc and a free per field. What does not
 * fit falls back to the heap. One per process; the load client is single-threaded.
 */
static struct {
    _Alignas(16) uint8_t buf[1u << 18];
    size_t used;
} arena;

static void *arena_alloc(void *unused, size_t size)
{
    size_t at = (arena.used + 15u) & ~(size_t)15u;
    (void)unused;
    if (size <= sizeof arena.buf && at <= sizeof arena.buf - size) {
        arena.used = at + size;
        return arena.buf + at;
    }
    return malloc(size);
}

static void arena_free(void *unused, void *ptr)
{
    (void)unused;
    if ((uint8_t *)ptr < arena.buf || (uint8_t *)ptr >= arena.buf + sizeof arena.buf)
        free(ptr);
}

static ProtobufCAllocator arena_allocator = {arena_alloc, arena_free, NULL};

/*
 * Reads one reply, waiting up to timeout_ms for it to start. The client connection blocks
 * once a frame has begun, and lia_ctl_read reads exactly one frame's bytes, so polling the
 * descriptor first is enough.
 */
static Liaison__V1__ControlReply *read_reply(lia_ctl_conn_t *c, ProtobufCAllocator *alloc,
                                             int timeout_ms, int *err)
{
    struct pollfd p = {lia_ctl_conn_fd(c), POLLIN, 0};
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    if (lia_ctl_buffered(c) == 0 && poll(&p, 1, timeout_ms) <= 0) {
        *err = LIA_ERR_LIMIT;
        return NULL;
    }
    if ((rc = lia_ctl_read(c, &data, &len)) != 0) {
        *err = rc;
        return NULL;
    }
    Liaison__V1__ControlReply *r = liaison__v1__control_reply__unpack(alloc, len, data);
    free(data);
    *err = r ? 0 : LIA_ERR_DECODE;
    return r;
}

/*
 * The send request for message i is one packed template (the example case alert) with two
 * fixed-width fields overwritten in place: the index in its case reference and the send time
 * in its summary. Widths never change, so neither do the protobuf lengths, and the generator
 * costs the benchmark a copy per message instead of a payload encoding.
 */
#define REF_FMT     "load-%010llu"
#define SUMMARY_FMT "sent at %017.6f"
struct request_template {
    uint8_t *buf; /* the packed ControlRequest */
    size_t len;
    size_t ref_off, summary_off; /* where the two strings' bytes start in buf */
};

/* Where needle occurs in hay[0..n), or SIZE_MAX unless it occurs exactly once. */
static size_t find_once(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle), at = SIZE_MAX;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) {
            if (at != SIZE_MAX)
                return SIZE_MAX;
            at = i;
        }
    return at;
}

static int template_new(const char *channel, char *to, struct request_template *t)
{
    Liaison__V1__ControlRequest r = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__SendRequest s = LIAISON__V1__SEND_REQUEST__INIT;
    Liaison__V1__Payload *p = NULL;
    char *rcpt[1] = {to}, ref[32], summary[64], *keep_ref, *keep_summary;
    uint8_t *buf = NULL;
    size_t blen;
    int rc;

    memset(t, 0, sizeof *t);
    if ((rc = lia_payload_example_case_alert("load-0", "load", &buf, &blen)) != 0)
        return rc;
    rc = lia_payload_decode(buf, blen, &p);
    free(buf);
    if (rc != 0)
        return rc;
    /* Placeholders of the final widths; template_fill patches them where they stand, so each
     * must occur exactly once in the encoding (checked below). */
    snprintf(ref, sizeof ref, REF_FMT, 9876543210ull);
    snprintf(summary, sizeof summary, SUMMARY_FMT, 9876543210.987654);
    keep_ref = p->governance->case_reference;
    keep_summary = p->case_alert->summary;
    p->governance->case_reference = ref;
    p->case_alert->summary = summary;
    s.payload.len = liaison__v1__payload__get_packed_size(p);
    s.payload.data = malloc(s.payload.len);
    if (s.payload.data)
        liaison__v1__payload__pack(p, s.payload.data);
    p->governance->case_reference = keep_ref;
    p->case_alert->summary = keep_summary;
    lia_payload_free(&p);
    if (!s.payload.data)
        return LIA_ERR_NOMEM;
    if (channel)
        s.channel = (char *)channel;
    else {
        s.n_recipients = 1;
        s.recipients = rcpt;
    }
    r.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_SEND;
    r.send = &s;
    t->len = liaison__v1__control_request__get_packed_size(&r);
    t->buf = malloc(t->len);
    if (t->buf)
        liaison__v1__control_request__pack(&r, t->buf);
    free(s.payload.data);
    if (!t->buf)
        return LIA_ERR_NOMEM;
    t->ref_off = find_once(t->buf, t->len, ref);
    t->summary_off = find_once(t->buf, t->len, summary);
    if (t->ref_off == SIZE_MAX || t->summary_off == SIZE_MAX) {
        free(t->buf);
        t->buf = NULL;
        return LIA_ERR_INVALID;
    }
    return 0;
}

/* Writes message i's index and the current time into the template. */
static void template_fill(struct request_template *t, uint64_t i)
{
    char ref[32], summary[64];
    snprintf(ref, sizeof ref, REF_FMT, (unsigned long long)i);
    snprintf(summary, sizeof summary, SUMMARY_FMT, now_s());
    memcpy(t->buf + t->ref_off, ref, strlen(ref));
    memcpy(t->buf + t->summary_off, summary, strlen(summary));
}

/* Sends everything queued on c, waiting for the socket to drain (up to 30 s of no progress). */
static int flush_all(lia_ctl_conn_t *c)
{
    int rc;
    while ((rc = lia_ctl_flush(c)) == LIA_ERR_LIMIT) {
        struct pollfd p = {lia_ctl_conn_fd(c), POLLOUT, 0};
        int pr = poll(&p, 1, 30000);
        if (pr == 0)
            return LIA_ERR_IO;
        if (pr < 0 && errno != EINTR)
            return LIA_ERR_IO;
    }
    return rc;
}

static int cmd_send(const char *sock, const char *channel, char *to, uint64_t count, uint64_t start,
                    double rate, int connect_ms)
{
    lia_ctl_conn_t *c = NULL;
    struct request_template t = {0};
    uint64_t sent = 0, accepted = 0, window = 4096;
    double t0;
    int rc, err;

    if ((rc = connect_retry(sock, connect_ms, &c)) != 0) {
        fprintf(stderr, "liaison-load: %s: %s\n", sock, lia_strerror(rc));
        return lia_err_exit(rc);
    }
    if ((rc = template_new(channel, to, &t)) != 0)
        goto fail;
    t0 = now_s();
    while (accepted < count) {
        /* Open loop: everything due is sent without waiting for earlier replies (up to the
         * window), so a paced run measures latency at that rate, not one round trip at a time.
         * What is due goes out in one write. */
        while (sent < count && sent - accepted < window) {
            if (rate > 0 && now_s() < t0 + (double)sent / rate)
                break;
            template_fill(&t, start + sent);
            if ((rc = lia_ctl_queue(c, t.buf, t.len)) != 0)
                goto fail;
            sent++;
            if (lia_ctl_pending(c) >= (256u << 10))
                break; /* write what is there before queuing more */
        }
        if (lia_ctl_pending(c) && (rc = flush_all(c)) != 0)
            goto fail;
        /* Wait for a reply, but paced runs only until the next message is due. */
        int wait_ms = 30000;
        if (rate > 0 && sent < count && sent - accepted < window) {
            double due = t0 + (double)sent / rate, left = due - now_s();
            wait_ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
        }
        if (sent == accepted) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL); /* pacing the load, not waiting for a result */
            continue;
        }
        do {
            Liaison__V1__ControlReply *rep = read_reply(c, NULL, wait_ms, &err);
            if (!rep) {
                if (err == LIA_ERR_LIMIT && wait_ms < 30000)
                    break; /* the next send is due */
                rc = err;
                goto fail;
            }
            if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_ERROR) {
                fprintf(stderr, "liaison-load: refused: %s: %s\n", rep->error->code,
                        rep->error->message);
                liaison__v1__control_reply__free_unpacked(rep, NULL);
                rc = LIA_ERR_PROTOCOL;
                goto fail;
            }
            liaison__v1__control_reply__free_unpacked(rep, NULL);
            accepted++;
            wait_ms = 0;
            /* Take every reply already here before sending more. */
        } while (accepted < sent && lia_ctl_buffered(c) > 0);
    }
    printf("{\"sent\":%llu,\"accepted\":%llu,\"seconds\":%.3f,\"accepted_per_s\":%.0f}\n",
           (unsigned long long)sent, (unsigned long long)accepted, now_s() - t0,
           (double)accepted / (now_s() - t0));
    free(t.buf);
    lia_ctl_conn_destroy(&c);
    return EX_OK;
fail:
    fprintf(stderr, "liaison-load: after %llu accepted: %s\n", (unsigned long long)accepted,
            lia_strerror(rc));
    printf("{\"sent\":%llu,\"accepted\":%llu,\"error\":\"%s\"}\n", (unsigned long long)sent,
           (unsigned long long)accepted, lia_errname(rc));
    free(t.buf);
    lia_ctl_conn_destroy(&c);
    return lia_err_exit(rc);
}

/* 1 if s is prefix followed by a number (an integer into *u, or a decimal into *d). */
static int parse_after(const char *s, const char *prefix, unsigned long long *u, double *d)
{
    size_t k = strlen(prefix);
    char *end;
    if (strncmp(s, prefix, k) != 0 || s[k] < '0' || s[k] > '9')
        return 0;
    errno = 0;
    if (u)
        *u = strtoull(s + k, &end, 10);
    else
        *d = strtod(s + k, &end);
    return errno == 0 && *end == '\0';
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_recv(const char *sock, const char *channel, uint64_t count, uint64_t start,
                    uint64_t after, uint64_t stop_after, int timeout_ms, int connect_ms)
{
    Liaison__V1__ControlRequest r = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__FollowRequest f = LIAISON__V1__FOLLOW_REQUEST__INIT;
    lia_ctl_conn_t *c = NULL;
    double *lat = calloc(count ? count : 1, sizeof *lat), t0 = 0;
    uint64_t got = 0, dup = 0, disorder = 0, expect = start, last_seq = after;
    int rc, err;

    if (!lat)
        return EX_OSERR;
    if ((rc = connect_retry(sock, connect_ms, &c)) != 0) {
        fprintf(stderr, "liaison-load: %s: %s\n", sock, lia_strerror(rc));
        return lia_err_exit(rc);
    }
    f.channel = (char *)(channel ? channel : "");
    f.after = after;
    r.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_FOLLOW;
    r.follow = &f;
    if ((rc = write_req(c, &r)) != 0)
        goto done;
    while (got < count) {
        Liaison__V1__ControlReply *rep = read_reply(c, &arena_allocator, timeout_ms, &err);
        Liaison__V1__Payload *p = NULL;
        unsigned long long idx;
        double sent_at;
        if (!rep) {
            rc = err;
            break;
        }
        if (rep->kind_case != LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE) {
            liaison__v1__control_reply__free_unpacked(rep, &arena_allocator);
            rc = LIA_ERR_PROTOCOL;
            break;
        }
        if (t0 == 0)
            t0 = now_s();
        if (rep->message->delivery_seq <= last_seq)
            disorder++;
        last_seq = rep->message->delivery_seq;
        /* The node validated the payload already; a plain decode is enough here. */
        p = liaison__v1__payload__unpack(&arena_allocator, rep->message->payload.len,
                                         rep->message->payload.data);
        if (p && p->case_alert && p->governance &&
            parse_after(p->governance->case_reference, "load-", &idx, NULL) &&
            parse_after(p->case_alert->summary, "sent at ", NULL, &sent_at)) {
            if (idx < expect)
                dup++;
            else {
                if (idx != expect)
                    disorder++;
                expect = idx + 1;
                lat[got++] = now_s() - sent_at;
                if (got == stop_after)
                    raise(SIGSTOP);
            }
        }
        if (p)
            liaison__v1__payload__free_unpacked(p, &arena_allocator);
        liaison__v1__control_reply__free_unpacked(rep, &arena_allocator);
        arena.used = 0;
    }
    if (got == count)
        rc = 0;
done:;
    double secs = t0 ? now_s() - t0 : 0;
    qsort(lat, got, sizeof *lat, cmp_double);
    printf("{\"received\":%llu,\"expected\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,"
           "\"seconds\":%.3f,\"per_s\":%.0f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,"
           "\"max\":%.3f}}\n",
           (unsigned long long)got, (unsigned long long)count, (unsigned long long)dup,
           (unsigned long long)disorder, secs, secs > 0 ? (double)got / secs : 0,
           got ? lat[got / 2] * 1e3 : 0, got ? lat[(size_t)((double)got * 0.99)] * 1e3 : 0,
           got ? lat[got - 1] * 1e3 : 0);
    free(lat);
    lia_ctl_conn_destroy(&c);
    if (rc == 0 && (dup || disorder))
        return EX_DATAERR;
    return rc == 0 ? EX_OK : lia_err_exit(rc);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"channel", required_argument, NULL, 'c'},
                                         {"to", required_argument, NULL, 't'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"start", required_argument, NULL, 'i'},
                                         {"after", required_argument, NULL, 'a'},
                                         {"timeout-ms", required_argument, NULL, 'T'},
                                         {"connect-timeout-ms", required_argument, NULL, 'C'},
                                         {"stop-after", required_argument, NULL, 'S'},
                                         {NULL, 0, NULL, 0}};
    const char *sock = NULL, *channel = NULL;
    char *to = NULL;
    uint64_t count = 1000, start = 0, after = 0, stop_after = 0;
    double rate = 0;
    int timeout_ms = 30000, connect_ms = 0, c;

    if (argc < 2)
        goto usage;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sock = optarg;
            break;
        case 'c':
            channel = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'n':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'i':
            start = strtoull(optarg, NULL, 10);
            break;
        case 'a':
            after = strtoull(optarg, NULL, 10);
            break;
        case 'T':
            timeout_ms = atoi(optarg);
            break;
        case 'C':
            connect_ms = atoi(optarg);
            break;
        case 'S':
            stop_after = strtoull(optarg, NULL, 10);
            break;
        default:
            goto usage;
        }
    }
    if (!sock || optind != argc)
        goto usage;
    if (strcmp(argv[1], "send") == 0 && (channel || to))
        return cmd_send(sock, channel, to, count, start, rate, connect_ms);
    if (strcmp(argv[1], "recv") == 0)
        return cmd_recv(sock, channel, count, start, after, stop_after, timeout_ms, connect_ms);
usage:
    fputs("usage: liaison-load send --socket S (--channel C | --to NODE) [--count N] [--rate R] "
          "[--start I] [--connect-timeout-ms T]\n"
          "       liaison-load recv --socket S [--channel C] [--count N] [--start I] [--after SEQ] "
          "[--timeout-ms T] [--connect-timeout-ms T] [--stop-after K]\n",
          stderr);
    return EX_USAGE;
}
