/*
 * The work behind the liaison-keys command line tool (keys/main.c only parses options): key
 * generation and storage layout, issuing, verifying and revoking certificates, printing
 * identities as text or JSON, and passphrase input. Every function returns 0 or a negative
 * lia_err and, on failure, leaves a message for the operator in the diag (what went wrong with
 * which file, and how to fix it). Output goes to the given stream; diagnostics never do.
 *
 * Files in an authority directory: authority.key (SecretFile, 0600), authority.pub (Authority,
 * 0644). In a node directory: node.key (SecretFile, 0600), node.req (CertificateRequest, 0644).
 */
#ifndef LIA_KEYTOOL_H
#define LIA_KEYTOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cert.h"
#include "vault.h"

#define LIA_KT_PASSPHRASE_MAX 1024
#define LIA_KT_DEFAULT_DAYS   365
#define LIA_KT_MAX_DAYS       3650

typedef struct {
    char msg[768];
} lia_kt_diag;

/* How to unlock a passphrase-protected authority key. */
typedef struct {
    const char *passphrase_file; /* NULL: try without, then prompt if may_prompt */
    int may_prompt;              /* 1 if stdin is a terminal */
} lia_kt_unlock;

/*
 * Reads a passphrase from a file (first line; a trailing "\n" or "\r\n" is dropped) into
 * sodium_malloc'd memory, NUL-terminated. Free with lia_kt_passphrase_free.
 */
int lia_kt_passphrase_file(const char *path, char **out, size_t *len, lia_kt_diag *d) LIA_WUR;

/* Reads a passphrase from the terminal without echo (twice if confirm), like the above. */
int lia_kt_passphrase_tty(const char *prompt, int confirm, char **out, size_t *len,
                          lia_kt_diag *d) LIA_WUR;

/* Wipes and frees a passphrase from the two functions above; accepts NULL, sets *p NULL. */
void lia_kt_passphrase_free(char **p);

/* Parses "interactive", "moderate" or "sensitive". */
int lia_kt_kdf_parse(const char *s, lia_kdf_strength *out) LIA_WUR;

/*
 * Creates DIR (0700) if missing, a new authority identity in DIR/authority.key and its
 * self-signed description in DIR/authority.pub; prints the fingerprint. Never overwrites.
 * passphrase NULL stores the key unencrypted.
 */
int lia_kt_authority_init(const char *dir, const char *name, const char *passphrase,
                          size_t passphrase_len, lia_kdf_strength kdf, uint64_t now, FILE *out,
                          lia_kt_diag *d) LIA_WUR;

/* Creates DIR/node.key and DIR/node.req (the signed request); prints the fingerprint. */
int lia_kt_node_init(const char *dir, const char *node_id, lia_role role, const char *country,
                     const char *passphrase, size_t passphrase_len, lia_kdf_strength kdf, FILE *out,
                     lia_kt_diag *d) LIA_WUR;

/*
 * Verifies a request (proof of possession), prints what will be certified, issues a
 * certificate valid from not_before for days days and writes it atomically to out_path.
 */
int lia_kt_issue(const char *authority_dir, const lia_kt_unlock *unlock, const char *request,
                 const char *out_path, uint32_t days, uint64_t not_before, FILE *out,
                 lia_kt_diag *d) LIA_WUR;

/*
 * Verifies a certificate against an authority.pub (and a revocation list if crl is not NULL)
 * at time at; prints the certificate and the verdict. Returns the reason it is not valid.
 */
int lia_kt_verify(const char *authority, const char *cert, const char *crl, uint64_t at, int json,
                  FILE *out, lia_kt_diag *d) LIA_WUR;

/*
 * Adds cert (which must verify against the authority) to the revocation list at crl_path,
 * creating it if absent, else verifying it first; the new list is written atomically.
 */
int lia_kt_revoke(const char *authority_dir, const lia_kt_unlock *unlock, const char *cert,
                  const char *crl_path, const char *reason, uint64_t revoked_at, uint64_t now,
                  FILE *out, lia_kt_diag *d) LIA_WUR;

/*
 * Detects the kind of a public file (authority description, request, certificate, revocation
 * list) and prints its content and fingerprint. Certificates and lists are verified if
 * authority (an authority.pub) is given, else shown as "not verified".
 */
int lia_kt_show(const char *path, const char *authority, int json, FILE *out,
                lia_kt_diag *d) LIA_WUR;

/*
 * Prints only the fingerprint: of the authority key, of the node keys (requests and
 * certificates: the same value), or of the file bytes (revocation lists).
 */
int lia_kt_fingerprint(const char *path, int json, FILE *out, lia_kt_diag *d) LIA_WUR;

/* Writes s as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
void lia_json_string(FILE *f, const char *s);

/* "YYYY-MM-DDTHH:MM:SSZ", or the decimal number if out of range of the calendar. */
void lia_kt_format_time(uint64_t t, char out[32]);

#endif
