/* liaison-envelope: command-line parsing only; the work is in envtool.c. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "envtool.h"
#include "error.h"
#include "log.h"
#include "vault.h"

#define MAX_FILES 256

static const char usage_text[] =
    "usage: liaison-envelope <command> [options]\n"
    "\n"
    "commands:\n"
    "  seal     seal a payload into an envelope\n"
    "  open     verify and decrypt an envelope\n"
    "  inspect  show what the broker sees of an envelope (nothing is verified)\n"
    "\n"
    "liaison-envelope seal --key node.key --authority authority.pub --to CERT [--to CERT...]\n"
    "                      [--channel NAME] [--payload FILE | --case REF --officer NAME]\n"
    "                      --out FILE\n"
    "liaison-envelope open --key node.key --authority authority.pub --cert CERT [--cert...]\n"
    "                      [--crl FILE] [--members CHANNEL=node,node] [--json] FILE\n"
    "liaison-envelope inspect [--json] FILE\n";

static int usage(FILE *f, int status)
{
    fputs(usage_text, f);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},     {"authority", required_argument, NULL, 'a'},
        {"to", required_argument, NULL, 't'},      {"cert", required_argument, NULL, 'c'},
        {"channel", required_argument, NULL, 'C'}, {"payload", required_argument, NULL, 'p'},
        {"case", required_argument, NULL, 'r'},    {"officer", required_argument, NULL, 'o'},
        {"out", required_argument, NULL, 'O'},     {"crl", required_argument, NULL, 'l'},
        {"members", required_argument, NULL, 'm'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *files[MAX_FILES];
    struct envtool_seal s = {0};
    struct envtool_open o = {0};
    const char *cmd;
    size_t nfiles = 0;
    int c, json = 0;

    lia_log_set_ident("liaison-envelope");
    if (argc < 2)
        return usage(stderr, EX_USAGE);
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
        return usage(stdout, EX_OK);
    s.case_ref = "2026-0042";
    s.officer = "duty officer";
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            s.key_path = o.key_path = optarg;
            break;
        case 'a':
            s.authority_path = o.authority_path = optarg;
            break;
        case 't':
        case 'c':
            if (nfiles == MAX_FILES)
                return fprintf(stderr, "liaison-envelope: too many certificates\n"), EX_USAGE;
            files[nfiles++] = optarg;
            break;
        case 'C':
            s.channel = optarg;
            break;
        case 'p':
            s.payload_path = optarg;
            break;
        case 'r':
            s.case_ref = optarg;
            break;
        case 'o':
            s.officer = optarg;
            break;
        case 'O':
            s.out_path = optarg;
            break;
        case 'l':
            o.crl_path = optarg;
            break;
        case 'm':
            o.members = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            return usage(stdout, EX_OK);
        default:
            return usage(stderr, EX_USAGE);
        }
    }
    if (lia_vault_init() != 0)
        fatal(EX_SOFTWARE, "libsodium failed to initialise");
    if (strcmp(cmd, "seal") == 0) {
        if (!s.key_path || !s.authority_path || nfiles == 0 || !s.out_path || optind != argc) {
            fprintf(stderr, "liaison-envelope seal: --key, --authority, --to and --out are "
                            "required\n");
            return EX_USAGE;
        }
        s.to_certs = files;
        s.n_to = nfiles;
        return envtool_seal(&s);
    }
    if (strcmp(cmd, "open") == 0) {
        if (!o.key_path || !o.authority_path || optind != argc - 1) {
            fprintf(stderr, "liaison-envelope open: --key, --authority and one FILE are "
                            "required\n");
            return EX_USAGE;
        }
        o.certs = files;
        o.n_certs = nfiles;
        o.in_path = argv[optind];
        o.json = json;
        return envtool_open(&o);
    }
    if (strcmp(cmd, "inspect") == 0) {
        if (optind != argc - 1)
            return usage(stderr, EX_USAGE);
        return envtool_inspect(argv[optind], json);
    }
    fprintf(stderr, "liaison-envelope: unknown command '%s'\n", cmd);
    return usage(stderr, EX_USAGE);
}
