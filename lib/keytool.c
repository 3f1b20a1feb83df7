/*
 * The liaison-keys operations (see keytool.h). Secret keys stay inside the vault; passphrases
 * live in sodium_malloc'd memory and are wiped when freed.
 */
#define _GNU_SOURCE
#include "keytool.h"
#include "error.h"
#include "utf8.h"
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define PUB_FILE_MODE 0644

static int fail(lia_kt_diag *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(lia_kt_diag *d, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return rc;
}

void lia_kt_format_time(uint64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;

    /* Years beyond 9999 do not fit the format; show the number instead. */
    if (t > UINT64_C(253402300799) || !gmtime_r(&tt, &tm) ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%llu", (unsigned long long)t);
}

void lia_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

/* ---- Output: "key: value" lines or one JSON object ----------------------------------------- */

typedef struct {
    FILE *f;
    int json;
    int n;
} emitter;

static void em_begin(emitter *e, FILE *f, int json)
{
    e->f = f;
    e->json = json;
    e->n = 0;
    if (json)
        fputc('{', f);
}

static void em_key(emitter *e, const char *key)
{
    if (e->json) {
        if (e->n++)
            fputc(',', e->f);
        lia_json_string(e->f, key);
        fputc(':', e->f);
    } else {
        char label[32];
        size_t i;
        for (i = 0; key[i] && i < sizeof label - 2; i++)
            label[i] = key[i] == '_' ? ' ' : key[i];
        label[i++] = ':';
        label[i] = '\0';
        fprintf(e->f, "%-23s", label);
    }
}

static void em_str(emitter *e, const char *key, const char *v)
{
    em_key(e, key);
    if (e->json)
        lia_json_string(e->f, v);
    else
        fprintf(e->f, "%s\n", v);
}

static void em_u64(emitter *e, const char *key, uint64_t v)
{
    em_key(e, key);
    fprintf(e->f, e->json ? "%llu" : "%llu\n", (unsigned long long)v);
}

static void em_bool(emitter *e, const char *key, int v)
{
    em_key(e, key);
    fprintf(e->f, e->json ? "%s" : "%s\n", v ? "true" : "false");
}

static void em_time(emitter *e, const char *key, uint64_t t)
{
    char s[32];

    lia_kt_format_time(t, s);
    em_key(e, key);
    if (e->json)
        fprintf(e->f, "%llu", (unsigned long long)t);
    else
        fprintf(e->f, "%s (%llu)\n", s, (unsigned long long)t);
}

static void em_hex(emitter *e, const char *key, const uint8_t *b, size_t n)
{
    char h[2 * 32 + 1];

    hex(b, n, h);
    em_str(e, key, h);
}

static void em_end(emitter *e)
{
    if (e->json)
        fputs("}\n", e->f);
}

static void emit_authority(emitter *e, const lia_authority_info *a)
{
    char fpr[LIA_FINGERPRINT_CHARS];

    lia_authority_fingerprint(a, fpr);
    em_str(e, "name", a->name);
    em_time(e, "created_at", a->created_at);
    em_hex(e, "sign_pk", a->sign_pk, 32);
    em_hex(e, "key_id", a->key_id, LIA_KEY_ID_BYTES);
    em_str(e, "fingerprint", fpr);
}

static void emit_node(emitter *e, const lia_cert_info *c, int is_cert)
{
    char fpr[LIA_FINGERPRINT_CHARS];

    lia_node_fingerprint(c, fpr);
    em_str(e, "node_id", c->node_id);
    em_str(e, "role", lia_role_name(c->role));
    em_str(e, "country", c->country);
    if (is_cert) {
        em_u64(e, "serial", c->serial);
        em_time(e, "not_before", c->not_before);
        em_time(e, "not_after", c->not_after);
        em_hex(e, "authority_id", c->authority_id, LIA_KEY_ID_BYTES);
    }
    em_hex(e, "sign_pk", c->sign_pk, 32);
    em_hex(e, "enc_pk", c->enc_pk, 32);
    em_hex(e, "transport_pk", c->transport_pk, 32);
    em_hex(e, "sign_key_id", c->sign_key_id, LIA_KEY_ID_BYTES);
    em_str(e, "fingerprint", fpr);
}

/* ---- Passphrases --------------------------------------------------------------------------- */

void lia_kt_passphrase_free(char **p)
{
    if (!p || !*p)
        return;
    sodium_free(*p); /* wipes first */
    *p = NULL;
}

int lia_kt_passphrase_file(const char *path, char **out, size_t *len, lia_kt_diag *d)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *len = 0;
    rc = lia_file_read(path, LIA_KT_PASSPHRASE_MAX, LIA_FILE_SECURE, &buf, &n);
    if (rc != 0)
        return fail(d, rc, "%s: cannot read the passphrase file: %s", path, lia_strerror(rc));
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\0', n)) {
        sodium_free(buf);
        return fail(d, LIA_ERR_INVALID,
                    "%s: the passphrase file must hold one non-empty line (the passphrase)", path);
    }
    *out = (char *)buf;
    *len = n;
    return 0;
}

