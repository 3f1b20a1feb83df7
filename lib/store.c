/*
 * Durable storage on SQLite (the only file that includes sqlite3.h): the broker's log and a
 * node's store, both on one small layer ("struct sdb") that owns the connection, the prepared
 * statements, the group (one BEGIN IMMEDIATE ... COMMIT) and the failed state.
 *
 * Opening creates the file itself (O_CREAT|O_EXCL, mode 0600, directory fsync'd), refuses an
 * existing file that group or others may access, and takes an exclusive flock(2) on it for the
 * life of the handle: one process owns a store, which is what lets the broker cache per-node
 * heads in memory. The connection runs in WAL mode with synchronous=FULL (a COMMIT fsyncs the
 * WAL; a node store switches to deferred syncs once open, see struct wsync), foreign keys on,
 * the defensive configuration, and a schema identified by PRAGMA application_id (broker or
 * node) and PRAGMA user_version (LIA_ERR_VERSION for any other).
 * Statement journals and temporary tables stay in memory (temp_store=MEMORY): SQLite would
 * otherwise spill a large UPDATE's page images to unlinked files in /var/tmp, which costs a
 * file creation per statement and puts store pages outside the store's own directory.
 * Every statement is prepared once at open (SQLITE_PREPARE_PERSISTENT) and reused.
 *
 * Failure model: any unexpected SQLite result (I/O error, full disk, corruption, a failed
 * COMMIT) is logged with SQLite's text, rolls the open group back, and puts the store in a
 * failed state in which every later call returns LIA_ERR_STORAGE. Nothing is retried: after a
 * failed fsync the page cache may hold data the disk does not, so the process must restart and
 * recover from what is durable. Invalid arguments are checked before anything is written and
 * return without changing anything.
 *
 * Broker log (schema version 3): envelopes(id, message_id UNIQUE, sender, batch, off, len,
 * stored_at) records every accepted envelope once; its bytes sit in bodies(id, data), one row per
 * group and recipient list (a "batch": the envelopes of one commit addressed to the same nodes,
 * concatenated, at most BATCH_BODY_MAX bytes), and batches(id, pending) counts the deliveries
 * still owed from that body. deliveries(node, seq, envelope_id) gives each recipient its own
 * contiguous sequence; nodes(node, head, cursor) the highest sequence assigned and
 * acknowledged. Heads and cursors are cached per node in a map keyed by BLAKE2b-256(node id),
 * loaded lazily, changed in memory during a group and written (one upsert per node touched)
 * just before COMMIT; the durable copies only move when COMMIT succeeded, and fetch never
 * returns a sequence above the durable head, so a sequence that a crash or a failed group lost
 * is never seen by anyone and a reopened store resumes from the durable head. Garbage
 * collection: an acknowledgement deletes the node's delivery rows up to its cursor and counts
 * down the batches they came from; a batch at zero loses its body, a row whose bytes sit on
 * overflow pages that are freed without being rewritten (secure_delete=FAST: the log holds
 * only end-to-end ciphertext). Keeping one body per envelope made every delivered envelope's
 * page be written again (its bytes blanked) and then rebalanced: 2.7 times the envelope bytes
 * went through the WAL instead of about 1.7. The envelope row stays as a tombstone so that a
 * late retry of the same message id is still recognised as a duplicate, until the broker has
 * it forgotten (lia_bstore_prune: rows stored before a given time whose batch was released).
 * Older logs are migrated at open, one version at a time: version 1 (bytes in envelopes.data)
 * gains the batch columns and tables, its rows delivered and collected as before (data = x''
 * when no node waits for them); version 2 gains stored_at (set to the migration time).
 *
 * Node store (schema version 2): the outbox holds sealed envelopes until the broker
 * acknowledges them, as one outbatch row per group (ids, lengths and envelopes concatenated;
 * outbox ids first..first+n-1, never reused: meta outbox_next). Acknowledgements are kept in
 * memory, with the bits of a batch acknowledged in part written to outacks at commit so that a
 * restart resends only what is still unacknowledged; a batch acknowledged in full is deleted.
 * Memory holds each pending envelope's message id (75 - 120 bytes each), not its bytes. One
 * row per envelope with a unique index cost an insert and a delete in two B-trees per message,
 * and the deletes rewrote and rebalanced pages. A version-1 store's outbox rows are moved into
 * batches of one at open. The other tables: inbox (payloads and refusals by delivery
 * sequence), meta (the inbox cursor) and state (small values under a text key). Inbox payloads
 * and state values are encrypted at rest with the storage key (XChaCha20-Poly1305, fresh random
 * nonce stored beside the ciphertext) under associated data that binds every stored field of
 * the row, so that a row cannot be altered or moved without LIA_ERR_DECRYPT.
 *
 * Hub index (lia_nstore_hub_*, a node in the hub role): hub_terms(token, delivery_seq), created
 * on demand by lia_nstore_hub_enable, maps keyed tokens of normalised entity terms (never the
 * terms: lia_symkey_index_token under the storage key) to inbox rows, and meta "hub_indexed" is
 * the highest delivery indexed. The caller indexes a message in the group that stores it, so
 * the index and the inbox commit together. A search joins the first token's primary-key range
 * with the inbox and probes the other tokens; sender, channel and time filter on inbox columns.
 */
#define _GNU_SOURCE
#include "store.h"
#include "cert.h"
#include "error.h"
#include "utf8.h"
#include "log.h"
#include "map.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#define APP_ID_BROKER   0x4c494142 /* "LIAB" */
#define APP_ID_NODE     0x4c49414e /* "LIAN" */
#define BUSY_TIMEOUT_MS 5000
#define AD_INBOX_TAG    "liaison.v1.inbox" /* written with its NUL */
#define AD_STATE_TAG    "liaison.v1.state"
#define AD_INBOX_MAX                                                                               \
    (sizeof AD_INBOX_TAG + 8 * 4 + LIA_MESSAGE_ID_BYTES + 2 + LIA_NODE_ID_MAX + LIA_CHANNEL_MAX)
#define AD_STATE_MAX (sizeof AD_STATE_TAG + LIA_NSTORE_STATE_KEY_MAX + 1)

/* ---------------- the shared SQLite layer ---------------- */

/*
 * WAL appends in large writes. SQLite appends each WAL frame with two write calls, its 24-byte
 * header and then its page, and on the benchmark VM a write call costs about 4 µs whatever
 * its size: 8 µs per 16 KiB frame against under 2 µs when the frames go out 256 KiB at a time
 * (a throwaway loop of pwrite, 2026-11-27). This VFS shim over the default one keeps a WAL
 * handle's consecutive appends in a buffer and writes them at once. Everything the buffer holds
 * is written before SQLite can let anyone read it: right after the page of a commit frame
 * (its header says so: bytes 4-7, the database size after the commit, are non-zero only on a
 * commit frame; https://www.sqlite.org/fileformat2.html#walformat), which SQLite writes before
 * it publishes the new frames in the wal-index; before any read, size query, truncate, sync or
 * close of the file; and before a write anywhere else. So a COMMIT returns with its frames in
 * the file, and the store's own fdatasync of the WAL (struct wsync) covers them. A failed
 * write fails the call that flushed (the commit), as the direct write would have. Other files
 * go straight through.
 */
#define WALBUF_CAP      (960u << 10) /* 8 pieces */
#define WALBUF_CHUNK    (120u << 10) /* bytes per write call: below the default VFS's 128 KiB */
#define WAL_FRAME_HDR   24
#define WALBUF_VFS_NAME "lia-walbuf"

struct wfile {
    sqlite3_file base;  /* pMethods: wal_methods, or pass_methods for other files */
    sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
    unsigned char *buf; /* WAL: appends not yet written... */
    size_t len;         /* ...their length... */
    sqlite3_int64 off;  /* ...and the file offset of buf[0] */
    int commit_next;    /* the last write was a commit frame's header: flush after its page */
    sqlite3_int64 hi;   /* the end of the furthest write since the log last started over */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs walbuf_vfs;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_rc = SQLITE_ERROR;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((struct wfile *)f)->real;
}

/* Writes the buffer out in pieces the default VFS takes (its write masks the length to 17
 * bits), all of it, or the call fails and the buffer is dropped: the store fails with the
 * commit, nothing is retried. */
static int wal_flush(struct wfile *w)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < w->len && rc == SQLITE_OK;) {
        size_t n = w->len - done < WALBUF_CHUNK ? w->len - done : WALBUF_CHUNK;
        rc =
            w->real->pMethods->xWrite(w->real, w->buf + done, (int)n, w->off + (sqlite3_int64)done);
        done += n;
    }
    w->len = 0;
    w->commit_next = 0;
    return rc;
}

/*
 * Only appends are buffered: a frame header at or past the furthest byte written (hi), and
 * whatever continues the buffer. A write anywhere else (the WAL header when the log starts
 * over, a page SQLite overwrites in place within a transaction, the frame headers it rewrites
 * with new checksums before the commit publishes them) first writes the buffer out and then
 * goes straight to the file, so that nothing can stay behind in the buffer once the commit
 * frame's page was written.
 */
static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 ofst)
{
    struct wfile *w = (struct wfile *)f;
    sqlite3_int64 end = ofst + (amt > 0 ? amt : 0);
    /* This write is the page of a commit frame: it must reach the file before returning,
     * whatever writes the buffer out on the way (a full buffer included). */
    int commit = w->commit_next && amt != WAL_FRAME_HDR;
    int rc, append;

    append = amt > 0 && (size_t)amt <= WALBUF_CHUNK &&
             (w->len > 0 ? ofst == w->off + (sqlite3_int64)w->len
                         : amt == WAL_FRAME_HDR && ofst >= w->hi);
    if (w->len > 0 && (!append || w->len + (size_t)amt > WALBUF_CAP))
        if ((rc = wal_flush(w)) != SQLITE_OK)
            return rc;
    w->commit_next = 0;
    if (ofst == 0)
        w->hi = 0; /* the log starts over */
    if (end > w->hi)
        w->hi = end;
    if (!append)
        return w->real->pMethods->xWrite(w->real, data, amt, ofst);
    if (w->len == 0)
        w->off = ofst;
    memcpy(w->buf + w->len, data, (size_t)amt);
    w->len += (size_t)amt;
    if (amt == WAL_FRAME_HDR) {
        const unsigned char *h = data;
        w->commit_next = (h[4] | h[5] | h[6] | h[7]) != 0;
        return SQLITE_OK;
    }
    return commit ? wal_flush(w) : SQLITE_OK; /* the COMMIT is about to publish */
}

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 ofst)
{
    int rc = wal_flush((struct wfile *)f);
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xRead(real_of(f), out, amt, ofst);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = wal_flush((struct wfile *)f);
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    int rc = wal_flush((struct wfile *)f);
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = wal_flush((struct wfile *)f);
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int wal_close(sqlite3_file *f)
{
    struct wfile *w = (struct wfile *)f;
    int rc = wal_flush(w), rc2 = w->real->pMethods->xClose(w->real);
    sodium_memzero(w->buf, WALBUF_CAP);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

/* The rest of a file's methods go to the default VFS's file. */
static int pass_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}
static int pass_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
    return real_of(f)->pMethods->xRead(real_of(f), p, n, o);
}
static int pass_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
    return real_of(f)->pMethods->xWrite(real_of(f), p, n, o);
}
static int pass_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
static int pass_sync(sqlite3_file *f, int flags)
{
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
static int pass_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
static int pass_lock(sqlite3_file *f, int l)
{
    return real_of(f)->pMethods->xLock(real_of(f), l);
}
static int pass_unlock(sqlite3_file *f, int l)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), l);
}
static int pass_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
static int pass_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
static int pass_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
static int pass_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int pass_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, sz, extend, p);
}
static int pass_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
static void pass_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
static int pass_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}
static int pass_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
    return real_of(f)->pMethods->xFetch(real_of(f), o, n, p);
}
static int pass_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), o, p);
}

/* What a WAL handle does like any other file. */
#define PASS_COMMON                                                                                \
    .xLock = pass_lock, .xUnlock = pass_unlock, .xCheckReservedLock = pass_check_reserved,         \
    .xFileControl = pass_file_control, .xSectorSize = pass_sector_size,                            \
    .xDeviceCharacteristics = pass_device_characteristics, .xShmMap = pass_shm_map,                \
    .xShmLock = pass_shm_lock, .xShmBarrier = pass_shm_barrier, .xShmUnmap = pass_shm_unmap,       \
    .xFetch = pass_fetch, .xUnfetch = pass_unfetch

static const sqlite3_io_methods pass_methods = {
    .iVersion = 3,
    .xClose = pass_close,
    .xRead = pass_read,
    .xWrite = pass_write,
    .xTruncate = pass_truncate,
    .xSync = pass_sync,
    .xFileSize = pass_file_size,
    PASS_COMMON,
};

static const sqlite3_io_methods wal_methods = {
    .iVersion = 3,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    PASS_COMMON,
};

static int walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                       int *out_flags)
{
    struct wfile *w = (struct wfile *)f;
    int rc;

    (void)vfs;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(void *)(w + 1);
    rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        /* SQLite calls xClose after a failed xOpen only if pMethods is set. */
        w->base.pMethods = w->real->pMethods ? &pass_methods : NULL;
        return rc;
    }
    if (w->real->pMethods->iVersion < 3) { /* cannot happen with the unix VFS */
        w->base.pMethods = &pass_methods;
        return SQLITE_OK;
    }
    if ((flags & SQLITE_OPEN_WAL) && !(w->buf = malloc(WALBUF_CAP))) {
        w->real->pMethods->xClose(w->real);
        w->base.pMethods = NULL;
        return SQLITE_NOMEM;
    }
    w->base.pMethods = (flags & SQLITE_OPEN_WAL) ? &wal_methods : &pass_methods;
    return SQLITE_OK;
}

static void walbuf_register(void)
{
    if (!(real_vfs = sqlite3_vfs_find(NULL)))
        return;
    walbuf_vfs = *real_vfs; /* the other methods are the default VFS's own */
    walbuf_vfs.iVersion = real_vfs->iVersion;
    walbuf_vfs.szOsFile = (int)sizeof(struct wfile) + real_vfs->szOsFile;
    walbuf_vfs.pNext = NULL;
    walbuf_vfs.zName = WALBUF_VFS_NAME;
    walbuf_vfs.xOpen = walbuf_open;
    walbuf_rc = sqlite3_vfs_register(&walbuf_vfs, 0);
}

/* The name of the VFS every store connection uses (registered once), or NULL if it could not
 * be (the connection then uses the default VFS: correct, only slower). */
static const char *walbuf_vfs_name(void)
{
    if (pthread_once(&walbuf_once, walbuf_register) != 0 || walbuf_rc != SQLITE_OK)
        return NULL;
    return WALBUF_VFS_NAME;
}

/* Statements common to both stores come first in each store's statement table. */
enum { ST_BEGIN, ST_COMMIT, ST_COMMON_COUNT };

/*
 * Checkpoints run on a thread of their own with a second connection, so that copying the WAL
 * into the database file and its fsyncs do not stall the loop that commits (SQLite's automatic
 * checkpoint runs inside the COMMIT that crosses the threshold: with 16 KiB pages, 16 MiB of
 * writes and two fsyncs every few thousand messages). The committing connection wakes the
 * thread each time the WAL has grown by CKPT_PAGES pages. A checkpoint that runs beside
 * commits rarely catches up with the last frame, so the WAL does not start over; when it
 * reaches CKPT_PAGES_HARD pages the committing loop checkpoints what is left itself (little:
 * the thread copied the rest), which lets the next commit start the WAL from the beginning.
 * Waking the thread whenever the WAL held more than CKPT_PAGES made it checkpoint (and fsync
 * twice) after every commit once the WAL stopped starting over: +1.3 ms on the median latency.
 * The checkpointer runs with synchronous=FULL: the WAL is synced before its pages are copied
 * and the database file after, and a failure fails the store.
 */
#define CKPT_PAGES      1000
#define CKPT_PAGES_HARD 8000

struct ckpt {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, stop, started;
    int signalled_at; /* WAL pages when the thread was last woken (committing thread only) */
    atomic_int failed;
    atomic_uint_fast64_t runs, inline_runs; /* for the closing log line */
    const char *what;
};

/*
 * Deferred WAL sync (node store, sdb_wsync_start): the connection commits with
 * synchronous=NORMAL, which in WAL mode appends a group's frames without an fsync (a checkpoint
 * still syncs the WAL before copying it and the database file after), and the store makes
 * groups durable itself with fdatasync of the WAL: in line (lia_nstore_commit), or on a thread
 * of its own (lia_nstore_sync_start) while the caller prepares the next group, which is what
 * lets a node overlap its CPU work with the 4 ms a sync takes. An fdatasync covers every frame
 * written before it started, so groups become durable in order; a crash before it returns
 * loses a suffix of whole groups (WAL recovery stops at the first frame whose checksum chain
 * breaks). The WAL keeps its inode while the store is open (SQLite deletes it only when the
 * last connection closes, and starting it over after a checkpoint rewrites it in place), so
 * one descriptor opened by path serves for the life of the handle. A failed fdatasync fails
 * the store, as a failed COMMIT does.
 */
struct wsync {
    int fd;     /* the WAL; -1 when syncs are SQLite's own (synchronous=FULL) */
    int req[2]; /* the caller writes a byte: sync now */
    int res[2]; /* the thread answers with an int: 0 or the errno of fdatasync */
    pthread_t thread;
    int started; /* the thread runs */
    int running; /* a sync was asked for and its answer not yet read */
};

struct sdb {
    sqlite3 *db;
    struct ckpt ck;
    struct wsync ws;
    int lock_fd;       /* holds the flock; closed after sqlite3_close */
    int failed;        /* set once; every call then returns LIA_ERR_STORAGE */
    int in_group;      /* between a successful begin and its commit */
    const char *what;  /* "broker log" or "node store", for log lines */
    sqlite3_stmt **st; /* prepared statements, indexed by the store's enum */
    size_t n_st;
    uint8_t nonce_seed[crypto_stream_chacha20_KEYBYTES]; /* fresh at every open */
    uint64_t nonce_ctr;
    uint64_t commits; /* since open, for the closing log line */
};

/*
 * A nonce for encryption at rest: ChaCha20 output keyed by a random seed drawn at open and
 * indexed by a counter, so nonces never repeat within an open and are unpredictable across
 * opens, without a system call per row.
 */
