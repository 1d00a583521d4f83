#include "problem.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct problem_info {
    int status;
    const char *type;
    const char *title;
};

/* Indexed by enum problem_kind; the contract's error table. */
static const struct problem_info problem_table[] = {
    [PROBLEM_VALIDATION] = {400, "validation_error", "Validation Error"},
    [PROBLEM_UNAUTHORIZED] = {401, "unauthorized", "Unauthorized"},
    [PROBLEM_FORBIDDEN] = {403, "forbidden", "Forbidden"},
    [PROBLEM_NOT_FOUND] = {404, "not_found", "Not Found"},
    [PROBLEM_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "Method Not Allowed"},
    [PROBLEM_CONFLICT] = {409, "conflict", "Conflict"},
    [PROBLEM_PAYLOAD_TOO_LARGE] = {413, "payload_too_large", "Payload Too Large"},
    [PROBLEM_UNSUPPORTED_MEDIA] = {415, "unsupported_media_type", "Unsupported Media Type"},
    [PROBLEM_INTERNAL] = {500, "internal_error", "Internal Server Error"},
    [PROBLEM_UNAVAILABLE] = {503, "service_unavailable", "Service Unavailable"},
    [PROBLEM_TIMEOUT] = {504, "gateway_timeout", "Gateway Timeout"},
    /* Version 2: conditional requests and Idempotency-Key. */
    [PROBLEM_PRECONDITION_FAILED] = {412, "precondition_failed", "Precondition Failed"},
    [PROBLEM_IDEMPOTENCY_REUSED] = {422, "idempotency_key_reused", "Idempotency Key Reused"},
    [PROBLEM_IDEMPOTENCY_IN_PROGRESS] = {409, "idempotency_key_in_progress",
                                         "Idempotency Key In Progress"},
};

static const struct problem_info *problem_lookup(enum problem_kind kind)
{
    if ((size_t)kind >= sizeof problem_table / sizeof problem_table[0])
        kind = PROBLEM_INTERNAL;
    return &problem_table[kind];
}

int problem_status(enum problem_kind kind) { return problem_lookup(kind)->status; }
const char *problem_type(enum problem_kind kind) { return problem_lookup(kind)->type; }
const char *problem_title(enum problem_kind kind) { return problem_lookup(kind)->title; }

/* Out of memory while rendering an error: a fixed document still goes out,
 * so the client never sees an empty 500. */
static const char problem_fallback[] =
    "{\"type\":\"internal_error\",\"title\":\"Internal Server Error\","
    "\"status\":500,\"detail\":\"The server could not complete the request.\"}";

void problem_render(struct response *res, enum problem_kind kind,
                    const char *detail, const char *instance)
{
    const struct problem_info *info = problem_lookup(kind);
    cJSON *doc = cJSON_CreateObject();
    if (doc == NULL || cJSON_AddStringToObject(doc, "type", info->type) == NULL ||
        cJSON_AddStringToObject(doc, "title", info->title) == NULL ||
        cJSON_AddNumberToObject(doc, "status", info->status) == NULL ||
        cJSON_AddStringToObject(doc, "detail", detail ? detail : info->title) == NULL ||
        (instance != NULL && cJSON_AddStringToObject(doc, "instance", instance) == NULL))
        goto fallback;
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        goto fallback_nodoc;
    response_set_body(res, info->status, "application/problem+json", text,
                      strlen(text));
    return;
fallback:
    cJSON_Delete(doc);
fallback_nodoc:
    response_set_body(res, 500, "application/problem+json", NULL, 0);
    res->body = (char *)problem_fallback;
    res->body_len = sizeof problem_fallback - 1;
    res->body_is_static = 1;
}
