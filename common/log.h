/*
 * log.h - structured JSON logs, one object per line, for every binary.
 *
 * Every line has timestamp, level, service, trace_id, span_id, message, then
 * the caller's fields.  Writing is one write(2) of the whole line so that
 * lines from several workers sharing a file or pipe never interleave
 * (O_APPEND or a pipe below PIPE_BUF; longer lines are rare and truncated).
 *
 *     struct log_field f[] = {LOG_STR("event_id", id), LOG_INT("seq", seq)};
 *     log_emit(lg, LOG_WARN, NULL, "delivery failed", f, LOG_COUNT(f));
 *
 * The worker passes its logger around (struct app); a program that logs
 * from many modules (the publisher) uses the one of log_process().
 * Strings may hold raw client bytes: what is not valid UTF-8 is written as
 * U+FFFD, so a line is always valid JSON.  A credential or event data is
 * never passed here.
 */
#ifndef ORDERS_LOG_H
#define ORDERS_LOG_H

#include <stdbool.h>

struct trace_context;

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_field_kind { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_DOUBLE };

struct log_field {
    const char *key;
    enum log_field_kind kind;
    const char *str;
    long long num;
    double dbl;
};

#define LOG_STR(k, v) ((struct log_field){.key = (k), .kind = LOG_FIELD_STR, .str = (v)})
#define LOG_INT(k, v) ((struct log_field){.key = (k), .kind = LOG_FIELD_INT, .num = (v)})
#define LOG_DBL(k, v) ((struct log_field){.key = (k), .kind = LOG_FIELD_DOUBLE, .dbl = (v)})
#define LOG_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define LOG_SERVICE_DEFAULT "orders"

struct logger {
    enum log_level level;
    int fd;              /* where lines go; 2 for stderr */
    const char *service; /* the "service" field; NULL: LOG_SERVICE_DEFAULT */
};

/* The process's own logger: info, stderr, LOG_SERVICE_DEFAULT until the
 * program changes its fields (once, at start, before any thread). */
struct logger *log_process(void);

/* Parses "debug", "info", "warn"/"warning", "error" (any case). */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* tc may be NULL (process-level lines). */
void log_emit(const struct logger *lg, enum log_level level,
              const struct trace_context *tc, const char *message,
              const struct log_field *fields, int field_count);

/* Renders the line into buf (for tests); returns its length, or -1 when it
 * did not fit.  service NULL: LOG_SERVICE_DEFAULT. */
int log_format(char *buf, int buflen, const char *service, enum log_level level,
               const struct trace_context *tc, const char *message,
               const struct log_field *fields, int field_count,
               long long now_ms);

#endif
