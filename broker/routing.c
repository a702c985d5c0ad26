/* Routing in the broker: every conversation ingest.lua queued goes into the pure router; its
 * decisions become agent messages and durable routing events, written in batches by route.lua. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/adapter.h>
#include <omni/omni.h>
#include <omni/v1/stream.pb-c.h>

#include "agents.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "routing.h"
#include "strmap.h"

#define OPS_BATCH_MAX 512   /* routing ops per route.lua call */
#define CALLS_MAX 2         /* route.lua calls waiting on Redis at once (group commit) */
#define PREVIEW_MAX 200     /* bytes of the opening message shown in an offer */
#define OUTQ_MAX 10000      /* replies waiting for an adapter's delivery report */
#define OUTQ_RETRY_MS 5000  /* resend an unreported delivery this often */
#define OUTQ_WAIT_MS 500    /* look for an adapter this often while none is connected */
#define OUTQ_TTL_MS (3600 * 1000LL) /* then the reply is given up (counted, logged) */

typedef enum { CV_ROUTED, CV_LIMBO } cv_state_t;

/* One live conversation: in the router (waiting, parked, offered or assigned), or after a
 * restart waiting for its agent to log in again (limbo). */
typedef struct {
    char id[ROUTER_ID_MAX];
    char customer[ROUTER_ID_MAX];
    char agent[ROUTER_ID_MAX];      /* assigned (or limbo) agent, "" otherwise */
    char offer_key[24];             /* key in rt->offers while offered, "" otherwise */
    int chnum, queue;
    cv_state_t state;
    int closing;                    /* its close is on the way to Redis: out of the router already */
    int reopen;                     /* a customer message arrived meanwhile: route it again */
    int64_t enqueued_ms, assigned_ms, limbo_until;
    Omni__V1__Queued *q;            /* unpacked, owned: what routing and replies need to know */
    /* The decision behind the current offer, for the `assigned` event. */
    router_strategy_t strategy;
    int step;
    uint32_t pool;
    int64_t score;
} conv_t;

typedef enum { DONE_NONE, DONE_ASSIGN, DONE_OK, DONE_REPLY } done_t;

/* One durable routing write, with what to do once Redis has it. */
typedef struct {
    char conv[ROUTER_ID_MAX];
    const char *action;             /* static: "set", "del", "close", "" */
    uint8_t *record, *partial;      /* owned */
    size_t record_len, partial_len;
    char last_agent[ROUTER_ID_MAX];
    const char *flags;              /* static */
    const char *channel;            /* static: PUB topic */
    done_t done;
    char agent[ROUTER_ID_MAX];      /* who gets the completion */
    uint64_t request_id, offer_id;
    uint8_t *outbound;              /* DONE_REPLY: packed Envelope for the adapter, owned; kept in the
                                     * outbox hash until the adapter reports */
    size_t outbound_len;
    char reply_key[200];            /* agent + reply_id: Redis answers a repeat with the first reply */
    int outbox_remove;              /* remove outbound_id from the outbox hash */
    int closes;                     /* this op closes the conversation: finish (or reopen) it after */
    int chnum;
    char account[128];
    char outbound_id[40];
} rop_t;

typedef struct {
    routing_t *rt;
    size_t n;
    rop_t ops[];
} rbatch_t;

/* A reply on its way to a customer: resent until its adapter reports the outcome. */
typedef struct {
    char id[40];                    /* outbound_id */
    char conv[ROUTER_ID_MAX];
    uint8_t *env;                   /* packed Envelope{outbound}, owned */
    size_t len;
    int chnum;
    char account[128];
    int64_t created_ms, next_ms;
    unsigned sends;
} outq_t;

/* What an agent said about itself at login, for omnictl agents (the router keeps only ids). */
typedef struct {
    char id[ROUTER_ID_MAX];
    size_t n_skills;
    char skill[ROUTER_MAX_AGENT_SKILLS][ROUTER_NAME_MAX];
    uint32_t level[ROUTER_MAX_AGENT_SKILLS];
} agent_rec_t;

struct routing {
    const config_t *cfg;
    routecfg_t *rc;
    router_t *router;
    store_t *st;
    ingest_t *in;
    agents_t *agents;
    void *pub;
    int64_t started_ms, now_ms, next_scan_ms;
    strmap_t convs, offers, agent_recs, outq;
    rop_t *ops;
    size_t nops, capops;
    int calls;
    uint64_t outbound_seq;
    int64_t (*clock)(void);         /* wall clock in ms: omni_now_ms, or a test's */
    size_t n_limbo;                 /* conversations waiting for their agent after a restart */
    size_t retry_front;             /* ops at the head of rt->ops put back by failed calls, in order */
    int64_t retry_at_ms;            /* no new call before this after a failed one (Redis loading...) */
    const char *offline_reason;     /* set while we take an agent offline: names the requeues */
};

static const char *const strategy_names[] = {"longest_idle", "least_occupancy", "round_robin", "fewest_assigned",
                                             "sticky"};

static int rch(int chnum) { return chnum - 1; } /* Omni__V1__Channel -> ROUTER_CH_* */

static const Omni__V1__AgentState agent_state[] = {
    [ROUTER_OFFLINE] = OMNI__V1__AGENT_STATE__AGENT_STATE_OFFLINE,
    [ROUTER_AVAILABLE] = OMNI__V1__AGENT_STATE__AGENT_STATE_AVAILABLE,
    [ROUTER_AWAY] = OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY,
    [ROUTER_WRAP_UP] = OMNI__V1__AGENT_STATE__AGENT_STATE_WRAP_UP,
};

/* ---------- conversations ---------- */

static void conv_free(conv_t *c)
{
    if (!c)
        return;
    if (c->q)
        omni__v1__queued__free_unpacked(c->q, NULL);
    free(c);
}

static conv_t *conv_get(routing_t *rt, const char *id) { return strmap_get(&rt->convs, id); }

static void conv_drop(routing_t *rt, conv_t *c)
{
    if (c->offer_key[0])
        strmap_del(&rt->offers, c->offer_key);
    strmap_del(&rt->convs, c->id);
    conv_free(c);
}

static void offer_key(uint64_t offer_id, char out[24]) { snprintf(out, 24, "%" PRIx64, offer_id); }

static void conv_set_offer(routing_t *rt, conv_t *c, uint64_t offer_id)
{
    if (c->offer_key[0])
        strmap_del(&rt->offers, c->offer_key);
    c->offer_key[0] = 0;
    if (offer_id) {
        offer_key(offer_id, c->offer_key);
        if (strmap_put(&rt->offers, c->offer_key, c) != 0)
            c->offer_key[0] = 0; /* the agent's accept then gets unknown_offer; the offer times out */
    }
}

/* ---------- packing ---------- */

static uint8_t *pack_event(routing_t *rt, const conv_t *c, Omni__V1__StreamEvent *ev, size_t *len)
{
    ev->time_ms = rt->now_ms;
    ev->tenant = rt->cfg->tenant;
    ev->customer_id = (char *)c->customer;
    ev->conversation_id = (char *)c->id;
    ev->channel = c->chnum;
    *len = omni__v1__stream_event__get_packed_size(ev);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        omni__v1__stream_event__pack(ev, buf);
    return buf;
}

/* The Queued of a conversation as it stands now (queue may have changed by transfer/overflow). */
static Omni__V1__Queued queued_now(routing_t *rt, const conv_t *c, int requeued, const char *reason)
{
    Omni__V1__Queued q = *c->q;
    q.base.unknown_fields = NULL;
    q.base.n_unknown_fields = 0;
    q.queue = (char *)router_queue_name(rt->router, c->queue);
    q.enqueued_ms = c->enqueued_ms;
    q.requeued = requeued;
    q.reason = (char *)(reason ? reason : "");
    return q;
}

static uint8_t *pack_record(routing_t *rt, const conv_t *c, size_t *len)
{
    Omni__V1__RoutingRecord r = OMNI__V1__ROUTING_RECORD__INIT;
    Omni__V1__Queued q = queued_now(rt, c, 0, NULL);
    r.conversation_id = (char *)c->id;
    r.customer_id = (char *)c->customer;
    r.channel = c->chnum;
    r.queued = &q;
    r.agent_id = (char *)c->agent;
    r.assigned_ms = c->agent[0] ? c->assigned_ms : 0;
    *len = omni__v1__routing_record__get_packed_size(&r);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        omni__v1__routing_record__pack(&r, buf);
    return buf;
}

/* ---------- durable writes ---------- */

/* A blank write for conversation conv_id. */
static rop_t *op_push(routing_t *rt, const char *conv_id, int chnum)
{
    if (rt->nops == rt->capops) {
        size_t cap = rt->capops ? rt->capops * 2 : 256;
        rop_t *ops = realloc(rt->ops, cap * sizeof(*ops));
        if (!ops)
            return NULL;
        rt->ops = ops;
        rt->capops = cap;
    }
    rop_t *o = &rt->ops[rt->nops++];
    memset(o, 0, sizeof(*o));
    snprintf(o->conv, sizeof(o->conv), "%s", conv_id);
    o->action = "";
    o->flags = "";
    o->channel = omni_channel_name(chnum);
    o->chnum = chnum;
    return o;
}

