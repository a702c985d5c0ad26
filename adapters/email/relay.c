/* SMTP client session for omni-email's outbound mail: greeting, EHLO/HELO and keywords, one
 * transaction at a time (pipelined when the relay allows it), dot-stuffing and reply parsing. */
#include "relay.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the session stands: which reply comes next. ST_MAIL..ST_DATA are walked reply by reply
 * in both modes; pipelined, the commands were all sent up front, else one per reply. */
enum {
    ST_GREET, /* waiting for the 220 greeting */
    ST_EHLO,
    ST_HELO,
    ST_IDLE,  /* no reply expected */
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_BODY,  /* the final reply after the body's "." */
    ST_ABORT, /* a lone "." after a 354 we could not use (RFC 2920 3.1) */
    ST_RSET,
    ST_QUIT,
    ST_CLOSED,
};

/* EHLO keywords we record; the rest are ignored, so a chatty server costs no memory. */
static const char *const KEYWORDS[] = {"PIPELINING", "SIZE",     "8BITMIME", "STARTTLS", "AUTH",
                                       "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING"};
enum { K_PIPELINING = 1u << 0, K_SIZE = 1u << 1, K_8BITMIME = 1u << 2 };
#define N_KEYWORDS (sizeof(KEYWORDS) / sizeof(KEYWORDS[0]))

#define REPLY_TEXT_MAX 512 /* one reply's text kept for done; longer texts are cut */

typedef struct {
    char *from;
    char **rcpts;
    size_t n;
    char *body; /* dot-stuffed, ending in ".\r\n" */
    size_t body_len;
    size_t size; /* the message as the server will count it: unstuffed, without ".\r\n" */
    int eightbit;
    int pipelined;
    size_t next;     /* the recipient whose reply comes next */
    size_t accepted; /* recipients the server took */
    int mail_code;   /* MAIL's refusal (pipelined: decided at DATA's reply), 0 = accepted */
    char mail_text[REPLY_TEXT_MAX + 1];
    int first_code; /* the first recipient refusal */
    char first_text[REPLY_TEXT_MAX + 1];
    char refused[RELAY_TEXT_MAX + 1]; /* "<a> 550 5.1.1 text, <b> ..." */
    size_t refused_len;
    int refused_cut;
} tx_t;

struct relay_session {
    relay_callbacks_t cb;
    char helo[256];
    int state;
    int quit_wanted;
    unsigned keys; /* bit i: KEYWORDS[i] advertised */
    size_t max_size;
    tx_t *tx; /* submitted and done not yet called */

    /* the reply being read */
    char line[RELAY_MAX_LINE + 1];
    size_t line_len;
    int code;    /* of the reply's first line; 0 = no line of it read yet */
    int nlines;  /* lines of the reply read so far */
    char text[REPLY_TEXT_MAX + 1];
    size_t text_len;
};

/* ---- small helpers ---- */

static int upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static int ieqn(const char *a, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (upper((unsigned char)a[i]) != upper((unsigned char)lit[i]))
            return 0;
    return i == n && !lit[i];
}

/* Appends printable ASCII, everything else as a space, cutting at cap: a reply's text ends up in
 * logs and stream events, where a CR or a terminal escape from a hostile relay must not survive. */
static void append_clean(char *dst, size_t *len, size_t cap, const char *src, size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[(*len)++] = (c < 0x20 || c >= 0x7f) ? ' ' : (char)c;
    }
    dst[*len] = '\0';
}

static void out(relay_session_t *s, const char *buf, size_t len)
{
    s->cb.send(s->cb.user, buf, len);
}

