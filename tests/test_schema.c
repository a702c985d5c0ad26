/* The wire schema (proto/omni/v1) through protobuf-c, no processes: every message type round
 * trips with every field set, unknown fields survive a decode/encode (old peers keep working),
 * an old reader skips an event kind it does not know, and damaged buffers never crash the
 * decoder. Equality is checked by walking the descriptors, so a field added to a .proto is
 * covered (and must be filled in below: all_set() insists on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <omni/v1/agent.pb-c.h>
#include <omni/v1/control.pb-c.h>
#include <omni/v1/message.pb-c.h>
#include <omni/v1/stream.pb-c.h>

/* ---- descriptor walking -------------------------------------------------------------- */

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Whether field f is present in m; *count gets the number of elements (1 for a singular one). */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t *count)
{
    const char *base = (const char *)m;
    *count = 1;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        *count = *(const size_t *)(base + f->quantifier_offset);
        return *count > 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    return 1;
}

static const void *field_elems(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *p = (const char *)m + f->offset;
    return f->label == PROTOBUF_C_LABEL_REPEATED ? *(const void *const *)p : (const void *)p;
}

static int pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t whylen);

static int elem_equal(const ProtobufCFieldDescriptor *f, const void *x, const void *y, char *why, size_t whylen)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)x, *t = *(const char *const *)y;
        if (!s || !t)
            return s == t || (!s && !*t) || (!t && !*s);
        return strcmp(s, t) == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = x, *t = y;
        return s->len == t->len && (s->len == 0 || memcmp(s->data, t->data, s->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(const ProtobufCMessage *const *)x, *t = *(const ProtobufCMessage *const *)y;
        if (!s || !t)
            return s == t;
        return pb_equal(s, t, why, whylen);
    }
    default:
        return memcmp(x, y, elem_size(f->type)) == 0;
    }
}

/* Deep equality of two messages of one type, unknown fields included. On a difference, why
 * names the first field that differs ("inbound.thread.references"). */
static int pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t whylen)
{
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d != b->descriptor) {
        snprintf(why, whylen, "descriptor %s vs %s", d->name, b->descriptor->name);
        return 0;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t na, nb;
        int pa = field_present(a, f, &na), pb = field_present(b, f, &nb);
        if (pa != pb || na != nb) {
            snprintf(why, whylen, "%s.%s: presence/count %d/%zu vs %d/%zu", d->short_name, f->name, pa, na, pb, nb);
            return 0;
        }
        if (!pa)
            continue;
        const char *xa = field_elems(a, f), *xb = field_elems(b, f);
        size_t sz = elem_size(f->type);
        for (size_t k = 0; k < na; k++) {
            char sub[256] = "";
            if (!elem_equal(f, xa + k * sz, xb + k * sz, sub, sizeof(sub))) {
                snprintf(why, whylen, "%s.%s[%zu]%s%s", d->short_name, f->name, k, *sub ? " > " : "", sub);
                return 0;
            }
        }
    }
    if (a->n_unknown_fields != b->n_unknown_fields) {
        snprintf(why, whylen, "%s: %u vs %u unknown fields", d->short_name, a->n_unknown_fields, b->n_unknown_fields);
        return 0;
    }
    for (unsigned i = 0; i < a->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &a->unknown_fields[i], *v = &b->unknown_fields[i];
        if (u->tag != v->tag || u->wire_type != v->wire_type || u->len != v->len || memcmp(u->data, v->data, u->len)) {
            snprintf(why, whylen, "%s: unknown field %u differs", d->short_name, u->tag);
            return 0;
        }
    }
    return 1;
}

/* Every field of m (and of its sub-messages) holds a non-default value, except the oneof
 * members that are not the chosen one. Writes the first unset field into why. */
static int all_set(const ProtobufCMessage *m, char *why, size_t whylen)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n;
        int present = field_present(m, f, &n);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (!present)
                continue;
        } else if (!present) {
            snprintf(why, whylen, "%s.%s is empty", d->short_name, f->name);
            return 0;
        }
        const char *x = field_elems(m, f);
        for (size_t k = 0; k < n; k++) {
            const void *e = x + k * elem_size(f->type);
            int set;
            switch (f->type) {
            case PROTOBUF_C_TYPE_STRING: set = *(const char *const *)e && **(const char *const *)e; break;
            case PROTOBUF_C_TYPE_BYTES: set = ((const ProtobufCBinaryData *)e)->len > 0; break;
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *s = *(const ProtobufCMessage *const *)e;
                if (!s) {
                    set = 0;
                    break;
                }
                if (!all_set(s, why, whylen))
                    return 0;
                set = 1;
                break;
            }
            default: {
                static const uint8_t zero[8];
                set = memcmp(e, zero, elem_size(f->type)) != 0;
            }
            }
            if (!set) {
                snprintf(why, whylen, "%s.%s[%zu] holds the default value", d->short_name, f->name, k);
                return 0;
            }
        }
    }
    return 1;
}

/* Pack m, unpack it, and check: deep-equal, and re-packing gives the same bytes. Returns the
 * unpacked copy (free with protobuf_c_message_free_unpacked). */
static ProtobufCMessage *roundtrip(const ProtobufCMessage *m)
{
    char why[512] = "";
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    cr_assert_eq(protobuf_c_message_pack(m, buf), len, "%s: pack size", m->descriptor->name);
    ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    cr_assert_not_null(u, "%s: unpack of a freshly packed message failed", m->descriptor->name);
    cr_assert(pb_equal(m, u, why, sizeof(why)), "%s round trip: %s", m->descriptor->name, why);
    size_t len2 = protobuf_c_message_get_packed_size(u);
    cr_assert_eq(len2, len, "%s: re-packed size %zu vs %zu", m->descriptor->name, len2, len);
    uint8_t *buf2 = malloc(len2 + 1);
    protobuf_c_message_pack(u, buf2);
    cr_assert(memcmp(buf, buf2, len) == 0, "%s: re-packed bytes differ", m->descriptor->name);
    free(buf);
    free(buf2);
    return u;
}

/* ---- full messages ------------------------------------------------------------------- */
/* Static storage: each Criterion test runs in its own process, and the builders return
 * pointers into it. Values are chosen to exercise encodings: multi-byte UTF-8, 64-bit
 * extremes, negative int64, enum values past 0. */

static Omni__V1__ThreadRefs *full_thread(void)
{
    static Omni__V1__ThreadRefs t = OMNI__V1__THREAD_REFS__INIT;
    static char *refs[] = {"a1@mail.example.jp", "a2@mail.example.jp", "a3@mail.example.jp"};
    static char *tokens[] = {"c_42", "c_43"};
    t.in_reply_to = "a3@mail.example.jp";
    t.references = refs;
    t.n_references = 3;
    t.reply_tokens = tokens;
    t.n_reply_tokens = 2;
    t.channel_thread_id = "Cgroup-0001";
    t.reply_token = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA";
    return &t;
}

