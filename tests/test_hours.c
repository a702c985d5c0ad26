/* Unit tests of business hours (broker/router/hours.c) with a fake clock: spans, edges, holidays,
 * DST in real zones and in footer rules, next_change, parsers, bad zones and corrupt TZif files,
 * and a cross-check of every offset against glibc (TZ is set here only, never in hours.c). */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "hours.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define ZONEINFO "/usr/share/zoneinfo"

/* ---- helpers ---- */

/* UTC wall time -> ms since the epoch (timegm ignores TZ). */
static int64_t U(int y, int mo, int d, int hh, int mm, int ss)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    return (int64_t)timegm(&tm) * 1000;
}

/* Local wall time in a zone of fixed offset (hours) -> ms. */
static int64_t L(int y, int mo, int d, int hh, int mm, double off_h)
{
    return U(y, mo, d, hh, mm, 0) - (int64_t)(off_h * HOUR_MS);
}

static hours_t *zone(const char *tz)
{
    hours_t *h = NULL;
    int rc = hours_new(tz, NULL, &h);
    cr_assert_eq(rc, 0, "hours_new(%s) = %d", tz ? tz : "(null)", rc);
    cr_assert_not_null(h);
    return h;
}

static void weekdays(hours_t *h, int from, int to, const char *range)
{
    int s, e;
    cr_assert_eq(hours_parse_range(range, &s, &e), 0);
    for (int w = from; w <= to; w++) cr_assert_eq(hours_add_span(h, w, s, e), 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo));
}

static long glibc_off(int64_t ms)
{
    struct tm tm;
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    cr_assert_not_null(localtime_r(&t, &tm));
    return tm.tm_gmtoff;
}

static void use_glibc_tz(const char *tz)
{
    cr_assert_eq(setenv("TZ", tz, 1), 0);
    tzset();
}

/* A private zoneinfo directory for junk and synthetic files. */
static char tmpdir[64];

static void mk_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/omni-hours.XXXXXX", base && strlen(base) < 30 ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void rm_tmpdir(void)
{
    if (tmpdir[0]) nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

static void write_file(const char *name, const void *buf, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    remove(path); /* a fresh file: ext4 flushes data on close after a truncating rewrite */
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    if (len) cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint8_t *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Minimal TZif writer (RFC 8536) for synthetic zones. */
typedef struct {
    uint8_t b[8192];
    size_t n;
} tzbuf_t;

typedef struct {
    int32_t utoff;
    uint8_t isdst;
} ttype_t;

static void put8(tzbuf_t *t, uint8_t v) { t->b[t->n++] = v; }
static void put32(tzbuf_t *t, uint32_t v)
{
    for (int i = 3; i >= 0; i--) put8(t, (uint8_t)(v >> (8 * i)));
}
static void put64(tzbuf_t *t, uint64_t v)
{
    put32(t, (uint32_t)(v >> 32));
    put32(t, (uint32_t)v);
}

static void put_hdr(tzbuf_t *t, char ver, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    memcpy(t->b + t->n, "TZif", 4);
    t->n += 4;
    put8(t, (uint8_t)ver);
    for (int i = 0; i < 15; i++) put8(t, 0);
    put32(t, 0), put32(t, 0), put32(t, 0);
    put32(t, timecnt), put32(t, typecnt), put32(t, charcnt);
}

static void put_data(tzbuf_t *t, int tsize, int n, const int64_t *times, const uint8_t *idx, int ntypes,
                     const ttype_t *types)
{
    for (int i = 0; i < n; i++) tsize == 8 ? put64(t, (uint64_t)times[i]) : put32(t, (uint32_t)times[i]);
    for (int i = 0; i < n; i++) put8(t, idx[i]);
    for (int i = 0; i < ntypes; i++) put32(t, (uint32_t)types[i].utoff), put8(t, types[i].isdst), put8(t, 0);
    memcpy(t->b + t->n, "XXX", 4);
    t->n += 4;
}

/* ver '2'+: minimal v1 block, then the 64-bit block and "\nfooter\n"; ver '\0': v1 only. */
static void build(tzbuf_t *t, char ver, int n, const int64_t *times, const uint8_t *idx, int ntypes,
                  const ttype_t *types, const char *footer)
{
    t->n = 0;
    if (ver == '\0') {
        put_hdr(t, ver, (uint32_t)n, (uint32_t)ntypes, 4);
        put_data(t, 4, n, times, idx, ntypes, types);
        return;
    }
    ttype_t utc = {0, 0};
    put_hdr(t, ver, 0, 1, 4);
    put_data(t, 4, 0, NULL, NULL, 1, &utc);
    put_hdr(t, ver, (uint32_t)n, (uint32_t)ntypes, 4);
    put_data(t, 8, n, times, idx, ntypes, types);
    put8(t, '\n');
    memcpy(t->b + t->n, footer, strlen(footer));
    t->n += strlen(footer);
    put8(t, '\n');
}

static int load_tmp(const char *name, hours_t **out)
{
    return hours_new(name, tmpdir, out);
}

/* ---- zones and spans ---- */

Test(hours, tokyo_weekdays_and_weekend)
{
    hours_t *h = zone("Asia/Tokyo");
    weekdays(h, 1, 5, "09:00-18:00");
    weekdays(h, 6, 6, "10:00-14:00");
    cr_assert_str_eq(hours_tz(h), "Asia/Tokyo");
    cr_assert_eq(hours_utc_offset(h, U(2026, 1, 5, 0, 0, 0)), 9 * 3600);
    /* 2026-01-05 is a Monday */
    cr_assert_eq(hours_is_open(h, L(2026, 1, 5, 8, 59, 9)), 0);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 5, 9, 0, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 5, 17, 59, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 5, 18, 0, 9)), 0);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 9, 12, 0, 9)), 1);   /* Friday */
    cr_assert_eq(hours_is_open(h, L(2026, 1, 10, 9, 59, 9)), 0);  /* Saturday */
    cr_assert_eq(hours_is_open(h, L(2026, 1, 10, 10, 0, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 10, 13, 59, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 10, 14, 0, 9)), 0);
    for (int hh = 0; hh < 24; hh++) cr_assert_eq(hours_is_open(h, L(2026, 1, 11, hh, 30, 9)), 0); /* Sunday */
    /* Monday 09:00 JST is still Monday 00:00 UTC; Monday 08:00 JST is Sunday in UTC */
    cr_assert_eq(hours_is_open(h, U(2026, 1, 5, 0, 0, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 1, 4, 23, 0, 0)), 0);
    hours_destroy(&h);
    cr_assert_null(h);
}

