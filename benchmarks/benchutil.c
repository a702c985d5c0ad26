/* benchutil: the pieces bench_ingest and bench_route have in common (see benchutil.h), kept in
 * one place so that both measure with the same clock, the same texts and the same floor. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <omni/v1/control.pb-c.h>

#include "benchutil.h"

const char *bench_name = "bench";

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc)
        fprintf(stderr, "%s: cannot pin to cpu %d: %s\n", bench_name, cpu, strerror(rc));
}

void print_hist(const char *label, const hist_t *h)
{
    printf("  %-34s n=%-7" PRIu64 " p50 %8.1f  p99 %8.1f  p99.9 %8.1f  max %9.1f  mean %8.1f us\n", label, h->n,
           us(hist_percentile(h, 50)), us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->max),
           hist_mean(h) / 1000.0);
}

void result_hist(const char *prefix, const hist_t *h)
{
    printf(" %sp50_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f", prefix, us(hist_percentile(h, 50)), prefix,
           us(hist_percentile(h, 99)), prefix, us(hist_percentile(h, 99.9)), prefix, us(h->max));
}

redisContext *redis_open(const char *url)
{
    redisContext *c;
    struct timeval tv = {2, 0};
    if (strncmp(url, "unix://", 7) == 0) {
        c = redisConnectUnixWithTimeout(url + 7, tv);
    } else {
        char host[256] = "127.0.0.1";
        int port = 6379;
        const char *h = strncmp(url, "redis://", 8) == 0 ? url + 8 : url;
        sscanf(h, "%255[^:/]:%d", host, &port);
        c = redisConnectWithTimeout(host, port, tv);
    }
    if (!c || c->err) {
        fprintf(stderr, "%s: cannot reach Redis at %s: %s\n", bench_name, url, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ broker counters */

counters_t broker_counters(const char *endpoint)
{
    counters_t c = {0};
    if (!endpoint)
        return c;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, tmo = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
    Omni__V1__StatusRequest sr = OMNI__V1__STATUS_REQUEST__INIT;
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    req.id = 1;
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_STATUS;
    req.status = &sr;
    uint8_t buf[64];
    size_t len = omni__v1__control_request__pack(&req, buf);
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_connect(s, endpoint) == 0 && zmq_send(s, buf, len, 0) >= 0 && zmq_msg_recv(&m, s, 0) >= 0) {
        Omni__V1__ControlReply *rep = omni__v1__control_reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (rep && rep->body_case == OMNI__V1__CONTROL_REPLY__BODY_STATUS) {
            static const struct {
                const char *name;
                size_t off;
            } named[] = {
                {"ingress_frames", offsetof(counters_t, frames)},
                {"messages_accepted", offsetof(counters_t, accepted)},
                {"messages_duplicate", offsetof(counters_t, duplicate)},
                {"messages_rejected", offsetof(counters_t, rejected)},
                {"messages_retry", offsetof(counters_t, retry)},
                {"customers_merged", offsetof(counters_t, merged)},
                {"conversations_opened", offsetof(counters_t, opened)},
                {"queued", offsetof(counters_t, queued)},
                {"offers", offsetof(counters_t, offers)},
                {"offers_timed_out", offsetof(counters_t, offers_timed_out)},
                {"assigned", offsetof(counters_t, assigned)},
                {"closed", offsetof(counters_t, closed)},
                {"requeued", offsetof(counters_t, requeued)},
                {"queue_full", offsetof(counters_t, queue_full)},
                {"agent_errors", offsetof(counters_t, agent_errors)},
            };
            c.ok = 1;
            for (size_t i = 0; i < rep->status->n_counters; i++) {
                const Omni__V1__Counter *k = rep->status->counters[i];
                for (size_t j = 0; j < sizeof(named) / sizeof(named[0]); j++)
                    if (!strcmp(k->name, named[j].name))
                        *(uint64_t *)((char *)&c + named[j].off) = k->value;
                /* Our own status requests count there: they would never let the broker settle. */
                if (strncmp(k->name, "control_", 8) != 0)
                    c.activity += k->value;
            }
        }
        if (rep)
            omni__v1__control_reply__free_unpacked(rep, NULL);
    }
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return c;
}

void settle(const char *control)
{
    if (!control)
        return;
    uint64_t start = now_ns(), prev = UINT64_MAX;
    int still = 0;
    while (still < 3 && now_ns() - start < 120000000000ull) {
        counters_t c = broker_counters(control);
        if (!c.ok)
            return;
        still = c.activity == prev ? still + 1 : 0;
        prev = c.activity;
        if (still < 3)
            usleep(200000);
    }
    double waited = (double)(now_ns() - start) / 1e9;
    if (waited > 1.0)
        printf("  (waited %.1f s for the broker to finish an earlier backlog)\n", waited);
}

