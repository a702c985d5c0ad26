/* The adapter SDK: a DEALER socket to the broker's ingress plus a bounded outbox that holds
 * every message until the broker acks it (at-least-once; the broker's idempotency makes it once). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <omni/adapter.h>

enum { SLOT_FREE = 0, SLOT_QUEUED, SLOT_SENT };

typedef struct {
    uint64_t id;
    uint8_t *buf;        /* packed Envelope, owned */
    size_t len;
    int64_t due_us;      /* next (re)send */
    int64_t first_us;
    int64_t sent_us;     /* last time it went out */
    unsigned attempts;
    int state;
} slot_t;

#define OUTBOUND_SEEN 256
#define OUTBOUND_ID_MAX 64

struct omni_adapter {
    void *zctx;          /* owned */
    void *sock;          /* DEALER */
    char *adapter_id;
    char *region;
    char **accounts;
    size_t n_accounts;
    Omni__V1__Channel channel;
    size_t max_bytes;
    int ack_timeout_ms, backoff_max_ms, stall_timeout_ms, heartbeat_ms;
    omni_ack_cb on_ack;
    omni_outbound_cb on_outbound;
    void *user;

    slot_t *slots;       /* ring indexed by id % cap */
    size_t cap, count;
    uint64_t head_id;    /* oldest id that may still be live */
    uint64_t next_id;
    int64_t earliest_due_us; /* lower bound of every QUEUED/SENT slot's due_us */

    int64_t next_hello_us;
    int64_t last_heard_us;
    int64_t broker_started_ms;
    uint32_t gen;        /* provider id generator */

    /* The broker redelivers an outbound message until it hears a result; these remember the
     * latest ones so a redelivery gets the recorded result again, never a second send. */
    struct {
        char id[OUTBOUND_ID_MAX];
        int state;       /* 0 empty, 1 handed to on_outbound, 2 result known */
        int delivered, permanent;
        char provider_message_id[128], error[128];
    } seen[OUTBOUND_SEEN];
    unsigned seen_next;
};

static char *dup_or(const char *s, const char *dflt)
{
    const char *v = (s && *s) ? s : dflt;
    return v ? strdup(v) : NULL;
}

void omni_adapter_opts_init(omni_adapter_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->api_version = OMNI_ADAPTER_API_VERSION;
}

const char *omni_channel_name(Omni__V1__Channel ch)
{
    switch (ch) {
    case OMNI__V1__CHANNEL__CHANNEL_CHAT: return "chat";
    case OMNI__V1__CHANNEL__CHANNEL_EMAIL: return "email";
    case OMNI__V1__CHANNEL__CHANNEL_SNS: return "sns";
    case OMNI__V1__CHANNEL__CHANNEL_PHONE: return "phone";
    default: return "unknown";
    }
}

Omni__V1__Channel omni_channel_parse(const char *name)
{
    static const Omni__V1__Channel all[] = {OMNI__V1__CHANNEL__CHANNEL_CHAT, OMNI__V1__CHANNEL__CHANNEL_EMAIL,
                                             OMNI__V1__CHANNEL__CHANNEL_SNS, OMNI__V1__CHANNEL__CHANNEL_PHONE};
    for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(name, omni_channel_name(all[i])) == 0)
            return all[i];
    return OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED;
}

static int set_curve(void *sock, const omni_adapter_opts_t *o)
{
    if (!o->curve_server_key && !o->curve_public_key && !o->curve_secret_key)
        return 0;
    if (!o->curve_server_key || !o->curve_public_key || !o->curve_secret_key)
        return OMNI_EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->curve_server_key, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, o->curve_public_key, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, 40))
        return OMNI_EINVAL;
    return 0;
}

