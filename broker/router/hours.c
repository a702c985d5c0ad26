/* Business hours: weekly [start, end) spans in one IANA zone plus holidays, answered from the
 * zone's own TZif data (RFC 8536) so DST is right without TZ, tzset or localtime. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hours.h"

#define HOURS_DEFAULT_TZ "Asia/Tokyo"
#define HOURS_ZONEINFO "/usr/share/zoneinfo"
#define HOURS_DAY 86400
#define HOURS_HORIZON_MS (400LL * HOURS_DAY * 1000)
/* Real zones are a few KiB (America/New_York, fat: 3.5 KiB; leap-second file: 27 records). The
 * file limit already bounds every count; the explicit ones keep header arithmetic obviously small. */
#define HOURS_FILE_MAX (1024 * 1024)
#define HOURS_TYPES_MAX 256 /* a transition names its type in one byte */
#define HOURS_COUNT_MAX (1u << 20)
#define HOURS_FOOTER_MAX 256
/* RFC 8536: utoff should lie in -24:59:59..+25:59:59; anything else is corruption. */
#define HOURS_UTOFF_MIN (-89999)
#define HOURS_UTOFF_MAX 93599

typedef struct {
    int16_t start, end;
} hours_span_t;

typedef struct {
    char kind;    /* 'J': Jn (Feb 29 never counted), 'D': n (zero-based, counts Feb 29), 'M': Mm.w.d */
    int16_t n, m, w, d;
    int32_t secs; /* local time of the change; RFC 8536 lets it be negative or beyond 24h */
} hours_rdate_t;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC, unlike POSIX's west-positive text */
    int has_dst;
    hours_rdate_t start, end;
} hours_rule_t;

typedef struct {
    int64_t at, year;
    int end;
} hours_ev_t;

typedef struct {
    const uint8_t *p;
    size_t len, off;
} hours_cur_t;

typedef struct {
    char version;
    uint32_t isut, isstd, leap, time, type, chars;
} hours_hdr_t;

struct hours {
    char tz[HOURS_TZ_MAX];
    size_t nspan[7];
    hours_span_t span[7][HOURS_MAX_SPANS];
    size_t nhol;
    int64_t hol[HOURS_MAX_HOLIDAYS]; /* local dates as days since 1970-01-01: sorted, unique */
    size_t ntrans;
    int64_t *trans;                  /* strictly ascending UTC seconds; one block with tidx */
    uint8_t *tidx;
    int32_t utoff[HOURS_TYPES_MAX];
    int has_rule;                    /* the footer governs everything after the last transition */
    hours_rule_t rule;
};

/* ---- calendar arithmetic (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t hours_fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - ((a % b) < 0);
}

static int hours_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int hours_mdays(int64_t y, int m)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return md[m - 1] + (m == 2 && hours_leap(y));
}

static int64_t hours_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t hours_year_of_day(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10); /* March-based year: Jan and Feb belong to the next */
}

static int hours_wday(int64_t day)
{
    return (int)(day - hours_fdiv(day + 4, 7) * 7 + 4); /* 1970-01-01 was a Thursday */
}

static int hours_date_ok(int y, int m, int d)
{
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= hours_mdays(y, m);
}

/* ---- POSIX TZ footer ("EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30", "JST-9") ---- */

static int hours_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hours_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* 1..maxd digits, value <= max. */
static int hours_num(const char **pp, int maxd, int max, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;

    while (n < maxd && hours_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || v > max) return -1;
    *pp = p;
    *out = v;
    return 0;
}

static int hours_tz_name(const char **pp)
{
    const char *p = *pp;
    int n = 0;

    if (*p == '<') {
        for (p++; *p && *p != '>'; p++, n++)
            if (!hours_alpha(*p) && !hours_digit(*p) && *p != '+' && *p != '-') return -1;
        if (*p++ != '>') return -1;
    } else {
        for (; hours_alpha(*p); p++) n++;
    }
    if (n < 3) return -1;
    *pp = p;
    return 0;
}

/* [+-]h[:mm[:ss]] with h <= maxh: 24 for offsets, 167 for rule times (RFC 8536 v3). */
static int hours_tz_hms(const char **pp, int maxh, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, hh, mm = 0, ss = 0;

    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (hours_num(&p, 3, maxh, &hh) != 0) return -1;
    if (*p == ':') {
        p++;
        if (hours_num(&p, 2, 59, &mm) != 0) return -1;
        if (*p == ':') {
            p++;
            if (hours_num(&p, 2, 59, &ss) != 0) return -1;
        }
    }
    *pp = p;
    *out = sign * (hh * 3600 + mm * 60 + ss);
    return 0;
}

