/* A string-keyed hash map for the broker's tables (conversations, agent sessions): open
 * addressing, linear probing, backward-shift deletion. Keys are borrowed from the values. */
#ifndef OMNI_STRMAP_H
#define OMNI_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;         /* borrowed: must live as long as the entry (usually inside val) */
    void *val;
} strmap_slot_t;

typedef struct {
    strmap_slot_t *slots;
    size_t cap, n;           /* cap is a power of two; n <= cap / 2 */
} strmap_t;

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m);   /* frees the table, not the values */
void *strmap_get(const strmap_t *m, const char *key);
/* Inserts or replaces. OMNI_ENOMEM when the table cannot grow. */
int strmap_put(strmap_t *m, const char *key, void *val);
/* Returns the removed value or NULL. */
void *strmap_del(strmap_t *m, const char *key);
/* Iteration: for (size_t i = 0; (i = strmap_next(m, i, &k, &v)) != 0;) ... Safe only without
 * inserts or deletes in between. */
size_t strmap_next(const strmap_t *m, size_t i, const char **key, void **val);

#endif
