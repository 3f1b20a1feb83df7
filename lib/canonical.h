/*
 * Canonical encoding check shared by every strict decoder: a decoded protobuf message is
 * accepted only if it has no unknown fields and re-encodes to exactly the bytes received
 * (protocol.md section 2.1). This rejects duplicated fields, padding, non-minimal varints and
 * strings with an embedded NUL, so one meaning has one encoding.
 */
#ifndef LIA_CANONICAL_H
#define LIA_CANONICAL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* 1 if m has no top-level unknown fields and packs to exactly buf[0..len), else 0. Compares
 * while packing: allocates nothing. */
int lia_pb_canonical(const ProtobufCMessage *m, const uint8_t *buf, size_t len);

#endif
