/*
 * The broker (see broker.h). One thread, one loop:
 *
 *   receive a burst of frames (up to BURST, without waiting once the first arrived)
 *   -> handle them inside one store group (appends, cursor updates)
 *   -> commit: one fsync for the whole burst
 *   -> only now send the acknowledgements
 *   -> push deliveries to connected nodes within their windows.
 *
 * The node id of a frame is the one the ZAP handler attached to the connection from the
 * node's certificate; an envelope whose header names another sender is refused. The broker
 * never decrypts (it holds no content key) and never creates envelopes.
 *
 * Channel membership is the owner-signed chain of lib/membership.c: the broker verifies every
 * change against its own certificates and revocation list, stores it before answering, and
 * routes and admits by it (only members publish, only members receive). Changes reach the
 * nodes concerned after the commit and before any delivery of the same turn, so a node always
 * knows a membership before it sees envelopes that depend on it.
 */
#define _POSIX_C_SOURCE 200809L
#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <sodium.h>

#include "cert.h"
#include "config.h"
#include "daemon.h"
#include "envelope.h"
#include "error.h"
#include "file.h"
#include "keyfiles.h"
#include "log.h"
#include "membership.h"
#include "store.h"
#include "transport.h"
#include "trust.h"
#include "vault.h"

#include "liaison/v1/transport.pb-c.h"

#define BURST               1024
#define PUBLISH_BATCH_MAX   64 /* envelopes per Publish (transport.proto) */
#define DELIVER_BATCH_MAX   64 /* envelopes per Deliver */
#define DELIVER_BATCH_BYTES (256u << 10)
#define ACKS_MAX            (BURST * 4) /* acknowledgements gathered in one burst */
#define ACK_BATCH           1024        /* message ids per PublishAck */
#define FETCH_MAX           256
#define MAX_NODES           4096
#define FRAME_SLACK         1024  /* framing around an envelope inside a Publish or Deliver */
#define PRUNE_SCAN          5000  /* log rows looked at per step of forgetting */
#define PRUNE_ROUND_MS      60000 /* a round of forgetting starts at most this often */

static const lia_config_directive directives[] = {
    {"listen", 1, 1, 0, 1, "ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7450"},
    {"identity", 1, 1, 0, 1, "the broker's secret key file (liaison-keys node-init --role broker)"},
    {"authority", 1, 1, 0, 1, "the network authority's public file (authority.pub)"},
    {"certs", 1, 1, 0, 1, "directory of enrolled node certificates (*.cert)"},
    {"crl", 1, 1, 0, 0, "the authority's revocation list"},
    {"store", 1, 1, 0, 1, "path of the durable log (SQLite)"},
    {"max-message-bytes", 1, 1, 0, 0, "largest envelope accepted (default 16M)"},
    {"max-inflight", 1, 1, 0, 0, "deliveries in flight per node (default 1024)"},
    {"heartbeat-ms", 1, 1, 0, 0, "transport heartbeat interval (default 1000)"},
    {"heartbeat-timeout-ms", 1, 1, 0, 0, "peer considered gone after (default 5000)"},
    {"dedupe-days", 1, 1, 0, 0,
     "days the message id of a delivered envelope is kept to recognise a late retry (default 14; "
     "0: forgotten once delivered)"},
    {"log-level", 1, 1, 0, 0, "err, warning, notice, info or debug (default info)"},
    {"memory-reserve", 1, 1, 0, 0,
     "heap touched at start, so that the first traffic does not wait on page faults (default "
     "48M; 0: none)"},
};

struct node {
    lia_cert_info cert;
    int enrolled; /* has a certificate file */
    int connected;
    lia_peer peer; /* current connection */
    uint64_t last_seen_ms;
    uint64_t sent;  /* highest delivery sequence sent on this connection */
    uint64_t acked; /* highest delivery sequence the node acknowledged */
    uint32_t window;
    int has_more;         /* store may hold deliveries after `sent` */
    int hello;            /* this connection sent a Hello: its publishes are stored */
    int resync_asked;     /* an early publish was dropped and the node told so */
    int need_chains;      /* send the whole chains of its channels before any delivery */
    uint64_t chains_turn; /* the turn in which it last got them */
    uint64_t crl_sent;    /* serial of the revocation list sent on this connection since
                             its last Hello (0: none yet) */
};

/* A membership change stored in the open group, to push to these nodes after the commit. */
struct mpush {
    uint8_t *change;
    size_t len;
    char **rcpt;
    size_t n_rcpt;
};

struct broker {
    lia_inspect_cache inspect_cache; /* hashes of the last stream published to us */
    lia_config_t *cfg;
    char *crl_reloaded; /* crl path read again on SIGHUP (owned), or NULL */
    const char *listen, *identity_path, *authority_path, *certs_dir, *crl_path, *store_path;
    uint64_t max_msg, max_inflight, heartbeat_ms, heartbeat_timeout_ms, dedupe_days;
    uint64_t memory_reserve;
    int prune_running;          /* a round of forgetting is under way */
    uint64_t last_round_end_ms; /* when the last one ended (0: none yet) */
    uint64_t pruned_in_round;
    lia_identity_t *id;
    lia_authority_info auth;
    lia_trust_t *trust;
    uint8_t *crl_buf; /* the revocation list installed in trust, as the authority signed it */
    size_t crl_len;
    struct node *nodes;
    size_t n_nodes;
    lia_membership_t *reg; /* channels: the owner-signed chains, as stored */
    struct mpush *pushes;  /* changes stored in the open group */
    size_t n_pushes, cap_pushes;
    uint64_t turn;
    uint64_t admit_checked_ms; /* last check that every session is still admissible */
    lia_bstore_t *store;
    lia_server_t *srv;
};

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct node *find_node(broker_t *b, const char *id)
{
    for (size_t i = 0; i < b->n_nodes; i++)
        if (strcmp(b->nodes[i].cert.node_id, id) == 0)
            return &b->nodes[i];
    return NULL;
}

/*
 * Reads every *.cert in the certificates directory into a new trust store and node table.
 * Certificates that fail to verify are reported and skipped (they are not enrolled). The
 * revocation list held (b->crl_buf) carries over; the `crl` file replaces it only if it is
 * newer (an older or equal file is logged and ignored: the broker never goes back). *crl_out
 * is a malloc'd copy of the file when it replaced the list held, else NULL.
 */
