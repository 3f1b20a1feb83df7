/*
 * Decoding and validation of the payload (see payload.h and docs/payload.md).
 *
 * Validation runs in two passes. A generic pass walks every message through the protobuf-c
 * descriptors, so that no field can be forgotten: no unknown fields, every string valid UTF-8
 * without NUL or control characters (TAB, LF, CR allowed) and at most LIA_PAYLOAD_TEXT_MAX
 * bytes, every enum value defined, every repeated field bounded. A semantic pass then applies
 * the rules of each message: required fields, tighter bounds, governance, local ids and
 * references, digests and times. Nothing here logs; errors are reported by code only.
 */
#define _POSIX_C_SOURCE 200809L
#include "payload.h"
#include "arena.h"
#include "canonical.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "error.h"
#include "utf8.h"

/* Short names for the protobuf-c types and enum constants used below. */
typedef Liaison__V1__Payload Payload;
typedef Liaison__V1__Governance Governance;
typedef Liaison__V1__EntitySet EntitySet;
typedef Liaison__V1__Person Person;
typedef Liaison__V1__Document Document;
typedef Liaison__V1__Vehicle Vehicle;
typedef Liaison__V1__Organisation Organisation;
typedef Liaison__V1__Location Location;
typedef Liaison__V1__Event Event;
typedef Liaison__V1__Route Route;
typedef Liaison__V1__RouteLeg RouteLeg;
typedef Liaison__V1__CommunicationIdentifier CommId;
typedef Liaison__V1__Attachment Attachment;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            return rc_;                                                                            \
    } while (0)
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return LIA_ERR_INVALID;                                                                \
    } while (0)

/* ------------------------------------------------------------------ strings */

static bool is_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* True if s (NULL = "") has min..max bytes of UTF-8 without control characters (TAB, LF and CR
 * allowed when multiline; see lia_utf8_valid). */
static bool text_ok(const char *s, size_t min, size_t max, bool multiline)
{
    if (s == NULL)
        s = "";
    size_t n = strnlen(s, max + 1);
    return n >= min && n <= max && lia_utf8_valid(s, n, multiline ? LIA_UTF8_MULTILINE : 0);
}

/* Single-line name: optional (required = false) or 1..LIA_PAYLOAD_NAME_MAX bytes. */
static bool name_ok(const char *s, bool required)
{
    return text_ok(s, required ? 1 : 0, LIA_PAYLOAD_NAME_MAX, false);
}

/* Multi-line free text up to max bytes. */
static bool free_text_ok(const char *s, size_t max, bool required)
{
    return text_ok(s, required ? 1 : 0, max, true);
}

/* A code, number or reference: single line, <= LIA_PAYLOAD_CODE_MAX bytes, no leading or
 * trailing space. */
static bool code_ok(const char *s, bool required)
{
    if (is_empty(s))
        return !required;
    size_t n = strnlen(s, LIA_PAYLOAD_CODE_MAX + 1);
    return text_ok(s, 1, LIA_PAYLOAD_CODE_MAX, false) && s[0] != ' ' && s[n - 1] != ' ';
}

/* True if every byte of s[0..n) is in the given set of ASCII characters or an ASCII letter or
 * digit (letters restricted to lower case when lower_only). */
static bool chars_in(const char *s, size_t n, const char *extra, bool lower_only)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (!lower_only && c >= 'A' && c <= 'Z') || (c != '\0' && strchr(extra, c));
        if (!ok)
            return false;
    }
    return true;
}

/* Local entity id: 1..LIA_PAYLOAD_ID_MAX bytes of [A-Za-z0-9._-]. */
static bool local_id_ok(const char *s)
{
    if (is_empty(s))
        return false;
    size_t n = strnlen(s, LIA_PAYLOAD_ID_MAX + 1);
    return n <= LIA_PAYLOAD_ID_MAX && chars_in(s, n, "._-", false);
}

/* Request id: 1..LIA_PAYLOAD_CODE_MAX bytes of [A-Za-z0-9._:/-]. */
static bool token_ok(const char *s, bool required)
{
    if (is_empty(s))
        return !required;
    size_t n = strnlen(s, LIA_PAYLOAD_CODE_MAX + 1);
    return n <= LIA_PAYLOAD_CODE_MAX && chars_in(s, n, "._:/-", false);
}

/* Node id: 1..64 bytes of [a-z0-9._-] (as in certificates). */
static bool node_id_ok(const char *s)
{
    size_t n = strnlen(s, 65);
    return n >= 1 && n <= 64 && chars_in(s, n, "._-", true);
}

/* ISO 3166-1 alpha-2, upper case. */
static bool country_ok(const char *s, bool required)
{
    if (is_empty(s))
        return !required;
    return s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] == '\0';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Calendar date "YYYY", "YYYY-MM" or "YYYY-MM-DD", years 1800..2199, valid day of month. */
static bool date_ok(const char *s, bool required)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (is_empty(s))
        return !required;
    size_t n = strnlen(s, 11);
    if ((n != 4 && n != 7 && n != 10) || !all_digits(s, 4))
        return false;
    int y = atoi(s);
    if (y < 1800 || y > 2199)
        return false;
    if (n == 4)
        return true;
    if (s[4] != '-' || !all_digits(s + 5, 2))
        return false;
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (m < 1 || m > 12)
        return false;
    if (n == 7)
        return true;
    if (s[7] != '-' || !all_digits(s + 8, 2))
        return false;
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = m == 2 && !leap ? 28 : mdays[m - 1];
    return d >= 1 && d <= max;
}

/* True unless both dates are set and a is after b (compared on their common precision). */
static bool dates_ordered(const char *a, const char *b)
{
    if (is_empty(a) || is_empty(b))
        return true;
    size_t n = strlen(a) < strlen(b) ? strlen(a) : strlen(b);
    return strncmp(a, b, n) <= 0;
}