static rop_t *op_new(routing_t *rt, const conv_t *c, const char *action)
{
    rop_t *o = op_push(rt, c->id, c->chnum);
    if (!o)
        return NULL;
    o->action = action;
    if ((strcmp(action, "set") == 0 || strcmp(action, "reopen") == 0) && !(o->record = pack_record(rt, c, &o->record_len))) {
        rt->nops--;
        return NULL;
    }
    return o;
}

static void op_clear(rop_t *o)
{
    free(o->record);
    free(o->partial);
    free(o->outbound);
}

/* Queue a write: state change `action` plus (if ev) a routing event. Out of memory loses the
 * write, which a restart would notice as stale state: logged, never silent. */
static rop_t *persist(routing_t *rt, const conv_t *c, const char *action, Omni__V1__StreamEvent *ev)
{
    rop_t *o = op_new(rt, c, action);
    if (o && ev && !(o->partial = pack_event(rt, c, ev, &o->partial_len))) {
        op_clear(o);
        rt->nops--;
        o = NULL;
    }
    if (!o)
        LOG_ERROR("routing: out of memory writing %s of %s", action, c->id);
    return o;
}

static void publish(routing_t *rt, const char *channel, uint64_t seq, const uint8_t *partial, size_t len)
{
    Omni__V1__StreamEvent head = OMNI__V1__STREAM_EVENT__INIT;
    uint8_t stackbuf[2048];
    head.seq = seq;
    size_t hl = omni__v1__stream_event__get_packed_size(&head), total = hl + len;
    uint8_t *buf = total <= sizeof(stackbuf) ? stackbuf : malloc(total);
    if (!buf)
        return;
    omni__v1__stream_event__pack(&head, buf);
    memcpy(buf + hl, partial, len);
    zmq_send(rt->pub, channel, strlen(channel), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(rt->pub, buf, total, ZMQ_DONTWAIT);
    metrics_inc(M_EVENTS_APPENDED);
    if (buf != stackbuf)
        free(buf);
}

static void send_ok(routing_t *rt, const rop_t *o, uint64_t seq, int duplicate)
{
    Omni__V1__AgentOk ok = OMNI__V1__AGENT_OK__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    ok.outbound_id = (char *)o->outbound_id;
    ok.seq = seq;
    ok.duplicate = duplicate;
    env.request_id = o->request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_OK;
    env.ok = &ok;
    agents_send(rt->agents, o->agent, &env);
}

static void send_assignment(routing_t *rt, const rop_t *o, const store_route_result_t *res)
{
    conv_t *c = conv_get(rt, o->conv);
    if (!c || strcmp(c->agent, o->agent) != 0)
        return; /* gone again before it was durable (closed, agent offline): nothing to hand over */
    Omni__V1__Assignment a = OMNI__V1__ASSIGNMENT__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    Omni__V1__StreamEvent **hist = calloc(res->n_history + 1, sizeof(*hist));
    size_t nh = 0;
    for (size_t i = 0; hist && i < res->n_history; i++)
        if ((hist[nh] = omni__v1__stream_event__unpack(NULL, res->history[i].len, res->history[i].bytes)))
            nh++;
    a.offer_id = o->offer_id;
    a.conversation_id = c->id;
    a.customer_id = c->customer;
    a.channel = c->chnum;
    a.provider = c->q->provider;
    a.queue = (char *)router_queue_name(rt->router, c->queue);
    a.subject = c->q->subject;
    a.history = hist;
    a.n_history = nh;
    a.restored = o->offer_id == 0;
    env.request_id = o->request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT;
    env.assignment = &a;
    agents_send(rt->agents, o->agent, &env);
    for (size_t i = 0; i < nh; i++)
        omni__v1__stream_event__free_unpacked(hist[i], NULL);
    free(hist);
}

static const adapter_rec_t *adapter_for(routing_t *rt, int chnum, const char *account)
{
    const adapter_rec_t *list, *best = NULL;
    size_t n = rt->in ? ingest_adapters(rt->in, &list) : 0;
    for (size_t i = 0; i < n; i++) {
        if ((int)list[i].channel != chnum)
            continue;
        if (!best)
            best = &list[i];
        /* Prefer the adapter that serves the account the customer wrote to. */
        const char *p = account && *account ? strstr(list[i].accounts, account) : NULL;
        size_t al = account ? strlen(account) : 0;
        if (p && (p == list[i].accounts || p[-1] == ',') && (p[al] == 0 || p[al] == ','))
            return &list[i];
    }
    return best;
}

static void outq_send(routing_t *rt, outq_t *q)
{
    const adapter_rec_t *ad = adapter_for(rt, q->chnum, q->account);
    if (!ad) {
        q->next_ms = rt->now_ms + OUTQ_WAIT_MS;
        return;
    }
    reply_send(&ad->to, q->env, q->len);
    metrics_inc(M_OUTBOUND_SENT);
    q->sends++;
    q->next_ms = rt->now_ms + OUTQ_RETRY_MS;
}

/* Delivered, refused for good or given up: out of memory and out of the outbox hash. */
static void outq_drop(routing_t *rt, outq_t *q)
{
    rop_t *o = op_push(rt, q->conv, q->chnum);
    if (o) {
        snprintf(o->outbound_id, sizeof(o->outbound_id), "%s", q->id);
        o->outbox_remove = 1;
    }
    strmap_del(&rt->outq, q->id);
    free(q->env);
    free(q);
}

/* The reply is durable in the stream and the outbox hash; from here it is delivered at least
 * once. Takes env. */
static void outq_add(routing_t *rt, const char *id, const char *conv, int chnum, const char *account, uint8_t *env,
                     size_t len)
{
    outq_t *q = calloc(1, sizeof(*q));
    if (q)
        snprintf(q->id, sizeof(q->id), "%s", id);
    if (!q || strmap_get(&rt->outq, q->id) || strmap_put(&rt->outq, q->id, q) != 0) {
        free(q);
        free(env);
        return; /* still in the outbox hash: the next restart delivers it */
    }
    snprintf(q->conv, sizeof(q->conv), "%s", conv);
    q->env = env;
    q->len = len;
    q->chnum = chnum;
    snprintf(q->account, sizeof(q->account), "%s", account);
    q->created_ms = rt->now_ms;
    outq_send(rt, q);
}

static void outq_scan(routing_t *rt)
{
    const char *k;
    void *v;
    outq_t *due[256];
    size_t n = 0;
    for (size_t i = 0; n < 256 && (i = strmap_next(&rt->outq, i, &k, &v)) != 0;)
        if (((outq_t *)v)->next_ms <= rt->now_ms)
            due[n++] = v;
    for (size_t i = 0; i < n; i++) {
        if (rt->now_ms - due[i]->created_ms > OUTQ_TTL_MS) {
            LOG_ERROR("routing: reply %s never reported delivered after %u send(s); given up", due[i]->id,
                      due[i]->sends);
            metrics_inc(M_OUTBOUND_FAILED);
            outq_drop(rt, due[i]);
        } else {
            outq_send(rt, due[i]);
        }
    }
}

static void complete(routing_t *rt, rop_t *o, const store_route_result_t *res)
{
    switch (o->done) {
    case DONE_NONE: break;
    case DONE_ASSIGN: send_assignment(rt, o, res); break;
    case DONE_OK: send_ok(rt, o, res->seq, 0); break;
    case DONE_REPLY: {
        /* Our own write again (its first answer was lost and the op retried) is no duplicate. */
        int ours = res->duplicate && strcmp(res->first_outbound, o->outbound_id) == 0;
        if (res->duplicate && !ours) { /* a resent Reply: the first is stored, delivered or on its way */
            snprintf(o->outbound_id, sizeof(o->outbound_id), "%s", res->first_outbound);
            send_ok(rt, o, res->first_seq, 1);
            break;
        }
        outq_add(rt, o->outbound_id, o->conv, o->chnum, o->account, o->outbound, o->outbound_len);
        o->outbound = NULL;
        if (o->agent[0])
            send_ok(rt, o, ours ? res->first_seq : res->seq, 0);
        break;
    }
    }
}

static void fail_op(routing_t *rt, rop_t *o)
{
    if (o->done != DONE_NONE && o->agent[0]) {
        Omni__V1__AgentError e = OMNI__V1__AGENT_ERROR__INIT;
        Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
        e.code = "storage";
        e.detail = "the routing write failed; see the broker log";
        env.request_id = o->request_id;
        env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_ERROR;
        env.error = &e;
        agents_send(rt->agents, o->agent, &env);
    }
}

static void conv_reopen(routing_t *rt, conv_t *c);

/* The close of conv_id is in Redis (or failed for good): forget it, unless a customer message
 * raced it, which puts the conversation back in its queue. */
static void close_done(routing_t *rt, const char *conv_id, int ok)
{
    conv_t *c = conv_get(rt, conv_id);
    if (!c || !c->closing)
        return;
    if (ok && c->reopen)
        conv_reopen(rt, c);
    else
        conv_drop(rt, c);
}

static void on_routed(int err, const store_route_result_t *res, size_t n, void *ud)
{
    rbatch_t *b = ud;
    routing_t *rt = b->rt;
    rt->calls--;
    if (err == OMNI_EUNAVAIL || (!err && n != b->n)) {
        /* Redis went away (or answered oddly): write the same ops again, first, in order. Ops
         * are idempotent state writes; an event whose reply was lost may appear twice. */
        metrics_inc(M_ROUTING_STORE_RETRIES);
        size_t need = rt->nops + b->n;
        if (need > rt->capops) {
            rop_t *ops = realloc(rt->ops, need * sizeof(*ops));
            if (ops) {
                rt->ops = ops;
                rt->capops = need;
            }
        }
        if (need <= rt->capops) {
            /* Behind the ops earlier failed calls already put back: calls fail in the order they
             * were made, so the writes keep their original order. */
            size_t at = rt->retry_front;
            memmove(rt->ops + at + b->n, rt->ops + at, (rt->nops - at) * sizeof(*rt->ops));
            memcpy(rt->ops + at, b->ops, b->n * sizeof(*rt->ops));
            rt->nops = need;
            rt->retry_front += b->n;
            rt->retry_at_ms = rt->clock() + 100;
            free(b);
            return;
        }
        err = OMNI_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        rop_t *o = &b->ops[i];
        if (err) {
            LOG_ERROR("routing: write of %s failed: %s", o->conv, omni_strerror(err));
            fail_op(rt, o);
        } else {
            if (res[i].seq && o->partial)
                publish(rt, o->channel, res[i].seq, o->partial, o->partial_len);
            complete(rt, o, &res[i]);
        }
        if (o->closes)
            close_done(rt, o->conv, !err);
        op_clear(o);
    }
    free(b);
}

void routing_flush(routing_t *rt)
{
    /* After a failed call, wait for the calls still out (they fail or succeed in order) and a
     * moment, so a Redis that is loading is not hammered. */
    if (rt->retry_front && (rt->calls > 0 || rt->clock() < rt->retry_at_ms))
        return;
    rt->retry_front = 0;
    while (rt->nops && rt->calls < CALLS_MAX && store_state(rt->st) == STORE_UP) {
        size_t n = rt->nops < OPS_BATCH_MAX ? rt->nops : OPS_BATCH_MAX;
        rbatch_t *b = malloc(sizeof(*b) + n * sizeof(rop_t));
        store_route_op_t *sops = calloc(n, sizeof(*sops));
        if (!b || !sops) {
            free(b);
            free(sops);
            return;
        }
        b->rt = rt;
        b->n = n;
        memcpy(b->ops, rt->ops, n * sizeof(rop_t));
        for (size_t i = 0; i < n; i++) {
            const rop_t *o = &b->ops[i];
            sops[i] = (store_route_op_t){o->conv, o->action, o->record, o->record_len, o->last_agent, o->flags,
                                         o->partial, o->partial_len, o->reply_key[0] ? o->reply_key : NULL,
                                         o->outbound || o->outbox_remove ? o->outbound_id : NULL, o->outbound,
                                         o->outbound_len};
        }
        int rc = store_route(rt->st, sops, n, on_routed, b);
        free(sops);
        if (rc != 0) {
            free(b);
            return; /* still queued; next time */
        }
        rt->calls++;
        memmove(rt->ops, rt->ops + n, (rt->nops - n) * sizeof(rop_t));
        rt->nops -= n;
    }
}

size_t routing_pending(const routing_t *rt) { return rt->nops + (size_t)rt->calls; }

/* ---------- events ---------- */

static void ev_queued(routing_t *rt, conv_t *c, int requeued, const char *reason)
{
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Queued q = queued_now(rt, c, requeued, reason);
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_QUEUED;
    ev.queued = &q;
    persist(rt, c, "set", &ev);
    metrics_inc(M_QUEUED);
}

/* Closes c: a `closed` event and the Redis close. The entry stays (closing) until that write
 * is done, so a customer message that races the close is noticed and routed again. */
static rop_t *conv_close(routing_t *rt, conv_t *c, const char *agent, const char *disposition)
{
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Closed cl = OMNI__V1__CLOSED__INIT;
    cl.agent_id = (char *)agent;
    cl.disposition = (char *)disposition;
    cl.queue = (char *)router_queue_name(rt->router, c->queue);
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_CLOSED;
    ev.closed = &cl;
    rop_t *o = persist(rt, c, "close", &ev);
    metrics_inc(M_CLOSED);
    c->closing = 1;
    c->agent[0] = 0;
    conv_set_offer(rt, c, 0);
    if (o)
        o->closes = 1;
    else
        conv_drop(rt, c);
    return o;
}

static void ev_offer_ended(routing_t *rt, conv_t *c, const char *agent, uint64_t offer_id, const char *reason)
{
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__OfferEnded oe = OMNI__V1__OFFER_ENDED__INIT;
    oe.agent_id = (char *)agent;
    oe.offer_id = offer_id;
    oe.reason = (char *)reason;
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED;
    ev.offer_ended = &oe;
    persist(rt, c, "", &ev);
}

/* ---------- outbound ---------- */

static int build_outbound(routing_t *rt, const conv_t *c, const char *agent, const char *text, const char *subject,
                          rop_t *o)
{
    Omni__V1__OutboundMessage m = OMNI__V1__OUTBOUND_MESSAGE__INIT;
    Omni__V1__ThreadRefs th = OMNI__V1__THREAD_REFS__INIT;
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    char subj[1024];
    snprintf(o->outbound_id, sizeof(o->outbound_id), "out_%" PRId64 "_%" PRIu64, rt->started_ms, ++rt->outbound_seq);
    snprintf(o->account, sizeof(o->account), "%s", c->q->channel_account);
    if ((!subject || !*subject) && c->q->subject[0])
        snprintf(subj, sizeof(subj), "%s%s", strncasecmp(c->q->subject, "Re:", 3) ? "Re: " : "", c->q->subject);
    else
        snprintf(subj, sizeof(subj), "%s", subject ? subject : "");
    m.outbound_id = o->outbound_id;
    m.channel = c->chnum;
    m.channel_account = c->q->channel_account;
    m.provider = c->q->provider;
    m.conversation_id = (char *)c->id;
    m.customer_id = (char *)c->customer;
    m.to = c->q->reply_to;
    m.text = (char *)text;
    m.subject = subj;
    m.agent_id = (char *)agent;
    if (c->q->trigger_message_id[0] && c->chnum == OMNI__V1__CHANNEL__CHANNEL_EMAIL) {
        th.in_reply_to = c->q->trigger_message_id;
        m.thread = &th;
    }
    env.body_case = OMNI__V1__ENVELOPE__BODY_OUTBOUND;
    env.outbound = &m;
    o->outbound_len = omni__v1__envelope__get_packed_size(&env);
    if (!(o->outbound = malloc(o->outbound_len)))
        return OMNI_ENOMEM;
    omni__v1__envelope__pack(&env, o->outbound);
    o->done = DONE_REPLY;
    return 0;
}

/* An agent_message event and its delivery, once durable. agent "" = the broker's auto-reply. */
static int reply_out(routing_t *rt, const conv_t *c, const char *agent, const char *text, const char *subject,
                     const char *reply_id, uint64_t request_id)
{
    if (rt->outq.n >= OUTQ_MAX)
        return OMNI_EFULL;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__AgentMessage am = OMNI__V1__AGENT_MESSAGE__INIT;
    rop_t *o = persist(rt, c, "", NULL);
    if (!o)
        return OMNI_ENOMEM;
    if (build_outbound(rt, c, agent, text, subject, o) != 0) {
        op_clear(o);
        rt->nops--;
        return OMNI_ENOMEM;
    }
    am.agent_id = (char *)agent;
    am.text = (char *)text;
    am.subject = (char *)(subject ? subject : "");
    am.outbound_id = o->outbound_id;
    am.to = c->q->reply_to;
    am.auto_reply = !*agent;
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE;
    ev.agent_message = &am;
    if (!(o->partial = pack_event(rt, c, &ev, &o->partial_len))) {
        op_clear(o);
        rt->nops--;
        return OMNI_ENOMEM;
    }
    o->flags = "r";
    snprintf(o->agent, sizeof(o->agent), "%s", agent);
    if (reply_id && *reply_id)
        snprintf(o->reply_key, sizeof(o->reply_key), "%s/%s", agent, reply_id);
    o->request_id = request_id;
    metrics_inc(M_AGENT_MESSAGES);
    return 0;
}

/* ---------- router decisions ---------- */

static void send_to_agent(routing_t *rt, const char *agent, Omni__V1__AgentEnvelope *env)
{
    agents_send(rt->agents, agent, env);
}

static void on_offer(routing_t *rt, conv_t *c, const router_decision_t *d)
{
    Omni__V1__Offer of = OMNI__V1__OFFER__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Offered od = OMNI__V1__OFFERED__INIT;
    const routecfg_queue_t *qc = &rt->rc->queues[d->queue];
    conv_set_offer(rt, c, d->offer_id);
    c->strategy = d->strategy;
    c->step = d->step;
    c->pool = d->pool_size;
    c->score = d->score;
    of.offer_id = d->offer_id;
    of.conversation_id = c->id;
    of.customer_id = c->customer;
    of.channel = c->chnum;
    of.provider = c->q->provider;
    of.queue = (char *)router_queue_name(rt->router, d->queue);
    of.category = c->q->category;
    of.timeout_ms = qc->rq.offer_timeout_ms;
    of.wait_ms = rt->now_ms - c->enqueued_ms;
    of.strategy = (char *)strategy_names[d->strategy];
    of.step = (uint32_t)d->step;
    of.pool_size = d->pool_size;
    of.score = d->score;
    of.preview = c->q->preview;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_OFFER;
    env.offer = &of;
    send_to_agent(rt, d->agent_id, &env);
    od.agent_id = (char *)d->agent_id;
    od.offer_id = d->offer_id;
    od.queue = of.queue;
    od.strategy = of.strategy;
    od.step = of.step;
    od.pool_size = d->pool_size;
    od.score = d->score;
    od.timeout_ms = of.timeout_ms;
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_OFFERED;
    ev.offered = &od;
    persist(rt, c, "", &ev);
    metrics_inc(M_OFFERS);
}

static void on_revoke(routing_t *rt, conv_t *c, const router_decision_t *d)
{
    const char *reason = rt->offline_reason ? "agent_offline" : "timeout";
    conv_set_offer(rt, c, 0);
    if (!rt->offline_reason) {
        Omni__V1__Revoke rv = OMNI__V1__REVOKE__INIT;
        Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
        rv.offer_id = d->offer_id;
        rv.conversation_id = c->id;
        rv.reason = (char *)reason;
        env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_REVOKE;
        env.revoke = &rv;
        send_to_agent(rt, d->agent_id, &env);
        metrics_inc(M_OFFERS_TIMED_OUT);
    }
    ev_offer_ended(rt, c, d->agent_id, d->offer_id, reason);
}

static void on_state(routing_t *rt, const router_decision_t *d)
{
    Omni__V1__AgentStatus s = OMNI__V1__AGENT_STATUS__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    s.state = agent_state[d->state];
    s.reason = d->state == ROUTER_AWAY ? "missed_offers" : d->state == ROUTER_WRAP_UP ? "wrap_up" : "wrap_up_done";
    if (d->state == ROUTER_AWAY) {
        metrics_inc(M_AUTO_PAUSED);
        LOG_INFO("routing: agent %s missed %u offers in a row: away", d->agent_id, rt->rc->max_missed);
    }
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_STATUS;
    env.status = &s;
    send_to_agent(rt, d->agent_id, &env);
}

static void on_decision(void *ctx, const router_decision_t *d)
{
    routing_t *rt = ctx;
    if (d->kind == ROUTER_D_STATE) {
        on_state(rt, d);
        return;
    }
    conv_t *c = conv_get(rt, d->task_id);
    if (!c) {
        LOG_ERROR("routing: decision for unknown conversation %s", d->task_id);
        return;
    }
    switch (d->kind) {
    case ROUTER_D_OFFER: on_offer(rt, c, d); break;
    case ROUTER_D_REVOKE: on_revoke(rt, c, d); break;
    case ROUTER_D_REQUEUE:
        c->agent[0] = 0;
        ev_queued(rt, c, 1, rt->offline_reason ? rt->offline_reason : "agent_offline");
        metrics_inc(M_REQUEUED);
        break;
    case ROUTER_D_OVERFLOW: {
        Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
        Omni__V1__Transferred tr = OMNI__V1__TRANSFERRED__INIT;
        c->queue = d->queue;
        tr.from_queue = (char *)router_queue_name(rt->router, d->from_queue);
        tr.to_queue = (char *)router_queue_name(rt->router, d->queue);
        tr.reason = "overflow";
        ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED;
        ev.transferred = &tr;
        persist(rt, c, "set", &ev);
        metrics_inc(M_TRANSFERRED);
        break;
    }
    case ROUTER_D_STATE: break;
    }
}

/* ---------- set-up, recovery ---------- */

int routing_new(const config_t *cfg, routecfg_t *rc, store_t *st, void *agents_sock, void *pub, int64_t started_ms,
                routing_t **out, char *err, size_t errlen)
{
    int rc_ = OMNI_ENOMEM;
    router_limits_t lim;
    routing_t *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        routecfg_destroy(&rc);
        return OMNI_ENOMEM;
    }
    rt->cfg = cfg;
    rt->rc = rc;
    rt->st = st;
    rt->pub = pub;
    rt->started_ms = started_ms;
    rt->clock = omni_now_ms;
    rt->now_ms = rt->clock();
    strmap_init(&rt->convs);
    strmap_init(&rt->offers);
    strmap_init(&rt->agent_recs);
    strmap_init(&rt->outq);
    routecfg_limits(rc, &lim);
    if (router_new(&lim, &rt->router) != 0) {
        snprintf(err, errlen, "cannot create the router (limits too large?)");
        goto out;
    }
    router_set_sink(rt->router, on_decision, rt);
    if ((rc_ = routecfg_apply(rc, rt->router, err, errlen)) != 0)
        goto out;
    if ((rc_ = agents_new(agents_sock, started_ms, rc->heartbeat_timeout_ms, cfg->max_frame_bytes, &rt->agents)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    *out = rt;
    return 0;
out:
    routing_destroy(&rt);
    return rc_;
}

void routing_destroy(routing_t **prt)
{
    routing_t *rt = prt ? *prt : NULL;
    if (!rt)
        return;
    const char *k;
    void *v;
    for (size_t i = 0; (i = strmap_next(&rt->convs, i, &k, &v)) != 0;)
        conv_free(v);
    strmap_free(&rt->convs);
    strmap_free(&rt->offers);
    for (size_t i = 0; (i = strmap_next(&rt->agent_recs, i, &k, &v)) != 0;)
        free(v);
    strmap_free(&rt->agent_recs);
    for (size_t i = 0; (i = strmap_next(&rt->outq, i, &k, &v)) != 0;) {
        free(((outq_t *)v)->env);
        free(v);
    }
    strmap_free(&rt->outq);
    for (size_t i = 0; i < rt->nops; i++)
        op_clear(&rt->ops[i]);
    free(rt->ops);
    agents_destroy(&rt->agents);
    router_destroy(&rt->router);
    routecfg_destroy(&rt->rc);
    free(rt);
    *prt = NULL;
}

void routing_set_ingest(routing_t *rt, ingest_t *in) { rt->in = in; }

void routing_set_clock(routing_t *rt, int64_t (*clock)(void)) { rt->clock = clock; }

/* A new conversation table entry from its Queued (owned by the entry from now on). */
static conv_t *conv_add(routing_t *rt, const char *id, const char *customer, int chnum, Omni__V1__Queued *q)
{
    int queue = routecfg_queue_index(rt->rc, q->queue);
    conv_t *c = calloc(1, sizeof(*c));
    if (!c || chnum < 1 || chnum > 4 || strlen(id) >= sizeof(c->id) || conv_get(rt, id)) {
        free(c);
        omni__v1__queued__free_unpacked(q, NULL);
        return NULL;
    }
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->customer, sizeof(c->customer), "%s", customer);
    c->chnum = chnum;
    c->q = q;
    /* A queue that a config change removed: its conversations go to the default queue. */
    c->queue = queue >= 0 ? queue : routecfg_queue_index(rt->rc, rt->rc->default_queue);
    c->enqueued_ms = q->enqueued_ms ? q->enqueued_ms : rt->now_ms;
    if (strmap_put(&rt->convs, c->id, c) != 0) {
        conv_free(c);
        return NULL;
    }
    return c;
}

/* Into the router. A new conversation is admitted (max_length, overflow); one the router had
 * before (recovery, an agent that never came back) is readmitted, never refused for length. */
static int conv_enqueue(routing_t *rt, conv_t *c, int readmit)
{
    const char *pref = c->q->preferred_agent;
    if (!pref[0] || !router_agent_exists(rt->router, pref))
        pref = NULL;
    /* enqueued_ms is wall time from Redis: after a clock step back it could lie ahead of ours. */
    if (c->enqueued_ms > rt->now_ms)
        c->enqueued_ms = rt->now_ms;
    int rc = readmit ? router_readmit_at(rt->router, c->id, c->queue, rch(c->chnum), c->q->priority_ms,
                                         c->enqueued_ms, rt->now_ms)
                     : router_enqueue_at(rt->router, c->id, c->queue, rch(c->chnum), c->q->priority_ms, pref,
                                         c->enqueued_ms, rt->now_ms);
    if (rc == 0)
        return 0;
    LOG_WARN("routing: %s cannot enter queue %s: %s", c->id, router_queue_name(rt->router, c->queue),
             omni_strerror(rc));
    metrics_inc(M_QUEUE_FULL);
    conv_close(rt, c, "", rc == OMNI_EFULL ? "queue_full" : "unroutable");
    return rc;
}

/* A message came in while the conversation was being closed: it is open again, in Redis (the
 * `reopen` write) and in its queue, waiting from now. */
static void conv_reopen(routing_t *rt, conv_t *c)
{
    c->closing = c->reopen = 0;
    c->enqueued_ms = rt->now_ms;
    LOG_INFO("routing: %s: a customer message raced its close; reopened", c->id);
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Queued q = queued_now(rt, c, 1, "message_after_close");
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_QUEUED;
    ev.queued = &q;
    persist(rt, c, "reopen", &ev);
    metrics_inc(M_QUEUED);
    conv_enqueue(rt, c, 0);
}

typedef struct {
    routing_t *rt;
    size_t waiting, limbo, bad;
} recover_ctx_t;

static int recover_one(const uint8_t *bytes, size_t len, void *ud)
{
    recover_ctx_t *x = ud;
    routing_t *rt = x->rt;
    Omni__V1__RoutingRecord *r = omni__v1__routing_record__unpack(NULL, len, bytes);
    conv_t *c = NULL;
    if (r && conv_get(rt, r->conversation_id)) {
        omni__v1__routing_record__free_unpacked(r, NULL);
        return 0;
    }
    if (r && r->queued && r->conversation_id[0]) {
        Omni__V1__Queued *q = r->queued;
        r->queued = NULL; /* the conversation owns it now */
        c = conv_add(rt, r->conversation_id, r->customer_id, r->channel, q);
    }
    if (!c) {
        x->bad++;
    } else if (r->agent_id[0]) {
        c->state = CV_LIMBO;
        snprintf(c->agent, sizeof(c->agent), "%s", r->agent_id);
        c->assigned_ms = r->assigned_ms;
        c->limbo_until = rt->now_ms + rt->rc->reclaim_ms;
        x->limbo++;
        rt->n_limbo++;
    } else if (conv_enqueue(rt, c, 1) == 0) {
        x->waiting++;
    }
    if (r)
        omni__v1__routing_record__free_unpacked(r, NULL);
    return 0;
}

/* A reply stored before the restart whose delivery was never confirmed: on its way again. */
static int recover_outbound(const uint8_t *bytes, size_t len, void *ud)
{
    routing_t *rt = ud;
    Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, len, bytes);
    uint8_t *copy = env && env->body_case == OMNI__V1__ENVELOPE__BODY_OUTBOUND ? malloc(len) : NULL;
    if (copy) {
        const Omni__V1__OutboundMessage *m = env->outbound;
        memcpy(copy, bytes, len);
        outq_add(rt, m->outbound_id, m->conversation_id, m->channel, m->channel_account, copy, len);
    } else {
        LOG_ERROR("routing: unreadable entry in the outbox hash skipped");
    }
    if (env)
        omni__v1__envelope__free_unpacked(env, NULL);
    return 0;
}

