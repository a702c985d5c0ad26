/* Checks one decoded InboundMessage against the configured limits and normalizes its identities,
 * before anything touches Redis. Pure: no I/O, no globals, no logging. */
#ifndef OMNI_BROKER_VALIDATE_H
#define OMNI_BROKER_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <omni/v1/message.pb-c.h>

#include "config.h"

/* Result of validating one message: reason (Omni__V1__Reason) and a static or buffer detail.
 * The detail names the offending field ("also[2]", "attachments[0].name") but never quotes
 * customer data, so it is safe to log and to send back in an Ack. */
typedef struct {
    int reason;
    char detail[160];
} validate_result_t;

/* Checks and normalizes in place: `from` and `also` are rewritten to their normalized form and
 * duplicates (after normalization) are dropped from `also`.
 *
 * Allocator rule: msg must have been built by protobuf_c_message_unpack() with the default
 * allocator (NULL), or by hand with every `from`/`also` string from malloc(). A rewritten string
 * is replaced by a malloc()ed one and the old one is free()d, except protobuf-c's shared
 * protobuf_c_empty_string, which is never freed. So protobuf_c_message_free_unpacked(msg, NULL)
 * stays correct afterwards.
 *
 * Junk identities (anonymous, toll-free numbers...) are accepted and kept, normalized when they
 * have a normal form, but may not link customers: *linkable_mask (may be NULL) gets bit 0 when
 * `from` may link and bit k+1 when also[k] (after duplicates are removed) may.
 *
 * Returns 0 when valid (res->reason = REASON_NONE, empty detail), else fills res and returns
 * OMNI_EINVAL; on failure the message is left untouched. Returns OMNI_ENOMEM (res says
 * REASON_INTERNAL, which is retryable) if a normalized copy cannot be allocated. */
int validate_inbound(Omni__V1__InboundMessage *msg, const config_t *cfg, uint64_t *linkable_mask,
                     validate_result_t *res);

/* Name of a reason for counters and logs: "none", "malformed", "too_large", "missing_field",
 * "bad_utf8", "unknown_channel", "bad_identity", "too_many", "unavailable", "internal";
 * "unknown" for anything else. Never NULL. */
const char *validate_reason_name(int reason);

#endif