Test(hours, default_zone_is_tokyo)
{
    hours_t *h = zone(NULL), *g = zone("");
    cr_assert_str_eq(hours_tz(h), "Asia/Tokyo");
    cr_assert_str_eq(hours_tz(g), "Asia/Tokyo");
    cr_assert_eq(hours_utc_offset(h, U(2026, 7, 1, 0, 0, 0)), 32400);
    cr_assert_eq(hours_is_open(h, U(2026, 7, 1, 0, 0, 0)), 0, "a new calendar is closed");
    cr_assert_eq(hours_next_change(h, U(2026, 7, 1, 0, 0, 0)), INT64_MAX);
    hours_destroy(&h);
    hours_destroy(&g);
    hours_destroy(&g);
    hours_destroy(NULL);
}

Test(hours, null_handles)
{
    cr_assert_eq(hours_is_open(NULL, 0), 0);
    cr_assert_eq(hours_next_change(NULL, 0), INT64_MAX);
    cr_assert_eq(hours_utc_offset(NULL, 0), 0);
    cr_assert_str_eq(hours_tz(NULL), "");
    cr_assert_eq(hours_add_span(NULL, 1, 0, 60), OMNI_EINVAL);
    cr_assert_eq(hours_add_holiday(NULL, 2026, 1, 1), OMNI_EINVAL);
    hours_set_always_open(NULL);
    cr_assert_eq(hours_new("Asia/Tokyo", NULL, NULL), OMNI_EINVAL);
}

Test(hours, span_edges)
{
    hours_t *h = zone("Asia/Tokyo");
    cr_assert_eq(hours_add_span(h, 5, 22 * 60, 1440), 0);     /* Friday 22:00-24:00 */
    cr_assert_eq(hours_add_span(h, 3, 9 * 60, 12 * 60), 0);   /* Wednesday, overlapping */
    cr_assert_eq(hours_add_span(h, 3, 11 * 60, 13 * 60), 0);
    cr_assert_eq(hours_add_span(h, 4, 0, 1), 0);              /* Thursday 00:00-00:01 */
    int64_t fri22 = L(2026, 1, 9, 22, 0, 9);
    cr_assert_eq(hours_is_open(h, fri22 - 1), 0, "start is inclusive");
    cr_assert_eq(hours_is_open(h, fri22), 1);
    cr_assert_eq(hours_is_open(h, fri22 + 2 * HOUR_MS - 1), 1, "23:59:59.999 is inside a 24:00 span");
    cr_assert_eq(hours_is_open(h, fri22 + 2 * HOUR_MS), 0, "end is exclusive");
    cr_assert_eq(hours_is_open(h, L(2026, 1, 7, 12, 30, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 7, 13, 0, 9) - 1), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 7, 13, 0, 9)), 0);
    cr_assert_eq(hours_next_change(h, L(2026, 1, 7, 9, 30, 9)), L(2026, 1, 7, 13, 0, 9), "overlaps merge");
    cr_assert_eq(hours_is_open(h, L(2026, 1, 8, 0, 0, 9)), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 8, 0, 1, 9) - 1), 1);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 8, 0, 1, 9)), 0);
    cr_assert_eq(hours_next_change(h, L(2026, 1, 7, 23, 0, 9)), L(2026, 1, 8, 0, 0, 9));
    cr_assert_eq(hours_next_change(h, L(2026, 1, 8, 0, 0, 9)), L(2026, 1, 8, 0, 1, 9));
    hours_destroy(&h);
}

Test(hours, add_span_rejects)
{
    hours_t *h = zone("Asia/Tokyo");
    const int bad[][3] = {{-1, 0, 60}, {7, 0, 60}, {1, -1, 60}, {1, 60, 60}, {1, 61, 60},
                          {1, 0, 1441}, {1, 1440, 1441}, {1, 1440, 1440}, {INT32_MIN, 0, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(hours_add_span(h, bad[i][0], bad[i][1], bad[i][2]), OMNI_EINVAL, "case %zu", i);
    for (int i = 0; i < HOURS_MAX_SPANS; i++) cr_assert_eq(hours_add_span(h, 2, i, i + 1), 0);
    cr_assert_eq(hours_add_span(h, 2, 100, 200), OMNI_ETOOBIG);
    cr_assert_eq(hours_add_span(h, 3, 100, 200), 0, "the limit is per weekday");
    hours_destroy(&h);
}

Test(hours, holidays_close_the_local_day)
{
    hours_t *h = zone("Asia/Tokyo");
    weekdays(h, 3, 5, "00:00-24:00"); /* Wednesday..Friday, all day */
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 1), 0); /* Thursday */
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 1), 0, "duplicates are accepted");
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 7), 0); /* Wednesday */
    /* Jan 1 00:00 JST is Dec 31 15:00 UTC: the JST date decides */
    cr_assert_eq(hours_is_open(h, U(2025, 12, 31, 15, 0, 0) - 1), 1);
    cr_assert_eq(hours_is_open(h, U(2025, 12, 31, 15, 0, 0)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 1, 1, 14, 59, 59)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 1, 1, 15, 0, 0)), 1, "Jan 2 00:00 JST, a Friday");
    /* Jan 8 01:00 JST falls on the holiday's UTC date (Jan 7) but is not the holiday */
    cr_assert_eq(hours_is_open(h, U(2026, 1, 7, 16, 0, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 1, 7, 14, 0, 0)), 0);
    cr_assert_eq(hours_next_change(h, L(2025, 12, 31, 12, 0, 9)), L(2026, 1, 1, 0, 0, 9));
    cr_assert_eq(hours_next_change(h, L(2026, 1, 1, 10, 0, 9)), L(2026, 1, 2, 0, 0, 9));
    hours_destroy(&h);
}

