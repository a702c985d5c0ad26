/* Unit tests of the broker configuration: defaults, the YAML overlay with its error lines,
 * and the cross-field checks. Every file is written to a private mkdtemp directory. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zmq.h>

#include <omni/omni.h>

#include "config.h"

#define MAX_FILES 16

static char dir[64];
static char files[MAX_FILES][128];
static int n_files;
static config_t cfg;
static char err[256];

static void setup(void)
{
    strcpy(dir, "/tmp/omni-test-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    n_files = 0;
    cr_assert_eq(config_defaults(&cfg), 0);
    err[0] = '\0';
}

static void teardown(void)
{
    config_free(&cfg);
    for (int i = 0; i < n_files; i++) unlink(files[i]);
    rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes body to DIR/NAME and returns the path (valid until the test ends). */
static const char *write_file(const char *name, const char *body)
{
    FILE *f;

    cr_assert_lt(n_files, MAX_FILES);
    snprintf(files[n_files], sizeof(files[0]), "%s/%s", dir, name);
    cr_assert_not_null(f = fopen(files[n_files], "wb"));
    cr_assert_eq(fwrite(body, 1, strlen(body), f), strlen(body));
    fclose(f);
    return files[n_files++];
}

/* Loads body and expects OMNI_ECONFIG with "PATH:LINE: " at the start of the message. */
static void expect_load_error(const char *body, int line, const char *needle)
{
    char prefix[200];
    const char *path = write_file("bad.yaml", body);

    n_files--; /* the next call may reuse the name: keep one entry for teardown */
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), OMNI_ECONFIG, "body:\n%s", body);
    n_files++;
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "expected '%s...' got '%s'", prefix, err);
    if (needle) cr_assert_not_null(strstr(err, needle), "expected '%s' in '%s'", needle, err);
    cr_assert_null(strchr(err, '\n'), "one line: '%s'", err);
}

static void expect_invalid(const char *needle)
{
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, needle), "expected '%s' in '%s'", needle, err);
}

static void keypair(char pub[41], char sec[41])
{
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0, "libzmq without CURVE");
}