static void next_nonce(struct sdb *d, uint8_t out[LIA_NONCE_BYTES])
{
    uint8_t n8[crypto_stream_chacha20_NONCEBYTES];
    uint64_t ctr = d->nonce_ctr++;
    for (int i = 0; i < 8; i++)
        n8[i] = (uint8_t)(ctr >> (8 * i));
    crypto_stream_chacha20(out, LIA_NONCE_BYTES, n8, d->nonce_seed);
}

/*
 * Records an unexpected SQLite result: logs op with SQLite's own text, rolls back the open
 * group if any, and makes the store unusable. Always returns LIA_ERR_STORAGE.
 */
static int sdb_fail(struct sdb *d, int rc, const char *op)
{
    log_err("%s: %s: %s (%s, code %d)", d->what, op, d->db ? sqlite3_errmsg(d->db) : "-",
            sqlite3_errstr(rc), rc);
    if (!d->failed && d->in_group && d->db && sqlite3_get_autocommit(d->db) == 0) {
        int rrc = sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        if (rrc != SQLITE_OK)
            log_err("%s: rollback after failure: %s", d->what, sqlite3_errstr(rrc));
    }
    d->failed = 1;
    d->in_group = 0;
    return LIA_ERR_STORAGE;
}

/* Gate for every call: LIA_ERR_STORAGE once failed; LIA_ERR_INVALID if a group is required
 * (need_group) and none is open. */
static int sdb_ready(const struct sdb *d, int need_group)
{
    if (d->failed || atomic_load(&d->ck.failed))
        return LIA_ERR_STORAGE;
    if (need_group && !d->in_group)
        return LIA_ERR_INVALID;
    return 0;
}

/* Resets a statement after use and drops its bindings (no pointer to caller memory is left
 * behind). The step result was already checked, so reset's echo of it carries no news. */
static void st_reset(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no row (INSERT/UPDATE/DELETE/BEGIN...) and resets it.
 * 0 or LIA_ERR_STORAGE (store failed). */
static int st_exec(struct sdb *d, sqlite3_stmt *st, const char *op)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        rc = sdb_fail(d, rc, op);
        st_reset(st);
        return rc;
    }
    st_reset(st);
    return 0;
}

/* Checks the OR of several sqlite3_bind_* results (SQLITE_OK is 0, so the OR is nonzero iff
 * one failed); on failure resets st and fails the store. */
static int st_bound(struct sdb *d, sqlite3_stmt *st, int or_of_rcs, const char *op)
{
    if (or_of_rcs == SQLITE_OK)
        return 0;
    st_reset(st);
    return sdb_fail(d, sqlite3_errcode(d->db), op);
}

/* Runs one SQL text that needs no reuse (schema creation, pragmas). */
static int sdb_exec_sql(struct sdb *d, const char *sql, const char *op)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_err("%s: %s: %s", d->what, op, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return LIA_ERR_STORAGE;
    }
    return 0;
}

/* Reads one integer from a single-row query ("PRAGMA user_version", ...). */
static int sdb_query_int(struct sdb *d, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    *out = sqlite3_column_int64(st, 0);
    (void)sqlite3_finalize(st);
    return 0;
fail:
    log_err("%s: %s: %s", d->what, sql, sqlite3_errmsg(d->db));
    (void)sqlite3_finalize(st);
    return (rc == SQLITE_NOTADB) ? LIA_ERR_WRONG_KIND : LIA_ERR_STORAGE;
}

/* fsyncs the directory that holds path, so that a newly created file survives a crash. */
static int fsync_parent(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = 0;
    if (!copy)
        return LIA_ERR_NOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        log_err_errno("store: fsync of the directory of %s", path);
        rc = LIA_ERR_IO;
    }
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}

/*
 * Creates path (O_EXCL, 0600, directory fsync'd) or opens the existing file, refuses one that
 * is not a regular file (LIA_ERR_WRONG_KIND) or that group/others may access
 * (LIA_ERR_PERMISSION), and takes an exclusive non-blocking flock (LIA_ERR_STORAGE if another
 * handle holds it). On success *fd_out keeps the lock.
 */
static int open_lock_file(const char *path, int *fd_out)
{
    struct stat st;
    int fd, rc;

    *fd_out = -1;
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (fchmod(fd, 0600) != 0) {
            log_err_errno("store: chmod %s", path);
            rc = LIA_ERR_IO;
            goto fail;
        }
        rc = fsync_parent(path);
        if (rc != 0)
            goto fail;
    } else if (errno == EEXIST) {
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            log_err_errno("store: open %s", path);
            return (errno == ELOOP || errno == EISDIR) ? LIA_ERR_WRONG_KIND : LIA_ERR_IO;
        }
    } else {
        log_err_errno("store: create %s", path);
        return errno == EACCES ? LIA_ERR_PERMISSION : LIA_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        log_err_errno("store: stat %s", path);
        rc = LIA_ERR_IO;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        log_err("store: %s is accessible by group or others (mode %04o); refusing it", path,
                (unsigned)(st.st_mode & 07777));
        rc = LIA_ERR_PERMISSION;
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        log_err_errno("store: %s is in use by another handle", path);
        rc = LIA_ERR_STORAGE;
        goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

static void *ckpt_main(void *arg)
{
    struct ckpt *ck = arg;
    for (;;) {
        int rc, nlog = 0, nckpt = 0;
        (void)pthread_mutex_lock(&ck->mu);
        while (!ck->want && !ck->stop)
            (void)pthread_cond_wait(&ck->cv, &ck->mu);
        if (ck->stop) {
            (void)pthread_mutex_unlock(&ck->mu);
            return NULL;
        }
        ck->want = 0;
        (void)pthread_mutex_unlock(&ck->mu);
        rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
        atomic_fetch_add(&ck->runs, 1);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            log_err("%s: checkpoint: %s (%s, code %d); the store stops", ck->what,
                    sqlite3_errmsg(ck->db), sqlite3_errstr(rc), sqlite3_extended_errcode(ck->db));
            atomic_store(&ck->failed, 1);
            return NULL;
        }
    }
}

/* Called by SQLite after each commit of the main connection with the WAL's size in pages. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sdb *d = arg;
    (void)name;
    if (pages >= CKPT_PAGES_HARD) {
        /* Busy when the thread is at it; then the next commit looks again. */
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        atomic_fetch_add(&d->ck.inline_runs, 1);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            log_err("%s: checkpoint (in line): %s (%s, code %d); the store stops", d->what,
                    sqlite3_errmsg(db), sqlite3_errstr(rc), sqlite3_extended_errcode(db));
            atomic_store(&d->ck.failed, 1);
        }
        d->ck.signalled_at = 0;
    } else if (pages < d->ck.signalled_at) {
        d->ck.signalled_at = 0; /* the WAL started over */
    }
    if (pages >= d->ck.signalled_at + CKPT_PAGES && pages < CKPT_PAGES_HARD && d->ck.started) {
        d->ck.signalled_at = pages;
        (void)pthread_mutex_lock(&d->ck.mu);
        d->ck.want = 1;
        (void)pthread_cond_signal(&d->ck.cv);
        (void)pthread_mutex_unlock(&d->ck.mu);
    }
    return SQLITE_OK;
}

/* Opens the checkpointer's connection to path and starts its thread. */
static int ckpt_start(struct sdb *d, const char *path)
{
    struct ckpt *ck = &d->ck;
    int src;

    ck->what = d->what;
    src = sqlite3_open_v2(path, &ck->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                          walbuf_vfs_name());
    if (src == SQLITE_OK)
        src = sqlite3_busy_timeout(ck->db, BUSY_TIMEOUT_MS);
    if (src == SQLITE_OK)
        src = sqlite3_exec(ck->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        log_err("%s: checkpointer: open %s: %s", d->what, path,
                ck->db ? sqlite3_errmsg(ck->db) : "out of memory");
        return LIA_ERR_STORAGE;
    }
    if (pthread_mutex_init(&ck->mu, NULL) != 0)
        return LIA_ERR_NOMEM;
    if (pthread_cond_init(&ck->cv, NULL) != 0) {
        (void)pthread_mutex_destroy(&ck->mu);
        return LIA_ERR_NOMEM;
    }
    if ((errno = pthread_create(&ck->thread, NULL, ckpt_main, ck)) != 0) {
        log_err_errno("%s: checkpointer thread", d->what);
        (void)pthread_cond_destroy(&ck->cv);
        (void)pthread_mutex_destroy(&ck->mu);
        return LIA_ERR_NOMEM;
    }
    ck->started = 1;
    (void)sqlite3_wal_hook(d->db, ckpt_hook, d);
    return 0;
}

/* Stops the checkpointer (it finishes a checkpoint in progress) and closes its connection. */
static void ckpt_stop(struct sdb *d)
{
    struct ckpt *ck = &d->ck;
    if (ck->started) {
        (void)pthread_mutex_lock(&ck->mu);
        ck->stop = 1;
        (void)pthread_cond_signal(&ck->cv);
        (void)pthread_mutex_unlock(&ck->mu);
        (void)pthread_join(ck->thread, NULL);
        (void)pthread_cond_destroy(&ck->cv);
        (void)pthread_mutex_destroy(&ck->mu);
        ck->started = 0;
    }
    if (d->db)
        (void)sqlite3_wal_hook(d->db, NULL, NULL);
    if (ck->db && sqlite3_close(ck->db) != SQLITE_OK)
        log_err("%s: checkpointer: close: %s", d->what, sqlite3_errmsg(ck->db));
    ck->db = NULL;
}

static void *wsync_main(void *arg)
{
    struct wsync *w = arg;
    for (;;) {
        uint8_t b;
        int e;
        ssize_t r = read(w->req[0], &b, 1);
        if (r == 0)
            return NULL; /* the store is closing */
        if (r < 0) {
            if (errno == EINTR)
                continue;
            e = errno ? errno : EIO;
        } else {
            e = fdatasync(w->fd) == 0 ? 0 : (errno ? errno : EIO);
        }
        while (write(w->res[1], &e, sizeof e) < 0 && errno == EINTR)
            ;
        if (r < 0)
            return NULL;
    }
}

