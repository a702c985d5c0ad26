/* The adapter SDK against a scripted fake broker (a raw ROUTER in the test): resend until
 * acked, retryable vs permanent nacks, back-pressure, outbound callbacks, heartbeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>
#include <omni/adapter.h>

static void *zctx, *router;
static char endpoint[128];

static void setup(void)
{
    snprintf(endpoint, sizeof(endpoint), "ipc:///tmp/omni-sdk-test-%d", getpid());
    zctx = zmq_ctx_new();
    router = zmq_socket(zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_bind(router, endpoint), 0);
}

static void teardown(void)
{
    zmq_close(router);
    zmq_ctx_term(zctx);
    unlink(endpoint + 6);
}

TestSuite(sdk, .init = setup, .fini = teardown, .timeout = 30);

typedef struct {
    int acks, rejects, outbound;
    omni_ack_t last;
    char reason_detail[64], customer_id[64]; /* ack strings are borrowed: copied */
    char outbound_id[64], outbound_text[64];
} seen_t;

static void on_ack(omni_adapter_t *ad, const omni_ack_t *a, void *user)
{
    (void)ad;
    seen_t *s = user;
    if (a->accepted)
        s->acks++;
    else
        s->rejects++;
    s->last = *a;
    snprintf(s->reason_detail, sizeof(s->reason_detail), "%s", a->detail);
    snprintf(s->customer_id, sizeof(s->customer_id), "%s", a->customer_id);
}

static void on_outbound(omni_adapter_t *ad, const Omni__V1__OutboundMessage *m, void *user)
{
    seen_t *s = user;
    s->outbound++;
    snprintf(s->outbound_id, sizeof(s->outbound_id), "%s", m->outbound_id);
    snprintf(s->outbound_text, sizeof(s->outbound_text), "%s", m->text);
    omni_adapter_outbound_result(ad, m->outbound_id, 1, 0, "<sent-1@example.jp>", NULL);
}

static omni_adapter_t *adapter(seen_t *s, size_t outbox, const char *ep)
{
    omni_adapter_opts_t o;
    omni_adapter_t *ad;
    omni_adapter_opts_init(&o);
    o.broker = ep;
    o.adapter_id = "sdk-test";
    o.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    o.outbox_max = outbox;
    o.ack_timeout_ms = 100;
    o.backoff_max_ms = 200;
    o.heartbeat_ms = 100;
    o.max_message_bytes = 4096;
    o.on_ack = on_ack;
    o.on_outbound = on_outbound;
    o.user = s;
    cr_assert_eq(omni_adapter_new(&o, &ad), 0);
    return ad;
}

/* Next envelope the fake broker receives (skipping hellos unless wanted), driving the SDK meanwhile. */
static Omni__V1__Envelope *fake_recv(omni_adapter_t *ad, int body, zmq_msg_t *rid, int timeout_ms)
{
    int64_t end = omni_mono_us() + timeout_ms * 1000LL;
    while (omni_mono_us() < end) {
        omni_adapter_poll(ad, 5);
        zmq_msg_t r, b;
        zmq_msg_init(&r);
        zmq_msg_init(&b);
        if (zmq_msg_recv(&r, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&r);
            zmq_msg_close(&b);
            continue;
        }
        zmq_msg_recv(&b, router, 0);
        Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, zmq_msg_size(&b), zmq_msg_data(&b));
        zmq_msg_close(&b);
        cr_assert_not_null(env, "the SDK sent something that is not an Envelope");
        if ((int)env->body_case == body) {
            zmq_msg_init(rid);
            zmq_msg_copy(rid, &r);
            zmq_msg_close(&r);
            return env;
        }
        omni__v1__envelope__free_unpacked(env, NULL);
        zmq_msg_close(&r);
    }
    return NULL;
}

static void fake_send(zmq_msg_t *rid, Omni__V1__Envelope *env)
{
    uint8_t buf[4096];
    size_t len = omni__v1__envelope__pack(env, buf);
    zmq_msg_t r;
    zmq_msg_init(&r);
    zmq_msg_copy(&r, rid);
    zmq_msg_send(&r, router, ZMQ_SNDMORE);
    zmq_send(router, buf, len, 0);
}

static void fake_ack(zmq_msg_t *rid, uint64_t request_id, int accepted, int retryable, int reason)
{
    Omni__V1__Ack ack = OMNI__V1__ACK__INIT;
    ack.request_id = request_id;
    ack.accepted = accepted;
    ack.retryable = retryable;
    ack.reason = reason;
    ack.customer_id = accepted ? "cus_1" : "";
    ack.conversation_id = accepted ? "cnv_1" : "";
    ack.seq = accepted ? 42 : 0;
    ack.detail = accepted ? "" : "because";
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.body_case = OMNI__V1__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    fake_send(rid, &env);
}

static void msg(Omni__V1__InboundMessage *m, const char *pmid)
{
    omni__v1__inbound_message__init(m);
    m->from = "email:a@example.jp";
    m->provider_message_id = (char *)pmid;
    m->text = "hello";
}

