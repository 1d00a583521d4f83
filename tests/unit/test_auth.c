/*
 * test_auth.c - unit tests for core/auth.c.
 *
 * Two sources of tokens: the PyJWT-minted vectors in JWT_VECTORS (an
 * independent implementation, so a bug shared by our minting and our
 * verifying cannot hide; tests/data/make-jwt-vectors.py), and tokens built
 * here, through libjwt (test_mint, lib_token) or by hand with OpenSSL's
 * HMAC when the header itself must be odd (libjwt always writes its own
 * "alg").
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"
#include "mint.h"

#define NOW ((time_t)1700000000)
#define BOTH (AUTH_SCOPE_READ | AUTH_SCOPE_WRITE)

static const char SECRET[] = "test-secret-0123456789abcdef0123456789abcdef";
static const char OTHER_SECRET[] = "another-secret-0123456789abcdef0123456789";

/* ---- helpers ----------------------------------------------------------- */

static struct auth_settings settings(const char *alg)
{
    struct auth_settings s = {
        .secret = (const unsigned char *)SECRET,
        .secret_len = sizeof SECRET - 1,
        .algorithm = alg,
        .issuer = NULL,
        .audience = NULL,
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    return s;
}

static struct auth_verifier *verifier_with(const struct auth_settings *s)
{
    char err[128] = "";
    struct auth_verifier *v = auth_verifier_new(s, err, sizeof err);
    ck_assert_msg(v != NULL, "auth_verifier_new: %s", err);
    return v;
}

static struct auth_verifier *verifier(const char *alg)
{
    struct auth_settings s = settings(alg);
    return verifier_with(&s);
}

static char *bearer(const char *token)
{
    size_t n = strlen(token) + sizeof "Bearer ";
    char *h = malloc(n);
    ck_assert_ptr_nonnull(h);
    snprintf(h, n, "Bearer %s", token);
    return h;
}

/* Verifies "Bearer <token>" at NOW; frees nothing the caller owns. */
static enum auth_result check_token(const struct auth_verifier *v,
                                    const char *token,
                                    struct auth_principal *p)
{
    char *h = bearer(token);
    const char *why = NULL;
    enum auth_result r = auth_verify(v, h, 1, NOW, p, &why);
    ck_assert_ptr_nonnull(why);
    free(h);
    return r;
}

static char *b64url(const unsigned char *data, size_t len)
{
    char *out = malloc(CRYPTO_B64URL_ENCODED_MAX(len));
    ck_assert_ptr_nonnull(out);
    crypto_b64url_encode(data, len, out);
    return out;
}

/* input "." base64url(HMAC(md, secret, input)); md NULL: an empty
 * signature (alg "none" style).  input is used as is, odd bytes and all. */
static char *sign_input(const char *input, const EVP_MD *md,
                        const char *secret)
{
    char *sig = NULL;
    if (md != NULL) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        ck_assert_ptr_nonnull(HMAC(md, secret, (int)strlen(secret),
                                   (const unsigned char *)input, strlen(input),
                                   mac, &maclen));
        sig = b64url(mac, maclen);
    }
    size_t n = strlen(input) + (sig ? strlen(sig) : 0) + 2;
    char *tok = malloc(n);
    ck_assert_ptr_nonnull(tok);
    snprintf(tok, n, "%s.%s", input, sig ? sig : "");
    free(sig);
    return tok;
}

/* header.payload.HMAC(md) from raw JSON texts. */
static char *hand_token(const char *header, const char *payload,
                        const EVP_MD *md, const char *secret)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    ck_assert_ptr_nonnull(input);
    snprintf(input, n, "%s.%s", h, p);
    free(h);
    free(p);
    char *tok = sign_input(input, md, secret);
    free(input);
    return tok;
}

static char *hs256(const char *payload)
{
    return hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
                      EVP_sha256(), SECRET);
}

/* Claims through libjwt (jansson), signed by libjwt. */
static char *lib_token(jwt_alg_t alg, const char *secret, const char *claims)
{
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)secret,
                                 (int)strlen(secret)),
                     0);
    char *tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    return tok;
}

/* Payload with exp far in the future plus the given members (a JSON
 * fragment starting with a comma, or ""). */
static char *claims_json(const char *extra)
{
    size_t n = strlen(extra) + 64;
    char *c = malloc(n);
    ck_assert_ptr_nonnull(c);
    snprintf(c, n, "{\"sub\":\"u\",\"exp\":%ld%s}", (long)NOW + 3600, extra);
    return c;
}

/* Result and scopes of an HS256 token with the given extra claims. */
static enum auth_result verify_extra(const struct auth_verifier *v,
                                     const char *extra, unsigned *scopes)
{
    char *c = claims_json(extra);
    char *tok = lib_token(JWT_ALG_HS256, SECRET, c);
    struct auth_principal p;
    enum auth_result r = check_token(v, tok, &p);
    *scopes = p.scopes;
    free(tok);
    free(c);
    return r;
}

/* ---- the PyJWT vectors ------------------------------------------------- */

