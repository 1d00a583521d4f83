/*
 * config.h - configuration from the environment (the contract's "Running it"
 * table).  Every variable has a safe default; bad values are refused at start
 * with a message naming the variable, never guessed at.
 */
#ifndef ORDERS_CONFIG_H
#define ORDERS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define CONFIG_MIN_SECRET_LEN 32

struct config {
    char *runtime_dir;      /* RUNTIME_DIR, default ./var */
    char *database_path;    /* DATABASE_PATH, default $RUNTIME_DIR/orders.db */
    bool synchronous_full;  /* DB_SYNCHRONOUS: full (default) or normal */
    int busy_timeout_ms;    /* DB_BUSY_TIMEOUT_MS, default 5000 */
    int request_timeout_s;  /* REQUEST_TIMEOUT, default 30: the watchdog */
    unsigned char *jwt_secret; /* JWT_SECRET_KEY, else $RUNTIME_DIR/jwt-secret */
    size_t jwt_secret_len;
    char *jwt_algorithm;    /* JWT_ALGORITHM, default HS256 */
    char *jwt_issuer;       /* JWT_ISSUER, NULL when unset */
    char *jwt_audience;     /* JWT_AUDIENCE, NULL when unset */
    char *event_sink;       /* EVENT_SINK, default stdout */
    char *event_source;     /* EVENT_SOURCE, default /orders */
    enum log_level log_level; /* LOG_LEVEL, default info */
    char *otlp_endpoint;    /* OTEL_EXPORTER_OTLP_ENDPOINT or JAEGER_ENDPOINT */
};

/* Reads the environment.  need_secret: whether a JWT secret must be found
 * (the worker and token tool need it; the publisher does not).  Returns 0, or
 * -1 with a message in err (the config is then freed). */
int config_load(struct config *cfg, bool need_secret, char *err, size_t errlen);
void config_free(struct config *cfg);

#endif
