/* Unit tests of the routing core (broker/router) with a fake clock: strategies, thresholds,
 * steps, capacity, priority ageing, backlog, requeue, sticky, limits, bad input, auto-pause,
 * wrap-up, per-channel SLA, overflow, recovery (enqueue_at, attach), transfer, agent update,
 * introspection, random invariants. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "router.h"

#define MAXD 4096

typedef struct {
    router_decision_t d;
    char task[ROUTER_ID_MAX], agent[ROUTER_ID_MAX];
} rec_t;

static router_t *r;
static rec_t recs[MAXD];
static int nrec;
static int billing, sales, lang_ja, team_a, team_b;

static void sink(void *ctx, const router_decision_t *d)
{
    (void)ctx;
    if (nrec >= MAXD) nrec = 0; /* the random test only looks at the latest ones */
    rec_t *x = &recs[nrec++];
    x->d = *d;
    strcpy(x->task, d->task_id);
    strcpy(x->agent, d->agent_id);
    x->d.task_id = x->task;
    x->d.agent_id = x->agent;
}

static void make_router(uint32_t max_missed)
{
    router_limits_t lim = {.max_agents = 64, .max_queues = 8, .max_tasks = 256, .max_skills = 16, .max_teams = 4,
                           .max_missed = max_missed};
    cr_assert_eq(router_new(&lim, &r), 0);
    router_set_sink(r, sink, NULL);
    nrec = 0;
    billing = router_skill(r, "billing");
    sales = router_skill(r, "sales");
    lang_ja = router_skill(r, "lang:ja");
    team_a = router_team(r, "a");
    team_b = router_team(r, "b");
    cr_assert(billing >= 0 && sales >= 0 && lang_ja >= 0 && team_a >= 0 && team_b >= 0);
    cr_assert_eq(router_skill(r, "billing"), billing);
}

static void setup(void)
{
    make_router(0);
}

/* The fixture's router again, with auto-pause after max_missed timed-out offers. */
static void remake(uint32_t max_missed)
{
    router_destroy(&r);
    make_router(max_missed);
}

static void teardown(void)
{
    router_destroy(&r);
    cr_assert_null(r);
}

TestSuite(router, .init = setup, .fini = teardown);

static int add_queue(const char *name, router_strategy_t st)
{
    router_queue_cfg_t q = {.name = name, .team = -1, .strategy = st, .sla_ms = 20000};
    q.n_req = 1;
    q.req[0] = (router_skill_level_t){billing, 1};
    int id;
    cr_assert_eq(router_queue_add(r, &q, &id), 0);
    return id;
}

static void add_agent(const char *id, int team, int level)
{
    router_agent_cfg_t a = {.id = id, .team = team};
    if (level > 0) {
        a.n_skills = 1;
        a.skills[0] = (router_skill_level_t){billing, level};
    }
    cr_assert_eq(router_agent_add(r, &a), 0);
}

static void avail(const char *id, int64_t now)
{
    cr_assert_eq(router_agent_set_state(r, id, ROUTER_AVAILABLE, now), 0);
}

static const rec_t *last(void)
{
    cr_assert(nrec > 0);
    return &recs[nrec - 1];
}

static void check(int64_t now)
{
    int rc = router_check(r, now);
    cr_assert_eq(rc, 0, "router_check = %d", rc);
}

static void expect_offer(const char *task, const char *agent)
{
    const rec_t *x = last();
    cr_assert_eq(x->d.kind, ROUTER_D_OFFER);
    cr_assert_str_eq(x->task, task);
    cr_assert_str_eq(x->agent, agent);
}

Test(router, longest_idle_picks_the_agent_idle_longest)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a1", -1, 3);
    add_agent("a2", -1, 3);
    add_agent("a3", -1, 3);
    avail("a2", 1000);
    avail("a3", 2000);
    avail("a1", 3000);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_PHONE, 0, NULL, 5000), 0);
    expect_offer("t1", "a2");
    cr_assert_eq(last()->d.strategy, ROUTER_LONGEST_IDLE);
    cr_assert_eq(last()->d.pool_size, 3);
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_PHONE, 0, NULL, 6000), 0);
    expect_offer("t2", "a3");
    check(6000);
}

Test(router, least_occupancy_picks_the_least_loaded_agent)
{
    int q = add_queue("q", ROUTER_LEAST_OCCUPANCY);
    add_agent("a1", -1, 3);
    add_agent("a2", -1, 3);
    avail("a1", 0);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_CHAT, 0, NULL, 100), 0);
    expect_offer("t1", "a1");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 200), 0);
    avail("a2", 300);   /* a1 idle longer by time, but has 1/3 chat load */
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_CHAT, 0, NULL, 400), 0);
    expect_offer("t2", "a2");
    cr_assert_eq(router_enqueue(r, "t3", q, ROUTER_CH_CHAT, 0, NULL, 500), 0);
    expect_offer("t3", "a1");   /* both at 1/3: longest idle (a1's last offer at 100) breaks the tie */
    check(500);
}

Test(router, round_robin_rotates)
{
    int q = add_queue("q", ROUTER_ROUND_ROBIN);
    add_agent("a1", -1, 3);
    add_agent("a2", -1, 3);
    add_agent("a3", -1, 3);
    avail("a3", 0);
    avail("a1", 0);
    avail("a2", 0);
    const char *want[] = {"a1", "a2", "a3", "a1", "a2", "a3"};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        cr_assert_eq(router_enqueue(r, id, q, ROUTER_CH_EMAIL, 0, NULL, 10 + i), 0);
        expect_offer(id, want[i]);
    }
    check(20);
}

Test(router, fewest_assigned_picks_the_agent_with_fewest_accepted)
{
    int q = add_queue("q", ROUTER_FEWEST_ASSIGNED);
    add_agent("a1", -1, 3);
    add_agent("a2", -1, 3);
    avail("a1", 0);
    for (int i = 0; i < 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "w%d", i);
        cr_assert_eq(router_enqueue(r, id, q, ROUTER_CH_PHONE, 0, NULL, 10 + i * 10), 0);
        expect_offer(id, "a1");
        cr_assert_eq(router_accept(r, last()->d.offer_id, 11 + i * 10), 0);
        cr_assert_eq(router_release(r, id, 12 + i * 10), 0);
    }
    avail("a2", 100);   /* a1 has been idle longer (since 22) but has 2 assigned */
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 200), 0);
    expect_offer("t", "a2");
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "a1", &ai), 0);
    cr_assert_eq(ai.assigned, 2);
}

Test(router, proficiency_threshold)
{
    router_queue_cfg_t qc = {.name = "vip", .team = -1, .n_req = 2};
    qc.req[0] = (router_skill_level_t){billing, 4};
    qc.req[1] = (router_skill_level_t){lang_ja, 1};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    router_agent_cfg_t lo = {.id = "lo", .team = -1, .n_skills = 2, .skills = {{billing, 3}, {lang_ja, 5}}};
    router_agent_cfg_t nj = {.id = "nj", .team = -1, .n_skills = 1, .skills = {{billing, 5}}};
    router_agent_cfg_t hi = {.id = "hi", .team = -1, .n_skills = 2, .skills = {{billing, 4}, {lang_ja, 1}}};
    cr_assert_eq(router_agent_add(r, &lo), 0);
    cr_assert_eq(router_agent_add(r, &nj), 0);
    avail("lo", 0);
    avail("nj", 0);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_CHAT, 0, NULL, 10), 0);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(router_agent_min_step(r, "lo", q), -1);
    cr_assert_eq(router_agent_add(r, &hi), 0);
    avail("hi", 20);
    expect_offer("t1", "hi");
    cr_assert_eq(router_agent_min_step(r, "hi", q), 0);
    check(20);
}

Test(router, queue_added_after_agents_sees_them)
{
    add_agent("a1", team_a, 2);
    add_agent("a2", team_b, 5);
    avail("a1", 0);
    avail("a2", 10);
    router_queue_cfg_t qc = {.name = "late", .team = team_a, .n_req = 1, .n_steps = 2};
    qc.req[0] = (router_skill_level_t){billing, 3};
    qc.steps[1] = (router_step_t){.after_ms = 1000, .any_team = 1};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    check(20);
    cr_assert_eq(router_agent_min_step(r, "a1", q), 1);
    cr_assert_eq(router_agent_min_step(r, "a2", q), 0);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 20, &st), 0);
    cr_assert_eq(st.staffed, 2);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_PHONE, 0, NULL, 30), 0);
    expect_offer("t1", "a2");
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_PHONE, 0, NULL, 40), 0);
    cr_assert_eq(nrec, 1);
    cr_assert_eq(router_advance(r, 1040), 0);
    expect_offer("t2", "a1");
    check(1040);
}

Test(router, steps_widen_the_pool_at_their_deadline)
{
    router_queue_cfg_t qc = {.name = "b", .team = team_a, .n_req = 1, .n_steps = 3};
    qc.req[0] = (router_skill_level_t){billing, 4};
    qc.steps[1] = (router_step_t){.after_ms = 30000, .min_level = 2};
    qc.steps[2] = (router_step_t){.after_ms = 90000, .any_team = 1};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("l2", team_b, 2);
    add_agent("teammate", team_a, 0);
    add_agent("other", team_b, 0);
    avail("l2", 0);
    avail("teammate", 0);
    avail("other", 0);
    cr_assert_eq(router_agent_min_step(r, "l2", q), 1);
    cr_assert_eq(router_agent_min_step(r, "teammate", q), 2);
    cr_assert_eq(router_agent_min_step(r, "other", q), -1);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(router_next_deadline(r), 30000);
    cr_assert_eq(router_advance(r, 29999), 0);
    cr_assert_eq(nrec, 0);
    check(29999);
    cr_assert_eq(router_advance(r, 30000), 0);
    expect_offer("t1", "l2");
    cr_assert_eq(last()->d.step, 1);
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_PHONE, 0, NULL, 40000), 0);   /* l2 busy */
    cr_assert_eq(nrec, 1);
    cr_assert_eq(router_next_deadline(r), 40000 + 30000);
    cr_assert_eq(router_advance(r, 70000), 0);
    cr_assert_eq(nrec, 1);
    cr_assert_eq(router_task_step(r, "t2", 70000), 1);
    cr_assert_eq(router_next_deadline(r), 130000);
    check(70000);
    cr_assert_eq(router_advance(r, 130000), 0);
    expect_offer("t2", "teammate");
    cr_assert_eq(last()->d.step, 2);
    cr_assert_eq(last()->d.score, 90000);
    cr_assert_eq(router_next_deadline(r), INT64_MAX);
    check(130000);
}

