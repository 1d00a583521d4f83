#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#include "embedded.h"
#include "handlers.h"

void handle_service_info(struct app *app, struct call *call, struct response *res)
{
    (void)call;
    response_set_body(res, 200, "application/json", app->service_info,
                      app->service_info_len);
    res->body_is_static = 1; /* owned by the app */
}

void handle_openapi(struct app *app, struct call *call, struct response *res)
{
    (void)app;
    (void)call;
    response_set_body(res, 200, "application/json", (char *)embedded_openapi,
                      embedded_openapi_len);
    res->body_is_static = 1;
}

static void handler_static_json(struct response *res, int status, const char *text)
{
    response_set_body(res, status, "application/json", (char *)text, strlen(text));
    res->body_is_static = 1;
}

void handle_healthz(struct app *app, struct call *call, struct response *res)
{
    (void)app;
    (void)call;
    handler_static_json(res, 200, "{\"status\":\"ok\"}");
}

/* Ready means: the database answers a query, its schema is the one this
 * binary was built for, and tokens can be verified (with a key set: one
 * has been fetched).  A worker started against a newer or half-upgraded
 * database says so instead of serving. */
void handle_readyz(struct app *app, struct call *call, struct response *res)
{
    int applied = 0;
    enum store_status st = store_schema_version(app->store, &applied);
    if (st != STORE_OK) {
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE, "the database is not reachable");
        return;
    }
    if (applied != store_schema_latest(app->store)) {
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "the database schema is not at the expected version");
        return;
    }
    if (!auth_ready(app->auth)) {
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "the identity provider's key set has not been fetched yet");
        return;
    }
    handler_static_json(res, 200, "{\"status\":\"ready\"}");
}

/* Access is limited to loopback by nginx (the site config), not here: the
 * worker cannot tell a proxied client from a local one. */
void handle_metrics(struct app *app, struct call *call, struct response *res)
{
    const char *names[METRICS_MAX_ROUTES];
    int count = 0;
    app_route_names(names, &count);
    struct outbox_stats outbox;
    int outbox_ok = store_outbox_stats(app->store, clock_now_ms(), &outbox) == STORE_OK;
    size_t len = 0;
    char *text = metrics_render(app->metrics, names, count, &outbox, outbox_ok, &len);
    if (text != NULL && app->pool.metrics_text != NULL) {
        size_t pool_len = 0;
        char *pool = app->pool.metrics_text(app->pool.ctx, &pool_len);
        char *both = pool != NULL ? realloc(text, len + pool_len + 1) : NULL;
        if (both != NULL) {
            memcpy(both + len, pool, pool_len + 1);
            len += pool_len;
        } else {
            free(text); /* all or nothing: no scrape with the pool missing */
        }
        text = both;
        free(pool);
    }
    if (text == NULL) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        return;
    }
    response_set_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* True when the query string has the parameter name (with or without a
 * value), as php-fpm's status page takes ?full. */
static bool query_has(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, "&");
        if ((len == n || (len > n && p[n] == '=')) && strncmp(p, name, n) == 0)
            return true;
        p += len;
        if (*p == '&')
            p++;
    }
    return false;
}

/* The pool's status, like php-fpm's status page; ?full adds each worker.
 * Loopback only, as /metrics (the site config).  The figures come from the
 * pool the host runs the app in; without one there is nothing to show. */
void handle_pool_status(struct app *app, struct call *call, struct response *res)
{
    if (app->pool.status_json == NULL) {
        handler_problem(call, res, PROBLEM_NOT_FOUND, "this process runs no worker pool");
        return;
    }
    size_t len = 0;
    char *text = app->pool.status_json(app->pool.ctx, query_has(call->req->query, "full"), &len);
    if (text == NULL) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        return;
    }
    response_set_body(res, 200, "application/json", text, len);
}
