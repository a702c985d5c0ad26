/* Queue matching (issue 3, "Queues"): decides which queue, category and priority offset an inbound
 * conversation gets, from ordered rules on channel, provider, visibility, locale, attributes and keywords.
 *
 * Evaluation. Rules are tried in the order they were added. The FIRST rule that has a queue and
 * whose conditions all hold picks the queue and the category, and its priority_ms is added.
 * Independently, every rule marked boost whose conditions hold adds its priority_ms (once, even if
 * it is also the rule that picked the queue), so "不正利用" raises priority whatever queue wins.
 * A boost rule without a queue never picks one. No picking rule -> the default queue ("default"
 * unless set), category and rule NULL.
 *
 * Conditions (all optional; an absent one always holds):
 *  - channels: bitmask of MATCH_CH(ROUTER_CH_*); a channel outside 0..3 matches only rules without it.
 *  - provider: "line", "messenger" or "x" (ASCII case-insensitive); a NULL/empty provider never matches.
 *  - is_public: MATCH_ANY, MATCH_YES or MATCH_NO.
 *  - locale: a language prefix on subtag boundaries, ASCII case-insensitive: "ja" matches "ja",
 *    "ja-JP", "JA_jp" but not "jam"; a NULL/empty locale never matches.
 *  - attrs: up to MATCH_MAX_ATTRS key=value pairs, all required, byte-exact.
 *  - keywords: matches if the text or the subject CONTAINS any keyword as a substring: ASCII letters
 *    compared case-insensitively, every other byte exactly. Byte-exact search of valid UTF-8 in
 *    valid UTF-8 can never match across a character boundary, so this is safe for Japanese; there is
 *    no word segmentation, so "ロック" also matches inside "ブロック" and "login" inside "blogin".
 *    Only the first MATCH_SCAN_MAX bytes of text and of subject are scanned (bounded cost per call).
 *
 * Cost: classification allocates nothing and does no I/O; it is O(sum over tried rules of
 * keywords x scanned bytes) in the worst case (naive search; rule sets are small). Strings in the
 * result are borrowed from the rules and stay valid until the rules are changed or destroyed.
 * Not thread-safe for writers; concurrent match_classify calls on unchanging rules are fine.
 */
#ifndef OMNI_MATCH_H
#define OMNI_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include <omni/omni.h>

#include "router.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MATCH_MAX_RULES 256
#define MATCH_MAX_KEYWORDS 64     /* per rule */
#define MATCH_KEYWORD_MAX 128     /* bytes, without the NUL */
#define MATCH_MAX_ATTRS 4         /* attribute conditions per rule */
#define MATCH_NAME_MAX ROUTER_NAME_MAX  /* rule/queue/category names incl. NUL: queues go to the router */
#define MATCH_ATTR_MAX 128        /* attribute key or value bytes, without the NUL */
#define MATCH_LOCALE_MAX 16       /* locale prefix incl. NUL */
#define MATCH_SCAN_MAX 65536      /* bytes of text (and of subject) searched for keywords */
#define MATCH_PRIORITY_MAX 2592000000LL /* |priority_ms| <= 30 days, so 256 summed never overflow */

#define MATCH_CH(ch) ((uint8_t)(1u << (ch)))   /* ch: ROUTER_CH_* */

typedef enum { MATCH_ANY = 0, MATCH_YES = 1, MATCH_NO = 2 } match_tri_t;

typedef struct {
    const char *key, *value;
} match_attr_t;

/* One rule as the caller describes it; match_rule_add copies everything. Zero-initialised fields
 * mean "no condition" / "no effect". */
typedef struct {
    const char *name;            /* required, unique */
    const char *queue;           /* queue it picks; NULL only for a boost rule */
    const char *category;        /* label reported with the pick; NULL: the rule name */
    uint8_t channels;            /* MATCH_CH() bits; 0 = any channel */
    const char *provider;        /* NULL = any */
    match_tri_t is_public;
    const char *locale;          /* language prefix; NULL = any */
    size_t n_attrs;
    match_attr_t attrs[MATCH_MAX_ATTRS];
    size_t n_keywords;
    const char *const *keywords; /* n_keywords non-empty UTF-8 strings */
    int boost;                   /* 1: adds priority_ms whenever it matches, whatever queue wins */
    int64_t priority_ms;         /* added to the task's priority offset */
} match_rule_t;

typedef struct {
    const char *queue;       /* never NULL */
    const char *category;    /* NULL when the default queue was used */
    const char *rule;        /* name of the picking rule; NULL for the default queue */
    int64_t priority_ms;     /* picking rule + every matching boost rule */
    unsigned boosts;         /* how many boost rules matched */
} match_result_t;

typedef struct match_rules match_rules_t;

int match_rules_new(match_rules_t **out);
void match_rules_destroy(match_rules_t **rules);

/* Copies the rule. OMNI_EINVAL: missing name, queue-less non-boost rule, empty keyword or attribute
 * key, bad channel bits / is_public / provider / locale, |priority_ms| too large, duplicate name.
 * OMNI_ETOOBIG: more than MATCH_MAX_RULES rules, MATCH_MAX_KEYWORDS keywords, MATCH_MAX_ATTRS
 * attributes, or a string longer than its limit. OMNI_ENOMEM. The rules are unchanged on error. */
int match_rule_add(match_rules_t *rules, const match_rule_t *rule);

/* Queue used when no rule picks one. OMNI_EINVAL (NULL/empty) / OMNI_ETOOBIG. */
int match_rules_set_default(match_rules_t *rules, const char *queue);

size_t match_rules_count(const match_rules_t *rules);

/* Reads a YAML file with one top-level key, routing: {default_queue, rules: [...]} (agents, calendars
 * and queues are allowed there and skipped: broker/routecfg.c checks them); rule keys are
 * name, queue, category, channels (a name or a list of chat/email/sns/phone), provider, public,
 * locale, attributes (a mapping), keywords (a list), boost, priority_ms. On success the file's
 * rules and default queue REPLACE the current ones; on any error nothing changes and err holds one
 * line "PATH:LINE: message". OMNI_EIO (cannot read), OMNI_ECONFIG (bad content), OMNI_ENOMEM. */
int match_rules_load_yaml(match_rules_t *rules, const char *path, char *err, size_t errlen);

struct yaml_document_s;
struct yaml_node_s;
/* The `routing.rules` list of a document the caller already loaded (broker/routecfg.c owns the
 * rest of `routing:`). node NULL or a YAML null = no rules. The rules are replaced on success and
 * unchanged on error, the default queue is kept; errors as match_rules_load_yaml, with path used
 * only in the message. */
int match_rules_load_node(match_rules_t *rules, struct yaml_document_s *doc, struct yaml_node_s *node,
                          const char *path, char *err, size_t errlen);

/* channel: ROUTER_CH_*; is_public: 0/1; provider, locale, text, subject may be NULL. attr_keys and
 * attr_values are n_attrs parallel arrays (NULL entries ignored). Always fills *out on success.
 * OMNI_EINVAL: rules or out NULL, or n_attrs > 0 with NULL arrays. */
int match_classify(const match_rules_t *rules, int channel, const char *provider, int is_public,
                   const char *locale, const char *text, const char *subject,
                   const char *const *attr_keys, const char *const *attr_values, size_t n_attrs,
                   match_result_t *out);

#ifdef __cplusplus
}
#endif

#endif
