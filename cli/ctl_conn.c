/* omnictl's transport: one DEALER to the broker's control ROUTER (one frame out, one frame
 * back, matched by id) and one SUB to the stream PUB ([channel][StreamEvent] messages). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <zmq.h>

#include <omni/omni.h>

#include "ctl.h"

volatile sig_atomic_t ctl_stop;

static void ctl_on_stop_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

void ctl_catch_stop_signals(void)
{
    /* No SA_RESTART: the signal must interrupt zmq_poll so we stop promptly. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ctl_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void ctl_conn_init(ctl_conn_t *c, const ctl_opts_t *o)
{
    memset(c, 0, sizeof *c);
    c->opts = o;
    /* Ids start at a random point so a late reply to an earlier omnictl run that shared
     * the broker connection can never be taken for ours. */
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)omni_mono_us() ^ ((uint64_t)getpid() << 32);
    c->next_id = (seed >> 1) | 1; /* never 0: 0 is what a broken broker echoes */
}

void ctl_conn_close(ctl_conn_t *c)
{
    if (c->dealer)
        zmq_close(c->dealer);
    if (c->sub)
        zmq_close(c->sub);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    c->dealer = c->sub = c->zctx = NULL;
}

uint64_t ctl_conn_next_id(ctl_conn_t *c)
{
    uint64_t id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    return id;
}

int ctl_conn_key_valid(const char *key)
{
    uint8_t raw[32];
    return key && strlen(key) == 40 && zmq_z85_decode(raw, key) != NULL;
}

static int ctl_conn_fail(ctl_conn_t *c, int code, const char *what, const char *arg)
{
    snprintf(c->errbuf, sizeof c->errbuf, "%s%s%s%s: %s", what, arg ? " '" : "", arg ? arg : "",
             arg ? "'" : "", zmq_strerror(zmq_errno()));
    return code;
}

/* A socket with the options every omnictl socket needs: no linger (a CLI must never hang
 * on exit over an unsent request) and CURVE when a server key is configured. */
static int ctl_conn_socket(ctl_conn_t *c, int type, void **out)
{
    const ctl_opts_t *o = c->opts;
    if (!c->zctx) {
        c->zctx = zmq_ctx_new();
        if (!c->zctx)
            return ctl_conn_fail(c, CTL_EIO, "zmq_ctx_new", NULL);
    }
    void *s = zmq_socket(c->zctx, type);
    if (!s)
        return ctl_conn_fail(c, CTL_EIO, "zmq_socket", NULL);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (o->curve_server && *o->curve_server) {
        const char *pub = o->curve_public, *sec = o->curve_secret;
        if (!pub || !*pub || !sec || !*sec) {
            /* Only the server key: the broker is authenticated and traffic encrypted, and we
             * show up with a throw-away identity (enough unless the broker checks clients). */
            if (!c->eph_public[0] && zmq_curve_keypair(c->eph_public, c->eph_secret) != 0) {
                zmq_close(s);
                return ctl_conn_fail(c, CTL_EIO, "zmq_curve_keypair", NULL);
            }
            pub = c->eph_public;
            sec = c->eph_secret;
        }
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, o->curve_server, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40) != 0) {
            zmq_close(s);
            return ctl_conn_fail(c, CTL_EENDPOINT, "CURVE keys refused", NULL);
        }
    }
    *out = s;
    return CTL_OK;
}

int ctl_conn_connect(ctl_conn_t *c, int type, const char *endpoint, void **out)
{
    void *s;
    int rc = ctl_conn_socket(c, type, &s);
    if (rc != CTL_OK)
        return rc;
    if (zmq_connect(s, endpoint) != 0) {
        int bad = zmq_errno() == EINVAL || zmq_errno() == EPROTONOSUPPORT ||
                  zmq_errno() == ENOCOMPATPROTO;
        rc = ctl_conn_fail(c, bad ? CTL_EENDPOINT : CTL_EIO, "cannot connect to", endpoint);
        zmq_close(s);
        return rc;
    }
    *out = s;
    return CTL_OK;
}

/* Milliseconds left until deadline_us (monotonic), at least 0. */
static long ctl_conn_left_ms(int64_t deadline_us)
{
    int64_t left = deadline_us - omni_mono_us();
    return left > 0 ? (long)((left + 999) / 1000) : 0;
}

