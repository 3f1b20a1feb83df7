/*
 * The officer registry (see officers.h): a small array of officers, each with its list of
 * assignments. Nodes have tens of officers with tens of channels each, so linear searches are
 * the simple and sufficient choice; every list is bounded (LIA_OFFICERS_MAX,
 * LIA_OFFICER_ASSIGN_MAX).
 */
#define _POSIX_C_SOURCE 200809L
#include "officers.h"
#include "envelope.h"
#include "error.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

struct assignment {
    char target[LIA_CHANNEL_MAX + 1];
    unsigned line; /* configuration line, 0 for a run-time assignment */
};

struct officer {
    char id[LIA_OFFICER_ID_MAX + 1];
    char account[LIA_OFFICER_ACCOUNT_MAX + 1];
    uid_t uid;
    struct assignment *a;
    size_t n, cap;
};

struct lia_officers {
    struct officer *o;
    size_t n, cap;
};

int lia_officer_id_valid(const char *s)
{
    size_t n = s ? strnlen(s, LIA_OFFICER_ID_MAX + 1) : 0;
    if (n == 0 || n > LIA_OFFICER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

int lia_officer_target_valid(const char *s)
{
    return s && (strcmp(s, LIA_OFFICER_ALL) == 0 || strcmp(s, LIA_OFFICER_DIRECT) == 0 ||
                 lia_channel_valid(s));
}

int lia_officers_new(lia_officers_t **out)
{
    if (!out)
        return LIA_ERR_INVALID;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : LIA_ERR_NOMEM;
}

void lia_officers_destroy(lia_officers_t **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++)
        free((*p)->o[i].a);
    free((*p)->o);
    free(*p);
    *p = NULL;
}

static struct officer *find(const lia_officers_t *o, const char *id)
{
    if (!o || !id)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->o[i].id, id) == 0)
            return &o->o[i];
    return NULL;
}

static struct assignment *find_target(const struct officer *of, const char *target)
{
    for (size_t i = 0; i < of->n; i++)
        if (strcmp(of->a[i].target, target) == 0)
            return &of->a[i];
    return NULL;
}

int lia_officers_add(lia_officers_t *o, const char *id, const char *account, uid_t uid)
{
    struct officer *of;

    if (!o || !lia_officer_id_valid(id) || !account ||
        strnlen(account, LIA_OFFICER_ACCOUNT_MAX + 1) > LIA_OFFICER_ACCOUNT_MAX)
        return LIA_ERR_INVALID;
    if (find(o, id) || lia_officers_by_uid(o, uid))
        return LIA_ERR_EXISTS;
    if (o->n == LIA_OFFICERS_MAX)
        return LIA_ERR_LIMIT;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        struct officer *no = realloc(o->o, cap * sizeof *no);
        if (!no)
            return LIA_ERR_NOMEM;
        o->o = no;
        o->cap = cap;
    }
    of = &o->o[o->n++];
    memset(of, 0, sizeof *of);
    strcpy(of->id, id);
    strcpy(of->account, account);
    of->uid = uid;
    return 0;
}

/* Appends an assignment (the caller checked that it is new and valid). */
static int add_assignment(struct officer *of, const char *target, unsigned line)
{
    if (of->n == LIA_OFFICER_ASSIGN_MAX)
        return LIA_ERR_LIMIT;
    if (of->n == of->cap) {
        size_t cap = of->cap ? of->cap * 2 : 4;
        struct assignment *na = realloc(of->a, cap * sizeof *na);
        if (!na)
            return LIA_ERR_NOMEM;
        of->a = na;
        of->cap = cap;
    }
    memset(&of->a[of->n], 0, sizeof of->a[of->n]);
    strcpy(of->a[of->n].target, target);
    of->a[of->n].line = line;
    of->n++;
    return 0;
}

/* ACCOUNT of an "officer" line: a numeric uid, or a user name known to the system. */
static int resolve_account(const char *account, uid_t *uid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (account[0] >= '0' && account[0] <= '9') {
        char *end;
        unsigned long v;
        errno = 0;
        v = strtoul(account, &end, 10);
        if (errno || *end || v > 0x7fffffffUL)
            return LIA_ERR_INVALID;
        *uid = (uid_t)v;
        return 0;
    }
    if (getpwnam_r(account, &pw, buf, sizeof buf, &res) != 0 || !res)
        return LIA_ERR_NOT_FOUND;
    *uid = res->pw_uid;
    return 0;
}

