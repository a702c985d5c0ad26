/* Indexed binary min-heap for the routing core: O(log n) push/remove/update, O(1) peek.
 * Capacity is reserved ahead by the router so decisions never allocate. */
#include <stdlib.h>

#include <omni/omni.h>

#include "heap.h"

void rheap_init(rheap_t *h, int32_t *pos)
{
    h->e = NULL;
    h->n = h->cap = 0;
    h->pos = pos;
}

void rheap_free(rheap_t *h)
{
    free(h->e);
    h->e = NULL;
    h->n = h->cap = 0;
}

int rheap_reserve(rheap_t *h, uint32_t n)
{
    if (n <= h->cap) return 0;
    uint32_t c = h->cap ? h->cap : 8;
    while (c < n) c *= 2;
    rheap_ent_t *e = realloc(h->e, (size_t)c * sizeof *e);
    if (!e) return OMNI_ENOMEM;
    h->e = e;
    h->cap = c;
    return 0;
}

static void place(rheap_t *h, uint32_t i, rheap_ent_t v)
{
    h->e[i] = v;
    h->pos[v.ref] = (int32_t)i;
}

static void sift_up(rheap_t *h, uint32_t i)
{
    rheap_ent_t v = h->e[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!rheap_less(&v, &h->e[p])) break;
        place(h, i, h->e[p]);
        i = p;
    }
    place(h, i, v);
}

static void sift_down(rheap_t *h, uint32_t i)
{
    rheap_ent_t v = h->e[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        const rheap_ent_t *best = &v;
        if (l < h->n && rheap_less(&h->e[l], best)) { m = l; best = &h->e[l]; }
        if (l + 1 < h->n && rheap_less(&h->e[l + 1], best)) m = l + 1;
        if (m == i) break;
        place(h, i, h->e[m]);
        i = m;
    }
    place(h, i, v);
}

void rheap_push(rheap_t *h, int64_t k1, int64_t k2, uint32_t ref)
{
    uint32_t i = h->n++;
    h->e[i] = (rheap_ent_t){k1, k2, ref};
    sift_up(h, i);
}

void rheap_remove(rheap_t *h, uint32_t ref)
{
    uint32_t i = (uint32_t)h->pos[ref];
    h->pos[ref] = -1;
    uint32_t last = --h->n;
    if (i == last) return;
    h->e[i] = h->e[last];
    h->pos[h->e[i].ref] = (int32_t)i;
    /* The moved entry may belong above or below its new slot. */
    if (i > 0 && rheap_less(&h->e[i], &h->e[(i - 1) / 2])) sift_up(h, i);
    else sift_down(h, i);
}

void rheap_update(rheap_t *h, uint32_t ref, int64_t k1, int64_t k2)
{
    uint32_t i = (uint32_t)h->pos[ref];
    h->e[i].k1 = k1;
    h->e[i].k2 = k2;
    if (i > 0 && rheap_less(&h->e[i], &h->e[(i - 1) / 2])) sift_up(h, i);
    else sift_down(h, i);
}
