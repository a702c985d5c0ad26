/* The benchmarks' log-linear latency histogram: HdrHistogram's bucket layout in a few lines,
 * so percentiles of millions of samples cost a fixed 58 KiB and no sorting. */
#include <math.h>
#include <string.h>

#include "hist.h"

void hist_init(hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Bucket of v: exact below 2*HIST_SUB, else the top HIST_SUB_BITS+1 bits of v select one of
 * HIST_SUB sub-buckets of its power of two. */
static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
    return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The midpoint of bucket i: at most half a bucket width (≤ 1/256 relative) from any member. */
static uint64_t bucket_value(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t sub = i - shift * HIST_SUB;
    return (sub << shift) + (((uint64_t)1 << shift) >> 1);
}

void hist_record(hist_t *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->n++;
    h->sum += (long double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    if (!src->n)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const hist_t *h, double p)
{
    if (!h->n)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* The rank of the value asked for (1-based): ceil, so p99 of 100 values is the 99th. */
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n), seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = bucket_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const hist_t *h)
{
    return h->n ? (double)(h->sum / (long double)h->n) : 0.0;
}
