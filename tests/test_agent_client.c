/* omnictl agent, queues, agents and tail's routing events against a scripted fake broker: raw
 * ROUTER sockets in the test play the agents and control endpoints, the real binary runs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <criterion/criterion.h>
#include <omni/omni.h>
#include <omni/v1/agent.pb-c.h>
#include <omni/v1/control.pb-c.h>

#define BODY(x) OMNI__V1__AGENT_ENVELOPE__BODY_##x
#define CH(x) OMNI__V1__CHANNEL__CHANNEL_##x
#define KIND(x) OMNI__V1__STREAM_EVENT__KIND_##x

static void *zctx, *agents_r, *control_r;
static char agents_ep[128], control_ep[128];
static int64_t fake_started = 1000;  /* the fake broker's instance id, in heartbeat answers */

/* The omnictl under test: its stdout collected as it comes, stderr read at the end. */
static struct {
    pid_t pid;
    int out, err, eof;
    char buf[65536];
    size_t len;
} K = { .pid = -1 };

/* Routing id of the agent client, from its last message. */
static uint8_t peer[256];
static size_t peer_len;

/* Envelopes that arrived while the test waited for something else, oldest first. */
static Omni__V1__AgentEnvelope *stash[32];
static size_t n_stash;

static void *bind_router(char *ep, size_t len, const char *what)
{
    snprintf(ep, len, "ipc:///tmp/omni-agent-test-%d-%s", getpid(), what);
    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_bind(s, ep), 0, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
    return s;
}

static void setup(void)
{
    zctx = zmq_ctx_new();
    agents_r = bind_router(agents_ep, sizeof(agents_ep), "agents");
    control_r = bind_router(control_ep, sizeof(control_ep), "control");
}

static void teardown(void)
{
    if (K.pid > 0) {
        kill(K.pid, SIGKILL);
        waitpid(K.pid, NULL, 0);
    }
    for (size_t i = 0; i < n_stash; i++)
        omni__v1__agent_envelope__free_unpacked(stash[i], NULL);
    zmq_close(agents_r);
    zmq_close(control_r);
    zmq_ctx_term(zctx);
    unlink(agents_ep + 6);
    unlink(control_ep + 6);
}

