/* Charset decoding for the email adapter: any declared (or missing) mail charset to valid UTF-8
 * with iconv, Japanese mail done right, and every undecodable byte turned into U+FFFD and counted. */
#ifndef OMNI_EMAIL_CHARSET_H
#define OMNI_EMAIL_CHARSET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decode len bytes declared as `charset` into a new NUL-terminated UTF-8 string (*out, length
 * *outlen, free() it). Never fails on content: invalid or unmappable sequences and NUL bytes
 * become U+FFFD and add to *replaced (may be NULL). How labels are treated:
 *  - shift_jis, sjis, x-sjis, ms_kanji, windows-31j, cp932 → CP932 (NEC and IBM extensions);
 *  - iso-2022-jp(-1/-2) → glibc's ISO-2022-JP-2 when the text is pure JIS; text it rejects (NEC
 *    row 13 such as ①, IBM rows 89-92, which Windows mailers send) is re-read through CP932, so
 *    such a message uses CP932's mapping throughout (〜 becomes U+FF5E, as its sender typed it);
 *  - euc-jp → EUC-JP, falling back to EUC-JP-MS; gb2312/gbk → GB18030; euc-kr and
 *    ks_c_5601-1987 → CP949; latin1 and us-ascii → windows-1252, then ISO-8859-1;
 *  - a 7-bit charset (us-ascii, iso-2022-jp) over 8-bit bytes is a mislabel: the bytes are read
 *    as UTF-8 if they are valid UTF-8, else sniffed as below;
 *  - NULL, empty, or a label iconv does not know: sniffed — ISO-2022-JP escapes, else valid
 *    UTF-8, else EUC-JP, else CP932 if either decodes cleanly, else windows-1252 with
 *    replacement (the documented fallback for unknown charsets).
 * Returns 0, OMNI_EINVAL (out or outlen NULL, or in NULL with len > 0) or OMNI_ENOMEM. */
int charset_to_utf8(const char *charset, const char *in, size_t len, char **out, size_t *outlen,
                    unsigned *replaced);

/* 1 if `charset` names a Japanese encoding we treat specially (for callers that pick a reply
 * charset: a customer who wrote ISO-2022-JP may want it back). */
int charset_is_japanese(const char *charset);

/* Growable byte buffer shared by the email modules. On allocation failure `oom` is set and
 * later appends are ignored, so callers check once at the end. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} charset_buf_t;

void charset_buf_put(charset_buf_t *b, const void *data, size_t n);
void charset_buf_putc(charset_buf_t *b, char c);
void charset_buf_put_cp(charset_buf_t *b, uint32_t cp); /* one code point as UTF-8 */
/* Append UTF-8 input with invalid sequences and NUL replaced by U+FFFD (counted). */
void charset_buf_put_utf8(charset_buf_t *b, const char *s, size_t n, unsigned *replaced);
/* NUL-terminate and hand the string over (NULL on oom; the buffer is reset either way). */
char *charset_buf_take(charset_buf_t *b, size_t *len);
void charset_buf_free(charset_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif
