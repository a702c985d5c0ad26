/* Outgoing mail for omni-email: an agent's reply as an RFC 5322 message (UTF-8 text, RFC 2047
 * encoded and folded headers, threading headers), ready for the relay client. Pure: no I/O. */
#ifndef OMNI_EMAIL_COMPOSE_H
#define OMNI_EMAIL_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#include <omni/omni.h>

typedef struct {
    const char *from_addr;     /* our reply address, e.g. "support+cnv_42@example.com" */
    const char *from_name;     /* UTF-8 display name, may be NULL */
    const char *to_addr;       /* the customer */
    const char *subject;       /* UTF-8 */
    const char *text;          /* UTF-8 body, LF or CRLF line ends */
    const char *message_id;    /* ours, without <> */
    const char *in_reply_to;   /* without <>, may be NULL */
    const char *const *references; /* without <>, oldest first; in_reply_to is appended if missing */
    size_t n_references;
    int64_t date_ms;           /* Unix ms of the Date header */
    const char *auto_submitted; /* "auto-replied" for the broker's own notices, else NULL */
} compose_t;

/* Builds the message with CRLF line ends: every header line at most 78 bytes (RFC 5322 2.1.1),
 * non-ASCII header text as RFC 2047 B-words that never split a character, the body as
 * text/plain; charset=UTF-8 (7bit when ASCII, else base64). *out is malloc'ed.
 * OMNI_EINVAL (missing address, id or invalid UTF-8, CR/LF in a header value), OMNI_ENOMEM. */
int compose_message(const compose_t *c, char **out, size_t *len);

#endif
