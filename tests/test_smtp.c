/* Unit tests of the SMTP server session (adapters/email/smtp.c), driven in memory: transactions,
 * framing across every feed split, limits, errors, pipelining holds, STARTTLS, shutdown. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <omni/omni.h>

#include "smtp.h"

/* Strings compared on one line with CR, LF and other controls escaped: Criterion puts the
 * message into the TAP report, where a raw multi-line string would break the stream. */
static char *escape(const char *s, size_t n)
{
    char *o = malloc(n * 4 + 1), *q = o;
    cr_assert_not_null(o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') q += sprintf(q, "\\r");
        else if (c == '\n') q += sprintf(q, "\\n");
        else if (c < 0x20 || c == 0x7f || c == '\\') q += sprintf(q, "\\x%02x", c);
        else *q++ = (char)c;
    }
    *q = '\0';
    return o;
}

static void str_eq_at(int line, const char *got, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void str_eq_at(int line, const char *got, const char *want, const char *fmt, ...)
{
    if (!strcmp(got, want))
        return;
    char ctx[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    /* Criterion truncates long messages: show where the strings part, with some context. */
    size_t d = 0;
    while (got[d] && got[d] == want[d]) d++;
    size_t from = d > 60 ? d - 60 : 0, gl = strlen(got + from), wl = strlen(want + from);
    cr_assert_fail("line %d%s: differ at byte %zu: got \"%s\" want \"%s\"", line, ctx, d,
                   escape(got + from, gl < 160 ? gl : 160), escape(want + from, wl < 160 ? wl : 160));
}

#define STR_EQ(got, want, ...) str_eq_at(__LINE__, (got), (want), " " __VA_ARGS__)

/* ---- a recording program ---- */

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
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

#define MAX_MSGS 64

typedef struct {
    char *from;
    char *rcpts[8];
    size_t n_rcpts;
    char *data;
    size_t len;
} msg_t;

typedef struct {
    smtp_session_t *s;
    buf_t out;   /* replies only */
    size_t mark; /* start of what take() has not returned yet */
    buf_t log;   /* replies interleaved with [MSG …], [TLS], [CLOSE] */
    int closed, tls, pending;
    msg_t msgs[MAX_MSGS];
    size_t n_msgs;
    /* verdicts for the split tests: message k gets codes[k % n_codes], in the callback when sync[k % n] */
    const int *codes;
    const int *sync;
    size_t n_codes;
    int sync_all; /* nonzero: answer every message in the callback with this code */
    int verdict_in_send;  /* call data_result again from inside send */
    int shutdown_in_msg;  /* call shutdown from inside the message callback */
} cap_t;

static void on_send(void *user, const char *buf, size_t len)
{
    cap_t *c = user;
    cr_assert(!c->closed, "send after close");
    cr_assert(len >= 5 && buf[len - 2] == '\r' && buf[len - 1] == '\n', "reply not CRLF-terminated");
    buf_add(&c->out, buf, len);
    buf_add(&c->log, buf, len);
    if (c->verdict_in_send)
        smtp_session_data_result(c->s, 451, "again");
}

static void verdict(cap_t *c)
{
    size_t k = c->n_msgs - 1;
    int code = c->codes ? c->codes[k % c->n_codes] : 250;
    c->pending = 0;
    smtp_session_data_result(c->s, code, code == 451 ? "broker unavailable" : NULL);
}

static void on_message(void *user, const char *from, const char *const *rcpts, size_t n, const char *data, size_t len)
{
    cap_t *c = user;
    cr_assert(!c->pending, "message while another is pending");
    cr_assert_lt(c->n_msgs, MAX_MSGS);
    cr_assert_not_null(data);
    msg_t *m = &c->msgs[c->n_msgs++];
    m->from = strdup(from);
    m->n_rcpts = n;
    for (size_t i = 0; i < n && i < 8; i++) m->rcpts[i] = strdup(rcpts[i]);
    m->data = malloc(len + 1);
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->len = len;
    buf_printf(&c->log, "[MSG <%s>", from);
    for (size_t i = 0; i < n; i++) buf_printf(&c->log, " %s", rcpts[i]);
    buf_printf(&c->log, " %zu:", len);
    buf_add(&c->log, data, len);
    buf_printf(&c->log, "]\n");
    c->pending = 1;
    if (c->shutdown_in_msg) {
        smtp_session_shutdown(c->s, NULL);
        return;
    }
    if (c->sync_all) {
        c->pending = 0;
        smtp_session_data_result(c->s, c->sync_all, NULL);
    } else if (c->sync && c->sync[(c->n_msgs - 1) % c->n_codes]) {
        verdict(c);
    }
}

static int on_rcpt(void *user, const char *addr, char *why, size_t whylen)
{
    (void)user;
    cr_assert_geq(whylen, 256);
    if (!strncmp(addr, "nobody@", 7)) {
        snprintf(why, whylen, "No such user here");
        return 550;
    }
    if (!strncmp(addr, "busy@", 5)) {
        snprintf(why, whylen, "4.2.1 Mailbox busy\r\nEvil: injected");
        return 450;
    }
    if (!strncmp(addr, "weird@", 6))
        return 42;
    return 0;
}

static void on_tls(void *user)
{
    cap_t *c = user;
    c->tls++;
    buf_printf(&c->log, "[TLS]\n");
}

static void on_close(void *user)
{
    cap_t *c = user;
    c->closed++;
    buf_printf(&c->log, "[CLOSE]\n");
}

static smtp_limits_t limits(void)
{
    smtp_limits_t l = {0};
    l.hostname = "mx.example.com";
    return l;
}

static void open_s(cap_t *c, const smtp_limits_t *l)
{
    memset(c, 0, sizeof(*c));
    smtp_callbacks_t cb = {.user = c, .send = on_send, .message = on_message, .rcpt_ok = on_rcpt,
                           .starttls = on_tls, .close = on_close};
    int rc = smtp_session_new(l, &cb, &c->s);
    cr_assert_eq(rc, 0, "smtp_session_new = %d", rc);
    cr_assert_not_null(c->s);
}

static void close_s(cap_t *c)
{
    smtp_session_destroy(&c->s);
    cr_assert_null(c->s);
    for (size_t i = 0; i < c->n_msgs; i++) {
        free(c->msgs[i].from);
        free(c->msgs[i].data);
        for (size_t j = 0; j < c->msgs[i].n_rcpts && j < 8; j++) free(c->msgs[i].rcpts[j]);
    }
    free(c->out.p);
    free(c->log.p);
}

/* Replies since the last take(). */
static const char *take(cap_t *c)
{
    const char *r = c->out.p ? c->out.p + c->mark : "";
    c->mark = c->out.len;
    return r;
}

static int feedn(cap_t *c, const char *p, size_t n)
{
    return smtp_session_feed(c->s, p, n);
}

static int feed(cap_t *c, const char *str)
{
    return feedn(c, str, strlen(str));
}

#define EXPECT(c, str) STR_EQ(take(c), str)

static const char *EHLO_REPLY = "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n"
                                "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";

/* Greeting and EHLO consumed. */
static void ready(cap_t *c, const smtp_limits_t *l)
{
    open_s(c, l);
    take(c);
    cr_assert_eq(feed(c, "EHLO client.example.jp\r\n"), 0);
    take(c);
}

/* ---- greeting, EHLO, simple commands ---- */

Test(smtp, greeting_and_ehlo)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    EXPECT(&c, "220 mx.example.com ESMTP omni-email\r\n");
    cr_assert_eq(feed(&c, "EHLO client.example.jp\r\n"), 0);
    EXPECT(&c, EHLO_REPLY);
    feed(&c, "HELO client.example.jp\r\n");
    EXPECT(&c, "250 mx.example.com\r\n");
    feed(&c, "ehlo\r\n");
    EXPECT(&c, "501 5.5.4 Syntax: EHLO hostname\r\n");
    close_s(&c);
}

Test(smtp, ehlo_size_and_starttls_advertised)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_message = 1000;
    l.starttls_available = 1;
    ready(&c, &l);
    feed(&c, "EHLO again\r\n");
    EXPECT(&c, "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n");
    close_s(&c);
}