static void cmd(relay_session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd(relay_session_t *s, const char *fmt, ...)
{
    char buf[512 + 16]; /* addresses are at most RELAY_MAX_ADDR, helo 255: always fits */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        out(s, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void tx_free(tx_t *t)
{
    if (!t)
        return;
    free(t->from);
    if (t->rcpts)
        for (size_t i = 0; i < t->n; i++) free(t->rcpts[i]);
    free(t->rcpts);
    free(t->body);
    free(t);
}

/* Ends the pending message. The tx is freed before done runs, so done may submit the next one;
 * the caller must have set the state already and must not touch s->tx afterwards. */
static void finish(relay_session_t *s, int code, const char *text, const char *refused)
{
    char buf[RELAY_TEXT_MAX + 1];
    size_t len = 0;
    buf[0] = '\0';
    append_clean(buf, &len, RELAY_TEXT_MAX, text, strlen(text));
    if (refused && *refused) {
        append_clean(buf, &len, RELAY_TEXT_MAX, "; refused: ", 11);
        append_clean(buf, &len, RELAY_TEXT_MAX, refused, strlen(refused));
    }
    tx_free(s->tx);
    s->tx = NULL;
    s->cb.done(s->cb.user, code, buf);
}

static void start_next(relay_session_t *s);

/* Ends the session for good: a pending message gets done(code, text) (before close, so the caller
 * has the verdict when it tears the connection down), then close once. */
static void end_session(relay_session_t *s, int code, const char *text, int call_close)
{
    int was_closed = s->state == ST_CLOSED;
    s->state = ST_CLOSED; /* first, so a submit from done is refused */
    if (s->tx)
        finish(s, code, text, NULL);
    if (call_close && !was_closed && s->cb.close)
        s->cb.close(s->cb.user);
}

/* A server we cannot follow any more: the message is not known to be delivered, so it stays the
 * caller's to retry (451), and the connection goes. */
static void protocol_error(relay_session_t *s, const char *why)
{
    char t[128];
    snprintf(t, sizeof(t), "4.4.0 protocol error: %s", why);
    end_session(s, 451, t, 1);
}

/* ---- the transaction ---- */

static void send_quit(relay_session_t *s)
{
    s->state = ST_QUIT;
    cmd(s, "QUIT\r\n");
}

static void send_mail(relay_session_t *s, char *buf, size_t cap)
{
    tx_t *t = s->tx;
    size_t n = (size_t)snprintf(buf, cap, "MAIL FROM:<%s>", t->from);
    if (s->keys & K_SIZE)
        n += (size_t)snprintf(buf + n, cap - n, " SIZE=%zu", t->size);
    if (t->eightbit)
        n += (size_t)snprintf(buf + n, cap - n, " BODY=8BITMIME");
    snprintf(buf + n, cap - n, "\r\n");
}

/* At ST_IDLE: the next message if one waits (after the local checks that need the keywords), else
 * QUIT if asked for. Loops because a local refusal's done may submit another message. */
static void start_next(relay_session_t *s)
{
    while (s->state == ST_IDLE && s->tx) {
        tx_t *t = s->tx;
        if (t->eightbit && !(s->keys & K_8BITMIME)) {
            /* RFC 6152 3: without 8BITMIME, 8-bit data must not be sent; converting to 7-bit is
             * compose's job, not the transport's. */
            finish(s, 554, "5.6.3 8-bit message and the relay has no 8BITMIME", NULL);
            continue;
        }
        if ((s->keys & K_SIZE) && s->max_size && t->size > s->max_size) {
            char why[128];
            snprintf(why, sizeof(why), "5.3.4 message size %zu exceeds the relay's limit of %zu bytes", t->size,
                     s->max_size);
            finish(s, 552, why, NULL);
            continue;
        }
        t->pipelined = (s->keys & K_PIPELINING) != 0;
        char line[600];
        send_mail(s, line, sizeof(line));
        s->state = ST_MAIL;
        if (!t->pipelined) {
            out(s, line, strlen(line));
            return;
        }
        /* RFC 2920: MAIL, every RCPT and DATA in one write; the replies come back in order. */
        size_t cap = strlen(line) + t->n * (RELAY_MAX_ADDR + 16) + 8, len = 0;
        char *b = malloc(cap);
        if (!b) {
            /* unable to even build the commands: leave nothing half-sent */
            s->state = ST_IDLE;
            finish(s, 451, "4.3.0 out of memory", NULL);
            continue;
        }
        len += (size_t)snprintf(b, cap, "%s", line);
        for (size_t i = 0; i < t->n; i++) len += (size_t)snprintf(b + len, cap - len, "RCPT TO:<%s>\r\n", t->rcpts[i]);
        len += (size_t)snprintf(b + len, cap - len, "DATA\r\n");
        out(s, b, len);
        free(b);
        return;
    }
    if (s->state == ST_IDLE && s->quit_wanted)
        send_quit(s);
}

/* The recipient list for done's text, bounded: a relay refusing 1000 recipients must not grow it. */
static void note_refusal(tx_t *t, const char *rcpt, int code, const char *text)
{
    if (!t->first_code) {
        t->first_code = code;
        snprintf(t->first_text, sizeof(t->first_text), "%s", text);
    }
    if (t->refused_cut)
        return;
    char item[REPLY_TEXT_MAX + RELAY_MAX_ADDR + 16];
    int n = snprintf(item, sizeof(item), "%s<%s> %d %s", t->refused_len ? ", " : "", rcpt, code, text);
    if (n < 0)
        return;
    if (t->refused_len + (size_t)n > RELAY_TEXT_MAX - 4) {
        /* room for " ..." was kept, so the reader knows the list is incomplete */
        memcpy(t->refused + t->refused_len, " ...", 5);
        t->refused_len += 4;
        t->refused_cut = 1;
        return;
    }
    memcpy(t->refused + t->refused_len, item, (size_t)n + 1);
    t->refused_len += (size_t)n;
}

/* After the last RCPT reply, not pipelined: DATA if anyone was accepted, else RSET and done. */
static void after_rcpts(relay_session_t *s)
{
    tx_t *t = s->tx;
    if (t->accepted) {
        s->state = ST_DATA;
        cmd(s, "DATA\r\n");
        return;
    }
    s->state = ST_RSET;
    cmd(s, "RSET\r\n");
    char first[REPLY_TEXT_MAX + 1];
    snprintf(first, sizeof(first), "%s", t->first_text);
    int code = t->first_code;
    char refused[RELAY_TEXT_MAX + 1];
    snprintf(refused, sizeof(refused), "%s", t->refused);
    finish(s, code, first, refused);
}

static int cls(int code)
{
    return code / 100;
}

static void on_reply(relay_session_t *s, int code, const char *text)
{
    tx_t *t = s->tx;
    char refused[RELAY_TEXT_MAX + 1];

    /* RFC 5321 3.8: 421 may answer anything; the server is going away, the message is not sent. */
    if (code == 421 && s->state != ST_QUIT) {
        end_session(s, 421, text, 1);
        return;
    }
    switch (s->state) {
    case ST_GREET:
        if (code == 220) {
            s->state = ST_EHLO;
            s->keys = 0;
            s->max_size = 0;
            cmd(s, "EHLO %s\r\n", s->helo);
        } else if (cls(code) == 4 || cls(code) == 5) {
            /* RFC 5321 3.1: a 554 greeting still takes QUIT. */
            s->quit_wanted = 1;
            send_quit(s);
            if (t)
                finish(s, code, text, NULL);
        } else {
            protocol_error(s, "bad greeting");
        }
        return;
    case ST_EHLO:
    case ST_HELO:
        if (cls(code) == 2) {
            if (s->state == ST_HELO)
                s->keys = 0;
            s->state = ST_IDLE;
            start_next(s);
        } else if (s->state == ST_EHLO && (code == 500 || code == 502)) {
            /* an RFC 821 server: no extensions at all */
            s->keys = 0;
            s->max_size = 0;
            s->state = ST_HELO;
            cmd(s, "HELO %s\r\n", s->helo);
        } else if (cls(code) == 4 || cls(code) == 5) {
            s->quit_wanted = 1;
            send_quit(s);
            if (t)
                finish(s, code, text, NULL);
        } else {
            protocol_error(s, "bad reply to EHLO/HELO");
        }
        return;
    case ST_IDLE:
    case ST_CLOSED:
        protocol_error(s, "unexpected reply");
        return;
    case ST_MAIL:
        if (cls(code) != 2 && cls(code) != 4 && cls(code) != 5) {
            protocol_error(s, "bad reply to MAIL");
            return;
        }
        if (cls(code) != 2) {
            if (!t->pipelined) {
                /* no transaction was opened: nothing to RSET */
                s->state = ST_IDLE;
                finish(s, code, text, NULL);
                start_next(s);
                return;
            }
            t->mail_code = code;
            snprintf(t->mail_text, sizeof(t->mail_text), "%s", text);
        }
        s->state = ST_RCPT;
        t->next = 0;
        if (!t->pipelined)
            cmd(s, "RCPT TO:<%s>\r\n", t->rcpts[0]);
        return;
    case ST_RCPT:
        if (cls(code) != 2 && cls(code) != 4 && cls(code) != 5) {
            protocol_error(s, "bad reply to RCPT");
            return;
        }
        if (!t->mail_code) {
            if (cls(code) == 2)
                t->accepted++;
            else
                note_refusal(t, t->rcpts[t->next], code, text);
        }
        t->next++;
        if (t->pipelined) {
            if (t->next == t->n)
                s->state = ST_DATA;
        } else if (t->next < t->n) {
            cmd(s, "RCPT TO:<%s>\r\n", t->rcpts[t->next]);
        } else {
            after_rcpts(s);
        }
        return;
    case ST_DATA:
        if (code != 354 && cls(code) != 4 && cls(code) != 5) {
            protocol_error(s, "bad reply to DATA");
            return;
        }
        if (code == 354 && t->accepted && !t->mail_code) {
            s->state = ST_BODY;
            out(s, t->body, t->body_len);
            return;
        }
        snprintf(refused, sizeof(refused), "%s", t->refused);
        if (code == 354) {
            /* pipelined and nobody accepted, yet the server wants data: RFC 2920 3.1 says end it
             * with a lone dot, which it must refuse for lack of recipients */
            s->state = ST_ABORT;
            cmd(s, ".\r\n");
        } else if (t->mail_code) {
            s->state = ST_IDLE;
        } else {
            s->state = ST_RSET;
            cmd(s, "RSET\r\n");
        }
        if (t->mail_code) {
            char mt[REPLY_TEXT_MAX + 1];
            snprintf(mt, sizeof(mt), "%s", t->mail_text);
            finish(s, t->mail_code, mt, NULL);
        } else if (!t->accepted) {
            char ft[REPLY_TEXT_MAX + 1];
            snprintf(ft, sizeof(ft), "%s", t->first_text);
            finish(s, t->first_code, ft, refused);
        } else {
            finish(s, code, text, refused);
        }
        start_next(s);
        return;
    case ST_BODY:
        if (cls(code) != 2 && cls(code) != 4 && cls(code) != 5) {
            protocol_error(s, "bad reply to the message");
            return;
        }
        /* the final reply ends the transaction either way (RFC 5321 4.1.1.4): no RSET needed */
        s->state = ST_IDLE;
        snprintf(refused, sizeof(refused), "%s", t->refused);
        finish(s, code, text, refused);
        start_next(s);
        return;
    case ST_ABORT:
        s->state = ST_RSET;
        cmd(s, "RSET\r\n");
        return;
    case ST_RSET:
        s->state = ST_IDLE;
        start_next(s);
        return;
    case ST_QUIT:
        end_session(s, 451, "4.4.2 session ended", 1);
        return;
    }
}

/* ---- reply parsing ---- */

/* One complete line (CRLF stripped). Returns -1 after a protocol error. */
static int on_line(relay_session_t *s, const char *l, size_t n)
{
    if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
        (n > 3 && l[3] != ' ' && l[3] != '-')) {
        protocol_error(s, "malformed reply line");
        return -1;
    }
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (s->nlines && code != s->code) {
        protocol_error(s, "reply code changed inside a multi-line reply");
        return -1;
    }
    int more = n > 3 && l[3] == '-';
    const char *txt = n > 4 ? l + 4 : l + n;
    size_t tl = n > 4 ? n - 4 : 0;
    /* EHLO keywords: every line but the first (the server's name) of a 250 */
    if (s->state == ST_EHLO && code == 250 && s->nlines > 0) {
        size_t k = 0;
        while (k < tl && txt[k] != ' ' && txt[k] != '=') k++;
        for (size_t i = 0; i < N_KEYWORDS; i++)
            if (ieqn(txt, k, KEYWORDS[i]))
                s->keys |= 1u << i;
        if (ieqn(txt, k, "SIZE")) {
            /* RFC 1870: "SIZE" alone or "SIZE 0" means no fixed limit; absurd values too */
            size_t v = 0;
            int ok = 1;
            size_t i = k;
            while (i < tl && txt[i] == ' ') i++;
            for (; i < tl && txt[i] != ' '; i++) {
                if (txt[i] < '0' || txt[i] > '9' || v > (SIZE_MAX - 9) / 10) {
                    ok = 0;
                    break;
                }
                v = v * 10 + (size_t)(txt[i] - '0');
            }
            s->max_size = ok ? v : 0;
        }
    }
    if (!s->nlines) {
        s->code = code;
        s->text_len = 0;
        s->text[0] = '\0';
    } else if (s->text_len && tl) {
        append_clean(s->text, &s->text_len, REPLY_TEXT_MAX, " ", 1);
    }
    append_clean(s->text, &s->text_len, REPLY_TEXT_MAX, txt, tl);
    s->nlines++;
    if (more)
        return 0;
    s->nlines = 0;
    char text[REPLY_TEXT_MAX + 1];
    memcpy(text, s->text, s->text_len + 1);
    on_reply(s, code, text);
    return s->state == ST_CLOSED ? -1 : 0;
}

int relay_session_feed(relay_session_t *s, const char *buf, size_t len)
{
    if (!s || (!buf && len))
        return OMNI_EINVAL;
    if (s->state == ST_CLOSED)
        return OMNI_ECLOSED;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c != '\n') {
            if (s->line_len >= RELAY_MAX_LINE - 1) { /* room for the LF: CRLF counts in the limit */
                protocol_error(s, "reply line too long");
                return OMNI_ECLOSED;
            }
            s->line[s->line_len++] = c;
            continue;
        }
        /* LF ends a line; a CR before it is dropped (a bare LF is tolerated, as most clients do) */
        size_t n = s->line_len;
        if (n && s->line[n - 1] == '\r')
            n--;
        s->line_len = 0;
        if (memchr(s->line, '\0', n)) {
            protocol_error(s, "NUL in reply");
            return OMNI_ECLOSED;
        }
        if (on_line(s, s->line, n) < 0)
            return OMNI_ECLOSED;
    }
    return 0;
}

