/*
 * rawpeer: a deliberately misbehaving (or merely raw) client of the broker, for the
 * admission integration tests. Test code: it talks to libzmq directly, bypassing the
 * project's transport, so that it can use mechanisms and frames the transport never would.
 *
 *   rawpeer curve --endpoint EP --server-cert broker.cert --key node.key
 *           [--hold-ms T --ready-file F]
 *       a real node identity: sends a Hello and a Heartbeat and waits for any reply. With
 *       --hold-ms it then keeps the session (a Heartbeat every 200 ms), touches the ready file
 *       once the first reply arrived, and reports whether the session was cut and whether the
 *       automatic reconnection was refused.
 *   rawpeer null|plain --endpoint EP           ZMQ NULL / PLAIN mechanism, sends a Hello
 *   rawpeer random-curve --endpoint EP --server-cert broker.cert
 *       a fresh CURVE client key that no certificate names, sends a Hello
 *   rawpeer frame --endpoint EP --server-cert broker.cert --key node.key
 *           --kind oversized|truncated|garbage|multipart|claim-other-sender|channel-envelope|
 *                  membership
 *           [--size BYTES] [--as NODE_ID] [--channel CH] [--change FILE]
 *       a real identity that sends a Hello and then one bad frame: a Publish frame of --size
 *       bytes in all; a Publish whose envelope is cut in half; random bytes; a two-part
 *       message; a correctly signed envelope from this identity whose header names --as as
 *       its sender; a correctly signed envelope from this identity to channel --channel (of
 *       which it is not a member); a MembershipPublish of the change in --change.
 *
 * Common options: --timeout-ms T (default 3000): how long to wait for an outcome;
 * --expect OUTCOME: exit 0 only if the outcome is OUTCOME (else 1; 2 on usage errors).
 *
 * Outcomes (one JSON line on stdout says which, with details):
 *   refused       the handshake failed: the socket monitor reported
 *                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, _NO_DETAIL or _PROTOCOL
 *   reply         a frame other than Error came back
 *   error         an Error frame came back ("code" and "reason" are reported)
 *   disconnected  the handshake succeeded, then the connection was closed by the broker
 *   timeout       nothing of the above within the timeout (no handshake failure, no reply)
 *   cut-refused   (--hold-ms) the session was cut and the reconnection was refused
 *                 ("cut_at_unix_ms": wall-clock time at which the cut was seen)
 *   cut-reconnected (--hold-ms) the session was cut and the reconnection was admitted
 *   cut           (--hold-ms) the session was cut; no refusal seen within the timeout
 *   held          (--hold-ms) the session lasted the whole hold time
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "cert.h"
#include "envelope.h"
#include "error.h"
#include "file.h"
#include "vault.h"

#include "liaison/v1/transport.pb-c.h"

#define MONITOR_EP "inproc://rawpeer.monitor"

static const char *mode, *endpoint, *server_cert, *key_path, *kind, *as_id, *expect, *ready_file,
    *channel_name, *change_path;
static long timeout_ms = 3000, hold_ms = 0;
static size_t frame_size;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
    fprintf(stderr, "rawpeer: %s\n", what);
    exit(2);
}

static void zdie(const char *what)
{
    fprintf(stderr, "rawpeer: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(2);
}

/* Prints the outcome line and exits according to --expect. */
static void finish(const char *outcome, const char *detail)
{
    printf("{\"mode\":\"%s\",\"kind\":\"%s\",\"outcome\":\"%s\"%s%s}\n", mode, kind ? kind : "",
           outcome, detail && detail[0] ? "," : "", detail ? detail : "");
    fflush(stdout);
    exit(!expect || strcmp(expect, outcome) == 0 ? 0 : 1);
}

static void set_opt(void *s, int opt, const void *v, size_t len, const char *name)
{
    if (zmq_setsockopt(s, opt, v, len) != 0)
        zdie(name);
}

static uint8_t *read_file(const char *path, size_t max, size_t *len)
{
    uint8_t *buf;
    int rc = lia_file_read(path, max, 0, &buf, len);
    if (rc != 0) {
        fprintf(stderr, "rawpeer: %s: %s\n", path, lia_strerror(rc));
        exit(2);
    }
    return buf;
}

