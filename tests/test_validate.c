/* Unit tests of inbound message validation. Messages go through a real pack/unpack first, so
 * the in-place identity rewrite is checked against protobuf-c's own allocation (and valgrind). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <omni/omni.h>
#include <omni/v1/message.pb-c.h>

#include "config.h"
#include "validate.h"

#define R(name) OMNI__V1__REASON__REASON_##name
#define CH(name) OMNI__V1__CHANNEL__CHANNEL_##name

static config_t cfg;
static validate_result_t res;
static size_t linkable;

static void setup(void)
{
    cr_assert_eq(config_defaults(&cfg), 0);
    memset(&res, 0, sizeof(res));
    linkable = 999;
}

static void teardown(void)
{
    config_free(&cfg);
}

TestSuite(validate, .init = setup, .fini = teardown);

/* The message under construction: borrowed strings, packed and unpacked before validation. */
static Omni__V1__InboundMessage m;
static Omni__V1__ThreadRefs thread;
static char *also[64];
static char *refs[80], *tokens[80];
static Omni__V1__Attachment att[80], *attp[80];
static Omni__V1__InboundMessage__AttributesEntry attr[80], *attrp[80];

static void base(int channel)
{
    omni__v1__inbound_message__init(&m);
    omni__v1__thread_refs__init(&thread);
    m.adapter_id = "test-1";
    m.channel = channel;
    m.provider_message_id = "pm-1";
    m.text = "こんにちは";
    m.received_ms = 1700000000000;
    switch (channel) {
    case CH(CHAT): m.from = "chat:v_123"; break;
    case CH(EMAIL): m.from = "email:taro@example.jp"; m.subject = "件名"; break;
    case CH(SNS): m.from = "line:U0123456789abcdef0123456789abcdef"; m.provider = "line"; break;
    case CH(PHONE): m.from = "phone:+819012345678"; break;
    default: m.from = "chat:v_123"; break;
    }
}

static void set_also(size_t n, const char *const *ids)
{
    for (size_t i = 0; i < n; i++) also[i] = (char *)ids[i];
    m.also = also;
    m.n_also = n;
}

/* Packs m, unpacks it with the default allocator (as the broker does) and validates that. */
static Omni__V1__InboundMessage *run(int *rc)
{
    size_t len = omni__v1__inbound_message__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    Omni__V1__InboundMessage *u;

    cr_assert_not_null(buf);
    omni__v1__inbound_message__pack(&m, buf);
    u = omni__v1__inbound_message__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(u);
    uint64_t mask = 0;
    *rc = validate_inbound(u, &cfg, &mask, &res);
    linkable = (size_t)__builtin_popcountll(mask);
    return u;
}

static Omni__V1__InboundMessage *expect_ok(void)
{
    int rc;
    Omni__V1__InboundMessage *u = run(&rc);

    cr_assert_eq(rc, 0, "rejected: %s (%s)", validate_reason_name(res.reason), res.detail);
    cr_assert_eq(res.reason, R(NONE));
    cr_assert_str_empty(res.detail);
    return u;
}

/* Expects a rejection for `reason` whose detail mentions `needle`; the message is unchanged. */
static void expect_reject(int reason, const char *needle)
{
    int rc;
    Omni__V1__InboundMessage *u = run(&rc);

    cr_assert_eq(rc, OMNI_EINVAL, "accepted, wanted %s", validate_reason_name(reason));
    cr_assert_eq(res.reason, reason, "got %s (%s), wanted %s", validate_reason_name(res.reason),
                 res.detail, validate_reason_name(reason));
    if (needle) cr_assert_not_null(strstr(res.detail, needle), "'%s' not in '%s'", needle, res.detail);
    cr_assert_str_eq(u->from, m.from ? m.from : "");
    cr_assert_eq(u->n_also, m.n_also);
    omni__v1__inbound_message__free_unpacked(u, NULL);
}

static void done(Omni__V1__InboundMessage *u)
{
    omni__v1__inbound_message__free_unpacked(u, NULL);
}

