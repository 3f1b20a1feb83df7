/*
 * liaison: the operator's command-line client (see cli.h). Subcommands: send, follow, inbox,
 * show, status, officer, whoami, search, export, channel. Every failure prints what went wrong
 * and how to fix it, and exits with a sysexits(3) status (lia_err_exit for library errors,
 * EX_USAGE for bad command lines, EX_UNAVAILABLE when the node daemon cannot be reached).
 */
#define _GNU_SOURCE /* getopt_long, ppoll, timegm */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "control.h"
#include "error.h"
#include "liaison/v1/control.pb-c.h"
#include "liaison/v1/payload.pb-c.h"
#include "pbjson.h"

#define DEFAULT_SOCKET   "/run/liaison/node.sock"
#define PAYLOAD_MAX      (16u << 20) /* serialised payload (the daemon's bound) */
#define REPLY_TIMEOUT_MS 30000       /* request/reply wait */
#define ATTACH_MAX       64          /* attachments per analysis share */
#define LEGS_MAX         256         /* legs per route */
#define LIST_MAX         32          /* repeated list options (offence codes...) */

struct global {
    const char *socket;
    int json;
};

/* ------------------------------------------------------------------ small utilities */

/* Allocations made while building a payload, freed together at the end. */
static void **kept;
static size_t n_kept, cap_kept;

static void *keep(void *p)
{
    if (!p) {
        fprintf(stderr, "liaison: out of memory\n");
        exit(EX_OSERR);
    }
    if (n_kept == cap_kept) {
        size_t nc = cap_kept ? cap_kept * 2 : 32;
        void **nk = realloc(kept, nc * sizeof(*nk));
        if (!nk) {
            fprintf(stderr, "liaison: out of memory\n");
            exit(EX_OSERR);
        }
        kept = nk;
        cap_kept = nc;
    }
    kept[n_kept++] = p;
    return p;
}

static void free_kept(void)
{
    for (size_t i = 0; i < n_kept; i++)
        free(kept[i]);
    free(kept);
    kept = NULL;
    n_kept = cap_kept = 0;
}

static void *xcalloc(size_t n, size_t size)
{
    return keep(calloc(n ? n : 1, size));
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "liaison %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'liaison %s --help'.\n", cmd);
    return EX_USAGE;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return (errno || *end) ? -1 : 0;
}

/* "YYYY-MM-DD" (UTC midnight) or "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) to Unix seconds. */
static int parse_time(const char *s, int allow_time, int64_t *out)
{
    struct tm tm, chk;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    time_t t;

    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    if (s[10] != '\0') {
        const char *p = s + 10;
        int m = 0;
        if (!allow_time || (*p != 'T' && *p != ' '))
            return -1;
        p++;
        if (sscanf(p, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
            return -1;
        p += m;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &m) != 1 || m != 2)
                return -1;
            p += 3;
        }
        if (*p == 'Z')
            p++;
        if (*p)
            return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1 || !gmtime_r(&t, &chk) || chk.tm_year != y - 1900 || chk.tm_mon != mo - 1 ||
        chk.tm_mday != d || chk.tm_hour != h || chk.tm_min != mi || chk.tm_sec != sec)
        return -1;
    *out = (int64_t)t;
    return 0;
}

static void fmt_ms(uint64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms == 0 || !gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "-");
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Reads a whole file (or stdin for "-") of at most max bytes into a kept buffer. */
static int read_file(const char *cmd, const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 65536, n = 0;
    uint8_t *buf;

    if (!f) {
        fprintf(stderr, "liaison %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return errno == ENOENT ? EX_NOINPUT : EX_IOERR;
    }
    buf = malloc(cap);
    for (;;) {
        size_t r;
        if (!buf) {
            fprintf(stderr, "liaison: out of memory\n");
            if (f != stdin)
                fclose(f);
            return EX_OSERR;
        }
        if (n == cap) {
            uint8_t *nb;
            if (cap > max)
                break;
            nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "liaison %s: cannot read %s: %s\n", cmd, path, strerror(errno));
        free(buf);
        if (f != stdin)
            fclose(f);
        return EX_IOERR;
    }
    if (f != stdin && fclose(f) != 0) {
        fprintf(stderr, "liaison %s: cannot read %s: %s\n", cmd, path, strerror(errno));
        free(buf);
        return EX_IOERR;
    }
    if (n > max) {
        fprintf(stderr, "liaison %s: %s is larger than the limit of %zu bytes\n", cmd, path, max);
        free(buf);
        return EX_DATAERR;
    }
    *out = keep(buf);
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------ the daemon connection */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int connect_daemon(const struct global *g, lia_ctl_conn_t **c)
{
    int rc = lia_ctl_connect(g->socket, c);
    int e = errno;
    if (rc == 0)
        return 0;
    if (rc == LIA_ERR_PERMISSION) {
        fprintf(stderr,
                "liaison: cannot reach the node daemon at %s: %s; is your account in the "
                "group of the socket, and allowed by the node configuration?\n",
                g->socket, strerror(e));
        return lia_err_exit(rc);
    }
    if (rc == LIA_ERR_NOT_FOUND || rc == LIA_ERR_IO) {
        fprintf(stderr,
                "liaison: cannot reach the node daemon at %s: %s; is liaison-node running? "
                "(--socket or $LIAISON_SOCKET)\n",
                g->socket, strerror(e));
        return EX_UNAVAILABLE;
    }
    fprintf(stderr,
            "liaison: cannot reach the node daemon at %s: %s (--socket or "
            "$LIAISON_SOCKET)\n",
            g->socket, lia_strerror(rc));
    return lia_err_exit(rc);
}

static int send_request(lia_ctl_conn_t *c, const Liaison__V1__ControlRequest *req)
{
    size_t n = liaison__v1__control_request__get_packed_size(req);
    uint8_t *buf;
    int rc;

    if (n > LIA_CONTROL_MAX_FRAME) {
        fprintf(stderr, "liaison: the request (%zu bytes) exceeds the control frame limit\n", n);
        return EX_DATAERR;
    }
    buf = malloc(n ? n : 1);
    if (!buf) {
        fprintf(stderr, "liaison: out of memory\n");
        return EX_OSERR;
    }
    liaison__v1__control_request__pack(req, buf);
    rc = lia_ctl_write(c, buf, n);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "liaison: cannot send the request to the node daemon: %s\n",
                rc == LIA_ERR_IO ? strerror(errno) : lia_strerror(rc));
        return rc == LIA_ERR_NOT_FOUND ? EX_UNAVAILABLE : lia_err_exit(rc);
    }
    return 0;
}

/*
 * Waits for one reply (timeout_ms < 0: forever). SIGINT/SIGTERM are blocked except while
 * waiting, so a signal interrupts the wait and sets stop_requested; returns -1 then.
 */
static int read_reply(lia_ctl_conn_t *c, int timeout_ms, const sigset_t *waitmask,
                      Liaison__V1__ControlReply **out)
{
    struct pollfd pfd = {.fd = lia_ctl_conn_fd(c), .events = POLLIN};
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L};
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    for (;;) {
        if (stop_requested)
            return -1;
        if (lia_ctl_buffered(c) > 0)
            break; /* a reply is already here: no need to wait */
        rc = ppoll(&pfd, 1, timeout_ms < 0 ? NULL : &ts, waitmask);
        if (rc > 0)
            break;
        if (rc == 0) {
            fprintf(stderr,
                    "liaison: the node daemon did not answer within %d seconds; check its log "
                    "(journalctl -u liaison-node)\n",
                    timeout_ms / 1000);
            return EX_TEMPFAIL;
        }
        if (errno != EINTR) {
            fprintf(stderr, "liaison: poll: %s\n", strerror(errno));
            return EX_OSERR;
        }
    }
    rc = lia_ctl_read(c, &data, &len);
    if (rc == LIA_ERR_NOT_FOUND || rc == LIA_ERR_PROTOCOL) {
        fprintf(stderr, "liaison: the node daemon closed the connection; check its log "
                        "(journalctl -u liaison-node)\n");
        return EX_UNAVAILABLE;
    }
    if (rc < 0) {
        fprintf(stderr, "liaison: cannot read the reply of the node daemon: %s\n",
                rc == LIA_ERR_IO ? strerror(errno) : lia_strerror(rc));
        return lia_err_exit(rc);
    }
    *out = liaison__v1__control_reply__unpack(NULL, len, data);
    free(data);
    if (!*out) {
        fprintf(stderr, "liaison: the node daemon sent a reply that cannot be decoded (is the "
                        "daemon the same version as this client?)\n");
        return EX_PROTOCOL;
    }
    return 0;
}

/* Prints a ControlError reply; returns the exit status for its code. */
static int daemon_error(const Liaison__V1__ControlError *e)
{
    const char *code = e && e->code ? e->code : "";
    int err = 0;
    for (int i = -1; i > LIA_ERR__LAST; i--)
        if (strcmp(lia_errname(i), code) == 0)
            err = i;
    fprintf(stderr, "liaison: the node daemon refused the request: %s (%s)\n",
            e && e->message && *e->message ? e->message : "no reason given", code);
    return err ? lia_err_exit(err) : EX_SOFTWARE;
}

/* One request, one reply of the expected kind. */
static int call(const struct global *g, const Liaison__V1__ControlRequest *req,
                Liaison__V1__ControlReply__KindCase want, Liaison__V1__ControlReply **out)
{
    lia_ctl_conn_t *c = NULL;
    Liaison__V1__ControlReply *rep = NULL;
    sigset_t none;
    int rc;

    *out = NULL;
    rc = connect_daemon(g, &c);
    if (rc)
        return rc;
    rc = send_request(c, req);
    sigemptyset(&none);
    if (!rc)
        rc = read_reply(c, REPLY_TIMEOUT_MS, &none, &rep);
    lia_ctl_conn_destroy(&c);
    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_ERROR) {
        rc = daemon_error(rep->error);
        liaison__v1__control_reply__free_unpacked(rep, NULL);
        return rc;
    }
    if (rep->kind_case != want) {
        fprintf(stderr, "liaison: the node daemon sent an unexpected reply (kind %d)\n",
                (int)rep->kind_case);
        liaison__v1__control_reply__free_unpacked(rep, NULL);
        return EX_PROTOCOL;
    }
    *out = rep;
    return 0;
}

/* ------------------------------------------------------------------ printing messages */

static const char *body_kind(const Liaison__V1__Payload *p)
{
    switch (p->body_case) {
    case LIAISON__V1__PAYLOAD__BODY_CASE_ALERT:
        return "case alert";
    case LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE:
        return "route intelligence";
    case LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE:
        return "analysis share";
    case LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT:
        return "falsified document alert";
    case LIAISON__V1__PAYLOAD__BODY_INFORMATION_REQUEST:
        return "information request";
    case LIAISON__V1__PAYLOAD__BODY_RESPONSE:
        return "response";
    case LIAISON__V1__PAYLOAD__BODY_DELAY_NOTICE:
        return "delay notice";
    case LIAISON__V1__PAYLOAD__BODY_REFUSAL:
        return "refusal";
    case LIAISON__V1__PAYLOAD__BODY_RECEIPT:
        return "receipt";
    default:
        return "unknown";
    }
}

/* Title and text of a payload, for the one-block and table views. */
static void body_title(const Liaison__V1__Payload *p, const char **title, const char **text)
{
    *title = "";
    *text = "";
    switch (p->body_case) {
    case LIAISON__V1__PAYLOAD__BODY_CASE_ALERT:
        *title = p->case_alert->title;
        *text = p->case_alert->summary;
        break;
    case LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE:
        *title = p->route_intelligence->title;
        *text = p->route_intelligence->modus_operandi;
        break;
    case LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE:
        *title = p->analysis_share->title;
        *text = p->analysis_share->analysis;
        break;
    case LIAISON__V1__PAYLOAD__BODY_FALSIFIED_DOCUMENT_ALERT:
        *text = p->falsified_document_alert->description;
        break;
    case LIAISON__V1__PAYLOAD__BODY_INFORMATION_REQUEST:
        *title = p->information_request->request_id;
        *text = p->information_request->information_sought;
        break;
    case LIAISON__V1__PAYLOAD__BODY_RESPONSE:
        *title = p->response->request_id;
        *text = p->response->content;
        break;
    case LIAISON__V1__PAYLOAD__BODY_DELAY_NOTICE:
        *title = p->delay_notice->request_id;
        *text = p->delay_notice->reasons;
        break;
    case LIAISON__V1__PAYLOAD__BODY_REFUSAL:
        *title = p->refusal->request_id;
        *text = p->refusal->explanation;
        break;
    default:
        break;
    }
    if (!*title)
        *title = "";
    if (!*text)
        *text = "";
}

