/* Unit tests of the email parsing library (adapters/email/mail.c, charset.c): charsets and
 * RFC 2047 as Japanese mail sends them, limits, classification, and the whole shared corpus. */
#include <dirent.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include <omni/identity.h>
#include <omni/omni.h>

#include "charset.h"
#include "mail.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers */

static mail_t *parse_str(const char *raw)
{
    mail_t *m = NULL;
    int rc = mail_parse((const uint8_t *)raw, strlen(raw), NULL, &m);
    cr_assert_eq(rc, 0, "mail_parse: %s", omni_strerror(rc));
    cr_assert_not_null(m);
    return m;
}

static char *b64(const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    char *out = malloc(n * 4 / 3 + 8), *o = out;
    cr_assert_not_null(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* UTF-8 → some charset with glibc, to build test input the way a sender's mailer would. */
static char *to_charset(const char *cs, const char *utf8, size_t *outlen)
{
    iconv_t cd = iconv_open(cs, "UTF-8");
    cr_assert(cd != (iconv_t)-1, "iconv_open %s", cs);
    size_t il = strlen(utf8), ol = il * 4 + 16;
    char *out = malloc(ol), *op = out, *ip = (char *)utf8;
    cr_assert(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
    cr_assert(iconv(cd, NULL, NULL, &op, &ol) != (size_t)-1);
    iconv_close(cd);
    *outlen = (size_t)(op - out);
    return out;
}

static char *decode_cs(const char *cs, const char *in, size_t n, unsigned *rep)
{
    char *out = NULL;
    size_t ol = 0;
    cr_assert_eq(charset_to_utf8(cs, in, n, &out, &ol, rep), 0);
    cr_assert_eq(strlen(out), ol, "no NUL inside the output");
    cr_assert(omni_utf8_valid(out, ol));
    return out;
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)l + 1);
    cr_assert_not_null(b);
    *n = fread(b, 1, (size_t)l, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static const char *corpus_dir(const char *sub, char *buf, size_t n)
{
    const char *root = getenv("OMNI_CORPUS");
    struct stat st;
    if (!root || !*root)
        cr_skip_test("OMNI_CORPUS is not set: corpus tests skipped");
    snprintf(buf, n, "%s/%s", root, sub);
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        cr_skip_test("corpus folder %s not found: corpus tests skipped", buf);
    return buf;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted *.eml names of a folder. */
static size_t list_eml(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    size_t n = 0, cap = 512;
    char **v = malloc(cap * sizeof(*v));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
            continue;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof(*v), cmpstr);
    *names = v;
    return n;
}

static void valid(const char *what, const char *s)
{
    if (s)
        cr_expect(omni_utf8_valid(s, strlen(s)), "%s is not valid UTF-8", what);
}

/* Every string a mail_t carries must be valid UTF-8 (the broker rejects anything else). */
static void all_valid(const mail_t *m)
{
    valid("text", m->text);
    valid("subject", m->subject);
    valid("from_name", m->from_name);
    valid("from_addr", m->from_addr);
    valid("reply_to", m->reply_to);
    valid("message_id", m->message_id);
    valid("in_reply_to", m->in_reply_to);
    valid("bounced_recipient", m->bounced_recipient);
    valid("bounce_status", m->bounce_status);
    valid("bounce_diagnostic", m->bounce_diagnostic);
    valid("feedback_type", m->feedback_type);
    valid("original_message_id", m->original_message_id);
    valid("text_charset", m->text_charset);
    for (size_t i = 0; i < m->n_references; i++)
        valid("reference", m->references[i]);
    for (size_t i = 0; i < m->n_recipients; i++)
        valid("recipient", m->recipients[i]);
    for (size_t i = 0; i < m->n_attachments; i++) {
        valid("attachment name", m->attachments[i].name);
        valid("attachment type", m->attachments[i].content_type);
        valid("attachment cid", m->attachments[i].content_id);
    }
    cr_expect_leq(m->reply_len, strlen(m->text));
}

static mail_t *parse_corpus(const char *dir, const char *name)
{
    char path[1024];
    size_t n;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *raw = read_file(path, &n);
    cr_assert_not_null(raw, "%s", path);
    mail_t *m = NULL;
    int rc = mail_parse((const uint8_t *)raw, n, NULL, &m);
    free(raw);
    cr_assert_eq(rc, 0, "%s: %s", name, omni_strerror(rc));
    all_valid(m);
    return m;
}

static char *identity(const char *addr)
{
    static char out[OMNI_IDENTITY_MAX];
    char in[OMNI_IDENTITY_MAX + 8];
    snprintf(in, sizeof(in), "email:%s", addr);
    cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), 0, "%s", in);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 2047 */

Test(rfc2047, adjacent_b_words_join)
{
    char *s = mail_decode_header("=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IHdvcmxk?=", NULL);
    cr_assert_str_eq(s, "Hello world", "GMime 3.2.13 gives \"Hello\" here");
    free(s);
}

Test(rfc2047, japanese_utf8_split_mid_character)
{
    const char *subj = "請求金額が違います";
    size_t n = strlen(subj), cut = 4; /* inside the second character */
    char *a = b64(subj, cut), *b = b64(subj + cut, n - cut), raw[512];
    snprintf(raw, sizeof(raw), "=?UTF-8?B?%s?=\r\n =?utf-8?B?%s?=", a, b);
    unsigned rep = 0;
    char *s = mail_decode_header(raw, &rep);
    cr_assert_str_eq(s, subj);
    cr_assert_eq(rep, 0);
    free(s);
    free(a);
    free(b);
}

Test(rfc2047, iso2022jp_split_mid_character)
{
    const char *subj = "解約したいです";
    size_t jl;
    char *jis = to_charset("ISO-2022-JP", subj, &jl);
    /* ESC $ B is 3 bytes; 3 + 3 cuts the second JIS character in half. */
    char *a = b64(jis, 6), *b = b64(jis + 6, jl - 6), raw[512];
    snprintf(raw, sizeof(raw), "Re: =?ISO-2022-JP?B?%s?= =?ISO-2022-JP?B?%s?=", a, b);
    char *s = mail_decode_header(raw, NULL);
    char want[256];
    snprintf(want, sizeof(want), "Re: %s", subj);
    cr_assert_str_eq(s, want);
    free(s);
    free(a);
    free(b);
    free(jis);
}

Test(rfc2047, iso2022jp_words_each_shifted)
{
    /* What most Japanese mailers send: each word returns to ASCII before ?=. */
    char *s = mail_decode_header("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\n =?ISO-2022-JP?B?GyRCQCQzJhsoQg==?=", NULL);
    cr_assert_str_eq(s, "こんにちは世界");
    free(s);
}

Test(rfc2047, q_words_mixed_charsets_and_text)
{
    char *s = mail_decode_header("=?iso-8859-1?Q?Caf=E9_cr=E8me?= und =?UTF-8?Q?K=C3=A4se?= (ok)", NULL);
    cr_assert_str_eq(s, "Café crème und Käse (ok)");
    free(s);
    /* Blanks between words of different charsets are dropped too (RFC 2047 §6.2). */
    s = mail_decode_header("=?iso-8859-1?Q?a=E9?=   =?UTF-8?B?w6k=?=", NULL);
    cr_assert_str_eq(s, "aéé");
    free(s);
}

Test(rfc2047, malformed_words_stay_text)
{
    const char *in[] = {"=?UTF-8?B?", "=?UTF-8?X?abc?=", "=??B?SGk=?=", "a =? b ?= c", "=?UTF-8?Q?a b?="};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char *s = mail_decode_header(in[i], NULL);
        cr_assert_str_eq(s, in[i]);
        free(s);
    }
}

Test(rfc2047, unknown_charset_and_bad_bytes_are_replaced_not_dropped)
{
    unsigned rep = 0;
    char *s = mail_decode_header("=?x-nonsense?B?/w==?= ok", &rep);
    cr_assert(omni_utf8_valid(s, strlen(s)));
    cr_assert_str_eq(s, "\xc3\xbf ok", "unknown charset: windows-1252 fallback");
    free(s);
    rep = 0;
    s = mail_decode_header("=?UTF-8?B?/w==?=x", &rep);
    cr_assert_str_eq(s, "\xef\xbf\xbdx");
    cr_assert_eq(rep, 1);
    free(s);
}

Test(rfc2047, raw_8bit_headers_are_sniffed)
{
    char *s = mail_decode_header("請求について", NULL);
    cr_assert_str_eq(s, "請求について", "raw UTF-8");
    free(s);
    size_t n;
    char *sj = to_charset("CP932", "請求について①", &n);
    sj = realloc(sj, n + 1);
    sj[n] = 0;
    s = mail_decode_header(sj, NULL);
    cr_assert_str_eq(s, "請求について①", "raw Shift_JIS");
    free(s);
    free(sj);
    s = mail_decode_header("\x1b$B@A5a\x1b(B", NULL);
    cr_assert_str_eq(s, "請求", "raw ISO-2022-JP");
    free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* charsets */

Test(charset, shift_jis_labels_mean_cp932)
{
    const char *labels[] = {"shift_jis", "Shift_JIS", "sjis", "x-sjis", "\"SHIFT-JIS\"", "windows-31j", "cp932"};
    /* ① (NEC row 13), 髙 (IBM extension), ～ — glibc's SHIFT_JIS rejects the first two. */
    const char in[] = "\x87\x40\xfb\xfc\x81\x60";
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        unsigned rep = 0;
        char *s = decode_cs(labels[i], in, sizeof(in) - 1, &rep);
        cr_assert_str_eq(s, "①髙～", "%s", labels[i]);
        cr_assert_eq(rep, 0, "%s", labels[i]);
        free(s);
    }
}

Test(charset, iso2022jp_plain_uses_jis_mapping)
{
    /* 〜 (JIS 0x2141) is U+301C in ISO-2022-JP, byte-identical to what iconv gives. */
    char *s = decode_cs("iso-2022-jp", "\x1b$B!A\x1b(B", 8, NULL);
    cr_assert_str_eq(s, "\xe3\x80\x9c");
    free(s);
}

Test(charset, iso2022jp_with_nec_and_ibm_extensions_falls_back_to_cp932)
{
    /* ① (row 13 0x2D21), 纊 (NEC-selected IBM row 89: 0x7921), half-width ｱ (ESC ( I). */
    const char in[] = "A\x1b$B-!y!\x1b(I1\x1b(B\x1b$B$\"\x1b(Bz";
    unsigned rep = 0;
    char *s = decode_cs("ISO-2022-JP", in, sizeof(in) - 1, &rep);
    cr_assert_str_eq(s, "A①纊ｱあz");
    cr_assert_eq(rep, 0);
    free(s);
}

Test(charset, iso2022jp_broken_sequences_are_counted)
{
    unsigned rep = 0;
    /* JIS X 0212 (no CP932 equivalent), then a dangling half character. */
    char *s = decode_cs("iso-2022-jp", "\x1b$(D0!\x1b(Bok\x1b$B-", 15, &rep);
    cr_assert_geq(rep, 2);
    cr_assert(strstr(s, "ok") != NULL, "nothing after the bad bytes is lost: %s", s);
    free(s);
}

Test(charset, mislabeled_7bit_charsets)
{
    char *s = decode_cs("iso-2022-jp", "caf\xc3\xa9", 5, NULL);
    cr_assert_str_eq(s, "café", "UTF-8 declared as ISO-2022-JP");
    free(s);
    s = decode_cs("us-ascii", "caf\xc3\xa9", 5, NULL);
    cr_assert_str_eq(s, "café", "UTF-8 declared as US-ASCII");
    free(s);
    s = decode_cs("us-ascii", "caf\xe9!", 5, NULL);
    cr_assert_str_eq(s, "café!", "latin1 declared as US-ASCII");
    free(s);
}

Test(charset, invalid_utf8_becomes_fffd_and_counts)
{
    unsigned rep = 0;
    /* bad lead, surrogate, overlong, truncated 3-byte, NUL */
    const char in[] = "a\xff" "b\xed\xa0\x80" "c\xc0\xaf" "d\xe3\x81" "e\0f";
    char *s = decode_cs("utf-8", in, sizeof(in) - 1, &rep);
    cr_assert_eq(rep, 8, "got %u", rep);
    cr_assert_str_eq(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
                        "d\xef\xbf\xbd" "e\xef\xbf\xbd" "f");
    free(s);
}

Test(charset, invalid_shift_jis_is_replaced_not_truncated)
{
    unsigned rep = 0;
    char *s = decode_cs("shift_jis", "\x82\xa0\x82\xff\x82\xa2", 6, &rep);
    cr_assert_geq(rep, 1);
    cr_assert(strstr(s, "あ") == s, "%s", s);
    cr_assert(strstr(s, "い") != NULL, "text after the bad pair survives: %s", s);
    free(s);
}

Test(charset, unknown_and_missing_labels)
{
    unsigned rep = 0;
    char *s = decode_cs("x-no-such-charset", "caf\xe9 \x80", 6, &rep);
    cr_assert_str_eq(s, "café €", "windows-1252 fallback");
    free(s);
    s = decode_cs("x-no-such-charset", "a\x81 z", 4, &rep);
    cr_assert_str_eq(s, "a\xef\xbf\xbd z", "0x81 is undefined in windows-1252");
    cr_assert_eq(rep, 1);
    free(s);
    s = decode_cs("UTF-8//IGNORE", "\xe3\x81\x82", 3, NULL);
    cr_assert_str_eq(s, "あ", "iconv suffixes are not passed through");
    free(s);
    s = decode_cs(NULL, "\xa4\xa2\xa4\xa4", 4, NULL);
    cr_assert_str_eq(s, "あい", "undeclared EUC-JP is sniffed");
    free(s);
    s = decode_cs("", "\x82\xa0\x82\xa2", 4, NULL);
    cr_assert_str_eq(s, "あい", "undeclared Shift_JIS is sniffed");
    free(s);
    s = decode_cs("euc-kr", "\xc7\xd1", 2, NULL);
    cr_assert_str_eq(s, "한");
    free(s);
    s = decode_cs("gb2312", "\xd6\xd0", 2, NULL);
    cr_assert_str_eq(s, "中");
    free(s);
}

Test(charset, utf16_nul_is_replaced)
{
    unsigned rep = 0;
    char *s = decode_cs("UTF-16LE", "a\0\0\0b\0", 6, &rep);
    cr_assert_str_eq(s, "a\xef\xbf\xbd" "b");
    cr_assert_eq(rep, 1);
    free(s);
}

Test(charset, gmime_japanese_three_charsets_are_one_text)
{
    char dir[1024], p[1100];
    size_t un, jn, sn;
    corpus_dir("email/gmime-japanese", dir, sizeof(dir));
    snprintf(p, sizeof(p), "%s/japanese.utf-8.txt", dir);
    char *u = read_file(p, &un);
    snprintf(p, sizeof(p), "%s/japanese.iso-2022-jp.txt", dir);
    char *j = read_file(p, &jn);
    snprintf(p, sizeof(p), "%s/japanese.shift-jis.txt", dir);
    char *s = read_file(p, &sn);
    cr_assert(u && j && s);
    unsigned rep = 0;
    char *dj = decode_cs("ISO-2022-JP", j, jn, &rep), *ds = decode_cs("Shift_JIS", s, sn, &rep);
    cr_assert_eq(rep, 0);
    cr_assert_eq(strlen(dj), un);
    cr_assert(memcmp(dj, u, un) == 0, "ISO-2022-JP differs from the UTF-8 file");
    cr_assert_eq(strlen(ds), un);
    cr_assert(memcmp(ds, u, un) == 0, "Shift_JIS differs from the UTF-8 file");
    free(dj);
    free(ds);
    free(u);
    free(j);
    free(s);
}

/* The same files as message bodies, 7bit/8bit and base64, must give the UTF-8 file's text. */
Test(charset, gmime_japanese_as_mail_bodies)
{
    char dir[1024], p[1100];
    size_t un;
    corpus_dir("email/gmime-japanese", dir, sizeof(dir));
    snprintf(p, sizeof(p), "%s/japanese.utf-8.txt", dir);
    char *u = read_file(p, &un);
    while (un && (u[un - 1] == '\n' || u[un - 1] == '\r'))
        u[--un] = 0; /* the parser drops trailing blank lines */
    const struct {
        const char *file, *cs, *cte;
    } rows[] = {
        {"japanese.iso-2022-jp.txt", "ISO-2022-JP", "7bit"}, {"japanese.shift-jis.txt", "Shift_JIS", "8bit"},
        {"japanese.iso-2022-jp.txt", "iso-2022-jp", "base64"}, {"japanese.shift-jis.txt", "shift_jis", "base64"},
        {"japanese.utf-8.txt", "utf-8", "base64"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t bn;
        snprintf(p, sizeof(p), "%s/%s", dir, rows[i].file);
        char *body = read_file(p, &bn);
        char *enc = strcmp(rows[i].cte, "base64") == 0 ? b64(body, bn) : NULL;
        size_t rl = bn * 2 + 1024;
        char *raw = malloc(rl);
        int hl = snprintf(raw, rl,
                          "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <taro@example.jp>\r\nTo: support@example.com\r\n"
                          "Subject: test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=%s\r\n"
                          "Content-Transfer-Encoding: %s\r\n\r\n",
                          rows[i].cs, rows[i].cte);
        memcpy(raw + hl, enc ? enc : body, enc ? strlen(enc) : bn);
        mail_t *m = NULL;
        cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)hl + (enc ? strlen(enc) : bn), NULL, &m), 0);
        cr_assert_eq(strlen(m->text), un, "%s as %s/%s: length %zu", rows[i].file, rows[i].cs, rows[i].cte,
                     strlen(m->text));
        cr_assert(memcmp(m->text, u, un) == 0, "%s as %s/%s", rows[i].file, rows[i].cs, rows[i].cte);
        cr_assert_eq(m->replaced, 0);
        cr_assert_str_eq(m->from_name, "山田");
        cr_assert_eq(m->kind, MAIL_CUSTOMER);
        mail_free(&m);
        free(raw);
        free(enc);
        free(body);
    }
    free(u);
}

