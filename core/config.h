/*
 * config.h - the worker's configuration from the environment (the
 * contract's "Running it" table), read by common/settings.h's rules: every
 * variable has a safe default; a bad value is refused at start with one
 * line naming the variable, never guessed at.  The JWT secret comes from
 * common/secret.h.
 */
#ifndef ORDERS_CONFIG_H
#define ORDERS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "log.h"
#include "secret.h"

#define CONFIG_MIN_SECRET_LEN SECRET_MIN_LEN

/* A write still waiting for the database lock must give up (503) at least
 * this long before nginx gives up on the request (504): a create that
 * commits after the client was told 504 is retried and stored twice. */
#define CONFIG_TIMEOUT_MARGIN_MS 1000

/* How long a request may wait for the key set to be fetched again when
 * its token names a key the worker does not have (an identity provider
 * rotating its keys); the fetch itself gives up after 5 s
 * (fcgi/jwks_fetch.h). */
#define CONFIG_JWKS_WAIT_MS 2000

struct config {
    char *runtime_dir;      /* RUNTIME_DIR, default ./var */
    char *database_path;    /* DATABASE_PATH, default $RUNTIME_DIR/orders.db */
    bool synchronous_full;  /* DB_SYNCHRONOUS: full (default) or normal */
    int busy_timeout_ms;    /* DB_BUSY_TIMEOUT_MS, default 5000 */
    int request_timeout_s;  /* REQUEST_TIMEOUT, default 30: nginx's limit, the watchdog's */
    int slow_request_ms;    /* SLOW_REQUEST_MS, default 1000: longer requests go
                               to the slow log; 0: no slow log */
    unsigned char *jwt_secret; /* common/secret.h lists where it comes from */
    size_t jwt_secret_len;
    char *jwt_algorithm;    /* JWT_ALGORITHM, the older name: one algorithm */
    char *jwt_algorithms;   /* JWT_ALGORITHMS, the allow-list; NULL: the
                               verifier's default (core/auth.h) */
    char *jwt_issuer;       /* JWT_ISSUER, NULL when unset; required with a key set */
    char *jwt_audience;     /* JWT_AUDIENCE, NULL when unset */
    char *jwks_url;         /* JWT_JWKS_URL: the identity provider's key set */
    char *jwks_file;        /* JWT_JWKS_FILE: or a key set in a file */
    int jwks_refresh_s;     /* JWT_JWKS_REFRESH_S, default 300 */
    int jwks_min_refresh_s; /* JWT_JWKS_MIN_REFRESH_S, default 30 */
    char *event_sink;       /* EVENT_SINK, default stdout */
    char *event_source;     /* EVENT_SOURCE, default /orders */
    enum log_level log_level; /* LOG_LEVEL, default info */
    char *otlp_endpoint;    /* OTEL_EXPORTER_OTLP_ENDPOINT or JAEGER_ENDPOINT */
    long long idempotency_ttl_ms; /* IDEMPOTENCY_TTL_HOURS (a decimal), default 24 */
};

/* Whether config_load() loads the JWT secret (false and true convert to the
 * first two): --migrate does not need it, a worker does, and the pool
 * master generates it on the first run when no source has one. */
enum config_secret { CONFIG_NO_SECRET, CONFIG_SECRET, CONFIG_SECRET_OR_GENERATE };

/* Reads the environment.  Returns 0, or -1 with one line in err (the config
 * is then freed). */
int config_load(struct config *cfg, enum config_secret secret, char *err, size_t errlen);
void config_free(struct config *cfg);

/* The verifier's settings from cfg; keys is the key source when a key set
 * is configured (NULL otherwise). */
struct auth_settings config_auth_settings(const struct config *cfg,
                                          const struct auth_key_source *keys);
/* Whether a key set (JWT_JWKS_URL or JWT_JWKS_FILE) is configured. */
bool config_has_jwks(const struct config *cfg);

#endif
