/* ZAP handler: libzmq asks it, per CURVE handshake, whether a client public key is allowed.
 * Keys are compared in binary form against the configured allow-list. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <omni/omni.h>

#include "log.h"
#include "metrics.h"
#include "zap.h"

struct zap {
    void *sock;
    uint8_t (*keys)[32];
    size_t n_keys;
};

int zap_new(void *zctx, const config_t *cfg, zap_t **out)
{
    int rc = OMNI_ENOMEM;
    zap_t *z = calloc(1, sizeof(*z));
    if (!z || !(z->keys = calloc(cfg->n_client_keys ? cfg->n_client_keys : 1, 32)))
        goto out;
    rc = OMNI_ECONFIG;
    for (size_t i = 0; i < cfg->n_client_keys; i++)
        if (!zmq_z85_decode(z->keys[z->n_keys++], cfg->client_keys[i]))
            goto out;
    rc = OMNI_EIO;
    int zero = 0;
    if (!(z->sock = zmq_socket(zctx, ZMQ_REP)) || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
        zmq_bind(z->sock, "inproc://zeromq.zap.01") != 0)
        goto out;
    *out = z;
    return 0;
out:
    zap_destroy(&z);
    return rc;
}

void zap_destroy(zap_t **pz)
{
    zap_t *z = pz ? *pz : NULL;
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    free(z->keys);
    free(z);
    *pz = NULL;
}

void *zap_socket(zap_t *z) { return z->sock; }

static int allowed(const zap_t *z, const char *mech, const zmq_msg_t *cred)
{
    if (strcmp(mech, "CURVE") != 0 || zmq_msg_size(cred) != 32)
        return 0;
    for (size_t i = 0; i < z->n_keys; i++)
        if (memcmp(z->keys[i], zmq_msg_data((zmq_msg_t *)cred), 32) == 0)
            return 1;
    return 0;
}

void zap_handle(zap_t *z)
{
    for (;;) {
        /* version, request id, domain, address, identity, mechanism, credentials... */
        zmq_msg_t f[7];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, z->sock, n ? 0 : ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&part);
                break;
            }
            more = zmq_msg_more(&part);
            if (n < 7)
                f[n++] = part;
            else
                zmq_msg_close(&part);
        }
        if (n == 0)
            return;
        char mech[32] = "", ver[8] = "";
        if (n >= 6) {
            snprintf(mech, sizeof(mech), "%.*s", (int)zmq_msg_size(&f[5]), (char *)zmq_msg_data(&f[5]));
            snprintf(ver, sizeof(ver), "%.*s", (int)zmq_msg_size(&f[0]), (char *)zmq_msg_data(&f[0]));
        }
        int ok = n == 7 && strcmp(ver, "1.0") == 0 && allowed(z, mech, &f[6]);
        if (!ok) {
            metrics_inc(M_AUTH_REFUSED);
            LOG_WARN("zap: refused a %s client from %.*s", *mech ? mech : "malformed", n >= 4 ? (int)zmq_msg_size(&f[3]) : 0,
                     n >= 4 ? (char *)zmq_msg_data(&f[3]) : "");
        }
        const char *rid = n >= 2 ? zmq_msg_data(&f[1]) : "";
        size_t rid_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
        zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(z->sock, rid, rid_len, ZMQ_SNDMORE);
        zmq_send(z->sock, ok ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(z->sock, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}