int routing_recover(routing_t *rt, char *err, size_t errlen)
{
    recover_ctx_t x = {rt, 0, 0, 0};
    rt->now_ms = rt->clock();
    int rc = store_load_hash(rt->st, "outbox", recover_outbound, rt, err, errlen);
    if (rc == 0 && rt->outq.n)
        LOG_INFO("routing: %zu undelivered repl%s from before the restart will be sent again", rt->outq.n,
                 rt->outq.n == 1 ? "y" : "ies");
    if (rc == 0)
        rc = store_load_hash(rt->st, "routing", recover_one, &x, err, errlen);
    if (rc == 0)
        LOG_INFO("routing: recovered %zu waiting and %zu assigned conversation(s)%s", x.waiting, x.limbo,
                 x.bad ? " (some records unreadable: see routing_bad_records)" : "");
    if (x.bad)
        LOG_ERROR("routing: %zu routing record(s) in Redis could not be read and were skipped", x.bad);
    return rc;
}

/* ---------- ingest side ---------- */

/* At most max bytes of s, cut on a character boundary (s is valid UTF-8: validated). */
static void utf8_prefix(const char *s, size_t max, char *out)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = 0;
}

int routing_stub(routing_t *rt, const Omni__V1__InboundMessage *m, uint8_t **out, size_t *len)
{
    match_result_t mr;
    const char *keys[64], *vals[64];
    size_t na = 0;
    for (size_t i = 0; i < m->n_attributes && na < 64; i++, na++) {
        keys[na] = m->attributes[i]->key;
        vals[na] = m->attributes[i]->value;
    }
    if (match_classify(rt->rc->rules, rch(m->channel), m->provider, m->is_public, m->locale, m->text, m->subject,
                       keys, vals, na, &mr) != 0)
        return OMNI_EINVAL;
    if (routecfg_queue_index(rt->rc, mr.queue) < 0) /* checked at load: cannot happen */
        return OMNI_EINVAL;
    Omni__V1__Queued q = OMNI__V1__QUEUED__INIT;
    char preview[PREVIEW_MAX + 4];
    q.queue = (char *)mr.queue;
    q.category = (char *)(mr.category ? mr.category : "");
    q.rule = (char *)(mr.rule ? mr.rule : "");
    q.priority_ms = mr.priority_ms;
    q.provider = m->provider;
    q.reply_to = m->from;
    q.subject = m->subject;
    q.trigger_message_id = m->provider_message_id;
    q.channel_account = m->channel_account;
    q.preview = preview;
    utf8_prefix(m->text, PREVIEW_MAX, preview);
    *len = omni__v1__queued__get_packed_size(&q);
    if (!(*out = malloc(*len ? *len : 1)))
        return OMNI_ENOMEM;
    omni__v1__queued__pack(&q, *out);
    return 0;
}