/* Prints s with control characters (other than LF and TAB) replaced: the text comes from
 * other nodes and must not drive the terminal. */
static void put_safe(const char *s, size_t max)
{
    size_t i;
    for (i = 0; s[i] && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\t' || ch >= 0x20) {
            if (ch != 0x7f)
                putchar(ch);
            else
                putchar('?');
        } else {
            putchar('?');
        }
    }
    if (s[i])
        fputs("...", stdout);
}

/* The message as one JSON object (payload decoded through pbjson), on one line. */
static int print_message_json(const Liaison__V1__InboxMessage *m, const Liaison__V1__Payload *p)
{
    json_object *o = NULL, *po = NULL;
    char idhex[2 * 64 + 1];
    const char *s;

    if (lia_pbjson_to_object(&m->base, &o) < 0)
        return EX_OSERR;
    json_object_object_del(o, "payload");
    json_object_object_del(o, "message_id");
    if (m->message_id.len <= 64) {
        hex(m->message_id.data, m->message_id.len, idhex);
        json_object_object_add(o, "message_id", json_object_new_string(idhex));
    }
    if (p && lia_pbjson_to_object(&p->base, &po) == 0)
        json_object_object_add(o, "payload", po);
    else
        json_object_object_add(o, "payload_error",
                               json_object_new_string("payload could not be decoded"));
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    puts(s ? s : "{}");
    json_object_put(o);
    return 0;
}

static void print_message_block(const Liaison__V1__InboxMessage *m, const Liaison__V1__Payload *p)
{
    char when[40];
    fmt_ms(m->created_at_ms, when, sizeof when);
    printf("#%" PRIu64 "  %s  from ", m->delivery_seq, when);
    put_safe(m->sender, 64);
    if (m->channel && *m->channel) {
        fputs("  channel ", stdout);
        put_safe(m->channel, 64);
    } else {
        fputs("  (direct)", stdout);
    }
    putchar('\n');
    if (!p) {
        puts("  (payload could not be decoded)\n");
        return;
    }
    printf("  %s", body_kind(p));
    if (p->governance) {
        const Liaison__V1__Governance *gv = p->governance;
        if (gv->case_reference && *gv->case_reference) {
            fputs("  case ", stdout);
            put_safe(gv->case_reference, 64);
        }
        printf("  handling %s",
               lia_pbjson_enum_short(&liaison__v1__handling_code__descriptor, gv->handling_code));
        printf("  %s%s",
               lia_pbjson_enum_short(&liaison__v1__source_reliability__descriptor,
                                     gv->source_reliability),
               lia_pbjson_enum_short(&liaison__v1__information_accuracy__descriptor,
                                     gv->information_accuracy));
        if (gv->tlp)
            printf("  TLP:%s", lia_pbjson_enum_short(&liaison__v1__tlp__descriptor, gv->tlp));
        if (gv->classification_level >
            LIAISON__V1__CLASSIFICATION_LEVEL__CLASSIFICATION_LEVEL_UNCLASSIFIED) {
            fputs("  ", stdout);
            put_safe(gv->classification_marking && *gv->classification_marking
                         ? gv->classification_marking
                         : lia_pbjson_enum_short(&liaison__v1__classification_level__descriptor,
                                                 gv->classification_level),
                     128);
        }
    }
    if (p->officer && *p->officer) {
        fputs("  officer ", stdout);
        put_safe(p->officer, 64);
    }
    putchar('\n');
    {
        const char *title, *text;
        body_title(p, &title, &text);
        if (*title) {
            fputs("  ", stdout);
            put_safe(title, 256);
            putchar('\n');
        }
        if (*text) {
            fputs("  ", stdout);
            put_safe(text, 2000);
            putchar('\n');
        }
    }
    putchar('\n');
}

static Liaison__V1__Payload *decode_payload(const Liaison__V1__InboxMessage *m)
{
    if (m->payload.len > PAYLOAD_MAX)
        return NULL;
    return liaison__v1__payload__unpack(NULL, m->payload.len, m->payload.data);
}

/* ------------------------------------------------------------------ send */

struct send_opts {
    const char *channel;
    const char **to;
    size_t n_to;
    int dry_run;
    const char *json_file;
    const char *officer;
    uint64_t expires_at_ms;
};

/* Governance and body options of `send alert|route|analysis`. */
struct build_opts {
    const char *case_ref, *title, *summary, *handling_conditions, *marking, *purpose, *legal_basis,
        *language;
    int handling, reliability, accuracy, classification, tlp, data_basis, urgency, mode;
    int64_t review_at, erase_by;
    int subjects[4];
    size_t n_subjects;
    const char *offences[LIST_MAX];
    size_t n_offences;
    const char *legs[LEGS_MAX];
    size_t n_legs;
    const char *attach[ATTACH_MAX];
    size_t n_attach;
};

static int add_to(const char *cmd, struct send_opts *so, const char *arg)
{
    char *copy = keep(strdup(arg));
    char *save = NULL;
    if (!so->to)
        so->to = xcalloc(1000, sizeof(*so->to));
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (so->n_to >= 1000)
            return usage_error(cmd, "too many recipients (at most 1000)");
        so->to[so->n_to++] = tok;
    }
    return 0;
}

static int enum_opt(const char *cmd, const char *opt, const ProtobufCEnumDescriptor *d,
                    const char *arg, int *out)
{
    const ProtobufCEnumValue *v = lia_pbjson_enum_lookup(d, arg);
    if (!v || v->value == 0) {
        char list[512];
        size_t n = 0;
        list[0] = '\0';
        for (unsigned i = 0; i < d->n_values; i++) {
            if (d->values[i].value == 0)
                continue;
            int w = snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "",
                             lia_pbjson_enum_short(d, d->values[i].value));
            if (w < 0 || (size_t)w >= sizeof list - n)
                break;
            n += (size_t)w;
        }
        return usage_error(cmd, "%s: unknown value '%s' (one of: %s)", opt, arg, list);
    }
    *out = v->value;
    return 0;
}

static const char *officer_name(const struct send_opts *so)
{
    struct passwd *pw;
    char *buf;
    if (so->officer)
        return so->officer;
    pw = getpwuid(geteuid());
    if (pw && pw->pw_name)
        return keep(strdup(pw->pw_name));
    buf = xcalloc(1, 24);
    snprintf(buf, 24, "uid%lu", (unsigned long)geteuid());
    return buf;
}

static Liaison__V1__Governance *build_governance(const struct build_opts *b)
{
    Liaison__V1__Governance *gv = xcalloc(1, sizeof(*gv));
    liaison__v1__governance__init(gv);
    gv->handling_code = (Liaison__V1__HandlingCode)b->handling;
    if (b->handling_conditions)
        gv->handling_conditions = (char *)b->handling_conditions;
    gv->source_reliability = (Liaison__V1__SourceReliability)b->reliability;
    gv->information_accuracy = (Liaison__V1__InformationAccuracy)b->accuracy;
    gv->classification_level = (Liaison__V1__ClassificationLevel)b->classification;
    if (b->marking)
        gv->classification_marking = (char *)b->marking;
    gv->tlp = (Liaison__V1__Tlp)b->tlp;
    gv->purpose = (char *)b->purpose;
    gv->legal_basis = (char *)b->legal_basis;
    if (b->n_subjects) {
        gv->data_subject_categories =
            xcalloc(b->n_subjects, sizeof(Liaison__V1__DataSubjectCategory));
        for (size_t i = 0; i < b->n_subjects; i++)
            gv->data_subject_categories[i] = (Liaison__V1__DataSubjectCategory)b->subjects[i];
        gv->n_data_subject_categories = b->n_subjects;
    }
    gv->data_basis = (Liaison__V1__DataBasis)b->data_basis;
    gv->language = (char *)b->language;
    if (b->case_ref)
        gv->case_reference = (char *)b->case_ref;
    gv->review_at = (uint64_t)b->review_at;
    gv->erase_by = (uint64_t)b->erase_by;
    return gv;
}

/* Media type from the file name's extension. */
static const char *media_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } map[] = {
        {"pdf", "application/pdf"},
        {"txt", "text/plain"},
        {"csv", "text/csv"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"md", "text/markdown"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"webp", "image/webp"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"eml", "message/rfc822"},
        {"odt", "application/vnd.oasis.opendocument.text"},
        {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"doc", "application/msword"},
        {"xls", "application/vnd.ms-excel"},
        {"mp4", "video/mp4"},
        {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && dot != name)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (strcasecmp(dot + 1, map[i].ext) == 0)
                return map[i].type;
    return "application/octet-stream";
}

static int build_attachments(const char *cmd, const struct build_opts *b,
                             Liaison__V1__AnalysisShare *as)
{
    size_t total = 0;
    if (!b->n_attach)
        return 0;
    as->attachments = xcalloc(b->n_attach, sizeof(*as->attachments));
    for (size_t i = 0; i < b->n_attach; i++) {
        Liaison__V1__Attachment *a = xcalloc(1, sizeof(*a));
        const char *path = b->attach[i], *base = strrchr(path, '/');
        uint8_t *data = NULL;
        size_t len = 0;
        int rc;

        liaison__v1__attachment__init(a);
        base = base ? base + 1 : path;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strlen(base) > 255)
            return usage_error(cmd, "--attach %s: not a usable file name", path);
        for (size_t k = 0; k < i; k++)
            if (strcmp(as->attachments[k]->name, base) == 0)
                return usage_error(cmd, "--attach %s: two attachments named '%s'", path, base);
        rc = read_file(cmd, path, PAYLOAD_MAX, &data, &len);
        if (rc)
            return rc;
        total += len;
        if (total > PAYLOAD_MAX) {
            fprintf(stderr,
                    "liaison %s: the attachments exceed the payload limit of %u bytes; share "
                    "fewer or smaller files\n",
                    cmd, PAYLOAD_MAX);
            return EX_DATAERR;
        }
        a->name = (char *)base;
        a->media_type = (char *)media_type(base);
        a->content.data = data;
        a->content.len = len;
        a->digest.data = xcalloc(1, crypto_generichash_BYTES);
        a->digest.len = crypto_generichash_BYTES;
        if (crypto_generichash(a->digest.data, a->digest.len, data, len, NULL, 0) != 0) {
            fprintf(stderr, "liaison %s: cannot hash %s\n", cmd, path);
            return EX_SOFTWARE;
        }
        as->attachments[i] = a;
        as->n_attachments = i + 1;
    }
    return 0;
}

/* Location id for a place name in the route's entity set (added if new). */
static const char *route_location(Liaison__V1__EntitySet *es, const char *name)
{
    Liaison__V1__Location *loc;
    char *id;
    for (size_t i = 0; i < es->n_locations; i++)
        if (strcmp(es->locations[i]->name, name) == 0)
            return es->locations[i]->id;
    loc = xcalloc(1, sizeof(*loc));
    liaison__v1__location__init(loc);
    id = xcalloc(1, 16);
    snprintf(id, 16, "loc%zu", es->n_locations + 1);
    loc->id = id;
    loc->name = (char *)name;
    es->locations[es->n_locations++] = loc;
    return id;
}

