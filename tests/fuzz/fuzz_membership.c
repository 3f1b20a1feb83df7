/*
 * libFuzzer target: channel membership (lib/membership.c) on arbitrary bytes.
 *
 * The identities (authority, three contact points, a hub) are derived from fixed seeds, so the
 * committed seeds (tests/fuzz/corpus/membership/) carry signatures that verify here and the
 * fuzzer reaches the chain rules, not only the decoders. For each input, a fresh registry
 * holding a fixed Create of "case:fuzz" (fr-ncp owner; de-ncp, fr-ncp members):
 *   1. applies the input as one MembershipChange;
 *   2. imports it as a MembershipChain;
 *   3. checks invariants: members strictly ascending, owner a member, epoch >= 1, and a channel's
 *      export imports into a fresh registry with the same serial, owner and members.
 * Must never crash, leak or assert.
 *
 * Regenerating the seeds (after a format change):
 *   LIA_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/membership build/fuzz/tests/fuzz_membership -runs=0
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cert.h"
#include "membership.h"
#include "trust.h"
#include "vault.h"

#include "liaison/v1/identity.pb-c.h"

#define NOW_MS UINT64_C(1800000000000)
#define T0     UINT64_C(1790000000000)
#define CH     "case:fuzz"

enum { FR, DE, IT, HUB, NODES };
static const char *const names[NODES] = {"fr-ncp", "de-ncp", "it-ncp", "europol-hub"};

static lia_trust_t *trust;
static lia_identity_t *id[NODES];
static uint8_t *prefix; /* the Create every input starts from */
static size_t prefix_len;

/* An identity from a fixed seed, through a plain SecretFile (the vault's only loader). */
static lia_identity_t *fixed_identity(lia_secret_kind kind, const char *name, uint8_t tag)
{
    Liaison__V1__SecretBundle b = LIAISON__V1__SECRET_BUNDLE__INIT;
    Liaison__V1__SecretFile sf = LIAISON__V1__SECRET_FILE__INIT;
    uint8_t seed[32], pk[32], sk[64], enc[32], tr[32], bundle[512], file[1024];
    char path[] = "/tmp/fuzz_membership_XXXXXX";
    lia_identity_t *out = NULL;
    size_t bl, fl;
    int fd;

    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(tag * 31 + i);
        enc[i] = (uint8_t)(tag * 37 + i + 1);
        tr[i] = (uint8_t)(tag * 41 + i + 2);
    }
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
        abort();
    b.kind = (Liaison__V1__SecretKind)kind;
    b.sign_sk.data = sk;
    b.sign_sk.len = 64;
    if (kind == LIA_SECRET_NODE) {
        b.enc_sk.data = enc;
        b.enc_sk.len = 32;
        b.transport_sk.data = tr;
        b.transport_sk.len = 32;
    }
    b.name = (char *)name;
    bl = liaison__v1__secret_bundle__get_packed_size(&b);
    if (bl > sizeof bundle)
        abort();
    liaison__v1__secret_bundle__pack(&b, bundle);
    sf.version = 1;
    sf.kind = (Liaison__V1__SecretKind)kind;
    sf.bundle.data = bundle;
    sf.bundle.len = bl;
    fl = liaison__v1__secret_file__get_packed_size(&sf);
    if (fl > sizeof file)
        abort();
    liaison__v1__secret_file__pack(&sf, file);
    fd = mkstemp(path); /* mode 0600 */
    if (fd < 0 || write(fd, file, fl) != (ssize_t)fl || close(fd) != 0)
        abort();
    if (lia_identity_load(path, kind, NULL, 0, &out) != 0)
        abort();
    unlink(path);
    sodium_memzero(sk, sizeof sk);
    return out;
}

static void enroll(lia_identity_t *auth, int i, lia_role role)
{
    uint8_t *req, *cert;
    size_t rl, cl;
    lia_cert_info r;

    id[i] = fixed_identity(LIA_SECRET_NODE, names[i], (uint8_t)(i + 2));
    if (lia_cert_request_create(id[i], role, "FR", &req, &rl) != 0 ||
        lia_cert_request_parse(req, rl, &r) != 0 ||
        lia_cert_issue(auth, &r, 1, 4000000000u, NULL, &cert, &cl) != 0 ||
        lia_trust_add_cert(trust, cert, cl, NULL) != 0)
        abort();
    free(req);
    free(cert);
}

static void put(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        abort();
}

