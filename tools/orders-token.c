/*
 * orders-token - mint a bearer token the local service will accept.
 *
 *   TOKEN=$(build/tools/orders-token)
 *   build/tools/orders-token --scopes orders.read --sub alice --exp-hours 0.25
 *   build/tools/orders-token --key idp.pem --alg ES256 --kid k1 \
 *       --iss https://idp.example --aud orders-api
 *   build/tools/orders-token --key idp.pem --kid k1 --jwks > jwks.json
 *
 * It reads the same settings the service reads (the secret from
 * JWT_SECRET_KEY, JWT_SECRET_FILE, $CREDENTIALS_DIRECTORY/jwt-secret or
 * $RUNTIME_DIR/jwt-secret; JWT_ALGORITHM; JWT_ISSUER; JWT_AUDIENCE), so a
 * token it prints is one the service verifies.  With --key it signs with
 * a PEM private key instead (RS256/384/512, PS256/384/512, ES256, ES384,
 * EdDSA), as an identity provider would, and --jwks prints the key set
 * that verifies those tokens, so that the identity-provider mode can be
 * run locally (JWT_JWKS_FILE).  stdout carries the token (or the key set)
 * and nothing else; every message goes to stderr and means exit status 1.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "auth_jwk.h"
#include "crypto.h"
#include "secret.h"
#include "settings.h"

/* A token for a dev loop, not a long-lived credential; ten years is only a
 * sanity bound on typos.  Negative values mint expired tokens for tests. */
#define MAX_EXP_HOURS (24.0 * 365 * 10)

struct options {
    char *scopes; /* space-separated, malloc'ed; "" means no scope claim */
    const char *sub;
    long lifetime;
    const char *key;  /* --key: a PEM private key; NULL: the HMAC secret */
    const char *alg;  /* --alg; NULL: JWT_ALGORITHM, or the key's usual one */
    const char *kid;  /* --kid */
    const char *iss;  /* --iss; NULL: JWT_ISSUER */
    const char *aud;  /* --aud; NULL: JWT_AUDIENCE */
    bool jwks;        /* --jwks: print the key set of --key instead */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: orders-token [--scopes S [S...]] [--sub SUB] [--exp-hours N]\n"
            "                    [--key FILE [--alg ALG] [--kid KID] [--jwks]]\n"
            "                    [--iss ISS] [--aud AUD]\n"
            "\n"
            "Prints a JWT for the Orders Service on stdout.\n"
            "  --scopes S...   scopes to grant (default: orders.read orders.write;\n"
            "                  none at all with a bare --scopes)\n"
            "  --sub SUB       subject (default: user-123)\n"
            "  --exp-hours N   lifetime in hours, may be fractional or negative\n"
            "                  (default: 1)\n"
            "  --key FILE      sign with this PEM private key (RSA, EC P-256/P-384,\n"
            "                  Ed25519) instead of the shared secret\n"
            "  --alg ALG       RS256/384/512, PS256/384/512, ES256, ES384, EdDSA\n"
            "                  (default: RS256, ES256, ES384 or EdDSA by key type)\n"
            "  --kid KID       the key id to put in the token's header\n"
            "  --jwks          print the JWKS holding the public half of --key\n"
            "  --iss, --aud    the iss and aud claims (default: JWT_ISSUER,\n"
            "                  JWT_AUDIENCE)\n"
            "\n"
            "Secret: JWT_SECRET_KEY, else the file JWT_SECRET_FILE, else\n"
            "$CREDENTIALS_DIRECTORY/jwt-secret, else $RUNTIME_DIR/jwt-secret\n"
            "(RUNTIME_DIR default ./var).  JWT_ALGORITHM (default HS256),\n"
            "JWT_ISSUER and JWT_AUDIENCE are honoured as the service does.\n");
}

static bool is_option(const char *arg)
{
    return strncmp(arg, "--", 2) == 0;
}

/* Joins argv[*i + 1 ...] up to the next option into one claim. */
static char *collect_scopes(int argc, char **argv, int *i)
{
    size_t len = 1;
    int j;
    for (j = *i + 1; j < argc && !is_option(argv[j]); j++)
        len += strlen(argv[j]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t at = 0;
    for (j = *i + 1; j < argc && !is_option(argv[j]); j++) {
        size_t n = strlen(argv[j]);
        if (n == 0)
            continue;
        if (at > 0)
            s[at++] = ' ';
        memcpy(s + at, argv[j], n);
        at += n;
    }
    s[at] = '\0';
    *i = j - 1;
    return s;
}

static bool parse_hours(const char *text, long *seconds)
{
    char *end;
    errno = 0;
    double h = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(h) ||
        h > MAX_EXP_HOURS || h < -MAX_EXP_HOURS)
        return false;
    *seconds = (long)(h * 3600.0);
    return true;
}

