/* omnictl internals shared by its source files: global options, exit codes, the ZeroMQ
 * connection to the broker (control DEALER + stream SUB) and the tail command. */
#ifndef OMNI_CLI_CTL_H
#define OMNI_CLI_CTL_H

#include <signal.h>
#include <stdint.h>

#include <omni/v1/control.pb-c.h>

#include "json.h"

/* Exit codes: usage errors are told apart from runtime failures so scripts can react. */
enum { CTL_EXIT_OK = 0, CTL_EXIT_FAIL = 1, CTL_EXIT_USAGE = 2,
       CTL_EXIT_STOPPED = 130 /* internal: SIGINT/SIGTERM during a request; tail maps it to 0 */ };

/* Results of ctl_conn_* (negative = failure). */
enum {
    CTL_OK = 0,
    CTL_ETIMEOUT = -1,  /* no (valid) answer within the timeout */
    CTL_EINTR = -2,     /* SIGINT/SIGTERM arrived (ctl_stop is set) */
    CTL_EPROTO = -3,    /* only undecodable replies arrived */
    CTL_EENDPOINT = -4, /* the endpoint string or a CURVE key was refused */
    CTL_EIO = -5,       /* any other ZeroMQ failure */
};

/* Options common to every command that talks to the broker. */
typedef struct {
    const char *control;       /* control endpoint (ROUTER on the broker) */
    const char *stream;        /* stream endpoint (PUB on the broker) */
    const char *curve_server;  /* Z85; NULL: plain TCP */
    const char *curve_public;
    const char *curve_secret;
    int timeout_ms;            /* per request */
    int json;
} ctl_opts_t;

/* Sockets are created on first use, so commands that never talk to the broker (keygen,
 * usage errors) never start a ZeroMQ context. */
typedef struct {
    const ctl_opts_t *opts;
    void *zctx;
    void *dealer;
    void *sub;
    uint64_t next_id;
    char errbuf[256];          /* why the last CTL_EENDPOINT / CTL_EIO happened */
    /* Ephemeral client key pair, used when only the server key is given. */
    char eph_public[41], eph_secret[41];
} ctl_conn_t;

/* Set by the SIGINT/SIGTERM handler of tail --follow. */
extern volatile sig_atomic_t ctl_stop;

/* ctl_conn.c: the transport. */
void ctl_conn_init(ctl_conn_t *c, const ctl_opts_t *o);
void ctl_conn_close(ctl_conn_t *c);
/* Send req (its id is assigned here) and wait up to opts->timeout_ms for the reply with the
 * same id. On CTL_OK *reply must be freed with omni__v1__control_reply__free_unpacked. */
int ctl_conn_call(ctl_conn_t *c, Omni__V1__ControlRequest *req, Omni__V1__ControlReply **reply);
/* Connect the SUB socket to opts->stream and subscribe to every channel. */
int ctl_conn_subscribe(ctl_conn_t *c);
/* Next stream event within timeout_ms: CTL_OK (*ev: free with
 * omni__v1__stream_event__free_unpacked), CTL_ETIMEOUT, CTL_EINTR or CTL_EIO. */
int ctl_conn_next_event(ctl_conn_t *c, int timeout_ms, Omni__V1__StreamEvent **ev);
/* 1 if key is a 40-character Z85 CURVE key. */
int ctl_conn_key_valid(const char *key);

/* omnictl.c: helpers the commands share. */
/* ctl_conn_call plus the user-facing error reporting of the contract (unreachable, error
 * replies). Returns CTL_EXIT_OK with *reply set, or the exit code to use. */
int ctl_request(ctl_conn_t *c, Omni__V1__ControlRequest *req, Omni__V1__ControlReply **reply);
/* Print the document as one line on stdout and flush (streams are read line by line). */
void ctl_emit(json_t *j);
/* Contract channel name; "" for CHANNEL_UNSPECIFIED. */
const char *ctl_channel(Omni__V1__Channel ch);
/* "2024-05-01T12:00:00.123Z" into buf (at least 32 bytes). */
const char *ctl_fmt_time(int64_t ms, char *buf, size_t len);

/* ctl_tail.c: the tail command. */
typedef struct {
    int have_from;
    uint64_t from;
    uint32_t last;             /* without --from: this many recent events */
    int follow;
} ctl_tail_args_t;

int ctl_tail_run(ctl_conn_t *c, const ctl_tail_args_t *a);

#endif
