/* The SMTP client side of omni-email: hands agent replies to a relay (smarthost) as a pure state
 * machine, server bytes in, commands out, one verdict per submitted message.
 *
 * No sockets, no clock, no TLS: the program owns the connection and its timeouts, writes what
 * send asks for, feeds the server's bytes, and learns each message's fate through done: 250 =
 * the relay has it, 4xx = keep it and retry later, 5xx = it will never go through this relay.
 * Memory is bounded: one reply line (RELAY_MAX_LINE), the keywords we know, and the transaction
 * in progress (the message is copied once, dot-stuffed). Details: docs/email.md, "Relay client".
 *
 * Callbacks run synchronously inside relay_session_submit/feed/quit/lost. They may call
 * relay_session_submit and relay_session_quit (e.g. the next message from inside done); they must
 * not call relay_session_feed, relay_session_lost or relay_session_destroy. done's text is valid
 * only during the call.
 */
#ifndef OMNI_EMAIL_RELAY_H
#define OMNI_EMAIL_RELAY_H

#include <stddef.h>

#include <omni/omni.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_MAX_LINE 4096     /* a reply line from the server, CRLF included; longer: protocol error */
#define RELAY_MAX_RCPTS 1000    /* recipients per message */
#define RELAY_MAX_ADDR 254      /* an envelope address without its brackets (RFC 5321 4.5.3.1.3) */
#define RELAY_TEXT_MAX 1024     /* done's text, bytes without the NUL */

typedef struct relay_session relay_session_t;

typedef struct {
    void *user;
    /* Bytes to write to the server, whole command lines (or the whole message body) per call. */
    void (*send)(void *user, const char *buf, size_t len);
    /* The transaction ended: code = the decisive reply (250 = delivered to the relay; 4xx =
     * temporary: retry later; 5xx = permanent), text = that reply's text (one line of printable
     * ASCII, multi-line replies joined by spaces); refused recipients are listed after
     * "; refused: ". Called exactly once per successful relay_session_submit, possibly from
     * inside it (local refusals: 552 SIZE, 554 8-bit). A refusal of the session itself (greeting,
     * EHLO and HELO) ends a pending message with the server's code too. */
    void (*done)(void *user, int code, const char *text);
    /* Optional: the session is over (QUIT answered, a 421, or a fatal protocol error): close the
     * connection once send's bytes are written. Called at most once; not called by
     * relay_session_lost, whose caller already knows. */
    void (*close)(void *user);
} relay_callbacks_t;

/* helo: our name for EHLO/HELO (1..255 printable ASCII bytes, no spaces); copied. cb->send and
 * cb->done are required. Sends nothing: waits for the 220 greeting. Returns 0 and *out,
 * OMNI_EINVAL or OMNI_ENOMEM. */
int relay_session_new(const char *helo, const relay_callbacks_t *cb, relay_session_t **out);

/* Free everything (a pending message without calling done) and NULL *s. Not from a callback. */
void relay_session_destroy(relay_session_t **s);

/* One message: envelope sender ("" = <>), 1..RELAY_MAX_RCPTS recipients (bare addresses, no
 * brackets, no controls), and the message bytes with CRLF line ends (bare CR or LF become CRLF;
 * a missing final CRLF is added; the session dot-stuffs and appends ".CRLF"). Everything is
 * copied. May be called before the greeting arrived. Uses PIPELINING when advertised, SIZE= when
 * SIZE is (done(552) locally when the message exceeds the advertised limit), BODY=8BITMIME when
 * the message has 8-bit bytes (done(554) locally when the relay lacks 8BITMIME).
 * Returns 0; OMNI_ESTATE while another message awaits its done; OMNI_ECLOSED after quit, a
 * closed or lost session; OMNI_EINVAL for bad arguments; OMNI_ENOMEM. */
int relay_session_submit(relay_session_t *s, const char *mail_from, const char *const *rcpts, size_t n,
                         const char *msg, size_t len);

/* Bytes from the server (replies, possibly multi-line "250-..."), split anywhere. Returns 0,
 * OMNI_ECLOSED once the session is over (the input is ignored), OMNI_EINVAL for bad arguments. */
int relay_session_feed(relay_session_t *s, const char *buf, size_t len);

/* 1 when the server advertised the EHLO keyword (case-insensitive): PIPELINING, SIZE, 8BITMIME,
 * STARTTLS, AUTH, ENHANCEDSTATUSCODES, SMTPUTF8, DSN, CHUNKING. 0 otherwise or before EHLO. */
int relay_session_has(const relay_session_t *s, const char *keyword);

/* The SIZE the server advertised; 0 when none or no limit. */
size_t relay_session_max_size(const relay_session_t *s);

/* QUIT once idle (after the message in progress, if any); close is called when it is answered.
 * Later submits get OMNI_ECLOSED. */
void relay_session_quit(relay_session_t *s);

/* The connection broke: a pending message ends with done(451, "4.4.2 connection lost"); the
 * session is over. */
void relay_session_lost(relay_session_t *s);

#ifdef __cplusplus
}
#endif
#endif