Test(hours, holiday_validation_and_limit)
{
    hours_t *h = zone("Asia/Tokyo");
    const int bad[][3] = {{2026, 2, 29}, {1900, 2, 29}, {2100, 2, 29}, {2026, 13, 1}, {2026, 0, 1},
                          {2026, 4, 31}, {2026, 1, 0}, {2026, 1, 32}, {0, 1, 1}, {10000, 1, 1}, {-5, 1, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(hours_add_holiday(h, bad[i][0], bad[i][1], bad[i][2]), OMNI_EINVAL, "case %zu", i);
    cr_assert_eq(hours_add_holiday(h, 2024, 2, 29), 0);
    cr_assert_eq(hours_add_holiday(h, 2000, 2, 29), 0);
    cr_assert_eq(hours_add_holiday(h, 9999, 12, 31), 0);
    /* fill to the limit, out of order, to exercise the sorted insert */
    int64_t base = U(2030, 1, 1, 0, 0, 0) / 1000;
    for (int i = 3; i < HOURS_MAX_HOLIDAYS; i++) {
        time_t t = (time_t)(base + (int64_t)((i * 7919) % 4000) * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        cr_assert_eq(hours_add_holiday(h, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), 0, "i=%d", i);
    }
    cr_assert_eq(hours_add_holiday(h, 2026, 5, 5), OMNI_ETOOBIG);
    cr_assert_eq(hours_add_holiday(h, 2024, 2, 29), 0, "a known date is still fine when full");
    /* the sorted set answers lookups: all-day Saturday closed on a listed date only */
    weekdays(h, 0, 6, "00:00-24:00");
    time_t t = (time_t)(base + (int64_t)((100 * 7919) % 4000) * 86400);
    cr_assert_eq(hours_is_open(h, (int64_t)t * 1000 + 3 * HOUR_MS), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 5, 5, 3, 0, 0)), 1);
    hours_destroy(&h);
}

Test(hours, new_york_2026_dst)
{
    hours_t *h = zone("America/New_York");
    /* 2026-03-08 02:00 EST = 07:00 UTC; 2026-11-01 02:00 EDT = 06:00 UTC */
    cr_assert_eq(hours_utc_offset(h, U(2026, 1, 15, 12, 0, 0)), -5 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 3, 8, 6, 59, 59)), -5 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 3, 8, 7, 0, 0)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 7, 4, 12, 0, 0)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 11, 1, 5, 59, 59)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 11, 1, 6, 0, 0)), -5 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 11, 1, 6, 0, 0) - 1), -4 * 3600);

    cr_assert_eq(hours_add_span(h, 0, 3 * 60, 4 * 60), 0); /* Sunday 03:00-04:00 */
    weekdays(h, 1, 5, "09:00-17:00");
    cr_assert_eq(hours_is_open(h, U(2026, 3, 8, 6, 59, 59)), 0, "01:59:59 EST");
    cr_assert_eq(hours_is_open(h, U(2026, 3, 8, 7, 0, 0)), 1, "the clock jumps straight to 03:00 EDT");
    cr_assert_eq(hours_is_open(h, U(2026, 3, 8, 7, 59, 59)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 3, 8, 8, 0, 0)), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 3, 8, 6, 0, 0)), U(2026, 3, 8, 7, 0, 0), "flips at the transition");
    cr_assert_eq(hours_next_change(h, U(2026, 3, 8, 7, 30, 0)), U(2026, 3, 8, 8, 0, 0));
    /* 09:00 local on Mondays either side of the switch */
    cr_assert_eq(hours_is_open(h, U(2026, 3, 2, 13, 30, 0)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 3, 2, 14, 0, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 3, 9, 13, 0, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 3, 9, 21, 0, 0)), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 3, 9, 12, 0, 0)), U(2026, 3, 9, 13, 0, 0));
    /* November: 03:00-04:00 on the fall-back Sunday is 08:00-09:00 UTC (EST again) */
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 7, 59, 59)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 8, 0, 0)), 1);
    cr_assert_eq(hours_next_change(h, U(2026, 11, 1, 0, 0, 0)), U(2026, 11, 1, 8, 0, 0));
    hours_destroy(&h);

    /* 01:00-01:30 happens twice on 2026-11-01: once in EDT, once in EST */
    h = zone("America/New_York");
    cr_assert_eq(hours_add_span(h, 0, 60, 90), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 5, 10, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 5, 40, 0)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 6, 10, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 11, 1, 6, 40, 0)), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 11, 1, 5, 0, 0) - 1), U(2026, 11, 1, 5, 0, 0));
    cr_assert_eq(hours_next_change(h, U(2026, 11, 1, 5, 10, 0)), U(2026, 11, 1, 5, 30, 0));
    cr_assert_eq(hours_next_change(h, U(2026, 11, 1, 5, 40, 0)), U(2026, 11, 1, 6, 0, 0), "the repeat opens again");
    cr_assert_eq(hours_next_change(h, U(2026, 11, 1, 6, 10, 0)), U(2026, 11, 1, 6, 30, 0));
    hours_destroy(&h);

    /* 02:00-02:30 does not exist on 2026-03-08: the next opening is a week later */
    h = zone("America/New_York");
    cr_assert_eq(hours_add_span(h, 0, 120, 150), 0);
    for (int64_t t = U(2026, 3, 8, 5, 0, 0); t < U(2026, 3, 8, 10, 0, 0); t += MIN_MS)
        cr_assert_eq(hours_is_open(h, t), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 3, 8, 5, 0, 0)), U(2026, 3, 15, 6, 0, 0));
    hours_destroy(&h);
}

Test(hours, london)
{
    hours_t *h = zone("Europe/London");
    /* BST 2026: 03-29 01:00 UTC .. 10-25 01:00 UTC */
    cr_assert_eq(hours_utc_offset(h, U(2026, 3, 29, 0, 59, 59)), 0);
    cr_assert_eq(hours_utc_offset(h, U(2026, 3, 29, 1, 0, 0)), 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 10, 25, 0, 59, 59)), 3600);
    cr_assert_eq(hours_utc_offset(h, U(2026, 10, 25, 1, 0, 0)), 0);
    weekdays(h, 1, 5, "09:00-17:30");
    cr_assert_eq(hours_is_open(h, U(2026, 3, 23, 8, 30, 0)), 0); /* Monday, GMT */
    cr_assert_eq(hours_is_open(h, U(2026, 3, 23, 9, 0, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 3, 30, 8, 0, 0)), 1); /* Monday, BST: 09:00 local */
    cr_assert_eq(hours_is_open(h, U(2026, 3, 30, 16, 30, 0)), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 10, 26, 8, 30, 0)), 0); /* GMT again */
    cr_assert_eq(hours_next_change(h, U(2026, 3, 27, 18, 0, 0)), U(2026, 3, 30, 8, 0, 0), "Friday -> Monday across BST");
    hours_destroy(&h);
}

Test(hours, footer_rule_beyond_last_transition)
{
    hours_t *h = zone("America/New_York");
    /* 2100: second Sunday of March is the 14th, first Sunday of November the 7th */
    cr_assert_eq(hours_utc_offset(h, U(2100, 1, 15, 12, 0, 0)), -5 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 3, 14, 6, 59, 59)), -5 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 3, 14, 7, 0, 0)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 7, 1, 12, 0, 0)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 11, 7, 5, 59, 59)), -4 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 11, 7, 6, 0, 0)), -5 * 3600);
    weekdays(h, 0, 6, "09:00-10:00");
    cr_assert_eq(hours_is_open(h, U(2100, 7, 1, 13, 30, 0)), 1, "09:30 EDT");
    cr_assert_eq(hours_is_open(h, U(2100, 1, 15, 13, 30, 0)), 0, "08:30 EST");
    cr_assert_eq(hours_is_open(h, U(2100, 1, 15, 14, 30, 0)), 1);
    cr_assert_eq(hours_next_change(h, U(2100, 3, 13, 16, 0, 0)), U(2100, 3, 14, 13, 0, 0));
    hours_destroy(&h);

    h = zone("Australia/Sydney"); /* southern: DST from October to April */
    cr_assert_eq(hours_utc_offset(h, U(2100, 1, 15, 0, 0, 0)), 11 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 7, 1, 0, 0, 0)), 10 * 3600);
    cr_assert_eq(hours_utc_offset(h, U(2100, 12, 31, 23, 0, 0)), 11 * 3600);
    hours_destroy(&h);
}

