/* Broker counters: one process-wide table, touched only by the event-loop thread, read by
 * `omnictl status` (and later /metrics). Incremental, never recomputed. */
#ifndef OMNI_METRICS_H
#define OMNI_METRICS_H

#include <stdint.h>

typedef enum {
    M_INGRESS_FRAMES,     /* ZeroMQ messages read on ingress */
    M_MESSAGES_ACCEPTED,  /* appended to the stream */
    M_MESSAGES_DUPLICATE, /* (channel, provider id) seen before */
    M_MESSAGES_REJECTED,  /* nacked for good; per reason below */
    M_MESSAGES_RETRY,     /* nacked as retryable (Redis down) */
    M_CUSTOMERS_MERGED,
    M_CONVERSATIONS_OPENED,
    M_EVENTS_APPENDED,
    M_IDENTITIES_JUNK,    /* identities accepted but never linked */
    M_REDIS_ERRORS,
    M_REDIS_RECONNECTS,
    M_CONTROL_REQUESTS,
    M_CONTROL_ERRORS,
    M_AUTH_REFUSED,       /* CURVE keys refused by the ZAP handler */
    M_ADAPTER_HELLOS,
    M_OUTBOUND_RESULTS,
    M_QUEUED,             /* conversations that entered a queue (incl. requeues) */
    M_REQUEUED,           /* conversations an agent lost (offline, logout, restart) */
    M_OFFERS,
    M_OFFERS_REJECTED,
    M_OFFERS_TIMED_OUT,
    M_ASSIGNED,
    M_AGENT_MESSAGES,
    M_TRANSFERRED,
    M_CLOSED,
    M_AFTER_HOURS,        /* conversations that arrived while their queue was closed */
    M_QUEUE_FULL,         /* conversations closed because no queue had room */
    M_AGENT_LOGINS,
    M_AGENT_TIMEOUTS,     /* sessions ended by missed heartbeats */
    M_AGENT_ERRORS,       /* agent requests refused (bad input, unknown offer, not assigned...) */
    M_AUTO_PAUSED,        /* agents set away after missed offers */
    M_OUTBOUND_SENT,      /* sends to adapters, redeliveries included */
    M_OUTBOUND_DELIVERED, /* adapters reported a delivery */
    M_OUTBOUND_FAILED,    /* adapters reported a failed delivery */
    M_ROUTING_STORE_RETRIES, /* routing writes retried because Redis was unavailable */
    M__COUNT
} metric_t;

/* Reasons follow Omni__V1__Reason numbering; REASON_NONE unused. */
#define METRICS_REASONS 16

void metrics_inc(metric_t m);
void metrics_add(metric_t m, uint64_t n);
uint64_t metrics_get(metric_t m);
void metrics_reject(int reason);
uint64_t metrics_rejected(int reason);
const char *metrics_name(metric_t m);

/* Call fn for every counter (including "rejected_<reason>" ones that are non-zero). */
void metrics_each(void (*fn)(const char *name, uint64_t value, void *ud), void *ud);

#endif
