/*
 * crypto.h - the hashes, MACs, base64url, comparison and randomness the
 * service needs, all from OpenSSL's libcrypto (3.0, Debian 12).
 *
 * Nothing here is written by hand: these are thin wrappers that fix the
 * few choices the callers must not get wrong (the url-safe alphabet
 * without padding, a comparison whose time does not depend on where two
 * buffers differ, algorithms fetched once instead of on every call).
 * libcrypto was chosen over nettle or libsodium because the JWKS work
 * (issue 15) verifies RSA, RSA-PSS, ECDSA and Ed25519 signatures with the
 * same library.
 *
 * crypto_init() fetches the algorithms once; call it early in a process
 * (before it forks or starts threads).  Every other function calls it
 * itself if needed, so forgetting it costs only the first caller's time.
 */
#ifndef ORDERS_CRYPTO_H
#define ORDERS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

enum crypto_hash {
    CRYPTO_SHA256,
    CRYPTO_SHA384,
    CRYPTO_SHA512,
};

#define CRYPTO_DIGEST_MAX 64

/* Returns 0, or -1 when libcrypto cannot provide SHA-2 or HMAC (a broken
 * installation or configuration). */
int crypto_init(void);

/* The digest size in bytes: 32, 48 or 64. */
size_t crypto_hash_size(enum crypto_hash h);

/* out gets crypto_hash_size(h) bytes.  Returns false only when libcrypto
 * fails (out of memory). */
bool crypto_digest(enum crypto_hash h, const void *data, size_t len,
                   unsigned char *out);

/*
 * An HMAC key, prepared once and used for many messages (RFC 2104).  A key
 * longer than the hash's block is hashed first, as the RFC says; libcrypto
 * does that.  The key is copied (and wiped on free).  Not for concurrent
 * use: one per thread.
 */
struct crypto_hmac;

struct crypto_hmac *crypto_hmac_new(enum crypto_hash h, const void *key,
                                    size_t keylen);
void crypto_hmac_free(struct crypto_hmac *k);
/* The MAC's size in bytes: crypto_hash_size of its hash. */
size_t crypto_hmac_size(const struct crypto_hmac *k);
/* out gets crypto_hmac_size(k) bytes.  Returns false when libcrypto
 * fails. */
bool crypto_hmac(struct crypto_hmac *k, const void *msg, size_t len,
                 unsigned char *out);

/* Equal bytes, in a time that depends only on n (CRYPTO_memcmp). */
bool crypto_equal(const void *a, const void *b, size_t n);

/* Unpadded base64url (RFC 4648 5, as JOSE uses it, RFC 7515 2).
 * crypto_b64url_len(n) is the length of the encoding of n bytes. */
size_t crypto_b64url_len(size_t n);
/* Writes crypto_b64url_len(len) characters and a NUL into out, which must
 * hold CRYPTO_B64URL_ENCODED_MAX(len) bytes (libcrypto writes the padding
 * before it is dropped).  Returns the length written (without NUL). */
#define CRYPTO_B64URL_ENCODED_MAX(len) (((len) + 2) / 3 * 4 + 1)
size_t crypto_b64url_encode(const void *in, size_t len, char *out);
/*
 * Decodes unpadded base64url: refuses any character outside the url-safe
 * alphabet (padding included) and a length of 4k+1, which no encoder can
 * produce.  Leftover bits of the last character are ignored, as every
 * mainstream decoder does.  out must hold CRYPTO_B64URL_DECODED_MAX(len)
 * bytes (libcrypto writes the padding's zero bytes too); *outlen gets the
 * length decoded.
 */
#define CRYPTO_B64URL_DECODED_MAX(len) ((len) / 4 * 3 + 3)
bool crypto_b64url_decode(const char *in, size_t len, unsigned char *out,
                          size_t *outlen);
/* True when every character is in the url-safe alphabet and the length
 * could be an encoding (not 4k+1; 0 is allowed). */
bool crypto_b64url_valid(const char *in, size_t len);

