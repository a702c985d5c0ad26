/* Agent sessions on the agents endpoint (ROUTER): which routing id speaks for which agent,
 * heartbeats and their expiry, and sending AgentEnvelopes. The routing decisions are routing.c's. */
#ifndef OMNI_AGENTS_H
#define OMNI_AGENTS_H

#include <stddef.h>
#include <stdint.h>
#include <omni/v1/agent.pb-c.h>

#include "reply.h"

#define AGENTS_ID_MAX 64       /* agent id bytes incl. NUL (= ROUTER_ID_MAX) */

typedef struct agents agents_t;

/* One decoded request. agent_id is the session's agent, or NULL if this routing id has no
 * session (only Login is allowed then). env is owned by agents.c (freed after the call). */
typedef void (*agents_handler_fn)(void *ctx, const char *agent_id, const reply_to_t *to,
                                  Omni__V1__AgentEnvelope *env);

/* sock borrowed. timeout_ms: a session silent this long expires. max_frame: larger frames are refused. */
int agents_new(void *sock, int64_t started_ms, int64_t timeout_ms, size_t max_frame, agents_t **out);
void agents_destroy(agents_t **a);

/* Reads what is ready (bounded). Heartbeats are answered here; malformed frames get an
 * AgentError and count as agent_errors; everything else goes to fn. */
int agents_read(agents_t *a, int64_t now_ms, agents_handler_fn fn, void *ctx);

/* One frame from `to` (what agents_read does per frame; also the fuzz target's entry). */
void agents_frame(agents_t *a, const reply_to_t *to, const uint8_t *data, size_t len, int64_t now_ms,
                  agents_handler_fn fn, void *ctx);

/* Session of agent_id now speaks from `to` (a new login, or a reconnect from a new socket). */
int agents_bind(agents_t *a, const char *agent_id, const reply_to_t *to, int64_t now_ms);
void agents_unbind(agents_t *a, const char *agent_id);

/* Sends env to the agent's session; OMNI_ENOTFOUND if it has none. */
int agents_send(agents_t *a, const char *agent_id, Omni__V1__AgentEnvelope *env);
void agents_reply(const reply_to_t *to, Omni__V1__AgentEnvelope *env);
void agents_error(const reply_to_t *to, uint64_t request_id, const char *code, const char *detail);

/* Ends sessions silent for longer than the timeout: fn(ctx, agent_id) for each, then unbinds. */
void agents_expire(agents_t *a, int64_t now_ms, void (*fn)(void *ctx, const char *agent_id), void *ctx);

#endif
