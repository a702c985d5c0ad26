/* Identity normalization: "TYPE:VALUE" to the one byte string customers are linked on.
 * Phone numbers go through phone.cc (libphonenumber); every other type is plain byte work. */
#include <string.h>

#include <omni/identity.h>
#include <omni/omni.h>

#define EMAIL_MAX 254 /* RFC 5321 path limit: longer addresses cannot be delivered to */
#define ID_MAX 256

typedef enum { KIND_EMAIL, KIND_PHONE, KIND_ID } kind_t;

static const struct {
    const char *name;
    kind_t kind;
} types[] = {
    {"email", KIND_EMAIL}, {"phone", KIND_PHONE}, {"line", KIND_ID},     {"messenger", KIND_ID},
    {"x", KIND_ID},        {"chat", KIND_ID},     {"external", KIND_ID},
};

/* Placeholders that upstream systems write when they have no identity; linking on them
 * would merge every such customer into one. */
static const char *const junk_values[] = {
    "anonymous", "null", "nil", "none", "undefined", "unknown", "-1", "n/a",
};

/* Mailboxes of machines, not people: replies from them must never merge customers. */
static const char *const junk_locals[] = {
    "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply",
    "mailer-daemon", "postmaster",
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int eq_nocase(const char *s, size_t n, const char *word)
{
    size_t i;
    if (strlen(word) != n) return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != word[i]) return 0;
    return 1;
}

/* Width in bytes of the whitespace character starting at s, 0 if none. Beyond ASCII,
 * NBSP and the ideographic space (what Japanese IMEs type for "space") count too. */
static size_t space_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n >= 1 && (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r'))) return 1;
    if (n >= 2 && u[0] == 0xC2 && u[1] == 0xA0) return 2;
    if (n >= 3 && u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80) return 3;
    return 0;
}

/* Same, for the whitespace character ending at s[n-1]. */
static size_t space_before(const char *s, size_t n)
{
    if (n >= 1 && space_at(s + n - 1, 1)) return 1;
    if (n >= 2 && space_at(s + n - 2, 2) == 2) return 2;
    if (n >= 3 && space_at(s + n - 3, 3) == 3) return 3;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    size_t w;
    while ((w = space_at(*s, *n)) != 0) {
        *s += w;
        *n -= w;
    }
    while ((w = space_before(*s, *n)) != 0) *n -= w;
}

/* Controls, whitespace and invisible format characters: two ids that differ only in
 * those would look equal to an agent yet never link, so they are refused outright.
 * The input is valid UTF-8 here. */
static int has_bad_char(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i;
    for (i = 0; i < n; i++) {
        if (u[i] <= 0x20 || u[i] == 0x7F) return 1;
        if (u[i] == 0xC2 && i + 1 < n && (u[i + 1] <= 0x9F || u[i + 1] == 0xA0)) return 1;
        if (u[i] == 0xE2 && i + 2 < n && u[i + 1] == 0x80 &&
            (u[i + 2] <= 0x8F || u[i + 2] == 0xA8 || u[i + 2] == 0xA9 || u[i + 2] == 0xAF))
            return 1; /* U+2000..200F, U+2028, U+2029, U+202F */
        if (u[i] == 0xE2 && i + 2 < n && u[i + 1] == 0x81 && (u[i + 2] == 0x9F || u[i + 2] == 0xA0))
            return 1; /* U+205F, U+2060 */
        if (u[i] == 0xE3 && i + 2 < n && u[i + 1] == 0x80 && u[i + 2] == 0x80) return 1;
        if (u[i] == 0xEF && i + 2 < n && u[i + 1] == 0xBB && u[i + 2] == 0xBF) return 1;
    }
    return 0;
}

static int is_junk(const char *v, size_t n)
{
    size_t i;
    for (i = 0; i < sizeof(junk_values) / sizeof(junk_values[0]); i++)
        if (eq_nocase(v, n, junk_values[i])) return 1;
    for (i = 0; i < n; i++)
        if (v[i] != '0' && v[i] != '-') return 0;
    return 1; /* ^[0-]*$ */
}

/* Writes "type:value" (value lower-cased if asked) and passes rc through when it fits. */
static int emit(char *out, size_t outlen, const char *type, const char *v, size_t n, int fold,
                int rc)
{
    size_t tl = strlen(type), i;
    if (tl + 1 + n + 1 > outlen) return OMNI_ETOOBIG;
    memcpy(out, type, tl);
    out[tl] = ':';
    for (i = 0; i < n; i++) out[tl + 1 + i] = fold ? (char)lower((unsigned char)v[i]) : v[i];
    out[tl + 1 + n] = '\0';
    return rc;
}

