/* Unit tests of the routing config (broker/routecfg): the full example with every field, the
 * contract's default queue, one-line "PATH:LINE: message" errors, limits, and applying to a router. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "routecfg.h"

#define CH(c) ((uint8_t)(1u << (c)))
#define ALL_CH ((uint8_t)0x0f)

static const char *const full_yaml =
    "tenant: acme\n"                                                               /* 1 */
    "routing:\n"                                                                   /* 2 */
    "  default_queue: general\n"                                                   /* 3 */
    "  agents:\n"                                                                  /* 4 */
    "    capacity: {chat: 4, email: 6, sns: 2, phone: 1}\n"                        /* 5 */
    "    blocks: {phone: [chat, sns], email: phone}\n"                             /* 6 */
    "    max_missed_offers: 5\n"                                                   /* 7 */
    "    heartbeat_timeout_ms: 7000\n"                                             /* 8 */
    "    reclaim_ms: 40000\n"                                                      /* 9 */
    "    transfer_hold_ms: 50000\n"                                                /* 10 */
    "    max_agents: 500\n"                                                        /* 11 */
    "    max_conversations: 9000\n"                                                /* 12 */
    "  calendars:\n"                                                               /* 13 */
    "    tokyo-office:\n"                                                          /* 14 */
    "      timezone: Asia/Tokyo\n"                                                 /* 15 */
    "      weekly: {mon: [\"09:00-18:00\"], tue: \"09:00-18:00\", sat: [\"10:00-12:00\", \"13:00-17:00\"]}\n"
    "      holidays: [\"2026-01-01\", \"2026-01-02\", \"2026-01-13\"]\n"           /* 17 */
    "      always_open: false\n"                                                   /* 18 */
    "    us:\n"                                                                    /* 19 */
    "      timezone: America/New_York\n"                                           /* 20 */
    "      always_open: true\n"                                                    /* 21 */
    "  queues:\n"                                                                  /* 22 */
    "    - name: account\n"                                                        /* 23 */
    "      channels: [chat, email, sns, phone]\n"
    "      skills: \"account>=3 & ja\"\n"
    "      team: support\n"
    "      priority_ms: 1000\n"
    "      strategy: least_occupancy\n"
    "      sticky_ms: 300000\n"
    "      offer_timeout_ms: 15000\n"
    "      sla_ms: {chat: 30000, email: 3600000, default: 45000}\n"
    "      steps:\n"
    "        - {after_ms: 30000, min_level: 2}\n"
    "        - {after_ms: 90000, any_team: true}\n"
    "      overflow: {queue: general, after_ms: 300000}\n"
    "      max_length: 1000\n"
    "      wrap_up_ms: 10000\n"
    "      hours: tokyo-office\n"
    "      after_hours: {action: queue, message: \"営業時間外です。翌営業日にご連絡します。\"}\n"
    "    - name: billing\n"
    "      channels: email\n"
    "      skills: {billing: 2, ja: 1}\n"
    "      strategy: round_robin\n"
    "      sla_ms: 120000\n"
    "      overflow: {queue: general}\n"
    "      hours: us\n"
    "      after_hours: {action: reject}\n"
    "    - name: general\n"
    "      strategy: fewest_assigned\n"
    "  rules:\n"
    "    - name: fraud\n"
    "      keywords: [\"不正利用\"]\n"
    "      boost: true\n"
    "      priority_ms: 600000\n"
    "    - name: account\n"
    "      queue: account\n"
    "      keywords: [\"ログイン\", \"password\"]\n"
    "    - name: billing\n"
    "      queue: billing\n"
    "      keywords: [\"請求\"]\n"
    "log:\n"
    "  level: info\n";

static char tmpdir[] = "/tmp/test_routecfg.XXXXXX";
static char err[512];
static int nfile;
static routecfg_t *rc;

static void teardown(void)
{
    routecfg_destroy(&rc);
    cr_assert_null(rc);
    if (nfile) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        cr_assert_eq(system(cmd), 0);
    }
}

TestSuite(routecfg, .fini = teardown);

/* Writes body to a fresh file under a per-test temp dir and returns its path (static buffer). */
static const char *write_file(const char *body)
{
    static char path[128];

    if (nfile++ == 0) cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/c%d.yaml", tmpdir, nfile);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(body, f);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static void load_ok(const char *yaml)
{
    int r = routecfg_load(yaml ? write_file(yaml) : NULL, &rc, err, sizeof(err));
    cr_assert_eq(r, 0, "rc %d: %s", r, err);
    cr_assert_not_null(rc);
}

static void expect_error(const char *yaml, int line, const char *msg)
{
    const char *path = write_file(yaml);
    char want[200];
    int r = routecfg_load(path, &rc, err, sizeof(err));

    cr_assert_eq(r, OMNI_ECONFIG, "rc %d (%s) for:\n%s", r, err, yaml);
    cr_assert_null(rc);
    snprintf(want, sizeof(want), "%s:%d: ", path, line);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "'%s', want prefix '%s' for:\n%s", err, want, yaml);
    cr_assert_not_null(strstr(err, msg), "'%s' lacks '%s'", err, msg);
    cr_assert_null(strchr(err, '\n'), "one line: '%s'", err);
}