TestSuite(agent_client, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the child ---------------------------------------------------------------------------- */

/* omnictl --agents A --control C --timeout 3000 ARGS... with stdout and stderr on pipes. */
static void spawn(const char *const *args)
{
    const char *bin = getenv("OMNICTL_BIN") && *getenv("OMNICTL_BIN") ? getenv("OMNICTL_BIN") : "omnictl";
    const char *argv[48] = {bin, "--control", control_ep, "--timeout", "3000"};
    int n = 5;
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int o[2], e[2];
    cr_assert_eq(pipe(o), 0);
    cr_assert_eq(pipe(e), 0);
    K.pid = fork();
    cr_assert_geq(K.pid, 0);
    if (K.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    K.out = o[0];
    K.err = e[0];
}

/* omnictl agent --agents ENDPOINT ARGS... */
#define AGENT(...) spawn((const char *const[]){"agent", "--agents", agents_ep, __VA_ARGS__, NULL})
#define CTL(...) spawn((const char *const[]){__VA_ARGS__, NULL})

static void read_stdout(void)
{
    cr_assert_lt(K.len, sizeof(K.buf) - 1, "stdout line too long");
    ssize_t got = read(K.out, K.buf + K.len, sizeof(K.buf) - 1 - K.len);
    if (got <= 0)
        K.eof = 1;
    else
        K.len += (size_t)got;
    K.buf[K.len] = '\0';
}

/* ---- the fake agents endpoint ------------------------------------------------------------- */

static void fake_send(uint64_t rid, Omni__V1__AgentEnvelope__BodyCase c, void *body)
{
    Omni__V1__AgentEnvelope env = OMNI__V1__AGENT_ENVELOPE__INIT;
    env.request_id = rid;
    env.body_case = c;
    env.login = body; /* the oneof is a union */
    size_t len = omni__v1__agent_envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len + 1);
    omni__v1__agent_envelope__pack(&env, buf);
    cr_assert_gt(peer_len, 0, "no client has spoken yet");
    zmq_send(agents_r, peer, peer_len, ZMQ_SNDMORE);
    zmq_send(agents_r, buf, len, 0);
    free(buf);
}

static void answer_heartbeat(uint64_t rid)
{
    Omni__V1__AgentHeartbeat hb = OMNI__V1__AGENT_HEARTBEAT__INIT;
    hb.started_ms = fake_started;
    fake_send(rid, BODY(HEARTBEAT), &hb);
}

static void send_ok(uint64_t rid, const char *outbound_id)
{
    Omni__V1__AgentOk ok = OMNI__V1__AGENT_OK__INIT;
    ok.outbound_id = (char *)outbound_id;
    ok.seq = 77;
    fake_send(rid, BODY(OK), &ok);
}

static Omni__V1__AgentEnvelope *recv_agent_msg(void)
{
    zmq_msg_t r, b;
    zmq_msg_init(&r);
    zmq_msg_init(&b);
    if (zmq_msg_recv(&r, agents_r, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&r);
        return NULL;
    }
    cr_assert(zmq_msg_more(&r), "a DEALER message comes as [routing id][envelope]");
    zmq_msg_recv(&b, agents_r, 0);
    cr_assert_not(zmq_msg_more(&b), "one AgentEnvelope per message");
    cr_assert_leq(zmq_msg_size(&r), sizeof(peer));
    peer_len = zmq_msg_size(&r);
    memcpy(peer, zmq_msg_data(&r), peer_len);
    Omni__V1__AgentEnvelope *env = omni__v1__agent_envelope__unpack(NULL, zmq_msg_size(&b), zmq_msg_data(&b));
    cr_assert_not_null(env, "omnictl sent something that is not an AgentEnvelope");
    zmq_msg_close(&r);
    zmq_msg_close(&b);
    return env;
}

/* Wait up to timeout_ms on the router and the child's stdout (whatever comes first). Returns an
 * envelope if one arrived; heartbeats are answered here and only returned when keep_hb. */
static Omni__V1__AgentEnvelope *pump(int64_t timeout_ms, int keep_hb)
{
    zmq_pollitem_t it[2] = {{agents_r, 0, ZMQ_POLLIN, 0}, {NULL, K.out, ZMQ_POLLIN, 0}};
    if (zmq_poll(it, K.eof ? 1 : 2, timeout_ms > 0 ? (long)timeout_ms : 0) < 0)
        return NULL; /* EINTR */
    if (!K.eof && it[1].revents)
        read_stdout();
    Omni__V1__AgentEnvelope *env = recv_agent_msg();
    if (env && env->body_case == BODY(HEARTBEAT) && !keep_hb) {
        answer_heartbeat(env->request_id);
        omni__v1__agent_envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

static int64_t left_ms(int64_t end_us)
{
    return (end_us - omni_mono_us()) / 1000;
}

static const char *body_name(int c)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&omni__v1__agent_envelope__descriptor, (unsigned)c);
    return f ? f->name : "nothing";
}

/* The next envelope the client sends, which must be `body` (heartbeats aside: answered). */
static Omni__V1__AgentEnvelope *expect(Omni__V1__AgentEnvelope__BodyCase body, int timeout_ms)
{
    Omni__V1__AgentEnvelope *env = NULL;
    if (n_stash) {
        env = stash[0];
        memmove(stash, stash + 1, --n_stash * sizeof(stash[0]));
    }
    int64_t end = omni_mono_us() + timeout_ms * 1000LL;
    while (!env && left_ms(end) > 0)
        env = pump(left_ms(end), body == BODY(HEARTBEAT));
    cr_assert_not_null(env, "no %s from omnictl agent within %d ms", body_name(body), timeout_ms);
    cr_assert_eq(env->body_case, body, "omnictl agent sent %s where %s was due", body_name(env->body_case),
                 body_name(body));
    return env;
}

/* The next stdout line (without its newline; caller frees); other traffic is kept for expect. */
static char *next_line(int timeout_ms)
{
    int64_t end = omni_mono_us() + timeout_ms * 1000LL;
    for (;;) {
        char *nl = memchr(K.buf, '\n', K.len);
        if (nl) {
            char *line = strndup(K.buf, (size_t)(nl - K.buf));
            K.len -= (size_t)(nl + 1 - K.buf);
            memmove(K.buf, nl + 1, K.len + 1);
            return line;
        }
        cr_assert_gt(left_ms(end), 0, "no stdout line within %d ms; so far: %s", timeout_ms, K.buf);
        cr_assert_not(K.eof, "omnictl exited before printing a line; so far: %s", K.buf);
        Omni__V1__AgentEnvelope *env = pump(left_ms(end), 0);
        if (env) {
            cr_assert_lt(n_stash, sizeof(stash) / sizeof(stash[0]));
            stash[n_stash++] = env;
        }
    }
}

/* Wait for the child to exit (answering a Logout on the way); returns its exit code. */
static int wait_exit(int timeout_ms)
{
    int64_t end = omni_mono_us() + timeout_ms * 1000LL;
    while (!K.eof) {
        cr_assert_gt(left_ms(end), 0, "omnictl still running after %d ms", timeout_ms);
        Omni__V1__AgentEnvelope *env = pump(left_ms(end), 0);
        if (env && env->body_case == BODY(LOGOUT))
            send_ok(env->request_id, "");
        if (env)
            omni__v1__agent_envelope__free_unpacked(env, NULL);
    }
    int st;
    cr_assert_eq(waitpid(K.pid, &st, 0), K.pid);
    K.pid = -1;
    cr_assert(WIFEXITED(st), "omnictl died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

static char *read_stderr(void)
{
    static char err[8192];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof(err) - 1 && (got = read(K.err, err + n, sizeof(err) - 1 - n)) > 0)
        n += (size_t)got;
    err[n] = '\0';
    return err;
}

/* Log in: the Login arrives and gets a LoginOk of the current instance. */
static Omni__V1__AgentEnvelope *login_ok(const char **reclaimed, size_t n_reclaimed)
{
    Omni__V1__AgentEnvelope *l = expect(BODY(LOGIN), 5000);
    Omni__V1__LoginOk ok = OMNI__V1__LOGIN_OK__INIT;
    ok.agent_id = l->login->agent_id;
    ok.started_ms = fake_started;
    ok.heartbeat_timeout_ms = 3000;
    ok.reclaimed = (char **)reclaimed;
    ok.n_reclaimed = n_reclaimed;
    fake_send(l->request_id, BODY(LOGIN_OK), &ok);
    return l;
}

static void send_offer(uint64_t offer_id, const char *conversation_id)
{
    Omni__V1__Offer o = OMNI__V1__OFFER__INIT;
    o.offer_id = offer_id;
    o.conversation_id = (char *)conversation_id;
    o.customer_id = "cu_1";
    o.channel = CH(EMAIL);
    o.queue = "billing";
    o.timeout_ms = 20000;
    o.wait_ms = 1500;
    o.strategy = "longest_idle";
    o.pool_size = 2;
    o.preview = "請求金額が違います";
    fake_send(0, BODY(OFFER), &o);
}

static void send_assignment(uint64_t offer_id, const char *conversation_id)
{
    Omni__V1__InboundMessage in = OMNI__V1__INBOUND_MESSAGE__INIT;
    in.from = "email:taro@example.jp";
    in.text = "先月の請求が二重です";
    in.subject = "請求金額が違います";
    Omni__V1__MessageEvent me = OMNI__V1__MESSAGE_EVENT__INIT;
    me.inbound = &in;
    Omni__V1__AgentMessage am = OMNI__V1__AGENT_MESSAGE__INIT;
    am.agent_id = "agent-0";
    am.text = "確認します";
    am.outbound_id = "ob_0";
    Omni__V1__StreamEvent e1 = OMNI__V1__STREAM_EVENT__INIT, e2 = OMNI__V1__STREAM_EVENT__INIT;
    e1.seq = 5;
    e1.customer_id = e2.customer_id = "cu_1";
    e1.conversation_id = e2.conversation_id = (char *)conversation_id;
    e1.channel = e2.channel = CH(EMAIL);
    e1.kind_case = KIND(MESSAGE);
    e1.message = &me;
    e2.seq = 6;
    e2.kind_case = KIND(AGENT_MESSAGE);
    e2.agent_message = &am;
    Omni__V1__StreamEvent *hist[] = {&e1, &e2};
    Omni__V1__Assignment as = OMNI__V1__ASSIGNMENT__INIT;
    as.offer_id = offer_id;
    as.conversation_id = (char *)conversation_id;
    as.customer_id = "cu_1";
    as.channel = CH(EMAIL);
    as.queue = "billing";
    as.subject = "請求金額が違います";
    as.history = hist;
    as.n_history = 2;
    fake_send(0, BODY(ASSIGNMENT), &as);
}

/* Offer, Accept, Assignment, and the assignment's line on stdout (returned; caller frees). */
static char *assign(uint64_t offer_id, const char *conversation_id)
{
    send_offer(offer_id, conversation_id);
    Omni__V1__AgentEnvelope *acc = expect(BODY(ACCEPT), 5000);
    cr_assert_eq(acc->accept->offer_id, offer_id);
    omni__v1__agent_envelope__free_unpacked(acc, NULL);
    send_assignment(offer_id, conversation_id);
    return next_line(5000);
}

/* SIGINT: a Logout, then exit 0. */
static void interrupt_and_expect_logout(void)
{
    cr_assert_eq(kill(K.pid, SIGINT), 0);
    Omni__V1__AgentEnvelope *lo = expect(BODY(LOGOUT), 5000);
    send_ok(lo->request_id, "");
    omni__v1__agent_envelope__free_unpacked(lo, NULL);
    cr_assert_eq(wait_exit(5000), 0, "SIGINT is how an agent ends: exit 0");
}

/* ---- reading omnictl's JSON: a validating scanner over the raw text ---------------------- */

static const char *jws(const char *p)
{
    return p + strspn(p, " \t\r\n");
}

/* The end of the JSON string starting at p (the opening quote), or NULL. */
static const char *jstring_end(const char *p)
{
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL; /* also the terminating NUL: unterminated */
        if (*p == '\\' && (!*++p || !strchr("\"\\/bfnrtu", *p)))
            return NULL;
    }
    return p + 1;
}

static const char *jvalue_end(const char *p, int depth);

/* The end of the object or array starting at p, or NULL. */
static const char *jcontainer_end(const char *p, int depth)
{
    int obj = *p == '{';
    char close = obj ? '}' : ']';
    p = jws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (obj) {
            if (*p != '"' || !(p = jstring_end(p)) || *(p = jws(p)) != ':')
                return NULL;
            p++;
        }
        if (!(p = jvalue_end(p, depth + 1)))
            return NULL;
        p = jws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = jws(p + 1);
    }
}

