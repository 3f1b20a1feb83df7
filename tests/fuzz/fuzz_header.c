/*
 * libFuzzer target: lia_envelope_inspect (strict decoding of an envelope and its header,
 * destination and key grant, without cryptography). Must never crash, leak or assert.
 */
#include <stdint.h>
#include <stddef.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_envelope_meta *m = NULL;
    if (lia_envelope_inspect(data, size, &m) == 0)
        lia_envelope_meta_free(&m);
    return 0;
}