static Omni__V1__InboundMessage *full_inbound(void)
{
    static Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    static Omni__V1__Attachment a1 = OMNI__V1__ATTACHMENT__INIT, a2 = OMNI__V1__ATTACHMENT__INIT;
    static Omni__V1__Attachment *atts[2];
    static Omni__V1__InboundMessage__AttributesEntry e1 = OMNI__V1__INBOUND_MESSAGE__ATTRIBUTES_ENTRY__INIT,
                                                     e2 = OMNI__V1__INBOUND_MESSAGE__ATTRIBUTES_ENTRY__INIT;
    static Omni__V1__InboundMessage__AttributesEntry *attrs[2];
    static char *also[] = {"phone:+819012345678", "chat:visitor-7f3a"};

    a1.name = "スクリーンショット.png";
    a1.content_type = "image/png";
    a1.size = 5ULL * 1024 * 1024 * 1024; /* above 32 bits */
    a1.content_id = "img1@mail.example.jp";
    a1.url = "s3://omni-attachments/2024/05/img1.png";
    a1.inline_ = 1;
    a2 = a1;
    a2.name = "請求書.pdf";
    a2.content_type = "application/pdf";
    a2.size = 1;
    atts[0] = &a1;
    atts[1] = &a2;
    e1.key = "category";
    e1.value = "billing";
    e2.key = "to";
    e2.value = "support@example.com";
    attrs[0] = &e1;
    attrs[1] = &e2;

    m.adapter_id = "email-1";
    m.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    m.channel_account = "support@example.com";
    m.provider = "line";
    m.provider_message_id = "<a4@mail.example.jp>";
    m.from = "email:taro.yamada@example.jp";
    m.also = also;
    m.n_also = 2;
    m.display_name = "山田 太郎";
    m.text = "ログインできません。\nアカウントがロックされました。🙏";
    m.subject = "アカウントロック";
    m.thread = full_thread();
    m.attachments = atts;
    m.n_attachments = 2;
    m.received_ms = 1714521600123LL;
    m.locale = "ja-JP";
    m.is_public = 1;
    m.attributes = attrs;
    m.n_attributes = 2;
    return &m;
}

static Omni__V1__Ack *full_ack(void)
{
    static Omni__V1__Ack a = OMNI__V1__ACK__INIT;
    a.request_id = UINT64_MAX;
    a.accepted = 1;
    a.duplicate = 1;
    a.customer_id = "cu_01HX7";
    a.conversation_id = "cv_01HX8";
    a.seq = (1ULL << 40) + 7;
    a.reason = OMNI__V1__REASON__REASON_INTERNAL;
    a.retryable = 1;
    a.detail = "Redis is loading";
    return &a;
}

static Omni__V1__OutboundMessage *full_outbound(void)
{
    static Omni__V1__OutboundMessage o = OMNI__V1__OUTBOUND_MESSAGE__INIT;
    static Omni__V1__OutboundMessage__AttributesEntry e = OMNI__V1__OUTBOUND_MESSAGE__ATTRIBUTES_ENTRY__INIT;
    static Omni__V1__OutboundMessage__AttributesEntry *attrs[1];
    e.key = "cc";
    e.value = "billing@example.com";
    attrs[0] = &e;
    o.outbound_id = "ob_1";
    o.channel = OMNI__V1__CHANNEL__CHANNEL_SNS;
    o.channel_account = "1650000000";
    o.provider = "line";
    o.conversation_id = "cv_9";
    o.customer_id = "cu_9";
    o.to = "line:U4af4980629aaaaaaaaaaaaaaaaaaaaaa";
    o.text = "お問い合わせありがとうございます。";
    o.subject = "Re: アカウントロック";
    o.thread = full_thread();
    o.agent_id = "agent-7";
    o.attributes = attrs;
    o.n_attributes = 1;
    return &o;
}

static Omni__V1__OutboundResult *full_result(void)
{
    static Omni__V1__OutboundResult r = OMNI__V1__OUTBOUND_RESULT__INIT;
    r.outbound_id = "ob_1";
    r.delivered = 1;
    r.permanent = 1;
    r.provider_message_id = "<r1@omni.example.com>";
    r.error = "550 mailbox unavailable";
    return &r;
}

static Omni__V1__Hello *full_hello(void)
{
    static Omni__V1__Hello h = OMNI__V1__HELLO__INIT;
    static char *accounts[] = {"support@example.com", "sales@example.com"};
    h.adapter_id = "email-1";
    h.channel = OMNI__V1__CHANNEL__CHANNEL_PHONE;
    h.accounts = accounts;
    h.n_accounts = 2;
    h.sdk_version = "0.1.0";
    h.heartbeat_ms = 2000;
    h.outbox = 12345;
    return &h;
}

static Omni__V1__Heartbeat *full_heartbeat(void)
{
    static Omni__V1__Heartbeat h = OMNI__V1__HEARTBEAT__INIT;
    h.broker_version = "0.1.0";
    h.last_seq = 99;
    h.started_ms = -1; /* negative int64: ten-byte varint */
    return &h;
}

static Omni__V1__StreamEvent *event_base(Omni__V1__StreamEvent *ev, uint64_t seq)
{
    omni__v1__stream_event__init(ev);
    ev->seq = seq;
    ev->time_ms = 1714521600999LL;
    ev->tenant = "default";
    ev->customer_id = "cu_1";
    ev->conversation_id = "cv_1";
    ev->channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    return ev;
}

