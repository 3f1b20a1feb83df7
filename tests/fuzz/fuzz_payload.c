/*
 * libFuzzer target for the payload decoder: lia_payload_decode must never crash, leak or read
 * out of bounds, whatever the bytes. When it accepts an input, the result must validate again
 * and re-encode to exactly the same bytes (the decoder accepts canonical encodings only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Liaison__V1__Payload *p = NULL;
    if (lia_payload_decode(data, size, &p) != 0) {
        if (p)
            abort();
        return 0;
    }
    if (lia_payload_validate(p) != 0)
        abort();
    size_t n = liaison__v1__payload__get_packed_size(p);
    uint8_t *again = malloc(n ? n : 1);
    if (!again)
        abort();
    if (liaison__v1__payload__pack(p, again) != size || memcmp(again, data, size) != 0)
        abort();
    free(again);
    lia_payload_free(&p);
    return 0;
}
