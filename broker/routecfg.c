/* The `routing:` section of the broker config: queues, business-hours calendars, agent defaults
 * and the match rules, read and cross-checked once at start-up, then applied to a fresh router. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include <omni/omni.h>

#include "routecfg.h"
#include "yamlfile.h"

#define ROUTECFG_MS_MAX 2592000000LL   /* 30 days: any longer duration or priority is a typo */
#define ROUTECFG_CAPACITY_MAX 100      /* slots per channel */
#define ROUTECFG_MISSED_MAX 1000
#define ROUTECFG_AGENTS_MAX 100000     /* the router reserves agents x queues x channels pool slots */
#define ROUTECFG_TASKS_MAX 10000000
#define ROUTECFG_ROOM_SKILLS 256       /* skills agents may bring at login beyond the queues' own */
#define ROUTECFG_ROOM_TEAMS 64
#define ROUTECFG_PATH 160              /* "routing.queues[3].sla_ms.chat" in messages */
#define ROUTECFG_ALL_CHANNELS ((uint8_t)((1u << ROUTER_CHANNELS) - 1))

static const char *const routecfg_channel_names[ROUTER_CHANNELS] = {
    [ROUTER_CH_CHAT] = "chat", [ROUTER_CH_EMAIL] = "email", [ROUTER_CH_SNS] = "sns",
    [ROUTER_CH_PHONE] = "phone"};

static const struct {
    const char *name;
    router_strategy_t strategy;
} routecfg_strategies[] = {
    {"longest_idle", ROUTER_LONGEST_IDLE},
    {"least_occupancy", ROUTER_LEAST_OCCUPANCY},
    {"round_robin", ROUTER_ROUND_ROBIN},
    {"fewest_assigned", ROUTER_FEWEST_ASSIGNED},
};

/* One routecfg_load call: where messages point, and what later cross-checks need. */
typedef struct {
    yaml_document_t *doc;
    const char *path;
    char *err;
    size_t errlen;
    routecfg_t *rc;
    yaml_node_t *overflow_node[ROUTECFG_MAX_QUEUES]; /* each queue's overflow.queue value */
} routecfg_ctx_t;

static int routecfg_err(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "PATH:LINE: message" and returns OMNI_ECONFIG, so callers can `return routecfg_err(...)`. */
static int routecfg_err(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yamlfile_verr(ctx->err, ctx->errlen, ctx->path, node, fmt, ap);
    va_end(ap);
    return OMNI_ECONFIG;
}

static int routecfg_nomem(routecfg_ctx_t *ctx)
{
    if (ctx->err && ctx->errlen) snprintf(ctx->err, ctx->errlen, "%s: out of memory", ctx->path);
    return OMNI_ENOMEM;
}

static yaml_node_t *routecfg_node(routecfg_ctx_t *ctx, int id)
{
    return yaml_document_get_node(ctx->doc, id);
}

/* A scalar with a value; an embedded NUL would silently cut a name short, so it is refused. */
static int routecfg_scalar(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, const char **out)
{
    if (node->type != YAML_SCALAR_NODE)
        return routecfg_err(ctx, node, "'%s' must be a value, not %s", name, yamlfile_kind(node));
    if (yamlfile_is_null(node)) return routecfg_err(ctx, node, "'%s' has no value", name);
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
        return routecfg_err(ctx, node, "'%s' contains a NUL character", name);
    *out = (const char *)node->data.scalar.value;
    return 0;
}

/* Names end up in logs, stream events and omnictl tables: one line, bounded. */
static int routecfg_name_ok(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, const char *v)
{
    if (!*v) return routecfg_err(ctx, node, "'%s' must not be empty", name);
    if (strlen(v) >= ROUTER_NAME_MAX)
        return routecfg_err(ctx, node, "'%s' is longer than %d bytes", name, ROUTER_NAME_MAX - 1);
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return routecfg_err(ctx, node, "'%s' must not contain control characters", name);
    return 0;
}

static int routecfg_name(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, char out[ROUTER_NAME_MAX])
{
    const char *v;

    if (routecfg_scalar(ctx, node, name, &v) != 0 || routecfg_name_ok(ctx, node, name, v) != 0) return OMNI_ECONFIG;
    strcpy(out, v);
    return 0;
}

static int routecfg_int(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, int64_t min,
                        int64_t max, int64_t *out)
{
    const char *v, *p;
    char shown[65];
    int64_t x = 0;

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    p = v + (*v == '-');
    if (*p < '0' || *p > '9') goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        x = x * 10 + (*p - '0');
        if (x > ROUTECFG_MS_MAX * 10) goto bad; /* far above every limit, so no overflow */
    }
    if (*p) goto bad;
    if (*v == '-') x = -x;
    if (x < min || x > max) goto bad;
    *out = x;
    return 0;
bad:
    return routecfg_err(ctx, node, "'%s' must be an integer from %lld to %lld, not '%s'", name, (long long)min,
                        (long long)max, yamlfile_shown(v, shown, sizeof(shown)));
}

static int routecfg_bool(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, int *out)
{
    const char *v;
    char shown[65];

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) *out = 1;
    else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) *out = 0;
    else return routecfg_err(ctx, node, "'%s' must be true or false, not '%s'", name,
                             yamlfile_shown(v, shown, sizeof(shown)));
    return 0;
}

static int routecfg_channel_index(const char *v)
{
    for (int c = 0; c < ROUTER_CHANNELS; c++)
        if (strcmp(v, routecfg_channel_names[c]) == 0) return c;
    return -1;
}

static int routecfg_channel(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, uint8_t *mask)
{
    const char *v;
    char shown[65];
    int c;

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    if ((c = routecfg_channel_index(v)) < 0)
        return routecfg_err(ctx, node, "'%s' must be chat, email, sns or phone, not '%s'", name,
                            yamlfile_shown(v, shown, sizeof(shown)));
    *mask |= (uint8_t)(1u << c);
    return 0;
}

