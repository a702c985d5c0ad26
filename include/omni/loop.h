/* A small poll(2) event loop for adapter programs: file descriptors, one-shot timers, the SDK
 * adapters and SIGINT/SIGTERM, so an adapter is its protocol code plus a few callbacks. */
#ifndef OMNI_LOOP_H
#define OMNI_LOOP_H

#include <stdint.h>

#include <omni/adapter.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct omni_loop omni_loop_t;

/* events/revents are poll(2) flags (POLLIN, POLLOUT; revents may add POLLHUP/POLLERR). */
typedef void (*omni_io_cb)(omni_loop_t *loop, int fd, short revents, void *user);
typedef void (*omni_timer_cb)(omni_loop_t *loop, void *user);

/* A loop that stops on SIGINT/SIGTERM (handlers installed by omni_loop_run, restored after).
 * OMNI_ENOMEM. */
int omni_loop_new(omni_loop_t **out);
/* Frees the loop (not the fds, adapters or users it was given) and NULLs *loop. */
void omni_loop_destroy(omni_loop_t **loop);

/* Watch fd (one registration per fd). OMNI_EINVAL (bad fd, already watched), OMNI_ENOMEM. */
int omni_loop_add_fd(omni_loop_t *loop, int fd, short events, omni_io_cb cb, void *user);
/* Change what fd waits for (0: nothing for now). OMNI_ENOTFOUND. */
int omni_loop_set_events(omni_loop_t *loop, int fd, short events);
/* Stop watching fd; safe from inside any callback, also for the fd being dispatched. */
int omni_loop_del_fd(omni_loop_t *loop, int fd);

/* cb once after delay_ms (>= 0). Returns an id > 0, or OMNI_ENOMEM. */
int64_t omni_loop_timer(omni_loop_t *loop, int64_t delay_ms, omni_timer_cb cb, void *user);
/* Cancel a timer that has not fired (unknown or fired ids are ignored). */
void omni_loop_cancel(omni_loop_t *loop, int64_t id);

/* Drive an adapter from this loop: its fd, its timers and omni_adapter_process. Borrowed;
 * at most 16 per loop. OMNI_EFULL, OMNI_EINVAL. */
int omni_loop_add_adapter(omni_loop_t *loop, omni_adapter_t *ad);

/* Run until omni_loop_stop or SIGINT/SIGTERM. Returns 0, or OMNI_EIO if poll(2) fails. */
int omni_loop_run(omni_loop_t *loop);
void omni_loop_stop(omni_loop_t *loop);
/* 1 once a signal asked the loop to stop (the program then shuts down cleanly). */
int omni_loop_signalled(const omni_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif
