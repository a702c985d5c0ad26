/* bench_ingest: ingest latency and throughput of omni-broker through the adapter SDK (open loop,
 * each message timed from its intended send time to its ack), and the raw ZeroMQ + Redis floor. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <omni/adapter.h>

#include "benchutil.h"
#include "hist.h"

/* ------------------------------------------------------------------ options */

typedef struct {
    enum { MODE_NONE, MODE_FLOOR, MODE_RATE, MODE_SATURATE } mode;
    const char *broker, *control, *redis, *floor_ep;
    double rate, seconds, warmup;
    long count, window, floor_n, floor_warm;
    double drain;
    int prefill;
    long outbox;
    int ack_timeout_ms;
    long customers;
    int server_cpu, client_cpu;
    uint64_t seed;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_ingest MODE [options]   (see benchmarks/README.md)\n"
            "\n"
            "Modes:\n"
            "  --floor                 raw round trips, closed loop: ZeroMQ DEALER->ROUTER->DEALER echo,\n"
            "                          Redis PING, and one message through ZeroMQ + a Redis XADD + reply\n"
            "  --rate R --seconds S    open loop through the SDK at R msg/s for S s (after --warmup s)\n"
            "  --saturate --count N    N messages as fast as --window outstanding messages allow\n"
            "  --prefill               saturate, but message i comes from customer i on its home channel:\n"
            "                          gives every customer its identities and conversation before a sweep\n"
            "\n"
            "Options:\n"
            "  --broker ENDPOINT       broker ingress (default tcp://127.0.0.1:5560)\n"
            "  --control ENDPOINT      broker control endpoint: report its counters around the run\n"
            "  --redis URL             unix:///path.sock or redis://host:port (floor; default\n"
            "                          redis://127.0.0.1:6379)\n"
            "  --floor-endpoint EP     transport of the ZeroMQ floor (default ipc:///tmp/omni-bench-floor-PID);\n"
            "                          use the broker's transport, or the floor is not a floor\n"
            "  --floor-count N         measured round trips per floor (default 20000; 2000 warm-up)\n"
            "  --server-cpu C          floor: pin the echo/Redis-client thread (where the broker runs)\n"
            "  --client-cpu C          floor: pin the client thread (where the load generator runs)\n"
            "  --warmup S              rate: seconds sent but not recorded (default 1)\n"
            "  --drain S               wait at most S s for the last acks (default 20)\n"
            "  --window W              saturate: messages outstanding (default 20000)\n"
            "  --outbox N              SDK outbox_max (default 1000000)\n"
            "  --ack-timeout-ms MS     SDK ack_timeout_ms, first resend to a silent broker (default: the SDK's, 1000)\n"
            "  --customers N           customer pool (default 50000)\n"
            "  --seed N                message generator seed (default 1)\n");
}

/* ------------------------------------------------------------------ the floor */

/* Closed loop over one DEALER against a relay that answers like the broker's ingress (with a
 * Redis URL it first appends the request with one XADD: a one-message broker). The client spins
 * on a non-blocking receive (yielding the core to its own I/O thread), exactly as the load
 * generator spins on the SDK, so neither side of the comparison pays a client wake-up the other
 * does not. */
static int floor_zmq(const opts_t *o, const char *redis, hist_t *h)
{
    relay_t e = {.in_ep = o->floor_ep, .redis = redis, .cpu = o->server_cpu, .out_len = 64 /* an ack */};
    if (relay_start(&e) != 0)
        return -1;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, rc = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_connect(s, o->floor_ep);
    uint8_t msg[650], buf[256]; /* the size of a typical packed Envelope here; acks are ~60 B */
    memset(msg, 'x', sizeof(msg));
    for (long i = 0; i < o->floor_warm + o->floor_n; i++) {
        uint64_t t = now_ns();
        if (zmq_send(s, msg, sizeof(msg), 0) < 0) {
            rc = -1;
            break;
        }
        while (zmq_recv(s, buf, sizeof(buf), ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN) {
                rc = -1;
                break;
            }
            sched_yield();
        }
        if (rc)
            break;
        if (i >= o->floor_warm)
            hist_record(h, now_ns() - t);
    }
    zmq_send(s, "", 0, 0); /* stop */
    zmq_close(s);
    zmq_ctx_term(ctx);
    relay_join(&e);
    return rc;
}

