/* Routing end to end: real redis-server, omni-broker and agents on the agents endpoint (a raw
 * protocol client here, `omnictl agent` processes in the load tests). No sleeps: every wait polls. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>
#include <omni/v1/agent.pb-c.h>

#include "harness.h"

static h_env_t H;

static const char *CONFIG =
    "routing:\n"
    "  agents:\n"
    "    heartbeat_timeout_ms: 1500\n"
    "    max_missed_offers: 2\n"
    "    reclaim_ms: 3000\n"
    "  default_queue: general\n"
    "  calendars:\n"
    "    never:\n"
    "      timezone: Asia/Tokyo\n"
    "  queues:\n"
    "    - name: general\n"
    "      offer_timeout_ms: 400\n"
    "    - name: account\n"
    "      skills: \"account>=3\"\n"
    "      offer_timeout_ms: 400\n"
    "    - name: billing\n"
    "      skills: billing\n"
    "      offer_timeout_ms: 400\n"
    "    - name: aftercare\n"
    "      offer_timeout_ms: 400\n"
    "      wrap_up_ms: 1500\n"
    "    - name: closed\n"
    "      hours: never\n"
    "      after_hours: {action: reject, message: \"営業時間外です\"}\n"
    "  rules:\n"
    "    - {name: account, queue: account, keywords: [\"パスワード\", \"ロックされ\", \"password\"]}\n"
    "    - {name: billing, queue: billing, keywords: [\"請求\", \"返金\"]}\n"
    "    - {name: night, queue: closed, keywords: [\"深夜\"]}\n"
    "    - {name: care, queue: aftercare, keywords: [\"アフターケア\"]}\n"
    "    - {name: fraud, boost: true, priority_ms: 600000, keywords: [\"不正利用\"]}\n";

static void setup(void) { h_setup_with_config(&H, CONFIG, NULL, NULL, NULL); }
static void teardown(void) { h_teardown(&H); }

TestSuite(routing, .init = setup, .fini = teardown, .timeout = 300);

/* ---- a raw agent: one DEALER speaking AgentEnvelopes ---- */

typedef struct {
    void *ctx, *sock;
    uint64_t req;
    char id[64];
    int64_t next_hb_us;
    int logged_in;
    Omni__V1__AgentEnvelope *stash[512]; /* received while waiting for something else */
    size_t n_stash;
} ra_t;

static uint64_t ra_send(ra_t *a, Omni__V1__AgentEnvelope *env);

/* Heartbeats go out only while the test waits on this agent: an agent the test ignores falls
 * silent, which is how the tests take one offline without killing anything. */
static void ra_heartbeat(ra_t *a)
{
    if (!a->logged_in || omni_mono_us() < a->next_hb_us)
        return;
    Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    ra_send(a, &env);
    a->next_hb_us = omni_mono_us() + 300 * 1000;
}

static void ra_open(ra_t *a, const char *id)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->ctx = zmq_ctx_new();
    a->sock = zmq_socket(a->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_connect(a->sock, H.agents), 0);
}

static void ra_close(ra_t *a)
{
    for (size_t i = 0; i < a->n_stash; i++)
        omni__v1__agent_envelope__free_unpacked(a->stash[i], NULL);
    zmq_close(a->sock);
    zmq_ctx_term(a->ctx);
}

static uint64_t ra_send(ra_t *a, Omni__V1__AgentEnvelope *env)
{
    env->request_id = ++a->req;
    size_t len = omni__v1__agent_envelope__get_packed_size(env);
    uint8_t *buf = malloc(len + 1);
    omni__v1__agent_envelope__pack(env, buf);
    cr_assert_eq(zmq_send(a->sock, buf, len, 0), (int)len);
    free(buf);
    return env->request_id;
}

static void ra_send_raw(ra_t *a, const void *buf, size_t len) { zmq_send(a->sock, buf, len, 0); }

/* Next envelope of the given kind, or NULL. Others are kept for later calls (heartbeat
 * answers are dropped), so nothing the broker sent is missed by asking in another order. */
static Omni__V1__AgentEnvelope *ra_expect(ra_t *a, Omni__V1__AgentEnvelope__BodyCase kind, int timeout_ms)
{
    for (size_t i = 0; i < a->n_stash; i++)
        if (a->stash[i]->body_case == kind) {
            Omni__V1__AgentEnvelope *env = a->stash[i];
            memmove(&a->stash[i], &a->stash[i + 1], (a->n_stash - i - 1) * sizeof(a->stash[0]));
            a->n_stash--;
            return env;
        }
    int64_t end = omni_mono_us() + timeout_ms * 1000LL;
    for (;;) {
        int left = (int)((end - omni_mono_us()) / 1000);
        if (left <= 0)
            return NULL;
        ra_heartbeat(a);
        zmq_pollitem_t it = {a->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, left < 100 ? left : 100) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->sock, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        Omni__V1__AgentEnvelope *env = omni__v1__agent_envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        cr_assert_not_null(env, "broker sent something that is not an AgentEnvelope");
        if (env->body_case == kind)
            return env;
        if (env->body_case != OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT && a->n_stash < 512)
            a->stash[a->n_stash++] = env;
        else
            omni__v1__agent_envelope__free_unpacked(env, NULL);
    }
}

static void ra_free(Omni__V1__AgentEnvelope *env) { omni__v1__agent_envelope__free_unpacked(env, NULL); }

static void ra_login(ra_t *a, const char *skill, int level, int chat_slots)
{
    Omni__V1__Login l = OMNI__V1__LOGIN__INIT;
    Omni__V1__SkillLevel sk = OMNI__V1__SKILL_LEVEL__INIT, *skp = &sk;
    Omni__V1__ChannelSlots cs = OMNI__V1__CHANNEL_SLOTS__INIT, *csp = &cs;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    l.agent_id = a->id;
    if (skill) {
        sk.name = (char *)skill;
        sk.level = (uint32_t)level;
        l.skills = &skp;
        l.n_skills = 1;
    }
    if (chat_slots) {
        cs.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
        cs.slots = (uint32_t)chat_slots;
        l.capacity = &csp;
        l.n_capacity = 1;
    }
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN;
    env.login = &l;
    ra_send(a, &env);
    Omni__V1__AgentEnvelope *ok = ra_expect(a, OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK, 5000);
    cr_assert_not_null(ok, "%s: no LoginOk", a->id);
    ra_free(ok);
    a->logged_in = 1;
}