/* ------------------------------------------------------------------------------------------ */
/* bodies */

Test(body, invalid_bytes_in_body_are_counted)
{
    mail_t *m = parse_str("From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nok \xff\xfe ok\n");
    cr_assert_str_eq(m->text, "ok \xef\xbf\xbd\xef\xbf\xbd ok");
    cr_assert_eq(m->replaced, 2);
    mail_free(&m);
}

Test(body, chunked_base64_decodes_fully)
{
    /* Each chunk padded on its own: GMime 3.2.13 stops at the first '='. */
    mail_t *m = parse_str("From: a@example.com\nContent-Transfer-Encoding: base64\n\nSGVsbG8=\nIHdvcmxk\n");
    cr_assert_str_eq(m->text, "Hello world");
    mail_free(&m);
}

Test(body, quoted_printable_soft_breaks_and_crlf)
{
    mail_t *m = parse_str("From: a@example.com\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                          "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au =\r\nlait\r\nline 2 =3D ok\r\n");
    cr_assert_str_eq(m->text, "Café au lait\nline 2 = ok");
    cr_assert_str_eq(m->text_charset, "iso-8859-1");
    mail_free(&m);
}

Test(body, plain_is_preferred_over_html)
{
    mail_t *m = parse_str("From: a@example.com\nContent-Type: multipart/alternative; boundary=XX\n\n"
                          "--XX\nContent-Type: text/html\n\n<p>html version</p>\n"
                          "--XX\nContent-Type: text/plain; charset=utf-8\n\nplain version\n--XX--\n");
    cr_assert_str_eq(m->text, "plain version");
    cr_assert_eq(m->n_attachments, 0);
    mail_free(&m);
}

Test(body, html_becomes_readable_text)
{
    mail_t *m = parse_str(
        "From: a@example.com\nContent-Type: text/html; charset=utf-8\n\n"
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>alert('x')</script><h1>Hello&nbsp;there</h1><p>a &lt; b &amp;&amp; c &#8212; &#x4E2D;&#25991; "
        "&copy;</p><!-- gone --><div>line<br>break</div><ul><li>one</li><li>two</li></ul>"
        "<p>   lots    of\n\n  space   </p><pre>  keep\n   this</pre>5 < 6 &bogus;</body></html>");
    cr_assert_str_eq(m->text, "Hello there\n\na < b && c \xe2\x80\x94 中文 \xc2\xa9\n\nline\nbreak\none\ntwo\n\n"
                              "lots of space\n\n  keep\n   this\n5 < 6 &bogus;");
    mail_free(&m);
}

Test(body, html_meta_charset_when_mime_has_none)
{
    size_t n;
    char *sj = to_charset("CP932", "料金", &n);
    char raw[512];
    int hl = snprintf(raw, sizeof(raw), "From: a@example.com\nContent-Type: text/html\n\n"
                                        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=shift_jis\"><p>");
    memcpy(raw + hl, sj, n);
    strcpy(raw + hl + n, "</p>");
    mail_t *m = parse_str(raw);
    cr_assert_str_eq(m->text, "料金");
    mail_free(&m);
    free(sj);
}

Test(body, attachments_are_metadata_not_text)
{
    mail_t *m = parse_str(
        "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee attached\n"
        "--B\nContent-Type: text/plain; name=\"notes.txt\"\nContent-Disposition: attachment; filename=\"notes.txt\"\n\nnot body\n"
        "--B\nContent-Type: application/pdf\nContent-Disposition: attachment;\n"
        " filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
        "--B\nContent-Type: image/png; name=\"=?ISO-2022-JP?B?GyRCPHUbKEI=?= =?ISO-2022-JP?B?GyRCPy4bKEI=?=.png\"\n"
        "Content-Disposition: inline\nContent-ID: <img1@x>\n\n\n--B--\n");
    cr_assert_str_eq(m->text, "see attached");
    cr_assert_eq(m->n_attachments, 3);
    cr_assert_str_eq(m->attachments[0].name, "notes.txt");
    cr_assert_str_eq(m->attachments[1].name, "請求書.pdf", "RFC 2231");
    cr_assert_str_eq(m->attachments[1].content_type, "application/pdf");
    cr_assert_eq(m->attachments[1].size, 5);
    cr_assert(memcmp(m->attachments[1].data, "%PDF-", 5) == 0);
    cr_assert_str_eq(m->attachments[2].name, "受信.png", "RFC 2047 words in a parameter");
    cr_assert_str_eq(m->attachments[2].content_id, "img1@x");
    cr_assert(m->attachments[2].is_inline);
    mail_free(&m);
}

Test(body, text_limit_truncates_with_marker)
{
    char raw[4096];
    int n = snprintf(raw, sizeof(raw), "From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\n");
    for (int i = 0; i < 300; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "あ"); /* 900 bytes */
    mail_limits_t lim = {.max_text_bytes = 100};
    mail_t *m = NULL;
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, &lim, &m), 0);
    cr_assert_leq(strlen(m->text), 100);
    cr_assert(strstr(m->text, MAIL_TRUNCATED_MARKER) != NULL);
    cr_assert(omni_utf8_valid(m->text, strlen(m->text)), "cut on a character boundary");
    cr_assert_eq(m->text_truncated + strlen(m->text) - strlen(MAIL_TRUNCATED_MARKER), 900);
    mail_free(&m);
}

