/* omni-email: SMTP in (smtp.c), MIME (mail.c), the SDK out. A mail is answered 250 only after
 * the broker acked it durably; 451 when it cannot be (the sending MTA retries); automated mail
 * (auto-replies, bounces, feedback reports) never opens a conversation. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <omni/adapter.h>
#include <omni/loop.h>

#include "inbound.h"
#include "mail.h"
#include "smtp.h"


typedef struct app app_t;

typedef struct conn {
    app_t *app;
    int fd;
    smtp_session_t *s;
    char *out;
    size_t outlen, outcap;
    int closing;                  /* close once out is written */
    int64_t last_us;
    uint64_t req;                 /* request id of the message waiting for the broker, 0: none */
    int64_t verdict_timer;
    struct conn *next;
} conn_t;

struct app {
    omni_loop_t *loop;
    omni_adapter_t *ad;
    int lfd;
    conn_t *conns;
    size_t nconns;
    const char *address;
    size_t max_conns;
    int idle_s;
    int verdict_ms;               /* answer 451 if the broker has not acked by then */
    smtp_limits_t lim;
    unsigned long accepted, automated, refused, deferred;
};

static void conn_flush(conn_t *c);

static void conn_free(app_t *a, conn_t *c)
{
    for (conn_t **p = &a->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    omni_loop_del_fd(a->loop, c->fd);
    omni_loop_cancel(a->loop, c->verdict_timer);
    close(c->fd);
    smtp_session_destroy(&c->s);
    free(c->out);
    free(c);
    a->nconns--;
}

static void on_send(void *user, const char *buf, size_t len)
{
    conn_t *c = user;
    if (c->outlen + len > c->outcap) {
        size_t cap = (c->outlen + len) * 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            c->closing = 1; /* cannot answer: drop the connection rather than lie */
            return;
        }
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, buf, len);
    c->outlen += len;
}

static void on_close(void *user) { ((conn_t *)user)->closing = 1; }

static void verdict(conn_t *c, int code, const char *text)
{
    omni_loop_cancel(c->app->loop, c->verdict_timer);
    c->verdict_timer = 0;
    c->req = 0;
    smtp_session_data_result(c->s, code, text);
    conn_flush(c);
}

static void on_verdict_timeout(omni_loop_t *loop, void *user)
{
    (void)loop;
    conn_t *c = user;
    c->verdict_timer = 0;
    c->app->deferred++;
    /* The SDK still holds the message and delivers it later; the MTA's retry is then a
     * duplicate, acked at once with the original ids. */
    verdict(c, 451, "4.4.7 the broker did not confirm in time; try again later");
}

static void on_message(void *user, const char *mail_from, const char *const *rcpts, size_t n_rcpts, const char *data,
                       size_t len)
{
    conn_t *c = user;
    app_t *a = c->app;
    mail_t *m = NULL;
    mail_limits_t ml = {.max_bytes = a->lim.max_message, .max_text_bytes = 200 * 1024};
    /* The envelope sender counts too: a null sender <> is automated whatever the headers say. */
    int prc = mail_parse_envelope((const uint8_t *)data, len, mail_from, &ml, &m);
    if (prc != 0) {
        a->refused++;
        smtp_session_data_result(c->s, prc == OMNI_ETOOBIG ? 552 : 554,
                                 prc == OMNI_ETOOBIG ? "5.3.4 message too complex or too big"
                                                     : "5.6.0 not a parsable message");
        return;
    }
    if (m->kind != MAIL_CUSTOMER) {
        /* Never a conversation and never an auto-acknowledgement: no mail loops. */
        a->automated++;
        fprintf(stderr, "omni-email: %s from <%s> (%s): not a conversation\n",
                m->kind == MAIL_BOUNCE ? "bounce" : m->kind == MAIL_FEEDBACK ? "feedback report" : "auto-reply",
                mail_from, m->why ? m->why : "");
        smtp_session_data_result(c->s, 250, "2.0.0 automated message noted");
        mail_free(&m);
        return;
    }
    Omni__V1__InboundMessage msg;
    inbound_buf_t buf;
    int rc = inbound_build(m, a->address, rcpts, n_rcpts, data, len, &msg, &buf);
    if (rc == 0)
        rc = omni_adapter_send(a->ad, &msg, &c->req);
    inbound_clear(&buf);
    mail_free(&m);
    if (rc == 0) {
        c->verdict_timer = omni_loop_timer(a->loop, a->verdict_ms, on_verdict_timeout, c);
        return;
    }
    c->req = 0;
    if (rc == OMNI_EFULL) {
        a->deferred++;
        smtp_session_data_result(c->s, 451, "4.3.2 busy; try again later");
    } else {
        a->refused++;
        smtp_session_data_result(c->s, rc == OMNI_ETOOBIG ? 552 : 554,
                                 rc == OMNI_ETOOBIG ? "5.3.4 message too big for the broker"
                                                    : "5.6.0 no usable From address");
    }
}