static uint64_t ra_simple(ra_t *a, Omni__V1__AgentEnvelope__BodyCase kind, void *body)
{
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.body_case = kind;
    switch (kind) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT: env.accept = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REJECT: env.reject = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REPLY: env.reply = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE: env.close = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER: env.transfer = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_SET_STATE: env.set_state = body; break;
    default: cr_assert_fail("ra_simple: kind %d", kind);
    }
    return ra_send(a, &env);
}

static void ra_accept(ra_t *a, uint64_t offer_id)
{
    Omni__V1__Accept ac = OMNI__V1__ACCEPT__INIT;
    ac.offer_id = offer_id;
    ra_simple(a, OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT, &ac);
}

/* Offer -> accept -> Assignment; returns the assignment (caller frees). */
static Omni__V1__AgentEnvelope *ra_take(ra_t *a, int timeout_ms)
{
    Omni__V1__AgentEnvelope *of = ra_expect(a, OMNI__V1__AGENT_ENVELOPE__BODY_OFFER, timeout_ms);
    cr_assert_not_null(of, "%s: no offer", a->id);
    ra_accept(a, of->offer->offer_id);
    ra_free(of);
    Omni__V1__AgentEnvelope *as = ra_expect(a, OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT, 5000);
    cr_assert_not_null(as, "%s: accepted, but no assignment", a->id);
    return as;
}

static const char *error_code(ra_t *a)
{
    static char code[64];
    Omni__V1__AgentEnvelope *e = ra_expect(a, OMNI__V1__AGENT_ENVELOPE__BODY_ERROR, 3000);
    cr_assert_not_null(e, "%s: expected an AgentError", a->id);
    snprintf(code, sizeof(code), "%s", e->error->code);
    ra_free(e);
    return code;
}

/* ---- customers ---- */

static omni_adapter_t *chat;
static int outbound_seen;
static char outbound_text[256], outbound_conv[64];

static void on_outbound(omni_adapter_t *ad, const Omni__V1__OutboundMessage *m, void *user)
{
    (void)user;
    outbound_seen++;
    snprintf(outbound_text, sizeof(outbound_text), "%s", m->text);
    snprintf(outbound_conv, sizeof(outbound_conv), "%s", m->conversation_id);
    omni_adapter_outbound_result(ad, m->outbound_id, 1, 0, "prov-1", NULL);
}

static void open_chat(void)
{
    omni_adapter_opts_t o;
    h_adapter_opts(&o, &H, "t-chat", OMNI__V1__CHANNEL__CHANNEL_CHAT);
    o.on_outbound = on_outbound;
    cr_assert_eq(omni_adapter_new(&o, &chat), 0);
}

static void say(const char *pmid, const char *from, const char *text, h_ack_t *ack)
{
    Omni__V1__InboundMessage m;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, pmid, from, NULL, text);
    cr_assert_eq(h_send(chat, &m, ack, 5000), 0, "no ack for %s", pmid);
    cr_assert(ack->accepted, "%s rejected: %s", pmid, ack->detail);
}

/* Kinds of the stream events of one conversation, in seq order, space-separated. */
static void kinds_of(const char *conv, char *out, size_t outlen)
{
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), off = 0;
    static const char *names[] = {[10] = "message", [11] = "customer_merged", [12] = "conversation_opened",
                                  [13] = "queued", [14] = "offered", [15] = "assigned", [16] = "agent_message",
                                  [17] = "transferred", [18] = "closed", [19] = "offer_ended"};
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ev[i]->conversation_id, conv) == 0 && ev[i]->kind_case >= 10 && ev[i]->kind_case <= 19)
            off += (size_t)snprintf(out + off, off < outlen ? outlen - off : 0, "%s%s", off ? " " : "",
                                    names[ev[i]->kind_case]);
    h_events_free(ev, n);
}

/* Polls the adapter (outbound delivery) while waiting for an envelope. */
static Omni__V1__AgentEnvelope *ra_expect_pumping(ra_t *a, Omni__V1__AgentEnvelope__BodyCase kind)
{
    for (int i = 0; i < 100; i++) {
        omni_adapter_poll(chat, 20);
        Omni__V1__AgentEnvelope *e = ra_expect(a, kind, 30);
        if (e)
            return e;
    }
    return NULL;
}