static const char *classify(int channel, const char *text)
{
    match_result_t m;
    cr_assert_eq(match_classify(rc->rules, channel, NULL, 0, "ja", text, NULL, NULL, NULL, 0, &m), 0);
    return m.queue;
}

/* The contract's single queue: every channel, longest idle, no skills, always open. */
static void expect_single_default(const char *name)
{
    const routecfg_queue_t *q;

    cr_assert_eq(rc->n_queues, 1);
    q = &rc->queues[0];
    cr_assert_str_eq(q->name, name);
    cr_assert_str_eq(rc->default_queue, name);
    cr_assert_eq(q->rq.channels, ALL_CH);
    cr_assert_eq(q->rq.strategy, ROUTER_LONGEST_IDLE);
    cr_assert_eq(q->n_req, 0);
    cr_assert_str_eq(q->team, "");
    cr_assert_eq(q->rq.n_steps, 1);
    cr_assert_eq(q->calendar, -1);
    cr_assert_str_eq(q->overflow, "");
    cr_assert_eq(q->rq.offer_timeout_ms, 20000);
    cr_assert_eq(routecfg_queue_index(rc, name), 0);
    cr_assert_str_eq(classify(ROUTER_CH_PHONE, "anything"), name);
}

static void expect_agent_defaults(void)
{
    cr_assert_eq(rc->capacity[ROUTER_CH_CHAT], 3);
    cr_assert_eq(rc->capacity[ROUTER_CH_EMAIL], 5);
    cr_assert_eq(rc->capacity[ROUTER_CH_SNS], 5);
    cr_assert_eq(rc->capacity[ROUTER_CH_PHONE], 1);
    cr_assert_eq(rc->use_blocks, 1);
    cr_assert_eq(rc->blocks[ROUTER_CH_PHONE], CH(ROUTER_CH_CHAT) | CH(ROUTER_CH_SNS));
    cr_assert_eq(rc->blocks[ROUTER_CH_CHAT] | rc->blocks[ROUTER_CH_EMAIL] | rc->blocks[ROUTER_CH_SNS], 0);
    cr_assert_eq(rc->max_missed, 3);
    cr_assert_eq(rc->heartbeat_timeout_ms, 6000);
    cr_assert_eq(rc->reclaim_ms, 30000);
    cr_assert_eq(rc->transfer_hold_ms, 60000);
    cr_assert_eq(rc->max_agents, 10000);
    cr_assert_eq(rc->max_tasks, 200000);
    cr_assert_eq(rc->n_calendars, 0);
}

