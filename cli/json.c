/* The JSON writer of omnictl (see json.h): appends tokens to a growable buffer and keeps
 * just enough state (one "filled" flag per open container) to place commas itself. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(json_t *j)
{
    memset(j, 0, sizeof *j);
}

void json_free(json_t *j)
{
    free(j->buf);
    json_init(j);
}

void json_reset(json_t *j)
{
    char *buf = j->buf;
    size_t cap = j->cap;
    json_init(j);
    j->buf = buf;
    j->cap = cap;
    if (buf)
        buf[0] = '\0';
}

const char *json_cstr(const json_t *j)
{
    if (j->failed)
        return NULL;
    return j->buf ? j->buf : "";
}

static void json_put(json_t *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (j->len + n + 1 > cap)
            cap *= 2;
        char *nb = realloc(j->buf, cap);
        if (!nb) {
            j->failed = 1;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void json_putc(json_t *j, char c)
{
    json_put(j, &c, 1);
}

/* Called before every value or key: writes the comma the container needs, if any. */
static void json_sep(json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0) {
        if (j->filled[j->depth - 1])
            json_putc(j, ',');
        j->filled[j->depth - 1] = 1;
    }
}

static void json_open(json_t *j, char c)
{
    json_sep(j);
    if (j->depth >= JSON_MAX_DEPTH) {
        j->failed = 1;
        return;
    }
    j->filled[j->depth++] = 0;
    json_putc(j, c);
}

static void json_close(json_t *j, char c)
{
    if (j->depth <= 0 || j->after_key) {
        j->failed = 1;
        return;
    }
    j->depth--;
    json_putc(j, c);
}

void json_obj_begin(json_t *j) { json_open(j, '{'); }
void json_obj_end(json_t *j) { json_close(j, '}'); }
void json_arr_begin(json_t *j) { json_open(j, '['); }
void json_arr_end(json_t *j) { json_close(j, ']'); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not valid:
 * no overlong forms, no surrogates, nothing above U+10FFFF (as omni_utf8_valid). */
static size_t json_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;       /* overlong */
        else if (c == 0xF4) hi = 0x8F;  /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void json_escaped(json_t *j, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    json_putc(j, '"');
    while (s < end) {
        /* Copy the longest run that needs no escaping in one go. */
        const unsigned char *run = s;
        while (s < end && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        json_put(j, (const char *)run, (size_t)(s - run));
        if (s >= end)
            break;
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            json_put(j, esc, 2);
            s++;
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            json_put(j, esc, 6);
            s++;
        } else {
            size_t len = json_utf8_seq(s, (size_t)(end - s));
            if (len) {
                json_put(j, (const char *)s, len);
                s += len;
            } else {
                json_put(j, "\xEF\xBF\xBD", 3); /* U+FFFD for one bad byte */
                s++;
            }
        }
    }
    json_putc(j, '"');
}

void json_key(json_t *j, const char *key)
{
    if (j->after_key || j->depth <= 0) {
        j->failed = 1;
        return;
    }
    json_sep(j);
    json_escaped(j, key ? key : "", key ? strlen(key) : 0);
    json_putc(j, ':');
    j->after_key = 1;
}

void json_strn(json_t *j, const char *s, size_t n)
{
    json_sep(j);
    json_escaped(j, s ? s : "", s ? n : 0);
}

void json_str(json_t *j, const char *s)
{
    json_strn(j, s, s ? strlen(s) : 0);
}

void json_u64(json_t *j, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    json_sep(j);
    json_put(j, num, (size_t)n);
}

void json_i64(json_t *j, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    json_sep(j);
    json_put(j, num, (size_t)n);
}

void json_f64(json_t *j, double v)
{
    /* JSON has no NaN or infinity: a value that is not a number is written as null. */
    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    char num[32];
    int n = snprintf(num, sizeof num, "%.10g", v);
    json_sep(j);
    json_put(j, num, (size_t)n);
}

void json_bool(json_t *j, int v)
{
    json_sep(j);
    if (v)
        json_put(j, "true", 4);
    else
        json_put(j, "false", 5);
}

void json_null(json_t *j)
{
    json_sep(j);
    json_put(j, "null", 4);
}

void json_kv_str(json_t *j, const char *key, const char *s)
{
    json_key(j, key);
    json_str(j, s);
}

void json_kv_u64(json_t *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_u64(j, v);
}

void json_kv_i64(json_t *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_i64(j, v);
}

void json_kv_f64(json_t *j, const char *key, double v)
{
    json_key(j, key);
    json_f64(j, v);
}

void json_kv_bool(json_t *j, const char *key, int v)
{
    json_key(j, key);
    json_bool(j, v);
}

void json_kv_strv(json_t *j, const char *key, char *const *v, size_t n)
{
    json_key(j, key);
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        json_str(j, v[i]);
    json_arr_end(j);
}
