/*
 * sink.h - where events go (EVENT_SINK): "stdout", "file:PATH" or an
 * http(s):// URL.
 *
 * One batch at a time:
 *
 *     sink_begin(s, &r);                 once per batch
 *     sink_send(s, json, len, &r);       per event, in order; stop at the
 *                                        first result that is not SINK_OK
 *     sink_finish(s, &r);                makes what was sent durable
 *
 * An event counts as acknowledged only when its sink_send and the batch's
 * sink_finish both returned SINK_OK.  For stdout and files, send only
 * buffers and finish writes (and for files fsyncs) the whole batch: one
 * fsync per batch is what makes thousands of events per second possible.
 * For HTTP each send is a POST and finish has nothing left to do.
 */
#ifndef ORDERS_PUBLISHER_SINK_H
#define ORDERS_PUBLISHER_SINK_H

#include <stddef.h>

struct sink;

enum sink_status {
    SINK_OK,
    SINK_RETRY,    /* the sink is down or failing: try the same event later */
    SINK_REJECTED, /* the sink refused this event itself (HTTP 4xx, see sink.c) */
};

struct sink_result {
    enum sink_status status;
    long long retry_after_ms; /* pause the sink asked for (Retry-After); 0: none */
    char error[256];          /* for last_error and the logs; "" when OK */
};

struct sink_options {
    long long connect_timeout_ms; /* HTTP only */
    long long timeout_ms;         /* HTTP only: a whole request */
    const char *user_agent;
};

/* Call curl's global setup before any thread exists; pair with cleanup. */
int sink_global_init(void);
void sink_global_cleanup(void);

/* Returns 0, or -1 with the reason in err (a file that cannot be opened, a
 * URL curl will not take). */
int sink_open(struct sink **out, const char *spec, const struct sink_options *opt,
              char *err, size_t errlen);
void sink_close(struct sink *s);

/* For logs: "stdout", "file:PATH", or the URL without user name, password
 * or query (which may carry secrets). */
const char *sink_describe(const struct sink *s);

/* The longest one sink_send may take; the lease must outlast it. */
long long sink_send_budget_ms(const struct sink *s);

void sink_begin(struct sink *s, struct sink_result *r);
void sink_send(struct sink *s, const char *body, size_t len, struct sink_result *r);
void sink_finish(struct sink *s, struct sink_result *r);

#endif