/* One --leg "FROM>TO[@DEPARTURE[/ARRIVAL]]". */
static int build_leg(const char *cmd, const char *spec, int mode, Liaison__V1__EntitySet *es,
                     Liaison__V1__RouteLeg *leg)
{
    char *s = keep(strdup(spec));
    char *gt = strchr(s, '>'), *at, *slash = NULL;
    int64_t t;

    liaison__v1__route_leg__init(leg);
    if (!gt)
        return usage_error(cmd, "--leg '%s': expected FROM>TO[@DEPARTURE[/ARRIVAL]]", spec);
    *gt = '\0';
    at = strchr(gt + 1, '@');
    if (at) {
        *at = '\0';
        slash = strchr(at + 1, '/');
        if (slash)
            *slash = '\0';
    }
    if (!*s || !gt[1])
        return usage_error(cmd, "--leg '%s': both places are needed (FROM>TO)", spec);
    leg->from_ref = (char *)route_location(es, s);
    leg->to_ref = (char *)route_location(es, gt + 1);
    leg->transport_mode = (Liaison__V1__TransportMode)mode;
    if (at && *(at + 1)) {
        if (parse_time(at + 1, 1, &t) != 0)
            return usage_error(cmd,
                               "--leg '%s': departure '%s' is not YYYY-MM-DD or "
                               "YYYY-MM-DDTHH:MM[:SS]Z (UTC)",
                               spec, at + 1);
        leg->departure = t;
    }
    if (slash && *(slash + 1)) {
        if (parse_time(slash + 1, 1, &t) != 0)
            return usage_error(cmd,
                               "--leg '%s': arrival '%s' is not YYYY-MM-DD or "
                               "YYYY-MM-DDTHH:MM[:SS]Z (UTC)",
                               spec, slash + 1);
        leg->arrival = t;
    }
    return 0;
}

static int build_payload(const char *cmd, const char *kind, const struct build_opts *b,
                         const struct send_opts *so, Liaison__V1__Payload *p)
{
    int rc;
    liaison__v1__payload__init(p);
    p->version = 1;
    p->officer = (char *)officer_name(so);
    p->governance = build_governance(b);
    if (strcmp(kind, "alert") == 0) {
        Liaison__V1__CaseAlert *a = xcalloc(1, sizeof(*a));
        liaison__v1__case_alert__init(a);
        a->title = (char *)b->title;
        a->summary = (char *)b->summary;
        a->offence_codes = (char **)b->offences;
        a->n_offence_codes = b->n_offences;
        a->urgency = (Liaison__V1__AlertUrgency)b->urgency;
        p->body_case = LIAISON__V1__PAYLOAD__BODY_CASE_ALERT;
        p->case_alert = a;
    } else if (strcmp(kind, "route") == 0) {
        Liaison__V1__RouteIntelligence *ri = xcalloc(1, sizeof(*ri));
        Liaison__V1__EntitySet *es = xcalloc(1, sizeof(*es));
        Liaison__V1__Route *route = xcalloc(1, sizeof(*route));
        liaison__v1__route_intelligence__init(ri);
        liaison__v1__entity_set__init(es);
        liaison__v1__route__init(route);
        ri->title = (char *)b->title;
        ri->modus_operandi = (char *)b->summary;
        ri->offence_codes = (char **)b->offences;
        ri->n_offence_codes = b->n_offences;
        es->locations = xcalloc(2 * b->n_legs, sizeof(*es->locations));
        route->id = "route1";
        route->legs = xcalloc(b->n_legs, sizeof(*route->legs));
        for (size_t i = 0; i < b->n_legs; i++) {
            Liaison__V1__RouteLeg *leg = xcalloc(1, sizeof(*leg));
            rc = build_leg(cmd, b->legs[i], b->mode, es, leg);
            if (rc)
                return rc;
            route->legs[i] = leg;
            route->n_legs = i + 1;
        }
        es->routes = xcalloc(1, sizeof(*es->routes));
        es->routes[0] = route;
        es->n_routes = 1;
        ri->entities = es;
        p->body_case = LIAISON__V1__PAYLOAD__BODY_ROUTE_INTELLIGENCE;
        p->route_intelligence = ri;
    } else {
        Liaison__V1__AnalysisShare *as = xcalloc(1, sizeof(*as));
        liaison__v1__analysis_share__init(as);
        as->title = (char *)b->title;
        as->analysis = (char *)b->summary;
        rc = build_attachments(cmd, b, as);
        if (rc)
            return rc;
        p->body_case = LIAISON__V1__PAYLOAD__BODY_ANALYSIS_SHARE;
        p->analysis_share = as;
    }
    return 0;
}

static void send_help(const char *kind)
{
    if (!kind) {
        printf("usage: liaison send alert|route|analysis [options]   (see their --help)\n"
               "       liaison send --json FILE (--channel C | --to NODE[,NODE]) [--dry-run]\n"
               "\n"
               "Sends a payload through the node daemon, which validates it, signs and encrypts "
               "it\nand keeps it in its durable outbox until the broker has stored it.\n"
               "\n"
               "  --json FILE          the Payload as JSON (proto field names, enum names or "
               "short\n"
               "                       forms like \"H2\", bytes in base64); '-' reads stdin\n"
               "  --channel C          send to the members of case channel C\n"
               "  --to NODE[,NODE]     send directly to these nodes (repeatable)\n"
               "  --expires-in SECONDS the message expires after this time (default: never)\n"
               "  --dry-run            print the Payload that would be sent and exit, without\n"
               "                       contacting the daemon (with --json output: as JSON)\n"
               "  --socket PATH        the daemon's control socket\n"
               "\n"
               "For JSON output of this form, put --json before the subcommand:\n"
               "  liaison --json send --json payload.json --channel op-x --dry-run\n");
        return;
    }
    printf("usage: liaison send %s (--channel C | --to NODE[,NODE]) [options]\n\n", kind);
    if (strcmp(kind, "alert") == 0)
        printf("Builds and sends a case alert.\n\n"
               "  --case REF            case reference (required)\n"
               "  --title T             short title (required)\n"
               "  --summary S           what happened and what is asked (required)\n"
               "  --urgency U           ROUTINE (default), PRIORITY or IMMEDIATE\n"
               "  --offence CODE        offence code, e.g. ICCS 0902 (repeatable)\n");
    else if (strcmp(kind, "route") == 0)
        printf("Builds and sends route intelligence: one route of one or more legs.\n\n"
               "  --title T             short title (required)\n"
               "  --summary S           modus operandi (required; also --modus-operandi)\n"
               "  --leg FROM>TO[@DEP[/ARR]]  one leg, in travel order (repeatable, at least one);\n"
               "                        times YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z (UTC), e.g.\n"
               "                        --leg 'Tripoli>Lampedusa@2024-05-01T22:00Z'\n"
               "  --mode MODE           transport mode of the legs (required): ROAD, RAIL, AIR,\n"
               "                        SEA, INLAND_WATERWAY, ON_FOOT, OTHER\n"
               "  --case REF            case reference (optional)\n"
               "  --offence CODE        offence code (repeatable)\n");
    else
        printf(
            "Builds and sends an analysis share with attachments.\n\n"
            "  --case REF            case reference (required)\n"
            "  --title T             short title (required)\n"
            "  --summary S           the analysis (required; also --analysis)\n"
            "  --attach FILE         attach a file (repeatable, up to 64); the media type is\n"
            "                        guessed from the extension, a BLAKE2b-256 digest is added\n");
    printf("\nDestination:\n"
           "  --channel C           send to the members of case channel C\n"
           "  --to NODE[,NODE]      send directly to these nodes (repeatable)\n"
           "  --expires-in SECONDS  the message expires after this time (default: never)\n"
           "\nGovernance (set by you, the data owner):\n"
           "  --purpose P           purpose of the transfer (required)\n"
           "  --legal-basis L       legal basis (required)\n"
           "  --classification CODE UNCLASSIFIED, SENSITIVE, RESTRICTED, CONFIDENTIAL, SECRET,\n"
           "                        TOP_SECRET (required)\n"
           "  --marking TEXT        classification marking, required from RESTRICTED up\n"
           "                        (e.g. 'RESTREINT UE/EU RESTRICTED')\n"
           "  --handling H          H0, H1, H2 or H3 (default H2: not passed on without your\n"
           "                        permission)\n"
           "  --handling-conditions TEXT  the restrictions (required with H3)\n"
           "  --reliability R       source reliability A, B, C or X (default X: not assessed)\n"
           "  --accuracy N          information accuracy 1..4 (default 4: not corroborated)\n"
           "  --tlp T               CLEAR, GREEN, AMBER, AMBER+STRICT or RED (default: none)\n"
           "  --data-basis B        FACT, ASSESSMENT (default) or MIXED\n"
           "  --subject CATEGORY    data-subject category present: SUSPECT, CONVICTED, VICTIM,\n"
           "                        OTHER_PARTY (repeatable)\n"
           "  --language TAG        language of the text (default en)\n"
           "  --review-date DATE    review the data by YYYY-MM-DD\n"
           "  --erase-date DATE     erase the data by YYYY-MM-DD\n"
           "  --officer NAME        accountable officer (default: your account name)\n"
           "\nOther:\n"
           "  --dry-run             print the Payload that would be sent and exit, without\n"
           "                        contacting the daemon; with --json, as one line of JSON\n"
           "  --json                JSON output\n"
           "  --socket PATH         the daemon's control socket\n"
           "\nExample:\n"
           "  liaison send alert --channel op-tidewater --case FR-2024-0042 \\\n"
           "    --title 'Van heading to the border' --summary 'Seen at 14:00 near Menton' \\\n"
           "    --purpose 'Preventing migrant smuggling' --legal-basis 'Art. 6 Dir. 2023/977' \\\n"
           "    --classification RESTRICTED --marking 'RESTREINT UE/EU RESTRICTED' --tlp AMBER\n");
}

static int print_payload(const struct global *g, const Liaison__V1__Payload *p)
{
    char *text = NULL;
    int rc = lia_pbjson_format(&p->base, g->json ? 0 : LIA_PBJSON_PRETTY, &text);
    if (rc < 0) {
        fprintf(stderr, "liaison: cannot format the payload: %s\n", lia_strerror(rc));
        return lia_err_exit(rc);
    }
    puts(text);
    free(text);
    return 0;
}

static int do_send(const struct global *g, const struct send_opts *so, const char *cmd,
                   const Liaison__V1__Payload *p)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__SendRequest sr = LIAISON__V1__SEND_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    size_t n = liaison__v1__payload__get_packed_size(p);
    char idhex[2 * 64 + 1] = "";
    uint8_t *buf;
    int rc;

    if (n > PAYLOAD_MAX) {
        fprintf(stderr, "liaison %s: the payload (%zu bytes) exceeds the limit of %u bytes\n", cmd,
                n, PAYLOAD_MAX);
        return EX_DATAERR;
    }
    if (so->dry_run) {
        rc = print_payload(g, p);
        if (!rc && !g->json)
            fprintf(stderr, "dry run: %zu bytes, not sent\n", n);
        return rc;
    }
    buf = xcalloc(1, n);
    liaison__v1__payload__pack(p, buf);
    if (so->channel)
        sr.channel = (char *)so->channel;
    sr.recipients = (char **)so->to;
    sr.n_recipients = so->n_to;
    sr.payload.data = buf;
    sr.payload.len = n;
    sr.expires_at_ms = so->expires_at_ms;
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_SEND;
    req.send = &sr;
    rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_SEND, &rep);
    if (rc)
        return rc;
    if (rep->send->message_id.len <= 64)
        hex(rep->send->message_id.data, rep->send->message_id.len, idhex);
    if (g->json)
        printf("{\"message_id\":\"%s\",\"outbox_id\":%" PRIu64 ",\"status\":\"accepted\"}\n", idhex,
               rep->send->outbox_id);
    else
        printf("message %s accepted (in the durable outbox, position %" PRIu64 ")\n", idhex,
               rep->send->outbox_id);
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    return 0;
}

enum {
    O_CHANNEL = 1000,
    O_TO,
    O_CASE,
    O_TITLE,
    O_SUMMARY,
    O_HANDLING,
    O_HCOND,
    O_RELIABILITY,
    O_ACCURACY,
    O_CLASSIFICATION,
    O_MARKING,
    O_TLP,
    O_PURPOSE,
    O_LEGAL,
    O_LANGUAGE,
    O_REVIEW,
    O_ERASE,
    O_DATA_BASIS,
    O_SUBJECT,
    O_URGENCY,
    O_OFFENCE,
    O_MODE,
    O_LEG,
    O_ATTACH,
    O_DRY_RUN,
    O_JSON,
    O_JSON_FILE,
    O_SOCKET,
    O_OFFICER,
    O_EXPIRES,
    O_HELP,
    O_AFTER,
    O_MAX,
    O_COPY_TO_HUB,
    O_DESCRIPTION,
};

