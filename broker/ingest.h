/* Ingest: turns ingress frames into validated messages, batches them into one Redis script
 * call, acks each sender once the batch is durable, and publishes the appended events. */
#ifndef OMNI_INGEST_H
#define OMNI_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <omni/v1/message.pb-c.h>

#include "config.h"
#include "reply.h"
#include "store.h"

typedef struct ingest ingest_t;

typedef struct {
    char adapter_id[128];
    Omni__V1__Channel channel;
    char accounts[256];      /* comma-separated, for status */
    int64_t last_seen_ms;
    uint32_t heartbeat_ms;
    uint32_t outbox;
    reply_to_t to;           /* its DEALER on the ingress socket (outbound messages go there) */
} adapter_rec_t;

typedef struct routing routing_t;
/* Classify and route what ingest stores (borrowed; NULL = no routing). */
void ingest_set_routing(ingest_t *in, routing_t *rt);

/* Sockets are borrowed: ingress ROUTER, stream PUB. cfg and st borrowed. */
int ingest_new(const config_t *cfg, store_t *st, void *ingress, void *pub, int64_t started_ms, ingest_t **out);
void ingest_destroy(ingest_t **in);

/* Read what is ready on the ingress socket (at most batch_max frames). Returns frames read. */
int ingest_read(ingest_t *in);

/* Validate one message and queue it for the next flush. Takes ownership of `owner` (the
 * unpacked protobuf that contains msg), freeing it once it is no longer needed.
 * Invalid messages are nacked at once. */
void ingest_submit(ingest_t *in, const reply_to_t *to, Omni__V1__InboundMessage *msg, ProtobufCMessage *owner);

/* Send the queued batch to Redis as one script call, unless enough calls are already
 * waiting (then the batch keeps growing). Call once per loop iteration. */
void ingest_flush(ingest_t *in);

/* 1 while fewer than inflight_max messages wait on Redis: the loop stops reading ingress otherwise. */
int ingest_can_read(const ingest_t *in);
size_t ingest_inflight(const ingest_t *in);
size_t ingest_queued(const ingest_t *in); /* validated, waiting for a script call slot */
/* Shutdown: nack (retryable) and drop what never reached Redis, so senders resend at once. */
void ingest_abandon(ingest_t *in);

/* Forget adapters not heard of for 3 of their heartbeat intervals. */
void ingest_tick(ingest_t *in);
size_t ingest_adapters(const ingest_t *in, const adapter_rec_t **list);

/* Send a packed ack to `to` (used for control-side rejections too). */
void ingest_reply(const reply_to_t *to, const Omni__V1__Ack *ack);

#endif
