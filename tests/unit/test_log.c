/*
 * test_log.c - one JSON object per line: the envelope the contract names,
 * escaping that survives any message, the size bound, and log_emit's level
 * filter and single write.  Every line is parsed back with cJSON.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "trace.h"

#define T0 1795610096789LL /* 2026-11-25T12:34:56.789Z */

static struct trace_context sample_trace(void)
{
    struct trace_context tc;
    memset(&tc, 0, sizeof tc);
    strcpy(tc.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(tc.span_id, "00f067aa0ba902b7");
    tc.flags = 1;
    return tc;
}

/* Formats into a big buffer, checks the line shape, returns it parsed. */
static cJSON *format_parsed(enum log_level level, const struct trace_context *tc,
                            const char *message, const struct log_field *fields,
                            int n, char *line, int cap)
{
    int len = log_format(line, cap, NULL, level, tc, message, fields, n, T0);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_eq(strlen(line), (size_t)len);
    ck_assert_int_eq(line[len - 1], '\n');
    /* Exactly one line: no raw newline or other control byte before the end. */
    for (int i = 0; i < len - 1; i++)
        ck_assert_msg((unsigned char)line[i] >= 0x20, "raw byte 0x%02x at %d",
                      (unsigned char)line[i], i);
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(line, &end, 0);
    ck_assert_msg(doc != NULL, "not JSON: %s", line);
    ck_assert(cJSON_IsObject(doc));
    ck_assert_str_eq(end, "\n"); /* nothing but the newline after the object */
    return doc;
}

static const char *str_of(const cJSON *doc, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, key);
    ck_assert_msg(cJSON_IsString(m), "%s missing or not a string", key);
    return m->valuestring;
}