/* ------------------------------------------------------------------ synthetic traffic */

static uint64_t rng_state;

void rnd_seed(uint64_t seed) { rng_state = seed; }

uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdull;
    x = (x ^ (x >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static const char *const phrases[] = {
    "お世話になっております。", "先日注文した商品がまだ届いていません。", "配送状況を確認していただけますか。",
    "サブスクリプションの解約方法を教えてください。", "今月の請求額が二重になっているようです。",
    "ログインできなくなりました。パスワード再設定のメールも届きません。", "よろしくお願いいたします。",
    "アプリを最新版に更新したらエラーが表示されるようになりました。", "返品の手続きについて教えてください。",
    "プレミアムプランからベーシックプランに変更できますか。", "領収書（インボイス）を発行していただけますか。",
    "Hello, I have a question about my order. ", "The package was supposed to arrive yesterday. ",
    "Could you check the delivery status for me? ", "I was charged twice this month. ",
    "Please cancel my subscription at the end of the billing period. ",
    "The app shows an error since the latest update. ", "Thanks in advance. ",
    "My account email is still the old one, can you change it? ",
};
#define NPHRASES (sizeof(phrases) / sizeof(phrases[0]))

char texts[NTEXTS][512];

void make_texts(void)
{
    for (int i = 0; i < NTEXTS; i++) {
        size_t want = 300 + rnd() % 201, n = 0;
        char *t = texts[i];
        while (n < want) {
            const char *p = phrases[rnd() % NPHRASES];
            size_t pl = strlen(p);
            if (n + pl > 500) {
                pl = 500 - n;
                while (pl > 0 && ((unsigned char)p[pl] & 0xC0) == 0x80)
                    pl--;
                if (pl == 0)
                    break;
            }
            memcpy(t + n, p, pl);
            n += pl;
        }
        t[n] = 0;
    }
}

/* ------------------------------------------------------------------ the SDK */

omni_adapter_t *connect_sdk(const char *broker, const char *control, Omni__V1__Channel channel, size_t outbox,
                            int ack_timeout_ms, omni_ack_cb on_ack)
{
    settle(control);
    omni_adapter_opts_t ao;
    omni_adapter_t *ad = NULL;
    static char id[64];
    snprintf(id, sizeof(id), "%s-%d", bench_name, (int)getpid());
    omni_adapter_opts_init(&ao);
    ao.broker = broker;
    ao.adapter_id = id;
    ao.channel = channel;
    ao.outbox_max = outbox;
    ao.ack_timeout_ms = ack_timeout_ms;
    ao.on_ack = on_ack;
    int rc = omni_adapter_new(&ao, &ad);
    if (rc) {
        fprintf(stderr, "%s: omni_adapter_new: %s\n", bench_name, omni_strerror(rc));
        return NULL;
    }
    /* Connected = the broker answered our hello; only then does the clock start. */
    uint64_t end = now_ns() + 5000000000ull;
    while (!omni_adapter_connected(ad) && now_ns() < end)
        omni_adapter_poll(ad, 10);
    if (!omni_adapter_connected(ad)) {
        fprintf(stderr, "%s: no answer from the broker at %s\n", bench_name, broker);
        omni_adapter_destroy(&ad);
    }
    return ad;
}

void spin(omni_adapter_t *ad)
{
    omni_adapter_process(ad);
    sched_yield();
}

/* ------------------------------------------------------------------ the transport floor */

static const char floor_script[] = "return redis.call('XADD', KEYS[1], 'MAXLEN', '~', 100000, '*', 'e', ARGV[1])";

static int load_floor_script(redisContext *c, char sha[41])
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", floor_script);
    sha[0] = 0;
    if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(sha, r->str, 41);
    if (r)
        freeReplyObject(r);
    return sha[0] ? 0 : -1;
}

static int floor_xadd(redisContext *c, const char *sha, const void *body, size_t len)
{
    redisReply *r = redisCommand(c, "EVALSHA %s 1 omni-bench:floor %b", sha, body, len);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        fprintf(stderr, "%s: floor XADD failed: %s\n", bench_name, r ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static void *relay_main(void *p)
{
    relay_t *e = p;
    /* Pin first: the context's I/O thread is created below and inherits this mask, as the
     * broker's I/O thread shares the broker's core. */
    pin_self(e->cpu);
    redisContext *rc = NULL;
    char sha[41] = "";
    if (e->redis && (!(rc = redis_open(e->redis)) || load_floor_script(rc, sha) != 0)) {
        atomic_store(&e->ready, -1);
        if (rc)
            redisFree(rc);
        return NULL;
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_ROUTER), *out = NULL;
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(s, e->in_ep) != 0) {
        fprintf(stderr, "%s: cannot bind %s: %s\n", bench_name, e->in_ep, zmq_strerror(errno));
        atomic_store(&e->ready, -1);
        goto out;
    }
    if (e->out_ep) {
        out = zmq_socket(ctx, ZMQ_ROUTER);
        zmq_setsockopt(out, ZMQ_LINGER, &zero, sizeof(zero));
        if (zmq_bind(out, e->out_ep) != 0) {
            fprintf(stderr, "%s: cannot bind %s: %s\n", bench_name, e->out_ep, zmq_strerror(errno));
            atomic_store(&e->ready, -1);
            goto out;
        }
    }
    atomic_store(&e->ready, 1);
    uint8_t rid[256], orid[256], body[4096], payload[4096];
    int orl = 0;
    size_t plen = e->out_len < sizeof(payload) ? e->out_len : sizeof(payload);
    memset(payload, 'a', sizeof(payload));
    if (out && ((orl = zmq_recv(out, orid, sizeof(orid), 0)) < 0 || zmq_recv(out, body, sizeof(body), 0) < 0))
        goto out;
    for (;;) {
        int rl = zmq_recv(s, rid, sizeof(rid), 0);
        int bl = zmq_recv(s, body, sizeof(body), 0);
        if (rl < 0 || bl <= 0)
            break; /* an empty body is the client's "stop" */
        if (rc && floor_xadd(rc, sha, body, (size_t)bl) != 0)
            break;
        if (out) {
            zmq_send(out, orid, (size_t)orl, ZMQ_SNDMORE);
            zmq_send(out, payload, plen, 0);
        } else {
            zmq_send(s, rid, (size_t)rl, ZMQ_SNDMORE);
            zmq_send(s, payload, plen, 0);
        }
    }
out:
    zmq_close(s);
    if (out)
        zmq_close(out);
    zmq_ctx_term(ctx);
    if (rc)
        redisFree(rc);
    return NULL;
}

int relay_start(relay_t *r)
{
    atomic_init(&r->ready, 0);
    if (pthread_create(&r->th, NULL, relay_main, r) != 0)
        return -1;
    while (atomic_load(&r->ready) == 0)
        usleep(1000);
    if (atomic_load(&r->ready) < 0) {
        pthread_join(r->th, NULL);
        return -1;
    }
    return 0;
}

void relay_join(relay_t *r) { pthread_join(r->th, NULL); }

typedef struct {
    const char *url;
    int cpu, xadd, rc;
    long warm, n;
    hist_t *h;
} redis_job_t;

/* Blocking reads, as the broker waits for Redis in zmq_poll. */
static void *redis_floor_main(void *p)
{
    redis_job_t *j = p;
    char sha[41] = "";
    uint8_t body[650];
    memset(body, 'x', sizeof(body));
    pin_self(j->cpu);
    redisContext *c = redis_open(j->url);
    j->rc = -1;
    if (!c || (j->xadd && load_floor_script(c, sha) != 0))
        goto out;
    for (long i = 0; i < j->warm + j->n; i++) {
        uint64_t t = now_ns();
        if (j->xadd) {
            if (floor_xadd(c, sha, body, sizeof(body)) != 0)
                goto out;
        } else {
            redisReply *r = redisCommand(c, "PING");
            if (!r)
                goto out;
            freeReplyObject(r);
        }
        if (i >= j->warm)
            hist_record(j->h, now_ns() - t);
    }
    j->rc = 0;
out:
    if (c)
        redisFree(c);
    return NULL;
}

int redis_floor(const char *url, int cpu, long warm, long n, int xadd, hist_t *h)
{
    redis_job_t j = {url, cpu, xadd, -1, warm, n, h};
    pthread_t th;
    if (pthread_create(&th, NULL, redis_floor_main, &j) != 0 || pthread_join(th, NULL) != 0)
        return -1;
    return j.rc;
}

void floor_cleanup(const char *url)
{
    redisContext *c = redis_open(url);
    if (c) {
        redisReply *r = redisCommand(c, "DEL omni-bench:floor");
        if (r)
            freeReplyObject(r);
        redisFree(c);
    }
}
