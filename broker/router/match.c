/* Queue matching: ordered rules -> queue, category and priority offset for a new conversation.
 * Rules are copied and validated when added (or loaded from YAML); classification never allocates. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "match.h"
#include "yamlfile.h"

#define MATCH_PROVIDER_MAX 16

typedef struct {
    char name[MATCH_NAME_MAX], queue[MATCH_NAME_MAX], category[MATCH_NAME_MAX];
    char provider[MATCH_PROVIDER_MAX], locale[MATCH_LOCALE_MAX];
    int has_queue, boost;
    uint8_t channels;
    match_tri_t is_public;
    int64_t priority_ms;
    size_t n_attrs;
    char akey[MATCH_MAX_ATTRS][MATCH_ATTR_MAX + 1], aval[MATCH_MAX_ATTRS][MATCH_ATTR_MAX + 1];
    size_t n_keywords;
    uint16_t kw_off[MATCH_MAX_KEYWORDS]; /* into kw_buf: 64 x 129 bytes fits in 16 bits */
    uint8_t kw_len[MATCH_MAX_KEYWORDS];
    char *kw_buf;                        /* keywords with ASCII folded to lower case, NUL-separated */
} match_stored_t;

struct match_rules {
    char default_queue[MATCH_NAME_MAX];
    size_t n;
    match_stored_t *r[MATCH_MAX_RULES];
};

static const char *const match_providers[] = {"line", "messenger", "x"};
static const char *const match_channel_names[ROUTER_CHANNELS] = {
    [ROUTER_CH_CHAT] = "chat", [ROUTER_CH_EMAIL] = "email", [ROUTER_CH_SNS] = "sns",
    [ROUTER_CH_PHONE] = "phone"};

static unsigned char match_fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Copies s into a fixed field: OMNI_EINVAL when required and NULL/empty, OMNI_ETOOBIG if too long. */
static int match_copy(char *dst, size_t cap, const char *s, int required)
{
    size_t n;

    if (!s || !*s) {
        dst[0] = '\0';
        return required ? OMNI_EINVAL : 0;
    }
    n = strnlen(s, cap);
    if (n >= cap) return OMNI_ETOOBIG;
    memcpy(dst, s, n + 1);
    return 0;
}

static void match_stored_free(match_stored_t *s)
{
    if (!s) return;
    free(s->kw_buf);
    free(s);
}

int match_rules_new(match_rules_t **out)
{
    match_rules_t *m;

    if (!out) return OMNI_EINVAL;
    *out = NULL;
    if (!(m = calloc(1, sizeof(*m)))) return OMNI_ENOMEM;
    strcpy(m->default_queue, "default");
    *out = m;
    return 0;
}

static void match_rules_clear(match_rules_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        match_stored_free(m->r[i]);
        m->r[i] = NULL;
    }
    m->n = 0;
}

void match_rules_destroy(match_rules_t **rules)
{
    if (!rules || !*rules) return;
    match_rules_clear(*rules);
    free(*rules);
    *rules = NULL;
}

size_t match_rules_count(const match_rules_t *rules)
{
    return rules ? rules->n : 0;
}

int match_rules_set_default(match_rules_t *rules, const char *queue)
{
    char tmp[MATCH_NAME_MAX];
    int rc;

    if (!rules) return OMNI_EINVAL;
    if ((rc = match_copy(tmp, sizeof(tmp), queue, 1)) != 0) return rc;
    memcpy(rules->default_queue, tmp, sizeof(tmp));
    return 0;
}