/* The routing event kinds (issue 3), each with every field set. */
static void full_routing_kind(Omni__V1__StreamEvent *ev)
{
    static Omni__V1__Queued q = OMNI__V1__QUEUED__INIT;
    static Omni__V1__Offered o = OMNI__V1__OFFERED__INIT;
    static Omni__V1__Assigned a = OMNI__V1__ASSIGNED__INIT;
    static Omni__V1__AgentMessage m = OMNI__V1__AGENT_MESSAGE__INIT;
    static Omni__V1__Transferred t = OMNI__V1__TRANSFERRED__INIT;
    static Omni__V1__Closed c = OMNI__V1__CLOSED__INIT;
    static Omni__V1__OfferEnded e = OMNI__V1__OFFER_ENDED__INIT;
    q.queue = "billing";
    q.category = "請求";
    q.rule = "billing";
    q.priority_ms = -600000; /* a negative offset: ten-byte varint */
    q.enqueued_ms = 1714521600000LL;
    q.provider = "line";
    q.reply_to = "line:U4af4980629aaaaaaaaaaaaaaaaaaaaaa";
    q.subject = "請求金額が違います";
    q.trigger_message_id = "<a1@mail.example.jp>";
    q.channel_account = "support@example.com";
    q.preferred_agent = "agent-7";
    q.requeued = 1;
    q.reason = "agent_offline";
    q.preview = "先月の請求金額が";
    o.agent_id = "agent-7";
    o.offer_id = UINT64_MAX;
    o.queue = "billing";
    o.strategy = "longest_idle";
    o.step = 2;
    o.pool_size = 17;
    o.score = 1234567;
    o.timeout_ms = 20000;
    a.agent_id = "agent-7";
    a.offer_id = 1ULL << 33;
    a.queue = "billing";
    a.strategy = "sticky";
    a.step = 3;
    a.pool_size = 1;
    a.score = -5;
    a.wait_ms = 45000;
    a.restored = 1;
    m.agent_id = "agent-7";
    m.text = "ご連絡ありがとうございます。\n確認いたします。";
    m.subject = "Re: 請求金額が違います";
    m.outbound_id = "ob_17";
    m.to = "email:taro.yamada@example.jp";
    m.auto_reply = 1;
    t.from_agent = "agent-7";
    t.from_queue = "billing";
    t.to_queue = "retention";
    t.to_agent = "agent-9";
    t.reason = "overflow";
    c.agent_id = "agent-9";
    c.disposition = "解決済み";
    c.queue = "retention";
    e.agent_id = "agent-3";
    e.offer_id = 99;
    e.reason = "timeout";
    switch (ev->kind_case) {
    case OMNI__V1__STREAM_EVENT__KIND_QUEUED: ev->queued = &q; break;
    case OMNI__V1__STREAM_EVENT__KIND_OFFERED: ev->offered = &o; break;
    case OMNI__V1__STREAM_EVENT__KIND_ASSIGNED: ev->assigned = &a; break;
    case OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE: ev->agent_message = &m; break;
    case OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED: ev->transferred = &t; break;
    case OMNI__V1__STREAM_EVENT__KIND_CLOSED: ev->closed = &c; break;
    case OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED: ev->offer_ended = &e; break;
    default: break;
    }
}

/* One event per kind, each in its own storage: a message may hold several of them. */
static Omni__V1__StreamEvent *full_event(Omni__V1__StreamEvent__KindCase kind)
{
    static Omni__V1__StreamEvent evs[40];
    static Omni__V1__MessageEvent me = OMNI__V1__MESSAGE_EVENT__INIT;
    static Omni__V1__CustomerMerged cm = OMNI__V1__CUSTOMER_MERGED__INIT;
    static Omni__V1__ConversationOpened co = OMNI__V1__CONVERSATION_OPENED__INIT;
    static char *ids[] = {"email:hanako@example.jp", "phone:+819087654321"};
    static char *convs[] = {"cv_5", "cv_6", "cv_7"};
    cr_assert_lt((size_t)kind, sizeof(evs) / sizeof(evs[0]));
    Omni__V1__StreamEvent *ev = event_base(&evs[kind], 1000000007ULL);
    ev->kind_case = kind;
    switch (kind) {
    case OMNI__V1__STREAM_EVENT__KIND_MESSAGE:
        me.inbound = full_inbound();
        ev->message = &me;
        break;
    case OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED:
        cm.survivor_id = "cu_1";
        cm.merged_id = "cu_2";
        cm.identities = ids;
        cm.n_identities = 2;
        cm.conversation_ids = convs;
        cm.n_conversation_ids = 3;
        ev->customer_merged = &cm;
        break;
    case OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED:
        co.channel_account = "support@example.com";
        co.trigger_message_id = "<a1@mail.example.jp>";
        ev->conversation_opened = &co;
        break;
    default:
        full_routing_kind(ev);
        break;
    }
    return ev;
}

/* ---- round trips ------------------------------------------------------------------------ */

TestSuite(schema, .timeout = 60);

Test(schema, comparator_sees_differences)
{
    /* The checks below are only as good as pb_equal: make sure it can say "different". */
    char why[512];
    Omni__V1__InboundMessage a = *full_inbound(), b = *full_inbound();
    cr_assert(pb_equal(&a.base, &b.base, why, sizeof(why)), "%s", why);
    b.text = "other";
    cr_assert_not(pb_equal(&a.base, &b.base, why, sizeof(why)));
    cr_assert(strstr(why, "text"), "%s", why);
    b = a;
    Omni__V1__ThreadRefs t = *a.thread;
    static char *refs[] = {"a1@mail.example.jp", "a2@mail.example.jp", "zz@mail.example.jp"};
    t.references = refs;
    b.thread = &t;
    cr_assert_not(pb_equal(&a.base, &b.base, why, sizeof(why)));
    cr_assert(strstr(why, "references[2]"), "%s", why);
    b = a;
    b.received_ms++;
    cr_assert_not(pb_equal(&a.base, &b.base, why, sizeof(why)));
    b = a;
    b.n_attachments = 1;
    cr_assert_not(pb_equal(&a.base, &b.base, why, sizeof(why)));
    b = a;
    b.is_public = 0;
    cr_assert_not(pb_equal(&a.base, &b.base, why, sizeof(why)));
    cr_assert_not(all_set(&b.base, why, sizeof(why)), "all_set must notice a false bool");
}

Test(schema, envelope_with_every_body_round_trips)
{
    char why[512];
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.request_id = 0x8000000000000001ULL;
    struct {
        Omni__V1__Envelope__BodyCase c;
        ProtobufCMessage *body;
    } bodies[] = {
        {OMNI__V1__ENVELOPE__BODY_INBOUND, &full_inbound()->base},
        {OMNI__V1__ENVELOPE__BODY_ACK, &full_ack()->base},
        {OMNI__V1__ENVELOPE__BODY_HELLO, &full_hello()->base},
        {OMNI__V1__ENVELOPE__BODY_HEARTBEAT, &full_heartbeat()->base},
        {OMNI__V1__ENVELOPE__BODY_OUTBOUND, &full_outbound()->base},
        {OMNI__V1__ENVELOPE__BODY_OUTBOUND_RESULT, &full_result()->base},
    };
    cr_assert_eq(sizeof(bodies) / sizeof(bodies[0]), omni__v1__envelope__descriptor.n_fields - 1,
                 "a new Envelope body needs a case here");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        env.body_case = bodies[i].c;
        env.inbound = (Omni__V1__InboundMessage *)bodies[i].body; /* the union: any member */
        cr_assert(all_set(&env.base, why, sizeof(why)), "test data incomplete: %s", why);
        Omni__V1__Envelope *u = (Omni__V1__Envelope *)roundtrip(&env.base);
        cr_assert_eq(u->body_case, bodies[i].c);
        cr_assert_eq(u->request_id, env.request_id);
        omni__v1__envelope__free_unpacked(u, NULL);
    }

    /* Spot checks straight on the decoded struct, independent of pb_equal. */
    env.body_case = OMNI__V1__ENVELOPE__BODY_INBOUND;
    env.inbound = full_inbound();
    Omni__V1__Envelope *u = (Omni__V1__Envelope *)roundtrip(&env.base);
    const Omni__V1__InboundMessage *in = u->inbound;
    cr_assert_str_eq(in->text, "ログインできません。\nアカウントがロックされました。🙏");
    cr_assert_eq(in->n_attachments, 2);
    cr_assert_str_eq(in->attachments[1]->name, "請求書.pdf");
    cr_assert_eq(in->attachments[0]->size, 5ULL * 1024 * 1024 * 1024);
    cr_assert(in->attachments[0]->inline_);
    cr_assert_eq(in->thread->n_references, 3);
    cr_assert_str_eq(in->thread->references[0], "a1@mail.example.jp", "references keep header order");
    cr_assert_str_eq(in->thread->reply_tokens[1], "c_43");
    cr_assert_eq(in->n_attributes, 2);
    cr_assert_str_eq(in->attributes[1]->key, "to");
    cr_assert_str_eq(in->attributes[1]->value, "support@example.com");
    cr_assert_eq(in->received_ms, 1714521600123LL);
    omni__v1__envelope__free_unpacked(u, NULL);
}

