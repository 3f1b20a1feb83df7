/*
 * The node daemon (see node.h). One loop (the store syncs on a thread of its own):
 *
 *   wait for the broker link and the control socket
 *   -> collect a burst: operators' send requests, broker acknowledgements and deliveries
 *   -> inside one store group: seal the sends as one batch (one signature) and put them in the
 *      outbox; remove acknowledged envelopes from the outbox; open each delivery and store it
 *      (or record why it was refused); persist stream state and keys
 *   -> commit, and start the WAL's fsync; the next burst is collected and applied meanwhile
 *   -> only once the fsync returned: tell the operators their messages are accepted, publish
 *      the envelopes, acknowledge the deliveries to the broker, show new messages to followers.
 *
 * Nothing the broker says is trusted: every delivery is verified against the authority's
 * certificates and this node's own view of channel membership before it is stored.
 *
 * Channel membership is this node's own registry of owner-signed changes (lib/membership.c):
 * every change the broker relays is verified here and stored before anything that depends on
 * it is acknowledged; a change that adds or removes a member starts a new key epoch for this
 * node's sending stream on that channel, so the next key goes only to the members of then.
 * As a channel's owner, this node signs changes for the operator and publishes them; the
 * operator's request is answered once the broker stored the change and this node applied it.
 */
#define _POSIX_C_SOURCE 200809L
#include "node.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cert.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "envelope.h"
#include "error.h"
#include "hub.h"
#include "file.h"
#include "keyfiles.h"
#include "log.h"
#include "map.h"
#include "membership.h"
#include "officers.h"
#include "payload.h"
#include "store.h"
#include "transport.h"
#include "trust.h"
#include "vault.h"

#include "liaison/v1/control.pb-c.h"
#include "liaison/v1/transport.pb-c.h"

#define BURST               1024
#define TURNS               4 /* groups in the commit pipeline (struct pipeline) */
#define MAX_CONNS           64
#define MAX_ALLOWED         32
#define FRAME_SLACK         1024
#define FOLLOW_BATCH        256
#define FLUSH_EVERY         64 /* deliveries between two flushes to the clients (flush_clients) */
#define PUBLISH_BATCH_MAX   64 /* envelopes per Publish frame (transport.proto) */
#define PUBLISH_BATCH_BYTES (256u << 10)
#define DELIVER_BATCH_MAX   64
#define ACKED_MAX           (BURST * 4)
#define FOLLOW_QUEUED_MAX   (1u << 20)  /* bytes queued to a follower before feeding pauses */
#define RECENT_MAX          4096        /* latest messages kept for followers (node.recent) */
#define RECENT_BYTES        (4u << 20)  /* ...and their payload bytes at most */
#define CRL_CHUNK           (60u << 10) /* revocation list bytes per store state value */
#define MC_MAX              4096        /* membership changes taken from the broker in one turn */
#define MPUB_MAX            16          /* membership changes awaiting the broker at once */
#define MPUB_TIMEOUT_MS     20000       /* ...before the operator is told it was not confirmed */

static const lia_config_directive directives[] = {
    {"identity", 1, 1, 0, 1, "this node's secret key file (node.key)"},
    {"authority", 1, 1, 0, 1, "the network authority's public file (authority.pub)"},
    {"certs", 1, 1, 0, 1, "directory of the network's certificates (*.cert)"},
    {"crl", 1, 1, 0, 0, "the authority's revocation list"},
    {"broker", 1, 1, 0, 1, "the broker's endpoint, e.g. tcp://broker.example:7450"},
    {"broker-cert", 1, 1, 0, 1, "the broker's certificate (its transport key)"},
    {"store", 1, 1, 0, 1, "path of this node's durable store (SQLite)"},
    {"control", 1, 1, 0, 1, "path of the local control socket"},
    {"control-allow-uid", 1, -1, 1, 0, "uids allowed on the control socket (besides our own)"},
    {"officer", 2, 2, 1, 0, "officer id and the local account (user name or uid) mapped to it"},
    {"assign", 2, -1, 1, 0,
     "officer id and the channels it works on (@direct: direct messages; *: all)"},
    {"max-message-bytes", 1, 1, 0, 0, "largest envelope (default 16M)"},
    {"window", 1, 1, 0, 0, "deliveries in flight from the broker (default 1024)"},
    {"heartbeat-ms", 1, 1, 0, 0, "heartbeat interval (default 1000)"},
    {"heartbeat-timeout-ms", 1, 1, 0, 0, "broker considered gone after (default 5000)"},
    {"resend-ms", 1, 1, 0, 0, "resend unacknowledged envelopes after (default 3000)"},
    {"key-epoch-period-s", 1, 1, 0, 0,
     "start a new key epoch for a destination after this many seconds (default 604800)"},
    {"log-level", 1, 1, 0, 0, "err, warning, notice, info or debug (default info)"},
    {"memory-reserve", 1, 1, 0, 0,
     "heap touched at start, so that the first traffic does not wait on page faults (default "
     "48M; 0: none)"},
    {"hub", 1, 1, 0, 0,
     "yes or no: index every message received, for search and export (default: yes if this "
     "node's certificate has the role hub)"},
};

/* Sending state for one destination: stored under "tx:" + hex(digest). */
struct tx_stream {
    uint8_t digest[LIA_DEST_DIGEST_BYTES];
    uint64_t epoch;
    uint64_t next_seq;
    int granted;         /* the current epoch's key was handed over in an envelope */
    uint64_t started_ms; /* when this epoch's key was made (for key-epoch-period) */
    lia_symkey_t *key;
};

struct conn;

struct follower {
    lia_ctl_conn_t *conn;
    const struct conn *owner; /* whose officer decides what is shown */
    char channel[LIA_CHANNEL_MAX + 1];
    uint64_t after;
};

/* A hub export in progress on one connection: fed like a follower, as the client reads. */
struct hub_export {
    int active;
    lia_nstore_hub_query q;
    uint64_t after; /* last delivery sequence sent */
    uint64_t count; /* messages sent so far */
};

struct conn {
    lia_ctl_conn_t *c;
    uint64_t gen;        /* tells a later connection in the same slot from this one */
    char account[80];    /* the peer's local account, looked up once at accept */
    const char *officer; /* officer id mapped from the peer's uid (in n->officers), or NULL */
    int admin;           /* the peer is the node administrator (the daemon's uid, or root) */
    int following;
    struct follower f;
    struct hub_export x;
};

/* A membership change this node signed and published, awaiting the broker's echo. */
struct mpub {
    struct conn *from;
    uint64_t gen;
    uint8_t *change;
    size_t len;
    uint8_t id[LIA_MEMBERSHIP_CHANGE_ID_BYTES];
    char channel[LIA_CHANNEL_MAX + 1];
    uint64_t deadline_ms;
    lia_membership_action action;
    char node[LIA_NODE_ID_MAX + 1];
    uint64_t serial; /* the serial it takes */
    int done;        /* applied in the open group: answer after the commit */
};

/* A membership change received from the broker, applied inside the next group. */
struct mc_in {
    uint8_t *data;
    size_t len;
};

/* An operator's send, waiting for the group commit. */
struct pending_send {
    struct conn *from;
    uint8_t *payload;
    size_t payload_len;
    char channel[LIA_CHANNEL_MAX + 1];
    char **rcpt;
    size_t n_rcpt;
    uint64_t expires_at_ms;
    lia_buf env;
    uint8_t message_id[LIA_MESSAGE_ID_BYTES];
    uint64_t outbox_id;
    uint64_t from_gen; /* from->gen when asked: the slot may serve another client by the reply */
    int err;
};

/*
 * A committed group whose effects wait for its fsync (lia_nstore_sync_start): the operators'
 * replies, the envelopes to publish, the DeliverAck and what the followers are shown. The loop
 * keeps a ring of TURNS (struct pipeline): groups go on being read, applied and committed while
 * the sync of earlier ones runs.
 */
struct turn {
    struct pending_send *sends; /* BURST */
    size_t n_sends;
    size_t n_acked;        /* acknowledgements from the broker taken in the group */
    int had_dels;          /* deliveries arrived (acknowledged even if all were resends) */
    int need_resync;       /* the broker did not store something: resend, in order */
    uint64_t cursor;       /* inbox cursor after the group */
    uint64_t outbox_first; /* the first outbox id the group wrote; 0 if none */
};

/*
 * The committed groups not yet durable, oldest first, in a ring of TURNS: the first n_sync are
 * covered by the running fdatasync (it started after they were committed), the n_wait after
 * them were committed while it ran and wait for the next one. One more turn is the group being
 * read. A node whose sync takes longer than reading and applying a group so goes on working:
 * with two turns it slept in the sync's wait whenever its inputs outran the disk, and the
 * processes downstream of it with it.
 */
struct pipeline {
    struct turn turns[TURNS];
    size_t head, n_sync, n_wait;
};

struct node {
    lia_config_t *cfg;
    const char *identity_path, *authority_path, *certs_dir, *crl_path, *broker_ep,
        *broker_cert_path, *store_path, *control_path;
    uint64_t max_msg, window, heartbeat_ms, heartbeat_timeout_ms, resend_ms, epoch_period_ms;
    uint64_t memory_reserve;
    uid_t allowed[MAX_ALLOWED];
    size_t n_allowed;
    lia_identity_t *id;
    const char *me; /* node id = identity name */
    lia_trust_t *trust;
    uint8_t *crl_buf; /* the revocation list installed in trust, as the authority signed it */
    size_t crl_len;
    uint64_t frame_max; /* largest frame from the broker: an envelope or a revocation list */
    lia_cert_info broker_cert;
    lia_membership_t *reg; /* channels: owner-signed chains, verified here */
    lia_officers_t *officers;
    lia_symkey_t *storage_key;
    lia_nstore_t *store;
    int hub; /* hub role: every stored message is indexed (lib/hub.c) */
    lia_opener_t *opener;
    lia_client_t *client;
    lia_ctl_server_t *ctl;
    struct conn conns[MAX_CONNS];
    uint64_t conn_gen;
    struct mpub mpub[MPUB_MAX];
    struct mc_in mc[MC_MAX];
    size_t n_mc;
    lia_map_t *tx;   /* digest -> struct tx_stream* */
    uint64_t cursor; /* inbox cursor, including groups committed but not yet durable */
    uint64_t shown;  /* durable inbox cursor: all that followers, lists and the broker are told */
    uint64_t unsynced_from; /* first outbox id not yet durable (never published); 0: none */
    uint64_t pub_after;     /* outbox id up to which envelopes were published, in order, since the
                               last Hello (0: start again from the oldest unacknowledged) */
    int pub_more;           /* the outbox may hold envelopes after pub_after */
    uint64_t last_broker_ms, last_progress_ms, last_heartbeat_ms;
    int outbox_idle; /* the last heartbeat found nothing awaiting an acknowledgement */
    uint64_t refused;
    /* Stream positions advanced in the open group: written once per stream at commit. */
    struct {
        uint8_t stream[LIA_STREAM_ID_BYTES];
        uint64_t seq;
    } rs[BURST];
    size_t n_rs;
    /* The latest messages stored, in delivery order, for the followers: every message stored
     * after delivery recent_from (refusals aside) is here, those of the open group and of the
     * group syncing included. A ring of at most RECENT_MAX messages and RECENT_BYTES of
     * payload, trimmed after each group to what some follower has still to be shown. */
    lia_nstore_msg recent[RECENT_MAX];
    size_t recent_head, n_recent, recent_bytes;
    uint64_t recent_from;
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

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---------------- configuration ---------------- */

/*
 * The hub role: `hub yes|no` in the configuration decides; without it, a node whose own
 * certificate has the role hub is a hub. (The certificate's role is what the network
 * authority vouched for; the directive lets an operator run a hub index on another node, or
 * keep a hub without one.)
 */
static int hub_config(node_t *n, const lia_cert_info *self, char *err, size_t err_len)
{
    const char *v = lia_config_str(n->cfg, "hub", NULL);

    if (!v) {
        n->hub = self->role == LIA_ROLE_HUB;
        return 0;
    }
    if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
        n->hub = strcmp(v, "yes") == 0;
        return 0;
    }
    lia_config_error(n->cfg, lia_config_get(n->cfg, "hub"), "expected yes or no", v, err, err_len);
    return LIA_ERR_CONFIG;
}

int node_load(const char *path, node_t **out)
{
    node_t *n = calloc(1, sizeof *n);
    char err[1024] = "";
    const char *failed = NULL;
    size_t ne;
    const lia_config_entry *e;
    int rc;

    *out = NULL;
    if (!n)
        return EX_OSERR;
    if ((rc = lia_config_load(path, directives, sizeof directives / sizeof directives[0], &n->cfg,
                              err, sizeof err)) != 0)
        goto fail;
    n->identity_path = lia_config_str(n->cfg, "identity", NULL);
    n->authority_path = lia_config_str(n->cfg, "authority", NULL);
    n->certs_dir = lia_config_str(n->cfg, "certs", NULL);
    n->crl_path = lia_config_str(n->cfg, "crl", NULL);
    n->broker_ep = lia_config_str(n->cfg, "broker", NULL);
    n->broker_cert_path = lia_config_str(n->cfg, "broker-cert", NULL);
    n->store_path = lia_config_str(n->cfg, "store", NULL);
    n->control_path = lia_config_str(n->cfg, "control", NULL);
    if ((rc = lia_config_uint(n->cfg, "max-message-bytes", 1024, LIA_ENVELOPE_MAX, 16u << 20,
                              &n->max_msg, err, sizeof err)) != 0 ||
        (rc = lia_config_uint(n->cfg, "window", 1, 1u << 20, 1024, &n->window, err, sizeof err)) !=
            0 ||
        (rc = lia_config_uint(n->cfg, "heartbeat-ms", 100, 60000, 1000, &n->heartbeat_ms, err,
                              sizeof err)) != 0 ||
        (rc = lia_config_uint(n->cfg, "heartbeat-timeout-ms", 300, 600000, 5000,
                              &n->heartbeat_timeout_ms, err, sizeof err)) != 0 ||
        (rc = lia_config_uint(n->cfg, "resend-ms", 100, 600000, 3000, &n->resend_ms, err,
                              sizeof err)) != 0 ||
        (rc = lia_config_uint(n->cfg, "key-epoch-period-s", 1, 366u * 86400u, 7u * 86400u,
                              &n->epoch_period_ms, err, sizeof err)) != 0 ||
        (rc = lia_config_uint(n->cfg, "memory-reserve", 0, 1u << 29, LIA_MEMORY_RESERVE_DEFAULT,
                              &n->memory_reserve, err, sizeof err)) != 0)
        goto fail;
    n->epoch_period_ms *= 1000u;
    if (lia_log_set_level_name(lia_config_str(n->cfg, "log-level", "info")) != 0) {
        lia_config_error(n->cfg, lia_config_get(n->cfg, "log-level"), "unknown log level",
                         lia_config_str(n->cfg, "log-level", ""), err, sizeof err);
        rc = LIA_ERR_CONFIG;
        goto fail;
    }
    e = lia_config_entries(n->cfg, &ne);
    for (size_t i = 0; i < ne; i++) {
        if (strcmp(e[i].name, "control-allow-uid") != 0)
            continue;
        for (size_t j = 0; j < e[i].n_args; j++) {
            char *end;
            unsigned long v = strtoul(e[i].args[j], &end, 10);
            if (*end || e[i].args[j][0] == '\0' || v > 0x7fffffff || n->n_allowed == MAX_ALLOWED) {
                lia_config_error(n->cfg, &e[i], "not a uid (or too many)", e[i].args[j], err,
                                 sizeof err);
                rc = LIA_ERR_CONFIG;
                goto fail;
            }
            n->allowed[n->n_allowed++] = (uid_t)v;
        }
    }
    if ((rc = lia_officers_from_config(n->cfg, &n->officers, err, sizeof err)) != 0)
        goto fail;
    if ((rc = lia_identity_load(n->identity_path, LIA_SECRET_NODE, NULL, 0, &n->id)) != 0) {
        snprintf(err, sizeof err, "%s: %s", n->identity_path, lia_strerror(rc));
        goto fail;
    }
    n->me = lia_identity_name(n->id);
    if ((rc = lia_keyfiles_load_trust_dir(n->authority_path, n->certs_dir, NULL, &n->trust,
                                          &failed)) != 0) {
        snprintf(err, sizeof err, "%s: %s", failed ? failed : n->certs_dir, lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_membership_new(n->trust, &n->reg)) != 0)
        goto fail;
    if (n->crl_path) {
        /* A missing file is allowed: it is where the list the broker sends will be kept. */
        rc = lia_file_read(n->crl_path, LIA_CRL_MAX_BYTES, 0, &n->crl_buf, &n->crl_len);
        if (rc == 0)
            rc = lia_trust_set_crl(n->trust, n->crl_buf, n->crl_len);
        if (rc == LIA_ERR_NOT_FOUND) {
            free(n->crl_buf);
            n->crl_buf = NULL;
            n->crl_len = 0;
        } else if (rc != 0) {
            snprintf(err, sizeof err, "%s: %s", n->crl_path, lia_strerror(rc));
            goto fail;
        }
    }
    /* A revocation list (or a membership update) may be larger than max-message-bytes. */
    n->frame_max = (n->max_msg > LIA_CRL_MAX_BYTES ? n->max_msg : LIA_CRL_MAX_BYTES) + FRAME_SLACK;
    if (n->frame_max < LIA_MEMBERSHIP_UPDATE_MAX + FRAME_SLACK)
        n->frame_max = LIA_MEMBERSHIP_UPDATE_MAX + FRAME_SLACK;
    if ((rc = lia_keyfiles_load_cert(n->broker_cert_path, lia_trust_authority(n->trust),
                                     &n->broker_cert)) != 0) {
        snprintf(err, sizeof err, "%s: %s", n->broker_cert_path, lia_strerror(rc));
        goto fail;
    }
    if (n->broker_cert.role != LIA_ROLE_BROKER) {
        snprintf(err, sizeof err, "%s: not a broker certificate (role %s)", n->broker_cert_path,
                 lia_role_name(n->broker_cert.role));
        rc = LIA_ERR_CONFIG;
        goto fail;
    }
    {
        const lia_cert_info *self;
        uint8_t kid[LIA_KEY_ID_BYTES];
        lia_key_id(lia_identity_sign_pk(n->id), kid);
        if ((rc = lia_trust_find(n->trust, n->me, kid, now_ms() / 1000, &self)) != 0) {
            snprintf(err, sizeof err,
                     "%s: no valid certificate for this node (%s) in %s: %s; issue one with "
                     "liaison-keys issue",
                     n->identity_path, n->me, n->certs_dir, lia_strerror(rc));
            goto fail;
        }
        if ((rc = hub_config(n, self, err, sizeof err)) != 0)
            goto fail;
    }
    *out = n;
    return EX_OK;
fail:
    fprintf(stderr, "liaison-node: %s\n", err[0] ? err : lia_strerror(rc));
    node_destroy(&n);
    return lia_err_exit(rc);
}