/* Closes the descriptors of a deferred-sync state that is not (or no longer) running. */
static void wsync_close_fds(struct wsync *w)
{
    int *fds[] = {&w->fd, &w->req[0], &w->req[1], &w->res[0], &w->res[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/*
 * Switches d (outside a group) to deferred WAL syncs: synchronous=NORMAL, the WAL opened by
 * path (it exists: the open read the database in WAL mode), its directory entry made durable
 * (SQLite would have done it at its first sync of the file), and the sync thread started.
 * Nothing committed before is lost: every earlier COMMIT ran with synchronous=FULL.
 */
static int sdb_wsync_start(struct sdb *d, const char *path)
{
    struct wsync *w = &d->ws;
    char *wal = NULL;
    int rc;

    if (asprintf(&wal, "%s-wal", path) < 0)
        return LIA_ERR_NOMEM;
    w->fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (w->fd < 0) {
        log_err_errno("%s: open %s", d->what, wal);
        rc = LIA_ERR_STORAGE;
        goto fail;
    }
    if ((rc = fsync_parent(wal)) != 0)
        goto fail;
    if (pipe2(w->req, O_CLOEXEC) != 0 || pipe2(w->res, O_CLOEXEC) != 0) {
        log_err_errno("%s: pipe", d->what);
        rc = LIA_ERR_IO;
        goto fail;
    }
    if ((rc = sdb_exec_sql(d, "PRAGMA synchronous=NORMAL", "pragmas")) != 0)
        goto fail;
    if ((errno = pthread_create(&w->thread, NULL, wsync_main, w)) != 0) {
        log_err_errno("%s: sync thread", d->what);
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    w->started = 1;
    free(wal);
    return 0;
fail:
    /* Back to SQLite's own syncs before the descriptors go. */
    if (d->db)
        (void)sqlite3_exec(d->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    wsync_close_fds(w);
    free(wal);
    return rc;
}

/* A failed fdatasync of the WAL (error e): the store fails, nothing is retried. */
static int wsync_failed(struct sdb *d, int e)
{
    errno = e;
    log_err_errno("%s: fdatasync of the WAL failed; the store stops", d->what);
    d->failed = 1;
    return LIA_ERR_STORAGE;
}

/* Reads the answer of the running sync (blocking until the thread gives it). 0, or
 * LIA_ERR_STORAGE with the store failed. */
static int wsync_wait(struct sdb *d)
{
    struct wsync *w = &d->ws;
    int e = 0;
    ssize_t r;

    if (!w->running)
        return LIA_ERR_INVALID;
    while ((r = read(w->res[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    w->running = 0;
    if (r != (ssize_t)sizeof e) {
        log_err_errno("%s: sync thread", d->what);
        d->failed = 1;
        return LIA_ERR_STORAGE;
    }
    return e != 0 ? wsync_failed(d, e) : 0;
}

/* Stops the sync thread (after the answer of a running sync) and closes its descriptors. */
static void wsync_stop(struct sdb *d)
{
    struct wsync *w = &d->ws;
    if (w->running)
        (void)wsync_wait(d);
    if (w->started) {
        close(w->req[1]); /* the thread reads end of file and returns */
        w->req[1] = -1;
        (void)pthread_join(w->thread, NULL);
        w->started = 0;
    }
    wsync_close_fds(w);
}

/* In line: makes every committed group durable (or fails the store). */
static int wsync_now(struct sdb *d)
{
    if (d->ws.fd < 0)
        return 0; /* synchronous=FULL: the COMMIT synced */
    return fdatasync(d->ws.fd) != 0 ? wsync_failed(d, errno ? errno : EIO) : 0;
}

/* What a store's file must be, and how this program creates or brings it up to date. */
struct sdb_schema {
    int64_t app_id;             /* PRAGMA application_id */
    int version;                /* PRAGMA user_version this program writes */
    const char *create;         /* the schema of a new, empty database */
    const char *upgrade;        /* idempotent, additive; run at every open of an existing file */
    const char *const *migrate; /* migrate[v - 1] brings version v to v + 1 (v < version) */
};

/*
 * Opens path as a store of schema sc: file checks and lock, the connection and its pragmas,
 * then either creates the schema (a new, empty database) or checks the version, runs
 * sc->upgrade and migrates an older file one version at a time (each step in one transaction
 * with its new user_version: a crash leaves the file at the last version it completed). Then
 * prepares the statements sql[0..n_st) (the first ST_COMMON_COUNT are BEGIN and COMMIT). On failure
 * everything is released and d->db is NULL.
 */
static int sdb_open(struct sdb *d, const char *path, const char *what, const struct sdb_schema *sc,
                    const char *const *sql, size_t n_st)
{
    int64_t version = 0, have_app = 0, n_tables = 0;
    int rc, src;

    memset(d, 0, sizeof *d);
    d->lock_fd = -1;
    d->ws.fd = d->ws.req[0] = d->ws.req[1] = d->ws.res[0] = d->ws.res[1] = -1;
    randombytes_buf(d->nonce_seed, sizeof d->nonce_seed);
    d->what = what;
    rc = open_lock_file(path, &d->lock_fd);
    if (rc != 0)
        return rc;
    src = sqlite3_open_v2(path, &d->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                          walbuf_vfs_name());
    if (src != SQLITE_OK) {
        log_err("%s: open %s: %s", what, path, d->db ? sqlite3_errmsg(d->db) : "out of memory");
        rc = LIA_ERR_STORAGE;
        goto fail;
    }
    rc = LIA_ERR_STORAGE;
    if (sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
        sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(d->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        log_err("%s: configure: %s", what, sqlite3_errmsg(d->db));
        goto fail;
    }
    /* The first read of the file: tells a non-SQLite file (LIA_ERR_WRONG_KIND). */
    rc = sdb_query_int(d, "PRAGMA application_id", &have_app);
    if (rc != 0)
        goto fail;
    rc = sdb_query_int(d, "PRAGMA user_version", &version);
    if (rc == 0)
        rc = sdb_query_int(d, "SELECT count(*) FROM sqlite_schema", &n_tables);
    if (rc != 0)
        goto fail;
    if (have_app != 0 && have_app != sc->app_id) {
        log_err("%s: %s is another kind of store", what, path);
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (have_app == 0 && (version != 0 || n_tables != 0)) {
        log_err("%s: %s is not a liaison store", what, path);
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (version != 0 &&
        (version > sc->version || version < 1 || (version < sc->version && !sc->migrate))) {
        log_err("%s: %s has schema version %lld, this program knows %d", what, path,
                (long long)version, sc->version);
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    /* A new file: larger pages hold several envelopes each (fewer pages and WAL frames per
     * commit). Only possible before the first table and before WAL mode. */
    if (version == 0 && n_tables == 0 &&
        (rc = sdb_exec_sql(d, "PRAGMA page_size=16384", "page size")) != 0)
        goto fail;
    /* journal_mode answers with the mode in force: anything but "wal" is a failure. */
    {
        sqlite3_stmt *st = NULL;
        src = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (src == SQLITE_OK)
            src = sqlite3_step(st);
        if (src != SQLITE_ROW ||
            sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
            log_err("%s: cannot enable WAL: %s", what, sqlite3_errmsg(d->db));
            (void)sqlite3_finalize(st);
            rc = LIA_ERR_STORAGE;
            goto fail;
        }
        (void)sqlite3_finalize(st);
    }
    rc = sdb_exec_sql(d,
                      "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                      " PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
                      "pragmas");
    if (rc != 0)
        goto fail;
    if (version == 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "PRAGMA application_id=%lld; PRAGMA user_version=%d; COMMIT;",
                 (long long)sc->app_id, sc->version);
        rc = sdb_exec_sql(d, "BEGIN IMMEDIATE", "create schema");
        if (rc == 0)
            rc = sdb_exec_sql(d, sc->create, "create schema");
        if (rc == 0)
            rc = sdb_exec_sql(d, buf, "create schema");
        if (rc != 0) {
            if (sqlite3_get_autocommit(d->db) == 0)
                (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        log_info("%s: created %s (schema version %d)", what, path, sc->version);
    } else {
        if (sc->upgrade && (rc = sdb_exec_sql(d, sc->upgrade, "upgrade schema")) != 0)
            goto fail; /* tables added within a version (additive only) */
        for (; version < sc->version; version++) {
            char buf[64];
            snprintf(buf, sizeof buf, "PRAGMA user_version=%lld; COMMIT;", (long long)version + 1);
            rc = sdb_exec_sql(d, "BEGIN IMMEDIATE", "migrate schema");
            if (rc == 0)
                rc = sdb_exec_sql(d, sc->migrate[version - 1], "migrate schema");
            if (rc == 0)
                rc = sdb_exec_sql(d, buf, "migrate schema");
            if (rc != 0) {
                if (sqlite3_get_autocommit(d->db) == 0)
                    (void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
            log_notice("%s: migrated %s from schema version %lld to %lld", what, path,
                       (long long)version, (long long)version + 1);
        }
    }
    d->st = calloc(n_st, sizeof *d->st);
    if (!d->st) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    d->n_st = n_st;
    for (size_t i = 0; i < n_st; i++) {
        src = sqlite3_prepare_v3(d->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &d->st[i], NULL);
        if (src != SQLITE_OK) {
            log_err("%s: prepare \"%s\": %s", what, sql[i], sqlite3_errmsg(d->db));
            rc = LIA_ERR_STORAGE;
            goto fail;
        }
    }
    if ((rc = ckpt_start(d, path)) != 0)
        goto fail;
    return 0;
fail:
    ckpt_stop(d);
    for (size_t i = 0; d->st && i < d->n_st; i++)
        (void)sqlite3_finalize(d->st[i]);
    free(d->st);
    d->st = NULL;
    if (d->db && sqlite3_close(d->db) != SQLITE_OK)
        log_err("%s: close: %s", what, sqlite3_errmsg(d->db));
    d->db = NULL;
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    d->lock_fd = -1;
    return rc;
}

/* Rolls back an open group (logged: the group's changes are lost, which is the contract),
 * finalizes the statements, closes the connection (checkpointing the WAL) and drops the lock. */
static void sdb_close(struct sdb *d)
{
    if (!d->db)
        return;
    wsync_stop(d);
    ckpt_stop(d);
    if (d->in_group && !d->failed && sqlite3_get_autocommit(d->db) == 0) {
        log_notice("%s: closing with an uncommitted group; it is rolled back", d->what);
        if (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
            log_err("%s: rollback: %s", d->what, sqlite3_errmsg(d->db));
    }
    {
        int cur = 0, hi = 0;
        if (sqlite3_db_status(d->db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &hi, 0) == SQLITE_OK)
            log_info("%s: %llu commits, %d pages written to the WAL since open; %llu "
                     "checkpoints in the background, %llu in line",
                     d->what, (unsigned long long)d->commits, cur,
                     (unsigned long long)atomic_load(&d->ck.runs),
                     (unsigned long long)atomic_load(&d->ck.inline_runs));
    }
    for (size_t i = 0; i < d->n_st; i++)
        (void)sqlite3_finalize(d->st[i]); /* returns the statement's last error, seen already */
    free(d->st);
    d->st = NULL;
    if (sqlite3_close(d->db) != SQLITE_OK)
        log_err("%s: close: %s", d->what, sqlite3_errmsg(d->db));
    d->db = NULL;
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    d->lock_fd = -1;
    sodium_memzero(d->nonce_seed, sizeof d->nonce_seed);
}

/* BEGIN IMMEDIATE (takes the write lock now, so COMMIT cannot meet a conflict). */
static int sdb_begin(struct sdb *d)
{
    int rc = sdb_ready(d, 0);
    if (rc != 0)
        return rc;
    if (d->in_group)
        return LIA_ERR_INVALID;
    d->in_group = 1;
    rc = st_exec(d, d->st[ST_BEGIN], "begin");
    if (rc != 0)
        d->in_group = 0;
    return rc;
}

/* COMMIT: the fsync. Any failure is fatal for the store. */
static int sdb_commit(struct sdb *d)
{
    int rc = st_exec(d, d->st[ST_COMMIT], "commit");
    if (rc == 0) {
        d->in_group = 0;
        d->commits++;
    }
    return rc;
}

/* Binds a blob; a zero-length one as x'' rather than NULL (sqlite binds NULL for a NULL ptr). */
static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t len)
{
    static const uint8_t empty = 0;
    if (len > INT_MAX)
        return SQLITE_TOOBIG;
    return sqlite3_bind_blob(st, i, len ? p : &empty, (int)len, SQLITE_STATIC);
}

static int bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    if (v > INT64_MAX)
        return SQLITE_RANGE;
    return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* Reads a non-negative integer column into *out; LIA_ERR_DECODE if negative or not an
 * integer (the file is untrusted). */
static int col_u64(sqlite3_stmt *st, int i, uint64_t *out)
{
    sqlite3_int64 v;
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
        return LIA_ERR_DECODE;
    v = sqlite3_column_int64(st, i);
    if (v < 0)
        return LIA_ERR_DECODE;
    *out = (uint64_t)v;
    return 0;
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/*
 * Makes room for one more element in the array at *(T **)arrp holding n of *cap elements of
 * size bytes each, doubling the capacity (first when empty). LIA_ERR_NOMEM leaves the array and
 * *cap as they were. The array pointer goes through memcpy: arrp may point to any T *.
 */
static int grow(void *arrp, size_t *cap, size_t n, size_t size, size_t first)
{
    void *old, *p;
    size_t c;

    if (n < *cap)
        return 0;
    c = *cap ? 2 * *cap : first;
    if (c < *cap || c > SIZE_MAX / size)
        return LIA_ERR_NOMEM;
    memcpy(&old, arrp, sizeof old);
    if (!(p = realloc(old, c * size)))
        return LIA_ERR_NOMEM;
    memcpy(arrp, &p, sizeof p);
    *cap = c;
    return 0;
}

static void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------- broker log ---------------- */

enum {
    B_INS_ENV = ST_COMMON_COUNT,
    B_INS_DEL,
    B_GET_NODE,
    B_PUT_NODE,
    B_GC_ENV,
    B_DEL_DEL,
    B_FETCH,
    B_GET_STREAM,
    B_PUT_STREAM,
    B_HAS_MSG,
    B_STATE_PUT,
    B_STATE_KEYS,
    B_NEXT_BATCH,
    B_LEGACY,
    B_BATCH_REFS,
    B_BATCH_DEC,
    B_BATCH_DEL,
    B_BODY_DEL,
    B_BATCH_INS,
    B_BODY_INS,
    B_HELD,
    B_PRUNE_UPTO,
    B_PRUNE,
    B_COUNT
};

static const char *const bstore_sql[B_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [B_INS_ENV] = "INSERT INTO envelopes(message_id, sender, data, pending, batch, off, len,"
                  " stored_at) VALUES(?1, ?2, x'', 0, ?3, ?4, ?5, ?6)"
                  " ON CONFLICT(message_id) DO NOTHING",
    [B_INS_DEL] = "INSERT INTO deliveries(node, seq, envelope_id) VALUES(?1, ?2, ?3)",
    [B_GET_NODE] = "SELECT head, cursor FROM nodes WHERE node = ?1",
    [B_PUT_NODE] =
        "INSERT INTO nodes(node, head, cursor) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(node) DO UPDATE SET head = excluded.head, cursor = excluded.cursor",
    [B_GC_ENV] = "UPDATE envelopes SET pending = pending - 1,"
                 " data = CASE WHEN pending <= 1 THEN x'' ELSE data END"
                 " WHERE id IN (SELECT envelope_id FROM deliveries"
                 " WHERE node = ?1 AND seq > ?2 AND seq <= ?3) AND batch IS NULL",
    [B_DEL_DEL] = "DELETE FROM deliveries WHERE node = ?1 AND seq <= ?2",
    [B_FETCH] = "SELECT d.seq, e.data, e.batch, e.off, e.len FROM deliveries AS d"
                " JOIN envelopes AS e"
                " ON e.id = d.envelope_id WHERE d.node = ?1 AND d.seq > ?2 AND d.seq <= ?3"
                " ORDER BY d.seq LIMIT ?4",
    [B_GET_STREAM] = "SELECT last FROM streams WHERE id = ?1",
    [B_HAS_MSG] = "SELECT 1 FROM envelopes WHERE message_id = ?1",
    [B_PUT_STREAM] = "INSERT INTO streams(id, last) VALUES(?1, ?2)"
                     " ON CONFLICT(id) DO UPDATE SET last = excluded.last",
    [B_STATE_PUT] = "INSERT INTO state(key, value) VALUES(?1, ?2)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [B_STATE_KEYS] = "SELECT key, value FROM state WHERE key >= ?1 ORDER BY key",
    /* Batches are numbered in append order, so the newest envelope with a batch has the
     * highest; rows of a migrated version-1 log (batch NULL) all come before it. */
    [B_NEXT_BATCH] = "SELECT batch FROM envelopes WHERE batch IS NOT NULL ORDER BY id DESC LIMIT 1",
    /* Version-1 rows are the oldest: only a log whose first row is one can still owe them. */
    [B_LEGACY] = "SELECT 1 FROM envelopes WHERE id = (SELECT min(id) FROM envelopes)"
                 " AND batch IS NULL AND EXISTS(SELECT 1 FROM deliveries AS d"
                 " JOIN envelopes AS e ON e.id = d.envelope_id WHERE e.batch IS NULL)",
    [B_BATCH_REFS] = "SELECT e.batch FROM deliveries AS d JOIN envelopes AS e"
                     " ON e.id = d.envelope_id WHERE d.node = ?1 AND d.seq > ?2 AND d.seq <= ?3"
                     " AND e.batch IS NOT NULL ORDER BY d.seq",
    [B_BATCH_DEC] = "UPDATE batches SET pending = pending - ?2 WHERE id = ?1 RETURNING pending",
    [B_BATCH_DEL] = "DELETE FROM batches WHERE id = ?1",
    [B_BODY_DEL] = "DELETE FROM bodies WHERE id = ?1",
    [B_BATCH_INS] = "INSERT INTO batches(id, pending) VALUES(?1, ?2)",
    [B_BODY_INS] = "INSERT INTO bodies(id, data) VALUES(?1, ?2)",
    [B_HELD] = "SELECT count(*), coalesce(sum(length(data)), 0) FROM bodies",
    /* Delivered: a version-1 row whose pending count reached 0, or a row whose batch was
     * released (every delivery of every envelope in it acknowledged). The newest row stays, so
     * that ids and batch numbers keep growing. One step looks at the rows (?1, ?2] only. */
    [B_PRUNE_UPTO] = "SELECT id, stored_at FROM envelopes WHERE id > ?1 ORDER BY id"
                     " LIMIT 1 OFFSET ?2",
    [B_PRUNE] = "DELETE FROM envelopes WHERE id IN (SELECT e.id FROM envelopes AS e"
                " WHERE e.id > ?1 AND e.id <= ?2 AND e.stored_at < ?3"
                " AND e.id < (SELECT max(id) FROM envelopes)"
                " AND CASE WHEN e.batch IS NULL THEN e.pending <= 0"
                " ELSE NOT EXISTS (SELECT 1 FROM batches AS b WHERE b.id = e.batch) END)",
};

#define DELIVERIES_TABLE(name)                                                                     \
    "CREATE TABLE " #name "(node TEXT NOT NULL, seq INTEGER NOT NULL,"                             \
    " envelope_id INTEGER NOT NULL, PRIMARY KEY(node, seq)) WITHOUT ROWID;"

/* The SQL is laid out by table (clang-format would break it around the macro). */
/* clang-format off */
static const char bstore_schema[] =
    "CREATE TABLE envelopes(id INTEGER PRIMARY KEY, message_id BLOB UNIQUE NOT NULL,"
    " sender TEXT NOT NULL, data BLOB NOT NULL, pending INTEGER NOT NULL,"
    " batch INTEGER, off INTEGER, len INTEGER, stored_at INTEGER);"
    "CREATE TABLE batches(id INTEGER PRIMARY KEY, pending INTEGER NOT NULL);"
    "CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    DELIVERIES_TABLE(deliveries)
    "CREATE TABLE nodes(node TEXT PRIMARY KEY, head INTEGER NOT NULL, cursor INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE streams(id BLOB PRIMARY KEY, last INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE state(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;";
/* clang-format on */

/* Run when an existing log is opened: the state table (membership changes) came later. */
static const char bstore_upgrade[] =
    "CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;";

/* Version 1 kept each envelope's bytes in its row; its rows stay readable as they are. */
static const char bstore_migrate_v1[] =
    "ALTER TABLE envelopes ADD COLUMN batch INTEGER;"
    "ALTER TABLE envelopes ADD COLUMN off INTEGER;"
    "ALTER TABLE envelopes ADD COLUMN len INTEGER;"
    "CREATE TABLE batches(id INTEGER PRIMARY KEY, pending INTEGER NOT NULL);"
    "CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);";

/* Version 2 kept every message id for ever. Version 3 records when each envelope was stored,
 * so that delivered ones can be forgotten after a while (lia_bstore_prune); rows of before
 * count from the migration. The deliveries table loses its foreign key: with one, every
 * forgotten envelope would cost a scan of all deliveries (nothing indexes them by envelope),
 * and an envelope is only forgotten once its batch is released, that is when no delivery
 * names it any more. */
/* clang-format off */
static const char bstore_migrate_v2[] =
    "ALTER TABLE envelopes ADD COLUMN stored_at INTEGER;"
    "UPDATE envelopes SET stored_at = unixepoch() * 1000;"
    DELIVERIES_TABLE(deliveries_v3)
    "INSERT INTO deliveries_v3(node, seq, envelope_id)"
    " SELECT node, seq, envelope_id FROM deliveries;"
    "DROP TABLE deliveries;"
    "ALTER TABLE deliveries_v3 RENAME TO deliveries;";
/* clang-format on */

static const char *const bstore_migrate[] = {bstore_migrate_v1, bstore_migrate_v2};

static const struct sdb_schema bstore_sc = {APP_ID_BROKER, 3, bstore_schema, bstore_upgrade,
                                            bstore_migrate};

/* Largest body a batch grows to before a new batch takes the next envelopes of its recipients:
 * bounds the memory of a group and the size of one row. */
#define BATCH_BODY_MAX (8u << 20)

/* The envelopes of one recipient list in the open group, written as one body at commit. */
struct bbatch {
    uint8_t key[32];     /* BLAKE2b-256 of the recipient list */
    uint64_t id;         /* batches.id = bodies.id */
    uint64_t deliveries; /* recipients x envelopes: what acknowledgements count down */
    uint8_t *buf;
    size_t len, cap;
};

/* A sender stream's position as cached in memory. */
struct bstream {
    uint8_t id[LIA_STREAM_ID_BYTES];
    uint64_t last;   /* including the open group */
    uint64_t c_last; /* durable */
    int dirty;
};

/* A node's stream as cached in memory. */
struct bnode {
    char id[LIA_NODE_ID_MAX + 1];
    uint64_t head, cursor;     /* including the open group */
    uint64_t c_head, c_cursor; /* durable (last successful commit) */
    uint64_t stamp;            /* last append that named it: catches repeated recipients */
    int dirty;                 /* in the dirty list */
};

struct lia_bstore {
    struct sdb d;
    lia_map_t *nodes;        /* BLAKE2b-256(node id) -> struct bnode* */
    lia_map_t *streams;      /* sender stream id -> struct bstream* */
    struct bstream **sdirty; /* streams advanced in the open group */
    size_t n_sdirty, cap_sdirty;
    struct bnode **dirty; /* nodes changed in the open group */
    size_t n_dirty, cap_dirty;
    struct bnode **scratch; /* recipients of the append in progress */
    size_t cap_scratch;
    uint64_t stamp;
    struct bbatch *batches; /* of the open group, in creation order */
    size_t n_batches, cap_batches;
    uint64_t next_batch, c_next_batch; /* the next batch id (open group / durable) */
    int legacy;                        /* deliveries of version-1 rows may remain */
    uint64_t group_ms;                 /* wall clock when the open group began (stored_at) */
    uint64_t prune_from;               /* lia_bstore_prune: the round has looked up to here */
    struct run {
        uint64_t batch, count;
    } * runs; /* scratch of lia_bstore_ack */
    size_t cap_runs;
};

static void node_key(const char *node, uint8_t key[32])
{
    crypto_generichash(key, 32, (const uint8_t *)node, strlen(node), NULL, 0);
}

/*
 * The cached stream of node (a valid node id), loaded from the nodes table on first use. With
 * create = 0 an unknown node gives *out = NULL (and nothing is cached); with create = 1 it is
 * cached with head = cursor = 0.
 */
static int bnode_get(lia_bstore_t *s, const char *node, int create, struct bnode **out)
{
    sqlite3_stmt *st = s->d.st[B_GET_NODE];
    struct bnode *b;
    uint8_t key[32];
    uint64_t head = 0, cursor = 0;
    int rc, found = 0;

    *out = NULL;
    node_key(node, key);
    b = lia_map_get(s->nodes, key);
    if (b) {
        if (strcmp(b->id, node) != 0)
            return LIA_ERR_CRYPTO; /* a BLAKE2b-256 collision */
        *out = b;
        return 0;
    }
    rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC), "load node");
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        found = 1;
        if (col_u64(st, 0, &head) != 0 || col_u64(st, 1, &cursor) != 0 || cursor > head) {
            st_reset(st);
            log_err("%s: stream of %s is malformed", s->d.what, node);
            return LIA_ERR_DECODE;
        }
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "load node");
        st_reset(st);
        return rc;
    }
    st_reset(st);
    if (!found && !create)
        return 0;
    b = calloc(1, sizeof *b);
    if (!b)
        return LIA_ERR_NOMEM;
    memcpy(b->id, node, strlen(node) + 1);
    b->head = b->c_head = head;
    b->cursor = b->c_cursor = cursor;
    if (lia_map_put(s->nodes, key, b) != 0) {
        free(b);
        return LIA_ERR_NOMEM;
    }
    *out = b;
    return 0;
}

/* Puts b in the dirty list (once) so that commit writes it and then promotes it. A failure
 * here (out of memory inside a group) fails the store: the group could not be committed
 * faithfully. */
static int bnode_touch(lia_bstore_t *s, struct bnode *b)
{
    if (b->dirty)
        return 0;
    if (grow(&s->dirty, &s->cap_dirty, s->n_dirty, sizeof *s->dirty, 64) != 0)
        return sdb_fail(&s->d, SQLITE_NOMEM, "dirty list");
    s->dirty[s->n_dirty++] = b;
    b->dirty = 1;
    return 0;
}

/* Makes the in-memory streams agree with the database again after a rollback. */
static void bstore_forget_group(lia_bstore_t *s)
{
    for (size_t i = 0; i < s->n_dirty; i++) {
        s->dirty[i]->head = s->dirty[i]->c_head;
        s->dirty[i]->cursor = s->dirty[i]->c_cursor;
        s->dirty[i]->dirty = 0;
    }
    s->n_dirty = 0;
    for (size_t i = 0; i < s->n_sdirty; i++) {
        s->sdirty[i]->last = s->sdirty[i]->c_last;
        s->sdirty[i]->dirty = 0;
    }
    s->n_sdirty = 0;
    for (size_t i = 0; i < s->n_batches; i++)
        free(s->batches[i].buf); /* ciphertext only: nothing to wipe */
    s->n_batches = 0;
    s->next_batch = s->c_next_batch;
}

/* Runs a one-row query with no parameters: *found = 1 and *value = its first column (an
 * integer >= 0), or *found = 0. */
static int bstore_query_u64(lia_bstore_t *s, int which, int *found, uint64_t *value)
{
    sqlite3_stmt *st = s->d.st[which];
    int rc = sqlite3_step(st);
    *found = 0;
    *value = 0;
    if (rc == SQLITE_ROW) {
        *found = 1;
        rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : col_u64(st, 0, value);
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = sdb_fail(&s->d, rc, "open");
    }
    st_reset(st);
    return rc;
}

/* Opens (creating if needed, mode 0600) the log at path; see the file comment for the checks.
 * LIA_ERR_PERMISSION, LIA_ERR_VERSION, LIA_ERR_WRONG_KIND, LIA_ERR_STORAGE, LIA_ERR_NOMEM. */
int lia_bstore_open(const char *path, lia_bstore_t **out)
{
    lia_bstore_t *s;
    int rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    if (!path)
        return LIA_ERR_INVALID;
    s = calloc(1, sizeof *s);
    if (!s)
        return LIA_ERR_NOMEM;
    rc = lia_map_new(32, free, &s->nodes);
    if (rc != 0)
        goto fail;
    rc = lia_map_new(LIA_STREAM_ID_BYTES, free, &s->streams);
    if (rc != 0)
        goto fail;
    rc = sdb_open(&s->d, path, "broker log", &bstore_sc, bstore_sql, B_COUNT);
    if (rc != 0)
        goto fail;
    /* Every byte of the log is end-to-end ciphertext, and the WAL keeps old page images until
     * it wraps whatever this says: zeroing each freed page (secure_delete=ON, Debian's default)
     * would write every delivered body a second time. FAST still zeroes deleted bytes on the
     * pages that are written anyway. */
    {
        int found;
        uint64_t last = 0, any = 0;
        if ((rc = sdb_exec_sql(&s->d, "PRAGMA secure_delete=FAST", "pragmas")) != 0 ||
            (rc = bstore_query_u64(s, B_NEXT_BATCH, &found, &last)) != 0 ||
            (rc = bstore_query_u64(s, B_LEGACY, &found, &any)) != 0) {
            sdb_close(&s->d);
            goto fail;
        }
        s->next_batch = s->c_next_batch = last + 1;
        s->legacy = found;
    }
    *out = s;
    return 0;
fail:
    lia_map_destroy(&s->nodes);
    lia_map_destroy(&s->streams);
    free(s);
    return rc;
}

/* Closes the log; an uncommitted group is rolled back (lost). Accepts NULL; sets *p to NULL. */
void lia_bstore_close(lia_bstore_t **p)
{
    lia_bstore_t *s;
    if (!p || !*p)
        return;
    s = *p;
    sdb_close(&s->d);
    bstore_forget_group(s); /* the batches of a group closed uncommitted */
    lia_map_destroy(&s->nodes);
    lia_map_destroy(&s->streams);
    free(s->sdirty);
    free(s->dirty);
    free(s->scratch);
    free(s->batches);
    free(s->runs);
    free(s);
    *p = NULL;
}

/* Starts a group: LIA_ERR_INVALID if one is open, LIA_ERR_STORAGE if failed. */
int lia_bstore_begin(lia_bstore_t *s)
{
    struct timespec ts;

    if (!s)
        return LIA_ERR_INVALID;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return LIA_ERR_IO;
    s->group_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return sdb_begin(&s->d);
}

/*
 * The open group's batch for this recipient list, with room for len more bytes: the newest
 * batch with the same key unless that would pass BATCH_BODY_MAX, else a new one numbered
 * next_batch. LIA_ERR_NOMEM before anything is written.
 */
static int batch_for(lia_bstore_t *s, const char *const *recipients, size_t n, size_t len,
                     struct bbatch **out)
{
    crypto_generichash_state h;
    uint8_t key[32];
    struct bbatch *b = NULL;

    if (crypto_generichash_init(&h, NULL, 0, sizeof key) != 0)
        return LIA_ERR_CRYPTO;
    for (size_t i = 0; i < n; i++)
        if (crypto_generichash_update(&h, (const uint8_t *)recipients[i],
                                      strlen(recipients[i]) + 1) != 0)
            return LIA_ERR_CRYPTO;
    if (crypto_generichash_final(&h, key, sizeof key) != 0)
        return LIA_ERR_CRYPTO;
    for (size_t i = s->n_batches; i-- > 0;)
        if (memcmp(s->batches[i].key, key, sizeof key) == 0) {
            if (s->batches[i].len + len <= BATCH_BODY_MAX)
                b = &s->batches[i];
            break;
        }
    if (!b) {
        if (grow(&s->batches, &s->cap_batches, s->n_batches, sizeof *s->batches, 8) != 0)
            return LIA_ERR_NOMEM;
        b = &s->batches[s->n_batches++];
        memset(b, 0, sizeof *b);
        memcpy(b->key, key, sizeof key);
        b->id = s->next_batch++;
    }
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 64u << 10;
        uint8_t *p;
        while (cap - b->len < len)
            cap *= 2;
        if (!(p = realloc(b->buf, cap)))
            return LIA_ERR_NOMEM;
        b->buf = p;
        b->cap = cap;
    }
    *out = b;
    return 0;
}

/*
 * Stores the envelope once and gives each recipient the next sequence of its stream. Checks,
 * before writing anything: a group is open, sender and every recipient are valid node ids,
 * no recipient is repeated, 1 <= n <= LIA_BSTORE_RECIPIENTS_MAX, 1 <= len <= LIA_ENVELOPE_MAX
 * (LIA_ERR_TOO_LARGE). A known message_id sets *duplicate = 1 and stores nothing. A SQLite
 * failure after the first write fails the store (and the group): a half-applied append never
 * survives, and no sequence is ever handed out twice.
 */
int lia_bstore_append(lia_bstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES],
                      const char *sender, const uint8_t *env, size_t len,
                      const char *const *recipients, size_t n, int *duplicate)
{
    struct bbatch *batch;
    sqlite3_stmt *st;
    sqlite3_int64 env_id;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!message_id || !lia_node_id_valid(sender) || !env || !recipients || !duplicate ||
        len == 0 || n == 0)
        return LIA_ERR_INVALID;
    *duplicate = 0;
    if (len > LIA_ENVELOPE_MAX || n > LIA_BSTORE_RECIPIENTS_MAX)
        return LIA_ERR_TOO_LARGE;
    if (n > s->cap_scratch) {
        struct bnode **p = realloc(s->scratch, n * sizeof *p);
        if (!p)
            return LIA_ERR_NOMEM;
        s->scratch = p;
        s->cap_scratch = n;
    }
    s->stamp++;
    for (size_t i = 0; i < n; i++) {
        if (!lia_node_id_valid(recipients[i]))
            return LIA_ERR_INVALID;
        rc = bnode_get(s, recipients[i], 1, &s->scratch[i]);
        if (rc != 0)
            return rc;
        if (s->scratch[i]->stamp == s->stamp)
            return LIA_ERR_INVALID; /* the same recipient twice */
        s->scratch[i]->stamp = s->stamp;
    }

    if ((rc = batch_for(s, recipients, n, len, &batch)) != 0)
        return rc;
    st = s->d.st[B_INS_ENV];
    rc = st_bound(&s->d, st,
                  bind_blob(st, 1, message_id, LIA_MESSAGE_ID_BYTES) |
                      sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC) |
                      bind_u64(st, 3, batch->id) | bind_u64(st, 4, batch->len) |
                      bind_u64(st, 5, len) | bind_u64(st, 6, s->group_ms),
                  "append");
    if (rc == 0)
        rc = st_exec(&s->d, st, "append");
    if (rc != 0)
        return rc;
    if (sqlite3_changes(s->d.db) == 0) {
        *duplicate = 1; /* an empty batch is not written at commit */
        return 0;
    }
    env_id = sqlite3_last_insert_rowid(s->d.db);
    memcpy(batch->buf + batch->len, env, len); /* room reserved by batch_for */
    batch->len += len;
    batch->deliveries += n;

    st = s->d.st[B_INS_DEL];
    for (size_t i = 0; i < n; i++) {
        struct bnode *b = s->scratch[i];
        rc = bnode_touch(s, b);
        if (rc != 0)
            return rc;
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC) |
                          bind_u64(st, 2, b->head + 1) | sqlite3_bind_int64(st, 3, env_id),
                      "append delivery");
        if (rc == 0)
            rc = st_exec(&s->d, st, "append delivery");
        if (rc != 0) {
            bstore_forget_group(s);
            return rc;
        }
        b->head++;
    }
    return 0;
}

/*
 * The last sender sequence stored for a stream (0 if none). Cached in memory after the first
 * read; a group that fails leaves the store failed, so the cache never outlives a rollback.
 */
int lia_bstore_stream_last(lia_bstore_t *s, const uint8_t stream[LIA_STREAM_ID_BYTES],
                           uint64_t *last)
{
    struct bstream *v;
    sqlite3_stmt *st;
    int rc;

    if (!s || !stream || !last)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    if ((v = lia_map_get(s->streams, stream)) != NULL) {
        *last = v->last;
        return 0;
    }
    st = s->d.st[B_GET_STREAM];
    if ((rc = st_bound(&s->d, st, bind_blob(st, 1, stream, LIA_STREAM_ID_BYTES), "stream get")) !=
        0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 x = sqlite3_column_int64(st, 0);
        *last = x < 0 ? 0 : (uint64_t)x;
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        *last = 0;
        rc = 0;
    } else {
        rc = sdb_fail(&s->d, rc, "stream get");
    }
    st_reset(st);
    if (rc != 0)
        return rc;
    if (!(v = calloc(1, sizeof *v)))
        return LIA_ERR_NOMEM;
    memcpy(v->id, stream, LIA_STREAM_ID_BYTES);
    v->last = v->c_last = *last;
    if (lia_map_put(s->streams, stream, v) != 0) {
        free(v);
        return LIA_ERR_NOMEM;
    }
    return 0;
}

/*
 * Within a group: records seq as the last sequence stored for the stream. Written once per
 * stream at commit, whatever the number of envelopes in the group.
 */
int lia_bstore_stream_set(lia_bstore_t *s, const uint8_t stream[LIA_STREAM_ID_BYTES], uint64_t seq)
{
    struct bstream *v;
    uint64_t last;
    int rc;

    if ((rc = lia_bstore_stream_last(s, stream, &last)) != 0)
        return rc;
    if ((rc = sdb_ready(&s->d, 1)) != 0)
        return rc;
    v = lia_map_get(s->streams, stream);
    if (!v->dirty) {
        if (grow(&s->sdirty, &s->cap_sdirty, s->n_sdirty, sizeof *s->sdirty, 64) != 0)
            return LIA_ERR_NOMEM;
        s->sdirty[s->n_sdirty++] = v;
        v->dirty = 1;
    }
    v->last = seq;
    return 0;
}

/* *found = 1 if an envelope with this message id was ever stored. */
int lia_bstore_has(lia_bstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES], int *found)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !message_id || !found)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    st = s->d.st[B_HAS_MSG];
    if ((rc = st_bound(&s->d, st, bind_blob(st, 1, message_id, LIA_MESSAGE_ID_BYTES),
                       "message lookup")) != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *found = rc == SQLITE_ROW;
        rc = 0;
    } else {
        rc = sdb_fail(&s->d, rc, "message lookup");
    }
    st_reset(st);
    return rc;
}

/*
 * Counts down the batches referenced by b's deliveries in (b->cursor, seq] and deletes the body
 * of each batch that no delivery references any more: one row and its overflow pages, none of
 * them rewritten. Deliveries come in sequence order, so they are counted as runs per batch.
 */
static int release_batches(lia_bstore_t *s, const struct bnode *b, uint64_t seq)
{
    sqlite3_stmt *st = s->d.st[B_BATCH_REFS];
    size_t n_runs = 0;
    int rc, src;

    rc = st_bound(&s->d, st,
                  sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC) | bind_u64(st, 2, b->cursor) |
                      bind_u64(st, 3, seq),
                  "ack");
    if (rc != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t batch;
        if ((rc = col_u64(st, 0, &batch)) != 0)
            break;
        if (n_runs > 0 && s->runs[n_runs - 1].batch == batch) {
            s->runs[n_runs - 1].count++;
            continue;
        }
        if (grow(&s->runs, &s->cap_runs, n_runs, sizeof *s->runs, 16) != 0) {
            rc = sdb_fail(&s->d, SQLITE_NOMEM, "ack");
            break;
        }
        s->runs[n_runs].batch = batch;
        s->runs[n_runs++].count = 1;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sdb_fail(&s->d, src, "ack");
    st_reset(st);
    for (size_t i = 0; i < n_runs && rc == 0; i++) {
        int64_t left = 0;
        st = s->d.st[B_BATCH_DEC];
        rc = st_bound(&s->d, st,
                      bind_u64(st, 1, s->runs[i].batch) | bind_u64(st, 2, s->runs[i].count), "ack");
        if (rc != 0)
            break;
        src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            left = sqlite3_column_int64(st, 0);
        else if (src != SQLITE_DONE)
            rc = sdb_fail(&s->d, src, "ack");
        else
            left = -1; /* no such batch: reported below */
        if (rc == 0 && src == SQLITE_ROW && (src = sqlite3_step(st)) != SQLITE_DONE)
            rc = sdb_fail(&s->d, src, "ack");
        st_reset(st);
        if (rc != 0 || left > 0)
            continue;
        if (left < 0)
            log_err("%s: batch %llu was counted down below zero or is missing; its body is "
                    "dropped",
                    s->d.what, (unsigned long long)s->runs[i].batch);
        st = s->d.st[B_BODY_DEL];
        rc = st_bound(&s->d, st, bind_u64(st, 1, s->runs[i].batch), "ack");
        if (rc == 0)
            rc = st_exec(&s->d, st, "ack");
        st = s->d.st[B_BATCH_DEL];
        if (rc == 0)
            rc = st_bound(&s->d, st, bind_u64(st, 1, s->runs[i].batch), "ack");
        if (rc == 0)
            rc = st_exec(&s->d, st, "ack");
    }
    return rc;
}

/*
 * Moves node's cursor up to seq inside a group and collects what it no longer needs: its
 * delivery rows up to seq, and the bytes of every envelope that no node still waits for.
 * seq <= cursor is a no-op; seq above the durable head (or an unknown node) is LIA_ERR_INVALID.
 */
int lia_bstore_ack(lia_bstore_t *s, const char *node, uint64_t seq)
{
    sqlite3_stmt *st;
    struct bnode *b;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!lia_node_id_valid(node))
        return LIA_ERR_INVALID;
    rc = bnode_get(s, node, 0, &b);
    if (rc != 0)
        return rc;
    if (!b)
        return seq == 0 ? 0 : LIA_ERR_INVALID;
    if (seq > b->c_head)
        return LIA_ERR_INVALID;
    if (seq <= b->cursor)
        return 0;
    rc = bnode_touch(s, b);
    if (rc != 0)
        return rc;
    if (s->legacy) {
        st = s->d.st[B_GC_ENV];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC) |
                          bind_u64(st, 2, b->cursor) | bind_u64(st, 3, seq),
                      "ack");
        if (rc == 0)
            rc = st_exec(&s->d, st, "ack");
    }
    if (rc == 0)
        rc = release_batches(s, b, seq);
    if (rc == 0) {
        st = s->d.st[B_DEL_DEL];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC) | bind_u64(st, 2, seq),
                      "ack");
    }
    if (rc == 0)
        rc = st_exec(&s->d, st, "ack");
    if (rc != 0) {
        bstore_forget_group(s);
        return rc;
    }
    b->cursor = seq;
    return 0;
}

