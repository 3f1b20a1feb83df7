/* Broker log and node store: round trips, sequences, duplicates, cursors, durability across
 * close/reopen and simulated crashes (fork + _exit), file checks, bounds, encryption at rest,
 * and the failed state after a write error (RLIMIT_FSIZE in a child). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "error.h"
#include "log.h"
#include "store.h"
#include "testutil.h"
#include "vault.h"

#define ENV_LEN 300

static void mid(uint64_t n, uint8_t out[LIA_MESSAGE_ID_BYTES])
{
    memset(out, 0xa5, LIA_MESSAGE_ID_BYTES);
    memcpy(out, &n, sizeof n);
}

/* Envelope bytes that encode n, so that a fetch can be checked against what was appended. */
static void env_of(uint64_t n, uint8_t out[ENV_LEN])
{
    for (size_t i = 0; i < ENV_LEN; i++)
        out[i] = (uint8_t)(n * 31 + i);
}

static int env_is(const lia_bstore_item *it, uint64_t n)
{
    uint8_t e[ENV_LEN];
    env_of(n, e);
    return it->len == ENV_LEN && memcmp(it->data, e, ENV_LEN) == 0;
}

static int env_is_out(const lia_nstore_out *o, uint64_t n)
{
    uint8_t e[ENV_LEN];
    env_of(n, e);
    return o->len == ENV_LEN && memcmp(o->data, e, ENV_LEN) == 0;
}

/* Appends message n to the given recipients (in the open group), expecting no duplicate. */
static void append(lia_bstore_t *s, uint64_t n, const char *const *rcpt, size_t k)
{
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    int dup = -1;
    mid(n, id);
    env_of(n, e);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, rcpt, k, &dup), 0);
    assert_int_equal(dup, 0);
}

static const char *store_path(const char *tag)
{
    return tu_path(tu_mkdtemp(tag), "store.db");
}

static void test_bstore_round_trip(void **state)
{
    const char *ab[] = {"node-a", "node-b"}, *abc[] = {"node-a", "node-b", "node-c"};
    const char *c[] = {"node-c"};
    lia_bstore_item items[16];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(store_path("bstore-rt"), &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 1, ab, 2);
    append(s, 2, abc, 3);
    append(s, 3, c, 1);
    append(s, 4, abc, 3);
    /* Not durable yet: invisible to fetch and to the durable head. */
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 16, items, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(head, 0);
    assert_int_equal(lia_bstore_commit(s), 0);

    /* node-a: 1, 2, 4 as seq 1, 2, 3; node-c: 2, 3, 4 as seq 1, 2, 3. */
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 16, items, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(items[i].seq, i + 1);
    assert_true(env_is(&items[0], 1) && env_is(&items[1], 2) && env_is(&items[2], 4));
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_fetch(s, "node-c", 1, 16, items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].seq, 2);
    assert_true(env_is(&items[0], 3) && env_is(&items[1], 4));
    lia_bstore_items_free(items, n);
    /* max bounds the answer. */
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 2, items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[1].seq, 2);
    lia_bstore_items_free(items, n);
    /* An unknown node has an empty stream. */
    assert_int_equal(lia_bstore_fetch(s, "node-z", 0, 16, items, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lia_bstore_cursor(s, "node-z", &cur, &head), 0);
    assert_int_equal(cur + head, 0);

    /* Acks: node-a takes everything; node-b and node-c still get the shared envelopes. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 3), 0);
    assert_int_equal(lia_bstore_ack(s, "node-c", 1), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(head, 3);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 16, items, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 3);
    assert_true(env_is(&items[0], 1) && env_is(&items[1], 2) && env_is(&items[2], 4));
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_fetch(s, "node-c", 0, 16, items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].seq, 2);
    lia_bstore_items_free(items, n);

    /* Everyone acknowledges: the envelopes are collected, the streams go on from their head. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 3), 0);
    assert_int_equal(lia_bstore_ack(s, "node-c", 3), 0);
    append(s, 5, abc, 3);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-c", 0, 16, items, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].seq, 4);
    assert_true(env_is(&items[0], 5));
    lia_bstore_items_free(items, n);
    lia_bstore_close(&s);
    assert_null(s);
    lia_bstore_close(NULL);
}

static void test_bstore_contiguous(void **state)
{
    const char *nodes[] = {"n0", "n1", "n2", "n3", "n4"};
    lia_bstore_item items[200];
    uint64_t expect[5] = {0};
    lia_bstore_t *s;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(store_path("bstore-seq"), &s), 0);
    for (uint64_t g = 0; g < 10; g++) {
        assert_int_equal(lia_bstore_begin(s), 0);
        for (uint64_t i = 0; i < 20; i++) {
            uint64_t m = g * 20 + i;
            /* Recipients: a varying window of the five nodes. */
            size_t first = (size_t)(m % 5), k = 1 + (size_t)(m % 3);
            if (first + k > 5)
                first = 5 - k;
            append(s, m, nodes + first, k);
            for (size_t j = first; j < first + k; j++)
                expect[j]++;
        }
        assert_int_equal(lia_bstore_commit(s), 0);
    }
    for (size_t j = 0; j < 5; j++) {
        uint64_t cur, head;
        assert_int_equal(lia_bstore_fetch(s, nodes[j], 0, 200, items, &n), 0);
        assert_int_equal(n, expect[j]);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(items[i].seq, i + 1);
        lia_bstore_items_free(items, n);
        assert_int_equal(lia_bstore_cursor(s, nodes[j], &cur, &head), 0);
        assert_int_equal(head, expect[j]);
        assert_int_equal(cur, 0);
    }
    lia_bstore_close(&s);
}

static void test_bstore_duplicates(void **state)
{
    const char *a[] = {"node-a"}, *b[] = {"node-b"};
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_bstore_item items[4];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    int dup;
    (void)state;

    assert_int_equal(lia_bstore_open(store_path("bstore-dup"), &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 7, a, 1);
    mid(7, id);
    env_of(99, e);
    /* Same group, then later groups: still a duplicate, nothing stored, no sequence used. */
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, b, 1, &dup), 0);
    assert_int_equal(dup, 1);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    dup = 0;
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, a, 1, &dup), 0);
    assert_int_equal(dup, 1);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(head, 1);
    assert_int_equal(lia_bstore_cursor(s, "node-b", &cur, &head), 0);
    assert_int_equal(head, 0);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 4, items, &n), 0);
    assert_int_equal(n, 1);
    assert_true(env_is(&items[0], 7));
    lia_bstore_items_free(items, n);

    lia_bstore_close(&s);
}

static void test_bstore_duplicate_after_gc(void **state)
{
    const char *a[] = {"node-a"};
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    const char *path = store_path("bstore-gc");
    lia_bstore_item items[4];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    int dup = 0;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 1, a, 1);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 1), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    lia_bstore_close(&s);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    mid(1, id);
    env_of(1, e);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, a, 1, &dup), 0);
    assert_int_equal(dup, 1);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 1);
    assert_int_equal(head, 1);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 4, items, &n), 0);
    assert_int_equal(n, 0);
    lia_bstore_close(&s);
}

static void test_bstore_cursor_monotonic(void **state)
{
    const char *a[] = {"node-a"};
    lia_bstore_item items[8];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(store_path("bstore-cur"), &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    for (uint64_t i = 1; i <= 5; i++)
        append(s, i, a, 1);
    /* Acknowledging what is not durable yet is refused. */
    assert_int_equal(lia_bstore_ack(s, "node-a", 1), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_commit(s), 0);
    /* Outside a group: refused. */
    assert_int_equal(lia_bstore_ack(s, "node-a", 3), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_begin(s), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_ack(s, "node-a", 3), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 2), 0); /* lower: no-op */
    assert_int_equal(lia_bstore_ack(s, "node-a", 6), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_ack(s, "node-x", 1), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_ack(s, "Bad Id", 1), LIA_ERR_INVALID);
    /* The durable cursor moves only at commit. */
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_commit(s), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 3);
    assert_int_equal(head, 5);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 1), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 3);
    /* What is above the cursor is still there, in order. */
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 8, items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].seq, 4);
    assert_true(env_is(&items[0], 4) && env_is(&items[1], 5));
    lia_bstore_items_free(items, n);
    lia_bstore_close(&s);
}