Test(schema, empty_messages_round_trip)
{
    /* Defaults everywhere: zero bytes on the wire, and back to defaults. */
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    cr_assert_eq(omni__v1__envelope__get_packed_size(&env), 0);
    Omni__V1__Envelope *u = omni__v1__envelope__unpack(NULL, 0, (const uint8_t *)"");
    cr_assert_not_null(u);
    cr_assert_eq(u->body_case, OMNI__V1__ENVELOPE__BODY__NOT_SET);
    cr_assert_eq(u->request_id, 0);
    omni__v1__envelope__free_unpacked(u, NULL);
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    Omni__V1__InboundMessage *v = (Omni__V1__InboundMessage *)roundtrip(&m.base);
    cr_assert_str_eq(v->from, "");
    cr_assert_null(v->thread);
    omni__v1__inbound_message__free_unpacked(v, NULL);
}

Test(schema, stream_event_of_each_kind_round_trips)
{
    char why[512];
    Omni__V1__StreamEvent__KindCase kinds[] = {
        OMNI__V1__STREAM_EVENT__KIND_MESSAGE,
        OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED,
        OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED,
        OMNI__V1__STREAM_EVENT__KIND_QUEUED,
        OMNI__V1__STREAM_EVENT__KIND_OFFERED,
        OMNI__V1__STREAM_EVENT__KIND_ASSIGNED,
        OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE,
        OMNI__V1__STREAM_EVENT__KIND_TRANSFERRED,
        OMNI__V1__STREAM_EVENT__KIND_CLOSED,
        OMNI__V1__STREAM_EVENT__KIND_OFFER_ENDED,
    };
    cr_assert_eq(sizeof(kinds) / sizeof(kinds[0]), omni__v1__stream_event__descriptor.n_fields - 6,
                 "a new StreamEvent kind needs a case here");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        Omni__V1__StreamEvent *ev = full_event(kinds[i]);
        cr_assert(all_set(&ev->base, why, sizeof(why)), "test data incomplete: %s", why);
        Omni__V1__StreamEvent *u = (Omni__V1__StreamEvent *)roundtrip(&ev->base);
        cr_assert_eq(u->kind_case, kinds[i]);
        cr_assert_eq(u->seq, 1000000007ULL);
        if (kinds[i] == OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED) {
            cr_assert_str_eq(u->customer_merged->merged_id, "cu_2");
            cr_assert_eq(u->customer_merged->n_conversation_ids, 3);
        }
        if (kinds[i] == OMNI__V1__STREAM_EVENT__KIND_QUEUED)
            cr_assert_eq(u->queued->priority_ms, -600000);
        if (kinds[i] == OMNI__V1__STREAM_EVENT__KIND_OFFERED)
            cr_assert_eq(u->offered->offer_id, UINT64_MAX);
        omni__v1__stream_event__free_unpacked(u, NULL);
    }
    /* An event without a kind (a future kind seen by an old writer) stays kindless. */
    Omni__V1__StreamEvent *ev = full_event(OMNI__V1__STREAM_EVENT__KIND__NOT_SET);
    Omni__V1__StreamEvent *u = (Omni__V1__StreamEvent *)roundtrip(&ev->base);
    cr_assert_eq(u->kind_case, OMNI__V1__STREAM_EVENT__KIND__NOT_SET);
    omni__v1__stream_event__free_unpacked(u, NULL);
}

Test(schema, routing_record_round_trips)
{
    /* Not on the wire but in Redis: a restarted broker must read back what it wrote. */
    char why[512];
    Omni__V1__StreamEvent *ev = full_event(OMNI__V1__STREAM_EVENT__KIND_QUEUED);
    Omni__V1__RoutingRecord r = OMNI__V1__ROUTING_RECORD__INIT;
    r.conversation_id = "cv_1";
    r.customer_id = "cu_1";
    r.channel = OMNI__V1__CHANNEL__CHANNEL_PHONE;
    r.queued = ev->queued;
    r.agent_id = "agent-7";
    r.assigned_ms = 1714521600500LL;
    cr_assert(all_set(&r.base, why, sizeof(why)), "test data incomplete: %s", why);
    Omni__V1__RoutingRecord *u = (Omni__V1__RoutingRecord *)roundtrip(&r.base);
    cr_assert_str_eq(u->queued->preview, "先月の請求金額が");
    cr_assert_eq(u->assigned_ms, 1714521600500LL);
    omni__v1__routing_record__free_unpacked(u, NULL);
}

Test(schema, control_requests_round_trip)
{
    char why[512];
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__StatusRequest st = OMNI__V1__STATUS_REQUEST__INIT;
    Omni__V1__CustomerRequest cu = OMNI__V1__CUSTOMER_REQUEST__INIT;
    Omni__V1__TailRequest tr = OMNI__V1__TAIL_REQUEST__INIT;
    Omni__V1__QueuesRequest qr = OMNI__V1__QUEUES_REQUEST__INIT;
    Omni__V1__AgentsRequest ar = OMNI__V1__AGENTS_REQUEST__INIT;
    cu.identity = "phone:090-1111-2222";
    tr.from_seq = 3;
    tr.last = 10;
    tr.limit = 1000;
    req.id = 42;
    struct {
        Omni__V1__ControlRequest__BodyCase c;
        void *body;
    } bodies[] = {
        {OMNI__V1__CONTROL_REQUEST__BODY_STATUS, &st},
        {OMNI__V1__CONTROL_REQUEST__BODY_SEND, full_inbound()},
        {OMNI__V1__CONTROL_REQUEST__BODY_CUSTOMER, &cu},
        {OMNI__V1__CONTROL_REQUEST__BODY_TAIL, &tr},
        {OMNI__V1__CONTROL_REQUEST__BODY_QUEUES, &qr},
        {OMNI__V1__CONTROL_REQUEST__BODY_AGENTS, &ar},
    };
    cr_assert_eq(sizeof(bodies) / sizeof(bodies[0]), omni__v1__control_request__descriptor.n_fields - 1);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        req.body_case = bodies[i].c;
        req.status = bodies[i].body;
        cr_assert(all_set(&req.base, why, sizeof(why)), "test data incomplete: %s", why);
        Omni__V1__ControlRequest *u = (Omni__V1__ControlRequest *)roundtrip(&req.base);
        cr_assert_eq(u->body_case, bodies[i].c);
        cr_assert_eq(u->id, 42);
        omni__v1__control_request__free_unpacked(u, NULL);
    }
}

