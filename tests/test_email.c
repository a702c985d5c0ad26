/* omni-email end to end: swaks (a real SMTP client) -> omni-email -> omni-broker -> Redis, read
 * back from the stream. A 250 must mean stored; a broker that is away must mean 451. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static h_env_t H;
static pid_t email_pid;
static int email_port;
static char email_log[256];

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Start omni-email on an ephemeral port; the port is read from its start-up line. */
static void email_start(const char *verdict_ms)
{
    snprintf(email_log, sizeof(email_log), "%s/email.log", H.dir);
    email_pid = fork();
    cr_assert(email_pid >= 0);
    if (email_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *f = freopen(email_log, "a", stderr);
        (void)f;
        const char *bin = env_or("OMNI_EMAIL_BIN", "omni-email");
        execl(bin, bin, "--listen", "127.0.0.1:0", "--broker", H.ingress, "--address", "support@example.com",
              "--verdict-timeout-ms", verdict_ms, (char *)NULL);
        _exit(127);
    }
    email_port = 0;
    for (int i = 0; i < 500 && !email_port; i++) {
        FILE *f = fopen(email_log, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "SMTP on 127.0.0.1:");
            if (p)
                email_port = atoi(p + 18);
        }
        if (f)
            fclose(f);
        if (!email_port)
            usleep(10000);
    }
    cr_assert_gt(email_port, 0, "omni-email did not start (see %s)", email_log);
}

static void setup(void)
{
    h_setup(&H);
    email_start("2000");
}

static void teardown(void)
{
    if (email_pid > 0) {
        kill(email_pid, SIGTERM);
        int st;
        waitpid(email_pid, &st, 0);
        email_pid = 0;
    }
    h_teardown(&H);
}

TestSuite(email, .init = setup, .fini = teardown, .timeout = 120);

/* Run swaks with extra args; its transcript goes to out. Returns its exit status. */
static int swaks(char *out, size_t outlen, const char *const *args)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char port[16];
        const char *argv[64];
        size_t n = 0;
        snprintf(port, sizeof(port), "%d", email_port);
        argv[n++] = "swaks";
        argv[n++] = "--server";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--timeout";
        argv[n++] = "30";
        for (size_t i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execvp("swaks", (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(pfd[0], out + len, outlen - 1 - len)) > 0 && len + 1 < outlen)
        len += (size_t)r;
    out[len] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static Omni__V1__StreamEvent *last_message(Omni__V1__StreamEvent ***ev, size_t *n)
{
    Omni__V1__StreamEvent *m = NULL;
    *n = h_events(&H, ev);
    for (size_t i = 0; i < *n; i++)
        if ((*ev)[i]->kind_case == OMNI__V1__STREAM_EVENT__KIND_MESSAGE)
            m = (*ev)[i];
    return m;
}

Test(email, a_japanese_mail_is_stored_before_its_250)
{
    static char out[65536];
    const char *args[] = {"--from", "Taro.Yamada@Example.JP", "--to", "support@example.com",
                          "--header", "Subject: =?ISO-2022-JP?B?GyRCJVElOSVvITwlSRsoQg==?= =?UTF-8?B?44GM44Ot44OD44Kv?=",
                          "--header", "Message-Id: <first-1@example.jp>",
                          "--add-header", "Content-Type: text/plain; charset=UTF-8",
                          "--body", "ログインできません。アカウントがロックされました。", NULL};
    cr_assert_eq(swaks(out, sizeof(out), args), 0, "%s", out);
    cr_assert(strstr(out, "<-  250 2.0.0 stored as"), "the 250 names the stored conversation: %s", out);
    Omni__V1__StreamEvent **ev;
    size_t n;
    Omni__V1__StreamEvent *m = last_message(&ev, &n);
    cr_assert_not_null(m, "a 250 means the message is in the stream");
    Omni__V1__InboundMessage *in = m->message->inbound;
    cr_assert_str_eq(in->from, "email:taro.yamada@example.jp");
    cr_assert_str_eq(in->subject, "パスワードがロック", "split encoded words, two charsets");
    cr_assert(strstr(in->text, "アカウントがロックされました"), "%s", in->text);
    cr_assert_str_eq(in->provider_message_id, "first-1@example.jp");
    cr_assert_str_eq(in->channel_account, "support@example.com");
    h_events_free(ev, n);
}

Test(email, replies_thread_by_in_reply_to_and_by_reply_address)
{
    static char out[65536];
    const char *first[] = {"--from", "hanako@example.jp", "--to", "support@example.com", "--header",
                           "Message-Id: <t-1@example.jp>", "--header", "Subject: billing", "--body", "請求が二重です",
                           NULL};
    cr_assert_eq(swaks(out, sizeof(out), first), 0, "%s", out);
    Omni__V1__StreamEvent **ev;
    size_t n;
    char conv[64];
    snprintf(conv, sizeof(conv), "%s", last_message(&ev, &n)->conversation_id);
    h_events_free(ev, n);
    /* The customer answers our (future) reply: In-Reply-To names the first mail. */
    const char *second[] = {"--from", "hanako@example.jp", "--to", "support@example.com", "--header",
                            "Message-Id: <t-2@example.jp>", "--header", "In-Reply-To: <t-1@example.jp>",
                            "--header", "Subject: Re: billing", "--body", "追加です", NULL};
    cr_assert_eq(swaks(out, sizeof(out), second), 0, "%s", out);
    cr_assert_str_eq(last_message(&ev, &n)->conversation_id, conv);
    h_events_free(ev, n);
    /* A mail from another address to our reply address of that conversation joins it too. */
    char to[128];
    snprintf(to, sizeof(to), "support+%s@example.com", conv);
    const char *third[] = {"--from", "hanako.work@example.com", "--to", to, "--header",
                           "Message-Id: <t-3@example.com>", "--header", "Subject: Re: billing", "--body", "会社から",
                           NULL};
    cr_assert_eq(swaks(out, sizeof(out), third), 0, "%s", out);
    cr_assert_str_eq(last_message(&ev, &n)->conversation_id, conv);
    h_events_free(ev, n);
}

Test(email, automated_mail_opens_no_conversation)
{
    static char out[65536];
    long long before = h_counter(&H, "conversations_opened");
    const char *vacation[] = {"--from", "ooo@example.jp", "--to", "support@example.com", "--header",
                              "Auto-Submitted: auto-replied", "--header", "Subject: 不在のお知らせ", "--body",
                              "12月31日まで不在です", NULL};
    cr_assert_eq(swaks(out, sizeof(out), vacation), 0, "%s", out);
    const char *bounce[] = {"--from", "<>", "--to", "support@example.com", "--header",
                            "From: Mail Delivery System <MAILER-DAEMON@example.jp>", "--header",
                            "Subject: Undelivered Mail Returned to Sender", "--body",
                            "This is the mail system. 550 5.1.1 <nobody@example.jp>: User unknown", NULL};
    cr_assert_eq(swaks(out, sizeof(out), bounce), 0, "%s", out);
    cr_assert_eq(h_counter(&H, "conversations_opened"), before, "neither opened a conversation");
}

Test(email, a_broker_that_is_away_means_451_then_the_retry_is_stored_once)
{
    static char out[65536];
    const char *args[] = {"--from", "later@example.jp", "--to", "support@example.com", "--header",
                          "Message-Id: <retry-1@example.jp>", "--body", "届いていますか", NULL};
    cr_assert_eq(h_broker_stop(&H, SIGKILL), SIGKILL + 128);
    int rc = swaks(out, sizeof(out), args);
    cr_assert_neq(rc, 0, "no 250 without the broker");
    cr_assert(strstr(out, "<** 451 4.4.7"), "a temporary failure, so the MTA retries: %s", out);
    h_broker_start(&H);
    /* The MTA retries: the SDK may already have delivered the first copy; either way it is one. */
    cr_assert_eq(swaks(out, sizeof(out), args), 0, "%s", out);
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev), msgs = 0;
    for (size_t i = 0; i < n; i++)
        msgs += ev[i]->kind_case == OMNI__V1__STREAM_EVENT__KIND_MESSAGE;
    cr_assert_eq(msgs, 1, "stored exactly once");
    h_events_free(ev, n);
}

