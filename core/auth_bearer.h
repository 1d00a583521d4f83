/*
 * auth_bearer.h - the Authorization request header, as RFC 6750 2.1 reads
 * it: where the bearer token is, or why there is none.
 *
 * Only the header's syntax is decided here; what the token says is for
 * auth_jws.h and auth_claims.h.
 */
#ifndef ORDERS_AUTH_BEARER_H
#define ORDERS_AUTH_BEARER_H

#include <stddef.h>

#include "auth.h"

/* A real token is a few hundred bytes (an identity provider's RSA-signed
 * one a few KiB); the bound keeps the work per request, and the fuzzer's
 * search space, small. */
#define AUTH_TOKEN_MAX 8192

/*
 * header: the value of the Authorization header, NULL when absent;
 * count: how many Authorization headers the request carried.
 *
 * AUTH_OK: *tok and *len point into header at the token (not NUL-terminated).
 * AUTH_NO_CREDENTIALS: no header, or one of only whitespace.
 * AUTH_BAD_REQUEST: more than one header: a request with two credentials
 *   is malformed (RFC 6750 3.1 "invalid_request"), whichever the proxy
 *   would have passed on.
 * AUTH_INVALID_TOKEN: another scheme, an empty or over-long token.
 * why gets a short static reason for logs (never header contents).
 */
enum auth_result auth_bearer_token(const char *header, int count,
                                   const char **tok, size_t *len,
                                   const char **why);

#endif
