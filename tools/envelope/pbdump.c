/*
 * Descriptor-driven printing of protobuf-c messages (see pbdump.h). Only fields that are set
 * are printed: non-default scalars, non-empty strings and bytes, present sub-messages, the
 * active member of a oneof.
 */
#include "pbdump.h"

#include <inttypes.h>
#include <string.h>

static const void *field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    return (const char *)m + fd->offset;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* 1 if the (singular) value at p differs from its proto3 default. */
static int is_set(const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return s && *s;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)p != NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, scalar_size(fd->type)) != 0;
    }
    }
}

static void put_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p, int json,
                      int indent)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(f, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(f, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(f, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(f, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        fprintf(f, "%g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        fprintf(f, "%.9g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(fd->descriptor, *(const int *)p);
        if (json)
            pbdump_json_string(f, ev ? ev->name : "?", strlen(ev ? ev->name : "?"));
        else
            fputs(ev ? ev->name : "?", f);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        pbdump_json_string(f, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        fputc('"', f);
        for (size_t i = 0; i < b->len && i < 64; i++)
            fprintf(f, "%02x", b->data[i]);
        if (b->len > 64)
            fprintf(f, "...(%zu bytes)", b->len);
        fputc('"', f);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        if (json) {
            pbdump_json(f, sub);
        } else {
            fputc('\n', f);
            pbdump_text(f, sub, indent + 2);
        }
        break;
    }
    }
}

static void dump(FILE *f, const ProtobufCMessage *m, int json, int indent)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int first = 1;

    if (json)
        fputc('{', f);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const void *p = field_ptr(m, fd);
        size_t count = 1;
        const char *base = p;

        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)((const char *)m + fd->quantifier_offset);
            if (count == 0)
                continue;
            base = *(const char *const *)p;
        } else if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)((const char *)m + fd->quantifier_offset) != fd->id)
                continue;
        } else if (!is_set(fd, p)) {
            continue;
        }
        if (json) {
            fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
            if (fd->label == PROTOBUF_C_LABEL_REPEATED)
                fputc('[', f);
        }
        for (size_t k = 0; k < count; k++) {
            const void *v = fd->label == PROTOBUF_C_LABEL_REPEATED
                                ? (const void *)(base + k * scalar_size(fd->type))
                                : p;
            if (json) {
                if (k)
                    fputc(',', f);
            } else {
                fprintf(f, "%*s%s: ", indent, "", fd->name);
            }
            put_value(f, fd, v, json, indent);
            if (!json && fd->type != PROTOBUF_C_TYPE_MESSAGE)
                fputc('\n', f);
        }
        if (json && fd->label == PROTOBUF_C_LABEL_REPEATED)
            fputc(']', f);
        first = 0;
    }
    if (json)
        fputc('}', f);
}

void pbdump_text(FILE *f, const ProtobufCMessage *m, int indent)
{
    dump(f, m, 0, indent);
}

void pbdump_json(FILE *f, const ProtobufCMessage *m)
{
    dump(f, m, 1, 0);
}

void pbdump_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
