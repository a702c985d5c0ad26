/* Unit tests of the SMTP relay client (adapters/email/relay.c): against the real server session
 * (smtp.c) in memory, and against scripted servers for pipelining-less and misbehaving relays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "relay.h"
#include "smtp.h"

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert_not_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

typedef struct {
    char from[300];
    char rcpts[4][300];
    size_t n;
    buf_t data;
} msg_t;

typedef struct {
    relay_session_t *r;
    smtp_session_t *srv;
    buf_t c2s, s2c; /* queued between the two: neither side may be fed from its own callbacks */
    buf_t sent;     /* everything the client sent */
    size_t mark;    /* start of what take() has not returned */
    int sends;
    int done_n, done_code;
    char done_text[2048];
    int rclosed, sclosed;
    msg_t msgs[8];
    size_t n_msgs;
    int verdict;  /* the server's answer to each message; 0 = 250 */
    size_t chunk; /* server bytes per client feed; 0 = all at once */
} pair_t;

static void c_send(void *u, const char *b, size_t n)
{
    pair_t *p = u;
    cr_assert(!p->rclosed, "client sent after close");
    cr_assert(n >= 3 && b[n - 2] == '\r' && b[n - 1] == '\n', "client output not CRLF-terminated");
    buf_add(&p->c2s, b, n);
    buf_add(&p->sent, b, n);
    p->sends++;
}