static bool replace_scopes(struct options *o, char *scopes)
{
    if (scopes == NULL) {
        fprintf(stderr, "orders-token: out of memory\n");
        return false;
    }
    free(o->scopes);
    o->scopes = scopes;
    return true;
}

/* Returns 0 to go on, 1 on a usage error, 2 when --help was answered. */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 2;
        } else if (strcmp(a, "--scopes") == 0) {
            if (!replace_scopes(o, collect_scopes(argc, argv, &i)))
                return 1;
        } else if (strcmp(a, "--sub") == 0 && i + 1 < argc) {
            o->sub = argv[++i];
        } else if (strcmp(a, "--key") == 0 && i + 1 < argc) {
            o->key = argv[++i];
        } else if (strcmp(a, "--alg") == 0 && i + 1 < argc) {
            o->alg = argv[++i];
        } else if (strcmp(a, "--kid") == 0 && i + 1 < argc) {
            o->kid = argv[++i];
        } else if (strcmp(a, "--iss") == 0 && i + 1 < argc) {
            o->iss = argv[++i];
        } else if (strcmp(a, "--aud") == 0 && i + 1 < argc) {
            o->aud = argv[++i];
        } else if (strcmp(a, "--jwks") == 0) {
            o->jwks = true;
        } else if (strcmp(a, "--exp-hours") == 0 && i + 1 < argc) {
            if (!parse_hours(argv[++i], &o->lifetime)) {
                fprintf(stderr, "orders-token: --exp-hours wants a number of "
                                "hours within +-87600, not '%s'\n", argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "orders-token: unexpected argument '%s'%s\n", a,
                    is_option(a) && i + 1 == argc ? " (missing value)" : "");
            usage(stderr);
            return 1;
        }
    }
    if (o->jwks && o->key == NULL) {
        fprintf(stderr, "orders-token: --jwks needs --key\n");
        return 1;
    }
    return 0;
}

/* The key the service would use, from the same sources (common/secret.h);
 * never generated here: a key the service does not have is no use. */
static unsigned char *load_secret(size_t *len)
{
    struct secret key;
    char err[512];
    if (secret_load(settings_env("RUNTIME_DIR"), SECRET_READ, &key, err, sizeof err) != 0) {
        fprintf(stderr, "orders-token: %s\n", err);
        return NULL;
    }
    *len = key.len;
    return key.bytes;
}

/* Builds a throw-away verifier only to have the settings checked the way
 * the service checks them, with the same messages. */
static bool settings_usable(const struct auth_settings *s)
{
    char err[160];
    struct auth_verifier *v = auth_verifier_new(s, err, sizeof err);
    if (v == NULL) {
        fprintf(stderr, "orders-token: %s\n", err);
        return false;
    }
    auth_verifier_free(v);
    return true;
}

/* ---- minting (RFC 7515 7.1: the compact serialisation) ---------------- */

/* The claims: iss and aud from the options or the service's settings, so
 * that a token minted with them is one the service accepts. */
