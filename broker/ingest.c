/* Ingest: the broker's hot path. Drain ready frames, validate, pipeline one Lua call per batch,
 * and only when Redis answered (durable) ack each sender and publish the appended events. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/adapter.h>
#include <omni/v1/control.pb-c.h>
#include <omni/v1/stream.pb-c.h>

#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "routing.h"
#include "validate.h"

#define ADAPTERS_MAX 1024
/* Script calls on the wire at once. More would only queue inside Redis; fewer lets batches
 * grow while Redis works (group commit), so per-message cost falls as load rises. */
#define CALLS_MAX 2

/* What the ack and the publication of one batched message need once the protobuf is gone. */
typedef struct {
    reply_to_t to;
    const char *channel;           /* static name */
    uint8_t *partial;              /* owned: StreamEvent minus seq, customer, conversation */
    size_t partial_len;
} pending_t;

typedef struct {
    ingest_t *in;
    size_t n;
    pending_t items[];
} batch_t;

/* A message queued for the next flush, with the argument strings its script call needs. */
typedef struct {
    reply_to_t to;
    Omni__V1__InboundMessage *msg; /* borrowed from owner */
    ProtobufCMessage *owner;
    const char **ids;              /* linkable identities (point into msg) */
    size_t n_ids;
    char **refs, **regs;           /* owned "m<id>" / "c<id>" / "g<id>" keys */
    size_t n_refs, n_regs;
    uint8_t *partial;
    size_t partial_len;
    uint8_t *route;                /* routing stub, owned; NULL without routing */
    size_t route_len;
} queued_t;

struct ingest {
    const config_t *cfg;
    store_t *st;
    void *ingress, *pub;
    int64_t started_ms;
    queued_t *q;
    size_t nq;
    size_t inflight;               /* messages in script calls */
    int calls;                     /* script calls waiting for Redis */
    adapter_rec_t adapters[ADAPTERS_MAX];
    size_t n_adapters;
    routing_t *rt;                 /* borrowed; NULL: nothing is routed */
};

void ingest_set_routing(ingest_t *in, routing_t *rt) { in->rt = rt; }

int ingest_new(const config_t *cfg, store_t *st, void *ingress, void *pub, int64_t started_ms, ingest_t **out)
{
    ingest_t *in = calloc(1, sizeof(*in));
    if (!in || !(in->q = calloc(cfg->batch_max, sizeof(queued_t)))) {
        free(in);
        return OMNI_ENOMEM;
    }
    in->cfg = cfg;
    in->st = st;
    in->ingress = ingress;
    in->pub = pub;
    in->started_ms = started_ms;
    *out = in;
    return 0;
}

static void queued_clear(queued_t *q)
{
    for (size_t i = 0; i < q->n_refs; i++)
        free(q->refs[i]);
    for (size_t i = 0; i < q->n_regs; i++)
        free(q->regs[i]);
    free(q->refs);
    free(q->regs);
    free(q->ids);
    free(q->partial);
    free(q->route);
    if (q->owner)
        protobuf_c_message_free_unpacked(q->owner, NULL);
    memset(q, 0, sizeof(*q));
}

void ingest_destroy(ingest_t **pin)
{
    ingest_t *in = pin ? *pin : NULL;
    if (!in)
        return;
    for (size_t i = 0; i < in->nq; i++)
        queued_clear(&in->q[i]);
    free(in->q);
    free(in);
    *pin = NULL;
}

static void send_envelope(const reply_to_t *to, Omni__V1__Envelope *env)
{
    uint8_t stackbuf[512];
    size_t len = omni__v1__envelope__get_packed_size(env);
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    if (!buf)
        return;
    omni__v1__envelope__pack(env, buf);
    reply_send(to, buf, len);
    if (buf != stackbuf)
        free(buf);
}

void ingest_reply(const reply_to_t *to, const Omni__V1__Ack *ack)
{
    uint8_t stackbuf[512];
    size_t len;
    uint8_t *buf;
    if (to->control) {
        Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
        rep.id = to->id;
        rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_ACK;
        rep.ack = (Omni__V1__Ack *)ack;
        len = omni__v1__control_reply__get_packed_size(&rep);
        if (!(buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len)))
            return;
        omni__v1__control_reply__pack(&rep, buf);
    } else {
        Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
        env.request_id = to->id;
        env.body_case = OMNI__V1__ENVELOPE__BODY_ACK;
        env.ack = (Omni__V1__Ack *)ack;
        len = omni__v1__envelope__get_packed_size(&env);
        if (!(buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len)))
            return;
        omni__v1__envelope__pack(&env, buf);
    }
    reply_send(to, buf, len);
    if (buf != stackbuf)
        free(buf);
}