Test(smtp, default_hostname)
{
    cap_t c;
    open_s(&c, NULL);
    EXPECT(&c, "220 localhost ESMTP omni-email\r\n");
    close_s(&c);
}

Test(smtp, noop_vrfy_help_expn)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    take(&c);
    feed(&c, "NOOP\r\nnoop anything\r\nVRFY taro\r\nVRFY\r\nHELP\r\nEXPN list\r\nAUTH PLAIN\r\n");
    EXPECT(&c, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
               "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
               "501 5.5.4 Syntax: VRFY address\r\n"
               "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT\r\n"
               "502 5.5.1 Error: command not implemented\r\n502 5.5.1 Error: command not implemented\r\n");
    close_s(&c);
}

Test(smtp, new_rejects_bad_arguments)
{
    smtp_session_t *s = (smtp_session_t *)1;
    smtp_callbacks_t cb = {.send = on_send, .message = on_message};
    smtp_callbacks_t nosend = {.message = on_message};
    smtp_callbacks_t nomsg = {.send = on_send};
    cr_assert_eq(smtp_session_new(NULL, NULL, &s), OMNI_EINVAL);
    cr_assert_null(s);
    cr_assert_eq(smtp_session_new(NULL, &nosend, &s), OMNI_EINVAL);
    cr_assert_eq(smtp_session_new(NULL, &nomsg, &s), OMNI_EINVAL);
    cr_assert_eq(smtp_session_new(NULL, &cb, NULL), OMNI_EINVAL);
    smtp_limits_t l = limits();
    l.hostname = "bad host";
    cr_assert_eq(smtp_session_new(&l, &cb, &s), OMNI_EINVAL);
    l.hostname = "mx\r\n250 x";
    cr_assert_eq(smtp_session_new(&l, &cb, &s), OMNI_EINVAL);
    l.hostname = "";
    cr_assert_eq(smtp_session_new(&l, &cb, &s), OMNI_EINVAL);
    l = limits();
    l.max_line = 10;
    cr_assert_eq(smtp_session_new(&l, &cb, &s), OMNI_EINVAL);
    cr_assert_null(s);
    cr_assert_eq(smtp_session_feed(NULL, "x", 1), OMNI_EINVAL);
    smtp_session_destroy(NULL);
    smtp_session_destroy(&s);
    smtp_session_data_result(NULL, 250, NULL);
    smtp_session_shutdown(NULL, NULL);
}

/* ---- transactions ---- */