static void after_hours(routing_t *rt, conv_t *c, const routecfg_queue_t *qc)
{
    metrics_inc(M_AFTER_HOURS);
    if (qc->after_hours_message[0] && reply_out(rt, c, "", qc->after_hours_message, NULL, NULL, 0) != 0)
        LOG_WARN("routing: after-hours notice for %s not sent: too many replies waiting", c->id);
}

static void on_queued(routing_t *rt, Omni__V1__StreamEvent *ev)
{
    Omni__V1__Queued *q = ev->queued;
    ev->queued = NULL;
    ev->kind_case = OMNI__V1__STREAM_EVENT__KIND__NOT_SET;
    conv_t *c = conv_add(rt, ev->conversation_id, ev->customer_id, ev->channel, q);
    if (!c) {
        LOG_ERROR("routing: cannot route %s (bad channel, id or out of memory)", ev->conversation_id);
        return;
    }
    metrics_inc(M_QUEUED);
    const routecfg_queue_t *qc = &rt->rc->queues[c->queue];
    if (qc->calendar >= 0 && !hours_is_open(rt->rc->calendars[qc->calendar], rt->now_ms)) {
        after_hours(rt, c, qc);
        if (qc->after_hours == ROUTECFG_AFTER_REJECT) {
            conv_close(rt, c, "", "after_hours");
            return;
        }
    }
    conv_enqueue(rt, c, 0);
}