uint64_t node_memory_reserve(const node_t *n)
{
    return n->memory_reserve;
}

void node_print(const node_t *n, FILE *f)
{
    fprintf(f, "configuration %s is valid\n", lia_config_path(n->cfg));
    fprintf(f, "node                 %s\n", n->me);
    fprintf(f, "identity             %s\n", n->identity_path);
    fprintf(f, "authority            %s (%s)\n", n->authority_path,
            lia_trust_authority(n->trust)->name);
    fprintf(f, "certs                %s\n", n->certs_dir);
    if (n->crl_path && n->crl_buf)
        fprintf(f, "crl                  %s (serial %llu)\n", n->crl_path,
                (unsigned long long)lia_trust_crl_serial(n->trust));
    else if (n->crl_path)
        fprintf(f, "crl                  %s (no list yet: the broker's will be kept there)\n",
                n->crl_path);
    else
        fprintf(f, "crl                  (none: the broker's list is kept in the store)\n");
    fprintf(f, "broker               %s (certificate %s, node %s)\n", n->broker_ep,
            n->broker_cert_path, n->broker_cert.node_id);
    fprintf(f, "store                %s\n", n->store_path);
    fprintf(f, "control              %s (uids:", n->control_path);
    fprintf(f, " %u", (unsigned)getuid());
    for (size_t i = 0; i < n->n_allowed; i++)
        fprintf(f, " %u", (unsigned)n->allowed[i]);
    for (size_t i = 0; i < lia_officers_count(n->officers); i++)
        fprintf(f, " %u", (unsigned)lia_officers_uid(n->officers, i));
    fprintf(f, " 0)\n"); /* the officers' and root's are admitted too (open_all) */
    fprintf(f, "max-message-bytes    %llu\n", (unsigned long long)n->max_msg);
    fprintf(f, "window               %llu\n", (unsigned long long)n->window);
    fprintf(f, "heartbeat-ms         %llu\n", (unsigned long long)n->heartbeat_ms);
    fprintf(f, "heartbeat-timeout-ms %llu\n", (unsigned long long)n->heartbeat_timeout_ms);
    fprintf(f, "resend-ms            %llu\n", (unsigned long long)n->resend_ms);
    fprintf(f, "key-epoch-period-s   %llu\n", (unsigned long long)(n->epoch_period_ms / 1000u));
    fprintf(f, "memory-reserve       %llu\n", (unsigned long long)n->memory_reserve);
    fprintf(f, "channels             owner-signed (liaison channel), restored from the store\n");
    fprintf(f, "hub                  %s\n",
            n->hub ? "yes (every received message is indexed for search and export)" : "no");
    for (size_t i = 0; i < lia_officers_count(n->officers); i++) {
        const char *id = lia_officers_id(n->officers, i);
        fprintf(f, "officer              %s %s (uid %u), assigned:", id,
                lia_officers_account(n->officers, i), (unsigned)lia_officers_uid(n->officers, i));
        for (size_t j = 0; j < lia_officers_n_assigned(n->officers, id); j++)
            fprintf(f, " %s", lia_officers_assigned(n->officers, id, j, NULL));
        fprintf(f, "%s\n", lia_officers_n_assigned(n->officers, id) ? "" : " (none)");
    }
    if (lia_officers_count(n->officers) == 0)
        fprintf(f, "officer              (none: nobody can read or send through the control "
                   "socket; add 'officer ID ACCOUNT' and 'assign ID CHANNEL...')\n");
}

static void free_tx(void *p)
{
    struct tx_stream *t = p;
    lia_symkey_destroy(&t->key);
    free(t);
}

static void recent_clear(node_t *n);

void node_destroy(node_t **p)
{
    node_t *n;
    if (!p || !*p)
        return;
    n = *p;
    for (size_t i = 0; i < MAX_CONNS; i++)
        lia_ctl_conn_destroy(&n->conns[i].c);
    lia_ctl_server_destroy(&n->ctl);
    lia_client_destroy(&n->client);
    lia_opener_destroy(&n->opener);
    recent_clear(n);
    lia_nstore_close(&n->store);
    lia_symkey_destroy(&n->storage_key);
    lia_map_destroy(&n->tx);
    for (size_t i = 0; i < MPUB_MAX; i++)
        free(n->mpub[i].change);
    for (size_t i = 0; i < n->n_mc; i++)
        free(n->mc[i].data);
    lia_membership_destroy(&n->reg);
    lia_officers_destroy(&n->officers);
    lia_trust_destroy(&n->trust);
    free(n->crl_buf);
    lia_identity_destroy(&n->id);
    lia_config_destroy(&n->cfg);
    free(n);
    *p = NULL;
}

/* ---------------- persistent state ---------------- */

static const char txkey_label[] = "liaison.v1.txkey";
static const char rxkey_label[] = "liaison.v1.rxkey";

/* tx state value: u64 epoch | u64 next_seq | u8 granted | u64 started_ms | sealed key */
#define TX_STATE_BYTES (8 + 8 + 1 + 8 + LIA_SEALED_KEY_BYTES)

static void key_ad(const char *label, size_t label_len, const char *sender,
                   const uint8_t digest[LIA_DEST_DIGEST_BYTES], uint64_t epoch, uint8_t *ad,
                   size_t *ad_len)
{
    size_t sl = strlen(sender);
    memcpy(ad, label, label_len);
    memcpy(ad + label_len, sender, sl + 1);
    memcpy(ad + label_len + sl + 1, digest, LIA_DEST_DIGEST_BYTES);
    put_u64(ad + label_len + sl + 1 + LIA_DEST_DIGEST_BYTES, epoch);
    *ad_len = label_len + sl + 1 + LIA_DEST_DIGEST_BYTES + 8;
}

static int save_tx(node_t *n, const struct tx_stream *t)
{
    uint8_t v[TX_STATE_BYTES], ad[128];
    size_t ad_len;
    char key[3 + 2 * LIA_DEST_DIGEST_BYTES + 1];
    int rc;

    put_u64(v, t->epoch);
    put_u64(v + 8, t->next_seq);
    v[16] = (uint8_t)t->granted;
    put_u64(v + 17, t->started_ms);
    key_ad(txkey_label, sizeof txkey_label, n->me, t->digest, t->epoch, ad, &ad_len);
    if ((rc = lia_symkey_seal(n->storage_key, t->key, ad, ad_len, v + 25)) != 0)
        return rc;
    memcpy(key, "tx:", 3);
    hex(t->digest, LIA_DEST_DIGEST_BYTES, key + 3);
    return lia_nstore_state_put(n->store, key, v, sizeof v);
}

/*
 * The sending state for a destination digest, loaded from the store or started at epoch 1;
 * owned by n->tx.
 */
static int get_tx_digest(node_t *n, const uint8_t digest[LIA_DEST_DIGEST_BYTES],
                         struct tx_stream **out)
{
    uint8_t *v = NULL, ad[128];
    size_t vlen = 0, ad_len;
    char key[3 + 2 * LIA_DEST_DIGEST_BYTES + 1];
    struct tx_stream *t;
    int rc;

    if ((t = lia_map_get(n->tx, digest)) != NULL) {
        *out = t;
        return 0;
    }
    if (!(t = calloc(1, sizeof *t)))
        return LIA_ERR_NOMEM;
    memcpy(t->digest, digest, LIA_DEST_DIGEST_BYTES);
    memcpy(key, "tx:", 3);
    hex(digest, LIA_DEST_DIGEST_BYTES, key + 3);
    rc = lia_nstore_state_get(n->store, key, &v, &vlen);
    if (rc == 0) {
        if (vlen != TX_STATE_BYTES) {
            rc = LIA_ERR_DECODE;
            goto fail;
        }
        t->epoch = get_u64(v);
        t->next_seq = get_u64(v + 8);
        t->granted = v[16];
        t->started_ms = get_u64(v + 17);
        key_ad(txkey_label, sizeof txkey_label, n->me, digest, t->epoch, ad, &ad_len);
        if ((rc = lia_symkey_unseal(n->storage_key, v + 25, ad, ad_len, &t->key)) != 0)
            goto fail;
    } else if (rc == LIA_ERR_NOT_FOUND) {
        t->epoch = 1;
        t->next_seq = 1;
        t->started_ms = now_ms();
        if ((rc = lia_symkey_generate(&t->key)) != 0)
            goto fail;
    } else {
        goto fail;
    }
    if ((rc = lia_map_put(n->tx, digest, t)) != 0)
        goto fail;
    free(v);
    *out = t;
    return 0;
fail:
    free(v);
    free_tx(t);
    return rc;
}

static int get_tx(node_t *n, const lia_dest *d, struct tx_stream **out)
{
    uint8_t digest[LIA_DEST_DIGEST_BYTES];
    int rc;

    if ((rc = lia_dest_digest(d, digest)) != 0)
        return rc;
    return get_tx_digest(n, digest, out);
}

/*
 * Starts a new key epoch for a destination: a fresh key that the next envelope hands to the
 * destination's entitled nodes as they are then, so a node removed or revoked before it gets
 * nothing sent from now on. The old key is wiped. Persisted at once, inside the caller's
 * open store group (lia_nstore_state_put needs one); on error the stream keeps its old epoch.
 */
static int tx_roll(node_t *n, struct tx_stream *t, const char *why)
{
    lia_symkey_t *fresh = NULL, *old;
    int rc;

    if ((rc = lia_symkey_generate(&fresh)) != 0)
        return rc;
    old = t->key;
    t->key = fresh;
    t->epoch++;
    t->granted = 0;
    t->started_ms = now_ms();
    if ((rc = save_tx(n, t)) != 0) {
        t->key = old;
        t->epoch--;
        lia_symkey_destroy(&fresh);
        return rc;
    }
    lia_symkey_destroy(&old);
    log_info("key epoch %llu started for a destination (%s)", (unsigned long long)t->epoch, why);
    return 0;
}

/*
 * Starts a new key epoch for every destination this node has ever sent to (revocation of a
 * certificate: the destinations it belonged to are a subset, and a new epoch costs one key
 * grant per destination). Each stream is persisted as it rolls.
 */
static int tx_roll_all(node_t *n, const char *why)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0;
    int rc;

    if ((rc = lia_nstore_state_list(n->store, "tx:", &kv, &count)) != 0)
        return rc;
    for (size_t i = 0; i < count && rc == 0; i++) {
        uint8_t digest[LIA_DEST_DIGEST_BYTES];
        struct tx_stream *t;
        if (strlen(kv[i].key) != 3 + 2 * LIA_DEST_DIGEST_BYTES ||
            sodium_hex2bin(digest, sizeof digest, kv[i].key + 3, 2 * LIA_DEST_DIGEST_BYTES, NULL,
                           NULL, NULL) != 0) {
            rc = LIA_ERR_DECODE;
            break;
        }
        if ((rc = get_tx_digest(n, digest, &t)) == 0)
            rc = tx_roll(n, t, why);
    }
    lia_nstore_kv_free(kv, count);
    return rc;
}

/* Restores received keys ("rk:") and stream positions ("rs:") into the opener. */
static int restore_rx(node_t *n)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0;
    int rc;

    if ((rc = lia_nstore_state_list(n->store, "rs:", &kv, &count)) != 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        uint8_t stream[LIA_STREAM_ID_BYTES];
        if (kv[i].len != 8 || strlen(kv[i].key) != 3 + 2 * LIA_STREAM_ID_BYTES ||
            sodium_hex2bin(stream, sizeof stream, kv[i].key + 3, 2 * LIA_STREAM_ID_BYTES, NULL,
                           NULL, NULL) != 0 ||
            (rc = lia_replay_set_last(lia_opener_replay(n->opener), stream, get_u64(kv[i].val))) !=
                0) {
            rc = rc ? rc : LIA_ERR_DECODE;
            goto done;
        }
    }
    lia_nstore_kv_free(kv, count);
    kv = NULL;
    if ((rc = lia_nstore_state_list(n->store, "rk:", &kv, &count)) != 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        /* value: u8 len | sender | digest | u64 epoch | sealed key (see save_rx) */
        char sender[LIA_NODE_ID_MAX + 1];
        const uint8_t *v = kv[i].val;
        size_t sl = kv[i].len ? v[0] : 0;
        uint8_t ad[128];
        size_t ad_len;
        uint64_t epoch;
        lia_symkey_t *k;
        if (kv[i].len != 1 + sl + LIA_DEST_DIGEST_BYTES + 8 + LIA_SEALED_KEY_BYTES || sl == 0 ||
            sl > LIA_NODE_ID_MAX) {
            rc = LIA_ERR_DECODE;
            goto done;
        }
        memcpy(sender, v + 1, sl);
        sender[sl] = '\0';
        epoch = get_u64(v + 1 + sl + LIA_DEST_DIGEST_BYTES);
        key_ad(rxkey_label, sizeof rxkey_label, sender, v + 1 + sl, epoch, ad, &ad_len);
        if ((rc = lia_symkey_unseal(n->storage_key, v + 1 + sl + LIA_DEST_DIGEST_BYTES + 8, ad,
                                    ad_len, &k)) != 0 ||
            (rc = lia_opener_add_key(n->opener, sender, v + 1 + sl, epoch, k)) != 0)
            goto done;
    }
    rc = 0;
done:
    lia_nstore_kv_free(kv, count);
    return rc;
}

/* Writes the stream positions advanced in this group (one state row per stream). */
static int flush_rx(node_t *n)
{
    char key[3 + 2 * LIA_STREAM_ID_BYTES + 1];
    uint8_t last[8];
    int rc;

    for (size_t i = 0; i < n->n_rs; i++) {
        memcpy(key, "rs:", 3);
        hex(n->rs[i].stream, LIA_STREAM_ID_BYTES, key + 3);
        put_u64(last, n->rs[i].seq);
        if ((rc = lia_nstore_state_put(n->store, key, last, sizeof last)) != 0)
            return rc;
    }
    n->n_rs = 0;
    return 0;
}

static int save_rx(node_t *n, const lia_opened *m)
{
    char key[128];
    int rc;
    size_t i;

    for (i = 0; i < n->n_rs; i++)
        if (memcmp(n->rs[i].stream, m->stream_id, LIA_STREAM_ID_BYTES) == 0)
            break;
    if (i == n->n_rs) {
        if (n->n_rs == BURST && (rc = flush_rx(n)) != 0)
            return rc;
        i = n->n_rs++;
        memcpy(n->rs[i].stream, m->stream_id, LIA_STREAM_ID_BYTES);
    }
    n->rs[i].seq = m->seq;
    if (m->new_key) {
        /* rk:<hex of half the stream id>:<epoch> -> sender, digest, epoch, sealed key */
        uint8_t v[1 + LIA_NODE_ID_MAX + LIA_DEST_DIGEST_BYTES + 8 + LIA_SEALED_KEY_BYTES];
        uint8_t ad[128];
        size_t ad_len, sl = strlen(m->sender), off = 0;
        char sh[2 * 16 + 1];
        hex(m->stream_id, 16, sh);
        snprintf(key, sizeof key, "rk:%s:%llu", sh, (unsigned long long)m->epoch);
        v[off++] = (uint8_t)sl;
        memcpy(v + off, m->sender, sl);
        off += sl;
        memcpy(v + off, m->dest_digest, LIA_DEST_DIGEST_BYTES);
        off += LIA_DEST_DIGEST_BYTES;
        put_u64(v + off, m->epoch);
        off += 8;
        key_ad(rxkey_label, sizeof rxkey_label, m->sender, m->dest_digest, m->epoch, ad, &ad_len);
        if ((rc = lia_symkey_seal(n->storage_key, m->new_key, ad, ad_len, v + off)) != 0)
            return rc;
        off += LIA_SEALED_KEY_BYTES;
        return lia_nstore_state_put(n->store, key, v, off);
    }
    return 0;
}

/* ---------------- revocation ---------------- */