static void server_key(uint8_t out[32])
{
    lia_cert_info ci;
    size_t len;
    uint8_t *buf;

    if (!server_cert)
        die("--server-cert is required for this mode");
    buf = read_file(server_cert, LIA_CERT_MAX_BYTES, &len);
    /* Test code: the broker certificate comes from the test's own authority. */
    if (lia_cert_decode_unverified(buf, len, &ci) != 0)
        die("cannot decode the server certificate");
    free(buf);
    memcpy(out, ci.transport_pk, 32);
}

static lia_identity_t *load_identity(void)
{
    lia_identity_t *id = NULL;
    int rc;

    if (!key_path)
        die("--key is required for this mode");
    if ((rc = lia_identity_load(key_path, LIA_SECRET_NODE, NULL, 0, &id)) != 0) {
        fprintf(stderr, "rawpeer: %s: %s\n", key_path, lia_strerror(rc));
        exit(2);
    }
    return id;
}

/* Packs a Frame into a malloc'd buffer. */
static uint8_t *pack_frame(const Liaison__V1__Frame *f, size_t *len)
{
    uint8_t *buf;

    *len = liaison__v1__frame__get_packed_size(f);
    if (!(buf = malloc(*len ? *len : 1)))
        die("out of memory");
    liaison__v1__frame__pack(f, buf);
    return buf;
}

/* Sends one frame. Not queued within the send timeout (no session: the handshake was refused
 * or the connection cut) is not an error here: the loop in main reports what happened. */
static void send_buf(void *s, const uint8_t *buf, size_t len, int flags)
{
    if (zmq_send(s, len ? (const void *)buf : "", len, flags) < 0 && zmq_errno() != EAGAIN)
        zdie("zmq_send");
}

static void send_hello(void *s)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Hello h = LIAISON__V1__HELLO__INIT;
    size_t len;
    uint8_t *buf;

    h.protocol_version = 1;
    h.window = 16;
    f.kind_case = LIAISON__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    buf = pack_frame(&f, &len);
    send_buf(s, buf, len, 0);
    free(buf);
}

static void send_heartbeat(void *s)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Heartbeat h = LIAISON__V1__HEARTBEAT__INIT;
    size_t len;
    uint8_t *buf;

    h.sent_at_ms = (uint64_t)now_ms();
    f.kind_case = LIAISON__V1__FRAME__KIND_HEARTBEAT;
    f.heartbeat = &h;
    buf = pack_frame(&f, &len);
    send_buf(s, buf, len, 0);
    free(buf);
}

/* A Publish frame around envelope bytes. */
static uint8_t *publish_frame(const uint8_t *env, size_t env_len, size_t *len)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Publish p = LIAISON__V1__PUBLISH__INIT;
    ProtobufCBinaryData b = {env_len, (uint8_t *)env};

    p.n_envelopes = 1;
    p.envelopes = &b;
    f.kind_case = LIAISON__V1__FRAME__KIND_PUBLISH;
    f.publish = &p;
    return pack_frame(&f, len);
}

/* One correctly signed envelope from id, whose header names sender_id, to recipient. */
static lia_buf seal_one(const lia_identity_t *id, const char *sender_id, const char *recipient,
                        const char *channel)
{
    static const uint8_t payload[] = "rawpeer test payload";
    const char *rcpt[1] = {recipient};
    lia_seal_item it;
    lia_symkey_t *key = NULL;
    lia_buf out = {NULL, 0};
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&it, 0, sizeof it);
    if (lia_symkey_generate(&key) != 0)
        die("lia_symkey_generate");
    if (channel) {
        it.dest.channel = channel;
    } else {
        it.dest.recipients = rcpt;
        it.dest.n_recipients = 1;
    }
    it.epoch = 1;
    it.seq = 1;
    it.created_at_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    it.key = key;
    it.payload = payload;
    it.payload_len = sizeof payload - 1;
    if (lia_envelope_seal_batch(id, sender_id, &it, 1, &out) != 0)
        die("lia_envelope_seal_batch failed");
    lia_symkey_destroy(&key);
    return out;
}

