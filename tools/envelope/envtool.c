/*
 * The work behind liaison-envelope (see envtool.h): files in, one envelope sealed or opened,
 * a clear account of what was verified or why it was refused.
 */
#define _POSIX_C_SOURCE 200809L
#include "envtool.h"
#include "pbdump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <sodium.h>

#include "cert.h"
#include "envelope.h"
#include "error.h"
#include "file.h"
#include "keyfiles.h"
#include "payload.h"
#include "trust.h"
#include "vault.h"

static int report(const char *what, int rc)
{
    fprintf(stderr, "liaison-envelope: %s: %s\n", what, lia_strerror(rc));
    return lia_err_exit(rc);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int by_node_id(const void *a, const void *b)
{
    const lia_cert_info *x = *(const lia_cert_info *const *)a;
    const lia_cert_info *y = *(const lia_cert_info *const *)b;
    return strcmp(x->node_id, y->node_id);
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

static void iso_time(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(out, "?");
}

int envtool_seal(const struct envtool_seal *a)
{
    lia_identity_t *me = NULL;
    lia_authority_info auth;
    lia_cert_info *certs = NULL;
    const lia_cert_info **grant = NULL;
    const char **rcpt = NULL;
    lia_symkey_t *key = NULL;
    uint8_t *payload = NULL;
    size_t payload_len = 0;
    lia_seal_item it;
    lia_buf out = {NULL, 0};
    Liaison__V1__Payload *check = NULL;
    int rc, status = EX_SOFTWARE;

    if ((rc = lia_identity_load(a->key_path, LIA_SECRET_NODE, NULL, 0, &me)) != 0) {
        status = report(a->key_path, rc);
        goto done;
    }
    if ((rc = lia_keyfiles_load_authority(a->authority_path, &auth)) != 0) {
        status = report(a->authority_path, rc);
        goto done;
    }
    certs = calloc(a->n_to, sizeof *certs);
    grant = calloc(a->n_to, sizeof *grant);
    rcpt = calloc(a->n_to, sizeof *rcpt);
    if (!certs || !grant || !rcpt) {
        status = report("seal", LIA_ERR_NOMEM);
        goto done;
    }
    for (size_t i = 0; i < a->n_to; i++) {
        if ((rc = lia_keyfiles_load_cert(a->to_certs[i], &auth, &certs[i])) != 0 ||
            (rc = lia_cert_check_time(&certs[i], now_ms() / 1000)) != 0) {
            status = report(a->to_certs[i], rc);
            goto done;
        }
        grant[i] = &certs[i];
    }
    qsort(grant, a->n_to, sizeof *grant, by_node_id);
    for (size_t i = 0; i < a->n_to; i++) {
        if (i > 0 && strcmp(grant[i - 1]->node_id, grant[i]->node_id) == 0) {
            fprintf(stderr, "liaison-envelope: %s named twice with --to\n", grant[i]->node_id);
            status = EX_USAGE;
            goto done;
        }
        rcpt[i] = grant[i]->node_id;
    }
    if (a->payload_path) {
        rc = lia_file_read(a->payload_path, LIA_PAYLOAD_MAX, 0, &payload, &payload_len);
        if (rc == 0)
            rc = lia_payload_decode(payload, payload_len, &check);
        if (rc != 0) {
            status = report(a->payload_path, rc);
            goto done;
        }
    } else if ((rc = lia_payload_example_case_alert(a->case_ref, a->officer, &payload,
                                                    &payload_len)) != 0) {
        status = report("example case alert", rc);
        goto done;
    }
    if ((rc = lia_symkey_generate(&key)) != 0) {
        status = report("key", rc);
        goto done;
    }
    memset(&it, 0, sizeof it);
    if (a->channel) {
        it.dest.channel = a->channel;
    } else {
        it.dest.recipients = rcpt;
        it.dest.n_recipients = a->n_to;
    }
    it.epoch = 1;
    it.seq = 1;
    it.created_at_ms = now_ms();
    it.key = key;
    it.grant = grant;
    it.n_grant = a->n_to;
    it.payload = payload;
    it.payload_len = payload_len;
    if ((rc = lia_envelope_seal_batch(me, lia_identity_name(me), &it, 1, &out)) != 0) {
        status = report("seal", rc);
        goto done;
    }
    if ((rc = lia_file_write_atomic(a->out_path, out.data, out.len, 0600, LIA_FILE_REPLACE)) !=
        0) {
        status = report(a->out_path, rc);
        goto done;
    }
    printf("sealed %zu-byte payload from %s into %s (%zu bytes)\n", payload_len,
           lia_identity_name(me), a->out_path, out.len);
    if (a->channel)
        printf("  destination: channel %s\n", a->channel);
    else
        printf("  destination: direct to\n");
    if (!a->channel)
        for (size_t i = 0; i < a->n_to; i++)
            printf("    %s\n", rcpt[i]);
    printf("  key handed over to %zu node(s), wrapped to the encryption key in each "
           "certificate\n",
           a->n_to);
    status = EX_OK;
done:
    lia_payload_free(&check);
    free(out.data);
    if (payload) {
        sodium_memzero(payload, payload_len);
        free(payload);
    }
    lia_symkey_destroy(&key);
    free(certs);
    free(grant);
    free(rcpt);
    lia_identity_destroy(&me);
    return status;
}

struct members {
    char channel[LIA_CHANNEL_MAX + 1];
    char list[4096];
};

/* Membership from "channel=node,node": exact node ids, comma-separated. */
static int member_fn(void *arg, const char *channel, const char *node)
{
    const struct members *m = arg;
    const char *p = m->list;
    size_t n = strlen(node);
    if (strcmp(channel, m->channel) != 0)
        return 0;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, node, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

int envtool_open(const struct envtool_open *a)
{
    lia_identity_t *me = NULL;
    lia_trust_t *trust = NULL;
    lia_opener_t *op = NULL;
    lia_opened *m = NULL;
    uint8_t *buf = NULL;
    size_t len;
    const char *failed = NULL;
    struct members mem;
    Liaison__V1__Payload *p = NULL;
    char created[32];
    int rc, status = EX_SOFTWARE;

    if ((rc = lia_identity_load(a->key_path, LIA_SECRET_NODE, NULL, 0, &me)) != 0) {
        status = report(a->key_path, rc);
        goto done;
    }
    if ((rc = lia_keyfiles_load_trust(a->authority_path, a->certs, a->n_certs, a->crl_path,
                                      &trust, &failed)) != 0) {
        status = report(failed ? failed : "trust", rc);
        goto done;
    }
    if ((rc = lia_opener_new(trust, me, lia_identity_name(me), &op)) != 0) {
        status = report("opener", rc);
        goto done;
    }
    if (a->members) {
        const char *eq = strchr(a->members, '=');
        if (!eq || (size_t)(eq - a->members) > LIA_CHANNEL_MAX ||
            strlen(eq + 1) >= sizeof mem.list) {
            fprintf(stderr, "liaison-envelope: --members wants CHANNEL=node,node,...\n");
            status = EX_USAGE;
            goto done;
        }
        memcpy(mem.channel, a->members, (size_t)(eq - a->members));
        mem.channel[eq - a->members] = '\0';
        strcpy(mem.list, eq + 1);
        lia_opener_set_membership(op, member_fn, &mem);
    }
    if ((rc = lia_file_read(a->in_path, LIA_ENVELOPE_MAX, 0, &buf, &len)) != 0) {
        status = report(a->in_path, rc);
        goto done;
    }
    if ((rc = lia_opener_open(op, buf, len, now_ms(), &m)) != 0) {
        if (a->json) {
            printf("{\"ok\":false,\"error\":\"%s\",\"reason\":", lia_errname(rc));
            pbdump_json_string(stdout, lia_strerror(rc), strlen(lia_strerror(rc)));
            printf("}\n");
        }
        status = report("REFUSED", rc);
        goto done;
    }
    if ((rc = lia_payload_decode(m->payload, m->payload_len, &p)) != 0) {
        status = report("payload", rc);
        goto done;
    }
    iso_time(m->created_at_ms, created);
    if (a->json) {
        printf("{\"ok\":true,\"sender\":\"%s\",\"sender_cert_serial\":%llu,", m->sender,
               (unsigned long long)m->sender_cert_serial);
        printf("\"channel\":\"%s\",\"epoch\":%llu,\"seq\":%llu,\"created_at\":\"%s\","
               "\"message_id\":\"",
               m->channel, (unsigned long long)m->epoch, (unsigned long long)m->seq, created);
        hex(stdout, m->message_id, sizeof m->message_id);
        printf("\",\"payload\":");
        pbdump_json(stdout, &p->base);
        printf("}\n");
    } else {
        printf("VERIFIED and decrypted at %s\n", lia_identity_name(me));
        printf("  sender:      %s (certificate serial %016llx)\n", m->sender,
               (unsigned long long)m->sender_cert_serial);
        if (m->channel[0])
            printf("  channel:     %s\n", m->channel);
        else
            printf("  direct to:   %zu recipient(s)\n", m->n_recipients);
        printf("  epoch/seq:   %llu/%llu\n", (unsigned long long)m->epoch,
               (unsigned long long)m->seq);
        printf("  created:     %s\n", created);
        printf("  message id:  ");
        hex(stdout, m->message_id, sizeof m->message_id);
        printf("\n  payload (%zu bytes):\n", m->payload_len);
        pbdump_text(stdout, &p->base, 4);
    }
    status = EX_OK;
done:
    lia_payload_free(&p);
    lia_opened_free(&m);
    free(buf);
    lia_opener_destroy(&op);
    lia_trust_destroy(&trust);
    lia_identity_destroy(&me);
    return status;
}

int envtool_inspect(const char *path, int json)
{
    uint8_t *buf = NULL;
    size_t len;
    lia_envelope_meta *m = NULL;
    char created[32];
    int rc;

    if ((rc = lia_file_read(path, LIA_ENVELOPE_MAX, 0, &buf, &len)) != 0)
        return report(path, rc);
    rc = lia_envelope_inspect(buf, len, &m);
    free(buf);
    if (rc != 0)
        return report(path, rc);
    iso_time(m->created_at_ms, created);
    if (json) {
        printf("{\"sender\":\"%s\",\"channel\":\"%s\",\"recipients\":[", m->sender, m->channel);
        for (size_t i = 0; i < m->n_recipients; i++)
            printf("%s\"%s\"", i ? "," : "", m->recipients[i]);
        printf("],\"epoch\":%llu,\"seq\":%llu,\"created_at\":\"%s\",\"granted\":%zu,"
               "\"batch\":[%u,%u],\"header_bytes\":%zu,\"ciphertext_bytes\":%zu}\n",
               (unsigned long long)m->epoch, (unsigned long long)m->seq, created, m->n_granted,
               m->leaf_index, m->leaf_count, m->header_len, m->ciphertext_len);
    } else {
        printf("what the broker sees of %s (NOT verified):\n", path);
        printf("  sender:      %s\n", m->sender);
        if (m->channel[0])
            printf("  channel:     %s\n", m->channel);
        for (size_t i = 0; i < m->n_recipients; i++)
            printf("  recipient:   %s\n", m->recipients[i]);
        printf("  epoch/seq:   %llu/%llu\n", (unsigned long long)m->epoch,
               (unsigned long long)m->seq);
        printf("  created:     %s\n", created);
        printf("  key grant:   %zu wrapped key(s)\n", m->n_granted);
        printf("  batch:       leaf %u of %u\n", m->leaf_index, m->leaf_count);
        printf("  sizes:       header %zu bytes, ciphertext %zu bytes (content unreadable)\n",
               m->header_len, m->ciphertext_len);
    }
    lia_envelope_meta_free(&m);
    return EX_OK;
}
