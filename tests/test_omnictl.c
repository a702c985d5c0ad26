/* omnictl against a real broker, through the real binary: every command of the contract's
 * omnictl section, checked on the JSON it prints (parsed, not grepped) and on its exit code,
 * and cross-checked with what the broker stored in Redis. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>

#include "harness.h"

static h_env_t H;
static void setup(void) { h_setup(&H); }
static void teardown(void) { h_teardown(&H); }

TestSuite(omnictl, .init = setup, .fini = teardown, .timeout = 60);

#define CH(x) OMNI__V1__CHANNEL__CHANNEL_##x
/* Run omnictl ARGS... with --control set; stdout into out (an array). Returns the exit code. */
#define CTL(out, ...) h_omnictl(&H, out, sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

/* ---- a small JSON reader: enough to check omnictl's output strictly ----------------------- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jv {
    jtype_t t;
    char *key;       /* member name inside an object */
    char *s;         /* J_STR: decoded text; J_NUM: the number as written */
    int b;
    struct jv *kid;  /* J_ARR / J_OBJ elements */
    size_t n;
} jv_t;

static const char *jp_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static void jp_utf8(char **o, unsigned c)
{
    char *q = *o;
    if (c < 0x80)
        *q++ = (char)c;
    else if (c < 0x800) {
        *q++ = (char)(0xc0 | c >> 6);
        *q++ = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        *q++ = (char)(0xe0 | c >> 12);
        *q++ = (char)(0x80 | (c >> 6 & 0x3f));
        *q++ = (char)(0x80 | (c & 0x3f));
    } else {
        *q++ = (char)(0xf0 | c >> 18);
        *q++ = (char)(0x80 | (c >> 12 & 0x3f));
        *q++ = (char)(0x80 | (c >> 6 & 0x3f));
        *q++ = (char)(0x80 | (c & 0x3f));
    }
    *o = q;
}

static int jp_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* p at the opening quote; returns the char after the closing one, or NULL. */
static const char *jp_str(const char *p, char **out)
{
    char *buf = malloc(strlen(p) + 1), *o = buf;
    for (p++; *p != '"'; p++) {
        if (!*p || (unsigned char)*p < 0x20)
            goto bad; /* raw control characters are not allowed inside JSON strings */
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned c, lo;
            if (jp_hex4(p + 1, &c))
                goto bad;
            p += 4;
            if (c >= 0xd800 && c < 0xdc00) {
                if (p[1] != '\\' || p[2] != 'u' || jp_hex4(p + 3, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    goto bad;
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (c >= 0xdc00 && c < 0xe000)
                goto bad;
            jp_utf8(&o, c);
            break;
        }
        default:
            goto bad;
        }
    }
    *o = 0;
    *out = buf;
    return p + 1;
bad:
    free(buf);
    return NULL;
}

static void jv_free_kids(jv_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jv_free_kids(&v->kid[i]);
        free(v->kid[i].key);
        free(v->kid[i].s);
    }
    free(v->kid);
}

static const char *jp_val(const char *p, jv_t *v, int depth)
{
    memset(v, 0, sizeof(*v));
    p = jp_ws(p);
    if (depth > 32)
        return NULL;
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        char close = obj ? '}' : ']';
        v->t = obj ? J_OBJ : J_ARR;
        p = jp_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            v->kid = realloc(v->kid, (v->n + 1) * sizeof(*v->kid));
            jv_t *k = &v->kid[v->n];
            char *key = NULL;
            if (obj) {
                if (*p != '"' || !(p = jp_str(p, &key)))
                    return NULL;
                p = jp_ws(p);
                if (*p++ != ':') {
                    free(key);
                    return NULL;
                }
            }
            p = jp_val(p, k, depth + 1);
            k->key = key;
            v->n++;
            if (!p)
                return NULL;
            p = jp_ws(p);
            if (*p == ',') {
                p = jp_ws(p + 1);
                continue;
            }
            if (*p == close)
                return p + 1;
            return NULL;
        }
    }
    if (*p == '"') {
        v->t = J_STR;
        return jp_str(p, &v->s);
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        v->t = J_BOOL;
        v->b = *p == 't';
        return p + (v->b ? 4 : 5);
    }
    if (strncmp(p, "null", 4) == 0) {
        v->t = J_NULL;
        return p + 4;
    }
    const char *q = p;
    if (*q == '-')
        q++;
    if (*q < '0' || *q > '9')
        return NULL;
    while ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')
        q++;
    v->t = J_NUM;
    v->s = strndup(p, (size_t)(q - p));
    return q;
}

