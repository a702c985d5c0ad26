/* Broker configuration: built-in defaults, a YAML overlay read with libyaml's document API,
 * and the cross-field checks run once at start-up, before any socket is bound. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>
#include <zmq.h>

#include <omni/omni.h>

#include "config.h"
#include "yamlfile.h"

/* What a key holds, which decides how its YAML node is read. */
typedef enum {
    CK_SECTION, /* a nested mapping of further keys */
    CK_STR,
    CK_SIZE,    /* size_t > 0 */
    CK_INT,     /* int > 0 */
    CK_COUNT,   /* int64_t >= 0 (0 means unlimited) */
    CK_WINDOW,  /* int64_t seconds > 0, with an optional s/m/h/d unit */
    CK_BOOL,
    CK_KEYS,    /* the list of client public keys */
    CK_OWNED,   /* read by another loader from the same file (routing: broker/routecfg.c) */
} config_kind_t;

typedef struct {
    const char *section; /* "" for the top level */
    const char *key;
    config_kind_t kind;
    size_t off;          /* offset of the field in config_t */
} config_key_t;

#define CF(field) offsetof(config_t, field)

static const config_key_t config_keys[] = {
    {"", "tenant", CK_STR, CF(tenant)},
    {"", "redis", CK_STR, CF(redis)},
    {"", "listen", CK_SECTION, 0},
    {"", "limits", CK_SECTION, 0},
    {"", "idempotency_window", CK_WINDOW, CF(idempotency_window_s)},
    {"", "thread_window", CK_WINDOW, CF(thread_window_s)},
    {"", "stream", CK_SECTION, 0},
    {"", "identity", CK_SECTION, 0},
    {"", "heartbeat_ms", CK_INT, CF(heartbeat_ms)},
    {"", "log", CK_SECTION, 0},
    {"", "security", CK_SECTION, 0},
    {"", "routing", CK_OWNED, 0},
    {"listen", "ingress", CK_STR, CF(ingress)},
    {"listen", "agents", CK_STR, CF(agents)},
    {"listen", "stream", CK_STR, CF(stream)},
    {"listen", "control", CK_STR, CF(control)},
    {"listen", "http", CK_STR, CF(http)},
    {"limits", "max_frame_bytes", CK_SIZE, CF(max_frame_bytes)},
    {"limits", "max_text_bytes", CK_SIZE, CF(max_text_bytes)},
    {"limits", "max_field_bytes", CK_SIZE, CF(max_field_bytes)},
    {"limits", "max_identities", CK_SIZE, CF(max_identities)},
    {"limits", "max_attachments", CK_SIZE, CF(max_attachments)},
    {"limits", "max_refs", CK_SIZE, CF(max_refs)},
    {"limits", "batch_max", CK_SIZE, CF(batch_max)},
    {"limits", "inflight_max", CK_SIZE, CF(inflight_max)},
    {"stream", "maxlen", CK_COUNT, CF(stream_maxlen)},
    {"identity", "default_region", CK_STR, CF(default_region)},
    {"log", "level", CK_STR, CF(log_level)},
    {"log", "format", CK_STR, CF(log_format)},
    {"security", "allow_plain", CK_BOOL, CF(allow_plain)},
    {"security", "server_public_key", CK_STR, CF(curve_public)},
    {"security", "server_secret_key", CK_STR, CF(curve_secret)},
    {"security", "clients", CK_KEYS, 0},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char config_z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/* State of one config_load_file call, so the node readers can report "PATH:LINE: ...". */
typedef struct {
    yaml_document_t *doc;
    const char *path;
    char *err;
    size_t errlen;
} config_ctx_t;

static void config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A value quoted in an error message: cut short and with control characters replaced, so the
 * message stays the one line the contract promises even for a quoted "a\nb". */
int config_set_str(char **field, const char *value)
{
    char *copy = NULL;

    if (value && !(copy = strdup(value))) return OMNI_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int config_defaults(config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const struct {
        char **field;
        const char *value;
    } strs[] = {
        {&cfg->tenant, "default"},
        {&cfg->redis, "redis://127.0.0.1:6379/0"},
        {&cfg->ingress, "tcp://127.0.0.1:5560"},
        {&cfg->agents, "tcp://127.0.0.1:5561"},
        {&cfg->stream, "tcp://127.0.0.1:5562"},
        {&cfg->control, "tcp://127.0.0.1:5563"},
        {&cfg->http, "127.0.0.1:8080"},
        {&cfg->default_region, "JP"},
        {&cfg->log_level, "info"},
        {&cfg->log_format, "text"},
    };

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (config_set_str(strs[i].field, strs[i].value) != 0) {
            config_free(cfg);
            return OMNI_ENOMEM;
        }
    }
    cfg->max_frame_bytes = 1048576;
    cfg->max_text_bytes = 262144;
    cfg->max_field_bytes = 4096;
    cfg->max_identities = 16;
    cfg->max_attachments = 64;
    cfg->max_refs = 64;
    cfg->batch_max = 256;
    cfg->inflight_max = 8192;
    cfg->idempotency_window_s = 604800;
    cfg->thread_window_s = 180 * 86400;
    cfg->stream_maxlen = 10000000;
    cfg->heartbeat_ms = 2000;
    cfg->allow_plain = -1; /* unset: plain only while every endpoint is local */
    return 0;
}

void config_free(config_t *cfg)
{
    char **strs[] = {&cfg->tenant, &cfg->redis, &cfg->ingress, &cfg->agents, &cfg->stream,
                     &cfg->control, &cfg->http, &cfg->default_region, &cfg->log_level,
                     &cfg->log_format, &cfg->curve_public, &cfg->curve_secret};

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (size_t i = 0; i < cfg->n_client_keys && i < CONFIG_MAX_CLIENT_KEYS; i++) {
        free(cfg->client_keys[i]);
        cfg->client_keys[i] = NULL;
    }
    cfg->n_client_keys = 0;
}

/* ---- YAML file ---- */

static size_t config_line(const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

/* The text of a scalar that must carry a value. A "\0" escape would silently cut a C string
 * short (a key path, a socket path), so it is refused rather than truncated. */
static int config_scalar(config_ctx_t *ctx, const yaml_node_t *node, const char *name,
                         const char **out)
{
    if (node->type != YAML_SCALAR_NODE) {
        config_err(ctx->err, ctx->errlen, "%s:%zu: '%s' must be a value, not %s", ctx->path,
                   config_line(node), name, yamlfile_kind(node));
        return OMNI_ECONFIG;
    }
    if (yamlfile_is_null(node)) {
        config_err(ctx->err, ctx->errlen, "%s:%zu: '%s' has no value", ctx->path,
                   config_line(node), name);
        return OMNI_ECONFIG;
    }
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
        config_err(ctx->err, ctx->errlen, "%s:%zu: '%s' contains a NUL character", ctx->path,
                   config_line(node), name);
        return OMNI_ECONFIG;
    }
    *out = (const char *)node->data.scalar.value;
    return 0;
}

/* Leading decimal digits of s; *end is left on the first non-digit. Fails on no digits or
 * overflow, so "-1", "1.5" and "0x10" never turn into numbers by accident. */
static int config_parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

static int config_load_keys(config_ctx_t *ctx, config_t *cfg, const yaml_node_t *node)
{
    char *keys[CONFIG_MAX_CLIENT_KEYS];
    size_t n = 0;
    int rc = 0;

    if (node->type != YAML_SEQUENCE_NODE && !yamlfile_is_null(node)) {
        config_err(ctx->err, ctx->errlen, "%s:%zu: 'security.clients' must be a list, not %s",
                   ctx->path, config_line(node), yamlfile_kind(node));
        return OMNI_ECONFIG;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
            const char *v;
            if (n == CONFIG_MAX_CLIENT_KEYS) {
                config_err(ctx->err, ctx->errlen, "%s:%zu: 'security.clients' holds more than %d keys",
                           ctx->path, config_line(item), CONFIG_MAX_CLIENT_KEYS);
                rc = OMNI_ECONFIG;
                goto out;
            }
            if ((rc = config_scalar(ctx, item, "security.clients", &v)) != 0) goto out;
            if (!(keys[n] = strdup(v))) {
                config_err(ctx->err, ctx->errlen, "%s: out of memory", ctx->path);
                rc = OMNI_ENOMEM;
                goto out;
            }
            n++;
        }
    }
    /* The file's list replaces the current one as a whole; nothing is merged. */
    for (size_t i = 0; i < cfg->n_client_keys; i++) free(cfg->client_keys[i]);
    memcpy(cfg->client_keys, keys, n * sizeof(keys[0]));
    cfg->n_client_keys = n;
    n = 0;
out:
    for (size_t i = 0; i < n; i++) free(keys[i]);
    return rc;
}