static void forward_event(routing_t *rt, const conv_t *c, const uint8_t *bytes, size_t len)
{
    Omni__V1__StreamEvent *ev = omni__v1__stream_event__unpack(NULL, len, bytes);
    if (!ev)
        return;
    Omni__V1__ConversationEvent ce = OMNI__V1__CONVERSATION_EVENT__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    ce.event = ev;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_EVENT;
    env.event = &ce;
    send_to_agent(rt, c->agent, &env);
    omni__v1__stream_event__free_unpacked(ev, NULL);
}

/* The message that opened c arrives right after its `queued` event (same script call): a close
 * decided in between (after hours, queue full) is not raced by it. */
static int is_opening_message(const conv_t *c, const uint8_t *bytes, size_t len)
{
    Omni__V1__StreamEvent *ev = omni__v1__stream_event__unpack(NULL, len, bytes);
    int opening = ev && ev->message && ev->message->inbound &&
                  strcmp(ev->message->inbound->provider_message_id, c->q->trigger_message_id) == 0;
    if (ev)
        omni__v1__stream_event__free_unpacked(ev, NULL);
    return opening;
}

static void on_merged(routing_t *rt, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__CustomerMerged *m = ev->customer_merged;
    for (size_t i = 0; i < m->n_conversation_ids; i++) {
        conv_t *c = conv_get(rt, m->conversation_ids[i]);
        if (c)
            snprintf(c->customer, sizeof(c->customer), "%s", m->survivor_id);
    }
}

void routing_on_event(routing_t *rt, const char *kind, const char *conversation_id, const uint8_t *bytes,
                      size_t len)
{
    rt->now_ms = rt->clock();
    if (strcmp(kind, "message") == 0) {
        conv_t *c = conversation_id ? conv_get(rt, conversation_id) : NULL;
        if (c && c->closing && !c->reopen)
            c->reopen = !is_opening_message(c, bytes, len);
        else if (c && c->state == CV_ROUTED && c->agent[0])
            forward_event(rt, c, bytes, len);
        return;
    }
    if (strcmp(kind, "routing_record") == 0) {
        recover_ctx_t x = {rt, 0, 0, 0};
        recover_one(bytes, len, &x); /* a no-op for conversations we have */
        return;
    }
    if (strcmp(kind, "queued") != 0 && strcmp(kind, "customer_merged") != 0)
        return;
    Omni__V1__StreamEvent *ev = omni__v1__stream_event__unpack(NULL, len, bytes);
    if (!ev) {
        LOG_ERROR("routing: undecodable %s event", kind);
        return;
    }
    if (ev->kind_case == OMNI__V1__STREAM_EVENT__KIND_QUEUED && ev->queued)
        on_queued(rt, ev);
    else if (ev->kind_case == OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED && ev->customer_merged)
        on_merged(rt, ev);
    omni__v1__stream_event__free_unpacked(ev, NULL);
}

void routing_on_outbound_result(routing_t *rt, const Omni__V1__OutboundResult *r)
{
    outq_t *q = strmap_get(&rt->outq, r->outbound_id);
    if (r->delivered) {
        metrics_inc(M_OUTBOUND_DELIVERED);
    } else {
        LOG_WARN("routing: delivery %s failed%s: %s", r->outbound_id, r->permanent ? " for good" : "", r->error);
        if (!r->permanent && q)
            return; /* sent again at its next retry */
        metrics_inc(M_OUTBOUND_FAILED);
    }
    if (q)
        outq_drop(rt, q);
}

/* ---------- agent requests ---------- */

