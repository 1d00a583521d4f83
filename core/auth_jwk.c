/*
 * auth_jwk.c - JWS algorithms and JSON Web Key Sets (see auth_jwk.h).
 */
#include "auth_jwk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const struct auth_alg auth_algs[] = {
    {"HS256", AUTH_ALG_HMAC, CRYPTO_SHA256, CRYPTO_KEY_RSA},
    {"HS384", AUTH_ALG_HMAC, CRYPTO_SHA384, CRYPTO_KEY_RSA},
    {"HS512", AUTH_ALG_HMAC, CRYPTO_SHA512, CRYPTO_KEY_RSA},
    {"RS256", AUTH_ALG_RSA_PKCS1, CRYPTO_SHA256, CRYPTO_KEY_RSA},
    {"RS384", AUTH_ALG_RSA_PKCS1, CRYPTO_SHA384, CRYPTO_KEY_RSA},
    {"RS512", AUTH_ALG_RSA_PKCS1, CRYPTO_SHA512, CRYPTO_KEY_RSA},
    {"PS256", AUTH_ALG_RSA_PSS, CRYPTO_SHA256, CRYPTO_KEY_RSA},
    {"PS384", AUTH_ALG_RSA_PSS, CRYPTO_SHA384, CRYPTO_KEY_RSA},
    {"PS512", AUTH_ALG_RSA_PSS, CRYPTO_SHA512, CRYPTO_KEY_RSA},
    {"ES256", AUTH_ALG_ECDSA, CRYPTO_SHA256, CRYPTO_KEY_P256},
    {"ES384", AUTH_ALG_ECDSA, CRYPTO_SHA384, CRYPTO_KEY_P384},
    {"EdDSA", AUTH_ALG_EDDSA, CRYPTO_SHA512, CRYPTO_KEY_ED25519},
};

const struct auth_alg *auth_alg_named(const char *name)
{
    for (size_t i = 0; i < sizeof auth_algs / sizeof auth_algs[0]; i++)
        if (strcmp(name, auth_algs[i].name) == 0)
            return &auth_algs[i];
    return NULL;
}

enum crypto_sig_scheme auth_alg_scheme(const struct auth_alg *alg)
{
    switch (alg->family) {
    case AUTH_ALG_RSA_PSS:
        return CRYPTO_SIG_RSA_PSS;
    case AUTH_ALG_ECDSA:
        return CRYPTO_SIG_ECDSA;
    case AUTH_ALG_EDDSA:
        return CRYPTO_SIG_EDDSA;
    case AUTH_ALG_HMAC:
    case AUTH_ALG_RSA_PKCS1:
        break;
    }
    return CRYPTO_SIG_RSA_PKCS1;
}

/* ---- parsing ------------------------------------------------------------ */

enum jwk_verdict { JWK_USE, JWK_SKIP, JWK_BAD };

struct jwk_parse {
    char *err;
    size_t errlen;
    int index;
};

static enum jwk_verdict jwk_bad(struct jwk_parse *p, const char *why)
{
    snprintf(p->err, p->errlen, "key %d: %s", p->index, why);
    return JWK_BAD;
}

/* An optional string member: absent is fine, another type is not. */
static bool opt_string(const cJSON *jwk, const char *name, const char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(jwk, name);
    *out = NULL;
    if (m == NULL)
        return true;
    if (!cJSON_IsString(m))
        return false;
    *out = m->valuestring;
    return true;
}