Test(sdk, resends_until_acked_then_reports_once)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 10, endpoint);
    Omni__V1__InboundMessage m;
    uint64_t id;
    msg(&m, "");
    cr_assert_eq(omni_adapter_send(ad, &m, &id), 0);
    zmq_msg_t rid;
    Omni__V1__Envelope *e1 = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_INBOUND, &rid, 3000);
    cr_assert_not_null(e1);
    zmq_msg_close(&rid);
    /* No ack: the same message, same request id and provider id, comes again. */
    Omni__V1__Envelope *e2 = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_INBOUND, &rid, 3000);
    cr_assert_not_null(e2, "not resent");
    cr_assert_eq(e2->request_id, id);
    cr_assert_eq(e1->request_id, id);
    cr_assert_str_neq(e1->inbound->provider_message_id, "", "the SDK generates an idempotency key");
    cr_assert_str_eq(e2->inbound->provider_message_id, e1->inbound->provider_message_id);
    cr_assert_str_eq(e2->inbound->adapter_id, "sdk-test");
    cr_assert_eq(e2->inbound->channel, OMNI__V1__CHANNEL__CHANNEL_EMAIL);
    fake_ack(&rid, id, 1, 0, 0);
    fake_ack(&rid, id, 1, 0, 0); /* a late ack for the first copy is ignored */
    zmq_msg_close(&rid);
    cr_assert_eq(omni_adapter_flush(ad, 2000), 0);
    for (int i = 0; i < 10; i++)
        omni_adapter_poll(ad, 5);
    cr_assert_eq(s.acks, 1);
    cr_assert_str_eq(s.customer_id, "cus_1");
    cr_assert_eq(s.last.seq, 42);
    omni__v1__envelope__free_unpacked(e1, NULL);
    omni__v1__envelope__free_unpacked(e2, NULL);
    omni_adapter_destroy(&ad);
    cr_assert_null(ad);
}

Test(sdk, retryable_nack_resends_permanent_nack_reports)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 10, endpoint);
    Omni__V1__InboundMessage m;
    uint64_t id;
    zmq_msg_t rid;
    msg(&m, "p-1");
    cr_assert_eq(omni_adapter_send(ad, &m, &id), 0);
    Omni__V1__Envelope *e = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_INBOUND, &rid, 3000);
    cr_assert_not_null(e);
    fake_ack(&rid, id, 0, 1, OMNI__V1__REASON__REASON_UNAVAILABLE);
    zmq_msg_close(&rid);
    omni__v1__envelope__free_unpacked(e, NULL);
    e = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_INBOUND, &rid, 3000);
    cr_assert_not_null(e, "retryable nack must lead to a resend");
    cr_assert_eq(s.rejects + s.acks, 0, "retryable refusals are not reported");
    fake_ack(&rid, id, 0, 0, OMNI__V1__REASON__REASON_BAD_UTF8);
    zmq_msg_close(&rid);
    omni__v1__envelope__free_unpacked(e, NULL);
    cr_assert_eq(omni_adapter_flush(ad, 2000), 0);
    cr_assert_eq(s.rejects, 1);
    cr_assert_eq(s.last.reason, OMNI__V1__REASON__REASON_BAD_UTF8);
    cr_assert_str_eq(s.reason_detail, "because");
    omni_adapter_destroy(&ad);
}

Test(sdk, full_outbox_is_backpressure_not_loss)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 5, "ipc:///tmp/omni-sdk-test-nobody-listens");
    Omni__V1__InboundMessage m;
    char pmid[16];
    for (int i = 0; i < 5; i++) {
        snprintf(pmid, sizeof(pmid), "bp-%d", i);
        msg(&m, pmid);
        cr_assert_eq(omni_adapter_send(ad, &m, NULL), 0);
    }
    msg(&m, "bp-5");
    cr_assert_eq(omni_adapter_send(ad, &m, NULL), OMNI_EFULL);
    cr_assert_eq(omni_adapter_pending(ad), 5);
    cr_assert_eq(omni_adapter_flush(ad, 200), OMNI_ETIMEDOUT, "flush is bounded");
    cr_assert_eq(omni_adapter_pending(ad), 5, "nothing dropped");
    cr_assert_not(omni_adapter_connected(ad));
    omni_adapter_destroy(&ad);
}

