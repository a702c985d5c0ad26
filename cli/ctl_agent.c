/* `omnictl agent`: a real agent client on the broker's agents endpoint (agent.proto, see
 * docs/agents.md). Logs in, survives broker restarts, accepts offers, prints assignments. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omni/adapter.h>
#include <omni/omni.h>

#include "ctl.h"

#define CTL_AGENT_DEFAULT_HB_MS 1000
#define CTL_AGENT_LOGIN_RETRY_MS 1000
#define CTL_AGENT_LOGOUT_WAIT_MS 500
/* This many heartbeat intervals without a word from the broker: the session may be gone. */
#define CTL_AGENT_SILENT_BEATS 3
#define CTL_AGENT_MAX_SLOTS 1000

/* The request in flight for one assignment: its reply, then its close. */
enum { JOB_REPLY, JOB_CLOSE };

typedef struct {
    char *conversation_id;
    int stage;
    uint64_t rid;
} ctl_job_t;

/* Login fields parsed from the flags, and the storage they point into. */
typedef struct {
    Omni__V1__Login login;
    char *skills_buf, *langs_buf;
    Omni__V1__SkillLevel *skills;
    Omni__V1__SkillLevel **skill_ptrs;
    Omni__V1__ChannelSlots slots[4];
    Omni__V1__ChannelSlots *slot_ptrs[4];
    char **langs;
} ctl_login_spec_t;

typedef struct {
    ctl_conn_t *c;
    const ctl_agent_args_t *a;
    ctl_login_spec_t spec;
    void *sock;
    uint32_t hb_ms;           /* asked for in the Login */
    uint32_t beat_ms;         /* used: hb_ms, shortened to fit the broker's session timeout */
    /* session */
    uint64_t login_rid;       /* the login in flight; 0: none */
    int logged_in;            /* a LoginOk arrived (once is enough: later logins are re-logins) */
    int64_t started_ms;       /* broker instance of the last LoginOk */
    int64_t next_send_us;     /* next heartbeat or login retry */
    int64_t heard_us;         /* last message from the broker */
    int silent;               /* nothing heard for a while: log in again when it speaks */
    /* work */
    char **held;              /* conversations assigned to us and not closed */
    size_t n_held;
    ctl_job_t *jobs;
    size_t n_jobs;
    uint64_t handled;
    int refused;              /* a reply or close was refused */
    int exit_rc;              /* >= 0: leave with this code */
    json_t j, scratch;
} ctl_agent_t;

/* ---- flags into a Login ------------------------------------------------------------------ */

static int ctl_oom(void)
{
    fprintf(stderr, "omnictl: out of memory\n");
    return CTL_EXIT_FAIL;
}

/* Split s (a private copy) at commas in place; empty items are refused. Returns the count,
 * or -1. items must have room for strlen(s) / 2 + 1 entries. */
static int ctl_split(char *s, char **items)
{
    int n = 0;
    for (char *tok = s;; n++) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (!*tok)
            return -1;
        items[n] = tok;
        if (!comma)
            return n + 1;
        tok = comma + 1;
    }
}