/* BCP 47 language tag, syntax only: a primary subtag of 2..3 letters, then subtags of 1..8
 * letters or digits separated by '-', <= 35 bytes in all. */
static bool language_ok(const char *s)
{
    if (is_empty(s))
        return false;
    size_t n = strnlen(s, 36);
    if (n > 35)
        return false;
    size_t i = 0, start = 0;
    for (;; i++) {
        if (s[i] == '-' || s[i] == '\0') {
            size_t len = i - start;
            if (start == 0 ? (len < 2 || len > 3) : (len < 1 || len > 8))
                return false;
            if (start == 0)
                for (size_t j = 0; j < len; j++)
                    if (!((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')))
                        return false;
            if (!chars_in(s + start, len, "", false))
                return false;
            if (s[i] == '\0')
                return true;
            start = i + 1;
        }
    }
}

/* Media type "type/subtype" of RFC 6838 restricted names, <= 127 bytes. */
static bool media_type_ok(const char *s)
{
    if (is_empty(s))
        return false;
    size_t n = strnlen(s, 128);
    const char *slash = memchr(s, '/', n);
    if (n > 127 || !slash || slash == s || slash == s + n - 1)
        return false;
    size_t t = (size_t)(slash - s);
    return chars_in(s, t, "!#$&-^_.+", false) && chars_in(slash + 1, n - t - 1, "!#$&-^_.+", false);
}

/* Attachment file name: 1..255 bytes, single line, no path separator, not "." or "..". */
static bool file_name_ok(const char *s)
{
    return text_ok(s, 1, 255, false) && !strchr(s, '/') && !strchr(s, '\\') &&
           strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Instant t (Unix seconds) within [min, LIA_PAYLOAD_TIME_MAX), or 0 when optional. */
static bool instant_ok(int64_t t, int64_t min, bool required)
{
    if (t == 0)
        return !required;
    return t >= min && t < LIA_PAYLOAD_TIME_MAX;
}

static bool uinstant_ok(uint64_t t, bool required)
{
    if (t > (uint64_t)LIA_PAYLOAD_TIME_MAX)
        return false;
    return instant_ok((int64_t)t, LIA_PAYLOAD_TIME_MSG_MIN, required);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True if the n strings of v are pairwise different. Returns -1 on allocation failure. */
static int distinct_strings(char *const *v, size_t n)
{
    if (n < 2)
        return 1;
    char **tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return -1;
    memcpy(tmp, v, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_str_ptr);
    int ok = 1;
    for (size_t i = 1; i < n && ok; i++)
        ok = strcmp(tmp[i - 1], tmp[i]) != 0;
    free(tmp);
    return ok;
}

/* LIA_OK if the n strings of v are distinct, else LIA_ERR_INVALID or LIA_ERR_NOMEM. */
static int require_distinct(char *const *v, size_t n)
{
    int d = distinct_strings(v, n);
    return d < 0 ? LIA_ERR_NOMEM : d ? 0 : LIA_ERR_INVALID;
}

/* ------------------------------------------------------------------ generic pass */

/*
 * Walks m and every sub-message through the descriptors: no unknown fields (unknown_err),
 * strings within LIA_PAYLOAD_TEXT_MAX and clean, bytes within LIA_PAYLOAD_MAX, enum values
 * defined, repeated fields within LIA_PAYLOAD_REPEATED_MAX and without NULL elements
 * (LIA_ERR_INVALID). With invalid set (the decoder), a LIA_ERR_INVALID finding only sets
 * *invalid and the walk goes on, so that an unknown field anywhere still decides the error in
 * the same single pass. Only the active member of a oneof is looked at. Recursion depth is
 * bounded by the schema, which has no recursive types.
 */
static int check_generic(const ProtobufCMessage *m, int unknown_err, bool *invalid)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    bool bad;
    if (m->n_unknown_fields != 0)
        return unknown_err;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n = 1;
        const void *elems;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            elems = *(const void *const *)(const void *)(base + f->offset);
            if (n > LIA_PAYLOAD_REPEATED_MAX || (n > 0 && elems == NULL)) {
                if (!invalid)
                    return LIA_ERR_INVALID;
                *invalid = true; /* and the field is not looked into */
                continue;
            }
        } else {
            elems = base + f->offset;
        }
        for (size_t k = 0; k < n; k++) {
            bad = false;
            switch (f->type) {
            case PROTOBUF_C_TYPE_STRING: {
                const char *s = ((const char *const *)elems)[k];
                bad = (s == NULL && f->label == PROTOBUF_C_LABEL_REPEATED) ||
                      !text_ok(s, 0, LIA_PAYLOAD_TEXT_MAX, true);
                break;
            }
            case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = &((const ProtobufCBinaryData *)elems)[k];
                bad = b->len > LIA_PAYLOAD_MAX || (b->len > 0 && b->data == NULL);
                break;
            }
            case PROTOBUF_C_TYPE_ENUM: {
                int v = ((const int *)elems)[k];
                bad = !protobuf_c_enum_descriptor_get_value(f->descriptor, v);
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = ((const ProtobufCMessage *const *)elems)[k];
                if (sub == NULL) {
                    bad = f->label == PROTOBUF_C_LABEL_REPEATED;
                    break;
                }
                if (sub->descriptor != f->descriptor) {
                    bad = true;
                    break;
                }
                CHECK(check_generic(sub, unknown_err, invalid));
                break;
            }
            default:
                break;
            }
            if (bad) {
                if (!invalid)
                    return LIA_ERR_INVALID;
                *invalid = true;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ local ids */

enum {
    ET_PERSON = 1u << 0,
    ET_DOCUMENT = 1u << 1,
    ET_VEHICLE = 1u << 2,
    ET_ORGANISATION = 1u << 3,
    ET_LOCATION = 1u << 4,
    ET_EVENT = 1u << 5,
    ET_ROUTE = 1u << 6,
    ET_COMM = 1u << 7,
    ET_ANY = 0xFFu
};

struct ident {
    const char *id;
    unsigned type;
};

/* The validation context: the sorted table of local ids and the governance's data-subject
 * categories (bit c set for category c). */
struct vctx {
    struct ident *ids;
    size_t n_ids;
    unsigned categories;
};

static int cmp_ident(const void *a, const void *b)
{
    return strcmp(((const struct ident *)a)->id, ((const struct ident *)b)->id);
}

static size_t entity_count(const EntitySet *e)
{
    if (!e)
        return 0;
    return e->n_persons + e->n_documents + e->n_vehicles + e->n_organisations + e->n_locations +
           e->n_events + e->n_routes + e->n_comm_identifiers;
}

static void add_ids(struct vctx *c, size_t n, void *const *v, size_t id_offset, unsigned type)
{
    for (size_t i = 0; i < n; i++) {
        const char *id = *(const char *const *)(const void *)((const char *)v[i] + id_offset);
        c->ids[c->n_ids].id = id ? id : "";
        c->ids[c->n_ids].type = type;
        c->n_ids++;
    }
}

/*
 * Fills c->ids with the ids of every entity of set plus the extra document (may be NULL),
 * checks their syntax and uniqueness, and sorts them for resolve(). Returns 0,
 * LIA_ERR_INVALID or LIA_ERR_NOMEM; on any return c->ids is to be freed by the caller.
 */
static int build_ids(struct vctx *c, const EntitySet *set, const Document *extra)
{
    size_t total = entity_count(set) + (extra ? 1 : 0);
    REQUIRE(total <= LIA_PAYLOAD_ENTITIES_MAX);
    if (total == 0)
        return 0;
    c->ids = malloc(total * sizeof *c->ids);
    if (!c->ids)
        return LIA_ERR_NOMEM;
    if (set) {
        add_ids(c, set->n_persons, (void *const *)set->persons, offsetof(Person, id), ET_PERSON);
        add_ids(c, set->n_documents, (void *const *)set->documents, offsetof(Document, id),
                ET_DOCUMENT);
        add_ids(c, set->n_vehicles, (void *const *)set->vehicles, offsetof(Vehicle, id),
                ET_VEHICLE);
        add_ids(c, set->n_organisations, (void *const *)set->organisations,
                offsetof(Organisation, id), ET_ORGANISATION);
        add_ids(c, set->n_locations, (void *const *)set->locations, offsetof(Location, id),
                ET_LOCATION);
        add_ids(c, set->n_events, (void *const *)set->events, offsetof(Event, id), ET_EVENT);
        add_ids(c, set->n_routes, (void *const *)set->routes, offsetof(Route, id), ET_ROUTE);
        add_ids(c, set->n_comm_identifiers, (void *const *)set->comm_identifiers,
                offsetof(CommId, id), ET_COMM);
    }
    if (extra)
        add_ids(c, 1, (void *const *)&extra, offsetof(Document, id), ET_DOCUMENT);
    for (size_t i = 0; i < c->n_ids; i++)
        REQUIRE(local_id_ok(c->ids[i].id));
    qsort(c->ids, c->n_ids, sizeof *c->ids, cmp_ident);
    for (size_t i = 1; i < c->n_ids; i++)
        REQUIRE(strcmp(c->ids[i - 1].id, c->ids[i].id) != 0);
    return 0;
}

/* True if ref names an entity of one of the types in mask; an empty ref passes when optional. */
static bool resolves(const struct vctx *c, const char *ref, unsigned mask, bool required)
{
    if (is_empty(ref))
        return !required;
    if (c->n_ids == 0)
        return false;
    struct ident key = {ref, 0};
    const struct ident *hit = bsearch(&key, c->ids, c->n_ids, sizeof key, cmp_ident);
    return hit && (hit->type & mask);
}

/* ------------------------------------------------------------------ entities */

#define V(e, x) LIAISON__V1__##e##__##x

static int check_person(const struct vctx *c, const Person *p)
{
    int cat = p->data_subject_category;
    REQUIRE(p->role != V(PERSON_ROLE, PERSON_ROLE_UNSPECIFIED));
    REQUIRE(name_ok(p->family_name, false) && name_ok(p->given_names, false) &&
            name_ok(p->maiden_name, false) && name_ok(p->place_of_birth, false) &&
            name_ok(p->profession, false));
    REQUIRE(p->n_aliases <= LIA_PAYLOAD_ALIASES_MAX);
    for (size_t i = 0; i < p->n_aliases; i++)
        REQUIRE(name_ok(p->aliases[i], true));
    REQUIRE(date_ok(p->date_of_birth, false) && country_ok(p->country_of_birth, false));
    REQUIRE(p->n_nationalities <= LIA_PAYLOAD_NATIONALITIES_MAX);
    for (size_t i = 0; i < p->n_nationalities; i++)
        REQUIRE(country_ok(p->nationalities[i], true));
    CHECK(require_distinct(p->nationalities, p->n_nationalities));
    REQUIRE(resolves(c, p->residence_ref, ET_LOCATION, false));
    REQUIRE(free_text_ok(p->identifying_characteristics, LIA_PAYLOAD_SHORT_TEXT_MAX, false));
    REQUIRE(!is_empty(p->family_name) || !is_empty(p->given_names) || p->n_aliases > 0 ||
            !is_empty(p->identifying_characteristics));
    /* Art. 6 of Directive (EU) 2016/680: every person is categorised, the category is
     * declared in the governance, and it agrees with the role. */
    REQUIRE(cat != V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_UNSPECIFIED));
    REQUIRE(c->categories & (1u << cat));
    switch (p->role) {
    case V(PERSON_ROLE, PERSON_ROLE_SUSPECT):
    case V(PERSON_ROLE, PERSON_ROLE_ACCOMPLICE):
    case V(PERSON_ROLE, PERSON_ROLE_FACILITATOR):
        REQUIRE(cat == V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_SUSPECT) ||
                cat == V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_CONVICTED));
        break;
    case V(PERSON_ROLE, PERSON_ROLE_VICTIM):
        REQUIRE(cat == V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_VICTIM));
        break;
    case V(PERSON_ROLE, PERSON_ROLE_WITNESS):
    case V(PERSON_ROLE, PERSON_ROLE_CONTACT):
        REQUIRE(cat == V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_OTHER_PARTY));
        break;
    default:
        break;
    }
    return 0;
}