static int load_certs(broker_t *b, lia_trust_t **trust_out, struct node **nodes_out, size_t *n_out,
                      uint8_t **crl_out, size_t *crl_len_out)
{
    DIR *d = opendir(b->certs_dir);
    struct dirent *de;
    lia_trust_t *t = NULL;
    struct node *nodes = NULL;
    size_t n = 0;
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    int rc;

    *crl_out = NULL;
    *crl_len_out = 0;
    if (!d) {
        log_err_errno("%s: cannot open the certificates directory", b->certs_dir);
        return LIA_ERR_IO;
    }
    if ((rc = lia_trust_new(&b->auth, &t)) != 0)
        goto fail;
    rc = LIA_ERR_NOMEM;
    nodes = calloc(MAX_NODES, sizeof *nodes);
    if (!nodes)
        goto fail;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4096];
        uint8_t *buf;
        size_t blen;
        const lia_cert_info *ci;

        if (len < 6 || strcmp(de->d_name + len - 5, ".cert") != 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", b->certs_dir, de->d_name) >= sizeof path)
            continue;
        if ((rc = lia_file_read(path, LIA_CERT_MAX_BYTES, 0, &buf, &blen)) != 0) {
            log_warn("%s: %s; not enrolled", path, lia_strerror(rc));
            continue;
        }
        rc = lia_trust_add_cert(t, buf, blen, &ci);
        free(buf);
        if (rc != 0) {
            log_warn("%s: %s; not enrolled", path, lia_strerror(rc));
            continue;
        }
        if (n == MAX_NODES) {
            log_warn("%s: more than %d certificates; ignored", path, MAX_NODES);
            continue;
        }
        nodes[n].cert = *ci;
        nodes[n].enrolled = 1;
        n++;
    }
    if (b->crl_buf && (rc = lia_trust_set_crl(t, b->crl_buf, b->crl_len)) != 0) {
        log_err("the revocation list held no longer verifies: %s", lia_strerror(rc));
        goto fail;
    }
    if (b->crl_path) {
        if ((rc = lia_file_read(b->crl_path, LIA_CRL_MAX_BYTES, 0, &crl, &crl_len)) != 0) {
            log_err("%s: %s", b->crl_path, lia_strerror(rc));
            goto fail;
        }
        rc = lia_trust_set_crl(t, crl, crl_len);
        if (rc == LIA_ERR_STALE) {
            if (crl_len != b->crl_len || memcmp(crl, b->crl_buf, crl_len) != 0)
                log_warn("%s: not newer than the revocation list held (serial %llu): ignored",
                         b->crl_path, (unsigned long long)lia_trust_crl_serial(t));
            free(crl);
            crl = NULL;
        } else if (rc != 0) {
            log_err("%s: %s", b->crl_path, lia_strerror(rc));
            goto fail;
        }
    }
    closedir(d);
    *trust_out = t;
    *nodes_out = nodes;
    *n_out = n;
    *crl_out = crl;
    *crl_len_out = crl_len;
    return 0;
fail:
    closedir(d);
    lia_trust_destroy(&t);
    free(nodes);
    free(crl);
    return rc;
}

/* ZAP admission: the key of an enrolled certificate valid now and not revoked. */
static int admit(void *arg, const uint8_t key[32], char node_id[LIA_NODE_ID_MAX + 1])
{
    broker_t *b = arg;
    uint64_t now = now_ms() / 1000;

    for (size_t i = 0; i < b->n_nodes; i++) {
        const lia_cert_info *c = &b->nodes[i].cert;
        const lia_cert_info *valid;
        int rc;
        if (sodium_memcmp(c->transport_pk, key, 32) != 0)
            continue;
        if (c->role == LIA_ROLE_BROKER) {
            log_warn("admission: %s refused: a broker certificate", c->node_id);
            return LIA_ERR_PERMISSION;
        }
        if ((rc = lia_trust_find(b->trust, c->node_id, c->sign_key_id, now, &valid)) != 0) {
            /* The transport logs only "key not admitted": say which certificate and why. */
            log_warn("admission: %s refused: %s (serial %016llx)", c->node_id, lia_strerror(rc),
                     (unsigned long long)c->serial);
            return LIA_ERR_PERMISSION;
        }
        strcpy(node_id, c->node_id);
        return 0;
    }
    return LIA_ERR_UNKNOWN_SENDER;
}

int broker_load(const char *path, broker_t **out)
{
    broker_t *b = calloc(1, sizeof *b);
    char err[1024] = "";
    const char *level;
    int rc;

    *out = NULL;
    if (!b)
        return EX_OSERR;
    rc = lia_config_load(path, directives, sizeof directives / sizeof directives[0], &b->cfg, err,
                         sizeof err);
    if (rc != 0)
        goto fail;
    b->listen = lia_config_str(b->cfg, "listen", NULL);
    b->identity_path = lia_config_str(b->cfg, "identity", NULL);
    b->authority_path = lia_config_str(b->cfg, "authority", NULL);
    b->certs_dir = lia_config_str(b->cfg, "certs", NULL);
    b->crl_path = lia_config_str(b->cfg, "crl", NULL);
    b->store_path = lia_config_str(b->cfg, "store", NULL);
    if ((rc = lia_config_uint(b->cfg, "max-message-bytes", 1024, LIA_ENVELOPE_MAX, 16u << 20,
                              &b->max_msg, err, sizeof err)) != 0 ||
        (rc = lia_config_uint(b->cfg, "max-inflight", 1, 1u << 20, 1024, &b->max_inflight, err,
                              sizeof err)) != 0 ||
        (rc = lia_config_uint(b->cfg, "heartbeat-ms", 100, 60000, 1000, &b->heartbeat_ms, err,
                              sizeof err)) != 0 ||
        (rc = lia_config_uint(b->cfg, "heartbeat-timeout-ms", 300, 600000, 5000,
                              &b->heartbeat_timeout_ms, err, sizeof err)) != 0 ||
        (rc = lia_config_uint(b->cfg, "dedupe-days", 0, 3650, 14, &b->dedupe_days, err,
                              sizeof err)) != 0 ||
        (rc = lia_config_uint(b->cfg, "memory-reserve", 0, 1u << 29, LIA_MEMORY_RESERVE_DEFAULT,
                              &b->memory_reserve, err, sizeof err)) != 0)
        goto fail;
    level = lia_config_str(b->cfg, "log-level", "info");
    if (lia_log_set_level_name(level) != 0) {
        lia_config_error(b->cfg, lia_config_get(b->cfg, "log-level"), "unknown log level", level,
                         err, sizeof err);
        rc = LIA_ERR_CONFIG;
        goto fail;
    }
    if ((rc = lia_identity_load(b->identity_path, LIA_SECRET_NODE, NULL, 0, &b->id)) != 0) {
        snprintf(err, sizeof err, "%s: %s", b->identity_path, lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_keyfiles_load_authority(b->authority_path, &b->auth)) != 0) {
        snprintf(err, sizeof err, "%s: %s", b->authority_path, lia_strerror(rc));
        goto fail;
    }
    if ((rc = load_certs(b, &b->trust, &b->nodes, &b->n_nodes, &b->crl_buf, &b->crl_len)) != 0) {
        snprintf(err, sizeof err, "%s: %s", b->certs_dir, lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_membership_new(b->trust, &b->reg)) != 0)
        goto fail;
    *out = b;
    return EX_OK;
fail:
    fprintf(stderr, "liaison-broker: %s\n", err[0] ? err : lia_strerror(rc));
    broker_destroy(&b);
    return lia_err_exit(rc);
}

uint64_t broker_memory_reserve(const broker_t *b)
{
    return b->memory_reserve;
}