/* A channel name or a list of them; empty_ok for `blocks: {phone: []}`. */
static int routecfg_channels(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, int empty_ok,
                             uint8_t *mask)
{
    *mask = 0;
    if (node->type == YAML_SCALAR_NODE) return routecfg_channel(ctx, node, name, mask);
    if (node->type != YAML_SEQUENCE_NODE)
        return routecfg_err(ctx, node, "'%s' must be a channel or a list of channels, not %s", name,
                            yamlfile_kind(node));
    if (!empty_ok && node->data.sequence.items.start == node->data.sequence.items.top)
        return routecfg_err(ctx, node, "'%s' must not be empty", name);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
        if (routecfg_channel(ctx, routecfg_node(ctx, *it), name, mask) != 0) return OMNI_ECONFIG;
    return 0;
}

static int routecfg_mapping(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name)
{
    if (node->type != YAML_MAPPING_NODE)
        return routecfg_err(ctx, node, "'%s' must be a mapping, not %s", name, yamlfile_kind(node));
    return 0;
}

/* The key of pair p of map as a name, refusing duplicates: libyaml keeps both and the last would
 * silently win. Also builds "WHERE.KEY" into full for messages. */
static int routecfg_key(routecfg_ctx_t *ctx, const yaml_node_t *map, const yaml_node_pair_t *p, const char *where,
                        const char **key, char *full, size_t fulllen)
{
    yaml_node_t *kn = routecfg_node(ctx, p->key);
    char shown[65];

    if (kn->type != YAML_SCALAR_NODE)
        return routecfg_err(ctx, kn, "a key in '%s' must be a name, not %s", where, yamlfile_kind(kn));
    *key = (const char *)kn->data.scalar.value;
    snprintf(full, fulllen, "%s.%s", where, yamlfile_shown(*key, shown, sizeof(shown)));
    if (strlen(*key) != kn->data.scalar.length) return routecfg_err(ctx, kn, "unknown key '%s'", full);
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *qn = routecfg_node(ctx, q->key);
        if (qn->type == YAML_SCALAR_NODE && strcmp((const char *)qn->data.scalar.value, *key) == 0)
            return routecfg_err(ctx, kn, "duplicate key '%s' (first on line %zu)", full,
                                (size_t)qn->start_mark.line + 1);
    }
    return 0;
}

static int routecfg_unknown(routecfg_ctx_t *ctx, const yaml_node_pair_t *p, const char *full)
{
    return routecfg_err(ctx, routecfg_node(ctx, p->key), "unknown key '%s'", full);
}

/* ---- agents ---- */

static int routecfg_capacity(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where)
{
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        char full[ROUTECFG_PATH];
        const char *key;
        int64_t v;
        int c;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if ((c = routecfg_channel_index(key)) < 0)
            return routecfg_err(ctx, routecfg_node(ctx, p->key),
                                "unknown key '%s' (channels are chat, email, sns, phone)", full);
        if (routecfg_int(ctx, routecfg_node(ctx, p->value), full, 0, ROUTECFG_CAPACITY_MAX, &v) != 0)
            return OMNI_ECONFIG;
        ctx->rc->capacity[c] = (int)v;
    }
    return 0;
}

/* The file's mapping replaces the default (phone blocks chat and sns) as a whole. */
static int routecfg_blocks(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where)
{
    routecfg_t *rc = ctx->rc;

    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    memset(rc->blocks, 0, sizeof(rc->blocks));
    rc->use_blocks = 1;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int c;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if ((c = routecfg_channel_index(key)) < 0)
            return routecfg_err(ctx, routecfg_node(ctx, p->key),
                                "unknown key '%s' (channels are chat, email, sns, phone)", full);
        if (routecfg_channels(ctx, vn, full, 1, &rc->blocks[c]) != 0) return OMNI_ECONFIG;
        /* Blocking itself would silently cap the channel at one task: that is capacity's job. */
        if (rc->blocks[c] & (1u << c))
            return routecfg_err(ctx, vn, "'%s' must not list %s itself (set its capacity instead)", full, key);
    }
    return 0;
}

static int routecfg_agents(routecfg_ctx_t *ctx, const yaml_node_t *node)
{
    static const char where[] = "routing.agents";
    routecfg_t *rc = ctx->rc;

    if (yamlfile_is_null(node)) return 0;
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int64_t v;
        int r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "capacity") == 0) r = routecfg_capacity(ctx, vn, full);
        else if (strcmp(key, "blocks") == 0) r = routecfg_blocks(ctx, vn, full);
        else if (strcmp(key, "max_missed_offers") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 0, ROUTECFG_MISSED_MAX, &v)) == 0) rc->max_missed = (uint32_t)v;
        } else if (strcmp(key, "heartbeat_timeout_ms") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 1, ROUTECFG_MS_MAX, &v)) == 0) rc->heartbeat_timeout_ms = v;
        } else if (strcmp(key, "reclaim_ms") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &v)) == 0) rc->reclaim_ms = v;
        } else if (strcmp(key, "transfer_hold_ms") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &v)) == 0) rc->transfer_hold_ms = v;
        } else if (strcmp(key, "max_agents") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 1, ROUTECFG_AGENTS_MAX, &v)) == 0) rc->max_agents = (uint32_t)v;
        } else if (strcmp(key, "max_conversations") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 1, ROUTECFG_TASKS_MAX, &v)) == 0) rc->max_tasks = (uint32_t)v;
        } else {
            r = routecfg_unknown(ctx, p, full);
        }
        if (r) return r;
    }
    return 0;
}

/* ---- calendars ---- */