static void c_done(void *u, int code, const char *text)
{
    pair_t *p = u;
    for (const char *q = text; *q; q++) cr_assert((unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f);
    p->done_n++;
    p->done_code = code;
    snprintf(p->done_text, sizeof(p->done_text), "%s", text);
}

static void c_close(void *u)
{
    pair_t *p = u;
    cr_assert(!p->rclosed, "close twice");
    p->rclosed = 1;
}

static void s_send(void *u, const char *b, size_t n)
{
    buf_add(&((pair_t *)u)->s2c, b, n);
}

static void s_message(void *u, const char *from, const char *const *rcpts, size_t n, const char *data, size_t len)
{
    pair_t *p = u;
    cr_assert_lt(p->n_msgs, 8);
    msg_t *m = &p->msgs[p->n_msgs++];
    snprintf(m->from, sizeof(m->from), "%s", from);
    m->n = n;
    for (size_t i = 0; i < n && i < 4; i++) snprintf(m->rcpts[i], sizeof(m->rcpts[i]), "%s", rcpts[i]);
    buf_add(&m->data, data, len);
    smtp_session_data_result(p->srv, p->verdict ? p->verdict : 250, NULL);
}

static int s_rcpt(void *u, const char *addr, char *why, size_t whylen)
{
    (void)u;
    if (!strncmp(addr, "no", 2)) {
        snprintf(why, whylen, "5.1.1 No such user");
        return 550;
    }
    if (!strncmp(addr, "busy", 4)) {
        snprintf(why, whylen, "4.2.1 Try later");
        return 450;
    }
    return 0;
}

static void s_close(void *u)
{
    ((pair_t *)u)->sclosed = 1;
}

static const relay_callbacks_t *client_cb(pair_t *p)
{
    static relay_callbacks_t cb;
    cb = (relay_callbacks_t){.user = p, .send = c_send, .done = c_done, .close = c_close};
    return &cb;
}

/* A relay client connected to a real server session; lim NULL = defaults. */
static void pair_init(pair_t *p, const smtp_limits_t *lim)
{
    memset(p, 0, sizeof(*p));
    cr_assert_eq(relay_session_new("client.example", client_cb(p), &p->r), 0);
    smtp_callbacks_t scb = {.user = p, .send = s_send, .message = s_message, .rcpt_ok = s_rcpt, .close = s_close};
    cr_assert_eq(smtp_session_new(lim, &scb, &p->srv), 0);
}

static void pump(pair_t *p)
{
    for (int guard = 0; guard < 10000 && (p->c2s.len || p->s2c.len); guard++) {
        if (p->s2c.len) {
            buf_t t = p->s2c;
            p->s2c = (buf_t){0};
            size_t step = p->chunk ? p->chunk : t.len;
            for (size_t i = 0; i < t.len; i += step)
                relay_session_feed(p->r, t.p + i, t.len - i < step ? t.len - i : step);
            free(t.p);
        }
        if (p->c2s.len) {
            buf_t t = p->c2s;
            p->c2s = (buf_t){0};
            smtp_session_feed(p->srv, t.p, t.len);
            free(t.p);
        }
    }
}

static void pair_free(pair_t *p)
{
    relay_session_destroy(&p->r);
    smtp_session_destroy(&p->srv);
    free(p->c2s.p);
    free(p->s2c.p);
    free(p->sent.p);
    for (size_t i = 0; i < p->n_msgs; i++) free(p->msgs[i].data.p);
}

static const char *const ONE[] = {"customer@example.net"};

static const char STUFFY[] = "From: agent@example.com\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.hidden\r\n"
                             "middle . dot\r\n...\r\n.\r\nlast line\r\n";

Test(relay, delivers_byte_identical_with_dot_stuffing)
{
    pair_t p;
    pair_init(&p, NULL);
    /* submitted before the greeting arrived: waits for EHLO */
    cr_assert_eq(relay_session_submit(p.r, "agent@example.com", ONE, 1, STUFFY, strlen(STUFFY)), 0);
    cr_assert_eq(relay_session_submit(p.r, "x@y", ONE, 1, "a\r\n", 3), OMNI_ESTATE);
    pump(&p);
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(p.done_code, 250, "%d %s", p.done_code, p.done_text);
    cr_assert_eq(p.n_msgs, 1);
    cr_assert_str_eq(p.msgs[0].from, "agent@example.com");
    cr_assert_str_eq(p.msgs[0].rcpts[0], "customer@example.net");
    cr_assert_eq(p.msgs[0].data.len, strlen(STUFFY));
    cr_assert(!memcmp(p.msgs[0].data.p, STUFFY, strlen(STUFFY)));
    cr_assert(relay_session_has(p.r, "pipelining") && relay_session_has(p.r, "SIZE") &&
              relay_session_has(p.r, "8BITMIME") && !relay_session_has(p.r, "STARTTLS") &&
              !relay_session_has(p.r, "AUTH"));
    cr_assert_eq(relay_session_max_size(p.r), SMTP_DEFAULT_MAX_MESSAGE);
    /* pipelined: MAIL, RCPT and DATA in one write, with SIZE= */
    cr_assert_not_null(strstr(p.sent.p, "MAIL FROM:<agent@example.com> SIZE=" ));
    cr_assert_not_null(strstr(p.sent.p, "\r\nRCPT TO:<customer@example.net>\r\nDATA\r\n"));
    cr_assert_null(strstr(p.sent.p, "BODY=8BITMIME"));
    relay_session_quit(p.r);
    pump(&p);
    cr_assert(p.rclosed && p.sclosed);
    cr_assert_eq(relay_session_feed(p.r, "250 x\r\n", 7), OMNI_ECLOSED);
    cr_assert_eq(relay_session_submit(p.r, "", ONE, 1, "a\r\n", 3), OMNI_ECLOSED);
    pair_free(&p);
}

Test(relay, unterminated_and_bare_lf_messages_are_normalized)
{
    pair_t p;
    pair_init(&p, NULL);
    const char *m = "a\n.b\rc";
    cr_assert_eq(relay_session_submit(p.r, "", ONE, 1, m, strlen(m)), 0);
    pump(&p);
    cr_assert_eq(p.done_code, 250);
    cr_assert_str_eq(p.msgs[0].from, "");
    cr_assert_str_eq(p.msgs[0].data.p, "a\r\n.b\r\nc\r\n");
    cr_assert_not_null(strstr(p.sent.p, "MAIL FROM:<> SIZE=10\r\n"));
    pair_free(&p);
}

Test(relay, two_transactions_in_a_row)
{
    pair_t p;
    pair_init(&p, NULL);
    for (int k = 0; k < 3; k++) {
        char m[64];
        snprintf(m, sizeof(m), "Subject: %d\r\n\r\nbody %d\r\n", k, k);
        cr_assert_eq(relay_session_submit(p.r, "agent@example.com", ONE, 1, m, strlen(m)), 0);
        pump(&p);
        cr_assert_eq(p.done_n, k + 1);
        cr_assert_eq(p.done_code, 250);
        cr_assert_str_eq(p.msgs[k].data.p, m);
    }
    cr_assert_null(strstr(p.sent.p, "RSET"), "no RSET after a success");
    pair_free(&p);
}

Test(relay, eightbit_uses_body_8bitmime)
{
    pair_t p;
    pair_init(&p, NULL);
    const char *m = "Subject: =?UTF-8?B?5pel?=\r\n\r\n\xe6\x97\xa5\xe6\x9c\xac\r\n";
    cr_assert_eq(relay_session_submit(p.r, "agent@example.com", ONE, 1, m, strlen(m)), 0);
    pump(&p);
    cr_assert_eq(p.done_code, 250);
    cr_assert_not_null(strstr(p.sent.p, " BODY=8BITMIME\r\n"));
    cr_assert_str_eq(p.msgs[0].data.p, m);
    pair_free(&p);
}

Test(relay, size_limit_refused_locally)
{
    smtp_limits_t lim = {.max_message = 100};
    pair_t p;
    pair_init(&p, &lim);
    char m[300];
    memset(m, 'x', sizeof(m));
    m[298] = '\r';
    m[299] = '\n';
    cr_assert_eq(relay_session_submit(p.r, "a@b", ONE, 1, m, sizeof(m)), 0);
    pump(&p);
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(p.done_code, 552);
    cr_assert(!strncmp(p.done_text, "5.3.4 ", 6), "%s", p.done_text);
    cr_assert_null(strstr(p.sent.p, "MAIL"));
    /* exactly at the limit passes */
    cr_assert_eq(relay_session_submit(p.r, "a@b", ONE, 1, m + 200, 100), 0);
    pump(&p);
    cr_assert_eq(p.done_code, 250, "%s", p.done_text);
    pair_free(&p);
}

Test(relay, partial_recipient_refusal)
{
    pair_t p;
    pair_init(&p, NULL);
    const char *const rc[] = {"nobody@example.com", "customer@example.net", "busy@example.org"};
    cr_assert_eq(relay_session_submit(p.r, "a@b", rc, 3, "x\r\n", 3), 0);
    pump(&p);
    cr_assert_eq(p.done_code, 250);
    cr_assert_eq(p.msgs[0].n, 1);
    cr_assert_str_eq(p.msgs[0].rcpts[0], "customer@example.net");
    cr_assert_not_null(strstr(p.done_text, "; refused: <nobody@example.com> 550 5.1.1 No such user, "
                                           "<busy@example.org> 450 4.2.1 Try later"),
                       "%s", p.done_text);
    pair_free(&p);
}

Test(relay, all_recipients_refused_then_next_works)
{
    pair_t p;
    pair_init(&p, NULL);
    const char *const rc[] = {"busy@example.org", "nobody@example.com"};
    cr_assert_eq(relay_session_submit(p.r, "a@b", rc, 2, "x\r\n", 3), 0);
    pump(&p);
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(p.done_code, 450, "first refusal decides: %s", p.done_text);
    cr_assert_eq(p.n_msgs, 0);
    cr_assert_not_null(strstr(p.sent.p, "RSET\r\n"));
    cr_assert_eq(relay_session_submit(p.r, "a@b", ONE, 1, "y\r\n", 3), 0);
    pump(&p);
    cr_assert_eq(p.done_code, 250);
    cr_assert_eq(p.n_msgs, 1);
    pair_free(&p);
}

Test(relay, verdict_after_data_decides)
{
    int codes[] = {451, 554, 250};
    for (int i = 0; i < 3; i++) {
        pair_t p;
        pair_init(&p, NULL);
        p.verdict = codes[i];
        cr_assert_eq(relay_session_submit(p.r, "a@b", ONE, 1, "x\r\n", 3), 0);
        pump(&p);
        cr_assert_eq(p.done_code, codes[i]);
        pair_free(&p);
    }
}

Test(relay, every_chunk_size_gives_the_same_result)
{
    for (size_t chunk = 1; chunk < 40; chunk++) {
        pair_t p;
        pair_init(&p, NULL);
        p.chunk = chunk;
        const char *const rc[] = {"nobody@example.com", "customer@example.net"};
        cr_assert_eq(relay_session_submit(p.r, "agent@example.com", rc, 2, STUFFY, strlen(STUFFY)), 0);
        pump(&p);
        cr_assert_eq(p.done_code, 250);
        cr_assert_str_eq(p.msgs[0].data.p, STUFFY);
        relay_session_quit(p.r);
        pump(&p);
        cr_assert(p.rclosed);
        pair_free(&p);
    }
}

/* ---- scripted servers ---- */

static void sc_init(pair_t *p)
{
    memset(p, 0, sizeof(*p));
    cr_assert_eq(relay_session_new("client.example", client_cb(p), &p->r), 0);
}

/* Feeds the server's text, returns what the client sent since the last call. */
static const char *srv(pair_t *p, const char *text)
{
    p->sent.len = 0;
    if (p->sent.p)
        p->sent.p[0] = '\0';
    relay_session_feed(p->r, text, strlen(text));
    return p->sent.p ? p->sent.p : "";
}

static const char EHLO_PLAIN[] = "250-relay.example hello\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";

Test(relay, non_pipelining_server_step_by_step)
{
    pair_t p;
    sc_init(&p);
    const char *const rc[] = {"a@x", "b@x"};
    cr_assert_eq(relay_session_submit(p.r, "me@y", rc, 2, ".x\r\n", 4), 0);
    cr_assert_str_eq(srv(&p, "220 relay.example ESMTP\r\n"), "EHLO client.example\r\n");
    cr_assert_str_eq(srv(&p, EHLO_PLAIN), "MAIL FROM:<me@y> SIZE=4\r\n");
    cr_assert(!relay_session_has(p.r, "PIPELINING"));
    cr_assert_str_eq(srv(&p, "250 2.1.0 Ok\r\n"), "RCPT TO:<a@x>\r\n");
    cr_assert_str_eq(srv(&p, "550 5.1.1 unknown\r\n"), "RCPT TO:<b@x>\r\n");
    cr_assert_str_eq(srv(&p, "250 2.1.5 Ok\r\n"), "DATA\r\n");
    cr_assert_str_eq(srv(&p, "354 go ahead\r\n"), "..x\r\n.\r\n");
    cr_assert_eq(p.done_n, 0);
    cr_assert_str_eq(srv(&p, "250-2.0.0 queued\r\n250 as ABC\r\n"), "");
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(p.done_code, 250);
    cr_assert_str_eq(p.done_text, "2.0.0 queued as ABC; refused: <a@x> 550 5.1.1 unknown");
    relay_session_quit(p.r);
    cr_assert_str_eq(p.sent.p, "QUIT\r\n");
    srv(&p, "221 bye\r\n");
    cr_assert(p.rclosed);
    pair_free(&p);
}

/* One transaction against a scripted non-pipelining server failing at step `fail`. */
static void fail_at(const char *step_reply, int step, int want_code, int want_rset)
{
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    srv(&p, "220 r\r\n");
    const char *replies[] = {EHLO_PLAIN, "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n"};
    const char *sent = "";
    for (int i = 0; i < 5 && p.done_n == 0; i++) sent = srv(&p, i == step ? step_reply : replies[i]);
    cr_assert_eq(p.done_n, 1, "step %d", step);
    cr_assert_eq(p.done_code, want_code, "step %d: %d %s", step, p.done_code, p.done_text);
    cr_assert_str_eq(sent, want_rset ? "RSET\r\n" : "");
    if (want_rset)
        srv(&p, "250 ok\r\n");
    /* the session is usable afterwards */
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    cr_assert_str_eq(p.sent.p, "MAIL FROM:<me@y> SIZE=3\r\n");
    pair_free(&p);
}

Test(relay, failures_on_each_step)
{
    fail_at("451 4.3.0 mail later\r\n", 1, 451, 0);
    fail_at("553 5.1.8 bad sender\r\n", 1, 553, 0);
    fail_at("450 4.2.0 rcpt later\r\n", 2, 450, 1);
    fail_at("550 5.1.1 no\r\n", 2, 550, 1);
    fail_at("451 4.3.0 data later\r\n", 3, 451, 1);
    fail_at("554 5.5.1 no data\r\n", 3, 554, 1);
    fail_at("452 4.3.1 full\r\n", 4, 452, 0);
    fail_at("550 5.7.1 spam\r\n", 4, 550, 0);
}

Test(relay, pipelined_mail_refused)
{
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    srv(&p, "220 r\r\n");
    cr_assert_str_eq(srv(&p, "250-r\r\n250 PIPELINING\r\n"), "MAIL FROM:<me@y>\r\nRCPT TO:<customer@example.net>\r\nDATA\r\n");
    cr_assert_eq(p.sends, 2, "EHLO, then MAIL/RCPT/DATA in one write");
    srv(&p, "550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n");
    cr_assert_eq(p.done_n, 0);
    /* a broken server that says 354 anyway gets a lone dot */
    cr_assert_str_eq(srv(&p, "354 go\r\n"), ".\r\n");
    cr_assert_eq(p.done_code, 550);
    cr_assert_str_eq(p.done_text, "5.7.1 sender refused");
    cr_assert_str_eq(srv(&p, "554 no recipients\r\n"), "RSET\r\n");
    srv(&p, "250 ok\r\n");
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    cr_assert_not_null(strstr(p.sent.p, "MAIL FROM:<me@y>"));
    pair_free(&p);
}

Test(relay, helo_fallback_and_8bit_without_8bitmime)
{
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "caf\xc3\xa9\r\n", 7), 0);
    srv(&p, "220 old\r\n");
    cr_assert_str_eq(srv(&p, "502 what\r\n"), "HELO client.example\r\n");
    cr_assert_str_eq(srv(&p, "250 old\r\n"), "", "nothing sent for an 8-bit message");
    cr_assert_eq(p.done_code, 554);
    cr_assert_str_eq(p.done_text, "5.6.3 8-bit message and the relay has no 8BITMIME");
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "cafe\r\n", 6), 0);
    cr_assert_str_eq(p.sent.p, "MAIL FROM:<me@y>\r\n");
    pair_free(&p);
}

