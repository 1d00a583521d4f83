/*
 * auth_jws.h - a token's JWS compact serialisation (RFC 7515 7.1):
 * BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature).
 *
 * Split strictly (three non-empty segments of the url-safe alphabet, so
 * that what is verified is exactly what was sent), the protected header
 * decoded and read, the signature checked, and the payload decoded into
 * claims.  What the header's algorithm must be is the verifier's decision
 * (auth.c); what the claims must say is auth_claims.h's.
 */
#ifndef ORDERS_AUTH_JWS_H
#define ORDERS_AUTH_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "auth_jwk.h"
#include "crypto.h"

struct auth_jws {
    const char *header;   /* segments point into the token */
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *signature;
    size_t signature_len;
    size_t signing_input_len; /* header "." payload */
};

#define AUTH_JWS_ALG_MAX 15

/* What the verifier needs from the protected header. */
struct auth_jws_header {
    char alg[AUTH_JWS_ALG_MAX + 1];
    char kid[AUTH_KID_MAX + 1];
    bool has_kid;
};

/* false when the token is not three valid segments. */
bool auth_jws_split(const char *tok, size_t len, struct auth_jws *out);

/*
 * Decodes the protected header: a JSON object with no duplicate member
 * (parsers disagree on which one wins), a handful of members at most, a
 * string "alg", a string "kid" if any, a "typ" if any that says JWT or an
 * RFC 9068 access token ("JWT", "at+jwt", with or without "application/",
 * any case, RFC 7515 4.1.9), and no "crit" (RFC 7515 4.1.11: extensions
 * that must be understood; we understand none).  false with why set
 * otherwise.
 */
bool auth_jws_read_header(const struct auth_jws *j, struct auth_jws_header *h,
                          const char **why);

/* The signature segment is exactly the unpadded base64url of the HMAC of
 * the signing input under key (compared in constant time). */
bool auth_jws_hmac_ok(struct crypto_hmac *key, const struct auth_jws *j);

/* The signature segment is a valid signature of the signing input under
 * key with alg (RSA, RSA-PSS, ECDSA or EdDSA). */
bool auth_jws_signature_ok(const struct auth_key *key, const struct auth_alg *alg,
                           const struct auth_jws *j);

/*
 * The claims of a token whose signature was checked: the payload decoded,
 * valid UTF-8 without NUL, a JSON object with no duplicate member.  NULL
 * with why set otherwise.
 */
cJSON *auth_jws_claims(const struct auth_jws *j, const char **why);

#endif