Test(body, reply_is_separable_from_quote)
{
    mail_t *m = parse_str("From: a@example.com\n\nThanks, that works.\n\nOn Mon, 1 Jan 2024 at 10:00, Support <s@x.com>\n"
                          "wrote:\n> Try again\n");
    cr_assert_eq(m->reply_len, strlen("Thanks, that works."));
    mail_free(&m);
    m = parse_str("From: a@example.com\n\nno quote here\n");
    cr_assert_eq(m->reply_len, strlen(m->text));
    mail_free(&m);
}

/* ------------------------------------------------------------------------------------------ */
/* headers */

Test(headers, identities_and_threading)
{
    mail_t *m = parse_str(
        "From: \"Yamada, Taro\" <Taro.Yamada@Example.JP>\nReply-To: <\"\">\n"
        "To: Support <support+c_42@example.com>, undisclosed-recipients:;\nCc: billing@EXAMPLE.com (Billing)\n"
        "Subject: Re: =?UTF-8?B?6Kej57SE?=\nMessage-ID: <abc@mail.example.jp>\n"
        "In-Reply-To: <x1@omni>, <x1@omni>\nReferences: <r1@a>\n <r2@b>\t<x1@omni>\n\nbody\n");
    cr_assert_str_eq(m->from_addr, "Taro.Yamada@example.jp");
    cr_assert_str_eq(identity(m->from_addr), "email:taro.yamada@example.jp");
    cr_assert_str_eq(m->from_name, "Yamada, Taro");
    cr_assert_null(m->reply_to, "an unusable Reply-To is NULL");
    cr_assert_str_eq(m->subject, "Re: 解約");
    cr_assert_str_eq(m->message_id, "abc@mail.example.jp");
    cr_assert_str_eq(m->in_reply_to, "x1@omni");
    cr_assert_eq(m->n_references, 3);
    cr_assert_str_eq(m->references[0], "r1@a");
    cr_assert_str_eq(m->references[2], "x1@omni");
    cr_assert_eq(m->n_recipients, 2);
    cr_assert_str_eq(m->recipients[0], "support+c_42@example.com");
    cr_assert_str_eq(m->recipients[1], "billing@example.com");
    mail_free(&m);
}

