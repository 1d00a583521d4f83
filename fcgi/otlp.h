/*
 * otlp.h - the OTLP/HTTP JSON encoding of finished spans (core/span.h),
 * which the exporter POSTs to the collector.
 */
#ifndef ORDERS_FCGI_OTLP_H
#define ORDERS_FCGI_OTLP_H

#include <stddef.h>

#include "span.h"

/* Encodes spans[0..n) as one ExportTraceServiceRequest.  Returns a malloc'ed
 * JSON string or NULL. */
char *otlp_encode_spans(const struct span *spans, size_t n,
                        const char *service_name, const char *service_version);

#endif