/* Parse text that must be exactly one JSON value (surrounding whitespace allowed). */
static jv_t *json_parse(const char *text)
{
    jv_t *v = calloc(1, sizeof(*v));
    const char *end = jp_val(text, v, 0);
    if (!end || *jp_ws(end)) {
        jv_free_kids(v);
        free(v->s);
        free(v);
        return NULL;
    }
    return v;
}

static void json_free_v(jv_t *v)
{
    if (!v)
        return;
    jv_free_kids(v);
    free(v->s);
    free(v);
}

static const jv_t *jget(const jv_t *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->kid[i].key, key) == 0)
            return &o->kid[i];
    return NULL;
}

static const jv_t *jtyped(const jv_t *o, const char *key, jtype_t t)
{
    const jv_t *v = jget(o, key);
    cr_assert_not_null(v, "JSON key \"%s\" missing", key);
    cr_assert_eq(v->t, t, "JSON key \"%s\" has type %d, want %d", key, v->t, t);
    return v;
}

static const char *jstr(const jv_t *o, const char *key) { return jtyped(o, key, J_STR)->s; }
static int jbool(const jv_t *o, const char *key) { return jtyped(o, key, J_BOOL)->b; }

/* A non-negative integer member. */
static unsigned long long ju64(const jv_t *o, const char *key)
{
    const char *s = jtyped(o, key, J_NUM)->s;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    cr_assert(s[0] != '-' && !*end && !errno, "\"%s\": %s is not a non-negative integer", key, s);
    return v;
}

/* Split omnictl output into JSON objects, one per line; every line must parse. */
static size_t json_lines(const char *out, jv_t **objs, size_t max)
{
    size_t n = 0;
    const char *p = out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        cr_assert_not_null(nl, "output does not end with a newline: %s", p);
        char *line = strndup(p, (size_t)(nl - p));
        cr_assert_lt(n, max, "more than %zu lines", max);
        objs[n] = json_parse(line);
        cr_assert_not_null(objs[n], "line %zu is not JSON: %s", n + 1, line);
        cr_assert_eq(objs[n]->t, J_OBJ, "line %zu is not an object: %s", n + 1, line);
        free(line);
        n++;
        p = nl + 1;
    }
    return n;
}

/* Exactly one JSON object on exactly one line. */
static jv_t *json_one(const char *out)
{
    jv_t *objs[2];
    size_t n = json_lines(out, objs, 2);
    cr_assert_eq(n, 1, "want one JSON line, got %zu: %s", n, out);
    return objs[0];
}

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    char customer_id[64], conversation_id[64];
    unsigned long long seq;
    int duplicate;
} sent_t;

/* omnictl send ... --json, expecting acceptance. */
static sent_t ctl_send(const char *const *args)
{
    static char out[8192];
    const char *argv[32] = {"send"};
    int a = 1;
    for (int i = 0; args[i]; i++)
        argv[a++] = args[i];
    argv[a++] = "--json";
    argv[a] = NULL;
    int rc = h_omnictl(&H, out, sizeof(out), argv);
    cr_assert_eq(rc, 0, "omnictl send exited %d: %s", rc, out);
    jv_t *j = json_one(out);
    cr_assert(jbool(j, "accepted"), "not accepted: %s", out);
    sent_t s;
    s.duplicate = jbool(j, "duplicate");
    snprintf(s.customer_id, sizeof(s.customer_id), "%s", jstr(j, "customer_id"));
    snprintf(s.conversation_id, sizeof(s.conversation_id), "%s", jstr(j, "conversation_id"));
    s.seq = ju64(j, "seq");
    cr_assert_str_neq(s.customer_id, "");
    cr_assert_str_neq(s.conversation_id, "");
    cr_assert_gt(s.seq, 0);
    json_free_v(j);
    return s;
}

static const Omni__V1__StreamEvent *event_by_seq(Omni__V1__StreamEvent **ev, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (ev[i]->seq == seq)
            return ev[i];
    return NULL;
}

