/* omni-sim: the demo's traffic generator. One SDK adapter per channel (sim-email, sim-chat,
 * sim-sns, sim-phone) driven from one poll loop, ~40 simulated customers of a Japanese
 * subscription service whose identities meet across channels, sent open loop at a fixed rate.
 * Latency is measured from each message's intended send time to its ack (coordinated omission
 * would otherwise hide stalls). Prints a live line every second and a summary at the end. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omni/adapter.h>

enum { CH_EMAIL, CH_CHAT, CH_SNS, CH_PHONE, NCH };
static const char *const ch_name[NCH] = {"email", "chat", "sns", "phone"};
static const char *const ch_adapter[NCH] = {"sim-email", "sim-chat", "sim-sns", "sim-phone"};
static const Omni__V1__Channel ch_proto[NCH] = {
    OMNI__V1__CHANNEL__CHANNEL_EMAIL, OMNI__V1__CHANNEL__CHANNEL_CHAT,
    OMNI__V1__CHANNEL__CHANNEL_SNS, OMNI__V1__CHANNEL__CHANNEL_PHONE};
/* Which of our accounts received the message: mailbox, chat site, LINE channel id, DID. */
static const char *const ch_account[NCH] = {"support@example.com", "site-main", "2000000001",
                                            "+81312345678"};

/* ---- random numbers (splitmix64: reproducible with --seed) ---- */
static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }

/* ---- log-linear latency histogram (µs): 16 sub-buckets per power of two, ~6% error ---- */
#define H_SUB 16
#define H_BUCKETS (44 * H_SUB)
typedef struct {
    uint64_t n, max;
    uint64_t b[H_BUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < H_SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= 4 */
    unsigned i = (e - 3) * H_SUB + (unsigned)((v >> (e - 4)) & (H_SUB - 1));
    return i < H_BUCKETS ? i : H_BUCKETS - 1;
}
static uint64_t hist_value(unsigned i) /* middle of bucket i */
{
    if (i < H_SUB) return i;
    unsigned e = i / H_SUB + 3, sub = i % H_SUB;
    uint64_t lo = (uint64_t)(H_SUB + sub) << (e - 4), width = (uint64_t)1 << (e - 4);
    return lo + width / 2;
}
static void hist_add(hist_t *h, int64_t v)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    h->b[hist_index(u)]++;
    h->n++;
    if (u > h->max) h->max = u;
}
static uint64_t hist_pct(const hist_t *h, double q)
{
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
    if (rank < 1) rank = 1;
    for (unsigned i = 0; i < H_BUCKETS; i++)
        if ((seen += h->b[i]) >= rank) return hist_value(i) < h->max ? hist_value(i) : h->max;
    return h->max;
}

/* ---- simulated customers ---- */
enum {
    J_FULL,   /* email -> chat (verified: also email, phone) -> LINE (also phone) -> call */
    J_SPLIT,  /* LINE alone, a call alone, then LINE linked to the phone number merges both */
    J_SPLIT2, /* email, anonymous chat, then a logged-in chat carrying the email merges both */
    J_SINGLE, /* stays on one channel */
};

typedef struct {
    const char *subject, *body;
} topic_t;

static const topic_t topics_ja[] = {
    {"アカウントがロックされました",
     "ログインしようとしたら「アカウントがロックされました」と表示されます。解除していただけますか。"},
    {"パスワードを再設定できません",
     "パスワード再設定のメールが届きません。迷惑メールフォルダも確認しました。"},
    {"クレジットカードの不正利用",
     "カードの明細に身に覚えのない請求があります。不正利用ではないか確認してください。"},
    {"請求金額が違います", "今月の請求金額が契約中のプランの料金と違います。内訳を教えてください。"},
    {"解約したい", "今月末で解約したいです。手続きの方法を教えてください。"},
    {"プランを変更したい", "プレミアムプランからベーシックプランに変更できますか。"},
    {"領収書の発行について", "先月分の領収書（インボイス）を発行していただけますか。"},
};
static const topic_t topics_en[] = {
    {"My account is locked", "I tried to log in and it says my account is locked. Can you unlock it?"},
    {"Can't reset my password",
     "The password reset email never arrives. I already checked my spam folder."},
    {"Unauthorized charge on my credit card",
     "There is a charge on my card statement that I don't recognise. Was my card misused?"},
    {"Wrong amount on my bill",
     "This month's bill does not match the price of my plan. Could you explain the breakdown?"},
    {"I want to cancel", "Please tell me how to cancel my subscription at the end of this month."},
};
static const char *const followups_ja[] = {"", "先ほどメールした件です。", "まだ解決していません。",
                                           "追加で質問です。", "急ぎでお願いします。"};