static int routecfg_span(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, hours_t *h, int wday)
{
    char shown[65];
    const char *v;
    int start, end, r;

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    if (hours_parse_range(v, &start, &end) != 0 || (r = hours_add_span(h, wday, start, end)) == OMNI_EINVAL)
        return routecfg_err(ctx, node, "'%s': bad time range '%s' (want HH:MM-HH:MM, start before end, at most 24:00)",
                            name, yamlfile_shown(v, shown, sizeof(shown)));
    if (r == OMNI_ENOMEM) return routecfg_nomem(ctx);
    if (r) return routecfg_err(ctx, node, "'%s' has more than %d time ranges", name, HOURS_MAX_SPANS);
    return 0;
}

static int routecfg_weekly(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, hours_t *h)
{
    unsigned seen = 0;

    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = routecfg_node(ctx, p->key), *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int wday, r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if ((wday = hours_parse_wday(key)) < 0 || wday > 6)
            return routecfg_err(ctx, kn, "unknown key '%s' (days are mon, tue, wed, thu, fri, sat, sun)", full);
        /* "mon" and "monday" are different keys to YAML but the same day. */
        if (seen & (1u << wday)) return routecfg_err(ctx, kn, "'%s': that day is already given", full);
        seen |= 1u << wday;
        if (vn->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++)
                if ((r = routecfg_span(ctx, routecfg_node(ctx, *it), full, h, wday)) != 0) return r;
        } else if ((r = routecfg_span(ctx, vn, full, h, wday)) != 0) {
            return r;
        }
    }
    return 0;
}

static int routecfg_holidays(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, hours_t *h)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return routecfg_err(ctx, node, "'%s' must be a list of dates, not %s", name, yamlfile_kind(node));
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = routecfg_node(ctx, *it);
        char shown[65];
        const char *v;
        int y, m, d, r;

        if (routecfg_scalar(ctx, item, name, &v) != 0) return OMNI_ECONFIG;
        if (hours_parse_date(v, &y, &m, &d) != 0 || (r = hours_add_holiday(h, y, m, d)) == OMNI_EINVAL)
            return routecfg_err(ctx, item, "'%s': bad date '%s' (want YYYY-MM-DD)", name,
                                yamlfile_shown(v, shown, sizeof(shown)));
        if (r == OMNI_ENOMEM) return routecfg_nomem(ctx);
        if (r) return routecfg_err(ctx, item, "'%s' has more than %d dates", name, HOURS_MAX_HOLIDAYS);
    }
    return 0;
}

/* The zone comes first (hours_new needs it), whatever order the file gives the keys in. */
static int routecfg_calendar(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, hours_t **out)
{
    yaml_node_t *tz = NULL, *weekly = NULL, *holidays = NULL, *always = NULL;
    char full[ROUTECFG_PATH], shown[65], names[4][ROUTECFG_PATH + 16];
    hours_t *h = NULL;
    const char *key, *zone = "Asia/Tokyo";
    int r, always_on = 0;

    if (yamlfile_is_null(node)) return routecfg_err(ctx, node, "'%s' has no value", where);
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "timezone") == 0) tz = vn;
        else if (strcmp(key, "weekly") == 0) weekly = vn;
        else if (strcmp(key, "holidays") == 0) holidays = vn;
        else if (strcmp(key, "always_open") == 0) always = vn;
        else return routecfg_unknown(ctx, p, full);
    }
    snprintf(names[0], sizeof(names[0]), "%s.timezone", where);
    snprintf(names[1], sizeof(names[1]), "%s.weekly", where);
    snprintf(names[2], sizeof(names[2]), "%s.holidays", where);
    snprintf(names[3], sizeof(names[3]), "%s.always_open", where);
    if (tz && routecfg_scalar(ctx, tz, names[0], &zone) != 0) return OMNI_ECONFIG;
    /* hours_new reads "" as its default zone; in a file that is more likely a mistake. */
    if (!*zone) return routecfg_err(ctx, tz, "'%s' must not be empty", names[0]);
    if (always && routecfg_bool(ctx, always, names[3], &always_on) != 0) return OMNI_ECONFIG;
    switch ((r = hours_new(zone, NULL, &h))) {
    case 0: break;
    case OMNI_ENOMEM: return routecfg_nomem(ctx);
    case OMNI_ENOTFOUND:
        return routecfg_err(ctx, tz ? tz : node, "'%s': unknown time zone '%s'", names[0],
                            yamlfile_shown(zone, shown, sizeof(shown)));
    case OMNI_ECONFIG:
        return routecfg_err(ctx, tz ? tz : node, "'%s': '%s' is not a time zone file (TZif)", names[0],
                            yamlfile_shown(zone, shown, sizeof(shown)));
    case OMNI_EIO:
        return routecfg_err(ctx, tz ? tz : node, "'%s': cannot read the zone file of '%s'", names[0],
                            yamlfile_shown(zone, shown, sizeof(shown)));
    default:
        return routecfg_err(ctx, tz ? tz : node, "'%s': '%s' is not a valid zone name such as Asia/Tokyo",
                            names[0], yamlfile_shown(zone, shown, sizeof(shown)));
    }
    /* From here the calendar is the caller's to free, error or not. */
    *out = h;
    if (weekly && !yamlfile_is_null(weekly) && (r = routecfg_weekly(ctx, weekly, names[1], h)) != 0) return r;
    if (holidays && !yamlfile_is_null(holidays) && (r = routecfg_holidays(ctx, holidays, names[2], h)) != 0)
        return r;
    if (always_on) hours_set_always_open(h);
    return 0;
}

static int routecfg_calendars(routecfg_ctx_t *ctx, const yaml_node_t *node)
{
    static const char where[] = "routing.calendars";
    routecfg_t *rc = ctx->rc;

    if (yamlfile_is_null(node)) return 0;
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = routecfg_node(ctx, p->key);
        char full[ROUTECFG_PATH];
        const char *key;
        int r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (rc->n_calendars == ROUTECFG_MAX_CALENDARS)
            return routecfg_err(ctx, kn, "'%s' holds more than %d calendars", where, ROUTECFG_MAX_CALENDARS);
        if (routecfg_name_ok(ctx, kn, full, key) != 0) return OMNI_ECONFIG;
        strcpy(rc->calendar_names[rc->n_calendars], key);
        r = routecfg_calendar(ctx, routecfg_node(ctx, p->value), full, &rc->calendars[rc->n_calendars]);
        if (rc->calendars[rc->n_calendars]) rc->n_calendars++;
        if (r) return r;
    }
    return 0;
}

