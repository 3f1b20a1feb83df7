/* liaison-node: options, configuration, then the loop in node.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "node.h"
#include "vault.h"

static void usage(FILE *f)
{
    fputs("usage: liaison-node [-n] -c FILE\n"
          "  -c FILE  configuration file (see docs/operator-guide.md)\n"
          "  -n       check the configuration, print what was understood, and exit\n",
          f);
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    int check_only = 0, c, status;
    node_t *n;

    lia_log_set_ident("liaison-node");
    while ((c = getopt(argc, argv, "c:nh")) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'n':
            check_only = 1;
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (!conf || optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }
    if (lia_vault_init() != 0)
        fatal(EX_SOFTWARE, "libsodium failed to initialise");
    if (lia_daemon_tune_memory() != 0)
        log_warn("could not tune the memory allocator; running with its defaults");
    if ((status = node_load(conf, &n)) != EX_OK)
        return status;
    if (check_only) {
        node_print(n, stdout);
        node_destroy(&n);
        return EX_OK;
    }
    if (lia_daemon_reserve_memory(node_memory_reserve(n)) != 0)
        log_warn("could not reserve memory-reserve bytes of heap; running without");
    status = node_run(n);
    node_destroy(&n);
    return status;
}
