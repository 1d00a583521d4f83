/*
 * fuzz_jwks.c - libFuzzer target for auth_keyset_parse, the parser of the
 * identity provider's key set (untrusted: it comes over the network).
 *
 * Besides "no crash, no leak", its contract is checked: a refused document
 * gives NULL and a message; an accepted one at most AUTH_JWKS_KEYS_MAX
 * keys, each with a public key and a NUL-terminated kid and alg, and a
 * lookup by each key's own kid finds a key of the same kid for an
 * algorithm that fits it.  The document is then handed to a verifier as
 * its key set and a token is verified against it, so the path from a
 * fetched set to a verdict is fuzzed whole.
 *
 *   tests/fuzz/run.sh jwks
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_jwk.h"

static const char *doc;
static size_t doc_len;

static uint64_t src_generation(void *ctx)
{
    (void)ctx;
    return 1;
}

static uint64_t src_read(void *ctx, char *buf, size_t cap, size_t *len)
{
    (void)ctx;
    if (doc_len > cap)
        return 0;
    memcpy(buf, doc, doc_len);
    *len = doc_len;
    return 1;
}

static uint64_t src_refresh(void *ctx, int max_ms)
{
    (void)ctx;
    (void)max_ms;
    return 1;
}

static const struct auth_key_source source = {
    .generation = src_generation,
    .read = src_read,
    .refresh = src_refresh,
};

/* A well-formed ES256 token (the signature is not valid for any key the
 * fuzzer can make, which is the point: only the path is exercised). */
static const char TOKEN[] =
    "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0."
    "eyJzdWIiOiJ1IiwiaXNzIjoiaXNzIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6Im9yZGVycy5yZWFkIn0."
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void check_set(const struct auth_keyset *s)
{
    static const char *const algs[] = {"RS256", "PS512", "ES256", "ES384", "EdDSA"};
    if (s->count > AUTH_JWKS_KEYS_MAX)
        abort();
    for (size_t i = 0; i < s->count; i++) {
        const struct auth_key *k = &s->keys[i];
        if (k->key == NULL || memchr(k->kid, '\0', sizeof k->kid) == NULL ||
            memchr(k->alg, '\0', sizeof k->alg) == NULL)
            abort();
        for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
            const struct auth_key *f =
                auth_keyset_find(s, k->has_kid ? k->kid : NULL, auth_alg_named(algs[a]));
            if (f != NULL && k->has_kid && strcmp(f->kid, k->kid) != 0)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct auth_keyset *s = auth_keyset_parse((const char *)data, size, err, sizeof err);
    if (s == NULL) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    check_set(s);
    auth_keyset_free(s);

    doc = (const char *)data;
    doc_len = size;
    struct auth_settings st = {
        .algorithms = "RS256,PS256,ES256,ES384,EdDSA",
        .keys = &source,
        .issuer = "iss",
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    struct auth_verifier *v = auth_verifier_new(&st, err, sizeof err);
    if (v == NULL)
        abort();
    struct auth_principal p;
    const char *why = NULL;
    if (!auth_ready(v) || auth_verify(v, TOKEN, 1, 1700000000, &p, &why) == AUTH_OK)
        abort();
    auth_verifier_free(v);
    return 0;
}
