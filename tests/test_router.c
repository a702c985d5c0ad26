/* Unit tests of the routing core (broker/router) with a fake clock: strategies, thresholds,
 * steps, capacity, priority ageing, backlog, requeue, sticky, limits, bad input, random invariants. */
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

static void setup(void)
{
    router_limits_t lim = {.max_agents = 64, .max_queues = 8, .max_tasks = 256, .max_skills = 16, .max_teams = 4};
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

/* ---------- randomized invariants ---------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

typedef struct { char id[16]; uint64_t offer; int state; } live_t;   /* 0 waiting, 1 offered, 2 assigned */
static live_t lt[200];
static int nlt;

static void track(void *ctx, const router_decision_t *d)
{
    sink(ctx, d);
    for (int i = 0; i < nlt; i++)
        if (!strcmp(lt[i].id, d->task_id)) {
            if (d->kind == ROUTER_D_OFFER) {
                lt[i].state = 1;
                lt[i].offer = d->offer_id;
                /* The decision's own claims: eligible at its step (or sticky), pool non-empty. */
                int ms = router_agent_min_step(r, d->agent_id, d->queue);
                cr_assert(ms >= 0);
                cr_assert(d->strategy == ROUTER_STICKY || ms <= d->step);
                cr_assert(d->strategy == ROUTER_STICKY || d->pool_size >= 1);
            } else {
                lt[i].state = 0;
            }
        }
}

static void random_run(uint64_t seed)
{
    rng = seed;
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
                                 .max_len = 60, .sla_ms = 20000};
        snprintf(nm, sizeof nm, "q%d", qi);
        qc.name = nm;
        for (int k = 0; k < qc.n_req; k++) qc.req[k] = (router_skill_level_t){skills[(qi + k) % 6], 3 + (int)rnd(3)};
        qc.steps[1] = (router_step_t){.after_ms = 10000, .min_level = 2};
        qc.steps[2] = (router_step_t){.after_ms = 40000, .any_team = 1};
        cr_assert_eq(router_queue_add(r, &qc, NULL), 0);
    }
    for (int ai = 0; ai < 24; ai++) {
        router_agent_cfg_t ac = {.team = (int)rnd(2), .n_skills = 3};
        snprintf(nm, sizeof nm, "a%d", ai);
        ac.id = nm;
        for (int k = 0; k < 3; k++) ac.skills[k] = (router_skill_level_t){skills[(ai + k * 2) % 6], 1 + (int)rnd(5)};
        if (ai % 5 == 0) ac.capacity[ROUTER_CH_CHAT] = 1;
        cr_assert_eq(router_agent_add(r, &ac), 0);
    }
    int64_t now = 0;
    int n_offers = 0, n_assigned = 0, seq = 0;
    for (int ev = 0; ev < 10000; ev++) {
        now += rnd(3000);
        cr_assert_eq(router_advance(r, now), 0);
        uint32_t k = rnd(100);
        if (k < 30 && nlt < 200) {
            live_t *x = &lt[nlt];
            snprintf(x->id, sizeof x->id, "t%d", seq++);
            x->state = 0;
            x->offer = 0;   /* never a valid id: generation 0 is never issued */
            nlt++;
            char pa[16];
            snprintf(pa, sizeof pa, "a%u", rnd(24));
            int rc = router_enqueue(r, x->id, (int)rnd(6), (int)rnd(4), rnd(4) * 5000, rnd(4) ? NULL : pa, now);
            if (rc) { cr_assert_eq(rc, OMNI_EFULL); nlt--; }
        } else if (k < 45) {
            snprintf(nm, sizeof nm, "a%u", rnd(24));
            router_state_t st = rnd(3) ? ROUTER_AVAILABLE : (router_state_t)rnd(4);
            cr_assert_eq(router_agent_set_state(r, nm, st, now), 0);
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
            } else if (x->state == 2) {
                rc = router_release(r, x->id, now);
                gone = 1;
            } else if (rnd(10) == 0) {
                rc = router_cancel(r, x->id, now);
                gone = 1;
            } else {
                int arc = router_accept(r, x->offer, now);
                cr_assert_eq(arc, OMNI_ENOTFOUND, "event %d task %s offer %llx", ev, x->id, (unsigned long long)x->offer);   /* stale offer */
            }
            cr_assert_eq(rc, 0, "event %d rc %d", ev, rc);
            if (gone) lt[i] = lt[--nlt];
        }
        int rc = router_check(r, now);
        cr_assert_eq(rc, 0, "event %d: router_check = %d", ev, rc);
    }
    cr_assert(n_offers > 500 && n_assigned > 300, "offers %d assigned %d", n_offers, n_assigned);
}

/* 10k random events per seed; router_check after each: capacity, eligibility, heap order,
 * work conservation (no waiting task while an able eligible agent idles). */
Test(router, random_events_keep_invariants_seed1) { random_run(0x9e3779b97f4a7c15ull); }
Test(router, random_events_keep_invariants_seed2) { random_run(12345); }
Test(router, random_events_keep_invariants_seed3) { random_run(0xdeadbeefcafef00dull); }
