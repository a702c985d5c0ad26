/* String-keyed open-addressing hash map (see strmap.h). FNV-1a; grows at half full so probes
 * stay short; deletion shifts entries back instead of leaving tombstones. */
#include <stdlib.h>
#include <string.h>

#include <omni/omni.h>

#include "strmap.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

void strmap_init(strmap_t *m) { memset(m, 0, sizeof(*m)); }

void strmap_free(strmap_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static size_t find(const strmap_t *m, const char *key)
{
    size_t mask = m->cap - 1, i = hash(key) & mask;
    while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
        i = (i + 1) & mask;
    return i;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = find(m, key);
    return m->slots[i].key ? m->slots[i].val : NULL;
}

static int grow(strmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    strmap_slot_t *old = m->slots;
    size_t oldcap = m->cap;
    if (!(m->slots = calloc(cap, sizeof(*m->slots)))) {
        m->slots = old;
        return OMNI_ENOMEM;
    }
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            m->slots[find(m, old[i].key)] = old[i];
    free(old);
    return 0;
}

int strmap_put(strmap_t *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
        return OMNI_ENOMEM;
    size_t i = find(m, key);
    if (!m->slots[i].key)
        m->n++;
    m->slots[i] = (strmap_slot_t){key, val};
    return 0;
}

void *strmap_del(strmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = find(m, key);
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    /* Backward shift: move later entries of the probe run into the hole when their home
     * slot is not between the hole and themselves. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = hash(m->slots[j].key) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (strmap_slot_t){NULL, NULL};
    m->n--;
    return val;
}

size_t strmap_next(const strmap_t *m, size_t i, const char **key, void **val)
{
    for (; i < m->cap; i++)
        if (m->slots[i].key) {
            *key = m->slots[i].key;
            *val = m->slots[i].val;
            return i + 1;
        }
    return 0;
}
