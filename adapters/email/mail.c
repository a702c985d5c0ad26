/* Inbound email parsing for omni-email: GMime splits the MIME tree; decoding (transfer encodings,
 * charsets, RFC 2047, addresses, HTML) and the customer/bounce/auto-reply verdict are done here. */
#include "mail.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include <omni/omni.h>

#define DEF_MAX_BYTES (32u * 1024 * 1024)
#define DEF_MAX_HEADERS 1000
#define DEF_MAX_PARTS 512
#define DEF_MAX_DEPTH 32
#define DEF_MAX_TEXT 262144
/* Classification reads this much of the body: enough for any bounce or vacation notice, and
 * it keeps a 30 MB mail from costing 30 MB of substring scans per rule. */
#define SCAN_BYTES 16384
#define DIAG_MAX 400

typedef charset_buf_t buf_t;

/* ------------------------------------------------------------------------------------------ */
/* GMime */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *parser_opts;

/* GMime keeps global state (charset tables, type registrations): initialize once per process.
 * Parameters stay strict so encoded-words in file names reach our own decoder, which joins
 * words split mid-character; GMime 3.2.13's own decoder drops the second word. */
static void gmime_setup(void)
{
    g_mime_init();
    parser_opts = g_mime_parser_options_new();
    if (parser_opts) {
        g_mime_parser_options_set_parameter_compliance_mode(parser_opts, GMIME_RFC_COMPLIANCE_STRICT);
        g_mime_parser_options_set_rfc2047_compliance_mode(parser_opts, GMIME_RFC_COMPLIANCE_STRICT);
        g_mime_parser_options_set_address_compliance_mode(parser_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    }
}

void mail_shutdown(void)
{
    if (parser_opts) {
        g_mime_parser_options_free(parser_opts);
        parser_opts = NULL;
        g_mime_shutdown();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* small string helpers */

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static inline int is_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static inline int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ci_eq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int ci_prefix(const char *s, size_t n, const char *pre)
{
    size_t k = strlen(pre);
    if (k > n)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)pre[i]))
            return 0;
    return 1;
}

/* Case-insensitive (ASCII) substring search within s[0..n). */
static const char *ci_find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0 || k > n)
        return NULL;
    int first = lower((unsigned char)needle[0]);
    for (size_t i = 0; i + k <= n; i++)
        if (lower((unsigned char)s[i]) == first && ci_prefix(s + i, n - i, needle))
            return s + i;
    return NULL;
}

static void lower_str(char *s)
{
    for (; s && *s; s++)
        *s = (char)lower((unsigned char)*s);
}

/* Header values arrive folded with their CR/LF; unfolding drops the line breaks (RFC 5322 §2.2.3)
 * and trims. Returns a new string. */
static char *unfold(const char *raw)
{
    buf_t b = {0};
    if (!raw)
        return NULL;
    for (const char *p = raw; *p; p++)
        if (*p != '\r' && *p != '\n')
            charset_buf_putc(&b, *p);
    size_t n;
    char *s = charset_buf_take(&b, &n);
    if (!s)
        return NULL;
    size_t a = 0;
    while (a < n && is_ws((unsigned char)s[a]))
        a++;
    while (n > a && is_ws((unsigned char)s[n - 1]))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
    return s;
}

/* Ids, addresses and report fields are ASCII by RFC (UTF-8 by RFC 6532); anything else is
 * made valid UTF-8 here, in place. */
static int utf8_field(char **s, unsigned *rep)
{
    if (!*s)
        return 0;
    char *u;
    size_t ul;
    if (charset_to_utf8("utf-8", *s, strlen(*s), &u, &ul, rep) != 0)
        return OMNI_ENOMEM;
    free(*s);
    *s = u;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* transfer encodings (our own: GMime 3.2.13 stops base64 at the first '=' of a chunked body) */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Lenient base64: skips whitespace, restarts after '=' padding (chunks encoded separately are
 * concatenated, as sent by some mailers), keeps the bytes of an unfinished quantum. Anything else
 * marks the data damaged and is skipped. */
static void b64_decode(const char *s, size_t n, buf_t *out, int *damaged)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        int v = b64val(c);
        if (v < 0) {
            if (c == '=') {
                acc = 0; /* the padding ends this quantum; its leftover bits are zero fill */
                bits = 0;
            } else if (!is_ws(c) && damaged) {
                *damaged = 1;
            }
            continue;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            charset_buf_putc(out, (char)((acc >> bits) & 0xFF));
        }
    }
    if (bits >= 6 && damaged)
        *damaged = 1; /* a lone character: the data was cut off */
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Quoted-printable; a broken escape is kept literally, as RFC 2045 §6.7 suggests. */
static void qp_decode(const char *s, size_t n, buf_t *out, int header_q)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (header_q && c == '_') {
            charset_buf_putc(out, ' ');
        } else if (c == '=') {
            if (i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 && hexval((unsigned char)s[i + 2]) >= 0) {
                charset_buf_putc(out, (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2])));
                i += 2;
            } else if (!header_q) {
                size_t j = i + 1; /* soft line break: '=' then optional blanks then EOL */
                while (j < n && (s[j] == ' ' || s[j] == '\t'))
                    j++;
                if (j < n && (s[j] == '\r' || s[j] == '\n')) {
                    if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')
                        j++;
                    i = j;
                } else if (j >= n) {
                    i = j;
                } else {
                    charset_buf_putc(out, c);
                }
            } else {
                charset_buf_putc(out, c);
            }
        } else {
            charset_buf_putc(out, c);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 2047 */

/* Append raw (not encoded-word) header bytes: 8-bit text was sent unencoded, in the message's
 * charset if it declared one, else whatever sniffing finds. */
static void put_raw_text(buf_t *out, const char *s, size_t n, const char *fallback, unsigned *rep)
{
    int plain = 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == 0x1B || s[i] == 0) {
            plain = 0;
            break;
        }
    if (plain) {
        charset_buf_put(out, s, n);
        return;
    }
    char *u;
    size_t ul;
    if (charset_to_utf8(fallback, s, n, &u, &ul, rep) != 0) {
        out->oom = 1;
        return;
    }
    charset_buf_put(out, u, ul);
    free(u);
}

static void flush_words(buf_t *out, buf_t *pend, const char *cs, unsigned *rep)
{
    if (pend->len == 0)
        return;
    char *u;
    size_t ul;
    if (charset_to_utf8(cs, pend->p, pend->len, &u, &ul, rep) != 0) {
        out->oom = 1;
    } else {
        charset_buf_put(out, u, ul);
        free(u);
    }
    pend->len = 0;
}

/* Where the next "?=" and the next blank or control byte are, from a position on. Candidates
 * are tried left to right, so both only move forward: without them a header full of "=?x?q?"
 * and no terminator would be rescanned once per candidate. */
typedef struct {
    size_t term, stop;
} ew_cache_t;

static size_t ew_next(const char *s, size_t n, size_t from, size_t *cache, int want_term)
{
    if (*cache != (size_t)-1 && *cache >= from)
        return *cache;
    size_t j = from;
    if (want_term)
        while (j + 1 < n && !(s[j] == '?' && s[j + 1] == '='))
            j++;
    else
        while (j < n && !is_ws((unsigned char)s[j]) && (unsigned char)s[j] >= 0x20)
            j++;
    if (want_term && j + 1 >= n)
        j = n;
    return *cache = j;
}

/* Recognize "=?charset?B|Q?text?=" at s[i] (s[i..i+1] == "=?"); returns its length or 0. */
static size_t encoded_word(const char *s, size_t n, size_t i0, ew_cache_t *ec, const char **cs,
                           size_t *cslen, char *enc, const char **text, size_t *textlen)
{
    size_t i = i0 + 2;
    while (i < n && s[i] != '?' && !is_ws((unsigned char)s[i]) && (unsigned char)s[i] > 0x20 && i < i0 + 66)
        i++;
    if (i >= n || s[i] != '?' || i == i0 + 2)
        return 0;
    *cs = s + i0 + 2;
    *cslen = i - i0 - 2;
    if (i + 2 >= n || s[i + 2] != '?')
        return 0;
    char e = (char)lower((unsigned char)s[i + 1]);
    if (e != 'b' && e != 'q')
        return 0;
    *enc = e;
    size_t t = i + 3;
    size_t term = ew_next(s, n, t, &ec->term, 1), stop = ew_next(s, n, t, &ec->stop, 0);
    if (term >= n || stop < term)
        return 0;
    *text = s + t;
    *textlen = term - t;
    return term + 2 - i0;
}

/* Decode an unfolded header value: encoded-words (adjacent ones joined as bytes per charset,
 * the blanks between them dropped) and raw text. Returns a new UTF-8 string. */
static char *decode_words(const char *s, size_t n, const char *fallback, unsigned *rep)
{
    buf_t out = {0}, pend = {0};
    char pend_cs[80] = "";
    size_t lit = 0, i = 0;
    int prev_word = 0;
    ew_cache_t ec = {(size_t)-1, (size_t)-1};
    while (i + 1 < n) {
        const char *cs, *text;
        size_t cslen, textlen, wl;
        char enc;
        if (s[i] != '=' || s[i + 1] != '?' ||
            !(wl = encoded_word(s, n, i, &ec, &cs, &cslen, &enc, &text, &textlen))) {
            i++;
            continue;
        }
        int blank = 1;
        for (size_t k = lit; k < i; k++)
            if (!is_ws((unsigned char)s[k]))
                blank = 0;
        char csn[80];
        memcpy(csn, cs, cslen);
        csn[cslen] = 0;
        if (!(prev_word && blank)) {
            flush_words(&out, &pend, pend_cs, rep);
            put_raw_text(&out, s + lit, i - lit, fallback, rep);
        } else if (!ci_eq(csn, pend_cs)) {
            flush_words(&out, &pend, pend_cs, rep);
        }
        memcpy(pend_cs, csn, cslen + 1);
        if (enc == 'b')
            b64_decode(text, textlen, &pend, NULL);
        else
            qp_decode(text, textlen, &pend, 1);
        prev_word = 1;
        i += wl;
        lit = i;
    }
    flush_words(&out, &pend, pend_cs, rep);
    put_raw_text(&out, s + lit, n - lit, fallback, rep);
    if (pend.oom)
        out.oom = 1;
    charset_buf_free(&pend);
    /* Control characters (a folded CR, a stray TAB) are blanks in a one-line field. */
    for (size_t k = 0; k < out.len; k++)
        if ((unsigned char)out.p[k] < 0x20 || out.p[k] == 0x7F)
            out.p[k] = ' ';
    return charset_buf_take(&out, NULL);
}

static char *decode_header_fb(const char *raw, const char *fallback, unsigned *rep)
{
    char *u = unfold(raw);
    if (!u)
        return NULL;
    char *d = decode_words(u, strlen(u), fallback, rep);
    free(u);
    return d;
}

char *mail_decode_header(const char *raw_value, unsigned *replaced)
{
    return raw_value ? decode_header_fb(raw_value, NULL, replaced) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* addresses and message ids */

typedef struct {
    char *spec;  /* cleaned addr-spec as written ("" for <>), may lack '@' */
    char *name;  /* raw display phrase (quotes removed, not yet RFC 2047-decoded) or comment */
    int valid;   /* spec is local@domain */
} mbox_t;

static void mbox_free(mbox_t *m)
{
    free(m->spec);
    free(m->name);
    m->spec = m->name = NULL;
}

/* Is spec a usable addr-spec? Lower-cases its domain in place. */
static int addr_ok(char *spec)
{
    char *at = strrchr(spec, '@');
    if (!at || at == spec || !at[1])
        return 0;
    for (char *p = spec; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7F || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
            c == ';' || c == '\\' || (c == '"' && p > at) || (c == ':' && p > at && at[1] != '['))
            return 0;
    }
    if (spec[0] == '"' && (at - spec < 2 || at[-1] != '"'))
        return 0;
    if (strcmp(spec, "\"\"@") == 0)
        return 0;
    lower_str(at + 1);
    return 1;
}

/* Copy a phrase without its quoting: quotes dropped, backslash escapes resolved, comments kept
 * only when there is nothing else (they hold the name in "addr (Name)"). */
