/* SMTP server session for omni-email: command parsing, transaction state, DATA framing and
 * dot-unstuffing, pipelining holds and limits, with replies carrying RFC 3463 enhanced codes. */
#include "smtp.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_CMD, M_DATA };

/* Where DATA framing stands, so ".\r\n" and dot-stuffing are recognized across any feed split.
 * A CR is only emitted once we know it is not the CR of a CRLF. */
enum {
    D_BOL,   /* at the start of a line */
    D_DOT,   /* a line began with ".", not emitted (stuffing or the end marker) */
    D_DOTCR, /* ".\r" at the start of a line */
    D_MID,   /* inside a line */
    D_CR,    /* inside a line, a CR not yet emitted */
};

#define TEXT_MAX 400 /* caller-supplied reply text; keeps a reply line well under 512 bytes */

struct smtp_session {
    smtp_limits_t lim;
    char host[256];
    smtp_callbacks_t cb;

    int mode;
    int greeted; /* HELO/EHLO seen since the start or since STARTTLS */
    int tls;
    int closed;
    int oom;
    int waiting; /* cb.message called, verdict not yet given */
    int busy;    /* inside feed or a drain: data_result must not drain again */
    int discard; /* drop the rest of the input being consumed (after STARTTLS) */
    unsigned errors;

    char *line; /* max_line + 1 */
    size_t line_len;
    int line_over, line_nul;

    int in_tx;
    char from[SMTP_PATH_MAX];
    char **rcpts;
    size_t n_rcpts, rcpts_cap;

    int dstate, prev_crlf, too_big, has_nul;
    char *data;
    size_t data_len, data_cap;

    char *hold;
    size_t hold_len, hold_cap;
};

static const char EMPTY[] = "";

/* ---- replies ---- */

static void close_session(smtp_session_t *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    if (s->cb.close)
        s->cb.close(s->cb.user);
}

static void out(smtp_session_t *s, const char *buf, size_t len)
{
    if (!s->closed)
        s->cb.send(s->cb.user, buf, len);
}

/* "<code> <enh> <text>\r\n"; enh NULL for codes that carry none (220 greeting, 354). */
static void reply(smtp_session_t *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply(smtp_session_t *s, int code, const char *enh, const char *fmt, ...)
{
    char buf[1024];
    int n = enh ? snprintf(buf, sizeof(buf), "%03d %s ", code, enh) : snprintf(buf, sizeof(buf), "%03d ", code);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 3)
        len = sizeof(buf) - 3;
    buf[len++] = '\r';
    buf[len++] = '\n';
    out(s, buf, len);
}

static void fail_oom(smtp_session_t *s)
{
    s->oom = 1;
    reply(s, 421, "4.3.0", "%s Error: out of memory, closing connection", s->host);
    close_session(s);
}

/* A reply to a client mistake: counted, so a client that only sends garbage (or an HTTP or
 * dictionary attack) is cut off instead of being answered forever. */
