/* The routing core: agents, queues, conversations (tasks) and offers, decided on events only.
 * Pure C, no I/O, no clock (callers pass now_ms), no locks (one writer), no allocation per decision.
 *
 * Model. A task waits in its queue ordered by key = enqueued_at - (queue priority + task priority
 * offset), lower first, ties by first-insertion sequence: score = wait + priority (virtual ms),
 * so priority ages and nothing starves. Queues have routing steps: step s is active once the
 * task's wait >= steps[s].after_ms, and the eligible pool at step s is the union of steps 0..s
 * (pools only widen). An offer reserves one slot of the agent's channel capacity; accept keeps
 * it, reject/timeout frees it and the task goes back with its original key (so to the front).
 *
 * Offers: an offer id is (slot, generation), so a stale or repeated id is OMNI_ENOTFOUND, never a
 * state change. A rejected/timed-out task is not re-offered to that agent for max(offer timeout,
 * 5 s); a deadline re-routes it then, so it cannot get stuck behind its only eligible agent.
 * Sticky: a task with a preferred agent (able to serve the queue at some step) is offered to it at
 * once if it has room, else parked on it until it frees up (parked work goes before the backlog
 * for that agent) or sticky_ms of wait pass, then it enters the normal pool with its original key.
 * A requeued, transferred or overflowed task does not go sticky again.
 * Longest idle = least recent offer, release or transfer away ("last activity"), set to now on each
 * (and at the end of a router-started wrap-up).
 *
 * Agent states the router sets itself (each reported as ROUTER_D_STATE; router_agent_set_state
 * always wins and voids them):
 *  - auto-pause: max_missed offer timeouts in a row (caller's or router_advance's) put an AVAILABLE
 *    or WRAP_UP agent AWAY. Accept, reject and any router_agent_set_state reset the count. Assigned
 *    tasks and other outstanding offers stay (they are answered or time out as usual).
 *  - wrap-up: releasing a task of a queue with wrap_up_ms puts an AVAILABLE agent in WRAP_UP (no new
 *    offers on any channel; offers already out stay) until now + wrap_up_ms, then AVAILABLE and it
 *    takes work. Releases meanwhile extend it to the later end. An AWAY agent stays AWAY, and a
 *    WRAP_UP set by the caller has no end. Transfers and cancels never start one.
 * Overflow (router_queue_set_overflow): a waiting task moves down its queue's overflow chain once
 * its wait reaches the queue's after_ms (counted from the original enqueue time, or from its last
 * transfer), keeping enqueue time and first-insertion order (so its place by age) with the new
 * queue's priority; parked tasks move only after they enter the pool. An enqueue into a queue at
 * max_len goes to the first queue down the chain with room. max_len bounds admissions only:
 * requeues, transfers and overflow moves are never refused for it (the customer is already in).
 * Transfer parks a task on the chosen agent like a sticky task (eligibility not asked); recovery
 * (router_enqueue_at, router_attach) restores waiting and assigned tasks with their original time.
 *
 * Complexity (A agents, Q queues, S <= ROUTER_MAX_STEPS steps, C = 4 channels, n = heap size):
 *  - arrival -> agent: O(S) heap peeks (one per-(queue, step, channel) pool of *able* agents,
 *    ordered by the queue's strategy key) + O(log n) to insert if nobody is able. Never scans
 *    agents. Proficiency thresholds are resolved at config time into the agent's first eligible
 *    step per queue, so a peek never meets an ineligible agent.
 *  - agent freed -> task: O(Qa * C * S) peeks (Qa = queues the agent serves) over per-(queue,
 *    channel, step) task heaps, + sticky tasks parked on that agent; a head task this agent just
 *    rejected is stepped over by descending only into excluded nodes (O(1 + excluded met)).
 *  - taking a task out of the backlog: 3 heap removals (its step heap, the queue's oldest-wait
 *    heap, the deadline heap), O(log W) each; measured ~1-1.5 us p50 at W = 100,000 on this VM.
 *  - applying a decision: O(log n) per heap touched; an agent's load change re-keys its
 *    memberships, O(Qa * C * log A). Wrap-up ends and overflow moves are deadlines in the same
 *    heap: O(log n) each, plus the offers they cause.
 *  - overflow chains: a task counts in the "reach" of every queue down its chain, and those heaps
 *    are reserved for it at enqueue/attach/transfer, so a move never allocates. Enqueue, release,
 *    cancel and transfer walk the chain: O(L), L = chain length (< Q, in practice 1-2).
 *  - config (agent/queue add, agent update, set_overflow): O(A), O(Q) or O(waiting of that queue)
 *    scans, may allocate. Heaps grow only to a new high-water mark, reserved at enqueue/agent-add
 *    time, so a decision never allocates or fails.
 *  - memory: dense A*Q*C int32 pool positions + A*Q bytes of first-eligible-step + A*Q int64
 *    round-robin marks (10k agents x 64 queues ~ 18 MB).
 */
