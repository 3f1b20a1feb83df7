/*
 * Tests of the code lists (lib/codes.c and the table generated from data/codes/<list>.csv): every
 * enum of the payload schema has a list, every enum value has exactly one row and every row a
 * value, labels exist in English, French and German, look-ups and parsing behave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "codes.h"
#include "error.h"
#include "liaison/v1/payload.pb-c.h"
#include "testutil.h"

/* The list labelling enum descriptor d, or NULL. */
static const struct lia_codelist_info *list_for(const ProtobufCEnumDescriptor *d)
{
    for (int i = 0; i < LIA_CODELIST__COUNT; i++)
        if (lia_codelists[i].descriptor == d)
            return &lia_codelists[i];
    return NULL;
}

/* Collects (into seen, up to max) every enum descriptor used by a field reachable from m. */
static void collect_enums(const ProtobufCMessageDescriptor *m,
                          const ProtobufCMessageDescriptor **visited, size_t *n_visited,
                          const ProtobufCEnumDescriptor **seen, size_t *n_seen, size_t max)
{
    for (size_t i = 0; i < *n_visited; i++)
        if (visited[i] == m)
            return;
    assert_true(*n_visited < max);
    visited[(*n_visited)++] = m;
    for (unsigned i = 0; i < m->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            collect_enums(f->descriptor, visited, n_visited, seen, n_seen, max);
        } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
            size_t k;
            for (k = 0; k < *n_seen && seen[k] != f->descriptor; k++)
                ;
            if (k == *n_seen) {
                assert_true(*n_seen < max);
                seen[(*n_seen)++] = f->descriptor;
            }
        }
    }
}

/* Every enum used anywhere in Payload has a code list, and every list labels such an enum. */
static void test_every_payload_enum_has_a_list(void **state)
{
    const ProtobufCMessageDescriptor *visited[64];
    const ProtobufCEnumDescriptor *seen[64];
    size_t n_visited = 0, n_seen = 0;
    (void)state;
    collect_enums(&liaison__v1__payload__descriptor, visited, &n_visited, seen, &n_seen, 64);
    assert_int_equal(n_seen, LIA_CODELIST__COUNT);
    for (size_t i = 0; i < n_seen; i++) {
        const struct lia_codelist_info *info = list_for(seen[i]);
        assert_non_null(info);
        /* The list is named after the enum: HandlingCode <-> handling_code. */
        assert_non_null(strstr(seen[i]->c_name, "Liaison__V1__"));
    }
}

/* Each enum value other than UNSPECIFIED has a row with labels in en, fr, de, and each row is
 * a defined, non-zero enum value; codes and values are unique. */
static void test_rows_match_enum_values(void **state)
{
    (void)state;
    for (int l = 0; l < LIA_CODELIST__COUNT; l++) {
        const struct lia_codelist_info *info = lia_codelist_get((lia_codelist)l);
        const ProtobufCEnumDescriptor *d = info->descriptor;
        assert_non_null(d);
        assert_int_equal(info->n_entries, d->n_values - 1);
        for (unsigned v = 0; v < d->n_values; v++) {
            int value = d->values[v].value;
            if (value == 0) {
                assert_null(lia_code_label((lia_codelist)l, 0, "en"));
                continue;
            }
            const char *code = lia_code_string((lia_codelist)l, value);
            assert_non_null(code);
            assert_true(code[0] != '\0');
            static const char *langs[] = {"en", "fr", "de"};
            for (int k = 0; k < 3; k++) {
                const char *label = lia_code_label((lia_codelist)l, value, langs[k]);
                assert_non_null(label);
                assert_true(strlen(label) >= 2);
            }
            int parsed = -1;
            assert_int_equal(lia_code_parse((lia_codelist)l, code, &parsed), 0);
            assert_int_equal(parsed, value);
        }
        for (size_t r = 0; r < info->n_entries; r++) {
            const struct lia_code_entry *e = &info->entries[r];
            assert_int_not_equal(e->value, 0);
            assert_non_null(protobuf_c_enum_descriptor_get_value(d, e->value));
            for (size_t s = r + 1; s < info->n_entries; s++) {
                assert_int_not_equal(e->value, info->entries[s].value);
                assert_string_not_equal(e->code, info->entries[s].code);
            }
        }
    }
}