static int config_load_map(config_ctx_t *ctx, config_t *cfg, const yaml_node_t *node,
                           const char *section);

static int config_load_value(config_ctx_t *ctx, config_t *cfg, const config_key_t *k,
                             const yaml_node_t *node, const char *name)
{
    char *field = (char *)cfg + k->off;
    const char *v, *end;
    uint64_t u;

    if (k->kind == CK_SECTION) {
        if (yamlfile_is_null(node)) return 0; /* "listen:" with every child commented out */
        if (node->type != YAML_MAPPING_NODE) {
            config_err(ctx->err, ctx->errlen, "%s:%zu: '%s' must be a mapping, not %s", ctx->path,
                       config_line(node), name, yamlfile_kind(node));
            return OMNI_ECONFIG;
        }
        return config_load_map(ctx, cfg, node, k->key);
    }
    if (k->kind == CK_KEYS) return config_load_keys(ctx, cfg, node);
    if (k->kind == CK_OWNED) return 0;
    if (config_scalar(ctx, node, name, &v) != 0) return OMNI_ECONFIG;

    switch (k->kind) {
    case CK_STR:
        if (config_set_str((char **)field, v) != 0) {
            config_err(ctx->err, ctx->errlen, "%s: out of memory", ctx->path);
            return OMNI_ENOMEM;
        }
        return 0;
    case CK_SIZE:
        if (config_parse_u64(v, &u, &end) != 0 || *end || u == 0 || u > SIZE_MAX) break;
        *(size_t *)field = (size_t)u;
        return 0;
    case CK_INT:
        if (config_parse_u64(v, &u, &end) != 0 || *end || u == 0 || u > INT_MAX) break;
        *(int *)field = (int)u;
        return 0;
    case CK_COUNT:
        if (config_parse_u64(v, &u, &end) != 0 || *end || u > INT64_MAX) break;
        *(int64_t *)field = (int64_t)u;
        return 0;
    case CK_WINDOW: {
        uint64_t mul = 1;
        if (config_parse_u64(v, &u, &end) != 0 || u == 0) break;
        if (*end) {
            switch (*end) {
            case 's': mul = 1; break;
            case 'm': mul = 60; break;
            case 'h': mul = 3600; break;
            case 'd': mul = 86400; break;
            default: mul = 0; break;
            }
            if (mul == 0 || end[1] != '\0') break;
        }
        if (u > (uint64_t)INT64_MAX / mul) break;
        *(int64_t *)field = (int64_t)(u * mul);
        return 0;
    }
    case CK_BOOL:
        if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) *(int *)field = 1;
        else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) *(int *)field = 0;
        else break;
        return 0;
    default:
        break;
    }

    static const char *const wants[] = {
        [CK_SIZE] = "a positive integer",
        [CK_INT] = "a positive integer",
        [CK_COUNT] = "a non-negative integer",
        [CK_WINDOW] = "a positive duration (seconds, or a whole number with s, m, h or d)",
        [CK_BOOL] = "true or false",
    };
    char shown[65];
    config_err(ctx->err, ctx->errlen, "%s:%zu: '%s' must be %s, not '%s'", ctx->path,
               config_line(node), name, wants[k->kind] ? wants[k->kind] : "valid",
               yamlfile_shown(v, shown, sizeof(shown)));
    return OMNI_ECONFIG;
}