/* Validates and copies a rule; *why names the problem for the YAML loader's message. */
static int match_build(const match_rules_t *m, const match_rule_t *r, match_stored_t **out,
                       const char **why)
{
    match_stored_t *s;
    size_t total = 0, i;
    int rc;

    *out = NULL;
    *why = "invalid rule";
    if (m->n >= MATCH_MAX_RULES) {
        *why = "too many rules";
        return OMNI_ETOOBIG;
    }
    if (r->n_keywords > MATCH_MAX_KEYWORDS) {
        *why = "too many keywords";
        return OMNI_ETOOBIG;
    }
    if (r->n_attrs > MATCH_MAX_ATTRS) {
        *why = "too many attributes";
        return OMNI_ETOOBIG;
    }
    if (r->n_keywords > 0 && !r->keywords) return OMNI_EINVAL;
    if (r->channels & ~(uint8_t)((1u << ROUTER_CHANNELS) - 1)) {
        *why = "unknown channel bit";
        return OMNI_EINVAL;
    }
    if (r->is_public != MATCH_ANY && r->is_public != MATCH_YES && r->is_public != MATCH_NO) {
        *why = "bad is_public";
        return OMNI_EINVAL;
    }
    if (r->priority_ms > MATCH_PRIORITY_MAX || r->priority_ms < -MATCH_PRIORITY_MAX) {
        *why = "priority_ms out of range";
        return OMNI_EINVAL;
    }
    if (!r->queue && !r->boost) {
        *why = "a rule needs a queue unless it is a boost";
        return OMNI_EINVAL;
    }
    for (i = 0; i < r->n_keywords; i++) {
        size_t n = r->keywords[i] ? strnlen(r->keywords[i], MATCH_KEYWORD_MAX + 1) : 0;
        if (n == 0) {
            *why = "empty keyword";
            return OMNI_EINVAL;
        }
        if (n > MATCH_KEYWORD_MAX) {
            *why = "keyword too long";
            return OMNI_ETOOBIG;
        }
        total += n + 1;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        *why = "out of memory";
        return OMNI_ENOMEM;
    }
    *why = "name missing or too long";
    if ((rc = match_copy(s->name, sizeof(s->name), r->name, 1)) != 0) goto fail;
    *why = "queue empty or too long";
    if (r->queue && (rc = match_copy(s->queue, sizeof(s->queue), r->queue, 1)) != 0) goto fail;
    *why = "category too long";
    if ((rc = match_copy(s->category, sizeof(s->category), r->category ? r->category : r->name, 0)) != 0)
        goto fail;
    *why = "provider must be line, messenger or x";
    rc = OMNI_EINVAL;
    if (r->provider) {
        for (i = 0; i < sizeof(match_providers) / sizeof(match_providers[0]); i++)
            if (strcasecmp(r->provider, match_providers[i]) == 0) break;
        if (i == sizeof(match_providers) / sizeof(match_providers[0])) goto fail;
        strcpy(s->provider, match_providers[i]);
    }
    *why = "locale must be a language prefix such as ja or en-US";
    if (r->locale) {
        if ((rc = match_copy(s->locale, sizeof(s->locale), r->locale, 1)) != 0) goto fail;
        rc = OMNI_EINVAL;
        for (const char *p = s->locale; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  ((c == '-' || c == '_') && p != s->locale)))
                goto fail;
        }
    }
    for (i = 0; i < r->n_attrs; i++) {
        *why = "attribute key empty or too long";
        if ((rc = match_copy(s->akey[i], sizeof(s->akey[i]), r->attrs[i].key, 1)) != 0) goto fail;
        *why = "attribute value too long";
        if ((rc = match_copy(s->aval[i], sizeof(s->aval[i]), r->attrs[i].value, 0)) != 0) goto fail;
    }
    for (i = 0; i < m->n; i++) {
        if (strcmp(m->r[i]->name, s->name) == 0) {
            *why = "duplicate rule name";
            rc = OMNI_EINVAL;
            goto fail;
        }
    }
    if (total && !(s->kw_buf = malloc(total))) {
        *why = "out of memory";
        rc = OMNI_ENOMEM;
        goto fail;
    }
    /* Fold once here so the search folds only the text side. */
    for (i = 0, total = 0; i < r->n_keywords; i++) {
        size_t n = strlen(r->keywords[i]);
        s->kw_off[i] = (uint16_t)total;
        s->kw_len[i] = (uint8_t)n;
        for (size_t j = 0; j < n; j++) s->kw_buf[total + j] = (char)match_fold((unsigned char)r->keywords[i][j]);
        s->kw_buf[total + n] = '\0';
        total += n + 1;
    }
    s->n_keywords = r->n_keywords;
    s->n_attrs = r->n_attrs;
    s->has_queue = r->queue != NULL;
    s->boost = r->boost != 0;
    s->channels = r->channels;
    s->is_public = r->is_public;
    s->priority_ms = r->priority_ms;
    *out = s;
    *why = NULL;
    return 0;
