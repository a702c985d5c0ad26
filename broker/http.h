/* The broker's HTTP side (/healthz, /metrics) on libmicrohttpd in external-epoll mode: its
 * epoll fd is one more item of the main zmq_poll loop, so no thread reads our counters. */
#ifndef OMNI_HTTP_H
#define OMNI_HTTP_H

#include <zmq.h>

#include "store.h"

typedef struct http http_t;

/* Listen on "HOST:PORT" (port 0 picks a free one). st is borrowed for /healthz.
 * Returns 0, OMNI_ECONFIG (bad address) or OMNI_EIO (cannot listen), with a line in err. */
int http_new(const char *listen, store_t *st, http_t **out, char *err, size_t errlen);
void http_destroy(http_t **h);

void http_pollitem(http_t *h, zmq_pollitem_t *it);
int http_timeout_ms(http_t *h);   /* -1: none */
void http_run(http_t *h);         /* serve whatever is ready, never blocks */
int http_port(const http_t *h);   /* the bound port */

#endif