Test(headers, address_forms)
{
    const struct {
        const char *from, *addr, *name;
    } rows[] = {
        {"MAILER-DAEMON@Example.com (Mail Delivery System)", "MAILER-DAEMON@example.com", "Mail Delivery System"},
        {"<kijitora@example.org>", "kijitora@example.org", ""},
        {"=?utf-8?B?eHB0bw?= <dummy@example.com>", "dummy@example.com", "xpto"},
        {"\"=?UTF-8?B?5bGx55Sw?=\" <y@example.jp>", "y@example.jp", "山田"},
        {"Name <@relay.example:user@example.com>", "user@example.com", "Name"},
        {"MAILER-DAEMON <>", NULL, "MAILER-DAEMON"},
        {"mailer-daemon", NULL, ""},
        {"group: a@example.com, b@example.com;", "a@example.com", ""},
        {"\"a\\\"b\" <q@example.com>", "q@example.com", "a\"b"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char raw[512];
        snprintf(raw, sizeof(raw), "From: %s\nSubject: x\n\nhi\n", rows[i].from);
        mail_t *m = parse_str(raw);
        if (rows[i].addr)
            cr_assert_str_eq(m->from_addr ? m->from_addr : "(null)", rows[i].addr, "%s", rows[i].from);
        else
            cr_assert_null(m->from_addr, "%s", rows[i].from);
        cr_assert_str_eq(m->from_name, rows[i].name, "%s", rows[i].from);
        mail_free(&m);
    }
}

Test(headers, mbox_from_line_is_not_a_header)
{
    mail_t *m = parse_str("From MAILER-DAEMON  Mon Sep 20 19:29:27 2021\nFrom: <foo@bar.net>\nSubject: hi\n\nbody\n");
    cr_assert_str_eq(m->from_addr, "foo@bar.net");
    cr_assert_eq(m->kind, MAIL_CUSTOMER, "the mbox line says nothing about the sender");
    mail_free(&m);
}

/* ------------------------------------------------------------------------------------------ */
/* limits and garbage */

Test(limits, sizes_headers_parts_depth)
{
    mail_t *m = NULL;
    const char *small = "From: a@example.com\nSubject: x\n\nhello\n";
    mail_limits_t lim = {.max_bytes = 10};
    cr_assert_eq(mail_parse((const uint8_t *)small, strlen(small), &lim, &m), OMNI_ETOOBIG);
    cr_assert_null(m);

    char raw[65536];
    int n = snprintf(raw, sizeof(raw), "From: a@example.com\n");
    for (int i = 0; i < 20; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "X-H%d: v\n", i);
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, "\nbody\n");
    lim = (mail_limits_t){.max_headers = 10};
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, &lim, &m), OMNI_ETOOBIG);
    lim.max_headers = 30;
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, &lim, &m), 0);
    mail_free(&m);

    n = snprintf(raw, sizeof(raw), "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n");
    for (int i = 0; i < 40; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "--B\nContent-Type: text/plain\n\npart %d\n", i);
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, "--B--\n");
    lim = (mail_limits_t){.max_parts = 20};
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, &lim, &m), OMNI_ETOOBIG);
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, NULL, &m), 0);
    cr_assert(strstr(m->text, "part 39") != NULL, "all text parts of a mixed message are kept");
    mail_free(&m);

    n = snprintf(raw, sizeof(raw), "From: a@example.com\n");
    for (int i = 0; i < 50; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, "Content-Type: text/plain\n\ndeep\n");
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, NULL, &m), OMNI_ETOOBIG, "default depth 32");
    lim = (mail_limits_t){.max_depth = 60};
    cr_assert_eq(mail_parse((uint8_t *)raw, (size_t)n, &lim, &m), 0);
    cr_assert_str_eq(m->text, "deep");
    mail_free(&m);
}