fail:
    match_stored_free(s);
    return rc;
}

int match_rule_add(match_rules_t *rules, const match_rule_t *rule)
{
    match_stored_t *s;
    const char *why;
    int rc;

    if (!rules || !rule) return OMNI_EINVAL;
    if ((rc = match_build(rules, rule, &s, &why)) != 0) return rc;
    rules->r[rules->n++] = s;
    return 0;
}

/* ---- classification ---- */

/* Does hay[0..n) contain kw (already folded), folding ASCII letters of hay? */
static int match_contains(const char *hay, size_t n, const char *kw, size_t kl)
{
    const unsigned char *h = (const unsigned char *)hay, *k = (const unsigned char *)kw;
    unsigned char first = k[0];
    int letter = first >= 'a' && first <= 'z';

    if (kl > n) return 0;
    for (size_t i = 0, last = n - kl; i <= last; i++) {
        if (!letter) {
            /* Non-letter first byte (every Japanese keyword): let memchr skip ahead. */
            const unsigned char *p = memchr(h + i, first, last - i + 1);
            if (!p) return 0;
            i = (size_t)(p - h);
        } else if (match_fold(h[i]) != first) {
            continue;
        }
        size_t j = 1;
        while (j < kl && match_fold(h[i + j]) == k[j]) j++;
        if (j == kl) return 1;
    }
    return 0;
}

/* Language prefix on a subtag boundary: "ja" matches "ja-JP" but not "jam". */
static int match_locale(const char *want, const char *have)
{
    size_t n = strlen(want);

    if (!have || strncasecmp(want, have, n) != 0) return 0;
    return have[n] == '\0' || have[n] == '-' || have[n] == '_';
}

typedef struct {
    int channel, is_public;
    const char *provider, *locale, *text, *subject;
    size_t text_len, subject_len;
    const char *const *keys, *const *values;
    size_t n_attrs;
} match_in_t;

static int match_rule_holds(const match_stored_t *s, const match_in_t *in)
{
    if (s->channels) {
        if (in->channel < 0 || in->channel >= ROUTER_CHANNELS) return 0;
        if (!(s->channels & MATCH_CH(in->channel))) return 0;
    }
    if (s->provider[0] && (!in->provider || strcasecmp(s->provider, in->provider) != 0)) return 0;
    if (s->is_public == MATCH_YES && !in->is_public) return 0;
    if (s->is_public == MATCH_NO && in->is_public) return 0;
    if (s->locale[0] && !match_locale(s->locale, in->locale)) return 0;
    for (size_t a = 0; a < s->n_attrs; a++) {
        size_t i;
        for (i = 0; i < in->n_attrs; i++)
            if (in->keys[i] && in->values[i] && strcmp(in->keys[i], s->akey[a]) == 0 &&
                strcmp(in->values[i], s->aval[a]) == 0)
                break;
        if (i == in->n_attrs) return 0;
    }
    /* Keywords last: the only condition whose cost grows with the message. */
    if (s->n_keywords == 0) return 1;
    for (size_t k = 0; k < s->n_keywords; k++) {
        const char *kw = s->kw_buf + s->kw_off[k];
        if (match_contains(in->text, in->text_len, kw, s->kw_len[k]) ||
            match_contains(in->subject, in->subject_len, kw, s->kw_len[k]))
            return 1;
    }
    return 0;
}

int match_classify(const match_rules_t *rules, int channel, const char *provider, int is_public,
                   const char *locale, const char *text, const char *subject,
                   const char *const *attr_keys, const char *const *attr_values, size_t n_attrs,
                   match_result_t *out)
{
    match_in_t in = {
        .channel = channel, .is_public = is_public != 0, .provider = provider, .locale = locale,
        .text = text ? text : "", .subject = subject ? subject : "",
        .keys = attr_keys, .values = attr_values, .n_attrs = n_attrs,
    };
    const match_stored_t *pick = NULL;

    if (!rules || !out || (n_attrs > 0 && (!attr_keys || !attr_values))) return OMNI_EINVAL;
    /* strnlen bounds the scan even for a huge (or unterminated past 64 KiB) buffer. */
    in.text_len = strnlen(in.text, MATCH_SCAN_MAX);
    in.subject_len = strnlen(in.subject, MATCH_SCAN_MAX);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < rules->n; i++) {
        const match_stored_t *s = rules->r[i];
        int counts = s->boost || (!pick && s->has_queue);
        /* Once a queue is picked only boost rules can still change the result: skip the rest. */
        if (!counts || !match_rule_holds(s, &in)) continue;
        out->priority_ms += s->priority_ms;
        if (s->boost) out->boosts++;
        if (!pick && s->has_queue) pick = s;
    }
    if (pick) {
        out->queue = pick->queue;
        out->category = pick->category;
        out->rule = pick->name;
    } else {
        out->queue = rules->default_queue;
    }
    return 0;
}

