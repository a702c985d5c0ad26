/* The adapter SDK: connects a channel adapter to the broker's ingress endpoint with
 * at-least-once delivery (bounded outbox, acks, resend with backoff) and outbound callbacks. */
#ifndef OMNI_ADAPTER_H
#define OMNI_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include <omni/omni.h>
#include <omni/identity.h>
#include <omni/v1/message.pb-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OMNI_ADAPTER_API_VERSION 1

typedef struct omni_adapter omni_adapter_t;

/* The broker's verdict on one message, borrowed for the duration of the callback. */
typedef struct {
    uint64_t request_id;
    int accepted;             /* durably appended (now or earlier) */
    int duplicate;            /* an earlier copy was appended; ids are the original ones */
    const char *customer_id;  /* "" when not accepted */
    const char *conversation_id;
    uint64_t seq;
    int reason;               /* Omni__V1__Reason when not accepted */
    const char *detail;       /* human text for the reason, "" if none */
} omni_ack_t;

/* Called once per message when the broker accepts it or rejects it for good.
 * Retryable refusals (storage down) are not reported: the SDK resends. */
typedef void (*omni_ack_cb)(omni_adapter_t *ad, const omni_ack_t *ack, void *user);

/* Called for each message the broker asks this adapter to deliver. `msg` is borrowed.
 * Report the outcome with omni_adapter_outbound_result(), now or later. The broker redelivers a
 * message until it hears the outcome; the SDK recognises the last 256 outbound ids, so the
 * callback runs once per id (a redelivery gets the recorded outcome again, or nothing while the
 * callback's delivery is still under way). */
typedef void (*omni_outbound_cb)(omni_adapter_t *ad, const Omni__V1__OutboundMessage *msg, void *user);

typedef struct {
    int api_version;             /* OMNI_ADAPTER_API_VERSION */
    const char *broker;          /* ZeroMQ endpoint, default "tcp://127.0.0.1:5560" */
    const char *adapter_id;      /* required: unique per adapter instance, e.g. "email-1" */
    Omni__V1__Channel channel;   /* default channel of this adapter */
    const char *const *accounts; /* NULL-terminated list of channel accounts served, may be NULL */
    size_t outbox_max;           /* messages kept until acked; default 10000 */
    size_t max_message_bytes;    /* refuse larger messages locally; default 1 MiB */
    int ack_timeout_ms;          /* first resend after this while the broker is silent; default 1000 */
    int backoff_max_ms;          /* resend backoff cap; default 8000 */
    int stall_timeout_ms;        /* while the broker answers heartbeats it acks everything it got,
                                  * so resend only after this long; default 30000 */
    int heartbeat_ms;            /* hello/heartbeat interval; default 2000 */
    const char *default_region;  /* phone region for omni_adapter_identity(); default "JP" */
    /* CURVE: all three set = encrypted and authenticated connection (Z85 keys). */
    const char *curve_server_key;
    const char *curve_public_key;
    const char *curve_secret_key;
    omni_ack_cb on_ack;          /* may be NULL */
    omni_outbound_cb on_outbound; /* may be NULL: outbound messages are then refused */
    void *user;
} omni_adapter_opts_t;

/* Fill opts with the defaults above (api_version set, everything else zero/NULL). */
void omni_adapter_opts_init(omni_adapter_opts_t *opts);

/* Create and connect. Connecting is asynchronous: messages wait in the outbox until the
 * broker is reachable. Returns 0 and *out, or OMNI_EINVAL / OMNI_ENOMEM / OMNI_EIO. */
int omni_adapter_new(const omni_adapter_opts_t *opts, omni_adapter_t **out);

/* Close, dropping whatever is still unacked (call omni_adapter_flush first), and NULL *ad. */
void omni_adapter_destroy(omni_adapter_t **ad);

/* Queue one message. The SDK copies it (packs it); fills adapter_id, channel and received_ms
 * when empty, and generates a provider_message_id when empty.
 * Returns 0 (held in the outbox: delivery to the broker is now the SDK's job),
 * OMNI_EFULL when the outbox is full (back-pressure: nothing was queued),
 * OMNI_ETOOBIG above max_message_bytes, OMNI_EINVAL for a message without channel or from.
 * On success *request_id (if non-NULL) receives the id reported in the ack. */
int omni_adapter_send(omni_adapter_t *ad, const Omni__V1__InboundMessage *msg, uint64_t *request_id);

/* Report the outcome of an outbound delivery. */
int omni_adapter_outbound_result(omni_adapter_t *ad, const char *outbound_id, int delivered,
                                 int permanent, const char *provider_message_id, const char *error);

/* Event-loop integration (as hiredis' adapters): a file descriptor that becomes readable
 * when the SDK has work (it is ZMQ_FD: edge-triggered, so always call omni_adapter_process
 * until it returns 0), and the number of ms until the SDK needs a timer tick (-1: none). */
int omni_adapter_fd(omni_adapter_t *ad);
int omni_adapter_timeout_ms(omni_adapter_t *ad);

/* Do all pending work without blocking: read acks and outbound messages, run callbacks,
 * resend what is due, send heartbeats. Returns the number of events handled, or < 0. */
int omni_adapter_process(omni_adapter_t *ad);

/* Block up to timeout_ms (-1 forever) for work, then process it. Returns as _process. */
int omni_adapter_poll(omni_adapter_t *ad, int timeout_ms);

/* Wait up to timeout_ms until every queued message is acked or rejected.
 * Returns 0 when the outbox is empty, OMNI_ETIMEDOUT otherwise. */
int omni_adapter_flush(omni_adapter_t *ad, int timeout_ms);

/* Messages in the outbox (sent or not, not yet acked). */
size_t omni_adapter_pending(const omni_adapter_t *ad);

/* 1 if the broker answered within the last 3 heartbeats. */
int omni_adapter_connected(const omni_adapter_t *ad);

/* Normalize an identity with the adapter's default region (see omni_identity_normalize). */
int omni_adapter_identity(const omni_adapter_t *ad, const char *in, char *out, size_t outlen);

/* Channel names of the contract ("chat", "email", "sns", "phone") and back. */
const char *omni_channel_name(Omni__V1__Channel ch);
Omni__V1__Channel omni_channel_parse(const char *name); /* CHANNEL_UNSPECIFIED if unknown */

#ifdef __cplusplus
}
#endif
#endif