static cJSON *claims_of(const char *iss, const char *aud, const char *sub,
                        const char *scopes, time_t now, long lifetime)
{
    long iat = (long)now;
    if ((lifetime > 0 && iat > LONG_MAX - lifetime) ||
        (lifetime < 0 && iat < LONG_MIN - lifetime))
        return NULL;
    cJSON *c = cJSON_CreateObject();
    bool ok = c != NULL;
    if (ok && sub != NULL)
        ok = cJSON_AddStringToObject(c, "sub", sub) != NULL;
    if (ok && scopes != NULL && scopes[0] != '\0')
        ok = cJSON_AddStringToObject(c, "scope", scopes) != NULL;
    if (ok && iss != NULL && iss[0] != '\0')
        ok = cJSON_AddStringToObject(c, "iss", iss) != NULL;
    if (ok && aud != NULL && aud[0] != '\0')
        ok = cJSON_AddStringToObject(c, "aud", aud) != NULL;
    ok = ok && cJSON_AddNumberToObject(c, "iat", (double)iat) != NULL &&
         cJSON_AddNumberToObject(c, "exp", (double)(iat + lifetime)) != NULL;
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Signs the signing input; returns the signature's length, 0 on failure. */
typedef size_t (*sign_fn)(const void *key, const struct auth_alg *alg,
                          const char *input, size_t len, unsigned char *sig);

static size_t sign_hmac(const void *key, const struct auth_alg *alg,
                        const char *input, size_t len, unsigned char *sig)
{
    (void)alg;
    struct crypto_hmac *k = (struct crypto_hmac *)key;
    return crypto_hmac(k, input, len, sig) ? crypto_hmac_size(k) : 0;
}

static size_t sign_private(const void *key, const struct auth_alg *alg,
                           const char *input, size_t len, unsigned char *sig)
{
    return crypto_sign(key, auth_alg_scheme(alg), alg->hash, input, len, sig);
}

/* base64url(header) "." base64url(claims) "." base64url(signature). */
static char *mint_token(const struct auth_alg *alg, const char *kid, cJSON *claims,
                        sign_fn sign, const void *key)
{
    cJSON *hdr = cJSON_CreateObject();
    if (hdr == NULL || cJSON_AddStringToObject(hdr, "alg", alg->name) == NULL ||
        cJSON_AddStringToObject(hdr, "typ", "JWT") == NULL ||
        (kid != NULL && cJSON_AddStringToObject(hdr, "kid", kid) == NULL)) {
        cJSON_Delete(hdr);
        return NULL;
    }
    char *header = cJSON_PrintUnformatted(hdr);
    char *payload = cJSON_PrintUnformatted(claims);
    cJSON_Delete(hdr);
    char *tok = NULL;
    if (header != NULL && payload != NULL) {
        size_t hlen = strlen(header), plen = strlen(payload);
        tok = malloc(CRYPTO_B64URL_ENCODED_MAX(hlen) + CRYPTO_B64URL_ENCODED_MAX(plen) +
                     CRYPTO_B64URL_ENCODED_MAX(CRYPTO_SIG_MAX));
    }
    if (tok != NULL) {
        size_t at = crypto_b64url_encode(header, strlen(header), tok);
        tok[at++] = '.';
        at += crypto_b64url_encode(payload, strlen(payload), tok + at);
        unsigned char sig[CRYPTO_SIG_MAX];
        size_t n = sign(key, alg, tok, at, sig);
        if (n > 0) {
            tok[at++] = '.';
            crypto_b64url_encode(sig, n, tok + at);
        } else {
            free(tok);
            tok = NULL;
        }
        crypto_wipe(sig, sizeof sig);
    }
    free(header);
    free(payload);
    return tok;
}

static int print_token(char *token)
{
    if (token == NULL) {
        fprintf(stderr, "orders-token: could not mint a token\n");
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

/* The service's way: HMAC with the shared secret. */
static int with_secret(const struct options *o)
{
    size_t secret_len = 0;
    unsigned char *secret = load_secret(&secret_len);
    if (secret == NULL)
        return 1;
    const char *algs = settings_env("JWT_ALGORITHMS");
    char first[16] = "";
    if (algs != NULL)
        snprintf(first, sizeof first, "%.*s", (int)strcspn(algs, ","), algs);
    const char *name = o->alg != NULL ? o->alg
                       : settings_env("JWT_ALGORITHM") != NULL ? settings_env("JWT_ALGORITHM")
                       : first[0] != '\0' ? first : "HS256";
    struct auth_settings s = {
        .secret = secret,
        .secret_len = secret_len,
        .algorithm = name,
        .issuer = o->iss != NULL ? o->iss : settings_env("JWT_ISSUER"),
        .audience = o->aud != NULL ? o->aud : settings_env("JWT_AUDIENCE"),
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    int rc = 1;
    const struct auth_alg *alg = auth_alg_named(name);
    if (settings_usable(&s) && alg != NULL) {
        struct crypto_hmac *key = crypto_hmac_new(alg->hash, secret, secret_len);
        cJSON *claims = claims_of(s.issuer, s.audience, o->sub, o->scopes, time(NULL),
                                  o->lifetime);
        rc = print_token(key && claims ? mint_token(alg, o->kid, claims, sign_hmac, key)
                                       : NULL);
        cJSON_Delete(claims);
        crypto_hmac_free(key);
    }
    crypto_wipe(secret, secret_len);
    free(secret);
    return rc;
}

static void add_b64(cJSON *jwk, const char *name, const unsigned char *b, size_t n)
{
    char *enc = malloc(CRYPTO_B64URL_ENCODED_MAX(n));
    if (enc != NULL) {
        crypto_b64url_encode(b, n, enc);
        cJSON_AddStringToObject(jwk, name, enc);
        free(enc);
    }
}

/* The JWKS (RFC 7517 5) holding the public half of the key. */
static int print_jwks(const struct crypto_privkey *k, const struct auth_alg *alg,
                      const char *kid)
{
    unsigned char a[1024], b[1024];
    size_t alen, blen;
    if (!crypto_privkey_public(k, a, &alen, b, &blen)) {
        fprintf(stderr, "orders-token: cannot read the public key\n");
        return 1;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(doc, "keys");
    cJSON *jwk = cJSON_CreateObject();
    cJSON_AddItemToArray(keys, jwk);
    switch (crypto_privkey_type(k)) {
    case CRYPTO_KEY_RSA:
        cJSON_AddStringToObject(jwk, "kty", "RSA");
        add_b64(jwk, "n", a, alen);
        add_b64(jwk, "e", b, blen);
        break;
    case CRYPTO_KEY_P256:
    case CRYPTO_KEY_P384:
        cJSON_AddStringToObject(jwk, "kty", "EC");
        cJSON_AddStringToObject(jwk, "crv",
                                crypto_privkey_type(k) == CRYPTO_KEY_P256 ? "P-256" : "P-384");
        add_b64(jwk, "x", a, alen);
        add_b64(jwk, "y", b, blen);
        break;
    case CRYPTO_KEY_ED25519:
        cJSON_AddStringToObject(jwk, "kty", "OKP");
        cJSON_AddStringToObject(jwk, "crv", "Ed25519");
        add_b64(jwk, "x", a, alen);
        break;
    }
    cJSON_AddStringToObject(jwk, "use", "sig");
    cJSON_AddStringToObject(jwk, "alg", alg->name);
    if (kid != NULL)
        cJSON_AddStringToObject(jwk, "kid", kid);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL) {
        fprintf(stderr, "orders-token: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* An identity provider's way: a signature with a private key. */
static int with_private_key(const struct options *o)
{
    char err[512];
    struct crypto_privkey *k = crypto_privkey_load(o->key, err, sizeof err);
    if (k == NULL) {
        fprintf(stderr, "orders-token: --key %s\n", err);
        return 1;
    }
    static const char *const usual[] = {
        [CRYPTO_KEY_RSA] = "RS256",
        [CRYPTO_KEY_P256] = "ES256",
        [CRYPTO_KEY_P384] = "ES384",
        [CRYPTO_KEY_ED25519] = "EdDSA",
    };
    const char *name = o->alg != NULL ? o->alg : usual[crypto_privkey_type(k)];
    const struct auth_alg *alg = auth_alg_named(name);
    int rc = 1;
    if (alg == NULL || alg->family == AUTH_ALG_HMAC || alg->key != crypto_privkey_type(k)) {
        fprintf(stderr, "orders-token: --alg %s does not fit the key in %s (want one of "
                        "RS256/384/512 and PS256/384/512 for RSA, ES256 for P-256, "
                        "ES384 for P-384, EdDSA for Ed25519)\n", name, o->key);
    } else if (o->jwks) {
        rc = print_jwks(k, alg, o->kid);
    } else {
        cJSON *claims = claims_of(o->iss != NULL ? o->iss : settings_env("JWT_ISSUER"),
                                  o->aud != NULL ? o->aud : settings_env("JWT_AUDIENCE"),
                                  o->sub, o->scopes, time(NULL), o->lifetime);
        rc = print_token(claims ? mint_token(alg, o->kid, claims, sign_private, k) : NULL);
        cJSON_Delete(claims);
    }
    crypto_privkey_free(k);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {
        .scopes = strdup("orders.read orders.write"),
        .sub = "user-123",
        .lifetime = 3600,
    };
    if (o.scopes == NULL) {
        fprintf(stderr, "orders-token: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc == 0)
        rc = o.key != NULL ? with_private_key(&o) : with_secret(&o);
    else if (rc == 2)
        rc = 0;
    free(o.scopes);
    /* A token lost to a full disk or closed pipe must not look like
     * success to TOKEN=$(orders-token). */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "orders-token: cannot write to stdout\n");
        rc = 1;
    }
    return rc;
}