/* A string of n copies of c, leaked into a static pool the test process drops at exit. */
static char *filled(size_t n, char c)
{
    static char *pool[16];
    static int next;
    char *s = malloc(n + 1);

    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = '\0';
    free(pool[next]);
    pool[next] = s;
    next = (next + 1) % 16;
    return s;
}

Test(validate, chat_is_normalized)
{
    static const char *const ids[] = {"email: Taro@Example.JP "};
    Omni__V1__InboundMessage *u;

    base(CH(CHAT));
    set_also(1, ids);
    u = expect_ok();
    cr_assert_str_eq(u->from, "chat:v_123");
    cr_assert_eq(u->n_also, 1);
    cr_assert_str_eq(u->also[0], "email:taro@example.jp");
    cr_assert_eq(linkable, 2);
    done(u);
}

Test(validate, email_is_normalized)
{
    Omni__V1__InboundMessage *u;
    static char *r[] = {"a@example.jp", "b@example.jp"};

    base(CH(EMAIL));
    m.from = "email: Taro@Example.JP ";
    thread.in_reply_to = "b@example.jp";
    thread.references = r;
    thread.n_references = 2;
    m.thread = &thread;
    u = expect_ok();
    cr_assert_str_eq(u->from, "email:taro@example.jp");
    cr_assert_eq(linkable, 1);
    cr_assert_str_eq(u->thread->references[1], "b@example.jp");
    done(u);
}

Test(validate, sns_providers)
{
    static const char *const providers[] = {"line", "messenger", "x"};
    static const char *const froms[] = {"line:U0123456789abcdef0123456789abcdef",
                                        "messenger:1234567890/998877", "x:1234567890123456789"};

    for (size_t i = 0; i < 3; i++) {
        Omni__V1__InboundMessage *u;
        base(CH(SNS));
        m.provider = (char *)providers[i];
        m.from = (char *)froms[i];
        u = expect_ok();
        cr_assert_str_eq(u->from, froms[i]);
        cr_assert_eq(linkable, 1);
        done(u);
    }
}

Test(validate, phone_is_normalized)
{
    Omni__V1__InboundMessage *u;

    base(CH(PHONE));
    m.from = "phone:090-1234-5678";
    m.text = "";
    u = expect_ok();
    cr_assert_str_eq(u->from, "phone:+819012345678");
    cr_assert_eq(linkable, 1);
    done(u);
}

Test(validate, default_region_comes_from_config)
{
    Omni__V1__InboundMessage *u;

    config_set_str(&cfg.default_region, "US");
    base(CH(PHONE));
    m.from = "phone:(201) 555-0123";
    u = expect_ok();
    cr_assert_str_eq(u->from, "phone:+12015550123");
    done(u);
}

Test(validate, unknown_channel)
{
    base(CH(CHAT));
    m.channel = CH(UNSPECIFIED);
    expect_reject(R(UNKNOWN_CHANNEL), "channel 0");
    m.channel = 5;
    expect_reject(R(UNKNOWN_CHANNEL), "channel 5");
    m.channel = -1;
    expect_reject(R(UNKNOWN_CHANNEL), NULL);
}

Test(validate, provider_message_id)
{
    Omni__V1__InboundMessage *u;

    base(CH(EMAIL));
    m.provider_message_id = "";
    expect_reject(R(MISSING_FIELD), "provider_message_id");
    m.provider_message_id = filled(513, 'm');
    expect_reject(R(TOO_LARGE), "provider_message_id");
    m.provider_message_id = filled(512, 'm');
    u = expect_ok();
    done(u);
}

Test(validate, from_is_required)
{
    base(CH(CHAT));
    m.from = "";
    expect_reject(R(MISSING_FIELD), "from");
}

Test(validate, sns_provider_rules)
{
    base(CH(SNS));
    m.provider = "";
    expect_reject(R(MISSING_FIELD), "provider");
    m.provider = "facebook";
    expect_reject(R(UNKNOWN_CHANNEL), "line, messenger or x");
    m.provider = "LINE";
    expect_reject(R(UNKNOWN_CHANNEL), "provider");
    base(CH(EMAIL));
    m.provider = "line";
    expect_reject(R(UNKNOWN_CHANNEL), "only allowed on sns");
}