/*
 * In a group: the revocation list into the store state (when no `crl` file is configured).
 * A state value holds at most 64 KiB and a list up to 4 MiB, so it is kept as "crl:NNNN"
 * chunks of CRL_CHUNK bytes under "crl" = u64 length; the group makes the whole write atomic.
 */
static int save_crl_state(node_t *n, const uint8_t *buf, size_t len)
{
    uint8_t hdr[8];
    char key[32];
    int rc;

    for (size_t off = 0, i = 0; off < len; off += CRL_CHUNK, i++) {
        size_t k = len - off < CRL_CHUNK ? len - off : CRL_CHUNK;
        snprintf(key, sizeof key, "crl:%04zu", i);
        if ((rc = lia_nstore_state_put(n->store, key, buf + off, k)) != 0)
            return rc;
    }
    put_u64(hdr, len);
    return lia_nstore_state_put(n->store, "crl", hdr, sizeof hdr);
}

/* The revocation list saved by save_crl_state (malloc'd), or LIA_ERR_NOT_FOUND. */
static int load_crl_state(node_t *n, uint8_t **out, size_t *out_len)
{
    uint8_t *v = NULL, *buf = NULL;
    size_t vlen = 0, len, off = 0;
    char key[32];
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = lia_nstore_state_get(n->store, "crl", &v, &vlen)) != 0)
        return rc;
    len = vlen == 8 ? (size_t)get_u64(v) : 0;
    free(v);
    v = NULL;
    if (len == 0 || len > LIA_CRL_MAX_BYTES)
        return LIA_ERR_DECODE;
    if (!(buf = malloc(len)))
        return LIA_ERR_NOMEM;
    for (size_t i = 0; off < len; i++) {
        size_t want = len - off < CRL_CHUNK ? len - off : CRL_CHUNK;
        snprintf(key, sizeof key, "crl:%04zu", i);
        if ((rc = lia_nstore_state_get(n->store, key, &v, &vlen)) != 0)
            goto fail;
        if (vlen != want) {
            rc = LIA_ERR_DECODE;
            goto fail;
        }
        memcpy(buf + off, v, want);
        off += want;
        free(v);
        v = NULL;
    }
    *out = buf;
    *out_len = len;
    return 0;
fail:
    free(v);
    free(buf);
    return rc;
}

/* Serial of the last revocation list whose revocations started new key epochs ("crl-rolled"). */
static uint64_t crl_rolled(node_t *n)
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    uint64_t serial = 0;

    if (lia_nstore_state_get(n->store, "crl-rolled", &v, &vlen) == 0 && vlen == 8)
        serial = get_u64(v);
    free(v);
    return serial;
}

/*
 * One group, outside any other: the list into the store state (when no `crl` file is
 * configured), a new key epoch for every destination if roll is set, and the list's serial
 * as the last one handled. A failed commit stops the daemon (the store is unusable).
 */
static void crl_commit(node_t *n, int roll, const char *why)
{
    uint8_t v[8];
    int rc;

    if ((rc = lia_nstore_begin(n->store)) != 0 ||
        (!n->crl_path && n->crl_buf && (rc = save_crl_state(n, n->crl_buf, n->crl_len)) != 0) ||
        (roll && (rc = tx_roll_all(n, why)) != 0) ||
        (put_u64(v, lia_trust_crl_serial(n->trust)),
         (rc = lia_nstore_state_put(n->store, "crl-rolled", v, sizeof v)) != 0) ||
        (rc = lia_nstore_commit(n->store)) != 0)
        fatal(EX_IOERR, "%s: cannot save the revocation list and new key epochs: %s", n->store_path,
              lia_strerror(rc));
}

static void log_revoked(void *arg, const lia_crl_entry_info *e)
{
    char when[32];
    time_t t = (time_t)e->revoked_at;
    struct tm tm;

    (void)arg;
    if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(when, "?");
    log_notice("certificate %016llx of %s revoked as of %s%s%s", (unsigned long long)e->serial,
               e->node_id, when, e->reason[0] ? ": " : "", e->reason);
}

/*
 * Applies a revocation list received from `source` (the broker, or the configured file on
 * SIGHUP; from_file: do not write it back there). The list must be at most LIA_CRL_MAX_BYTES,
 * verify against the authority and be newer than the one held (a higher serial, not issued
 * earlier); otherwise it is refused with the reason logged and nothing changes. The list held
 * again is a no-op. An accepted list is installed in the trust store (the opener refuses
 * envelopes of its revoked keys from now on), saved crash-safely (the `crl` file: temporary
 * file, fsync, rename, fsync of the directory; else the store), and if it revokes a
 * certificate that the list held did not, every destination starts a new key epoch, whose
 * key the revoked nodes never get (lia_trust_find_grantee in seal_pending). Must be called
 * outside a store group.
 */
static int take_crl(node_t *n, const uint8_t *buf, size_t len, const char *source, int from_file)
{
    uint8_t *copy = NULL;
    size_t newly = 0;
    int rc;

    if (len == 0 || len > LIA_CRL_MAX_BYTES) {
        log_warn("revocation list from %s refused: %zu bytes (1 to %u allowed)", source, len,
                 LIA_CRL_MAX_BYTES);
        return LIA_ERR_TOO_LARGE;
    }
    if (n->crl_buf && len == n->crl_len && memcmp(buf, n->crl_buf, len) == 0)
        return 0; /* the list held: the broker sends it after every Hello */
    if (!(copy = malloc(len)))
        return LIA_ERR_NOMEM;
    memcpy(copy, buf, len);
    if ((rc = lia_trust_update_crl(n->trust, copy, len, &newly, log_revoked, n)) != 0) {
        if (rc == LIA_ERR_STALE)
            log_warn("revocation list from %s refused: not newer than the one held (serial "
                     "%llu)",
                     source, (unsigned long long)lia_trust_crl_serial(n->trust));
        else
            log_warn("revocation list from %s refused: %s", source, lia_strerror(rc));
        free(copy);
        return rc;
    }
    free(n->crl_buf);
    n->crl_buf = copy;
    n->crl_len = len;
    log_notice("revocation list %llu from %s applied: %zu certificate(s) newly revoked",
               (unsigned long long)lia_trust_crl_serial(n->trust), source, newly);
    {
        const lia_cert_info *self;
        uint8_t kid[LIA_KEY_ID_BYTES];
        lia_key_id(lia_identity_sign_pk(n->id), kid);
        if (lia_trust_find(n->trust, n->me, kid, now_ms() / 1000, &self) == LIA_ERR_REVOKED)
            log_err("this node's own certificate is revoked: other nodes refuse what it sends "
                    "and the broker refuses it; create new keys (liaison-keys node-init) and "
                    "request a new certificate");
    }
    if (n->crl_path && !from_file &&
        (rc = lia_file_write_atomic(n->crl_path, copy, len, 0644, LIA_FILE_REPLACE)) != 0)
        log_err("%s: cannot save the revocation list: %s; it is applied until the node stops, "
                "and the broker sends it again after each reconnection",
                n->crl_path, lia_strerror(rc));
    crl_commit(n, newly > 0, "certificate revoked");
    return 0;
}

/*
 * At start, with the store open: the list kept in the store (when no `crl` file is
 * configured), and the key epochs a list applied before a crash or a restart may still owe
 * (its serial is above the last one handled and it revokes anything).
 */
static int restore_crl(node_t *n)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    if (!n->crl_path) {
        rc = load_crl_state(n, &buf, &len);
        if (rc == 0 && (rc = lia_trust_set_crl(n->trust, buf, len)) == 0) {
            n->crl_buf = buf;
            n->crl_len = len;
            buf = NULL;
        } else if (rc != LIA_ERR_NOT_FOUND) {
            /* The broker sends its list again on connection: report, do not stop. */
            log_err("%s: the revocation list kept in the store is unusable: %s", n->store_path,
                    lia_strerror(rc));
        }
        free(buf);
    }
    if (n->crl_buf && lia_trust_crl_serial(n->trust) > crl_rolled(n))
        crl_commit(n, lia_crl_count(lia_trust_crl(n->trust)) > 0,
                   "certificate revoked (list applied before a restart)");
    if (n->crl_buf)
        log_notice("revocation list %llu in force (%zu certificate(s) revoked)",
                   (unsigned long long)lia_trust_crl_serial(n->trust),
                   lia_crl_count(lia_trust_crl(n->trust)));
    return 0;
}

/*
 * SIGHUP: reads the certificates directory again into a new trust store (the list held
 * carries over) and hands it to the opener, then applies the `crl` file if it holds a newer
 * list. On any error the previous store stays in force.
 */
static void node_reload(node_t *n)
{
    lia_trust_t *t = NULL;
    const char *failed = NULL;
    const lia_cert_info *self;
    uint8_t kid[LIA_KEY_ID_BYTES], *buf = NULL;
    size_t len = 0;
    int rc;

    log_notice("reloading certificates and the revocation list");
    if ((rc = lia_keyfiles_load_trust_dir(n->authority_path, n->certs_dir, NULL, &t, &failed)) !=
        0) {
        log_err("reload: %s: %s; keeping the previous certificates", failed ? failed : n->certs_dir,
                lia_strerror(rc));
        return;
    }
    if (n->crl_buf && (rc = lia_trust_set_crl(t, n->crl_buf, n->crl_len)) != 0) {
        log_err("reload: the revocation list held no longer verifies: %s; keeping the previous "
                "certificates",
                lia_strerror(rc));
        lia_trust_destroy(&t);
        return;
    }
    lia_key_id(lia_identity_sign_pk(n->id), kid);
    if ((rc = lia_trust_find(t, n->me, kid, now_ms() / 1000, &self)) != 0)
        log_warn("reload: no valid certificate for this node (%s) in %s: %s; other nodes will "
                 "refuse what it sends",
                 n->me, n->certs_dir, lia_strerror(rc));
    lia_opener_set_trust(n->opener, t);
    lia_membership_set_trust(n->reg, t); /* borrowed: must never outlive its trust store */
    lia_trust_destroy(&n->trust);
    n->trust = t;
    if (!n->crl_path)
        return;
    rc = lia_file_read(n->crl_path, LIA_CRL_MAX_BYTES, 0, &buf, &len);
    if (rc == 0)
        (void)take_crl(n, buf, len, n->crl_path, 1);
    else if (rc != LIA_ERR_NOT_FOUND)
        log_warn("reload: %s: %s; keeping revocation list %llu", n->crl_path, lia_strerror(rc),
                 (unsigned long long)lia_trust_crl_serial(n->trust));
    free(buf);
}

/* ---------------- broker link ---------------- */

static int send_frame(node_t *n, const Liaison__V1__Frame *f)
{
    size_t len = liaison__v1__frame__get_packed_size(f);
    uint8_t stackbuf[256], *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    int rc;
    if (!buf)
        return LIA_ERR_NOMEM;
    liaison__v1__frame__pack(f, buf);
    rc = lia_client_send(n->client, buf, len);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static void send_hello(node_t *n)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Hello h = LIAISON__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.cursor = n->shown;
    h.window = (uint32_t)n->window;
    f.kind_case = LIAISON__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    (void)send_frame(n, &f);
}

/* Keeps the connection alive without resynchronising (unlike a Hello, see resync). */
static void send_heartbeat(node_t *n)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__Heartbeat h = LIAISON__V1__HEARTBEAT__INIT;
    h.sent_at_ms = now_ms();
    f.kind_case = LIAISON__V1__FRAME__KIND_HEARTBEAT;
    f.heartbeat = &h;
    (void)send_frame(n, &f);
}

/*
 * Hands envelopes to the transport in order, several per Publish frame (up to
 * PUBLISH_BATCH_MAX envelopes or PUBLISH_BATCH_BYTES, one frame at a time). Returns how many
 * went out: a frame goes out whole or not at all, so the rest can follow later in order.
 */
static size_t publish_run(node_t *n, uint8_t *const *envs, const size_t *lens, size_t count)
{
    size_t done = 0;

    while (done < count) {
        Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
        Liaison__V1__Publish p = LIAISON__V1__PUBLISH__INIT;
        ProtobufCBinaryData b[PUBLISH_BATCH_MAX];
        size_t k = 0, bytes = 0;
        while (done + k < count && k < PUBLISH_BATCH_MAX &&
               (k == 0 || bytes + lens[done + k] <= PUBLISH_BATCH_BYTES)) {
            b[k] = (ProtobufCBinaryData){lens[done + k], envs[done + k]};
            bytes += lens[done + k];
            k++;
        }
        p.n_envelopes = k;
        p.envelopes = b;
        f.kind_case = LIAISON__V1__FRAME__KIND_PUBLISH;
        f.publish = &p;
        if (send_frame(n, &f) != 0)
            break;
        done += k;
    }
    return done;
}

static size_t pump_outbox(node_t *n, size_t max)
{
    lia_nstore_out out[256];
    size_t got = 0, total = 0;

    while (n->pub_more && total < max) {
        size_t want = max - total < 256 ? max - total : 256;
        if (lia_nstore_outbox_pending(n->store, n->pub_after, want, out, &got) != 0)
            return total;
        if (got < want)
            n->pub_more = 0;
        uint8_t *envs[256];
        size_t lens[256], sent, ready = 0;
        /* Never an envelope whose outbox row is not durable yet: its group publishes it from
         * memory once synced, after these (outbox order). */
        while (ready < got && (!n->unsynced_from || out[ready].id < n->unsynced_from)) {
            envs[ready] = out[ready].data;
            lens[ready] = out[ready].len;
            ready++;
        }
        if (ready < got)
            n->pub_more = 0;
        sent = publish_run(n, envs, lens, ready);
        if (sent > 0)
            n->pub_after = out[sent - 1].id;
        total += sent;
        lia_nstore_out_free(out, got);
        if (sent < ready) {
            n->pub_more = 1; /* transport full or not connected: retry from here */
            return total;
        }
        if (got == 0)
            break;
    }
    return total;
}

/*
 * Resynchronises with the broker: a Hello, then every unacknowledged envelope again, oldest
 * first (the broker acknowledges duplicates again without storing them twice). The broker
 * accepts publishes on a connection only after its Hello, so whatever went out on a new
 * connection before it (and may have overtaken envelopes lost with the old connection) is
 * dropped there and comes again, in order, after the Hello.
 */
static void send_membership_publish(node_t *n, const struct mpub *p);

static void resync(node_t *n)
{
    send_hello(n);
    /* Changes not yet confirmed go again (a change already stored is confirmed again). */
    for (size_t i = 0; i < MPUB_MAX; i++)
        if (n->mpub[i].change && !n->mpub[i].done)
            send_membership_publish(n, &n->mpub[i]);
    n->pub_after = 0;
    n->pub_more = 1;
    (void)pump_outbox(n, n->window);
}

/* ---------------- control socket ---------------- */

/* Queues r for the connection, packed in place (lia_ctl_queue_msg): flushed once per turn, so
 * the daemon never waits; the queued plaintext is wiped once sent. */
static int reply(lia_ctl_conn_t *c, const Liaison__V1__ControlReply *r)
{
    return lia_ctl_queue_msg(c, &r->base);
}

static void reply_error(lia_ctl_conn_t *c, int err, const char *message)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__ControlError e = LIAISON__V1__CONTROL_ERROR__INIT;
    e.code = (char *)lia_errname(err);
    e.message = (char *)message;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_ERROR;
    r.error = &e;
    (void)reply(c, &r);
}

static void account_name(uid_t uid, char *out, size_t len)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res && strlen(res->pw_name) < 64)
        snprintf(out, len, "%s", res->pw_name);
    else
        snprintf(out, len, "uid:%u", (unsigned)uid);
}

static void msg_to_proto(const lia_nstore_msg *m, Liaison__V1__InboxMessage *im)
{
    liaison__v1__inbox_message__init(im);
    im->delivery_seq = m->delivery_seq;
    im->sender = (char *)m->sender;
    im->channel = (char *)m->channel;
    im->sender_seq = m->sender_seq;
    im->created_at_ms = m->created_at_ms;
    im->received_at_ms = m->received_at_ms;
    im->message_id.data = (uint8_t *)m->message_id;
    im->message_id.len = LIA_MESSAGE_ID_BYTES;
    im->payload.data = m->payload;
    im->payload.len = m->payload_len;
}

/* ---------------- officers ---------------- */

/*
 * The officer boundary on the control socket (docs/operator-guide.md, "Officers"): whoever
 * reads or sends messages through the socket does so as an officer of this node, and only on
 * the channels that officer is assigned to. Every request that shows or sends messages asks
 * officer_may_read / officer_may_send (channel "" means direct messages); new requests that
 * show messages (search, export...) must do the same. The node administrator manages officers
 * but, to read, needs an officer mapping like everyone else.
 */
static int officer_may_read(const node_t *n, const struct conn *c, const char *channel)
{
    return c && c->officer && lia_officers_may_read(n->officers, c->officer, channel);
}

static int officer_may_send(const node_t *n, const struct conn *c, const char *channel)
{
    return officer_may_read(n, c, channel); /* one assignment covers both directions */
}

/* 1 if c is an officer assigned to everything ("*"): listings need no filter then. */
static int officer_sees_all(const node_t *n, const struct conn *c)
{
    if (!c || !c->officer)
        return 0;
    for (size_t j = 0; j < lia_officers_n_assigned(n->officers, c->officer); j++)
        if (strcmp(lia_officers_assigned(n->officers, c->officer, j, NULL), LIA_OFFICER_ALL) == 0)
            return 1;
    return 0;
}

