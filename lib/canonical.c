/* Canonical-encoding check (see canonical.h): the message is packed into a comparing sink. */
#include "canonical.h"

#include <string.h>

struct cmp_buffer {
    ProtobufCBuffer base;
    const uint8_t *expect;
    size_t len, pos;
    int mismatch;
};

static void cmp_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    struct cmp_buffer *cb = (struct cmp_buffer *)buffer;
    if (cb->mismatch || len == 0)
        return;
    if (len > cb->len - cb->pos || memcmp(cb->expect + cb->pos, data, len) != 0) {
        cb->mismatch = 1;
        return;
    }
    cb->pos += len;
}

int lia_pb_canonical(const ProtobufCMessage *m, const uint8_t *buf, size_t len)
{
    struct cmp_buffer cb = {{cmp_append}, buf, len, 0, 0};

    if (m->n_unknown_fields != 0 || protobuf_c_message_get_packed_size(m) != len)
        return 0;
    if (len == 0) /* an empty message; buf may be NULL */
        return 1;
    protobuf_c_message_pack_to_buffer(m, &cb.base);
    return !cb.mismatch && cb.pos == len;
}
