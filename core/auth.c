/*
 * auth.c - the verifier: settings checked once, then per request the
 * bearer header, the key set's generation, the cache, the compact form,
 * the allowed algorithm, the signature and the claims, in that order (see
 * auth.h for who does what).
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
#include "auth_jwk.h"
#include "auth_jws.h"
#include "crypto.h"

/* RFC 7518 3.2 wants a key at least as long as the hash; 256 bits is the
 * floor for every HS algorithm here and matches CONFIG_MIN_SECRET_LEN. */
#define AUTH_SECRET_MIN 32
#define AUTH_LEEWAY_MAX 3600
#define AUTH_ALLOWED_MAX 16
#define AUTH_WAIT_MAX_MS 10000

struct auth_verifier {
    struct auth_cache *cache;
    const struct auth_alg *allowed[AUTH_ALLOWED_MAX];
    size_t nallowed;
    struct crypto_hmac *hmac[3]; /* by enum crypto_hash, for allowed HS */
    /* With a key source: the set last read, and its generation.  Mutable
     * through a const verifier: one worker, one request at a time. */
    const struct auth_key_source *keys;
    struct auth_keyset *keyset;
    uint64_t keyset_generation;
    char *doc; /* AUTH_JWKS_MAX bytes, for reading the set */
    int key_wait_ms;
    char *issuer;
    char *audience;
    long leeway;
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, arg);
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

/* The allow-list: names exact and case-sensitive (JWT_ALGORITHMS=rs256 is
 * refused at start rather than guessed at), each of the kind the settings
 * can verify: HMAC with a secret, public-key algorithms with a key set. */