void broker_print(const broker_t *b, FILE *f)
{
    fprintf(f, "configuration %s is valid\n", lia_config_path(b->cfg));
    fprintf(f, "listen               %s\n", b->listen);
    fprintf(f, "identity             %s (%s)\n", b->identity_path, lia_identity_name(b->id));
    fprintf(f, "authority            %s (%s)\n", b->authority_path, b->auth.name);
    fprintf(f, "certs                %s (%zu enrolled)\n", b->certs_dir, b->n_nodes);
    for (size_t i = 0; i < b->n_nodes; i++)
        fprintf(f, "  node               %s (%s, %s, serial %016llx)\n", b->nodes[i].cert.node_id,
                lia_role_name(b->nodes[i].cert.role), b->nodes[i].cert.country,
                (unsigned long long)b->nodes[i].cert.serial);
    fprintf(f, "crl                  %s (serial %llu)\n", b->crl_path ? b->crl_path : "(none)",
            (unsigned long long)lia_trust_crl_serial(b->trust));
    fprintf(f, "store                %s\n", b->store_path);
    fprintf(f, "max-message-bytes    %llu\n", (unsigned long long)b->max_msg);
    fprintf(f, "max-inflight         %llu\n", (unsigned long long)b->max_inflight);
    fprintf(f, "heartbeat-ms         %llu\n", (unsigned long long)b->heartbeat_ms);
    fprintf(f, "heartbeat-timeout-ms %llu\n", (unsigned long long)b->heartbeat_timeout_ms);
    fprintf(f, "dedupe-days          %llu (message ids of delivered envelopes kept that long)\n",
            (unsigned long long)b->dedupe_days);
    fprintf(f, "memory-reserve       %llu\n", (unsigned long long)b->memory_reserve);
    fprintf(f, "channels             owner-signed, restored from the store at start\n");
}

/* 1 if a step of forgetting is due: a round is under way, or the last ended long enough ago. */
static int forget_due(const broker_t *b, uint64_t now)
{
    return b->prune_running || b->last_round_end_ms == 0 ||
           now - b->last_round_end_ms >= PRUNE_ROUND_MS;
}

/*
 * One bounded step of forgetting the message ids of envelopes that were delivered to everyone
 * and stored more than dedupe-days ago, inside the group just begun (before anything is
 * appended to it, so that its own envelopes are never candidates, and at no extra fsync). A
 * round (steps until every old row was looked at) runs one step per turn of the loop, so it
 * keeps pace with the traffic; the next round starts PRUNE_ROUND_MS after. 0, or the store's
 * error (the group then fails, which stops the broker).
 */
static int forget_step(broker_t *b, uint64_t now)
{
    struct timespec ts;
    uint64_t wall_ms, keep_ms = b->dedupe_days * 86400000u;
    size_t pruned = 0;
    int done = 0, rc;

    b->prune_running = 1;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0; /* try again next turn */
    wall_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if ((rc = lia_bstore_prune(b->store, wall_ms > keep_ms ? wall_ms - keep_ms : 0, PRUNE_SCAN,
                               &pruned, &done)) != 0) {
        log_err("store: forgetting delivered envelopes: %s", lia_strerror(rc));
        return rc;
    }
    b->pruned_in_round += pruned;
    if (done) {
        if (b->pruned_in_round)
            log_info("forgot the message ids of %llu envelopes delivered to every recipient and "
                     "stored more than %llu days ago",
                     (unsigned long long)b->pruned_in_round, (unsigned long long)b->dedupe_days);
        b->pruned_in_round = 0;
        b->prune_running = 0;
        b->last_round_end_ms = now;
    }
    return 0;
}

static void free_pushes(broker_t *b)
{
    for (size_t i = 0; i < b->n_pushes; i++) {
        free(b->pushes[i].change);
        for (size_t j = 0; j < b->pushes[i].n_rcpt; j++)
            free(b->pushes[i].rcpt[j]);
        free(b->pushes[i].rcpt);
    }
    b->n_pushes = 0;
}

void broker_destroy(broker_t **p)
{
    broker_t *b;
    if (!p || !*p)
        return;
    b = *p;
    lia_server_destroy(&b->srv);
    lia_bstore_close(&b->store);
    free_pushes(b);
    free(b->pushes);
    lia_membership_destroy(&b->reg);
    free(b->nodes);
    lia_trust_destroy(&b->trust);
    lia_identity_destroy(&b->id);
    lia_config_destroy(&b->cfg);
    free(b->crl_reloaded);
    free(b->crl_buf);
    free(b);
    *p = NULL;
}

/* ---- frames ---- */

static int send_frame(broker_t *b, const lia_peer *peer, const Liaison__V1__Frame *f)
{
    size_t len = liaison__v1__frame__get_packed_size(f);
    uint8_t stackbuf[512], *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    int rc;

    if (!buf)
        return LIA_ERR_NOMEM;
    liaison__v1__frame__pack(f, buf);
    rc = lia_server_send(b->srv, peer, buf, len);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static void send_error(broker_t *b, const lia_peer *peer, Liaison__V1__ErrorCode code,
                       const uint8_t *msgid, const char *reason)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Error e = LIAISON__V1__ERROR__INIT;
    e.code = code;
    if (msgid) {
        e.message_id.data = (uint8_t *)msgid;
        e.message_id.len = LIA_MESSAGE_ID_BYTES;
    }
    e.reason = (char *)reason;
    f.kind_case = LIAISON__V1__FRAME__KIND_ERROR;
    f.error = &e;
    if (send_frame(b, peer, &f) != 0)
        log_debug("%s: could not send an error frame", peer->node_id);
}

struct pending_ack {
    lia_peer peer;
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint64_t sender_seq;
};

/* A connection seen for the first time (or a new connection of a known node). */
static void note_connection(broker_t *b, struct node *n, const lia_peer *peer)
{
    int same = n->peer.routing_id_len == peer->routing_id_len &&
               memcmp(n->peer.routing_id, peer->routing_id, peer->routing_id_len) == 0;

    if (!n->connected || !same) {
        /* In-flight deliveries on an old connection are gone: resume after the durable
         * cursor (which survives a broker restart). */
        uint64_t cur = 0, head = 0;
        if (lia_bstore_cursor(b->store, n->cert.node_id, &cur, &head) == 0 && cur > n->acked)
            n->acked = cur;
        n->peer = *peer;
        n->connected = 1;
        n->sent = n->acked;
        n->has_more = 1;
        if (!same) { /* a new connection: nothing lost on the old one may be overtaken */
            n->hello = 0;
            n->resync_asked = 0;
        }
        n->crl_sent = 0; /* the revocation list goes out again, before any delivery */
        if (n->window == 0)
            n->window = (uint32_t)b->max_inflight;
        /* Whatever was pushed on an old connection may be lost with it. */
        n->need_chains = 1;
        log_info("%s connected", n->cert.node_id);
    }
    n->last_seen_ms = now_ms();
}

