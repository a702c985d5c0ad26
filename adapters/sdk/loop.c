/* The SDK's poll(2) loop for adapter programs (see omni/loop.h). Small on purpose: tables are
 * arrays scanned per iteration, which is cheaper than a heap for the few hundred fds and timers
 * of one adapter, and a self-pipe turns signals into an fd so none is missed before poll. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omni/loop.h>

#define LOOP_ADAPTERS_MAX 16

typedef struct {
    int fd;
    short events;
    int dead;                 /* deleted during a dispatch: compacted afterwards */
    omni_io_cb cb;
    void *user;
} watch_t;

typedef struct {
    int64_t id, due_us;
    omni_timer_cb cb;
    void *user;
} timer_t_;

struct omni_loop {
    watch_t *w;
    size_t nw, capw;
    timer_t_ *t;
    size_t nt, capt;
    int64_t next_id;
    omni_adapter_t *ad[LOOP_ADAPTERS_MAX];
    size_t nad;
    int stop, signalled;
    struct pollfd *pfd;
    size_t cappfd;
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (sig_pipe[1] >= 0 && write(sig_pipe[1], &c, 1) < 0) {
        /* full pipe: a stop is already pending */
    }
    errno = saved;
}

int omni_loop_new(omni_loop_t **out)
{
    omni_loop_t *l = calloc(1, sizeof(*l));
    if (!l)
        return OMNI_ENOMEM;
    l->next_id = 1;
    *out = l;
    return 0;
}

void omni_loop_destroy(omni_loop_t **pl)
{
    omni_loop_t *l = pl ? *pl : NULL;
    if (!l)
        return;
    free(l->w);
    free(l->t);
    free(l->pfd);
    free(l);
    *pl = NULL;
}

static watch_t *find(omni_loop_t *l, int fd)
{
    for (size_t i = 0; i < l->nw; i++)
        if (l->w[i].fd == fd && !l->w[i].dead)
            return &l->w[i];
    return NULL;
}

int omni_loop_add_fd(omni_loop_t *l, int fd, short events, omni_io_cb cb, void *user)
{
    if (!l || fd < 0 || !cb || find(l, fd))
        return OMNI_EINVAL;
    if (l->nw == l->capw) {
        size_t cap = l->capw ? l->capw * 2 : 16;
        watch_t *w = realloc(l->w, cap * sizeof(*w));
        if (!w)
            return OMNI_ENOMEM;
        l->w = w;
        l->capw = cap;
    }
    l->w[l->nw++] = (watch_t){fd, events, 0, cb, user};
    return 0;
}

int omni_loop_set_events(omni_loop_t *l, int fd, short events)
{
    watch_t *w = find(l, fd);
    if (!w)
        return OMNI_ENOTFOUND;
    w->events = events;
    return 0;
}

int omni_loop_del_fd(omni_loop_t *l, int fd)
{
    watch_t *w = find(l, fd);
    if (!w)
        return OMNI_ENOTFOUND;
    w->dead = 1; /* the dispatch in progress may still hold its index */
    return 0;
}

int64_t omni_loop_timer(omni_loop_t *l, int64_t delay_ms, omni_timer_cb cb, void *user)
{
    if (!l || !cb || delay_ms < 0)
        return OMNI_EINVAL;
    if (l->nt == l->capt) {
        size_t cap = l->capt ? l->capt * 2 : 16;
        timer_t_ *t = realloc(l->t, cap * sizeof(*t));
        if (!t)
            return OMNI_ENOMEM;
        l->t = t;
        l->capt = cap;
    }
    int64_t id = l->next_id++;
    l->t[l->nt++] = (timer_t_){id, omni_mono_us() + delay_ms * 1000, cb, user};
    return id;
}

void omni_loop_cancel(omni_loop_t *l, int64_t id)
{
    for (size_t i = 0; l && i < l->nt; i++)
        if (l->t[i].id == id) {
            l->t[i] = l->t[--l->nt];
            return;
        }
}