static int config_load_map(config_ctx_t *ctx, config_t *cfg, const yaml_node_t *node,
                           const char *section)
{
    const char *dot = section[0] ? "." : "";

    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ctx->doc, p->value);
        const config_key_t *k = NULL;
        char name[96], shown[65];
        const char *key;
        int rc;

        if (kn->type != YAML_SCALAR_NODE) {
            config_err(ctx->err, ctx->errlen, "%s:%zu: a key must be a name, not %s", ctx->path,
                       config_line(kn), yamlfile_kind(kn));
            return OMNI_ECONFIG;
        }
        key = (const char *)kn->data.scalar.value;
        snprintf(name, sizeof(name), "%s%s%s", section, dot, yamlfile_shown(key, shown, sizeof(shown)));
        /* libyaml accepts repeated keys; the last one would silently win. */
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qn = yaml_document_get_node(ctx->doc, q->key);
            if (qn->type == YAML_SCALAR_NODE && strcmp((const char *)qn->data.scalar.value, key) == 0) {
                config_err(ctx->err, ctx->errlen, "%s:%zu: duplicate key '%s' (first on line %zu)",
                           ctx->path, config_line(kn), name, config_line(qn));
                return OMNI_ECONFIG;
            }
        }
        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
            if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0) {
                k = &config_keys[i];
                break;
            }
        }
        if (!k || strlen(key) != kn->data.scalar.length) {
            config_err(ctx->err, ctx->errlen, "%s:%zu: unknown key '%s'", ctx->path, config_line(kn),
                       name);
            return OMNI_ECONFIG;
        }
        if ((rc = config_load_value(ctx, cfg, k, vn, name)) != 0) return rc;
    }
    return 0;
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    config_ctx_t ctx = {.path = path, .err = err, .errlen = errlen};
    yaml_document_t doc;
    yaml_node_t *root;
    int rc;

    if ((rc = yamlfile_load(path, &doc, err, errlen)) != 0)
        return rc;
    ctx.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (!root || yamlfile_is_null(root)) goto out; /* an empty file changes nothing */
    if (root->type != YAML_MAPPING_NODE) {
        config_err(err, errlen, "%s:%zu: the top level must be a mapping of keys, not %s", path,
                   config_line(root), yamlfile_kind(root));
        rc = OMNI_ECONFIG;
        goto out;
    }
    rc = config_load_map(&ctx, cfg, root, "");
