/* Public identity files into a trust store (see keyfiles.h). */
#include "keyfiles.h"
#include "log.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include "error.h"
#include "file.h"

#include <stdlib.h>

int lia_keyfiles_load_authority(const char *path, lia_authority_info *out)
{
    uint8_t *buf;
    size_t len;
    int rc = lia_file_read(path, LIA_CERT_MAX_BYTES, 0, &buf, &len);
    if (rc != 0)
        return rc;
    rc = lia_authority_parse(buf, len, out);
    free(buf);
    return rc;
}

int lia_keyfiles_load_cert(const char *path, const lia_authority_info *auth, lia_cert_info *out)
{
    uint8_t *buf;
    size_t len;
    int rc = lia_file_read(path, LIA_CERT_MAX_BYTES, 0, &buf, &len);
    if (rc != 0)
        return rc;
    rc = lia_cert_parse(buf, len, auth, out);
    free(buf);
    return rc;
}

int lia_keyfiles_load_trust(const char *authority_path, const char *const *cert_paths, size_t n,
                            const char *crl_path, lia_trust_t **out, const char **failed_path)
{
    lia_authority_info auth;
    lia_trust_t *t = NULL;
    uint8_t *buf = NULL;
    size_t len;
    const char *at = authority_path;
    int rc;

    *out = NULL;
    if ((rc = lia_keyfiles_load_authority(authority_path, &auth)) != 0)
        goto fail;
    at = NULL;
    if ((rc = lia_trust_new(&auth, &t)) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        at = cert_paths[i];
        if ((rc = lia_file_read(at, LIA_CERT_MAX_BYTES, 0, &buf, &len)) != 0)
            goto fail;
        rc = lia_trust_add_cert(t, buf, len, NULL);
        free(buf);
        buf = NULL;
        if (rc != 0)
            goto fail;
    }
    if (crl_path) {
        at = crl_path;
        if ((rc = lia_file_read(at, LIA_CRL_MAX_BYTES, 0, &buf, &len)) != 0)
            goto fail;
        rc = lia_trust_set_crl(t, buf, len);
        free(buf);
        buf = NULL;
        if (rc != 0)
            goto fail;
    }
    *out = t;
    return 0;
fail:
    if (failed_path)
        *failed_path = at;
    lia_trust_destroy(&t);
    return rc;
}

int lia_keyfiles_load_trust_dir(const char *authority_path, const char *certs_dir,
                                const char *crl_path, lia_trust_t **out,
                                const char **failed_path)
{
    lia_trust_t *t = NULL;
    DIR *d = NULL;
    struct dirent *de;
    int rc;

    *out = NULL;
    if ((rc = lia_keyfiles_load_trust(authority_path, NULL, 0, crl_path, &t, failed_path)) != 0)
        return rc;
    if (!(d = opendir(certs_dir))) {
        if (failed_path)
            *failed_path = certs_dir;
        lia_trust_destroy(&t);
        return LIA_ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4096];
        uint8_t *buf;
        size_t blen;

        if (len < 6 || strcmp(de->d_name + len - 5, ".cert") != 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", certs_dir, de->d_name) >= sizeof path)
            continue;
        if ((rc = lia_file_read(path, LIA_CERT_MAX_BYTES, 0, &buf, &blen)) == 0) {
            rc = lia_trust_add_cert(t, buf, blen, NULL);
            free(buf);
        }
        if (rc != 0 && rc != LIA_ERR_EXISTS)
            log_warn("%s: %s; not trusted", path, lia_strerror(rc));
    }
    closedir(d);
    *out = t;
    return 0;
}
