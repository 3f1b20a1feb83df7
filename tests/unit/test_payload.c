/*
 * Tests of lib/payload.c: a valid example of every payload kind validates and survives
 * encode/decode; each family of validation rules is refused with the expected error; the
 * decoder refuses oversize, truncated, garbage, non-canonical input and unknown fields, and
 * bounds the memory a small input can make it allocate.
 *
 * With LIA_WRITE_CORPUS=<dir> in the environment, test_every_kind also writes the serialised
 * example of each kind to <dir>/<kind>.pb (the fuzz seed corpus in tests/fuzz/corpus/payload).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "error.h"
#include "payload.h"
#include "testutil.h"
#include "../common/utf8_ref.h"

#define V(e, x) LIAISON__V1__##e##__##x
#define BODY(x) LIAISON__V1__PAYLOAD__BODY_##x

/* Storage for one payload of any kind with a complete entity set (every entity type). */
struct fx {
    Liaison__V1__Payload p;
    Liaison__V1__Governance g;
    Liaison__V1__DataSubjectCategory cats[2];
    Liaison__V1__EntitySet ents;
    Liaison__V1__Person person[2];
    Liaison__V1__Person *persons[2];
    char *nationalities[2];
    char *aliases[1];
    Liaison__V1__Document doc;
    Liaison__V1__Document *docs[1];
    Liaison__V1__Vehicle veh;
    Liaison__V1__Vehicle *vehs[1];
    Liaison__V1__Organisation org;
    Liaison__V1__Organisation *orgs[1];
    Liaison__V1__Location loc[2];
    Liaison__V1__Location *locs[2];
    Liaison__V1__Coordinates coords;
    Liaison__V1__Event ev;
    Liaison__V1__Event *evs[1];
    char *participants[2];
    Liaison__V1__RouteLeg leg;
    Liaison__V1__RouteLeg *legs[1];
    Liaison__V1__Route route;
    Liaison__V1__Route *routes[1];
    Liaison__V1__CommunicationIdentifier comm;
    Liaison__V1__CommunicationIdentifier *comms[1];
    char *offences[1];
    Liaison__V1__CaseAlert ca;
    Liaison__V1__RouteIntelligence ri;
    Liaison__V1__AnalysisShare as;
    Liaison__V1__Attachment att[2];
    Liaison__V1__Attachment *atts[2];
    uint8_t digest[2][32];
    Liaison__V1__FalsifiedDocumentAlert fda;
    Liaison__V1__Document fdoc;
    Liaison__V1__InformationRequest ir;
    Liaison__V1__RequestPurpose purpose;
    Liaison__V1__RequestPurpose *purposes[1];
    char *purpose_refs[2];
    Liaison__V1__UrgencyGround grounds[2];
    Liaison__V1__Response resp;
    Liaison__V1__DelayNotice dn;
    Liaison__V1__Refusal ref;
    Liaison__V1__Receipt rcpt;
    uint8_t msgid[16];
};

static const char attachment_text[] = "date;route;persons\n2024-06-18;BG-AT-DE;12\n";

static void fx_entities(struct fx *f)
{
    Liaison__V1__EntitySet ents = LIAISON__V1__ENTITY_SET__INIT;
    Liaison__V1__Person person = LIAISON__V1__PERSON__INIT;
    Liaison__V1__Document doc = LIAISON__V1__DOCUMENT__INIT;
    Liaison__V1__Vehicle veh = LIAISON__V1__VEHICLE__INIT;
    Liaison__V1__Organisation org = LIAISON__V1__ORGANISATION__INIT;
    Liaison__V1__Location loc = LIAISON__V1__LOCATION__INIT;
    Liaison__V1__Coordinates coords = LIAISON__V1__COORDINATES__INIT;
    Liaison__V1__Event ev = LIAISON__V1__EVENT__INIT;
    Liaison__V1__RouteLeg leg = LIAISON__V1__ROUTE_LEG__INIT;
    Liaison__V1__Route route = LIAISON__V1__ROUTE__INIT;
    Liaison__V1__CommunicationIdentifier comm = LIAISON__V1__COMMUNICATION_IDENTIFIER__INIT;

    f->person[0] = person;
    f->person[0].id = "p1";
    f->person[0].role = V(PERSON_ROLE, PERSON_ROLE_FACILITATOR);
    f->person[0].family_name = "MÜLLER";
    f->person[0].given_names = "Jörg Karl";
    f->aliases[0] = "Der Fahrer";
    f->person[0].n_aliases = 1;
    f->person[0].aliases = f->aliases;
    f->person[0].date_of_birth = "1979-02";
    f->nationalities[0] = "DE";
    f->nationalities[1] = "TR";
    f->person[0].n_nationalities = 2;
    f->person[0].nationalities = f->nationalities;
    f->person[0].sex = V(SEX, SEX_MALE);
    f->person[0].residence_ref = "l1";
    f->person[0].data_subject_category = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_SUSPECT);
    f->person[1] = person;
    f->person[1].id = "p2";
    f->person[1].role = V(PERSON_ROLE, PERSON_ROLE_VICTIM);
    f->person[1].identifying_characteristics = "Minor, about 15 years old, speaks Pashto";
    f->person[1].data_subject_category = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_VICTIM);
    f->persons[0] = &f->person[0];
    f->persons[1] = &f->person[1];

    f->doc = doc;
    f->doc.id = "d1";
    f->doc.type = V(DOCUMENT_TYPE, DOCUMENT_TYPE_IDENTITY_CARD);
    f->doc.number = "L01X00T47";
    f->doc.issuing_country = "DE";
    f->doc.valid_from = "2015-01-10";
    f->doc.valid_until = "2025-01-09";
    f->doc.holder_ref = "p1";
    f->docs[0] = &f->doc;

    f->veh = veh;
    f->veh.id = "v1";
    f->veh.plate = "M-AB 1234";
    f->veh.country = "DE";
    f->veh.make = "Ford";
    f->veh.vin = "WF0XXXTTGXKA12345";
    f->veh.owner_ref = "o1";
    f->vehs[0] = &f->veh;

    f->org = org;
    f->org.id = "o1";
    f->org.name = "Schnell Transporte GmbH";
    f->org.type = V(ORGANISATION_TYPE, ORGANISATION_TYPE_TRANSPORT_OPERATOR);
    f->org.country = "DE";
    f->org.registration_number = "HRB 123456";
    f->orgs[0] = &f->org;

    f->coords = coords;
    f->coords.latitude_microdeg = 48137154;
    f->coords.longitude_microdeg = 11576124;
    f->loc[0] = loc;
    f->loc[0].id = "l1";
    f->loc[0].name = "München";
    f->loc[0].country = "DE";
    f->loc[0].coordinates = &f->coords;
    f->loc[1] = loc;
    f->loc[1].id = "l2";
    f->loc[1].address = "Autoroute A1, sortie 12\nLyon";
    f->locs[0] = &f->loc[0];
    f->locs[1] = &f->loc[1];

    f->ev = ev;
    f->ev.id = "e1";
    f->ev.type = V(EVENT_TYPE, EVENT_TYPE_INTERCEPTION);
    f->ev.time = 1718700000;
    f->ev.location_ref = "l2";
    f->participants[0] = "p1";
    f->participants[1] = "v1";
    f->ev.n_participant_refs = 2;
    f->ev.participant_refs = f->participants;
    f->evs[0] = &f->ev;

    f->leg = leg;
    f->leg.from_ref = "l2";
    f->leg.to_ref = "l1";
    f->leg.departure = 1718600000;
    f->leg.arrival = 1718650000;
    f->leg.transport_mode = V(TRANSPORT_MODE, TRANSPORT_MODE_ROAD);
    f->leg.vehicle_ref = "v1";
    f->legs[0] = &f->leg;
    f->route = route;
    f->route.id = "r1";
    f->route.n_legs = 1;
    f->route.legs = f->legs;
    f->routes[0] = &f->route;

    f->comm = comm;
    f->comm.id = "c1";
    f->comm.type = V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_PHONE);
    f->comm.value = "+4915112345678";
    f->comm.owner_ref = "p1";
    f->comms[0] = &f->comm;

    f->ents = ents;
    f->ents.n_persons = 2;
    f->ents.persons = f->persons;
    f->ents.n_documents = 1;
    f->ents.documents = f->docs;
    f->ents.n_vehicles = 1;
    f->ents.vehicles = f->vehs;
    f->ents.n_organisations = 1;
    f->ents.organisations = f->orgs;
    f->ents.n_locations = 2;
    f->ents.locations = f->locs;
    f->ents.n_events = 1;
    f->ents.events = f->evs;
    f->ents.n_routes = 1;
    f->ents.routes = f->routes;
    f->ents.n_comm_identifiers = 1;
    f->ents.comm_identifiers = f->comms;
}

