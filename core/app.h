/*
 * app.h - the service: a request in, a response out.
 *
 * The adapter (fcgi/) builds one app per worker process at start and calls
 * app_handle() for each request.  Everything between, routing, auth, the
 * handlers, storage, problem documents and the access log, lives in core/
 * and never sees FastCGI, so it is tested without nginx.
 */
#ifndef ORDERS_APP_H
#define ORDERS_APP_H

#include "auth.h"
#include "config.h"
#include "cursor.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "span.h"
#include "store.h"

/* The pool the app runs in, as its host reports it (fcgi/scoreboard.c):
 * GET /status and the pool's lines of GET /metrics.  Each returns a
 * malloc'ed text, or NULL.  Unset (NULL functions): no pool, as in the
 * unit tests; /status then answers 404. */
struct app_pool_report {
    void *ctx;
    char *(*status_json)(void *ctx, bool full, size_t *len);
    char *(*metrics_text)(void *ctx, size_t *len);
};

struct app {
    const struct config *cfg;
    struct store *store;
    struct auth_verifier *auth;
    struct logger log;
    char *service_info; /* GET / body, rendered once */
    size_t service_info_len;
    struct metrics *metrics; /* the pool's shared counters, or our own */
    struct metrics *own_metrics;
    struct span_sink spans; /* emit == NULL: tracing off, no cost */
    struct app_pool_report pool;
    struct cursor_key cursor_key; /* signs the cursors of GET /orders */
};

/* Builds the app around an open, migrated store (not owned).  keys: where
 * the identity provider's key set comes from when one is configured (not
 * owned; NULL otherwise).  Returns 0, or -1 with a message in err. */
int app_init(struct app *app, const struct config *cfg, struct store *store,
             const struct auth_key_source *keys, char *err, size_t errlen);
void app_free(struct app *app);

/* Counts into m (the pool's shared memory) instead of the app's private
 * counters, so that GET /metrics reports the whole pool. */
void app_use_metrics(struct app *app, struct metrics *m);

/* Fills res (initialised by the caller with response_init) for req and
 * writes the access log line. */
void app_handle(struct app *app, const struct request *req,
                struct response *res);

#endif