static const char *kind_name(const Omni__V1__StreamEvent *ev)
{
    switch (ev->kind_case) {
    case OMNI__V1__STREAM_EVENT__KIND_MESSAGE: return "message";
    case OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED: return "customer_merged";
    case OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED: return "conversation_opened";
    case OMNI__V1__STREAM_EVENT__KIND_QUEUED: return "queued";
    case OMNI__V1__STREAM_EVENT__KIND_OFFERED: return "offered";
    case OMNI__V1__STREAM_EVENT__KIND_ASSIGNED: return "assigned";
    case OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE: return "agent_message";
    case OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED: return "transferred";
    case OMNI__V1__STREAM_EVENT__KIND_CLOSED: return "closed";
    case OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED: return "offer_ended";
    default: return "?";
    }
}

static const char *channel_name(Omni__V1__Channel ch)
{
    switch (ch) {
    case CH(CHAT): return "chat";
    case CH(EMAIL): return "email";
    case CH(SNS): return "sns";
    case CH(PHONE): return "phone";
    default: return "";
    }
}

/* One tail line against the stored event of the same seq: the contract's fields, same values. */
static void check_tail_line(const jv_t *j, Omni__V1__StreamEvent **ev, size_t n)
{
    unsigned long long seq = ju64(j, "seq");
    const Omni__V1__StreamEvent *e = event_by_seq(ev, n, seq);
    cr_assert_not_null(e, "tail printed seq %llu, which is not in the stream", seq);
    cr_assert_str_eq(jstr(j, "type"), kind_name(e), "seq %llu", seq);
    cr_assert_str_eq(jstr(j, "channel"), channel_name(e->channel), "seq %llu", seq);
    cr_assert_str_eq(jstr(j, "customer_id"), e->customer_id, "seq %llu", seq);
    cr_assert_str_eq(jstr(j, "conversation_id"), e->conversation_id, "seq %llu", seq);
    if (e->kind_case == OMNI__V1__STREAM_EVENT__KIND_MESSAGE) {
        cr_assert_str_eq(jstr(j, "from"), e->message->inbound->from, "seq %llu", seq);
        cr_assert_str_eq(jstr(j, "text"), e->message->inbound->text, "seq %llu", seq);
        if (*e->message->inbound->subject)
            cr_assert_str_eq(jstr(j, "subject"), e->message->inbound->subject, "seq %llu", seq);
    }
}

/* 15 customers, one chat message each: 15 conversation_opened + 15 queued + 15 message events
 * (no agent is logged in, so nothing else happens). */
static void send_15(void)
{
    omni_adapter_t *ad = h_adapter(&H, "t-tail", CH(CHAT), NULL, NULL);
    for (int i = 0; i < 15; i++) {
        char pmid[32], from[32], text[32];
        snprintf(pmid, sizeof(pmid), "tail-%02d", i);
        snprintf(from, sizeof(from), "chat:visitor-%02d", i);
        snprintf(text, sizeof(text), "メッセージ %d", i);
        Omni__V1__InboundMessage m;
        h_ack_t ack;
        h_msg(&m, CH(CHAT), pmid, from, NULL, text);
        cr_assert_eq(h_send(ad, &m, &ack, 5000), 0, "no ack for %s", pmid);
        cr_assert(ack.accepted, "%s: %s", pmid, ack.detail);
    }
    omni_adapter_destroy(&ad);
}

/* ---- status ------------------------------------------------------------------------------- */

Test(omnictl, status_json_shows_redis_adapters_and_counters)
{
    static char out[65536];
    omni_adapter_t *ad = h_adapter(&H, "t-status-email", CH(EMAIL), NULL, NULL);
    /* The broker answers a hello with a heartbeat, so "connected" means it has seen us. */
    int64_t end = omni_mono_us() + 5000 * 1000;
    while (!omni_adapter_connected(ad) && omni_mono_us() < end)
        omni_adapter_poll(ad, 50);
    cr_assert(omni_adapter_connected(ad), "the SDK adapter never heard from the broker");

    cr_assert_eq(CTL(out, "status", "--json"), 0, "%s", out);
    jv_t *j = json_one(out);
    cr_assert_str_neq(jstr(j, "version"), "");
    cr_assert_lt(ju64(j, "uptime_s"), 60, "the broker was started by this test");
    cr_assert_str_eq(jstr(j, "redis"), "ok");
    const jv_t *ads = jtyped(j, "adapters", J_ARR);
    const jv_t *mine = NULL;
    for (size_t i = 0; i < ads->n; i++) {
        cr_assert_eq(ads->kid[i].t, J_OBJ);
        if (strcmp(jstr(&ads->kid[i], "adapter_id"), "t-status-email") == 0)
            mine = &ads->kid[i];
    }
    cr_assert_not_null(mine, "connected adapter missing from status: %s", out);
    cr_assert_str_eq(jstr(mine, "channel"), "email");
    const jv_t *cs = jtyped(j, "counters", J_OBJ);
    cr_assert_gt(cs->n, 0, "no counters at all");
    for (size_t i = 0; i < cs->n; i++)
        cr_assert_eq(cs->kid[i].t, J_NUM, "counter %s is not a number", cs->kid[i].key);
    json_free_v(j);

    /* The human form works too, and mentions the adapter. */
    cr_assert_eq(CTL(out, "status"), 0);
    cr_assert(strstr(out, "t-status-email"), "%s", out);
    omni_adapter_destroy(&ad);
}