Test(hours, kolkata_half_hour)
{
    hours_t *h = zone("Asia/Kolkata");
    cr_assert_eq(hours_utc_offset(h, U(2026, 6, 1, 0, 0, 0)), 19800);
    weekdays(h, 0, 6, "09:00-18:00");
    cr_assert_eq(hours_is_open(h, U(2026, 6, 1, 3, 30, 0) - 1), 0);
    cr_assert_eq(hours_is_open(h, U(2026, 6, 1, 3, 30, 0)), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 6, 1, 12, 30, 0) - 1), 1);
    cr_assert_eq(hours_is_open(h, U(2026, 6, 1, 12, 30, 0)), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 6, 1, 0, 0, 0)), U(2026, 6, 1, 3, 30, 0));
    cr_assert_eq(hours_next_change(h, U(2026, 6, 1, 3, 30, 0)), U(2026, 6, 1, 12, 30, 0));
    hours_destroy(&h);
}

/* ---- next_change ---- */

Test(hours, next_change_week)
{
    hours_t *h = zone("Asia/Tokyo");
    weekdays(h, 1, 5, "09:00-18:00");
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 19, 0, 9)), L(2026, 1, 12, 9, 0, 9), "Friday evening -> Monday");
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 17, 0, 9)), L(2026, 1, 9, 18, 0, 9));
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 9, 0, 9)), L(2026, 1, 9, 18, 0, 9), "strictly after now");
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 9, 0, 9) - 500), L(2026, 1, 9, 9, 0, 9));
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 17, 59, 9) + 59999), L(2026, 1, 9, 18, 0, 9));
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 12), 0);
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 13), 0);
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 19, 0, 9)), L(2026, 1, 14, 9, 0, 9), "across two holidays");
    hours_destroy(&h);
}

Test(hours, next_change_never)
{
    hours_t *h = zone("Asia/Tokyo");
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 19, 0, 9)), INT64_MAX, "no spans");
    hours_set_always_open(h);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 9, 19, 0, 9)), 1);
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 19, 0, 9)), INT64_MAX, "always open");
    hours_destroy(&h);

    /* every day covered by pieces that only meet: still never flips */
    h = zone("America/New_York");
    weekdays(h, 0, 6, "00:00-12:00");
    weekdays(h, 0, 6, "12:00-24:00");
    cr_assert_eq(hours_next_change(h, U(2026, 3, 7, 12, 0, 0)), INT64_MAX);
    /* a holiday makes even 24/7 flip, at local midnight */
    cr_assert_eq(hours_add_holiday(h, 2026, 3, 8), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 3, 7, 12, 0, 0)), U(2026, 3, 8, 5, 0, 0));
    cr_assert_eq(hours_next_change(h, U(2026, 3, 8, 12, 0, 0)), U(2026, 3, 9, 4, 0, 0), "EDT by then");
    hours_destroy(&h);

    h = zone("Asia/Tokyo");
    hours_set_always_open(h);
    cr_assert_eq(hours_add_holiday(h, 2026, 1, 1), 0);
    cr_assert_eq(hours_is_open(h, L(2026, 1, 1, 12, 0, 9)), 0, "24/7 still observes holidays");
    cr_assert_eq(hours_next_change(h, L(2025, 12, 31, 12, 0, 9)), L(2026, 1, 1, 0, 0, 9));
    hours_destroy(&h);
}

Test(hours, next_change_contiguous_across_midnight)
{
    hours_t *h = zone("Asia/Tokyo");
    cr_assert_eq(hours_add_span(h, 5, 20 * 60, 1440), 0);
    cr_assert_eq(hours_add_span(h, 6, 0, 120), 0);
    cr_assert_eq(hours_next_change(h, L(2026, 1, 9, 21, 0, 9)), L(2026, 1, 10, 2, 0, 9));
    hours_destroy(&h);
}

Test(hours, next_change_many_seams)
{
    /* 32 back-to-back spans a day are one open day: the next flip is the holiday, a year out */
    hours_t *h = zone("America/New_York");
    for (int w = 0; w < 7; w++)
        for (int i = 0; i < HOURS_MAX_SPANS; i++)
            cr_assert_eq(hours_add_span(h, w, i * 45, i == HOURS_MAX_SPANS - 1 ? 1440 : (i + 1) * 45), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 1, 1, 0, 0, 0)), INT64_MAX);
    cr_assert_eq(hours_add_holiday(h, 2027, 2, 1), 0);
    cr_assert_eq(hours_next_change(h, U(2026, 1, 1, 0, 0, 0)), U(2027, 2, 1, 5, 0, 0));
    cr_assert_eq(hours_next_change(h, U(2027, 2, 1, 5, 0, 0)), U(2027, 2, 2, 5, 0, 0));
    hours_destroy(&h);
}