/* Strict UTF-8 check (RFC 3629): what a JSON consumer may insist on. */
static bool valid_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], extra, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { extra = 1; min = 0x80; c &= 0x1f; }
        else if ((c & 0xf0) == 0xe0) { extra = 2; min = 0x800; c &= 0x0f; }
        else if ((c & 0xf8) == 0xf0) { extra = 3; min = 0x10000; c &= 0x07; }
        else return false;
        if (i + extra >= n)
            return false;
        for (unsigned k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (p[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

START_TEST(test_envelope_fields_and_order)
{
    struct trace_context tc = sample_trace();
    struct log_field fields[] = {
        LOG_STR("order_id", "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60"),
        LOG_STR("method", "POST"),
        LOG_INT("status", 201),
        LOG_DBL("duration_ms", 1.25),
    };
    char line[1024];
    cJSON *doc = format_parsed(LOG_INFO, &tc, "Order created", fields, 4, line,
                               sizeof line);
    static const char *const order[] = {"timestamp", "level", "service", "trace_id",
                                        "span_id", "message", "order_id", "method",
                                        "status", "duration_ms"};
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, doc) {
        ck_assert_int_lt(i, 10);
        ck_assert_str_eq(m->string, order[i]);
        i++;
    }
    ck_assert_int_eq(i, 10);
    ck_assert_str_eq(str_of(doc, "timestamp"), "2026-11-25T12:34:56.789Z");
    ck_assert_str_eq(str_of(doc, "level"), "info");
    ck_assert_str_eq(str_of(doc, "service"), "orders");
    ck_assert_str_eq(str_of(doc, "trace_id"), tc.trace_id);
    ck_assert_str_eq(str_of(doc, "span_id"), tc.span_id);
    ck_assert_str_eq(str_of(doc, "message"), "Order created");
    ck_assert_str_eq(str_of(doc, "order_id"), "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    ck_assert(cJSON_IsNumber(status));
    ck_assert_int_eq(status->valueint, 201);
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(doc, "duration_ms");
    ck_assert(cJSON_IsNumber(dur));
    ck_assert_double_eq_tol(dur->valuedouble, 1.25, 1e-9);
    cJSON_Delete(doc);
}
END_TEST

START_TEST(test_levels)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int l = LOG_DEBUG; l <= LOG_ERROR; l++) {
        char line[512];
        cJSON *doc = format_parsed((enum log_level)l, NULL, "m", NULL, 0, line,
                                   sizeof line);
        ck_assert_str_eq(str_of(doc, "level"), names[l]);
        cJSON_Delete(doc);
        ck_assert_str_eq(log_level_name((enum log_level)l), names[l]);
    }
}
END_TEST

START_TEST(test_without_trace)
{
    char line[512];
    cJSON *doc = format_parsed(LOG_WARN, NULL, "startup", NULL, 0, line, sizeof line);
    ck_assert_str_eq(str_of(doc, "trace_id"), "");
    ck_assert_str_eq(str_of(doc, "span_id"), "");
    ck_assert_int_eq(cJSON_GetArraySize(doc), 6);
    cJSON_Delete(doc);
}
END_TEST

START_TEST(test_escaping)
{
    /* Every control character, quotes and backslashes come back intact. */
    char message[64];
    int k = 0;
    for (int c = 1; c < 0x20; c++)
        message[k++] = (char)c;
    message[k++] = '"';
    message[k++] = '\\';
    message[k++] = '/';
    message[k++] = 0x7f;
    message[k] = '\0';
    struct log_field fields[] = {
        LOG_STR("path", "/orders/\"x\"\n{\"injected\":true}"),
        LOG_STR("we\"ird\nkey", "v"),
    };
    char line[2048];
    cJSON *doc = format_parsed(LOG_ERROR, NULL, message, fields, 2, line, sizeof line);
    ck_assert_str_eq(str_of(doc, "message"), message);
    ck_assert_str_eq(str_of(doc, "path"), "/orders/\"x\"\n{\"injected\":true}");
    ck_assert_str_eq(str_of(doc, "we\"ird\nkey"), "v");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "injected"));
    cJSON_Delete(doc);
    ck_assert_ptr_nonnull(strstr(line, "\\n"));
    ck_assert_ptr_nonnull(strstr(line, "\\u0001"));
    ck_assert_ptr_nonnull(strstr(line, "\\u001f"));
}
END_TEST

START_TEST(test_utf8_kept)
{
    char line[512];
    struct log_field f[] = {LOG_STR("customer_id", "J\xc3\xbcrgen \xf0\x9f\x98\x80")};
    cJSON *doc = format_parsed(LOG_INFO, NULL, "caf\xc3\xa9", f, 1, line, sizeof line);
    ck_assert(valid_utf8((const unsigned char *)line, strlen(line)));
    ck_assert_str_eq(str_of(doc, "message"), "caf\xc3\xa9");
    ck_assert_str_eq(str_of(doc, "customer_id"), "J\xc3\xbcrgen \xf0\x9f\x98\x80");
    cJSON_Delete(doc);
}
END_TEST

/* Regression (common/log.c, log_put_json_string): bytes >= 0x80 were copied
 * as they came, on the assumption that every logged string is valid UTF-8.
 * The access log logs req->path, which the adapter takes raw from
 * REQUEST_URI; nginx passes raw bytes >= 0x80 through, so a request for
 * "/orders/\xff" writes a log line that is not UTF-8 and therefore not a
 * JSON text (RFC 8259, 8.1).  Expected: invalid sequences become U+FFFD (or
 * \u00XX). */
START_TEST(test_invalid_utf8_still_valid_json_text)
{
    char line[512];
    struct log_field f[] = {LOG_STR("path", "/orders/\xff\xfe\xc3")};
    int len = log_format(line, sizeof line, NULL, LOG_INFO, NULL, "request", f, 1, T0);
    ck_assert_int_gt(len, 0);
    ck_assert_msg(valid_utf8((const unsigned char *)line, (size_t)len),
                  "log line is not valid UTF-8");
}
END_TEST