static const char *jvalue_end(const char *p, int depth)
{
    p = jws(p);
    if (depth > 16)
        return NULL;
    if (*p == '{' || *p == '[')
        return jcontainer_end(p, depth);
    if (*p == '"')
        return jstring_end(p);
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (strncmp(p, words[i], strlen(words[i])) == 0)
            return p + strlen(words[i]);
    size_t n = strspn(p, "-+0123456789.eE");
    return n ? p + n : NULL;
}

/* The text must be exactly one JSON object ('{') or array ('['), on one line. */
static void check_json(const char *text, char open)
{
    const char *end = jvalue_end(text, 0), *nl = strchr(text, '\n');
    cr_assert(end && !*jws(end) && *jws(text) == open && (!nl || !nl[1]), "not one JSON %s on one line: %s",
              open == '{' ? "object" : "array", text);
}

/* The raw text of member key of the object at obj, or NULL. */
static const char *jget(const char *obj, const char *key)
{
    const char *p = jws(obj);
    cr_assert_eq(*p, '{', "not an object: %.60s", p);
    p = jws(p + 1);
    size_t klen = strlen(key);
    while (*p == '"') {
        const char *kend = jstring_end(p);
        const char *v = jws(jws(kend) + 1);
        if ((size_t)(kend - p) == klen + 2 && strncmp(p + 1, key, klen) == 0)
            return v;
        p = jws(jvalue_end(v, 0));
        p = *p == ',' ? jws(p + 1) : p;
    }
    return NULL;
}

/* v (raw JSON text) is the string want: test data needs no escapes, so it reads "want". */
static void jstr_eq(const char *v, const char *what, const char *want)
{
    cr_assert_not_null(v, "no %s", what);
    size_t n = strlen(want);
    cr_assert(v[0] == '"' && strncmp(v + 1, want, n) == 0 && v[n + 1] == '"', "%s is %.80s, want \"%s\"", what,
              v, want);
}