static int hours_tz_date(const char **pp, hours_rdate_t *d)
{
    const char *p = *pp;
    int a, b, c;

    memset(d, 0, sizeof(*d));
    if (*p == 'J') {
        p++;
        if (hours_num(&p, 3, 365, &a) != 0 || a < 1) return -1;
        d->kind = 'J';
        d->n = (int16_t)a;
    } else if (*p == 'M') {
        p++;
        if (hours_num(&p, 2, 12, &a) != 0 || a < 1 || *p++ != '.' || hours_num(&p, 1, 5, &b) != 0 ||
            b < 1 || *p++ != '.' || hours_num(&p, 1, 6, &c) != 0)
            return -1;
        d->kind = 'M';
        d->m = (int16_t)a;
        d->w = (int16_t)b;
        d->d = (int16_t)c;
    } else {
        if (hours_num(&p, 3, 365, &a) != 0) return -1;
        d->kind = 'D';
        d->n = (int16_t)a;
    }
    d->secs = 7200; /* POSIX default: 02:00:00 */
    if (*p == '/') {
        p++;
        if (hours_tz_hms(&p, 167, &d->secs) != 0) return -1;
    }
    *pp = p;
    return 0;
}

static int hours_tz_rule(const char *s, hours_rule_t *r)
{
    const char *p = s;
    int32_t o;

    memset(r, 0, sizeof(*r));
    if (hours_tz_name(&p) != 0 || hours_tz_hms(&p, 24, &o) != 0) return OMNI_ECONFIG;
    r->std_off = r->dst_off = -o;
    if (!*p) return 0;
    if (hours_tz_name(&p) != 0) return OMNI_ECONFIG;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (hours_tz_hms(&p, 24, &o) != 0) return OMNI_ECONFIG;
        r->dst_off = -o;
    }
    if (!*p) {
        /* POSIX leaves a missing rule to the implementation; glibc falls back to the US one. */
        r->start = (hours_rdate_t){.kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200};
        r->end = (hours_rdate_t){.kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200};
        return 0;
    }
    if (*p++ != ',' || hours_tz_date(&p, &r->start) != 0 || *p++ != ',' ||
        hours_tz_date(&p, &r->end) != 0 || *p)
        return OMNI_ECONFIG;
    return 0;
}

static int64_t hours_rdate_day(const hours_rdate_t *d, int64_t y)
{
    int64_t first;
    int64_t k;

    if (d->kind == 'J') return hours_days_from_civil(y, 1, 1) + d->n - 1 + (hours_leap(y) && d->n >= 60);
    if (d->kind == 'D') return hours_days_from_civil(y, 1, 1) + d->n;
    first = hours_days_from_civil(y, d->m, 1);
    k = (d->d - hours_wday(first) + 7) % 7 + (int64_t)(d->w - 1) * 7;
    if (k >= hours_mdays(y, d->m)) k -= 7; /* w = 5 means the last such weekday */
    return first + k;
}

/* The rule's changes in years y-1..y+1, in time order. Three years bracket any instant of year y
 * even with ±167 h change times, and cover southern (start after end) and all-year DST alike:
 * the state at t is whatever the last change at or before t set. Ties go to the later year so
 * an all-year rule's end at 24:00 Dec 31 is immediately overridden by next year's start. */
static void hours_rule_events(const hours_rule_t *r, int64_t y, hours_ev_t ev[6])
{
    int n = 0;

    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        ev[n++] = (hours_ev_t){hours_rdate_day(&r->start, yy) * HOURS_DAY + r->start.secs - r->std_off, yy, 0};
        ev[n++] = (hours_ev_t){hours_rdate_day(&r->end, yy) * HOURS_DAY + r->end.secs - r->dst_off, yy, 1};
    }
    for (int i = 1; i < 6; i++) {
        hours_ev_t x = ev[i];
        int j = i;
        while (j > 0 && (ev[j - 1].at > x.at || (ev[j - 1].at == x.at && ev[j - 1].year > x.year))) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = x;
    }
}

static int64_t hours_rule_year(const hours_rule_t *r, int64_t t)
{
    return hours_year_of_day(hours_fdiv(t + r->std_off, HOURS_DAY));
}