Test(router, capacity_and_cross_channel_rule)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "call", q, ROUTER_CH_PHONE, 0, NULL, 10), 0);
    expect_offer("call", "a");
    uint64_t call = last()->d.offer_id;
    cr_assert_eq(router_enqueue(r, "chat1", q, ROUTER_CH_CHAT, 0, NULL, 20), 0);
    cr_assert_eq(nrec, 1);   /* phone load blocks chat */
    cr_assert_eq(router_enqueue(r, "sns1", q, ROUTER_CH_SNS, 0, NULL, 25), 0);
    cr_assert_eq(nrec, 1);   /* ... and sns */
    cr_assert_eq(router_enqueue(r, "mail1", q, ROUTER_CH_EMAIL, 0, NULL, 30), 0);
    expect_offer("mail1", "a");   /* but not email */
    cr_assert_eq(router_enqueue(r, "call2", q, ROUTER_CH_PHONE, 0, NULL, 35), 0);
    cr_assert_eq(nrec, 2);   /* phone capacity 1 */
    check(35);
    cr_assert_eq(router_accept(r, call, 40), 0);
    cr_assert_eq(router_release(r, "call", 50), 0);
    /* Freed: oldest first across channels. Chat and sns load do not block phone, so call2
     * follows; then the phone load blocks the next chat. */
    cr_assert_eq(nrec, 5);
    cr_assert_str_eq(recs[2].task, "chat1");
    cr_assert_str_eq(recs[3].task, "sns1");
    cr_assert_str_eq(recs[4].task, "call2");
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "a", &ai), 0);
    cr_assert_eq(ai.load[ROUTER_CH_CHAT], 1);
    cr_assert_eq(ai.load[ROUTER_CH_PHONE], 1);
    check(50);
    cr_assert_eq(router_enqueue(r, "chat2", q, ROUTER_CH_CHAT, 0, NULL, 60), 0);
    cr_assert_eq(nrec, 5);
    cr_assert_eq(router_enqueue(r, "mail2", q, ROUTER_CH_EMAIL, 0, NULL, 61), 0);
    expect_offer("mail2", "a");
    check(61);
}

Test(router, chat_capacity_three)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        cr_assert_eq(router_enqueue(r, id, q, ROUTER_CH_CHAT, 0, NULL, 10 + i), 0);
    }
    cr_assert_eq(nrec, 3);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 100, &st), 0);
    cr_assert_eq(st.waiting, 1);
    cr_assert_eq(st.oldest_wait_ms, 100 - 13);
    cr_assert_eq(router_cancel(r, "c0", 120), 0);   /* an offered chat is abandoned: slot freed */
    expect_offer("c3", "a");
    check(120);
}

Test(router, priority_ages_so_old_low_priority_tasks_win)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    cr_assert_eq(router_enqueue(r, "low", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_enqueue(r, "hi1", q, ROUTER_CH_PHONE, 60000, NULL, 10000), 0);   /* key -50 s */
    cr_assert_eq(router_enqueue(r, "hi2", q, ROUTER_CH_PHONE, 60000, NULL, 70000), 0);   /* key +10 s */
    cr_assert_eq(router_enqueue(r, "low2", q, ROUTER_CH_PHONE, 0, NULL, 5000), 0);        /* key +5 s */
    avail("a", 80000);
    expect_offer("hi1", "a");
    cr_assert_eq(last()->d.score, 70000 + 60000);
    const char *order[] = {"low", "low2", "hi2"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(router_accept(r, last()->d.offer_id, 80001 + i * 10), 0);
        cr_assert_eq(router_release(r, last()->task, 80002 + i * 10), 0);
        expect_offer(order[i], "a");
    }
}

Test(router, starvation_free_under_a_stream_of_high_priority)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    cr_assert_eq(router_enqueue(r, "low", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    avail("a", 0);
    expect_offer("low", "a");
    cr_assert_eq(router_reject(r, last()->d.offer_id, 1), 0);   /* now low waits, a is busy-free */
    /* One agent; a new +30 s task each second; each task takes 1 s. low must be served
     * once its wait exceeds 30 s, whatever keeps arriving. */
    int served_low = 0;
    int64_t now = 1;
    for (int i = 0; i < 100 && !served_low; i++) {
        char id[16];
        now = 1000 + i * 1000;
        snprintf(id, sizeof id, "h%d", i);
        cr_assert_eq(router_advance(r, now), 0);
        cr_assert_eq(router_enqueue(r, id, q, ROUTER_CH_PHONE, 30000, NULL, now), 0);
        const rec_t *x = last();
        if (x->d.kind == ROUTER_D_OFFER && router_accept(r, x->d.offer_id, now) == 0) {
            if (!strcmp(x->task, "low")) served_low = 1;
            cr_assert_eq(router_release(r, x->task, now + 500), 0);
            if (!strcmp(last()->task, "low")) served_low = 1;
        }
        check(now + 500);
    }
    cr_assert(served_low);
    cr_assert(now <= 40000, "low served only at %lld", (long long)now);
}

Test(router, backlog_first_across_queues_when_an_agent_frees)
{
    int q1 = add_queue("q1", ROUTER_LONGEST_IDLE);
    int q2 = add_queue("q2", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    cr_assert_eq(router_enqueue(r, "x1", q1, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_enqueue(r, "y1", q2, ROUTER_CH_PHONE, 0, NULL, 5), 0);
    cr_assert_eq(router_enqueue(r, "x2", q1, ROUTER_CH_PHONE, 0, NULL, 10), 0);
    cr_assert_eq(router_enqueue(r, "y2", q2, ROUTER_CH_PHONE, 0, NULL, 10), 0);   /* equal score to x2 */
    avail("a", 20);
    const char *order[] = {"x1", "y1", "x2", "y2"};
    for (int i = 0; i < 4; i++) {
        expect_offer(order[i], "a");
        cr_assert_eq(router_accept(r, last()->d.offer_id, 30 + i), 0);
        cr_assert_eq(router_release(r, order[i], 40 + i), 0);
    }
    check(50);
}

Test(router, reject_requeues_at_front_with_original_wait_and_offers_next_agent)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    add_agent("b", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_PHONE, 0, NULL, 100), 0);
    expect_offer("t1", "a");
    uint64_t off = last()->d.offer_id;
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_PHONE, 0, NULL, 200), 0);   /* waits */
    avail("b", 300);
    expect_offer("t2", "b");
    cr_assert_eq(router_enqueue(r, "t3", q, ROUTER_CH_PHONE, 0, NULL, 400), 0);   /* waits */
    cr_assert_eq(router_reject(r, off, 500), 0);
    /* a is not offered t1 again immediately: it takes t3; t1 waits at the front. */
    expect_offer("t3", "a");
    cr_assert_eq(router_accept(r, recs[1].d.offer_id, 600), 0);
    cr_assert_eq(router_release(r, "t2", 700), 0);
    expect_offer("t1", "b");
    cr_assert_eq(last()->d.score, 600);   /* original wait kept: enqueued at 100 */
    cr_assert_eq(router_reject(r, off, 800), OMNI_ENOTFOUND);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 800, &st), 0);
    cr_assert_eq(st.rejected, 1);
    check(800);
}

Test(router, offer_timeout_in_advance_revokes_and_offers_next)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .offer_timeout_ms = 15000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    add_agent("b", -1, 0);
    avail("a", 0);
    avail("b", 10);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_CHAT, 0, NULL, 1000), 0);
    expect_offer("t", "a");
    cr_assert_eq(router_next_deadline(r), 16000);
    cr_assert_eq(router_advance(r, 16000), 0);
    cr_assert_eq(nrec, 3);
    cr_assert_eq(recs[1].d.kind, ROUTER_D_REVOKE);
    cr_assert_str_eq(recs[1].agent, "a");
    expect_offer("t", "b");
    cr_assert_eq(last()->d.score, 15000);
    cr_assert_eq(router_accept(r, recs[0].d.offer_id, 16001), OMNI_ENOTFOUND);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 16001), 0);
    check(16001);
}

Test(router, caller_timeout_excludes_agent_then_retries_it)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_offer_timeout(r, last()->d.offer_id, 20000), 0);
    cr_assert_eq(nrec, 1);   /* the only agent is not re-offered immediately */
    check(20000);
    int64_t dl = router_next_deadline(r);
    cr_assert(dl > 20000 && dl < INT64_MAX);
    cr_assert_eq(router_advance(r, dl), 0);
    expect_offer("t", "a");   /* ... but the task cannot get stuck */
    check(dl);
}

Test(router, sticky_preference_then_fallback)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .sticky_ms = 20000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("p", -1, 0);
    add_agent("o", -1, 0);
    avail("p", 0);
    avail("o", 0);
    cr_assert_eq(router_enqueue(r, "call", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);   /* to p (longest idle, lower index) */
    expect_offer("call", "p");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "s1", q, ROUTER_CH_PHONE, 0, "p", 100), 0);
    cr_assert_eq(nrec, 1);   /* parked for p although o is free */
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 200, &st), 0);
    cr_assert_eq(st.waiting, 1);
    cr_assert_eq(router_release(r, "call", 5000), 0);
    expect_offer("s1", "p");
    cr_assert_eq(last()->d.strategy, ROUTER_STICKY);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 5001), 0);
    cr_assert_eq(router_enqueue(r, "s2", q, ROUTER_CH_PHONE, 0, "p", 6000), 0);
    cr_assert_eq(nrec, 2);
    cr_assert_eq(router_next_deadline(r), 26000);
    check(6000);
    cr_assert_eq(router_advance(r, 26000), 0);
    expect_offer("s2", "o");
    cr_assert_eq(last()->d.strategy, ROUTER_LONGEST_IDLE);
    check(26000);
    cr_assert_eq(router_enqueue(r, "s3", q, ROUTER_CH_EMAIL, 0, "nobody", 27000), OMNI_ENOTFOUND);
}