#ifndef OMNI_ROUTER_H
#define OMNI_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <omni/omni.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROUTER_CHANNELS 4
enum { ROUTER_CH_CHAT = 0, ROUTER_CH_EMAIL = 1, ROUTER_CH_SNS = 2, ROUTER_CH_PHONE = 3 };

#define ROUTER_ID_MAX 64          /* external ids incl. NUL */
#define ROUTER_NAME_MAX 48        /* skill/team/queue names incl. NUL */
#define ROUTER_MAX_STEPS 4        /* step 0 (base) + up to 3 widening steps */
#define ROUTER_MAX_REQ 8          /* required skills per queue */
#define ROUTER_MAX_AGENT_SKILLS 16

typedef enum { ROUTER_OFFLINE = 0, ROUTER_AVAILABLE, ROUTER_AWAY, ROUTER_WRAP_UP } router_state_t;

typedef enum {
    ROUTER_LONGEST_IDLE = 0,   /* least recent offer/release first (default) */
    ROUTER_LEAST_OCCUPANCY,    /* lowest sum over channels of load/capacity, then longest idle */
    ROUTER_ROUND_ROBIN,        /* least recently offered a task *of this queue* first */
    ROUTER_FEWEST_ASSIGNED,    /* fewest accepted tasks since creation, then longest idle */
    ROUTER_STICKY,             /* only in decisions: the preferred agent was used */
} router_strategy_t;

typedef enum {
    ROUTER_D_OFFER = 0,    /* new offer: tell the agent */
    ROUTER_D_REVOKE,       /* offer expired inside router_advance or agent went offline: tell the agent */
    ROUTER_D_REQUEUE,      /* an assigned task returned to its queue (agent went offline) */
    ROUTER_D_STATE,        /* the router changed an agent's state itself: `state` (auto-pause after
                            * max_missed timed-out offers -> AWAY; wrap-up start -> WRAP_UP;
                            * wrap-up end -> AVAILABLE). Not emitted for router_agent_set_state.
                            * No task: task_id "", queue/channel -1, enqueued_at 0. */
    ROUTER_D_OVERFLOW,     /* a task moved from `from_queue` to `queue`, keeping its original enqueue
                            * time: a waiting task after the queue's overflow wait (one decision per
                            * hop, then maybe an OFFER in the new queue), or a new task whose queue
                            * was full (from_queue = the queue asked for, before any OFFER). No
                            * agent: agent_id "". */
} router_dkind_t;

typedef struct {
    router_dkind_t kind;
    const char *task_id;     /* router-owned, valid until the next router call; never NULL ("") */
    const char *agent_id;    /* same */
    int queue, channel;
    router_strategy_t strategy;  /* ROUTER_STICKY also for an offer to a transfer's chosen agent */
    int step;                /* step of the task when offered */
    uint32_t pool_size;      /* eligible able agents considered (all pools <= step) */
    int64_t score;           /* wait + priority in ms at decision time */
    uint64_t offer_id;       /* OFFER/REVOKE: that offer; 0 for OVERFLOW and STATE */
    router_state_t state;    /* the agent's state after the decision (ROUTER_D_STATE: the new one);
                              * 0 when there is no agent */
    int from_queue;          /* ROUTER_D_OVERFLOW: where it came from; else -1 */
    int64_t enqueued_at;     /* the task's original enqueue time, for every kind with a task */
} router_decision_t;

