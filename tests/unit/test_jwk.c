/*
 * test_jwk.c - key sets (core/auth_jwk.c) and the verifier fed by a key
 * source (core/auth.c): which documents are refused whole, which keys are
 * skipped, which key a token gets, and what a change of set does to cached
 * tokens.  Keys are made here with libcrypto; tokens are signed with
 * crypto_sign.  tests/integration/test_jwks.py does the same with keys and
 * tokens from PyJWT, an implementation other than ours.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "auth_jwk.h"
#include "crypto.h"
#include "testdir.h"

#define ISS "https://idp.test"

struct test_key {
    struct crypto_privkey *priv;
    cJSON *jwk; /* public JWK, without kid */
};

static struct test_key rsa_key, rsa2_key, rsa_small, p256_key, p384_key, ed_key;

/* Key making runs before the suite, where Check cannot report. */
#define REQUIRE(c)                                                       \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "test_jwk: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                     \
        }                                                                \
    } while (0)

static void add_b64(cJSON *o, const char *name, const unsigned char *b, size_t n)
{
    char *enc = malloc(CRYPTO_B64URL_ENCODED_MAX(n));
    REQUIRE(enc);
    crypto_b64url_encode(b, n, enc);
    cJSON_AddStringToObject(o, name, enc);
    free(enc);
}

/* A fresh key of the kind openssl genpkey names, through a PEM file (the
 * way the token tool reads keys), and its public JWK. */