Test(routing, offer_accept_reply_close_through_the_channel)
{
    ra_t a;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "taro");
    ra_login(&a, "account", 4, 0);
    say("r-1", "chat:visitor-1", "パスワードがロックされました", &ack);

    Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, ack.conversation_id);
    cr_assert_str_eq(as->assignment->queue, "account");
    cr_assert_eq(as->assignment->n_history, 1, "history holds the customer's message");
    cr_assert_str_eq(as->assignment->history[0]->message->inbound->text, "パスワードがロックされました");
    ra_free(as);

    Omni__V1__Reply rp = OMNI__V1__REPLY__INIT;
    rp.conversation_id = ack.conversation_id;
    rp.text = "再設定のリンクをお送りしました";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &rp);
    Omni__V1__AgentEnvelope *ok = ra_expect_pumping(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OK);
    cr_assert_not_null(ok, "reply not confirmed");
    cr_assert(ok->ok->outbound_id[0] && ok->ok->seq > 0);
    ra_free(ok);
    for (int i = 0; i < 100 && !outbound_seen; i++)
        omni_adapter_poll(chat, 20);
    cr_assert_eq(outbound_seen, 1, "the chat adapter got the reply");
    cr_assert_str_eq(outbound_text, "再設定のリンクをお送りしました");
    cr_assert_str_eq(outbound_conv, ack.conversation_id);

    /* A customer message on an assigned conversation goes straight to its agent. */
    say("r-2", "chat:visitor-1", "ありがとうございます", &ack);
    Omni__V1__AgentEnvelope *ev = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_EVENT, 3000);
    cr_assert_not_null(ev);
    cr_assert_str_eq(ev->event->event->message->inbound->text, "ありがとうございます");
    ra_free(ev);

    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = ack.conversation_id;
    cl.disposition = "resolved";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
    ok = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OK, 3000);
    cr_assert_not_null(ok, "close not confirmed");
    ra_free(ok);

    char kinds[512];
    kinds_of(ack.conversation_id, kinds, sizeof(kinds));
    cr_assert_str_eq(kinds, "conversation_opened queued message offered assigned agent_message message closed");

    /* After the close, the next message opens a new conversation, queued again. */
    h_ack_t ack2;
    say("r-3", "chat:visitor-1", "もう一つ質問があります", &ack2);
    cr_assert_str_neq(ack2.conversation_id, ack.conversation_id);
    as = ra_take(&a, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, ack2.conversation_id);
    cr_assert_str_eq(as->assignment->queue, "general");
    cr_assert_geq(as->assignment->n_history, 3, "history crosses conversations");
    ra_free(as);
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, bad_agent_input_is_refused_and_counted)
{
    ra_t a, b;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "hanako");
    Omni__V1__Accept ac = OMNI__V1__ACCEPT__INIT;
    ac.offer_id = 12345;
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT, &ac);
    cr_assert_str_eq(error_code(&a), "not_logged_in");
    ra_send_raw(&a, "\xff\xff\xff garbage", 12);
    cr_assert_str_eq(error_code(&a), "bad_request");

    ra_login(&a, NULL, 0, 0);
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT, &ac);
    cr_assert_str_eq(error_code(&a), "unknown_offer");
    Omni__V1__Reply rp = OMNI__V1__REPLY__INIT;
    rp.conversation_id = "cnv_999";
    rp.text = "hello";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &rp);
    cr_assert_str_eq(error_code(&a), "not_assigned");

    say("b-1", "chat:visitor-2", "こんにちは", &ack);
    Omni__V1__AgentEnvelope *of = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OFFER, 5000);
    cr_assert_not_null(of);
    uint64_t offer = of->offer->offer_id;
    ra_free(of);
    /* Someone else's offer id is not theirs to accept. */
    ra_open(&b, "jiro");
    ra_login(&b, NULL, 0, 0);
    ra_accept(&b, offer);
    cr_assert_str_eq(error_code(&b), "unknown_offer");
    ra_accept(&a, offer);
    Omni__V1__AgentEnvelope *as = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT, 5000);
    cr_assert_not_null(as);
    ra_free(as);
    ra_accept(&a, offer); /* twice */
    cr_assert_str_eq(error_code(&a), "unknown_offer");
    /* The other agent cannot reply to or close it. */
    rp.conversation_id = ack.conversation_id;
    ra_simple(&b, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &rp);
    cr_assert_str_eq(error_code(&b), "not_assigned");
    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = ack.conversation_id;
    ra_simple(&b, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
    cr_assert_str_eq(error_code(&b), "not_assigned");
    cr_assert_geq(h_counter(&H, "agent_errors"), 8);

    /* None of that changed anything: the conversation is still hanako's. */
    char out[8192];
    const char *args[] = {"agents", "--json", NULL};
    cr_assert_eq(h_omnictl(&H, out, sizeof(out), args), 0);
    cr_assert(strstr(out, ack.conversation_id), "agents shows the conversation: %s", out);
    ra_close(&a);
    ra_close(&b);
    omni_adapter_destroy(&chat);
}

static Omni__V1__StreamEvent *last_event_of(const char *conv, int kind, Omni__V1__StreamEvent ***all, size_t *n)
{
    Omni__V1__StreamEvent *found = NULL;
    *n = h_events(&H, all);
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*all)[i]->conversation_id, conv) == 0 && (int)(*all)[i]->kind_case == kind)
            found = (*all)[i];
    return found;
}

Test(routing, silent_agent_loses_its_conversation_to_the_front_with_its_wait)
{
    ra_t a, b;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "silent");
    ra_login(&a, NULL, 0, 0);
    say("s-1", "chat:visitor-3", "注文について", &ack);
    Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
    ra_free(as);
    /* b logs in with one slot and waits; a says nothing from now on. */
    ra_open(&b, "backup");
    ra_login(&b, NULL, 0, 1);
    as = ra_take(&b, 10000);
    cr_assert_str_eq(as->assignment->conversation_id, ack.conversation_id);
    ra_free(as);

    Omni__V1__StreamEvent **ev;
    size_t n;
    Omni__V1__StreamEvent *q = last_event_of(ack.conversation_id, OMNI__V1__STREAM_EVENT__KIND_QUEUED, &ev, &n);
    cr_assert_not_null(q);
    cr_assert(q->queued->requeued);
    cr_assert_str_eq(q->queued->reason, "agent_offline");
    Omni__V1__StreamEvent *first = NULL;
    for (size_t i = 0; i < n && !first; i++)
        if (strcmp(ev[i]->conversation_id, ack.conversation_id) == 0 &&
            ev[i]->kind_case == OMNI__V1__STREAM_EVENT__KIND_QUEUED)
            first = ev[i];
    cr_assert_eq(q->queued->enqueued_ms, first->queued->enqueued_ms, "the requeue keeps the original wait");
    h_events_free(ev, n);
    cr_assert_geq(h_counter(&H, "agent_timeouts"), 1);
    cr_assert_geq(h_counter(&H, "requeued"), 1);
    ra_close(&a);
    ra_close(&b);
    omni_adapter_destroy(&chat);
}

