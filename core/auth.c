/*
 * auth.c - OAuth2 bearer JWT verification on top of libjwt 1.10.
 *
 * libjwt 1.10 is used for one thing only: the HMAC check.  Everything it
 * does not do, or does too leniently, is done here, before and after it:
 *
 *  - jwt_decode() verifies with the algorithm the token's header names, and
 *    its name parsing is case-insensitive ("hs256", "NONE").  So the header
 *    is decoded here first and its "alg" must equal the configured one
 *    byte for byte; after decoding, jwt_get_alg() is checked again, because
 *    libjwt's JSON parser (jansson) keeps the last of duplicate members where
 *    ours (cJSON) finds the first.
 *  - jwt_decode() with no key accepts any signed token as unsigned, so a
 *    verifier cannot exist without a secret.
 *  - libb64, which libjwt decodes with, skips characters that are not
 *    base64; the token's alphabet is checked here so that what is verified
 *    is exactly what was sent.
 *  - No time claim is looked at by libjwt: exp/nbf/iat are checked here
 *    (RFC 7519 4.1.4, 4.1.5, and PyJWT's reading of iat).
 *
 * Claims are read from the object libjwt verified (jwt_get_grants_json),
 * not from a second decode of the payload, so there is one source of truth.
 */
#include "auth.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <jwt.h>

/* A real token is a few hundred bytes; the bound keeps the work per request
 * (and the fuzzer's search space) small. */
#define AUTH_TOKEN_MAX 8192
/* RFC 7518 3.2 wants a key at least as long as the hash; 256 bits is the
 * floor for every HS algorithm here and matches CONFIG_MIN_SECRET_LEN. */
#define AUTH_SECRET_MIN 32
#define AUTH_LEEWAY_MAX 3600
/* A JOSE header has a handful of members; the bound keeps the duplicate
 * check cheap. */
#define AUTH_HEADER_MEMBERS_MAX 32

struct auth_verifier {
    unsigned char *secret;
    int secret_len; /* jwt_decode takes an int */
    jwt_alg_t alg;
    const char *alg_name; /* canonical spelling, static */
    char *issuer;
    char *audience;
    long leeway;
};

static const struct {
    const char *name;
    jwt_alg_t alg;
} hmac_algs[] = {
    {"HS256", JWT_ALG_HS256},
    {"HS384", JWT_ALG_HS384},
    {"HS512", JWT_ALG_HS512},
};

/* Exact and case-sensitive: JWT_ALGORITHM=hs256 is refused at start rather
 * than guessed at.  Only HMAC: there is no public-key configuration. */
static bool alg_lookup(const char *name, jwt_alg_t *alg, const char **canon)
{
    if (name == NULL)
        name = "HS256";
    for (size_t i = 0; i < sizeof hmac_algs / sizeof hmac_algs[0]; i++) {
        if (strcmp(name, hmac_algs[i].name) == 0) {
            *alg = hmac_algs[i].alg;
            *canon = hmac_algs[i].name;
            return true;
        }
    }
    return false;
}

/* Shared by the verifier and auth_mint so that the tool can never mint
 * what the service would refuse to verify. */
