/* Agent sessions: a routing id <-> agent id table with last-heard times. A session is the only
 * way an agent is online; when its heartbeats stop, routing.c requeues what it held. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/omni.h>

#include "agents.h"
#include "log.h"
#include "metrics.h"
#include "strmap.h"

typedef struct {
    char id[AGENTS_ID_MAX];
    char rkey[2 * 255 + 1];  /* routing id as hex: the key of the by_rid map */
    reply_to_t to;
    int64_t last_ms;
} session_t;

struct agents {
    void *sock;
    int64_t started_ms, timeout_ms;
    size_t max_frame;
    strmap_t by_id, by_rid;
};

int agents_new(void *sock, int64_t started_ms, int64_t timeout_ms, size_t max_frame, agents_t **out)
{
    agents_t *a = calloc(1, sizeof(*a));
    if (!a)
        return OMNI_ENOMEM;
    a->sock = sock;
    a->started_ms = started_ms;
    a->timeout_ms = timeout_ms;
    a->max_frame = max_frame;
    strmap_init(&a->by_id);
    strmap_init(&a->by_rid);
    *out = a;
    return 0;
}

void agents_destroy(agents_t **pa)
{
    agents_t *a = pa ? *pa : NULL;
    if (!a)
        return;
    const char *k;
    void *v;
    for (size_t i = 0; (i = strmap_next(&a->by_id, i, &k, &v)) != 0;)
        free(v);
    strmap_free(&a->by_id);
    strmap_free(&a->by_rid);
    free(a);
    *pa = NULL;
}

static void rid_key(const reply_to_t *to, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < to->rid_len; i++) {
        out[2 * i] = hex[to->rid[i] >> 4];
        out[2 * i + 1] = hex[to->rid[i] & 15];
    }
    out[2 * to->rid_len] = 0;
}

void agents_reply(const reply_to_t *to, Omni__V1__AgentEnvelope *env)
{
    uint8_t stackbuf[4096];
    size_t len = omni__v1__agent_envelope__get_packed_size(env);
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    if (!buf)
        return;
    omni__v1__agent_envelope__pack(env, buf);
    reply_send(to, buf, len);
    if (buf != stackbuf)
        free(buf);
}

void agents_error(const reply_to_t *to, uint64_t request_id, const char *code, const char *detail)
{
    Omni__V1__AgentError e = OMNI__V1__AGENT_ERROR__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    e.code = (char *)code;
    e.detail = (char *)detail;
    env.request_id = request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_ERROR;
    env.error = &e;
    metrics_inc(M_AGENT_ERRORS);
    LOG_DEBUG("agents: refused request %llu: %s (%s)", (unsigned long long)request_id, code, detail);
    agents_reply(to, &env);
}

static void heartbeat(agents_t *a, const reply_to_t *to, uint64_t request_id)
{
    Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    hb.started_ms = a->started_ms;
    env.request_id = request_id;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    agents_reply(to, &env);
}

void agents_frame(agents_t *a, const reply_to_t *to, const uint8_t *data, size_t len, int64_t now_ms,
                  agents_handler_fn fn, void *ctx)
{
    char key[sizeof(((session_t *)0)->rkey)];
    Omni__V1__AgentEnvelope *env = NULL;
    if (len > a->max_frame) {
        agents_error(to, 0, "bad_request", "frame above max_frame_bytes");
        return;
    }
    if (!(env = omni__v1__agent_envelope__unpack(NULL, len, data))) {
        agents_error(to, 0, "bad_request", "not an omni.v1.AgentEnvelope");
        return;
    }
    rid_key(to, key);
    session_t *s = strmap_get(&a->by_rid, key);
    if (s)
        s->last_ms = now_ms;
    /* A heartbeat without a session (it expired, or the broker restarted) is refused: that
     * refusal is how a client that only heartbeats learns to log in again. */
    if (env->body_case == OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT && s)
        heartbeat(a, to, env->request_id);
    else if (env->body_case == OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT)
        agents_error(to, env->request_id, "not_logged_in", "no session: log in again");
    else
        fn(ctx, s ? s->id : NULL, to, env);
    omni__v1__agent_envelope__free_unpacked(env, NULL);
}

