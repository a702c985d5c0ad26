/* Inbound email parsing for omni-email: one RFC 5322/MIME message (as received over SMTP) to
 * UTF-8 text, identities, thread references, attachment metadata and a customer/automated verdict. */
#ifndef OMNI_EMAIL_MAIL_H
#define OMNI_EMAIL_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "charset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a message is. Only MAIL_CUSTOMER may open a conversation or get an auto-acknowledgement;
 * the others are machine-generated and answering them risks a mail loop. */
typedef enum {
    MAIL_CUSTOMER = 0,
    MAIL_AUTO_REPLY, /* vacation/out-of-office, list or bulk mail, any other automated sender */
    MAIL_BOUNCE,     /* a delivery status notification: failure, or delay (status 4.x.x) */
    MAIL_FEEDBACK,   /* an abuse/feedback report (ARF, RFC 5965) or a mailbox-provider opt-out */
} mail_kind_t;

typedef struct {
    char *name;         /* file name, UTF-8, "" if none */
    char *content_type; /* "image/png", lower case */
    char *content_id;   /* without <>, "" if none */
    uint64_t size;      /* decoded size in bytes */
    int is_inline;      /* Content-Disposition: inline, or a Content-ID part of multipart/related */
    int damaged;        /* the transfer encoding was broken (bad base64 characters, cut off):
                         * data holds what could be decoded */
    uint8_t *data;      /* the decoded bytes (size of them), for the adapter to store */
} mail_attachment_t;

typedef struct {
    mail_kind_t kind;
    const char *why;      /* static text naming the rule that decided kind ("Auto-Submitted",
                           * "multipart/report delivery-status", "null sender", ...); for
                           * customers "no automation marker" */
    int no_autoreply;     /* never auto-acknowledge: every non-customer, and customers whose
                           * mail asks for it (X-Auto-Response-Suppress) */
    char *from_addr;      /* bare addr-spec of From, domain lower-cased; NULL if From has none
                           * usable (the identity is From; Reply-To is not a fallback for it) */
    char *from_name;      /* decoded display name, "" if none (at most MAIL_MAX_FIELD bytes) */
    char *reply_to;       /* first usable Reply-To addr-spec, NULL if none/unusable */
    char *subject;        /* decoded, "" if none (at most MAIL_MAX_FIELD bytes) */
    char *text;           /* body: text/plain preferred, else text/html as readable text; "" if
                           * none; LF line ends; cut at max_text_bytes with a marker */
    size_t reply_len;     /* bytes of text before the quoted history ("On … wrote:", "> ",
                           * "-----Original Message-----"); strlen(text) when there is none */
    size_t text_truncated; /* bytes of text dropped by max_text_bytes (0: complete) */
    char *text_charset;   /* charset the first body part declared (lower case), "" if none */
    char *message_id, *in_reply_to; /* without <>; NULL if absent */
    char **references;    /* header order (oldest first), without <>, the newest
                           * MAIL_MAX_REFERENCES kept */
    size_t n_references;
    char **recipients;    /* To then Cc addr-specs, domain lower-cased, in header order, the
                           * first MAIL_MAX_RECIPIENTS */
    size_t n_recipients;
    mail_attachment_t *attachments;
    size_t n_attachments;
    /* bounces and feedback reports (NULL when not found) */
    char *bounced_recipient;   /* the address that failed (feedback: that complained) */
    char *bounce_status;       /* RFC 3463 status "5.1.1", else an SMTP code "550" */
    char *bounce_diagnostic;   /* the remote server's words, one line */
    char *feedback_type;       /* ARF Feedback-Type ("abuse"), "unsubscribe" for opt-outs */
    char *original_message_id; /* Message-ID of the mail that bounced (ours, normally) */
    char *original_in_reply_to;
    unsigned replaced;    /* bytes or sequences replaced by U+FFFD while decoding */
} mail_t;

/* 0 in a field = the default. */
typedef struct {
    size_t max_bytes;      /* whole message; default 32 MiB */
    size_t max_headers;    /* header fields in any one header block; default 1000 */
    size_t max_parts;      /* MIME entities in the whole tree; default 512 */
    size_t max_depth;      /* multipart/message nesting; default 32 */
    size_t max_text_bytes; /* text kept, marker included; default 262144 (the broker's limit) */
} mail_limits_t;

#define MAIL_MAX_REFERENCES 64
#define MAIL_MAX_RECIPIENTS 256
#define MAIL_MAX_FIELD 4000            /* subject and from_name are cut to this many bytes */
#define MAIL_MAX_FIELD_RAW (256 * 1024) /* a header field longer than this: OMNI_ETOOBIG */
#define MAIL_TRUNCATED_MARKER "\n[\xe2\x80\xa6 message truncated]"

/* Parse one message from its raw bytes (as received: CRLF or LF, an mbox "From " line allowed).
 * GMime and GLib are initialized on first use, once per process (thread-safe).
 * Returns 0 and *out (free with mail_free); OMNI_ETOOBIG above a limit; OMNI_EINVAL for NULL
 * arguments or bytes that are not a message at all (no header); OMNI_ENOMEM. */
int mail_parse(const uint8_t *raw, size_t len, const mail_limits_t *lim, mail_t **out);

/* As mail_parse, with the SMTP envelope sender: "" is the null sender "<>" (a bounce or an
 * auto-reply by definition of RFC 5321/3834), NULL means unknown (the Return-Path header, if
 * any, is used instead). */
int mail_parse_envelope(const uint8_t *raw, size_t len, const char *mail_from,
                        const mail_limits_t *lim, mail_t **out);

void mail_free(mail_t **m);

/* Decode an unstructured header value (RFC 2047 encoded-words; raw 8-bit bytes are sniffed) to
 * a new UTF-8 string; adjacent encoded-words of one charset are joined as bytes before charset
 * conversion, so characters split across words survive. NULL on NULL input or no memory. */
char *mail_decode_header(const char *raw_value, unsigned *replaced);

/* Static name of a kind: "customer", "auto_reply", "bounce", "feedback". */
const char *mail_kind_name(mail_kind_t kind);

/* Release GMime's global state. Optional, for leak checkers at exit; no mail_parse after it. */
void mail_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