/*
 * Writes the streams changed in the group, then COMMIT (fsync). On success the new heads and
 * cursors become the durable ones; any failure fails the store (LIA_ERR_STORAGE).
 */
int lia_bstore_commit(lia_bstore_t *s)
{
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s->n_batches && rc == 0; i++) {
        const struct bbatch *b = &s->batches[i];
        if (b->len == 0)
            continue; /* only duplicates were offered */
        st = s->d.st[B_BODY_INS];
        rc = st_bound(&s->d, st,
                      bind_u64(st, 1, b->id) |
                          sqlite3_bind_blob64(st, 2, b->buf, b->len, SQLITE_STATIC),
                      "commit bodies");
        if (rc == 0)
            rc = st_exec(&s->d, st, "commit bodies");
        if (rc != 0)
            break;
        st = s->d.st[B_BATCH_INS];
        rc = st_bound(&s->d, st, bind_u64(st, 1, b->id) | bind_u64(st, 2, b->deliveries),
                      "commit bodies");
        if (rc == 0)
            rc = st_exec(&s->d, st, "commit bodies");
    }
    st = s->d.st[B_PUT_NODE];
    for (size_t i = 0; i < s->n_dirty && rc == 0; i++) {
        const struct bnode *b = s->dirty[i];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC) |
                          bind_u64(st, 2, b->head) | bind_u64(st, 3, b->cursor),
                      "commit streams");
        if (rc == 0)
            rc = st_exec(&s->d, st, "commit streams");
    }
    st = s->d.st[B_PUT_STREAM];
    for (size_t i = 0; i < s->n_sdirty && rc == 0; i++) {
        rc = st_bound(&s->d, st,
                      bind_blob(st, 1, s->sdirty[i]->id, LIA_STREAM_ID_BYTES) |
                          bind_u64(st, 2, s->sdirty[i]->last),
                      "commit sender streams");
        if (rc == 0)
            rc = st_exec(&s->d, st, "commit sender streams");
    }
    if (rc == 0)
        rc = sdb_commit(&s->d);
    if (rc != 0) {
        bstore_forget_group(s);
        return rc;
    }
    for (size_t i = 0; i < s->n_sdirty; i++) {
        s->sdirty[i]->c_last = s->sdirty[i]->last;
        s->sdirty[i]->dirty = 0;
    }
    s->n_sdirty = 0;
    s->c_next_batch = s->next_batch;
    for (size_t i = 0; i < s->n_batches; i++)
        free(s->batches[i].buf);
    s->n_batches = 0;
    for (size_t i = 0; i < s->n_dirty; i++) {
        s->dirty[i]->c_head = s->dirty[i]->head;
        s->dirty[i]->c_cursor = s->dirty[i]->cursor;
        s->dirty[i]->dirty = 0;
    }
    s->n_dirty = 0;
    return 0;
}