/* Every file of the email corpus goes through real SMTP: customer mail is stored, automated
 * mail (bounces, feedback, auto-replies) opens nothing, and nothing crashes omni-email. */
Test(email, the_corpus_goes_through_smtp)
{
    static char out[262144];
    const char *root = env_or("OMNI_CORPUS", "../shared/corpus");
    static const char *const dirs[] = {"email/chatwoot", "email/sisimai/not", "email/sisimai/bsd"};
    char path[1024];
    size_t files = 0;
    for (size_t d = 0; d < 3; d++) {
        snprintf(path, sizeof(path), "%s/%s", root, dirs[d]);
        DIR *dir = opendir(path);
        if (!dir)
            cr_skip_test("corpus not found at %s (set OMNI_CORPUS)", path);
        struct dirent *e;
        size_t k = 0;
        while ((e = readdir(dir))) {
            if (!strstr(e->d_name, ".eml") || (d == 2 && k++ % 8)) /* every 8th bounce: the unit suite has all */
                continue;
            char file[1400], data[1500];
            snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
            snprintf(data, sizeof(data), "@%s", file);
            const char *args[] = {"--from", "corpus@example.net", "--to", "support@example.com", "--data", data, NULL};
            int rc = swaks(out, sizeof(out), args);
            cr_assert(rc == 0 || strstr(out, "<** 554"), "%s: neither stored nor refused cleanly: %s", file, out);
            files++;
        }
        closedir(dir);
    }
    cr_assert_gt(files, 20);
    cr_assert_eq(kill(email_pid, 0), 0, "omni-email survived the corpus");
    /* Conversations: only from the customer mails (chatwoot ones that are not automated, and the
     * two real mails of sisimai/not). */
    long long opened = h_counter(&H, "conversations_opened");
    cr_assert_gt(opened, 2);
    cr_assert_lt(opened, 16, "bounces and auto-replies opened conversations: %lld", opened);
}
