/*
 * auth_claims.c - the claims of a verified token (see auth_claims.h).
 */
#include "auth_claims.h"

#include <math.h>
#include <string.h>

static const cJSON *claim(const cJSON *claims, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(claims, name);
}

/* NumericDate (RFC 7519 2): any JSON number, fractions allowed.  Kept as a
 * double so that no huge value is converted to time_t (which would be
 * undefined). */
static bool numeric_date(const cJSON *c, double *out)
{
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
        return false;
    *out = c->valuedouble;
    return true;
}

/* exp is required (the contract says so; RFC 7519 leaves it optional). */
static bool times_of(const cJSON *claims, struct auth_times *t,
                     const char **why)
{
    memset(t, 0, sizeof *t);
    const cJSON *c = claim(claims, "exp");
    if (c == NULL) {
        *why = "token has no exp";
        return false;
    }
    if (!numeric_date(c, &t->exp)) {
        *why = "token exp is not a number";
        return false;
    }
    if ((c = claim(claims, "nbf")) != NULL) {
        t->has_nbf = true;
        if (!numeric_date(c, &t->nbf)) {
            *why = "token nbf/iat is not a number";
            return false;
        }
    }
    if ((c = claim(claims, "iat")) != NULL) {
        t->has_iat = true;
        if (!numeric_date(c, &t->iat)) {
            *why = "token nbf/iat is not a number";
            return false;
        }
    }
    return true;
}

/*
 * Expired means now >= exp (RFC 7519 4.1.4: "on or after"), shifted by the
 * leeway.  nbf and iat may not lie further in the future than the leeway;
 * refusing a future iat follows PyJWT, which minted the test vectors.
 */
bool auth_times_ok(const struct auth_times *t, long leeway, time_t now,
                   const char **why)
{
    double dnow = (double)now, dl = (double)leeway;
    if (t->exp + dl <= dnow) {
        *why = "token expired";
        return false;
    }
    if ((t->has_nbf && t->nbf - dl > dnow) ||
        (t->has_iat && t->iat - dl > dnow)) {
        *why = "token not yet valid";
        return false;
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
static bool iss_aud_ok(const struct auth_claim_rules *r, const cJSON *claims,
                       const char **why)
{
    if (r->issuer != NULL) {
        const cJSON *iss = claim(claims, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, r->issuer) != 0) {
            *why = "token issuer not accepted";
            return false;
        }
    }
    const cJSON *aud = claim(claims, "aud");
    if (r->audience == NULL) {
        if (aud != NULL) {
            *why = "token has an audience but none is configured";
            return false;
        }
        return true;
    }
    if (!aud_contains(aud, r->audience)) {
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
 * writers never see half a character.  The payload's parser has already
 * refused invalid UTF-8 and NUL, so the string is well-formed. */
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

enum auth_result auth_claims_check(const struct auth_claim_rules *r,
                                   const cJSON *claims, time_t now,
                                   struct auth_principal *out,
                                   struct auth_times *times, const char **why)
{
    unsigned bits;
    if (!times_of(claims, times, why) ||
        !auth_times_ok(times, r->leeway, now, why) ||
        !iss_aud_ok(r, claims, why) || !scopes_ok(claims, &bits, why))
        return AUTH_INVALID_TOKEN;
    out->scopes = bits;
    copy_sub(claims, out->sub);
    return AUTH_OK;
}