typedef struct {
    routing_t *rt;
    const char *agent;               /* the session's agent, NULL if none */
    const reply_to_t *to;
    uint64_t request_id;
} req_t;

static void req_error(const req_t *r, const char *code, const char *detail)
{
    agents_error(r->to, r->request_id, code, detail);
}

static void req_ok(const req_t *r)
{
    Omni__V1__AgentOk ok = OMNI__V1__AGENT_OK__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.request_id = r->request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_OK;
    env.ok = &ok;
    agents_reply(r->to, &env);
}

static void send_status(const req_t *r, router_state_t st, const char *reason)
{
    Omni__V1__AgentStatus s = OMNI__V1__AGENT_STATUS__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    s.state = agent_state[st];
    s.reason = (char *)reason;
    env.request_id = r->request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_STATUS;
    env.status = &s;
    agents_reply(r->to, &env);
}

static int state_of(Omni__V1__AgentState s, router_state_t *out)
{
    switch (s) {
    case OMNI__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED:
    case OMNI__V1__AGENT_STATE__AGENT_STATE_AVAILABLE: *out = ROUTER_AVAILABLE; return 0;
    case OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY: *out = ROUTER_AWAY; return 0;
    case OMNI__V1__AGENT_STATE__AGENT_STATE_WRAP_UP: *out = ROUTER_WRAP_UP; return 0;
    default: return OMNI_EINVAL;
    }
}

/* Login -> router agent config; one line in why on bad input. */
static int login_cfg(routing_t *rt, const Omni__V1__Login *l, router_agent_cfg_t *cfg, const char **why)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = l->agent_id;
    cfg->team = -1;
    if (!l->agent_id[0] || strlen(l->agent_id) >= ROUTER_ID_MAX)
        return *why = "agent_id must be 1..63 bytes", OMNI_EINVAL;
    if (l->n_skills + l->n_languages > ROUTER_MAX_AGENT_SKILLS)
        return *why = "too many skills and languages (16 at most)", OMNI_EINVAL;
    for (size_t i = 0; i < l->n_skills + l->n_languages; i++) {
        char name[ROUTER_NAME_MAX + 8];
        int level = 5;
        if (i < l->n_skills) {
            snprintf(name, sizeof(name), "%s", l->skills[i]->name);
            level = l->skills[i]->level ? (int)l->skills[i]->level : 1;
            if (level > 5)
                return *why = "skill levels are 1..5", OMNI_EINVAL;
        } else {
            snprintf(name, sizeof(name), "lang:%s", l->languages[i - l->n_skills]);
        }
        int id = name[0] && strlen(name) < ROUTER_NAME_MAX ? router_skill(rt->router, name) : OMNI_EINVAL;
        if (id < 0)
            return *why = id == OMNI_EFULL ? "too many distinct skills in the broker" : "bad skill name", OMNI_EINVAL;
        cfg->skills[cfg->n_skills++] = (router_skill_level_t){id, level};
    }
    if (l->team[0] && (cfg->team = router_team(rt->router, l->team)) < 0)
        return *why = "bad team name", OMNI_EINVAL;
    for (int ch = 0; ch < ROUTER_CHANNELS; ch++)
        cfg->capacity[ch] = rt->rc->capacity[ch] > 0 ? rt->rc->capacity[ch] : -1; /* 0 in the config: none */
    for (size_t i = 0; i < l->n_capacity; i++) {
        int ch = rch(l->capacity[i]->channel);
        if (ch < 0 || ch >= ROUTER_CHANNELS || l->capacity[i]->slots > 1000)
            return *why = "capacity: unknown channel or more than 1000 slots", OMNI_EINVAL;
        cfg->capacity[ch] = l->capacity[i]->slots ? (int)l->capacity[i]->slots : -1;
    }
    return 0;
}

/* After a restart: conversations the agent still holds and the records say are its own. */
static void reclaim(routing_t *rt, const char *agent, const Omni__V1__Login *l, Omni__V1__LoginOk *ok)
{
    ok->reclaimed = calloc(l->n_holding + 1, sizeof(char *));
    for (size_t i = 0; ok->reclaimed && i < l->n_holding; i++) {
        conv_t *c = conv_get(rt, l->holding[i]);
        if (c && c->state == CV_ROUTED && strcmp(c->agent, agent) == 0) {
            ok->reclaimed[ok->n_reclaimed++] = c->id; /* a reconnect without a restart */
            continue;
        }
        if (!c || c->state != CV_LIMBO || strcmp(c->agent, agent) != 0) {
            Omni__V1__Released rel = OMNI__V1__RELEASED__INIT;
            Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
            rel.conversation_id = l->holding[i];
            rel.reason = "not_assigned";
            env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_RELEASED;
            env.released = &rel;
            send_to_agent(rt, agent, &env);
            continue;
        }
        if (c->enqueued_ms > rt->now_ms)
            c->enqueued_ms = rt->now_ms;
        if (router_attach(rt->router, c->id, c->queue, rch(c->chnum), agent, c->enqueued_ms, rt->now_ms) != 0) {
            /* No room for it any more (a smaller capacity this time): it goes back to its queue. */
            Omni__V1__Released rel = OMNI__V1__RELEASED__INIT;
            Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
            rel.conversation_id = c->id;
            rel.reason = "no_room";
            env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_RELEASED;
            env.released = &rel;
            send_to_agent(rt, agent, &env);
            c->limbo_until = rt->now_ms; /* requeued at the next scan */
            continue;
        }
        rt->n_limbo--;
        c->state = CV_ROUTED;
        c->assigned_ms = rt->now_ms;
        Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
        Omni__V1__Assigned as = OMNI__V1__ASSIGNED__INIT;
        as.agent_id = (char *)agent;
        as.queue = (char *)router_queue_name(rt->router, c->queue);
        as.wait_ms = rt->now_ms - c->enqueued_ms;
        as.restored = 1;
        ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_ASSIGNED;
        ev.assigned = &as;
        persist(rt, c, "set", &ev);
        ok->reclaimed[ok->n_reclaimed++] = c->id;
    }
}

static void remember_agent(routing_t *rt, const Omni__V1__Login *l)
{
    agent_rec_t *a = strmap_get(&rt->agent_recs, l->agent_id);
    if (!a) {
        if (!(a = calloc(1, sizeof(*a))))
            return;
        snprintf(a->id, sizeof(a->id), "%s", l->agent_id);
        if (strmap_put(&rt->agent_recs, a->id, a) != 0) {
            free(a);
            return;
        }
    }
    a->n_skills = 0;
    for (size_t i = 0; i < l->n_skills + l->n_languages && a->n_skills < ROUTER_MAX_AGENT_SKILLS; i++, a->n_skills++) {
        if (i < l->n_skills)
            snprintf(a->skill[a->n_skills], ROUTER_NAME_MAX, "%s", l->skills[i]->name);
        else
            snprintf(a->skill[a->n_skills], ROUTER_NAME_MAX, "lang:%s", l->languages[i - l->n_skills]);
        a->level[a->n_skills] = i < l->n_skills ? (l->skills[i]->level ? l->skills[i]->level : 1) : 5;
    }
}

/* A new connection of an agent that still holds conversations but did not list them (a client
 * that restarted empty): each comes again as a restored Assignment, with its history, so
 * nothing stays held that the agent does not know about. */
static void reassign_unclaimed(routing_t *rt, const Omni__V1__Login *l)
{
    const char *k;
    void *v;
    for (size_t i = 0; (i = strmap_next(&rt->convs, i, &k, &v)) != 0;) {
        conv_t *c = v;
        int held = 0;
        if (c->state != CV_ROUTED || c->closing || strcmp(c->agent, l->agent_id) != 0)
            continue;
        for (size_t h = 0; h < l->n_holding && !held; h++)
            held = strcmp(l->holding[h], c->id) == 0;
        rop_t *o = held ? NULL : op_push(rt, c->id, c->chnum);
        if (!o)
            continue;
        snprintf(o->agent, sizeof(o->agent), "%s", l->agent_id);
        o->flags = "h";
        o->done = DONE_ASSIGN; /* offer_id 0: restored */
    }
}

static void do_login(const req_t *r, const Omni__V1__Login *l)
{
    routing_t *rt = r->rt;
    router_agent_cfg_t cfg;
    router_state_t want;
    const char *why = NULL;
    if (login_cfg(rt, l, &cfg, &why) != 0 || state_of(l->state, &want) != 0) {
        req_error(r, "bad_request", why ? why : "bad initial state");
        return;
    }
    if (r->agent && strcmp(r->agent, l->agent_id) != 0) {
        req_error(r, "bad_request", "this connection is logged in as another agent; log out first");
        return;
    }
    int exists = router_agent_exists(rt->router, l->agent_id), takeover = 0;
    router_agent_info_t info;
    if (exists && router_agent_info(rt->router, l->agent_id, &info) == 0 && info.state != ROUTER_OFFLINE) {
        /* Same agent, new connection (client restart): the session moves, the work stays. */
        takeover = 1;
    } else {
        int rc = exists ? router_agent_update(rt->router, &cfg) : router_agent_add(rt->router, &cfg);
        if (rc != 0) {
            req_error(r, rc == OMNI_EFULL ? "full" : "bad_request",
                      rc == OMNI_EFULL ? "the broker has max_agents agents" : "agent refused by the router");
            return;
        }
        /* Away while reclaiming, so held conversations take their slots before new offers do. */
        router_agent_set_state(rt->router, l->agent_id, ROUTER_AWAY, rt->now_ms);
        remember_agent(rt, l);
    }
    if (agents_bind(rt->agents, l->agent_id, r->to, rt->now_ms) != 0) {
        req_error(r, "internal", "out of memory");
        return;
    }
    Omni__V1__LoginOk ok = OMNI__V1__LOGIN_OK__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    ok.agent_id = l->agent_id;
    ok.started_ms = rt->started_ms;
    ok.heartbeat_timeout_ms = (uint32_t)rt->rc->heartbeat_timeout_ms;
    reclaim(rt, l->agent_id, l, &ok);
    env.request_id = r->request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK;
    env.login_ok = &ok;
    agents_reply(r->to, &env);
    if (takeover)
        reassign_unclaimed(rt, l);
    free(ok.reclaimed);
    metrics_inc(M_AGENT_LOGINS);
    LOG_INFO("routing: agent %s logged in (%zu skill(s), %zu reclaimed)", l->agent_id, l->n_skills, ok.n_reclaimed);
    router_agent_set_state(rt->router, l->agent_id, want, rt->now_ms);
}

