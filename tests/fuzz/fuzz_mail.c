/* libFuzzer target for everything omni-email decodes from a sender: MIME parsing and
 * classification, RFC 2047 header decoding, and charset conversion; every output must be UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Local on purpose: the target links only the parsing library. Rejects NUL as well, since a
 * NUL inside a C string would silently truncate what the broker receives. */
static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        size_t k;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
        else return 0;
        if ((size_t)(e - p) <= k)
            return 0;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += k + 1;
    }
    return 1;
}

static void check(const char *s)
{
    if (s && !utf8_ok(s, strlen(s)))
        abort();
}

static const char *const labels[] = {"utf-8", "iso-2022-jp", "shift_jis", "euc-jp", "us-ascii",
                                     "iso-8859-1", "windows-1252", "gb2312", "euc-kr", "utf-16",
                                     "utf-7", "x-unknown", "", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    mail_t *m = NULL;
    /* Small limits on some inputs so the limit paths are reached too. */
    mail_limits_t lim = {0};
    if (len && (data[0] & 3) == 0)
        lim = (mail_limits_t){.max_headers = 16, .max_parts = 8, .max_depth = 3, .max_text_bytes = 64};
    if (mail_parse(data, len, &lim, &m) == 0) {
        check(m->text);
        check(m->subject);
        check(m->from_name);
        check(m->from_addr);
        check(m->reply_to);
        check(m->message_id);
        check(m->in_reply_to);
        check(m->bounced_recipient);
        check(m->bounce_status);
        check(m->bounce_diagnostic);
        check(m->feedback_type);
        check(m->original_message_id);
        check(m->original_in_reply_to);
        check(m->text_charset);
        for (size_t i = 0; i < m->n_references; i++)
            check(m->references[i]);
        for (size_t i = 0; i < m->n_recipients; i++)
            check(m->recipients[i]);
        for (size_t i = 0; i < m->n_attachments; i++) {
            check(m->attachments[i].name);
            check(m->attachments[i].content_id);
            check(m->attachments[i].content_type);
        }
        if (m->reply_len > strlen(m->text) || (lim.max_text_bytes && strlen(m->text) > lim.max_text_bytes))
            abort();
        mail_free(&m);
    }

    char *z = malloc(len + 1);
    if (!z)
        return 0;
    memcpy(z, data, len);
    z[len] = 0;
    char *h = mail_decode_header(z, NULL);
    check(h);
    free(h);
    free(z);

    if (len > 0) {
        size_t nl = sizeof(labels) / sizeof(labels[0]) - 1;
        const char *cs = labels[data[0] % (nl + 1)]; /* the last index is NULL: undeclared */
        char *out = NULL;
        size_t ol = 0;
        unsigned rep = 0;
        if (charset_to_utf8(cs, (const char *)data + 1, len - 1, &out, &ol, &rep) != 0 && out)
            abort();
        if (out && (ol != strlen(out) || !utf8_ok(out, ol)))
            abort();
        free(out);
    }
    return 0;
}