Test(smtp, full_transaction)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<taro.yamada@example.jp>\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n");
    feed(&c, "RCPT TO:<support@example.com>\r\n");
    EXPECT(&c, "250 2.1.5 Ok\r\n");
    feed(&c, "RCPT TO:<billing@example.com>\r\n");
    EXPECT(&c, "250 2.1.5 Ok\r\n");
    feed(&c, "DATA\r\n");
    EXPECT(&c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    feed(&c, "Subject: =?UTF-8?B?6KuL5rGC?=\r\nFrom: taro.yamada@example.jp\r\n\r\n請求金額が違います。\r\n");
    EXPECT(&c, "");
    cr_assert_eq(c.n_msgs, 0);
    feed(&c, ".\r\n");
    EXPECT(&c, "");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert(c.pending);
    msg_t *m = &c.msgs[0];
    STR_EQ(m->from, "taro.yamada@example.jp");
    cr_assert_eq(m->n_rcpts, 2);
    STR_EQ(m->rcpts[0], "support@example.com");
    STR_EQ(m->rcpts[1], "billing@example.com");
    STR_EQ(m->data,
                     "Subject: =?UTF-8?B?6KuL5rGC?=\r\nFrom: taro.yamada@example.jp\r\n\r\n請求金額が違います。\r\n");
    smtp_session_data_result(c.s, 250, "2.0.0 Ok: queued as 42");
    EXPECT(&c, "250 2.0.0 Ok: queued as 42\r\n");
    /* a second result for the same message is ignored */
    smtp_session_data_result(c.s, 451, NULL);
    EXPECT(&c, "");
    /* the transaction is over: RCPT needs a new MAIL */
    feed(&c, "RCPT TO:<support@example.com>\r\n");
    EXPECT(&c, "503 5.5.1 Error: need MAIL command\r\n");
    cr_assert_eq(feed(&c, "QUIT\r\n"), OMNI_ECLOSED);
    EXPECT(&c, "221 2.0.0 mx.example.com closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    close_s(&c);
}

Test(smtp, helo_transaction_and_empty_message)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    take(&c);
    feed(&c, "HELO old.example\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n.\r\n");
    EXPECT(&c, "250 mx.example.com\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.msgs[0].len, 0);
    smtp_session_data_result(c.s, 250, NULL);
    EXPECT(&c, "250 2.0.0 Ok: queued\r\n");
    close_s(&c);
}

Test(smtp, null_sender)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<support@example.com>\r\nDATA\r\nbounce\r\n.\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    STR_EQ(c.msgs[0].from, "");
    STR_EQ(c.msgs[0].data, "bounce\r\n");
    close_s(&c);
}

Test(smtp, address_forms)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "mail from: <Taro@Example.JP> SMTPUTF8\r\n"
             "rcpt to:<@relay.example,@b.example:user@c.example>\r\n"
             "RCPT TO:<\"john doe>\"@example.com>\r\n"
             "RCPT TO:<postmaster>\r\n"
             "RCPT TO:<山田@例え.jp>\r\n"
             "RCPT TO:bare@example.com\r\n"
             "RCPT TO:<user@[192.0.2.1]>\r\n"
             "DATA\r\nx\r\n.\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
               "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    msg_t *m = &c.msgs[0];
    STR_EQ(m->from, "Taro@Example.JP");
    cr_assert_eq(m->n_rcpts, 6);
    STR_EQ(m->rcpts[0], "user@c.example");
    STR_EQ(m->rcpts[1], "\"john doe>\"@example.com");
    STR_EQ(m->rcpts[2], "postmaster");
    STR_EQ(m->rcpts[3], "山田@例え.jp");
    STR_EQ(m->rcpts[4], "bare@example.com");
    STR_EQ(m->rcpts[5], "user@[192.0.2.1]");
    close_s(&c);
}

Test(smtp, bad_addresses)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_errors = 50;
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp\r\nMAIL FROM:<a@b>junk\r\nMAIL <a@b>\r\nMAIL FROM:\r\n"
             "MAIL FROM:<a@example.jp>\r\n");
    EXPECT(&c, "501 5.1.7 Error: bad sender address syntax\r\n501 5.1.7 Error: bad sender address syntax\r\n"
               "501 5.5.4 Syntax: MAIL FROM:<address>\r\n501 5.1.7 Error: bad sender address syntax\r\n"
               "250 2.1.0 Ok\r\n");
    feed(&c, "RCPT TO:<>\r\nRCPT TO:<user>\r\nRCPT TO:<a b@example.com>\r\nRCPT TO:<\xff@example.com>\r\n"
             "RCPT TO:<a@example.com> NOTIFY=NEVER\r\nRCPT <a@example.com>\r\n");
    EXPECT(&c, "501 5.1.3 Error: bad recipient address syntax\r\n501 5.1.3 Error: bad recipient address syntax\r\n"
               "501 5.1.3 Error: bad recipient address syntax\r\n501 5.1.3 Error: bad recipient address syntax\r\n"
               "555 5.5.4 Error: unsupported RCPT parameter\r\n501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    close_s(&c);
    /* a path over 256 bytes */
    ready(&c, &l);
    char big[400];
    snprintf(big, sizeof(big), "MAIL FROM:<%0250d@example.jp>\r\n", 0);
    feed(&c, big);
    EXPECT(&c, "501 5.1.7 Error: bad sender address syntax\r\n");
    close_s(&c);
}

Test(smtp, mail_parameters)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_message = 1000;
    ready(&c, &l);
    const struct {
        const char *cmd, *reply;
    } cases[] = {
        {"MAIL FROM:<a@x.jp> SIZE=1000", "250 2.1.0 Ok"},
        {"MAIL FROM:<a@x.jp> SIZE=1001", "552 5.3.4 Error: message size exceeds fixed limit of 1000 bytes"},
        {"MAIL FROM:<a@x.jp> SIZE=99999999999999999999", "552 5.3.4 Error: message size exceeds fixed limit of 1000 bytes"},
        {"MAIL FROM:<a@x.jp> SIZE=", "501 5.5.4 Error: bad SIZE parameter"},
        {"MAIL FROM:<a@x.jp> SIZE=12a", "501 5.5.4 Error: bad SIZE parameter"},
        {"MAIL FROM:<a@x.jp> SIZE", "501 5.5.4 Error: bad SIZE parameter"},
        {"MAIL FROM:<a@x.jp> body=8bitmime", "250 2.1.0 Ok"},
        {"MAIL FROM:<a@x.jp> BODY=7BIT SIZE=10 SMTPUTF8", "250 2.1.0 Ok"},
        {"MAIL FROM:<a@x.jp> BODY=BINARYMIME", "555 5.5.4 Error: BODY=BINARYMIME not supported"},
        {"MAIL FROM:<a@x.jp> BODY=9BIT", "501 5.5.4 Error: bad BODY parameter"},
        {"MAIL FROM:<a@x.jp> SMTPUTF8=yes", "501 5.5.4 Error: SMTPUTF8 takes no value"},
        {"MAIL FROM:<a@x.jp> RET=HDRS", "555 5.5.4 Error: unsupported MAIL parameter"},
        {"MAIL FROM:<a@x.jp> =x", "501 5.5.4 Error: bad MAIL parameter syntax"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[256], want[256];
        snprintf(line, sizeof(line), "%s\r\n", cases[i].cmd);
        snprintf(want, sizeof(want), "%s\r\n", cases[i].reply);
        feed(&c, line);
        STR_EQ(take(&c), want, "%s", cases[i].cmd);
        feed(&c, "RSET\r\n");
        take(&c);
    }
    cr_assert_eq(c.closed, 0, "parameters errors were below the limit");
    close_s(&c);
}