/* Fills f with a valid payload of the given kind. The fixture is self-referencing: do not
 * copy it. */
static void fx_make(struct fx *f, Liaison__V1__Payload__BodyCase kind)
{
    Liaison__V1__Payload p = LIAISON__V1__PAYLOAD__INIT;
    Liaison__V1__Governance g = LIAISON__V1__GOVERNANCE__INIT;
    memset(f, 0, sizeof *f);
    fx_entities(f);

    f->g = g;
    f->g.handling_code = V(HANDLING_CODE, HANDLING_CODE_H1);
    f->g.source_reliability = V(SOURCE_RELIABILITY, SOURCE_RELIABILITY_A);
    f->g.information_accuracy = V(INFORMATION_ACCURACY, INFORMATION_ACCURACY_3);
    f->g.classification_level = V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_CONFIDENTIAL);
    f->g.classification_marking = "CONFIDENTIEL UE/EU CONFIDENTIAL";
    f->g.tlp = V(TLP, TLP_RED);
    f->g.purpose = "Investigation of a migrant-smuggling network";
    f->g.legal_basis = "Directive (EU) 2023/977";
    f->cats[0] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_SUSPECT);
    f->cats[1] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_VICTIM);
    f->g.n_data_subject_categories = 2;
    f->g.data_subject_categories = f->cats;
    f->g.data_basis = V(DATA_BASIS, DATA_BASIS_FACT);
    f->g.language = "de-AT";
    f->g.case_reference = "AT-BK 2024/0815";
    f->g.review_at = 1800000000;
    f->g.erase_by = 1900000000;

    f->p = p;
    f->p.version = 1;
    f->p.officer = "kommissarin.huber";
    f->p.governance = &f->g;
    f->p.body_case = kind;
    f->offences[0] = "0902";

    switch (kind) {
    case BODY(CASE_ALERT): {
        Liaison__V1__CaseAlert b = LIAISON__V1__CASE_ALERT__INIT;
        f->ca = b;
        f->ca.title = "Lorry with hidden migrants";
        f->ca.summary = "Twelve persons found in a sealed compartment.";
        f->ca.n_offence_codes = 1;
        f->ca.offence_codes = f->offences;
        f->ca.entities = &f->ents;
        f->ca.urgency = V(ALERT_URGENCY, ALERT_URGENCY_IMMEDIATE);
        f->p.case_alert = &f->ca;
        break;
    }
    case BODY(ROUTE_INTELLIGENCE): {
        Liaison__V1__RouteIntelligence b = LIAISON__V1__ROUTE_INTELLIGENCE__INIT;
        f->ri = b;
        f->ri.title = "Route through the Alps";
        f->ri.modus_operandi = "Migrants picked up at night near the motorway exit.";
        f->ri.n_offence_codes = 1;
        f->ri.offence_codes = f->offences;
        f->ri.entities = &f->ents;
        f->p.route_intelligence = &f->ri;
        break;
    }
    case BODY(ANALYSIS_SHARE): {
        Liaison__V1__AnalysisShare b = LIAISON__V1__ANALYSIS_SHARE__INIT;
        Liaison__V1__Attachment a = LIAISON__V1__ATTACHMENT__INIT;
        f->as = b;
        f->as.title = "Network analysis, June 2024";
        f->as.analysis = "The network uses three drivers in rotation.";
        for (int i = 0; i < 2; i++) {
            f->att[i] = a;
            f->att[i].name = i == 0 ? "crossings.csv" : "empty.txt";
            f->att[i].media_type = i == 0 ? "text/csv" : "text/plain";
            f->att[i].content.data = i == 0 ? (uint8_t *)attachment_text : NULL;
            f->att[i].content.len = i == 0 ? sizeof attachment_text - 1 : 0;
            crypto_generichash(f->digest[i], 32, f->att[i].content.data, f->att[i].content.len,
                               NULL, 0);
            f->att[i].digest.data = f->digest[i];
            f->att[i].digest.len = 32;
            f->atts[i] = &f->att[i];
        }
        f->as.n_attachments = 2;
        f->as.attachments = f->atts;
        f->as.entities = &f->ents;
        f->p.analysis_share = &f->as;
        break;
    }
    case BODY(FALSIFIED_DOCUMENT_ALERT): {
        Liaison__V1__FalsifiedDocumentAlert b = LIAISON__V1__FALSIFIED_DOCUMENT_ALERT__INIT;
        Liaison__V1__Document d = LIAISON__V1__DOCUMENT__INIT;
        f->fdoc = d;
        f->fdoc.id = "fd1";
        f->fdoc.type = V(DOCUMENT_TYPE, DOCUMENT_TYPE_PASSPORT);
        f->fdoc.number = "C4X9R2T71";
        f->fdoc.issuing_country = "FR";
        f->fdoc.holder_ref = "p1";
        f->fda = b;
        f->fda.document = &f->fdoc;
        f->fda.falsification_type = V(FALSIFICATION_TYPE, FALSIFICATION_TYPE_FORGERY);
        f->fda.detection_location_ref = "l1";
        f->fda.detected_at = 1718700000;
        f->fda.description = "Biographical page replaced; laminate shows bubbles.";
        f->fda.entities = &f->ents;
        f->p.falsified_document_alert = &f->fda;
        break;
    }
    case BODY(INFORMATION_REQUEST): {
        Liaison__V1__InformationRequest b = LIAISON__V1__INFORMATION_REQUEST__INIT;
        Liaison__V1__RequestPurpose rp = LIAISON__V1__REQUEST_PURPOSE__INIT;
        f->purpose = rp;
        f->purpose.description = "Identify the driver";
        f->purpose_refs[0] = "p1";
        f->purpose_refs[1] = "p2";
        f->purpose.n_person_refs = 2;
        f->purpose.person_refs = f->purpose_refs;
        f->purposes[0] = &f->purpose;
        f->ir = b;
        f->ir.request_id = "AT-SPOC/2024/17";
        f->ir.circumstances = "Smuggling of twelve migrants on 18 June 2024.";
        f->ir.n_offence_codes = 1;
        f->ir.offence_codes = f->offences;
        f->ir.n_purposes = 1;
        f->ir.purposes = f->purposes;
        f->ir.information_sought = "Registered keeper of the vehicle and his addresses.";
        f->ir.grounds_for_holding = "The vehicle is registered in Germany.";
        f->ir.restrictions_on_use = "Not for use as evidence.";
        f->ir.urgency = V(REQUEST_URGENCY, REQUEST_URGENCY_URGENT_DIRECT);
        f->grounds[0] = V(URGENCY_GROUND, URGENCY_GROUND_LIFE_OR_INTEGRITY);
        f->ir.n_urgency_grounds = 1;
        f->ir.urgency_grounds = f->grounds;
        f->ir.judicial_authorisation_needed = 0;
        f->ir.spoc_copy = "at-spoc";
        f->ir.entities = &f->ents;
        f->p.information_request = &f->ir;
        break;
    }
    case BODY(RESPONSE): {
        Liaison__V1__Response b = LIAISON__V1__RESPONSE__INIT;
        f->resp = b;
        f->resp.request_id = "AT-SPOC/2024/17";
        f->resp.content = "The keeper is the company below.";
        f->resp.entities = &f->ents;
        f->resp.final = 1;
        f->p.response = &f->resp;
        break;
    }
    case BODY(DELAY_NOTICE): {
        Liaison__V1__DelayNotice b = LIAISON__V1__DELAY_NOTICE__INIT;
        f->dn = b;
        f->dn.request_id = "AT-SPOC/2024/17";
        f->dn.expected_delay_seconds = 2 * 86400;
        f->dn.reasons = "A judicial authorisation is needed.";
        f->dn.judicial_authorisation = 1;
        f->p.delay_notice = &f->dn;
        break;
    }
    case BODY(REFUSAL): {
        Liaison__V1__Refusal b = LIAISON__V1__REFUSAL__INIT;
        f->ref = b;
        f->ref.request_id = "AT-SPOC/2024/17";
        f->ref.ground = V(REFUSAL_GROUND, REFUSAL_GROUND_MINOR_OFFENCE);
        f->ref.explanation = "Not an offence under our law.";
        f->p.refusal = &f->ref;
        break;
    }
    case BODY(RECEIPT): {
        Liaison__V1__Receipt b = LIAISON__V1__RECEIPT__INIT;
        f->rcpt = b;
        for (int i = 0; i < 16; i++)
            f->msgid[i] = (uint8_t)(0xA0 + i);
        f->rcpt.message_id.data = f->msgid;
        f->rcpt.message_id.len = 16;
        f->rcpt.request_id = "AT-SPOC/2024/17";
        f->rcpt.received_at = 1718700000;
        f->p.receipt = &f->rcpt;
        break;
    }
    default:
        fail();
    }
}