START_TEST(test_null_string_and_extremes)
{
    struct log_field fields[] = {
        LOG_STR("sub", NULL),
        LOG_INT("min", LLONG_MIN),
        LOG_INT("max", LLONG_MAX),
        LOG_INT("zero", 0),
        LOG_DBL("neg", -0.5),
        LOG_STR("empty", ""),
    };
    char line[1024];
    cJSON *doc = format_parsed(LOG_INFO, NULL, "", fields, 6, line, sizeof line);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "sub")));
    ck_assert_str_eq(str_of(doc, "message"), "");
    ck_assert_str_eq(str_of(doc, "empty"), "");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "min")));
    ck_assert_ptr_nonnull(strstr(line, "\"min\":-9223372036854775808"));
    ck_assert_ptr_nonnull(strstr(line, "\"max\":9223372036854775807"));
    ck_assert_double_eq_tol(cJSON_GetObjectItemCaseSensitive(doc, "neg")->valuedouble,
                            -0.5, 1e-9);
    cJSON_Delete(doc);
}
END_TEST

START_TEST(test_timestamp_fallback)
{
    /* A negative clock cannot be rendered; the line still is. */
    char line[512];
    int len = log_format(line, sizeof line, NULL, LOG_INFO, NULL, "m", NULL, 0, -5);
    ck_assert_int_gt(len, 0);
    cJSON *doc = cJSON_Parse(line);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(str_of(doc, "timestamp"), "1970-01-01T00:00:00.000Z");
    cJSON_Delete(doc);
    len = log_format(line, sizeof line, NULL, LOG_INFO, NULL, "m", NULL, 0, 0);
    doc = cJSON_Parse(line);
    ck_assert_str_eq(str_of(doc, "timestamp"), "1970-01-01T00:00:00.000Z");
    cJSON_Delete(doc);
}
END_TEST

START_TEST(test_buffer_bound_exact)
{
    struct trace_context tc = sample_trace();
    struct log_field f[] = {LOG_STR("k", "value")};
    char big[1024];
    int n = log_format(big, sizeof big, NULL, LOG_INFO, &tc, "msg", f, 1, T0);
    ck_assert_int_gt(n, 0);

    /* n bytes plus the NUL fit exactly... */
    char *exact = malloc((size_t)n + 1);
    ck_assert_int_eq(log_format(exact, n + 1, NULL, LOG_INFO, &tc, "msg", f, 1, T0), n);
    ck_assert_str_eq(exact, big);
    free(exact);

    /* ...one byte less does not, and nothing is written past buflen
     * (malloc'ed to the size: ASan/valgrind see any overrun). */
    char *tight = malloc((size_t)n);
    ck_assert_int_eq(log_format(tight, n, NULL, LOG_INFO, &tc, "msg", f, 1, T0), -1);
    free(tight);
    char tiny[4];
    ck_assert_int_eq(log_format(tiny, sizeof tiny, NULL, LOG_INFO, NULL, "m", NULL, 0, T0), -1);
}
END_TEST

START_TEST(test_level_parse)
{
    enum log_level l = LOG_ERROR;
    ck_assert(log_level_parse("debug", &l));
    ck_assert_int_eq(l, LOG_DEBUG);
    ck_assert(log_level_parse("INFO", &l));
    ck_assert_int_eq(l, LOG_INFO);
    ck_assert(log_level_parse("Warning", &l));
    ck_assert_int_eq(l, LOG_WARN);
    ck_assert(log_level_parse("warn", &l));
    ck_assert_int_eq(l, LOG_WARN);
    ck_assert(log_level_parse("error", &l));
    ck_assert_int_eq(l, LOG_ERROR);
    l = LOG_DEBUG;
    ck_assert(!log_level_parse("fatal", &l));
    ck_assert(!log_level_parse("", &l));
    ck_assert(!log_level_parse(" info", &l));
    ck_assert(!log_level_parse(NULL, &l));
    ck_assert_int_eq(l, LOG_DEBUG);
    ck_assert_str_eq(log_level_name((enum log_level)42), "info");
}
END_TEST

