/* bench_route: end to end over ZeroMQ — adapter SDK send → the agent's Offer, open loop at a fixed
 * rate with K agents logged in from this process, and its floor: two ZeroMQ hops + one Redis call. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <omni/adapter.h>
#include <omni/v1/agent.pb-c.h>
#include <omni/v1/control.pb-c.h>

#include "benchutil.h"
#include "hist.h"

/* ------------------------------------------------------------------ options */

typedef struct {
    enum { MODE_NONE, MODE_FLOOR, MODE_RATE, MODE_SLOWLOG } mode;
    const char *broker, *agents, *control, *redis, *floor_in, *floor_out;
    double rate, seconds, warmup, drain;
    long floor_n, floor_warm, n_agents, capacity, offer_bytes, msg_bytes;
    int server_cpu, client_cpu;
    uint64_t seed;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_route MODE [options]   (see benchmarks/README.md)\n"
            "\n"
            "Modes:\n"
            "  --floor                 one-way, closed loop: sender DEALER -> relay ROUTER -> receiver DEALER\n"
            "                          (two ZeroMQ hops), one Redis EVALSHA (XADD) round trip, and both\n"
            "                          at once (the relay makes the Redis call before forwarding): the floor\n"
            "  --rate R --seconds S    open loop through the SDK at R msg/s for S s (after --warmup s); every\n"
            "                          message opens a conversation of a new customer; its latency is the\n"
            "                          agent's receipt of the Offer minus the message's intended send time\n"
            "  --slowlog               print Redis's SLOWLOG (every call, if slowlog-log-slower-than is 0)\n"
            "                          summed per broker script (ingest.lua, route.lua), then reset it\n"
            "\n"
            "Options:\n"
            "  --broker ENDPOINT       broker ingress (default tcp://127.0.0.1:5560)\n"
            "  --agents ENDPOINT       broker agents endpoint (default tcp://127.0.0.1:5561)\n"
            "  --control ENDPOINT      broker control endpoint: counters and routing state around the run\n"
            "  --redis URL             unix:///path.sock or redis://host:port (floor, slowlog)\n"
            "  --n-agents K            agents logged in (default 20); 0: a control run without routing writes\n"
            "                          (conversations queue unoffered; the acks are measured)\n"
            "  --capacity N            chat slots of each agent (default 1000, the protocol's maximum)\n"
            "  --warmup S              rate: seconds sent but not recorded (default 1)\n"
            "  --drain S               rate: wait at most S s after the last send for the last offers (default 15)\n"
            "  --seed N                text generator seed (default 1)\n"
            "  --floor-in EP, --floor-out EP   the relay's two endpoints (default ipc:///tmp/omni-bench-route-PID-in|out);\n"
            "                          use the broker's transport, or the floor is not a floor\n"
            "  --floor-count N         measured messages per floor (default 20000; 2000 warm-up)\n"
            "  --msg-bytes N           floor: size of the sent message (default 650, a packed chat Envelope)\n"
            "  --offer-bytes N         floor: size of the forwarded message (default 260, an Offer as sent)\n"
            "  --server-cpu C          floor: pin the relay and the Redis client (where the broker runs)\n"
            "  --client-cpu C          floor: pin sender and receiver (where the load generator runs)\n");
}

/* ------------------------------------------------------------------ the floor */

/* One-way latency through the relay, sender and receiver in this thread with the same clock. The
 * sender and the receiver have a ZeroMQ context each, as the SDK and the agents do in a rate run,
 * and the receiver spins on a non-blocking receive as the rate run spins on its agents. */
