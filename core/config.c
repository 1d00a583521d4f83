#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Unset and empty are the same: an operator blanking a variable in a unit
 * file means "the default", not "the empty string". */
static const char *config_env(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static int config_dup(char **dst, const char *value)
{
    if (value == NULL) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(value);
    return *dst ? 0 : -1;
}

static int config_int(const char *name, int fallback, int min, int max, int *out,
                      char *err, size_t errlen)
{
    const char *v = config_env(name);
    *out = fallback;
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max) {
        snprintf(err, errlen, "%s must be an integer from %d to %d, not '%s'", name,
                 min, max, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* The dev secret written by scripts/serve: its whole content, less a
 * trailing newline an editor may have added. */
static int config_read_secret_file(const char *path, struct config *cfg,
                                   char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen,
                 "JWT_SECRET_KEY is not set and %s cannot be read (%s)", path,
                 strerror(errno));
        return -1;
    }
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: unreadable or longer than 1 KiB", path);
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    cfg->jwt_secret = malloc(n + 1);
    if (cfg->jwt_secret == NULL)
        return -1;
    memcpy(cfg->jwt_secret, buf, n);
    cfg->jwt_secret[n] = '\0';
    cfg->jwt_secret_len = n;
    return 0;
}

static int config_load_secret(struct config *cfg, char *err, size_t errlen)
{
    const char *key = config_env("JWT_SECRET_KEY");
    if (key != NULL) {
        cfg->jwt_secret = (unsigned char *)strdup(key);
        if (cfg->jwt_secret == NULL)
            return -1;
        cfg->jwt_secret_len = strlen(key);
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/jwt-secret", cfg->runtime_dir);
        if (config_read_secret_file(path, cfg, err, errlen) != 0)
            return -1;
    }
    /* RFC 7518, 3.2: an HMAC key must be at least as long as the hash.
     * A short secret is a guessable one; refuse rather than serve. */
    if (cfg->jwt_secret_len < CONFIG_MIN_SECRET_LEN) {
        snprintf(err, errlen,
                 "JWT_SECRET_KEY is %zu bytes; at least %d are required "
                 "(generate one with: head -c 48 /dev/urandom | base64)",
                 cfg->jwt_secret_len, CONFIG_MIN_SECRET_LEN);
        return -1;
    }
    return 0;
}

static int config_load_database(struct config *cfg, char *err, size_t errlen)
{
    const char *path = config_env("DATABASE_PATH");
    if (path != NULL) {
        cfg->database_path = strdup(path);
    } else {
        size_t n = strlen(cfg->runtime_dir) + sizeof "/orders.db";
        cfg->database_path = malloc(n);
        if (cfg->database_path != NULL)
            snprintf(cfg->database_path, n, "%s/orders.db", cfg->runtime_dir);
    }
    if (cfg->database_path == NULL)
        return -1;
    if (config_int("DB_BUSY_TIMEOUT_MS", 5000, 0, 600000, &cfg->busy_timeout_ms, err,
                   errlen) != 0 ||
        config_int("REQUEST_TIMEOUT", 30, 1, 3600, &cfg->request_timeout_s, err,
                   errlen) != 0)
        return -1;
    const char *sync = config_env("DB_SYNCHRONOUS");
    if (sync == NULL || strcasecmp(sync, "full") == 0) {
        cfg->synchronous_full = true;
    } else if (strcasecmp(sync, "normal") == 0) {
        cfg->synchronous_full = false;
    } else {
        snprintf(err, errlen, "DB_SYNCHRONOUS must be full or normal, not '%s'",
                 sync);
        return -1;
    }
    return 0;
}

static int config_load_jwt(struct config *cfg, char *err, size_t errlen)
{
    const char *alg = config_env("JWT_ALGORITHM");
    if (alg == NULL)
        alg = "HS256";
    if (strcmp(alg, "HS256") != 0 && strcmp(alg, "HS384") != 0 &&
        strcmp(alg, "HS512") != 0) {
        snprintf(err, errlen, "JWT_ALGORITHM must be HS256, HS384 or HS512, not '%s'",
                 alg);
        return -1;
    }
    if (config_dup(&cfg->jwt_algorithm, alg) != 0 ||
        config_dup(&cfg->jwt_issuer, config_env("JWT_ISSUER")) != 0 ||
        config_dup(&cfg->jwt_audience, config_env("JWT_AUDIENCE")) != 0)
        return -1;
    return 0;
}

static int config_load_rest(struct config *cfg, char *err, size_t errlen)
{
    const char *sink = config_env("EVENT_SINK");
    const char *source = config_env("EVENT_SOURCE");
    const char *otlp = config_env("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (otlp == NULL)
        otlp = config_env("JAEGER_ENDPOINT");
    if (config_dup(&cfg->event_sink, sink ? sink : "stdout") != 0 ||
        config_dup(&cfg->event_source, source ? source : "/orders") != 0 ||
        config_dup(&cfg->otlp_endpoint, otlp) != 0)
        return -1;
    const char *level = config_env("LOG_LEVEL");
    cfg->log_level = LOG_INFO;
    if (level != NULL && !log_level_parse(level, &cfg->log_level)) {
        snprintf(err, errlen, "LOG_LEVEL must be debug, info, warn or error, not '%s'",
                 level);
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, bool need_secret, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(err, errlen, "out of memory");
    const char *runtime = config_env("RUNTIME_DIR");
    if (config_dup(&cfg->runtime_dir, runtime ? runtime : "./var") != 0 ||
        config_load_database(cfg, err, errlen) != 0 ||
        config_load_jwt(cfg, err, errlen) != 0 ||
        config_load_rest(cfg, err, errlen) != 0 ||
        (need_secret && config_load_secret(cfg, err, errlen) != 0)) {
        config_free(cfg);
        return -1;
    }
    err[0] = '\0';
    return 0;
}

void config_free(struct config *cfg)
{
    free(cfg->runtime_dir);
    free(cfg->database_path);
    if (cfg->jwt_secret != NULL) /* do not leave the key in freed memory */
        explicit_bzero(cfg->jwt_secret, cfg->jwt_secret_len);
    free(cfg->jwt_secret);
    free(cfg->jwt_algorithm);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->event_sink);
    free(cfg->event_source);
    free(cfg->otlp_endpoint);
    memset(cfg, 0, sizeof *cfg);
}