Test(config, defaults)
{
    cr_assert_str_eq(cfg.tenant, "default");
    cr_assert_str_eq(cfg.redis, "redis://127.0.0.1:6379/0");
    cr_assert_str_eq(cfg.ingress, "tcp://127.0.0.1:5560");
    cr_assert_str_eq(cfg.agents, "tcp://127.0.0.1:5561");
    cr_assert_str_eq(cfg.stream, "tcp://127.0.0.1:5562");
    cr_assert_str_eq(cfg.control, "tcp://127.0.0.1:5563");
    cr_assert_str_eq(cfg.http, "127.0.0.1:8080");
    cr_assert_str_eq(cfg.default_region, "JP");
    cr_assert_str_eq(cfg.log_level, "info");
    cr_assert_str_eq(cfg.log_format, "text");
    cr_assert_eq(cfg.max_frame_bytes, 1048576);
    cr_assert_eq(cfg.max_text_bytes, 262144);
    cr_assert_eq(cfg.max_field_bytes, 4096);
    cr_assert_eq(cfg.max_identities, 16);
    cr_assert_eq(cfg.max_attachments, 64);
    cr_assert_eq(cfg.max_refs, 64);
    cr_assert_eq(cfg.batch_max, 256);
    cr_assert_eq(cfg.inflight_max, 8192);
    cr_assert_eq(cfg.idempotency_window_s, 604800);
    cr_assert_eq(cfg.stream_maxlen, 10000000);
    cr_assert_eq(cfg.heartbeat_ms, 2000);
    cr_assert_eq(cfg.allow_plain, -1, "unset: plain only on loopback");
    cr_assert_null(cfg.curve_public);
    cr_assert_null(cfg.curve_secret);
    cr_assert_eq(cfg.n_client_keys, 0);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, full_file)
{
    char pub[41], sec[41], c1[41], c1s[41], c2[41], c2s[41], body[2048];
    const char *path;

    keypair(pub, sec);
    keypair(c1, c1s);
    keypair(c2, c2s);
    snprintf(body, sizeof(body),
             "# every key, as in the documentation\n"
             "tenant: acme\n"
             "redis: unix:///run/omni/redis.sock\n"
             "listen: { ingress: \"tcp://0.0.0.0:6560\", agents: \"tcp://0.0.0.0:6561\",\n"
             "          stream: \"tcp://0.0.0.0:6562\", control: \"ipc:///run/omni/control\",\n"
             "          http: \"0.0.0.0:9090\" }\n"
             "limits: { max_frame_bytes: 2097152, max_text_bytes: 131072, max_field_bytes: 2048,\n"
             "          max_identities: 8, max_attachments: 10, max_refs: 20, batch_max: 128,\n"
             "          inflight_max: 4096 }\n"
             "idempotency_window: 2d\n"
             "stream: { maxlen: 0 }\n"
             "identity: { default_region: US }\n"
             "heartbeat_ms: 500\n"
             "log: { level: debug, format: json }\n"
             "security:\n"
             "  allow_plain: false\n"
             "  server_public_key: \"%s\"\n"
             "  server_secret_key: '%s'\n"
             "  clients: [\"%s\", \"%s\"]\n",
             pub, sec, c1, c2);
    path = write_file("full.yaml", body);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.tenant, "acme");
    cr_assert_str_eq(cfg.redis, "unix:///run/omni/redis.sock");
    cr_assert_str_eq(cfg.ingress, "tcp://0.0.0.0:6560");
    cr_assert_str_eq(cfg.agents, "tcp://0.0.0.0:6561");
    cr_assert_str_eq(cfg.stream, "tcp://0.0.0.0:6562");
    cr_assert_str_eq(cfg.control, "ipc:///run/omni/control");
    cr_assert_str_eq(cfg.http, "0.0.0.0:9090");
    cr_assert_eq(cfg.max_frame_bytes, 2097152);
    cr_assert_eq(cfg.max_text_bytes, 131072);
    cr_assert_eq(cfg.max_field_bytes, 2048);
    cr_assert_eq(cfg.max_identities, 8);
    cr_assert_eq(cfg.max_attachments, 10);
    cr_assert_eq(cfg.max_refs, 20);
    cr_assert_eq(cfg.batch_max, 128);
    cr_assert_eq(cfg.inflight_max, 4096);
    cr_assert_eq(cfg.idempotency_window_s, 2 * 86400);
    cr_assert_eq(cfg.stream_maxlen, 0);
    cr_assert_str_eq(cfg.default_region, "US");
    cr_assert_eq(cfg.heartbeat_ms, 500);
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_str_eq(cfg.log_format, "json");
    cr_assert_eq(cfg.allow_plain, 0);
    cr_assert_str_eq(cfg.curve_public, pub);
    cr_assert_str_eq(cfg.curve_secret, sec);
    cr_assert_eq(cfg.n_client_keys, 2);
    cr_assert_str_eq(cfg.client_keys[0], c1);
    cr_assert_str_eq(cfg.client_keys[1], c2);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, sections_may_be_omitted)
{
    const char *path = write_file("part.yaml", "limits:\n  max_text_bytes: 1000\nlisten:\nlog: {}\n");

    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.max_text_bytes, 1000);
    cr_assert_eq(cfg.max_frame_bytes, 1048576);
    cr_assert_str_eq(cfg.ingress, "tcp://127.0.0.1:5560");
    cr_assert_str_eq(cfg.tenant, "default");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, empty_file_changes_nothing)
{
    const char *path = write_file("empty.yaml", "# nothing yet\n");

    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.redis, "redis://127.0.0.1:6379/0");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

/* routing: lives in the same file but is routecfg_load's to read and check, not this loader's. */
Test(config, routing_section_is_left_to_routecfg)
{
    const char *path = write_file("routing.yaml",
                                  "tenant: acme\n"
                                  "routing:\n"
                                  "  default_queue: general\n"
                                  "  queues:\n"
                                  "    - name: general\n"
                                  "      strategy: not-checked-here\n"
                                  "log:\n"
                                  "  level: debug\n");

    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.tenant, "acme");
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    path = write_file("routing-null.yaml", "routing:\nredis: redis://127.0.0.1:6380/0\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.redis, "redis://127.0.0.1:6380/0");
    expect_load_error("routing: {}\nrouting: {}\n", 2, "duplicate key 'routing'");
    expect_load_error("routings: {}\n", 1, "unknown key 'routings'");
}

