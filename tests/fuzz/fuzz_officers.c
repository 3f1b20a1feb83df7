/*
 * libFuzzer target: the stored run-time assignments of an officer (lib/officers.c,
 * lia_officers_runtime_decode), which the node reads back from its store at start.
 *
 * For each input, a fresh registry with officer "anna" (already assigned to case:x):
 *   1. decodes the input as anna's stored assignments;
 *   2. on success, checks invariants: the earlier assignment is still there and first, at
 *      most LIA_OFFICER_ASSIGN_MAX assignments, every target valid, and encoding the run-time
 *      assignments then decoding them into another fresh registry gives the same list;
 *   3. on failure, checks that nothing changed.
 * Must never crash, leak or assert.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "officers.h"

static lia_officers_t *fresh(void)
{
    lia_officers_t *o = NULL;
    if (lia_officers_new(&o) != 0 || lia_officers_add(o, "anna", "60501", 60501) != 0 ||
        lia_officers_assign(o, "anna", "case:x") != 0)
        abort();
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lia_officers_t *o = fresh(), *p = NULL;
    uint8_t *enc = NULL;
    size_t len = 0, n;

    if (lia_officers_runtime_decode(o, "anna", data, size) != 0) {
        if (lia_officers_n_assigned(o, "anna") != 1)
            abort(); /* a refused input changed the registry */
        goto done;
    }
    n = lia_officers_n_assigned(o, "anna");
    if (n < 1 || n > LIA_OFFICER_ASSIGN_MAX ||
        strcmp(lia_officers_assigned(o, "anna", 0, NULL), "case:x") != 0)
        abort();
    for (size_t j = 0; j < n; j++)
        if (!lia_officer_target_valid(lia_officers_assigned(o, "anna", j, NULL)))
            abort();
    if (lia_officers_runtime_encode(o, "anna", &enc, &len) != 0)
        abort();
    p = fresh();
    if (lia_officers_runtime_decode(p, "anna", enc, len) != 0 ||
        lia_officers_n_assigned(p, "anna") != n)
        abort();
    for (size_t j = 0; j < n; j++)
        if (strcmp(lia_officers_assigned(o, "anna", j, NULL),
                   lia_officers_assigned(p, "anna", j, NULL)) != 0)
            abort();
done:
    free(enc);
    lia_officers_destroy(&o);
    lia_officers_destroy(&p);
    return 0;
}