Test(relay, greeting_refused_and_421)
{
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    cr_assert_str_eq(srv(&p, "554 go away\r\n"), "QUIT\r\n");
    cr_assert_eq(p.done_code, 554);
    srv(&p, "221 bye\r\n");
    cr_assert(p.rclosed);
    pair_free(&p);

    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    srv(&p, "220 r\r\n");
    srv(&p, EHLO_PLAIN);
    srv(&p, "421 4.3.2 shutting down\r\n");
    cr_assert_eq(p.done_code, 421);
    cr_assert(p.rclosed);
    pair_free(&p);
}

Test(relay, multiline_reply_split_at_every_byte)
{
    const char *script = "220-relay.example ESMTP\r\n220 welcome\r\n"
                         "250-relay.example\r\n250-PIPELINING\r\n250-SIZE 5000\r\n250-8BITMIME\r\n"
                         "250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
                         "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n250-2.0.0 Ok\r\n250 queued as X\r\n";
    size_t n = strlen(script);
    char want[512] = "";
    for (size_t cut = 0; cut <= n; cut++) {
        pair_t p;
        sc_init(&p);
        cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
        cr_assert_eq(relay_session_feed(p.r, script, cut), 0);
        cr_assert_eq(relay_session_feed(p.r, script + cut, n - cut), 0);
        cr_assert_eq(p.done_n, 1, "cut %zu", cut);
        cr_assert_eq(p.done_code, 250);
        cr_assert_str_eq(p.done_text, "2.0.0 Ok queued as X");
        cr_assert(relay_session_has(p.r, "AUTH") && relay_session_has(p.r, "starttls"));
        cr_assert_eq(relay_session_max_size(p.r), 5000);
        if (!cut)
            snprintf(want, sizeof(want), "%s", p.sent.p);
        cr_assert_str_eq(p.sent.p, want, "cut %zu", cut);
        pair_free(&p);
    }
    /* and one byte at a time */
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    for (size_t i = 0; i < n; i++) cr_assert_eq(relay_session_feed(p.r, script + i, 1), 0);
    cr_assert_eq(p.done_code, 250);
    cr_assert_str_eq(p.sent.p, want);
    pair_free(&p);
}