static cJSON *vectors_doc;
static const cJSON *vectors;
static char vectors_error[512];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

static int load_vectors(void)
{
    const char *path = getenv("JWT_VECTORS");
    if (path == NULL || path[0] == '\0') {
        snprintf(vectors_error, sizeof vectors_error,
                 "JWT_VECTORS is not set (point it at jwt-vectors.json)");
        return 0;
    }
    char *text = slurp(path);
    if (text == NULL) {
        snprintf(vectors_error, sizeof vectors_error,
                 "cannot read JWT_VECTORS=%s", path);
        return 0;
    }
    vectors_doc = cJSON_Parse(text);
    free(text);
    vectors = cJSON_GetObjectItemCaseSensitive(vectors_doc, "vectors");
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(vectors_doc, "secret");
    if (!cJSON_IsArray(vectors) || cJSON_GetArraySize(vectors) == 0 ||
        !cJSON_IsString(secret) || strcmp(secret->valuestring, SECRET) != 0) {
        snprintf(vectors_error, sizeof vectors_error,
                 "%s: no vectors, or a secret other than the one expected",
                 path);
        return 0;
    }
    return cJSON_GetArraySize(vectors);
}

START_TEST(vectors_file_present)
{
    ck_abort_msg("%s", vectors_error);
}
END_TEST

static unsigned scope_bit_named(const char *name)
{
    if (strcmp(name, "orders.read") == 0)
        return AUTH_SCOPE_READ;
    if (strcmp(name, "orders.write") == 0)
        return AUTH_SCOPE_WRITE;
    ck_abort_msg("unknown needs_scope %s", name);
    return 0;
}

START_TEST(vector)
{
    const cJSON *vec = cJSON_GetArrayItem(vectors, _i);
    const char *name = cJSON_GetObjectItemCaseSensitive(vec, "name")->valuestring;
    const char *token = cJSON_GetObjectItemCaseSensitive(vec, "token")->valuestring;
    int expect = cJSON_GetObjectItemCaseSensitive(vec, "expect")->valueint;
    const cJSON *needs = cJSON_GetObjectItemCaseSensitive(vec, "needs_scope");

    struct auth_verifier *v = verifier("HS256");
    struct auth_principal p;
    char *h = bearer(token);
    const char *why = NULL;
    enum auth_result r = auth_verify(v, h, 1, time(NULL), &p, &why);
    free(h);
    auth_verifier_free(v);

    if (expect == 200) {
        ck_assert_msg(r == AUTH_OK, "%s: want OK, got %d (%s)", name, r, why);
        ck_assert_msg(p.scopes == BOTH, "%s: scopes %u", name, p.scopes);
    } else if (expect == 403) {
        ck_assert_msg(r == AUTH_OK, "%s: want OK, got %d (%s)", name, r, why);
        unsigned lacking = cJSON_IsString(needs)
                               ? scope_bit_named(needs->valuestring)
                               : BOTH;
        ck_assert_msg((p.scopes & lacking) == 0, "%s: scopes %u", name,
                      p.scopes);
    } else {
        ck_assert_msg(expect == 401, "%s: unknown expect %d", name, expect);
        ck_assert_msg(r == AUTH_INVALID_TOKEN, "%s: want invalid, got %d",
                      name, r);
        ck_assert_str_eq(p.sub, "");
        ck_assert_uint_eq(p.scopes, 0);
    }
}
END_TEST

/* ---- minted tokens ------------------------------------------------------- */

START_TEST(minted_valid)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "user-123", "orders.read orders.write", NOW, 3600);
    ck_assert_ptr_nonnull(tok);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    ck_assert_str_eq(p.sub, "user-123");
    ck_assert_uint_eq(p.scopes, BOTH);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* The per-worker cache of accepted tokens must not outlive the token:
 * the time claims are checked again on every hit. */
START_TEST(cached_token_still_expires)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "user-123", "orders.read", NOW, 60);
    ck_assert_ptr_nonnull(tok);
    char *h = bearer(tok);
    struct auth_principal p;
    const char *why = NULL;
    ck_assert_int_eq(auth_verify(v, h, 1, NOW, &p, &why), AUTH_OK);
    ck_assert_int_eq(auth_verify(v, h, 1, NOW + 1, &p, &why), AUTH_OK); /* a hit */
    ck_assert_int_eq(auth_verify(v, h, 1, NOW + 60 + AUTH_LEEWAY_SECONDS + 1, &p, &why),
                     AUTH_INVALID_TOKEN);
    /* and a token the cache has seen is refused by a verifier with another
     * secret: the cache is the verifier's own */
    struct auth_settings other = s;
    other.secret = (const unsigned char *)"another-secret-0123456789abcdef-0123456789";
    other.secret_len = strlen((const char *)other.secret);
    struct auth_verifier *v2 = verifier_with(&other);
    ck_assert_int_eq(auth_verify(v2, h, 1, NOW, &p, &why), AUTH_INVALID_TOKEN);
    auth_verifier_free(v2);
    free(h);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