static void jis(const char *obj, const char *key, const char *want)
{
    jstr_eq(jget(obj, key), key, want);
}

/* Member key is this number, true, false (raw JSON text). */
static void jraw(const char *obj, const char *key, const char *want)
{
    const char *v = jget(obj, key);
    cr_assert_not_null(v, "no \"%s\" in %s", key, obj);
    size_t n = strlen(want);
    cr_assert(strncmp(v, want, n) == 0 && !strchr("0123456789.eE", v[n]), "\"%s\" is %.40s, want %s", key, v,
              want);
}

/* Element i of the array at arr, or NULL past its end. */
static const char *jat(const char *arr, size_t i)
{
    const char *p = jws(arr);
    cr_assert_eq(*p, '[', "not an array: %.60s", p);
    p = jws(p + 1);
    for (size_t k = 0; *p != ']'; k++) {
        if (k == i)
            return p;
        p = jws(jvalue_end(p, 0));
        p = *p == ',' ? jws(p + 1) : p;
    }
    return NULL;
}

static size_t jlen(const char *arr)
{
    size_t n = 0;
    while (jat(arr, n))
        n++;
    return n;
}

/* ---- omnictl agent ------------------------------------------------------------------------ */

Test(agent_client, logs_in_accepts_prints_replies_closes_and_stops_after_count)
{
    AGENT("--id", "agent-1", "--skills", "billing:3,tech", "--languages", "ja,en", "--team", "tokyo",
          "--capacity", "chat=3,email=5", "--state", "away", "--heartbeat-ms", "200", "--reply", "お待たせしました",
          "--close", "--disposition", "solved", "--count", "1", "--json");
    Omni__V1__AgentEnvelope *l = login_ok(NULL, 0);
    const Omni__V1__Login *in = l->login;
    cr_assert_str_eq(in->agent_id, "agent-1");
    cr_assert_eq(in->n_skills, 2);
    cr_assert_str_eq(in->skills[0]->name, "billing");
    cr_assert_eq(in->skills[0]->level, 3);
    cr_assert_str_eq(in->skills[1]->name, "tech");
    cr_assert_eq(in->skills[1]->level, 1, "level defaults to 1");
    cr_assert_eq(in->n_capacity, 2);
    cr_assert_eq(in->capacity[0]->channel, CH(CHAT));
    cr_assert_eq(in->capacity[0]->slots, 3);
    cr_assert_eq(in->capacity[1]->channel, CH(EMAIL));
    cr_assert_eq(in->capacity[1]->slots, 5);
    cr_assert_eq(in->n_languages, 2);
    cr_assert_str_eq(in->languages[1], "en");
    cr_assert_str_eq(in->team, "tokyo");
    cr_assert_eq(in->state, OMNI__V1__AGENT_STATE__AGENT_STATE_AWAY);
    cr_assert_eq(in->heartbeat_ms, 200);
    cr_assert_eq(in->n_holding, 0);
    cr_assert_neq(l->request_id, 0);
    omni__v1__agent_envelope__free_unpacked(l, NULL);

    char *line = assign(7, "cv_1");
    check_json(line, '{');
    jis(line, "type", "assignment");
    jis(line, "agent_id", "agent-1");
    jis(line, "conversation_id", "cv_1");
    jis(line, "customer_id", "cu_1");
    jis(line, "channel", "email");
    jis(line, "queue", "billing");
    jis(line, "subject", "請求金額が違います");
    jraw(line, "offer_id", "7");
    jraw(line, "restored", "false");
    const char *hist = jget(line, "history");
    cr_assert_eq(jlen(hist), 2);
    jis(jat(hist, 0), "type", "message");
    jraw(jat(hist, 0), "seq", "5");
    jis(jat(hist, 0), "from", "email:taro@example.jp");
    jis(jat(hist, 0), "text", "先月の請求が二重です");
    jis(jat(hist, 0), "subject", "請求金額が違います");
    jis(jat(hist, 0), "conversation_id", "cv_1");
    jis(jat(hist, 1), "type", "agent_message");
    jis(jat(hist, 1), "text", "確認します");
    jis(jat(hist, 1), "outbound_id", "ob_0");
    free(line);

    Omni__V1__AgentEnvelope *r = expect(BODY(REPLY), 5000);
    cr_assert_str_eq(r->reply->conversation_id, "cv_1");
    cr_assert_str_eq(r->reply->text, "お待たせしました");
    send_ok(r->request_id, "ob_1");
    Omni__V1__AgentEnvelope *c = expect(BODY(CLOSE), 5000);
    cr_assert_str_eq(c->close->conversation_id, "cv_1");
    cr_assert_str_eq(c->close->disposition, "solved");
    cr_assert_neq(c->request_id, r->request_id);
    send_ok(c->request_id, "");
    omni__v1__agent_envelope__free_unpacked(r, NULL);
    omni__v1__agent_envelope__free_unpacked(c, NULL);

    Omni__V1__AgentEnvelope *lo = expect(BODY(LOGOUT), 5000);
    send_ok(lo->request_id, "");
    omni__v1__agent_envelope__free_unpacked(lo, NULL);
    cr_assert_eq(wait_exit(5000), 0, "--count 1: done after the close was answered");
    cr_assert_str_eq(read_stderr(), "");
    cr_assert_eq(K.len, 0, "nothing printed after the assignment: %s", K.buf);
}

