/*
 * auth_jwk.h - the JWS algorithms we know (RFC 7518 3, RFC 8037 3.1) and
 * a JSON Web Key Set (RFC 7517 5) of public keys to verify them with.
 *
 * A key set comes from an identity provider, so it is untrusted input:
 * auth_keyset_parse() either accepts the whole document or refuses it
 * whole (the caller then keeps the set it had), and it is fuzzed
 * (tests/fuzz/fuzz_jwks.c).  Within an accepted set, keys that are not for
 * us are skipped rather than refused: keys for encryption (`use` other than
 * `sig`, `key_ops` without `verify`), key types and curves we do not
 * verify with (oct, P-521, X25519...), RSA keys under 2048 bits (RFC 7518
 * 3.3), and anything carrying private parts.
 */
#ifndef ORDERS_AUTH_JWK_H
#define ORDERS_AUTH_JWK_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"

#define AUTH_JWKS_MAX (64 * 1024) /* bytes of one key set document */
#define AUTH_JWKS_KEYS_MAX 64
#define AUTH_KID_MAX 255
#define AUTH_RSA_MIN_BITS 2048

enum auth_alg_family {
    AUTH_ALG_HMAC,
    AUTH_ALG_RSA_PKCS1,
    AUTH_ALG_RSA_PSS,
    AUTH_ALG_ECDSA,
    AUTH_ALG_EDDSA,
};

struct auth_alg {
    const char *name; /* as a JWS header spells it, case-sensitive */
    enum auth_alg_family family;
    enum crypto_hash hash;
    enum crypto_key_type key; /* the key type it needs (not for HMAC) */
};

/* NULL for a name we do not verify ("none" included). */
const struct auth_alg *auth_alg_named(const char *name);
/* The signature scheme of a public-key algorithm (not HMAC). */
enum crypto_sig_scheme auth_alg_scheme(const struct auth_alg *alg);

struct auth_key {
    char kid[AUTH_KID_MAX + 1];
    bool has_kid;
    char alg[16]; /* the key's own "alg", "" when it has none */
    struct crypto_pubkey *key;
};

struct auth_keyset {
    size_t count;
    struct auth_key keys[AUTH_JWKS_KEYS_MAX];
};

/* Returns the set (possibly with no usable key), or NULL with one line in
 * err saying why the document was refused. */
struct auth_keyset *auth_keyset_parse(const char *doc, size_t len, char *err,
                                      size_t errlen);
void auth_keyset_free(struct auth_keyset *s);

/*
 * The key to verify a token of algorithm alg with: the one whose kid is
 * kid, that fits alg (key type and curve, and the key's own alg when it
 * has one).  A token without kid is verified only when exactly one key of
 * the set fits.  NULL when there is none.
 */
const struct auth_key *auth_keyset_find(const struct auth_keyset *s,
                                        const char *kid,
                                        const struct auth_alg *alg);

#endif
