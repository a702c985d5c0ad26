/* Integration-test harness: real redis-server and omni-broker processes in a temp dir.
 * Readiness is polled (PING, control status), never slept on. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>
#include <omni/v1/control.pb-c.h>

#include "harness.h"

#define STREAM_KEY "omni:{default}:stream"

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t spawn(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* If the test process dies (crash, timeout kill), its servers die with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

redisContext *h_redis(const h_env_t *h)
{
    struct timeval tv = {2, 0};
    return redisConnectUnixWithTimeout(h->redis_sock, tv);
}

void h_redis_start(h_env_t *h)
{
    char log[256];
    snprintf(log, sizeof(log), "%s/redis.log", h->dir);
    const char *argv[] = {"redis-server", "--port", "0", "--unixsocket", h->redis_sock, "--dir", h->dir,
                          "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                          NULL};
    h->redis_pid = spawn(argv, log);
    for (int i = 0; i < 500; i++) {
        redisContext *c = h_redis(h);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return;
        } else if (c) {
            redisFree(c);
        }
        msleep(10);
    }
    cr_assert_fail("redis-server did not come up (see %s)", log);
}

void h_redis_stop(h_env_t *h, int sig)
{
    if (h->redis_pid > 0) {
        kill(h->redis_pid, sig);
        waitpid(h->redis_pid, NULL, 0);
        h->redis_pid = 0;
    }
}

/* One status round trip on the control endpoint (over CURVE when server_pub is given);
 * 1 if the broker answered. */
static int control_alive_curve(const h_env_t *h, const char *server_pub, const char *client_pub,
                               const char *client_sec, int timeout_ms)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, ok = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (server_pub) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, client_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, client_sec, 40);
    }
    zmq_connect(s, h->control);
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__StatusRequest sr = OMNI__V1__STATUS_REQUEST__INIT;
    req.id = 1;
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_STATUS;
    req.status = &sr;
    uint8_t buf[64];
    size_t len = omni__v1__control_request__pack(&req, buf);
    zmq_send(s, buf, len, 0);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) > 0)
        ok = 1;
    zmq_close(s);
    zmq_ctx_term(ctx);
    return ok;
}

static int control_alive(const h_env_t *h, int timeout_ms)
{
    return control_alive_curve(h, NULL, NULL, NULL, timeout_ms);
}

int h_broker_spawn(h_env_t *h, const char *const *extra, char *err, size_t errlen)
{
    char log[256];
    snprintf(log, sizeof(log), "%s/broker.log", h->dir);
    const char *argv[32] = {env_or("OMNI_BROKER_BIN", "omni-broker"), "--redis", h->redis_url, "--ingress",
                            h->ingress, "--control", h->control, "--stream", h->stream, "--agents", h->agents,
                            "--log-level", "debug", "--http", "127.0.0.1:0"};
    int a = 15;
    if (h->config[0]) {
        argv[a++] = "--config";
        argv[a++] = h->config;
    }
    for (int i = 0; extra && extra[i] && a < 31; i++)
        argv[a++] = extra[i];
    argv[a] = NULL;
    unlink(log);
    h->broker_pid = spawn(argv, log);
    /* A broker that refuses to start exits at once; report its status and its stderr. */
    for (int i = 0; i < 100; i++) {
        int st;
        if (waitpid(h->broker_pid, &st, WNOHANG) == h->broker_pid) {
            h->broker_pid = 0;
            if (err) {
                FILE *f = fopen(log, "r");
                size_t n = f ? fread(err, 1, errlen - 1, f) : 0;
                err[n] = 0;
                if (f)
                    fclose(f);
            }
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        msleep(10);
    }
    return -1;
}

void h_broker_start(h_env_t *h)
{
    char err[1024] = "";
    int rc = h_broker_spawn(h, NULL, err, sizeof(err));
    cr_assert_eq(rc, -1, "omni-broker exited with %d: %s", rc, err);
    for (int i = 0; i < 50; i++)
        if (control_alive(h, 200))
            return;
    cr_assert_fail("omni-broker did not answer on %s", h->control);
}

int h_broker_stop(h_env_t *h, int sig)
{
    int st = 0;
    if (h->broker_pid > 0) {
        kill(h->broker_pid, sig);
        waitpid(h->broker_pid, &st, 0);
        h->broker_pid = 0;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void h_setup(h_env_t *h)
{
    h_prepare(h);
    h_redis_start(h);
    h_broker_start(h);
}

void h_teardown(h_env_t *h)
{
    h_broker_stop(h, SIGKILL);
    h_redis_stop(h, SIGKILL);
    if (h->dir[0] && !getenv("OMNI_TEST_KEEP")) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->dir);
    }
}

/* Where h_send wants the next ack copied (adapters made with cb == NULL report here). */
static h_ack_t *pending_ack;

static void copy_ack(omni_adapter_t *ad, const omni_ack_t *a, void *user)
{
    (void)ad;
    (void)user;
    h_ack_t *out = pending_ack;
    if (!out)
        return;
    out->accepted = a->accepted;
    out->duplicate = a->duplicate;
    out->reason = a->reason;
    out->seq = a->seq;
    snprintf(out->customer_id, sizeof(out->customer_id), "%s", a->customer_id);
    snprintf(out->conversation_id, sizeof(out->conversation_id), "%s", a->conversation_id);
    snprintf(out->detail, sizeof(out->detail), "%s", a->detail);
}

/* Test timings: fast resends so failure paths finish within a test's time. */
void h_adapter_opts(omni_adapter_opts_t *o, const h_env_t *h, const char *id, Omni__V1__Channel ch)
{
    omni_adapter_opts_init(o);
    o->broker = h->ingress;
    o->adapter_id = id;
    o->channel = ch;
    o->ack_timeout_ms = 300;
    o->backoff_max_ms = 1000;
    o->heartbeat_ms = 300;
    o->outbox_max = 20000;
    o->on_ack = copy_ack;
}

omni_adapter_t *h_adapter(const h_env_t *h, const char *id, Omni__V1__Channel ch, omni_ack_cb cb, void *user)
{
    omni_adapter_opts_t o;
    omni_adapter_t *ad = NULL;
    h_adapter_opts(&o, h, id, ch);
    if (cb)
        o.on_ack = cb;
    o.user = user;
    cr_assert_eq(omni_adapter_new(&o, &ad), 0);
    return ad;
}

int h_send(omni_adapter_t *ad, const Omni__V1__InboundMessage *m, h_ack_t *ack, int timeout_ms)
{
    memset(ack, 0, sizeof(*ack));
    pending_ack = ack;
    ack->reason = -1;
    int rc = omni_adapter_send(ad, m, NULL);
    if (rc)
        return rc;
    int64_t end = omni_mono_us() + (int64_t)timeout_ms * 1000;
    while (omni_adapter_pending(ad) > 0 && omni_mono_us() < end)
        omni_adapter_poll(ad, 50);
    pending_ack = NULL;
    return omni_adapter_pending(ad) ? OMNI_ETIMEDOUT : 0;
}

void h_msg(Omni__V1__InboundMessage *m, Omni__V1__Channel ch, const char *pmid, const char *from, const char **also,
           const char *text)
{
    omni__v1__inbound_message__init(m);
    m->channel = ch;
    m->provider_message_id = (char *)pmid;
    m->from = (char *)from;
    m->text = (char *)(text ? text : "");
    size_t n = 0;
    while (also && also[n])
        n++;
    m->also = (char **)also;
    m->n_also = n;
    if (ch == OMNI__V1__CHANNEL__CHANNEL_SNS)
        m->provider = (char *)(strncmp(from, "line:", 5) == 0 ? "line" : strncmp(from, "x:", 2) == 0 ? "x" : "messenger");
}

int h_omnictl(const h_env_t *h, char *out, size_t outlen, const char *const *args)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        const char *argv[40] = {env_or("OMNICTL_BIN", "omnictl"), "--control", h->control, "--timeout", "3000"};
        int a = 5;
        for (int i = 0; args[i] && a < 39; i++)
            argv[a++] = args[i];
        argv[a] = NULL;
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    for (;;) { /* read to EOF even past outlen, or a chatty child blocks on a full pipe */
        r = n < outlen - 1 ? read(pfd[0], out + n, outlen - 1 - n) : read(pfd[0], sink, sizeof(sink));
        if (r <= 0)
            break;
        if (n < outlen - 1)
            n += (size_t)r;
    }
    out[n] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

size_t h_events(const h_env_t *h, Omni__V1__StreamEvent ***out)
{
    redisContext *c = h_redis(h);
    cr_assert(c && !c->err, "redis connect");
    redisReply *r = redisCommand(c, "XRANGE %s - +", STREAM_KEY);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "XRANGE failed");
    Omni__V1__StreamEvent **evs = calloc(r->elements + 1, sizeof(*evs));
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        cr_assert_eq(f->elements, 2);
        evs[n] = omni__v1__stream_event__unpack(NULL, f->element[1]->len, (uint8_t *)f->element[1]->str);
        cr_assert(evs[n], "stream entry %zu is not a StreamEvent", i);
        n++;
    }
    freeReplyObject(r);
    redisFree(c);
    *out = evs;
    return n;
}

