/*
 * libFuzzer target: lia_opener_open on arbitrary bytes. The opener trusts a fixed set of
 * certificates made at start-up; inputs exercise strict decoding, the certificate and
 * entitlement checks, proof parsing and refusal paths. Must never crash, leak or assert.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "envelope.h"
#include "trust.h"
#include "vault.h"

static lia_opener_t *opener;
static lia_trust_t *trust;
static lia_identity_t *me;

static int everyone(void *arg, const char *channel, const char *node)
{
    (void)arg;
    (void)channel;
    (void)node;
    return 1;
}

static void add_node(lia_identity_t *auth, const char *id, lia_identity_t **keep)
{
    lia_identity_t *n;
    uint8_t *req, *cert;
    size_t rl, cl;
    lia_cert_info r;
    if (lia_identity_generate(LIA_SECRET_NODE, id, &n) != 0 ||
        lia_cert_request_create(n, LIA_ROLE_CONTACT_POINT, "FR", &req, &rl) != 0 ||
        lia_cert_request_parse(req, rl, &r) != 0 ||
        lia_cert_issue(auth, &r, 1, UINT64_MAX / 2, NULL, &cert, &cl) != 0 ||
        lia_trust_add_cert(trust, cert, cl, NULL) != 0)
        abort();
    free(req);
    free(cert);
    if (keep)
        *keep = n;
    else
        lia_identity_destroy(&n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lia_identity_t *auth;
    lia_authority_info ai;
    uint8_t *ab;
    size_t al;
    (void)argc;
    (void)argv;
    if (lia_vault_init() != 0 || lia_identity_generate(LIA_SECRET_AUTHORITY, "Fuzz", &auth) != 0 ||
        lia_authority_create(auth, 1, &ab, &al) != 0 || lia_authority_parse(ab, al, &ai) != 0 ||
        lia_trust_new(&ai, &trust) != 0)
        abort();
    free(ab);
    add_node(auth, "fr-ncp", NULL);
    add_node(auth, "de-ncp", &me);
    if (lia_opener_new(trust, me, "de-ncp", &opener) != 0)
        abort();
    lia_opener_set_membership(opener, everyone, NULL);
    lia_identity_destroy(&auth);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_opened *m = NULL;
    if (lia_opener_open(opener, data, size, 1800000000000ull, &m) == 0)
        lia_opened_free(&m);
    return 0;
}