static void nack(const reply_to_t *to, int reason, int retryable, const char *detail)
{
    Omni__V1__Ack ack = OMNI__V1__ACK__INIT;
    ack.request_id = to->control ? 0 : to->id;
    ack.reason = reason;
    ack.retryable = retryable;
    ack.detail = (char *)(detail ? detail : "");
    if (retryable)
        metrics_inc(M_MESSAGES_RETRY);
    else
        metrics_reject(reason);
    ingest_reply(to, &ack);
}

static char *key_of(char kind, const char *v)
{
    size_t n = strlen(v);
    char *k = malloc(n + 2);
    if (k) {
        k[0] = kind;
        memcpy(k + 1, v, n + 1);
    }
    return k;
}

/* Thread keys in the priority the issue fixes: In-Reply-To, References right to left, reply
 * tokens (our own conversation ids), then the channel's group/room thread. */
static int build_refs(queued_t *q, const Omni__V1__InboundMessage *m)
{
    const Omni__V1__ThreadRefs *t = m->thread;
    size_t cap = 2 + (t ? t->n_references + t->n_reply_tokens : 0);
    if (!(q->refs = calloc(cap, sizeof(char *))) || !(q->regs = calloc(2, sizeof(char *))))
        return OMNI_ENOMEM;
    if (t && t->in_reply_to && *t->in_reply_to)
        q->refs[q->n_refs++] = key_of('m', t->in_reply_to);
    for (size_t i = t ? t->n_references : 0; i > 0; i--)
        if (*t->references[i - 1])
            q->refs[q->n_refs++] = key_of('m', t->references[i - 1]);
    for (size_t i = 0; t && i < t->n_reply_tokens; i++)
        if (*t->reply_tokens[i])
            q->refs[q->n_refs++] = key_of('c', t->reply_tokens[i]);
    if (t && t->channel_thread_id && *t->channel_thread_id) {
        q->refs[q->n_refs++] = key_of('g', t->channel_thread_id);
        q->regs[q->n_regs++] = key_of('g', t->channel_thread_id);
    }
    /* An email's own Message-ID is what later replies will reference. */
    if (m->channel == OMNI__V1__CHANNEL__CHANNEL_EMAIL)
        q->regs[q->n_regs++] = key_of('m', m->provider_message_id);
    for (size_t i = 0; i < q->n_refs; i++)
        if (!q->refs[i])
            return OMNI_ENOMEM;
    for (size_t i = 0; i < q->n_regs; i++)
        if (!q->regs[i])
            return OMNI_ENOMEM;
    return 0;
}

static int build_ids(queued_t *q, const Omni__V1__InboundMessage *m, uint64_t linkable)
{
    if (!(q->ids = calloc(1 + m->n_also, sizeof(char *))))
        return OMNI_ENOMEM;
    for (size_t i = 0; i <= m->n_also; i++) {
        if (i < 64 && (linkable >> i & 1))
            q->ids[q->n_ids++] = i == 0 ? m->from : m->also[i - 1];
        else
            metrics_inc(M_IDENTITIES_JUNK);
    }
    return 0;
}

static int build_partial(ingest_t *in, queued_t *q, Omni__V1__InboundMessage *m)
{
    Omni__V1__MessageEvent me = OMNI__V1__MESSAGE_EVENT__INIT;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    me.inbound = m;
    ev.time_ms = omni_now_ms();
    ev.tenant = in->cfg->tenant;
    ev.channel = m->channel;
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
    ev.message = &me;
    q->partial_len = omni__v1__stream_event__get_packed_size(&ev);
    if (!(q->partial = malloc(q->partial_len)))
        return OMNI_ENOMEM;
    omni__v1__stream_event__pack(&ev, q->partial);
    return 0;
}