Test(config, unreadable_file)
{
    char path[160], want[256];

    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), OMNI_EIO);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    cr_assert_str_eq(err, want);
    /* A directory opens but cannot be read as a file. */
    cr_assert_neq(config_load_file(&cfg, dir, err, sizeof(err)), 0);
    cr_assert_not_null(strstr(err, dir));
}

Test(config, syntax_errors)
{
    expect_load_error("tenant: a\nlimits:\n  max_refs: 3\n   batch_max: 4\n", 4, NULL);
    expect_load_error("tenant: a\nredis: \"unterminated\n", 3, NULL);
    expect_load_error("tenant: [a, b\n\n", 3, NULL);
    expect_load_error("tenant: *nowhere\n", 1, "alias");
    expect_load_error("tenant: a\n---\ntenant: b\n", 3, "one YAML document");
    /* Not UTF-8: libyaml reports a byte offset, the message still carries the line. */
    expect_load_error("tenant: a\nredis: b\nlog: \xff\n", 3, NULL);
}

Test(config, unknown_keys)
{
    expect_load_error("tenant: a\nverbose: true\n", 2, "unknown key 'verbose'");
    expect_load_error("listen:\n  ingress: tcp://a:1\n  egress: tcp://b:2\n", 3,
                      "unknown key 'listen.egress'");
    expect_load_error("limits: { max_frame_bytes: 10, max_text: 5 }\n", 1, "limits.max_text");
    expect_load_error("security:\n  clients: []\n  server_key: x\n", 3, "security.server_key");
    expect_load_error("tenant: a\ntenant: b\n", 2, "duplicate key 'tenant'");
    expect_load_error("? [a, b]\n: c\n", 1, "must be a name");
}

Test(config, wrong_types)
{
    expect_load_error("tenant:\n  name: a\n", 2, "'tenant' must be a value, not a mapping");
    expect_load_error("redis: [redis://a]\n", 1, "not a list");
    expect_load_error("limits: 5\n", 1, "'limits' must be a mapping");
    expect_load_error("listen: [tcp://a:1]\n", 1, "'listen' must be a mapping");
    expect_load_error("log:\n  level:\n", 2, "'log.level' has no value");
    expect_load_error("security:\n  clients: abc\n", 2, "must be a list");
    expect_load_error("security:\n  clients:\n    - [a]\n", 3, "security.clients");
    expect_load_error("tenant: \"a\\0b\"\n", 1, "NUL");
}

Test(config, bad_numbers)
{
    expect_load_error("limits:\n  max_frame_bytes: 1.5\n", 2, "positive integer");
    expect_load_error("limits:\n  max_frame_bytes: 12k\n", 2, "positive integer");
    expect_load_error("limits:\n  max_frame_bytes: lots\n", 2, "positive integer");
    expect_load_error("limits:\n\n  max_refs: -3\n", 3, "positive integer");
    expect_load_error("limits:\n  max_refs: 0\n", 2, "positive integer");
    expect_load_error("limits:\n  inflight_max: 99999999999999999999999\n", 2, "positive integer");
    expect_load_error("limits:\n  batch_max: 0x10\n", 2, NULL);
    expect_load_error("heartbeat_ms: 0\n", 1, "heartbeat_ms");
    expect_load_error("heartbeat_ms: 3000000000\n", 1, "heartbeat_ms");
    expect_load_error("stream: { maxlen: -1 }\n", 1, "non-negative");
    /* Quoted control characters must not break the one-line message. */
    expect_load_error("limits: { max_refs: \"1\\n2\" }\n", 1, "'1?2'");
    expect_load_error("\"a\\nb\": 1\n", 1, "unknown key 'a?b'");
}

