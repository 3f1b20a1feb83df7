/*
 * liaison-envelope: seal, open and inspect single envelopes from files. A diagnostic and
 * demonstration tool for operators and implementers; the node daemon does the same work
 * continuously.
 */
#ifndef LIA_ENVTOOL_H
#define LIA_ENVTOOL_H

#include <stddef.h>

struct envtool_seal {
    const char *key_path;       /* sender's node.key */
    const char *authority_path; /* authority.pub */
    const char **to_certs;      /* certificates of the nodes the key is handed to */
    size_t n_to;
    const char *channel;        /* NULL: direct message to the --to nodes */
    const char *case_ref;
    const char *officer;
    const char *payload_path;   /* NULL: an example case alert */
    const char *out_path;
};

struct envtool_open {
    const char *key_path;
    const char *authority_path;
    const char **certs; /* certificates of possible senders */
    size_t n_certs;
    const char *crl_path;
    const char *members; /* "channel=node,node,..." or NULL */
    const char *in_path;
    int json;
};

/* Each returns a sysexits status after printing what happened (errors to stderr). */
int envtool_seal(const struct envtool_seal *a);
int envtool_open(const struct envtool_open *a);
int envtool_inspect(const char *path, int json);

#endif
