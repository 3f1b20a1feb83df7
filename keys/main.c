/*
 * liaison-keys: the identity tool. Parses the command line and calls lib/keytool.c; every
 * error is printed to stderr and mapped to a sysexits(3) status through lia_err_exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "keytool.h"
#include "vault.h"

#define PROG "liaison-keys"

static const char usage_main[] =
    "usage: " PROG " COMMAND [OPTIONS]\n"
    "\n"
    "Identity tool of the liaison network: the authority's key, node keys, certificates and\n"
    "the revocation list.\n"
    "\n"
    "commands:\n"
    "  authority-init   create the network authority's key pair (keep it offline)\n"
    "  node-init        create a node's keys and certificate request\n"
    "  issue            certify a node's request with the authority key\n"
    "  verify           check a certificate against the authority (and revocation list)\n"
    "  revoke           add a certificate to the revocation list\n"
    "  show             print an authority.pub, request, certificate or revocation list\n"
    "  fingerprint      print only the fingerprint of such a file\n"
    "\n"
    "Run '" PROG " COMMAND --help' for the options of a command.\n";

static const char usage_authority_init[] =
    "usage: " PROG " authority-init --name NAME --dir DIR\n"
    "                        [--passphrase-file FILE | --no-passphrase]\n"
    "                        [--kdf interactive|moderate|sensitive]\n"
    "\n"
    "Creates DIR/authority.key (secret, mode 0600) and DIR/authority.pub (public, 0644) and\n"
    "prints the authority's fingerprint. Without a passphrase option the passphrase is asked\n"
    "twice on the terminal. --kdf sets the Argon2id cost (default sensitive).\n";

static const char usage_node_init[] =
    "usage: " PROG " node-init --id NODE_ID --role contact-point|hub|liaison|broker\n"
    "                   --country CC --dir DIR [--passphrase-file FILE] [--kdf STRENGTH]\n"
    "\n"
    "Creates DIR/node.key (secret, mode 0600; without passphrase by default so the daemon can\n"
    "start unattended) and DIR/node.req (the signed certificate request to send to the\n"
    "authority), and prints the node's fingerprint.\n";

static const char usage_issue[] =
    "usage: " PROG " issue --authority-dir DIR --request FILE --out FILE [--days N]\n"
    "               [--not-before UNIX] [--passphrase-file FILE]\n"
    "\n"
    "Verifies the request, prints what it certifies, and writes the certificate to --out.\n"
    "Validity: from --not-before (default now) for --days days (default 365).\n";

static const char usage_verify[] =
    "usage: " PROG " verify --authority FILE.pub --cert FILE [--crl FILE] [--at UNIX] [--json]\n"
    "\n"
    "Checks the certificate's signature, validity at --at (default now) and revocation.\n"
    "Exit status 0 if valid; otherwise the sysexits code of the failure (see the operator\n"
    "guide).\n";

static const char usage_revoke[] =
    "usage: " PROG " revoke --authority-dir DIR --cert FILE --crl FILE [--reason TEXT]\n"
    "                [--at UNIX] [--passphrase-file FILE]\n"
    "\n"
    "Adds the certificate to the revocation list FILE (created if absent), revoked as of --at\n"
    "(default now). Distribute the new list to every node.\n";

static const char usage_show[] =
    "usage: " PROG " show FILE [--authority FILE.pub] [--json]\n"
    "\n"
    "Prints an authority.pub, certificate request, certificate or revocation list. With\n"
    "--authority, certificates and lists are verified too.\n";

static const char usage_fingerprint[] = "usage: " PROG " fingerprint FILE [--json]\n"
                                        "\n"
                                        "Prints only the fingerprint of FILE.\n";

enum {
    OPT_HELP = 'h',
    OPT_NAME = 256,
    OPT_DIR,
    OPT_PASSFILE,
    OPT_NOPASS,
    OPT_KDF,
    OPT_ID,
    OPT_ROLE,
    OPT_COUNTRY,
    OPT_AUTHDIR,
    OPT_REQUEST,
    OPT_OUT,
    OPT_DAYS,
    OPT_NOTBEFORE,
    OPT_AUTHORITY,
    OPT_CERT,
    OPT_CRL,
    OPT_AT,
    OPT_REASON,
    OPT_JSON
};

static const struct option all_options[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"name", required_argument, NULL, OPT_NAME},
    {"dir", required_argument, NULL, OPT_DIR},
    {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
    {"no-passphrase", no_argument, NULL, OPT_NOPASS},
    {"kdf", required_argument, NULL, OPT_KDF},
    {"id", required_argument, NULL, OPT_ID},
    {"role", required_argument, NULL, OPT_ROLE},
    {"country", required_argument, NULL, OPT_COUNTRY},
    {"authority-dir", required_argument, NULL, OPT_AUTHDIR},
    {"request", required_argument, NULL, OPT_REQUEST},
    {"out", required_argument, NULL, OPT_OUT},
    {"days", required_argument, NULL, OPT_DAYS},
    {"not-before", required_argument, NULL, OPT_NOTBEFORE},
    {"authority", required_argument, NULL, OPT_AUTHORITY},
    {"cert", required_argument, NULL, OPT_CERT},
    {"crl", required_argument, NULL, OPT_CRL},
    {"at", required_argument, NULL, OPT_AT},
    {"reason", required_argument, NULL, OPT_REASON},
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0}};

struct opts {
    const char *name, *dir, *passfile, *kdf, *id, *role, *country, *authdir, *request, *out;
    const char *days, *not_before, *authority, *cert, *crl, *at, *reason;
    int no_pass, json;
    const char *file; /* positional argument of show / fingerprint */
};

