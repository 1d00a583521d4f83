/*
 * auth_jws.c - the compact serialisation of a token (see auth_jws.h).
 */
#include "auth_jws.h"

#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "auth_bearer.h"

/* A JOSE header has a handful of members; the bound keeps the duplicate
 * check cheap. */
#define AUTH_JWS_HEADER_MEMBERS_MAX 32

/* A segment is unpadded base64url (RFC 7515 2), never empty here: every
 * header is an object, and every algorithm we accept has a signature. */
static bool segment_ok(const char *s, size_t len)
{
    return len > 0 && crypto_b64url_valid(s, len);
}

bool auth_jws_split(const char *tok, size_t len, struct auth_jws *out)
{
    const char *d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return false;
    size_t l1 = (size_t)(d1 - tok);
    const char *rest = d1 + 1;
    size_t rlen = len - l1 - 1;
    const char *d2 = memchr(rest, '.', rlen);
    if (d2 == NULL)
        return false;
    size_t l2 = (size_t)(d2 - rest);
    const char *sig = d2 + 1;
    size_t l3 = rlen - l2 - 1;
    if (!segment_ok(tok, l1) || !segment_ok(rest, l2) || !segment_ok(sig, l3))
        return false;
    *out = (struct auth_jws){
        .header = tok,
        .header_len = l1,
        .payload = rest,
        .payload_len = l2,
        .signature = sig,
        .signature_len = l3,
        .signing_input_len = l1 + 1 + l2,
    };
    return true;
}

static bool has_duplicate_member(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a != NULL; a = a->next)
        for (const cJSON *b = a->next; b != NULL; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return true;
    return false;
}

static bool member_count_ok(const cJSON *obj)
{
    int n = 0;
    for (const cJSON *a = obj->child; a != NULL; a = a->next)
        if (++n > AUTH_JWS_HEADER_MEMBERS_MAX)
            return false;
    return true;
}

bool auth_jws_read_header(const struct auth_jws *j, struct auth_jws_header *h,
                          const char **why)
{
    unsigned char buf[CRYPTO_B64URL_DECODED_MAX(AUTH_TOKEN_MAX) + 1];
    size_t n = 0;
    *why = "malformed token header";
    if (j->header_len > AUTH_TOKEN_MAX ||
        !crypto_b64url_decode(j->header, j->header_len, buf, &n))
        return false;
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL)
        return false;
    cJSON *doc = cJSON_ParseWithLengthOpts((const char *)buf, n + 1, NULL, 1);
    bool ok = false;
    if (doc != NULL && cJSON_IsObject(doc) && member_count_ok(doc) &&
        !has_duplicate_member(doc)) {
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(doc, "alg");
        if (!cJSON_IsString(alg) || strlen(alg->valuestring) > AUTH_JWS_ALG_MAX)
            *why = "token algorithm not accepted";
        else if (cJSON_GetObjectItemCaseSensitive(doc, "crit") != NULL)
            *why = "token header has critical extensions";
        else {
            memset(h, 0, sizeof *h);
            strcpy(h->alg, alg->valuestring);
            ok = true;
        }
    }
    cJSON_Delete(doc);
    return ok;
}

/* libjwt 1.10 checks an HMAC this way too: the canonical encoding of the
 * MAC must equal the segment, so no second spelling of one signature (odd
 * trailing bits) is accepted. */
bool auth_jws_hmac_ok(struct crypto_hmac *key, const struct auth_jws *j)
{
    unsigned char mac[CRYPTO_DIGEST_MAX];
    char want[(CRYPTO_DIGEST_MAX + 2) / 3 * 4 + 1];
    if (!crypto_hmac(key, j->header, j->signing_input_len, mac))
        return false;
    size_t n = crypto_b64url_encode(mac, crypto_hmac_size(key), want);
    crypto_wipe(mac, sizeof mac);
    return n == j->signature_len && crypto_equal(want, j->signature, n);
}

cJSON *auth_jws_claims(const char *tok, size_t len, const char **why)
{
    *why = "bad token signature or encoding";
    if (len > AUTH_TOKEN_MAX)
        return NULL;
    char buf[AUTH_TOKEN_MAX + 1];
    memcpy(buf, tok, len);
    buf[len] = '\0';
    /* Given no key, libjwt decodes header and claims exactly as when it
     * verifies (the same alg and typ checks, the same jansson parse) and
     * skips only its own signature check, which the caller has done. */
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, buf, NULL, 0);
    if (rc != 0 || jwt == NULL) {
        jwt_free(jwt);
        return NULL;
    }
    char *json = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    *why = "unreadable token claims";
    if (json == NULL)
        return NULL;
    cJSON *claims = cJSON_Parse(json);
    free(json);
    if (claims == NULL || !cJSON_IsObject(claims)) {
        cJSON_Delete(claims);
        return NULL;
    }
    return claims;
}
