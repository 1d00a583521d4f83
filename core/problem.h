/*
 * problem.h - RFC 9457 problem details, the one shape of every error.
 *
 * Errors travel through the code as a problem kind plus a detail string and
 * are rendered once, here, into an application/problem+json response.  The
 * kinds are the contract's error table; nothing else may appear on the wire.
 */
#ifndef ORDERS_PROBLEM_H
#define ORDERS_PROBLEM_H

#include "http.h"

enum problem_kind {
    PROBLEM_VALIDATION,          /* 400 validation_error */
    PROBLEM_UNAUTHORIZED,        /* 401 unauthorized */
    PROBLEM_FORBIDDEN,           /* 403 forbidden */
    PROBLEM_NOT_FOUND,           /* 404 not_found */
    PROBLEM_METHOD_NOT_ALLOWED,  /* 405 method_not_allowed */
    PROBLEM_CONFLICT,            /* 409 conflict */
    PROBLEM_PAYLOAD_TOO_LARGE,   /* 413 payload_too_large */
    PROBLEM_UNSUPPORTED_MEDIA,   /* 415 unsupported_media_type */
    PROBLEM_INTERNAL,            /* 500 internal_error */
    PROBLEM_UNAVAILABLE,         /* 503 service_unavailable */
    PROBLEM_TIMEOUT,             /* 504 gateway_timeout */
    PROBLEM_PRECONDITION_FAILED, /* 412 precondition_failed (If-Match) */
    PROBLEM_IDEMPOTENCY_REUSED,  /* 422 idempotency_key_reused: other body */
    PROBLEM_IDEMPOTENCY_IN_PROGRESS, /* 409 idempotency_key_in_progress */
};

int problem_status(enum problem_kind kind);
const char *problem_type(enum problem_kind kind);
const char *problem_title(enum problem_kind kind);

/* Fills res with the problem document.  detail may be NULL (then the title
 * is used); instance is the request path.  Headers already added to res
 * (Allow, WWW-Authenticate, Retry-After) are kept. */
void problem_render(struct response *res, enum problem_kind kind,
                    const char *detail, const char *instance);

#endif