Test(smtp, rset_mid_transaction)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<support@example.com>\r\nRSET\r\nRCPT TO:<x@example.com>\r\n"
             "DATA\r\nRSET x\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n"
               "503 5.5.1 Error: need MAIL command\r\n501 5.5.4 Syntax: RSET\r\n");
    feed(&c, "MAIL FROM:<b@example.jp>\r\nRCPT TO:<billing@example.com>\r\nDATA\r\nhello\r\n.\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    STR_EQ(c.msgs[0].from, "b@example.jp");
    cr_assert_eq(c.msgs[0].n_rcpts, 1);
    STR_EQ(c.msgs[0].rcpts[0], "billing@example.com");
    /* EHLO resets a transaction as RSET does (RFC 5321 4.1.4) */
    smtp_session_data_result(c.s, 250, NULL);
    feed(&c, "MAIL FROM:<c@example.jp>\r\nEHLO again\r\nRCPT TO:<x@example.com>\r\n");
    take(&c);
    feed(&c, "RCPT TO:<x@example.com>\r\n");
    EXPECT(&c, "503 5.5.1 Error: need MAIL command\r\n");
    close_s(&c);
}

/* ---- sequence and syntax errors ---- */

Test(smtp, bad_sequences)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    take(&c);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    EXPECT(&c, "503 5.5.1 Error: send HELO/EHLO first\r\n503 5.5.1 Error: need MAIL command\r\n"
               "503 5.5.1 Error: need MAIL command\r\n");
    feed(&c, "EHLO x\r\n");
    take(&c);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nMAIL FROM:<a@example.jp>\r\nDATA\r\nDATA now\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n554 5.5.1 Error: no valid recipients\r\n"
               "501 5.5.4 Syntax: DATA\r\n");
    cr_assert_eq(c.n_msgs, 0);
    close_s(&c);
}

Test(smtp, unknown_and_empty_commands)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "FOO bar\r\n\r\n   \r\nMAIL:x\r\n");
    EXPECT(&c, "500 5.5.2 Error: command not recognized\r\n500 5.5.2 Error: bad syntax\r\n"
               "500 5.5.2 Error: bad syntax\r\n500 5.5.2 Error: command not recognized\r\n");
    close_s(&c);
}

Test(smtp, bare_lf_and_blanks_in_commands)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    take(&c);
    feed(&c, "EHLO x\nMAIL FROM:<a@example.jp>  \nRCPT\tTO:<b@example.com>\r\nNOOP \t\r\n");
    const char *all = take(&c);
    cr_assert(strstr(all, "250 SMTPUTF8\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n") != NULL, "%s",
              escape(all, strlen(all)));
    close_s(&c);
}

Test(smtp, http_request_closes)
{
    cap_t c;
    smtp_limits_t l = limits();
    open_s(&c, &l);
    take(&c);
    cr_assert_eq(feed(&c, "POST /form HTTP/1.1\r\nHost: 127.0.0.1:2525\r\n\r\nMAIL FROM:<a@b.c>\r\n"), OMNI_ECLOSED);
    EXPECT(&c, "421 4.7.0 mx.example.com Error: this is an SMTP server, closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    close_s(&c);
}

/* ---- long lines and NUL ---- */

Test(smtp, line_length_boundary)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    char line[600];
    /* 512 bytes with CRLF: allowed */
    memset(line, 'x', sizeof(line));
    memcpy(line, "NOOP ", 5);
    memcpy(line + 510, "\r\n", 2);
    cr_assert_eq(feedn(&c, line, 512), 0);
    EXPECT(&c, "250 2.0.0 Ok\r\n");
    /* 512 with a bare LF: allowed */
    memset(line, 'x', sizeof(line));
    memcpy(line, "NOOP ", 5);
    line[511] = '\n';
    feedn(&c, line, 512);
    EXPECT(&c, "250 2.0.0 Ok\r\n");
    /* 513: too long, in one piece and split */
    memset(line, 'x', sizeof(line));
    memcpy(line, "NOOP ", 5);
    memcpy(line + 511, "\r\n", 2);
    feedn(&c, line, 513);
    EXPECT(&c, "500 5.5.2 Error: line too long\r\n");
    for (size_t k = 1; k < 513; k += 37) {
        close_s(&c);
        ready(&c, &l);
        feedn(&c, line, k);
        feedn(&c, line + k, 513 - k);
        STR_EQ(take(&c), "500 5.5.2 Error: line too long\r\n", "split at %zu", k);
    }
    close_s(&c);
}

Test(smtp, huge_line_is_discarded_not_buffered)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    char chunk[4096];
    memset(chunk, 'A', sizeof(chunk));
    for (int i = 0; i < 2560; i++) /* 10 MiB without a line end */
        cr_assert_eq(feedn(&c, chunk, sizeof(chunk)), 0);
    EXPECT(&c, "");
    feed(&c, "\r\nNOOP\r\n");
    EXPECT(&c, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    close_s(&c);
}

Test(smtp, nul_in_command_and_data)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feedn(&c, "NO\0OP\r\n", 7);
    EXPECT(&c, "500 5.5.2 Error: NUL character in command\r\n");
    feedn(&c, "MAIL FROM:<a@b.jp\0>\r\n", 21);
    EXPECT(&c, "500 5.5.2 Error: NUL character in command\r\n");
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    feedn(&c, "a\0b\r\n.\r\nNOOP\r\n", 14);
    EXPECT(&c, "554 5.6.0 Error: message contains NUL characters\r\n250 2.0.0 Ok\r\n");
    cr_assert_eq(c.n_msgs, 0);
    /* the session goes on */
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nok\r\n.\r\n");
    cr_assert_eq(c.n_msgs, 1);
    close_s(&c);
}

