/* `omnictl tail`: prints stored stream events from the control endpoint and, with --follow,
 * live ones from the stream PUB, gap-free and in strictly increasing seq order. */
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

/* Print ev unless it is not newer than what was printed already. */
static void ctl_tail_print(ctl_tail_t *t, const Omni__V1__StreamEvent *ev)
{
    if (ev->seq < t->next)
        return;
    t->next = ev->seq + 1;
    if (t->json) {
        json_reset(&t->j);
        ctl_event_json(&t->j, ev);
        ctl_emit(&t->j);
    } else
        ctl_event_human(&t->scratch, ev, "");
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
        ctl_catch_stop_signals();
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
