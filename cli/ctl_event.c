/* Stream events as omnictl prints them, for `tail` and the agent client alike: one JSON object
 * per event, or one human line. Each kind lists its fields once, through a field sink that
 * writes either format (the agent client's own lines use the same sink). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

const char *ctl_quote(json_t *scratch, const char *s)
{
    json_reset(scratch);
    json_str(scratch, s);
    const char *q = json_cstr(scratch);
    return q ? q : "\"\"";
}

void ctl_fld_str(ctl_fields_t *f, const char *key, const char *v, int flags)
{
    if (!v)
        v = "";
    if (f->j) {
        if (*v || !(flags & CTL_FLD_OPT))
            json_kv_str(f->j, key, v);
        return;
    }
    /* An empty word says nothing on a human line; empty free text shows as "". */
    if ((flags & CTL_FLD_JSON) || (!*v && (flags & CTL_FLD_OPT || !(flags & CTL_FLD_QUOTE))))
        return;
    printf(" %s=%s", key, flags & CTL_FLD_QUOTE ? ctl_quote(f->scratch, v) : v);
}

void ctl_fld_u64(ctl_fields_t *f, const char *key, uint64_t v, int flags)
{
    if (!v && (flags & CTL_FLD_OPT))
        return;
    if (f->j)
        json_kv_u64(f->j, key, v);
    else if (!(flags & CTL_FLD_JSON))
        printf(" %s=%llu", key, (unsigned long long)v);
}

void ctl_fld_i64(ctl_fields_t *f, const char *key, int64_t v, int flags)
{
    if (f->j)
        json_kv_i64(f->j, key, v);
    else if (!(flags & CTL_FLD_JSON))
        printf(" %s=%lld", key, (long long)v);
}

/* Human: only a true flag is worth a word. */
void ctl_fld_bool(ctl_fields_t *f, const char *key, int v)
{
    if (f->j)
        json_kv_bool(f->j, key, v);
    else if (v)
        printf(" %s", key);
}

void ctl_fld_strv(ctl_fields_t *f, const char *key, char *const *v, size_t n)
{
    if (f->j) {
        json_kv_strv(f->j, key, v, n);
        return;
    }
    if (!n)
        return;
    printf(" %s=%s", key, v[0]);
    for (size_t i = 1; i < n; i++)
        printf(",%s", v[i]);
}

/* ---- one function per event kind ------------------------------------------------------- */

static void ev_message(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__InboundMessage *m = ev->message ? ev->message->inbound : NULL;
    if (!m)
        return;
    ctl_fld_str(f, "from", m->from, 0);
    ctl_fld_strv(f, "also", m->also, m->n_also);
    ctl_fld_str(f, "display_name", m->display_name, CTL_FLD_OPT | CTL_FLD_QUOTE);
    ctl_fld_str(f, "provider", m->provider, CTL_FLD_OPT);
    ctl_fld_str(f, "subject", m->subject, CTL_FLD_OPT | CTL_FLD_QUOTE);
    ctl_fld_str(f, "text", m->text, CTL_FLD_QUOTE);
    ctl_fld_str(f, "channel_account", m->channel_account, CTL_FLD_JSON);
    ctl_fld_str(f, "provider_message_id", m->provider_message_id, CTL_FLD_JSON);
    ctl_fld_u64(f, "attachments", m->n_attachments, CTL_FLD_OPT);
}

static void ev_customer_merged(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__CustomerMerged *m = ev->customer_merged;
    ctl_fld_str(f, "survivor_id", m->survivor_id, 0);
    ctl_fld_str(f, "merged_id", m->merged_id, 0);
    ctl_fld_strv(f, "identities", m->identities, m->n_identities);
    ctl_fld_strv(f, "conversation_ids", m->conversation_ids, m->n_conversation_ids);
}

