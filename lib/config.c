/*
 * Configuration file parser (see config.h). The whole file is bounded and read once; lines
 * are tokenised in place into a list of entries that the daemon then interprets.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "error.h"
#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lia_config {
    char *path;
    lia_config_entry *entries;
    size_t n, cap;
};

static void set_err(char *err, size_t len, const char *path, unsigned line, const char *msg,
                    const char *text)
{
    if (!err || len == 0)
        return;
    if (line)
        snprintf(err, len, "%s:%u: %s: '%s'", path, line, msg, text ? text : "");
    else
        snprintf(err, len, "%s: %s", path, msg);
}

static void free_entry(lia_config_entry *e)
{
    for (size_t i = 0; i < e->n_args; i++)
        free(e->args[i]);
    free(e->args);
}

void lia_config_destroy(lia_config_t **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++)
        free_entry(&(*p)->entries[i]);
    free((*p)->entries);
    free((*p)->path);
    free(*p);
    *p = NULL;
}

/* Splits one line into tokens; returns the count or -1 on an unterminated quote. */
static int tokenize(char *s, char **tok, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            break;
        if (n == max)
            return -2;
        if (*s == '"') {
            char *end = strchr(++s, '"');
            if (!end)
                return -1;
            *end = '\0';
            tok[n++] = s;
            s = end + 1;
            if (*s && *s != ' ' && *s != '\t')
                return -1;
        } else {
            tok[n++] = s;
            while (*s && *s != ' ' && *s != '\t')
                s++;
            if (*s)
                *s++ = '\0';
        }
    }
    return n;
}

/* Levenshtein-free hint: a known name sharing the first three letters. */
static const char *suggest(const char *name, const lia_config_directive *k, size_t nk)
{
    for (size_t i = 0; i < nk; i++)
        if (strncmp(name, k[i].name, 3) == 0)
            return k[i].name;
    return NULL;
}

int lia_config_load(const char *path, const lia_config_directive *known, size_t n_known,
                    lia_config_t **out, char *err, size_t err_len)
{
    lia_config_t *c = NULL;
    uint8_t *buf = NULL;
    size_t len;
    char *line, *next, **tok = NULL;
    unsigned lineno = 0;
    int rc;

    *out = NULL;
    if ((rc = lia_file_read(path, LIA_CONFIG_MAX_BYTES, 0, &buf, &len)) != 0) {
        set_err(err, err_len, path, 0, lia_strerror(rc), NULL);
        return rc;
    }
    buf[len] = '\0';
    rc = LIA_ERR_NOMEM;
    c = calloc(1, sizeof *c);
    tok = calloc(LIA_CONFIG_MAX_ARGS + 1, sizeof *tok);
    if (!c || !tok || !(c->path = strdup(path)))
        goto fail;
    rc = LIA_ERR_CONFIG;
    if (memchr(buf, '\0', len)) {
        set_err(err, err_len, path, 0, "file contains a NUL byte", NULL);
        goto fail;
    }
    for (line = (char *)buf; line; line = next) {
        const lia_config_directive *d = NULL;
        char *raw;
        int n;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        raw = line;
        for (char *p = line; *p; p++)
            if (*p == '\r' && p[1] == '\0')
                *p = '\0';
            else if ((unsigned char)*p < 0x20 && *p != '\t') {
                set_err(err, err_len, path, lineno, "control character in line", raw);
                goto fail;
            }
        n = tokenize(line, tok, LIA_CONFIG_MAX_ARGS + 1);
        if (n == -1) {
            set_err(err, err_len, path, lineno, "unterminated or misplaced quote", raw);
            goto fail;
        }
        if (n == -2) {
            set_err(err, err_len, path, lineno, "too many arguments", raw);
            goto fail;
        }
        if (n == 0)
            continue;
        for (size_t i = 0; i < n_known; i++)
            if (strcmp(known[i].name, tok[0]) == 0)
                d = &known[i];
        if (!d) {
            char msg[160];
            const char *s = suggest(tok[0], known, n_known);
            if (s)
                snprintf(msg, sizeof msg, "unknown directive (did you mean '%s'?)", s);
            else
                snprintf(msg, sizeof msg, "unknown directive");
            set_err(err, err_len, path, lineno, msg, tok[0]);
            goto fail;
        }
        if (n - 1 < d->min_args || (d->max_args >= 0 && n - 1 > d->max_args)) {
            char msg[160];
            if (d->max_args == d->min_args)
                snprintf(msg, sizeof msg, "'%s' takes %d argument(s)", d->name, d->min_args);
            else if (d->max_args < 0)
                snprintf(msg, sizeof msg, "'%s' takes at least %d argument(s)", d->name,
                         d->min_args);
            else
                snprintf(msg, sizeof msg, "'%s' takes %d to %d arguments", d->name, d->min_args,
                         d->max_args);
            set_err(err, err_len, path, lineno, msg, tok[0]);
            goto fail;
        }
        if (!d->repeatable && lia_config_get(c, d->name)) {
            set_err(err, err_len, path, lineno, "directive given twice", tok[0]);
            goto fail;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            lia_config_entry *e = realloc(c->entries, cap * sizeof *e);
            if (!e) {
                rc = LIA_ERR_NOMEM;
                goto fail;
            }
            c->entries = e;
            c->cap = cap;
        }
        lia_config_entry *e = &c->entries[c->n];
        memset(e, 0, sizeof *e);
        e->name = d->name;
        e->line = lineno;
        e->args = calloc((size_t)n, sizeof *e->args);
        if (!e->args) {
            rc = LIA_ERR_NOMEM;
            goto fail;
        }
        c->n++;
        for (int i = 1; i < n; i++) {
            if (!(e->args[i - 1] = strdup(tok[i]))) {
                rc = LIA_ERR_NOMEM;
                goto fail;
            }
            e->n_args++;
        }
    }
    for (size_t i = 0; i < n_known; i++)
        if (known[i].required && !lia_config_get(c, known[i].name)) {
            char msg[160];
            snprintf(msg, sizeof msg, "missing required directive '%s' (%s)", known[i].name,
                     known[i].help);
            set_err(err, err_len, path, 0, msg, NULL);
            goto fail;
        }
    free(tok);
    free(buf);
    *out = c;
    return 0;
fail:
    free(tok);
    free(buf);
    lia_config_destroy(&c);
    return rc;
}

