/* Unit tests for core/idempotency.c: the Idempotency-Key header and the
 * request fingerprint; core/cursor.c: cursors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "idempotency.h"

static void key_ok(const char *value, const char *want)
{
    char out[IDEMPOTENCY_KEY_MAX + 1];
    const char *why = NULL;
    ck_assert_msg(idempotency_key_parse(value, 1, out, &why), "%s refused: %s", value, why);
    ck_assert_str_eq(out, want);
}

static void key_refused(const char *value, int count, const char *want)
{
    char out[IDEMPOTENCY_KEY_MAX + 1];
    const char *why = NULL;
    ck_assert_msg(!idempotency_key_parse(value, count, out, &why), "%s accepted", value);
    ck_assert_str_eq(why, want);
}

#define VISIBLE "Idempotency-Key must be visible ASCII characters (0x21-0x7E)"
#define TOO_LONG "Idempotency-Key must be at most 255 characters"
#define EMPTY "Idempotency-Key must not be empty"

START_TEST(test_keys)
{
    key_ok("abc", "abc");
    key_ok("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324");
    key_ok("!~", "!~");
    key_ok("\"abc\"", "abc");             /* the draft's sf-string form */
    key_ok("\"a\\\"b\\\\c\"", "a\"b\\c"); /* its escapes */
    key_ok("a\"b", "a\"b");               /* a bare key may hold a quote */
    key_ok("\"", "\"");                   /* one quote is a bare key */
    char key[260];
    memset(key, 'k', 255);
    key[255] = '\0';
    key_ok(key, key);
    key[255] = 'k';
    key[256] = '\0';
    key_refused(key, 1, TOO_LONG);
    char quoted[300];
    memset(key, 'k', 255);
    key[255] = '\0';
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    key_ok(quoted, key);
    snprintf(quoted, sizeof quoted, "\"%sk\"", key);
    key_refused(quoted, 1, TOO_LONG);

    key_refused("", 1, EMPTY);
    key_refused(NULL, 1, EMPTY);
    key_refused("\"\"", 1, EMPTY);
    key_refused("a b", 1, VISIBLE);
    key_refused("a\tb", 1, VISIBLE);
    key_refused("\"a b\"", 1, VISIBLE);
    key_refused("caf\xc3\xa9", 1, VISIBLE);
    key_refused("a\x7f", 1, VISIBLE);
    key_refused("\"a\"b\"", 1, "Idempotency-Key has an unescaped quote in its quoted form");
    key_refused("\"a\\b\"", 1, "Idempotency-Key has a bad escape in its quoted form");
    key_refused("\"a\\\"", 1, "Idempotency-Key has a bad escape in its quoted form");
    key_refused("abc", 2, "Idempotency-Key must be given at most once");
}
END_TEST

START_TEST(test_fingerprint)
{
    unsigned char a[IDEMPOTENCY_FINGERPRINT_LEN], b[IDEMPOTENCY_FINGERPRINT_LEN];
    ck_assert_int_eq(idempotency_fingerprint("c1", "[\"x\"]", a), 0);
    ck_assert_int_eq(idempotency_fingerprint("c1", "[\"x\"]", b), 0);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_int_eq(idempotency_fingerprint("c1", "[\"y\"]", b), 0);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    /* The separator keeps "c1" + "x" apart from "c" + "1x". */
    ck_assert_int_eq(idempotency_fingerprint("c", "1[\"x\"]", b), 0);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    /* SHA-256 of "c1\0[\"x\"]", as sha256sum computes it. */
    static const unsigned char want[] = {
        0x98, 0xd7, 0x77, 0x69, 0xa0, 0x09, 0xad, 0xef, 0x3d, 0x2d, 0xf5, 0x33, 0xa8, 0xda, 0x38, 0x1f,
        0x14, 0x90, 0x17, 0x15, 0x83, 0xfc, 0x86, 0xae, 0x7d, 0x46, 0x42, 0x00, 0x70, 0xed, 0x58, 0xbd};
    ck_assert_int_eq(idempotency_fingerprint("c1", "[\"x\"]", b), 0);
    ck_assert_mem_eq(b, want, sizeof want);
}
END_TEST

START_TEST(test_cursor_round_trip)
{
    struct cursor_key k;
    const unsigned char secret[] = "test-secret-0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(cursor_key_init(&k, secret, sizeof secret - 1), 0);
    long long positions[] = {0, 1, 255, 256, 1LL << 40, 9223372036854775807LL};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        char c[CURSOR_TEXT_LEN + 1];
        ck_assert_int_eq(cursor_encode(&k, positions[i], c), 0);
        ck_assert_uint_eq(strlen(c), CURSOR_TEXT_LEN);
        ck_assert_uint_eq(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                          CURSOR_TEXT_LEN);
        long long back = -1;
        ck_assert(cursor_decode(&k, c, &back));
        ck_assert_int_eq(back, positions[i]);
        /* Every single character changed, to every other base64url
         * character: refused (the last one's spare bits included). */
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (size_t j = 0; j < CURSOR_TEXT_LEN; j++) {
            char orig = c[j];
            for (const char *a = alphabet; *a; a++) {
                if (*a == orig)
                    continue;
                c[j] = *a;
                ck_assert_msg(!cursor_decode(&k, c, &back), "%s accepted", c);
            }
            c[j] = orig;
        }
    }
    /* Another secret's cursors are not ours. */
    struct cursor_key k2;
    ck_assert_int_eq(cursor_key_init(&k2, (const unsigned char *)"x", 1), 0);
    char c2[CURSOR_TEXT_LEN + 1];
    ck_assert_int_eq(cursor_encode(&k2, 7, c2), 0);
    long long p;
    ck_assert(!cursor_decode(&k, c2, &p));
    cursor_key_free(&k2);
    ck_assert_int_eq(cursor_key_init(&k2, NULL, 0), -1);
    ck_assert(!cursor_decode(&k, NULL, &p));
    ck_assert(!cursor_decode(&k, "", &p));
    ck_assert(!cursor_decode(&k, "zz", &p));
    ck_assert_int_eq(cursor_encode(&k, -1, c2), -1);
    cursor_key_free(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idempotency");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_fingerprint);
    tcase_add_test(tc, test_cursor_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