static int floor_forward(const opts_t *o, const char *redis, hist_t *h)
{
    relay_t r = {.in_ep = o->floor_in, .out_ep = o->floor_out, .redis = redis, .cpu = o->server_cpu,
                 .out_len = (size_t)o->offer_bytes};
    if (relay_start(&r) != 0)
        return -1;
    void *cs = zmq_ctx_new(), *cr = zmq_ctx_new();
    void *snd = zmq_socket(cs, ZMQ_DEALER), *rcv = zmq_socket(cr, ZMQ_DEALER);
    int zero = 0, rc = 0;
    zmq_setsockopt(snd, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(rcv, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_connect(snd, o->floor_in);
    zmq_connect(rcv, o->floor_out);
    zmq_send(rcv, "hi", 2, 0); /* the relay learns where to forward */
    uint8_t *msg = malloc((size_t)o->msg_bytes), buf[4096];
    if (!msg)
        rc = -1;
    else
        memset(msg, 'x', (size_t)o->msg_bytes);
    for (long i = 0; !rc && i < o->floor_warm + o->floor_n; i++) {
        uint64_t t = now_ns();
        if (zmq_send(snd, msg, (size_t)o->msg_bytes, 0) < 0) {
            rc = -1;
            break;
        }
        while (zmq_recv(rcv, buf, sizeof(buf), ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN) {
                rc = -1;
                break;
            }
            sched_yield();
        }
        if (!rc && i >= o->floor_warm)
            hist_record(h, now_ns() - t);
    }
    zmq_send(snd, "", 0, 0); /* stop */
    free(msg);
    zmq_close(snd);
    zmq_close(rcv);
    zmq_ctx_term(cs);
    zmq_ctx_term(cr);
    relay_join(&r);
    return rc;
}

static hist_t h_hops, h_redis, h_floor;

static int run_floor(const opts_t *o)
{
    hist_init(&h_hops);
    hist_init(&h_redis);
    hist_init(&h_floor);
    pin_self(o->client_cpu);
    printf("floor: %s -> %s, %ld messages each after %ld warm-up, %ld B in, %ld B out; relay and Redis client on "
           "cpu %d, sender and receiver on cpu %d\n",
           o->floor_in, o->floor_out, o->floor_n, o->floor_warm, o->msg_bytes, o->offer_bytes, o->server_cpu,
           o->client_cpu);
    fflush(stdout);
    if (floor_forward(o, NULL, &h_hops) != 0) {
        fprintf(stderr, "bench_route: zmq floor failed\n");
        return 1;
    }
    if (redis_floor(o->redis, o->server_cpu, o->floor_warm, o->floor_n, 1, &h_redis) != 0) {
        fprintf(stderr, "bench_route: redis floor failed\n");
        return 1;
    }
    if (floor_forward(o, o->redis, &h_floor) != 0) {
        fprintf(stderr, "bench_route: zmq+redis floor failed\n");
        return 1;
    }
    floor_cleanup(o->redis);
    print_hist("zmq 2 hops DEALER->ROUTER|ROUTER->DEALER", &h_hops);
    print_hist("redis EVALSHA (1 XADD), blocking", &h_redis);
    printf("  %-34s           p50 %8.1f  p99 %8.1f  p99.9 %8.1f  max %9.1f us\n", "sum of the two (percentile-wise)",
           us(hist_percentile(&h_hops, 50) + hist_percentile(&h_redis, 50)),
           us(hist_percentile(&h_hops, 99) + hist_percentile(&h_redis, 99)),
           us(hist_percentile(&h_hops, 99.9) + hist_percentile(&h_redis, 99.9)), us(h_hops.max + h_redis.max));
    print_hist("FLOOR: 2 hops + EVALSHA, measured", &h_floor);
    printf("RESULT mode=floor in=%s", o->floor_in);
    result_hist("hops_", &h_hops);
    result_hist("redis_", &h_redis);
    printf(" sum_p50_us=%.1f sum_p99_us=%.1f sum_p999_us=%.1f",
           us(hist_percentile(&h_hops, 50) + hist_percentile(&h_redis, 50)),
           us(hist_percentile(&h_hops, 99) + hist_percentile(&h_redis, 99)),
           us(hist_percentile(&h_hops, 99.9) + hist_percentile(&h_redis, 99.9)));
    result_hist("floor_", &h_floor);
    printf("\n");
    return 0;
}

/* ------------------------------------------------------------------ Redis time per broker script */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Per script kind: totals, and the commands it ran (nested entries are logged with client "?:0",
 * just before the EVALSHA that ran them, and their time is part of the EVALSHA's). */
enum { S_INGEST, S_ROUTE, S_OTHER, S_KINDS };
#define NESTED_MAX 48
typedef struct {
    uint64_t calls, usec, items, maxus, nested_calls, nested_usec;
    hist_t per_call;
    struct {
        char name[24];
        uint64_t calls, usec;
    } cmd[NESTED_MAX];
    int ncmd;
} script_stats_t;

static void nested_add(script_stats_t *st, const char *name, uint64_t calls, uint64_t usec)
{
    int k;
    for (k = 0; k < st->ncmd && strcasecmp(st->cmd[k].name, name) != 0; k++)
        continue;
    if (k == st->ncmd) {
        if (st->ncmd == NESTED_MAX)
            return;
        snprintf(st->cmd[k].name, sizeof(st->cmd[0].name), "%s", name);
        st->cmd[k].calls = st->cmd[k].usec = 0;
        st->ncmd++;
    }
    st->cmd[k].calls += calls;
    st->cmd[k].usec += usec;
    st->nested_calls += calls;
    st->nested_usec += usec;
}

/* The broker's scripts are told apart by their arguments (store.c): ingest.lua gets
 * "EVALSHA sha 1 key prefix tenant now ... n" (ARGV[2] a name, n at 10), route.lua gets
 * "EVALSHA sha 1 key prefix now maxlen n" (ARGV[2] a number, n at 7). */
static int run_slowlog(const opts_t *o)
{
    static script_stats_t st[S_KINDS], pending;
    static const char *const names[] = {"ingest", "route", "other"};
    redisContext *c = redis_open(o->redis);
    if (!c)
        return 1;
    redisReply *r = redisCommand(c, "SLOWLOG GET -1");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "bench_route: SLOWLOG GET failed\n");
        return 1;
    }
    for (int k = 0; k < S_KINDS; k++)
        hist_init(&st[k].per_call);
    /* Newest first: walk backwards so that a script's nested commands come before it. */
    for (size_t i = r->elements; i-- > 0;) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 5 || e->element[3]->type != REDIS_REPLY_ARRAY ||
            e->element[3]->elements < 1)
            continue;
        redisReply *a = e->element[3];
        uint64_t d = (uint64_t)e->element[2]->integer, n = 0;
        const char *cmd = a->element[0]->str, *client = e->element[4]->str ? e->element[4]->str : "";
        if (!strcmp(client, "?:0")) {
            nested_add(&pending, cmd, 1, d);
            continue;
        }
        if (!strcasecmp(cmd, "SLOWLOG"))
            continue;
        int kind = S_OTHER;
        if (a->elements >= 8 && !strcasecmp(cmd, "EVALSHA")) {
            if (!all_digits(a->element[5]->str) && a->elements >= 11) {
                kind = S_INGEST;
                n = strtoull(a->element[10]->str, NULL, 10);
            } else if (all_digits(a->element[5]->str)) {
                kind = S_ROUTE;
                n = strtoull(a->element[7]->str, NULL, 10);
            }
        }
        script_stats_t *s = &st[kind];
        s->calls++;
        s->usec += d;
        s->items += n;
        if (d > s->maxus)
            s->maxus = d;
        hist_record(&s->per_call, d * 1000);
        for (int k = 0; k < pending.ncmd; k++)
            nested_add(s, pending.cmd[k].name, pending.cmd[k].calls, pending.cmd[k].usec);
        pending.ncmd = 0;
        pending.nested_calls = pending.nested_usec = 0;
    }
    printf("redis slowlog: %zu entries (times are Redis's own, per call, without queueing)\n", r->elements);
    for (int k = 0; k < S_KINDS; k++) {
        script_stats_t *s = &st[k];
        if (!s->calls)
            continue;
        printf("  %-6s %7" PRIu64 " calls, %9" PRIu64 " us", names[k], s->calls, s->usec);
        if (k != S_OTHER)
            printf(", %7" PRIu64 " items (%.2f per call, %.1f us per item); per call p50 %.0f p99 %.0f max %" PRIu64
                   " us; commands inside %.1f per item, %.0f%% of the time",
                   s->items, (double)s->items / (double)s->calls, s->items ? (double)s->usec / (double)s->items : 0,
                   us(hist_percentile(&s->per_call, 50)), us(hist_percentile(&s->per_call, 99)), s->maxus,
                   s->items ? (double)s->nested_calls / (double)s->items : 0,
                   s->usec ? 100.0 * (double)s->nested_usec / (double)s->usec : 0);
        printf("\n");
        if (k == S_OTHER || !s->items)
            continue;
        printf("         inside, per item:");
        for (int j = 0; j < s->ncmd; j++)
            printf(" %s %.2fx %.1fus", s->cmd[j].name, (double)s->cmd[j].calls / (double)s->items,
                   (double)s->cmd[j].usec / (double)s->items);
        printf("\n");
    }
    printf("RESULT mode=slowlog entries=%zu", r->elements);
    for (int k = 0; k < S_KINDS; k++)
        printf(" %s_calls=%" PRIu64 " %s_us=%" PRIu64 " %s_items=%" PRIu64 " %s_nested_us=%" PRIu64, names[k],
               st[k].calls, names[k], st[k].usec, names[k], st[k].items, names[k], st[k].nested_usec);
    printf("\n");
    freeReplyObject(r);
    if ((r = redisCommand(c, "SLOWLOG RESET")))
        freeReplyObject(r);
    redisFree(c);
    return 0;
}