/* What would cost GMime seconds and gigabytes is refused before GMime sees it. */
Test(limits, refused_before_gmime_builds_it)
{
    size_t cap = 4u << 20, n;
    char *raw = malloc(cap);
    mail_t *m = NULL;

    n = (size_t)snprintf(raw, cap, "From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n");
    for (int i = 0; i < 200000; i++)
        n += (size_t)snprintf(raw + n, cap - n, "--B\n\nx\n");
    cr_assert_eq(mail_parse((uint8_t *)raw, n, NULL, &m), OMNI_ETOOBIG, "200k sibling parts");

    n = (size_t)snprintf(raw, cap, "From: a@example.com\nTo: ");
    while (n < 300 * 1024)
        n += (size_t)snprintf(raw + n, cap - n, "a@example.com,\n ");
    n += (size_t)snprintf(raw + n, cap - n, "b@example.com\n\nbody\n");
    cr_assert_eq(mail_parse((uint8_t *)raw, n, NULL, &m), OMNI_ETOOBIG, "a 300 KiB To: field");

    n = (size_t)snprintf(raw, cap, "From: a@example.com\nContent-Type: multipart/digest; boundary=D\n\n--D\n\n");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(raw + n, cap - n, "X-%d: y\n", i);
    n += (size_t)snprintf(raw + n, cap - n, "\nbody\n--D--\n");
    cr_assert_eq(mail_parse((uint8_t *)raw, n, NULL, &m), OMNI_ETOOBIG, "5000 headers in a digest's message");

    n = (size_t)snprintf(raw, cap, "From: a@example.com\nSubject: ");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(raw + n, cap - n, "=?a?q?x");
    n += (size_t)snprintf(raw + n, cap - n, "\n\nbody\n");
    cr_assert_eq(mail_parse((uint8_t *)raw, n, NULL, &m), 0);
    cr_assert_eq(strlen(m->subject), MAIL_MAX_FIELD, "subjects are cut for the broker");
    mail_free(&m);
    free(raw);
}