static const char *const followups_en[] = {"", "Following up on my email. ", "Still not solved. ",
                                           "One more question. ", "This is urgent. "};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct { const char *kanji, *romaji; } family_ja[] = {
    {"山田", "yamada"}, {"佐藤", "sato"}, {"鈴木", "suzuki"}, {"高橋", "takahashi"},
    {"田中", "tanaka"}, {"伊藤", "ito"}, {"渡辺", "watanabe"}, {"中村", "nakamura"},
    {"小林", "kobayashi"}, {"加藤", "kato"}, {"吉田", "yoshida"}, {"山本", "yamamoto"},
    {"松本", "matsumoto"}, {"井上", "inoue"}, {"木村", "kimura"}, {"清水", "shimizu"}};
static const struct { const char *kanji, *romaji; } given_ja[] = {
    {"太郎", "taro"}, {"花子", "hanako"}, {"健太", "kenta"}, {"美咲", "misaki"},
    {"翔太", "shota"}, {"陽菜", "hina"}, {"大輔", "daisuke"}, {"由美", "yumi"},
    {"直樹", "naoki"}, {"さくら", "sakura"}, {"拓也", "takuya"}, {"愛", "ai"},
    {"優斗", "yuto"}, {"結衣", "yui"}, {"誠", "makoto"}, {"真由美", "mayumi"}};
static const char *const first_en[] = {"Emily", "Michael", "Sarah", "David", "Olivia",
                                       "James", "Anna", "Lucas", "Grace", "Daniel"};
static const char *const last_en[] = {"Johnson", "Smith", "Brown", "Wilson", "Taylor",
                                      "Miller", "Schmidt", "Martin", "Clark", "Walker"};
static const char *const domains_ja[] = {"example.jp", "example.ne.jp", "example.co.jp"};

#define NPERSONS 40
#define CID_MAX 80
typedef struct {
    char name[64];     /* display name */
    char email[96];    /* lower case */
    char phone[16];    /* national digits, "09012345678" */
    char line_id[40];  /* "U" + 32 hex */
    char visitor[40];  /* chat widget visitor id */
    int ja, journey, step, topic;
    int chat_verified, line_linked; /* later messages on these channels carry `also` */
    unsigned used;                  /* channel bits used so far */
    char last_cid[NCH][CID_MAX];    /* customer_id of the latest fresh ack per channel */
} person_t;
static person_t persons[NPERSONS];

/* ---- one message, kept whole so a duplicate can be resent byte for byte ---- */
typedef struct {
    int ch, person, dup; /* person -1: the withheld caller */
    char from[OMNI_IDENTITY_MAX], also[2][OMNI_IDENTITY_MAX];
    int n_also;
    char pmid[96], subject[192], text[640];
    const char *name, *locale;
} spec_t;
#define RING 64
static spec_t ring[RING];
static unsigned ring_n;

/* ---- state ---- */
static omni_adapter_t *ads[NCH];
static volatile sig_atomic_t g_stop;
static uint64_t run_id, msg_counter;
static struct {
    uint64_t sent, accepted, duplicate, rejected, resent, replies;
} st[NCH];
static uint64_t full_waits, unknown_acks;
static hist_t h_all, h_sec;
static char first_reject[256];

