/*
 * metrics.h - Prometheus metrics summed over the whole pool.
 *
 * The counters live in one struct shared by every worker of the pool
 * (fcgi/shared_metrics.h maps it), so each adds into the same memory with
 * lock-free atomics and any worker can answer GET /metrics with the figures
 * of all of them.  core/ only sees a pointer; who maps it is the process's
 * business.
 */
#ifndef ORDERS_METRICS_H
#define ORDERS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

#define METRICS_MAX_ROUTES 12 /* the routing table's rows + "unmatched" */
#define METRICS_STATUS_SLOTS 17
#define METRICS_BUCKETS 12

struct metrics {
    atomic_ullong requests[METRICS_MAX_ROUTES][METRICS_STATUS_SLOTS];
    atomic_ullong duration_bucket[METRICS_MAX_ROUTES][METRICS_BUCKETS];
    atomic_ullong duration_sum_us[METRICS_MAX_ROUTES];
    atomic_ullong orders_created;
    atomic_ullong status_changes[4]; /* by the status moved to */
    atomic_ullong worker_restarts;
    atomic_ullong slow_requests; /* over SLOW_REQUEST_MS (the slow log) */
    atomic_ullong spans_exported;
    atomic_ullong spans_dropped;
};

/* Figures read from the database at scrape time: they belong to the
 * outbox, not to any process, and survive restarts. */
/* Per transport (migrations/005_sink_counters.sql). */
#define OUTBOX_STATS_SINKS 8

struct outbox_sink_stats {
    char name[24];
    long long deliveries;
    long long failures;
};

struct outbox_stats {
    long long pending;            /* not delivered, not parked */
    double oldest_pending_age_s;  /* 0 when none */
    long long delivered_total;    /* ever delivered, pruned rows included */
    long long parked;             /* given up on (poison events) */
    long long delivery_failures_total;
    struct outbox_sink_stats sinks[OUTBOX_STATS_SINKS]; /* by name */
    int sink_count;
};

/* route_index: row of the routing table, or route_count for "unmatched". */
void metrics_record_request(struct metrics *m, int route_index, int status,
                            double duration_ms);

/* Renders the text exposition format (version 0.0.4).  route_names has
 * route_count entries.  Returns a malloc'ed string or NULL. */
char *metrics_render(const struct metrics *m, const char *const *route_names,
                     int route_count, const struct outbox_stats *outbox,
                     int outbox_ok, size_t *len);

#endif
