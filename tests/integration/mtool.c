/*
 * mtool: test tool for the membership integration test (test_membership.sh). It plays the
 * parts that no honest component plays: a member that signs changes it is not entitled to
 * sign, a compromised broker that relays forged, altered and replayed changes, and a removed
 * member that tries to decrypt the envelopes a compromised broker could hand it. Test code:
 * it reads key files and stores directly and writes what it makes to files.
 *
 *   mtool sign --key K --channel CH --serial N [--prev FILE | --prev-hash B64]
 *              (--create a,b,c | --add N | --remove N | --transfer N) [--at-ms T] --out F
 *       signs exactly that change with K's identity (lia_membership_sign: no state checks).
 *       --prev FILE takes the link hash of the change in FILE (protocol.md 6), --prev-hash
 *       the base64 hash shown by `liaison --json channel history`.
 *   mtool flip --in F --out G
 *       flips one bit in the body of the change in F (the last byte of the body), as a broker
 *       altering it in transit would; the signature is left as it was.
 *   mtool fake-broker --key broker.key --ready-file F --hold-ms T CHANGE...
 *       a broker impostor holding the real broker's transport key (a compromised broker):
 *       binds tcp://127.0.0.1:*, writes the endpoint to F, and sends every connecting node one
 *       MembershipUpdate per CHANGE file, in order; then answers nothing else.
 *   mtool dump --store broker.db --node ID --out-dir D
 *       writes the envelopes the broker holds for node ID (not yet acknowledged) to
 *       D/0001.env, D/0002.env, ... (the broker must be stopped: the store is locked).
 *   mtool open --key K --store node.db --authority A --certs DIR ENV...
 *       a removed member that ignores membership: every key the node holds in its store (and
 *       any key granted to it inside the envelopes) against each envelope, replay checks
 *       neutralised. Prints {"opened":N,"refused":M,"reasons":"r1,r2,..."}.
 * Exit status: 0 done, 1 failure, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
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
#include "keyfiles.h"
#include "membership.h"
#include "replay.h"
#include "store.h"
#include "vault.h"

#include "liaison/v1/membership.pb-c.h"
#include "liaison/v1/transport.pb-c.h"

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "mtool: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    exit(1);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint8_t *slurp(const char *path, size_t max, size_t *len)
{
    uint8_t *buf;
    int rc = lia_file_read(path, max, 0, &buf, len);
    if (rc != 0)
        die("cannot read", path);
    return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        die("cannot write", path);
}

static lia_identity_t *load_identity(const char *path)
{
    lia_identity_t *id = NULL;
    if (!path || lia_identity_load(path, LIA_SECRET_NODE, NULL, 0, &id) != 0)
        die("cannot load the identity", path);
    return id;
}

/* link hash = BLAKE2b-256("liaison.v1.membership-link\0" || change), protocol.md 6. */
static void link_hash(const uint8_t *buf, size_t len, uint8_t out[32])
{
    static const char label[] = "liaison.v1.membership-link";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof label);
    crypto_generichash_update(&st, buf, len);
    crypto_generichash_final(&st, out, 32);
}

