/*
 * libFuzzer target for lib/utf8.c: on any bytes, under each combination of flags,
 * lia_utf8_valid must agree with the byte-at-a-time reference (tests/common/utf8_ref.h).
 * The first byte chooses an alignment, so that the 8-byte fast path meets every offset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "../common/utf8_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned flags[] = {0, LIA_UTF8_MULTILINE, LIA_UTF8_CONTROLS,
                                     LIA_UTF8_MULTILINE | LIA_UTF8_CONTROLS};
    unsigned char *buf;
    size_t off;

    if (size == 0 || size > 4096)
        return 0;
    off = data[0] % 8;
    data++, size--;
    if (!(buf = malloc(size + 8)))
        return 0;
    memcpy(buf + off, data, size);
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
        if (lia_utf8_valid((const char *)buf + off, size, flags[f]) !=
            utf8_ref(buf + off, size, flags[f]))
            abort();
    free(buf);
    return 0;
}