out:
    yaml_document_delete(&doc);
    return rc;
}

/* ---- cross-field checks ---- */

/* 40 characters of the Z85 alphabet whose 5-character groups each fit in 32 bits: what
 * zmq_z85_decode accepts for a 32-byte CURVE key. */
static int config_z85_key_ok(const char *key)
{
    if (!key || strlen(key) != 40) return 0;
    for (size_t g = 0; g < 40; g += 5) {
        uint64_t v = 0;
        for (size_t i = g; i < g + 5; i++) {
            const char *c = strchr(config_z85_chars, key[i]);
            if (!c) return 0;
            v = v * 85 + (uint64_t)(c - config_z85_chars);
        }
        if (v > UINT32_MAX) return 0;
    }
    return 1;
}

static int config_empty(const char *s)
{
    return !s || !*s;
}

static int config_one_of(const char *s, const char *const *names)
{
    for (; s && *names; names++)
        if (strcmp(s, *names) == 0) return 1;
    return 0;
}

/* HOST:PORT with a non-empty host ("[::1]" allowed) and a decimal port 0..65535 (0 asks the
 * kernel for a free one, which tests use). */
static int config_hostport_ok(const char *s)
{
    const char *colon, *end;
    uint64_t port;

    if (config_empty(s) || !(colon = strrchr(s, ':')) || colon == s) return 0;
    if (config_parse_u64(colon + 1, &port, &end) != 0 || *end || port > 65535) return 0;
    return 1;
}

static int config_tenant_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 64) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost cannot be reached from
 * another host. */