/* Tells c why it may not read or send there (channel "" for direct messages); returns the
 * error code sent: LIA_ERR_PERMISSION (no officer) or LIA_ERR_NOT_ASSIGNED. */
static int refuse_officer(struct conn *c, const char *channel)
{
    char msg[400];
    int direct = !channel || !*channel;
    if (!c->officer) {
        snprintf(msg, sizeof msg,
                 "account %s is not an officer at this node; ask the node administrator to "
                 "map it in node.conf ('officer ID ACCOUNT') and assign channels",
                 c->account);
        reply_error(c->c, LIA_ERR_PERMISSION, msg);
        return LIA_ERR_PERMISSION;
    }
    snprintf(msg, sizeof msg,
             "officer %s is not assigned to %s%s; ask the node administrator: liaison officer "
             "assign %s %s",
             c->officer, direct ? "direct messages" : "channel ", direct ? "" : channel, c->officer,
             direct ? LIA_OFFICER_DIRECT : channel);
    reply_error(c->c, LIA_ERR_NOT_ASSIGNED, msg);
    return LIA_ERR_NOT_ASSIGNED;
}

/* A source of stored messages in delivery order: up to max after `after` into out. */
typedef int (*msg_fetch_fn)(node_t *n, const void *arg, uint64_t after, size_t max,
                            lia_nstore_msg *out, size_t *got);

/*
 * Up to max messages of fetch after delivery sequence `after` that c may read, in order, into
 * out (owned by the caller: lia_nstore_msgs_free). all_readable: c may read whatever fetch
 * returns (no filter needed). *scanned is the delivery sequence of the last message looked at,
 * readable or not, so that a follower or an export moves past what it may not see; *more is 1
 * when it stopped at max (there may be more), 0 when the source had nothing further.
 */
static int fetch_readable(node_t *n, const struct conn *c, msg_fetch_fn fetch, const void *arg,
                          int all_readable, uint64_t after, size_t max, lia_nstore_msg *out,
                          size_t *got, uint64_t *scanned, int *more)
{
    lia_nstore_msg page[FOLLOW_BATCH];
    int rc;

    *got = 0;
    *scanned = after;
    *more = 0;
    if (all_readable) {
        if ((rc = fetch(n, arg, after, max, out, got)) != 0)
            return rc;
        if (*got)
            *scanned = out[*got - 1].delivery_seq;
        *more = *got == max;
        return 0;
    }
    if (!c || !c->officer)
        return 0; /* sees nothing */
    for (;;) {
        size_t np = 0, i;
        if ((rc = fetch(n, arg, *scanned, FOLLOW_BATCH, page, &np)) != 0) {
            lia_nstore_msgs_free(out, *got);
            *got = 0;
            return rc;
        }
        for (i = 0; i < np && *got < max; i++) {
            *scanned = page[i].delivery_seq;
            if (!officer_may_read(n, c, page[i].channel))
                continue;
            out[(*got)++] = page[i];
            page[i].payload = NULL; /* moved */
            page[i].payload_len = 0;
        }
        lia_nstore_msgs_free(page, np);
        if (*got == max) {
            *more = 1;
            return 0;
        }
        if (np < FOLLOW_BATCH)
            return 0;
    }
}

/* Drops the messages of groups not yet durable from the end of a fetch (in delivery order):
 * nobody is shown what a crash could still take back. */
static int only_durable(node_t *n, int rc, lia_nstore_msg *out, size_t *got)
{
    size_t k = *got;
    if (rc != 0)
        return rc;
    while (k > 0 && out[k - 1].delivery_seq > n->shown)
        k--;
    lia_nstore_msgs_free(out + k, *got - k);
    *got = k;
    return 0;
}

static int fetch_inbox(node_t *n, const void *channel, uint64_t after, size_t max,
                       lia_nstore_msg *out, size_t *got)
{
    return only_durable(n, lia_nstore_inbox_list(n->store, after, channel, max, out, got), out,
                        got);
}

/* The inbox (of one channel, if channel is not NULL) through fetch_readable. */
static int list_readable(node_t *n, const struct conn *c, uint64_t after, const char *channel,
                         size_t max, lia_nstore_msg *out, size_t *got, uint64_t *scanned, int *more)
{
    return fetch_readable(n, c, fetch_inbox, channel,
                          officer_sees_all(n, c) || (channel && officer_may_read(n, c, channel)),
                          after, max, out, got, scanned, more);
}

/* ---------------- followers ---------------- */

static lia_nstore_msg *recent_at(node_t *n, size_t i)
{
    return &n->recent[(n->recent_head + i) % RECENT_MAX];
}

/* Wipes and drops the oldest kept message; from then on a follower before it reads the store. */
static void recent_drop_oldest(node_t *n)
{
    lia_nstore_msg *m = recent_at(n, 0);
    n->recent_from = m->delivery_seq;
    n->recent_bytes -= m->payload_len;
    sodium_memzero(m->payload, m->payload_len);
    free(m->payload);
    memset(m, 0, sizeof *m);
    n->recent_head = (n->recent_head + 1) % RECENT_MAX;
    n->n_recent--;
}

/* Keeps a message just stored (its payload moves here), making room within the limits. */
static void recent_add(node_t *n, const lia_nstore_msg *m)
{
    while (n->n_recent > 0 &&
           (n->n_recent == RECENT_MAX || n->recent_bytes + m->payload_len > RECENT_BYTES))
        recent_drop_oldest(n);
    *recent_at(n, n->n_recent++) = *m;
    n->recent_bytes += m->payload_len;
}

/* Drops the messages that every follower has been shown (all of them when nobody follows),
 * up to the durable cursor: plaintext stays in memory only while someone still needs it. */
static void recent_trim(node_t *n)
{
    uint64_t low = n->shown;
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (n->conns[i].c && n->conns[i].following && n->conns[i].f.after < low)
            low = n->conns[i].f.after;
    while (n->n_recent > 0 && recent_at(n, 0)->delivery_seq <= low)
        recent_drop_oldest(n);
    if (n->recent_from < low)
        n->recent_from = low;
}

static void recent_clear(node_t *n)
{
    while (n->n_recent > 0)
        recent_drop_oldest(n);
}

/*
 * Feeds a follower from the kept messages; its position is within them (f->after >=
 * recent_from). Up to the durable cursor, in order, those its officer may read, until
 * FOLLOW_QUEUED_MAX bytes wait for it. Returns 0, or an error to drop it.
 */
static int feed_recent(node_t *n, struct follower *f)
{
    size_t lo = 0, hi = n->n_recent;

    while (lo < hi) { /* the first kept message after f->after */
        size_t mid = lo + (hi - lo) / 2;
        if (recent_at(n, mid)->delivery_seq <= f->after)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n->n_recent; i++) {
        const lia_nstore_msg *m = recent_at(n, i);
        Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
        Liaison__V1__InboxMessage im;
        int rc;
        if (m->delivery_seq > n->shown)
            break;
        if (lia_ctl_pending(f->conn) > FOLLOW_QUEUED_MAX)
            return 0; /* f->after stays at the last message queued */
        if ((f->channel[0] && strcmp(f->channel, m->channel) != 0) ||
            !officer_may_read(n, f->owner, m->channel))
            continue;
        msg_to_proto(m, &im);
        r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE;
        r.message = &im;
        if ((rc = reply(f->conn, &r)) != 0)
            return rc;
        f->after = m->delivery_seq;
    }
    /* Everything up to the durable cursor was looked at (refusals are never shown). */
    if (f->after < n->shown)
        f->after = n->shown;
    return 0;
}

/*
 * Sends a follower every durable message after its position that its officer may read, as
 * far as it reads: from memory while its position is within the kept messages, otherwise from
 * the store until it gets there. A follower that reads slowly is fed as it reads (at most
 * FOLLOW_QUEUED_MAX bytes wait for it): it costs store reads, never unbounded memory.
 * Returns 0, or an error to drop it.
 */
static int feed_follower(node_t *n, struct follower *f)
{
    lia_nstore_msg msgs[FOLLOW_BATCH];
    size_t got;
    uint64_t scanned;
    int rc, more;

    while (f->after < n->recent_from) {
        if (lia_ctl_pending(f->conn) > FOLLOW_QUEUED_MAX)
            return 0;
        if ((rc = list_readable(n, f->owner, f->after, f->channel[0] ? f->channel : NULL,
                                FOLLOW_BATCH, msgs, &got, &scanned, &more)) != 0)
            return rc;
        for (size_t i = 0; i < got; i++) {
            Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
            Liaison__V1__InboxMessage im;
            msg_to_proto(&msgs[i], &im);
            r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE;
            r.message = &im;
            if ((rc = reply(f->conn, &r)) != 0) {
                lia_nstore_msgs_free(msgs, got);
                return rc;
            }
            f->after = msgs[i].delivery_seq;
        }
        lia_nstore_msgs_free(msgs, got);
        f->after = scanned; /* past what this officer may not see, too */
        if (!more) {
            /* Nothing further that it may read up to the durable cursor. */
            if (f->after < n->shown)
                f->after = n->shown;
            break;
        }
    }
    return f->after < n->shown ? feed_recent(n, f) : 0;
}

static void handle_list(node_t *n, struct conn *c, const Liaison__V1__ListRequest *lr)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__ListReply l = LIAISON__V1__LIST_REPLY__INIT;
    size_t max = lr->max == 0 ? 100 : lr->max > 10000 ? 10000 : lr->max, got = 0;
    lia_nstore_msg *msgs = calloc(max, sizeof *msgs);
    Liaison__V1__InboxMessage *im = calloc(max, sizeof *im), **imp = calloc(max, sizeof *imp);
    uint64_t scanned;
    int rc, more;

    if (!msgs || !im || !imp) {
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (lr->channel[0] && !lia_channel_valid(lr->channel)) {
        reply_error(c->c, LIA_ERR_INVALID, "invalid channel name");
        goto done;
    }
    if (!c->officer || (lr->channel[0] && !officer_may_read(n, c, lr->channel))) {
        (void)refuse_officer(c, lr->channel);
        goto done;
    }
    if ((rc = list_readable(n, c, lr->after, lr->channel[0] ? lr->channel : NULL, max, msgs, &got,
                            &scanned, &more)) != 0) {
        reply_error(c->c, rc, lia_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < got; i++) {
        msg_to_proto(&msgs[i], &im[i]);
        imp[i] = &im[i];
    }
    l.n_messages = got;
    l.messages = imp;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_LIST;
    r.list = &l;
    (void)reply(c->c, &r);
done:
    lia_nstore_msgs_free(msgs, got);
    free(msgs);
    free(im);
    free(imp);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct my_channels {
    node_t *n;
    const struct conn *c;
    char **names;
    size_t k, cap;
};

static int collect_channel(void *arg, const char *channel)
{
    struct my_channels *m = arg;
    /* Channel names are case metadata: an officer sees only the channels it works on. */
    if (!lia_membership_is_member(m->n->reg, channel, m->n->me) ||
        !(m->c->admin || officer_may_read(m->n, m->c, channel)))
        return 0;
    if (m->k == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        char **p = realloc(m->names, cap * sizeof *p);
        if (!p)
            return LIA_ERR_NOMEM;
        m->names = p;
        m->cap = cap;
    }
    m->names[m->k++] = (char *)channel; /* valid until the registry changes: not this turn */
    return 0;
}

static void handle_status(node_t *n, struct conn *c)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__StatusReply s = LIAISON__V1__STATUS_REPLY__INIT;
    char account[80];
    struct my_channels mine = {n, c, NULL, 0, 0};
    char **chans;
    size_t k;
    uint64_t pending = 0;

    if (lia_membership_channels(n->reg, collect_channel, &mine) != 0) {
        free(mine.names);
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        return;
    }
    if (mine.k > 1)
        qsort(mine.names, mine.k, sizeof *mine.names, cmp_str);
    chans = mine.names;
    k = mine.k;
    if (lia_nstore_outbox_count(n->store, &pending) != 0)
        pending = 0;
    snprintf(account, sizeof account, "%s", c->account);
    s.node_id = (char *)n->me;
    s.broker_endpoint = (char *)n->broker_ep;
    s.broker_connected =
        n->last_broker_ms && now_ms() - n->last_broker_ms <= n->heartbeat_timeout_ms;
    s.last_broker_frame_ms = n->last_broker_ms;
    s.outbox_pending = pending;
    s.inbox_cursor = n->shown;
    s.refused = n->refused;
    s.n_channels = k;
    s.channels = chans;
    s.account = account;
    s.officer = (char *)(c->officer ? c->officer : "");
    s.node_admin = c->admin != 0;
    if (lia_trust_crl(n->trust)) {
        s.crl_serial = lia_trust_crl_serial(n->trust);
        s.crl_issued_at = lia_crl_issued_at(lia_trust_crl(n->trust));
        s.crl_revoked = lia_crl_count(lia_trust_crl(n->trust));
    }
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_STATUS;
    r.status = &s;
    (void)reply(c->c, &r);
    free(chans);
}

/* Fills o (and its assignments, malloc'd into *as: free it) for officer i of the registry. */
static int officer_to_proto(const node_t *n, size_t i, Liaison__V1__Officer *o,
                            Liaison__V1__OfficerAssignment **as,
                            Liaison__V1__OfficerAssignment ***asp)
{
    const char *id = lia_officers_id(n->officers, i);
    size_t na = lia_officers_n_assigned(n->officers, id);

    liaison__v1__officer__init(o);
    o->id = (char *)id;
    o->account = (char *)lia_officers_account(n->officers, i);
    o->uid = (uint32_t)lia_officers_uid(n->officers, i);
    *as = calloc(na ? na : 1, sizeof **as);
    *asp = calloc(na ? na : 1, sizeof **asp);
    if (!*as || !*asp)
        return LIA_ERR_NOMEM;
    for (size_t j = 0; j < na; j++) {
        unsigned line = 0;
        liaison__v1__officer_assignment__init(&(*as)[j]);
        (*as)[j].channel = (char *)lia_officers_assigned(n->officers, id, j, &line);
        (*as)[j].config_line = line;
        (*asp)[j] = &(*as)[j];
    }
    o->n_assignments = na;
    o->assignments = *asp;
    return 0;
}

static size_t officer_index(const node_t *n, const char *id)
{
    for (size_t i = 0; i < lia_officers_count(n->officers); i++)
        if (strcmp(lia_officers_id(n->officers, i), id) == 0)
            return i;
    return (size_t)-1;
}

/* Officer list: every officer for the node administrator, an officer its own entry only. */
static void handle_officer_list(node_t *n, struct conn *c)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__OfficerListReply l = LIAISON__V1__OFFICER_LIST_REPLY__INIT;
    size_t count = lia_officers_count(n->officers), k = 0;
    Liaison__V1__Officer *o = calloc(count ? count : 1, sizeof *o);
    Liaison__V1__Officer **op = calloc(count ? count : 1, sizeof *op);
    Liaison__V1__OfficerAssignment **as = calloc(count ? count : 1, sizeof *as);
    Liaison__V1__OfficerAssignment ***asp = calloc(count ? count : 1, sizeof *asp);

    if (!o || !op || !as || !asp) {
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!c->admin && !c->officer) {
        (void)refuse_officer(c, "");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        if (!c->admin && strcmp(lia_officers_id(n->officers, i), c->officer) != 0)
            continue;
        if (officer_to_proto(n, i, &o[k], &as[k], &asp[k]) != 0) {
            k++;
            reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
            goto done;
        }
        op[k] = &o[k];
        k++;
    }
    l.n_officers = k;
    l.officers = op;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_OFFICER_LIST;
    r.officer_list = &l;
    (void)reply(c->c, &r);
done:
    for (size_t i = 0; as && asp && i < k; i++) {
        free(as[i]);
        free(asp[i]);
    }
    free(o);
    free(op);
    free(as);
    free(asp);
}

/* Writes officer id's run-time assignments to the store (one committed group). */
static int save_officer(node_t *n, const char *id)
{
    char key[3 + LIA_OFFICER_ID_MAX + 1];
    uint8_t *val = NULL;
    size_t len = 0;
    int rc;

    _Static_assert(LIA_OFFICER_RUNTIME_MAX <= LIA_NSTORE_STATE_MAX,
                   "an officer's assignments fit in one state value");
    snprintf(key, sizeof key, "oa:%s", id);
    if ((rc = lia_officers_runtime_encode(n->officers, id, &val, &len)) != 0)
        return rc;
    if ((rc = lia_nstore_begin(n->store)) == 0) {
        rc = lia_nstore_state_put(n->store, key, val, len);
        /* A failed commit leaves the store unusable; the daemon stops (nothing was said). */
        if (lia_nstore_commit(n->store) != 0)
            fatal(EX_IOERR, "%s: durable commit failed; stopping", n->store_path);
    }
    free(val);
    return rc;
}

/*
 * Assign or unassign (node administrator only): changes the registry, persists the officer's
 * run-time assignments, and only then replies. Assignments made by node.conf cannot be removed
 * here (the configuration wins).
 */