static void test_bstore_reopen(void **state)
{
    const char *ab[] = {"node-a", "node-b"};
    const char *path = store_path("bstore-reopen");
    lia_bstore_item items[8];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    for (uint64_t i = 1; i <= 4; i++)
        append(s, i, ab, 2);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 2), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    /* An open group at close is rolled back. */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 100, ab, 2);
    lia_bstore_close(&s);

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 8, items, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].seq, i + 1);
        assert_true(env_is(&items[i], i + 1));
    }
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_cursor(s, "node-b", &cur, &head), 0);
    assert_int_equal(cur, 2);
    assert_int_equal(head, 4);
    /* The streams continue where the durable heads are. */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 5, ab, 2);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 8, items, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].seq, 3);
    assert_int_equal(items[2].seq, 5);
    assert_true(env_is(&items[2], 5));
    lia_bstore_items_free(items, n);
    lia_bstore_close(&s);
}

/* In a child: opens path, appends messages first..first+count-1 to node-a in one group,
 * commits if told to, then _exit()s without closing (a crash). Exit status 0 if every call
 * succeeded. */
static void crash_child(const char *path, uint64_t first, uint64_t count, int commit)
{
    const char *a[] = {"node-a"};
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_bstore_t *s;
    int dup;
    if (lia_bstore_open(path, &s) != 0 || lia_bstore_begin(s) != 0)
        _exit(10);
    for (uint64_t i = first; i < first + count; i++) {
        mid(i, id);
        env_of(i, e);
        if (lia_bstore_append(s, id, "sender", e, ENV_LEN, a, 1, &dup) != 0 || dup)
            _exit(11);
    }
    if (commit && lia_bstore_commit(s) != 0)
        _exit(12);
    _exit(0);
}

static void run_child(const char *path, uint64_t first, uint64_t count, int commit)
{
    int status = -1;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(path, first, count, commit);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_bstore_crash(void **state)
{
    const char *path = store_path("bstore-crash");
    lia_bstore_item items[64];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    /* A child commits 10 messages and dies: they are there. */
    run_child(path, 1, 10, 1);
    /* A child appends 3000 (enough to spill pages into the WAL) without commit and dies. */
    run_child(path, 1000, 3000, 0);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(head, 10);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 64, items, &n), 0);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].seq, i + 1);
        assert_true(env_is(&items[i], i + 1));
    }
    lia_bstore_items_free(items, n);
    lia_bstore_close(&s);
    /* The lost group's sequences are handed out again: nobody ever saw them. */
    run_child(path, 20, 2, 1);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 10, 64, items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].seq, 11);
    assert_true(env_is(&items[0], 20) && env_is(&items[1], 21));
    lia_bstore_items_free(items, n);
    lia_bstore_close(&s);
}

static void test_bstore_file_checks(void **state)
{
    const char *dir = tu_mkdtemp("bstore-file");
    const char *path = tu_path(dir, "b.db");
    lia_bstore_t *s, *s2;
    lia_nstore_t *ns;
    lia_symkey_t *key;
    struct stat st;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* One handle at a time. */
    assert_int_equal(lia_bstore_open(path, &s2), LIA_ERR_STORAGE);
    assert_null(s2);
    lia_bstore_close(&s);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(lia_bstore_open(path, &s), LIA_ERR_PERMISSION);
    assert_null(s);
    assert_int_equal(chmod(path, 0600), 0);
    /* A broker log is not a node store, and a non-SQLite file is refused. */
    assert_int_equal(lia_symkey_generate(&key), 0);
    assert_int_equal(lia_nstore_open(path, key, &ns), LIA_ERR_WRONG_KIND);
    tu_write_file(tu_path(dir, "junk.db"),
                  "this is not a database at all, not even close......"
                  "................................................",
                  100, 0600);
    assert_int_equal(lia_bstore_open(tu_path(dir, "junk.db"), &s), LIA_ERR_WRONG_KIND);
    assert_int_equal(lia_bstore_open(dir, &s), LIA_ERR_WRONG_KIND);
    assert_int_equal(lia_bstore_open(tu_path(dir, "missing/x.db"), &s), LIA_ERR_IO);
    lia_symkey_destroy(&key);
}

static void test_bstore_version(void **state)
{
    const char *path = store_path("bstore-ver");
    lia_bstore_t *s;
    uint8_t *buf;
    size_t len;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    lia_bstore_close(&s); /* checkpoints the WAL into the file and removes it */
    buf = tu_read_file(path, &len);
    assert_true(len >= 100);
    /* The header's user_version (offset 60, big-endian) is 3; a newer one (4) and one from
     * nowhere (99) are refused; versions 1 and 2 would be migrated (test_bstore_migrate_v1,
     * test_bstore_migrate_v2). */
    assert_int_equal(buf[63], 3);
    buf[63] = 4;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_bstore_open(path, &s), LIA_ERR_VERSION);
    assert_null(s);
    buf[63] = 99;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_bstore_open(path, &s), LIA_ERR_VERSION);
    assert_null(s);
    buf[63] = 3;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    lia_bstore_close(&s);
    free(buf);
}

/* Body bytes held by the log. */
static uint64_t held_bytes(lia_bstore_t *s, uint64_t *batches)
{
    uint64_t b = 0, bytes = 0;
    assert_int_equal(lia_bstore_held(s, &b, &bytes), 0);
    if (batches)
        *batches = b;
    return bytes;
}

/*
 * Envelopes of one group are kept as one body per recipient list; a body goes only when every
 * recipient of every envelope in it acknowledged, and an absent node holds only the bodies of
 * envelopes addressed to it.
 */
static void test_bstore_batches(void **state)
{
    const char *ab[] = {"node-a", "node-b"}, *a[] = {"node-a"}, *c[] = {"node-c"};
    lia_bstore_item items[16];
    lia_bstore_t *s;
    uint64_t batches;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(store_path("bstore-batch"), &s), 0);
    assert_int_equal(held_bytes(s, &batches), 0);
    /* Group 1: messages 1-3 to a+b, 4 to a, 5 to c (three recipient lists, three bodies). */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 1, ab, 2);
    append(s, 2, ab, 2);
    append(s, 3, ab, 2);
    append(s, 4, a, 1);
    append(s, 5, c, 1);
    assert_int_equal(held_bytes(s, NULL), 0); /* nothing before the commit */
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, &batches), 5 * ENV_LEN);
    assert_int_equal(batches, 3);
    /* Group 2: message 6 to a+b (a fourth body), a duplicate of 1 (stored nothing). */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 6, ab, 2);
    {
        uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
        int dup = 0;
        mid(1, id);
        env_of(1, e);
        assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, ab, 2, &dup), 0);
        assert_int_equal(dup, 1);
    }
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, &batches), 6 * ENV_LEN);
    assert_int_equal(batches, 4);
    /* Every envelope reads back from its body, in order. */
    assert_int_equal(lia_bstore_fetch(s, "node-a", 0, 16, items, &n), 0);
    assert_int_equal(n, 5);
    assert_true(env_is(&items[0], 1) && env_is(&items[1], 2) && env_is(&items[2], 3) &&
                env_is(&items[3], 4) && env_is(&items[4], 6));
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 1, 16, items, &n), 0);
    assert_int_equal(n, 3);
    assert_true(env_is(&items[0], 2) && env_is(&items[1], 3) && env_is(&items[2], 6));
    lia_bstore_items_free(items, n);
    /* a takes everything: only its own body (message 4) goes; b still needs 1-3 and 6. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 5), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, &batches), 5 * ENV_LEN);
    assert_int_equal(batches, 3);
    /* b takes 1-2: group 1's a+b body stays for message 3. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 2), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, &batches), 5 * ENV_LEN);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 2, 16, items, &n), 0);
    assert_int_equal(n, 2);
    assert_true(env_is(&items[0], 3) && env_is(&items[1], 6));
    lia_bstore_items_free(items, n);
    /* b takes the rest: both a+b bodies go. c, absent, holds only message 5's body. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 4), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, &batches), ENV_LEN);
    assert_int_equal(batches, 1);
    /* A rolled-back group leaves no body and no batch number in use that a later group
     * could not take again. */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 7, c, 1);
    lia_bstore_close(&s); /* uncommitted: rolled back */
    assert_int_equal(lia_bstore_open(store_path("bstore-batch2"), &s), 0);
    lia_bstore_close(&s);
}

