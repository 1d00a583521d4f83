/*
 * event.h - the CloudEvents 1.0 row a change appends to the outbox.
 *
 * The worker builds the row; the publisher (its own binary) wraps it in the
 * structured-mode envelope when it delivers.  data is the order exactly as
 * the API returned it, plus previousStatus for order.updated.
 */
#ifndef ORDERS_EVENT_H
#define ORDERS_EVENT_H

#include "clock.h"
#include "order.h"
#include "uuid.h"

#define EVENT_TYPE_CREATED "order.created"
#define EVENT_TYPE_UPDATED "order.updated"

/* What the request contributes to its event. */
struct event_meta {
    const char *source;      /* EVENT_SOURCE */
    const char *traceparent; /* the request's trace context, or NULL */
};

struct event_row {
    char id[UUID_STR_LEN + 1];
    const char *type;
    const char *source;
    const char *subject; /* points into the order */
    char time[CLOCK_RFC3339_LEN + 1];
    const char *traceparent;
    char *data; /* malloc'ed JSON */
    long long committed_ms;
};

/* previous is NULL for order.created.  Returns 0 or -1 (out of memory or no
 * randomness). */
int event_build(struct event_row *ev, const struct order *o,
                const enum order_status *previous,
                const struct event_meta *meta, long long now_ms);
void event_free(struct event_row *ev);

#endif
