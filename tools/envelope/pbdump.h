/*
 * Prints any decoded protobuf-c message through its descriptor, as indented text or as JSON
 * (proto3 JSON-like: enum names, bytes as base64 omitted in favour of hex). Used by tools to
 * show a payload without a printer per message type.
 */
#ifndef LIA_PBDUMP_H
#define LIA_PBDUMP_H

#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

void pbdump_text(FILE *f, const ProtobufCMessage *m, int indent);
void pbdump_json(FILE *f, const ProtobufCMessage *m);

/* A JSON string literal for s (len bytes), escaped. */
void pbdump_json_string(FILE *f, const char *s, size_t len);

#endif