START_TEST(expired)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    struct auth_principal p;
    char *tok = test_mint(&s, "u", "orders.read", NOW - 7200, 3600);
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_INVALID_TOKEN);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* exp is honoured up to the leeway, and "on or after exp" is expired. */
START_TEST(exp_leeway)
{
    struct auth_verifier *v = verifier("HS256");
    struct {
        long exp;
        enum auth_result want;
    } cases[] = {
        {(long)NOW - 10, AUTH_OK},
        {(long)NOW - AUTH_LEEWAY_SECONDS + 1, AUTH_OK},
        {(long)NOW - AUTH_LEEWAY_SECONDS, AUTH_INVALID_TOKEN},
        {(long)NOW - AUTH_LEEWAY_SECONDS - 1, AUTH_INVALID_TOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char c[128];
        snprintf(c, sizeof c, "{\"sub\":\"u\",\"exp\":%ld}", cases[i].exp);
        char *tok = lib_token(JWT_ALG_HS256, SECRET, c);
        struct auth_principal p;
        ck_assert_msg(check_token(v, tok, &p) == cases[i].want, "exp %ld",
                      cases[i].exp);
        free(tok);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(zero_leeway)
{
    struct auth_settings s = settings("HS256");
    s.leeway_seconds = 0;
    struct auth_verifier *v = verifier_with(&s);
    unsigned sc;
    char extra[64];
    snprintf(extra, sizeof extra, ",\"nbf\":%ld", (long)NOW + 1);
    ck_assert_int_eq(verify_extra(v, extra, &sc), AUTH_INVALID_TOKEN);
    snprintf(extra, sizeof extra, ",\"nbf\":%ld", (long)NOW);
    ck_assert_int_eq(verify_extra(v, extra, &sc), AUTH_OK);
    auth_verifier_free(v);
}
END_TEST

START_TEST(nbf_and_iat)
{
    struct auth_verifier *v = verifier("HS256");
    struct {
        const char *claim;
        long at;
        enum auth_result want;
    } cases[] = {
        {"nbf", (long)NOW + 3600, AUTH_INVALID_TOKEN},
        {"nbf", (long)NOW + AUTH_LEEWAY_SECONDS + 1, AUTH_INVALID_TOKEN},
        {"nbf", (long)NOW + AUTH_LEEWAY_SECONDS, AUTH_OK},
        {"nbf", (long)NOW + 20, AUTH_OK},
        {"nbf", (long)NOW - 100, AUTH_OK},
        {"iat", (long)NOW + 3600, AUTH_INVALID_TOKEN},
        {"iat", (long)NOW + AUTH_LEEWAY_SECONDS + 1, AUTH_INVALID_TOKEN},
        {"iat", (long)NOW + 20, AUTH_OK},
        {"iat", (long)NOW - 100, AUTH_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[64];
        unsigned sc;
        snprintf(extra, sizeof extra, ",\"%s\":%ld", cases[i].claim,
                 cases[i].at);
        ck_assert_msg(verify_extra(v, extra, &sc) == cases[i].want,
                      "%s %ld", cases[i].claim, cases[i].at);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(time_claim_types)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const bad[] = {
        "{\"sub\":\"u\"}",
        "{\"sub\":\"u\",\"exp\":\"4102444800\"}",
        "{\"sub\":\"u\",\"exp\":null}",
        "{\"sub\":\"u\",\"exp\":true}",
        "{\"sub\":\"u\",\"exp\":[4102444800]}",
        "{\"sub\":\"u\",\"exp\":4102444800,\"nbf\":\"0\"}",
        "{\"sub\":\"u\",\"exp\":4102444800,\"iat\":{}}",
        "{\"sub\":\"u\",\"EXP\":4102444800}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok = lib_token(JWT_ALG_HS256, SECRET, bad[i]);
        struct auth_principal p;
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN, "%s",
                      bad[i]);
        free(tok);
    }
    /* A fractional NumericDate is a number too (RFC 7519 2). */
    char *tok = lib_token(JWT_ALG_HS256, SECRET,
                          "{\"sub\":\"u\",\"exp\":4102444800.5,\"iat\":1.5}");
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* Numbers jansson keeps but that overflow time_t or a double-to-long
 * conversion must not reach undefined behaviour. */
START_TEST(huge_numbers)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const payloads[] = {
        "{\"exp\":1e300}",
        "{\"exp\":-1e300}",
        "{\"exp\":9223372036854775807}",
        "{\"exp\":-9223372036854775808}",
        "{\"exp\":1e300,\"nbf\":-1e300,\"iat\":-9223372036854775808}",
        "{\"exp\":1e999}",
    };
    const enum auth_result want[] = {AUTH_OK, AUTH_INVALID_TOKEN, AUTH_OK,
                                     AUTH_INVALID_TOKEN, AUTH_OK,
                                     AUTH_INVALID_TOKEN};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *tok = hs256(payloads[i]);
        struct auth_principal p;
        ck_assert_msg(check_token(v, tok, &p) == want[i], "%s", payloads[i]);
        free(tok);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(wrong_secret)
{
    struct auth_verifier *v = verifier("HS256");
    char *c = claims_json(",\"scope\":\"orders.read\"");
    char *tok = lib_token(JWT_ALG_HS256, OTHER_SECRET, c);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_INVALID_TOKEN);
    free(tok);
    free(c);
    auth_verifier_free(v);
}
END_TEST

START_TEST(alg_none)
{
    struct auth_verifier *v = verifier("HS256");
    char *c = claims_json(",\"scope\":\"orders.read orders.write\"");
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"NONE\"}",
        "{\"alg\":\"None\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":null}",
        "{\"alg\":\"\"}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        struct auth_principal p;
        /* Unsigned, and with a signature part that is a valid HS256 MAC. */
        char *tok = hand_token(headers[i], c, NULL, SECRET);
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN, "%s",
                      headers[i]);
        free(tok);
        tok = hand_token(headers[i], c, EVP_sha256(), SECRET);
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN,
                      "%s signed", headers[i]);
        free(tok);
    }
    free(c);
    auth_verifier_free(v);
}
END_TEST

