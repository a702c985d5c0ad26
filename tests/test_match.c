/* Unit tests of queue matching (broker/router/match): Japanese and English keywords, first-match
 * order, boosts, every condition kind, defaults, limits, and YAML loading with file:line errors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "match.h"
#include "yamlfile.h"

static const char *const example_yaml =
    "routing:\n"
    "  default_queue: general\n"
    "  rules:\n"
    "    - name: fraud\n"
    "      keywords: [\"不正利用\", \"fraud\", \"unauthorized charge\"]\n"
    "      boost: true\n"
    "      priority_ms: 600000\n"
    "    - name: account\n"
    "      queue: account\n"
    "      keywords: [\"ログイン\", \"パスワード\", \"ロック\", \"password\", \"locked out\", \"login\"]\n"
    "    - name: billing\n"
    "      queue: billing\n"
    "      keywords: [\"請求\", \"クレジットカード\", \"返金\", \"refund\", \"invoice\", \"charged twice\"]\n"
    "    - name: cancellation\n"
    "      queue: retention\n"
    "      keywords: [\"解約\", \"cancel my subscription\", \"unsubscribe\"]\n"
    "    - name: public-posts\n"
    "      queue: social-careful\n"
    "      provider: x\n"
    "      public: true\n";

static match_rules_t *m;
static char tmpdir[] = "/tmp/test_match.XXXXXX";
static char err[512];
static int nfile;

static void setup(void)
{
    cr_assert_eq(match_rules_new(&m), 0);
    cr_assert_not_null(m);
}

static void teardown(void)
{
    match_rules_destroy(&m);
    cr_assert_null(m);
    if (nfile) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        cr_assert_eq(system(cmd), 0);
    }
}

TestSuite(match, .init = setup, .fini = teardown);

/* Writes body to a fresh file under a per-test temp dir and returns its path (static buffer). */
static const char *write_file(const char *body)
{
    static char path[128];

    if (nfile++ == 0) cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/r%d.yaml", tmpdir, nfile);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(body, f);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static void load_example(void)
{
    int rc = match_rules_load_yaml(m, write_file(example_yaml), err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(match_rules_count(m), 5);
}

static match_result_t classify_text(int channel, const char *text)
{
    match_result_t r;
    cr_assert_eq(match_classify(m, channel, NULL, 0, "ja-JP", text, NULL, NULL, NULL, 0, &r), 0);
    return r;
}

static void expect(const char *text, const char *queue, int64_t prio)
{
    match_result_t r = classify_text(ROUTER_CH_CHAT, text);
    cr_assert_str_eq(r.queue, queue, "text '%s': queue %s, want %s", text, r.queue, queue);
    cr_assert_eq(r.priority_ms, prio, "text '%s': priority %lld", text, (long long)r.priority_ms);
}

Test(match, japanese_examples)
{
    load_example();
    expect("ログインできません", "account", 0);
    expect("パスワードを忘れました", "account", 0);
    expect("アカウントがロックされました", "account", 0);
    expect("請求書が届きません", "billing", 0);
    expect("クレジットカードを変更したい", "billing", 0);
    expect("返金をお願いします", "billing", 0);
    expect("解約したいです", "retention", 0);
    match_result_t r = classify_text(ROUTER_CH_CHAT, "返金");
    cr_assert_str_eq(r.category, "billing");
    cr_assert_str_eq(r.rule, "billing");
}

Test(match, english_examples)
{
    load_example();
    expect("I forgot my password", "account", 0);
    expect("I am locked out of my account", "account", 0);
    expect("Please refund my order", "billing", 0);
    expect("I was charged twice this month", "billing", 0);
    expect("I want to cancel my subscription", "retention", 0);
}

Test(match, fraud_boosts_whatever_queue)
{
    load_example();
    /* 不正利用 on a billing complaint: billing queue, boosted. */
    match_result_t r = classify_text(ROUTER_CH_CHAT, "クレジットカードの不正利用の請求があります");
    cr_assert_str_eq(r.queue, "billing");
    cr_assert_eq(r.priority_ms, 600000);
    cr_assert_eq(r.boosts, 1);
    cr_assert_str_eq(r.rule, "billing");
    /* Fraud alone: default queue, still boosted (the boost rule picks no queue). */
    r = classify_text(ROUTER_CH_CHAT, "不正利用されたかもしれない");
    cr_assert_str_eq(r.queue, "general");
    cr_assert_null(r.rule);
    cr_assert_null(r.category);
    cr_assert_eq(r.priority_ms, 600000);
    expect("Unauthorized charge on my account, please REFUND", "billing", 600000);
}

Test(match, ascii_case_insensitive_japanese_exact)
{
    load_example();
    expect("MY PASSWORD IS WRONG", "account", 0);
    expect("PassWord", "account", 0);
    expect("LOCKED OUT", "account", 0);
    /* Full-width letters are not ASCII: byte-exact, so no match. */
    expect("ＰＡＳＳＷＯＲＤ", "general", 0);
}

Test(match, subject_is_searched)
{
    load_example();
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_EMAIL, NULL, 0, "ja", "よろしくお願いします", "【返金】注文番号123",
                                NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "billing");
}

Test(match, no_false_positive_and_default)
{
    load_example();
    expect("こんにちは、営業時間を教えてください", "general", 0);
    expect("What are your opening hours?", "general", 0);
    expect("", "general", 0);
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "general");
    cr_assert_eq(r.priority_ms, 0);
    /* A keyword split by unrelated bytes is not there. */
    expect("パス ワード", "general", 0);
}