static void test_labels_by_language(void **state)
{
    const lia_codelist h = LIA_CODELIST_HANDLING_CODE;
    const int h2 = LIAISON__V1__HANDLING_CODE__HANDLING_CODE_H2;
    (void)state;
    assert_string_equal(lia_code_label(h, h2, "en"),
                        "Not to be passed on without the provider's permission");
    assert_string_equal(lia_code_label(h, h2, "fr"),
                        "Ne pas transmettre sans l'autorisation du fournisseur");
    assert_string_equal(lia_code_label(h, h2, "de"),
                        "Keine Weitergabe ohne Zustimmung des Übermittlers");
    assert_string_equal(lia_code_label(h, h2, "fr-BE"), lia_code_label(h, h2, "fr"));
    assert_string_equal(lia_code_label(h, h2, "DE"), lia_code_label(h, h2, "de"));
    assert_string_equal(lia_code_label(h, h2, "it"), lia_code_label(h, h2, "en"));
    assert_string_equal(lia_code_label(h, h2, NULL), lia_code_label(h, h2, "en"));
    assert_string_equal(lia_code_label(h, h2, "f"), lia_code_label(h, h2, "en"));
    assert_string_equal(lia_code_string(h, h2), "H2");
    assert_null(lia_code_label(h, 99, "en"));
    assert_null(lia_code_label((lia_codelist)LIA_CODELIST__COUNT, h2, "en"));
    assert_null(lia_code_label((lia_codelist)-1, h2, "en"));
    assert_null(lia_code_string(h, 0));
}

static void test_parse(void **state)
{
    int v = -1;
    (void)state;
    assert_int_equal(lia_code_parse(LIA_CODELIST_TLP, "AMBER+STRICT", &v), 0);
    assert_int_equal(v, LIAISON__V1__TLP__TLP_AMBER_STRICT);
    assert_int_equal(lia_code_parse(LIA_CODELIST_TLP, "amber+strict", &v), 0);
    assert_int_equal(v, LIAISON__V1__TLP__TLP_AMBER_STRICT);
    assert_int_equal(lia_code_parse(LIA_CODELIST_SOURCE_RELIABILITY, "X", &v), 0);
    assert_int_equal(v, LIAISON__V1__SOURCE_RELIABILITY__SOURCE_RELIABILITY_X);
    assert_int_equal(lia_code_parse(LIA_CODELIST_INFORMATION_ACCURACY, "3", &v), 0);
    assert_int_equal(v, LIAISON__V1__INFORMATION_ACCURACY__INFORMATION_ACCURACY_3);
    v = -1;
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, "H4", &v), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, "H", &v), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, "H22", &v), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, "", &v), LIA_ERR_NOT_FOUND);
    assert_int_equal(v, -1);
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, NULL, &v), LIA_ERR_INVALID);
    assert_int_equal(lia_code_parse(LIA_CODELIST_HANDLING_CODE, "H0", NULL), LIA_ERR_INVALID);
    assert_int_equal(lia_code_parse((lia_codelist)LIA_CODELIST__COUNT, "H0", &v), LIA_ERR_INVALID);
}

/* The refusal grounds are exactly (a) to (h) of Directive (EU) 2023/977, in order, and the
 * request urgencies carry the legal deadlines in their labels. */
static void test_legal_lists(void **state)
{
    const struct lia_codelist_info *r = lia_codelist_get(LIA_CODELIST_REFUSAL_GROUND);
    (void)state;
    assert_int_equal(r->n_entries, 8);
    for (size_t i = 0; i < 8; i++) {
        char code[2] = {(char)('a' + i), '\0'};
        assert_string_equal(r->entries[i].code, code);
        assert_int_equal(r->entries[i].value, (int)i + 1);
    }
    assert_non_null(
        strstr(lia_code_label(LIA_CODELIST_REQUEST_URGENCY,
                              LIAISON__V1__REQUEST_URGENCY__REQUEST_URGENCY_URGENT_DIRECT, "en"),
               "8 hours"));
    assert_non_null(
        strstr(lia_code_label(LIA_CODELIST_REQUEST_URGENCY,
                              LIAISON__V1__REQUEST_URGENCY__REQUEST_URGENCY_URGENT_INDIRECT, "de"),
               "3 Kalendertage"));
}

static void test_find(void **state)
{
    lia_codelist l = LIA_CODELIST__COUNT;
    (void)state;
    assert_int_equal(lia_codelist_find("refusal_ground", &l), 0);
    assert_int_equal(l, LIA_CODELIST_REFUSAL_GROUND);
    assert_string_equal(lia_codelist_get(l)->name, "refusal_ground");
    assert_ptr_equal(lia_codelist_get(l)->descriptor, &liaison__v1__refusal_ground__descriptor);
    assert_int_equal(lia_codelist_find("no_such_list", &l), LIA_ERR_NOT_FOUND);
    assert_int_equal(lia_codelist_find(NULL, &l), LIA_ERR_INVALID);
    assert_null(lia_codelist_get((lia_codelist)LIA_CODELIST__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_payload_enum_has_a_list),
        cmocka_unit_test(test_rows_match_enum_values),
        cmocka_unit_test(test_labels_by_language),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_legal_lists),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