/* "name[:level]"; a name may hold colons itself (lang:ja), so only trailing digits are a level. */
static int ctl_parse_skill(char *item, Omni__V1__SkillLevel *sk)
{
    omni__v1__skill_level__init(sk);
    sk->name = item;
    sk->level = 1;
    char *colon = strrchr(item, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
    long lvl = strtol(colon + 1, NULL, 10);
    if (lvl < 1 || lvl > 5 || colon == item)
        return -1;
    *colon = '\0';
    sk->level = (uint32_t)lvl;
    return 0;
}

static int ctl_spec_skills(ctl_login_spec_t *sp, const char *arg)
{
    sp->skills_buf = strdup(arg);
    size_t max = strlen(arg) / 2 + 1;
    char **items = calloc(max, sizeof *items);
    sp->skills = calloc(max, sizeof *sp->skills);
    sp->skill_ptrs = calloc(max, sizeof *sp->skill_ptrs);
    if (!sp->skills_buf || !items || !sp->skills || !sp->skill_ptrs) {
        free(items);
        return ctl_oom();
    }
    int n = ctl_split(sp->skills_buf, items), rc = CTL_EXIT_OK;
    if (n < 0)
        rc = ctl_usage_fail("agent", "--skills: empty skill name in '%s'", arg);
    for (int i = 0; i < n && rc == CTL_EXIT_OK; i++) {
        if (ctl_parse_skill(items[i], &sp->skills[i]) != 0)
            rc = ctl_usage_fail("agent", "--skills: '%s' is not name[:level] with level 1..5", items[i]);
        sp->skill_ptrs[i] = &sp->skills[i];
    }
    free(items);
    sp->login.skills = sp->skill_ptrs;
    sp->login.n_skills = n > 0 ? (size_t)n : 0;
    return rc;
}

/* "chat=3" into cs. */
static int ctl_parse_slots(char *item, Omni__V1__ChannelSlots *cs)
{
    char *eq = strchr(item, '='), *end;
    if (!eq || eq[1] < '0' || eq[1] > '9')
        return -1;
    *eq = '\0';
    long slots = strtol(eq + 1, &end, 10);
    Omni__V1__Channel ch = omni_channel_parse(item);
    if (*end || slots > CTL_AGENT_MAX_SLOTS || ch == OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED)
        return -1;
    omni__v1__channel_slots__init(cs);
    cs->channel = ch;
    cs->slots = (uint32_t)slots;
    return 0;
}

/* "chat=3,email=5": each of the four channels at most once. */
static int ctl_spec_capacity(ctl_login_spec_t *sp, const char *arg)
{
    char *buf = strdup(arg), *items[4];
    if (!buf)
        return ctl_oom();
    size_t commas = 0;
    for (const char *p = arg; *p; p++)
        commas += *p == ',';
    int count = commas < 4 ? ctl_split(buf, items) : -1;
    for (int i = 0; i < count; i++) {
        if (ctl_parse_slots(items[i], &sp->slots[i]) != 0)
            count = -1;
        for (int k = 0; count > 0 && k < i; k++)
            if (sp->slots[k].channel == sp->slots[i].channel)
                count = -1;
        sp->slot_ptrs[i] = &sp->slots[i];
    }
    free(buf);
    if (count < 0)
        return ctl_usage_fail("agent", "--capacity: want CHANNEL=N,... (chat, email, sns, phone "
                                       "once each, N 0..%d), not '%s'", CTL_AGENT_MAX_SLOTS, arg);
    sp->login.capacity = sp->slot_ptrs;
    sp->login.n_capacity = (size_t)count;
    return CTL_EXIT_OK;
}

static int ctl_spec_languages(ctl_login_spec_t *sp, const char *arg)
{
    sp->langs_buf = strdup(arg);
    sp->langs = calloc(strlen(arg) / 2 + 1, sizeof *sp->langs);
    if (!sp->langs_buf || !sp->langs)
        return ctl_oom();
    int n = ctl_split(sp->langs_buf, sp->langs);
    if (n < 0)
        return ctl_usage_fail("agent", "--languages: empty language in '%s'", arg);
    sp->login.languages = sp->langs;
    sp->login.n_languages = (size_t)n;
    return CTL_EXIT_OK;
}

static int ctl_spec_build(ctl_login_spec_t *sp, const ctl_agent_args_t *a, uint32_t hb_ms)
{
    omni__v1__login__init(&sp->login);
    if (!a->id || !*a->id)
        return ctl_usage_fail("agent", "agent needs --id ID");
    if (a->reject && a->ignore_offers)
        return ctl_usage_fail("agent", "--reject and --ignore-offers exclude each other");
    if (a->reply && !*a->reply)
        return ctl_usage_fail("agent", "--reply needs a text");
    if (a->disposition && !a->close)
        return ctl_usage_fail("agent", "--disposition goes with --close");
    sp->login.agent_id = (char *)a->id;
    sp->login.team = (char *)(a->team ? a->team : "");
    sp->login.heartbeat_ms = hb_ms;
    if (a->state && strcmp(a->state, "away") == 0)
        sp->login.state = OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY;
    else if (a->state && strcmp(a->state, "available") != 0)
        return ctl_usage_fail("agent", "--state is available or away, not '%s'", a->state);
    int rc = CTL_EXIT_OK;
    if (a->skills)
        rc = ctl_spec_skills(sp, a->skills);
    if (rc == CTL_EXIT_OK && a->capacity)
        rc = ctl_spec_capacity(sp, a->capacity);
    if (rc == CTL_EXIT_OK && a->languages)
        rc = ctl_spec_languages(sp, a->languages);
    return rc;
}

static void ctl_spec_free(ctl_login_spec_t *sp)
{
    free(sp->skills_buf);
    free(sp->langs_buf);
    free(sp->skills);
    free(sp->skill_ptrs);
    free(sp->langs);
}

/* ---- held conversations and jobs ---------------------------------------------------------- */

static int ctl_agent_holds(const ctl_agent_t *ag, const char *conversation_id)
{
    for (size_t i = 0; i < ag->n_held; i++)
        if (strcmp(ag->held[i], conversation_id) == 0)
            return 1;
    return 0;
}

/* Room for one more element of size `size` in *arr (n in use), and a copy of s; NULL when
 * out of memory, which ends the run. */
static char *ctl_agent_grow(ctl_agent_t *ag, void **arr, size_t n, size_t size, const char *s)
{
    void *grown = realloc(*arr, (n + 1) * size);
    char *copy = grown ? strdup(s) : NULL;
    if (grown)
        *arr = grown;
    if (!copy)
        ag->exit_rc = ctl_oom();
    return copy;
}

static void ctl_agent_hold(ctl_agent_t *ag, const char *conversation_id)
{
    char *copy = ctl_agent_grow(ag, (void **)&ag->held, ag->n_held, sizeof *ag->held, conversation_id);
    if (copy)
        ag->held[ag->n_held++] = copy;
}

static void ctl_agent_forget(ctl_agent_t *ag, const char *conversation_id)
{
    for (size_t i = 0; i < ag->n_held; i++) {
        if (strcmp(ag->held[i], conversation_id) != 0)
            continue;
        free(ag->held[i]);
        ag->held[i] = ag->held[--ag->n_held];
        return;
    }
}

static ctl_job_t *ctl_agent_job_by_rid(ctl_agent_t *ag, uint64_t rid)
{
    for (size_t i = 0; i < ag->n_jobs; i++)
        if (ag->jobs[i].rid == rid)
            return &ag->jobs[i];
    return NULL;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* One envelope; body is the member of the oneof that body_case names. A full pipe (broker
 * gone for long) drops it: heartbeats and logins repeat, jobs are resent after a re-login. */
static void ctl_agent_send(ctl_agent_t *ag, uint64_t rid, Omni__V1__AgentEnvelope__BodyCase body_case,
                           void *body)
{
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.request_id = rid;
    env.body_case = body_case;
    env.login = body; /* the oneof is a union: any member pointer will do */
    size_t n = omni__v1__agent_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        ag->exit_rc = ctl_oom();
        return;
    }
    omni__v1__agent_envelope__pack(&env, buf);
    zmq_send(ag->sock, buf, n, ZMQ_DONTWAIT);
    free(buf);
}

static void ctl_agent_send_login(ctl_agent_t *ag)
{
    ag->spec.login.holding = ag->held;
    ag->spec.login.n_holding = ag->n_held;
    ctl_agent_send(ag, ag->login_rid, OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN, &ag->spec.login);
    ag->next_send_us = omni_mono_us() + CTL_AGENT_LOGIN_RETRY_MS * 1000LL;
}

/* Log in (again): the same request id on every retry, so any answer to any copy counts. */
static void ctl_agent_relogin(ctl_agent_t *ag)
{
    if (ag->login_rid)
        return;
    ag->login_rid = ctl_conn_next_id(ag->c);
    ctl_agent_send_login(ag);
}

static void ctl_agent_send_job(ctl_agent_t *ag, const ctl_job_t *jb)
{
    if (jb->stage == JOB_REPLY) {
        /* One id per reply, the same on every resend: the broker stores and delivers it once. */
        static uint64_t nonce;
        char reply_id[64];
        if (!nonce)
            nonce = ((uint64_t)omni_now_ms() << 20) ^ (uint64_t)getpid();
        snprintf(reply_id, sizeof(reply_id), "%" PRIx64 "-%" PRIu64, nonce, jb->rid);
        Omni__V1__Reply r = OMNI__V1__REPLY__INIT;
        r.conversation_id = jb->conversation_id;
        r.reply_id = reply_id;
        r.text = (char *)ag->a->reply;
        ctl_agent_send(ag, jb->rid, OMNI__V1__AGENT_ENVELOPE__BODY_REPLY, &r);
        return;
    }
    Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    cl.conversation_id = jb->conversation_id;
    cl.disposition = (char *)(ag->a->disposition ? ag->a->disposition : "resolved");
    ctl_agent_send(ag, jb->rid, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl);
}

static void ctl_agent_handled(ctl_agent_t *ag)
{
    ag->handled++;
    if (ag->a->count && ag->handled >= ag->a->count)
        ag->exit_rc = ag->refused ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

/* Send the first request of a new assignment's job, or count it handled if there is none. */
static void ctl_agent_start_job(ctl_agent_t *ag, const char *conversation_id)
{
    if (!ag->a->reply && !ag->a->close) {
        ctl_agent_handled(ag);
        return;
    }
    char *copy = ctl_agent_grow(ag, (void **)&ag->jobs, ag->n_jobs, sizeof *ag->jobs, conversation_id);
    if (!copy)
        return;
    ctl_job_t *jb = &ag->jobs[ag->n_jobs++];
    jb->conversation_id = copy;
    jb->stage = ag->a->reply ? JOB_REPLY : JOB_CLOSE;
    jb->rid = ctl_conn_next_id(ag->c);
    ctl_agent_send_job(ag, jb);
}

/* The request of job jb was answered (ok or refused): on to the close, or done. */
static void ctl_agent_advance(ctl_agent_t *ag, ctl_job_t *jb, int ok)
{
    if (jb->stage == JOB_REPLY && ag->a->close && ctl_agent_holds(ag, jb->conversation_id)) {
        jb->stage = JOB_CLOSE;
        jb->rid = ctl_conn_next_id(ag->c);
        ctl_agent_send_job(ag, jb);
        return;
    }
    if (jb->stage == JOB_CLOSE && ok)
        ctl_agent_forget(ag, jb->conversation_id);
    free(jb->conversation_id);
    *jb = ag->jobs[--ag->n_jobs];
    ctl_agent_handled(ag);
}

/* After a re-login: what was in flight may have died with the old broker instance. Jobs of
 * conversations the broker did not give back end here. */
static void ctl_agent_resend_jobs(ctl_agent_t *ag)
{
    for (size_t i = 0; i < ag->n_jobs;) {
        ctl_job_t *jb = &ag->jobs[i];
        if (ctl_agent_holds(ag, jb->conversation_id)) {
            ctl_agent_send_job(ag, jb);
            i++;
        } else {
            jb->stage = JOB_CLOSE;
            ctl_agent_advance(ag, jb, 0); /* moves the last job into slot i */
        }
    }
}

/* ---- output ------------------------------------------------------------------------------- */

/* Start a record: a JSON line {"type":..., "agent_id":..., ...} or a human line that starts
 * with the type. ctl_agent_end finishes and prints it. */
static ctl_fields_t ctl_agent_begin(ctl_agent_t *ag, const char *type)
{
    ctl_fields_t f = { NULL, &ag->scratch };
    if (!ag->c->opts->json) {
        printf("%s", type);
        return f;
    }
    f.j = &ag->j;
    json_reset(f.j);
    json_obj_begin(f.j);
    json_kv_str(f.j, "type", type);
    json_kv_str(f.j, "agent_id", ag->a->id);
    return f;
}

static void ctl_agent_end(ctl_fields_t *f)
{
    if (!f->j) {
        putchar('\n');
        return;
    }
    json_obj_end(f->j);
    ctl_emit(f->j);
}

/* Offers and assignments: which conversation, whose, over what, from which queue. */
static void ctl_agent_conversation(ctl_fields_t *f, const char *conversation_id, const char *customer_id,
                                   Omni__V1__Channel ch, const char *provider, const char *queue)
{
    ctl_fld_str(f, "conversation_id", conversation_id, 0);
    ctl_fld_str(f, "customer_id", customer_id, 0);
    ctl_fld_str(f, "channel", ctl_channel(ch), 0);
    ctl_fld_str(f, "provider", provider, 0);
    ctl_fld_str(f, "queue", queue, 0);
}

/* Human: one summary line always; JSON: a "login" line with --events. */
static void ctl_agent_print_login(ctl_agent_t *ag, const Omni__V1__LoginOk *ok, int again)
{
    if (!ag->c->opts->json) {
        printf("%s as %s at %s (heartbeat timeout %u ms, %zu conversation%s reclaimed)\n",
               again ? "logged in again" : "logged in", ag->a->id, ag->c->opts->agents,
               ok->heartbeat_timeout_ms, ok->n_reclaimed, ok->n_reclaimed == 1 ? "" : "s");
        return;
    }
    if (!ag->a->events)
        return;
    ctl_fields_t f = ctl_agent_begin(ag, "login");
    ctl_fld_i64(&f, "started_ms", ok->started_ms, 0);
    ctl_fld_u64(&f, "heartbeat_timeout_ms", ok->heartbeat_timeout_ms, 0);
    ctl_fld_strv(&f, "reclaimed", ok->reclaimed, ok->n_reclaimed);
    ctl_agent_end(&f);
}

/* The history goes into the JSON line, or as indented tail lines under the human one. */
static void ctl_agent_print_assignment(ctl_agent_t *ag, const Omni__V1__Assignment *as)
{
    ctl_fields_t f = ctl_agent_begin(ag, "assignment");
    ctl_agent_conversation(&f, as->conversation_id, as->customer_id, as->channel, as->provider, as->queue);
    ctl_fld_u64(&f, "offer_id", as->offer_id, 0);
    ctl_fld_str(&f, "subject", as->subject, CTL_FLD_QUOTE);
    ctl_fld_bool(&f, "restored", as->restored);
    if (f.j) {
        json_key(f.j, "history");
        json_arr_begin(f.j);
        for (size_t i = 0; i < as->n_history; i++)
            ctl_event_json(f.j, as->history[i]);
        json_arr_end(f.j);
    }
    ctl_agent_end(&f);
    for (size_t i = 0; !f.j && i < as->n_history; i++)
        ctl_event_human(&ag->scratch, as->history[i], "  ");
}

static void ctl_agent_print_offer(ctl_agent_t *ag, const Omni__V1__Offer *o)
{
    ctl_fields_t f = ctl_agent_begin(ag, "offer");
    ctl_fld_u64(&f, "offer_id", o->offer_id, 0);
    ctl_agent_conversation(&f, o->conversation_id, o->customer_id, o->channel, o->provider, o->queue);
    ctl_fld_str(&f, "category", o->category, 0);
    ctl_fld_i64(&f, "timeout_ms", o->timeout_ms, 0);
    ctl_fld_i64(&f, "wait_ms", o->wait_ms, 0);
    ctl_fld_str(&f, "strategy", o->strategy, 0);
    ctl_fld_u64(&f, "step", o->step, 0);
    ctl_fld_u64(&f, "pool_size", o->pool_size, 0);
    ctl_fld_i64(&f, "score", o->score, 0);
    ctl_fld_str(&f, "preview", o->preview, CTL_FLD_QUOTE);
    ctl_agent_end(&f);
}

static void ctl_agent_print_event(ctl_agent_t *ag, const Omni__V1__StreamEvent *ev)
{
    if (!ag->c->opts->json) {
        ctl_event_human(&ag->scratch, ev, "event ");
        return;
    }
    ctl_fields_t f = ctl_agent_begin(ag, "event");
    json_key(f.j, "event");
    ctl_event_json(f.j, ev);
    ctl_agent_end(&f);
}

/* --events: a reply or close the broker took. */
static void ctl_agent_print_done(ctl_agent_t *ag, const ctl_job_t *jb, const Omni__V1__AgentOk *ok)
{
    int reply = jb->stage == JOB_REPLY;
    ctl_fields_t f = ctl_agent_begin(ag, reply ? "replied" : "closed");
    ctl_fld_str(&f, "conversation_id", jb->conversation_id, 0);
    if (reply) {
        ctl_fld_str(&f, "outbound_id", ok->outbound_id, 0);
        ctl_fld_u64(&f, "seq", ok->seq, 0);
    }
    ctl_agent_end(&f);
}

/* ---- what the broker sends ---------------------------------------------------------------- */

static void ctl_agent_on_login_ok(ctl_agent_t *ag, uint64_t rid, const Omni__V1__LoginOk *ok)
{
    if (!ag->login_rid || rid != ag->login_rid)
        return; /* an answer to a login we no longer wait for */
    int again = ag->logged_in;
    ag->login_rid = 0;
    ag->logged_in = 1;
    ag->started_ms = ok->started_ms;
    /* Three beats per session timeout, so one lost beat never ends the session. */
    ag->beat_ms = ag->hb_ms;
    if (ok->heartbeat_timeout_ms && ok->heartbeat_timeout_ms / 3 < ag->beat_ms)
        ag->beat_ms = ok->heartbeat_timeout_ms / 3 > 10 ? ok->heartbeat_timeout_ms / 3 : 10;
    ag->next_send_us = omni_mono_us() + ag->beat_ms * 1000LL;
    /* What we held and the broker did not give back is someone else's now. */
    for (size_t i = 0; i < ag->n_held;) {
        int kept = 0;
        for (size_t k = 0; k < ok->n_reclaimed && !kept; k++)
            kept = strcmp(ok->reclaimed[k], ag->held[i]) == 0;
        if (kept)
            i++;
        else
            ctl_agent_forget(ag, ag->held[i]); /* moves the last entry into slot i */
    }
    ctl_agent_print_login(ag, ok, again);
    ctl_agent_resend_jobs(ag);
}

static void ctl_agent_on_error(ctl_agent_t *ag, uint64_t rid, const Omni__V1__AgentError *e)
{
    if (ag->login_rid && rid == ag->login_rid) {
        fprintf(stderr, "omnictl: agent: %s: %s\n", e->code, e->detail);
        ag->exit_rc = CTL_EXIT_FAIL;
        return;
    }
    if (strcmp(e->code, "not_logged_in") == 0) {
        /* The broker lost our session; a job's request is sent again after the login. */
        ctl_agent_relogin(ag);
        return;
    }
    ctl_job_t *jb = ctl_agent_job_by_rid(ag, rid);
    if (!jb) {
        fprintf(stderr, "omnictl: agent: %s: %s\n", e->code, e->detail); /* e.g. a revoked offer */
        return;
    }
    fprintf(stderr, "omnictl: agent: %s %s: %s: %s\n", jb->stage == JOB_REPLY ? "reply" : "close",
            jb->conversation_id, e->code, e->detail);
    ag->refused = 1;
    ctl_agent_advance(ag, jb, 0);
}

static void ctl_agent_on_ok(ctl_agent_t *ag, uint64_t rid, const Omni__V1__AgentOk *ok)
{
    ctl_job_t *jb = ctl_agent_job_by_rid(ag, rid);
    if (!jb)
        return; /* e.g. an accept's or the logout's answer */
    if (ag->a->events)
        ctl_agent_print_done(ag, jb, ok);
    ctl_agent_advance(ag, jb, 1);
}

static void ctl_agent_on_offer(ctl_agent_t *ag, const Omni__V1__Offer *o)
{
    if (ag->a->events)
        ctl_agent_print_offer(ag, o);
    if (ag->a->ignore_offers)
        return;
    if (ag->a->reject) {
        Omni__V1__Reject r = OMNI__V1__REJECT__INIT;
        r.offer_id = o->offer_id;
        r.reason = "omnictl agent --reject";
        ctl_agent_send(ag, ctl_conn_next_id(ag->c), OMNI__V1__AGENT_ENVELOPE__BODY_REJECT, &r);
        return;
    }
    Omni__V1__Accept acc = OMNI__V1__ACCEPT__INIT;
    acc.offer_id = o->offer_id;
    ctl_agent_send(ag, ctl_conn_next_id(ag->c), OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT, &acc);
}

/* A conversation we already hold (restored after a broker restart) is printed again but not
 * answered again: its reply went out before. */
static void ctl_agent_on_assignment(ctl_agent_t *ag, const Omni__V1__Assignment *as)
{
    int known = ctl_agent_holds(ag, as->conversation_id);
    if (!known)
        ctl_agent_hold(ag, as->conversation_id);
    ctl_agent_print_assignment(ag, as);
    if (!known)
        ctl_agent_start_job(ag, as->conversation_id);
}

static void ctl_agent_on_status(ctl_agent_t *ag, const Omni__V1__AgentStatus *st)
{
    if (!ag->a->events)
        return;
    char state[32];
    ctl_enum_word(&omni__v1__agent_state__descriptor, st->state, "AGENT_STATE_", state, sizeof state);
    ctl_fields_t f = ctl_agent_begin(ag, "status");
    ctl_fld_str(&f, "state", state, 0);
    ctl_fld_str(&f, "reason", st->reason, 0);
    ctl_agent_end(&f);
}

static void ctl_agent_on_revoke(ctl_agent_t *ag, const Omni__V1__Revoke *r)
{
    if (!ag->a->events)
        return;
    ctl_fields_t f = ctl_agent_begin(ag, "revoke");
    ctl_fld_u64(&f, "offer_id", r->offer_id, 0);
    ctl_fld_str(&f, "conversation_id", r->conversation_id, 0);
    ctl_fld_str(&f, "reason", r->reason, 0);
    ctl_agent_end(&f);
}

static void ctl_agent_on_released(ctl_agent_t *ag, const Omni__V1__Released *r)
{
    ctl_agent_forget(ag, r->conversation_id);
    if (!ag->a->events)
        return;
    ctl_fields_t f = ctl_agent_begin(ag, "released");
    ctl_fld_str(&f, "conversation_id", r->conversation_id, 0);
    ctl_fld_str(&f, "reason", r->reason, 0);
    ctl_agent_end(&f);
}

static void ctl_agent_on_heartbeat(ctl_agent_t *ag, const Omni__V1__AgentHeartbeat *hb)
{
    if (ag->logged_in && hb->started_ms != ag->started_ms)
        ctl_agent_relogin(ag); /* a new broker instance: our session is not in it */
}

static void ctl_agent_dispatch(ctl_agent_t *ag, const Omni__V1__AgentEnvelope *env)
{
    uint64_t rid = env->request_id;
    switch (env->body_case) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK: ctl_agent_on_login_ok(ag, rid, env->login_ok); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ERROR: ctl_agent_on_error(ag, rid, env->error); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_OK: ctl_agent_on_ok(ag, rid, env->ok); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT: ctl_agent_on_heartbeat(ag, env->heartbeat); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_OFFER: ctl_agent_on_offer(ag, env->offer); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT: ctl_agent_on_assignment(ag, env->assignment); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_STATUS: ctl_agent_on_status(ag, env->status); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REVOKE: ctl_agent_on_revoke(ag, env->revoke); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_RELEASED: ctl_agent_on_released(ag, env->released); break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_EVENT:
        if (ag->a->events && env->event->event)
            ctl_agent_print_event(ag, env->event->event);
        break;
    default:
        break; /* a client-side body, or one from a newer broker */
    }
}

/* One message from the broker. After a silence it may have dropped our session (heartbeat
 * timeout) without telling us, so we log in again whatever it said. */
static void ctl_agent_handle(ctl_agent_t *ag, const Omni__V1__AgentEnvelope *env)
{
    int was_silent = ag->silent;
    ag->heard_us = omni_mono_us();
    ag->silent = 0;
    ctl_agent_dispatch(ag, env);
    if (was_silent && ag->logged_in && ag->exit_rc < 0 &&
        env->body_case != OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK)
        ctl_agent_relogin(ag);
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Everything that arrived, without blocking. */
static void ctl_agent_drain(ctl_agent_t *ag)
{
    zmq_msg_t msg;
    while (ag->exit_rc < 0 && ctl_conn_recv_last(ag->sock, &msg) >= 0) {
        Omni__V1__AgentEnvelope *env =
            omni__v1__agent_envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!env)
            continue; /* not ours to judge: a newer or broken peer */
        ctl_agent_handle(ag, env);
        omni__v1__agent_envelope__free_unpacked(env, NULL);
    }
    fflush(stdout);
}

/* Timers: login retries while a login is in flight, else heartbeats. */
static void ctl_agent_tick(ctl_agent_t *ag, int64_t now)
{
    if (now < ag->next_send_us)
        return;
    if (ag->login_rid) {
        ctl_agent_send_login(ag);
        return;
    }
    if (now - ag->heard_us > (int64_t)CTL_AGENT_SILENT_BEATS * ag->beat_ms * 1000)
        ag->silent = 1; /* keep beating: ZeroMQ reconnects on its own */
    Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
    ctl_agent_send(ag, ctl_conn_next_id(ag->c), OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT, &hb);
    ag->next_send_us = now + ag->beat_ms * 1000LL;
}

/* Wait for the socket until the next timer (or the first login's deadline). */
static int ctl_agent_wait(ctl_agent_t *ag, int64_t until_us)
{
    int64_t left = (until_us - omni_mono_us() + 999) / 1000;
    zmq_pollitem_t it = { ag->sock, 0, ZMQ_POLLIN, 0 };
    int pr = zmq_poll(&it, 1, left > 0 ? (long)left : 0);
    if (pr < 0 && zmq_errno() != EINTR) {
        fprintf(stderr, "omnictl: agent: poll: %s\n", zmq_strerror(zmq_errno()));
        return CTL_EXIT_FAIL;
    }
    if (pr > 0)
        ctl_agent_drain(ag);
    return CTL_EXIT_OK;
}

static int ctl_agent_loop(ctl_agent_t *ag)
{
    int64_t first_deadline = omni_mono_us() + (int64_t)ag->c->opts->timeout_ms * 1000;
    ctl_agent_relogin(ag);
    while (ag->exit_rc < 0 && !ctl_stop) {
        int64_t now = omni_mono_us();
        if (!ag->logged_in && now >= first_deadline) {
            fprintf(stderr, "omnictl: agent: broker unreachable at %s (no answer to login in %d ms)\n",
                    ag->c->opts->agents, ag->c->opts->timeout_ms);
            return CTL_EXIT_FAIL;
        }
        ctl_agent_tick(ag, now);
        int64_t until = ag->next_send_us;
        if (!ag->logged_in && first_deadline < until)
            until = first_deadline;
        if (ctl_agent_wait(ag, until) != CTL_EXIT_OK)
            return CTL_EXIT_FAIL;
    }
    return ag->exit_rc >= 0 ? ag->exit_rc : CTL_EXIT_OK;
}

/* Tell the broker we leave, so it reroutes now rather than after the heartbeat timeout; its
 * answer (or 500 ms) also tells us the Logout left our queue before the socket closes. */
static void ctl_agent_logout(ctl_agent_t *ag)
{
    Omni__V1__Logout lo = OMNI__V1__LOGOUT__INIT;
    uint64_t rid = ctl_conn_next_id(ag->c);
    ctl_agent_send(ag, rid, OMNI__V1__AGENT_ENVELOPE__BODY_LOGOUT, &lo);
    int64_t end = omni_mono_us() + CTL_AGENT_LOGOUT_WAIT_MS * 1000LL;
    for (;;) {
        int64_t left = (end - omni_mono_us()) / 1000;
        zmq_pollitem_t it = { ag->sock, 0, ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll(&it, 1, (long)left) < 0)
            return;
        zmq_msg_t msg;
        while (ctl_conn_recv_last(ag->sock, &msg) >= 0) {
            Omni__V1__AgentEnvelope *env =
                omni__v1__agent_envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            zmq_msg_close(&msg);
            int answered = env && env->request_id == rid;
            if (env)
                omni__v1__agent_envelope__free_unpacked(env, NULL);
            if (answered)
                return;
        }
    }
}

static void ctl_agent_free(ctl_agent_t *ag)
{
    for (size_t i = 0; i < ag->n_held; i++)
        free(ag->held[i]);
    for (size_t i = 0; i < ag->n_jobs; i++)
        free(ag->jobs[i].conversation_id);
    free(ag->held);
    free(ag->jobs);
    ctl_spec_free(&ag->spec);
    json_free(&ag->j);
    json_free(&ag->scratch);
}

int ctl_agent_run(ctl_conn_t *c, const ctl_agent_args_t *a)
{
    ctl_agent_t ag;
    memset(&ag, 0, sizeof ag);
    ag.c = c;
    ag.a = a;
    ag.hb_ms = a->heartbeat_ms ? a->heartbeat_ms : CTL_AGENT_DEFAULT_HB_MS;
    ag.exit_rc = -1;
    int rc = ctl_spec_build(&ag.spec, a, ag.hb_ms);
    if (rc == CTL_EXIT_OK) {
        rc = ctl_conn_connect(c, ZMQ_DEALER, c->opts->agents, &ag.sock);
        if (rc != CTL_OK)
            fprintf(stderr, "omnictl: agent: %s\n", c->errbuf);
        rc = rc == CTL_OK ? CTL_EXIT_OK : rc == CTL_EENDPOINT ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
    }
    if (rc == CTL_EXIT_OK) {
        ctl_catch_stop_signals();
        rc = ctl_agent_loop(&ag);
        if (ag.logged_in)
            ctl_agent_logout(&ag);
    }
    if (ag.sock)
        zmq_close(ag.sock);
    ctl_agent_free(&ag);
    return rc;
}