static struct fx *fx_new(Liaison__V1__Payload__BodyCase kind)
{
    struct fx *f = malloc(sizeof *f);
    assert_non_null(f);
    fx_make(f, kind);
    assert_int_equal(lia_payload_validate(&f->p), 0);
    return f;
}

/* Serialises f's payload into a malloc'd buffer. */
static uint8_t *pack(const Liaison__V1__Payload *p, size_t *len)
{
    *len = liaison__v1__payload__get_packed_size(p);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(liaison__v1__payload__pack(p, buf), *len);
    return buf;
}

static int decode_rc(const uint8_t *buf, size_t len)
{
    Liaison__V1__Payload *out = (Liaison__V1__Payload *)&out; /* must be reset to NULL */
    int rc = lia_payload_decode(buf, len, &out);
    if (rc == 0) {
        assert_non_null(out);
        lia_payload_free(&out);
    }
    assert_null(out);
    return rc;
}

#define INVALID(f) assert_int_equal(lia_payload_validate(&(f)->p), LIA_ERR_INVALID)
#define VALID(f)   assert_int_equal(lia_payload_validate(&(f)->p), 0)

/* ------------------------------------------------------------------ valid payloads */

static const struct {
    Liaison__V1__Payload__BodyCase kind;
    const char *name;
} kinds[] = {
    {BODY(CASE_ALERT), "case_alert"},
    {BODY(ROUTE_INTELLIGENCE), "route_intelligence"},
    {BODY(ANALYSIS_SHARE), "analysis_share"},
    {BODY(FALSIFIED_DOCUMENT_ALERT), "falsified_document_alert"},
    {BODY(INFORMATION_REQUEST), "information_request"},
    {BODY(RESPONSE), "response"},
    {BODY(DELAY_NOTICE), "delay_notice"},
    {BODY(REFUSAL), "refusal"},
    {BODY(RECEIPT), "receipt"},
};

static void test_every_kind(void **state)
{
    const char *corpus = getenv("LIA_WRITE_CORPUS");
    (void)state;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct fx *f = fx_new(kinds[i].kind);
        size_t len;
        uint8_t *buf = pack(&f->p, &len);
        Liaison__V1__Payload *out = NULL;
        assert_int_equal(lia_payload_decode(buf, len, &out), 0);
        assert_non_null(out);
        assert_int_equal(out->body_case, kinds[i].kind);
        assert_string_equal(out->officer, "kommissarin.huber");
        assert_int_equal(out->governance->handling_code, V(HANDLING_CODE, HANDLING_CODE_H1));
        assert_string_equal(out->governance->case_reference, "AT-BK 2024/0815");
        /* Re-encoding the decoded message gives the same bytes. */
        size_t len2;
        uint8_t *buf2 = pack(out, &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        if (corpus && *corpus) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.pb", corpus, kinds[i].name);
            tu_write_file(path, buf, len, 0644);
        }
        free(buf2);
        lia_payload_free(&out);
        assert_null(out);
        free(buf);
        free(f);
    }
}

static void test_decoded_fields(void **state)
{
    struct fx *f = fx_new(BODY(ANALYSIS_SHARE));
    size_t len;
    uint8_t *buf = pack(&f->p, &len);
    Liaison__V1__Payload *out = NULL;
    (void)state;
    assert_int_equal(lia_payload_decode(buf, len, &out), 0);
    assert_int_equal(out->analysis_share->n_attachments, 2);
    assert_int_equal(out->analysis_share->attachments[0]->content.len, sizeof attachment_text - 1);
    assert_memory_equal(out->analysis_share->attachments[0]->content.data, attachment_text,
                        sizeof attachment_text - 1);
    assert_int_equal(out->analysis_share->entities->n_persons, 2);
    assert_string_equal(out->analysis_share->entities->persons[0]->family_name, "MÜLLER");
    assert_int_equal(out->analysis_share->entities->locations[0]->coordinates->latitude_microdeg,
                     48137154);
    lia_payload_free(&out);
    lia_payload_free(&out);
    lia_payload_free(NULL);
    free(buf);
    free(f);
}

