/* The control endpoint (ROUTER) that omnictl talks to: status, send, customer and tail.
 * Requests are answered from memory or through one async Redis call each; never blocking. */
#ifndef OMNI_CONTROL_H
#define OMNI_CONTROL_H

#include "config.h"
#include "ingest.h"
#include "store.h"

typedef struct control control_t;

/* sock (ROUTER) and the other objects are borrowed. */
int control_new(const config_t *cfg, store_t *st, ingest_t *in, void *sock, int64_t started_ms, control_t **out);
void control_destroy(control_t **ctl);
typedef struct routing routing_t;
/* queues/agents requests answer from it (borrowed). */
void control_set_routing(control_t *ctl, routing_t *rt);

/* Read and answer (or start answering) every ready request. Returns requests read. */
int control_read(control_t *ctl);

#endif