Test(validate, too_many_identities)
{
    static const char *const ids[] = {"email:a@example.jp", "email:b@example.jp", "email:c@example.jp"};
    Omni__V1__InboundMessage *u;

    cfg.max_identities = 3;
    base(CH(CHAT));
    set_also(3, ids);
    expect_reject(R(TOO_MANY), "identities");
    set_also(2, ids);
    u = expect_ok();
    cr_assert_eq(u->n_also, 2);
    cr_assert_eq(linkable, 3);
    done(u);
}

Test(validate, many_identities_use_the_heap)
{
    static char bufs[40][32];
    const char *ids[40];
    Omni__V1__InboundMessage *u;

    cfg.max_identities = 64;
    for (int i = 0; i < 40; i++) {
        /* Every fourth one repeats an earlier address in another case. */
        snprintf(bufs[i], sizeof(bufs[i]), i % 4 == 3 ? "email:USER%d@EXAMPLE.JP" : "email:user%d@example.jp",
                 i % 4 == 3 ? i - 1 : i);
        ids[i] = bufs[i];
    }
    base(CH(CHAT));
    set_also(40, ids);
    u = expect_ok();
    cr_assert_eq(u->n_also, 30);
    cr_assert_eq(linkable, 31);
    cr_assert_str_eq(u->also[0], "email:user0@example.jp");
    cr_assert_str_eq(u->also[3], "email:user4@example.jp");
    done(u);
}

Test(validate, bad_identities)
{
    static const char *const ids[] = {"email:ok@example.jp", "fax:0312345678"};

    base(CH(CHAT));
    m.from = "nope:abc";
    expect_reject(R(BAD_IDENTITY), "from");
    m.from = "taro@example.jp";
    expect_reject(R(BAD_IDENTITY), "from");
    m.from = "email:not-an-address";
    expect_reject(R(BAD_IDENTITY), "from");
    m.from = "email: Taro@Example.JP";
    set_also(2, ids);
    expect_reject(R(BAD_IDENTITY), "also[1]");
    static const char *const empty[] = {""};
    set_also(1, empty);
    expect_reject(R(BAD_IDENTITY), "also[0]");
}

Test(validate, junk_identities_are_kept_but_not_linkable)
{
    static const char *const ids[] = {"email:NoReply@Example.com", "phone:0120-123-456", "email:hanako@example.jp"};
    Omni__V1__InboundMessage *u;

    base(CH(PHONE));
    m.from = "phone:anonymous";
    u = expect_ok();
    cr_assert_eq(linkable, 0);
    cr_assert_str_eq(u->from, "phone:anonymous");
    done(u);

    base(CH(EMAIL));
    set_also(3, ids);
    u = expect_ok();
    cr_assert_eq(u->n_also, 3);
    cr_assert_str_eq(u->also[0], "email:noreply@example.com");
    cr_assert_str_eq(u->also[1], "phone:+81120123456");
    cr_assert_eq(linkable, 2);
    done(u);
}

Test(validate, duplicates_are_removed)
{
    static const char *const ids[] = {"email: TARO@example.jp", "phone:090-1234-5678", "phone:+819012345678",
                                      "phone:09012345678", "email:taro@example.jp"};
    Omni__V1__InboundMessage *u;

    base(CH(EMAIL));
    set_also(5, ids);
    u = expect_ok();
    cr_assert_str_eq(u->from, "email:taro@example.jp");
    cr_assert_eq(u->n_also, 1);
    cr_assert_str_eq(u->also[0], "phone:+819012345678");
    cr_assert_eq(linkable, 2);

    /* What the broker stores must survive another round trip. */
    size_t len = omni__v1__inbound_message__get_packed_size(u);
    uint8_t *buf = malloc(len);
    omni__v1__inbound_message__pack(u, buf);
    Omni__V1__InboundMessage *v = omni__v1__inbound_message__unpack(NULL, len, buf);
    cr_assert_not_null(v);
    cr_assert_eq(v->n_also, 1);
    cr_assert_str_eq(v->also[0], "phone:+819012345678");
    done(v);
    free(buf);
    done(u);
}

