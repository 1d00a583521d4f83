/*
 * idempotency.h - the Idempotency-Key of POST /orders (the IETF draft "The
 * Idempotency-Key HTTP Header Field", as the contract's "Version 2" reads
 * it): parsing the header and the fingerprint of a request's body.
 *
 * The store keeps, per caller (the token's sub) and key, the fingerprint and
 * the response of the create that succeeded, in the create's own
 * transaction; store.h says how a repeat is answered.
 */
#ifndef ORDERS_IDEMPOTENCY_H
#define ORDERS_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#define IDEMPOTENCY_KEY_MAX 255
#define IDEMPOTENCY_FINGERPRINT_LEN 32 /* SHA-256 */
#define IDEMPOTENCY_TTL_HOURS_DEFAULT 24

/* What a keyed create asks the store to remember (store_order_create). */
struct idempotency_claim {
    const char *caller;                      /* the token's sub ("" when none) */
    char key[IDEMPOTENCY_KEY_MAX + 1];
    unsigned char fingerprint[IDEMPOTENCY_FINGERPRINT_LEN];
    long long ttl_ms;                        /* IDEMPOTENCY_TTL_HOURS */
};

/* Parses the Idempotency-Key field value.  count: how many such headers
 * came (two are refused, never guessed between).  The key is 1 to 255
 * visible ASCII characters (0x21-0x7E); the draft's quoted form ("key", an
 * RFC 8941 string) means the key inside the quotes.  Returns true with the
 * key in out (NUL-terminated), or false with *why set to a static sentence
 * for the 400. */
bool idempotency_key_parse(const char *value, int count,
                           char out[IDEMPOTENCY_KEY_MAX + 1], const char **why);

/* The fingerprint of a create request: SHA-256 (core/crypto.h) of its
 * canonical form, the validated customerId and items as the store keeps
 * them, so that the same order sent with other spacing or member order is
 * the same request.  Returns 0, or -1 when libcrypto failed. */
int idempotency_fingerprint(const char *customer_id, const char *items_json,
                            unsigned char out[IDEMPOTENCY_FINGERPRINT_LEN]);

#endif
