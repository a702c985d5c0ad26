/* The routing core of issue 3: queues of conversations, pools of able agents, offers, steps,
 * overflow, wrap-up, auto-pause, transfer and recovery.
 * Everything is decided on the caller's events with the caller's clock; see router.h for the model. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "router.h"

#define C ROUTER_CHANNELS
#define S ROUTER_MAX_STEPS
#define NO_STEP 0xff
#define REOFFER_MS 5000   /* a rejected/timed-out agent is skipped for this task this long */
/* Upper bound for configured durations, so now + duration cannot overflow int64 for any sane now. */
#define MAX_MS (INT64_C(1) << 50)

enum { T_FREE = 0, T_WAITING, T_STICKY, T_OFFERED, T_ASSIGNED };
/* Why a task may sit with t->agent outside the pools: router_check holds each kind to its own
 * eligibility rule. */
enum {
    PIN_NONE = 0,   /* routed by the pools: the agent is eligible at the task's step */
    PIN_STICKY,     /* customer's preferred agent: eligible at some step of the queue */
    PIN_FORCED,     /* transfer or attach: the caller chose the agent, no eligibility asked */
};

typedef struct {
    char id[ROUTER_ID_MAX];   /* first: the id hash reads it through a stride */
    int16_t queue;
    int8_t ch, state, step;
    uint8_t pin;
    uint8_t attached;         /* assigned by router_attach: its handle time is unknown, no AHT sample */
    int32_t agent;            /* offered/assigned agent, or the agent a parked task waits for */
    int32_t excluded;         /* agent that just rejected/timed out on it (or handed it over) */
    int32_t prev, next;       /* per-agent list: held (offered/assigned) or parked */
    uint32_t offer_gen;       /* never reset: an old offer id of a reused slot cannot match */
    /* key = enq_at - (queue priority + the task's own offset); the offset is not kept, a queue
     * change shifts the key by the difference of queue priorities. A park's end lives in the
     * deadline heap only. Kept small: every enqueue clears a whole task. */
    int64_t enq_at, key, seq, excluded_until, assigned_at;
    int64_t q_since;          /* start of the overflow-by-wait clock: enqueue time, or last transfer */
} task_t;

typedef struct {
    char id[ROUTER_ID_MAX];
    int team;
    uint8_t state;
    int n_skills;
    router_skill_level_t skills[ROUTER_MAX_AGENT_SKILLS];
    int cap[C], load[C];
    int64_t idle_since;
    uint64_t assigned;
    uint32_t missed;          /* consecutive timed-out offers */
    int32_t held, parked;     /* list heads */
    uint32_t n_q;             /* queues this agent can serve at some step: r->aq[a*Q .. +n_q) */
} agent_t;

typedef struct {
    char name[ROUTER_NAME_MAX];
    router_queue_cfg_t cfg;
    int n_steps;
    int32_t ovf;              /* overflow queue or -1 */
    int64_t ovf_after;        /* 0: only when full */
    rheap_t tasks[C][S];      /* waiting tasks by (channel, current step) */
    rheap_t pool[C][S];       /* able agents whose first eligible step is s, by strategy key */
    uint32_t pool_members[C][S];
    rheap_t oldest;           /* waiting + parked, by enqueue time: oldest wait, waiting count */
    uint32_t live[C];         /* tasks of this queue, any state */
    /* Tasks whose queue is this one or overflows into it (directly or along a chain): the most
     * this queue's heaps can ever hold, so they are reserved to it and an overflow move or a
     * requeue never allocates. */
    uint32_t reach[C], reach_total;
    uint64_t answered, in_sla, offered, rejected, timed_out, abandoned;
    int64_t aht_ms;
    int aht_known;
    uint32_t staffed;
} queue_t;

struct router {
    router_limits_t lim;
    uint8_t blocks[C];
    router_sink_fn sink;
    void *sink_ctx;
    agent_t *agents;
    uint32_t n_agents;
    task_t *tasks;
    uint32_t *free_tasks, n_free;
    queue_t *queues;
    uint32_t n_queues;
    int32_t *ahash, *thash;
    uint32_t amask, tmask;
    int32_t *tpos, *opos, *ppos;
    /* Deadline refs: task index < max_tasks, or max_tasks + agent index (wrap-up end). */
    int32_t *dpos;
    uint8_t *minstep;         /* [a*Q+q] */
    int64_t *rr;              /* [a*Q+q] round-robin mark */
    uint16_t *aq;             /* [a*Q + i] */
    rheap_t deadlines;
    char (*skills)[ROUTER_NAME_MAX];
    char (*teams)[ROUTER_NAME_MAX];
    uint32_t n_skills, n_teams;
    int64_t seq, rr_seq;
};

/* ---------- id hash (open addressing, linear probing, backward-shift delete) ---------- */