/* Copies the fixture tests/unit/data/NAME (of schema version `version`) to path. */
static void copy_fixture(const char *name, int version, const char *path)
{
    const char *src = getenv("LIA_SOURCE_DIR");
    char fixture[4096];
    uint8_t *buf;
    size_t len;

    assert_non_null(src);
    snprintf(fixture, sizeof fixture, "%s/tests/unit/data/%s", src, name);
    buf = tu_read_file(fixture, &len);
    assert_int_equal(buf[63], version); /* user_version, big-endian at offset 60 */
    tu_write_file(path, buf, len, 0600);
    free(buf);
}

/* The schema version in the file at path (closed, so that everything is in the file). */
static int file_version(const char *path)
{
    size_t len;
    uint8_t *buf = tu_read_file(path, &len);
    int v = buf[63];
    free(buf);
    return v;
}

/*
 * A version-1 log (tests/unit/data/broker-log-v1.db, written by the version-1 code: messages
 * 1-4 to node-a and node-b, node-a acknowledged 2) is migrated in place at open: its rows are
 * delivered from where they are, collected as before, and new envelopes go into bodies.
 */
static void test_bstore_migrate_v1(void **state)
{
    const char *path = store_path("bstore-v1");
    const char *ab[] = {"node-a", "node-b"};
    lia_bstore_item items[16];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    copy_fixture("broker-log-v1.db", 1, path);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 2);
    assert_int_equal(head, 4);
    assert_int_equal(lia_bstore_fetch(s, "node-a", 2, 16, items, &n), 0);
    assert_int_equal(n, 2);
    assert_true(env_is(&items[0], 3) && env_is(&items[1], 4));
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 4);
    assert_true(env_is(&items[0], 1) && env_is(&items[3], 4));
    lia_bstore_items_free(items, n);
    /* Old ids are still duplicates; new envelopes follow in the same streams. */
    assert_int_equal(lia_bstore_begin(s), 0);
    {
        uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
        int dup = 0;
        mid(3, id);
        env_of(3, e);
        assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, ab, 2, &dup), 0);
        assert_int_equal(dup, 1);
    }
    append(s, 5, ab, 2);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, NULL), ENV_LEN);
    lia_bstore_close(&s);
    /* Reopened: version 3 now (through 2), everything still there. */
    assert_int_equal(file_version(path), 3);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_true(env_is(&items[i], i + 1));
    lia_bstore_items_free(items, n);
    /* Both nodes take everything: old rows are emptied, the new body goes. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 5), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 5), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(held_bytes(s, NULL), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 0);
    lia_bstore_close(&s);
}

static int has_id(lia_bstore_t *s, uint64_t n)
{
    uint8_t id[LIA_MESSAGE_ID_BYTES];
    int found = -1;
    mid(n, id);
    assert_int_equal(lia_bstore_has(s, id, &found), 0);
    return found;
}

/* One round of forgetting envelopes stored before before_ms, `scan` rows per step, each step in
 * its own group; returns how many were forgotten. */
static size_t prune(lia_bstore_t *s, uint64_t before_ms, size_t scan)
{
    size_t total = 0, n = 99, steps = 0;
    int done = 0;
    while (!done) {
        assert_int_equal(lia_bstore_begin(s), 0);
        assert_int_equal(lia_bstore_prune(s, before_ms, scan, &n, &done), 0);
        assert_int_equal(lia_bstore_commit(s), 0);
        total += n;
        assert_true(++steps <= 100);
    }
    return total;
}

/*
 * Delivered envelopes are forgotten once stored before the given time; never one still owed to
 * a node, never the newest; nothing stored later. A step looks at a bounded number of rows and
 * the next goes on from there. What is left is delivered as before.
 */
static void test_bstore_prune(void **state)
{
    const char *path = store_path("bstore-prune");
    const char *a[] = {"node-a"}, *ab[] = {"node-a", "node-b"};
    lia_bstore_item items[16];
    lia_bstore_t *s;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    for (uint64_t i = 1; i <= 3; i++)
        append(s, i, a, 1); /* one batch: 1-3 to node-a */
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    for (uint64_t i = 4; i <= 5; i++)
        append(s, i, ab, 2); /* another: 4-5 to node-a and node-b */
    assert_int_equal(lia_bstore_commit(s), 0);
    /* Nothing delivered yet: nothing to forget, whatever the time. */
    assert_int_equal(prune(s, INT64_MAX, 100), 0);
    /* node-a takes everything: 1-3 are delivered, 4-5 still owed to node-b. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-a", 5), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(prune(s, 1, 100), 0); /* all stored after 1970 */
    {
        size_t k;
        int done;
        /* One step of 2 rows looks at 1-2 only. */
        assert_int_equal(lia_bstore_begin(s), 0);
        assert_int_equal(lia_bstore_prune(s, INT64_MAX, 2, &k, &done), 0);
        assert_int_equal(lia_bstore_commit(s), 0);
        assert_int_equal(k, 2);
        assert_int_equal(done, 0);
        assert_int_equal(has_id(s, 1), 0);
        assert_int_equal(has_id(s, 2), 0);
        assert_int_equal(has_id(s, 3), 1);
        /* The next goes on with 3-4; the round ends with 5, the newest. */
        assert_int_equal(lia_bstore_begin(s), 0);
        assert_int_equal(lia_bstore_prune(s, INT64_MAX, 2, &k, &done), 0);
        assert_int_equal(lia_bstore_commit(s), 0);
        assert_int_equal(k, 1);
        assert_int_equal(done, 0);
        assert_int_equal(prune(s, INT64_MAX, 2), 0);
    }
    assert_int_equal(has_id(s, 3), 0);
    assert_int_equal(has_id(s, 4), 1);
    assert_int_equal(has_id(s, 5), 1);
    /* node-b takes 4-5: 4 goes, 5 (the newest) stays. */
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 2);
    assert_true(env_is(&items[0], 4) && env_is(&items[1], 5));
    lia_bstore_items_free(items, n);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 2), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(prune(s, INT64_MAX, 100), 1);
    assert_int_equal(has_id(s, 4), 0);
    assert_int_equal(has_id(s, 5), 1);
    /* Sequences and batches go on after the forgotten rows. */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 6, ab, 2);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 2, 16, items, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].seq, 3);
    assert_true(env_is(&items[0], 6));
    lia_bstore_items_free(items, n);
    {
        size_t k;
        int done;
        assert_int_equal(lia_bstore_begin(s), 0);
        assert_int_equal(lia_bstore_prune(s, INT64_MAX, 0, &k, &done), LIA_ERR_INVALID);
        assert_int_equal(lia_bstore_commit(s), 0);
    }
    lia_bstore_close(&s);
}

