/*
 * libFuzzer target: the node-broker frame decoder (transport.proto Frame) with the strictness
 * the daemons apply (bounded size, no unknown fields), then the envelope inspection the broker
 * runs on a Publish or the node on a Deliver, and the revocation-list decoding a node runs on a
 * RevocationUpdate (without the signature check, which would stop nearly every input before
 * the body decoder). Must never crash, leak or assert.
 */
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "envelope.h"

#include "liaison/v1/transport.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Liaison__V1__Frame *f;
    lia_envelope_meta *m = NULL;

    if (size > LIA_ENVELOPE_MAX + 1024)
        return 0;
    f = liaison__v1__frame__unpack(NULL, size, data);
    if (!f)
        return 0;
    if (f->base.n_unknown_fields == 0) {
        size_t n = 0;
        ProtobufCBinaryData *envs = NULL;
        if (f->kind_case == LIAISON__V1__FRAME__KIND_PUBLISH) {
            n = f->publish->n_envelopes;
            envs = f->publish->envelopes;
        } else if (f->kind_case == LIAISON__V1__FRAME__KIND_DELIVER) {
            n = f->deliver->n_envelopes;
            envs = f->deliver->envelopes;
        }
        for (size_t i = 0; i < n && i < 64; i++)
            if (lia_envelope_inspect(envs[i].data, envs[i].len, &m) == 0)
                lia_envelope_meta_free(&m);
        if (f->kind_case == LIAISON__V1__FRAME__KIND_REVOCATION &&
            f->revocation->crl.len <= LIA_CRL_MAX_BYTES) {
            lia_crl_t *crl = NULL;
            if (lia_crl_decode_unverified(f->revocation->crl.data, f->revocation->crl.len, &crl) ==
                0)
                lia_crl_destroy(&crl);
        }
    }
    liaison__v1__frame__free_unpacked(f, NULL);
    return 0;
}