static char *phrase(const char *s, size_t n, int keep_comments)
{
    buf_t b = {0};
    int q = 0, depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && (q || depth)) {
            charset_buf_putc(&b, s[++i]);
        } else if (c == '"' && !depth) {
            q = !q;
        } else if (c == '(' && !q) {
            if (depth++ && keep_comments)
                charset_buf_putc(&b, c);
        } else if (c == ')' && !q && depth) {
            if (--depth && keep_comments)
                charset_buf_putc(&b, c);
        } else if (!depth || keep_comments) {
            charset_buf_putc(&b, c);
        }
    }
    size_t len;
    char *p = charset_buf_take(&b, &len);
    if (!p)
        return NULL;
    size_t a = 0;
    while (a < len && is_ws((unsigned char)p[a]))
        a++;
    while (len > a && is_ws((unsigned char)p[len - 1]))
        len--;
    memmove(p, p + a, len - a);
    p[len - a] = 0;
    return p;
}

/* One mailbox from s[0..n): "Name <spec>", "spec (Name)", "<spec>", "spec". */
static int parse_mbox(const char *s, size_t n, mbox_t *m)
{
    int rc = OMNI_ENOMEM, q = 0, depth = 0;
    size_t lt = n;
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && (q || depth)) {
            i++;
        } else if (c == '"' && !depth) {
            q = !q;
        } else if (c == '(' && !q) {
            depth++;
        } else if (c == ')' && !q && depth) {
            depth--;
        } else if (c == '<' && !q && !depth) {
            lt = i;
            break;
        }
    }
    char *spec = NULL;
    if (lt < n) {
        size_t e = lt + 1;
        while (e < n && s[e] != '>')
            e++;
        spec = phrase(s + lt + 1, e - lt - 1, 0);
        m->name = phrase(s, lt, 0);
        if (!m->name || !*m->name) {
            free(m->name);
            m->name = e < n ? phrase(s + e + 1, n - e - 1, 1) : NULL;
        }
    } else {
        /* The spec is what remains without comments; the comment, if any, is the name. */
        buf_t sb = {0}, nb = {0};
        int dq = 0, d = 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c == '"' && !d) {
                dq = !dq;
                charset_buf_putc(&sb, c);
            } else if (c == '(' && !dq) {
                if (d++)
                    charset_buf_putc(&nb, c);
            } else if (c == ')' && !dq && d) {
                if (--d)
                    charset_buf_putc(&nb, c);
            } else if (d) {
                charset_buf_putc(&nb, c);
            } else if (!is_ws((unsigned char)c) || dq) {
                charset_buf_putc(&sb, c);
            }
        }
        spec = charset_buf_take(&sb, NULL);
        size_t nl;
        char *nm = charset_buf_take(&nb, &nl);
        m->name = nm ? phrase(nm, nl, 1) : NULL;
        free(nm);
    }
    m->spec = spec;
    if (!spec || (!m->name && !(m->name = strdup(""))))
        goto out;
    /* Source routes ("@a,@b:user@c") are obsolete; the mailbox is after the colon. */
    char *colon = spec[0] == '@' ? strchr(spec, ':') : NULL;
    if (colon)
        memmove(spec, colon + 1, strlen(colon + 1) + 1);
    m->valid = addr_ok(spec);
    rc = 0;
out:
    if (rc)
        mbox_free(m);
    return rc;
}

/* Split an address list at top-level commas (and group syntax "name: a, b;") and hand each
 * mailbox to cb; stops early when cb returns non-zero. */
typedef int (*mbox_cb)(void *u, mbox_t *m);

static int parse_addrs(const char *v, mbox_cb cb, void *u)
{
    size_t n = strlen(v), start = 0;
    int q = 0, depth = 0, angle = 0, lit = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? v[i] : ',';
        if (i < n) {
            if (c == '\\' && (q || depth) && i + 1 < n) {
                i++;
                continue;
            }
            if (c == '"' && !depth) {
                q = !q;
                continue;
            }
            if (q)
                continue;
            if (c == '(') {
                depth++;
                continue;
            }
            if (c == ')' && depth) {
                depth--;
                continue;
            }
            if (depth)
                continue;
            if (c == '<') angle = 1;
            else if (c == '>') angle = 0;
            else if (c == '[') lit = 1;
            else if (c == ']') lit = 0;
            if (angle || lit)
                continue;
            if (c == ':') {
                start = i + 1; /* a group's display name: not a mailbox */
                continue;
            }
        }
        if (c != ',' && c != ';')
            continue;
        size_t a = start, b = i;
        start = i + 1;
        while (a < b && is_ws((unsigned char)v[a]))
            a++;
        if (a == b)
            continue;
        mbox_t m;
        if (parse_mbox(v + a, b - a, &m) != 0)
            return OMNI_ENOMEM;
        int stop = cb(u, &m);
        mbox_free(&m);
        if (stop < 0)
            return stop;
        if (stop)
            return 0;
        q = depth = angle = lit = 0;
    }
    return 0;
}

/* Message ids: the contents of <...>; a bare token when a sender forgot the brackets. */
typedef struct {
    char **v;
    size_t n, cap;
    int oom;
} strv_t;

static void strv_push(strv_t *sv, const char *s, size_t n)
{
    if (sv->oom)
        return;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof(*v));
        if (!v) {
            sv->oom = 1;
            return;
        }
        sv->v = v;
        sv->cap = cap;
    }
    char *p = xstrndup(s, n);
    if (!p) {
        sv->oom = 1;
        return;
    }
    sv->v[sv->n++] = p;
}

static void strv_free(strv_t *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof(*sv));
}

static void msgids(const char *raw, strv_t *out, size_t max)
{
    char *v = unfold(raw);
    if (!v) {
        out->oom = 1;
        return;
    }
    size_t n = strlen(v);
    int bracketed = strchr(v, '<') != NULL;
    for (size_t i = 0; i < n && out->n < max;) {
        if (bracketed) {
            char *lt = memchr(v + i, '<', n - i);
            if (!lt)
                break;
            char *gt = memchr(lt, '>', (size_t)(v + n - lt));
            size_t e = gt ? (size_t)(gt - v) : n;
            size_t a = (size_t)(lt - v) + 1, b = e;
            while (a < b && is_ws((unsigned char)v[a]))
                a++;
            while (b > a && is_ws((unsigned char)v[b - 1]))
                b--;
            int ok = b > a;
            for (size_t k = a; k < b; k++)
                if (is_ws((unsigned char)v[k]) || v[k] == '<')
                    ok = 0;
            if (ok)
                strv_push(out, v + a, b - a);
            i = e + 1;
        } else {
            while (i < n && (is_ws((unsigned char)v[i]) || v[i] == ','))
                i++;
            size_t a = i;
            while (i < n && !is_ws((unsigned char)v[i]) && v[i] != ',' && v[i] != '(')
                i++;
            if (i > a)
                strv_push(out, v + a, i - a);
            if (i < n && v[i] == '(')
                break; /* a comment follows: no more ids worth guessing at */
        }
    }
    free(v);
}

static char *first_msgid(const char *raw, int *oom)
{
    strv_t sv = {0};
    char *id = NULL;
    if (!raw)
        return NULL;
    msgids(raw, &sv, 1);
    if (sv.oom)
        *oom = 1;
    if (sv.n) {
        id = sv.v[0];
        sv.v[0] = NULL;
    }
    strv_free(&sv);
    return id;
}

/* ------------------------------------------------------------------------------------------ */
/* HTML to text */

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
    {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB}, {"raquo", 0xBB}, {"bull", 0x2022}, {"middot", 0xB7},
    {"yen", 0xA5}, {"euro", 0x20AC}, {"pound", 0xA3}, {"cent", 0xA2}, {"times", 0xD7},
    {"divide", 0xF7}, {"deg", 0xB0}, {"plusmn", 0xB1}, {"sect", 0xA7}, {"para", 0xB6},
    {"shy", 0xAD}, {"zwnj", 0x200C}, {"zwj", 0x200D}, {"ensp", ' '}, {"emsp", ' '},
    {"thinsp", ' '}, {"iexcl", 0xA1}, {"iquest", 0xBF}, {"eacute", 0xE9}, {"egrave", 0xE8},
    {"agrave", 0xE0}, {"aacute", 0xE1}, {"ccedil", 0xE7}, {"uuml", 0xFC}, {"ouml", 0xF6},
    {"auml", 0xE4}, {"szlig", 0xDF}, {"larr", 0x2190}, {"rarr", 0x2192}, {"uarr", 0x2191},
    {"darr", 0x2193}, {"hearts", 0x2665}, {"check", 0x2713}, {"ordm", 0xBA}, {"ordf", 0xAA},
};

/* Decode the entity at s ('&' at s[0]); returns its length (0: not an entity). */
static size_t entity(const char *s, size_t n, uint32_t *cp)
{
    size_t i = 1;
    if (i < n && s[i] == '#') {
        uint32_t v = 0;
        int hex = i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X'), digits = 0;
        i += hex ? 2 : 1;
        for (; i < n && digits < 8; i++, digits++) {
            int d = hex ? hexval((unsigned char)s[i]) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
            if (d < 0)
                break;
            v = v * (hex ? 16 : 10) + (uint32_t)d;
        }
        if (!digits)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        /* Windows-1252 numbers that HTML reinterprets (&#150; is a dash, not a C1 control). */
        static const uint16_t c1[32] = {0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
                                        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};
        if (v >= 0x80 && v < 0xA0)
            v = c1[v - 0x80];
        *cp = v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ? 0xFFFD : v;
        return i;
    }
    while (i < n && i < 12 && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                               (s[i] >= '0' && s[i] <= '9')))
        i++;
    for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
        size_t l = strlen(entities[k].name);
        if (l == i - 1 && memcmp(s + 1, entities[k].name, l) == 0) {
            *cp = entities[k].cp;
            return i < n && s[i] == ';' ? i + 1 : i;
        }
    }
    return 0;
}

static int tag_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

/* Readable text from HTML: tags dropped (script/style/head contents too), entities decoded,
 * block elements as line breaks, blanks collapsed outside <pre>. One linear pass, output
 * never longer than the input plus the inserted line breaks. */
