/*
 * test_trace.c - W3C traceparent parsing, strict as the spec's own test
 * suite (w3c/trace-context test/test.py) asks, and the trace a request
 * begins or continues.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"
#define VALID "00-" TID "-" PID "-01"

static bool is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s)
{
    for (; *s; s++)
        if (*s != '0')
            return false;
    return true;
}

static void refused(const char *header, const char *why)
{
    struct trace_context tc;
    memset(&tc, 0, sizeof tc);
    ck_assert_msg(!trace_parse_traceparent(header, &tc), "accepted (%s): '%s'",
                  why, header ? header : "(null)");
}

START_TEST(test_valid_version_00)
{
    struct trace_context tc;
    memset(&tc, 0x55, sizeof tc);
    ck_assert(trace_parse_traceparent(VALID, &tc));
    ck_assert_str_eq(tc.trace_id, TID);
    ck_assert_str_eq(tc.parent_span_id, PID);
    ck_assert_int_eq(tc.flags, 0x01);

    ck_assert(trace_parse_traceparent("00-" TID "-" PID "-00", &tc));
    ck_assert_int_eq(tc.flags, 0x00);
    /* Unknown flag bits are carried, not refused. */
    ck_assert(trace_parse_traceparent("00-" TID "-" PID "-ff", &tc));
    ck_assert_int_eq(tc.flags, 0xff);
    ck_assert(trace_parse_traceparent("00-" TID "-" PID "-a9", &tc));
    ck_assert_int_eq(tc.flags, 0xa9);
}
END_TEST

START_TEST(test_wrong_length)
{
    refused("", "empty");
    refused(NULL, "null");
    refused("00", "version only");
    refused("00-" TID "-" PID "-0", "flags one digit (54 chars)");
    refused("00-" TID "-" PID "-011", "flags three digits (56 chars)");
    refused("00-" TID "0-" PID "-01", "trace id 33 digits");
    refused("00-" "4bf92f3577b34da6a3ce929d0e0e473" "-" PID "-01", "trace id 31 digits");
    refused("00-" TID "-" "00f067aa0ba902b" "-01", "parent id 15 digits");
    refused("00-" TID "-" "00f067aa0ba902b70" "-01", "parent id 17 digits");
    refused("000-" TID "-" PID "-01", "version 3 digits");
    refused("0-" TID "-" PID "-01", "version 1 digit");
}
END_TEST

START_TEST(test_version_00_allows_nothing_after)
{
    refused(VALID "-", "trailing dash");
    refused(VALID "-what-the-future-will-be-like", "extra field in version 00");
    refused(VALID " ", "trailing space");
    refused(" " VALID, "leading space");
    refused(VALID ".", "trailing dot");
}
END_TEST

START_TEST(test_uppercase_refused)
{
    refused("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", "uppercase trace id");
    refused("00-4bf92f3577b34da6a3ce929d0e0e473A-" PID "-01", "one uppercase digit");
    refused("00-" TID "-00F067AA0BA902B7-01", "uppercase parent id");
    refused("00-" TID "-" PID "-0A", "uppercase flags");
    refused("0A-" TID "-" PID "-01", "uppercase version");
}
END_TEST

START_TEST(test_all_zero_ids_refused)
{
    refused("00-00000000000000000000000000000000-" PID "-01", "zero trace id");
    refused("00-" TID "-0000000000000000-01", "zero parent id");
    refused("00-00000000000000000000000000000000-0000000000000000-01", "both zero");
    /* One non-zero digit is enough. */
    struct trace_context tc;
    ck_assert(trace_parse_traceparent("00-00000000000000000000000000000001-0000000000000001-01", &tc));
}
END_TEST

START_TEST(test_illegal_characters)
{
    refused("00-4bf92f3577b34da6a3ce929d0e0e473.-" PID "-01", "dot in trace id");
    refused("00-4bf92f3577b34da6a3ce929d0e0e473g-" PID "-01", "g in trace id");
    refused("00-" TID "-00f067aa0ba902b.-01", "dot in parent id");
    refused("00-" TID "-" PID "-0.", "dot in flags");
    refused("00-" TID "-" PID "-0g", "g in flags");
    refused("0g-" TID "-" PID "-01", "g in version");
    refused("00_" TID "_" PID "_01", "underscores");
    refused("00-" TID "+" PID "-01", "plus delimiter");
    refused("00 " TID " " PID " 01", "space delimiters");
    refused("00-4bf92f3577b34da6 3ce929d0e0e4736-" PID "-01", "space in trace id");
}
END_TEST

START_TEST(test_version_ff_refused)
{
    refused("ff-" TID "-" PID "-01", "version ff");
    refused("ff-" TID "-" PID "-01-extra", "version ff with extra");
}
END_TEST

START_TEST(test_future_versions)
{
    struct trace_context tc;
    /* A higher version is parsed by its first four fields. */
    ck_assert(trace_parse_traceparent("cc-" TID "-" PID "-01", &tc));
    ck_assert_str_eq(tc.trace_id, TID);
    ck_assert_str_eq(tc.parent_span_id, PID);
    ck_assert_int_eq(tc.flags, 1);
    ck_assert(trace_parse_traceparent("01-" TID "-" PID "-01-what-the-future-will-be-like", &tc));
    ck_assert_str_eq(tc.trace_id, TID);
    ck_assert(trace_parse_traceparent("fe-" TID "-" PID "-09", &tc));
    ck_assert_int_eq(tc.flags, 0x09);
    /* ...but what follows must start with a dash. */
    refused("cc-" TID "-" PID "-01.what-the-future-will-be-like", "future, dot after flags");
    refused("cc-" TID "-" PID "-01what", "future, no delimiter");
    /* ...and the first four fields obey the same rules. */
    refused("cc-" TID "-" PID "-0", "future, short");
    refused("cc-00000000000000000000000000000000-" PID "-01", "future, zero trace id");
    refused("cc-" TID "-" "00F067AA0BA902B7" "-01", "future, uppercase");
}
END_TEST