/*
 * A version-2 log (tests/unit/data/broker-log-v2.db, written by the version-2 code: messages
 * 1-4 to node-a and node-b in one batch, node-a acknowledged them; then 5 to node-a alone,
 * acknowledged) is migrated in place: deliveries resume where they were, old message ids are
 * still recognised, and they are forgotten like new ones once delivered.
 */
static void test_bstore_migrate_v2(void **state)
{
    const char *path = store_path("bstore-v2");
    lia_bstore_item items[16];
    lia_bstore_t *s;
    uint64_t cur, head;
    size_t n;
    (void)state;

    copy_fixture("broker-log-v2.db", 2, path);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(cur, 5);
    assert_int_equal(head, 5);
    assert_int_equal(lia_bstore_fetch(s, "node-b", 0, 16, items, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(env_is(&items[i], i + 1));
    lia_bstore_items_free(items, n);
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal(has_id(s, i), 1);
    /* 1-4 are owed to node-b; 5 is delivered but the newest. */
    assert_int_equal(prune(s, INT64_MAX, 100), 0);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_ack(s, "node-b", 4), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    /* Rows of version 2 count as stored at the migration, not before. */
    assert_int_equal(prune(s, 1, 100), 0);
    assert_int_equal(prune(s, INT64_MAX, 3), 4);
    assert_int_equal(has_id(s, 4), 0);
    assert_int_equal(has_id(s, 5), 1);
    lia_bstore_close(&s);
    assert_int_equal(file_version(path), 3);
}

/* The WAL is copied into the database file by the background checkpointer, without a close
 * and without a commit waiting for it: the file grows while the store stays open. */
static void test_bstore_background_checkpoint(void **state)
{
    const char *path = store_path("bstore-ckpt");
    const char *r[] = {"node-a"};
    static uint8_t e[8192];
    struct stat st;
    lia_bstore_t *s;
    off_t before;
    int grown = 0;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(stat(path, &st), 0);
    before = st.st_size;
    /* 2,560 envelopes of 8 KiB: 20 MiB, more than the 1,000 pages of 16 KiB that wake it. */
    for (uint64_t g = 0; g < 40; g++) {
        assert_int_equal(lia_bstore_begin(s), 0);
        for (uint64_t i = 0; i < 64; i++) {
            uint8_t id[LIA_MESSAGE_ID_BYTES];
            int dup;
            mid(1000 + g * 64 + i, id);
            memset(e, (int)i, sizeof e);
            assert_int_equal(lia_bstore_append(s, id, "sender", e, sizeof e, r, 1, &dup), 0);
        }
        assert_int_equal(lia_bstore_commit(s), 0);
    }
    /* Waits on the condition (the file grew) with a 10 s limit; the 10 ms sleep is only the
     * polling interval, so the test passes as soon as the copy is seen and fails only if it
     * never happens. */
    for (int i = 0; i < 1000 && !grown; i++) {
        assert_int_equal(stat(path, &st), 0);
        grown = st.st_size > before + (8 << 20);
        if (!grown)
            usleep(10000); /* polling interval of the bounded wait above */
    }
    assert_true(grown);
    lia_bstore_close(&s);
}

static void test_bstore_bounds(void **state)
{
    const char *a[] = {"node-a"}, *twice[] = {"node-a", "node-b", "node-a"};
    const char *bad[] = {"node-a", "Node-B"};
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    const char **many;
    char(*names)[16];
    lia_bstore_t *s;
    uint64_t cur, head;
    int dup;
    (void)state;

    mid(1, id);
    env_of(1, e);
    assert_int_equal(lia_bstore_open(store_path("bstore-bounds"), &s), 0);
    /* Outside a group. */
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, a, 1, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(
        lia_bstore_append(s, id, "sender", e, (size_t)LIA_ENVELOPE_MAX + 1, a, 1, &dup),
        LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, 0, a, 1, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, a, 0, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, a,
                                       (size_t)LIA_BSTORE_RECIPIENTS_MAX + 1, &dup),
                     LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, twice, 3, &dup),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_append(s, id, "sender", e, ENV_LEN, bad, 2, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_append(s, id, "", e, ENV_LEN, a, 1, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_append(s, id, NULL, e, ENV_LEN, a, 1, &dup), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_fetch(s, "NOPE", 0, 1, NULL, &(size_t){0}), LIA_ERR_INVALID);
    /* None of that stored anything: the id is still free and node-a starts at 1. */
    append(s, 1, a, 1);
    /* A channel fan-out larger than LIA_RECIPIENTS_MAX. */
    many = calloc(2000, sizeof *many);
    names = calloc(2000, sizeof *names);
    assert_non_null(many);
    assert_non_null(names);
    for (size_t i = 0; i < 2000; i++) {
        snprintf(names[i], sizeof names[i], "m%zu", i);
        many[i] = names[i];
    }
    append(s, 2, many, 2000);
    assert_int_equal(lia_bstore_commit(s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(head, 1);
    assert_int_equal(lia_bstore_cursor(s, "m1999", &cur, &head), 0);
    assert_int_equal(head, 1);
    free(many);
    free(names);
    lia_bstore_close(&s);
}

/* In a child: a store whose file may not grow (RLIMIT_FSIZE) must fail at the first write that
 * reaches the disk, and stay failed. Exit 0 if it behaved. */
static void full_child(const char *path)
{
    const char *a[] = {"node-a"};
    struct rlimit rl = {64 << 10, 64 << 10};
    uint8_t id[LIA_MESSAGE_ID_BYTES];
    uint8_t *e = calloc(1, 256 << 10);
    lia_bstore_t *s;
    int dup, rc = 0;
    uint64_t cur, head;

    if (!e || lia_bstore_open(path, &s) != 0)
        _exit(10);
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        _exit(11);
    if (lia_bstore_begin(s) != 0)
        _exit(12);
    for (uint64_t i = 0; i < 64 && rc == 0; i++) {
        mid(i, id);
        rc = lia_bstore_append(s, id, "sender", e, 256 << 10, a, 1, &dup);
    }
    if (rc == 0)
        rc = lia_bstore_commit(s);
    if (rc != LIA_ERR_STORAGE)
        _exit(13);
    if (lia_bstore_begin(s) != LIA_ERR_STORAGE ||
        lia_bstore_cursor(s, "node-a", &cur, &head) != LIA_ERR_STORAGE)
        _exit(14);
    lia_bstore_close(&s);
    free(e);
    _exit(0);
}

static void test_bstore_failed_state(void **state)
{
    const char *path = store_path("bstore-full");
    lia_bstore_t *s;
    uint64_t cur, head;
    int status = -1;
    pid_t pid;
    (void)state;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        full_child(path);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_cursor(s, "node-a", &cur, &head), 0);
    assert_int_equal(head, 0);
    lia_bstore_close(&s);
}

/* ---------------- node store ---------------- */

static lia_symkey_t *new_key(void)
{
    lia_symkey_t *k;
    assert_int_equal(lia_symkey_generate(&k), 0);
    return k;
}

static void test_nstore_outbox(void **state)
{
    const char *path = store_path("nstore-out");
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_symkey_t *key = new_key();
    lia_nstore_out out[8];
    lia_nstore_t *s;
    uint64_t ids[4], count, last;
    size_t n;
    (void)state;

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    mid(1, id);
    env_of(1, e);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &ids[0]), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 1; i <= 3; i++) {
        mid(i, id);
        env_of(i, e);
        assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &ids[i - 1]), 0);
    }
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    mid(2, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL), LIA_ERR_EXISTS);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, (size_t)LIA_ENVELOPE_MAX + 1, NULL),
                     LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_nstore_commit(s), 0);

    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0); /* idempotent */
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    lia_nstore_close(&s);

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 8, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, ids[0]);
    assert_int_equal(out[1].id, ids[2]);
    mid(3, id);
    env_of(3, e);
    assert_memory_equal(out[1].message_id, id, LIA_MESSAGE_ID_BYTES);
    assert_int_equal(out[1].len, ENV_LEN);
    assert_memory_equal(out[1].data, e, ENV_LEN);
    lia_nstore_out_free(out, n);
    assert_int_equal(lia_nstore_outbox_pending(s, ids[0], 1, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, ids[2]);
    lia_nstore_out_free(out, n);
    /* Ack everything: the ids that come next are still larger. */
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(1, id);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    mid(3, id);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(4, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &last), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_true(last > ids[2]);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

/*
 * Outbox batches: envelopes added in one group share a row. Acknowledgements of part of a batch
 * survive a reopen (what was acknowledged is not resent), a fully acknowledged batch goes, and
 * ids keep growing across reopens even when the outbox was empty.
 */
static void test_nstore_outbox_batches(void **state)
{
    const char *path = store_path("nstore-outb");
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_symkey_t *key = new_key();
    lia_nstore_out out[16];
    lia_nstore_t *s;
    uint64_t ids[10], count, last;
    size_t n;
    (void)state;

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    /* Group 1: messages 1-4; group 2: messages 5-6. */
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 1; i <= 6; i++) {
        if (i == 5) {
            assert_int_equal(lia_nstore_commit(s), 0);
            assert_int_equal(lia_nstore_begin(s), 0);
        }
        mid(i, id);
        env_of(i, e);
        assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &ids[i - 1]), 0);
        if (i > 1)
            assert_int_equal(ids[i - 1], ids[i - 2] + 1);
    }
    assert_int_equal(lia_nstore_commit(s), 0);
    /* Acknowledge 2 and 3 (part of group 1) and 5, 6 (all of group 2). */
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 2; i <= 6; i++) {
        if (i == 4)
            continue;
        mid(i, id);
        assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    }
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    lia_nstore_close(&s);

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 16, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, ids[0]);
    assert_int_equal(out[1].id, ids[3]);
    mid(4, id);
    env_of(4, e);
    assert_memory_equal(out[1].message_id, id, LIA_MESSAGE_ID_BYTES);
    assert_int_equal(out[1].len, ENV_LEN);
    assert_memory_equal(out[1].data, e, ENV_LEN);
    lia_nstore_out_free(out, n);
    assert_int_equal(lia_nstore_outbox_pending(s, ids[0], 16, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, ids[3]);
    lia_nstore_out_free(out, n);
    /* An acknowledged id may be queued again (it is no longer in the outbox). */
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(1, id);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    mid(4, id);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 0);
    lia_nstore_close(&s);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 16, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(9, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &last), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(last, ids[5] + 1);
    /* An uncommitted group's batch is gone after a reopen; its id is handed out again. */
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(10, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &ids[9]), 0);
    lia_nstore_close(&s);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &last), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(last, ids[9]);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

