/* `omnictl tail`: prints stored stream events from the control endpoint and, with --follow,
 * live ones from the stream PUB, gap-free and in strictly increasing seq order. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Events per history page (the broker may cap it lower). */
#define CTL_TAIL_PAGE 1000
/* With --follow, after this long without a live event ask the control endpoint for anything
 * newer: covers events published before our subscription reached the PUB (slow joiner) or
 * dropped at its high-water mark, which would otherwise only show up with the next event. */
#define CTL_TAIL_IDLE_MS 2000

typedef struct {
    ctl_conn_t *c;
    int json;
    json_t j;
    json_t scratch;      /* quoting for the human format */
    uint64_t next;       /* lowest seq not printed yet: output stays strictly increasing */
} ctl_tail_t;

static const char *ctl_tail_type(const Omni__V1__StreamEvent *ev)
{
    switch (ev->kind_case) {
    case OMNI__V1__STREAM_EVENT__KIND_MESSAGE: return "message";
    case OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED: return "customer_merged";
    case OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED: return "conversation_opened";
    default: return "unknown"; /* a newer broker's event kind (routing events 13..39) */
    }
}

static void ctl_tail_json(json_t *j, const Omni__V1__StreamEvent *ev)
{
    json_obj_begin(j);
    json_kv_u64(j, "seq", ev->seq);
    json_kv_i64(j, "time_ms", ev->time_ms);
    json_kv_str(j, "type", ctl_tail_type(ev));
    json_kv_str(j, "channel", ctl_channel(ev->channel));
    json_kv_str(j, "customer_id", ev->customer_id);
    json_kv_str(j, "conversation_id", ev->conversation_id);
    switch (ev->kind_case) {
    case OMNI__V1__STREAM_EVENT__KIND_MESSAGE: {
        const Omni__V1__InboundMessage *m = ev->message ? ev->message->inbound : NULL;
        if (!m)
            break;
        json_kv_str(j, "from", m->from);
        json_kv_strv(j, "also", m->also, m->n_also);
        json_kv_str(j, "text", m->text);
        if (m->subject && *m->subject)
            json_kv_str(j, "subject", m->subject);
        if (m->display_name && *m->display_name)
            json_kv_str(j, "display_name", m->display_name);
        if (m->provider && *m->provider)
            json_kv_str(j, "provider", m->provider);
        json_kv_str(j, "channel_account", m->channel_account);
        json_kv_str(j, "provider_message_id", m->provider_message_id);
        if (m->n_attachments > 0)
            json_kv_u64(j, "attachments", m->n_attachments);
        break;
    }
    case OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED: {
        const Omni__V1__CustomerMerged *m = ev->customer_merged;
        json_kv_str(j, "survivor_id", m->survivor_id);
        json_kv_str(j, "merged_id", m->merged_id);
        json_kv_strv(j, "identities", m->identities, m->n_identities);
        json_kv_strv(j, "conversation_ids", m->conversation_ids, m->n_conversation_ids);
        break;
    }
    case OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED: {
        const Omni__V1__ConversationOpened *o = ev->conversation_opened;
        json_kv_str(j, "channel_account", o->channel_account);
        if (o->trigger_message_id && *o->trigger_message_id)
            json_kv_str(j, "trigger_message_id", o->trigger_message_id);
        break;
    }
    default:
        break;
    }
    json_obj_end(j);
}

/* s as a JSON string literal, so newlines in a message body stay on one output line. */
static const char *ctl_tail_quote(ctl_tail_t *t, const char *s)
{
    json_reset(&t->scratch);
    json_str(&t->scratch, s);
    const char *q = json_cstr(&t->scratch);
    return q ? q : "\"\"";
}