static void html_to_text(const char *s, size_t n, buf_t *out)
{
    static const char *const skip[] = {"script", "style", "head", "title", "template", "xml", NULL};
    static const char *const block[] = {"p", "div", "br", "li", "tr", "table", "ul", "ol", "h1",
                                        "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
                                        "dl", "dt", "dd", "section", "article", "header", "footer",
                                        "center", "address", "form", "fieldset", "body", "html",
                                        "caption", "thead", "tbody", "tfoot", "nav", "aside",
                                        "figure", "figcaption", "main", NULL};
    size_t start = out->len;
    int pre = 0, space = 0, nl = 2; /* pending blank / consecutive newlines at the output's end */
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '<') {
            if (i + 3 < n && memcmp(s + i, "<!--", 4) == 0) {
                const char *e = NULL;
                for (size_t k = i + 4; k + 2 < n && !e; k++)
                    if (memcmp(s + k, "-->", 3) == 0)
                        e = s + k;
                i = e ? (size_t)(e - s) + 3 : n;
                continue;
            }
            size_t j = i + 1;
            int closing = j < n && s[j] == '/';
            if (closing)
                j++;
            char name[16];
            size_t nl_ = 0;
            while (j < n && nl_ + 1 < sizeof(name) &&
                   ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')))
                name[nl_++] = (char)lower((unsigned char)s[j++]);
            name[nl_] = 0;
            if (!nl_ && !(j < n && (s[j] == '!' || s[j] == '?'))) {
                /* "a < b": not a tag */
                if (space && nl == 0)
                    charset_buf_putc(out, ' ');
                space = 0;
                charset_buf_putc(out, '<');
                nl = 0;
                i++;
                continue;
            }
            /* Find the tag's end, honouring quoted attribute values (a quote opens one only
             * right after '=': the apostrophe in alt=Bob's does not). */
            char quote = 0, prev = 0;
            size_t k = j;
            for (; k < n; k++) {
                if (quote) {
                    if (s[k] == quote)
                        quote = 0;
                } else if ((s[k] == '"' || s[k] == '\'') && prev == '=') {
                    quote = s[k];
                } else if (s[k] == '>') {
                    break;
                }
                if (!is_ws((unsigned char)s[k]))
                    prev = s[k];
            }
            i = k < n ? k + 1 : n;
            if (!closing && tag_in(name, skip)) {
                /* Skip to the matching close tag. */
                char close[24];
                snprintf(close, sizeof(close), "</%s", name);
                const char *e = ci_find(s + i, n - i, close);
                if (!e) {
                    i = n;
                } else {
                    const char *gt = memchr(e, '>', (size_t)(s + n - e));
                    i = gt ? (size_t)(gt - s) + 1 : n;
                }
                continue;
            }
            if (strcmp(name, "pre") == 0)
                pre = !closing;
            if (tag_in(name, block)) {
                int want = (strcmp(name, "p") == 0 || name[0] == 'h' || strcmp(name, "blockquote") == 0 ||
                            strcmp(name, "table") == 0) && strcmp(name, "hr") != 0 && strcmp(name, "html") != 0
                               ? 2 : 1;
                if (strcmp(name, "br") == 0 || strcmp(name, "hr") == 0) {
                    charset_buf_putc(out, '\n');
                    nl++;
                } else {
                    while (nl < want) {
                        charset_buf_putc(out, '\n');
                        nl++;
                    }
                }
                space = 0;
            } else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
                space = 1;
            }
            continue;
        }
        uint32_t cp = (unsigned char)c;
        size_t adv = 1;
        if (c == '&') {
            size_t el = entity(s + i, n - i, &cp);
            if (el)
                adv = el;
            else
                cp = '&';
        }
        i += adv;
        if (!pre && (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n')) {
            space = 1;
            continue;
        }
        if (pre && cp == '\r')
            continue;
        if (space && nl == 0)
            charset_buf_putc(out, ' ');
        space = 0;
        if (cp < 0x80 || adv > 1)
            charset_buf_put_cp(out, cp);
        else
            charset_buf_putc(out, c); /* UTF-8 bytes pass through unchanged */
        nl = cp == '\n' ? nl + 1 : 0;
    }
    /* Trim blank lines and trailing blanks the markup left behind. */
    size_t w = start;
    int run = 0;
    for (size_t r = start; r < out->len; r++) {
        char ch = out->p[r];
        if (ch == '\n') {
            while (w > start && out->p[w - 1] == ' ')
                w--;
            if (w == start || ++run > 2)
                continue;
        } else {
            run = 0;
        }
        out->p[w++] = ch;
    }
    while (w > start && (out->p[w - 1] == '\n' || out->p[w - 1] == ' '))
        w--;
    out->len = w;
}

/* ------------------------------------------------------------------------------------------ */
/* parse context */

typedef struct {
    GMimePart *part;
    int html;
} text_leaf_t;

typedef struct {
    mail_limits_t lim;
    mail_t *m;
    size_t parts;
    int err;
    /* body */
    text_leaf_t *leaves;
    size_t n_leaves, cap_leaves;
    buf_t atts; /* mail_attachment_t array */
    /* reports */
    char *report_type;     /* report-type of the first multipart/report, lower case */
    int has_dsn, has_arf;
    buf_t dsn, arf, orig_headers;
    GMimeMessage *orig;    /* first attached message (borrowed) */
    const char *fallback;  /* charset for raw 8-bit header bytes */
} ctx_t;

static const char *hdr(GMimeObject *o, const char *name)
{
    GMimeHeaderList *hl = o ? g_mime_object_get_header_list(o) : NULL;
    GMimeHeader *h = hl ? g_mime_header_list_get_header(hl, name) : NULL;
    return h ? g_mime_header_get_raw_value(h) : NULL;
}

/* Every entity, embedded messages included, counts against the limits before anything else
 * is decoded. */
static int check_tree(ctx_t *c, GMimeObject *o, size_t depth)
{
    if (!o)
        return 0;
    if (++c->parts > c->lim.max_parts || depth > c->lim.max_depth)
        return OMNI_ETOOBIG;
    GMimeHeaderList *hl = g_mime_object_get_header_list(o);
    if (hl && (size_t)g_mime_header_list_get_count(hl) > c->lim.max_headers)
        return OMNI_ETOOBIG;
    if (GMIME_IS_MULTIPART(o)) {
        int n = g_mime_multipart_get_count((GMimeMultipart *)o);
        for (int i = 0; i < n; i++) {
            int rc = check_tree(c, g_mime_multipart_get_part((GMimeMultipart *)o, i), depth + 1);
            if (rc)
                return rc;
        }
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *msg = g_mime_message_part_get_message((GMimeMessagePart *)o);
        if (msg) {
            hl = g_mime_object_get_header_list((GMimeObject *)msg);
            if (hl && (size_t)g_mime_header_list_get_count(hl) > c->lim.max_headers)
                return OMNI_ETOOBIG;
            return check_tree(c, g_mime_message_get_mime_part(msg), depth + 1);
        }
    }
    return 0;
}

/* The decoded (transfer-encoding removed) bytes of a leaf. */
static void part_bytes(GMimePart *p, buf_t *out, int *damaged)
{
    GMimeDataWrapper *w = g_mime_part_get_content(p);
    GMimeStream *s = w ? g_mime_data_wrapper_get_stream(w) : NULL;
    if (!s)
        return;
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(w);
    if (enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GMimeStream *mem = g_mime_stream_mem_new();
        if (!mem) {
            out->oom = 1;
            return;
        }
        g_mime_data_wrapper_write_to_stream(w, mem);
        GByteArray *ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
        if (ba)
            charset_buf_put(out, ba->data, ba->len);
        g_object_unref(mem);
        return;
    }
    buf_t raw = {0};
    char chunk[8192];
    g_mime_stream_reset(s);
    for (;;) {
        ssize_t r = g_mime_stream_read(s, chunk, sizeof(chunk));
        if (r <= 0)
            break;
        charset_buf_put(&raw, chunk, (size_t)r);
    }
    if (raw.oom) {
        out->oom = 1;
    } else if (enc == GMIME_CONTENT_ENCODING_BASE64) {
        b64_decode(raw.p ? raw.p : "", raw.len, out, damaged);
    } else if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        qp_decode(raw.p ? raw.p : "", raw.len, out, 0);
    } else {
        charset_buf_put(out, raw.p, raw.len);
    }
    charset_buf_free(&raw);
}

static char *ctype_of(GMimeObject *o)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    const char *t = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *st = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    size_t n = strlen(t ? t : "text") + strlen(st ? st : "plain") + 2;
    char *s = malloc(n);
    if (s) {
        snprintf(s, n, "%s/%s", t ? t : "text", st ? st : "plain");
        lower_str(s);
    }
    return s;
}

static int is_type(GMimeObject *o, const char *type, const char *sub)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    const char *t = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *st = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    return t && ci_eq(t, type) && (!sub || (st && ci_eq(st, sub)));
}

static const char *disposition(GMimeObject *o)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
    return d ? g_mime_content_disposition_get_disposition(d) : NULL;
}

/* One parameter of a raw Content-Type / Content-Disposition value, as UTF-8. RFC 2231 forms
 * (name*=charset'lang'%XX, continuations name*0*= name*1=) win over name="..."; the latter's
 * RFC 2047 words go through our decoder, as GMime 3.2.13 loses words split mid-character. */