int omni_loop_add_adapter(omni_loop_t *l, omni_adapter_t *ad)
{
    if (!l || !ad || omni_adapter_fd(ad) < 0)
        return OMNI_EINVAL;
    if (l->nad == LOOP_ADAPTERS_MAX)
        return OMNI_EFULL;
    l->ad[l->nad++] = ad;
    return 0;
}

void omni_loop_stop(omni_loop_t *l) { l->stop = 1; }
int omni_loop_signalled(const omni_loop_t *l) { return l->signalled; }

/* Milliseconds poll may sleep: until the first timer or adapter deadline. */
static int next_timeout(const omni_loop_t *l)
{
    int64_t now = omni_mono_us(), best = -1;
    for (size_t i = 0; i < l->nt; i++) {
        int64_t left = (l->t[i].due_us - now + 999) / 1000;
        if (left < 0)
            left = 0;
        if (best < 0 || left < best)
            best = left;
    }
    for (size_t i = 0; i < l->nad; i++) {
        int t = omni_adapter_timeout_ms(l->ad[i]);
        if (t >= 0 && (best < 0 || t < best))
            best = t;
    }
    return best > 1000000 ? 1000000 : (int)best;
}

static void fire_timers(omni_loop_t *l)
{
    int64_t now = omni_mono_us();
    /* Timers added by callbacks wait for the next round (their index is past the count). */
    for (size_t i = 0, n = l->nt; i < n && i < l->nt;) {
        if (l->t[i].due_us > now) {
            i++;
            continue;
        }
        timer_t_ t = l->t[i];
        l->t[i] = l->t[--l->nt];
        n--;
        t.cb(l, t.user);
    }
}

static void compact(omni_loop_t *l)
{
    size_t k = 0;
    for (size_t i = 0; i < l->nw; i++)
        if (!l->w[i].dead)
            l->w[k++] = l->w[i];
    l->nw = k;
}

static int dispatch(omni_loop_t *l, int timeout)
{
    size_t n = l->nw + l->nad + 1;
    if (n > l->cappfd) {
        struct pollfd *p = realloc(l->pfd, n * sizeof(*p));
        if (!p)
            return OMNI_ENOMEM;
        l->pfd = p;
        l->cappfd = n;
    }
    size_t nw = l->nw;
    for (size_t i = 0; i < nw; i++)
        l->pfd[i] = (struct pollfd){l->w[i].fd, l->w[i].events, 0};
    for (size_t i = 0; i < l->nad; i++)
        l->pfd[nw + i] = (struct pollfd){omni_adapter_fd(l->ad[i]), POLLIN, 0};
    l->pfd[n - 1] = (struct pollfd){sig_pipe[0], POLLIN, 0};
    int rc = poll(l->pfd, n, timeout);
    if (rc < 0)
        return errno == EINTR ? 0 : OMNI_EIO;
    if (l->pfd[n - 1].revents) {
        char buf[16];
        while (read(sig_pipe[0], buf, sizeof(buf)) > 0) {
        }
        l->signalled = l->stop = 1;
    }
    for (size_t i = 0; i < nw; i++)
        if (l->pfd[i].revents && !l->w[i].dead)
            l->w[i].cb(l, l->w[i].fd, l->pfd[i].revents, l->w[i].user);
    compact(l);
    return 0;
}

int omni_loop_run(omni_loop_t *l)
{
    struct sigaction sa, old_int, old_term;
    int rc = 0;
    if (sig_pipe[0] < 0) {
        if (pipe(sig_pipe) != 0)
            return OMNI_EIO;
        for (int i = 0; i < 2; i++)
            fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    l->stop = 0;
    while (!l->stop) {
        /* ZMQ_FD is edge-triggered and a send from any callback can consume its edge: give
         * every adapter a non-blocking turn each round, whatever woke us. */
        for (size_t i = 0; i < l->nad; i++)
            while (omni_adapter_process(l->ad[i]) > 0) {
            }
        if ((rc = dispatch(l, next_timeout(l))) != 0)
            break;
        fire_timers(l);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
