/*
 * libFuzzer target: secret key files. The input is written to a private temporary file and
 * loaded with and without a passphrase ("fuzz"). To keep the fuzzer fast, the passphrase path
 * is only taken when the file's KDF asks for at most 64 KiB and 3 passes (the vault accepts up
 * to 2 GiB, which would only measure Argon2); seeds use opslimit 1 and memlimit 8 KiB.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "vault.h"

#include "liaison/v1/identity.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

static void init(void)
{
    static char dir[] = "/tmp/lia-fuzz-secret-XXXXXX";

    if (path[0])
        return;
    if (lia_vault_init() != 0 || !mkdtemp(dir))
        __builtin_trap();
    snprintf(path, sizeof path, "%s/id.key", dir);
}

static int cheap_kdf(const uint8_t *data, size_t size)
{
    Liaison__V1__SecretFile *f = liaison__v1__secret_file__unpack(NULL, size, data);
    int ok = 0;

    if (f) {
        ok = !f->kdf || (f->kdf->memlimit <= 65536 && f->kdf->opslimit <= 3);
        liaison__v1__secret_file__free_unpacked(f, NULL);
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_identity_t *id = NULL;
    int fd;

    init();
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        __builtin_trap();
    if (lia_identity_load(path, 0, NULL, 0, &id) == 0 && !lia_identity_name(id)[0])
        __builtin_trap();
    lia_identity_destroy(&id);
    if (cheap_kdf(data, size)) {
        if (lia_identity_load(path, 0, "fuzz", 4, &id) == 0) {
            uint8_t sig[LIA_SIGNATURE_BYTES];
            if (lia_identity_sign(id, data, size, sig) != 0 ||
                crypto_sign_verify_detached(sig, data, size, lia_identity_sign_pk(id)) != 0)
                __builtin_trap();
        }
        lia_identity_destroy(&id);
    }
    return 0;
}
