#include <stdio.h>
#include <string.h>

#include "precondition.h"

void etag_format(long long version, char out[ETAG_MAX])
{
    snprintf(out, ETAG_MAX, "\"v%lld\"", version);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110, 8.8.3) */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Walks "*" / #entity-tag (RFC 9110, 13.1.1 and 5.6.1: elements separated
 * by OWS "," OWS, empty elements allowed).  weak_ok: whether a W/ tag may
 * match (weak comparison) or never does (strong comparison). */
static enum etag_match etag_list_match(const char *h, long long version, bool weak_ok)
{
    if (h == NULL)
        return ETAG_NO_MATCH;
    char ours[ETAG_MAX];
    int ours_len = snprintf(ours, sizeof ours, "v%lld", version);
    const char *p = h;
    while (is_ows(*p))
        p++;
    if (*p == '*') {
        const char *q = p + 1;
        while (is_ows(*q))
            q++;
        return *q == '\0' ? ETAG_MATCH : ETAG_MALFORMED;
    }
    enum etag_match result = ETAG_NO_MATCH;
    for (;;) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (*p == '\0')
            return result;
        bool weak = false;
        if (p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (*p != '"')
            return ETAG_MALFORMED;
        const char *start = ++p;
        while (*p != '"') {
            if (*p == '\0' || !is_etagc((unsigned char)*p))
                return ETAG_MALFORMED;
            p++;
        }
        size_t len = (size_t)(p - start);
        p++; /* closing quote */
        if ((!weak || weak_ok) && len == (size_t)ours_len &&
            memcmp(start, ours, len) == 0)
            result = ETAG_MATCH; /* keep going: the rest must parse too */
        while (is_ows(*p))
            p++;
        if (*p != ',' && *p != '\0')
            return ETAG_MALFORMED;
    }
}

enum etag_match etag_list_match_strong(const char *header, long long version)
{
    return etag_list_match(header, version, false);
}

enum etag_match etag_list_match_weak(const char *header, long long version)
{
    return etag_list_match(header, version, true);
}

bool precondition_valid(const struct precondition *p)
{
    /* Version 0 is never an order's: this only checks the syntax. */
    return p == NULL || (etag_list_match_strong(p->if_match, 0) != ETAG_MALFORMED &&
                         etag_list_match_weak(p->if_none_match, 0) != ETAG_MALFORMED);
}

bool precondition_holds(const struct precondition *p, long long version)
{
    if (p == NULL)
        return true;
    if (p->if_match != NULL && etag_list_match_strong(p->if_match, version) != ETAG_MATCH)
        return false;
    /* RFC 9110, 13.1.2: for a method other than GET/HEAD, a match of
     * If-None-Match fails the precondition. */
    if (p->if_none_match != NULL &&
        etag_list_match_weak(p->if_none_match, version) != ETAG_NO_MATCH)
        return false;
    return true;
}