/* In-flight messages by (channel, request_id): open addressing, backward-shift deletion. */
#define PEND_CAP 65536u
typedef struct {
    uint64_t rid;
    int64_t t_us;
    int16_t person;
    uint8_t ch, used;
} pend_t;
static pend_t pend[PEND_CAP];
static size_t pend_slot(int ch, uint64_t rid)
{
    return (size_t)(((rid + (uint64_t)ch * 0x51ED27ull) * 0x9E3779B97F4A7C15ull) >> 48) &
           (PEND_CAP - 1);
}
static void pend_put(int ch, uint64_t rid, int64_t t_us, int person)
{
    size_t i = pend_slot(ch, rid);
    for (size_t n = 0; n < PEND_CAP && pend[i].used; n++) i = (i + 1) & (PEND_CAP - 1);
    if (pend[i].used) return; /* cannot happen: the outboxes hold far fewer */
    pend[i] = (pend_t){.rid = rid, .t_us = t_us, .person = (int16_t)person,
                       .ch = (uint8_t)ch, .used = 1};
}
static int pend_take(int ch, uint64_t rid, pend_t *out)
{
    size_t i = pend_slot(ch, rid);
    while (pend[i].used && !(pend[i].ch == ch && pend[i].rid == rid)) i = (i + 1) & (PEND_CAP - 1);
    if (!pend[i].used) return 0;
    *out = pend[i];
    for (size_t j = i;;) { /* backward-shift delete */
        pend[i].used = 0;
        for (;;) {
            j = (j + 1) & (PEND_CAP - 1);
            if (!pend[j].used) return 1;
            size_t k = pend_slot(pend[j].ch, pend[j].rid);
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
            break;
        }
        pend[i] = pend[j];
        i = j;
    }
}

/* Distinct customer ids seen in acks, with the channels each was seen on. */
#define CUST_CAP 8192u
static struct {
    char id[CID_MAX];
    unsigned chans;
} custs[CUST_CAP];
static unsigned ncusts;
static void cust_seen(const char *id, int ch)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (unsigned n = 0, i = (unsigned)h & (CUST_CAP - 1); n < CUST_CAP;
         n++, i = (i + 1) & (CUST_CAP - 1)) {
        if (!custs[i].id[0]) {
            if (ncusts >= CUST_CAP - 1) return;
            snprintf(custs[i].id, CID_MAX, "%s", id);
            ncusts++;
        } else if (strncmp(custs[i].id, id, CID_MAX - 1) != 0) {
            continue;
        }
        custs[i].chans |= 1u << ch;
        return;
    }
}
static unsigned multi_channel_customers(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CUST_CAP; i++)
        if (custs[i].id[0] && (custs[i].chans & (custs[i].chans - 1))) n++;
    return n;
}

/* ---- building messages ---- */

static void make_persons(void)
{
    for (int i = 0; i < NPERSONS; i++) {
        person_t *p = &persons[i];
        memset(p, 0, sizeof(*p));
        p->ja = i < 32;
        for (int attempt = 0;; attempt++) {
            if (p->ja) {
                unsigned f = rnd_below(COUNT(family_ja)), g = rnd_below(COUNT(given_ja));
                snprintf(p->name, sizeof(p->name), "%s %s", family_ja[f].kanji, given_ja[g].kanji);
                snprintf(p->email, sizeof(p->email), "%s.%s%.0d@%s", given_ja[g].romaji,
                         family_ja[f].romaji, attempt > 3 ? i : 0,
                         domains_ja[rnd_below(COUNT(domains_ja))]);
            } else {
                unsigned f = rnd_below(COUNT(first_en)), l = rnd_below(COUNT(last_en));
                snprintf(p->name, sizeof(p->name), "%s %s", first_en[f], last_en[l]);
                char lower[64];
                snprintf(lower, sizeof(lower), "%s.%s", first_en[f], last_en[l]);
                for (char *c = lower; *c; c++)
                    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
                snprintf(p->email, sizeof(p->email), "%s%.0d@example.com", lower,
                         attempt > 3 ? i : 0);
            }
            int clash = 0;
            for (int j = 0; j < i; j++) clash |= strcmp(persons[j].email, p->email) == 0;
            if (!clash) break;
        }
        static const char *const prefixes[] = {"090", "080", "070"};
        snprintf(p->phone, sizeof(p->phone), "%s%u%03u%04u", prefixes[rnd_below(3)],
                 1 + rnd_below(9), rnd_below(1000), rnd_below(10000)); /* 0X0-[1-9]XXX-XXXX */
        p->line_id[0] = 'U';
        for (int k = 1; k <= 32; k++) p->line_id[k] = "0123456789abcdef"[rnd_below(16)];
        snprintf(p->visitor, sizeof(p->visitor), "v-%08" PRIx64, rnd() & 0xffffffffu);
        static const int journeys[10] = {J_FULL, J_FULL, J_FULL, J_FULL, J_FULL,
                                         J_SPLIT, J_SPLIT, J_SPLIT2, J_SPLIT2, J_SINGLE};
        p->journey = journeys[i % 10];
        p->topic = (int)rnd_below(p->ja ? COUNT(topics_ja) : COUNT(topics_en));
    }
}

