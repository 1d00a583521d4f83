/*
 * cursor.h - the opaque cursor of keyset pages (GET /orders?cursor=...).
 *
 * A cursor names a position in the store's creation sequence: the page it
 * continues holds the orders created before that position, newest first.
 * It is a format version, the position and an HMAC-SHA-256 tag over both
 * (core/crypto.h, OpenSSL's libcrypto), written in unpadded base64url.  The
 * tag's key is derived from the service's secret, so every worker of every
 * host that shares the secret accepts the cursors of the others, and a
 * cursor that was altered, truncated, re-spelt or made up is refused (400),
 * never read as a position.
 */
#ifndef ORDERS_CURSOR_H
#define ORDERS_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

#define CURSOR_TEXT_LEN 34 /* base64url of 1 + 8 + 16 bytes */

struct crypto_hmac;

struct cursor_key {
    struct crypto_hmac *mac; /* HMAC-SHA-256 with the derived key */
};

/* Derives the key: HMAC-SHA-256(secret, "orders cursor key v1"), a key of
 * its own so that a cursor tag is never a token signature.  Returns 0, or
 * -1 (no secret, or libcrypto failed). */
int cursor_key_init(struct cursor_key *key, const unsigned char *secret,
                    size_t secret_len);
void cursor_key_free(struct cursor_key *key);

/* Returns 0 with the cursor in out, or -1 when libcrypto failed. */
int cursor_encode(const struct cursor_key *key, long long position,
                  char out[CURSOR_TEXT_LEN + 1]);

/* Returns true with the position when text is a cursor this key made. */
bool cursor_decode(const struct cursor_key *key, const char *text,
                   long long *position);

#endif
