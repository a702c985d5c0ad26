/* Charset decoding for the email adapter: mail charset labels mapped to what real senders mean,
 * converted with iconv, ISO-2022-JP re-read through CP932 when Windows extensions appear. */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include <omni/omni.h>

/* ------------------------------------------------------------------------------------------ */
/* buffer */

static int buf_reserve(charset_buf_t *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void charset_buf_put(charset_buf_t *b, const void *data, size_t n)
{
    if (n == 0 || buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void charset_buf_putc(charset_buf_t *b, char c)
{
    if (buf_reserve(b, 1) != 0)
        return;
    b->p[b->len++] = c;
}

void charset_buf_put_cp(charset_buf_t *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    charset_buf_put(b, u, n);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid; *bad gets the length of
 * the maximal invalid prefix, so one U+FFFD replaces it (the WHATWG/Unicode practice). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    *bad = 1;
    if (c > 0 && c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        unsigned lim_lo = i == 1 ? lo : 0x80, lim_hi = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lim_lo || s[i] > lim_hi) {
            *bad = i;
            return 0;
        }
    }
    return need + 1;
}

void charset_buf_put_utf8(charset_buf_t *b, const char *str, size_t n, unsigned *replaced)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    if (buf_reserve(b, n) != 0)
        return;
    while (i < n) {
        size_t bad, k = utf8_seq(s + i, n - i, &bad);
        if (k) {
            i += k;
            run += k;
            continue;
        }
        charset_buf_put(b, s + i - run, run);
        run = 0;
        charset_buf_put_cp(b, 0xFFFD);
        if (replaced)
            (*replaced)++;
        i += bad;
    }
    charset_buf_put(b, s + i - run, run);
}

char *charset_buf_take(charset_buf_t *b, size_t *len)
{
    char *p = NULL;
    if (!b->oom && buf_reserve(b, 0) == 0) {
        b->p[b->len] = 0;
        p = b->p;
        if (len)
            *len = b->len;
    } else {
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
    return p;
}

void charset_buf_free(charset_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* iconv */

enum { CONV_OK = 0, CONV_FAIL = -1, CONV_UNKNOWN = -2 };

/* Convert with iconv into b. strict: the first bad sequence fails the whole conversion and
 * leaves b as it was (callers then try another reading); otherwise each one is a U+FFFD. */
static int conv(const char *from, const char *in, size_t len, charset_buf_t *b, int strict,
                unsigned *replaced)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return CONV_UNKNOWN;
    size_t start = b->len;
    unsigned rep = 0;
    int rc = CONV_OK;
    char *ip = (char *)in;
    size_t il = len;
    int flushing = 0;
    for (;;) {
        if (buf_reserve(b, il * 3 + 64) != 0) {
            rc = CONV_FAIL;
            goto out;
        }
        char *op = b->p + b->len;
        size_t ol = b->cap - b->len - 1, before = ol;
        size_t r = flushing ? iconv(cd, NULL, NULL, &op, &ol) : iconv(cd, &ip, &il, &op, &ol);
        b->len += before - ol;
        if (r != (size_t)-1) {
            if (flushing)
                break;
            flushing = 1; /* stateful encodings may owe a final shift sequence */
            continue;
        }
        if (errno == E2BIG)
            continue;
        if (strict) {
            rc = CONV_FAIL;
            goto out;
        }
        if (flushing)
            break;
        charset_buf_put_cp(b, 0xFFFD);
        rep++;
        if (errno == EILSEQ && il > 0) {
            ip++;
            il--;
        } else {
            il = 0; /* EINVAL: a sequence cut off by the end of the input */
        }
    }
out:
    iconv_close(cd);
    if (rc != CONV_OK) {
        b->len = start;
        if (b->oom)
            return CONV_FAIL;
    } else if (replaced) {
        *replaced += rep;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Japanese */

static int has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

static int has_jis_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == 0x1B && (s[i + 1] == '$' || s[i + 1] == '('))
            return 1;
    return 0;
}

/* Rewrite ISO-2022-JP as CP932 bytes, so that JIS X 0208 rows glibc's ISO-2022-JP tables lack
 * (NEC row 13, NEC-selected IBM rows 89-92) decode. Sequences CP932 cannot hold (JIS X 0212,
 * ISO-2022-JP-2 designations, broken escapes) become 0xFF, which CP932 rejects: the replacing
 * conversion then turns each into one U+FFFD. */
static void jis_to_cp932(const unsigned char *s, size_t n, charset_buf_t *o)
{
    enum { ASCII, KANJI, KANA, OTHER2 } st = ASCII;
    int shifted = 0; /* SO/SI half-width katakana, as some Windows encoders emit */
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == 0x1B) {
            size_t left = n - i - 1;
            const unsigned char *e = s + i + 1;
            if (left >= 2 && e[0] == '(' && (e[1] == 'B' || e[1] == 'J' || e[1] == 'H')) {
                st = ASCII; /* JIS-Roman read as ASCII: CP932 has no separate yen sign */
                i += 2;
            } else if (left >= 2 && e[0] == '(' && e[1] == 'I') {
                st = KANA;
                i += 2;
            } else if (left >= 2 && e[0] == '$' && (e[1] == 'B' || e[1] == '@')) {
                st = KANJI;
                i += 2;
            } else if (left >= 3 && e[0] == '$' && e[1] == '(' &&
                       (e[2] == 'B' || e[2] == '@' || e[2] == 'O' || e[2] == 'Q')) {
                st = KANJI; /* JIS X 0213 plane 1 agrees with CP932 where CP932 has a char */
                i += 3;
            } else if (left >= 2 && e[0] == '&' && e[1] == '@') {
                i += 2; /* JIS X 0208-1990 announcer, followed by ESC $ B */
            } else if (left >= 2 && e[0] == '$' && (e[1] == 'A' || e[1] == '(' || e[1] == ')')) {
                st = OTHER2; /* its characters, not the designation, become U+FFFD */
                i += left >= 3 && e[1] != 'A' ? 3 : 2;
            } else {
                charset_buf_putc(o, (char)0xFF);
            }
            continue;
        }
        if (c == 0x0E) {
            shifted = 1;
            continue;
        }
        if (c == 0x0F) {
            shifted = 0;
            continue;
        }
        if (c >= 0x21 && c <= 0x7E && (shifted || st == KANA)) {
            charset_buf_putc(o, c <= 0x5F ? (char)(c + 0x80) : (char)0xFF);
        } else if (c >= 0x21 && c <= 0x7E && (st == KANJI || st == OTHER2)) {
            unsigned d = i + 1 < n ? s[i + 1] : 0;
            if (d < 0x21 || d > 0x7E || st == OTHER2) {
                charset_buf_putc(o, (char)0xFF);
                if (d >= 0x21 && d <= 0x7E)
                    i++;
                continue;
            }
            i++;
            unsigned s1 = ((c - 0x21) >> 1) + 0x81;
            if (s1 > 0x9F)
                s1 += 0x40;
            unsigned s2 = (c & 1) ? d + 0x1F + (d >= 0x60) : d + 0x7E;
            charset_buf_putc(o, (char)s1);
            charset_buf_putc(o, (char)s2);
        } else {
            charset_buf_putc(o, (char)c); /* controls, space; 8-bit bytes pass as CP932 */
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* labels */

typedef enum { CS_SNIFF, CS_UTF8, CS_ASCII, CS_LATIN, CS_SJIS, CS_JIS, CS_EUCJP, CS_ICONV } cs_kind_t;

static const struct {
    const char *label;
    cs_kind_t kind;
    const char *iconv_name;
} labels[] = {
    {"utf-8", CS_UTF8, NULL}, {"utf8", CS_UTF8, NULL}, {"unicode-1-1-utf-8", CS_UTF8, NULL},
    {"us-ascii", CS_ASCII, NULL}, {"ascii", CS_ASCII, NULL}, {"ansi_x3.4-1968", CS_ASCII, NULL},
    {"iso646-us", CS_ASCII, NULL}, {"us", CS_ASCII, NULL}, {"7bit", CS_ASCII, NULL},
    {"iso-8859-1", CS_LATIN, NULL}, {"iso8859-1", CS_LATIN, NULL}, {"iso_8859-1", CS_LATIN, NULL},
    {"latin1", CS_LATIN, NULL}, {"l1", CS_LATIN, NULL}, {"windows-1252", CS_LATIN, NULL},
    {"cp1252", CS_LATIN, NULL}, {"x-cp1252", CS_LATIN, NULL}, {"8bit", CS_LATIN, NULL},
    {"shift_jis", CS_SJIS, NULL}, {"shift-jis", CS_SJIS, NULL}, {"sjis", CS_SJIS, NULL},
    {"x-sjis", CS_SJIS, NULL}, {"ms_kanji", CS_SJIS, NULL}, {"csshiftjis", CS_SJIS, NULL},
    {"windows-31j", CS_SJIS, NULL}, {"cp932", CS_SJIS, NULL}, {"ms932", CS_SJIS, NULL},
    {"x-ms-cp932", CS_SJIS, NULL}, {"shift_jisx0213", CS_SJIS, NULL},
    {"iso-2022-jp", CS_JIS, "ISO-2022-JP-2"}, {"csiso2022jp", CS_JIS, "ISO-2022-JP-2"},
    {"iso-2022-jp-1", CS_JIS, "ISO-2022-JP-2"}, {"iso-2022-jp-2", CS_JIS, "ISO-2022-JP-2"},
    {"csiso2022jp2", CS_JIS, "ISO-2022-JP-2"}, {"iso-2022-jp-3", CS_JIS, "ISO-2022-JP-3"},
    {"iso-2022-jp-ms", CS_JIS, "ISO-2022-JP-2"}, {"cp50220", CS_JIS, "ISO-2022-JP-2"},
    {"cp50221", CS_JIS, "ISO-2022-JP-2"}, {"cp50222", CS_JIS, "ISO-2022-JP-2"},
    {"euc-jp", CS_EUCJP, NULL}, {"eucjp", CS_EUCJP, NULL}, {"x-euc-jp", CS_EUCJP, NULL},
    {"cseucpkdfmtjapanese", CS_EUCJP, NULL}, {"euc-jp-ms", CS_EUCJP, NULL},
    {"gb2312", CS_ICONV, "GB18030"}, {"gbk", CS_ICONV, "GB18030"}, {"x-gbk", CS_ICONV, "GB18030"},
    {"cp936", CS_ICONV, "GB18030"}, {"gb_2312-80", CS_ICONV, "GB18030"},
    {"euc-cn", CS_ICONV, "GB18030"}, {"euc-kr", CS_ICONV, "CP949"},
    {"ks_c_5601-1987", CS_ICONV, "CP949"}, {"ks_c_5601-1989", CS_ICONV, "CP949"},
    {"big5", CS_ICONV, "BIG5-HKSCS"}, {"x-x-big5", CS_ICONV, "BIG5-HKSCS"},
    {"tis-620", CS_ICONV, "CP874"}, {"iso-8859-11", CS_ICONV, "CP874"},
    {"iso-8859-8-i", CS_ICONV, "ISO-8859-8"}, {"iso-8859-6-i", CS_ICONV, "ISO-8859-6"},
    {"unicode-1-1-utf-7", CS_ICONV, "UTF-7"}, {"x-unknown", CS_SNIFF, NULL},
    {"unknown-8bit", CS_SNIFF, NULL}, {"unknown", CS_SNIFF, NULL}, {"default", CS_SNIFF, NULL},
};

/* Lower-case, trim blanks and quotes, drop an RFC 2231 "*lang" suffix. Labels with characters
 * no charset name has (including iconv's "//" suffixes) are unknown: empty result. */
static void norm_label(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = 0;
    if (!in)
        return;
    while (*in == ' ' || *in == '\t' || *in == '"' || *in == '\'')
        in++;
    for (; *in && *in != '*' && *in != '"' && *in != '\''; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == ' ' || c == '\t')
            break;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '(' || c == ')';
        if (!ok || n + 1 >= outlen) {
            out[0] = 0;
            return;
        }
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n] = 0;
}

static cs_kind_t classify(const char *norm, const char **iconv_name)
{
    *iconv_name = NULL;
    if (!norm[0])
        return CS_SNIFF;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(norm, labels[i].label) == 0) {
            *iconv_name = labels[i].iconv_name;
            return labels[i].kind;
        }
    *iconv_name = norm;
    return CS_ICONV;
}

int charset_is_japanese(const char *charset)
{
    char norm[64];
    const char *name;
    norm_label(charset, norm, sizeof(norm));
    cs_kind_t k = classify(norm, &name);
    return k == CS_SJIS || k == CS_JIS || k == CS_EUCJP;
}

/* ------------------------------------------------------------------------------------------ */
/* decoding */

static int utf8_clean(const char *s, size_t n)
{
    size_t i = 0, bad;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i, &bad);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static void decode_jis(const char *iconv_name, const char *in, size_t len, charset_buf_t *b,
                       unsigned *rep)
{
    if (conv(iconv_name ? iconv_name : "ISO-2022-JP-2", in, len, b, 1, rep) == CONV_OK)
        return;
    charset_buf_t sj = {0};
    jis_to_cp932((const unsigned char *)in, len, &sj);
    if (sj.oom) {
        b->oom = 1;
    } else if (conv("CP932", sj.p ? sj.p : "", sj.len, b, 0, rep) != CONV_OK) {
        b->oom = 1;
    }
    charset_buf_free(&sj);
}

/* A strict conversion that also yields no C1 controls: glibc's EUC-JP passes bytes 0x80-0x8D
 * through as U+0080-U+008D, which would let latin1 text pass for Japanese. */
static int sniff_conv(const char *from, const char *in, size_t len, charset_buf_t *b)
{
    size_t start = b->len;
    if (conv(from, in, len, b, 1, NULL) != CONV_OK)
        return 0;
    for (size_t i = start; i + 1 < b->len; i++)
        if ((unsigned char)b->p[i] == 0xC2 && (unsigned char)b->p[i + 1] >= 0x80 && (unsigned char)b->p[i + 1] <= 0x9F) {
            b->len = start;
            return 0;
        }
    return 1;
}

/* What undeclared or unknown text most likely is, for a Japanese contact center: escapes mean
 * ISO-2022-JP; clean UTF-8 is UTF-8 (latin1 text almost never is); then EUC-JP before CP932
 * (Shift_JIS kana leads 0x82/0x83 are invalid in EUC-JP, EUC-JP bytes are often valid CP932). */
static void decode_sniff(const char *in, size_t len, charset_buf_t *b, unsigned *rep)
{
    if (has_jis_escape(in, len) && !has_8bit(in, len)) {
        decode_jis(NULL, in, len, b, rep);
        return;
    }
    if (utf8_clean(in, len)) {
        charset_buf_put_utf8(b, in, len, rep);
        return;
    }
    if (sniff_conv("EUC-JP", in, len, b) || sniff_conv("CP932", in, len, b))
        return;
    if (conv("CP1252", in, len, b, 0, rep) != CONV_OK)
        b->oom = 1;
}

int charset_to_utf8(const char *charset, const char *in, size_t len, char **out, size_t *outlen,
                    unsigned *replaced)
{
    int rc = OMNI_ENOMEM;
    charset_buf_t b = {0}, clean = {0};
    char norm[64];
    const char *name;
    unsigned rep = 0;

    if (!out || !outlen || (!in && len > 0))
        return OMNI_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (!in)
        in = "";
    norm_label(charset, norm, sizeof(norm));
    cs_kind_t kind = classify(norm, &name);
    if (buf_reserve(&b, len + 16) != 0)
        goto out;

    switch (kind) {
    case CS_UTF8:
        if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
            in += 3;
            len -= 3;
        }
        charset_buf_put_utf8(&b, in, len, &rep);
        break;
    case CS_ASCII:
        if (!has_8bit(in, len))
            charset_buf_put_utf8(&b, in, len, &rep);
        else
            decode_sniff(in, len, &b, &rep);
        break;
    case CS_LATIN:
        if (conv("CP1252", in, len, &b, 1, &rep) != CONV_OK &&
            conv("ISO-8859-1", in, len, &b, 0, &rep) != CONV_OK)
            b.oom = 1;
        break;
    case CS_SJIS:
        if (conv("CP932", in, len, &b, 0, &rep) != CONV_OK)
            b.oom = 1;
        break;
    case CS_JIS:
        if (has_8bit(in, len) && (!has_jis_escape(in, len) || utf8_clean(in, len)))
            decode_sniff(in, len, &b, &rep);
        else
            decode_jis(name, in, len, &b, &rep);
        break;
    case CS_EUCJP:
        if (conv("EUC-JP", in, len, &b, 1, &rep) != CONV_OK &&
            conv("EUC-JP-MS", in, len, &b, 0, &rep) != CONV_OK)
            b.oom = 1;
        break;
    case CS_ICONV: {
        int r = conv(name, in, len, &b, 0, &rep);
        if (r == CONV_UNKNOWN)
            decode_sniff(in, len, &b, &rep);
        else if (r != CONV_OK)
            b.oom = 1;
        break;
    }
    case CS_SNIFF:
    default:
        decode_sniff(in, len, &b, &rep);
        break;
    }
    if (b.oom)
        goto out;
    /* iconv output is valid UTF-8 but may carry U+0000 (from NUL or UTF-16 input), which would
     * cut a C string short: one more pass replaces those and anything else unexpected. */
    if (memchr(b.p, 0, b.len) || !utf8_clean(b.p, b.len)) {
        charset_buf_put_utf8(&clean, b.p, b.len, &rep);
        charset_buf_free(&b);
        b = clean;
        clean = (charset_buf_t){0};
    }
    *out = charset_buf_take(&b, outlen);
    if (!*out)
        goto out;
    if (replaced)
        *replaced += rep;
    rc = 0;
out:
    charset_buf_free(&b);
    charset_buf_free(&clean);
    return rc;
}