/* libjwt parses alg names case-insensitively; the pin must not. */
START_TEST(alg_spelling)
{
    struct auth_verifier *v = verifier("HS256");
    char *c = claims_json("");
    static const char *const headers[] = {
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"Hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
        "[\"HS256\"]",
        "\"HS256\"",
        "{\"alg\":\"HS256\"} x",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        struct auth_principal p;
        char *tok = hand_token(headers[i], c, EVP_sha256(), SECRET);
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN, "%s",
                      headers[i]);
        free(tok);
    }
    /* Control: the same construction with a plain header is accepted, as
     * are extra members such as kid and whitespace in the JSON. */
    static const char *const good[] = {
        "{\"alg\":\"HS256\"}",
        "{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"HS256\"}",
        " { \"alg\" : \"HS256\" } ",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct auth_principal p;
        char *tok = hand_token(good[i], c, EVP_sha256(), SECRET);
        ck_assert_msg(check_token(v, tok, &p) == AUTH_OK, "%s", good[i]);
        free(tok);
    }
    free(c);
    auth_verifier_free(v);
}
END_TEST

START_TEST(other_hs_sizes_when_hs256_pinned)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const algs[] = {"HS384", "HS512"};
    for (size_t i = 0; i < 2; i++) {
        struct auth_settings s = settings(algs[i]);
        char *tok = test_mint(&s, "u", "orders.read orders.write", NOW, 600);
        ck_assert_ptr_nonnull(tok);
        struct auth_principal p;
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN, "%s",
                      algs[i]);
        free(tok);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(hs512_configured)
{
    struct auth_settings s = settings("HS512");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "u", "orders.read orders.write", NOW, 600);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    ck_assert_uint_eq(p.scopes, BOTH);
    free(tok);

    struct auth_settings s256 = settings("HS256");
    tok = test_mint(&s256, "u", "orders.read orders.write", NOW, 600);
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_INVALID_TOKEN);
    free(tok);

    /* Header says HS512 but the MAC is HS256 over the same input. */
    char *c = claims_json("");
    tok = hand_token("{\"alg\":\"HS512\"}", c, EVP_sha256(), SECRET);
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_INVALID_TOKEN);
    free(tok);
    free(c);
    auth_verifier_free(v);
}
END_TEST