/* A version-1 node store (tests/unit/data/node-store-v1.db: outbox messages 1-3 with ids 1-3,
 * message 2 acknowledged) is migrated at open: the pending envelopes keep their ids. */
static void test_nstore_migrate_v1(void **state)
{
    const char *path = store_path("nstore-v1");
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_symkey_t *key = new_key();
    lia_nstore_out out[8];
    lia_nstore_t *s;
    uint64_t count, last;
    size_t n;
    (void)state;

    copy_fixture("node-store-v1.db", 1, path);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 8, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[1].id, 3);
    mid(3, id);
    env_of(3, e);
    assert_memory_equal(out[1].message_id, id, LIA_MESSAGE_ID_BYTES);
    assert_memory_equal(out[1].data, e, ENV_LEN);
    lia_nstore_out_free(out, n);
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(1, id);
    assert_int_equal(lia_nstore_outbox_ack(s, id), 0);
    mid(4, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, &last), 0);
    assert_int_equal(last, 4);
    assert_int_equal(lia_nstore_commit(s), 0);
    lia_nstore_close(&s);
    assert_int_equal(file_version(path), 2);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 8, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 3);
    assert_int_equal(out[1].id, 4);
    lia_nstore_out_free(out, n);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

/* Child of test_nstore_failed_group: a committed batch, then a group that acknowledges part of
 * it and adds more than the file size limit allows, so that its commit fails. */
static void nstore_full_child(const char *path, lia_symkey_t *key)
{
    struct rlimit rl = {1 << 20, 1 << 20};
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    uint8_t *big = calloc(1, 256 << 10);
    lia_nstore_t *s;
    uint64_t count;
    int rc = 0;

    if (!big || lia_nstore_open(path, key, &s) != 0 || lia_nstore_begin(s) != 0)
        _exit(10);
    for (uint64_t i = 1; i <= 2; i++) {
        mid(i, id);
        env_of(i, e);
        if (lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL) != 0)
            _exit(11);
    }
    if (lia_nstore_commit(s) != 0)
        _exit(12);
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || lia_nstore_begin(s) != 0)
        _exit(13);
    mid(1, id);
    if (lia_nstore_outbox_ack(s, id) != 0)
        _exit(14);
    for (uint64_t i = 10; i < 30 && rc == 0; i++) {
        mid(i, id);
        rc = lia_nstore_outbox_add(s, id, big, 256 << 10, NULL);
    }
    mid(10, id); /* acknowledged before it is stored: the group's own batch is touched too */
    if (rc == 0)
        rc = lia_nstore_outbox_ack(s, id);
    if (rc == 0)
        rc = lia_nstore_commit(s);
    if (rc != LIA_ERR_STORAGE || lia_nstore_outbox_count(s, &count) != LIA_ERR_STORAGE)
        _exit(15);
    lia_nstore_close(&s);
    free(big);
    _exit(0);
}

/* A group that fails to commit leaves the outbox as the last commit left it: the batch it built
 * is not there and the acknowledgement it made is not either. */
/*
 * Deferred durability: a group committed without its sync is visible to the handle at once;
 * the sync runs on the store's thread, says so on its descriptor, one at a time; a store closed
 * while one runs waits for it; everything is there after a reopen.
 */
static void test_nstore_deferred_sync(void **state)
{
    const char *path = store_path("nstore-defer");
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    uint64_t count;
    struct pollfd pfd;
    (void)state;

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_true(lia_nstore_sync_fd(s) >= 0);
    assert_false(lia_nstore_sync_running(s));
    assert_int_equal(lia_nstore_sync_wait(s), LIA_ERR_INVALID); /* none started */
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 1; i <= 2; i++) {
        mid(i, id);
        env_of(i, e);
        assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL), 0);
    }
    assert_int_equal(lia_nstore_commit_unsynced(s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(lia_nstore_sync_start(s), 0);
    assert_true(lia_nstore_sync_running(s));
    assert_int_equal(lia_nstore_sync_start(s), LIA_ERR_INVALID); /* one at a time */
    /* The next group may be prepared while the sync runs. */
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(3, id);
    env_of(3, e);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL), 0);
    assert_int_equal(lia_nstore_commit_unsynced(s), 0);
    pfd = (struct pollfd){lia_nstore_sync_fd(s), POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_int_equal(lia_nstore_sync_wait(s), 0);
    assert_false(lia_nstore_sync_running(s));
    assert_int_equal(lia_nstore_sync_start(s), 0);
    lia_nstore_close(&s); /* waits for the running sync */
    assert_null(s);

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 3);
    /* lia_nstore_commit is durable on its own, with no sync to wait for. */
    assert_int_equal(lia_nstore_begin(s), 0);
    mid(4, id);
    assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_false(lia_nstore_sync_running(s));
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

