/* Unit tests of the SDK's event loop (omni/loop.h): fds, timers, deletion while dispatching,
 * stop and signals. No broker: the loop must work on its own. */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <omni/loop.h>

static int fired[8], nfired, reads;

static void on_timer(omni_loop_t *l, void *user)
{
    fired[nfired++] = (int)(intptr_t)user;
    if ((intptr_t)user == 3)
        omni_loop_stop(l);
}

Test(loop, timers_fire_in_time_order_and_cancel_works)
{
    omni_loop_t *l;
    cr_assert_eq(omni_loop_new(&l), 0);
    nfired = 0;
    omni_loop_timer(l, 30, on_timer, (void *)(intptr_t)3);
    omni_loop_timer(l, 10, on_timer, (void *)(intptr_t)1);
    int64_t gone = omni_loop_timer(l, 5, on_timer, (void *)(intptr_t)9);
    omni_loop_timer(l, 20, on_timer, (void *)(intptr_t)2);
    omni_loop_cancel(l, gone);
    int64_t t0 = omni_mono_us();
    cr_assert_eq(omni_loop_run(l), 0);
    cr_assert_geq(omni_mono_us() - t0, 30000, "the last timer waited its delay");
    cr_assert_eq(nfired, 3);
    cr_assert(fired[0] == 1 && fired[1] == 2 && fired[2] == 3);
    omni_loop_destroy(&l);
    cr_assert_null(l);
}

static int pipes[2][2];

static void on_read(omni_loop_t *l, int fd, short revents, void *user)
{
    (void)user;
    char buf[16];
    cr_assert(revents & POLLIN);
    cr_assert_gt(read(fd, buf, sizeof(buf)), 0);
    reads++;
    /* Deleting both fds from inside a dispatch: the other one must not be called any more. */
    omni_loop_del_fd(l, pipes[0][0]);
    omni_loop_del_fd(l, pipes[1][0]);
    omni_loop_stop(l);
}

Test(loop, fds_dispatch_and_may_be_deleted_from_a_callback)
{
    omni_loop_t *l;
    cr_assert_eq(omni_loop_new(&l), 0);
    cr_assert_eq(pipe(pipes[0]), 0);
    cr_assert_eq(pipe(pipes[1]), 0);
    reads = 0;
    cr_assert_eq(omni_loop_add_fd(l, pipes[0][0], POLLIN, on_read, NULL), 0);
    cr_assert_eq(omni_loop_add_fd(l, pipes[1][0], POLLIN, on_read, NULL), 0);
    cr_assert_eq(omni_loop_add_fd(l, pipes[1][0], POLLIN, on_read, NULL), OMNI_EINVAL, "one watch per fd");
    cr_assert_eq(write(pipes[0][1], "a", 1), 1);
    cr_assert_eq(write(pipes[1][1], "b", 1), 1);
    cr_assert_eq(omni_loop_run(l), 0);
    cr_assert_eq(reads, 1);
    cr_assert_eq(omni_loop_set_events(l, pipes[0][0], POLLIN), OMNI_ENOTFOUND);
    for (int i = 0; i < 2; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    omni_loop_destroy(&l);
}

static void raise_term(omni_loop_t *l, void *user)
{
    (void)l;
    (void)user;
    raise(SIGTERM);
}

Test(loop, sigterm_stops_the_loop_cleanly)
{
    omni_loop_t *l;
    cr_assert_eq(omni_loop_new(&l), 0);
    omni_loop_timer(l, 1, raise_term, NULL);
    omni_loop_timer(l, 60000, on_timer, (void *)(intptr_t)7); /* would keep it waiting */
    cr_assert_eq(omni_loop_run(l), 0);
    cr_assert(omni_loop_signalled(l));
    /* The old disposition is back: SIGTERM is ignored here only if it was before. */
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    cr_assert(sa.sa_handler == SIG_DFL);
    omni_loop_destroy(&l);
}
