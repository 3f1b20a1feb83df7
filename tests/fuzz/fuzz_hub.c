/*
 * libFuzzer target for the hub's term extraction and normalisation (lib/hub.c), which read
 * payloads from other nodes and search terms from operators. For any bytes: normalising as
 * each kind never crashes, never grows the text and is idempotent; and if the bytes are a
 * valid payload, every extracted term is non-empty, within LIA_HUB_TERM_MAX, already
 * normalised, and the list is sorted and distinct.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_normalised(lia_hub_kind kind, const char *text, size_t len)
{
    char *again = malloc(len ? len : 1);
    size_t n;
    if (!again)
        abort();
    if (lia_hub_normalise(kind, text, len, again, len, &n) != 0 || n != len ||
        memcmp(again, text, len) != 0)
        abort();
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Liaison__V1__Payload *p = NULL;
    char *out = malloc(size ? size : 1);
    size_t n;

    if (!out)
        abort();
    for (int k = 1; k <= LIA_HUB_KIND_MAX; k++) {
        if (lia_hub_normalise((lia_hub_kind)k, (const char *)data, size, out, size, &n) != 0)
            continue;
        if (n > size || n > LIA_HUB_TERM_MAX)
            abort();
        check_normalised((lia_hub_kind)k, out, n);
    }
    free(out);
    if (lia_payload_decode(data, size, &p) == 0) {
        lia_hub_terms t;
        if (lia_hub_terms_of(p, &t) != 0)
            abort();
        for (size_t i = 0; i < t.n; i++) {
            if (t.v[i].len == 0 || t.v[i].len > LIA_HUB_TERM_MAX)
                abort();
            check_normalised(t.v[i].kind, t.v[i].text, t.v[i].len);
            if (i > 0 && (t.v[i - 1].kind > t.v[i].kind ||
                          (t.v[i - 1].kind == t.v[i].kind && t.v[i - 1].len == t.v[i].len &&
                           memcmp(t.v[i - 1].text, t.v[i].text, t.v[i].len) == 0)))
                abort();
        }
        lia_hub_terms_free(&t);
        lia_payload_free(&p);
    }
    return 0;
}