static void handle_officer_assign(node_t *n, struct conn *c,
                                  const Liaison__V1__OfficerAssignRequest *ar, int assign)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__OfficerAssignReply ra = LIAISON__V1__OFFICER_ASSIGN_REPLY__INIT;
    Liaison__V1__Officer o;
    Liaison__V1__OfficerAssignment *as = NULL, **asp = NULL;
    char msg[400];
    int rc;

    if (!c->admin) {
        snprintf(msg, sizeof msg,
                 "only the node administrator (the daemon's account or root) may assign "
                 "officers; account %s is not",
                 c->account);
        reply_error(c->c, LIA_ERR_PERMISSION, msg);
        return;
    }
    if (!lia_officer_id_valid(ar->officer) || !lia_officer_target_valid(ar->channel)) {
        reply_error(c->c, LIA_ERR_INVALID,
                    "give an officer id and a channel name, @direct (direct messages) or * "
                    "(everything)");
        return;
    }
    if (!lia_officers_exists(n->officers, ar->officer)) {
        snprintf(msg, sizeof msg,
                 "no officer %s at this node; officers are declared in node.conf ('officer ID "
                 "ACCOUNT'); see liaison officer list",
                 ar->officer);
        reply_error(c->c, LIA_ERR_NOT_FOUND, msg);
        return;
    }
    rc = assign ? lia_officers_assign(n->officers, ar->officer, ar->channel)
                : lia_officers_unassign(n->officers, ar->officer, ar->channel);
    if (rc == LIA_ERR_CONFIG) {
        unsigned line = 0;
        for (size_t j = 0; j < lia_officers_n_assigned(n->officers, ar->officer); j++)
            if (strcmp(lia_officers_assigned(n->officers, ar->officer, j, &line), ar->channel) == 0)
                break;
        snprintf(msg, sizeof msg,
                 "%s:%u assigns officer %s to %s; remove it there and restart the node (the "
                 "configuration wins over run-time changes)",
                 lia_config_path(n->cfg), line, ar->officer, ar->channel);
        reply_error(c->c, LIA_ERR_CONFIG, msg);
        return;
    }
    if (rc == LIA_ERR_LIMIT) {
        reply_error(c->c, rc, "too many assignments for this officer (at most 1000)");
        return;
    }
    if (rc != 0 && rc != LIA_ERR_EXISTS && rc != LIA_ERR_NOT_FOUND) {
        reply_error(c->c, rc, lia_strerror(rc));
        return;
    }
    ra.changed = rc == 0;
    if (ra.changed) {
        if ((rc = save_officer(n, ar->officer)) != 0) {
            /* Not persisted: undo, so that memory and store agree. */
            int undo = assign ? lia_officers_unassign(n->officers, ar->officer, ar->channel)
                              : lia_officers_assign(n->officers, ar->officer, ar->channel);
            if (undo != 0)
                log_err("officer %s: the change to %s is in force until restart but not "
                        "stored: %s",
                        ar->officer, ar->channel, lia_strerror(undo));
            reply_error(c->c, rc, "cannot persist the assignment; see the daemon's log");
            log_err("%s: cannot persist officer %s: %s", n->store_path, ar->officer,
                    lia_strerror(rc));
            return;
        }
        log_notice("officer %s %s %s by %s", ar->officer,
                   assign ? "assigned to" : "unassigned from", ar->channel, c->account);
    }
    if (officer_to_proto(n, officer_index(n, ar->officer), &o, &as, &asp) != 0) {
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        goto done;
    }
    ra.officer = &o;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_OFFICER_ASSIGN;
    r.officer_assign = &ra;
    (void)reply(c->c, &r);
done:
    free(as);
    free(asp);
}

/* Loads the run-time assignments persisted by earlier runs (after the store is open). Entries
 * of officers no longer in node.conf are ignored (and kept, should the officer come back). */
static int restore_officers(node_t *n)
{
    lia_nstore_kv *kv = NULL;
    size_t nkv = 0;
    int rc;

    if ((rc = lia_nstore_state_list(n->store, "oa:", &kv, &nkv)) != 0)
        return rc;
    for (size_t i = 0; i < nkv; i++) {
        const char *id = kv[i].key + 3;
        if (!lia_officers_exists(n->officers, id)) {
            log_warn("stored assignments of officer %s ignored: no such officer in %s", id,
                     lia_config_path(n->cfg));
            continue;
        }
        if ((rc = lia_officers_runtime_decode(n->officers, id, kv[i].val, kv[i].len)) != 0)
            log_err("stored assignments of officer %s ignored: %s", id, lia_strerror(rc));
    }
    lia_nstore_kv_free(kv, nkv);
    return 0;
}

static void free_send(struct pending_send *s)
{
    if (s->payload) {
        sodium_memzero(s->payload, s->payload_len);
        free(s->payload);
    }
    for (size_t i = 0; i < s->n_rcpt; i++)
        free(s->rcpt[i]);
    free(s->rcpt);
    free(s->env.data);
    memset(s, 0, sizeof *s);
}

/*
 * Checks an operator's send request and prepares it for sealing: the payload must validate,
 * and the accountable officer is the officer id mapped from the socket's peer account (never
 * taken from the request); the officer must be assigned to the destination. Returns 0 or an error
 * already reported to the client.
 */
static int prepare_send(node_t *n, struct conn *c, const Liaison__V1__SendRequest *sr,
                        struct pending_send *s)
{
    Liaison__V1__Payload *p = NULL;
    int rc;

    memset(s, 0, sizeof *s);
    s->from = c;
    s->from_gen = c->gen;
    if (sr->channel[0]) {
        if (!lia_channel_valid(sr->channel) || sr->n_recipients) {
            reply_error(c->c, LIA_ERR_INVALID, "give either a channel or recipients");
            return LIA_ERR_INVALID;
        }
        if (!lia_membership_is_member(n->reg, sr->channel, n->me)) {
            reply_error(c->c, LIA_ERR_NOT_MEMBER,
                        "this node is not a member of that channel (see liaison status and "
                        "liaison channel members; the owner adds members)");
            return LIA_ERR_NOT_MEMBER;
        }
        if (!officer_may_send(n, c, sr->channel))
            return refuse_officer(c, sr->channel);
        strcpy(s->channel, sr->channel);
    } else {
        if (!officer_may_send(n, c, ""))
            return refuse_officer(c, "");
        if (sr->n_recipients == 0 || sr->n_recipients > LIA_RECIPIENTS_MAX) {
            reply_error(c->c, LIA_ERR_INVALID, "give a channel or 1 to 256 recipients");
            return LIA_ERR_INVALID;
        }
        if (!(s->rcpt = calloc(sr->n_recipients, sizeof *s->rcpt)))
            return LIA_ERR_NOMEM;
        for (size_t i = 0; i < sr->n_recipients; i++) {
            const lia_cert_info *ci;
            if (!lia_node_id_valid(sr->recipients[i]) ||
                lia_trust_find_grantee(n->trust, sr->recipients[i], now_ms() / 1000, &ci) != 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "no valid certificate for recipient '%.64s'",
                         sr->recipients[i]);
                reply_error(c->c, LIA_ERR_UNKNOWN_SENDER, msg);
                return LIA_ERR_UNKNOWN_SENDER;
            }
            if (!(s->rcpt[i] = strdup(sr->recipients[i])))
                return LIA_ERR_NOMEM;
            s->n_rcpt++;
        }
        qsort(s->rcpt, s->n_rcpt, sizeof *s->rcpt, cmp_str);
        for (size_t i = 1; i < s->n_rcpt; i++)
            if (strcmp(s->rcpt[i - 1], s->rcpt[i]) == 0) {
                reply_error(c->c, LIA_ERR_INVALID, "a recipient is named twice");
                return LIA_ERR_INVALID;
            }
    }
    /* Validated, then re-encoded by us below: what is signed is our canonical encoding of
     * what was validated, so the decoder's byte-for-byte canonical check is not needed here. */
    if ((rc = lia_payload_decode_ex(sr->payload.data, sr->payload.len, LIA_PAYLOAD_REENCODED,
                                    &p)) != 0) {
        reply_error(c->c, rc, "the payload does not validate (see docs/payload.md)");
        return rc;
    }
    /* The accountable officer is the officer mapped from the account on the socket, whatever
     * the client wrote: the node signs the envelope, so the recipient knows which officer at
     * which node is accountable. (c->officer is set: officer_may_send checked it.) */
    char *claimed = p->officer;
    p->officer = (char *)c->officer; /* borrowed only while packing */
    s->payload_len = liaison__v1__payload__get_packed_size(p);
    if (s->payload_len > n->max_msg - LIA_HEADER_MAX / 16 ||
        !(s->payload = malloc(s->payload_len ? s->payload_len : 1))) {
        p->officer = claimed;
        lia_payload_free(&p);
        reply_error(c->c, LIA_ERR_TOO_LARGE, "payload too large for max-message-bytes");
        return LIA_ERR_TOO_LARGE;
    }
    liaison__v1__payload__pack(p, s->payload);
    p->officer = claimed; /* give the decoder's string back to its free */
    lia_payload_free(&p);
    s->expires_at_ms = sr->expires_at_ms;
    return 0;
}

/* Seals all pending sends as one batch and puts them into the outbox (inside the group). */
static int seal_pending(node_t *n, struct pending_send *sends, size_t count)
{
    lia_seal_item *items = calloc(count, sizeof *items);
    lia_buf *out = calloc(count, sizeof *out);
    const lia_cert_info ***grants = calloc(count, sizeof *grants);
    struct tx_stream **touched = calloc(count, sizeof *touched);
    size_t n_items = 0, n_touched = 0;
    uint64_t now = now_ms();
    struct tx_stream *last_t = NULL; /* the stream of the last send, if to a channel... */
    const char *last_channel = NULL; /* ...this one */
    int rc = LIA_ERR_NOMEM;

    if (!items || !out || !grants || !touched)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        struct pending_send *s = &sends[i];
        lia_seal_item *it = &items[n_items];
        struct tx_stream *t;
        const char *const *members;
        size_t nm = 0;

        if (s->err)
            continue;
        if (s->channel[0]) {
            /* Membership as of now (changes of this turn are applied before sealing): a key
             * is handed only to the members of the moment. */
            if (!lia_membership_is_member(n->reg, s->channel, n->me)) {
                s->err = LIA_ERR_NOT_MEMBER;
                if (s->from->c)
                    reply_error(s->from->c, LIA_ERR_NOT_MEMBER,
                                "this node is no longer a member of that channel");
                continue;
            }
            it->dest.channel = s->channel;
            members = lia_membership_members(n->reg, s->channel, &nm);
        } else {
            it->dest.recipients = (const char *const *)s->rcpt;
            it->dest.n_recipients = s->n_rcpt;
            members = (const char *const *)s->rcpt;
            nm = s->n_rcpt;
        }
        if (last_channel && s->channel[0] && strcmp(last_channel, s->channel) == 0)
            t = last_t; /* a burst is mostly one channel: one digest and lookup */
        else if ((rc = get_tx(n, &it->dest, &t)) != 0)
            goto fail;
        last_t = t;
        last_channel = s->channel[0] ? s->channel : NULL;
        if (now - t->started_ms >= n->epoch_period_ms && now > t->started_ms &&
            (rc = tx_roll(n, t, "key-epoch-period elapsed")) != 0)
            goto fail;
        it->epoch = t->epoch;
        it->seq = t->next_seq++;
        it->created_at_ms = now;
        it->expires_at_ms = s->expires_at_ms;
        it->key = t->key;
        it->payload = s->payload;
        it->payload_len = s->payload_len;
        it->message_id_out = s->message_id;
        if (!t->granted) {
            /* First envelope of the epoch: hand the key to every other entitled node. */
            size_t k = 0;
            if (!(grants[n_items] = calloc(nm ? nm : 1, sizeof **grants)))
                goto fail;
            for (size_t j = 0; j < nm; j++) {
                const lia_cert_info *ci;
                if (strcmp(members[j], n->me) == 0)
                    continue;
                /* Revoked (at any time on the list), expired or unknown: no key. */
                if (lia_trust_find_grantee(n->trust, members[j], now / 1000, &ci) != 0) {
                    log_warn("no valid certificate for %s: it gets no key for this epoch",
                             members[j]);
                    continue;
                }
                grants[n_items][k++] = ci;
            }
            it->grant = grants[n_items];
            it->n_grant = k;
            t->granted = 1;
        }
        int seen = 0;
        for (size_t j = 0; j < n_touched; j++)
            seen |= touched[j] == t;
        if (!seen)
            touched[n_touched++] = t;
        s->env.data = NULL;
        n_items++;
    }
    if (n_items == 0) {
        rc = 0;
        goto fail;
    }
    if ((rc = lia_envelope_seal_batch(n->id, n->me, items, n_items, out)) != 0)
        goto fail;
    for (size_t i = 0, k = 0; i < count; i++) {
        if (sends[i].err)
            continue;
        sends[i].env = out[k];
        out[k].data = NULL;
        k++;
        if ((rc = lia_nstore_outbox_add(n->store, sends[i].message_id, sends[i].env.data,
                                        sends[i].env.len, &sends[i].outbox_id)) != 0)
            goto fail;
    }
    for (size_t j = 0; j < n_touched; j++)
        if ((rc = save_tx(n, touched[j])) != 0)
            goto fail;
    rc = 0;
fail:
    if (out)
        for (size_t i = 0; i < count; i++)
            free(out[i].data);
    if (grants)
        for (size_t i = 0; i < count; i++)
            free(grants[i]);
    free(grants);
    free(items);
    free(out);
    free(touched);
    return rc;
}

/* ---------------- channel membership ---------------- */

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
 * Starts a new key epoch for this node's sending stream on channel, if it ever sent there (a
 * stream that does not exist yet starts fresh anyway). Inside the group.
 */
static int roll_channel(node_t *n, const char *channel, const char *why)
{
    lia_dest d;
    uint8_t digest[LIA_DEST_DIGEST_BYTES], *v = NULL;
    char key[3 + 2 * LIA_DEST_DIGEST_BYTES + 1];
    size_t vlen = 0;
    struct tx_stream *t;
    int rc;

    memset(&d, 0, sizeof d);
    d.channel = channel;
    if ((rc = lia_dest_digest(&d, digest)) != 0)
        return rc;
    if (!lia_map_get(n->tx, digest)) {
        memcpy(key, "tx:", 3);
        hex(digest, LIA_DEST_DIGEST_BYTES, key + 3);
        rc = lia_nstore_state_get(n->store, key, &v, &vlen);
        if (v) {
            sodium_memzero(v, vlen);
            free(v);
        }
        if (rc == LIA_ERR_NOT_FOUND)
            return 0;
        if (rc != 0)
            return rc;
    }
    if ((rc = get_tx_digest(n, digest, &t)) != 0)
        return rc;
    return tx_roll(n, t, why);
}

/*
 * Applies one change relayed by the broker, inside the group: verified against this node's
 * own registry (never trusted because the broker sent it), stored, and for an added or
 * removed member a new key epoch on the channel. A refused change changes nothing and is
 * logged; an exact replay is ignored. Returns 0 or a storage error (fatal).
 */
static int take_membership(node_t *n, const uint8_t *buf, size_t len)
{
    lia_membership_applied info;
    uint8_t id[LIA_MEMBERSHIP_CHANGE_ID_BYTES];
    char key[LIA_MEMBERSHIP_KEY_MAX];
    int rc;

    rc = lia_membership_apply_ex(n->reg, buf, len, now_ms(), &info);
    if (rc == LIA_ERR_REPLAY) {
        log_debug("membership change already applied: ignored");
        return 0;
    }
    if (rc != 0) {
        log_warn("membership change from the broker refused: %s (nothing changed)",
                 lia_strerror(rc));
        return 0;
    }
    if ((rc = lia_membership_key(info.channel, info.serial, key)) != 0 ||
        (rc = lia_nstore_state_put(n->store, key, buf, len)) != 0)
        return rc;
    log_notice("channel %s: change %llu applied (%s%s%s); epoch %llu, %s", info.channel,
               (unsigned long long)info.serial, action_name(info.action), info.node[0] ? " " : "",
               info.node, (unsigned long long)lia_membership_epoch(n->reg, info.channel),
               lia_membership_is_member(n->reg, info.channel, n->me) ? "this node is a member"
                                                                     : "this node is not a member");
    if ((info.action == LIA_MEMBERSHIP_ADD || info.action == LIA_MEMBERSHIP_REMOVE) &&
        (rc = roll_channel(n, info.channel,
                           info.action == LIA_MEMBERSHIP_ADD ? "member added"
                                                             : "member removed")) != 0)
        return rc;
    lia_membership_change_id(buf, len, id);
    for (size_t i = 0; i < MPUB_MAX; i++)
        if (n->mpub[i].change && sodium_memcmp(n->mpub[i].id, id, sizeof id) == 0)
            n->mpub[i].done = 1;
    return 0;
}

/* Applies the changes taken from the broker this turn, in order (inside the group). */
static int take_memberships(node_t *n)
{
    int rc = 0;

    for (size_t i = 0; i < n->n_mc; i++) {
        if (rc == 0)
            rc = take_membership(n, n->mc[i].data, n->mc[i].len);
        free(n->mc[i].data);
    }
    n->n_mc = 0;
    return rc;
}

/* Restores the registry from the store (each channel verified again, all or nothing). */
static void restore_report(void *arg, const char *channel, size_t n_changes, int rc)
{
    (void)arg;
    if (rc != 0)
        log_err("channel %s: stored membership (%zu changes) does not verify: %s; the channel "
                "is unavailable until the broker sends it again",
                channel, n_changes, lia_strerror(rc));
}

static int restore_membership(node_t *n)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0;
    int rc;

    if ((rc = lia_nstore_state_list(n->store, LIA_MEMBERSHIP_KEY_PREFIX, &kv, &count)) != 0)
        return rc;
    rc = lia_membership_restore_kv(n->reg, kv, count, now_ms(), restore_report, n);
    lia_nstore_kv_free(kv, count);
    return rc;
}

