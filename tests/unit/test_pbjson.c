/* JSON <-> protobuf through descriptors: round trips and every class of refused input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "error.h"
#include "liaison/v1/control.pb-c.h"
#include "liaison/v1/envelope.pb-c.h"
#include "liaison/v1/identity.pb-c.h"
#include "pbjson.h"

#define REQ_DESC (&liaison__v1__control_request__descriptor)

static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *d, const char *json)
{
    ProtobufCMessage *m = NULL;
    char err[256];
    int rc = lia_pbjson_parse(d, json, strlen(json), &m, err, sizeof err);
    if (rc != 0)
        print_error("unexpected error %d: %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(m);
    return m;
}

/* Expects the given error code and a message containing want. */
static void parse_bad(const ProtobufCMessageDescriptor *d, const char *json, size_t len, int code,
                      const char *want)
{
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    char err[256];
    int rc = lia_pbjson_parse(d, json, len, &m, err, sizeof err);
    if (rc != code || !strstr(err, want))
        print_error("input %.80s: got %d '%s', wanted %d '%s'\n", json ? json : "(null)", rc, err,
                    code, want);
    assert_int_equal(rc, code);
    assert_null(m);
    assert_non_null(strstr(err, want));
}

#define BAD(d, json, code, want) parse_bad(d, json, strlen(json), code, want)