Test(relay, connection_lost_mid_transaction)
{
    pair_t p;
    sc_init(&p);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
    srv(&p, "220 r\r\n");
    srv(&p, EHLO_PLAIN);
    srv(&p, "250 ok\r\n");
    relay_session_lost(p.r);
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(p.done_code, 451);
    cr_assert_str_eq(p.done_text, "4.4.2 connection lost");
    cr_assert(!p.rclosed);
    relay_session_lost(p.r);
    cr_assert_eq(p.done_n, 1);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), OMNI_ECLOSED);
    pair_free(&p);
}

Test(relay, protocol_errors_end_with_451)
{
    const char *bad[] = {"garbage\r\n", "250-a\r\n354 b\r\n", "250 unexpected\r\n250 ok\r\n250 more\r\n", "X"};
    for (int i = 0; i < 4; i++) {
        pair_t p;
        sc_init(&p);
        cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
        srv(&p, "220 r\r\n");
        srv(&p, EHLO_PLAIN);
        if (i == 3) {
            char *big = malloc(5000);
            memset(big, 'X', 5000);
            memcpy(big, "250 ", 4);
            cr_assert_eq(relay_session_feed(p.r, big, 5000), OMNI_ECLOSED);
            free(big);
        } else if (i == 2) {
            /* MAIL ok, RCPT ok, DATA... then a reply to nothing after QUIT is wanted: feed on idle */
            srv(&p, "250 ok\r\n");
            srv(&p, "250 ok\r\n");
            srv(&p, "354 go\r\n");
            srv(&p, "250 ok\r\n");
            cr_assert_eq(p.done_code, 250);
            p.done_n = 0;
            cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 1, "x\r\n", 3), 0);
            srv(&p, "250 ok\r\n250 ok\r\n250 ok\r\n250 surprise\r\n"); /* 250 to DATA */
        } else {
            srv(&p, bad[i]);
        }
        cr_assert_eq(p.done_n, 1, "case %d", i);
        cr_assert_eq(p.done_code, 451, "case %d", i);
        cr_assert(!strncmp(p.done_text, "4.4.0 protocol error", 20), "%s", p.done_text);
        cr_assert(p.rclosed);
        pair_free(&p);
    }
}