static int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},       {"channel", required_argument, NULL, 'c'},
        {"serial", required_argument, NULL, 's'},    {"prev", required_argument, NULL, 'p'},
        {"prev-hash", required_argument, NULL, 'h'}, {"create", required_argument, NULL, 'C'},
        {"add", required_argument, NULL, 'a'},       {"remove", required_argument, NULL, 'r'},
        {"transfer", required_argument, NULL, 't'},  {"at-ms", required_argument, NULL, 'T'},
        {"out", required_argument, NULL, 'o'},       {NULL, 0, NULL, 0}};
    const char *key = NULL, *out = NULL, *members = NULL;
    char *copy = NULL, *mlist[LIA_MEMBERSHIP_CREATE_MAX];
    uint8_t prev[32], *buf = NULL;
    size_t len = 0, nm = 0;
    lia_membership_draft d;
    lia_identity_t *id;
    int c, have_prev = 0;

    memset(&d, 0, sizeof d);
    d.created_at_ms = now_ms();
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'c':
            d.channel = optarg;
            break;
        case 's':
            d.serial = strtoull(optarg, NULL, 10);
            break;
        case 'p': {
            size_t plen;
            uint8_t *p = slurp(optarg, LIA_MEMBERSHIP_CHANGE_MAX, &plen);
            link_hash(p, plen, prev);
            free(p);
            have_prev = 1;
            break;
        }
        case 'h': {
            size_t got = 0;
            if (sodium_base642bin(prev, sizeof prev, optarg, strlen(optarg), NULL, &got, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
                got != 32)
                die("--prev-hash: not 32 bytes of base64:", optarg);
            have_prev = 1;
            break;
        }
        case 'C':
            d.action = LIA_MEMBERSHIP_CREATE;
            members = optarg;
            break;
        case 'a':
            d.action = LIA_MEMBERSHIP_ADD;
            d.node = optarg;
            break;
        case 'r':
            d.action = LIA_MEMBERSHIP_REMOVE;
            d.node = optarg;
            break;
        case 't':
            d.action = LIA_MEMBERSHIP_TRANSFER;
            d.node = optarg;
            break;
        case 'T':
            d.created_at_ms = strtoull(optarg, NULL, 10);
            break;
        case 'o':
            out = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!key || !d.channel || !d.serial || !d.action || !out)
        die("sign: --key, --channel, --serial, an action and --out are needed", NULL);
    if (members) {
        char *save = NULL;
        if (!(copy = strdup(members)))
            die("out of memory", NULL);
        for (char *t = strtok_r(copy, ",", &save); t && nm < LIA_MEMBERSHIP_CREATE_MAX;
             t = strtok_r(NULL, ",", &save))
            mlist[nm++] = t;
        d.members = (const char *const *)mlist;
        d.n_members = nm;
    }
    d.prev_hash = have_prev ? prev : NULL;
    id = load_identity(key);
    if (lia_membership_sign(id, lia_identity_name(id), &d, &buf, &len) != 0)
        die("sign: lia_membership_sign failed", NULL);
    spill(out, buf, len);
    free(buf);
    free(copy);
    lia_identity_destroy(&id);
    return 0;
}

