/* omni-email's mapping from a parsed mail (mail.h) to the SDK's InboundMessage: identity,
 * account, thread references, reply tokens and attachment metadata. Pure: no I/O. */
#ifndef OMNI_EMAIL_INBOUND_H
#define OMNI_EMAIL_INBOUND_H

#include <stddef.h>
#include <stdint.h>
#include <omni/v1/message.pb-c.h>

#include "mail.h"

#define INBOUND_MAX_REFS 64
#define INBOUND_MAX_ATTACHMENTS 64

/* Everything the InboundMessage points at that is not in the mail_t (both must outlive it). */
typedef struct {
    char from[320], account[320], pmid[256];
    char *tokens[8];                          /* owned */
    size_t n_tokens;
    char *refs[INBOUND_MAX_REFS];             /* borrowed from the mail */
    Omni__V1__ThreadRefs thread;
    Omni__V1__Attachment att[INBOUND_MAX_ATTACHMENTS], *attp[INBOUND_MAX_ATTACHMENTS];
    Omni__V1__InboundMessage__AttributesEntry to_attr, *attrs[1];
} inbound_buf_t;

/* The message for mail m received over SMTP for rcpts (the envelope recipients). address is our
 * mailbox (--address, e.g. support@example.com): the recipient on that domain picks the account,
 * and "local+TOKEN@domain" recipients (envelope, To or Cc) carry reply tokens ("c_<id>" = the
 * conversation id). raw/raw_len identify a mail without Message-ID (a hash becomes its id).
 * Returns 0, or OMNI_EINVAL when the mail has no usable From address. Free with inbound_clear. */
int inbound_build(const mail_t *m, const char *address, const char *const *rcpts, size_t n_rcpts, const char *raw,
                  size_t raw_len, Omni__V1__InboundMessage *out, inbound_buf_t *buf);
void inbound_clear(inbound_buf_t *buf);

/* "support+c_42@example.com" with address support@example.com -> "c_42" (malloc'ed), else NULL. */
char *inbound_reply_token(const char *recipient, const char *address);

#endif