/* ------------------------------------------------------------------ agents */

/* What a request was, in its id's top byte, so that an answer says what it answers. */
enum { RQ_LOGIN = 1, RQ_ACCEPT, RQ_CLOSE, RQ_LOGOUT, RQ_HEARTBEAT };
#define RQ_KIND(id) ((int)((id) >> 56))

typedef struct {
    void *sock;
    int fd;
    int dirty;        /* sent on since the last drain: a send may have eaten the fd's wake-up */
    int logged_in;               /* 1 after LoginOk, -1 refused */
    char id[32];
    uint64_t req;
    uint64_t next_hb;
} agent_t;

#define HEARTBEAT_MS 500 /* well inside the broker's heartbeat_timeout_ms (6000 by default) */

typedef struct {
    uint64_t offers, foreign, reoffers, revokes, assignments, accepts_sent, closes_sent, close_ok, logout_ok;
    uint64_t accept_err, close_err, other_err, released, away, send_fail, offer_bytes;
} agent_stats_t;

static agent_stats_t A;

/* ------------------------------------------------------------------ the run */

typedef struct {
    uint64_t base;           /* SDK request id of message 0 */
    uint64_t n;              /* messages in the run, warm-up included */
    uint64_t *when;          /* intended send time (ns) */
    uint64_t *sent_at, *ack_at, *offer_at;
    int32_t *wait_ms;        /* Offer.wait_ms: the broker's own clock, ingest call -> offer */
    uint64_t acks, rejected, duplicate;
    char nonce[16];
    size_t prefix_len;
    char prefix[32];         /* "rb NONCE " */
} run_t;

static run_t R;

static void on_ack(omni_adapter_t *ad, const omni_ack_t *ack, void *user)
{
    (void)ad;
    (void)user;
    uint64_t i = ack->request_id - R.base;
    if (ack->request_id < R.base || i >= R.n || R.ack_at[i])
        return;
    R.ack_at[i] = now_ns();
    R.acks++;
    if (!ack->accepted)
        R.rejected++;
    if (ack->duplicate)
        R.duplicate++;
}

static void agent_send(agent_t *a, Omni__V1__AgentEnvelope *env, int kind)
{
    uint8_t buf[1024];
    env->request_id = ((uint64_t)kind << 56) | ++a->req;
    size_t len = omni__v1__agent_envelope__get_packed_size(env);
    if (len > sizeof(buf) || zmq_send(a->sock, buf, omni__v1__agent_envelope__pack(env, buf), ZMQ_DONTWAIT) < 0)
        A.send_fail++;
    a->dirty = 1;
}

static void agent_login(agent_t *a, const opts_t *o)
{
    Omni__V1__Login l = OMNI__V1__LOGIN__INIT;
    Omni__V1__ChannelSlots cs = OMNI__V1__CHANNEL_SLOTS__INIT, *csp = &cs;
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    l.agent_id = a->id;
    cs.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    cs.slots = (uint32_t)o->capacity;
    l.capacity = &csp;
    l.n_capacity = 1;
    l.state = OMNI__V1__AGENT_STATE__AGENT_STATE_AVAILABLE;
    l.heartbeat_ms = HEARTBEAT_MS;
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN;
    env.login = &l;
    agent_send(a, &env, RQ_LOGIN);
}

static void agent_simple(agent_t *a, Omni__V1__AgentEnvelope__BodyCase kind, void *body, int rq)
{
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.body_case = kind;
    switch (kind) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT: env.accept = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE: env.close = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT: env.heartbeat = body; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGOUT: env.logout = body; break;
    default: return;
    }
    agent_send(a, &env, rq);
}

static void report_error(const char *what, const Omni__V1__AgentError *e)
{
    static int shown;
    if (shown++ < 5)
        fprintf(stderr, "bench_route: %s refused: %s: %s\n", what, e->code, e->detail);
}

/* Message i's number if the preview is one of ours ("rb NONCE i ..."), else UINT64_MAX. */
static uint64_t preview_index(const char *p)
{
    if (strncmp(p, R.prefix, R.prefix_len) != 0)
        return UINT64_MAX;
    char *end;
    uint64_t i = strtoull(p + R.prefix_len, &end, 10);
    return end != p + R.prefix_len && *end == ' ' && i < R.n ? i : UINT64_MAX;
}

static void on_agent_message(agent_t *a, const Omni__V1__AgentEnvelope *env, uint64_t t, size_t len)
{
    switch (env->body_case) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK: a->logged_in = 1; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_OFFER: {
        uint64_t i = preview_index(env->offer->preview);
        if (i == UINT64_MAX) {
            A.foreign++; /* left by an earlier run: accepted and closed all the same */
        } else if (R.offer_at[i]) {
            A.reoffers++;
        } else {
            R.offer_at[i] = t;
            R.wait_ms[i] = (int32_t)env->offer->wait_ms;
            A.offers++;
            A.offer_bytes += len;
        }
        Omni__V1__Accept ac = OMNI__V1__ACCEPT__INIT;
        ac.offer_id = env->offer->offer_id;
        agent_simple(a, OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT, &ac, RQ_ACCEPT);
        A.accepts_sent++;
        break;
    }
    case OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT: {
        /* Closing at once keeps the agent's slots and the broker's tables at the in-flight size. */
        Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
        A.assignments++;
        cl.conversation_id = env->assignment->conversation_id;
        cl.disposition = "bench";
        agent_simple(a, OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE, &cl, RQ_CLOSE);
        A.closes_sent++;
        break;
    }
    case OMNI__V1__AGENT_ENVELOPE__BODY_OK:
        if (RQ_KIND(env->request_id) == RQ_CLOSE)
            A.close_ok++;
        else if (RQ_KIND(env->request_id) == RQ_LOGOUT)
            A.logout_ok++;
        break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ERROR:
        switch (RQ_KIND(env->request_id)) {
        case RQ_ACCEPT: A.accept_err++; report_error("accept", env->error); break;
        case RQ_CLOSE: A.close_err++; report_error("close", env->error); break;
        case RQ_LOGIN:
            fprintf(stderr, "bench_route: login of %s refused: %s: %s\n", a->id, env->error->code,
                    env->error->detail);
            a->logged_in = -1;
            break;
        default: A.other_err++; report_error("request", env->error); break;
        }
        break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REVOKE: A.revokes++; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_RELEASED: A.released++; break;
    case OMNI__V1__AGENT_ENVELOPE__BODY_STATUS:
        if (env->status->state == OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY)
            A.away++;
        break;
    default: break; /* heartbeat answers, conversation events */
    }
}

static agent_t *agents;
static struct pollfd *pfds;
static long n_agents;

static void agents_drain(agent_t *a)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, a->sock, ZMQ_DONTWAIT) >= 0) {
        uint64_t t = now_ns();
        Omni__V1__AgentEnvelope *env = omni__v1__agent_envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (env) {
            on_agent_message(a, env, t, zmq_msg_size(&m));
            omni__v1__agent_envelope__free_unpacked(env, NULL);
        }
    }
    zmq_msg_close(&m);
    /* The EAGAIN above processed the socket's pending commands after our last send. */
    a->dirty = 0;
}

/* One pass over the agents: one poll(2) on their ZMQ_FDs (edge-triggered: readable means "look
 * again"), then every socket that signalled or was sent on; heartbeats when due. */
static void agents_pass(uint64_t now)
{
    if (poll(pfds, (nfds_t)n_agents, 0) < 0 && errno != EINTR)
        return;
    for (long k = 0; k < n_agents; k++) {
        agent_t *a = &agents[k];
        if ((pfds[k].revents & POLLIN) || a->dirty)
            agents_drain(a);
        if (now >= a->next_hb) {
            Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
            agent_simple(a, OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT, &hb, RQ_HEARTBEAT);
            a->next_hb = now + HEARTBEAT_MS * 1000000ull;
        }
    }
}

static void *agent_ctx;

static int agents_open(const opts_t *o)
{
    n_agents = o->n_agents;
    agents = calloc((size_t)n_agents, sizeof(*agents));
    pfds = calloc((size_t)n_agents, sizeof(*pfds));
    if (!agents || !pfds)
        return -1;
    /* One context for all agents: their own I/O thread, apart from the SDK's. */
    agent_ctx = zmq_ctx_new();
    for (long k = 0; k < n_agents; k++) {
        agent_t *a = &agents[k];
        int zero = 0;
        size_t fl = sizeof(a->fd);
        snprintf(a->id, sizeof(a->id), "bench-agent-%ld", k);
        a->sock = zmq_socket(agent_ctx, ZMQ_DEALER);
        /* No high-water marks on our side: a dropped offer or accept would look like a broker fault. */
        zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(a->sock, ZMQ_SNDHWM, &zero, sizeof(zero));
        zmq_setsockopt(a->sock, ZMQ_RCVHWM, &zero, sizeof(zero));
        if (zmq_connect(a->sock, o->agents) != 0 || zmq_getsockopt(a->sock, ZMQ_FD, &a->fd, &fl) != 0) {
            fprintf(stderr, "bench_route: cannot connect to %s: %s\n", o->agents, zmq_strerror(errno));
            return -1;
        }
        pfds[k] = (struct pollfd){.fd = a->fd, .events = POLLIN};
    }
    /* A Login nobody answered (the broker not up yet) is repeated, as agent clients do. */
    uint64_t end = now_ns() + 5000000000ull, again = 0;
    for (;;) {
        long in = 0;
        uint64_t t = now_ns();
        for (long k = 0; k < n_agents; k++) {
            if (agents[k].logged_in < 0)
                return -1;
            in += agents[k].logged_in;
            if (!agents[k].logged_in && t >= again)
                agent_login(&agents[k], o);
        }
        if (in == n_agents)
            break;
        if (t > end) {
            fprintf(stderr, "bench_route: %ld of %ld agents logged in within 5 s at %s\n", in, n_agents, o->agents);
            return -1;
        }
        if (t >= again)
            again = t + 1000000000ull;
        agents_pass(t);
        usleep(1000);
    }
    for (long k = 0; k < n_agents; k++)
        agents[k].next_hb = now_ns() + HEARTBEAT_MS * 1000000ull;
    return 0;
}