/* ---- queues ---- */

/* Skill names travel in agent logins ("--skills a,b") and in this expression language; ':'
 * allows the language skills the broker derives from Login.languages ("lang:ja"). */
static int routecfg_skill_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == ':' || c >= 0x80;
}

static int routecfg_req_add(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, routecfg_queue_t *q,
                            const char *skill, size_t len, int64_t level)
{
    char shown[ROUTER_NAME_MAX];

    if (len >= ROUTER_NAME_MAX)
        return routecfg_err(ctx, node, "'%s': a skill name is longer than %d bytes", name, ROUTER_NAME_MAX - 1);
    memcpy(shown, skill, len);
    shown[len] = '\0';
    if (level < 1 || level > 5)
        return routecfg_err(ctx, node, "'%s': level %lld of skill '%s' must be 1 to 5", name, (long long)level, shown);
    for (int i = 0; i < q->n_req; i++)
        if (strcmp(q->req[i].skill, shown) == 0)
            return routecfg_err(ctx, node, "'%s': skill '%s' is given twice", name, shown);
    if (q->n_req == ROUTER_MAX_REQ)
        return routecfg_err(ctx, node, "'%s' requires more than %d skills", name, ROUTER_MAX_REQ);
    strcpy(q->req[q->n_req].skill, shown);
    q->req[q->n_req].level = (int)level;
    q->n_req++;
    return 0;
}

/* "account>=3 & ja": an AND of skill[>=level] terms, level 1 when not given. */
static int routecfg_skill_expr(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, routecfg_queue_t *q)
{
    char shown[65];
    const char *v, *p;

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    yamlfile_shown(v, shown, sizeof(shown));
    p = v + strspn(v, " \t");
    if (!*p) return routecfg_err(ctx, node, "'%s' must not be empty (leave it out for no skills)", name);
    for (;;) {
        const char *start;
        int64_t level = 1;
        size_t len;

        p += strspn(p, " \t");
        for (start = p; routecfg_skill_char((unsigned char)*p); p++) continue;
        if (!(len = (size_t)(p - start))) {
            if (*p == '&' || !*p)
                return routecfg_err(ctx, node, "'%s': empty term in '%s' (a '&' needs a skill on both sides)",
                                    name, shown);
            return routecfg_err(ctx, node, "'%s': unexpected '%c' in '%s' (want skill>=level & ...)", name, *p, shown);
        }
        p += strspn(p, " \t");
        if (*p == '>' || *p == '=') {
            if (p[0] != '>' || p[1] != '=')
                return routecfg_err(ctx, node, "'%s': write a level as skill>=N in '%s'", name, shown);
            p += 2;
            p += strspn(p, " \t");
            if (*p < '0' || *p > '9')
                return routecfg_err(ctx, node, "'%s': '>=' must be followed by a level 1 to 5 in '%s'", name, shown);
            for (level = 0; *p >= '0' && *p <= '9'; p++)
                if ((level = level * 10 + (*p - '0')) > 99) level = 99; /* reported as out of range */
            p += strspn(p, " \t");
        }
        if (routecfg_req_add(ctx, node, name, q, start, len, level) != 0) return OMNI_ECONFIG;
        if (!*p) return 0;
        if (*p != '&')
            return routecfg_err(ctx, node, "'%s': unexpected '%c' in '%s' (terms are joined with '&')", name, *p,
                                shown);
        p++;
    }
}

static int routecfg_skills(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, routecfg_queue_t *q)
{
    if (node->type == YAML_SCALAR_NODE) return routecfg_skill_expr(ctx, node, where, q);
    if (node->type != YAML_MAPPING_NODE)
        return routecfg_err(ctx, node, "'%s' must be an expression such as \"account>=3 & ja\" or a mapping, not %s",
                            where, yamlfile_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = routecfg_node(ctx, p->key);
        char full[ROUTECFG_PATH];
        const char *key;
        int64_t level;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        for (const char *c = key; *c; c++)
            if (!routecfg_skill_char((unsigned char)*c))
                return routecfg_err(ctx, kn, "'%s': a skill name has only letters, digits, '_', '-' and '.'", full);
        if (!*key) return routecfg_err(ctx, kn, "'%s': empty skill name", where);
        if (routecfg_int(ctx, routecfg_node(ctx, p->value), full, 1, 5, &level) != 0) return OMNI_ECONFIG;
        if (routecfg_req_add(ctx, kn, where, q, key, strlen(key), level) != 0) return OMNI_ECONFIG;
    }
    return 0;
}

static int routecfg_strategy(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *name, router_strategy_t *out)
{
    char shown[65];
    const char *v;

    if (routecfg_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;
    for (size_t i = 0; i < sizeof(routecfg_strategies) / sizeof(routecfg_strategies[0]); i++) {
        if (strcmp(v, routecfg_strategies[i].name) == 0) {
            *out = routecfg_strategies[i].strategy;
            return 0;
        }
    }
    return routecfg_err(ctx, node,
                        "'%s' must be longest_idle, least_occupancy, round_robin or fewest_assigned, not '%s'", name,
                        yamlfile_shown(v, shown, sizeof(shown)));
}

/* One number for every channel, or per channel with `default` for the rest. */
static int routecfg_sla(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, router_queue_cfg_t *rq)
{
    if (node->type == YAML_SCALAR_NODE) return routecfg_int(ctx, node, where, 1, ROUTECFG_MS_MAX, &rq->sla_ms);
    if (node->type != YAML_MAPPING_NODE)
        return routecfg_err(ctx, node, "'%s' must be milliseconds or a mapping per channel, not %s", where,
                            yamlfile_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int c;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "default") == 0) {
            if (routecfg_int(ctx, vn, full, 1, ROUTECFG_MS_MAX, &rq->sla_ms) != 0) return OMNI_ECONFIG;
        } else if ((c = routecfg_channel_index(key)) >= 0) {
            if (routecfg_int(ctx, vn, full, 1, ROUTECFG_MS_MAX, &rq->sla_ch_ms[c]) != 0) return OMNI_ECONFIG;
        } else {
            return routecfg_err(ctx, routecfg_node(ctx, p->key),
                                "unknown key '%s' (chat, email, sns, phone or default)", full);
        }
    }
    return 0;
}

