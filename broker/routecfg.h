/* The `routing:` section of the broker's YAML config: queues, business-hours calendars, agent
 * defaults and the queue match rules, checked whole at start-up and applied to a fresh router. */
#ifndef OMNI_ROUTECFG_H
#define OMNI_ROUTECFG_H

#include <stddef.h>
#include <stdint.h>

#include "hours.h"
#include "match.h"
#include "router.h"

#define ROUTECFG_MAX_QUEUES 64
#define ROUTECFG_MAX_CALENDARS 16
#define ROUTECFG_MESSAGE_MAX 1024   /* after-hours auto-reply bytes */

typedef enum { ROUTECFG_AFTER_QUEUE = 0, ROUTECFG_AFTER_REJECT } routecfg_after_t;

typedef struct {
    char name[ROUTER_NAME_MAX];
    char team[ROUTER_NAME_MAX];          /* "" = none */
    int n_req;
    struct { char skill[ROUTER_NAME_MAX]; int level; } req[ROUTER_MAX_REQ];
    /* Everything else of the router's queue config; its name/team/req are filled in by
     * routecfg_apply from the fields above. */
    router_queue_cfg_t rq;
    char overflow[ROUTER_NAME_MAX];      /* "" = none */
    int64_t overflow_after_ms;           /* 0 with an overflow queue: only when full */
    int calendar;                        /* index into routecfg_t.calendars; -1 = always open */
    routecfg_after_t after_hours;
    char after_hours_message[ROUTECFG_MESSAGE_MAX]; /* "" = no auto-reply */
} routecfg_queue_t;

typedef struct {
    char default_queue[ROUTER_NAME_MAX]; /* queue of messages no rule picks */
    match_rules_t *rules;                /* owned */
    size_t n_queues;
    routecfg_queue_t queues[ROUTECFG_MAX_QUEUES];
    size_t n_calendars;
    char calendar_names[ROUTECFG_MAX_CALENDARS][ROUTER_NAME_MAX];
    hours_t *calendars[ROUTECFG_MAX_CALENDARS];   /* owned */
    /* Agent defaults. */
    int capacity[ROUTER_CHANNELS];       /* slots when a login does not say; ROUTER_CH_* order */
    uint8_t blocks[ROUTER_CHANNELS];     /* as router_limits_t.blocks */
    int use_blocks;
    uint32_t max_missed;                 /* auto-pause after this many timed-out offers (default 3) */
    int64_t heartbeat_timeout_ms;        /* session ends after this long silent (default 6000) */
    int64_t reclaim_ms;                  /* after a restart, assignments wait this long for their agent (30000) */
    int64_t transfer_hold_ms;            /* a transfer to one agent waits this long for it (60000) */
    uint32_t max_agents, max_tasks;      /* router limits (10000, 200000) */
} routecfg_t;

/* path NULL (no config file) or a file without `routing:` = the contract's default: one queue
 * "default" taking every channel, longest idle, every agent eligible, always open. Otherwise
 * reads the file's top-level `routing:` key. On error nothing is allocated and err holds one line
 * "PATH:LINE: message". OMNI_EIO, OMNI_ECONFIG, OMNI_ENOMEM. */
int routecfg_load(const char *path, routecfg_t **out, char *err, size_t errlen);
void routecfg_destroy(routecfg_t **rc);

/* Fills a router_limits_t from the config. */
void routecfg_limits(const routecfg_t *rc, router_limits_t *lim);
/* Interns skills/teams and adds every queue (router queue id == index in rc->queues) and its
 * overflow to a fresh router. OMNI_ECONFIG with one line in err. */
int routecfg_apply(const routecfg_t *rc, router_t *r, char *err, size_t errlen);
/* Index of the named queue, or -1. */
int routecfg_queue_index(const routecfg_t *rc, const char *name);

#endif
