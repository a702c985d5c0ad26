/* Broker logging: one line per event on stderr, as text for people or JSON for collectors.
 * Single-threaded by design (the broker is one event loop); no allocation per call. */
#ifndef OMNI_BROKER_LOG_H
#define OMNI_BROKER_LOG_H

/* Levels in increasing severity. Not named LOG_DEBUG etc. because <syslog.h> owns those names
 * (as integers); the LOG_* macros below would clash with it anyway, so never include both. */
enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
};

/* Longest message body; longer ones are cut at a character boundary and end in "…". */
#define LOG_MAX_MSG 4096

/* Select the threshold ("debug", "info", "warn", "error") and the format ("text", "json").
 * NULL keeps the current setting (info/text before the first call). Returns 0 or OMNI_EINVAL,
 * in which case nothing changes. */
int log_init(const char *level, const char *format);

/* 1 if a message at this level would be written: guards costly argument preparation. */
int log_enabled(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