static int32_t hours_rule_off(const hours_rule_t *r, int64_t t)
{
    hours_ev_t ev[6];
    int dst;

    if (!r->has_dst) return r->std_off;
    hours_rule_events(r, hours_rule_year(r, t), ev);
    dst = ev[0].end;
    for (int i = 0; i < 6 && ev[i].at <= t; i++) dst = !ev[i].end;
    return dst ? r->dst_off : r->std_off;
}

static int64_t hours_rule_next(const hours_rule_t *r, int64_t t)
{
    hours_ev_t ev[6];

    if (!r->has_dst) return INT64_MAX;
    hours_rule_events(r, hours_rule_year(r, t), ev);
    for (int i = 0; i < 6; i++)
        if (ev[i].at > t) return ev[i].at;
    return INT64_MAX;
}

/* ---- TZif ---- */

static int hours_take(hours_cur_t *c, uint64_t n, const uint8_t **out)
{
    if (c->len - c->off < n) return OMNI_ECONFIG;
    *out = c->p + c->off;
    c->off += (size_t)n;
    return 0;
}

static uint32_t hours_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t hours_s64(uint64_t u)
{
    return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static int32_t hours_s32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

static int hours_header(hours_cur_t *c, hours_hdr_t *hd)
{
    const uint8_t *p;

    if (hours_take(c, 44, &p) != 0 || memcmp(p, "TZif", 4) != 0) return OMNI_ECONFIG;
    hd->version = (char)p[4];
    hd->isut = hours_be32(p + 20);
    hd->isstd = hours_be32(p + 24);
    hd->leap = hours_be32(p + 28);
    hd->time = hours_be32(p + 32);
    hd->type = hours_be32(p + 36);
    hd->chars = hours_be32(p + 40);
    if (hd->version != '\0' && (hd->version < '2' || hd->version > '9')) return OMNI_ECONFIG;
    if (hd->type == 0 || hd->type > HOURS_TYPES_MAX || (hd->isut && hd->isut != hd->type) ||
        (hd->isstd && hd->isstd != hd->type) || hd->leap > HOURS_COUNT_MAX ||
        hd->time > HOURS_COUNT_MAX || hd->chars > HOURS_COUNT_MAX)
        return OMNI_ECONFIG;
    return 0;
}

static uint64_t hours_block_size(const hours_hdr_t *hd, unsigned tsize)
{
    return (uint64_t)hd->time * (tsize + 1) + (uint64_t)hd->type * 6 + hd->chars +
           (uint64_t)hd->leap * (tsize + 4) + hd->isstd + hd->isut;
}

/* Leap-second records ("right/" zones) are skipped: they move results by under a minute. */
static int hours_block(hours_t *h, hours_cur_t *c, const hours_hdr_t *hd, unsigned tsize)
{
    const uint8_t *tt, *ti, *ty, *rest;

    if (hours_take(c, (uint64_t)hd->time * tsize, &tt) != 0 || hours_take(c, hd->time, &ti) != 0 ||
        hours_take(c, (uint64_t)hd->type * 6, &ty) != 0 ||
        hours_take(c, hd->chars + (uint64_t)hd->leap * (tsize + 4) + hd->isstd + hd->isut, &rest) != 0)
        return OMNI_ECONFIG;
    if (hd->time > 0) {
        if (!(h->trans = malloc((size_t)hd->time * (sizeof(int64_t) + 1)))) return OMNI_ENOMEM;
        h->tidx = (uint8_t *)(h->trans + hd->time);
    }
    h->ntrans = hd->time;
    for (size_t i = 0; i < h->ntrans; i++) {
        const uint8_t *p = tt + i * tsize;
        int64_t t = tsize == 8 ? hours_s64((uint64_t)hours_be32(p) << 32 | hours_be32(p + 4))
                               : hours_s32(hours_be32(p));
        if ((i > 0 && t <= h->trans[i - 1]) || ti[i] >= hd->type) return OMNI_ECONFIG;
        h->trans[i] = t;
        h->tidx[i] = ti[i];
    }
    for (size_t i = 0; i < hd->type; i++) {
        const uint8_t *p = ty + i * 6;
        int32_t off = hours_s32(hours_be32(p));
        if (off < HOURS_UTOFF_MIN || off > HOURS_UTOFF_MAX || p[4] > 1 || p[5] >= hd->chars)
            return OMNI_ECONFIG;
        h->utoff[i] = off;
    }
    return 0;
}

static int hours_parse_tzif(hours_t *h, const uint8_t *buf, size_t len)
{
    hours_cur_t c = {buf, len, 0};
    hours_hdr_t hd;
    const uint8_t *p, *nl;
    char footer[HOURS_FOOTER_MAX];
    size_t n;
    int rc;

    if ((rc = hours_header(&c, &hd)) != 0) return rc;
    if (hd.version == '\0') return hours_block(h, &c, &hd, 4);
    /* v2+: the 32-bit block only serves old readers; skip it for the 64-bit one and the footer. */
    if ((rc = hours_take(&c, hours_block_size(&hd, 4), &p)) != 0 || (rc = hours_header(&c, &hd)) != 0)
        return rc;
    if (hd.version == '\0') return OMNI_ECONFIG;
    if ((rc = hours_block(h, &c, &hd, 8)) != 0) return rc;
    if (hours_take(&c, 1, &p) != 0 || *p != '\n') return OMNI_ECONFIG;
    n = c.len - c.off;
    if (!(nl = memchr(c.p + c.off, '\n', n < sizeof(footer) ? n : sizeof(footer)))) return OMNI_ECONFIG;
    n = (size_t)(nl - (c.p + c.off));
    memcpy(footer, c.p + c.off, n);
    footer[n] = '\0';
    if (n == 0) return 0; /* no rule: the last transition's type holds forever */
    if (memchr(footer, '\0', n)) return OMNI_ECONFIG;
    if ((rc = hours_tz_rule(footer, &h->rule)) != 0) return rc;
    h->has_rule = 1;
    return 0;
}

/* IANA names only: relative, no empty, "." or ".." component, portable characters. */
static int hours_name_ok(const char *tz)
{
    size_t n = strnlen(tz, HOURS_TZ_MAX), clen = 0;

    if (n == 0 || n >= HOURS_TZ_MAX) return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = tz[i];
        if (ch == '/' || ch == '\0') {
            if (clen == 0 || (clen == 1 && tz[i - 1] == '.') ||
                (clen == 2 && tz[i - 1] == '.' && tz[i - 2] == '.'))
                return 0;
            clen = 0;
            continue;
        }
        if (!hours_alpha(ch) && !hours_digit(ch) && ch != '_' && ch != '-' && ch != '+' && ch != '.') return 0;
        clen++;
    }
    return 1;
}

