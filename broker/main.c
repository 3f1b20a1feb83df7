/* liaison-broker: options, configuration, then the loop in broker.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "broker.h"
#include "daemon.h"
#include "log.h"
#include "vault.h"

static void usage(FILE *f)
{
    fputs("usage: liaison-broker [-n] -c FILE\n"
          "  -c FILE  configuration file (see docs/operator-guide.md)\n"
          "  -n       check the configuration, print what was understood, and exit\n",
          f);
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    int check_only = 0, c, status;
    broker_t *b;

    lia_log_set_ident("liaison-broker");
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
    if ((status = broker_load(conf, &b)) != EX_OK)
        return status;
    if (check_only) {
        broker_print(b, stdout);
        broker_destroy(&b);
        return EX_OK;
    }
    if (lia_daemon_reserve_memory(broker_memory_reserve(b)) != 0)
        log_warn("could not reserve memory-reserve bytes of heap; running without");
    status = broker_run(b);
    broker_destroy(&b);
    return status;
}
