/* omnictl: the control and test client of the omni broker. Parses the command line against
 * a command table, then runs status/send/customer/keygen here and the others from ctl_*.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include <omni/adapter.h>
#include <omni/omni.h>

#include "ctl.h"
#include "json.h"

#define CTL_DEFAULT_CONTROL "tcp://127.0.0.1:5563"
#define CTL_DEFAULT_STREAM "tcp://127.0.0.1:5562"
#define CTL_DEFAULT_AGENTS "tcp://127.0.0.1:5561"
#define CTL_DEFAULT_TIMEOUT_MS 5000

/* ---- command line ------------------------------------------------------------------ */

/* Flag keys. One namespace for all commands: the same name may mean different things per
 * command (--from is an identity for send and a seq for tail), so tables map name -> key. */
enum {
    F_CONTROL = 1, F_TIMEOUT, F_JSON, F_CURVE_SERVER, F_CURVE_PUBLIC, F_CURVE_SECRET, F_HELP,
    F_VERSION,
    F_CHANNEL, F_FROM_ID, F_ALSO, F_TEXT, F_SUBJECT, F_EXTERNAL_ID, F_PROVIDER, F_ACCOUNT,
    F_DISPLAY_NAME, F_IN_REPLY_TO, F_REFERENCES,
    F_STREAM, F_FROM_SEQ, F_LAST, F_FOLLOW,
    F_AGENTS, F_ID, F_SKILLS, F_CAPACITY, F_LANGUAGES, F_TEAM, F_STATE, F_REPLY, F_CLOSE,
    F_DISPOSITION, F_COUNT, F_REJECT, F_IGNORE_OFFERS, F_EVENTS, F_HEARTBEAT_MS,
};

typedef struct {
    const char *name;   /* "--channel" */
    int key;
    const char *arg;    /* placeholder shown in help; NULL for a boolean flag */
    const char *help;
} ctl_flag_t;

/* Everything any command can receive; each command reads its own fields. */
typedef struct {
    ctl_opts_t o;
    char **pos;
    int npos;
    int help, version;
    /* send */
    const char *channel, *from, *text, *subject, *external_id, *provider, *account;
    const char *display_name, *in_reply_to;
    char **also;
    size_t n_also;
    char **refs;
    size_t n_refs;
    /* tail */
    ctl_tail_args_t tail;
    ctl_agent_args_t agent;
} ctl_args_t;

typedef struct {
    const char *name;
    const char *synopsis;       /* what follows "omnictl NAME" in the usage line */
    const char *summary;
    const ctl_flag_t *flags;    /* the command's own flags, {NULL}-terminated */
    int min_pos, max_pos;       /* positional arguments */
    int (*run)(ctl_conn_t *c, ctl_args_t *a);
} ctl_cmd_t;

static const ctl_flag_t ctl_global_flags[] = {
    { "--control", F_CONTROL, "ENDPOINT", "broker control endpoint (env OMNI_CONTROL, default " CTL_DEFAULT_CONTROL ")" },
    { "--timeout", F_TIMEOUT, "MS", "wait this long for each reply; agent: for the first login (default 5000)" },
    { "--json", F_JSON, NULL, "print JSON (one object, or one per line for streams)" },
    { "--curve-server", F_CURVE_SERVER, "KEY", "broker CURVE public key, Z85 (env OMNI_CURVE_SERVER_KEY)" },
    { "--curve-public", F_CURVE_PUBLIC, "KEY", "our CURVE public key (env OMNI_CURVE_PUBLIC_KEY; default: a throw-away pair)" },
    { "--curve-secret", F_CURVE_SECRET, "KEY", "our CURVE secret key (env OMNI_CURVE_SECRET_KEY)" },
    { "--help", F_HELP, NULL, "show help" },
    { "-h", F_HELP, NULL, NULL },
    { "--version", F_VERSION, NULL, "print the version" },
    { NULL, 0, NULL, NULL },
};

static const ctl_flag_t ctl_no_flags[] = { { NULL, 0, NULL, NULL } };

static const ctl_flag_t ctl_send_flags[] = {
    { "--channel", F_CHANNEL, "CH", "chat, email, sns or phone (required)" },
    { "--from", F_FROM_ID, "TYPE:VALUE", "sender identity (required)" },
    { "--also", F_ALSO, "TYPE:VALUE", "a further proven identity (repeatable)" },
    { "--text", F_TEXT, "T", "message body" },
    { "--subject", F_SUBJECT, "S", "subject (email)" },
    { "--external-id", F_EXTERNAL_ID, "ID", "provider message id, the idempotency key (default: generated)" },
    { "--provider", F_PROVIDER, "P", "sns provider: line, messenger or x (default: from the --from type)" },
    { "--account", F_ACCOUNT, "A", "our channel account that received it" },
    { "--display-name", F_DISPLAY_NAME, "N", "sender's name" },
    { "--in-reply-to", F_IN_REPLY_TO, "ID", "email In-Reply-To message id" },
    { "--references", F_REFERENCES, "ID", "email References message id (repeatable, oldest first)" },
    { NULL, 0, NULL, NULL },
};

