/* `omnictl queues` and `omnictl agents`: the router's view of its queues and agents over the
 * control endpoint, as one JSON array or an aligned table. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* One routing request; on CTL_EXIT_OK *rep holds the wanted body (free it). An old broker
 * answers `unsupported`, which ctl_request reports like any error reply. */
static int ctl_routing_call(ctl_conn_t *c, int agents, Omni__V1__ControlReply **rep)
{
    Omni__V1__QueuesRequest qr = OMNI__V1__QUEUES_REQUEST__INIT;
    Omni__V1__AgentsRequest ar = OMNI__V1__AGENTS_REQUEST__INIT;
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    if (agents) {
        req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_AGENTS;
        req.agents = &ar;
    } else {
        req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_QUEUES;
        req.queues = &qr;
    }
    int rc = ctl_request(c, &req, rep);
    if (rc != CTL_EXIT_OK)
        return rc;
    return ctl_expect(*rep, agents ? OMNI__V1__CONTROL_REPLY__BODY_AGENTS
                                   : OMNI__V1__CONTROL_REPLY__BODY_QUEUES,
                      agents ? "agents" : "queues");
}

/* Slots per channel as {"chat":3,...}. */
static void ctl_slots_json(json_t *j, const char *key, Omni__V1__ChannelSlots *const *v, size_t n)
{
    json_key(j, key);
    json_obj_begin(j);
    for (size_t i = 0; i < n; i++)
        json_kv_u64(j, ctl_channel(v[i]->channel), v[i]->slots);
    json_obj_end(j);
}

/* Slots per channel as "chat=3,email=5" into buf ("-" for none). */
static const char *ctl_slots_text(Omni__V1__ChannelSlots *const *v, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%u", i ? "," : "",
                                ctl_channel(v[i]->channel), v[i]->slots);
    return *buf ? buf : "-";
}

/* ---- queues ---------------------------------------------------------------------------- */

static void ctl_queues_json(const Omni__V1__QueuesReply *qs)
{
    json_t j;
    json_init(&j);
    json_arr_begin(&j);
    for (size_t i = 0; i < qs->n_queues; i++) {
        const Omni__V1__QueueStatus *q = qs->queues[i];
        json_obj_begin(&j);
        json_kv_str(&j, "name", q->name);
        json_kv_u64(&j, "waiting", q->waiting);
        json_kv_i64(&j, "oldest_wait_ms", q->oldest_wait_ms);
        json_kv_i64(&j, "ewt_ms", q->ewt_ms);
        json_kv_i64(&j, "sla_target_ms", q->sla_target_ms);
        json_kv_f64(&j, "sla_met_pct", q->sla_met_pct);
        json_kv_u64(&j, "answered", q->answered);
        json_kv_u64(&j, "offered", q->offered);
        json_kv_u64(&j, "staffed", q->staffed);
        json_kv_bool(&j, "open", q->open);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    ctl_emit(&j);
    json_free(&j);
}

/* Milliseconds as seconds with one decimal ("12.3s"). */
static const char *ctl_secs(int64_t ms, char *buf, size_t len)
{
    snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    return buf;
}

static void ctl_queues_table(const Omni__V1__QueuesReply *qs)
{
    ctl_table_t t = { .ncols = 10 };
    ctl_table_row(&t, "QUEUE", "WAITING", "OLDEST", "EWT", "SLA TARGET", "SLA MET", "ANSWERED",
                  "OFFERED", "STAFFED", "OPEN");
    for (size_t i = 0; i < qs->n_queues; i++) {
        const Omni__V1__QueueStatus *q = qs->queues[i];
        char waiting[16], oldest[24], ewt[24], target[24], met[16], answered[24], offered[24],
            staffed[16];
        snprintf(waiting, sizeof waiting, "%u", q->waiting);
        snprintf(met, sizeof met, "%.1f%%", q->sla_met_pct);
        snprintf(answered, sizeof answered, "%llu", (unsigned long long)q->answered);
        snprintf(offered, sizeof offered, "%llu", (unsigned long long)q->offered);
        snprintf(staffed, sizeof staffed, "%u", q->staffed);
        ctl_table_row(&t, q->name, waiting, ctl_secs(q->oldest_wait_ms, oldest, sizeof oldest),
                      ctl_secs(q->ewt_ms, ewt, sizeof ewt),
                      ctl_secs(q->sla_target_ms, target, sizeof target), met, answered, offered,
                      staffed, q->open ? "yes" : "no");
    }
    ctl_table_print(&t, "");
    if (!qs->n_queues)
        printf("(no queues)\n");
}

int ctl_queues_run(ctl_conn_t *c)
{
    Omni__V1__ControlReply *rep;
    int rc = ctl_routing_call(c, 0, &rep);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->opts->json)
        ctl_queues_json(rep->queues);
    else
        ctl_queues_table(rep->queues);
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_OK;
}