static int check_document(const struct vctx *c, const Document *d)
{
    REQUIRE(d->type != V(DOCUMENT_TYPE, DOCUMENT_TYPE_UNSPECIFIED));
    REQUIRE(code_ok(d->number, true));
    REQUIRE(country_ok(d->issuing_country, true) && country_ok(d->nationality, false));
    REQUIRE(date_ok(d->valid_from, false) && date_ok(d->valid_until, false));
    REQUIRE(dates_ordered(d->valid_from, d->valid_until));
    REQUIRE(resolves(c, d->holder_ref, ET_PERSON, false));
    return 0;
}

/* VIN of ISO 3779: 17 characters of [A-HJ-NPR-Z0-9]. */
static bool vin_ok(const char *s)
{
    if (strnlen(s, 18) != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')) || ch == 'I' || ch == 'O' ||
            ch == 'Q')
            return false;
    }
    return true;
}

static int check_vehicle(const struct vctx *c, const Vehicle *v)
{
    REQUIRE(code_ok(v->plate, false) && country_ok(v->country, false));
    REQUIRE(name_ok(v->make, false) && name_ok(v->model, false) && name_ok(v->colour, false));
    REQUIRE(is_empty(v->vin) || vin_ok(v->vin));
    REQUIRE(resolves(c, v->owner_ref, ET_PERSON | ET_ORGANISATION, false));
    REQUIRE(!is_empty(v->plate) || !is_empty(v->vin) || !is_empty(v->make));
    return 0;
}

