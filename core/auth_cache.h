/*
 * auth_cache.h - tokens a verifier has fully accepted, so that the next
 * request with the same token skips the signature and the JSON.
 *
 * A client sends the same token for its whole lifetime, and the full check
 * (two JSON parsers, a MAC or a signature) is the largest single cost of a
 * read request.  A hit means these very bytes were accepted by this
 * verifier under its settings, so only what depends on the moment, the
 * time claims, is checked again (auth_times_ok), and an expired cached
 * token is refused.  Only accepted tokens are stored: a forged or refused
 * token always takes the full path and cannot evict anything.
 *
 * Not thread-safe: a cache belongs to one verifier in one worker process,
 * which serves one request at a time.
 */
#ifndef ORDERS_AUTH_CACHE_H
#define ORDERS_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "auth_claims.h"

/* Longer tokens are verified in full every time. */
#define AUTH_CACHE_TOKEN_MAX 4096

struct auth_cache;

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);

/* true with *principal and *times filled when exactly these bytes were
 * stored. */
bool auth_cache_lookup(const struct auth_cache *c, const char *tok, size_t len,
                       struct auth_principal *principal,
                       struct auth_times *times);

/* Forgets every token: the keys they were accepted with changed. */
void auth_cache_clear(struct auth_cache *c);

/* Remembers an accepted token; the newest takes its slot. */
void auth_cache_store(struct auth_cache *c, const char *tok, size_t len,
                      const struct auth_principal *principal,
                      const struct auth_times *times);

#endif