static hist_t h_zmq, h_redis, h_e2e;

static int run_floor(const opts_t *o)
{
    hist_init(&h_zmq);
    hist_init(&h_redis);
    hist_init(&h_e2e);
    pin_self(o->client_cpu);
    printf("floor: %s, %ld round trips each after %ld warm-up; server thread on cpu %d, client on cpu %d\n",
           o->floor_ep, o->floor_n, o->floor_warm, o->server_cpu, o->client_cpu);
    fflush(stdout);
    if (floor_zmq(o, NULL, &h_zmq) != 0) {
        fprintf(stderr, "bench_ingest: zmq floor failed\n");
        return 1;
    }
    if (redis_floor(o->redis, o->server_cpu, o->floor_warm, o->floor_n, 0, &h_redis) != 0) {
        fprintf(stderr, "bench_ingest: redis floor failed\n");
        return 1;
    }
    if (floor_zmq(o, o->redis, &h_e2e) != 0) {
        fprintf(stderr, "bench_ingest: zmq+redis floor failed\n");
        return 1;
    }
    print_hist("zmq DEALER->ROUTER->DEALER 650 B", &h_zmq);
    print_hist("redis PING (blocking client)", &h_redis);
    printf("  %-34s           p50 %8.1f  p99 %8.1f  p99.9 %8.1f  max %9.1f us\n", "floor = zmq + redis (sums)",
           us(hist_percentile(&h_zmq, 50) + hist_percentile(&h_redis, 50)),
           us(hist_percentile(&h_zmq, 99) + hist_percentile(&h_redis, 99)),
           us(hist_percentile(&h_zmq, 99.9) + hist_percentile(&h_redis, 99.9)), us(h_zmq.max + h_redis.max));
    print_hist("measured zmq -> XADD -> reply", &h_e2e);
    printf("RESULT mode=floor endpoint=%s", o->floor_ep);
    result_hist("zmq_", &h_zmq);
    result_hist("redis_", &h_redis);
    printf(" floor_p50_us=%.1f floor_p99_us=%.1f floor_p999_us=%.1f floor_max_us=%.1f",
           us(hist_percentile(&h_zmq, 50) + hist_percentile(&h_redis, 50)),
           us(hist_percentile(&h_zmq, 99) + hist_percentile(&h_redis, 99)),
           us(hist_percentile(&h_zmq, 99.9) + hist_percentile(&h_redis, 99.9)), us(h_zmq.max + h_redis.max));
    result_hist("xadd_", &h_e2e);
    printf("\n");
    floor_cleanup(o->redis);
    return 0;
}

/* ------------------------------------------------------------------ message generator */

static const char *const names[] = {"山田 太郎", "佐藤 花子", "鈴木 健太", "高橋 美咲", "田中 翔太",
                                    "Emily Johnson", "David Smith", "伊藤 陽菜", "渡辺 大輔", "Anna Schmidt"};

enum { G_LINE, G_CHAT, G_EMAIL, G_PHONE };

typedef struct {
    char from[128], also[128], pmid[96], irt[96], token[40], subject[96];
    char *also_v[1];
    Omni__V1__ThreadRefs thread;
    Omni__V1__InboundMessage m;
} gen_msg_t;

static char run_tag[32];

