/* A small streaming JSON writer for omnictl: builds one document in a growable buffer.
 * Commas and key/value separators are inserted automatically; there is no parser. */
#ifndef OMNI_CLI_JSON_H
#define OMNI_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Deeper nesting than this marks the document as failed (omnictl never goes past 4). */
#define JSON_MAX_DEPTH 32

typedef struct {
    char *buf;          /* NUL-terminated document so far (NULL until the first write) */
    size_t len, cap;
    int failed;         /* out of memory or misuse: the document is not valid */
    int depth;
    /* Per open container: something was written in it already (a comma is due). */
    unsigned char filled[JSON_MAX_DEPTH];
    int after_key;      /* a key was written: the next value needs no comma */
} json_t;

void json_init(json_t *j);
void json_free(json_t *j);
/* Empty the document, keeping the buffer for the next one. */
void json_reset(json_t *j);

/* The document ("" if empty); valid until the next write. NULL if failed. */
const char *json_cstr(const json_t *j);

void json_obj_begin(json_t *j);
void json_obj_end(json_t *j);
void json_arr_begin(json_t *j);
void json_arr_end(json_t *j);
void json_key(json_t *j, const char *key);

/* Values. Strings are copied with JSON escaping; NULL writes "". Valid UTF-8 passes through
 * unchanged; a byte that is not part of valid UTF-8 becomes U+FFFD so the output stays valid. */
void json_str(json_t *j, const char *s);
void json_strn(json_t *j, const char *s, size_t n);
void json_u64(json_t *j, uint64_t v);
void json_i64(json_t *j, int64_t v);
void json_f64(json_t *j, double v);   /* NaN and infinities: null */
void json_bool(json_t *j, int v);
void json_null(json_t *j);

/* key + value in one call. */
void json_kv_str(json_t *j, const char *key, const char *s);
void json_kv_u64(json_t *j, const char *key, uint64_t v);
void json_kv_i64(json_t *j, const char *key, int64_t v);
void json_kv_f64(json_t *j, const char *key, double v);
void json_kv_bool(json_t *j, const char *key, int v);
/* An array of strings (protobuf repeated string). */
void json_kv_strv(json_t *j, const char *key, char *const *v, size_t n);

#endif
