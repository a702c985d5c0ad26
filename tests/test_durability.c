/* Nothing lost: kill -9 of the broker and a Redis stop/restart in the middle of SDK traffic.
 * After recovery every message is in the stream exactly once and seq never goes back. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static h_env_t H;
static void setup(void) { h_setup(&H); }
static void teardown(void) { h_teardown(&H); }

TestSuite(durability, .init = setup, .fini = teardown, .timeout = 240);

typedef struct {
    size_t acked;
    uint64_t max_seq;
} count_t;

static void count_ack(omni_adapter_t *ad, const omni_ack_t *a, void *user)
{
    (void)ad;
    count_t *c = user;
    cr_assert(a->accepted, "message rejected: %s", a->detail);
    c->acked++;
}

/* Send `total` messages; when `at` of them are acked, run disrupt(); then wait for all acks. */
static void run(size_t total, size_t at, void (*disrupt)(void), void (*recover)(void))
{
    count_t cnt = {0};
    omni_adapter_t *ad = h_adapter(&H, "t-durable", OMNI__V1__CHANNEL__CHANNEL_CHAT, count_ack, &cnt);
    char pmid[32], from[32];
    int disrupted = 0;
    for (size_t i = 0; i < total; i++) {
        Omni__V1__InboundMessage m;
        snprintf(pmid, sizeof(pmid), "d-%zu", i);
        snprintf(from, sizeof(from), "chat:visitor-%zu", i % 500);
        h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, pmid, from, NULL, "パスワードを再設定できません");
        /* A window of 500 in flight keeps the disruption in the middle of the traffic. */
        while (omni_adapter_pending(ad) >= 500)
            omni_adapter_poll(ad, 10);
        cr_assert_eq(omni_adapter_send(ad, &m, NULL), 0);
        omni_adapter_process(ad);
        if (!disrupted && cnt.acked >= at) {
            disrupt();
            disrupted = 1;
            /* Keep sending while it is down: those wait in the SDK outbox. */
            for (size_t k = 0; k < 200 && i + 1 < total; k++, i++) {
                snprintf(pmid, sizeof(pmid), "d-%zu", i + 1);
                snprintf(from, sizeof(from), "chat:visitor-%zu", (i + 1) % 500);
                h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, pmid, from, NULL, "down");
                cr_assert_eq(omni_adapter_send(ad, &m, NULL), 0);
            }
            recover();
        }
    }
    cr_assert(disrupted, "traffic finished before the disruption point");
    cr_assert_eq(omni_adapter_flush(ad, 90000), 0, "%zu messages never acked", omni_adapter_pending(ad));
    cr_assert_eq(cnt.acked, total);
    omni_adapter_destroy(&ad);

    /* Exactly once in the stream, seq strictly increasing. */
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    unsigned char *seen = calloc(total, 1);
    size_t msgs = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            cr_assert(ev[i]->seq > ev[i - 1]->seq, "seq went back at %zu", i);
        if (ev[i]->kind_case != OMNI__V1__STREAM_EVENT__KIND_MESSAGE)
            continue;
        size_t k = strtoul(ev[i]->message->inbound->provider_message_id + 2, NULL, 10);
        cr_assert(k < total);
        cr_assert_eq(seen[k], 0, "message %zu appended twice", k);
        seen[k] = 1;
        msgs++;
    }
    cr_assert_eq(msgs, total, "%zu of %zu messages in the stream", msgs, total);
    free(seen);
    h_events_free(ev, n);
}

static void broker_crash(void) { h_broker_stop(&H, SIGKILL); }
static void broker_restart(void) { h_broker_start(&H); }

Test(durability, broker_kill9_mid_10000_sends_loses_nothing)
{
    run(10000, 3000, broker_crash, broker_restart);
}

static void redis_stop(void) { h_redis_stop(&H, SIGTERM); }
static void redis_restart(void) { h_redis_start(&H); }

Test(durability, redis_stop_and_restart_loses_nothing)
{
    run(3000, 1000, redis_stop, redis_restart);
    cr_assert_geq(h_counter(&H, "redis_reconnects"), 1);
}

static void redis_freeze(void) { kill(H.redis_pid, SIGSTOP); }
static void redis_thaw(void)
{
    /* Frozen long enough for the broker's stall detector (5 s) to drop the link, then back. */
    long long before = h_counter(&H, "redis_errors");
    for (int i = 0; i < 200 && h_counter(&H, "redis_errors") == before; i++)
        usleep(50 * 1000);
    cr_assert_gt(h_counter(&H, "redis_errors"), before, "a hung Redis was not noticed");
    kill(H.redis_pid, SIGCONT);
}

Test(durability, hung_redis_is_detected_and_nothing_is_lost)
{
    run(2000, 500, redis_freeze, redis_thaw);
}
