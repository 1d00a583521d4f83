/*
 * auth.h - OAuth2 bearer JWT verification: the verifier a worker builds
 * once from its settings and asks on every request.
 *
 * The work is split by job, one file each:
 *   auth_bearer.c  the Authorization header (RFC 6750 2.1)
 *   auth_jws.c     the token's compact form, its header and signature
 *   auth_claims.c  exp/nbf/iat, iss/aud, scopes (RFC 7519 4.1)
 *   auth_cache.c   tokens already accepted
 *   auth.c         the verifier that strings them together
 * and the cryptography is libcrypto's (crypto.h).  Minting tokens is not
 * the service's job: tools/orders-token.c does it for developers.
 *
 * libjwt 1.10 (Debian 12) verifies a signature with whatever algorithm the
 * token's header names and checks no time claim, so everything that makes a
 * token acceptable is decided here: the algorithm is pinned by configuration
 * (never read from the token), `exp` is required and numeric, `nbf`/`iat`
 * get a small leeway, `iss`/`aud` are compared when configured, and scopes
 * are read from `scope` (space-separated), `scp` (string or array) or
 * `scopes` (array).  Scope names are exact and case-sensitive.
 */
#ifndef ORDERS_AUTH_H
#define ORDERS_AUTH_H

#include <stddef.h>
#include <time.h>

enum auth_scope {
    AUTH_SCOPE_READ = 1u << 0,  /* orders.read */
    AUTH_SCOPE_WRITE = 1u << 1, /* orders.write */
};

#define AUTH_LEEWAY_SECONDS 30
#define AUTH_SUB_MAX 128

struct auth_verifier; /* opaque; built once per process, reused per request */

struct auth_settings {
    const unsigned char *secret; /* HMAC key */
    size_t secret_len;
    const char *algorithm;       /* "HS256" (default), "HS384", "HS512" */
    const char *issuer;          /* NULL: not checked */
    const char *audience;        /* NULL: not checked */
    long leeway_seconds;
};

enum auth_result {
    AUTH_OK,
    AUTH_NO_CREDENTIALS, /* header absent or empty: no error= attribute */
    AUTH_INVALID_TOKEN,  /* anything wrong with what was presented */
    AUTH_BAD_REQUEST,    /* more than one Authorization header */
};

struct auth_principal {
    char sub[AUTH_SUB_MAX + 1]; /* "" when the token has none */
    unsigned scopes;            /* enum auth_scope bits */
};

/* Returns NULL with a message in err when the settings are unusable
 * (unknown algorithm, empty secret). */
struct auth_verifier *auth_verifier_new(const struct auth_settings *s,
                                        char *err, size_t errlen);
void auth_verifier_free(struct auth_verifier *v);

/* Verifies an Authorization header value ("Bearer <jwt>", scheme
 * case-insensitive); header_count is how many Authorization headers the
 * request had.  why, if not NULL, gets a short static reason for logs
 * (never token contents).  On anything but AUTH_OK, out is empty. */
enum auth_result auth_verify(const struct auth_verifier *v,
                             const char *authorization, int header_count,
                             time_t now, struct auth_principal *out,
                             const char **why);

const char *auth_scope_name(enum auth_scope scope);

#endif
