/* omni-broker: flags and config, then one single-threaded zmq_poll loop that owns all state:
 * ingress ROUTER, control ROUTER, stream PUB, the ZAP handler and the async Redis link. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/omni.h>

#include "config.h"
#include "control.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "routecfg.h"
#include "routing.h"
#include "store.h"
#include "zap.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: omni-broker [options]\n"
            "\n"
            "The omni broker: validates channel messages, dedupes customer identity in Redis,\n"
            "appends the protobuf conversation stream, acks adapters once it is durable, and\n"
            "routes every conversation to a human agent (queues, skills, capacity, SLA).\n"
            "\n"
            "  --config FILE        YAML configuration (see docs/configuration.md)\n"
            "  --redis URL          redis://host:port/db or unix:///path.sock (default redis://127.0.0.1:6379/0)\n"
            "  --ingress ENDPOINT   adapters connect here (default tcp://127.0.0.1:5560)\n"
            "  --agents ENDPOINT    agents connect here (default tcp://127.0.0.1:5561)\n"
            "  --stream ENDPOINT    stream PUB socket (default tcp://127.0.0.1:5562)\n"
            "  --control ENDPOINT   omnictl connects here (default tcp://127.0.0.1:5563)\n"
            "  --http HOST:PORT     HTTP /metrics and /healthz (default 127.0.0.1:8080; port 0 = any)\n"
            "  --tenant NAME        tenant of this broker's keys (default \"default\")\n"
            "  --log-level LEVEL    debug|info|warn|error (default info)\n"
            "  --log-format FORMAT  text|json (default text)\n"
            "  --help, --version\n"
            "\n"
            "Flags override the config file. Exit status 0 after SIGTERM/SIGINT, 1 on bad config or\n"
            "unreachable dependencies (with one line on stderr).\n");
}

static int fail(const char *what)
{
    fprintf(stderr, "omni-broker: %s\n", what);
    return 1;
}

static int parse_args(int argc, char **argv, config_t *cfg, const char **config_path)
{
    enum { O_CONFIG = 1, O_REDIS, O_INGRESS, O_AGENTS, O_STREAM, O_CONTROL, O_HTTP, O_TENANT, O_LEVEL, O_FORMAT,
           O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"config", required_argument, 0, O_CONFIG}, {"redis", required_argument, 0, O_REDIS},
        {"ingress", required_argument, 0, O_INGRESS}, {"agents", required_argument, 0, O_AGENTS},
        {"stream", required_argument, 0, O_STREAM}, {"control", required_argument, 0, O_CONTROL},
        {"http", required_argument, 0, O_HTTP}, {"tenant", required_argument, 0, O_TENANT},
        {"log-level", required_argument, 0, O_LEVEL}, {"log-format", required_argument, 0, O_FORMAT},
        {"help", no_argument, 0, O_HELP}, {"version", no_argument, 0, O_VERSION}, {0, 0, 0, 0},
    };
    char err[512];
    const char *config = NULL;
    int o;
    /* Two passes: the file first, so that flags override it whatever their order. */
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == O_HELP) {
            usage(stdout);
            exit(0);
        }
        if (o == O_VERSION) {
            printf("omni-broker %s\n", OMNI_VERSION);
            exit(0);
        }
        if (o == O_CONFIG)
            config = optarg;
        if (o == '?') {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "omni-broker: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (config && config_load_file(cfg, config, err, sizeof(err)) != 0)
        return fail(err);
    *config_path = config;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char **f = o == O_REDIS ? &cfg->redis : o == O_INGRESS ? &cfg->ingress : o == O_AGENTS ? &cfg->agents
                 : o == O_STREAM ? &cfg->stream : o == O_CONTROL ? &cfg->control : o == O_HTTP ? &cfg->http
                 : o == O_TENANT ? &cfg->tenant : o == O_LEVEL ? &cfg->log_level : o == O_FORMAT ? &cfg->log_format
                 : NULL;
        if (f && config_set_str(f, optarg) != 0)
            return fail("out of memory");
    }
    if (config_validate(cfg, err, sizeof(err)) != 0)
        return fail(err);
    return 0;
}

