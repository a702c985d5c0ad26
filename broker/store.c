/* The broker's Redis side. A sync connection proves Redis at start-up; then one async
 * connection, reconnected with backoff, carries pipelined EVALSHA calls from the event loop. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <omni/omni.h>

#include "log.h"
#include "metrics.h"
#include "redis_zmq.h"
#include "store.h"

extern const char lua_ingest[];
extern const char lua_customer[];
extern const char lua_route[];

enum { SCRIPT_INGEST, SCRIPT_CUSTOMER, SCRIPT_ROUTE, SCRIPTS };
static const char *const scripts[SCRIPTS] = {lua_ingest, lua_customer, lua_route};

struct store {
    const config_t *cfg;
    char *host, *path;      /* tcp host or unix path */
    int port, db;
    char prefix[128];       /* "omni:{tenant}:" */
    char stream_key[160];
    char sha[SCRIPTS][41];
    redis_zmq_t rz;
    redisAsyncContext *ac;
    store_state_t state;
    int64_t reconnect_at_us;
    int backoff_ms;
    uint64_t last_seq;
    size_t pending;
    int64_t progress_us;    /* last reply or connect: a stuck link is detected from it */
};

/* hiredis 0.14 has no command or connect timeouts: a Redis that stops answering while the
 * connection stays up would stall ingest for good. After this long without progress while
 * calls wait (or while connecting), the link is dropped and rebuilt; callers get a retryable
 * failure. */
#define STORE_STALL_US (5 * 1000 * 1000LL)

typedef enum { CALL_INGEST, CALL_CUSTOMER, CALL_TAIL, CALL_TAIL_REV, CALL_SEQ, CALL_PLAIN, CALL_ROUTE } call_kind_t;

typedef struct {
    store_t *st;
    call_kind_t kind;
    void *cb;
    void *ud;
} call_t;

static int send_call(store_t *st, call_kind_t kind, void *cb, void *ud, int argc, const char **argv,
                     const size_t *lens);
static void start_connect(store_t *st);

/* Queued on the connection ahead of any EVALSHA that follows: commands on one connection run in
 * order, so the scripts exist even on a freshly restarted (or SCRIPT FLUSHed) Redis. */
static void reload_scripts(store_t *st)
{
    for (int k = 0; k < SCRIPTS; k++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[k]};
        send_call(st, CALL_PLAIN, NULL, NULL, 3, argv, NULL);
    }
}

static int parse_url(store_t *st, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "unix://", 7) == 0) {
        st->path = strdup(url + 7);
        return st->path ? 0 : OMNI_ENOMEM;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        const char *h = url + 8, *colon = strchr(h, ':'), *slash = strchr(h, '/');
        size_t hl = colon ? (size_t)(colon - h) : slash ? (size_t)(slash - h) : strlen(h);
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)hl, h);
        st->port = colon ? atoi(colon + 1) : 6379;
        st->db = slash ? atoi(slash + 1) : 0;
        if (!*name || st->port <= 0 || st->port > 65535) {
            snprintf(err, errlen, "bad Redis URL '%s' (want redis://host:port/db or unix:///path)", url);
            return OMNI_ECONFIG;
        }
        /* Resolve once, here: hiredis would call getaddrinfo on every reconnect, inside the
         * event loop, and a slow resolver would stall everything else. */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        char ip[INET6_ADDRSTRLEN];
        if (getaddrinfo(name, NULL, &hints, &ai) != 0 || !ai) {
            snprintf(err, errlen, "cannot resolve Redis host '%s'", name);
            return OMNI_EUNAVAIL;
        }
        const void *addr = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                     : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, addr, ip, sizeof(ip));
        freeaddrinfo(ai);
        st->host = strdup(ip);
        return st->host ? 0 : OMNI_ENOMEM;
    }
    snprintf(err, errlen, "bad Redis URL '%s' (want redis://host:port/db or unix:///path)", url);
    return OMNI_ECONFIG;
}

