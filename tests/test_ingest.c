/* Broker ingest end to end: real redis-server, real omni-broker, the SDK and raw ZeroMQ peers.
 * Acks only after the append, duplicates, every rejection with its counter, garbage frames. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>
#include <omni/v1/message.pb-c.h>

#include "harness.h"

static h_env_t H;
static void setup(void) { h_setup(&H); }
static void teardown(void) { h_teardown(&H); }

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 60);

Test(ingest, ack_means_appended)
{
    omni_adapter_t *ad = h_adapter(&H, "t-email", OMNI__V1__CHANNEL__CHANNEL_EMAIL, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_EMAIL, "<a1@mail.example.jp>", "email: Taro.Yamada@Example.JP ", NULL,
          "ログインできません。アカウントがロックされました。");
    m.subject = "アカウントロック";
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    cr_assert(ack.accepted);
    cr_assert_not(ack.duplicate);
    cr_assert_str_neq(ack.customer_id, "");
    cr_assert_str_neq(ack.conversation_id, "");

    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    /* The conversation is queued in the same script call that opens it. */
    cr_assert_eq(n, 3, "conversation_opened + queued + message, got %zu", n);
    cr_assert_eq(ev[0]->kind_case, OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED);
    cr_assert_eq(ev[1]->kind_case, OMNI__V1__STREAM_EVENT__KIND_QUEUED);
    cr_assert_eq(ev[2]->kind_case, OMNI__V1__STREAM_EVENT__KIND_MESSAGE);
    cr_assert_eq(ev[2]->seq, ack.seq);
    cr_assert(ev[0]->seq < ev[1]->seq && ev[1]->seq < ev[2]->seq);
    cr_assert_str_eq(ev[2]->customer_id, ack.customer_id);
    cr_assert_str_eq(ev[2]->conversation_id, ack.conversation_id);
    cr_assert_eq(ev[2]->channel, OMNI__V1__CHANNEL__CHANNEL_EMAIL);
    cr_assert_str_eq(ev[1]->queued->queue, "default", "no config: the one default queue");
    cr_assert_str_eq(ev[1]->queued->reply_to, "email:taro.yamada@example.jp");
    const Omni__V1__InboundMessage *in = ev[2]->message->inbound;
    cr_assert_str_eq(in->from, "email:taro.yamada@example.jp", "identities are stored normalized");
    cr_assert_str_eq(in->text, "ログインできません。アカウントがロックされました。");
    cr_assert_str_eq(in->subject, "アカウントロック");
    cr_assert_str_eq(in->adapter_id, "t-email", "the SDK fills adapter_id");
    cr_assert(in->received_ms > 0);
    h_events_free(ev, n);
    omni_adapter_destroy(&ad);
    cr_assert_null(ad);
}

Test(ingest, duplicate_provider_id_is_acked_with_original_ids)
{
    omni_adapter_t *ad = h_adapter(&H, "t-sns", OMNI__V1__CHANNEL__CHANNEL_SNS, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t a1, a2, a3;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_SNS, "evt-01HX", "line:U4af4980629aaaaaaaaaaaaaaaaaaaaaa", NULL, "解約したい");
    cr_assert_eq(h_send(ad, &m, &a1, 5000), 0);
    cr_assert_eq(h_send(ad, &m, &a2, 5000), 0);
    cr_assert(a1.accepted && !a1.duplicate);
    cr_assert(a2.accepted && a2.duplicate);
    cr_assert_str_eq(a2.customer_id, a1.customer_id);
    cr_assert_str_eq(a2.conversation_id, a1.conversation_id);
    cr_assert_eq(a2.seq, a1.seq);
    /* Same provider id on another channel is another message. */
    m.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    m.provider = "";
    m.from = "chat:visitor-1";
    cr_assert_eq(h_send(ad, &m, &a3, 5000), 0);
    cr_assert(a3.accepted && !a3.duplicate);

    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), messages = 0;
    for (size_t i = 0; i < n; i++)
        messages += ev[i]->kind_case == OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
    cr_assert_eq(messages, 2, "no second stream event for a duplicate");
    h_events_free(ev, n);
    cr_assert_eq(h_counter(&H, "messages_duplicate"), 1);
    omni_adapter_destroy(&ad);
}