/* ---- YAML ---- */

typedef struct {
    yaml_document_t *doc;
    const char *path;
    char *err;
    size_t errlen;
} match_ctx_t;

static int match_err(match_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "PATH:LINE: message" and returns OMNI_ECONFIG, so callers can `return match_err(...)`. */
static int match_err(match_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yamlfile_verr(ctx->err, ctx->errlen, ctx->path, node, fmt, ap);
    va_end(ap);
    return OMNI_ECONFIG;
}

/* A scalar with a value; an embedded NUL would silently cut a keyword short, so it is refused. */
static int match_scalar(match_ctx_t *ctx, const yaml_node_t *node, const char *name, const char **out)
{
    if (node->type != YAML_SCALAR_NODE)
        return match_err(ctx, node, "'%s' must be a value, not %s", name, yamlfile_kind(node));
    if (yamlfile_is_null(node)) return match_err(ctx, node, "'%s' has no value", name);
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
        return match_err(ctx, node, "'%s' contains a NUL character", name);
    *out = (const char *)node->data.scalar.value;
    return 0;
}

static int match_bool(match_ctx_t *ctx, const yaml_node_t *node, const char *name, int *out)
{
    const char *v;
    char shown[65];

    if (match_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) *out = 1;
    else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) *out = 0;
    else return match_err(ctx, node, "'%s' must be true or false, not '%s'", name, yamlfile_shown(v, shown, sizeof(shown)));
    return 0;
}

static int match_ms(match_ctx_t *ctx, const yaml_node_t *node, const char *name, int64_t *out)
{
    const char *v, *p;
    char shown[65];
    int64_t x = 0;

    if (match_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    p = v + (*v == '-');
    if (*p < '0' || *p > '9') goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        x = x * 10 + (*p - '0');
        if (x > MATCH_PRIORITY_MAX) goto bad;
    }
    if (*p) goto bad;
    *out = *v == '-' ? -x : x;
    return 0;
bad:
    return match_err(ctx, node, "'%s' must be an integer within +/-%lld, not '%s'", name,
                     (long long)MATCH_PRIORITY_MAX, yamlfile_shown(v, shown, sizeof(shown)));
}

/* A name field with the length limit the router will apply later. */
static int match_name(match_ctx_t *ctx, const yaml_node_t *node, const char *name, size_t cap,
                      const char **out)
{
    if (match_scalar(ctx, node, name, out) != 0) return OMNI_ECONFIG;
    if (!**out) return match_err(ctx, node, "'%s' must not be empty", name);
    if (strlen(*out) >= cap) return match_err(ctx, node, "'%s' is longer than %zu bytes", name, cap - 1);
    return 0;
}

static int match_channel(match_ctx_t *ctx, const yaml_node_t *item, const char *name, uint8_t *out)
{
    const char *v;
    char shown[65];

    if (match_scalar(ctx, item, name, &v) != 0) return OMNI_ECONFIG;
    for (int c = 0; c < ROUTER_CHANNELS; c++) {
        if (strcmp(v, match_channel_names[c]) == 0) {
            *out |= MATCH_CH(c);
            return 0;
        }
    }
    return match_err(ctx, item, "'%s' must be chat, email, sns or phone, not '%s'", name,
                     yamlfile_shown(v, shown, sizeof(shown)));
}