static void identity(int kind, uint64_t k, char *out, size_t len)
{
    uint64_t a = mix(k * 4 + (uint64_t)kind), b = mix(a);
    switch (kind) {
    case G_LINE: snprintf(out, len, "line:U%016" PRIx64 "%016" PRIx64, a, b); break;
    case G_CHAT: snprintf(out, len, "chat:v_%016" PRIx64, a); break;
    case G_EMAIL: snprintf(out, len, "email:user%" PRIu64 "@example.jp", k); break;
    default: {
        unsigned n = (unsigned)(10000000 + (k * 7919) % 90000000);
        snprintf(out, len, "phone:090-%04u-%04u", n / 10000, n % 10000);
    }
    }
}

/* One message of a customer drawn from the pool. Customers live mostly on a home channel
 * (LINE 45%, chat 25%, email 25%, phone 5%) and write an email 15% of the time; a quarter of
 * the chat visitors are verified and carry their email as `also`, so the broker links chat
 * and email identities of one person (identity resolution without merges). */
static void gen_message(const opts_t *o, uint64_t seq, gen_msg_t *g)
{
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    Omni__V1__ThreadRefs t = OMNI__V1__THREAD_REFS__INIT;
    uint64_t r = rnd(), k = o->prefill ? seq % (uint64_t)o->customers : r % (uint64_t)o->customers;
    unsigned home = (unsigned)(mix(k) % 20);
    int kind = home < 9 ? G_LINE : home < 14 ? G_CHAT : home < 19 ? G_EMAIL : G_PHONE;
    if (kind != G_EMAIL && !o->prefill && (r >> 32) % 100 < 15)
        kind = G_EMAIL;
    identity(kind, k, g->from, sizeof(g->from));
    m.from = g->from;
    m.text = texts[(r >> 40) % NTEXTS];
    m.display_name = (char *)names[k % (sizeof(names) / sizeof(names[0]))];
    m.locale = (char *)(k % 5 ? "ja-JP" : "en-US");
    switch (kind) {
    case G_LINE:
        m.channel = OMNI__V1__CHANNEL__CHANNEL_SNS;
        m.provider = (char *)"line";
        m.channel_account = (char *)"2000000001";
        snprintf(g->pmid, sizeof(g->pmid), "%s%012" PRIu64, run_tag, seq);
        snprintf(g->token, sizeof(g->token), "%016" PRIx64 "%016" PRIx64, mix(seq), mix(seq + 1));
        t.reply_token = g->token;
        m.thread = &g->thread;
        break;
    case G_CHAT:
        m.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
        m.channel_account = (char *)"site-main";
        snprintf(g->pmid, sizeof(g->pmid), "%s-%" PRIu64, run_tag, seq);
        if (k % 4 == 0) {
            identity(G_EMAIL, k, g->also, sizeof(g->also));
            g->also_v[0] = g->also;
            m.also = g->also_v;
            m.n_also = 1;
        }
        break;
    case G_EMAIL:
        m.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
        m.channel_account = (char *)"support@example.com";
        snprintf(g->pmid, sizeof(g->pmid), "%s.%" PRIu64 "@mail.example.jp", run_tag, seq);
        snprintf(g->subject, sizeof(g->subject), "%sご注文について (order #%" PRIu64 ")", seq % 3 ? "Re: " : "",
                 100000 + k);
        m.subject = g->subject;
        if (seq % 3 && seq > 1000) { /* a reply: In-Reply-To an earlier message, looked up by the broker */
            snprintf(g->irt, sizeof(g->irt), "%s.%" PRIu64 "@mail.example.jp", run_tag, seq - 1 - r % 1000);
            t.in_reply_to = g->irt;
            m.thread = &g->thread;
        }
        break;
    default:
        m.channel = OMNI__V1__CHANNEL__CHANNEL_PHONE;
        m.channel_account = (char *)"+81312345678";
        snprintf(g->pmid, sizeof(g->pmid), "%s-%" PRIu64 "@sip.example.jp", run_tag, seq);
        break;
    }
    m.provider_message_id = g->pmid;
    g->thread = t;
    g->m = m;
}

/* ------------------------------------------------------------------ SDK runs */

