/*
 * config.h - the publisher's configuration, from the environment.
 *
 * The shared variables (RUNTIME_DIR, DATABASE_PATH, DB_SYNCHRONOUS,
 * EVENT_SINK, LOG_LEVEL) mean what the contract's "Running it" table says;
 * the PUBLISHER_* ones are the publisher's own and are listed, with their
 * defaults and reasons, at the top of main.c.  The rules are
 * common/settings.h's: a safe default for each, empty counts as unset, a
 * bad value is refused with one line naming the variable.
 */
#ifndef ORDERS_PUBLISHER_CONFIG_H
#define ORDERS_PUBLISHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "settings.h"

struct publisher_config {
    char *database_path;        /* DATABASE_PATH, default $RUNTIME_DIR/orders.db */
    bool synchronous_full;      /* DB_SYNCHRONOUS: full (default) or normal */
    char *event_sink;           /* EVENT_SINK, default stdout */
    enum log_level log_level;   /* LOG_LEVEL, default info */
    int batch;                  /* PUBLISHER_BATCH */
    int max_attempts;           /* PUBLISHER_MAX_ATTEMPTS */
    long long retention_ms;     /* PUBLISHER_RETENTION_HOURS; 0: keep forever */
    long long backoff_base_ms;  /* PUBLISHER_BACKOFF_BASE_MS */
    long long backoff_cap_ms;   /* PUBLISHER_BACKOFF_CAP_MS */
    long long lease_ms;         /* PUBLISHER_LEASE_MS */
    long long poll_ms;          /* PUBLISHER_POLL_MS */
    long long http_timeout_ms;  /* PUBLISHER_HTTP_TIMEOUT_MS */
    long long connect_timeout_ms; /* PUBLISHER_CONNECT_TIMEOUT_MS */
};

/* Returns 0, or -1 with a message in err (nothing is then left allocated). */
int publisher_config_load(struct publisher_config *s, char *err, size_t errlen);
void publisher_config_free(struct publisher_config *s);

#endif
