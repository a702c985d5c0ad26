/* libFuzzer target for everything the broker parses from the network before Redis sees it:
 * Envelope and ControlRequest decoding, message validation and identity normalization. */
#include <stdint.h>
#include <stdlib.h>

#include <omni/identity.h>
#include <omni/v1/control.pb-c.h>
#include <omni/v1/stream.pb-c.h>

#include "config.h"
#include "validate.h"

static config_t cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int ready;
    if (!ready) {
        ready = config_defaults(&cfg) == 0;
        if (!ready)
            abort();
    }
    Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, len, data);
    if (env) {
        if (env->body_case == OMNI__V1__ENVELOPE__BODY_INBOUND) {
            validate_result_t res;
            uint64_t linkable;
            if (validate_inbound(env->inbound, &cfg, &linkable, &res) == 0) {
                /* What ingest does next: re-pack the normalized message into a stream event. */
                Omni__V1__MessageEvent me = OMNI__V1__MESSAGE_EVENT__INIT;
                Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
                me.inbound = env->inbound;
                ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
                ev.message = &me;
                uint8_t *buf = malloc(omni__v1__stream_event__get_packed_size(&ev) + 1);
                size_t n = omni__v1__stream_event__pack(&ev, buf);
                Omni__V1__StreamEvent *back = omni__v1__stream_event__unpack(NULL, n, buf);
                if (!back)
                    abort(); /* what we write we must be able to read */
                omni__v1__stream_event__free_unpacked(back, NULL);
                free(buf);
            }
        }
        omni__v1__envelope__free_unpacked(env, NULL);
    }
    Omni__V1__ControlRequest *req = omni__v1__control_request__unpack(NULL, len, data);
    if (req) {
        if (req->body_case == OMNI__V1__CONTROL_REQUEST__BODY_CUSTOMER) {
            char out[OMNI_IDENTITY_MAX];
            omni_identity_normalize(req->customer->identity, "JP", out, sizeof(out));
        }
        omni__v1__control_request__free_unpacked(req, NULL);
    }
    /* Raw bytes as an identity string, too. */
    if (len < 512) {
        char in[512], out[OMNI_IDENTITY_MAX];
        for (size_t i = 0; i < len; i++)
            in[i] = data[i] ? (char)data[i] : ' ';
        in[len] = 0;
        omni_identity_normalize(in, "JP", out, sizeof(out));
    }
    return 0;
}
