/*
 * auth_claims.h - what a verified token's claims must say (RFC 7519 4.1,
 * RFC 8693 4.2 for scope), and what the request learns from them.
 *
 * Called only on claims whose signature has been checked.  exp is required
 * and numeric, nbf and iat may not lie in the future beyond the leeway,
 * iss and aud are compared when configured (and aud refused when it is
 * not), and scopes are read from `scope` (space-separated), `scp` (string
 * or array) or `scopes` (array), exact and case-sensitive.
 */
#ifndef ORDERS_AUTH_CLAIMS_H
#define ORDERS_AUTH_CLAIMS_H

#include <stdbool.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth.h"

struct auth_claim_rules {
    const char *issuer;   /* NULL: not checked */
    const char *audience; /* NULL: a token with aud is refused */
    long leeway;          /* seconds */
};

/* The time claims of a token, kept as numbers: all that can change the
 * verdict on the same token later (auth_cache.h). */
struct auth_times {
    double exp;
    double nbf, iat;
    bool has_nbf, has_iat;
};

/* AUTH_OK with out (sub, scopes) and times filled, or AUTH_INVALID_TOKEN
 * with why set.  out is left untouched on refusal. */
enum auth_result auth_claims_check(const struct auth_claim_rules *r,
                                   const cJSON *claims, time_t now,
                                   struct auth_principal *out,
                                   struct auth_times *times, const char **why);

/* The time rule alone, on numbers already read: the one comparison used
 * for a fresh token and for a cached one. */
bool auth_times_ok(const struct auth_times *t, long leeway, time_t now,
                   const char **why);

#endif