static int read_line_noecho(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
    struct termios old, raw;
    size_t n = 0;
    int rc = 0;
    char c;

    if (tcgetattr(fd, &old) != 0)
        return LIA_ERR_IO;
    raw = old;
    raw.c_lflag &= ~(tcflag_t)ECHO;
    raw.c_lflag |= ECHONL;
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0)
        return LIA_ERR_IO;
    if (write(fd, prompt, strlen(prompt)) < 0)
        rc = LIA_ERR_IO;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = LIA_ERR_IO;
            break;
        }
        if (c == '\n' || c == '\r')
            break;
        if (n + 1 >= cap) {
            rc = LIA_ERR_TOO_LARGE;
            continue; /* drain the rest of the line */
        }
        buf[n++] = c;
    }
    c = 0;
    tcsetattr(fd, TCSAFLUSH, &old);
    buf[n] = '\0';
    *len = n;
    return rc;
}

int lia_kt_passphrase_tty(const char *prompt, int confirm, char **out, size_t *len, lia_kt_diag *d)
{
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int fd = -1, rc = LIA_ERR_NOMEM;

    *out = NULL;
    *len = 0;
    a = sodium_malloc(LIA_KT_PASSPHRASE_MAX + 1);
    b = sodium_malloc(LIA_KT_PASSPHRASE_MAX + 1);
    if (!a || !b) {
        fail(d, rc, "out of memory for the passphrase");
        goto fail;
    }
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = fail(d, LIA_ERR_IO, "cannot open the terminal to ask for the passphrase");
        goto fail;
    }
    if ((rc = read_line_noecho(fd, prompt, a, LIA_KT_PASSPHRASE_MAX + 1, &alen)) != 0) {
        fail(d, rc, "could not read the passphrase from the terminal");
        goto fail;
    }
    if (alen == 0) {
        rc = fail(d, LIA_ERR_INVALID, "empty passphrase refused");
        goto fail;
    }
    if (confirm) {
        if ((rc = read_line_noecho(fd, "Repeat the passphrase: ", b, LIA_KT_PASSPHRASE_MAX + 1,
                                   &blen)) != 0) {
            fail(d, rc, "could not read the passphrase from the terminal");
            goto fail;
        }
        if (alen != blen || sodium_memcmp(a, b, alen) != 0) {
            rc = fail(d, LIA_ERR_PASSPHRASE, "the two passphrases differ; nothing was written");
            goto fail;
        }
    }
    *out = a;
    *len = alen;
    a = NULL;
    rc = 0;
fail:
    if (fd >= 0)
        close(fd);
    sodium_free(a);
    sodium_free(b);
    return rc;
}

int lia_kt_kdf_parse(const char *s, lia_kdf_strength *out)
{
    if (strcmp(s, "interactive") == 0)
        *out = LIA_KDF_INTERACTIVE;
    else if (strcmp(s, "moderate") == 0)
        *out = LIA_KDF_MODERATE;
    else if (strcmp(s, "sensitive") == 0)
        *out = LIA_KDF_SENSITIVE;
    else
        return LIA_ERR_INVALID;
    return 0;
}

/* ---- Files --------------------------------------------------------------------------------- */

static int join(char *out, size_t cap, const char *dir, const char *name, lia_kt_diag *d)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= cap)
        return fail(d, LIA_ERR_INVALID, "%s: path too long", dir);
    return 0;
}

static int ensure_dir(const char *dir, lia_kt_diag *d)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        return fail(d, LIA_ERR_WRONG_KIND, "%s: exists and is not a directory", dir);
    return fail(d, errno == EACCES ? LIA_ERR_PERMISSION : LIA_ERR_IO, "%s: cannot create: %s", dir,
                strerror(errno));
}

static int refuse_existing(const char *path, lia_kt_diag *d)
{
    if (access(path, F_OK) == 0)
        return fail(d, LIA_ERR_EXISTS,
                    "%s already exists; refusing to overwrite it (choose another --dir or move "
                    "the old file away)",
                    path);
    return 0;
}