static int cmd_send(struct global *g, int argc, char **argv)
{
    const char *kind = NULL;
    char cmd[32] = "send";
    struct send_opts so;
    struct build_opts b;
    Liaison__V1__Payload payload;
    int rc, c;

    memset(&so, 0, sizeof so);
    memset(&b, 0, sizeof b);
    b.handling = LIAISON__V1__HANDLING_CODE__HANDLING_CODE_H2;
    b.reliability = LIAISON__V1__SOURCE_RELIABILITY__SOURCE_RELIABILITY_X;
    b.accuracy = LIAISON__V1__INFORMATION_ACCURACY__INFORMATION_ACCURACY_4;
    b.data_basis = LIAISON__V1__DATA_BASIS__DATA_BASIS_ASSESSMENT;
    b.urgency = LIAISON__V1__ALERT_URGENCY__ALERT_URGENCY_ROUTINE;
    b.language = "en";

    if (argc > 1 && argv[1][0] != '-') {
        kind = argv[1];
        if (strcmp(kind, "alert") != 0 && strcmp(kind, "route") != 0 &&
            strcmp(kind, "analysis") != 0)
            return usage_error("send", "unknown kind '%s' (alert, route or analysis)", kind);
        snprintf(cmd, sizeof cmd, "send %s", kind);
        argc--;
        argv++;
    }
    {
        /* In `send` (no kind), --json takes the payload file; in `send KIND`, it is the output
         * flag. */
        const struct option with_kind[] = {
            {"channel", required_argument, NULL, O_CHANNEL},
            {"to", required_argument, NULL, O_TO},
            {"case", required_argument, NULL, O_CASE},
            {"title", required_argument, NULL, O_TITLE},
            {"summary", required_argument, NULL, O_SUMMARY},
            {"modus-operandi", required_argument, NULL, O_SUMMARY},
            {"analysis", required_argument, NULL, O_SUMMARY},
            {"handling", required_argument, NULL, O_HANDLING},
            {"handling-conditions", required_argument, NULL, O_HCOND},
            {"reliability", required_argument, NULL, O_RELIABILITY},
            {"accuracy", required_argument, NULL, O_ACCURACY},
            {"classification", required_argument, NULL, O_CLASSIFICATION},
            {"marking", required_argument, NULL, O_MARKING},
            {"tlp", required_argument, NULL, O_TLP},
            {"purpose", required_argument, NULL, O_PURPOSE},
            {"legal-basis", required_argument, NULL, O_LEGAL},
            {"language", required_argument, NULL, O_LANGUAGE},
            {"review-date", required_argument, NULL, O_REVIEW},
            {"erase-date", required_argument, NULL, O_ERASE},
            {"data-basis", required_argument, NULL, O_DATA_BASIS},
            {"subject", required_argument, NULL, O_SUBJECT},
            {"urgency", required_argument, NULL, O_URGENCY},
            {"offence", required_argument, NULL, O_OFFENCE},
            {"mode", required_argument, NULL, O_MODE},
            {"leg", required_argument, NULL, O_LEG},
            {"attach", required_argument, NULL, O_ATTACH},
            {"officer", required_argument, NULL, O_OFFICER},
            {"expires-in", required_argument, NULL, O_EXPIRES},
            {"dry-run", no_argument, NULL, O_DRY_RUN},
            {"json", no_argument, NULL, O_JSON},
            {"socket", required_argument, NULL, O_SOCKET},
            {"help", no_argument, NULL, O_HELP},
            {NULL, 0, NULL, 0},
        };
        const struct option no_kind[] = {
            {"channel", required_argument, NULL, O_CHANNEL},
            {"to", required_argument, NULL, O_TO},
            {"json", required_argument, NULL, O_JSON_FILE},
            {"expires-in", required_argument, NULL, O_EXPIRES},
            {"dry-run", no_argument, NULL, O_DRY_RUN},
            {"socket", required_argument, NULL, O_SOCKET},
            {"help", no_argument, NULL, O_HELP},
            {NULL, 0, NULL, 0},
        };
        const char *what = NULL;
        const ProtobufCEnumDescriptor *ed = NULL;
        int *dst = NULL;
        int64_t t;
        uint64_t u;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":", kind ? with_kind : no_kind, NULL)) != -1) {
            const char *opt = argv[optind - 1];
            switch (c) {
            case O_HELP:
                send_help(kind);
                return EX_OK;
            case O_CHANNEL:
                so.channel = optarg;
                break;
            case O_TO:
                if ((rc = add_to(cmd, &so, optarg)) != 0)
                    return rc;
                break;
            case O_JSON_FILE:
                so.json_file = optarg;
                break;
            case O_JSON:
                g->json = 1;
                break;
            case O_DRY_RUN:
                so.dry_run = 1;
                break;
            case O_SOCKET:
                g->socket = optarg;
                break;
            case O_OFFICER:
                so.officer = optarg;
                break;
            case O_EXPIRES:
                if (parse_u64(optarg, &u) != 0 || u == 0 || u > 10ull * 365 * 86400)
                    return usage_error(cmd, "--expires-in: expected seconds (1..10 years)");
                so.expires_at_ms = ((uint64_t)time(NULL) + u) * 1000;
                break;
            case O_CASE:
                b.case_ref = optarg;
                break;
            case O_TITLE:
                b.title = optarg;
                break;
            case O_SUMMARY:
                b.summary = optarg;
                break;
            case O_HCOND:
                b.handling_conditions = optarg;
                break;
            case O_MARKING:
                b.marking = optarg;
                break;
            case O_PURPOSE:
                b.purpose = optarg;
                break;
            case O_LEGAL:
                b.legal_basis = optarg;
                break;
            case O_LANGUAGE:
                b.language = optarg;
                break;
            case O_HANDLING:
                what = "--handling", ed = &liaison__v1__handling_code__descriptor;
                dst = &b.handling;
                break;
            case O_RELIABILITY:
                what = "--reliability", ed = &liaison__v1__source_reliability__descriptor;
                dst = &b.reliability;
                break;
            case O_ACCURACY:
                what = "--accuracy", ed = &liaison__v1__information_accuracy__descriptor;
                dst = &b.accuracy;
                break;
            case O_CLASSIFICATION:
                what = "--classification", ed = &liaison__v1__classification_level__descriptor;
                dst = &b.classification;
                break;
            case O_TLP:
                what = "--tlp", ed = &liaison__v1__tlp__descriptor;
                dst = &b.tlp;
                break;
            case O_DATA_BASIS:
                what = "--data-basis", ed = &liaison__v1__data_basis__descriptor;
                dst = &b.data_basis;
                break;
            case O_URGENCY:
                what = "--urgency", ed = &liaison__v1__alert_urgency__descriptor;
                dst = &b.urgency;
                break;
            case O_MODE:
                what = "--mode", ed = &liaison__v1__transport_mode__descriptor;
                dst = &b.mode;
                break;
            case O_SUBJECT:
                if (b.n_subjects >= 4)
                    return usage_error(cmd, "--subject: at most 4 categories");
                what = "--subject", ed = &liaison__v1__data_subject_category__descriptor;
                dst = &b.subjects[b.n_subjects++];
                break;
            case O_REVIEW:
            case O_ERASE:
                if (parse_time(optarg, 0, &t) != 0)
                    return usage_error(cmd, "%s: '%s' is not a date YYYY-MM-DD",
                                       c == O_REVIEW ? "--review-date" : "--erase-date", optarg);
                *(c == O_REVIEW ? &b.review_at : &b.erase_by) = t;
                break;
            case O_OFFENCE:
                if (b.n_offences >= LIST_MAX)
                    return usage_error(cmd, "--offence: at most %d codes", LIST_MAX);
                b.offences[b.n_offences++] = optarg;
                break;
            case O_LEG:
                if (b.n_legs >= LEGS_MAX)
                    return usage_error(cmd, "--leg: at most %d legs", LEGS_MAX);
                b.legs[b.n_legs++] = optarg;
                break;
            case O_ATTACH:
                if (b.n_attach >= ATTACH_MAX)
                    return usage_error(cmd, "--attach: at most %d files", ATTACH_MAX);
                b.attach[b.n_attach++] = optarg;
                break;
            case ':':
                return usage_error(cmd, "option %s needs a value", opt);
            default:
                return usage_error(cmd, "unknown option %s", opt);
            }
            if (ed) {
                rc = enum_opt(cmd, what, ed, optarg, dst);
                if (rc)
                    return rc;
                ed = NULL;
            }
        }
        if (optind < argc)
            return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }

    if (!so.dry_run) {
        if (!so.channel && !so.n_to)
            return usage_error(cmd, "say where to send it: --channel C or --to NODE[,NODE]");
        if (so.channel && so.n_to)
            return usage_error(cmd, "--channel and --to exclude each other");
        if (so.channel && !*so.channel)
            return usage_error(cmd, "--channel: empty channel name");
    }

    if (!kind) {
        uint8_t *text;
        size_t len;
        ProtobufCMessage *m = NULL;
        char err[512];
        if (!so.json_file)
            return usage_error(cmd, "give a kind (alert, route, analysis) or --json FILE");
        rc = read_file(cmd, so.json_file, LIA_PBJSON_MAX_INPUT, &text, &len);
        if (rc)
            return rc;
        rc = lia_pbjson_parse(&liaison__v1__payload__descriptor, (const char *)text, len, &m, err,
                              sizeof err);
        if (rc < 0) {
            fprintf(stderr, "liaison send: %s: %s\n", so.json_file, err);
            return lia_err_exit(rc);
        }
        rc = do_send(g, &so, cmd, (const Liaison__V1__Payload *)m);
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }

    if (!b.title || !*b.title)
        return usage_error(cmd, "--title is required");
    if (!b.summary || !*b.summary)
        return usage_error(cmd, "--summary is required");
    if (strcmp(kind, "route") != 0 && (!b.case_ref || !*b.case_ref))
        return usage_error(cmd, "--case is required (the case reference)");
    if (!b.purpose || !*b.purpose)
        return usage_error(cmd, "--purpose is required (why the data are transferred)");
    if (!b.legal_basis || !*b.legal_basis)
        return usage_error(cmd, "--legal-basis is required");
    if (!b.classification)
        return usage_error(cmd, "--classification is required (e.g. UNCLASSIFIED, RESTRICTED)");
    if (b.handling == LIAISON__V1__HANDLING_CODE__HANDLING_CODE_H3 && !b.handling_conditions)
        return usage_error(cmd, "--handling H3 needs --handling-conditions TEXT");
    if (strcmp(kind, "route") == 0) {
        if (!b.n_legs)
            return usage_error(cmd, "at least one --leg FROM>TO is required");
        if (!b.mode)
            return usage_error(cmd, "--mode is required (ROAD, RAIL, AIR, SEA...)");
    } else if (b.n_legs || b.mode) {
        return usage_error(cmd, "--leg and --mode belong to 'send route'");
    }
    if (strcmp(kind, "analysis") != 0 && b.n_attach)
        return usage_error(cmd, "--attach belongs to 'send analysis'");
    if (strcmp(kind, "alert") != 0 &&
        b.urgency != LIAISON__V1__ALERT_URGENCY__ALERT_URGENCY_ROUTINE)
        return usage_error(cmd, "--urgency belongs to 'send alert'");

    rc = build_payload(cmd, kind, &b, &so, &payload);
    if (rc)
        return rc;
    return do_send(g, &so, cmd, &payload);
}

/* ------------------------------------------------------------------ follow, inbox, show */

