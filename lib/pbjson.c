/*
 * JSON <-> protobuf-c through message descriptors (see pbjson.h). Messages built here use
 * the default allocator with the layout protobuf-c expects, so protobuf_c_message_free_unpacked
 * frees them: a value is stored into a message only once it is complete, counts of repeated
 * fields only cover initialised elements, and a oneof's case is set together with its member.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "error.h"
#include "utf8.h"

/* ------------------------------------------------------------------ helpers */

struct ctx {
    char path[512];
    size_t plen;
    int depth;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *x, int code, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!x->err || !x->errlen)
        return code;
    n = snprintf(x->err, x->errlen, "%s: ", x->plen ? x->path : "top level");
    if (n >= 0 && (size_t)n < x->errlen) {
        va_start(ap, fmt);
        vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static size_t push_name(struct ctx *x, const char *name)
{
    size_t old = x->plen;
    int n = snprintf(x->path + old, sizeof x->path - old, "%s%s", old ? "." : "", name);
    if (n < 0 || (size_t)n >= sizeof x->path - old)
        x->plen = sizeof x->path - 1; /* truncated; still NUL-terminated */
    else
        x->plen = old + (size_t)n;
    return old;
}

static size_t push_index(struct ctx *x, size_t i)
{
    size_t old = x->plen;
    int n = snprintf(x->path + old, sizeof x->path - old, "[%zu]", i);
    if (n < 0 || (size_t)n >= sizeof x->path - old)
        x->plen = sizeof x->path - 1;
    else
        x->plen = old + (size_t)n;
    return old;
}

static void pop(struct ctx *x, size_t old)
{
    x->plen = old;
    x->path[old] = '\0';
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static const char *type_name(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
    case json_type_int:
        return "a number";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "?";
}

/* ------------------------------------------------------------------ enums */

/* Length of the enum prefix ("HANDLING_CODE_") derived from the enum's short name, written
 * to buf; 0 if it does not fit. */
static size_t enum_prefix(const ProtobufCEnumDescriptor *d, char *buf, size_t cap)
{
    const char *s = d->short_name ? d->short_name : "";
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i > 0 && isupper(c) &&
            (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]))) {
            if (n + 1 >= cap)
                return 0;
            buf[n++] = '_';
        }
        if (n + 1 >= cap)
            return 0;
        buf[n++] = (char)toupper(c);
    }
    if (n == 0 || n + 2 > cap)
        return 0;
    buf[n++] = '_';
    buf[n] = '\0';
    return n;
}

static int norm_char(int c)
{
    if (c == '-' || c == '+' || c == ' ')
        return '_';
    return toupper(c);
}

static int name_matches(const char *want, const char *name)
{
    size_t i;
    for (i = 0; want[i] && name[i]; i++)
        if (norm_char((unsigned char)want[i]) != norm_char((unsigned char)name[i]))
            return 0;
    return want[i] == '\0' && name[i] == '\0';
}

const ProtobufCEnumValue *lia_pbjson_enum_lookup(const ProtobufCEnumDescriptor *d, const char *name)
{
    const ProtobufCEnumValue *v;
    char prefix[256];
    size_t plen;

    if (!d || !name || !*name)
        return NULL;
    v = protobuf_c_enum_descriptor_get_value_by_name(d, name);
    if (v)
        return v;
    plen = enum_prefix(d, prefix, sizeof prefix);
    for (unsigned i = 0; i < d->n_values; i++) {
        const char *full = d->values[i].name;
        if (name_matches(name, full))
            return &d->values[i];
        if (plen && strncmp(full, prefix, plen) == 0 && full[plen] &&
            name_matches(name, full + plen))
            return &d->values[i];
    }
    return NULL;
}

const char *lia_pbjson_enum_short(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v;
    char prefix[256];
    size_t plen;

    if (!d)
        return "?";
    v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v)
        return "?";
    plen = enum_prefix(d, prefix, sizeof prefix);
    if (plen && strncmp(v->name, prefix, plen) == 0 && v->name[plen])
        return v->name + plen;
    return v->name;
}

/* ------------------------------------------------------------------ JSON -> message */

/* An integer from JSON: negative values in i (neg = 1), others in u. */
struct jint {
    int neg;
    int64_t i;
    uint64_t u;
};