static const ctl_flag_t ctl_tail_flags[] = {
    { "--from", F_FROM_SEQ, "SEQ", "print stored events from this seq on (default: the last 10)" },
    { "--last", F_LAST, "N", "without --from: how many recent events (default 10)" },
    { "--follow", F_FOLLOW, NULL, "then keep printing live events until interrupted" },
    { "--stream", F_STREAM, "ENDPOINT", "broker stream endpoint (env OMNI_STREAM, default " CTL_DEFAULT_STREAM ")" },
    { NULL, 0, NULL, NULL },
};

static const ctl_flag_t ctl_agent_flags[] = {
    { "--id", F_ID, "ID", "agent id (required)" },
    { "--agents", F_AGENTS, "ENDPOINT", "broker agents endpoint (env OMNI_AGENTS, default " CTL_DEFAULT_AGENTS ")" },
    { "--skills", F_SKILLS, "a:3,b", "skills as name[:level], level 1..5 (default 1)" },
    { "--capacity", F_CAPACITY, "chat=3,...", "slots per channel (chat, email, sns, phone; others: broker default)" },
    { "--languages", F_LANGUAGES, "ja,en", "languages (the broker adds skills lang:CODE at level 5)" },
    { "--team", F_TEAM, "NAME", "team" },
    { "--state", F_STATE, "STATE", "state at login: available (default) or away" },
    { "--reply", F_REPLY, "TEXT", "answer every assignment with this text" },
    { "--close", F_CLOSE, NULL, "then close the conversation" },
    { "--disposition", F_DISPOSITION, "TEXT", "with --close: the disposition (default resolved)" },
    { "--count", F_COUNT, "N", "exit 0 after N assignments were handled (default: run until SIGINT)" },
    { "--reject", F_REJECT, NULL, "reject every offer (for tests)" },
    { "--ignore-offers", F_IGNORE_OFFERS, NULL, "never answer offers: they time out (for tests)" },
    { "--events", F_EVENTS, NULL, "also print login, offer, revoke, event, released, status, replied, closed" },
    { "--heartbeat-ms", F_HEARTBEAT_MS, "N", "heartbeat interval (default 1000)" },
    { NULL, 0, NULL, NULL },
};

