/*
 * handlers.h - what a handler is given, and the handlers of the routing
 * table in app.c.  Internal to core/.
 */
#ifndef ORDERS_HANDLERS_H
#define ORDERS_HANDLERS_H

#include "app.h"
#include "problem.h"
#include "router.h"
#include "trace.h"

/* One request's context, built by app_handle before the handler runs. */
struct call {
    const struct request *req;
    const char *param; /* the {id} path segment, "" when none */
    struct trace_context trace;
    char traceparent[TRACEPARENT_LEN + 1]; /* our span, for the outbox */
    struct auth_principal principal;       /* after handler_authorize */
};

/* The routing table's labels, in order (for /metrics). */
void app_route_names(const char **names, int *count);

typedef void (*handler_fn)(struct app *app, struct call *call,
                           struct response *res);

/* Authenticates the caller and checks the scope.  On false, res already
 * holds the 400/401/403 problem with its WWW-Authenticate header. */
bool handler_authorize(struct app *app, struct call *call,
                       enum auth_scope scope, struct response *res);

/* Renders a problem for req's path. */
void handler_problem(struct call *call, struct response *res,
                     enum problem_kind kind, const char *detail);

/* Maps a failed store call to its problem (503 + Retry-After for busy and
 * full, 500 otherwise) and logs the cause. */
void handler_store_failure(struct app *app, struct call *call,
                           struct response *res, enum store_status status);

/* A child span for one database transaction; start_ns from
 * handler_span_start().  Nothing happens when tracing is off. */
long long handler_span_start(const struct app *app);
void handler_db_span(struct app *app, const struct call *call,
                     const char *operation, long long start_ns,
                     enum store_status status);

void handle_service_info(struct app *app, struct call *call, struct response *res);
void handle_openapi(struct app *app, struct call *call, struct response *res);
void handle_healthz(struct app *app, struct call *call, struct response *res);
void handle_readyz(struct app *app, struct call *call, struct response *res);
void handle_order_create(struct app *app, struct call *call, struct response *res);
void handle_order_get(struct app *app, struct call *call, struct response *res);
void handle_order_update(struct app *app, struct call *call, struct response *res);
void handle_metrics(struct app *app, struct call *call, struct response *res);
void handle_pool_status(struct app *app, struct call *call, struct response *res);
void handle_order_list(struct app *app, struct call *call, struct response *res);

#endif
