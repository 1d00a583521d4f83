#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "idempotency.h"
#include "precondition.h"

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

/* Every single-order response names the order's version: a strong ETag
 * (core/precondition.h). */
static void handler_send_versioned(struct call *call, struct response *res,
                                   int status, const struct order *o)
{
    char etag[ETAG_MAX];
    etag_format(o->version, etag);
    if (response_add_header(res, "ETag", etag) != 0) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        return;
    }
    handler_send_order(call, res, status, o);
}

/* The Idempotency-Key, when one came: false when it is malformed (res then
 * holds the 400).  *claim stays NULL without a key. */
static bool handler_idempotency_claim(struct app *app, struct call *call,
                                      struct response *res, struct idempotency_claim *storage,
                                      const struct idempotency_claim **claim)
{
    const struct request *req = call->req;
    *claim = NULL;
    if (req->idempotency_key == NULL && req->idempotency_key_count == 0)
        return true;
    const char *why = NULL;
    if (!idempotency_key_parse(req->idempotency_key, req->idempotency_key_count,
                               storage->key, &why)) {
        handler_problem(call, res, PROBLEM_VALIDATION, why);
        return false;
    }
    storage->caller = call->principal.sub;
    storage->ttl_ms = app->cfg->idempotency_ttl_ms;
    *claim = storage;
    return true;
}

/* Auth, then the key, then the media type and the body: a caller without
 * access learns nothing, and a request refused for any reason is not
 * remembered under its key (it changed nothing and may be retried). */
void handle_order_create(struct app *app, struct call *call, struct response *res)
{
    struct idempotency_claim claim_storage;
    const struct idempotency_claim *claim = NULL;
    if (!handler_authorize(app, call, AUTH_SCOPE_WRITE, res) ||
        !handler_idempotency_claim(app, call, res, &claim_storage, &claim) ||
        !handler_accepts_json_body(call, res))
        return;
    struct order o;
    char *detail = NULL;
    if (order_parse_create(call->req->body, call->req->body_len, &o, &detail) != 0) {
        handler_validation_failed(call, res, detail);
        return;
    }
    if (claim != NULL &&
        idempotency_fingerprint(o.customer_id, o.items_json, claim_storage.fingerprint) != 0) {
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        order_free(&o);
        return;
    }
    struct event_meta meta = handler_event_meta(app, call);
    long long t0 = handler_span_start(app);
    enum store_status st = store_order_create(app->store, &o, &meta, claim);
    handler_db_span(app, call, "create order", t0, st);
    switch (st) {
    case STORE_OK:
        atomic_fetch_add_explicit(&app->metrics->orders_created, 1, memory_order_relaxed);
        log_emit(&app->log, LOG_INFO, &call->trace, "Order created",
                 (struct log_field[]){LOG_STR("order_id", o.id),
                                      LOG_STR("customer_id", o.customer_id)},
                 2);
        break;
    case STORE_REPLAYED:
        /* The first answer again: the order as it was created (a create is
         * always pending, at version 1, updated when created), whatever
         * happened to it since, so status, Location and body are the same. */
        o.status = ORDER_PENDING;
        o.updated_ms = o.created_ms;
        o.version = 1;
        if (response_add_header(res, "Idempotent-Replayed", "true") != 0) {
            handler_problem(call, res, PROBLEM_INTERNAL, NULL);
            order_free(&o);
            return;
        }
        break;
    case STORE_KEY_REUSED:
        handler_problem(call, res, PROBLEM_IDEMPOTENCY_REUSED,
                        "this Idempotency-Key was used with another request body");
        order_free(&o);
        return;
    case STORE_KEY_IN_PROGRESS:
        handler_problem(call, res, PROBLEM_IDEMPOTENCY_IN_PROGRESS,
                        "a request with this Idempotency-Key is in progress; retry later");
        order_free(&o);
        return;
    default:
        handler_store_failure(app, call, res, st);
        order_free(&o);
        return;
    }
    char location[64];
    snprintf(location, sizeof location, "/orders/%s", o.id);
    if (response_add_header(res, "Location", location) != 0)
        handler_problem(call, res, PROBLEM_INTERNAL, NULL);
    else
        handler_send_versioned(call, res, 201, &o);
    order_free(&o);
}

/* A malformed If-Match / If-None-Match is a 400, checked after auth and
 * before the order is looked at. */
static bool handler_preconditions_valid(struct call *call, struct response *res,
                                        const struct precondition *pre)
{
    if (precondition_valid(pre))
        return true;
    handler_problem(call, res, PROBLEM_VALIDATION,
                    "If-Match and If-None-Match must be * or a list of entity-tags "
                    "such as \"v3\" (RFC 9110, 13.1)");
    return false;
}