Test(router, max_length_is_efull_without_state_change)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .max_len = 2};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_CHAT, 0, NULL, 1), 0);
    cr_assert_eq(router_enqueue(r, "t3", q, ROUTER_CH_CHAT, 0, NULL, 2), OMNI_EFULL);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 10, &st), 0);
    cr_assert_eq(st.waiting, 2);
    cr_assert_eq(router_cancel(r, "t3", 10), OMNI_ENOTFOUND);
    cr_assert_eq(router_cancel(r, "t1", 10), 0);
    cr_assert_eq(router_enqueue(r, "t3", q, ROUTER_CH_CHAT, 0, NULL, 11), 0);
    check(11);
}

Test(router, global_task_limit_is_efull)
{
    router_t *small;
    router_limits_t lim = {.max_agents = 1, .max_queues = 1, .max_tasks = 2, .max_skills = 1, .max_teams = 1};
    cr_assert_eq(router_new(&lim, &small), 0);
    router_queue_cfg_t qc = {.name = "q", .team = -1};
    cr_assert_eq(router_queue_add(small, &qc, NULL), 0);
    cr_assert_eq(router_enqueue(small, "a", 0, 0, 0, NULL, 0), 0);
    cr_assert_eq(router_enqueue(small, "b", 0, 0, 0, NULL, 0), 0);
    cr_assert_eq(router_enqueue(small, "c", 0, 0, 0, NULL, 0), OMNI_EFULL);
    cr_assert_eq(router_check(small, 0), 0);
    router_destroy(&small);
    cr_assert_null(small);
}

Test(router, bad_input_is_an_error_and_no_state_change)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_agent_set_state(r, "ghost", ROUTER_AVAILABLE, 1), OMNI_ENOTFOUND);
    cr_assert_eq(router_agent_set_state(r, "a", (router_state_t)9, 1), OMNI_EINVAL);
    cr_assert_eq(router_release(r, "ghost", 1), OMNI_ENOTFOUND);
    cr_assert_eq(router_accept(r, 12345, 1), OMNI_ENOTFOUND);
    cr_assert_eq(router_reject(r, UINT64_MAX, 1), OMNI_ENOTFOUND);
    cr_assert_eq(router_offer_timeout(r, 0, 1), OMNI_ENOTFOUND);
    cr_assert_eq(router_enqueue(r, "t", 7, 0, 0, NULL, 1), OMNI_EINVAL);
    cr_assert_eq(router_enqueue(r, "t", q, 4, 0, NULL, 1), OMNI_EINVAL);
    cr_assert_eq(router_enqueue(r, "", q, 0, 0, NULL, 1), OMNI_EINVAL);
    char longid[100];
    memset(longid, 'x', 99);
    longid[99] = 0;
    cr_assert_eq(router_enqueue(r, longid, q, 0, 0, NULL, 1), OMNI_ETOOBIG);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 2), 0);
    uint64_t off = last()->d.offer_id;
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_EMAIL, 0, NULL, 2), OMNI_EINVAL);   /* duplicate */
    cr_assert_eq(router_release(r, "t", 3), OMNI_EINVAL);   /* offered, not assigned */
    cr_assert_eq(router_accept(r, off + (1ull << 32), 3), OMNI_ENOTFOUND);   /* stale generation */
    cr_assert_eq(router_accept(r, off, 4), 0);
    cr_assert_eq(router_accept(r, off, 5), OMNI_ENOTFOUND);   /* twice */
    cr_assert_eq(router_reject(r, off, 5), OMNI_ENOTFOUND);
    cr_assert_eq(router_cancel(r, "t", 5), OMNI_EINVAL);     /* assigned: release, not cancel */
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "a", &ai), 0);
    cr_assert_eq(ai.load[ROUTER_CH_PHONE], 1);
    cr_assert_eq(ai.assigned, 1);
    cr_assert_eq(nrec, 1);
    router_agent_cfg_t dup = {.id = "a", .team = -1};
    cr_assert_eq(router_agent_add(r, &dup), OMNI_EINVAL);
    router_agent_cfg_t badskill = {.id = "z", .team = -1, .n_skills = 1, .skills = {{billing, 6}}};
    cr_assert_eq(router_agent_add(r, &badskill), OMNI_EINVAL);
    router_queue_cfg_t badq = {.name = "bq", .team = -1, .n_steps = 2};
    badq.steps[1].after_ms = 0;   /* not increasing */
    cr_assert_eq(router_queue_add(r, &badq, NULL), OMNI_EINVAL);
    cr_assert_eq(router_queue_find(r, "bq"), OMNI_ENOTFOUND);
    cr_assert_eq(router_queue_find(r, "q"), q);
    check(5);
}

Test(router, offline_agent_returns_work_with_original_wait)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    add_agent("b", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "c1", q, ROUTER_CH_CHAT, 0, NULL, 100), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 150), 0);
    cr_assert_eq(router_enqueue(r, "c2", q, ROUTER_CH_CHAT, 0, NULL, 200), 0);
    cr_assert_eq(nrec, 2);
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_OFFLINE, 1000), 0);
    cr_assert_eq(nrec, 4);   /* one requeue, one revoke (held list order) */
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 1000, &st), 0);
    cr_assert_eq(st.waiting, 2);
    cr_assert_eq(st.oldest_wait_ms, 900);
    avail("b", 2000);
    cr_assert_eq(nrec, 6);
    cr_assert_str_eq(recs[4].task, "c1");   /* original order */
    cr_assert_eq(recs[4].d.score, 1900);
    cr_assert_str_eq(recs[5].task, "c2");
    check(2000);
}

Test(router, stats_sla_and_ewt)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);   /* SLA 20 s */
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t1", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1000), 0);   /* within SLA */
    cr_assert_eq(router_enqueue(r, "t2", q, ROUTER_CH_PHONE, 0, NULL, 2000), 0);
    cr_assert_eq(router_enqueue(r, "t3", q, ROUTER_CH_PHONE, 0, NULL, 3000), 0);
    cr_assert_eq(router_release(r, "t1", 61000), 0);   /* handle 60 s */
    cr_assert_eq(router_accept(r, last()->d.offer_id, 61000), 0);   /* t2 waited 59 s: missed */
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 61000, &st), 0);
    cr_assert_eq(st.answered, 2);
    cr_assert_eq(st.answered_in_sla, 1);
    cr_assert_float_eq(st.sla_met_pct, 50.0, 1e-9);
    cr_assert_eq(st.sla_target_ms, 20000);
    cr_assert_eq(st.aht_ms, 60000);
    cr_assert_eq(st.staffed, 1);
    cr_assert_eq(st.waiting, 1);
    cr_assert_eq(st.oldest_wait_ms, 58000);
    cr_assert_eq(st.ewt_ms, 60000);
}

/* ---------- auto-pause, wrap-up, per-channel SLA ---------- */

static int count_kind(router_dkind_t kind)
{
    int n = 0;
    for (int i = 0; i < nrec; i++) n += recs[i].d.kind == kind;
    return n;
}

static router_state_t agent_state(const char *id)
{
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, id, &ai), 0);
    return ai.state;
}

static void expect_state(const char *agent, router_state_t st)
{
    const rec_t *x = last();
    cr_assert_eq(x->d.kind, ROUTER_D_STATE);
    cr_assert_str_eq(x->agent, agent);
    cr_assert_eq(x->d.state, st);
    cr_assert_str_eq(x->task, "");   /* a state change carries no task */
    cr_assert_eq(x->d.queue, -1);
    cr_assert_eq(x->d.from_queue, -1);
    cr_assert_eq(agent_state(agent), st);
}

/* Offers a fresh phone task to the only available agent "a" and returns the offer id. */
static uint64_t offer_one(int q, int i, int64_t now)
{
    char id[16];
    snprintf(id, sizeof id, "p%d", i);
    cr_assert_eq(router_enqueue(r, id, q, ROUTER_CH_PHONE, 0, NULL, now), 0);
    expect_offer(id, "a");
    return last()->d.offer_id;
}

/* An offer to "a" that times out (caller-reported); the task is then dropped. */
static void miss(int q, int i, int64_t now)
{
    char id[16];
    snprintf(id, sizeof id, "p%d", i);
    cr_assert_eq(router_offer_timeout(r, offer_one(q, i, now), now + 50), 0);
    cr_assert_eq(router_cancel(r, id, now + 50), 0);
}