Test(config, booleans)
{
    const char *path;

    expect_load_error("security:\n  allow_plain: maybe\n", 2, "true or false");
    expect_load_error("security:\n  allow_plain: on\n", 2, "true or false");
    expect_load_error("security:\n  allow_plain: 1\n", 2, "true or false");
    path = write_file("b1.yaml", "security: { allow_plain: no }\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.allow_plain, 0);
    path = write_file("b2.yaml", "security: { allow_plain: True }\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.allow_plain, 1);
    path = write_file("b3.yaml", "security: { allow_plain: false }\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.allow_plain, 0);
}

Test(config, window_units)
{
    static const struct {
        const char *text;
        int64_t seconds;
    } ok[] = {
        {"3600", 3600}, {"45s", 45}, {"90m", 5400}, {"12h", 43200}, {"7d", 604800}, {"\"1d\"", 86400},
    };
    static const char *const bad[] = {"7w", "d", "0", "0d", "-1", "1.5h", "7 d", "7dd", "106751991167301d"};
    char body[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *path;
        snprintf(body, sizeof(body), "idempotency_window: %s\n", ok[i].text);
        path = write_file("w.yaml", body);
        n_files--;
        cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s: %s", ok[i].text, err);
        cr_assert_eq(cfg.idempotency_window_s, ok[i].seconds, "%s", ok[i].text);
    }
    n_files++;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "tenant: t\nidempotency_window: %s\n", bad[i]);
        expect_load_error(body, 2, "idempotency_window");
    }
}

Test(config, client_list_is_replaced)
{
    char a[41], as[41], b[41], bs[41], body[256];
    const char *path;

    keypair(a, as);
    keypair(b, bs);
    snprintf(body, sizeof(body), "security:\n  clients:\n    - \"%s\"\n    - '%s'\n", a, b);
    path = write_file("c1.yaml", body);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.n_client_keys, 2);
    snprintf(body, sizeof(body), "security:\n  clients: [\"%s\"]\n", b);
    path = write_file("c2.yaml", body);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.n_client_keys, 1);
    cr_assert_str_eq(cfg.client_keys[0], b);
    path = write_file("c3.yaml", "security:\n  clients:\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.n_client_keys, 0);
}

Test(config, error_buffer_is_bounded)
{
    char small[8];
    const char *path = write_file("x.yaml", "nope: 1\n");

    memset(small, 'Z', sizeof(small));
    cr_assert_eq(config_load_file(&cfg, path, small, sizeof(small)), OMNI_ECONFIG);
    cr_assert_eq(strlen(small), sizeof(small) - 1);
    cr_assert_eq(config_load_file(&cfg, path, NULL, 0), OMNI_ECONFIG);
    cfg.max_refs = 0;
    cr_assert_eq(config_validate(&cfg, NULL, 0), OMNI_ECONFIG);
}

Test(config, bad_z85_keys)
{
    char pub[41], sec[41], key[41];

    keypair(pub, sec);
    config_set_str(&cfg.curve_secret, sec);

    config_set_str(&cfg.curve_public, "too-short");
    expect_invalid("server_public_key");
    snprintf(key, sizeof(key), "%.39s", pub);
    config_set_str(&cfg.curve_public, key);
    expect_invalid("server_public_key");
    memcpy(key, pub, 41);
    key[7] = '~'; /* not in the alphabet */
    config_set_str(&cfg.curve_public, key);
    expect_invalid("server_public_key");
    memcpy(key, pub, 41);
    memcpy(key, "#####", 5); /* Z85 letters, but above 2^32 */
    config_set_str(&cfg.curve_public, key);
    expect_invalid("server_public_key");

    config_set_str(&cfg.curve_public, pub);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    config_set_str(&cfg.curve_secret, "x");
    expect_invalid("server_secret_key");
}

Test(config, key_pairs)
{
    char pub[41], sec[41], pub2[41], sec2[41];

    keypair(pub, sec);
    keypair(pub2, sec2);
    config_set_str(&cfg.curve_public, pub);
    expect_invalid("set together");
    config_set_str(&cfg.curve_secret, sec2);
    expect_invalid("does not belong");
    config_set_str(&cfg.curve_secret, sec);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);

    cfg.client_keys[cfg.n_client_keys++] = strdup("not a key");
    expect_invalid("security.clients[0]");
    free(cfg.client_keys[0]);
    cfg.client_keys[0] = strdup(pub2);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    config_set_str(&cfg.curve_public, NULL);
    config_set_str(&cfg.curve_secret, NULL);
    expect_invalid("security.clients");
}