static int load_script(redisContext *c, const char *src, char sha[41], char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", src);
    int rc = 0;
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "Redis refused the broker's Lua script: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        rc = OMNI_EUNAVAIL;
    } else {
        memcpy(sha, r->str, 41);
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* A blocking connection for start-up work (2 s timeout), with the database selected. */
static redisContext *sync_connect(store_t *st, char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *c = st->path ? redisConnectUnixWithTimeout(st->path, tv)
                               : redisConnectWithTimeout(st->host, st->port, tv);
    redisReply *r = NULL;
    if (!c || c->err) {
        snprintf(err, errlen, "cannot reach Redis at %s: %s", st->cfg->redis, c ? c->errstr : "out of memory");
        goto fail;
    }
    if (st->db && (!(r = redisCommand(c, "SELECT %d", st->db)) || r->type == REDIS_REPLY_ERROR)) {
        snprintf(err, errlen, "Redis at %s: SELECT %d: %s", st->cfg->redis, st->db, r ? r->str : c->errstr);
        goto fail;
    }
    if (r)
        freeReplyObject(r);
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

int store_new(const config_t *cfg, store_t **out, char *err, size_t errlen)
{
    int rc = OMNI_ENOMEM;
    redisContext *c = NULL;
    store_t *st = calloc(1, sizeof(*st));
    if (!st)
        goto out;
    st->cfg = cfg;
    st->backoff_ms = 100;
    snprintf(st->prefix, sizeof(st->prefix), "omni:{%s}:", cfg->tenant);
    snprintf(st->stream_key, sizeof(st->stream_key), "%sstream", st->prefix);
    if ((rc = parse_url(st, cfg->redis, err, errlen)) != 0)
        goto out;

    if (!(c = sync_connect(st, err, errlen))) {
        rc = OMNI_EUNAVAIL;
        goto out;
    }
    for (int k = 0; k < SCRIPTS; k++)
        if ((rc = load_script(c, scripts[k], st->sha[k], err, errlen)) != 0)
            goto out;
    start_connect(st);
    *out = st;
    st = NULL;
    rc = 0;
out:
    if (c)
        redisFree(c);
    store_destroy(&st);
    return rc;
}

void store_destroy(store_t **pst)
{
    store_t *st = pst ? *pst : NULL;
    if (!st)
        return;
    if (st->ac)
        redisAsyncFree(st->ac); /* runs every pending callback with a NULL reply */
    free(st->host);
    free(st->path);
    free(st);
    *pst = NULL;
}

static void schedule_reconnect(store_t *st)
{
    st->state = STORE_DOWN;
    st->ac = NULL;
    st->reconnect_at_us = omni_mono_us() + st->backoff_ms * 1000LL;
    st->backoff_ms = st->backoff_ms * 2 > 2000 ? 2000 : st->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    store_t *st = ac->data;
    if (status != REDIS_OK) {
        LOG_WARN("redis: connect to %s failed: %s", st->cfg->redis, ac->errstr);
        schedule_reconnect(st);
        return;
    }
    st->state = STORE_UP;
    st->backoff_ms = 100;
    st->progress_us = omni_mono_us();
    LOG_INFO("redis: connected to %s", st->cfg->redis);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    store_t *st = ac->data;
    if (status != REDIS_OK)
        LOG_WARN("redis: connection to %s lost: %s", st->cfg->redis, ac->errstr);
    metrics_inc(M_REDIS_RECONNECTS);
    schedule_reconnect(st);
}

static void start_connect(store_t *st)
{
    redisAsyncContext *ac = st->path ? redisAsyncConnectUnix(st->path) : redisAsyncConnect(st->host, st->port);
    if (!ac || ac->err) {
        LOG_WARN("redis: connect to %s failed: %s", st->cfg->redis, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    st->state = STORE_CONNECTING;
    st->progress_us = omni_mono_us();
    redis_zmq_attach(&st->rz, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    char dbs[16];
    snprintf(dbs, sizeof(dbs), "%d", st->db);
    const char *sel[] = {"SELECT", dbs};
    if (st->db)
        send_call(st, CALL_PLAIN, NULL, NULL, 2, sel, NULL);
    reload_scripts(st);
    char seqkey[160];
    snprintf(seqkey, sizeof(seqkey), "%sseq", st->prefix);
    const char *g[] = {"GET", seqkey};
    send_call(st, CALL_SEQ, NULL, NULL, 2, g, NULL);
}

void store_pollitem(store_t *st, zmq_pollitem_t *it)
{
    redis_zmq_pollitem(&st->rz, it);
}

void store_handle(store_t *st, short revents)
{
    redis_zmq_handle(&st->rz, revents);
}

int store_timeout_ms(const store_t *st)
{
    if (st->state != STORE_DOWN)
        return -1;
    int64_t left = st->reconnect_at_us - omni_mono_us();
    return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

void store_tick(store_t *st)
{
    int64_t now = omni_mono_us();
    if (st->state == STORE_DOWN && now >= st->reconnect_at_us) {
        start_connect(st);
    } else if (st->ac && (st->pending > 0 || st->state == STORE_CONNECTING) &&
               now - st->progress_us > STORE_STALL_US) {
        LOG_WARN("redis: no answer from %s for %lld ms; reconnecting", st->cfg->redis,
                 (long long)((now - st->progress_us) / 1000));
        metrics_inc(M_REDIS_ERRORS);
        /* Not redisAsyncDisconnect: hiredis 0.14 waits there for the pending replies, which is
         * what never comes. Freeing fails them now (NULL replies: retryable) and closes the fd. */
        redisAsyncContext *ac = st->ac;
        redisAsyncFree(ac);
        if (st->ac == ac) /* still connecting: no disconnect callback ran */
            schedule_reconnect(st);
    }
}

store_state_t store_state(const store_t *st) { return st->state; }
uint64_t store_last_seq(const store_t *st) { return st->last_seq; }
size_t store_pending(const store_t *st) { return st->pending; }

const char *store_state_name(const store_t *st)
{
    return st->state == STORE_UP ? "ok" : st->state == STORE_CONNECTING ? "connecting" : "down";
}

static uint64_t reply_u64(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (uint64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoull(r->str, NULL, 10);
    return 0;
}

/* Error replies that say "not now" rather than "never": the caller retries them. */
static int transient_error(const char *msg)
{
    static const char *const words[] = {"NOSCRIPT", "LOADING", "BUSY", "READONLY", "MASTERDOWN", "OOM",
                                        "TRYAGAIN", "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strncmp(msg, words[i], strlen(words[i])) == 0)
            return 1;
    return 0;
}

static int script_failed(store_t *st, redisReply *r, const char *what)
{
    metrics_inc(M_REDIS_ERRORS);
    LOG_ERROR("redis: %s script failed: %s", what, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r->type != REDIS_REPLY_ERROR || !transient_error(r->str))
        return OMNI_EIO;
    /* NOSCRIPT means someone flushed the script cache: reload (queued before any retry). */
    if (strncmp(r->str, "NOSCRIPT", 8) == 0 && st->ac)
        reload_scripts(st);
    return OMNI_EUNAVAIL;
}

static void finish_ingest(store_t *st, call_t *call, redisReply *r)
{
    store_ingest_cb cb = (store_ingest_cb)call->cb;
    int err = !r ? OMNI_EUNAVAIL : 0;
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_ARRAY ||
              r->element[1]->type != REDIS_REPLY_ARRAY))
        err = script_failed(st, r, "ingest");
    if (err) {
        cb(err, NULL, 0, NULL, 0, call->ud);
        return;
    }
    redisReply *rs = r->element[0], *es = r->element[1];
    store_result_t res[rs->elements ? rs->elements : 1];
    store_event_t ev[es->elements ? es->elements : 1];
    size_t nr = 0, ne = 0;
    for (size_t i = 0; i < rs->elements; i++) {
        redisReply *e = rs->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
            continue;
        res[nr].duplicate = e->element[0]->integer != 0;
        res[nr].customer_id = e->element[1]->type == REDIS_REPLY_STRING ? e->element[1]->str : "";
        res[nr].conversation_id = e->element[2]->type == REDIS_REPLY_STRING ? e->element[2]->str : "";
        res[nr].seq = reply_u64(e->element[3]);
        if (res[nr].seq > st->last_seq)
            st->last_seq = res[nr].seq;
        nr++;
    }
    for (size_t i = 0; i < es->elements; i++) {
        redisReply *e = es->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
            continue;
        ev[ne].seq = reply_u64(e->element[0]);
        ev[ne].channel = e->element[1]->str;
        ev[ne].kind = e->element[2]->str;
        ev[ne].bytes = (const uint8_t *)e->element[3]->str;
        ev[ne].len = e->element[3]->len;
        if (ev[ne].seq > st->last_seq)
            st->last_seq = ev[ne].seq;
        ne++;
    }
    cb(0, res, nr, ev, ne, call->ud);
}

static void finish_customer(call_t *call, redisReply *r)
{
    store_customer_cb cb = (store_customer_cb)call->cb;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            metrics_inc(M_REDIS_ERRORS);
        cb(r ? OMNI_EIO : OMNI_EUNAVAIL, NULL, NULL, 0, NULL, 0, call->ud);
        return;
    }
    if (r->elements != 3) {
        cb(0, NULL, NULL, 0, NULL, 0, call->ud);
        return;
    }
    redisReply *ids = r->element[1], *convs = r->element[2];
    const char **idv = calloc(ids->elements + 1, sizeof(*idv));
    store_conv_t *cv = calloc(convs->elements + 1, sizeof(*cv));
    size_t nc = 0;
    if (!idv || !cv) {
        free(idv);
        free(cv);
        cb(OMNI_ENOMEM, NULL, NULL, 0, NULL, 0, call->ud);
        return;
    }
    for (size_t i = 0; i < ids->elements; i++)
        idv[i] = ids->element[i]->str;
    for (size_t i = 0; i < convs->elements; i++) {
        redisReply *e = convs->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
            continue;
        cv[nc].conversation_id = e->element[0]->str;
        cv[nc].channel = e->element[1]->str;
        cv[nc].state = e->element[2]->str;
        cv[nc].opened_ms = (int64_t)reply_u64(e->element[3]);
        nc++;
    }
    cb(0, r->element[0]->str, idv, ids->elements, cv, nc, call->ud);
    free(idv);
    free(cv);
}

/* XRANGE/XREVRANGE: [[id, [field, value, ...]], ...]; our entries carry field "e". */
static void finish_tail(call_t *call, redisReply *r)
{
    store_tail_cb cb = (store_tail_cb)call->cb;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            metrics_inc(M_REDIS_ERRORS);
        cb(r ? OMNI_EIO : OMNI_EUNAVAIL, NULL, 0, call->ud);
        return;
    }
    store_entry_t ent[r->elements ? r->elements : 1];
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        redisReply *f = e->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "e") == 0) {
                ent[n].bytes = (const uint8_t *)f->element[j + 1]->str;
                ent[n].len = f->element[j + 1]->len;
                n++;
            }
        }
    }
    if (call->kind == CALL_TAIL_REV) /* XREVRANGE answered newest first */
        for (size_t i = 0; i < n / 2; i++) {
            store_entry_t t = ent[i];
            ent[i] = ent[n - 1 - i];
            ent[n - 1 - i] = t;
        }
    cb(0, ent, n, call->ud);
}

