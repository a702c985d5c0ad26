/* Parsed mail -> InboundMessage for the SDK (see inbound.h). The sender identity comes from
 * From (normalized by the SDK and the broker), the account from our recipient, threading from
 * In-Reply-To, References and the token of a "support+<conversation>@" reply address. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <omni/omni.h>

#include "inbound.h"

/* Split "local@domain" of our address; 0 on success. */
static int split(const char *addr, char *local, size_t ll, const char **domain)
{
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || (size_t)(at - addr) >= ll)
        return -1;
    memcpy(local, addr, (size_t)(at - addr));
    local[at - addr] = 0;
    *domain = at + 1;
    return 0;
}

char *inbound_reply_token(const char *recipient, const char *address)
{
    char ours[128], theirs[320];
    const char *od, *td;
    if (!recipient || !address || split(address, ours, sizeof(ours), &od) != 0 ||
        split(recipient, theirs, sizeof(theirs), &td) != 0 || strcasecmp(od, td) != 0)
        return NULL;
    size_t ol = strlen(ours);
    if (strncasecmp(theirs, ours, ol) != 0 || theirs[ol] != '+' || !theirs[ol + 1])
        return NULL;
    const char *tok = theirs + ol + 1;
    for (const char *p = tok; *p; p++) /* conversation ids: [A-Za-z0-9_-] */
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return NULL;
    return strdup(tok);
}

/* Our recipient among the envelope ones (the account), else our address itself. */
static void pick_account(const char *address, const char *const *rcpts, size_t n, char *out, size_t outlen)
{
    char ours[128];
    const char *od;
    snprintf(out, outlen, "%s", address ? address : "");
    if (!address || split(address, ours, sizeof(ours), &od) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *at = strrchr(rcpts[i], '@');
        if (at && strcasecmp(at + 1, od) == 0) {
            snprintf(out, outlen, "%s", rcpts[i]);
            for (char *p = out; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            return;
        }
    }
}

static void add_token(inbound_buf_t *b, char *tok)
{
    if (!tok)
        return;
    for (size_t i = 0; i < b->n_tokens; i++)
        if (strcmp(b->tokens[i], tok) == 0) {
            free(tok);
            return;
        }
    if (b->n_tokens < sizeof(b->tokens) / sizeof(b->tokens[0]))
        b->tokens[b->n_tokens++] = tok;
    else
        free(tok);
}

/* FNV-1a of the raw bytes: a stable id for a mail without Message-ID, so an MTA's retry of the
 * same mail is a duplicate, not a second message. */
static void hash_id(const char *raw, size_t len, char *out, size_t outlen)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)raw[i]) * 1099511628211ULL;
    snprintf(out, outlen, "no-message-id-%016llx", (unsigned long long)h);
}

int inbound_build(const mail_t *m, const char *address, const char *const *rcpts, size_t n_rcpts, const char *raw,
                  size_t raw_len, Omni__V1__InboundMessage *out, inbound_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    omni__v1__inbound_message__init(out);
    if (!m->from_addr || !*m->from_addr || strlen(m->from_addr) + 7 > sizeof(b->from))
        return OMNI_EINVAL;
    snprintf(b->from, sizeof(b->from), "email:%s", m->from_addr);
    pick_account(address, rcpts, n_rcpts, b->account, sizeof(b->account));
    if (m->message_id && *m->message_id && strlen(m->message_id) < sizeof(b->pmid))
        snprintf(b->pmid, sizeof(b->pmid), "%s", m->message_id);
    else
        hash_id(raw, raw_len, b->pmid, sizeof(b->pmid));

    for (size_t i = 0; i < n_rcpts; i++)
        add_token(b, inbound_reply_token(rcpts[i], address));
    for (size_t i = 0; i < m->n_recipients; i++)
        add_token(b, inbound_reply_token(m->recipients[i], address));

    omni__v1__thread_refs__init(&b->thread);
    b->thread.in_reply_to = m->in_reply_to ? m->in_reply_to : "";
    /* The newest references matter most (the broker reads them right to left): keep the tail. */
    size_t skip = m->n_references > INBOUND_MAX_REFS ? m->n_references - INBOUND_MAX_REFS : 0;
    for (size_t i = skip; i < m->n_references; i++)
        b->refs[i - skip] = m->references[i];
    b->thread.references = b->refs;
    b->thread.n_references = m->n_references - skip;
    b->thread.reply_tokens = b->tokens;
    b->thread.n_reply_tokens = b->n_tokens;

    size_t na = m->n_attachments < INBOUND_MAX_ATTACHMENTS ? m->n_attachments : INBOUND_MAX_ATTACHMENTS;
    for (size_t i = 0; i < na; i++) {
        const mail_attachment_t *a = &m->attachments[i];
        omni__v1__attachment__init(&b->att[i]);
        b->att[i].name = a->name ? a->name : "";
        b->att[i].content_type = a->content_type ? a->content_type : "";
        b->att[i].content_id = a->content_id ? a->content_id : "";
        b->att[i].size = a->size;
        b->att[i].inline_ = a->is_inline;
        b->attp[i] = &b->att[i];
    }

    omni__v1__inbound_message__attributes_entry__init(&b->to_attr);
    b->to_attr.key = "to";
    b->to_attr.value = b->account;
    b->attrs[0] = &b->to_attr;

    out->channel = OMNI__V1__CHANNEL__CHANNEL_EMAIL;
    out->channel_account = b->account;
    out->provider_message_id = b->pmid;
    out->from = b->from;
    out->display_name = m->from_name ? m->from_name : "";
    out->text = m->text ? m->text : "";
    out->subject = m->subject ? m->subject : "";
    out->thread = &b->thread;
    out->attachments = b->attp;
    out->n_attachments = na;
    out->attributes = b->attrs;
    out->n_attributes = 1;
    return 0;
}

void inbound_clear(inbound_buf_t *b)
{
    for (size_t i = 0; i < b->n_tokens; i++)
        free(b->tokens[i]);
    b->n_tokens = 0;
}
