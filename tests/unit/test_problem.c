/*
 * test_problem.c - the problem table against the contract, problem_render's
 * document, and the response helpers of http.c it rests on.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "problem.h"

/* The contract's error table (plus the 503/504 the service and nginx add). */
static const struct {
    enum problem_kind kind;
    int status;
    const char *type;
} contract[] = {
    {PROBLEM_VALIDATION, 400, "validation_error"},
    {PROBLEM_UNAUTHORIZED, 401, "unauthorized"},
    {PROBLEM_FORBIDDEN, 403, "forbidden"},
    {PROBLEM_NOT_FOUND, 404, "not_found"},
    {PROBLEM_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
    {PROBLEM_CONFLICT, 409, "conflict"},
    {PROBLEM_PAYLOAD_TOO_LARGE, 413, "payload_too_large"},
    {PROBLEM_UNSUPPORTED_MEDIA, 415, "unsupported_media_type"},
    {PROBLEM_INTERNAL, 500, "internal_error"},
    {PROBLEM_UNAVAILABLE, 503, "service_unavailable"},
    {PROBLEM_TIMEOUT, 504, "gateway_timeout"},
    {PROBLEM_PRECONDITION_FAILED, 412, "precondition_failed"},
    {PROBLEM_IDEMPOTENCY_REUSED, 422, "idempotency_key_reused"},
    {PROBLEM_IDEMPOTENCY_IN_PROGRESS, 409, "idempotency_key_in_progress"},
};
#define NCONTRACT (sizeof contract / sizeof contract[0])

static cJSON *body_json(const struct response *res)
{
    ck_assert_ptr_nonnull(res->body);
    cJSON *doc = cJSON_ParseWithLength(res->body, res->body_len);
    ck_assert_msg(doc != NULL, "body is not JSON: %.*s", (int)res->body_len,
                  res->body);
    return doc;
}

static const char *str_member(const cJSON *doc, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, name);
    ck_assert_msg(cJSON_IsString(m), "member %s missing or not a string", name);
    return m->valuestring;
}

START_TEST(test_table_matches_contract)
{
    for (size_t i = 0; i < NCONTRACT; i++) {
        ck_assert_int_eq(problem_status(contract[i].kind), contract[i].status);
        ck_assert_str_eq(problem_type(contract[i].kind), contract[i].type);
        const char *title = problem_title(contract[i].kind);
        ck_assert_ptr_nonnull(title);
        ck_assert_uint_gt(strlen(title), 0);
        /* The title is the reason phrase family, not the type slug. */
        ck_assert_str_ne(title, contract[i].type);
    }
    ck_assert_str_eq(problem_title(PROBLEM_VALIDATION), "Validation Error");
}
END_TEST

START_TEST(test_unknown_kind_is_internal)
{
    enum problem_kind bogus = (enum problem_kind)99;
    ck_assert_int_eq(problem_status(bogus), 500);
    ck_assert_str_eq(problem_type(bogus), "internal_error");
    bogus = (enum problem_kind)-1;
    ck_assert_int_eq(problem_status(bogus), 500);
}
END_TEST

START_TEST(test_render_every_kind)
{
    for (size_t i = 0; i < NCONTRACT; i++) {
        struct response res;
        response_init(&res);
        problem_render(&res, contract[i].kind, "some detail", "/orders/x");
        ck_assert_int_eq(res.status, contract[i].status);
        ck_assert_str_eq(res.content_type, "application/problem+json");
        ck_assert_int_eq(res.body_is_static, 0);
        cJSON *doc = body_json(&res);
        ck_assert_str_eq(str_member(doc, "type"), contract[i].type);
        ck_assert_str_eq(str_member(doc, "title"), problem_title(contract[i].kind));
        ck_assert_str_eq(str_member(doc, "detail"), "some detail");
        ck_assert_str_eq(str_member(doc, "instance"), "/orders/x");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
        ck_assert(cJSON_IsNumber(status));
        ck_assert_int_eq(status->valueint, contract[i].status);
        ck_assert_int_eq(cJSON_GetArraySize(doc), 5);
        cJSON_Delete(doc);
        response_free(&res);
    }
}
END_TEST