static void test_nstore_failed_group(void **state)
{
    const char *path = store_path("nstore-full");
    lia_symkey_t *key = new_key();
    lia_nstore_out out[4];
    lia_nstore_t *s;
    uint64_t count;
    int status = -1;
    size_t n;
    pid_t pid;
    (void)state;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        nstore_full_child(path, key);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_outbox_count(s, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(lia_nstore_outbox_pending(s, 0, 4, out, &n), 0);
    assert_int_equal(n, 2);
    assert_true(env_is_out(&out[0], 1) && env_is_out(&out[1], 2));
    lia_nstore_out_free(out, n);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

static const char MARKER[] = "PLAINTEXT-MARKER-0123456789";

static lia_nstore_msg msg(uint64_t seq, const char *channel, const char *text)
{
    lia_nstore_msg m;
    memset(&m, 0, sizeof m);
    m.delivery_seq = seq;
    snprintf(m.sender, sizeof m.sender, "sender-%llu", (unsigned long long)(seq % 3));
    snprintf(m.channel, sizeof m.channel, "%s", channel);
    m.sender_seq = seq * 10;
    m.created_at_ms = 1700000000000ull + seq;
    m.received_at_ms = 1700000001000ull + seq;
    randombytes_buf(m.message_id, sizeof m.message_id);
    m.payload = (uint8_t *)text;
    m.payload_len = strlen(text);
    return m;
}

static int file_contains(const char *path, const void *needle, size_t nlen, size_t *at)
{
    size_t len;
    uint8_t *buf = tu_read_file(path, &len);
    const uint8_t *p = memmem(buf, len, needle, nlen);
    if (p && at)
        *at = (size_t)(p - buf);
    free(buf);
    return p != NULL;
}

/*
 * The store's VFS keeps WAL appends in a buffer (lib/store.c, "WAL appends in large writes"):
 * a committed group must be in the WAL file when the COMMIT returns, before any sync, or
 * another connection (the checkpointer) would read what is not there, and the deferred
 * fdatasync of the WAL would miss it. Several groups, so that the buffer also meets appends
 * that continue the last one.
 */
static void test_nstore_commit_reaches_wal(void **state)
{
    const char *path = store_path("nstore-wal");
    char wal[4096];
    uint8_t id[LIA_MESSAGE_ID_BYTES], e[ENV_LEN];
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    (void)state;

    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    for (uint64_t g = 1; g <= 4; g++) {
        assert_int_equal(lia_nstore_begin(s), 0);
        for (uint64_t i = 0; i < 8; i++) {
            mid(100 * g + i, id);
            env_of(100 * g + i, e);
            assert_int_equal(lia_nstore_outbox_add(s, id, e, ENV_LEN, NULL), 0);
        }
        assert_int_equal(lia_nstore_commit_unsynced(s), 0);
        /* The last envelope of the group, in the file (not in a buffer) without a sync. */
        assert_true(file_contains(wal, e, ENV_LEN, NULL));
    }
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

/* Copies the file at from to to (mode 0600), as a crash would leave it on disk. */
static void copy_file(const char *from, const char *to)
{
    size_t len;
    uint8_t *buf = tu_read_file(from, &len);
    tu_write_file(to, buf, len, 0600);
    free(buf);
}

/*
 * A group of 25 MiB (about 1,650 WAL frames, many times what the VFS's buffer holds, so that
 * it is written out in full pieces as well as at the commit frame): a copy of the files taken
 * right after the commit, as a crash would leave them, must recover every message.
 */
static void test_nstore_big_group_survives(void **state)
{
    enum { N = 400, LEN = 64 << 10 };
    const char *path = store_path("nstore-big"), *copy = store_path("nstore-big-copy");
    char wal[4096], copy_wal[4096];
    uint8_t *text = malloc(LEN + 1);
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    uint64_t cursor = 0;
    (void)state;

    assert_non_null(text);
    memset(text, 'x', LEN);
    text[LEN] = 0;
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    for (uint64_t i = 1; i <= N; i++) {
        lia_nstore_msg m = msg(i, i % 2 ? "case:a" : "case:b", (const char *)text);
        assert_int_equal(lia_nstore_inbox_add(s, &m), 0);
    }
    assert_int_equal(lia_nstore_commit(s), 0);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
    copy_file(path, copy);
    copy_file(wal, copy_wal);
    lia_nstore_close(&s);
    assert_int_equal(lia_nstore_open(copy, key, &s), 0);
    assert_int_equal(lia_nstore_cursor(s, &cursor), 0);
    assert_int_equal(cursor, N);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
    free(text);
}

/*
 * Groups of 50 to 75 envelopes of 16,000 bytes: one overflow page each, so that the group's
 * frame count passes every value around where the VFS's buffer fills (60 frames of 16 KiB),
 * including the commit frame's page being the write that does not fit. After each COMMIT,
 * without a sync, a copy of the files (what a crash would find) must hold every group.
 */
static void test_nstore_commits_across_buffer_edge(void **state)
{
    enum { LEN = 16000 };
    char path[4000], wal[4096], copy[4000], copy_wal[4096]; /* store_path's buffers rotate */
    uint8_t id[LIA_MESSAGE_ID_BYTES], *e = malloc(LEN);
    lia_symkey_t *key = new_key();
    lia_nstore_t *s, *c;
    uint64_t total = 0, count = 0;
    (void)state;

    assert_non_null(e);
    snprintf(path, sizeof path, "%s", store_path("nstore-edge"));
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    for (size_t n = 50; n <= 75; n++) {
        assert_int_equal(lia_nstore_begin(s), 0);
        for (size_t i = 0; i < n; i++) {
            total++;
            mid(1000 + total, id);
            memset(e, (int)(total & 0xFF), LEN);
            assert_int_equal(lia_nstore_outbox_add(s, id, e, LEN, NULL), 0);
        }
        assert_int_equal(lia_nstore_commit_unsynced(s), 0);
        snprintf(copy, sizeof copy, "%s", store_path("nstore-edge-copy"));
        snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
        copy_file(path, copy);
        copy_file(wal, copy_wal);
        assert_int_equal(lia_nstore_open(copy, key, &c), 0);
        assert_int_equal(lia_nstore_outbox_count(c, &count), 0);
        assert_int_equal(count, total);
        lia_nstore_close(&c);
    }
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
    free(e);
}

static void test_nstore_inbox(void **state)
{
    const char *path = store_path("nstore-in");
    lia_symkey_t *key = new_key();
    lia_nstore_msg m1 = msg(1, "case-42", MARKER), m2 = msg(2, "", "direct hello"),
                   m4 = msg(4, "case-42", "second on the channel"), other;
    lia_nstore_msg got[8];
    lia_nstore_t *s;
    uint64_t cur;
    size_t n;
    (void)state;

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m1), LIA_ERR_INVALID); /* no group */
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m1), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m2), 0);
    assert_int_equal(lia_nstore_inbox_refused(s, 3, "signature"), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m4), 0);
    /* Cursor durable only after commit. */
    assert_int_equal(lia_nstore_cursor(s, &cur), 0);
    assert_int_equal(cur, 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_cursor(s, &cur), 0);
    assert_int_equal(cur, 4);

    /* Idempotent re-add; a different message on a used delivery is refused. */
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m2), 0);
    other = msg(2, "", "imposter");
    assert_int_equal(lia_nstore_inbox_add(s, &other), LIA_ERR_EXISTS);
    other = msg(3, "", "over a refusal");
    assert_int_equal(lia_nstore_inbox_add(s, &other), LIA_ERR_EXISTS);
    assert_int_equal(lia_nstore_inbox_refused(s, 3, "signature"), 0);
    assert_int_equal(lia_nstore_inbox_refused(s, 1, "signature"), LIA_ERR_EXISTS);
    assert_int_equal(lia_nstore_inbox_refused(s, 9, ""), LIA_ERR_INVALID);
    other = msg(5, "", "x");
    other.payload_len = (size_t)LIA_ENVELOPE_MAX + 1;
    assert_int_equal(lia_nstore_inbox_add(s, &other), LIA_ERR_TOO_LARGE);
    snprintf(other.sender, sizeof other.sender, "Bad Sender");
    other.payload_len = 1;
    assert_int_equal(lia_nstore_inbox_add(s, &other), LIA_ERR_INVALID);
    /* A refusal past the last message still moves the cursor. */
    assert_int_equal(lia_nstore_inbox_refused(s, 6, "not_member"), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_cursor(s, &cur), 0);
    assert_int_equal(cur, 6);
    lia_nstore_close(&s);

    /* At rest: the plaintext is nowhere in the file. */
    assert_false(file_contains(path, MARKER, strlen(MARKER), NULL));
    assert_false(file_contains(path, "second on the channel", 21, NULL));

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_cursor(s, &cur), 0);
    assert_int_equal(cur, 6);
    assert_int_equal(lia_nstore_inbox_list(s, 0, NULL, 8, got, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(got[0].delivery_seq, 1);
    assert_int_equal(got[1].delivery_seq, 2);
    assert_int_equal(got[2].delivery_seq, 4);
    assert_int_equal(got[0].payload_len, strlen(MARKER));
    assert_memory_equal(got[0].payload, MARKER, strlen(MARKER));
    assert_string_equal(got[0].sender, m1.sender);
    assert_string_equal(got[0].channel, "case-42");
    assert_string_equal(got[1].channel, "");
    assert_int_equal(got[2].sender_seq, 40);
    assert_int_equal(got[2].created_at_ms, m4.created_at_ms);
    assert_int_equal(got[2].received_at_ms, m4.received_at_ms);
    assert_memory_equal(got[2].message_id, m4.message_id, LIA_MESSAGE_ID_BYTES);
    lia_nstore_msgs_free(got, n);
    assert_null(got[0].payload);
    assert_int_equal(lia_nstore_inbox_list(s, 0, "case-42", 8, got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[1].delivery_seq, 4);
    lia_nstore_msgs_free(got, n);
    assert_int_equal(lia_nstore_inbox_list(s, 1, "", 8, got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].delivery_seq, 2);
    lia_nstore_msgs_free(got, n);
    assert_int_equal(lia_nstore_inbox_list(s, 2, NULL, 1, got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].delivery_seq, 4);
    lia_nstore_msgs_free(got, n);
    lia_nstore_close(&s);

    /* Another storage key cannot read the payloads. */
    {
        lia_symkey_t *k2 = new_key();
        assert_int_equal(lia_nstore_open(path, k2, &s), 0);
        assert_int_equal(lia_nstore_inbox_list(s, 0, NULL, 8, got, &n), LIA_ERR_DECRYPT);
        assert_int_equal(n, 0);
        lia_nstore_close(&s);
        lia_symkey_destroy(&k2);
    }
    lia_symkey_destroy(&key);
}

/* The inbox row stores message_id, nonce (24) and ciphertext back to back: find the message id
 * in the closed file and flip one byte of the ciphertext (or of another bound field). */
static void test_nstore_inbox_tamper(void **state)
{
    const char *path = store_path("nstore-tamper");
    lia_symkey_t *key = new_key();
    lia_nstore_msg m = msg(1, "case-7", "a payload long enough to flip a byte in"), got[2];
    lia_nstore_t *s;
    uint8_t *buf;
    size_t len, at = 0, n;
    (void)state;

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_inbox_add(s, &m), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    lia_nstore_close(&s);

    assert_true(file_contains(path, m.message_id, LIA_MESSAGE_ID_BYTES, &at));
    buf = tu_read_file(path, &len);
    assert_true(at + LIA_MESSAGE_ID_BYTES + LIA_NONCE_BYTES + 10 < len);
    buf[at + LIA_MESSAGE_ID_BYTES + LIA_NONCE_BYTES + 10] ^= 0x01;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_inbox_list(s, 0, NULL, 2, got, &n), LIA_ERR_DECRYPT);
    assert_int_equal(n, 0);
    lia_nstore_close(&s);

    /* Restore the ciphertext, alter the message id instead (bound as associated data). */
    buf[at + LIA_MESSAGE_ID_BYTES + LIA_NONCE_BYTES + 10] ^= 0x01;
    buf[at] ^= 0x80;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_inbox_list(s, 0, NULL, 2, got, &n), LIA_ERR_DECRYPT);
    lia_nstore_close(&s);

    buf[at] ^= 0x80;
    tu_write_file(path, buf, len, 0600);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_inbox_list(s, 0, NULL, 2, got, &n), 0);
    assert_int_equal(n, 1);
    lia_nstore_msgs_free(got, n);
    lia_nstore_close(&s);
    free(buf);
    lia_symkey_destroy(&key);
}