static Omni__V1__SkillLevel **full_skills(size_t *n)
{
    static Omni__V1__SkillLevel s1 = OMNI__V1__SKILL_LEVEL__INIT, s2 = OMNI__V1__SKILL_LEVEL__INIT;
    static Omni__V1__SkillLevel *ss[] = {&s1, &s2};
    s1.name = "billing";
    s1.level = 3;
    s2.name = "lang:ja";
    s2.level = 5;
    *n = 2;
    return ss;
}

static Omni__V1__ChannelSlots **full_slots(size_t *n)
{
    static Omni__V1__ChannelSlots c1 = OMNI__V1__CHANNEL_SLOTS__INIT, c2 = OMNI__V1__CHANNEL_SLOTS__INIT;
    static Omni__V1__ChannelSlots *cs[] = {&c1, &c2};
    c1.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    c1.slots = 3;
    c2.channel = OMNI__V1__CHANNEL__CHANNEL_PHONE;
    c2.slots = 1;
    *n = 2;
    return cs;
}

static Omni__V1__QueuesReply *full_queues(void)
{
    static Omni__V1__QueueStatus q = OMNI__V1__QUEUE_STATUS__INIT;
    static Omni__V1__QueueStatus *qs[] = {&q};
    static Omni__V1__QueuesReply r = OMNI__V1__QUEUES_REPLY__INIT;
    q.name = "billing";
    q.waiting = 4;
    q.oldest_wait_ms = 93000;
    q.ewt_ms = 120000;
    q.sla_target_ms = 60000;
    q.sla_met_pct = 87.5;
    q.answered = 1ULL << 40;
    q.offered = (1ULL << 40) + 3;
    q.staffed = 6;
    q.open = 1;
    r.queues = qs;
    r.n_queues = 1;
    return &r;
}

static Omni__V1__AgentsReply *full_agents(void)
{
    static Omni__V1__AgentInfo a = OMNI__V1__AGENT_INFO__INIT;
    static Omni__V1__AgentInfo *as[] = {&a};
    static Omni__V1__AgentsReply r = OMNI__V1__AGENTS_REPLY__INIT;
    static char *convs[] = {"cv_1", "cv_2"};
    a.id = "agent-7";
    a.state = "wrap_up";
    a.skills = full_skills(&a.n_skills);
    a.capacity = full_slots(&a.n_capacity);
    a.load = full_slots(&a.n_load);
    a.assigned = 321;
    a.conversations = convs;
    a.n_conversations = 2;
    r.agents = as;
    r.n_agents = 1;
    return &r;
}

Test(schema, control_replies_round_trip)
{
    char why[512];
    static char *accounts[] = {"support@example.com"};
    Omni__V1__AdapterInfo ai = OMNI__V1__ADAPTER_INFO__INIT;
    ai.adapter_id = "email-1";
    ai.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    ai.accounts = accounts;
    ai.n_accounts = 1;
    ai.last_seen_ms = 1714521600000LL;
    ai.outbox = 3;
    Omni__V1__AdapterInfo *ais[] = {&ai, &ai};
    Omni__V1__Counter c1 = OMNI__V1__COUNTER__INIT, c2 = OMNI__V1__COUNTER__INIT;
    c1.name = "messages_accepted";
    c1.value = 12;
    c2.name = "auth_refused";
    c2.value = UINT64_MAX;
    Omni__V1__Counter *cs[] = {&c1, &c2};
    Omni__V1__StatusReply st = OMNI__V1__STATUS_REPLY__INIT;
    st.version = "0.1.0";
    st.uptime_s = 86400 * 3;
    st.redis = "ok";
    st.adapters = ais;
    st.n_adapters = 2;
    st.counters = cs;
    st.n_counters = 2;
    st.last_seq = 30;
    st.stream_endpoint = "tcp://127.0.0.1:5562";

    static char *idents[] = {"email:taro@example.jp", "phone:+819011112222"};
    Omni__V1__ConversationInfo cv = OMNI__V1__CONVERSATION_INFO__INIT;
    cv.conversation_id = "cv_1";
    cv.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    cv.state = "open";
    cv.opened_ms = 1714521600000LL;
    Omni__V1__ConversationInfo *cvs[] = {&cv};
    Omni__V1__CustomerReply cu = OMNI__V1__CUSTOMER_REPLY__INIT;
    cu.found = 1;
    cu.customer_id = "cu_1";
    cu.identities = idents;
    cu.n_identities = 2;
    cu.conversations = cvs;
    cu.n_conversations = 1;

    Omni__V1__StreamEvent e1, e2, e3;
    Omni__V1__MessageEvent me = OMNI__V1__MESSAGE_EVENT__INIT;
    Omni__V1__ConversationOpened co = OMNI__V1__CONVERSATION_OPENED__INIT;
    Omni__V1__CustomerMerged cm = OMNI__V1__CUSTOMER_MERGED__INIT;
    static char *mids[] = {"chat:v1"}, *mcv[] = {"cv_2"};
    me.inbound = full_inbound();
    co.channel_account = "site-1";
    co.trigger_message_id = "m1";
    cm.survivor_id = "cu_1";
    cm.merged_id = "cu_2";
    cm.identities = mids;
    cm.n_identities = 1;
    cm.conversation_ids = mcv;
    cm.n_conversation_ids = 1;
    event_base(&e1, 1)->kind_case = OMNI__V1__STREAM_EVENT__KIND_CONVERSATION_OPENED;
    e1.conversation_opened = &co;
    event_base(&e2, 2)->kind_case = OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
    e2.message = &me;
    event_base(&e3, 3)->kind_case = OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED;
    e3.customer_merged = &cm;
    Omni__V1__StreamEvent *evs[] = {&e1, &e2, &e3};
    Omni__V1__TailReply tr = OMNI__V1__TAIL_REPLY__INIT;
    tr.events = evs;
    tr.n_events = 3;
    tr.last_seq = 3;

    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.id = UINT64_MAX - 1;
    rep.error = "not_found";
    rep.detail = "no customer has this identity";
    struct {
        Omni__V1__ControlReply__BodyCase c;
        void *body;
    } bodies[] = {
        {OMNI__V1__CONTROL_REPLY__BODY_STATUS, &st},
        {OMNI__V1__CONTROL_REPLY__BODY_ACK, full_ack()},
        {OMNI__V1__CONTROL_REPLY__BODY_CUSTOMER, &cu},
        {OMNI__V1__CONTROL_REPLY__BODY_TAIL, &tr},
        {OMNI__V1__CONTROL_REPLY__BODY_QUEUES, full_queues()},
        {OMNI__V1__CONTROL_REPLY__BODY_AGENTS, full_agents()},
    };
    cr_assert_eq(sizeof(bodies) / sizeof(bodies[0]), omni__v1__control_reply__descriptor.n_fields - 3);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        rep.body_case = bodies[i].c;
        rep.status = bodies[i].body;
        cr_assert(all_set(&rep.base, why, sizeof(why)), "test data incomplete: %s", why);
        Omni__V1__ControlReply *u = (Omni__V1__ControlReply *)roundtrip(&rep.base);
        cr_assert_eq(u->body_case, bodies[i].c);
        cr_assert_str_eq(u->error, "not_found");
        if (bodies[i].c == OMNI__V1__CONTROL_REPLY__BODY_TAIL) {
            cr_assert_eq(u->tail->n_events, 3);
            cr_assert_eq(u->tail->events[2]->kind_case, OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED);
            cr_assert_str_eq(u->tail->events[1]->message->inbound->subject, "アカウントロック");
        }
        if (bodies[i].c == OMNI__V1__CONTROL_REPLY__BODY_STATUS)
            cr_assert_eq(u->status->counters[1]->value, UINT64_MAX);
        if (bodies[i].c == OMNI__V1__CONTROL_REPLY__BODY_QUEUES)
            cr_assert_eq(u->queues->queues[0]->sla_met_pct, 87.5);
        if (bodies[i].c == OMNI__V1__CONTROL_REPLY__BODY_AGENTS)
            cr_assert_eq(u->agents->agents[0]->skills[1]->level, 5);
        omni__v1__control_reply__free_unpacked(u, NULL);
    }
}

