/* Broker logging: formats one event into a stack buffer and writes it to stderr in one call,
 * so lines from the broker and from a supervisor sharing the stream never interleave mid-line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <omni/omni.h>

#include "log.h"

static int log_threshold = LOG_LEVEL_INFO;
static int log_json = 0;

static const char *const log_names_lower[] = {"debug", "info", "warn", "error"};
static const char *const log_names_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* U+2026, the truncation mark, and U+FFFD, which stands in for bytes that are not UTF-8:
 * messages often quote customer input, and a JSON collector rejects the whole line otherwise. */
#define LOG_ELLIPSIS "\xe2\x80\xa6"
#define LOG_REPLACEMENT "\xef\xbf\xbd"

int log_init(const char *level, const char *format)
{
    int lvl = log_threshold, json = log_json;

    if (level) {
        lvl = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(level, log_names_lower[i]) == 0) lvl = i;
        if (lvl < 0) return OMNI_EINVAL;
    }
    if (format) {
        if (strcmp(format, "text") == 0) json = 0;
        else if (strcmp(format, "json") == 0) json = 1;
        else return OMNI_EINVAL;
    }
    log_threshold = lvl;
    log_json = json;
    return 0;
}

int log_enabled(int level)
{
    return level >= log_threshold;
}

/* Length of the well-formed UTF-8 sequence at s (at most len bytes), or 0 if there is none. */
static size_t log_utf8_seq(const unsigned char *s, size_t len)
{
    size_t n;

    if (s[0] >= 0xC2 && s[0] <= 0xDF) n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) n = 4;
    else return 0;
    if (n > len || !omni_utf8_valid((const char *)s, n)) return 0;
    return n;
}

/* Append msg to out, escaped for the current format. In text mode control characters are
 * shown as \xNN so that a message can never forge a second log line. out must hold 6 bytes
 * per input byte (the worst case, \u00XX) plus the NUL. */
static size_t log_escape(char *out, const char *msg, size_t len)
{
    const unsigned char *s = (const unsigned char *)msg;
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t n = log_utf8_seq(s + i, len - i);
            if (n == 0) {
                memcpy(out + o, LOG_REPLACEMENT, 3);
                o += 3;
                i++;
            } else {
                memcpy(out + o, s + i, n);
                o += n;
                i += n;
            }
            continue;
        }
        if (log_json && (c == '"' || c == '\\')) {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            if (!log_json && c == '\t')
                out[o++] = '\t';
            else
                o += (size_t)sprintf(out + o, log_json ? "\\u%04x" : "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o] = '\0';
    return o;
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[LOG_MAX_MSG + 1];
    char line[LOG_MAX_MSG * 6 + 128];
    char ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    size_t len, o, tslen;
    int n, ms;

    if (level < LOG_LEVEL_DEBUG) level = LOG_LEVEL_DEBUG;
    if (level > LOG_LEVEL_ERROR) level = LOG_LEVEL_ERROR;
    if (level < log_threshold) return;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        len = (size_t)snprintf(msg, sizeof(msg), "(bad log format: %s)", fmt);
        if (len >= sizeof(msg)) len = sizeof(msg) - 1;
    } else if ((size_t)n < sizeof(msg)) {
        len = (size_t)n;
    } else {
        /* Cut at a character boundary so the ellipsis does not follow half a character. */
        len = sizeof(msg) - 1 - 3;
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80) len--;
        memcpy(msg + len, LOG_ELLIPSIS, 3);
        len += 3;
        msg[len] = '\0';
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    ms = (int)(now.tv_nsec / 1000000);
    tslen = strftime(ts, sizeof(ts) - 6, "%Y-%m-%dT%H:%M:%S", &tm);
    ts[tslen++] = '.';
    ts[tslen++] = (char)('0' + ms / 100);
    ts[tslen++] = (char)('0' + ms / 10 % 10);
    ts[tslen++] = (char)('0' + ms % 10);
    ts[tslen++] = 'Z';
    ts[tslen] = '\0';

    if (log_json)
        o = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                             log_names_lower[level]);
    else
        o = (size_t)snprintf(line, sizeof(line), "%s %s ", ts, log_names_upper[level]);
    o += log_escape(line + o, msg, len);
    if (log_json) {
        memcpy(line + o, "\"}", 2);
        o += 2;
    }
    line[o++] = '\n';
    fwrite(line, 1, o, stderr);
}