static int get_int(struct ctx *x, json_object *o, struct jint *v)
{
    memset(v, 0, sizeof(*v));
    if (json_object_is_type(o, json_type_int)) {
        int64_t i = json_object_get_int64(o);
        if (i < 0) {
            v->neg = 1;
            v->i = i;
        } else {
            v->u = json_object_get_uint64(o);
        }
        return 0;
    }
    if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        size_t n = (size_t)json_object_get_string_len(o);
        const char *digits = s[0] == '-' ? s + 1 : s;
        char *end = NULL;
        if (n == 0 || n > 24 || strlen(s) != n || !*digits)
            return fail(x, LIA_ERR_DECODE, "expected an integer, got the string '%.40s'", s);
        for (const char *p = digits; *p; p++)
            if (*p < '0' || *p > '9')
                return fail(x, LIA_ERR_DECODE, "expected an integer, got the string '%.40s'", s);
        errno = 0;
        if (s[0] == '-') {
            v->i = strtoll(s, &end, 10);
            v->neg = v->i < 0;
        } else {
            v->u = strtoull(s, &end, 10);
        }
        if (errno == ERANGE || !end || *end)
            return fail(x, LIA_ERR_DECODE, "value %s is out of range", s);
        return 0;
    }
    if (json_object_is_type(o, json_type_double))
        return fail(x, LIA_ERR_DECODE, "expected an integer, got %s",
                    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    return fail(x, LIA_ERR_DECODE, "expected an integer, got %s", type_name(o));
}

static int range_fail(struct ctx *x, const struct jint *v, const char *what)
{
    if (v->neg)
        return fail(x, LIA_ERR_DECODE, "value %" PRId64 " is out of range for %s", v->i, what);
    return fail(x, LIA_ERR_DECODE, "value %" PRIu64 " is out of range for %s", v->u, what);
}

static int get_double(struct ctx *x, json_object *o, double *d)
{
    if (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)) {
        *d = json_object_get_double(o);
        return 0;
    }
    if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        if (strcmp(s, "NaN") == 0)
            *d = NAN;
        else if (strcmp(s, "Infinity") == 0)
            *d = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            *d = -INFINITY;
        else
            return fail(x, LIA_ERR_DECODE, "expected a number, got the string '%.40s'", s);
        return 0;
    }
    return fail(x, LIA_ERR_DECODE, "expected a number, got %s", type_name(o));
}

static int parse_message(struct ctx *x, const ProtobufCMessageDescriptor *desc, json_object *o,
                         ProtobufCMessage **out);

/* Parses one value of field fd from o into dst (an element of fd's C type). On failure,
 * nothing is left allocated in dst. */