/* Frees the data of n items and clears them. Accepts NULL. */
void lia_bstore_items_free(lia_bstore_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].data);
        items[i].data = NULL;
        items[i].len = 0;
    }
}

/*
 * Reads len bytes at off of the body of batch into out, through *h (opened read-only on first
 * use, moved to another row when the batch changes; the caller closes it). Incremental blob I/O
 * reads only the overflow pages that hold the range, not the whole body. LIA_ERR_DECODE if the
 * range is not inside the body; LIA_ERR_STORAGE (store failed) on an I/O error.
 */
static int read_body(lia_bstore_t *s, sqlite3_blob **h, uint64_t *h_id, uint64_t batch,
                     uint64_t off, uint8_t *out, uint64_t len)
{
    int rc = SQLITE_OK;

    if (batch > INT64_MAX)
        return LIA_ERR_DECODE;
    if (!*h)
        rc = sqlite3_blob_open(s->d.db, "main", "bodies", "data", (sqlite3_int64)batch, 0, h);
    else if (*h_id != batch)
        rc = sqlite3_blob_reopen(*h, (sqlite3_int64)batch);
    if (rc != SQLITE_OK) {
        /* A missing row is damage (LIA_ERR_DECODE); anything else is the file (failed). */
        if (rc == SQLITE_ERROR)
            return LIA_ERR_DECODE;
        return sdb_fail(&s->d, rc, "fetch body");
    }
    *h_id = batch;
    if (off > INT_MAX || len > INT_MAX - off || off + len > (uint64_t)sqlite3_blob_bytes(*h))
        return LIA_ERR_DECODE;
    rc = sqlite3_blob_read(*h, out, (int)len, (int)off);
    return rc == SQLITE_OK ? 0 : sdb_fail(&s->d, rc, "fetch body");
}

/*
 * Up to max durable deliveries of node with seq > after, in order (only committed sequences:
 * never one a failed group could take back). Deliveries at or below the node's cursor may
 * have been collected. Stored bytes are re-checked (1..LIA_ENVELOPE_MAX, else LIA_ERR_DECODE).
 * On error nothing is returned (*n = 0).
 */
int lia_bstore_fetch(lia_bstore_t *s, const char *node, uint64_t after, size_t max,
                     lia_bstore_item *items, size_t *n)
{
    sqlite3_blob *body = NULL;
    uint64_t body_id = 0;
    sqlite3_stmt *st;
    struct bnode *b;
    size_t got = 0;
    int rc, src;

    if (!n)
        return LIA_ERR_INVALID;
    *n = 0;
    if (!s || (!items && max))
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 0);
    if (rc != 0)
        return rc;
    if (!lia_node_id_valid(node))
        return LIA_ERR_INVALID;
    rc = bnode_get(s, node, 0, &b);
    if (rc != 0 || !b || max == 0 || after >= b->c_head)
        return rc;
    if (max > INT64_MAX)
        max = INT64_MAX;
    st = s->d.st[B_FETCH];
    rc = st_bound(&s->d, st,
                  sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC) | bind_u64(st, 2, after) |
                      bind_u64(st, 3, b->c_head) | bind_u64(st, 4, max),
                  "fetch");
    if (rc != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const void *p = NULL;
        uint64_t batch = 0, off = 0, blen = 0;
        int legacy;
        if (got == max)
            break;
        items[got].data = NULL;
        rc = col_u64(st, 0, &items[got].seq);
        if (rc != 0)
            goto fail;
        legacy = sqlite3_column_type(st, 2) == SQLITE_NULL; /* a version-1 row: bytes inline */
        if (legacy) {
            p = sqlite3_column_blob(st, 1);
            blen = sqlite3_column_type(st, 1) == SQLITE_BLOB && sqlite3_column_bytes(st, 1) > 0
                       ? (uint64_t)sqlite3_column_bytes(st, 1)
                       : 0;
        } else if (col_u64(st, 2, &batch) != 0 || col_u64(st, 3, &off) != 0 ||
                   col_u64(st, 4, &blen) != 0) {
            blen = 0;
        }
        if (blen == 0 || blen > LIA_ENVELOPE_MAX || (legacy && !p)) {
            log_err("%s: delivery %s/%llu has no valid envelope", s->d.what, node,
                    (unsigned long long)items[got].seq);
            rc = LIA_ERR_DECODE;
            goto fail;
        }
        items[got].data = malloc((size_t)blen);
        if (!items[got].data) {
            rc = LIA_ERR_NOMEM;
            goto fail;
        }
        if (legacy)
            memcpy(items[got].data, p, (size_t)blen);
        else if ((rc = read_body(s, &body, &body_id, batch, off, items[got].data, blen)) != 0) {
            log_err("%s: delivery %s/%llu: its envelope cannot be read from batch %llu", s->d.what,
                    node, (unsigned long long)items[got].seq, (unsigned long long)batch);
            goto fail;
        }
        items[got].len = (size_t)blen;
        got++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = sdb_fail(&s->d, src, "fetch");
        goto fail;
    }
    st_reset(st);
    if (body)
        (void)sqlite3_blob_close(body); /* read-only: nothing to report */
    *n = got;
    return 0;
fail:
    st_reset(st);
    if (body)
        (void)sqlite3_blob_close(body);
    lia_bstore_items_free(items, got);
    return rc;
}

/* Bytes of bodies held (batches not yet delivered to all their recipients). */
int lia_bstore_held(lia_bstore_t *s, uint64_t *batches, uint64_t *bytes)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !batches || !bytes)
        return LIA_ERR_INVALID;
    *batches = *bytes = 0;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    st = s->d.st[B_HELD];
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = col_u64(st, 0, batches) != 0 || col_u64(st, 1, bytes) != 0 ? LIA_ERR_DECODE : 0;
    else
        rc = sdb_fail(&s->d, rc, "held");
    st_reset(st);
    return rc;
}

/*
 * Within a group: one step of forgetting delivered envelopes stored before before_ms: looks at
 * the next `scan` rows after where the last step stopped (so that a step costs the same however
 * large the log is, and old rows still owed to an absent node are not searched again at every
 * step), deletes those that qualify and sets *done when the round reached rows stored since
 * before_ms or the end of the log; the next step then starts a new round from the oldest row.
 */
int lia_bstore_prune(lia_bstore_t *s, uint64_t before_ms, size_t scan, size_t *pruned, int *done)
{
    sqlite3_stmt *st;
    uint64_t upto = 0, upto_at = 0;
    int rc, found = 0;

    if (!s || !pruned || !done || scan == 0 || scan > INT32_MAX || before_ms > INT64_MAX)
        return LIA_ERR_INVALID;
    *pruned = 0;
    *done = 0;
    if ((rc = sdb_ready(&s->d, 1)) != 0)
        return rc;
    st = s->d.st[B_PRUNE_UPTO];
    rc = st_bound(&s->d, st, bind_u64(st, 1, s->prune_from) | bind_u64(st, 2, scan - 1),
                  "forget range");
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        found = 1;
        rc = col_u64(st, 0, &upto) != 0 ? LIA_ERR_DECODE : 0;
        if (rc == 0 && sqlite3_column_type(st, 1) != SQLITE_NULL && col_u64(st, 1, &upto_at) != 0)
            rc = LIA_ERR_DECODE;
    } else if (rc == SQLITE_DONE) {
        upto = INT64_MAX; /* fewer than scan rows left: up to the end */
        rc = 0;
    } else {
        rc = sdb_fail(&s->d, rc, "forget range");
    }
    st_reset(st);
    if (rc != 0)
        return rc;
    st = s->d.st[B_PRUNE];
    rc = st_bound(&s->d, st,
                  bind_u64(st, 1, s->prune_from) | bind_u64(st, 2, upto) |
                      bind_u64(st, 3, before_ms),
                  "forget");
    if (rc == 0)
        rc = st_exec(&s->d, st, "forget");
    if (rc != 0)
        return rc;
    *pruned = (size_t)sqlite3_changes(s->d.db);
    if (!found || upto_at >= before_ms) {
        *done = 1;
        s->prune_from = 0;
    } else {
        s->prune_from = upto;
    }
    return 0;
}

/* The node's durable cursor and head (0, 0 for a node never seen). */
int lia_bstore_cursor(lia_bstore_t *s, const char *node, uint64_t *cursor, uint64_t *head)
{
    struct bnode *b;
    int rc;

    if (!s || !cursor || !head)
        return LIA_ERR_INVALID;
    *cursor = *head = 0;
    rc = sdb_ready(&s->d, 0);
    if (rc != 0)
        return rc;
    if (!lia_node_id_valid(node))
        return LIA_ERR_INVALID;
    rc = bnode_get(s, node, 0, &b);
    if (rc == 0 && b) {
        *cursor = b->c_cursor;
        *head = b->c_head;
    }
    return rc;
}

/* Checks a state key: 1..LIA_NSTORE_STATE_KEY_MAX bytes of valid text. */
static int bstate_key_ok(const char *key, size_t *len)
{
    if (!key)
        return 0;
    *len = strnlen(key, LIA_NSTORE_STATE_KEY_MAX + 1);
    return *len > 0 && *len <= LIA_NSTORE_STATE_KEY_MAX && lia_text_valid(key, *len);
}

/* In a group: sets key to val (1..LIA_BSTORE_STATE_MAX bytes), replacing any value. */
int lia_bstore_state_put(lia_bstore_t *s, const char *key, const uint8_t *val, size_t len)
{
    sqlite3_stmt *st;
    size_t key_len;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 1)) != 0)
        return rc;
    if (!bstate_key_ok(key, &key_len) || !val || len == 0)
        return LIA_ERR_INVALID;
    if (len > LIA_BSTORE_STATE_MAX)
        return LIA_ERR_TOO_LARGE;
    st = s->d.st[B_STATE_PUT];
    rc = st_bound(&s->d, st,
                  sqlite3_bind_text(st, 1, key, (int)key_len, SQLITE_STATIC) |
                      bind_blob(st, 2, val, len),
                  "state put");
    if (rc == 0)
        rc = st_exec(&s->d, st, "state put");
    return rc;
}

/*
 * Appends (a copy of key, a copy of val if val is not NULL) to a growing lia_nstore_kv array.
 * On LIA_ERR_NOMEM the array holds what was appended before (and the entry's key, if any, is
 * counted so that lia_nstore_kv_free releases it).
 */
static int kv_push(lia_nstore_kv **kv, size_t *count, size_t *cap, const char *key, const void *val,
                   size_t len)
{
    if (grow(kv, cap, *count, sizeof **kv, 16) != 0)
        return LIA_ERR_NOMEM;
    lia_nstore_kv *e = &(*kv)[*count];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key)))
        return LIA_ERR_NOMEM;
    (*count)++;
    if (val) {
        if (!(e->val = malloc(len ? len : 1)))
            return LIA_ERR_NOMEM;
        memcpy(e->val, val, len);
        e->len = len;
    }
    return 0;
}

/*
 * Every committed (or in this group) state entry whose key starts with prefix, in key order;
 * values re-checked against the bound (LIA_ERR_DECODE). *out owned by the caller
 * (lia_nstore_kv_free).
 */
int lia_bstore_state_list(lia_bstore_t *s, const char *prefix, lia_nstore_kv **out, size_t *n)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0, cap = 0, plen;
    sqlite3_stmt *st;
    int rc;

    if (!out || !n || !s || !bstate_key_ok(prefix, &plen))
        return LIA_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    st = s->d.st[B_STATE_KEYS];
    if ((rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, prefix, (int)plen, SQLITE_STATIC),
                       "state keys")) != 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const void *v = sqlite3_column_blob(st, 1);
        int vlen = sqlite3_column_bytes(st, 1);
        if (!k || strncmp(k, prefix, plen) != 0)
            break;
        if (!v || vlen <= 0 || (size_t)vlen > LIA_BSTORE_STATE_MAX) {
            rc = LIA_ERR_DECODE;
            goto fail;
        }
        if ((rc = kv_push(&kv, &count, &cap, k, v, (size_t)vlen)) != 0)
            goto fail;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "state keys");
        goto fail;
    }
    st_reset(st);
    *out = kv;
    *n = count;
    return 0;
fail:
    st_reset(st);
    lia_nstore_kv_free(kv, count);
    return rc;
}

/* ---------------- node store ---------------- */

enum {
    N_OB_INS = ST_COMMON_COUNT,
    N_OB_DEL,
    N_OB_PENDING,
    N_OB_LOAD,
    N_OA_PUT,
    N_OA_DEL,
    N_IN_ADD,
    N_IN_REFUSE,
    N_IN_GET,
    N_IN_LIST,
    N_IN_LIST_CH,
    N_META_GET,
    N_META_PUT,
    N_STATE_GET,
    N_STATE_PUT,
    N_STATE_KEYS,
    N_COUNT
};

#define INBOX_COLS                                                                                 \
    "delivery_seq, sender, channel, sender_seq, created_at_ms, received_at_ms, message_id,"        \
    " nonce, payload"

static const char *const nstore_sql[N_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [N_OB_INS] = "INSERT INTO outbatch(id, n, ids, lens, data) VALUES(?1, ?2, ?3, ?4, ?5)",
    [N_OB_DEL] = "DELETE FROM outbatch WHERE id = ?1",
    [N_OB_PENDING] = "SELECT id, n, ids, lens, data FROM outbatch WHERE id >= ?1 ORDER BY id",
    [N_OB_LOAD] = "SELECT b.id, b.n, b.ids, a.bits FROM outbatch AS b"
                  " LEFT JOIN outacks AS a ON a.batch = b.id ORDER BY b.id",
    [N_OA_PUT] = "INSERT INTO outacks(batch, bits) VALUES(?1, ?2)"
                 " ON CONFLICT(batch) DO UPDATE SET bits = excluded.bits",
    [N_OA_DEL] = "DELETE FROM outacks WHERE batch = ?1",
    [N_IN_ADD] = "INSERT INTO inbox(" INBOX_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                 " ON CONFLICT(delivery_seq) DO NOTHING",
    [N_IN_REFUSE] = "INSERT INTO inbox(delivery_seq, refused_reason) VALUES(?1, ?2)"
                    " ON CONFLICT(delivery_seq) DO NOTHING",
    [N_IN_GET] = "SELECT message_id, refused_reason IS NOT NULL FROM inbox"
                 " WHERE delivery_seq = ?1",
    [N_IN_LIST] = "SELECT " INBOX_COLS " FROM inbox WHERE delivery_seq > ?1"
                  " AND refused_reason IS NULL ORDER BY delivery_seq LIMIT ?2",
    [N_IN_LIST_CH] = "SELECT " INBOX_COLS " FROM inbox WHERE channel = ?3 AND delivery_seq > ?1"
                     " AND refused_reason IS NULL ORDER BY delivery_seq LIMIT ?2",
    [N_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [N_META_PUT] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [N_STATE_GET] = "SELECT nonce, value FROM state WHERE key = ?1",
    [N_STATE_PUT] =
        "INSERT INTO state(key, nonce, value) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(key) DO UPDATE SET nonce = excluded.nonce, value = excluded.value",
    [N_STATE_KEYS] = "SELECT key FROM state WHERE key >= ?1 ORDER BY key",
};

#define OUTBATCH_TABLES                                                                            \
    "CREATE TABLE outbatch(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, ids BLOB NOT NULL,"         \
    " lens BLOB NOT NULL, data BLOB NOT NULL);"                                                    \
    "CREATE TABLE outacks(batch INTEGER PRIMARY KEY, bits BLOB NOT NULL);"

static const char nstore_schema[] = OUTBATCH_TABLES
    "CREATE TABLE inbox(delivery_seq INTEGER PRIMARY KEY, sender TEXT, channel TEXT,"
    " sender_seq INTEGER, created_at_ms INTEGER, received_at_ms INTEGER, message_id BLOB,"
    " nonce BLOB, payload BLOB, refused_reason TEXT,"
    " CHECK ((payload IS NULL) <> (refused_reason IS NULL)));"
    "CREATE INDEX inbox_channel ON inbox(channel, delivery_seq);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE state(key TEXT PRIMARY KEY, nonce BLOB NOT NULL, value BLOB NOT NULL)"
    " WITHOUT ROWID;";

/* Version 1 kept one outbox row per envelope; lia_nstore_open moves any into batches. */
static const char nstore_migrate_v1[] = OUTBATCH_TABLES;
static const char *const nstore_migrate[] = {nstore_migrate_v1};

static const struct sdb_schema nstore_sc = {APP_ID_NODE, 2, nstore_schema, NULL, nstore_migrate};

/* Envelopes one outbox batch holds at most (the rest of a larger group starts another). */
#define OUTBATCH_MAX 4096u

/* An outbox entry: where its message id sits, and whether the broker acknowledged it. */
struct oent {
    struct obatch *b;
    uint32_t i;
    uint8_t acked;
};

/*
 * An outbox batch: the envelopes added in one group, stored as one outbatch row (ids, lengths
 * and bytes concatenated) with outbox ids first..first+n-1. In memory only the ids and the
 * acknowledgement state; the bytes stay on disk until a resend reads them.
 */
#define OENT_CHUNK 64u /* entries never move once allocated: the map points at them */

struct obatch {
    uint64_t first;
    uint32_t n, n_acked;
    int building;      /* added to in the open group; its row is written at commit */
    int touched;       /* acknowledged in the open group: outacks to write at commit */
    uint8_t *ids;      /* n x LIA_MESSAGE_ID_BYTES */
    struct oent **ent; /* chunks of OENT_CHUNK entries */
    size_t cap;        /* entries the ids array and the chunks hold */
    uint8_t *data;     /* while building: the envelopes, concatenated */
    uint8_t *lens;     /* while building: u32be length of each */
    size_t data_len, data_cap;
};

/* Statements of the hub index, prepared by lia_nstore_hub_enable (the table may not exist
 * before). */
enum { H_ADD, H_MARK, H_SEARCH_SCAN, H_SEARCH_TERMS, H_COUNT };

struct lia_nstore {
    struct sdb d;
    const lia_symkey_t *key; /* borrowed storage key */
    uint64_t cursor;         /* including the open group */
    uint64_t c_cursor;       /* durable */

    /* Outbox: batches in id order (the last may be the open group's), and message id -> entry
     * for every unacknowledged envelope. */
    struct obatch **ob;
    size_t n_ob, cap_ob;
    struct obatch *open_b; /* the open group's batch, also last in ob; NULL if none */
    lia_map_t *pending;
    uint64_t unacked;
    uint64_t next_id, c_next_id; /* the next outbox id (open group / durable) */
    struct obatch **touched;     /* batches acknowledged in the open group */
    size_t n_touched, cap_touched;

    /* Hub index statements: NULL until lia_nstore_hub_enable. */
    sqlite3_stmt *hub_st[H_COUNT];
};

/* Associated data of an inbox payload: every stored field of the row, so that none can be
 * changed or the ciphertext moved to another row without the tag failing:
 * "liaison.v1.inbox\0" || u64be(delivery_seq) || message_id || u64be(sender_seq) ||
 * u64be(created_at_ms) || u64be(received_at_ms) || u8(len) sender || u8(len) channel. */
static size_t inbox_ad(uint8_t *ad, uint64_t seq, const uint8_t *message_id, uint64_t sender_seq,
                       uint64_t created, uint64_t received, const char *sender, size_t sender_len,
                       const char *channel, size_t channel_len)
{
    size_t o = 0;
    memcpy(ad, AD_INBOX_TAG, sizeof AD_INBOX_TAG);
    o += sizeof AD_INBOX_TAG;
    put_u64be(ad + o, seq);
    o += 8;
    memcpy(ad + o, message_id, LIA_MESSAGE_ID_BYTES);
    o += LIA_MESSAGE_ID_BYTES;
    put_u64be(ad + o, sender_seq);
    o += 8;
    put_u64be(ad + o, created);
    o += 8;
    put_u64be(ad + o, received);
    o += 8;
    ad[o++] = (uint8_t)sender_len;
    memcpy(ad + o, sender, sender_len);
    o += sender_len;
    ad[o++] = (uint8_t)channel_len;
    memcpy(ad + o, channel, channel_len);
    o += channel_len;
    return o;
}

/* Associated data of a state value: "liaison.v1.state\0" || key. */
static size_t state_ad(uint8_t *ad, const char *key, size_t key_len)
{
    memcpy(ad, AD_STATE_TAG, sizeof AD_STATE_TAG);
    memcpy(ad + sizeof AD_STATE_TAG, key, key_len);
    return sizeof AD_STATE_TAG + key_len;
}

/* Loads the inbox cursor from meta (0 if absent). */
static int nstore_load_cursor(lia_nstore_t *s)
{
    sqlite3_stmt *st = s->d.st[N_META_GET];
    int rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, "cursor", -1, SQLITE_STATIC), "cursor");
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (col_u64(st, 0, &s->c_cursor) != 0) {
            st_reset(st);
            return LIA_ERR_DECODE;
        }
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "cursor");
        st_reset(st);
        return rc;
    }
    st_reset(st);
    s->cursor = s->c_cursor;
    return 0;
}