Test(agent_client, a_refused_login_exits_1_with_one_stderr_line)
{
    AGENT("--id", "ghost", "--json");
    Omni__V1__AgentEnvelope *l = expect(BODY(LOGIN), 5000);
    Omni__V1__AgentError e = OMNI__V1__AGENT_ERROR__INIT;
    e.code = "unknown_agent";
    e.detail = "ghost is not configured";
    fake_send(l->request_id, BODY(ERROR), &e);
    omni__v1__agent_envelope__free_unpacked(l, NULL);
    cr_assert_eq(wait_exit(5000), 1);
    cr_assert_str_eq(read_stderr(), "omnictl: agent: unknown_agent: ghost is not configured\n");
    cr_assert_eq(K.len, 0, "nothing on stdout: %s", K.buf);
}

Test(agent_client, the_first_login_is_repeated_until_the_broker_answers)
{
    AGENT("--id", "agent-2", "--heartbeat-ms", "250", "--json");
    int64_t t0 = omni_mono_us();
    Omni__V1__AgentEnvelope *l1 = expect(BODY(LOGIN), 5000);
    /* Not answered: as if the broker were not up yet. */
    Omni__V1__AgentEnvelope *l2 = expect(BODY(LOGIN), 3000);
    cr_assert_geq(omni_mono_us() - t0, 800 * 1000, "retried after about a second, not in a burst");
    cr_assert_eq(l2->request_id, l1->request_id, "one request id: an answer to any copy counts");
    Omni__V1__LoginOk ok = OMNI__V1__LOGIN_OK__INIT;
    ok.started_ms = fake_started;
    fake_send(l2->request_id, BODY(LOGIN_OK), &ok);
    omni__v1__agent_envelope__free_unpacked(l1, NULL);
    omni__v1__agent_envelope__free_unpacked(l2, NULL);
    /* Logged in: heartbeats now, no more logins. */
    for (int i = 0; i < 3; i++)
        omni__v1__agent_envelope__free_unpacked(expect(BODY(HEARTBEAT), 2000), NULL);
    interrupt_and_expect_logout();
}

Test(agent_client, no_answer_to_the_first_login_exits_1_after_timeout)
{
    spawn((const char *const[]){"--timeout", "1200", "agent", "--agents", agents_ep, "--id", "agent-3", NULL});
    int64_t t0 = omni_mono_us();
    int rc = wait_exit(10000); /* the logins it sends meanwhile stay unanswered */
    int64_t took = (omni_mono_us() - t0) / 1000;
    cr_assert_eq(rc, 1);
    cr_assert_geq(took, 1000, "gave up after %lld ms, before --timeout", (long long)took);
    cr_assert_lt(took, 4000, "gave up only after %lld ms", (long long)took);
    cr_assert(strstr(read_stderr(), "omnictl: agent: broker unreachable at "), "stderr: %s", read_stderr());
}

/* The next Login, which must hold exactly the given conversations. */
static uint64_t expect_relogin(const char *holding)
{
    Omni__V1__AgentEnvelope *l = expect(BODY(LOGIN), 5000);
    cr_assert_eq(l->login->n_holding, holding ? 1 : 0, "holding %zu conversations", l->login->n_holding);
    if (holding)
        cr_assert_str_eq(l->login->holding[0], holding);
    uint64_t rid = l->request_id;
    omni__v1__agent_envelope__free_unpacked(l, NULL);
    return rid;
}

static void send_login_ok(uint64_t rid, const char **reclaimed, size_t n)
{
    Omni__V1__LoginOk ok = OMNI__V1__LOGIN_OK__INIT;
    ok.started_ms = fake_started;
    ok.reclaimed = (char **)reclaimed;
    ok.n_reclaimed = n;
    fake_send(rid, BODY(LOGIN_OK), &ok);
}

Test(agent_client, a_restarted_broker_gets_a_login_with_the_held_conversations)
{
    AGENT("--id", "agent-4", "--heartbeat-ms", "250", "--json");
    Omni__V1__AgentEnvelope *l = login_ok(NULL, 0);
    uint64_t first = l->request_id;
    omni__v1__agent_envelope__free_unpacked(l, NULL);
    free(assign(11, "cv_9"));

    fake_started = 2000; /* heartbeats now answer with a new instance id */
    uint64_t rid = expect_relogin("cv_9");
    cr_assert_neq(rid, first);
    const char *keep[] = {"cv_9"};
    send_login_ok(rid, keep, 1);

    /* The session is lost without a restart: any request answered with not_logged_in. */
    Omni__V1__AgentEnvelope *hb = expect(BODY(HEARTBEAT), 2000);
    Omni__V1__AgentError e = OMNI__V1__AGENT_ERROR__INIT;
    e.code = "not_logged_in";
    e.detail = "";
    fake_send(hb->request_id, BODY(ERROR), &e);
    omni__v1__agent_envelope__free_unpacked(hb, NULL);
    rid = expect_relogin("cv_9");
    send_login_ok(rid, NULL, 0); /* not reclaimed: someone else's now */

    fake_started = 3000;
    send_login_ok(expect_relogin(NULL), NULL, 0);
    interrupt_and_expect_logout();
    cr_assert_eq(K.len, 0, "nothing printed besides the assignment: %s", K.buf);
    cr_assert_str_eq(read_stderr(), "");
}

Test(agent_client, reject_answers_offers_with_reject)
{
    AGENT("--id", "agent-5", "--reject", "--json");
    omni__v1__agent_envelope__free_unpacked(login_ok(NULL, 0), NULL);
    send_offer(21, "cv_21");
    Omni__V1__AgentEnvelope *r = expect(BODY(REJECT), 5000);
    cr_assert_eq(r->reject->offer_id, 21);
    cr_assert_str_neq(r->reject->reason, "");
    omni__v1__agent_envelope__free_unpacked(r, NULL);
    interrupt_and_expect_logout();
}