static void test_example_case_alert(void **state)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    Liaison__V1__Payload *out = NULL;
    (void)state;
    assert_int_equal(lia_payload_example_case_alert("DE-BKA 2024/4711", "officer.k", &buf, &len),
                     0);
    assert_non_null(buf);
    assert_true(len > 200 && len < 4096);
    assert_int_equal(lia_payload_decode(buf, len, &out), 0);
    assert_int_equal(out->body_case, BODY(CASE_ALERT));
    assert_string_equal(out->governance->case_reference, "DE-BKA 2024/4711");
    assert_string_equal(out->officer, "officer.k");
    const Liaison__V1__EntitySet *e = out->case_alert->entities;
    assert_int_equal(e->n_persons, 1);
    assert_int_equal(e->persons[0]->role, V(PERSON_ROLE, PERSON_ROLE_SUSPECT));
    assert_int_equal(e->n_documents, 1);
    assert_int_equal(e->n_vehicles, 1);
    assert_int_equal(e->n_routes, 1);
    assert_true(e->routes[0]->n_legs >= 1);
    lia_payload_free(&out);
    free(buf);

    buf = (uint8_t *)&buf;
    assert_int_equal(lia_payload_example_case_alert("DE-BKA 2024/4711", "", &buf, &len),
                     LIA_ERR_INVALID);
    assert_null(buf);
    assert_int_equal(lia_payload_example_case_alert("bad\nref", "officer.k", &buf, &len),
                     LIA_ERR_INVALID);
    assert_int_equal(lia_payload_example_case_alert(NULL, "officer.k", &buf, &len),
                     LIA_ERR_INVALID);
}

/* ------------------------------------------------------------------ validation rules */

static void test_version_and_body(void **state)
{
    struct fx *f = fx_new(BODY(RECEIPT));
    (void)state;
    f->p.version = 0;
    assert_int_equal(lia_payload_validate(&f->p), LIA_ERR_VERSION);
    f->p.version = 2;
    assert_int_equal(lia_payload_validate(&f->p), LIA_ERR_VERSION);
    f->p.version = 1;
    VALID(f);
    f->p.body_case = LIAISON__V1__PAYLOAD__BODY__NOT_SET;
    INVALID(f);
    f->p.body_case = BODY(RECEIPT);
    f->p.receipt = NULL;
    INVALID(f);
    assert_int_equal(lia_payload_validate(NULL), LIA_ERR_INVALID);
    free(f);
}

static void test_officer(void **state)
{
    struct fx *f = fx_new(BODY(RECEIPT));
    char longer[66];
    (void)state;
    memset(longer, 'a', 64);
    longer[64] = '\0';
    f->p.officer = longer;
    VALID(f);
    longer[64] = 'a';
    longer[65] = '\0';
    INVALID(f);
    f->p.officer = "";
    INVALID(f);
    f->p.officer = "two\nlines";
    INVALID(f);
    free(f);
}

static void test_governance(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    (void)state;
    f->p.governance = NULL;
    INVALID(f);
    f->p.governance = &f->g;
    VALID(f);

#define MUTATE(field, bad)                                                                         \
    do {                                                                                           \
        __typeof__(f->g.field) saved_ = f->g.field;                                                \
        f->g.field = bad;                                                                          \
        INVALID(f);                                                                                \
        f->g.field = saved_;                                                                       \
        VALID(f);                                                                                  \
    } while (0)
    MUTATE(handling_code, V(HANDLING_CODE, HANDLING_CODE_UNSPECIFIED));
    MUTATE(handling_code, (Liaison__V1__HandlingCode)5);       /* not a defined value */
    MUTATE(handling_code, V(HANDLING_CODE, HANDLING_CODE_H3)); /* H3 needs conditions */
    MUTATE(handling_conditions, "Only for the JIT");           /* only H3 carries conditions */
    MUTATE(source_reliability, V(SOURCE_RELIABILITY, SOURCE_RELIABILITY_UNSPECIFIED));
    MUTATE(information_accuracy, V(INFORMATION_ACCURACY, INFORMATION_ACCURACY_UNSPECIFIED));
    MUTATE(classification_level, V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_UNSPECIFIED));
    MUTATE(classification_marking, ""); /* CONFIDENTIAL needs its marking */
    MUTATE(tlp, (Liaison__V1__Tlp)6);
    MUTATE(purpose, "");
    MUTATE(legal_basis, "");
    MUTATE(data_basis, V(DATA_BASIS, DATA_BASIS_UNSPECIFIED));
    MUTATE(language, "");
    MUTATE(language, "english");
    MUTATE(language, "e");
    MUTATE(language, "en--GB");
    MUTATE(language, "en_GB");
    MUTATE(case_reference, ""); /* required for a case alert */
    MUTATE(case_reference, " leading-space");
    MUTATE(review_at, 946684799);  /* before 2000 */
    MUTATE(review_at, 1950000000); /* after erase_by */
    MUTATE(erase_by, 7258118400u); /* 2200 */
#undef MUTATE

    /* H3 with conditions, no TLP, unclassified without marking: valid. */
    f->g.handling_code = V(HANDLING_CODE, HANDLING_CODE_H3);
    f->g.handling_conditions = "Only for the joint investigation team; destroy after use.";
    f->g.tlp = V(TLP, TLP_UNSPECIFIED);
    f->g.classification_level = V(CLASSIFICATION_LEVEL, CLASSIFICATION_LEVEL_UNCLASSIFIED);
    f->g.classification_marking = "";
    f->g.review_at = 0;
    f->g.erase_by = 0;
    f->g.language = "fr";
    VALID(f);

    /* Data-subject categories: distinct, defined, and listing every person's category. */
    f->cats[1] = f->cats[0];
    INVALID(f);
    f->cats[1] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_UNSPECIFIED);
    INVALID(f);
    f->cats[1] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_VICTIM);
    f->g.n_data_subject_categories = 1; /* victim p2 not declared */
    INVALID(f);
    f->g.n_data_subject_categories = 2;
    VALID(f);
    free(f);

    /* Case reference is required for analysis shares, optional for a receipt. */
    f = fx_new(BODY(ANALYSIS_SHARE));
    f->g.case_reference = "";
    INVALID(f);
    free(f);
    f = fx_new(BODY(RECEIPT));
    f->g.case_reference = "";
    VALID(f);
    free(f);
}