/* Logout (the broker requeues whatever is still held), then at most 1 s for the answers. */
static void agents_close(void)
{
    for (long k = 0; k < n_agents; k++) {
        Omni__V1__Logout lo = OMNI__V1__LOGOUT__INIT;
        agent_simple(&agents[k], OMNI__V1__AGENT_ENVELOPE__BODY_LOGOUT, &lo, RQ_LOGOUT);
    }
    uint64_t end = now_ns() + 1000000000ull;
    while (A.logout_ok < (uint64_t)n_agents && now_ns() < end) {
        agents_pass(now_ns());
        usleep(1000);
    }
    for (long k = 0; k < n_agents; k++)
        zmq_close(agents[k].sock);
    zmq_ctx_term(agent_ctx);
    free(agents);
    free(pfds);
}

/* Conversations waiting in the broker's queues and held by agents, from the control endpoint:
 * both must come back to 0 when the run is over, or routing state grows with the run. */
static int routing_state(const char *endpoint, uint64_t *waiting, uint64_t *held)
{
    int ok = 0;
    *waiting = *held = 0;
    if (!endpoint)
        return -1;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, tmo = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    zmq_connect(s, endpoint);
    for (int q = 0; q < 2; q++) {
        Omni__V1__QueuesRequest qr = OMNI__V1__QUEUES_REQUEST__INIT;
        Omni__V1__AgentsRequest ar = OMNI__V1__AGENTS_REQUEST__INIT;
        Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
        req.id = (uint64_t)q + 1;
        if (q == 0) {
            req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_QUEUES;
            req.queues = &qr;
        } else {
            req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_AGENTS;
            req.agents = &ar;
        }
        uint8_t buf[64];
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_send(s, buf, omni__v1__control_request__pack(&req, buf), 0) >= 0 && zmq_msg_recv(&m, s, 0) >= 0) {
            Omni__V1__ControlReply *rep =
                omni__v1__control_reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            if (rep && rep->body_case == OMNI__V1__CONTROL_REPLY__BODY_QUEUES) {
                for (size_t i = 0; i < rep->queues->n_queues; i++)
                    *waiting += rep->queues->queues[i]->waiting;
                ok++;
            } else if (rep && rep->body_case == OMNI__V1__CONTROL_REPLY__BODY_AGENTS) {
                for (size_t i = 0; i < rep->agents->n_agents; i++)
                    *held += rep->agents->agents[i]->n_conversations;
                ok++;
            }
            if (rep)
                omni__v1__control_reply__free_unpacked(rep, NULL);
        }
        zmq_msg_close(&m);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return ok == 2 ? 0 : -1;
}

static int send_one(omni_adapter_t *ad, uint64_t i, uint64_t *efull)
{
    char from[64], pmid[64], text[600];
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    uint64_t rid;
    /* A new customer per message: each one opens a conversation, hence exactly one offer. */
    snprintf(from, sizeof(from), "chat:rb-%s-%" PRIu64, R.nonce, i);
    snprintf(pmid, sizeof(pmid), "rb-%s-%" PRIu64, R.nonce, i);
    snprintf(text, sizeof(text), "%s%" PRIu64 " %s", R.prefix, i, texts[i % NTEXTS]);
    m.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    m.channel_account = (char *)"site-main";
    m.provider_message_id = pmid;
    m.from = from;
    m.text = text;
    m.locale = (char *)"ja-JP";
    int rc = omni_adapter_send(ad, &m, &rid);
    if (rc == OMNI_EFULL) {
        (*efull)++;
        return rc;
    }
    if (rc) {
        fprintf(stderr, "bench_route: omni_adapter_send: %s\n", omni_strerror(rc));
        return rc;
    }
    if (i == 0)
        R.base = rid;
    else if (rid != R.base + i) {
        fprintf(stderr, "bench_route: unexpected request id %" PRIu64 "\n", rid);
        return OMNI_EINVAL;
    }
    return 0;
}

/* The loop's one pass: the SDK, the agents, then the core for the I/O threads. */
static void pass(omni_adapter_t *ad)
{
    omni_adapter_process(ad);
    agents_pass(now_ns());
    sched_yield();
}

