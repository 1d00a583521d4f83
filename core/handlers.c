#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static bool handler_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The raw request path may hold bytes nginx lets through but a URI may not
 * ("{", "|", a space after decoding, bytes >= 0x80 that are not even valid
 * UTF-8).  `instance` is a URI reference (RFC 9457 3.1.5) inside a JSON
 * string, so every byte outside RFC 3986's path characters is
 * percent-encoded; existing %XX escapes are kept.  NULL when out of memory
 * (instance is optional, the problem still goes out). */
static char *handler_instance(const char *path)
{
    static const char allowed[] = "-._~!$&'()*+,;=:@/";
    size_t n = strlen(path);
    char *out = malloc(3 * n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') ||
                    (c != '\0' && strchr(allowed, c) != NULL) ||
                    (c == '%' && handler_is_hex(path[i + 1]) &&
                     handler_is_hex(path[i + 2]));
        if (keep) {
            out[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    out[o] = '\0';
    return out;
}

void handler_problem(struct call *call, struct response *res,
                     enum problem_kind kind, const char *detail)
{
    char *instance = handler_instance(call->req->path);
    problem_render(res, kind, detail, instance);
    free(instance);
}

/* RFC 6750, section 3: no error attribute when no credentials came; the
 * error code and, for 403, the scope needed otherwise. */
static void handler_challenge(struct response *res, const char *error,
                              const char *scope)
{
    char value[160];
    if (error == NULL)
        snprintf(value, sizeof value, "Bearer realm=\"orders\"");
    else if (scope == NULL)
        snprintf(value, sizeof value, "Bearer realm=\"orders\", error=\"%s\"", error);
    else
        snprintf(value, sizeof value,
                 "Bearer realm=\"orders\", error=\"%s\", scope=\"%s\"", error, scope);
    /* Out of header slots is impossible here (a fresh response); ignoring
     * the result keeps the problem document, which is what matters. */
    (void)response_add_header(res, "WWW-Authenticate", value);
}

bool handler_authorize(struct app *app, struct call *call,
                       enum auth_scope scope, struct response *res)
{
    const struct request *req = call->req;
    const char *why = NULL;
    enum auth_result r = auth_verify(app->auth, req->authorization,
                                     req->authorization_count, time(NULL),
                                     &call->principal, &why);
    if (r == AUTH_BAD_REQUEST) {
        handler_challenge(res, "invalid_request", NULL);
        handler_problem(call, res, PROBLEM_VALIDATION,
                        "more than one Authorization header");
        return false;
    }
    if (r == AUTH_UNAVAILABLE) {
        /* No key set yet: the token may well be good; say "later", not
         * "invalid" (GET /readyz says the same). */
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "tokens cannot be verified yet: the identity provider's "
                        "key set has not been fetched");
        return false;
    }
    if (r == AUTH_NO_CREDENTIALS) {
        handler_challenge(res, NULL, NULL);
        handler_problem(call, res, PROBLEM_UNAUTHORIZED,
                        "a bearer token is required");
        return false;
    }
    if (r != AUTH_OK) {
        memset(&call->principal, 0, sizeof call->principal);
        log_emit(&app->log, LOG_INFO, &call->trace, "token refused",
                 (struct log_field[]){LOG_STR("reason", why ? why : "invalid")}, 1);
        handler_challenge(res, "invalid_token", NULL);
        handler_problem(call, res, PROBLEM_UNAUTHORIZED,
                        "the bearer token is invalid or expired");
        return false;
    }
    if ((call->principal.scopes & scope) == 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "the token lacks the scope %s",
                 auth_scope_name(scope));
        handler_challenge(res, "insufficient_scope", auth_scope_name(scope));
        handler_problem(call, res, PROBLEM_FORBIDDEN, detail);
        return false;
    }
    return true;
}

void handler_store_failure(struct app *app, struct call *call,
                           struct response *res, enum store_status status)
{
    log_emit(&app->log, LOG_ERROR, &call->trace, "database failure",
             (struct log_field[]){LOG_INT("store_status", status),
                                  LOG_STR("error", store_last_error(app->store))},
             2);
    switch (status) {
    case STORE_BUSY:
        (void)response_add_header(res, "Retry-After", "1");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "the database is busy; retry shortly");
        break;
    case STORE_FULL:
        (void)response_add_header(res, "Retry-After", "30");
        handler_problem(call, res, PROBLEM_UNAVAILABLE,
                        "storage is unavailable; nothing was written");
        break;
    default:
        handler_problem(call, res, PROBLEM_INTERNAL,
                        "the server could not complete the request");
        break;
    }
}

long long handler_span_start(const struct app *app)
{
    return app->spans.emit ? clock_now_ns() : 0;
}

void handler_db_span(struct app *app, const struct call *call,
                     const char *operation, long long start_ns,
                     enum store_status status)
{
    if (app->spans.emit == NULL)
        return;
    struct span s;
    memset(&s, 0, sizeof s);
    memcpy(s.trace_id, call->trace.trace_id, sizeof s.trace_id);
    if (trace_random_hex(s.span_id, 8) != 0)
        return;
    memcpy(s.parent_span_id, call->trace.span_id, sizeof s.parent_span_id);
    snprintf(s.name, sizeof s.name, "%s %s", store_engine(app->store), operation);
    s.kind = SPAN_KIND_CLIENT;
    s.start_ns = start_ns;
    s.end_ns = clock_now_ns();
    s.error = status == STORE_BUSY || status == STORE_FULL || status == STORE_ERROR;
    span_add_str(&s, "db.system", store_engine(app->store));
    span_add_str(&s, "db.operation.name", operation);
    app->spans.emit(app->spans.ctx, &s);
}