Test(config, allow_plain_false_needs_keys)
{
    char pub[41], sec[41];
    const char *path = write_file("p.yaml", "security:\n  allow_plain: false\n");

    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    expect_invalid("allow_plain");
    keypair(pub, sec);
    config_set_str(&cfg.curve_public, pub);
    config_set_str(&cfg.curve_secret, sec);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, plain_beyond_loopback_must_be_asked_for)
{
    config_set_str(&cfg.ingress, "tcp://0.0.0.0:5560");
    expect_invalid("listen.ingress: tcp://0.0.0.0:5560 is not a loopback endpoint");
    config_set_str(&cfg.ingress, "tcp://localhost:5560");
    config_set_str(&cfg.control, "tcp://10.0.0.5:5563");
    expect_invalid("listen.control");
    config_set_str(&cfg.control, "ipc:///run/omni/control");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    config_set_str(&cfg.stream, "tcp://192.168.1.10:5562");
    const char *path = write_file("plain.yaml", "security:\n  allow_plain: true\n");
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "explicit allow_plain: %s", err);
}

Test(config, cross_field_rules)
{
    config_set_str(&cfg.log_level, "verbose");
    expect_invalid("log.level");
    config_set_str(&cfg.log_level, "warn");
    config_set_str(&cfg.log_format, "xml");
    expect_invalid("log.format");
    config_set_str(&cfg.log_format, "json");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);

    config_set_str(&cfg.redis, "http://127.0.0.1:6379");
    expect_invalid("redis");
    config_set_str(&cfg.redis, "unix://");
    expect_invalid("redis");
    config_set_str(&cfg.redis, "unix:///tmp/r.sock");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);

    config_set_str(&cfg.http, "127.0.0.1");
    expect_invalid("listen.http");
    config_set_str(&cfg.http, "127.0.0.1:http");
    expect_invalid("listen.http");
    config_set_str(&cfg.http, "127.0.0.1:70000");
    expect_invalid("listen.http");
    config_set_str(&cfg.http, ":8080");
    expect_invalid("listen.http");
    config_set_str(&cfg.http, "[::1]:8080");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);

    config_set_str(&cfg.ingress, "");
    expect_invalid("listen.ingress");
    config_set_str(&cfg.ingress, "127.0.0.1:5560");
    expect_invalid("listen.ingress");
    config_set_str(&cfg.ingress, "tcp://127.0.0.1:5560");
    config_set_str(&cfg.control, NULL);
    expect_invalid("listen.control");
    config_set_str(&cfg.control, "inproc://control");

    config_set_str(&cfg.default_region, "jp");
    expect_invalid("default_region");
    config_set_str(&cfg.default_region, "JPN");
    expect_invalid("default_region");
    config_set_str(&cfg.default_region, "GB");

    config_set_str(&cfg.tenant, "a{b}");
    expect_invalid("tenant");
    config_set_str(&cfg.tenant, "");
    expect_invalid("tenant");
    config_set_str(&cfg.tenant, "acme-1");

    cfg.max_text_bytes = cfg.max_frame_bytes + 1;
    expect_invalid("max_text_bytes");
    cfg.max_text_bytes = cfg.max_frame_bytes;
    cfg.inflight_max = 0;
    expect_invalid("limits.inflight_max");
    cfg.inflight_max = 1;
    cfg.idempotency_window_s = 0;
    expect_invalid("idempotency_window");
    cfg.idempotency_window_s = 1;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, set_str_and_free)
{
    config_t c;

    cr_assert_eq(config_set_str(&cfg.tenant, "other"), 0);
    cr_assert_str_eq(cfg.tenant, "other");
    cr_assert_eq(config_set_str(&cfg.curve_public, NULL), 0);
    cr_assert_null(cfg.curve_public);

    /* Freeing twice, and freeing a zeroed struct, are both harmless. */
    config_free(&cfg);
    cr_assert_null(cfg.tenant);
    config_free(&cfg);
    memset(&c, 0, sizeof(c));
    config_free(&c);
    cr_assert_eq(config_defaults(&cfg), 0); /* teardown frees again */
}

Test(config, failed_load_stays_freeable)
{
    char pub[41], sec[41], body[256];
    const char *path;

    keypair(pub, sec);
    snprintf(body, sizeof(body), "tenant: t2\nsecurity:\n  clients: [\"%s\"]\n  server_public_key: \"%s\"\nlimits: x\n",
             pub, pub);
    path = write_file("half.yaml", body);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), OMNI_ECONFIG);
    cr_assert_not_null(strstr(err, ":5: "), "%s", err);
    /* teardown's config_free must release what the partial overlay set (valgrind checks). */
}
