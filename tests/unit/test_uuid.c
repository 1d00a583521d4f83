/*
 * test_uuid.c - UUIDv7 layout (RFC 9562, 5.7): the millisecond prefix, the
 * version and variant bits, ordering by time, uniqueness within one
 * millisecond; and the canonical-form check that guards every id lookup.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* The 48-bit timestamp: the first 12 hex digits (8 + 4 around the dash). */
static long long uuid_ms(const char *u)
{
    long long ms = 0;
    for (int i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = ms * 16 + hexval(u[i]);
    }
    return ms;
}

static void generate(long long ms, char *out)
{
    memset(out, 'Z', UUID_STR_LEN + 1);
    ck_assert_int_eq(uuid_v7_generate(ms, out), 0);
    ck_assert_uint_eq(strlen(out), UUID_STR_LEN);
}

START_TEST(test_layout)
{
    static const long long times[] = {0, 1, 1795610096789LL, 0xffffffffffffLL};
    for (size_t t = 0; t < sizeof times / sizeof times[0]; t++) {
        for (int n = 0; n < 64; n++) {
            char u[UUID_STR_LEN + 1];
            generate(times[t], u);
            ck_assert_msg(uuid_is_canonical(u), "not canonical: %s", u);
            ck_assert_msg(u[14] == '7', "version nibble of %s", u);
            ck_assert_msg(strchr("89ab", u[19]) != NULL, "variant of %s", u);
            ck_assert_int_eq(uuid_ms(u), times[t]);
        }
    }
    char u[UUID_STR_LEN + 1];
    generate(1795610096789LL, u);
    /* 1795610096789 = 0x01a2_12b3_b495 */
    ck_assert_msg(strncmp(u, "01a212b3-b495-7", 15) == 0, "%s", u);
}
END_TEST

START_TEST(test_ordered_by_millisecond)
{
    /* Text order is time order across milliseconds, what an index on the
     * id (and the list's tie-break) relies on. */
    char prev[UUID_STR_LEN + 1], cur[UUID_STR_LEN + 1];
    long long base = 1700000000000LL;
    generate(base, prev);
    for (long long ms = base + 1; ms < base + 500; ms += 7) {
        generate(ms, cur);
        ck_assert_msg(strcmp(prev, cur) < 0, "%s !< %s", prev, cur);
        memcpy(prev, cur, sizeof cur);
    }
    /* Across a carry into higher digits too. */
    char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];
    generate(0x00ffffffffffLL, a);
    generate(0x010000000000LL, b);
    ck_assert_int_lt(strcmp(a, b), 0);
}
END_TEST

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

START_TEST(test_unique_within_millisecond)
{
    enum { N = 2000 };
    char (*ids)[UUID_STR_LEN + 1] = malloc(N * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < N; i++)
        generate(1700000000000LL, ids[i]);
    qsort(ids, N, sizeof *ids, cmp_id);
    for (int i = 1; i < N; i++)
        ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0, "duplicate %s", ids[i]);
    /* The random part really varies: not all share the rand_a digits. */
    int differ = 0;
    for (int i = 1; i < N; i++)
        differ += memcmp(ids[i] + 15, ids[0] + 15, 3) != 0;
    ck_assert_int_gt(differ, N / 2);
    free(ids);
}
END_TEST

START_TEST(test_canonical_accepts)
{
    ck_assert(uuid_is_canonical("019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60"));
    ck_assert(uuid_is_canonical("00000000-0000-0000-0000-000000000000")); /* nil */
    ck_assert(uuid_is_canonical("ffffffff-ffff-ffff-ffff-ffffffffffff")); /* max */
    ck_assert(uuid_is_canonical("123e4567-e89b-12d3-a456-426614174000")); /* v1 */
    ck_assert(uuid_is_canonical("f47ac10b-58cc-4372-a567-0e02b2c3d479")); /* v4 */
}
END_TEST

START_TEST(test_canonical_refuses)
{
    static const char *const bad[] = {
        "",
        "019378A2-8A1E-7C3D-9A5E-1B2C3D4E5F60",   /* uppercase */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6A",   /* one uppercase */
        "019378a28a1e7c3d9a5e1b2c3d4e5f60",       /* no dashes */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6",    /* 35 */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f600",  /* 37 */
        "019378a2-8a1e-7c3d-9a5e1-b2c3d4e5f60",   /* dash moved */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6g",   /* g */
        "019378a2_8a1e_7c3d_9a5e_1b2c3d4e5f60",   /* underscores */
        "{19378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6}",   /* braces */
        "urn:uuid:019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
        " 019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6",   /* leading space */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6 ",   /* trailing space */
        "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60\n",
        "019378a2-8a1e-7c3d-9a5e-%62c3d4e5f60",
        "------------------------------------",
        "../../../../../../../../etc/passwd00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!uuid_is_canonical(bad[i]), "accepted '%s'", bad[i]);
    ck_assert(!uuid_is_canonical(NULL));
}
END_TEST

START_TEST(test_generate_writes_only_37_bytes)
{
    char buf[UUID_STR_LEN + 8];
    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(uuid_v7_generate(1, buf), 0);
    ck_assert_int_eq(buf[UUID_STR_LEN], '\0');
    for (size_t i = UUID_STR_LEN + 1; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 'Z');
}
END_TEST

static Suite *uuid_suite(void)
{
    Suite *s = suite_create("uuid");
    TCase *tc = tcase_create("v7");
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_ordered_by_millisecond);
    tcase_add_test(tc, test_unique_within_millisecond);
    tcase_add_test(tc, test_generate_writes_only_37_bytes);
    suite_add_tcase(s, tc);
    TCase *cn = tcase_create("canonical");
    tcase_add_test(cn, test_canonical_accepts);
    tcase_add_test(cn, test_canonical_refuses);
    suite_add_tcase(s, cn);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uuid_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