static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return EX_USAGE;
}

/* Options a command accepts, as a string of OPT_ codes terminated by 0. */
static int accepts(const int *allowed, int opt)
{
    for (; *allowed; allowed++)
        if (*allowed == opt)
            return 1;
    return 0;
}

/*
 * Parses argv (after the command name) into o. Returns -1 to continue, or an exit status
 * (0 after --help).
 */
static int parse(int argc, char **argv, const int *allowed, int positional, const char *usage,
                 struct opts *o)
{
    int c;

    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", all_options, NULL)) != -1) {
        if (c == '?')
            return usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        if (c == ':')
            return usage_error(usage, "option '%s' needs a value", argv[optind - 1]);
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            return 0;
        }
        if (!accepts(allowed, c))
            return usage_error(usage, "option '%s' does not apply to this command",
                               argv[optind - 1]);
        switch (c) {
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_DIR:
            o->dir = optarg;
            break;
        case OPT_PASSFILE:
            o->passfile = optarg;
            break;
        case OPT_NOPASS:
            o->no_pass = 1;
            break;
        case OPT_KDF:
            o->kdf = optarg;
            break;
        case OPT_ID:
            o->id = optarg;
            break;
        case OPT_ROLE:
            o->role = optarg;
            break;
        case OPT_COUNTRY:
            o->country = optarg;
            break;
        case OPT_AUTHDIR:
            o->authdir = optarg;
            break;
        case OPT_REQUEST:
            o->request = optarg;
            break;
        case OPT_OUT:
            o->out = optarg;
            break;
        case OPT_DAYS:
            o->days = optarg;
            break;
        case OPT_NOTBEFORE:
            o->not_before = optarg;
            break;
        case OPT_AUTHORITY:
            o->authority = optarg;
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_CRL:
            o->crl = optarg;
            break;
        case OPT_AT:
            o->at = optarg;
            break;
        case OPT_REASON:
            o->reason = optarg;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        default:
            return usage_error(usage, "unexpected option '%s'", argv[optind - 1]);
        }
    }
    if (positional) {
        if (optind >= argc)
            return usage_error(usage, "%s", "missing FILE");
        o->file = argv[optind++];
    }
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return -1;
}

static int need(const char *value, const char *name, const char *usage)
{
    if (!value)
        return usage_error(usage, "missing required option %s", name);
    return 0;
}