/* Sends the bad frame of --kind. */
static void send_bad(void *s, const lia_identity_t *id)
{
    uint8_t *buf;
    size_t len;

    if (strcmp(kind, "oversized") == 0) {
        uint8_t *env;
        size_t env_len;

        if (frame_size < 16)
            die("--size BYTES (> 16) is required for --kind oversized");
        /* The Publish framing costs a tag and a length (a few bytes): fill up to --size. */
        env_len = frame_size - 12;
        if (!(env = malloc(env_len)))
            die("out of memory");
        randombytes_buf(env, env_len);
        buf = publish_frame(env, env_len, &len);
        free(env);
        fprintf(stderr, "rawpeer: oversized frame of %zu bytes\n", len);
        send_buf(s, buf, len, 0);
        free(buf);
    } else if (strcmp(kind, "truncated") == 0) {
        lia_buf env = seal_one(id, lia_identity_name(id), as_id ? as_id : "zz-none", NULL);

        buf = publish_frame(env.data, env.len / 2, &len);
        send_buf(s, buf, len, 0);
        free(buf);
        free(env.data);
    } else if (strcmp(kind, "garbage") == 0) {
        uint8_t junk[300];

        randombytes_buf(junk, sizeof junk);
        junk[0] = 0xff; /* field 31, wire type 7: never a valid protobuf start */
        send_buf(s, junk, sizeof junk, 0);
    } else if (strcmp(kind, "multipart") == 0) {
        static const uint8_t part[] = {0x32, 0x00}; /* an empty Publish, twice */

        send_buf(s, part, sizeof part, ZMQ_SNDMORE);
        send_buf(s, part, sizeof part, 0);
    } else if (strcmp(kind, "claim-other-sender") == 0) {
        lia_buf env;

        if (!as_id || !lia_node_id_valid(as_id))
            die("--as NODE_ID is required for --kind claim-other-sender");
        env = seal_one(id, as_id, as_id, NULL);
        buf = publish_frame(env.data, env.len, &len);
        send_buf(s, buf, len, 0);
        free(buf);
        free(env.data);
    } else if (strcmp(kind, "channel-envelope") == 0) {
        lia_buf env;

        if (!channel_name || !lia_channel_valid(channel_name))
            die("--channel CH is required for --kind channel-envelope");
        env = seal_one(id, lia_identity_name(id), NULL, channel_name);
        buf = publish_frame(env.data, env.len, &len);
        send_buf(s, buf, len, 0);
        free(buf);
        free(env.data);
    } else if (strcmp(kind, "membership") == 0) {
        Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
        Liaison__V1__MembershipPublish mp = LIAISON__V1__MEMBERSHIP_PUBLISH__INIT;

        if (!change_path)
            die("--change FILE is required for --kind membership");
        mp.change.data = read_file(change_path, 1u << 20, &mp.change.len);
        f.kind_case = LIAISON__V1__FRAME__KIND_MEMBERSHIP_PUBLISH;
        f.membership_publish = &mp;
        buf = pack_frame(&f, &len);
        send_buf(s, buf, len, 0);
        free(buf);
        free(mp.change.data);
    } else {
        die("unknown --kind");
    }
}

/* Takes one monitor event: returns its number (0 if none waiting), *val its value. */
static unsigned monitor_event(void *mon, uint32_t *val)
{
    zmq_msg_t m;
    uint16_t ev = 0;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    if (zmq_msg_size(&m) == 6) {
        memcpy(&ev, zmq_msg_data(&m), 2);
        memcpy(val, (const uint8_t *)zmq_msg_data(&m) + 2, 4);
    }
    while (zmq_msg_more(&m))
        if (zmq_msg_recv(&m, mon, 0) < 0)
            break;
    zmq_msg_close(&m);
    return ev;
}

static const char *handshake_failure(unsigned ev)
{
    switch (ev) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        return "HANDSHAKE_FAILED_AUTH";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return "HANDSHAKE_FAILED_PROTOCOL";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return "HANDSHAKE_FAILED_NO_DETAIL";
    default:
        return NULL;
    }
}

/* Decodes a reply frame and finishes with "error" or "reply" (unless keep_going). Returns the
 * frame kind. */