static char *raw_param(const char *raw, const char *pname, const char *fallback, unsigned *rep, int *oom)
{
    enum { MAXSEG = 64 };
    char *segv[MAXSEG] = {0};
    int segx[MAXSEG] = {0};
    char *plain = NULL, *ext = NULL, *res = NULL;
    buf_t bytes = {0};
    char *v = raw ? unfold(raw) : NULL;
    size_t pl = strlen(pname);
    if (!v) {
        *oom = raw != NULL;
        return NULL;
    }
    size_t n = strlen(v), i = 0;
    int q = 0, have_seg = 0;
    while (i < n && (q || v[i] != ';')) /* the type itself */
        q = v[i++] == '"' ? !q : q;
    while (i < n) {
        size_t a = ++i;
        q = 0;
        while (i < n && (q || v[i] != ';')) {
            if (v[i] == '\\' && q && i + 1 < n)
                i++;
            else if (v[i] == '"')
                q = !q;
            i++;
        }
        char *eq = memchr(v + a, '=', i - a);
        if (!eq)
            continue;
        size_t na = a, ne = (size_t)(eq - v);
        while (na < ne && is_ws((unsigned char)v[na]))
            na++;
        while (ne > na && is_ws((unsigned char)v[ne - 1]))
            ne--;
        size_t va = (size_t)(eq - v) + 1, ve = i;
        while (va < ve && is_ws((unsigned char)v[va]))
            va++;
        while (ve > va && is_ws((unsigned char)v[ve - 1]))
            ve--;
        if (ne - na < pl || !ci_prefix(v + na, ne - na, pname))
            continue;
        char *val;
        if (va < ve && v[va] == '"') {
            val = phrase(v + va, ve - va, 1); /* unquoted, escapes resolved */
        } else {
            val = xstrndup(v + va, ve - va);
        }
        if (!val) {
            *oom = 1;
            goto out;
        }
        const char *rest = v + na + pl;
        size_t rl = ne - na - pl;
        if (rl == 0) {
            if (!plain) {
                plain = val;
                val = NULL;
            }
        } else if (rl == 1 && rest[0] == '*') {
            if (!ext) {
                ext = val;
                val = NULL;
            }
        } else if (rest[0] == '*' && rest[1] >= '0' && rest[1] <= '9') {
            size_t k = 1, idx = 0;
            while (k < rl && rest[k] >= '0' && rest[k] <= '9' && idx < MAXSEG)
                idx = idx * 10 + (size_t)(rest[k++] - '0');
            int star = k < rl && rest[k] == '*';
            if (idx < MAXSEG && k + (size_t)star == rl && !segv[idx]) {
                segv[idx] = val;
                segx[idx] = star;
                val = NULL;
                have_seg = 1;
            }
        }
        free(val);
    }
    char cs[64] = "";
    if (have_seg || ext) {
        /* charset'language'%XX...: the charset comes from the first (extended) segment. */
        for (int k = 0; k < (have_seg ? MAXSEG : 1); k++) {
            const char *sv = have_seg ? segv[k] : ext;
            int x = have_seg ? segx[k] : 1;
            if (!sv) {
                if (have_seg)
                    break; /* continuations must be contiguous */
                continue;
            }
            if (x && k == 0) {
                const char *q1 = strchr(sv, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
                if (q2) {
                    size_t cl = (size_t)(q1 - sv) < sizeof(cs) - 1 ? (size_t)(q1 - sv) : sizeof(cs) - 1;
                    memcpy(cs, sv, cl);
                    cs[cl] = 0;
                    sv = q2 + 1;
                }
            }
            for (const char *p = sv; *p; p++) {
                if (x && *p == '%' && hexval((unsigned char)p[1]) >= 0 && hexval((unsigned char)p[2]) >= 0) {
                    charset_buf_putc(&bytes, (char)(hexval((unsigned char)p[1]) * 16 + hexval((unsigned char)p[2])));
                    p += 2;
                } else {
                    charset_buf_putc(&bytes, *p);
                }
            }
        }
        if (bytes.oom) {
            *oom = 1;
            goto out;
        }
        size_t ol;
        if (charset_to_utf8(cs[0] ? cs : fallback, bytes.p ? bytes.p : "", bytes.len, &res, &ol, rep) != 0)
            *oom = 1;
    } else if (plain) {
        res = decode_words(plain, strlen(plain), fallback, rep);
        if (!res)
            *oom = 1;
    }
out:
    for (int k = 0; k < MAXSEG; k++)
        free(segv[k]);
    free(plain);
    free(ext);
    free(v);
    charset_buf_free(&bytes);
    return res;
}

/* The file name a part carries (Content-Disposition filename, else Content-Type name). */
static char *filename_of(GMimeObject *o, const char *fallback, unsigned *rep, int *oom)
{
    char *f = raw_param(hdr(o, "Content-Disposition"), "filename", fallback, rep, oom);
    if (f && !*f) {
        free(f);
        f = NULL;
    }
    if (!f && !*oom)
        f = raw_param(hdr(o, "Content-Type"), "name", fallback, rep, oom);
    return f;
}

static int add_attachment(ctx_t *c, GMimeObject *o, int in_related)
{
    mail_attachment_t a = {0};
    buf_t data = {0};
    int rc = OMNI_ENOMEM;
    int oom = 0;
    a.name = filename_of(o, c->fallback, &c->m->replaced, &oom);
    if (!a.name && !oom)
        a.name = strdup("");
    a.content_type = ctype_of(o);
    const char *cid = hdr(o, "Content-ID");
    a.content_id = cid ? first_msgid(cid, &oom) : NULL;
    if (!a.content_id && !oom)
        a.content_id = strdup("");
    if (!a.name || !a.content_type || !a.content_id || utf8_field(&a.content_type, &c->m->replaced) ||
        utf8_field(&a.content_id, &c->m->replaced))
        goto out;
    const char *disp = disposition(o);
    a.is_inline = disp ? ci_eq(disp, "inline") : (in_related && a.content_id[0]);
    if (GMIME_IS_PART(o)) {
        part_bytes((GMimePart *)o, &data, &a.damaged);
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        /* An attached message has no content stream of its own in GMime; writing it out gives
         * its bytes (raw header values, original bodies). */
        GMimeMessage *msg = g_mime_message_part_get_message((GMimeMessagePart *)o);
        GMimeStream *mem = msg ? g_mime_stream_mem_new() : NULL;
        if (mem) {
            g_mime_object_write_to_stream((GMimeObject *)msg, NULL, mem);
            GByteArray *ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
            if (ba)
                charset_buf_put(&data, ba->data, ba->len);
            g_object_unref(mem);
        }
    }
    if (data.oom)
        goto out;
    a.size = data.len;
    a.data = (uint8_t *)data.p;
    data.p = NULL;
    if (!a.data && !(a.data = malloc(1)))
        goto out;
    charset_buf_put(&c->atts, &a, sizeof(a));
    if (c->atts.oom)
        goto out;
    memset(&a, 0, sizeof(a));
    rc = 0;
out:
    free(a.name);
    free(a.content_type);
    free(a.content_id);
    free(a.data);
    charset_buf_free(&data);
    return rc;
}

static int add_leaf(ctx_t *c, GMimePart *p, int html)
{
    if (c->n_leaves == c->cap_leaves) {
        size_t cap = c->cap_leaves ? c->cap_leaves * 2 : 4;
        text_leaf_t *v = realloc(c->leaves, cap * sizeof(*v));
        if (!v)
            return OMNI_ENOMEM;
        c->leaves = v;
        c->cap_leaves = cap;
    }
    c->leaves[c->n_leaves].part = p;
    c->leaves[c->n_leaves].html = html;
    c->n_leaves++;
    return 0;
}

/* A text part that is the body rather than an attached file. */
static int body_text(GMimeObject *o, int *html)
{
    if (!GMIME_IS_PART(o) || !is_type(o, "text", NULL))
        return 0;
    const char *d = disposition(o);
    if (d && ci_eq(d, "attachment"))
        return 0;
    int oom = 0;
    char *fn = filename_of(o, NULL, NULL, &oom);
    free(fn);
    if (fn)
        return 0;
    if (is_type(o, "text", "plain") || is_type(o, "text", "enriched")) {
        *html = 0;
        return 1;
    }
    if (is_type(o, "text", "html")) {
        *html = 1;
        return 1;
    }
    return 0;
}

/* Which text a subtree would contribute: 2 plain, 1 html only, 0 none. */
static int text_rank(GMimeObject *o, size_t depth)
{
    int html, best = 0;
    if (depth > DEF_MAX_DEPTH * 4)
        return 0;
    if (body_text(o, &html))
        return html ? 1 : 2;
    if (GMIME_IS_MULTIPART(o)) {
        int n = g_mime_multipart_get_count((GMimeMultipart *)o);
        for (int i = 0; i < n && best < 2; i++) {
            int r = text_rank(g_mime_multipart_get_part((GMimeMultipart *)o, i), depth + 1);
            if (r > best)
                best = r;
        }
    }
    return best;
}

enum { M_BODY, M_ALT, M_ATTACH };

static void keep_copy(buf_t *dst, GMimePart *p)
{
    if (dst->len == 0)
        part_bytes(p, dst, NULL);
}

/* Walk the top-level tree (not into attached messages): body text leaves, attachments, and
 * the machine-readable parts of reports. */
static int collect(ctx_t *c, GMimeObject *o, int mode, int in_related, size_t depth)
{
    if (!o || depth > c->lim.max_depth)
        return 0;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = (GMimeMultipart *)o;
        int n = g_mime_multipart_get_count(mp), rc = 0;
        if (is_type(o, "multipart", "report") && !c->report_type) {
            GMimeContentType *ct = g_mime_object_get_content_type(o);
            const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
            c->report_type = strdup(rt ? rt : "");
            if (!c->report_type)
                return OMNI_ENOMEM;
            lower_str(c->report_type);
        }
        if (is_type(o, "multipart", "alternative") && mode == M_BODY) {
            int pick = -1, best = 0;
            for (int i = 0; i < n; i++) {
                int r = text_rank(g_mime_multipart_get_part(mp, i), 0);
                if (r > best) {
                    best = r;
                    pick = i;
                }
            }
            for (int i = 0; i < n && !rc; i++)
                rc = collect(c, g_mime_multipart_get_part(mp, i), i == pick ? M_BODY : M_ALT,
                             in_related, depth + 1);
            return rc;
        }
        int related = is_type(o, "multipart", "related");
        int report = is_type(o, "multipart", "report");
        for (int i = 0; i < n && !rc; i++) {
            int cm = mode;
            if (report && i > 0 && mode == M_BODY)
                cm = M_ATTACH; /* the machine-readable parts are not body text */
            rc = collect(c, g_mime_multipart_get_part(mp, i), cm, related, depth + 1);
        }
        return rc;
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *msg = g_mime_message_part_get_message((GMimeMessagePart *)o);
        if (msg && !c->orig)
            c->orig = msg;
        return add_attachment(c, o, in_related);
    }
    if (!GMIME_IS_PART(o))
        return 0;
    int html;
    if (body_text(o, &html)) {
        if (mode == M_BODY)
            return add_leaf(c, (GMimePart *)o, html);
        if (mode == M_ALT)
            return 0;
    }
    if (is_type(o, "message", "delivery-status") || is_type(o, "message", "global-delivery-status")) {
        c->has_dsn = 1;
        keep_copy(&c->dsn, (GMimePart *)o);
    } else if (is_type(o, "message", "feedback-report")) {
        c->has_arf = 1;
        keep_copy(&c->arf, (GMimePart *)o);
    } else if (is_type(o, "text", "rfc822-headers") || is_type(o, "message", "rfc822-headers") ||
               is_type(o, "message", "global-headers")) {
        keep_copy(&c->orig_headers, (GMimePart *)o);
    } else if (is_type(o, "message", "rfc822") || is_type(o, "message", "global")) {
        keep_copy(&c->orig_headers, (GMimePart *)o); /* a message GMime kept as a plain part */
    }
    return add_attachment(c, o, in_related);
}

/* ------------------------------------------------------------------------------------------ */
/* text assembly */

static void normalize_newlines(buf_t *b, size_t from)
{
    size_t w = from;
    for (size_t r = from; r < b->len; r++) {
        char ch = b->p[r];
        if (ch == '\r') {
            if (r + 1 < b->len && b->p[r + 1] == '\n')
                continue;
            ch = '\n';
        }
        b->p[w++] = ch;
    }
    b->len = w;
}

/* <meta charset="x"> / content="text/html; charset=x" in the first bytes of an HTML part. */
static void html_meta_charset(const char *s, size_t n, char *out, size_t outlen)
{
    out[0] = 0;
    if (n > 4096)
        n = 4096;
    const char *p = ci_find(s, n, "charset=");
    if (!p)
        return;
    p += 8;
    while (p < s + n && (*p == '"' || *p == '\'' || *p == ' '))
        p++;
    size_t k = 0;
    while (p < s + n && k + 1 < outlen && *p != '"' && *p != '\'' && *p != ';' && *p != '>' && !is_ws((unsigned char)*p))
        out[k++] = *p++;
    out[k] = 0;
}

static int build_text(ctx_t *c)
{
    buf_t t = {0};
    int rc = OMNI_ENOMEM;
    mail_t *m = c->m;
    for (size_t i = 0; i < c->n_leaves; i++) {
        GMimePart *p = c->leaves[i].part;
        GMimeContentType *ct = g_mime_object_get_content_type((GMimeObject *)p);
        const char *cs = ct ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
        buf_t raw = {0};
        part_bytes(p, &raw, NULL);
        if (raw.oom)
            goto out;
        char meta[64] = "";
        if (c->leaves[i].html && (!cs || !*cs))
            html_meta_charset(raw.p ? raw.p : "", raw.len, meta, sizeof(meta));
        if (i == 0 || !m->text_charset[0]) {
            free(m->text_charset);
            m->text_charset = strdup(cs ? cs : meta);
            if (!m->text_charset || utf8_field(&m->text_charset, &m->replaced)) {
                charset_buf_free(&raw);
                goto out;
            }
            lower_str(m->text_charset);
        }
        char *u;
        size_t ul;
        int r = charset_to_utf8(cs && *cs ? cs : meta[0] ? meta : NULL, raw.p ? raw.p : "", raw.len,
                                &u, &ul, &m->replaced);
        charset_buf_free(&raw);
        if (r != 0)
            goto out;
        if (t.len && t.p[t.len - 1] != '\n')
            charset_buf_putc(&t, '\n');
        size_t at = t.len;
        if (c->leaves[i].html)
            html_to_text(u, ul, &t);
        else
            charset_buf_put(&t, u, ul);
        free(u);
        normalize_newlines(&t, at);
    }
    while (t.len && (t.p[t.len - 1] == '\n' || t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
        t.len--;
    /* Leading blank lines too (markup and report preambles leave them). */
    size_t lead = 0, k = 0;
    while (k < t.len && (t.p[k] == ' ' || t.p[k] == '\t' || t.p[k] == '\n'))
        if (t.p[k++] == '\n')
            lead = k;
    if (lead) {
        memmove(t.p, t.p + lead, t.len - lead);
        t.len -= lead;
    }
    if (t.oom)
        goto out;
    /* Truncate on a character boundary so the marker fits within max_text_bytes. */
    size_t mk = strlen(MAIL_TRUNCATED_MARKER);
    if (t.len > c->lim.max_text_bytes && c->lim.max_text_bytes > mk) {
        size_t keep = c->lim.max_text_bytes - mk;
        while (keep > 0 && ((unsigned char)t.p[keep] & 0xC0) == 0x80)
            keep--;
        m->text_truncated = t.len - keep;
        t.len = keep;
        charset_buf_put(&t, MAIL_TRUNCATED_MARKER, mk);
    } else if (t.len > c->lim.max_text_bytes) {
        m->text_truncated = t.len;
        t.len = 0;
    }
    m->text = charset_buf_take(&t, NULL);
    if (m->text)
        rc = 0;
out:
    charset_buf_free(&t);
    return rc;
}

/* Where the quoted history starts: a line that introduces it, or the first "> " block. */
static size_t reply_length(const char *t)
{
    size_t n = strlen(t), cut = n;
    const char *line = t;
    while (line < t + n) {
        const char *eol = memchr(line, '\n', (size_t)(t + n - line));
        size_t len = eol ? (size_t)(eol - line) : (size_t)(t + n - line);
        const char *next = eol ? eol + 1 : t + n;
        size_t nlen = 0;
        if (eol) {
            const char *e2 = memchr(next, '\n', (size_t)(t + n - next));
            nlen = e2 ? (size_t)(e2 - next) : (size_t)(t + n - next);
        }
        int intro = 0;
        if (ci_prefix(line, len, "On ") && (ci_find(line, len, "wrote:") || ci_find(next, nlen, "wrote:")))
            intro = 1;
        else if (ci_find(line, len, "-----Original Message-----") || ci_find(line, len, "-----Ursprüngliche Nachricht-----") ||
                 ci_find(line, len, "----- Original Message -----"))
            intro = 1;
        else if (len >= 2 && line[0] == '>' && line > t)
            intro = 1;
        else if (ci_prefix(line, len, "From: ") && ci_prefix(next, nlen, "Sent: "))
            intro = 1;
        else if (len >= 6 && (ci_find(line, len, "\xe6\x9b\xb8\xe3\x81\x8d\xe3\x81\xbe\xe3\x81\x97\xe3\x81\x9f") /* 書きました */ ||
                              (ci_find(line, len, "wrote:") && line > t)))
            intro = 1;
        if (intro) {
            cut = (size_t)(line - t);
            break;
        }
        line = next;
    }
    while (cut > 0 && is_ws((unsigned char)t[cut - 1]))
        cut--;
    return cut == 0 ? n : cut;
}

/* ------------------------------------------------------------------------------------------ */
/* reports: DSN / ARF fields */

typedef void (*field_cb)(void *u, int block, const char *name, const char *value);

/* Iterate the "Name: value" fields of header-like blocks (RFC 3464 §2.1), unfolded; blank lines
 * separate blocks. */
static void fields(const char *s, size_t n, field_cb cb, void *u)
{
    int block = 0;
    size_t i = 0;
    buf_t name = {0}, val = {0};
    int have = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && s[e] != '\n')
            e++;
        size_t le = e;
        if (le > i && s[le - 1] == '\r')
            le--;
        int blank = le == i, cont = !blank && (s[i] == ' ' || s[i] == '\t');
        if (have && !cont) {
            charset_buf_putc(&name, 0);
            charset_buf_putc(&val, 0);
            if (!name.oom && !val.oom)
                cb(u, block, name.p, val.p);
            name.len = val.len = 0;
            have = 0;
        }
        if (blank) {
            block++;
        } else if (cont && have) {
            charset_buf_put(&val, s + i, le - i); /* unfolding keeps the leading blank */
        } else {
            const char *colon = memchr(s + i, ':', le - i);
            if (colon) {
                charset_buf_put(&name, s + i, (size_t)(colon - s - i));
                const char *v = colon + 1;
                while (v < s + le && (*v == ' ' || *v == '\t'))
                    v++;
                charset_buf_put(&val, v, (size_t)(s + le - v));
                have = 1;
            }
        }
        if (e >= n)
            break;
        i = e + 1;
    }
    if (have) {
        charset_buf_putc(&name, 0);
        charset_buf_putc(&val, 0);
        if (!name.oom && !val.oom)
            cb(u, block, name.p, val.p);
    }
    charset_buf_free(&name);
    charset_buf_free(&val);
}

