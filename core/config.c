/*
 * config.c - the worker's table of settings (common/settings.h reads it)
 * and the checks between settings that each look fine alone.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

/* IDEMPOTENCY_TTL_HOURS: a decimal number of hours, so that a test can
 * keep keys for seconds (0.001) and an operator for a week (168); at most a
 * year.  The stored expiry is in milliseconds. */
static int config_parse_ttl(const char *text, long long *ms, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    double hours = strtod(text, &end);
    /* Digits and one point only: no sign, exponent, hex, inf or nan. */
    if (errno != 0 || end == text || *end != '\0' || !(hours > 0) || hours > 8784 ||
        text[0] == '.' || strspn(text, "0123456789.") != strlen(text)) {
        snprintf(err, errlen,
                 "IDEMPOTENCY_TTL_HOURS must be a number of hours above 0 and at most 8784, "
                 "not '%s'", text);
        return -1;
    }
    *ms = (long long)(hours * 3600000.0);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

static int config_read_table(struct config *cfg, char *err, size_t errlen)
{
    char *otlp = NULL, *ttl = NULL;
    const struct setting rows[] = {
        SETTING_TEXT_ROW("IDEMPOTENCY_TTL_HOURS", "24", &ttl),
        SETTING_INT_ROW("DB_BUSY_TIMEOUT_MS", 5000, 0, 600000, &cfg->busy_timeout_ms),
        SETTING_INT_ROW("REQUEST_TIMEOUT", 30, 1, 3600, &cfg->request_timeout_s),
        SETTING_INT_ROW("SLOW_REQUEST_MS", 1000, 0, 3600000, &cfg->slow_request_ms),
        SETTING_TEXT_ROW("JWT_ALGORITHM", NULL, &cfg->jwt_algorithm),
        SETTING_TEXT_ROW("JWT_ALGORITHMS", NULL, &cfg->jwt_algorithms),
        SETTING_TEXT_ROW("JWT_ISSUER", NULL, &cfg->jwt_issuer),
        SETTING_TEXT_ROW("JWT_AUDIENCE", NULL, &cfg->jwt_audience),
        SETTING_TEXT_ROW("JWT_JWKS_URL", NULL, &cfg->jwks_url),
        SETTING_TEXT_ROW("JWT_JWKS_FILE", NULL, &cfg->jwks_file),
        SETTING_INT_ROW("JWT_JWKS_REFRESH_S", 300, 1, 86400, &cfg->jwks_refresh_s),
        SETTING_INT_ROW("JWT_JWKS_MIN_REFRESH_S", 30, 0, 3600, &cfg->jwks_min_refresh_s),
        SETTING_TEXT_ROW("EVENT_SINK", "stdout", &cfg->event_sink),
        SETTING_TEXT_ROW("EVENT_SOURCE", "/orders", &cfg->event_source),
        SETTING_LOG_LEVEL_ROW("LOG_LEVEL", &cfg->log_level),
        SETTING_TEXT_ROW("OTEL_EXPORTER_OTLP_ENDPOINT", NULL, &cfg->otlp_endpoint),
        SETTING_TEXT_ROW("JAEGER_ENDPOINT", NULL, &otlp),
    };
    if (settings_read(rows, SETTING_COUNT(rows), err, errlen) != 0) {
        free(otlp);
        free(ttl);
        return -1;
    }
    int rc = config_parse_ttl(ttl, &cfg->idempotency_ttl_ms, err, errlen);
    free(ttl);
    if (rc != 0) {
        free(otlp);
        return -1;
    }
    /* JAEGER_ENDPOINT is the older name, used only without the new one. */
    if (cfg->otlp_endpoint == NULL)
        cfg->otlp_endpoint = otlp;
    else
        free(otlp);
    return 0;
}

/* nginx gives up on a request after REQUEST_TIMEOUT (the site template
 * takes it from the same setting).  A write may wait DB_BUSY_TIMEOUT_MS
 * for the lock and then commit; were that wait as long as nginx's, the
 * client would see 504 for an order that was stored, retry, and store a
 * second one. */
static int config_check_timeouts(const struct config *cfg, char *err, size_t errlen)
{
    long long limit = (long long)cfg->request_timeout_s * 1000 - CONFIG_TIMEOUT_MARGIN_MS;
    if (cfg->busy_timeout_ms > limit) {
        snprintf(err, errlen,
                 "DB_BUSY_TIMEOUT_MS (%d) must be at most REQUEST_TIMEOUT x 1000 - %d "
                 "(%lld): a write still waiting for the database when nginx answers "
                 "504 could commit after the client was told it failed",
                 cfg->busy_timeout_ms, CONFIG_TIMEOUT_MARGIN_MS, limit < 0 ? 0 : limit);
        return -1;
    }
    return 0;
}

/* The key set's source, checked here; the algorithms and the issuer are
 * checked by building the verifier (config_check_auth). */
static int config_check_jwks(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->jwks_url != NULL && cfg->jwks_file != NULL) {
        snprintf(err, errlen, "JWT_JWKS_URL and JWT_JWKS_FILE are both set; choose one");
        return -1;
    }
    if (cfg->jwks_url != NULL && strncmp(cfg->jwks_url, "https://", 8) != 0 &&
        strncmp(cfg->jwks_url, "http://", 7) != 0) {
        snprintf(err, errlen, "JWT_JWKS_URL must be an https:// or http:// URL");
        return -1;
    }
    if (cfg->jwks_min_refresh_s > cfg->jwks_refresh_s) {
        snprintf(err, errlen, "JWT_JWKS_MIN_REFRESH_S (%d) must not exceed "
                 "JWT_JWKS_REFRESH_S (%d)", cfg->jwks_min_refresh_s, cfg->jwks_refresh_s);
        return -1;
    }
    return 0;
}