/* A national mobile number ("09012345678") written the many ways people write it. */
static void phone_written(const char *d, char *out, size_t n)
{
    switch (rnd_below(7)) {
    case 0: snprintf(out, n, "%.3s-%.4s-%.4s", d, d + 3, d + 7); break;
    case 1: snprintf(out, n, "%s", d); break;
    case 2: snprintf(out, n, "+81 %.2s-%.4s-%.4s", d + 1, d + 3, d + 7); break;
    case 3: snprintf(out, n, "+81%s", d + 1); break;
    case 4: snprintf(out, n, "%.3s %.4s %.4s", d, d + 3, d + 7); break;
    case 5: snprintf(out, n, "(%.3s) %.4s-%.4s", d, d + 3, d + 7); break;
    default: { /* full width: "０９０－１２３４－５６７８" */
        size_t o = 0;
        for (int k = 0; d[k] && o + 4 < n; k++) {
            if (k == 3 || k == 7) { out[o++] = '\xEF'; out[o++] = '\xBC'; out[o++] = '\x8D'; }
            if (o + 4 >= n) break;
            out[o++] = '\xEF'; out[o++] = '\xBC'; out[o++] = (char)(0x90 + (d[k] - '0'));
        }
        out[o] = 0;
    }
    }
}

/* Email as the customer typed it: sometimes capitalised, sometimes with stray spaces. */
static void email_written(const char *e, char *out, size_t n)
{
    unsigned r = rnd_below(10);
    if (r == 0) { snprintf(out, n, " %s ", e); return; }
    snprintf(out, n, "%s", e);
    if (r <= 2)
        for (char *c = out, *prev = NULL; *c; prev = c, c++)
            if ((!prev || *prev == '.' || *prev == '@') && *c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
}

/* "TYPE:VALUE" normalized as an adapter does; raw when the SDK refuses it (the broker judges). */
static void identity(int ch, const char *type, const char *value, char *out, size_t n)
{
    char raw[OMNI_IDENTITY_MAX];
    snprintf(raw, sizeof(raw), "%s:%s", type, value);
    if (omni_adapter_identity(ads[ch], raw, out, n) != 0) {
        size_t len = strnlen(raw, n - 1);
        memcpy(out, raw, len);
        out[len] = 0;
    }
}

static void add_also(spec_t *s, const char *type, const char *value)
{
    if (s->n_also < 2) identity(s->ch, type, value, s->also[s->n_also++], sizeof(s->also[0]));
}

static void fill(spec_t *s, int ch, int pi, int first)
{
    person_t *p = &persons[pi];
    char buf[64];
    memset(s, 0, sizeof(*s));
    s->ch = ch;
    s->person = pi;
    s->name = p->name;
    s->locale = p->ja ? "ja-JP" : "en-US";
    msg_counter++;
    static const char *const pmid_fmt[NCH] = {"sim.%" PRIx64 ".%" PRIu64 "@mail.example.jp",
                                              "chat-%" PRIx64 "-%" PRIu64,
                                              "line-%" PRIx64 "-%" PRIu64,
                                              "call-%" PRIx64 "-%" PRIu64 "@sip.example.jp"};
    snprintf(s->pmid, sizeof(s->pmid), pmid_fmt[ch], run_id, msg_counter);

    if (rnd_below(10) == 0) /* a new problem now and then */
        p->topic = (int)rnd_below(p->ja ? COUNT(topics_ja) : COUNT(topics_en));
    const topic_t *t = p->ja ? &topics_ja[p->topic] : &topics_en[p->topic];
    const char *fu = first ? "" : p->ja ? followups_ja[rnd_below(COUNT(followups_ja))]
                                        : followups_en[rnd_below(COUNT(followups_en))];
    switch (ch) {
    case CH_EMAIL:
        email_written(p->email, buf, sizeof(buf));
        identity(ch, "email", buf, s->from, sizeof(s->from));
        snprintf(s->subject, sizeof(s->subject), "%s%s", first ? "" : "Re: ", t->subject);
        snprintf(s->text, sizeof(s->text), "%s%s\n\n%s", fu, t->body, p->name);
        break;
    case CH_CHAT:
        identity(ch, "chat", p->visitor, s->from, sizeof(s->from));
        if (p->chat_verified) { /* logged-in visitor: the site vouches for email and phone */
            email_written(p->email, buf, sizeof(buf));
            add_also(s, "email", buf);
            if (p->journey == J_FULL) {
                phone_written(p->phone, buf, sizeof(buf));
                add_also(s, "phone", buf);
            }
        }
        snprintf(s->text, sizeof(s->text), "%s%s", fu, t->body);
        break;
    case CH_SNS:
        identity(ch, "line", p->line_id, s->from, sizeof(s->from));
        if (p->line_linked) { /* LINE account linked to the membership: phone number known */
            phone_written(p->phone, buf, sizeof(buf));
            add_also(s, "phone", buf);
        }
        snprintf(s->text, sizeof(s->text), "%s%s", fu, t->body);
        break;
    default:
        phone_written(p->phone, buf, sizeof(buf));
        identity(ch, "phone", buf, s->from, sizeof(s->from));
        snprintf(s->text, sizeof(s->text), "(voice call)");
    }
    p->used |= 1u << ch;
}

static void next_message(spec_t *s)
{
    if (ring_n > 0 && rnd_below(100) < 2) { /* a platform delivering twice */
        *s = ring[rnd_below(ring_n < RING ? ring_n : RING)];
        s->dup = 1;
        return;
    }
    if (rnd_below(100) == 0) { /* a caller who withholds the number (184) */
        memset(s, 0, sizeof(*s));
        s->ch = CH_PHONE;
        s->person = -1;
        s->name = "";
        s->locale = "ja-JP";
        snprintf(s->from, sizeof(s->from), "phone:anonymous");
        snprintf(s->pmid, sizeof(s->pmid), "call-%" PRIx64 "-%" PRIu64 "@sip.example.jp", run_id,
                 ++msg_counter);
        snprintf(s->text, sizeof(s->text), "(voice call)");
        return;
    }
    int pi = (int)rnd_below(NPERSONS);
    person_t *p = &persons[pi];
    int step = p->step++, ch;
    switch (p->journey) {
    case J_FULL: /* email, chat (verified), LINE (linked), call */
        if (step == 1) p->chat_verified = 1;
        if (step == 2) p->line_linked = 1;
        if (step < 4) { fill(s, (int[]){CH_EMAIL, CH_CHAT, CH_SNS, CH_PHONE}[step], pi, step == 0); break; }
        goto followup;
    case J_SPLIT: /* LINE alone, call alone, then LINE linked to the phone: one customer */
        if (step == 2) p->line_linked = 1;
        if (step < 3) { fill(s, step == 1 ? CH_PHONE : CH_SNS, pi, step == 0); break; }
        goto followup;
    case J_SPLIT2: /* email, anonymous chat, then logged-in chat carrying the email */
        if (step == 2) p->chat_verified = 1;
        if (step < 3) { fill(s, step == 0 ? CH_EMAIL : CH_CHAT, pi, step == 0); break; }
        goto followup;
    default:
        fill(s, pi % 2 ? CH_SNS : CH_EMAIL, pi, step == 0);
        break;
    followup:
        do ch = (int)rnd_below(NCH); while (!(p->used & (1u << ch)));
        fill(s, ch, pi, 0);
    }
    ring[ring_n++ % RING] = *s;
}

/* Returns what omni_adapter_send returned. */
static int send_spec(const spec_t *s, int64_t intended_us)
{
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    char *also[2] = {(char *)s->also[0], (char *)s->also[1]};
    m.channel = ch_proto[s->ch];
    m.channel_account = (char *)ch_account[s->ch];
    m.provider = s->ch == CH_SNS ? (char *)"line" : (char *)"";
    m.provider_message_id = (char *)s->pmid;
    m.from = (char *)s->from;
    m.n_also = (size_t)s->n_also;
    m.also = s->n_also ? also : NULL;
    m.display_name = (char *)s->name;
    m.text = (char *)s->text;
    m.subject = (char *)s->subject;
    m.locale = (char *)s->locale;
    m.received_ms = omni_now_ms();
    uint64_t rid = 0;
    int rc = omni_adapter_send(ads[s->ch], &m, &rid);
    if (rc == 0) {
        pend_put(s->ch, rid, intended_us, s->person);
        st[s->ch].sent++;
        if (s->dup) st[s->ch].resent++;
    } else if (rc != OMNI_EFULL) {
        st[s->ch].rejected++;
        if (!first_reject[0])
            snprintf(first_reject, sizeof(first_reject), "%s: refused locally: %s", ch_name[s->ch],
                     omni_strerror(rc));
    }
    return rc;
}

/* An agent's reply reaches the simulated customer: counted and reported delivered. */
static void on_outbound(omni_adapter_t *ad, const Omni__V1__OutboundMessage *m, void *user)
{
    st[*(int *)user].replies++;
    omni_adapter_outbound_result(ad, m->outbound_id, 1, 0, NULL, NULL);
}

static void on_ack(omni_adapter_t *ad, const omni_ack_t *ack, void *user)
{
    (void)ad;
    int ch = *(const int *)user;
    pend_t p;
    if (!pend_take(ch, ack->request_id, &p)) { unknown_acks++; return; }
    int64_t lat = omni_mono_us() - p.t_us;
    hist_add(&h_all, lat);
    hist_add(&h_sec, lat);
    if (!ack->accepted) {
        st[ch].rejected++;
        if (!first_reject[0])
            snprintf(first_reject, sizeof(first_reject), "%s: reason %d: %s", ch_name[ch],
                     ack->reason, ack->detail ? ack->detail : "");
        return;
    }
    st[ch].accepted++;
    if (ack->duplicate) { st[ch].duplicate++; return; } /* ids of the original: nothing new */
    if (ack->customer_id && ack->customer_id[0]) {
        cust_seen(ack->customer_id, ch);
        if (p.person >= 0)
            snprintf(persons[p.person].last_cid[ch], CID_MAX, "%s", ack->customer_id);
    }
}

/* ---- reporting ---- */

static uint64_t total(size_t off)
{
    uint64_t n = 0;
    for (int c = 0; c < NCH; c++) n += *(const uint64_t *)((const char *)&st[c] + off);
    return n;
}
#define TOTAL(field) total(offsetof(__typeof__(st[0]), field))

static void live_line(double elapsed)
{
    int connected = 0;
    for (int c = 0; c < NCH; c++) connected += omni_adapter_connected(ads[c]);
    printf("[%3.0fs] sent %" PRIu64 " (email %" PRIu64 " chat %" PRIu64 " sns %" PRIu64
           " phone %" PRIu64 ") acked %" PRIu64 " dup %" PRIu64 " rejected %" PRIu64
           " | customers %u, multi-channel %u | agent replies %" PRIu64 " | ack p50 %" PRIu64
           " us p99 %" PRIu64 " us%s\n",
           elapsed, TOTAL(sent), st[CH_EMAIL].sent, st[CH_CHAT].sent, st[CH_SNS].sent,
           st[CH_PHONE].sent, TOTAL(accepted), TOTAL(duplicate), TOTAL(rejected), ncusts,
           multi_channel_customers(), TOTAL(replies), hist_pct(&h_sec, 0.50), hist_pct(&h_sec, 0.99),
           connected ? "" : "  (broker not connected)");
    memset(&h_sec, 0, sizeof(h_sec));
}

static void summary(double elapsed, double rate)
{
    printf("\nomni-sim summary: %.1f s, %" PRIu64 " messages, %.1f msg/s (requested %.1f)\n",
           elapsed, TOTAL(sent), elapsed > 0 ? (double)TOTAL(sent) / elapsed : 0.0, rate);
    printf("  %-7s %-10s %8s %9s %10s %9s %8s\n", "channel", "adapter", "sent", "accepted",
           "duplicate", "rejected", "pending");
    size_t pending_all = 0;
    for (int c = 0; c < NCH; c++) {
        size_t pending = omni_adapter_pending(ads[c]);
        pending_all += pending;
        printf("  %-7s %-10s %8" PRIu64 " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %8zu\n",
               ch_name[c], ch_adapter[c], st[c].sent, st[c].accepted, st[c].duplicate,
               st[c].rejected, pending);
    }
    printf("  %-7s %-10s %8" PRIu64 " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %8zu\n", "total",
           "", TOTAL(sent), TOTAL(accepted), TOTAL(duplicate), TOTAL(rejected), pending_all);
    printf("  duplicates resent on purpose: %" PRIu64 "; outbox-full waits: %" PRIu64 "\n",
           TOTAL(resent), full_waits);
    printf("  agent replies delivered to customers: %" PRIu64 " (email %" PRIu64 " chat %" PRIu64
           " sns %" PRIu64 " phone %" PRIu64 ")\n", TOTAL(replies), st[CH_EMAIL].replies, st[CH_CHAT].replies,
           st[CH_SNS].replies, st[CH_PHONE].replies);
    if (first_reject[0]) printf("  first rejection: %s\n", first_reject);

    unsigned multi = 0, one = 0;
    for (int i = 0; i < NPERSONS; i++) {
        const char *id = NULL;
        int chans = 0, same = 1;
        for (int c = 0; c < NCH; c++) {
            if (!persons[i].last_cid[c][0]) continue;
            chans++;
            if (id && strcmp(id, persons[i].last_cid[c]) != 0) same = 0;
            id = persons[i].last_cid[c];
        }
        if (chans > 1) { multi++; one += (unsigned)same; }
    }
    printf("  simulated people: %d (+ withheld callers); distinct customer_id in acks: %u\n",
           NPERSONS, ncusts);
    printf("  customers seen on more than one channel (merged identities): %u\n",
           multi_channel_customers());
    printf("  people who used 2+ channels: %u, of whom resolved to one customer: %u\n", multi, one);
    printf("  ack latency from intended send: p50 %" PRIu64 " us, p99 %" PRIu64
           " us, p99.9 %" PRIu64 " us, max %" PRIu64 " us (n=%" PRIu64 ")\n",
           hist_pct(&h_all, 0.50), hist_pct(&h_all, 0.99), hist_pct(&h_all, 0.999), h_all.max,
           h_all.n);
    if (unknown_acks) printf("  acks for unknown requests: %" PRIu64 "\n", unknown_acks);
}

/* ---- main ---- */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: omni-sim [--broker ENDPOINT] [--seconds N] [--rate R] [--seed N]\n"
            "Simulated customers writing on every channel through the adapter SDK.\n"
            "  --broker ENDPOINT  broker ingress (default tcp://127.0.0.1:5560)\n"
            "  --seconds N        how long to send (default 30)\n"
            "  --rate R           messages per second, open loop (default 50)\n"
            "  --seed N           random seed, for reproducible traffic (default: time)\n"
            "  --help, --version\n");
}

