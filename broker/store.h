/* The broker's Redis side: one async hiredis connection polled by the event loop, the Lua
 * scripts (loaded once, called by SHA), and typed calls for ingest, customer lookup and tail. */
#ifndef OMNI_STORE_H
#define OMNI_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "config.h"

typedef struct store store_t;

typedef enum { STORE_DOWN, STORE_CONNECTING, STORE_UP } store_state_t;

/* One message of an ingest batch, borrowed for the duration of store_ingest(). */
typedef struct {
    const char *channel;        /* "email" ... */
    int chnum;                  /* Omni__V1__Channel */
    const char *pmid;           /* provider message id */
    const char *account;
    const char *const *ids;     /* linkable normalized identities, sender first */
    size_t n_ids;
    const char *const *refs;    /* thread keys in priority order; "c<conversation id>" for tokens */
    size_t n_refs;
    const char *const *regs;    /* thread keys to point at this message's conversation */
    size_t n_regs;
    const uint8_t *partial;     /* StreamEvent with time, tenant, channel and message set */
    size_t partial_len;
    const uint8_t *route;       /* routing stub (packed Queued, see ingest.lua); NULL = not routed */
    size_t route_len;
} store_msg_t;

typedef struct {
    int duplicate;
    const char *customer_id;    /* borrowed from the reply, valid during the callback */
    const char *conversation_id;
    uint64_t seq;
} store_result_t;

/* An event the script composed itself (message events are rebuilt by the caller from the
 * result and its partial bytes: see ingest.lua). */
typedef struct {
    uint64_t seq;
    const char *channel;
    const char *kind;           /* "customer_merged", "conversation_opened", "queued" */
    const uint8_t *bytes;       /* packed StreamEvent */
    size_t len;
} store_event_t;

/* err is 0, OMNI_EUNAVAIL (Redis down or connection lost: retry) or OMNI_EIO (script error). */
typedef void (*store_ingest_cb)(int err, const store_result_t *res, size_t n_res,
                                const store_event_t *ev, size_t n_ev, void *ud);

typedef struct {
    const char *conversation_id, *channel, *state;
    int64_t opened_ms;
} store_conv_t;

/* customer_id NULL: identity unknown. */
typedef void (*store_customer_cb)(int err, const char *customer_id, const char *const *ids, size_t n_ids,
                                  const store_conv_t *convs, size_t n_convs, void *ud);

typedef struct {
    const uint8_t *bytes;
    size_t len;
} store_entry_t;

typedef void (*store_tail_cb)(int err, const store_entry_t *entries, size_t n, void *ud);

/* Connect synchronously once to prove Redis is there and load the scripts (start-up check).
 * On failure returns OMNI_EUNAVAIL / OMNI_ECONFIG with one line in err. cfg is borrowed. */
int store_new(const config_t *cfg, store_t **out, char *err, size_t errlen);
void store_destroy(store_t **st);

/* Event-loop integration: one poll item, a timer for reconnects, and the handler. */
void store_pollitem(store_t *st, zmq_pollitem_t *it);
void store_handle(store_t *st, short revents);
int store_timeout_ms(const store_t *st);
void store_tick(store_t *st);

store_state_t store_state(const store_t *st);
const char *store_state_name(const store_t *st);
uint64_t store_last_seq(const store_t *st);
size_t store_pending(const store_t *st); /* calls waiting for a reply */

/* Queue one script call for the batch; cb runs exactly once (also on disconnect/shutdown). */
int store_ingest(store_t *st, const store_msg_t *msgs, size_t n, store_ingest_cb cb, void *ud);
int store_customer(store_t *st, const char *identity, store_customer_cb cb, void *ud);
/* from_seq > 0: events from that seq on (at most limit); else the last `last` events, oldest first. */
int store_tail(store_t *st, uint64_t from_seq, unsigned last, unsigned limit, store_tail_cb cb, void *ud);

/* One routing operation for route.lua (borrowed for the duration of store_route()). */
typedef struct {
    const char *conversation_id;
    const char *action;         /* "set", "del", "close" or "" */
    const uint8_t *record;      /* packed RoutingRecord for "set" */
    size_t record_len;
    const char *agent;          /* the customer's last agent now, or "" */
    const char *flags;          /* "h": return recent events; "r": event joins the recent list */
    const uint8_t *partial;     /* StreamEvent without seq, or NULL */
    size_t partial_len;
    const char *reply_key;      /* agent reply id (scoped): a repeat does nothing, see route.lua; or NULL */
    const char *outbox_key;     /* outbound id to add to / remove from the outbox hash, or NULL */
    const uint8_t *outbox_val;  /* packed Envelope to keep; NULL with a key = remove */
    size_t outbox_len;
} store_route_op_t;

typedef struct {
    uint64_t seq;               /* of the op's event, 0 if none */
    const store_entry_t *history; /* with flag "h": recent events, oldest first */
    size_t n_history;
    int duplicate;              /* reply_key seen before: nothing was done */
    uint64_t first_seq;         /* duplicate: the first reply's seq and outbound id */
    char first_outbound[40];   /* = rop_t.outbound_id */
} store_route_result_t;

/* err as for store_ingest_cb; res has one entry per op, borrowed during the callback. */
typedef void (*store_route_cb)(int err, const store_route_result_t *res, size_t n, void *ud);
int store_route(store_t *st, const store_route_op_t *ops, size_t n, store_route_cb cb, void *ud);

/* Start-up only, blocking: every value of one of the tenant's hashes ("routing": packed
 * RoutingRecords; "outbox": packed Envelopes of undelivered replies). cb returns 0 to go on.
 * OMNI_EUNAVAIL with one line in err if Redis cannot be read. */
typedef int (*store_record_cb)(const uint8_t *bytes, size_t len, void *ud);
int store_load_hash(store_t *st, const char *hash, store_record_cb cb, void *ud, char *err, size_t errlen);

#endif