Test(routecfg, full_example)
{
    const routecfg_queue_t *a, *b, *g;

    load_ok(full_yaml);
    cr_assert_str_eq(rc->default_queue, "general");
    /* agents */
    cr_assert_eq(rc->capacity[ROUTER_CH_CHAT], 4);
    cr_assert_eq(rc->capacity[ROUTER_CH_EMAIL], 6);
    cr_assert_eq(rc->capacity[ROUTER_CH_SNS], 2);
    cr_assert_eq(rc->capacity[ROUTER_CH_PHONE], 1);
    cr_assert_eq(rc->use_blocks, 1);
    cr_assert_eq(rc->blocks[ROUTER_CH_PHONE], CH(ROUTER_CH_CHAT) | CH(ROUTER_CH_SNS));
    cr_assert_eq(rc->blocks[ROUTER_CH_EMAIL], CH(ROUTER_CH_PHONE));
    cr_assert_eq(rc->blocks[ROUTER_CH_CHAT], 0);
    cr_assert_eq(rc->blocks[ROUTER_CH_SNS], 0);
    cr_assert_eq(rc->max_missed, 5);
    cr_assert_eq(rc->heartbeat_timeout_ms, 7000);
    cr_assert_eq(rc->reclaim_ms, 40000);
    cr_assert_eq(rc->transfer_hold_ms, 50000);
    cr_assert_eq(rc->max_agents, 500);
    cr_assert_eq(rc->max_tasks, 9000);
    /* calendars: 2026-01-05 is a Monday; 09:30 JST = 00:30 UTC */
    cr_assert_eq(rc->n_calendars, 2);
    cr_assert_str_eq(rc->calendar_names[0], "tokyo-office");
    cr_assert_str_eq(rc->calendar_names[1], "us");
    cr_assert_str_eq(hours_tz(rc->calendars[0]), "Asia/Tokyo");
    cr_assert_str_eq(hours_tz(rc->calendars[1]), "America/New_York");
    const int64_t mon_0930_jst = 1767573000000LL; /* 2026-01-05T00:30:00Z */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst), 1);
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 9 * 3600000LL), 0);     /* 18:30 */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 86400000LL), 1);        /* Tue */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 2 * 86400000LL), 0);    /* Wed */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 5 * 86400000LL + 3600000LL), 1);  /* Sat 10:30 */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 5 * 86400000LL + 3 * 3600000LL), 0); /* Sat 12:30 */
    cr_assert_eq(hours_is_open(rc->calendars[0], mon_0930_jst + 8 * 86400000LL), 0);    /* Tue 2026-01-13: holiday */
    cr_assert_eq(hours_is_open(rc->calendars[1], mon_0930_jst), 1);
    cr_assert_eq(hours_utc_offset(rc->calendars[1], mon_0930_jst), -5 * 3600);

    cr_assert_eq(rc->n_queues, 3);
    a = &rc->queues[0];
    b = &rc->queues[1];
    g = &rc->queues[2];
    cr_assert_str_eq(a->name, "account");
    cr_assert_eq(a->rq.channels, ALL_CH);
    cr_assert_eq(a->n_req, 2);
    cr_assert_str_eq(a->req[0].skill, "account");
    cr_assert_eq(a->req[0].level, 3);
    cr_assert_str_eq(a->req[1].skill, "ja");
    cr_assert_eq(a->req[1].level, 1);
    cr_assert_str_eq(a->team, "support");
    cr_assert_eq(a->rq.priority_ms, 1000);
    cr_assert_eq(a->rq.strategy, ROUTER_LEAST_OCCUPANCY);
    cr_assert_eq(a->rq.sticky_ms, 300000);
    cr_assert_eq(a->rq.offer_timeout_ms, 15000);
    cr_assert_eq(a->rq.sla_ms, 45000);
    cr_assert_eq(a->rq.sla_ch_ms[ROUTER_CH_CHAT], 30000);
    cr_assert_eq(a->rq.sla_ch_ms[ROUTER_CH_EMAIL], 3600000);
    cr_assert_eq(a->rq.sla_ch_ms[ROUTER_CH_SNS], 0);
    cr_assert_eq(a->rq.sla_ch_ms[ROUTER_CH_PHONE], 0);
    cr_assert_eq(a->rq.n_steps, 3);
    cr_assert_eq(a->rq.steps[0].after_ms, 0);
    cr_assert_eq(a->rq.steps[0].min_level, 0);
    cr_assert_eq(a->rq.steps[0].any_team, 0);
    cr_assert_eq(a->rq.steps[1].after_ms, 30000);
    cr_assert_eq(a->rq.steps[1].min_level, 2);
    cr_assert_eq(a->rq.steps[1].any_team, 0);
    cr_assert_eq(a->rq.steps[2].after_ms, 90000);
    cr_assert_eq(a->rq.steps[2].min_level, 0);
    cr_assert_eq(a->rq.steps[2].any_team, 1);
    cr_assert_str_eq(a->overflow, "general");
    cr_assert_eq(a->overflow_after_ms, 300000);
    cr_assert_eq(a->rq.max_len, 1000);
    cr_assert_eq(a->rq.wrap_up_ms, 10000);
    cr_assert_eq(a->calendar, 0);
    cr_assert_eq(a->after_hours, ROUTECFG_AFTER_QUEUE);
    cr_assert_str_eq(a->after_hours_message, "営業時間外です。翌営業日にご連絡します。");

    cr_assert_str_eq(b->name, "billing");
    cr_assert_eq(b->rq.channels, CH(ROUTER_CH_EMAIL));
    cr_assert_eq(b->n_req, 2);
    cr_assert_str_eq(b->req[0].skill, "billing");
    cr_assert_eq(b->req[0].level, 2);
    cr_assert_str_eq(b->req[1].skill, "ja");
    cr_assert_eq(b->req[1].level, 1);
    cr_assert_str_eq(b->team, "");
    cr_assert_eq(b->rq.strategy, ROUTER_ROUND_ROBIN);
    cr_assert_eq(b->rq.sla_ms, 120000);
    cr_assert_str_eq(b->overflow, "general");
    cr_assert_eq(b->overflow_after_ms, 0);
    cr_assert_eq(b->calendar, 1);
    cr_assert_eq(b->after_hours, ROUTECFG_AFTER_REJECT);
    cr_assert_str_eq(b->after_hours_message, "");

    /* Every default of a queue that says only its name and strategy. */
    cr_assert_str_eq(g->name, "general");
    cr_assert_eq(g->rq.channels, ALL_CH);
    cr_assert_eq(g->n_req, 0);
    cr_assert_str_eq(g->team, "");
    cr_assert_eq(g->rq.priority_ms, 0);
    cr_assert_eq(g->rq.strategy, ROUTER_FEWEST_ASSIGNED);
    cr_assert_eq(g->rq.sticky_ms, 0);
    cr_assert_eq(g->rq.offer_timeout_ms, 20000);
    cr_assert_eq(g->rq.sla_ms, 60000);
    for (int c = 0; c < ROUTER_CHANNELS; c++) cr_assert_eq(g->rq.sla_ch_ms[c], 0);
    cr_assert_eq(g->rq.n_steps, 1);
    cr_assert_eq(g->rq.max_len, 0);
    cr_assert_eq(g->rq.wrap_up_ms, 0);
    cr_assert_str_eq(g->overflow, "");
    cr_assert_eq(g->calendar, -1);
    cr_assert_eq(g->after_hours, ROUTECFG_AFTER_QUEUE);

    cr_assert_eq(routecfg_queue_index(rc, "account"), 0);
    cr_assert_eq(routecfg_queue_index(rc, "billing"), 1);
    cr_assert_eq(routecfg_queue_index(rc, "general"), 2);
    cr_assert_eq(routecfg_queue_index(rc, "nope"), -1);
    cr_assert_eq(routecfg_queue_index(rc, NULL), -1);

    /* rules */
    cr_assert_eq(match_rules_count(rc->rules), 3);
    cr_assert_str_eq(classify(ROUTER_CH_CHAT, "ログインできません"), "account");
    cr_assert_str_eq(classify(ROUTER_CH_EMAIL, "請求について"), "billing");
    cr_assert_str_eq(classify(ROUTER_CH_CHAT, "こんにちは"), "general");
}