/* Handles one Publish inside the current store group. */
/* Handles one envelope of a Publish inside the current store group. */
static void handle_envelope(broker_t *b, struct node *n, const lia_peer *peer,
                            const ProtobufCBinaryData *p, struct pending_ack *acks, size_t *n_acks,
                            int *store_failed)
{
    lia_envelope_meta *m = NULL;
    const char **rcpt = NULL;
    size_t n_rcpt = 0;
    int rc, dup = 0;

    if (p->len > b->max_msg) {
        log_warn("%s: envelope of %zu bytes refused (max-message-bytes %llu)", n->cert.node_id,
                 p->len, (unsigned long long)b->max_msg);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, NULL,
                   "envelope larger than max-message-bytes");
        return;
    }
    if ((rc = lia_envelope_inspect_cached(p->data, p->len, &b->inspect_cache, &m)) != 0) {
        log_warn("%s: envelope refused: %s", n->cert.node_id, lia_strerror(rc));
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL, lia_strerror(rc));
        return;
    }
    if (strcmp(m->sender, n->cert.node_id) != 0 ||
        sodium_memcmp(m->sender_key_id, n->cert.sign_key_id, LIA_KEY_ID_BYTES) != 0) {
        log_warn("%s: envelope claims sender %s: refused", n->cert.node_id, m->sender);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_NOT_SENDER, m->message_id,
                   "the header names another sender or key than this connection");
        goto done;
    }
    if (m->channel[0]) {
        size_t nm = 0;
        /* The registry: owner-signed membership as this broker verified and stored it. */
        const char *const *members = lia_membership_members(b->reg, m->channel, &nm);
        if (!members || !lia_membership_is_member(b->reg, m->channel, n->cert.node_id)) {
            /* Audit record: who tried to publish where, never what. */
            if (members)
                log_warn("audit: %s: not a member of channel %s: publish refused", n->cert.node_id,
                         m->channel);
            else
                log_warn("audit: %s: publish to unknown channel %s refused", n->cert.node_id,
                         m->channel);
            send_error(b, peer,
                       members ? LIAISON__V1__ERROR_CODE__ERROR_CODE_NOT_MEMBER
                               : LIAISON__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_DESTINATION,
                       m->message_id,
                       members ? "not a member of the channel (liaison channel members)"
                               : "unknown channel (create it with liaison channel create)");
            goto done;
        }
        /* Sized by the channel: an array for MAX_NODES would be cleared for every envelope. */
        if (!(rcpt = calloc(nm ? nm : 1, sizeof *rcpt)))
            goto done;
        for (size_t i = 0; i < nm; i++)
            if (strcmp(members[i], n->cert.node_id) != 0)
                rcpt[n_rcpt++] = members[i];
    } else {
        if (!(rcpt = calloc(m->n_recipients ? m->n_recipients : 1, sizeof *rcpt)))
            goto done;
        for (size_t i = 0; i < m->n_recipients; i++) {
            if (!find_node(b, m->recipients[i])) {
                send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_DESTINATION,
                           m->message_id, "a recipient is not enrolled");
                goto done;
            }
            if (strcmp(m->recipients[i], n->cert.node_id) != 0)
                rcpt[n_rcpt++] = m->recipients[i];
        }
    }
    if (n_rcpt == 0) {
        /* Fails closed: nobody to deliver to is an error, not a silent success. */
        log_warn("audit: %s: publish with no recipient other than the sender refused "
                 "(channel '%s')",
                 n->cert.node_id, m->channel);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_DESTINATION, m->message_id,
                   "no recipient other than the sender");
        goto done;
    }
    /* Each sender stream is stored in order, so every receiver gets it in order. */
    const uint8_t *stream = m->stream_id;
    uint64_t last = 0;
    if ((rc = lia_bstore_stream_last(b->store, stream, &last)) != 0) {
        log_err("store: %s", lia_strerror(rc));
        *store_failed = 1;
        goto done;
    }
    if (m->seq > last + 1) {
        log_debug("%s: sequence %llu after %llu on a stream: not stored, awaiting the missing",
                  n->cert.node_id, (unsigned long long)m->seq, (unsigned long long)last);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_OUT_OF_ORDER, m->message_id,
                   "earlier envelopes of this stream are missing: republish in order");
        goto done;
    }
    if (m->seq <= last) {
        int found = 0;
        if ((rc = lia_bstore_has(b->store, m->message_id, &found)) != 0) {
            *store_failed = 1;
            goto done;
        }
        if (!found) {
            log_warn("%s: sequence %llu reused by a different envelope, or a retry of one "
                     "delivered more than dedupe-days ago: refused",
                     n->cert.node_id, (unsigned long long)m->seq);
            send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_SEQUENCE_REUSED, m->message_id,
                       "this sender sequence was already used by another envelope (or this one "
                       "was delivered so long ago that the broker forgot its id)");
            goto done;
        }
        dup = 1; /* a retry of a stored envelope: acknowledge again */
    } else {
        rc = lia_bstore_append(b->store, m->message_id, n->cert.node_id, p->data, p->len, rcpt,
                               n_rcpt, &dup);
        if (rc == 0 && !dup)
            rc = lia_bstore_stream_set(b->store, stream, m->seq);
        if (rc != 0) {
            log_err("store: %s", lia_strerror(rc));
            *store_failed = 1;
            goto done;
        }
    }
    if (!dup)
        for (size_t i = 0; i < n_rcpt; i++) {
            struct node *r = find_node(b, rcpt[i]);
            if (r)
                r->has_more = 1;
        }
    acks[*n_acks].peer = *peer;
    memcpy(acks[*n_acks].message_id, m->message_id, LIA_MESSAGE_ID_BYTES);
    acks[*n_acks].sender_seq = m->seq;
    (*n_acks)++;
done:
    free(rcpt);
    lia_envelope_meta_free(&m);
}

/* Handles a Publish: its envelopes in order, inside the current store group. */
static void handle_publish(broker_t *b, struct node *n, const lia_peer *peer,
                           const Liaison__V1__Publish *p, struct pending_ack *acks, size_t *n_acks,
                           int *store_failed)
{
    if (!n->hello) {
        /* A new connection (or a restarted broker): what was in flight on the old one may be
         * lost, and storing a later envelope now would deliver a stream out of order. Store
         * nothing until the node's Hello, after which it resends its outbox in order. */
        if (!n->resync_asked)
            send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_OVERLOADED, NULL,
                       "publish before Hello on a new connection: not stored; resend in order "
                       "after a Hello");
        n->resync_asked = 1;
        return;
    }
    if (p->n_envelopes == 0 || p->n_envelopes > PUBLISH_BATCH_MAX) {
        log_warn("%s: Publish with %zu envelopes refused", n->cert.node_id, p->n_envelopes);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL,
                   "a Publish carries 1 to 64 envelopes");
        return;
    }
    for (size_t i = 0; i < p->n_envelopes && !*store_failed; i++)
        handle_envelope(b, n, peer, &p->envelopes[i], acks, n_acks, store_failed);
}

/* ---- membership ---- */

static const char *action_name(lia_membership_action a)
{
    switch (a) {
    case LIA_MEMBERSHIP_CREATE:
        return "create";
    case LIA_MEMBERSHIP_ADD:
        return "add";
    case LIA_MEMBERSHIP_REMOVE:
        return "remove";
    case LIA_MEMBERSHIP_TRANSFER:
        return "transfer";
    }
    return "?";
}

/*
 * Queues a stored change for the nodes in rcpt[0..n) (copied), to be pushed after the commit.
 * A failure here fails the group: the change would be stored but never announced.
 */