/* "channels: sns" is shorthand for a one-item list. */
static int match_channels(match_ctx_t *ctx, const yaml_node_t *node, const char *name, uint8_t *out)
{
    *out = 0;
    if (node->type == YAML_SCALAR_NODE) return match_channel(ctx, node, name, out);
    if (node->type != YAML_SEQUENCE_NODE)
        return match_err(ctx, node, "'%s' must be a channel or a list of channels, not %s", name, yamlfile_kind(node));
    if (node->data.sequence.items.start == node->data.sequence.items.top)
        return match_err(ctx, node, "'%s' must not be empty", name);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
        if (match_channel(ctx, yaml_document_get_node(ctx->doc, *it), name, out) != 0) return OMNI_ECONFIG;
    return 0;
}

static int match_keywords(match_ctx_t *ctx, const yaml_node_t *node, const char *name,
                          const char **kw, size_t *n)
{
    *n = 0;
    if (node->type != YAML_SEQUENCE_NODE)
        return match_err(ctx, node, "'%s' must be a list, not %s", name, yamlfile_kind(node));
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
        const char *v;
        if (*n == MATCH_MAX_KEYWORDS)
            return match_err(ctx, item, "'%s' holds more than %d keywords", name, MATCH_MAX_KEYWORDS);
        if (match_scalar(ctx, item, name, &v) != 0) return OMNI_ECONFIG;
        if (!*v) return match_err(ctx, item, "'%s' has an empty keyword", name);
        if (strlen(v) > MATCH_KEYWORD_MAX)
            return match_err(ctx, item, "'%s' has a keyword longer than %d bytes", name, MATCH_KEYWORD_MAX);
        kw[(*n)++] = v;
    }
    if (*n == 0) return match_err(ctx, node, "'%s' must not be empty", name);
    return 0;
}

static int match_attrs(match_ctx_t *ctx, const yaml_node_t *node, const char *name, match_rule_t *r)
{
    if (node->type != YAML_MAPPING_NODE)
        return match_err(ctx, node, "'%s' must be a mapping, not %s", name, yamlfile_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const char *k, *v;
        if (r->n_attrs == MATCH_MAX_ATTRS)
            return match_err(ctx, kn, "'%s' holds more than %d attributes", name, MATCH_MAX_ATTRS);
        if (match_scalar(ctx, kn, name, &k) != 0 || match_scalar(ctx, vn, name, &v) != 0) return OMNI_ECONFIG;
        if (!*k) return match_err(ctx, kn, "'%s' has an empty key", name);
        if (strlen(k) > MATCH_ATTR_MAX || strlen(v) > MATCH_ATTR_MAX)
            return match_err(ctx, kn, "'%s' key or value longer than %d bytes", name, MATCH_ATTR_MAX);
        r->attrs[r->n_attrs].key = k;
        r->attrs[r->n_attrs].value = v;
        r->n_attrs++;
    }
    return 0;
}

/* Duplicate keys: libyaml keeps both and the last would silently win. */
static int match_dup_key(match_ctx_t *ctx, const yaml_node_t *map, const yaml_node_pair_t *p, const char *where)
{
    yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);

    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *qn = yaml_document_get_node(ctx->doc, q->key);
        if (qn->type == YAML_SCALAR_NODE && kn->type == YAML_SCALAR_NODE &&
            strcmp((const char *)qn->data.scalar.value, (const char *)kn->data.scalar.value) == 0)
            return match_err(ctx, kn, "duplicate key '%s%s' (first on line %zu)", where,
                             (const char *)kn->data.scalar.value, (size_t)qn->start_mark.line + 1);
    }
    return 0;
}

static int match_key(match_ctx_t *ctx, const yaml_node_t *kn, const char **key)
{
    *key = "";
    if (kn->type != YAML_SCALAR_NODE) return match_err(ctx, kn, "a key must be a name, not %s", yamlfile_kind(kn));
    *key = (const char *)kn->data.scalar.value;
    return 0;
}