Test(agent_client, ignore_offers_answers_nothing)
{
    AGENT("--id", "agent-6", "--ignore-offers", "--heartbeat-ms", "250", "--json");
    omni__v1__agent_envelope__free_unpacked(login_ok(NULL, 0), NULL);
    send_offer(31, "cv_31");
    /* The client handles messages in order: once it logs in again because of the heartbeat
     * answered after the offer, the offer was handled, and expect() fails on an Accept or
     * Reject sent before that Login. */
    fake_started = 4000;
    send_login_ok(expect_relogin(NULL), NULL, 0);
    interrupt_and_expect_logout();
}

Test(agent_client, sigint_logs_out_and_exits_0)
{
    AGENT("--id", "agent-7");
    omni__v1__agent_envelope__free_unpacked(login_ok(NULL, 0), NULL);
    char *line = next_line(5000);
    cr_assert(strstr(line, "logged in as agent-7"), "human login line: %s", line);
    free(line);
    interrupt_and_expect_logout();
    cr_assert_str_eq(read_stderr(), "");
}

/* --events: each notice as a JSON line of its type. */
static char *expect_line(const char *type)
{
    char *line = next_line(5000);
    check_json(line, '{');
    jis(line, "type", type);
    jis(line, "agent_id", "agent-8");
    return line;
}

Test(agent_client, events_prints_every_notice)
{
    AGENT("--id", "agent-8", "--ignore-offers", "--events", "--json");
    const char *keep[] = {"cv_x"};
    omni__v1__agent_envelope__free_unpacked(login_ok(keep, 1), NULL);
    char *line = expect_line("login");
    jraw(line, "started_ms", "1000");
    free(line);

    send_offer(41, "cv_41");
    line = expect_line("offer");
    jraw(line, "offer_id", "41");
    jis(line, "conversation_id", "cv_41");
    jis(line, "channel", "email");
    jis(line, "preview", "請求金額が違います");
    free(line);

    Omni__V1__Revoke rv = OMNI__V1__REVOKE__INIT;
    rv.offer_id = 41;
    rv.conversation_id = "cv_41";
    rv.reason = "timeout";
    fake_send(0, BODY(REVOKE), &rv);
    line = expect_line("revoke");
    jraw(line, "offer_id", "41");
    jis(line, "reason", "timeout");
    free(line);

    Omni__V1__AgentMessage am = OMNI__V1__AGENT_MESSAGE__INIT;
    am.text = "営業時間外です";
    am.auto_reply = 1;
    Omni__V1__StreamEvent ev = OMNI__V1__STREAM_EVENT__INIT;
    ev.seq = 12;
    ev.conversation_id = "cv_x";
    ev.channel = CH(CHAT);
    ev.kind_case = KIND(AGENT_MESSAGE);
    ev.agent_message = &am;
    Omni__V1__ConversationEvent ce = OMNI__V1__CONVERSATION_EVENT__INIT;
    ce.event = &ev;
    fake_send(0, BODY(EVENT), &ce);
    line = expect_line("event");
    const char *inner = jget(line, "event");
    jis(inner, "type", "agent_message");
    jraw(inner, "seq", "12");
    jis(inner, "text", "営業時間外です");
    jraw(inner, "auto_reply", "true");
    free(line);

    Omni__V1__Released rl = OMNI__V1__RELEASED__INIT;
    rl.conversation_id = "cv_x";
    rl.reason = "transferred";
    fake_send(0, BODY(RELEASED), &rl);
    line = expect_line("released");
    jis(line, "conversation_id", "cv_x");
    free(line);

    Omni__V1__AgentStatus st = OMNI__V1__AGENT_STATUS__INIT;
    st.state = OMNI__V1__AGENT_STATE__AGENT_STATE_WRAP_UP;
    st.reason = "wrap_up";
    fake_send(0, BODY(STATUS), &st);
    line = expect_line("status");
    jis(line, "state", "wrap_up");
    jis(line, "reason", "wrap_up");
    free(line);

    /* Released cv_x: the next login holds nothing. */
    fake_started = 5000;
    send_login_ok(expect_relogin(NULL), NULL, 0);
    interrupt_and_expect_logout();
}

Test(agent_client, bad_flags_are_usage_errors)
{
    static const char *const bad[][4] = {
        {"--skills", "billing:9", NULL},
        {"--capacity", "chat=3,chat=1", NULL},
        {"--capacity", "fax=1", NULL},
        {"--state", "busy", NULL},
        {"--reject", "--ignore-offers", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spawn((const char *const[]){"agent", "--agents", agents_ep, "--id", "a", bad[i][0], bad[i][1], bad[i][2], NULL});
        cr_assert_eq(wait_exit(5000), 2, "%s %s", bad[i][0], bad[i][1]);
        close(K.out);
        close(K.err);
        K.eof = 0;
    }
    CTL("agent", "--agents", agents_ep, "--json");
    cr_assert_eq(wait_exit(5000), 2, "--id is required");
    cr_assert(strstr(read_stderr(), "--id"));
}

/* ---- the fake control endpoint: queues, agents, tail -------------------------------------- */

/* Receive the next ControlRequest (must be of body `want`) and answer it with rep. */
static void serve_control(Omni__V1__ControlRequest__BodyCase want, Omni__V1__ControlReply *rep)
{
    zmq_pollitem_t it = {control_r, 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&it, 1, 5000), 1, "no control request within 5 s");
    zmq_msg_t r, b;
    zmq_msg_init(&r);
    zmq_msg_init(&b);
    zmq_msg_recv(&r, control_r, 0);
    zmq_msg_recv(&b, control_r, 0);
    Omni__V1__ControlRequest *req = omni__v1__control_request__unpack(NULL, zmq_msg_size(&b), zmq_msg_data(&b));
    cr_assert_not_null(req);
    cr_assert_eq(req->body_case, want, "control request %d, want %d", req->body_case, want);
    rep->id = req->id;
    omni__v1__control_request__free_unpacked(req, NULL);
    size_t len = omni__v1__control_reply__get_packed_size(rep);
    uint8_t *buf = malloc(len + 1);
    omni__v1__control_reply__pack(rep, buf);
    zmq_msg_send(&r, control_r, ZMQ_SNDMORE);
    zmq_send(control_r, buf, len, 0);
    free(buf);
    zmq_msg_close(&b);
}

/* Everything the command printed once it exited with `code`. */
static const char *ctl_output(int code)
{
    cr_assert_eq(wait_exit(5000), code, "stderr: %s", read_stderr());
    return K.buf;
}

static Omni__V1__QueuesReply *two_queues(void)
{
    static Omni__V1__QueueStatus q1 = OMNI__V1__QUEUE_STATUS__INIT, q2 = OMNI__V1__QUEUE_STATUS__INIT;
    static Omni__V1__QueueStatus *qs[] = {&q1, &q2};
    static Omni__V1__QueuesReply r = OMNI__V1__QUEUES_REPLY__INIT;
    q1.name = "billing";
    q1.waiting = 4;
    q1.oldest_wait_ms = 93000;
    q1.ewt_ms = 120000;
    q1.sla_target_ms = 60000;
    q1.sla_met_pct = 87.5;
    q1.answered = 40;
    q1.offered = 44;
    q1.staffed = 3;
    q1.open = 1;
    q2.name = "default";
    r.queues = qs;
    r.n_queues = 2;
    return &r;
}

Test(agent_client, queues_json_is_an_array_of_the_contract_fields)
{
    CTL("queues", "--json");
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_QUEUES;
    rep.queues = two_queues();
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_QUEUES, &rep);
    const char *out = ctl_output(0);
    check_json(out, '[');
    cr_assert_eq(jlen(out), 2);
    const char *q = jat(out, 0);
    jis(q, "name", "billing");
    jraw(q, "waiting", "4");
    jraw(q, "oldest_wait_ms", "93000");
    jraw(q, "ewt_ms", "120000");
    jraw(q, "sla_target_ms", "60000");
    jraw(q, "sla_met_pct", "87.5");
    jraw(q, "answered", "40");
    jraw(q, "offered", "44");
    jraw(q, "staffed", "3");
    jraw(q, "open", "true");
    jraw(jat(out, 1), "waiting", "0");
    jraw(jat(out, 1), "open", "false");
}

Test(agent_client, queues_table_and_error_reply)
{
    CTL("queues");
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_QUEUES;
    rep.queues = two_queues();
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_QUEUES, &rep);
    const char *out = ctl_output(0);
    cr_assert(strncmp(out, "QUEUE", 5) == 0, "a table with a header: %s", out);
    cr_assert(strstr(out, "\nbilling ") && strstr(out, "87.5%"), "%s", out);
    close(K.out);
    close(K.err);
    K.eof = 0;
    K.len = 0;

    /* A broker without routing does not know the request. */
    CTL("agents");
    Omni__V1__ControlReply err = OMNI__V1__CONTROL_REPLY__INIT;
    err.error = "unsupported";
    err.detail = "unknown control request";
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_AGENTS, &err);
    cr_assert_eq(wait_exit(5000), 1);
    cr_assert_str_eq(read_stderr(), "omnictl: unsupported: unknown control request\n");
}

Test(agent_client, agents_json_maps_skills_capacity_and_load)
{
    CTL("agents", "--json");
    Omni__V1__SkillLevel s1 = OMNI__V1__SKILL_LEVEL__INIT, s2 = OMNI__V1__SKILL_LEVEL__INIT;
    s1.name = "billing";
    s1.level = 3;
    s2.name = "lang:ja";
    s2.level = 5;
    Omni__V1__SkillLevel *ss[] = {&s1, &s2};
    Omni__V1__ChannelSlots c1 = OMNI__V1__CHANNEL_SLOTS__INIT, c2 = OMNI__V1__CHANNEL_SLOTS__INIT;
    c1.channel = CH(CHAT);
    c1.slots = 3;
    c2.channel = CH(PHONE);
    c2.slots = 1;
    Omni__V1__ChannelSlots *cap[] = {&c1, &c2}, *load[] = {&c2};
    char *convs[] = {"cv_1"};
    Omni__V1__AgentInfo a = OMNI__V1__AGENT_INFO__INIT;
    a.id = "agent-1";
    a.state = "available";
    a.skills = ss;
    a.n_skills = 2;
    a.capacity = cap;
    a.n_capacity = 2;
    a.load = load;
    a.n_load = 1;
    a.assigned = 9;
    a.conversations = convs;
    a.n_conversations = 1;
    Omni__V1__AgentInfo *as[] = {&a};
    Omni__V1__AgentsReply ar = OMNI__V1__AGENTS_REPLY__INIT;
    ar.agents = as;
    ar.n_agents = 1;
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_AGENTS;
    rep.agents = &ar;
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_AGENTS, &rep);
    const char *out = ctl_output(0);
    check_json(out, '[');
    cr_assert_eq(jlen(out), 1, "%s", out);
    const char *j = jat(out, 0);
    jis(j, "id", "agent-1");
    jis(j, "state", "available");
    jraw(jget(j, "skills"), "billing", "3");
    jraw(jget(j, "skills"), "lang:ja", "5");
    jraw(jget(j, "capacity"), "chat", "3");
    jraw(jget(j, "capacity"), "phone", "1");
    jraw(jget(j, "load"), "phone", "1");
    cr_assert_null(jget(jget(j, "load"), "chat"), "only channels with load");
    jraw(j, "assigned", "9");
    jstr_eq(jat(jget(j, "conversations"), 0), "conversations[0]", "cv_1");
}

