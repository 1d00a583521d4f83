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

#include "log.h"
#include "secret.h"

#define CONFIG_MIN_SECRET_LEN SECRET_MIN_LEN

/* A write still waiting for the database lock must give up (503) at least
 * this long before nginx gives up on the request (504): a create that
 * commits after the client was told 504 is retried and stored twice. */
#define CONFIG_TIMEOUT_MARGIN_MS 1000

struct config {
    char *runtime_dir;      /* RUNTIME_DIR, default ./var */
    char *database_path;    /* DATABASE_PATH, default $RUNTIME_DIR/orders.db */
    bool synchronous_full;  /* DB_SYNCHRONOUS: full (default) or normal */
    int busy_timeout_ms;    /* DB_BUSY_TIMEOUT_MS, default 5000 */
    int request_timeout_s;  /* REQUEST_TIMEOUT, default 30: nginx's limit, the watchdog's */
    unsigned char *jwt_secret; /* common/secret.h lists where it comes from */
    size_t jwt_secret_len;
    char *jwt_algorithm;    /* JWT_ALGORITHM, default HS256 */
    char *jwt_issuer;       /* JWT_ISSUER, NULL when unset */
    char *jwt_audience;     /* JWT_AUDIENCE, NULL when unset */
    char *event_sink;       /* EVENT_SINK, default stdout */
    char *event_source;     /* EVENT_SOURCE, default /orders */
    enum log_level log_level; /* LOG_LEVEL, default info */
    char *otlp_endpoint;    /* OTEL_EXPORTER_OTLP_ENDPOINT or JAEGER_ENDPOINT */
};

/* Whether config_load() loads the JWT secret (false and true convert to the
 * first two): --migrate does not need it, a worker does, and the pool
 * master generates it on the first run when no source has one. */
enum config_secret { CONFIG_NO_SECRET, CONFIG_SECRET, CONFIG_SECRET_OR_GENERATE };

/* Reads the environment.  Returns 0, or -1 with one line in err (the config
 * is then freed). */
int config_load(struct config *cfg, enum config_secret secret, char *err, size_t errlen);
void config_free(struct config *cfg);

#endif
