/*
 * jwks_share.h - the identity provider's key set, fetched once for the
 * whole pool and read by every worker.
 *
 * The pool master's fetcher (jwks_fetch.h) publishes each good key set
 * document into shared memory (a memfd inherited across fork and exec, as
 * the metrics are); a worker checks the generation number on every request
 * (one load, no system call) and parses the document again only when it
 * changed.  A worker that meets an unknown kid asks for a fetch by bumping
 * a counter and waits, bounded, for the fetcher to finish one; the fetcher
 * alone decides whether the identity provider is asked (at most once per
 * JWT_JWKS_MIN_REFRESH_S), so the pool never fetches more than that
 * whatever the traffic.
 */
#ifndef ORDERS_JWKS_SHARE_H
#define ORDERS_JWKS_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define JWKS_FD_ENV "ORDERS_JWKS_FD"

struct jwks_share;

/* Master: creates the shared region and names its fd in JWKS_FD_ENV for
 * the workers.  min_refresh_ms: the least time between two fetches asked
 * for by workers.  NULL (errno set) on failure. */
struct jwks_share *jwks_share_create(int min_refresh_ms);
/* Worker: maps the region named by JWKS_FD_ENV; NULL when there is none
 * or it is not one this binary understands (with the reason in err). */
struct jwks_share *jwks_share_attach(char *err, size_t errlen);
void jwks_share_unmap(struct jwks_share *s);

/* The worker's side, as the verifier sees it. */
struct auth_key_source jwks_share_source(struct jwks_share *s);

/* The fetcher's side.  */
/* Fetches asked for by workers so far (a counter). */
uint64_t jwks_share_requests(const struct jwks_share *s);
/* Marks the start and the end of one fetch; readers waiting for a fetch
 * wake at its end, whatever came of it. */
void jwks_share_fetch_started(struct jwks_share *s, int64_t now_ms);
void jwks_share_fetch_ended(struct jwks_share *s);
/* Publishes doc (already parsed and accepted) as the current set unless
 * it is the same bytes; returns whether it changed. */
bool jwks_share_publish(struct jwks_share *s, const char *doc, size_t len);
uint64_t jwks_share_generation(const struct jwks_share *s);

/* Monotonic milliseconds, the same clock in every process. */
int64_t jwks_share_now_ms(void);

#endif