static void send_membership_publish(node_t *n, const struct mpub *p)
{
    Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
    Liaison__V1__MembershipPublish mp = LIAISON__V1__MEMBERSHIP_PUBLISH__INIT;

    mp.change.data = p->change;
    mp.change.len = p->len;
    f.kind_case = LIAISON__V1__FRAME__KIND_MEMBERSHIP_PUBLISH;
    f.membership_publish = &mp;
    if (send_frame(n, &f) != 0)
        log_debug("membership change for %s not sent now; sent again after the next Hello",
                  p->channel);
}

static void mpub_forget(struct mpub *p)
{
    free(p->change);
    memset(p, 0, sizeof *p);
}

/* The operator who asked for p, if still connected (the slot may hold a later connection). */
static lia_ctl_conn_t *mpub_conn(const struct mpub *p)
{
    return p->from && p->from->c && p->from->gen == p->gen ? p->from->c : NULL;
}

/*
 * An operator's change to a channel this node owns: signed here (lia_membership_* checks it
 * exactly as every member will), published, and answered when the broker's echo is applied.
 */
static void handle_channel_change(node_t *n, struct conn *c, Liaison__V1__ControlRequest *req)
{
    const char *channel, *node = NULL;
    lia_membership_action action;
    struct mpub *slot = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t now = now_ms();
    char msg[256];
    int rc;

    switch (req->kind_case) {
    case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_CREATE:
        channel = req->channel_create->channel;
        action = LIA_MEMBERSHIP_CREATE;
        break;
    case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_ADD:
        channel = req->channel_add->channel;
        node = req->channel_add->node;
        action = LIA_MEMBERSHIP_ADD;
        break;
    case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_REMOVE:
        channel = req->channel_remove->channel;
        node = req->channel_remove->node;
        action = LIA_MEMBERSHIP_REMOVE;
        break;
    default:
        channel = req->channel_transfer->channel;
        node = req->channel_transfer->node;
        action = LIA_MEMBERSHIP_TRANSFER;
        break;
    }
    if (!lia_channel_valid(channel)) {
        reply_error(c->c, LIA_ERR_INVALID,
                    "invalid channel name: 1 to 64 of a-z 0-9 . _ : - starting with a letter or "
                    "digit");
        return;
    }
    if (node && !lia_node_id_valid(node)) {
        reply_error(c->c, LIA_ERR_INVALID, "invalid node id");
        return;
    }
    /* The node administrator, or an officer who works on the channel, changes it. */
    if (!c->admin && !officer_may_send(n, c, channel)) {
        (void)refuse_officer(c, channel);
        return;
    }
    for (size_t i = 0; i < MPUB_MAX; i++) {
        if (n->mpub[i].change && strcmp(n->mpub[i].channel, channel) == 0) {
            reply_error(c->c, LIA_ERR_LIMIT,
                        "another change to this channel awaits the broker; retry when it is done");
            return;
        }
        if (!n->mpub[i].change && !slot)
            slot = &n->mpub[i];
    }
    if (!slot) {
        reply_error(c->c, LIA_ERR_LIMIT, "too many membership changes await the broker; retry");
        return;
    }
    if (action == LIA_MEMBERSHIP_CREATE) {
        const Liaison__V1__ChannelCreateRequest *cr = req->channel_create;
        const char **m = calloc(cr->n_members + 1, sizeof *m);
        size_t k = 0;
        if (!m) {
            reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
            return;
        }
        if (lia_membership_owner(n->reg, channel)) {
            free(m);
            reply_error(c->c, LIA_ERR_EXISTS,
                        "the channel already exists (liaison channel members)");
            return;
        }
        m[k++] = n->me;
        for (size_t i = 0; i < cr->n_members; i++) {
            if (!lia_node_id_valid(cr->members[i])) {
                free(m);
                reply_error(c->c, LIA_ERR_INVALID, "invalid member node id");
                return;
            }
            m[k++] = cr->members[i];
        }
        qsort(m, k, sizeof *m, cmp_str);
        size_t u = 0; /* duplicates named once */
        for (size_t i = 0; i < k; i++)
            if (u == 0 || strcmp(m[u - 1], m[i]) != 0)
                m[u++] = m[i];
        rc = lia_membership_create(n->reg, n->id, n->me, channel, m, u, cr->copy_to_hub,
                                   cr->description, now, &buf, &len);
        free(m);
    } else if (action == LIA_MEMBERSHIP_ADD) {
        rc = lia_membership_add(n->reg, n->id, n->me, channel, node, now, &buf, &len);
    } else if (action == LIA_MEMBERSHIP_REMOVE) {
        rc = lia_membership_remove(n->reg, n->id, n->me, channel, node, now, &buf, &len);
    } else {
        rc = lia_membership_transfer(n->reg, n->id, n->me, channel, node, now, &buf, &len);
    }
    if (rc != 0) {
        const char *owner = lia_membership_owner(n->reg, channel);
        switch (rc) {
        case LIA_ERR_NOT_FOUND:
            snprintf(msg, sizeof msg, "unknown channel %s (liaison channel create)", channel);
            break;
        case LIA_ERR_NOT_OWNER:
            snprintf(msg, sizeof msg,
                     owner ? "this node is not the owner of %s (the owner is %s)"
                           : "%s: only a contact point can own a channel%s",
                     channel, owner ? owner : "");
            break;
        case LIA_ERR_MEMBER_STATE:
            snprintf(msg, sizeof msg,
                     action == LIA_MEMBERSHIP_ADD ? "%s is already a member of %s"
                     : action == LIA_MEMBERSHIP_REMOVE
                         ? "%s is not a member of %s (or is its owner: transfer first)"
                         : "%s is not a member of %s (or already its owner)",
                     node ? node : "", channel);
            break;
        case LIA_ERR_UNKNOWN_SENDER:
        case LIA_ERR_EXPIRED:
        case LIA_ERR_REVOKED:
            snprintf(msg, sizeof msg,
                     "a node named has no valid certificate in the certs "
                     "directory: %s",
                     lia_strerror(rc));
            break;
        default:
            snprintf(msg, sizeof msg, "the change cannot be made: %s", lia_strerror(rc));
            break;
        }
        reply_error(c->c, rc, msg);
        return;
    }
    slot->from = c;
    slot->gen = c->gen;
    slot->change = buf;
    slot->len = len;
    lia_membership_change_id(buf, len, slot->id);
    snprintf(slot->channel, sizeof slot->channel, "%s", channel);
    slot->deadline_ms = now + MPUB_TIMEOUT_MS;
    slot->action = action;
    snprintf(slot->node, sizeof slot->node, "%s", node ? node : "");
    slot->serial = lia_membership_serial(n->reg, channel) + 1;
    slot->done = 0;
    log_info("channel %s: %s%s%s signed; published to the broker", channel, action_name(action),
             node ? " " : "", node ? node : "");
    send_membership_publish(n, slot);
}

/* After the commit: answers the operators whose changes were applied in the group. */
static void answer_mpubs(node_t *n)
{
    for (size_t i = 0; i < MPUB_MAX; i++) {
        struct mpub *p = &n->mpub[i];
        lia_ctl_conn_t *cc;
        Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
        Liaison__V1__ChannelChangeReply cr = LIAISON__V1__CHANNEL_CHANGE_REPLY__INIT;
        if (!p->change || !p->done)
            continue;
        if ((cc = mpub_conn(p)) != NULL) {
            cr.channel = p->channel;
            cr.serial = p->serial;
            cr.epoch = lia_membership_epoch(n->reg, p->channel);
            cr.action = (char *)action_name(p->action);
            cr.node = p->node;
            r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_CHANGE;
            r.channel_change = &cr;
            (void)reply(cc, &r);
        }
        mpub_forget(p);
    }
}

/* A refusal from the broker (Error with a change id), or the time limit. */
static void fail_mpub(node_t *n, const uint8_t *id, size_t id_len, int code, const char *reason)
{
    for (size_t i = 0; i < MPUB_MAX; i++) {
        struct mpub *p = &n->mpub[i];
        char msg[400];
        lia_ctl_conn_t *cc;
        if (!p->change || id_len != LIA_MEMBERSHIP_CHANGE_ID_BYTES ||
            sodium_memcmp(p->id, id, id_len) != 0)
            continue;
        log_warn("channel %s: the broker refused our change: %s", p->channel, reason);
        if ((cc = mpub_conn(p)) != NULL) {
            snprintf(msg, sizeof msg, "the broker refused the change: %.256s", reason);
            reply_error(cc, code, msg);
        }
        mpub_forget(p);
    }
}

static void expire_mpubs(node_t *n, uint64_t now)
{
    for (size_t i = 0; i < MPUB_MAX; i++) {
        struct mpub *p = &n->mpub[i];
        lia_ctl_conn_t *cc;
        if (!p->change || p->done || now < p->deadline_ms)
            continue;
        log_warn("channel %s: the broker did not confirm our change in time", p->channel);
        if ((cc = mpub_conn(p)) != NULL)
            reply_error(cc, LIA_ERR_PROTOCOL,
                        "the broker did not confirm the change in time (is it reachable? see "
                        "liaison status); it may still take effect: check liaison channel "
                        "history before trying again");
        mpub_forget(p);
    }
}

static void handle_channel_members(node_t *n, struct conn *c, const char *channel)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__ChannelMembersReply m = LIAISON__V1__CHANNEL_MEMBERS_REPLY__INIT;
    const char *const *members;
    size_t nm;

    if (!lia_channel_valid(channel)) {
        reply_error(c->c, LIA_ERR_INVALID, "invalid channel name");
        return;
    }
    if (!c->admin && !officer_may_read(n, c, channel)) { /* members are case metadata */
        (void)refuse_officer(c, channel);
        return;
    }
    if (!(members = lia_membership_members(n->reg, channel, &nm))) {
        reply_error(c->c, LIA_ERR_NOT_FOUND,
                    "unknown channel: not created, or this node never was one of its members");
        return;
    }
    m.channel = (char *)channel;
    m.owner = (char *)lia_membership_owner(n->reg, channel);
    m.n_members = nm;
    m.members = (char **)members;
    m.epoch = lia_membership_epoch(n->reg, channel);
    m.serial = lia_membership_serial(n->reg, channel);
    m.copy_to_hub = lia_membership_copy_to_hub(n->reg, channel) != 0;
    m.member = lia_membership_is_member(n->reg, channel, n->me) != 0;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_MEMBERS;
    r.channel_members = &m;
    (void)reply(c->c, &r);
}

struct history {
    Liaison__V1__ChannelEvent *ev;
    Liaison__V1__ChannelEvent **evp;
    size_t n, cap;
};

static int history_event(void *arg, const lia_membership_event *e)
{
    struct history *h = arg;
    Liaison__V1__ChannelEvent *ce;

    if (h->n == h->cap)
        return LIA_ERR_LIMIT;
    ce = &h->ev[h->n];
    liaison__v1__channel_event__init(ce);
    ce->serial = e->serial;
    ce->action = (char *)action_name(e->action);
    ce->node = (char *)e->node;
    ce->signer = (char *)e->signer;
    ce->created_at_ms = e->created_at_ms;
    ce->epoch = e->epoch;
    ce->n_members = e->n_members;
    ce->members = (char **)e->members;
    ce->hash.len = LIA_MEMBERSHIP_HASH_BYTES; /* e->hash lives in the event: copied */
    if (!(ce->hash.data = malloc(LIA_MEMBERSHIP_HASH_BYTES)))
        return LIA_ERR_NOMEM;
    memcpy(ce->hash.data, e->hash, LIA_MEMBERSHIP_HASH_BYTES);
    h->evp[h->n] = ce;
    h->n++;
    return 0;
}

static void handle_channel_history(node_t *n, struct conn *c, const char *channel)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__ChannelHistoryReply hr = LIAISON__V1__CHANNEL_HISTORY_REPLY__INIT;
    struct history h = {NULL, NULL, 0, 0};
    int rc;

    if (!lia_channel_valid(channel)) {
        reply_error(c->c, LIA_ERR_INVALID, "invalid channel name");
        return;
    }
    if (!c->admin && !officer_may_read(n, c, channel)) {
        (void)refuse_officer(c, channel);
        return;
    }
    if (!lia_membership_owner(n->reg, channel)) {
        reply_error(c->c, LIA_ERR_NOT_FOUND,
                    "unknown channel: not created, or this node never was one of its members");
        return;
    }
    h.cap = (size_t)lia_membership_serial(n->reg, channel);
    h.ev = calloc(h.cap ? h.cap : 1, sizeof *h.ev);
    h.evp = calloc(h.cap ? h.cap : 1, sizeof *h.evp);
    if (!h.ev || !h.evp) {
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = lia_membership_history(n->reg, channel, history_event, &h)) != 0) {
        reply_error(c->c, rc, lia_strerror(rc));
        goto done;
    }
    hr.channel = (char *)channel;
    hr.n_events = h.n;
    hr.events = h.evp;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_HISTORY;
    r.channel_history = &hr;
    (void)reply(c->c, &r);
done:
    for (size_t i = 0; i < h.n; i++)
        free(h.ev[i].hash.data);
    free(h.ev);
    free(h.evp);
}

/* ---------------- deliveries ---------------- */

struct delivery {
    uint64_t seq;
    uint8_t *env;
    size_t len;
};

/* Opens and stores one delivery inside the current group. */
static int take_delivery(node_t *n, const struct delivery *d)
{
    lia_opened *m = NULL;
    lia_nstore_msg msg;
    int rc;

    if (d->seq <= n->cursor)
        return 0; /* already stored: a resend after a reconnect */
    if (d->seq != n->cursor + 1)
        log_warn("delivery %llu after %llu: the broker skipped deliveries",
                 (unsigned long long)d->seq, (unsigned long long)n->cursor);
    rc = lia_opener_open(n->opener, d->env, d->len, now_ms(), &m);
    if (rc != 0) {
        /* Reported, never silently dropped: the log names the reason, the store keeps it. */
        lia_envelope_meta *meta = NULL;
        if (lia_envelope_inspect(d->env, d->len, &meta) == 0) {
            log_warn("delivery %llu from %s (seq %llu) refused: %s", (unsigned long long)d->seq,
                     meta->sender, (unsigned long long)meta->seq, lia_strerror(rc));
            lia_envelope_meta_free(&meta);
        } else {
            log_warn("delivery %llu refused: %s", (unsigned long long)d->seq, lia_strerror(rc));
        }
        n->refused++;
        if ((rc = lia_nstore_inbox_refused(n->store, d->seq, lia_errname(rc))) != 0)
            return rc;
        n->cursor = d->seq;
        return 0;
    }
    memset(&msg, 0, sizeof msg);
    msg.delivery_seq = d->seq;
    strcpy(msg.sender, m->sender);
    strcpy(msg.channel, m->channel);
    msg.sender_seq = m->seq;
    msg.created_at_ms = m->created_at_ms;
    msg.received_at_ms = now_ms();
    memcpy(msg.message_id, m->message_id, LIA_MESSAGE_ID_BYTES);
    msg.payload = m->payload;
    msg.payload_len = m->payload_len;
    /* A hub indexes the message in the same group that stores it: index and inbox commit
     * together or not at all. */
    if ((rc = lia_nstore_inbox_add(n->store, &msg)) == 0 && (rc = save_rx(n, m)) == 0 &&
        (!n->hub || (rc = lia_hub_index(n->store, d->seq, msg.payload, msg.payload_len)) == 0)) {
        n->cursor = d->seq;
        recent_add(n, &msg); /* the plaintext moves to the followers' ring */
        m->payload = NULL;
    }
    lia_opened_free(&m);
    return rc;
}

/* ---------------- hub: search and export ---------------- */

/* Adds count terms of one kind to q; 0, or an error already reported to the client. */
static int hub_terms_in(node_t *n, struct conn *c, lia_nstore_hub_query *q, lia_hub_kind kind,
                        char **terms, size_t count)
{
    char msg[160];
    int rc;

    for (size_t i = 0; i < count; i++) {
        if ((rc = lia_hub_query_add(n->store, q, kind, terms[i])) == 0)
            continue;
        if (rc == LIA_ERR_LIMIT)
            snprintf(msg, sizeof msg, "at most %d entity terms in one search",
                     LIA_HUB_QUERY_TERMS_MAX);
        else if (rc == LIA_ERR_INVALID || rc == LIA_ERR_TOO_LARGE)
            snprintf(msg, sizeof msg, "a %s term is empty, too long or not valid text",
                     lia_hub_kind_name(kind));
        else
            snprintf(msg, sizeof msg, "%s", lia_strerror(rc));
        reply_error(c->c, rc, msg);
        return rc;
    }
    return 0;
}

/*
 * Checks a search or export request and turns it into a store query (terms become tokens
 * under the storage key). Returns 0, or an error already reported to the client.
 */