Test(router, auto_pause_after_max_missed_timeouts)
{
    remake(3);
    router_queue_cfg_t qc = {.name = "q", .team = -1, .offer_timeout_ms = 10000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    avail("a", 0);
    /* Two timeouts (one in advance, one by the caller), then an accept resets the count. Each
     * missed task is cancelled so that only fresh tasks reach "a". */
    offer_one(q, 0, 100);
    cr_assert_eq(router_advance(r, 10100), 0);
    cr_assert_eq(count_kind(ROUTER_D_REVOKE), 1);
    cr_assert_eq(router_cancel(r, "p0", 10100), 0);
    miss(q, 1, 10200);
    cr_assert_eq(router_accept(r, offer_one(q, 2, 20100), 20200), 0);
    cr_assert_eq(router_release(r, "p2", 20300), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AVAILABLE);
    /* Two more, then a reject resets it; two more, then set_state resets it. */
    miss(q, 3, 20400);
    miss(q, 4, 20600);
    cr_assert_eq(router_reject(r, offer_one(q, 5, 20800), 20900), 0);
    cr_assert_eq(router_cancel(r, "p5", 20900), 0);
    miss(q, 6, 21000);
    miss(q, 7, 21200);
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_AVAILABLE, 21400), 0);   /* same state: still resets */
    miss(q, 8, 21500);
    miss(q, 9, 21700);
    cr_assert_eq(count_kind(ROUTER_D_STATE), 0);
    check(21800);
    /* An assigned email (attached: an accept would reset the count) stays through the pause. */
    cr_assert_eq(router_attach(r, "mail", q, ROUTER_CH_EMAIL, "a", 21800, 21900), 0);
    /* The third timeout in a row: paused, and told so. */
    cr_assert_eq(router_offer_timeout(r, offer_one(q, 10, 22000), 22100), 0);
    expect_state("a", ROUTER_AWAY);
    cr_assert_eq(count_kind(ROUTER_D_STATE), 1);
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "a", &ai), 0);
    cr_assert_eq(ai.load[ROUTER_CH_EMAIL], 1);
    int n = nrec;
    cr_assert_eq(router_enqueue(r, "later", q, ROUTER_CH_EMAIL, 0, NULL, 22200), 0);
    cr_assert_eq(router_advance(r, 100000), 0);
    cr_assert_eq(nrec, n);   /* nothing offered while away */
    check(100000);
    avail("a", 100001);
    cr_assert_eq(nrec, n + 2);   /* back: the backlog, the timed-out call first */
    cr_assert_str_eq(recs[n].task, "p10");
    cr_assert_str_eq(recs[n + 1].task, "later");
    check(100001);
}

Test(router, no_auto_pause_when_max_missed_is_zero)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    avail("a", 0);
    for (int i = 0; i < 10; i++) cr_assert_eq(router_offer_timeout(r, offer_one(q, i, 10 * i), 10 * i + 5), 0);
    cr_assert_eq(count_kind(ROUTER_D_STATE), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AVAILABLE);
}

static int add_wrap_queue(const char *name, int64_t wrap_ms)
{
    router_queue_cfg_t qc = {.name = name, .team = -1, .wrap_up_ms = wrap_ms};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    return q;
}

Test(router, wrap_up_blocks_offers_until_it_ends_then_the_agent_takes_the_backlog)
{
    int q = add_wrap_queue("q", 30000);
    add_agent("a", -1, 0);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "call", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 10), 0);
    cr_assert_eq(router_enqueue(r, "call2", q, ROUTER_CH_PHONE, 0, NULL, 100), 0);   /* phone full */
    cr_assert_eq(router_release(r, "call", 1000), 0);
    expect_state("a", ROUTER_WRAP_UP);
    cr_assert_eq(nrec, 2);   /* call2 not offered although the slot is free */
    cr_assert_eq(router_enqueue(r, "mail", q, ROUTER_CH_EMAIL, 0, NULL, 2000), 0);
    cr_assert_eq(nrec, 2);   /* no channel takes new work */
    cr_assert_eq(router_next_deadline(r), 31000);
    cr_assert_eq(router_advance(r, 30999), 0);
    cr_assert_eq(nrec, 2);
    check(30999);
    cr_assert_eq(router_advance(r, 31000), 0);
    cr_assert_eq(nrec, 5);
    cr_assert_eq(recs[2].d.kind, ROUTER_D_STATE);
    cr_assert_eq(recs[2].d.state, ROUTER_AVAILABLE);
    cr_assert_str_eq(recs[3].task, "call2");   /* the backlog, oldest first */
    cr_assert_str_eq(recs[4].task, "mail");
    cr_assert_eq(agent_state("a"), ROUTER_AVAILABLE);
    check(31000);
    /* A release without wrap-up (a queue with wrap_up_ms 0) leaves the agent available. */
    int q0 = add_wrap_queue("q0", 0);
    cr_assert_eq(router_accept(r, recs[4].d.offer_id, 31001), 0);
    cr_assert_eq(router_reject(r, recs[3].d.offer_id, 31002), 0);
    cr_assert_eq(router_enqueue(r, "c0", q0, ROUTER_CH_PHONE, 0, NULL, 31003), 0);
    expect_offer("c0", "a");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 31004), 0);
    cr_assert_eq(router_release(r, "c0", 31005), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AVAILABLE);
    check(31005);
}

Test(router, releases_during_wrap_up_extend_it_to_the_later_end)
{
    int q = add_wrap_queue("q", 30000);
    int qs = add_wrap_queue("short", 5000);
    add_agent("a", -1, 0);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "c1", q, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "c2", q, ROUTER_CH_CHAT, 0, NULL, 2), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 3), 0);
    cr_assert_eq(router_enqueue(r, "c3", qs, ROUTER_CH_CHAT, 0, NULL, 4), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 5), 0);
    cr_assert_eq(router_release(r, "c1", 1000), 0);
    cr_assert_eq(router_next_deadline(r), 31000);
    cr_assert_eq(router_release(r, "c2", 10000), 0);
    cr_assert_eq(router_next_deadline(r), 40000);   /* later end wins */
    cr_assert_eq(router_release(r, "c3", 11000), 0);
    cr_assert_eq(router_next_deadline(r), 40000);   /* 16000 is earlier: unchanged */
    cr_assert_eq(count_kind(ROUTER_D_STATE), 1);   /* one wrap-up, extended */
    check(11000);
    cr_assert_eq(router_advance(r, 40000), 0);
    expect_state("a", ROUTER_AVAILABLE);
    check(40000);
}

Test(router, set_state_during_wrap_up_wins)
{
    int q = add_wrap_queue("q", 30000);
    add_agent("a", -1, 0);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "c1", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_release(r, "c1", 1000), 0);
    expect_state("a", ROUTER_WRAP_UP);
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_AWAY, 2000), 0);
    cr_assert_eq(router_next_deadline(r), INT64_MAX);   /* the wrap-up end is void */
    cr_assert_eq(router_advance(r, 50000), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AWAY);
    cr_assert_eq(count_kind(ROUTER_D_STATE), 1);   /* not emitted for set_state */
    check(50000);
    /* Set available during a wrap-up: work at once, and no flip later. */
    avail("a", 50001);
    cr_assert_eq(router_enqueue(r, "c2", q, ROUTER_CH_PHONE, 0, NULL, 50002), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 50003), 0);
    cr_assert_eq(router_release(r, "c2", 51000), 0);
    expect_state("a", ROUTER_WRAP_UP);
    cr_assert_eq(router_enqueue(r, "c3", q, ROUTER_CH_PHONE, 0, NULL, 52000), 0);
    avail("a", 53000);
    expect_offer("c3", "a");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 53001), 0);
    int n = nrec;
    cr_assert_eq(router_advance(r, 90000), 0);
    cr_assert_eq(nrec, n);
    check(90000);
    /* A release while away does not start a wrap-up over the agent's own choice. */
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_AWAY, 90001), 0);
    cr_assert_eq(router_release(r, "c3", 90002), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AWAY);
    cr_assert_eq(nrec, n);
    /* Offline during a wrap-up: the end is void too. */
    avail("a", 90003);
    cr_assert_eq(router_enqueue(r, "c4", q, ROUTER_CH_PHONE, 0, NULL, 90004), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 90005), 0);
    cr_assert_eq(router_release(r, "c4", 90006), 0);
    expect_state("a", ROUTER_WRAP_UP);
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_OFFLINE, 90007), 0);
    cr_assert_eq(router_next_deadline(r), INT64_MAX);
    check(90007);
}

Test(router, timeouts_during_wrap_up_pause_and_void_it)
{
    remake(1);
    router_queue_cfg_t qc = {.name = "q", .team = -1, .wrap_up_ms = 30000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "c1", q, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "c2", q, ROUTER_CH_CHAT, 0, NULL, 2), 0);
    uint64_t off = last()->d.offer_id;
    cr_assert_eq(router_release(r, "c1", 1000), 0);
    expect_state("a", ROUTER_WRAP_UP);
    cr_assert_eq(router_offer_timeout(r, off, 2000), 0);   /* an offer made before the wrap-up */
    expect_state("a", ROUTER_AWAY);
    cr_assert_eq(router_advance(r, 60000), 0);
    cr_assert_eq(agent_state("a"), ROUTER_AWAY);
    check(60000);
}

Test(router, sla_per_channel)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .sla_ms = 20000};
    qc.sla_ch_ms[ROUTER_CH_EMAIL] = 3600000;
    qc.sla_ch_ms[ROUTER_CH_CHAT] = 10000;
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    cr_assert_eq(router_enqueue(r, "mail", q, ROUTER_CH_EMAIL, 0, NULL, 0), 0);   /* answered at 60 s: met */
    cr_assert_eq(router_enqueue(r, "chat", q, ROUTER_CH_CHAT, 0, NULL, 45000), 0); /* 15 s: missed (10 s) */
    cr_assert_eq(router_enqueue(r, "sns", q, ROUTER_CH_SNS, 0, NULL, 45000), 0);   /* 15 s: met (sla_ms) */
    avail("a", 60000);
    cr_assert_eq(nrec, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(router_accept(r, recs[i].d.offer_id, 60000), 0);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 60000, &st), 0);
    cr_assert_eq(st.answered, 3);
    cr_assert_eq(st.answered_in_sla, 2);
    cr_assert_eq(st.sla_target_ms, 20000);
    router_queue_cfg_t bad = {.name = "bad", .team = -1};
    bad.sla_ch_ms[ROUTER_CH_PHONE] = -1;
    cr_assert_eq(router_queue_add(r, &bad, NULL), OMNI_EINVAL);
    bad.sla_ch_ms[ROUTER_CH_PHONE] = 0;
    bad.wrap_up_ms = -1;
    cr_assert_eq(router_queue_add(r, &bad, NULL), OMNI_EINVAL);
}

/* ---------- overflow ---------- */