static int on_reply(void *dealer, int keep_going)
{
    zmq_msg_t m;
    Liaison__V1__Frame *f;
    char detail[512];
    int k;

    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    f = liaison__v1__frame__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    if (!f)
        finish("reply", "\"frame\":\"undecodable\"");
    k = (int)f->kind_case;
    if (f->kind_case == LIAISON__V1__FRAME__KIND_ERROR) {
        char reason[300];
        size_t i;

        /* JSON-safe copy of the reason. */
        for (i = 0; f->error->reason && f->error->reason[i] && i + 1 < sizeof reason; i++) {
            char c = f->error->reason[i];
            reason[i] = (c == '"' || c == '\\' || c < 0x20) ? '?' : c;
        }
        reason[i] = '\0';
        snprintf(detail, sizeof detail, "\"code\":%d,\"reason\":\"%s\"", (int)f->error->code,
                 reason);
        liaison__v1__frame__free_unpacked(f, NULL);
        finish("error", detail);
    }
    liaison__v1__frame__free_unpacked(f, NULL);
    if (!keep_going) {
        snprintf(detail, sizeof detail, "\"frame\":%d", k);
        finish("reply", detail);
    }
    return k;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"server-cert", required_argument, NULL, 's'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"kind", required_argument, NULL, 'K'},
                                         {"as", required_argument, NULL, 'a'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"expect", required_argument, NULL, 'x'},
                                         {"hold-ms", required_argument, NULL, 'H'},
                                         {"ready-file", required_argument, NULL, 'r'},
                                         {"channel", required_argument, NULL, 'c'},
                                         {"change", required_argument, NULL, 'C'},
                                         {NULL, 0, NULL, 0}};
    uint8_t spk[32], cpk[32], csk[32];
    char zpk[41], zsk[41];
    void *ctx, *dealer, *mon;
    lia_identity_t *id = NULL;
    int c, zero = 0, handshook = 0, cut = 0;
    int64_t start, deadline, hold_until = 0, next_beat = 0, cut_at = 0, cut_wall = 0;
    char detail[256];

    if (argc < 2)
        die("usage: rawpeer curve|null|plain|random-curve|frame --endpoint EP [options]");
    mode = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = optarg;
            break;
        case 's':
            server_cert = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'K':
            kind = optarg;
            break;
        case 'a':
            as_id = optarg;
            break;
        case 'z':
            frame_size = strtoul(optarg, NULL, 10);
            break;
        case 't':
            timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'x':
            expect = optarg;
            break;
        case 'H':
            hold_ms = strtol(optarg, NULL, 10);
            break;
        case 'r':
            ready_file = optarg;
            break;
        case 'c':
            channel_name = optarg;
            break;
        case 'C':
            change_path = optarg;
            break;
        default:
            die("bad option");
        }
    }
    if (!endpoint)
        die("--endpoint is required");
    if (sodium_init() < 0)
        die("sodium_init");
    if (!(ctx = zmq_ctx_new()) || !(dealer = zmq_socket(ctx, ZMQ_DEALER)))
        zdie("zmq socket");
    set_opt(dealer, ZMQ_LINGER, &zero, sizeof zero, "ZMQ_LINGER");
    /* A DEALER blocks a send while it has no session; a refused handshake can tear the session
     * down before the first send, and the peer would then wait for ever instead of reporting. */
    {
        int sndtimeo = (int)timeout_ms;
        set_opt(dealer, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo, "ZMQ_SNDTIMEO");
    }
    if (strcmp(mode, "curve") == 0 || strcmp(mode, "frame") == 0 ||
        strcmp(mode, "random-curve") == 0) {
        server_key(spk);
        if (strcmp(mode, "random-curve") == 0) {
            if (zmq_curve_keypair(zpk, zsk) != 0 || !zmq_z85_decode(cpk, zpk) ||
                !zmq_z85_decode(csk, zsk))
                zdie("zmq_curve_keypair");
        } else {
            id = load_identity();
            memcpy(cpk, lia_identity_transport_pk(id), 32);
            if (lia_identity_transport_sk(id, csk) != 0)
                die("cannot read the transport secret key");
        }
        set_opt(dealer, ZMQ_CURVE_SERVERKEY, spk, 32, "ZMQ_CURVE_SERVERKEY");
        set_opt(dealer, ZMQ_CURVE_PUBLICKEY, cpk, 32, "ZMQ_CURVE_PUBLICKEY");
        set_opt(dealer, ZMQ_CURVE_SECRETKEY, csk, 32, "ZMQ_CURVE_SECRETKEY");
        sodium_memzero(csk, sizeof csk);
    } else if (strcmp(mode, "plain") == 0) {
        set_opt(dealer, ZMQ_PLAIN_USERNAME, "fr-ncp", 6, "ZMQ_PLAIN_USERNAME");
        set_opt(dealer, ZMQ_PLAIN_PASSWORD, "secret", 6, "ZMQ_PLAIN_PASSWORD");
    } else if (strcmp(mode, "null") != 0) {
        die("unknown mode");
    }
    if (strcmp(mode, "frame") == 0 && !kind)
        die("--kind is required for mode frame");
    if (zmq_socket_monitor(dealer, MONITOR_EP, ZMQ_EVENT_ALL) != 0)
        zdie("zmq_socket_monitor");
    if (!(mon = zmq_socket(ctx, ZMQ_PAIR)) || zmq_connect(mon, MONITOR_EP) != 0)
        zdie("monitor socket");
    if (zmq_connect(dealer, endpoint) != 0)
        zdie("zmq_connect");

    send_hello(dealer);
    if (strcmp(mode, "curve") == 0)
        send_heartbeat(dealer);
    else if (strcmp(mode, "frame") == 0)
        send_bad(dealer, id);

    start = now_ms();
    deadline = start + timeout_ms;
    for (;;) {
        zmq_pollitem_t items[2] = {{dealer, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        int64_t t = now_ms(), until = hold_until && !cut ? hold_until : deadline;
        long wait;
        unsigned ev;
        uint32_t val = 0;

        if (hold_until && !cut && t >= next_beat) {
            send_heartbeat(dealer); /* queued (dropped at HWM) if the session is gone */
            next_beat = t + 200;
        }
        if (t >= until) {
            if (hold_until && !cut)
                finish("held", NULL);
            if (cut) {
                snprintf(detail, sizeof detail, "\"cut_at_unix_ms\":%lld", (long long)cut_wall);
                finish("cut", detail);
            }
            finish("timeout", handshook ? "\"handshake\":\"succeeded\"" : "\"handshake\":\"none\"");
        }
        wait = (long)(until - t);
        if (hold_until && !cut && wait > 200)
            wait = 200;
        if (zmq_poll(items, 2, wait) < 0)
            continue;
        while ((ev = monitor_event(mon, &val)) != 0) {
            const char *fail = handshake_failure(ev);

            if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                handshook = 1;
                if (cut) {
                    snprintf(detail, sizeof detail, "\"cut_at_unix_ms\":%lld", (long long)cut_wall);
                    finish("cut-reconnected", detail);
                }
            }
            if (fail) {
                if (cut) {
                    snprintf(detail, sizeof detail,
                             "\"cut_at_unix_ms\":%lld,\"reconnect\":\"%s\",\"value\":%u",
                             (long long)cut_wall, fail, val);
                    finish("cut-refused", detail);
                }
                snprintf(detail, sizeof detail, "\"event\":\"%s\",\"value\":%u", fail, val);
                finish("refused", detail);
            }
            if (ev == ZMQ_EVENT_DISCONNECTED && handshook) {
                if (hold_until && !cut) {
                    cut = 1;
                    cut_at = now_ms();
                    cut_wall = wall_ms();
                    handshook = 0;
                    deadline = cut_at + timeout_ms; /* now wait for the reconnection's fate */
                } else if (!hold_until) {
                    finish("disconnected", NULL);
                }
            }
        }
        if (items[0].revents & ZMQ_POLLIN) {
            while (on_reply(dealer, hold_ms > 0) >= 0) {
                if (hold_ms > 0 && !hold_until && !cut) {
                    FILE *f;

                    hold_until = now_ms() + hold_ms;
                    next_beat = now_ms() + 200;
                    if (ready_file && (f = fopen(ready_file, "w")) != NULL)
                        fclose(f);
                }
            }
        }
    }
}