START_TEST(test_render_contract_example)
{
    struct response res;
    response_init(&res);
    problem_render(&res, PROBLEM_VALIDATION,
                   "customerId should not be empty, items must contain at least 1 elements",
                   "/orders");
    static const char expected[] =
        "{\"type\":\"validation_error\",\"title\":\"Validation Error\","
        "\"status\":400,\"detail\":\"customerId should not be empty, items must "
        "contain at least 1 elements\",\"instance\":\"/orders\"}";
    ck_assert_uint_eq(res.body_len, strlen(expected));
    ck_assert(memcmp(res.body, expected, res.body_len) == 0);
    response_free(&res);
}
END_TEST

START_TEST(test_render_null_detail_uses_title)
{
    struct response res;
    response_init(&res);
    problem_render(&res, PROBLEM_NOT_FOUND, NULL, "/nope");
    cJSON *doc = body_json(&res);
    ck_assert_str_eq(str_member(doc, "detail"), "Not Found");
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_render_null_instance_omitted)
{
    struct response res;
    response_init(&res);
    problem_render(&res, PROBLEM_CONFLICT, "x", NULL);
    cJSON *doc = body_json(&res);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "instance"));
    ck_assert_int_eq(res.status, 409);
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_render_escapes_detail_and_instance)
{
    static const char detail[] = "a \"quoted\" \\ back\nslash\t\x01 é";
    static const char instance[] = "/orders/\"x\"\n";
    struct response res;
    response_init(&res);
    problem_render(&res, PROBLEM_VALIDATION, detail, instance);
    /* No raw control characters on the wire. */
    for (size_t i = 0; i < res.body_len; i++)
        ck_assert_msg((unsigned char)res.body[i] >= 0x20, "raw control byte at %zu", i);
    cJSON *doc = body_json(&res);
    ck_assert_str_eq(str_member(doc, "detail"), detail);
    ck_assert_str_eq(str_member(doc, "instance"), instance);
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_render_keeps_headers_and_replaces_body)
{
    struct response res;
    response_init(&res);
    ck_assert_int_eq(response_add_header(&res, "Allow", "GET, PATCH"), 0);
    /* A body already set (malloc'ed) is replaced without a leak. */
    char *old = strdup("{\"old\":true}");
    response_set_body(&res, 200, "application/json", old, strlen(old));
    problem_render(&res, PROBLEM_METHOD_NOT_ALLOWED, "nope", "/orders");
    ck_assert_int_eq(res.status, 405);
    ck_assert_int_eq(res.header_count, 1);
    ck_assert_str_eq(response_header(&res, "allow"), "GET, PATCH");
    cJSON *doc = body_json(&res);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "old"));
    cJSON_Delete(doc);
    response_free(&res);
    ck_assert_int_eq(res.header_count, 0);
    ck_assert_ptr_null(res.body);
    ck_assert_int_eq(res.status, 500);
}
END_TEST

START_TEST(test_render_over_static_body)
{
    /* A static body (the OpenAPI document) must not be freed when a
     * problem replaces it. */
    static char static_body[] = "{\"static\":1}";
    struct response res;
    response_init(&res);
    response_set_body(&res, 200, "application/json", static_body, sizeof static_body - 1);
    res.body_is_static = 1;
    problem_render(&res, PROBLEM_INTERNAL, NULL, "/");
    ck_assert_int_eq(res.body_is_static, 0);
    ck_assert_ptr_ne(res.body, static_body);
    ck_assert_int_eq(res.status, 500);
    response_free(&res);
    ck_assert_str_eq(static_body, "{\"static\":1}");
}
END_TEST

/* ---- http.c ------------------------------------------------------------ */

START_TEST(test_response_init_is_500_without_body)
{
    struct response res;
    memset(&res, 0x77, sizeof res);
    response_init(&res);
    ck_assert_int_eq(res.status, 500);
    ck_assert_ptr_null(res.body);
    ck_assert_ptr_null(res.content_type);
    ck_assert_int_eq(res.header_count, 0);
    response_free(&res); /* freeing an empty response is fine */
}
END_TEST