Test(routing, unanswered_offers_are_revoked_and_the_agent_paused)
{
    ra_t a, b;
    h_ack_t k1, k2;
    open_chat();
    ra_open(&a, "sleepy");
    ra_login(&a, NULL, 0, 0);
    say("p-1", "chat:visitor-4", "一件目", &k1);
    say("p-2", "chat:visitor-5", "二件目", &k2);
    /* Two offers, neither answered: two revokes, then the broker sets the agent away. */
    for (int i = 0; i < 2; i++) {
        Omni__V1__AgentEnvelope *rv = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_REVOKE, 5000);
        cr_assert_not_null(rv, "offer %d not revoked", i);
        ra_free(rv);
    }
    Omni__V1__AgentEnvelope *st = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_STATUS, 5000);
    cr_assert_not_null(st);
    cr_assert_eq(st->status->state, OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY);
    cr_assert_str_eq(st->status->reason, "missed_offers");
    ra_free(st);
    char out[8192];
    const char *args[] = {"agents", "--json", NULL};
    cr_assert_eq(h_omnictl(&H, out, sizeof(out), args), 0);
    cr_assert(strstr(out, "\"away\""), "%s", out);
    /* Both go to the next agent, oldest first. */
    ra_open(&b, "awake");
    ra_login(&b, NULL, 0, 0);
    Omni__V1__AgentEnvelope *as = ra_take(&b, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, k1.conversation_id);
    ra_free(as);
    as = ra_take(&b, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, k2.conversation_id);
    ra_free(as);
    cr_assert_geq(h_counter(&H, "offers_timed_out"), 2);
    cr_assert_eq(h_counter(&H, "auto_paused"), 1);
    ra_close(&a);
    ra_close(&b);
    omni_adapter_destroy(&chat);
}

Test(routing, transfer_to_another_queue_reaches_a_skilled_agent)
{
    ra_t a, b;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "front");
    ra_login(&a, "account", 5, 0);
    ra_open(&b, "billing-1");
    ra_login(&b, "billing", 2, 0);
    say("t-1", "chat:visitor-6", "パスワードと請求について", &ack);
    Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
    cr_assert_str_eq(as->assignment->queue, "account");
    ra_free(as);
    Omni__V1__Transfer tr = OMNI__V1__TRANSFER__INIT;
    tr.conversation_id = ack.conversation_id;
    tr.queue = "nowhere";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER, &tr);
    cr_assert_str_eq(error_code(&a), "unknown_queue");
    tr.queue = "billing";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER, &tr);
    Omni__V1__AgentEnvelope *ok = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OK, 3000);
    cr_assert_not_null(ok);
    ra_free(ok);
    as = ra_take(&b, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, ack.conversation_id);
    cr_assert_str_eq(as->assignment->queue, "billing");
    ra_free(as);
    /* And back to one named agent, who need not have the queue's skills. */
    tr.queue = "";
    tr.agent_id = "nobody";
    ra_simple(&b, OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER, &tr);
    cr_assert_str_eq(error_code(&b), "unknown_agent");
    tr.agent_id = "front";
    ra_simple(&b, OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER, &tr);
    ok = ra_expect(&b, OMNI__V1__AGENT_ENVELOPE__BODY_OK, 3000);
    cr_assert_not_null(ok);
    ra_free(ok);
    Omni__V1__AgentEnvelope *of = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OFFER, 5000);
    cr_assert_not_null(of, "the named agent gets the offer");
    cr_assert_str_eq(of->offer->conversation_id, ack.conversation_id);
    cr_assert_str_eq(of->offer->strategy, "sticky");
    ra_free(of);
    char kinds[512];
    kinds_of(ack.conversation_id, kinds, sizeof(kinds));
    cr_assert_str_eq(kinds, "conversation_opened queued message offered assigned transferred offered assigned "
                            "transferred offered");
    ra_close(&a);
    ra_close(&b);
    omni_adapter_destroy(&chat);
}

Test(routing, after_hours_reject_closes_with_a_notice)
{
    h_ack_t ack;
    open_chat();
    say("n-1", "chat:visitor-7", "深夜に失礼します", &ack);
    for (int i = 0; i < 100 && !outbound_seen; i++)
        omni_adapter_poll(chat, 20);
    cr_assert_eq(outbound_seen, 1, "the customer got the after-hours notice");
    cr_assert_str_eq(outbound_text, "営業時間外です");
    char kinds[512];
    kinds_of(ack.conversation_id, kinds, sizeof(kinds));
    cr_assert_str_eq(kinds, "conversation_opened queued message agent_message closed");
    cr_assert_eq(h_counter(&H, "after_hours"), 1);
    omni_adapter_destroy(&chat);
}