static uint32_t hstr(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static int32_t hfind(const int32_t *tab, uint32_t mask, const void *base, size_t stride, const char *id)
{
    for (uint32_t i = hstr(id) & mask;; i = (i + 1) & mask) {
        int32_t v = tab[i];
        if (v < 0) return -1;
        if (!strcmp((const char *)base + (size_t)v * stride, id)) return v;
    }
}

static void hinsert(int32_t *tab, uint32_t mask, const char *id, int32_t v)
{
    uint32_t i = hstr(id) & mask;
    while (tab[i] >= 0) i = (i + 1) & mask;
    tab[i] = v;
}

static void hdelete(int32_t *tab, uint32_t mask, const void *base, size_t stride, int32_t v)
{
    const char *id = (const char *)base + (size_t)v * stride;
    uint32_t i = hstr(id) & mask;
    while (tab[i] != v) i = (i + 1) & mask;
    tab[i] = -1;
    /* Shift back later entries whose probe run crossed the hole, so lookups never stop early. */
    for (uint32_t j = (i + 1) & mask; tab[j] >= 0; j = (j + 1) & mask) {
        uint32_t k = hstr((const char *)base + (size_t)tab[j] * stride) & mask;
        int move = (j > i) ? (k <= i || k > j) : (k <= i && k > j);
        if (move) {
            tab[i] = tab[j];
            tab[j] = -1;
            i = j;
        }
    }
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 16;
    while (p < n) p *= 2;
    return p;
}

/* ---------- create / destroy ---------- */

static int default_cap(int ch)
{
    static const int d[C] = {3, 5, 5, 1};
    return d[ch];
}

int router_new(const router_limits_t *lim, router_t **out)
{
    if (!lim || !out || !lim->max_agents || !lim->max_queues || !lim->max_tasks ||
        lim->max_queues > 65535 || lim->max_tasks > INT32_MAX / 4 || lim->max_agents > INT32_MAX / 4)
        return OMNI_EINVAL;
    router_t *r = calloc(1, sizeof *r);
    if (!r) return OMNI_ENOMEM;
    r->lim = *lim;
    if (lim->use_blocks) memcpy(r->blocks, lim->blocks, C);
    else r->blocks[ROUTER_CH_PHONE] = (1u << ROUTER_CH_CHAT) | (1u << ROUTER_CH_SNS);
    size_t A = lim->max_agents, Q = lim->max_queues, T = lim->max_tasks;
    r->amask = pow2_at_least((uint32_t)A * 2) - 1;
    r->tmask = pow2_at_least((uint32_t)T * 2) - 1;
    r->agents = calloc(A, sizeof *r->agents);
    r->tasks = calloc(T, sizeof *r->tasks);
    r->free_tasks = malloc(T * sizeof *r->free_tasks);
    r->queues = calloc(Q, sizeof *r->queues);
    r->ahash = malloc(((size_t)r->amask + 1) * sizeof(int32_t));
    r->thash = malloc(((size_t)r->tmask + 1) * sizeof(int32_t));
    r->tpos = malloc(T * sizeof(int32_t));
    r->opos = malloc(T * sizeof(int32_t));
    r->dpos = malloc((T + A) * sizeof(int32_t));
    r->ppos = malloc(A * Q * C * sizeof(int32_t));
    r->minstep = malloc(A * Q);
    r->rr = calloc(A * Q, sizeof(int64_t));
    r->aq = malloc(A * Q * sizeof(uint16_t));
    r->skills = calloc(lim->max_skills ? lim->max_skills : 1, sizeof *r->skills);
    r->teams = calloc(lim->max_teams ? lim->max_teams : 1, sizeof *r->teams);
    if (!r->agents || !r->tasks || !r->free_tasks || !r->queues || !r->ahash || !r->thash || !r->tpos ||
        !r->opos || !r->dpos || !r->ppos || !r->minstep || !r->rr || !r->aq || !r->skills || !r->teams) {
        router_destroy(&r);
        return OMNI_ENOMEM;
    }
    memset(r->ahash, 0xff, ((size_t)r->amask + 1) * sizeof(int32_t));
    memset(r->thash, 0xff, ((size_t)r->tmask + 1) * sizeof(int32_t));
    memset(r->tpos, 0xff, T * sizeof(int32_t));
    memset(r->opos, 0xff, T * sizeof(int32_t));
    memset(r->dpos, 0xff, (T + A) * sizeof(int32_t));
    memset(r->ppos, 0xff, A * Q * C * sizeof(int32_t));
    memset(r->minstep, NO_STEP, A * Q);
    /* Pop order low index first: deterministic slot reuse helps reproduce test failures. */
    for (uint32_t i = 0; i < T; i++) r->free_tasks[i] = (uint32_t)(T - 1 - i);
    r->n_free = (uint32_t)T;
    rheap_init(&r->deadlines, r->dpos);
    /* One entry per task (step, sticky, offer or overflow time) and per agent (wrap-up end). */
    if (rheap_reserve(&r->deadlines, (uint32_t)(T + A))) {
        router_destroy(&r);
        return OMNI_ENOMEM;
    }
    *out = r;
    return 0;
}

void router_destroy(router_t **rp)
{
    if (!rp || !*rp) return;
    router_t *r = *rp;
    if (r->queues)
        for (uint32_t q = 0; q < r->n_queues; q++) {
            queue_t *qu = &r->queues[q];
            for (int c = 0; c < C; c++)
                for (int s = 0; s < S; s++) {
                    rheap_free(&qu->tasks[c][s]);
                    rheap_free(&qu->pool[c][s]);
                }
            rheap_free(&qu->oldest);
        }
    rheap_free(&r->deadlines);
    free(r->agents); free(r->tasks); free(r->free_tasks); free(r->queues);
    free(r->ahash); free(r->thash); free(r->tpos); free(r->opos); free(r->dpos); free(r->ppos);
    free(r->minstep); free(r->rr); free(r->aq); free(r->skills); free(r->teams);
    free(r);
    *rp = NULL;
}

void router_set_sink(router_t *r, router_sink_fn fn, void *ctx)
{
    r->sink = fn;
    r->sink_ctx = ctx;
}

static int intern(char (*names)[ROUTER_NAME_MAX], uint32_t *n, uint32_t max, const char *name)
{
    if (!name || !*name) return OMNI_EINVAL;
    if (strlen(name) >= ROUTER_NAME_MAX) return OMNI_ETOOBIG;
    for (uint32_t i = 0; i < *n; i++)
        if (!strcmp(names[i], name)) return (int)i;
    if (*n >= max) return OMNI_EFULL;
    strcpy(names[*n], name);
    return (int)(*n)++;
}

int router_skill(router_t *r, const char *name)
{
    return r ? intern(r->skills, &r->n_skills, r->lim.max_skills, name) : OMNI_EINVAL;
}

int router_team(router_t *r, const char *name)
{
    return r ? intern(r->teams, &r->n_teams, r->lim.max_teams, name) : OMNI_EINVAL;
}

/* ---------- eligibility and pools ---------- */

static int agent_level(const agent_t *a, int skill)
{
    for (int i = 0; i < a->n_skills; i++)
        if (a->skills[i].skill == skill) return a->skills[i].level;
    return 0;
}

static int step_admits(const queue_t *q, const agent_t *a, int s)
{
    const router_step_t *st = &q->cfg.steps[s];
    if (st->any_team && (q->cfg.team < 0 || a->team == q->cfg.team)) return 1;
    for (int i = 0; i < q->cfg.n_req; i++) {
        int need = st->min_level ? st->min_level : q->cfg.req[i].level;
        if (agent_level(a, q->cfg.req[i].skill) < need) return 0;
    }
    return 1;
}

/* The first step whose pool admits the agent; pools are unions, so it stays eligible after. */
static uint8_t first_step(const queue_t *q, const agent_t *a)
{
    for (int s = 0; s < q->n_steps; s++)
        if (step_admits(q, a, s)) return (uint8_t)s;
    return NO_STEP;
}

static unsigned able_mask(const router_t *r, const agent_t *a)
{
    if (a->state != ROUTER_AVAILABLE) return 0;
    unsigned blocked = 0, m = 0;
    for (int c = 0; c < C; c++)
        if (a->load[c] > 0) blocked |= r->blocks[c];
    for (int c = 0; c < C; c++)
        if (a->cap[c] > 0 && a->load[c] < a->cap[c] && !(blocked & (1u << c))) m |= 1u << c;
    return m;
}

static void pool_key(const router_t *r, const agent_t *a, uint32_t ai, uint32_t q, int64_t *k1, int64_t *k2)
{
    switch (r->queues[q].cfg.strategy) {
    case ROUTER_LEAST_OCCUPANCY: {
        int64_t occ = 0;
        for (int c = 0; c < C; c++)
            if (a->cap[c] > 0) occ += (int64_t)a->load[c] * 1000000 / a->cap[c];
        *k1 = occ;
        *k2 = a->idle_since;
        break;
    }
    case ROUTER_ROUND_ROBIN:
        *k1 = r->rr[(size_t)ai * r->lim.max_queues + q];
        *k2 = 0;
        break;
    case ROUTER_FEWEST_ASSIGNED:
        *k1 = (int64_t)a->assigned;
        *k2 = a->idle_since;
        break;
    default:
        *k1 = a->idle_since;
        *k2 = 0;
    }
}

static inline uint32_t pref(const router_t *r, uint32_t a, uint32_t q, int c)
{
    return (uint32_t)(((size_t)a * r->lim.max_queues + q) * C + (size_t)c);
}

static inline uint32_t pref_agent(const router_t *r, uint32_t ref)
{
    return ref / (r->lim.max_queues * C);
}

/* Re-keys every pool membership of agent a after any change of state, load or counters. */
static void sync_agent(router_t *r, uint32_t ai)
{
    agent_t *a = &r->agents[ai];
    unsigned able = able_mask(r, a);
    size_t Q = r->lim.max_queues;
    for (uint32_t i = 0; i < a->n_q; i++) {
        uint32_t q = r->aq[ai * Q + i];
        queue_t *qu = &r->queues[q];
        uint8_t ms = r->minstep[ai * Q + q];
        int64_t k1 = 0, k2 = 0;
        int keyed = 0;
        for (int c = 0; c < C; c++) {
            if (!(qu->cfg.channels & (1u << c))) continue;
            rheap_t *h = &qu->pool[c][ms];
            uint32_t ref = pref(r, ai, q, c);
            if (able & (1u << c)) {
                if (!keyed) { pool_key(r, a, ai, q, &k1, &k2); keyed = 1; }
                if (rheap_has(h, ref)) rheap_update(h, ref, k1, k2);
                else rheap_push(h, k1, k2, ref);
            } else if (rheap_has(h, ref)) {
                rheap_remove(h, ref);
            }
        }
    }
}

/* Registers (a, q) eligibility: reserves pool room so sync_agent never allocates. */
static int link_agent_queue(router_t *r, uint32_t ai, uint32_t q)
{
    queue_t *qu = &r->queues[q];
    agent_t *a = &r->agents[ai];
    size_t Q = r->lim.max_queues;
    uint8_t ms = first_step(qu, a);
    if (ms == NO_STEP) return 0;
    for (int c = 0; c < C; c++)
        if (qu->cfg.channels & (1u << c))
            if (rheap_reserve(&qu->pool[c][ms], qu->pool_members[c][ms] + 1)) return OMNI_ENOMEM;
    for (int c = 0; c < C; c++)
        if (qu->cfg.channels & (1u << c)) qu->pool_members[c][ms]++;
    r->minstep[ai * Q + q] = ms;
    r->aq[ai * Q + a->n_q++] = (uint16_t)q;
    if (a->state != ROUTER_OFFLINE) qu->staffed++;
    return 0;
}

/* ---------- config ---------- */

int router_queue_add(router_t *r, const router_queue_cfg_t *cfg, int *qid)
{
    if (!r || !cfg || !cfg->name || !*cfg->name || cfg->n_req < 0 || cfg->n_req > ROUTER_MAX_REQ ||
        cfg->n_steps < 0 || cfg->n_steps > S || (unsigned)cfg->strategy > ROUTER_FEWEST_ASSIGNED ||
        cfg->sticky_ms < 0 || cfg->offer_timeout_ms < 0 || (cfg->channels >> C) || cfg->wrap_up_ms < 0 ||
        cfg->wrap_up_ms > MAX_MS)
        return OMNI_EINVAL;
    for (int c = 0; c < C; c++)
        if (cfg->sla_ch_ms[c] < 0) return OMNI_EINVAL;
    if (strlen(cfg->name) >= ROUTER_NAME_MAX) return OMNI_ETOOBIG;
    if (router_queue_find(r, cfg->name) >= 0) return OMNI_EINVAL;
    if (r->n_queues >= r->lim.max_queues) return OMNI_EFULL;
    for (int i = 0; i < cfg->n_req; i++)
        if (cfg->req[i].skill < 0 || (uint32_t)cfg->req[i].skill >= r->n_skills || cfg->req[i].level < 1 ||
            cfg->req[i].level > 5)
            return OMNI_EINVAL;
    if (cfg->team >= 0 && (uint32_t)cfg->team >= r->n_teams) return OMNI_EINVAL;
    int n_steps = cfg->n_steps ? cfg->n_steps : 1;
    if (cfg->n_steps && cfg->steps[0].after_ms != 0) return OMNI_EINVAL;
    for (int s = 0; s < n_steps; s++) {
        if (s > 0 && cfg->steps[s].after_ms <= cfg->steps[s - 1].after_ms) return OMNI_EINVAL;
        if (cfg->steps[s].min_level < 0 || cfg->steps[s].min_level > 5) return OMNI_EINVAL;
    }
    uint32_t q = r->n_queues;
    queue_t *qu = &r->queues[q];
    memset(qu, 0, sizeof *qu);
    strcpy(qu->name, cfg->name);
    qu->cfg = *cfg;
    qu->cfg.name = qu->name;
    if (!cfg->n_steps) memset(qu->cfg.steps, 0, sizeof qu->cfg.steps);
    if (!qu->cfg.channels) qu->cfg.channels = (1u << C) - 1;
    qu->n_steps = n_steps;
    qu->ovf = -1;
    for (int c = 0; c < C; c++)
        for (int s = 0; s < S; s++) {
            rheap_init(&qu->tasks[c][s], r->tpos);
            rheap_init(&qu->pool[c][s], r->ppos);
        }
    rheap_init(&qu->oldest, r->opos);
    r->n_queues++;
    for (uint32_t a = 0; a < r->n_agents; a++) {
        int rc = link_agent_queue(r, a, q);
        if (rc) return rc; /* ENOMEM at config time: the router is unusable, caller should destroy */
        sync_agent(r, a);
    }
    if (qid) *qid = (int)q;
    return 0;
}

int router_queue_find(const router_t *r, const char *name)
{
    if (!r || !name) return OMNI_EINVAL;
    for (uint32_t q = 0; q < r->n_queues; q++)
        if (!strcmp(r->queues[q].name, name)) return (int)q;
    return OMNI_ENOTFOUND;
}

const char *router_queue_name(const router_t *r, int queue)
{
    if (!r || queue < 0 || (uint32_t)queue >= r->n_queues) return NULL;
    return r->queues[queue].name;
}

uint32_t router_queue_count(const router_t *r)
{
    return r ? r->n_queues : 0;
}

static int32_t find_agent(const router_t *r, const char *id)
{
    if (!id) return -1;
    return hfind(r->ahash, r->amask, r->agents, sizeof(agent_t), id);
}

static int32_t find_task(const router_t *r, const char *id)
{
    if (!id) return -1;
    return hfind(r->thash, r->tmask, r->tasks, sizeof(task_t), id);
}

static int agent_cfg_ok(const router_t *r, const router_agent_cfg_t *cfg)
{
    if (!cfg || !cfg->id || !*cfg->id || cfg->n_skills < 0 || cfg->n_skills > ROUTER_MAX_AGENT_SKILLS)
        return OMNI_EINVAL;
    if (strlen(cfg->id) >= ROUTER_ID_MAX) return OMNI_ETOOBIG;
    if (cfg->team >= 0 && (uint32_t)cfg->team >= r->n_teams) return OMNI_EINVAL;
    for (int i = 0; i < cfg->n_skills; i++)
        if (cfg->skills[i].skill < 0 || (uint32_t)cfg->skills[i].skill >= r->n_skills ||
            cfg->skills[i].level < 1 || cfg->skills[i].level > 5)
            return OMNI_EINVAL;
    return 0;
}

static void agent_apply_cfg(agent_t *a, const router_agent_cfg_t *cfg)
{
    a->team = cfg->team;
    a->n_skills = cfg->n_skills;
    memset(a->skills, 0, sizeof a->skills);
    memcpy(a->skills, cfg->skills, (size_t)cfg->n_skills * sizeof a->skills[0]);
    for (int c = 0; c < C; c++)
        a->cap[c] = cfg->capacity[c] == 0 ? default_cap(c) : cfg->capacity[c] < 0 ? 0 : cfg->capacity[c];
}

int router_agent_add(router_t *r, const router_agent_cfg_t *cfg)
{
    if (!r) return OMNI_EINVAL;
    int rc = agent_cfg_ok(r, cfg);
    if (rc) return rc;
    if (find_agent(r, cfg->id) >= 0) return OMNI_EINVAL;
    if (r->n_agents >= r->lim.max_agents) return OMNI_EFULL;
    uint32_t ai = r->n_agents;
    agent_t *a = &r->agents[ai];
    memset(a, 0, sizeof *a);
    strcpy(a->id, cfg->id);
    a->state = ROUTER_OFFLINE;
    agent_apply_cfg(a, cfg);
    a->held = a->parked = -1;
    for (uint32_t q = 0; q < r->n_queues; q++)
        if (link_agent_queue(r, ai, q)) return OMNI_ENOMEM;
    r->n_agents++;
    hinsert(r->ahash, r->amask, a->id, (int32_t)ai);
    return 0;
}

int router_agent_update(router_t *r, const router_agent_cfg_t *cfg)
{
    if (!r) return OMNI_EINVAL;
    int rc = agent_cfg_ok(r, cfg);
    if (rc) return rc;
    int32_t ai = find_agent(r, cfg->id);
    if (ai < 0) return OMNI_ENOTFOUND;
    agent_t *a = &r->agents[ai];
    if (a->state != ROUTER_OFFLINE) return OMNI_ESTATE;
    size_t Q = r->lim.max_queues;
    agent_t next = *a;
    agent_apply_cfg(&next, cfg);
    /* Reserve first: a failure leaves the agent as it was. An offline agent is in no pool, so
     * only the membership counts (what the pools are reserved for) move. */
    for (uint32_t q = 0; q < r->n_queues; q++) {
        queue_t *qu = &r->queues[q];
        uint8_t ms = first_step(qu, &next);
        if (ms == NO_STEP || ms == r->minstep[ai * Q + q]) continue;
        for (int c = 0; c < C; c++)
            if (qu->cfg.channels & (1u << c))
                if (rheap_reserve(&qu->pool[c][ms], qu->pool_members[c][ms] + 1)) return OMNI_ENOMEM;
    }
    a->n_q = 0;
    for (uint32_t q = 0; q < r->n_queues; q++) {
        queue_t *qu = &r->queues[q];
        uint8_t old = r->minstep[ai * Q + q], ms = first_step(qu, &next);
        for (int c = 0; c < C; c++) {
            if (!(qu->cfg.channels & (1u << c))) continue;
            if (old != NO_STEP) qu->pool_members[c][old]--;
            if (ms != NO_STEP) qu->pool_members[c][ms]++;
        }
        r->minstep[ai * Q + q] = ms;
        if (ms != NO_STEP) r->aq[ai * Q + a->n_q++] = (uint16_t)q;
    }
    a->team = next.team;
    a->n_skills = next.n_skills;
    memcpy(a->skills, next.skills, sizeof a->skills);
    memcpy(a->cap, next.cap, sizeof a->cap);
    /* A customer's preference was accepted while the agent could serve the queue; it is kept
     * (there is no clock here to re-route with), as if a supervisor had chosen the agent. */
    for (int32_t ti = a->parked; ti >= 0; ti = r->tasks[ti].next) {
        task_t *t = &r->tasks[ti];
        if (t->pin == PIN_STICKY && r->minstep[ai * Q + t->queue] == NO_STEP) t->pin = PIN_FORCED;
    }
    return 0;
}

int router_agent_exists(const router_t *r, const char *agent_id)
{
    return r && find_agent(r, agent_id) >= 0;
}

uint32_t router_agent_count(const router_t *r)
{
    return r ? r->n_agents : 0;
}

const char *router_agent_id(const router_t *r, uint32_t i)
{
    return r && i < r->n_agents ? r->agents[i].id : NULL;
}

/* ---------- task lists, decisions ---------- */

static void list_push(router_t *r, int32_t *head, uint32_t ti)
{
    task_t *t = &r->tasks[ti];
    t->prev = -1;
    t->next = *head;
    if (*head >= 0) r->tasks[*head].prev = (int32_t)ti;
    *head = (int32_t)ti;
}

static void list_del(router_t *r, int32_t *head, uint32_t ti)
{
    task_t *t = &r->tasks[ti];
    if (t->prev >= 0) r->tasks[t->prev].next = t->next;
    else *head = t->next;
    if (t->next >= 0) r->tasks[t->next].prev = t->prev;
    t->prev = t->next = -1;
}

/* ti/ai < 0: no task / no agent; their strings are then "" so a sink may copy them blindly. */
static void emit(router_t *r, router_dkind_t kind, int64_t ti, int64_t ai, router_strategy_t strat,
                 uint32_t pool, int64_t now)
{
    if (!r->sink) return;
    router_decision_t d = {
        .kind = kind, .task_id = "", .agent_id = "", .queue = -1, .channel = -1, .strategy = strat,
        .pool_size = pool, .from_queue = -1,
    };
    if (ti >= 0) {
        const task_t *t = &r->tasks[ti];
        d.task_id = t->id;
        d.queue = t->queue;
        d.channel = t->ch;
        d.step = t->step;
        d.score = now - t->key;
        d.offer_id = ((uint64_t)t->offer_gen << 32) | (uint64_t)ti;
        d.enqueued_at = t->enq_at;
    }
    if (ai >= 0) {
        d.agent_id = r->agents[ai].id;
        d.state = (router_state_t)r->agents[ai].state;
    }
    r->sink(r->sink_ctx, &d);
}

static void emit_state(router_t *r, uint32_t ai, int64_t now)
{
    emit(r, ROUTER_D_STATE, -1, ai, ROUTER_LONGEST_IDLE, 0, now);
}

static void emit_overflow(router_t *r, uint32_t ti, int from, int64_t now)
{
    if (!r->sink) return;
    const task_t *t = &r->tasks[ti];
    router_decision_t d = {
        .kind = ROUTER_D_OVERFLOW, .task_id = t->id, .agent_id = "", .queue = t->queue, .channel = t->ch,
        .strategy = r->queues[t->queue].cfg.strategy, .step = t->step, .score = now - t->key,
        .from_queue = from, .enqueued_at = t->enq_at,
    };
    r->sink(r->sink_ctx, &d);
}

/* A task counts in the reach of its queue and of every queue down its overflow chain. */
static void count_task(router_t *r, int q, int ch, int d)
{
    r->queues[q].live[ch] += (uint32_t)d;
    for (int x = q; x >= 0; x = r->queues[x].ovf) {
        r->queues[x].reach[ch] += (uint32_t)d;
        r->queues[x].reach_total += (uint32_t)d;
    }
}

/* Room for one more task of channel ch in q and everywhere it may overflow to. Walks the chain:
 * O(chain length), at most the number of queues, in practice one or two. */
static int reserve_chain(router_t *r, int q, int ch)
{
    for (int x = q; x >= 0; x = r->queues[x].ovf) {
        queue_t *qu = &r->queues[x];
        for (int s = 0; s < qu->n_steps; s++)
            if (rheap_reserve(&qu->tasks[ch][s], qu->reach[ch] + 1)) return OMNI_ENOMEM;
        if (rheap_reserve(&qu->oldest, qu->reach_total + 1)) return OMNI_ENOMEM;
    }
    return 0;
}

static int64_t ovf_time(const router_t *r, const task_t *t)
{
    const queue_t *q = &r->queues[t->queue];
    return q->ovf >= 0 && q->ovf_after > 0 ? t->q_since + q->ovf_after : INT64_MAX;
}

/* The next time a waiting task must be looked at again: wider step, end of an exclusion, overflow. */
static int64_t wait_deadline(const router_t *r, const task_t *t)
{
    const queue_t *q = &r->queues[t->queue];
    int64_t dl = ovf_time(r, t);
    if (t->step + 1 < q->n_steps && t->enq_at + q->cfg.steps[t->step + 1].after_ms < dl)
        dl = t->enq_at + q->cfg.steps[t->step + 1].after_ms;
    if (t->excluded >= 0 && t->excluded_until < dl) dl = t->excluded_until;
    return dl;
}

/* Moves a task that is in no queue structure to queue `to`; the key follows the new queue's
 * priority, the enqueue time and first-insertion sequence stay (so does its place by age). */
static void move_queue(router_t *r, uint32_t ti, int to)
{
    task_t *t = &r->tasks[ti];
    count_task(r, t->queue, t->ch, -1);
    count_task(r, to, t->ch, 1);
    t->key += r->queues[t->queue].cfg.priority_ms - r->queues[to].cfg.priority_ms;
    t->queue = (int16_t)to;
}

static int step_for_wait(const queue_t *q, int64_t wait)
{
    int s = 0;
    while (s + 1 < q->n_steps && wait >= q->cfg.steps[s + 1].after_ms) s++;
    return s;
}

/* Removes a task from every waiting structure (queue heap, oldest, deadline, parked list). */
static void detach_waiting(router_t *r, uint32_t ti)
{
    task_t *t = &r->tasks[ti];
    queue_t *q = &r->queues[t->queue];
    if (r->tpos[ti] >= 0) rheap_remove(&q->tasks[(int)t->ch][(int)t->step], ti);
    if (r->opos[ti] >= 0) rheap_remove(&q->oldest, ti);
    if (r->dpos[ti] >= 0) rheap_remove(&r->deadlines, ti);
    if (t->state == T_STICKY) list_del(r, &r->agents[t->agent].parked, ti);
}

static uint32_t pool_size(const router_t *r, const queue_t *q, int ch, int step)
{
    (void)r;
    uint32_t n = 0;
    for (int s = 0; s <= step; s++) n += q->pool[ch][s].n;
    return n;
}

static void offer(router_t *r, uint32_t ti, uint32_t ai, router_strategy_t strat, int64_t now)
{
    task_t *t = &r->tasks[ti];
    queue_t *q = &r->queues[t->queue];
    agent_t *a = &r->agents[ai];
    uint32_t pool = pool_size(r, q, t->ch, t->step);
    detach_waiting(r, ti);
    t->state = T_OFFERED;
    t->agent = (int32_t)ai;
    t->excluded = -1;
    if (strat != ROUTER_STICKY) t->pin = PIN_NONE;
    t->offer_gen++;
    a->load[(int)t->ch]++;
    a->idle_since = now;
    if (q->cfg.strategy == ROUTER_ROUND_ROBIN) r->rr[(size_t)ai * r->lim.max_queues + t->queue] = ++r->rr_seq;
    list_push(r, &a->held, ti);
    if (q->cfg.offer_timeout_ms > 0) rheap_push(&r->deadlines, now + q->cfg.offer_timeout_ms, t->seq, ti);
    q->offered++;
    sync_agent(r, ai);
    emit(r, ROUTER_D_OFFER, ti, ai, strat, pool, now);
}

static inline int excluded_for(const task_t *t, uint32_t ai, int64_t now)
{
    return t->excluded == (int32_t)ai && now < t->excluded_until;
}

/* The best able agent for a task not in any structure; offers and returns 1, else 0. */
static int route_task(router_t *r, uint32_t ti, int64_t now)
{
    task_t *t = &r->tasks[ti];
    queue_t *q = &r->queues[t->queue];
    const rheap_ent_t *best = NULL;
    for (int s = 0; s <= t->step; s++) {
        const rheap_t *h = &q->pool[(int)t->ch][s];
        const rheap_ent_t *e = rheap_top(h);
        if (e && excluded_for(t, pref_agent(r, e->ref), now)) {
            /* The second best of a binary heap is one of the root's children. */
            e = NULL;
            if (h->n > 1) e = &h->e[1];
            if (h->n > 2 && rheap_less(&h->e[2], e)) e = &h->e[2];
        }
        if (e && (!best || rheap_less(e, best))) best = e;
    }
    if (!best) return 0;
    offer(r, ti, pref_agent(r, best->ref), q->cfg.strategy, now);
    return 1;
}

/* Puts a task (in no structure) into its queue: first down the overflow chain as far as its wait
 * says, then step from its original wait, offer if possible. */
static void enter_waiting(router_t *r, uint32_t ti, int64_t now)
{
    task_t *t = &r->tasks[ti];
    t->state = T_WAITING;
    t->agent = -1;
    t->pin = PIN_NONE;
    if (t->excluded >= 0 && t->excluded_until <= now) t->excluded = -1;
    while (ovf_time(r, t) <= now) {
        int from = t->queue;
        move_queue(r, ti, r->queues[from].ovf);
        t->step = (int8_t)step_for_wait(&r->queues[t->queue], now - t->enq_at);
        emit_overflow(r, ti, from, now);
    }
    queue_t *q = &r->queues[t->queue];
    t->step = (int8_t)step_for_wait(q, now - t->enq_at);
    if (route_task(r, ti, now)) return;
    rheap_push(&q->tasks[(int)t->ch][(int)t->step], t->key, t->seq, ti);
    rheap_push(&q->oldest, t->enq_at, t->seq, ti);
    int64_t dl = wait_deadline(r, t);
    if (dl != INT64_MAX) rheap_push(&r->deadlines, dl, t->seq, ti);
}

/* Parks a task (in no structure) on one agent until `until`: offered when that agent has room,
 * ahead of its backlog; counted as waiting in its queue meanwhile. The caller sets t->pin. */
static void park(router_t *r, uint32_t ti, uint32_t ai, int64_t until)
{
    task_t *t = &r->tasks[ti];
    t->state = T_STICKY;
    t->agent = (int32_t)ai;
    list_push(r, &r->agents[ai].parked, ti);
    rheap_push(&r->queues[t->queue].oldest, t->enq_at, t->seq, ti);
    rheap_push(&r->deadlines, until, t->seq, ti);
}

/* Best entry of heap h below slot i not excluded for agent ai, or `best` if that is better.
 * Only excluded nodes are descended into, so the cost is O(1 + excluded tasks met). */
static const rheap_ent_t *best_for_agent(const router_t *r, const rheap_t *h, uint32_t i, uint32_t ai,
                                         int64_t now, const rheap_ent_t *best)
{
    if (i >= h->n) return best;
    const rheap_ent_t *e = &h->e[i];
    if (best && !rheap_less(e, best)) return best;   /* the whole subtree orders after best */
    if (!excluded_for(&r->tasks[e->ref], ai, now)) return e;
    best = best_for_agent(r, h, 2 * i + 1, ai, now, best);
    return best_for_agent(r, h, 2 * i + 2, ai, now, best);
}

/* An agent with free capacity takes work: parked sticky tasks first, then the lowest key
 * among the heads of every (queue, channel, step) heap it is eligible for. */
static void agent_pull(router_t *r, uint32_t ai, int64_t now)
{
    agent_t *a = &r->agents[ai];
    size_t Q = r->lim.max_queues;
    for (;;) {
        unsigned able = able_mask(r, a);
        if (!able) return;
        int32_t pick = -1;
        for (int32_t ti = a->parked; ti >= 0; ti = r->tasks[ti].next) {
            task_t *t = &r->tasks[ti];
            if ((able & (1u << t->ch)) &&
                (pick < 0 || t->key < r->tasks[pick].key ||
                 (t->key == r->tasks[pick].key && t->seq < r->tasks[pick].seq)))
                pick = ti;
        }
        if (pick >= 0) {
            offer(r, (uint32_t)pick, ai, ROUTER_STICKY, now);
            continue;
        }
        const rheap_ent_t *best = NULL;
        for (uint32_t i = 0; i < a->n_q; i++) {
            uint32_t q = r->aq[ai * Q + i];
            queue_t *qu = &r->queues[q];
            unsigned chans = able & qu->cfg.channels;
            for (int c = 0; c < C; c++) {
                if (!(chans & (1u << c))) continue;
                for (int s = r->minstep[ai * Q + q]; s < qu->n_steps; s++) {
                    const rheap_t *h = &qu->tasks[c][s];
                    if (h->n) best = best_for_agent(r, h, 0, ai, now, best);
                }
            }
        }
        if (!best) return;
        uint32_t ti = best->ref;
        offer(r, ti, ai, r->queues[r->tasks[ti].queue].cfg.strategy, now);
    }
}

static void free_task(router_t *r, uint32_t ti)
{
    task_t *t = &r->tasks[ti];
    hdelete(r->thash, r->tmask, r->tasks, sizeof(task_t), (int32_t)ti);
    count_task(r, t->queue, t->ch, -1);
    t->state = T_FREE;
    t->id[0] = 0;
    r->free_tasks[r->n_free++] = ti;
}

/* Offered or assigned task leaves its agent: the slot is freed. */
static void detach_agent(router_t *r, uint32_t ti)
{
    task_t *t = &r->tasks[ti];
    agent_t *a = &r->agents[t->agent];
    list_del(r, &a->held, ti);
    a->load[(int)t->ch]--;
    if (r->dpos[ti] >= 0) rheap_remove(&r->deadlines, ti);
}

/* ---------- agent states set by the router: wrap-up, auto-pause ---------- */

static inline uint32_t agent_ref(const router_t *r, uint32_t ai)
{
    return r->lim.max_tasks + ai;
}

static void cancel_wrap(router_t *r, uint32_t ai)
{
    uint32_t ref = agent_ref(r, ai);
    if (r->dpos[ref] >= 0) rheap_remove(&r->deadlines, ref);
}

/* After a release of a task of a wrap-up queue. Only an available agent starts wrap-up: an
 * agent who chose AWAY stays away, and a WRAP_UP set by the caller has no end to extend. */
static void start_wrap(router_t *r, uint32_t ai, int64_t until, int64_t now)
{
    agent_t *a = &r->agents[ai];
    uint32_t ref = agent_ref(r, ai);
    if (a->state == ROUTER_AVAILABLE) {
        a->state = ROUTER_WRAP_UP;
        rheap_push(&r->deadlines, until, 0, ref);
        sync_agent(r, ai);
        emit_state(r, ai, now);
    } else if (r->dpos[ref] >= 0 && r->deadlines.e[r->dpos[ref]].k1 < until) {
        rheap_update(&r->deadlines, ref, until, 0);
    }
}

static void end_wrap(router_t *r, uint32_t ai, int64_t now)
{
    agent_t *a = &r->agents[ai];
    a->state = ROUTER_AVAILABLE;
    /* Idle time counts from the end of after-call work, as if the agent had set itself available. */
    a->idle_since = now;
    sync_agent(r, ai);
    emit_state(r, ai, now);
    agent_pull(r, ai, now);
}

/* One more timed-out offer in a row; at max_missed the agent is presumed gone and paused. */
static void count_miss(router_t *r, uint32_t ai, int64_t now)
{
    agent_t *a = &r->agents[ai];
    if (a->missed < UINT32_MAX) a->missed++;
    if (!r->lim.max_missed || a->missed < r->lim.max_missed) return;
    if (a->state != ROUTER_AVAILABLE && a->state != ROUTER_WRAP_UP) return;
    cancel_wrap(r, ai);
    a->state = ROUTER_AWAY;
    sync_agent(r, ai);
    emit_state(r, ai, now);
}

/* ---------- events ---------- */

int router_enqueue(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms,
                   const char *preferred_agent, int64_t now)
{
    return router_enqueue_at(r, task_id, queue, channel, priority_ms, preferred_agent, now, now);
}

static inline int task_args_ok(const router_t *r, const char *task_id, int queue, int channel, int64_t enqueued_at,
                        int64_t now)
{
    if (!r || !task_id || !*task_id || queue < 0 || (uint32_t)queue >= r->n_queues || channel < 0 ||
        channel >= C || enqueued_at > now)
        return OMNI_EINVAL;
    if (strlen(task_id) >= ROUTER_ID_MAX) return OMNI_ETOOBIG;
    if (!(r->queues[queue].cfg.channels & (1u << channel))) return OMNI_EINVAL;
    if (find_task(r, task_id) >= 0) return OMNI_EINVAL;
    return 0;
}

/* A fresh task in queue q, in no structure yet. The caller checked n_free and reserved. */
static inline uint32_t new_task(router_t *r, const char *task_id, int q, int ch, int64_t prio, int64_t enq_at)
{
    uint32_t ti = r->free_tasks[--r->n_free];
    task_t *t = &r->tasks[ti];
    uint32_t gen = t->offer_gen;
    memset(t, 0, sizeof *t);
    t->offer_gen = gen;
    strcpy(t->id, task_id);
    t->queue = (int16_t)q;
    t->ch = (int8_t)ch;
    t->agent = t->excluded = -1;
    t->prev = t->next = -1;
    t->enq_at = t->q_since = enq_at;
    t->key = enq_at - (r->queues[q].cfg.priority_ms + prio);
    t->seq = ++r->seq;
    hinsert(r->thash, r->tmask, t->id, (int32_t)ti);
    count_task(r, q, ch, 1);
    return ti;
}

static int queue_full(const queue_t *q)
{
    return q->cfg.max_len && q->oldest.n >= q->cfg.max_len;
}

static int enqueue(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms,
                   const char *preferred_agent, int64_t enq_at, int64_t now, int admission)
{
    int rc = task_args_ok(r, task_id, queue, channel, enq_at, now);
    if (rc) return rc;
    int32_t pa = -1;
    if (preferred_agent && *preferred_agent) {
        pa = find_agent(r, preferred_agent);
        if (pa < 0) return OMNI_ENOTFOUND;
    }
    /* A full queue hands new work down its overflow chain (acyclic, so this ends). */
    int q = queue;
    while (admission && queue_full(&r->queues[q]))
        if ((q = r->queues[q].ovf) < 0) return OMNI_EFULL;
    if (!r->n_free) return OMNI_EFULL;
    /* Reserve now so that moving this task between steps or queues later can never fail. */
    if (reserve_chain(r, q, channel)) return OMNI_ENOMEM;

    uint32_t ti = new_task(r, task_id, q, channel, priority_ms, enq_at);
    task_t *t = &r->tasks[ti];
    const queue_t *qu = &r->queues[q];
    if (q != queue) {
        t->step = (int8_t)step_for_wait(qu, now - enq_at);
        emit_overflow(r, ti, queue, now);
    }
    if (pa >= 0 && qu->cfg.sticky_ms > 0 && r->minstep[(size_t)pa * r->lim.max_queues + q] != NO_STEP &&
        enq_at + qu->cfg.sticky_ms > now) {
        t->step = 0;
        t->pin = PIN_STICKY;
        if (able_mask(r, &r->agents[pa]) & (1u << channel)) offer(r, ti, (uint32_t)pa, ROUTER_STICKY, now);
        else park(r, ti, (uint32_t)pa, enq_at + qu->cfg.sticky_ms);
        return 0;
    }
    enter_waiting(r, ti, now);
    return 0;
}

int router_enqueue_at(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms,
                      const char *preferred_agent, int64_t enq_at, int64_t now)
{
    return enqueue(r, task_id, queue, channel, priority_ms, preferred_agent, enq_at, now, 1);
}

int router_readmit_at(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms, int64_t enq_at,
                      int64_t now)
{
    return enqueue(r, task_id, queue, channel, priority_ms, NULL, enq_at, now, 0);
}

int router_attach(router_t *r, const char *task_id, int queue, int channel, const char *agent_id,
                  int64_t enq_at, int64_t now)
{
    int rc = task_args_ok(r, task_id, queue, channel, enq_at, now);
    if (rc) return rc;
    int32_t ai = find_agent(r, agent_id);
    if (ai < 0) return OMNI_ENOTFOUND;
    agent_t *a = &r->agents[ai];
    if (a->state == ROUTER_OFFLINE) return OMNI_ESTATE;
    /* Capacity only: the agent really holds these conversations, so cross-channel blocks (which
     * only gate new work) do not refuse one; they do keep new work away while it is held. */
    if (a->load[channel] >= a->cap[channel] || !r->n_free) return OMNI_EFULL;
    /* It may be requeued (agent goes offline) or transferred into its queue's heaps later. */
    if (reserve_chain(r, queue, channel)) return OMNI_ENOMEM;
    uint32_t ti = new_task(r, task_id, queue, channel, 0, enq_at);
    task_t *t = &r->tasks[ti];
    t->state = T_ASSIGNED;
    t->agent = ai;
    t->pin = PIN_FORCED;
    t->attached = 1;
    t->assigned_at = now;
    t->step = (int8_t)step_for_wait(&r->queues[queue], now - enq_at);
    list_push(r, &a->held, ti);
    a->load[channel]++;
    a->assigned++;
    sync_agent(r, (uint32_t)ai);
    return 0;
}

int router_transfer(router_t *r, const char *task_id, int queue, const char *to_agent, int64_t hold_ms,
                    int64_t now)
{
    if (!r || hold_ms < 0 || hold_ms > MAX_MS) return OMNI_EINVAL;
    int32_t ti = find_task(r, task_id);
    if (ti < 0) return OMNI_ENOTFOUND;
    task_t *t = &r->tasks[ti];
    if (queue < -1 || queue >= (int)r->n_queues) return OMNI_ENOTFOUND;
    int to_q = queue < 0 ? t->queue : queue;
    int32_t to = -1;
    if (to_agent && *to_agent && (to = find_agent(r, to_agent)) < 0) return OMNI_ENOTFOUND;
    if (t->state != T_ASSIGNED) return OMNI_ESTATE;
    if (to == t->agent) return OMNI_EINVAL;
    if (!(r->queues[to_q].cfg.channels & (1u << t->ch))) return OMNI_EINVAL;
    if (reserve_chain(r, to_q, t->ch)) return OMNI_ENOMEM;

    uint32_t holder = (uint32_t)t->agent;
    const queue_t *q = &r->queues[to_q];
    detach_agent(r, (uint32_t)ti);
    r->agents[holder].idle_since = now;
    sync_agent(r, holder);
    if (to_q != t->queue) move_queue(r, (uint32_t)ti, to_q);
    /* The new queue's overflow clock starts now: a supervisor's choice of queue is not undone at
     * once because the customer has waited long. Ordering and steps keep the original wait. */
    t->q_since = now;
    t->attached = 0;
    /* Not straight back to the agent who handed it on (bounded, like after a reject). */
    t->excluded = (int32_t)holder;
    t->excluded_until = now + (q->cfg.offer_timeout_ms > REOFFER_MS ? q->cfg.offer_timeout_ms : REOFFER_MS);
    if (to >= 0) {
        t->pin = PIN_FORCED;
        t->step = (int8_t)step_for_wait(q, now - t->enq_at);
        if (able_mask(r, &r->agents[to]) & (1u << t->ch)) offer(r, (uint32_t)ti, (uint32_t)to, ROUTER_STICKY, now);
        else if (hold_ms > 0) park(r, (uint32_t)ti, (uint32_t)to, now + hold_ms);
        else enter_waiting(r, (uint32_t)ti, now);
    } else {
        enter_waiting(r, (uint32_t)ti, now);
    }
    agent_pull(r, holder, now);
    return 0;
}

int router_queue_set_overflow(router_t *r, int queue, int to, int64_t after_ms)
{
    if (!r || queue < 0 || (uint32_t)queue >= r->n_queues || to < -1 || to >= (int)r->n_queues || to == queue ||
        after_ms < 0 || after_ms > MAX_MS)
        return OMNI_EINVAL;
    queue_t *qu = &r->queues[queue];
    if (to >= 0) {
        /* Every task of `queue` must be able to live in `to`, so a move can never be refused. */
        if (qu->cfg.channels & ~r->queues[to].cfg.channels) return OMNI_EINVAL;
        for (int x = to; x >= 0; x = r->queues[x].ovf)
            if (x == queue) return OMNI_EINVAL;
    }
    int32_t old = qu->ovf;
    int64_t old_after = qu->ovf_after;
    qu->ovf = to;
    qu->ovf_after = to >= 0 ? after_ms : 0;
    /* Reaches follow the new chains; the heaps are reserved to them before anything can move. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t x = 0; x < r->n_queues; x++) {
            memset(r->queues[x].reach, 0, sizeof r->queues[x].reach);
            r->queues[x].reach_total = 0;
        }
        for (uint32_t y = 0; y < r->n_queues; y++)
            for (int x = (int)y; x >= 0; x = r->queues[x].ovf)
                for (int c = 0; c < C; c++) {
                    r->queues[x].reach[c] += r->queues[y].live[c];
                    r->queues[x].reach_total += r->queues[y].live[c];
                }
        if (pass) return OMNI_ENOMEM;
        int rc = 0;
        for (uint32_t x = 0; x < r->n_queues && !rc; x++) {
            queue_t *xq = &r->queues[x];
            for (int c = 0; c < C && !rc; c++)
                for (int s = 0; s < xq->n_steps && !rc; s++)
                    if (xq->cfg.channels & (1u << c)) rc = rheap_reserve(&xq->tasks[c][s], xq->reach[c]);
            if (!rc) rc = rheap_reserve(&xq->oldest, xq->reach_total);
        }
        if (!rc) break;
        qu->ovf = old;   /* undo, and recount for the old chains in the second pass */
        qu->ovf_after = old_after;
    }
    /* Waiting tasks get their deadline under the new rule (moves happen in router_advance). */
    for (uint32_t i = 0; i < qu->oldest.n; i++) {
        uint32_t ti = qu->oldest.e[i].ref;
        task_t *t = &r->tasks[ti];
        if (t->state != T_WAITING) continue;
        if (r->dpos[ti] >= 0) rheap_remove(&r->deadlines, ti);
        int64_t dl = wait_deadline(r, t);
        if (dl != INT64_MAX) rheap_push(&r->deadlines, dl, t->seq, ti);
    }
    return 0;
}

