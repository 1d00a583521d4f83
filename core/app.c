#include "app.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "handlers.h"

/* The service's surface.  A new endpoint is a row here and one handler. */
static const struct route app_routes[] = {
    {"GET", "/", "GET /", (void (*)(void))handle_service_info},
    {"GET", "/openapi.json", "GET /openapi.json", (void (*)(void))handle_openapi},
    {"GET", "/healthz", "GET /healthz", (void (*)(void))handle_healthz},
    {"GET", "/readyz", "GET /readyz", (void (*)(void))handle_readyz},
    {"POST", "/orders", "POST /orders", (void (*)(void))handle_order_create},
    {"GET", "/orders", "GET /orders", (void (*)(void))handle_order_list},
    {"GET", "/orders/{id}", "GET /orders/{id}", (void (*)(void))handle_order_get},
    {"PATCH", "/orders/{id}", "PATCH /orders/{id}", (void (*)(void))handle_order_update},
    {"GET", "/metrics", "GET /metrics", (void (*)(void))handle_metrics},
    {"GET", "/status", "GET /status", (void (*)(void))handle_pool_status},
};

#define APP_ROUTE_COUNT ((int)(sizeof app_routes / sizeof app_routes[0]))
_Static_assert(APP_ROUTE_COUNT < METRICS_MAX_ROUTES, "metrics need a slot per route");

void app_route_names(const char **names, int *count)
{
    for (int i = 0; i < APP_ROUTE_COUNT; i++)
        names[i] = app_routes[i].name;
    *count = APP_ROUTE_COUNT;
}

static char *app_render_service_info(void)
{
    cJSON *info = cJSON_CreateObject();
    cJSON *links = cJSON_CreateObject();
    char *text = NULL;
    if (info != NULL && links != NULL &&
        cJSON_AddStringToObject(info, "name", "orders") != NULL &&
        cJSON_AddStringToObject(info, "version", ORDERS_VERSION) != NULL &&
        cJSON_AddStringToObject(info, "description",
                                "Orders API: create, read, list and move orders "
                                "through pending, paid, shipped, delivered.") != NULL &&
        cJSON_AddStringToObject(links, "openapi", "/openapi.json") != NULL &&
        cJSON_AddStringToObject(links, "health", "/healthz") != NULL &&
        cJSON_AddStringToObject(links, "ready", "/readyz") != NULL &&
        cJSON_AddStringToObject(links, "orders", "/orders") != NULL &&
        cJSON_AddStringToObject(links, "docs", "/docs") != NULL &&
        cJSON_AddItemToObject(info, "links", links)) {
        links = NULL;
        text = cJSON_PrintUnformatted(info);
    }
    cJSON_Delete(links);
    cJSON_Delete(info);
    return text;
}

int app_init(struct app *app, const struct config *cfg, struct store *store,
             const struct auth_key_source *keys, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->store = store;
    app->log.level = cfg->log_level;
    app->log.fd = 2;
    struct auth_settings settings = config_auth_settings(cfg, keys);
    app->auth = auth_verifier_new(&settings, err, errlen);
    if (app->auth == NULL)
        return -1;
    /* Cursors are signed with a key of their own derived from the secret,
     * so every worker (and every host sharing the secret) accepts the
     * cursors of the others. */
    if (cursor_key_init(&app->cursor_key, cfg->jwt_secret, cfg->jwt_secret_len) != 0) {
        snprintf(err, errlen, "cannot derive the cursor key from JWT_SECRET_KEY");
        auth_verifier_free(app->auth);
        app->auth = NULL;
        return -1;
    }
    app->service_info = app_render_service_info();
    app->own_metrics = calloc(1, sizeof *app->own_metrics);
    app->metrics = app->own_metrics;
    if (app->service_info == NULL || app->own_metrics == NULL) {
        snprintf(err, errlen, "out of memory");
        app_free(app);
        return -1;
    }
    app->service_info_len = strlen(app->service_info);
    return 0;
}

void app_use_metrics(struct app *app, struct metrics *m)
{
    free(app->own_metrics);
    app->own_metrics = NULL;
    app->metrics = m;
}

void app_free(struct app *app)
{
    auth_verifier_free(app->auth);
    free(app->service_info);
    free(app->own_metrics);
    app->own_metrics = app->metrics = NULL;
    app->auth = NULL;
    app->service_info = NULL;
    cursor_key_free(&app->cursor_key);
}

/* A response that never reached the client is logged with status 499 and
 * client_gone, the status the handler produced in handler_status: a 201
 * there means the order exists though its creator never heard of it. */
static void app_log_access(struct app *app, const struct call *call,
                           const struct response *res, const char *route,
                           double duration_ms, bool delivered)
{
    enum log_level level = res->status >= 500 ? LOG_ERROR
                           : !delivered       ? LOG_WARN
                                              : LOG_INFO;
    const struct request *req = call->req;
    struct log_field fields[] = {
        LOG_STR("method", req->method),
        LOG_STR("path", req->path),
        LOG_STR("route", route),
        LOG_INT("status", delivered ? res->status : HTTP_STATUS_CLIENT_GONE),
        LOG_DBL("duration_ms", duration_ms),
        LOG_STR("request_id", req->request_id ? req->request_id : ""),
        LOG_STR("sub", call->principal.sub),
        /* the last two only for an undelivered response */
        LOG_INT("handler_status", res->status),
        LOG_INT("client_gone", 1),
    };
    int n = (int)(sizeof fields / sizeof fields[0]);
    log_emit(&app->log, level, &call->trace, "request", fields,
             delivered ? n - 2 : n);
}