Test(limits, not_a_message)
{
    mail_t *m = NULL;
    cr_assert_eq(mail_parse((const uint8_t *)"", 0, NULL, &m), OMNI_EINVAL);
    cr_assert_eq(mail_parse((const uint8_t *)"hello world\n", 12, NULL, &m), OMNI_EINVAL);
    cr_assert_eq(mail_parse(NULL, 5, NULL, &m), OMNI_EINVAL);
    cr_assert_eq(mail_parse((const uint8_t *)"x", 1, NULL, NULL), OMNI_EINVAL);
    cr_assert_null(m);
}

Test(limits, garbage_never_crashes)
{
    /* Deterministic pseudo-random mutations of a realistic message. */
    const char *base = "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <a@example.jp>\nSubject: =?UTF-8?B?44GC?=\n"
                       "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/html; charset=iso-2022-jp\n"
                       "Content-Transfer-Encoding: base64\n\nGyRCJCIbKEI=\n--B\nContent-Type: message/rfc822\n\n"
                       "Message-ID: <x@y>\n\nhi\n--B--\n";
    size_t bl = strlen(base);
    uint32_t seed = 12345;
    char buf[1024];
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, base, bl);
        for (int k = 0; k < 1 + it % 8; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % bl] = (char)(seed >> 16);
        }
        mail_t *m = NULL;
        size_t len = bl - (it % 37);
        int rc = mail_parse((uint8_t *)buf, len, NULL, &m);
        cr_assert(rc == 0 || rc == OMNI_EINVAL || rc == OMNI_ETOOBIG, "rc %d", rc);
        if (m)
            all_valid(m);
        mail_free(&m);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* classification on synthetic mail */

struct cls_row {
    const char *raw;
    mail_kind_t kind;
};

static const struct cls_row cls_rows[] = {
    {"From: a@example.com\nAuto-Submitted: auto-replied\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nAuto-Submitted: no\nSubject: x\n\nhi", MAIL_CUSTOMER},
    {"From: a@example.com\nPrecedence: bulk\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nX-Autoreply: yes\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nX-Autorespond: x\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nX-MS-Exchange-Inbox-Rules-Loop: a@example.com\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nList-Id: <list.example.com>\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nReturn-Path: <>\nSubject: x\n\nhi", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: Automatic reply: your order\n\nI am away", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: Out of Office: Re: invoice\n\nback monday", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: =?UTF-8?B?6Ieq5YuV6L+U5L+hOiDjgYrllY/jgYTlkIjjgo/jgZs=?=\n\nx", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: =?UTF-8?B?5LiN5Zyo44Gu44GK55+l44KJ44Gb?=\n\nx", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: Re: help\n\nI am out of the office until Monday.\n", MAIL_AUTO_REPLY},
    {"From: a@example.com\nSubject: Re: help\n\n\xe3\x81\x9f\xe3\x81\xa0\xe3\x81\x84\xe3\x81\xbe\xe4\xb8\x8d\xe5\x9c\xa8"
     "\xe3\x81\xab\xe3\x81\x97\xe3\x81\xa6\xe3\x81\x8a\xe3\x82\x8a\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82\n", MAIL_AUTO_REPLY},
    {"From: MAILER-DAEMON@example.com\nSubject: x\n\nsomething", MAIL_BOUNCE},
    {"From: a@example.com\nSubject: Undelivered Mail Returned to Sender\n\nx", MAIL_BOUNCE},
    {"From: a@example.com\nSubject: Delivery Status Notification (Failure)\n\nx", MAIL_BOUNCE},
    {"From: a@example.com\nX-Failed-Recipients: b@example.org\nSubject: x\n\nx", MAIL_BOUNCE},
    {"From: a@example.com\nReturn-Path: <>\nSubject: x\n\nThe user unknown: b@example.org", MAIL_BOUNCE},
    {"From: a@example.com\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\n\n--R\n\nx\n--R--",
     MAIL_BOUNCE},
    {"From: a@example.com\nContent-Type: multipart/report; report-type=feedback-report; boundary=R\n\n--R\n\nx\n--R--",
     MAIL_FEEDBACK},
    /* Shapes of sisimai files held back from the corpus (Lotus Notes, fml, IMail). */
    {"From: John.Smith@b.c\nSubject: AUTO: Smith, John is out of the office. (returning 05/01/2010)\n\n"
     "I am out of the office until 05/01/2010.\n", MAIL_AUTO_REPLY},
    {"From: 2ndml-admin@example.com\nSubject: Loop Alert: Duplicated Message-ID (2ndml ML)\n"
     "X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]\n\nDuplicated Message-ID in <2ndml@example.com>.\n",
     MAIL_BOUNCE},
    {"From: \"Postmaster\" <postmaster@example.org>\nSubject: Undeliverable Mail\n\nUnknown user: k@example.com\n",
     MAIL_BOUNCE},
    {"From: k@example.org\nSubject: Re: blah (Automatic Response)\n\nHello, I am away until 05/07/2010.\n",
     MAIL_AUTO_REPLY},
    /* Customers whose words look like the rules: they must stay customers. */
    {"From: a@example.com\nSubject: Delivery status of my order #123\n\nWhere is it?", MAIL_CUSTOMER},
    {"From: a@example.com\nSubject: My package was returned to the warehouse\n\nwhy", MAIL_CUSTOMER},
    {"From: a@example.com\nSubject: =?UTF-8?B?5LiN5Zyo56Wo44Gr44Gk44GE44Gm?=\n\nx", MAIL_CUSTOMER}, /* 不在票について */
    {"From: a@example.com\nSubject: vacation package refund\n\nI was on vacation and my card was charged twice.",
     MAIL_CUSTOMER},
    {"From: no-reply@forms.example.com\nReply-To: c@example.org\nSubject: Contact form\n\nMy card was stolen", MAIL_CUSTOMER},
    {"From: a@example.com\nX-Auto-Response-Suppress: All\nSubject: x\n\nhi", MAIL_CUSTOMER},
};

Test(classify, synthetic_rows)
{
    for (size_t i = 0; i < sizeof(cls_rows) / sizeof(cls_rows[0]); i++) {
        mail_t *m = parse_str(cls_rows[i].raw);
        cr_expect_eq(m->kind, cls_rows[i].kind, "row %zu: %s (%s) for %s", i, mail_kind_name(m->kind), m->why,
                     cls_rows[i].raw);
        cr_expect_eq(m->no_autoreply, m->kind != MAIL_CUSTOMER || strstr(cls_rows[i].raw, "Suppress") != NULL,
                     "row %zu", i);
        mail_free(&m);
    }
}

Test(classify, null_envelope_sender)
{
    const char *raw = "From: a@example.com\nSubject: hello\n\nplain words\n";
    mail_t *m = NULL;
    cr_assert_eq(mail_parse_envelope((const uint8_t *)raw, strlen(raw), "", NULL, &m), 0);
    cr_assert_eq(m->kind, MAIL_AUTO_REPLY);
    cr_assert_str_eq(m->why, "null sender");
    mail_free(&m);
    cr_assert_eq(mail_parse_envelope((const uint8_t *)raw, strlen(raw), "a@example.com", NULL, &m), 0);
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    mail_free(&m);
}

Test(classify, dsn_fields)
{
    mail_t *m = parse_str(
        "From: MAILER-DAEMON@mx.example.com\nTo: support@example.com\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=R\n\n"
        "--R\nContent-Type: text/plain\n\nDelivery failed.\n"
        "--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        "Final-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; Gone@Example.ORG\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>:\n Recipient address rejected\n"
        "--R\nContent-Type: text/rfc822-headers\n\nFrom: support@example.com\nMessage-ID: <out-1@omni>\n"
        "In-Reply-To: <in-1@customer>\n--R--\n");
    cr_assert_eq(m->kind, MAIL_BOUNCE);
    cr_assert_str_eq(m->bounced_recipient, "Gone@example.org");
    cr_assert_str_eq(m->bounce_status, "5.1.1");
    cr_assert_str_eq(m->bounce_diagnostic, "550 5.1.1 <gone@example.org>: Recipient address rejected");
    cr_assert_str_eq(m->original_message_id, "out-1@omni");
    cr_assert_str_eq(m->original_in_reply_to, "in-1@customer");
    cr_assert_str_eq(m->text, "Delivery failed.");
    mail_free(&m);
}

/* ------------------------------------------------------------------------------------------ */
/* the corpus */

static const char *class_of_sisimai(const char *name)
{
    if (strncmp(name, "rfc3834-", 8) == 0)
        return "auto_reply";
    if (strncmp(name, "arf-", 4) == 0)
        return "feedback";
    return "bounce";
}

Test(corpus, sisimai_bsd_every_file, .timeout = 300)
{
    char dir[1024];
    char **names;
    corpus_dir("email/sisimai/bsd", dir, sizeof(dir));
    size_t n = list_eml(dir, &names), counts[4] = {0}, wrong = 0, with_rcpt = 0, with_status = 0, with_orig = 0;
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        mail_t *m = parse_corpus(dir, names[i]);
        const char *want = class_of_sisimai(names[i]);
        counts[m->kind]++;
        if (strcmp(mail_kind_name(m->kind), want) != 0) {
            wrong++;
            cr_expect_fail("%s: %s (%s), expected %s", names[i], mail_kind_name(m->kind), m->why, want);
        }
        cr_expect(m->no_autoreply, "%s: would be auto-acknowledged", names[i]);
        with_rcpt += m->bounced_recipient != NULL;
        with_status += m->bounce_status != NULL;
        with_orig += m->original_message_id != NULL;
        mail_free(&m);
        free(names[i]);
    }
    free(names);
    fprintf(stderr, "sisimai/bsd: %zu files: %zu bounce, %zu feedback, %zu auto_reply, %zu customer; %zu not as "
                    "the README says; failed recipient found in %zu, status in %zu, original Message-ID in %zu\n",
            n, counts[MAIL_BOUNCE], counts[MAIL_FEEDBACK], counts[MAIL_AUTO_REPLY], counts[MAIL_CUSTOMER], wrong,
            with_rcpt, with_status, with_orig);
    cr_assert_eq(counts[MAIL_CUSTOMER], 0);
}