static int parse_value(struct ctx *x, const ProtobufCFieldDescriptor *fd, json_object *o, void *dst)
{
    struct jint v;
    int rc;

    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = get_int(x, o, &v)) < 0)
            return rc;
        if (v.neg ? v.i < INT32_MIN : v.u > INT32_MAX)
            return range_fail(x, &v, "a 32-bit signed integer");
        *(int32_t *)dst = v.neg ? (int32_t)v.i : (int32_t)v.u;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = get_int(x, o, &v)) < 0)
            return rc;
        if (v.neg || v.u > UINT32_MAX)
            return range_fail(x, &v, "a 32-bit unsigned integer");
        *(uint32_t *)dst = (uint32_t)v.u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = get_int(x, o, &v)) < 0)
            return rc;
        if (!v.neg && v.u > INT64_MAX)
            return range_fail(x, &v, "a 64-bit signed integer");
        *(int64_t *)dst = v.neg ? v.i : (int64_t)v.u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = get_int(x, o, &v)) < 0)
            return rc;
        if (v.neg)
            return range_fail(x, &v, "a 64-bit unsigned integer");
        *(uint64_t *)dst = v.u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        double d;
        if ((rc = get_double(x, o, &d)) < 0)
            return rc;
        if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
            return fail(x, LIA_ERR_DECODE, "value %g is out of range for a float", d);
        *(float *)dst = (float)d;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(x, o, (double *)dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(o, json_type_boolean))
            return fail(x, LIA_ERR_DECODE, "expected true or false, got %s", type_name(o));
        *(protobuf_c_boolean *)dst = json_object_get_boolean(o) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = fd->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (json_object_is_type(o, json_type_string)) {
            const char *s = json_object_get_string(o);
            if (strlen(s) == (size_t)json_object_get_string_len(o))
                ev = lia_pbjson_enum_lookup(ed, s);
            if (!ev)
                return fail(x, LIA_ERR_DECODE, "unknown value '%.64s' for %s", s, ed->name);
        } else if (json_object_is_type(o, json_type_int)) {
            if ((rc = get_int(x, o, &v)) < 0)
                return rc;
            if (v.neg ? v.i >= INT32_MIN : v.u <= INT32_MAX)
                ev = protobuf_c_enum_descriptor_get_value(ed, v.neg ? (int)v.i : (int)v.u);
            if (!ev)
                return range_fail(x, &v, ed->name);
        } else {
            return fail(x, LIA_ERR_DECODE, "expected a name of %s, got %s", ed->name, type_name(o));
        }
        *(int *)dst = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        size_t n;
        char *copy;
        if (!json_object_is_type(o, json_type_string))
            return fail(x, LIA_ERR_DECODE, "expected a string, got %s", type_name(o));
        s = json_object_get_string(o);
        n = (size_t)json_object_get_string_len(o);
        if (strlen(s) != n)
            return fail(x, LIA_ERR_DECODE, "string contains a NUL character");
        if (!lia_utf8_valid(s, n, LIA_UTF8_CONTROLS))
            return fail(x, LIA_ERR_DECODE, "string is not valid UTF-8");
        copy = malloc(n + 1);
        if (!copy)
            return fail(x, LIA_ERR_NOMEM, "out of memory");
        memcpy(copy, s, n + 1);
        *(char **)dst = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        const char *s;
        size_t n, max, got = 0;
        const char *end = NULL;
        uint8_t *buf;
        if (!json_object_is_type(o, json_type_string))
            return fail(x, LIA_ERR_DECODE, "expected a base64 string, got %s", type_name(o));
        s = json_object_get_string(o);
        n = (size_t)json_object_get_string_len(o);
        b->len = 0;
        b->data = NULL;
        if (n == 0)
            return 0;
        max = n / 4 * 3 + 3;
        buf = malloc(max);
        if (!buf)
            return fail(x, LIA_ERR_NOMEM, "out of memory");
        if (sodium_base642bin(buf, max, s, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) !=
                0 ||
            end != s + n) {
            free(buf);
            return fail(x, LIA_ERR_DECODE,
                        "invalid base64 (standard alphabet with '=' padding expected)");
        }
        b->data = buf;
        b->len = got;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!json_object_is_type(o, json_type_object))
            return fail(x, LIA_ERR_DECODE, "expected an object (%s), got %s",
                        ((const ProtobufCMessageDescriptor *)fd->descriptor)->name, type_name(o));
        return parse_message(x, fd->descriptor, o, (ProtobufCMessage **)dst);
    }
    return fail(x, LIA_ERR_DECODE, "unsupported field type");
}

static int parse_repeated(struct ctx *x, ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                          json_object *o)
{
    size_t *count = (size_t *)((char *)m + fd->quantifier_offset);
    void **arr = (void **)((char *)m + fd->offset);
    size_t n, es = elem_size(fd->type);
    int rc;

    if (!json_object_is_type(o, json_type_array))
        return fail(x, LIA_ERR_DECODE, "expected an array, got %s", type_name(o));
    n = json_object_array_length(o);
    if (n == 0)
        return 0;
    *arr = calloc(n, es);
    if (!*arr)
        return fail(x, LIA_ERR_NOMEM, "out of memory");
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        size_t old = push_index(x, i);
        if (!e || json_object_is_type(e, json_type_null))
            rc = fail(x, LIA_ERR_DECODE, "null is not allowed in an array");
        else
            rc = parse_value(x, fd, e, (char *)*arr + i * es);
        if (rc < 0)
            return rc; /* elements [0, *count) are owned by m and freed with it */
        pop(x, old);
        (*count)++;
    }
    return 0;
}