void ingest_submit(ingest_t *in, const reply_to_t *to, Omni__V1__InboundMessage *msg, ProtobufCMessage *owner)
{
    validate_result_t vr;
    uint64_t linkable;
    if (validate_inbound(msg, in->cfg, &linkable, &vr) != 0) {
        LOG_DEBUG("ingest: rejected message from %s: %s (%s)", msg->adapter_id,
                  validate_reason_name(vr.reason), vr.detail);
        nack(to, vr.reason, vr.reason == OMNI__V1__REASON__REASON_INTERNAL, vr.detail);
        protobuf_c_message_free_unpacked(owner, NULL);
        return;
    }
    if (in->nq == in->cfg->batch_max)
        ingest_flush(in);
    if (in->nq == in->cfg->batch_max) { /* only the control socket gets here: ingress stops reading */
        nack(to, OMNI__V1__REASON__REASON_UNAVAILABLE, 1, "broker busy");
        protobuf_c_message_free_unpacked(owner, NULL);
        return;
    }
    queued_t *q = &in->q[in->nq];
    q->to = *to;
    q->msg = msg;
    q->owner = owner;
    if (build_ids(q, msg, linkable) || build_refs(q, msg) || build_partial(in, q, msg) ||
        (in->rt && routing_stub(in->rt, msg, &q->route, &q->route_len))) {
        nack(to, OMNI__V1__REASON__REASON_INTERNAL, 1, "out of memory");
        queued_clear(q);
        return;
    }
    in->nq++;
}

static void publish(ingest_t *in, const char *channel, const uint8_t *bytes, size_t len)
{
    zmq_send(in->pub, channel, strlen(channel), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(in->pub, bytes, len, ZMQ_DONTWAIT);
    metrics_inc(M_EVENTS_APPENDED);
}

/* The message event exactly as ingest.lua stored it: seq, customer and conversation (fields
 * 1, 4, 5, which protobuf-c writes in that order) followed by the partial bytes. */
static void publish_message(ingest_t *in, const pending_t *p, const store_result_t *r)
{
    Omni__V1__StreamEvent head = OMNI__V1__STREAM_EVENT__INIT;
    uint8_t stackbuf[1024];
    head.seq = r->seq;
    head.customer_id = (char *)r->customer_id;
    head.conversation_id = (char *)r->conversation_id;
    size_t hl = omni__v1__stream_event__get_packed_size(&head), len = hl + p->partial_len;
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    if (!buf)
        return;
    omni__v1__stream_event__pack(&head, buf);
    memcpy(buf + hl, p->partial, p->partial_len);
    publish(in, p->channel, buf, len);
    if (in->rt)
        routing_on_event(in->rt, "message", r->conversation_id, buf, len);
    if (buf != stackbuf)
        free(buf);
}

static void publish_script_event(ingest_t *in, const store_event_t *ev)
{
    if (strcmp(ev->kind, "routing_record") == 0) { /* state for routing, not a stream event */
        if (in->rt)
            routing_on_event(in->rt, ev->kind, NULL, ev->bytes, ev->len);
        return;
    }
    publish(in, ev->channel, ev->bytes, ev->len);
    if (strcmp(ev->kind, "customer_merged") == 0)
        metrics_inc(M_CUSTOMERS_MERGED);
    else if (strcmp(ev->kind, "conversation_opened") == 0)
        metrics_inc(M_CONVERSATIONS_OPENED);
    if (in->rt)
        routing_on_event(in->rt, ev->kind, NULL, ev->bytes, ev->len);
}

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].partial);
    free(b);
}

static void on_stored(int err, const store_result_t *res, size_t n_res, const store_event_t *ev, size_t n_ev,
                      void *ud)
{
    batch_t *b = ud;
    ingest_t *in = b->in;
    in->inflight -= b->n;
    in->calls--;
    if (err || n_res != b->n) {
        int reason = err == OMNI_EUNAVAIL ? OMNI__V1__REASON__REASON_UNAVAILABLE : OMNI__V1__REASON__REASON_INTERNAL;
        for (size_t i = 0; i < b->n; i++)
            nack(&b->items[i].to, reason, 1, err == OMNI_EUNAVAIL ? "storage unavailable" : "storage error");
        batch_free(b);
        return;
    }
    /* Publish in seq order (the script's own events interleave with the messages), and
     * before acking: a subscriber never hears of a message later than its sender. */
    size_t e = 0;
    for (size_t i = 0; i < n_res; i++) {
        if (res[i].duplicate)
            continue;
        for (; e < n_ev && ev[e].seq < res[i].seq; e++)
            publish_script_event(in, &ev[e]);
        publish_message(in, &b->items[i], &res[i]);
    }
    for (; e < n_ev; e++)
        publish_script_event(in, &ev[e]);
    for (size_t i = 0; i < n_res; i++) {
        Omni__V1__Ack ack = OMNI__V1__ACK__INIT;
        ack.request_id = b->items[i].to.control ? 0 : b->items[i].to.id;
        ack.accepted = 1;
        ack.duplicate = res[i].duplicate;
        ack.customer_id = (char *)res[i].customer_id;
        ack.conversation_id = (char *)res[i].conversation_id;
        ack.seq = res[i].seq;
        metrics_inc(res[i].duplicate ? M_MESSAGES_DUPLICATE : M_MESSAGES_ACCEPTED);
        ingest_reply(&b->items[i].to, &ack);
    }
    batch_free(b);
}

