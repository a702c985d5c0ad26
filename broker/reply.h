/* ROUTER framing shared by the ingress and control endpoints: read one [routing id][body]
 * request, and send a reply back to that routing id. */
#ifndef OMNI_REPLY_H
#define OMNI_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Where a reply goes: an ingress peer (Envelope{ack}) or a control peer (ControlReply). */
typedef struct {
    void *sock;
    int control;
    uint64_t id;             /* Envelope.request_id or ControlRequest.id */
    uint8_t rid_len;
    uint8_t rid[255];        /* ROUTER routing id */
} reply_to_t;

/* Read one request without blocking. Returns 0 with *to and *body (initialised: close it)
 * for a well-formed one, 1 when it had other than exactly one body frame (drained; *to is
 * valid for an error reply), -1 when nothing is waiting. */
int reply_recv(void *sock, reply_to_t *to, zmq_msg_t *body);

/* Send buf to the peer; dropped if the peer is gone (it will ask again). */
void reply_send(const reply_to_t *to, const uint8_t *buf, size_t len);

#endif