START_TEST(issuer_and_audience)
{
    struct auth_settings s = settings("HS256");
    s.issuer = "https://issuer.example";
    s.audience = "orders-api";
    struct auth_verifier *v = verifier_with(&s);
    struct {
        const char *extra;
        enum auth_result want;
    } cases[] = {
        {",\"iss\":\"https://issuer.example\",\"aud\":\"orders-api\"", AUTH_OK},
        {",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"orders-api\"]",
         AUTH_OK},
        {",\"iss\":\"https://issuer.example\",\"aud\":[1,\"orders-api\"]",
         AUTH_OK},
        {",\"iss\":\"https://evil.example\",\"aud\":\"orders-api\"",
         AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example/\",\"aud\":\"orders-api\"",
         AUTH_INVALID_TOKEN},
        {",\"aud\":\"orders-api\"", AUTH_INVALID_TOKEN},
        {",\"iss\":[\"https://issuer.example\"],\"aud\":\"orders-api\"",
         AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\"", AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\",\"aud\":\"orders\"",
         AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\",\"aud\":\"Orders-API\"",
         AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"y\"]",
         AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\",\"aud\":[]", AUTH_INVALID_TOKEN},
        {",\"iss\":\"https://issuer.example\",\"aud\":{\"orders-api\":1}",
         AUTH_INVALID_TOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned sc;
        ck_assert_msg(verify_extra(v, cases[i].extra, &sc) == cases[i].want,
                      "%s", cases[i].extra);
    }
    /* auth_mint carries the configured iss and aud. */
    char *tok = test_mint(&s, "u", "orders.read", NOW, 60);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* Nothing configured: iss is ignored, but a token addressed to some
 * audience is refused (RFC 7519 4.1.3). */
START_TEST(unconfigured_issuer_and_audience)
{
    struct auth_settings s = settings("HS256");
    s.issuer = "";
    s.audience = "";
    struct auth_verifier *v = verifier_with(&s);
    unsigned sc;
    ck_assert_int_eq(verify_extra(v, ",\"iss\":\"anyone\"", &sc), AUTH_OK);
    ck_assert_int_eq(verify_extra(v, ",\"aud\":\"orders-api\"", &sc),
                     AUTH_INVALID_TOKEN);
    auth_verifier_free(v);
}
END_TEST

START_TEST(scope_shapes)
{
    struct auth_verifier *v = verifier("HS256");
    struct {
        const char *extra;
        unsigned want;
    } cases[] = {
        {",\"scope\":\"orders.read orders.write\"", BOTH},
        {",\"scope\":\"orders.read\"", AUTH_SCOPE_READ},
        {",\"scope\":\"  orders.write   orders.read  \"", BOTH},
        {",\"scope\":\"openid orders.write profile\"", AUTH_SCOPE_WRITE},
        {",\"scope\":\"orders.read\\torders.write\"", 0},
        {",\"scope\":\"orders.read,orders.write\"", 0},
        {",\"scope\":\"\"", 0},
        {",\"scope\":\"Orders.Read ORDERS.WRITE\"", 0},
        {",\"scope\":\"orders.readonly orders.writer orders.rea\"", 0},
        {",\"scp\":\"orders.read orders.write\"", BOTH},
        {",\"scp\":[\"orders.read\",\"orders.write\"]", BOTH},
        {",\"scp\":[\"orders.write\"]", AUTH_SCOPE_WRITE},
        {",\"scp\":[]", 0},
        {",\"scopes\":[\"orders.read\",\"orders.write\"]", BOTH},
        {",\"scopes\":[\"orders.read orders.write\"]", 0},
        {",\"scope\":\"orders.read\",\"scopes\":[\"orders.write\"]", BOTH},
        {",\"scp\":\"orders.read\",\"scopes\":[\"orders.write\"]", BOTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned sc = 99;
        ck_assert_msg(verify_extra(v, cases[i].extra, &sc) == AUTH_OK, "%s",
                      cases[i].extra);
        ck_assert_msg(sc == cases[i].want, "%s: %u", cases[i].extra, sc);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(scope_wrong_types)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const bad[] = {
        ",\"scopes\":\"orders.read orders.write\"",
        ",\"scopes\":{\"orders.read\":true}",
        ",\"scopes\":[\"orders.read\",7]",
        ",\"scopes\":[[\"orders.read\"]]",
        ",\"scopes\":null",
        ",\"scope\":[\"orders.read\"]",
        ",\"scope\":42",
        ",\"scp\":true",
        ",\"scp\":[\"orders.read\",null]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned sc;
        ck_assert_msg(verify_extra(v, bad[i], &sc) == AUTH_INVALID_TOKEN, "%s",
                      bad[i]);
        ck_assert_uint_eq(sc, 0);
    }
    auth_verifier_free(v);
}
END_TEST

static void expect_sub(const struct auth_verifier *v, const char *claims,
                       const char *want)
{
    char *tok = lib_token(JWT_ALG_HS256, SECRET, claims);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    ck_assert_str_eq(p.sub, want);
    free(tok);
}

START_TEST(subject)
{
    struct auth_verifier *v = verifier("HS256");
    expect_sub(v, "{\"exp\":4102444800}", "");
    expect_sub(v, "{\"exp\":4102444800,\"sub\":123}", "");
    expect_sub(v, "{\"exp\":4102444800,\"sub\":\"\"}", "");
    expect_sub(v, "{\"exp\":4102444800,\"sub\":\"caf\\u00e9\"}", "caf\xc3\xa9");

    char long_sub[AUTH_SUB_MAX + 50];
    memset(long_sub, 'a', sizeof long_sub - 1);
    long_sub[sizeof long_sub - 1] = '\0';
    char claims[512];
    snprintf(claims, sizeof claims, "{\"exp\":4102444800,\"sub\":\"%s\"}",
             long_sub);
    long_sub[AUTH_SUB_MAX] = '\0';
    expect_sub(v, claims, long_sub);

    /* 127 ASCII bytes then a 2-byte character: cutting at 128 would split
     * it, so the character goes entirely. */
    char edge[AUTH_SUB_MAX + 8];
    memset(edge, 'b', AUTH_SUB_MAX - 1);
    memcpy(edge + AUTH_SUB_MAX - 1, "\xc3\xa9xyz", 6);
    snprintf(claims, sizeof claims, "{\"exp\":4102444800,\"sub\":\"%s\"}",
             edge);
    edge[AUTH_SUB_MAX - 1] = '\0';
    expect_sub(v, claims, edge);
    auth_verifier_free(v);
}
END_TEST

/* ---- the Authorization header ---------------------------------------- */

START_TEST(header_schemes)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "u", "orders.read orders.write", NOW, 600);
    ck_assert_ptr_nonnull(tok);
    struct {
        const char *before, *after;
        enum auth_result want;
    } cases[] = {
        {"Bearer ", "", AUTH_OK},
        {"bearer ", "", AUTH_OK},
        {"BEARER ", "", AUTH_OK},
        {"bEaReR ", "", AUTH_OK},
        {"Bearer    ", "", AUTH_OK},
        {"  Bearer ", "  ", AUTH_OK},
        {"Bearer ", "\t", AUTH_OK},
        {"Bearer\t", "", AUTH_INVALID_TOKEN},
        {"Bearer", "", AUTH_INVALID_TOKEN},
        {"Bearer: ", "", AUTH_INVALID_TOKEN},
        {"Basic ", "", AUTH_INVALID_TOKEN},
        {"Token ", "", AUTH_INVALID_TOKEN},
        {"", "", AUTH_INVALID_TOKEN},
        {"Bearer ", " x", AUTH_INVALID_TOKEN},
        {"Bearer ", ".x", AUTH_INVALID_TOKEN},
        {"Bearer ", "=", AUTH_INVALID_TOKEN},
        {"Bearer \"", "\"", AUTH_INVALID_TOKEN},
        {"Bearer ", ", Bearer x", AUTH_INVALID_TOKEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[1024];
        snprintf(h, sizeof h, "%s%s%s", cases[i].before, tok, cases[i].after);
        struct auth_principal p;
        const char *why = NULL;
        enum auth_result r = auth_verify(v, h, 1, NOW, &p, &why);
        ck_assert_msg(r == cases[i].want, "[%s<token>%s]: %d (%s)",
                      cases[i].before, cases[i].after, r, why);
        ck_assert_ptr_nonnull(why);
    }
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* Two Authorization headers are a malformed request whatever they hold
 * (RFC 6750 3.1 invalid_request): the verifier never picks one. */
START_TEST(header_twice)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "u", "orders.read orders.write", NOW, 600);
    char *h = bearer(tok);
    struct auth_principal p;
    const char *why = NULL;
    ck_assert_int_eq(auth_verify(v, h, 1, NOW, &p, &why), AUTH_OK);
    ck_assert_int_eq(auth_verify(v, h, 2, NOW, &p, &why), AUTH_BAD_REQUEST);
    ck_assert_str_eq(p.sub, "");
    ck_assert_uint_eq(p.scopes, 0);
    ck_assert_int_eq(auth_verify(v, NULL, 3, NOW, &p, &why), AUTH_BAD_REQUEST);
    ck_assert_int_eq(auth_verify(v, NULL, 0, NOW, &p, &why), AUTH_NO_CREDENTIALS);
    free(h);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

START_TEST(header_without_credentials)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const none[] = {"", " ", "\t \t"};
    struct auth_principal p;
    const char *why = NULL;
    ck_assert_int_eq(auth_verify(v, NULL, 1, NOW, &p, &why), AUTH_NO_CREDENTIALS);
    ck_assert_ptr_nonnull(why);
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        ck_assert_int_eq(auth_verify(v, none[i], 1, NOW, &p, NULL),
                         AUTH_NO_CREDENTIALS);
    static const char *const bare[] = {"Bearer", "Bearer ", "bearer    ",
                                       "Basic dXNlcjpwYXNz", "Basic"};
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++)
        ck_assert_msg(auth_verify(v, bare[i], 1, NOW, &p, NULL) ==
                          AUTH_INVALID_TOKEN,
                      "%s", bare[i]);
    auth_verifier_free(v);
}
END_TEST

START_TEST(header_garbage)
{
    struct auth_verifier *v = verifier("HS256");
    static const char *const junk[] = {
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer a..c",
        "Bearer .b.c",
        "Bearer e30.e30.",
        "Bearer e30.e30.e30.e30",
        "Bearer e30.e30.@@@@",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abcde",
        "Bearer eyJhbGciOiJIUzI1NiJ9=.e30.abcd",
        "Bearer eyJhbGciOiJIUzI1NiJ9.\xff\xfe.abcd",
        "Bearer AAAA.AAAA.AAAA",
        "Bearer eyJhbGciOiJIUzI1NiJ9.AAAA.AAAA",
        "Bearer eyJhbGciOiJIUzI1NiJ9.W10.AAAA",
        "\xc3\xa9",
        "Bearer \x01\x02.\x03.\x04",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        struct auth_principal p;
        ck_assert_msg(auth_verify(v, junk[i], 1, NOW, &p, NULL) ==
                          AUTH_INVALID_TOKEN,
                      "%s", junk[i]);
    }
    auth_verifier_free(v);
}
END_TEST

/* libjwt 1.10 (libb64) skips bytes outside the base64 alphabet, so a
 * correctly signed token with junk inside a segment decodes fine there.
 * What is verified must be exactly what was sent: the alphabet is ours to
 * enforce. */
START_TEST(alphabet_enforced)
{
    struct auth_verifier *v = verifier("HS256");
    /* {"alg":"HS256"} . {"exp":4102444800,"scope":"orders.read"} */
    static const char *const inputs[] = {
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoib3JkZXJzLnJlYWQifQ",
        "eyJh!*bGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoib3JkZXJzLnJlYWQifQ",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAi\tOjQxMDI0NDQ4MDAsInNjb3BlIjoib3JkZXJzLnJlYWQifQ",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAi+OjQxMDI0NDQ4MDAsInNjb3BlIjoib3JkZXJzLnJlYWQifQ",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoib3JkZXJzLnJlYWQifQ==",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char *tok = sign_input(inputs[i], EVP_sha256(), SECRET);
        struct auth_principal p;
        ck_assert_msg(check_token(v, tok, &p) ==
                          (i == 0 ? AUTH_OK : AUTH_INVALID_TOKEN),
                      "%s", inputs[i]);
        free(tok);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(long_tokens)
{
    struct auth_verifier *v = verifier("HS256");
    struct auth_principal p;

    /* 1 MiB of base64 alphabet with the right dots. */
    size_t n = 1 << 20;
    char *h = malloc(n + 1);
    ck_assert_ptr_nonnull(h);
    memset(h, 'A', n);
    memcpy(h, "Bearer ", 7);
    h[100] = '.';
    h[200] = '.';
    h[n] = '\0';
    ck_assert_int_eq(auth_verify(v, h, 1, NOW, &p, NULL), AUTH_INVALID_TOKEN);
    free(h);

    /* Correctly signed: a large claim under the bound passes, over it not. */
    size_t sizes[] = {5000, 7000};
    const enum auth_result want[] = {AUTH_OK, AUTH_INVALID_TOKEN};
    for (size_t i = 0; i < 2; i++) {
        char *pad = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(pad);
        memset(pad, 'x', sizes[i]);
        pad[sizes[i]] = '\0';
        size_t cn = sizes[i] + 64;
        char *c = malloc(cn);
        ck_assert_ptr_nonnull(c);
        snprintf(c, cn, "{\"exp\":4102444800,\"pad\":\"%s\"}", pad);
        char *tok = lib_token(JWT_ALG_HS256, SECRET, c);
        ck_assert_msg(check_token(v, tok, &p) == want[i], "size %zu (%zu)",
                      sizes[i], strlen(tok));
        free(tok);
        free(c);
        free(pad);
    }
    auth_verifier_free(v);
}
END_TEST

START_TEST(tampered)
{
    struct auth_settings s = settings("HS256");
    struct auth_verifier *v = verifier_with(&s);
    char *tok = test_mint(&s, "u", "orders.read", NOW, 600);
    size_t n = strlen(tok);
    struct auth_principal p;
    /* Flip every character of the signature in turn; none survives. */
    const char *sig = strrchr(tok, '.') + 1;
    for (size_t i = (size_t)(sig - tok); i < n - 1; i++) {
        char saved = tok[i];
        tok[i] = saved == 'A' ? 'B' : 'A';
        ck_assert_msg(check_token(v, tok, &p) == AUTH_INVALID_TOKEN, "%zu", i);
        tok[i] = saved;
    }
    /* Signature cut short, or lengthened. */
    char *cut = strdup(tok);
    ck_assert_ptr_nonnull(cut);
    cut[n - 4] = '\0';
    ck_assert_int_eq(check_token(v, cut, &p), AUTH_INVALID_TOKEN);
    free(cut);
    char *longer = malloc(n + 5);
    ck_assert_ptr_nonnull(longer);
    snprintf(longer, n + 5, "%sAAAA", tok);
    ck_assert_int_eq(check_token(v, longer, &p), AUTH_INVALID_TOKEN);
    free(longer);
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

/* ---- construction ------------------------------------------------------ */

START_TEST(verifier_settings)
{
    char err[128];
    struct auth_settings s = settings(NULL);
    struct auth_verifier *v = auth_verifier_new(&s, err, sizeof err);
    ck_assert_ptr_nonnull(v); /* NULL algorithm: HS256 */
    char *tok = test_mint(&s, "u", "orders.read", NOW, 60);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    free(tok);
    auth_verifier_free(v);

    /* "" is unset, as in the environment: the default. */
    static const char *const bad_algs[] = {"hs256", "none", "RS256", ",",
                                           "HS256 ", "ES256", "HS256,,HS384",
                                           "HS256,RS256", "EdDSA"};
    for (size_t i = 0; i < sizeof bad_algs / sizeof bad_algs[0]; i++) {
        s = settings(bad_algs[i]);
        err[0] = '\0';
        ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
        ck_assert_msg(err[0] != '\0', "%s", bad_algs[i]);
    }
    s = settings("HS256");
    s.secret_len = 0;
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    s.secret = NULL;
    s.secret_len = 40;
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    s = settings("HS256");
    s.secret_len = 31;
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    s = settings("HS256");
    s.leeway_seconds = -1;
    ck_assert_ptr_null(auth_verifier_new(&s, err, sizeof err));
    ck_assert_ptr_null(auth_verifier_new(NULL, NULL, 0));
    auth_verifier_free(NULL);
}
END_TEST

/* The verifier owns a copy: the caller may wipe its secret afterwards. */
START_TEST(verifier_copies_secret)
{
    unsigned char secret[sizeof SECRET];
    memcpy(secret, SECRET, sizeof SECRET);
    struct auth_settings s = settings("HS256");
    s.secret = secret;
    struct auth_verifier *v = verifier_with(&s);
    memset(secret, 0, sizeof secret);
    struct auth_settings good = settings("HS256");
    char *tok = test_mint(&good, "u", "orders.read", NOW, 60);
    struct auth_principal p;
    ck_assert_int_eq(check_token(v, tok, &p), AUTH_OK);
    free(tok);
    auth_verifier_free(v);
}
END_TEST

START_TEST(verify_null_arguments)
{
    struct auth_principal p;
    ck_assert_int_eq(auth_verify(NULL, "Bearer a.b.c", 1, NOW, &p, NULL),
                     AUTH_INVALID_TOKEN);
    struct auth_verifier *v = verifier("HS256");
    ck_assert_int_eq(auth_verify(v, "Bearer a.b.c", 1, NOW, NULL, NULL),
                     AUTH_INVALID_TOKEN);
    auth_verifier_free(v);
}
END_TEST

START_TEST(scope_names)
{
    ck_assert_str_eq(auth_scope_name(AUTH_SCOPE_READ), "orders.read");
    ck_assert_str_eq(auth_scope_name(AUTH_SCOPE_WRITE), "orders.write");
    ck_assert_str_eq(auth_scope_name((enum auth_scope)0), "");
}
END_TEST

/* ---- fuzzer findings ----------------------------------------------------- */

/*
 * Inputs from tests/fuzz/fuzz_auth.c.  No crash, leak or contract breach
 * has been found yet (about 14 million runs); these are small corpus
 * entries that each stop at a different check.  Every future finding is
 * appended here.
 */
static const char *const fuzz_regressions[] = {
    "Bearer .",
    "Bearer JJ..e",
    "Bearer eV.6.",
    "Bearer 569.e1.j",
    "bearer I9.aX.9k",
    "BeaRer B",
    "Bearer  \xda",
    "Bearer e\".\xff.",
    "Bearer e30.e30.e30",
};

START_TEST(fuzz_regression)
{
    struct auth_verifier *v = verifier("HS256");
    struct auth_principal p;
    for (size_t i = 0; i < sizeof fuzz_regressions / sizeof fuzz_regressions[0];
         i++)
        ck_assert_int_ne(auth_verify(v, fuzz_regressions[i], 1, NOW, &p, NULL),
                         AUTH_OK);
    auth_verifier_free(v);
}
END_TEST

static Suite *auth_suite(int nvectors)
{
    Suite *s = suite_create("auth");

    TCase *tv = tcase_create("vectors");
    if (nvectors > 0)
        tcase_add_loop_test(tv, vector, 0, nvectors);
    else
        tcase_add_test(tv, vectors_file_present);
    suite_add_tcase(s, tv);

    TCase *tm = tcase_create("minted");
    tcase_add_test(tm, minted_valid);
    tcase_add_test(tm, cached_token_still_expires);
    tcase_add_test(tm, expired);
    tcase_add_test(tm, exp_leeway);
    tcase_add_test(tm, zero_leeway);
    tcase_add_test(tm, nbf_and_iat);
    tcase_add_test(tm, time_claim_types);
    tcase_add_test(tm, huge_numbers);
    tcase_add_test(tm, wrong_secret);
    tcase_add_test(tm, alg_none);
    tcase_add_test(tm, alg_spelling);
    tcase_add_test(tm, other_hs_sizes_when_hs256_pinned);
    tcase_add_test(tm, hs512_configured);
    tcase_add_test(tm, issuer_and_audience);
    tcase_add_test(tm, unconfigured_issuer_and_audience);
    tcase_add_test(tm, scope_shapes);
    tcase_add_test(tm, scope_wrong_types);
    tcase_add_test(tm, subject);
    tcase_add_test(tm, tampered);
    suite_add_tcase(s, tm);

    TCase *th = tcase_create("header");
    tcase_add_test(th, header_schemes);
    tcase_add_test(th, header_twice);
    tcase_add_test(th, header_without_credentials);
    tcase_add_test(th, header_garbage);
    tcase_add_test(th, alphabet_enforced);
    tcase_add_test(th, long_tokens);
    tcase_add_test(th, fuzz_regression);
    suite_add_tcase(s, th);

    TCase *tc = tcase_create("construction");
    tcase_add_test(tc, verifier_settings);
    tcase_add_test(tc, verifier_copies_secret);
    tcase_add_test(tc, verify_null_arguments);
    tcase_add_test(tc, scope_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int nvectors = load_vectors();
    if (nvectors == 0)
        fprintf(stderr, "test_auth: %s\n", vectors_error);
    SRunner *sr = srunner_create(auth_suite(nvectors));
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    cJSON_Delete(vectors_doc);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