static void ctl_tail_human(ctl_tail_t *t, const Omni__V1__StreamEvent *ev)
{
    char when[40];
    const char *ch = ctl_channel(ev->channel);
    printf("#%llu %s %-5s %-19s customer=%s conversation=%s",
           (unsigned long long)ev->seq, ctl_fmt_time(ev->time_ms, when, sizeof when),
           *ch ? ch : "-", ctl_tail_type(ev), *ev->customer_id ? ev->customer_id : "-",
           *ev->conversation_id ? ev->conversation_id : "-");
    switch (ev->kind_case) {
    case OMNI__V1__STREAM_EVENT__KIND_MESSAGE: {
        const Omni__V1__InboundMessage *m = ev->message ? ev->message->inbound : NULL;
        if (!m)
            break;
        printf(" from=%s", m->from);
        for (size_t i = 0; i < m->n_also; i++)
            printf(" also=%s", m->also[i]);
        if (*m->display_name)
            printf(" name=%s", ctl_tail_quote(t, m->display_name));
        if (*m->provider)
            printf(" provider=%s", m->provider);
        if (*m->subject)
            printf(" subject=%s", ctl_tail_quote(t, m->subject));
        printf(" text=%s", ctl_tail_quote(t, m->text));
        if (m->n_attachments)
            printf(" attachments=%zu", m->n_attachments);
        break;
    }
    case OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED: {
        const Omni__V1__CustomerMerged *m = ev->customer_merged;
        printf(" survivor=%s merged=%s", m->survivor_id, m->merged_id);
        for (size_t i = 0; i < m->n_identities; i++)
            printf("%s%s", i ? "," : " identities=", m->identities[i]);
        for (size_t i = 0; i < m->n_conversation_ids; i++)
            printf("%s%s", i ? "," : " conversations=", m->conversation_ids[i]);
        break;
    }
    case OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED:
        if (*ev->conversation_opened->channel_account)
            printf(" account=%s", ev->conversation_opened->channel_account);
        break;
    default:
        break;
    }
    putchar('\n');
    fflush(stdout);
}

/* Print ev unless it is not newer than what was printed already. */
static void ctl_tail_print(ctl_tail_t *t, const Omni__V1__StreamEvent *ev)
{
    if (ev->seq < t->next)
        return;
    t->next = ev->seq + 1;
    if (t->json) {
        json_reset(&t->j);
        ctl_tail_json(&t->j, ev);
        ctl_emit(&t->j);
    } else
        ctl_tail_human(t, ev);
}

/* One TailRequest; prints its events. *fresh: how many of them were new. *stream_last: the
 * broker's highest seq. quiet: failures are not reported (the idle catch-up retries).
 * Returns 0 or an exit code. */
static int ctl_tail_fetch(ctl_tail_t *t, const Omni__V1__TailRequest *tr, int quiet,
                          size_t *fresh, uint64_t *stream_last)
{
    Omni__V1__TailRequest body = *tr;
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__ControlReply *rep = NULL;
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_TAIL;
    req.tail = &body;
    *fresh = 0;
    if (quiet) {
        int rc = ctl_conn_call(t->c, &req, &rep);
        if (rc == CTL_EINTR)
            return CTL_EXIT_STOPPED;
        if (rc != CTL_OK)
            return CTL_EXIT_FAIL;
        if (rep->error[0] || rep->body_case != OMNI__V1__CONTROL_REPLY__BODY_TAIL) {
            omni__v1__control_reply__free_unpacked(rep, NULL);
            return CTL_EXIT_FAIL;
        }
    } else {
        int rc = ctl_request(t->c, &req, &rep);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (rep->body_case != OMNI__V1__CONTROL_REPLY__BODY_TAIL) {
            fprintf(stderr, "omnictl: the broker answered tail with something else\n");
            omni__v1__control_reply__free_unpacked(rep, NULL);
            return CTL_EXIT_FAIL;
        }
    }
    const Omni__V1__TailReply *tail = rep->tail;
    for (size_t i = 0; i < tail->n_events; i++) {
        if (tail->events[i]->seq >= t->next) {
            ctl_tail_print(t, tail->events[i]);
            (*fresh)++;
        }
    }
    if (stream_last)
        *stream_last = tail->last_seq;
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_OK;
}

