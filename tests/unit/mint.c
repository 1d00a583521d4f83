/*
 * mint.c - see mint.h.
 */
#include "mint.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <jwt.h>

static bool add_claims(jwt_t *jwt, const struct auth_settings *s,
                       const char *sub, const char *scopes, time_t now,
                       long lifetime)
{
    long iat = (long)now;
    if ((lifetime > 0 && iat > LONG_MAX - lifetime) ||
        (lifetime < 0 && iat < LONG_MIN - lifetime))
        return false;
    if (sub != NULL && jwt_add_grant(jwt, "sub", sub) != 0)
        return false;
    if (scopes != NULL && scopes[0] != '\0' &&
        jwt_add_grant(jwt, "scope", scopes) != 0)
        return false;
    if (s->issuer != NULL && s->issuer[0] != '\0' &&
        jwt_add_grant(jwt, "iss", s->issuer) != 0)
        return false;
    if (s->audience != NULL && s->audience[0] != '\0' &&
        jwt_add_grant(jwt, "aud", s->audience) != 0)
        return false;
    return jwt_add_grant_int(jwt, "iat", iat) == 0 &&
           jwt_add_grant_int(jwt, "exp", iat + lifetime) == 0;
}

char *test_mint(const struct auth_settings *s, const char *sub,
                const char *scopes, time_t now, long lifetime)
{
    const char *name = s->algorithm != NULL ? s->algorithm : "HS256";
    jwt_alg_t alg = strcmp(name, "HS256") == 0   ? JWT_ALG_HS256
                    : strcmp(name, "HS384") == 0 ? JWT_ALG_HS384
                    : strcmp(name, "HS512") == 0 ? JWT_ALG_HS512
                                                 : JWT_ALG_INVAL;
    if (alg == JWT_ALG_INVAL)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0 || jwt == NULL)
        return NULL;
    char *token = NULL;
    if (add_claims(jwt, s, sub, scopes, now, lifetime) &&
        jwt_set_alg(jwt, alg, s->secret, (int)s->secret_len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}
