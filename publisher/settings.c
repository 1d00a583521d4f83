/*
 * settings.c - reads and checks the environment once, at start.
 *
 * Limits are deliberately generous but finite: a typo such as
 * PUBLISHER_BATCH=1000000 should be refused at start, not discovered as an
 * out-of-memory at three in the morning.
 */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sinks.h"

struct settings_int {
    const char *name;
    long long def, min, max;
    long long *out;
};

static const char *settings_env(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static int settings_parse_int(const struct settings_int *spec, char *err, size_t errlen)
{
    const char *v = settings_env(spec->name);
    char *end = NULL;
    long long n;

    if (v == NULL) {
        *spec->out = spec->def;
        return 0;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < spec->min || n > spec->max) {
        snprintf(err, errlen, "%s must be an integer from %lld to %lld, got \"%s\"",
                 spec->name, spec->min, spec->max, v);
        return -1;
    }
    *spec->out = n;
    return 0;
}

static int settings_numbers(struct settings *s, char *err, size_t errlen)
{
    long long batch = 0, attempts = 0, hours = 0;
    const struct settings_int specs[] = {
        {"PUBLISHER_BATCH", 256, 1, 10000, &batch},
        {"PUBLISHER_MAX_ATTEMPTS", 5, 1, 1000000, &attempts},
        {"PUBLISHER_RETENTION_HOURS", 168, 0, 24LL * 365 * 100, &hours},
        {"PUBLISHER_BACKOFF_BASE_MS", 100, 1, 3600000, &s->backoff_base_ms},
        {"PUBLISHER_BACKOFF_CAP_MS", 30000, 1, 86400000, &s->backoff_cap_ms},
        {"PUBLISHER_LEASE_MS", 10000, 2000, 3600000, &s->lease_ms},
        {"PUBLISHER_POLL_MS", 1000, 10, 60000, &s->poll_ms},
        {"PUBLISHER_HTTP_TIMEOUT_MS", 5000, 100, 600000, &s->http_timeout_ms},
        {"PUBLISHER_CONNECT_TIMEOUT_MS", 2000, 100, 600000, &s->connect_timeout_ms},
    };

    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (settings_parse_int(&specs[i], err, errlen) != 0)
            return -1;
    }
    s->batch = (int)batch;
    s->max_attempts = (int)attempts;
    s->retention_ms = hours * 3600LL * 1000LL;
    return 0;
}

/* Relations between settings that each look fine alone. */
static int settings_check(const struct settings *s, char *err, size_t errlen)
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

static int settings_sink(struct settings *s, char *err, size_t errlen)
{
    const char *v = settings_env("EVENT_SINK");

    if (v == NULL)
        v = "stdout";
    /* The value is never repeated: it may carry a password. */
    if (sinks_check(v, err, errlen) != 0)
        return -1;
    s->event_sink = strdup(v);
    if (s->event_sink == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int settings_database(struct settings *s, char *err, size_t errlen)
{
    const char *path = settings_env("DATABASE_PATH");
    const char *dir = settings_env("RUNTIME_DIR");
    const char *sync = settings_env("DB_SYNCHRONOUS");

    if (sync == NULL || strcasecmp(sync, "full") == 0) {
        s->synchronous_full = true;
    } else if (strcasecmp(sync, "normal") == 0) {
        s->synchronous_full = false;
    } else {
        snprintf(err, errlen, "DB_SYNCHRONOUS must be full or normal, got \"%s\"", sync);
        return -1;
    }
    if (path != NULL) {
        s->database_path = strdup(path);
    } else if (asprintf(&s->database_path, "%s/orders.db", dir != NULL ? dir : "./var") < 0) {
        s->database_path = NULL;
    }
    if (s->database_path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int settings_log_level(struct settings *s, char *err, size_t errlen)
{
    const char *v = settings_env("LOG_LEVEL");

    s->log_level = PLOG_INFO;
    if (v != NULL && !plog_level_parse(v, &s->log_level)) {
        snprintf(err, errlen, "LOG_LEVEL must be debug, info, warn or error, got \"%s\"", v);
        return -1;
    }
    return 0;
}

int settings_load(struct settings *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (settings_log_level(s, err, errlen) != 0 || settings_numbers(s, err, errlen) != 0 ||
        settings_check(s, err, errlen) != 0 || settings_database(s, err, errlen) != 0 ||
        settings_sink(s, err, errlen) != 0) {
        settings_free(s);
        return -1;
    }
    return 0;
}

void settings_free(struct settings *s)
{
    free(s->database_path);
    free(s->event_sink);
    s->database_path = NULL;
    s->event_sink = NULL;
}