static const char *settings_problem(const struct auth_settings *s,
                                    jwt_alg_t *alg, const char **canon)
{
    if (s == NULL)
        return "no auth settings";
    if (!alg_lookup(s->algorithm, alg, canon))
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
    jwt_alg_t alg;
    const char *canon;
    const char *problem = settings_problem(s, &alg, &canon);
    if (problem != NULL) {
        set_err(err, errlen, problem);
        return NULL;
    }

    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    v->secret = malloc(s->secret_len);
    if (v->secret == NULL || !dup_optional(s->issuer, &v->issuer) ||
        !dup_optional(s->audience, &v->audience)) {
        auth_verifier_free(v);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(v->secret, s->secret, s->secret_len);
    v->secret_len = (int)s->secret_len;
    v->alg = alg;
    v->alg_name = canon;
    v->leeway = s->leeway_seconds;
    return v;
}

/* volatile so that the compiler cannot drop the wipe of memory about to be
 * freed. */
static void wipe(unsigned char *p, size_t n)
{
    volatile unsigned char *vp = p;
    while (n-- > 0)
        *vp++ = 0;
}

void auth_verifier_free(struct auth_verifier *v)
{
    if (v == NULL)
        return;
    if (v->secret != NULL)
        wipe(v->secret, (size_t)v->secret_len);
    free(v->secret);
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

/* ---- the Authorization header ---------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/*
 * RFC 6750 2.1: credentials = "Bearer" 1*SP b64token, the scheme
 * case-insensitive (RFC 9110 11.1).  Leading and trailing OWS are not part
 * of a field value (RFC 9110 5.5), so a header of only whitespace is as
 * good as absent.  Any other scheme is a credential we do not accept, so
 * it is an invalid token rather than no credentials.
 */
static enum auth_result split_bearer(const char *h, const char **tok,
                                     size_t *toklen, const char **why)
{
    if (h == NULL)
        return AUTH_NO_CREDENTIALS;
    size_t b = 0, n = strlen(h);
    while (b < n && is_ows(h[b]))
        b++;
    while (n > b && is_ows(h[n - 1]))
        n--;
    if (b == n)
        return AUTH_NO_CREDENTIALS;

    static const char scheme[] = "bearer";
    size_t slen = sizeof scheme - 1;
    if (n - b <= slen || h[b + slen] != ' ') {
        *why = "not a Bearer credential";
        return AUTH_INVALID_TOKEN;
    }
    for (size_t i = 0; i < slen; i++) {
        if (ascii_lower((unsigned char)h[b + i]) != scheme[i]) {
            *why = "not a Bearer credential";
            return AUTH_INVALID_TOKEN;
        }
    }
    size_t p = b + slen;
    while (p < n && h[p] == ' ')
        p++;
    if (p == n) {
        *why = "empty bearer token";
        return AUTH_INVALID_TOKEN;
    }
    if (n - p > AUTH_TOKEN_MAX) {
        *why = "token too long";
        return AUTH_INVALID_TOKEN;
    }
    *tok = h + p;
    *toklen = n - p;
    return AUTH_OK;
}

/* ---- compact serialisation -------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* A segment is unpadded base64url (RFC 7515 2).  A length of 4k+1 cannot
 * be produced by any encoder. */
static bool segment_ok(const char *s, size_t len)
{
    if (len == 0 || len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

/* header.payload.signature, each a valid segment.  The signature must be
 * there: every algorithm we accept has one. */
static bool token_shape_ok(const char *tok, size_t len, size_t *hdr_len)
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
    *hdr_len = l1;
    return true;
}

/* Caller has checked the alphabet and length (segment_ok); out holds at
 * least len * 3 / 4 + 1 bytes.  Leftover bits of the last character are
 * ignored, as every mainstream decoder does. */
static size_t b64url_decode(const char *s, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
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
        if (++n > AUTH_HEADER_MEMBERS_MAX)
            return false;
    return true;
}

/*
 * The algorithm is pinned: the header must name exactly the configured one
 * (so "none", "NONE", "hs256" and a different HS size all fail here).  A
 * "crit" member names extensions that must be understood (RFC 7515
 * 4.1.11); we understand none, so any is refused.
 */
static bool header_ok(const struct auth_verifier *v, const char *seg,
                      size_t len, const char **why)
{
    unsigned char buf[AUTH_TOKEN_MAX / 4 * 3 + 4];
    size_t n = b64url_decode(seg, len, buf);
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        *why = "malformed token header";
        return false;
    }
    cJSON *h = cJSON_ParseWithLengthOpts((const char *)buf, n + 1, NULL, 1);
    bool ok = false;
    *why = "malformed token header";
    if (h != NULL && cJSON_IsObject(h) && member_count_ok(h) &&
        !has_duplicate_member(h)) {
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
        if (!cJSON_IsString(alg) || strcmp(alg->valuestring, v->alg_name) != 0)
            *why = "token algorithm not accepted";
        else if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
            *why = "token header has critical extensions";
        else
            ok = true;
    }
    cJSON_Delete(h);
    return ok;
}

/* ---- signature --------------------------------------------------------- */

static cJSON *verified_claims(const struct auth_verifier *v, const char *tok,
                              size_t len, const char **why)
{
    char buf[AUTH_TOKEN_MAX + 1];
    memcpy(buf, tok, len);
    buf[len] = '\0';

    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, buf, v->secret, v->secret_len);
    if (rc != 0 || jwt == NULL) {
        jwt_free(jwt);
        *why = "bad token signature or encoding";
        return NULL;
    }
    /* Second line of defence: what libjwt actually verified with. */
    if (jwt_get_alg(jwt) != v->alg) {
        jwt_free(jwt);
        *why = "token algorithm not accepted";
        return NULL;
    }
    char *json = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    if (json == NULL) {
        *why = "unreadable token claims";
        return NULL;
    }
    cJSON *claims = cJSON_Parse(json);
    free(json);
    if (claims == NULL || !cJSON_IsObject(claims)) {
        cJSON_Delete(claims);
        *why = "unreadable token claims";
        return NULL;
    }
    return claims;
}

/* ---- claims ------------------------------------------------------------ */

static const cJSON *claim(const cJSON *claims, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(claims, name);
}

/* NumericDate (RFC 7519 2): any JSON number, fractions allowed.  Compared
 * as doubles so that no huge value is converted to time_t (which would be
 * undefined). */
static bool numeric_date(const cJSON *c, double *out)
{
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
        return false;
    *out = c->valuedouble;
    return true;
}

/*
 * exp is required (the contract says so; RFC 7519 leaves it optional).
 * Expired means now >= exp (RFC 7519 4.1.4: "on or after"), shifted by the
 * leeway.  nbf and iat may not lie further in the future than the leeway;
 * rejecting a future iat follows PyJWT, which minted the test vectors.
 */
static bool times_ok(const struct auth_verifier *v, const cJSON *claims,
                     time_t now, const char **why)
{
    double t, dnow = (double)now, leeway = (double)v->leeway;
    const cJSON *c = claim(claims, "exp");
    if (c == NULL) {
        *why = "token has no exp";
        return false;
    }
    if (!numeric_date(c, &t)) {
        *why = "token exp is not a number";
        return false;
    }
    if (t + leeway <= dnow) {
        *why = "token expired";
        return false;
    }
    static const char *const not_future[] = {"nbf", "iat"};
    for (size_t i = 0; i < 2; i++) {
        c = claim(claims, not_future[i]);
        if (c == NULL)
            continue;
        if (!numeric_date(c, &t)) {
            *why = "token nbf/iat is not a number";
            return false;
        }
        if (t - leeway > dnow) {
            *why = "token not yet valid";
            return false;
        }
    }
    return true;
}

static bool aud_contains(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return false;
    for (const cJSON *e = aud->child; e != NULL; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, want) == 0)
            return true;
    return false;
}