Test(routing, fraud_keywords_jump_the_queue)
{
    ra_t a;
    h_ack_t k1, k2;
    open_chat();
    say("f-1", "chat:visitor-8", "住所を変更したい", &k1);
    say("f-2", "chat:visitor-9", "カードの不正利用があります", &k2);
    char out[8192];
    const char *args[] = {"queues", "--json", NULL};
    cr_assert_eq(h_omnictl(&H, out, sizeof(out), args), 0);
    const char *g = strstr(out, "\"name\":\"general\"");
    cr_assert_not_null(g, "%s", out);
    cr_assert_not_null(strstr(g, "\"waiting\":2"), "two wait in general: %s", out);
    ra_open(&a, "first");
    ra_login(&a, NULL, 0, 1);
    Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, k2.conversation_id, "the fraud report goes first");
    ra_free(as);
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, broker_kill9_loses_no_waiting_or_assigned_conversation)
{
    ra_t a, b;
    h_ack_t ack;
    char held[2][64];
    open_chat();
    ra_open(&a, "holder");
    ra_login(&a, NULL, 0, 2);
    for (int i = 0; i < 2; i++) {
        char pmid[32], from[32];
        snprintf(pmid, sizeof(pmid), "k-held-%d", i);
        snprintf(from, sizeof(from), "chat:held-%d", i);
        say(pmid, from, "対応中", &ack);
        Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
        snprintf(held[i], sizeof(held[i]), "%s", as->assignment->conversation_id);
        ra_free(as);
    }
    for (int i = 0; i < 30; i++) { /* holder is full: these wait */
        char pmid[32], from[32];
        snprintf(pmid, sizeof(pmid), "k-wait-%d", i);
        snprintf(from, sizeof(from), "chat:wait-%d", i);
        say(pmid, from, "待っています", &ack);
    }
    cr_assert_eq(h_broker_stop(&H, SIGKILL), SIGKILL + 128);
    h_broker_start(&H);

    /* The holder comes back holding its two: both reclaimed, none offered elsewhere. */
    Omni__V1__Login l = OMNI__V1__LOGIN__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    Omni__V1__ChannelSlots cs = OMNI__V1__CHANNEL_SLOTS__INIT, *csp = &cs;
    char *holding[2] = {held[0], held[1]};
    cs.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    cs.slots = 2;
    l.agent_id = a.id;
    l.capacity = &csp;
    l.n_capacity = 1;
    l.holding = holding;
    l.n_holding = 2;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN;
    env.login = &l;
    ra_send(&a, &env);
    Omni__V1__AgentEnvelope *ok = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK, 10000);
    cr_assert_not_null(ok);
    cr_assert_eq(ok->login_ok->n_reclaimed, 2, "both held conversations reclaimed");
    a.logged_in = 1;
    ra_free(ok);

    ra_open(&b, "after");
    ra_login(&b, NULL, 0, 30);
    for (int i = 0; i < 30; i++) {
        Omni__V1__AgentEnvelope *as = ra_take(&b, 5000);
        for (int k = 0; k < 2; k++)
            cr_assert_str_neq(as->assignment->conversation_id, held[k], "a reclaimed conversation went elsewhere");
        ra_free(as);
    }
    cr_assert_null(ra_expect(&b, OMNI__V1__AGENT_ENVELOPE__BODY_OFFER, 500), "more than the 30 waiting");
    ra_close(&a);
    ra_close(&b);
    omni_adapter_destroy(&chat);
    cr_assert_eq(h_broker_stop(&H, SIGTERM), 0, "the restarted broker exits 0 after SIGTERM (see broker.log)");
}

/* ---- load: 20 omnictl agents, 2,000 conversations on four channels, one agent killed ---- */

typedef struct {
    const char *id, *skills, *capacity;
    int account, billing;            /* levels */
    int cap[4];                      /* chat, email, sns, phone as in ROUTER_CH_* order */
} agent_spec_t;

static const agent_spec_t FLEET[20] = {
    {"victim", "account:5,billing:2", "chat=3,email=5,sns=5,phone=1", 5, 2, {3, 5, 5, 1}},
    {"acc-1", "account:3", "chat=1,email=2,sns=1,phone=1", 3, 0, {1, 2, 1, 1}},
    {"acc-2", "account:4", "chat=2,email=3,sns=2,phone=1", 4, 0, {2, 3, 2, 1}},
    {"acc-3", "account:5", "chat=3,email=5,sns=5,phone=1", 5, 0, {3, 5, 5, 1}},
    {"acc-4", "account:2", "chat=3,email=5,sns=5,phone=1", 2, 0, {3, 5, 5, 1}}, /* below the threshold */
    {"acc-5", "account:3,billing:1", "chat=2,email=2,sns=2,phone=0", 3, 1, {2, 2, 2, 0}},
    {"bil-1", "billing:1", "chat=1,email=5,sns=1,phone=1", 0, 1, {1, 5, 1, 1}},
    {"bil-2", "billing:3", "chat=2,email=4,sns=3,phone=1", 0, 3, {2, 4, 3, 1}},
    {"bil-3", "billing:5", "chat=3,email=5,sns=5,phone=1", 0, 5, {3, 5, 5, 1}},
    {"bil-4", "billing:2", "chat=1,email=1,sns=1,phone=1", 0, 2, {1, 1, 1, 1}},
    {"bil-5", "billing:4,account:1", "chat=2,email=3,sns=2,phone=0", 1, 4, {2, 3, 2, 0}},
    {"gen-1", "", "chat=3,email=5,sns=5,phone=1", 0, 0, {3, 5, 5, 1}},
    {"gen-2", "", "chat=1,email=1,sns=1,phone=1", 0, 0, {1, 1, 1, 1}},
    {"gen-3", "", "chat=2,email=3,sns=2,phone=1", 0, 0, {2, 3, 2, 1}},
    {"gen-4", "", "chat=3,email=2,sns=4,phone=0", 0, 0, {3, 2, 4, 0}},
    {"gen-5", "", "chat=1,email=5,sns=1,phone=1", 0, 0, {1, 5, 1, 1}},
    {"gen-6", "", "chat=2,email=2,sns=2,phone=1", 0, 0, {2, 2, 2, 1}},
    {"gen-7", "", "chat=3,email=5,sns=5,phone=1", 0, 0, {3, 5, 5, 1}},
    {"gen-8", "", "chat=1,email=1,sns=1,phone=1", 0, 0, {1, 1, 1, 1}},
    {"gen-9", "", "chat=2,email=4,sns=3,phone=1", 0, 0, {2, 4, 3, 1}},
};

static int fleet_index(const char *id)
{
    for (int i = 0; i < 20; i++)
        if (strcmp(FLEET[i].id, id) == 0)
            return i;
    return -1;
}

static int eligible(const agent_spec_t *a, const char *queue)
{
    if (strcmp(queue, "account") == 0)
        return a->account >= 3;
    if (strcmp(queue, "billing") == 0)
        return a->billing >= 1;
    return 1;
}

static pid_t fleet_spawn(int i)
{
    const agent_spec_t *a = &FLEET[i];
    const char *args[16];
    int n = 0;
    args[n++] = "--id";
    args[n++] = a->id;
    if (a->skills[0]) {
        args[n++] = "--skills";
        args[n++] = a->skills;
    }
    args[n++] = "--capacity";
    args[n++] = a->capacity;
    args[n++] = "--heartbeat-ms";
    args[n++] = "300";
    if (i > 0) { /* the victim holds what it gets until it is killed */
        args[n++] = "--reply";
        args[n++] = "承知しました";
        args[n++] = "--close";
    }
    args[n] = NULL;
    return h_agent_spawn(&H, a->id, args);
}