Test(omnictl, status_fails_when_the_broker_is_down)
{
    static char out[8192];
    cr_assert_eq(CTL(out, "status", "--json"), 0);
    h_broker_stop(&H, SIGKILL);
    int rc = CTL(out, "status", "--json");
    cr_assert_neq(rc, 0, "status succeeded without a broker: %s", out);
    cr_assert_neq(rc, 127, "omnictl did not run");
    if (*out) {
        /* Whatever it prints on stdout is still JSON, and says it is an error. */
        jv_t *j = json_one(out);
        cr_assert_str_neq(jstr(j, "error"), "");
        json_free_v(j);
    }
}

/* ---- send ----------------------------------------------------------------------------------- */

Test(omnictl, send_then_duplicate_external_id)
{
    const char *args[] = {"--channel", "chat", "--from", "chat:visitor-42", "--text", "こんにちは\n二行目",
                          "--external-id", "ext-0001", NULL};
    sent_t a = ctl_send(args);
    cr_assert_not(a.duplicate);

    Omni__V1__StreamEvent **ev;
    size_t n1 = h_events(&H, &ev);
    const Omni__V1__StreamEvent *e = event_by_seq(ev, n1, a.seq);
    cr_assert_not_null(e, "the acked seq %llu is not in the stream", a.seq);
    cr_assert_eq(e->kind_case, OMNI__V1__STREAM_EVENT__KIND_MESSAGE);
    cr_assert_str_eq(e->customer_id, a.customer_id);
    cr_assert_str_eq(e->conversation_id, a.conversation_id);
    cr_assert_eq(e->channel, CH(CHAT));
    cr_assert_str_eq(e->message->inbound->from, "chat:visitor-42");
    cr_assert_str_eq(e->message->inbound->text, "こんにちは\n二行目");
    cr_assert_str_eq(e->message->inbound->provider_message_id, "ext-0001");
    h_events_free(ev, n1);

    sent_t b = ctl_send(args);
    cr_assert(b.duplicate, "same (channel, external-id) again must be a duplicate");
    cr_assert_str_eq(b.customer_id, a.customer_id);
    cr_assert_str_eq(b.conversation_id, a.conversation_id);
    cr_assert_eq(b.seq, a.seq);
    size_t n2 = h_events(&H, &ev);
    h_events_free(ev, n2);
    cr_assert_eq(n2, n1, "a duplicate added %zu stream event(s)", n2 - n1);

    /* The key is (channel, external-id): the same id on another channel is a new message. */
    const char *other[] = {"--channel", "email", "--from", "email:someone@example.jp", "--text", "x",
                           "--external-id", "ext-0001", NULL};
    sent_t c = ctl_send(other);
    cr_assert_not(c.duplicate);
    cr_assert_gt(c.seq, a.seq);
    /* Without --external-id every send is new. */
    const char *gen[] = {"--channel", "chat", "--from", "chat:visitor-42", "--text", "again", NULL};
    sent_t d1 = ctl_send(gen), d2 = ctl_send(gen);
    cr_assert_not(d1.duplicate);
    cr_assert_not(d2.duplicate);
    cr_assert_gt(d2.seq, d1.seq);
    cr_assert_str_eq(d1.conversation_id, a.conversation_id, "same customer, same channel: same conversation");
}