/* ---- public ---- */

int relay_session_new(const char *helo, const relay_callbacks_t *cb, relay_session_t **out_s)
{
    if (!out_s)
        return OMNI_EINVAL;
    *out_s = NULL;
    if (!helo || !cb || !cb->send || !cb->done)
        return OMNI_EINVAL;
    size_t hl = strlen(helo);
    if (!hl || hl > 255)
        return OMNI_EINVAL;
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)helo[i] <= 0x20 || (unsigned char)helo[i] >= 0x7f)
            return OMNI_EINVAL;
    relay_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return OMNI_ENOMEM;
    s->cb = *cb;
    memcpy(s->helo, helo, hl + 1);
    s->state = ST_GREET;
    *out_s = s;
    return 0;
}

void relay_session_destroy(relay_session_t **s)
{
    if (!s || !*s)
        return;
    tx_free((*s)->tx);
    free(*s);
    *s = NULL;
}

/* An envelope address we can put between brackets: no controls, spaces outside quotes or
 * brackets, so it can neither end the command line nor add parameters. */
static int addr_ok(const char *a, int empty_ok)
{
    size_t n = strlen(a);
    if ((!n && !empty_ok) || n > RELAY_MAX_ADDR)
        return 0;
    int q = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
            return 0;
        if (c == '"')
            q = !q;
        else if (c == ' ' && !q)
            return 0;
    }
    return !q;
}