static void finish_route(store_t *st, call_t *call, redisReply *r)
{
    store_route_cb cb = (store_route_cb)call->cb;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        cb(r ? script_failed(st, r, "route") : OMNI_EUNAVAIL, NULL, 0, call->ud);
        return;
    }
    size_t n = r->elements, nh = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 3 && e->element[1]->type == REDIS_REPLY_ARRAY)
            nh += e->element[1]->elements;
    }
    store_route_result_t *res = calloc(n ? n : 1, sizeof(*res));
    store_entry_t *hist = calloc(nh ? nh : 1, sizeof(*hist));
    if (!res || !hist) {
        free(res);
        free(hist);
        cb(OMNI_ENOMEM, NULL, 0, call->ud);
        return;
    }
    for (size_t i = 0, h = 0; i < n; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 3 || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        res[i].seq = reply_u64(e->element[0]);
        if (e->element[2]->type == REDIS_REPLY_STRING && e->element[2]->len > 0) {
            unsigned long long fs = 0;
            res[i].duplicate = 1;
            if (sscanf(e->element[2]->str, "%llu %39s", &fs, res[i].first_outbound) >= 1)
                res[i].first_seq = fs;
        }
        if (res[i].seq > st->last_seq)
            st->last_seq = res[i].seq;
        res[i].history = &hist[h];
        for (size_t k = 0; k < e->element[1]->elements; k++) {
            redisReply *b = e->element[1]->element[k];
            hist[h++] = (store_entry_t){(const uint8_t *)b->str, b->len};
            res[i].n_history++;
        }
    }
    cb(0, res, n, call->ud);
    free(res);
    free(hist);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    call_t *call = priv;
    store_t *st = call->st;
    redisReply *r = reply;
    st->pending--;
    if (r)
        st->progress_us = omni_mono_us();
    switch (call->kind) {
    case CALL_INGEST: finish_ingest(st, call, r); break;
    case CALL_CUSTOMER: finish_customer(call, r); break;
    case CALL_ROUTE: finish_route(st, call, r); break;
    case CALL_TAIL:
    case CALL_TAIL_REV: finish_tail(call, r); break;
    case CALL_SEQ:
        if (r && reply_u64(r) > st->last_seq)
            st->last_seq = reply_u64(r);
        break;
    case CALL_PLAIN:
        if (r && r->type == REDIS_REPLY_ERROR) {
            metrics_inc(M_REDIS_ERRORS);
            LOG_ERROR("redis: %s", r->str);
        }
        break;
    }
    free(call);
}