typedef struct {
    char *rcpt, *status, *diag, *action;
} dsn_rec_t;

typedef struct {
    dsn_rec_t cur, best;
    int block, best_failed, oom;
} dsn_t;

static void set_str(char **dst, const char *v, int *oom)
{
    char *p = strdup(v);
    if (!p) {
        *oom = 1;
        return;
    }
    free(*dst);
    *dst = p;
}

static void dsn_rec_free(dsn_rec_t *r)
{
    free(r->rcpt);
    free(r->status);
    free(r->diag);
    free(r->action);
    memset(r, 0, sizeof(*r));
}

/* End of a per-recipient block: the first failed recipient wins, else the first one. */
static void dsn_commit(dsn_t *d)
{
    int failed = d->cur.action && ci_prefix(d->cur.action, strlen(d->cur.action), "failed");
    if (d->cur.rcpt && (!d->best.rcpt || (failed && !d->best_failed))) {
        dsn_rec_free(&d->best);
        d->best = d->cur;
        d->best_failed = failed;
        memset(&d->cur, 0, sizeof(d->cur));
    }
    dsn_rec_free(&d->cur);
}

/* "rfc822; user@example.com" → "user@example.com" */
static const char *after_type(const char *v)
{
    const char *semi = strchr(v, ';');
    v = semi ? semi + 1 : v;
    while (*v == ' ' || *v == '\t' || *v == '<')
        v++;
    return v;
}

static void dsn_field(void *u, int block, const char *name, const char *value)
{
    dsn_t *d = u;
    if (block != d->block) {
        dsn_commit(d);
        d->block = block;
    }
    if (block == 0)
        return; /* the per-message fields */
    if (ci_eq(name, "Final-Recipient") || (ci_eq(name, "Original-Recipient") && !d->cur.rcpt)) {
        const char *a = after_type(value);
        char *r = xstrndup(a, strcspn(a, "> \t;"));
        if (!r) {
            d->oom = 1;
            return;
        }
        free(d->cur.rcpt);
        d->cur.rcpt = r;
    } else if (ci_eq(name, "Action")) {
        set_str(&d->cur.action, value, &d->oom);
    } else if (ci_eq(name, "Status")) {
        char *st = xstrndup(value, strcspn(value, " \t(;"));
        if (!st) {
            d->oom = 1;
            return;
        }
        free(d->cur.status);
        d->cur.status = st;
    } else if (ci_eq(name, "Diagnostic-Code")) {
        set_str(&d->cur.diag, after_type(value), &d->oom);
    }
}

typedef struct {
    char *type, *rcpt;
    int oom;
} arf_t;

static void arf_field(void *u, int block, const char *name, const char *value)
{
    arf_t *a = u;
    (void)block;
    if (ci_eq(name, "Feedback-Type") && !a->type)
        set_str(&a->type, value, &a->oom);
    else if ((ci_eq(name, "Original-Rcpt-To") || ci_eq(name, "Removal-Recipient")) && !a->rcpt)
        set_str(&a->rcpt, after_type(value), &a->oom);
}

typedef struct {
    char *msgid, *irt, *to;
    int oom;
} orig_t;

static void orig_field(void *u, int block, const char *name, const char *value)
{
    orig_t *o = u;
    if (block > 0)
        return; /* the original's headers end at its first blank line */
    if (ci_eq(name, "Message-ID") && !o->msgid)
        o->msgid = first_msgid(value, &o->oom);
    else if (ci_eq(name, "In-Reply-To") && !o->irt)
        o->irt = first_msgid(value, &o->oom);
    else if (ci_eq(name, "To") && !o->to)
        set_str(&o->to, value, &o->oom);
}

/* ------------------------------------------------------------------------------------------ */
/* classification */

static const char *const bounce_subject_prefix[] = {
    "undeliverable", "undelivered mail", "returned mail", "mail delivery failed",
    "mail delivery failure", "delivery status notification", "delivery notification:",
    "delivery failure", "failure notice", "failure delivery", "delivery report",
    "delayed mail", "message delivery has failed", "mail could not be delivered",
    "postmaster notify", "mail system error", "there was an error sending your mail",
    "email delivery failure", "mail failure", "warning: could not send message",
    "nondeliverable", "non-deliverable", "non delivery", "delivery failed",
    "notice: mail delivery status", "message undeliverable", "mail delivery status notification",
    "delivery has failed", "non remis", "non recapitabile", "unzustellbar", "nicht zustellbar",
    "non distribuable", "onbestelbaar", "no se puede entregar", "imposible entregar",
    "could not send message", "returned to sender", "mail returned", "loop alert:",
    NULL};
/* Anywhere in the subject: phrases a customer would not use for their own subject. */
static const char *const bounce_subject_any[] = {
    "undelivered mail returned to sender", "mail delivery failed", "returned mail:",
    "delivery status notification", "returning message to sender", "could not be delivered",
    "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x82\xa8\xe3\x83\xa9\xe3\x83\xbc\xe9\x80\x9a\xe7\x9f\xa5", /* メールエラー通知 */
    "\xe9\x85\x8d\xe9\x80\x81\xe4\xb8\x8d\xe8\x83\xbd", /* 配送不能 */
    "\xe9\x85\x8d\xe4\xbf\xa1\xe4\xb8\x8d\xe8\x83\xbd", /* 配信不能 */
    NULL};
static const char *const auto_subject_prefix[] = {
    "automatic reply", "auto reply", "auto-reply", "autoreply", "auto:", "auto response",
    "auto-response", "autoresponse", "automated reply", "automated response", "out of office",
    "out of the office", "ooo:", "away until", "away from the office", "vacation reply",
    "vacation:", "vacation notice", "on vacation", "abwesenheitsnotiz", "automatische antwort",
    "r\xc3\xa9ponse automatique", "respuesta autom\xc3\xa1tica", "risposta automatica",
    "automatisch antwoord", "absence du bureau",
    "\xe4\xb8\x8d\xe5\x9c\xa8\xe3\x81\xae\xe3\x81\x8a\xe7\x9f\xa5\xe3\x82\x89\xe3\x81\x9b", /* 不在のお知らせ */
    "\xe4\xb8\x8d\xe5\x9c\xa8\xe9\x80\x9a\xe7\x9f\xa5", /* 不在通知 */
    "\xe4\xb8\x8d\xe5\x9c\xa8\xe4\xb8\xad", /* 不在中 */
    "\xe3\x80\x90\xe4\xb8\x8d\xe5\x9c\xa8", /* 【不在 */
    "[\xe4\xb8\x8d\xe5\x9c\xa8", /* [不在 */
    "\xe4\xbc\x91\xe6\x9a\x87\xe4\xb8\xad", /* 休暇中 */
    NULL};
static const char *const auto_subject_any[] = {
    "\xe8\x87\xaa\xe5\x8b\x95\xe8\xbf\x94\xe4\xbf\xa1", /* 自動返信 */
    "\xe8\x87\xaa\xe5\x8b\x95\xe5\xbf\x9c\xe7\xad\x94", /* 自動応答 */
    "out of office", "out of the office", "automatic reply", "(auto-reply)", "[auto-reply]",
    "autoreply", "auto-response", "(automatic response)", NULL};
/* Bounce wording in the body of a machine-sent message. */
static const char *const bounce_text[] = {
    "could not be delivered", "couldn't be delivered", "was not delivered", "undeliverable",
    "undelivered", "delivery has failed", "delivery failed", "delivery to the following recipient",
    "permanent error", "permanent fatal error", "user unknown", "unknown user", "no such user",
    "mailbox is full", "mailbox full", "mailbox unavailable", "quota exceeded", "over quota",
    "recipient address rejected", "message was rejected", "returned to sender", "non-delivery",
    "delivery status notification", "this is the mail system at host",
    "i'm afraid i wasn't able to deliver", "this is the qmail-send program",
    "\"notificationtype\":\"bounce\"", "not a member of", "are not member", "invalid user address",
    "failed recipient", "delivery error", "could not deliver", "duplicated message-id",
    "\xe9\x80\x81\xe4\xbf\xa1\xe3\x81\xa7\xe3\x81\x8d\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93\xe3\x81\xa7\xe3\x81\x97\xe3\x81\x9f", /* 送信できませんでした */
    "\xe9\x85\x8d\xe4\xbf\xa1\xe3\x81\xa7\xe3\x81\x8d\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93\xe3\x81\xa7\xe3\x81\x97\xe3\x81\x9f", /* 配信できませんでした */
    "\xe5\xb1\x8a\xe3\x81\x91\xe3\x82\x89\xe3\x82\x8c\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93\xe3\x81\xa7\xe3\x81\x97\xe3\x81\x9f", /* 届けられませんでした */
    "\xe5\xae\x9b\xe5\x85\x88\xe4\xb8\x8d\xe6\x98\x8e", /* 宛先不明 */
    NULL};
