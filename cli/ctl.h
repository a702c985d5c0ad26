/* omnictl internals shared by its source files: global options, exit codes, the ZeroMQ
 * connection to the broker (control DEALER + stream SUB), output helpers and the commands
 * that live in their own files (tail, queues/agents, the agent client). */
#ifndef OMNI_CLI_CTL_H
#define OMNI_CLI_CTL_H

#include <signal.h>
#include <stdint.h>

#include <zmq.h>

#include <omni/v1/agent.pb-c.h>
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
    const char *agents;        /* agents endpoint (ROUTER on the broker) */
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

/* Set by the SIGINT/SIGTERM handler of tail --follow and agent. */
extern volatile sig_atomic_t ctl_stop;
/* Route SIGINT/SIGTERM to ctl_stop, interrupting blocking polls. */
void ctl_catch_stop_signals(void);

/* ctl_conn.c: the transport. */
void ctl_conn_init(ctl_conn_t *c, const ctl_opts_t *o);
void ctl_conn_close(ctl_conn_t *c);
/* Send req (its id is assigned here) and wait up to opts->timeout_ms for the reply with the
 * same id. On CTL_OK *reply must be freed with omni__v1__control_reply__free_unpacked. */
int ctl_conn_call(ctl_conn_t *c, Omni__V1__ControlRequest *req, Omni__V1__ControlReply **reply);
/* A fresh request id (never 0): control requests and agent envelopes draw from one counter. */
uint64_t ctl_conn_next_id(ctl_conn_t *c);
/* A socket of `type` connected to endpoint, with omnictl's options (no linger, CURVE keys). */
int ctl_conn_connect(ctl_conn_t *c, int type, const char *endpoint, void **out);
/* Receive one whole message without blocking and keep its last frame. Returns the number
 * of frames, or -1 (zmq errno). */
int ctl_conn_recv_last(void *s, zmq_msg_t *last);
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
/* The reply's body must be what we asked for; otherwise report, free rep and return 1. */
int ctl_expect(Omni__V1__ControlReply *rep, int body_case, const char *what);
/* Lower-case enum value name without its prefix: REASON_BAD_IDENTITY -> bad_identity. */
const char *ctl_enum_word(const ProtobufCEnumDescriptor *d, int value, const char *prefix,
                          char *buf, size_t len);
/* A usage error of command `cmd`: one line saying what is wrong, then how to call. Returns 2. */
int ctl_usage_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A human table: rows of strings, columns padded to their widest cell. */
typedef struct {
    size_t ncols, nrows;
    char **cells;
} ctl_table_t;
/* Append a row of t->ncols strings (NULL = ""). */
void ctl_table_row(ctl_table_t *t, ...);
/* Print and empty the table. */
void ctl_table_print(ctl_table_t *t, const char *indent);

/* ctl_event.c: a field sink for records printed as JSON or as one human line, and stream
 * events as tail prints them. */
typedef struct {
    json_t *j;          /* JSON: members of this open object; NULL: " key=value" on stdout */
    json_t *scratch;    /* human: quoting */
} ctl_fields_t;
enum {
    CTL_FLD_OPT = 1,    /* left out when empty / zero */
    CTL_FLD_QUOTE = 2,  /* free text: quoted in the human line so it stays on one line */
    CTL_FLD_JSON = 4,   /* detail the human line leaves out */
};
void ctl_fld_str(ctl_fields_t *f, const char *key, const char *v, int flags);
void ctl_fld_u64(ctl_fields_t *f, const char *key, uint64_t v, int flags);
void ctl_fld_i64(ctl_fields_t *f, const char *key, int64_t v, int flags);
void ctl_fld_bool(ctl_fields_t *f, const char *key, int v);
void ctl_fld_strv(ctl_fields_t *f, const char *key, char *const *v, size_t n);
/* s as a JSON string literal (valid until scratch is reused): free text on one human line. */
const char *ctl_quote(json_t *scratch, const char *s);
const char *ctl_event_type(const Omni__V1__StreamEvent *ev);
/* The event as one JSON object (a value: the caller may be inside an array or after a key). */
void ctl_event_json(json_t *j, const Omni__V1__StreamEvent *ev);
/* The event as one human line on stdout; scratch is a reusable buffer for quoting. */
void ctl_event_human(json_t *scratch, const Omni__V1__StreamEvent *ev, const char *indent);

/* ctl_tail.c: the tail command. */
typedef struct {
    int have_from;
    uint64_t from;
    uint32_t last;             /* without --from: this many recent events */
    int follow;
} ctl_tail_args_t;

int ctl_tail_run(ctl_conn_t *c, const ctl_tail_args_t *a);

/* ctl_routing.c: the queues and agents commands. */
int ctl_queues_run(ctl_conn_t *c);
int ctl_agents_run(ctl_conn_t *c);

/* ctl_agent.c: the agent client. Strings as given on the command line, checked by the run. */
typedef struct {
    const char *id, *skills, *capacity, *languages, *team, *state;
    const char *reply, *disposition;
    int close, reject, ignore_offers, events;
    uint32_t heartbeat_ms;     /* 0: default */
    uint64_t count;            /* 0: until interrupted */
} ctl_agent_args_t;

int ctl_agent_run(ctl_conn_t *c, const ctl_agent_args_t *a);

#endif
