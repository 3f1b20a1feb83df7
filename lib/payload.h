/*
 * The payload: the plaintext that travels encrypted inside every envelope (payload.proto). This
 * module decodes it from untrusted bytes and validates it completely (governance, bounds,
 * UTF-8, code lists, entity references, attachment digests) so that the rest of a node only
 * ever handles well-formed payloads. docs/payload.md states the rules in prose.
 *
 * Payloads hold personal data: never log them, nor any field of them.
 */
#ifndef LIA_PAYLOAD_H
#define LIA_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "liaison/v1/payload.pb-c.h"

#define LIA_PAYLOAD_VERSION 1

/* Bounds (bytes unless stated). */
#define LIA_PAYLOAD_MAX               (16u * 1024 * 1024) /* serialised payload */
#define LIA_PAYLOAD_TEXT_MAX          65536u              /* any string, free text */
#define LIA_PAYLOAD_SHORT_TEXT_MAX    4096u /* purpose, legal basis, conditions, characteristics */
#define LIA_PAYLOAD_ADDRESS_MAX       1024u
#define LIA_PAYLOAD_NAME_MAX          256u   /* names, titles, values of identifiers */
#define LIA_PAYLOAD_CODE_MAX          64u    /* officer, case reference, codes, numbers, tokens */
#define LIA_PAYLOAD_ID_MAX            32u    /* local entity ids */
#define LIA_PAYLOAD_ENTITIES_MAX      10000u /* entities of all types in one payload */
#define LIA_PAYLOAD_REPEATED_MAX      10000u /* any repeated field */
#define LIA_PAYLOAD_ATTACHMENTS_MAX   64u
#define LIA_PAYLOAD_LEGS_MAX          256u /* legs of one route */
#define LIA_PAYLOAD_ALIASES_MAX       32u
#define LIA_PAYLOAD_NATIONALITIES_MAX 8u
#define LIA_PAYLOAD_CODES_MAX         32u /* offence codes */
#define LIA_PAYLOAD_PURPOSES_MAX      32u
#define LIA_PAYLOAD_REFS_MAX          1000u     /* references in one list (participants, persons) */
#define LIA_PAYLOAD_DELAY_MAX         31536000u /* DelayNotice.expected_delay_seconds: one year */

/* Instants (Unix seconds). Message times (review, erasure, receipt, detection) lie in
 * [MSG_MIN, MAX); event and travel times in [EVENT_MIN, MAX), 0 meaning unknown. */
#define LIA_PAYLOAD_TIME_MSG_MIN   INT64_C(946684800)   /* 2000-01-01 */
#define LIA_PAYLOAD_TIME_EVENT_MIN INT64_C(-2208988800) /* 1900-01-01 */
#define LIA_PAYLOAD_TIME_MAX       INT64_C(7258118400)  /* 2200-01-01 */

/*
 * Decodes and validates a serialised Payload. Checks the size first (len > LIA_PAYLOAD_MAX:
 * LIA_ERR_TOO_LARGE, nothing parsed), parses under a memory budget of 16 * len + 4 MiB
 * (exceeded: LIA_ERR_TOO_LARGE; a few wire bytes can make protobuf-c allocate a whole
 * struct), and refuses with LIA_ERR_DECODE malformed protobuf, unknown fields (at any depth) and
 * non-canonical encodings (the bytes must be exactly what re-serialising the decoded message
 * gives: this also catches strings with embedded NUL bytes and duplicated scalar fields).
 * Then runs lia_payload_validate (LIA_ERR_VERSION, LIA_ERR_INVALID). On success *out owns
 * the message (free with lia_payload_free); on error *out is NULL. buf may be NULL if len is 0.
 * Returns 0, LIA_ERR_INVALID (NULL out), LIA_ERR_TOO_LARGE, LIA_ERR_DECODE, LIA_ERR_VERSION,
 * LIA_ERR_NOMEM or LIA_ERR_CRYPTO.
 */
int lia_payload_decode(const uint8_t *buf, size_t len, Liaison__V1__Payload **out);

/*
 * Validates a payload (decoded or built in memory) against every rule of docs/payload.md:
 * version 1 (else LIA_ERR_VERSION); a body; complete governance; every string valid UTF-8
 * without NUL or control characters and within its bound; every enum value known; repeated
 * fields within their bounds; local ids well formed and unique; every reference resolving to
 * an entity of the right type; attachment digests equal to BLAKE2b-256 of the content; sane
 * times. Returns 0, LIA_ERR_INVALID, LIA_ERR_VERSION, LIA_ERR_NOMEM or LIA_ERR_CRYPTO.
 * Never logs the content.
 */
int lia_payload_validate(const Liaison__V1__Payload *p);

/* Frees a payload returned by lia_payload_decode(_ex) and sets *p to NULL (such a payload lives
 * in the decoder's arena: never liaison__v1__payload__free_unpacked). Accepts p == NULL and
 * *p == NULL. */
void lia_payload_free(Liaison__V1__Payload **p);

/*
 * lia_payload_decode with flags. LIA_PAYLOAD_REENCODED skips the byte-for-byte canonical
 * check, for a caller that re-encodes the decoded payload and uses only its own encoding (the
 * sending node, which signs what it validated); every other check, and the memory budget, stay.
 */
#define LIA_PAYLOAD_REENCODED 1
int lia_payload_decode_ex(const uint8_t *buf, size_t len, int flags, Liaison__V1__Payload **out);

/*
 * Builds a realistic, valid, serialised case alert (for demos and benchmarks): governance (H2,
 * B2, RESTREINT UE/EU RESTRICTED, TLP:AMBER, suspects), a suspect person, his passport, a
 * vehicle, three locations and a route of two legs, under the given case reference and
 * accountable officer. *out is malloc'd (free with free()). Returns 0, LIA_ERR_INVALID (NULL
 * argument, or case_ref/officer breaking the rules) or LIA_ERR_NOMEM.
 */
int lia_payload_example_case_alert(const char *case_ref, const char *officer, uint8_t **out,
                                   size_t *out_len);

#endif
