/* Security and start-up refusals against the real broker.
 * (a) CURVE: with server keys and allow_plain: false, only listed client keys get through —
 *     on ingress (SDK adapters) and on control (omnictl); refusals are counted (auth_refused).
 * (b) Bad configuration or unreachable dependencies: the broker exits non-zero at once with
 *     exactly one line saying what is wrong. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <criterion/criterion.h>

#include "harness.h"

#define CH(x) OMNI__V1__CHANNEL__CHANNEL_##x
#define CTL(out, ...) h_omnictl(&H, out, sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

static h_env_t H;
static char srv_pub[41], srv_sec[41], c1_pub[41], c1_sec[41], c2_pub[41], c2_sec[41];

static void keys(void)
{
    cr_assert_eq(zmq_curve_keypair(srv_pub, srv_sec), 0, "libzmq without CURVE");
    cr_assert_eq(zmq_curve_keypair(c1_pub, c1_sec), 0);
    cr_assert_eq(zmq_curve_keypair(c2_pub, c2_sec), 0);
}

/* omnictl (and h_counter) read their CURVE keys from the environment; NULL unsets them. */
static void ctl_keys(const char *server, const char *pub, const char *sec)
{
    const char *names[] = {"OMNI_CURVE_SERVER_KEY", "OMNI_CURVE_PUBLIC_KEY", "OMNI_CURVE_SECRET_KEY"};
    const char *vals[] = {server, pub, sec};
    for (int i = 0; i < 3; i++) {
        if (vals[i])
            setenv(names[i], vals[i], 1);
        else
            unsetenv(names[i]);
    }
}

static void curve_setup(void)
{
    char yaml[1024];
    keys();
    ctl_keys(NULL, NULL, NULL);
    snprintf(yaml, sizeof(yaml),
             "# CURVE on, client 1 allowed, client 2 not\n"
             "security:\n"
             "  allow_plain: false\n"
             "  server_public_key: \"%s\"\n"
             "  server_secret_key: \"%s\"\n"
             "  clients:\n"
             "    - \"%s\"\n",
             srv_pub, srv_sec, c1_pub);
    h_setup_with_config(&H, yaml, srv_pub, c1_pub, c1_sec);
}

static void refusal_setup(void)
{
    keys();
    ctl_keys(NULL, NULL, NULL);
    h_prepare(&H);
    h_redis_start(&H); /* so that only the broken thing is broken */
}

static void teardown(void)
{
    ctl_keys(NULL, NULL, NULL);
    h_teardown(&H);
}

TestSuite(security, .fini = teardown, .timeout = 60);

/* ---- (a) CURVE --------------------------------------------------------------------------- */

static size_t stream_len(void)
{
    Omni__V1__StreamEvent **ev;
    size_t n = h_events(&H, &ev);
    h_events_free(ev, n);
    return n;
}

/* auth_refused as the broker reports it to an allowed omnictl; waits up to 5 s for >= want. */
static long long auth_refused_at_least(long long want)
{
    ctl_keys(srv_pub, c1_pub, c1_sec);
    long long v = -1;
    int64_t end = omni_mono_us() + 5000 * 1000;
    do {
        v = h_counter(&H, "auth_refused");
        cr_assert_geq(v, 0, "omnictl with an allowed key could not read the counters");
    } while (v < want && omni_mono_us() < end);
    ctl_keys(NULL, NULL, NULL);
    return v;
}

Test(security, allowed_client_key_is_acked, .init = curve_setup)
{
    omni_adapter_t *ad = h_adapter_curve(&H, "t-curve-1", CH(CHAT), srv_pub, c1_pub, c1_sec);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, CH(CHAT), "curve-ok-1", "chat:visitor-c1", NULL, "暗号化されています");
    cr_assert_eq(h_send(ad, &m, &ack, 5000), 0, "no ack over CURVE for an allowed key");
    cr_assert(ack.accepted, "%s", ack.detail);
    cr_assert_eq(omni_adapter_pending(ad), 0);
    cr_assert_eq(stream_len(), 3, "conversation_opened, queued, message");
    cr_assert_eq(auth_refused_at_least(0), 0, "nothing was refused");
    omni_adapter_destroy(&ad);
}