/* Sender-stream positions: cached in the group, durable only after commit, restored on reopen;
 * lia_bstore_has knows every stored message id. */
static void test_bstore_streams(void **state)
{
    const char *path = store_path("bstore-streams");
    const char *a[] = {"node-a"};
    uint8_t s1[LIA_STREAM_ID_BYTES] = {1}, s2[LIA_STREAM_ID_BYTES] = {2}, id[LIA_MESSAGE_ID_BYTES];
    lia_bstore_t *s;
    uint64_t last;
    int found;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_stream_last(s, s1, &last), 0);
    assert_int_equal(last, 0);
    assert_int_equal(lia_bstore_stream_set(s, s1, 1), LIA_ERR_INVALID); /* outside a group */
    assert_int_equal(lia_bstore_begin(s), 0);
    append(s, 1, a, 1);
    assert_int_equal(lia_bstore_stream_set(s, s1, 1), 0);
    assert_int_equal(lia_bstore_stream_set(s, s1, 2), 0);
    assert_int_equal(lia_bstore_stream_set(s, s2, 9), 0);
    assert_int_equal(lia_bstore_stream_last(s, s1, &last), 0);
    assert_int_equal(last, 2);
    assert_int_equal(lia_bstore_commit(s), 0);
    mid(1, id);
    assert_int_equal(lia_bstore_has(s, id, &found), 0);
    assert_int_equal(found, 1);
    mid(2, id);
    assert_int_equal(lia_bstore_has(s, id, &found), 0);
    assert_int_equal(found, 0);
    /* A group that is not committed does not move the durable position. */
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_stream_set(s, s1, 3), 0);
    lia_bstore_close(&s);
    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_stream_last(s, s1, &last), 0);
    assert_int_equal(last, 2);
    assert_int_equal(lia_bstore_stream_last(s, s2, &last), 0);
    assert_int_equal(last, 9);
    lia_bstore_close(&s);
}