static int routecfg_step(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, router_step_t *st)
{
    int has_after = 0;

    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int64_t v;
        int r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "after_ms") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 1, ROUTECFG_MS_MAX, &st->after_ms)) == 0) has_after = 1;
        } else if (strcmp(key, "min_level") == 0) {
            if ((r = routecfg_int(ctx, vn, full, 1, 5, &v)) == 0) st->min_level = (int)v;
        } else if (strcmp(key, "any_team") == 0) {
            r = routecfg_bool(ctx, vn, full, &st->any_team);
        } else {
            r = routecfg_unknown(ctx, p, full);
        }
        if (r) return r;
    }
    if (!has_after) return routecfg_err(ctx, node, "'%s' has no 'after_ms'", where);
    return 0;
}

/* Widening steps go after the router's base step 0, which is the queue's own requirements. */
static int routecfg_steps(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, router_queue_cfg_t *rq)
{
    int n = 0;

    if (node->type != YAML_SEQUENCE_NODE)
        return routecfg_err(ctx, node, "'%s' must be a list, not %s", where, yamlfile_kind(node));
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++, n++) {
        yaml_node_t *item = routecfg_node(ctx, *it);
        router_step_t *st;
        char full[ROUTECFG_PATH + 16];

        if (n == ROUTER_MAX_STEPS - 1)
            return routecfg_err(ctx, item, "'%s' holds more than %d steps", where, ROUTER_MAX_STEPS - 1);
        st = &rq->steps[n + 1];
        snprintf(full, sizeof(full), "%s[%d]", where, n);
        if (routecfg_step(ctx, item, full, st) != 0) return OMNI_ECONFIG;
        if (n > 0 && st->after_ms <= st[-1].after_ms)
            return routecfg_err(ctx, item, "'%s.after_ms' must be greater than the previous step's (%lld)", full,
                                (long long)st[-1].after_ms);
    }
    rq->n_steps = n + 1;
    return 0;
}

static int routecfg_overflow(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, size_t qi)
{
    routecfg_queue_t *q = &ctx->rc->queues[qi];

    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;
        int r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "queue") == 0) {
            if ((r = routecfg_name(ctx, vn, full, q->overflow)) == 0) ctx->overflow_node[qi] = vn;
        } else if (strcmp(key, "after_ms") == 0) {
            r = routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &q->overflow_after_ms);
        } else {
            r = routecfg_unknown(ctx, p, full);
        }
        if (r) return r;
    }
    if (!q->overflow[0]) return routecfg_err(ctx, node, "'%s' has no 'queue'", where);
    return 0;
}

static int routecfg_after_hours(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, routecfg_queue_t *q)
{
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH], shown[65];
        const char *key, *v;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "action") == 0) {
            if (routecfg_scalar(ctx, vn, full, &v) != 0) return OMNI_ECONFIG;
            if (strcmp(v, "queue") == 0) q->after_hours = ROUTECFG_AFTER_QUEUE;
            else if (strcmp(v, "reject") == 0) q->after_hours = ROUTECFG_AFTER_REJECT;
            else return routecfg_err(ctx, vn, "'%s' must be queue or reject, not '%s'", full,
                                     yamlfile_shown(v, shown, sizeof(shown)));
        } else if (strcmp(key, "message") == 0) {
            if (routecfg_scalar(ctx, vn, full, &v) != 0) return OMNI_ECONFIG;
            if (strlen(v) >= ROUTECFG_MESSAGE_MAX)
                return routecfg_err(ctx, vn, "'%s' is longer than %d bytes", full, ROUTECFG_MESSAGE_MAX - 1);
            strcpy(q->after_hours_message, v);
        } else {
            return routecfg_unknown(ctx, p, full);
        }
    }
    return 0;
}

static int routecfg_calendar_ref(routecfg_ctx_t *ctx, const yaml_node_t *node, const char *where, routecfg_queue_t *q)
{
    char name[ROUTER_NAME_MAX], shown[65];

    if (routecfg_name(ctx, node, where, name) != 0) return OMNI_ECONFIG;
    for (size_t i = 0; i < ctx->rc->n_calendars; i++) {
        if (strcmp(ctx->rc->calendar_names[i], name) == 0) {
            q->calendar = (int)i;
            return 0;
        }
    }
    return routecfg_err(ctx, node, "'%s': no calendar '%s' in routing.calendars", where,
                        yamlfile_shown(name, shown, sizeof(shown)));
}

/* What a queue is when the file does not say: also the whole of the contract's default queue. */
static void routecfg_queue_defaults(routecfg_queue_t *q)
{
    memset(q, 0, sizeof(*q));
    q->rq.team = -1;
    q->rq.channels = ROUTECFG_ALL_CHANNELS;
    q->rq.n_steps = 1;
    q->rq.strategy = ROUTER_LONGEST_IDLE;
    q->rq.offer_timeout_ms = 20000;
    q->rq.sla_ms = 60000;
    q->calendar = -1;
    q->after_hours = ROUTECFG_AFTER_QUEUE;
}