static int add_level_queue(const char *name, int level, uint32_t max_len)
{
    router_queue_cfg_t qc = {.name = name, .team = -1, .n_req = 1, .max_len = max_len};
    qc.req[0] = (router_skill_level_t){billing, level};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    return q;
}

static router_task_info_t info(const char *task)
{
    router_task_info_t ti;
    cr_assert_eq(router_task_info(r, task, &ti), 0);
    return ti;
}

Test(router, overflow_by_wait_keeps_the_age)
{
    int expert = add_level_queue("expert", 5, 0);
    int general = add_level_queue("general", 1, 0);
    cr_assert_eq(router_queue_set_overflow(r, expert, general, 30000), 0);
    add_agent("a", -1, 3);   /* general only */
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "busy", general, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "old", expert, ROUTER_CH_PHONE, 0, NULL, 100), 0);
    cr_assert_eq(router_enqueue(r, "new", general, ROUTER_CH_PHONE, 0, NULL, 10000), 0);
    cr_assert_eq(router_next_deadline(r), 30100);
    cr_assert_eq(router_advance(r, 30099), 0);
    cr_assert_eq(info("old").queue, expert);
    cr_assert_eq(router_advance(r, 30100), 0);
    const rec_t *x = last();
    cr_assert_eq(x->d.kind, ROUTER_D_OVERFLOW);
    cr_assert_str_eq(x->task, "old");
    cr_assert_str_eq(x->agent, "");
    cr_assert_eq(x->d.from_queue, expert);
    cr_assert_eq(x->d.queue, general);
    cr_assert_eq(x->d.enqueued_at, 100);
    router_task_info_t ti = info("old");
    cr_assert_eq(ti.state, ROUTER_T_WAITING);
    cr_assert_eq(ti.queue, general);
    cr_assert_eq(ti.enqueued_at, 100);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, general, 30100, &st), 0);
    cr_assert_eq(st.waiting, 2);
    cr_assert_eq(st.oldest_wait_ms, 30000);
    cr_assert_eq(router_queue_stats(r, expert, 30100, &st), 0);
    cr_assert_eq(st.waiting, 0);
    check(30100);
    cr_assert_eq(router_release(r, "busy", 40000), 0);
    expect_offer("old", "a");   /* older than "new" although it arrived in general later */
    cr_assert_eq(last()->d.score, 39900);
    cr_assert_eq(last()->d.enqueued_at, 100);
    cr_assert_eq(last()->d.from_queue, -1);
    check(40000);
}

Test(router, an_overflowed_task_takes_the_new_queue_priority_and_keeps_its_own)
{
    int expert = add_level_queue("expert", 5, 0);
    router_queue_cfg_t qc = {.name = "vip", .team = -1, .priority_ms = 60000};
    int vip;
    cr_assert_eq(router_queue_add(r, &qc, &vip), 0);
    cr_assert_eq(router_queue_set_overflow(r, expert, vip, 10000), 0);
    add_agent("a", -1, 1);
    cr_assert_eq(router_enqueue(r, "t", expert, ROUTER_CH_CHAT, 5000, NULL, 0), 0);
    cr_assert_eq(router_advance(r, 10000), 0);
    avail("a", 20000);
    expect_offer("t", "a");
    cr_assert_eq(last()->d.score, 20000 + 60000 + 5000);
    check(20000);
}

Test(router, overflow_moves_and_then_offers_in_the_new_queue)
{
    int expert = add_level_queue("expert", 5, 0);
    int general = add_level_queue("general", 1, 0);
    cr_assert_eq(router_queue_set_overflow(r, expert, general, 20000), 0);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t", expert, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(router_advance(r, 20000), 0);
    cr_assert_eq(nrec, 2);
    cr_assert_eq(recs[0].d.kind, ROUTER_D_OVERFLOW);
    expect_offer("t", "a");
    cr_assert_eq(last()->d.queue, general);
    check(20000);
    /* A chain is followed in one advance when the wait is past both. */
    int third = add_level_queue("third", 1, 0);
    int mid = add_level_queue("mid", 5, 0);
    cr_assert_eq(router_queue_set_overflow(r, mid, third, 1000), 0);
    cr_assert_eq(router_queue_set_overflow(r, expert, mid, 500), 0);
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_AWAY, 20001), 0);
    cr_assert_eq(router_enqueue(r, "u", expert, ROUTER_CH_CHAT, 0, NULL, 21000), 0);
    cr_assert_eq(router_advance(r, 30000), 0);
    cr_assert_eq(nrec, 4);
    cr_assert_eq(recs[2].d.from_queue, expert);
    cr_assert_eq(recs[2].d.queue, mid);
    cr_assert_eq(recs[3].d.from_queue, mid);
    cr_assert_eq(recs[3].d.queue, third);
    cr_assert_eq(info("u").queue, third);
    check(30000);
}

Test(router, overflow_when_full_follows_the_chain)
{
    int qa = add_level_queue("a", 1, 1);
    int qb = add_level_queue("b", 1, 1);
    int qc = add_level_queue("c", 1, 1);
    cr_assert_eq(router_queue_set_overflow(r, qa, qb, 0), 0);
    cr_assert_eq(router_queue_set_overflow(r, qb, qc, 0), 0);
    cr_assert_eq(router_enqueue(r, "t1", qa, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(router_next_deadline(r), INT64_MAX);   /* after_ms 0: only when full */
    cr_assert_eq(router_enqueue(r, "t2", qa, ROUTER_CH_CHAT, 0, NULL, 1), 0);
    cr_assert_eq(last()->d.kind, ROUTER_D_OVERFLOW);
    cr_assert_eq(last()->d.from_queue, qa);
    cr_assert_eq(last()->d.queue, qb);
    cr_assert_eq(router_enqueue(r, "t3", qa, ROUTER_CH_CHAT, 0, NULL, 2), 0);
    cr_assert_eq(last()->d.from_queue, qa);   /* one decision: asked for a, got c */
    cr_assert_eq(last()->d.queue, qc);
    cr_assert_eq(nrec, 2);
    cr_assert_eq(router_enqueue(r, "t4", qa, ROUTER_CH_CHAT, 0, NULL, 3), OMNI_EFULL);
    cr_assert_eq(router_task_info(r, "t4", &(router_task_info_t){0}), OMNI_ENOTFOUND);
    cr_assert_eq(info("t1").queue, qa);
    cr_assert_eq(info("t2").queue, qb);
    cr_assert_eq(info("t3").queue, qc);
    check(3);
    /* Cycles and self-loops are refused; a chain is not. */
    cr_assert_eq(router_queue_set_overflow(r, qc, qa, 0), OMNI_EINVAL);
    cr_assert_eq(router_queue_set_overflow(r, qc, qb, 0), OMNI_EINVAL);
    cr_assert_eq(router_queue_set_overflow(r, qa, qa, 0), OMNI_EINVAL);
    cr_assert_eq(router_queue_set_overflow(r, qa, 9, 0), OMNI_EINVAL);
    cr_assert_eq(router_queue_set_overflow(r, qa, qc, -1), OMNI_EINVAL);
    /* A target must take every channel of the source. */
    router_queue_cfg_t chat_only = {.name = "chat-only", .team = -1, .channels = 1u << ROUTER_CH_CHAT};
    int qchat;
    cr_assert_eq(router_queue_add(r, &chat_only, &qchat), 0);
    cr_assert_eq(router_queue_set_overflow(r, qc, qchat, 0), OMNI_EINVAL);
    cr_assert_eq(router_queue_set_overflow(r, qchat, qc, 0), 0);
    /* Removing it: a full queue is EFULL again. */
    cr_assert_eq(router_queue_set_overflow(r, qa, -1, 0), 0);
    cr_assert_eq(router_enqueue(r, "t5", qa, ROUTER_CH_CHAT, 0, NULL, 4), OMNI_EFULL);
    check(4);
}

Test(router, parked_sticky_tasks_overflow_only_after_entering_the_pool)
{
    router_queue_cfg_t qc = {.name = "s", .team = -1, .sticky_ms = 20000};
    int qs, qg;
    cr_assert_eq(router_queue_add(r, &qc, &qs), 0);
    qg = add_level_queue("general", 1, 0);
    cr_assert_eq(router_queue_set_overflow(r, qs, qg, 10000), 0);
    add_agent("p", -1, 0);
    add_agent("g", -1, 1);
    avail("p", 0);
    cr_assert_eq(router_enqueue(r, "busy", qs, ROUTER_CH_PHONE, 0, "p", 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "t", qs, ROUTER_CH_PHONE, 0, "p", 100), 0);
    cr_assert_eq(info("t").state, ROUTER_T_PARKED);
    cr_assert_eq(router_advance(r, 15000), 0);
    cr_assert_eq(info("t").state, ROUTER_T_PARKED);   /* past 10 s but still parked */
    cr_assert_eq(info("t").queue, qs);
    avail("g", 15001);
    cr_assert_eq(nrec, 1);
    cr_assert_eq(router_advance(r, 20100), 0);   /* out of the park: its wait is past 10 s */
    cr_assert_eq(nrec, 3);
    cr_assert_eq(recs[1].d.kind, ROUTER_D_OVERFLOW);
    expect_offer("t", "g");
    check(20100);
}

/* ---------- recovery: enqueue_at, attach ---------- */

Test(router, enqueue_at_puts_an_older_recovered_task_first)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "busy", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_enqueue(r, "new", q, ROUTER_CH_PHONE, 0, NULL, 10000), 0);
    cr_assert_eq(router_enqueue_at(r, "old", q, ROUTER_CH_PHONE, 0, NULL, 1000, 12000), 0);
    cr_assert_eq(info("old").enqueued_at, 1000);
    cr_assert_eq(router_enqueue_at(r, "future", q, ROUTER_CH_PHONE, 0, NULL, 13000, 12000), OMNI_EINVAL);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 12000, &st), 0);
    cr_assert_eq(st.oldest_wait_ms, 11000);
    cr_assert_eq(router_release(r, "busy", 20000), 0);
    expect_offer("old", "a");
    cr_assert_eq(last()->d.score, 19000);
    cr_assert_eq(last()->d.enqueued_at, 1000);
    check(20000);
}

