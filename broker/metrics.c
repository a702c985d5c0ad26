/* Broker counters: plain uint64 slots, single writer (the event loop), so no atomics.
 * Names are the keys of `omnictl status --json` "counters". */
#include <stdio.h>

#include "metrics.h"
#include "validate.h"

static uint64_t counters[M__COUNT];
static uint64_t rejected[METRICS_REASONS];

static const char *const names[M__COUNT] = {
    [M_INGRESS_FRAMES] = "ingress_frames",
    [M_MESSAGES_ACCEPTED] = "messages_accepted",
    [M_MESSAGES_DUPLICATE] = "messages_duplicate",
    [M_MESSAGES_REJECTED] = "messages_rejected",
    [M_MESSAGES_RETRY] = "messages_retry",
    [M_CUSTOMERS_MERGED] = "customers_merged",
    [M_CONVERSATIONS_OPENED] = "conversations_opened",
    [M_EVENTS_APPENDED] = "events_appended",
    [M_IDENTITIES_JUNK] = "identities_junk",
    [M_REDIS_ERRORS] = "redis_errors",
    [M_REDIS_RECONNECTS] = "redis_reconnects",
    [M_CONTROL_REQUESTS] = "control_requests",
    [M_CONTROL_ERRORS] = "control_errors",
    [M_AUTH_REFUSED] = "auth_refused",
    [M_ADAPTER_HELLOS] = "adapter_hellos",
    [M_OUTBOUND_RESULTS] = "outbound_results",
    [M_QUEUED] = "queued",
    [M_REQUEUED] = "requeued",
    [M_OFFERS] = "offers",
    [M_OFFERS_REJECTED] = "offers_rejected",
    [M_OFFERS_TIMED_OUT] = "offers_timed_out",
    [M_ASSIGNED] = "assigned",
    [M_AGENT_MESSAGES] = "agent_messages",
    [M_TRANSFERRED] = "transferred",
    [M_CLOSED] = "closed",
    [M_AFTER_HOURS] = "after_hours",
    [M_QUEUE_FULL] = "queue_full",
    [M_AGENT_LOGINS] = "agent_logins",
    [M_AGENT_TIMEOUTS] = "agent_timeouts",
    [M_AGENT_ERRORS] = "agent_errors",
    [M_AUTO_PAUSED] = "auto_paused",
    [M_OUTBOUND_SENT] = "outbound_sent",
    [M_OUTBOUND_DELIVERED] = "outbound_delivered",
    [M_OUTBOUND_FAILED] = "outbound_failed",
    [M_ROUTING_STORE_RETRIES] = "routing_store_retries",
};

void metrics_inc(metric_t m) { counters[m]++; }
void metrics_add(metric_t m, uint64_t n) { counters[m] += n; }
uint64_t metrics_get(metric_t m) { return counters[m]; }
const char *metrics_name(metric_t m) { return names[m]; }

void metrics_reject(int reason)
{
    counters[M_MESSAGES_REJECTED]++;
    rejected[reason > 0 && reason < METRICS_REASONS ? reason : 0]++;
}

uint64_t metrics_rejected(int reason)
{
    return reason >= 0 && reason < METRICS_REASONS ? rejected[reason] : 0;
}

void metrics_each(void (*fn)(const char *name, uint64_t value, void *ud), void *ud)
{
    char name[64];
    for (int i = 0; i < M__COUNT; i++)
        fn(names[i], counters[i], ud);
    for (int r = 0; r < METRICS_REASONS; r++) {
        if (!rejected[r])
            continue;
        snprintf(name, sizeof(name), "rejected_%s", validate_reason_name(r));
        fn(name, rejected[r], ud);
    }
}