static int norm_email(const char *v, size_t n, char *out, size_t outlen)
{
    const char *at = NULL;
    size_t i, local;
    int stripped = 1;

    /* Mail headers and links hand over "<a@b>", "mailto:a@b" and both nested either way. */
    while (stripped) {
        stripped = 0;
        if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
            v++;
            n -= 2;
            stripped = 1;
        } else if (n >= 7 && eq_nocase(v, 7, "mailto:")) {
            v += 7;
            n -= 7;
            stripped = 1;
        }
        trim(&v, &n);
    }
    if (n == 0) return OMNI_EINVAL;
    if (is_junk(v, n)) return emit(out, outlen, "email", v, n, 1, OMNI_EJUNK);
    if (n > EMAIL_MAX || has_bad_char(v, n)) return OMNI_EINVAL;
    for (i = 0; i < n; i++) {
        if (v[i] != '@') continue;
        if (at) return OMNI_EINVAL;
        at = v + i;
    }
    if (!at || at == v || at == v + n - 1) return OMNI_EINVAL;

    local = (size_t)(at - v);
    for (i = 0; i < sizeof(junk_locals) / sizeof(junk_locals[0]); i++)
        if (eq_nocase(v, local, junk_locals[i])) return emit(out, outlen, "email", v, n, 1, OMNI_EJUNK);
    return emit(out, outlen, "email", v, n, 1, OMNI_OK);
}

static int norm_phone(const char *v, size_t n, const char *region, char *out, size_t outlen)
{
    char in[512], e164[64];
    int rc;

    /* Longer than any number anyone writes, however decorated; also bounds the copy. */
    if (n >= sizeof(in)) return OMNI_EINVAL;
    memcpy(in, v, n);
    in[n] = '\0';
    rc = omni_phone_e164(in, region, e164, sizeof(e164));
    if (rc == OMNI_EJUNK && e164[0] == '\0') return emit(out, outlen, "phone", v, n, 1, rc);
    if (rc != OMNI_OK && rc != OMNI_EJUNK) return rc;
    return emit(out, outlen, "phone", e164, strlen(e164), 0, rc);
}

static int norm_id(const char *type, const char *v, size_t n, char *out, size_t outlen)
{
    const char *slash;

    if (n > ID_MAX || has_bad_char(v, n)) return OMNI_EINVAL;
    /* One "/" scopes an id by channel account (PAGEID/PSID); an empty side would make a
     * scoped id that silently never matches its account. */
    slash = memchr(v, '/', n);
    if (slash && (slash == v || slash == v + n - 1 || memchr(slash + 1, '/', n - (size_t)(slash - v) - 1)))
        return OMNI_EINVAL;
    return emit(out, outlen, type, v, n, 0, OMNI_OK);
}

int omni_identity_normalize(const char *in, const char *default_region, char *out, size_t outlen)
{
    const char *s, *colon, *v;
    size_t n, tl, vn, i;

    if (!in || !out) return OMNI_EINVAL;
    if (outlen) out[0] = '\0';
    n = strlen(in);
    if (!omni_utf8_valid(in, n)) return OMNI_EINVAL;
    s = in;
    trim(&s, &n);
    colon = memchr(s, ':', n);
    if (!colon) return OMNI_EINVAL;
    tl = (size_t)(colon - s);
    v = colon + 1;
    vn = n - tl - 1;
    trim(&v, &vn);
    if (vn == 0) return OMNI_EINVAL;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *type = types[i].name;
        if (!eq_nocase(s, tl, type)) continue;
        switch (types[i].kind) {
        case KIND_EMAIL:
            return norm_email(v, vn, out, outlen);
        case KIND_PHONE:
            if (is_junk(v, vn)) return emit(out, outlen, type, v, vn, 1, OMNI_EJUNK);
            return norm_phone(v, vn, default_region, out, outlen);
        case KIND_ID:
            if (is_junk(v, vn)) {
                if (vn > ID_MAX) return OMNI_EINVAL; /* "000...0" beyond any id's length */
                return emit(out, outlen, type, v, vn, 0, OMNI_EJUNK);
            }
            return norm_id(type, v, vn, out, outlen);
        }
    }
    return OMNI_EINVAL;
}