static void on_ack(omni_adapter_t *ad, const omni_ack_t *ack, void *user)
{
    (void)ad;
    app_t *a = user;
    char text[256];
    for (conn_t *c = a->conns; c; c = c->next) {
        if (c->req != ack->request_id)
            continue;
        if (ack->accepted) {
            a->accepted++;
            snprintf(text, sizeof(text), "2.0.0 stored as %s seq %llu%s", ack->conversation_id,
                     (unsigned long long)ack->seq, ack->duplicate ? " (duplicate)" : "");
            verdict(c, 250, text);
        } else {
            a->refused++;
            snprintf(text, sizeof(text), "5.6.0 refused by the broker: %s", ack->detail);
            verdict(c, 554, text);
        }
        return;
    }
}

static void conn_flush(conn_t *c)
{
    while (c->outlen) {
        ssize_t n = write(c->fd, c->out, c->outlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) { /* peer gone */
            c->outlen = 0;
            c->closing = 1;
            break;
        }
        memmove(c->out, c->out + n, c->outlen - (size_t)n);
        c->outlen -= (size_t)n;
    }
    if (c->closing && !c->outlen) {
        conn_free(c->app, c);
        return;
    }
    /* While a mail waits for the broker's verdict, the client's next commands stay in the
     * socket (back-pressure) instead of piling up in the session. */
    short ev = (short)((smtp_session_waiting(c->s) ? 0 : POLLIN) | (c->outlen ? POLLOUT : 0));
    omni_loop_set_events(c->app->loop, c->fd, ev);
}

static void on_conn_io(omni_loop_t *loop, int fd, short revents, void *user)
{
    (void)loop;
    (void)fd;
    conn_t *c = user;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n > 0) {
            c->last_us = omni_mono_us();
            smtp_session_feed(c->s, buf, (size_t)n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->outlen = 0; /* the client left: a pending verdict has nobody to go to */
            c->closing = 1;
        }
    }
    conn_flush(c);
}

static void on_accept(omni_loop_t *loop, int fd, short revents, void *user)
{
    (void)revents;
    app_t *a = user;
    int cfd;
    while ((cfd = accept(fd, NULL, NULL)) >= 0) {
        fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
        conn_t *c = a->nconns < a->max_conns ? calloc(1, sizeof(*c)) : NULL;
        smtp_callbacks_t cb = {.user = c, .send = on_send, .message = on_message, .close = on_close};
        if (!c || omni_loop_add_fd(loop, cfd, POLLIN, on_conn_io, c) != 0) {
            static const char busy[] = "421 4.3.2 too many connections, try again later\r\n";
            if (write(cfd, busy, sizeof(busy) - 1) < 0) { /* best effort */
            }
            close(cfd);
            free(c);
            continue;
        }
        *c = (conn_t){.app = a, .fd = cfd, .last_us = omni_mono_us(), .next = a->conns};
        a->conns = c;
        a->nconns++;
        if (smtp_session_new(&a->lim, &cb, &c->s) != 0)
            c->closing = 1;
        conn_flush(c);
    }
}

/* Once a second: connections idle beyond the limit get a 421 and are closed. */
static void on_tick(omni_loop_t *loop, void *user)
{
    app_t *a = user;
    int64_t now = omni_mono_us();
    for (conn_t *c = a->conns, *next; c; c = next) {
        next = c->next;
        if (!c->req && now - c->last_us > (int64_t)a->idle_s * 1000000) {
            smtp_session_shutdown(c->s, "4.4.2 idle too long");
            conn_flush(c);
        }
    }
    omni_loop_timer(loop, 1000, on_tick, a);
}