static struct oent *oent_at(const struct obatch *b, uint32_t i)
{
    return &b->ent[i / OENT_CHUNK][i % OENT_CHUNK];
}

static void obatch_free(struct obatch *b)
{
    if (!b)
        return;
    for (size_t c = 0; c < (b->cap + OENT_CHUNK - 1) / OENT_CHUNK; c++)
        free(b->ent[c]);
    free(b->ent);
    free(b->ids);
    free(b->data);
    free(b->lens);
    free(b);
}

/* Drops b from the batch list (memory only) and frees it. */
static void ob_drop(lia_nstore_t *s, struct obatch *b)
{
    for (size_t i = 0; i < s->n_ob; i++)
        if (s->ob[i] == b) {
            memmove(&s->ob[i], &s->ob[i + 1], (s->n_ob - i - 1) * sizeof *s->ob);
            s->n_ob--;
            break;
        }
    if (s->open_b == b)
        s->open_b = NULL;
    obatch_free(b);
}

/* Appends a new, empty batch numbered from first to the list. NULL if out of memory. */
static struct obatch *ob_push(lia_nstore_t *s, uint64_t first)
{
    struct obatch *b;
    if (grow(&s->ob, &s->cap_ob, s->n_ob, sizeof *s->ob, 16) != 0)
        return NULL;
    if (!(b = calloc(1, sizeof *b)))
        return NULL;
    b->first = first;
    s->ob[s->n_ob++] = b;
    return b;
}

/* Room for one more entry in b (ids and a chunk of entries). LIA_ERR_NOMEM changes nothing. */
static int obatch_reserve(struct obatch *b)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap + OENT_CHUNK, chunks = cap / OENT_CHUNK;
    uint8_t *ids = realloc(b->ids, cap * LIA_MESSAGE_ID_BYTES);
    if (!ids)
        return LIA_ERR_NOMEM;
    b->ids = ids;
    struct oent **ent = realloc(b->ent, chunks * sizeof *ent);
    if (!ent)
        return LIA_ERR_NOMEM;
    b->ent = ent;
    if (!(ent[chunks - 1] = calloc(OENT_CHUNK, sizeof **ent)))
        return LIA_ERR_NOMEM;
    b->cap = cap;
    return 0;
}

/* Records entry i of b (message id at b->ids + i * 16) as pending. */
static int oent_track(lia_nstore_t *s, struct obatch *b, uint32_t i)
{
    struct oent *e = oent_at(b, i);
    e->b = b;
    e->i = i;
    e->acked = 0;
    if (lia_map_put(s->pending, b->ids + (size_t)i * LIA_MESSAGE_ID_BYTES, e) != 0)
        return LIA_ERR_NOMEM;
    s->unacked++;
    return 0;
}

/*
 * Makes the outbox in memory agree with the database after a group that will not commit: the
 * batches built in it are forgotten (their entries unmapped) and acknowledgements of the group
 * are not undone in memory, which only means that their envelopes are not resent before a
 * restart reads the durable state again. Called when the store fails.
 */
static void outbox_forget_group(lia_nstore_t *s)
{
    /* The touched list may name batches built in this group: cleared before they go. */
    for (size_t i = 0; i < s->n_touched; i++)
        s->touched[i]->touched = 0;
    s->n_touched = 0;
    while (s->n_ob > 0 && s->ob[s->n_ob - 1]->building) {
        struct obatch *b = s->ob[s->n_ob - 1];
        for (uint32_t i = 0; i < b->n; i++)
            if (!oent_at(b, i)->acked &&
                lia_map_remove(s->pending, b->ids + (size_t)i * LIA_MESSAGE_ID_BYTES))
                s->unacked--;
        ob_drop(s, b);
    }
    s->open_b = NULL;
    s->next_id = s->c_next_id;
}

/*
 * Writes the open group's outbox changes: each batch built in it as one row (entries already
 * acknowledged included; they are marked in outacks), the acknowledgement bits of every batch
 * acknowledged in part, and the next outbox id.
 */
static int outbox_flush(lia_nstore_t *s)
{
    sqlite3_stmt *st;
    int rc = 0;

    for (size_t i = s->n_ob; i-- > 0 && s->ob[i]->building && rc == 0;) {
        struct obatch *b = s->ob[i];
        if (b->n_acked == b->n)
            continue; /* acknowledged before it was even stored: nothing to keep */
        st = s->d.st[N_OB_INS];
        rc = st_bound(&s->d, st,
                      bind_u64(st, 1, b->first) | bind_u64(st, 2, b->n) |
                          bind_blob(st, 3, b->ids, (size_t)b->n * LIA_MESSAGE_ID_BYTES) |
                          bind_blob(st, 4, b->lens, (size_t)b->n * 4) |
                          sqlite3_bind_blob64(st, 5, b->data, b->data_len, SQLITE_STATIC),
                      "outbox add");
        if (rc == 0)
            rc = st_exec(&s->d, st, "outbox add");
    }
    for (size_t i = 0; i < s->n_touched && rc == 0; i++) {
        struct obatch *b = s->touched[i];
        if (b->building && b->n_acked == b->n)
            continue;
        uint8_t *bits = calloc(((size_t)b->n + 7) / 8, 1);
        if (!bits)
            return sdb_fail(&s->d, SQLITE_NOMEM, "outbox acks");
        for (uint32_t k = 0; k < b->n; k++)
            if (oent_at(b, k)->acked)
                bits[k / 8] |= (uint8_t)(1u << (k % 8));
        st = s->d.st[N_OA_PUT];
        rc = st_bound(&s->d, st,
                      bind_u64(st, 1, b->first) | bind_blob(st, 2, bits, ((size_t)b->n + 7) / 8),
                      "outbox acks");
        if (rc == 0)
            rc = st_exec(&s->d, st, "outbox acks");
        free(bits);
    }
    if (rc == 0 && s->next_id != s->c_next_id) {
        st = s->d.st[N_META_PUT];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, "outbox_next", -1, SQLITE_STATIC) |
                          bind_u64(st, 2, s->next_id),
                      "outbox add");
        if (rc == 0)
            rc = st_exec(&s->d, st, "outbox add");
    }
    return rc;
}

/* After a successful commit: the group's batches are stored; their bytes leave memory. */
static void outbox_committed(lia_nstore_t *s)
{
    for (size_t i = s->n_ob; i-- > 0 && s->ob[i]->building;) {
        struct obatch *b = s->ob[i];
        b->building = 0;
        free(b->data);
        free(b->lens);
        b->data = b->lens = NULL;
        b->data_len = b->data_cap = 0;
    }
    for (size_t i = 0; i < s->n_touched; i++)
        s->touched[i]->touched = 0;
    s->n_touched = 0;
    /* A batch built and fully acknowledged in the same group was kept for its row; drop it. */
    for (size_t i = 0; i < s->n_ob;) {
        if (s->ob[i]->n_acked == s->ob[i]->n && s->ob[i]->n > 0)
            ob_drop(s, s->ob[i]);
        else
            i++;
    }
    s->open_b = NULL;
    s->c_next_id = s->next_id;
}

/* Reads meta[key] into *v (left alone if absent). */
static int meta_get(lia_nstore_t *s, const char *key, uint64_t *v)
{
    sqlite3_stmt *st = s->d.st[N_META_GET];
    int rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC), "meta");
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = col_u64(st, 0, v) != 0 ? LIA_ERR_DECODE : 0;
    else if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = sdb_fail(&s->d, rc, "meta");
    st_reset(st);
    return rc;
}

/*
 * Loads the outbox into memory: every batch's ids and acknowledgement bits (not the envelopes),
 * and the next outbox id (meta outbox_next, which never goes back). LIA_ERR_DECODE on a
 * malformed row.
 */
static int outbox_load(lia_nstore_t *s)
{
    sqlite3_stmt *st = s->d.st[N_OB_LOAD];
    uint64_t next = 1;
    int rc = 0, src;

    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t first, cnt;
        const uint8_t *ids = sqlite3_column_blob(st, 2), *bits = sqlite3_column_blob(st, 3);
        size_t nbits = (size_t)sqlite3_column_bytes(st, 3);
        struct obatch *b;
        if (col_u64(st, 0, &first) != 0 || col_u64(st, 1, &cnt) != 0 || cnt == 0 ||
            cnt > OUTBATCH_MAX || !ids ||
            (size_t)sqlite3_column_bytes(st, 2) != cnt * LIA_MESSAGE_ID_BYTES ||
            (bits && nbits != (cnt + 7) / 8) || first < next) {
            log_err("%s: outbox batch is malformed", s->d.what);
            rc = LIA_ERR_DECODE;
            break;
        }
        if (!(b = ob_push(s, first))) {
            rc = LIA_ERR_NOMEM;
            break;
        }
        for (uint32_t i = 0; i < cnt && rc == 0; i++) {
            if ((rc = obatch_reserve(b)) != 0)
                break;
            memcpy(b->ids + (size_t)i * LIA_MESSAGE_ID_BYTES,
                   ids + (size_t)i * LIA_MESSAGE_ID_BYTES, LIA_MESSAGE_ID_BYTES);
            b->n = i + 1;
            if (bits && (bits[i / 8] >> (i % 8)) & 1) {
                struct oent *e = oent_at(b, i);
                e->b = b;
                e->i = i;
                e->acked = 1;
                b->n_acked++;
            } else {
                rc = oent_track(s, b, i);
            }
        }
        next = first + cnt;
        if (rc == 0 && b->n_acked == b->n)
            ob_drop(s, b); /* cannot be written so; nothing of it would be sent anyway */
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sdb_fail(&s->d, src, "outbox load");
    st_reset(st);
    if (rc == 0)
        rc = meta_get(s, "outbox_next", &next);
    if (rc == 0 && s->n_ob > 0 && next < s->ob[s->n_ob - 1]->first + s->ob[s->n_ob - 1]->n)
        rc = LIA_ERR_DECODE; /* the counter went back: not written by this program */
    s->next_id = s->c_next_id = next;
    return rc;
}

/*
 * A store migrated from version 1 still has the table outbox (one row per envelope): moves its
 * rows into batches of one (keeping their ids) and drops it, in one transaction.
 */
static int outbox_migrate_v1(lia_nstore_t *s)
{
    sqlite3_stmt *q = NULL;
    uint64_t next = 1;
    int rc, src, found = 0;

    src = sqlite3_prepare_v2(s->d.db,
                             "SELECT 1 FROM sqlite_schema WHERE type = 'table'"
                             " AND name = 'outbox'",
                             -1, &q, NULL);
    if (src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW)
        found = 1;
    (void)sqlite3_finalize(q);
    q = NULL;
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sdb_fail(&s->d, src, "outbox migration");
    if (!found)
        return 0;
    if ((rc = sdb_begin(&s->d)) != 0)
        return rc;
    src = sqlite3_prepare_v2(s->d.db, "SELECT id, message_id, data FROM outbox ORDER BY id", -1, &q,
                             NULL);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        if ((src = sqlite3_step(q)) != SQLITE_ROW)
            break;
        uint64_t id;
        uint8_t len[4];
        sqlite3_stmt *st = s->d.st[N_OB_INS];
        int dlen = sqlite3_column_bytes(q, 2);
        if (col_u64(q, 0, &id) != 0 || sqlite3_column_bytes(q, 1) != LIA_MESSAGE_ID_BYTES ||
            dlen <= 0 || (size_t)dlen > LIA_ENVELOPE_MAX) {
            log_err("%s: outbox row is malformed", s->d.what);
            rc = LIA_ERR_DECODE;
            break;
        }
        put_u32be(len, (uint32_t)dlen);
        rc = st_bound(&s->d, st,
                      bind_u64(st, 1, id) | bind_u64(st, 2, 1) |
                          bind_blob(st, 3, sqlite3_column_blob(q, 1), LIA_MESSAGE_ID_BYTES) |
                          bind_blob(st, 4, len, 4) |
                          bind_blob(st, 5, sqlite3_column_blob(q, 2), (size_t)dlen),
                      "outbox migration");
        if (rc == 0)
            rc = st_exec(&s->d, st, "outbox migration");
        if (rc != 0)
            break;
        next = id + 1;
    }
    (void)sqlite3_finalize(q);
    if (rc == 0 && src != SQLITE_DONE)
        rc = sdb_fail(&s->d, src, "outbox migration");
    /* AUTOINCREMENT remembered the largest id ever given, even of rows since deleted. */
    if (rc == 0) {
        q = NULL;
        src = sqlite3_prepare_v2(s->d.db, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'",
                                 -1, &q, NULL);
        if (src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW &&
            (uint64_t)sqlite3_column_int64(q, 0) + 1 > next)
            next = (uint64_t)sqlite3_column_int64(q, 0) + 1;
        (void)sqlite3_finalize(q);
        if (src != SQLITE_ROW && src != SQLITE_DONE)
            rc = sdb_fail(&s->d, src, "outbox migration");
    }
    if (rc == 0) {
        sqlite3_stmt *st = s->d.st[N_META_PUT];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, "outbox_next", -1, SQLITE_STATIC) |
                          bind_u64(st, 2, next),
                      "outbox migration");
        if (rc == 0)
            rc = st_exec(&s->d, st, "outbox migration");
    }
    if (rc == 0)
        rc = sdb_exec_sql(&s->d, "DROP TABLE outbox", "outbox migration");
    if (rc == 0)
        rc = sdb_commit(&s->d);
    if (rc != 0) {
        if (!s->d.failed)
            (void)sdb_fail(&s->d, SQLITE_ERROR, "outbox migration");
        return rc;
    }
    log_notice("%s: outbox moved into batches (schema version 2)", s->d.what);
    return 0;
}

/* Opens (creating if needed, mode 0600) a node store; storage_key is borrowed and must outlive
 * the handle. Same checks and errors as lia_bstore_open. */