static int queue_push(broker_t *b, const uint8_t *change, size_t len, const char *const *rcpt,
                      size_t n)
{
    struct mpush *p;

    if (b->n_pushes == b->cap_pushes) {
        size_t cap = b->cap_pushes ? 2 * b->cap_pushes : 16;
        struct mpush *np = realloc(b->pushes, cap * sizeof *np);
        if (!np)
            return LIA_ERR_NOMEM;
        b->pushes = np;
        b->cap_pushes = cap;
    }
    p = &b->pushes[b->n_pushes];
    memset(p, 0, sizeof *p);
    if (!(p->change = malloc(len)) || !(p->rcpt = calloc(n ? n : 1, sizeof *p->rcpt))) {
        free(p->change);
        return LIA_ERR_NOMEM;
    }
    memcpy(p->change, change, len);
    p->len = len;
    b->n_pushes++;
    for (size_t i = 0; i < n; i++) {
        if (!(p->rcpt[i] = strdup(rcpt[i])))
            return LIA_ERR_NOMEM; /* freed with the push */
        p->n_rcpt++;
    }
    return 0;
}

/*
 * Handles a MembershipPublish inside the current store group: verifies the change against the
 * registry (this broker's certificates and revocation list), stores it, and queues it for every
 * node that is a member before or after it. The publisher's acknowledgement is that push (it
 * is always among them: only the owner signs, and the owner is a member before and after).
 * A change already applied is acknowledged again to its publisher alone.
 */
static void handle_membership(broker_t *b, struct node *n, const lia_peer *peer,
                              const Liaison__V1__MembershipPublish *mp, int *store_failed)
{
    uint8_t id[LIA_MEMBERSHIP_CHANGE_ID_BYTES];
    char key[LIA_MEMBERSHIP_KEY_MAX];
    lia_membership_applied info;
    const char *self[1] = {n->cert.node_id};
    const char **rcpt = NULL;
    size_t nm = 0, k = 0;
    const char *const *members;
    int rc;

    if (mp->change.len == 0 || mp->change.len > LIA_MEMBERSHIP_CHANGE_MAX) {
        log_warn("%s: membership change of %zu bytes refused", n->cert.node_id, mp->change.len);
        send_error(b, peer,
                   mp->change.len ? LIAISON__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE
                                  : LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED,
                   NULL, "a membership change is 1 to 65536 bytes");
        return;
    }
    lia_membership_change_id(mp->change.data, mp->change.len, id);
    rc = lia_membership_apply_ex(b->reg, mp->change.data, mp->change.len, now_ms(), &info);
    if (rc == LIA_ERR_REPLAY) {
        /* A retry (the acknowledgement was lost): acknowledge again. */
        if (queue_push(b, mp->change.data, mp->change.len, self, 1) != 0)
            *store_failed = 1;
        return;
    }
    if (rc != 0) {
        log_warn("audit: %s: membership change refused: %s", n->cert.node_id, lia_strerror(rc));
        send_error(b, peer,
                   rc == LIA_ERR_NOT_OWNER ? LIAISON__V1__ERROR_CODE__ERROR_CODE_NOT_OWNER
                                           : LIAISON__V1__ERROR_CODE__ERROR_CODE_MEMBERSHIP_REFUSED,
                   id, lia_strerror(rc));
        return;
    }
    /* Persist before anyone hears of it. */
    if ((rc = lia_membership_key(info.channel, info.serial, key)) != 0 ||
        (rc = lia_bstore_state_put(b->store, key, mp->change.data, mp->change.len)) != 0) {
        log_err("store: membership change of %s: %s", info.channel, lia_strerror(rc));
        *store_failed = 1;
        return;
    }
    members = lia_membership_members(b->reg, info.channel, &nm);
    if (!(rcpt = calloc(nm + 1, sizeof *rcpt))) {
        *store_failed = 1;
        return;
    }
    for (size_t i = 0; i < nm; i++)
        rcpt[k++] = members[i];
    if (info.action == LIA_MEMBERSHIP_REMOVE)
        rcpt[k++] = info.node; /* the removed member learns of its removal */
    if (queue_push(b, mp->change.data, mp->change.len, rcpt, k) != 0)
        *store_failed = 1;
    free(rcpt);
    if (info.action == LIA_MEMBERSHIP_ADD) {
        /* A new member may hold none (or an old part) of the chain: it gets whole chains, and
         * no delivery before them. */
        struct node *added = find_node(b, info.node);
        if (added)
            added->need_chains = 1;
    }
    log_notice("channel %s: change %llu (%s%s%s) from %s stored; %zu members", info.channel,
               (unsigned long long)info.serial, action_name(info.action), info.node[0] ? " " : "",
               info.node, n->cert.node_id, nm);
}

/* Accumulates changes into MembershipUpdate frames of at most LIA_MEMBERSHIP_UPDATE_MAX. */
struct update_buf {
    broker_t *b;
    struct node *n;
    ProtobufCBinaryData changes[1024];
    size_t count, bytes;
    int failed;
    uint64_t upto; /* last serial to send of the channel in progress */
};

static void update_flush(struct update_buf *u)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__MembershipUpdate m = LIAISON__V1__MEMBERSHIP_UPDATE__INIT;

    if (u->count == 0 || u->failed)
        return;
    m.n_changes = u->count;
    m.changes = u->changes;
    f.kind_case = LIAISON__V1__FRAME__KIND_MEMBERSHIP_UPDATE;
    f.membership_update = &m;
    if (send_frame(u->b, &u->n->peer, &f) != 0)
        u->failed = 1;
    u->count = 0;
    u->bytes = 0;
}

static void update_add(struct update_buf *u, const uint8_t *change, size_t len)
{
    if (u->count == sizeof u->changes / sizeof u->changes[0] ||
        (u->count && u->bytes + len + 8 > LIA_MEMBERSHIP_UPDATE_MAX))
        update_flush(u);
    u->changes[u->count++] = (ProtobufCBinaryData){len, (uint8_t *)change};
    u->bytes += len + 8;
}

static int chain_event(void *arg, const lia_membership_event *ev)
{
    struct update_buf *u = arg;
    if (ev->serial <= u->upto)
        update_add(u, ev->change, ev->change_len);
    return 0;
}

/* Finds the serial of the last change that removed the node (u->upto). */
static int last_removal(void *arg, const lia_membership_event *ev)
{
    struct update_buf *u = arg;
    if (ev->action == LIA_MEMBERSHIP_REMOVE && strcmp(ev->node, u->n->cert.node_id) == 0)
        u->upto = ev->serial;
    return 0;
}

/*
 * A member gets the whole chain; a former member the chain up to its last removal (it learns
 * that it was removed, not who joined afterwards).
 */
static int chain_of(void *arg, const char *channel)
{
    struct update_buf *u = arg;
    int rc;

    if (!lia_membership_was_member(u->b->reg, channel, u->n->cert.node_id))
        return 0;
    u->upto = UINT64_MAX;
    if (!lia_membership_is_member(u->b->reg, channel, u->n->cert.node_id)) {
        u->upto = 0;
        if ((rc = lia_membership_history(u->b->reg, channel, last_removal, u)) != 0)
            return rc;
    }
    return lia_membership_history(u->b->reg, channel, chain_event, u);
}