/* Strict decimal parse of a non-negative integer. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int finish(int rc, const lia_kt_diag *d)
{
    if (rc == 0)
        return 0;
    fprintf(stderr, PROG ": %s\n", d->msg[0] ? d->msg : lia_strerror(rc));
    return lia_err_exit(rc);
}

static int cmd_authority_init(int argc, char **argv)
{
    static const int allowed[] = {OPT_NAME, OPT_DIR, OPT_PASSFILE, OPT_NOPASS, OPT_KDF, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    lia_kdf_strength kdf = LIA_KDF_SENSITIVE;
    char *pass = NULL;
    size_t plen = 0;
    int rc;

    if ((rc = parse(argc, argv, allowed, 0, usage_authority_init, &o)) >= 0)
        return rc;
    if (need(o.name, "--name", usage_authority_init) || need(o.dir, "--dir", usage_authority_init))
        return EX_USAGE;
    if (o.passfile && o.no_pass)
        return usage_error(usage_authority_init, "%s",
                           "--passphrase-file and --no-passphrase exclude each other");
    if (o.kdf && lia_kt_kdf_parse(o.kdf, &kdf) != 0)
        return usage_error(usage_authority_init, "unknown --kdf '%s'", o.kdf);
    rc = 0;
    if (o.passfile) {
        rc = lia_kt_passphrase_file(o.passfile, &pass, &plen, &d);
    } else if (!o.no_pass) {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, PROG ": stdin is not a terminal, so the passphrase for the "
                                 "authority key cannot be asked; give --passphrase-file FILE (or "
                                 "--no-passphrase, not recommended)\n");
            return EX_USAGE;
        }
        rc = lia_kt_passphrase_tty("New passphrase for the authority key: ", 1, &pass, &plen, &d);
    }
    if (rc == 0)
        rc =
            lia_kt_authority_init(o.dir, o.name, pass, plen, kdf, (uint64_t)time(NULL), stdout, &d);
    lia_kt_passphrase_free(&pass);
    return finish(rc, &d);
}

static int cmd_node_init(int argc, char **argv)
{
    static const int allowed[] = {OPT_ID, OPT_ROLE, OPT_COUNTRY, OPT_DIR, OPT_PASSFILE, OPT_KDF, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    lia_kdf_strength kdf = LIA_KDF_MODERATE;
    lia_role role;
    char *pass = NULL;
    size_t plen = 0;
    int rc = 0;

    if ((rc = parse(argc, argv, allowed, 0, usage_node_init, &o)) >= 0)
        return rc;
    if (need(o.id, "--id", usage_node_init) || need(o.role, "--role", usage_node_init) ||
        need(o.country, "--country", usage_node_init) || need(o.dir, "--dir", usage_node_init))
        return EX_USAGE;
    if (lia_role_parse(o.role, &role) != 0)
        return usage_error(usage_node_init,
                           "unknown --role '%s' (contact-point, hub, liaison or broker)", o.role);
    if (o.kdf && lia_kt_kdf_parse(o.kdf, &kdf) != 0)
        return usage_error(usage_node_init, "unknown --kdf '%s'", o.kdf);
    rc = 0;
    if (o.passfile)
        rc = lia_kt_passphrase_file(o.passfile, &pass, &plen, &d);
    if (rc == 0)
        rc = lia_kt_node_init(o.dir, o.id, role, o.country, pass, plen, kdf, stdout, &d);
    lia_kt_passphrase_free(&pass);
    return finish(rc, &d);
}

static int cmd_issue(int argc, char **argv)
{
    static const int allowed[] = {OPT_AUTHDIR,   OPT_REQUEST,  OPT_OUT, OPT_DAYS,
                                  OPT_NOTBEFORE, OPT_PASSFILE, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    lia_kt_unlock u;
    uint64_t days = LIA_KT_DEFAULT_DAYS, nb = (uint64_t)time(NULL);
    int rc;

    if ((rc = parse(argc, argv, allowed, 0, usage_issue, &o)) >= 0)
        return rc;
    if (need(o.authdir, "--authority-dir", usage_issue) ||
        need(o.request, "--request", usage_issue) || need(o.out, "--out", usage_issue))
        return EX_USAGE;
    if (o.days && (parse_u64(o.days, &days) != 0 || days == 0 || days > LIA_KT_MAX_DAYS))
        return usage_error(usage_issue, "--days '%s': give a number of days from 1 to 3650",
                           o.days);
    if (o.not_before && parse_u64(o.not_before, &nb) != 0)
        return usage_error(usage_issue, "--not-before '%s': give Unix seconds", o.not_before);
    u.passphrase_file = o.passfile;
    u.may_prompt = isatty(STDIN_FILENO);
    rc = lia_kt_issue(o.authdir, &u, o.request, o.out, (uint32_t)days, nb, stdout, &d);
    return finish(rc, &d);
}

static int cmd_verify(int argc, char **argv)
{
    static const int allowed[] = {OPT_AUTHORITY, OPT_CERT, OPT_CRL, OPT_AT, OPT_JSON, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    uint64_t at = (uint64_t)time(NULL);
    int rc;

    if ((rc = parse(argc, argv, allowed, 0, usage_verify, &o)) >= 0)
        return rc;
    if (need(o.authority, "--authority", usage_verify) || need(o.cert, "--cert", usage_verify))
        return EX_USAGE;
    if (o.at && parse_u64(o.at, &at) != 0)
        return usage_error(usage_verify, "--at '%s': give Unix seconds", o.at);
    rc = lia_kt_verify(o.authority, o.cert, o.crl, at, o.json, stdout, &d);
    return finish(rc, &d);
}

static int cmd_revoke(int argc, char **argv)
{
    static const int allowed[] = {OPT_AUTHDIR, OPT_CERT,     OPT_CRL, OPT_REASON,
                                  OPT_AT,      OPT_PASSFILE, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    lia_kt_unlock u;
    uint64_t now = (uint64_t)time(NULL), at = now;
    int rc;

    if ((rc = parse(argc, argv, allowed, 0, usage_revoke, &o)) >= 0)
        return rc;
    if (need(o.authdir, "--authority-dir", usage_revoke) || need(o.cert, "--cert", usage_revoke) ||
        need(o.crl, "--crl", usage_revoke))
        return EX_USAGE;
    if (o.at && parse_u64(o.at, &at) != 0)
        return usage_error(usage_revoke, "--at '%s': give Unix seconds", o.at);
    u.passphrase_file = o.passfile;
    u.may_prompt = isatty(STDIN_FILENO);
    rc = lia_kt_revoke(o.authdir, &u, o.cert, o.crl, o.reason, at, now, stdout, &d);
    return finish(rc, &d);
}

static int cmd_show(int argc, char **argv)
{
    static const int allowed[] = {OPT_AUTHORITY, OPT_JSON, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    int rc;

    if ((rc = parse(argc, argv, allowed, 1, usage_show, &o)) >= 0)
        return rc;
    return finish(lia_kt_show(o.file, o.authority, o.json, stdout, &d), &d);
}

static int cmd_fingerprint(int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, 0};
    struct opts o;
    lia_kt_diag d = {{0}};
    int rc;

    if ((rc = parse(argc, argv, allowed, 1, usage_fingerprint, &o)) >= 0)
        return rc;
    return finish(lia_kt_fingerprint(o.file, o.json, stdout, &d), &d);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"authority-init", cmd_authority_init},
                {"node-init", cmd_node_init},
                {"issue", cmd_issue},
                {"verify", cmd_verify},
                {"revoke", cmd_revoke},
                {"show", cmd_show},
                {"fingerprint", cmd_fingerprint}};
    int rc;

    if (argc < 2) {
        fputs(usage_main, stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (lia_vault_init() != 0) {
        fprintf(stderr, PROG ": cannot initialise libsodium\n");
        return EX_SOFTWARE;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            rc = cmds[i].fn(argc - 1, argv + 1);
            if (fflush(stdout) != 0 && rc == 0)
                rc = EX_IOERR;
            return rc;
        }
    }
    fprintf(stderr, PROG ": unknown command '%s'\n\n%s", argv[1], usage_main);
    return EX_USAGE;
}