int lia_nstore_open(const char *path, const lia_symkey_t *storage_key, lia_nstore_t **out)
{
    lia_nstore_t *s;
    int rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    if (!path || !storage_key)
        return LIA_ERR_INVALID;
    s = calloc(1, sizeof *s);
    if (!s)
        return LIA_ERR_NOMEM;
    s->key = storage_key;
    rc = sdb_open(&s->d, path, "node store", &nstore_sc, nstore_sql, N_COUNT);
    if (rc != 0) {
        free(s);
        return rc;
    }
    /* What a node deletes is outbox batches (sealed envelopes); see lia_bstore_open. */
    rc = sdb_exec_sql(&s->d, "PRAGMA secure_delete=FAST", "pragmas");
    if (rc == 0)
        rc = nstore_load_cursor(s);
    if (rc == 0)
        rc = lia_map_new(LIA_MESSAGE_ID_BYTES, NULL, &s->pending);
    if (rc == 0)
        rc = outbox_migrate_v1(s);
    if (rc == 0)
        rc = outbox_load(s);
    if (rc == 0)
        rc = sdb_wsync_start(&s->d, path);
    if (rc != 0) {
        lia_nstore_close(&s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Closes the store; an uncommitted group is rolled back. Accepts NULL; sets *p to NULL. */
void lia_nstore_close(lia_nstore_t **p)
{
    if (!p || !*p)
        return;
    /* The hub statements are not in the sdb's table: finalized first, or close would fail. */
    for (size_t i = 0; i < H_COUNT; i++)
        (void)sqlite3_finalize((*p)->hub_st[i]);
    sdb_close(&(*p)->d);
    for (size_t i = 0; i < (*p)->n_ob; i++)
        obatch_free((*p)->ob[i]);
    free((*p)->ob);
    free((*p)->touched);
    lia_map_destroy(&(*p)->pending);
    free(*p);
    *p = NULL;
}

/* Starts a group. Every change to a node store (outbox, inbox, state) happens in a group. */
int lia_nstore_begin(lia_nstore_t *s)
{
    if (!s)
        return LIA_ERR_INVALID;
    return sdb_begin(&s->d);
}

/* Writes the cursor if it moved, then COMMIT (without the WAL's sync). Failure is fatal for
 * the store. */
int lia_nstore_commit_unsynced(lia_nstore_t *s)
{
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    rc = outbox_flush(s);
    if (rc == 0 && s->cursor != s->c_cursor) {
        st = s->d.st[N_META_PUT];
        rc = st_bound(&s->d, st,
                      sqlite3_bind_text(st, 1, "cursor", -1, SQLITE_STATIC) |
                          bind_u64(st, 2, s->cursor),
                      "commit cursor");
        if (rc == 0)
            rc = st_exec(&s->d, st, "commit cursor");
    }
    if (rc == 0)
        rc = sdb_commit(&s->d);
    if (rc != 0) {
        s->cursor = s->c_cursor;
        outbox_forget_group(s);
        return rc;
    }
    s->c_cursor = s->cursor;
    outbox_committed(s);
    return 0;
}

/* COMMIT, then the WAL's fdatasync in line: durable when it returns 0. */
int lia_nstore_commit(lia_nstore_t *s)
{
    int rc = lia_nstore_commit_unsynced(s);
    return rc == 0 ? wsync_now(&s->d) : rc;
}

/* Starts the WAL's fdatasync on the sync thread; LIA_ERR_INVALID if one is running. */
int lia_nstore_sync_start(lia_nstore_t *s)
{
    uint8_t b = 1;
    ssize_t r;
    int rc;

    if (!s || s->d.ws.running || s->d.ws.fd < 0)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    while ((r = write(s->d.ws.req[1], &b, 1)) < 0 && errno == EINTR)
        ;
    if (r != 1) {
        log_err_errno("%s: sync thread", s->d.what);
        s->d.failed = 1;
        return LIA_ERR_STORAGE;
    }
    s->d.ws.running = 1;
    return 0;
}

int lia_nstore_sync_fd(const lia_nstore_t *s)
{
    return s ? s->d.ws.res[0] : -1;
}

int lia_nstore_sync_running(const lia_nstore_t *s)
{
    return s && s->d.ws.running;
}

/* Waits for the sync started by lia_nstore_sync_start. */
int lia_nstore_sync_wait(lia_nstore_t *s)
{
    if (!s)
        return LIA_ERR_INVALID;
    return wsync_wait(&s->d);
}

/*
 * In a group: queues an envelope (1..LIA_ENVELOPE_MAX bytes) until the broker acknowledges it;
 * *id (optional) receives its outbox id, larger than every id handed out before. A message_id
 * already in the outbox is LIA_ERR_EXISTS. The envelopes of a group are written as one batch
 * row at commit (one row and its overflow pages instead of a row and an index entry each).
 */
int lia_nstore_outbox_add(lia_nstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES],
                          const uint8_t *env, size_t len, uint64_t *id)
{
    struct obatch *b;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!message_id || !env || len == 0)
        return LIA_ERR_INVALID;
    if (len > LIA_ENVELOPE_MAX)
        return LIA_ERR_TOO_LARGE;
    if (lia_map_get(s->pending, message_id))
        return LIA_ERR_EXISTS;
    b = s->open_b;
    if (!b || b->n == OUTBATCH_MAX) {
        if (!(b = ob_push(s, s->next_id)))
            return LIA_ERR_NOMEM;
        b->building = 1;
        s->open_b = b;
    }
    if ((rc = obatch_reserve(b)) != 0)
        return rc;
    if (b->data_cap - b->data_len < len) {
        size_t cap = b->data_cap ? b->data_cap : 64u << 10;
        while (cap - b->data_len < len)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return LIA_ERR_NOMEM;
        b->data = d;
        b->data_cap = cap;
    }
    uint8_t *l = realloc(b->lens, ((size_t)b->n + 1) * 4);
    if (!l)
        return LIA_ERR_NOMEM;
    b->lens = l;
    memcpy(b->ids + (size_t)b->n * LIA_MESSAGE_ID_BYTES, message_id, LIA_MESSAGE_ID_BYTES);
    if ((rc = oent_track(s, b, b->n)) != 0)
        return rc;
    put_u32be(b->lens + (size_t)b->n * 4, (uint32_t)len);
    memcpy(b->data + b->data_len, env, len);
    b->data_len += len;
    b->n++;
    if (id)
        *id = s->next_id;
    s->next_id++;
    return 0;
}

/*
 * In a group: the broker durably stored message_id; drops it from the outbox. Idempotent: an
 * unknown (or already acknowledged) id is not an error. A batch whose envelopes are all
 * acknowledged is deleted; the acknowledgements of one that is not are written at commit.
 */
int lia_nstore_outbox_ack(lia_nstore_t *s, const uint8_t message_id[LIA_MESSAGE_ID_BYTES])
{
    struct oent *e;
    struct obatch *b;
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!message_id)
        return LIA_ERR_INVALID;
    if (!(e = lia_map_get(s->pending, message_id)))
        return 0;
    b = e->b;
    e->acked = 1;
    b->n_acked++;
    s->unacked--;
    (void)lia_map_remove(s->pending, message_id);
    if (b->n_acked < b->n || b->building) {
        if (!b->touched) {
            if (grow(&s->touched, &s->cap_touched, s->n_touched, sizeof *s->touched, 16) != 0)
                return sdb_fail(&s->d, SQLITE_NOMEM, "outbox ack");
            s->touched[s->n_touched++] = b;
            b->touched = 1;
        }
        return 0;
    }
    /* Everything in it acknowledged: the row goes, with its acknowledgements. */
    st = s->d.st[N_OB_DEL];
    rc = st_bound(&s->d, st, bind_u64(st, 1, b->first), "outbox ack");
    if (rc == 0)
        rc = st_exec(&s->d, st, "outbox ack");
    st = s->d.st[N_OA_DEL];
    if (rc == 0)
        rc = st_bound(&s->d, st, bind_u64(st, 1, b->first), "outbox ack");
    if (rc == 0)
        rc = st_exec(&s->d, st, "outbox ack");
    if (rc != 0)
        return rc;
    if (b->touched) /* a partial state queued earlier in this group: nothing to write now */
        for (size_t i = 0; i < s->n_touched; i++)
            if (s->touched[i] == b) {
                s->touched[i] = s->touched[--s->n_touched];
                break;
            }
    ob_drop(s, b);
    return 0;
}

/* Frees the data of n outbox entries. Accepts NULL. */
void lia_nstore_out_free(lia_nstore_out *out, size_t n)
{
    for (size_t i = 0; out && i < n; i++) {
        free(out[i].data);
        out[i].data = NULL;
        out[i].len = 0;
    }
}

/* Up to max unacknowledged envelopes with id > after, in id order; stored rows re-checked
 * (LIA_ERR_DECODE). Only committed batches are read. On error nothing is returned. */
int lia_nstore_outbox_pending(lia_nstore_t *s, uint64_t after, size_t max, lia_nstore_out *out,
                              size_t *n)
{
    sqlite3_stmt *st;
    size_t got = 0, k;
    int rc, src = SQLITE_DONE;

    if (!n)
        return LIA_ERR_INVALID;
    *n = 0;
    if (!s || (!out && max))
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 0);
    if (rc != 0 || max == 0)
        return rc;
    for (k = 0; k < s->n_ob; k++)
        if (!s->ob[k]->building && s->ob[k]->first + s->ob[k]->n > after + 1)
            break;
    if (k == s->n_ob)
        return 0;
    st = s->d.st[N_OB_PENDING];
    rc = st_bound(&s->d, st, bind_u64(st, 1, s->ob[k]->first), "outbox pending");
    if (rc != 0)
        return rc;
    while (got < max && (src = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t first, cnt;
        const uint8_t *ids = sqlite3_column_blob(st, 2), *lens = sqlite3_column_blob(st, 3),
                      *data = sqlite3_column_blob(st, 4);
        size_t data_len = (size_t)sqlite3_column_bytes(st, 4), off = 0;
        if (col_u64(st, 0, &first) != 0 || col_u64(st, 1, &cnt) != 0 || cnt == 0 ||
            cnt > OUTBATCH_MAX || !ids || !lens || !data ||
            (size_t)sqlite3_column_bytes(st, 2) != cnt * LIA_MESSAGE_ID_BYTES ||
            (size_t)sqlite3_column_bytes(st, 3) != cnt * 4) {
            rc = LIA_ERR_DECODE;
            log_err("%s: outbox batch is malformed", s->d.what);
            goto fail;
        }
        for (uint64_t i = 0; i < cnt && got < max; i++) {
            size_t len = get_u32be(lens + i * 4);
            const uint8_t *mid = ids + i * LIA_MESSAGE_ID_BYTES;
            if (len == 0 || len > LIA_ENVELOPE_MAX || len > data_len - off) {
                rc = LIA_ERR_DECODE;
                log_err("%s: outbox batch %llu is malformed", s->d.what, (unsigned long long)first);
                goto fail;
            }
            off += len;
            const struct oent *e = lia_map_get(s->pending, mid);
            if (first + i <= after || !e || e->b->first != first || e->i != i)
                continue; /* before the position asked for, or acknowledged */
            out[got].id = first + i;
            memcpy(out[got].message_id, mid, LIA_MESSAGE_ID_BYTES);
            if (!(out[got].data = malloc(len))) {
                rc = LIA_ERR_NOMEM;
                goto fail;
            }
            memcpy(out[got].data, data + off - len, len);
            out[got].len = len;
            got++;
        }
    }
    if (got < max && src != SQLITE_DONE) {
        rc = sdb_fail(&s->d, src, "outbox pending");
        goto fail;
    }
    st_reset(st);
    *n = got;
    return 0;
fail:
    st_reset(st);
    lia_nstore_out_free(out, got);
    return rc;
}

/* Number of unacknowledged envelopes in the outbox (the open group's included). */
int lia_nstore_outbox_count(lia_nstore_t *s, uint64_t *count)
{
    int rc;

    if (!s || !count)
        return LIA_ERR_INVALID;
    *count = 0;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    *count = s->unacked;
    return 0;
}

/*
 * Looks up delivery seq: 0 if absent, 1 if present (then *same tells whether it holds
 * message_id, or for message_id == NULL whether it is a refusal).
 */
static int inbox_existing(lia_nstore_t *s, uint64_t seq, const uint8_t *message_id, int *same)
{
    sqlite3_stmt *st = s->d.st[N_IN_GET];
    int rc = st_bound(&s->d, st, bind_u64(st, 1, seq), "inbox lookup");

    *same = 0;
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (message_id)
            *same =
                sqlite3_column_bytes(st, 0) == LIA_MESSAGE_ID_BYTES &&
                sodium_memcmp(sqlite3_column_blob(st, 0), message_id, LIA_MESSAGE_ID_BYTES) == 0;
        else
            *same = sqlite3_column_int(st, 1) != 0;
        st_reset(st);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "inbox lookup");
        st_reset(st);
        return rc;
    }
    st_reset(st);
    return 0;
}

/*
 * In a group: stores message m (payload 0..LIA_ENVELOPE_MAX bytes, encrypted here with the
 * storage key) under m->delivery_seq >= 1 and moves the cursor up to it. The same delivery
 * again with the same message id is a no-op (0); with another one (or a refusal stored there)
 * LIA_ERR_EXISTS. m->sender must be a valid node id; m->channel "" for a direct message.
 */
int lia_nstore_inbox_add(lia_nstore_t *s, const lia_nstore_msg *m)
{
    uint8_t ad[AD_INBOX_MAX], nonce[LIA_NONCE_BYTES];
    uint8_t *ct = NULL;
    size_t sender_len, channel_len, ad_len, ct_len;
    sqlite3_stmt *st;
    int rc, same;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!m || m->delivery_seq == 0 || m->delivery_seq > INT64_MAX || m->sender_seq > INT64_MAX ||
        m->created_at_ms > INT64_MAX || m->received_at_ms > INT64_MAX ||
        (!m->payload && m->payload_len) || !lia_node_id_valid(m->sender))
        return LIA_ERR_INVALID;
    channel_len = strnlen(m->channel, sizeof m->channel);
    if (channel_len > LIA_CHANNEL_MAX || !lia_text_valid(m->channel, channel_len))
        return LIA_ERR_INVALID;
    if (m->payload_len > LIA_ENVELOPE_MAX)
        return LIA_ERR_TOO_LARGE;
    sender_len = strlen(m->sender);

    /* The cursor is the highest sequence stored (written in the same commits as the rows), so
     * only a delivery at or below it can be a redelivery; the stream's next one needs no lookup.
     * Were the cursor ever too low, the insert would fail on the key, not store twice. */
    if (m->delivery_seq <= s->cursor) {
        rc = inbox_existing(s, m->delivery_seq, m->message_id, &same);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return same ? 0 : LIA_ERR_EXISTS;
    }

    ct_len = m->payload_len + LIA_AEAD_TAG_BYTES;
    ct = malloc(ct_len);
    if (!ct)
        return LIA_ERR_NOMEM;
    next_nonce(&s->d, nonce);
    ad_len = inbox_ad(ad, m->delivery_seq, m->message_id, m->sender_seq, m->created_at_ms,
                      m->received_at_ms, m->sender, sender_len, m->channel, channel_len);
    rc = lia_symkey_encrypt(s->key, nonce, ad, ad_len, m->payload, m->payload_len, ct);
    if (rc != 0)
        goto fail;
    st = s->d.st[N_IN_ADD];
    rc = st_bound(&s->d, st,
                  bind_u64(st, 1, m->delivery_seq) |
                      sqlite3_bind_text(st, 2, m->sender, (int)sender_len, SQLITE_STATIC) |
                      sqlite3_bind_text(st, 3, m->channel, (int)channel_len, SQLITE_STATIC) |
                      bind_u64(st, 4, m->sender_seq) | bind_u64(st, 5, m->created_at_ms) |
                      bind_u64(st, 6, m->received_at_ms) |
                      bind_blob(st, 7, m->message_id, LIA_MESSAGE_ID_BYTES) |
                      bind_blob(st, 8, nonce, sizeof nonce) | bind_blob(st, 9, ct, ct_len),
                  "inbox add");
    if (rc == 0)
        rc = st_exec(&s->d, st, "inbox add");
    if (rc != 0)
        goto fail;
    if (m->delivery_seq > s->cursor)
        s->cursor = m->delivery_seq;
fail:
    free(ct);
    return rc;
}

/* The durable inbox cursor: the highest delivery sequence stored (message or refusal) by a
 * committed group; what the node may acknowledge to the broker. */
int lia_nstore_cursor(lia_nstore_t *s, uint64_t *cursor)
{
    int rc;
    if (!s || !cursor)
        return LIA_ERR_INVALID;
    *cursor = 0;
    rc = sdb_ready(&s->d, 0);
    if (rc == 0)
        *cursor = s->c_cursor;
    return rc;
}

/*
 * In a group: records that delivery_seq (>= 1) was refused, with a reason (valid text of
 * 1..LIA_NSTORE_REASON_MAX bytes, e.g. lia_errname), and moves the cursor up to it. Refusing
 * the same delivery again is a no-op; a delivery that holds a message is LIA_ERR_EXISTS.
 */
int lia_nstore_inbox_refused(lia_nstore_t *s, uint64_t delivery_seq, const char *reason)
{
    sqlite3_stmt *st;
    size_t len;
    int rc, same;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (delivery_seq == 0 || delivery_seq > INT64_MAX || !reason)
        return LIA_ERR_INVALID;
    len = strnlen(reason, LIA_NSTORE_REASON_MAX + 1);
    if (len == 0 || len > LIA_NSTORE_REASON_MAX || !lia_text_valid(reason, len))
        return LIA_ERR_INVALID;
    rc = inbox_existing(s, delivery_seq, NULL, &same);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return same ? 0 : LIA_ERR_EXISTS;
    st = s->d.st[N_IN_REFUSE];
    rc = st_bound(&s->d, st,
                  bind_u64(st, 1, delivery_seq) |
                      sqlite3_bind_text(st, 2, reason, (int)len, SQLITE_STATIC),
                  "inbox refused");
    if (rc == 0)
        rc = st_exec(&s->d, st, "inbox refused");
    if (rc == 0 && delivery_seq > s->cursor)
        s->cursor = delivery_seq;
    return rc;
}

/* Wipes and frees the payloads of n messages. Accepts NULL. */
void lia_nstore_msgs_free(lia_nstore_msg *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        if (m[i].payload) {
            sodium_memzero(m[i].payload, m[i].payload_len);
            free(m[i].payload);
        }
        m[i].payload = NULL;
        m[i].payload_len = 0;
    }
}

/* Reads one inbox row into *m, checking every stored field and decrypting the payload
 * (LIA_ERR_DECODE for a malformed row, LIA_ERR_DECRYPT if the tag fails). */
static int inbox_row(lia_nstore_t *s, sqlite3_stmt *st, lia_nstore_msg *m)
{
    uint8_t ad[AD_INBOX_MAX];
    const unsigned char *sender, *channel;
    const void *nonce, *ct;
    int sender_len, channel_len, ct_len, rc;
    size_t ad_len;

    memset(m, 0, sizeof *m);
    if (col_u64(st, 0, &m->delivery_seq) != 0 || col_u64(st, 3, &m->sender_seq) != 0 ||
        col_u64(st, 4, &m->created_at_ms) != 0 || col_u64(st, 5, &m->received_at_ms) != 0)
        return LIA_ERR_DECODE;
    sender = sqlite3_column_text(st, 1);
    sender_len = sqlite3_column_bytes(st, 1);
    channel = sqlite3_column_text(st, 2);
    channel_len = sqlite3_column_bytes(st, 2);
    if (!sender || sender_len > LIA_NODE_ID_MAX || !channel || channel_len > LIA_CHANNEL_MAX ||
        sqlite3_column_bytes(st, 6) != LIA_MESSAGE_ID_BYTES ||
        sqlite3_column_bytes(st, 7) != LIA_NONCE_BYTES)
        return LIA_ERR_DECODE;
    memcpy(m->sender, sender, (size_t)sender_len);
    m->sender[sender_len] = '\0';
    memcpy(m->channel, channel, (size_t)channel_len);
    m->channel[channel_len] = '\0';
    if (!lia_node_id_valid(m->sender) || strlen(m->channel) != (size_t)channel_len)
        return LIA_ERR_DECODE;
    memcpy(m->message_id, sqlite3_column_blob(st, 6), LIA_MESSAGE_ID_BYTES);
    nonce = sqlite3_column_blob(st, 7);
    ct = sqlite3_column_blob(st, 8);
    ct_len = sqlite3_column_bytes(st, 8);
    if (!nonce || !ct || ct_len < LIA_AEAD_TAG_BYTES ||
        (size_t)ct_len > LIA_ENVELOPE_MAX + LIA_AEAD_TAG_BYTES)
        return LIA_ERR_DECODE;
    m->payload_len = (size_t)ct_len - LIA_AEAD_TAG_BYTES;
    m->payload = malloc(m->payload_len ? m->payload_len : 1);
    if (!m->payload)
        return LIA_ERR_NOMEM;
    ad_len =
        inbox_ad(ad, m->delivery_seq, m->message_id, m->sender_seq, m->created_at_ms,
                 m->received_at_ms, m->sender, (size_t)sender_len, m->channel, (size_t)channel_len);
    rc = lia_symkey_decrypt(s->key, nonce, ad, ad_len, ct, (size_t)ct_len, m->payload);
    if (rc != 0) {
        log_err("%s: inbox delivery %llu does not decrypt with the storage key", s->d.what,
                (unsigned long long)m->delivery_seq);
        lia_nstore_msgs_free(m, 1);
        return rc;
    }
    return 0;
}