/* Binds HOST:PORT (port 0: any; the chosen one is written back into bound). */
static int listen_on(const char *hostport, char *bound, size_t boundlen)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int one = 1, fd;
    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    snprintf(bound, boundlen, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: omni-email [options]\n\n"
               "SMTP in for the omni broker: each mail is acknowledged 250 only once the broker has it.\n\n"
               "  --listen HOST:PORT       SMTP listener (default 127.0.0.1:2525)\n"
               "  --broker ENDPOINT        broker ingress (default tcp://127.0.0.1:5560)\n"
               "  --address ADDR           our mailbox, e.g. support@example.com (the account; reply\n"
               "                           addresses ADDR's local part + \"+<conversation>\")\n"
               "  --adapter-id ID          this instance (default email-1)\n"
               "  --hostname NAME          in the SMTP greeting (default localhost)\n"
               "  --max-connections N      (default 256)\n"
               "  --idle-timeout S         seconds before an idle connection is closed (default 300)\n"
               "  --max-message-bytes N    SIZE advertised and enforced (default 26214400)\n"
               "  --verdict-timeout-ms N   answer 451 when the broker has not acked by then (default\n"
               "                           30000; an MTA waits 10 minutes for the DATA reply)\n"
               "  --help, --version\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'}, {"broker", required_argument, 0, 'b'},
        {"address", required_argument, 0, 'a'}, {"adapter-id", required_argument, 0, 'i'},
        {"hostname", required_argument, 0, 'H'}, {"max-connections", required_argument, 0, 'c'},
        {"idle-timeout", required_argument, 0, 't'}, {"max-message-bytes", required_argument, 0, 'm'},
        {"verdict-timeout-ms", required_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *listen_addr = "127.0.0.1:2525", *broker = "tcp://127.0.0.1:5560", *id = "email-1";
    app_t a = {.address = "support@example.com", .max_conns = 256, .idle_s = 300, .verdict_ms = 30000, .lfd = -1};
    int o, rc = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen_addr = optarg; break;
        case 'b': broker = optarg; break;
        case 'a': a.address = optarg; break;
        case 'i': id = optarg; break;
        case 'H': a.lim.hostname = optarg; break;
        case 'c': a.max_conns = strtoul(optarg, NULL, 10); break;
        case 't': a.idle_s = atoi(optarg); break;
        case 'm': a.lim.max_message = strtoul(optarg, NULL, 10); break;
        case 'v': a.verdict_ms = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("omni-email %s\n", OMNI_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !strchr(a.address, '@') || !a.max_conns || a.idle_s <= 0 || a.verdict_ms <= 0) {
        fprintf(stderr, "omni-email: bad arguments (see --help)\n");
        return 2;
    }
    omni_adapter_opts_t ao;
    const char *accounts[] = {a.address, NULL};
    omni_adapter_opts_init(&ao);
    ao.broker = broker;
    ao.adapter_id = id;
    ao.channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    ao.accounts = accounts;
    ao.on_ack = on_ack;
    ao.user = &a;
    if (omni_adapter_new(&ao, &a.ad) != 0) {
        fprintf(stderr, "omni-email: cannot use broker endpoint '%s'\n", broker);
        return 1;
    }
    char bound[300];
    if ((a.lfd = listen_on(listen_addr, bound, sizeof(bound))) < 0) {
        fprintf(stderr, "omni-email: cannot listen on %s: %s\n", listen_addr, strerror(errno));
        goto out;
    }
    if (omni_loop_new(&a.loop) != 0 || omni_loop_add_adapter(a.loop, a.ad) != 0 ||
        omni_loop_add_fd(a.loop, a.lfd, POLLIN, on_accept, &a) != 0 || omni_loop_timer(a.loop, 1000, on_tick, &a) < 0) {
        fprintf(stderr, "omni-email: out of memory\n");
        goto out;
    }
    fprintf(stderr, "omni-email %s: SMTP on %s for %s, broker %s\n", OMNI_VERSION, bound, a.address, broker);
    if (omni_loop_run(a.loop) != 0)
        goto out;
    /* Verdicts the broker still owes: wait a little for them, then 421 whoever is left. */
    omni_adapter_flush(a.ad, 3000);
    while (omni_adapter_process(a.ad) > 0) {
    }
    rc = 0;
out:
    while (a.conns) {
        if (a.conns->s)
            smtp_session_shutdown(a.conns->s, "4.3.2 shutting down");
        if (a.conns->outlen && write(a.conns->fd, a.conns->out, a.conns->outlen) < 0) {
            /* best effort: the client is going away anyway */
        }
        conn_free(&a, a.conns);
    }
    fprintf(stderr, "omni-email: stopped (%lu stored, %lu automated, %lu refused, %lu deferred)\n", a.accepted,
            a.automated, a.refused, a.deferred);
    if (a.lfd >= 0)
        close(a.lfd);
    omni_loop_destroy(&a.loop);
    omni_adapter_destroy(&a.ad);
    return rc;
}
