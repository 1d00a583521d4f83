/*
 * trace_context.h - the W3C trace context ids a request carries
 * (https://www.w3.org/TR/trace-context/).
 *
 * Plain data, shared by the logger (every line names its trace and span)
 * and core/trace.c (which parses and makes them); kept here so that the
 * logger, used by every binary, does not depend on the domain.
 */
#ifndef ORDERS_TRACE_CONTEXT_H
#define ORDERS_TRACE_CONTEXT_H

struct trace_context {
    char trace_id[33];       /* 32 lowercase hex digits */
    char span_id[17];        /* this request's span */
    char parent_span_id[17]; /* caller's span, "" when the trace is new */
    unsigned char flags;
};

#endif