static int config_endpoint_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    const char *h = ep + 6;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 || strncmp(h, "[::1]:", 6) == 0;
}

int config_validate(const config_t *cfg, char *err, size_t errlen)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    const struct {
        const char *name;
        const char *value;
    } endpoints[] = {
        {"listen.ingress", cfg->ingress},
        {"listen.agents", cfg->agents},
        {"listen.stream", cfg->stream},
        {"listen.control", cfg->control},
    };
    const struct {
        const char *name;
        size_t value;
    } limits[] = {
        {"limits.max_frame_bytes", cfg->max_frame_bytes},
        {"limits.max_text_bytes", cfg->max_text_bytes},
        {"limits.max_field_bytes", cfg->max_field_bytes},
        {"limits.max_identities", cfg->max_identities},
        {"limits.max_attachments", cfg->max_attachments},
        {"limits.max_refs", cfg->max_refs},
        {"limits.batch_max", cfg->batch_max},
        {"limits.inflight_max", cfg->inflight_max},
    };
    const char *r = cfg->default_region;
    char shown[129];

    /* Which identities may link travels as a 64-bit mask (validate_inbound). */
    if (cfg->max_identities > 64) {
        config_err(err, errlen, "limits.max_identities: at most 64");
        return OMNI_ECONFIG;
    }
    /* The tenant becomes a Redis hash tag: braces or spaces in it would break key routing. */
    if (!config_tenant_ok(cfg->tenant)) {
        config_err(err, errlen, "tenant: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
        return OMNI_ECONFIG;
    }
    if (!config_one_of(cfg->log_level, levels)) {
        config_err(err, errlen, "log.level: must be debug, info, warn or error, not '%s'",
                   yamlfile_shown(cfg->log_level, shown, sizeof(shown)));
        return OMNI_ECONFIG;
    }
    if (!config_one_of(cfg->log_format, formats)) {
        config_err(err, errlen, "log.format: must be text or json, not '%s'",
                   yamlfile_shown(cfg->log_format, shown, sizeof(shown)));
        return OMNI_ECONFIG;
    }
    if (config_empty(cfg->redis) ||
        !((strncmp(cfg->redis, "redis://", 8) == 0 && cfg->redis[8]) ||
          (strncmp(cfg->redis, "unix://", 7) == 0 && cfg->redis[7]))) {
        /* Not echoed: a redis URL may carry a password. */
        config_err(err, errlen, "redis: must be redis://HOST:PORT/DB or unix:///PATH");
        return OMNI_ECONFIG;
    }
    /* Every ZeroMQ endpoint is TRANSPORT://ADDRESS; a bare HOST:PORT fails at bind time with a
     * far less helpful message. */
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        const char *sep = endpoints[i].value ? strstr(endpoints[i].value, "://") : NULL;
        if (!sep || sep == endpoints[i].value || !sep[3]) {
            config_err(err, errlen, "%s: must be a ZeroMQ endpoint like tcp://127.0.0.1:5560, not '%s'",
                       endpoints[i].name, yamlfile_shown(endpoints[i].value, shown, sizeof(shown)));
            return OMNI_ECONFIG;
        }
    }
    if (!config_hostport_ok(cfg->http)) {
        config_err(err, errlen, "listen.http: must be HOST:PORT with a numeric port, not '%s'",
                   yamlfile_shown(cfg->http, shown, sizeof(shown)));
        return OMNI_ECONFIG;
    }
    if (!r || strlen(r) != 2 || r[0] < 'A' || r[0] > 'Z' || r[1] < 'A' || r[1] > 'Z') {
        config_err(err, errlen, "identity.default_region: must be two upper-case letters (ISO 3166), not '%s'",
                   yamlfile_shown(r, shown, sizeof(shown)));
        return OMNI_ECONFIG;
    }
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (limits[i].value == 0) {
            config_err(err, errlen, "%s: must be greater than 0", limits[i].name);
            return OMNI_ECONFIG;
        }
    }
    if (cfg->max_text_bytes > cfg->max_frame_bytes) {
        config_err(err, errlen, "limits.max_text_bytes: %zu is above limits.max_frame_bytes (%zu)",
                   cfg->max_text_bytes, cfg->max_frame_bytes);
        return OMNI_ECONFIG;
    }
    if (cfg->thread_window_s <= 0) {
        config_err(err, errlen, "thread_window: must be greater than 0");
        return OMNI_ECONFIG;
    }
    if (cfg->idempotency_window_s <= 0) {
        config_err(err, errlen, "idempotency_window: must be greater than 0");
        return OMNI_ECONFIG;
    }
    if (cfg->stream_maxlen < 0) {
        config_err(err, errlen, "stream.maxlen: must be 0 (unlimited) or more");
        return OMNI_ECONFIG;
    }
    if (cfg->heartbeat_ms <= 0) {
        config_err(err, errlen, "heartbeat_ms: must be greater than 0");
        return OMNI_ECONFIG;
    }

    if (!config_empty(cfg->curve_public) && !config_z85_key_ok(cfg->curve_public)) {
        config_err(err, errlen, "security.server_public_key: must be a 40-character Z85 CURVE key");
        return OMNI_ECONFIG;
    }
    if (!config_empty(cfg->curve_secret) && !config_z85_key_ok(cfg->curve_secret)) {
        config_err(err, errlen, "security.server_secret_key: must be a 40-character Z85 CURVE key");
        return OMNI_ECONFIG;
    }
    if (config_empty(cfg->curve_public) != config_empty(cfg->curve_secret)) {
        config_err(err, errlen, "security: server_public_key and server_secret_key must be set together");
        return OMNI_ECONFIG;
    }
    if (!config_empty(cfg->curve_secret)) {
        /* A pair pasted from two different keygen runs passes every syntax check and then fails
         * every handshake; libzmq can derive the public half, so compare. */
        char derived[41];
        if (zmq_curve_public(derived, cfg->curve_secret) == 0 &&
            strcmp(derived, cfg->curve_public) != 0) {
            config_err(err, errlen, "security.server_public_key: does not belong to server_secret_key");
            return OMNI_ECONFIG;
        }
    }
    if (cfg->n_client_keys > CONFIG_MAX_CLIENT_KEYS) {
        config_err(err, errlen, "security.clients: more than %d keys", CONFIG_MAX_CLIENT_KEYS);
        return OMNI_ECONFIG;
    }
    for (size_t i = 0; i < cfg->n_client_keys; i++) {
        if (!config_z85_key_ok(cfg->client_keys[i])) {
            config_err(err, errlen, "security.clients[%zu]: must be a 40-character Z85 CURVE public key", i);
            return OMNI_ECONFIG;
        }
    }
    /* Without server keys CURVE is off, so a client list would be ignored while looking like
     * an access list. */
    if (cfg->n_client_keys > 0 && config_empty(cfg->curve_secret)) {
        config_err(err, errlen, "security.clients: needs server_public_key and server_secret_key");
        return OMNI_ECONFIG;
    }
    if (!cfg->allow_plain && config_empty(cfg->curve_secret)) {
        config_err(err, errlen, "security.allow_plain: false needs server_public_key and server_secret_key");
        return OMNI_ECONFIG;
    }
    /* Unauthenticated plain sockets are the dev default only where nobody else can reach
     * them; anything wider has to be asked for. */
    if (cfg->allow_plain < 0 && config_empty(cfg->curve_secret)) {
        const char *const names[] = {"listen.ingress", "listen.agents", "listen.stream", "listen.control"};
        const char *const eps[] = {cfg->ingress, cfg->agents, cfg->stream, cfg->control};
        for (size_t i = 0; i < 4; i++) {
            if (!config_endpoint_local(eps[i])) {
                config_err(err, errlen,
                           "%s: %s is not a loopback endpoint; set security.allow_plain: true to accept "
                           "unauthenticated connections there, or configure CURVE keys",
                           names[i], eps[i]);
                return OMNI_ECONFIG;
            }
        }
    }
    return 0;
}