static void err(smtp_session_t *s, int code, const char *enh, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void err(smtp_session_t *s, int code, const char *enh, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    reply(s, code, enh, "%s", text);
    if (++s->errors >= s->lim.max_errors) {
        reply(s, 421, "4.7.0", "%s Error: too many errors, closing connection", s->host);
        close_session(s);
    }
}

/* "d.ddd.ddd" followed by a space or the end, of the reply's class. */
static size_t enh_prefix(const char *t, int code)
{
    if (t[0] != '0' + code / 100 || t[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (t[i] >= '0' && t[i] <= '9' && d < 3) i++, d++;
    if (!d || t[i] != '.')
        return 0;
    i++;
    d = 0;
    while (t[i] >= '0' && t[i] <= '9' && d < 3) i++, d++;
    if (!d || (t[i] != ' ' && t[i] != '\0'))
        return 0;
    return i;
}

/* Caller text into a reply: its own enhanced code if it has one of the right class, else defenh;
 * control and non-ASCII bytes become spaces so it can neither end the reply line early nor
 * inject another one. */
static void user_text(const char *text, int code, const char *defenh, const char *deftext, char enh[16],
                      char out_text[TEXT_MAX + 1])
{
    if (!text || !*text)
        text = deftext;
    size_t e = enh_prefix(text, code);
    if (e) {
        memcpy(enh, text, e);
        enh[e] = '\0';
        text += e;
        while (*text == ' ') text++;
        if (!*text)
            text = deftext;
    } else {
        snprintf(enh, 16, "%s", defenh);
    }
    size_t n = 0;
    for (; text[n] && n < TEXT_MAX; n++) {
        unsigned char c = (unsigned char)text[n];
        out_text[n] = (c < 0x20 || c >= 0x7f) ? ' ' : (char)c;
    }
    out_text[n] = '\0';
}

/* ---- transaction ---- */

static void free_data(smtp_session_t *s)
{
    free(s->data);
    s->data = NULL;
    s->data_len = s->data_cap = 0;
}

static void tx_reset(smtp_session_t *s)
{
    for (size_t i = 0; i < s->n_rcpts; i++) free(s->rcpts[i]);
    s->n_rcpts = 0;
    s->in_tx = 0;
    s->from[0] = '\0';
    /* A finished message's buffer may be max_message bytes: never keep it across transactions. */
    free_data(s);
}

/* ---- parsing helpers (ASCII only, locale-independent) ---- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)lit[i]))
            return 0;
    return i == n && !lit[i];
}

static int iprefix(const char *a, const char *lit)
{
    for (size_t i = 0; lit[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned min, cp;
        if (c >= 0xc2 && c <= 0xdf) k = 1, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) k = 2, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) k = 3, min = 0x10000, cp = c & 0x07;
        else return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A reverse/forward path after "FROM:"/"TO:": "<addr>", tolerating a space before it, a missing
 * pair of brackets (common in scripts) and an RFC 5321 4.1.2 source route, which is dropped.
 * Quoted local parts may hold spaces and ">". Returns 0 with the address in out and *rest at the
 * parameters, or -1. */
static int parse_path(const char *p, char out_addr[SMTP_PATH_MAX], const char **rest)
{
    const char *a, *e;
    while (*p == ' ') p++;
    if (*p == '<') {
        a = ++p;
        int q = 0;
        for (; *p; p++) {
            if (q) {
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == '"')
                    q = 0;
            } else if (*p == '"') {
                q = 1;
            } else if (*p == '>' || *p == '<') {
                break;
            }
        }
        if (*p != '>')
            return -1;
        e = p++;
        if (*p && *p != ' ')
            return -1;
    } else {
        a = p;
        while (*p && *p != ' ') p++;
        e = p;
        if (a == e)
            return -1;
    }
    if (a < e && *a == '@') {
        const char *c = memchr(a, ':', (size_t)(e - a));
        if (!c)
            return -1;
        a = c + 1;
    }
    size_t n = (size_t)(e - a);
    if (n > SMTP_PATH_MAX - 3) /* the path limit counts the brackets */
        return -1;
    int q = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (q && c == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (c == '"')
            q = !q;
        else if (!q && (c == ' ' || c == '<' || c == '>'))
            return -1;
    }
    if (q || !utf8_ok((const unsigned char *)a, n))
        return -1;
    memcpy(out_addr, a, n);
    out_addr[n] = '\0';
    while (*p == ' ') p++;
    *rest = p;
    return 0;
}

/* local@domain with both parts non-empty; the last "@" splits, as a quoted local part may hold one. */
static int has_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at && at != addr && at[1];
}

/* MAIL FROM parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8). Replies itself on error. */
static int mail_params(smtp_session_t *s, const char *p)
{
    while (*p) {
        const char *k = p;
        while (*p && *p != ' ' && *p != '=') p++;
        size_t kl = (size_t)(p - k);
        const char *v = NULL;
        size_t vl = 0;
        if (*p == '=') {
            v = ++p;
            while (*p && *p != ' ') p++;
            vl = (size_t)(p - v);
        }
        while (*p == ' ') p++;
        if (!kl) {
            err(s, 501, "5.5.4", "Error: bad MAIL parameter syntax");
            return -1;
        }
        if (ieq(k, kl, "SIZE")) {
            if (!v || !vl || vl > 20) {
                err(s, 501, "5.5.4", "Error: bad SIZE parameter");
                return -1;
            }
            uint64_t n = 0;
            int big = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    err(s, 501, "5.5.4", "Error: bad SIZE parameter");
                    return -1;
                }
                if (n > (UINT64_MAX - 9) / 10)
                    big = 1;
                else
                    n = n * 10 + (uint64_t)(v[i] - '0');
            }
            /* Not counted as an error: a client that declares its size honestly is behaving. */
            if (big || n > s->lim.max_message) {
                reply(s, 552, "5.3.4", "Error: message size exceeds fixed limit of %zu bytes", s->lim.max_message);
                return -1;
            }
        } else if (ieq(k, kl, "BODY")) {
            if (v && (ieq(v, vl, "7BIT") || ieq(v, vl, "8BITMIME")))
                continue;
            if (v && ieq(v, vl, "BINARYMIME"))
                err(s, 555, "5.5.4", "Error: BODY=BINARYMIME not supported");
            else
                err(s, 501, "5.5.4", "Error: bad BODY parameter");
            return -1;
        } else if (ieq(k, kl, "SMTPUTF8")) {
            if (v) {
                err(s, 501, "5.5.4", "Error: SMTPUTF8 takes no value");
                return -1;
            }
        } else {
            err(s, 555, "5.5.4", "Error: unsupported MAIL parameter");
            return -1;
        }
    }
    return 0;
}

