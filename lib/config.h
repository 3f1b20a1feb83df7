/*
 * Configuration files: one directive per line, "name arg arg ...", '#' starts a comment,
 * arguments separated by blanks, double quotes for arguments with blanks. Every error names the
 * file, the line and the offending text, e.g.
 *   broker.conf:12: unknown directive 'lisen' (did you mean 'listen'?)
 * Each daemon declares the directives it knows (name, argument counts, repeatable or not);
 * anything else is an error, so a typo never silently falls back to a default.
 */
#ifndef LIA_CONFIG_H
#define LIA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define LIA_CONFIG_MAX_BYTES (1u << 20)
#define LIA_CONFIG_MAX_ARGS  512

typedef struct {
    const char *name;
    int min_args, max_args; /* max_args -1: unbounded (up to LIA_CONFIG_MAX_ARGS) */
    int repeatable;
    int required;
    const char *help; /* one line for check-only output and docs */
} lia_config_directive;

typedef struct {
    const char *name;
    char **args;
    size_t n_args;
    unsigned line;
} lia_config_entry;

typedef struct lia_config lia_config_t;

/*
 * Parses path against the known directives. On error returns LIA_ERR_CONFIG (or an I/O code)
 * and writes a one-line message "file:line: what: 'text'" into err (err_len bytes).
 */
int lia_config_load(const char *path, const lia_config_directive *known, size_t n_known,
                    lia_config_t **out, char *err, size_t err_len) __attribute__((warn_unused_result));
void lia_config_destroy(lia_config_t **p);

const char *lia_config_path(const lia_config_t *c);
/* The entries in file order; *n set. */
const lia_config_entry *lia_config_entries(const lia_config_t *c, size_t *n);
/* The (last) entry for name, or NULL. */
const lia_config_entry *lia_config_get(const lia_config_t *c, const char *name);
/* First argument of name, or def if absent. */
const char *lia_config_str(const lia_config_t *c, const char *name, const char *def);

/*
 * Integer argument of name in [min, max] (suffixes k, M, G multiply by 1024^n for sizes), or
 * def if absent; on a bad value returns LIA_ERR_CONFIG with the usual message in err.
 */
int lia_config_uint(const lia_config_t *c, const char *name, uint64_t min, uint64_t max,
                    uint64_t def, uint64_t *out, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/* Formats "file:line: msg: 'arg'" for a semantic error found by the daemon itself. */
void lia_config_error(const lia_config_t *c, const lia_config_entry *e, const char *msg,
                      const char *arg, char *err, size_t err_len);

#endif
