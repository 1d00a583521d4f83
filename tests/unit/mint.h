/*
 * mint.h - tokens for the unit tests, minted by libjwt (not by the code
 * under test), with the service's own settings.
 */
#ifndef ORDERS_TEST_MINT_H
#define ORDERS_TEST_MINT_H

#include <time.h>

#include "auth.h"

/* scopes is the space-separated `scope` claim (none when NULL or ""); iss
 * and aud come from the settings when set.  iat is now, exp now + lifetime.
 * Returns a malloc'ed token, or NULL when the settings name no HMAC
 * algorithm or the numbers overflow. */
char *test_mint(const struct auth_settings *s, const char *sub,
                const char *scopes, time_t now, long lifetime);

#endif
