/* Business hours: a weekly calendar in one IANA time zone, plus holidays, asked "open at t?".
 * Pure: no clock (callers pass now_ms), reads the zone's TZif file once at hours_new, never TZ/env.
 *
 * Local time comes from the zone's own transition table (TZif v2+, 64-bit section, and its
 * POSIX footer rule for times after the last transition), so DST zones are right without
 * touching the process-wide TZ. Spans are [start, end) minutes of local wall-clock time; a span
 * may end at 24:00 (1440). A holiday closes its whole local day. Asia/Tokyo is the default zone.
 */
#ifndef OMNI_HOURS_H
#define OMNI_HOURS_H

#include <stdint.h>

#include <omni/omni.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOURS_MAX_SPANS 32       /* per weekday */
#define HOURS_MAX_HOLIDAYS 512
#define HOURS_TZ_MAX 64          /* zone name bytes incl. NUL */

typedef struct hours hours_t;

/* tz: IANA name ("Asia/Tokyo"); NULL or "" = Asia/Tokyo. zoneinfo_dir: NULL = /usr/share/zoneinfo
 * (tests may point elsewhere). OMNI_EINVAL bad name (absolute, "..", too long), OMNI_ENOTFOUND no
 * such zone file (or a directory), OMNI_EIO unreadable, OMNI_ECONFIG not a TZif file, OMNI_ENOMEM. A new calendar has no spans: always
 * closed until spans are added (use hours_set_always_open for 24/7). */
int hours_new(const char *tz, const char *zoneinfo_dir, hours_t **out);
void hours_destroy(hours_t **h);

/* wday 0 = Sunday .. 6 = Saturday; 0 <= start_min < end_min <= 1440. Spans may overlap.
 * OMNI_EINVAL bad values, OMNI_ETOOBIG more than HOURS_MAX_SPANS on that day. */
int hours_add_span(hours_t *h, int wday, int start_min, int end_min);
/* Local calendar date (year 1..9999, 1..12, 1..31), validated; a repeat is ignored.
 * OMNI_EINVAL bad date, OMNI_ETOOBIG more than HOURS_MAX_HOLIDAYS. */
int hours_add_holiday(hours_t *h, int year, int month, int day);
/* One whole-day span on every weekday: holidays still close their day. */
void hours_set_always_open(hours_t *h);

/* "09:00-18:00" (also "9:00-18:00", "00:00-24:00") -> minutes; OMNI_EINVAL otherwise. */
int hours_parse_range(const char *s, int *start_min, int *end_min);
/* "2026-01-01" -> y, m, d (validated, incl. leap years); OMNI_EINVAL otherwise. */
int hours_parse_date(const char *s, int *year, int *month, int *day);
/* "mon".."sun" or "monday".."sunday" (ASCII case-insensitive) -> 0..6 (Sunday 0); OMNI_EINVAL. */
int hours_parse_wday(const char *s);

/* 1 open, 0 closed. */
int hours_is_open(const hours_t *h, int64_t now_ms);
/* The next instant > now_ms at which is_open flips, searched up to 400 days ahead; INT64_MAX if
 * it never flips (always open, or no spans). Minute resolution. */
int64_t hours_next_change(const hours_t *h, int64_t now_ms);
/* UTC offset in seconds at now_ms (for messages and tests). */
int32_t hours_utc_offset(const hours_t *h, int64_t now_ms);
const char *hours_tz(const hours_t *h);

#ifdef __cplusplus
}
#endif
#endif