/* ---- the agents endpoint (agent.proto) --------------------------------------------------- */

static Omni__V1__Login *full_login(void)
{
    static Omni__V1__Login l = OMNI__V1__LOGIN__INIT;
    static char *langs[] = {"ja", "en"}, *holding[] = {"cv_1", "cv_2"};
    l.agent_id = "agent-7";
    l.skills = full_skills(&l.n_skills);
    l.capacity = full_slots(&l.n_capacity);
    l.languages = langs;
    l.n_languages = 2;
    l.team = "東京";
    l.state = OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY;
    l.holding = holding;
    l.n_holding = 2;
    l.heartbeat_ms = 1000;
    return &l;
}

static Omni__V1__LoginOk *full_login_ok(void)
{
    static Omni__V1__LoginOk l = OMNI__V1__LOGIN_OK__INIT;
    static char *reclaimed[] = {"cv_2"};
    l.agent_id = "agent-7";
    l.started_ms = 1714521600000LL;
    l.heartbeat_timeout_ms = 30000;
    l.reclaimed = reclaimed;
    l.n_reclaimed = 1;
    return &l;
}

static Omni__V1__Offer *full_offer(void)
{
    static Omni__V1__Offer o = OMNI__V1__OFFER__INIT;
    o.offer_id = UINT64_MAX;
    o.conversation_id = "cv_1";
    o.customer_id = "cu_1";
    o.channel = OMNI__V1__CHANNEL__CHANNEL_SNS;
    o.provider = "messenger";
    o.queue = "billing";
    o.category = "請求";
    o.timeout_ms = 20000;
    o.wait_ms = 61000;
    o.strategy = "least_occupancy";
    o.step = 1;
    o.pool_size = 4;
    o.score = -1;
    o.preview = "請求金額が違います";
    return &o;
}

static Omni__V1__Assignment *full_assignment(void)
{
    static Omni__V1__Assignment a = OMNI__V1__ASSIGNMENT__INIT;
    static Omni__V1__StreamEvent *history[2];
    history[0] = full_event(OMNI__V1__STREAM_EVENT__KIND_MESSAGE);
    history[1] = full_event(OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE);
    a.offer_id = 7;
    a.conversation_id = "cv_1";
    a.customer_id = "cu_1";
    a.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    a.provider = "smtp";
    a.queue = "billing";
    a.subject = "請求金額が違います";
    a.history = history;
    a.n_history = 2;
    a.restored = 1;
    return &a;
}

/* The small bodies, each with its fields set; returns the body for body_case. */
static ProtobufCMessage *small_agent_body(Omni__V1__AgentEnvelope__BodyCase c)
{
    static Omni__V1__SetState ss = OMNI__V1__SET_STATE__INIT;
    static Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
    static Omni__V1__Accept acc = OMNI__V1__ACCEPT__INIT;
    static Omni__V1__Reject rej = OMNI__V1__REJECT__INIT;
    static Omni__V1__Revoke rev = OMNI__V1__REVOKE__INIT;
    static Omni__V1__Reply rep = OMNI__V1__REPLY__INIT;
    static Omni__V1__Transfer tr = OMNI__V1__TRANSFER__INIT;
    static Omni__V1__Close cl = OMNI__V1__CLOSE__INIT;
    static Omni__V1__ConversationEvent ce = OMNI__V1__CONVERSATION_EVENT__INIT;
    static Omni__V1__Released rel = OMNI__V1__RELEASED__INIT;
    static Omni__V1__AgentError err = OMNI__V1__AGENT_ERROR__INIT;
    static Omni__V1__AgentOk ok = OMNI__V1__AGENT_OK__INIT;
    static Omni__V1__AgentStatus st = OMNI__V1__AGENT_STATUS__INIT;
    static Omni__V1__Logout lo = OMNI__V1__LOGOUT__INIT;
    ss.state = OMNI__V1__AGENT_STATE__AGENT_STATE_WRAP_UP;
    hb.started_ms = -1;
    acc.offer_id = 7;
    rej.offer_id = 8;
    rej.reason = "busy";
    rev.offer_id = 9;
    rev.conversation_id = "cv_3";
    rev.reason = "timeout";
    rep.conversation_id = "cv_1";
    rep.text = "お待たせしました。";
    rep.subject = "Re: 請求金額が違います";
    rep.reply_id = "r-7f3a-1";
    tr.conversation_id = "cv_1";
    tr.queue = "retention";
    tr.agent_id = "agent-9";
    cl.conversation_id = "cv_1";
    cl.disposition = "resolved";
    ce.event = full_event(OMNI__V1__STREAM_EVENT__KIND_MESSAGE);
    rel.conversation_id = "cv_1";
    rel.reason = "transferred";
    err.code = "not_assigned";
    err.detail = "cv_1 is not assigned to agent-7";
    ok.outbound_id = "ob_17";
    ok.seq = 1ULL << 41;
    ok.duplicate = 1;
    st.state = OMNI__V1__AGENT_STATE__AGENT_STATE_OFFLINE;
    st.reason = "missed_offers";
    switch (c) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_SET_STATE: return &ss.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_HEARTBEAT: return &hb.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ACCEPT: return &acc.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REJECT: return &rej.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REVOKE: return &rev.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_REPLY: return &rep.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_TRANSFER: return &tr.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_CLOSE: return &cl.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_EVENT: return &ce.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_RELEASED: return &rel.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ERROR: return &err.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_OK: return &ok.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_STATUS: return &st.base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGOUT: return &lo.base;
    default: return NULL;
    }
}