/* The agent's session is over: offers revoked, conversations back to the front of their queues. */
static void go_offline(routing_t *rt, const char *agent, const char *reason)
{
    rt->offline_reason = reason;
    router_agent_set_state(rt->router, agent, ROUTER_OFFLINE, rt->now_ms);
    rt->offline_reason = NULL;
}

static void on_expired(void *ctx, const char *agent) { go_offline(ctx, agent, "agent_offline"); }

static conv_t *offered_to(const req_t *r, uint64_t offer_id)
{
    char key[24];
    offer_key(offer_id, key);
    conv_t *c = strmap_get(&r->rt->offers, key);
    router_task_info_t ti;
    if (!c || router_task_info(r->rt->router, c->id, &ti) != 0 || ti.state != ROUTER_T_OFFERED ||
        ti.offer_id != offer_id || !ti.agent_id || strcmp(ti.agent_id, r->agent) != 0)
        return NULL;
    return c;
}

static void do_accept(const req_t *r, uint64_t offer_id)
{
    routing_t *rt = r->rt;
    conv_t *c = offered_to(r, offer_id);
    if (!c) {
        req_error(r, "unknown_offer", "no such offer for this agent (expired, revoked or answered)");
        return;
    }
    if (router_accept(rt->router, offer_id, rt->now_ms) != 0) {
        req_error(r, "unknown_offer", "the offer is no longer open");
        return;
    }
    conv_set_offer(rt, c, 0);
    snprintf(c->agent, sizeof(c->agent), "%s", r->agent);
    c->assigned_ms = rt->now_ms;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Assigned as = OMNI__V1__ASSIGNED__INIT;
    as.agent_id = (char *)r->agent;
    as.offer_id = offer_id;
    as.queue = (char *)router_queue_name(rt->router, c->queue);
    as.strategy = (char *)strategy_names[c->strategy];
    as.step = (uint32_t)c->step;
    as.pool_size = c->pool;
    as.score = c->score;
    as.wait_ms = rt->now_ms - c->enqueued_ms;
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_ASSIGNED;
    ev.assigned = &as;
    rop_t *o = persist(rt, c, "set", &ev);
    if (!o) {
        req_error(r, "internal", "out of memory");
        return;
    }
    snprintf(o->last_agent, sizeof(o->last_agent), "%s", r->agent);
    snprintf(o->agent, sizeof(o->agent), "%s", r->agent);
    o->flags = "h";
    o->done = DONE_ASSIGN;
    o->request_id = r->request_id;
    o->offer_id = offer_id;
    metrics_inc(M_ASSIGNED);
}

static void do_reject(const req_t *r, uint64_t offer_id)
{
    routing_t *rt = r->rt;
    conv_t *c = offered_to(r, offer_id);
    if (!c) {
        req_error(r, "unknown_offer", "no such offer for this agent (expired, revoked or answered)");
        return;
    }
    conv_set_offer(rt, c, 0);
    ev_offer_ended(rt, c, r->agent, offer_id, "rejected");
    metrics_inc(M_OFFERS_REJECTED);
    req_ok(r);
    router_reject(rt->router, offer_id, rt->now_ms); /* may offer it elsewhere: after our event */
}

static conv_t *assigned_to(const req_t *r, const char *conversation_id)
{
    conv_t *c = conv_get(r->rt, conversation_id);
    return c && c->state == CV_ROUTED && strcmp(c->agent, r->agent) == 0 ? c : NULL;
}

static void do_reply(const req_t *r, const Omni__V1__Reply *m)
{
    conv_t *c = assigned_to(r, m->conversation_id);
    if (!c) {
        req_error(r, "not_assigned", "the conversation is not assigned to this agent");
        return;
    }
    if (!m->text[0] || strlen(m->text) > r->rt->cfg->max_text_bytes || strlen(m->subject) > 998 ||
        strlen(m->reply_id) > 128) {
        req_error(r, "bad_request", "text must be 1..max_text_bytes bytes, subject <= 998, reply_id <= 128");
        return;
    }
    int rc = reply_out(r->rt, c, r->agent, m->text, m->subject, m->reply_id, r->request_id);
    if (rc == OMNI_EFULL) {
        req_error(r, "no_adapter", "too many replies wait for their adapter; nothing was sent");
        return;
    }
    if (rc != 0) {
        req_error(r, "internal", "out of memory");
        return;
    }
}

static void do_close(const req_t *r, const Omni__V1__Close *m)
{
    routing_t *rt = r->rt;
    conv_t *c = assigned_to(r, m->conversation_id);
    rop_t *o = NULL;
    if (!c) {
        req_error(r, "not_assigned", "the conversation is not assigned to this agent");
        return;
    }
    if (strlen(m->disposition) > 256) {
        req_error(r, "bad_request", "disposition is at most 256 bytes");
        return;
    }
    char id[ROUTER_ID_MAX];
    snprintf(id, sizeof(id), "%s", c->id);
    if ((o = conv_close(rt, c, r->agent, m->disposition)) != NULL) {
        o->done = DONE_OK;
        o->request_id = r->request_id;
        snprintf(o->agent, sizeof(o->agent), "%s", r->agent);
    }
    router_release(rt->router, id, rt->now_ms); /* wrap-up and the next offer follow from here */
}

static void do_transfer(const req_t *r, const Omni__V1__Transfer *m)
{
    routing_t *rt = r->rt;
    conv_t *c = assigned_to(r, m->conversation_id);
    if (!c) {
        req_error(r, "not_assigned", "the conversation is not assigned to this agent");
        return;
    }
    int queue = m->queue[0] ? router_queue_find(rt->router, m->queue) : c->queue;
    if (queue < 0) {
        req_error(r, "unknown_queue", "no such queue");
        return;
    }
    const char *to_agent = m->agent_id[0] ? m->agent_id : NULL;
    if (to_agent && (!router_agent_exists(rt->router, to_agent) || strcmp(to_agent, r->agent) == 0)) {
        req_error(r, "unknown_agent", "no such agent (or it is you)");
        return;
    }
    if (!(rt->rc->queues[queue].rq.channels & (1u << rch(c->chnum)))) {
        req_error(r, "unknown_queue", "that queue does not take this conversation's channel");
        return;
    }
    /* Everything the router would refuse is checked above, so the `transferred` write can go
     * first: the offer router_transfer may make at once must follow it in the stream. */
    int from_queue = c->queue;
    c->queue = queue;
    c->agent[0] = 0;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    Omni__V1__Transferred tr = OMNI__V1__TRANSFERRED__INIT;
    tr.from_agent = (char *)r->agent;
    tr.from_queue = (char *)router_queue_name(rt->router, from_queue);
    tr.to_queue = (char *)router_queue_name(rt->router, queue);
    tr.to_agent = (char *)(to_agent ? to_agent : "");
    tr.reason = "agent";
    ev.kind_case = OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED;
    ev.transferred = &tr;
    rop_t *o = persist(rt, c, "set", &ev);
    if (o) {
        o->done = DONE_OK;
        o->request_id = r->request_id;
        snprintf(o->agent, sizeof(o->agent), "%s", r->agent);
    }
    metrics_inc(M_TRANSFERRED);
    char id[ROUTER_ID_MAX];
    snprintf(id, sizeof(id), "%s", c->id);
    int rc = router_transfer(rt->router, id, queue, to_agent, rt->rc->transfer_hold_ms, rt->now_ms);
    if (rc != 0)
        LOG_ERROR("routing: transfer of %s refused by the router after its checks: %s", id, omni_strerror(rc));
}

static void do_set_state(const req_t *r, Omni__V1__AgentState s)
{
    router_state_t st;
    if (s == OMNI__V1__AGENT_STATE__AGENT_STATE_OFFLINE) {
        go_offline(r->rt, r->agent, "logout");
        agents_unbind(r->rt->agents, r->agent);
        { send_status(r, ROUTER_OFFLINE, "requested"); return; }
    }
    if (state_of(s, &st) != 0) {
        req_error(r, "bad_request", "unknown state");
        return;
    }
    router_agent_set_state(r->rt->router, r->agent, st, r->rt->now_ms);
    send_status(r, st, "requested");
}