/* Called synchronously for every decision; must not call back into the router. */
typedef void (*router_sink_fn)(void *ctx, const router_decision_t *d);

typedef struct {
    uint32_t max_agents, max_queues, max_tasks, max_skills, max_teams;
    /* blocks[ch]: bitmask of channels that cannot get new work while the agent has load on ch.
     * all-zero means the default: phone blocks chat and sns. */
    uint8_t blocks[ROUTER_CHANNELS];
    int use_blocks;           /* 1: take blocks[] as given (even all zero) */
    uint32_t max_missed;      /* consecutive timed-out offers that put an agent AWAY; 0 = never.
                               * Reset by accept, reject and router_agent_set_state. */
} router_limits_t;

typedef struct { int skill; int level; } router_skill_level_t;

typedef struct {
    const char *id;
    int team;                              /* from router_team(), -1 none */
    int n_skills;
    router_skill_level_t skills[ROUTER_MAX_AGENT_SKILLS];  /* level 1..5 */
    int capacity[ROUTER_CHANNELS];         /* 0 = default: chat 3, email 5, sns 5, phone 1; -1 = none */
} router_agent_cfg_t;

typedef struct {
    int64_t after_ms;     /* step active once wait >= after_ms (step 0 must be 0) */
    int min_level;        /* 0: the queue's own minimums; else every required skill >= this */
    int any_team;         /* 1: also any agent of the queue's team regardless of skills */
} router_step_t;

typedef struct {
    const char *name;
    int team;                          /* -1: none (any_team then means every agent) */
    int64_t priority_ms;               /* added to every task's score */
    uint8_t channels;                  /* bitmask of accepted channels; 0 = all */
    int n_req;
    router_skill_level_t req[ROUTER_MAX_REQ];
    int n_steps;                       /* 0 = one base step */
    router_step_t steps[ROUTER_MAX_STEPS];
    router_strategy_t strategy;
    int64_t sticky_ms;                 /* preferred agent honoured this long (of wait) */
    int64_t offer_timeout_ms;          /* 0: the caller times offers out itself */
    int64_t sla_ms;                    /* answered within this wait counts as SLA met */
    int64_t sla_ch_ms[ROUTER_CHANNELS];/* per-channel SLA target for answered_in_sla; 0 = sla_ms
                                        * (stats' sla_target_ms stays sla_ms) */
    uint32_t max_len;                  /* waiting + parked tasks; 0 = only the global max_tasks. When
                                        * full, an enqueue goes down the overflow chain, else
                                        * OMNI_EFULL. Admissions only (see the model above). */
    int64_t wrap_up_ms;                /* an AVAILABLE agent is WRAP_UP this long after releasing a
                                        * task of this queue (no new offers on any channel); 0 =
                                        * none; <= 2^50 */
} router_queue_cfg_t;

typedef struct {
    uint32_t waiting;          /* waiting + parked on a sticky agent */
    int64_t oldest_wait_ms;    /* by original enqueue time */
    uint64_t answered, answered_in_sla, offered, rejected, timed_out, abandoned;
    int64_t sla_target_ms;     /* the queue's SLA target (answer within) */
    double sla_met_pct;        /* answered_in_sla / answered * 100; 100 when none answered */
    int64_t aht_ms;            /* moving average handle time (accept -> release), EWMA 1/8 */
    uint32_t staffed;          /* agents not offline that can serve this queue at some step */
    int64_t ewt_ms;            /* waiting * aht / max(1, staffed); 0 before any handled task */
} router_queue_stats_t;

typedef struct router router_t;

int router_new(const router_limits_t *lim, router_t **out);
void router_destroy(router_t **r);
void router_set_sink(router_t *r, router_sink_fn fn, void *ctx);