static void test_strings(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    static const char *bad_utf8[] = {
        "\xC3\x28",         /* bad continuation */
        "\xC0\xAF",         /* overlong */
        "\xED\xA0\x80",     /* surrogate */
        "\xF4\x90\x80\x80", /* > U+10FFFF */
        "abc\xE2\x82",      /* truncated */
        "\xC2\x85",         /* C1 control NEL */
        "a\x01z",           /* C0 control */
        "a\x7fz",           /* DEL */
        "\xFF",
    };
    char *big;
    (void)state;
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        f->ca.summary = (char *)bad_utf8[i];
        INVALID(f);
        f->ca.summary = "ok";
        VALID(f);
        /* The generic pass catches strings no semantic rule looks at. */
        f->person[0].profession = (char *)bad_utf8[i];
        INVALID(f);
        f->person[0].profession = NULL;
        VALID(f);
    }
    f->ca.summary = "Multi-line\nfree text\twith tabs, \xE2\x82\xAC and \xF0\x9F\x9A\x90.";
    VALID(f);
    f->ca.title = "Title\non two lines"; /* names are single-line */
    INVALID(f);

    big = malloc(LIA_PAYLOAD_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', LIA_PAYLOAD_TEXT_MAX + 1);
    big[LIA_PAYLOAD_NAME_MAX] = '\0';
    f->ca.title = big;
    VALID(f);
    big[LIA_PAYLOAD_NAME_MAX] = 'x';
    big[LIA_PAYLOAD_NAME_MAX + 1] = '\0';
    INVALID(f);
    f->ca.title = "Title";
    big[LIA_PAYLOAD_NAME_MAX + 1] = 'x';
    big[LIA_PAYLOAD_TEXT_MAX] = '\0';
    f->ca.summary = big;
    VALID(f);
    big[LIA_PAYLOAD_TEXT_MAX] = 'x';
    big[LIA_PAYLOAD_TEXT_MAX + 1] = '\0';
    INVALID(f);
    f->ca.summary = "ok";
    f->ca.title = "";
    INVALID(f);
    free(big);
    free(f);
}

/* Validates f with s (NUL-terminated, so a 0x00 ends it) as a single-line required name
 * (CaseAlert.title) and as optional multi-line text (Person.identifying_characteristics), and
 * asserts that each outcome is the one the reference (tests/common/utf8_ref.h) predicts. */
static void check_text_against_ref(struct fx *f, const char *s)
{
    size_t n = strlen(s);
    bool single = n >= 1 && utf8_ref((const unsigned char *)s, n, 0);
    bool multi = utf8_ref((const unsigned char *)s, n, LIA_UTF8_MULTILINE);
    f->ca.title = (char *)s;
    assert_int_equal(lia_payload_validate(&f->p), single ? 0 : LIA_ERR_INVALID);
    f->ca.title = "Title";
    char *keep = f->person[0].identifying_characteristics;
    f->person[0].identifying_characteristics = (char *)s;
    assert_int_equal(lia_payload_validate(&f->p), multi ? 0 : LIA_ERR_INVALID);
    f->person[0].identifying_characteristics = keep;
}

/* Payload text obeys lib/utf8.c (tested on its own in test_utf8.c): names without line breaks,
 * multi-line text with them, both without any other control character. Each kind of character
 * at the start, inside and at the end of a word of 8-byte-skippable filler. */
static void test_strings_word_skip(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    char buf[64];
    (void)state;
    for (size_t t = 1; t < UTF8_N_TOKENS; t++) /* not the first: NUL ends a C string */
        for (size_t pos = 0; pos <= 20; pos += 5) {
            size_t tl = strlen(utf8_tokens[t]);
            memset(buf, 'a', 24);
            memcpy(buf + pos, utf8_tokens[t], tl);
            buf[24] = '\0';
            check_text_against_ref(f, buf);
        }
    free(f);
}

static void test_repeated_bounds(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    char *many[LIA_PAYLOAD_ATTACHMENTS_MAX + 1];
    Liaison__V1__Attachment *atts[LIA_PAYLOAD_ATTACHMENTS_MAX + 1];
    (void)state;
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = "0902";
    f->ca.offence_codes = many;
    f->ca.n_offence_codes = LIA_PAYLOAD_CODES_MAX;
    VALID(f);
    f->ca.n_offence_codes = LIA_PAYLOAD_CODES_MAX + 1;
    INVALID(f);
    f->ca.n_offence_codes = 1;

    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = "Alias";
    f->person[0].aliases = many;
    f->person[0].n_aliases = LIA_PAYLOAD_ALIASES_MAX;
    VALID(f);
    f->person[0].n_aliases = LIA_PAYLOAD_ALIASES_MAX + 1;
    INVALID(f);
    f->person[0].n_aliases = 0;
    f->person[0].n_nationalities = LIA_PAYLOAD_NATIONALITIES_MAX + 1;
    f->person[0].nationalities = many; /* count is checked first */
    INVALID(f);
    free(f);

    /* Attachments: 64 at most. */
    f = fx_new(BODY(ANALYSIS_SHARE));
    for (size_t i = 0; i < sizeof atts / sizeof atts[0]; i++)
        atts[i] = &f->att[1];
    f->as.attachments = atts;
    f->as.n_attachments = LIA_PAYLOAD_ATTACHMENTS_MAX + 1;
    INVALID(f);
    free(f);
}

static void test_entity_count(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    size_t n = LIA_PAYLOAD_ENTITIES_MAX + 1;
    Liaison__V1__Location *locs = calloc(n, sizeof *locs);
    Liaison__V1__Location **ptrs = calloc(n, sizeof *ptrs);
    char(*ids)[16] = calloc(n, sizeof *ids);
    Liaison__V1__EntitySet set = LIAISON__V1__ENTITY_SET__INIT;
    Liaison__V1__Location init = LIAISON__V1__LOCATION__INIT;
    (void)state;
    assert_true(locs && ptrs && ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "l%zu", i);
        locs[i] = init;
        locs[i].id = ids[i];
        locs[i].name = "Place";
        ptrs[i] = &locs[i];
    }
    set.locations = ptrs;
    set.n_locations = LIA_PAYLOAD_ENTITIES_MAX;
    f->ca.entities = &set;
    f->g.n_data_subject_categories = 0;
    VALID(f);
    set.n_locations = n;
    INVALID(f);

    /* The largest entity set of minimal persons decodes within the memory budget. */
    {
        Liaison__V1__Person *people = calloc(LIA_PAYLOAD_ENTITIES_MAX, sizeof *people);
        Liaison__V1__Person **pp = calloc(LIA_PAYLOAD_ENTITIES_MAX, sizeof *pp);
        Liaison__V1__Person pinit = LIAISON__V1__PERSON__INIT;
        size_t len;
        uint8_t *buf;
        assert_true(people && pp);
        for (size_t i = 0; i < LIA_PAYLOAD_ENTITIES_MAX; i++) {
            people[i] = pinit;
            people[i].id = ids[i];
            people[i].role = V(PERSON_ROLE, PERSON_ROLE_CONTACT);
            people[i].family_name = "X";
            people[i].data_subject_category =
                V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_OTHER_PARTY);
            pp[i] = &people[i];
        }
        set.n_locations = 0;
        set.persons = pp;
        set.n_persons = LIA_PAYLOAD_ENTITIES_MAX;
        f->cats[0] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_OTHER_PARTY);
        f->g.n_data_subject_categories = 1;
        VALID(f);
        buf = pack(&f->p, &len);
        assert_int_equal(decode_rc(buf, len), 0);
        free(buf);
        /* Likewise the largest set of minimal locations. */
        set.n_persons = 0;
        set.n_locations = LIA_PAYLOAD_ENTITIES_MAX;
        buf = pack(&f->p, &len);
        assert_int_equal(decode_rc(buf, len), 0);
        free(buf);
        free(pp);
        free(people);
    }
    free(ids);
    free(ptrs);
    free(locs);
    free(f);
}