Test(routecfg, no_file_is_the_contract_default)
{
    load_ok(NULL);
    expect_single_default("default");
    expect_agent_defaults();
    cr_assert_eq(match_rules_count(rc->rules), 0);
}

Test(routecfg, no_routing_key_is_the_contract_default)
{
    static const char *const files[] = {
        "", "# only a comment\n", "tenant: acme\nlog:\n  level: debug\n", "routing:\n", "routing: ~\n",
        "routing: {}\n", "routing:\n  queues:\n  calendars:\n  agents:\n  rules:\n",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        load_ok(files[i]);
        expect_single_default("default");
        expect_agent_defaults();
        routecfg_destroy(&rc);
    }
}

Test(routecfg, default_queue_without_queues_names_the_single_queue)
{
    load_ok("routing:\n  default_queue: general\n  rules:\n    - {name: x, queue: general, keywords: [x]}\n"
            "    - {name: b, boost: true, keywords: [y], priority_ms: 5}\n");
    expect_single_default("general");
    cr_assert_eq(match_rules_count(rc->rules), 2);
}

Test(routecfg, shorthands_and_edges)
{
    load_ok("routing:\n"
            "  agents:\n"
            "    capacity: {chat: 0}\n"
            "    blocks: {}\n"
            "    max_missed_offers: 0\n"
            "  calendars:\n"
            "    c: {weekly: {Monday: \"9:00-24:00\", sun: []}}\n"
            "  queues:\n"
            "    - name: default\n"
            "      channels: [phone, chat, phone]\n"
            "      skills: \"  日本語 >= 5&en\t\"\n"
            "      priority_ms: -500\n"
            "      steps:\n"
            "      hours: c\n"
            "    - name: other\n"
            "      skills:\n"
            "      offer_timeout_ms: 0\n"
            "      sla_ms: {phone: 10000}\n"
            "      steps: [{after_ms: 1}, {after_ms: 2}, {after_ms: 3}]\n");
    cr_assert_eq(rc->capacity[ROUTER_CH_CHAT], 0);
    cr_assert_eq(rc->capacity[ROUTER_CH_EMAIL], 5); /* unspecified channels keep their defaults */
    cr_assert_eq(rc->use_blocks, 1);
    for (int c = 0; c < ROUTER_CHANNELS; c++) cr_assert_eq(rc->blocks[c], 0);
    cr_assert_eq(rc->max_missed, 0);
    cr_assert_eq(rc->n_calendars, 1);
    cr_assert_str_eq(hours_tz(rc->calendars[0]), "Asia/Tokyo");
    const routecfg_queue_t *q = &rc->queues[0], *o = &rc->queues[1];
    cr_assert_eq(q->rq.channels, CH(ROUTER_CH_PHONE) | CH(ROUTER_CH_CHAT));
    cr_assert_eq(q->n_req, 2);
    cr_assert_str_eq(q->req[0].skill, "日本語");
    cr_assert_eq(q->req[0].level, 5);
    cr_assert_str_eq(q->req[1].skill, "en");
    cr_assert_eq(q->req[1].level, 1);
    cr_assert_eq(q->rq.priority_ms, -500);
    cr_assert_eq(q->rq.n_steps, 1);
    cr_assert_eq(q->calendar, 0);
    cr_assert_eq(o->n_req, 0);
    cr_assert_eq(o->rq.offer_timeout_ms, 0);
    cr_assert_eq(o->rq.sla_ms, 60000);
    cr_assert_eq(o->rq.sla_ch_ms[ROUTER_CH_PHONE], 10000);
    cr_assert_eq(o->rq.n_steps, 4);
    cr_assert_eq(o->rq.steps[3].after_ms, 3);
}