typedef struct {
    const char *name;
    const char *counter;
    int reason;
} reject_case_t;

/* Send a message, expect a permanent rejection with this reason, counted under `counter`. */
static void expect_reject(omni_adapter_t *ad, const Omni__V1__InboundMessage *m, int reason, const char *counter)
{
    h_ack_t ack;
    long long before = h_counter(&H, counter);
    cr_assert_eq(h_send(ad, m, &ack, 5000), 0, "no answer for a bad message (%s)", counter);
    cr_assert_not(ack.accepted, "%s accepted", counter);
    cr_assert_eq(ack.reason, reason, "%s: reason %d, want %d (%s)", counter, ack.reason, reason, ack.detail);
    cr_assert_str_neq(ack.detail, "", "a rejection says why");
    cr_assert_eq(h_counter(&H, counter), before + 1, "counter %s", counter);
}

Test(ingest, bad_messages_are_nacked_and_counted)
{
    omni_adapter_t *ad = h_adapter(&H, "t-bad", OMNI__V1__CHANNEL__CHANNEL_CHAT, NULL, NULL);
    Omni__V1__InboundMessage m;

    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "b1", "fax:0312345678", NULL, "hi");
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_BAD_IDENTITY, "rejected_bad_identity");

    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "b2", "chat:v1", NULL, "bad \xC0\xAF overlong");
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_BAD_UTF8, "rejected_bad_utf8");

    h_msg(&m, (Omni__V1__Channel)9, "b3", "chat:v1", NULL, "hi");
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_UNKNOWN_CHANNEL, "rejected_unknown_channel");

    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "b4", "chat:v1", NULL, "hi");
    m.subject = "\xED\xA0\x80 surrogate";
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_BAD_UTF8, "rejected_bad_utf8");

    static char big[300 * 1024];
    memset(big, 'a', sizeof(big) - 1);
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "b5", "chat:v1", NULL, big);
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_TOO_LARGE, "rejected_too_large");

    const char *many[40];
    char ids[40][32];
    for (int i = 0; i < 39; i++) {
        snprintf(ids[i], sizeof(ids[i]), "chat:v%d", i);
        many[i] = ids[i];
    }
    many[39] = NULL;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "b6", "chat:v1", many, "hi");
    expect_reject(ad, &m, OMNI__V1__REASON__REASON_TOO_MANY, "rejected_too_many");

    /* None of them reached the stream; the broker still serves. */
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    cr_assert_eq(n, 0);
    h_events_free(ev, n);
    h_ack_t ack;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "ok1", "chat:v1", NULL, "hello");
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    cr_assert(ack.accepted);
    omni_adapter_destroy(&ad);
}

/* A raw DEALER that speaks no protocol: garbage, empty, multi-part and oversized frames. */
static Omni__V1__Ack *raw_roundtrip(void *s, const void *const *parts, const size_t *lens, int nparts)
{
    for (int i = 0; i < nparts; i++)
        zmq_send(s, parts[i], lens[i], i + 1 < nparts ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 5000) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, s, 0);
    Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (!env || env->body_case != OMNI__V1__ENVELOPE__BODY_ACK)
        return NULL;
    Omni__V1__Ack *ack = env->ack;
    env->ack = NULL;
    env->body_case = OMNI__V1__ENVELOPE__BODY__NOT_SET;
    omni__v1__envelope__free_unpacked(env, NULL);
    return ack;
}