Test(omnictl, send_with_a_bad_identity_is_rejected)
{
    static char out[8192];
    int rc = CTL(out, "send", "--channel", "chat", "--from", "fax:0312345678", "--text", "hi", "--json");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    jv_t *j = json_one(out);
    cr_assert_not(jbool(j, "accepted"));
    cr_assert_str_eq(jstr(j, "reason"), "bad_identity");
    cr_assert_null(jget(j, "customer_id"), "a rejected message has no customer");
    json_free_v(j);
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    h_events_free(ev, n);
    cr_assert_eq(n, 0, "a rejected message reached the stream");
}

/* ---- customer ------------------------------------------------------------------------------- */

static int strv_has(const jv_t *arr, const char *s)
{
    for (size_t i = 0; i < arr->n; i++)
        if (arr->kid[i].t == J_STR && strcmp(arr->kid[i].s, s) == 0)
            return 1;
    return 0;
}

Test(omnictl, customer_found_by_any_normalized_identity)
{
    static char out[65536];
    const char *args[] = {"--channel", "email", "--from", "email:Taro@Example.JP", "--also", "phone:090-1111-2222",
                          "--subject", "請求について", "--text", "先月の請求を確認してください", NULL};
    sent_t s = ctl_send(args);

    const char *lookups[] = {"phone:+819011112222", "email:taro@example.jp", "email: TARO@example.jp ",
                             "phone:090-1111-2222"};
    for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
        int rc = CTL(out, "customer", lookups[i], "--json");
        cr_assert_eq(rc, 0, "customer %s: exit %d: %s", lookups[i], rc, out);
        jv_t *j = json_one(out);
        cr_assert_str_eq(jstr(j, "customer_id"), s.customer_id, "lookup %s", lookups[i]);
        const jv_t *ids = jtyped(j, "identities", J_ARR);
        cr_assert(strv_has(ids, "email:taro@example.jp"), "identities are stored normalized: %s", out);
        cr_assert(strv_has(ids, "phone:+819011112222"), "phone in E.164: %s", out);
        cr_assert_eq(ids->n, 2, "%s", out);
        const jv_t *cvs = jtyped(j, "conversations", J_ARR);
        cr_assert_eq(cvs->n, 1, "%s", out);
        cr_assert_str_eq(jstr(&cvs->kid[0], "conversation_id"), s.conversation_id);
        cr_assert_str_eq(jstr(&cvs->kid[0], "channel"), "email");
        cr_assert_str_neq(jstr(&cvs->kid[0], "state"), "");
        json_free_v(j);
    }
}

Test(omnictl, customer_unknown_is_not_found)
{
    static char out[8192];
    const char *args[] = {"--channel", "chat", "--from", "chat:someone-else", NULL};
    ctl_send(args); /* the store is not empty: not_found is about this identity */
    int rc = CTL(out, "customer", "email:nobody@example.jp", "--json");
    cr_assert_eq(rc, 1, "exit %d", rc);
    cr_assert_str_eq(out, "{\"error\":\"not_found\"}\n");
}

/* ---- tail ----------------------------------------------------------------------------------- */

Test(omnictl, tail_default_is_the_last_10_events)
{
    static char out[262144];
    jv_t *lines[64];
    cr_assert_eq(CTL(out, "tail", "--json"), 0, "tail of an empty stream");
    cr_assert_str_eq(out, "", "an empty stream prints nothing");

    send_15();
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    cr_assert_eq(n, 45, "15 conversation_opened + 15 queued + 15 message, got %zu", n);

    cr_assert_eq(CTL(out, "tail", "--json"), 0, "%s", out);
    size_t k = json_lines(out, lines, 64);
    cr_assert_eq(k, 10, "want the last 10 events, got %zu", k);
    for (size_t i = 0; i < k; i++) {
        check_tail_line(lines[i], ev, n);
        cr_assert_eq(ju64(lines[i], "seq"), ev[n - 10 + i]->seq, "line %zu", i);
        if (i)
            cr_assert_gt(ju64(lines[i], "seq"), ju64(lines[i - 1], "seq"), "seqs strictly increase");
    }
    for (size_t i = 0; i < k; i++)
        json_free_v(lines[i]);
    h_events_free(ev, n);
}