static int hours_read(const char *path, uint8_t **out, size_t *out_len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0, size;
    int fd, rc = 0;

    /* O_NONBLOCK: a FIFO planted under the zone directory must not hang the broker's start. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return OMNI_ENOTFOUND;
        return errno == ENAMETOOLONG ? OMNI_EINVAL : OMNI_EIO;
    }
    if (fstat(fd, &st) != 0) {
        rc = OMNI_EIO;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) { /* "America" is a directory of zones, not a zone */
        rc = OMNI_ENOTFOUND;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > HOURS_FILE_MAX) {
        rc = OMNI_ECONFIG;
        goto out;
    }
    size = (size_t)st.st_size;
    if (!(buf = malloc(size ? size : 1))) {
        rc = OMNI_ENOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = OMNI_EIO;
            goto out;
        }
        if (r == 0) break; /* shrank under us: the parser sees a truncated file */
        got += (size_t)r;
    }
    *out = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int hours_new(const char *tz, const char *zoneinfo_dir, hours_t **out)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    hours_t *h = NULL;
    int rc, n;

    if (!out) return OMNI_EINVAL;
    *out = NULL;
    if (!tz || !*tz) tz = HOURS_DEFAULT_TZ;
    if (!zoneinfo_dir) zoneinfo_dir = HOURS_ZONEINFO;
    if (!*zoneinfo_dir || !hours_name_ok(tz)) return OMNI_EINVAL;
    n = snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir, tz);
    if (n < 0 || (size_t)n >= sizeof(path)) return OMNI_EINVAL;
    if (!(h = calloc(1, sizeof(*h)))) return OMNI_ENOMEM;
    strcpy(h->tz, tz);
    if ((rc = hours_read(path, &buf, &len)) != 0 || (rc = hours_parse_tzif(h, buf, len)) != 0) goto out;
    *out = h;
    h = NULL;
out:
    free(buf);
    hours_destroy(&h);
    return rc;
}

void hours_destroy(hours_t **h)
{
    if (!h || !*h) return;
    free((*h)->trans);
    free(*h);
    *h = NULL;
}

/* ---- calendar ---- */