static void make_key(struct test_key *k, const char *type, const char *param,
                     unsigned bits)
{
    EVP_PKEY *pkey = NULL;
    if (strcmp(type, "RSA") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    else if (strcmp(type, "EC") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    else
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    REQUIRE(pkey);
    char path[4200];
    snprintf(path, sizeof path, "%s/key-%s-%s-%u.pem", testdir_path(), type,
             param ? param : "", bits);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    REQUIRE(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    EVP_PKEY_free(pkey);
    char err[256];
    k->priv = crypto_privkey_load(path, err, sizeof err);
    if (k->priv == NULL) {
        fprintf(stderr, "test_jwk: %s\n", err);
        exit(1);
    }
    unsigned char a[1024], b[1024];
    size_t alen, blen;
    REQUIRE(crypto_privkey_public(k->priv, a, &alen, b, &blen));
    k->jwk = cJSON_CreateObject();
    switch (crypto_privkey_type(k->priv)) {
    case CRYPTO_KEY_RSA:
        cJSON_AddStringToObject(k->jwk, "kty", "RSA");
        add_b64(k->jwk, "n", a, alen);
        add_b64(k->jwk, "e", b, blen);
        break;
    case CRYPTO_KEY_P256:
    case CRYPTO_KEY_P384:
        cJSON_AddStringToObject(k->jwk, "kty", "EC");
        cJSON_AddStringToObject(k->jwk, "crv", param);
        add_b64(k->jwk, "x", a, alen);
        add_b64(k->jwk, "y", b, blen);
        break;
    case CRYPTO_KEY_ED25519:
        cJSON_AddStringToObject(k->jwk, "kty", "OKP");
        cJSON_AddStringToObject(k->jwk, "crv", "Ed25519");
        add_b64(k->jwk, "x", a, alen);
        break;
    }
}

/* The key's JWK with kid and extra members (a JSON object text or NULL). */
static cJSON *jwk_of(const struct test_key *k, const char *kid, const char *extra)
{
    cJSON *j = cJSON_Duplicate(k->jwk, 1);
    if (kid != NULL)
        cJSON_AddStringToObject(j, "kid", kid);
    if (extra != NULL) {
        cJSON *x = cJSON_Parse(extra);
        ck_assert_ptr_nonnull(x);
        for (cJSON *m = x->child; m != NULL; m = m->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(j, m->string);
            cJSON_AddItemToObject(j, m->string, cJSON_Duplicate(m, 1));
        }
        cJSON_Delete(x);
    }
    return j;
}

/* {"keys":[...]} of the given JWKs (taken); a malloc'ed text. */
static char *set_of(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    cJSON *doc = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(doc, "keys");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(keys, va_arg(ap, cJSON *));
    va_end(ap);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    ck_assert_ptr_nonnull(text);
    return text;
}

static size_t count_of(const char *doc)
{
    char err[256] = "";
    struct auth_keyset *s = auth_keyset_parse(doc, strlen(doc), err, sizeof err);
    ck_assert_msg(s != NULL, "refused: %s: %s", err, doc);
    size_t n = s->count;
    auth_keyset_free(s);
    return n;
}

static void refused(const char *doc, size_t len, const char *why)
{
    char err[256] = "";
    struct auth_keyset *s = auth_keyset_parse(doc, len, err, sizeof err);
    ck_assert_msg(s == NULL, "accepted (%s): %.200s", why, doc);
    ck_assert_msg(err[0] != '\0', "no message (%s)", why);
}

/* ---- the parser ---------------------------------------------------------- */

START_TEST(set_usable_keys)
{
    char *doc = set_of(5, jwk_of(&rsa_key, "r", NULL), jwk_of(&p256_key, "e1", NULL),
                       jwk_of(&p384_key, "e2", "{\"use\":\"sig\",\"alg\":\"ES384\"}"),
                       jwk_of(&ed_key, "d", "{\"key_ops\":[\"verify\"]}"),
                       jwk_of(&rsa2_key, NULL, NULL));
    ck_assert_uint_eq(count_of(doc), 5);
    free(doc);
    ck_assert_uint_eq(count_of("{\"keys\":[]}"), 0);
}
END_TEST

/* Keys that are not for us are skipped, and the rest of the set is used. */
START_TEST(set_skips_keys_not_for_us)
{
    char *doc = set_of(
        10, jwk_of(&rsa_key, "enc", "{\"use\":\"enc\"}"),
        jwk_of(&rsa_key, "ops", "{\"key_ops\":[\"encrypt\",\"wrapKey\"]}"),
        jwk_of(&rsa_key, "oaep", "{\"alg\":\"RSA-OAEP\"}"),
        jwk_of(&rsa_key, "priv", "{\"d\":\"AQAB\"}"),
        jwk_of(&rsa_small, "small", NULL),
        cJSON_Parse("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"oct\"}"),
        cJSON_Parse("{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}"),
        cJSON_Parse("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}"),
        cJSON_Parse("{\"kty\":\"future\"}"),
        jwk_of(&p256_key, "good", NULL));
    ck_assert_uint_eq(count_of(doc), 1);
    free(doc);
}
END_TEST

/* A document with one malformed key is refused whole. */
START_TEST(set_refused_whole)
{
    static const char *const docs[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[1]}", "{\"keys\":[{}]}",
        "{\"keys\":[{\"kty\":5}]}", "{\"keys\":[{\"kty\":\"RSA\",\"use\":5}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"key_ops\":\"verify\"}]}",
        "{\"keys\":[] ",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        refused(docs[i], strlen(docs[i]), docs[i]);

    /* A P-256 "point" that is not on the curve. */
    cJSON *off = jwk_of(&p256_key, "off", NULL);
    const char *x = cJSON_GetObjectItem(off, "x")->valuestring;
    char bad[64];
    snprintf(bad, sizeof bad, "%s", x);
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    cJSON_ReplaceItemInObject(off, "x", cJSON_CreateString(bad));
    char *doc = set_of(2, jwk_of(&rsa_key, "r", NULL), off);
    refused(doc, strlen(doc), "point off the curve");
    free(doc);

    /* A kid over 255 bytes, a NUL in the document, too many keys, too big. */
    char kid[300];
    memset(kid, 'k', sizeof kid - 1);
    kid[sizeof kid - 1] = '\0';
    doc = set_of(1, jwk_of(&rsa_key, kid, NULL));
    refused(doc, strlen(doc), "long kid");
    free(doc);
    refused("{\"keys\":[]}\0", 12, "NUL");
    cJSON *many = cJSON_CreateObject();
    cJSON *keys = cJSON_AddArrayToObject(many, "keys");
    for (int i = 0; i < AUTH_JWKS_KEYS_MAX + 1; i++)
        cJSON_AddItemToArray(keys, cJSON_Parse("{\"kty\":\"oct\"}"));
    doc = cJSON_PrintUnformatted(many);
    cJSON_Delete(many);
    refused(doc, strlen(doc), "too many keys");
    free(doc);
    size_t big = AUTH_JWKS_MAX + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    memcpy(huge, "{\"keys\":[]}", 11);
    refused(huge, big, "over 64 KiB");
    free(huge);
}
END_TEST

/* ---- choosing a key -------------------------------------------------------- */

START_TEST(find_by_kid_and_fit)
{
    char *doc = set_of(5, jwk_of(&rsa_key, "r1", NULL), jwk_of(&rsa2_key, "r2", "{\"alg\":\"RS256\"}"),
                       jwk_of(&p256_key, "e", NULL), jwk_of(&p384_key, "e384", NULL),
                       jwk_of(&ed_key, "ed", NULL));
    struct auth_keyset *s = auth_keyset_parse(doc, strlen(doc), NULL, 0);
    ck_assert_ptr_nonnull(s);
    const struct auth_alg *rs256 = auth_alg_named("RS256"), *ps256 = auth_alg_named("PS256"),
                          *es256 = auth_alg_named("ES256"), *es384 = auth_alg_named("ES384"),
                          *eddsa = auth_alg_named("EdDSA"), *hs256 = auth_alg_named("HS256");
    ck_assert_str_eq(auth_keyset_find(s, "r1", rs256)->kid, "r1");
    ck_assert_str_eq(auth_keyset_find(s, "r1", ps256)->kid, "r1");
    ck_assert_str_eq(auth_keyset_find(s, "r2", rs256)->kid, "r2");
    ck_assert_ptr_null(auth_keyset_find(s, "r2", ps256)); /* pinned to RS256 */
    ck_assert_ptr_null(auth_keyset_find(s, "r1", es256)); /* wrong key type */
    ck_assert_ptr_null(auth_keyset_find(s, "r1", hs256)); /* never HMAC */
    ck_assert_ptr_null(auth_keyset_find(s, "e", es384));  /* wrong curve */
    ck_assert_str_eq(auth_keyset_find(s, "e384", es384)->kid, "e384");
    ck_assert_str_eq(auth_keyset_find(s, "ed", eddsa)->kid, "ed");
    ck_assert_ptr_null(auth_keyset_find(s, "nobody", rs256));
    /* No kid: only when a single key fits. */
    ck_assert_ptr_null(auth_keyset_find(s, NULL, rs256));
    ck_assert_str_eq(auth_keyset_find(s, NULL, es256)->kid, "e");
    ck_assert_ptr_null(auth_alg_named("none"));
    ck_assert_ptr_null(auth_alg_named("rs256"));
    auth_keyset_free(s);
    free(doc);
}
END_TEST

/* ---- the verifier with a key source ---------------------------------------- */

struct test_source {
    char *doc[4];
    uint64_t gen;       /* current: doc[gen - 1]; 0: none */
    uint64_t on_refresh; /* the generation a refresh moves to; 0: stays */
    int refreshes;
};

static struct test_source src;

static uint64_t ts_generation(void *ctx)
{
    return ((struct test_source *)ctx)->gen;
}

static uint64_t ts_read(void *ctx, char *buf, size_t cap, size_t *len)
{
    struct test_source *t = ctx;
    if (t->gen == 0)
        return 0;
    size_t n = strlen(t->doc[t->gen - 1]);
    if (n > cap)
        return 0;
    memcpy(buf, t->doc[t->gen - 1], n);
    *len = n;
    return t->gen;
}

static uint64_t ts_refresh(void *ctx, int max_ms)
{
    struct test_source *t = ctx;
    (void)max_ms;
    t->refreshes++;
    if (t->on_refresh != 0)
        t->gen = t->on_refresh;
    return t->gen;
}

static const struct auth_key_source source = {&src, ts_generation, ts_read, ts_refresh};

/* "Bearer " + a token signed with k, alg, kid. */
static char *bearer_for(const struct test_key *k, const char *alg, const char *kid,
                        const char *typ)
{
    const struct auth_alg *a = auth_alg_named(alg);
    ck_assert_ptr_nonnull(a);
    char header[256], payload[256];
    snprintf(header, sizeof header, "{\"alg\":\"%s\"%s%s%s%s%s}", alg,
             kid ? ",\"kid\":\"" : "", kid ? kid : "", kid ? "\"" : "",
             typ ? ",\"typ\":" : "", typ ? typ : "");
    snprintf(payload, sizeof payload,
             "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%ld,\"scope\":\"orders.read\"}",
             (long)time(NULL) + 600);
    char *tok = malloc(4096);
    ck_assert_ptr_nonnull(tok);
    size_t at = (size_t)sprintf(tok, "Bearer ");
    size_t start = at;
    at += crypto_b64url_encode(header, strlen(header), tok + at);
    tok[at++] = '.';
    at += crypto_b64url_encode(payload, strlen(payload), tok + at);
    unsigned char sig[CRYPTO_SIG_MAX];
    size_t n = crypto_sign(k->priv, auth_alg_scheme(a), a->hash, tok + start, at - start, sig);
    ck_assert_uint_gt(n, 0);
    tok[at++] = '.';
    crypto_b64url_encode(sig, n, tok + at);
    return tok;
}

static enum auth_result verify(struct auth_verifier *v, const char *h)
{
    struct auth_principal p;
    const char *why = NULL;
    enum auth_result r = auth_verify(v, h, 1, time(NULL), &p, &why);
    ck_assert_ptr_nonnull(why);
    return r;
}

static struct auth_verifier *jwks_verifier(const char *algs)
{
    struct auth_settings s = {
        .algorithms = algs,
        .keys = &source,
        .key_wait_ms = 0,
        .issuer = ISS,
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    char err[256];
    struct auth_verifier *v = auth_verifier_new(&s, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    return v;
}

static void source_reset(void)
{
    for (size_t i = 0; i < 4; i++)
        free(src.doc[i]);
    memset(&src, 0, sizeof src);
}

START_TEST(verifier_every_algorithm_and_typ)
{
    source_reset();
    src.doc[0] = set_of(4, jwk_of(&rsa_key, "r", NULL), jwk_of(&p256_key, "e", NULL),
                        jwk_of(&p384_key, "e384", NULL), jwk_of(&ed_key, "ed", NULL));
    src.gen = 1;
    struct auth_verifier *v =
        jwks_verifier("RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA");
    static const struct {
        const char *alg, *kid;
        const struct test_key *key;
    } cases[] = {
        {"RS256", "r", &rsa_key},  {"RS384", "r", &rsa_key}, {"RS512", "r", &rsa_key},
        {"PS256", "r", &rsa_key},  {"PS384", "r", &rsa_key}, {"PS512", "r", &rsa_key},
        {"ES256", "e", &p256_key}, {"ES384", "e384", &p384_key}, {"EdDSA", "ed", &ed_key},
    };
    static const char *const typs[] = {NULL, "\"JWT\"", "\"at+jwt\"", "\"application/at+JWT\""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t t = 0; t < 4; t++) {
            char *h = bearer_for(cases[i].key, cases[i].alg, cases[i].kid, typs[t]);
            ck_assert_msg(verify(v, h) == AUTH_OK, "%s typ %s", cases[i].alg,
                          typs[t] ? typs[t] : "(none)");
            free(h);
        }
    }
    /* typ that is not a JWT; a token signed by another key under a kid. */
    char *h = bearer_for(&rsa_key, "RS256", "r", "\"JOSE\"");
    ck_assert_int_eq(verify(v, h), AUTH_INVALID_TOKEN);
    free(h);
    h = bearer_for(&rsa2_key, "RS256", "r", NULL);
    ck_assert_int_eq(verify(v, h), AUTH_INVALID_TOKEN);
    free(h);
    /* An ES256 token naming the RSA key. */
    h = bearer_for(&p256_key, "ES256", "r", NULL);
    ck_assert_int_eq(verify(v, h), AUTH_INVALID_TOKEN);
    free(h);
    auth_verifier_free(v);
    source_reset();
}
END_TEST

/* Rotation and removal, as the verifier sees them: an unknown kid asks for
 * a refresh; a new set empties the cache, so a removed key's token (cached
 * a moment ago) is refused. */
START_TEST(verifier_rotation_and_removal)
{
    source_reset();
    src.doc[0] = set_of(1, jwk_of(&rsa_key, "k1", NULL));
    src.doc[1] = set_of(2, jwk_of(&rsa_key, "k1", NULL), jwk_of(&p256_key, "k2", NULL));
    src.doc[2] = set_of(1, jwk_of(&p256_key, "k2", NULL));
    struct auth_verifier *v = jwks_verifier(NULL); /* default RS256,ES256 */
    char *t1 = bearer_for(&rsa_key, "RS256", "k1", NULL);
    char *t2 = bearer_for(&p256_key, "ES256", "k2", NULL);

    /* Nothing fetched yet: not ready, and "later" rather than "invalid". */
    ck_assert(!auth_ready(v));
    ck_assert_int_eq(verify(v, t1), AUTH_UNAVAILABLE);

    src.gen = 1;
    ck_assert(auth_ready(v));
    ck_assert_int_eq(verify(v, t1), AUTH_OK);
    ck_assert_int_eq(verify(v, t1), AUTH_OK); /* a cache hit */

    /* k2 is unknown; the refresh brings set 2. */
    src.on_refresh = 2;
    int before = src.refreshes;
    ck_assert_int_eq(verify(v, t2), AUTH_OK);
    ck_assert_int_eq(src.refreshes, before + 1);
    ck_assert_int_eq(verify(v, t2), AUTH_OK);
    ck_assert_int_eq(src.refreshes, before + 1); /* known now: no more asks */

    /* k1 removed: its cached token is refused at once. */
    src.gen = 3;
    src.on_refresh = 0;
    ck_assert_int_eq(verify(v, t1), AUTH_INVALID_TOKEN);
    ck_assert_int_eq(verify(v, t2), AUTH_OK);

    /* A source that serves a set that does not parse: the last good stays. */
    free(src.doc[3]);
    src.doc[3] = strdup("{\"keys\":[{\"kty\":\"RSA\"}]}");
    src.gen = 4;
    ck_assert_int_eq(verify(v, t2), AUTH_OK);
    ck_assert(auth_ready(v));
    free(t1);
    free(t2);
    auth_verifier_free(v);
    source_reset();
}
END_TEST

/* RFC 8725 3.1: no HMAC with a key set, whatever the key bytes; alg none;
 * a settings check that refuses HMAC algorithms and an absent issuer. */
START_TEST(verifier_confusion_and_settings)
{
    source_reset();
    src.doc[0] = set_of(1, jwk_of(&rsa_key, "r", NULL));
    src.gen = 1;
    struct auth_verifier *v = jwks_verifier("RS256");
    /* HS256 over the JWK's text as the "secret". */
    char *jwk = cJSON_PrintUnformatted(rsa_key.jwk);
    char header[] = "{\"alg\":\"HS256\",\"kid\":\"r\"}";
    char payload[160];
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"exp\":%ld}", (long)time(NULL) + 60);
    char tok[1024];
    size_t at = (size_t)sprintf(tok, "Bearer ");
    size_t start = at;
    at += crypto_b64url_encode(header, strlen(header), tok + at);
    tok[at++] = '.';
    at += crypto_b64url_encode(payload, strlen(payload), tok + at);
    struct crypto_hmac *mac = crypto_hmac_new(CRYPTO_SHA256, jwk, strlen(jwk));
    unsigned char sig[32];
    ck_assert(crypto_hmac(mac, tok + start, at - start, sig));
    crypto_hmac_free(mac);
    free(jwk);
    size_t unsigned_at = at;
    tok[at++] = '.';
    crypto_b64url_encode(sig, 32, tok + at);
    ck_assert_int_eq(verify(v, tok), AUTH_INVALID_TOKEN);
    /* alg none */
    tok[unsigned_at] = '\0';
    char none[1024];
    char hnone[64];
    size_t n = crypto_b64url_encode("{\"alg\":\"none\",\"kid\":\"r\"}", 24, hnone);
    snprintf(none, sizeof none, "Bearer %.*s.%s.", (int)n, hnone, strchr(tok + start, '.') + 1);
    ck_assert_int_eq(verify(v, none), AUTH_INVALID_TOKEN);
    auth_verifier_free(v);

    struct auth_settings s = {.keys = &source, .issuer = ISS, .algorithms = "HS256"};
    char err[256] = "";
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "JWT_ALGORITHMS"));
    s.algorithms = "RS256";
    s.issuer = NULL;
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "JWT_ISSUER"));
    source_reset();
}
END_TEST

int main(void)
{
    testdir_create("jwk");
    make_key(&rsa_key, "RSA", NULL, 2048);
    make_key(&rsa2_key, "RSA", NULL, 2048);
    make_key(&rsa_small, "RSA", NULL, 1024);
    make_key(&p256_key, "EC", "P-256", 0);
    make_key(&p384_key, "EC", "P-384", 0);
    make_key(&ed_key, "ED25519", NULL, 0);

    Suite *s = suite_create("jwk");
    TCase *t = tcase_create("jwk");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, set_usable_keys);
    tcase_add_test(t, set_skips_keys_not_for_us);
    tcase_add_test(t, set_refused_whole);
    tcase_add_test(t, find_by_kid_and_fit);
    tcase_add_test(t, verifier_every_algorithm_and_typ);
    tcase_add_test(t, verifier_rotation_and_removal);
    tcase_add_test(t, verifier_confusion_and_settings);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    struct test_key *all[] = {&rsa_key, &rsa2_key, &rsa_small, &p256_key, &p384_key, &ed_key};
    for (size_t i = 0; i < 6; i++) {
        crypto_privkey_free(all[i]->priv);
        cJSON_Delete(all[i]->jwk);
    }
    testdir_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
