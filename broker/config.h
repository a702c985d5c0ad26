/* Broker configuration: defaults, the YAML file (libyaml) and command-line overrides.
 * One struct, filled once at start-up; every listen address is both a flag and a key. */
#ifndef OMNI_BROKER_CONFIG_H
#define OMNI_BROKER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_CLIENT_KEYS 256

typedef struct {
    char *tenant;              /* "default"; Redis keys carry it as a hash tag */
    char *redis;               /* redis://host:port/db or unix:///path.sock */
    char *ingress;             /* ZeroMQ endpoints */
    char *agents;
    char *stream;
    char *control;
    char *http;                /* HOST:PORT */
    char *default_region;      /* phone region, "JP" */
    char *log_level;           /* debug|info|warn|error */
    char *log_format;          /* text|json */

    /* limits */
    size_t max_frame_bytes;    /* whole Envelope, default 1 MiB */
    size_t max_text_bytes;     /* text, default 256 KiB */
    size_t max_field_bytes;    /* any other string field, default 4096 */
    size_t max_identities;     /* from + also, default 16 */
    size_t max_attachments;    /* default 64 */
    size_t max_refs;           /* thread references, default 64 */
    size_t batch_max;          /* messages per Redis script call, default 256 */
    size_t inflight_max;       /* messages waiting on Redis before ingress stops reading, default 8192 */

    int64_t idempotency_window_s; /* default 7 days */
    int64_t thread_window_s;      /* how long a Message-ID / group thread finds its conversation; 180 days */
    int64_t stream_maxlen;        /* approximate retention in events, 0 = unlimited; default 10,000,000 */
    int heartbeat_ms;             /* adapter expiry is 3x the adapter's own interval; default 2000 */

    /* security: CURVE on ingress, agents, control and stream when server keys are set */
    int allow_plain;           /* 1: accept plain (unauthenticated) connections; 0: never; -1 (default):
                                * only when every ZeroMQ endpoint is loopback/ipc */
    char *curve_public;        /* Z85 server public key */
    char *curve_secret;        /* Z85 server secret key */
    char *client_keys[CONFIG_MAX_CLIENT_KEYS]; /* Z85 public keys allowed to connect */
    size_t n_client_keys;
} config_t;

/* Fill with defaults (every string heap-allocated). Returns 0 or OMNI_ENOMEM. */
int config_defaults(config_t *cfg);

/* Overlay a YAML file. On error returns OMNI_ECONFIG (or OMNI_EIO if unreadable, OMNI_ENOMEM)
 * and writes one human line ("FILE:LINE: what is wrong") into err. Unknown keys are errors;
 * `routing:` is skipped here, routecfg_load (routecfg.h) reads and checks it from the same file.
 * After an error cfg may hold part of the file's values; it stays valid for config_free(). */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);

/* Check cross-field rules (CURVE keys valid Z85 of 40 chars; plain allowed or keys set;
 * limits > 0; endpoints non-empty). Same error convention, with the key name in place of
 * FILE:LINE ("listen.http: ..."), since values may come from flags. */
int config_validate(const config_t *cfg, char *err, size_t errlen);

/* Replace a string field (used by command-line overrides) with a copy of value; NULL clears
 * it. Returns 0 or OMNI_ENOMEM (the field is then unchanged). */
int config_set_str(char **field, const char *value);

/* Free every string; safe on a zeroed or already freed config. */
void config_free(config_t *cfg);

#endif
