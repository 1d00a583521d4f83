/*
 * uuid.h - time-ordered UUIDv7 (RFC 9562) ids, canonical lowercase text.
 */
#ifndef ORDERS_UUID_H
#define ORDERS_UUID_H

#include <stdbool.h>

#define UUID_STR_LEN 36

/* out must hold UUID_STR_LEN + 1 bytes.  Returns 0, or -1 when the kernel
 * gave no randomness. */
int uuid_v7_generate(long long unix_ms, char *out);

/* True when s is a canonical lowercase UUID (any version): the only form an
 * order id can take, so anything else is a 404 without a database look-up. */
bool uuid_is_canonical(const char *s);

#endif
