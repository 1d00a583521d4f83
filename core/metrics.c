#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* The statuses the service and nginx can answer, and 499 for a response
 * the client had gone before it could take (HTTP_STATUS_CLIENT_GONE);
 * anything else counts in the last slot as "other". */
static const int metrics_statuses[METRICS_STATUS_SLOTS - 1] = {
    200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 500, 503, 504, 502, 414, 499};

/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const double metrics_bounds_ms[METRICS_BUCKETS - 1] = {
    0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 500, 1000};

static const char *const metrics_status_names[] = {"pending", "paid", "shipped",
                                                   "delivered"};

static int metrics_status_slot(int status)
{
    for (int i = 0; i < METRICS_STATUS_SLOTS - 1; i++)
        if (metrics_statuses[i] == status)
            return i;
    return METRICS_STATUS_SLOTS - 1;
}

void metrics_record_request(struct metrics *m, int route_index, int status,
                            double duration_ms)
{
    if (m == NULL || route_index < 0 || route_index >= METRICS_MAX_ROUTES)
        return;
    int bucket = 0;
    while (bucket < METRICS_BUCKETS - 1 && duration_ms > metrics_bounds_ms[bucket])
        bucket++;
    /* Relaxed: these are independent counters, read as a snapshot that may
     * be a few requests stale; no ordering between them is promised. */
    atomic_fetch_add_explicit(&m->requests[route_index][metrics_status_slot(status)],
                              1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->duration_bucket[route_index][bucket], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->duration_sum_us[route_index],
                              (unsigned long long)(duration_ms * 1000.0),
                              memory_order_relaxed);
}

