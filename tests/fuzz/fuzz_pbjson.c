/*
 * libFuzzer target: JSON text -> ControlRequest through pbjson. Any input must give either an
 * error (with a message) or a message that packs, prints as JSON, and parses back to the same
 * bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "liaison/v1/control.pb-c.h"
#include "pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *d = &liaison__v1__control_request__descriptor;
    ProtobufCMessage *m = NULL, *back = NULL;
    char err[256];
    char *text = NULL;
    uint8_t *b1, *b2;
    size_t n1, n2;

    if (lia_pbjson_parse(d, (const char *)data, size, &m, err, sizeof err) != 0) {
        if (m || err[0] == '\0')
            abort(); /* an error always comes with a message and no output */
        return 0;
    }
    n1 = protobuf_c_message_get_packed_size(m);
    b1 = malloc(n1 + 1);
    if (!b1)
        abort();
    protobuf_c_message_pack(m, b1);
    if (lia_pbjson_format(m, 0, &text) != 0)
        abort();
    if (lia_pbjson_parse(d, text, strlen(text), &back, err, sizeof err) != 0)
        abort(); /* our own output must parse back */
    n2 = protobuf_c_message_get_packed_size(back);
    b2 = malloc(n2 + 1);
    if (!b2)
        abort();
    protobuf_c_message_pack(back, b2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0)
        abort();
    free(b1);
    free(b2);
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(back, NULL);
    return 0;
}