/* ---- DATA framing ---- */

static void one_message(const char *body, size_t blen, const char *want, size_t wlen)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    feedn(&c, body, blen);
    cr_assert_eq(c.n_msgs, 1, "no message for \"%s\"", escape(body, blen));
    cr_assert_eq(c.msgs[0].len, wlen, "len %zu want %zu for \"%s\"", c.msgs[0].len, wlen, escape(body, blen));
    cr_assert(!memcmp(c.msgs[0].data, want, wlen), "got \"%s\" want \"%s\"", escape(c.msgs[0].data, c.msgs[0].len),
              escape(want, wlen));
    close_s(&c);
}

#define ONE(body, want) one_message(body, sizeof(body) - 1, want, sizeof(want) - 1)

Test(smtp, dot_unstuffing)
{
    ONE("..leading\r\n.\r\n", ".leading\r\n");
    ONE("...\r\n.\r\n", "..\r\n");
    ONE("..\r\n.\r\n", ".\r\n");
    ONE("a\r\n.b\r\n.\r\n", "a\r\nb\r\n");
    ONE("a.\r\n. \r\n.\r\n", "a.\r\n \r\n");
    ONE("mid . dot\r\n.\r\n", "mid . dot\r\n");
}

Test(smtp, line_endings_in_data)
{
    /* bare LF ends a line and becomes CRLF */
    ONE("a\nb\r\n.\r\n", "a\r\nb\r\n");
    /* "\n.\n" and ".\n" are not the end (SMTP smuggling) */
    ONE("x\n.\nmore\r\n.\r\n", "x\r\n\r\nmore\r\n");
    ONE("x\r\n.\nmore\r\n.\r\n", "x\r\n\r\nmore\r\n");
    ONE("x\n.\r\nmore\r\n.\r\n", "x\r\n\r\nmore\r\n");
    ONE("x\r.\r\nmore\r\n.\r\n", "x\r.\r\nmore\r\n");
    /* bare CRs are kept as they are */
    ONE("a\rb\r\r\n.\r\n", "a\rb\r\r\n");
    ONE(".\ra\r\n.\r\n", "\ra\r\n");
    ONE(".\r\r\n.\r\n", "\r\r\n");
    ONE("\r\r\n.\r\n", "\r\r\n");
    /* an empty line right before the end */
    ONE("a\r\n\r\n.\r\n", "a\r\n\r\n");
}

Test(smtp, end_marker_across_every_split)
{
    static const char body[] = "Subject: x\r\n\r\n..a\r\n.\r\nNOOP\r\n";
    const size_t n = sizeof(body) - 1;
    for (size_t k = 0; k <= n; k++) {
        for (size_t k2 = k; k2 <= n; k2++) {
            cap_t c;
            smtp_limits_t l = limits();
            ready(&c, &l);
            c.sync_all = 250;
            feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
            take(&c);
            feedn(&c, body, k);
            feedn(&c, body + k, k2 - k);
            feedn(&c, body + k2, n - k2);
            cr_assert_eq(c.n_msgs, 1, "split %zu/%zu", k, k2);
            STR_EQ(c.msgs[0].data, "Subject: x\r\n\r\n.a\r\n", "split %zu/%zu", k, k2);
            STR_EQ(take(&c), "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n", "split %zu/%zu", k, k2);
            close_s(&c);
        }
    }
}

/* ---- size limits ---- */

Test(smtp, message_size_enforced_while_receiving)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_message = 64;
    ready(&c, &l);
    /* exactly 64 bytes after unstuffing: 30 + CRLF + "." unstuffed 30 + CRLF */
    char body[256];
    snprintf(body, sizeof(body), "%030d\r\n..%029d\r\n.\r\n", 0, 0);
    feed(&c, "MAIL FROM:<a@example.jp> SIZE=64\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    feed(&c, body);
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.msgs[0].len, 64);
    smtp_session_data_result(c.s, 250, NULL);
    take(&c);
    /* 65: too big, and everything up to the final "." is still read as message text */
    snprintf(body, sizeof(body), "%030d\r\n..%030d\r\nQUIT\r\n.\r\nNOOP\r\n", 0, 0);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    cr_assert_eq(feed(&c, body), 0);
    EXPECT(&c, "552 5.3.4 Error: message size exceeds fixed limit of 64 bytes\r\n250 2.0.0 Ok\r\n");
    cr_assert_eq(c.n_msgs, 1);
    /* bare LFs count as the CRLFs they become */
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    for (int i = 0; i < 32; i++) feed(&c, "x\n");
    feed(&c, "\r\n.\r\n");
    EXPECT(&c, "552 5.3.4 Error: message size exceeds fixed limit of 64 bytes\r\n");
    cr_assert_eq(c.closed, 0);
    close_s(&c);
}

Test(smtp, big_message_streams)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_message = 4u << 20;
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    take(&c);
    char line[1002];
    memset(line, 'y', 998);
    memcpy(line + 998, "\r\n", 2);
    size_t total = 0;
    while (total + 1000 <= (4u << 20)) {
        feedn(&c, line, 1000);
        total += 1000;
    }
    feed(&c, ".\r\n");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.msgs[0].len, total);
    close_s(&c);
}

Test(smtp, size_errors_do_not_count)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_message = 100;
    l.max_recipients = 1;
    ready(&c, &l);
    for (int i = 0; i < 15; i++) {
        feed(&c, "MAIL FROM:<a@example.jp> SIZE=101\r\n");
        EXPECT(&c, "552 5.3.4 Error: message size exceeds fixed limit of 100 bytes\r\n");
    }
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\n");
    take(&c);
    for (int i = 0; i < 15; i++) {
        feed(&c, "RCPT TO:<c@example.com>\r\n");
        EXPECT(&c, "452 4.5.3 Error: too many recipients\r\n");
    }
    cr_assert_eq(c.closed, 0);
    close_s(&c);
}

