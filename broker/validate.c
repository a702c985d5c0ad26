/* Validation of inbound messages: every rule an adapter's message must pass before the broker
 * stores it, and the identity normalization the broker re-applies so it never trusts an SDK. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omni/identity.h>
#include <omni/omni.h>

#include "validate.h"

/* Fixed by the contract rather than the config: the provider id is an idempotency key and the
 * attribute map is a small side channel, not a payload. */
#define VALIDATE_MAX_PROVIDER_ID 512
#define VALIDATE_MAX_ATTRIBUTES 64

/* Identities of a typical message fit here; only unusual ones pay for a heap array. */
#define VALIDATE_STACK_IDS 16

typedef struct {
    char *norm;         /* malloc()ed normalized form when it differs from the original, else NULL */
    int linkable;
    int dup;            /* same identity as `from` or an earlier `also` */
} validate_id_t;

static const char *const validate_reason_names[] = {
    [OMNI__V1__REASON__REASON_NONE] = "none",
    [OMNI__V1__REASON__REASON_MALFORMED] = "malformed",
    [OMNI__V1__REASON__REASON_TOO_LARGE] = "too_large",
    [OMNI__V1__REASON__REASON_MISSING_FIELD] = "missing_field",
    [OMNI__V1__REASON__REASON_BAD_UTF8] = "bad_utf8",
    [OMNI__V1__REASON__REASON_UNKNOWN_CHANNEL] = "unknown_channel",
    [OMNI__V1__REASON__REASON_BAD_IDENTITY] = "bad_identity",
    [OMNI__V1__REASON__REASON_TOO_MANY] = "too_many",
    [OMNI__V1__REASON__REASON_UNAVAILABLE] = "unavailable",
    [OMNI__V1__REASON__REASON_INTERNAL] = "internal",
};

const char *validate_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= sizeof(validate_reason_names) / sizeof(validate_reason_names[0]))
        return "unknown";
    return validate_reason_names[reason];
}