/* Page through history from t->next until a page brings nothing new or, when upto > 0,
 * everything up to seq upto is printed. */
static int ctl_tail_page(ctl_tail_t *t, uint64_t upto, int quiet)
{
    for (;;) {
        if (upto && t->next > upto)
            return CTL_EXIT_OK;
        Omni__V1__TailRequest tr = OMNI__V1__TAIL_REQUEST__INIT;
        tr.from_seq = t->next;
        tr.limit = CTL_TAIL_PAGE;
        size_t fresh;
        int rc = ctl_tail_fetch(t, &tr, quiet, &fresh, NULL);
        if (rc != CTL_EXIT_OK || fresh == 0)
            return rc;
    }
}

static void ctl_tail_on_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

static int ctl_tail_history(ctl_tail_t *t, const ctl_tail_args_t *a)
{
    if (a->have_from) {
        t->next = a->from;
        return ctl_tail_page(t, 0, 0);
    }
    Omni__V1__TailRequest tr = OMNI__V1__TAIL_REQUEST__INIT;
    tr.last = a->last;
    size_t fresh;
    uint64_t stream_last = 0;
    int rc = ctl_tail_fetch(t, &tr, 0, &fresh, &stream_last);
    if (rc != CTL_EXIT_OK || !a->follow)
        return rc;
    /* Continue after what the stream held (an empty stream starts at 1), then pick up what
     * was appended while the answer travelled, so live events join without a gap. */
    if (fresh == 0 && stream_last + 1 > t->next)
        t->next = stream_last + 1;
    return ctl_tail_page(t, 0, 0);
}

static int ctl_tail_follow(ctl_tail_t *t)
{
    for (;;) {
        Omni__V1__StreamEvent *ev;
        int rc = ctl_conn_next_event(t->c, CTL_TAIL_IDLE_MS, &ev);
        if (rc == CTL_EINTR)
            return CTL_EXIT_STOPPED;
        if (rc == CTL_ETIMEOUT) {
            rc = ctl_tail_page(t, 0, 1);
            if (rc == CTL_EXIT_STOPPED)
                return rc;
            continue; /* the broker may be restarting: keep following */
        }
        if (rc != CTL_OK) {
            fprintf(stderr, "omnictl: stream: %s\n", t->c->errbuf);
            return CTL_EXIT_FAIL;
        }
        if (ev->seq > t->next) {
            /* Missed events (slow joiner, PUB high-water mark, broker restart): fetch them
             * first. Seqs that no longer exist are simply skipped by the paging. */
            rc = ctl_tail_page(t, ev->seq - 1, 0);
            if (rc != CTL_EXIT_OK) {
                omni__v1__stream_event__free_unpacked(ev, NULL);
                return rc;
            }
        }
        ctl_tail_print(t, ev);
        omni__v1__stream_event__free_unpacked(ev, NULL);
    }
}

int ctl_tail_run(ctl_conn_t *c, const ctl_tail_args_t *a)
{
    ctl_tail_t t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.json = c->opts->json;
    json_init(&t.j);
    json_init(&t.scratch);

    int rc = CTL_EXIT_OK;
    if (a->follow) {
        /* No SA_RESTART: the signal must interrupt zmq_poll so we stop promptly. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = ctl_tail_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        /* Subscribe before reading history, so every event after it reaches us live. */
        int zrc = ctl_conn_subscribe(c);
        if (zrc != CTL_OK) {
            fprintf(stderr, "omnictl: stream: %s\n", c->errbuf);
            rc = zrc == CTL_EENDPOINT ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
        }
    }
    if (rc == CTL_EXIT_OK)
        rc = ctl_tail_history(&t, a);
    if (rc == CTL_EXIT_OK && a->follow)
        rc = ctl_tail_follow(&t);
    if (rc == CTL_EXIT_STOPPED)
        rc = CTL_EXIT_OK; /* interrupting a follow is how it normally ends */
    json_free(&t.j);
    json_free(&t.scratch);
    return rc;
}