Test(router, enqueue_at_counts_steps_and_sticky_from_the_original_time)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .n_req = 1, .n_steps = 2, .sticky_ms = 5000};
    qc.req[0] = (router_skill_level_t){billing, 4};
    qc.steps[1] = (router_step_t){.after_ms = 30000, .min_level = 1};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("p", -1, 4);
    add_agent("lo", -1, 1);
    cr_assert_eq(router_enqueue_at(r, "t", q, ROUTER_CH_PHONE, 0, "p", 0, 40000), 0);
    cr_assert_eq(info("t").state, ROUTER_T_WAITING);   /* sticky time long over: not parked */
    cr_assert_eq(router_task_step(r, "t", 40000), 1);
    avail("lo", 40001);
    expect_offer("t", "lo");
    cr_assert_eq(last()->d.step, 1);
    check(40001);
}

Test(router, attach_counts_load_and_refuses_when_full_or_offline)
{
    int q = add_queue("q", ROUTER_FEWEST_ASSIGNED);
    add_agent("a", -1, 3);
    add_agent("off", -1, 3);
    add_agent("ineligible", -1, 0);
    avail("a", 0);
    avail("ineligible", 0);
    cr_assert_eq(router_attach(r, "x", q, ROUTER_CH_PHONE, "a", 500, 1000), 0);
    cr_assert_eq(nrec, 0);   /* no decision: the caller knows */
    router_task_info_t ti = info("x");
    cr_assert_eq(ti.state, ROUTER_T_ASSIGNED);
    cr_assert_str_eq(ti.agent_id, "a");
    cr_assert_eq(ti.enqueued_at, 500);
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "a", &ai), 0);
    cr_assert_eq(ai.load[ROUTER_CH_PHONE], 1);
    cr_assert_eq(ai.assigned, 1);
    cr_assert_eq(router_attach(r, "y", q, ROUTER_CH_PHONE, "a", 500, 1000), OMNI_EFULL);
    cr_assert_eq(router_attach(r, "y", q, ROUTER_CH_PHONE, "off", 500, 1000), OMNI_ESTATE);
    cr_assert_eq(router_attach(r, "y", q, ROUTER_CH_PHONE, "ghost", 500, 1000), OMNI_ENOTFOUND);
    cr_assert_eq(router_attach(r, "x", q, ROUTER_CH_EMAIL, "a", 500, 1000), OMNI_EINVAL);   /* id in use */
    cr_assert_eq(router_attach(r, "y", q, ROUTER_CH_EMAIL, "a", 2000, 1000), OMNI_EINVAL);  /* future */
    /* Blocks are not applied to an attach (the agent holds it already), but do gate new work. */
    cr_assert_eq(router_attach(r, "c", q, ROUTER_CH_CHAT, "a", 600, 1000), 0);
    cr_assert_eq(router_attach(r, "c1", q, ROUTER_CH_CHAT, "a", 600, 1000), 0);
    cr_assert_eq(router_enqueue(r, "c2", q, ROUTER_CH_CHAT, 0, NULL, 1100), 0);
    cr_assert_eq(nrec, 0);   /* phone load blocks new chat */
    cr_assert_eq(router_enqueue(r, "m", q, ROUTER_CH_EMAIL, 0, NULL, 1100), 0);
    expect_offer("m", "a");
    check(1100);
    /* Eligibility is not asked either: a supervisor's or the past's choice. */
    cr_assert_eq(router_attach(r, "z", q, ROUTER_CH_EMAIL, "ineligible", 700, 1200), 0);
    check(1200);
    /* Its handle time is unknown: no AHT sample. */
    cr_assert_eq(router_release(r, "x", 5000), 0);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 5000, &st), 0);
    cr_assert_eq(st.aht_ms, 0);
    cr_assert_eq(st.answered, 0);
    /* Agent offline: the attached chat is requeued with its original enqueue time. */
    cr_assert_eq(router_agent_set_state(r, "a", ROUTER_OFFLINE, 6000), 0);
    const rec_t *x = last();
    cr_assert_eq(x->d.kind, ROUTER_D_REQUEUE);
    cr_assert_str_eq(x->task, "c");
    cr_assert_eq(x->d.enqueued_at, 600);
    cr_assert_eq(info("c").enqueued_at, 600);
    check(6000);
}

/* ---------- transfer ---------- */

Test(router, transfer_to_a_queue_frees_the_holder_and_keeps_the_age)
{
    int q1 = add_queue("q1", ROUTER_LONGEST_IDLE);
    int q2 = add_level_queue("q2", 4, 0);
    add_agent("a", -1, 3);
    add_agent("b", -1, 4);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t", q1, ROUTER_CH_PHONE, 0, NULL, 100), 0);
    expect_offer("t", "a");
    uint64_t off = last()->d.offer_id;
    cr_assert_eq(router_transfer(r, "t", q2, NULL, 0, 150), OMNI_ESTATE);   /* offered, not assigned */
    cr_assert_eq(router_accept(r, off, 200), 0);
    cr_assert_eq(router_enqueue(r, "next", q1, ROUTER_CH_PHONE, 0, NULL, 300), 0);   /* waits for a */
    cr_assert_eq(router_transfer(r, "next", q2, NULL, 0, 350), OMNI_ESTATE);         /* waiting */
    cr_assert_eq(router_transfer(r, "ghost", q2, NULL, 0, 350), OMNI_ENOTFOUND);
    cr_assert_eq(router_transfer(r, "t", 7, NULL, 0, 350), OMNI_ENOTFOUND);
    cr_assert_eq(router_transfer(r, "t", q2, "ghost", 1000, 350), OMNI_ENOTFOUND);
    cr_assert_eq(router_transfer(r, "t", q2, "a", 1000, 350), OMNI_EINVAL);          /* the holder */
    cr_assert_eq(router_transfer(r, "t", q2, NULL, -1, 350), OMNI_EINVAL);
    cr_assert_eq(nrec, 1);
    cr_assert_eq(router_transfer(r, "t", q2, NULL, 0, 1000), 0);
    expect_offer("next", "a");   /* the holder's slot is free at once, no wrap-up */
    router_task_info_t ti = info("t");
    cr_assert_eq(ti.state, ROUTER_T_WAITING);
    cr_assert_eq(ti.queue, q2);
    cr_assert_eq(ti.enqueued_at, 100);
    cr_assert_null(ti.agent_id);
    check(1000);
    avail("b", 2000);
    expect_offer("t", "b");
    cr_assert_eq(last()->d.queue, q2);
    cr_assert_eq(last()->d.score, 1900);
    cr_assert_eq(last()->d.enqueued_at, 100);
    check(2000);
}

Test(router, transfer_back_to_the_same_queue_is_not_offered_to_the_holder_at_once)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 0), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 1), 0);
    cr_assert_eq(router_transfer(r, "t", -1, NULL, 0, 1000), 0);
    cr_assert_eq(nrec, 1);
    check(1000);
    cr_assert_eq(router_advance(r, router_next_deadline(r)), 0);
    expect_offer("t", "a");   /* but it cannot get stuck */
}

Test(router, transfer_to_an_agent_parks_until_it_has_room)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    add_agent("b", -1, 3);
    add_agent("c", -1, 3);
    avail("a", 0);
    avail("b", 1);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 100), 0);
    expect_offer("t", "a");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 200), 0);
    cr_assert_eq(router_enqueue(r, "busy", q, ROUTER_CH_PHONE, 0, NULL, 300), 0);
    expect_offer("busy", "b");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 400), 0);
    cr_assert_eq(router_enqueue(r, "backlog", q, ROUTER_CH_PHONE, 0, NULL, 500), 0);   /* older than t? no */
    avail("c", 600);
    expect_offer("backlog", "c");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 700), 0);
    cr_assert_eq(router_enqueue(r, "backlog2", q, ROUTER_CH_PHONE, 0, NULL, 800), 0);   /* waits */
    int n = nrec;
    cr_assert_eq(router_transfer(r, "t", -1, "b", 60000, 1000), 0);
    /* a is free: it takes the backlog, not t (parked on b) */
    cr_assert_eq(nrec, n + 1);
    expect_offer("backlog2", "a");
    router_task_info_t ti = info("t");
    cr_assert_eq(ti.state, ROUTER_T_PARKED);
    cr_assert_str_eq(ti.agent_id, "b");
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 1000, &st), 0);
    cr_assert_eq(st.waiting, 1);
    check(1000);
    cr_assert_eq(router_release(r, "busy", 5000), 0);
    expect_offer("t", "b");
    cr_assert_eq(last()->d.strategy, ROUTER_STICKY);
    cr_assert_eq(last()->d.enqueued_at, 100);
    ti = info("t");
    cr_assert_eq(ti.state, ROUTER_T_OFFERED);
    cr_assert_eq(ti.offer_id, last()->d.offer_id);
    check(5000);
}

Test(router, transfer_to_an_agent_falls_back_to_the_pool_after_hold)
{
    int q = add_queue("q", ROUTER_LONGEST_IDLE);
    add_agent("a", -1, 3);
    add_agent("b", -1, 3);
    add_agent("c", -1, 3);
    avail("a", 0);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, NULL, 100), 0);
    cr_assert_eq(router_accept(r, last()->d.offer_id, 200), 0);
    avail("c", 300);
    cr_assert_eq(router_transfer(r, "t", -1, "b", 60000, 1000), 0);   /* b offline: parked */
    cr_assert_eq(info("t").state, ROUTER_T_PARKED);
    cr_assert_eq(nrec, 1);   /* c is free but t waits for b */
    cr_assert_eq(router_next_deadline(r), 61000);
    check(1000);
    cr_assert_eq(router_advance(r, 61000), 0);
    expect_offer("t", "c");
    cr_assert_eq(last()->d.strategy, ROUTER_LONGEST_IDLE);
    check(61000);
    /* hold 0: offered only if the agent has room right now, else the pool at once. */
    cr_assert_eq(router_accept(r, last()->d.offer_id, 61001), 0);
    cr_assert_eq(router_transfer(r, "t", -1, "b", 0, 62000), 0);
    cr_assert_eq(info("t").state, ROUTER_T_OFFERED);
    cr_assert_str_eq(info("t").agent_id, "a");
    check(62000);
}

