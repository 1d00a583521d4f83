/*
 * sink.h - the sink port: where the publisher delivers events.
 *
 * A transport is an adapter (adapters/sink_*.c) that fills one struct
 * sink_adapter; adapters/sinks.c picks it from a table by the scheme of
 * EVENT_SINK.  The publisher knows only this header:
 *
 *     sinks_open(&s, spec, &opt, err, sizeof err);      the table finds the adapter
 *     n = sink_send(s, msgs, count, &r);                 count <= sink_max_batch(s)
 *     ... msgs[0..n) are acknowledged; when n < count, r says what became
 *         of msgs[n] (retry later, or rejected) and msgs[n+1..] were not
 *         acknowledged either ...
 *     sink_close(s);
 *
 * What must hold for every adapter:
 *  - Acknowledged means durable at the other end as far as the transport
 *    can promise (a file: fsync'ed, data and directory entry; HTTP: a 2xx;
 *    a broker: its confirm).  The relay marks exactly the acknowledged
 *    prefix delivered, so an adapter never counts a message whose
 *    predecessors in the batch were not acknowledged.
 *  - Order: messages reach the transport in the order given.
 *  - One send call never takes longer than sink_send_budget_ms(s): the
 *    relay's lease must outlive it.
 *  - Classification: SINK_RETRY blames the sink (down, overloaded,
 *    misconfigured: the event is sent again, never given up); SINK_REJECTED
 *    blames this one event (after PUBLISHER_MAX_ATTEMPTS it is parked).
 *    When unsure, an adapter says SINK_RETRY: parking because the sink is
 *    down would drain the stream into the parked pile.
 *  - No credential ever reaches a log: sink_describe() and every
 *    sink_result.error are free of user names, passwords and query values.
 */
#ifndef ORDERS_CORE_SINK_H
#define ORDERS_CORE_SINK_H

#include <stddef.h>

enum sink_status {
    SINK_OK,
    SINK_RETRY,    /* the sink is down or failing: send the same event later */
    SINK_REJECTED, /* the sink refused this event itself */
};

struct sink_result {
    enum sink_status status;
    long long retry_after_ms; /* a pause the sink asked for (Retry-After); 0: none */
    char error[256];          /* for last_error and the logs; "" when OK */
};

/* One event, as the adapters need it: the attributes for binary-mode
 * transports, the whole structured-mode CloudEvent for the others. */
struct sink_message {
    const char *id;
    const char *type;
    const char *source;
    const char *subject;
    const char *time;        /* RFC 3339 */
    const char *traceparent; /* NULL when the request had none */
    const char *data;        /* the event's data, JSON as stored (checked to parse) */
    size_t data_len;
    const char *envelope;    /* structured-mode CloudEvents JSON, one line */
    size_t envelope_len;
};

struct sink_options {
    long long connect_timeout_ms; /* reaching a network sink */
    long long timeout_ms;         /* one send call to a network sink */
    const char *user_agent;       /* "orders-publisher/VERSION" */
};

struct sink;

struct sink_adapter {
    const char *name; /* "file", "http", ... for logs and metrics */
    /* Parses spec without any I/O (orders-publisher --check-config).
     * Returns 0, or -1 with one line naming EVENT_SINK in err, which never
     * repeats a credential. */
    int (*check)(const char *spec, char *err, size_t errlen);
    /* Opens the sink.  Returns 0, or -1 with the reason in err. */
    int (*open)(struct sink **out, const char *spec, const struct sink_options *opt,
                char *err, size_t errlen);
    /* Sends msgs[0..count) in order; returns how many, from the first, are
     * acknowledged.  Sets r (SINK_OK when all were). */
    int (*send)(struct sink *s, const struct sink_message *msgs, int count, struct sink_result *r);
    void (*close)(struct sink *s);
    /* Optional (NULL): process-wide setup of the library behind the
     * adapter, called once before open while only one thread exists. */
    int (*global_init)(void);
    void (*global_cleanup)(void);
};

/* Every adapter's state begins with this. */
struct sink {
    const struct sink_adapter *adapter;
    char describe[256];      /* the spec without credentials, for logs */
    int max_batch;           /* most messages one send call takes */
    long long send_budget_ms; /* the longest one send call may take */
};

static inline int sink_send(struct sink *s, const struct sink_message *msgs, int count,
                            struct sink_result *r)
{
    return s->adapter->send(s, msgs, count, r);
}

static inline const char *sink_describe(const struct sink *s)
{
    return s->describe;
}

static inline const char *sink_name(const struct sink *s)
{
    return s->adapter->name;
}

static inline int sink_max_batch(const struct sink *s)
{
    return s->max_batch;
}

static inline long long sink_send_budget_ms(const struct sink *s)
{
    return s->send_budget_ms;
}

#endif