static ProtobufCMessage *full_agent_body(Omni__V1__AgentEnvelope__BodyCase c)
{
    switch (c) {
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN: return &full_login()->base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_LOGIN_OK: return &full_login_ok()->base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_OFFER: return &full_offer()->base;
    case OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT: return &full_assignment()->base;
    default: return small_agent_body(c);
    }
}

Test(schema, agent_envelope_with_every_body_round_trips)
{
    char why[512];
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.request_id = 0x8000000000000002ULL;
    const ProtobufCMessageDescriptor *d = &omni__v1__agent_envelope__descriptor;
    size_t bodies = 0;
    /* Every oneof member of the descriptor: a body added to agent.proto is covered here. */
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        Omni__V1__AgentEnvelope__BodyCase c = (Omni__V1__AgentEnvelope__BodyCase)d->fields[i].id;
        ProtobufCMessage *body = full_agent_body(c);
        cr_assert_not_null(body, "AgentEnvelope.%s needs test data here", d->fields[i].name);
        env.body_case = c;
        env.login = (Omni__V1__Login *)body; /* the union: any member */
        cr_assert(all_set(&env.base, why, sizeof(why)), "test data incomplete: %s", why);
        Omni__V1__AgentEnvelope *u = (Omni__V1__AgentEnvelope *)roundtrip(&env.base);
        cr_assert_eq(u->body_case, c);
        cr_assert_eq(u->request_id, env.request_id);
        omni__v1__agent_envelope__free_unpacked(u, NULL);
        bodies++;
    }
    cr_assert_eq(bodies, 18, "AgentEnvelope bodies: %zu", bodies);

    /* Spot checks on the decoded struct, independent of pb_equal. */
    env.body_case = OMNI__V1__AGENT_ENVELOPE__BODY_ASSIGNMENT;
    env.assignment = full_assignment();
    Omni__V1__AgentEnvelope *u = (Omni__V1__AgentEnvelope *)roundtrip(&env.base);
    cr_assert_eq(u->assignment->n_history, 2);
    cr_assert_eq(u->assignment->history[1]->kind_case, OMNI__V1__STREAM_EVENT__KIND_AGENT_MESSAGE);
    cr_assert_str_eq(u->assignment->history[1]->agent_message->outbound_id, "ob_17");
    cr_assert_str_eq(u->assignment->history[0]->message->inbound->subject, "アカウントロック");
    omni__v1__agent_envelope__free_unpacked(u, NULL);
}

/* ---- unknown fields ----------------------------------------------------------------------- */

/* A small InboundMessage packed, into a malloc'd buffer with room for extra bytes after it. */
static uint8_t *packed_inbound(size_t *len, size_t room)
{
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    m.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    m.provider_message_id = "chat-1";
    m.from = "chat:visitor-1";
    m.text = "こんにちは";
    *len = omni__v1__inbound_message__get_packed_size(&m);
    uint8_t *buf = malloc(*len + room);
    omni__v1__inbound_message__pack(&m, buf);
    return buf;
}

static void check_small_inbound(const Omni__V1__InboundMessage *u)
{
    cr_assert_eq(u->channel, OMNI__V1__CHANNEL__CHANNEL_CHAT);
    cr_assert_str_eq(u->provider_message_id, "chat-1");
    cr_assert_str_eq(u->from, "chat:visitor-1");
    cr_assert_str_eq(u->text, "こんにちは");
}

Test(schema, unknown_fields_are_tolerated_and_kept)
{
    /* Field 99 in each wire type a newer peer would plausibly use. Tag 99 = 0x318:
     * varint key (99<<3|0) = 0x98 0x06, length-delimited (99<<3|2) = 0x9a 0x06,
     * 64-bit (99<<3|1) = 0x99 0x06, 32-bit (99<<3|5) = 0x9d 0x06. */
    static const struct {
        const char *name;
        uint8_t bytes[16];
        size_t len;
        ProtobufCWireType wt;
    } extras[] = {
        {"varint", {0x98, 0x06, 0x96, 0x01}, 4, PROTOBUF_C_WIRE_TYPE_VARINT},
        {"length-delimited", {0x9a, 0x06, 0x05, 'h', 'e', 'l', 'l', 'o'}, 8, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED},
        {"fixed64", {0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8}, 10, PROTOBUF_C_WIRE_TYPE_64BIT},
        {"fixed32", {0x9d, 0x06, 1, 2, 3, 4}, 6, PROTOBUF_C_WIRE_TYPE_32BIT},
    };
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        size_t len;
        uint8_t *buf = packed_inbound(&len, 16);
        memcpy(buf + len, extras[i].bytes, extras[i].len);
        size_t total = len + extras[i].len;
        Omni__V1__InboundMessage *u = omni__v1__inbound_message__unpack(NULL, total, buf);
        cr_assert_not_null(u, "%s: an unknown field made the message undecodable", extras[i].name);
        check_small_inbound(u);
        /* protobuf-c 1.4 keeps unknown fields: re-packing writes them back after the known ones,
         * so a message passed through an older component loses nothing. */
        cr_assert_eq(u->base.n_unknown_fields, 1, "%s", extras[i].name);
        cr_assert_eq(u->base.unknown_fields[0].tag, 99);
        cr_assert_eq(u->base.unknown_fields[0].wire_type, extras[i].wt);
        size_t rlen = omni__v1__inbound_message__get_packed_size(u);
        cr_assert_eq(rlen, total, "%s: re-packed %zu bytes, want %zu", extras[i].name, rlen, total);
        uint8_t *re = malloc(rlen);
        omni__v1__inbound_message__pack(u, re);
        cr_assert(memcmp(re, buf, total) == 0, "%s: re-packed bytes differ from what was received", extras[i].name);
        free(re);
        omni__v1__inbound_message__free_unpacked(u, NULL);
        free(buf);
    }

    /* Both at once, one before the known fields: decoding still works and both are kept. */
    size_t len;
    uint8_t *inner = packed_inbound(&len, 0);
    uint8_t buf[256];
    size_t n = 0;
    memcpy(buf, "\x98\x06\x96\x01", 4);
    n = 4;
    memcpy(buf + n, inner, len);
    n += len;
    memcpy(buf + n, "\x9a\x06\x05hello", 8);
    n += 8;
    Omni__V1__InboundMessage *u = omni__v1__inbound_message__unpack(NULL, n, buf);
    cr_assert_not_null(u);
    check_small_inbound(u);
    cr_assert_eq(u->base.n_unknown_fields, 2);
    cr_assert_eq(omni__v1__inbound_message__get_packed_size(u), n);
    omni__v1__inbound_message__free_unpacked(u, NULL);
    free(inner);
}