/* First-person out-of-office wording, read only in the first lines of short messages. */
static const char *const vacation_text[] = {
    "i am out of the office", "i'm out of the office", "i am currently out of the office",
    "i will be out of the office", "i am out of office", "i'm out of office",
    "i am on vacation", "i'm on vacation", "i am currently on vacation", "i am on leave",
    "i am away from", "i'm away from", "i am currently away", "i will be away",
    "this is an automatic reply", "this is an automated reply", "this is an auto-reply",
    "this is an automated response", "this is an automatic response",
    "thank you for your email. i am", "ich bin bis", "je suis absent",
    "\xe8\x87\xaa\xe5\x8b\x95\xe8\xbf\x94\xe4\xbf\xa1", /* 自動返信 */
    "\xe8\x87\xaa\xe5\x8b\x95\xe5\xbf\x9c\xe7\xad\x94", /* 自動応答 */
    "\xe4\xb8\x8d\xe5\x9c\xa8\xe3\x81\xab\xe3\x81\x97\xe3\x81\xa6\xe3\x81\x8a\xe3\x82\x8a", /* 不在にしており */
    "\xe4\xbc\x91\xe6\x9a\x87\xe3\x82\x92\xe5\x8f\x96\xe5\xbe\x97", /* 休暇を取得 */
    NULL};

static int any_of(const char *s, size_t n, const char *const *list, int prefix)
{
    for (; *list; list++)
        if (prefix ? ci_prefix(s, n, *list) : ci_find(s, n, *list) != NULL)
            return 1;
    return 0;
}

/* The subject without "Re:", "Fwd:", "[tag]" prefixes. */
static const char *strip_prefixes(const char *s)
{
    static const char *const pre[] = {"re:", "fwd:", "fw:", "aw:", "wg:", "tr:", "sv:", "vs:", "rv:", NULL};
    const char *end = s + strlen(s);
    for (int again = 1; again;) {
        again = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        for (int i = 0; pre[i]; i++)
            if (ci_prefix(s, (size_t)(end - s), pre[i])) {
                s += strlen(pre[i]);
                again = 1;
            }
        if (*s == '[') {
            const char *e = memchr(s, ']', (size_t)(end - s) < 40 ? (size_t)(end - s) : 40);
            if (e) {
                s = e + 1;
                again = 1;
            }
        }
    }
    return s;
}

static int is_daemon_local(const char *spec)
{
    static const char *const names[] = {"mailer-daemon", "mailer_daemon", "mailerdaemon",
                                        "postmaster", "post_master", "mail.delivery.system",
                                        "mail-delivery-system", "mdaemon", NULL};
    size_t l = strcspn(spec, "@");
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == l && ci_prefix(spec, l, names[i]))
            return 1;
    return 0;
}

static int is_noreply_local(const char *spec)
{
    static const char *const names[] = {"noreply", "no-reply", "no_reply", "donotreply",
                                        "do-not-reply", "do_not_reply", "bounce", "bounces", NULL};
    size_t l = strcspn(spec, "@");
    for (int i = 0; names[i]; i++)
        if (l >= strlen(names[i]) && ci_prefix(spec, l, names[i]))
            return 1;
    return 0;
}

static int header_is(const char *raw, const char *value)
{
    char *v = raw ? unfold(raw) : NULL;
    int r = v && ci_prefix(v, strlen(v), value);
    free(v);
    return r;
}

/* Auto-Submitted other than "no" (RFC 3834 §5). */
static int auto_submitted(const char *raw)
{
    char *v = raw ? unfold(raw) : NULL;
    int r = v && *v && !(ci_prefix(v, strlen(v), "no") && (v[2] == 0 || v[2] == ' ' || v[2] == ';' || v[2] == '('));
    free(v);
    return r;
}

static int precedence_bulk(const char *raw)
{
    char *v = raw ? unfold(raw) : NULL;
    int r = v && (ci_prefix(v, strlen(v), "bulk") || ci_prefix(v, strlen(v), "list") ||
                  ci_prefix(v, strlen(v), "junk") || ci_prefix(v, strlen(v), "auto_reply") ||
                  ci_prefix(v, strlen(v), "auto-reply"));
    free(v);
    return r;
}

static int null_path(const char *raw)
{
    char *v = raw ? unfold(raw) : NULL;
    int r = 0;
    if (v) {
        char *p = v;
        while (*p == ' ')
            p++;
        r = *p == 0 || strcmp(p, "<>") == 0 || strncmp(p, "<> ", 3) == 0 || ci_eq(p, "<MAILER-DAEMON>");
    }
    free(v);
    return r;
}

typedef struct {
    GMimeObject *top;
    const char *envelope_from;
    char *from_spec; /* From's spec even when unusable ("MAILER-DAEMON"), "" for <> */
    char *from_name;
} cls_t;

static int first_mbox(void *u, mbox_t *m)
{
    cls_t *c = u;
    c->from_spec = m->spec;
    c->from_name = m->name;
    m->spec = m->name = NULL;
    return 1;
}

static void classify(ctx_t *c, cls_t *k)
{
    mail_t *m = c->m;
    GMimeObject *top = k->top;
    const char *subj = m->subject ? strip_prefixes(m->subject) : "";
    size_t sl = strlen(subj);
    const char *text = m->text ? m->text : "";
    size_t tl = strlen(text) < SCAN_BYTES ? strlen(text) : SCAN_BYTES;
    const char *xas = hdr(top, "X-Auto-Response-Suppress");

    /* An explicit request not to be auto-answered; it also rides on many Outlook-generated
     * messages, so it suppresses our acknowledgement without making the mail automated. */
    if (xas) {
        char *v = unfold(xas);
        if (v && (ci_find(v, strlen(v), "all") || ci_find(v, strlen(v), "autoreply") || ci_find(v, strlen(v), "oof")))
            m->no_autoreply = 1;
        free(v);
    }
#define VERDICT(kind_, why_)      \
    do {                          \
        m->kind = (kind_);        \
        m->why = (why_);          \
        goto done;                \
    } while (0)

    /* 1. Feedback reports. */
    if (c->report_type && strstr(c->report_type, "feedback-report"))
        VERDICT(MAIL_FEEDBACK, "multipart/report feedback-report");
    if (c->has_arf)
        VERDICT(MAIL_FEEDBACK, "message/feedback-report part");
    if (header_is(hdr(top, "X-Apple-Unsubscribe"), "true"))
        VERDICT(MAIL_FEEDBACK, "X-Apple-Unsubscribe");
    if (ci_prefix(subj, sl, "complaint about message from") ||
        (c->orig && hdr((GMimeObject *)c->orig, "X-HmXmrOriginalRecipient")))
        VERDICT(MAIL_FEEDBACK, "Hotmail JMRP complaint");

    /* 2. Delivery status notifications, by structure. */
    if (c->report_type && strstr(c->report_type, "delivery-status"))
        VERDICT(MAIL_BOUNCE, "multipart/report delivery-status");
    if (c->has_dsn)
        VERDICT(MAIL_BOUNCE, "message/delivery-status part");
    if (hdr(top, "X-Failed-Recipients"))
        VERDICT(MAIL_BOUNCE, "X-Failed-Recipients");

    /* 3. Non-standard bounces and auto-replies by subject. */
    if (any_of(subj, sl, bounce_subject_prefix, 1) || any_of(subj, sl, bounce_subject_any, 0))
        VERDICT(MAIL_BOUNCE, "bounce subject");
    if (any_of(subj, sl, auto_subject_prefix, 1) || any_of(subj, sl, auto_subject_any, 0))
        VERDICT(MAIL_AUTO_REPLY, "auto-reply subject");

    /* Amazon SES event notifications (delivered by SNS as JSON mail) are reports too. */
    if (ci_find(text, tl, "\"notificationType\":\"Complaint\""))
        VERDICT(MAIL_FEEDBACK, "Amazon SES complaint notification");
    if (ci_find(text, tl, "\"notificationType\":\"Bounce\"") || ci_find(text, tl, "\"notificationType\":\"Delivery\""))
        VERDICT(MAIL_BOUNCE, "Amazon SES bounce/delivery notification");

    /* 4. Mail from the mail system itself. */
    if (k->from_spec && is_daemon_local(k->from_spec))
        VERDICT(MAIL_BOUNCE, "MAILER-DAEMON/postmaster sender");
    if (k->from_name && (ci_find(k->from_name, strlen(k->from_name), "mail delivery subsystem") ||
                         ci_find(k->from_name, strlen(k->from_name), "mail delivery system")))
        VERDICT(MAIL_BOUNCE, "Mail Delivery System sender");

    /* 5. Automation markers; with bounce wording in the body the message is a bounce. */
    const char *why = NULL;
    int weak = 0;
    if (auto_submitted(hdr(top, "Auto-Submitted")))
        why = "Auto-Submitted";
    else if (precedence_bulk(hdr(top, "Precedence")))
        why = "Precedence: bulk/list/junk";
    else if ((k->envelope_from && !*k->envelope_from) ||
             (!k->envelope_from && null_path(hdr(top, "Return-Path"))) || (k->from_spec && !*k->from_spec))
        why = "null sender";
    else if (hdr(top, "X-Autoreply") || hdr(top, "X-Autorespond") || hdr(top, "X-AutoReply-From") ||
             hdr(top, "X-Mail-Autoreply") || hdr(top, "X-Autoresponder") || hdr(top, "X-Auto-Reply") ||
             hdr(top, "X-Vacation"))
        why = "vendor auto-reply header";
    else if (hdr(top, "X-MS-Exchange-Inbox-Rules-Loop"))
        why = "X-MS-Exchange-Inbox-Rules-Loop";
    else if (header_is(hdr(top, "X-Apple-Action"), "vacation"))
        why = "X-Apple-Action: VACATION";
    else if (hdr(top, "X-Autogenerated") || header_is(hdr(top, "X-FC-MachineGenerated"), "true"))
        why = "vendor machine-generated header";
    else if (hdr(top, "List-Id") || hdr(top, "List-Unsubscribe") || hdr(top, "List-Post") ||
             hdr(top, "List-Help") || hdr(top, "List-Subscribe") || hdr(top, "List-Owner") ||
             hdr(top, "Mailing-List") || hdr(top, "X-Mailing-List") || hdr(top, "X-ML-Name") ||
             hdr(top, "X-MLServer"))
        why = "mailing-list headers";
    else if (k->from_spec && is_noreply_local(k->from_spec))
        weak = 1; /* no-reply senders front web forms that carry a real customer in Reply-To */
    if ((why || weak) && any_of(text, tl, bounce_text, 0))
        VERDICT(MAIL_BOUNCE, "automated sender with bounce text");
    if (why)
        VERDICT(MAIL_AUTO_REPLY, why);

    /* 6. Out-of-office wording at the top of a short message. */
    if (strlen(text) < 4000 && any_of(text, tl < 600 ? tl : 600, vacation_text, 0))
        VERDICT(MAIL_AUTO_REPLY, "vacation text");

    m->kind = MAIL_CUSTOMER;
    m->why = "no automation marker";
done:
    if (m->kind != MAIL_CUSTOMER)
        m->no_autoreply = 1;
#undef VERDICT
}

/* ------------------------------------------------------------------------------------------ */
/* bounce details */

/* A plausible addr-spec around s[at] ('@'); returns its span. */
static int addr_at(const char *t, size_t n, size_t at, size_t *a, size_t *b)
{
    size_t i = at, j = at + 1;
    while (i > 0) {
        unsigned char c = (unsigned char)t[i - 1];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(".!#$%&'*+-/=?^_`{|}~", c))
            i--;
        else
            break;
    }
    while (j < n) {
        unsigned char c = (unsigned char)t[j];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
            j++;
        else
            break;
    }
    while (j > at + 1 && t[j - 1] == '.')
        j--;
    while (i < at && t[i] == '.')
        i++;
    if (i == at || j <= at + 1 || !memchr(t + at + 1, '.', j - at - 1))
        return 0;
    *a = i;
    *b = j;
    return 1;
}

/* The first address in the report text that is not the report's own sender or recipient. */
static char *text_recipient(const char *t, size_t n, const mail_t *m)
{
    for (const char *p = t; (p = memchr(p, '@', (size_t)(t + n - p))) != NULL; p++) {
        size_t a, b;
        if (!addr_at(t, n, (size_t)(p - t), &a, &b))
            continue;
        char *s = xstrndup(t + a, b - a);
        if (!s)
            return NULL;
        addr_ok(s);
        int skip = is_daemon_local(s) || is_noreply_local(s) || (m->from_addr && ci_eq(s, m->from_addr));
        for (size_t i = 0; i < m->n_recipients && !skip; i++)
            if (ci_eq(s, m->recipients[i]))
                skip = 1;
        if (!skip)
            return s;
        free(s);
    }
    return NULL;
}

