/*
 * fuzz_auth.c - libFuzzer target for auth_verify.
 *
 * The input is used twice: as an Authorization header value, which is what
 * an attacker controls; and as the claims of a token signed with the right
 * key, which is the only way random bytes get past the signature to the
 * claim checks.  Each goes to a plain verifier and to one with issuer and
 * audience configured.  Besides "no crash, no leak", the verifier's
 * contract is checked: a refused token leaves an empty principal, an
 * accepted one only known scope bits and a bounded sub.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *       core/auth*.c core/crypto.c tests/fuzz/fuzz_auth.c $(pkg-config --cflags --libs \
 *       libjwt libcjson libcrypto) -o fuzz_auth
 *   ./fuzz_auth -max_len=10000 tests/fuzz/corpus/auth
 */
#include <jwt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define NOW ((time_t)1700000000)

static const char SECRET[] = "test-secret-0123456789abcdef0123456789abcdef";

static struct auth_verifier *plain, *strict;

static struct auth_verifier *make(const char *iss, const char *aud)
{
    struct auth_settings s = {
        .secret = (const unsigned char *)SECRET,
        .secret_len = sizeof SECRET - 1,
        .algorithm = "HS256",
        .issuer = iss,
        .audience = aud,
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    char err[128];
    struct auth_verifier *v = auth_verifier_new(&s, err, sizeof err);
    if (v == NULL) {
        fprintf(stderr, "fuzz_auth: %s\n", err);
        abort();
    }
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    plain = make(NULL, NULL);
    strict = make("https://issuer.example", "orders-api");
    return 0;
}

static void verify(const struct auth_verifier *v, const char *header)
{
    struct auth_principal p;
    memset(&p, 0x5a, sizeof p);
    const char *why = NULL;
    enum auth_result r = auth_verify(v, header, 1, NOW, &p, &why);
    if (why == NULL)
        abort();
    switch (r) {
    case AUTH_OK:
        if (memchr(p.sub, '\0', sizeof p.sub) == NULL ||
            (p.scopes & ~(unsigned)(AUTH_SCOPE_READ | AUTH_SCOPE_WRITE)) != 0)
            abort();
        break;
    case AUTH_NO_CREDENTIALS:
    case AUTH_INVALID_TOKEN:
        if (p.sub[0] != '\0' || p.scopes != 0)
            abort();
        break;
    default:
        abort();
    }
}

static void verify_both(const char *header)
{
    verify(plain, header);
    verify(strict, header);
}

/* libjwt refuses anything that is not a JSON object; that is fine, the
 * header path above has already had this input. */
static void verify_as_claims(const char *claims)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        abort();
    char *tok = NULL;
    if (jwt_add_grants_json(jwt, claims) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
                    (int)sizeof SECRET - 1) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (tok == NULL)
        return;
    size_t n = strlen(tok) + sizeof "Bearer ";
    char *h = malloc(n);
    if (h == NULL)
        abort();
    snprintf(h, n, "Bearer %s", tok);
    verify_both(h);
    free(h);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    verify_both(s);
    verify_as_claims(s);
    free(s);
    return 0;
}