static int parse_field(struct ctx *x, ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                       json_object *o)
{
    void *dst = (char *)m + fd->offset;
    uint8_t tmp[sizeof(ProtobufCBinaryData) > 8 ? sizeof(ProtobufCBinaryData) : 8];
    int rc;

    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        if (json_object_is_type(o, json_type_null))
            return 0;
        return parse_repeated(x, m, fd, o);
    }
    if (json_object_is_type(o, json_type_null))
        return 0; /* not set */
    memset(tmp, 0, sizeof tmp);
    rc = parse_value(x, fd, o, tmp);
    if (rc < 0)
        return rc;
    /* Store: the previous value is a default (each key appears once; a oneof was checked). */
    memcpy(dst, tmp, elem_size(fd->type));
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)m + fd->quantifier_offset) = fd->id;
    else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
             fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)((char *)m + fd->quantifier_offset) = 1;
    return 0;
}

static int parse_message(struct ctx *x, const ProtobufCMessageDescriptor *desc, json_object *o,
                         ProtobufCMessage **out)
{
    ProtobufCMessage *m;
    int rc = 0;

    *out = NULL;
    if (!json_object_is_type(o, json_type_object))
        return fail(x, LIA_ERR_DECODE, "expected an object (%s), got %s", desc->name, type_name(o));
    if (++x->depth > LIA_PBJSON_MAX_DEPTH) {
        x->depth--;
        return fail(x, LIA_ERR_TOO_LARGE, "nested deeper than %d levels", LIA_PBJSON_MAX_DEPTH);
    }
    m = calloc(1, desc->sizeof_message);
    if (!m) {
        x->depth--;
        return fail(x, LIA_ERR_NOMEM, "out of memory");
    }
    protobuf_c_message_init(desc, m);

    json_object_object_foreach(o, key, val)
    {
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        size_t old = push_name(x, key);
        if (!fd) {
            rc = fail(x, LIA_ERR_DECODE, "unknown field for %s", desc->name);
            break;
        }
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            !json_object_is_type(val, json_type_null)) {
            uint32_t cur = *(uint32_t *)((char *)m + fd->quantifier_offset);
            if (cur != 0 && cur != fd->id) {
                const ProtobufCFieldDescriptor *other =
                    protobuf_c_message_descriptor_get_field(desc, (unsigned)cur);
                rc = fail(x, LIA_ERR_DECODE, "only one of a oneof may be set (already set: %s)",
                          other ? other->name : "?");
                break;
            }
        }
        rc = parse_field(x, m, fd, val);
        if (rc < 0)
            break;
        pop(x, old);
    }
    x->depth--;
    if (rc < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    if (!protobuf_c_message_check(m)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return fail(x, LIA_ERR_DECODE, "required fields of %s are missing", desc->name);
    }
    *out = m;
    return 0;
}

int lia_pbjson_from_object(const ProtobufCMessageDescriptor *desc, struct json_object *obj,
                           ProtobufCMessage **out, char *err, size_t errlen)
{
    struct ctx x;
    if (err && errlen)
        err[0] = '\0';
    if (!desc || !out)
        return LIA_ERR_INVALID;
    *out = NULL;
    memset(&x, 0, sizeof x);
    x.err = err;
    x.errlen = errlen;
    if (!obj)
        return fail(&x, LIA_ERR_DECODE, "expected an object (%s), got null", desc->name);
    return parse_message(&x, desc, obj, out);
}

int lia_pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                     ProtobufCMessage **out, char *err, size_t errlen)
{
    struct ctx x;
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t end;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!desc || !out || (len && !json))
        return LIA_ERR_INVALID;
    *out = NULL;
    memset(&x, 0, sizeof x);
    x.err = err;
    x.errlen = errlen;
    if (len > LIA_PBJSON_MAX_INPUT)
        return fail(&x, LIA_ERR_TOO_LARGE, "JSON text of %zu bytes exceeds the limit of %u bytes",
                    len, LIA_PBJSON_MAX_INPUT);
    tok = json_tokener_new_ex(LIA_PBJSON_MAX_DEPTH);
    if (!tok)
        return fail(&x, LIA_ERR_NOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, json ? json : "", (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (!obj || jerr != json_tokener_success) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < end && i < len; i++) {
            if (json[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (jerr == json_tokener_error_depth)
            rc = fail(&x, LIA_ERR_TOO_LARGE, "JSON nested deeper than %d levels",
                      LIA_PBJSON_MAX_DEPTH);
        else if (jerr == json_tokener_continue || (jerr == json_tokener_success && !obj))
            rc = fail(&x, LIA_ERR_DECODE, "JSON text is incomplete (%s)",
                      len ? "unexpected end" : "empty input");
        else
            rc = fail(&x, LIA_ERR_DECODE, "JSON syntax error at line %zu, column %zu: %s", line,
                      col, json_tokener_error_desc(jerr));
        json_object_put(obj);
        json_tokener_free(tok);
        return rc;
    }
    json_tokener_free(tok);
    for (size_t i = end; i < len; i++) {
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r') {
            json_object_put(obj);
            return fail(&x, LIA_ERR_DECODE, "unexpected data after the JSON value (offset %zu)", i);
        }
    }
    rc = parse_message(&x, desc, obj, out);
    json_object_put(obj);
    return rc;
}

/* ------------------------------------------------------------------ message -> JSON */

static json_object *value_to_json(const ProtobufCFieldDescriptor *fd, const void *p);

static int is_default(const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)p == NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0.0f && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0.0 && !signbit(*(const double *)p);
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, elem_size(fd->type)) == 0;
    }
    }
}

