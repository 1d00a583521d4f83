/*
 * sink_util.h - what every sink adapter needs: filling a sink_result, and
 * showing a URL or an error text without its credentials.
 */
#ifndef ORDERS_ADAPTERS_SINK_UTIL_H
#define ORDERS_ADAPTERS_SINK_UTIL_H

#include <stddef.h>

#include "sink.h"

void sink_result_ok(struct sink_result *r);
void sink_result_set(struct sink_result *r, enum sink_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes url as logs may show it: scheme, host, port and path; a user name
 * or password becomes "***@"; each query value becomes "***" unless its key
 * is listed in keep (NULL-terminated, may be NULL); a fragment is dropped.
 * Everything up to the last '@' before the query counts as credentials,
 * so a password with an unescaped '/' or '@' in it is hidden too.
 */
void sink_url_describe(const char *url, const char *const *keep, char *out, size_t outlen);

/* Replaces every occurrence of secret (when not empty) in text with "***",
 * in place; text stays NUL-terminated within size. */
void sink_scrub(char *text, size_t size, const char *secret);

/* sink_scrub for each of secrets[0..count) (NULL or "" ones skipped),
 * longest first: a user name that is part of the password must not turn
 * the password into "***" plus the rest of it. */
void sink_scrub_all(char *text, size_t size, const char *const *secrets, size_t count);

/*
 * The first reason a sink call failed, as its result will give it: a broker
 * adapter notes every failure it meets, but only the first one is the
 * cause (what follows it, a closed channel, missing confirms, are its
 * consequences).  The text never holds a credential of the sink's URL:
 * the adapter points secrets at them once it has parsed the URL.
 */
#define SINK_WHY_SECRETS 4
struct sink_why {
    char text[200];                          /* "" until a failure */
    const char *secrets[SINK_WHY_SECRETS];   /* hidden from text; NULL: none */
};

/* Forgets the last call's reason, at the start of a call. */
void sink_why_clear(struct sink_why *why);

/* Keeps the formatted reason, scrubbed (sink_scrub_all), unless the call
 * already has one.  The caller holds whatever lock guards why when another
 * thread (a client library's callback) may note a reason too. */
void sink_why_note(struct sink_why *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether s is a URL scheme followed by "://" (RFC 3986 scheme syntax);
 * when it is, *scheme_len is the length of the scheme. */
int sink_url_scheme(const char *s, size_t *scheme_len);

/*
 * Query parameters of a sink URL ("?exchange=orders&mode=binary"), taken
 * literally (no percent-decoding: none of the adapters' values needs it).
 */

/* Refuses a parameter not in allowed (NULL-terminated), or one without a
 * value, naming it: "EVENT_SINK: unknown parameter "x" (amqp takes ...)". */
int sink_query_check(const char *url, const char *adapter, const char *const *allowed,
                     char *err, size_t errlen);

/* The value of key, newly allocated, or NULL when absent (or out of
 * memory: *nomem then says so). */
char *sink_query_get(const char *url, const char *key, int *nomem);

/* The URL without its query and fragment, newly allocated (NULL: no memory). */
char *sink_url_base(const char *url);

/* Whether url (any scheme) parses as a URL with a host, and a numeric port
 * if any: the check every broker adapter makes before its library's own. */
int sink_url_has_host(const char *url);

/* "mode": structured (the default) or binary.  Returns 0 and sets *binary,
 * or -1 with one line in err. */
int sink_query_mode(const char *url, int *binary, char *err, size_t errlen);

#endif
