#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Matches one pattern against path segment by segment.  "{x}" takes one
 * non-empty segment of at most ROUTE_MAX_PARAM bytes.  A trailing slash on
 * the path is accepted where the pattern has none ("/orders/" is the
 * collection), but only one. */
static bool route_pattern_matches(const char *pattern, const char *path,
                                  struct route_match_params *params)
{
    const char *p = pattern, *s = path;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return false;
            size_t len = strcspn(s, "/");
            if (len == 0 || len > ROUTE_MAX_PARAM)
                return false;
            if (params != NULL) {
                memcpy(params->param, s, len);
                params->param[len] = '\0';
            }
            s += len;
            p = close + 1;
        } else {
            if (*p != *s)
                return false;
            p++;
            s++;
        }
    }
    return *s == '\0' || (s[0] == '/' && s[1] == '\0' && s != path + 1);
}

enum route_result router_match(const struct route *routes, size_t n,
                               const char *method, const char *path,
                               const struct route **found,
                               struct route_match_params *params,
                               char *allow, size_t allow_len)
{
    bool path_known = false;
    size_t used = 0;
    if (allow_len > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        struct route_match_params scratch = {.param = ""};
        if (!route_pattern_matches(routes[i].pattern, path, &scratch))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            *found = &routes[i];
            if (params != NULL)
                *params = scratch;
            return ROUTE_FOUND;
        }
        path_known = true;
        if (used < allow_len) {
            int w = snprintf(allow + used, allow_len - used, "%s%s",
                             used ? ", " : "", routes[i].method);
            if (w > 0)
                used += (size_t)w;
        }
    }
    return path_known ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}