static int run_rate(const opts_t *o)
{
    uint64_t total = (uint64_t)(o->rate * (o->warmup + o->seconds) + 0.5), efull = 0;
    uint64_t skip = (uint64_t)(o->rate * o->warmup + 0.5);
    R.n = total;
    R.when = calloc(total, sizeof(uint64_t));
    R.sent_at = calloc(total, sizeof(uint64_t));
    R.ack_at = calloc(total, sizeof(uint64_t));
    R.offer_at = calloc(total, sizeof(uint64_t));
    R.wait_ms = calloc(total, sizeof(int32_t));
    if (!R.when || !R.sent_at || !R.ack_at || !R.offer_at || !R.wait_ms)
        return 1;
    /* The SDK first: connecting waits for the broker to settle, and logged-in agents would
     * need heartbeats meanwhile. */
    omni_adapter_t *ad = connect_sdk(o->broker, o->control, OMNI__V1__CHANNEL__CHANNEL_CHAT, 2000000, 0, on_ack);
    if (!ad || (o->n_agents && agents_open(o) != 0))
        return 1;
    /* Without agents (a control run: the same ingest, no offers and no routing writes) the run
     * waits for acks instead. */
    const uint64_t *done = o->n_agents ? &A.offers : &R.acks;
    counters_t c0 = broker_counters(o->control);
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns(), i = 0, last_send = t0, backlog_max = 0, backlog_end = 0, next_sample = t0;
    uint64_t measure_from = t0 + (uint64_t)(o->warmup * 1e9);
    /* Open loop: message i is due at t0 + i/R whatever happened to the ones before it. */
    while (i < total) {
        uint64_t now = now_ns();
        while (i < total) {
            uint64_t due = t0 + (uint64_t)((double)i * 1e9 / o->rate);
            if (due > now)
                break;
            R.when[i] = due;
            int rc = send_one(ad, i, &efull);
            if (rc == OMNI_EFULL)
                break; /* back-pressure: this one is late now, and its lateness counts */
            if (rc)
                return 1;
            R.sent_at[i] = last_send = now_ns();
            i++;
        }
        pass(ad);
        if (now >= next_sample) { /* sent and not offered yet: the backlog between us and the agents */
            uint64_t b = i - *done;
            if (b > backlog_max)
                backlog_max = b;
            next_sample = now + 10000000ull;
        }
    }
    backlog_end = total - *done;
    uint64_t drain_end = last_send + (uint64_t)(o->drain * 1e9);
    while (*done < total && now_ns() < drain_end)
        pass(ad);
    /* Let the accepts and closes in flight finish, so the broker is left with no conversation;
     * not worth waiting for behind a backlog that did not even deliver its offers. */
    uint64_t tidy_end = now_ns() + (A.offers < total ? 1000000000ull : 5000000000ull);
    while ((A.assignments + A.accept_err < A.accepts_sent || A.close_ok + A.close_err < A.closes_sent) &&
           now_ns() < tidy_end)
        pass(ad);
    double cpu = cpu_s() - cpu0, wall = (double)(now_ns() - t0) / 1e9;
    counters_t c1 = broker_counters(o->control);
    uint64_t waiting = 0, held = 0;
    int have_state = routing_state(o->control, &waiting, &held) == 0;

    /* ---- post-processing: everything below uses the recorded times only ---- */
    hist_t lat, ack, lag, after_ack, before_ack, wait;
    hist_init(&lat);
    hist_init(&ack);
    hist_init(&lag);
    hist_init(&after_ack);
    hist_init(&before_ack);
    hist_init(&wait);
    size_t nsec = (size_t)(o->seconds + 0.999);
    hist_t *sec = calloc(nsec ? nsec : 1, sizeof(hist_t));
    uint64_t *sec_missing = calloc(nsec ? nsec : 1, sizeof(uint64_t));
    if (!sec || !sec_missing)
        return 1;
    for (size_t s = 0; s < nsec; s++)
        hist_init(&sec[s]);
    uint64_t measured = total - skip, offered = 0, missing = 0, last_offer = measure_from, last_ack = measure_from;
    for (uint64_t k = skip; k < total; k++) {
        size_t s = (size_t)((R.when[k] - measure_from) / 1000000000ull);
        if (s >= nsec)
            s = nsec - 1;
        hist_record(&lag, R.sent_at[k] - R.when[k]);
        if (R.ack_at[k]) {
            hist_record(&ack, R.ack_at[k] - R.when[k]);
            if (R.ack_at[k] > last_ack)
                last_ack = R.ack_at[k];
        }
        if (!R.offer_at[k]) {
            missing++;
            sec_missing[s]++;
            continue;
        }
        offered++;
        hist_record(&lat, R.offer_at[k] - R.when[k]);
        hist_record(&sec[s], R.offer_at[k] - R.when[k]);
        hist_record(&wait, (uint64_t)(R.wait_ms[k] > 0 ? R.wait_ms[k] : 0) * 1000000ull);
        if (R.offer_at[k] > last_offer)
            last_offer = R.offer_at[k];
        if (R.ack_at[k] && R.offer_at[k] >= R.ack_at[k])
            hist_record(&after_ack, R.offer_at[k] - R.ack_at[k]);
        else if (R.ack_at[k])
            hist_record(&before_ack, R.ack_at[k] - R.offer_at[k]);
    }
    uint64_t all_missing = total - A.offers, last_offer_any = t0;
    for (uint64_t k = 0; k < total; k++)
        if (R.offer_at[k] > last_offer_any)
            last_offer_any = R.offer_at[k];
    /* What an overloaded broker delivers: every offer of the phase over the time they took. */
    double all_rate = last_offer_any > t0 ? (double)A.offers / ((double)(last_offer_any - t0) / 1e9) : 0;
    double span = (double)(last_send - measure_from) / 1e9;
    double sent_rate = span > 0 ? (double)measured / span : 0;
    double ospan = (double)(last_offer - measure_from) / 1e9, aspan = (double)(last_ack - measure_from) / 1e9;
    double offered_rate = ospan > 0 ? (double)offered / ospan : 0, acked_rate = aspan > 0 ? (double)ack.n / aspan : 0;
    double tail_ms = last_offer > last_send ? (double)(last_offer - last_send) / 1e6 : 0;
    /* Sustained: every offer arrived, and they came as fast as the messages went out. Otherwise
     * the percentiles measure how long the backlog got, not the path. */
    int sustained = all_missing == 0 && sent_rate >= 0.97 * o->rate && offered_rate >= 0.97 * o->rate;
    if (!o->n_agents)
        sustained = R.acks == total && sent_rate >= 0.97 * o->rate && acked_rate >= 0.97 * o->rate;

    printf("rate %.0f msg/s for %.1f s (+%.1f s warm-up): %" PRIu64 " messages, each from a new customer; %ld agents "
           "x %ld chat slots\n",
           o->rate, o->seconds, o->warmup, total, o->n_agents, o->capacity);
    printf("  sent %" PRIu64 " measured at %.1f/s (send lag p99 %.1f us, max %.1f us), acked at %.1f/s, offers "
           "received at %.1f/s\n",
           measured, sent_rate, us(hist_percentile(&lag, 99)), us(lag.max), acked_rate, offered_rate);
    printf("  offers: %" PRIu64 " of %" PRIu64 " sent (%" PRIu64 " missing after the %.0f s drain), %" PRIu64
           " again after a revoke, %" PRIu64 " revokes, %" PRIu64 " from earlier runs; mean Offer %.0f B\n",
           A.offers, total, all_missing, o->drain, A.reoffers, A.revokes, A.foreign,
           A.offers ? (double)A.offer_bytes / (double)A.offers : 0);
    printf("  agents: %" PRIu64 " accepts -> %" PRIu64 " assignments, %" PRIu64 " closes -> %" PRIu64
           " ok; refused: accept %" PRIu64 ", close %" PRIu64 ", other %" PRIu64 "; set away %" PRIu64
           ", released %" PRIu64 ", send failures %" PRIu64 "\n",
           A.accepts_sent, A.assignments, A.closes_sent, A.close_ok, A.accept_err, A.close_err, A.other_err, A.away,
           A.released, A.send_fail);
    printf("  backlog (sent, no offer yet): max %" PRIu64 " (%.1f ms of traffic), %" PRIu64
           " at the last send; last offer %.1f ms after the last send\n",
           backlog_max, 1000.0 * (double)backlog_max / o->rate, backlog_end, tail_ms);
    printf("  acks: %" PRIu64 ", rejected %" PRIu64 ", duplicate %" PRIu64 ", EFULL %" PRIu64
           "; load generator cpu %.0f%%\n",
           R.acks, R.rejected, R.duplicate, efull, 100.0 * cpu / wall);
    if (c0.ok && c1.ok)
        printf("  broker counters: accepted +%" PRIu64 ", conversations opened +%" PRIu64 ", queued +%" PRIu64
               ", offers +%" PRIu64 ", offers timed out +%" PRIu64 ", assigned +%" PRIu64 ", closed +%" PRIu64
               ", requeued +%" PRIu64 ", queue full +%" PRIu64 ", agent errors +%" PRIu64 "\n",
               c1.accepted - c0.accepted, c1.opened - c0.opened, c1.queued - c0.queued, c1.offers - c0.offers,
               c1.offers_timed_out - c0.offers_timed_out, c1.assigned - c0.assigned, c1.closed - c0.closed,
               c1.requeued - c0.requeued, c1.queue_full - c0.queue_full, c1.agent_errors - c0.agent_errors);
    if (have_state)
        printf("  routing state after the run: %" PRIu64 " waiting, %" PRIu64 " held by agents\n", waiting, held);
    if (lat.n)
        print_hist("OFFER - intended send time", &lat);
    else
        printf("  no offer for any message of the measured window within the drain\n");
    print_hist("ack - intended send time", &ack);
    print_hist("offer after its ack, by", &after_ack);
    print_hist("offer before its ack, by", &before_ack);
    printf("  %-34s n=%-7" PRIu64 " p50 %8.0f  p99 %8.0f  p99.9 %8.0f  max %9.0f ms (broker clock)\n",
           "Offer.wait_ms: ingest call->offer", wait.n, us(hist_percentile(&wait, 50)) / 1000,
           us(hist_percentile(&wait, 99)) / 1000, us(hist_percentile(&wait, 99.9)) / 1000, us(wait.max) / 1000);
    printf("  per second of intended send time (p50 / p99 us, missing):");
    for (size_t s = 0; s < nsec; s++)
        printf(" [%zu] %.0f / %.0f%s", s, us(hist_percentile(&sec[s], 50)), us(hist_percentile(&sec[s], 99)),
               sec_missing[s] ? " +missing" : "");
    printf("\n");
    if (!sustained)
        printf("  NOT SUSTAINED at %.0f msg/s: %s; the broker delivered %.0f offers/s over the phase; the percentiles "
               "above are the length of the backlog, not the latency of the path\n",
               o->rate,
               !o->n_agents  ? "acks came slower than the messages went out (control run, no agents)"
               : all_missing ? "offers missing"
                             : "offers came slower than the messages went out",
               all_rate);
    printf("RESULT mode=rate rate=%.0f seconds=%.1f sent_per_s=%.1f acked_per_s=%.1f offered_per_s=%.1f", o->rate,
           o->seconds, sent_rate, acked_rate, offered_rate);
    /* No offer of the measured window at all: a percentile of nothing would read as 0 us. */
    if (lat.n)
        result_hist("", &lat);
    else
        printf(" p50_us=NA p99_us=NA p999_us=NA max_us=NA");
    if (ack.n)
        result_hist("ack_", &ack);
    else
        printf(" ack_p50_us=NA ack_p99_us=NA ack_p999_us=NA ack_max_us=NA");
    printf(" all_offers_per_s=%.1f", all_rate);
    printf(" mean_us=%.1f lag_p99_us=%.1f wait_p50_ms=%.0f wait_p99_ms=%.0f offers=%" PRIu64 " sent=%" PRIu64
           " missing=%" PRIu64 " reoffers=%" PRIu64 " revokes=%" PRIu64 " foreign=%" PRIu64 " accept_err=%" PRIu64
           " close_err=%" PRIu64 " rejected=%" PRIu64 " efull=%" PRIu64 " backlog_max=%" PRIu64 " backlog_end=%" PRIu64
           " tail_ms=%.1f waiting=%" PRIu64 " held=%" PRIu64 " sustained=%s lg_cpu_s=%.2f wall_s=%.2f\n",
           hist_mean(&lat) / 1000.0, us(hist_percentile(&lag, 99)), us(hist_percentile(&wait, 50)) / 1000,
           us(hist_percentile(&wait, 99)) / 1000, A.offers, total, all_missing, A.reoffers, A.revokes, A.foreign,
           A.accept_err, A.close_err, R.rejected, efull, backlog_max, backlog_end, tail_ms, waiting, held,
           sustained ? "yes" : "no", cpu_s() /* the whole process so far: the script's CPU accounting */, wall);
    fflush(stdout);
    if (o->n_agents)
        agents_close();
    omni_adapter_destroy(&ad);
    free(sec);
    free(sec_missing);
    return sustained && !A.accept_err && !A.close_err && !R.rejected ? 0 : 2;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    static char fin[128], fout[128];
    opts_t o = {
        .broker = "tcp://127.0.0.1:5560", .agents = "tcp://127.0.0.1:5561", .redis = "redis://127.0.0.1:6379",
        .seconds = 5, .warmup = 1, .drain = 15, .floor_n = 20000, .floor_warm = 2000, .n_agents = 20,
        .capacity = 1000, .offer_bytes = 260, .msg_bytes = 650, .server_cpu = -1, .client_cpu = -1, .seed = 1,
    };
    enum { O_FLOOR = 1, O_RATE, O_SECONDS, O_SLOWLOG, O_BROKER, O_AGENTS, O_CONTROL, O_REDIS, O_NAGENTS, O_CAPACITY,
           O_WARMUP, O_DRAIN, O_SEED, O_FIN, O_FOUT, O_FLOOR_N, O_MSGB, O_OFFERB, O_SCPU, O_CCPU, O_HELP };
    static const struct option lo[] = {
        {"floor", no_argument, 0, O_FLOOR}, {"rate", required_argument, 0, O_RATE},
        {"seconds", required_argument, 0, O_SECONDS}, {"slowlog", no_argument, 0, O_SLOWLOG},
        {"broker", required_argument, 0, O_BROKER}, {"agents", required_argument, 0, O_AGENTS},
        {"control", required_argument, 0, O_CONTROL}, {"redis", required_argument, 0, O_REDIS},
        {"n-agents", required_argument, 0, O_NAGENTS}, {"capacity", required_argument, 0, O_CAPACITY},
        {"warmup", required_argument, 0, O_WARMUP}, {"drain", required_argument, 0, O_DRAIN},
        {"seed", required_argument, 0, O_SEED}, {"floor-in", required_argument, 0, O_FIN},
        {"floor-out", required_argument, 0, O_FOUT}, {"floor-count", required_argument, 0, O_FLOOR_N},
        {"msg-bytes", required_argument, 0, O_MSGB}, {"offer-bytes", required_argument, 0, O_OFFERB},
        {"server-cpu", required_argument, 0, O_SCPU}, {"client-cpu", required_argument, 0, O_CCPU},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0},
    };
    int c;
    bench_name = "bench_route";
    snprintf(fin, sizeof(fin), "ipc:///tmp/omni-bench-route-%d-in", (int)getpid());
    snprintf(fout, sizeof(fout), "ipc:///tmp/omni-bench-route-%d-out", (int)getpid());
    o.floor_in = fin;
    o.floor_out = fout;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_FLOOR: o.mode = MODE_FLOOR; break;
        case O_RATE: o.mode = MODE_RATE; o.rate = atof(optarg); break;
        case O_SECONDS: o.seconds = atof(optarg); break;
        case O_SLOWLOG: o.mode = MODE_SLOWLOG; break;
        case O_BROKER: o.broker = optarg; break;
        case O_AGENTS: o.agents = optarg; break;
        case O_CONTROL: o.control = optarg; break;
        case O_REDIS: o.redis = optarg; break;
        case O_NAGENTS: o.n_agents = atol(optarg); break;
        case O_CAPACITY: o.capacity = atol(optarg); break;
        case O_WARMUP: o.warmup = atof(optarg); break;
        case O_DRAIN: o.drain = atof(optarg); break;
        case O_SEED: o.seed = strtoull(optarg, NULL, 10); break;
        case O_FIN: o.floor_in = optarg; break;
        case O_FOUT: o.floor_out = optarg; break;
        case O_FLOOR_N: o.floor_n = atol(optarg); break;
        case O_MSGB: o.msg_bytes = atol(optarg); break;
        case O_OFFERB: o.offer_bytes = atol(optarg); break;
        case O_SCPU: o.server_cpu = atoi(optarg); break;
        case O_CCPU: o.client_cpu = atoi(optarg); break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (o.mode == MODE_NONE || optind < argc || (o.mode == MODE_RATE && (o.rate <= 0 || o.seconds <= 0)) ||
        o.warmup < 0 || o.drain < 0 || o.floor_n <= 0 || o.n_agents < 0 || o.capacity <= 0 || o.capacity > 1000 ||
        o.msg_bytes <= 0 || o.msg_bytes > 4096 || o.offer_bytes <= 0 || o.offer_bytes > 4096) {
        usage(stderr);
        return 64;
    }
    if (o.mode == MODE_FLOOR)
        return run_floor(&o);
    if (o.mode == MODE_SLOWLOG)
        return run_slowlog(&o);
    /* Customers, message ids and previews carry a nonce: runs sharing a Redis never meet. */
    snprintf(R.nonce, sizeof(R.nonce), "%08" PRIx64, mix(now_ns() ^ (uint64_t)getpid()) & 0xffffffffu);
    R.prefix_len = (size_t)snprintf(R.prefix, sizeof(R.prefix), "rb %s ", R.nonce);
    rnd_seed(o.seed);
    make_texts();
    return run_rate(&o);
}