/* One event of each routing kind, seq 1..7. */
static Omni__V1__TailReply *routing_events(void)
{
    static Omni__V1__Queued q = OMNI__V1__QUEUED__INIT;
    static Omni__V1__Offered o = OMNI__V1__OFFERED__INIT;
    static Omni__V1__Assigned a = OMNI__V1__ASSIGNED__INIT;
    static Omni__V1__AgentMessage m = OMNI__V1__AGENT_MESSAGE__INIT;
    static Omni__V1__Transferred t = OMNI__V1__TRANSFERRED__INIT;
    static Omni__V1__Closed c = OMNI__V1__CLOSED__INIT;
    static Omni__V1__OfferEnded e = OMNI__V1__OFFER_ENDED__INIT;
    static Omni__V1__StreamEvent evs[7];
    static Omni__V1__StreamEvent *ptrs[7];
    static Omni__V1__TailReply tr = OMNI__V1__TAIL_REPLY__INIT;
    q.queue = "billing";
    q.category = "請求";
    q.priority_ms = 600000;
    q.subject = "請求金額が違います";
    q.requeued = 1;
    q.reason = "restart";
    o.agent_id = a.agent_id = m.agent_id = c.agent_id = e.agent_id = "agent-1";
    o.offer_id = a.offer_id = e.offer_id = 3;
    o.queue = a.queue = c.queue = "billing";
    o.strategy = a.strategy = "longest_idle";
    o.step = a.step = 1;
    o.pool_size = a.pool_size = 2;
    o.score = a.score = 650000;
    a.wait_ms = 42000;
    m.text = "お待たせしました";
    m.subject = "Re: 請求金額が違います";
    m.outbound_id = "ob_1";
    m.to = "email:taro@example.jp";
    t.from_agent = "agent-1";
    t.from_queue = "billing";
    t.to_queue = "retention";
    t.reason = "agent";
    c.disposition = "solved";
    e.reason = "timeout";
    void *bodies[] = {&q, &o, &a, &m, &t, &c, &e};
    Omni__V1__StreamEvent__KindCase kinds[] = {KIND(QUEUED), KIND(OFFERED), KIND(ASSIGNED), KIND(AGENT_MESSAGE),
                                               KIND(TRANSFERRED), KIND(CLOSED), KIND(OFFER_ENDED)};
    for (int i = 0; i < 7; i++) {
        omni__v1__stream_event__init(&evs[i]);
        evs[i].seq = (uint64_t)i + 1;
        evs[i].customer_id = "cu_1";
        evs[i].conversation_id = "cv_1";
        evs[i].channel = CH(EMAIL);
        evs[i].kind_case = kinds[i];
        evs[i].queued = bodies[i]; /* the kind oneof is a union */
        ptrs[i] = &evs[i];
    }
    tr.events = ptrs;
    tr.n_events = 7;
    tr.last_seq = 7;
    return &tr;
}

Test(agent_client, tail_prints_the_routing_events)
{
    CTL("tail", "--from", "1", "--json");
    Omni__V1__ControlReply rep = OMNI__V1__CONTROL_REPLY__INIT;
    rep.body_case = OMNI__V1__CONTROL_REPLY__BODY_TAIL;
    rep.tail = routing_events();
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_TAIL, &rep);
    Omni__V1__TailReply empty = OMNI__V1__TAIL_REPLY__INIT;
    empty.last_seq = 7;
    rep.tail = &empty;
    serve_control(OMNI__V1__CONTROL_REQUEST__BODY_TAIL, &rep); /* the next page: nothing newer */
    cr_assert_eq(wait_exit(5000), 0);
    static const char *const types[] = {"queued", "offered", "assigned", "agent_message", "transferred", "closed",
                                        "offer_ended"};
    char *lines[7];
    for (int i = 0; i < 7; i++) {
        lines[i] = next_line(1000);
        check_json(lines[i], '{');
        jis(lines[i], "type", types[i]);
        char seq[4];
        snprintf(seq, sizeof(seq), "%d", i + 1);
        jraw(lines[i], "seq", seq);
        jis(lines[i], "channel", "email");
        jis(lines[i], "customer_id", "cu_1");
        jis(lines[i], "conversation_id", "cv_1");
    }
    jis(lines[0], "queue", "billing");
    jis(lines[0], "category", "請求");
    jraw(lines[0], "priority_ms", "600000");
    jis(lines[0], "subject", "請求金額が違います");
    jraw(lines[0], "requeued", "true");
    jis(lines[0], "reason", "restart");
    jis(lines[1], "agent_id", "agent-1");
    jraw(lines[1], "offer_id", "3");
    jis(lines[1], "strategy", "longest_idle");
    jraw(lines[1], "pool_size", "2");
    jraw(lines[1], "score", "650000");
    jraw(lines[2], "wait_ms", "42000");
    jraw(lines[2], "restored", "false");
    jis(lines[3], "text", "お待たせしました");
    jis(lines[3], "subject", "Re: 請求金額が違います");
    jis(lines[3], "outbound_id", "ob_1");
    jis(lines[3], "to", "email:taro@example.jp");
    jraw(lines[3], "auto_reply", "false");
    jis(lines[4], "from_queue", "billing");
    jis(lines[4], "to_queue", "retention");
    jis(lines[4], "to_agent", "");
    jis(lines[5], "disposition", "solved");
    jis(lines[6], "reason", "timeout");
    for (int i = 0; i < 7; i++)
        free(lines[i]);
}