Test(routecfg, errors_are_one_line_with_the_line_number)
{
    static const struct {
        const char *yaml;
        int line;
        const char *msg;
    } cases[] = {
        /* structure and unknown keys */
        {"routing: 5\n", 1, "'routing' must be a mapping"},
        {"- a\n", 1, "top level must be a mapping"},
        {"routing: {}\nrouting: {}\n", 2, "duplicate key 'routing'"},
        {"routing:\n  agentz: {}\n", 2, "unknown key 'routing.agentz'"},
        {"routing:\n  queues:\n    - name: default\n      colour: red\n", 4, "unknown key 'routing.queues[0].colour'"},
        {"routing:\n  agents:\n    capacity: {chat: 2, fax: 1}\n", 3, "unknown key 'routing.agents.capacity.fax'"},
        {"routing:\n  agents:\n    max_agentz: 3\n", 3, "unknown key 'routing.agents.max_agentz'"},
        {"routing:\n  calendars:\n    c:\n      tz: UTC\n", 4, "unknown key 'routing.calendars.c.tz'"},
        {"routing:\n  calendars:\n    c:\n      weekly: {funday: \"09:00-10:00\"}\n", 4, "unknown key 'routing.calendars.c.weekly.funday'"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {after_ms: 5, level: 2}\n", 5, "unknown key 'routing.queues[0].steps[0].level'"},
        {"routing:\n  queues:\n    - name: default\n      overflow: {queue: default, when: full}\n", 4, "unknown key 'routing.queues[0].overflow.when'"},
        {"routing:\n  queues:\n    - name: default\n      sla_ms: {fax: 3}\n", 4, "unknown key 'routing.queues[0].sla_ms.fax'"},
        {"routing:\n  calendars: {c: {always_open: true}}\n  queues:\n    - name: default\n      hours: c\n      after_hours: {action: queue, text: hi}\n", 6, "unknown key 'routing.queues[0].after_hours.text'"},
        {"routing:\n  queues:\n    - name: default\n      name: b\n", 4, "duplicate key 'routing.queues[0].name'"},
        {"routing:\n  rules:\n    - name: a\n      queue: default\n      colour: x\n", 5, "unknown key 'routing.rules[0].colour'"},
        /* references */
        {"routing:\n  queues:\n    - name: default\n  rules:\n    - name: r\n      queue: nope\n", 6, "rule 'r' picks queue 'nope', which is not in routing.queues"},
        {"routing:\n  rules:\n    - name: r\n      queue: billing\n", 4, "without routing.queues the only queue is 'default'"},
        {"routing:\n  queues:\n    - name: default\n      overflow: {queue: nope}\n", 4, "overflows to 'nope'"},
        {"routing:\n  queues:\n    - name: default\n      overflow: {queue: default}\n", 4, "cannot overflow to itself"},
        {"routing:\n  queues:\n    - name: default\n    - name: a\n      overflow: {queue: b}\n    - name: b\n      overflow:\n        queue: a\n", 5, "cycle"},
        {"routing:\n  queues:\n    - name: default\n      overflow: {after_ms: 5}\n", 4, "has no 'queue'"},
        {"routing:\n  default_queue: general\n  queues:\n    - name: default\n", 2, "'routing.default_queue': queue 'general' is not in routing.queues"},
        {"routing:\n  queues:\n    - name: a\n", 3, "no queue named 'default'"},
        {"routing:\n  queues:\n    - name: default\n      hours: nope\n", 4, "no calendar 'nope'"},
        {"routing:\n  queues:\n    - name: default\n      after_hours: {action: reject}\n", 4, "needs 'hours'"},
        /* queues */
        {"routing:\n  queues: []\n", 2, "must not be empty"},
        {"routing:\n  queues: {a: 1}\n", 2, "'routing.queues' must be a list"},
        {"routing:\n  queues:\n    - channels: chat\n", 3, "has no 'name'"},
        {"routing:\n  queues:\n    - name: default\n    - name: default\n", 4, "defined twice"},
        {"routing:\n  queues:\n    - name: \"\"\n", 3, "must not be empty"},
        {"routing:\n  queues:\n    - name: \"a\\nb\"\n", 3, "control characters"},
        {"routing:\n  queues:\n    - name: 0123456789012345678901234567890123456789012345678\n", 3, "longer than 47 bytes"},
        {"routing:\n  queues:\n    - name: default\n      strategy: random\n", 4, "must be longest_idle, least_occupancy, round_robin or fewest_assigned, not 'random'"},
        {"routing:\n  queues:\n    - name: default\n      channels: [chat, fax]\n", 4, "must be chat, email, sns or phone, not 'fax'"},
        {"routing:\n  queues:\n    - name: default\n      channels: []\n", 4, "must not be empty"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a>=\"\n", 4, "'>=' must be followed by a level 1 to 5"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a>=9\"\n", 4, "level 9 of skill 'a' must be 1 to 5"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a>=0\"\n", 4, "level 0 of skill 'a'"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a & & b\"\n", 4, "empty term"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a &\"\n", 4, "empty term"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a > 3\"\n", 4, "skill>=N"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a b\"\n", 4, "unexpected 'b'"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a, b\"\n", 4, "unexpected ','"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a & A & a\"\n", 4, "skill 'a' is given twice"},
        {"routing:\n  queues:\n    - name: default\n      skills: \" \"\n", 4, "must not be empty"},
        {"routing:\n  queues:\n    - name: default\n      skills: \"a&b&c&d&e&f&g&h&i\"\n", 4, "more than 8 skills"},
        {"routing:\n  queues:\n    - name: default\n      skills: [a, b]\n", 4, "must be an expression"},
        {"routing:\n  queues:\n    - name: default\n      skills:\n        a: 6\n", 5, "must be an integer from 1 to 5"},
        {"routing:\n  queues:\n    - name: default\n      skills:\n        \"a b\": 2\n", 5, "a skill name has only"},
        {"routing:\n  queues:\n    - name: default\n      sticky_ms: -1\n", 4, "must be an integer from 0"},
        {"routing:\n  queues:\n    - name: default\n      wrap_up_ms: 1.5\n", 4, "must be an integer"},
        {"routing:\n  queues:\n    - name: default\n      max_length: lots\n", 4, "must be an integer"},
        {"routing:\n  queues:\n    - name: default\n      sla_ms: 0\n", 4, "must be an integer from 1"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {after_ms: 1}\n        - {after_ms: 2}\n        - {after_ms: 3}\n        - {after_ms: 4}\n", 8, "more than 3 steps"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {after_ms: 10}\n        - {after_ms: 10}\n", 6, "greater than the previous step's (10)"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {after_ms: 0}\n", 5, "must be an integer from 1"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {min_level: 2}\n", 5, "has no 'after_ms'"},
        {"routing:\n  queues:\n    - name: default\n      steps:\n        - {after_ms: 5, min_level: 6}\n", 5, "from 1 to 5"},
        {"routing:\n  calendars: {c: {always_open: true}}\n  queues:\n    - name: default\n      hours: c\n      after_hours: {action: drop}\n", 6, "must be queue or reject, not 'drop'"},
        /* calendars */
        {"routing:\n  calendars:\n    c: {timezone: Mars/Olympus}\n", 3, "unknown time zone 'Mars/Olympus'"},
        {"routing:\n  calendars:\n    c:\n      timezone: ../etc/passwd\n", 4, "not a valid zone name"},
        {"routing:\n  calendars:\n    c:\n      timezone: \"\"\n", 4, "must not be empty"},
        {"routing:\n  calendars:\n    c:\n      holidays: [\"2026-02-30\"]\n", 4, "bad date '2026-02-30'"},
        {"routing:\n  calendars:\n    c:\n      holidays:\n        - 2026-01-01\n        - 2026/01/02\n", 6, "bad date '2026/01/02'"},
        {"routing:\n  calendars:\n    c:\n      holidays: \"2026-01-01\"\n", 4, "must be a list of dates"},
        {"routing:\n  calendars:\n    c:\n      weekly:\n        mon: \"18:00-09:00\"\n", 5, "bad time range '18:00-09:00'"},
        {"routing:\n  calendars:\n    c:\n      weekly:\n        mon: [\"09:00-12:00\", \"25:00-26:00\"]\n", 5, "bad time range '25:00-26:00'"},
        {"routing:\n  calendars:\n    c:\n      weekly:\n        mon: \"9-18\"\n", 5, "bad time range"},
        {"routing:\n  calendars:\n    c:\n      weekly:\n        mon: \"09:00-10:00\"\n        monday: \"11:00-12:00\"\n", 6, "already given"},
        {"routing:\n  calendars:\n    c:\n      always_open: maybe\n", 4, "must be true or false"},
        {"routing:\n  calendars:\n    c:\n", 3, "has no value"},
        {"routing:\n  calendars: [c]\n", 2, "must be a mapping"},
        /* agents */
        {"routing:\n  agents:\n    capacity: {chat: 101}\n", 3, "from 0 to 100"},
        {"routing:\n  agents:\n    blocks: {phone: [chat, phone]}\n", 3, "must not list phone itself"},
        {"routing:\n  agents:\n    blocks: {phone: [fax]}\n", 3, "must be chat, email, sns or phone"},
        {"routing:\n  agents:\n    heartbeat_timeout_ms: 0\n", 3, "from 1 to"},
        {"routing:\n  agents:\n    max_agents: 100001\n", 3, "from 1 to 100000"},
        {"routing:\n  agents:\n    max_conversations: 0\n", 3, "from 1 to"},
        {"routing:\n  agents: [1]\n", 2, "'routing.agents' must be a mapping"},
        /* rules (match.c) */
        {"routing:\n  rules:\n    - name: a\n", 3, "needs a 'queue'"},
        {"routing:\n  default_queue: \"\"\n", 2, "must not be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_log_info("case %zu", i);
        expect_error(cases[i].yaml, cases[i].line, cases[i].msg);
    }
}

Test(routecfg, message_and_count_limits)
{
    char y[20000];
    int n;

    /* 1023 bytes fit, 1024 do not. */
    char msg[ROUTECFG_MESSAGE_MAX + 1];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    snprintf(y, sizeof(y), "routing:\n  calendars: {c: {always_open: true}}\n  queues:\n    - name: default\n"
             "      hours: c\n      after_hours: {message: \"%s\"}\n", msg);
    expect_error(y, 6, "longer than 1023 bytes");
    msg[ROUTECFG_MESSAGE_MAX - 1] = '\0';
    snprintf(y, sizeof(y), "routing:\n  calendars: {c: {always_open: true}}\n  queues:\n    - name: default\n"
             "      hours: c\n      after_hours: {message: \"%s\"}\n", msg);
    load_ok(y);
    cr_assert_eq(strlen(rc->queues[0].after_hours_message), ROUTECFG_MESSAGE_MAX - 1);
    routecfg_destroy(&rc);

    n = snprintf(y, sizeof(y), "routing:\n  queues:\n");
    for (int i = 0; i <= ROUTECFG_MAX_QUEUES; i++)
        n += snprintf(y + n, sizeof(y) - (size_t)n, "    - name: %s%d\n", i ? "q" : "default", i);
    expect_error(y, 3 + ROUTECFG_MAX_QUEUES, "more than 64 queues");

    n = snprintf(y, sizeof(y), "routing:\n  calendars:\n");
    for (int i = 0; i <= ROUTECFG_MAX_CALENDARS; i++)
        n += snprintf(y + n, sizeof(y) - (size_t)n, "    c%d: {always_open: true}\n", i);
    expect_error(y, 3 + ROUTECFG_MAX_CALENDARS, "more than 16 calendars");

    n = snprintf(y, sizeof(y), "routing:\n  calendars:\n    c:\n      weekly:\n        mon:\n");
    for (int i = 0; i <= HOURS_MAX_SPANS; i++)
        n += snprintf(y + n, sizeof(y) - (size_t)n, "          - \"%02d:00-%02d:30\"\n", i % 24, i % 24);
    expect_error(y, 6 + HOURS_MAX_SPANS, "more than 32 time ranges");
}

Test(routecfg, file_errors)
{
    cr_assert_eq(routecfg_load("/nonexistent/omni.yaml", &rc, err, sizeof(err)), OMNI_EIO);
    cr_assert_null(rc);
    cr_assert_not_null(strstr(err, "/nonexistent/omni.yaml"), "%s", err);
    cr_assert_eq(routecfg_load("/tmp", &rc, err, sizeof(err)), OMNI_EIO);
    expect_error("routing: [1\n", 2, "did not find expected");
    cr_assert_eq(routecfg_load(NULL, NULL, err, sizeof(err)), OMNI_EINVAL);
    /* A tiny or absent error buffer still returns the code. */
    cr_assert_eq(routecfg_load(write_file("routing: 5\n"), &rc, NULL, 0), OMNI_ECONFIG);
    cr_assert_eq(routecfg_load(write_file("routing: 5\n"), &rc, err, 4), OMNI_ECONFIG);
    cr_assert_eq(strlen(err), 3);
    cr_assert_null(rc);
    routecfg_destroy(NULL);
}

Test(routecfg, limits)
{
    router_limits_t lim;

    load_ok(full_yaml);
    routecfg_limits(rc, &lim);
    cr_assert_eq(lim.max_agents, 500);
    cr_assert_eq(lim.max_queues, 3);
    cr_assert_eq(lim.max_tasks, 9000);
    cr_assert_eq(lim.max_skills, 256 + 3); /* account, ja, billing */
    cr_assert_eq(lim.max_teams, 64 + 1);
    cr_assert_eq(lim.use_blocks, 1);
    cr_assert_eq(lim.blocks[ROUTER_CH_PHONE], CH(ROUTER_CH_CHAT) | CH(ROUTER_CH_SNS));
    cr_assert_eq(lim.blocks[ROUTER_CH_EMAIL], CH(ROUTER_CH_PHONE));
    cr_assert_eq(lim.max_missed, 5);
    routecfg_destroy(&rc);

    load_ok(NULL);
    routecfg_limits(rc, &lim);
    cr_assert_eq(lim.max_agents, 10000);
    cr_assert_eq(lim.max_queues, 1);
    cr_assert_eq(lim.max_tasks, 200000);
    cr_assert_eq(lim.max_skills, 256);
    cr_assert_eq(lim.max_teams, 64);
    cr_assert_eq(lim.max_missed, 3);
}

static router_t *new_router(void)
{
    router_limits_t lim;
    router_t *r = NULL;

    routecfg_limits(rc, &lim);
    cr_assert_eq(router_new(&lim, &r), 0);
    return r;
}

static void add_agent(router_t *r, const char *id, const char *team, const char *s1, int l1, const char *s2, int l2)
{
    router_agent_cfg_t a = {.id = id, .team = team ? router_team(r, team) : -1};

    if (s1) a.skills[a.n_skills++] = (router_skill_level_t){router_skill(r, s1), l1};
    if (s2) a.skills[a.n_skills++] = (router_skill_level_t){router_skill(r, s2), l2};
    cr_assert_eq(router_agent_add(r, &a), 0);
}

Test(routecfg, apply_full_example)
{
    router_t *r;

    load_ok(full_yaml);
    r = new_router();
    cr_assert_eq(routecfg_apply(rc, r, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < rc->n_queues; i++) cr_assert_eq(router_queue_find(r, rc->queues[i].name), (int)i);
    cr_assert_eq(router_queue_find(r, "nope"), OMNI_ENOTFOUND);

    /* Skills, levels, team and steps reached the router: where each agent becomes eligible. */
    add_agent(r, "expert", NULL, "account", 3, "ja", 1);
    add_agent(r, "junior", NULL, "account", 2, "ja", 2);
    add_agent(r, "teammate", "support", NULL, 0, NULL, 0);
    add_agent(r, "stranger", NULL, "billing", 2, "ja", 1);
    cr_assert_eq(router_agent_min_step(r, "expert", 0), 0);
    cr_assert_eq(router_agent_min_step(r, "junior", 0), 1);
    cr_assert_eq(router_agent_min_step(r, "teammate", 0), 2);
    cr_assert_eq(router_agent_min_step(r, "stranger", 0), -1);
    cr_assert_eq(router_agent_min_step(r, "stranger", 1), 0);
    cr_assert_eq(router_agent_min_step(r, "expert", 1), -1);
    cr_assert_eq(router_agent_min_step(r, "teammate", 2), 0); /* general: no skills, everyone */
    cr_assert_eq(router_check(r, 0), 0);
    router_destroy(&r);
}

Test(routecfg, apply_default_and_refusals)
{
    router_t *r;

    load_ok(NULL);
    r = new_router();
    cr_assert_eq(routecfg_apply(rc, r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(router_queue_find(r, "default"), 0);
    add_agent(r, "anyone", NULL, NULL, 0, NULL, 0);
    cr_assert_eq(router_agent_min_step(r, "anyone", 0), 0);
    /* Applying twice: the router already has a queue of that name. */
    cr_assert_eq(routecfg_apply(rc, r, err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, "routing.queues[0] 'default'"), "%s", err);
    cr_assert_null(strchr(err, '\n'));
    router_destroy(&r);
    cr_assert_eq(routecfg_apply(NULL, NULL, err, sizeof(err)), OMNI_EINVAL);
}

Test(routecfg, language_skills_from_logins_can_be_required)
{
    char err[256];
    routecfg_t *rc = NULL;
    char path[] = "/tmp/omni-routecfg-lang-XXXXXX";
    int fd = mkstemp(path);
    const char *yaml = "routing:\n  default_queue: ja\n  queues:\n    - name: ja\n      skills: \"lang:ja & billing>=2\"\n";
    cr_assert(fd >= 0 && write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
    cr_assert_eq(routecfg_load(path, &rc, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rc->queues[0].n_req, 2);
    cr_assert_str_eq(rc->queues[0].req[0].skill, "lang:ja");
    cr_assert_eq(rc->queues[0].req[1].level, 2);
    routecfg_destroy(&rc);
    unlink(path);
}