int router_agent_set_state(router_t *r, const char *agent_id, router_state_t st, int64_t now)
{
    if (!r || (unsigned)st > ROUTER_WRAP_UP) return OMNI_EINVAL;
    int32_t ai = find_agent(r, agent_id);
    if (ai < 0) return OMNI_ENOTFOUND;
    agent_t *a = &r->agents[ai];
    a->missed = 0;   /* the agent (or a supervisor) acted: it is not gone */
    if (a->state == st) return 0;
    /* The caller's state wins over a wrap-up the router started. */
    cancel_wrap(r, (uint32_t)ai);
    size_t Q = r->lim.max_queues;
    if ((a->state == ROUTER_OFFLINE) != (st == ROUTER_OFFLINE))
        for (uint32_t i = 0; i < a->n_q; i++) {
            queue_t *qu = &r->queues[r->aq[ai * Q + i]];
            if (st == ROUTER_OFFLINE) qu->staffed--;
            else qu->staffed++;
        }
    a->state = (uint8_t)st;
    if (st == ROUTER_AVAILABLE) a->idle_since = now;
    sync_agent(r, (uint32_t)ai);
    if (st == ROUTER_OFFLINE) {
        /* Nothing lost: offers are revoked, open conversations and parked tasks go back to their
         * queues with their original wait (and enqueue time). */
        while (a->held >= 0) {
            uint32_t ti = (uint32_t)a->held;
            task_t *t = &r->tasks[ti];
            router_dkind_t kind = t->state == T_OFFERED ? ROUTER_D_REVOKE : ROUTER_D_REQUEUE;
            detach_agent(r, ti);
            emit(r, kind, ti, ai, r->queues[t->queue].cfg.strategy, 0, now);
            t->attached = 0;
            enter_waiting(r, ti, now);
        }
        while (a->parked >= 0) {
            uint32_t ti = (uint32_t)a->parked;
            detach_waiting(r, ti);
            enter_waiting(r, ti, now);
        }
        sync_agent(r, (uint32_t)ai);
    } else if (st == ROUTER_AVAILABLE) {
        agent_pull(r, (uint32_t)ai, now);
    }
    return 0;
}