/* ---- commands ---- */

static void cmd_ehlo(smtp_session_t *s, int extended)
{
    tx_reset(s);
    s->greeted = 1;
    if (!extended) {
        reply(s, 250, NULL, "%s", s->host);
        return;
    }
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "250-%s\r\n250-PIPELINING\r\n250-SIZE %zu\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n%s"
                     "250 SMTPUTF8\r\n",
                     s->host, s->lim.max_message,
                     s->lim.starttls_available && s->cb.starttls && !s->tls ? "250-STARTTLS\r\n" : "");
    out(s, buf, (size_t)n);
}

static void cmd_mail(smtp_session_t *s, const char *args)
{
    if (!s->greeted) {
        err(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return;
    }
    if (s->in_tx) {
        err(s, 503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    if (!iprefix(args, "FROM:")) {
        err(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        return;
    }
    char addr[SMTP_PATH_MAX];
    const char *rest;
    if (parse_path(args + 5, addr, &rest) != 0) {
        err(s, 501, "5.1.7", "Error: bad sender address syntax");
        return;
    }
    if (mail_params(s, rest) != 0)
        return;
    memcpy(s->from, addr, strlen(addr) + 1);
    s->in_tx = 1;
    reply(s, 250, "2.1.0", "Ok");
}

static void cmd_rcpt(smtp_session_t *s, const char *args)
{
    if (!s->in_tx) {
        err(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (!iprefix(args, "TO:")) {
        err(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
        return;
    }
    char addr[SMTP_PATH_MAX];
    const char *rest;
    /* RFC 5321 4.5.1: "postmaster" without a domain must be accepted. */
    if (parse_path(args + 3, addr, &rest) != 0 || (!has_domain(addr) && !ieq(addr, strlen(addr), "postmaster"))) {
        err(s, 501, "5.1.3", "Error: bad recipient address syntax");
        return;
    }
    if (*rest) {
        err(s, 555, "5.5.4", "Error: unsupported RCPT parameter");
        return;
    }
    if (s->n_rcpts >= s->lim.max_recipients) {
        /* RFC 5321 4.5.3.1.10: 452, so the client sends the rest in another transaction. */
        reply(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    if (s->cb.rcpt_ok) {
        char why[256] = "";
        int code = s->cb.rcpt_ok(s->cb.user, addr, why, sizeof(why));
        if (code != 0) {
            if (code < 400 || code > 599)
                code = 550;
            why[sizeof(why) - 1] = '\0';
            char enh[16], text[TEXT_MAX + 1];
            int mailbox = code == 550 || code == 551 || code == 553;
            user_text(why, code, code >= 500 ? (mailbox ? "5.1.1" : "5.0.0") : "4.0.0",
                      "Error: recipient address rejected", enh, text);
            err(s, code, enh, "%s", text);
            return;
        }
    }
    if (s->n_rcpts == s->rcpts_cap) {
        size_t cap = s->rcpts_cap ? s->rcpts_cap * 2 : 8;
        if (cap > s->lim.max_recipients)
            cap = s->lim.max_recipients;
        char **r = realloc(s->rcpts, cap * sizeof(*r));
        if (!r) {
            fail_oom(s);
            return;
        }
        s->rcpts = r;
        s->rcpts_cap = cap;
    }
    char *copy = strdup(addr);
    if (!copy) {
        fail_oom(s);
        return;
    }
    s->rcpts[s->n_rcpts++] = copy;
    reply(s, 250, "2.1.5", "Ok");
}

static void cmd_data(smtp_session_t *s, const char *args)
{
    if (*args) {
        err(s, 501, "5.5.4", "Syntax: DATA");
        return;
    }
    if (!s->in_tx) {
        err(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    if (!s->n_rcpts) {
        /* RFC 5321 3.3: pipelining clients learn here that the message has nowhere to go. */
        err(s, 554, "5.5.1", "Error: no valid recipients");
        return;
    }
    reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    s->mode = M_DATA;
    s->dstate = D_BOL;
    s->prev_crlf = 1;
    s->too_big = s->has_nul = 0;
    free_data(s);
}

static void cmd_starttls(smtp_session_t *s, const char *args)
{
    if (*args) {
        err(s, 501, "5.5.4", "Syntax: STARTTLS");
        return;
    }
    if (s->tls) {
        err(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (!s->lim.starttls_available || !s->cb.starttls) {
        err(s, 502, "5.5.1", "Error: command not implemented");
        return;
    }
    if (s->in_tx) {
        err(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    reply(s, 220, "2.0.0", "Ready to start TLS");
    /* RFC 3207 4.2: forget everything learnt in plaintext, including input already received. */
    s->tls = 1;
    s->greeted = 0;
    tx_reset(s);
    s->discard = 1;
    s->cb.starttls(s->cb.user);
}

static void command(smtp_session_t *s)
{
    char *line = s->line;
    size_t len = s->line_len;
    if (s->line_over) {
        err(s, 500, "5.5.2", "Error: line too long");
        return;
    }
    if (s->line_nul) {
        err(s, 500, "5.5.2", "Error: NUL character in command");
        return;
    }
    /* CRLF or a bare LF (tolerated), then trailing blanks some clients add. */
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    line[len] = '\0';
    size_t vl = 0;
    while (vl < len && line[vl] != ' ' && line[vl] != '\t') vl++;
    const char *args = line + vl;
    while (*args == ' ' || *args == '\t') args++;

    if (!vl) {
        err(s, 500, "5.5.2", "Error: bad syntax");
    } else if (ieq(line, vl, "EHLO") || ieq(line, vl, "HELO")) {
        if (!*args)
            err(s, 501, "5.5.4", "Syntax: %s hostname", lower(line[0]) == 'e' ? "EHLO" : "HELO");
        else
            cmd_ehlo(s, lower(line[0]) == 'e');
    } else if (ieq(line, vl, "MAIL")) {
        cmd_mail(s, args);
    } else if (ieq(line, vl, "RCPT")) {
        cmd_rcpt(s, args);
    } else if (ieq(line, vl, "DATA")) {
        cmd_data(s, args);
    } else if (ieq(line, vl, "RSET")) {
        if (*args) {
            err(s, 501, "5.5.4", "Syntax: RSET");
        } else {
            tx_reset(s);
            reply(s, 250, "2.0.0", "Ok");
        }
    } else if (ieq(line, vl, "NOOP")) {
        reply(s, 250, "2.0.0", "Ok");
    } else if (ieq(line, vl, "QUIT")) {
        reply(s, 221, "2.0.0", "%s closing connection", s->host);
        close_session(s);
    } else if (ieq(line, vl, "VRFY")) {
        if (!*args)
            err(s, 501, "5.5.4", "Syntax: VRFY address");
        else
            reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
    } else if (ieq(line, vl, "HELP")) {
        reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT%s",
              s->lim.starttls_available && s->cb.starttls && !s->tls ? " STARTTLS" : "");
    } else if (ieq(line, vl, "STARTTLS")) {
        cmd_starttls(s, args);
    } else if (ieq(line, vl, "EXPN") || ieq(line, vl, "AUTH") || ieq(line, vl, "BDAT") || ieq(line, vl, "ETRN") ||
               ieq(line, vl, "TURN")) {
        err(s, 502, "5.5.1", "Error: command not implemented");
    } else if ((ieq(line, vl, "GET") || ieq(line, vl, "POST") || ieq(line, vl, "HEAD") || ieq(line, vl, "PUT") ||
                ieq(line, vl, "CONNECT")) &&
               *args) {
        /* A browser or proxy talking to us (cross-protocol request forgery): its body lines would
         * be read as commands, so stop at the request line. */
        reply(s, 421, "4.7.0", "%s Error: this is an SMTP server, closing connection", s->host);
        close_session(s);
    } else {
        err(s, 500, "5.5.2", "Error: command not recognized");
    }
}

/* Consumes at most one command line; returns the bytes used. */
static size_t cmd_bytes(smtp_session_t *s, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t take = lf ? (size_t)(lf - p) : n;
    if (!s->line_over) {
        /* The line is too long once its bytes plus the LF still to come exceed max_line. */
        if (take > s->lim.max_line - 1 - s->line_len) {
            s->line_over = 1;
        } else {
            if (memchr(p, '\0', take))
                s->line_nul = 1;
            memcpy(s->line + s->line_len, p, take);
            s->line_len += take;
        }
    }
    if (!lf)
        return n;
    command(s);
    s->line_len = 0;
    s->line_over = s->line_nul = 0;
    return take + 1;
}

/* ---- DATA ---- */

static void emit(smtp_session_t *s, const char *p, size_t n)
{
    if (!s->has_nul && memchr(p, '\0', n))
        s->has_nul = 1;
    if (s->too_big)
        return;
    if (n > s->lim.max_message - s->data_len) {
        /* Keep reading to the final "." (the client is mid-message and would not hear a reply),
         * but stop storing. */
        s->too_big = 1;
        free_data(s);
        return;
    }
    if (s->data_len + n > s->data_cap) {
        size_t cap = s->data_cap ? s->data_cap : 16384;
        while (cap < s->data_len + n) cap = cap > s->lim.max_message / 2 ? s->lim.max_message : cap * 2;
        if (cap > s->lim.max_message)
            cap = s->lim.max_message;
        char *d = realloc(s->data, cap);
        if (!d) {
            fail_oom(s);
            return;
        }
        s->data = d;
        s->data_cap = cap;
    }
    memcpy(s->data + s->data_len, p, n);
    s->data_len += n;
}

static void end_of_data(smtp_session_t *s)
{
    s->mode = M_CMD;
    if (s->too_big) {
        reply(s, 552, "5.3.4", "Error: message size exceeds fixed limit of %zu bytes", s->lim.max_message);
        tx_reset(s);
        return;
    }
    if (s->has_nul) {
        reply(s, 554, "5.6.0", "Error: message contains NUL characters");
        tx_reset(s);
        return;
    }
    s->waiting = 1;
    s->cb.message(s->cb.user, s->from, (const char *const *)s->rcpts, s->n_rcpts, s->data ? s->data : EMPTY,
                  s->data_len);
}

/* Message bytes until the end marker (consumed too); returns the bytes used. The end is CRLF "."
 * CRLF only: a "." line after a bare LF, or ending in one, is content (SMTP smuggling, CVE-2023-51764
 * and its kin), while bare LF still ends a line for unstuffing and is normalized to CRLF. */
static size_t data_bytes(smtp_session_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !s->closed) {
        char c = p[i];
        switch (s->dstate) {
        case D_MID: {
            size_t j = i;
            while (j < n && p[j] != '\r' && p[j] != '\n') j++;
            if (j > i) {
                emit(s, p + i, j - i);
                i = j;
                continue;
            }
            if (c == '\r') {
                s->dstate = D_CR;
            } else {
                emit(s, "\r\n", 2);
                s->prev_crlf = 0;
                s->dstate = D_BOL;
            }
            i++;
            break;
        }
        case D_BOL:
            if (c == '.') {
                s->dstate = D_DOT;
            } else if (c == '\r') {
                s->dstate = D_CR;
            } else if (c == '\n') {
                emit(s, "\r\n", 2);
                s->prev_crlf = 0;
            } else {
                emit(s, &p[i], 1);
                s->dstate = D_MID;
            }
            i++;
            break;
        case D_DOT: /* the leading dot is dropped whatever follows (RFC 5321 4.5.2) */
            if (c == '\r') {
                s->dstate = D_DOTCR;
            } else if (c == '\n') {
                emit(s, "\r\n", 2);
                s->prev_crlf = 0;
                s->dstate = D_BOL;
            } else {
                emit(s, &p[i], 1);
                s->dstate = D_MID;
            }
            i++;
            break;
        case D_DOTCR:
            if (c == '\n') {
                i++;
                if (s->prev_crlf) {
                    end_of_data(s);
                    return i;
                }
                emit(s, "\r\n", 2);
                s->prev_crlf = 1;
                s->dstate = D_BOL;
            } else {
                s->dstate = D_CR; /* ".\r" + c is the line "\r" + c after unstuffing: reprocess c */
            }
            break;
        case D_CR:
            if (c == '\n') {
                emit(s, "\r\n", 2);
                s->prev_crlf = 1;
                s->dstate = D_BOL;
            } else if (c == '\r') {
                emit(s, "\r", 1);
            } else {
                emit(s, "\r", 1);
                emit(s, &p[i], 1);
                s->dstate = D_MID;
            }
            i++;
            break;
        }
    }
    return i;
}

/* ---- input ---- */

/* Processes until the input is used up, a verdict is awaited or the session closes. */
static size_t consume(smtp_session_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !s->closed && !s->waiting) {
        i += s->mode == M_DATA ? data_bytes(s, p + i, n - i) : cmd_bytes(s, p + i, n - i);
        if (s->discard) {
            s->discard = 0;
            return n;
        }
    }
    return i;
}

static void hold(smtp_session_t *s, const char *p, size_t n)
{
    if (n > s->lim.max_pending - s->hold_len) {
        reply(s, 421, "4.7.0", "%s Error: too much pipelined input, closing connection", s->host);
        close_session(s);
        return;
    }
    if (s->hold_len + n > s->hold_cap) {
        size_t cap = s->hold_cap ? s->hold_cap : 1024;
        while (cap < s->hold_len + n) cap *= 2;
        if (cap > s->lim.max_pending)
            cap = s->lim.max_pending;
        char *h = realloc(s->hold, cap);
        if (!h) {
            fail_oom(s);
            return;
        }
        s->hold = h;
        s->hold_cap = cap;
    }
    memcpy(s->hold + s->hold_len, p, n);
    s->hold_len += n;
}

static void drain(smtp_session_t *s)
{
    s->busy = 1;
    if (s->hold_len && !s->closed && !s->waiting) {
        size_t used = consume(s, s->hold, s->hold_len);
        memmove(s->hold, s->hold + used, s->hold_len - used);
        s->hold_len -= used;
    }
    if (!s->hold_len) {
        free(s->hold);
        s->hold = NULL;
        s->hold_cap = 0;
    }
    s->busy = 0;
}

int smtp_session_waiting(const smtp_session_t *s)
{
    return s && s->waiting && !s->closed;
}

static int status(const smtp_session_t *s)
{
    return s->oom ? OMNI_ENOMEM : s->closed ? OMNI_ECLOSED : 0;
}

int smtp_session_feed(smtp_session_t *s, const char *buf, size_t len)
{
    if (!s || (!buf && len))
        return OMNI_EINVAL;
    if (s->closed)
        return status(s);
    if (s->busy)
        return OMNI_ESTATE;
    if (!len)
        return 0;
    if (s->waiting || s->hold_len) {
        hold(s, buf, len);
        return status(s);
    }
    s->busy = 1;
    size_t used = consume(s, buf, len);
    s->busy = 0;
    if (used < len && !s->closed)
        hold(s, buf + used, len - used);
    return status(s);
}

void smtp_session_data_result(smtp_session_t *s, int code, const char *text)
{
    if (!s || s->closed || !s->waiting)
        return;
    int cls = code / 100;
    if (code < 200 || code > 599 || cls == 3)
        code = 451, cls = 4;
    char enh[16], t[TEXT_MAX + 1];
    user_text(text, code, cls == 2 ? "2.0.0" : cls == 4 ? "4.3.0" : "5.6.0",
              cls == 2 ? "Ok: queued" : cls == 4 ? "Error: temporary failure, try again later" : "Error: message refused",
              enh, t);
    /* Cleared before the reply goes out, so a verdict repeated from inside send is ignored. */
    s->waiting = 0;
    reply(s, code, enh, "%s", t);
    tx_reset(s);
    if (!s->busy)
        drain(s);
}

void smtp_session_shutdown(smtp_session_t *s, const char *why)
{
    if (!s || s->closed)
        return;
    char enh[16], t[TEXT_MAX + 1];
    user_text(why, 421, "4.3.2", "Service shutting down", enh, t);
    reply(s, 421, enh, "%s %s, closing connection", s->host, t);
    close_session(s);
}

/* ---- lifecycle ---- */

int smtp_session_new(const smtp_limits_t *lim, const smtp_callbacks_t *cb, smtp_session_t **out_s)
{
    if (!out_s)
        return OMNI_EINVAL;
    *out_s = NULL;
    if (!cb || !cb->send || !cb->message)
        return OMNI_EINVAL;
    smtp_limits_t l = lim ? *lim : (smtp_limits_t){0};
    if (!l.max_line) l.max_line = SMTP_DEFAULT_MAX_LINE;
    if (!l.max_message) l.max_message = SMTP_DEFAULT_MAX_MESSAGE;
    if (!l.max_recipients) l.max_recipients = SMTP_DEFAULT_MAX_RECIPIENTS;
    if (!l.max_pending) l.max_pending = SMTP_DEFAULT_MAX_PENDING;
    if (!l.max_errors) l.max_errors = SMTP_DEFAULT_MAX_ERRORS;
    if (!l.hostname) l.hostname = "localhost";
    if (l.max_line < 64 || l.max_line > SIZE_MAX / 2)
        return OMNI_EINVAL;
    size_t hl = strlen(l.hostname);
    if (!hl || hl > 255)
        return OMNI_EINVAL;
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)l.hostname[i] <= 0x20 || (unsigned char)l.hostname[i] >= 0x7f)
            return OMNI_EINVAL;

    smtp_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return OMNI_ENOMEM;
    s->line = malloc(l.max_line + 1);
    if (!s->line) {
        free(s);
        return OMNI_ENOMEM;
    }
    memcpy(s->host, l.hostname, hl + 1);
    l.hostname = s->host;
    s->lim = l;
    s->cb = *cb;
    s->mode = M_CMD;
    *out_s = s;
    reply(s, 220, NULL, "%s ESMTP omni-email", s->host);
    return 0;
}

void smtp_session_destroy(smtp_session_t **sp)
{
    if (!sp || !*sp)
        return;
    smtp_session_t *s = *sp;
    tx_reset(s);
    free(s->rcpts);
    free(s->hold);
    free(s->line);
    free(s);
    *sp = NULL;
}