static int check_organisation(const Organisation *o)
{
    REQUIRE(name_ok(o->name, true));
    REQUIRE(o->type != V(ORGANISATION_TYPE, ORGANISATION_TYPE_UNSPECIFIED));
    REQUIRE(country_ok(o->country, false) && code_ok(o->registration_number, false));
    return 0;
}

static int check_location(const Location *l)
{
    const Liaison__V1__Coordinates *co = l->coordinates;
    REQUIRE(name_ok(l->name, false) && country_ok(l->country, false));
    REQUIRE(free_text_ok(l->address, LIA_PAYLOAD_ADDRESS_MAX, false));
    if (co) {
        REQUIRE(co->latitude_microdeg >= -90000000 && co->latitude_microdeg <= 90000000);
        REQUIRE(co->longitude_microdeg >= -180000000 && co->longitude_microdeg <= 180000000);
        REQUIRE(co->accuracy_m <= 1000000);
    }
    REQUIRE(!is_empty(l->name) || co || !is_empty(l->address));
    return 0;
}

static int check_event(const struct vctx *c, const Event *e)
{
    REQUIRE(e->type != V(EVENT_TYPE, EVENT_TYPE_UNSPECIFIED));
    REQUIRE(instant_ok(e->time, LIA_PAYLOAD_TIME_EVENT_MIN, false));
    REQUIRE(resolves(c, e->location_ref, ET_LOCATION, false));
    REQUIRE(free_text_ok(e->description, LIA_PAYLOAD_TEXT_MAX, false));
    REQUIRE(e->n_participant_refs <= LIA_PAYLOAD_REFS_MAX);
    for (size_t i = 0; i < e->n_participant_refs; i++)
        REQUIRE(resolves(c, e->participant_refs[i], ET_ANY, true));
    return require_distinct(e->participant_refs, e->n_participant_refs);
}

static int check_route(const struct vctx *c, const Route *r)
{
    REQUIRE(name_ok(r->name, false));
    REQUIRE(free_text_ok(r->description, LIA_PAYLOAD_TEXT_MAX, false));
    REQUIRE(r->n_legs >= 1 && r->n_legs <= LIA_PAYLOAD_LEGS_MAX);
    for (size_t i = 0; i < r->n_legs; i++) {
        const RouteLeg *l = r->legs[i];
        REQUIRE(resolves(c, l->from_ref, ET_LOCATION, true));
        REQUIRE(resolves(c, l->to_ref, ET_LOCATION, true));
        REQUIRE(instant_ok(l->departure, LIA_PAYLOAD_TIME_EVENT_MIN, false));
        REQUIRE(instant_ok(l->arrival, LIA_PAYLOAD_TIME_EVENT_MIN, false));
        REQUIRE(l->departure == 0 || l->arrival == 0 || l->departure <= l->arrival);
        REQUIRE(l->transport_mode != V(TRANSPORT_MODE, TRANSPORT_MODE_UNSPECIFIED));
        REQUIRE(name_ok(l->carrier, false));
        REQUIRE(resolves(c, l->vehicle_ref, ET_VEHICLE, false));
    }
    return 0;
}

/* True if s is a digit string of min..max digits, after an optional '+' when plus. */
static bool digits_ok(const char *s, size_t min, size_t max, bool plus)
{
    if (plus && s[0] == '+')
        s++;
    size_t n = strnlen(s, max + 1);
    return n >= min && n <= max && all_digits(s, n);
}

static bool comm_value_ok(int type, const char *v)
{
    unsigned char addr[16];
    switch (type) {
    case V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_PHONE):
        return digits_ok(v, 3, 20, true);
    case V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IMEI):
        return digits_ok(v, 14, 16, false);
    case V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IMSI):
        return digits_ok(v, 6, 15, false);
    case V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_EMAIL): {
        const char *at = strchr(v, '@');
        return at && at != v && at[1] != '\0' && !strchr(at + 1, '@') && !strchr(v, ' ');
    }
    case V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IP_ADDRESS):
        return inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1;
    default:
        return true;
    }
}