/* The slow log: a request that took SLOW_REQUEST_MS or more, with where
 * its time went in the database (waiting for the write lock, inside write
 * transactions); the rest was spent in the service itself (or, for a
 * client_gone response, in writing it).  Its trace_id finds the request's
 * other lines and spans. */
static void app_log_slow(struct app *app, const struct call *call,
                         const struct response *res, const char *route,
                         double duration_ms, const struct store_timing *db)
{
    const struct request *req = call->req;
    struct log_field fields[] = {
        LOG_STR("method", req->method),
        LOG_STR("route", route),
        LOG_INT("status", res->status),
        LOG_DBL("duration_ms", duration_ms),
        LOG_DBL("db_lock_wait_ms", db->lock_wait_ms),
        LOG_DBL("db_transaction_ms", db->transaction_ms),
        LOG_INT("slow_request_ms", app->cfg->slow_request_ms),
        LOG_STR("request_id", req->request_id ? req->request_id : ""),
    };
    log_emit(&app->log, LOG_WARN, &call->trace, "slow request", fields,
             (int)(sizeof fields / sizeof fields[0]));
}

/* The server span of one request, with the HTTP semantic-convention
 * attributes (OpenTelemetry semconv, http spans). */
static void app_emit_server_span(struct app *app, const struct call *call,
                                 const struct response *res, const char *route,
                                 bool matched, long long start_ns)
{
    struct span s;
    memset(&s, 0, sizeof s);
    memcpy(s.trace_id, call->trace.trace_id, sizeof s.trace_id);
    memcpy(s.span_id, call->trace.span_id, sizeof s.span_id);
    memcpy(s.parent_span_id, call->trace.parent_span_id, sizeof s.parent_span_id);
    span_set_name(&s, matched ? route : call->req->method);
    s.kind = SPAN_KIND_SERVER;
    s.start_ns = start_ns;
    s.end_ns = clock_now_ns();
    s.error = res->status >= 500;
    span_add_str(&s, "http.request.method", call->req->method);
    span_add_str(&s, "url.path", call->req->path);
    span_add_str(&s, "url.scheme", "http");
    if (matched)
        span_add_str(&s, "http.route", route + strcspn(route, " ") + 1);
    span_add_int(&s, "http.response.status_code", res->status);
    if (call->req->request_id != NULL)
        span_add_str(&s, "http.request.id", call->req->request_id);
    if (call->principal.sub[0] != '\0')
        span_add_str(&s, "enduser.id", call->principal.sub);
    app->spans.emit(app->spans.ctx, &s);
}

void app_handle(struct app *app, const struct request *req,
                struct response *res)
{
    double started = clock_monotonic_ms();
    long long start_ns = app->spans.emit ? clock_now_ns() : 0;
    struct call call;
    memset(&call, 0, sizeof call);
    call.req = req;
    call.param = "";
    if (trace_begin(req->traceparent, &call.trace) != 0) {
        /* No randomness from the kernel: serve without a trace id rather
         * than fail the request. */
        memset(&call.trace, 0, sizeof call.trace);
    }
    trace_format_traceparent(&call.trace, call.traceparent);

    const struct route *route = NULL;
    struct route_match_params params;
    char allow[64];
    const char *route_name = "unmatched";
    int route_index = APP_ROUTE_COUNT;
    /* HEAD is GET without the body (RFC 9110, 9.3.2); the adapter drops
     * the body. */
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    enum route_result match = router_match(app_routes, APP_ROUTE_COUNT, method, req->path,
                                           &route, &params, allow, sizeof allow);
    if (match == ROUTE_FOUND) {
        call.param = params.param;
        route_name = route->name;
        route_index = (int)(route - app_routes);
    }
    if (req->routed != NULL)
        req->routed(req->transport_ctx, route_name);
    switch (match) {
    case ROUTE_FOUND:
        if (req->body_too_large)
            handler_problem(&call, res, PROBLEM_PAYLOAD_TOO_LARGE,
                            "request body must not exceed 65536 bytes");
        else
            ((handler_fn)route->handler)(app, &call, res);
        break;
    case ROUTE_METHOD_NOT_ALLOWED:
        if (response_add_header(res, "Allow", allow) != 0) {
            handler_problem(&call, res, PROBLEM_INTERNAL, NULL);
            break;
        }
        handler_problem(&call, res, PROBLEM_METHOD_NOT_ALLOWED,
                        "this resource does not support the method");
        break;
    case ROUTE_NOT_FOUND:
        handler_problem(&call, res, PROBLEM_NOT_FOUND, "no such resource");
        break;
    }
    bool delivered = req->send == NULL || req->send(req->transport_ctx, res) == 0;
    double duration_ms = clock_monotonic_ms() - started;
    struct store_timing db;
    store_take_timing(app->store, &db); /* every request: starts the next afresh */
    if (app->cfg->slow_request_ms > 0 && duration_ms >= app->cfg->slow_request_ms) {
        atomic_fetch_add_explicit(&app->metrics->slow_requests, 1, memory_order_relaxed);
        app_log_slow(app, &call, res, route_name, duration_ms, &db);
    }
    metrics_record_request(app->metrics, route_index,
                           delivered ? res->status : HTTP_STATUS_CLIENT_GONE,
                           duration_ms);
    if (app->spans.emit != NULL)
        app_emit_server_span(app, &call, res, route_name,
                             route_index < APP_ROUTE_COUNT, start_ns);
    app_log_access(app, &call, res, route_name, duration_ms, delivered);
}