Test(ingest, garbage_frames_get_a_nack_and_a_counter)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_connect(s, H.ingress), 0);

    static const char junk[] = "\xff\xff\xff\xff garbage that is not protobuf";
    static char huge[2 * 1024 * 1024];
    memset(huge, 0x0a, sizeof(huge));
    struct {
        const void *parts[3];
        size_t lens[3];
        int n;
        int reason;
    } cases[] = {
        {{junk}, {sizeof(junk) - 1}, 1, OMNI__V1__REASON__REASON_MALFORMED},
        {{junk, junk}, {4, 4}, 2, OMNI__V1__REASON__REASON_MALFORMED},
        {{huge}, {sizeof(huge)}, 1, OMNI__V1__REASON__REASON_TOO_LARGE},
        {{""}, {0}, 1, OMNI__V1__REASON__REASON_MALFORMED}, /* an empty Envelope has no body */
    };
    long long malformed = h_counter(&H, "rejected_malformed");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Omni__V1__Ack *ack = raw_roundtrip(s, cases[i].parts, cases[i].lens, cases[i].n);
        cr_assert_not_null(ack, "case %zu: no nack", i);
        cr_assert_not(ack->accepted);
        cr_assert_not(ack->retryable);
        cr_assert_eq(ack->reason, cases[i].reason, "case %zu: reason %d", i, ack->reason);
        omni__v1__ack__free_unpacked(ack, NULL);
    }
    cr_assert_eq(h_counter(&H, "rejected_malformed"), malformed + 3);
    cr_assert_eq(h_counter(&H, "rejected_too_large"), 1);

    /* A real Envelope above the frame limit is not decoded, but its nack still names the
     * request, so the sender can drop it instead of resending it forever. */
    static char text[1100 * 1024];
    memset(text, 'x', sizeof(text) - 1);
    Omni__V1__InboundMessage bm;
    h_msg(&bm, OMNI__V1__CHANNEL__CHANNEL_CHAT, "big-1", "chat:v1", NULL, text);
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.request_id = 77;
    env.body_case = OMNI__V1__ENVELOPE__BODY_INBOUND;
    env.inbound = &bm;
    size_t blen = omni__v1__envelope__get_packed_size(&env);
    uint8_t *bbuf = malloc(blen);
    omni__v1__envelope__pack(&env, bbuf);
    const void *bparts[] = {bbuf};
    Omni__V1__Ack *big = raw_roundtrip(s, bparts, &blen, 1);
    cr_assert_not_null(big);
    cr_assert_eq(big->request_id, 77);
    cr_assert_eq(big->reason, OMNI__V1__REASON__REASON_TOO_LARGE);
    omni__v1__ack__free_unpacked(big, NULL);
    free(bbuf);
    zmq_close(s);
    zmq_ctx_term(ctx);

    /* Still serving. */
    omni_adapter_t *ad = h_adapter(&H, "t-after", OMNI__V1__CHANNEL__CHANNEL_PHONE, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_PHONE, "call-1", "phone:090-1234-5678", NULL, "(voice call)");
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    cr_assert(ack.accepted);
    omni_adapter_destroy(&ad);
}

