/*
 * auth_bearer.c - finding the token in the Authorization header (see
 * auth_bearer.h).
 */
#include "auth_bearer.h"

#include <stdbool.h>
#include <string.h>

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
 * it is an invalid token rather than no credentials.  The token's own
 * alphabet is checked with its segments (auth_jws.c).
 */
enum auth_result auth_bearer_token(const char *h, int count, const char **tok,
                                   size_t *toklen, const char **why)
{
    if (count > 1) {
        *why = "more than one Authorization header";
        return AUTH_BAD_REQUEST;
    }
    *why = "no credentials";
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
    *why = "ok";
    return AUTH_OK;
}
