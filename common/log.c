#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "trace_context.h"
#include "utf8.h"

#define LOG_LINE_MAX 4096

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? log_level_names[level] : "info";
}

bool log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

/* A bounded writer: once the line would overflow, everything after is
 * dropped and the line is reported as not fitting. */
struct log_buf {
    char *p;
    int len, cap;
    bool overflow;
};

static void log_put(struct log_buf *b, const char *s, int n)
{
    if (b->overflow || b->len + n >= b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
}

static void log_puts(struct log_buf *b, const char *s) { log_put(b, s, (int)strlen(s)); }

/* JSON string escaping (RFC 8259, section 7).  Logged strings can hold raw
 * client bytes (the path), so what is not valid UTF-8 becomes U+FFFD: a
 * log line is always valid JSON. */
static void log_put_json_string(struct log_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    log_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x80) {
            int n = utf8_sequence_len(c);
            if (n == 0) {
                log_put(b, "\\ufffd", 6);
            } else {
                log_put(b, (const char *)c, n);
                c += n - 1;
            }
            continue;
        }
        char esc[7];
        switch (*c) {
        case '"': log_put(b, "\\\"", 2); break;
        case '\\': log_put(b, "\\\\", 2); break;
        case '\n': log_put(b, "\\n", 2); break;
        case '\r': log_put(b, "\\r", 2); break;
        case '\t': log_put(b, "\\t", 2); break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*c >> 4];
                esc[5] = hex[*c & 15];
                log_put(b, esc, 6);
            } else {
                log_put(b, (const char *)c, 1);
            }
        }
    }
    log_put(b, "\"", 1);
}

/* Decimal digits of v, most significant first, into the end of buf;
 * returns where they start. */
static char *log_digits(char *end, unsigned long long v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* Integers and the millisecond durations are formatted by hand: every
 * access line has both, and snprintf was the largest part of formatting a
 * line. */
static void log_put_int(struct log_buf *b, long long v)
{
    char num[24];
    char *end = num + sizeof num;
    /* via unsigned, so that LLONG_MIN negates without overflow */
    unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *p = log_digits(end, mag);
    if (v < 0)
        *--p = '-';
    log_put(b, p, (int)(end - p));
}

/* "%.3f" for the usual magnitudes: the value is rounded to thousandths
 * (half away from zero; printf rounds the exact binary value, so the last
 * digit can differ in a rare tie, which a log does not care about).
 * Anything else goes through snprintf. */
static void log_put_double(struct log_buf *b, double v)
{
    char num[64];
    if (!(v > -1e15 && v < 1e15)) { /* also NaN */
        int n = snprintf(num, sizeof num, "%.3f", v);
        if (n > 0)
            log_put(b, num, n < (int)sizeof num ? n : (int)sizeof num - 1);
        return;
    }
    double scaled = (v < 0 ? -v : v) * 1000.0 + 0.5;
    unsigned long long t = (unsigned long long)scaled;
    char *end = num + sizeof num;
    char *p = end;
    for (int i = 0; i < 3; i++) {
        *--p = (char)('0' + t % 10);
        t /= 10;
    }
    *--p = '.';
    p = log_digits(p, t);
    if (v < 0)
        *--p = '-';
    log_put(b, p, (int)(end - p));
}

static void log_put_field(struct log_buf *b, const struct log_field *f)
{
    log_put(b, ",", 1);
    log_put_json_string(b, f->key);
    log_put(b, ":", 1);
    switch (f->kind) {
    case LOG_FIELD_STR:
        if (f->str == NULL)
            log_puts(b, "null");
        else
            log_put_json_string(b, f->str);
        break;
    case LOG_FIELD_INT:
        log_put_int(b, f->num);
        break;
    case LOG_FIELD_DOUBLE:
        log_put_double(b, f->dbl);
        break;
    }
}

/* RFC 3339 with milliseconds.  The part up to the seconds changes once a
 * second, so it is rendered (gmtime_r and snprintf) only then; per thread,
 * as log lines may come from more than one. */
static int log_timestamp(long long ms, char *out)
{
    static _Thread_local long long cached_sec = -1;
    static _Thread_local char cached[CLOCK_RFC3339_LEN + 1];
    if (ms < 0)
        return -1;
    long long sec = ms / 1000;
    if (sec != cached_sec) {
        if (clock_format_rfc3339(sec * 1000, cached) != 0)
            return -1;
        cached_sec = sec;
    }
    /* "YYYY-MM-DDTHH:MM:SS" then ".mmmZ" */
    memcpy(out, cached, CLOCK_RFC3339_LEN - 5);
    int frac = (int)(ms % 1000);
    char *p = out + CLOCK_RFC3339_LEN - 5;
    p[0] = '.';
    p[1] = (char)('0' + frac / 100);
    p[2] = (char)('0' + frac / 10 % 10);
    p[3] = (char)('0' + frac % 10);
    p[4] = 'Z';
    p[5] = '\0';
    return 0;
}

struct logger *log_process(void)
{
    static struct logger process = {.level = LOG_INFO, .fd = 2, .service = NULL};
    return &process;
}

int log_format(char *buf, int buflen, const char *service, enum log_level level,
               const struct trace_context *tc, const char *message,
               const struct log_field *fields, int field_count,
               long long now_ms)
{
    struct log_buf b = {buf, 0, buflen, false};
    char ts[CLOCK_RFC3339_LEN + 1];
    if (log_timestamp(now_ms, ts) != 0)
        strcpy(ts, "1970-01-01T00:00:00.000Z");
    log_puts(&b, "{\"timestamp\":\"");
    log_puts(&b, ts);
    log_puts(&b, "\",\"level\":\"");
    log_puts(&b, log_level_name(level));
    log_puts(&b, "\",\"service\":");
    log_put_json_string(&b, service != NULL ? service : LOG_SERVICE_DEFAULT);
    log_puts(&b, ",\"trace_id\":");
    log_put_json_string(&b, tc ? tc->trace_id : "");
    log_puts(&b, ",\"span_id\":");
    log_put_json_string(&b, tc ? tc->span_id : "");
    log_puts(&b, ",\"message\":");
    log_put_json_string(&b, message);
    for (int i = 0; i < field_count; i++)
        log_put_field(&b, &fields[i]);
    log_puts(&b, "}\n");
    if (b.overflow)
        return -1;
    buf[b.len] = '\0';
    return b.len;
}

void log_emit(const struct logger *lg, enum log_level level,
              const struct trace_context *tc, const char *message,
              const struct log_field *fields, int field_count)
{
    if (lg == NULL || level < lg->level)
        return;
    char line[LOG_LINE_MAX];
    long long now = clock_now_ms();
    int n = log_format(line, sizeof line, lg->service, level, tc, message,
                       fields, field_count, now);
    if (n < 0) /* too long: keep the envelope, drop the fields */
        n = log_format(line, sizeof line, lg->service, level, tc, message,
                       NULL, 0, now);
    if (n < 0)
        return;
    /* One write per line; a short write or EINTR loses at most this line,
     * and logging must never take the request down with it. */
    ssize_t w;
    do {
        w = write(lg->fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}
