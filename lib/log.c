/*
 * The logging module. Writes whole lines with a single write(2)-sized stdio call so that lines
 * from concurrent threads do not interleave mid-line; journald reads the "<N>" prefix.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_level = LIA_LOG_INFO;
static const char *log_ident = "liaison";

void lia_log_set_level(int level)
{
    log_level = level;
}

int lia_log_set_level_name(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"err", LIA_LOG_ERR},
                  {"warning", LIA_LOG_WARNING},
                  {"notice", LIA_LOG_NOTICE},
                  {"info", LIA_LOG_INFO},
                  {"debug", LIA_LOG_DEBUG}};
    for (size_t i = 0; name && i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(levels[i].name, name) == 0) {
            log_level = levels[i].level;
            return 0;
        }
    return -1;
}

void lia_log_set_ident(const char *ident)
{
    if (ident)
        log_ident = ident;
}

__attribute__((format(printf, 3, 0))) static void vlog(int prio, int errnum, const char *fmt,
                                                     va_list ap)
{
    char line[1024];
    int n;
    size_t used;

    if (prio > log_level)
        return;
    n = snprintf(line, sizeof line, "<%d>%s: ", prio, log_ident);
    if (n < 0)
        return;
    used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    n = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (n > 0)
        used += (size_t)n < sizeof line - used ? (size_t)n : sizeof line - used - 1;
    if (errnum != 0 && used < sizeof line - 1) {
        n = snprintf(line + used, sizeof line - used, ": %s", strerror(errnum));
        if (n > 0)
            used += (size_t)n < sizeof line - used ? (size_t)n : sizeof line - used - 1;
    }
    /* Control characters from peer-influenced text must not forge extra log lines. */
    for (size_t i = 0; i < used; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    fprintf(stderr, "%.*s\n", (int)used, line);
}

#define LOG_FN(name, prio, with_errno)                                                             \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        int e = errno;                                                                             \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        vlog(prio, with_errno ? e : 0, fmt, ap);                                                   \
        va_end(ap);                                                                                \
        errno = e;                                                                                 \
    }

LOG_FN(log_debug, LIA_LOG_DEBUG, 0)
LOG_FN(log_info, LIA_LOG_INFO, 0)
LOG_FN(log_notice, LIA_LOG_NOTICE, 0)
LOG_FN(log_warn, LIA_LOG_WARNING, 0)
LOG_FN(log_err, LIA_LOG_ERR, 0)
LOG_FN(log_warn_errno, LIA_LOG_WARNING, 1)
LOG_FN(log_err_errno, LIA_LOG_ERR, 1)

void fatal(int exit_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(2, 0, fmt, ap);
    va_end(ap);
    exit(exit_status);
}
