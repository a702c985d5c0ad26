/* libFuzzer target for the SMTP server session (adapters/email/smtp.c): arbitrary client bytes in
 * arbitrary chunks, verdicts and shutdowns at arbitrary moments, reply and message invariants.
 *
 * Input: 8 control bytes (limits, mode, RNG seed), then the client byte stream. In differential
 * mode the stream runs twice, whole and in random chunks, with the same verdict per message, and
 * the two transcripts (replies and events) must be identical: framing must not depend on splits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omni/omni.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

typedef struct {
    smtp_session_t *s;
    smtp_limits_t lim;
    uint64_t rng;
    uint64_t hash; /* FNV-1a over replies and events, in order */
    size_t msgs;
    int pending, closed, tls, diff;
} run_t;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_smtp: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static uint64_t rnd(run_t *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static void mix(run_t *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) r->hash = (r->hash ^ b[i]) * 0x100000001b3ull;
}

static const int CODES[] = {250, 451, 550, 554, 0, 999, 354, -1, 252, 421};
static const char *TEXTS[] = {NULL, "", "2.0.0 queued as X", "broker down\r\n250 fake", "5.7.1", "4.3.0 x",
                              "\xe6\x97\xa5", "5.1.2.3 bogus"};

/* The verdict for message k depends on k only, so both differential runs give the same ones. */
static void verdict(run_t *r, size_t k)
{
    uint64_t h = (k + 1) * 0x9e3779b97f4a7c15ull ^ r->lim.max_message;
    r->pending = 0;
    smtp_session_data_result(r->s, CODES[h % 10], TEXTS[(h >> 8) % 8]);
}

static void on_send(void *user, const char *buf, size_t len)
{
    run_t *r = user;
    CHECK(!r->closed);
    CHECK(len >= 5 && buf[len - 2] == '\r' && buf[len - 1] == '\n');
    /* each line: 3 digits, ' ' or '-', text without CR/LF, CRLF */
    size_t i = 0;
    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        CHECK(lf);
        size_t e = (size_t)(lf - buf);
        CHECK(e - i >= 5 && e - i <= 1024);
        CHECK(buf[i] >= '2' && buf[i] <= '5' && buf[i + 1] >= '0' && buf[i + 1] <= '9' && buf[i + 2] >= '0' &&
              buf[i + 2] <= '9');
        CHECK(buf[i + 3] == ' ' || buf[i + 3] == '-');
        CHECK(buf[e - 1] == '\r');
        for (size_t j = i; j < e - 1; j++) CHECK(buf[j] != '\r' && buf[j] != '\0');
        i = e + 1;
    }
    mix(r, buf, len);
}