static int routecfg_queue_key(routecfg_ctx_t *ctx, const char *key, const yaml_node_pair_t *p, const char *full,
                              size_t qi, yaml_node_t **after_hours)
{
    routecfg_queue_t *q = &ctx->rc->queues[qi];
    yaml_node_t *vn = routecfg_node(ctx, p->value);
    int64_t v;
    int r;

    if (strcmp(key, "name") == 0) return routecfg_name(ctx, vn, full, q->name);
    if (strcmp(key, "channels") == 0) return routecfg_channels(ctx, vn, full, 0, &q->rq.channels);
    if (strcmp(key, "skills") == 0) return yamlfile_is_null(vn) ? 0 : routecfg_skills(ctx, vn, full, q);
    if (strcmp(key, "team") == 0) return routecfg_name(ctx, vn, full, q->team);
    if (strcmp(key, "priority_ms") == 0)
        return routecfg_int(ctx, vn, full, -ROUTECFG_MS_MAX, ROUTECFG_MS_MAX, &q->rq.priority_ms);
    if (strcmp(key, "strategy") == 0) return routecfg_strategy(ctx, vn, full, &q->rq.strategy);
    if (strcmp(key, "sticky_ms") == 0) return routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &q->rq.sticky_ms);
    if (strcmp(key, "offer_timeout_ms") == 0)
        return routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &q->rq.offer_timeout_ms);
    if (strcmp(key, "sla_ms") == 0) return routecfg_sla(ctx, vn, full, &q->rq);
    if (strcmp(key, "steps") == 0) return yamlfile_is_null(vn) ? 0 : routecfg_steps(ctx, vn, full, &q->rq);
    if (strcmp(key, "overflow") == 0) return routecfg_overflow(ctx, vn, full, qi);
    if (strcmp(key, "max_length") == 0) {
        if ((r = routecfg_int(ctx, vn, full, 0, ROUTECFG_TASKS_MAX, &v)) == 0) q->rq.max_len = (uint32_t)v;
        return r;
    }
    if (strcmp(key, "wrap_up_ms") == 0) return routecfg_int(ctx, vn, full, 0, ROUTECFG_MS_MAX, &q->rq.wrap_up_ms);
    if (strcmp(key, "hours") == 0) return routecfg_calendar_ref(ctx, vn, full, q);
    if (strcmp(key, "after_hours") == 0) {
        *after_hours = vn;
        return routecfg_after_hours(ctx, vn, full, q);
    }
    return routecfg_unknown(ctx, p, full);
}

static int routecfg_queue(routecfg_ctx_t *ctx, const yaml_node_t *node, size_t qi)
{
    routecfg_queue_t *q = &ctx->rc->queues[qi];
    yaml_node_t *name_node = NULL, *after_hours = NULL;
    char where[40], shown[65];

    snprintf(where, sizeof(where), "routing.queues[%zu]", qi);
    routecfg_queue_defaults(q);
    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        char full[ROUTECFG_PATH];
        const char *key;
        int r;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "name") == 0) name_node = routecfg_node(ctx, p->value);
        if ((r = routecfg_queue_key(ctx, key, p, full, qi, &after_hours)) != 0) return r;
    }
    if (!name_node) return routecfg_err(ctx, node, "'%s' has no 'name'", where);
    for (size_t i = 0; i < qi; i++)
        if (strcmp(ctx->rc->queues[i].name, q->name) == 0)
            return routecfg_err(ctx, name_node, "queue '%s' is defined twice",
                                yamlfile_shown(q->name, shown, sizeof(shown)));
    /* Without a calendar a queue is never after hours, so the setting would be silently dead. */
    if (after_hours && q->calendar < 0)
        return routecfg_err(ctx, after_hours, "'%s.after_hours' needs 'hours' (a calendar)", where);
    return 0;
}

/* No queues: the contract's single queue, under whatever name default_queue gives. */
static void routecfg_single_queue(routecfg_t *rc)
{
    routecfg_queue_defaults(&rc->queues[0]);
    strcpy(rc->queues[0].name, rc->default_queue);
    rc->n_queues = 1;
}

static int routecfg_queues(routecfg_ctx_t *ctx, const yaml_node_t *node)
{
    static const char where[] = "routing.queues";
    routecfg_t *rc = ctx->rc;

    if (node->type != YAML_SEQUENCE_NODE)
        return routecfg_err(ctx, node, "'%s' must be a list, not %s", where, yamlfile_kind(node));
    if (node->data.sequence.items.start == node->data.sequence.items.top)
        return routecfg_err(ctx, node, "'%s' must not be empty (leave it out for the single default queue)", where);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = routecfg_node(ctx, *it);
        int r;

        if (rc->n_queues == ROUTECFG_MAX_QUEUES)
            return routecfg_err(ctx, item, "'%s' holds more than %d queues", where, ROUTECFG_MAX_QUEUES);
        if ((r = routecfg_queue(ctx, item, rc->n_queues)) != 0) return r;
        rc->n_queues++;
    }
    return 0;
}

/* ---- cross-checks ---- */

static int routecfg_check_overflows(routecfg_ctx_t *ctx)
{
    routecfg_t *rc = ctx->rc;
    char shown[65], shown2[65];

    for (size_t i = 0; i < rc->n_queues; i++) {
        const routecfg_queue_t *q = &rc->queues[i];
        int to, hops = 0;

        if (!q->overflow[0]) continue;
        if ((to = routecfg_queue_index(rc, q->overflow)) < 0)
            return routecfg_err(ctx, ctx->overflow_node[i],
                                "queue '%s' overflows to '%s', which is not in routing.queues",
                                yamlfile_shown(q->name, shown, sizeof(shown)),
                                yamlfile_shown(q->overflow, shown2, sizeof(shown2)));
        if ((size_t)to == i)
            return routecfg_err(ctx, ctx->overflow_node[i], "queue '%s' cannot overflow to itself",
                                yamlfile_shown(q->name, shown, sizeof(shown)));
        /* A chain longer than the queue count has revisited a queue: the router refuses cycles. */
        while (to >= 0 && rc->queues[to].overflow[0] && (size_t)++hops <= rc->n_queues)
            to = routecfg_queue_index(rc, rc->queues[to].overflow);
        if ((size_t)hops > rc->n_queues)
            return routecfg_err(ctx, ctx->overflow_node[i], "overflow from queue '%s' leads round in a cycle",
                                yamlfile_shown(q->name, shown, sizeof(shown)));
    }
    return 0;
}