typedef struct {
    uint64_t base;          /* request id of message 0 */
    uint64_t *when;         /* per message: intended (rate) or actual (saturate) send time, ns */
    uint64_t measure_from;  /* messages intended before this are warm-up */
    uint64_t n_when;
    hist_t lat;
    uint64_t acks, measured_acks, rejected, duplicate;
    uint64_t first_ack_ns, last_ack_ns, last_measured_ack_ns;
    uint64_t *ack_at;       /* saturate: ack time of the i-th ack, for the steady-state rate */
} run_t;

static run_t R;

static void on_ack(omni_adapter_t *ad, const omni_ack_t *ack, void *user)
{
    (void)ad;
    (void)user;
    uint64_t t = now_ns(), i = ack->request_id - R.base;
    if (ack->request_id < R.base || i >= R.n_when)
        return;
    if (!ack->accepted)
        R.rejected++;
    if (ack->duplicate)
        R.duplicate++;
    if (R.ack_at && R.acks < R.n_when)
        R.ack_at[R.acks] = t;
    R.acks++;
    if (!R.first_ack_ns)
        R.first_ack_ns = t;
    R.last_ack_ns = t;
    if (R.when[i] >= R.measure_from) {
        hist_record(&R.lat, t - R.when[i]);
        R.measured_acks++;
        R.last_measured_ack_ns = t;
    }
}


static void print_counters(const counters_t *a, const counters_t *b)
{
    if (!a->ok || !b->ok)
        return;
    printf("  broker counters: accepted +%" PRIu64 ", duplicate +%" PRIu64 " (resent copies), retry +%" PRIu64
           ", rejected +%" PRIu64 ", frames +%" PRIu64 ", conversations opened +%" PRIu64 "\n",
           b->accepted - a->accepted, b->duplicate - a->duplicate, b->retry - a->retry, b->rejected - a->rejected,
           b->frames - a->frames, b->opened - a->opened);
}

static uint64_t text_bytes_total, packed_hint;

static int send_one(const opts_t *o, omni_adapter_t *ad, uint64_t seq, uint64_t *efull)
{
    static gen_msg_t g;
    static uint64_t prepared = UINT64_MAX;
    uint64_t rid;
    /* Keep a refused message for the retry, so that ids stay one per sequence number. */
    if (prepared != seq) {
        gen_message(o, seq, &g);
        prepared = seq;
    }
    int rc = omni_adapter_send(ad, &g.m, &rid);
    if (rc == OMNI_EFULL) {
        (*efull)++;
        return rc;
    }
    if (rc) {
        fprintf(stderr, "bench_ingest: omni_adapter_send: %s\n", omni_strerror(rc));
        return rc;
    }
    if (seq == 0)
        R.base = rid;
    else if (rid != R.base + seq) {
        fprintf(stderr, "bench_ingest: unexpected request id %" PRIu64 "\n", rid);
        return OMNI_EINVAL;
    }
    text_bytes_total += strlen(g.m.text);
    if (seq == 0)
        packed_hint = omni__v1__inbound_message__get_packed_size(&g.m);
    return 0;
}

/* After the last send: spin until every message is acked, up to --drain seconds. */
static uint64_t drain(const opts_t *o, omni_adapter_t *ad, uint64_t n)
{
    uint64_t end = now_ns() + (uint64_t)(o->drain * 1e9);
    while (R.acks < n && now_ns() < end)
        spin(ad);
    return n - R.acks;
}

