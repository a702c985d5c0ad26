/* libFuzzer target for the agents endpoint and the routing state it drives: the input is cut
 * into frames, each either an agent request from one of four connections or a stream event. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "routecfg.h"
#include "routing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static config_t cfg;
static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }
static void *zctx, *sock;
static char yaml[64];

/* Small limits, so each input builds (and frees) a whole routing state cheaply. */
static void init(void)
{
    static const char text[] =
        "routing:\n"
        "  agents: {max_agents: 8, max_conversations: 32, max_missed_offers: 2}\n"
        "  queues:\n"
        "    - {name: default, offer_timeout_ms: 1}\n"
        "    - {name: account, skills: \"account>=2\", steps: [{after_ms: 1, min_level: 1}], wrap_up_ms: 1}\n"
        "  rules:\n"
        "    - {name: a, queue: account, keywords: [\"a\"]}\n";
    snprintf(yaml, sizeof(yaml), "/tmp/omni-fuzz-agents-%d.yaml", (int)getpid());
    FILE *f = fopen(yaml, "w");
    if (!f || fwrite(text, 1, sizeof(text) - 1, f) != sizeof(text) - 1 || fclose(f) != 0)
        abort();
    if (config_defaults(&cfg) != 0)
        abort();
    zctx = zmq_ctx_new();
    sock = zmq_socket(zctx, ZMQ_ROUTER); /* replies to unknown peers are dropped: fine */
    if (!sock || zmq_bind(sock, "inproc://fuzz-agents") != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int ready;
    char err[256];
    routecfg_t *rc = NULL;
    routing_t *rt = NULL;
    if (!ready) {
        init();
        ready = 1;
    }
    if (routecfg_load(yaml, &rc, err, sizeof(err)) != 0 ||
        routing_new(&cfg, rc, NULL, sock, NULL, 1, &rt, err, sizeof(err)) != 0)
        abort();
    fake_now = 1795000000000LL;
    routing_set_clock(rt, fake_clock);
    /* Frames: [selector][len][bytes]. selector & 0x80: a stream event for routing_on_event
     * (kind from the low bits); otherwise an agent frame from connection selector & 3. */
    static const char *const kinds[] = {"queued", "message", "customer_merged", "conversation_opened"};
    size_t off = 0;
    while (off + 2 <= len) {
        uint8_t sel = data[off], n = data[off + 1];
        off += 2;
        if (n > len - off)
            n = (uint8_t)(len - off);
        if (sel & 0x80) {
            routing_on_event(rt, kinds[sel & 3], (sel & 4) ? "cnv_1" : NULL, data + off, n);
        } else if (sel & 0x40) {
            fake_now += (sel & 0x3f) * 100; /* time passes: offers, steps, wrap-up, sessions expire */
            routing_tick(rt, fake_now);
        } else {
            reply_to_t to = {.sock = sock, .rid_len = 1, .rid = {(uint8_t)('A' + (sel & 3))}};
            routing_agent_frame(rt, &to, data + off, n);
        }
        off += n;
    }
    routing_destroy(&rt); /* also frees the unflushed routing writes: leaks show here */
    return 0;
}