/* ---- agents ---------------------------------------------------------------------------- */

static void ctl_agent_info_json(json_t *j, const Omni__V1__AgentInfo *a)
{
    json_obj_begin(j);
    json_kv_str(j, "id", a->id);
    json_kv_str(j, "state", a->state);
    json_key(j, "skills");
    json_obj_begin(j);
    for (size_t k = 0; k < a->n_skills; k++)
        json_kv_u64(j, a->skills[k]->name, a->skills[k]->level ? a->skills[k]->level : 1);
    json_obj_end(j);
    ctl_slots_json(j, "capacity", a->capacity, a->n_capacity);
    ctl_slots_json(j, "load", a->load, a->n_load);
    json_kv_u64(j, "assigned", a->assigned);
    json_kv_strv(j, "conversations", a->conversations, a->n_conversations);
    json_obj_end(j);
}

static void ctl_agents_json(const Omni__V1__AgentsReply *as)
{
    json_t j;
    json_init(&j);
    json_arr_begin(&j);
    for (size_t i = 0; i < as->n_agents; i++)
        ctl_agent_info_json(&j, as->agents[i]);
    json_arr_end(&j);
    ctl_emit(&j);
    json_free(&j);
}

/* "billing:3,lang:ja:5" into buf. */
static const char *ctl_skills_text(const Omni__V1__AgentInfo *a, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < a->n_skills && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s:%u", k ? "," : "",
                                a->skills[k]->name, a->skills[k]->level ? a->skills[k]->level : 1);
    return *buf ? buf : "-";
}

static void ctl_agents_table(const Omni__V1__AgentsReply *as)
{
    ctl_table_t t = { .ncols = 7 };
    ctl_table_row(&t, "AGENT", "STATE", "SKILLS", "CAPACITY", "LOAD", "ASSIGNED", "CONVERSATIONS");
    for (size_t i = 0; i < as->n_agents; i++) {
        const Omni__V1__AgentInfo *a = as->agents[i];
        char skills[512], cap[128], load[128], assigned[24], convs[512];
        size_t off = 0;
        convs[0] = '\0';
        for (size_t k = 0; k < a->n_conversations && off < sizeof convs; k++)
            off += (size_t)snprintf(convs + off, sizeof convs - off, "%s%s", k ? "," : "",
                                    a->conversations[k]);
        snprintf(assigned, sizeof assigned, "%llu", (unsigned long long)a->assigned);
        ctl_table_row(&t, a->id, a->state, ctl_skills_text(a, skills, sizeof skills),
                      ctl_slots_text(a->capacity, a->n_capacity, cap, sizeof cap),
                      ctl_slots_text(a->load, a->n_load, load, sizeof load), assigned,
                      *convs ? convs : "-");
    }
    ctl_table_print(&t, "");
    if (!as->n_agents)
        printf("(no agents logged in)\n");
}

int ctl_agents_run(ctl_conn_t *c)
{
    Omni__V1__ControlReply *rep;
    int rc = ctl_routing_call(c, 1, &rep);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->opts->json)
        ctl_agents_json(rep->agents);
    else
        ctl_agents_table(rep->agents);
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_OK;
}
