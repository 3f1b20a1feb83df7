/*
 * libFuzzer target: lia_envelope_inspect (strict decoding of an envelope and its header,
 * destination and key grant, without cryptography). Must never crash, leak or assert. The
 * cached variant, with one cache kept across inputs (as the broker keeps it across envelopes),
 * must give the same answer and the same hashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lia_inspect_cache cache;
    lia_envelope_meta *m = NULL, *mc = NULL;
    int rc = lia_envelope_inspect(data, size, &m);
    int rcc = lia_envelope_inspect_cached(data, size, &cache, &mc);

    if (rc != rcc)
        abort();
    if (rc == 0 && (memcmp(m->dest_digest, mc->dest_digest, sizeof m->dest_digest) != 0 ||
                    memcmp(m->stream_id, mc->stream_id, sizeof m->stream_id) != 0))
        abort();
    lia_envelope_meta_free(&m);
    lia_envelope_meta_free(&mc);
    return 0;
}
