/*
 * test_crypto.c - the libcrypto wrappers of core/crypto.c against
 * published vectors: RFC 4231 for HMAC-SHA-256/384/512 (all seven cases,
 * 6 and 7 with a 131-byte key, longer than one block of every SHA-2, so
 * the key is hashed first), FIPS 180-2's "abc" examples for the digests,
 * RFC 4648 section 10 for base64, plus the url-safe alphabet, the strict
 * decoder and the comparison.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "crypto.h"

/* ---- helpers ----------------------------------------------------------- */

static void tohex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* ---- RFC 4231 ------------------------------------------------------------ */

struct rfc4231_case {
    unsigned char key[131];
    size_t keylen;
    unsigned char data[160];
    size_t datalen;
    /* section 4.2..4.8: HMAC-SHA-256, -384, -512; case 5 lists only the
     * first 128 bits (truncated output) */
    const char *mac[3];
};

static const char CASE6_DATA[] =
    "Test Using Larger Than Block-Size Key - Hash Key First";
static const char CASE7_DATA[] =
    "This is a test using a larger than block-size key and a larger than "
    "block-size data. The key needs to be hashed before being used by the "
    "HMAC algorithm.";

static const char *const rfc4231_macs[7][3] = {
    {"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
     "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
     "faea9ea9076ede7f4af152e8b2fa9cb6",
     "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
     "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
    {"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
     "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
     "8e2240ca5e69e2c78b3239ecfab21649",
     "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
     "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
    {"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
     "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
     "2a5ab39dc13814b94e3ab6e101a34f27",
     "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
     "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
    {"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
     "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
     "6801dd23c4a7d679ccf8a386c674cffb",
     "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
     "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
    {"a3b6167473100ee06e0c796c2955552b",
     "3abf34c3503b2a23a46efc619baef897",
     "415fad6271580a531d4179bc891d87a6"},
    {"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
     "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
     "0c2ef6ab4030fe8296248df163f44952",
     "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
     "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
    {"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
     "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
     "a678cc31e799176d3860e6110c46523e",
     "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
     "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
};

/* Key and data of test case n (1..7), section 4.2 to 4.8. */
static void rfc4231_inputs(int n, struct rfc4231_case *c)
{
    memset(c, 0, sizeof *c);
    switch (n) {
    case 1:
        c->keylen = 20;
        memset(c->key, 0x0b, 20);
        c->datalen = strlen("Hi There");
        memcpy(c->data, "Hi There", c->datalen);
        break;
    case 2:
        c->keylen = 4;
        memcpy(c->key, "Jefe", 4);
        c->datalen = strlen("what do ya want for nothing?");
        memcpy(c->data, "what do ya want for nothing?", c->datalen);
        break;
    case 3:
        c->keylen = 20;
        memset(c->key, 0xaa, 20);
        c->datalen = 50;
        memset(c->data, 0xdd, 50);
        break;
    case 4:
        c->keylen = 25;
        for (int i = 0; i < 25; i++)
            c->key[i] = (unsigned char)(i + 1);
        c->datalen = 50;
        memset(c->data, 0xcd, 50);
        break;
    case 5:
        c->keylen = 20;
        memset(c->key, 0x0c, 20);
        c->datalen = strlen("Test With Truncation");
        memcpy(c->data, "Test With Truncation", c->datalen);
        break;
    case 6:
        c->keylen = 131;
        memset(c->key, 0xaa, 131);
        c->datalen = sizeof CASE6_DATA - 1;
        memcpy(c->data, CASE6_DATA, c->datalen);
        break;
    case 7:
        c->keylen = 131;
        memset(c->key, 0xaa, 131);
        c->datalen = sizeof CASE7_DATA - 1;
        memcpy(c->data, CASE7_DATA, c->datalen);
        break;
    }
    for (int h = 0; h < 3; h++)
        c->mac[h] = rfc4231_macs[n - 1][h];
}

/* _i runs over 7 cases x 3 hashes. */
START_TEST(hmac_rfc4231)
{
    int n = _i / 3 + 1;
    enum crypto_hash h = (enum crypto_hash[]){CRYPTO_SHA256, CRYPTO_SHA384,
                                              CRYPTO_SHA512}[_i % 3];
    struct rfc4231_case c;
    rfc4231_inputs(n, &c);
    struct crypto_hmac *k = crypto_hmac_new(h, c.key, c.keylen);
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_eq(crypto_hmac_size(k), crypto_hash_size(h));
    unsigned char mac[CRYPTO_DIGEST_MAX];
    char hex[2 * CRYPTO_DIGEST_MAX + 1];
    /* Twice with the same key: the rewound context gives the same MAC. */
    for (int round = 0; round < 2; round++) {
        memset(mac, 0, sizeof mac);
        ck_assert(crypto_hmac(k, c.data, c.datalen, mac));
        tohex(mac, crypto_hash_size(h), hex);
        size_t want = strlen(c.mac[_i % 3]); /* case 5: the first 128 bits */
        ck_assert_msg(strncmp(hex, c.mac[_i % 3], want) == 0,
                      "RFC 4231 case %d, hash %d, round %d: %s", n, _i % 3,
                      round, hex);
    }
    crypto_hmac_free(k);
}
END_TEST

/* One key, interleaved messages: each MAC is computed from the key alone,
 * nothing of the previous message carries over. */
START_TEST(hmac_key_reuse)
{
    struct rfc4231_case c1, c2;
    rfc4231_inputs(1, &c1);
    rfc4231_inputs(2, &c2);
    struct crypto_hmac *k = crypto_hmac_new(CRYPTO_SHA256, c1.key, c1.keylen);
    ck_assert_ptr_nonnull(k);
    unsigned char a[32], b[32];
    ck_assert(crypto_hmac(k, c2.data, c2.datalen, a));
    ck_assert(crypto_hmac(k, c1.data, c1.datalen, b));
    char hex[65];
    tohex(b, 32, hex);
    ck_assert_str_eq(hex, rfc4231_macs[0][0]);
    ck_assert(!crypto_equal(a, b, 32));
    crypto_hmac_free(k);
    crypto_hmac_free(NULL);
    /* An empty key is a key (RFC 2104); the wrapper must not mistake it
     * for "keep the previous key". */
    k = crypto_hmac_new(CRYPTO_SHA256, NULL, 0);
    ck_assert_ptr_nonnull(k);
    ck_assert(crypto_hmac(k, "", 0, a));
    tohex(a, 32, hex);
    ck_assert_str_eq(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    crypto_hmac_free(k);
}
END_TEST

/* ---- digests ------------------------------------------------------------- */

START_TEST(digest_fips180)
{
    static const struct {
        enum crypto_hash h;
        const char *in, *want;
    } cases[] = {
        {CRYPTO_SHA256, "abc",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {CRYPTO_SHA256, "",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {CRYPTO_SHA384, "abc",
         "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
         "8086072ba1e7cc2358baeca134c825a7"},
        {CRYPTO_SHA512, "abc",
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
         "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char d[CRYPTO_DIGEST_MAX];
        char hex[2 * CRYPTO_DIGEST_MAX + 1];
        ck_assert(crypto_digest(cases[i].h, cases[i].in, strlen(cases[i].in), d));
        tohex(d, crypto_hash_size(cases[i].h), hex);
        ck_assert_str_eq(hex, cases[i].want);
    }
    ck_assert_uint_eq(crypto_hash_size(CRYPTO_SHA256), 32);
    ck_assert_uint_eq(crypto_hash_size(CRYPTO_SHA384), 48);
    ck_assert_uint_eq(crypto_hash_size(CRYPTO_SHA512), 64);
}
END_TEST

/* ---- base64url ------------------------------------------------------------ */

START_TEST(b64url_rfc4648)
{
    /* RFC 4648 section 10, padding dropped as RFC 7515 2 asks. */
    static const char *const cases[][2] = {
        {"", ""},         {"f", "Zg"},         {"fo", "Zm8"},
        {"foo", "Zm9v"},  {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16];
        size_t n = crypto_b64url_encode(cases[i][0], strlen(cases[i][0]), out);
        ck_assert_str_eq(out, cases[i][1]);
        ck_assert_uint_eq(n, strlen(cases[i][1]));
        ck_assert_uint_eq(crypto_b64url_len(strlen(cases[i][0])), n);
        unsigned char back[CRYPTO_B64URL_DECODED_MAX(16)];
        size_t m = 0;
        ck_assert(crypto_b64url_decode(out, n, back, &m));
        ck_assert_uint_eq(m, strlen(cases[i][0]));
        ck_assert(memcmp(back, cases[i][0], m) == 0);
    }
}
END_TEST

START_TEST(b64url_alphabet)
{
    /* 62 and 63 are '-' and '_' here, '+' and '/' in standard base64. */
    static const unsigned char raw[] = {0xfb, 0xef, 0xbe, 0xfb, 0xff};
    char out[16];
    crypto_b64url_encode(raw, sizeof raw, out);
    ck_assert_str_eq(out, "-----_8");
    unsigned char back[CRYPTO_B64URL_DECODED_MAX(7)];
    size_t m = 0;
    ck_assert(crypto_b64url_decode(out, strlen(out), back, &m));
    ck_assert_uint_eq(m, sizeof raw);
    ck_assert(memcmp(back, raw, m) == 0);

    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"+++", 3},  {"//", 2},    {"Zg==", 4},  {"Zg=", 3},
        {"Z", 1},    {"Zm9vY", 5}, {"Zm 9v", 5}, {"Zm9\n", 4},
        {"Zm\0v", 4}, {"Zm9v.", 5}, {"\xc3\xa9\xc3\xa9", 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!crypto_b64url_valid(bad[i].s, bad[i].len), "valid: %zu", i);
        ck_assert_msg(!crypto_b64url_decode(bad[i].s, bad[i].len, back, &m),
                      "decoded: %zu", i);
    }
    ck_assert(crypto_b64url_valid("", 0));
}
END_TEST

/* Every length up to several decoder chunks, every byte value. */
START_TEST(b64url_round_trip)
{
    enum { MAX = 1100 };
    unsigned char *raw = malloc(MAX), *back = malloc(CRYPTO_B64URL_DECODED_MAX(2 * MAX));
    char *enc = malloc(2 * MAX);
    ck_assert(raw && back && enc);
    for (size_t i = 0; i < MAX; i++)
        raw[i] = (unsigned char)(i * 131 + 7);
    for (size_t len = 0; len <= MAX; len += (len < 300 ? 1 : 97)) {
        size_t n = crypto_b64url_encode(raw, len, enc);
        ck_assert_uint_eq(n, crypto_b64url_len(len));
        ck_assert(strchr(enc, '=') == NULL && strchr(enc, '+') == NULL &&
                  strchr(enc, '/') == NULL);
        size_t m = 0;
        ck_assert_msg(crypto_b64url_decode(enc, n, back, &m), "len %zu", len);
        ck_assert_uint_eq(m, len);
        ck_assert(memcmp(raw, back, len) == 0);
    }
    free(raw);
    free(back);
    free(enc);
}
END_TEST

/* ---- comparison and randomness ---------------------------------------------- */

START_TEST(equal_and_random)
{
    ck_assert(crypto_equal("abc", "abc", 3));
    ck_assert(!crypto_equal("abc", "abd", 3));
    ck_assert(!crypto_equal("xbc", "abc", 3));
    ck_assert(crypto_equal("a", "b", 0));
    unsigned char a[32], b[32], zero[32] = {0};
    ck_assert_int_eq(crypto_random(a, sizeof a), 0);
    ck_assert_int_eq(crypto_random(b, sizeof b), 0);
    ck_assert(!crypto_equal(a, b, sizeof a));
    ck_assert(!crypto_equal(a, zero, sizeof a));
    crypto_wipe(a, sizeof a);
    ck_assert(crypto_equal(a, zero, sizeof a));
}
END_TEST

/* crypto_random draws from the kernel, and nothing here instantiates
 * libcrypto's random generator, whose set-up kept about 0.15 MiB resident
 * in every worker (core/crypto.c).  RAND_set_DRBG_type succeeds only while
 * no generator has been instantiated in the process (by crypto_init or, with
 * CK_FORK=no, by any test above); once it names one that does not exist,
 * RAND_bytes fails and crypto_random still gives fresh bytes. */
START_TEST(random_without_libcrypto_drbg)
{
    ck_assert_int_eq(RAND_set_DRBG_type(NULL, "NO-SUCH-DRBG", NULL, NULL, NULL), 1);
    unsigned char a[64], b[64], zero[64] = {0};
    ck_assert_int_ne(RAND_bytes(a, sizeof a), 1);
    ERR_clear_error();
    ck_assert_int_eq(crypto_random(a, sizeof a), 0);
    ck_assert_int_eq(crypto_random(b, sizeof b), 0);
    ck_assert(!crypto_equal(a, b, sizeof a));
    ck_assert(!crypto_equal(a, zero, sizeof a));
}
END_TEST

int main(void)
{
    if (crypto_init() != 0) {
        fprintf(stderr, "crypto_init failed\n");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("crypto");
    TCase *t = tcase_create("crypto");
    tcase_add_loop_test(t, hmac_rfc4231, 0, 21);
    tcase_add_test(t, hmac_key_reuse);
    tcase_add_test(t, digest_fips180);
    tcase_add_test(t, b64url_rfc4648);
    tcase_add_test(t, b64url_alphabet);
    tcase_add_test(t, b64url_round_trip);
    tcase_add_test(t, equal_and_random);
    tcase_add_test(t, random_without_libcrypto_drbg); /* last: it breaks RAND_bytes */
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