Test(validate, text_size)
{
    Omni__V1__InboundMessage *u;

    cfg.max_text_bytes = 10;
    base(CH(CHAT));
    m.text = filled(11, 't');
    expect_reject(R(TOO_LARGE), "text");
    m.text = filled(10, 't');
    u = expect_ok();
    done(u);
}

Test(validate, field_sizes)
{
    enum { F_ADAPTER, F_ACCOUNT, F_NAME, F_SUBJECT, F_LOCALE, F_INREPLY, F_THREADID, F_REPLYTOKEN,
           F_REF, F_TOKEN, F_ATT_NAME, F_ATT_TYPE, F_ATT_CID, F_ATT_URL, F_KEY, F_VALUE, F_ALSO, F_N };
    static const char *const names[] = {"adapter_id", "channel_account", "display_name", "subject",
                                        "locale", "thread.in_reply_to", "thread.channel_thread_id",
                                        "thread.reply_token", "thread.references[0]",
                                        "thread.reply_tokens[0]", "attachments[0].name",
                                        "attachments[0].content_type", "attachments[0].content_id",
                                        "attachments[0].url", "attributes[0].key",
                                        "attributes[0].value", "also[0]"};
    Omni__V1__InboundMessage *u;

    cfg.max_field_bytes = 40;
    for (int f = 0; f < F_N; f++) {
        for (int big = 0; big < 2; big++) {
            char *s = filled(big ? 41 : 40, 'a');
            base(CH(EMAIL));
            omni__v1__attachment__init(&att[0]);
            omni__v1__inbound_message__attributes_entry__init(&attr[0]);
            attp[0] = &att[0];
            attrp[0] = &attr[0];
            m.thread = &thread;
            switch (f) {
            case F_ADAPTER: m.adapter_id = s; break;
            case F_ACCOUNT: m.channel_account = s; break;
            case F_NAME: m.display_name = s; break;
            case F_SUBJECT: m.subject = s; break;
            case F_LOCALE: m.locale = s; break;
            case F_INREPLY: thread.in_reply_to = s; break;
            case F_THREADID: thread.channel_thread_id = s; break;
            case F_REPLYTOKEN: thread.reply_token = s; break;
            case F_REF: refs[0] = s; thread.references = refs; thread.n_references = 1; break;
            case F_TOKEN: tokens[0] = s; thread.reply_tokens = tokens; thread.n_reply_tokens = 1; break;
            case F_ATT_NAME: att[0].name = s; break;
            case F_ATT_TYPE: att[0].content_type = s; break;
            case F_ATT_CID: att[0].content_id = s; break;
            case F_ATT_URL: att[0].url = s; break;
            case F_KEY: attr[0].key = s; break;
            case F_VALUE: attr[0].value = s; break;
            case F_ALSO:
                /* email:aaa...@b.jp at exactly the limit, then one byte over. */
                memcpy(s, "email:", 6);
                memcpy(s + strlen(s) - 5, "@b.jp", 5);
                also[0] = s;
                m.also = also;
                m.n_also = 1;
                break;
            }
            if (f >= F_ATT_NAME && f <= F_ATT_URL) {
                m.attachments = attp;
                m.n_attachments = 1;
            }
            if (f == F_KEY || f == F_VALUE) {
                m.attributes = attrp;
                m.n_attributes = 1;
            }
            if (big) {
                expect_reject(R(TOO_LARGE), names[f]);
            } else {
                u = expect_ok();
                done(u);
            }
        }
    }
}