bool config_has_jwks(const struct config *cfg)
{
    return cfg->jwks_url != NULL || cfg->jwks_file != NULL;
}

struct auth_settings config_auth_settings(const struct config *cfg,
                                          const struct auth_key_source *keys)
{
    return (struct auth_settings){
        .secret = cfg->jwt_secret,
        .secret_len = cfg->jwt_secret_len,
        .algorithms = cfg->jwt_algorithms,
        .algorithm = cfg->jwt_algorithm,
        .keys = keys,
        .key_wait_ms = CONFIG_JWKS_WAIT_MS,
        .issuer = cfg->jwt_issuer,
        .audience = cfg->jwt_audience,
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
}

/* The verifier is built once here and thrown away, so that every setting
 * it reads is refused at start with its own message (the algorithms, the
 * issuer a key set needs, the secret's length).  Without the secret
 * (--migrate) a stand-in of the least length lets the rest be checked. */
static int config_check_auth(const struct config *cfg, char *err, size_t errlen)
{
    static const struct auth_key_source no_keys;
    static const unsigned char stand_in[SECRET_MIN_LEN];
    struct auth_settings s = config_auth_settings(cfg, config_has_jwks(cfg) ? &no_keys : NULL);
    if (s.secret == NULL) {
        s.secret = stand_in;
        s.secret_len = sizeof stand_in;
    }
    char why[256];
    struct auth_verifier *v = auth_verifier_new(&s, why, sizeof why);
    if (v == NULL) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    auth_verifier_free(v);
    return 0;
}

static int config_load_secret(struct config *cfg, enum config_secret mode, char *err,
                              size_t errlen)
{
    struct secret s;
    if (secret_load(cfg->runtime_dir,
                    mode == CONFIG_SECRET_OR_GENERATE ? SECRET_READ_OR_GENERATE : SECRET_READ,
                    &s, err, errlen) != 0)
        return -1;
    cfg->jwt_secret = s.bytes;
    cfg->jwt_secret_len = s.len;
    return 0;
}

int config_load(struct config *cfg, enum config_secret secret, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (settings_database(&cfg->runtime_dir, &cfg->database_path, &cfg->synchronous_full,
                          err, errlen) != 0 ||
        config_read_table(cfg, err, errlen) != 0 ||
        config_check_timeouts(cfg, err, errlen) != 0 ||
        config_check_jwks(cfg, err, errlen) != 0 ||
        (secret != CONFIG_NO_SECRET && config_load_secret(cfg, secret, err, errlen) != 0) ||
        config_check_auth(cfg, err, errlen) != 0) {
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
    struct secret s = {cfg->jwt_secret, cfg->jwt_secret_len};
    secret_free(&s); /* wiped: the key does not linger in freed memory */
    free(cfg->jwt_algorithm);
    free(cfg->jwt_algorithms);
    free(cfg->jwks_url);
    free(cfg->jwks_file);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->event_sink);
    free(cfg->event_source);
    free(cfg->otlp_endpoint);
    memset(cfg, 0, sizeof *cfg);
}
