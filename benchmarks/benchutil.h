/* benchutil: what bench_ingest and bench_route share — clocks, pinning, latency printing, Redis
 * and broker-counter access, the synthetic texts, the SDK connection and the transport floor. */
#ifndef OMNI_BENCH_UTIL_H
#define OMNI_BENCH_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include <omni/adapter.h>

#include "hist.h"

/* Program name for error messages ("bench_ingest", "bench_route"). */
extern const char *bench_name;

uint64_t now_ns(void);                 /* CLOCK_MONOTONIC */
double cpu_s(void);                    /* this process's user + system seconds */
void pin_self(int cpu);                /* the calling thread; cpu < 0: leave it */
static inline double us(uint64_t ns) { return (double)ns / 1000.0; }

/* "  label  n=... p50 ... p99 ... p99.9 ... max ... mean ... us" (the histogram holds ns). */
void print_hist(const char *label, const hist_t *h);
/* " prefixp50_us=... prefixp99_us=... prefixp999_us=... prefixmax_us=..." for a RESULT line. */
void result_hist(const char *prefix, const hist_t *h);

/* unix:///path.sock or redis://host:port; NULL (after a message) if unreachable. */
redisContext *redis_open(const char *url);

/* ---- broker counters (control endpoint) ---- */

typedef struct {
    uint64_t frames, accepted, duplicate, rejected, retry, merged, opened;
    uint64_t queued, offers, offers_timed_out, assigned, closed, requeued, queue_full, agent_errors;
    uint64_t activity; /* sum of every counter except the control endpoint's own */
    int ok;
} counters_t;

/* One StatusRequest; ok=0 if the broker does not answer in 2 s or endpoint is NULL. */
counters_t broker_counters(const char *endpoint);
/* Wait (at most 120 s) until the broker's counters stand still for 0.6 s, so that a run does
 * not measure what an earlier, overloaded one left in its queues. */
void settle(const char *control);

/* ---- synthetic traffic ---- */

void rnd_seed(uint64_t seed);
uint64_t rnd(void);                    /* splitmix64: reproducible with a seed */
uint64_t mix(uint64_t x);              /* stateless: an id's bits as a function of a number */
#define NTEXTS 512
extern char texts[NTEXTS][512];
/* 300-500 bytes each, mixed Japanese and English, cut on a UTF-8 boundary; uses rnd(). */
void make_texts(void);

/* ---- the SDK ---- */

/* A connected adapter (the broker answered its hello), settled first; NULL on failure. */
omni_adapter_t *connect_sdk(const char *broker, const char *control, Omni__V1__Channel channel, size_t outbox,
                            int ack_timeout_ms, omni_ack_cb on_ack);
/* One pass of the load generator's loop. It spins: a blocking poll would add a timer wake-up
 * (60-75 µs here) to every measurement. sched_yield lets the ZeroMQ I/O threads, pinned to the
 * same core, run. */
void spin(omni_adapter_t *ad);

/* ---- the transport floor ---- */

/* A server thread standing where the broker runs: a ROUTER on in_ep; for each request, one
 * EVALSHA (an XADD of the request into omni-bench:floor) if redis is set, then either a reply
 * of out_len bytes to the sender (out_ep NULL: the ingest ack path) or out_len bytes to the
 * one DEALER connected to the ROUTER on out_ep (the broker -> agent hop). That DEALER must send
 * one frame first so the relay learns its routing id. An empty request stops the relay. */
typedef struct {
    const char *in_ep, *out_ep, *redis;
    int cpu;
    size_t out_len;
    pthread_t th;
    atomic_int ready; /* 1 bound, -1 failed */
} relay_t;

int relay_start(relay_t *r);           /* 0 once bound */
void relay_join(relay_t *r);

/* n blocking Redis round trips (after warm runs) from a thread pinned to cpu: PING, or with
 * xadd the relay's EVALSHA (so the Redis part of a floor is the call the relay makes). */
int redis_floor(const char *url, int cpu, long warm, long n, int xadd, hist_t *h);
/* Remove omni-bench:floor: leave the server as we found it. */
void floor_cleanup(const char *url);

#endif