static json_object *message_to_json(const ProtobufCMessage *m);

static json_object *double_to_json(double d, int is_float)
{
    char buf[40];
    if (isnan(d))
        return json_object_new_string("NaN");
    if (isinf(d))
        return json_object_new_string(d > 0 ? "Infinity" : "-Infinity");
    if (is_float) {
        snprintf(buf, sizeof buf, "%.9g", d);
        return json_object_new_double_s(d, buf);
    }
    return json_object_new_double(d);
}

static json_object *value_to_json(const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_object_new_int64(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_object_new_int64(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_object_new_int64(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_object_new_uint64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return double_to_json(*(const float *)p, 1);
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_to_json(*(const double *)p, 0);
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *)p ? 1 : 0);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
        return ev ? json_object_new_string(ev->name) : json_object_new_int(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return json_object_new_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        size_t n = sodium_base64_encoded_len(b->len, sodium_base64_VARIANT_ORIGINAL);
        char *s = malloc(n);
        json_object *o;
        if (!s)
            return NULL;
        sodium_bin2base64(s, n, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
        o = json_object_new_string_len(s, (int)(n - 1));
        free(s);
        return o;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        return sub ? message_to_json(sub) : json_object_new_object();
    }
    }
    return NULL;
}

static json_object *message_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_object *obj = json_object_new_object();

    if (!obj)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *p = (const char *)m + fd->offset;
        json_object *val;

        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + fd->quantifier_offset);
            const char *base = *(const char *const *)p;
            size_t es = elem_size(fd->type);
            if (n == 0 || !base)
                continue;
            val = json_object_new_array_ext((int)(n < 1024 ? n : 1024));
            if (!val)
                goto fail;
            for (size_t k = 0; k < n; k++) {
                json_object *e = value_to_json(fd, base + k * es);
                if (!e || json_object_array_add(val, e) != 0) {
                    json_object_put(e);
                    json_object_put(val);
                    goto fail;
                }
            }
        } else {
            if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *)((const char *)m + fd->quantifier_offset) != fd->id)
                    continue;
            } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
                       fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING) {
                if (!*(const protobuf_c_boolean *)((const char *)m + fd->quantifier_offset))
                    continue;
            } else if (fd->label != PROTOBUF_C_LABEL_REQUIRED && is_default(fd, p)) {
                continue;
            }
            val = value_to_json(fd, p);
            if (!val)
                goto fail;
        }
        if (json_object_object_add(obj, fd->name, val) != 0) {
            json_object_put(val);
            goto fail;
        }
    }
    return obj;
fail:
    json_object_put(obj);
    return NULL;
}

int lia_pbjson_to_object(const ProtobufCMessage *m, struct json_object **out)
{
    if (!m || !out)
        return LIA_ERR_INVALID;
    *out = message_to_json(m);
    return *out ? 0 : LIA_ERR_NOMEM;
}

int lia_pbjson_format(const ProtobufCMessage *m, int flags, char **out)
{
    json_object *o;
    const char *s;
    int rc;

    if (!out)
        return LIA_ERR_INVALID;
    *out = NULL;
    rc = lia_pbjson_to_object(m, &o);
    if (rc < 0)
        return rc;
    s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_NOSLASHESCAPE |
               ((flags & LIA_PBJSON_PRETTY) ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                            : JSON_C_TO_STRING_PLAIN));
    if (s)
        *out = strdup(s);
    json_object_put(o);
    return *out ? 0 : LIA_ERR_NOMEM;
}