static int list_opts(const char *cmd, struct global *g, int argc, char **argv, const char **channel,
                     uint64_t *after, uint64_t *max, void (*help)(void))
{
    const struct option opts[] = {
        {"channel", required_argument, NULL, O_CHANNEL},
        {"after", required_argument, NULL, O_AFTER},
        {"max", required_argument, NULL, O_MAX},
        {"json", no_argument, NULL, O_JSON},
        {"socket", required_argument, NULL, O_SOCKET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case O_HELP:
            help();
            return -1;
        case O_CHANNEL:
            if (!channel)
                return usage_error(cmd, "unknown option %s", opt);
            *channel = optarg;
            break;
        case O_AFTER:
            if (!after)
                return usage_error(cmd, "unknown option %s", opt);
            if (parse_u64(optarg, after) != 0)
                return usage_error(cmd, "--after: '%s' is not a delivery sequence number", optarg);
            break;
        case O_MAX:
            if (!max)
                return usage_error(cmd, "unknown option %s", opt);
            if (parse_u64(optarg, max) != 0 || *max < 1 || *max > 10000)
                return usage_error(cmd, "--max: expected 1..10000");
            break;
        case O_JSON:
            g->json = 1;
            break;
        case O_SOCKET:
            g->socket = optarg;
            break;
        case ':':
            return usage_error(cmd, "option %s needs a value", opt);
        default:
            return usage_error(cmd, "unknown option %s", opt);
        }
    }
    return 0;
}

static void follow_help(void)
{
    printf("usage: liaison follow [--channel C] [--after N] [--json] [--socket PATH]\n"
           "\n"
           "Prints every message stored after delivery sequence N (default 0: all), then each\n"
           "new one as it arrives, until interrupted (Ctrl-C exits with status 0).\n"
           "\n"
           "  --channel C   only messages of case channel C (default: all, including direct)\n"
           "  --after N     start after delivery sequence N (resume where you stopped)\n"
           "  --json        one JSON object per line (JSON Lines), payload decoded\n"
           "  --socket PATH the daemon's control socket\n");
}

static void inbox_help(void)
{
    printf("usage: liaison inbox [--channel C] [--after N] [--max N] [--json] [--socket PATH]\n"
           "\n"
           "Lists stored messages as a table: sequence, time, sender, channel, kind, case,\n"
           "title. Page with --after (the last sequence shown).\n"
           "\n"
           "  --channel C   only messages of case channel C\n"
           "  --after N     messages after delivery sequence N (default 0)\n"
           "  --max N       at most N messages, 1..10000 (default 100)\n"
           "  --json        one JSON object per line (JSON Lines), payload decoded\n"
           "  --socket PATH the daemon's control socket\n");
}

static void show_help(void)
{
    printf("usage: liaison show SEQ [--json] [--socket PATH]\n"
           "\n"
           "Shows the stored message with delivery sequence SEQ in full (the whole payload).\n"
           "\n"
           "  --json        the message as one JSON object\n"
           "  --socket PATH the daemon's control socket\n");
}

static void status_help(void)
{
    printf("usage: liaison status [--json] [--socket PATH]\n"
           "\n"
           "Shows the node: its id, the broker connection, outbox and inbox positions, the\n"
           "channels it is a member of, the account the daemon sees for you, and the\n"
           "authority's revocation list in force (serial, issue time, certificates revoked).\n"
           "\n"
           "  --json        the status as one JSON object\n"
           "  --socket PATH the daemon's control socket\n");
}

static int cmd_follow(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__FollowRequest fr = LIAISON__V1__FOLLOW_REQUEST__INIT;
    const char *channel = NULL;
    uint64_t after = 0;
    lia_ctl_conn_t *c = NULL;
    struct sigaction sa;
    sigset_t block, old;
    int rc;

    rc = list_opts("follow", g, argc, argv, &channel, &after, NULL, follow_help);
    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (optind < argc)
        return usage_error("follow", "unexpected argument '%s'", argv[optind]);
    if (channel)
        fr.channel = (char *)channel;
    fr.after = after;
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_FOLLOW;
    req.follow = &fr;

    /* SIGINT/SIGTERM: blocked except inside ppoll, where they end the wait cleanly. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        fprintf(stderr, "liaison: sigaction: %s\n", strerror(errno));
        return EX_OSERR;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &block, &old) != 0) {
        fprintf(stderr, "liaison: sigprocmask: %s\n", strerror(errno));
        return EX_OSERR;
    }
    sigdelset(&old, SIGINT);
    sigdelset(&old, SIGTERM);

    rc = connect_daemon(g, &c);
    if (!rc)
        rc = send_request(c, &req);
    while (!rc) {
        Liaison__V1__ControlReply *rep = NULL;
        rc = read_reply(c, -1, &old, &rep);
        if (rc < 0) {
            rc = EX_OK; /* interrupted */
            break;
        }
        if (rc)
            break;
        if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_ERROR) {
            rc = daemon_error(rep->error);
        } else if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE) {
            Liaison__V1__Payload *p = decode_payload(rep->message);
            if (g->json)
                rc = print_message_json(rep->message, p);
            else
                print_message_block(rep->message, p);
            if (p)
                liaison__v1__payload__free_unpacked(p, NULL);
            if (fflush(stdout) != 0)
                rc = EX_IOERR;
        } else {
            fprintf(stderr, "liaison: the node daemon sent an unexpected reply (kind %d)\n",
                    (int)rep->kind_case);
            rc = EX_PROTOCOL;
        }
        liaison__v1__control_reply__free_unpacked(rep, NULL);
    }
    lia_ctl_conn_destroy(&c);
    return rc;
}

