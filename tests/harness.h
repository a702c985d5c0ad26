/* Integration-test harness: a private redis-server and a real omni-broker per test, in a
 * temp dir with ipc:// endpoints (no ports to collide on), plus SDK and omnictl helpers. */
#ifndef OMNI_TEST_HARNESS_H
#define OMNI_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <hiredis/hiredis.h>

#include <omni/adapter.h>
#include <omni/v1/stream.pb-c.h>

typedef struct {
    char dir[128];
    char redis_sock[192], redis_url[224];
    char ingress[192], control[192], stream[192], agents[192];
    char config[192];        /* passed as --config when non-empty */
    pid_t redis_pid, broker_pid;
} h_env_t;

/* Everything a test needs: fails the test (cr_assert) when something cannot start. */
void h_setup(h_env_t *h);                /* temp dir + redis + broker */
void h_teardown(h_env_t *h);             /* stop all, remove the dir */

void h_redis_start(h_env_t *h);
void h_redis_stop(h_env_t *h, int sig);  /* SIGTERM: clean (AOF flushed); waits */
void h_broker_start(h_env_t *h);         /* waits until the control endpoint answers */
int h_broker_spawn(h_env_t *h, const char *const *extra, char *err, size_t errlen); /* start, return exit code if it exits within 1 s, else -1 */
int h_broker_stop(h_env_t *h, int sig);  /* SIGKILL for crash tests; waits; exit status */

redisContext *h_redis(const h_env_t *h); /* caller frees */

/* An SDK adapter connected to this broker; fast retry timings for tests. */
omni_adapter_t *h_adapter(const h_env_t *h, const char *id, Omni__V1__Channel ch, omni_ack_cb cb, void *user);

/* Send one message and poll until its ack (or timeout_ms). Returns 0 and fills the copy. */
typedef struct {
    int accepted, duplicate, reason;
    char customer_id[64], conversation_id[64], detail[160];
    uint64_t seq;
} h_ack_t;
int h_send(omni_adapter_t *ad, const Omni__V1__InboundMessage *m, h_ack_t *ack, int timeout_ms);

/* Build a message with the common fields; strings are borrowed. also may be NULL-terminated list. */
void h_msg(Omni__V1__InboundMessage *m, Omni__V1__Channel ch, const char *pmid, const char *from,
           const char **also, const char *text);

/* Run omnictl with --control set, capture stdout into out. Returns its exit status. */
int h_omnictl(const h_env_t *h, char *out, size_t outlen, const char *const *args);

/* All stream events in seq order (caller frees with h_events_free). */
size_t h_events(const h_env_t *h, Omni__V1__StreamEvent ***out);
void h_events_free(Omni__V1__StreamEvent **evs, size_t n);

/* Value of a broker counter (via omnictl status --json), or -1. */
long long h_counter(const h_env_t *h, const char *name);

/* Customer id an identity belongs to ("" if none), straight from Redis. */
void h_customer_of(const h_env_t *h, const char *identity, char *out, size_t outlen);


/* ---- appended for the security suite: configs and CURVE ---- */

/* Temp dir and ipc:// endpoints only, as h_setup does first; no process is started. */
void h_prepare(h_env_t *h);

/* Write yaml to h->dir/omni.yaml and point h->config at it (passed as --config from now on). */
void h_write_config(h_env_t *h, const char *yaml);

/* h_prepare + redis + h_write_config(yaml) + broker. With server_pub/client_pub/client_sec all
 * non-NULL, readiness is checked over CURVE with that client key pair (which must be allowed);
 * otherwise over plain ZeroMQ as h_broker_start does. */
void h_setup_with_config(h_env_t *h, const char *yaml, const char *server_pub, const char *client_pub,
                         const char *client_sec);

/* h_adapter with CURVE keys (all three NULL: plain). Acks go where h_send wants them. */
omni_adapter_t *h_adapter_curve(const h_env_t *h, const char *id, Omni__V1__Channel ch, const char *server_pub,
                                const char *client_pub, const char *client_sec);

/* Adapter options as h_adapter uses them (fast retries), for tests that need more callbacks. */
void h_adapter_opts(omni_adapter_opts_t *o, const h_env_t *h, const char *id, Omni__V1__Channel ch);

/* Start `omnictl agent --agents <this broker> --json ARGS...`, stdout and stderr appended to
 * h->dir/NAME.out. Dies with the test process. */
pid_t h_agent_spawn(const h_env_t *h, const char *name, const char *const *args);

#endif
