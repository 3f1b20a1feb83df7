/*
 * Code lists of the payload (handling codes, evaluation codes, TLP, classification levels,
 * data-subject categories, person roles, refusal grounds...) with their external codes ("H2",
 * "A", "AMBER+STRICT", "a"...) and English, French and German labels. The lists are data:
 * data/codes/<list>.csv, turned into a C table at build time by cmake/GenCodes.cmake; each list
 * is tied to the proto enum of the same name in payload.proto (handling_code <-> HandlingCode),
 * and the enum values used here are the protobuf-c ones. Nothing here is secret or personal.
 */
#ifndef LIA_CODES_H
#define LIA_CODES_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "codes_table.h" /* generated: typedef enum { LIA_CODELIST_... } lia_codelist */

/* One row of a code list. */
struct lia_code_entry {
    const char *code; /* external code, e.g. "H2" */
    int value;        /* protobuf-c enum value */
    const char *en;   /* labels, UTF-8 */
    const char *fr;
    const char *de;
};

/* One code list: its name (the CSV file name), the proto enum it labels, and its rows. */
struct lia_codelist_info {
    const char *name;
    const ProtobufCEnumDescriptor *descriptor;
    const struct lia_code_entry *entries;
    size_t n_entries;
};

/* The generated table, indexed by lia_codelist. */
extern const struct lia_codelist_info lia_codelists[LIA_CODELIST__COUNT];

/* The list's description, or NULL if list is out of range. */
const struct lia_codelist_info *lia_codelist_get(lia_codelist list);

/* Finds a list by name ("handling_code"). Returns 0, LIA_ERR_INVALID for a NULL argument, or
 * LIA_ERR_NOT_FOUND. */
int lia_codelist_find(const char *name, lia_codelist *out);

/* The label of enum_value in list, in lang ("en", "fr", "de"; a region subtag such as "fr-BE"
 * and any letter case are accepted; NULL or an unsupported language gives English). Returns
 * NULL if the list or the value is unknown (including the UNSPECIFIED value 0). */
const char *lia_code_label(lia_codelist list, int enum_value, const char *lang);

/* The external code of enum_value ("H2"), or NULL if the list or the value is unknown. */
const char *lia_code_string(lia_codelist list, int enum_value);

/* Parses an external code (ASCII case-insensitive: "amber+strict" is TLP_AMBER_STRICT) into
 * *enum_value. Returns 0, LIA_ERR_INVALID for a NULL argument or unknown list, or
 * LIA_ERR_NOT_FOUND; *enum_value is untouched on error. */
int lia_code_parse(lia_codelist list, const char *code, int *enum_value);

#endif