Test(ingest, events_are_published_in_seq_order)
{
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    cr_assert_eq(zmq_connect(sub, H.stream), 0);
    omni_adapter_t *ad = h_adapter(&H, "t-pub", OMNI__V1__CHANNEL__CHANNEL_CHAT, NULL, NULL);

    /* A subscription takes effect asynchronously: send probes until one is heard, then count. */
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    char pmid[32];
    int heard = 0;
    for (int i = 0; i < 50 && !heard; i++) {
        snprintf(pmid, sizeof(pmid), "probe-%d", i);
        h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, pmid, "chat:probe", NULL, "probe");
        cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        heard = zmq_poll(&it, 1, 100) > 0;
    }
    cr_assert(heard, "no event on the PUB endpoint");
    zmq_msg_t f;
    zmq_msg_init(&f);
    while (zmq_msg_recv(&f, sub, ZMQ_DONTWAIT) >= 0)
        ;
    uint64_t last = ack.seq, probe_seq = ack.seq;
    for (int i = 0; i < 20; i++) {
        snprintf(pmid, sizeof(pmid), "m-%d", i);
        h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, pmid, "chat:probe", NULL, "hello");
        cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    }
    /* Events of the probes may still be on their way: skip what is not newer than them. */
    for (int i = 0; i < 20;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        cr_assert(zmq_msg_recv(&topic, sub, 0) >= 0);
        cr_assert(zmq_msg_more(&topic));
        cr_assert(zmq_msg_recv(&body, sub, 0) >= 0);
        cr_assert_eq(zmq_msg_size(&topic), 4);
        cr_assert_eq(memcmp(zmq_msg_data(&topic), "chat", 4), 0);
        Omni__V1__StreamEvent *ev = omni__v1__stream_event__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        cr_assert_not_null(ev);
        if (ev->seq <= probe_seq) {
            omni__v1__stream_event__free_unpacked(ev, NULL);
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            continue;
        }
        i++;
        cr_assert_eq(ev->seq, last + 1, "seq %llu after %llu", (unsigned long long)ev->seq, (unsigned long long)last);
        /* What subscribers hear is byte for byte what the stream holds. */
        redisContext *rc = h_redis(&H);
        redisReply *r = redisCommand(rc, "XRANGE omni:{default}:stream %llu-0 %llu-0", (unsigned long long)ev->seq,
                                     (unsigned long long)ev->seq);
        cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
        redisReply *v = r->element[0]->element[1]->element[1];
        cr_assert_eq(v->len, zmq_msg_size(&body));
        cr_assert_eq(memcmp(v->str, zmq_msg_data(&body), v->len), 0, "published bytes differ from the stored ones");
        freeReplyObject(r);
        redisFree(rc);
        last = ev->seq;
        omni__v1__stream_event__free_unpacked(ev, NULL);
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
    zmq_msg_close(&f);
    omni_adapter_destroy(&ad);
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

/* GET path on the broker's HTTP port (read from its start-up log line); returns the status. */
static int http_get(const char *path, char *body, size_t bodylen)
{
    char log[256], line[512];
    int port = 0;
    snprintf(log, sizeof(log), "%s/broker.log", H.dir);
    FILE *f = fopen(log, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "http port "))
            port = atoi(strstr(line, "http port ") + 10);
    fclose(f);
    cr_assert_gt(port, 0, "no http port in the broker log");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    dprintf(s, "GET %s HTTP/1.0\r\n\r\n", path);
    size_t n = 0;
    ssize_t r;
    while (n < bodylen - 1 && (r = read(s, body + n, bodylen - 1 - n)) > 0)
        n += (size_t)r;
    body[n] = 0;
    close(s);
    return atoi(body + 9);
}

Test(ingest, healthz_and_metrics)
{
    static char body[65536];
    cr_assert_eq(http_get("/healthz", body, sizeof(body)), 200, "%s", body);
    omni_adapter_t *ad = h_adapter(&H, "t-http", OMNI__V1__CHANNEL__CHANNEL_CHAT, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "h1", "chat:v1", NULL, "hi");
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    omni_adapter_destroy(&ad);
    cr_assert_eq(http_get("/metrics", body, sizeof(body)), 200);
    cr_assert(strstr(body, "\nomni_messages_accepted 1\n"), "%s", body);
    cr_assert(strstr(body, "\nomni_stream_last_seq 3\n"), "%s", body); /* opened, queued, message */
    cr_assert_eq(http_get("/nope", body, sizeof(body)), 404);
    h_redis_stop(&H, SIGKILL);
    int status = 0;
    for (int i = 0; i < 100 && status != 503; i++) {
        status = http_get("/healthz", body, sizeof(body));
        if (status != 503)
            usleep(20000); /* the broker notices the lost connection on its next read */
    }
    cr_assert_eq(status, 503, "healthz must fail while Redis is down");
}

/* SIGTERM: the broker finishes, frees everything and exits 0 (in the sanitizer build a
 * leak would make that exit status non-zero). */
Test(ingest, sigterm_is_a_clean_exit)
{
    omni_adapter_t *ad = h_adapter(&H, "t-term", OMNI__V1__CHANNEL__CHANNEL_EMAIL, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    const char *also[] = {"phone:090-2222-3333", NULL};
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_EMAIL, "<t1@x>", "email:a@example.jp", also, "クレジットカードの不正利用");
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0);
    cr_assert(ack.accepted);
    char out[4096];
    const char *args[] = {"customer", "phone:09022223333", "--json", NULL};
    cr_assert_eq(h_omnictl(&H, out, sizeof(out), args), 0);
    omni_adapter_destroy(&ad);
    cr_assert_eq(h_broker_stop(&H, SIGTERM), 0, "exit status after SIGTERM");
}