static int cmd_list(struct global *g, int show, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__ListRequest lr = LIAISON__V1__LIST_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    const char *cmd = show ? "show" : "inbox";
    const char *channel = NULL;
    uint64_t after = 0, max = 0, seq = 0;
    int rc;

    if (show)
        rc = list_opts(cmd, g, argc, argv, NULL, NULL, NULL, show_help);
    else
        rc = list_opts(cmd, g, argc, argv, &channel, &after, &max, inbox_help);
    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (show) {
        if (optind >= argc)
            return usage_error(cmd, "which message? give its delivery sequence number");
        if (parse_u64(argv[optind], &seq) != 0 || seq == 0)
            return usage_error(cmd, "'%s' is not a delivery sequence number", argv[optind]);
        optind++;
        lr.after = seq - 1;
        lr.max = 1;
    } else {
        if (channel)
            lr.channel = (char *)channel;
        lr.after = after;
        lr.max = (uint32_t)max;
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_LIST;
    req.list = &lr;
    rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_LIST, &rep);
    if (rc)
        return rc;

    if (show) {
        const Liaison__V1__InboxMessage *m = rep->list->n_messages ? rep->list->messages[0] : NULL;
        Liaison__V1__Payload *p;
        if (!m || m->delivery_seq != seq) {
            fprintf(stderr,
                    "liaison show: no message with delivery sequence %" PRIu64
                    " (see 'liaison inbox')\n",
                    seq);
            liaison__v1__control_reply__free_unpacked(rep, NULL);
            return lia_err_exit(LIA_ERR_NOT_FOUND);
        }
        p = decode_payload(m);
        if (g->json) {
            rc = print_message_json(m, p);
        } else {
            char when[40], recv[40], idhex[2 * 64 + 1] = "";
            fmt_ms(m->created_at_ms, when, sizeof when);
            fmt_ms(m->received_at_ms, recv, sizeof recv);
            if (m->message_id.len <= 64)
                hex(m->message_id.data, m->message_id.len, idhex);
            printf("delivery sequence %" PRIu64 "\nmessage id        %s\nsender            ",
                   m->delivery_seq, idhex);
            put_safe(m->sender, 64);
            printf(" (sequence %" PRIu64 ")\n", m->sender_seq);
            if (p && p->officer && *p->officer) {
                /* Named inside the payload the sending node signed: who is accountable. */
                fputs("officer           ", stdout);
                put_safe(p->officer, 64);
                putchar('\n');
            }
            fputs("channel           ", stdout);
            put_safe(m->channel && *m->channel ? m->channel : "(direct message)", 64);
            printf("\ncreated           %s\nreceived          %s\n", when, recv);
            if (p) {
                char *text = NULL;
                printf("kind              %s\npayload\n", body_kind(p));
                if (lia_pbjson_format(&p->base, LIA_PBJSON_PRETTY, &text) == 0) {
                    put_safe(text, (size_t)-1);
                    putchar('\n');
                    free(text);
                }
            } else {
                printf("payload           (could not be decoded)\n");
            }
        }
        if (p)
            liaison__v1__payload__free_unpacked(p, NULL);
        liaison__v1__control_reply__free_unpacked(rep, NULL);
        return rc;
    }

    if (!g->json)
        printf("%8s  %-20s  %-16s  %-16s  %-16s  %-18s  %-16s  %s\n", "SEQ", "CREATED (UTC)",
               "FROM", "OFFICER", "CHANNEL", "KIND", "CASE", "TITLE");
    for (size_t i = 0; i < rep->list->n_messages; i++) {
        const Liaison__V1__InboxMessage *m = rep->list->messages[i];
        Liaison__V1__Payload *p = decode_payload(m);
        if (g->json) {
            rc = print_message_json(m, p);
        } else {
            char when[40];
            const char *title = "", *text = "";
            fmt_ms(m->created_at_ms, when, sizeof when);
            if (p)
                body_title(p, &title, &text);
            printf("%8" PRIu64 "  %-20s  ", m->delivery_seq, when);
            char officer[17] = "";
            /* A table cell: control characters become '?' (the daemon's data, still text). */
            for (size_t k = 0; p && p->officer && p->officer[k] && k < 16; k++)
                officer[k] = (unsigned char)p->officer[k] < 0x20 || p->officer[k] == 0x7f
                                 ? '?'
                                 : p->officer[k];
            printf("%-16.16s  %-16.16s  %-16.16s  %-18s  %-16.16s  ", m->sender, officer,
                   m->channel && *m->channel ? m->channel : "(direct)",
                   p ? body_kind(p) : "(undecodable)",
                   p && p->governance && p->governance->case_reference
                       ? p->governance->case_reference
                       : "");
            put_safe(title, 60);
            putchar('\n');
        }
        if (p)
            liaison__v1__payload__free_unpacked(p, NULL);
    }
    if (!g->json && rep->list->n_messages == 0)
        printf("(no messages)\n");
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static int cmd_status(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__StatusRequest sreq = LIAISON__V1__STATUS_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    const Liaison__V1__StatusReply *s;
    int rc = list_opts("status", g, argc, argv, NULL, NULL, NULL, status_help);
    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (optind < argc)
        return usage_error("status", "unexpected argument '%s'", argv[optind]);
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_STATUS;
    req.status = &sreq;
    rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_STATUS, &rep);
    if (rc)
        return rc;
    s = rep->status;
    if (g->json) {
        char *text = NULL;
        rc = lia_pbjson_format(&s->base, 0, &text);
        if (rc == 0)
            puts(text);
        free(text);
        rc = rc ? lia_err_exit(rc) : 0;
    } else {
        char last[40];
        fmt_ms(s->last_broker_frame_ms, last, sizeof last);
        printf("node              %s\n", s->node_id);
        printf("account           %s\n", s->account);
        printf("officer           %s%s\n", *s->officer ? s->officer : "(none)",
               s->node_admin ? " (node administrator)" : "");
        printf("broker            %s (%s; last frame %s)\n", s->broker_endpoint,
               s->broker_connected ? "connected" : "NOT CONNECTED", last);
        printf("outbox pending    %" PRIu64 "\n", s->outbox_pending);
        printf("inbox cursor      %" PRIu64 "\n", s->inbox_cursor);
        printf("refused           %" PRIu64 "%s\n", s->refused,
               s->refused ? " (see the daemon's log for reasons)" : "");
        printf("channels         ");
        for (size_t i = 0; i < s->n_channels; i++)
            printf(" %s", s->channels[i]);
        printf("%s\n", s->n_channels ? "" : " (none)");
        if (s->crl_serial) {
            char issued[40];
            fmt_ms(s->crl_issued_at * 1000u, issued, sizeof issued);
            printf("revocation list   %" PRIu64 " (issued %s, %" PRIu64 " certificate%s revoked)\n",
                   s->crl_serial, issued, s->crl_revoked, s->crl_revoked == 1 ? "" : "s");
        } else {
            printf("revocation list   (none)\n");
        }
    }
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* ------------------------------------------------------------------ officers */

static void officer_help(void)
{
    printf("usage: liaison officer list [--json] [--socket PATH]\n"
           "       liaison officer assign OFFICER CHANNEL [--json] [--socket PATH]\n"
           "       liaison officer unassign OFFICER CHANNEL [--json] [--socket PATH]\n"
           "\n"
           "The officers of this node and the channels each works on. An officer reads, follows\n"
           "and sends only on the channels it is assigned to; CHANNEL may also be @direct\n"
           "(direct messages) or * (everything this node receives).\n"
           "\n"
           "  list      every officer with its account and assignments (the node administrator),\n"
           "            or your own entry (an officer)\n"
           "  assign    assign OFFICER to CHANNEL (node administrator only; stored durably)\n"
           "  unassign  remove a run-time assignment (node administrator only); assignments\n"
           "            made in node.conf ('assign' lines) are removed there\n"
           "\n"
           "Officers themselves are declared in node.conf: 'officer ID ACCOUNT'.\n"
           "\n"
           "  --json        JSON (list: one object per officer, JSON Lines)\n"
           "  --socket PATH the daemon's control socket\n");
}

static void whoami_help(void)
{
    printf("usage: liaison whoami [--json] [--socket PATH]\n"
           "\n"
           "Shows who the node daemon sees on the control socket: your local account, the\n"
           "officer id it is mapped to (the officer named in what you send), whether you are\n"
           "the node administrator, and the channels you are assigned to.\n"
           "\n"
           "  --json        one JSON object\n"
           "  --socket PATH the daemon's control socket\n");
}

/* Prints one officer: "ID  ACCOUNT  UID  assignments" or one JSON line. */
static int print_officer(const struct global *g, const Liaison__V1__Officer *o)
{
    if (g->json) {
        char *text = NULL;
        int rc = lia_pbjson_format(&o->base, 0, &text);
        if (rc == 0)
            puts(text);
        free(text);
        return rc ? lia_err_exit(rc) : 0;
    }
    printf("%-20s  %-16s  %7u  ", o->id, o->account, (unsigned)o->uid);
    for (size_t j = 0; j < o->n_assignments; j++) {
        printf("%s%s", j ? ", " : "", o->assignments[j]->channel);
        if (o->assignments[j]->config_line)
            printf(" (node.conf:%u)", (unsigned)o->assignments[j]->config_line);
    }
    printf("%s\n", o->n_assignments ? "" : "(no channels)");
    return 0;
}

static int cmd_officer(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__OfficerListRequest lreq = LIAISON__V1__OFFICER_LIST_REQUEST__INIT;
    Liaison__V1__OfficerAssignRequest areq = LIAISON__V1__OFFICER_ASSIGN_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    const char *sub;
    int rc;

    if (argc >= 2 && argv[1][0] != '-') {
        sub = argv[1];
        argc--;
        argv++;
    } else {
        sub = NULL;
    }
    rc = list_opts("officer", g, argc, argv, NULL, NULL, NULL, officer_help);
    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (!sub)
        return usage_error("officer", "which action? list, assign or unassign");
    if (strcmp(sub, "list") == 0) {
        if (optind < argc)
            return usage_error("officer", "unexpected argument '%s'", argv[optind]);
        req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_LIST;
        req.officer_list = &lreq;
        rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_OFFICER_LIST, &rep);
        if (rc)
            return rc;
        if (!g->json)
            printf("%-20s  %-16s  %7s  %s\n", "OFFICER", "ACCOUNT", "UID", "CHANNELS");
        for (size_t i = 0; i < rep->officer_list->n_officers && !rc; i++)
            rc = print_officer(g, rep->officer_list->officers[i]);
        if (!g->json && rep->officer_list->n_officers == 0)
            printf("(no officers: declare them in node.conf with 'officer ID ACCOUNT')\n");
        liaison__v1__control_reply__free_unpacked(rep, NULL);
        return rc;
    }
    if (strcmp(sub, "assign") != 0 && strcmp(sub, "unassign") != 0)
        return usage_error("officer", "unknown action '%s' (list, assign, unassign)", sub);
    if (argc - optind != 2)
        return usage_error("officer", "%s takes an officer id and a channel", sub);
    areq.officer = argv[optind];
    areq.channel = argv[optind + 1];
    if (strcmp(sub, "assign") == 0) {
        req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_ASSIGN;
        req.officer_assign = &areq;
    } else {
        req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_UNASSIGN;
        req.officer_unassign = &areq;
    }
    rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_OFFICER_ASSIGN, &rep);
    if (rc)
        return rc;
    if (g->json) {
        char *text = NULL;
        rc = lia_pbjson_format(&rep->officer_assign->base, 0, &text);
        if (rc == 0)
            puts(text);
        free(text);
        rc = rc ? lia_err_exit(rc) : 0;
    } else {
        printf("officer %s %s %s%s\n", areq.officer,
               strcmp(sub, "assign") == 0 ? "assigned to" : "unassigned from", areq.channel,
               rep->officer_assign->changed ? "" : " (it already was; nothing changed)");
        if (rep->officer_assign->officer)
            rc = print_officer(g, rep->officer_assign->officer);
    }
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static int cmd_whoami(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__StatusRequest sreq = LIAISON__V1__STATUS_REQUEST__INIT;
    Liaison__V1__OfficerListRequest lreq = LIAISON__V1__OFFICER_LIST_REQUEST__INIT;
    Liaison__V1__ControlReply *st = NULL, *ol = NULL;
    const Liaison__V1__Officer *me = NULL;
    int rc = list_opts("whoami", g, argc, argv, NULL, NULL, NULL, whoami_help);

    if (rc)
        return rc < 0 ? EX_OK : rc;
    if (optind < argc)
        return usage_error("whoami", "unexpected argument '%s'", argv[optind]);
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_STATUS;
    req.status = &sreq;
    if ((rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_STATUS, &st)) != 0)
        return rc;
    if (*st->status->officer) {
        req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_OFFICER_LIST;
        req.officer_list = &lreq;
        if ((rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_OFFICER_LIST, &ol)) != 0)
            goto done;
        for (size_t i = 0; i < ol->officer_list->n_officers; i++)
            if (strcmp(ol->officer_list->officers[i]->id, st->status->officer) == 0)
                me = ol->officer_list->officers[i];
    }
    if (g->json) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();
        if (!o || !a) {
            json_object_put(o);
            json_object_put(a);
            rc = EX_OSERR;
            goto done;
        }
        json_object_object_add(o, "node_id", json_object_new_string(st->status->node_id));
        json_object_object_add(o, "account", json_object_new_string(st->status->account));
        json_object_object_add(o, "officer", json_object_new_string(st->status->officer));
        json_object_object_add(o, "node_admin", json_object_new_boolean(st->status->node_admin));
        for (size_t j = 0; me && j < me->n_assignments; j++)
            json_object_array_add(a, json_object_new_string(me->assignments[j]->channel));
        json_object_object_add(o, "assignments", a);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("node              %s\n", st->status->node_id);
        printf("account           %s\n", st->status->account);
        printf("officer           %s\n",
               *st->status->officer
                   ? st->status->officer
                   : "(none: you cannot read or send; ask the node administrator)");
        printf("node admin        %s\n", st->status->node_admin ? "yes" : "no");
        printf("assigned to      ");
        for (size_t j = 0; me && j < me->n_assignments; j++)
            printf(" %s", me->assignments[j]->channel);
        printf("%s\n", me && me->n_assignments ? "" : " (nothing)");
    }
done:
    if (st)
        liaison__v1__control_reply__free_unpacked(st, NULL);
    if (ol)
        liaison__v1__control_reply__free_unpacked(ol, NULL);
    return rc;
}

/* ------------------------------------------------------------------ search, export (hub) */

enum {
    O_HUB_CASE = 2000,
    O_HUB_PERSON,
    O_HUB_DOCUMENT,
    O_HUB_VEHICLE,
    O_HUB_ROUTE,
    O_HUB_OFFICER,
    O_HUB_SENDER,
    O_HUB_CHANNEL,
    O_HUB_DIRECT,
    O_HUB_SINCE,
    O_HUB_UNTIL,
    O_HUB_AFTER,
    O_HUB_MAX,
    O_HUB_OUT,
    O_HUB_JSON,
    O_HUB_SOCKET,
    O_HUB_HELP,
};

#define HUB_TERMS_MAX 8 /* entity terms in one search (the daemon's bound) */

struct hub_opts {
    Liaison__V1__SearchRequest sr;
    char *terms[6][HUB_TERMS_MAX]; /* case, person, document, vehicle, place, officer */
    size_t n_terms[6], total;
    const char *out;
};

static void search_help(int export)
{
    printf("usage: liaison %s [--case REF] [--person NAME] [--document NUM] [--vehicle PLATE]\n"
           "         [--route PLACE] [--officer NAME] [--sender NODE] [--channel C | --direct]\n"
           "         [--since T] [--until T] [--after N] %s[--socket PATH]\n"
           "\n",
           export ? "export" : "search", export ? "[--out FILE] " : "[--max N] [--json] ");
    if (export)
        printf("Writes every stored message that matches, as JSON Lines: one object per message\n"
               "with delivery_seq, sender, channel (\"\" for a direct message), sender_seq,\n"
               "created_at_ms, received_at_ms, created_at (UTC), officer, message_id and the\n"
               "payload as JSON (the same mapping as 'liaison send --json' reads).\n");
    else
        printf("Lists the stored messages that match, oldest first (page with --after).\n");
    printf("Only a hub keeps the index these commands need. Every condition given must hold;\n"
           "an option given twice must match twice (e.g. two persons in one message). Entity\n"
           "values match whole values after normalisation (case, repeated blanks; documents\n"
           "and plates also without blanks, '-' and '.'), never parts of them: 'HOXHA' finds\n"
           "'Hoxha' and 'Dritan Hoxha', 'Hox' finds nothing.\n"
           "\n"
           "  --case REF       case reference (or request id of an information exchange)\n"
           "  --person NAME    family name, given names, 'given family', 'family given',\n"
           "                   maiden name or alias of a person\n"
           "  --document NUM   document number\n"
           "  --vehicle PLATE  registration plate or VIN\n"
           "  --route PLACE    place name or country code where a route leg starts or ends\n"
           "  --officer NAME   accountable officer named in the message\n"
           "  --sender NODE    sending node id\n"
           "  --channel C      only channel C;  --direct  only direct messages\n"
           "  --since T        created at or after T;  --until T  created before T\n"
           "                   T: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC), or Unix seconds\n"
           "                   with optional milliseconds (1767225600.250)\n"
           "  --after N        only messages after delivery sequence N\n");
    if (export)
        printf("  --out FILE       write to FILE (created, mode 0600; never overwritten)\n"
               "                   instead of standard output\n");
    else
        printf("  --max N          at most N messages, 1..10000 (default 100)\n"
               "  --json           one JSON object per line (as 'liaison export' writes)\n");
    printf("  --socket PATH    the daemon's control socket\n");
}

/* T as "YYYY-MM-DD[THH:MM[:SS]Z]" (UTC) or Unix seconds with up to 3 decimals, in ms. */
static int parse_instant_ms(const char *s, uint64_t *ms)
{
    int64_t t;
    if (isdigit((unsigned char)s[0]) && !strchr(s, '-')) {
        char *end;
        uint64_t sec, frac = 0;
        int digits = 0;
        errno = 0;
        sec = strtoull(s, &end, 10);
        if (errno || sec > 7258118400ull)
            return -1;
        if (*end == '.') {
            for (end++; isdigit((unsigned char)*end) && digits < 3; end++, digits++)
                frac = frac * 10 + (uint64_t)(*end - '0');
            if (digits == 0)
                return -1;
            for (; digits < 3; digits++)
                frac *= 10;
        }
        if (*end)
            return -1;
        *ms = sec * 1000 + frac;
        return 0;
    }
    if (parse_time(s, 1, &t) != 0 || t < 0)
        return -1;
    *ms = (uint64_t)t * 1000;
    return 0;
}