static int find_offer(const router_t *r, uint64_t offer_id, uint32_t *ti)
{
    uint32_t i = (uint32_t)(offer_id & 0xffffffffu);
    if (i >= r->lim.max_tasks) return OMNI_ENOTFOUND;
    const task_t *t = &r->tasks[i];
    if (t->state != T_OFFERED || t->offer_gen != (uint32_t)(offer_id >> 32)) return OMNI_ENOTFOUND;
    *ti = i;
    return 0;
}

int router_accept(router_t *r, uint64_t offer_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    uint32_t ti;
    int rc = find_offer(r, offer_id, &ti);
    if (rc) return rc;
    task_t *t = &r->tasks[ti];
    queue_t *q = &r->queues[t->queue];
    agent_t *a = &r->agents[t->agent];
    if (r->dpos[ti] >= 0) rheap_remove(&r->deadlines, ti);
    t->state = T_ASSIGNED;
    t->assigned_at = now;
    t->attached = 0;
    a->assigned++;
    a->missed = 0;
    q->answered++;
    int64_t sla = q->cfg.sla_ch_ms[(int)t->ch] ? q->cfg.sla_ch_ms[(int)t->ch] : q->cfg.sla_ms;
    if (now - t->enq_at <= sla) q->in_sla++;
    sync_agent(r, (uint32_t)t->agent);
    return 0;
}