Test(relay, bad_arguments)
{
    pair_t p;
    sc_init(&p);
    const char *const bad1[] = {"a@b>\r\nRCPT TO:<evil@x"};
    const char *const bad2[] = {""};
    const char *const bad3[] = {"a b@c"};
    cr_assert_eq(relay_session_submit(p.r, "me@y", bad1, 1, "x", 1), OMNI_EINVAL);
    cr_assert_eq(relay_session_submit(p.r, "me@y", bad2, 1, "x", 1), OMNI_EINVAL);
    cr_assert_eq(relay_session_submit(p.r, "me@y", bad3, 1, "x", 1), OMNI_EINVAL);
    cr_assert_eq(relay_session_submit(p.r, "me@y", ONE, 0, "x", 1), OMNI_EINVAL);
    cr_assert_eq(relay_session_submit(p.r, "<me@y>", ONE, 1, "x", 1), OMNI_EINVAL);
    relay_session_t *r = NULL;
    relay_callbacks_t cb = {.send = c_send, .done = c_done};
    cr_assert_eq(relay_session_new("has space", &cb, &r), OMNI_EINVAL);
    cr_assert_eq(relay_session_new("", &cb, &r), OMNI_EINVAL);
    cb.done = NULL;
    cr_assert_eq(relay_session_new("ok", &cb, &r), OMNI_EINVAL);
    pair_free(&p);
}