static void on_outbound_ok(omni_adapter_t *ad, const Omni__V1__OutboundMessage *m, void *user)
{
    (void)user;
    omni_adapter_outbound_result(ad, m->outbound_id, 1, 0, NULL, NULL);
}

/* Replays the stream: every offer fits the agent's capacity and the phone-blocks-chat/sns rule,
 * goes to an eligible agent, and every conversation was assigned and finally closed. */
static void check_fleet_stream(size_t n_conv, const char *victim_convs[], size_t *n_victim)
{
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    int load[20][4] = {{0}};
    typedef struct { char conv[32], queue[32], holder[32]; int ch, assigned, closed, reassigned; } cs_t;
    cs_t *cs = calloc(n_conv + 1, sizeof(*cs));
    size_t ncs = 0;
    *n_victim = 0;
    for (size_t i = 0; i < n; i++) {
        Omni__V1__StreamEvent *e = ev[i];
        cs_t *c = NULL;
        for (size_t k = 0; k < ncs && !c; k++)
            if (strcmp(cs[k].conv, e->conversation_id) == 0)
                c = &cs[k];
        if (!c && e->kind_case == OMNI__V1__STREAM_EVENT__KIND_QUEUED) {
            cr_assert_lt(ncs, n_conv, "more conversations than messages");
            c = &cs[ncs++];
            snprintf(c->conv, sizeof(c->conv), "%s", e->conversation_id);
            c->ch = (int)e->channel - 1;
        }
        if (!c)
            continue;
        int ag;
        switch (e->kind_case) {
        case OMNI__V1__STREAM_EVENT__KIND_QUEUED:
            snprintf(c->queue, sizeof(c->queue), "%s", e->queued->queue);
            if (c->holder[0]) { /* requeued: its agent lost it */
                load[fleet_index(c->holder)][c->ch]--;
                c->holder[0] = 0;
            }
            break;
        case OMNI__V1__STREAM_EVENT__KIND_OFFERED:
            ag = fleet_index(e->offered->agent_id);
            cr_assert_geq(ag, 0);
            cr_assert(eligible(&FLEET[ag], c->queue), "%s offered to ineligible %s (queue %s)", c->conv,
                      FLEET[ag].id, c->queue);
            cr_assert_lt(load[ag][c->ch], FLEET[ag].cap[c->ch], "%s over capacity on channel %d", FLEET[ag].id, c->ch);
            if (c->ch == 0 || c->ch == 2)
                cr_assert_eq(load[ag][3], 0, "%s got chat/sns work during a call", FLEET[ag].id);
            load[ag][c->ch]++;
            break;
        case OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED:
            load[fleet_index(e->offer_ended->agent_id)][c->ch]--;
            break;
        case OMNI__V1__STREAM_EVENT__KIND_ASSIGNED:
            if (c->assigned && strcmp(e->assigned->agent_id, "victim") != 0)
                c->reassigned = 1;
            c->assigned++;
            snprintf(c->holder, sizeof(c->holder), "%s", e->assigned->agent_id);
            if (strcmp(c->holder, "victim") == 0 && *n_victim < 64)
                victim_convs[(*n_victim)++] = strdup(c->conv);
            break;
        case OMNI__V1__STREAM_EVENT__KIND_CLOSED:
            cr_assert(c->holder[0], "%s closed by nobody", c->conv);
            load[fleet_index(c->holder)][c->ch]--;
            c->holder[0] = 0;
            c->closed = 1;
            break;
        default:
            break;
        }
    }
    cr_assert_eq(ncs, n_conv, "every message opened a queued conversation");
    for (size_t k = 0; k < ncs; k++) {
        cr_assert(cs[k].assigned, "%s never assigned", cs[k].conv);
        cr_assert(cs[k].closed, "%s never closed", cs[k].conv);
    }
    for (size_t v = 0; v < *n_victim; v++)
        for (size_t k = 0; k < ncs; k++)
            if (strcmp(cs[k].conv, victim_convs[v]) == 0)
                cr_assert(cs[k].reassigned, "%s stayed with the killed agent", cs[k].conv);
    free(cs);
    h_events_free(ev, n);
}