static int match_load_rule(match_ctx_t *ctx, match_rules_t *dst, const yaml_node_t *node, size_t idx)
{
    const char *kw[MATCH_MAX_KEYWORDS];
    match_rule_t r = {0};
    char where[40], name[40 + 65], shown[65];
    const char *why;
    match_stored_t *s;
    int rc;

    snprintf(where, sizeof(where), "routing.rules[%zu].", idx);
    if (node->type != YAML_MAPPING_NODE)
        return match_err(ctx, node, "'routing.rules[%zu]' must be a mapping, not %s", idx, yamlfile_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const char *key, *v;
        int b;

        if (match_key(ctx, kn, &key) != 0 || match_dup_key(ctx, node, p, where) != 0) return OMNI_ECONFIG;
        snprintf(name, sizeof(name), "%s%s", where, yamlfile_shown(key, shown, sizeof(shown)));
        if (strcmp(key, "name") == 0) rc = match_name(ctx, vn, name, MATCH_NAME_MAX, &r.name);
        else if (strcmp(key, "queue") == 0) rc = match_name(ctx, vn, name, MATCH_NAME_MAX, &r.queue);
        else if (strcmp(key, "category") == 0) rc = match_name(ctx, vn, name, MATCH_NAME_MAX, &r.category);
        else if (strcmp(key, "channels") == 0) rc = match_channels(ctx, vn, name, &r.channels);
        else if (strcmp(key, "provider") == 0) {
            if ((rc = match_scalar(ctx, vn, name, &r.provider)) == 0 && strcmp(r.provider, "line") != 0 &&
                strcmp(r.provider, "messenger") != 0 && strcmp(r.provider, "x") != 0)
                rc = match_err(ctx, vn, "'%s' must be line, messenger or x, not '%s'", name,
                               yamlfile_shown(r.provider, shown, sizeof(shown)));
        } else if (strcmp(key, "public") == 0) {
            if ((rc = match_bool(ctx, vn, name, &b)) == 0) r.is_public = b ? MATCH_YES : MATCH_NO;
        } else if (strcmp(key, "locale") == 0) {
            if ((rc = match_name(ctx, vn, name, MATCH_LOCALE_MAX, &r.locale)) == 0) {
                for (v = r.locale; *v; v++) {
                    unsigned char c = (unsigned char)*v;
                    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          ((c == '-' || c == '_') && v != r.locale))) {
                        rc = match_err(ctx, vn, "'%s' must be a language prefix such as ja or en-US, not '%s'",
                                       name, yamlfile_shown(r.locale, shown, sizeof(shown)));
                        break;
                    }
                }
            }
        } else if (strcmp(key, "attributes") == 0) rc = match_attrs(ctx, vn, name, &r);
        else if (strcmp(key, "keywords") == 0) rc = match_keywords(ctx, vn, name, kw, &r.n_keywords);
        else if (strcmp(key, "boost") == 0) rc = match_bool(ctx, vn, name, &r.boost);
        else if (strcmp(key, "priority_ms") == 0) rc = match_ms(ctx, vn, name, &r.priority_ms);
        else rc = match_err(ctx, kn, "unknown key '%s'", name);
        if (rc) return rc;
    }
    r.keywords = kw;
    if (!r.name) return match_err(ctx, node, "'routing.rules[%zu]' has no 'name'", idx);
    if (!r.queue && !r.boost)
        return match_err(ctx, node, "rule '%s' needs a 'queue' (or 'boost: true')", yamlfile_shown(r.name, shown, sizeof(shown)));
    if ((rc = match_build(dst, &r, &s, &why)) != 0) {
        if (rc == OMNI_ENOMEM) {
            match_err(ctx, NULL, "out of memory");
            return rc;
        }
        return match_err(ctx, node, "rule '%s': %s", yamlfile_shown(r.name, shown, sizeof(shown)), why);
    }
    dst->r[dst->n++] = s;
    return 0;
}

static int match_load_rules(match_ctx_t *ctx, match_rules_t *dst, const yaml_node_t *vn)
{
    size_t idx = 0;
    int rc;

    if (yamlfile_is_null(vn)) return 0;
    if (vn->type != YAML_SEQUENCE_NODE)
        return match_err(ctx, vn, "'routing.rules' must be a list, not %s", yamlfile_kind(vn));
    for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
        if (idx == MATCH_MAX_RULES)
            return match_err(ctx, item, "'routing.rules' holds more than %d rules", MATCH_MAX_RULES);
        if ((rc = match_load_rule(ctx, dst, item, idx)) != 0) return rc;
    }
    return 0;
}

