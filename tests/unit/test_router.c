/*
 * test_router.c - router_match: literal and {param} segments, the one
 * tolerated trailing slash, 404 versus 405 with its Allow list, and the
 * bounds of the parameter and the Allow buffer.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static void h_root(void) {}
static void h_health(void) {}
static void h_create(void) {}
static void h_list(void) {}
static void h_get(void) {}
static void h_update(void) {}

/* The service's table, in the same order as app.c. */
static const struct route routes[] = {
    {"GET", "/", "GET /", h_root},
    {"GET", "/healthz", "GET /healthz", h_health},
    {"POST", "/orders", "POST /orders", h_create},
    {"GET", "/orders", "GET /orders", h_list},
    {"GET", "/orders/{id}", "GET /orders/{id}", h_get},
    {"PATCH", "/orders/{id}", "PATCH /orders/{id}", h_update},
};
#define NROUTES (sizeof routes / sizeof routes[0])

struct outcome {
    enum route_result r;
    const struct route *found;
    struct route_match_params params;
    char allow[64];
};

static struct outcome match(const char *method, const char *path)
{
    struct outcome o;
    memset(&o, 0x5a, sizeof o); /* garbage: the router must set what it promises */
    o.found = NULL;
    o.r = router_match(routes, NROUTES, method, path, &o.found, &o.params,
                       o.allow, sizeof o.allow);
    return o;
}

START_TEST(test_literal_routes)
{
    struct outcome o = match("GET", "/");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found, &routes[0]);

    o = match("GET", "/healthz");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_str_eq(o.found->name, "GET /healthz");

    o = match("POST", "/orders");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_create);

    o = match("GET", "/orders");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_list);
}
END_TEST

START_TEST(test_collection_trailing_slash)
{
    /* The contract: /orders and /orders/ are the same resource. */
    struct outcome o = match("GET", "/orders/");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_list);
    o = match("POST", "/orders/");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_create);
    /* Only one slash is forgiven. */
    ck_assert_int_eq(match("GET", "/orders//").r, ROUTE_NOT_FOUND);
    ck_assert_int_eq(match("GET", "/healthz//").r, ROUTE_NOT_FOUND);
    /* "/" itself is not "" + trailing slash of something else. */
    ck_assert_int_eq(match("GET", "//").r, ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(test_param_segment)
{
    struct outcome o = match("GET", "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_get);
    ck_assert_str_eq(o.params.param, "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60");

    o = match("PATCH", "/orders/abc");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_ptr_eq(o.found->handler, h_update);
    ck_assert_str_eq(o.params.param, "abc");

    /* A trailing slash after the id is the same tolerance as for the
     * collection; the slash is not part of the parameter. */
    o = match("GET", "/orders/abc/");
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_str_eq(o.params.param, "abc");
}
END_TEST

START_TEST(test_param_never_spans_segments)
{
    ck_assert_int_eq(match("GET", "/orders/a/b").r, ROUTE_NOT_FOUND);
    ck_assert_int_eq(match("GET", "/orders/a/b/").r, ROUTE_NOT_FOUND);
    /* Empty segment: "/orders//x" has an empty id followed by more. */
    ck_assert_int_eq(match("GET", "/orders//x").r, ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(test_param_length_bound)
{
    char path[16 + ROUTE_MAX_PARAM + 2];
    char id[ROUTE_MAX_PARAM + 2];
    memset(id, 'a', ROUTE_MAX_PARAM);
    id[ROUTE_MAX_PARAM] = '\0';
    snprintf(path, sizeof path, "/orders/%s", id);
    struct outcome o = match("GET", path);
    ck_assert_int_eq(o.r, ROUTE_FOUND);
    ck_assert_uint_eq(strlen(o.params.param), ROUTE_MAX_PARAM);
    ck_assert_str_eq(o.params.param, id);

    id[ROUTE_MAX_PARAM] = 'a';
    id[ROUTE_MAX_PARAM + 1] = '\0';
    snprintf(path, sizeof path, "/orders/%s", id);
    o = match("GET", path);
    ck_assert_int_eq(o.r, ROUTE_NOT_FOUND);
    ck_assert_ptr_null(o.found);
}
END_TEST

START_TEST(test_not_found)
{
    static const char *const paths[] = {
        "", "/order", "/ordersX", "/orders-", "/Orders", "/healthz/x",
        "/healthzz", "/x", "orders", "/orders?limit=1", "/%6frders",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct outcome o = match("GET", paths[i]);
        ck_assert_msg(o.r == ROUTE_NOT_FOUND, "path '%s' gave %d", paths[i], o.r);
        ck_assert_msg(o.allow[0] == '\0', "path '%s': allow '%s'", paths[i], o.allow);
        ck_assert_ptr_null(o.found);
    }
}
END_TEST

START_TEST(test_method_not_allowed_lists_methods)
{
    struct outcome o = match("DELETE", "/orders/abc");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "GET, PATCH");
    ck_assert_ptr_null(o.found);

    o = match("PUT", "/orders");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "POST, GET");

    o = match("PATCH", "/orders/");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "POST, GET");

    o = match("POST", "/");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "GET");

    o = match("POST", "/healthz");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "GET");
}
END_TEST