void h_events_free(Omni__V1__StreamEvent **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        omni__v1__stream_event__free_unpacked(evs[i], NULL);
    free(evs);
}

long long h_counter(const h_env_t *h, const char *name)
{
    static char out[65536];
    const char *args[] = {"status", "--json", NULL};
    if (h_omnictl(h, out, sizeof(out), args) != 0)
        return -1;
    char key[96];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(out, key);
    return p ? atoll(p + strlen(key)) : 0;
}

void h_customer_of(const h_env_t *h, const char *identity, char *out, size_t outlen)
{
    redisContext *c = h_redis(h);
    cr_assert(c && !c->err);
    redisReply *r = redisCommand(c, "GET omni:{default}:ident:%s", identity);
    snprintf(out, outlen, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

/* ---- appended for the security suite: configs and CURVE ---- */

void h_prepare(h_env_t *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "%s/omni-test.XXXXXX", env_or("TMPDIR", "/tmp"));
    cr_assert(mkdtemp(h->dir), "mkdtemp: %s", strerror(errno));
    snprintf(h->redis_sock, sizeof(h->redis_sock), "%s/redis.sock", h->dir);
    snprintf(h->redis_url, sizeof(h->redis_url), "unix://%s", h->redis_sock);
    snprintf(h->ingress, sizeof(h->ingress), "ipc://%s/ingress", h->dir);
    snprintf(h->control, sizeof(h->control), "ipc://%s/control", h->dir);
    snprintf(h->stream, sizeof(h->stream), "ipc://%s/stream", h->dir);
    snprintf(h->agents, sizeof(h->agents), "ipc://%s/agents", h->dir);
}

void h_write_config(h_env_t *h, const char *yaml)
{
    snprintf(h->config, sizeof(h->config), "%s/omni.yaml", h->dir);
    FILE *f = fopen(h->config, "w");
    cr_assert(f, "cannot write %s: %s", h->config, strerror(errno));
    fputs(yaml, f);
    cr_assert_eq(fclose(f), 0);
}

/* control_alive over CURVE with the given keys. */

void h_setup_with_config(h_env_t *h, const char *yaml, const char *server_pub, const char *client_pub,
                         const char *client_sec)
{
    h_prepare(h);
    h_redis_start(h);
    h_write_config(h, yaml);
    if (!server_pub || !client_pub || !client_sec) {
        h_broker_start(h);
        return;
    }
    char err[1024] = "";
    int rc = h_broker_spawn(h, NULL, err, sizeof(err));
    cr_assert_eq(rc, -1, "omni-broker exited with %d: %s", rc, err);
    for (int i = 0; i < 50; i++)
        if (control_alive_curve(h, server_pub, client_pub, client_sec, 200))
            return;
    cr_assert_fail("omni-broker did not answer over CURVE on %s", h->control);
}

omni_adapter_t *h_adapter_curve(const h_env_t *h, const char *id, Omni__V1__Channel ch, const char *server_pub,
                                const char *client_pub, const char *client_sec)
{
    omni_adapter_opts_t o;
    omni_adapter_t *ad = NULL;
    h_adapter_opts(&o, h, id, ch);
    o.curve_server_key = server_pub;
    o.curve_public_key = client_pub;
    o.curve_secret_key = client_sec;
    cr_assert_eq(omni_adapter_new(&o, &ad), 0);
    return ad;
}

pid_t h_agent_spawn(const h_env_t *h, const char *name, const char *const *args)
{
    char log[256];
    const char *argv[64];
    size_t n = 0;
    snprintf(log, sizeof(log), "%s/%s.out", h->dir, name);
    unlink(log);
    argv[n++] = env_or("OMNICTL_BIN", "omnictl");
    argv[n++] = "agent";
    argv[n++] = "--agents";
    argv[n++] = h->agents;
    argv[n++] = "--json";
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return spawn(argv, log);
}