/* len bytes from the kernel's generator (getrandom), fresh in a forked
 * child too.  Returns 0, or -1 when no randomness is available. */
int crypto_random(void *buf, size_t len);

/* Zeroes memory in a way the compiler cannot drop (OPENSSL_cleanse). */
void crypto_wipe(void *p, size_t n);

/* ---- public keys and signatures (JWS, RFC 7518 3.3-3.5, RFC 8037) ---- */

/* A public key imported from its raw parts (a JWK's members, decoded). */
struct crypto_pubkey;

enum crypto_key_type {
    CRYPTO_KEY_RSA,
    CRYPTO_KEY_P256,
    CRYPTO_KEY_P384,
    CRYPTO_KEY_ED25519,
};

/* RSA from its modulus and exponent (big-endian, leading zeros allowed).
 * NULL when they do not make an RSA key of at least min_bits bits. */
struct crypto_pubkey *crypto_pubkey_rsa(const unsigned char *n, size_t nlen,
                                        const unsigned char *e, size_t elen,
                                        unsigned min_bits);
/* An EC point on P-256 or P-384 from its coordinates, each exactly the
 * field's size (32 or 48 bytes); NULL when not a point of the curve. */
struct crypto_pubkey *crypto_pubkey_ec(enum crypto_key_type curve,
                                       const unsigned char *x, size_t xlen,
                                       const unsigned char *y, size_t ylen);
/* An Ed25519 public key (32 bytes). */
struct crypto_pubkey *crypto_pubkey_ed25519(const unsigned char *x, size_t xlen);
void crypto_pubkey_free(struct crypto_pubkey *k);
enum crypto_key_type crypto_pubkey_type(const struct crypto_pubkey *k);

enum crypto_sig_scheme {
    CRYPTO_SIG_RSA_PKCS1, /* RSASSA-PKCS1-v1_5: RS256/384/512 */
    CRYPTO_SIG_RSA_PSS,   /* RSASSA-PSS, MGF1 with the same hash, salt as
                             long as the hash: PS256/384/512 */
    CRYPTO_SIG_ECDSA,     /* r || s, each the curve's size: ES256/384 */
    CRYPTO_SIG_EDDSA,     /* Ed25519 (the hash is ignored): EdDSA */
};

/* true when sig is a valid signature of msg under k with the scheme and
 * hash.  The scheme must fit the key (an ECDSA scheme on an RSA key is
 * simply false); ECDSA signatures are the JWS form, converted here to the
 * DER libcrypto verifies. */
bool crypto_verify(const struct crypto_pubkey *k, enum crypto_sig_scheme scheme,
                   enum crypto_hash h, const void *msg, size_t len,
                   const unsigned char *sig, size_t siglen);

/* ---- private keys and signing (the token tool; never the service) ---- */

struct crypto_privkey;

/* Reads a PEM private key (PKCS#8 or the traditional RSA/EC forms) of a
 * type crypto_key_type names; NULL with one line in err otherwise. */
struct crypto_privkey *crypto_privkey_load(const char *path, char *err, size_t errlen);
void crypto_privkey_free(struct crypto_privkey *k);
enum crypto_key_type crypto_privkey_type(const struct crypto_privkey *k);

/* Signs msg; sig gets the JWS form (ECDSA as r || s).  Returns the
 * signature's length, or 0 on failure; sig must hold 1024 bytes. */
#define CRYPTO_SIG_MAX 1024
size_t crypto_sign(const struct crypto_privkey *k, enum crypto_sig_scheme scheme,
                   enum crypto_hash h, const void *msg, size_t len,
                   unsigned char *sig);

/* The public parts a JWK needs, big-endian: RSA n and e; EC x and y; Ed25519
 * x (b empty).  Each buffer holds 1024 bytes; returns false on failure. */
bool crypto_privkey_public(const struct crypto_privkey *k, unsigned char *a,
                           size_t *alen, unsigned char *b, size_t *blen);

#endif