Test(routing, twenty_agents_two_thousand_conversations_one_killed)
{
    enum { N = 2000 };
    static const Omni__V1__Channel chans[4] = {OMNI__V1__CHANNEL__CHANNEL_CHAT, OMNI__V1__CHANNEL__CHANNEL_EMAIL,
                                               OMNI__V1__CHANNEL__CHANNEL_SNS, OMNI__V1__CHANNEL__CHANNEL_PHONE};
    static const char *texts[3] = {"パスワードを忘れました", "請求金額が違います", "配送状況を知りたい"};
    omni_adapter_t *ad[4];
    pid_t pids[20];
    static const char *ids[4] = {"t-load-chat", "t-load-email", "t-load-sns", "t-load-phone"};
    for (int c = 0; c < 4; c++) {
        omni_adapter_opts_t o;
        h_adapter_opts(&o, &H, ids[c], chans[c]);
        o.on_ack = NULL;
        o.on_outbound = on_outbound_ok;
        cr_assert_eq(omni_adapter_new(&o, &ad[c]), 0);
    }
    for (int i = 0; i < 20; i++)
        pids[i] = fleet_spawn(i);

    int killed = 0;
    for (int i = 0; i < N; i++) {
        Omni__V1__InboundMessage m;
        char pmid[32], from[64];
        int c = i % 4;
        snprintf(pmid, sizeof(pmid), "load-%d", i);
        if (c == 0)
            snprintf(from, sizeof(from), "chat:load-%d", i);
        else if (c == 1)
            snprintf(from, sizeof(from), "email:c%d@example.jp", i);
        else if (c == 2)
            snprintf(from, sizeof(from), "line:U%032x", i);
        else
            snprintf(from, sizeof(from), "phone:+8190%08d", 10000000 + i);
        h_msg(&m, chans[c], pmid, from, NULL, texts[i % 3]);
        while (omni_adapter_send(ad[c], &m, NULL) == OMNI_EFULL)
            omni_adapter_poll(ad[c], 5);
        for (int k = 0; k < 4; k++)
            omni_adapter_process(ad[k]);
        if (!killed && i == N / 4) {
            /* The victim has taken work by now (it never closes); kill it mid-traffic. */
            long long assigned = 0;
            for (int t = 0; t < 500 && assigned < 5; t++) {
                char out[65536];
                const char *args[] = {"agents", "--json", NULL};
                h_omnictl(&H, out, sizeof(out), args);
                const char *v = strstr(out, "\"id\":\"victim\"");
                const char *a = v ? strstr(v, "\"assigned\":") : NULL;
                assigned = a ? atoll(a + 11) : 0;
                for (int k = 0; k < 4; k++)
                    omni_adapter_poll(ad[k], 2);
            }
            cr_assert_geq(assigned, 5, "the victim never got work");
            kill(pids[0], SIGKILL);
            waitpid(pids[0], NULL, 0);
            killed = 1;
        }
    }
    /* Everything acked, then every conversation closed by the surviving agents. */
    for (int t = 0; t < 6000; t++) {
        size_t pending = 0;
        for (int k = 0; k < 4; k++) {
            omni_adapter_poll(ad[k], 1);
            pending += omni_adapter_pending(ad[k]);
        }
        if (!pending && (t % 50) == 0 && h_counter(&H, "closed") >= N)
            break;
    }
    cr_assert_eq(h_counter(&H, "closed"), N, "all conversations closed");
    cr_assert_geq(h_counter(&H, "requeued"), 5, "the victim's conversations were requeued");
    const char *victim_convs[64];
    size_t n_victim;
    check_fleet_stream(N, victim_convs, &n_victim);
    cr_assert_geq(n_victim, 5);
    for (size_t v = 0; v < n_victim; v++)
        free((void *)victim_convs[v]);
    for (int i = 1; i < 20; i++) {
        kill(pids[i], SIGTERM);
        int st;
        waitpid(pids[i], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exited badly", FLEET[i].id);
    }
    for (int c = 0; c < 4; c++)
        omni_adapter_destroy(&ad[c]);
    /* A clean stop after all that routing (in the ASan build: no leaks either). */
    cr_assert_eq(h_broker_stop(&H, SIGTERM), 0, "the broker exits 0 after SIGTERM (see broker.log)");
}

static size_t count_kind(const char *conv, int kind)
{
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp(ev[i]->conversation_id, conv) == 0 && (int)ev[i]->kind_case == kind;
    h_events_free(ev, n);
    return k;
}

Test(routing, a_resent_reply_is_stored_and_delivered_once)
{
    ra_t a;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "careful");
    ra_login(&a, NULL, 0, 0);
    say("i-1", "chat:visitor-10", "配送はいつですか", &ack);
    ra_free(ra_take(&a, 5000));
    Omni__V1__Reply rp = OMNI__V1__REPLY__INIT;
    rp.conversation_id = ack.conversation_id;
    rp.text = "三営業日以内です";
    rp.reply_id = "reply-0001";
    uint64_t seq = 0;
    char first[48] = "";
    for (int i = 0; i < 2; i++) {
        ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &rp);
        Omni__V1__AgentEnvelope *ok = ra_expect_pumping(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OK);
        cr_assert_not_null(ok);
        cr_assert_eq(ok->ok->duplicate, i == 1, "copy %d", i);
        if (i == 0) {
            seq = ok->ok->seq;
            snprintf(first, sizeof(first), "%s", ok->ok->outbound_id);
        } else {
            cr_assert_eq(ok->ok->seq, seq, "the repeat names the first reply");
            cr_assert_str_eq(ok->ok->outbound_id, first);
        }
        ra_free(ok);
    }
    for (int i = 0; i < 50; i++)
        omni_adapter_poll(chat, 20);
    cr_assert_eq(outbound_seen, 1, "delivered once");
    cr_assert_eq(count_kind(ack.conversation_id, OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE), 1, "stored once");
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, a_reply_stored_before_a_crash_is_delivered_after_it)
{
    ra_t a;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "late");
    ra_login(&a, NULL, 0, 0);
    say("o-1", "chat:visitor-11", "届きますか", &ack);
    ra_free(ra_take(&a, 5000));
    omni_adapter_destroy(&chat); /* the channel's adapter goes away */
    Omni__V1__Reply rp = OMNI__V1__REPLY__INIT;
    rp.conversation_id = ack.conversation_id;
    rp.text = "はい、届きます";
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &rp);
    Omni__V1__AgentEnvelope *ok = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OK, 5000);
    cr_assert_not_null(ok, "a reply is accepted while its adapter is away");
    ra_free(ok);
    cr_assert_eq(h_broker_stop(&H, SIGKILL), SIGKILL + 128);
    h_broker_start(&H);
    open_chat(); /* the adapter comes back to a restarted broker */
    for (int i = 0; i < 200 && !outbound_seen; i++)
        omni_adapter_poll(chat, 20);
    cr_assert_eq(outbound_seen, 1, "the reply survived the crash");
    cr_assert_str_eq(outbound_text, "はい、届きます");
    for (int i = 0; i < 100 && h_counter(&H, "outbound_delivered") < 1; i++)
        omni_adapter_poll(chat, 20);
    cr_assert_eq(h_counter(&H, "outbound_delivered"), 1);
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, a_message_that_races_the_close_reopens_the_conversation)
{
    ra_t a;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "closer");
    ra_login(&a, NULL, 0, 0);
    say("c-1", "chat:visitor-12", "解決しました？", &ack);
    ra_free(ra_take(&a, 5000));

    /* Redis pauses; the customer's message reaches the broker (its script call waits), then the
     * agent's Close does (its write waits behind it). Redis resumes: the message lands on the
     * still-open conversation first, then the close. */
    long long frames = h_counter(&H, "ingress_frames");
    cr_assert_eq(kill(H.redis_pid, SIGSTOP), 0);
    Omni__V1__InboundMessage m;
    h_msg(&m, OMNI__V1__CHANNEL__CHANNEL_CHAT, "c-2", "chat:visitor-12", NULL, "あ、もう一つだけ");
    cr_assert_eq(omni_adapter_send(chat, &m, NULL), 0);
    for (int i = 0; i < 200 && h_counter(&H, "ingress_frames") <= frames; i++)
        omni_adapter_poll(chat, 10);
    cr_assert_gt(h_counter(&H, "ingress_frames"), frames, "the broker read the message");
    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = ack.conversation_id;
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
    for (int i = 0; i < 100 && h_counter(&H, "closed") < 1; i++)
        ra_heartbeat(&a), omni_adapter_poll(chat, 10);
    cr_assert_eq(h_counter(&H, "closed"), 1, "the close was decided while Redis was paused");
    cr_assert_eq(kill(H.redis_pid, SIGCONT), 0);

    /* The conversation comes back to an agent instead of leaving the message unanswered. */
    Omni__V1__AgentEnvelope *as = ra_take(&a, 5000);
    cr_assert_str_eq(as->assignment->conversation_id, ack.conversation_id);
    ra_free(as);
    char kinds[512];
    kinds_of(ack.conversation_id, kinds, sizeof(kinds));
    cr_assert_str_eq(kinds, "conversation_opened queued message offered assigned message closed queued offered "
                            "assigned");
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, a_new_connection_of_the_same_agent_gets_its_conversations_again)
{
    ra_t a, again;
    h_ack_t ack;
    open_chat();
    ra_open(&a, "restarted");
    ra_login(&a, NULL, 0, 0);
    say("n-1", "chat:visitor-13", "続きです", &ack);
    ra_free(ra_take(&a, 5000));
    /* The client restarts with nothing in memory: same id, new socket, empty holding. */
    ra_close(&a);
    ra_open(&again, "restarted");
    ra_login(&again, NULL, 0, 0);
    Omni__V1__AgentEnvelope *as = ra_expect(&again, OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT, 5000);
    cr_assert_not_null(as, "the held conversation is handed over again");
    cr_assert_str_eq(as->assignment->conversation_id, ack.conversation_id);
    cr_assert(as->assignment->restored);
    cr_assert_geq(as->assignment->n_history, 1);
    ra_free(as);
    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = ack.conversation_id;
    ra_simple(&again, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
    Omni__V1__AgentEnvelope *ok = ra_expect(&again, OMNI__V1__AGENT_ENVELOPE__BODY_OK, 3000);
    cr_assert_not_null(ok, "and it can close it");
    ra_free(ok);
    ra_close(&again);
    omni_adapter_destroy(&chat);
}

Test(routing, wrap_up_holds_new_offers_until_it_ends)
{
    ra_t a;
    h_ack_t k1, k2;
    open_chat();
    ra_open(&a, "wrapper");
    ra_login(&a, NULL, 0, 0);
    say("w-1", "chat:visitor-14", "アフターケアの相談", &k1);
    ra_free(ra_take(&a, 5000));
    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = k1.conversation_id;
    ra_simple(&a, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
    Omni__V1__AgentEnvelope *st = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_STATUS, 3000);
    cr_assert_not_null(st, "closing starts the queue's wrap-up");
    cr_assert_eq(st->status->state, OMNI__V1__AGENT_STATE__AGENT_STATE_WRAP_UP);
    ra_free(st);
    /* A conversation arriving during wrap-up waits; the offer comes once wrap-up is over. */
    say("w-2", "chat:visitor-15", "アフターケアの続き", &k2);
    cr_assert_null(ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_OFFER, 100), "no offer during wrap-up");
    st = ra_expect(&a, OMNI__V1__AGENT_ENVELOPE__BODY_STATUS, 3000);
    cr_assert_not_null(st);
    cr_assert_eq(st->status->state, OMNI__V1__AGENT_STATE__AGENT_STATE_AVAILABLE);
    cr_assert_str_eq(st->status->reason, "wrap_up_done");
    ra_free(st);
    Omni__V1__AgentEnvelope *as = ra_take(&a, 3000);
    cr_assert_str_eq(as->assignment->conversation_id, k2.conversation_id);
    ra_free(as);
    ra_close(&a);
    omni_adapter_destroy(&chat);
}

