/* ZAP handler (RFC 27): decides which CURVE client keys may connect to the broker's sockets.
 * A REP socket polled by the main loop, so authentication needs no thread of its own. */
#ifndef OMNI_ZAP_H
#define OMNI_ZAP_H

#include "config.h"

typedef struct zap zap_t;

/* Bind the handler in zctx. Client keys come from cfg (Z85). Returns 0, OMNI_ECONFIG, OMNI_EIO. */
int zap_new(void *zctx, const config_t *cfg, zap_t **out);
void zap_destroy(zap_t **z);
void *zap_socket(zap_t *z);

/* Answer every waiting request; refused keys are counted (auth_refused). */
void zap_handle(zap_t *z);

#endif