void ingest_flush(ingest_t *in)
{
    size_t n = in->nq;
    if (!n || (in->calls >= CALLS_MAX && store_state(in->st) != STORE_DOWN))
        return;
    batch_t *b = malloc(sizeof(*b) + n * sizeof(pending_t));
    store_msg_t *msgs = calloc(n, sizeof(*msgs));
    int rc = OMNI_ENOMEM;
    if (b && msgs) {
        b->in = in;
        b->n = n;
        for (size_t i = 0; i < n; i++) {
            queued_t *q = &in->q[i];
            const Omni__V1__InboundMessage *m = q->msg;
            b->items[i] = (pending_t){q->to, omni_channel_name(m->channel), q->partial, q->partial_len};
            msgs[i] = (store_msg_t){
                .channel = omni_channel_name(m->channel), .chnum = m->channel,
                .pmid = m->provider_message_id, .account = m->channel_account,
                .ids = q->ids, .n_ids = q->n_ids,
                .refs = (const char *const *)q->refs, .n_refs = q->n_refs,
                .regs = (const char *const *)q->regs, .n_regs = q->n_regs,
                .partial = q->partial, .partial_len = q->partial_len,
                .route = q->route, .route_len = q->route_len,
            };
        }
        /* While connecting, hiredis queues the call: only a down link refuses at once. */
        rc = store_state(in->st) != STORE_DOWN ? store_ingest(in->st, msgs, n, on_stored, b) : OMNI_EUNAVAIL;
    }
    if (rc == 0) {
        in->inflight += n;
        in->calls++;
        for (size_t i = 0; i < n; i++)
            in->q[i].partial = NULL; /* the batch owns them now */
    } else {
        for (size_t i = 0; i < n; i++)
            nack(&in->q[i].to, rc == OMNI_EUNAVAIL ? OMNI__V1__REASON__REASON_UNAVAILABLE
                                                   : OMNI__V1__REASON__REASON_INTERNAL,
                 1, rc == OMNI_EUNAVAIL ? "storage unavailable" : "out of memory");
        free(b); /* the partials are still the queue's: queued_clear frees them */
    }
    /* hiredis copied the arguments into its output buffer: the messages can go now. */
    for (size_t i = 0; i < n; i++)
        queued_clear(&in->q[i]);
    in->nq = 0;
    free(msgs);
}

static adapter_rec_t *adapter_find(ingest_t *in, const char *id)
{
    for (size_t i = 0; i < in->n_adapters; i++)
        if (strcmp(in->adapters[i].adapter_id, id) == 0)
            return &in->adapters[i];
    return in->n_adapters < ADAPTERS_MAX ? &in->adapters[in->n_adapters++] : NULL;
}