/*
 * iss must equal the configured issuer.  For aud, RFC 7519 4.1.3 says a
 * recipient that does not identify itself with a value of a present "aud"
 * MUST reject the token; with no audience configured we identify with
 * nothing, so a token carrying aud is refused (PyJWT does the same).  The
 * operator's answer is to set JWT_AUDIENCE.
 */
static bool iss_aud_ok(const struct auth_verifier *v, const cJSON *claims,
                       const char **why)
{
    if (v->issuer != NULL) {
        const cJSON *iss = claim(claims, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0) {
            *why = "token issuer not accepted";
            return false;
        }
    }
    const cJSON *aud = claim(claims, "aud");
    if (v->audience == NULL) {
        if (aud != NULL) {
            *why = "token has an audience but none is configured";
            return false;
        }
        return true;
    }
    if (!aud_contains(aud, v->audience)) {
        *why = "token audience not accepted";
        return false;
    }
    return true;
}

/* Exact, case-sensitive names; "orders.readonly" grants nothing. */
static unsigned scope_bit(const char *s, size_t len)
{
    static const char rd[] = "orders.read", wr[] = "orders.write";
    if (len == sizeof rd - 1 && memcmp(s, rd, len) == 0)
        return AUTH_SCOPE_READ;
    if (len == sizeof wr - 1 && memcmp(s, wr, len) == 0)
        return AUTH_SCOPE_WRITE;
    return 0;
}

/* RFC 6749 3.3: scope = scope-token *( SP scope-token ).  Extra spaces are
 * tolerated; they only produce empty tokens, which grant nothing. */
static unsigned scopes_in_string(const char *s)
{
    unsigned bits = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, " ");
        bits |= scope_bit(s, len);
        s += len;
        while (*s == ' ')
            s++;
    }
    return bits;
}

/* Each element is one scope name, not a space-separated list. */
static bool scopes_in_array(const cJSON *arr, unsigned *bits)
{
    for (const cJSON *e = arr->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e))
            return false;
        *bits |= scope_bit(e->valuestring, strlen(e->valuestring));
    }
    return true;
}