static void ev_conversation_opened(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__ConversationOpened *o = ev->conversation_opened;
    ctl_fld_str(f, "channel_account", o->channel_account, 0);
    ctl_fld_str(f, "trigger_message_id", o->trigger_message_id, CTL_FLD_OPT);
}

static void ev_queued(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__Queued *q = ev->queued;
    ctl_fld_str(f, "queue", q->queue, 0);
    ctl_fld_str(f, "category", q->category, 0);
    ctl_fld_str(f, "rule", q->rule, 0);
    ctl_fld_i64(f, "priority_ms", q->priority_ms, 0);
    ctl_fld_i64(f, "enqueued_ms", q->enqueued_ms, CTL_FLD_JSON);
    ctl_fld_str(f, "provider", q->provider, CTL_FLD_OPT);
    ctl_fld_str(f, "reply_to", q->reply_to, 0);
    ctl_fld_str(f, "subject", q->subject, CTL_FLD_OPT | CTL_FLD_QUOTE);
    ctl_fld_str(f, "trigger_message_id", q->trigger_message_id, CTL_FLD_OPT | CTL_FLD_JSON);
    ctl_fld_str(f, "channel_account", q->channel_account, CTL_FLD_JSON);
    ctl_fld_str(f, "preferred_agent", q->preferred_agent, 0);
    ctl_fld_bool(f, "requeued", q->requeued);
    ctl_fld_str(f, "reason", q->reason, 0);
    ctl_fld_str(f, "preview", q->preview, CTL_FLD_OPT | CTL_FLD_JSON);
}

/* What every routing decision states: who, which offer, and why. */
static void ctl_fld_decision(ctl_fields_t *f, const char *agent_id, uint64_t offer_id, const char *queue,
                         const char *strategy, uint32_t step, uint32_t pool_size, int64_t score)
{
    ctl_fld_str(f, "agent_id", agent_id, 0);
    ctl_fld_u64(f, "offer_id", offer_id, 0);
    ctl_fld_str(f, "queue", queue, 0);
    ctl_fld_str(f, "strategy", strategy, 0);
    ctl_fld_u64(f, "step", step, 0);
    ctl_fld_u64(f, "pool_size", pool_size, 0);
    ctl_fld_i64(f, "score", score, 0);
}

static void ev_offered(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__Offered *o = ev->offered;
    ctl_fld_decision(f, o->agent_id, o->offer_id, o->queue, o->strategy, o->step, o->pool_size, o->score);
    ctl_fld_i64(f, "timeout_ms", o->timeout_ms, 0);
}

static void ev_assigned(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__Assigned *a = ev->assigned;
    ctl_fld_decision(f, a->agent_id, a->offer_id, a->queue, a->strategy, a->step, a->pool_size, a->score);
    ctl_fld_i64(f, "wait_ms", a->wait_ms, 0);
    ctl_fld_bool(f, "restored", a->restored);
}

static void ev_agent_message(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__AgentMessage *m = ev->agent_message;
    ctl_fld_str(f, "agent_id", m->agent_id, 0);
    ctl_fld_str(f, "to", m->to, 0);
    ctl_fld_str(f, "subject", m->subject, CTL_FLD_OPT | CTL_FLD_QUOTE);
    ctl_fld_str(f, "text", m->text, CTL_FLD_QUOTE);
    ctl_fld_str(f, "outbound_id", m->outbound_id, 0);
    ctl_fld_bool(f, "auto_reply", m->auto_reply);
}

static void ev_transferred(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__Transferred *t = ev->transferred;
    ctl_fld_str(f, "from_agent", t->from_agent, 0);
    ctl_fld_str(f, "from_queue", t->from_queue, 0);
    ctl_fld_str(f, "to_queue", t->to_queue, 0);
    ctl_fld_str(f, "to_agent", t->to_agent, 0);
    ctl_fld_str(f, "reason", t->reason, 0);
}