/* ---- recipients ---- */

Test(smtp, recipient_limit)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_recipients = 3;
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\n"
             "RCPT TO:<r3@example.com>\r\nRCPT TO:<r4@example.com>\r\nDATA\r\nx\r\n.\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
               "452 4.5.3 Error: too many recipients\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.msgs[0].n_rcpts, 3);
    STR_EQ(c.msgs[0].rcpts[2], "r3@example.com");
    close_s(&c);
}

Test(smtp, rcpt_hook)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<busy@example.com>\r\n"
             "RCPT TO:<weird@example.com>\r\nDATA\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n550 5.1.1 No such user here\r\n450 4.2.1 Mailbox busy  Evil: injected\r\n"
               "550 5.1.1 Error: recipient address rejected\r\n554 5.5.1 Error: no valid recipients\r\n");
    feed(&c, "RCPT TO:<support@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert_eq(c.msgs[0].n_rcpts, 1);
    STR_EQ(c.msgs[0].rcpts[0], "support@example.com");
    close_s(&c);
}

/* ---- pipelining and verdicts ---- */

Test(smtp, pipelined_hold_and_release)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\none\r\n.\r\n"
             "MAIL FROM:<c@example.jp>\r\nRCPT TO:<d@example.com>\r\nDATA\r\ntw");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 1);
    cr_assert(smtp_session_waiting(c.s));
    /* more input while waiting is held, not answered */
    cr_assert_eq(feed(&c, "o\r\n.\r\nQUIT\r\n"), 0);
    EXPECT(&c, "");
    cr_assert_eq(c.n_msgs, 1);
    c.pending = 0;
    smtp_session_data_result(c.s, 250, NULL);
    EXPECT(&c, "250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    cr_assert_eq(c.n_msgs, 2);
    STR_EQ(c.msgs[1].data, "two\r\n");
    STR_EQ(c.msgs[1].from, "c@example.jp");
    cr_assert_eq(c.closed, 0);
    c.pending = 0;
    smtp_session_data_result(c.s, 554, "5.7.1 Refused by policy");
    EXPECT(&c, "554 5.7.1 Refused by policy\r\n221 2.0.0 mx.example.com closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    close_s(&c);
}

Test(smtp, verdict_inside_message_callback)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    c.sync_all = 250;
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\none\r\n.\r\n"
             "MAIL FROM:<c@example.jp>\r\nRCPT TO:<d@example.com>\r\nDATA\r\ntwo\r\n.\r\nNOOP\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n"
               "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n"
               "250 2.0.0 Ok\r\n");
    cr_assert_eq(c.n_msgs, 2);
    close_s(&c);
}

Test(smtp, reentrant_callbacks)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    /* a verdict repeated from inside send is ignored */
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n");
    take(&c);
    c.verdict_in_send = 1;
    smtp_session_data_result(c.s, 250, NULL);
    c.verdict_in_send = 0;
    EXPECT(&c, "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n");
    cr_assert(!smtp_session_waiting(c.s));
    /* a shutdown from inside the message callback ends the session there */
    c.pending = 0;
    c.shutdown_in_msg = 1;
    cr_assert_eq(feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\ny\r\n.\r\nNOOP\r\n"),
                 OMNI_ECLOSED);
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
               "421 4.3.2 mx.example.com Service shutting down, closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    cr_assert(!smtp_session_waiting(c.s));
    smtp_session_data_result(c.s, 250, NULL);
    EXPECT(&c, "");
    close_s(&c);
}

Test(smtp, temporary_failure_then_retry)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    const char *tx = "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: retry\r\n\r\nbody\r\n.\r\n";
    feed(&c, tx);
    take(&c);
    smtp_session_data_result(c.s, 451, "broker unavailable");
    EXPECT(&c, "451 4.3.0 broker unavailable\r\n");
    c.pending = 0;
    feed(&c, tx);
    EXPECT(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    smtp_session_data_result(c.s, 250, NULL);
    EXPECT(&c, "250 2.0.0 Ok: queued\r\n");
    cr_assert_eq(c.n_msgs, 2);
    STR_EQ(c.msgs[0].data, c.msgs[1].data);
    close_s(&c);
}

