/* The broker side of routing: owns the pure router, the conversations it routes and the agent
 * sessions; turns router decisions into agent messages and durable routing events (route.lua). */
#ifndef OMNI_ROUTING_H
#define OMNI_ROUTING_H

#include <stddef.h>
#include <stdint.h>
#include <omni/v1/agent.pb-c.h>
#include <omni/v1/control.pb-c.h>
#include <omni/v1/message.pb-c.h>

#include "config.h"
#include "reply.h"
#include "routecfg.h"
#include "store.h"

typedef struct routing routing_t;
typedef struct ingest ingest_t;

/* Takes ownership of rc. Sockets, cfg and st are borrowed. OMNI_ECONFIG/ENOMEM with err. */
int routing_new(const config_t *cfg, routecfg_t *rc, store_t *st, void *agents_sock, void *pub,
                int64_t started_ms, routing_t **out, char *err, size_t errlen);
void routing_destroy(routing_t **rt);
/* Outbound messages go to the adapters ingest knows (borrowed). */
void routing_set_ingest(routing_t *rt, ingest_t *in);
/* Replaces the wall clock (omni_now_ms) for tests and fuzzing. */
void routing_set_clock(routing_t *rt, int64_t (*clock)(void));
/* Start-up, blocking: rebuild queues and assignments from the routing records in Redis. */
int routing_recover(routing_t *rt, char *err, size_t errlen);

/* Ingest side. The routing stub of one inbound message: a packed Queued (queue, category, rule,
 * priority, reply address...) that ingest.lua stores if the message opens a conversation.
 * *out is malloc'ed (caller frees). */
int routing_stub(routing_t *rt, const Omni__V1__InboundMessage *m, uint8_t **out, size_t *len);
/* Every event ingest published (kind "message", "queued", "customer_merged", ...). */
void routing_on_event(routing_t *rt, const char *kind, const char *conversation_id, const uint8_t *bytes,
                      size_t len);
void routing_on_outbound_result(routing_t *rt, const Omni__V1__OutboundResult *r);

/* Event loop. */
int routing_read(routing_t *rt);            /* agents socket */
/* One agents-endpoint frame as if read from `to` (fuzzing, tests). */
void routing_agent_frame(routing_t *rt, const reply_to_t *to, const uint8_t *data, size_t len);
void routing_flush(routing_t *rt);          /* send queued routing writes to Redis */
int routing_timeout_ms(const routing_t *rt, int64_t now_ms);
void routing_tick(routing_t *rt, int64_t now_ms); /* deadlines: offers, steps, sessions, reclaim */
size_t routing_pending(const routing_t *rt);     /* writes not yet durable */

/* Control endpoint: live state. Replies are heap-built; free with routing_*_free. */
int routing_queues(routing_t *rt, Omni__V1__QueuesReply *out);
void routing_queues_free(Omni__V1__QueuesReply *r);
/* *mem holds what the reply points at until routing_agents_free. */
int routing_agents(routing_t *rt, Omni__V1__AgentsReply *out, void **mem);
void routing_agents_free(Omni__V1__AgentsReply *r, void *mem);

#endif
