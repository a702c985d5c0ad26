/* /healthz (200 when Redis is up, else 503) and /metrics (Prometheus text) for operators.
 * libmicrohttpd runs without threads; the main loop calls it when its epoll fd is readable. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include <omni/omni.h>

#include "http.h"
#include "metrics.h"

struct http {
    struct MHD_Daemon *d;
    store_t *st;
    int port;
};

typedef struct {
    char *buf;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *name, uint64_t value)
{
    char line[160];
    int n = snprintf(line, sizeof(line), "# TYPE omni_%s counter\nomni_%s %llu\n", name, name,
                     (unsigned long long)value);
    if (n < 0 || t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

static void add_counter(const char *name, uint64_t value, void *ud) { text_add(ud, name, value); }

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_len, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    http_t *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, 405, "text/plain", "method not allowed\n", 19, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/healthz") == 0) {
        int up = store_state(h->st) == STORE_UP;
        return reply(c, up ? 200 : 503, "text/plain", up ? "ok\n" : "redis down\n", up ? 3 : 11,
                     MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/metrics") == 0) {
        text_t t = {0};
        metrics_each(add_counter, &t);
        text_add(&t, "stream_last_seq", store_last_seq(h->st));
        if (!t.buf)
            return reply(c, 500, "text/plain", "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
        return reply(c, 200, "text/plain; version=0.0.4", t.buf, t.len, MHD_RESPMEM_MUST_FREE);
    }
    return reply(c, 404, "text/plain", "not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

int http_new(const char *listen, store_t *st, http_t **out, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "bad HTTP address '%s' (want HOST:PORT)", listen);
        return OMNI_ECONFIG;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bad HTTP address '%s' (want an IPv4 HOST:PORT)", listen);
        return OMNI_ECONFIG;
    }
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    http_t *h = calloc(1, sizeof(*h));
    if (!h)
        return OMNI_ENOMEM;
    h->st = st;
    h->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen for HTTP on %s", listen);
        free(h);
        return OMNI_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return 0;
}

void http_destroy(http_t **ph)
{
    if (ph && *ph) {
        MHD_stop_daemon((*ph)->d);
        free(*ph);
        *ph = NULL;
    }
}

void http_pollitem(http_t *h, zmq_pollitem_t *it)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    *it = (zmq_pollitem_t){NULL, info ? info->epoll_fd : -1, ZMQ_POLLIN, 0};
}

int http_timeout_ms(http_t *h)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(h->d, &t) != MHD_YES)
        return -1;
    return t > 60000 ? 60000 : (int)t;
}

void http_run(http_t *h) { MHD_run(h->d); }
int http_port(const http_t *h) { return h->port; }