static void test_ids_and_references(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    char long_id[LIA_PAYLOAD_ID_MAX + 2];
    (void)state;

    f->doc.id = "p1"; /* duplicate across types */
    INVALID(f);
    f->doc.id = "d1";
    f->loc[1].id = "l1"; /* duplicate within a type */
    INVALID(f);
    f->loc[1].id = "l2";
    f->veh.id = "v 1";
    INVALID(f);
    f->veh.id = "";
    INVALID(f);
    memset(long_id, 'i', sizeof long_id);
    long_id[LIA_PAYLOAD_ID_MAX] = '\0';
    f->veh.id = long_id;
    f->leg.vehicle_ref = long_id;
    f->participants[1] = long_id;
    VALID(f);
    long_id[LIA_PAYLOAD_ID_MAX] = 'i';
    long_id[LIA_PAYLOAD_ID_MAX + 1] = '\0';
    INVALID(f);
    free(f);

    f = fx_new(BODY(CASE_ALERT));
    f->doc.holder_ref = "p9"; /* dangling */
    INVALID(f);
    f->doc.holder_ref = "v1"; /* wrong type */
    INVALID(f);
    f->doc.holder_ref = "";
    VALID(f);
    f->leg.from_ref = ""; /* required */
    INVALID(f);
    f->leg.from_ref = "p1";
    INVALID(f);
    f->leg.from_ref = "l2";
    f->veh.owner_ref = "c1"; /* owner must be a person or organisation */
    INVALID(f);
    f->veh.owner_ref = "p2";
    VALID(f);
    f->participants[1] = "p1"; /* duplicate participant */
    INVALID(f);
    f->participants[1] = "zz";
    INVALID(f);
    f->participants[1] = "r1"; /* any type */
    VALID(f);
    f->person[0].residence_ref = "o1";
    INVALID(f);
    free(f);

    /* A case alert without entities refers to nothing. */
    f = fx_new(BODY(CASE_ALERT));
    f->ca.entities = NULL;
    VALID(f);
    free(f);

    /* Request purposes refer to persons; the falsified document shares the id space. */
    f = fx_new(BODY(INFORMATION_REQUEST));
    f->purpose_refs[1] = "l1";
    INVALID(f);
    f->purpose_refs[1] = "p1";
    INVALID(f);
    free(f);
    f = fx_new(BODY(FALSIFIED_DOCUMENT_ALERT));
    f->fdoc.id = "d1";
    INVALID(f);
    f->fdoc.id = "fd1";
    f->fda.detection_location_ref = "fd1";
    INVALID(f);
    free(f);
}

static void test_person_rules(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    (void)state;
#define MUTATE(field, bad)                                                                         \
    do {                                                                                           \
        __typeof__(f->person[0].field) saved_ = f->person[0].field;                                \
        f->person[0].field = bad;                                                                  \
        INVALID(f);                                                                                \
        f->person[0].field = saved_;                                                               \
        VALID(f);                                                                                  \
    } while (0)
    MUTATE(role, V(PERSON_ROLE, PERSON_ROLE_UNSPECIFIED));
    MUTATE(role, V(PERSON_ROLE, PERSON_ROLE_WITNESS)); /* witness is an "other party" */
    MUTATE(data_subject_category, V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_UNSPECIFIED));
    MUTATE(data_subject_category, V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_VICTIM));
    MUTATE(data_subject_category, V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_CONVICTED));
    MUTATE(date_of_birth, "1979-02-30");
    MUTATE(date_of_birth, "1979-13");
    MUTATE(date_of_birth, "79-02-03");
    MUTATE(date_of_birth, "1700");
    MUTATE(country_of_birth, "de");
    MUTATE(country_of_birth, "DEU");
    MUTATE(sex, (Liaison__V1__Sex)9);
    MUTATE(family_name, "A\tB");
#undef MUTATE
    f->person[0].date_of_birth = "2000-02-29"; /* leap year */
    VALID(f);
    f->person[0].date_of_birth = "1900-02-29";
    INVALID(f);
    f->person[0].date_of_birth = "";
    f->nationalities[1] = "DE"; /* duplicate nationality */
    INVALID(f);
    f->nationalities[1] = "TR";
    /* A person needs something to identify them. */
    f->person[0].family_name = "";
    f->person[0].given_names = NULL;
    f->person[0].n_aliases = 0;
    INVALID(f);
    f->person[0].identifying_characteristics = "Scar on the chin";
    VALID(f);
    /* A convicted facilitator is fine once the category is declared. */
    f->person[0].data_subject_category = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_CONVICTED);
    f->cats[0] = V(DATA_SUBJECT_CATEGORY, DATA_SUBJECT_CATEGORY_CONVICTED);
    VALID(f);
    free(f);
}

static void test_entity_formats(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    (void)state;
#define MUTATE(obj, field, bad)                                                                    \
    do {                                                                                           \
        __typeof__(f->obj.field) saved_ = f->obj.field;                                            \
        f->obj.field = bad;                                                                        \
        INVALID(f);                                                                                \
        f->obj.field = saved_;                                                                     \
        VALID(f);                                                                                  \
    } while (0)
    MUTATE(doc, type, V(DOCUMENT_TYPE, DOCUMENT_TYPE_UNSPECIFIED));
    MUTATE(doc, number, "");
    MUTATE(doc, issuing_country, "");
    MUTATE(doc, valid_until, "2014-12-31"); /* before valid_from */
    MUTATE(doc, valid_from, "2015-13-01");
    MUTATE(veh, vin, "WF0XXXTTGXKA1234O"); /* O is not allowed */
    MUTATE(veh, vin, "WF0XXXTTGXKA1234");
    MUTATE(veh, country, "D");
    MUTATE(org, name, "");
    MUTATE(org, type, V(ORGANISATION_TYPE, ORGANISATION_TYPE_UNSPECIFIED));
    MUTATE(coords, latitude_microdeg, 90000001);
    MUTATE(coords, longitude_microdeg, -180000001);
    MUTATE(coords, accuracy_m, 1000001);
    MUTATE(ev, type, V(EVENT_TYPE, EVENT_TYPE_UNSPECIFIED));
    MUTATE(route, n_legs, 0);
    MUTATE(leg, transport_mode, V(TRANSPORT_MODE, TRANSPORT_MODE_UNSPECIFIED));
    MUTATE(comm, type, V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_UNSPECIFIED));
    MUTATE(comm, value, "");
    MUTATE(comm, value, "+49 151 123");
    MUTATE(comm, value, "12");
#undef MUTATE
    /* Per-type formats of communication identifiers. */
    static const struct {
        int type;
        const char *good, *bad;
    } ids[] = {
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_EMAIL), "x.y@example.org", "x.example.org"},
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IMEI), "490154203237518", "49015420323751A"},
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IMSI), "262011234567890", "2620112345678901"},
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IP_ADDRESS), "2001:db8::1", "300.1.1.1"},
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_IP_ADDRESS), "192.0.2.7", "192.0.2"},
        {V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_SOCIAL_MEDIA), "@smuggler_ads", "a\nb"},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        f->comm.type = ids[i].type;
        f->comm.value = (char *)ids[i].good;
        VALID(f);
        f->comm.value = (char *)ids[i].bad;
        INVALID(f);
    }
    f->comm.type = V(COMM_IDENTIFIER_TYPE, COMM_IDENTIFIER_TYPE_PHONE);
    f->comm.value = "+4915112345678";
    /* A vehicle, a location need at least one identifying field. */
    f->veh.plate = "";
    f->veh.vin = "";
    VALID(f);
    f->veh.make = "";
    INVALID(f);
    f->veh.make = "Ford";
    f->loc[0].name = "";
    VALID(f);
    f->loc[0].coordinates = NULL;
    INVALID(f);
    free(f);
}