/* An offer ended without an accept: reject (timeout = 0) or timeout (1, counted towards max_missed). */
static void requeue_offer(router_t *r, uint32_t ti, int64_t now, int revoke, int timeout)
{
    task_t *t = &r->tasks[ti];
    uint32_t ai = (uint32_t)t->agent;
    queue_t *q = &r->queues[t->queue];
    detach_agent(r, ti);
    if (revoke) emit(r, ROUTER_D_REVOKE, ti, ai, q->cfg.strategy, 0, now);
    if (timeout) count_miss(r, ai, now);
    else r->agents[ai].missed = 0;
    sync_agent(r, ai);
    t->excluded = (int32_t)ai;
    t->excluded_until = now + (q->cfg.offer_timeout_ms > REOFFER_MS ? q->cfg.offer_timeout_ms : REOFFER_MS);
    enter_waiting(r, ti, now);     /* next agent first ... */
    agent_pull(r, ai, now);        /* ... then the freed slot takes other work */
}

int router_reject(router_t *r, uint64_t offer_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    uint32_t ti;
    int rc = find_offer(r, offer_id, &ti);
    if (rc) return rc;
    r->queues[r->tasks[ti].queue].rejected++;
    requeue_offer(r, ti, now, 0, 0);
    return 0;
}

int router_offer_timeout(router_t *r, uint64_t offer_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    uint32_t ti;
    int rc = find_offer(r, offer_id, &ti);
    if (rc) return rc;
    r->queues[r->tasks[ti].queue].timed_out++;
    requeue_offer(r, ti, now, 0, 1);
    return 0;
}