START_TEST(test_response_headers_slots)
{
    struct response res;
    response_init(&res);
    char name[16];
    for (int i = 0; i < RESPONSE_MAX_HEADERS; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        ck_assert_int_eq(response_add_header(&res, name, "v"), 0);
    }
    ck_assert_int_eq(response_add_header(&res, "X-Over", "v"), -1);
    ck_assert_int_eq(res.header_count, RESPONSE_MAX_HEADERS);
    ck_assert_str_eq(response_header(&res, "x-h3"), "v");
    ck_assert_ptr_null(response_header(&res, "X-Over"));
    ck_assert_ptr_null(response_header(&res, "X-H"));
    response_free(&res);
}
END_TEST

START_TEST(test_response_header_values_are_copied)
{
    struct response res;
    response_init(&res);
    char value[] = "/orders/abc";
    ck_assert_int_eq(response_add_header(&res, "Location", value), 0);
    value[0] = 'X';
    ck_assert_str_eq(response_header(&res, "Location"), "/orders/abc");
    response_free(&res);
}
END_TEST

START_TEST(test_response_set_json)
{
    struct response res;
    response_init(&res);
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "status", "ok");
    response_set_json(&res, 200, obj);
    cJSON_Delete(obj);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/json");
    ck_assert_uint_eq(res.body_len, strlen("{\"status\":\"ok\"}"));
    ck_assert(memcmp(res.body, "{\"status\":\"ok\"}", res.body_len) == 0);
    response_free(&res);
}
END_TEST

START_TEST(test_json_media_type)
{
    static const char *const yes[] = {
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "  application/json",
        "application/problem+json",
        "application/merge-patch+json; charset=utf-8",
    };
    static const char *const no[] = {
        "",
        "text/plain",
        "application/jsonx",
        "application/json-patch",
        "application/xml",
        "text/json",
        "application/+json",
        "json",
        "multipart/form-data; boundary=application/json",
        "application/x-www-form-urlencoded",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(http_is_json_media_type(yes[i]), "refused '%s'", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!http_is_json_media_type(no[i]), "accepted '%s'", no[i]);
    ck_assert(!http_is_json_media_type(NULL));
}
END_TEST

START_TEST(test_reason_phrases)
{
    ck_assert_str_eq(http_reason_phrase(201), "Created");
    ck_assert_str_eq(http_reason_phrase(405), "Method Not Allowed");
    ck_assert_str_eq(http_reason_phrase(415), "Unsupported Media Type");
    /* Every status a problem can carry has a real phrase. */
    for (size_t i = 0; i < NCONTRACT; i++)
        ck_assert_str_ne(http_reason_phrase(contract[i].status), "Unknown");
    ck_assert_str_eq(http_reason_phrase(299), "Unknown");
}
END_TEST

static Suite *problem_suite(void)
{
    Suite *s = suite_create("problem");
    TCase *tc = tcase_create("problem");
    tcase_add_test(tc, test_table_matches_contract);
    tcase_add_test(tc, test_unknown_kind_is_internal);
    tcase_add_test(tc, test_render_every_kind);
    tcase_add_test(tc, test_render_contract_example);
    tcase_add_test(tc, test_render_null_detail_uses_title);
    tcase_add_test(tc, test_render_null_instance_omitted);
    tcase_add_test(tc, test_render_escapes_detail_and_instance);
    tcase_add_test(tc, test_render_keeps_headers_and_replaces_body);
    tcase_add_test(tc, test_render_over_static_body);
    suite_add_tcase(s, tc);

    TCase *th = tcase_create("http");
    tcase_add_test(th, test_response_init_is_500_without_body);
    tcase_add_test(th, test_response_headers_slots);
    tcase_add_test(th, test_response_header_values_are_copied);
    tcase_add_test(th, test_response_set_json);
    tcase_add_test(th, test_json_media_type);
    tcase_add_test(th, test_reason_phrases);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(problem_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