/* match.c knows the rules but not the queues: every picked queue must exist. */
static int routecfg_check_rules(routecfg_ctx_t *ctx, const yaml_node_t *rules, int queues_given)
{
    char shown[65], shown2[65];

    if (!rules || rules->type != YAML_SEQUENCE_NODE) return 0;
    for (yaml_node_item_t *it = rules->data.sequence.items.start; it < rules->data.sequence.items.top; it++) {
        yaml_node_t *rule = routecfg_node(ctx, *it), *queue = NULL;
        const char *name = "";

        for (yaml_node_pair_t *p = rule->data.mapping.pairs.start; p < rule->data.mapping.pairs.top; p++) {
            const char *key = (const char *)routecfg_node(ctx, p->key)->data.scalar.value;
            yaml_node_t *vn = routecfg_node(ctx, p->value);
            if (strcmp(key, "name") == 0) name = (const char *)vn->data.scalar.value;
            else if (strcmp(key, "queue") == 0) queue = vn;
        }
        if (!queue || routecfg_queue_index(ctx->rc, (const char *)queue->data.scalar.value) >= 0) continue;
        yamlfile_shown(name, shown, sizeof(shown));
        yamlfile_shown((const char *)queue->data.scalar.value, shown2, sizeof(shown2));
        if (!queues_given)
            return routecfg_err(ctx, queue,
                                "rule '%s' picks queue '%s', but without routing.queues the only queue is '%s'",
                                shown, shown2, ctx->rc->default_queue);
        return routecfg_err(ctx, queue, "rule '%s' picks queue '%s', which is not in routing.queues", shown, shown2);
    }
    return 0;
}

static int routecfg_routing(routecfg_ctx_t *ctx, const yaml_node_t *node)
{
    static const char where[] = "routing";
    routecfg_t *rc = ctx->rc;
    yaml_node_t *dq = NULL, *agents = NULL, *calendars = NULL, *queues = NULL, *rules = NULL;
    char shown[65];
    int r;

    if (routecfg_mapping(ctx, node, where) != 0) return OMNI_ECONFIG;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = routecfg_node(ctx, p->value);
        char full[ROUTECFG_PATH];
        const char *key;

        if (routecfg_key(ctx, node, p, where, &key, full, sizeof(full)) != 0) return OMNI_ECONFIG;
        if (strcmp(key, "default_queue") == 0) dq = vn;
        else if (strcmp(key, "agents") == 0) agents = vn;
        else if (strcmp(key, "calendars") == 0) calendars = vn;
        else if (strcmp(key, "queues") == 0) queues = yamlfile_is_null(vn) ? NULL : vn;
        else if (strcmp(key, "rules") == 0) rules = vn;
        else return routecfg_unknown(ctx, p, full);
    }
    /* Calendars before queues (queues name them); the rules last (they name queues). */
    if (dq && routecfg_name(ctx, dq, "routing.default_queue", rc->default_queue) != 0) return OMNI_ECONFIG;
    if (agents && (r = routecfg_agents(ctx, agents)) != 0) return r;
    if (calendars && (r = routecfg_calendars(ctx, calendars)) != 0) return r;
    if (queues && (r = routecfg_queues(ctx, queues)) != 0) return r;
    if (!queues) routecfg_single_queue(rc);
    if ((r = routecfg_check_overflows(ctx)) != 0) return r;
    if (queues && routecfg_queue_index(rc, rc->default_queue) < 0) {
        if (dq)
            return routecfg_err(ctx, dq, "'routing.default_queue': queue '%s' is not in routing.queues",
                                yamlfile_shown(rc->default_queue, shown, sizeof(shown)));
        return routecfg_err(ctx, queues,
                            "no queue named 'default' in routing.queues: add one or set routing.default_queue");
    }
    if (match_rules_set_default(rc->rules, rc->default_queue) != 0)
        return routecfg_err(ctx, dq, "'routing.default_queue' is not a valid queue name");
    if (rules && (r = match_rules_load_node(rc->rules, ctx->doc, rules, ctx->path, ctx->err, ctx->errlen)) != 0)
        return r;
    return routecfg_check_rules(ctx, rules, queues != NULL);
}

/* The `routing` value of a whole broker config document, or NULL; other keys are config.c's. */
static int routecfg_find(routecfg_ctx_t *ctx, yaml_node_t **out)
{
    yaml_node_t *root = yaml_document_get_root_node(ctx->doc);

    *out = NULL;
    if (!root || yamlfile_is_null(root)) return 0;
    if (root->type != YAML_MAPPING_NODE)
        return routecfg_err(ctx, root, "the top level must be a mapping of keys, not %s", yamlfile_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = routecfg_node(ctx, p->key);
        if (kn->type != YAML_SCALAR_NODE || strcmp((const char *)kn->data.scalar.value, "routing") != 0) continue;
        if (*out) return routecfg_err(ctx, kn, "duplicate key 'routing'");
        *out = routecfg_node(ctx, p->value);
    }
    if (*out && yamlfile_is_null(*out)) *out = NULL;
    return 0;
}

static void routecfg_defaults(routecfg_t *rc)
{
    static const int capacity[ROUTER_CHANNELS] = {
        [ROUTER_CH_CHAT] = 3, [ROUTER_CH_EMAIL] = 5, [ROUTER_CH_SNS] = 5, [ROUTER_CH_PHONE] = 1};

    strcpy(rc->default_queue, "default");
    memcpy(rc->capacity, capacity, sizeof(capacity));
    /* The router's own default, spelled out so callers see what is in force. */
    rc->blocks[ROUTER_CH_PHONE] = (1u << ROUTER_CH_CHAT) | (1u << ROUTER_CH_SNS);
    rc->use_blocks = 1;
    rc->max_missed = 3;
    rc->heartbeat_timeout_ms = 6000;
    rc->reclaim_ms = 30000;
    rc->transfer_hold_ms = 60000;
    rc->max_agents = 10000;
    rc->max_tasks = 200000;
}