static int run_rate(const opts_t *o)
{
    uint64_t total = (uint64_t)(o->rate * (o->warmup + o->seconds) + 0.5), efull = 0;
    hist_t lag;
    hist_init(&lag);
    hist_init(&R.lat);
    R.n_when = total;
    if (!(R.when = calloc(total ? total : 1, sizeof(uint64_t))))
        return 1;
    omni_adapter_t *ad = connect_sdk(o->broker, o->control, OMNI__V1__CHANNEL__CHANNEL_SNS, (size_t)o->outbox, o->ack_timeout_ms, on_ack);
    if (!ad)
        return 1;
    counters_t c0 = broker_counters(o->control);
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns(), i = 0, last_send = t0;
    R.measure_from = t0 + (uint64_t)(o->warmup * 1e9);
    /* Open loop: message i is due at t0 + i/R whatever happened to the ones before it. */
    while (i < total) {
        uint64_t now = now_ns();
        while (i < total) {
            uint64_t due = t0 + (uint64_t)((double)i * 1e9 / o->rate);
            if (due > now)
                break;
            R.when[i] = due;
            int rc = send_one(o, ad, i, &efull);
            if (rc == OMNI_EFULL)
                break; /* back-pressure: this one is late now, and its lateness counts */
            if (rc)
                return 1;
            last_send = now_ns();
            if (due >= R.measure_from)
                hist_record(&lag, last_send - due);
            i++;
        }
        spin(ad);
    }
    uint64_t unacked = drain(o, ad, total);
    double cpu = cpu_s() - cpu0, wall = (double)(now_ns() - t0) / 1e9;
    counters_t c1 = broker_counters(o->control);
    uint64_t measured = total - (uint64_t)(o->rate * o->warmup + 0.5);
    double span = (double)(last_send - R.measure_from) / 1e9;
    double sent_rate = span > 0 ? (double)measured / span : 0;
    double ack_span = (double)(R.last_measured_ack_ns - R.measure_from) / 1e9;
    double acked_rate = ack_span > 0 ? (double)R.measured_acks / ack_span : 0;

    printf("rate %.0f msg/s for %.1f s (+%.1f s warm-up): %" PRIu64 " messages, text %.0f B mean, "
           "first InboundMessage %" PRIu64 " B packed\n",
           o->rate, o->seconds, o->warmup, total, (double)text_bytes_total / (double)(total ? total : 1), packed_hint);
    printf("  sent %" PRIu64 " measured at %.1f/s (send lag behind schedule p99 %.1f us, max %.1f us), "
           "acked at %.1f/s\n",
           measured, sent_rate, us(hist_percentile(&lag, 99)), us(lag.max), acked_rate);
    printf("  rejected %" PRIu64 ", duplicate acks %" PRIu64 ", not acked within --drain %" PRIu64 ", EFULL %" PRIu64
           ", load generator cpu %.0f%%\n",
           R.rejected, R.duplicate, unacked, efull, 100.0 * cpu / wall);
    print_counters(&c0, &c1);
    print_hist("ack - intended send time", &R.lat);
    printf("RESULT mode=rate rate=%.0f seconds=%.1f sent_per_s=%.1f acked_per_s=%.1f", o->rate, o->seconds, sent_rate,
           acked_rate);
    result_hist("", &R.lat);
    printf(" mean_us=%.1f lag_p99_us=%.1f rejected=%" PRIu64 " unacked=%" PRIu64 " efull=%" PRIu64
           " resent=%" PRIu64 " lg_cpu_s=%.2f wall_s=%.2f\n",
           hist_mean(&R.lat) / 1000.0, us(hist_percentile(&lag, 99)), R.rejected, unacked, efull,
           c0.ok && c1.ok ? c1.duplicate - c0.duplicate : 0, cpu, wall);
    omni_adapter_destroy(&ad);
    free(R.when);
    return unacked || R.rejected ? 2 : 0;
}