static void handle_hello(ingest_t *in, const reply_to_t *to, const Omni__V1__Hello *h)
{
    metrics_inc(M_ADAPTER_HELLOS);
    /* An id that would not fit its record could never be found again: not registered. */
    size_t idlen = h->adapter_id ? strlen(h->adapter_id) : 0;
    adapter_rec_t *a = idlen && idlen < sizeof(in->adapters[0].adapter_id) ? adapter_find(in, h->adapter_id) : NULL;
    if (a) {
        snprintf(a->adapter_id, sizeof(a->adapter_id), "%s", h->adapter_id);
        a->channel = h->channel;
        a->last_seen_ms = omni_now_ms();
        a->heartbeat_ms = h->heartbeat_ms ? h->heartbeat_ms : 2000;
        a->outbox = h->outbox;
        a->to = *to; /* where outbound messages for this adapter go */
        a->to.id = 0;
        a->accounts[0] = 0;
        for (size_t i = 0, off = 0; i < h->n_accounts && off < sizeof(a->accounts); i++)
            off += snprintf(a->accounts + off, sizeof(a->accounts) - off, "%s%s", i ? "," : "", h->accounts[i]);
    }
    Omni__V1__Heartbeat hb = OMNI__V1__HEARTBEAT__INIT;
    hb.broker_version = (char *)OMNI_VERSION;
    hb.last_seq = store_last_seq(in->st);
    hb.started_ms = in->started_ms;
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.body_case = OMNI__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    send_envelope(to, &env);
}

/* Envelope.request_id (field 1, a varint) as the SDK writes it, first: lets even a frame we
 * refuse to decode be nacked to the message that caused it, so the SDK can drop it. */
static uint64_t peek_request_id(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    if (len < 2 || p[0] != 0x08)
        return 0;
    for (size_t i = 1; i < len && i < 11; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (!(p[i] & 0x80))
            return v;
    }
    return 0;
}

static void handle_frame(ingest_t *in, reply_to_t *to, const uint8_t *data, size_t len)
{
    to->id = peek_request_id(data, len);
    if (len > in->cfg->max_frame_bytes) {
        nack(to, OMNI__V1__REASON__REASON_TOO_LARGE, 0, "frame above max_frame_bytes");
        return;
    }
    Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, len, data);
    if (!env) {
        nack(to, OMNI__V1__REASON__REASON_MALFORMED, 0, "not an omni.v1.Envelope");
        return;
    }
    to->id = env->request_id;
    switch (env->body_case) {
    case OMNI__V1__ENVELOPE__BODY_INBOUND:
        ingest_submit(in, to, env->inbound, &env->base);
        return; /* env is owned by the queue now */
    case OMNI__V1__ENVELOPE__BODY_HELLO:
        handle_hello(in, to, env->hello);
        break;
    case OMNI__V1__ENVELOPE__BODY_OUTBOUND_RESULT:
        metrics_inc(M_OUTBOUND_RESULTS);
        if (in->rt && env->outbound_result)
            routing_on_outbound_result(in->rt, env->outbound_result);
        break;
    default:
        nack(to, OMNI__V1__REASON__REASON_MALFORMED, 0, "unexpected envelope body on ingress");
        break;
    }
    omni__v1__envelope__free_unpacked(env, NULL);
}

int ingest_read(ingest_t *in)
{
    int frames = 0, rc;
    reply_to_t to;
    zmq_msg_t body;
    while ((size_t)frames < in->cfg->batch_max && in->nq < in->cfg->batch_max &&
           (rc = reply_recv(in->ingress, &to, &body)) >= 0) {
        frames++;
        metrics_inc(M_INGRESS_FRAMES);
        if (rc == 0)
            handle_frame(in, &to, zmq_msg_data(&body), zmq_msg_size(&body));
        else
            nack(&to, OMNI__V1__REASON__REASON_MALFORMED, 0, "expected exactly one frame");
        zmq_msg_close(&body);
    }
    return frames;
}

int ingest_can_read(const ingest_t *in)
{
    return in->nq < in->cfg->batch_max && in->inflight < in->cfg->inflight_max;
}

size_t ingest_queued(const ingest_t *in) { return in->nq; }

void ingest_abandon(ingest_t *in)
{
    for (size_t i = 0; i < in->nq; i++) {
        nack(&in->q[i].to, OMNI__V1__REASON__REASON_UNAVAILABLE, 1, "broker shutting down");
        queued_clear(&in->q[i]);
    }
    in->nq = 0;
}
size_t ingest_inflight(const ingest_t *in) { return in->inflight; }

void ingest_tick(ingest_t *in)
{
    int64_t now = omni_now_ms();
    for (size_t i = 0; i < in->n_adapters;) {
        if (now - in->adapters[i].last_seen_ms > 3LL * in->adapters[i].heartbeat_ms)
            in->adapters[i] = in->adapters[--in->n_adapters];
        else
            i++;
    }
}

size_t ingest_adapters(const ingest_t *in, const adapter_rec_t **list)
{
    *list = in->adapters;
    return in->n_adapters;
}
