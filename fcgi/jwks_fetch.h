/*
 * jwks_fetch.h - the pool master's thread that fetches the identity
 * provider's key set (JWT_JWKS_URL, or JWT_JWKS_FILE) and publishes every
 * good one to the workers (jwks_share.h).
 *
 * When it fetches: at start, then every JWT_JWKS_REFRESH_S seconds; when a
 * worker asks (an unknown kid), at most once per JWT_JWKS_MIN_REFRESH_S
 * seconds, an ask within that time being served when it has passed; and,
 * until a first set was had, every second.  A fetch takes at most
 * JWKS_FETCH_TIMEOUT_MS.  A document that is not a key set (not JSON, a
 * malformed key, over 64 KiB, an HTTP status other than 200) is refused
 * whole with one log line, and the workers keep the last good set.
 */
#ifndef ORDERS_JWKS_FETCH_H
#define ORDERS_JWKS_FETCH_H

#include "jwks_share.h"
#include "log.h"

#define JWKS_FETCH_TIMEOUT_MS 5000
#define JWKS_FETCH_CONNECT_MS 2000
#define JWKS_RETRY_UNTIL_FIRST_MS 1000

struct jwks_fetch_settings {
    const char *url;  /* http:// or https://; or NULL */
    const char *file; /* or a path */
    int refresh_s;
    int min_refresh_s;
};

struct jwks_fetcher;

/* Starts the thread (libcurl loaded first, for a URL).  NULL with a
 * message in err when it cannot. */
struct jwks_fetcher *jwks_fetcher_start(const struct jwks_fetch_settings *s,
                                        struct jwks_share *share,
                                        const struct logger *log,
                                        char *err, size_t errlen);
/* Stops the thread (an unfinished fetch is abandoned) and frees it. */
void jwks_fetcher_stop(struct jwks_fetcher *f);

#endif
