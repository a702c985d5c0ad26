/* Identity dedupe and threading against real Redis: one person across channels is one customer,
 * merges are deterministic and atomic under racing clients, junk never links, email threads. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static h_env_t H;
static void setup(void) { h_setup(&H); }
static void teardown(void) { h_teardown(&H); }

TestSuite(identity_graph, .init = setup, .fini = teardown, .timeout = 120);

#define CH(x) OMNI__V1__CHANNEL__CHANNEL_##x

static h_ack_t send1(omni_adapter_t *ad, Omni__V1__Channel ch, const char *pmid, const char *from, const char **also,
                     const char *text)
{
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, ch, pmid, from, also, text);
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0, "no ack for %s", pmid);
    cr_assert(ack.accepted, "%s rejected: %s", pmid, ack.detail);
    return ack;
}

Test(identity_graph, one_person_across_email_chat_line_phone)
{
    omni_adapter_t *ad = h_adapter(&H, "t-multi", CH(CHAT), NULL, NULL);
    h_ack_t e = send1(ad, CH(EMAIL), "<m1@example.jp>", "email:hanako.sato@example.jp", NULL,
                      "請求金額が違います。先月の請求を確認してください。");
    const char *chat_also[] = {"email:Hanako.Sato@EXAMPLE.jp", NULL};
    h_ack_t c = send1(ad, CH(CHAT), "chat-1", "chat:visitor-7f3a", chat_also, "メールの件で連絡しました");
    const char *line_also[] = {"phone:０９０－８７６５－４３２１", NULL};
    h_ack_t l = send1(ad, CH(SNS), "line-evt-1", "line:Ub1a2c3d4e5f60718293a4b5c6d7e8f90", line_also, "まだ返事がありません");
    /* The phone number the LINE account proved now finds her when she calls. */
    h_ack_t p = send1(ad, CH(PHONE), "call-1", "phone:+81 90 8765 4321", NULL, "(voice call)");

    cr_assert_str_eq(c.customer_id, e.customer_id, "chat with verified email joins the email customer");
    cr_assert_str_neq(l.customer_id, e.customer_id, "LINE alone proves nothing about her email yet");
    cr_assert_str_eq(p.customer_id, l.customer_id);

    /* Her email on the phone channel bridges the two: they merge, the older survives. */
    const char *bridge[] = {"phone:090-8765-4321", NULL};
    h_ack_t b = send1(ad, CH(EMAIL), "<m2@example.jp>", "email:hanako.sato@example.jp", bridge, "電話番号を追記します");
    cr_assert_str_eq(b.customer_id, e.customer_id, "survivor is the older customer");

    const char *ids[] = {"email:hanako.sato@example.jp", "chat:visitor-7f3a", "line:Ub1a2c3d4e5f60718293a4b5c6d7e8f90",
                         "phone:+819087654321"};
    for (size_t i = 0; i < 4; i++) {
        char cust[64];
        h_customer_of(&H, ids[i], cust, sizeof(cust));
        cr_assert_str_eq(cust, e.customer_id, "%s points at %s", ids[i], cust);
    }

    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), merges = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i]->kind_case != OMNI__V1__STREAM_EVENT__KIND_CUSTOMER_MERGED)
            continue;
        merges++;
        cr_assert_str_eq(ev[i]->customer_merged->survivor_id, e.customer_id);
        cr_assert_str_eq(ev[i]->customer_merged->merged_id, l.customer_id);
        cr_assert_eq(ev[i]->customer_merged->n_identities, 2);
        cr_assert_eq(ev[i]->customer_merged->n_conversation_ids, 2, "LINE and phone conversations move");
        cr_assert_str_eq(ev[i]->customer_id, e.customer_id);
    }
    cr_assert_eq(merges, 1);
    h_events_free(ev, n);
    cr_assert_eq(h_counter(&H, "customers_merged"), 1);

    /* omnictl sees one customer with four identities and a conversation per channel. */
    char out[8192];
    const char *args[] = {"customer", "line:Ub1a2c3d4e5f60718293a4b5c6d7e8f90", "--json", NULL};
    cr_assert_eq(h_omnictl(&H, out, sizeof(out), args), 0, "%s", out);
    char want[128];
    snprintf(want, sizeof(want), "\"customer_id\":\"%s\"", e.customer_id);
    cr_assert(strstr(out, want), "%s", out);
    for (size_t i = 0; i < 4; i++) {
        snprintf(want, sizeof(want), "\"%s\"", ids[i]);
        cr_assert(strstr(out, want), "missing %s in %s", ids[i], out);
    }
    cr_assert(strstr(out, "\"channel\":\"phone\"") && strstr(out, "\"channel\":\"sns\"") &&
              strstr(out, "\"channel\":\"chat\"") && strstr(out, "\"channel\":\"email\""), "%s", out);
    omni_adapter_destroy(&ad);
}

Test(identity_graph, junk_identities_never_link)
{
    omni_adapter_t *ad = h_adapter(&H, "t-junk", CH(PHONE), NULL, NULL);
    h_ack_t a = send1(ad, CH(PHONE), "call-a", "phone:anonymous", NULL, "(voice call)");
    h_ack_t b = send1(ad, CH(PHONE), "call-b", "phone:anonymous", NULL, "(voice call)");
    cr_assert_str_neq(a.customer_id, b.customer_id, "two anonymous callers are not one customer");

    const char *tollfree[] = {"phone:0120-123-456", "email:null", NULL};
    h_ack_t c = send1(ad, CH(EMAIL), "<tf1@x>", "email:ichiro@example.com", tollfree, "toll-free in signature");
    h_ack_t d = send1(ad, CH(EMAIL), "<tf2@x>", "email:jiro@example.com", tollfree, "same toll-free number");
    cr_assert_str_neq(c.customer_id, d.customer_id, "a shared toll-free number does not merge people");
    char cust[64];
    h_customer_of(&H, "phone:+81120123456", cust, sizeof(cust));
    cr_assert_str_eq(cust, "", "junk identity stored as a link");
    cr_assert_geq(h_counter(&H, "identities_junk"), 4);
    omni_adapter_destroy(&ad);
}

