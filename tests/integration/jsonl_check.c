/*
 * jsonl_check: checks that a hub export (`liaison export`, JSON Lines) round-trips, for the
 * integration tests.
 *
 *   jsonl_check EXPORT.jsonl [PAYLOAD.json...]
 *
 * Every line must be one JSON object with the export's fields (delivery_seq, sender, channel,
 * created_at_ms, created_at, officer, message_id, payload), in increasing delivery order, and
 * its payload must parse back (lib/pbjson.c) into a Payload that validates (lib/payload.c) and
 * whose officer is the line's officer. Each PAYLOAD.json (what was sent, in the JSON that
 * `liaison send --json` reads) must then equal, byte for byte once serialised, the payload of
 * exactly one line. Prints the number of lines; exits 0 if all holds, 1 otherwise (saying why).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "liaison/v1/payload.pb-c.h"
#include "payload.h"
#include "pbjson.h"

#define LINES_MAX 100000

struct packed {
    uint8_t *data;
    size_t len;
};

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "jsonl_check: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                       \
        return 1;                                                                                  \
    } while (0)

/* Serialises a parsed payload after validating it. */
static int pack(const ProtobufCMessage *m, struct packed *out)
{
    if (lia_payload_validate((const Liaison__V1__Payload *)m) != 0)
        return -1;
    out->len = protobuf_c_message_get_packed_size(m);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data)
        return -1;
    protobuf_c_message_pack(m, out->data);
    return 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    static const char *const keys[] = {"delivery_seq", "sender",  "channel",    "created_at_ms",
                                       "created_at",   "officer", "message_id", "payload"};
    struct packed *lines = calloc(LINES_MAX, sizeof *lines);
    size_t n_lines = 0, len = 0;
    char *text, *save = NULL, err[512];
    int64_t last_seq = 0;
    int bad = 0;

    if (argc < 2 || !lines) {
        fprintf(stderr, "usage: jsonl_check EXPORT.jsonl [PAYLOAD.json...]\n");
        return 2;
    }
    if (!(text = read_all(argv[1], &len)))
        FAIL("cannot read %s", argv[1]);
    if (len && text[len - 1] != '\n')
        FAIL("%s does not end with a newline", argv[1]);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line), *v;
        ProtobufCMessage *m = NULL;
        const char *officer;
        if (!o || !json_object_is_type(o, json_type_object))
            FAIL("%s: line %zu is not a JSON object", argv[1], n_lines + 1);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (!json_object_object_get_ex(o, keys[k], &v))
                FAIL("line %zu has no \"%s\"", n_lines + 1, keys[k]);
        json_object_object_get_ex(o, "delivery_seq", &v);
        if (json_object_get_int64(v) <= last_seq)
            FAIL("%s: line %zu is not in delivery order", argv[1], n_lines + 1);
        last_seq = json_object_get_int64(v);
        json_object_object_get_ex(o, "officer", &v);
        officer = json_object_get_string(v);
        json_object_object_get_ex(o, "payload", &v);
        if (lia_pbjson_from_object(&liaison__v1__payload__descriptor, v, &m, err, sizeof err) != 0)
            FAIL("payload of line %zu does not parse: %s", n_lines + 1, err);
        if (strcmp(((Liaison__V1__Payload *)m)->officer, officer) != 0)
            FAIL("line %zu: officer %s is not the payload's", n_lines + 1, officer);
        if (n_lines == LINES_MAX || pack(m, &lines[n_lines]) != 0)
            FAIL("payload of line %zu does not validate", n_lines + 1);
        n_lines++;
        protobuf_c_message_free_unpacked(m, NULL);
        json_object_put(o);
    }
    for (int a = 2; a < argc; a++) {
        ProtobufCMessage *m = NULL;
        struct packed want;
        size_t flen, hits = 0;
        char *json = read_all(argv[a], &flen);
        if (!json)
            FAIL("cannot read %s", argv[a]);
        if (lia_pbjson_parse(&liaison__v1__payload__descriptor, json, flen, &m, err, sizeof err) !=
            0)
            FAIL("%s does not parse: %s", argv[a], err);
        if (pack(m, &want) != 0)
            FAIL("%s does not validate", argv[a]);
        for (size_t i = 0; i < n_lines; i++)
            hits += lines[i].len == want.len && memcmp(lines[i].data, want.data, want.len) == 0;
        if (hits != 1) {
            fprintf(stderr, "jsonl_check: %s: %zu exported payloads equal to it (want 1)\n",
                    argv[a], hits);
            bad = 1;
        }
        free(want.data);
        free(json);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    printf("%zu\n", n_lines);
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i].data);
    free(lines);
    free(text);
    return bad;
}