/* A required base64url member, decoded into a fresh buffer. */
static unsigned char *b64_member(const cJSON *jwk, const char *name, size_t *len)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(jwk, name);
    if (!cJSON_IsString(m))
        return NULL;
    size_t n = strlen(m->valuestring);
    if (n == 0 || n > 4096)
        return NULL;
    unsigned char *buf = malloc(CRYPTO_B64URL_DECODED_MAX(n));
    if (buf != NULL && !crypto_b64url_decode(m->valuestring, n, buf, len)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static enum jwk_verdict jwk_rsa(struct jwk_parse *p, const cJSON *jwk,
                                struct auth_key *k)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = b64_member(jwk, "n", &nlen);
    unsigned char *e = b64_member(jwk, "e", &elen);
    enum jwk_verdict v = JWK_USE;
    if (n == NULL || e == NULL)
        v = jwk_bad(p, "RSA key without valid base64url n and e");
    else if ((k->key = crypto_pubkey_rsa(n, nlen, e, elen, AUTH_RSA_MIN_BITS)) == NULL) {
        /* A well-formed key that is merely short is skipped, not refused. */
        struct crypto_pubkey *small = crypto_pubkey_rsa(n, nlen, e, elen, 0);
        v = small != NULL ? JWK_SKIP : jwk_bad(p, "not a usable RSA public key");
        crypto_pubkey_free(small);
    }
    free(n);
    free(e);
    return v;
}

static enum jwk_verdict jwk_ec(struct jwk_parse *p, const cJSON *jwk,
                               const char *crv, struct auth_key *k)
{
    enum crypto_key_type curve;
    if (strcmp(crv, "P-256") == 0)
        curve = CRYPTO_KEY_P256;
    else if (strcmp(crv, "P-384") == 0)
        curve = CRYPTO_KEY_P384;
    else
        return JWK_SKIP; /* P-521, secp256k1...: not for us */
    size_t xlen = 0, ylen = 0;
    unsigned char *x = b64_member(jwk, "x", &xlen);
    unsigned char *y = b64_member(jwk, "y", &ylen);
    enum jwk_verdict v = JWK_USE;
    if (x == NULL || y == NULL ||
        (k->key = crypto_pubkey_ec(curve, x, xlen, y, ylen)) == NULL)
        v = jwk_bad(p, "EC key whose x and y are not a point of its curve");
    free(x);
    free(y);
    return v;
}

static enum jwk_verdict jwk_okp(struct jwk_parse *p, const cJSON *jwk,
                                const char *crv, struct auth_key *k)
{
    if (strcmp(crv, "Ed25519") != 0)
        return JWK_SKIP; /* Ed448, X25519, X448 */
    size_t xlen = 0;
    unsigned char *x = b64_member(jwk, "x", &xlen);
    enum jwk_verdict v = JWK_USE;
    if (x == NULL || (k->key = crypto_pubkey_ed25519(x, xlen)) == NULL)
        v = jwk_bad(p, "Ed25519 key without a valid 32-byte x");
    free(x);
    return v;
}

/* key_ops (RFC 7517 4.3), when present, must allow "verify". */
static enum jwk_verdict jwk_ops(struct jwk_parse *p, const cJSON *jwk)
{
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(jwk, "key_ops");
    if (ops == NULL)
        return JWK_USE;
    if (!cJSON_IsArray(ops))
        return jwk_bad(p, "key_ops is not an array");
    bool verify = false;
    for (const cJSON *o = ops->child; o != NULL; o = o->next) {
        if (!cJSON_IsString(o))
            return jwk_bad(p, "key_ops holds a non-string");
        verify = verify || strcmp(o->valuestring, "verify") == 0;
    }
    return verify ? JWK_USE : JWK_SKIP;
}