int hours_add_span(hours_t *h, int wday, int start_min, int end_min)
{
    if (!h || wday < 0 || wday > 6 || start_min < 0 || start_min >= end_min || end_min > 1440)
        return OMNI_EINVAL;
    if (h->nspan[wday] >= HOURS_MAX_SPANS) return OMNI_ETOOBIG;
    h->span[wday][h->nspan[wday]++] = (hours_span_t){(int16_t)start_min, (int16_t)end_min};
    return 0;
}

/* Index of the first holiday >= day. */
static size_t hours_hol_lower(const hours_t *h, int64_t day)
{
    size_t lo = 0, hi = h->nhol;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->hol[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int hours_is_holiday(const hours_t *h, int64_t day)
{
    size_t i = hours_hol_lower(h, day);
    return i < h->nhol && h->hol[i] == day;
}

int hours_add_holiday(hours_t *h, int year, int month, int day)
{
    int64_t d;
    size_t i;

    if (!h || !hours_date_ok(year, month, day)) return OMNI_EINVAL;
    d = hours_days_from_civil(year, month, day);
    i = hours_hol_lower(h, d);
    if (i < h->nhol && h->hol[i] == d) return 0; /* configs repeat dates; harmless */
    if (h->nhol >= HOURS_MAX_HOLIDAYS) return OMNI_ETOOBIG;
    memmove(&h->hol[i + 1], &h->hol[i], (h->nhol - i) * sizeof(h->hol[0]));
    h->hol[i] = d;
    h->nhol++;
    return 0;
}

/* 24/7 is one full span per weekday, so holidays still close their days like everywhere else. */
void hours_set_always_open(hours_t *h)
{
    if (!h) return;
    for (int w = 0; w < 7; w++) {
        h->nspan[w] = 1;
        h->span[w][0] = (hours_span_t){0, 1440};
    }
}

/* ---- parsers ---- */

/* "H:MM" or "HH:MM", up to 24:00. */
static int hours_hhmm(const char **pp, int *out)
{
    const char *p = *pp;
    int hh, mm;

    if (hours_num(&p, 2, 24, &hh) != 0 || *p++ != ':' || !hours_digit(p[0]) || !hours_digit(p[1]))
        return OMNI_EINVAL;
    mm = (p[0] - '0') * 10 + (p[1] - '0');
    if (mm > 59 || (hh == 24 && mm != 0)) return OMNI_EINVAL;
    *pp = p + 2;
    *out = hh * 60 + mm;
    return 0;
}

int hours_parse_range(const char *s, int *start_min, int *end_min)
{
    int a, b;

    if (!s || !start_min || !end_min || hours_hhmm(&s, &a) != 0 || *s++ != '-' || hours_hhmm(&s, &b) != 0 ||
        *s || a >= b)
        return OMNI_EINVAL;
    *start_min = a;
    *end_min = b;
    return 0;
}

int hours_parse_date(const char *s, int *year, int *month, int *day)
{
    int v[8], k = 0;

    if (!s || !year || !month || !day || strnlen(s, 11) != 10 || s[4] != '-' || s[7] != '-') return OMNI_EINVAL;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) continue;
        if (!hours_digit(s[i])) return OMNI_EINVAL;
        v[k++] = s[i] - '0';
    }
    int y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], m = v[4] * 10 + v[5], d = v[6] * 10 + v[7];
    if (!hours_date_ok(y, m, d)) return OMNI_EINVAL;
    *year = y;
    *month = m;
    *day = d;
    return 0;
}

static int hours_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        if (x != *b) return 0;
    }
    return *a == *b;
}