static void on_message(void *user, const char *from, const char *const *rcpts, size_t n, const char *data, size_t len)
{
    run_t *r = user;
    CHECK(!r->closed && !r->pending);
    CHECK(from && strlen(from) < SMTP_PATH_MAX);
    CHECK(n >= 1 && n <= r->lim.max_recipients);
    for (size_t i = 0; i < n; i++) CHECK(rcpts[i] && rcpts[i][0] && strlen(rcpts[i]) < SMTP_PATH_MAX);
    CHECK(data && len <= r->lim.max_message);
    CHECK(!memchr(data, '\0', len));
    /* every line ends in CRLF */
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n')
            CHECK(i > 0 && data[i - 1] == '\r');
    CHECK(len == 0 || (len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n'));
    mix(r, "M", 1);
    mix(r, from, strlen(from) + 1);
    for (size_t i = 0; i < n; i++) mix(r, rcpts[i], strlen(rcpts[i]) + 1);
    mix(r, data, len);
    size_t k = r->msgs++;
    r->pending = 1;
    uint64_t h = (k + 1) * 0xff51afd7ed558ccdull;
    if ((h >> 20) & 1)
        verdict(r, k); /* answered inside the callback */
}

static int on_rcpt(void *user, const char *addr, char *why, size_t whylen)
{
    (void)user;
    CHECK(whylen >= 256 && strlen(addr) < SMTP_PATH_MAX);
    switch (addr[0]) {
    case 'n': snprintf(why, whylen, "No such user"); return 550;
    case 'b': snprintf(why, whylen, "4.2.1 busy\r\n"); return 450;
    case 'w': return 7;
    default: return 0;
    }
}

static void on_tls(void *user)
{
    run_t *r = user;
    CHECK(!r->tls);
    r->tls = 1;
    mix(r, "T", 1);
}

static void on_close(void *user)
{
    run_t *r = user;
    CHECK(!r->closed);
    r->closed = 1;
    mix(r, "C", 1);
}

static void start(run_t *r, const smtp_limits_t *lim, uint64_t seed, int diff)
{
    memset(r, 0, sizeof(*r));
    r->lim = *lim;
    /* the invariants compare against the effective limits */
    if (!r->lim.max_message)
        r->lim.max_message = SMTP_DEFAULT_MAX_MESSAGE;
    if (!r->lim.max_recipients)
        r->lim.max_recipients = SMTP_DEFAULT_MAX_RECIPIENTS;
    r->rng = seed | 1;
    r->hash = 0xcbf29ce484222325ull;
    r->diff = diff;
    smtp_callbacks_t cb = {.user = r, .send = on_send, .message = on_message, .rcpt_ok = on_rcpt,
                           .starttls = on_tls, .close = on_close};
    CHECK(smtp_session_new(lim, &cb, &r->s) == 0);
}

static void feed(run_t *r, const uint8_t *p, size_t n)
{
    int rc = smtp_session_feed(r->s, (const char *)p, n);
    CHECK(rc == 0 || rc == OMNI_ECLOSED);
    CHECK((rc == OMNI_ECLOSED) == r->closed);
    CHECK(smtp_session_waiting(r->s) == (r->pending && !r->closed));
}

/* Whole stream in one feed, then the verdicts as they come. */
static uint64_t run_whole(const smtp_limits_t *lim, uint64_t seed, const uint8_t *p, size_t n)
{
    run_t r;
    start(&r, lim, seed, 1);
    feed(&r, p, n);
    while (r.pending && !r.closed) verdict(&r, r.msgs - 1);
    smtp_session_destroy(&r.s);
    return r.hash;
}

/* Random chunks; in differential mode every verdict right after the feed that produced it, else
 * verdicts late or never, and shutdowns. */
static uint64_t run_chunked(const smtp_limits_t *lim, uint64_t seed, const uint8_t *p, size_t n, int diff)
{
    run_t r;
    start(&r, lim, seed, diff);
    size_t at = 0;
    while (at < n && !r.tls) {
        uint64_t x = rnd(&r);
        size_t max = (x & 3) == 0 ? 1 : (x & 3) == 1 ? 8 : (x & 3) == 2 ? 100 : 5000;
        size_t k = 1 + (size_t)((x >> 2) % max);
        if (k > n - at)
            k = n - at;
        feed(&r, p + at, k);
        at += k;
        if (diff) {
            while (r.pending && !r.closed) verdict(&r, r.msgs - 1);
            continue;
        }
        if (r.pending && (x >> 20) % 4 == 0)
            verdict(&r, r.msgs - 1);
        if ((x >> 24) % 128 == 0)
            smtp_session_shutdown(r.s, (x >> 32) & 1 ? NULL : "4.4.2 Error: timeout exceeded");
        if (r.closed)
            break;
    }
    if (diff)
        while (r.pending && !r.closed) verdict(&r, r.msgs - 1);
    else if (r.pending && (rnd(&r) & 1))
        verdict(&r, r.msgs - 1);
    smtp_session_destroy(&r.s); /* possibly with a message pending */
    return r.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t ctl[8] = {0};
    size_t c = len < 8 ? len : 8;
    memcpy(ctl, data, c);
    data += c;
    len -= c;

    static const size_t msg_sizes[] = {64, 1000, 65536, 0};
    static const size_t rcpt_max[] = {1, 3, 100, 0};
    static const size_t line_max[] = {64, 100, 512, 1000};
    smtp_limits_t lim = {0};
    lim.hostname = "fuzz.example";
    int diff = ctl[0] & 1;
    lim.max_message = msg_sizes[(ctl[0] >> 1) & 3];
    lim.max_recipients = rcpt_max[(ctl[0] >> 3) & 3];
    lim.starttls_available = (ctl[0] >> 5) & 1;
    lim.max_line = line_max[(ctl[0] >> 6) & 3];
    lim.max_errors = ctl[1] & 31; /* 0: default */
    /* the differential runs must never overflow the hold (the whole run holds more at once) */
    lim.max_pending = diff ? (size_t)1 << 20 : (size_t)64 << (ctl[1] >> 5);
    uint64_t seed = 0;
    for (int i = 2; i < 8; i++) seed = seed << 8 | ctl[i];

    if (diff) {
        uint64_t a = run_whole(&lim, seed, data, len);
        uint64_t b = run_chunked(&lim, seed, data, len, 1);
        CHECK(a == b);
    } else {
        run_chunked(&lim, seed, data, len, 0);
    }
    return 0;
}