static bool parse_allowed(struct auth_verifier *v, const struct auth_settings *s,
                          char *err, size_t errlen)
{
    const char *list = s->algorithms;
    if (list == NULL || list[0] == '\0')
        list = s->algorithm;
    if (list == NULL || list[0] == '\0')
        list = s->keys != NULL ? "RS256,ES256" : "HS256";
    bool want_hmac = s->keys == NULL;
    const char *p = list;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        char name[32];
        if (n == 0 || n >= sizeof name) {
            set_err(err, errlen, "JWT_ALGORITHMS (or JWT_ALGORITHM): '%s' is not a comma-separated list", list);
            return false;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        const struct auth_alg *a = auth_alg_named(name);
        if (a == NULL) {
            set_err(err, errlen, "JWT_ALGORITHMS (or JWT_ALGORITHM): unsupported algorithm "
                    "'%s' (want HS256/384/512, RS256/384/512, PS256/384/512, ES256, "
                    "ES384 or EdDSA, spelt so)", name);
            return false;
        }
        if ((a->family == AUTH_ALG_HMAC) != want_hmac) {
            set_err(err, errlen, want_hmac
                    ? "JWT_ALGORITHMS (or JWT_ALGORITHM): %s needs a key set "
                      "(JWT_JWKS_URL or JWT_JWKS_FILE)"
                    : "JWT_ALGORITHMS: %s needs a shared secret, not a key set", name);
            return false;
        }
        bool seen = false;
        for (size_t i = 0; i < v->nallowed; i++)
            seen = seen || v->allowed[i] == a;
        if (!seen) {
            if (v->nallowed == AUTH_ALLOWED_MAX) {
                set_err(err, errlen, "JWT_ALGORITHMS: too many algorithms in '%s'", list);
                return false;
            }
            v->allowed[v->nallowed++] = a;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static const char *settings_problem(const struct auth_settings *s)
{
    if (s->leeway_seconds < 0 || s->leeway_seconds > AUTH_LEEWAY_MAX)
        return "JWT leeway out of range (0..3600 seconds)";
    if (s->keys != NULL) {
        if (s->issuer == NULL || s->issuer[0] == '\0')
            return "JWT_ISSUER is required with a key set (JWT_JWKS_URL or JWT_JWKS_FILE)";
        if (s->key_wait_ms < 0 || s->key_wait_ms > AUTH_WAIT_MAX_MS)
            return "key set wait out of range (0..10000 ms)";
        return NULL;
    }
    if (s->secret == NULL || s->secret_len == 0)
        return "empty JWT secret";
    if (s->secret_len < AUTH_SECRET_MIN)
        return "JWT secret shorter than 32 bytes";
    if (s->secret_len > INT_MAX)
        return "JWT secret too long";
    return NULL;
}

struct auth_verifier *auth_verifier_new(const struct auth_settings *s,
                                        char *err, size_t errlen)
{
    const char *problem = s == NULL ? "no auth settings" : settings_problem(s);
    if (problem != NULL) {
        set_err(err, errlen, "%s", problem);
        return NULL;
    }
    if (crypto_init() != 0) {
        set_err(err, errlen, "%s", "libcrypto cannot provide SHA-2 and HMAC");
        return NULL;
    }
    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v == NULL) {
        set_err(err, errlen, "%s", "out of memory");
        return NULL;
    }
    if (!parse_allowed(v, s, err, errlen)) {
        auth_verifier_free(v);
        return NULL;
    }
    bool ok = (v->cache = auth_cache_new()) != NULL &&
              dup_optional(s->issuer, &v->issuer) &&
              dup_optional(s->audience, &v->audience);
    for (size_t i = 0; ok && i < v->nallowed; i++) {
        enum crypto_hash h = v->allowed[i]->hash;
        if (v->allowed[i]->family == AUTH_ALG_HMAC && v->hmac[h] == NULL)
            ok = (v->hmac[h] = crypto_hmac_new(h, s->secret, s->secret_len)) != NULL;
    }
    if (ok && s->keys != NULL)
        ok = (v->doc = malloc(AUTH_JWKS_MAX)) != NULL;
    if (!ok) {
        auth_verifier_free(v);
        set_err(err, errlen, "%s", "out of memory");
        return NULL;
    }
    v->keys = s->keys;
    v->key_wait_ms = s->key_wait_ms;
    v->leeway = s->leeway_seconds;
    return v;
}

void auth_verifier_free(struct auth_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < 3; i++)
        crypto_hmac_free(v->hmac[i]);
    auth_cache_free(v->cache);
    auth_keyset_free(v->keyset);
    free(v->doc);
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

/*
 * Takes up the key set the source now has, when it changed.  The source
 * only publishes sets that parsed (the fetcher refuses a bad one and keeps
 * the last good), so a parse failure here means a torn or odd read: the
 * set in hand stays, and the next request tries again.  Every cached token
 * is forgotten with the old set: one whose key was removed must fail.
 */
static void sync_keys(struct auth_verifier *v)
{
    uint64_t gen = v->keys->generation(v->keys->ctx);
    if (gen == 0 || gen == v->keyset_generation)
        return;
    size_t len = 0;
    gen = v->keys->read(v->keys->ctx, v->doc, AUTH_JWKS_MAX, &len);
    if (gen == 0 || gen == v->keyset_generation)
        return;
    struct auth_keyset *set = auth_keyset_parse(v->doc, len, NULL, 0);
    if (set == NULL)
        return;
    auth_keyset_free(v->keyset);
    v->keyset = set;
    v->keyset_generation = gen;
    auth_cache_clear(v->cache);
}

bool auth_ready(const struct auth_verifier *v)
{
    if (v == NULL)
        return false;
    if (v->keys == NULL)
        return true;
    sync_keys((struct auth_verifier *)v);
    return v->keyset != NULL;
}

static const struct auth_alg *allowed_alg(const struct auth_verifier *v,
                                          const char *name)
{
    for (size_t i = 0; i < v->nallowed; i++)
        if (strcmp(v->allowed[i]->name, name) == 0)
            return v->allowed[i];
    return NULL;
}

/*
 * The key for a token: by kid from the set in hand; a kid the set does not
 * have (a rotation the pool has not seen yet) asks the fetcher for the set
 * again and waits a bounded time for it.  The fetcher decides whether that
 * fetch happens (at most one per JWT_JWKS_MIN_REFRESH_S), so a stream of
 * tokens with made-up kids costs the identity provider nothing and each
 * such request at most key_wait_ms, usually nothing.
 */
static enum auth_result find_key(struct auth_verifier *v,
                                 const struct auth_jws_header *hdr,
                                 const struct auth_alg *alg,
                                 const struct auth_key **key, const char **why)
{
    const char *kid = hdr->has_kid ? hdr->kid : NULL;
    *key = auth_keyset_find(v->keyset, kid, alg);
    if (*key == NULL) {
        v->keys->refresh(v->keys->ctx, v->key_wait_ms);
        sync_keys(v);
        *key = auth_keyset_find(v->keyset, kid, alg);
    }
    if (*key != NULL)
        return AUTH_OK;
    if (v->keyset == NULL) {
        *why = "no key set fetched yet";
        return AUTH_UNAVAILABLE;
    }
    *why = "no key in the set for the token's kid and alg";
    return AUTH_INVALID_TOKEN;
}

/* The full check: shape, header, allowed algorithm, signature, claims. */
static enum auth_result verify_full(struct auth_verifier *v, const char *tok,
                                    size_t len, time_t now,
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
    const struct auth_alg *alg = allowed_alg(v, hdr.alg);
    if (alg == NULL) {
        *why = "token algorithm not accepted";
        return AUTH_INVALID_TOKEN;
    }
    bool signed_ok;
    if (alg->family == AUTH_ALG_HMAC) {
        signed_ok = auth_jws_hmac_ok(v->hmac[alg->hash], &jws);
    } else {
        const struct auth_key *key;
        enum auth_result r = find_key(v, &hdr, alg, &key, why);
        if (r != AUTH_OK)
            return r;
        signed_ok = auth_jws_signature_ok(key, alg, &jws);
    }
    if (!signed_ok) {
        *why = "bad token signature or encoding";
        return AUTH_INVALID_TOKEN;
    }
    cJSON *claims = auth_jws_claims(&jws, why);
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

enum auth_result auth_verify(const struct auth_verifier *cv,
                             const char *authorization, int header_count,
                             time_t now, struct auth_principal *out,
                             const char **why)
{
    const char *dummy_why;
    if (why == NULL)
        why = &dummy_why;
    *why = NULL;
    if (out == NULL || cv == NULL) {
        *why = "verifier not configured";
        return AUTH_INVALID_TOKEN;
    }
    memset(out, 0, sizeof *out);
    struct auth_verifier *v = (struct auth_verifier *)cv;

    const char *tok = NULL;
    size_t len = 0;
    enum auth_result r = auth_bearer_token(authorization, header_count, &tok,
                                           &len, why);
    if (r != AUTH_OK)
        return r;
    if (v->keys != NULL)
        sync_keys(v);

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