int hours_parse_wday(const char *s)
{
    static const char *const names[7] = {"sunday", "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};
    char abbr[4];

    if (!s) return OMNI_EINVAL;
    for (int w = 0; w < 7; w++) {
        memcpy(abbr, names[w], 3);
        abbr[3] = '\0';
        if (hours_ieq(s, abbr) || hours_ieq(s, names[w])) return w;
    }
    return OMNI_EINVAL;
}

/* ---- queries ---- */

/* Number of transitions at or before t. */
static size_t hours_upper(const hours_t *h, int64_t t)
{
    size_t lo = 0, hi = h->ntrans;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* RFC 8536: type 0 before the first transition, the footer (if any) after the last. */
static int32_t hours_off(const hours_t *h, int64_t t)
{
    size_t i = hours_upper(h, t);

    if (i == h->ntrans && h->has_rule) return hours_rule_off(&h->rule, t);
    return i == 0 ? h->utoff[0] : h->utoff[h->tidx[i - 1]];
}

/* First instant > t at which the offset may change; INT64_MAX if none. */
static int64_t hours_next_trans(const hours_t *h, int64_t t)
{
    size_t i = hours_upper(h, t);

    if (i < h->ntrans) return h->trans[i];
    return h->has_rule ? hours_rule_next(&h->rule, t) : INT64_MAX;
}

static int hours_open_local(const hours_t *h, int64_t local)
{
    int64_t day = hours_fdiv(local, HOURS_DAY);
    int min = (int)((local - day * HOURS_DAY) / 60), w = hours_wday(day);

    if (hours_is_holiday(h, day)) return 0;
    for (size_t i = 0; i < h->nspan[w]; i++)
        if (h->span[w][i].start <= min && min < h->span[w][i].end) return 1;
    return 0;
}

int hours_is_open(const hours_t *h, int64_t now_ms)
{
    int64_t t;

    if (!h) return 0;
    t = hours_fdiv(now_ms, 1000);
    return hours_open_local(h, t + hours_off(h, t));
}

int32_t hours_utc_offset(const hours_t *h, int64_t now_ms)
{
    return h ? hours_off(h, hours_fdiv(now_ms, 1000)) : 0;
}

const char *hours_tz(const hours_t *h)
{
    return h ? h->tz : "";
}

static int hours_span_cmp(const void *a, const void *b)
{
    const hours_span_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* A weekday's spans merged where they overlap or touch: out[] is sorted and disjoint, so each
 * start and end (except 0 and 1440) is a real flip and not just a seam between two spans. */
static size_t hours_merged(const hours_t *h, int w, hours_span_t out[HOURS_MAX_SPANS])
{
    hours_span_t s[HOURS_MAX_SPANS];
    size_t n = 0;

    memcpy(s, h->span[w], h->nspan[w] * sizeof(s[0]));
    qsort(s, h->nspan[w], sizeof(s[0]), hours_span_cmp);
    for (size_t i = 0; i < h->nspan[w]; i++) {
        if (n > 0 && s[i].start <= out[n - 1].end) {
            if (s[i].end > out[n - 1].end) out[n - 1].end = s[i].end;
        } else {
            out[n++] = s[i];
        }
    }
    return n;
}

/* Walks candidate instants only: the state can change only where local time crosses a merged
 * span edge or midnight, or where the offset changes; between two candidates it is constant.
 * So the walk costs one step per flip, per day and per transition: about 400 steps at most. */
int64_t hours_next_change(const hours_t *h, int64_t now_ms)
{
    int16_t bnd[7][2 * HOURS_MAX_SPANS + 1]; /* per weekday: ascending edges in (0, 1440], 1440 last */
    size_t nb[7], nempty = 0, nfull = 0;
    int64_t limit, t;
    int32_t off;
    int was;

    if (!h) return INT64_MAX;
    for (int w = 0; w < 7; w++) {
        hours_span_t m[HOURS_MAX_SPANS];
        size_t n = hours_merged(h, w, m);

        nempty += n == 0;
        nfull += n == 1 && m[0].start == 0 && m[0].end == 1440;
        nb[w] = 0;
        for (size_t i = 0; i < n; i++) {
            if (m[i].start > 0) bnd[w][nb[w]++] = m[i].start;
            if (m[i].end < 1440) bnd[w][nb[w]++] = m[i].end;
        }
        bnd[w][nb[w]++] = 1440;
    }
    if (nempty == 7 || (nfull == 7 && h->nhol == 0)) return INT64_MAX;
    limit = now_ms > INT64_MAX - HOURS_HORIZON_MS ? INT64_MAX : now_ms + HOURS_HORIZON_MS;
    t = hours_fdiv(now_ms, 1000);
    off = hours_off(h, t);
    was = hours_open_local(h, t + off);
    for (;;) {
        int64_t local = t + off, day = hours_fdiv(local, HOURS_DAY), r = local - day * HOURS_DAY;
        int64_t next = day * HOURS_DAY + HOURS_DAY, c, tr;
        int w = hours_wday(day);

        if (!hours_is_holiday(h, day)) /* a holiday is closed until its midnight */
            for (size_t k = 0; k < nb[w]; k++)
                if (bnd[w][k] * 60 > r) {
                    next = day * HOURS_DAY + bnd[w][k] * 60;
                    break;
                }
        c = next - off;
        if ((tr = hours_next_trans(h, t)) < c) c = tr;
        if (c > INT64_MAX / 1000 || c * 1000 > limit) return INT64_MAX;
        off = hours_off(h, c);
        if (hours_open_local(h, c + off) != was) return c * 1000;
        t = c;
    }
}