Test(routing, omnictl_agent_keeps_its_conversation_across_a_broker_kill9)
{
    h_ack_t ack;
    open_chat();
    const char *args[] = {"--id", "steady", "--heartbeat-ms", "200", NULL};
    pid_t pid = h_agent_spawn(&H, "steady", args);
    char out[16384];
    const char *agents[] = {"agents", "--json", NULL};
    for (int i = 0; i < 200; i++) { /* logged in once the broker lists it */
        if (h_omnictl(&H, out, sizeof(out), agents) == 0 && strstr(out, "\"steady\""))
            break;
        omni_adapter_poll(chat, 10);
    }
    say("s9-1", "chat:visitor-16", "途中で切れませんように", &ack);
    for (int i = 0; i < 300 && h_counter(&H, "assigned") < 1; i++)
        omni_adapter_poll(chat, 10);
    cr_assert_eq(h_counter(&H, "assigned"), 1);

    cr_assert_eq(h_broker_stop(&H, SIGKILL), SIGKILL + 128);
    h_broker_start(&H);
    /* The client notices the new instance, logs in again holding the conversation, and the
     * restarted broker gives it back: no requeue, no offer to anyone. */
    int back = 0;
    for (int i = 0; i < 300 && !back; i++) {
        if (h_omnictl(&H, out, sizeof(out), agents) == 0 && strstr(out, ack.conversation_id))
            back = 1;
        else
            omni_adapter_poll(chat, 20);
    }
    cr_assert(back, "the conversation is the agent's again: %s", out);
    char kinds[512];
    kinds_of(ack.conversation_id, kinds, sizeof(kinds));
    cr_assert_str_eq(kinds, "conversation_opened queued message offered assigned assigned");
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    omni_adapter_destroy(&chat);
}