const char *lia_config_path(const lia_config_t *c)
{
    return c->path;
}

const lia_config_entry *lia_config_entries(const lia_config_t *c, size_t *n)
{
    *n = c->n;
    return c->entries;
}

const lia_config_entry *lia_config_get(const lia_config_t *c, const char *name)
{
    const lia_config_entry *found = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].name, name) == 0)
            found = &c->entries[i];
    return found;
}

const char *lia_config_str(const lia_config_t *c, const char *name, const char *def)
{
    const lia_config_entry *e = lia_config_get(c, name);
    return e && e->n_args > 0 ? e->args[0] : def;
}

void lia_config_error(const lia_config_t *c, const lia_config_entry *e, const char *msg,
                      const char *arg, char *err, size_t err_len)
{
    set_err(err, err_len, c->path, e ? e->line : 0, msg, arg);
}

int lia_config_uint(const lia_config_t *c, const char *name, uint64_t min, uint64_t max,
                    uint64_t def, uint64_t *out, char *err, size_t err_len)
{
    const lia_config_entry *e = lia_config_get(c, name);
    const char *s;
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (!e || e->n_args == 0) {
        *out = def;
        return 0;
    }
    s = e->args[0];
    if (!isdigit((unsigned char)s[0]))
        goto bad;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        goto bad;
    if (*end == 'k' || *end == 'K')
        mult = 1024, end++;
    else if (*end == 'M')
        mult = 1024 * 1024, end++;
    else if (*end == 'G')
        mult = 1024ull * 1024 * 1024, end++;
    if (*end != '\0' || v > UINT64_MAX / mult)
        goto bad;
    v *= mult;
    if (v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad : {
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' wants a whole number from %llu to %llu", name,
             (unsigned long long)min, (unsigned long long)max);
    set_err(err, err_len, c->path, e->line, msg, s);
    return LIA_ERR_CONFIG;
}
}