static void monday_holidays(hours_t *h, int skip)
{
    int64_t mon = U(2026, 1, 5, 0, 0, 0) / 1000;
    for (int k = 0; k < 60; k++) {
        if (k == skip) continue;
        time_t t = (time_t)(mon + (int64_t)k * 7 * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        cr_assert_eq(hours_add_holiday(h, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), 0);
    }
}

Test(hours, next_change_horizon_400_days)
{
    int64_t now = L(2026, 1, 4, 12, 0, 9); /* Sunday */
    hours_t *h = zone("Asia/Tokyo");
    weekdays(h, 1, 1, "09:00-10:00");
    monday_holidays(h, 57); /* the only open Monday is 399 days + 21 h away: just inside */
    cr_assert_eq(hours_next_change(h, now), L(2026, 1, 5, 9, 0, 9) + 57 * 7 * DAY_MS);
    hours_destroy(&h);

    h = zone("Asia/Tokyo");
    weekdays(h, 1, 1, "09:00-10:00");
    monday_holidays(h, 58); /* 406 days + 21 h: beyond the horizon */
    cr_assert_eq(hours_next_change(h, now), INT64_MAX);
    hours_destroy(&h);
}

Test(hours, extreme_instants_do_not_overflow)
{
    hours_t *h = zone("America/New_York");
    weekdays(h, 0, 6, "09:00-17:00");
    const int64_t ts[] = {INT64_MIN, INT64_MIN + 1, -1, 0, INT64_MAX - DAY_MS, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        int o = hours_is_open(h, ts[i]);
        cr_assert(o == 0 || o == 1);
        int32_t off = hours_utc_offset(h, ts[i]);
        cr_assert(off > -86400 && off < 86400);
        int64_t n = hours_next_change(h, ts[i]);
        cr_assert(n > ts[i] || n == INT64_MAX, "i=%zu", i);
    }
    cr_assert_eq(hours_next_change(h, INT64_MAX - 1), INT64_MAX);
    hours_destroy(&h);
}

/* next_change must equal the first minute at which is_open differs, found by brute force. */
Test(hours, next_change_matches_minute_scan)
{
    const char *zones[] = {"America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney"};
    int64_t windows[][2] = {{U(2026, 3, 1, 0, 0, 0), U(2026, 3, 15, 0, 0, 0)},
                            {U(2026, 3, 25, 0, 0, 0), U(2026, 4, 8, 0, 0, 0)},
                            {U(2026, 9, 30, 0, 0, 0), U(2026, 11, 8, 0, 0, 0)}};
    for (int c = 0; c < 160; c++) {
        hours_t *h = zone(zones[c % 4]);
        int nspans = 1 + (int)(rnd() % 6);
        for (int i = 0; i < nspans; i++) {
            int s = (int)(rnd() % 1440), len = 1 + (int)(rnd() % 600), e = s + len > 1440 ? 1440 : s + len;
            cr_assert_eq(hours_add_span(h, (int)(rnd() % 7), s, e), 0);
        }
        if (rnd() % 3 == 0) cr_assert_eq(hours_add_holiday(h, 2026, 3, 1 + (int)(rnd() % 31)), 0);
        int wi = (int)(rnd() % 3);
        int64_t now = rnd_between(windows[wi][0], windows[wi][1]);
        int64_t got = hours_next_change(h, now), want = INT64_MAX;
        int was = hours_is_open(h, now);
        for (int64_t t = (now / MIN_MS + 1) * MIN_MS; t <= now + 9 * DAY_MS; t += MIN_MS)
            if (hours_is_open(h, t) != was) {
                want = t;
                break;
            }
        if (want == INT64_MAX)
            cr_assert(got > now + 9 * DAY_MS, "case %d %s now=%" PRId64 " got=%" PRId64, c, zones[c % 4], now, got);
        else
            cr_assert_eq(got, want, "case %d %s now=%" PRId64, c, zones[c % 4], now);
        hours_destroy(&h);
    }
}

/* ---- parsers ---- */

Test(hours, parse_range)
{
    const struct {
        const char *s;
        int a, b;
    } ok[] = {{"09:00-18:00", 540, 1080}, {"9:00-18:00", 540, 1080}, {"00:00-24:00", 0, 1440},
              {"0:00-0:01", 0, 1}, {"23:59-24:00", 1439, 1440}, {"9:05-9:06", 545, 546},
              {"12:30-13:45", 750, 825}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int a = -1, b = -1;
        cr_assert_eq(hours_parse_range(ok[i].s, &a, &b), 0, "%s", ok[i].s);
        cr_assert(a == ok[i].a && b == ok[i].b, "%s -> %d %d", ok[i].s, a, b);
    }
    const char *bad[] = {"18:00-09:00", "25:00-26:00", "09:60-10:00", "09:00-18:00x", "09:00-18:00 ",
                         " 09:00-18:00", "09:00", "09:00-", "", "9-18", "09:0-10:00", "009:00-10:00",
                         "09:00-09:00", "24:00-24:00", "23:00-24:01", "10:00-24:30", "-1:00-02:00",
                         "09:00--18:00", ("09:00\xe2\x80\x93" "18:00"), "09h00-18h00", "+9:00-10:00",
                         "09:00-18:00-19:00", "9:5-10:00", "09:00-1800", "99:00-99:59"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int a = 7, b = 7;
        cr_assert_eq(hours_parse_range(bad[i], &a, &b), OMNI_EINVAL, "'%s'", bad[i]);
        cr_assert(a == 7 && b == 7, "outputs untouched on error");
    }
    int a, b;
    cr_assert_eq(hours_parse_range(NULL, &a, &b), OMNI_EINVAL);
    cr_assert_eq(hours_parse_range("09:00-18:00", NULL, &b), OMNI_EINVAL);
    cr_assert_eq(hours_parse_range("09:00-18:00", &a, NULL), OMNI_EINVAL);
}

Test(hours, parse_date)
{
    const struct {
        const char *s;
        int y, m, d;
    } ok[] = {{"2026-01-01", 2026, 1, 1}, {"2024-02-29", 2024, 2, 29}, {"2000-02-29", 2000, 2, 29},
              {"9999-12-31", 9999, 12, 31}, {"0001-01-01", 1, 1, 1}, {"2026-04-30", 2026, 4, 30}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int y, m, d;
        cr_assert_eq(hours_parse_date(ok[i].s, &y, &m, &d), 0, "%s", ok[i].s);
        cr_assert(y == ok[i].y && m == ok[i].m && d == ok[i].d, "%s", ok[i].s);
    }
    const char *bad[] = {"2026-02-29", "1900-02-29", "2100-02-29", "2026-13-01", "2026-00-10", "2026-04-31",
                         "2026-01-00", "2026-01-32", "2026-1-01", "26-01-01", "2026-01-01x", "2026/01/01",
                         "0000-01-01", "", "2026-01-0a", " 2026-01-01", "2026-01-1", "+026-01-01",
                         "2026-01-01\n", "20260101"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int y = 0, m = 0, d = 0;
        cr_assert_eq(hours_parse_date(bad[i], &y, &m, &d), OMNI_EINVAL, "'%s'", bad[i]);
    }
    int y, m, d;
    cr_assert_eq(hours_parse_date(NULL, &y, &m, &d), OMNI_EINVAL);
    cr_assert_eq(hours_parse_date("2026-01-01", NULL, &m, &d), OMNI_EINVAL);
}

Test(hours, parse_wday)
{
    const struct {
        const char *s;
        int w;
    } ok[] = {{"sun", 0}, {"Mon", 1}, {"TUESDAY", 2}, {"wed", 3}, {"thursday", 4}, {"Fri", 5},
              {"sat", 6}, {"Saturday", 6}, {"SUNDAY", 0}, {"monday", 1}, {"tue", 2}, {"Wednesday", 3},
              {"THU", 4}, {"friday", 5}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_assert_eq(hours_parse_wday(ok[i].s), ok[i].w, "%s", ok[i].s);
    const char *bad[] = {"", "mo", "mond", "mondays", "xyz", "sun ", " sun", "thu\n", "tues", "thurs", "0", "7"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(hours_parse_wday(bad[i]), OMNI_EINVAL, "'%s'", bad[i]);
    cr_assert_eq(hours_parse_wday(NULL), OMNI_EINVAL);
}

/* ---- zone names and files ---- */

Test(hours, bad_zone_names)
{
    char longname[HOURS_TZ_MAX + 1];
    memset(longname, 'A', HOURS_TZ_MAX);
    longname[HOURS_TZ_MAX] = '\0';
    const char *inval[] = {"../etc/passwd", "/etc/passwd", "Asia//Tokyo", "Asia/", "/", "Asia/./Tokyo",
                           "Asia/../Asia/Tokyo", "..", ".", "./Asia/Tokyo", longname, "Asia/Tok yo",
                           "Asia\\Tokyo", "Asia/Tokyo\n", "Asia/\xe6\x9d\xb1\xe4\xba\xac"};
    for (size_t i = 0; i < sizeof(inval) / sizeof(inval[0]); i++) {
        hours_t *h = (hours_t *)0x1;
        cr_assert_eq(hours_new(inval[i], NULL, &h), OMNI_EINVAL, "'%s'", inval[i]);
        cr_assert_null(h);
    }
    longname[HOURS_TZ_MAX - 1] = '\0'; /* 63 bytes: a valid name, just not a zone */
    hours_t *h = NULL;
    cr_assert_eq(hours_new(longname, NULL, &h), OMNI_ENOTFOUND);
    const char *missing[] = {"Nowhere/Atlantis", "Asia", "Asia/Tokyo/x", "asia/tokyo", "Asia/Tokyo.."};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        cr_assert_eq(hours_new(missing[i], NULL, &h), OMNI_ENOTFOUND, "'%s'", missing[i]);
        cr_assert_null(h);
    }
    cr_assert_eq(hours_new("Asia/Tokyo", "", &h), OMNI_EINVAL, "empty zoneinfo_dir");
    cr_assert_eq(hours_new("Asia/Tokyo", "/nonexistent-omni-dir", &h), OMNI_ENOTFOUND);
    cr_assert_eq(hours_new("Etc/GMT+5", ZONEINFO, &h), 0, "'+' is part of real names");
    cr_assert_eq(hours_utc_offset(h, 0), -5 * 3600);
    hours_destroy(&h);
    cr_assert_eq(hours_new("America/Port-au-Prince", NULL, &h), 0);
    hours_destroy(&h);
}

Test(hours, junk_files_are_config_errors, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    hours_t *h = NULL;
    const char *junk = "this is not a time zone\n";
    write_file("Junk", junk, strlen(junk));
    cr_assert_eq(load_tmp("Junk", &h), OMNI_ECONFIG);
    cr_assert_null(h);
    write_file("Empty", "", 0);
    cr_assert_eq(load_tmp("Empty", &h), OMNI_ECONFIG);
    write_file("Magic", "TZif", 4);
    cr_assert_eq(load_tmp("Magic", &h), OMNI_ECONFIG);

    /* more than 1 MiB, even with a good header */
    size_t big = (1 << 20) + 1;
    uint8_t *b = calloc(1, big);
    cr_assert_not_null(b);
    size_t len;
    uint8_t *ny = slurp(ZONEINFO "/America/New_York", &len);
    memcpy(b, ny, len);
    write_file("Big", b, big);
    cr_assert_eq(load_tmp("Big", &h), OMNI_ECONFIG);
    free(b);

    /* absurd counts in either header */
    tzbuf_t t;
    ttype_t ty = {3600, 0};
    build(&t, '2', 0, NULL, NULL, 1, &ty, "XXX-1");
    write_file("Ok", t.b, t.n);
    cr_assert_eq(load_tmp("Ok", &h), 0, "the synthetic base file is valid");
    cr_assert_eq(hours_utc_offset(h, 0), 3600);
    hours_destroy(&h);
    const size_t count_at[] = {32, 36, 40, 28, 20, 24};
    for (size_t i = 0; i < 6; i++) {
        for (int second = 0; second < 2; second++) {
            tzbuf_t x = t;
            size_t at = count_at[i] + (second ? 44 + 6 + 4 : 0); /* v1 block: one type, 4 chars */
            x.b[at] = 0xff, x.b[at + 1] = 0xff, x.b[at + 2] = 0xff, x.b[at + 3] = 0xff;
            write_file("Absurd", x.b, x.n);
            cr_assert_eq(load_tmp("Absurd", &h), OMNI_ECONFIG, "count %zu header %d", i, second);
        }
    }
    /* typecnt 0, bad version */
    tzbuf_t x = t;
    x.b[44 + 6 + 4 + 39] = 0;
    write_file("NoTypes", x.b, x.n);
    cr_assert_eq(load_tmp("NoTypes", &h), OMNI_ECONFIG);
    x = t;
    x.b[4] = '1';
    write_file("V1", x.b, x.n);
    cr_assert_eq(load_tmp("V1", &h), OMNI_ECONFIG);

    /* a FIFO must not hang the load, a directory is not a zone */
    char path[256];
    snprintf(path, sizeof(path), "%s/Fifo", tmpdir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(load_tmp("Fifo", &h), OMNI_ECONFIG);
    snprintf(path, sizeof(path), "%s/Dir", tmpdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(load_tmp("Dir", &h), OMNI_ENOTFOUND);
    free(ny);
}

Test(hours, corrupt_tzif_fields, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    hours_t *h = NULL;
    tzbuf_t t;
    ttype_t ty[2] = {{-18000, 0}, {-14400, 1}};
    int64_t times[3] = {1000, 2000, 3000};
    uint8_t idx[3] = {1, 0, 1};

    build(&t, '2', 3, times, idx, 2, ty, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), 0);
    hours_destroy(&h);

    int64_t desc[3] = {1000, 3000, 2000};
    build(&t, '2', 3, desc, idx, 2, ty, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "transitions must ascend");
    int64_t dup[3] = {1000, 2000, 2000};
    build(&t, '2', 3, dup, idx, 2, ty, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "strictly");
    uint8_t badidx[3] = {1, 0, 2};
    build(&t, '2', 3, times, badidx, 2, ty, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "type index out of range");
    ttype_t absurd[2] = {{-18000, 0}, {100000, 1}};
    build(&t, '2', 3, times, idx, 2, absurd, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "utoff beyond 26 h");
    ttype_t baddst[2] = {{-18000, 0}, {-14400, 2}};
    build(&t, '2', 3, times, idx, 2, baddst, "EST5EDT,M3.2.0,M11.1.0");
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "isdst is 0 or 1");

    const char *bad_footers[] = {"EST5EDT,M13.2.0,M11.1.0", "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0",
                                 "EST5EDT,M3.2.0", "EST5EDT,M3.2.0,M11.1.0,", "EST", "E5", "EST25",
                                 "EST5EDT,J0,J100", "EST5EDT,J366,J100", "EST5EDT,366,100", "<EST5",
                                 "<E>5", "EST5EDT,M3.2.0/168,M11.1.0", "EST5:60", "EST5EDT,M3.2.0,M11.1.0 ",
                                 "EST5EDT;M3.2.0,M11.1.0", "EST 5"};
    for (size_t i = 0; i < sizeof(bad_footers) / sizeof(bad_footers[0]); i++) {
        build(&t, '2', 3, times, idx, 2, ty, bad_footers[i]);
        write_file("Z", t.b, t.n);
        cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "footer '%s'", bad_footers[i]);
    }
    char longfooter[400];
    memset(longfooter, 'A', sizeof(longfooter) - 2);
    strcpy(longfooter + sizeof(longfooter) - 2, "5");
    build(&t, '2', 3, times, idx, 2, ty, longfooter);
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "footer too long");

    /* footer must be framed by newlines */
    build(&t, '2', 3, times, idx, 2, ty, "EST5EDT,M3.2.0,M11.1.0");
    t.n--;
    write_file("Z", t.b, t.n);
    cr_assert_eq(load_tmp("Z", &h), OMNI_ECONFIG, "no closing newline");
    cr_assert_null(h);
}