static void ev_closed(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__Closed *c = ev->closed;
    ctl_fld_str(f, "agent_id", c->agent_id, 0);
    ctl_fld_str(f, "disposition", c->disposition, CTL_FLD_QUOTE);
    ctl_fld_str(f, "queue", c->queue, 0);
}

static void ev_offer_ended(ctl_fields_t *f, const Omni__V1__StreamEvent *ev)
{
    const Omni__V1__OfferEnded *o = ev->offer_ended;
    ctl_fld_str(f, "agent_id", o->agent_id, 0);
    ctl_fld_u64(f, "offer_id", o->offer_id, 0);
    ctl_fld_str(f, "reason", o->reason, 0);
}

typedef struct {
    Omni__V1__StreamEvent__KindCase kind;
    const char *type;   /* "type" in JSON, the contract's names */
    void (*fields)(ctl_fields_t *f, const Omni__V1__StreamEvent *ev);
} ctl_event_kind_t;

static const ctl_event_kind_t ctl_event_kinds[] = {
    { OMNI__V1__STREAM_EVENT__KIND_MESSAGE, "message", ev_message },
    { OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED, "customer_merged", ev_customer_merged },
    { OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED, "conversation_opened", ev_conversation_opened },
    { OMNI__V1__STREAM_EVENT__KIND_QUEUED, "queued", ev_queued },
    { OMNI__V1__STREAM_EVENT__KIND_OFFERED, "offered", ev_offered },
    { OMNI__V1__STREAM_EVENT__KIND_ASSIGNED, "assigned", ev_assigned },
    { OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE, "agent_message", ev_agent_message },
    { OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED, "transferred", ev_transferred },
    { OMNI__V1__STREAM_EVENT__KIND_CLOSED, "closed", ev_closed },
    { OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED, "offer_ended", ev_offer_ended },
};

static const ctl_event_kind_t *ctl_event_kind(const Omni__V1__StreamEvent *ev)
{
    for (size_t i = 0; i < sizeof ctl_event_kinds / sizeof ctl_event_kinds[0]; i++)
        if (ctl_event_kinds[i].kind == ev->kind_case)
            return &ctl_event_kinds[i];
    return NULL;
}

const char *ctl_event_type(const Omni__V1__StreamEvent *ev)
{
    const ctl_event_kind_t *k = ctl_event_kind(ev);
    return k ? k->type : "unknown"; /* a newer broker's kind (fields 20..39) */
}

void ctl_event_json(json_t *j, const Omni__V1__StreamEvent *ev)
{
    json_obj_begin(j);
    json_kv_u64(j, "seq", ev->seq);
    json_kv_i64(j, "time_ms", ev->time_ms);
    json_kv_str(j, "type", ctl_event_type(ev));
    json_kv_str(j, "channel", ctl_channel(ev->channel));
    json_kv_str(j, "customer_id", ev->customer_id);
    json_kv_str(j, "conversation_id", ev->conversation_id);
    const ctl_event_kind_t *k = ctl_event_kind(ev);
    if (k) {
        ctl_fields_t f = { j, NULL };
        k->fields(&f, ev);
    }
    json_obj_end(j);
}

void ctl_event_human(json_t *scratch, const Omni__V1__StreamEvent *ev, const char *indent)
{
    char when[40];
    const char *ch = ctl_channel(ev->channel);
    printf("%s#%llu %s %-5s %-19s customer=%s conversation=%s", indent,
           (unsigned long long)ev->seq, ctl_fmt_time(ev->time_ms, when, sizeof when),
           *ch ? ch : "-", ctl_event_type(ev), *ev->customer_id ? ev->customer_id : "-",
           *ev->conversation_id ? ev->conversation_id : "-");
    const ctl_event_kind_t *k = ctl_event_kind(ev);
    if (k) {
        ctl_fields_t f = { NULL, scratch };
        k->fields(&f, ev);
    }
    putchar('\n');
    fflush(stdout);
}
