/*
 * exporter.h - OTLP/HTTP trace export off the request path.
 *
 * The request path only copies a finished span into a bounded ring under a
 * mutex (span_sink.emit); a thread of the worker takes batches out and POSTs
 * them as OTLP JSON to ENDPOINT/v1/traces with libcurl.  When the ring is
 * full, or the collector is slow or down, spans are dropped and counted
 * (orders_trace_spans_dropped_total) instead of delaying or failing a
 * request.
 */
#ifndef ORDERS_FCGI_EXPORTER_H
#define ORDERS_FCGI_EXPORTER_H

#include <stdatomic.h>

#include "span.h"

struct exporter;

/* endpoint: the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT); the
 * /v1/traces path is appended unless already there.  Counters may be NULL.
 * Returns NULL when the thread or curl could not be set up. */
struct exporter *exporter_start(const char *endpoint, atomic_ullong *exported,
                                atomic_ullong *dropped);

/* Flushes what is queued (bounded by the HTTP timeout) and stops. */
void exporter_stop(struct exporter *e);

/* The sink to give the app. */
struct span_sink exporter_sink(struct exporter *e);

#endif