START_TEST(test_begin_continues_valid)
{
    struct trace_context tc;
    ck_assert_int_eq(trace_begin(VALID, &tc), 0);
    ck_assert_str_eq(tc.trace_id, TID);
    ck_assert_str_eq(tc.parent_span_id, PID);
    ck_assert_int_eq(tc.flags, 1);
    ck_assert(is_lower_hex(tc.span_id, 16));
    ck_assert(!all_zero(tc.span_id));
    ck_assert_str_ne(tc.span_id, PID); /* our own span, not the caller's */

    /* The caller's sampled flag 00 is kept too. */
    ck_assert_int_eq(trace_begin("00-" TID "-" PID "-00", &tc), 0);
    ck_assert_int_eq(tc.flags, 0);
}
END_TEST

START_TEST(test_begin_starts_new_on_invalid)
{
    static const char *const bad[] = {
        NULL, "", "garbage", "00-" TID "-0000000000000000-01",
        "00-" TID "-" PID "-01-extra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct trace_context tc;
        memset(&tc, 0x55, sizeof tc);
        ck_assert_int_eq(trace_begin(bad[i], &tc), 0);
        ck_assert_msg(is_lower_hex(tc.trace_id, 32), "trace id '%s'", tc.trace_id);
        ck_assert(!all_zero(tc.trace_id));
        ck_assert_str_ne(tc.trace_id, TID); /* nothing kept from a bad header */
        ck_assert(is_lower_hex(tc.span_id, 16));
        ck_assert(!all_zero(tc.span_id));
        ck_assert_str_eq(tc.parent_span_id, "");
        ck_assert_int_eq(tc.flags, 1);
    }
}
END_TEST

START_TEST(test_begin_ids_are_fresh)
{
    struct trace_context a, b;
    ck_assert_int_eq(trace_begin(NULL, &a), 0);
    ck_assert_int_eq(trace_begin(NULL, &b), 0);
    ck_assert_str_ne(a.trace_id, b.trace_id);
    ck_assert_str_ne(a.span_id, b.span_id);
    ck_assert_int_eq(trace_begin(VALID, &a), 0);
    ck_assert_int_eq(trace_begin(VALID, &b), 0);
    ck_assert_str_eq(a.trace_id, b.trace_id);
    ck_assert_str_ne(a.span_id, b.span_id);
}
END_TEST

START_TEST(test_format_round_trip)
{
    struct trace_context tc, back;
    ck_assert_int_eq(trace_begin(VALID, &tc), 0);
    char out[TRACEPARENT_LEN + 2];
    memset(out, 'Z', sizeof out);
    trace_format_traceparent(&tc, out);
    ck_assert_uint_eq(strlen(out), TRACEPARENT_LEN);
    ck_assert_int_eq(out[TRACEPARENT_LEN + 1], 'Z');
    ck_assert(strncmp(out, "00-" TID "-", 36) == 0);
    ck_assert(trace_parse_traceparent(out, &back));
    ck_assert_str_eq(back.trace_id, tc.trace_id);
    ck_assert_str_eq(back.parent_span_id, tc.span_id); /* our span goes downstream */
    ck_assert_int_eq(back.flags, tc.flags);

    tc.flags = 0xa5;
    trace_format_traceparent(&tc, out);
    ck_assert_str_eq(out + 53, "a5");
}
END_TEST

START_TEST(test_random_hex)
{
    char buf[80];
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(trace_random_hex(buf, 8), 0);
    ck_assert(is_lower_hex(buf, 16));
    ck_assert_int_eq(trace_random_hex(buf, 32), 0);
    ck_assert(is_lower_hex(buf, 64));
    ck_assert_int_eq(trace_random_hex(buf, 0), 0);
    ck_assert_str_eq(buf, "");
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(trace_random_hex(buf, 33), -1);
    ck_assert_int_eq(buf[0], 'Z');
}
END_TEST

/* Ids are drawn from a pool of random bytes; a forked child must not hand
 * out the ids its parent is about to (the pool is dropped in the child). */
START_TEST(test_ids_differ_across_fork)
{
    char first[33], parent[33], child[33];
    ck_assert_int_eq(trace_random_hex(first, 16), 0); /* the pool is filled */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char id[33] = "";
        int ok = trace_random_hex(id, 16) == 0 && write(fds[1], id, 32) == 32;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(trace_random_hex(parent, 16), 0);
    memset(child, 0, sizeof child);
    ck_assert_int_eq(read(fds[0], child, 32), 32);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_ne(parent, child);
    ck_assert_str_ne(first, parent);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *p = tcase_create("parse");
    tcase_add_test(p, test_valid_version_00);
    tcase_add_test(p, test_wrong_length);
    tcase_add_test(p, test_version_00_allows_nothing_after);
    tcase_add_test(p, test_uppercase_refused);
    tcase_add_test(p, test_all_zero_ids_refused);
    tcase_add_test(p, test_illegal_characters);
    tcase_add_test(p, test_version_ff_refused);
    tcase_add_test(p, test_future_versions);
    suite_add_tcase(s, p);

    TCase *b = tcase_create("begin");
    tcase_add_test(b, test_begin_continues_valid);
    tcase_add_test(b, test_begin_starts_new_on_invalid);
    tcase_add_test(b, test_begin_ids_are_fresh);
    tcase_add_test(b, test_format_round_trip);
    tcase_add_test(b, test_random_hex);
    tcase_add_test(b, test_ids_differ_across_fork);
    suite_add_tcase(s, b);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
