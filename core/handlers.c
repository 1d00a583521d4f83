#include "handlers.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void handler_problem(struct call *call, struct response *res,
                     enum problem_kind kind, const char *detail)
{
    problem_render(res, kind, detail, call->req->path);
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
    if (req->authorization_count > 1) {
        handler_challenge(res, "invalid_request", NULL);
        handler_problem(call, res, PROBLEM_VALIDATION,
                        "more than one Authorization header");
        return false;
    }
    const char *why = NULL;
    enum auth_result r = auth_verify(app->auth, req->authorization, time(NULL),
                                     &call->principal, &why);
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