int main(int argc, char **argv)
{
    const char *broker = "tcp://127.0.0.1:5560";
    double seconds = 30, rate = 50;
    uint64_t seed = (uint64_t)omni_now_ms() ^ ((uint64_t)getpid() << 32);
    static const struct option longopts[] = {
        {"broker", required_argument, NULL, 'b'}, {"seconds", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},   {"seed", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b': broker = optarg; break;
        case 's':
            seconds = strtod(optarg, &end);
            if (*end || seconds < 0 || seconds > 86400) {
                fprintf(stderr, "omni-sim: --seconds must be between 0 and 86400\n");
                return 2;
            }
            break;
        case 'r':
            rate = strtod(optarg, &end);
            if (*end || !(rate > 0) || rate > 1e6) {
                fprintf(stderr, "omni-sim: --rate must be > 0 and <= 1000000\n");
                return 2;
            }
            break;
        case 'S':
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (*end || errno) { fprintf(stderr, "omni-sim: bad --seed\n"); return 2; }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("omni-sim %s\n", OMNI_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "omni-sim: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Signals stay blocked (also in ZeroMQ's threads) except inside ppoll: no lost wake-up. */
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &orig);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rng = seed;
    run_id = (uint64_t)omni_now_ms() << 12 ^ (uint64_t)getpid();
    static int ch_index[NCH] = {0, 1, 2, 3};
    for (int c = 0; c < NCH; c++) {
        omni_adapter_opts_t o;
        omni_adapter_opts_init(&o);
        o.broker = broker;
        o.adapter_id = ch_adapter[c];
        o.channel = ch_proto[c];
        o.outbox_max = 4096;
        o.on_ack = on_ack;
        o.on_outbound = on_outbound;
        o.user = &ch_index[c];
        int rc = omni_adapter_new(&o, &ads[c]);
        if (rc != 0) {
            fprintf(stderr, "omni-sim: cannot create adapter %s for %s: %s\n", ch_adapter[c],
                    broker, omni_strerror(rc));
            for (int k = 0; k < c; k++) omni_adapter_destroy(&ads[k]);
            return 1;
        }
    }
    make_persons();
    printf("omni-sim %s: %d customers on 4 channels, %.0f msg/s for %.0f s, broker %s, seed %" PRIu64
           "\n", OMNI_VERSION, NPERSONS, rate, seconds, broker, seed);

    /* Warm-up: let every adapter reach the broker first, so the connection set-up does not
     * count as message latency (5 s at most; without a broker the outboxes simply fill). */
    for (int64_t until = omni_mono_us() + 5000000; !g_stop && omni_mono_us() < until;) {
        int connected = 0;
        for (int c = 0; c < NCH; c++) {
            while (omni_adapter_process(ads[c]) > 0) {}
            connected += omni_adapter_connected(ads[c]);
        }
        if (connected == NCH) break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
        ppoll(NULL, 0, &ts, &orig);
    }

    const int64_t start = omni_mono_us(), stop_at = start + (int64_t)(seconds * 1e6);
    const double interval_us = 1e6 / rate;
    int64_t next_report = start + 1000000;
    uint64_t scheduled = 0;
    spec_t cur;
    int have_cur = 0;
    int64_t cur_due = 0;
    struct pollfd pfd[NCH];
    for (int c = 0; c < NCH; c++) pfd[c] = (struct pollfd){.fd = omni_adapter_fd(ads[c]), .events = POLLIN};

    while (!g_stop) {
        int64_t now = omni_mono_us();
        if (now >= stop_at) break;
        while (!g_stop) { /* everything whose intended time has come */
            if (!have_cur) {
                int64_t due = start + (int64_t)((double)scheduled * interval_us);
                if (due > now || due >= stop_at) break;
                next_message(&cur);
                cur_due = due;
                have_cur = 1;
                scheduled++;
            }
            if (send_spec(&cur, cur_due) == OMNI_EFULL) { full_waits++; break; } /* wait for acks */
            have_cur = 0;
        }
        for (int c = 0; c < NCH; c++) /* edge-triggered fd: drain until nothing is left */
            while (omni_adapter_process(ads[c]) > 0) {}
        now = omni_mono_us();
        if (now >= next_report) {
            live_line((double)(now - start) / 1e6);
            next_report += 1000000;
        }
        int64_t wake = next_report < stop_at ? next_report : stop_at;
        int64_t due = have_cur ? now + 1000 : start + (int64_t)((double)scheduled * interval_us);
        if (due < wake) wake = due;
        for (int c = 0; c < NCH; c++) {
            int t = omni_adapter_timeout_ms(ads[c]);
            if (t >= 0 && now + (int64_t)t * 1000 < wake) wake = now + (int64_t)t * 1000;
        }
        int64_t wait_us = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000};
        if (ppoll(pfd, NCH, &ts, &orig) < 0 && errno != EINTR) {
            perror("omni-sim: ppoll");
            break;
        }
    }
    double elapsed = (double)(omni_mono_us() - start) / 1e6;
    if (g_stop) printf("omni-sim: interrupted, flushing\n");

    /* Wait (5 s at most in all) for the acks of everything still in the outboxes. */
    const int64_t flush_end = omni_mono_us() + 5000000;
    int flushed = 1;
    for (int c = 0; c < NCH; c++) {
        int64_t left = (flush_end - omni_mono_us()) / 1000;
        if (omni_adapter_flush(ads[c], left > 0 ? (int)left : 0) != 0) flushed = 0;
    }
    for (int c = 0; c < NCH; c++)
        while (omni_adapter_process(ads[c]) > 0) {}
    summary(elapsed, rate);
    if (!flushed) printf("  flush: not everything was acked within 5 s\n");
    for (int c = 0; c < NCH; c++) omni_adapter_destroy(&ads[c]);
    return flushed ? 0 : 1;
}