/*
 * Sends a node the whole chain of every channel it is or ever was a member of (after its
 * Hello or a new connection). On a full transport the node keeps need_chains and gets no
 * delivery until they went out.
 */
static void send_chains(broker_t *b, struct node *n)
{
    struct update_buf *u = calloc(1, sizeof *u);

    if (!u)
        return;
    u->b = b;
    u->n = n;
    if (lia_membership_channels(b->reg, chain_of, u) != 0)
        u->failed = 1;
    update_flush(u);
    if (!u->failed) {
        n->need_chains = 0;
        n->chains_turn = b->turn;
    }
    free(u);
}

/* After the commit: chains to the nodes that need them, then this turn's changes. */
static void push_membership(broker_t *b)
{
    for (size_t i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].connected && b->nodes[i].need_chains)
            send_chains(b, &b->nodes[i]);
    for (size_t i = 0; i < b->n_pushes; i++) {
        const struct mpush *p = &b->pushes[i];
        for (size_t j = 0; j < p->n_rcpt; j++) {
            struct node *n = find_node(b, p->rcpt[j]);
            struct update_buf u;
            if (!n || !n->connected || n->need_chains || n->chains_turn == b->turn)
                continue; /* a node not connected gets the chains when it connects */
            memset(&u, 0, sizeof u);
            u.b = b;
            u.n = n;
            u.upto = UINT64_MAX;
            update_add(&u, p->change, p->len);
            update_flush(&u);
            if (u.failed)
                n->need_chains = 1; /* whole chains again before any delivery */
        }
    }
    free_pushes(b);
}

/* Restores the registry from the store: every channel's chain, verified again. */
static void restore_report(void *arg, const char *channel, size_t n_changes, int rc)
{
    (void)arg;
    if (rc != 0)
        log_err("channel %s: stored membership (%zu changes) does not verify: %s; the channel "
                "is unavailable (fails closed)",
                channel, n_changes, lia_strerror(rc));
}

static int restore_membership(broker_t *b)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0;
    int rc;

    if ((rc = lia_bstore_state_list(b->store, LIA_MEMBERSHIP_KEY_PREFIX, &kv, &count)) != 0)
        return rc;
    rc = lia_membership_restore_kv(b->reg, kv, count, now_ms(), restore_report, b);
    lia_nstore_kv_free(kv, count);
    return rc;
}

static int count_channel(void *arg, const char *channel)
{
    (void)channel;
    (*(size_t *)arg)++;
    return 0;
}

/* The largest frame accepted: an envelope, or a membership change, with framing. */
static size_t frame_max(const broker_t *b)
{
    return (b->max_msg > LIA_MEMBERSHIP_CHANGE_MAX ? b->max_msg : LIA_MEMBERSHIP_CHANGE_MAX) +
           FRAME_SLACK;
}

/* Decodes and dispatches one frame inside the current store group. */
static void handle_frame(broker_t *b, const lia_peer *peer, const uint8_t *data, size_t len,
                         struct pending_ack *acks, size_t *n_acks, int *store_failed)
{
    Liaison__V1__Frame *f;
    struct node *n = find_node(b, peer->node_id);

    if (!n) { /* admitted by ZAP but unknown here: cannot happen unless reloaded meanwhile */
        log_warn("%s: frame from a node that is no longer enrolled", peer->node_id);
        return;
    }
    if (len > frame_max(b)) {
        log_warn("%s: frame of %zu bytes refused", n->cert.node_id, len);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, NULL, "frame too large");
        return;
    }
    f = liaison__v1__frame__unpack(NULL, len, data);
    if (!f || f->base.n_unknown_fields != 0) {
        log_warn("%s: malformed frame (%zu bytes) refused", n->cert.node_id, len);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL, "malformed frame");
        if (f)
            liaison__v1__frame__free_unpacked(f, NULL);
        return;
    }
    note_connection(b, n, peer);
    switch (f->kind_case) {
    case LIAISON__V1__FRAME__KIND_HELLO:
        if (f->hello->protocol_version != 1) {
            send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL,
                       "unsupported protocol version");
            break;
        }
        n->window = f->hello->window == 0 || f->hello->window > b->max_inflight
                        ? (uint32_t)b->max_inflight
                        : f->hello->window;
        if (f->hello->cursor > n->acked) {
            /* The node holds more than it acknowledged: its store is the authority. */
            uint64_t cur = 0, head = 0;
            if (lia_bstore_cursor(b->store, n->cert.node_id, &cur, &head) == 0 &&
                f->hello->cursor <= head &&
                lia_bstore_ack(b->store, n->cert.node_id, f->hello->cursor) == 0)
                n->acked = f->hello->cursor;
        }
        if (n->sent < n->acked)
            n->sent = n->acked;
        n->has_more = 1;
        n->hello = 1;
        n->resync_asked = 0;
        n->crl_sent = 0;    /* right after every Hello, before any delivery (pump) */
        n->need_chains = 1; /* the chains go before any delivery (push_membership) */
        break;
    case LIAISON__V1__FRAME__KIND_MEMBERSHIP_PUBLISH:
        handle_membership(b, n, peer, f->membership_publish, store_failed);
        break;
    case LIAISON__V1__FRAME__KIND_PUBLISH:
        handle_publish(b, n, peer, f->publish, acks, n_acks, store_failed);
        break;
    case LIAISON__V1__FRAME__KIND_DELIVER_ACK: {
        uint64_t seq = f->deliver_ack->delivery_seq, cur = 0, head = 0;
        if (seq <= n->acked)
            break;
        /* Sent on this connection, or on an earlier one (or before a broker restart) whose
         * acknowledgement was lost: anything up to the durable head may be acknowledged. */
        if (seq > n->sent &&
            (lia_bstore_cursor(b->store, n->cert.node_id, &cur, &head) != 0 || seq > head)) {
            log_warn("%s: acknowledges delivery %llu never sent", n->cert.node_id,
                     (unsigned long long)seq);
            break;
        }
        if (lia_bstore_ack(b->store, n->cert.node_id, seq) != 0) {
            *store_failed = 1;
            break;
        }
        n->acked = seq;
        if (n->sent < n->acked)
            n->sent = n->acked;
        break;
    }
    case LIAISON__V1__FRAME__KIND_HEARTBEAT: {
        Liaison__V1__Frame r = LIAISON__V1__FRAME__INIT;
        Liaison__V1__Heartbeat h = LIAISON__V1__HEARTBEAT__INIT;
        h.sent_at_ms = now_ms();
        r.kind_case = LIAISON__V1__FRAME__KIND_HEARTBEAT;
        r.heartbeat = &h;
        (void)send_frame(b, peer, &r);
        break;
    }
    default:
        log_warn("%s: unexpected frame type %d refused", n->cert.node_id, (int)f->kind_case);
        send_error(b, peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL,
                   "unexpected frame type");
        break;
    }
    liaison__v1__frame__free_unpacked(f, NULL);
}

