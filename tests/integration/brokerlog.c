/*
 * brokerlog: test tool that reads the broker's durable log and writes the envelopes queued for
 * one node, as the broker holds them, to files: what a compromised broker could hand that
 * node. The revocation test uses it to check that a revoked node's queue holds nothing it can
 * open. Test code; run it while the broker is stopped (it opens the log itself).
 *
 *   brokerlog --store broker.db --node NODE_ID --out DIR [--after SEQ]
 *
 * writes DIR/SEQ.env for every delivery after SEQ (default 0) still queued for NODE_ID (at
 * most 1,000) and prints one line "SEQ PATH" per file. Exit 0, 1 on errors, 2 on usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "file.h"
#include "store.h"

#define FETCH 1000

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"node", required_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"after", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    const char *store = NULL, *node = NULL, *out = NULL;
    unsigned long long after = 0;
    lia_bstore_t *s = NULL;
    lia_bstore_item *items = NULL;
    size_t got = 0;
    int c, rc, status = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            store = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'a':
            after = strtoull(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!store || !node || !out) {
        fprintf(stderr, "usage: brokerlog --store FILE --node ID --out DIR [--after SEQ]\n");
        return 2;
    }
    if (!(items = calloc(FETCH, sizeof *items)))
        goto done;
    if ((rc = lia_bstore_open(store, &s)) != 0 ||
        (rc = lia_bstore_fetch(s, node, after, FETCH, items, &got)) != 0) {
        fprintf(stderr, "brokerlog: %s: %s\n", store, lia_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < got; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%llu.env", out,
                             (unsigned long long)items[i].seq) >= sizeof path ||
            (rc = lia_file_write_atomic(path, items[i].data, items[i].len, 0644,
                                        LIA_FILE_REPLACE)) != 0) {
            fprintf(stderr, "brokerlog: cannot write %s\n", path);
            goto done;
        }
        printf("%llu %s\n", (unsigned long long)items[i].seq, path);
    }
    status = 0;
done:
    if (items)
        lia_bstore_items_free(items, got);
    free(items);
    lia_bstore_close(&s);
    return status;
}
