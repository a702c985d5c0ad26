/* The SMTP server side of omni-email (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES,
 * STARTTLS and SMTPUTF8) as a pure state machine: client bytes in, replies and whole messages out.
 *
 * No sockets, no clock, no TLS: the program owns the connection, timeouts and the TLS switch, and
 * answers each message only once the broker has it durably (smtp_session_data_result), so a 250
 * never precedes durability. Memory per session is bounded by smtp_limits_t: one command line,
 * one message (max_message), the recipients, and the input held while a verdict is pending
 * (max_pending). Behaviour in detail: docs/email.md, section "SMTP".
 *
 * Callbacks run synchronously inside smtp_session_new/feed/data_result/shutdown. They may call
 * smtp_session_data_result (also from inside `message`) and smtp_session_shutdown; they must not
 * call smtp_session_feed or smtp_session_destroy.
 */
#ifndef OMNI_EMAIL_SMTP_H
#define OMNI_EMAIL_SMTP_H

#include <stddef.h>

#include <omni/omni.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMTP_PATH_MAX 256 /* RFC 5321 4.5.3.1.3: a reverse/forward path, brackets included */

#define SMTP_DEFAULT_MAX_LINE 512
#define SMTP_DEFAULT_MAX_MESSAGE (25u * 1024 * 1024)
#define SMTP_DEFAULT_MAX_RECIPIENTS 100
#define SMTP_DEFAULT_MAX_PENDING (64u * 1024)
#define SMTP_DEFAULT_MAX_ERRORS 10

typedef struct smtp_session smtp_session_t;

/* Zero in any field means its default. */
typedef struct {
    size_t max_line;        /* command line bytes incl. CRLF; default 512 (RFC 5321 4.5.3.1.4), minimum 64.
                             * Message text lines are not limited (only the message size is). */
    size_t max_message;     /* SIZE advertised and enforced on the unstuffed message; default 25 MiB */
    size_t max_recipients;  /* default 100; more get 452 4.5.3 */
    const char *hostname;   /* in the greeting, EHLO and 221/421; default "localhost"; copied;
                             * 1..255 bytes of printable ASCII without spaces */
    int starttls_available; /* advertise STARTTLS (only when callbacks.starttls is set too) */
    size_t max_pending;     /* input held while a message awaits its verdict; beyond it: 421 and close;
                             * default 64 KiB */
    unsigned max_errors;    /* protocol errors (500-503, 555, 554 on DATA, refused recipients) before
                             * 421 and close; default 10 */
} smtp_limits_t;

typedef struct {
    void *user;
    /* Bytes to write to the client, one or more whole reply lines per call, in order. Called often
     * during one feed: buffer and write after feed returns (RFC 2920 4: fewer packets). */
    void (*send)(void *user, const char *buf, size_t len);
    /* A complete message after DATA's final ".": dot-unstuffed, every line ending in CRLF (bare LF
     * normalized to CRLF), without the final ".\r\n". mail_from is "" for the null sender <>.
     * Everything passed stays valid until smtp_session_data_result or smtp_session_destroy.
     * Until the verdict, further input is held (bounded by max_pending), not processed. */
    void (*message)(void *user, const char *mail_from, const char *const *rcpts, size_t n_rcpts,
                    const char *data, size_t len);
    /* Optional: accept a RCPT TO address (e.g. only our mailboxes). Return 0 to accept, else a reply
     * code 400..599 (anything else counts as 550), with optional text in why (whylen >= 256). The
     * text may start with its own enhanced status code ("5.1.1 No such mailbox"). */
    int (*rcpt_ok)(void *user, const char *addr, char *why, size_t whylen);
    /* Optional: "220 2.0.0 Ready to start TLS" has just been sent; switch the connection to TLS now
     * and feed only decrypted bytes from here on. Input after STARTTLS in the same feed is dropped
     * (plaintext injection, CVE-2011-0411) and the client must EHLO again. */
    void (*starttls)(void *user);
    /* The session is finished (221 after QUIT, or a 421): close the connection once send's bytes
     * are written. Called at most once; afterwards feed returns OMNI_ECLOSED and nothing is sent. */
    void (*close)(void *user);
} smtp_callbacks_t;

/* lim may be NULL (all defaults); cb->send and cb->message are required. Sends the 220 greeting.
 * Returns 0 and *out, OMNI_EINVAL (bad limits, hostname or callbacks) or OMNI_ENOMEM. */
int smtp_session_new(const smtp_limits_t *lim, const smtp_callbacks_t *cb, smtp_session_t **out);

/* Free everything (a pending message's data included) and NULL *s. Not from inside a callback. */
void smtp_session_destroy(smtp_session_t **s);

/* Bytes from the client, split anywhere: processes every complete command it can, streams message
 * data, holds input while a verdict is pending. Returns 0; OMNI_ECLOSED once the session is closed
 * (close has been called, now or earlier; the input is ignored); OMNI_ENOMEM after an allocation
 * failure (421 sent, session closed); OMNI_EINVAL for bad arguments; OMNI_ESTATE from a callback. */
int smtp_session_feed(smtp_session_t *s, const char *buf, size_t len);

/* The verdict on the message handed to cb->message: 250 (durably accepted), 451 (temporary, e.g.
 * broker down) or 550/554 (refused for good), with text (NULL: a default; may start with its own
 * enhanced status code; CR, LF and non-ASCII become spaces). Codes outside 2xx/4xx/5xx become 451,
 * so a confused caller never loses mail. Ends the transaction, then processes held input (which
 * may call cb->message again before this returns). Ignored when no message is pending or the
 * session is closed. */
void smtp_session_data_result(smtp_session_t *s, int code, const char *text);

/* 1 while a message awaits its verdict (input is being held): a program may stop reading the
 * socket meanwhile, so max_pending is only a backstop against clients that ignore PIPELINING's
 * rules. 0 otherwise, and once closed. */
int smtp_session_waiting(const smtp_session_t *s);

/* Sends "421 <enh> <hostname> <why>" and closes (idle timeout, program shutdown). why may be NULL
 * ("Service shutting down") and may start with its own enhanced status code ("4.4.2 Error: timeout
 * exceeded"). A pending message's data stays valid until destroy. No-op when already closed. */
void smtp_session_shutdown(smtp_session_t *s, const char *why);

#ifdef __cplusplus
}
#endif
#endif