static int hub_query_of(node_t *n, struct conn *c, const Liaison__V1__SearchRequest *sr,
                        lia_nstore_hub_query *q)
{
    int rc;

    memset(q, 0, sizeof *q);
    if (!n->hub) {
        reply_error(c->c, LIA_ERR_CONFIG,
                    "this node is not a hub: it keeps no search index (give it a hub "
                    "certificate, or set 'hub yes' in its configuration and restart it)");
        return LIA_ERR_CONFIG;
    }
    if (c->x.active) {
        reply_error(c->c, LIA_ERR_LIMIT, "an export is still running on this connection");
        return LIA_ERR_LIMIT;
    }
    /* The officer boundary holds at a hub too: only what the officer may read is searched. */
    if (!c->officer)
        return refuse_officer(c, NULL);
    if (sr->channel[0] && lia_channel_valid(sr->channel) && !officer_may_read(n, c, sr->channel))
        return refuse_officer(c, sr->channel);
    if (sr->direct_only && !sr->channel[0] && !officer_may_read(n, c, ""))
        return refuse_officer(c, "");
    if (sr->sender[0] && !lia_node_id_valid(sr->sender)) {
        reply_error(c->c, LIA_ERR_INVALID, "invalid sender node id");
        return LIA_ERR_INVALID;
    }
    if (sr->channel[0] && (!lia_channel_valid(sr->channel) || sr->direct_only)) {
        reply_error(c->c, LIA_ERR_INVALID,
                    sr->direct_only ? "a channel and direct messages only exclude each other"
                                    : "invalid channel name");
        return LIA_ERR_INVALID;
    }
    if (sr->since_ms > INT64_MAX || sr->until_ms > INT64_MAX || sr->after > INT64_MAX ||
        (sr->until_ms && sr->until_ms <= sr->since_ms)) {
        reply_error(c->c, LIA_ERR_INVALID, "empty or invalid time range");
        return LIA_ERR_INVALID;
    }
    if ((rc = hub_terms_in(n, c, q, LIA_HUB_CASE, sr->case_refs, sr->n_case_refs)) != 0 ||
        (rc = hub_terms_in(n, c, q, LIA_HUB_PERSON, sr->persons, sr->n_persons)) != 0 ||
        (rc = hub_terms_in(n, c, q, LIA_HUB_DOCUMENT, sr->documents, sr->n_documents)) != 0 ||
        (rc = hub_terms_in(n, c, q, LIA_HUB_VEHICLE, sr->vehicles, sr->n_vehicles)) != 0 ||
        (rc = hub_terms_in(n, c, q, LIA_HUB_PLACE, sr->places, sr->n_places)) != 0 ||
        (rc = hub_terms_in(n, c, q, LIA_HUB_OFFICER, sr->officers, sr->n_officers)) != 0)
        return rc;
    snprintf(q->sender, sizeof q->sender, "%s", sr->sender);
    snprintf(q->channel, sizeof q->channel, "%s", sr->channel);
    q->by_channel = sr->channel[0] || sr->direct_only;
    q->since_ms = sr->since_ms;
    q->until_ms = sr->until_ms;
    return 0;
}

static int fetch_hub(node_t *n, const void *q, uint64_t after, size_t max, lia_nstore_msg *out,
                     size_t *got)
{
    return only_durable(n, lia_nstore_hub_search(n->store, q, after, max, out, got), out, got);
}

/* Matches of q after `after` that c's officer may read, through fetch_readable. */
static int hub_search_readable(node_t *n, const struct conn *c, const lia_nstore_hub_query *q,
                               uint64_t after, size_t max, lia_nstore_msg *out, size_t *got,
                               uint64_t *scanned, int *more)
{
    return fetch_readable(n, c, fetch_hub, q, officer_sees_all(n, c), after, max, out, got, scanned,
                          more);
}