Test(smtp, verdict_codes_and_text)
{
    const struct {
        int code;
        const char *text, *want;
    } cases[] = {
        {250, NULL, "250 2.0.0 Ok: queued\r\n"},
        {250, "", "250 2.0.0 Ok: queued\r\n"},
        {250, "2.6.0 queued as abc", "250 2.6.0 queued as abc\r\n"},
        {451, NULL, "451 4.3.0 Error: temporary failure, try again later\r\n"},
        {451, "5.0.0 mismatch", "451 4.3.0 5.0.0 mismatch\r\n"},
        {554, NULL, "554 5.6.0 Error: message refused\r\n"},
        {550, "5.7.1 spam\r\n250 fake", "550 5.7.1 spam  250 fake\r\n"},
        {550, "5.7.1", "550 5.7.1 Error: message refused\r\n"},
        {0, NULL, "451 4.3.0 Error: temporary failure, try again later\r\n"},
        {354, "x", "451 4.3.0 x\r\n"},
        {999, "x", "451 4.3.0 x\r\n"},
        {451, "日本語", "451 4.3.0          \r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cap_t c;
        smtp_limits_t l = limits();
        ready(&c, &l);
        feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n");
        take(&c);
        smtp_session_data_result(c.s, cases[i].code, cases[i].text);
        STR_EQ(take(&c), cases[i].want, "case %zu", i);
        close_s(&c);
    }
    /* a long text is cut, the line still ends in CRLF */
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n");
    take(&c);
    char longtext[2000];
    memset(longtext, 'z', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    smtp_session_data_result(c.s, 250, longtext);
    const char *r = take(&c);
    cr_assert_lt(strlen(r), 512);
    cr_assert(!strncmp(r, "250 2.0.0 zzz", 13));
    STR_EQ(r + strlen(r) - 2, "\r\n");
    close_s(&c);
}

Test(smtp, held_input_bounded)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.max_pending = 1024;
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n");
    take(&c);
    char noops[1020];
    for (size_t i = 0; i < sizeof(noops); i += 6) memcpy(noops + i, "NOOP\r\n", 6);
    cr_assert_eq(feedn(&c, noops, 1020), 0); /* 1020 held: within the bound */
    EXPECT(&c, "");
    cr_assert_eq(feedn(&c, "NOOP\r\n", 6), OMNI_ECLOSED);
    EXPECT(&c, "421 4.7.0 mx.example.com Error: too much pipelined input, closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    /* a late verdict is ignored */
    smtp_session_data_result(c.s, 250, NULL);
    EXPECT(&c, "");
    cr_assert_eq(feed(&c, "NOOP\r\n"), OMNI_ECLOSED);
    /* the pending message's data is still readable until destroy */
    STR_EQ(c.msgs[0].data, "x\r\n");
    close_s(&c);
}

Test(smtp, held_input_released_in_full)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n");
    take(&c);
    for (int i = 0; i < 100; i++) feed(&c, "NOOP\r\n");
    EXPECT(&c, "");
    smtp_session_data_result(c.s, 250, NULL);
    const char *r = take(&c);
    cr_assert_eq(strlen(r), strlen("250 2.0.0 Ok: queued\r\n") + 100 * strlen("250 2.0.0 Ok\r\n"));
    feed(&c, "NOOP\r\n");
    EXPECT(&c, "250 2.0.0 Ok\r\n");
    close_s(&c);
}

/* ---- QUIT, errors, shutdown ---- */

Test(smtp, quit_closes_once)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    cr_assert_eq(feed(&c, "QUIT\r\nNOOP\r\n"), OMNI_ECLOSED);
    EXPECT(&c, "221 2.0.0 mx.example.com closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    cr_assert_eq(feed(&c, "NOOP\r\n"), OMNI_ECLOSED);
    smtp_session_shutdown(c.s, "late");
    EXPECT(&c, "");
    cr_assert_eq(c.closed, 1);
    close_s(&c);
}

Test(smtp, error_limit)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(feed(&c, "BOGUS\r\n"), 0);
        EXPECT(&c, "500 5.5.2 Error: command not recognized\r\n");
    }
    cr_assert_eq(feed(&c, "RCPT TO:<a@b.c>\r\nNOOP\r\n"), OMNI_ECLOSED);
    EXPECT(&c, "503 5.5.1 Error: need MAIL command\r\n421 4.7.0 mx.example.com Error: too many errors, closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    close_s(&c);

    l.max_errors = 2;
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<nobody@example.com>\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n550 5.1.1 No such user here\r\n550 5.1.1 No such user here\r\n"
               "421 4.7.0 mx.example.com Error: too many errors, closing connection\r\n");
    close_s(&c);
}

Test(smtp, shutdown)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    smtp_session_shutdown(c.s, "4.4.2 Error: timeout exceeded");
    EXPECT(&c, "421 4.4.2 mx.example.com Error: timeout exceeded, closing connection\r\n");
    cr_assert_eq(c.closed, 1);
    close_s(&c);
    ready(&c, &l);
    feed(&c, "MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.com>\r\nDATA\r\npartial");
    take(&c);
    smtp_session_shutdown(c.s, NULL);
    EXPECT(&c, "421 4.3.2 mx.example.com Service shutting down, closing connection\r\n");
    cr_assert_eq(feed(&c, "\r\n.\r\n"), OMNI_ECLOSED);
    cr_assert_eq(c.n_msgs, 0);
    close_s(&c);
}

/* ---- STARTTLS ---- */

Test(smtp, starttls)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.starttls_available = 1;
    ready(&c, &l);
    feed(&c, "HELP\r\n");
    EXPECT(&c, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS\r\n");
    feed(&c, "MAIL FROM:<a@example.jp>\r\nSTARTTLS\r\nRSET\r\n");
    EXPECT(&c, "250 2.1.0 Ok\r\n503 5.5.1 Error: MAIL transaction in progress\r\n250 2.0.0 Ok\r\n");
    /* plaintext pipelined after STARTTLS is dropped (CVE-2011-0411) */
    feed(&c, "STARTTLS extra\r\nSTARTTLS\r\nMAIL FROM:<evil@example.jp>\r\n");
    EXPECT(&c, "501 5.5.4 Syntax: STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n");
    cr_assert_eq(c.tls, 1);
    /* the client starts over with EHLO */
    feed(&c, "MAIL FROM:<a@example.jp>\r\n");
    EXPECT(&c, "503 5.5.1 Error: send HELO/EHLO first\r\n");
    feed(&c, "EHLO client\r\nSTARTTLS\r\n");
    EXPECT(&c, "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n503 5.5.1 Error: TLS already active\r\n");
    close_s(&c);
}

Test(smtp, starttls_not_offered)
{
    cap_t c;
    smtp_limits_t l = limits();
    ready(&c, &l);
    feed(&c, "STARTTLS\r\nNOOP\r\n");
    EXPECT(&c, "502 5.5.1 Error: command not implemented\r\n250 2.0.0 Ok\r\n");
    cr_assert_eq(c.tls, 0);
    close_s(&c);
    /* advertised in the limits but the program cannot do it: not offered */
    smtp_callbacks_t cb = {.user = &c, .send = on_send, .message = on_message};
    memset(&c, 0, sizeof(c));
    l.starttls_available = 1;
    cr_assert_eq(smtp_session_new(&l, &cb, &c.s), 0);
    feed(&c, "EHLO x\r\nSTARTTLS\r\n");
    take(&c);
    cr_assert(strstr(c.out.p, "STARTTLS\r\n250") == NULL);
    cr_assert(strstr(c.out.p, "502 5.5.1") != NULL);
    close_s(&c);
}