Test(router, transfer_to_an_agent_ignores_eligibility_and_preference)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .n_req = 1, .sticky_ms = 60000};
    qc.req[0] = (router_skill_level_t){billing, 3};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("p", -1, 3);
    add_agent("novice", -1, 0);
    add_agent("o", -1, 3);
    avail("p", 0);
    avail("novice", 0);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_PHONE, 0, "p", 100), 0);
    expect_offer("t", "p");
    cr_assert_eq(router_accept(r, last()->d.offer_id, 200), 0);
    cr_assert_eq(router_agent_min_step(r, "novice", q), -1);
    cr_assert_eq(router_transfer(r, "t", -1, "novice", 10000, 1000), 0);
    expect_offer("t", "novice");
    cr_assert_eq(last()->d.strategy, ROUTER_STICKY);
    check(1000);
    /* Rejected there: back to the pool, never parked on the customer's preferred agent again. */
    cr_assert_eq(router_agent_set_state(r, "p", ROUTER_AWAY, 1001), 0);
    cr_assert_eq(router_reject(r, last()->d.offer_id, 1002), 0);
    cr_assert_eq(info("t").state, ROUTER_T_WAITING);
    avail("o", 1003);
    expect_offer("t", "o");
    check(1003);
}

/* ---------- agent update, introspection ---------- */

Test(router, agent_update_changes_eligibility_of_an_offline_agent)
{
    int q = add_level_queue("q", 3, 0);
    add_agent("u", team_a, 1);
    cr_assert_eq(router_agent_min_step(r, "u", q), -1);
    cr_assert_eq(router_enqueue(r, "t", q, ROUTER_CH_CHAT, 0, NULL, 0), 0);
    avail("u", 10);
    cr_assert_eq(nrec, 0);
    router_agent_cfg_t up = {.id = "u", .team = team_b, .n_skills = 1, .skills = {{billing, 4}},
                             .capacity = {1, -1, 2, -1}};
    cr_assert_eq(router_agent_update(r, &up), OMNI_ESTATE);
    cr_assert_eq(router_agent_set_state(r, "u", ROUTER_OFFLINE, 20), 0);
    cr_assert_eq(router_agent_update(r, &up), 0);
    cr_assert_eq(router_agent_min_step(r, "u", q), 0);
    router_agent_info_t ai;
    cr_assert_eq(router_agent_info(r, "u", &ai), 0);
    cr_assert_eq(ai.capacity[ROUTER_CH_CHAT], 1);
    cr_assert_eq(ai.capacity[ROUTER_CH_EMAIL], 0);
    cr_assert_eq(ai.capacity[ROUTER_CH_SNS], 2);
    check(20);
    avail("u", 30);
    expect_offer("t", "u");
    check(30);
    router_queue_stats_t st;
    cr_assert_eq(router_queue_stats(r, q, 30, &st), 0);
    cr_assert_eq(st.staffed, 1);
    /* And back down: no longer eligible. */
    cr_assert_eq(router_agent_set_state(r, "u", ROUTER_OFFLINE, 40), 0);
    up.skills[0].level = 2;
    cr_assert_eq(router_agent_update(r, &up), 0);
    cr_assert_eq(router_agent_min_step(r, "u", q), -1);
    avail("u", 50);
    cr_assert_eq(router_queue_stats(r, q, 50, &st), 0);
    cr_assert_eq(st.staffed, 0);
    cr_assert_eq(st.waiting, 1);
    check(50);
    router_agent_cfg_t ghost = {.id = "ghost", .team = -1};
    cr_assert_eq(router_agent_update(r, &ghost), OMNI_ENOTFOUND);
    router_agent_cfg_t bad = {.id = "u", .team = -1, .n_skills = 1, .skills = {{billing, 9}}};
    cr_assert_eq(router_agent_update(r, &bad), OMNI_EINVAL);
}

Test(router, task_info_in_every_state)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .sticky_ms = 30000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    cr_assert_eq(router_enqueue(r, "w", q, ROUTER_CH_EMAIL, 0, NULL, 10), 0);
    cr_assert_eq(router_enqueue(r, "p", q, ROUTER_CH_PHONE, 0, "a", 20), 0);
    router_task_info_t ti = info("w");
    cr_assert_eq(ti.state, ROUTER_T_WAITING);
    cr_assert_eq(ti.queue, q);
    cr_assert_eq(ti.channel, ROUTER_CH_EMAIL);
    cr_assert_null(ti.agent_id);
    cr_assert_eq(ti.offer_id, 0);
    cr_assert_eq(ti.enqueued_at, 10);
    ti = info("p");
    cr_assert_eq(ti.state, ROUTER_T_PARKED);
    cr_assert_str_eq(ti.agent_id, "a");
    cr_assert_eq(ti.enqueued_at, 20);
    avail("a", 30);
    cr_assert_eq(nrec, 2);
    ti = info("p");   /* parked work first */
    cr_assert_eq(ti.state, ROUTER_T_OFFERED);
    cr_assert_eq(ti.offer_id, recs[0].d.offer_id);
    cr_assert_str_eq(ti.agent_id, "a");
    cr_assert_eq(router_accept(r, ti.offer_id, 40), 0);
    ti = info("p");
    cr_assert_eq(ti.state, ROUTER_T_ASSIGNED);
    cr_assert_eq(ti.offer_id, 0);
    cr_assert_str_eq(ti.agent_id, "a");
    cr_assert_eq(router_release(r, "p", 50), 0);
    cr_assert_eq(router_task_info(r, "p", &ti), OMNI_ENOTFOUND);
    cr_assert_eq(router_task_info(r, NULL, &ti), OMNI_ENOTFOUND);
}

Test(router, iteration_and_names)
{
    cr_assert_eq(router_queue_count(r), 0);
    cr_assert_null(router_queue_name(r, 0));
    int q1 = add_queue("first", ROUTER_LONGEST_IDLE);
    int q2 = add_queue("second", ROUTER_LONGEST_IDLE);
    cr_assert_eq(router_queue_count(r), 2);
    cr_assert_str_eq(router_queue_name(r, q1), "first");
    cr_assert_str_eq(router_queue_name(r, q2), "second");
    cr_assert_null(router_queue_name(r, -1));
    cr_assert_null(router_queue_name(r, 2));
    cr_assert_eq(router_agent_count(r), 0);
    add_agent("x", -1, 1);
    add_agent("y", -1, 1);
    cr_assert_eq(router_agent_count(r), 2);
    cr_assert_str_eq(router_agent_id(r, 0), "x");
    cr_assert_str_eq(router_agent_id(r, 1), "y");
    cr_assert_null(router_agent_id(r, 2));
    cr_assert(router_agent_exists(r, "y"));
    cr_assert(!router_agent_exists(r, "z"));
    cr_assert(!router_agent_exists(r, NULL));
}

Test(router, every_decision_carries_the_original_enqueue_time)
{
    router_queue_cfg_t qc = {.name = "q", .team = -1, .offer_timeout_ms = 5000};
    int q;
    cr_assert_eq(router_queue_add(r, &qc, &q), 0);
    add_agent("a", -1, 0);
    add_agent("b", -1, 0);
    avail("a", 0);
    cr_assert_eq(router_enqueue_at(r, "t", q, ROUTER_CH_CHAT, 0, NULL, 777, 1000), 0);   /* OFFER a */
    cr_assert_eq(router_advance(r, 6000), 0);                                           /* REVOKE a */
    avail("b", 6001);                                                                    /* OFFER b */
    cr_assert_eq(router_accept(r, last()->d.offer_id, 6002), 0);
    cr_assert_eq(router_agent_set_state(r, "b", ROUTER_OFFLINE, 7000), 0);              /* REQUEUE b, OFFER a */
    cr_assert_eq(nrec, 5);
    router_dkind_t kinds[] = {ROUTER_D_OFFER, ROUTER_D_REVOKE, ROUTER_D_OFFER, ROUTER_D_REQUEUE, ROUTER_D_OFFER};
    for (int i = 0; i < nrec; i++) {
        cr_assert_eq(recs[i].d.kind, kinds[i], "decision %d", i);
        cr_assert_eq(recs[i].d.enqueued_at, 777, "decision %d", i);
        cr_assert_eq(recs[i].d.from_queue, -1);
    }
    cr_assert_str_eq(recs[3].agent, "b");
    cr_assert_eq(recs[4].d.score, 7000 - 777);
    check(7000);
}

/* ---------- randomized invariants ---------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

typedef struct { char id[16]; uint64_t offer; int state; int64_t enq; } live_t;   /* 0 waiting, 1 offered, 2 assigned */
static live_t lt[200];
static int nlt;