static void test_nstore_state(void **state)
{
    const char *path = store_path("nstore-state");
    lia_symkey_t *key = new_key(), *k2 = new_key();
    static uint8_t big[LIA_NSTORE_STATE_MAX + 1];
    lia_nstore_t *s;
    uint8_t *v;
    size_t len;
    char longkey[LIA_NSTORE_STATE_KEY_MAX + 2];
    (void)state;

    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_state_put(s, "seq", (const uint8_t *)"1", 1), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_state_get(s, "seq", &v, &len), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_state_put(s, "seq", (const uint8_t *)"first", 5), 0);
    assert_int_equal(lia_nstore_state_put(s, "seq", (const uint8_t *)"STATE-SECRET", 12), 0);
    assert_int_equal(lia_nstore_state_put(s, "empty", NULL, 0), 0);
    assert_int_equal(lia_nstore_state_put(s, "big", big, sizeof big), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_nstore_state_put(s, "max", big, sizeof big - 1), 0);
    assert_int_equal(lia_nstore_state_put(s, "", big, 1), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_state_put(s, longkey, big, 1), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_commit(s), 0);
    lia_nstore_close(&s);
    assert_false(file_contains(path, "STATE-SECRET", 12, NULL));

    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(lia_nstore_state_get(s, "seq", &v, &len), 0);
    assert_int_equal(len, 12);
    assert_memory_equal(v, "STATE-SECRET", 12);
    free(v);
    assert_int_equal(lia_nstore_state_get(s, "empty", &v, &len), 0);
    assert_int_equal(len, 0);
    assert_non_null(v);
    free(v);
    assert_int_equal(lia_nstore_state_get(s, "max", &v, &len), 0);
    assert_int_equal(len, LIA_NSTORE_STATE_MAX);
    free(v);
    lia_nstore_close(&s);
    assert_int_equal(lia_nstore_open(path, k2, &s), 0);
    assert_int_equal(lia_nstore_state_get(s, "seq", &v, &len), LIA_ERR_DECRYPT);
    assert_null(v);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
    lia_symkey_destroy(&k2);
}

/* Listing state entries by prefix returns exactly those keys, decrypted, in key order. */
static void test_nstore_state_list(void **state)
{
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    lia_nstore_kv *kv;
    size_t n;
    (void)state;

    assert_int_equal(lia_nstore_open(store_path("nstore-list"), key, &s), 0);
    assert_int_equal(lia_nstore_begin(s), 0);
    assert_int_equal(lia_nstore_state_put(s, "rs:b", (const uint8_t *)"2", 1), 0);
    assert_int_equal(lia_nstore_state_put(s, "rs:a", (const uint8_t *)"1", 1), 0);
    assert_int_equal(lia_nstore_state_put(s, "rt:x", (const uint8_t *)"3", 1), 0);
    assert_int_equal(lia_nstore_state_put(s, "r", (const uint8_t *)"4", 1), 0);
    assert_int_equal(lia_nstore_commit(s), 0);
    assert_int_equal(lia_nstore_state_list(s, "rs:", &kv, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(kv[0].key, "rs:a");
    assert_int_equal(kv[0].len, 1);
    assert_memory_equal(kv[0].val, "1", 1);
    assert_string_equal(kv[1].key, "rs:b");
    lia_nstore_kv_free(kv, n);
    assert_int_equal(lia_nstore_state_list(s, "zz:", &kv, &n), 0);
    assert_int_equal(n, 0);
    lia_nstore_kv_free(kv, n);
    lia_nstore_close(&s);
    lia_symkey_destroy(&key);
}

/* Broker state: put within a group only, bounded, durable across a reopen, listed by prefix. */
static void test_bstore_state(void **state)
{
    const char *path = store_path("bstore-state");
    static uint8_t big[LIA_BSTORE_STATE_MAX + 1];
    lia_bstore_t *s;
    lia_nstore_kv *kv;
    size_t n;
    (void)state;

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:a:1", (const uint8_t *)"x", 1), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_begin(s), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:b:1", (const uint8_t *)"b1", 2), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:a:2", (const uint8_t *)"a2", 2), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:a:1", (const uint8_t *)"old", 3), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:a:1", (const uint8_t *)"a1", 2), 0);
    assert_int_equal(lia_bstore_state_put(s, "md:z", (const uint8_t *)"z", 1), 0);
    assert_int_equal(lia_bstore_state_put(s, "mc:empty", big, 0), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_state_put(s, "", big, 1), LIA_ERR_INVALID);
    assert_int_equal(lia_bstore_state_put(s, "mc:big", big, sizeof big), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_bstore_state_put(s, "mc:max", big, sizeof big - 1), 0);
    assert_int_equal(lia_bstore_commit(s), 0);
    lia_bstore_close(&s);

    assert_int_equal(lia_bstore_open(path, &s), 0);
    assert_int_equal(lia_bstore_state_list(s, "mc:", &kv, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(kv[0].key, "mc:a:1");
    assert_int_equal(kv[0].len, 2);
    assert_memory_equal(kv[0].val, "a1", 2);
    assert_string_equal(kv[1].key, "mc:a:2");
    assert_string_equal(kv[2].key, "mc:b:1");
    assert_string_equal(kv[3].key, "mc:max");
    assert_int_equal(kv[3].len, sizeof big - 1);
    lia_nstore_kv_free(kv, n);
    assert_int_equal(lia_bstore_state_list(s, "zz:", &kv, &n), 0);
    assert_int_equal(n, 0);
    lia_nstore_kv_free(kv, n);
    assert_int_equal(lia_bstore_state_list(s, "", &kv, &n), LIA_ERR_INVALID);
    lia_bstore_close(&s);
}

static void test_nstore_file_checks(void **state)
{
    const char *path = store_path("nstore-file");
    lia_symkey_t *key = new_key();
    lia_nstore_t *s;
    lia_bstore_t *b;
    struct stat st;
    (void)state;

    assert_int_equal(lia_nstore_open(path, NULL, &s), LIA_ERR_INVALID);
    assert_int_equal(lia_nstore_open(path, key, &s), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    lia_nstore_close(&s);
    assert_int_equal(lia_bstore_open(path, &b), LIA_ERR_WRONG_KIND);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(lia_nstore_open(path, key, &s), LIA_ERR_PERMISSION);
    lia_symkey_destroy(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bstore_round_trip),
        cmocka_unit_test(test_bstore_contiguous),
        cmocka_unit_test(test_bstore_duplicates),
        cmocka_unit_test(test_bstore_duplicate_after_gc),
        cmocka_unit_test(test_bstore_cursor_monotonic),
        cmocka_unit_test(test_bstore_reopen),
        cmocka_unit_test(test_bstore_crash),
        cmocka_unit_test(test_bstore_file_checks),
        cmocka_unit_test(test_bstore_version),
        cmocka_unit_test(test_bstore_batches),
        cmocka_unit_test(test_bstore_background_checkpoint),
        cmocka_unit_test(test_bstore_migrate_v1),
        cmocka_unit_test(test_bstore_migrate_v2),
        cmocka_unit_test(test_bstore_prune),
        cmocka_unit_test(test_bstore_bounds),
        cmocka_unit_test(test_bstore_failed_state),
        cmocka_unit_test(test_nstore_outbox),
        cmocka_unit_test(test_nstore_commit_reaches_wal),
        cmocka_unit_test(test_nstore_big_group_survives),
        cmocka_unit_test(test_nstore_commits_across_buffer_edge),
        cmocka_unit_test(test_nstore_outbox_batches),
        cmocka_unit_test(test_nstore_migrate_v1),
        cmocka_unit_test(test_nstore_deferred_sync),
        cmocka_unit_test(test_nstore_failed_group),
        cmocka_unit_test(test_nstore_inbox),
        cmocka_unit_test(test_nstore_inbox_tamper),
        cmocka_unit_test(test_nstore_state),
        cmocka_unit_test(test_nstore_state_list),
        cmocka_unit_test(test_bstore_streams),
        cmocka_unit_test(test_bstore_state),
        cmocka_unit_test(test_nstore_file_checks),
    };
    if (lia_vault_init() != 0)
        return 1;
    lia_log_set_level(LIA_LOG_WARNING);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