Test(corpus, sisimai_not)
{
    char dir[1024];
    corpus_dir("email/sisimai/not", dir, sizeof(dir));
    mail_t *m = parse_corpus(dir, "is-not-bounce-01.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER, "%s", m->why);
    cr_assert_str_eq(identity(m->from_addr), "email:shironeko@example.com");
    cr_assert_str_eq(m->subject, "にゃんこ");
    cr_assert_str_eq(m->text, "にゃーーーーーーーーーーー");
    mail_free(&m);
    m = parse_corpus(dir, "is-not-bounce-02.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER, "%s", m->why);
    cr_assert_str_eq(identity(m->from_addr), "email:dummy@example.com");
    cr_assert_str_eq(m->text, "it shouldn't be considered as bounce");
    cr_assert_eq(m->n_attachments, 1);
    cr_assert_str_eq(m->attachments[0].content_type, "message/rfc822");
    cr_assert_str_eq(m->attachments[0].name, "original.eml");
    mail_free(&m);
    m = parse_corpus(dir, "rb-issue-368-bug.eml");
    cr_assert_neq(m->kind, MAIL_CUSTOMER, "a hand-written bounce notice is automated");
    cr_assert(m->no_autoreply);
    mail_free(&m);
}

/* PNG chunks carry CRC-32s: a decoded attachment that passes them is byte-exact. */
static int png_ok(const uint8_t *p, size_t n)
{
    static uint32_t tab[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        tab[i] = c;
    }
    if (n < 8 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0)
        return 0;
    size_t i = 8;
    while (i + 12 <= n) {
        uint32_t len = (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
        if (len > n - i - 12)
            return 0;
        uint32_t c = 0xFFFFFFFFu;
        for (size_t k = i + 4; k < i + 8 + len; k++)
            c = tab[(c ^ p[k]) & 0xFF] ^ (c >> 8);
        c ^= 0xFFFFFFFFu;
        const uint8_t *q = p + i + 8 + len;
        if (c != ((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]))
            return 0;
        if (memcmp(p + i + 4, "IEND", 4) == 0)
            return 1;
        i += 12 + len;
    }
    return 0;
}

Test(corpus, chatwoot_rows)
{
    char dir[1024];
    corpus_dir("email/chatwoot", dir, sizeof(dir));
    mail_t *m;

    m = parse_corpus(dir, "attachments_without_text.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    cr_assert_str_eq(m->text, "");
    cr_assert_eq(m->n_attachments, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(m->attachments[i].name, "1kb.png");
        cr_assert_eq(m->attachments[i].size, 1049);
        cr_assert(png_ok(m->attachments[i].data, m->attachments[i].size), "PNG %zu CRCs", i);
    }
    mail_free(&m);

    m = parse_corpus(dir, "bounced_gmail.eml");
    cr_assert_eq(m->kind, MAIL_BOUNCE);
    cr_assert_str_eq(m->why, "multipart/report delivery-status");
    cr_assert_str_eq(m->bounced_recipient, "alex.jones@fictionalcorp.com");
    cr_assert_str_eq(m->bounce_status, "5.1.1");
    cr_assert_str_eq(m->original_in_reply_to, "account/1/conversation/93775311-9416-4428-964b-862001f8a8b2@gmail.com");
    cr_assert_str_eq(m->original_message_id,
                     "conversation/93775311-9416-4428-964b-862001f8a8b2/messages/27855337@gmail.com");
    cr_assert(m->no_autoreply);
    mail_free(&m);

    m = parse_corpus(dir, "cid_inline_images_without_disposition.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    cr_assert_str_eq(m->text, "This is a plain text version of the message.");
    cr_assert_eq(m->n_attachments, 1);
    cr_assert_str_eq(m->attachments[0].content_id, "image001.jpg@test");
    cr_assert(m->attachments[0].is_inline);
    cr_assert(m->attachments[0].damaged, "the truncated base64 is flagged");
    mail_free(&m);

    m = parse_corpus(dir, "email_with_inline_pdf.eml");
    cr_assert_str_eq(m->text, "Here is an example mail with inline PDF");
    cr_assert_eq(m->n_attachments, 1);
    cr_assert_str_eq(m->attachments[0].name, "dummy.pdf");
    cr_assert_str_eq(m->attachments[0].content_type, "application/pdf");
    cr_assert_eq(m->attachments[0].size, 13264);
    cr_assert(memcmp(m->attachments[0].data, "%PDF", 4) == 0);
    mail_free(&m);

    m = parse_corpus(dir, "mail_with_plain_text_and_inline_image.eml");
    cr_assert(strstr(m->text, "Let's add no HTML content here, just plain text and images") != NULL);
    cr_assert_eq(m->n_attachments, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(m->attachments[i].size, 0);
    mail_free(&m);

    m = parse_corpus(dir, "mail_with_quote.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    cr_assert_eq(m->reply_len, strlen("Yes, I am providing you step how to reproduce this issue"));
    cr_assert(strncmp(m->text, "Yes, I am providing you step how to reproduce this issue", m->reply_len) == 0);
    cr_assert_str_eq(m->in_reply_to, "0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com");
    cr_assert_eq(m->n_references, 2);
    mail_free(&m);

    m = parse_corpus(dir, "mail_with_references.eml");
    cr_assert_str_eq(m->text, "Email with references header");
    cr_assert_eq(m->n_references, 2);
    cr_assert_str_eq(m->references[1], "test-reference-id");
    mail_free(&m);

    m = parse_corpus(dir, "malformed_reply_to.eml");
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    cr_assert_str_eq(identity(m->from_addr), "email:sender@example.com");
    cr_assert_null(m->reply_to);
    mail_free(&m);

    m = parse_corpus(dir, "non_utf_encoded_mail.eml");
    cr_assert_str_eq(m->subject, "أهلين عميلنا الكريم ");
    cr_assert_str_eq(m->text, "أنظروا، أنا أحتاجها فقط لتقوم بالتدقيق في مقالتي الشخصية");
    cr_assert_str_eq(m->from_name, "متجر سوق نت");
    cr_assert_eq(m->kind, MAIL_AUTO_REPLY);
    cr_assert(m->no_autoreply);
    mail_free(&m);

    m = parse_corpus(dir, "notification.eml");
    cr_assert(strstr(m->text, "Hi Sojan,") == m->text, "%s", m->text);
    cr_assert(strstr(m->text, "A new conversation has been assigned to you") != NULL);
    cr_assert(strstr(m->text, "<") == NULL, "no markup left");
    mail_free(&m);

    m = parse_corpus(dir, "only_html.eml");
    cr_assert_str_eq(m->text, "This is html only mail");
    mail_free(&m);

    m = parse_corpus(dir, "references.eml");
    cr_assert_str_eq(identity(m->from_addr), "email:sony@chatwoot.com");
    cr_assert_str_eq(m->in_reply_to, "4e6e35f5a38b4_479f13bb90078178@small-app-01.mail");
    cr_assert_str_eq(m->references[m->n_references - 1], "test-in-reply-to");
    mail_free(&m);
    m = parse_corpus(dir, "references-same.eml");
    cr_assert_str_eq(identity(m->from_addr), "email:email@gmail.com");
    cr_assert_str_eq(m->references[m->n_references - 1], "test-reference-id");
    mail_free(&m);

    m = parse_corpus(dir, "reply_uuid_in_cc.eml");
    int found = 0;
    for (size_t i = 0; i < m->n_recipients; i++)
        found |= strcmp(m->recipients[i], "reply+6bdc3f4d-0bec-4515-a284-5d916fdde489@example.com") == 0;
    cr_assert(found, "the Cc reply address is among the recipients");
    mail_free(&m);
}

/* Every corpus file parses, decodes to valid UTF-8 and is never a customer unless the README
 * says so; a summary per folder goes to the log. */
Test(corpus, every_file_valid_utf8, .timeout = 300)
{
    const char *folders[] = {"email/sisimai/bsd", "email/sisimai/not", "email/chatwoot"};
    char root[1024];
    corpus_dir("email", root, sizeof(root));
    for (size_t f = 0; f < 3; f++) {
        char dir[1100];
        char **names;
        corpus_dir(folders[f], dir, sizeof(dir));
        size_t n = list_eml(dir, &names), counts[4] = {0};
        unsigned rep = 0;
        for (size_t i = 0; i < n; i++) {
            mail_t *m = parse_corpus(dir, names[i]);
            counts[m->kind]++;
            rep += m->replaced;
            mail_free(&m);
            free(names[i]);
        }
        free(names);
        fprintf(stderr, "%s: %zu files: %zu customer, %zu auto_reply, %zu bounce, %zu feedback; %u bytes replaced\n",
                folders[f], n, counts[0], counts[1], counts[2], counts[3], rep);
    }
}
