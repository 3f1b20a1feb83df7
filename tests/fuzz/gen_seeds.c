/*
 * Writes seed envelopes for the envelope and header fuzzers into the directory given:
 * a channel message with a key grant, a direct message, and members of a batch of 3.
 * Run by hand when the envelope format changes: gen_seeds tests/fuzz/corpus/envelope
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "envelope.h"
#include "vault.h"

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s\n", what);
    exit(1);
}

static void put(const char *dir, const char *name, const lia_buf *b)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
        die(path);
}

int main(int argc, char **argv)
{
    lia_identity_t *auth, *a, *b;
    lia_authority_info ai;
    lia_cert_info ca, cb;
    uint8_t *buf;
    size_t len;
    lia_symkey_t *k;
    lia_seal_item it[3];
    lia_buf out[3];
    const lia_cert_info *g[1];
    const char *rc[] = {"de-ncp", "fr-ncp"};

    if (argc != 2)
        die("usage: gen_seeds DIR");
    if (lia_vault_init() || lia_identity_generate(LIA_SECRET_AUTHORITY, "Seeds", &auth) ||
        lia_authority_create(auth, 1, &buf, &len) || lia_authority_parse(buf, len, &ai))
        die("authority");
    free(buf);
    lia_identity_t **ids[] = {&a, &b};
    lia_cert_info *cis[] = {&ca, &cb};
    const char *names[] = {"fr-ncp", "de-ncp"};
    for (int i = 0; i < 2; i++) {
        lia_cert_info r;
        uint8_t *req;
        size_t rl;
        if (lia_identity_generate(LIA_SECRET_NODE, names[i], ids[i]) ||
            lia_cert_request_create(*ids[i], LIA_ROLE_CONTACT_POINT, "FR", &req, &rl) ||
            lia_cert_request_parse(req, rl, &r) ||
            lia_cert_issue(auth, &r, 1, 4000000000u, NULL, &buf, &len) ||
            lia_cert_parse(buf, len, &ai, cis[i]))
            die("node");
        free(req);
        free(buf);
    }
    if (lia_symkey_generate(&k))
        die("key");
    g[0] = &cb;
    memset(it, 0, sizeof it);
    for (int i = 0; i < 3; i++) {
        it[i].dest.channel = "case:2026-0042";
        it[i].epoch = 1;
        it[i].seq = (uint64_t)i + 1;
        it[i].created_at_ms = 1790000000000ull;
        it[i].key = k;
        it[i].payload = (const uint8_t *)"seed payload";
        it[i].payload_len = 12;
    }
    it[0].grant = g;
    it[0].n_grant = 1;
    if (lia_envelope_seal_batch(a, "fr-ncp", it, 1, out))
        die("seal");
    put(argv[1], "channel-with-grant", &out[0]);
    free(out[0].data);
    it[0].dest.channel = NULL;
    it[0].dest.recipients = rc;
    it[0].dest.n_recipients = 2;
    it[0].expires_at_ms = 1790000600000ull;
    if (lia_envelope_seal_batch(a, "fr-ncp", it, 1, out))
        die("seal");
    put(argv[1], "direct-two-recipients", &out[0]);
    free(out[0].data);
    it[0].dest.channel = "case:2026-0042";
    it[0].dest.n_recipients = 0;
    it[0].expires_at_ms = 0;
    if (lia_envelope_seal_batch(a, "fr-ncp", it, 3, out))
        die("seal");
    put(argv[1], "batch3-0", &out[0]);
    put(argv[1], "batch3-1", &out[1]);
    put(argv[1], "batch3-2", &out[2]);
    for (int i = 0; i < 3; i++)
        free(out[i].data);
    lia_symkey_destroy(&k);
    lia_identity_destroy(&a);
    lia_identity_destroy(&b);
    lia_identity_destroy(&auth);
    return 0;
}
