/*
 * config.c - the publisher's table of settings (common/settings.h reads
 * it) and the checks between settings that each look fine alone.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sinks.h"

static int config_numbers(struct publisher_config *s, char *err, size_t errlen)
{
    int batch = 0, attempts = 0;
    long long hours = 0;
    const struct setting rows[] = {
        SETTING_LOG_LEVEL_ROW("LOG_LEVEL", &s->log_level),
        SETTING_INT_ROW("PUBLISHER_BATCH", 256, 1, 10000, &batch),
        SETTING_INT_ROW("PUBLISHER_MAX_ATTEMPTS", 5, 1, 1000000, &attempts),
        SETTING_LLONG_ROW("PUBLISHER_RETENTION_HOURS", 168, 0, 24LL * 365 * 100, &hours),
        SETTING_LLONG_ROW("PUBLISHER_BACKOFF_BASE_MS", 100, 1, 3600000, &s->backoff_base_ms),
        SETTING_LLONG_ROW("PUBLISHER_BACKOFF_CAP_MS", 30000, 1, 86400000, &s->backoff_cap_ms),
        SETTING_LLONG_ROW("PUBLISHER_LEASE_MS", 10000, 2000, 3600000, &s->lease_ms),
        SETTING_LLONG_ROW("PUBLISHER_POLL_MS", 1000, 10, 60000, &s->poll_ms),
        SETTING_LLONG_ROW("PUBLISHER_HTTP_TIMEOUT_MS", 5000, 100, 600000, &s->http_timeout_ms),
        SETTING_LLONG_ROW("PUBLISHER_CONNECT_TIMEOUT_MS", 2000, 100, 600000,
                          &s->connect_timeout_ms),
    };
    if (settings_read(rows, SETTING_COUNT(rows), err, errlen) != 0)
        return -1;
    s->batch = batch;
    s->max_attempts = attempts;
    s->retention_ms = hours * 3600LL * 1000LL;
    return 0;
}

/* Relations between settings that each look fine alone. */
static int config_check(const struct publisher_config *s, char *err, size_t errlen)
{
    if (s->backoff_cap_ms < s->backoff_base_ms) {
        snprintf(err, errlen, "PUBLISHER_BACKOFF_CAP_MS must not be below PUBLISHER_BACKOFF_BASE_MS");
        return -1;
    }
    if (s->connect_timeout_ms > s->http_timeout_ms) {
        snprintf(err, errlen, "PUBLISHER_CONNECT_TIMEOUT_MS must not exceed PUBLISHER_HTTP_TIMEOUT_MS");
        return -1;
    }
    /* A send must end well before the lease could expire under it, or a
     * standby could take over while this process is still talking to the
     * sink (see the lease notes in relay.c). */
    if (s->lease_ms < s->http_timeout_ms + 1000) {
        snprintf(err, errlen, "PUBLISHER_LEASE_MS must be at least PUBLISHER_HTTP_TIMEOUT_MS + 1000");
        return -1;
    }
    return 0;
}

static int config_sink(struct publisher_config *s, char *err, size_t errlen)
{
    const struct setting row = SETTING_TEXT_ROW("EVENT_SINK", "stdout", &s->event_sink);
    if (settings_read(&row, 1, err, errlen) != 0)
        return -1;
    /* The value is never repeated: it may carry a password. */
    return sinks_check(s->event_sink, err, errlen);
}

int publisher_config_load(struct publisher_config *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (config_numbers(s, err, errlen) != 0 || config_check(s, err, errlen) != 0 ||
        settings_database(NULL, &s->database_path, &s->synchronous_full, err, errlen) != 0 ||
        config_sink(s, err, errlen) != 0) {
        publisher_config_free(s);
        return -1;
    }
    return 0;
}

void publisher_config_free(struct publisher_config *s)
{
    free(s->database_path);
    free(s->event_sink);
    s->database_path = NULL;
    s->event_sink = NULL;
}