/* An RFC 3463 status ("5.1.1") in the text, else an SMTP reply code ("550"); the line it is on
 * becomes the diagnostic when the report had none. */
static void text_status(const char *t, size_t n, mail_t *m, int *oom)
{
    const char *found = NULL;
    size_t flen = 0;
    for (size_t i = 0; i + 5 <= n && !found; i++) {
        if ((t[i] != '4' && t[i] != '5') || (i > 0 && ((t[i - 1] >= '0' && t[i - 1] <= '9') || t[i - 1] == '.')))
            continue;
        size_t j = i + 1, d1 = 0, d2 = 0;
        if (t[j] != '.')
            continue;
        j++;
        while (j < n && t[j] >= '0' && t[j] <= '9' && d1 < 4)
            j++, d1++;
        if (!d1 || d1 > 3 || j >= n || t[j] != '.')
            continue;
        j++;
        while (j < n && t[j] >= '0' && t[j] <= '9' && d2 < 4)
            j++, d2++;
        if (!d2 || d2 > 3 || (j < n && ((t[j] >= '0' && t[j] <= '9') || t[j] == '.')))
            continue;
        found = t + i;
        flen = j - i;
    }
    for (size_t i = 0; i + 3 <= n && !found; i++) {
        if ((t[i] != '4' && t[i] != '5') || (i > 0 && !(t[i - 1] == ' ' || t[i - 1] == '\n' || t[i - 1] == '(' || t[i - 1] == ':' || t[i - 1] == '#')))
            continue;
        if (!(t[i + 1] >= '0' && t[i + 1] <= '5' && t[i + 2] >= '0' && t[i + 2] <= '9'))
            continue;
        if (i + 3 < n && !(t[i + 3] == ' ' || t[i + 3] == '-' || t[i + 3] == '\n'))
            continue;
        found = t + i;
        flen = 3;
    }
    if (!found)
        return;
    if (!m->bounce_status && !(m->bounce_status = xstrndup(found, flen)))
        *oom = 1;
    if (!m->bounce_diagnostic) {
        const char *a = found, *b = found;
        while (a > t && a[-1] != '\n')
            a--;
        while (b < t + n && *b != '\n')
            b++;
        while (a < b && is_ws((unsigned char)*a))
            a++;
        size_t len = (size_t)(b - a);
        if (len > DIAG_MAX)
            len = DIAG_MAX;
        while (len > 0 && ((unsigned char)a[len] & 0xC0) == 0x80 && a + len < b)
            len--;
        if (!(m->bounce_diagnostic = xstrndup(a, len)))
            *oom = 1;
    }
}

/* Message-ID / In-Reply-To of the original as quoted inline in a plain-text bounce. */
static char *text_header(const char *t, size_t n, const char *name, int *oom)
{
    size_t k = strlen(name);
    for (const char *p = t; p < t + n; p++) {
        if (p != t && p[-1] != '\n')
            continue;
        const char *q = p;
        while (q < t + n && (*q == ' ' || *q == '\t' || *q == '>'))
            q++;
        if (ci_prefix(q, (size_t)(t + n - q), name) && q + k < t + n && q[k] == ':') {
            const char *e = memchr(q, '\n', (size_t)(t + n - q));
            char *line = xstrndup(q + k + 1, e ? (size_t)(e - q - k - 1) : (size_t)(t + n - q - k - 1));
            if (!line) {
                *oom = 1;
                return NULL;
            }
            char *id = first_msgid(line, oom);
            free(line);
            if (id)
                return id;
        }
    }
    return NULL;
}

