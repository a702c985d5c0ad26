/* A small log-linear latency histogram for the benchmarks (Debian has no C HdrHistogram):
 * any uint64 value (ns or µs) with ≤ 0.4% relative error, percentiles, count/min/max/mean, merge. */
#ifndef OMNI_BENCH_HIST_H
#define OMNI_BENCH_HIST_H

#include <stdint.h>

/* 128 linear sub-buckets per power of two: the bucket width is at most 1/128 of its lower
 * bound, and reporting the bucket's midpoint halves that, so the error is ≤ 1/256 < 1%. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Values below 2*HIST_SUB are exact (2*HIST_SUB buckets); each further power of two, up to
 * 2^63, adds HIST_SUB buckets: 58 * 128 counters, 58 KiB, covering all of uint64. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct {
    uint64_t n, min, max;
    long double sum;           /* long double: a million 60 s values in ns would overflow uint64 */
    uint64_t counts[HIST_BUCKETS];
} hist_t;

void hist_init(hist_t *h);
void hist_record(hist_t *h, uint64_t v);
/* dst += src (both initialized). */
void hist_merge(hist_t *dst, const hist_t *src);
/* Value at percentile p (0..100): the smallest recorded value v such that at least p% of the
 * values are ≤ v, within the error above and clamped to [min, max]. 0 when empty. */
uint64_t hist_percentile(const hist_t *h, double p);
double hist_mean(const hist_t *h);

#endif