/* One page of matches (SearchReply). */
static void handle_search(node_t *n, struct conn *c, const Liaison__V1__SearchRequest *sr)
{
    Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__SearchReply sp = LIAISON__V1__SEARCH_REPLY__INIT;
    size_t max = sr->max == 0 ? 100 : sr->max > 10000 ? 10000 : sr->max, got = 0;
    lia_nstore_msg *msgs = NULL;
    Liaison__V1__InboxMessage *im = NULL, **imp = NULL;
    lia_nstore_hub_query q;
    uint64_t scanned;
    int rc, more = 0;

    if (hub_query_of(n, c, sr, &q) != 0)
        return;
    msgs = calloc(max, sizeof *msgs);
    im = calloc(max, sizeof *im);
    imp = calloc(max, sizeof *imp);
    if (!msgs || !im || !imp) {
        reply_error(c->c, LIA_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = hub_search_readable(n, c, &q, sr->after, max, msgs, &got, &scanned, &more)) != 0) {
        reply_error(c->c, rc, lia_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < got; i++) {
        msg_to_proto(&msgs[i], &im[i]);
        imp[i] = &im[i];
    }
    sp.n_messages = got;
    sp.messages = imp;
    sp.more = more;
    r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_SEARCH;
    r.search = &sp;
    (void)reply(c->c, &r);
done:
    lia_nstore_msgs_free(msgs, got);
    free(msgs);
    free(im);
    free(imp);
    sodium_memzero(&q, sizeof q);
}

/*
 * Sends an export's next matches while the client keeps up (at most FOLLOW_QUEUED_MAX bytes
 * queued), and ExportEnd after the last. 0, or an error to drop the connection.
 */
static int feed_export(node_t *n, struct conn *c)
{
    lia_nstore_msg msgs[FOLLOW_BATCH];
    size_t got, sent;
    uint64_t scanned;
    int rc, more;

    while (c->x.active) {
        if (lia_ctl_pending(c->c) > FOLLOW_QUEUED_MAX)
            return 0;
        if ((rc = hub_search_readable(n, c, &c->x.q, c->x.after, FOLLOW_BATCH, msgs, &got, &scanned,
                                      &more)) != 0)
            return rc;
        /* Large messages: stop within the batch once enough is queued (the rest is fetched
         * again after x.after), so the queue stays far below its bound. */
        sent = 0;
        while (sent < got && lia_ctl_pending(c->c) <= FOLLOW_QUEUED_MAX) {
            Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
            Liaison__V1__InboxMessage im;
            msg_to_proto(&msgs[sent], &im);
            r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE;
            r.message = &im;
            if ((rc = reply(c->c, &r)) != 0) {
                lia_nstore_msgs_free(msgs, got);
                return rc;
            }
            c->x.after = msgs[sent].delivery_seq;
            c->x.count++;
            sent++;
        }
        lia_nstore_msgs_free(msgs, got);
        if (sent < got)
            return 0;
        c->x.after = scanned; /* past the matches this officer may not read */
        if (!more) {
            Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
            Liaison__V1__ExportEnd e = LIAISON__V1__EXPORT_END__INIT;
            e.count = c->x.count;
            r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_EXPORT_END;
            r.export_end = &e;
            sodium_memzero(&c->x, sizeof c->x);
            return reply(c->c, &r);
        }
    }
    return 0;
}

/* Starts an export and sends what the client can take now; 0, or an error to drop it. */
static int start_export(node_t *n, struct conn *c, const Liaison__V1__SearchRequest *sr)
{
    lia_nstore_hub_query q;

    if (hub_query_of(n, c, sr, &q) != 0)
        return 0; /* refused with a reply; the connection stays */
    c->x.q = q;
    c->x.after = sr->after;
    c->x.count = 0;
    c->x.active = 1;
    sodium_memzero(&q, sizeof q);
    return feed_export(n, c);
}

/* ---------------- the loop ---------------- */

static struct conn *free_conn(node_t *n)
{
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (!n->conns[i].c)
            return &n->conns[i];
    return NULL;
}

static void drop_conn(struct conn *c)
{
    lia_ctl_conn_destroy(&c->c);
    memset(c, 0, sizeof *c);
}

/*
 * Hands queued replies to the clients whose sockets take them, without waiting, in the middle
 * of a long turn. A socket buffer holds a few hundred messages and the loop flushes once per
 * turn, so a follower fed only then sat idle for most of a turn of a thousand deliveries, fell
 * behind the kept messages and was fed from the store (41,472 of 50,000 messages read back and
 * decrypted in bench/cpu.sh).
 */
static void flush_clients(node_t *n)
{
    for (size_t i = 0; i < MAX_CONNS; i++) {
        struct conn *cc = &n->conns[i];
        if (cc->c && lia_ctl_pending(cc->c) && lia_ctl_flush(cc->c) != 0 &&
            lia_ctl_conn_fd(cc->c) < 0)
            drop_conn(cc);
    }
}

/* Reads requests from control connections; sends are queued, the rest answered now. */
static void serve_control(node_t *n, struct pending_send *sends, size_t *n_sends, size_t max_sends)
{
    for (;;) {
        lia_ctl_conn_t *cc = NULL;
        struct conn *slot;
        int rc = lia_ctl_accept(n->ctl, &cc);
        if (rc == LIA_ERR_LIMIT)
            break;
        if (rc != 0) {
            log_warn("control: connection refused: %s", lia_strerror(rc));
            continue;
        }
        if (!(slot = free_conn(n))) {
            log_warn("control: too many connections");
            lia_ctl_conn_destroy(&cc);
            continue;
        }
        slot->c = cc;
        slot->gen = ++n->conn_gen;
        account_name(lia_ctl_conn_uid(cc), slot->account, sizeof slot->account);
        slot->officer = lia_officers_by_uid(n->officers, lia_ctl_conn_uid(cc));
        slot->admin = lia_ctl_conn_uid(cc) == geteuid() || lia_ctl_conn_uid(cc) == 0;
    }
    for (size_t i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &n->conns[i];
        while (c->c && *n_sends < max_sends) {
            uint8_t *data = NULL;
            size_t len = 0;
            Liaison__V1__ControlRequest *req;
            int rc = lia_ctl_read(c->c, &data, &len);
            if (rc == LIA_ERR_LIMIT)
                break;
            if (rc != 0) {
                drop_conn(c);
                break;
            }
            req = liaison__v1__control_request__unpack(NULL, len, data);
            free(data);
            if (!req || req->base.n_unknown_fields) {
                reply_error(c->c, LIA_ERR_DECODE, "malformed request");
                if (req)
                    liaison__v1__control_request__free_unpacked(req, NULL);
                drop_conn(c);
                break;
            }
            switch (req->kind_case) {
            case LIAISON__V1__CONTROL_REQUEST__KIND_SEND:
                if (prepare_send(n, c, req->send, &sends[*n_sends]) == 0)
                    (*n_sends)++;
                else
                    free_send(&sends[*n_sends]);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_LIST:
                handle_list(n, c, req->list);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_STATUS:
                handle_status(n, c);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_CREATE:
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_ADD:
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_REMOVE:
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_TRANSFER:
                handle_channel_change(n, c, req);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_MEMBERS:
                handle_channel_members(n, c, req->channel_members->channel);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_HISTORY:
                handle_channel_history(n, c, req->channel_history->channel);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_LIST:
                handle_officer_list(n, c);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_ASSIGN:
                handle_officer_assign(n, c, req->officer_assign, 1);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_UNASSIGN:
                handle_officer_assign(n, c, req->officer_unassign, 0);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_SEARCH:
                handle_search(n, c, req->search);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_EXPORT:
                if (start_export(n, c, req->export) != 0)
                    drop_conn(c);
                break;
            case LIAISON__V1__CONTROL_REQUEST__KIND_FOLLOW:
                if (req->follow->channel[0] && !lia_channel_valid(req->follow->channel)) {
                    reply_error(c->c, LIA_ERR_INVALID, "invalid channel name");
                    break;
                }
                if (!c->officer ||
                    (req->follow->channel[0] && !officer_may_read(n, c, req->follow->channel))) {
                    (void)refuse_officer(c, req->follow->channel);
                    break;
                }
                c->following = 1;
                c->f.conn = c->c;
                c->f.owner = c;
                strcpy(c->f.channel, req->follow->channel);
                c->f.after = req->follow->after;
                if (feed_follower(n, &c->f) != 0)
                    drop_conn(c);
                break;
            default:
                reply_error(c->c, LIA_ERR_INVALID, "unknown request");
                break;
            }
            liaison__v1__control_request__free_unpacked(req, NULL);
        }
    }
}

/* Hub role at start: the index exists, and holds every message stored before (received while
 * the node was not a hub, or before it had an index), before anything new arrives. */
static int hub_open(node_t *n)
{
    uint64_t count = 0;
    int rc;

    if ((rc = lia_nstore_hub_enable(n->store)) != 0 ||
        (rc = lia_hub_catch_up(n->store, &count)) != 0) {
        log_err("%s: cannot prepare the hub index: %s", n->store_path, lia_strerror(rc));
        return rc;
    }
    log_notice("hub: every received message is indexed for search and export");
    if (count)
        log_notice("hub: indexed %llu messages stored earlier", (unsigned long long)count);
    return 0;
}

static int open_all(node_t *n)
{
    lia_transport_opts o = {0};
    int rc;

    if ((rc = lia_identity_storage_key(n->id, &n->storage_key)) != 0 ||
        (rc = lia_nstore_open(n->store_path, n->storage_key, &n->store)) != 0) {
        log_err("%s: %s", n->store_path, lia_strerror(rc));
        return rc;
    }
    if (n->hub && (rc = hub_open(n)) != 0)
        return rc;
    if ((rc = lia_map_new(LIA_DEST_DIGEST_BYTES, free_tx, &n->tx)) != 0 ||
        (rc = lia_opener_new(n->trust, n->id, n->me, &n->opener)) != 0)
        return rc;
    /* Deliveries are checked against this node's own view of membership. */
    lia_opener_set_membership(n->opener, lia_membership_is_member, n->reg);
    if ((rc = restore_membership(n)) != 0) {
        log_err("%s: cannot restore channel membership: %s", n->store_path, lia_strerror(rc));
        return rc;
    }
    if ((rc = restore_rx(n)) != 0) {
        log_err("%s: cannot restore the receive state: %s", n->store_path, lia_strerror(rc));
        return rc;
    }
    if ((rc = restore_crl(n)) != 0)
        return rc;
    if ((rc = lia_nstore_cursor(n->store, &n->cursor)) != 0)
        return rc;
    if ((rc = restore_officers(n)) != 0) {
        log_err("%s: cannot restore the officers' assignments: %s", n->store_path,
                lia_strerror(rc));
        return rc;
    }
    {
        /* Admitted on the socket: the configured uids, every officer's, and root (the node
         * administrator; it can read the store and keys anyway). */
        size_t no = lia_officers_count(n->officers), k = 0;
        uid_t *allowed = calloc(n->n_allowed + no + 1, sizeof *allowed);
        if (!allowed)
            return LIA_ERR_NOMEM;
        for (size_t i = 0; i < n->n_allowed; i++)
            allowed[k++] = n->allowed[i];
        for (size_t i = 0; i < no; i++)
            allowed[k++] = lia_officers_uid(n->officers, i);
        allowed[k++] = 0;
        rc = lia_ctl_listen(n->control_path, allowed, k, &n->ctl);
        free(allowed);
    }
    if (rc != 0) {
        log_err("%s: cannot listen: %s", n->control_path, lia_strerror(rc));
        return rc;
    }
    o.max_msg = n->frame_max; /* a revocation list may be larger than max-message-bytes */
    o.sndhwm = o.rcvhwm = 2 * n->window + 1024;
    o.heartbeat_ivl_ms = (int)n->heartbeat_ms;
    o.heartbeat_timeout_ms = (int)n->heartbeat_timeout_ms;
    if ((rc = lia_client_new(n->id, n->broker_ep, n->broker_cert.transport_pk, &o, &n->client)) !=
        0) {
        log_err("%s: %s", n->broker_ep, lia_strerror(rc));
        return rc;
    }
    return 0;
}

/*
 * After a group's fsync: tells everyone what it changed, in the order the group made it: the
 * operators whose channel changes it applied, the senders (and the broker: their envelopes,
 * published from memory while nothing older waits in the outbox), the broker's deliveries
 * (DeliverAck) and the followers. next_first is the first outbox id of a group committed after
 * t and not yet durable (0 if none). Returns 1 if there is more to do without waiting.
 */
static int finish_turn(node_t *n, struct turn *t, uint64_t next_first)
{
    static uint8_t *fresh_env[BURST];
    static size_t fresh_len[BURST];
    static uint64_t fresh_id[BURST];
    size_t n_fresh_env = 0;
    int busy = 0;

    n->shown = t->cursor;
    n->unsynced_from = next_first;
    answer_mpubs(n);
    for (size_t i = 0; i < t->n_sends; i++) {
        struct pending_send *s = &t->sends[i];
        Liaison__V1__ControlReply r = LIAISON__V1__CONTROL_REPLY__INIT;
        Liaison__V1__SendReply sr = LIAISON__V1__SEND_REPLY__INIT;
        if (!s->env.data)
            continue;
        sr.message_id.data = s->message_id;
        sr.message_id.len = LIA_MESSAGE_ID_BYTES;
        sr.outbox_id = s->outbox_id;
        r.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_SEND;
        r.send = &sr;
        if (s->from->c && s->from->gen == s->from_gen)
            (void)reply(s->from->c, &r);
        fresh_env[n_fresh_env] = s->env.data;
        fresh_len[n_fresh_env] = s->env.len;
        fresh_id[n_fresh_env++] = s->outbox_id;
    }
    /* In outbox order: straight from memory while nothing older waits, otherwise
     * pump_outbox takes them from the store after the older ones. */
    if (n_fresh_env) {
        size_t sent = n->pub_more ? 0 : publish_run(n, fresh_env, fresh_len, n_fresh_env);
        if (n->outbox_idle) { /* the first publish since the outbox was last seen empty */
            n->outbox_idle = 0;
            n->last_progress_ms = now_ms();
        }
        if (sent > 0)
            n->pub_after = fresh_id[sent - 1];
        if (sent < n_fresh_env)
            n->pub_more = 1;
    }
    for (size_t i = 0; i < t->n_sends; i++)
        free_send(&t->sends[i]);
    t->n_sends = 0;
    /* After a send the transport's descriptor needs a drain before the next wait. */
    if (t->need_resync) {
        resync(n);
        busy = 1;
    } else if (n->pub_more && pump_outbox(n, n->window) > 0) {
        busy = 1;
    }
    if (t->n_acked)
        n->last_progress_ms = now_ms();
    if (t->had_dels) { /* only deliveries move the cursor */
        Liaison__V1__Frame f = LIAISON__V1__FRAME__INIT;
        Liaison__V1__DeliverAck da = LIAISON__V1__DELIVER_ACK__INIT;
        da.delivery_seq = t->cursor;
        f.kind_case = LIAISON__V1__FRAME__KIND_DELIVER_ACK;
        f.deliver_ack = &da;
        (void)send_frame(n, &f);
        for (size_t i = 0; i < MAX_CONNS; i++)
            if (n->conns[i].c && n->conns[i].following && feed_follower(n, &n->conns[i].f) != 0)
                drop_conn(&n->conns[i]);
        recent_trim(n);
    }
    flush_clients(n);
    return busy;
}

static struct turn *turn_at(struct pipeline *pl, size_t i)
{
    return &pl->turns[(pl->head + i) % TURNS];
}

/* The first outbox id written by the committed groups from index i on (0 if none): what is not
 * durable yet, or not yet finished, and so must not be published from the store. */
static uint64_t first_outbox_from(struct pipeline *pl, size_t i)
{
    for (; i < pl->n_sync + pl->n_wait; i++)
        if (turn_at(pl, i)->outbox_first)
            return turn_at(pl, i)->outbox_first;
    return 0;
}

/* Starts the sync of every committed group that waits for one (none may be running). */
static void start_sync(node_t *n, struct pipeline *pl)
{
    if (pl->n_wait == 0)
        return;
    if (lia_nstore_sync_start(n->store) != 0)
        fatal(EX_IOERR, "%s: cannot sync; stopping", n->store_path);
    pl->n_sync = pl->n_wait;
    pl->n_wait = 0;
}

/* Waits for the running sync (the store's failure stops the daemon: nothing that depends on
 * the groups left the process), finishes the groups it covers, in order, and starts the sync
 * of those committed meanwhile. Returns 1 if there is more to do without waiting. */
static int settle(node_t *n, struct pipeline *pl)
{
    int busy = 0;
    if (pl->n_sync == 0)
        return 0;
    if (lia_nstore_sync_wait(n->store) != 0)
        fatal(EX_IOERR, "%s: durable commit failed; stopping (nothing unsaved was acknowledged)",
              n->store_path);
    for (size_t i = 0; i < pl->n_sync; i++)
        busy |= finish_turn(n, turn_at(pl, i), first_outbox_from(pl, i + 1));
    pl->head = (pl->head + pl->n_sync) % TURNS;
    pl->n_sync = 0;
    start_sync(n, pl);
    return busy;
}

/* Settles until no committed group waits: everything this node said is durable. */
static int settle_all(node_t *n, struct pipeline *pl)
{
    int busy = 0;
    while (pl->n_sync > 0)
        busy |= settle(n, pl);
    return busy;
}

/*
 * The loop, one turn at a time: read what the control clients and the broker sent, apply it
 * in one group (membership changes, sealing the sends into the outbox, the broker's
 * acknowledgements, the deliveries into the inbox), commit, and tell everyone once the group
 * is durable. The fsync runs on the store's thread while the next turns read, apply and commit
 * their inputs (struct pipeline), so a node spends its 4 ms per sync working; nothing a group
 * changed leaves the process before a sync that covers it returned (finish_turn).
 */
int node_run(node_t *n)
{
    static struct pipeline pl; /* one loop per process */
    struct delivery *dels = NULL;
    uint8_t(*acked)[LIA_MESSAGE_ID_BYTES] = NULL;
    struct sigaction sa;
    int rc, status = EX_OK;

    memset(&pl, 0, sizeof pl);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        fatal(EX_OSERR, "sigaction failed");
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        fatal(EX_OSERR, "sigaction failed");
    signal(SIGPIPE, SIG_IGN);
    if ((rc = open_all(n)) != 0)
        return lia_err_exit(rc);
    n->shown = n->recent_from = n->cursor;
    for (size_t k = 0; k < TURNS; k++)
        if (!(pl.turns[k].sends = calloc(BURST, sizeof *pl.turns[k].sends)))
            return EX_OSERR;
    dels = calloc(BURST, sizeof *dels);
    acked = calloc(ACKED_MAX, sizeof *acked);
    if (!dels || !acked)
        return EX_OSERR;
    log_notice("node %s: broker %s, cursor %llu", n->me, n->broker_ep,
               (unsigned long long)n->cursor);
    resync(n);
    n->last_progress_ms = n->last_heartbeat_ms = now_ms();
    int busy = 1;

    while (!stop_requested) {
        struct pollfd pfd[3 + MAX_CONNS];
        struct turn *t = turn_at(&pl, pl.n_sync + pl.n_wait); /* the group being read */
        size_t nfds = 0, n_dels = 0, sync_ix = 0;
        int group = 0;
        uint64_t now;

        if (reload_requested) {
            reload_requested = 0;
            busy |= settle_all(n, &pl);
            node_reload(n);
        }

        /* The transport's descriptor is edge-like: after any send, or a drain cut short,
         * look again without blocking. */
        pfd[nfds++] = (struct pollfd){lia_client_fd(n->client), POLLIN, 0};
        pfd[nfds++] = (struct pollfd){lia_ctl_server_fd(n->ctl), POLLIN, 0};
        for (size_t i = 0; i < MAX_CONNS; i++)
            if (n->conns[i].c)
                pfd[nfds++] = (struct pollfd){
                    lia_ctl_conn_fd(n->conns[i].c),
                    (short)(POLLIN | (lia_ctl_pending(n->conns[i].c) ? POLLOUT : 0)), 0};
        if (pl.n_sync) {
            sync_ix = nfds;
            pfd[nfds++] = (struct pollfd){lia_nstore_sync_fd(n->store), POLLIN, 0};
        }
        if (poll(pfd, nfds, busy ? 0 : (int)n->heartbeat_ms) < 0 && errno != EINTR)
            log_warn_errno("poll");
        busy = 0;
        /* The groups the sync covered are durable: tell everyone before reading more. */
        if (pl.n_sync && (pfd[sync_ix].revents & (POLLIN | POLLHUP | POLLERR)))
            busy |= settle(n, &pl);
        /* Queued replies go out as the clients read them; lagging followers catch up. */
        flush_clients(n);
        for (size_t i = 0; i < MAX_CONNS; i++) {
            struct conn *cc = &n->conns[i];
            if (!cc->c)
                continue;
            if (cc->following && cc->f.after < n->shown && feed_follower(n, &cc->f) != 0)
                drop_conn(cc);
            if (cc->c && cc->x.active && feed_export(n, cc) != 0)
                drop_conn(cc);
        }
        t->n_sends = t->n_acked = 0;
        t->had_dels = t->need_resync = 0;
        t->outbox_first = 0;
        serve_control(n, t->sends, &t->n_sends, BURST);
        /* Broker frames: drain what is there. */
        while (n_dels + DELIVER_BATCH_MAX <= BURST && t->n_acked + 1024 <= ACKED_MAX &&
               n->n_mc + 1024 <= MC_MAX) {
            uint8_t *data = NULL;
            size_t len = 0;
            Liaison__V1__Frame *f;
            if (lia_client_recv(n->client, 0, &data, &len) != 0)
                break;
            n->last_broker_ms = now_ms();
            /* Bounded before decoding; only a revocation list or a membership update may
             * exceed max-message-bytes. */
            f = len <= n->frame_max ? liaison__v1__frame__unpack(NULL, len, data) : NULL;
            if (!f || f->base.n_unknown_fields ||
                (f->kind_case != LIAISON__V1__FRAME__KIND_REVOCATION &&
                 f->kind_case != LIAISON__V1__FRAME__KIND_MEMBERSHIP_UPDATE &&
                 len > n->max_msg + FRAME_SLACK) ||
                (f->kind_case == LIAISON__V1__FRAME__KIND_MEMBERSHIP_UPDATE &&
                 len > LIA_MEMBERSHIP_UPDATE_MAX + FRAME_SLACK && len > n->max_msg + FRAME_SLACK)) {
                log_warn("broker sent a malformed or oversized frame (%zu bytes)", len);
                free(data);
                if (f)
                    liaison__v1__frame__free_unpacked(f, NULL);
                continue;
            }
            free(data);
            switch (f->kind_case) {
            case LIAISON__V1__FRAME__KIND_REVOCATION:
                /* Applied at once, before the deliveries that follow it are opened. */
                (void)take_crl(n, f->revocation->crl.data, f->revocation->crl.len, "the broker", 0);
                break;
            case LIAISON__V1__FRAME__KIND_PUBLISH_ACK:
                for (size_t i = 0; i < f->publish_ack->n_message_ids && t->n_acked < ACKED_MAX; i++)
                    if (f->publish_ack->message_ids[i].len == LIA_MESSAGE_ID_BYTES)
                        memcpy(acked[t->n_acked++], f->publish_ack->message_ids[i].data,
                               LIA_MESSAGE_ID_BYTES);
                break;
            case LIAISON__V1__FRAME__KIND_DELIVER:
                if (f->deliver->n_envelopes > DELIVER_BATCH_MAX) {
                    log_warn("broker sent a Deliver with %zu envelopes; ignored",
                             f->deliver->n_envelopes);
                    break;
                }
                for (size_t i = 0; i < f->deliver->n_envelopes; i++) {
                    dels[n_dels].seq = f->deliver->delivery_seq + i;
                    dels[n_dels].len = f->deliver->envelopes[i].len;
                    dels[n_dels].env = f->deliver->envelopes[i].data;
                    f->deliver->envelopes[i].data = NULL; /* keep it past free_unpacked */
                    f->deliver->envelopes[i].len = 0;
                    n_dels++;
                }
                break;
            case LIAISON__V1__FRAME__KIND_MEMBERSHIP_UPDATE: {
                /* Taken in arrival order, applied in the group before the deliveries. */
                const Liaison__V1__MembershipUpdate *mu = f->membership_update;
                if (mu->n_changes > 1024) {
                    log_warn("broker sent a MembershipUpdate with %zu changes; ignored",
                             mu->n_changes);
                    break;
                }
                for (size_t i = 0; i < mu->n_changes; i++) {
                    n->mc[n->n_mc].data = mu->changes[i].data;
                    n->mc[n->n_mc].len = mu->changes[i].len;
                    mu->changes[i].data = NULL; /* keep it past free_unpacked */
                    mu->changes[i].len = 0;
                    n->n_mc++;
                }
                break;
            }
            case LIAISON__V1__FRAME__KIND_ERROR: {
                Liaison__V1__ErrorCode code = f->error->code;
                if (code == LIAISON__V1__ERROR_CODE__ERROR_CODE_NOT_OWNER ||
                    code == LIAISON__V1__ERROR_CODE__ERROR_CODE_MEMBERSHIP_REFUSED) {
                    fail_mpub(n, f->error->message_id.data, f->error->message_id.len,
                              code == LIAISON__V1__ERROR_CODE__ERROR_CODE_NOT_OWNER
                                  ? LIA_ERR_NOT_OWNER
                                  : LIA_ERR_PROTOCOL,
                              f->error->reason);
                    break;
                }
                int retry = code == LIAISON__V1__ERROR_CODE__ERROR_CODE_STORAGE ||
                            code == LIAISON__V1__ERROR_CODE__ERROR_CODE_OVERLOADED ||
                            code == LIAISON__V1__ERROR_CODE__ERROR_CODE_OUT_OF_ORDER;
                if (retry)
                    t->need_resync = 1; /* something was not stored: again, in order */
                if (code == LIAISON__V1__ERROR_CODE__ERROR_CODE_OUT_OF_ORDER)
                    log_debug("broker: %s", f->error->reason);
                else
                    log_warn("broker: %s%s%s", f->error->reason,
                             f->error->message_id.len ? " (an envelope of ours)" : "",
                             retry ? "; will retry" : "");
                if (f->error->message_id.len == LIA_MESSAGE_ID_BYTES && !retry) {
                    /* Refused for good: stop resending it. The log keeps the reason. */
                    memcpy(acked[t->n_acked++], f->error->message_id.data, LIA_MESSAGE_ID_BYTES);
                }
                break;
            }
            default:
                break;
            }
            liaison__v1__frame__free_unpacked(f, NULL);
        }
        if (n_dels + DELIVER_BATCH_MAX > BURST || t->n_acked + 1024 > ACKED_MAX ||
            t->n_sends == BURST || n->n_mc + 1024 > MC_MAX)
            busy = 1; /* stopped for room, not because the queue was empty */
        if (t->n_sends || t->n_acked || n_dels || n->n_mc) {
            busy = 1;
            group = 1;
        } else if (t->need_resync) {
            busy = 1;
            busy |= settle_all(n, &pl);
            resync(n);
        }
        if (group) {
            /* Membership changes answer their operators (answer_mpubs) when the group that
             * applies them is durable: one such group at a time, so they wait for the other. */
            int alone = n->n_mc > 0;
            if (alone)
                busy |= settle_all(n, &pl);
            if (lia_nstore_begin(n->store) != 0)
                fatal(EX_IOERR, "%s: cannot start a transaction", n->store_path);
            /* Membership first: sends of this turn are sealed for the members of now, and
             * the deliveries that follow a change in the broker's order are opened after
             * it. */
            if (n->n_mc && (rc = take_memberships(n)) != 0)
                fatal(EX_IOERR, "%s: %s", n->store_path, lia_strerror(rc));
            if (t->n_sends && (rc = seal_pending(n, t->sends, t->n_sends)) != 0)
                fatal(EX_SOFTWARE, "sealing failed: %s", lia_strerror(rc));
            for (size_t i = 0; i < t->n_sends; i++)
                if (t->sends[i].env.data && !t->outbox_first)
                    t->outbox_first = t->sends[i].outbox_id;
            for (size_t i = 0; i < t->n_acked; i++)
                if ((rc = lia_nstore_outbox_ack(n->store, acked[i])) != 0 &&
                    rc != LIA_ERR_NOT_FOUND)
                    fatal(EX_IOERR, "%s: %s", n->store_path, lia_strerror(rc));
            t->had_dels = n_dels > 0;
            for (size_t i = 0; i < n_dels; i++) {
                if ((rc = take_delivery(n, &dels[i])) != 0)
                    fatal(EX_IOERR, "%s: %s", n->store_path, lia_strerror(rc));
                if (i % FLUSH_EVERY == FLUSH_EVERY - 1)
                    flush_clients(n);
            }
            t->cursor = n->cursor;
            for (size_t i = 0; i < n_dels; i++)
                free(dels[i].env);
            if (flush_rx(n) != 0 || lia_nstore_commit_unsynced(n->store) != 0)
                fatal(EX_IOERR,
                      "%s: durable commit failed; stopping (nothing unsaved was "
                      "acknowledged)",
                      n->store_path);
            if (!n->unsynced_from)
                n->unsynced_from = t->outbox_first;
            /* Its fsync starts now, or when the running one returned (settle). */
            pl.n_wait++;
            if (pl.n_sync == 0)
                start_sync(n, &pl);
            /* No turn left to read into: wait for the running sync. */
            if (alone || pl.n_sync + pl.n_wait == TURNS)
                busy |= alone ? settle_all(n, &pl) : settle(n, &pl);
        }
        /* An export with nothing queued can go on at once: do not wait in poll. */
        for (size_t i = 0; i < MAX_CONNS; i++)
            if (n->conns[i].c && n->conns[i].x.active && !lia_ctl_pending(n->conns[i].c))
                busy = 1;
        now = now_ms();
        if (now - n->last_heartbeat_ms >= n->heartbeat_ms) {
            uint64_t pending_out = 0;
            n->last_heartbeat_ms = now;
            busy = 1;
            send_heartbeat(n);
            expire_mpubs(n, now);
            int counted = lia_nstore_outbox_count(n->store, &pending_out) == 0;
            if (counted && pending_out == 0) {
                /* Nothing awaits an acknowledgement: the resend clock starts with the next
                 * publish, not at the last acknowledgement of long ago, or a broker slow to
                 * acknowledge the start of a burst after a quiet spell would get all of it
                 * twice (test_resend.sh). */
                n->outbox_idle = 1;
                n->last_progress_ms = now;
            } else if (counted && now - n->last_progress_ms >= n->resend_ms) {
                /* No acknowledgement for a while: the broker may have lost what it had not
                 * stored (a crash); resend everything unacknowledged, in order. */
                log_info("no acknowledgement from the broker for %llu ms: publishing the %llu "
                         "unacknowledged envelopes again",
                         (unsigned long long)(now - n->last_progress_ms),
                         (unsigned long long)pending_out);
                resync(n);
                n->last_progress_ms = now;
            }
        }
    }
    /* Drain: the last groups' syncs, and their replies and acknowledgements. */
    (void)settle_all(n, &pl);
    log_notice("stopping: everything accepted was committed");
    for (size_t k = 0; k < TURNS; k++)
        free(pl.turns[k].sends);
    free(dels);
    free(acked);
    return status;
}
