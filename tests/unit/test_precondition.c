/* Unit tests for core/precondition.c: ETags and the If-Match /
 * If-None-Match lists (RFC 9110, 8.8.3 and 13.1). */
#include <check.h>
#include <stdlib.h>

#include "precondition.h"

START_TEST(test_etag_format)
{
    char e[ETAG_MAX];
    etag_format(1, e);
    ck_assert_str_eq(e, "\"v1\"");
    etag_format(9223372036854775807LL, e);
    ck_assert_str_eq(e, "\"v9223372036854775807\"");
}
END_TEST

START_TEST(test_strong_lists)
{
    ck_assert_int_eq(etag_list_match_strong(NULL, 3), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"v3\"", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"v3\"", 4), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"v31\"", 3), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"v\"", 3), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_strong("*", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_strong("  *\t", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"a\", \"v3\"", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_strong("\"a\",\"b\" ,\t\"v3\"", 3), ETAG_MATCH);
    /* Empty list elements are allowed (RFC 9110, 5.6.1). */
    ck_assert_int_eq(etag_list_match_strong(", ,\"v3\",", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_strong("", 3), ETAG_NO_MATCH);
    /* A weak tag never matches strongly. */
    ck_assert_int_eq(etag_list_match_strong("W/\"v3\"", 3), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_strong("W/\"v3\", \"v3\"", 3), ETAG_MATCH);
    /* Malformed: no quotes, a bare W, * in a list, junk after a tag, an
     * unterminated tag, a space or DEL inside one. */
    const char *bad[] = {"v3", "W/v3", "\"v3\" x", "\"v3", "*, \"v3\"", "\"v3\", *",
                         "\"v 3\"", "\"v\x7f\"", "w/\"v3\"", "**", "\"v3\"\"v3\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(etag_list_match_strong(bad[i], 3) == ETAG_MALFORMED, "%s", bad[i]);
        ck_assert_msg(etag_list_match_weak(bad[i], 3) == ETAG_MALFORMED, "%s", bad[i]);
    }
    /* Malformed even when an earlier element matched. */
    ck_assert_int_eq(etag_list_match_strong("\"v3\", junk", 3), ETAG_MALFORMED);
    /* obs-text is allowed inside a tag. */
    ck_assert_int_eq(etag_list_match_strong("\"\xc3\xa9\", \"v3\"", 3), ETAG_MATCH);
}
END_TEST

START_TEST(test_weak_lists)
{
    ck_assert_int_eq(etag_list_match_weak("W/\"v3\"", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_weak("\"v3\"", 3), ETAG_MATCH);
    ck_assert_int_eq(etag_list_match_weak("W/\"v2\"", 3), ETAG_NO_MATCH);
    ck_assert_int_eq(etag_list_match_weak("*", 3), ETAG_MATCH);
}
END_TEST

START_TEST(test_preconditions)
{
    ck_assert(precondition_holds(NULL, 5));
    struct precondition none = {NULL, NULL};
    ck_assert(precondition_holds(&none, 5));
    ck_assert(precondition_valid(&none));
    struct precondition m = {"\"v5\"", NULL};
    ck_assert(precondition_holds(&m, 5));
    ck_assert(!precondition_holds(&m, 6));
    struct precondition star = {"*", NULL};
    ck_assert(precondition_holds(&star, 6));
    struct precondition weak = {"W/\"v5\"", NULL};
    ck_assert(!precondition_holds(&weak, 5));
    struct precondition nm = {NULL, "\"v5\""};
    ck_assert(!precondition_holds(&nm, 5));
    ck_assert(precondition_holds(&nm, 6));
    struct precondition nstar = {NULL, "*"};
    ck_assert(!precondition_holds(&nstar, 1));
    struct precondition bad = {"v5", NULL};
    ck_assert(!precondition_valid(&bad));
    struct precondition bad2 = {NULL, "\"v5"};
    ck_assert(!precondition_valid(&bad2));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("precondition");
    TCase *tc = tcase_create("etag");
    tcase_add_test(tc, test_etag_format);
    tcase_add_test(tc, test_strong_lists);
    tcase_add_test(tc, test_weak_lists);
    tcase_add_test(tc, test_preconditions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
