/* The OTLP/HTTP JSON encoding of spans (fcgi/otlp.c), checked against the
 * shape the OTLP specification gives ExportTraceServiceRequest, and the
 * span's strings (core/span.c) valid UTF-8 whatever the client sent. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "otlp.h"

static struct span sample_span(void)
{
    struct span s;
    memset(&s, 0, sizeof s);
    strcpy(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(s.span_id, "00f067aa0ba902b7");
    strcpy(s.parent_span_id, "b7ad6b7169203331");
    strcpy(s.name, "GET /orders/{id}");
    s.kind = SPAN_KIND_SERVER;
    s.start_ns = 1764074096789000000LL;
    s.end_ns = 1764074096790500000LL;
    span_add_str(&s, "http.request.method", "GET");
    span_add_int(&s, "http.response.status_code", 200);
    return s;
}

static const cJSON *path(const cJSON *node, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
    ck_assert_msg(v != NULL, "missing %s", key);
    return v;
}

START_TEST(test_encodes_export_request)
{
    struct span spans[2] = {sample_span(), sample_span()};
    spans[1].parent_span_id[0] = '\0';
    spans[1].error = 1;
    char *text = otlp_encode_spans(spans, 2, "orders", "0.1.0");
    ck_assert_ptr_nonnull(text);
    cJSON *doc = cJSON_Parse(text);
    ck_assert_ptr_nonnull(doc);
    const cJSON *rs = cJSON_GetArrayItem(path(doc, "resourceSpans"), 0);
    const cJSON *attr = cJSON_GetArrayItem(path(path(rs, "resource"), "attributes"), 0);
    ck_assert_str_eq(path(attr, "key")->valuestring, "service.name");
    ck_assert_str_eq(path(path(attr, "value"), "stringValue")->valuestring, "orders");
    const cJSON *ss = cJSON_GetArrayItem(path(rs, "scopeSpans"), 0);
    ck_assert_str_eq(path(path(ss, "scope"), "name")->valuestring, "orders");
    const cJSON *list = path(ss, "spans");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    const cJSON *s0 = cJSON_GetArrayItem(list, 0);
    ck_assert_str_eq(path(s0, "traceId")->valuestring, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(path(s0, "spanId")->valuestring, "00f067aa0ba902b7");
    ck_assert_str_eq(path(s0, "parentSpanId")->valuestring, "b7ad6b7169203331");
    ck_assert_int_eq(path(s0, "kind")->valueint, 2);
    /* 64-bit integers are decimal strings in OTLP JSON */
    ck_assert_str_eq(path(s0, "startTimeUnixNano")->valuestring, "1764074096789000000");
    ck_assert_str_eq(path(s0, "endTimeUnixNano")->valuestring, "1764074096790500000");
    ck_assert_int_eq(path(path(s0, "status"), "code")->valueint, 0);
    const cJSON *a1 = cJSON_GetArrayItem(path(s0, "attributes"), 1);
    ck_assert_str_eq(path(a1, "key")->valuestring, "http.response.status_code");
    ck_assert_str_eq(path(path(a1, "value"), "intValue")->valuestring, "200");
    const cJSON *s1 = cJSON_GetArrayItem(list, 1);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(s1, "parentSpanId"));
    ck_assert_int_eq(path(path(s1, "status"), "code")->valueint, 2);
    cJSON_Delete(doc);
    free(text);
}
END_TEST

START_TEST(test_attributes_are_bounded)
{
    struct span s = sample_span();
    char long_value[300];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    for (int i = 0; i < 20; i++)
        span_add_str(&s, "k", long_value);
    ck_assert_int_eq(s.attr_count, SPAN_MAX_ATTRS);
    ck_assert_uint_eq(strlen(s.attrs[2].str), SPAN_ATTR_STR_MAX - 1);
    span_add_int(&s, "over", 1);
    ck_assert_int_eq(s.attr_count, SPAN_MAX_ATTRS);
    span_add_str(&s, "null", NULL);
    ck_assert_int_eq(s.attr_count, SPAN_MAX_ATTRS);
}
END_TEST

START_TEST(test_escapes_names_and_encodes_empty_batch)
{
    struct span s = sample_span();
    strcpy(s.name, "GET /\"quoted\"\n");
    char *text = otlp_encode_spans(&s, 1, "orders", "0.1.0");
    cJSON *doc = cJSON_Parse(text);
    ck_assert_ptr_nonnull(doc);
    cJSON_Delete(doc);
    free(text);
    text = otlp_encode_spans(NULL, 0, "orders", "0.1.0");
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"spans\":[]"));
    free(text);
    ck_assert(clock_now_ns() > 1700000000000000000LL);
}
END_TEST

/* url.path and an unknown method are the client's bytes: a span holds
 * them as valid UTF-8 (a strict collector rejects the whole batch over one
 * bad string), cut before a character, never inside it. */
START_TEST(test_strings_are_valid_utf8)
{
    struct span s = sample_span();
    char path[SPAN_ATTR_STR_MAX + 8];
    /* 94 ASCII bytes, then "\xc3\xa9": the character would end at byte 96,
     * one past the 95 the attribute holds. */
    memset(path, 'p', SPAN_ATTR_STR_MAX - 2);
    memcpy(path + SPAN_ATTR_STR_MAX - 2, "\xc3\xa9", 3);
    span_add_str(&s, "url.path", path);
    const char *kept = s.attrs[s.attr_count - 1].str;
    ck_assert_uint_eq(strlen(kept), SPAN_ATTR_STR_MAX - 2);
    ck_assert(kept[SPAN_ATTR_STR_MAX - 3] == 'p');

    span_add_str(&s, "raw", "/orders/\xff\xfe");
    ck_assert_str_eq(s.attrs[s.attr_count - 1].str, "/orders/\xef\xbf\xbd\xef\xbf\xbd");

    span_set_name(&s, "G\x80T");
    ck_assert_str_eq(s.name, "G\xef\xbf\xbdT");

    /* The encoded batch parses, and carries the replacement characters. */
    char *text = otlp_encode_spans(&s, 1, "orders", "0.1.0");
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "\xff"));
    cJSON *doc = cJSON_Parse(text);
    ck_assert_ptr_nonnull(doc);
    cJSON_Delete(doc);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("span");
    TCase *tc = tcase_create("otlp");
    tcase_add_test(tc, test_encodes_export_request);
    tcase_add_test(tc, test_attributes_are_bounded);
    tcase_add_test(tc, test_escapes_names_and_encodes_empty_batch);
    tcase_add_test(tc, test_strings_are_valid_utf8);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