static int match_load_routing(match_ctx_t *ctx, match_rules_t *dst, const yaml_node_t *node)
{
    if (yamlfile_is_null(node)) return 0;
    if (node->type != YAML_MAPPING_NODE)
        return match_err(ctx, node, "'routing' must be a mapping, not %s", yamlfile_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const char *key, *v;
        char shown[65];
        int rc;

        if (match_key(ctx, kn, &key) != 0 || match_dup_key(ctx, node, p, "routing.") != 0) return OMNI_ECONFIG;
        if (strcmp(key, "default_queue") == 0) {
            if ((rc = match_name(ctx, vn, "routing.default_queue", MATCH_NAME_MAX, &v)) != 0) return rc;
            strcpy(dst->default_queue, v);
        } else if (strcmp(key, "rules") == 0) {
            if ((rc = match_load_rules(ctx, dst, vn)) != 0) return rc;
        } else if (strcmp(key, "agents") != 0 && strcmp(key, "calendars") != 0 && strcmp(key, "queues") != 0) {
            /* agents, calendars and queues share the section but are broker/routecfg.c's to check. */
            return match_err(ctx, kn, "unknown key 'routing.%s'", yamlfile_shown(key, shown, sizeof(shown)));
        }
    }
    return 0;
}

/* Swaps contents so the old rules are freed with the scratch set. */
static void match_rules_swap(match_rules_t *a, match_rules_t *b)
{
    match_rules_t t = *a;
    *a = *b;
    *b = t;
}

int match_rules_load_node(match_rules_t *rules, struct yaml_document_s *doc, struct yaml_node_s *node,
                          const char *path, char *err, size_t errlen)
{
    match_ctx_t ctx = {.doc = doc, .path = path, .err = err, .errlen = errlen};
    match_rules_t *tmp = NULL;
    int rc;

    if (err && errlen) err[0] = '\0';
    if (!rules || !doc || !path) return OMNI_EINVAL;
    if ((rc = match_rules_new(&tmp)) != 0) {
        match_err(&ctx, NULL, "out of memory");
        goto out;
    }
    if (node && (rc = match_load_rules(&ctx, tmp, node)) != 0) goto out;
    memcpy(tmp->default_queue, rules->default_queue, sizeof(tmp->default_queue));
    match_rules_swap(rules, tmp);
out:
    match_rules_destroy(&tmp);
    return rc;
}

int match_rules_load_yaml(match_rules_t *rules, const char *path, char *err, size_t errlen)
{
    char scratch[8];
    match_ctx_t ctx = {.path = path, .err = err, .errlen = errlen};
    match_rules_t *tmp = NULL;
    yaml_document_t doc;
    int rc;
    yaml_node_t *root;

    if (err && errlen) err[0] = '\0';
    if (!rules || !path) return OMNI_EINVAL;
    if ((rc = yamlfile_load(path, &doc, err && errlen ? err : scratch, err && errlen ? errlen : sizeof(scratch))))
        return rc;
    ctx.doc = &doc;
    /* Load into a scratch set so a bad file leaves the live rules untouched. */
    if ((rc = match_rules_new(&tmp)) != 0) {
        match_err(&ctx, NULL, "out of memory");
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root || yamlfile_is_null(root)) {
        rc = match_err(&ctx, NULL, "no 'routing' section");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = match_err(&ctx, root, "the top level must be a mapping of keys, not %s", yamlfile_kind(root));
        goto out;
    }
    int seen = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
        const char *key;
        char shown[65];
        if ((rc = match_key(&ctx, kn, &key)) != 0 || (rc = match_dup_key(&ctx, root, p, "")) != 0) goto out;
        if (strcmp(key, "routing") != 0) {
            rc = match_err(&ctx, kn, "unknown key '%s'", yamlfile_shown(key, shown, sizeof(shown)));
            goto out;
        }
        seen = 1;
        if ((rc = match_load_routing(&ctx, tmp, yaml_document_get_node(&doc, p->value))) != 0) goto out;
    }
    if (!seen) {
        rc = match_err(&ctx, root, "no 'routing' section");
        goto out;
    }
    match_rules_swap(rules, tmp);
out:
    yaml_document_delete(&doc);
    match_rules_destroy(&tmp);
    return rc;
}
