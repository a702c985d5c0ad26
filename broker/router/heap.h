/* Indexed binary min-heap used by the routing core for task queues, agent pools and deadlines.
 * Entries carry a two-part key and a ref; pos[ref] tracks the slot so remove/update are O(log n). */
#ifndef OMNI_ROUTER_HEAP_H
#define OMNI_ROUTER_HEAP_H

#include <stdint.h>

typedef struct {
    int64_t k1, k2;   /* ordered by k1, then k2, then ref: a total order, so ties are deterministic */
    uint32_t ref;     /* caller's index; pos[ref] is this entry's slot, -1 when absent */
} rheap_ent_t;

typedef struct {
    rheap_ent_t *e;
    uint32_t n, cap;
    int32_t *pos;     /* shared position array owned by the router (one per kind of membership) */
} rheap_t;

void rheap_init(rheap_t *h, int32_t *pos);
void rheap_free(rheap_t *h);
/* Grows capacity to at least n (config/enqueue time only, so a push never allocates). */
int rheap_reserve(rheap_t *h, uint32_t n);
/* Push requires n < cap (reserved earlier); ref must be absent. */
void rheap_push(rheap_t *h, int64_t k1, int64_t k2, uint32_t ref);
void rheap_remove(rheap_t *h, uint32_t ref);
void rheap_update(rheap_t *h, uint32_t ref, int64_t k1, int64_t k2);
static inline int rheap_has(const rheap_t *h, uint32_t ref) { return h->pos[ref] >= 0; }
static inline const rheap_ent_t *rheap_top(const rheap_t *h) { return h->n ? &h->e[0] : 0; }
/* 1 if a orders before b. */
static inline int rheap_less(const rheap_ent_t *a, const rheap_ent_t *b)
{
    if (a->k1 != b->k1) return a->k1 < b->k1;
    if (a->k2 != b->k2) return a->k2 < b->k2;
    return a->ref < b->ref;
}

#endif