Test(identity_graph, email_threads_by_in_reply_to_references_and_token)
{
    omni_adapter_t *ad = h_adapter(&H, "t-mail", CH(EMAIL), NULL, NULL);
    Omni__V1__InboundMessage m;
    Omni__V1__ThreadRefs t;
    h_ack_t first, reply, refs, token, fresh;

    h_msg(&m, CH(EMAIL), "orig@mail.example", "email:sony@example.com", NULL, "first");
    cr_assert_eq(h_send(ad, &m, &first, 5000), 0);

    /* A colleague answers on the thread: same conversation although another customer. */
    omni__v1__thread_refs__init(&t);
    t.in_reply_to = "orig@mail.example";
    h_msg(&m, CH(EMAIL), "r1@mail.example", "email:colleague@example.com", NULL, "reply");
    m.thread = &t;
    cr_assert_eq(h_send(ad, &m, &reply, 5000), 0);
    cr_assert_str_eq(reply.conversation_id, first.conversation_id);
    cr_assert_str_neq(reply.customer_id, first.customer_id);

    /* References right to left: the newest known id wins; unknown In-Reply-To falls through. */
    char *chain[] = {"unknown-old@x", "r1@mail.example", "unknown-new@x"};
    omni__v1__thread_refs__init(&t);
    t.in_reply_to = "not-ours@x";
    t.references = chain;
    t.n_references = 3;
    h_msg(&m, CH(EMAIL), "r2@mail.example", "email:third@example.com", NULL, "refs");
    m.thread = &t;
    cr_assert_eq(h_send(ad, &m, &refs, 5000), 0);
    cr_assert_str_eq(refs.conversation_id, first.conversation_id);

    /* Our reply address carries the conversation id as a token. */
    char *tokens[] = {first.conversation_id};
    omni__v1__thread_refs__init(&t);
    t.reply_tokens = tokens;
    t.n_reply_tokens = 1;
    h_msg(&m, CH(EMAIL), "r3@mail.example", "email:fourth@example.com", NULL, "token");
    m.thread = &t;
    cr_assert_eq(h_send(ad, &m, &token, 5000), 0);
    cr_assert_str_eq(token.conversation_id, first.conversation_id);

    /* No references: the sender's own open conversation, or a new one. */
    h_msg(&m, CH(EMAIL), "new@mail.example", "email:fifth@example.com", NULL, "fresh");
    cr_assert_eq(h_send(ad, &m, &fresh, 5000), 0);
    cr_assert_str_neq(fresh.conversation_id, first.conversation_id);
    omni_adapter_destroy(&ad);
}

/* Eight processes with their own SDK race on the same brand-new identities. */
Test(identity_graph, racing_clients_create_one_customer)
{
    enum { CLIENTS = 8, ROUNDS = 40 };
    pid_t pids[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        if ((pids[c] = fork()) == 0) {
            char id[32], pmid[64];
            snprintf(id, sizeof(id), "race-%d", c);
            omni_adapter_t *ad = h_adapter(&H, id, CH(CHAT), NULL, NULL);
            for (int r = 0; r < ROUNDS; r++) {
                /* Round r: person r shows up with email, phone and chat ids, each client
                 * knowing a different pair, so every merge order happens somewhere. */
                char email[64], phone[64], chat[64];
                snprintf(email, sizeof(email), "email:person%d@example.jp", r);
                snprintf(phone, sizeof(phone), "phone:+8190%08d", 10000000 + r);
                snprintf(chat, sizeof(chat), "chat:person-%d", r);
                const char *from = c % 3 == 0 ? email : c % 3 == 1 ? phone : chat;
                const char *also[] = {c % 2 ? email : chat, NULL};
                Omni__V1__InboundMessage m;
                snprintf(pmid, sizeof(pmid), "race-%d-%d", c, r);
                h_msg(&m, CH(CHAT), pmid, from, also, "race");
                if (omni_adapter_send(ad, &m, NULL) != 0)
                    _exit(2);
            }
            int rc = omni_adapter_flush(ad, 30000);
            omni_adapter_destroy(&ad);
            _exit(rc == 0 ? 0 : 3);
        }
    }
    for (int c = 0; c < CLIENTS; c++) {
        int st;
        waitpid(pids[c], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed (%d)", c, st);
    }
    for (int r = 0; r < ROUNDS; r++) {
        char email[64], phone[64], chat[64], ce[64], cp[64], cc[64];
        snprintf(email, sizeof(email), "email:person%d@example.jp", r);
        snprintf(phone, sizeof(phone), "phone:+8190%08d", 10000000 + r);
        snprintf(chat, sizeof(chat), "chat:person-%d", r);
        h_customer_of(&H, email, ce, sizeof(ce));
        h_customer_of(&H, phone, cp, sizeof(cp));
        h_customer_of(&H, chat, cc, sizeof(cc));
        cr_assert_str_neq(ce, "");
        cr_assert_str_eq(ce, cp, "person %d split: %s vs %s", r, ce, cp);
        cr_assert_str_eq(ce, cc, "person %d split: %s vs %s", r, ce, cc);
    }
    /* And every message is in the stream exactly once. */
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), msgs = 0;
    for (size_t i = 0; i < n; i++)
        msgs += ev[i]->kind_case == OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
    h_events_free(ev, n);
    cr_assert_eq(msgs, CLIENTS * ROUNDS);
}