int router_release(router_t *r, const char *task_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    int32_t ti = find_task(r, task_id);
    if (ti < 0) return OMNI_ENOTFOUND;
    task_t *t = &r->tasks[ti];
    if (t->state != T_ASSIGNED) return OMNI_EINVAL;
    queue_t *q = &r->queues[t->queue];
    uint32_t ai = (uint32_t)t->agent;
    if (!t->attached) {
        int64_t ht = now - t->assigned_at;
        q->aht_ms = q->aht_known ? q->aht_ms + (ht - q->aht_ms) / 8 : ht;
        q->aht_known = 1;
    }
    detach_agent(r, (uint32_t)ti);
    free_task(r, (uint32_t)ti);
    r->agents[ai].idle_since = now;
    if (q->cfg.wrap_up_ms > 0) start_wrap(r, ai, now + q->cfg.wrap_up_ms, now);
    sync_agent(r, ai);
    agent_pull(r, ai, now);
    return 0;
}

int router_cancel(router_t *r, const char *task_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    int32_t ti = find_task(r, task_id);
    if (ti < 0) return OMNI_ENOTFOUND;
    task_t *t = &r->tasks[ti];
    if (t->state == T_ASSIGNED) return OMNI_EINVAL;
    r->queues[t->queue].abandoned++;
    if (t->state == T_OFFERED) {
        uint32_t ai = (uint32_t)t->agent;
        detach_agent(r, (uint32_t)ti);
        free_task(r, (uint32_t)ti);
        sync_agent(r, ai);
        agent_pull(r, ai, now);
    } else {
        detach_waiting(r, (uint32_t)ti);
        free_task(r, (uint32_t)ti);
    }
    return 0;
}

