#include <string.h>

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

/* Ready means: the database answers a query and its schema is the one this
 * binary was built for.  A worker started against a newer or half-upgraded
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
    if (applied != store_schema_latest()) {
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "the database schema is not at the expected version");
        return;
    }
    handler_static_json(res, 200, "{\"status\":\"ready\"}");
}