Test(match, builtin_default_queue)
{
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "default");
    cr_assert_eq(match_rules_set_default(m, "front"), 0);
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "front");
    cr_assert_eq(match_rules_set_default(m, ""), OMNI_EINVAL);
    cr_assert_eq(match_rules_set_default(m, "0123456789012345678901234567890123456789012345678"), OMNI_ETOOBIG);
}

Test(match, first_match_wins)
{
    load_example();
    /* Both account and billing keywords: account comes first in the file. */
    expect("ログインして請求書を見たい", "account", 0);
    expect("invoice login", "account", 0);

    match_rules_t *m2;
    cr_assert_eq(match_rules_new(&m2), 0);
    const char *kw[] = {"refund"};
    match_rule_t a = {.name = "vip", .queue = "vip", .priority_ms = 1000,
                      .n_attrs = 1, .attrs = {{"tier", "gold"}}};
    match_rule_t b = {.name = "refunds", .queue = "billing", .priority_ms = 5, .n_keywords = 1, .keywords = kw};
    cr_assert_eq(match_rule_add(m2, &a), 0);
    cr_assert_eq(match_rule_add(m2, &b), 0);
    const char *k[] = {"tier"}, *v[] = {"gold"};
    match_result_t r;
    cr_assert_eq(match_classify(m2, ROUTER_CH_CHAT, NULL, 0, NULL, "refund", NULL, k, v, 1, &r), 0);
    cr_assert_str_eq(r.queue, "vip");
    cr_assert_eq(r.priority_ms, 1000, "only the picking rule's priority, not later non-boost rules");
    cr_assert_eq(match_classify(m2, ROUTER_CH_CHAT, NULL, 0, NULL, "refund", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "billing");
    cr_assert_eq(r.priority_ms, 5);
    match_rules_destroy(&m2);
    cr_assert_null(m2);
}

Test(match, boost_rule_with_queue_counts_once)
{
    match_rule_t a = {.name = "urgent", .queue = "urgent", .boost = 1, .priority_ms = 300,
                      .n_keywords = 1, .keywords = (const char *const[]){"至急"}};
    match_rule_t b = {.name = "late", .boost = 1, .priority_ms = 7,
                      .n_keywords = 1, .keywords = (const char *const[]){"至急"}};
    cr_assert_eq(match_rule_add(m, &a), 0);
    cr_assert_eq(match_rule_add(m, &b), 0);
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "至急お願いします", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "urgent");
    cr_assert_eq(r.priority_ms, 307);
    cr_assert_eq(r.boosts, 2);
}

