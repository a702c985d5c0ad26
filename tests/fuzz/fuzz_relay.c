/* libFuzzer target for the SMTP relay client (adapters/email/relay.c): arbitrary server bytes in
 * arbitrary chunks, with submits, quits and a lost connection at arbitrary moments.
 *
 * Input: 4 control bytes (RNG seed), then the server byte stream. Invariants: done exactly once per
 * accepted submit (counting the final relay_session_lost), done's text printable ASCII, every write
 * whole CRLF lines, nothing sent after close, close at most once, feed's result matching close.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omni/omni.h>

#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

typedef struct {
    relay_session_t *s;
    uint64_t rng;
    size_t submitted, done;
    int closed, lost;
} run_t;

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_relay: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static uint64_t rnd(run_t *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static void on_send(void *user, const char *buf, size_t len)
{
    run_t *r = user;
    CHECK(!r->closed && !r->lost);
    CHECK(len >= 3 && buf[len - 2] == '\r' && buf[len - 1] == '\n');
}

static void submit(run_t *r);

static void on_done(void *user, int code, const char *text)
{
    run_t *r = user;
    CHECK(r->done < r->submitted);
    r->done++;
    CHECK(code >= 200 && code <= 599);
    size_t n = strlen(text);
    CHECK(n <= RELAY_TEXT_MAX);
    for (size_t i = 0; i < n; i++) CHECK(text[i] >= 0x20 && text[i] < 0x7f);
    if (!r->lost && (rnd(r) & 3) == 0)
        submit(r); /* the next message from inside done, as a program would */
}

static void on_close(void *user)
{
    run_t *r = user;
    CHECK(!r->closed);
    r->closed = 1;
}

static const char *const RCPTS[] = {"a@example.com", "b@example.net", "\"q x\"@example.org"};
static const char *const MSGS[] = {"Subject: x\r\n\r\nhi\r\n", ".\r\n..\r\n.x", "caf\xc3\xa9\r\n", "", "a\nb\r"};

static void submit(run_t *r)
{
    uint64_t x = rnd(r);
    const char *m = MSGS[x % 5];
    /* counted first: done may run inside submit (local 552/554 refusals) */
    r->submitted++;
    int rc = relay_session_submit(r->s, (x >> 8) & 1 ? "" : "agent@example.com", RCPTS, 1 + (size_t)((x >> 9) % 3), m,
                                  strlen(m));
    CHECK(rc == 0 || rc == OMNI_ESTATE || rc == OMNI_ECLOSED);
    if (rc != 0)
        r->submitted--;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    run_t r = {0};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 4 && i < len; i++) seed = seed << 8 | data[i];
    size_t c = len < 4 ? len : 4;
    data += c;
    len -= c;
    r.rng = seed | 1;
    relay_callbacks_t cb = {.user = &r, .send = on_send, .done = on_done, .close = on_close};
    CHECK(relay_session_new("fuzz.example", &cb, &r.s) == 0);
    submit(&r);
    size_t at = 0;
    while (at < len) {
        uint64_t x = rnd(&r);
        size_t max = (x & 3) == 0 ? 1 : (x & 3) == 1 ? 8 : (x & 3) == 2 ? 100 : 5000;
        size_t k = 1 + (size_t)((x >> 2) % max);
        if (k > len - at)
            k = len - at;
        int rc = relay_session_feed(r.s, (const char *)data + at, k);
        CHECK(rc == 0 || rc == OMNI_ECLOSED);
        CHECK((rc == OMNI_ECLOSED) == r.closed);
        at += k;
        if ((x >> 20) % 8 == 0)
            submit(&r);
        if ((x >> 24) % 64 == 0)
            relay_session_quit(r.s);
        if ((x >> 32) % 256 == 0)
            break;
    }
    r.lost = 1;
    relay_session_lost(r.s);
    CHECK(r.done == r.submitted);
    relay_session_destroy(&r.s);
    return 0;
}
