/* The control endpoint: one ControlRequest per ZeroMQ message, one ControlReply back.
 * `send` joins the ingest batch like any adapter message; lookups are single Redis calls. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/adapter.h>
#include <omni/v1/control.pb-c.h>

#include "control.h"
#include "log.h"
#include "metrics.h"
#include "routing.h"

#define CONTROL_MAX_FRAME (1024 * 1024 + 4096)
#define TAIL_MAX 1000

/* A request waiting for Redis. */
typedef struct {
    control_t *c;
    reply_to_t to;
} waiting_t;

struct control {
    const config_t *cfg;
    store_t *st;
    ingest_t *in;
    void *sock;
    int64_t started_ms;
    routing_t *rt;
};

void control_set_routing(control_t *c, routing_t *rt) { c->rt = rt; }

int control_new(const config_t *cfg, store_t *st, ingest_t *in, void *sock, int64_t started_ms, control_t **out)
{
    control_t *c = calloc(1, sizeof(*c));
    if (!c)
        return OMNI_ENOMEM;
    *c = (control_t){cfg, st, in, sock, started_ms, NULL};
    *out = c;
    return 0;
}

void control_destroy(control_t **pc)
{
    if (pc && *pc) {
        free(*pc);
        *pc = NULL;
    }
}

static void reply(const reply_to_t *to, Omni__V1__ControlReply *rep)
{
    rep->id = to->id;
    size_t len = omni__v1__control_reply__get_packed_size(rep);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    omni__v1__control_reply__pack(rep, buf);
    reply_send(to, buf, len);
    free(buf);
}

static void reply_error(const reply_to_t *to, const char *error, const char *detail)
{
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.error = (char *)error;
    rep.detail = (char *)(detail ? detail : "");
    metrics_inc(M_CONTROL_ERRORS);
    reply(to, &rep);
}

typedef struct {
    Omni__V1__Counter *items;
    Omni__V1__Counter **ptrs;
    size_t n, cap;
    char names[64][48];
} counters_t;

static void add_counter(const char *name, uint64_t value, void *ud)
{
    counters_t *c = ud;
    if (c->n == c->cap)
        return;
    Omni__V1__Counter *k = &c->items[c->n];
    omni__v1__counter__init(k);
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
    k->name = c->names[c->n];
    k->value = value;
    c->ptrs[c->n] = k;
    c->n++;
}