static int cmd_flip(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    Liaison__V1__MembershipChange *m;
    uint8_t *buf, *packed;
    size_t len, plen;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--in") == 0)
            in = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
    }
    if (!in || !out)
        die("flip: --in and --out are needed", NULL);
    buf = slurp(in, LIA_MEMBERSHIP_CHANGE_MAX, &len);
    if (!(m = liaison__v1__membership_change__unpack(NULL, len, buf)) || m->body.len == 0)
        die("flip: not a membership change:", in);
    m->body.data[m->body.len - 1] ^= 0x01; /* a character of the last field */
    plen = liaison__v1__membership_change__get_packed_size(m);
    if (!(packed = malloc(plen)))
        die("out of memory", NULL);
    liaison__v1__membership_change__pack(m, packed);
    spill(out, packed, plen);
    free(packed);
    liaison__v1__membership_change__free_unpacked(m, NULL);
    free(buf);
    return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int cmd_fake_broker(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"ready-file", required_argument, NULL, 'r'},
                                         {"hold-ms", required_argument, NULL, 'H'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL, *ready = NULL;
    long hold_ms = 30000;
    uint8_t sk[32], *frames[64];
    size_t flens[64], nf = 0;
    char seen[64][256], ep[256];
    size_t seen_len[64], n_seen = 0, eplen = sizeof ep;
    int c, one = 1, zero = 0;
    void *ctx, *srv;
    lia_identity_t *id;
    uint64_t until;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'r':
            ready = optarg;
            break;
        case 'H':
            hold_ms = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!key || !ready)
        die("fake-broker: --key and --ready-file are needed", NULL);
    for (int i = optind; i < argc && nf < 64; i++) {
        Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
        Liaison__V1__MembershipUpdate u = LIAISON__V1__MEMBERSHIP_UPDATE__INIT;
        ProtobufCBinaryData b;
        b.data = slurp(argv[i], LIA_MEMBERSHIP_CHANGE_MAX, &b.len);
        u.n_changes = 1;
        u.changes = &b;
        f.kind_case = LIAISON__V1__FRAME__KIND_MEMBERSHIP_UPDATE;
        f.membership_update = &u;
        flens[nf] = liaison__v1__frame__get_packed_size(&f);
        if (!(frames[nf] = malloc(flens[nf])))
            die("out of memory", NULL);
        liaison__v1__frame__pack(&f, frames[nf]);
        free(b.data);
        nf++;
    }
    id = load_identity(key);
    if (lia_identity_transport_sk(id, sk) != 0)
        die("cannot read the transport key", NULL);
    signal(SIGTERM, on_term);
    if (!(ctx = zmq_ctx_new()) || !(srv = zmq_socket(ctx, ZMQ_ROUTER)) ||
        zmq_setsockopt(srv, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(srv, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(srv, ZMQ_CURVE_SECRETKEY, sk, 32) != 0 ||
        zmq_bind(srv, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(srv, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0)
        die("fake-broker: zmq:", zmq_strerror(zmq_errno()));
    sodium_memzero(sk, sizeof sk);
    spill(ready, (const uint8_t *)ep, strlen(ep));
    until = now_ms() + (uint64_t)hold_ms;
    while (!stop && now_ms() < until) {
        zmq_pollitem_t it = {srv, 0, ZMQ_POLLIN, 0};
        char rid[256];
        int rlen, known = 0, more = 0;
        size_t ml = sizeof more;
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        if ((rlen = zmq_recv(srv, rid, sizeof rid, ZMQ_DONTWAIT)) < 0)
            continue;
        /* Drain the rest of the message (the frame). */
        while (zmq_getsockopt(srv, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            (void)zmq_msg_recv(&m, srv, 0);
            zmq_msg_close(&m);
        }
        if (rlen > (int)sizeof rid)
            continue;
        for (size_t i = 0; i < n_seen; i++)
            known |= seen_len[i] == (size_t)rlen && memcmp(seen[i], rid, (size_t)rlen) == 0;
        if (known || n_seen == 64)
            continue;
        memcpy(seen[n_seen], rid, (size_t)rlen);
        seen_len[n_seen++] = (size_t)rlen;
        for (size_t i = 0; i < nf; i++)
            if (zmq_send(srv, rid, (size_t)rlen, ZMQ_SNDMORE) < 0 ||
                zmq_send(srv, frames[i], flens[i], 0) < 0)
                fprintf(stderr, "mtool: send: %s\n", zmq_strerror(zmq_errno()));
        fprintf(stderr, "mtool: fake broker sent %zu changes to a connection\n", nf);
    }
    for (size_t i = 0; i < nf; i++)
        free(frames[i]);
    zmq_close(srv);
    zmq_ctx_term(ctx);
    lia_identity_destroy(&id);
    return 0;
}

static int cmd_dump(int argc, char **argv)
{
    const char *store = NULL, *node = NULL, *dir = NULL;
    lia_bstore_t *s = NULL;
    lia_bstore_item items[256];
    uint64_t cur = 0, head = 0;
    size_t got = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--store") == 0)
            store = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            node = argv[i + 1];
        else if (strcmp(argv[i], "--out-dir") == 0)
            dir = argv[i + 1];
    }
    if (!store || !node || !dir)
        die("dump: --store, --node and --out-dir are needed", NULL);
    if (lia_bstore_open(store, &s) != 0 || lia_bstore_cursor(s, node, &cur, &head) != 0 ||
        lia_bstore_fetch(s, node, cur, 256, items, &got) != 0)
        die("dump: cannot read", store);
    for (size_t i = 0; i < got; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%04zu.env", dir, i + 1);
        spill(path, items[i].data, items[i].len);
    }
    lia_bstore_items_free(items, got);
    lia_bstore_close(&s);
    printf("{\"dumped\":%zu}\n", got);
    return 0;
}

/* The membership a modified node would claim: everyone is a member of everything. */
static int everyone(void *arg, const char *channel, const char *node)
{
    (void)arg;
    (void)channel;
    (void)node;
    return 1;
}

static int cmd_open(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"store", required_argument, NULL, 's'},
                                         {"authority", required_argument, NULL, 'a'},
                                         {"certs", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL, *store = NULL, *auth = NULL, *certs = NULL, *failed = NULL;
    lia_identity_t *id;
    lia_trust_t *trust = NULL;
    lia_symkey_t *skey = NULL;
    lia_nstore_t *ns = NULL;
    lia_opener_t *op = NULL;
    lia_nstore_kv *kv = NULL;
    size_t count = 0, opened = 0, refused = 0, keys = 0;
    char reasons[4096] = "";
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 's':
            store = optarg;
            break;
        case 'a':
            auth = optarg;
            break;
        case 'c':
            certs = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!key || !store || !auth || !certs)
        die("open: --key, --store, --authority and --certs are needed", NULL);
    id = load_identity(key);
    if (lia_keyfiles_load_trust_dir(auth, certs, NULL, &trust, &failed) != 0)
        die("open: cannot load the certificates:", failed);
    if (lia_identity_storage_key(id, &skey) != 0 || lia_nstore_open(store, skey, &ns) != 0)
        die("open: cannot open the store", store);
    if (lia_opener_new(trust, id, lia_identity_name(id), &op) != 0)
        die("open: lia_opener_new failed", NULL);
    lia_opener_set_membership(op, everyone, NULL);
    /* Every key the node received, as node.c stores them (rk: sender, digest, epoch, key). */
    if (lia_nstore_state_list(ns, "rk:", &kv, &count) != 0)
        die("open: cannot list the stored keys", NULL);
    for (size_t i = 0; i < count; i++) {
        static const char label[] = "liaison.v1.rxkey";
        const uint8_t *v = kv[i].val;
        size_t sl = kv[i].len ? v[0] : 0, sln;
        char sender[LIA_NODE_ID_MAX + 1];
        uint8_t ad[128];
        lia_symkey_t *k = NULL;
        if (kv[i].len != 1 + sl + LIA_DEST_DIGEST_BYTES + 8 + LIA_SEALED_KEY_BYTES || sl == 0 ||
            sl > LIA_NODE_ID_MAX)
            die("open: malformed stored key", kv[i].key);
        memcpy(sender, v + 1, sl);
        sender[sl] = '\0';
        sln = sl + 1;
        memcpy(ad, label, sizeof label);
        memcpy(ad + sizeof label, sender, sln);
        memcpy(ad + sizeof label + sln, v + 1 + sl, LIA_DEST_DIGEST_BYTES + 8);
        uint64_t epoch = 0;
        for (int b = 0; b < 8; b++)
            epoch = (epoch << 8) | v[1 + sl + LIA_DEST_DIGEST_BYTES + b];
        if (lia_symkey_unseal(skey, v + 1 + sl + LIA_DEST_DIGEST_BYTES + 8, ad,
                              sizeof label + sln + LIA_DEST_DIGEST_BYTES + 8, &k) != 0 ||
            lia_opener_add_key(op, sender, v + 1 + sl, epoch, k) != 0)
            die("open: cannot restore the stored key", kv[i].key);
        keys++;
    }
    lia_nstore_kv_free(kv, count);
    for (int i = optind; i < argc; i++) {
        size_t len;
        uint8_t *env = slurp(argv[i], LIA_ENVELOPE_MAX, &len), stream[LIA_STREAM_ID_BYTES];
        lia_envelope_meta *meta = NULL;
        lia_opened *m = NULL;
        int rc;
        /* Replay and order are not the question here: each envelope stands alone. */
        if (lia_envelope_inspect(env, len, &meta) == 0) {
            lia_envelope_stream_id(meta->sender, meta->dest_digest, stream);
            if (meta->seq > 1)
                if (lia_replay_set_last(lia_opener_replay(op), stream, meta->seq - 1) != 0)
                    die("open: lia_replay_set_last failed", NULL);
            lia_envelope_meta_free(&meta);
        }
        rc = lia_opener_open(op, env, len, now_ms(), &m);
        if (rc == 0) {
            opened++;
            lia_opened_free(&m);
        } else {
            refused++;
            if (strlen(reasons) + 40 < sizeof reasons)
                snprintf(reasons + strlen(reasons), sizeof reasons - strlen(reasons), "%s%s",
                         reasons[0] ? "," : "", lia_errname(rc));
        }
        free(env);
    }
    printf("{\"keys\":%zu,\"opened\":%zu,\"refused\":%zu,\"reasons\":\"%s\"}\n", keys, opened,
           refused, reasons);
    lia_opener_destroy(&op);
    lia_nstore_close(&ns);
    lia_symkey_destroy(&skey);
    lia_trust_destroy(&trust);
    lia_identity_destroy(&id);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        die("sodium_init failed", NULL);
    if (argc < 2) {
        fprintf(stderr, "usage: mtool sign|flip|fake-broker|dump|open ...\n");
        return 2;
    }
    if (strcmp(argv[1], "sign") == 0)
        return cmd_sign(argc - 1, argv + 1);
    if (strcmp(argv[1], "flip") == 0)
        return cmd_flip(argc - 1, argv + 1);
    if (strcmp(argv[1], "fake-broker") == 0)
        return cmd_fake_broker(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(argv[1], "open") == 0)
        return cmd_open(argc - 1, argv + 1);
    fprintf(stderr, "mtool: unknown command %s\n", argv[1]);
    return 2;
}