static int one_line(char **s)
{
    if (!*s)
        return 0;
    char *u = unfold(*s);
    if (!u)
        return OMNI_ENOMEM;
    for (char *p = u; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    size_t n = strlen(u);
    if (n > DIAG_MAX) {
        n = DIAG_MAX;
        while (n > 0 && ((unsigned char)u[n] & 0xC0) == 0x80)
            n--;
        u[n] = 0;
    }
    free(*s);
    *s = u;
    return 0;
}


/* The string value of "key":"..." in a JSON notification (SES), unescaped only for \" and \\. */
static char *json_str(const char *t, size_t n, const char *key, int *oom)
{
    char pat[48];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = ci_find(t, n, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    buf_t b = {0};
    for (; p < t + n && *p != '"' && b.len < DIAG_MAX; p++) {
        if (*p == '\\' && p + 1 < t + n)
            p++;
        charset_buf_putc(&b, *p);
    }
    char *v = charset_buf_take(&b, NULL);
    if (!v)
        *oom = 1;
    return v;
}

static int report_details(ctx_t *c, GMimeObject *top)
{
    mail_t *m = c->m;
    int oom = 0;
    if (c->dsn.len) {
        dsn_t d = {0};
        fields(c->dsn.p, c->dsn.len, dsn_field, &d);
        dsn_commit(&d);
        m->bounced_recipient = d.best.rcpt;
        m->bounce_status = d.best.status;
        m->bounce_diagnostic = d.best.diag;
        free(d.best.action);
        oom |= d.oom;
    }
    if (c->arf.len) {
        arf_t a = {0};
        fields(c->arf.p, c->arf.len, arf_field, &a);
        m->feedback_type = a.type;
        if (!m->bounced_recipient)
            m->bounced_recipient = a.rcpt;
        else
            free(a.rcpt);
        oom |= a.oom;
    }

    /* The original message: an attached message/rfc822, else text/rfc822-headers, else the
     * copy many MTAs quote inline in the text. */
    orig_t o = {0};
    if (c->orig) {
        o.msgid = first_msgid(hdr((GMimeObject *)c->orig, "Message-ID"), &o.oom);
        o.irt = first_msgid(hdr((GMimeObject *)c->orig, "In-Reply-To"), &o.oom);
        const char *to = hdr((GMimeObject *)c->orig, "To");
        if (to)
            set_str(&o.to, to, &o.oom);
    } else if (c->orig_headers.len) {
        fields(c->orig_headers.p, c->orig_headers.len, orig_field, &o);
    }
    const char *t = m->text ? m->text : "";
    size_t tl = strlen(t);
    if (!o.msgid)
        o.msgid = text_header(t, tl, "Message-ID", &oom);
    if (!o.irt)
        o.irt = text_header(t, tl, "In-Reply-To", &oom);
    m->original_message_id = o.msgid;
    m->original_in_reply_to = o.irt;
    oom |= o.oom;

    if (ci_find(t, tl < SCAN_BYTES ? tl : SCAN_BYTES, "\"notificationType\":\"")) {
        size_t sl = tl < SCAN_BYTES ? tl : SCAN_BYTES;
        if (!m->bounced_recipient)
            m->bounced_recipient = json_str(t, sl, "emailAddress", &oom);
        if (!m->bounce_status)
            m->bounce_status = json_str(t, sl, "status", &oom);
        if (!m->bounce_diagnostic)
            m->bounce_diagnostic = json_str(t, sl, "diagnosticCode", &oom);
        if (!m->bounce_diagnostic)
            m->bounce_diagnostic = json_str(t, sl, "smtpResponse", &oom);
        if (m->kind == MAIL_FEEDBACK && !m->feedback_type)
            m->feedback_type = json_str(t, sl, "complaintFeedbackType", &oom);
    }
    if (m->kind == MAIL_BOUNCE) {
        const char *xf = hdr(top, "X-Failed-Recipients");
        if (!m->bounced_recipient && xf) {
            char *v = unfold(xf);
            if (v)
                m->bounced_recipient = xstrndup(v, strcspn(v, ", \t"));
            free(v);
        }
        if (!m->bounced_recipient)
            m->bounced_recipient = text_recipient(t, tl < SCAN_BYTES ? tl : SCAN_BYTES, m);
        if (!m->bounced_recipient && o.to) {
            char *v = unfold(o.to);
            mbox_t mb;
            if (v && parse_mbox(v, strcspn(v, ","), &mb) == 0) {
                if (mb.valid) {
                    m->bounced_recipient = mb.spec;
                    mb.spec = NULL;
                }
                mbox_free(&mb);
            }
            free(v);
        }
        if (!m->bounce_status || !m->bounce_diagnostic)
            text_status(t, tl < SCAN_BYTES ? tl : SCAN_BYTES, m, &oom);
    }
    free(o.to);
    if (m->kind == MAIL_FEEDBACK && !m->feedback_type && header_is(hdr(top, "X-Apple-Unsubscribe"), "true"))
        set_str(&m->feedback_type, "unsubscribe", &oom);
    if (m->kind == MAIL_FEEDBACK && !m->feedback_type)
        set_str(&m->feedback_type, "abuse", &oom);
    if (m->bounced_recipient) {
        char *r = m->bounced_recipient;
        size_t n = strlen(r);
        while (n && (r[n - 1] == '>' || is_ws((unsigned char)r[n - 1])))
            r[--n] = 0;
        if (!addr_ok(r)) {
            free(r);
            m->bounced_recipient = NULL;
        }
    }
    if (one_line(&m->bounce_diagnostic) || one_line(&m->bounce_status) || one_line(&m->feedback_type))
        oom = 1;
    if (utf8_field(&m->bounced_recipient, &m->replaced) || utf8_field(&m->bounce_status, &m->replaced) ||
        utf8_field(&m->bounce_diagnostic, &m->replaced) || utf8_field(&m->feedback_type, &m->replaced) ||
        utf8_field(&m->original_message_id, &m->replaced) || utf8_field(&m->original_in_reply_to, &m->replaced))
        oom = 1;
    return oom ? OMNI_ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* headers of the message itself */

typedef struct {
    strv_t *v;
} rcpt_t;

static int push_rcpt(void *u, mbox_t *m)
{
    rcpt_t *r = u;
    if (r->v->n >= MAIL_MAX_RECIPIENTS)
        return 1;
    if (m->valid)
        strv_push(r->v, m->spec, strlen(m->spec));
    return r->v->oom ? OMNI_ENOMEM : 0;
}

static int first_valid(void *u, mbox_t *m)
{
    char **out = u;
    if (!m->valid)
        return 0;
    *out = m->spec;
    m->spec = NULL;
    return 1;
}

/* One-line fields longer than the broker accepts would cost the whole message: cut them, on a
 * character boundary. */
static void cut_field(char *s)
{
    if (!s || strlen(s) <= MAIL_MAX_FIELD)
        return;
    size_t n = MAIL_MAX_FIELD;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = 0;
}

static int top_headers(ctx_t *c, GMimeObject *top, cls_t *k)
{
    mail_t *m = c->m;
    int oom = 0;
    const char *from = hdr(top, "From");
    if (!from)
        from = hdr(top, "Sender");
    if (from) {
        char *v = unfold(from);
        if (!v || parse_addrs(v, first_mbox, k) != 0)
            oom = 1;
        free(v);
    }
    if (k->from_spec && *k->from_spec) {
        char *tmp = strdup(k->from_spec);
        if (!tmp)
            return OMNI_ENOMEM;
        if (addr_ok(tmp))
            m->from_addr = tmp;
        else
            free(tmp);
    }
    m->from_name = k->from_name ? decode_words(k->from_name, strlen(k->from_name), c->fallback, &m->replaced)
                                : strdup("");
    const char *rt = hdr(top, "Reply-To");
    if (rt) {
        char *v = unfold(rt);
        if (!v || parse_addrs(v, first_valid, &m->reply_to) != 0)
            oom = 1;
        free(v);
    }
    const char *subj = hdr(top, "Subject");
    m->subject = subj ? decode_header_fb(subj, c->fallback, &m->replaced) : strdup("");
    cut_field(m->subject);
    cut_field(m->from_name);
    m->message_id = first_msgid(hdr(top, "Message-ID"), &oom);
    m->in_reply_to = first_msgid(hdr(top, "In-Reply-To"), &oom);

    strv_t refs = {0};
    const char *rh = hdr(top, "References");
    if (rh)
        msgids(rh, &refs, (size_t)-1);
    if (refs.n > MAIL_MAX_REFERENCES) {
        size_t drop = refs.n - MAIL_MAX_REFERENCES; /* threading reads right to left: keep the newest */
        for (size_t i = 0; i < drop; i++)
            free(refs.v[i]);
        memmove(refs.v, refs.v + drop, MAIL_MAX_REFERENCES * sizeof(*refs.v));
        refs.n = MAIL_MAX_REFERENCES;
    }
    m->references = refs.v;
    m->n_references = refs.n;
    oom |= refs.oom;

    strv_t rc = {0};
    rcpt_t r = {&rc};
    static const char *const rh_names[] = {"To", "Cc"};
    GMimeHeaderList *hl = g_mime_object_get_header_list(top);
    int hn = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < hn; i++) {
            GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
            if (!ci_eq(g_mime_header_get_name(h), rh_names[pass]))
                continue;
            char *v = unfold(g_mime_header_get_raw_value(h));
            if (!v || parse_addrs(v, push_rcpt, &r) != 0)
                oom = 1;
            free(v);
        }
    m->recipients = rc.v;
    m->n_recipients = rc.n;
    oom |= rc.oom;

    /* Addresses are ASCII by RFC 5322, UTF-8 by RFC 6532; anything else is replaced. */
    for (size_t i = 0; i < m->n_recipients; i++)
        oom |= utf8_field(&m->recipients[i], &m->replaced) != 0;
    for (size_t i = 0; i < m->n_references; i++)
        oom |= utf8_field(&m->references[i], &m->replaced) != 0;
    oom |= utf8_field(&m->from_addr, &m->replaced) != 0 || utf8_field(&m->reply_to, &m->replaced) != 0 ||
           utf8_field(&m->message_id, &m->replaced) != 0 || utf8_field(&m->in_reply_to, &m->replaced) != 0;
    if (oom || !m->from_name || !m->subject)
        return OMNI_ENOMEM;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* pre-scan */

typedef struct {
    const char *p;
    size_t n;
} span_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* GMime's cost grows with what it builds before we can count it: millions of tiny parts or
 * header fields take seconds and gigabytes, and every line is checked against every open
 * boundary. So count first, on the raw bytes: declared boundaries, delimiter lines that open a
 * part, and the fields of each header block (the message's, each part's, each embedded
 * message's). Any above its limit means the parsed tree would be too. */
static int prescan(const char *p, size_t n, const mail_limits_t *lim)
{
    int rc = OMNI_ENOMEM;
    size_t nb = 0, cap = 16, parts = 0, fields = 0;
    span_t *b = malloc(cap * sizeof(*b));
    if (!b)
        goto out;
    for (const char *q = p; (q = ci_find(q, (size_t)(p + n - q), "boundary")) != NULL;) {
        q += 8;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        if (q >= p + n || *q != '=')
            continue;
        q++;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        int quoted = q < p + n && *q == '"';
        const char *a = q + quoted, *e = a;
        while (e < p + n && e - a < 200 &&
               (quoted ? *e != '"' && *e != '\n' : !is_ws((unsigned char)*e) && *e != ';' && *e != '"'))
            e++;
        if (e == a)
            continue;
        if (nb == cap) {
            span_t *nbv = realloc(b, (cap *= 2) * sizeof(*b));
            if (!nbv)
                goto out;
            b = nbv;
        }
        b[nb].p = a;
        b[nb].n = (size_t)(e - a);
        nb++;
        if (nb > 2 * lim->max_parts) {
            qsort(b, nb, sizeof(*b), span_cmp);
            size_t u = 0; /* keep distinct ones only */
            for (size_t i = 0; i < nb; i++)
                if (u == 0 || span_cmp(&b[u - 1], &b[i]) != 0)
                    b[u++] = b[i];
            nb = u;
            if (nb > lim->max_parts) {
                rc = OMNI_ETOOBIG;
                goto out;
            }
        }
    }
    qsort(b, nb, sizeof(*b), span_cmp);
    /* Parts of a multipart/digest default to message/rfc822: their bodies are headers too. */
    int digest = ci_find(p, n, "multipart/digest") != NULL;
    int in_hdr = 1, has_ctype = 0, msg_next = 0, after_delim = 0;
    size_t field_bytes = 0;
    for (const char *line = p; line < p + n;) {
        const char *eol = memchr(line, '\n', (size_t)(p + n - line));
        const char *end = eol ? eol : p + n;
        size_t len = (size_t)(end - line);
        if (len && line[len - 1] == '\r')
            len--;
        if (len > 2 && line[0] == '-' && line[1] == '-' && nb) {
            span_t k = {line + 2, len - 2};
            while (k.n && is_ws((unsigned char)k.p[k.n - 1]))
                k.n--;
            if (bsearch(&k, b, nb, sizeof(*b), span_cmp)) {
                if (++parts > lim->max_parts) {
                    rc = OMNI_ETOOBIG;
                    goto out;
                }
                in_hdr = after_delim = 1;
                fields = has_ctype = msg_next = 0;
                line = eol ? eol + 1 : p + n;
                continue;
            }
        }
        if (in_hdr) {
            if (len == 0) {
                /* The end of a header block: an embedded message's headers may follow. */
                in_hdr = msg_next || (digest && after_delim && !has_ctype);
                fields = has_ctype = msg_next = after_delim = 0;
            } else if ((line[0] == ' ' || line[0] == '\t') && (field_bytes += len) > MAIL_MAX_FIELD_RAW) {
                rc = OMNI_ETOOBIG; /* GMime builds every address of a huge To: eagerly */
                goto out;
            } else if (line[0] != ' ' && line[0] != '\t') {
                field_bytes = len;
                if (field_bytes > MAIL_MAX_FIELD_RAW || ++fields > lim->max_headers) {
                    rc = OMNI_ETOOBIG;
                    goto out;
                }
                if (ci_prefix(line, len, "content-type:")) {
                    const char *v = line + 13;
                    while (v < line + len && (*v == ' ' || *v == '\t'))
                        v++;
                    size_t vl = (size_t)(line + len - v);
                    has_ctype = 1;
                    msg_next = ci_prefix(v, vl, "message/rfc822") || ci_prefix(v, vl, "message/global") ||
                               ci_prefix(v, vl, "message/news");
                }
            }
        }
        line = eol ? eol + 1 : p + n;
    }
    rc = 0;
out:
    free(b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* entry points */

const char *mail_kind_name(mail_kind_t kind)
{
    switch (kind) {
    case MAIL_CUSTOMER: return "customer";
    case MAIL_AUTO_REPLY: return "auto_reply";
    case MAIL_BOUNCE: return "bounce";
    case MAIL_FEEDBACK: return "feedback";
    }
    return "unknown";
}

void mail_free(mail_t **mp)
{
    if (!mp || !*mp)
        return;
    mail_t *m = *mp;
    free(m->from_addr);
    free(m->from_name);
    free(m->reply_to);
    free(m->subject);
    free(m->text);
    free(m->text_charset);
    free(m->message_id);
    free(m->in_reply_to);
    for (size_t i = 0; i < m->n_references; i++)
        free(m->references[i]);
    free(m->references);
    for (size_t i = 0; i < m->n_recipients; i++)
        free(m->recipients[i]);
    free(m->recipients);
    for (size_t i = 0; i < m->n_attachments; i++) {
        free(m->attachments[i].name);
        free(m->attachments[i].content_type);
        free(m->attachments[i].content_id);
        free(m->attachments[i].data);
    }
    free(m->attachments);
    free(m->bounced_recipient);
    free(m->bounce_status);
    free(m->bounce_diagnostic);
    free(m->feedback_type);
    free(m->original_message_id);
    free(m->original_in_reply_to);
    free(m);
    *mp = NULL;
}

int mail_parse(const uint8_t *raw, size_t len, const mail_limits_t *lim, mail_t **out)
{
    return mail_parse_envelope(raw, len, NULL, lim, out);
}

int mail_parse_envelope(const uint8_t *raw, size_t len, const char *mail_from,
                        const mail_limits_t *lim, mail_t **out)
{
    int rc = OMNI_ENOMEM;
    ctx_t c = {0};
    cls_t k = {0};
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *msg = NULL;

    if (!out || (!raw && len > 0))
        return OMNI_EINVAL;
    *out = NULL;
    c.lim.max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEF_MAX_BYTES;
    c.lim.max_headers = lim && lim->max_headers ? lim->max_headers : DEF_MAX_HEADERS;
    c.lim.max_parts = lim && lim->max_parts ? lim->max_parts : DEF_MAX_PARTS;
    c.lim.max_depth = lim && lim->max_depth ? lim->max_depth : DEF_MAX_DEPTH;
    c.lim.max_text_bytes = lim && lim->max_text_bytes ? lim->max_text_bytes : DEF_MAX_TEXT;
    if (len > c.lim.max_bytes)
        return OMNI_ETOOBIG;
    if (pthread_once(&gmime_once, gmime_setup) != 0 || !parser_opts)
        return OMNI_ENOMEM;

    /* An mbox "From " separator line is not a header; GMime would otherwise judge it. */
    const char *p = (const char *)raw;
    size_t n = len;
    if (n >= 5 && memcmp(p, "From ", 5) == 0) {
        const char *eol = memchr(p, '\n', n);
        size_t skip = eol ? (size_t)(eol - p) + 1 : n;
        p += skip;
        n -= skip;
    }
    if (p && (rc = prescan(p, n, &c.lim)) != 0)
        goto out;
    rc = OMNI_ENOMEM;
    stream = g_mime_stream_mem_new_with_buffer(p ? p : "", n);
    parser = stream ? g_mime_parser_new_with_stream(stream) : NULL;
    if (!parser)
        goto out;
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    msg = g_mime_parser_construct_message(parser, parser_opts);
    GMimeObject *top = (GMimeObject *)msg;
    GMimeHeaderList *hl = msg ? g_mime_object_get_header_list(top) : NULL;
    if (!msg || !hl || g_mime_header_list_get_count(hl) == 0) {
        rc = OMNI_EINVAL;
        goto out;
    }
    if ((size_t)g_mime_header_list_get_count(hl) > c.lim.max_headers) {
        rc = OMNI_ETOOBIG;
        goto out;
    }
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    if ((rc = check_tree(&c, body, 0)) != 0)
        goto out;
    rc = OMNI_ENOMEM;
    if (!(c.m = calloc(1, sizeof(*c.m))))
        goto out;
    mail_t *m = c.m;
    k.top = top;
    k.envelope_from = mail_from;
    if (body && (rc = collect(&c, body, M_BODY, 0, 0)) != 0)
        goto out;
    rc = OMNI_ENOMEM;
    if (!(m->text_charset = strdup("")))
        goto out;
    if (build_text(&c) != 0)
        goto out;
    /* Raw 8-bit header bytes are most likely in the charset the body declared. */
    c.fallback = m->text_charset[0] ? m->text_charset : NULL;
    if (top_headers(&c, top, &k) != 0)
        goto out;
    m->reply_len = reply_length(m->text);
    m->n_attachments = c.atts.len / sizeof(mail_attachment_t);
    m->attachments = (mail_attachment_t *)c.atts.p;
    c.atts.p = NULL;
    c.atts.len = 0;
    classify(&c, &k);
    if (report_details(&c, top) != 0)
        goto out;
    *out = m;
    c.m = NULL;
    rc = 0;
out:
    if (c.m) {
        if (c.atts.p) {
            mail_attachment_t *a = (mail_attachment_t *)c.atts.p;
            for (size_t i = 0; i < c.atts.len / sizeof(*a); i++) {
                free(a[i].name);
                free(a[i].content_type);
                free(a[i].content_id);
                free(a[i].data);
            }
        }
        mail_free(&c.m);
    }
    charset_buf_free(&c.atts);
    free(c.leaves);
    free(c.report_type);
    charset_buf_free(&c.dsn);
    charset_buf_free(&c.arf);
    charset_buf_free(&c.orig_headers);
    free(k.from_spec);
    free(k.from_name);
    if (msg)
        g_object_unref(msg);
    if (parser)
        g_object_unref(parser);
    if (stream)
        g_object_unref(stream);
    return rc;
}
