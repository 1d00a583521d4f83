/*
 * auth.h - OAuth2 bearer JWT verification: the verifier a worker builds
 * once from its settings and asks on every request.
 *
 * The work is split by job, one file each:
 *   auth_bearer.c  the Authorization header (RFC 6750 2.1)
 *   auth_jws.c     the token's compact form, its header, signature, claims
 *   auth_jwk.c     the algorithms, and JSON Web Key Sets (RFC 7517)
 *   auth_claims.c  exp/nbf/iat, iss/aud, scopes (RFC 7519 4.1)
 *   auth_cache.c   tokens already accepted
 *   auth.c         the verifier that strings them together
 * and the cryptography is libcrypto's (crypto.h).  Minting tokens is not
 * the service's job: tools/orders-token.c does it for developers.
 *
 * Two ways to trust a token.  With a shared secret (JWT_SECRET_KEY), HMAC
 * (HS256/384/512).  With an identity provider's key set (JWT_JWKS_URL or
 * JWT_JWKS_FILE), RSA, RSA-PSS, ECDSA or Ed25519 signatures, the key
 * chosen by the token's kid.  Either way the algorithms are an allow-list
 * from configuration: the token's "alg" must be in it, byte for byte, and
 * fit the key (RFC 8725 3.1), so "none", an HMAC "signed" with a public
 * key, or an ECDSA token against an RSA key are all refused.  `exp` is
 * required and numeric, `nbf`/`iat` get a small leeway, `iss`/`aud` are
 * compared when configured, and scopes are read from `scope`
 * (space-separated), `scp` (string or array) or `scopes` (array), exact
 * and case-sensitive.  libjwt (Debian's 1.10) is not used: it knows no
 * JWKS, PS256 or EdDSA, refuses `typ: at+jwt` and checks no claim.
 */
#ifndef ORDERS_AUTH_H
#define ORDERS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum auth_scope {
    AUTH_SCOPE_READ = 1u << 0,  /* orders.read */
    AUTH_SCOPE_WRITE = 1u << 1, /* orders.write */
};

#define AUTH_LEEWAY_SECONDS 30
#define AUTH_SUB_MAX 128

struct auth_verifier; /* opaque; built once per process, reused per request */

/*
 * Where a verifier gets its JSON Web Key Set: in the service, the copy the
 * pool master fetched for every worker (fcgi/jwks_share.c); in tests,
 * anything that fills these.  A verifier asks generation() on every
 * request, so it must be cheap (a load from shared memory).
 */
struct auth_key_source {
    void *ctx;
    /* The current document's generation; 0: none fetched yet. */
    uint64_t (*generation)(void *ctx);
    /* Copies the current document into buf (cap bytes); returns its
     * generation (0: none, or it does not fit). */
    uint64_t (*read)(void *ctx, char *buf, size_t cap, size_t *len);
    /* Asks for a fetch now, which the fetcher may refuse when it fetched
     * too recently, and waits at most max_ms for it to end; returns the
     * generation then current.  Returns at once when no fetch will come. */
    uint64_t (*refresh)(void *ctx, int max_ms);
};

struct auth_settings {
    const unsigned char *secret; /* HMAC key; unused with a key source */
    size_t secret_len;
    /* Comma-separated allow-list (JWT_ALGORITHMS); NULL: algorithm. */
    const char *algorithms;
    const char *algorithm;       /* JWT_ALGORITHM; NULL: HS256, or
                                    RS256,ES256 with a key source */
    const struct auth_key_source *keys; /* NULL: HMAC with secret */
    int key_wait_ms;             /* longest wait for a key set fetch */
    const char *issuer;          /* NULL: not checked; required with keys */
    const char *audience;        /* NULL: not checked */
    long leeway_seconds;
};

enum auth_result {
    AUTH_OK,
    AUTH_NO_CREDENTIALS, /* header absent or empty: no error= attribute */
    AUTH_INVALID_TOKEN,  /* anything wrong with what was presented */
    AUTH_BAD_REQUEST,    /* more than one Authorization header */
    AUTH_UNAVAILABLE,    /* no key set fetched yet: try again later */
};

struct auth_principal {
    char sub[AUTH_SUB_MAX + 1]; /* "" when the token has none */
    unsigned scopes;            /* enum auth_scope bits */
};

/* Returns NULL with a message in err when the settings are unusable
 * (unknown algorithm, empty secret, a key source without an issuer). */
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

/* Whether the verifier can verify anything: always with a secret; with a
 * key source once a key set has been fetched (GET /readyz). */
bool auth_ready(const struct auth_verifier *v);

const char *auth_scope_name(enum auth_scope scope);

#endif