static int send_call(store_t *st, call_kind_t kind, void *cb, void *ud, int argc, const char **argv,
                     const size_t *lens)
{
    if (!st->ac || st->state == STORE_DOWN)
        return OMNI_EUNAVAIL;
    call_t *call = malloc(sizeof(*call));
    if (!call)
        return OMNI_ENOMEM;
    *call = (call_t){st, kind, cb, ud};
    if (redisAsyncCommandArgv(st->ac, on_reply, call, argc, argv, lens) != REDIS_OK) {
        free(call);
        return OMNI_EUNAVAIL;
    }
    if (st->pending++ == 0)
        st->progress_us = omni_mono_us(); /* the stall clock starts with the first waiting call */
    return 0;
}

int store_ingest(store_t *st, const store_msg_t *msgs, size_t n, store_ingest_cb cb, void *ud)
{
    size_t argc = 11; /* EVALSHA sha 1 key prefix tenant now window maxlen thread_ttl n */
    for (size_t i = 0; i < n; i++)
        argc += 9 + msgs[i].n_ids + msgs[i].n_refs + msgs[i].n_regs;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    char nums[5][24], *msgnums = malloc(n * 4 * 24);
    int rc = OMNI_ENOMEM;
    if (!argv || !lens || !msgnums)
        goto out;
    size_t a = 0;
#define ARG(s, l) (argv[a] = (s), lens[a] = (l), a++)
#define ARGS(s) ARG((s), strlen(s))
    ARGS("EVALSHA");
    ARGS(st->sha[SCRIPT_INGEST]);
    ARGS("1");
    ARGS(st->stream_key);
    ARGS(st->prefix);
    ARGS(st->cfg->tenant);
    snprintf(nums[0], 24, "%lld", (long long)omni_now_ms());
    snprintf(nums[1], 24, "%lld", (long long)st->cfg->idempotency_window_s);
    snprintf(nums[2], 24, "%lld", (long long)st->cfg->stream_maxlen);
    snprintf(nums[3], 24, "%lld", (long long)st->cfg->thread_window_s);
    snprintf(nums[4], 24, "%zu", n);
    for (int k = 0; k < 5; k++)
        ARGS(nums[k]);
    for (size_t i = 0; i < n; i++) {
        const store_msg_t *m = &msgs[i];
        char *num = msgnums + i * 4 * 24;
        snprintf(num, 24, "%d", m->chnum);
        snprintf(num + 24, 24, "%zu", m->n_ids);
        snprintf(num + 48, 24, "%zu", m->n_refs);
        snprintf(num + 72, 24, "%zu", m->n_regs);
        ARGS(m->channel);
        ARGS(num);
        ARGS(m->pmid);
        ARGS(m->account ? m->account : "");
        ARGS(num + 24);
        for (size_t k = 0; k < m->n_ids; k++)
            ARGS(m->ids[k]);
        ARGS(num + 48);
        for (size_t k = 0; k < m->n_refs; k++)
            ARGS(m->refs[k]);
        ARGS(num + 72);
        for (size_t k = 0; k < m->n_regs; k++)
            ARGS(m->regs[k]);
        ARG((const char *)m->partial, m->partial_len);
        ARG(m->route ? (const char *)m->route : "", m->route ? m->route_len : 0);
    }
#undef ARG
#undef ARGS
    rc = send_call(st, CALL_INGEST, (void *)cb, ud, (int)a, argv, lens);
out:
    free(argv);
    free(lens);
    free(msgnums);
    return rc;
}

int store_customer(store_t *st, const char *identity, store_customer_cb cb, void *ud)
{
    const char *argv[] = {"EVALSHA", st->sha[SCRIPT_CUSTOMER], "1", st->stream_key, st->prefix, identity};
    return send_call(st, CALL_CUSTOMER, (void *)cb, ud, 6, argv, NULL);
}

int store_tail(store_t *st, uint64_t from_seq, unsigned last, unsigned limit, store_tail_cb cb, void *ud)
{
    char from[32], count[16];
    if (from_seq > 0) {
        snprintf(from, sizeof(from), "%llu-0", (unsigned long long)from_seq);
        snprintf(count, sizeof(count), "%u", limit ? limit : 1000);
        const char *argv[] = {"XRANGE", st->stream_key, from, "+", "COUNT", count};
        return send_call(st, CALL_TAIL, (void *)cb, ud, 6, argv, NULL);
    }
    snprintf(count, sizeof(count), "%u", last ? last : 10);
    const char *argv[] = {"XREVRANGE", st->stream_key, "+", "-", "COUNT", count};
    return send_call(st, CALL_TAIL_REV, (void *)cb, ud, 6, argv, NULL);
}

int store_route(store_t *st, const store_route_op_t *ops, size_t n, store_route_cb cb, void *ud)
{
    size_t argc = 8 + 9 * n; /* EVALSHA sha 1 key prefix now maxlen n, then 9 per op */
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    char nums[3][24];
    int rc = OMNI_ENOMEM;
    if (!argv || !lens)
        goto out;
    size_t a = 0;
#define ARG(s, l) (argv[a] = (s), lens[a] = (l), a++)
#define ARGS(s) ARG((s), strlen(s))
    ARGS("EVALSHA");
    ARGS(st->sha[SCRIPT_ROUTE]);
    ARGS("1");
    ARGS(st->stream_key);
    ARGS(st->prefix);
    snprintf(nums[0], 24, "%lld", (long long)omni_now_ms());
    snprintf(nums[1], 24, "%lld", (long long)st->cfg->stream_maxlen);
    snprintf(nums[2], 24, "%zu", n);
    for (int k = 0; k < 3; k++)
        ARGS(nums[k]);
    for (size_t i = 0; i < n; i++) {
        const store_route_op_t *o = &ops[i];
        ARGS(o->conversation_id);
        ARGS(o->action ? o->action : "");
        ARG(o->record ? (const char *)o->record : "", o->record ? o->record_len : 0);
        ARGS(o->agent ? o->agent : "");
        ARGS(o->flags ? o->flags : "");
        ARG(o->partial ? (const char *)o->partial : "", o->partial ? o->partial_len : 0);
        ARGS(o->reply_key ? o->reply_key : "");
        ARGS(o->outbox_key ? o->outbox_key : "");
        ARG(o->outbox_val ? (const char *)o->outbox_val : "", o->outbox_val ? o->outbox_len : 0);
    }
#undef ARG
#undef ARGS
    rc = send_call(st, CALL_ROUTE, (void *)cb, ud, (int)a, argv, lens);
out:
    free(argv);
    free(lens);
    return rc;
}

int store_load_hash(store_t *st, const char *hash, store_record_cb cb, void *ud, char *err, size_t errlen)
{
    char key[160], cursor[32] = "0";
    int rc = OMNI_EUNAVAIL;
    redisReply *r = NULL;
    redisContext *c = sync_connect(st, err, errlen);
    if (!c)
        return OMNI_EUNAVAIL;
    snprintf(key, sizeof(key), "%s%s", st->prefix, hash);
    do {
        r = redisCommand(c, "HSCAN %s %s COUNT 1000", key, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "cannot read %s from Redis at %s: %s", key, st->cfg->redis,
                     r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2)
            if (cb((const uint8_t *)kv->element[i + 1]->str, kv->element[i + 1]->len, ud) != 0) {
                rc = 0;
                goto out;
            }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    rc = 0;
out:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}