Test(omnictl, tail_from_seq_prints_everything_after_it)
{
    static char out[262144];
    jv_t *lines[64];
    send_15();
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    cr_assert_eq(n, 45);
    cr_assert_not_null(event_by_seq(ev, n, 3), "seq 3 is in the stream");
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += ev[i]->seq >= 3;

    cr_assert_eq(CTL(out, "tail", "--from", "3", "--json"), 0, "%s", out);
    size_t k = json_lines(out, lines, 64);
    cr_assert_eq(k, want, "tail --from 3: %zu lines, want %zu", k, want);
    cr_assert_eq(ju64(lines[0], "seq"), 3);
    cr_assert_eq(ju64(lines[k - 1], "seq"), ev[n - 1]->seq, "ends at the last event");
    for (size_t i = 0; i < k; i++) {
        check_tail_line(lines[i], ev, n);
        if (i)
            cr_assert_gt(ju64(lines[i], "seq"), ju64(lines[i - 1], "seq"));
    }
    for (size_t i = 0; i < k; i++)
        json_free_v(lines[i]);

    /* Past the end: nothing, and still success. */
    char from[32];
    snprintf(from, sizeof(from), "%llu", (unsigned long long)ev[n - 1]->seq + 1);
    cr_assert_eq(CTL(out, "tail", "--from", from, "--json"), 0);
    cr_assert_str_eq(out, "");
    h_events_free(ev, n);
}

Test(omnictl, tail_lines_carry_the_contract_fields)
{
    static char out[65536];
    jv_t *lines[16];
    const char *email[] = {"--channel", "email", "--from", "email:Hanako@Example.JP", "--subject", "解約の件",
                           "--text", "解約したいです", NULL};
    const char *chat[] = {"--channel", "chat", "--from", "chat:visitor-9", "--text", "\"quoted\" \\ tab\t end", NULL};
    sent_t e = ctl_send(email), c = ctl_send(chat);

    cr_assert_eq(CTL(out, "tail", "--json"), 0);
    size_t k = json_lines(out, lines, 16);
    cr_assert_eq(k, 6, "two conversations opened and queued, two messages: %s", out);
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    int seen_email = 0, seen_chat = 0, opened = 0;
    for (size_t i = 0; i < k; i++) {
        check_tail_line(lines[i], ev, n);
        const char *type = jstr(lines[i], "type");
        if (strcmp(type, "conversation_opened") == 0) {
            opened++;
            continue;
        }
        if (strcmp(type, "queued") == 0) {
            cr_assert_str_eq(jstr(lines[i], "queue"), "default", "no config: the one default queue");
            continue;
        }
        cr_assert_str_eq(type, "message");
        if (ju64(lines[i], "seq") == e.seq) {
            seen_email = 1;
            cr_assert_str_eq(jstr(lines[i], "channel"), "email");
            cr_assert_str_eq(jstr(lines[i], "from"), "email:hanako@example.jp", "from is the normalized sender");
            cr_assert_str_eq(jstr(lines[i], "subject"), "解約の件");
            cr_assert_str_eq(jstr(lines[i], "text"), "解約したいです");
            cr_assert_str_eq(jstr(lines[i], "customer_id"), e.customer_id);
            cr_assert_str_eq(jstr(lines[i], "conversation_id"), e.conversation_id);
        } else {
            cr_assert_eq(ju64(lines[i], "seq"), c.seq);
            seen_chat = 1;
            cr_assert_str_eq(jstr(lines[i], "channel"), "chat");
            cr_assert_str_eq(jstr(lines[i], "from"), "chat:visitor-9");
            cr_assert_str_eq(jstr(lines[i], "text"), "\"quoted\" \\ tab\t end", "escapes survive JSON");
            cr_assert_null(jget(lines[i], "subject"), "no subject on a chat message");
        }
    }
    cr_assert(seen_email && seen_chat && opened == 2);
    for (size_t i = 0; i < k; i++)
        json_free_v(lines[i]);
    h_events_free(ev, n);
}

/* A child's stdout read line by line with a deadline. */
typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} lr_t;

/* 1: a line in out; 0: timeout; -1: EOF. */
static int lr_next(lr_t *r, char *out, size_t outlen, int timeout_ms)
{
    int64_t end = omni_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t l = (size_t)(nl - r->buf);
            cr_assert_lt(l, outlen);
            memcpy(out, r->buf, l);
            out[l] = 0;
            memmove(r->buf, nl + 1, r->len - l - 1);
            r->len -= l + 1;
            return 1;
        }
        int64_t left = (end - omni_mono_us()) / 1000;
        if (left <= 0)
            return 0;
        struct pollfd p = {r->fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return 0;
        cr_assert_lt(r->len, sizeof(r->buf) - 1, "line too long");
        ssize_t got = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
        if (got <= 0)
            return -1;
        r->len += (size_t)got;
    }
}