static char *copy_str(const char *p)
{
    size_t n = strlen(p) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, p, n);
    return d;
}

/* The body as it goes on the wire: CRLF line ends, a "." doubled at the start of a line
 * (RFC 5321 4.5.2), a final CRLF if missing, then ".\r\n". */
static int build_body(tx_t *t, const char *msg, size_t len)
{
    /* worst case: every byte doubles (a bare CR or LF becoming CRLF, a stuffed dot) */
    if (len > (SIZE_MAX - 16) / 2)
        return OMNI_ETOOBIG;
    char *b = malloc(len * 2 + 8);
    if (!b)
        return OMNI_ENOMEM;
    size_t o = 0, size = 0;
    int bol = 1;
    for (size_t i = 0; i < len; i++) {
        char c = msg[i];
        if ((unsigned char)c >= 0x80)
            t->eightbit = 1;
        if (bol && c == '.') {
            b[o++] = '.';
        }
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && msg[i + 1] == '\n')
                i++;
            b[o++] = '\r';
            b[o++] = '\n';
            size += 2;
            bol = 1;
            continue;
        }
        b[o++] = c;
        size++;
        bol = 0;
    }
    if (!bol) {
        b[o++] = '\r';
        b[o++] = '\n';
        size += 2;
    }
    memcpy(b + o, ".\r\n", 3);
    o += 3;
    t->body = b;
    t->body_len = o;
    t->size = size;
    return 0;
}