Test(security, unknown_client_key_gets_nothing_and_is_counted, .init = curve_setup)
{
    omni_adapter_t *ad = h_adapter_curve(&H, "t-curve-2", CH(CHAT), srv_pub, c2_pub, c2_sec);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, CH(CHAT), "curve-bad-1", "chat:visitor-c2", NULL, "入れてください");
    cr_assert_eq(h_send(ad, &m, &ack, 2000), OMNI_ETIMEDOUT, "a key not in security.clients got an answer");
    cr_assert_eq(omni_adapter_pending(ad), 1, "the SDK keeps the message for later");
    cr_assert_not(omni_adapter_connected(ad));
    cr_assert_eq(stream_len(), 0, "nothing from a refused client reaches the stream");
    cr_assert_geq(auth_refused_at_least(1), 1, "the refusal is counted");

    /* The allowed client is unaffected by the refused one. */
    omni_adapter_t *ok = h_adapter_curve(&H, "t-curve-1", CH(CHAT), srv_pub, c1_pub, c1_sec);
    h_msg(&m, CH(CHAT), "curve-ok-2", "chat:visitor-c1", NULL, "hi");
    cr_assert_eq(h_send(ok, &m, &ack, 5000), 0);
    cr_assert(ack.accepted);
    omni_adapter_destroy(&ok);
    omni_adapter_destroy(&ad);
}

Test(security, plain_adapter_gets_nothing, .init = curve_setup)
{
    omni_adapter_t *ad = h_adapter_curve(&H, "t-plain", CH(CHAT), NULL, NULL, NULL);
    Omni__V1__InboundMessage m;
    h_ack_t ack;
    h_msg(&m, CH(CHAT), "plain-1", "chat:visitor-plain", NULL, "hello?");
    cr_assert_eq(h_send(ad, &m, &ack, 2000), OMNI_ETIMEDOUT, "allow_plain: false, yet a plain adapter got an answer");
    cr_assert_eq(omni_adapter_pending(ad), 1);
    cr_assert_eq(stream_len(), 0);
    omni_adapter_destroy(&ad);
}

Test(security, omnictl_needs_an_allowed_key, .init = curve_setup)
{
    static char out[65536];
    /* Allowed key pair by flags. */
    int rc = CTL(out, "--curve-server", srv_pub, "--curve-public", c1_pub, "--curve-secret", c1_sec, "status", "--json");
    cr_assert_eq(rc, 0, "omnictl with client 1's keys (flags): exit %d", rc);
    cr_assert(strstr(out, "\"redis\":\"ok\""), "%s", out);
    /* ... and by environment. */
    ctl_keys(srv_pub, c1_pub, c1_sec);
    rc = CTL(out, "status", "--json");
    cr_assert_eq(rc, 0, "omnictl with client 1's keys (env): exit %d", rc);
    cr_assert(strstr(out, "\"redis\":\"ok\""), "%s", out);

    /* No keys: plain, refused. */
    ctl_keys(NULL, NULL, NULL);
    rc = CTL(out, "status", "--json");
    cr_assert_neq(rc, 0, "plain omnictl got a status from a CURVE-only broker: %s", out);
    cr_assert_neq(rc, 127);
    /* A key pair the broker does not list. */
    rc = CTL(out, "--curve-server", srv_pub, "--curve-public", c2_pub, "--curve-secret", c2_sec, "status", "--json");
    cr_assert_neq(rc, 0, "omnictl with client 2's keys got a status: %s", out);
    /* Only the server key: omnictl makes up a throw-away pair, which is not listed either. */
    rc = CTL(out, "--curve-server", srv_pub, "status", "--json");
    cr_assert_neq(rc, 0, "omnictl with a throw-away key got a status: %s", out);
    cr_assert_geq(auth_refused_at_least(2), 2, "both CURVE refusals are counted");
}

/* ---- (b) refusing to start ----------------------------------------------------------------- */

/* Start the broker (with H.config if set, plus extra flags) and expect it to exit non-zero
 * within a second, with one non-empty line of output that contains `mention`. */