Test(hours, truncated_tzif_never_loads, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    const char *zones[] = {"America/New_York", "Asia/Tokyo"};
    for (size_t z = 0; z < 2; z++) {
        size_t len;
        char path[256];
        snprintf(path, sizeof(path), ZONEINFO "/%s", zones[z]);
        uint8_t *buf = slurp(path, &len);
        cr_assert(len > 44);
        hours_t *h = NULL, *ref = zone(zones[z]);
        for (size_t n = 0; n < len; n++) {
            write_file("Cut", buf, n);
            cr_assert_eq(load_tmp("Cut", &h), OMNI_ECONFIG, "%s cut at %zu of %zu", zones[z], n, len);
            cr_assert_null(h);
        }
        write_file("Whole", buf, len);
        cr_assert_eq(load_tmp("Whole", &h), 0);
        for (int i = 0; i < 200; i++) {
            int64_t t = rnd_between(U(1900, 1, 1, 0, 0, 0), U(2200, 1, 1, 0, 0, 0));
            cr_assert_eq(hours_utc_offset(h, t), hours_utc_offset(ref, t));
        }
        hours_destroy(&h);
        hours_destroy(&ref);
        free(buf);
    }
}

/* Random byte damage: either a clean load or OMNI_ECONFIG, and a loaded zone answers sanely. */
Test(hours, mutated_tzif_never_crashes, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    size_t len;
    uint8_t *orig = slurp(ZONEINFO "/America/New_York", &len);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    int loaded = 0;
    for (int i = 0; i < 1500; i++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rnd() % len);
            buf[at] = rnd() % 2 ? (uint8_t)rnd() : (uint8_t)(buf[at] ^ (1u << (rnd() % 8)));
        }
        write_file("M", buf, len);
        hours_t *h = NULL;
        int rc = load_tmp("M", &h);
        cr_assert(rc == 0 || rc == OMNI_ECONFIG, "rc=%d", rc);
        if (rc != 0) continue;
        loaded++;
        hours_set_always_open(h);
        cr_assert_eq(hours_add_holiday(h, 2026, 3, 8), 0);
        for (int q = 0; q < 5; q++) {
            int64_t t = rnd_between(U(1800, 1, 1, 0, 0, 0), U(2300, 1, 1, 0, 0, 0));
            int32_t off = hours_utc_offset(h, t);
            cr_assert(off >= -89999 && off <= 93599);
            (void)hours_is_open(h, t);
            int64_t n = hours_next_change(h, t);
            cr_assert(n > t);
        }
        hours_destroy(&h);
    }
    cr_assert(loaded > 0, "some mutations (abbreviation bytes, pre-1900 times) still load");
    free(buf);
    free(orig);
}