/*
 * Up to max stored messages with delivery_seq > after, in delivery order, restricted to one
 * channel if channel is not NULL ("" selects direct messages); refusals are skipped. Payloads
 * are decrypted (owned by the caller: lia_nstore_msgs_free). A row that fails to decrypt fails
 * the whole call with LIA_ERR_DECRYPT and returns nothing.
 */
int lia_nstore_inbox_list(lia_nstore_t *s, uint64_t after, const char *channel, size_t max,
                          lia_nstore_msg *out, size_t *n)
{
    sqlite3_stmt *st;
    size_t got = 0;
    int rc, src;

    if (!n)
        return LIA_ERR_INVALID;
    *n = 0;
    if (!s || (!out && max))
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 0);
    if (rc != 0 || max == 0)
        return rc;
    if (channel && strnlen(channel, LIA_CHANNEL_MAX + 1) > LIA_CHANNEL_MAX)
        return LIA_ERR_INVALID;
    if (max > INT64_MAX)
        max = INT64_MAX;
    st = s->d.st[channel ? N_IN_LIST_CH : N_IN_LIST];
    rc = st_bound(&s->d, st,
                  bind_u64(st, 1, after) | bind_u64(st, 2, max) |
                      (channel ? sqlite3_bind_text(st, 3, channel, -1, SQLITE_STATIC) : SQLITE_OK),
                  "inbox list");
    if (rc != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (got == max)
            break;
        rc = inbox_row(s, st, &out[got]);
        if (rc != 0)
            goto fail;
        got++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = sdb_fail(&s->d, src, "inbox list");
        goto fail;
    }
    st_reset(st);
    *n = got;
    return 0;
fail:
    st_reset(st);
    lia_nstore_msgs_free(out, got);
    return rc;
}

/* Checks a state key: 1..LIA_NSTORE_STATE_KEY_MAX bytes of valid text. */
static int state_key_ok(const char *key, size_t *len)
{
    if (!key)
        return 0;
    *len = strnlen(key, LIA_NSTORE_STATE_KEY_MAX + 1);
    return *len > 0 && *len <= LIA_NSTORE_STATE_KEY_MAX && lia_text_valid(key, *len);
}

/*
 * In a group: sets key to val (0..LIA_NSTORE_STATE_MAX bytes, LIA_ERR_TOO_LARGE beyond),
 * replacing any previous value. The value is encrypted at rest with the storage key, bound to
 * its key name.
 */
int lia_nstore_state_put(lia_nstore_t *s, const char *key, const uint8_t *val, size_t len)
{
    uint8_t ad[AD_STATE_MAX], nonce[LIA_NONCE_BYTES];
    uint8_t *ct = NULL;
    size_t key_len, ad_len;
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 1);
    if (rc != 0)
        return rc;
    if (!state_key_ok(key, &key_len) || (!val && len))
        return LIA_ERR_INVALID;
    if (len > LIA_NSTORE_STATE_MAX)
        return LIA_ERR_TOO_LARGE;
    ct = malloc(len + LIA_AEAD_TAG_BYTES);
    if (!ct)
        return LIA_ERR_NOMEM;
    next_nonce(&s->d, nonce);
    ad_len = state_ad(ad, key, key_len);
    rc = lia_symkey_encrypt(s->key, nonce, ad, ad_len, val, len, ct);
    if (rc != 0)
        goto fail;
    st = s->d.st[N_STATE_PUT];
    rc = st_bound(&s->d, st,
                  sqlite3_bind_text(st, 1, key, (int)key_len, SQLITE_STATIC) |
                      bind_blob(st, 2, nonce, sizeof nonce) |
                      bind_blob(st, 3, ct, len + LIA_AEAD_TAG_BYTES),
                  "state put");
    if (rc == 0)
        rc = st_exec(&s->d, st, "state put");
fail:
    free(ct);
    return rc;
}

/*
 * The value of key in a new malloc'd buffer (*len may be 0; the buffer is then 1 byte), as
 * seen by this handle (including its open group). LIA_ERR_NOT_FOUND if unset, LIA_ERR_DECRYPT
 * if the stored value was altered, LIA_ERR_DECODE if malformed.
 */
int lia_nstore_state_get(lia_nstore_t *s, const char *key, uint8_t **val, size_t *len)
{
    uint8_t ad[AD_STATE_MAX];
    uint8_t *pt = NULL;
    size_t key_len, ad_len;
    sqlite3_stmt *st;
    const void *nonce, *ct;
    int rc, ct_len;

    if (!val || !len)
        return LIA_ERR_INVALID;
    *val = NULL;
    *len = 0;
    if (!s)
        return LIA_ERR_INVALID;
    rc = sdb_ready(&s->d, 0);
    if (rc != 0)
        return rc;
    if (!state_key_ok(key, &key_len))
        return LIA_ERR_INVALID;
    st = s->d.st[N_STATE_GET];
    rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, key, (int)key_len, SQLITE_STATIC),
                  "state get");
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = LIA_ERR_NOT_FOUND;
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        rc = sdb_fail(&s->d, rc, "state get");
        goto fail;
    }
    nonce = sqlite3_column_blob(st, 0);
    ct = sqlite3_column_blob(st, 1);
    ct_len = sqlite3_column_bytes(st, 1);
    if (!nonce || sqlite3_column_bytes(st, 0) != LIA_NONCE_BYTES || !ct ||
        ct_len < LIA_AEAD_TAG_BYTES || (size_t)ct_len > LIA_NSTORE_STATE_MAX + LIA_AEAD_TAG_BYTES) {
        rc = LIA_ERR_DECODE;
        goto fail;
    }
    pt = malloc((size_t)ct_len - LIA_AEAD_TAG_BYTES + 1);
    if (!pt) {
        rc = LIA_ERR_NOMEM;
        goto fail;
    }
    ad_len = state_ad(ad, key, key_len);
    rc = lia_symkey_decrypt(s->key, nonce, ad, ad_len, ct, (size_t)ct_len, pt);
    if (rc != 0) {
        log_err("%s: state value does not decrypt with the storage key", s->d.what);
        goto fail;
    }
    st_reset(st);
    *val = pt;
    *len = (size_t)ct_len - LIA_AEAD_TAG_BYTES;
    return 0;
fail:
    st_reset(st);
    free(pt);
    return rc;
}

void lia_nstore_kv_free(lia_nstore_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        if (kv[i].val) {
            sodium_memzero(kv[i].val, kv[i].len);
            free(kv[i].val);
        }
        free(kv[i].key);
    }
    free(kv);
}

int lia_nstore_state_list(lia_nstore_t *s, const char *prefix, lia_nstore_kv **out, size_t *n)
{
    lia_nstore_kv *kv = NULL;
    size_t count = 0, cap = 0, plen;
    sqlite3_stmt *st;
    int rc;

    if (!out || !n || !s || !state_key_ok(prefix, &plen))
        return LIA_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    st = s->d.st[N_STATE_KEYS];
    if ((rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, prefix, (int)plen, SQLITE_STATIC),
                       "state keys")) != 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (!k || strncmp(k, prefix, plen) != 0)
            break;
        if ((rc = kv_push(&kv, &count, &cap, k, NULL, 0)) != 0)
            goto fail;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "state keys");
        goto fail;
    }
    st_reset(st);
    for (size_t i = 0; i < count; i++)
        if ((rc = lia_nstore_state_get(s, kv[i].key, &kv[i].val, &kv[i].len)) != 0)
            goto fail;
    *out = kv;
    *n = count;
    return 0;
fail:
    st_reset(st);
    lia_nstore_kv_free(kv, count);
    return rc;
}

/* ---------------- hub index ---------------- */

#define HUB_META_KEY "hub_indexed"
#define HUB_COLS                                                                                   \
    "i.delivery_seq, i.sender, i.channel, i.sender_seq, i.created_at_ms, i.received_at_ms,"        \
    " i.message_id, i.nonce, i.payload"
/* ?3 sender, ?4 channel, ?5 since, ?6 until: NULL (unbound) means "any". */
#define HUB_FILTERS                                                                                \
    " AND i.refused_reason IS NULL AND (?3 IS NULL OR i.sender = ?3)"                              \
    " AND (?4 IS NULL OR i.channel = ?4) AND (?5 IS NULL OR i.created_at_ms >= ?5)"                \
    " AND (?6 IS NULL OR i.created_at_ms < ?6)"
#define HUB_ALSO(n)                                                                                \
    " AND (?" #n " IS NULL OR EXISTS (SELECT 1 FROM hub_terms x WHERE x.token = ?" #n              \
    " AND x.delivery_seq = i.delivery_seq))"
#define HUB_FIRST_TOKEN 7 /* parameters ?7..?14 hold the query's tokens */

static const char hub_schema[] =
    "CREATE TABLE IF NOT EXISTS hub_terms(token BLOB NOT NULL, delivery_seq INTEGER NOT NULL,"
    " PRIMARY KEY(token, delivery_seq)) WITHOUT ROWID";

static const char *const hub_sql[H_COUNT] = {
    [H_ADD] = "INSERT INTO hub_terms(token, delivery_seq) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
    [H_MARK] = "INSERT INTO meta(key, value) VALUES('" HUB_META_KEY "', ?1)"
               " ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
    /* No term: walk the inbox in delivery order. */
    [H_SEARCH_SCAN] = "SELECT " HUB_COLS " FROM inbox i WHERE i.delivery_seq > ?1" HUB_FILTERS
                      " ORDER BY i.delivery_seq LIMIT ?2",
    /* Terms: the first one drives (a range of the primary key), the others are probed. */
    [H_SEARCH_TERMS] = "SELECT " HUB_COLS " FROM hub_terms h JOIN inbox i"
                       " ON i.delivery_seq = h.delivery_seq"
                       " WHERE h.token = ?7 AND h.delivery_seq > ?1" HUB_FILTERS HUB_ALSO(8)
                           HUB_ALSO(9) HUB_ALSO(10) HUB_ALSO(11) HUB_ALSO(12) HUB_ALSO(13)
                               HUB_ALSO(14) " ORDER BY h.delivery_seq LIMIT ?2",
};

_Static_assert(HUB_FIRST_TOKEN + LIA_HUB_QUERY_TERMS_MAX - 1 == 14,
               "one parameter per query token in H_SEARCH_TERMS");

/* Creates hub_terms if missing (its own implicit transaction, durable like any commit) and
 * prepares the index statements once. Refused inside a group (LIA_ERR_INVALID). */
int lia_nstore_hub_enable(lia_nstore_t *s)
{
    int rc, src;

    if (!s)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    if (s->d.in_group)
        return LIA_ERR_INVALID;
    if (s->hub_st[0])
        return 0;
    if ((rc = sdb_exec_sql(&s->d, hub_schema, "create hub index")) != 0) {
        s->d.failed = 1;
        return rc;
    }
    for (size_t i = 0; i < H_COUNT; i++) {
        src = sqlite3_prepare_v3(s->d.db, hub_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->hub_st[i],
                                 NULL);
        if (src != SQLITE_OK) {
            log_err("%s: prepare \"%s\": %s", s->d.what, hub_sql[i], sqlite3_errmsg(s->d.db));
            for (size_t j = 0; j <= i; j++) {
                (void)sqlite3_finalize(s->hub_st[j]);
                s->hub_st[j] = NULL;
            }
            return LIA_ERR_STORAGE;
        }
    }
    return 0;
}

/* The token of one term: lia_symkey_index_token(storage key, u8(kind) || text). */
static int hub_token(const lia_nstore_t *s, const lia_nstore_term *t,
                     uint8_t out[LIA_INDEX_TOKEN_BYTES])
{
    uint8_t msg[1 + LIA_HUB_TERM_MAX];

    if (!t || !t->text || t->kind < 1 || t->kind > LIA_HUB_KIND_MAX || t->len == 0 ||
        t->len > LIA_HUB_TERM_MAX)
        return LIA_ERR_INVALID;
    msg[0] = (uint8_t)t->kind;
    memcpy(msg + 1, t->text, t->len);
    int rc = lia_symkey_index_token(s->key, msg, 1 + t->len, out);
    sodium_memzero(msg, 1 + t->len);
    return rc;
}

/*
 * In a group: one row per distinct token of the message, then the watermark. The terms are
 * checked (kind, length) before anything is written; a bad term is LIA_ERR_INVALID and leaves
 * the rows of the terms before it in the group (the caller fails the group).
 */
int lia_nstore_hub_add(lia_nstore_t *s, uint64_t delivery_seq, const lia_nstore_term *terms,
                       size_t n)
{
    uint8_t tok[LIA_INDEX_TOKEN_BYTES];
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 1)) != 0)
        return rc;
    if (!s->hub_st[0] || delivery_seq == 0 || delivery_seq > INT64_MAX || (!terms && n))
        return LIA_ERR_INVALID;
    st = s->hub_st[H_ADD];
    for (size_t i = 0; i < n; i++) {
        if ((rc = hub_token(s, &terms[i], tok)) != 0)
            return rc;
        rc = st_bound(&s->d, st, bind_blob(st, 1, tok, sizeof tok) | bind_u64(st, 2, delivery_seq),
                      "hub add");
        if (rc == 0)
            rc = st_exec(&s->d, st, "hub add");
        if (rc != 0)
            return rc;
    }
    st = s->hub_st[H_MARK];
    rc = st_bound(&s->d, st, bind_u64(st, 1, delivery_seq), "hub mark");
    if (rc == 0)
        rc = st_exec(&s->d, st, "hub mark");
    return rc;
}

/* Reads the watermark from meta (as this handle sees it, its open group included). */
int lia_nstore_hub_indexed(lia_nstore_t *s, uint64_t *upto)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !upto)
        return LIA_ERR_INVALID;
    *upto = 0;
    if ((rc = sdb_ready(&s->d, 0)) != 0)
        return rc;
    st = s->d.st[N_META_GET];
    if ((rc = st_bound(&s->d, st, sqlite3_bind_text(st, 1, HUB_META_KEY, -1, SQLITE_STATIC),
                       "hub watermark")) != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (col_u64(st, 0, upto) != 0) {
            st_reset(st);
            return LIA_ERR_DECODE;
        }
        rc = sqlite3_step(st); /* the key is unique: SQLITE_DONE */
    }
    if (rc != SQLITE_DONE) {
        rc = sdb_fail(&s->d, rc, "hub watermark");
        st_reset(st);
        return rc;
    }
    st_reset(st);
    return 0;
}

/* Appends the token of t to q (the store's key makes it; nothing is written). */
int lia_nstore_hub_query_add(lia_nstore_t *s, lia_nstore_hub_query *q, const lia_nstore_term *t)
{
    int rc;

    if (!s || !q || q->n_tokens > LIA_HUB_QUERY_TERMS_MAX)
        return LIA_ERR_INVALID;
    if (q->n_tokens == LIA_HUB_QUERY_TERMS_MAX)
        return LIA_ERR_LIMIT;
    if ((rc = hub_token(s, t, q->tokens[q->n_tokens])) != 0)
        return rc;
    q->n_tokens++;
    return 0;
}

/*
 * Runs q: H_SEARCH_TERMS when it has tokens (a primary-key range of the first token, the
 * others probed per row), H_SEARCH_SCAN otherwise; both apply the column filters in SQL.
 * Rows are read and decrypted as by lia_nstore_inbox_list (a row that fails to decrypt fails
 * the call and returns nothing).
 */
int lia_nstore_hub_search(lia_nstore_t *s, const lia_nstore_hub_query *q, uint64_t after,
                          size_t max, lia_nstore_msg *out, size_t *n)
{
    sqlite3_stmt *st;
    size_t got = 0, sl, cl;
    int rc, src, brc;

    if (!n)
        return LIA_ERR_INVALID;
    *n = 0;
    if (!s || !q || (!out && max) || q->n_tokens > LIA_HUB_QUERY_TERMS_MAX)
        return LIA_ERR_INVALID;
    if ((rc = sdb_ready(&s->d, 0)) != 0 || max == 0)
        return rc;
    if (!s->hub_st[0])
        return LIA_ERR_INVALID;
    sl = strnlen(q->sender, sizeof q->sender);
    cl = strnlen(q->channel, sizeof q->channel);
    if (sl > LIA_NODE_ID_MAX || cl > LIA_CHANNEL_MAX || q->since_ms > INT64_MAX ||
        q->until_ms > INT64_MAX || after > INT64_MAX)
        return LIA_ERR_INVALID;
    if (max > INT64_MAX)
        max = INT64_MAX;
    st = s->hub_st[q->n_tokens ? H_SEARCH_TERMS : H_SEARCH_SCAN];
    brc = bind_u64(st, 1, after) | bind_u64(st, 2, max);
    if (sl)
        brc |= sqlite3_bind_text(st, 3, q->sender, (int)sl, SQLITE_STATIC);
    if (q->by_channel)
        brc |= sqlite3_bind_text(st, 4, q->channel, (int)cl, SQLITE_STATIC);
    if (q->since_ms)
        brc |= bind_u64(st, 5, q->since_ms);
    if (q->until_ms)
        brc |= bind_u64(st, 6, q->until_ms);
    for (size_t i = 0; i < q->n_tokens; i++)
        brc |= bind_blob(st, HUB_FIRST_TOKEN + (int)i, q->tokens[i], LIA_INDEX_TOKEN_BYTES);
    if ((rc = st_bound(&s->d, st, brc, "hub search")) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (got == max)
            break;
        if ((rc = inbox_row(s, st, &out[got])) != 0)
            goto fail;
        got++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = sdb_fail(&s->d, src, "hub search");
        goto fail;
    }
    st_reset(st);
    *n = got;
    return 0;
fail:
    st_reset(st);
    lia_nstore_msgs_free(out, got);
    return rc;
}
