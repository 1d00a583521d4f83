/*
 * auth_jws.c - the compact serialisation of a token (see auth_jws.h).
 */
#include "auth_jws.h"

#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "auth_bearer.h"
#include "utf8.h"

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

/* RFC 7515 4.1.9 and RFC 9068 2.1; media types compare without case, and
 * "application/" may be left out (RFC 7515 4.1.9). */
static bool typ_ok(const char *typ)
{
    if (strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    return strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0;
}

/* A decoded segment as text: no NUL byte, valid UTF-8 (RFC 7159 8.1). */
static bool text_ok(const unsigned char *s, size_t n)
{
    if (memchr(s, '\0', n) != NULL)
        return false;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int l = utf8_sequence_len(s + i);
        if (l == 0)
            return false;
        i += (size_t)l;
    }
    return true;
}

/* A segment decoded into a JSON object with no duplicate member and at
 * most max members; NULL otherwise.  buf holds the decoded text. */
static cJSON *segment_object(const char *seg, size_t len, int max)
{
    if (len > AUTH_TOKEN_MAX)
        return NULL;
    unsigned char buf[CRYPTO_B64URL_DECODED_MAX(AUTH_TOKEN_MAX) + 1];
    size_t n = 0;
    if (!crypto_b64url_decode(seg, len, buf, &n))
        return NULL;
    buf[n] = '\0';
    if (!text_ok(buf, n))
        return NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts((const char *)buf, n + 1, NULL, 1);
    int count = 0;
    if (doc != NULL && cJSON_IsObject(doc) && !has_duplicate_member(doc)) {
        for (const cJSON *a = doc->child; a != NULL; a = a->next)
            count++;
        if (count <= max)
            return doc;
    }
    cJSON_Delete(doc);
    return NULL;
}

bool auth_jws_read_header(const struct auth_jws *j, struct auth_jws_header *h,
                          const char **why)
{
    *why = "malformed token header";
    cJSON *doc = segment_object(j->header, j->header_len, AUTH_JWS_HEADER_MEMBERS_MAX);
    if (doc == NULL)
        return false;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(doc, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(doc, "kid");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(doc, "typ");
    bool ok = false;
    if (!cJSON_IsString(alg) || strlen(alg->valuestring) > AUTH_JWS_ALG_MAX)
        *why = "token algorithm not accepted";
    else if (cJSON_GetObjectItemCaseSensitive(doc, "crit") != NULL)
        *why = "token header has critical extensions";
    else if (kid != NULL && (!cJSON_IsString(kid) || strlen(kid->valuestring) > AUTH_KID_MAX))
        *why = "token kid is not a short string";
    else if (typ != NULL && (!cJSON_IsString(typ) || !typ_ok(typ->valuestring)))
        *why = "token typ is not JWT or at+jwt";
    else {
        memset(h, 0, sizeof *h);
        strcpy(h->alg, alg->valuestring);
        if (kid != NULL) {
            h->has_kid = true;
            strcpy(h->kid, kid->valuestring);
        }
        ok = true;
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

bool auth_jws_signature_ok(const struct auth_key *key, const struct auth_alg *alg,
                           const struct auth_jws *j)
{
    /* The largest signature: RSA with a 16384-bit modulus (the JWK parser
     * takes n up to 4096 base64url characters, 3072 bytes). */
    unsigned char sig[CRYPTO_B64URL_DECODED_MAX(4096)];
    size_t n = 0;
    if (alg->family == AUTH_ALG_HMAC || j->signature_len > 4096 ||
        !crypto_b64url_decode(j->signature, j->signature_len, sig, &n))
        return false;
    return crypto_verify(key->key, auth_alg_scheme(alg), alg->hash, j->header,
                         j->signing_input_len, sig, n);
}

/* Real claim sets have a few dozen members; the bound keeps the duplicate
 * check cheap. */
#define AUTH_JWS_CLAIMS_MAX 128

cJSON *auth_jws_claims(const struct auth_jws *j, const char **why)
{
    cJSON *claims = segment_object(j->payload, j->payload_len, AUTH_JWS_CLAIMS_MAX);
    if (claims == NULL)
        *why = "unreadable token claims";
    return claims;
}