int router_advance(router_t *r, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    const rheap_ent_t *e;
    while ((e = rheap_top(&r->deadlines)) && e->k1 <= now) {
        uint32_t ref = e->ref;
        if (ref >= r->lim.max_tasks) {
            /* Only a router-started wrap-up has a deadline; set_state removes it. */
            rheap_remove(&r->deadlines, ref);
            end_wrap(r, ref - r->lim.max_tasks, now);
            continue;
        }
        task_t *t = &r->tasks[ref];
        if (t->state == T_OFFERED) {
            r->queues[t->queue].timed_out++;
            requeue_offer(r, ref, now, 1, 1);
        } else {
            /* Step, park or overflow time, or the re-offer exclusion ended: route again, wider. */
            int32_t ex = (t->excluded >= 0 && t->excluded_until <= now) ? t->excluded : -1;
            detach_waiting(r, ref);
            enter_waiting(r, ref, now);
            /* The excluded agent may have skipped tasks behind this one: let it look again. */
            if (ex >= 0) agent_pull(r, (uint32_t)ex, now);
        }
    }
    return 0;
}

int64_t router_next_deadline(const router_t *r)
{
    const rheap_ent_t *e = r ? rheap_top(&r->deadlines) : NULL;
    return e ? e->k1 : INT64_MAX;
}

/* ---------- stats and introspection ---------- */

int router_queue_stats(const router_t *r, int queue, int64_t now, router_queue_stats_t *o)
{
    if (!r || !o || queue < 0 || (uint32_t)queue >= r->n_queues) return OMNI_EINVAL;
    const queue_t *q = &r->queues[queue];
    memset(o, 0, sizeof *o);
    o->waiting = q->oldest.n;
    o->oldest_wait_ms = q->oldest.n ? now - q->oldest.e[0].k1 : 0;
    o->answered = q->answered;
    o->answered_in_sla = q->in_sla;
    o->offered = q->offered;
    o->rejected = q->rejected;
    o->timed_out = q->timed_out;
    o->abandoned = q->abandoned;
    o->sla_target_ms = q->cfg.sla_ms;
    o->sla_met_pct = q->answered ? 100.0 * (double)q->in_sla / (double)q->answered : 100.0;
    o->aht_ms = q->aht_ms;
    o->staffed = q->staffed;
    o->ewt_ms = q->aht_known ? (int64_t)o->waiting * q->aht_ms / (q->staffed ? q->staffed : 1) : 0;
    return 0;
}

int router_agent_info(const router_t *r, const char *agent_id, router_agent_info_t *o)
{
    if (!r || !o) return OMNI_EINVAL;
    int32_t ai = find_agent(r, agent_id);
    if (ai < 0) return OMNI_ENOTFOUND;
    const agent_t *a = &r->agents[ai];
    o->state = (router_state_t)a->state;
    memcpy(o->load, a->load, sizeof o->load);
    memcpy(o->capacity, a->cap, sizeof o->capacity);
    o->assigned = a->assigned;
    return 0;
}

int router_agent_min_step(const router_t *r, const char *agent_id, int queue)
{
    if (!r || queue < 0 || (uint32_t)queue >= r->n_queues) return OMNI_EINVAL;
    int32_t ai = find_agent(r, agent_id);
    if (ai < 0) return OMNI_ENOTFOUND;
    uint8_t ms = r->minstep[(size_t)ai * r->lim.max_queues + queue];
    return ms == NO_STEP ? -1 : ms;
}

int router_task_step(const router_t *r, const char *task_id, int64_t now)
{
    if (!r) return OMNI_EINVAL;
    int32_t ti = find_task(r, task_id);
    if (ti < 0) return OMNI_ENOTFOUND;
    (void)now;
    return r->tasks[ti].step;
}

