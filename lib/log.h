/*
 * Logging: one line per event to stderr, prefixed with a syslog priority "<N>" that journald
 * understands. Never pass message plaintext or secret material to these functions.
 */
#ifndef LIA_LOG_H
#define LIA_LOG_H

#include <stdarg.h>

enum { LIA_LOG_ERR = 3, LIA_LOG_WARNING = 4, LIA_LOG_NOTICE = 5, LIA_LOG_INFO = 6, LIA_LOG_DEBUG = 7 };

/* Messages above this priority are dropped (default LIA_LOG_INFO). */
void lia_log_set_level(int level);

/* Sets the level by name ("err", "warning", "notice", "info", "debug"); -1 if unknown. */
int lia_log_set_level_name(const char *name);

/* Program name shown in each line (not copied: pass a string that outlives the program). */
void lia_log_set_ident(const char *ident);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like log_warn/log_err, with ": <strerror(errno)>" appended (errno read on entry). */
void log_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs at priority 2 (critical) and exits with the given sysexits status. */
void fatal(int exit_status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