static void test_attachments(void **state)
{
    struct fx *f = fx_new(BODY(ANALYSIS_SHARE));
    (void)state;
    f->digest[0][5] ^= 1;
    INVALID(f);
    f->digest[0][5] ^= 1;
    VALID(f);
    f->att[0].digest.len = 31;
    INVALID(f);
    f->att[0].digest.len = 32;
    f->att[0].content.len -= 1; /* content no longer matches the digest */
    INVALID(f);
    f->att[0].content.len += 1;
    VALID(f);
    static const char *bad_names[] = {"", "../etc/passwd", "a\\b", ".", "..", "two\nlines"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        f->att[0].name = (char *)bad_names[i];
        INVALID(f);
    }
    f->att[0].name = "empty.txt"; /* duplicate name */
    INVALID(f);
    f->att[0].name = "crossings.csv";
    static const char *bad_types[] = {"", "text", "text/", "/csv", "text/c sv", "text/csv/x"};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        f->att[0].media_type = (char *)bad_types[i];
        INVALID(f);
    }
    f->att[0].media_type = "application/vnd.ms-excel";
    VALID(f);
    free(f);
}

static void test_times(void **state)
{
    struct fx *f = fx_new(BODY(RECEIPT));
    (void)state;
    f->rcpt.received_at = 0;
    INVALID(f);
    f->rcpt.received_at = 946684799; /* 1999-12-31 */
    INVALID(f);
    f->rcpt.received_at = 7258118400u; /* 2200-01-01 */
    INVALID(f);
    f->rcpt.received_at = 946684800;
    VALID(f);
    free(f);

    f = fx_new(BODY(CASE_ALERT));
    f->leg.arrival = f->leg.departure - 1;
    INVALID(f);
    f->leg.arrival = 0; /* unknown */
    VALID(f);
    f->leg.departure = INT64_C(-2208988801); /* before 1900 */
    INVALID(f);
    f->leg.departure = INT64_C(-2208988800);
    VALID(f);
    f->ev.time = INT64_C(7258118400);
    INVALID(f);
    f->ev.time = -1; /* 1969 is a valid event time */
    VALID(f);
    free(f);

    f = fx_new(BODY(FALSIFIED_DOCUMENT_ALERT));
    f->fda.detected_at = 0;
    INVALID(f);
    free(f);

    f = fx_new(BODY(DELAY_NOTICE));
    f->dn.expected_delay_seconds = 0;
    INVALID(f);
    f->dn.expected_delay_seconds = LIA_PAYLOAD_DELAY_MAX;
    VALID(f);
    f->dn.expected_delay_seconds = LIA_PAYLOAD_DELAY_MAX + 1;
    INVALID(f);
    free(f);
}

static void test_request_rules(void **state)
{
    struct fx *f = fx_new(BODY(INFORMATION_REQUEST));
    (void)state;
    f->ir.n_urgency_grounds = 0; /* urgent needs a ground */
    INVALID(f);
    f->ir.urgency = V(REQUEST_URGENCY, REQUEST_URGENCY_NOT_URGENT);
    VALID(f);
    f->ir.n_urgency_grounds = 1; /* not urgent takes no ground */
    INVALID(f);
    f->ir.urgency = V(REQUEST_URGENCY, REQUEST_URGENCY_URGENT_INDIRECT);
    VALID(f);
    f->grounds[1] = f->grounds[0];
    f->ir.n_urgency_grounds = 2;
    INVALID(f);
    f->grounds[1] = V(URGENCY_GROUND, URGENCY_GROUND_LOSS_OF_RELEVANCE);
    VALID(f);
    f->grounds[1] = V(URGENCY_GROUND, URGENCY_GROUND_UNSPECIFIED);
    INVALID(f);
    f->ir.n_urgency_grounds = 1;
    f->ir.urgency = V(REQUEST_URGENCY, REQUEST_URGENCY_UNSPECIFIED);
    INVALID(f);
    f->ir.urgency = V(REQUEST_URGENCY, REQUEST_URGENCY_URGENT_DIRECT);
    f->ir.n_purposes = 0;
    INVALID(f);
    f->ir.n_purposes = 1;
    f->ir.request_id = "AT SPOC 17";
    INVALID(f);
    f->ir.request_id = "";
    INVALID(f);
    f->ir.request_id = "AT-SPOC/2024/17";
    f->ir.spoc_copy = "AT-SPOC";
    INVALID(f);
    f->ir.spoc_copy = "";
    VALID(f);
    f->ir.circumstances = "";
    INVALID(f);
    f->ir.circumstances = "Smuggling.";
    f->ir.grounds_for_holding = "";
    INVALID(f);
    free(f);

    f = fx_new(BODY(REFUSAL));
    f->ref.ground = V(REFUSAL_GROUND, REFUSAL_GROUND_UNSPECIFIED);
    INVALID(f);
    f->ref.ground = (Liaison__V1__RefusalGround)9;
    INVALID(f);
    for (int g = 1; g <= 8; g++) {
        f->ref.ground = (Liaison__V1__RefusalGround)g;
        VALID(f);
    }
    f->ref.request_id = "";
    INVALID(f);
    free(f);

    f = fx_new(BODY(RECEIPT));
    f->rcpt.message_id.len = 15;
    INVALID(f);
    f->rcpt.message_id.len = 16;
    f->rcpt.request_id = ""; /* optional */
    VALID(f);
    free(f);

    f = fx_new(BODY(ROUTE_INTELLIGENCE));
    f->ents.n_routes = 0; /* route intelligence carries a route */
    INVALID(f);
    free(f);

    f = fx_new(BODY(RESPONSE));
    f->resp.content = "";
    INVALID(f);
    free(f);
}

/* ------------------------------------------------------------------ decoder */

static void test_decode_oversize(void **state)
{
    uint8_t one = 0x08;
    Liaison__V1__Payload *out = (Liaison__V1__Payload *)&out;
    (void)state;
    /* The size is checked before a single byte is read: the buffer is only one byte long,
     * so any read past it would be caught by AddressSanitizer. */
    assert_int_equal(lia_payload_decode(&one, (size_t)LIA_PAYLOAD_MAX + 1, &out),
                     LIA_ERR_TOO_LARGE);
    assert_null(out);
    assert_int_equal(lia_payload_decode(&one, SIZE_MAX, &out), LIA_ERR_TOO_LARGE);
    assert_int_equal(lia_payload_decode(NULL, 3, &out), LIA_ERR_INVALID);
    assert_int_equal(lia_payload_decode(&one, 1, NULL), LIA_ERR_INVALID);
}