static int read_public(const char *path, size_t max, uint8_t **buf, size_t *len, lia_kt_diag *d)
{
    int rc = lia_file_read(path, max, 0, buf, len);

    if (rc == LIA_ERR_NOT_FOUND)
        return fail(d, rc, "%s: no such file", path);
    if (rc == LIA_ERR_TOO_LARGE)
        return fail(d, rc, "%s: file too large (at most %zu bytes)", path, max);
    if (rc != 0)
        return fail(d, rc, "%s: cannot read: %s", path, lia_strerror(rc));
    return 0;
}

static int write_public(const char *path, const uint8_t *buf, size_t len, int flags, lia_kt_diag *d)
{
    int rc = lia_file_write_atomic(path, buf, len, PUB_FILE_MODE, flags);

    if (rc == LIA_ERR_EXISTS)
        return fail(d, rc, "%s already exists; refusing to overwrite it", path);
    if (rc != 0)
        return fail(d, rc, "%s: cannot write: %s", path, lia_strerror(rc));
    return 0;
}

static int load_authority_pub(const char *path, lia_authority_info *a, lia_kt_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    if ((rc = read_public(path, LIA_CERT_MAX_BYTES, &buf, &len, d)) != 0)
        return rc;
    rc = lia_authority_parse(buf, len, a);
    free(buf);
    if (rc == LIA_ERR_SIGNATURE)
        return fail(d, rc,
                    "%s: the authority's self-signature does not verify; the file is "
                    "damaged or forged, get it again from the authority",
                    path);
    if (rc != 0)
        return fail(d, rc, "%s: not a valid authority description (%s)", path, lia_strerror(rc));
    return 0;
}

static int load_identity(const char *path, lia_secret_kind kind, const lia_kt_unlock *u,
                         lia_identity_t **id, lia_kt_diag *d)
{
    char *pass = NULL;
    size_t plen = 0;
    int rc;

    *id = NULL;
    if (u && u->passphrase_file) {
        if ((rc = lia_kt_passphrase_file(u->passphrase_file, &pass, &plen, d)) != 0)
            return rc;
        rc = lia_identity_load(path, kind, pass, plen, id);
    } else {
        rc = lia_identity_load(path, kind, NULL, 0, id);
        if (rc == LIA_ERR_PASSPHRASE) {
            if (!u || !u->may_prompt) {
                rc = fail(d, rc,
                          "%s is protected by a passphrase and stdin is not a terminal; give "
                          "--passphrase-file FILE",
                          path);
                goto fail;
            }
            if ((rc = lia_kt_passphrase_tty("Passphrase: ", 0, &pass, &plen, d)) != 0)
                goto fail;
            rc = lia_identity_load(path, kind, pass, plen, id);
        }
    }
    if (rc == LIA_ERR_PASSPHRASE)
        fail(d, rc, "%s: wrong passphrase", path);
    else if (rc == LIA_ERR_PERMISSION)
        fail(d, rc, "%s: group or others may access this key file; fix with: chmod 600 %s", path,
             path);
    else if (rc == LIA_ERR_WRONG_KIND)
        fail(d, rc, "%s: this is not %s key file", path,
             kind == LIA_SECRET_AUTHORITY ? "an authority" : "a node");
    else if (rc == LIA_ERR_NOT_FOUND)
        fail(d, rc, "%s: no such file", path);
    else if (rc != 0)
        fail(d, rc, "%s: cannot load the key: %s", path, lia_strerror(rc));
fail:
    lia_kt_passphrase_free(&pass);
    return rc;
}

/* Loads DIR/authority.pub and DIR/authority.key and checks that they belong together. */
static int open_authority(const char *dir, const lia_kt_unlock *u, lia_identity_t **id,
                          lia_authority_info *a, lia_kt_diag *d)
{
    char pub[PATH_MAX], key[PATH_MAX];
    int rc;

    *id = NULL;
    if ((rc = join(pub, sizeof pub, dir, "authority.pub", d)) != 0 ||
        (rc = join(key, sizeof key, dir, "authority.key", d)) != 0)
        return rc;
    if ((rc = load_authority_pub(pub, a, d)) != 0)
        return rc;
    if ((rc = load_identity(key, LIA_SECRET_AUTHORITY, u, id, d)) != 0)
        return rc;
    if (memcmp(lia_identity_sign_pk(*id), a->sign_pk, 32) != 0) {
        lia_identity_destroy(id);
        return fail(d, LIA_ERR_KEY_MISMATCH, "%s does not belong to %s", key, pub);
    }
    return 0;
}

