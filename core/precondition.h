/*
 * precondition.h - conditional requests (RFC 9110, section 13): the ETag of
 * an order and the If-Match / If-None-Match lists compared with it.
 *
 * An order's ETag is derived from the version the store increments on every
 * change ("v<version>"), never from a hash of the rendered body: it changes
 * exactly when the order changes, whatever the representation looks like.
 * Pure functions; the store evaluates a PATCH's precondition inside its
 * write transaction (precondition_holds), so nothing can change between the
 * check and the write.
 */
#ifndef ORDERS_PRECONDITION_H
#define ORDERS_PRECONDITION_H

#include <stdbool.h>
#include <stddef.h>

/* "\"v" + 19 digits + "\"" + NUL */
#define ETAG_MAX 24

/* Formats the strong ETag of version into out ("\"v7\""). */
void etag_format(long long version, char out[ETAG_MAX]);

enum etag_match {
    ETAG_NO_MATCH,
    ETAG_MATCH,
    ETAG_MALFORMED, /* not "*" and not a list of entity-tags */
};

/* Whether the field value of If-Match (strong comparison: a weak tag W/"..."
 * never matches) names version, or is "*".  A NULL header matches nothing. */
enum etag_match etag_list_match_strong(const char *header, long long version);

/* The same for If-None-Match, which RFC 9110 (13.1.2) compares weakly: W/"v7"
 * names version 7 too, so that a tag weakened on the way (a compressing
 * proxy does that) still gives a 304. */
enum etag_match etag_list_match_weak(const char *header, long long version);

/* What a PATCH asked for: the raw If-Match and If-None-Match values (NULL
 * when absent), already checked with precondition_parse(). */
struct precondition {
    const char *if_match;
    const char *if_none_match;
};

/* Returns false when a header is present but malformed (a 400). */
bool precondition_valid(const struct precondition *p);

/* True when the write may go ahead on an existing order at version: If-Match
 * (when given) names it or is "*", and If-None-Match (when given) does not
 * name it and is not "*".  p NULL: no precondition. */
bool precondition_holds(const struct precondition *p, long long version);

#endif