/* ---- log_emit ---------------------------------------------------------- */

static char *read_all(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    return buf;
}

START_TEST(test_emit_filters_and_writes_lines)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct logger lg = {.level = LOG_INFO, .fd = p[1]};
    struct trace_context tc = sample_trace();
    log_emit(&lg, LOG_DEBUG, &tc, "hidden", NULL, 0);
    log_emit(&lg, LOG_INFO, &tc, "first", NULL, 0);
    struct log_field f[] = {LOG_INT("status", 500)};
    log_emit(&lg, LOG_ERROR, NULL, "second", f, 1);
    log_emit(NULL, LOG_ERROR, NULL, "no logger", NULL, 0); /* ignored */
    close(p[1]);
    char *out = read_all(p[0]);
    close(p[0]);

    ck_assert_ptr_null(strstr(out, "hidden"));
    char *second_line = strchr(out, '\n');
    ck_assert_ptr_nonnull(second_line);
    second_line++;
    ck_assert_ptr_nonnull(strchr(second_line, '\n'));
    ck_assert_str_eq(strchr(second_line, '\n'), "\n"); /* exactly two lines */

    cJSON *a = cJSON_ParseWithOpts(out, NULL, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(str_of(a, "message"), "first");
    ck_assert_str_eq(str_of(a, "trace_id"), tc.trace_id);
    cJSON_Delete(a);
    cJSON *b = cJSON_Parse(second_line);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(str_of(b, "message"), "second");
    ck_assert_str_eq(str_of(b, "level"), "error");
    ck_assert_int_eq(cJSON_GetObjectItem(b, "status")->valueint, 500);
    cJSON_Delete(b);
    free(out);
}
END_TEST

START_TEST(test_emit_oversized_keeps_envelope)
{
    /* A field too long for one line is dropped; the event is still logged. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct logger lg = {.level = LOG_DEBUG, .fd = p[1]};
    size_t n = 10000;
    char *huge = malloc(n + 1);
    memset(huge, 'x', n);
    huge[n] = '\0';
    struct log_field f[] = {LOG_STR("body", huge)};
    log_emit(&lg, LOG_WARN, NULL, "too big", f, 1);
    close(p[1]);
    char *out = read_all(p[0]);
    close(p[0]);
    free(huge);
    ck_assert_uint_lt(strlen(out), 4096);
    cJSON *doc = cJSON_Parse(out);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(str_of(doc, "message"), "too big");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "body"));
    cJSON_Delete(doc);
    free(out);
}
END_TEST

START_TEST(test_emit_to_closed_fd_does_not_crash)
{
    int fd = open("/dev/null", O_WRONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct logger lg = {.level = LOG_DEBUG, .fd = fd};
    log_emit(&lg, LOG_ERROR, NULL, "lost", NULL, 0);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *f = tcase_create("format");
    tcase_add_test(f, test_envelope_fields_and_order);
    tcase_add_test(f, test_levels);
    tcase_add_test(f, test_without_trace);
    tcase_add_test(f, test_escaping);
    tcase_add_test(f, test_utf8_kept);
    tcase_add_test(f, test_invalid_utf8_still_valid_json_text);
    tcase_add_test(f, test_null_string_and_extremes);
    tcase_add_test(f, test_timestamp_fallback);
    tcase_add_test(f, test_buffer_bound_exact);
    tcase_add_test(f, test_level_parse);
    suite_add_tcase(s, f);

    TCase *e = tcase_create("emit");
    tcase_add_test(e, test_emit_filters_and_writes_lines);
    tcase_add_test(e, test_emit_oversized_keeps_envelope);
    tcase_add_test(e, test_emit_to_closed_fd_does_not_crash);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
