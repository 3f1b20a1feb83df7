/*
 * Look-ups in the generated code-list table (see codes.h): label by enum value and language,
 * external code by enum value, enum value by external code. The lists are small (at most a
 * dozen rows), so every look-up is a linear scan.
 */
#include "codes.h"

#include <string.h>

#include "error.h"

const struct lia_codelist_info *lia_codelist_get(lia_codelist list)
{
    if ((int)list < 0 || (int)list >= LIA_CODELIST__COUNT)
        return NULL;
    return &lia_codelists[list];
}

int lia_codelist_find(const char *name, lia_codelist *out)
{
    if (!name || !out)
        return LIA_ERR_INVALID;
    for (int i = 0; i < LIA_CODELIST__COUNT; i++) {
        if (strcmp(lia_codelists[i].name, name) == 0) {
            *out = (lia_codelist)i;
            return 0;
        }
    }
    return LIA_ERR_NOT_FOUND;
}

/* The row of enum_value in list, or NULL. */
static const struct lia_code_entry *find_value(lia_codelist list, int enum_value)
{
    const struct lia_codelist_info *info = lia_codelist_get(list);
    if (!info)
        return NULL;
    for (size_t i = 0; i < info->n_entries; i++)
        if (info->entries[i].value == enum_value)
            return &info->entries[i];
    return NULL;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* True if a and b are equal ignoring ASCII case. */
static int ascii_case_equal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* True if the primary language subtag of tag (before '-' or '_') is lang (lower case). */
static int lang_is(const char *tag, const char *lang)
{
    size_t n = strlen(lang);
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)tag[i]) != lang[i])
            return 0;
    return tag[n] == '\0' || tag[n] == '-' || tag[n] == '_';
}

const char *lia_code_label(lia_codelist list, int enum_value, const char *lang)
{
    const struct lia_code_entry *e = find_value(list, enum_value);
    if (!e)
        return NULL;
    if (lang && lang_is(lang, "fr"))
        return e->fr;
    if (lang && lang_is(lang, "de"))
        return e->de;
    return e->en;
}

const char *lia_code_string(lia_codelist list, int enum_value)
{
    const struct lia_code_entry *e = find_value(list, enum_value);
    return e ? e->code : NULL;
}

int lia_code_parse(lia_codelist list, const char *code, int *enum_value)
{
    const struct lia_codelist_info *info = lia_codelist_get(list);
    if (!info || !code || !enum_value)
        return LIA_ERR_INVALID;
    for (size_t i = 0; i < info->n_entries; i++) {
        if (ascii_case_equal(info->entries[i].code, code)) {
            *enum_value = info->entries[i].value;
            return 0;
        }
    }
    return LIA_ERR_NOT_FOUND;
}