/* Bytes: varint v. Returns the number of bytes written. */
static size_t put_varint(uint8_t *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A small input that would make protobuf-c allocate a struct per two bytes is refused by the
 * memory budget (without it, decoding would succeed and validation would say INVALID). */
static void test_decode_memory_budget(void **state)
{
    const size_t n = 1000000; /* empty Person messages */
    size_t set_len = 2 * n, ca_len, len = 0;
    uint8_t *buf = malloc(set_len + 32);
    uint8_t hdr[32];
    size_t h = 0;
    (void)state;
    assert_non_null(buf);
    /* CaseAlert { entities(4) = EntitySet { persons(1) = {} x n } } */
    hdr[h++] = 0x22;
    h += put_varint(hdr + h, set_len);
    ca_len = h + set_len;
    len = 0;
    buf[len++] = 0x08; /* version = 1 */
    buf[len++] = 0x01;
    buf[len++] = 0x52; /* case_alert(10), length-delimited */
    len += put_varint(buf + len, ca_len);
    memcpy(buf + len, hdr, h);
    len += h;
    for (size_t i = 0; i < n; i++) {
        buf[len++] = 0x0a;
        buf[len++] = 0x00;
    }
    assert_int_equal(decode_rc(buf, len), LIA_ERR_TOO_LARGE);
    /* A thousand of them fit the budget and fail validation only. */
    len = 0;
    buf[len++] = 0x08;
    buf[len++] = 0x01;
    buf[len++] = 0x52;
    h = 0;
    hdr[h++] = 0x22;
    h += put_varint(hdr + h, 2000);
    len += put_varint(buf + len, h + 2000);
    memcpy(buf + len, hdr, h);
    len += h;
    for (size_t i = 0; i < 1000; i++) {
        buf[len++] = 0x0a;
        buf[len++] = 0x00;
    }
    assert_int_equal(decode_rc(buf, len), LIA_ERR_INVALID);
    free(buf);
}

static void test_decode_truncated_and_garbage(void **state)
{
    uint8_t *buf;
    size_t len;
    uint32_t seed = 12345;
    (void)state;
    assert_int_equal(lia_payload_example_case_alert("CASE-1", "officer", &buf, &len), 0);
    assert_int_equal(decode_rc(buf, len), 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(decode_rc(buf, cut), 0);
    assert_int_equal(decode_rc(buf, 0), LIA_ERR_VERSION); /* empty = version 0 */
    assert_int_equal(decode_rc(buf, len - 1), LIA_ERR_DECODE);
    /* Every single-bit flip is either refused or still a valid payload. */
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (uint8_t)(1u << b);
            int rc = decode_rc(buf, len);
            assert_true(rc == 0 || rc == LIA_ERR_DECODE || rc == LIA_ERR_INVALID ||
                        rc == LIA_ERR_VERSION || rc == LIA_ERR_TOO_LARGE);
            buf[i] ^= (uint8_t)(1u << b);
        }
    }
    /* Random garbage. */
    for (int round = 0; round < 2000; round++) {
        uint8_t g[64];
        size_t n = 1 + (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            g[i] = (uint8_t)(seed >> 16);
        }
        assert_int_not_equal(decode_rc(g, n), 0);
    }
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(decode_rc(junk, sizeof junk), LIA_ERR_DECODE);
    free(buf);
}

static void test_decode_unknown_fields(void **state)
{
    struct fx *f = fx_new(BODY(CASE_ALERT));
    size_t len;
    uint8_t *buf = pack(&f->p, &len), *ext = malloc(len + 4);
    ProtobufCMessageUnknownField unknown;
    uint8_t unknown_data[1] = {7};
    (void)state;
    assert_non_null(ext);
    /* Top level: field 99 (varint) appended. */
    memcpy(ext, buf, len);
    ext[len] = 0x98; /* (99 << 3) | 0 = 792 = 0x98 0x06 */
    ext[len + 1] = 0x06;
    ext[len + 2] = 0x01;
    assert_int_equal(decode_rc(ext, len + 3), LIA_ERR_DECODE);
    assert_int_equal(decode_rc(ext, len), 0);
    free(buf);

    /* Nested: an unknown field inside Person, serialised by protobuf-c itself. */
    unknown.tag = 40;
    unknown.wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
    unknown.len = 1;
    unknown.data = unknown_data;
    f->person[1].base.n_unknown_fields = 1;
    f->person[1].base.unknown_fields = &unknown;
    INVALID(f);
    buf = pack(&f->p, &len);
    assert_int_equal(decode_rc(buf, len), LIA_ERR_DECODE);
    free(buf);
    /* An unknown field decides over any other finding of the same walk, before or after it
     * (a control character in a name of the first person). */
    f->person[0].family_name = "HOX\x01HA";
    buf = pack(&f->p, &len);
    assert_int_equal(decode_rc(buf, len), LIA_ERR_DECODE);
    free(buf);
    f->person[1].base.n_unknown_fields = 0;
    buf = pack(&f->p, &len);
    assert_int_equal(decode_rc(buf, len), LIA_ERR_INVALID);
    free(buf);
    free(ext);
    free(f);
}

static void test_decode_non_canonical(void **state)
{
    struct fx *f = fx_new(BODY(REFUSAL));
    size_t len;
    uint8_t *buf, *ext;
    (void)state;
    f->p.officer = "officerX";
    buf = pack(&f->p, &len);
    ext = malloc(len + 2);
    assert_non_null(ext);
    /* A repeated scalar field (version twice): protobuf-c keeps the last one, we refuse. */
    memcpy(ext, buf, len);
    ext[len] = 0x08;
    ext[len + 1] = 0x01;
    assert_int_equal(decode_rc(ext, len + 2), LIA_ERR_DECODE);
    /* An embedded NUL in a string (would silently truncate it). */
    uint8_t *x = memchr(buf, 'X', len);
    assert_non_null(x);
    assert_int_equal(decode_rc(buf, len), 0);
    *x = '\0';
    assert_int_equal(decode_rc(buf, len), LIA_ERR_DECODE);
    *x = 'X';
    /* A non-minimal varint for version (0x81 0x00 = 1). */
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[1], 0x01);
    memcpy(ext, buf, 1);
    ext[1] = 0x81;
    ext[2] = 0x00;
    memcpy(ext + 3, buf + 2, len - 2);
    assert_int_equal(decode_rc(ext, len + 1), LIA_ERR_DECODE);
    free(ext);
    free(buf);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_decoded_fields),
        cmocka_unit_test(test_example_case_alert),
        cmocka_unit_test(test_version_and_body),
        cmocka_unit_test(test_officer),
        cmocka_unit_test(test_governance),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_strings_word_skip),
        cmocka_unit_test(test_repeated_bounds),
        cmocka_unit_test(test_entity_count),
        cmocka_unit_test(test_ids_and_references),
        cmocka_unit_test(test_person_rules),
        cmocka_unit_test(test_entity_formats),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_request_rules),
        cmocka_unit_test(test_decode_oversize),
        cmocka_unit_test(test_decode_memory_budget),
        cmocka_unit_test(test_decode_truncated_and_garbage),
        cmocka_unit_test(test_decode_unknown_fields),
        cmocka_unit_test(test_decode_non_canonical),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