/* Wait for the next tail line; parse it. */
static jv_t *next_json(lr_t *r, int timeout_ms, const char *what)
{
    char line[65536];
    int rc = lr_next(r, line, sizeof(line), timeout_ms);
    cr_assert_eq(rc, 1, "tail --follow: no line for %s within %d ms (%s)", what, timeout_ms, rc ? "EOF" : "timeout");
    jv_t *j = json_parse(line);
    cr_assert_not_null(j, "not JSON: %s", line);
    return j;
}

Test(omnictl, tail_follow_prints_live_events_and_stops_on_sigint)
{
    const char *first[] = {"--channel", "chat", "--from", "chat:follow-1", "--text", "before", NULL};
    sent_t a = ctl_send(first);

    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        const char *bin = getenv("OMNICTL_BIN") && *getenv("OMNICTL_BIN") ? getenv("OMNICTL_BIN") : "omnictl";
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execlp(bin, bin, "--control", H.control, "--timeout", "3000", "--json", "tail", "--follow", "--stream",
               H.stream, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    lr_t *r = calloc(1, sizeof(*r));
    r->fd = pfd[0];

    /* The history first (the three events of the first send): once they are printed omnictl
     * has subscribed, since it subscribes before it reads history. */
    jv_t *h1 = next_json(r, 10000, "history 1"), *hq = next_json(r, 10000, "history 2"),
         *h2 = next_json(r, 10000, "history 3");
    cr_assert_str_eq(jstr(h1, "type"), "conversation_opened");
    cr_assert_str_eq(jstr(hq, "type"), "queued");
    json_free_v(hq);
    cr_assert_eq(ju64(h2, "seq"), a.seq);
    cr_assert_str_eq(jstr(h2, "text"), "before");
    unsigned long long last = ju64(h2, "seq");
    json_free_v(h1);
    json_free_v(h2);

    const char *second[] = {"--channel", "chat", "--from", "chat:follow-1", "--text", "after", NULL};
    sent_t b = ctl_send(second);
    jv_t *live = next_json(r, 10000, "the live message");
    cr_assert_eq(ju64(live, "seq"), b.seq, "the live event follows the history without a gap");
    cr_assert_gt(b.seq, last);
    cr_assert_str_eq(jstr(live, "type"), "message");
    cr_assert_str_eq(jstr(live, "text"), "after");
    cr_assert_str_eq(jstr(live, "customer_id"), a.customer_id);
    json_free_v(live);

    cr_assert_eq(kill(pid, SIGINT), 0);
    /* It must print nothing more (no duplicate of what it printed), close stdout and exit 0. */
    char line[65536];
    int rc = lr_next(r, line, sizeof(line), 10000);
    if (rc == 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("unexpected line after SIGINT: %s", line);
    }
    if (rc == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("tail --follow still running 10 s after SIGINT");
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "tail --follow died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "SIGINT is how a follow ends: exit 0");
    close(pfd[0]);
    free(r);
}

/* ---- keygen --------------------------------------------------------------------------------- */

Test(omnictl, keygen_prints_a_fresh_valid_pair)
{
    static char out[4096];
    char pub[2][64], sec[2][64];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(CTL(out, "keygen", "--json"), 0);
        jv_t *j = json_one(out);
        snprintf(pub[i], sizeof(pub[i]), "%s", jstr(j, "public"));
        snprintf(sec[i], sizeof(sec[i]), "%s", jstr(j, "secret"));
        json_free_v(j);
        cr_assert_eq(strlen(pub[i]), 40, "public key: %s", pub[i]);
        cr_assert_eq(strlen(sec[i]), 40, "secret key: %s", sec[i]);
        uint8_t raw[32];
        cr_assert_not_null(zmq_z85_decode(raw, pub[i]), "public key is not Z85");
        cr_assert_not_null(zmq_z85_decode(raw, sec[i]), "secret key is not Z85");
        char derived[41];
        cr_assert_eq(zmq_curve_public(derived, sec[i]), 0);
        cr_assert_str_eq(derived, pub[i], "the public key belongs to the secret key");
    }
    cr_assert_str_neq(pub[0], pub[1], "two runs gave the same key pair");
    cr_assert_str_neq(sec[0], sec[1]);
}
