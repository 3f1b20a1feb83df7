/*
 * Loading public identity files from disk into a trust store: the authority's public file,
 * certificates and the revocation list. Each file is bounded before it is read and verified
 * before it is used; errors name the file.
 */
#ifndef LIA_KEYFILES_H
#define LIA_KEYFILES_H

#include <stddef.h>

#include "trust.h"

/* Reads and verifies an authority public file (authority.pub). */
int lia_keyfiles_load_authority(const char *path, lia_authority_info *out) LIA_WUR;

/*
 * A new trust store anchored at the authority in authority_path, with the n certificates in
 * cert_paths and, if crl_path is not NULL, the revocation list. On error *failed_path (if not
 * NULL) names the file at fault.
 */
int lia_keyfiles_load_trust(const char *authority_path, const char *const *cert_paths, size_t n,
                            const char *crl_path, lia_trust_t **out,
                            const char **failed_path) LIA_WUR;

/*
 * Like lia_keyfiles_load_trust with every "*.cert" file of certs_dir. A certificate that does
 * not verify is logged and skipped (it is simply not trusted); the authority and the
 * revocation list must load.
 */
int lia_keyfiles_load_trust_dir(const char *authority_path, const char *certs_dir,
                                const char *crl_path, lia_trust_t **out,
                                const char **failed_path) LIA_WUR;

/* Reads and verifies one certificate file against auth. */
int lia_keyfiles_load_cert(const char *path, const lia_authority_info *auth,
                           lia_cert_info *out) LIA_WUR;

#endif