Test(match, public_and_provider_conditions)
{
    load_example();
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "x", 1, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "social-careful");
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "X", 1, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "social-careful");
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "x", 0, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "general", "a private X DM is not a public post");
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "line", 1, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "general");
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, NULL, 1, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "general");

    match_rule_t priv = {.name = "private", .queue = "p", .is_public = MATCH_NO};
    cr_assert_eq(match_rule_add(m, &priv), 0);
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "x", 0, NULL, "hello", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "p");
}

Test(match, channel_condition)
{
    match_rule_t ph = {.name = "phone", .queue = "voice", .channels = MATCH_CH(ROUTER_CH_PHONE)};
    match_rule_t es = {.name = "async", .queue = "async",
                       .channels = MATCH_CH(ROUTER_CH_EMAIL) | MATCH_CH(ROUTER_CH_SNS)};
    cr_assert_eq(match_rule_add(m, &ph), 0);
    cr_assert_eq(match_rule_add(m, &es), 0);
    const char *want[ROUTER_CHANNELS] = {[ROUTER_CH_CHAT] = "default", [ROUTER_CH_EMAIL] = "async",
                                         [ROUTER_CH_SNS] = "async", [ROUTER_CH_PHONE] = "voice"};
    for (int c = 0; c < ROUTER_CHANNELS; c++) {
        match_result_t r;
        cr_assert_eq(match_classify(m, c, NULL, 0, NULL, "", NULL, NULL, NULL, 0, &r), 0);
        cr_assert_str_eq(r.queue, want[c], "channel %d", c);
    }
    match_result_t r;
    cr_assert_eq(match_classify(m, 9, NULL, 0, NULL, "", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "default");
    cr_assert_eq(match_classify(m, -1, NULL, 0, NULL, "", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "default");
}

Test(match, locale_prefix)
{
    match_rule_t ja = {.name = "ja", .queue = "jp-desk", .locale = "ja"};
    match_rule_t enus = {.name = "en-us", .queue = "us-desk", .locale = "en-US"};
    cr_assert_eq(match_rule_add(m, &ja), 0);
    cr_assert_eq(match_rule_add(m, &enus), 0);
    struct { const char *loc, *q; } cases[] = {
        {"ja", "jp-desk"}, {"ja-JP", "jp-desk"}, {"JA_jp", "jp-desk"}, {"jam", "default"},
        {"en-US", "us-desk"}, {"en-us-x-y", "us-desk"}, {"en", "default"}, {"en-GB", "default"},
        {"", "default"}, {NULL, "default"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        match_result_t r;
        cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, cases[i].loc, "", NULL, NULL, NULL, 0, &r), 0);
        cr_assert_str_eq(r.queue, cases[i].q, "locale %s", cases[i].loc ? cases[i].loc : "(null)");
    }
}

Test(match, attribute_conditions)
{
    match_rule_t a = {.name = "corp-billing", .queue = "corp", .n_attrs = 2,
                      .attrs = {{"segment", "corporate"}, {"category", "billing"}}};
    cr_assert_eq(match_rule_add(m, &a), 0);
    const char *k[] = {"category", "x", "segment"}, *v[] = {"billing", "y", "corporate"};
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "", NULL, k, v, 3, &r), 0);
    cr_assert_str_eq(r.queue, "corp");
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "", NULL, k, v, 2, &r), 0);
    cr_assert_str_eq(r.queue, "default", "all attributes are required");
    const char *v2[] = {"Billing", "y", "corporate"};
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "", NULL, k, v2, 3, &r), 0);
    cr_assert_str_eq(r.queue, "default", "attribute values are byte-exact");
    const char *kn[] = {NULL, "segment", "category"}, *vn[] = {"z", "corporate", "billing"};
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "", NULL, kn, vn, 3, &r), 0);
    cr_assert_str_eq(r.queue, "corp");
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "", NULL, NULL, NULL, 1, &r), OMNI_EINVAL);
}

Test(match, category_label)
{
    match_rule_t a = {.name = "r1", .queue = "q1", .category = "lost-password",
                      .n_keywords = 1, .keywords = (const char *const[]){"password"}};
    cr_assert_eq(match_rule_add(m, &a), 0);
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, "password", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.category, "lost-password");
    cr_assert_str_eq(r.rule, "r1");
}

