/*
 * router.h - method + path pattern -> handler.
 *
 * Patterns are literal paths whose segments may be "{name}": such a segment
 * matches any one non-empty segment and is handed to the handler.  A path
 * that matches some route but not with this method is a 405 with an Allow
 * header listing the methods that would work; a path no route matches is 404.
 */
#ifndef ORDERS_ROUTER_H
#define ORDERS_ROUTER_H

#include <stddef.h>

#define ROUTE_MAX_PARAM 64

struct route_match_params {
    char param[ROUTE_MAX_PARAM + 1]; /* the {name} segment, if any */
};

struct route {
    const char *method;
    const char *pattern;
    const char *name; /* stable label for logs and metrics, e.g. "GET /orders/{id}" */
    void (*handler)(void); /* opaque to the router: the caller casts it back */
};

enum route_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_METHOD_NOT_ALLOWED };

/* Looks path up in routes[0..n).  On ROUTE_FOUND *found is the route and
 * params holds the {name} segment.  On ROUTE_METHOD_NOT_ALLOWED allow is
 * filled with a comma-separated method list ("GET, PATCH").  A too-long
 * parameter segment never matches (it cannot be a valid id either). */
enum route_result router_match(const struct route *routes, size_t n,
                               const char *method, const char *path,
                               const struct route **found,
                               struct route_match_params *params,
                               char *allow, size_t allow_len);

#endif