Test(validate, too_many_items)
{
    static char keys[80][8];
    Omni__V1__InboundMessage *u;

    cfg.max_attachments = 3;
    cfg.max_refs = 4;
    for (int i = 0; i < 80; i++) {
        omni__v1__attachment__init(&att[i]);
        att[i].name = "a.png";
        attp[i] = &att[i];
        omni__v1__inbound_message__attributes_entry__init(&attr[i]);
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        attr[i].key = keys[i];
        attr[i].value = "v";
        attrp[i] = &attr[i];
        refs[i] = tokens[i] = "r@example.jp";
    }
    base(CH(EMAIL));
    m.attachments = attp;
    m.n_attachments = 4;
    expect_reject(R(TOO_MANY), "attachments");
    m.n_attachments = 3;
    m.thread = &thread;
    thread.references = refs;
    thread.reply_tokens = tokens;
    thread.n_references = 3;
    thread.n_reply_tokens = 2;
    expect_reject(R(TOO_MANY), "references");
    thread.n_reply_tokens = 1;
    m.attributes = attrp;
    m.n_attributes = 65;
    expect_reject(R(TOO_MANY), "attributes");
    m.n_attributes = 64;
    u = expect_ok();
    cr_assert_eq(u->n_attachments, 3);
    done(u);
}

Test(validate, bad_utf8)
{
    static const char *const bad[] = {
        "ok \xC0\xAF overlong slash",
        "\xE0\x80\xAF overlong three-byte",
        "surrogate \xED\xA0\x80 half",
        "truncated \xE3\x81",
        "truncated at end \xF0\x9F\x98",
        "beyond U+10FFFF \xF4\x90\x80\x80",
        "lone continuation \x80",
    };
    enum { F_TEXT, F_SUBJECT, F_NAME, F_ATT, F_N };
    static const char *const names[] = {"text", "subject", "display_name", "attachments[0].name"};

    for (int f = 0; f < F_N; f++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            base(CH(EMAIL));
            switch (f) {
            case F_TEXT: m.text = (char *)bad[i]; break;
            case F_SUBJECT: m.subject = (char *)bad[i]; break;
            case F_NAME: m.display_name = (char *)bad[i]; break;
            case F_ATT:
                omni__v1__attachment__init(&att[0]);
                att[0].name = (char *)bad[i];
                attp[0] = &att[0];
                m.attachments = attp;
                m.n_attachments = 1;
                break;
            }
            expect_reject(R(BAD_UTF8), names[f]);
        }
    }
    base(CH(CHAT));
    m.from = "chat:\xED\xBF\xBF";
    expect_reject(R(BAD_UTF8), "from");

    /* Four-byte characters, the maximum code point and U+FFFF are fine. */
    base(CH(EMAIL));
    m.text = "emoji \xF0\x9F\x98\x80 max \xF4\x8F\xBF\xBF bmp end \xEF\xBF\xBF";
    Omni__V1__InboundMessage *u = expect_ok();
    done(u);
}

Test(validate, reason_names)
{
    cr_assert_str_eq(validate_reason_name(R(MALFORMED)), "malformed");
    cr_assert_str_eq(validate_reason_name(R(TOO_LARGE)), "too_large");
    cr_assert_str_eq(validate_reason_name(R(MISSING_FIELD)), "missing_field");
    cr_assert_str_eq(validate_reason_name(R(BAD_UTF8)), "bad_utf8");
    cr_assert_str_eq(validate_reason_name(R(UNKNOWN_CHANNEL)), "unknown_channel");
    cr_assert_str_eq(validate_reason_name(R(BAD_IDENTITY)), "bad_identity");
    cr_assert_str_eq(validate_reason_name(R(TOO_MANY)), "too_many");
    cr_assert_str_eq(validate_reason_name(R(UNAVAILABLE)), "unavailable");
    cr_assert_str_eq(validate_reason_name(R(INTERNAL)), "internal");
    cr_assert_str_eq(validate_reason_name(R(NONE)), "none");
    cr_assert_str_eq(validate_reason_name(42), "unknown");
    cr_assert_str_eq(validate_reason_name(-1), "unknown");
}

Test(validate, n_linkable_may_be_null)
{
    Omni__V1__InboundMessage *u;
    int rc;

    base(CH(CHAT));
    u = run(&rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(validate_inbound(u, &cfg, NULL, &res), 0);
    done(u);
}