int agents_read(agents_t *a, int64_t now_ms, agents_handler_fn fn, void *ctx)
{
    int frames = 0, rc;
    reply_to_t to;
    zmq_msg_t body;
    while (frames < 1024 && (rc = reply_recv(a->sock, &to, &body)) >= 0) {
        frames++;
        if (rc != 0)
            agents_error(&to, 0, "bad_request", "expected exactly one frame");
        else
            agents_frame(a, &to, zmq_msg_data(&body), zmq_msg_size(&body), now_ms, fn, ctx);
        zmq_msg_close(&body);
    }
    return frames;
}

int agents_bind(agents_t *a, const char *agent_id, const reply_to_t *to, int64_t now_ms)
{
    if (strlen(agent_id) >= AGENTS_ID_MAX)
        return OMNI_ETOOBIG;
    session_t *s = strmap_get(&a->by_id, agent_id);
    char key[sizeof(s->rkey)];
    rid_key(to, key);
    session_t *other = strmap_get(&a->by_rid, key);
    if (other && other != s) /* one socket, a second agent id: the old login ends */
        agents_unbind(a, other->id);
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            return OMNI_ENOMEM;
        snprintf(s->id, sizeof(s->id), "%s", agent_id);
        if (strmap_put(&a->by_id, s->id, s) != 0) {
            free(s);
            return OMNI_ENOMEM;
        }
    } else {
        strmap_del(&a->by_rid, s->rkey);
    }
    memcpy(s->rkey, key, sizeof(key));
    s->to = *to;
    s->last_ms = now_ms;
    if (strmap_put(&a->by_rid, s->rkey, s) != 0) {
        agents_unbind(a, agent_id);
        return OMNI_ENOMEM;
    }
    return 0;
}

void agents_unbind(agents_t *a, const char *agent_id)
{
    session_t *s = strmap_del(&a->by_id, agent_id);
    if (!s)
        return;
    if (strmap_get(&a->by_rid, s->rkey) == s)
        strmap_del(&a->by_rid, s->rkey);
    free(s);
}

int agents_send(agents_t *a, const char *agent_id, Omni__V1__AgentEnvelope *env)
{
    session_t *s = strmap_get(&a->by_id, agent_id);
    if (!s)
        return OMNI_ENOTFOUND;
    agents_reply(&s->to, env);
    return 0;
}

void agents_expire(agents_t *a, int64_t now_ms, void (*fn)(void *ctx, const char *agent_id), void *ctx)
{
    enum { BATCH = 256 };
    const char *k;
    void *v;
    char (*ids)[AGENTS_ID_MAX] = NULL;
    size_t n;
    /* Collect a batch in one pass, then act: fn may unbind, and the map must not change under
     * the iteration. A full batch means there may be more (a network blip drops many at once). */
    do {
        n = 0;
        for (size_t i = 0; n < BATCH && (i = strmap_next(&a->by_id, i, &k, &v)) != 0;) {
            const session_t *s = v;
            if (now_ms - s->last_ms <= a->timeout_ms)
                continue;
            if (!ids && !(ids = malloc(BATCH * sizeof(*ids))))
                return; /* next tick */
            snprintf(ids[n++], AGENTS_ID_MAX, "%s", s->id);
        }
        for (size_t i = 0; i < n; i++) {
            LOG_INFO("agents: %s missed its heartbeats for %lld ms: offline", ids[i], (long long)a->timeout_ms);
            metrics_inc(M_AGENT_TIMEOUTS);
            fn(ctx, ids[i]);
            agents_unbind(a, ids[i]);
        }
    } while (n == BATCH);
    free(ids);
}
