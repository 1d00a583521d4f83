/*
 * span.h - a finished trace span, and the port it leaves the domain by.
 *
 * Spans are plain fixed-size values so that handing one to the exporter is a
 * copy into a ring, never an allocation on the request path.  Every string
 * in a span is valid UTF-8 (span_set_name, span_add_str).  The worker's
 * exporter encodes them for the collector (fcgi/otlp.h).
 */
#ifndef ORDERS_SPAN_H
#define ORDERS_SPAN_H

#include <stddef.h>

#define SPAN_MAX_ATTRS 8
#define SPAN_ATTR_STR_MAX 96

enum span_kind { SPAN_KIND_INTERNAL = 1, SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3 };

struct span_attr {
    const char *key; /* static string */
    int is_int;
    long long num;
    char str[SPAN_ATTR_STR_MAX];
};

struct span {
    char trace_id[33];
    char span_id[17];
    char parent_span_id[17]; /* "" for a root span */
    char name[64];
    enum span_kind kind;
    long long start_ns; /* Unix epoch nanoseconds */
    long long end_ns;
    int error;          /* status ERROR (5xx, failed transaction) */
    struct span_attr attrs[SPAN_MAX_ATTRS];
    int attr_count;
};

/* Where finished spans go (the exporter's queue).  Must not block. */
struct span_sink {
    void (*emit)(void *ctx, const struct span *s);
    void *ctx;
};

/* Times are clock_now_ns() (common/clock.h).  The name and string values
 * are copied as valid UTF-8: invalid bytes become U+FFFD, and what does not
 * fit is cut before a whole character. */
void span_set_name(struct span *s, const char *name);
void span_add_str(struct span *s, const char *key, const char *value);
void span_add_int(struct span *s, const char *key, long long value);

#endif