static void expect_refusal(const char *const *extra, const char *mention)
{
    char err[8192] = "";
    int rc = h_broker_spawn(&H, extra, err, sizeof(err));
    cr_assert_neq(rc, -1, "the broker kept running (expected it to refuse: %s)", mention);
    cr_assert(rc > 0 && rc < 128, "exit code %d (0 = success, >= 128 = killed by a signal); output: %s", rc, err);
    size_t len = strlen(err);
    cr_assert_gt(len, 1, "exit %d without a word", rc);
    cr_assert_eq(err[len - 1], '\n', "output does not end with a newline: %s", err);
    cr_assert_null(memchr(err, '\n', len - 1), "more than one line:\n%s", err);
    cr_assert(strstr(err, mention), "the line does not mention '%s': %s", mention, err);
}

static void config_file(const char *yaml) { h_write_config(&H, yaml); }

Test(security, refuses_a_missing_config_file, .init = refusal_setup)
{
    snprintf(H.config, sizeof(H.config), "%s/missing.yaml", H.dir);
    expect_refusal(NULL, "missing.yaml");
}

Test(security, refuses_a_config_path_that_is_a_directory, .init = refusal_setup)
{
    snprintf(H.config, sizeof(H.config), "%s", H.dir);
    expect_refusal(NULL, H.dir);
}

Test(security, refuses_a_yaml_syntax_error, .init = refusal_setup)
{
    config_file("listen:\n  ingress: \"ipc:///tmp/x\n  control: [\n");
    expect_refusal(NULL, "omni.yaml");
    config_file("security:\n  allow_plain: [true\n");
    expect_refusal(NULL, "omni.yaml:");
}

Test(security, refuses_an_unknown_key, .init = refusal_setup)
{
    config_file("security:\n  allow_plian: false\n");
    expect_refusal(NULL, "allow_plian");
    config_file("listen:\n  ingres: \"tcp://127.0.0.1:5560\"\n");
    expect_refusal(NULL, "ingres");
}

Test(security, refuses_allow_plain_false_without_keys, .init = refusal_setup)
{
    config_file("security:\n  allow_plain: false\n");
    expect_refusal(NULL, "allow_plain");
}

Test(security, refuses_malformed_or_mismatched_keys, .init = refusal_setup)
{
    char yaml[1024], bad[41];
    /* 40 characters, but '~' is not in the Z85 alphabet. */
    memcpy(bad, srv_pub, 41);
    bad[7] = '~';
    snprintf(yaml, sizeof(yaml), "security:\n  server_public_key: \"%s\"\n  server_secret_key: \"%s\"\n", bad, srv_sec);
    config_file(yaml);
    expect_refusal(NULL, "server_public_key");
    /* Too short. */
    snprintf(yaml, sizeof(yaml), "security:\n  server_public_key: \"%s\"\n  server_secret_key: \"%.39s\"\n", srv_pub,
             srv_sec);
    config_file(yaml);
    expect_refusal(NULL, "server_secret_key");
    /* A malformed client key. */
    snprintf(yaml, sizeof(yaml),
             "security:\n  allow_plain: false\n  server_public_key: \"%s\"\n  server_secret_key: \"%s\"\n"
             "  clients:\n    - \"%s\"\n    - \"not-a-key\"\n",
             srv_pub, srv_sec, c1_pub);
    config_file(yaml);
    expect_refusal(NULL, "clients");
    /* Two valid keys that are not a pair. */
    snprintf(yaml, sizeof(yaml), "security:\n  server_public_key: \"%s\"\n  server_secret_key: \"%s\"\n", c1_pub,
             srv_sec);
    config_file(yaml);
    expect_refusal(NULL, "server_public_key");
}

Test(security, refuses_unreachable_redis, .init = refusal_setup)
{
    const char *extra[] = {"--redis", "unix:///nonexistent.sock", NULL};
    expect_refusal(extra, "Redis");
}

Test(security, refuses_an_endpoint_it_cannot_bind, .init = refusal_setup)
{
    const char *extra[] = {"--ingress", "tcp://256.0.0.1:1", NULL};
    expect_refusal(extra, "256.0.0.1");
    /* A port something else already listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char ep[64];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", ntohs(sa.sin_port));
    const char *taken[] = {"--control", ep, NULL};
    expect_refusal(taken, ep);
    close(fd);
}