static int ctl_cmd_status(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_send(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_customer(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_tail(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_keygen(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_queues(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_agents(ctl_conn_t *c, ctl_args_t *a);
static int ctl_cmd_agent(ctl_conn_t *c, ctl_args_t *a);

static const ctl_cmd_t ctl_cmds[] = {
    { "status", "[--json]", "broker version, uptime, Redis, adapters and counters",
      ctl_no_flags, 0, 0, ctl_cmd_status },
    { "send", "--channel CH --from TYPE:VALUE [--also TYPE:VALUE]... [--text T] [--subject S]\n"
              "             [--external-id ID] [--json]",
      "inject a customer message exactly as an adapter would", ctl_send_flags, 0, 0, ctl_cmd_send },
    { "customer", "TYPE:VALUE [--json]", "the customer behind an identity, with its conversations",
      ctl_no_flags, 1, 1, ctl_cmd_customer },
    { "tail", "[--from SEQ] [--follow] [--json]", "print stream events (the last 10 by default)",
      ctl_tail_flags, 0, 0, ctl_cmd_tail },
    { "keygen", "[--json]", "generate a CURVE key pair (Z85)", ctl_no_flags, 0, 0, ctl_cmd_keygen },
    { "queues", "[--json]", "queues: waiting, oldest wait, estimated wait, SLA", ctl_no_flags, 0, 0,
      ctl_cmd_queues },
    { "agents", "[--json]", "agents: state, skills, capacity, load", ctl_no_flags, 0, 0, ctl_cmd_agents },
    { "agent", "--id ID [--agents ENDPOINT] [--skills a,b] [--capacity chat=3,email=5,phone=1,sns=5]\n"
               "              [--reply TEXT] [--close] [--count N] [--json]",
      "run an agent client: log in, accept offers, print each assignment, optionally reply and close",
      ctl_agent_flags, 0, 0, ctl_cmd_agent },
};
#define CTL_NCMDS (sizeof ctl_cmds / sizeof ctl_cmds[0])

static const ctl_cmd_t *ctl_find_cmd(const char *name)
{
    for (size_t i = 0; i < CTL_NCMDS; i++)
        if (strcmp(ctl_cmds[i].name, name) == 0)
            return &ctl_cmds[i];
    return NULL;
}

static void ctl_usage(FILE *f)
{
    fprintf(f, "usage: omnictl [--control ENDPOINT] [--timeout MS] [--json] COMMAND [ARGS]\n\n"
               "commands:\n");
    for (size_t i = 0; i < CTL_NCMDS; i++)
        fprintf(f, "  %-9s %s\n", ctl_cmds[i].name, ctl_cmds[i].summary);
    fprintf(f, "\nRun 'omnictl COMMAND --help' for its flags. Exit status: 0 ok, 1 failure "
               "(broker unreachable, error, not found, rejected), 2 usage.\n");
}

static void ctl_flags_help(FILE *f, const ctl_flag_t *flags)
{
    for (const ctl_flag_t *fl = flags; fl->name; fl++) {
        if (!fl->help)
            continue;
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "");
        fprintf(f, "  %-26s %s\n", left, fl->help);
    }
}

static void ctl_cmd_usage(FILE *f, const ctl_cmd_t *cmd)
{
    fprintf(f, "usage: omnictl %s %s\n%s.\n", cmd->name, cmd->synopsis, cmd->summary);
    if (cmd->flags[0].name) {
        fprintf(f, "\nflags:\n");
        ctl_flags_help(f, cmd->flags);
    }
    fprintf(f, "\ncommon flags:\n");
    ctl_flags_help(f, ctl_global_flags);
}

/* Report a usage error: one line saying what is wrong, then how to call. Returns 2. */
static int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl_usage_error(const ctl_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "omnictl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd)
        fprintf(stderr, "usage: omnictl %s %s\nRun 'omnictl %s --help' for details.\n",
                cmd->name, cmd->synopsis, cmd->name);
    else
        ctl_usage(stderr);
    return CTL_EXIT_USAGE;
}

int ctl_usage_fail(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ctl_usage_error(ctl_find_cmd(cmd), "%s", msg);
}

static const ctl_flag_t *ctl_lookup_flag(const ctl_flag_t *flags, const char *name, size_t len)
{
    for (const ctl_flag_t *fl = flags; fl->name; fl++)
        if (strlen(fl->name) == len && strncmp(fl->name, name, len) == 0)
            return fl;
    return NULL;
}

/* Non-negative decimal without sign or junk, at most max. */
static int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int ctl_set_agent_flag(const ctl_cmd_t *cmd, ctl_args_t *a, const ctl_flag_t *fl, char *val)
{
    ctl_agent_args_t *ag = &a->agent;
    uint64_t n;
    switch (fl->key) {
    case F_AGENTS: a->o.agents = val; break;
    case F_ID: ag->id = val; break;
    case F_SKILLS: ag->skills = val; break;
    case F_CAPACITY: ag->capacity = val; break;
    case F_LANGUAGES: ag->languages = val; break;
    case F_TEAM: ag->team = val; break;
    case F_STATE: ag->state = val; break;
    case F_REPLY: ag->reply = val; break;
    case F_CLOSE: ag->close = 1; break;
    case F_DISPOSITION: ag->disposition = val; break;
    case F_REJECT: ag->reject = 1; break;
    case F_IGNORE_OFFERS: ag->ignore_offers = 1; break;
    case F_EVENTS: ag->events = 1; break;
    case F_COUNT:
        if (ctl_parse_u64(val, 1000000000, &ag->count) != 0 || ag->count == 0)
            return ctl_usage_error(cmd, "--count needs a number > 0, not '%s'", val);
        break;
    case F_HEARTBEAT_MS:
        if (ctl_parse_u64(val, 600000, &n) != 0 || n < 10)
            return ctl_usage_error(cmd, "--heartbeat-ms needs a number from 10 to 600000, not '%s'", val);
        ag->heartbeat_ms = (uint32_t)n;
        break;
    }
    return CTL_EXIT_OK;
}

static int ctl_set_flag(const ctl_cmd_t *cmd, ctl_args_t *a, const ctl_flag_t *fl, char *val)
{
    uint64_t n;
    switch (fl->key) {
    case F_CONTROL: a->o.control = val; break;
    case F_STREAM: a->o.stream = val; break;
    case F_TIMEOUT:
        if (ctl_parse_u64(val, 24 * 3600 * 1000, &n) != 0 || n == 0)
            return ctl_usage_error(cmd, "--timeout needs a number of milliseconds > 0, not '%s'", val);
        a->o.timeout_ms = (int)n;
        break;
    case F_JSON: a->o.json = 1; break;
    case F_CURVE_SERVER: a->o.curve_server = val; break;
    case F_CURVE_PUBLIC: a->o.curve_public = val; break;
    case F_CURVE_SECRET: a->o.curve_secret = val; break;
    case F_HELP: a->help = 1; break;
    case F_VERSION: a->version = 1; break;
    case F_CHANNEL: a->channel = val; break;
    case F_FROM_ID: a->from = val; break;
    case F_ALSO: a->also[a->n_also++] = val; break;
    case F_TEXT: a->text = val; break;
    case F_SUBJECT: a->subject = val; break;
    case F_EXTERNAL_ID: a->external_id = val; break;
    case F_PROVIDER: a->provider = val; break;
    case F_ACCOUNT: a->account = val; break;
    case F_DISPLAY_NAME: a->display_name = val; break;
    case F_IN_REPLY_TO: a->in_reply_to = val; break;
    case F_REFERENCES: a->refs[a->n_refs++] = val; break;
    case F_FROM_SEQ:
        if (ctl_parse_u64(val, UINT64_MAX, &a->tail.from) != 0)
            return ctl_usage_error(cmd, "--from needs a stream seq (a number), not '%s'", val);
        a->tail.have_from = 1;
        break;
    case F_LAST:
        if (ctl_parse_u64(val, 100000, &n) != 0 || n == 0)
            return ctl_usage_error(cmd, "--last needs a number from 1 to 100000, not '%s'", val);
        a->tail.last = (uint32_t)n;
        break;
    case F_FOLLOW: a->tail.follow = 1; break;
    default: return ctl_set_agent_flag(cmd, a, fl, val);
    }
    return CTL_EXIT_OK;
}

/* Parse argv into *a and *cmd. Global flags go anywhere; a command's flags after it.
 * Returns 0, or an exit code (usage error printed). */
static int ctl_parse_args(int argc, char **argv, ctl_args_t *a, const ctl_cmd_t **cmdp)
{
    const ctl_cmd_t *cmd = NULL;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
            const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
            const ctl_flag_t *fl = ctl_lookup_flag(ctl_global_flags, arg, len);
            if (!fl && cmd)
                fl = ctl_lookup_flag(cmd->flags, arg, len);
            if (!fl)
                return ctl_usage_error(cmd, "unknown option '%.*s'%s%s", (int)len, arg,
                                       cmd ? " for " : "", cmd ? cmd->name : "");
            char *val = NULL;
            if (fl->arg) {
                if (eq)
                    val = (char *)eq + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return ctl_usage_error(cmd, "option '%s' needs a value (%s)", fl->name, fl->arg);
            } else if (eq)
                return ctl_usage_error(cmd, "option '%.*s' takes no value", (int)len, arg);
            int rc = ctl_set_flag(cmd, a, fl, val);
            if (rc != CTL_EXIT_OK)
                return rc;
            continue;
        }
        if (!cmd) {
            if (strcmp(arg, "help") == 0) {
                /* "omnictl help [CMD]" is "omnictl [CMD] --help". */
                a->help = 1;
                if (i + 1 < argc && (cmd = ctl_find_cmd(argv[i + 1])) != NULL)
                    i++;
                else if (i + 1 < argc)
                    return ctl_usage_error(NULL, "unknown command '%s'", argv[i + 1]);
                continue;
            }
            cmd = ctl_find_cmd(arg);
            if (!cmd)
                return ctl_usage_error(NULL, "unknown command '%s'", arg);
            continue;
        }
        a->pos[a->npos++] = arg;
    }
    *cmdp = cmd;
    return CTL_EXIT_OK;
}

/* Fill in what flags left unset from the environment and defaults, and check it. */
static int ctl_finish_opts(const ctl_cmd_t *cmd, ctl_args_t *a)
{
    ctl_opts_t *o = &a->o;
    struct { const char **field; const char *env; const char *def; } envs[] = {
        { &o->control, "OMNI_CONTROL", CTL_DEFAULT_CONTROL },
        { &o->stream, "OMNI_STREAM", CTL_DEFAULT_STREAM },
        { &o->agents, "OMNI_AGENTS", CTL_DEFAULT_AGENTS },
        { &o->curve_server, "OMNI_CURVE_SERVER_KEY", NULL },
        { &o->curve_public, "OMNI_CURVE_PUBLIC_KEY", NULL },
        { &o->curve_secret, "OMNI_CURVE_SECRET_KEY", NULL },
    };
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        if (*envs[i].field && **envs[i].field)
            continue;
        const char *v = getenv(envs[i].env);
        *envs[i].field = v && *v ? v : envs[i].def;
    }
    if (!o->timeout_ms)
        o->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    if (o->curve_server) {
        const char *names[] = { "server", "public", "secret" };
        const char *keys[] = { o->curve_server, o->curve_public, o->curve_secret };
        for (int i = 0; i < 3; i++)
            if (keys[i] && !ctl_conn_key_valid(keys[i]))
                return ctl_usage_error(cmd, "the CURVE %s key must be 40 characters of Z85", names[i]);
        if (!o->curve_public != !o->curve_secret)
            return ctl_usage_error(cmd, "give both --curve-public and --curve-secret, or neither");
    }
    return CTL_EXIT_OK;
}

/* ---- shared helpers ------------------------------------------------------------------ */

void ctl_emit(json_t *j)
{
    const char *s = json_cstr(j);
    if (!s) {
        fprintf(stderr, "omnictl: out of memory\n");
        exit(CTL_EXIT_FAIL);
    }
    fputs(s, stdout);
    putchar('\n');
    fflush(stdout);
}

const char *ctl_channel(Omni__V1__Channel ch)
{
    return ch == OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED ? "" : omni_channel_name(ch);
}

const char *ctl_fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
    return buf;
}

/* Print {"error":..., "detail":...} (JSON) or "omnictl: error: detail". */
static void ctl_print_error(const ctl_opts_t *o, const char *error, const char *detail)
{
    if (o->json) {
        json_t j;
        json_init(&j);
        json_obj_begin(&j);
        json_kv_str(&j, "error", error);
        if (detail)
            json_kv_str(&j, "detail", detail);
        json_obj_end(&j);
        ctl_emit(&j);
        json_free(&j);
    } else if (detail && *detail)
        fprintf(stderr, "omnictl: %s: %s\n", error, detail);
    else
        fprintf(stderr, "omnictl: %s\n", error);
}

int ctl_request(ctl_conn_t *c, Omni__V1__ControlRequest *req, Omni__V1__ControlReply **reply)
{
    const ctl_opts_t *o = c->opts;
    int rc = ctl_conn_call(c, req, reply);
    switch (rc) {
    case CTL_OK:
        if ((*reply)->error[0]) {
            ctl_print_error(o, (*reply)->error, (*reply)->detail);
            omni__v1__control_reply__free_unpacked(*reply, NULL);
            *reply = NULL;
            return CTL_EXIT_FAIL;
        }
        return CTL_EXIT_OK;
    case CTL_EINTR:
        return CTL_EXIT_STOPPED;
    case CTL_ETIMEOUT:
        fprintf(stderr, "omnictl: broker unreachable at %s (no reply in %d ms)\n", o->control,
                o->timeout_ms);
        if (o->json)
            ctl_print_error(o, "unreachable", NULL);
        return CTL_EXIT_FAIL;
    case CTL_EPROTO:
        fprintf(stderr, "omnictl: %s answered with something that is not a ControlReply\n",
                o->control);
        if (o->json)
            ctl_print_error(o, "bad_reply", NULL);
        return CTL_EXIT_FAIL;
    case CTL_EENDPOINT:
        fprintf(stderr, "omnictl: %s\n", c->errbuf);
        return CTL_EXIT_USAGE;
    default:
        fprintf(stderr, "omnictl: %s\n", c->errbuf);
        if (o->json)
            ctl_print_error(o, "io", c->errbuf);
        return CTL_EXIT_FAIL;
    }
}

/* A broker that answers with another body is broken. */
int ctl_expect(Omni__V1__ControlReply *rep, int body_case, const char *what)
{
    if ((int)rep->body_case == body_case)
        return CTL_EXIT_OK;
    fprintf(stderr, "omnictl: the broker answered %s without a %s body\n", what, what);
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_FAIL;
}

void ctl_table_row(ctl_table_t *t, ...)
{
    char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *cells);
    if (!cells)
        return;
    t->cells = cells;
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        char *cell = strdup(s ? s : "");
        /* A newline or tab from the broker must not break the table's layout. */
        for (char *p = cell; p && *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        cells[t->nrows * t->ncols + i] = cell;
    }
    va_end(ap);
    t->nrows++;
}