int router_task_info(const router_t *r, const char *task_id, router_task_info_t *o)
{
    if (!r || !o) return OMNI_EINVAL;
    int32_t ti = find_task(r, task_id);
    if (ti < 0) return OMNI_ENOTFOUND;
    const task_t *t = &r->tasks[ti];
    static const router_tstate_t map[] = {
        [T_WAITING] = ROUTER_T_WAITING, [T_STICKY] = ROUTER_T_PARKED,
        [T_OFFERED] = ROUTER_T_OFFERED, [T_ASSIGNED] = ROUTER_T_ASSIGNED,
    };
    memset(o, 0, sizeof *o);
    o->state = map[(int)t->state];
    o->queue = t->queue;
    o->channel = t->ch;
    o->agent_id = t->state == T_WAITING ? NULL : r->agents[t->agent].id;
    if (t->state == T_OFFERED) o->offer_id = ((uint64_t)t->offer_gen << 32) | (uint32_t)ti;
    o->enqueued_at = t->enq_at;
    return 0;
}

/* ---------- self-check (tests): O(everything), never on a hot path ---------- */

static int heap_ok(const rheap_t *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->pos[h->e[i].ref] != (int32_t)i) return 0;
        if (i > 0 && rheap_less(&h->e[i], &h->e[(i - 1) / 2])) return 0;
    }
    return 1;
}

static int in_heap(const rheap_t *h, uint32_t ref)
{
    int32_t p = h->pos[ref];
    return p >= 0 && (uint32_t)p < h->n && h->e[p].ref == ref;
}

int router_check(const router_t *r, int64_t now)
{
    size_t Q = r->lim.max_queues;
    uint32_t T = r->lim.max_tasks;
    int held_load[C];
    for (uint32_t ai = 0; ai < r->n_agents; ai++) {
        const agent_t *a = &r->agents[ai];
        memset(held_load, 0, sizeof held_load);
        for (int32_t ti = a->held; ti >= 0; ti = r->tasks[ti].next) {
            const task_t *t = &r->tasks[ti];
            if ((t->state != T_OFFERED && t->state != T_ASSIGNED) || t->agent != (int32_t)ai) return -101;
            held_load[(int)t->ch]++;
        }
        for (int32_t ti = a->parked; ti >= 0; ti = r->tasks[ti].next)
            if (r->tasks[ti].state != T_STICKY || r->tasks[ti].agent != (int32_t)ai) return -109;
        for (int c = 0; c < C; c++) {
            if (held_load[c] != a->load[c]) return -102;
            if (a->load[c] > a->cap[c]) return -103;   /* never above capacity */
        }
        /* A wrap-up end is pending only for a router-started wrap-up. */
        if (r->dpos[T + ai] >= 0 && (a->state != ROUTER_WRAP_UP || !in_heap(&r->deadlines, T + ai))) return -106;
        if (r->lim.max_missed && a->missed >= r->lim.max_missed &&
            (a->state == ROUTER_AVAILABLE || a->state == ROUTER_WRAP_UP))
            return -107;   /* should have been paused */
        unsigned able = able_mask(r, a);
        uint32_t n_q = 0;
        for (uint32_t q = 0; q < r->n_queues; q++) {
            uint8_t ms = r->minstep[ai * Q + q];
            if (ms != first_step(&r->queues[q], a)) return -104;
            n_q += ms != NO_STEP;
        }
        if (n_q != a->n_q) return -104;
        for (uint32_t i = 0; i < a->n_q; i++) {
            uint32_t q = r->aq[ai * Q + i];
            const queue_t *qu = &r->queues[q];
            if (r->minstep[ai * Q + q] == NO_STEP) return -104;
            for (int c = 0; c < C; c++) {
                if (!(qu->cfg.channels & (1u << c))) continue;
                int in = r->ppos[pref(r, ai, q, c)] >= 0;
                int want = (int)((able >> c) & 1u);
                if (in != want) return -105;   /* pool = exactly the able agents */
            }
        }
    }
    uint32_t live = 0;
    for (uint32_t ti = 0; ti < T; ti++) {
        const task_t *t = &r->tasks[ti];
        if (t->state == T_FREE) continue;
        live++;
        if (find_task(r, t->id) != (int32_t)ti) return -110;
        const queue_t *qu = &r->queues[t->queue];
        if (!(qu->cfg.channels & (1u << t->ch))) return -129;
        if (t->state == T_OFFERED || t->state == T_ASSIGNED) {
            /* Held work is eligible for its agent under the rule of how it got there. */
            uint8_t ms = r->minstep[(size_t)t->agent * Q + t->queue];
            if (t->pin != PIN_FORCED && ms == NO_STEP) return -111;
            if (t->pin == PIN_NONE && ms > t->step) return -112;
            if (r->tpos[ti] >= 0 || r->opos[ti] >= 0) return -133;
            int want_dl = t->state == T_OFFERED && qu->cfg.offer_timeout_ms > 0;
            if ((r->dpos[ti] >= 0) != want_dl) return -132;
            continue;
        }
        if (!in_heap(&qu->oldest, ti) || qu->oldest.e[r->opos[ti]].k1 != t->enq_at) return -113;
        if (t->state == T_STICKY) {
            if (!in_heap(&r->deadlines, ti)) return -123;   /* its park must end */
            if (now >= r->deadlines.e[r->dpos[ti]].k1) return -114;
            if (able_mask(r, &r->agents[t->agent]) & (1u << t->ch)) return -115;
            if (t->pin == PIN_NONE || r->tpos[ti] >= 0) return -130;
            if (t->pin == PIN_STICKY && r->minstep[(size_t)t->agent * Q + t->queue] == NO_STEP) return -130;
            continue;
        }
        if (t->pin != PIN_NONE) return -130;
        if (t->step != step_for_wait(qu, now - t->enq_at)) return -116;
        const rheap_t *th = &qu->tasks[(int)t->ch][(int)t->step];
        if (!in_heap(th, ti)) return -117;
        if (th->e[r->tpos[ti]].k1 != t->key) return -137;
        if (ovf_time(r, t) <= now) return -124;   /* should have moved down the overflow chain */
        int64_t dl = wait_deadline(r, t);
        if (dl == INT64_MAX ? r->dpos[ti] >= 0
                            : !in_heap(&r->deadlines, ti) || r->deadlines.e[r->dpos[ti]].k1 != dl)
            return -125;
        /* Work-conserving: no able, eligible, non-excluded agent while this task waits. */
        for (int s = 0; s <= t->step; s++) {
            const rheap_t *h = &qu->pool[(int)t->ch][s];
            for (uint32_t k = 0; k < h->n; k++)
                if (!excluded_for(t, pref_agent(r, h->e[k].ref), now)) return -118;
        }
    }
    if (live + r->n_free != T) return -119;
    if (!heap_ok(&r->deadlines)) return -120;
    for (uint32_t i = 0; i < r->deadlines.n; i++) {
        uint32_t ref = r->deadlines.e[i].ref;
        if (ref < T ? r->tasks[ref].state == T_FREE || r->tasks[ref].state == T_ASSIGNED
                    : ref - T >= r->n_agents)
            return -126;
    }
    /* Every deadline <= now was processed (callers advance before checking). */
    if (r->deadlines.n && r->deadlines.e[0].k1 <= now) return -127;
    for (uint32_t q = 0; q < r->n_queues; q++) {
        const queue_t *qu = &r->queues[q];
        if (!heap_ok(&qu->oldest)) return -121;
        for (int c = 0; c < C; c++)
            for (int s = 0; s < S; s++)
                if (!heap_ok(&qu->tasks[c][s]) || !heap_ok(&qu->pool[c][s])) return -122;
        /* Overflow: acyclic, channels kept; at most n_queues hops. */
        uint32_t hops = 0;
        for (int x = qu->ovf; x >= 0; x = r->queues[x].ovf)
            if (++hops > r->n_queues) return -128;
        if (qu->ovf >= 0 && (qu->cfg.channels & ~r->queues[qu->ovf].cfg.channels)) return -128;
        if (qu->ovf < 0 && qu->ovf_after) return -128;
        /* Per-queue counts and reaches, and the heaps reserved to them (no allocation later). */
        uint32_t own[C] = {0}, reach[C] = {0}, reach_total = 0;
        for (uint32_t ti = 0; ti < T; ti++) {
            const task_t *t = &r->tasks[ti];
            if (t->state == T_FREE) continue;
            if (t->queue == (int)q) own[(int)t->ch]++;
            for (int x = t->queue; x >= 0; x = r->queues[x].ovf)
                if (x == (int)q) {
                    reach[(int)t->ch]++;
                    reach_total++;
                    break;
                }
        }
        if (reach_total != qu->reach_total) return -135;
        for (int c = 0; c < C; c++) {
            if (own[c] != qu->live[c]) return -134;
            if (reach[c] != qu->reach[c]) return -135;
            if (!(qu->cfg.channels & (1u << c))) continue;
            for (int s = 0; s < qu->n_steps; s++)
                if (qu->tasks[c][s].cap < reach[c]) return -136;
        }
        if (qu->oldest.cap < reach_total) return -136;
    }
    return 0;
}