/*
 * The union of scope (string), scp (string or array) and scopes (array).
 * A scope claim of another type makes the token invalid rather than
 * silently scopeless: a 403 would tell the client to ask for a scope it
 * may already have, when the real fault is a malformed token.
 */
static bool scopes_ok(const cJSON *claims, unsigned *bits, const char **why)
{
    static const struct {
        const char *name;
        bool string_ok, array_ok;
    } kinds[] = {
        {"scope", true, false},
        {"scp", true, true},
        {"scopes", false, true},
    };
    *bits = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const cJSON *c = claim(claims, kinds[i].name);
        if (c == NULL)
            continue;
        if (kinds[i].string_ok && cJSON_IsString(c))
            *bits |= scopes_in_string(c->valuestring);
        else if (kinds[i].array_ok && cJSON_IsArray(c) &&
                 scopes_in_array(c, bits))
            continue;
        else {
            *why = "token scope claim has the wrong type";
            return false;
        }
    }
    return true;
}

/* Truncates on a UTF-8 character boundary so that the log and event
 * writers never see half a character.  jansson has already refused
 * invalid UTF-8 and NUL, so the string is well-formed. */
static void copy_sub(const cJSON *claims, char *dst)
{
    dst[0] = '\0';
    const cJSON *sub = claim(claims, "sub");
    if (!cJSON_IsString(sub))
        return;
    const char *s = sub->valuestring;
    size_t n = strlen(s);
    if (n > AUTH_SUB_MAX) {
        n = AUTH_SUB_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static enum auth_result check_claims(const struct auth_verifier *v,
                                     const cJSON *claims, time_t now,
                                     struct auth_principal *out,
                                     const char **why)
{
    unsigned bits;
    if (!times_ok(v, claims, now, why) || !iss_aud_ok(v, claims, why) ||
        !scopes_ok(claims, &bits, why))
        return AUTH_INVALID_TOKEN;
    out->scopes = bits;
    copy_sub(claims, out->sub);
    return AUTH_OK;
}

enum auth_result auth_verify(const struct auth_verifier *v,
                             const char *authorization, time_t now,
                             struct auth_principal *out, const char **why)
{
    const char *dummy_why;
    if (why == NULL)
        why = &dummy_why;
    *why = NULL;
    if (out == NULL || v == NULL) {
        *why = "verifier not configured";
        return AUTH_INVALID_TOKEN;
    }
    out->sub[0] = '\0';
    out->scopes = 0;

    const char *tok = NULL;
    size_t len = 0;
    enum auth_result r = split_bearer(authorization, &tok, &len, why);
    if (r == AUTH_NO_CREDENTIALS)
        *why = "no credentials";
    if (r != AUTH_OK)
        return r;

    size_t hdr_len;
    if (!token_shape_ok(tok, len, &hdr_len)) {
        *why = "malformed token";
        return AUTH_INVALID_TOKEN;
    }
    if (!header_ok(v, tok, hdr_len, why))
        return AUTH_INVALID_TOKEN;
    cJSON *claims = verified_claims(v, tok, len, why);
    if (claims == NULL)
        return AUTH_INVALID_TOKEN;
    r = check_claims(v, claims, now, out, why);
    cJSON_Delete(claims);
    if (r != AUTH_OK) {
        out->sub[0] = '\0';
        out->scopes = 0;
    } else {
        *why = "ok";
    }
    return r;
}

/* ---- minting ----------------------------------------------------------- */

/* iss and aud come from the settings so that a token minted with the
 * service's own settings is one the service accepts. */
static bool add_claims(jwt_t *jwt, const struct auth_settings *s,
                       const char *sub, const char *scopes, time_t now,
                       long lifetime)
{
    long iat = (long)now;
    if ((lifetime > 0 && iat > LONG_MAX - lifetime) ||
        (lifetime < 0 && iat < LONG_MIN - lifetime))
        return false;
    long exp = iat + lifetime;
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
           jwt_add_grant_int(jwt, "exp", exp) == 0;
}

char *auth_mint(const struct auth_settings *s, const char *sub,
                const char *scopes, time_t now, long lifetime_seconds)
{
    jwt_alg_t alg;
    const char *canon;
    if (settings_problem(s, &alg, &canon) != NULL)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0 || jwt == NULL)
        return NULL;
    char *token = NULL;
    if (add_claims(jwt, s, sub, scopes, now, lifetime_seconds) &&
        jwt_set_alg(jwt, alg, s->secret, (int)s->secret_len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}