int relay_session_submit(relay_session_t *s, const char *mail_from, const char *const *rcpts, size_t n,
                         const char *msg, size_t len)
{
    if (!s || !mail_from || !rcpts || !n || n > RELAY_MAX_RCPTS || (!msg && len))
        return OMNI_EINVAL;
    if (s->state == ST_CLOSED || s->quit_wanted)
        return OMNI_ECLOSED;
    if (s->tx)
        return OMNI_ESTATE;
    if (!addr_ok(mail_from, 1))
        return OMNI_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!rcpts[i] || !addr_ok(rcpts[i], 0))
            return OMNI_EINVAL;
    tx_t *t = calloc(1, sizeof(*t));
    if (!t)
        return OMNI_ENOMEM;
    t->from = copy_str(mail_from);
    t->rcpts = calloc(n, sizeof(*t->rcpts));
    int rc = t->from && t->rcpts ? 0 : OMNI_ENOMEM;
    if (!rc) {
        t->n = n;
        for (size_t i = 0; i < n && !rc; i++)
            if (!(t->rcpts[i] = copy_str(rcpts[i])))
                rc = OMNI_ENOMEM;
    }
    if (!rc)
        rc = build_body(t, msg ? msg : "", len);
    if (rc) {
        tx_free(t);
        return rc;
    }
    s->tx = t;
    start_next(s);
    return 0;
}

int relay_session_has(const relay_session_t *s, const char *keyword)
{
    if (!s || !keyword)
        return 0;
    for (size_t i = 0; i < N_KEYWORDS; i++)
        if (ieqn(keyword, strlen(keyword), KEYWORDS[i]))
            return (s->keys >> i) & 1;
    return 0;
}

size_t relay_session_max_size(const relay_session_t *s)
{
    return s && (s->keys & K_SIZE) ? s->max_size : 0;
}

void relay_session_quit(relay_session_t *s)
{
    if (!s || s->state == ST_CLOSED || s->quit_wanted)
        return;
    s->quit_wanted = 1;
    start_next(s);
}

void relay_session_lost(relay_session_t *s)
{
    if (!s)
        return;
    end_session(s, 451, "4.4.2 connection lost", 0);
}
