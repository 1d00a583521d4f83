/*
 * http.h - the transport-free request and response.
 *
 * A request is what the service needs to know of an HTTP request, already
 * taken apart by the adapter (fcgi/).  Every string is borrowed: it lives as
 * long as the adapter keeps the request, which is until the response has been
 * written.  A response owns what it holds; response_free() releases it.
 */
#ifndef ORDERS_HTTP_H
#define ORDERS_HTTP_H

#include <stddef.h>

#define HTTP_MAX_BODY (64 * 1024)
#define RESPONSE_MAX_HEADERS 8

struct response;

struct request {
    const char *method;        /* "GET", "POST", ... never NULL */
    const char *path;          /* raw path as sent, without the query */
    const char *query;         /* raw query string without '?', "" if none */
    const char *content_type;  /* NULL when absent */
    const char *authorization; /* NULL when absent */
    int authorization_count;   /* how many Authorization headers came */
    const char *traceparent;   /* NULL when absent */
    const char *idempotency_key; /* NULL when absent */
    int idempotency_key_count;   /* how many Idempotency-Key headers came */
    /* If-Match / If-None-Match field values, NULL when absent; repeated
     * headers arrive joined with ", " (RFC 9110, 5.3: one list). */
    const char *if_match;
    const char *if_none_match;
    const char *request_id;    /* nginx's $request_id, NULL when absent */
    const char *body;          /* not NUL-terminated; NULL when empty */
    size_t body_len;
    int body_too_large;        /* CONTENT_LENGTH over HTTP_MAX_BODY: not read */
    /* The transport's hooks, each given transport_ctx; NULL: none (tests).
     * routed: the route that will answer (a routing-table label, or
     * "unmatched"), told before its handler runs, for the pool's status.
     * send: writes the response; app_handle() calls it once the response
     * is complete and before it logs and counts the request, so that a
     * response that never reached the client is not reported as sent.
     * Returns 0 when delivered, -1 when the peer had gone.  Without it
     * nothing is sent and the response counts as delivered. */
    void (*routed)(void *ctx, const char *route);
    int (*send)(void *ctx, const struct response *res);
    void *transport_ctx;
};

/* The status logged and counted for a response that could not be
 * delivered because the client had gone (nginx's own code for it). */
#define HTTP_STATUS_CLIENT_GONE 499

struct header {
    char *name;
    char *value;
};

struct response {
    int status;
    const char *content_type; /* static string; NULL means no body */
    struct header headers[RESPONSE_MAX_HEADERS];
    int header_count;
    char *body; /* malloc'ed, or NULL */
    size_t body_len;
    /* Set to non-zero when body points at static storage (the embedded
     * OpenAPI document): it is then not freed. */
    int body_is_static;
};

/* Initialise to an empty 500 response: a handler that forgets to fill it
 * answers with an error rather than garbage. */
void response_init(struct response *res);
void response_free(struct response *res);

/* Adds a header (copied).  Returns 0, or -1 when out of memory or slots. */
int response_add_header(struct response *res, const char *name,
                        const char *value);
const char *response_header(const struct response *res, const char *name);

/* Takes ownership of body (malloc'ed, len bytes). */
void response_set_body(struct response *res, int status,
                       const char *content_type, char *body, size_t len);

/* Serialises a cJSON value as the body; on allocation failure the response
 * becomes a bare 500.  The cJSON value is not freed. */
struct cJSON;
void response_set_json(struct response *res, int status,
                       const struct cJSON *json);

const char *http_reason_phrase(int status);

/* True when content_type is application/json or application/<x>+json, in
 * any case, with or without parameters such as charset. */
#include <stdbool.h>
bool http_is_json_media_type(const char *content_type);

#endif