static enum jwk_verdict jwk_parse_one(struct jwk_parse *p, const cJSON *jwk,
                                      struct auth_key *k)
{
    memset(k, 0, sizeof *k);
    if (!cJSON_IsObject(jwk))
        return jwk_bad(p, "not a JSON object");
    const char *kty, *use, *kid, *alg, *crv;
    if (!opt_string(jwk, "kty", &kty) || kty == NULL)
        return jwk_bad(p, "no kty");
    if (!opt_string(jwk, "use", &use) || !opt_string(jwk, "kid", &kid) ||
        !opt_string(jwk, "alg", &alg) || !opt_string(jwk, "crv", &crv))
        return jwk_bad(p, "use, kid, alg or crv is not a string");
    if (kid != NULL && strlen(kid) > AUTH_KID_MAX)
        return jwk_bad(p, "kid longer than 255 bytes");
    enum jwk_verdict v = jwk_ops(p, jwk);
    if (v != JWK_USE)
        return v;
    /* Not a signing key, a private key, or an algorithm we do not know
     * (an encryption one, say): not for us. */
    if ((use != NULL && strcmp(use, "sig") != 0) ||
        cJSON_GetObjectItemCaseSensitive(jwk, "d") != NULL ||
        (alg != NULL && auth_alg_named(alg) == NULL))
        return JWK_SKIP;
    if (strcmp(kty, "RSA") == 0)
        v = jwk_rsa(p, jwk, k);
    else if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
        if (crv == NULL)
            return jwk_bad(p, "EC or OKP key without crv");
        v = kty[0] == 'E' ? jwk_ec(p, jwk, crv, k) : jwk_okp(p, jwk, crv, k);
    } else
        return JWK_SKIP; /* oct and anything newer */
    if (v != JWK_USE)
        return v;
    if (kid != NULL) {
        k->has_kid = true;
        strcpy(k->kid, kid);
    }
    if (alg != NULL)
        snprintf(k->alg, sizeof k->alg, "%s", alg);
    return JWK_USE;
}

struct auth_keyset *auth_keyset_parse(const char *doc, size_t len, char *err,
                                      size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (len > AUTH_JWKS_MAX) {
        snprintf(err, errlen, "larger than %d bytes", AUTH_JWKS_MAX);
        return NULL;
    }
    if (memchr(doc, '\0', len) != NULL) {
        snprintf(err, errlen, "not JSON (a NUL byte)");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(doc, len);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    struct auth_keyset *s = NULL;
    if (root == NULL || !cJSON_IsObject(root))
        snprintf(err, errlen, "not a JSON object");
    else if (!cJSON_IsArray(keys))
        snprintf(err, errlen, "no \"keys\" array");
    else if (cJSON_GetArraySize(keys) > AUTH_JWKS_KEYS_MAX)
        snprintf(err, errlen, "more than %d keys", AUTH_JWKS_KEYS_MAX);
    else if ((s = calloc(1, sizeof *s)) == NULL)
        snprintf(err, errlen, "out of memory");
    else {
        struct jwk_parse p = {.err = err, .errlen = errlen};
        for (const cJSON *jwk = keys->child; jwk != NULL; jwk = jwk->next, p.index++) {
            enum jwk_verdict v = jwk_parse_one(&p, jwk, &s->keys[s->count]);
            if (v == JWK_BAD) {
                auth_keyset_free(s);
                s = NULL;
                break;
            }
            if (v == JWK_USE)
                s->count++;
        }
    }
    cJSON_Delete(root);
    return s;
}

void auth_keyset_free(struct auth_keyset *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++)
        crypto_pubkey_free(s->keys[i].key);
    free(s);
}

static bool key_fits(const struct auth_key *k, const struct auth_alg *alg)
{
    return alg->family != AUTH_ALG_HMAC &&
           crypto_pubkey_type(k->key) == alg->key &&
           (k->alg[0] == '\0' || strcmp(k->alg, alg->name) == 0);
}

const struct auth_key *auth_keyset_find(const struct auth_keyset *s,
                                        const char *kid,
                                        const struct auth_alg *alg)
{
    if (s == NULL || alg == NULL)
        return NULL;
    const struct auth_key *found = NULL;
    for (size_t i = 0; i < s->count; i++) {
        const struct auth_key *k = &s->keys[i];
        if (kid != NULL && (!k->has_kid || strcmp(k->kid, kid) != 0))
            continue;
        if (!key_fits(k, alg))
            continue;
        if (kid != NULL)
            return k;
        if (found != NULL)
            return NULL; /* no kid and two candidates: which one is meant? */
        found = k;
    }
    return found;
}
