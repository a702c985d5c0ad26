/* An agent's reply as an RFC 5322 message (see compose.h). Conservative output: every header
 * line short, encoded words per character boundary, base64 bodies whenever 7bit would not be
 * strictly valid, so no relay on the way has a reason to rewrite it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compose.h"

#define LINE_MAX_HEADER 78
#define WORD_BYTES 42   /* UTF-8 bytes per encoded word: 56 base64 chars + 12 = 68 columns */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sb_t;

static void sb_add(sb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sb_t *b, const char *s) { sb_add(b, s, strlen(s)); }

static void base64(sb_t *b, const unsigned char *in, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
        sb_add(b, q, 4);
    }
}

static int plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Header text: ASCII without "=?" as is (folded at spaces), anything else as B-words, one per
 * line, each ending on a character boundary. col: where the text starts on the first line. */
static void header_text(sb_t *b, const char *s, size_t col)
{
    if (plain_ascii(s) && !strstr(s, "=?")) {
        while (*s) {
            size_t n = strlen(s);
            if (col + n <= LINE_MAX_HEADER) {
                sb_str(b, s);
                return;
            }
            const char *sp = NULL; /* the last space that keeps this line short enough */
            for (const char *p = s + 1; *p && (size_t)(p - s) + col <= LINE_MAX_HEADER; p++)
                if (*p == ' ')
                    sp = p;
            if (!sp)
                sp = strchr(s + 1, ' '); /* one long word: it goes over, there is no better place */
            if (!sp) {
                sb_str(b, s);
                return;
            }
            sb_add(b, s, (size_t)(sp - s));
            sb_str(b, "\r\n");
            s = sp; /* the space starts the continuation line (folding white space) */
            col = 0;
        }
        return;
    }
    size_t n = strlen(s);
    for (size_t i = 0, first = 1; i < n; first = 0) {
        size_t k = n - i < WORD_BYTES ? n - i : WORD_BYTES;
        while (k < n - i && k > 1 && ((unsigned char)s[i + k] & 0xC0) == 0x80)
            k--; /* never split a character: each word must decode on its own */
        if (!first)
            sb_str(b, "\r\n ");
        sb_str(b, "=?UTF-8?B?");
        base64(b, (const unsigned char *)s + i, k);
        sb_str(b, "?=");
        i += k;
    }
}

static int clean_addr(const char *a)
{
    if (!a || !*a || !strchr(a, '@') || strlen(a) > 254)
        return 0;
    for (; *a; a++)
        if ((unsigned char)*a <= 0x20 || *a == '<' || *a == '>' || *a == '(' || *a == ')' || *a == ',' || *a == ';' ||
            (unsigned char)*a == 0x7f)
            return 0;
    return 1;
}

static int clean_id(const char *id)
{
    return id && *id && strlen(id) < 256 && clean_addr(id); /* same shape: local@domain, no spaces */
}

static void msg_id_line(sb_t *b, const char *name, const char *id)
{
    sb_str(b, name);
    sb_str(b, ": <");
    sb_str(b, id);
    sb_str(b, ">\r\n");
}

/* Body lines: CRLF, and whether 7bit is strictly valid (ASCII, lines <= 998). */
static int needs_base64(const char *t)
{
    size_t line = 0;
    for (; *t; t++) {
        if ((unsigned char)*t >= 0x80 || *t == '\0' || (*t == '\r' && t[1] != '\n'))
            return 1;
        line = *t == '\n' ? 0 : line + 1;
        if (line > 998)
            return 1;
    }
    return 0;
}

static void body_crlf(sb_t *b, const char *t)
{
    for (const char *p = t; *p; p++) {
        if (*p == '\n' && (p == t || p[-1] != '\r'))
            sb_str(b, "\r\n");
        else
            sb_add(b, p, 1);
    }
}

int compose_message(const compose_t *c, char **out, size_t *len)
{
    sb_t b = {0}, body = {0};
    char date[64];
    int rc = OMNI_EINVAL;
    const char *subject = c->subject ? c->subject : "";
    const char *text = c->text ? c->text : "";
    if (!clean_addr(c->from_addr) || !clean_addr(c->to_addr) || !clean_id(c->message_id) ||
        (c->in_reply_to && *c->in_reply_to && !clean_id(c->in_reply_to)) ||
        !omni_utf8_valid(subject, strlen(subject)) || !omni_utf8_valid(text, strlen(text)) ||
        strpbrk(subject, "\r\n") || (c->from_name && (strpbrk(c->from_name, "\r\n") ||
                                                      !omni_utf8_valid(c->from_name, strlen(c->from_name)))))
        goto out;
    for (size_t i = 0; i < c->n_references; i++)
        if (!clean_id(c->references[i]))
            goto out;

    time_t secs = (time_t)(c->date_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
    sb_str(&b, date);
    sb_str(&b, "From: ");
    if (c->from_name && *c->from_name) {
        header_text(&b, c->from_name, 6);
        sb_str(&b, "\r\n <");
    } else {
        sb_str(&b, "<");
    }
    sb_str(&b, c->from_addr);
    sb_str(&b, ">\r\nTo: <");
    sb_str(&b, c->to_addr);
    sb_str(&b, ">\r\nSubject: ");
    header_text(&b, subject, 9);
    sb_str(&b, "\r\n");
    msg_id_line(&b, "Message-ID", c->message_id);
    if (c->in_reply_to && *c->in_reply_to)
        msg_id_line(&b, "In-Reply-To", c->in_reply_to);
    /* References: the thread so far, then the message we answer (RFC 5322 3.6.4). */
    int listed = 0;
    for (size_t i = 0; i < c->n_references; i++) {
        sb_str(&b, i ? "\r\n <" : "References: <");
        sb_str(&b, c->references[i]);
        sb_str(&b, ">");
        listed |= c->in_reply_to && strcmp(c->references[i], c->in_reply_to) == 0;
    }
    if (c->in_reply_to && *c->in_reply_to && !listed) {
        sb_str(&b, c->n_references ? "\r\n <" : "References: <");
        sb_str(&b, c->in_reply_to);
        sb_str(&b, ">");
    }
    if (c->n_references || (c->in_reply_to && *c->in_reply_to))
        sb_str(&b, "\r\n");
    if (c->auto_submitted) {
        sb_str(&b, "Auto-Submitted: ");
        sb_str(&b, c->auto_submitted);
        sb_str(&b, "\r\n");
    }
    sb_str(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n");
    if (needs_base64(text)) {
        body_crlf(&body, text);
        sb_str(&b, "Content-Transfer-Encoding: base64\r\n\r\n");
        for (size_t i = 0; i < body.len; i += 57) { /* 57 bytes = 76 base64 characters a line */
            base64(&b, (const unsigned char *)body.p + i, body.len - i < 57 ? body.len - i : 57);
            sb_str(&b, "\r\n");
        }
    } else {
        sb_str(&b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
        body_crlf(&b, text);
        if (b.len < 2 || memcmp(b.p + b.len - 2, "\r\n", 2) != 0)
            sb_str(&b, "\r\n");
    }
    if (b.oom || body.oom) {
        rc = OMNI_ENOMEM;
        goto out;
    }
    *out = b.p;
    *len = b.len;
    b.p = NULL;
    rc = 0;
out:
    free(b.p);
    free(body.p);
    return rc;
}
