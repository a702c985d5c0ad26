/* hiredis async glue for zmq_poll: hiredis tells us which directions it waits for through
 * the ev hooks; the broker loop turns those flags into poll events on the raw fd. */
#include <omni/omni.h>

#include "redis_zmq.h"

static void add_read(void *p) { ((redis_zmq_t *)p)->reading = 1; }
static void del_read(void *p) { ((redis_zmq_t *)p)->reading = 0; }
static void add_write(void *p) { ((redis_zmq_t *)p)->writing = 1; }
static void del_write(void *p) { ((redis_zmq_t *)p)->writing = 0; }

static void cleanup(void *p)
{
    redis_zmq_t *rz = p;
    rz->reading = rz->writing = 0;
    rz->ac = NULL;
}

int redis_zmq_attach(redis_zmq_t *rz, redisAsyncContext *ac)
{
    if (ac->ev.data)
        return OMNI_EINVAL;
    rz->ac = ac;
    rz->reading = rz->writing = 0;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = rz;
    return 0;
}

void redis_zmq_pollitem(const redis_zmq_t *rz, zmq_pollitem_t *it)
{
    it->socket = NULL;
    it->fd = rz->ac ? rz->ac->c.fd : -1;
    it->events = 0;
    if (rz->ac && rz->reading)
        it->events |= ZMQ_POLLIN;
    if (rz->ac && rz->writing)
        it->events |= ZMQ_POLLOUT;
    it->revents = 0;
}

void redis_zmq_handle(redis_zmq_t *rz, short revents)
{
    /* Read first: a write after a disconnect found while reading would touch a freed context. */
    if (rz->ac && (revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        redisAsyncHandleRead(rz->ac);
    if (rz->ac && (revents & ZMQ_POLLOUT))
        redisAsyncHandleWrite(rz->ac);
}