/* A broker that prefixes an empty delimiter, REQ style, still works: only the last frame counts. */
int ctl_conn_recv_last(void *s, zmq_msg_t *last)
{
    int frames = 0;
    zmq_msg_init(last);
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            if (frames == 0) {
                zmq_msg_close(last);
                return -1;
            }
            return frames; /* cannot happen: the parts of a message arrive together */
        }
        frames++;
        int more = zmq_msg_more(&part);
        zmq_msg_move(last, &part);
        zmq_msg_close(&part);
        if (!more)
            return frames;
    }
}

int ctl_conn_call(ctl_conn_t *c, Omni__V1__ControlRequest *req, Omni__V1__ControlReply **reply)
{
    *reply = NULL;
    if (!c->dealer) {
        int rc = ctl_conn_connect(c, ZMQ_DEALER, c->opts->control, &c->dealer);
        if (rc != CTL_OK)
            return rc;
    }
    req->id = ctl_conn_next_id(c);

    size_t n = omni__v1__control_request__get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        snprintf(c->errbuf, sizeof c->errbuf, "out of memory");
        return CTL_EIO;
    }
    omni__v1__control_request__pack(req, buf);

    int64_t deadline = omni_mono_us() + (int64_t)c->opts->timeout_ms * 1000;
    int sent = 0, bad = 0;
    for (;;) {
        if (ctl_stop) {
            free(buf);
            return CTL_EINTR;
        }
        if (!sent) {
            /* A connecting DEALER queues the frame; EAGAIN only when the pipe is full. */
            if (zmq_send(c->dealer, buf, n, ZMQ_DONTWAIT) >= 0)
                sent = 1;
            else if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) {
                free(buf);
                return ctl_conn_fail(c, CTL_EIO, "send", NULL);
            }
        }
        long left = ctl_conn_left_ms(deadline);
        if (left == 0)
            break;
        zmq_pollitem_t it = { c->dealer, 0, sent ? ZMQ_POLLIN : ZMQ_POLLIN | ZMQ_POLLOUT, 0 };
        int pr = zmq_poll(&it, 1, left);
        if (pr < 0) {
            if (zmq_errno() == EINTR)
                continue;
            free(buf);
            return ctl_conn_fail(c, CTL_EIO, "poll", NULL);
        }
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t msg;
        if (ctl_conn_recv_last(c->dealer, &msg) < 0)
            continue; /* EAGAIN/EINTR: poll again */
        Omni__V1__ControlReply *r =
            omni__v1__control_reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!r) {
            bad = 1;
            continue;
        }
        if (r->id != req->id) {
            /* A late answer to a request we already gave up on. */
            omni__v1__control_reply__free_unpacked(r, NULL);
            continue;
        }
        free(buf);
        *reply = r;
        return CTL_OK;
    }
    free(buf);
    return bad ? CTL_EPROTO : CTL_ETIMEOUT;
}

int ctl_conn_subscribe(ctl_conn_t *c)
{
    if (c->sub)
        return CTL_OK;
    int rc = ctl_conn_connect(c, ZMQ_SUB, c->opts->stream, &c->sub);
    if (rc != CTL_OK)
        return rc;
    /* Every channel: the first frame is the channel name, and we want them all. */
    if (zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, "", 0) != 0)
        return ctl_conn_fail(c, CTL_EIO, "subscribe", NULL);
    return CTL_OK;
}

int ctl_conn_next_event(ctl_conn_t *c, int timeout_ms, Omni__V1__StreamEvent **ev)
{
    *ev = NULL;
    int64_t deadline = omni_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (ctl_stop)
            return CTL_EINTR;
        long left = ctl_conn_left_ms(deadline);
        zmq_pollitem_t it = { c->sub, 0, ZMQ_POLLIN, 0 };
        int pr = zmq_poll(&it, 1, left);
        if (pr < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return ctl_conn_fail(c, CTL_EIO, "poll", NULL);
        }
        if (pr == 0) {
            if (ctl_conn_left_ms(deadline) == 0)
                return CTL_ETIMEOUT;
            continue;
        }
        /* Frames: [channel name][StreamEvent]. The event carries its channel itself, so the
         * topic frame only serves the PUB-side filtering; take the last frame. */
        zmq_msg_t msg;
        int frames = ctl_conn_recv_last(c->sub, &msg);
        if (frames < 0)
            continue;
        if (frames < 2) {
            zmq_msg_close(&msg); /* a topic without an event: not from an omni broker */
            continue;
        }
        Omni__V1__StreamEvent *e =
            omni__v1__stream_event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!e)
            continue; /* not ours to judge; the gap check refetches what matters */
        *ev = e;
        return CTL_OK;
    }
}