/*
 * Sends the revocation list held to a connected node that has not had it on this connection
 * (since its last Hello). Returns 0 when the node has it (or there is none), an error when the
 * frame could not be queued (the node is slow or gone: tried again on the next turn).
 */
static int send_crl(broker_t *b, struct node *n)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__RevocationUpdate r = LIAISON__V1__REVOCATION_UPDATE__INIT;
    uint64_t serial = lia_trust_crl_serial(b->trust);
    int rc;

    if (!b->crl_buf || n->crl_sent == serial)
        return 0;
    r.crl = (ProtobufCBinaryData){b->crl_len, b->crl_buf};
    f.kind_case = LIAISON__V1__FRAME__KIND_REVOCATION;
    f.revocation = &r;
    if ((rc = send_frame(b, &n->peer, &f)) != 0)
        return rc;
    n->crl_sent = serial;
    log_info("%s: revocation list %llu sent", n->cert.node_id, (unsigned long long)serial);
    return 0;
}

/*
 * Sends stored deliveries to a connected node while its window allows; the revocation list
 * first, so that a node never opens a delivery with an older list than the broker's.
 */
static void pump(broker_t *b, struct node *n)
{
    lia_bstore_item items[FETCH_MAX];
    size_t got, want;

    if (n->connected && send_crl(b, n) != 0)
        return;
    /* Never a delivery before the node holds the chains it may depend on. */
    while (n->connected && !n->need_chains && n->has_more && n->sent - n->acked < n->window) {
        want = n->window - (n->sent - n->acked);
        if (want > FETCH_MAX)
            want = FETCH_MAX;
        if (lia_bstore_fetch(b->store, n->cert.node_id, n->sent, want, items, &got) != 0) {
            log_err("store: fetch for %s failed", n->cert.node_id);
            return;
        }
        if (got < want)
            n->has_more = 0;
        for (size_t i = 0; i < got;) {
            Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
            Liaison__V1__Deliver d = LIAISON__V1__DELIVER__INIT;
            ProtobufCBinaryData envs[DELIVER_BATCH_MAX];
            size_t k = 0, bytes = 0;
            /* Consecutive deliveries share a frame, up to a size that keeps frames small. */
            while (i + k < got && k < DELIVER_BATCH_MAX &&
                   (k == 0 || (bytes + items[i + k].len <= DELIVER_BATCH_BYTES &&
                               items[i + k].seq == items[i].seq + k))) {
                envs[k] = (ProtobufCBinaryData){items[i + k].len, items[i + k].data};
                bytes += items[i + k].len;
                k++;
            }
            d.delivery_seq = items[i].seq;
            d.n_envelopes = k;
            d.envelopes = envs;
            f.kind_case = LIAISON__V1__FRAME__KIND_DELIVER;
            f.deliver = &d;
            if (send_frame(b, &n->peer, &f) != 0) {
                /* Slow or gone: keep the rest on disk, retry on the next turn. */
                n->has_more = 1;
                lia_bstore_items_free(items, got);
                return;
            }
            n->sent = items[i + k - 1].seq;
            i += k;
        }
        lia_bstore_items_free(items, got);
        if (got == 0)
            break;
    }
}

/*
 * Reads the configuration file again for its `crl` directive, so that a revocation list
 * configured after the start takes effect on SIGHUP (the other directives need a restart).
 * *out is the new path (malloc'd) or NULL when the directive is absent.
 */
static int reread_crl_path(broker_t *b, char **out)
{
    lia_config_t *cfg = NULL;
    char err[1024] = "";
    const char *crl;
    int rc;

    *out = NULL;
    rc = lia_config_load(lia_config_path(b->cfg), directives,
                         sizeof directives / sizeof directives[0], &cfg, err, sizeof err);
    if (rc != 0) {
        log_err("reload: %s", err[0] ? err : lia_strerror(rc));
        return rc;
    }
    crl = lia_config_str(cfg, "crl", NULL);
    if (crl && !(*out = strdup(crl)))
        rc = LIA_ERR_NOMEM;
    lia_config_destroy(&cfg);
    return rc;
}

static void reload(broker_t *b)
{
    lia_trust_t *t = NULL;
    struct node *nodes = NULL;
    size_t n = 0;
    int cut = 0;
    char *crl = NULL;
    const char *old_crl = b->crl_path;
    uint8_t *crl_buf = NULL;
    size_t crl_len = 0;

    log_notice("reloading certificates and the revocation list");
    if (reread_crl_path(b, &crl) != 0) {
        log_err("reload failed; keeping the previous certificates");
        return;
    }
    if (!crl && old_crl)
        log_warn("reload: the crl directive was removed; keeping %s (restart to drop it)", old_crl);
    if (crl)
        b->crl_path = crl;
    if (load_certs(b, &t, &nodes, &n, &crl_buf, &crl_len) != 0) {
        log_err("reload failed; keeping the previous certificates");
        b->crl_path = old_crl;
        free(crl);
        return;
    }
    if (crl) {
        free(b->crl_reloaded);
        b->crl_reloaded = crl;
    }
    /* Carry connection state over; note nodes that are no longer admissible. */
    for (size_t i = 0; i < n; i++) {
        struct node *old = find_node(b, nodes[i].cert.node_id);
        const lia_cert_info *valid;
        if (old) {
            nodes[i].connected = old->connected;
            nodes[i].peer = old->peer;
            nodes[i].last_seen_ms = old->last_seen_ms;
            nodes[i].sent = old->sent;
            nodes[i].acked = old->acked;
            nodes[i].window = old->window;
            nodes[i].has_more = 1;
            nodes[i].hello = old->hello;
            nodes[i].resync_asked = old->resync_asked;
            nodes[i].need_chains = old->need_chains;
            nodes[i].chains_turn = old->chains_turn;
            nodes[i].crl_sent = old->crl_sent;
        }
        if (nodes[i].connected &&
            lia_trust_find(t, nodes[i].cert.node_id, nodes[i].cert.sign_key_id, now_ms() / 1000,
                           &valid) != 0) {
            log_notice("%s is no longer admissible: cutting its session", nodes[i].cert.node_id);
            cut = 1;
        }
    }
    for (size_t i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].connected && !find_node(b, b->nodes[i].cert.node_id))
            cut = 1;
    /* The registry keeps what it verified; later changes are checked with the new store. */
    lia_membership_set_trust(b->reg, t);
    lia_trust_destroy(&b->trust);
    free(b->nodes);
    b->trust = t;
    b->nodes = nodes;
    b->n_nodes = n;
    if (crl_buf) {
        /* Newer than the list held: pump sends it to every connected node. */
        free(b->crl_buf);
        b->crl_buf = crl_buf;
        b->crl_len = crl_len;
        log_notice("revocation list %llu loaded from %s: sending it to every connected node",
                   (unsigned long long)lia_trust_crl_serial(b->trust), b->crl_path);
    }
    if (cut) {
        /* Every session is re-established through ZAP, which now refuses the revoked keys. */
        for (size_t i = 0; i < b->n_nodes; i++)
            b->nodes[i].connected = 0;
        if (lia_server_rebind(b->srv) != 0)
            fatal(EX_SOFTWARE, "could not rebind %s after a revocation", b->listen);
    }
}