/* Packs m, prints it as JSON, parses that back and checks the packed bytes are identical. */
static void round_trip(const ProtobufCMessage *m)
{
    size_t n1 = protobuf_c_message_get_packed_size(m), n2;
    uint8_t *b1 = malloc(n1 + 1), *b2;
    char *text = NULL;
    ProtobufCMessage *back;

    assert_non_null(b1);
    protobuf_c_message_pack(m, b1);
    assert_int_equal(lia_pbjson_format(m, 0, &text), 0);
    back = parse_ok(m->descriptor, text);
    n2 = protobuf_c_message_get_packed_size(back);
    b2 = malloc(n2 + 1);
    assert_non_null(b2);
    protobuf_c_message_pack(back, b2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(text);
    /* Pretty output parses back to the same thing too. */
    assert_int_equal(lia_pbjson_format(m, LIA_PBJSON_PRETTY, &text), 0);
    protobuf_c_message_free_unpacked(back, NULL);
    back = parse_ok(m->descriptor, text);
    assert_int_equal(protobuf_c_message_get_packed_size(back), n1);
    protobuf_c_message_free_unpacked(back, NULL);
    free(text);
    free(b1);
    free(b2);
}

static void test_send_request_round_trip(void **state)
{
    const char *json = "{\"send\": {\"channel\": \"op-tidewater\", \"recipients\": [\"fr-ncp\", "
                       "\"de-ncp\"], \"payload\": \"AAECAwQ=\", \"expires_at_ms\": "
                       "\"18446744073709551615\"}}";
    Liaison__V1__ControlRequest *r;
    char *text = NULL;
    (void)state;

    r = (Liaison__V1__ControlRequest *)parse_ok(REQ_DESC, json);
    assert_int_equal(r->kind_case, LIAISON__V1__CONTROL_REQUEST__KIND_SEND);
    assert_string_equal(r->send->channel, "op-tidewater");
    assert_int_equal(r->send->n_recipients, 2);
    assert_string_equal(r->send->recipients[1], "de-ncp");
    assert_int_equal(r->send->payload.len, 5);
    assert_memory_equal(r->send->payload.data, "\0\1\2\3\4", 5);
    assert_true(r->send->expires_at_ms == UINT64_MAX);
    round_trip(&r->base);

    /* Output: field names, base64 bytes, 64-bit numbers, defaults omitted. */
    assert_int_equal(lia_pbjson_format(&r->base, 0, &text), 0);
    assert_string_equal(text, "{\"send\":{\"channel\":\"op-tidewater\",\"recipients\":[\"fr-ncp\","
                              "\"de-ncp\"],\"payload\":\"AAECAwQ=\",\"expires_at_ms\":"
                              "18446744073709551615}}");
    free(text);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_empty_members_and_defaults(void **state)
{
    Liaison__V1__ControlRequest *r;
    char *text = NULL;
    (void)state;

    /* An empty message as the oneof member is kept (the member is what matters). */
    r = (Liaison__V1__ControlRequest *)parse_ok(REQ_DESC, "{\"status\":{}}");
    assert_int_equal(r->kind_case, LIAISON__V1__CONTROL_REQUEST__KIND_STATUS);
    assert_int_equal(lia_pbjson_format(&r->base, 0, &text), 0);
    assert_string_equal(text, "{\"status\":{}}");
    free(text);
    round_trip(&r->base);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Nothing set: an empty object; null means "not set". */
    r = (Liaison__V1__ControlRequest *)parse_ok(REQ_DESC, " {\"send\": null} \n");
    assert_int_equal(r->kind_case, LIAISON__V1__CONTROL_REQUEST__KIND__NOT_SET);
    assert_int_equal(lia_pbjson_format(&r->base, 0, &text), 0);
    assert_string_equal(text, "{}");
    free(text);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Numbers as numbers or strings, zero values. */
    r = (Liaison__V1__ControlRequest *)parse_ok(
        REQ_DESC, "{\"list\":{\"after\":\"0\",\"channel\":\"\",\"max\":4294967295}}");
    assert_int_equal(r->list->max, 4294967295u);
    assert_int_equal(r->list->after, 0);
    round_trip(&r->base);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_reply_round_trip(void **state)
{
    Liaison__V1__ControlReply rep = LIAISON__V1__CONTROL_REPLY__INIT;
    Liaison__V1__ListReply list = LIAISON__V1__LIST_REPLY__INIT;
    Liaison__V1__InboxMessage m1 = LIAISON__V1__INBOX_MESSAGE__INIT;
    Liaison__V1__InboxMessage m2 = LIAISON__V1__INBOX_MESSAGE__INIT;
    Liaison__V1__InboxMessage *msgs[2] = {&m1, &m2};
    uint8_t id[16], big[3000];
    (void)state;

    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t)(0xf0 + i);
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    m1.delivery_seq = 1;
    m1.sender = "fr-ncp";
    m1.channel = "op-tidewater";
    m1.created_at_ms = 1717000000123ull;
    m1.message_id.data = id;
    m1.message_id.len = sizeof id;
    m1.payload.data = big;
    m1.payload.len = sizeof big;
    m2.delivery_seq = 9007199254740993ull; /* 2^53 + 1: exact in the output */
    m2.sender = "d\xc3\xa9-ncp \"quoted\" \\ /\n\t";
    list.n_messages = 2;
    list.messages = msgs;
    rep.kind_case = LIAISON__V1__CONTROL_REPLY__KIND_LIST;
    rep.list = &list;
    round_trip(&rep.base);
}

static void test_enums_and_nested(void **state)
{
    Liaison__V1__CertificateBody *b;
    Liaison__V1__Destination *dst;
    Liaison__V1__RevocationListBody *rl;
    const ProtobufCEnumValue *ev;
    char *text = NULL;
    (void)state;

    b = (Liaison__V1__CertificateBody *)parse_ok(&liaison__v1__certificate_body__descriptor,
                                                 "{\"role\":\"NODE_ROLE_HUB\",\"serial\":7}");
    assert_int_equal(b->role, LIAISON__V1__NODE_ROLE__NODE_ROLE_HUB);
    assert_int_equal(lia_pbjson_format(&b->base, 0, &text), 0);
    assert_string_equal(text, "{\"serial\":7,\"role\":\"NODE_ROLE_HUB\"}");
    free(text);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    /* Short forms, case-insensitive, and the integer value. */
    b = (Liaison__V1__CertificateBody *)parse_ok(&liaison__v1__certificate_body__descriptor,
                                                 "{\"role\":\"contact-point\"}");
    assert_int_equal(b->role, LIAISON__V1__NODE_ROLE__NODE_ROLE_CONTACT_POINT);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    b = (Liaison__V1__CertificateBody *)parse_ok(&liaison__v1__certificate_body__descriptor,
                                                 "{\"role\":3}");
    assert_int_equal(b->role, LIAISON__V1__NODE_ROLE__NODE_ROLE_LIAISON);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    ev = lia_pbjson_enum_lookup(&liaison__v1__node_role__descriptor, "Broker");
    assert_non_null(ev);
    assert_string_equal(ev->name, "NODE_ROLE_BROKER");
    assert_null(lia_pbjson_enum_lookup(&liaison__v1__node_role__descriptor, "ROLE_HUB"));
    assert_null(lia_pbjson_enum_lookup(&liaison__v1__node_role__descriptor, ""));
    assert_string_equal(lia_pbjson_enum_short(&liaison__v1__node_role__descriptor, 2), "HUB");
    assert_string_equal(lia_pbjson_enum_short(&liaison__v1__node_role__descriptor, 99), "?");

    /* A oneof whose member is a nested message with a repeated string. */
    dst = (Liaison__V1__Destination *)parse_ok(&liaison__v1__destination__descriptor,
                                               "{\"recipients\":{\"node_ids\":[\"a\",\"b\"]}}");
    assert_int_equal(dst->kind_case, LIAISON__V1__DESTINATION__KIND_RECIPIENTS);
    assert_int_equal(dst->recipients->n_node_ids, 2);
    round_trip(&dst->base);
    protobuf_c_message_free_unpacked(&dst->base, NULL);

    /* Repeated messages. */
    rl = (Liaison__V1__RevocationListBody *)parse_ok(
        &liaison__v1__revocation_list_body__descriptor,
        "{\"serial\":2,\"revoked\":[{\"serial\":5,\"revoked_at\":100},{\"serial\":6}]}");
    assert_int_equal(rl->n_revoked, 2);
    assert_int_equal(rl->revoked[1]->serial, 6);
    round_trip(&rl->base);
    protobuf_c_message_free_unpacked(&rl->base, NULL);

    /* Repeated bytes. */
    {
        Liaison__V1__BatchProof *p = (Liaison__V1__BatchProof *)parse_ok(
            &liaison__v1__batch_proof__descriptor, "{\"path\":[\"\",\"/w==\",\"AAAA\"]}");
        assert_int_equal(p->n_path, 3);
        assert_int_equal(p->path[0].len, 0);
        assert_int_equal(p->path[1].len, 1);
        assert_int_equal(p->path[1].data[0], 0xff);
        assert_int_equal(p->path[2].len, 3);
        protobuf_c_message_free_unpacked(&p->base, NULL);
    }
}

static void test_unknown_keys_and_types(void **state)
{
    (void)state;
    BAD(REQ_DESC, "{\"sned\":{}}", LIA_ERR_DECODE,
        "sned: unknown field for liaison.v1.ControlRequest");
    BAD(REQ_DESC, "{\"send\":{\"channel\":\"x\",\"bogus\":1}}", LIA_ERR_DECODE,
        "send.bogus: unknown field for liaison.v1.SendRequest");
    BAD(REQ_DESC, "[]", LIA_ERR_DECODE, "top level: expected an object");
    BAD(REQ_DESC, "\"x\"", LIA_ERR_DECODE, "top level: expected an object");
    BAD(REQ_DESC, "{\"send\":[]}", LIA_ERR_DECODE, "send: expected an object");
    BAD(REQ_DESC, "{\"send\":{\"channel\":5}}", LIA_ERR_DECODE,
        "send.channel: expected a string, got a number");
    BAD(REQ_DESC, "{\"send\":{\"recipients\":\"a\"}}", LIA_ERR_DECODE,
        "send.recipients: expected an array");
    BAD(REQ_DESC, "{\"send\":{\"recipients\":[\"a\",7]}}", LIA_ERR_DECODE,
        "send.recipients[1]: expected a string");
    BAD(REQ_DESC, "{\"send\":{\"recipients\":[\"a\",null]}}", LIA_ERR_DECODE,
        "send.recipients[1]: null is not allowed");
    BAD(REQ_DESC, "{\"list\":{\"after\":true}}", LIA_ERR_DECODE,
        "list.after: expected an integer, got a boolean");
    BAD(REQ_DESC, "{\"list\":{\"after\":1.5}}", LIA_ERR_DECODE,
        "list.after: expected an integer, got 1.5");
    BAD(REQ_DESC, "{\"list\":{\"after\":\"12a\"}}", LIA_ERR_DECODE,
        "list.after: expected an integer, got the string '12a'");
    BAD(REQ_DESC, "{\"list\":{\"after\":\" 1\"}}", LIA_ERR_DECODE, "expected an integer");
    BAD(&liaison__v1__status_reply__descriptor, "{\"broker_connected\":1}", LIA_ERR_DECODE,
        "broker_connected: expected true or false");
    BAD(REQ_DESC, "{\"send\":{\"payload\":\"not base64!\"}}", LIA_ERR_DECODE,
        "send.payload: invalid base64");
    BAD(REQ_DESC, "{\"send\":{\"payload\":\"AAE\"}}", LIA_ERR_DECODE,
        "send.payload: invalid base64"); /* missing padding */
    BAD(REQ_DESC, "{\"send\":{\"payload\":\"AA-_\"}}", LIA_ERR_DECODE,
        "send.payload: invalid base64"); /* URL-safe alphabet */
    BAD(REQ_DESC, "{\"send\":{\"channel\":\"a\\u0000b\"}}", LIA_ERR_DECODE,
        "send.channel: string contains a NUL character");
    BAD(REQ_DESC, "{\"send\":{},\"list\":{}}", LIA_ERR_DECODE,
        "list: only one of a oneof may be set (already set: send)");
}

static void test_ranges_and_enums(void **state)
{
    (void)state;
    BAD(REQ_DESC, "{\"list\":{\"max\":4294967296}}", LIA_ERR_DECODE,
        "list.max: value 4294967296 is out of range for a 32-bit unsigned integer");
    BAD(REQ_DESC, "{\"list\":{\"max\":-1}}", LIA_ERR_DECODE, "list.max: value -1 is out of range");
    BAD(REQ_DESC, "{\"list\":{\"after\":-1}}", LIA_ERR_DECODE,
        "list.after: value -1 is out of range for a 64-bit unsigned integer");
    BAD(REQ_DESC, "{\"list\":{\"after\":\"-5\"}}", LIA_ERR_DECODE, "list.after: value -5");
    BAD(REQ_DESC, "{\"list\":{\"after\":\"18446744073709551616\"}}", LIA_ERR_DECODE,
        "list.after: value 18446744073709551616 is out of range");
    BAD(&liaison__v1__certificate_body__descriptor, "{\"role\":\"NODE_ROLE_KING\"}", LIA_ERR_DECODE,
        "role: unknown value 'NODE_ROLE_KING' for liaison.v1.NodeRole");
    BAD(&liaison__v1__certificate_body__descriptor, "{\"role\":\"H7\"}", LIA_ERR_DECODE,
        "role: unknown value 'H7'");
    BAD(&liaison__v1__certificate_body__descriptor, "{\"role\":17}", LIA_ERR_DECODE,
        "role: value 17 is out of range for liaison.v1.NodeRole");
    BAD(&liaison__v1__certificate_body__descriptor, "{\"role\":{}}", LIA_ERR_DECODE,
        "role: expected a name of liaison.v1.NodeRole, got an object");
}

static void test_syntax_and_bounds(void **state)
{
    char *deep, *big;
    size_t n;
    (void)state;

    BAD(REQ_DESC, "", LIA_ERR_DECODE, "incomplete");
    BAD(REQ_DESC, "{\"send\":", LIA_ERR_DECODE, "incomplete");
    BAD(REQ_DESC, "{\"send\" {}}", LIA_ERR_DECODE, "syntax error at line 1, column 9");
    BAD(REQ_DESC, "{\n\"send\": {},\n}", LIA_ERR_DECODE, "syntax error at line 3");
    BAD(REQ_DESC, "{\"send\": {} x}", LIA_ERR_DECODE, "syntax error");
    BAD(REQ_DESC, "{} {}", LIA_ERR_DECODE, "syntax error at line 1, column 4");
    BAD(REQ_DESC, "{\"send\":{\"channel\":\"\xff\"}}", LIA_ERR_DECODE, "");
    parse_bad(REQ_DESC, "{}\0{}", 5, LIA_ERR_DECODE, "unexpected data after the JSON value");

    /* Nesting beyond the bound. */
    n = 2 * (LIA_PBJSON_MAX_DEPTH + 5) + 1;
    deep = malloc(n + 1);
    assert_non_null(deep);
    for (size_t i = 0; i < n / 2; i++) {
        deep[i] = '[';
        deep[n - 1 - i] = ']';
    }
    deep[n / 2] = '0';
    deep[n] = '\0';
    BAD(REQ_DESC, deep, LIA_ERR_TOO_LARGE, "nested deeper than");
    free(deep);

    /* Input beyond the size bound is refused before parsing. */
    parse_bad(REQ_DESC, "{}", (size_t)LIA_PBJSON_MAX_INPUT + 1, LIA_ERR_TOO_LARGE,
              "exceeds the limit");
    /* Just under the bound parses (a large string). */
    n = 1u << 20;
    big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "{\"send\":{\"channel\":\"");
    memset(big + strlen(big), 'x', n);
    strcpy(big + 20 + n, "\"}}");
    {
        Liaison__V1__ControlRequest *r = (Liaison__V1__ControlRequest *)parse_ok(REQ_DESC, big);
        assert_int_equal(strlen(r->send->channel), n);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    free(big);

    /* Bad arguments. */
    {
        ProtobufCMessage *m;
        assert_int_equal(lia_pbjson_parse(NULL, "{}", 2, &m, NULL, 0), LIA_ERR_INVALID);
        assert_int_equal(lia_pbjson_parse(REQ_DESC, NULL, 2, &m, NULL, 0), LIA_ERR_INVALID);
        /* No error buffer: still just an error code. */
        assert_int_equal(lia_pbjson_parse(REQ_DESC, "[", 1, &m, NULL, 0), LIA_ERR_DECODE);
    }
}

static void test_from_object(void **state)
{
    json_object *o = json_tokener_parse("{\"follow\":{\"channel\":\"c\",\"after\":3}}");
    ProtobufCMessage *m = NULL;
    char err[128];
    (void)state;
    assert_non_null(o);
    assert_int_equal(lia_pbjson_from_object(REQ_DESC, o, &m, err, sizeof err), 0);
    assert_int_equal(((Liaison__V1__ControlRequest *)m)->follow->after, 3);
    protobuf_c_message_free_unpacked(m, NULL);
    json_object_put(o);
    assert_int_equal(lia_pbjson_from_object(REQ_DESC, NULL, &m, err, sizeof err), LIA_ERR_DECODE);
    assert_non_null(strstr(err, "top level"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_request_round_trip),
        cmocka_unit_test(test_empty_members_and_defaults),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_enums_and_nested),
        cmocka_unit_test(test_unknown_keys_and_types),
        cmocka_unit_test(test_ranges_and_enums),
        cmocka_unit_test(test_syntax_and_bounds),
        cmocka_unit_test(test_from_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