static void track(void *ctx, const router_decision_t *d)
{
    sink(ctx, d);
    cr_assert_not_null(d->task_id);
    cr_assert_not_null(d->agent_id);
    if (d->kind == ROUTER_D_STATE) {
        cr_assert_str_eq(d->task_id, "");
        cr_assert(d->state == ROUTER_AWAY || d->state == ROUTER_WRAP_UP || d->state == ROUTER_AVAILABLE);
        router_agent_info_t ai;
        cr_assert_eq(router_agent_info(r, d->agent_id, &ai), 0);
        cr_assert_eq(ai.state, d->state);
        return;
    }
    if (d->kind == ROUTER_D_OVERFLOW) cr_assert(d->from_queue >= 0 && d->from_queue != d->queue);
    else cr_assert_eq(d->from_queue, -1);
    for (int i = 0; i < nlt; i++)
        if (!strcmp(lt[i].id, d->task_id)) {
            cr_assert_eq(d->enqueued_at, lt[i].enq, "%s kind %d", d->task_id, d->kind);
            if (d->kind == ROUTER_D_OFFER) {
                lt[i].state = 1;
                lt[i].offer = d->offer_id;
                /* The decision's own claims: eligible at its step, pool non-empty; a sticky or
                 * transfer offer goes to an agent chosen for the task, not by the pools. */
                int ms = router_agent_min_step(r, d->agent_id, d->queue);
                cr_assert(d->strategy == ROUTER_STICKY || (ms >= 0 && ms <= d->step));
                cr_assert(d->strategy == ROUTER_STICKY || d->pool_size >= 1);
            } else {
                lt[i].state = 0;
            }
        }
}

static void random_run(uint64_t seed)
{
    rng = seed;
    remake(3);
    router_set_sink(r, track, NULL);
    int skills[6];
    char nm[16];
    for (int i = 0; i < 6; i++) {
        snprintf(nm, sizeof nm, "s%d", i);
        skills[i] = router_skill(r, nm);
    }
    for (int qi = 0; qi < 6; qi++) {
        router_queue_cfg_t qc = {.team = (int)rnd(2), .strategy = (router_strategy_t)(qi % 4),
                                 .n_req = 1 + (int)rnd(2), .n_steps = 3, .sticky_ms = qi == 1 ? 8000 : 0,
                                 .offer_timeout_ms = qi % 2 ? 12000 : 0, .priority_ms = qi * 1000,
                                 .max_len = qi == 4 ? 8 : 60, .sla_ms = 20000,
                                 .wrap_up_ms = qi == 2 ? 3000 : qi == 5 ? 1500 : 0};
        qc.sla_ch_ms[ROUTER_CH_EMAIL] = qi % 3 ? 600000 : 0;
        snprintf(nm, sizeof nm, "q%d", qi);
        qc.name = nm;
        for (int k = 0; k < qc.n_req; k++) qc.req[k] = (router_skill_level_t){skills[(qi + k) % 6], 3 + (int)rnd(3)};
        qc.steps[1] = (router_step_t){.after_ms = 10000, .min_level = 2};
        qc.steps[2] = (router_step_t){.after_ms = 40000, .any_team = 1};
        cr_assert_eq(router_queue_add(r, &qc, NULL), 0);
    }
    /* q4 (short) -> q5 -> q0 when full or after a wait; q1 (sticky) -> q2 after a wait. */
    cr_assert_eq(router_queue_set_overflow(r, 4, 5, 15000), 0);
    cr_assert_eq(router_queue_set_overflow(r, 5, 0, 0), 0);
    cr_assert_eq(router_queue_set_overflow(r, 1, 2, 20000), 0);
    cr_assert_eq(router_queue_set_overflow(r, 0, 4, 1000), OMNI_EINVAL);
    for (int ai = 0; ai < 24; ai++) {
        router_agent_cfg_t ac = {.team = (int)rnd(2), .n_skills = 3};
        snprintf(nm, sizeof nm, "a%d", ai);
        ac.id = nm;
        for (int k = 0; k < 3; k++) ac.skills[k] = (router_skill_level_t){skills[(ai + k * 2) % 6], 1 + (int)rnd(5)};
        if (ai % 5 == 0) ac.capacity[ROUTER_CH_CHAT] = 1;
        cr_assert_eq(router_agent_add(r, &ac), 0);
    }
    int64_t now = 0;
    int n_offers = 0, n_assigned = 0, n_transfers = 0, n_attached = 0, n_updates = 0, seq = 0;
    for (int ev = 0; ev < 10000; ev++) {
        now += rnd(3000);
        cr_assert_eq(router_advance(r, now), 0);
        uint32_t k = rnd(100);
        if (k < 25 && nlt < 200) {
            live_t *x = &lt[nlt];
            snprintf(x->id, sizeof x->id, "t%d", seq++);
            x->state = 0;
            x->offer = 0;   /* never a valid id: generation 0 is never issued */
            x->enq = rnd(4) ? now : now - rnd(60000);   /* some recovered with their old time */
            nlt++;
            char pa[16];
            snprintf(pa, sizeof pa, "a%u", rnd(24));
            int rc = router_enqueue_at(r, x->id, (int)rnd(6), (int)rnd(4), rnd(4) * 5000, rnd(4) ? NULL : pa,
                                       x->enq, now);
            if (rc) { cr_assert_eq(rc, OMNI_EFULL); nlt--; }
        } else if (k < 28 && nlt < 200) {
            live_t *x = &lt[nlt];
            snprintf(x->id, sizeof x->id, "t%d", seq++);
            x->state = 2;
            x->offer = 0;
            x->enq = now - rnd(30000);
            snprintf(nm, sizeof nm, "a%u", rnd(24));
            int rc = router_attach(r, x->id, (int)rnd(6), (int)rnd(4), nm, x->enq, now);
            if (rc) cr_assert(rc == OMNI_EFULL || rc == OMNI_ESTATE, "attach rc %d", rc);
            else { nlt++; n_attached++; }
        } else if (k < 43) {
            snprintf(nm, sizeof nm, "a%u", rnd(24));
            router_state_t st = rnd(3) ? ROUTER_AVAILABLE : (router_state_t)rnd(4);
            cr_assert_eq(router_agent_set_state(r, nm, st, now), 0);
        } else if (k < 45) {
            router_agent_cfg_t ac = {.team = (int)rnd(3) - 1, .n_skills = 3};
            snprintf(nm, sizeof nm, "a%u", rnd(24));
            ac.id = nm;
            for (int j = 0; j < 3; j++) ac.skills[j] = (router_skill_level_t){skills[rnd(6)], 1 + (int)rnd(5)};
            ac.capacity[ROUTER_CH_PHONE] = rnd(4) ? 0 : -1;
            int rc = router_agent_update(r, &ac);
            if (rc == 0) n_updates++;
            else cr_assert_eq(rc, OMNI_ESTATE);
        } else if (k == 45) {
            /* Overflow reconfigured at run time; the caller's timer then fires at once. */
            cr_assert_eq(router_queue_set_overflow(r, 3, rnd(2) ? 0 : -1, rnd(2) * 25000), 0);
            cr_assert_eq(router_advance(r, now), 0);
        } else if (nlt) {
            int i = (int)rnd((uint32_t)nlt);
            live_t *x = &lt[i];
            int rc = 0, gone = 0;
            if (x->state == 1) {
                uint32_t w = rnd(10);
                if (w < 6) { rc = router_accept(r, x->offer, now); x->state = 2; n_assigned++; }
                else if (w < 8) { x->state = 0; rc = router_reject(r, x->offer, now); }
                else if (w < 9) { x->state = 0; rc = router_offer_timeout(r, x->offer, now); }
                else { rc = router_cancel(r, x->id, now); gone = 1; }
                n_offers++;
                /* A requeue may already have re-offered it (state set by track). */
            } else if (x->state == 2 && rnd(4) == 0) {
                char to[16];
                snprintf(to, sizeof to, "a%u", rnd(24));
                x->state = 0;   /* track marks it offered if it is, during the call */
                rc = router_transfer(r, x->id, (int)rnd(7) - 1, rnd(2) ? to : NULL, rnd(3) * 10000, now);
                if (rc == OMNI_EINVAL) { x->state = 2; rc = 0; }   /* to its holder */
                else n_transfers++;
            } else if (x->state == 2) {
                rc = router_release(r, x->id, now);
                gone = 1;
            } else if (rnd(10) == 0) {
                rc = router_cancel(r, x->id, now);
                gone = 1;
            } else {
                int arc = router_accept(r, x->offer, now);
                cr_assert_eq(arc, OMNI_ENOTFOUND, "event %d task %s offer %llx", ev, x->id, (unsigned long long)x->offer);   /* stale offer */
                cr_assert_eq(router_transfer(r, x->id, -1, NULL, 0, now), OMNI_ESTATE);
            }
            cr_assert_eq(rc, 0, "event %d rc %d", ev, rc);
            if (gone) lt[i] = lt[--nlt];
        }
        int rc = router_check(r, now);
        cr_assert_eq(rc, 0, "event %d: router_check = %d", ev, rc);
    }
    cr_assert(n_offers > 500 && n_assigned > 300 && n_transfers > 50 && n_attached > 20 && n_updates > 10,
              "offers %d assigned %d transfers %d attached %d updates %d", n_offers, n_assigned, n_transfers,
              n_attached, n_updates);
    int pauses = 0, wraps = 0, overflows = 0;
    for (int i = 0; i < nrec && i < MAXD; i++) {
        pauses += recs[i].d.kind == ROUTER_D_STATE && recs[i].d.state == ROUTER_AWAY;
        wraps += recs[i].d.kind == ROUTER_D_STATE && recs[i].d.state == ROUTER_WRAP_UP;
        overflows += recs[i].d.kind == ROUTER_D_OVERFLOW;
    }
    cr_log_info("seed %llx: offers %d assigned %d transfers %d attached %d updates %d; last %d decisions: "
                "%d auto-pauses, %d wrap-ups, %d overflows", (unsigned long long)seed, n_offers, n_assigned,
                n_transfers, n_attached, n_updates, nrec, pauses, wraps, overflows);
}

/* 10k random events per seed, new operations mixed in (recovery, attach, transfer, agent update,
 * overflow, wrap-up, auto-pause); router_check after each: capacity, eligibility, heap order,
 * work conservation (no waiting task while an able eligible agent idles), deadlines, reservations. */
Test(router, random_events_keep_invariants_seed1) { random_run(0x9e3779b97f4a7c15ull); }
Test(router, random_events_keep_invariants_seed2) { random_run(12345); }
Test(router, random_events_keep_invariants_seed3) { random_run(0xdeadbeefcafef00dull); }