static unsigned long long load(const atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void metrics_render_requests(struct text *t, const struct metrics *m,
                                    const char *const *names, int n)
{
    text_printf(t, "# HELP orders_http_requests_total Requests answered by the "
                   "workers, by route and status.\n"
                   "# TYPE orders_http_requests_total counter\n");
    for (int r = 0; r <= n && r < METRICS_MAX_ROUTES; r++) {
        for (int s = 0; s < METRICS_STATUS_SLOTS; s++) {
            unsigned long long v = load(&m->requests[r][s]);
            if (v == 0)
                continue;
            char status[8];
            if (s < METRICS_STATUS_SLOTS - 1)
                snprintf(status, sizeof status, "%d", metrics_statuses[s]);
            else
                snprintf(status, sizeof status, "other");
            text_printf(t, "orders_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                        r < n ? names[r] : "unmatched", status, v);
        }
    }
}

static void metrics_render_durations(struct text *t, const struct metrics *m,
                                     const char *const *names, int n)
{
    text_printf(t, "# HELP orders_http_request_duration_seconds Time from the "
                   "request reaching a worker to its response, by route.\n"
                   "# TYPE orders_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= n && r < METRICS_MAX_ROUTES; r++) {
        const char *name = r < n ? names[r] : "unmatched";
        unsigned long long cumulative = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cumulative += load(&m->duration_bucket[r][b]);
            if (b < METRICS_BUCKETS - 1)
                text_printf(t, "orders_http_request_duration_seconds_bucket"
                               "{route=\"%s\",le=\"%g\"} %llu\n",
                            name, metrics_bounds_ms[b] / 1000.0, cumulative);
            else
                text_printf(t, "orders_http_request_duration_seconds_bucket"
                               "{route=\"%s\",le=\"+Inf\"} %llu\n", name, cumulative);
        }
        text_printf(t, "orders_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                    name, (double)load(&m->duration_sum_us[r]) / 1e6);
        text_printf(t, "orders_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                    name, cumulative);
    }
}

static void metrics_render_counter(struct text *t, const char *name,
                                   const char *help, unsigned long long v)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
                name, v);
}

static void metrics_render_domain(struct text *t, const struct metrics *m)
{
    metrics_render_counter(t, "orders_orders_created_total", "Orders created.",
                           load(&m->orders_created));
    text_printf(t, "# HELP orders_order_status_changes_total Status changes, by "
                   "the status moved to.\n"
                   "# TYPE orders_order_status_changes_total counter\n");
    for (int i = 1; i < 4; i++)
        text_printf(t, "orders_order_status_changes_total{to=\"%s\"} %llu\n",
                    metrics_status_names[i], load(&m->status_changes[i]));
    metrics_render_counter(t, "orders_worker_restarts_total",
                           "Workers replaced after dying or being recycled.",
                           load(&m->worker_restarts));
    metrics_render_counter(t, "orders_slow_requests_total",
                           "Requests that took longer than SLOW_REQUEST_MS (each "
                           "one is in the slow log).",
                           load(&m->slow_requests));
    metrics_render_counter(t, "orders_trace_spans_exported_total",
                           "Spans sent to the OTLP collector.",
                           load(&m->spans_exported));
    metrics_render_counter(t, "orders_trace_spans_dropped_total",
                           "Spans dropped because the export buffer was full or "
                           "the collector failed.",
                           load(&m->spans_dropped));
}

static void metrics_render_outbox(struct text *t, const struct outbox_stats *o)
{
    text_printf(t, "# HELP orders_events_pending Events committed and not yet "
                   "delivered (parked ones excluded).\n"
                   "# TYPE orders_events_pending gauge\norders_events_pending %lld\n",
                o->pending);
    text_printf(t, "# HELP orders_events_oldest_pending_age_seconds Age of the "
                   "oldest undelivered event.\n"
                   "# TYPE orders_events_oldest_pending_age_seconds gauge\n"
                   "orders_events_oldest_pending_age_seconds %.3f\n",
                o->oldest_pending_age_s);
    text_printf(t, "# HELP orders_events_parked Events the publisher gave up on "
                   "(see README, Events).\n"
                   "# TYPE orders_events_parked gauge\norders_events_parked %lld\n",
                o->parked);
    metrics_render_counter(t, "orders_publisher_deliveries_total",
                           "Events delivered to the sink.",
                           (unsigned long long)o->delivered_total);
    metrics_render_counter(t, "orders_publisher_failures_total",
                           "Failed delivery attempts.",
                           (unsigned long long)o->delivery_failures_total);
    /* Names come from the adapters' table (letters only), never a URL.
     * Before the first delivery the families are announced without
     * samples, so the set of families never depends on the traffic. */
    text_printf(t, "# HELP orders_publisher_sink_deliveries_total Events delivered, "
                   "by transport.\n# TYPE orders_publisher_sink_deliveries_total counter\n");
    for (int i = 0; i < o->sink_count; i++)
        text_printf(t, "orders_publisher_sink_deliveries_total{sink=\"%s\"} %lld\n",
                    o->sinks[i].name, o->sinks[i].deliveries);
    text_printf(t, "# HELP orders_publisher_sink_failures_total Failed delivery attempts, "
                   "by transport.\n# TYPE orders_publisher_sink_failures_total counter\n");
    for (int i = 0; i < o->sink_count; i++)
        text_printf(t, "orders_publisher_sink_failures_total{sink=\"%s\"} %lld\n",
                    o->sinks[i].name, o->sinks[i].failures);
}

char *metrics_render(const struct metrics *m, const char *const *route_names,
                     int route_count, const struct outbox_stats *outbox,
                     int outbox_ok, size_t *len)
{
    struct text t = {0};
    metrics_render_requests(&t, m, route_names, route_count);
    metrics_render_durations(&t, m, route_names, route_count);
    metrics_render_domain(&t, m);
    if (outbox_ok)
        metrics_render_outbox(&t, outbox);
    text_printf(&t, "# HELP orders_database_up Whether the outbox figures could "
                    "be read.\n# TYPE orders_database_up gauge\norders_database_up %d\n",
                outbox_ok ? 1 : 0);
    return text_take(&t, len);
}