START_TEST(test_method_is_case_sensitive)
{
    /* RFC 9110 9.1: method names are case-sensitive. */
    struct outcome o = match("get", "/healthz");
    ck_assert_int_eq(o.r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(o.allow, "GET");
    ck_assert_int_eq(match("Patch", "/orders/x").r, ROUTE_METHOD_NOT_ALLOWED);
}
END_TEST

START_TEST(test_allow_buffer_bounds)
{
    const struct route *found = NULL;
    struct route_match_params params;
    char allow[8];
    memset(allow, 'Z', sizeof allow);
    /* "GET, PATCH" does not fit in 5 bytes: truncated, still terminated,
     * never written past the length given. */
    enum route_result r = router_match(routes, NROUTES, "PUT", "/orders/x",
                                       &found, &params, allow, 5);
    ck_assert_int_eq(r, ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_uint_lt(strlen(allow), 5);
    ck_assert_int_eq(allow[5], 'Z');
    ck_assert_int_eq(allow[7], 'Z');

    /* allow_len 0: nothing may be written at all. */
    memset(allow, 'Z', sizeof allow);
    r = router_match(routes, NROUTES, "PUT", "/orders/x", &found, &params,
                     allow, 0);
    ck_assert_int_eq(r, ROUTE_METHOD_NOT_ALLOWED);
    for (size_t i = 0; i < sizeof allow; i++)
        ck_assert_int_eq(allow[i], 'Z');
}
END_TEST

START_TEST(test_params_may_be_null)
{
    const struct route *found = NULL;
    char allow[32];
    enum route_result r = router_match(routes, NROUTES, "GET", "/orders/abc",
                                       &found, NULL, allow, sizeof allow);
    ck_assert_int_eq(r, ROUTE_FOUND);
    ck_assert_ptr_eq(found->handler, h_get);
}
END_TEST

START_TEST(test_empty_table)
{
    const struct route *found = NULL;
    struct route_match_params params;
    char allow[8] = "junk";
    ck_assert_int_eq(router_match(routes, 0, "GET", "/", &found, &params, allow,
                                  sizeof allow),
                     ROUTE_NOT_FOUND);
    ck_assert_str_eq(allow, "");
    ck_assert_ptr_null(found);
}
END_TEST

START_TEST(test_first_matching_route_wins)
{
    /* A literal listed before a pattern takes precedence for that path. */
    static const struct route table[] = {
        {"GET", "/orders/special", "special", h_root},
        {"GET", "/orders/{id}", "by id", h_get},
    };
    const struct route *found = NULL;
    struct route_match_params params;
    char allow[32];
    ck_assert_int_eq(router_match(table, 2, "GET", "/orders/special", &found,
                                  &params, allow, sizeof allow),
                     ROUTE_FOUND);
    ck_assert_str_eq(found->name, "special");
    ck_assert_int_eq(router_match(table, 2, "GET", "/orders/other", &found,
                                  &params, allow, sizeof allow),
                     ROUTE_FOUND);
    ck_assert_str_eq(found->name, "by id");
    ck_assert_str_eq(params.param, "other");
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");
    tcase_add_test(tc, test_literal_routes);
    tcase_add_test(tc, test_collection_trailing_slash);
    tcase_add_test(tc, test_param_segment);
    tcase_add_test(tc, test_param_never_spans_segments);
    tcase_add_test(tc, test_param_length_bound);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_method_not_allowed_lists_methods);
    tcase_add_test(tc, test_method_is_case_sensitive);
    tcase_add_test(tc, test_allow_buffer_bounds);
    tcase_add_test(tc, test_params_may_be_null);
    tcase_add_test(tc, test_empty_table);
    tcase_add_test(tc, test_first_matching_route_wins);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
