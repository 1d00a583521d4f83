/*
 * auth.c - the verifier: settings checked once, then per request the
 * bearer header, the cache, the compact form, the pinned algorithm, the
 * MAC and the claims, in that order (see auth.h for who does what).
 *
 * libjwt 1.10 takes the algorithm from the token's header, and its name
 * parsing is case-insensitive ("hs256", "NONE").  So the header is decoded
 * here first and its "alg" must equal the configured one byte for byte,
 * in a header with no duplicate member (libjwt's JSON parser, jansson,
 * keeps the last of duplicate members where ours, cJSON, finds the
 * first), and the MAC is always computed with the configured algorithm,
 * never one the token names.  libjwt then decodes the claims it would
 * have accepted (auth_jws_claims).
 */
#include "auth.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_bearer.h"
#include "auth_cache.h"
#include "auth_claims.h"
#include "auth_jws.h"
#include "crypto.h"

/* RFC 7518 3.2 wants a key at least as long as the hash; 256 bits is the
 * floor for every HS algorithm here and matches CONFIG_MIN_SECRET_LEN. */
#define AUTH_SECRET_MIN 32
#define AUTH_LEEWAY_MAX 3600

struct auth_verifier {
    struct auth_cache *cache;
    struct crypto_hmac *key;  /* the secret, keyed for the algorithm */
    const char *alg_name;     /* canonical spelling, static */
    char *issuer;
    char *audience;
    long leeway;
};

static const struct {
    const char *name;
    enum crypto_hash hash;
} hmac_algs[] = {
    {"HS256", CRYPTO_SHA256},
    {"HS384", CRYPTO_SHA384},
    {"HS512", CRYPTO_SHA512},
};

/* Exact and case-sensitive: JWT_ALGORITHM=hs256 is refused at start rather
 * than guessed at.  Only HMAC: there is no public-key configuration. */
static bool alg_lookup(const char *name, enum crypto_hash *hash,
                       const char **canon)
{
    if (name == NULL)
        name = "HS256";
    for (size_t i = 0; i < sizeof hmac_algs / sizeof hmac_algs[0]; i++) {
        if (strcmp(name, hmac_algs[i].name) == 0) {
            *hash = hmac_algs[i].hash;
            *canon = hmac_algs[i].name;
            return true;
        }
    }
    return false;
}

static const char *settings_problem(const struct auth_settings *s,
                                    enum crypto_hash *hash, const char **canon)
{
    if (s == NULL)
        return "no auth settings";
    if (!alg_lookup(s->algorithm, hash, canon))
        return "unsupported JWT algorithm (want HS256, HS384 or HS512)";
    if (s->secret == NULL || s->secret_len == 0)
        return "empty JWT secret";
    if (s->secret_len < AUTH_SECRET_MIN)
        return "JWT secret shorter than 32 bytes";
    if (s->secret_len > INT_MAX)
        return "JWT secret too long";
    if (s->leeway_seconds < 0 || s->leeway_seconds > AUTH_LEEWAY_MAX)
        return "JWT leeway out of range (0..3600 seconds)";
    return NULL;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Empty issuer/audience strings count as unset: an operator who exports
 * JWT_AUDIENCE= means "no audience", not "audience is the empty string". */
static bool dup_optional(const char *src, char **dst)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0')
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

struct auth_verifier *auth_verifier_new(const struct auth_settings *s,
                                        char *err, size_t errlen)
{
    enum crypto_hash hash;
    const char *canon;
    const char *problem = settings_problem(s, &hash, &canon);
    if (problem != NULL) {
        set_err(err, errlen, problem);
        return NULL;
    }
    if (crypto_init() != 0) {
        set_err(err, errlen, "libcrypto cannot provide SHA-2 and HMAC");
        return NULL;
    }
    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    v->key = crypto_hmac_new(hash, s->secret, s->secret_len);
    v->cache = auth_cache_new();
    if (v->key == NULL || v->cache == NULL ||
        !dup_optional(s->issuer, &v->issuer) ||
        !dup_optional(s->audience, &v->audience)) {
        auth_verifier_free(v);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    v->alg_name = canon;
    v->leeway = s->leeway_seconds;
    return v;
}

void auth_verifier_free(struct auth_verifier *v)
{
    if (v == NULL)
        return;
    crypto_hmac_free(v->key);
    auth_cache_free(v->cache);
    free(v->issuer);
    free(v->audience);
    free(v);
}

const char *auth_scope_name(enum auth_scope scope)
{
    switch (scope) {
    case AUTH_SCOPE_READ:
        return "orders.read";
    case AUTH_SCOPE_WRITE:
        return "orders.write";
    }
    return "";
}

/* The full check: shape, pinned header, signature, every claim. */
static enum auth_result verify_full(const struct auth_verifier *v,
                                    const char *tok, size_t len, time_t now,
                                    struct auth_principal *out,
                                    struct auth_times *times, const char **why)
{
    struct auth_jws jws;
    struct auth_jws_header hdr;
    if (!auth_jws_split(tok, len, &jws)) {
        *why = "malformed token";
        return AUTH_INVALID_TOKEN;
    }
    if (!auth_jws_read_header(&jws, &hdr, why))
        return AUTH_INVALID_TOKEN;
    if (strcmp(hdr.alg, v->alg_name) != 0) {
        *why = "token algorithm not accepted";
        return AUTH_INVALID_TOKEN;
    }
    if (!auth_jws_hmac_ok(v->key, &jws)) {
        *why = "bad token signature or encoding";
        return AUTH_INVALID_TOKEN;
    }
    cJSON *claims = auth_jws_claims(tok, len, why);
    if (claims == NULL)
        return AUTH_INVALID_TOKEN;
    struct auth_claim_rules rules = {
        .issuer = v->issuer,
        .audience = v->audience,
        .leeway = v->leeway,
    };
    enum auth_result r = auth_claims_check(&rules, claims, now, out, times, why);
    cJSON_Delete(claims);
    return r;
}

enum auth_result auth_verify(const struct auth_verifier *v,
                             const char *authorization, int header_count,
                             time_t now, struct auth_principal *out,
                             const char **why)
{
    const char *dummy_why;
    if (why == NULL)
        why = &dummy_why;
    *why = NULL;
    if (out == NULL || v == NULL) {
        *why = "verifier not configured";
        return AUTH_INVALID_TOKEN;
    }
    memset(out, 0, sizeof *out);

    const char *tok = NULL;
    size_t len = 0;
    enum auth_result r = auth_bearer_token(authorization, header_count, &tok,
                                           &len, why);
    if (r != AUTH_OK)
        return r;

    struct auth_times times;
    if (auth_cache_lookup(v->cache, tok, len, out, &times)) {
        if (!auth_times_ok(&times, v->leeway, now, why)) {
            memset(out, 0, sizeof *out);
            return AUTH_INVALID_TOKEN;
        }
        *why = "ok";
        return AUTH_OK;
    }
    r = verify_full(v, tok, len, now, out, &times, why);
    if (r != AUTH_OK) {
        memset(out, 0, sizeof *out);
        return r;
    }
    *why = "ok";
    auth_cache_store(v->cache, tok, len, out, &times);
    return AUTH_OK;
}
