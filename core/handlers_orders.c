#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

/* Auth first, then the media type: a caller without access learns nothing
 * about what the endpoint accepts (the contract's "Errors" section). */
static bool handler_accepts_json_body(struct call *call, struct response *res)
{
    if (!http_is_json_media_type(call->req->content_type)) {
        handler_problem(call, res, PROBLEM_UNSUPPORTED_MEDIA,
                        "the request body must be application/json");
        return false;
    }
    return true;
}

static void handler_validation_failed(struct call *call, struct response *res,
                                      char *detail)
{
    if (detail == NULL)
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
    else
        handler_problem(call, res, PROBLEM_VALIDATION, detail);
    free(detail);
}

static void handler_send_order(struct call *call, struct response *res,
                               int status, const struct order *o)
{
    cJSON *json = order_to_json(o);
    if (json == NULL) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        return;
    }
    response_set_json(res, status, json);
    cJSON_Delete(json);
}

static struct event_meta handler_event_meta(struct app *app, struct call *call)
{
    return (struct event_meta){.source = app->cfg->event_source,
                               .traceparent = call->traceparent};
}

void handle_order_create(struct app *app, struct call *call, struct response *res)
{
    if (!handler_authorize(app, call, AUTH_SCOPE_WRITE, res) ||
        !handler_accepts_json_body(call, res))
        return;
    struct order o;
    char *detail = NULL;
    if (order_parse_create(call->req->body, call->req->body_len, &o, &detail) != 0) {
        handler_validation_failed(call, res, detail);
        return;
    }
    struct event_meta meta = handler_event_meta(app, call);
    long long t0 = handler_span_start(app);
    enum store_status st = store_order_create(app->store, &o, &meta);
    handler_db_span(app, call, "create order", t0, st);
    if (st != STORE_OK) {
        handler_store_failure(app, call, res, st);
        order_free(&o);
        return;
    }
    atomic_fetch_add_explicit(&app->metrics->orders_created, 1, memory_order_relaxed);
    log_emit(&app->log, LOG_INFO, &call->trace, "Order created",
             (struct log_field[]){LOG_STR("order_id", o.id),
                                  LOG_STR("customer_id", o.customer_id)},
             2);
    char location[64];
    snprintf(location, sizeof location, "/orders/%s", o.id);
    if (response_add_header(res, "Location", location) != 0)
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
    else
        handler_send_order(call, res, 201, &o);
    order_free(&o);
}

void handle_order_get(struct app *app, struct call *call, struct response *res)
{
    if (!handler_authorize(app, call, AUTH_SCOPE_READ, res))
        return;
    struct order o;
    long long t0 = handler_span_start(app);
    enum store_status st = uuid_is_canonical(call->param)
                               ? store_order_get(app->store, call->param, &o)
                               : STORE_NOT_FOUND;
    handler_db_span(app, call, "get order", t0, st);
    if (st == STORE_NOT_FOUND) {
        handler_problem(call, res, PROBLEM_NOT_FOUND, "no order with this id");
        return;
    }
    if (st != STORE_OK) {
        handler_store_failure(app, call, res, st);
        return;
    }
    handler_send_order(call, res, 200, &o);
    order_free(&o);
}

static void handler_conflict(struct call *call, struct response *res,
                             enum order_status from, enum order_status to)
{
    char detail[128];
    snprintf(detail, sizeof detail,
             "cannot change status from %s to %s; allowed: pending -> paid -> "
             "shipped -> delivered, one step at a time",
             order_status_name(from), order_status_name(to));
    handler_problem(call, res, PROBLEM_CONFLICT, detail);
}

void handle_order_update(struct app *app, struct call *call, struct response *res)
{
    if (!handler_authorize(app, call, AUTH_SCOPE_WRITE, res) ||
        !handler_accepts_json_body(call, res))
        return;
    enum order_status to;
    char *detail = NULL;
    if (order_parse_update(call->req->body, call->req->body_len, &to, &detail) != 0) {
        handler_validation_failed(call, res, detail);
        return;
    }
    if (!uuid_is_canonical(call->param)) {
        handler_problem(call, res, PROBLEM_NOT_FOUND, "no order with this id");
        return;
    }
    struct order o;
    enum order_status from = ORDER_PENDING;
    struct event_meta meta = handler_event_meta(app, call);
    long long t0 = handler_span_start(app);
    enum store_status st = store_order_transition(app->store, call->param, to,
                                                  &meta, &o, &from);
    handler_db_span(app, call, "update order status", t0, st);
    switch (st) {
    case STORE_OK:
        atomic_fetch_add_explicit(&app->metrics->status_changes[to], 1,
                                  memory_order_relaxed);
        log_emit(&app->log, LOG_INFO, &call->trace, "Order status changed",
                 (struct log_field[]){LOG_STR("order_id", o.id),
                                      LOG_STR("customer_id", o.customer_id),
                                      LOG_STR("from", order_status_name(from)),
                                      LOG_STR("to", order_status_name(to))},
                 4);
        handler_send_order(call, res, 200, &o);
        order_free(&o);
        break;
    case STORE_CONFLICT:
        handler_conflict(call, res, from, to);
        order_free(&o);
        break;
    case STORE_NOT_FOUND:
        handler_problem(call, res, PROBLEM_NOT_FOUND, "no order with this id");
        break;
    default:
        handler_store_failure(app, call, res, st);
        break;
    }
}

static cJSON *handler_page_json(const struct order *items, size_t count,
                                long long total, const struct page_query *q)
{
    cJSON *page = cJSON_CreateObject();
    cJSON *array = cJSON_AddArrayToObject(page, "items");
    if (page == NULL || array == NULL)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        cJSON *o = order_to_json(&items[i]);
        if (o == NULL || !cJSON_AddItemToArray(array, o)) {
            cJSON_Delete(o);
            goto fail;
        }
    }
    if (cJSON_AddNumberToObject(page, "total", (double)total) == NULL ||
        cJSON_AddNumberToObject(page, "limit", (double)q->limit) == NULL ||
        cJSON_AddNumberToObject(page, "offset", (double)q->offset) == NULL)
        goto fail;
    return page;
fail:
    cJSON_Delete(page);
    return NULL;
}

void handle_order_list(struct app *app, struct call *call, struct response *res)
{
    if (!handler_authorize(app, call, AUTH_SCOPE_READ, res))
        return;
    struct page_query q;
    char *detail = NULL;
    if (order_parse_page_query(call->req->query, &app->cursor_key, &q, &detail) != 0) {
        handler_validation_failed(call, res, detail);
        return;
    }
    struct order *items = NULL;
    size_t count = 0;
    long long total = 0;
    long long t0 = handler_span_start(app);
    enum store_status st = store_order_page(app->store, &q, &items, &count, &total);
    handler_db_span(app, call, "list orders", t0, st);
    if (st != STORE_OK) {
        handler_store_failure(app, call, res, st);
        return;
    }
    cJSON *page = handler_page_json(items, count, total, &q);
    for (size_t i = 0; i < count; i++)
        order_free(&items[i]);
    free(items);
    if (page == NULL) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        return;
    }
    response_set_json(res, 200, page);
    cJSON_Delete(page);
}
