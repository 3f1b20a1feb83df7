/*
 * libFuzzer target: the control-socket request decoder (control.proto ControlRequest) as the
 * node daemon reads it, followed by the payload validation a SendRequest goes through.
 * Must never crash, leak or assert.
 */
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "payload.h"

#include "liaison/v1/control.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Liaison__V1__ControlRequest *r;

    if (size > LIA_CONTROL_MAX_FRAME)
        return 0;
    r = liaison__v1__control_request__unpack(NULL, size, data);
    if (!r)
        return 0;
    if (r->base.n_unknown_fields == 0 && r->kind_case == LIAISON__V1__CONTROL_REQUEST__KIND_SEND) {
        Liaison__V1__Payload *p = NULL;
        if (lia_payload_decode(r->send->payload.data, r->send->payload.len, &p) == 0)
            lia_payload_free(&p);
    }
    liaison__v1__control_request__free_unpacked(r, NULL);
    return 0;
}