/* ---- Commands ------------------------------------------------------------------------------ */

int lia_kt_authority_init(const char *dir, const char *name, const char *passphrase,
                          size_t passphrase_len, lia_kdf_strength kdf, uint64_t now, FILE *out,
                          lia_kt_diag *d)
{
    char pub[PATH_MAX], key[PATH_MAX], fpr[LIA_FINGERPRINT_CHARS];
    lia_identity_t *id = NULL;
    lia_authority_info info;
    uint8_t *buf = NULL;
    size_t len = 0, nlen = strlen(name);
    int rc, key_written = 0;

    if (nlen == 0 || nlen > LIA_AUTHORITY_NAME_MAX || !lia_text_valid(name, nlen))
        return fail(d, LIA_ERR_INVALID,
                    "invalid authority name: use 1..%d bytes of printable UTF-8 text",
                    LIA_AUTHORITY_NAME_MAX);
    if ((rc = join(pub, sizeof pub, dir, "authority.pub", d)) != 0 ||
        (rc = join(key, sizeof key, dir, "authority.key", d)) != 0 ||
        (rc = ensure_dir(dir, d)) != 0 || (rc = refuse_existing(key, d)) != 0 ||
        (rc = refuse_existing(pub, d)) != 0)
        return rc;
    if ((rc = lia_identity_generate(LIA_SECRET_AUTHORITY, name, &id)) != 0) {
        fail(d, rc, "cannot generate the authority key: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_authority_create(id, now, &buf, &len)) != 0) {
        fail(d, rc, "cannot create the authority description: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_identity_save(id, key, passphrase, passphrase_len, kdf)) != 0) {
        fail(d, rc, "%s: cannot write the key: %s", key, lia_strerror(rc));
        goto fail;
    }
    key_written = 1;
    if ((rc = write_public(pub, buf, len, LIA_FILE_EXCL, d)) != 0)
        goto fail;
    if ((rc = lia_authority_parse(buf, len, &info)) != 0) {
        fail(d, rc, "internal error: the new authority description does not verify");
        goto fail;
    }
    lia_authority_fingerprint(&info, fpr);
    fprintf(out,
            "authority \"%s\" created:\n  %s (secret, keep offline)\n  %s (public, give to "
            "every node)\nfingerprint: %s\n",
            info.name, key, pub, fpr);
fail:
    if (rc != 0 && key_written)
        unlink(key); /* ours, created above: do not leave a key without its description */
    lia_identity_destroy(&id);
    free(buf);
    return rc;
}

int lia_kt_node_init(const char *dir, const char *node_id, lia_role role, const char *country,
                     const char *passphrase, size_t passphrase_len, lia_kdf_strength kdf, FILE *out,
                     lia_kt_diag *d)
{
    char req[PATH_MAX], key[PATH_MAX], fpr[LIA_FINGERPRINT_CHARS];
    lia_identity_t *id = NULL;
    lia_cert_info info;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc, key_written = 0;

    if (!lia_node_id_valid(node_id))
        return fail(d, LIA_ERR_INVALID,
                    "invalid node id \"%s\": use 1..%d characters of a-z 0-9 . _ -, starting "
                    "with a letter or digit",
                    node_id, LIA_NODE_ID_MAX);
    if (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z' || country[1] < 'A' ||
        country[1] > 'Z')
        return fail(d, LIA_ERR_INVALID,
                    "invalid country \"%s\": use the ISO 3166-1 alpha-2 code in upper case "
                    "(\"EU\" for EU bodies)",
                    country);
    if ((rc = join(req, sizeof req, dir, "node.req", d)) != 0 ||
        (rc = join(key, sizeof key, dir, "node.key", d)) != 0 || (rc = ensure_dir(dir, d)) != 0 ||
        (rc = refuse_existing(key, d)) != 0 || (rc = refuse_existing(req, d)) != 0)
        return rc;
    if ((rc = lia_identity_generate(LIA_SECRET_NODE, node_id, &id)) != 0) {
        fail(d, rc, "cannot generate the node keys: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_cert_request_create(id, role, country, &buf, &len)) != 0) {
        fail(d, rc, "cannot create the certificate request: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_identity_save(id, key, passphrase, passphrase_len, kdf)) != 0) {
        fail(d, rc, "%s: cannot write the key: %s", key, lia_strerror(rc));
        goto fail;
    }
    key_written = 1;
    if ((rc = write_public(req, buf, len, LIA_FILE_EXCL, d)) != 0)
        goto fail;
    if ((rc = lia_cert_request_parse(buf, len, &info)) != 0) {
        fail(d, rc, "internal error: the new request does not verify");
        goto fail;
    }
    lia_node_fingerprint(&info, fpr);
    fprintf(out,
            "node \"%s\" (%s, %s) created:\n  %s (secret)\n  %s (send to the authority)\n"
            "fingerprint: %s\n",
            info.node_id, lia_role_name(info.role), info.country, key, req, fpr);
fail:
    if (rc != 0 && key_written)
        unlink(key);
    lia_identity_destroy(&id);
    free(buf);
    return rc;
}

int lia_kt_issue(const char *authority_dir, const lia_kt_unlock *unlock, const char *request,
                 const char *out_path, uint32_t days, uint64_t not_before, FILE *out,
                 lia_kt_diag *d)
{
    lia_identity_t *auth = NULL;
    lia_authority_info ai;
    lia_cert_info req, issued;
    uint8_t *rbuf = NULL, *cbuf = NULL;
    size_t rlen = 0, clen = 0;
    uint64_t not_after, serial = 0;
    char fpr[LIA_FINGERPRINT_CHARS], t1[32], t2[32];
    emitter e;
    int rc;

    if (days == 0 || days > LIA_KT_MAX_DAYS)
        return fail(d, LIA_ERR_INVALID, "--days must be between 1 and %d", LIA_KT_MAX_DAYS);
    if (not_before > UINT64_MAX - (uint64_t)days * 86400)
        return fail(d, LIA_ERR_INVALID, "--not-before is too far in the future");
    not_after = not_before + (uint64_t)days * 86400;
    if ((rc = read_public(request, LIA_CERT_MAX_BYTES, &rbuf, &rlen, d)) != 0)
        goto fail;
    rc = lia_cert_request_parse(rbuf, rlen, &req);
    if (rc == LIA_ERR_SIGNATURE) {
        fail(d, rc,
             "%s: the request's proof of possession does not verify; it was altered or not made "
             "with liaison-keys node-init; ask the node for a new request",
             request);
        goto fail;
    }
    if (rc != 0) {
        fail(d, rc, "%s: not a valid certificate request (%s)", request, lia_strerror(rc));
        goto fail;
    }
    if ((rc = open_authority(authority_dir, unlock, &auth, &ai, d)) != 0)
        goto fail;
    lia_node_fingerprint(&req, fpr);
    lia_kt_format_time(not_before, t1);
    lia_kt_format_time(not_after, t2);
    fprintf(out,
            "certifying for authority \"%s\":\n  node id:     %s\n  role:        %s\n"
            "  country:     %s\n  fingerprint: %s\n  valid:       %s to %s (%u days)\n"
            "compare the fingerprint with the node operator out of band before deploying.\n",
            ai.name, req.node_id, lia_role_name(req.role), req.country, fpr, t1, t2, days);
    if ((rc = lia_cert_issue(auth, &req, not_before, not_after, &serial, &cbuf, &clen)) != 0) {
        fail(d, rc, "cannot issue the certificate: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_cert_parse(cbuf, clen, &ai, &issued)) != 0) {
        fail(d, rc, "internal error: the new certificate does not verify");
        goto fail;
    }
    if ((rc = write_public(out_path, cbuf, clen, LIA_FILE_REPLACE, d)) != 0)
        goto fail;
    em_begin(&e, out, 0);
    em_str(&e, "written", out_path);
    em_u64(&e, "serial", issued.serial);
    em_time(&e, "not_before", issued.not_before);
    em_time(&e, "not_after", issued.not_after);
fail:
    lia_identity_destroy(&auth);
    free(rbuf);
    free(cbuf);
    return rc;
}

/* Explains why a certificate failed to verify, with the fix. */
static int cert_failure(lia_kt_diag *d, int rc, const char *path, const char *authority)
{
    switch (rc) {
    case LIA_ERR_WRONG_AUTHORITY:
        return fail(d, rc,
                    "%s: issued by a different network authority than %s; check that you use "
                    "this network's authority.pub",
                    path, authority);
    case LIA_ERR_SIGNATURE:
        return fail(d, rc,
                    "%s: the authority's signature does not verify; the certificate was altered "
                    "or forged, get it again from the authority",
                    path);
    case LIA_ERR_TOO_LARGE:
        return fail(d, rc, "%s: too large to be a certificate", path);
    default:
        return fail(d, rc, "%s: not a valid certificate (%s)", path, lia_strerror(rc));
    }
}

static int load_crl(const char *path, const lia_authority_info *a, lia_crl_t **crl, lia_kt_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *crl = NULL;
    if ((rc = read_public(path, LIA_CRL_MAX_BYTES, &buf, &len, d)) != 0)
        return rc;
    rc = lia_crl_parse(buf, len, a, crl);
    free(buf);
    if (rc == LIA_ERR_WRONG_AUTHORITY)
        return fail(d, rc, "%s: revocation list of a different network authority", path);
    if (rc == LIA_ERR_SIGNATURE)
        return fail(d, rc,
                    "%s: the revocation list's signature does not verify; it was altered, get "
                    "it again from the authority",
                    path);
    if (rc != 0)
        return fail(d, rc, "%s: not a valid revocation list (%s)", path, lia_strerror(rc));
    return 0;
}

int lia_kt_verify(const char *authority, const char *cert, const char *crl_path, uint64_t at,
                  int json, FILE *out, lia_kt_diag *d)
{
    lia_authority_info ai;
    lia_cert_info ci;
    lia_crl_t *crl = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t revoked_at = 0;
    char t[32], fpr[LIA_FINGERPRINT_CHARS];
    int rc, parsed = 0;
    emitter e;

    if ((rc = load_authority_pub(authority, &ai, d)) != 0)
        goto fail;
    if ((rc = read_public(cert, LIA_CERT_MAX_BYTES, &buf, &len, d)) != 0)
        goto fail;
    if ((rc = lia_cert_parse(buf, len, &ai, &ci)) != 0) {
        cert_failure(d, rc, cert, authority);
        goto fail;
    }
    parsed = 1;
    if (crl_path && (rc = load_crl(crl_path, &ai, &crl, d)) != 0)
        goto fail;
    if (crl && lia_crl_lookup(crl, ci.serial, &revoked_at) && revoked_at <= at) {
        lia_kt_format_time(revoked_at, t);
        rc = fail(d, LIA_ERR_REVOKED,
                  "%s: certificate revoked on %s (revocation list %s, serial %llu); the node "
                  "needs new keys and a new certificate",
                  cert, t, crl_path, (unsigned long long)lia_crl_serial(crl));
        goto fail;
    }
    if ((rc = lia_cert_check_time(&ci, at)) != 0) {
        if (at >= ci.not_after) {
            lia_kt_format_time(ci.not_after, t);
            fail(d, rc, "%s: certificate expired on %s; issue a new one with liaison-keys issue",
                 cert, t);
        } else {
            lia_kt_format_time(ci.not_before, t);
            fail(d, rc, "%s: certificate not valid before %s; check the clock, or wait", cert, t);
        }
        goto fail;
    }
fail:
    em_begin(&e, out, json);
    if (json)
        em_str(&e, "file", cert);
    if (parsed) {
        emit_node(&e, &ci, 1);
        lia_authority_fingerprint(&ai, fpr);
        em_str(&e, "authority", ai.name);
        em_str(&e, "authority_fingerprint", fpr);
        if (crl)
            em_u64(&e, "crl_serial", lia_crl_serial(crl));
        em_time(&e, "checked_at", at);
    }
    if (json || parsed) {
        em_bool(&e, "valid", rc == 0);
        em_str(&e, "status", rc == 0 ? "valid" : lia_errname(rc));
        if (rc != 0 && json)
            em_str(&e, "message", d->msg);
    }
    em_end(&e);
    lia_crl_destroy(&crl);
    free(buf);
    return rc;
}

int lia_kt_revoke(const char *authority_dir, const lia_kt_unlock *unlock, const char *cert,
                  const char *crl_path, const char *reason, uint64_t revoked_at, uint64_t now,
                  FILE *out, lia_kt_diag *d)
{
    lia_identity_t *auth = NULL;
    lia_authority_info ai;
    lia_cert_info ci;
    lia_crl_t *prev = NULL, *next = NULL;
    uint8_t *cbuf = NULL, *nbuf = NULL;
    size_t clen = 0, nlen = 0;
    char t[32];
    int rc;

    if (!reason)
        reason = "";
    if (strlen(reason) > LIA_REVOKE_REASON_MAX || !lia_text_valid(reason, strlen(reason)))
        return fail(d, LIA_ERR_INVALID,
                    "--reason must be at most %d bytes of printable UTF-8 text (one line)",
                    LIA_REVOKE_REASON_MAX);
    if ((rc = open_authority(authority_dir, unlock, &auth, &ai, d)) != 0)
        goto fail;
    if ((rc = read_public(cert, LIA_CERT_MAX_BYTES, &cbuf, &clen, d)) != 0)
        goto fail;
    if ((rc = lia_cert_parse(cbuf, clen, &ai, &ci)) != 0) {
        cert_failure(d, rc, cert, authority_dir);
        goto fail;
    }
    if (access(crl_path, F_OK) == 0 && (rc = load_crl(crl_path, &ai, &prev, d)) != 0)
        goto fail;
    rc = lia_crl_issue(auth, prev, ci.serial, ci.node_id, revoked_at, reason, now, &nbuf, &nlen);
    if (rc == LIA_ERR_EXISTS) {
        fail(d, rc, "%s: certificate serial %llu is already revoked in %s", cert,
             (unsigned long long)ci.serial, crl_path);
        goto fail;
    }
    if (rc != 0) {
        fail(d, rc, "cannot issue the revocation list: %s", lia_strerror(rc));
        goto fail;
    }
    if ((rc = lia_crl_parse(nbuf, nlen, &ai, &next)) != 0) {
        fail(d, rc, "internal error: the new revocation list does not verify");
        goto fail;
    }
    if ((rc = write_public(crl_path, nbuf, nlen, LIA_FILE_REPLACE, d)) != 0)
        goto fail;
    lia_kt_format_time(revoked_at, t);
    fprintf(out,
            "revoked certificate serial %llu of node \"%s\" as of %s\n"
            "revocation list %s: serial %llu, %zu entries; distribute it to every node\n",
            (unsigned long long)ci.serial, ci.node_id, t, crl_path,
            (unsigned long long)lia_crl_serial(next), lia_crl_count(next));
fail:
    lia_identity_destroy(&auth);
    lia_crl_destroy(&prev);
    lia_crl_destroy(&next);
    free(cbuf);
    free(nbuf);
    return rc;
}

enum { KIND_NONE, KIND_AUTHORITY, KIND_REQUEST, KIND_CERT, KIND_CRL };

typedef struct {
    int kind;
    int verified; /* certificates and lists: checked against an authority */
    lia_authority_info auth;
    lia_cert_info node;
    lia_crl_t *crl;
    int err; /* certificates and lists with an authority given: why they failed to verify */
} detected;

/* Tries each parser in turn. */
static int detect(const uint8_t *buf, size_t len, const lia_authority_info *a, detected *out)
{
    memset(out, 0, sizeof *out);
    if (len <= LIA_CERT_MAX_BYTES && lia_authority_parse(buf, len, &out->auth) == 0) {
        out->kind = KIND_AUTHORITY;
        return 0;
    }
    if (len <= LIA_CERT_MAX_BYTES && lia_cert_request_parse(buf, len, &out->node) == 0) {
        out->kind = KIND_REQUEST;
        return 0;
    }
    if (len <= LIA_CERT_MAX_BYTES && lia_cert_decode_unverified(buf, len, &out->node) == 0) {
        out->kind = KIND_CERT;
        if (a) {
            lia_cert_info v;
            out->err = lia_cert_parse(buf, len, a, &v);
            out->verified = out->err == 0;
        }
        return 0;
    }
    if (lia_crl_decode_unverified(buf, len, &out->crl) == 0) {
        out->kind = KIND_CRL;
        if (a) {
            lia_crl_t *v = NULL;
            out->err = lia_crl_parse(buf, len, a, &v);
            out->verified = out->err == 0;
            lia_crl_destroy(&v);
        }
        return 0;
    }
    return LIA_ERR_DECODE;
}

static int read_detect(const char *path, const char *authority, detected *det, uint8_t **buf,
                       size_t *len, lia_kt_diag *d)
{
    lia_authority_info ai;
    int rc;

    memset(det, 0, sizeof *det);
    if (authority && (rc = load_authority_pub(authority, &ai, d)) != 0)
        return rc;
    if ((rc = read_public(path, LIA_CRL_MAX_BYTES, buf, len, d)) != 0)
        return rc;
    if (detect(*buf, *len, authority ? &ai : NULL, det) != 0)
        return fail(d, LIA_ERR_DECODE,
                    "%s: not an authority description, certificate request, certificate or "
                    "revocation list (or damaged)",
                    path);
    return 0;
}

int lia_kt_show(const char *path, const char *authority, int json, FILE *out, lia_kt_diag *d)
{
    detected det;
    uint8_t *buf = NULL;
    size_t len = 0;
    char fpr[LIA_FINGERPRINT_CHARS], t[32];
    emitter e;
    int rc;

    if ((rc = read_detect(path, authority, &det, &buf, &len, d)) != 0)
        goto fail;
    em_begin(&e, out, json);
    if (json)
        em_str(&e, "file", path);
    switch (det.kind) {
    case KIND_AUTHORITY:
        em_str(&e, "type", "authority");
        emit_authority(&e, &det.auth);
        break;
    case KIND_REQUEST:
        em_str(&e, "type", "request");
        emit_node(&e, &det.node, 0);
        em_str(&e, "signature", "valid (proof of possession)");
        break;
    case KIND_CERT:
        em_str(&e, "type", "certificate");
        emit_node(&e, &det.node, 1);
        em_str(&e, "signature",
               det.verified ? "valid"
               : authority  ? lia_errname(det.err)
                            : "not verified (give --authority FILE.pub)");
        break;
    case KIND_CRL:
        em_str(&e, "type", "revocation-list");
        {
            uint8_t aid[LIA_KEY_ID_BYTES];
            lia_crl_authority_id(det.crl, aid);
            em_u64(&e, "serial", lia_crl_serial(det.crl));
            em_time(&e, "issued_at", lia_crl_issued_at(det.crl));
            em_hex(&e, "authority_id", aid, sizeof aid);
            em_u64(&e, "entries", lia_crl_count(det.crl));
        }
        if (json) {
            em_key(&e, "revoked");
            fputc('[', out);
        }
        for (size_t i = 0; i < lia_crl_count(det.crl); i++) {
            lia_crl_entry_info en;
            if (lia_crl_entry(det.crl, i, &en) != 0)
                break;
            if (json) {
                fprintf(out, "%s{\"serial\":%llu,\"node_id\":", i ? "," : "",
                        (unsigned long long)en.serial);
                lia_json_string(out, en.node_id);
                fprintf(out, ",\"revoked_at\":%llu,\"reason\":", (unsigned long long)en.revoked_at);
                lia_json_string(out, en.reason);
                fputc('}', out);
            } else {
                lia_kt_format_time(en.revoked_at, t);
                fprintf(out, "  revoked serial %llu node %s at %s%s%s\n",
                        (unsigned long long)en.serial, en.node_id, t, *en.reason ? ": " : "",
                        en.reason);
            }
        }
        if (json)
            fputc(']', out);
        lia_fingerprint(buf, len, fpr);
        em_str(&e, "signature",
               det.verified ? "valid"
               : authority  ? lia_errname(det.err)
                            : "not verified (give --authority FILE.pub)");
        em_str(&e, "fingerprint", fpr);
        break;
    default:
        break;
    }
    em_end(&e);
    if (authority && (det.kind == KIND_CERT || det.kind == KIND_CRL) && !det.verified) {
        rc = det.err;
        if (det.kind == KIND_CERT)
            cert_failure(d, rc, path, authority);
        else
            fail(d, rc, "%s: does not verify against %s (%s)", path, authority, lia_strerror(rc));
    }
fail:
    lia_crl_destroy(&det.crl);
    free(buf);
    return rc;
}

int lia_kt_fingerprint(const char *path, int json, FILE *out, lia_kt_diag *d)
{
    detected det;
    uint8_t *buf = NULL;
    size_t len = 0;
    char fpr[LIA_FINGERPRINT_CHARS];
    const char *type = "";
    int rc;

    if ((rc = read_detect(path, NULL, &det, &buf, &len, d)) != 0)
        goto fail;
    switch (det.kind) {
    case KIND_AUTHORITY:
        type = "authority";
        lia_authority_fingerprint(&det.auth, fpr);
        break;
    case KIND_REQUEST:
    case KIND_CERT:
        type = det.kind == KIND_CERT ? "certificate" : "request";
        lia_node_fingerprint(&det.node, fpr);
        break;
    default:
        type = "revocation-list";
        lia_fingerprint(buf, len, fpr);
        break;
    }
    if (json) {
        fputs("{\"file\":", out);
        lia_json_string(out, path);
        fprintf(out, ",\"type\":\"%s\",\"fingerprint\":\"%s\"}\n", type, fpr);
    } else {
        fprintf(out, "%s\n", fpr);
    }
fail:
    lia_crl_destroy(&det.crl);
    free(buf);
    return rc;
}