/* ---- synthetic zones: file versions and every footer form, against glibc's own TZ parser ---- */

Test(hours, v1_file_and_transitions, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    hours_t *h = NULL;
    tzbuf_t t;
    ttype_t ty[3] = {{32400, 0}, {36000, 1}, {-3600, 0}};
    int64_t times[2] = {1000000, 2000000};
    uint8_t idx[2] = {1, 2};

    build(&t, '\0', 2, times, idx, 3, ty, "");
    write_file("V1", t.b, t.n);
    cr_assert_eq(load_tmp("V1", &h), 0);
    cr_assert_eq(hours_utc_offset(h, 999999999LL), 32400, "type 0 before the first transition");
    cr_assert_eq(hours_utc_offset(h, 1000000000LL), 36000);
    cr_assert_eq(hours_utc_offset(h, 1999999999LL), 36000);
    cr_assert_eq(hours_utc_offset(h, 2000000000LL), -3600);
    cr_assert_eq(hours_utc_offset(h, INT64_MAX), -3600, "no footer: the last type forever");
    hours_destroy(&h);

    /* v2, empty footer: same; v3 with a footer that takes over after the last transition */
    build(&t, '2', 2, times, idx, 3, ty, "");
    write_file("V2", t.b, t.n);
    cr_assert_eq(load_tmp("V2", &h), 0);
    cr_assert_eq(hours_utc_offset(h, U(2100, 7, 1, 0, 0, 0)), -3600);
    hours_destroy(&h);
    int64_t t2[2] = {1000000, U(2000, 1, 1, 0, 0, 0) / 1000};
    build(&t, '3', 2, t2, idx, 3, ty, "EST5EDT,M3.2.0,M11.1.0");
    write_file("V3", t.b, t.n);
    cr_assert_eq(load_tmp("V3", &h), 0);
    cr_assert_eq(hours_utc_offset(h, U(1999, 7, 1, 0, 0, 0)), 36000);
    cr_assert_eq(hours_utc_offset(h, U(2000, 1, 1, 0, 0, 0) - 1000), 36000);
    cr_assert_eq(hours_utc_offset(h, U(2000, 1, 1, 0, 0, 0)), -18000, "the footer from the last transition on");
    cr_assert_eq(hours_utc_offset(h, U(2000, 7, 1, 0, 0, 0)), -14400);
    hours_destroy(&h);
    /* a DST footer with no rule gets the US default */
    build(&t, '2', 0, NULL, NULL, 1, ty, "EST5EDT");
    write_file("Def", t.b, t.n);
    cr_assert_eq(load_tmp("Def", &h), 0);
    cr_assert_eq(hours_utc_offset(h, U(2030, 3, 10, 6, 59, 59)), -18000);
    cr_assert_eq(hours_utc_offset(h, U(2030, 3, 10, 7, 0, 0)), -14400);
    cr_assert_eq(hours_utc_offset(h, U(2030, 11, 3, 6, 0, 0)), -18000);
    hours_destroy(&h);
}