Test(sdk, refuses_bad_messages_locally)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 5, endpoint);
    Omni__V1__InboundMessage m;
    static char big[8192];
    memset(big, 'x', sizeof(big) - 1);
    msg(&m, "big");
    m.text = big;
    cr_assert_eq(omni_adapter_send(ad, &m, NULL), OMNI_ETOOBIG);
    msg(&m, "nofrom");
    m.from = "";
    cr_assert_eq(omni_adapter_send(ad, &m, NULL), OMNI_EINVAL);
    cr_assert_eq(omni_adapter_send(ad, NULL, NULL), OMNI_EINVAL);
    cr_assert_eq(omni_adapter_pending(ad), 0);
    omni_adapter_opts_t o;
    omni_adapter_opts_init(&o);
    omni_adapter_t *bad = NULL;
    cr_assert_eq(omni_adapter_new(&o, &bad), OMNI_EINVAL, "adapter_id is required");
    o.adapter_id = "x";
    o.api_version = 99;
    cr_assert_eq(omni_adapter_new(&o, &bad), OMNI_EINVAL, "unknown API version");
    omni_adapter_destroy(&ad);
}

Test(sdk, hello_heartbeat_and_outbound)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 5, endpoint);
    zmq_msg_t rid;
    Omni__V1__Envelope *h = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_HELLO, &rid, 3000);
    cr_assert_not_null(h, "no hello");
    cr_assert_str_eq(h->hello->adapter_id, "sdk-test");
    cr_assert_eq(h->hello->channel, OMNI__V1__CHANNEL__CHANNEL_EMAIL);
    omni__v1__envelope__free_unpacked(h, NULL);
    cr_assert_not(omni_adapter_connected(ad));

    Omni__V1__Heartbeat hb = OMNI__V1__HEARTBEAT__INIT;
    hb.started_ms = 1;
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.body_case = OMNI__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    fake_send(&rid, &env);

    Omni__V1__OutboundMessage out = OMNI__V1__OUTBOUND_MESSAGE__INIT;
    out.outbound_id = "out-7";
    out.text = "ご連絡ありがとうございます";
    out.to = "email:a@example.jp";
    env.body_case = OMNI__V1__ENVELOPE__BODY_OUTBOUND;
    env.outbound = &out;
    fake_send(&rid, &env);
    zmq_msg_close(&rid);

    Omni__V1__Envelope *r = fake_recv(ad, OMNI__V1__ENVELOPE__BODY_OUTBOUND_RESULT, &rid, 3000);
    cr_assert_not_null(r, "no outbound result");
    zmq_msg_close(&rid);
    cr_assert(omni_adapter_connected(ad));
    cr_assert_eq(s.outbound, 1);
    cr_assert_str_eq(s.outbound_id, "out-7");
    cr_assert_str_eq(s.outbound_text, "ご連絡ありがとうございます");
    cr_assert_str_eq(r->outbound_result->outbound_id, "out-7");
    cr_assert(r->outbound_result->delivered);
    cr_assert_str_eq(r->outbound_result->provider_message_id, "<sent-1@example.jp>");
    omni__v1__envelope__free_unpacked(r, NULL);
    omni_adapter_destroy(&ad);
}

/* Drive the SDK for ms while the fake broker answers hellos with heartbeats of instance
 * `started`; returns how many inbound copies arrived. */
static int live_broker(omni_adapter_t *ad, int64_t started, int ms)
{
    int inbound = 0;
    int64_t end = omni_mono_us() + ms * 1000LL;
    while (omni_mono_us() < end) {
        omni_adapter_poll(ad, 5);
        zmq_msg_t r, b;
        zmq_msg_init(&r);
        zmq_msg_init(&b);
        if (zmq_msg_recv(&r, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&r);
            zmq_msg_close(&b);
            continue;
        }
        zmq_msg_recv(&b, router, 0);
        Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, zmq_msg_size(&b), zmq_msg_data(&b));
        cr_assert_not_null(env);
        if (env->body_case == OMNI__V1__ENVELOPE__BODY_INBOUND)
            inbound++;
        if (env->body_case == OMNI__V1__ENVELOPE__BODY_HELLO) {
            Omni__V1__Heartbeat hb = OMNI__V1__HEARTBEAT__INIT;
            hb.started_ms = started;
            Omni__V1__Envelope out = OMNI__V1__ENVELOPE__INIT;
            out.body_case = OMNI__V1__ENVELOPE__BODY_HEARTBEAT;
            out.heartbeat = &hb;
            fake_send(&r, &out);
        }
        omni__v1__envelope__free_unpacked(env, NULL);
        zmq_msg_close(&r);
        zmq_msg_close(&b);
    }
    return inbound;
}

Test(sdk, live_broker_is_not_flooded_but_a_restarted_one_gets_everything_again)
{
    seen_t s = {0};
    omni_adapter_t *ad = adapter(&s, 10, endpoint); /* ack timeout 100 ms */
    Omni__V1__InboundMessage m;
    live_broker(ad, 1, 400); /* connected first */
    cr_assert(omni_adapter_connected(ad));
    msg(&m, "slow-1");
    cr_assert_eq(omni_adapter_send(ad, &m, NULL), 0);
    cr_assert_eq(live_broker(ad, 1, 1000), 1, "resent to a live broker that is just slow");
    cr_assert_geq(live_broker(ad, 2, 500), 1, "a restarted broker (new started_ms) must get it again");
    omni_adapter_destroy(&ad);
}
