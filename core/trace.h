/*
 * trace.h - W3C trace context (https://www.w3.org/TR/trace-context/).
 *
 * A request either continues the caller's trace (valid traceparent) with a
 * span id of its own, or starts a new trace.  Parsing is strict: version 00
 * exactly 55 characters, lowercase hex, ids not all zero; a future version
 * is accepted by its first four fields as the spec asks.
 */
#ifndef ORDERS_TRACE_H
#define ORDERS_TRACE_H

#include <stdbool.h>

#include "trace_context.h"

#define TRACEPARENT_LEN 55

/* Returns true and fills trace_id/parent_span_id/flags when header is a
 * valid traceparent. */
bool trace_parse_traceparent(const char *header, struct trace_context *out);

/* Continues header's trace when valid, else starts a new one; always gives
 * a fresh span id.  Returns 0, or -1 when no randomness was available. */
int trace_begin(const char *header, struct trace_context *out);

/* out must hold TRACEPARENT_LEN + 1 bytes. */
void trace_format_traceparent(const struct trace_context *tc, char *out);

/* Fills buf with len random bytes rendered as 2*len lowercase hex chars +
 * NUL.  Returns 0 or -1. */
int trace_random_hex(char *buf, unsigned len);

#endif