void handle_order_get(struct app *app, struct call *call, struct response *res)
{
    struct precondition pre = {.if_match = NULL, .if_none_match = call->req->if_none_match};
    if (!handler_authorize(app, call, AUTH_SCOPE_READ, res) ||
        !handler_preconditions_valid(call, res, &pre))
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
    /* RFC 9110, 13.1.2: If-None-Match is compared weakly on GET. */
    if (pre.if_none_match != NULL &&
        etag_list_match_weak(pre.if_none_match, o.version) == ETAG_MATCH) {
        char etag[ETAG_MAX];
        etag_format(o.version, etag);
        res->status = 304;
        if (response_add_header(res, "ETag", etag) != 0)
            handler_problem(call, res, PROBLEM_INTERNAL, NULL);
        order_free(&o);
        return;
    }
    handler_send_versioned(call, res, 200, &o);
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
    struct precondition pre = {.if_match = call->req->if_match,
                               .if_none_match = call->req->if_none_match};
    if (!handler_authorize(app, call, AUTH_SCOPE_WRITE, res) ||
        !handler_accepts_json_body(call, res))
        return;
    enum order_status to;
    char *detail = NULL;
    if (order_parse_update(call->req->body, call->req->body_len, &to, &detail) != 0) {
        handler_validation_failed(call, res, detail);
        return;
    }
    if (!handler_preconditions_valid(call, res, &pre))
        return;
    if (!uuid_is_canonical(call->param)) {
        handler_problem(call, res, PROBLEM_NOT_FOUND, "no order with this id");
        return;
    }
    bool conditional = pre.if_match != NULL || pre.if_none_match != NULL;
    struct order o;
    enum order_status from = ORDER_PENDING;
    struct event_meta meta = handler_event_meta(app, call);
    long long t0 = handler_span_start(app);
    enum store_status st = store_order_transition(app->store, call->param, to,
                                                  conditional ? &pre : NULL,
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
        handler_send_versioned(call, res, 200, &o);
        order_free(&o);
        break;
    case STORE_CONFLICT:
        handler_conflict(call, res, from, to);
        order_free(&o);
        break;
    case STORE_PRECONDITION_FAILED: {
        char etag[ETAG_MAX], text[160];
        etag_format(o.version, etag);
        snprintf(text, sizeof text,
                 "the order's current ETag is %s; If-Match names another version "
                 "(or If-None-Match names this one): nothing was changed", etag);
        handler_problem(call, res, PROBLEM_PRECONDITION_FAILED, text);
        order_free(&o);
        break;
    }
    case STORE_NOT_FOUND:
        handler_problem(call, res, PROBLEM_NOT_FOUND, "no order with this id");
        break;
    default:
        handler_store_failure(app, call, res, st);
        break;
    }
}

/* Appends "&name=value" to buf, value percent-encoded but for RFC 3986's
 * unreserved characters.  Returns false when it does not fit. */
static bool handler_query_append(char *buf, size_t cap, size_t *len, const char *name,
                                 const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    int w = snprintf(buf + *len, cap - *len, "&%s=", name);
    if (w < 0 || (size_t)w >= cap - *len)
        return false;
    *len += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                     *p == '~';
        if (*len + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            buf[(*len)++] = (char)*p;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*p >> 4];
            buf[(*len)++] = hex[*p & 0x0f];
        }
    }
    buf[*len] = '\0';
    return true;
}

/* The following page: /orders?limit=N&cursor=C, the filters kept.  Its
 * position is the creation sequence of this page's last order. */
static int handler_next_link(struct app *app, const struct page_query *q,
                             long long after, char *buf, size_t cap)
{
    char cursor[CURSOR_TEXT_LEN + 1];
    if (cursor_encode(&app->cursor_key, after, cursor) != 0)
        return -1;
    int w = snprintf(buf, cap, "/orders?limit=%lld&cursor=%s", q->limit, cursor);
    if (w < 0 || (size_t)w >= cap)
        return -1;
    size_t len = (size_t)w;
    if (q->has_status && !handler_query_append(buf, cap, &len, "status",
                                               order_status_name(q->status)))
        return -1;
    if (q->has_customer && !handler_query_append(buf, cap, &len, "customerId", q->customer_id))
        return -1;
    return 0;
}

static cJSON *handler_page_json(const struct order *items, size_t count,
                                long long total, const struct page_query *q,
                                const char *next)
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
        (!q->has_cursor &&
         cJSON_AddNumberToObject(page, "offset", (double)q->offset) == NULL) ||
        (next != NULL ? cJSON_AddStringToObject(page, "next", next)
                      : cJSON_AddNullToObject(page, "next")) == NULL)
        goto fail;
    return page;
fail:
    cJSON_Delete(page);
    return NULL;
}

/* An offset past PAGE_OFFSET_MAX would make one request walk that many
 * index entries: it is refused, pointing to cursor, unless it is at or past
 * the total (an empty page, as the contract says, at the cost of a count). */
static bool handler_offset_allowed(struct app *app, struct call *call,
                                   struct response *res, const struct page_query *q,
                                   long long *total, bool *empty)
{
    *empty = false;
    if (q->has_cursor || q->offset <= PAGE_OFFSET_MAX)
        return true;
    enum store_status st = store_order_count(app->store, q, total);
    if (st != STORE_OK) {
        handler_store_failure(app, call, res, st);
        return false;
    }
    if (q->offset >= *total) {
        *empty = true;
        return true;
    }
    char detail[192];
    snprintf(detail, sizeof detail,
             "offset must be at most %d (below total %lld): page deeper by following "
             "next (cursor)", PAGE_OFFSET_MAX, *total);
    handler_problem(call, res, PROBLEM_VALIDATION, detail);
    return false;
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
    bool more = false, empty = false;
    if (!handler_offset_allowed(app, call, res, &q, &total, &empty))
        return;
    if (!empty) {
        long long t0 = handler_span_start(app);
        enum store_status st = store_order_page(app->store, &q, &items, &count, &total, &more);
        handler_db_span(app, call, "list orders", t0, st);
        if (st != STORE_OK) {
            handler_store_failure(app, call, res, st);
            return;
        }
    }
    char next[CURSOR_TEXT_LEN + PAGE_CUSTOMER_MAX * 3 + 96];
    bool next_ok = !more || count == 0 ||
                   handler_next_link(app, &q, items[count - 1].seq, next, sizeof next) == 0;
    cJSON *page = next_ok ? handler_page_json(items, count, total, &q,
                                              more && count > 0 ? next : NULL)
                          : NULL;
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
