/* libFuzzer target: self-signed authority descriptions (authority.pub). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_authority_info a;
    char fpr[LIA_FINGERPRINT_CHARS];

    if (sodium_init() < 0)
        __builtin_trap();
    if (lia_authority_parse(data, size, &a) == 0) {
        if (a.name[0] == '\0' || !lia_text_valid(a.name, strlen(a.name)))
            __builtin_trap();
        lia_authority_fingerprint(&a, fpr);
    }
    return 0;
}