Test(schema, unknown_field_inside_an_envelope_survives)
{
    /* What the ingress sees from a newer adapter: Envelope{request_id, inbound{... + field 99}}. */
    size_t len;
    uint8_t *inner = packed_inbound(&len, 8);
    memcpy(inner + len, "\x9a\x06\x05hello", 8);
    len += 8;
    cr_assert_lt(len, 128, "one-byte length below");
    uint8_t env[256];
    size_t n = 0;
    env[n++] = 0x08; /* field 1 varint: request_id = 300 */
    env[n++] = 0xac;
    env[n++] = 0x02;
    env[n++] = 0x52; /* field 10 (inbound), length-delimited */
    env[n++] = (uint8_t)len;
    memcpy(env + n, inner, len);
    n += len;
    Omni__V1__Envelope *u = omni__v1__envelope__unpack(NULL, n, env);
    cr_assert_not_null(u);
    cr_assert_eq(u->request_id, 300);
    cr_assert_eq(u->body_case, OMNI__V1__ENVELOPE__BODY_INBOUND);
    check_small_inbound(u->inbound);
    cr_assert_eq(u->inbound->base.n_unknown_fields, 1);
    uint8_t re[256];
    cr_assert_eq(omni__v1__envelope__get_packed_size(u), n);
    omni__v1__envelope__pack(u, re);
    cr_assert(memcmp(re, env, n) == 0);
    omni__v1__envelope__free_unpacked(u, NULL);
    free(inner);
}

Test(schema, old_reader_skips_a_new_event_kind)
{
    /* A newer broker writes an event kind in the reserved 13..39 range (say a routing event in
     * field 20, a nested message): this reader has no such member, so the event decodes with
     * kind_case NOT_SET and everything it does know intact. */
    Omni__V1__StreamEvent ev;
    event_base(&ev, 4242);
    size_t len = omni__v1__stream_event__get_packed_size(&ev);
    uint8_t buf[512];
    omni__v1__stream_event__pack(&ev, buf);
    /* field 20, wire type 2: key (20<<3|2) = 162 = 0xa2 0x01; body = {1: "agent-7", 2: 5} */
    static const uint8_t kind20[] = {0xa2, 0x01, 0x0b, 0x0a, 0x07, 'a', 'g', 'e', 'n', 't', '-', '7', 0x10, 0x05};
    memcpy(buf + len, kind20, sizeof(kind20));
    size_t total = len + sizeof(kind20);
    Omni__V1__StreamEvent *u = omni__v1__stream_event__unpack(NULL, total, buf);
    cr_assert_not_null(u, "an unknown event kind must not make the event undecodable");
    cr_assert_eq(u->kind_case, OMNI__V1__STREAM_EVENT__KIND__NOT_SET);
    cr_assert_eq(u->seq, 4242);
    cr_assert_eq(u->time_ms, 1714521600999LL);
    cr_assert_str_eq(u->customer_id, "cu_1");
    cr_assert_str_eq(u->conversation_id, "cv_1");
    cr_assert_eq(u->channel, OMNI__V1__CHANNEL__CHANNEL_CHAT);
    cr_assert_eq(u->base.n_unknown_fields, 1);
    cr_assert_eq(u->base.unknown_fields[0].tag, 20);
    omni__v1__stream_event__free_unpacked(u, NULL);

    /* The same event kind placed before seq (writers may order fields freely). */
    uint8_t buf2[512];
    memcpy(buf2, kind20, sizeof(kind20));
    memcpy(buf2 + sizeof(kind20), buf, len);
    u = omni__v1__stream_event__unpack(NULL, total, buf2);
    cr_assert_not_null(u);
    cr_assert_eq(u->kind_case, OMNI__V1__STREAM_EVENT__KIND__NOT_SET);
    cr_assert_eq(u->seq, 4242);
    omni__v1__stream_event__free_unpacked(u, NULL);
}

/* ---- damaged input ------------------------------------------------------------------------ */

/* Decode buf[0..len): NULL is fine, a message must be usable (packable, freeable). */
static int decode_any(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (!m)
        return 0;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *out = malloc(n + 1);
    cr_assert_eq(protobuf_c_message_pack(m, out), n);
    free(out);
    protobuf_c_message_free_unpacked(m, NULL);
    return 1;
}

static uint8_t *pack_full_envelope(size_t *len)
{
    Omni__V1__Envelope env = OMNI__V1__ENVELOPE__INIT;
    env.request_id = 77;
    env.body_case = OMNI__V1__ENVELOPE__BODY_INBOUND;
    env.inbound = full_inbound();
    *len = omni__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(*len);
    omni__v1__envelope__pack(&env, buf);
    return buf;
}

Test(schema, every_prefix_of_an_envelope_is_safe)
{
    size_t len;
    uint8_t *full = pack_full_envelope(&len);
    size_t ok = 0;
    for (size_t n = 0; n <= len; n++) {
        /* An exact-size copy, so ASan catches any read past the given length. */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, full, n);
        ok += decode_any(&omni__v1__envelope__descriptor, p, n);
        free(p);
    }
    cr_assert(decode_any(&omni__v1__envelope__descriptor, full, len), "the whole buffer decodes");
    /* The empty prefix is a valid empty Envelope; the Envelope has two top-level fields, so
     * only the prefix ending after request_id also decodes, and every cut inside the body is refused. */
    cr_assert_eq(ok, 3, "%zu of %zu prefixes decoded", ok, len + 1);
    free(full);
}

Test(schema, corrupted_bytes_are_safe)
{
    size_t len;
    uint8_t *full = pack_full_envelope(&len);
    static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x7f, 0x08};
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            memcpy(p, full, len);
            p[i] ^= flips[k];
            decode_any(&omni__v1__envelope__descriptor, p, len);
            decode_any(&omni__v1__stream_event__descriptor, p, len);
            decode_any(&omni__v1__control_reply__descriptor, p, len);
        }
    }
    free(p);
    /* Random garbage of every length up to 300, with a fixed seed so a failure reproduces. */
    uint32_t x = 2463534242u;
    for (size_t n = 0; n < 300; n++) {
        for (int rep = 0; rep < 20; rep++) {
            uint8_t *g = malloc(n ? n : 1);
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                g[i] = (uint8_t)x;
            }
            decode_any(&omni__v1__envelope__descriptor, g, n);
            decode_any(&omni__v1__control_request__descriptor, g, n);
            free(g);
        }
    }
    /* Lengths that claim more than there is, and a 10-byte varint overflow. */
    static const uint8_t liar[] = {0x52, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x01, 'x'};
    cr_assert_eq(decode_any(&omni__v1__envelope__descriptor, liar, sizeof(liar)), 0);
    static const uint8_t huge_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(decode_any(&omni__v1__envelope__descriptor, huge_varint, sizeof(huge_varint)), 0);
    free(full);
}
