/*
 * auth.h - OAuth2 bearer JWT verification.
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
 * case-insensitive).  why, if not NULL, gets a short static reason for logs
 * (never token contents). */
enum auth_result auth_verify(const struct auth_verifier *v,
                             const char *authorization, time_t now,
                             struct auth_principal *out, const char **why);

const char *auth_scope_name(enum auth_scope scope);

/* Mints a token (used by the token tool and tests).  scopes is the
 * space-separated `scope` claim; iss and aud are added from the settings
 * when set, so the token passes a verifier built from the same settings.
 * Returns a malloc'ed string or NULL. */
char *auth_mint(const struct auth_settings *s, const char *sub,
                const char *scopes, time_t now, long lifetime_seconds);

#endif