/* Interns a name to a small id (creates it): >= 0 id, or OMNI_EFULL / OMNI_EINVAL / OMNI_ETOOBIG. */
int router_skill(router_t *r, const char *name);
int router_team(router_t *r, const char *name);

int router_queue_add(router_t *r, const router_queue_cfg_t *cfg, int *qid);
int router_queue_find(const router_t *r, const char *name);   /* id or OMNI_ENOTFOUND */
const char *router_queue_name(const router_t *r, int queue);  /* NULL if no such queue */
uint32_t router_queue_count(const router_t *r);
/* Waiting tasks of `queue` move to `to` once they waited after_ms (original enqueue time kept, so
 * they keep their place by age); also where enqueues go when `queue` is at max_len. after_ms 0:
 * only when full. Chains are allowed; a cycle, to == queue, or a `to` that does not take every
 * channel of `queue` is OMNI_EINVAL. to = -1 removes it. May be called at run time (may allocate,
 * OMNI_ENOMEM): tasks already waiting get the new rule, moved at the next router_advance. */
int router_queue_set_overflow(router_t *r, int queue, int to, int64_t after_ms);
/* Agents start OFFLINE. Re-adding an existing id is OMNI_EINVAL. */
int router_agent_add(router_t *r, const router_agent_cfg_t *cfg);
/* New skills/team/capacity for an existing OFFLINE agent (a new login); eligibility re-resolved.
 * OMNI_ENOTFOUND unknown id, OMNI_ESTATE not offline, OMNI_EINVAL bad config. Tasks parked on it
 * (customer preference, transfer) stay parked even if it no longer serves their queue. */
int router_agent_update(router_t *r, const router_agent_cfg_t *cfg);
int router_agent_exists(const router_t *r, const char *agent_id);   /* 1 or 0 */
/* Iteration for omnictl: agent i in 0..router_agent_count()-1 (NULL beyond). Agents are never
 * removed, so indexes are stable. */
uint32_t router_agent_count(const router_t *r);
const char *router_agent_id(const router_t *r, uint32_t i);

/* Always wins over a state the router set (voids a pending wrap-up end); resets the missed-offer
 * count, even when the state does not change. */
int router_agent_set_state(router_t *r, const char *agent_id, router_state_t st, int64_t now_ms);
/* New conversation. priority_ms raises it (virtual ms of wait); preferred_agent may be NULL. */
int router_enqueue(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms,
                   const char *preferred_agent, int64_t now_ms);
/* Same, with the task's original enqueue time (<= now, else OMNI_EINVAL): recovery after a
 * restart, requeues kept by the caller. The task's wait, step, score, sticky time and overflow
 * wait count from enqueued_at (so it may go straight down the overflow chain). */
int router_enqueue_at(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms,
                      const char *preferred_agent, int64_t enqueued_at, int64_t now_ms);
/* A task the caller already had admitted once (recovery after a restart, a requeue it keeps
 * itself): like router_enqueue_at but never refused for max_len, never sticky. */
int router_readmit_at(router_t *r, const char *task_id, int queue, int channel, int64_t priority_ms, int64_t enq_at,
                      int64_t now_ms);
/* Recovery: put a task straight into ASSIGNED on an agent that is not OFFLINE (its load counts
 * from now). Capacity is enforced, cross-channel blocks are not (the agent already holds it; the
 * blocks then keep new work away as usual), nor is eligibility. Counts in the agent's `assigned`,
 * not in the queue's answered/SLA, and its release gives no AHT sample (handle time unknown). No
 * decision is emitted. It has no task priority offset: if requeued later (agent offline, transfer)
 * it is ordered by enqueued_at and its queue's priority. OMNI_EFULL if the agent has no room on
 * that channel (or no task slot), OMNI_ESTATE offline agent, OMNI_ENOTFOUND unknown agent,
 * OMNI_EINVAL task id in use or bad queue/channel/time. */
int router_attach(router_t *r, const char *task_id, int queue, int channel, const char *agent_id,
                  int64_t enqueued_at, int64_t now_ms);
