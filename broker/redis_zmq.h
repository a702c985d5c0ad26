/* hiredis async glue for a zmq_poll loop (in the manner of hiredis' adapters/): the Redis
 * socket becomes one more zmq_pollitem_t next to the broker's ZeroMQ sockets. */
#ifndef OMNI_REDIS_ZMQ_H
#define OMNI_REDIS_ZMQ_H

#include <hiredis/async.h>
#include <zmq.h>

typedef struct {
    redisAsyncContext *ac; /* borrowed; cleared when hiredis frees the context */
    int reading, writing;
} redis_zmq_t;

/* Hook ac's event callbacks to rz. Returns 0 or OMNI_EINVAL if ac already has an event loop. */
int redis_zmq_attach(redis_zmq_t *rz, redisAsyncContext *ac);

/* Fill a poll item for the Redis fd; events is 0 when there is nothing to wait for. */
void redis_zmq_pollitem(const redis_zmq_t *rz, zmq_pollitem_t *it);

/* Let hiredis read/write after zmq_poll reported revents. May free the context (disconnect). */
void redis_zmq_handle(redis_zmq_t *rz, short revents);

#endif
