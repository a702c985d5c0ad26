/* Decision latency of the routing core (broker/router): arrival -> chosen agent and
 * agent freed -> chosen task, next to a naive linear scan (app_queue style) on the same data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
#include "router.h"

/* Skills routing with two agent groups: "hot" queues are understaffed and hold the backlog W,
 * their agents are saturated; "cold" queues have free agents, so arrivals there are offered at
 * once while the backlog sits in the same router (same hash tables, deadline heap). */
#define NQ 16          /* 8 hot + 8 cold */
#define NSK 32         /* 16 hot skills + 16 cold skills */
#define AGENT_SKILLS 6
#define ITERS 20000

typedef struct { int skill[AGENT_SKILLS], level[AGENT_SKILLS], group; int64_t idle; int load; } nagent_t;
typedef struct { int queue; int64_t key; } ntask_t;

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static inline uint64_t ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int qskill[NQ], qlevel[NQ];
static uint64_t last_offer;
static char last_task[ROUTER_ID_MAX];
static char last_agent[ROUTER_ID_MAX];
static int offers;

static void sink(void *ctx, const router_decision_t *d)
{
    (void)ctx;
    if (d->kind != ROUTER_D_OFFER) return;
    last_offer = d->offer_id;
    strcpy(last_task, d->task_id);
    strcpy(last_agent, d->agent_id);
    offers++;
}

static int naive_eligible(const nagent_t *a, int q)
{
    for (int k = 0; k < AGENT_SKILLS; k++)
        if (a->skill[k] == qskill[q] && a->level[k] >= qlevel[q]) return 1;
    return 0;
}

static void row(const char *what, int n, int w, const hist_t *h)
{
    printf("| %-22s | %6d | %7d | %7.0f | %7.0f | %8.0f | %8.0f | %9llu |\n", what, n, w,
           (double)hist_percentile(h, 50), (double)hist_percentile(h, 99), (double)hist_percentile(h, 99.9),
           (double)h->max, (unsigned long long)h->n);
}

static void run(int n_agents, int backlog)
{
    router_limits_t lim = {.max_agents = (uint32_t)n_agents, .max_queues = NQ,
                           .max_tasks = (uint32_t)(backlog + 4 * n_agents + ITERS + 1024),
                           .max_skills = NSK, .max_teams = 1};
    router_t *r;
    if (router_new(&lim, &r)) { fprintf(stderr, "router_new failed\n"); exit(1); }
    router_set_sink(r, sink, NULL);
    char nm[64];
    for (int s = 0; s < NSK; s++) {
        snprintf(nm, sizeof nm, "skill%d", s);
        router_skill(r, nm);
    }
    for (int q = 0; q < NQ; q++) {
        int hot = q < NQ / 2;
        qskill[q] = (hot ? 0 : 16) + (q % 8) * 2 + (int)rnd(2);
        qlevel[q] = 2;
        router_queue_cfg_t qc = {.team = -1, .n_req = 1, .n_steps = 2, .sla_ms = 20000};
        snprintf(nm, sizeof nm, "q%d", q);
        qc.name = nm;
        qc.req[0] = (router_skill_level_t){qskill[q], 2};
        qc.steps[1] = (router_step_t){.after_ms = 30000, .min_level = 1};
        qc.channels = 1u << ROUTER_CH_CHAT;
        if (router_queue_add(r, &qc, NULL)) { fprintf(stderr, "queue_add failed\n"); exit(1); }
    }
    nagent_t *na = calloc((size_t)n_agents, sizeof *na);
    for (int i = 0; i < n_agents; i++) {
        router_agent_cfg_t ac = {.team = -1, .n_skills = AGENT_SKILLS};
        snprintf(nm, sizeof nm, "agent-%d", i);
        ac.id = nm;
        na[i].group = i % 2;   /* 0: hot, 1: cold */
        for (int k = 0; k < AGENT_SKILLS; k++) {
            int s;
            for (;;) {   /* distinct skills */
                s = na[i].group * 16 + (int)rnd(16);
                int dup = 0;
                for (int j = 0; j < k; j++) dup |= ac.skills[j].skill == s;
                if (!dup) break;
            }
            ac.skills[k] = (router_skill_level_t){s, 1 + (int)rnd(5)};
            na[i].skill[k] = s;
            na[i].level[k] = ac.skills[k].level;
        }
        if (router_agent_add(r, &ac)) { fprintf(stderr, "agent_add failed\n"); exit(1); }
    }
    int64_t now = 1000000;
    /* Agents come online (hot agents will be saturated by the backlog). */
    for (int i = 0; i < n_agents; i++) {
        snprintf(nm, sizeof nm, "agent-%d", i);
        router_agent_set_state(r, nm, ROUTER_AVAILABLE, now + i);
        na[i].idle = now + i;
    }
    now += n_agents + 1000;
    /* Backlog: enough hot tasks to fill every hot agent, accepted, plus `backlog` waiting. */
    int seq = 0, waiting = 0;
    while (waiting < backlog) {
        snprintf(nm, sizeof nm, "task-%d", seq++);
        offers = 0;
        router_enqueue(r, nm, (int)rnd(NQ / 2), ROUTER_CH_CHAT, rnd(4) * 10000, NULL, now++);
        if (offers) router_accept(r, last_offer, now);
        else waiting++;
    }
    router_advance(r, now);
    /* Naive snapshot of the waiting tasks for the baseline (a scan over all of them). */
    ntask_t *nt = malloc((size_t)backlog * sizeof *nt);
    for (int i = 0; i < backlog; i++) nt[i] = (ntask_t){(int)rnd(NQ / 2), now - (int64_t)rnd(100000)};

    hist_t *h_arr = malloc(sizeof *h_arr), *h_free = malloc(sizeof *h_free), *h_back = malloc(sizeof *h_back),
           *h_narr = malloc(sizeof *h_narr), *h_nfree = malloc(sizeof *h_nfree);
    hist_init(h_arr); hist_init(h_free); hist_init(h_back); hist_init(h_narr); hist_init(h_nfree);
    char (*assigned)[ROUTER_ID_MAX] = malloc((size_t)ITERS * sizeof *assigned);
    int n_assigned = 0;

    /* Arrival -> chosen agent (cold queues, free agents), then accept + release off the clock. */
    int arr_miss = 0;
    for (int it = 0; it < ITERS; it++) {
        if (router_next_deadline(r) <= now) router_advance(r, now);   /* the caller's one timer */
        snprintf(nm, sizeof nm, "arr-%d", it);
        int q = NQ / 2 + (int)rnd(NQ / 2);
        offers = 0;
        uint64_t t0 = ns();
        router_enqueue(r, nm, q, ROUTER_CH_CHAT, 0, NULL, now);
        uint64_t t1 = ns();
        hist_record(h_arr, t1 - t0);
        if (offers) {
            router_accept(r, last_offer, now);
            if (rnd(2)) router_release(r, nm, now + 1);
            else if (n_assigned < ITERS) strcpy(assigned[n_assigned++], nm);
        } else {
            arr_miss++;
            router_cancel(r, nm, now);
        }
        /* Release an older one so cold agents do not fill up. */
        if (n_assigned > 64) router_release(r, assigned[--n_assigned], now + 1);
        now += 2;
    }
    while (n_assigned) router_release(r, assigned[--n_assigned], now);

    /* Agent freed -> chosen task: release a hot task (timed: the agent pulls the best of the
     * backlog across its queues), accept the new offer, refill the backlog (timed: arrival into
     * a backlog, no agent free). */
    int ok_free = 0;
    for (int it = 0; it < ITERS; it++) {
        /* A hot task currently assigned: the one just accepted in the previous round, or a fill task. */
        static char victim[ROUTER_ID_MAX];
        if (it == 0) snprintf(victim, sizeof victim, "task-%d", 0);
        if (router_next_deadline(r) <= now) router_advance(r, now);
        offers = 0;
        uint64_t t0 = ns();
        int rc = router_release(r, victim, now);
        uint64_t t1 = ns();
        if (rc == 0) {
            hist_record(h_free, t1 - t0);
            ok_free++;
        }
        if (offers) {
            router_accept(r, last_offer, now);
            strcpy(victim, last_task);
        } else {
            snprintf(victim, sizeof victim, "task-%d", (int)rnd((uint32_t)seq));
        }
        snprintf(nm, sizeof nm, "refill-%d", it);
        offers = 0;
        t0 = ns();
        router_enqueue(r, nm, (int)rnd(NQ / 2), ROUTER_CH_CHAT, rnd(4) * 10000, NULL, now);
        t1 = ns();
        hist_record(h_back, t1 - t0);
        if (offers) router_accept(r, last_offer, now);
        now += 3;
    }

    /* Naive baseline on the same sizes: arrival scans all agents, freed scans all waiting tasks. */
    volatile int sink_v = 0;
    for (int it = 0; it < ITERS; it++) {
        int q = NQ / 2 + (int)rnd(NQ / 2);
        uint64_t t0 = ns();
        int best = -1;
        for (int i = 0; i < n_agents; i++) {
            nagent_t *a = &na[i];
            if (a->load >= 3 || !naive_eligible(a, q)) continue;
            if (best < 0 || a->idle < na[best].idle) best = i;
        }
        uint64_t t1 = ns();
        hist_record(h_narr, t1 - t0);
        if (best >= 0) na[best].idle = now + it;
        sink_v += best;
    }
    for (int it = 0; it < ITERS; it++) {
        nagent_t *a = &na[2 * (int)rnd((uint32_t)n_agents / 2)];
        uint64_t t0 = ns();
        int best = -1;
        for (int i = 0; i < backlog; i++) {
            if (!naive_eligible(a, nt[i].queue)) continue;
            if (best < 0 || nt[i].key < nt[best].key) best = i;
        }
        uint64_t t1 = ns();
        hist_record(h_nfree, t1 - t0);
        sink_v += best;
    }
    (void)sink_v;
    router_advance(r, now);
    int chk = router_check(r, now);
    row("arrival -> agent", n_agents, backlog, h_arr);
    row("  naive scan agents", n_agents, backlog, h_narr);
    row("agent freed -> task", n_agents, backlog, h_free);
    row("  naive scan tasks", n_agents, backlog, h_nfree);
    row("arrival into backlog", n_agents, backlog, h_back);
    if (arr_miss || ok_free < ITERS / 2 || chk)
        printf("|   note: %d arrivals found no free agent, %d/%d frees timed, router_check=%d |\n", arr_miss,
               ok_free, ITERS, chk);
    free(assigned); free(h_arr); free(h_free); free(h_back); free(h_narr); free(h_nfree);
    free(nt); free(na);
    router_destroy(&r);
}

int main(int argc, char **argv)
{
    (void)argv;
    int quick = argc > 1;
    printf("routing core decision latency, ns (clock_gettime around each call; %d calls per row)\n\n", ITERS);
    printf("| %-22s | %6s | %7s | %7s | %7s | %8s | %8s | %9s |\n", "decision", "agents", "waiting", "p50",
           "p99", "p99.9", "max", "n");
    printf("|%s|\n", "------------------------|--------|---------|---------|---------|----------|----------|-----------");
    int agents[] = {100, 1000, 10000}, backlogs[] = {1000, 100000};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            if (quick && (i == 2 || j == 1)) continue;
            run(agents[i], backlogs[j]);
        }
    return 0;
}