int omni_adapter_new(const omni_adapter_opts_t *o, omni_adapter_t **out)
{
    int rc = OMNI_ENOMEM;
    omni_adapter_t *ad = NULL;

    if (!o || !out || o->api_version != OMNI_ADAPTER_API_VERSION || !o->adapter_id || !*o->adapter_id)
        return OMNI_EINVAL;
    *out = NULL;
    if (!(ad = calloc(1, sizeof(*ad))))
        goto out;
    ad->adapter_id = strdup(o->adapter_id);
    ad->region = dup_or(o->default_region, "JP");
    ad->channel = o->channel;
    ad->cap = o->outbox_max ? o->outbox_max : 10000;
    ad->max_bytes = o->max_message_bytes ? o->max_message_bytes : 1024 * 1024;
    ad->ack_timeout_ms = o->ack_timeout_ms > 0 ? o->ack_timeout_ms : 1000;
    ad->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 8000;
    ad->stall_timeout_ms = o->stall_timeout_ms > 0 ? o->stall_timeout_ms : 30000;
    ad->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 2000;
    ad->on_ack = o->on_ack;
    ad->on_outbound = o->on_outbound;
    ad->user = o->user;
    ad->slots = calloc(ad->cap, sizeof(slot_t));
    ad->next_id = ad->head_id = 1;
    ad->earliest_due_us = INT64_MAX;
    ad->gen = (uint32_t)omni_mono_us() ^ (uint32_t)getpid();
    if (!ad->adapter_id || !ad->region || !ad->slots)
        goto out;
    for (const char *const *a = o->accounts; a && *a; a++)
        ad->n_accounts++;
    if (ad->n_accounts) {
        if (!(ad->accounts = calloc(ad->n_accounts, sizeof(char *))))
            goto out;
        for (size_t i = 0; i < ad->n_accounts; i++)
            if (!(ad->accounts[i] = strdup(o->accounts[i])))
                goto out;
    }

    rc = OMNI_EIO;
    if (!(ad->zctx = zmq_ctx_new()) || !(ad->sock = zmq_socket(ad->zctx, ZMQ_DEALER)))
        goto out;
    int zero = 0, one = 1, ivl = 100, ivl_max = 2000;
    zmq_setsockopt(ad->sock, ZMQ_LINGER, &zero, sizeof(zero));
    /* Queue only to a live connection: while the broker is away, messages wait in our
     * outbox (bounded, observable) instead of in ZeroMQ's pipe. */
    zmq_setsockopt(ad->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
    zmq_setsockopt(ad->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(ad->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
    if ((rc = set_curve(ad->sock, o)) != 0)
        goto out;
    rc = OMNI_EINVAL;
    if (zmq_connect(ad->sock, o->broker && *o->broker ? o->broker : "tcp://127.0.0.1:5560") != 0)
        goto out;
    ad->next_hello_us = 0;
    *out = ad;
    return 0;
out:
    omni_adapter_destroy(&ad);
    return rc;
}

void omni_adapter_destroy(omni_adapter_t **pad)
{
    omni_adapter_t *ad = pad ? *pad : NULL;
    if (!ad)
        return;
    if (ad->sock)
        zmq_close(ad->sock);
    if (ad->zctx)
        zmq_ctx_term(ad->zctx);
    for (size_t i = 0; ad->slots && i < ad->cap; i++)
        free(ad->slots[i].buf);
    for (size_t i = 0; i < ad->n_accounts && ad->accounts; i++)
        free(ad->accounts[i]);
    free(ad->accounts);
    free(ad->slots);
    free(ad->adapter_id);
    free(ad->region);
    free(ad);
    *pad = NULL;
}

static slot_t *slot_of(omni_adapter_t *ad, uint64_t id)
{
    if (id < ad->head_id || id >= ad->next_id)
        return NULL;
    slot_t *s = &ad->slots[id % ad->cap];
    return (s->state != SLOT_FREE && s->id == id) ? s : NULL;
}

static void slot_release(omni_adapter_t *ad, slot_t *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
    ad->count--;
    while (ad->head_id < ad->next_id && ad->slots[ad->head_id % ad->cap].state == SLOT_FREE)
        ad->head_id++;
}

static int64_t backoff_us(const omni_adapter_t *ad, unsigned attempts)
{
    int64_t ms = ad->ack_timeout_ms;
    for (unsigned i = 1; i < attempts && ms < ad->backoff_max_ms; i++)
        ms *= 2;
    if (ms > ad->backoff_max_ms)
        ms = ad->backoff_max_ms;
    return ms * 1000;
}

/* One non-blocking send; EAGAIN (no live connection, or HWM) leaves the slot due for later. */
static int slot_send(omni_adapter_t *ad, slot_t *s, int64_t now)
{
    if (zmq_send(ad->sock, s->buf, s->len, ZMQ_DONTWAIT) < 0) {
        s->state = SLOT_QUEUED;
        s->due_us = now + 50 * 1000;
    } else {
        s->state = SLOT_SENT;
        s->sent_us = now;
        s->attempts++;
        s->due_us = now + backoff_us(ad, s->attempts);
    }
    if (s->due_us < ad->earliest_due_us)
        ad->earliest_due_us = s->due_us;
    return s->state == SLOT_SENT ? 0 : OMNI_EUNAVAIL;
}

static int send_envelope(omni_adapter_t *ad, Omni__V1__Envelope *env)
{
    uint8_t stackbuf[1024];
    size_t len = omni__v1__envelope__get_packed_size(env);
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    if (!buf)
        return OMNI_ENOMEM;
    omni__v1__envelope__pack(env, buf);
    int rc = zmq_send(ad->sock, buf, len, ZMQ_DONTWAIT) < 0 ? OMNI_EUNAVAIL : 0;
    if (buf != stackbuf)
        free(buf);
    return rc;
}

int omni_adapter_send(omni_adapter_t *ad, const Omni__V1__InboundMessage *msg, uint64_t *request_id)
{
    char pmid[160];
    if (!ad || !msg)
        return OMNI_EINVAL;
    Omni__V1__InboundMessage m = *msg; /* shallow: only our own defaults are swapped in */
    if (m.channel == OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED)
        m.channel = ad->channel;
    if (m.channel == OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED || !m.from || !*m.from)
        return OMNI_EINVAL;
    if (!m.adapter_id || !*m.adapter_id)
        m.adapter_id = ad->adapter_id;
    if (!m.received_ms)
        m.received_ms = omni_now_ms();
    if (!m.provider_message_id || !*m.provider_message_id) {
        /* No natural id: make one now, so every resend of this copy carries the same key. */
        /* Unique parts first: a long adapter id may be cut, never the counter. */
        snprintf(pmid, sizeof(pmid), "%llu.%u.%lld@%s", (unsigned long long)ad->next_id, ad->gen,
                 (long long)m.received_ms, ad->adapter_id);
        m.provider_message_id = pmid;
    }
    if (ad->next_id - ad->head_id >= ad->cap)
        return OMNI_EFULL;

    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.request_id = ad->next_id;
    env.body_case = OMNI__V1__ENVELOPE__BODY_INBOUND;
    env.inbound = &m;
    size_t len = omni__v1__envelope__get_packed_size(&env);
    if (len > ad->max_bytes)
        return OMNI_ETOOBIG;
    uint8_t *buf = malloc(len);
    if (!buf)
        return OMNI_ENOMEM;
    omni__v1__envelope__pack(&env, buf);

    slot_t *s = &ad->slots[ad->next_id % ad->cap];
    s->id = ad->next_id++;
    s->buf = buf;
    s->len = len;
    s->attempts = 0;
    s->first_us = omni_mono_us();
    ad->count++;
    slot_send(ad, s, s->first_us);
    if (request_id)
        *request_id = s->id;
    return 0;
}

static int seen_find(const omni_adapter_t *ad, const char *id)
{
    for (int i = 0; i < OUTBOUND_SEEN; i++)
        if (ad->seen[i].state && strcmp(ad->seen[i].id, id) == 0)
            return i;
    return -1;
}

int omni_adapter_outbound_result(omni_adapter_t *ad, const char *outbound_id, int delivered, int permanent,
                                 const char *provider_message_id, const char *error)
{
    if (!ad || !outbound_id)
        return OMNI_EINVAL;
    int k = seen_find(ad, outbound_id);
    if (k >= 0) {
        ad->seen[k].state = 2;
        ad->seen[k].delivered = delivered != 0;
        ad->seen[k].permanent = permanent != 0;
        snprintf(ad->seen[k].provider_message_id, sizeof(ad->seen[k].provider_message_id), "%s",
                 provider_message_id ? provider_message_id : "");
        snprintf(ad->seen[k].error, sizeof(ad->seen[k].error), "%s", error ? error : "");
    }
    Omni__V1__OutboundResult r = OMNI__V1__OUTBOUND_RESULT__INIT;
    r.outbound_id = (char *)outbound_id;
    r.delivered = delivered != 0;
    r.permanent = permanent != 0;
    r.provider_message_id = (char *)(provider_message_id ? provider_message_id : "");
    r.error = (char *)(error ? error : "");
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.body_case = OMNI__V1__ENVELOPE__BODY_OUTBOUND_RESULT;
    env.outbound_result = &r;
    return send_envelope(ad, &env);
}

static void handle_outbound(omni_adapter_t *ad, const Omni__V1__OutboundMessage *m)
{
    int k = seen_find(ad, m->outbound_id);
    if (k >= 0) {
        if (ad->seen[k].state == 2) /* its result was lost on the way: say it again */
            omni_adapter_outbound_result(ad, m->outbound_id, ad->seen[k].delivered, ad->seen[k].permanent,
                                         ad->seen[k].provider_message_id, ad->seen[k].error);
        return; /* still being delivered by the application */
    }
    if (strlen(m->outbound_id) < OUTBOUND_ID_MAX) {
        k = (int)(ad->seen_next++ % OUTBOUND_SEEN);
        snprintf(ad->seen[k].id, OUTBOUND_ID_MAX, "%s", m->outbound_id);
        ad->seen[k].state = 1;
    }
    if (ad->on_outbound)
        ad->on_outbound(ad, m, ad->user);
    else
        omni_adapter_outbound_result(ad, m->outbound_id, 0, 1, NULL, "adapter has no outbound handler");
}

static void send_hello(omni_adapter_t *ad, int64_t now)
{
    Omni__V1__Hello h = OMNI__V1__HELLO__INIT;
    h.adapter_id = ad->adapter_id;
    h.channel = ad->channel;
    h.accounts = ad->accounts;
    h.n_accounts = ad->n_accounts;
    h.sdk_version = (char *)OMNI_VERSION;
    h.heartbeat_ms = (uint32_t)ad->heartbeat_ms;
    h.outbox = (uint32_t)ad->count;
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.body_case = OMNI__V1__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    /* Until a connection exists the send fails; try again soon rather than a full interval later. */
    ad->next_hello_us = now + (send_envelope(ad, &env) == 0 ? ad->heartbeat_ms * 1000LL : 100 * 1000LL);
}

/* The broker came back (or restarted): everything unacked is due now instead of after its backoff. */
static void resend_all_now(omni_adapter_t *ad, int64_t now)
{
    for (uint64_t id = ad->head_id; id < ad->next_id; id++) {
        slot_t *s = slot_of(ad, id);
        if (s) {
            s->due_us = now;
            s->attempts = 0;
            s->state = SLOT_QUEUED; /* due regardless of the new broker's liveness */
        }
    }
    ad->earliest_due_us = now;
}

static void handle_ack(omni_adapter_t *ad, const Omni__V1__Ack *a, int64_t now)
{
    slot_t *s = slot_of(ad, a->request_id);
    if (!s)
        return; /* an ack for a resend we already settled */
    if (!a->accepted && a->retryable) {
        if (s->due_us > now + backoff_us(ad, s->attempts)) /* keep the earlier of the two */
            s->due_us = now + backoff_us(ad, s->attempts);
        s->state = SLOT_QUEUED; /* the broker asked for it again: resend even though it is alive */
        if (s->due_us < ad->earliest_due_us)
            ad->earliest_due_us = s->due_us;
        return;
    }
    if (ad->on_ack) {
        omni_ack_t ack = {
            .request_id = a->request_id, .accepted = a->accepted, .duplicate = a->duplicate,
            .customer_id = a->customer_id ? a->customer_id : "",
            .conversation_id = a->conversation_id ? a->conversation_id : "",
            .seq = a->seq, .reason = a->reason, .detail = a->detail ? a->detail : "",
        };
        ad->on_ack(ad, &ack, ad->user);
    }
    slot_release(ad, s);
}

static int handle_frame(omni_adapter_t *ad, const uint8_t *data, size_t len, int64_t now)
{
    Omni__V1__Envelope *env = omni__v1__envelope__unpack(NULL, len, data);
    if (!env)
        return 0; /* not ours to crash on: a broker never sends these */
    int was_connected = omni_adapter_connected(ad), heard_before = ad->last_heard_us != 0;
    ad->last_heard_us = now;
    switch (env->body_case) {
    case OMNI__V1__ENVELOPE__BODY_ACK:
        handle_ack(ad, env->ack, now);
        break;
    case OMNI__V1__ENVELOPE__BODY_HEARTBEAT:
        /* A restarted broker lost whatever was in flight; one that went silent may have. */
        if ((ad->broker_started_ms && env->heartbeat->started_ms != ad->broker_started_ms) ||
            (heard_before && !was_connected))
            resend_all_now(ad, now);
        ad->broker_started_ms = env->heartbeat->started_ms;
        break;
    case OMNI__V1__ENVELOPE__BODY_OUTBOUND:
        handle_outbound(ad, env->outbound);
        break;
    default:
        break;
    }
    omni__v1__envelope__free_unpacked(env, NULL);
    return 1;
}

static void run_timers(omni_adapter_t *ad, int64_t now)
{
    if (now >= ad->next_hello_us)
        send_hello(ad, now);
    if (now < ad->earliest_due_us)
        return;
    int64_t earliest = INT64_MAX;
    for (uint64_t id = ad->head_id; id < ad->next_id; id++) {
        slot_t *s = slot_of(ad, id);
        if (!s)
            continue;
        /* A live broker (same instance, answering heartbeats) acks or nacks everything it
         * received: resending to it under load would only multiply the load. Broker restarts
         * and silences are caught by the heartbeat path, which resends at once. */
        if (s->due_us <= now && s->state == SLOT_SENT && omni_adapter_connected(ad) &&
            now - s->sent_us < ad->stall_timeout_ms * 1000LL)
            s->due_us = s->sent_us + ad->stall_timeout_ms * 1000LL;
        else if (s->due_us <= now)
            slot_send(ad, s, now);
        if (s->due_us < earliest)
            earliest = s->due_us;
    }
    ad->earliest_due_us = earliest;
}

int omni_adapter_process(omni_adapter_t *ad)
{
    int handled = 0;
    if (!ad)
        return OMNI_EINVAL;
    int64_t now = omni_mono_us();
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, ad->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        handled += handle_frame(ad, zmq_msg_data(&msg), zmq_msg_size(&msg), now);
        zmq_msg_close(&msg);
    }
    run_timers(ad, now);
    return handled;
}

int omni_adapter_fd(omni_adapter_t *ad)
{
    int fd = -1;
    size_t sz = sizeof(fd);
    if (!ad || zmq_getsockopt(ad->sock, ZMQ_FD, &fd, &sz) != 0)
        return OMNI_EIO;
    return fd;
}

int omni_adapter_timeout_ms(omni_adapter_t *ad)
{
    int64_t now = omni_mono_us(), next = ad->next_hello_us;
    if (ad->earliest_due_us < next)
        next = ad->earliest_due_us;
    if (next <= now)
        return 0;
    int64_t ms = (next - now + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

int omni_adapter_poll(omni_adapter_t *ad, int timeout_ms)
{
    if (!ad)
        return OMNI_EINVAL;
    int t = omni_adapter_timeout_ms(ad);
    if (timeout_ms >= 0 && timeout_ms < t)
        t = timeout_ms;
    zmq_pollitem_t it = {.socket = ad->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, t) < 0 && errno != EINTR)
        return OMNI_EIO;
    return omni_adapter_process(ad);
}

int omni_adapter_flush(omni_adapter_t *ad, int timeout_ms)
{
    int64_t end = omni_mono_us() + (int64_t)timeout_ms * 1000;
    while (ad && ad->count > 0) {
        int64_t left = (end - omni_mono_us()) / 1000;
        if (left <= 0)
            return OMNI_ETIMEDOUT;
        if (omni_adapter_poll(ad, left > 100 ? 100 : (int)left) < 0)
            return OMNI_EIO;
    }
    return 0;
}

size_t omni_adapter_pending(const omni_adapter_t *ad)
{
    return ad ? ad->count : 0;
}

int omni_adapter_connected(const omni_adapter_t *ad)
{
    return ad && ad->last_heard_us &&
           omni_mono_us() - ad->last_heard_us < 3LL * ad->heartbeat_ms * 1000;
}

int omni_adapter_identity(const omni_adapter_t *ad, const char *in, char *out, size_t outlen)
{
    return omni_identity_normalize(in, ad ? ad->region : NULL, out, outlen);
}