Test(match, scan_limit_64k)
{
    match_rule_t a = {.name = "kw", .queue = "hit", .n_keywords = 1, .keywords = (const char *const[]){"needle"}};
    cr_assert_eq(match_rule_add(m, &a), 0);
    size_t n = MATCH_SCAN_MAX + 100;
    char *text = malloc(n + 1);
    cr_assert_not_null(text);
    memset(text, 'a', n);
    text[n] = '\0';
    match_result_t r;
    memcpy(text + MATCH_SCAN_MAX - 6, "needle", 6); /* ends exactly at the limit: found */
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, text, NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "hit");
    memset(text, 'a', n);
    memcpy(text + MATCH_SCAN_MAX - 5, "needle", 6); /* crosses the limit: not scanned */
    cr_assert_eq(match_classify(m, ROUTER_CH_CHAT, NULL, 0, NULL, text, NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "default");
    free(text);
}

Test(match, limits_and_bad_rules)
{
    char name[16];
    match_rule_t ok = {.queue = "q"};
    for (int i = 0; i < MATCH_MAX_RULES; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        ok.name = name;
        cr_assert_eq(match_rule_add(m, &ok), 0);
    }
    ok.name = "one-too-many";
    cr_assert_eq(match_rule_add(m, &ok), OMNI_ETOOBIG);
    cr_assert_eq(match_rules_count(m), MATCH_MAX_RULES);
    match_rules_destroy(&m);
    cr_assert_eq(match_rules_new(&m), 0);

    const char *kws[MATCH_MAX_KEYWORDS + 1];
    for (int i = 0; i <= MATCH_MAX_KEYWORDS; i++) kws[i] = "k";
    match_rule_t r = {.name = "kw", .queue = "q", .keywords = kws, .n_keywords = MATCH_MAX_KEYWORDS};
    cr_assert_eq(match_rule_add(m, &r), 0);
    r.name = "kw2";
    r.n_keywords = MATCH_MAX_KEYWORDS + 1;
    cr_assert_eq(match_rule_add(m, &r), OMNI_ETOOBIG);

    char big[MATCH_KEYWORD_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *one[] = {big};
    r.keywords = one;
    r.n_keywords = 1;
    cr_assert_eq(match_rule_add(m, &r), OMNI_ETOOBIG);
    big[MATCH_KEYWORD_MAX] = '\0'; /* exactly at the limit: fine */
    cr_assert_eq(match_rule_add(m, &r), 0);

    const char *empty[] = {""};
    match_rule_t e = {.name = "e", .queue = "q", .keywords = empty, .n_keywords = 1};
    cr_assert_eq(match_rule_add(m, &e), OMNI_EINVAL);
    const char *nul[] = {NULL};
    e.keywords = nul;
    cr_assert_eq(match_rule_add(m, &e), OMNI_EINVAL);

    match_rule_t at = {.name = "at", .queue = "q", .n_attrs = MATCH_MAX_ATTRS + 1};
    cr_assert_eq(match_rule_add(m, &at), OMNI_ETOOBIG);
    at.n_attrs = 1;
    at.attrs[0] = (match_attr_t){"", "v"};
    cr_assert_eq(match_rule_add(m, &at), OMNI_EINVAL);

    match_rule_t bad[] = {
        {.queue = "q"},                                          /* no name */
        {.name = "", .queue = "q"},
        {.name = "noqueue"},                                     /* neither queue nor boost */
        {.name = "emptyq", .queue = ""},
        {.name = "ch", .queue = "q", .channels = 0x10},
        {.name = "pub", .queue = "q", .is_public = (match_tri_t)7},
        {.name = "prov", .queue = "q", .provider = "twitter"},
        {.name = "loc", .queue = "q", .locale = "j a"},
        {.name = "loc2", .queue = "q", .locale = "-ja"},
        {.name = "prio", .queue = "q", .priority_ms = MATCH_PRIORITY_MAX + 1},
        {.name = "prio2", .queue = "q", .priority_ms = -MATCH_PRIORITY_MAX - 1},
        {.name = "kw", .queue = "q"},                            /* duplicate name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(match_rule_add(m, &bad[i]), OMNI_EINVAL, "bad rule %zu", i);
    match_rule_t longq = {.name = "lq", .queue = "0123456789012345678901234567890123456789012345678"};
    cr_assert_eq(match_rule_add(m, &longq), OMNI_ETOOBIG);
    cr_assert_eq(match_rules_count(m), 2);

    cr_assert_eq(match_rule_add(NULL, &ok), OMNI_EINVAL);
    cr_assert_eq(match_rule_add(m, NULL), OMNI_EINVAL);
    cr_assert_eq(match_rules_new(NULL), OMNI_EINVAL);
    match_result_t res;
    cr_assert_eq(match_classify(NULL, 0, NULL, 0, NULL, "", NULL, NULL, NULL, 0, &res), OMNI_EINVAL);
    cr_assert_eq(match_classify(m, 0, NULL, 0, NULL, "", NULL, NULL, NULL, 0, NULL), OMNI_EINVAL);
    match_rules_destroy(NULL);
}

Test(match, add_copies_strings)
{
    char kw[16] = "refund", q[16] = "billing", n[16] = "b";
    const char *kws[] = {kw};
    match_rule_t r = {.name = n, .queue = q, .keywords = kws, .n_keywords = 1};
    cr_assert_eq(match_rule_add(m, &r), 0);
    strcpy(kw, "zzzz");
    strcpy(q, "zzzz");
    strcpy(n, "zzzz");
    match_result_t res;
    cr_assert_eq(match_classify(m, 0, NULL, 0, NULL, "a refund?", NULL, NULL, NULL, 0, &res), 0);
    cr_assert_str_eq(res.queue, "billing");
    cr_assert_str_eq(res.rule, "b");
}

Test(match, yaml_full_rule)
{
    const char *y =
        "routing:\n"
        "  rules:\n"
        "    - name: corp\n"
        "      queue: corp\n"
        "      category: corporate-billing\n"
        "      channels: [email, chat]\n"
        "      locale: ja\n"
        "      public: false\n"
        "      attributes: {segment: corporate}\n"
        "      keywords: [請求]\n"
        "      priority_ms: -5000\n"
        "    - name: line\n"
        "      queue: line\n"
        "      channels: sns\n"
        "      provider: line\n";
    cr_assert_eq(match_rules_load_yaml(m, write_file(y), err, sizeof(err)), 0, "%s", err);
    const char *k[] = {"segment"}, *v[] = {"corporate"};
    match_result_t r;
    cr_assert_eq(match_classify(m, ROUTER_CH_EMAIL, NULL, 0, "ja-JP", "請求について", NULL, k, v, 1, &r), 0);
    cr_assert_str_eq(r.queue, "corp");
    cr_assert_str_eq(r.category, "corporate-billing");
    cr_assert_eq(r.priority_ms, -5000);
    cr_assert_eq(match_classify(m, ROUTER_CH_PHONE, NULL, 0, "ja-JP", "請求について", NULL, k, v, 1, &r), 0);
    cr_assert_str_eq(r.queue, "default");
    cr_assert_eq(match_classify(m, ROUTER_CH_SNS, "line", 0, NULL, "", NULL, NULL, NULL, 0, &r), 0);
    cr_assert_str_eq(r.queue, "line");
}

Test(match, yaml_replaces_and_failure_keeps_old)
{
    load_example();
    const char *bad = "routing:\n  rules:\n    - name: a\n      queue: a\n      colour: red\n";
    cr_assert_eq(match_rules_load_yaml(m, write_file(bad), err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_eq(match_rules_count(m), 5, "a bad file changes nothing");
    expect("返金", "billing", 0);
    const char *good = "routing:\n  rules:\n    - name: only\n      queue: only\n      keywords: [xyz]\n";
    cr_assert_eq(match_rules_load_yaml(m, write_file(good), err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(match_rules_count(m), 1);
    expect("返金", "default", 0); /* the old rules and default_queue "general" are gone */
    expect("XYZ", "only", 0);
    cr_assert_eq(match_rules_load_yaml(m, "/nonexistent/rules.yaml", err, sizeof(err)), OMNI_EIO);
    cr_assert(strstr(err, "/nonexistent/rules.yaml: ") == err, "%s", err);
    cr_assert_eq(match_rules_load_yaml(m, "/tmp", err, sizeof(err)), OMNI_EIO);
}

/* Every error kind: the file, the line the problem is on, and a fragment of the message. */
Test(match, yaml_errors_have_file_line)
{
    static const struct {
        const char *yaml;
        int line;
        const char *msg;
    } cases[] = {
        {"routing: [1\n", 2, "did not find expected"},
        {"other: 1\n", 1, "unknown key 'other'"},
        {"routing:\n  default_queue: a\n  default_queue: b\n", 3, "duplicate key 'routing.default_queue'"},
        {"routing:\n  rulez: []\n", 2, "unknown key 'routing.rulez'"},
        {"routing: 5\n", 1, "'routing' must be a mapping"},
        {"routing:\n  rules: {a: 1}\n", 2, "'routing.rules' must be a list"},
        {"routing:\n  rules:\n    - just-a-string\n", 3, "must be a mapping"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      colour: red\n", 5, "unknown key 'routing.rules[0].colour'"},
        {"routing:\n  rules:\n    - name: a\n      name: b\n", 4, "duplicate key 'routing.rules[0].name'"},
        {"routing:\n  rules:\n    - queue: q\n", 3, "has no 'name'"},
        {"routing:\n  rules:\n    - name: a\n", 3, "needs a 'queue'"},
        {"routing:\n  rules:\n    - name: a\n      queue: [q]\n", 4, "must be a value, not a list"},
        {"routing:\n  rules:\n    - name: a\n      queue:\n", 4, "has no value"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      boost: maybe\n", 5, "must be true or false"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      public: 1\n", 5, "must be true or false"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      priority_ms: 1.5\n", 5, "must be an integer"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      priority_ms: 99999999999\n", 5, "must be an integer"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      channels: [chat, fax]\n", 5, "must be chat, email, sns or phone, not 'fax'"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      channels: {a: b}\n", 5, "must be a channel or a list"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      provider: twitter\n", 5, "must be line, messenger or x"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      locale: \"j a\"\n", 5, "language prefix"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      keywords: refund\n", 5, "must be a list"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      keywords:\n        - ok\n        - \"\"\n", 7, "empty keyword"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      keywords: []\n", 5, "must not be empty"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      keywords: [\"a\\0b\"]\n", 5, "NUL character"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      attributes: [a]\n", 5, "must be a mapping"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      attributes: {a: 1, b: 2, c: 3, d: 4, e: 5}\n", 5, "more than 4 attributes"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n    - name: a\n      queue: r\n", 5, "duplicate rule name"},
        {"routing:\n  rules:\n    - name: a\n      queue: 0123456789012345678901234567890123456789012345678\n", 4, "longer than 47 bytes"},
        {"routing:\n  rules: []\n---\nrouting: {}\n", 4, "only one YAML document"},
        {"- a\n", 1, "top level must be a mapping"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      keywords: [\"\xff\"]\n", 5, "invalid"},
        {"routing:\n  rules:\n    - name: a\n      queue: q\n      category: \"\"\n", 5, "must not be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_file(cases[i].yaml);
        char want[160];
        int rc = match_rules_load_yaml(m, path, err, sizeof(err));
        cr_assert_eq(rc, OMNI_ECONFIG, "case %zu: rc %d (%s)", i, rc, err);
        snprintf(want, sizeof(want), "%s:%d: ", path, cases[i].line);
        cr_assert(strncmp(err, want, strlen(want)) == 0, "case %zu: '%s', want prefix '%s'", i, err, want);
        cr_assert_not_null(strstr(err, cases[i].msg), "case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
        cr_assert_null(strchr(err, '\n'), "case %zu: one line", i);
        cr_assert_eq(match_rules_count(m), 0);
    }
}

Test(match, yaml_keyword_limits)
{
    char y[40000];
    int n = snprintf(y, sizeof(y), "routing:\n  rules:\n    - name: a\n      queue: q\n      keywords:\n");
    for (int i = 0; i <= MATCH_MAX_KEYWORDS; i++) n += snprintf(y + n, sizeof(y) - (size_t)n, "        - k%d\n", i);
    cr_assert_eq(match_rules_load_yaml(m, write_file(y), err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, ":70: "), "%s", err); /* the 65th keyword, on line 6 + 64 */
    cr_assert_not_null(strstr(err, "more than 64 keywords"), "%s", err);

    char kw[MATCH_KEYWORD_MAX + 2];
    memset(kw, 'x', sizeof(kw) - 1);
    kw[sizeof(kw) - 1] = '\0';
    snprintf(y, sizeof(y), "routing:\n  rules:\n    - name: a\n      queue: q\n      keywords: [%s]\n", kw);
    cr_assert_eq(match_rules_load_yaml(m, write_file(y), err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, ":5: "), "%s", err);
    cr_assert_not_null(strstr(err, "longer than 128 bytes"), "%s", err);

    n = snprintf(y, sizeof(y), "routing:\n  rules:\n");
    for (int i = 0; i <= MATCH_MAX_RULES; i++)
        n += snprintf(y + n, sizeof(y) - (size_t)n, "    - {name: r%d, queue: q}\n", i);
    cr_assert_eq(match_rules_load_yaml(m, write_file(y), err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, ":259: "), "%s", err);
    cr_assert_not_null(strstr(err, "more than 256 rules"), "%s", err);
    cr_assert_eq(match_rules_count(m), 0);
}

/* routecfg.c owns agents, calendars and queues in the same section: skipped here, not refused. */
Test(match, yaml_skips_routecfg_keys)
{
    const char *y = "routing:\n"
                    "  agents: {capacity: {chat: 2}}\n"
                    "  calendars: {c: {always_open: true}}\n"
                    "  queues:\n"
                    "    - name: q\n"
                    "  rules:\n"
                    "    - {name: a, queue: q, keywords: [xyz]}\n";
    cr_assert_eq(match_rules_load_yaml(m, write_file(y), err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(match_rules_count(m), 1);
    expect("xyz", "q", 0);
}

/* The node form routecfg.c uses: only the rules list, the default queue stays the caller's. */
Test(match, load_node)
{
    const char *y = "routing:\n"
                    "  rules:\n"
                    "    - {name: a, queue: q, keywords: [xyz]}\n"
                    "    - name: b\n"
                    "      queue: r\n"
                    "      colour: red\n";
    const char *path = write_file(y);
    yaml_document_t doc;
    yaml_node_t *root, *routing, *rules;

    cr_assert_eq(yamlfile_load(path, &doc, err, sizeof(err)), 0, "%s", err);
    root = yaml_document_get_root_node(&doc);
    routing = yaml_document_get_node(&doc, root->data.mapping.pairs.start->value);
    rules = yaml_document_get_node(&doc, routing->data.mapping.pairs.start->value);
    cr_assert_eq(match_rules_set_default(m, "kept"), 0);
    /* The whole list has a bad rule: nothing changes, the line is the bad key's. */
    cr_assert_eq(match_rules_load_node(m, &doc, rules, path, err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, ":6: unknown key 'routing.rules[1].colour'"), "%s", err);
    cr_assert_eq(match_rules_count(m), 0);
    /* Drop the bad rule by loading a one-item list built from the first. */
    int seq = yaml_document_add_sequence(&doc, NULL, YAML_BLOCK_SEQUENCE_STYLE);
    cr_assert_gt(seq, 0);
    cr_assert(yaml_document_append_sequence_item(&doc, seq, rules->data.sequence.items.start[0]));
    cr_assert_eq(match_rules_load_node(m, &doc, yaml_document_get_node(&doc, seq), path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(match_rules_count(m), 1);
    expect("xyz", "q", 0);
    expect("other", "kept", 0);
    /* No node: no rules. */
    cr_assert_eq(match_rules_load_node(m, &doc, NULL, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(match_rules_count(m), 0);
    expect("xyz", "kept", 0);
    cr_assert_eq(match_rules_load_node(NULL, &doc, NULL, path, err, sizeof(err)), OMNI_EINVAL);
    yaml_document_delete(&doc);
}