int lia_officers_from_config(const lia_config_t *cfg, lia_officers_t **out, char *err,
                             size_t err_len)
{
    size_t n;
    const lia_config_entry *e = lia_config_entries(cfg, &n);
    lia_officers_t *o = NULL;
    int rc;

    *out = NULL;
    if ((rc = lia_officers_new(&o)) != 0)
        goto fail;
    /* Officers first, so that assignments may come before or after their officer's line. */
    for (size_t i = 0; i < n; i++) {
        uid_t uid = 0;
        const char *id, *account;
        if (strcmp(e[i].name, "officer") != 0)
            continue;
        rc = LIA_ERR_CONFIG;
        if (e[i].n_args != 2) {
            lia_config_error(cfg, &e[i], "'officer' takes an officer id and an account", e[i].name,
                             err, err_len);
            goto fail;
        }
        id = e[i].args[0];
        account = e[i].args[1];
        if (!lia_officer_id_valid(id)) {
            lia_config_error(cfg, &e[i], "invalid officer id (1..64 of a-z 0-9 . _ -)", id, err,
                             err_len);
            goto fail;
        }
        if (strlen(account) > LIA_OFFICER_ACCOUNT_MAX || resolve_account(account, &uid) != 0) {
            lia_config_error(cfg, &e[i],
                             "no such local account (give a user name or a numeric uid)", account,
                             err, err_len);
            goto fail;
        }
        if (find(o, id)) {
            lia_config_error(cfg, &e[i], "officer declared twice", id, err, err_len);
            goto fail;
        }
        if (lia_officers_by_uid(o, uid)) {
            lia_config_error(cfg, &e[i], "account already mapped to another officer", account, err,
                             err_len);
            goto fail;
        }
        if ((rc = lia_officers_add(o, id, account, uid)) != 0) {
            if (rc == LIA_ERR_LIMIT) {
                lia_config_error(cfg, &e[i], "too many officers (at most 1024)", id, err, err_len);
                rc = LIA_ERR_CONFIG;
            }
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct officer *of;
        if (strcmp(e[i].name, "assign") != 0)
            continue;
        rc = LIA_ERR_CONFIG;
        if (e[i].n_args < 2) {
            lia_config_error(cfg, &e[i], "'assign' takes an officer id and channels", e[i].name,
                             err, err_len);
            goto fail;
        }
        if (!(of = find(o, e[i].args[0]))) {
            lia_config_error(cfg, &e[i], "no such officer (declare it first: officer ID ACCOUNT)",
                             e[i].args[0], err, err_len);
            goto fail;
        }
        for (size_t j = 1; j < e[i].n_args; j++) {
            const char *t = e[i].args[j];
            if (!lia_officer_target_valid(t)) {
                lia_config_error(cfg, &e[i], "invalid channel (a channel name, @direct or *)", t,
                                 err, err_len);
                goto fail;
            }
            if (find_target(of, t))
                continue; /* the same assignment twice says nothing more */
            if ((rc = add_assignment(of, t, e[i].line)) != 0) {
                if (rc == LIA_ERR_LIMIT) {
                    lia_config_error(cfg, &e[i], "too many assignments for this officer", t, err,
                                     err_len);
                    rc = LIA_ERR_CONFIG;
                }
                goto fail;
            }
            rc = LIA_ERR_CONFIG;
        }
    }
    *out = o;
    return 0;
fail:
    lia_officers_destroy(&o);
    return rc;
}

size_t lia_officers_count(const lia_officers_t *o)
{
    return o ? o->n : 0;
}

const char *lia_officers_id(const lia_officers_t *o, size_t i)
{
    return o && i < o->n ? o->o[i].id : NULL;
}

const char *lia_officers_account(const lia_officers_t *o, size_t i)
{
    return o && i < o->n ? o->o[i].account : NULL;
}

uid_t lia_officers_uid(const lia_officers_t *o, size_t i)
{
    return o && i < o->n ? o->o[i].uid : 0;
}

const char *lia_officers_by_uid(const lia_officers_t *o, uid_t uid)
{
    if (!o)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (o->o[i].uid == uid)
            return o->o[i].id;
    return NULL;
}

int lia_officers_exists(const lia_officers_t *o, const char *id)
{
    return find(o, id) != NULL;
}

size_t lia_officers_n_assigned(const lia_officers_t *o, const char *id)
{
    const struct officer *of = find(o, id);
    return of ? of->n : 0;
}

const char *lia_officers_assigned(const lia_officers_t *o, const char *id, size_t j,
                                  unsigned *config_line)
{
    const struct officer *of = find(o, id);
    if (!of || j >= of->n)
        return NULL;
    if (config_line)
        *config_line = of->a[j].line;
    return of->a[j].target;
}

int lia_officers_may_read(const lia_officers_t *o, const char *id, const char *channel)
{
    const struct officer *of = find(o, id);
    const char *t = channel && *channel ? channel : LIA_OFFICER_DIRECT;
    if (!of)
        return 0;
    if (channel && *channel && !lia_channel_valid(channel))
        return 0; /* never match a malformed name against anything, "*" included */
    return find_target(of, LIA_OFFICER_ALL) != NULL || find_target(of, t) != NULL;
}

int lia_officers_assign(lia_officers_t *o, const char *id, const char *target)
{
    struct officer *of = find(o, id);
    if (!lia_officer_target_valid(target))
        return LIA_ERR_INVALID;
    if (!of)
        return LIA_ERR_NOT_FOUND;
    if (find_target(of, target))
        return LIA_ERR_EXISTS;
    return add_assignment(of, target, 0);
}

int lia_officers_unassign(lia_officers_t *o, const char *id, const char *target)
{
    struct officer *of = find(o, id);
    struct assignment *a;
    if (!of || !target || !(a = find_target(of, target)))
        return LIA_ERR_NOT_FOUND;
    if (a->line)
        return LIA_ERR_CONFIG;
    /* Keep the order of the others: listings show assignments in the order they were made. */
    memmove(a, a + 1, (size_t)(of->a + of->n - (a + 1)) * sizeof *a);
    of->n--;
    return 0;
}

int lia_officers_runtime_encode(const lia_officers_t *o, const char *id, uint8_t **out, size_t *len)
{
    const struct officer *of = find(o, id);
    size_t total = 0, k = 0;
    uint8_t *buf;

    if (!out || !len)
        return LIA_ERR_INVALID;
    *out = NULL;
    *len = 0;
    if (!of)
        return LIA_ERR_NOT_FOUND;
    for (size_t i = 0; i < of->n; i++)
        if (!of->a[i].line)
            total += strlen(of->a[i].target) + 1;
    if (!(buf = malloc(total ? total : 1)))
        return LIA_ERR_NOMEM;
    for (size_t i = 0; i < of->n; i++) {
        size_t tl;
        if (of->a[i].line)
            continue;
        if (k)
            buf[k++] = '\n';
        tl = strlen(of->a[i].target);
        memcpy(buf + k, of->a[i].target, tl);
        k += tl;
    }
    *out = buf;
    *len = k;
    return 0;
}

/* One pass over stored run-time assignments: counting (add 0) or adding (add 1). */
struct decode_pass {
    struct officer *of;
    int add;
    size_t fresh; /* targets not held yet (an input line repeated counts twice: an upper bound) */
};

/* Walks the lines of val, each checked: 1..LIA_CHANNEL_MAX bytes, a valid target. */
static int each_line(const uint8_t *val, size_t len, struct decode_pass *p)
{
    size_t start = 0;
    if (len == 0)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char t[LIA_CHANNEL_MAX + 1];
        size_t tl;
        int rc;
        if (i < len && val[i] != '\n')
            continue;
        tl = i - start;
        if (tl == 0 || tl > LIA_CHANNEL_MAX)
            return LIA_ERR_DECODE;
        memcpy(t, val + start, tl);
        t[tl] = '\0';
        if (memchr(t, '\0', tl) || !lia_officer_target_valid(t))
            return LIA_ERR_DECODE;
        start = i + 1;
        if (!p->of || find_target(p->of, t))
            continue;
        if (!p->add)
            p->fresh++;
        else if ((rc = add_assignment(p->of, t, 0)) != 0)
            return rc;
    }
    return 0;
}

int lia_officers_runtime_decode(lia_officers_t *o, const char *id, const uint8_t *val, size_t len)
{
    struct decode_pass p = {find(o, id), 0, 0};
    int rc;

    if (!val && len)
        return LIA_ERR_INVALID;
    if (len > LIA_OFFICER_RUNTIME_MAX)
        return LIA_ERR_TOO_LARGE;
    /* Check everything first: a bad entry changes nothing. */
    if ((rc = each_line(val, len, &p)) != 0)
        return rc;
    if (!p.of)
        return LIA_ERR_NOT_FOUND;
    if (p.of->n + p.fresh > LIA_OFFICER_ASSIGN_MAX)
        return LIA_ERR_LIMIT;
    p.add = 1;
    return each_line(val, len, &p);
}