/* Writes valid changes and chains continuing the fixed Create. */
static void write_seeds(const char *dir)
{
    static const char *const m[] = {"de-ncp", "it-ncp"};
    lia_membership_t *r;
    uint8_t *b;
    size_t l;

    if (lia_membership_new(trust, &r) != 0 || lia_membership_apply(r, prefix, prefix_len, NOW_MS))
        abort();
    put(dir, "create-case-fuzz", prefix, prefix_len);
#define SEED(name, call)                                                                           \
    do {                                                                                           \
        if ((call) != 0)                                                                           \
            abort();                                                                               \
        put(dir, name, b, l);                                                                      \
        free(b);                                                                                   \
    } while (0)
    SEED("add-it", lia_membership_add(r, id[FR], "fr-ncp", CH, "it-ncp", T0 + 1000, &b, &l));
    SEED("add-hub", lia_membership_add(r, id[FR], "fr-ncp", CH, "europol-hub", T0 + 1000, &b, &l));
    SEED("remove-de", lia_membership_remove(r, id[FR], "fr-ncp", CH, "de-ncp", T0 + 1000, &b, &l));
    SEED("transfer-de",
         lia_membership_transfer(r, id[FR], "fr-ncp", CH, "de-ncp", T0 + 1000, &b, &l));
    SEED("create-other",
         lia_membership_create(r, id[DE], "de-ncp", "case:other", m, 2, 1, "route B", T0, &b, &l));
    /* A longer history, exported as a chain. */
    if (lia_membership_add(r, id[FR], "fr-ncp", CH, "it-ncp", T0 + 1000, &b, &l) != 0 ||
        lia_membership_apply(r, b, l, NOW_MS) != 0)
        abort();
    free(b);
    if (lia_membership_remove(r, id[FR], "fr-ncp", CH, "de-ncp", T0 + 2000, &b, &l) != 0 ||
        lia_membership_apply(r, b, l, NOW_MS) != 0)
        abort();
    free(b);
    if (lia_membership_transfer(r, id[FR], "fr-ncp", CH, "it-ncp", T0 + 3000, &b, &l) != 0 ||
        lia_membership_apply(r, b, l, NOW_MS) != 0)
        abort();
    free(b);
    SEED("add-after-transfer",
         lia_membership_add(r, id[IT], "it-ncp", CH, "de-ncp", T0 + 4000, &b, &l));
    SEED("chain-4", lia_membership_export(r, CH, &b, &l));
#undef SEED
    lia_membership_destroy(&r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const m[] = {"de-ncp", "fr-ncp"};
    lia_identity_t *auth;
    lia_authority_info ai;
    lia_membership_t *r;
    uint8_t *ab;
    size_t al;
    const char *dir = getenv("LIA_FUZZ_WRITE_SEEDS");

    (void)argc;
    (void)argv;
    if (lia_vault_init() != 0)
        abort();
    auth = fixed_identity(LIA_SECRET_AUTHORITY, "Fuzz authority", 1);
    if (lia_authority_create(auth, 1, &ab, &al) != 0 || lia_authority_parse(ab, al, &ai) != 0 ||
        lia_trust_new(&ai, &trust) != 0)
        abort();
    free(ab);
    enroll(auth, FR, LIA_ROLE_CONTACT_POINT);
    enroll(auth, DE, LIA_ROLE_CONTACT_POINT);
    enroll(auth, IT, LIA_ROLE_CONTACT_POINT);
    enroll(auth, HUB, LIA_ROLE_HUB);
    lia_identity_destroy(&auth);
    if (lia_membership_new(trust, &r) != 0 ||
        lia_membership_create(r, id[FR], "fr-ncp", CH, m, 2, 0, "fuzz", T0, &prefix, &prefix_len) !=
            0)
        abort();
    lia_membership_destroy(&r);
    if (dir)
        write_seeds(dir);
    return 0;
}

/* Invariants of any channel a registry holds. */
static void check_channel(const lia_membership_t *r, const char *channel)
{
    size_t n = 0, n2 = 0;
    const char *const *mem = lia_membership_members(r, channel, &n);
    const char *owner = lia_membership_owner(r, channel);
    lia_membership_t *copy = NULL;
    char name[LIA_CHANNEL_MAX + 1];
    uint8_t *buf = NULL;
    size_t len = 0;

    if (!mem || !owner || n == 0 || !lia_membership_is_member((void *)r, channel, owner) ||
        lia_membership_epoch(r, channel) == 0 || lia_membership_serial(r, channel) == 0)
        abort();
    for (size_t i = 1; i < n; i++)
        if (strcmp(mem[i - 1], mem[i]) >= 0)
            abort();
    /* What was accepted exports and re-imports to the same state. */
    if (lia_membership_export(r, channel, &buf, &len) != 0 || lia_membership_new(trust, &copy) ||
        lia_membership_import(copy, buf, len, NOW_MS, name) != 0 || strcmp(name, channel) != 0 ||
        lia_membership_serial(copy, channel) != lia_membership_serial(r, channel) ||
        strcmp(lia_membership_owner(copy, channel), owner) != 0 ||
        !lia_membership_members(copy, channel, &n2) || n2 != n)
        abort();
    free(buf);
    lia_membership_destroy(&copy);
}

static int count_events(void *arg, const lia_membership_event *ev)
{
    (void)ev;
    ++*(size_t *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_membership_t *r = NULL;
    char name[LIA_CHANNEL_MAX + 1];
    size_t events = 0;

    if (lia_membership_new(trust, &r) != 0 || lia_membership_apply(r, prefix, prefix_len, NOW_MS))
        abort();
    (void)lia_membership_apply(r, data, size, NOW_MS);
    if (lia_membership_import(r, data, size, NOW_MS, name) == 0 && name[0])
        check_channel(r, name);
    check_channel(r, CH);
    if (lia_membership_history(r, CH, count_events, &events) != 0 ||
        events != lia_membership_serial(r, CH))
        abort();
    lia_membership_destroy(&r);
    return 0;
}
