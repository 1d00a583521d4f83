/*
 * fuzz_router.c - libFuzzer target for router_match, path routing.
 *
 * Input: method, '\n', path (the first newline splits; without one the
 * whole input is the path and the method is GET).  The table is the one in
 * core/app.c, row for row (it is static there; keep the two in step).  The
 * router is checked against a reference written from router.h's promise,
 * segment by segment: "{name}" takes one non-empty segment of at most
 * ROUTE_MAX_PARAM bytes; one trailing slash is accepted where the pattern
 * has none, but "//" is not "/"; the first row with a matching pattern and
 * method wins; otherwise a matching pattern means 405 with every method
 * whose pattern matches, in table order, in Allow.
 *
 *   tests/fuzz/run.sh router
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_router: check failed: %s (line %d)\n",     \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static void h0(void) {}

static const struct route routes[] = {
    {"GET", "/", "GET /", h0},
    {"GET", "/openapi.json", "GET /openapi.json", h0},
    {"GET", "/healthz", "GET /healthz", h0},
    {"GET", "/readyz", "GET /readyz", h0},
    {"POST", "/orders", "POST /orders", h0},
    {"GET", "/orders", "GET /orders", h0},
    {"GET", "/orders/{id}", "GET /orders/{id}", h0},
    {"PATCH", "/orders/{id}", "PATCH /orders/{id}", h0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Matches [path, path+n) against pattern one '/'-separated segment at a
 * time; on success param gets the {name} segment ("" if none). */
static bool ref_segments(const char *pattern, const char *path, size_t n,
                         char *param)
{
    const char *p = pattern, *s = path, *end = path + n;
    param[0] = '\0';
    for (;;) {
        size_t plen = strcspn(p, "/");
        const char *slash = memchr(s, '/', (size_t)(end - s));
        size_t slen = slash ? (size_t)(slash - s) : (size_t)(end - s);
        if (plen > 0 && p[0] == '{') {
            if (slen == 0 || slen > ROUTE_MAX_PARAM)
                return false;
            memcpy(param, s, slen);
            param[slen] = '\0';
        } else if (plen != slen || memcmp(p, s, slen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
        if (*p == '\0' || s == end)
            return *p == '\0' && s == end;
        p++; /* both at '/' */
        s++;
    }
}

static bool ref_matches(const char *pattern, const char *path, char *param)
{
    size_t n = strlen(path);
    if (ref_segments(pattern, path, n, param))
        return true;
    /* One trailing slash more than the pattern, unless what is left is the
     * bare root. */
    return n > 2 && path[n - 1] == '/' && ref_segments(pattern, path, n - 1, param);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *method = "GET", *path = buf;
    char *nl = memchr(buf, '\n', size);
    if (nl != NULL) {
        *nl = '\0';
        method = buf;
        path = nl + 1;
    }

    const struct route *found = NULL;
    struct route_match_params params;
    memset(&params, 0x5a, sizeof params);
    char allow[64];
    enum route_result r = router_match(routes, NROUTES, method, path, &found,
                                       &params, allow, sizeof allow);

    /* The reference. */
    const struct route *want = NULL;
    char want_param[ROUTE_MAX_PARAM + 1] = "";
    char want_allow[64] = "";
    bool path_known = false;
    for (size_t i = 0; i < NROUTES && want == NULL; i++) {
        char param[ROUTE_MAX_PARAM + 1];
        if (!ref_matches(routes[i].pattern, path, param))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            want = &routes[i];
            memcpy(want_param, param, sizeof param);
        } else {
            path_known = true;
            size_t used = strlen(want_allow);
            snprintf(want_allow + used, sizeof want_allow - used, "%s%s",
                     used ? ", " : "", routes[i].method);
        }
    }

    if (want != NULL) {
        CHECK(r == ROUTE_FOUND);
        CHECK(found == want);
        if (strchr(want->pattern, '{') != NULL)
            CHECK(strcmp(params.param, want_param) == 0);
    } else if (path_known) {
        CHECK(r == ROUTE_METHOD_NOT_ALLOWED);
        CHECK(strcmp(allow, want_allow) == 0);
    } else {
        CHECK(r == ROUTE_NOT_FOUND);
    }
    free(buf);
    return 0;
}