int routecfg_load(const char *path, routecfg_t **out, char *err, size_t errlen)
{
    routecfg_ctx_t ctx = {.path = path ? path : "routing", .err = err, .errlen = errlen};
    yaml_node_t *routing = NULL;
    yaml_document_t doc;
    int r, have_doc = 0;

    if (err && errlen) err[0] = '\0';
    if (!out) return OMNI_EINVAL;
    *out = NULL;
    if (!(ctx.rc = calloc(1, sizeof(*ctx.rc))) || match_rules_new(&ctx.rc->rules) != 0) {
        r = routecfg_nomem(&ctx);
        goto out;
    }
    routecfg_defaults(ctx.rc);
    if (path) {
        char scratch[8];
        r = yamlfile_load(path, &doc, err && errlen ? err : scratch, err && errlen ? errlen : sizeof(scratch));
        if (r != 0) goto out;
        have_doc = 1;
        ctx.doc = &doc;
        if ((r = routecfg_find(&ctx, &routing)) != 0) goto out;
        if (routing && (r = routecfg_routing(&ctx, routing)) != 0) goto out;
    }
    if (ctx.rc->n_queues == 0) routecfg_single_queue(ctx.rc);
    *out = ctx.rc;
    ctx.rc = NULL;
    r = 0;
out:
    if (have_doc) yaml_document_delete(&doc);
    routecfg_destroy(&ctx.rc);
    return r;
}

void routecfg_destroy(routecfg_t **rc)
{
    if (!rc || !*rc) return;
    for (size_t i = 0; i < (*rc)->n_calendars; i++) hours_destroy(&(*rc)->calendars[i]);
    match_rules_destroy(&(*rc)->rules);
    free(*rc);
    *rc = NULL;
}

int routecfg_queue_index(const routecfg_t *rc, const char *name)
{
    if (!rc || !name) return -1;
    for (size_t i = 0; i < rc->n_queues; i++)
        if (strcmp(rc->queues[i].name, name) == 0) return (int)i;
    return -1;
}

/* Distinct skill (teams 0) or team (teams 1) names of the queues, for sizing the router's tables. */
static uint32_t routecfg_distinct(const routecfg_t *rc, int teams)
{
    const char *seen[ROUTECFG_MAX_QUEUES * ROUTER_MAX_REQ];
    uint32_t n = 0, j;

    for (size_t i = 0; i < rc->n_queues; i++) {
        int count = teams ? 1 : rc->queues[i].n_req;
        for (int k = 0; k < count; k++) {
            const char *s = teams ? rc->queues[i].team : rc->queues[i].req[k].skill;
            for (j = 0; j < n && strcmp(seen[j], s) != 0; j++) continue;
            if (*s && j == n) seen[n++] = s;
        }
    }
    return n;
}

void routecfg_limits(const routecfg_t *rc, router_limits_t *lim)
{
    memset(lim, 0, sizeof(*lim));
    lim->max_agents = rc->max_agents;
    lim->max_queues = (uint32_t)rc->n_queues;
    lim->max_tasks = rc->max_tasks;
    lim->max_skills = ROUTECFG_ROOM_SKILLS + routecfg_distinct(rc, 0);
    lim->max_teams = ROUTECFG_ROOM_TEAMS + routecfg_distinct(rc, 1);
    memcpy(lim->blocks, rc->blocks, sizeof(lim->blocks));
    lim->use_blocks = rc->use_blocks;
    lim->max_missed = rc->max_missed;
}

static int routecfg_apply_queue(const routecfg_t *rc, router_t *r, size_t i, const char **what)
{
    const routecfg_queue_t *q = &rc->queues[i];
    router_queue_cfg_t c = q->rq;
    int id, qid = -1;

    c.name = q->name;
    c.team = -1;
    *what = "team";
    if (q->team[0] && (c.team = router_team(r, q->team)) < 0) return c.team;
    *what = "skill";
    c.n_req = q->n_req;
    for (int k = 0; k < q->n_req; k++) {
        if ((id = router_skill(r, q->req[k].skill)) < 0) return id;
        c.req[k].skill = id;
        c.req[k].level = q->req[k].level;
    }
    *what = "queue";
    if ((id = router_queue_add(r, &c, &qid)) != 0) return id;
    /* Callers look queues up by index into rc->queues, so the ids must line up. */
    *what = "queue id (the router was not fresh)";
    return qid == (int)i ? 0 : OMNI_ESTATE;
}

int routecfg_apply(const routecfg_t *rc, router_t *r, char *err, size_t errlen)
{
    const char *what = "queue";
    char shown[65];
    size_t i = 0;
    int e = 0;

    if (err && errlen) err[0] = '\0';
    if (!rc || !r) return OMNI_EINVAL;
    for (i = 0; i < rc->n_queues; i++)
        if ((e = routecfg_apply_queue(rc, r, i, &what)) != 0) goto out;
    what = "overflow";
    for (i = 0; i < rc->n_queues; i++) {
        const routecfg_queue_t *q = &rc->queues[i];
        if (!q->overflow[0]) continue;
        e = router_queue_set_overflow(r, (int)i, routecfg_queue_index(rc, q->overflow), q->overflow_after_ms);
        if (e != 0) goto out;
    }
out:
    if (e && err && errlen)
        snprintf(err, errlen, "routing.queues[%zu] '%s': the router refused its %s: %s", i,
                 yamlfile_shown(rc->queues[i].name, shown, sizeof(shown)), what, omni_strerror(e));
    return e == OMNI_ENOMEM ? e : e ? OMNI_ECONFIG : 0;
}
