/*
 * test_utf8.c - utf8_copy and utf8_sequence_len (common/utf8.c): what
 * leaves the process is valid UTF-8, cut on character boundaries.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

START_TEST(test_valid_text_is_copied_whole)
{
    char out[64];
    static const char text[] = "/orders/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80";
    ck_assert_uint_eq(utf8_copy(out, sizeof out, text), strlen(text));
    ck_assert_str_eq(out, text);
    ck_assert_uint_eq(utf8_copy(out, sizeof out, ""), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_invalid_bytes_become_replacement_characters)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\xff" "b", "a" UTF8_REPLACEMENT "b"},                       /* never valid */
        {"\xc3", UTF8_REPLACEMENT},                                    /* truncated at the end */
        {"\xc3(", UTF8_REPLACEMENT "("},                               /* bad continuation */
        {"\xc0\xaf", UTF8_REPLACEMENT UTF8_REPLACEMENT},               /* overlong '/' */
        {"\xed\xa0\x80", UTF8_REPLACEMENT UTF8_REPLACEMENT UTF8_REPLACEMENT}, /* surrogate */
        {"\xf4\x90\x80\x80", UTF8_REPLACEMENT UTF8_REPLACEMENT UTF8_REPLACEMENT
                             UTF8_REPLACEMENT},                        /* past U+10FFFF */
        {"\x80x", UTF8_REPLACEMENT "x"},                               /* lone continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        utf8_copy(out, sizeof out, cases[i].in);
        ck_assert_msg(strcmp(out, cases[i].out) == 0, "case %zu", i);
    }
}
END_TEST

START_TEST(test_cut_on_a_character_boundary)
{
    char out[6]; /* room for 5 bytes */
    /* "abcd" + a 2-byte character: the character would need bytes 5 and 6 */
    ck_assert_uint_eq(utf8_copy(out, sizeof out, "abcd\xc3\xa9z"), 4);
    ck_assert_str_eq(out, "abcd");
    /* a replacement character that does not fit whole is left out too */
    ck_assert_uint_eq(utf8_copy(out, sizeof out, "abc\xff"), 3);
    ck_assert_str_eq(out, "abc");
    char one[1];
    ck_assert_uint_eq(utf8_copy(one, sizeof one, "x"), 0);
    ck_assert_int_eq(one[0], '\0');
}
END_TEST

START_TEST(test_sequence_len)
{
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"a"), 0);
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"\xc3\xa9"), 2);
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"\xe2\x82\xac"), 3);
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"\xe0\x80\x80"), 0);
    ck_assert_int_eq(utf8_sequence_len((const unsigned char *)"\xf0\x9f\x98"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("copy");
    tcase_add_test(tc, test_valid_text_is_copied_whole);
    tcase_add_test(tc, test_invalid_bytes_become_replacement_characters);
    tcase_add_test(tc, test_cut_on_a_character_boundary);
    tcase_add_test(tc, test_sequence_len);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
