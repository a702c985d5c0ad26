/* Unit tests of adapters/email/compose.c: every reply it writes is read back by our own MIME
 * parser (mail.c) with the same subject, names, text and threading, and obeys RFC 5322 line limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "compose.h"
#include "mail.h"

static mail_t *round_trip(const compose_t *c, char **raw)
{
    size_t len;
    cr_assert_eq(compose_message(c, raw, &len), 0);
    cr_assert_eq(strlen(*raw), len);
    /* Lines: CRLF only, headers <= 78, everything <= 998. */
    int in_headers = 1;
    for (const char *p = *raw; *p;) {
        const char *e = strstr(p, "\r\n");
        cr_assert_not_null(e, "every line ends in CRLF");
        size_t n = (size_t)(e - p);
        cr_assert_leq(n, in_headers ? 78 : 998, "line too long: %.*s", (int)n, p);
        cr_assert_null(memchr(p, '\n', n), "no bare LF");
        if (n == 0)
            in_headers = 0;
        p = e + 2;
    }
    mail_t *m = NULL;
    cr_assert_eq(mail_parse((const uint8_t *)*raw, len, NULL, &m), 0);
    return m;
}

Test(compose, a_japanese_reply_reads_back_the_same)
{
    const char *refs[] = {"a-1@example.jp", "a-2@example.jp"};
    static char subject[512], text[8192];
    snprintf(subject, sizeof(subject), "Re: %s", "パスワードがロックされた件について、ご連絡ありがとうございます（長い件名の折り返し）");
    snprintf(text, sizeof(text), "山田様\n\nお問い合わせありがとうございます。\n再設定のリンクをお送りしました。\n\n.\n..先頭のドット\n");
    compose_t c = {.from_addr = "support+cnv_42@example.com", .from_name = "サポート窓口 (Omni)",
                   .to_addr = "taro.yamada@example.jp", .subject = subject, .text = text,
                   .message_id = "out_1_7@example.com", .in_reply_to = "a-2@example.jp", .references = refs,
                   .n_references = 2, .date_ms = 1795453818808LL};
    char *raw;
    mail_t *m = round_trip(&c, &raw);
    cr_assert_str_eq(m->subject, subject);
    cr_assert_str_eq(m->from_name, "サポート窓口 (Omni)");
    cr_assert_str_eq(m->from_addr, "support+cnv_42@example.com");
    /* The parser drops trailing line ends; everything else comes back. */
    cr_assert_eq(strncmp(m->text, text, strlen(text) - 1), 0, "%s", m->text);
    cr_assert_eq(strlen(m->text), strlen(text) - 1);
    cr_assert_str_eq(m->message_id, "out_1_7@example.com");
    cr_assert_str_eq(m->in_reply_to, "a-2@example.jp");
    cr_assert_eq(m->n_references, 2, "in_reply_to already listed: not twice");
    cr_assert_eq(m->kind, MAIL_CUSTOMER);
    cr_assert(strstr(raw, "Date: Mon, 23 Nov 2026 "), "%s", raw);
    mail_free(&m);
    free(raw);
}

Test(compose, ascii_stays_readable_and_long_subjects_fold)
{
    static char subject[600];
    memset(subject, 0, sizeof(subject));
    for (int i = 0; i < 20; i++)
        strcat(subject, i ? " refund request" : "refund request");
    compose_t c = {.from_addr = "support@example.com", .to_addr = "a@example.net", .subject = subject,
                   .text = "Thanks.\nWe refunded the double charge.", .message_id = "x@example.com",
                   .in_reply_to = "y@example.net", .date_ms = 0, .auto_submitted = "auto-replied"};
    char *raw;
    mail_t *m = round_trip(&c, &raw);
    cr_assert(strstr(raw, "Content-Transfer-Encoding: 7bit"));
    cr_assert(strstr(raw, "References: <y@example.net>"), "the answered id starts the references");
    cr_assert_str_eq(m->text, "Thanks.\nWe refunded the double charge.");
    /* Our own notices say what they are, so a customer's auto-responder does not answer them. */
    cr_assert(strstr(raw, "Auto-Submitted: auto-replied\r\n"));
    cr_assert_neq(m->kind, MAIL_CUSTOMER);
    char folded[600];
    snprintf(folded, sizeof(folded), "%s", m->subject);
    cr_assert_str_eq(folded, subject, "unfolded back to the original");
    mail_free(&m);
    free(raw);
}

Test(compose, header_injection_and_bad_input_are_refused)
{
    char *raw = NULL;
    size_t len;
    compose_t c = {.from_addr = "support@example.com", .to_addr = "a@example.net", .subject = "ok",
                   .text = "ok", .message_id = "x@example.com"};
    cr_assert_eq(compose_message(&c, &raw, &len), 0);
    free(raw);
    compose_t bad = c;
    bad.subject = "hi\r\nBcc: everyone@example.com";
    cr_assert_eq(compose_message(&bad, &raw, &len), OMNI_EINVAL);
    bad = c;
    bad.to_addr = "a@example.net>\r\nBcc: x@y";
    cr_assert_eq(compose_message(&bad, &raw, &len), OMNI_EINVAL);
    bad = c;
    bad.text = "\xff\xfe";
    cr_assert_eq(compose_message(&bad, &raw, &len), OMNI_EINVAL);
    bad = c;
    bad.message_id = "";
    cr_assert_eq(compose_message(&bad, &raw, &len), OMNI_EINVAL);
    bad = c;
    bad.from_name = "Evil\nBcc: x@y";
    cr_assert_eq(compose_message(&bad, &raw, &len), OMNI_EINVAL);
}

Test(compose, every_cut_of_a_multibyte_name_decodes_whole)
{
    /* Names of every length around the word size: no encoded word may end mid-character. */
    char name[256];
    for (int n = 1; n < 40; n++) {
        name[0] = 0;
        for (int i = 0; i < n; i++)
            strcat(name, i % 3 ? "あ" : "a");
        compose_t c = {.from_addr = "s@example.com", .from_name = name, .to_addr = "a@example.net",
                       .subject = name, .text = name, .message_id = "x@example.com"};
        char *raw;
        mail_t *m = round_trip(&c, &raw);
        cr_assert_str_eq(m->from_name, name, "n=%d", n);
        cr_assert_str_eq(m->subject, name, "n=%d", n);
        cr_assert_eq(m->replaced, 0);
        mail_free(&m);
        free(raw);
    }
}
