/* Configured channel membership (see channels.h). Members are kept sorted so that key
 * grants can be built in the canonical order directly. */
#define _POSIX_C_SOURCE 200809L
#include "channels.h"
#include "cert.h"
#include "envelope.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

struct channel {
    char *name;
    char **members;
    size_t n;
};

struct lia_channels {
    struct channel *ch;
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void lia_channels_destroy(lia_channels_t **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++) {
        for (size_t j = 0; j < (*p)->ch[i].n; j++)
            free((*p)->ch[i].members[j]);
        free((*p)->ch[i].members);
        free((*p)->ch[i].name);
    }
    free((*p)->ch);
    free(*p);
    *p = NULL;
}

static const struct channel *find(const lia_channels_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ch[i].name, name) == 0)
            return &c->ch[i];
    return NULL;
}

int lia_channels_from_config(const lia_config_t *cfg, lia_channels_t **out, char *err,
                             size_t err_len)
{
    size_t n;
    const lia_config_entry *e = lia_config_entries(cfg, &n);
    lia_channels_t *c = calloc(1, sizeof *c);
    int rc = LIA_ERR_NOMEM;

    *out = NULL;
    if (!c || !(c->ch = calloc(n ? n : 1, sizeof *c->ch)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        struct channel *ch;
        if (strcmp(e[i].name, "channel") != 0)
            continue;
        rc = LIA_ERR_CONFIG;
        if (!lia_channel_valid(e[i].args[0])) {
            lia_config_error(cfg, &e[i], "invalid channel name", e[i].args[0], err, err_len);
            goto fail;
        }
        if (find(c, e[i].args[0])) {
            lia_config_error(cfg, &e[i], "channel defined twice", e[i].args[0], err, err_len);
            goto fail;
        }
        rc = LIA_ERR_NOMEM;
        ch = &c->ch[c->n];
        if (!(ch->name = strdup(e[i].args[0])) ||
            !(ch->members = calloc(e[i].n_args, sizeof *ch->members)))
            goto fail;
        c->n++;
        for (size_t j = 1; j < e[i].n_args; j++) {
            if (!lia_node_id_valid(e[i].args[j])) {
                lia_config_error(cfg, &e[i], "invalid node id", e[i].args[j], err, err_len);
                rc = LIA_ERR_CONFIG;
                goto fail;
            }
            if (!(ch->members[ch->n] = strdup(e[i].args[j])))
                goto fail;
            ch->n++;
        }
        qsort(ch->members, ch->n, sizeof *ch->members, cmp_str);
        for (size_t j = 1; j < ch->n; j++)
            if (strcmp(ch->members[j - 1], ch->members[j]) == 0) {
                lia_config_error(cfg, &e[i], "member listed twice", ch->members[j], err,
                                 err_len);
                rc = LIA_ERR_CONFIG;
                goto fail;
            }
    }
    *out = c;
    return 0;
fail:
    lia_channels_destroy(&c);
    return rc;
}

size_t lia_channels_count(const lia_channels_t *c)
{
    return c->n;
}

const char *lia_channels_name(const lia_channels_t *c, size_t i)
{
    return i < c->n ? c->ch[i].name : NULL;
}

const char *const *lia_channels_members(const lia_channels_t *c, const char *channel, size_t *n)
{
    const struct channel *ch = find(c, channel);
    *n = ch ? ch->n : 0;
    return ch ? (const char *const *)ch->members : NULL;
}

int lia_channels_is_member(void *channels, const char *channel, const char *node)
{
    size_t n;
    const char *const *m = lia_channels_members(channels, channel, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i], node) == 0)
            return 1;
    return 0;
}
