/*
 * The officer registry of a node: which local accounts are operational liaison officers at
 * this node, under which officer id, and which channels each officer is assigned to.
 *
 * Officers are declared in the node's configuration ("officer ID ACCOUNT"); assignments come
 * from the configuration ("assign OFFICER TARGET...") and, at run time, from the node
 * administrator through the control socket (the daemon persists those in its store with
 * lia_officers_runtime_encode/decode). A target is a channel name, LIA_OFFICER_DIRECT (direct
 * messages, which belong to no channel) or LIA_OFFICER_ALL (everything the node receives).
 *
 * Precedence: the configuration wins. Officers exist only through the configuration; an
 * assignment made by the configuration cannot be removed at run time (LIA_ERR_CONFIG); run-time
 * assignments only add to it, and one that the configuration already makes is not kept twice.
 *
 * The module is pure bookkeeping: it reads no store and no socket, so the node (and tests) decide
 * when to persist.
 */
#ifndef LIA_OFFICERS_H
#define LIA_OFFICERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define LIA_OFFICER_ID_MAX      64        /* bytes of an officer id: 1..64 of [a-z0-9._-] */
#define LIA_OFFICER_ACCOUNT_MAX 64        /* bytes of the configured account text */
#define LIA_OFFICERS_MAX        1024      /* officers per node */
#define LIA_OFFICER_ASSIGN_MAX  1000      /* assignments per officer (configured and run-time) */
#define LIA_OFFICER_ALL         "*"       /* target: every channel and direct messages */
#define LIA_OFFICER_DIRECT      "@direct" /* target: direct messages (no channel) */
/* Largest encoded run-time assignment list: targets of up to 64 bytes, one per line. */
#define LIA_OFFICER_RUNTIME_MAX (LIA_OFFICER_ASSIGN_MAX * 65u)

typedef struct lia_officers lia_officers_t;

/* 1 if s is a valid officer id: 1..64 bytes of a-z 0-9 . _ -, starting with a letter or digit. */
int lia_officer_id_valid(const char *s);
/* 1 if s is a valid assignment target: a channel name, LIA_OFFICER_DIRECT or LIA_OFFICER_ALL. */
int lia_officer_target_valid(const char *s);

/*
 * Reads every "officer ID ACCOUNT" and "assign OFFICER TARGET..." directive of cfg (in any
 * order). ACCOUNT is a local user name (looked up now with getpwnam_r) or a numeric uid. Errors
 * (LIA_ERR_CONFIG, with "file:line: what: 'text'" in err): invalid id or target, unknown
 * account, an id or account given twice, assignment of an undeclared officer, too many.
 * A configuration without officer directives gives an empty registry (nobody may read).
 */
int lia_officers_from_config(const lia_config_t *cfg, lia_officers_t **out, char *err,
                             size_t err_len) __attribute__((warn_unused_result));
/* An empty registry (for tests and tools). */
int lia_officers_new(lia_officers_t **out) __attribute__((warn_unused_result));
/* Declares an officer (what an "officer" line does); LIA_ERR_INVALID bad id, LIA_ERR_EXISTS
 * id or uid already declared, LIA_ERR_LIMIT too many. account is only recorded for display. */
int lia_officers_add(lia_officers_t *o, const char *id, const char *account, uid_t uid)
    __attribute__((warn_unused_result));
void lia_officers_destroy(lia_officers_t **p);

size_t lia_officers_count(const lia_officers_t *o);
/* The i-th officer (declaration order): id, account text, uid; NULL / 0 if i is out of range. */
const char *lia_officers_id(const lia_officers_t *o, size_t i);
const char *lia_officers_account(const lia_officers_t *o, size_t i);
uid_t lia_officers_uid(const lia_officers_t *o, size_t i);
/* The officer id mapped from a local uid, or NULL: the string lives as long as the registry. */
const char *lia_officers_by_uid(const lia_officers_t *o, uid_t uid);
/* 1 if id is a declared officer. */
int lia_officers_exists(const lia_officers_t *o, const char *id);

/* Number of assignments of officer id (0 if unknown) and the j-th of them, in the order they
 * were made; *config_line (if not NULL) is the configuration line, or 0 for a run-time one. */
size_t lia_officers_n_assigned(const lia_officers_t *o, const char *id);
const char *lia_officers_assigned(const lia_officers_t *o, const char *id, size_t j,
                                  unsigned *config_line);

/*
 * 1 if officer id may read and send on channel: it is assigned to that channel or to
 * LIA_OFFICER_ALL; channel NULL or "" means a direct message, readable with LIA_OFFICER_DIRECT
 * or LIA_OFFICER_ALL. 0 for an unknown officer (or id NULL). Whether the node itself is a
 * member is for the caller to check.
 */
int lia_officers_may_read(const lia_officers_t *o, const char *id, const char *channel);

/*
 * Run-time assignment: 0 when added; LIA_ERR_EXISTS if already assigned (by either source),
 * LIA_ERR_NOT_FOUND unknown officer, LIA_ERR_INVALID bad target, LIA_ERR_LIMIT too many.
 */
int lia_officers_assign(lia_officers_t *o, const char *id, const char *target)
    __attribute__((warn_unused_result));
/*
 * Removes a run-time assignment: 0 when removed; LIA_ERR_CONFIG if the configuration makes
 * it (remove it there), LIA_ERR_NOT_FOUND if the officer is unknown or not assigned to target.
 */
int lia_officers_unassign(lia_officers_t *o, const char *id, const char *target)
    __attribute__((warn_unused_result));

/*
 * The run-time assignments of officer id, as stored: targets separated by '\n' (no trailing
 * newline; zero bytes when there are none). *out malloc'd (never NULL on success).
 */
int lia_officers_runtime_encode(const lia_officers_t *o, const char *id, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
/*
 * Adds the run-time assignments stored for officer id (the format above). The input is
 * checked completely before anything changes: LIA_ERR_TOO_LARGE over LIA_OFFICER_RUNTIME_MAX,
 * LIA_ERR_DECODE for an invalid target or an empty line, LIA_ERR_LIMIT if the officer would get
 * too many, LIA_ERR_NOT_FOUND for an unknown officer. Targets already assigned are skipped.
 */
int lia_officers_runtime_decode(lia_officers_t *o, const char *id, const uint8_t *val, size_t len)
    __attribute__((warn_unused_result));

#endif