static void do_status(control_t *c, const reply_to_t *to)
{
    Omni__V1__StatusReply s = OMNI__V1__STATUS_REPLY__INIT;
    Omni__V1__Counter items[64], *ptrs[64];
    counters_t cs = {items, ptrs, 0, 64, {{0}}};
    metrics_each(add_counter, &cs);

    const adapter_rec_t *recs;
    size_t na = ingest_adapters(c->in, &recs);
    Omni__V1__AdapterInfo *ai = calloc(na ? na : 1, sizeof(*ai));
    Omni__V1__AdapterInfo **aip = calloc(na ? na : 1, sizeof(*aip));
    char **accs = calloc(na ? na : 1, sizeof(char *));
    if (!ai || !aip || !accs) {
        reply_error(to, "internal", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < na; i++) {
        omni__v1__adapter_info__init(&ai[i]);
        ai[i].adapter_id = (char *)recs[i].adapter_id;
        ai[i].channel = recs[i].channel;
        accs[i] = (char *)recs[i].accounts;
        if (*recs[i].accounts) {
            ai[i].accounts = &accs[i];
            ai[i].n_accounts = 1;
        }
        ai[i].last_seen_ms = recs[i].last_seen_ms;
        ai[i].outbox = recs[i].outbox;
        aip[i] = &ai[i];
    }
    s.version = (char *)OMNI_VERSION;
    s.uptime_s = (uint64_t)((omni_now_ms() - c->started_ms) / 1000);
    s.redis = (char *)store_state_name(c->st);
    s.adapters = aip;
    s.n_adapters = na;
    s.counters = cs.ptrs;
    s.n_counters = cs.n;
    s.last_seq = store_last_seq(c->st);
    s.stream_endpoint = c->cfg->stream;
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_STATUS;
    rep.status = &s;
    reply(to, &rep);
out:
    free(ai);
    free(aip);
    free(accs);
}

static void on_customer(int err, const char *cust, const char *const *ids, size_t n_ids, const store_conv_t *convs,
                        size_t n_convs, void *ud)
{
    waiting_t *w = ud;
    reply_to_t *to = &w->to;
    if (err) {
        reply_error(to, "unavailable", "storage unavailable");
        free(w);
        return;
    }
    Omni__V1__CustomerReply cr = OMNI__V1__CUSTOMER_REPLY__INIT;
    Omni__V1__ConversationInfo *ci = calloc(n_convs + 1, sizeof(*ci));
    Omni__V1__ConversationInfo **cip = calloc(n_convs + 1, sizeof(*cip));
    if (!ci || !cip) {
        free(ci);
        free(cip);
        reply_error(to, "internal", "out of memory");
        free(w);
        return;
    }
    cr.found = cust != NULL;
    if (cust) {
        cr.customer_id = (char *)cust;
        cr.identities = (char **)ids;
        cr.n_identities = n_ids;
        for (size_t i = 0; i < n_convs; i++) {
            omni__v1__conversation_info__init(&ci[i]);
            ci[i].conversation_id = (char *)convs[i].conversation_id;
            ci[i].channel = omni_channel_parse(convs[i].channel);
            ci[i].state = (char *)convs[i].state;
            ci[i].opened_ms = convs[i].opened_ms;
            cip[i] = &ci[i];
        }
        cr.conversations = cip;
        cr.n_conversations = n_convs;
    }
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_CUSTOMER;
    rep.customer = &cr;
    reply(to, &rep);
    free(ci);
    free(cip);
    free(w);
}

static void on_tail(int err, const store_entry_t *ent, size_t n, void *ud)
{
    waiting_t *w = ud;
    reply_to_t *to = &w->to;
    if (err) {
        reply_error(to, "unavailable", "storage unavailable");
        free(w);
        return;
    }
    Omni__V1__StreamEvent **evs = calloc(n ? n : 1, sizeof(*evs));
    size_t ne = 0;
    for (size_t i = 0; evs && i < n; i++)
        if ((evs[ne] = omni__v1__stream_event__unpack(NULL, ent[i].len, ent[i].bytes)))
            ne++;
    Omni__V1__TailReply tr = OMNI__V1__TAIL_REPLY__INIT;
    tr.events = evs;
    tr.n_events = ne;
    tr.last_seq = store_last_seq(w->c->st);
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_TAIL;
    rep.tail = &tr;
    if (evs)
        reply(to, &rep);
    else
        reply_error(to, "internal", "out of memory");
    for (size_t i = 0; i < ne; i++)
        omni__v1__stream_event__free_unpacked(evs[i], NULL);
    free(evs);
    free(w);
}

static void do_queues(control_t *c, const reply_to_t *to)
{
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    Omni__V1__QueuesReply q = OMNI__V1__QUEUES_REPLY__INIT;
    if (!c->rt || routing_queues(c->rt, &q) != 0) {
        reply_error(to, "unavailable", c->rt ? "out of memory" : "routing is off");
        return;
    }
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_QUEUES;
    rep.queues = &q;
    reply(to, &rep);
    routing_queues_free(&q);
}

static void do_agents(control_t *c, const reply_to_t *to)
{
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    Omni__V1__AgentsReply a = OMNI__V1__AGENTS_REPLY__INIT;
    void *mem = NULL;
    if (!c->rt || routing_agents(c->rt, &a, &mem) != 0) {
        reply_error(to, "unavailable", c->rt ? "out of memory" : "routing is off");
        return;
    }
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_AGENTS;
    rep.agents = &a;
    reply(to, &rep);
    routing_agents_free(&a, mem);
}

static void handle(control_t *c, reply_to_t *to, const uint8_t *data, size_t len)
{
    metrics_inc(M_CONTROL_REQUESTS);
    if (len > CONTROL_MAX_FRAME) {
        reply_error(to, "too_large", "control request above 1 MiB");
        return;
    }
    Omni__V1__ControlRequest *req = omni__v1__control_request__unpack(NULL, len, data);
    if (!req) {
        reply_error(to, "malformed", "not an omni.v1.ControlRequest");
        return;
    }
    to->id = req->id;
    waiting_t *heap = NULL;
    int rc = 0;
    char norm[OMNI_IDENTITY_MAX];
    switch (req->body_case) {
    case OMNI__V1__CONTROL_REQUEST__BODY_STATUS:
        do_status(c, to);
        break;
    case OMNI__V1__CONTROL_REQUEST__BODY_SEND:
        to->control = 1;
        ingest_submit(c->in, to, req->send, &req->base);
        return; /* req is owned by ingest now */
    case OMNI__V1__CONTROL_REQUEST__BODY_CUSTOMER:
        rc = omni_identity_normalize(req->customer->identity, c->cfg->default_region, norm, sizeof(norm));
        if (rc == OMNI_EINVAL || rc == OMNI_ETOOBIG) {
            reply_error(to, "bad_identity", "identity must be TYPE:VALUE of a known type");
            break;
        }
        if (!(heap = malloc(sizeof(*heap))) || (*heap = (waiting_t){c, *to}, store_customer(c->st, norm, on_customer, heap)) != 0) {
            free(heap);
            reply_error(to, "unavailable", "storage unavailable");
        }
        break;
    case OMNI__V1__CONTROL_REQUEST__BODY_TAIL: {
        unsigned limit = req->tail->limit && req->tail->limit < TAIL_MAX ? req->tail->limit : TAIL_MAX;
        unsigned last = req->tail->last && req->tail->last < TAIL_MAX ? req->tail->last : (req->tail->last ? TAIL_MAX : 10);
        if (!(heap = malloc(sizeof(*heap))) ||
            (*heap = (waiting_t){c, *to}, store_tail(c->st, req->tail->from_seq, last, limit, on_tail, heap)) != 0) {
            free(heap);
            reply_error(to, "unavailable", "storage unavailable");
        }
        break;
    }
    case OMNI__V1__CONTROL_REQUEST__BODY_QUEUES:
        do_queues(c, to);
        break;
    case OMNI__V1__CONTROL_REQUEST__BODY_AGENTS:
        do_agents(c, to);
        break;
    default:
        reply_error(to, "unsupported", "unknown control request");
        break;
    }
    omni__v1__control_request__free_unpacked(req, NULL);
}

int control_read(control_t *c)
{
    int n = 0, rc;
    reply_to_t to;
    zmq_msg_t body;
    while ((rc = reply_recv(c->sock, &to, &body)) >= 0) {
        n++;
        if (rc == 0)
            handle(c, &to, zmq_msg_data(&body), zmq_msg_size(&body));
        else
            reply_error(&to, "malformed", "expected exactly one frame");
        zmq_msg_close(&body);
    }
    return n;
}
