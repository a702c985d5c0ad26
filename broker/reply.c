/* ROUTER framing for the broker's request endpoints. Replies never block the loop: a peer
 * that went away, or one whose queue is full, loses the reply and asks again. */
#include <string.h>

#include "reply.h"

int reply_recv(void *sock, reply_to_t *to, zmq_msg_t *body)
{
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    zmq_msg_init(body);
    if (zmq_msg_recv(&rid, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid);
        return -1;
    }
    memset(to, 0, sizeof(*to));
    to->sock = sock;
    to->rid_len = (uint8_t)(zmq_msg_size(&rid) > sizeof(to->rid) ? sizeof(to->rid) : zmq_msg_size(&rid));
    memcpy(to->rid, zmq_msg_data(&rid), to->rid_len);
    int more = zmq_msg_more(&rid), rc = 1;
    zmq_msg_close(&rid);
    if (more && zmq_msg_recv(body, sock, 0) >= 0) {
        rc = 0;
        while (zmq_msg_more(body)) { /* extra frames: not our protocol */
            rc = 1;
            if (zmq_msg_recv(body, sock, 0) < 0)
                break;
        }
    }
    return rc;
}

void reply_send(const reply_to_t *to, const uint8_t *buf, size_t len)
{
    if (zmq_send(to->sock, to->rid, to->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send(to->sock, buf, len, ZMQ_DONTWAIT);
}