void ctl_table_print(ctl_table_t *t, const char *indent)
{
    size_t width[16] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols && i < 16; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t w = s ? strlen(s) : 0;
            if (w > width[i])
                width[i] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        fputs(indent, stdout);
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 < t->ncols)
                printf("%-*s  ", (int)width[i < 16 ? i : 15], s ? s : "");
            else
                printf("%s\n", s ? s : "");
        }
    }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

const char *ctl_enum_word(const ProtobufCEnumDescriptor *d, int value, const char *prefix,
                          char *buf, size_t len)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v) {
        snprintf(buf, len, "unknown");
        return buf;
    }
    const char *name = v->name;
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) == 0)
        name += plen;
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    buf[i] = '\0';
    return buf;
}

/* ---- commands ------------------------------------------------------------------------ */

static void ctl_status_human(const Omni__V1__StatusReply *st)
{
    uint64_t up = st->uptime_s;
    printf("broker     omni %s, up %llud %02lluh %02llum %02llus\n", st->version,
           (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
           (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
    printf("redis      %s\n", st->redis);
    printf("last seq   %llu\n", (unsigned long long)st->last_seq);
    if (*st->stream_endpoint)
        printf("stream     %s\n", st->stream_endpoint);

    ctl_table_t t = { .ncols = 5 };
    int64_t now = omni_now_ms();
    ctl_table_row(&t, "ADAPTER", "CHANNEL", "ACCOUNTS", "LAST SEEN", "OUTBOX");
    for (size_t i = 0; i < st->n_adapters; i++) {
        const Omni__V1__AdapterInfo *ad = st->adapters[i];
        char accounts[256] = "-", seen[32] = "-", outbox[16];
        size_t off = 0;
        for (size_t k = 0; k < ad->n_accounts && off < sizeof accounts; k++)
            off += (size_t)snprintf(accounts + off, sizeof accounts - off, "%s%s", k ? "," : "",
                                    ad->accounts[k]);
        if (ad->last_seen_ms > 0) {
            int64_t ago = now - ad->last_seen_ms;
            snprintf(seen, sizeof seen, "%.1fs ago", (double)(ago > 0 ? ago : 0) / 1000.0);
        }
        snprintf(outbox, sizeof outbox, "%u", ad->outbox);
        ctl_table_row(&t, ad->adapter_id, ctl_channel(ad->channel), accounts, seen, outbox);
    }
    printf("\n");
    if (st->n_adapters)
        ctl_table_print(&t, "");
    else {
        ctl_table_print(&t, "");
        printf("(no adapters connected)\n");
    }

    if (st->n_counters) {
        t.ncols = 2;
        ctl_table_row(&t, "COUNTER", "VALUE");
        for (size_t i = 0; i < st->n_counters; i++) {
            char v[24];
            snprintf(v, sizeof v, "%llu", (unsigned long long)st->counters[i]->value);
            ctl_table_row(&t, st->counters[i]->name, v);
        }
        printf("\n");
        ctl_table_print(&t, "");
    }
}

static int ctl_cmd_status(ctl_conn_t *c, ctl_args_t *a)
{
    Omni__V1__StatusRequest body = OMNI__V1__STATUS_REQUEST__INIT;
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__ControlReply *rep;
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_STATUS;
    req.status = &body;
    int rc = ctl_request(c, &req, &rep);
    if (rc == CTL_EXIT_OK)
        rc = ctl_expect(rep, OMNI__V1__CONTROL_REPLY__BODY_STATUS, "status");
    if (rc != CTL_EXIT_OK)
        return rc;
    const Omni__V1__StatusReply *st = rep->status;
    if (a->o.json) {
        json_t j;
        json_init(&j);
        json_obj_begin(&j);
        json_kv_str(&j, "version", st->version);
        json_kv_u64(&j, "uptime_s", st->uptime_s);
        json_kv_str(&j, "redis", st->redis);
        json_kv_u64(&j, "last_seq", st->last_seq);
        if (*st->stream_endpoint)
            json_kv_str(&j, "stream_endpoint", st->stream_endpoint);
        json_key(&j, "adapters");
        json_arr_begin(&j);
        for (size_t i = 0; i < st->n_adapters; i++) {
            const Omni__V1__AdapterInfo *ad = st->adapters[i];
            json_obj_begin(&j);
            json_kv_str(&j, "adapter_id", ad->adapter_id);
            json_kv_str(&j, "channel", ctl_channel(ad->channel));
            json_kv_strv(&j, "accounts", ad->accounts, ad->n_accounts);
            json_kv_i64(&j, "last_seen_ms", ad->last_seen_ms);
            json_kv_u64(&j, "outbox", ad->outbox);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "counters");
        json_obj_begin(&j);
        for (size_t i = 0; i < st->n_counters; i++)
            json_kv_u64(&j, st->counters[i]->name, st->counters[i]->value);
        json_obj_end(&j);
        json_obj_end(&j);
        ctl_emit(&j);
        json_free(&j);
    } else
        ctl_status_human(st);
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_OK;
}

/* "omnictl-<ms>-<16 hex>": unique enough that two runs never collide as duplicates. */
static void ctl_gen_message_id(char *buf, size_t len)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)omni_mono_us() * 6364136223846793005ULL ^ (uint64_t)getpid();
    snprintf(buf, len, "omnictl-%lld-%016llx", (long long)omni_now_ms(), (unsigned long long)r);
}

static int ctl_cmd_send(ctl_conn_t *c, ctl_args_t *a)
{
    const ctl_cmd_t *cmd = ctl_find_cmd("send");
    if (!a->channel)
        return ctl_usage_error(cmd, "send needs --channel (chat, email, sns or phone)");
    Omni__V1__Channel ch = omni_channel_parse(a->channel);
    if (ch == OMNI__V1__CHANNEL__CHANNEL_UNSPECIFIED)
        return ctl_usage_error(cmd, "unknown channel '%s' (valid: chat, email, sns, phone)", a->channel);
    if (!a->from || !*a->from)
        return ctl_usage_error(cmd, "send needs --from TYPE:VALUE");
    const char *provider = a->provider;
    if (provider) {
        if (strcmp(provider, "line") && strcmp(provider, "messenger") && strcmp(provider, "x"))
            return ctl_usage_error(cmd, "unknown provider '%s' (valid: line, messenger, x)", provider);
        if (ch != OMNI__V1__CHANNEL__CHANNEL_SNS)
            return ctl_usage_error(cmd, "--provider applies to --channel sns only");
    } else if (ch == OMNI__V1__CHANNEL__CHANNEL_SNS) {
        /* An sns sender's identity type is its provider (line:U123 came in over LINE). */
        static const char *const known[] = { "line", "messenger", "x" };
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(known[i]);
            if (strncmp(a->from, known[i], n) == 0 && a->from[n] == ':')
                provider = known[i];
        }
    }

    char gen_id[64];
    if (!a->external_id)
        ctl_gen_message_id(gen_id, sizeof gen_id);
    Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
    Omni__V1__ThreadRefs thread = OMNI__V1__THREAD_REFS__INIT;
    m.adapter_id = "omnictl";
    m.channel = ch;
    if (a->account)
        m.channel_account = (char *)a->account;
    if (provider)
        m.provider = (char *)provider;
    m.provider_message_id = a->external_id ? (char *)a->external_id : gen_id;
    m.from = (char *)a->from;
    m.also = a->also;
    m.n_also = a->n_also;
    if (a->display_name)
        m.display_name = (char *)a->display_name;
    if (a->text)
        m.text = (char *)a->text;
    if (a->subject)
        m.subject = (char *)a->subject;
    if (a->in_reply_to || a->n_refs) {
        if (a->in_reply_to)
            thread.in_reply_to = (char *)a->in_reply_to;
        thread.references = a->refs;
        thread.n_references = a->n_refs;
        m.thread = &thread;
    }
    m.received_ms = omni_now_ms();

    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__ControlReply *rep;
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_SEND;
    req.send = &m;
    /* Like the SDK: a retryable refusal (storage reconnecting) is retried, with backoff,
     * within the --timeout budget; the same provider id makes a retry safe. */
    int64_t deadline = omni_mono_us() + (int64_t)a->o.timeout_ms * 1000;
    int rc, backoff_ms = 50;
    for (;;) {
        rc = ctl_request(c, &req, &rep);
        if (rc == CTL_EXIT_OK)
            rc = ctl_expect(rep, OMNI__V1__CONTROL_REPLY__BODY_ACK, "ack");
        if (rc != CTL_EXIT_OK)
            return rc;
        if (rep->ack->accepted || !rep->ack->retryable ||
            omni_mono_us() + backoff_ms * 1000LL >= deadline)
            break;
        omni__v1__control_reply__free_unpacked(rep, NULL);
        struct timespec ts = {0, backoff_ms * 1000000L};
        nanosleep(&ts, NULL);
        backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
    }

    const Omni__V1__Ack *ack = rep->ack;
    char reason[48];
    if (!ack->accepted)
        ctl_enum_word(&omni__v1__reason__descriptor, ack->reason, "REASON_", reason, sizeof reason);
    if (a->o.json) {
        json_t j;
        json_init(&j);
        json_obj_begin(&j);
        json_kv_bool(&j, "accepted", ack->accepted);
        if (ack->accepted) {
            json_kv_bool(&j, "duplicate", ack->duplicate);
            json_kv_str(&j, "customer_id", ack->customer_id);
            json_kv_str(&j, "conversation_id", ack->conversation_id);
            json_kv_u64(&j, "seq", ack->seq);
        } else {
            json_kv_str(&j, "reason", reason);
            json_kv_str(&j, "detail", ack->detail);
            json_kv_bool(&j, "retryable", ack->retryable);
        }
        json_obj_end(&j);
        ctl_emit(&j);
        json_free(&j);
    } else if (ack->accepted)
        printf("%s  customer %s  conversation %s  seq %llu  (%s)\n",
               ack->duplicate ? "duplicate" : "accepted", ack->customer_id, ack->conversation_id,
               (unsigned long long)ack->seq, m.provider_message_id);
    else
        fprintf(stderr, "omnictl: rejected: %s%s%s%s\n", reason, *ack->detail ? ": " : "",
                ack->detail, ack->retryable ? " (retryable)" : "");
    rc = ack->accepted ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

static int ctl_cmd_customer(ctl_conn_t *c, ctl_args_t *a)
{
    Omni__V1__CustomerRequest body = OMNI__V1__CUSTOMER_REQUEST__INIT;
    Omni__V1__ControlRequest req = OMNI__V1__CONTROL_REQUEST__INIT;
    Omni__V1__ControlReply *rep;
    body.identity = a->pos[0];
    req.body_case = OMNI__V1__CONTROL_REQUEST__BODY_CUSTOMER;
    req.customer = &body;
    int rc = ctl_request(c, &req, &rep);
    if (rc == CTL_EXIT_OK)
        rc = ctl_expect(rep, OMNI__V1__CONTROL_REPLY__BODY_CUSTOMER, "customer");
    if (rc != CTL_EXIT_OK)
        return rc;
    const Omni__V1__CustomerReply *cu = rep->customer;
    if (!cu->found) {
        ctl_print_error(&a->o, "not_found", a->o.json ? NULL : "no customer has this identity");
        omni__v1__control_reply__free_unpacked(rep, NULL);
        return CTL_EXIT_FAIL;
    }
    if (a->o.json) {
        json_t j;
        json_init(&j);
        json_obj_begin(&j);
        json_kv_str(&j, "customer_id", cu->customer_id);
        json_kv_strv(&j, "identities", cu->identities, cu->n_identities);
        json_key(&j, "conversations");
        json_arr_begin(&j);
        for (size_t i = 0; i < cu->n_conversations; i++) {
            const Omni__V1__ConversationInfo *cv = cu->conversations[i];
            json_obj_begin(&j);
            json_kv_str(&j, "conversation_id", cv->conversation_id);
            json_kv_str(&j, "channel", ctl_channel(cv->channel));
            json_kv_str(&j, "state", cv->state);
            if (cv->opened_ms)
                json_kv_i64(&j, "opened_ms", cv->opened_ms);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        ctl_emit(&j);
        json_free(&j);
    } else {
        printf("customer     %s\n", cu->customer_id);
        for (size_t i = 0; i < cu->n_identities; i++)
            printf("%s%s\n", i ? "             " : "identities   ", cu->identities[i]);
        ctl_table_t t = { .ncols = 4 };
        ctl_table_row(&t, "CONVERSATION", "CHANNEL", "STATE", "OPENED");
        for (size_t i = 0; i < cu->n_conversations; i++) {
            const Omni__V1__ConversationInfo *cv = cu->conversations[i];
            char when[40];
            ctl_table_row(&t, cv->conversation_id, ctl_channel(cv->channel), cv->state,
                          ctl_fmt_time(cv->opened_ms, when, sizeof when));
        }
        printf("\n");
        ctl_table_print(&t, "");
        if (!cu->n_conversations)
            printf("(no conversations)\n");
    }
    omni__v1__control_reply__free_unpacked(rep, NULL);
    return CTL_EXIT_OK;
}

static int ctl_cmd_tail(ctl_conn_t *c, ctl_args_t *a)
{
    if (!a->tail.last)
        a->tail.last = 10;
    return ctl_tail_run(c, &a->tail);
}

static int ctl_cmd_keygen(ctl_conn_t *c, ctl_args_t *a)
{
    (void)c;
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "omnictl: keygen: %s (libzmq built without CURVE?)\n",
                zmq_strerror(zmq_errno()));
        return CTL_EXIT_FAIL;
    }
    if (a->o.json) {
        json_t j;
        json_init(&j);
        json_obj_begin(&j);
        json_kv_str(&j, "public", pub);
        json_kv_str(&j, "secret", sec);
        json_obj_end(&j);
        ctl_emit(&j);
        json_free(&j);
    } else
        printf("public  %s\nsecret  %s\n", pub, sec);
    /* The secret should not linger in our memory longer than needed. */
    explicit_bzero(sec, sizeof sec);
    return CTL_EXIT_OK;
}