static int run_saturate(const opts_t *o)
{
    uint64_t total = (uint64_t)o->count, efull = 0, i = 0;
    hist_init(&R.lat);
    R.n_when = total;
    R.when = calloc(total ? total : 1, sizeof(uint64_t));
    R.ack_at = calloc(total ? total : 1, sizeof(uint64_t));
    if (!R.when || !R.ack_at)
        return 1;
    omni_adapter_t *ad = connect_sdk(o->broker, o->control, OMNI__V1__CHANNEL__CHANNEL_SNS, (size_t)o->outbox, o->ack_timeout_ms, on_ack);
    if (!ad)
        return 1;
    counters_t c0 = broker_counters(o->control);
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns();
    R.measure_from = 0; /* closed loop: every message is timed from its actual send */
    while (i < total) {
        while (i < total && omni_adapter_pending(ad) < (size_t)o->window) {
            R.when[i] = now_ns();
            int rc = send_one(o, ad, i, &efull);
            if (rc == OMNI_EFULL)
                break;
            if (rc)
                return 1;
            i++;
        }
        spin(ad);
    }
    uint64_t unacked = drain(o, ad, total);
    double cpu = cpu_s() - cpu0;
    counters_t c1 = broker_counters(o->control);
    double wall = (double)((R.last_ack_ns ? R.last_ack_ns : now_ns()) - t0) / 1e9;
    double overall = wall > 0 ? (double)R.acks / wall : 0, steady = 0;
    /* Steady state: between the 10% and the 90% ack, away from the ramp and the drain. */
    if (R.acks >= 10) {
        uint64_t a = R.acks / 10, b = R.acks * 9 / 10;
        steady = (double)(b - a) / ((double)(R.ack_at[b] - R.ack_at[a]) / 1e9);
    }
    printf("%s: %" PRIu64 " messages, %ld outstanding at most, text %.0f B mean\n", o->prefill ? "prefill" : "saturate", total, o->window,
           (double)text_bytes_total / (double)(total ? total : 1));
    printf("  accepted %" PRIu64 " in %.2f s: %.0f msg/s overall, %.0f msg/s steady (10%%..90%% of acks)\n",
           R.acks - R.rejected, wall, overall, steady);
    printf("  acks per 0.5 s:");
    uint64_t slot_end = t0 + 500000000ull, cnt = 0;
    for (uint64_t k = 0; k < R.acks; k++) {
        for (; R.ack_at[k] >= slot_end; slot_end += 500000000ull, cnt = 0)
            printf(" %" PRIu64, cnt);
        cnt++;
    }
    printf(" %" PRIu64, cnt);
    printf("\n");
    printf("  rejected %" PRIu64 ", duplicate acks %" PRIu64 ", not acked within --drain %" PRIu64 ", EFULL %" PRIu64
           ", load generator cpu %.0f%%\n",
           R.rejected, R.duplicate, unacked, efull, 100.0 * cpu / ((double)(now_ns() - t0) / 1e9));
    print_counters(&c0, &c1);
    print_hist("ack - send time (closed loop)", &R.lat);
    printf("RESULT mode=%s count=%" PRIu64 " window=%ld acked_per_s=%.0f overall_per_s=%.0f",
           o->prefill ? "prefill" : "saturate", total, o->window, steady, overall);
    result_hist("", &R.lat);
    printf(" mean_us=%.1f rejected=%" PRIu64 " unacked=%" PRIu64 " efull=%" PRIu64 " resent=%" PRIu64
           " lg_cpu_s=%.2f wall_s=%.2f\n",
           hist_mean(&R.lat) / 1000.0, R.rejected, unacked, efull, c0.ok && c1.ok ? c1.duplicate - c0.duplicate : 0, cpu,
           (double)(now_ns() - t0) / 1e9);
    omni_adapter_destroy(&ad);
    free(R.when);
    free(R.ack_at);
    return unacked || R.rejected ? 2 : 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    bench_name = "bench_ingest";
    static char floor_ep[128];
    opts_t o = {
        .broker = "tcp://127.0.0.1:5560", .redis = "redis://127.0.0.1:6379", .seconds = 5, .warmup = 1,
        .count = 300000, .window = 20000, .drain = 20, .floor_n = 20000, .floor_warm = 2000, .outbox = 1000000,
        .customers = 50000, .server_cpu = -1, .client_cpu = -1, .seed = 1,
    };
    enum { O_FLOOR = 1, O_RATE, O_SECONDS, O_SATURATE, O_COUNT, O_BROKER, O_CONTROL, O_REDIS, O_FLOOR_EP,
           O_FLOOR_N, O_SCPU, O_CCPU, O_WARMUP, O_WINDOW, O_OUTBOX, O_ACKTMO, O_CUSTOMERS, O_SEED, O_DRAIN, O_PREFILL, O_HELP };
    static const struct option lo[] = {
        {"floor", no_argument, 0, O_FLOOR}, {"rate", required_argument, 0, O_RATE},
        {"seconds", required_argument, 0, O_SECONDS}, {"saturate", no_argument, 0, O_SATURATE},
        {"count", required_argument, 0, O_COUNT}, {"broker", required_argument, 0, O_BROKER},
        {"control", required_argument, 0, O_CONTROL}, {"redis", required_argument, 0, O_REDIS},
        {"floor-endpoint", required_argument, 0, O_FLOOR_EP}, {"floor-count", required_argument, 0, O_FLOOR_N},
        {"server-cpu", required_argument, 0, O_SCPU}, {"client-cpu", required_argument, 0, O_CCPU},
        {"warmup", required_argument, 0, O_WARMUP}, {"window", required_argument, 0, O_WINDOW},
        {"outbox", required_argument, 0, O_OUTBOX}, {"ack-timeout-ms", required_argument, 0, O_ACKTMO},
        {"customers", required_argument, 0, O_CUSTOMERS}, {"seed", required_argument, 0, O_SEED},
        {"drain", required_argument, 0, O_DRAIN}, {"prefill", no_argument, 0, O_PREFILL},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0},
    };
    int c;
    snprintf(floor_ep, sizeof(floor_ep), "ipc:///tmp/omni-bench-floor-%d", (int)getpid());
    o.floor_ep = floor_ep;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_FLOOR: o.mode = MODE_FLOOR; break;
        case O_RATE: o.mode = MODE_RATE; o.rate = atof(optarg); break;
        case O_SECONDS: o.seconds = atof(optarg); break;
        case O_SATURATE: o.mode = MODE_SATURATE; break;
        case O_COUNT: o.count = atol(optarg); break;
        case O_BROKER: o.broker = optarg; break;
        case O_CONTROL: o.control = optarg; break;
        case O_REDIS: o.redis = optarg; break;
        case O_FLOOR_EP: o.floor_ep = optarg; break;
        case O_FLOOR_N: o.floor_n = atol(optarg); break;
        case O_SCPU: o.server_cpu = atoi(optarg); break;
        case O_CCPU: o.client_cpu = atoi(optarg); break;
        case O_WARMUP: o.warmup = atof(optarg); break;
        case O_WINDOW: o.window = atol(optarg); break;
        case O_OUTBOX: o.outbox = atol(optarg); break;
        case O_ACKTMO: o.ack_timeout_ms = atoi(optarg); break;
        case O_CUSTOMERS: o.customers = atol(optarg); break;
        case O_SEED: o.seed = strtoull(optarg, NULL, 10); break;
        case O_DRAIN: o.drain = atof(optarg); break;
        case O_PREFILL: o.mode = MODE_SATURATE; o.prefill = 1; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (o.mode == MODE_NONE || optind < argc || (o.mode == MODE_RATE && (o.rate <= 0 || o.seconds <= 0)) ||
        o.warmup < 0 || o.drain < 0 || o.count <= 0 || o.window <= 0 || o.floor_n <= 0 || o.customers <= 0 || o.outbox <= 0) {
        usage(stderr);
        return 64;
    }
    if (o.mode == MODE_FLOOR)
        return run_floor(&o);

    /* Unique provider ids per run: several runs share one Redis and must not dedupe each other. */
    snprintf(run_tag, sizeof(run_tag), "b%dx%" PRIu64, (int)getpid(), now_ns() % 1000000000u);
    rnd_seed(o.seed);
    make_texts();
    return o.mode == MODE_RATE ? run_rate(&o) : run_saturate(&o);
}