/*
 * Cuts every session if a connected node is no longer admissible now: a revocation whose time
 * was still ahead when the list was loaded, or a certificate that expired during the session.
 * Runs once a second; a reload checks at once. Every session is then re-established through
 * ZAP, which refuses the keys that are no longer valid.
 */
static void cut_inadmissible(broker_t *b)
{
    uint64_t now = now_ms();
    int cut = 0;

    if (now - b->admit_checked_ms < 1000 && now >= b->admit_checked_ms)
        return;
    b->admit_checked_ms = now;
    for (size_t i = 0; i < b->n_nodes; i++) {
        const lia_cert_info *valid;
        if (b->nodes[i].connected &&
            lia_trust_find(b->trust, b->nodes[i].cert.node_id, b->nodes[i].cert.sign_key_id,
                           now / 1000, &valid) != 0) {
            log_notice("%s is no longer admissible: cutting its session", b->nodes[i].cert.node_id);
            cut = 1;
        }
    }
    if (!cut)
        return;
    for (size_t i = 0; i < b->n_nodes; i++)
        b->nodes[i].connected = 0;
    if (lia_server_rebind(b->srv) != 0)
        fatal(EX_SOFTWARE, "could not rebind %s after a revocation", b->listen);
}

int broker_run(broker_t *b)
{
    lia_transport_opts o = {0};
    struct pending_ack *acks = NULL;
    struct sigaction sa;
    uint64_t last_tick = now_ms();
    int rc;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        fatal(EX_OSERR, "sigaction failed");
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        fatal(EX_OSERR, "sigaction failed");
    signal(SIGPIPE, SIG_IGN);

    if ((rc = lia_bstore_open(b->store_path, &b->store)) != 0) {
        log_err("%s: %s", b->store_path, lia_strerror(rc));
        return lia_err_exit(rc);
    }
    if ((rc = restore_membership(b)) != 0) {
        log_err("%s: cannot restore channel membership: %s", b->store_path, lia_strerror(rc));
        return lia_err_exit(rc);
    }
    o.max_msg = frame_max(b);
    o.sndhwm = o.rcvhwm = 2 * b->max_inflight + 1024;
    o.heartbeat_ivl_ms = (int)b->heartbeat_ms;
    o.heartbeat_timeout_ms = (int)b->heartbeat_timeout_ms;
    if ((rc = lia_server_new(b->id, b->listen, &o, admit, b, &b->srv)) != 0) {
        log_err("%s: cannot listen: %s", b->listen, lia_strerror(rc));
        return lia_err_exit(rc);
    }
    acks = calloc(ACKS_MAX, sizeof *acks);
    if (!acks)
        return EX_OSERR;
    {
        size_t nch = 0;
        if (lia_membership_channels(b->reg, count_channel, &nch) != 0)
            nch = 0;
        log_notice("listening on %s with %zu enrolled nodes and %zu channels",
                   lia_server_endpoint(b->srv), b->n_nodes, nch);
    }

    while (!stop_requested) {
        size_t n_frames = 0, n_acks = 0;
        int store_failed = 0, group = 0;

        b->turn++;
        if (reload_requested) {
            reload_requested = 0;
            reload(b);
        }
        cut_inadmissible(b);
        for (;;) {
            lia_peer peer;
            uint8_t *data = NULL;
            size_t len = 0;
            int timeout = n_frames == 0 ? (int)b->heartbeat_ms : 0;

            rc = lia_server_recv(b->srv, timeout, &peer, &data, &len);
            if (rc == LIA_ERR_LIMIT)
                break;
            if (rc != 0) {
                free(data);
                if (rc == LIA_ERR_PROTOCOL) /* multi-part: dropped and logged by the transport */
                    send_error(b, &peer, LIAISON__V1__ERROR_CODE__ERROR_CODE_MALFORMED, NULL,
                               "multi-part message (one frame per message)");
                if (stop_requested || reload_requested)
                    break;
                continue;
            }
            if (!group) {
                if (lia_bstore_begin(b->store) != 0)
                    fatal(EX_IOERR, "%s: cannot start a transaction", b->store_path);
                group = 1;
                if (forget_due(b, now_ms()) && forget_step(b, now_ms()) != 0)
                    store_failed = 1;
            }
            handle_frame(b, &peer, data, len, acks, &n_acks, &store_failed);
            free(data);
            if (store_failed || ++n_frames == BURST || stop_requested ||
                n_acks + PUBLISH_BATCH_MAX > ACKS_MAX)
                break;
        }
        if (!group && forget_due(b, now_ms())) { /* an idle turn: forgetting alone */
            if (lia_bstore_begin(b->store) != 0)
                fatal(EX_IOERR, "%s: cannot start a transaction", b->store_path);
            group = 1;
            if (forget_step(b, now_ms()) != 0)
                store_failed = 1;
        }
        if (group) {
            /* Persist before acknowledge: nothing is acknowledged unless this succeeds. */
            if (store_failed || lia_bstore_commit(b->store) != 0)
                fatal(EX_IOERR,
                      "%s: durable commit failed; stopping (nothing unsaved was "
                      "acknowledged)",
                      b->store_path);
            /* One PublishAck per run of acknowledgements to the same connection. */
            for (size_t i = 0; i < n_acks;) {
                Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
                Liaison__V1__PublishAck a = LIAISON__V1__PUBLISH_ACK__INIT;
                ProtobufCBinaryData ids[ACK_BATCH];
                size_t k = 0;
                while (i + k < n_acks && k < ACK_BATCH &&
                       acks[i + k].peer.routing_id_len == acks[i].peer.routing_id_len &&
                       memcmp(acks[i + k].peer.routing_id, acks[i].peer.routing_id,
                              acks[i].peer.routing_id_len) == 0) {
                    ids[k] = (ProtobufCBinaryData){LIA_MESSAGE_ID_BYTES, acks[i + k].message_id};
                    k++;
                }
                a.n_message_ids = k;
                a.message_ids = ids;
                f.kind_case = LIAISON__V1__FRAME__KIND_PUBLISH_ACK;
                f.publish_ack = &a;
                if (send_frame(b, &acks[i].peer, &f) != 0)
                    log_debug("%s: acknowledgement not sent (node will retry)",
                              acks[i].peer.node_id);
                i += k;
            }
        }
        /* Membership before deliveries: what was stored now, and chains for new sessions. */
        push_membership(b);
        for (size_t i = 0; i < b->n_nodes; i++)
            pump(b, &b->nodes[i]);
        if (now_ms() - last_tick >= b->heartbeat_ms) {
            uint64_t now = now_ms();
            last_tick = now;
            for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i].connected &&
                    now - b->nodes[i].last_seen_ms > b->heartbeat_timeout_ms) {
                    log_info("%s: no frame for %llu ms, considered disconnected",
                             b->nodes[i].cert.node_id,
                             (unsigned long long)(now - b->nodes[i].last_seen_ms));
                    b->nodes[i].connected = 0;
                }
        }
    }
    log_notice("stopping: everything received was committed");
    free(acks);
    lia_server_destroy(&b->srv);
    lia_bstore_close(&b->store);
    return EX_OK;
}