static void on_request(void *ctx, const char *agent, const reply_to_t *to, Omni__V1__AgentEnvelope *env)
{
    routing_t *rt = ctx;
    req_t r = {rt, agent, to, env->request_id};
    if (env->body_case == OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN && env->login) {
        do_login(&r, env->login);
        return;
    }
    if (!agent) {
        req_error(&r, "not_logged_in", "log in first");
        return;
    }
    switch (env->body_case) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT: do_accept(&r, env->accept->offer_id); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REJECT: do_reject(&r, env->reject->offer_id); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REPLY: do_reply(&r, env->reply); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE: do_close(&r, env->close); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER: do_transfer(&r, env->transfer); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_SET_STATE: do_set_state(&r, env->set_state->state); return;
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGOUT:
        go_offline(rt, agent, "logout");
        agents_unbind(rt->agents, agent);
        { req_ok(&r); return; }
    default: req_error(&r, "bad_request", "not a request an agent can send"); return;
    }
}

void routing_agent_frame(routing_t *rt, const reply_to_t *to, const uint8_t *data, size_t len)
{
    rt->now_ms = rt->clock();
    agents_frame(rt->agents, to, data, len, rt->now_ms, on_request, rt);
}

int routing_read(routing_t *rt)
{
    rt->now_ms = rt->clock();
    return agents_read(rt->agents, rt->now_ms, on_request, rt);
}

/* ---------- timers ---------- */

static void expire_limbo(routing_t *rt)
{
    const char *k;
    void *v;
    if (!rt->n_limbo)
        return;
    /* Collect, then act: enqueueing may drop conversations (queue full) from the map. */
    size_t n = 0, cap = 0;
    conv_t **due = NULL;
    for (size_t i = 0; (i = strmap_next(&rt->convs, i, &k, &v)) != 0;) {
        conv_t *c = v;
        if (c->state != CV_LIMBO || c->limbo_until > rt->now_ms)
            continue;
        if (n == cap) {
            conv_t **d = realloc(due, (cap = cap ? cap * 2 : 64) * sizeof(*d));
            if (!d)
                break;
            due = d;
        }
        due[n++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        conv_t *c = due[i];
        LOG_INFO("routing: %s: agent %s did not come back after the restart; requeued", c->id, c->agent);
        c->state = CV_ROUTED;
        c->agent[0] = 0;
        ev_queued(rt, c, 1, "restart");
        metrics_inc(M_REQUEUED);
        rt->n_limbo--;
        conv_enqueue(rt, c, 1);
    }
    free(due);
}

void routing_tick(routing_t *rt, int64_t now_ms)
{
    rt->now_ms = now_ms;
    router_advance(rt->router, now_ms);
    /* Session and reclaim deadlines are coarse (seconds): a scan every 200 ms is plenty. */
    if (now_ms >= rt->next_scan_ms) {
        agents_expire(rt->agents, now_ms, on_expired, rt);
        expire_limbo(rt);
        outq_scan(rt);
        rt->next_scan_ms = now_ms + 200;
    }
}

int routing_timeout_ms(const routing_t *rt, int64_t now_ms)
{
    int64_t d = router_next_deadline(rt->router);
    if (d == INT64_MAX)
        return -1;
    return d <= now_ms ? 0 : d - now_ms > INT_MAX ? INT_MAX : (int)(d - now_ms);
}

/* ---------- control ---------- */

static const char *const state_names[] = {"offline", "available", "away", "wrap_up"};

int routing_queues(routing_t *rt, Omni__V1__QueuesReply *out)
{
    uint32_t n = router_queue_count(rt->router);
    int64_t now = rt->clock();
    out->queues = calloc(n + 1, sizeof(*out->queues));
    Omni__V1__QueueStatus *qs = calloc(n + 1, sizeof(*qs));
    if (!out->queues || !qs) {
        free(out->queues);
        free(qs);
        out->queues = NULL;
        return OMNI_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        router_queue_stats_t s;
        const routecfg_queue_t *qc = &rt->rc->queues[i];
        omni__v1__queue_status__init(&qs[i]);
        router_queue_stats(rt->router, (int)i, now, &s);
        qs[i].name = (char *)router_queue_name(rt->router, (int)i);
        qs[i].waiting = s.waiting;
        qs[i].oldest_wait_ms = s.oldest_wait_ms;
        qs[i].ewt_ms = s.ewt_ms;
        qs[i].sla_target_ms = s.sla_target_ms;
        qs[i].sla_met_pct = s.sla_met_pct;
        qs[i].answered = s.answered;
        qs[i].offered = s.offered;
        qs[i].staffed = s.staffed;
        qs[i].open = qc->calendar < 0 || hours_is_open(rt->rc->calendars[qc->calendar], now);
        out->queues[i] = &qs[i];
    }
    out->n_queues = n;
    return 0;
}

void routing_queues_free(Omni__V1__QueuesReply *r)
{
    if (r->queues)
        free(r->queues[0]);
    free(r->queues);
    r->queues = NULL;
}

static const Omni__V1__Channel channel_of[ROUTER_CHANNELS] = {
    OMNI__V1__CHANNEL__CHANNEL_CHAT, OMNI__V1__CHANNEL__CHANNEL_EMAIL, OMNI__V1__CHANNEL__CHANNEL_SNS,
    OMNI__V1__CHANNEL__CHANNEL_PHONE};

/* One agent's entry; everything it points at lives in its block (conversation ids are borrowed
 * from the conversation table until the reply is sent). */
typedef struct {
    Omni__V1__AgentInfo info;
    Omni__V1__ChannelSlots cap[ROUTER_CHANNELS], load[ROUTER_CHANNELS];
    Omni__V1__ChannelSlots *capp[ROUTER_CHANNELS], *loadp[ROUTER_CHANNELS];
    Omni__V1__SkillLevel skill[ROUTER_MAX_AGENT_SKILLS];
    Omni__V1__SkillLevel *skillp[ROUTER_MAX_AGENT_SKILLS];
    char **convs;
} agent_block_t;

static void agent_skills(routing_t *rt, agent_block_t *b, const char *id)
{
    agent_rec_t *rec = strmap_get(&rt->agent_recs, id);
    for (size_t k = 0; rec && k < rec->n_skills; k++) {
        omni__v1__skill_level__init(&b->skill[k]);
        b->skill[k].name = rec->skill[k];
        b->skill[k].level = rec->level[k];
        b->skillp[k] = &b->skill[k];
    }
    b->info.skills = b->skillp;
    b->info.n_skills = rec ? rec->n_skills : 0;
}

/* Conversations per agent: one pass over the table, appended to each agent's block. */
static void agent_convs(routing_t *rt, strmap_t *index)
{
    const char *k;
    void *v;
    for (size_t i = 0; (i = strmap_next(&rt->convs, i, &k, &v)) != 0;) {
        conv_t *c = v;
        agent_block_t *a = c->agent[0] && c->state == CV_ROUTED ? strmap_get(index, c->agent) : NULL;
        if (!a)
            continue;
        char **cv = realloc(a->convs, (a->info.n_conversations + 1) * sizeof(*cv));
        if (!cv)
            continue;
        a->convs = cv;
        cv[a->info.n_conversations++] = c->id;
        a->info.conversations = cv;
    }
}

int routing_agents(routing_t *rt, Omni__V1__AgentsReply *out, void **mem)
{
    uint32_t n = router_agent_count(rt->router);
    agent_block_t *b = calloc(n + 1, sizeof(*b));
    strmap_t index;
    strmap_init(&index);
    out->agents = calloc(n + 1, sizeof(*out->agents));
    *mem = b;
    if (!b || !out->agents) {
        free(b);
        free(out->agents);
        out->agents = NULL;
        *mem = NULL;
        return OMNI_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        router_agent_info_t ai;
        const char *id = router_agent_id(rt->router, i);
        Omni__V1__AgentInfo *a = &b[i].info;
        omni__v1__agent_info__init(a);
        if (!id || router_agent_info(rt->router, id, &ai) != 0)
            continue;
        a->id = (char *)id;
        a->state = (char *)state_names[ai.state];
        a->assigned = ai.assigned;
        for (int ch = 0; ch < ROUTER_CHANNELS; ch++) {
            omni__v1__channel_slots__init(&b[i].cap[ch]);
            omni__v1__channel_slots__init(&b[i].load[ch]);
            b[i].cap[ch].channel = b[i].load[ch].channel = channel_of[ch];
            b[i].cap[ch].slots = ai.capacity[ch] > 0 ? (uint32_t)ai.capacity[ch] : 0;
            b[i].load[ch].slots = (uint32_t)ai.load[ch];
            b[i].capp[ch] = &b[i].cap[ch];
            b[i].loadp[ch] = &b[i].load[ch];
        }
        a->capacity = b[i].capp;
        a->n_capacity = ROUTER_CHANNELS;
        a->load = b[i].loadp;
        a->n_load = ROUTER_CHANNELS;
        agent_skills(rt, &b[i], id);
        strmap_put(&index, id, &b[i]);
        out->agents[out->n_agents++] = a;
    }
    agent_convs(rt, &index);
    strmap_free(&index);
    return 0;
}

void routing_agents_free(Omni__V1__AgentsReply *r, void *mem)
{
    agent_block_t *b = mem;
    for (size_t i = 0; b && i < r->n_agents; i++)
        free(((agent_block_t *)r->agents[i])->convs); /* info is the block's first member */
    free(b);
    free(r->agents);
    r->agents = NULL;
}
