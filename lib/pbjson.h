/*
 * JSON <-> protobuf-c messages, generic over message descriptors (any schema).
 *
 * Mapping (close to the proto3 JSON mapping):
 * - keys are the .proto field names ("handling_code");
 * - enums by value name ("HANDLING_CODE_H2"); on input also the short form without the enum's
 *   prefix (the enum's name in UPPER_SNAKE_CASE + "_"), case-insensitive, with '-', '+' and
 *   ' ' matching '_' ("h2", "amber+strict"), or the integer value of a defined name;
 * - integers as JSON numbers or as decimal strings (64-bit values beyond 2^53 should be
 *   strings for other JSON tools); out-of-range values are refused;
 * - float/double as numbers, or "NaN", "Infinity", "-Infinity";
 * - bytes as base64 (standard alphabet with padding, sodium's ORIGINAL variant);
 * - nested messages as objects, repeated fields as arrays, a oneof by its member's name (at
 *   most one member present); null means "not set".
 * Unknown keys, wrong types, out-of-range numbers, unknown enum values, strings with NUL or
 * invalid UTF-8 are refused with a message naming the JSON path
 * ("governance.handling_code: unknown value 'H7' for liaison.v1.HandlingCode").
 *
 * Output omits fields at their default value (except the active member of a oneof); 64-bit
 * integers are printed as JSON numbers.
 */
#ifndef LIA_PBJSON_H
#define LIA_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct json_object;

#define LIA_PBJSON_MAX_INPUT (16u << 20) /* bytes of JSON text */
#define LIA_PBJSON_MAX_DEPTH 32          /* nesting of JSON objects and arrays */

/* Output flags. */
#define LIA_PBJSON_PRETTY 1 /* indented, several lines (default: one line) */

/*
 * Parses len bytes of JSON text into a new message of type desc (free it with
 * protobuf_c_message_free_unpacked(m, NULL)). On error returns LIA_ERR_DECODE (syntax, or
 * content that does not fit the schema), LIA_ERR_TOO_LARGE (input or nesting bound),
 * LIA_ERR_NOMEM or LIA_ERR_INVALID (arguments), and writes a one-line explanation naming
 * the JSON path into err (errlen bytes, may be 0).
 */
int lia_pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                     ProtobufCMessage **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same, from an already parsed json-c value. */
int lia_pbjson_from_object(const ProtobufCMessageDescriptor *desc, struct json_object *obj,
                           ProtobufCMessage **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Converts a message to a new json-c value (release with json_object_put). */
int lia_pbjson_to_object(const ProtobufCMessage *m, struct json_object **out)
    __attribute__((warn_unused_result));

/* Converts a message to malloc'd, NUL-terminated JSON text (flags: LIA_PBJSON_PRETTY). */
int lia_pbjson_format(const ProtobufCMessage *m, int flags, char **out)
    __attribute__((warn_unused_result));

/*
 * Looks an enum value up by its full name or its short form (see above); NULL if none
 * matches. Shared with command-line parsing so that options accept the same spellings.
 */
const ProtobufCEnumValue *lia_pbjson_enum_lookup(const ProtobufCEnumDescriptor *d,
                                                 const char *name);

/* The short form of an enum value's name (the name without the enum's prefix), or the full
 * name when the prefix does not apply. Points into the descriptor's static strings. */
const char *lia_pbjson_enum_short(const ProtobufCEnumDescriptor *d, int value);

#endif