static int hub_parse(const char *cmd, struct global *g, int export, int argc, char **argv,
                     struct hub_opts *h)
{
    const struct option opts[] = {
        {"case", required_argument, NULL, O_HUB_CASE},
        {"person", required_argument, NULL, O_HUB_PERSON},
        {"document", required_argument, NULL, O_HUB_DOCUMENT},
        {"vehicle", required_argument, NULL, O_HUB_VEHICLE},
        {"route", required_argument, NULL, O_HUB_ROUTE},
        {"officer", required_argument, NULL, O_HUB_OFFICER},
        {"sender", required_argument, NULL, O_HUB_SENDER},
        {"channel", required_argument, NULL, O_HUB_CHANNEL},
        {"direct", no_argument, NULL, O_HUB_DIRECT},
        {"since", required_argument, NULL, O_HUB_SINCE},
        {"until", required_argument, NULL, O_HUB_UNTIL},
        {"after", required_argument, NULL, O_HUB_AFTER},
        {export ? "out" : "max", required_argument, NULL, export ? O_HUB_OUT : O_HUB_MAX},
        {"json", no_argument, NULL, O_HUB_JSON},
        {"socket", required_argument, NULL, O_HUB_SOCKET},
        {"help", no_argument, NULL, O_HUB_HELP},
        {NULL, 0, NULL, 0},
    };
    uint64_t u;
    int c;

    memset(h, 0, sizeof *h);
    liaison__v1__search_request__init(&h->sr);
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case O_HUB_HELP:
            search_help(export);
            return -1;
        case O_HUB_CASE:
        case O_HUB_PERSON:
        case O_HUB_DOCUMENT:
        case O_HUB_VEHICLE:
        case O_HUB_ROUTE:
        case O_HUB_OFFICER: {
            size_t k = (size_t)(c - O_HUB_CASE);
            if (h->total == HUB_TERMS_MAX)
                return usage_error(cmd, "at most %d entity options in one search", HUB_TERMS_MAX);
            if (!*optarg)
                return usage_error(cmd, "%s: empty value", opt);
            h->terms[k][h->n_terms[k]++] = optarg;
            h->total++;
            break;
        }
        case O_HUB_SENDER:
            h->sr.sender = optarg;
            break;
        case O_HUB_CHANNEL:
            if (!*optarg)
                return usage_error(cmd, "--channel: empty channel name (for direct messages "
                                        "use --direct)");
            h->sr.channel = optarg;
            break;
        case O_HUB_DIRECT:
            h->sr.direct_only = 1;
            break;
        case O_HUB_SINCE:
        case O_HUB_UNTIL:
            if (parse_instant_ms(optarg, c == O_HUB_SINCE ? &h->sr.since_ms : &h->sr.until_ms) != 0)
                return usage_error(cmd,
                                   "%s: '%s' is not a time (YYYY-MM-DD, "
                                   "YYYY-MM-DDTHH:MM[:SS]Z or Unix seconds)",
                                   c == O_HUB_SINCE ? "--since" : "--until", optarg);
            break;
        case O_HUB_AFTER:
            if (parse_u64(optarg, &h->sr.after) != 0)
                return usage_error(cmd, "--after: '%s' is not a delivery sequence number", optarg);
            break;
        case O_HUB_MAX:
            if (parse_u64(optarg, &u) != 0 || u < 1 || u > 10000)
                return usage_error(cmd, "--max: expected 1..10000");
            h->sr.max = (uint32_t)u;
            break;
        case O_HUB_OUT:
            if (!*optarg)
                return usage_error(cmd, "--out: empty file name");
            h->out = optarg;
            break;
        case O_HUB_JSON:
            g->json = 1;
            break;
        case O_HUB_SOCKET:
            g->socket = optarg;
            break;
        case ':':
            return usage_error(cmd, "option %s needs a value", opt);
        default:
            return usage_error(cmd, "unknown option %s", opt);
        }
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (*h->sr.channel && h->sr.direct_only)
        return usage_error(cmd, "--channel and --direct exclude each other");
    if (h->sr.until_ms && h->sr.until_ms <= h->sr.since_ms)
        return usage_error(cmd, "--until must be later than --since");
    h->sr.case_refs = h->terms[0];
    h->sr.n_case_refs = h->n_terms[0];
    h->sr.persons = h->terms[1];
    h->sr.n_persons = h->n_terms[1];
    h->sr.documents = h->terms[2];
    h->sr.n_documents = h->n_terms[2];
    h->sr.vehicles = h->terms[3];
    h->sr.n_vehicles = h->n_terms[3];
    h->sr.places = h->terms[4];
    h->sr.n_places = h->n_terms[4];
    h->sr.officers = h->terms[5];
    h->sr.n_officers = h->n_terms[5];
    return 0;
}

/*
 * One message as one line of JSON (the export format; also `search --json`): the message's
 * fields, created_at in UTC, the officer from the payload, and the payload through pbjson (or,
 * if it cannot be decoded, payload_base64 with the raw bytes). 0 or EX_IOERR/EX_OSERR.
 */
static int hub_json_line(FILE *f, const Liaison__V1__InboxMessage *m, const Liaison__V1__Payload *p)
{
    json_object *o = NULL, *po = NULL;
    char idhex[2 * 64 + 1], when[40];
    const char *s;
    int rc = 0;

    if (lia_pbjson_to_object(&m->base, &o) < 0)
        return EX_OSERR;
    json_object_object_del(o, "payload");
    json_object_object_del(o, "message_id");
    json_object_object_add(o, "channel", json_object_new_string(m->channel ? m->channel : ""));
    if (m->message_id.len <= 64) {
        hex(m->message_id.data, m->message_id.len, idhex);
        json_object_object_add(o, "message_id", json_object_new_string(idhex));
    }
    {
        /* RFC 3339 in UTC with milliseconds, for analysis tools. */
        time_t t = (time_t)(m->created_at_ms / 1000);
        struct tm tm;
        char sec[32];
        if (gmtime_r(&t, &tm) && strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm) > 0)
            snprintf(when, sizeof when, "%s.%03uZ", sec, (unsigned)(m->created_at_ms % 1000));
        else
            snprintf(when, sizeof when, "-");
    }
    json_object_object_add(o, "created_at", json_object_new_string(when));
    if (p && p->officer)
        json_object_object_add(o, "officer", json_object_new_string(p->officer));
    if (p && lia_pbjson_to_object(&p->base, &po) == 0) {
        json_object_object_add(o, "payload", po);
    } else {
        size_t cap = sodium_base64_encoded_len(m->payload.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (!b64) {
            json_object_put(o);
            return EX_OSERR;
        }
        sodium_bin2base64(b64, cap, m->payload.data, m->payload.len,
                          sodium_base64_VARIANT_ORIGINAL);
        json_object_object_add(o, "payload_error",
                               json_object_new_string("payload could not be decoded"));
        json_object_object_add(o, "payload_base64", json_object_new_string(b64));
        free(b64);
    }
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (fputs(s ? s : "{}", f) == EOF || fputc('\n', f) == EOF)
        rc = EX_IOERR;
    json_object_put(o);
    return rc;
}

static int cmd_search(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    const Liaison__V1__SearchReply *sp;
    struct hub_opts h;
    int rc = hub_parse("search", g, 0, argc, argv, &h);

    if (rc)
        return rc < 0 ? EX_OK : rc;
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_SEARCH;
    req.search = &h.sr;
    if ((rc = call(g, &req, LIAISON__V1__CONTROL_REPLY__KIND_SEARCH, &rep)) != 0)
        return rc;
    sp = rep->search;
    if (!g->json)
        printf("%8s  %-20s  %-16s  %-16s  %-18s  %-16s  %s\n", "SEQ", "CREATED (UTC)", "FROM",
               "CHANNEL", "KIND", "CASE", "TITLE");
    for (size_t i = 0; i < sp->n_messages && rc == 0; i++) {
        const Liaison__V1__InboxMessage *m = sp->messages[i];
        Liaison__V1__Payload *p = decode_payload(m);
        if (g->json) {
            rc = hub_json_line(stdout, m, p);
        } else {
            char when[40];
            const char *title = "", *text = "";
            fmt_ms(m->created_at_ms, when, sizeof when);
            if (p)
                body_title(p, &title, &text);
            printf("%8" PRIu64 "  %-20s  ", m->delivery_seq, when);
            printf("%-16.16s  %-16.16s  %-18s  ", m->sender,
                   m->channel && *m->channel ? m->channel : "(direct)",
                   p ? body_kind(p) : "(undecodable)");
            put_safe(p && p->governance && p->governance->case_reference
                         ? p->governance->case_reference
                         : "",
                     16);
            fputs("  ", stdout);
            put_safe(title, 60);
            putchar('\n');
        }
        if (p)
            liaison__v1__payload__free_unpacked(p, NULL);
    }
    if (!g->json && sp->n_messages == 0)
        printf("(no messages match)\n");
    if (!g->json && sp->more)
        printf("(more: continue with --after %" PRIu64 ")\n",
               sp->messages[sp->n_messages - 1]->delivery_seq);
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    if (rc == 0 && fflush(stdout) != 0)
        rc = EX_IOERR;
    return rc;
}

/* Opens the export file: created, 0600 (exports hold personal data), never overwritten. */
static int open_out(const char *path, FILE **f)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "liaison export: cannot create %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (choose another name, or remove the old export)" : "");
        return EX_CANTCREAT;
    }
    if (!(*f = fdopen(fd, "w"))) {
        fprintf(stderr, "liaison export: %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return EX_OSERR;
    }
    return 0;
}

static int cmd_export(struct global *g, int argc, char **argv)
{
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    lia_ctl_conn_t *c = NULL;
    struct hub_opts h;
    FILE *f = stdout;
    uint64_t count = 0;
    sigset_t none;
    int rc = hub_parse("export", g, 1, argc, argv, &h), done = 0;

    if (rc)
        return rc < 0 ? EX_OK : rc;
    req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_EXPORT;
    req.export = &h.sr;
    sigemptyset(&none);
    if ((rc = connect_daemon(g, &c)) != 0)
        return rc;
    if (h.out && (rc = open_out(h.out, &f)) != 0) {
        lia_ctl_conn_destroy(&c);
        return rc;
    }
    if ((rc = send_request(c, &req)) != 0)
        goto out;
    while (!done) {
        Liaison__V1__ControlReply *rep = NULL;
        if ((rc = read_reply(c, REPLY_TIMEOUT_MS, &none, &rep)) != 0) {
            rc = rc < 0 ? EX_TEMPFAIL : rc;
            break;
        }
        if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_MESSAGE) {
            Liaison__V1__Payload *p = decode_payload(rep->message);
            rc = hub_json_line(f, rep->message, p);
            if (p)
                liaison__v1__payload__free_unpacked(p, NULL);
            count++;
        } else if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_EXPORT_END) {
            if (rep->export_end->count != count) {
                fprintf(stderr,
                        "liaison export: the daemon announced %" PRIu64
                        " messages and sent %" PRIu64 "\n",
                        rep->export_end->count, count);
                rc = EX_PROTOCOL;
            }
            done = 1;
        } else if (rep->kind_case == LIAISON__V1__CONTROL_REPLY__KIND_ERROR) {
            rc = daemon_error(rep->error);
        } else {
            fprintf(stderr, "liaison: the node daemon sent an unexpected reply (kind %d)\n",
                    (int)rep->kind_case);
            rc = EX_PROTOCOL;
        }
        liaison__v1__control_reply__free_unpacked(rep, NULL);
        if (rc)
            break;
    }
out:
    lia_ctl_conn_destroy(&c);
    if (rc == 0 && (fflush(f) != 0 || (f != stdout && fsync(fileno(f)) != 0))) {
        fprintf(stderr, "liaison export: cannot write %s: %s\n", h.out ? h.out : "the output",
                strerror(errno));
        rc = EX_IOERR;
    }
    if (f != stdout && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "liaison export: cannot write %s: %s\n", h.out, strerror(errno));
        rc = EX_IOERR;
    }
    if (f != stdout && rc != 0) {
        unlink(h.out); /* no partial export left behind */
        fprintf(stderr, "liaison export: %s not written\n", h.out);
    } else if (f != stdout) {
        fprintf(stderr, "exported %" PRIu64 " message%s to %s\n", count, count == 1 ? "" : "s",
                h.out);
    }
    return rc;
}