Test(hours, footer_forms_match_glibc, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    const char *rules[] = {
        "EST5EDT,M3.2.0,M11.1.0",
        "JST-9",
        "<+0330>-3:30",
        "<-0330>3:30",
        "UTC0",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "IST-1GMT0,M10.5.0,M3.5.0/1",                 /* Europe/Dublin: negative DST */
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", /* Pacific/Chatham */
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",         /* Australia/Lord_Howe: 30-min DST */
        "XXX3YYY,J60/2,J300/2",                         /* Jn: Feb 29 never counted */
        "XXX3YYY,59/2,299/2",                           /* n: zero-based, Feb 29 counted */
        "XXX3YYY,J2/0,J364/23:59:59",
        "NST3:30NDT,M3.2.0/0:01,M11.1.0/0:01",
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",             /* America/Nuuk: negative times (v3) */
        "XXX-5YYY-6,M1.1.0/26,M12.5.6/30",              /* times beyond 24 h */
        "<-00>0<+01>-1,M2.5.4/48,M10.5.0/3",
        "AAA+4BBB+3,M5.5.0,M9.1.3/1:30:30",
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        tzbuf_t t;
        ttype_t ty = {0, 0};
        hours_t *h = NULL;
        build(&t, '3', 0, NULL, NULL, 1, &ty, rules[i]);
        write_file("F", t.b, t.n);
        cr_assert_eq(load_tmp("F", &h), 0, "footer '%s'", rules[i]);
        use_glibc_tz(rules[i]);
        for (int k = 0; k < 1500; k++) {
            int64_t ms = rnd_between(U(1971, 1, 1, 0, 0, 0), U(2200, 1, 1, 0, 0, 0)) / 1000 * 1000;
            cr_assert_eq(hours_utc_offset(h, ms), glibc_off(ms), "'%s' at %" PRId64, rules[i], ms / 1000);
        }
        /* every hour of two years, at and just before the hour: transitions are hit exactly */
        for (int64_t ms = U(2031, 1, 1, 0, 0, 0); ms < U(2033, 1, 1, 0, 0, 0); ms += HOUR_MS / 4) {
            cr_assert_eq(hours_utc_offset(h, ms), glibc_off(ms), "'%s' at %" PRId64, rules[i], ms / 1000);
            cr_assert_eq(hours_utc_offset(h, ms - 1000), glibc_off(ms - 1000), "'%s' at %" PRId64, rules[i],
                         ms / 1000 - 1);
        }
        hours_destroy(&h);
    }
}

/* Where glibc approximates: it evaluates a rule in the UTC year only, so a DST period that ends
 * after UTC midnight of Jan 1 looks over early. The rule's own years decide here. */
Test(hours, footer_dst_across_new_year, .init = mk_tmpdir, .fini = rm_tmpdir)
{
    tzbuf_t t;
    ttype_t ty = {0, 0};
    hours_t *h = NULL;

    /* DST from Jan 1 00:00 (std) to Dec 31 23:59:59 (DST): 2030's ends 2031-01-01 01:59:59Z */
    build(&t, '3', 0, NULL, NULL, 1, &ty, "XXX3YYY,J1/0,J365/23:59:59");
    write_file("F", t.b, t.n);
    cr_assert_eq(load_tmp("F", &h), 0);
    cr_assert_eq(hours_utc_offset(h, U(2030, 12, 31, 23, 0, 0)), -7200);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 0, 0, 0)), -7200);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 1, 59, 58)), -7200);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 1, 59, 59)), -10800);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 2, 59, 59)), -10800);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 3, 0, 0)), -7200);
    hours_destroy(&h);

    /* RFC 8536 all-year DST: ends Dec 31 at 25:00 DST = next year's start, so never standard */
    build(&t, '3', 0, NULL, NULL, 1, &ty, "EST5EDT,0/0,J365/25");
    write_file("F", t.b, t.n);
    cr_assert_eq(load_tmp("F", &h), 0);
    for (int64_t ms = U(2029, 12, 25, 0, 0, 0); ms < U(2031, 1, 10, 0, 0, 0); ms += HOUR_MS / 2)
        cr_assert_eq(hours_utc_offset(h, ms), -4 * 3600, "at %" PRId64, ms / 1000);
    cr_assert_eq(hours_utc_offset(h, U(2031, 1, 1, 5, 0, 0)), -4 * 3600);
    hours_destroy(&h);
}

/* ---- real zones against glibc ---- */

static void cross_check(const char *tz, int64_t lo, int64_t hi, int n)
{
    hours_t *h = zone(tz);
    use_glibc_tz(tz);
    for (int k = 0; k < n; k++) {
        int64_t ms = rnd_between(lo, hi);
        cr_assert_eq(hours_utc_offset(h, ms), glibc_off(ms), "%s at %" PRId64 " ms", tz, ms);
    }
    hours_destroy(&h);
}

Test(hours, offsets_match_glibc_1990_2060)
{
    const char *zones[] = {"America/New_York", "Europe/London", "Australia/Sydney", "Asia/Tokyo"};
    for (size_t z = 0; z < 4; z++) {
        cross_check(zones[z], U(1990, 1, 1, 0, 0, 0), U(2060, 1, 1, 0, 0, 0), 1000);
        /* at and one second before every quarter hour of 2025-2027: hits each transition exactly */
        hours_t *h = zone(zones[z]);
        use_glibc_tz(zones[z]);
        for (int64_t ms = U(2025, 1, 1, 0, 0, 0); ms < U(2028, 1, 1, 0, 0, 0); ms += HOUR_MS / 4) {
            cr_assert_eq(hours_utc_offset(h, ms), glibc_off(ms), "%s at %" PRId64, zones[z], ms);
            cr_assert_eq(hours_utc_offset(h, ms - 1000), glibc_off(ms - 1000), "%s at %" PRId64, zones[z], ms);
        }
        hours_destroy(&h);
    }
}

Test(hours, offsets_match_glibc_more_zones)
{
    const char *zones[] = {"Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns",
                           "Europe/Dublin", "Pacific/Chatham", "America/Sao_Paulo", "Africa/Casablanca",
                           "America/Nuuk", "Europe/Berlin", "Pacific/Kiritimati", "America/Santiago",
                           "Asia/Tehran", "Antarctica/Troll", "UTC", "Etc/GMT-14"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        char path[256];
        snprintf(path, sizeof(path), ZONEINFO "/%s", zones[z]);
        if (access(path, R_OK) != 0) continue; /* tzdata renames zones now and then */
        cross_check(zones[z], U(1970, 1, 1, 0, 0, 0), U(2100, 1, 1, 0, 0, 0), 1000);
    }
    /* far past the data in each file: only the footer rule answers there */
    cross_check("America/New_York", U(2060, 1, 1, 0, 0, 0), U(2400, 1, 1, 0, 0, 0), 1000);
    cross_check("Australia/Sydney", U(2060, 1, 1, 0, 0, 0), U(2400, 1, 1, 0, 0, 0), 1000);
    cross_check("Europe/London", U(2060, 1, 1, 0, 0, 0), U(2400, 1, 1, 0, 0, 0), 1000);
}
