/*
 * The hub role: which terms of a payload a hub indexes, how terms are normalised, and the
 * glue between a node and the index kept by its store (lia_nstore_hub_*, lib/store.c).
 *
 * Indexed terms (docs/architecture.md, "Hub index"): the case reference (and the request id
 * of an information exchange), every person's family name, given names, maiden name, aliases
 * and full name (given + family and family + given), every document number, every vehicle's
 * plate and VIN, the name and country code of every place a route leg starts or ends at, and
 * the accountable officer. Sender, channel and time are columns of the inbox and filter
 * directly.
 *
 * Normalisation: Unicode simple case folding for Latin (Basic, Latin-1, Extended-A, the
 * Romanian letters of Extended-B), Greek and Cyrillic letters; runs of blanks (space, TAB, CR,
 * LF, no-break space) become one space, and leading and trailing blanks go. Document numbers
 * and plates also lose every blank, '-' and '.', so "AB-123 CD" and "ab123cd" are one term.
 * Accents are kept ("Müller" is not "Muller"). A search matches a whole normalised term
 * exactly: no substrings, prefixes or spelling variants (the index holds keyed hashes only).
 */
#ifndef LIA_HUB_H
#define LIA_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "liaison/v1/payload.pb-c.h"
#include "store.h"

#define LIA_HUB_TERMS_MAX 100000u /* terms indexed for one message (beyond: logged, cut) */

/*
 * Normalises in_len bytes of text of the given kind into out (cap bytes, not NUL-terminated).
 * *len may be 0 (nothing but blanks and separators). LIA_ERR_INVALID for a bad kind, invalid
 * UTF-8 or a control character other than a blank; LIA_ERR_TOO_LARGE if the result exceeds
 * cap or LIA_HUB_TERM_MAX.
 */
int lia_hub_normalise(lia_hub_kind kind, const char *in, size_t in_len, char *out, size_t cap,
                      size_t *len) __attribute__((warn_unused_result));

typedef struct {
    lia_nstore_term *v; /* v[i].text is malloc'd and NUL-terminated */
    size_t n, cap;
    int truncated; /* more than LIA_HUB_TERMS_MAX distinct terms: the rest were dropped */
} lia_hub_terms;

/*
 * The distinct normalised terms of a validated payload, sorted (kind, then bytes). *out is
 * reset first and owned by the caller (lia_hub_terms_free, also after an error).
 * 0, LIA_ERR_INVALID or LIA_ERR_NOMEM.
 */
int lia_hub_terms_of(const Liaison__V1__Payload *p, lia_hub_terms *out)
    __attribute__((warn_unused_result));
void lia_hub_terms_free(lia_hub_terms *t);

/*
 * Inside a store group: indexes the message just stored under delivery_seq. The payload is
 * decoded and validated here (lia_payload_decode: a receiving node does not otherwise trust a
 * sender's payload to be well formed); a payload that does not validate is logged (never its
 * content) and indexed with no term. Only store errors are returned (the group must fail).
 */
int lia_hub_index(lia_nstore_t *s, uint64_t delivery_seq, const uint8_t *payload, size_t len)
    __attribute__((warn_unused_result));

/*
 * Outside a group: indexes every stored message above the index watermark (messages received
 * while the node was not a hub), 64 per group. *count (optional) receives the
 * number of messages indexed. The index must be enabled (lia_nstore_hub_enable).
 */
int lia_hub_catch_up(lia_nstore_t *s, uint64_t *count) __attribute__((warn_unused_result));

/*
 * Normalises text (NUL-terminated) as a term of kind and adds it to the query. LIA_ERR_INVALID
 * if it normalises to nothing or is not valid text; LIA_ERR_LIMIT beyond
 * LIA_HUB_QUERY_TERMS_MAX terms.
 */
int lia_hub_query_add(lia_nstore_t *s, lia_nstore_hub_query *q, lia_hub_kind kind, const char *text)
    __attribute__((warn_unused_result));

/* Name of a kind for messages ("person", "document"...). */
const char *lia_hub_kind_name(lia_hub_kind kind);

#endif