/* Bind one server socket, with CURVE when the config has server keys. */
static void *bind_socket(void *zctx, int type, const char *name, const char *endpoint, const config_t *cfg,
                         char *err, size_t errlen)
{
    void *s = zmq_socket(zctx, type);
    int zero = 0, one = 1;
    if (!s) {
        snprintf(err, errlen, "cannot create %s socket: %s", name, zmq_strerror(errno));
        return NULL;
    }
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (type == ZMQ_ROUTER) {
        int hwm = 100000;
        /* Frames above twice the limit are not worth a nack: libzmq drops the peer before
         * buffering them, which bounds what one client can make us allocate. */
        int64_t maxmsg = (int64_t)cfg->max_frame_bytes * 2 + 65536;
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    }
    if (cfg->curve_secret &&
        (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, cfg->curve_secret, 40) ||
         zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "omni", 4))) {
        snprintf(err, errlen, "%s: cannot enable CURVE: %s", name, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s %s: %s", name, endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int main(int argc, char **argv)
{
    config_t cfg;
    char err[512];
    int rc = 1;
    void *zctx = NULL, *ingress = NULL, *control = NULL, *pub = NULL, *agents = NULL;
    const char *config_path = NULL;
    routecfg_t *rcfg = NULL;
    routing_t *rt = NULL;
    store_t *st = NULL;
    ingest_t *in = NULL;
    control_t *ctl = NULL;
    zap_t *zap = NULL;
    http_t *http = NULL;

    if (config_defaults(&cfg) != 0)
        return fail("out of memory");
    if ((rc = parse_args(argc, argv, &cfg, &config_path)) != 0)
        goto out;
    if (routecfg_load(config_path, &rcfg, err, sizeof(err)) != 0) {
        rc = fail(err);
        goto out;
    }
    rc = 1;
    if (log_init(cfg.log_level, cfg.log_format) != 0) {
        fail("bad log level or format");
        goto out;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (store_new(&cfg, &st, err, sizeof(err)) != 0) {
        fail(err);
        goto out;
    }
    zctx = zmq_ctx_new();
    if (cfg.curve_secret && zap_new(zctx, &cfg, &zap) != 0) {
        fail("cannot start the ZAP handler (bad client key?)");
        goto out;
    }
    if (!(ingress = bind_socket(zctx, ZMQ_ROUTER, "ingress", cfg.ingress, &cfg, err, sizeof(err))) ||
        !(control = bind_socket(zctx, ZMQ_ROUTER, "control", cfg.control, &cfg, err, sizeof(err))) ||
        !(pub = bind_socket(zctx, ZMQ_PUB, "stream", cfg.stream, &cfg, err, sizeof(err))) ||
        !(agents = bind_socket(zctx, ZMQ_ROUTER, "agents", cfg.agents, &cfg, err, sizeof(err)))) {
        fail(err);
        goto out;
    }
    if (http_new(cfg.http, st, &http, err, sizeof(err)) != 0) {
        fail(err);
        goto out;
    }
    int64_t started_ms = omni_now_ms();
    if (ingest_new(&cfg, st, ingress, pub, started_ms, &in) != 0 ||
        control_new(&cfg, st, in, control, started_ms, &ctl) != 0) {
        fail("out of memory");
        goto out;
    }
    /* Routing is rebuilt before the first message is read, so nothing queued before a crash
     * is routed after anything new. */
    if (routing_new(&cfg, rcfg, st, agents, pub, started_ms, &rt, err, sizeof(err)) != 0 ||
        routing_recover(rt, err, sizeof(err)) != 0) {
        rcfg = NULL; /* routing_new owns it, even on failure */
        fail(err);
        goto out;
    }
    rcfg = NULL;
    ingest_set_routing(in, rt);
    routing_set_ingest(rt, in);
    control_set_routing(ctl, rt);
    LOG_INFO("omni-broker %s: ingress %s, agents %s, control %s, stream %s, http port %d, redis %s, tenant %s%s",
             OMNI_VERSION, cfg.ingress, cfg.agents, cfg.control, cfg.stream, http_port(http), cfg.redis, cfg.tenant,
             cfg.curve_secret ? ", CURVE on" : "");

    int64_t next_tick = omni_mono_us();
    while (!stopping) {
        enum { I_INGRESS, I_CONTROL, I_AGENTS, I_REDIS, I_HTTP, I_ZAP };
        zmq_pollitem_t items[6] = {
            {ingress, 0, ingest_can_read(in) ? ZMQ_POLLIN : 0, 0},
            {control, 0, ZMQ_POLLIN, 0},
            {agents, 0, ZMQ_POLLIN, 0},
        };
        store_pollitem(st, &items[I_REDIS]);
        http_pollitem(http, &items[I_HTTP]);
        if (zap)
            items[I_ZAP] = (zmq_pollitem_t){zap_socket(zap), 0, ZMQ_POLLIN, 0};
        int timeout = (int)((next_tick - omni_mono_us()) / 1000);
        int t2 = store_timeout_ms(st), t3 = http_timeout_ms(http), t4 = routing_timeout_ms(rt, omni_now_ms());
        if (timeout < 0)
            timeout = 0;
        if (t2 >= 0 && t2 < timeout)
            timeout = t2;
        if (t3 >= 0 && t3 < timeout)
            timeout = t3;
        if (t4 >= 0 && t4 < timeout)
            timeout = t4;
        int n = zmq_poll(items, zap ? 6 : 5, timeout);
        if (n < 0 && errno != EINTR) {
            LOG_ERROR("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (n > 0) {
            if (items[I_REDIS].revents)
                store_handle(st, items[I_REDIS].revents);
            if (zap && items[I_ZAP].revents)
                zap_handle(zap);
            if (items[I_INGRESS].revents & ZMQ_POLLIN)
                ingest_read(in);
            if (items[I_CONTROL].revents & ZMQ_POLLIN)
                control_read(ctl);
            if (items[I_AGENTS].revents & ZMQ_POLLIN)
                routing_read(rt);
            ingest_flush(in);
        }
        routing_tick(rt, omni_now_ms());
        routing_flush(rt);
        if (n > 0 && items[I_HTTP].revents)
            http_run(http);
        if (omni_mono_us() >= next_tick) {
            http_run(http); /* its connection timeouts */
            store_tick(st);
            ingest_tick(in);
            next_tick = omni_mono_us() + 200 * 1000;
        }
    }

    /* Finish what Redis already has, so its acks still go out; bounded at 3 s. */
    LOG_INFO("omni-broker: shutting down (%zu message(s) waiting on Redis)", ingest_inflight(in));
    int64_t deadline = omni_mono_us() + 3000 * 1000;
    ingest_flush(in);
    routing_flush(rt);
    while ((store_pending(st) > 0 || ingest_queued(in) > 0 || routing_pending(rt) > 0) &&
           store_state(st) != STORE_DOWN && omni_mono_us() < deadline) {
        zmq_pollitem_t it;
        store_pollitem(st, &it);
        if (zmq_poll(&it, 1, 100) > 0)
            store_handle(st, it.revents);
        ingest_flush(in);
        routing_flush(rt);
    }
    ingest_abandon(in);
    /* Give the last acks and nacks a moment on the wire (LINGER was 0 while running). */
    int linger = 1000;
    zmq_setsockopt(ingress, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(control, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(agents, ZMQ_LINGER, &linger, sizeof(linger));
    rc = 0;
out:
    http_destroy(&http);
    store_destroy(&st); /* pending callbacks run now, while the sockets still exist */
    routing_destroy(&rt);
    routecfg_destroy(&rcfg);
    control_destroy(&ctl);
    ingest_destroy(&in);
    zap_destroy(&zap);
    if (ingress)
        zmq_close(ingress);
    if (control)
        zmq_close(control);
    if (pub)
        zmq_close(pub);
    if (agents)
        zmq_close(agents);
    if (zctx)
        zmq_ctx_term(zctx);
    config_free(&cfg);
    return rc;
}