/* An ASSIGNED task changes hands: the holder's slot is freed (no wrap-up) and the holder takes
 * new work; the task re-enters `queue` (-1 = its queue) with its original enqueue time (order,
 * step and score as before; the overflow wait restarts now). With to_agent, it is parked on that
 * agent for hold_ms (eligibility not required: a supervisor's choice; an offline or busy agent
 * gets it if it has room within hold_ms) and offered when the agent has room (strategy
 * ROUTER_STICKY), then falls back to the queue's pool; hold_ms 0: offered only if it has room now.
 * The holder is not offered it again for max(offer timeout, 5 s). The queue's max_len does not
 * apply. OMNI_ENOTFOUND unknown task/queue/agent, OMNI_ESTATE task not assigned, OMNI_EINVAL
 * to_agent is the holder, the queue does not take the task's channel, or hold_ms < 0. */
int router_transfer(router_t *r, const char *task_id, int queue, const char *to_agent, int64_t hold_ms,
                    int64_t now_ms);
int router_accept(router_t *r, uint64_t offer_id, int64_t now_ms);
int router_reject(router_t *r, uint64_t offer_id, int64_t now_ms);
int router_offer_timeout(router_t *r, uint64_t offer_id, int64_t now_ms);
/* The assigned conversation ended: frees the agent's slot (capacity freed), removes the task,
 * and the agent takes the best waiting task it may serve, unless the queue's wrap_up_ms starts
 * (or extends) a wrap-up. Keyed by task, not (agent, channel): the router knows which agent and
 * channel hold it, and a slot cannot be freed twice. */
int router_release(router_t *r, const char *task_id, int64_t now_ms);
/* A waiting/parked/offered conversation was abandoned by the customer. */
int router_cancel(router_t *r, const char *task_id, int64_t now_ms);
/* Processes every step expiry, park (sticky/transfer) expiry, offer timeout, overflow wait and
 * wrap-up end <= now_ms. */
int router_advance(router_t *r, int64_t now_ms);
/* Earliest pending deadline in ms, or INT64_MAX when none. */
int64_t router_next_deadline(const router_t *r);

int router_queue_stats(const router_t *r, int queue, int64_t now_ms, router_queue_stats_t *out);

/* Introspection for tests and omnictl. */
typedef struct {
    router_state_t state;
    int load[ROUTER_CHANNELS], capacity[ROUTER_CHANNELS];
    uint64_t assigned;
} router_agent_info_t;
int router_agent_info(const router_t *r, const char *agent_id, router_agent_info_t *out);
/* First eligible step of agent for queue, or -1 if it can never serve it. */
int router_agent_min_step(const router_t *r, const char *agent_id, int queue);
/* Current step of a task (waiting or offered) */
int router_task_step(const router_t *r, const char *task_id, int64_t now_ms);

typedef enum { ROUTER_T_WAITING = 1, ROUTER_T_PARKED, ROUTER_T_OFFERED, ROUTER_T_ASSIGNED } router_tstate_t;
typedef struct {
    router_tstate_t state;
    int queue, channel;
    const char *agent_id;    /* offered/assigned/parked-on agent, NULL otherwise; router-owned */
    uint64_t offer_id;       /* while OFFERED */
    int64_t enqueued_at;
} router_task_info_t;
/* OMNI_ENOTFOUND if the task is not in the router (released, cancelled, refused). */
int router_task_info(const router_t *r, const char *task_id, router_task_info_t *out);

/* Full consistency check for tests: capacity never exceeded, loads match held tasks, pools hold
 * exactly the able agents, held tasks eligible (by the rule of how they got there: pools, sticky,
 * transfer/attach), no waiting task with an able eligible agent, every waiting/parked/offered task
 * and wrap-up end has exactly its deadline and none <= now is left (call router_advance first), no
 * waiting task past its overflow wait, no paused-worthy agent still available, overflow chains
 * acyclic, per-queue reaches exact and every heap reserved to them, every heap ordered. 0 or a
 * negative code naming the first violation. O(everything). */
int router_check(const router_t *r, int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