static int validate_fail(validate_result_t *res, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int validate_fail(validate_result_t *res, int reason, const char *fmt, ...)
{
    va_list ap;

    res->reason = reason;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    return OMNI_EINVAL;
}

static int validate_str(validate_result_t *res, const char *s, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Size limit, then UTF-8, of one string field. The field's name is only formatted on failure,
 * because this runs some twenty times per accepted message. */
static int validate_str(validate_result_t *res, const char *s, size_t max, const char *fmt, ...)
{
    size_t n = s ? strlen(s) : 0;
    char name[80];
    va_list ap;

    if (n <= max && (n == 0 || omni_utf8_valid(s, n))) return 0;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    if (n > max)
        return validate_fail(res, OMNI__V1__REASON__REASON_TOO_LARGE,
                             "%s is %zu bytes, above the limit of %zu", name, n, max);
    return validate_fail(res, OMNI__V1__REASON__REASON_BAD_UTF8, "%s is not valid UTF-8", name);
}

static int validate_empty(const char *s)
{
    return !s || !*s;
}

/* The sns provider rule: sns needs one of the three providers, every other channel none. */
static int validate_provider(const Omni__V1__InboundMessage *msg, validate_result_t *res)
{
    static const char *const providers[] = {"line", "messenger", "x"};
    const char *p = msg->provider;

    if (msg->channel != OMNI__V1__CHANNEL__CHANNEL_SNS) {
        if (validate_empty(p)) return 0;
        return validate_fail(res, OMNI__V1__REASON__REASON_UNKNOWN_CHANNEL,
                             "provider is only allowed on sns messages");
    }
    if (validate_empty(p))
        return validate_fail(res, OMNI__V1__REASON__REASON_MISSING_FIELD,
                             "provider is required for sns (line, messenger or x)");
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
        if (strcmp(p, providers[i]) == 0) return 0;
    return validate_fail(res, OMNI__V1__REASON__REASON_UNKNOWN_CHANNEL,
                         "provider of an sns message must be line, messenger or x");
}

static int validate_counts(const Omni__V1__InboundMessage *msg, const config_t *cfg,
                           validate_result_t *res)
{
    size_t refs = msg->thread ? msg->thread->n_references + msg->thread->n_reply_tokens : 0;

    if (msg->n_also >= cfg->max_identities)
        return validate_fail(res, OMNI__V1__REASON__REASON_TOO_MANY,
                             "%zu identities (from + also), above the limit of %zu",
                             msg->n_also + 1, cfg->max_identities);
    if (msg->n_attachments > cfg->max_attachments)
        return validate_fail(res, OMNI__V1__REASON__REASON_TOO_MANY,
                             "%zu attachments, above the limit of %zu", msg->n_attachments,
                             cfg->max_attachments);
    if (refs > cfg->max_refs)
        return validate_fail(res, OMNI__V1__REASON__REASON_TOO_MANY,
                             "%zu thread references and reply tokens, above the limit of %zu",
                             refs, cfg->max_refs);
    if (msg->n_attributes > VALIDATE_MAX_ATTRIBUTES)
        return validate_fail(res, OMNI__V1__REASON__REASON_TOO_MANY,
                             "%zu attributes, above the limit of %d", msg->n_attributes,
                             VALIDATE_MAX_ATTRIBUTES);
    return 0;
}

static int validate_strings(const Omni__V1__InboundMessage *msg, const config_t *cfg,
                            validate_result_t *res)
{
    const size_t fmax = cfg->max_field_bytes;
    const Omni__V1__ThreadRefs *t = msg->thread;
    const struct {
        const char *name;
        const char *value;
    } plain[] = {
        {"adapter_id", msg->adapter_id},
        {"channel_account", msg->channel_account},
        {"provider", msg->provider},
        {"from", msg->from},
        {"display_name", msg->display_name},
        {"subject", msg->subject},
        {"locale", msg->locale},
        {"thread.in_reply_to", t ? t->in_reply_to : NULL},
        {"thread.channel_thread_id", t ? t->channel_thread_id : NULL},
        {"thread.reply_token", t ? t->reply_token : NULL},
    };

    if (validate_str(res, msg->provider_message_id, VALIDATE_MAX_PROVIDER_ID, "provider_message_id") ||
        validate_str(res, msg->text, cfg->max_text_bytes, "text"))
        return OMNI_EINVAL;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (validate_str(res, plain[i].value, fmax, "%s", plain[i].name)) return OMNI_EINVAL;
    for (size_t i = 0; i < msg->n_also; i++)
        if (validate_str(res, msg->also[i], fmax, "also[%zu]", i)) return OMNI_EINVAL;
    for (size_t i = 0; t && i < t->n_references; i++)
        if (validate_str(res, t->references[i], fmax, "thread.references[%zu]", i)) return OMNI_EINVAL;
    for (size_t i = 0; t && i < t->n_reply_tokens; i++)
        if (validate_str(res, t->reply_tokens[i], fmax, "thread.reply_tokens[%zu]", i)) return OMNI_EINVAL;
    for (size_t i = 0; i < msg->n_attachments; i++) {
        const Omni__V1__Attachment *a = msg->attachments[i];
        if (!a)
            return validate_fail(res, OMNI__V1__REASON__REASON_MALFORMED, "attachments[%zu] is missing", i);
        if (validate_str(res, a->name, fmax, "attachments[%zu].name", i) ||
            validate_str(res, a->content_type, fmax, "attachments[%zu].content_type", i) ||
            validate_str(res, a->content_id, fmax, "attachments[%zu].content_id", i) ||
            validate_str(res, a->url, fmax, "attachments[%zu].url", i))
            return OMNI_EINVAL;
    }
    for (size_t i = 0; i < msg->n_attributes; i++) {
        const Omni__V1__InboundMessage__AttributesEntry *e = msg->attributes[i];
        if (!e)
            return validate_fail(res, OMNI__V1__REASON__REASON_MALFORMED, "attributes[%zu] is missing", i);
        if (validate_str(res, e->key, fmax, "attributes[%zu].key", i) ||
            validate_str(res, e->value, fmax, "attributes[%zu].value", i))
            return OMNI_EINVAL;
    }
    return 0;
}

/* Replace *slot by repl (malloc()ed) and release the old string, unless it is protobuf-c's
 * shared empty string, which belongs to the library. */
static void validate_replace(char **slot, char *repl)
{
    if (*slot && *slot != protobuf_c_empty_string) free(*slot);
    *slot = repl;
}

/* Normalizes from + also into ids[] without touching msg, so a rejected message stays as the
 * adapter sent it; validate_inbound commits the result only when every identity passed. */
static int validate_identities(const Omni__V1__InboundMessage *msg, const config_t *cfg,
                               validate_id_t *ids, validate_result_t *res)
{
    for (size_t i = 0; i <= msg->n_also; i++) {
        const char *in = i == 0 ? msg->from : msg->also[i - 1];
        char out[OMNI_IDENTITY_MAX], name[32];
        const char *final;
        int rc;

        if (i == 0) snprintf(name, sizeof(name), "from");
        else snprintf(name, sizeof(name), "also[%zu]", i - 1);
        if (validate_empty(in))
            return validate_fail(res, OMNI__V1__REASON__REASON_BAD_IDENTITY, "%s is empty", name);
        out[0] = '\0';
        rc = omni_identity_normalize(in, cfg->default_region, out, sizeof(out));
        if (rc == OMNI_EINVAL)
            return validate_fail(res, OMNI__V1__REASON__REASON_BAD_IDENTITY,
                                 "%s is not a valid identity (TYPE:VALUE of a known type)", name);
        if (rc == OMNI_ETOOBIG)
            return validate_fail(res, OMNI__V1__REASON__REASON_TOO_LARGE,
                                 "%s is too long for an identity", name);
        if (rc != 0 && rc != OMNI_EJUNK)
            return validate_fail(res, OMNI__V1__REASON__REASON_INTERNAL,
                                 "%s could not be normalized: %s", name, omni_strerror(rc));
        ids[i].linkable = rc == 0;
        /* A junk value without a normal form ("phone:anonymous") is kept as sent, for display. */
        final = rc == OMNI_EJUNK && out[0] == '\0' ? in : out;
        if (strcmp(final, in) != 0 && !(ids[i].norm = strdup(final))) {
            validate_fail(res, OMNI__V1__REASON__REASON_INTERNAL, "out of memory");
            return OMNI_ENOMEM;
        }
        for (size_t j = 0; j < i; j++) {
            const char *prev = ids[j].norm ? ids[j].norm : (j == 0 ? msg->from : msg->also[j - 1]);
            if (!ids[j].dup && strcmp(prev, final) == 0) {
                ids[i].dup = 1;
                break;
            }
        }
    }
    return 0;
}

int validate_inbound(Omni__V1__InboundMessage *msg, const config_t *cfg, uint64_t *linkable_mask,
                     validate_result_t *res)
{
    validate_id_t stack_ids[VALIDATE_STACK_IDS], *ids = stack_ids;
    size_t n_ids = 0, w = 0;
    uint64_t linkable = 0;
    int rc;

    res->reason = OMNI__V1__REASON__REASON_NONE;
    res->detail[0] = '\0';
    if (linkable_mask) *linkable_mask = 0;

    if (msg->channel < OMNI__V1__CHANNEL__CHANNEL_CHAT || msg->channel > OMNI__V1__CHANNEL__CHANNEL_PHONE)
        return validate_fail(res, OMNI__V1__REASON__REASON_UNKNOWN_CHANNEL,
                             "channel %d is not chat (1), email (2), sns (3) or phone (4)",
                             (int)msg->channel);
    if (validate_empty(msg->provider_message_id))
        return validate_fail(res, OMNI__V1__REASON__REASON_MISSING_FIELD, "provider_message_id is required");
    if (validate_empty(msg->from))
        return validate_fail(res, OMNI__V1__REASON__REASON_MISSING_FIELD, "from is required");
    if ((rc = validate_provider(msg, res)) != 0 || (rc = validate_counts(msg, cfg, res)) != 0 ||
        (rc = validate_strings(msg, cfg, res)) != 0)
        return rc;

    /* Counts were checked above, so n_ids is bounded by max_identities. */
    if (1 + msg->n_also > VALIDATE_STACK_IDS && !(ids = calloc(1 + msg->n_also, sizeof(*ids)))) {
        validate_fail(res, OMNI__V1__REASON__REASON_INTERNAL, "out of memory");
        return OMNI_ENOMEM;
    }
    if (ids == stack_ids) memset(stack_ids, 0, sizeof(stack_ids));
    n_ids = 1 + msg->n_also;
    if ((rc = validate_identities(msg, cfg, ids, res)) != 0) goto out;

    /* Commit: nothing below can fail. ids[i].norm moves into the message. */
    if (ids[0].norm) validate_replace(&msg->from, ids[0].norm);
    ids[0].norm = NULL;
    linkable = (uint64_t)ids[0].linkable;
    for (size_t i = 1; i < n_ids; i++) {
        char **slot = &msg->also[i - 1];
        if (ids[i].norm) validate_replace(slot, ids[i].norm);
        ids[i].norm = NULL;
        if (ids[i].dup) {
            validate_replace(slot, NULL);
            continue;
        }
        /* Bit k+1 for also[k] after compaction; identities past bit 63 never link. */
        if (ids[i].linkable && w + 1 < 64)
            linkable |= 1ULL << (w + 1);
        msg->also[w++] = *slot;
    }
    msg->n_also = w;
    if (linkable_mask) *linkable_mask = linkable;
out:
    for (size_t i = 0; i < n_ids; i++) free(ids[i].norm);
    if (ids != stack_ids) free(ids);
    return rc;
}