static int check_comm(const struct vctx *c, const CommId *ci)
{
    REQUIRE(ci->type != V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_UNSPECIFIED));
    REQUIRE(name_ok(ci->value, true) && comm_value_ok(ci->type, ci->value));
    REQUIRE(name_ok(ci->platform, false));
    REQUIRE(resolves(c, ci->owner_ref, ET_PERSON | ET_ORGANISATION, false));
    return 0;
}

/* Checks every entity of set (which may be NULL) against c's id table. */
static int check_entities(const struct vctx *c, const EntitySet *set)
{
    if (!set)
        return 0;
    for (size_t i = 0; i < set->n_persons; i++)
        CHECK(check_person(c, set->persons[i]));
    for (size_t i = 0; i < set->n_documents; i++)
        CHECK(check_document(c, set->documents[i]));
    for (size_t i = 0; i < set->n_vehicles; i++)
        CHECK(check_vehicle(c, set->vehicles[i]));
    for (size_t i = 0; i < set->n_organisations; i++)
        CHECK(check_organisation(set->organisations[i]));
    for (size_t i = 0; i < set->n_locations; i++)
        CHECK(check_location(set->locations[i]));
    for (size_t i = 0; i < set->n_events; i++)
        CHECK(check_event(c, set->events[i]));
    for (size_t i = 0; i < set->n_routes; i++)
        CHECK(check_route(c, set->routes[i]));
    for (size_t i = 0; i < set->n_comm_identifiers; i++)
        CHECK(check_comm(c, set->comm_identifiers[i]));
    return 0;
}

/* ------------------------------------------------------------------ governance and bodies */

static int check_governance(const Governance *g, struct vctx *c)
{
    REQUIRE(g != NULL);
    REQUIRE(g->handling_code != V(HANDLING_CODE, HANDLING_CODE_UNSPECIFIED));
    if (g->handling_code == V(HANDLING_CODE, HANDLING_CODE_H3))
        REQUIRE(free_text_ok(g->handling_conditions, LIA_PAYLOAD_SHORT_TEXT_MAX, true));
    else
        REQUIRE(is_empty(g->handling_conditions));
    REQUIRE(g->source_reliability != V(SOURCE_RELIABILITY, SOURCE_RELIABILITY_UNSPECIFIED));
    REQUIRE(g->information_accuracy != V(INFORMATION_ACCURACY, INFORMATION_ACCURACY_UNSPECIFIED));
    REQUIRE(g->classification_level != V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_UNSPECIFIED));
    REQUIRE(name_ok(g->classification_marking,
                    g->classification_level >=
                        V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_RESTRICTED)));
    REQUIRE(free_text_ok(g->purpose, LIA_PAYLOAD_SHORT_TEXT_MAX, true));
    REQUIRE(free_text_ok(g->legal_basis, LIA_PAYLOAD_SHORT_TEXT_MAX, true));
    REQUIRE(g->n_data_subject_categories <= 4);
    c->categories = 0;
    for (size_t i = 0; i < g->n_data_subject_categories; i++) {
        int cat = g->data_subject_categories[i];
        REQUIRE(cat > 0 && cat < 32 && !(c->categories & (1u << cat)));
        c->categories |= 1u << cat;
    }
    REQUIRE(g->data_basis != V(DATA_BASIS, DATA_BASIS_UNSPECIFIED));
    REQUIRE(language_ok(g->language));
    REQUIRE(code_ok(g->case_reference, false));
    REQUIRE(uinstant_ok(g->review_at, false) && uinstant_ok(g->erase_by, false));
    REQUIRE(g->review_at == 0 || g->erase_by == 0 || g->review_at <= g->erase_by);
    return 0;
}

static int check_offence_codes(char *const *codes, size_t n)
{
    REQUIRE(n <= LIA_PAYLOAD_CODES_MAX);
    for (size_t i = 0; i < n; i++)
        REQUIRE(code_ok(codes[i], true));
    return 0;
}

static int check_attachment(const Attachment *a)
{
    unsigned char digest[crypto_generichash_BYTES];
    REQUIRE(file_name_ok(a->name) && media_type_ok(a->media_type));
    REQUIRE(a->digest.len == crypto_generichash_BYTES);
    if (crypto_generichash(digest, sizeof digest, a->content.data, a->content.len, NULL, 0) != 0)
        return LIA_ERR_CRYPTO;
    REQUIRE(sodium_memcmp(digest, a->digest.data, sizeof digest) == 0);
    return 0;
}