/* ---- whole sessions under every split ---- */

/* A pipelined session touching most paths; verdicts come from cap_t.codes. */
static const char SCRIPT[] =
    "EHLO client.example.jp\r\n"
    "MAIL FROM:<taro@example.jp> SIZE=120 BODY=8BITMIME\r\n"
    "RCPT TO:<support@example.com>\r\n"
    "RCPT TO:<nobody@example.com>\r\n"
    "RCPT TO:<billing@example.com>\r\n"
    "DATA\r\n"
    "Subject: one\r\n\r\n..dot\r\n.x\r\nbare\nline\r\n\r\n.\r\n"
    "MAIL FROM:<>\r\n"
    "RCPT TO:<support@example.com>\r\n"
    "DATA\r\n"
    "x\n.\nnot the end\r\n.\r\n"
    "MAIL FROM:<>\r\nRCPT TO:<support@example.com>\r\nDATA\r\nretry\r\n.\r\n"
    "RSET\r\nNOOP\r\nVRFY x\r\nBOGUS\r\nMAIL FROM:<b@example.jp> SIZE=99999999999\r\n"
    "MAIL FROM:<b@example.jp>\r\nRCPT TO:<c@example.com>\r\nDATA\r\nnul\0here\r\n.\r\n"
    "NO\0OP\r\n"
    "QUIT\r\nNOOP\r\n";

static const int CODES[] = {250, 451, 250, 554};
static const int SYNC[] = {0, 1, 0, 0};

static char *run_chunks(const char *p, size_t n, const size_t *cuts, size_t n_cuts, int sync)
{
    cap_t c;
    smtp_limits_t l = limits();
    l.starttls_available = 1;
    open_s(&c, &l);
    c.codes = CODES;
    c.n_codes = 4;
    c.sync = sync ? SYNC : NULL;
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts && !c.tls; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        smtp_session_feed(c.s, p + at, end - at);
        at = end;
        while (c.pending) verdict(&c);
    }
    while (c.pending) verdict(&c);
    char *log = strdup(c.log.p);
    close_s(&c);
    return log;
}

static const char *WANT_LOG =
    "220 mx.example.com ESMTP omni-email\r\n"
    "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
    "250-STARTTLS\r\n250 SMTPUTF8\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user here\r\n250 2.1.5 Ok\r\n"
    "354 End data with <CR><LF>.<CR><LF>\r\n"
    "[MSG <taro@example.jp> support@example.com billing@example.com 39:Subject: one\r\n\r\n.dot\r\nx\r\nbare\r\nline\r\n\r\n]\n"
    "250 2.0.0 Ok: queued\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "[MSG <> support@example.com 18:x\r\n\r\nnot the end\r\n]\n"
    "451 4.3.0 broker unavailable\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "[MSG <> support@example.com 7:retry\r\n]\n"
    "250 2.0.0 Ok: queued\r\n"
    "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
    "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    "500 5.5.2 Error: command not recognized\r\n"
    "552 5.3.4 Error: message size exceeds fixed limit of 26214400 bytes\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "554 5.6.0 Error: message contains NUL characters\r\n"
    "500 5.5.2 Error: NUL character in command\r\n"
    "221 2.0.0 mx.example.com closing connection\r\n[CLOSE]\n";

Test(smtp, pipelined_session_transcript)
{
    char *whole = run_chunks(SCRIPT, sizeof(SCRIPT) - 1, NULL, 0, 0);
    STR_EQ(whole, WANT_LOG);
    free(whole);
    whole = run_chunks(SCRIPT, sizeof(SCRIPT) - 1, NULL, 0, 1);
    STR_EQ(whole, WANT_LOG);
    free(whole);
}

Test(smtp, byte_by_byte_identical)
{
    const size_t n = sizeof(SCRIPT) - 1;
    size_t *cuts = malloc(n * sizeof(*cuts));
    for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
    for (int sync = 0; sync < 2; sync++) {
        char *log = run_chunks(SCRIPT, n, cuts, n - 1, sync);
        STR_EQ(log, WANT_LOG, "byte by byte, sync %d", sync);
        free(log);
    }
    free(cuts);
}

Test(smtp, every_split_identical)
{
    const size_t n = sizeof(SCRIPT) - 1;
    for (size_t k = 0; k <= n; k++) {
        size_t cut = k;
        char *log = run_chunks(SCRIPT, n, &cut, 1, (int)(k & 1));
        STR_EQ(log, WANT_LOG, "split at %zu", k);
        free(log);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

Test(smtp, random_chunks_identical)
{
    const size_t n = sizeof(SCRIPT) - 1;
    size_t cuts[1024];
    for (int round = 0; round < 300; round++) {
        size_t nc = 0, at = 0;
        for (;;) {
            at += 1 + rnd() % (round % 3 == 0 ? 4 : 64);
            if (at >= n)
                break;
            cuts[nc++] = at;
        }
        char *log = run_chunks(SCRIPT, n, cuts, nc, (int)(rnd() & 1));
        STR_EQ(log, WANT_LOG, "round %d", round);
        free(log);
    }
}

/* STARTTLS drops the rest of the feed: with the program switching to TLS at the callback, the
 * outcome is the same wherever the input was split. */
Test(smtp, starttls_every_split)
{
    static const char script[] = "EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@example.jp>\r\n";
    const size_t n = sizeof(script) - 1;
    char *want = run_chunks(script, n, NULL, 0, 0);
    cr_assert(strstr(want, "220 2.0.0 Ready to start TLS\r\n[TLS]\n") != NULL, "%s", escape(want, strlen(want)));
    cr_assert(strstr(want, "[TLS]\n") + 6 == want + strlen(want), "%s", escape(want, strlen(want)));
    for (size_t k = 0; k <= n; k++) {
        size_t cut = k;
        char *log = run_chunks(script, n, &cut, 1, 0);
        STR_EQ(log, want, "split at %zu", k);
        free(log);
    }
    free(want);
}