/* ------------------------------------------------------------------ channel */

static void channel_help(void)
{
    printf("usage: liaison channel COMMAND [options]\n"
           "\n"
           "Owner-signed channel membership. The channel's owner (the contact point that\n"
           "created it, or that ownership was transferred to) signs every change with its node\n"
           "key; every member verifies it, and the broker routes only to members. A change is\n"
           "confirmed once the broker stored it and this node applied it.\n"
           "\n"
           "Commands:\n"
           "  create CHANNEL [MEMBER...] [--copy-to-hub] [--description TEXT]\n"
           "                     open a channel owned by this node, with these members (this\n"
           "                     node is always one); hubs that should receive it are named\n"
           "                     as members\n"
           "  add CHANNEL NODE   add a member (it reads from the key epoch it joins)\n"
           "  remove CHANNEL NODE\n"
           "                     remove a member: a new key epoch starts, the removed node\n"
           "                     cannot read anything sent afterwards\n"
           "  transfer CHANNEL NODE\n"
           "                     hand ownership to another member (a contact point)\n"
           "  members CHANNEL    the owner, members, epoch and last change\n"
           "  history CHANNEL    every change, oldest first\n"
           "\n"
           "Options:\n"
           "  --json         JSON output (history: one JSON object per change, JSON Lines)\n"
           "  --socket PATH  the daemon's control socket\n"
           "  --help         this help\n");
}

static void print_json(const ProtobufCMessage *m, int *rc)
{
    char *text = NULL;
    int r = lia_pbjson_format(m, 0, &text);
    if (r == 0)
        puts(text);
    else
        *rc = lia_err_exit(r);
    free(text);
}

static void print_list(const char *label, char *const *v, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf(" %s", v[i]);
    printf("%s\n", n ? "" : " (none)");
}

static int cmd_channel(struct global *g, int argc, char **argv)
{
    const struct option opts[] = {
        {"copy-to-hub", no_argument, NULL, O_COPY_TO_HUB},
        {"description", required_argument, NULL, O_DESCRIPTION},
        {"json", no_argument, NULL, O_JSON},
        {"socket", required_argument, NULL, O_SOCKET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    Liaison__V1__ControlRequest req = LIAISON__V1__CONTROL_REQUEST__INIT;
    Liaison__V1__ChannelCreateRequest cr = LIAISON__V1__CHANNEL_CREATE_REQUEST__INIT;
    Liaison__V1__ChannelMemberRequest mr = LIAISON__V1__CHANNEL_MEMBER_REQUEST__INIT;
    Liaison__V1__ChannelQueryRequest qr = LIAISON__V1__CHANNEL_QUERY_REQUEST__INIT;
    Liaison__V1__ControlReply *rep = NULL;
    Liaison__V1__ControlReply__KindCase want;
    const char *sub, *description = "", *cmd;
    char cmdbuf[32];
    int c, copy_to_hub = 0, rc = 0;
    char **pos;
    size_t npos = 0;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        channel_help();
        return argc < 2 ? EX_USAGE : EX_OK;
    }
    sub = argv[1];
    snprintf(cmdbuf, sizeof cmdbuf, "channel %.20s", sub);
    cmd = cmdbuf;
    if (strcmp(sub, "create") && strcmp(sub, "add") && strcmp(sub, "remove") &&
        strcmp(sub, "transfer") && strcmp(sub, "members") && strcmp(sub, "history"))
        return usage_error("channel",
                           "unknown command '%s' (create, add, remove, transfer, members, history)",
                           sub);
    argc--;
    argv++;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case O_HELP:
            channel_help();
            return EX_OK;
        case O_COPY_TO_HUB:
        case O_DESCRIPTION:
            if (strcmp(sub, "create") != 0)
                return usage_error(cmd, "%s is an option of channel create only", opt);
            if (c == O_COPY_TO_HUB)
                copy_to_hub = 1;
            else
                description = optarg;
            break;
        case O_JSON:
            g->json = 1;
            break;
        case O_SOCKET:
            g->socket = optarg;
            break;
        case ':':
            return usage_error(cmd, "option %s needs a value", opt);
        default:
            return usage_error(cmd, "unknown option %s", opt);
        }
    }
    pos = argv + optind;
    npos = (size_t)(argc - optind);
    if (npos < 1)
        return usage_error(cmd, "a channel name is needed (e.g. case:2026-0042)");
    if (strcmp(sub, "create") == 0) {
        cr.channel = pos[0];
        cr.n_members = npos - 1;
        cr.members = pos + 1;
        cr.copy_to_hub = copy_to_hub;
        cr.description = (char *)description;
        req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_CREATE;
        req.channel_create = &cr;
        want = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_CHANGE;
    } else if (strcmp(sub, "members") == 0 || strcmp(sub, "history") == 0) {
        if (npos != 1)
            return usage_error(cmd, "expected only the channel name");
        qr.channel = pos[0];
        if (sub[0] == 'm') {
            req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_MEMBERS;
            req.channel_members = &qr;
            want = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_MEMBERS;
        } else {
            req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_HISTORY;
            req.channel_history = &qr;
            want = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_HISTORY;
        }
    } else {
        if (npos != 2)
            return usage_error(cmd, "expected CHANNEL NODE");
        mr.channel = pos[0];
        mr.node = pos[1];
        if (strcmp(sub, "add") == 0) {
            req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_ADD;
            req.channel_add = &mr;
        } else if (strcmp(sub, "remove") == 0) {
            req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_REMOVE;
            req.channel_remove = &mr;
        } else {
            req.kind_case = LIAISON__V1__CONTROL_REQUEST__KIND_CHANNEL_TRANSFER;
            req.channel_transfer = &mr;
        }
        want = LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_CHANGE;
    }
    if ((rc = call(g, &req, want, &rep)) != 0)
        return rc;
    if (want == LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_CHANGE) {
        const Liaison__V1__ChannelChangeReply *r = rep->channel_change;
        if (g->json)
            print_json(&r->base, &rc);
        else
            printf("channel %s: change %" PRIu64 " (%s%s%s) stored by the broker and applied; "
                   "epoch %" PRIu64 "\n",
                   r->channel, r->serial, r->action, r->node[0] ? " " : "", r->node, r->epoch);
    } else if (want == LIAISON__V1__CONTROL_REPLY__KIND_CHANNEL_MEMBERS) {
        const Liaison__V1__ChannelMembersReply *r = rep->channel_members;
        if (g->json) {
            print_json(&r->base, &rc);
        } else {
            printf("channel      %s\n", r->channel);
            printf("owner        %s\n", r->owner);
            print_list("members     ", r->members, r->n_members);
            printf("epoch        %" PRIu64 "\n", r->epoch);
            printf("last change  %" PRIu64 "\n", r->serial);
            printf("copy to hub  %s\n", r->copy_to_hub ? "yes" : "no");
            printf("this node    %s\n", r->member ? "member" : "NOT a member");
        }
    } else {
        const Liaison__V1__ChannelHistoryReply *r = rep->channel_history;
        for (size_t i = 0; i < r->n_events; i++) {
            const Liaison__V1__ChannelEvent *e = r->events[i];
            char when[40];
            if (g->json) {
                print_json(&e->base, &rc);
                continue;
            }
            fmt_ms(e->created_at_ms, when, sizeof when);
            printf("%4" PRIu64 "  %s  %-8s  %-20s  by %-20s  epoch %" PRIu64, e->serial, when,
                   e->action, e->node, e->signer, e->epoch);
            if (e->n_members)
                print_list("  members:", e->members, e->n_members);
            else
                putchar('\n');
        }
    }
    liaison__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* ------------------------------------------------------------------ main */

static void main_help(void)
{
    printf("usage: liaison [--socket PATH] [--json] COMMAND [options]\n"
           "\n"
           "The operator's client of the liaison node daemon.\n"
           "\n"
           "Commands:\n"
           "  send      send a case alert, route intelligence, an analysis share, or a payload\n"
           "            given as JSON\n"
           "  follow    print messages as they arrive\n"
           "  inbox     list stored messages\n"
           "  show      show one message in full\n"
           "  status    show the node's state\n"
           "  officer   the node's officers and their channels (list, assign, unassign)\n"
           "  whoami    your account, officer id and assigned channels\n"
           "  search    search the messages stored at a hub (case, person, document...)\n"
           "  export    write the matching messages at a hub as JSON Lines\n"
           "  channel   create a channel, add, remove or list members, transfer ownership,\n"
           "            show its history\n"
           "\n"
           "Options:\n"
           "  --socket PATH  the daemon's control socket (default: $LIAISON_SOCKET, else\n"
           "                 " DEFAULT_SOCKET ")\n"
           "  --json         JSON output (JSON Lines where several messages are printed)\n"
           "  --help         this help; 'liaison COMMAND --help' for a command\n"
           "  --version      the version\n"
           "\n"
           "Exit status (sysexits): 0 success, 64 usage error, 65 bad data, 66 not found,\n"
           "69 daemon unavailable, 76 protocol error, 77 permission denied.\n");
}

int cli_main(int argc, char **argv)
{
    struct global g;
    const char *env = getenv("LIAISON_SOCKET");
    int rc;

    memset(&g, 0, sizeof g);
    g.socket = env && *env ? env : DEFAULT_SOCKET;
    if (sodium_init() < 0) {
        fprintf(stderr, "liaison: cannot initialise libsodium\n");
        return EX_SOFTWARE;
    }
    /* Global options, before the command. */
    {
        const struct option opts[] = {
            {"socket", required_argument, NULL, O_SOCKET},
            {"json", no_argument, NULL, O_JSON},
            {"help", no_argument, NULL, O_HELP},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        int c;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
            switch (c) {
            case O_SOCKET:
                g.socket = optarg;
                break;
            case O_JSON:
                g.json = 1;
                break;
            case O_HELP:
                main_help();
                return EX_OK;
            case 'V':
                printf("liaison %s\n", "0.1.0");
                return EX_OK;
            case ':':
                fprintf(stderr, "liaison: option %s needs a value\nTry 'liaison --help'.\n",
                        argv[optind - 1]);
                return EX_USAGE;
            default:
                fprintf(stderr, "liaison: unknown option %s\nTry 'liaison --help'.\n",
                        argv[optind - 1]);
                return EX_USAGE;
            }
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "liaison: a command is needed (send, follow, inbox, show, status, officer, "
                        "whoami, search, export, channel)\n"
                        "Try 'liaison --help'.\n");
        return EX_USAGE;
    }
    argc -= optind;
    argv += optind;
    if (strcmp(argv[0], "send") == 0)
        rc = cmd_send(&g, argc, argv);
    else if (strcmp(argv[0], "follow") == 0)
        rc = cmd_follow(&g, argc, argv);
    else if (strcmp(argv[0], "inbox") == 0)
        rc = cmd_list(&g, 0, argc, argv);
    else if (strcmp(argv[0], "show") == 0)
        rc = cmd_list(&g, 1, argc, argv);
    else if (strcmp(argv[0], "status") == 0)
        rc = cmd_status(&g, argc, argv);
    else if (strcmp(argv[0], "officer") == 0)
        rc = cmd_officer(&g, argc, argv);
    else if (strcmp(argv[0], "whoami") == 0)
        rc = cmd_whoami(&g, argc, argv);
    else if (strcmp(argv[0], "search") == 0)
        rc = cmd_search(&g, argc, argv);
    else if (strcmp(argv[0], "export") == 0)
        rc = cmd_export(&g, argc, argv);
    else if (strcmp(argv[0], "channel") == 0)
        rc = cmd_channel(&g, argc, argv);
    else if (strcmp(argv[0], "help") == 0) {
        main_help();
        rc = EX_OK;
    } else {
        fprintf(stderr,
                "liaison: unknown command '%s' (send, follow, inbox, show, status, officer, whoami,"
                " search, export, channel)\n"
                "Try 'liaison --help'.\n",
                argv[0]);
        rc = EX_USAGE;
    }
    free_kept();
    return rc;
}