static int check_body(const Payload *p, const struct vctx *c)
{
    const Governance *g = p->governance;
    switch (p->body_case) {
    case LIAISON__V1__PAYLOAD__BODY_CASE_ALERT: {
        const Liaison__V1__CaseAlert *b = p->case_alert;
        REQUIRE(b && !is_empty(g->case_reference));
        REQUIRE(name_ok(b->title, true) && free_text_ok(b->summary, LIA_PAYLOAD_TEXT_MAX, true));
        CHECK(check_offence_codes(b->offence_codes, b->n_offence_codes));
        REQUIRE(b->urgency != V(ALERT_URGENCY, ALERT_URGENCY_UNSPECIFIED));
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE: {
        const Liaison__V1__RouteIntelligence *b = p->route_intelligence;
        REQUIRE(b && name_ok(b->title, true));
        REQUIRE(free_text_ok(b->modus_operandi, LIA_PAYLOAD_TEXT_MAX, true));
        CHECK(check_offence_codes(b->offence_codes, b->n_offence_codes));
        REQUIRE(b->entities && b->entities->n_routes >= 1);
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE: {
        const Liaison__V1__AnalysisShare *b = p->analysis_share;
        REQUIRE(b && !is_empty(g->case_reference));
        REQUIRE(name_ok(b->title, true) && free_text_ok(b->analysis, LIA_PAYLOAD_TEXT_MAX, true));
        REQUIRE(b->n_attachments <= LIA_PAYLOAD_ATTACHMENTS_MAX);
        for (size_t i = 0; i < b->n_attachments; i++)
            CHECK(check_attachment(b->attachments[i]));
        if (b->n_attachments > 1) {
            char *names[LIA_PAYLOAD_ATTACHMENTS_MAX];
            for (size_t i = 0; i < b->n_attachments; i++)
                names[i] = b->attachments[i]->name;
            CHECK(require_distinct(names, b->n_attachments));
        }
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT: {
        const Liaison__V1__FalsifiedDocumentAlert *b = p->falsified_document_alert;
        REQUIRE(b && b->document);
        CHECK(check_document(c, b->document));
        REQUIRE(b->falsification_type != V(FALSIFICATION_TYPE, FALSIFICATION_TYPE_UNSPECIFIED));
        REQUIRE(resolves(c, b->detection_location_ref, ET_LOCATION, false));
        REQUIRE(uinstant_ok(b->detected_at, true));
        REQUIRE(free_text_ok(b->description, LIA_PAYLOAD_TEXT_MAX, false));
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_INFORMATION_REQUEST: {
        const Liaison__V1__InformationRequest *b = p->information_request;
        REQUIRE(b && token_ok(b->request_id, true));
        REQUIRE(free_text_ok(b->circumstances, LIA_PAYLOAD_TEXT_MAX, true));
        CHECK(check_offence_codes(b->offence_codes, b->n_offence_codes));
        REQUIRE(b->n_purposes >= 1 && b->n_purposes <= LIA_PAYLOAD_PURPOSES_MAX);
        for (size_t i = 0; i < b->n_purposes; i++) {
            const Liaison__V1__RequestPurpose *rp = b->purposes[i];
            REQUIRE(free_text_ok(rp->description, LIA_PAYLOAD_SHORT_TEXT_MAX, true));
            REQUIRE(rp->n_person_refs <= LIA_PAYLOAD_REFS_MAX);
            for (size_t k = 0; k < rp->n_person_refs; k++)
                REQUIRE(resolves(c, rp->person_refs[k], ET_PERSON, true));
            CHECK(require_distinct(rp->person_refs, rp->n_person_refs));
        }
        REQUIRE(free_text_ok(b->information_sought, LIA_PAYLOAD_TEXT_MAX, true));
        REQUIRE(free_text_ok(b->grounds_for_holding, LIA_PAYLOAD_TEXT_MAX, true));
        REQUIRE(free_text_ok(b->restrictions_on_use, LIA_PAYLOAD_TEXT_MAX, false));
        REQUIRE(b->urgency != V(REQUEST_URGENCY, REQUEST_URGENCY_UNSPECIFIED));
        if (b->urgency == V(REQUEST_URGENCY, REQUEST_URGENCY_NOT_URGENT))
            REQUIRE(b->n_urgency_grounds == 0);
        else
            REQUIRE(b->n_urgency_grounds >= 1 && b->n_urgency_grounds <= 4);
        unsigned seen = 0;
        for (size_t i = 0; i < b->n_urgency_grounds; i++) {
            int ug = b->urgency_grounds[i];
            REQUIRE(ug > 0 && ug < 32 && !(seen & (1u << ug)));
            seen |= 1u << ug;
        }
        REQUIRE(free_text_ok(b->urgency_explanation, LIA_PAYLOAD_TEXT_MAX, false));
        REQUIRE(is_empty(b->spoc_copy) || node_id_ok(b->spoc_copy));
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_RESPONSE: {
        const Liaison__V1__Response *b = p->response;
        REQUIRE(b && token_ok(b->request_id, true));
        REQUIRE(free_text_ok(b->content, LIA_PAYLOAD_TEXT_MAX, true));
        return check_entities(c, b->entities);
    }
    case LIAISON__V1__PAYLOAD__BODY_DELAY_NOTICE: {
        const Liaison__V1__DelayNotice *b = p->delay_notice;
        REQUIRE(b && token_ok(b->request_id, true));
        REQUIRE(b->expected_delay_seconds >= 1 &&
                b->expected_delay_seconds <= LIA_PAYLOAD_DELAY_MAX);
        REQUIRE(free_text_ok(b->reasons, LIA_PAYLOAD_TEXT_MAX, true));
        return 0;
    }
    case LIAISON__V1__PAYLOAD__BODY_REFUSAL: {
        const Liaison__V1__Refusal *b = p->refusal;
        REQUIRE(b && token_ok(b->request_id, true));
        REQUIRE(b->ground != V(REFUSAL_GROUND, REFUSAL_GROUND_UNSPECIFIED));
        REQUIRE(free_text_ok(b->explanation, LIA_PAYLOAD_TEXT_MAX, false));
        return 0;
    }
    case LIAISON__V1__PAYLOAD__BODY_RECEIPT: {
        const Liaison__V1__Receipt *b = p->receipt;
        REQUIRE(b && b->message_id.len == 16);
        REQUIRE(token_ok(b->request_id, false));
        REQUIRE(uinstant_ok(b->received_at, true));
        return 0;
    }
    default:
        return LIA_ERR_INVALID;
    }
}

/* The entity set of the body, if it has one. */
static const EntitySet *body_entities(const Payload *p)
{
    switch (p->body_case) {
    case LIAISON__V1__PAYLOAD__BODY_CASE_ALERT:
        return p->case_alert ? p->case_alert->entities : NULL;
    case LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE:
        return p->route_intelligence ? p->route_intelligence->entities : NULL;
    case LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE:
        return p->analysis_share ? p->analysis_share->entities : NULL;
    case LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT:
        return p->falsified_document_alert ? p->falsified_document_alert->entities : NULL;
    case LIAISON__V1__PAYLOAD__BODY_INFORMATION_REQUEST:
        return p->information_request ? p->information_request->entities : NULL;
    case LIAISON__V1__PAYLOAD__BODY_RESPONSE:
        return p->response ? p->response->entities : NULL;
    default:
        return NULL;
    }
}

/*
 * Everything lia_payload_validate checks; generic says what check_generic already found (0, or
 * LIA_ERR_INVALID) when the decoder ran it, or -1 to run it here.
 */
static int validate(const Liaison__V1__Payload *p, int generic)
{
    struct vctx c = {0};
    int rc;
    if (!p || p->base.descriptor != &liaison__v1__payload__descriptor)
        return LIA_ERR_INVALID;
    if (p->version != LIA_PAYLOAD_VERSION)
        return LIA_ERR_VERSION;
    if (sodium_init() < 0)
        return LIA_ERR_CRYPTO;
    CHECK(generic >= 0 ? generic : check_generic(&p->base, LIA_ERR_INVALID, NULL));
    REQUIRE(text_ok(p->officer, 1, LIA_PAYLOAD_CODE_MAX, false));
    REQUIRE(p->body_case != LIAISON__V1__PAYLOAD__BODY__NOT_SET);
    CHECK(check_governance(p->governance, &c));
    rc = build_ids(&c, body_entities(p),
                   p->body_case == LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT &&
                           p->falsified_document_alert
                       ? p->falsified_document_alert->document
                       : NULL);
    if (rc == 0)
        rc = check_body(p, &c);
    free(c.ids);
    return rc;
}

int lia_payload_validate(const Liaison__V1__Payload *p)
{
    return validate(p, -1);
}

/* ------------------------------------------------------------------ decoding */

/*
 * A payload decodes into an arena (arena.h) of its own, on the heap: protobuf-c allocates the
 * top-level message first, so the decoded Payload sits at the start of the arena's first
 * buffer, and lia_payload_free finds the arena from it. The budget (16 times the size plus
 * 4 MiB) stops memory amplification (a few wire bytes can make protobuf-c allocate a whole
 * struct).
 */
static lia_arena *arena_of(Liaison__V1__Payload *p)
{
    return (lia_arena *)(void *)((unsigned char *)p - offsetof(lia_arena, first));
}

int lia_payload_decode(const uint8_t *buf, size_t len, Liaison__V1__Payload **out)
{
    return lia_payload_decode_ex(buf, len, 0, out);
}

int lia_payload_decode_ex(const uint8_t *buf, size_t len, int flags, Liaison__V1__Payload **out)
{
    static const uint8_t empty[1];
    lia_arena *a;
    Liaison__V1__Payload *p;
    int rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    if (len > LIA_PAYLOAD_MAX)
        return LIA_ERR_TOO_LARGE;
    if (!buf) {
        if (len != 0)
            return LIA_ERR_INVALID;
        buf = empty;
    }
    if (!(a = malloc(sizeof *a)))
        return LIA_ERR_NOMEM;
    lia_arena_init(a, 16 * len + (4u << 20));
    p = liaison__v1__payload__unpack(&a->pb, len, buf);
    if (!p || (void *)p != (void *)a->first) { /* else lia_payload_free could not find a */
        rc = lia_arena_exhausted(a) ? LIA_ERR_TOO_LARGE : LIA_ERR_DECODE;
        lia_arena_release(a);
        free(a);
        return rc;
    }
    /* One walk: an unknown field anywhere is a decoding error (it decides over any other
     * finding), the rest of what it finds waits for its turn in validate. */
    bool invalid = false;
    rc = check_generic(&p->base, LIA_ERR_DECODE, &invalid);
    if (rc == 0 && !(flags & LIA_PAYLOAD_REENCODED) && !lia_pb_canonical(&p->base, buf, len))
        rc = LIA_ERR_DECODE;
    if (rc == 0)
        rc = validate(p, invalid ? LIA_ERR_INVALID : 0);
    if (rc != 0) {
        lia_payload_free(&p);
        return rc;
    }
    *out = p;
    return 0;
}

void lia_payload_free(Liaison__V1__Payload **p)
{
    lia_arena *a;
    if (!p || !*p)
        return;
    a = arena_of(*p);
    lia_arena_release(a);
    free(a);
    *p = NULL;
}

/* ------------------------------------------------------------------ example */

int lia_payload_example_case_alert(const char *case_ref, const char *officer, uint8_t **out,
                                   size_t *out_len)
{
    Liaison__V1__DataSubjectCategory cats[] = {
        V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_SUSPECT)};
    char *nationalities[] = {"AL"};
    char *aliases[] = {"Dritan the Driver"};
    char *offences[] = {"0902", "0903"};
    Governance gov = LIAISON__V1__GOVERNANCE__INIT;
    Person suspect = LIAISON__V1__PERSON__INIT;
    Document passport = LIAISON__V1__DOCUMENT__INIT;
    Vehicle van = LIAISON__V1__VEHICLE__INIT;
    Location loc[3] = {LIAISON__V1__LOCATION__INIT, LIAISON__V1__LOCATION__INIT,
                       LIAISON__V1__LOCATION__INIT};
    Liaison__V1__Coordinates coords[3] = {LIAISON__V1__COORDINATES__INIT,
                                          LIAISON__V1__COORDINATES__INIT,
                                          LIAISON__V1__COORDINATES__INIT};
    RouteLeg legs[2] = {LIAISON__V1__ROUTE_LEG__INIT, LIAISON__V1__ROUTE_LEG__INIT};
    Route route = LIAISON__V1__ROUTE__INIT;
    EntitySet ents = LIAISON__V1__ENTITY_SET__INIT;
    Liaison__V1__CaseAlert alert = LIAISON__V1__CASE_ALERT__INIT;
    Payload p = LIAISON__V1__PAYLOAD__INIT;
    Person *persons[] = {&suspect};
    Document *documents[] = {&passport};
    Vehicle *vehicles[] = {&van};
    Location *locations[] = {&loc[0], &loc[1], &loc[2]};
    RouteLeg *legp[] = {&legs[0], &legs[1]};
    Route *routes[] = {&route};
    static const struct {
        const char *id, *name, *country;
        int32_t lat, lon;
    } places[3] = {{"l1", "Kapitan Andreevo border crossing point", "BG", 41718000, 26322000},
                   {"l2", "Nickelsdorf motorway service area", "AT", 47943000, 17068000},
                   {"l3", "Munich, Fröttmaning park-and-ride", "DE", 48213000, 11616000}};
    size_t len;
    int rc;

    if (!case_ref || !officer || !out || !out_len)
        return LIA_ERR_INVALID;
    *out = NULL;
    *out_len = 0;

    gov.handling_code = V(HANDLING_CODE, HANDLING_CODE_H2);
    gov.source_reliability = V(SOURCE_RELIABILITY, SOURCE_RELIABILITY_B);
    gov.information_accuracy = V(INFORMATION_ACCURACY, INFORMATION_ACCURACY_2);
    gov.classification_level = V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_RESTRICTED);
    gov.classification_marking = "RESTREINT UE/EU RESTRICTED";
    gov.tlp = V(TLP, TLP_AMBER);
    gov.purpose = "Preventing and combating migrant smuggling by the network under investigation";
    gov.legal_basis = "Council Framework Decision 2006/960/JHA as replaced by Directive (EU) "
                      "2023/977, and national law on police cooperation";
    gov.n_data_subject_categories = 1;
    gov.data_subject_categories = cats;
    gov.data_basis = V(DATA_BASIS, DATA_BASIS_MIXED);
    gov.language = "en";
    gov.case_reference = (char *)case_ref;
    gov.review_at = 1893456000; /* 2030-01-01 */

    suspect.id = "p1";
    suspect.role = V(PERSON_ROLE, PERSON_ROLE_SUSPECT);
    suspect.family_name = "HOXHA";
    suspect.given_names = "Dritan";
    suspect.n_aliases = 1;
    suspect.aliases = aliases;
    suspect.date_of_birth = "1984-03-17";
    suspect.place_of_birth = "Durrës";
    suspect.country_of_birth = "AL";
    suspect.n_nationalities = 1;
    suspect.nationalities = nationalities;
    suspect.sex = V(SEX, SEX_MALE);
    suspect.profession = "Lorry driver";
    suspect.identifying_characteristics = "Tattoo of an eagle on the left forearm";
    suspect.data_subject_category = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_SUSPECT);
    suspect.data_basis = V(DATA_BASIS, DATA_BASIS_FACT);

    passport.id = "d1";
    passport.type = V(DOCUMENT_TYPE, DOCUMENT_TYPE_PASSPORT);
    passport.number = "BA1234567";
    passport.issuing_country = "AL";
    passport.nationality = "AL";
    passport.valid_from = "2019-06-01";
    passport.valid_until = "2029-05-31";
    passport.holder_ref = "p1";

    van.id = "v1";
    van.plate = "B 123 XY";
    van.country = "RO";
    van.make = "Mercedes-Benz";
    van.model = "Sprinter";
    van.colour = "White";
    van.vin = "WDB9066331S123456";
    van.owner_ref = "p1";

    for (int i = 0; i < 3; i++) {
        loc[i].id = (char *)places[i].id;
        loc[i].name = (char *)places[i].name;
        loc[i].country = (char *)places[i].country;
        coords[i].latitude_microdeg = places[i].lat;
        coords[i].longitude_microdeg = places[i].lon;
        coords[i].accuracy_m = 500;
        loc[i].coordinates = &coords[i];
    }

    legs[0].from_ref = "l1";
    legs[0].to_ref = "l2";
    legs[0].departure = 1718690400; /* 2024-06-18 06:00 UTC */
    legs[0].arrival = 1718744400;
    legs[0].transport_mode = V(TRANSPORT_MODE, TRANSPORT_MODE_ROAD);
    legs[0].vehicle_ref = "v1";
    legs[1].from_ref = "l2";
    legs[1].to_ref = "l3";
    legs[1].departure = 1718748000;
    legs[1].arrival = 1718766000;
    legs[1].transport_mode = V(TRANSPORT_MODE, TRANSPORT_MODE_ROAD);
    legs[1].vehicle_ref = "v1";
    route.id = "r1";
    route.name = "Balkan route, eastern branch";
    route.n_legs = 2;
    route.legs = legp;
    route.description = "Migrants hidden behind a false wall in the cargo area";

    ents.n_persons = 1;
    ents.persons = persons;
    ents.n_documents = 1;
    ents.documents = documents;
    ents.n_vehicles = 1;
    ents.vehicles = vehicles;
    ents.n_locations = 3;
    ents.locations = locations;
    ents.n_routes = 1;
    ents.routes = routes;

    alert.title = "Van transporting smuggled migrants expected at the German border";
    alert.summary = "A van registered in Romania, driven by the suspect, is expected to carry "
                    "about twelve smuggled migrants from Bulgaria to Germany through Austria.\n"
                    "The driver uses a genuine Albanian passport.";
    alert.n_offence_codes = 2;
    alert.offence_codes = offences;
    alert.entities = &ents;
    alert.urgency = V(ALERT_URGENCY, ALERT_URGENCY_PRIORITY);

    p.version = LIA_PAYLOAD_VERSION;
    p.officer = (char *)officer;
    p.governance = &gov;
    p.body_case = LIAISON__V1__PAYLOAD__BODY_CASE_ALERT;
    p.case_alert = &alert;

    rc = lia_payload_validate(&p);
    if (rc != 0)
        return rc == LIA_ERR_NOMEM ? rc : LIA_ERR_INVALID;
    len = liaison__v1__payload__get_packed_size(&p);
    *out = malloc(len ? len : 1);
    if (!*out)
        return LIA_ERR_NOMEM;
    *out_len = liaison__v1__payload__pack(&p, *out);
    return 0;
}
