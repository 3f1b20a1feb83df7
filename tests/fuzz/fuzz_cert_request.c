/* libFuzzer target: certificate requests (proof of possession by the node's own key). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_cert_info r;
    char fpr[LIA_FINGERPRINT_CHARS];

    if (sodium_init() < 0)
        __builtin_trap();
    if (lia_cert_request_parse(data, size, &r) == 0) {
        if (!lia_node_id_valid(r.node_id) || strlen(r.country) != 2)
            __builtin_trap();
        lia_node_fingerprint(&r, fpr);
    }
    return 0;
}