static int ctl_cmd_queues(ctl_conn_t *c, ctl_args_t *a)
{
    (void)a;
    return ctl_queues_run(c);
}

static int ctl_cmd_agents(ctl_conn_t *c, ctl_args_t *a)
{
    (void)a;
    return ctl_agents_run(c);
}

static int ctl_cmd_agent(ctl_conn_t *c, ctl_args_t *a)
{
    return ctl_agent_run(c, &a->agent);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    ctl_args_t a;
    memset(&a, 0, sizeof a);
    /* Positionals and repeatable flags point into argv; argc bounds how many there can be. */
    a.pos = calloc((size_t)argc, sizeof *a.pos);
    a.also = calloc((size_t)argc, sizeof *a.also);
    a.refs = calloc((size_t)argc, sizeof *a.refs);
    if (!a.pos || !a.also || !a.refs) {
        fprintf(stderr, "omnictl: out of memory\n");
        return CTL_EXIT_FAIL;
    }

    const ctl_cmd_t *cmd = NULL;
    int rc = ctl_parse_args(argc, argv, &a, &cmd);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (a.version) {
        printf("omnictl %s\n", OMNI_VERSION);
        goto out;
    }
    if (a.help) {
        if (cmd)
            ctl_cmd_usage(stdout, cmd);
        else
            ctl_usage(stdout);
        goto out;
    }
    if (!cmd) {
        rc = ctl_usage_error(NULL, "no command given");
        goto out;
    }
    if (a.npos < cmd->min_pos || a.npos > cmd->max_pos) {
        if (a.npos > cmd->max_pos)
            rc = ctl_usage_error(cmd, "unexpected argument '%s'", a.pos[cmd->max_pos]);
        else
            rc = ctl_usage_error(cmd, "%s needs %d argument%s", cmd->name, cmd->min_pos,
                                 cmd->min_pos == 1 ? "" : "s");
        goto out;
    }
    rc = ctl_finish_opts(cmd, &a);
    if (rc != CTL_EXIT_OK)
        goto out;

    ctl_conn_t conn;
    ctl_conn_init(&conn, &a.o);
    rc = cmd->run(&conn, &a);
    ctl_conn_close(&conn);
    if (rc == CTL_EXIT_STOPPED)
        rc = CTL_EXIT_FAIL;
out:
    free(a.pos);
    free(a.also);
    free(a.refs);
    return rc;
}
