/*
 * orders-token - mint a bearer token the local service will accept.
 *
 *   TOKEN=$(build/orders-token)
 *   build/orders-token --scopes orders.read --sub alice --exp-hours 0.25
 *
 * It reads the same settings the service reads (the secret from
 * JWT_SECRET_KEY, JWT_SECRET_FILE, $CREDENTIALS_DIRECTORY/jwt-secret or
 * $RUNTIME_DIR/jwt-secret; JWT_ALGORITHM; JWT_ISSUER; JWT_AUDIENCE), so a
 * token it prints is one the service verifies.  stdout carries the token
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
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: orders-token [--scopes S [S...]] [--sub SUB] [--exp-hours N]\n"
            "\n"
            "Prints a JWT for the Orders Service on stdout.\n"
            "  --scopes S...   scopes to grant (default: orders.read orders.write;\n"
            "                  none at all with a bare --scopes)\n"
            "  --sub SUB       subject (default: user-123)\n"
            "  --exp-hours N   lifetime in hours, may be fractional or negative\n"
            "                  (default: 1)\n"
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
        } else if (strcmp(a, "--exp-hours") == 0 && i + 1 < argc) {
            if (!parse_hours(argv[++i], &o->lifetime)) {
                fprintf(stderr, "orders-token: --exp-hours wants a number of "
                                "hours within +-87600, not '%s'\n", argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "orders-token: unexpected argument '%s'%s\n", a,
                    (strcmp(a, "--sub") == 0 || strcmp(a, "--exp-hours") == 0)
                        ? " (missing value)" : "");
            usage(stderr);
            return 1;
        }
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

/* The claims: iss and aud come from the service's settings, so that a
 * token minted with them is one the service accepts. */
static cJSON *claims_of(const struct auth_settings *s, const char *sub,
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
    if (ok && s->issuer != NULL && s->issuer[0] != '\0')
        ok = cJSON_AddStringToObject(c, "iss", s->issuer) != NULL;
    if (ok && s->audience != NULL && s->audience[0] != '\0')
        ok = cJSON_AddStringToObject(c, "aud", s->audience) != NULL;
    ok = ok && cJSON_AddNumberToObject(c, "iat", (double)iat) != NULL &&
         cJSON_AddNumberToObject(c, "exp", (double)(iat + lifetime)) != NULL;
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Appends the base64url of len bytes to out at *at (room checked by the
 * caller's sizing). */
static void append_b64url(char *out, size_t *at, const void *in, size_t len)
{
    *at += crypto_b64url_encode(in, len, out + *at);
}

/* base64url(header) "." base64url(claims) "." base64url(HMAC). */
static char *mint_hmac(const struct auth_settings *s, const char *sub,
                       const char *scopes, time_t now, long lifetime)
{
    enum crypto_hash hash = CRYPTO_SHA256;
    const char *alg = s->algorithm != NULL ? s->algorithm : "HS256";
    if (strcmp(alg, "HS384") == 0)
        hash = CRYPTO_SHA384;
    else if (strcmp(alg, "HS512") == 0)
        hash = CRYPTO_SHA512;
    char header[64];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    cJSON *claims = claims_of(s, sub, scopes, now, lifetime);
    char *payload = claims ? cJSON_PrintUnformatted(claims) : NULL;
    cJSON_Delete(claims);
    struct crypto_hmac *key = crypto_hmac_new(hash, s->secret, s->secret_len);
    char *tok = NULL;
    if (payload != NULL && key != NULL) {
        size_t hlen = strlen(header), plen = strlen(payload);
        size_t cap = CRYPTO_B64URL_ENCODED_MAX(hlen) +
                     CRYPTO_B64URL_ENCODED_MAX(plen) +
                     CRYPTO_B64URL_ENCODED_MAX(CRYPTO_DIGEST_MAX);
        tok = malloc(cap);
    }
    if (tok != NULL) {
        size_t at = 0;
        unsigned char mac[CRYPTO_DIGEST_MAX];
        append_b64url(tok, &at, header, strlen(header));
        tok[at++] = '.';
        append_b64url(tok, &at, payload, strlen(payload));
        if (crypto_hmac(key, tok, at, mac)) {
            tok[at++] = '.';
            append_b64url(tok, &at, mac, crypto_hmac_size(key));
        } else {
            free(tok);
            tok = NULL;
        }
        crypto_wipe(mac, sizeof mac);
    }
    crypto_hmac_free(key);
    free(payload);
    return tok;
}

static int mint(const struct options *o)
{
    size_t secret_len = 0;
    unsigned char *secret = load_secret(&secret_len);
    if (secret == NULL)
        return 1;
    struct auth_settings s = {
        .secret = secret,
        .secret_len = secret_len,
        .algorithm = settings_env("JWT_ALGORITHM"),
        .issuer = settings_env("JWT_ISSUER"),
        .audience = settings_env("JWT_AUDIENCE"),
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    int rc = 1;
    if (settings_usable(&s)) {
        char *token = mint_hmac(&s, o->sub, o->scopes, time(NULL), o->lifetime);
        if (token == NULL) {
            fprintf(stderr, "orders-token: could not mint a token\n");
        } else {
            printf("%s\n", token);
            rc = 0;
            free(token);
        }
    }
    crypto_wipe(secret, secret_len);
    free(secret);
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
        rc = mint(&o);
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
