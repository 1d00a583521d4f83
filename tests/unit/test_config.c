/*
 * test_config.c - config_load: the contract's defaults, each variable's
 * refusal of bad values (with the variable named), empty meaning unset,
 * and the JWT secret from the environment or $RUNTIME_DIR/jwt-secret.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testdir.h"

static const char *const config_vars[] = {
    "RUNTIME_DIR", "DATABASE_PATH", "DB_SYNCHRONOUS", "JWT_SECRET_KEY",
    "JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE", "EVENT_SINK",
    "JWT_ALGORITHMS", "JWT_JWKS_URL", "JWT_JWKS_FILE", "JWT_JWKS_REFRESH_S",
    "JWT_JWKS_MIN_REFRESH_S",
    "EVENT_SOURCE", "LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "JAEGER_ENDPOINT", "DB_BUSY_TIMEOUT_MS", "REQUEST_TIMEOUT",
    "JWT_SECRET_FILE", "CREDENTIALS_DIRECTORY", "ORDERS_SECRET_FD",
    "IDEMPOTENCY_TTL_HOURS", "DATABASE_URL",
};

static const char SECRET32[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */

static char tmpdir[4096];

static void base_setup(void)
{
    testdir_create("config");
}

static void base_teardown(void)
{
    testdir_remove();
}

static void setup(void)
{
    for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++)
        unsetenv(config_vars[i]);
    snprintf(tmpdir, sizeof tmpdir, "%s/test-XXXXXX", testdir_path());
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    testdir_remove_tree(tmpdir);
    for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++)
        unsetenv(config_vars[i]);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void assert_zeroed(const struct config *cfg)
{
    ck_assert_ptr_null(cfg->runtime_dir);
    ck_assert_ptr_null(cfg->database_path);
    ck_assert_ptr_null(cfg->jwt_secret);
    ck_assert_ptr_null(cfg->jwt_algorithm);
    ck_assert_ptr_null(cfg->event_sink);
    ck_assert_ptr_null(cfg->event_source);
}

/* Loads and expects failure; returns the message for the caller to check. */
static void expect_failure(bool need_secret, const char *must_mention)
{
    struct config cfg;
    char err[512] = "";
    ck_assert_int_eq(config_load(&cfg, need_secret, err, sizeof err), -1);
    ck_assert_msg(strstr(err, must_mention) != NULL,
                  "error '%s' does not mention '%s'", err, must_mention);
    assert_zeroed(&cfg);
}

START_TEST(test_defaults_without_secret)
{
    struct config cfg;
    char err[256] = "junk";
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(cfg.runtime_dir, "./var");
    ck_assert_str_eq(cfg.database_path, "./var/orders.db");
    ck_assert(cfg.synchronous_full);
    ck_assert_ptr_null(cfg.jwt_algorithm); /* the verifier's default: HS256 */
    ck_assert_ptr_null(cfg.jwt_algorithms);
    ck_assert_ptr_null(cfg.jwks_url);
    ck_assert_ptr_null(cfg.jwks_file);
    ck_assert_int_eq(cfg.jwks_refresh_s, 300);
    ck_assert_int_eq(cfg.jwks_min_refresh_s, 30);
    ck_assert_ptr_null(cfg.jwt_issuer);
    ck_assert_ptr_null(cfg.jwt_audience);
    ck_assert_ptr_null(cfg.jwt_secret);
    ck_assert_uint_eq(cfg.jwt_secret_len, 0);
    ck_assert_str_eq(cfg.event_sink, "stdout");
    ck_assert_str_eq(cfg.event_source, "/orders");
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
    ck_assert_ptr_null(cfg.otlp_endpoint);
    ck_assert_int_eq(cfg.busy_timeout_ms, 5000);
    ck_assert_int_eq(cfg.request_timeout_s, 30);
    ck_assert_int_eq(cfg.idempotency_ttl_ms, 24LL * 3600 * 1000);
    config_free(&cfg);
    assert_zeroed(&cfg);
    config_free(&cfg); /* a freed config can be freed again */
}
END_TEST

START_TEST(test_every_variable_read)
{
    setenv("RUNTIME_DIR", tmpdir, 1);
    setenv("DATABASE_PATH", "/data/o.db", 1);
    setenv("DB_SYNCHRONOUS", "normal", 1);
    setenv("JWT_SECRET_KEY", SECRET32, 1);
    setenv("JWT_ALGORITHM", "HS512", 1);
    setenv("JWT_ISSUER", "https://issuer.example", 1);
    setenv("JWT_AUDIENCE", "orders-api", 1);
    setenv("EVENT_SINK", "file:/tmp/events.jsonl", 1);
    setenv("EVENT_SOURCE", "/shop/orders", 1);
    setenv("LOG_LEVEL", "DEBUG", 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318", 1);
    setenv("JAEGER_ENDPOINT", "http://jaeger:14268", 1);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, true, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg.runtime_dir, tmpdir);
    ck_assert_str_eq(cfg.database_path, "/data/o.db");
    ck_assert(!cfg.synchronous_full);
    ck_assert_uint_eq(cfg.jwt_secret_len, 32);
    ck_assert(memcmp(cfg.jwt_secret, SECRET32, 32) == 0);
    ck_assert_str_eq(cfg.jwt_algorithm, "HS512");
    ck_assert_str_eq(cfg.jwt_issuer, "https://issuer.example");
    ck_assert_str_eq(cfg.jwt_audience, "orders-api");
    ck_assert_str_eq(cfg.event_sink, "file:/tmp/events.jsonl");
    ck_assert_str_eq(cfg.event_source, "/shop/orders");
    ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
    /* OTEL_EXPORTER_OTLP_ENDPOINT wins over the legacy JAEGER_ENDPOINT. */
    ck_assert_str_eq(cfg.otlp_endpoint, "http://otel:4318");
    config_free(&cfg);
}
END_TEST

START_TEST(test_database_path_follows_runtime_dir)
{
    setenv("RUNTIME_DIR", "/srv/orders", 1);
    struct config cfg;
    char err[256];
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_str_eq(cfg.database_path, "/srv/orders/orders.db");
    config_free(&cfg);
}
END_TEST

/* DATABASE_URL, when set, is the database (PostgreSQL); any other scheme is
 * refused by name, without repeating the value (it may hold a password). */
START_TEST(test_database_url)
{
    setenv("DATABASE_PATH", "/data/o.db", 1);
    setenv("DATABASE_URL", "postgresql://orders:s3cret@db/orders", 1);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg.database_path, "postgresql://orders:s3cret@db/orders");
    config_free(&cfg);
    setenv("DATABASE_URL", "mysql://orders:s3cret@db/orders", 1);
    ck_assert_int_ne(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "DATABASE_URL") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "s3cret") == NULL, "%s", err);
}
END_TEST

START_TEST(test_empty_means_default)
{
    setenv("RUNTIME_DIR", "", 1);
    setenv("DATABASE_PATH", "", 1);
    setenv("DB_SYNCHRONOUS", "", 1);
    setenv("JWT_ALGORITHM", "", 1);
    setenv("JWT_ISSUER", "", 1);
    setenv("EVENT_SINK", "", 1);
    setenv("LOG_LEVEL", "", 1);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg.runtime_dir, "./var");
    ck_assert_str_eq(cfg.database_path, "./var/orders.db");
    ck_assert(cfg.synchronous_full);
    ck_assert_ptr_null(cfg.jwt_algorithm);
    ck_assert_ptr_null(cfg.jwt_issuer);
    ck_assert_str_eq(cfg.event_sink, "stdout");
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
    config_free(&cfg);
}
END_TEST

START_TEST(test_jaeger_endpoint_fallback)
{
    setenv("JAEGER_ENDPOINT", "http://jaeger:4318", 1);
    struct config cfg;
    char err[256];
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_str_eq(cfg.otlp_endpoint, "http://jaeger:4318");
    config_free(&cfg);
}
END_TEST

START_TEST(test_synchronous_values)
{
    struct config cfg;
    char err[256];
    setenv("DB_SYNCHRONOUS", "FULL", 1);
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert(cfg.synchronous_full);
    config_free(&cfg);
    setenv("DB_SYNCHRONOUS", "Normal", 1);
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert(!cfg.synchronous_full);
    config_free(&cfg);

    static const char *const bad[] = {"off", "extra", "1", "full ", "fast"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("DB_SYNCHRONOUS", bad[i], 1);
        expect_failure(false, "DB_SYNCHRONOUS");
    }
}
END_TEST

/* Issue 11: a write must give up on the lock before nginx gives up on the
 * request, or a create that commits after a 504 is retried and stored
 * twice. */
START_TEST(test_timeouts_that_disagree_are_refused)
{
    struct config cfg;
    char err[512];
    setenv("REQUEST_TIMEOUT", "5", 1);
    setenv("DB_BUSY_TIMEOUT_MS", "4000", 1);
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    config_free(&cfg);
    setenv("DB_BUSY_TIMEOUT_MS", "4001", 1);
    expect_failure(false, "DB_BUSY_TIMEOUT_MS (4001) must be at most REQUEST_TIMEOUT");
    /* the default busy timeout (5 s) with a 5 s request timeout */
    unsetenv("DB_BUSY_TIMEOUT_MS");
    expect_failure(false, "DB_BUSY_TIMEOUT_MS (5000)");
    setenv("REQUEST_TIMEOUT", "1", 1);
    setenv("DB_BUSY_TIMEOUT_MS", "2500", 1);
    expect_failure(false, "(0)");
}
END_TEST

START_TEST(test_timeouts)
{
    struct config cfg;
    char err[256];
    setenv("DB_BUSY_TIMEOUT_MS", "250", 1);
    setenv("REQUEST_TIMEOUT", "3600", 1);
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.busy_timeout_ms, 250);
    ck_assert_int_eq(cfg.request_timeout_s, 3600);
    config_free(&cfg);
    /* 0 ms: fail at once when locked; allowed. */
    setenv("DB_BUSY_TIMEOUT_MS", "0", 1);
    setenv("REQUEST_TIMEOUT", "1", 1);
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.busy_timeout_ms, 0);
    ck_assert_int_eq(cfg.request_timeout_s, 1);
    config_free(&cfg);

    static const char *const bad_busy[] = {"-1", "600001", "5s", "abc", "1.5", "5 ",
                                           "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_busy / sizeof bad_busy[0]; i++) {
        setenv("DB_BUSY_TIMEOUT_MS", bad_busy[i], 1);
        expect_failure(false, "DB_BUSY_TIMEOUT_MS");
    }
    unsetenv("DB_BUSY_TIMEOUT_MS");
    static const char *const bad_req[] = {"0", "-5", "3601", "30s", "x"};
    for (size_t i = 0; i < sizeof bad_req / sizeof bad_req[0]; i++) {
        setenv("REQUEST_TIMEOUT", bad_req[i], 1);
        expect_failure(false, "REQUEST_TIMEOUT");
    }
}
END_TEST

START_TEST(test_algorithm_pinned_to_hmac)
{
    static const char *const bad[] = {"none", "RS256", "hs256", "ES256", "HS1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("JWT_ALGORITHM", bad[i], 1);
        expect_failure(false, "JWT_ALGORITHM");
    }
    static const char *const good[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config cfg;
        char err[256];
        setenv("JWT_ALGORITHM", good[i], 1);
        ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(cfg.jwt_algorithm, good[i]);
        config_free(&cfg);
    }
}
END_TEST

/* A key set: one source, an http(s) URL, an issuer, public-key
 * algorithms only, and a minimum refresh within the refresh. */
START_TEST(test_jwks_settings)
{
    setenv("JWT_JWKS_URL", "https://idp.example/jwks", 1);
    expect_failure(false, "JWT_ISSUER");
    setenv("JWT_ISSUER", "https://idp.example", 1);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    ck_assert(config_has_jwks(&cfg));
    config_free(&cfg);
    setenv("JWT_ALGORITHMS", "RS256,PS256,ES256,ES384,EdDSA", 1);
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    config_free(&cfg);
    static const char *const bad_algs[] = {"HS256", "RS256,HS256", "none", "rs256", "RS256,,ES256"};
    for (size_t i = 0; i < sizeof bad_algs / sizeof bad_algs[0]; i++) {
        setenv("JWT_ALGORITHMS", bad_algs[i], 1);
        expect_failure(false, "JWT_ALGORITHMS");
    }
    unsetenv("JWT_ALGORITHMS");
    setenv("JWT_JWKS_FILE", "/etc/orders/jwks.json", 1);
    expect_failure(false, "JWT_JWKS_FILE");
    unsetenv("JWT_JWKS_FILE");
    setenv("JWT_JWKS_URL", "ftp://idp.example/jwks", 1);
    expect_failure(false, "JWT_JWKS_URL");
    setenv("JWT_JWKS_URL", "http://127.0.0.1:9/jwks", 1);
    setenv("JWT_JWKS_MIN_REFRESH_S", "600", 1);
    expect_failure(false, "JWT_JWKS_MIN_REFRESH_S");
    setenv("JWT_JWKS_MIN_REFRESH_S", "0", 1);
    setenv("JWT_JWKS_REFRESH_S", "0", 1);
    expect_failure(false, "JWT_JWKS_REFRESH_S");
    unsetenv("JWT_JWKS_REFRESH_S");
    unsetenv("JWT_JWKS_MIN_REFRESH_S");
    unsetenv("JWT_JWKS_URL");
    unsetenv("JWT_ISSUER");
    /* Without a key set, public-key algorithms have nothing to verify with. */
    setenv("JWT_ALGORITHMS", "RS256", 1);
    expect_failure(false, "JWT_ALGORITHMS");
    setenv("JWT_ALGORITHMS", "HS256,HS512", 1);
    ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
    config_free(&cfg);
    unsetenv("JWT_ALGORITHMS");
}
END_TEST

START_TEST(test_log_levels)
{
    static const struct {
        const char *text;
        enum log_level level;
    } good[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
        {"warning", LOG_WARN}, {"ERROR", LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config cfg;
        char err[256];
        setenv("LOG_LEVEL", good[i].text, 1);
        ck_assert_msg(config_load(&cfg, false, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(cfg.log_level, good[i].level);
        config_free(&cfg);
    }
    setenv("LOG_LEVEL", "verbose", 1);
    expect_failure(false, "LOG_LEVEL");
    setenv("LOG_LEVEL", "trace", 1);
    expect_failure(false, "LOG_LEVEL");
}
END_TEST

START_TEST(test_secret_from_env_length)
{
    setenv("RUNTIME_DIR", tmpdir, 1);
    char short_secret[CONFIG_MIN_SECRET_LEN];
    memset(short_secret, 'k', sizeof short_secret - 1);
    short_secret[sizeof short_secret - 1] = '\0'; /* 31 bytes */
    setenv("JWT_SECRET_KEY", short_secret, 1);
    expect_failure(true, "JWT_SECRET_KEY is 31 bytes");
    /* Read once, even when refused: it is no longer in the environment. */
    ck_assert_ptr_null(getenv("JWT_SECRET_KEY"));

    /* Without need_secret the secret is neither read nor judged. */
    setenv("JWT_SECRET_KEY", short_secret, 1);
    struct config cfg;
    char err[256];
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_ptr_null(cfg.jwt_secret);
    config_free(&cfg);

    setenv("JWT_SECRET_KEY", SECRET32, 1);
    ck_assert_msg(config_load(&cfg, true, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(cfg.jwt_secret_len, 32);
    config_free(&cfg);
}
END_TEST

START_TEST(test_secret_from_runtime_file)
{
    setenv("RUNTIME_DIR", tmpdir, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/jwt-secret", tmpdir);

    /* Missing file: refused, naming the path it looked at. */
    expect_failure(true, path);

    /* An editor's trailing newline (and CRLF) is not part of the key. */
    static const char content[] = "abcdefghijklmnopqrstuvwxyz0123456789\r\n";
    write_file(path, content, sizeof content - 1);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, true, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(cfg.jwt_secret_len, 36);
    ck_assert(memcmp(cfg.jwt_secret, content, 36) == 0);
    config_free(&cfg);

    /* The environment wins over the file. */
    setenv("JWT_SECRET_KEY", SECRET32, 1);
    ck_assert_int_eq(config_load(&cfg, true, err, sizeof err), 0);
    ck_assert(memcmp(cfg.jwt_secret, SECRET32, 32) == 0);
    config_free(&cfg);
    unsetenv("JWT_SECRET_KEY");

    /* A short file secret is as bad as a short variable. */
    write_file(path, "short\n", 6);
    expect_failure(true, "at least 32");

    /* Only newlines: an empty key. */
    write_file(path, "\n\n", 2);
    expect_failure(true, "0 bytes");
}
END_TEST

START_TEST(test_secret_file_binary_and_size)
{
    setenv("RUNTIME_DIR", tmpdir, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/jwt-secret", tmpdir);

    /* Raw bytes, NUL included, are kept whole: the length is the file's. */
    unsigned char raw[40];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(i * 7);
    raw[5] = 0;
    raw[39] = 'x';
    write_file(path, raw, sizeof raw);
    struct config cfg;
    char err[256];
    ck_assert_msg(config_load(&cfg, true, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(cfg.jwt_secret_len, sizeof raw);
    ck_assert(memcmp(cfg.jwt_secret, raw, sizeof raw) == 0);
    config_free(&cfg);

    /* 1000 bytes: fine.  2048: refused, not truncated to a prefix. */
    char big[2048];
    memset(big, 'b', sizeof big);
    write_file(path, big, 1000);
    ck_assert_int_eq(config_load(&cfg, true, err, sizeof err), 0);
    ck_assert_uint_eq(cfg.jwt_secret_len, 1000);
    config_free(&cfg);
    write_file(path, big, sizeof big);
    expect_failure(true, "1 KiB");
}
END_TEST

START_TEST(test_secret_file_is_a_directory)
{
    setenv("RUNTIME_DIR", tmpdir, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/jwt-secret", tmpdir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    expect_failure(true, "jwt-secret");
}
END_TEST

START_TEST(test_idempotency_ttl)
{
    struct config cfg;
    char err[256];
    setenv("IDEMPOTENCY_TTL_HOURS", "168", 1);
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_int_eq(cfg.idempotency_ttl_ms, 168LL * 3600 * 1000);
    config_free(&cfg);
    setenv("IDEMPOTENCY_TTL_HOURS", "0.001", 1); /* 3.6 s: tests */
    ck_assert_int_eq(config_load(&cfg, false, err, sizeof err), 0);
    ck_assert_int_eq(cfg.idempotency_ttl_ms, 3600);
    config_free(&cfg);
    const char *bad[] = {"0", "-1", "abc", "24h", "1e9", "nan", "inf", " 24", "+24", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("IDEMPOTENCY_TTL_HOURS", bad[i], 1);
        expect_failure(false, "IDEMPOTENCY_TTL_HOURS");
    }
}
END_TEST

START_TEST(test_error_buffer_small)
{
    /* A tiny error buffer truncates the message, never overflows. */
    setenv("LOG_LEVEL", "nonsense-level-with-a-long-name", 1);
    struct config cfg;
    char err[12];
    memset(err, 'Z', sizeof err);
    ck_assert_int_eq(config_load(&cfg, false, err, 8), -1);
    ck_assert_uint_eq(strlen(err), 7);
    ck_assert_int_eq(err[8], 'Z');
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults_without_secret);
    tcase_add_test(tc, test_every_variable_read);
    tcase_add_test(tc, test_database_path_follows_runtime_dir);
    tcase_add_test(tc, test_database_url);
    tcase_add_test(tc, test_empty_means_default);
    tcase_add_test(tc, test_jaeger_endpoint_fallback);
    tcase_add_test(tc, test_synchronous_values);
    tcase_add_test(tc, test_timeouts);
    tcase_add_test(tc, test_timeouts_that_disagree_are_refused);
    tcase_add_test(tc, test_algorithm_pinned_to_hmac);
    tcase_add_test(tc, test_jwks_settings);
    tcase_add_test(tc, test_log_levels);
    tcase_add_test(tc, test_secret_from_env_length);
    tcase_add_test(tc, test_secret_from_runtime_file);
    tcase_add_test(tc, test_secret_file_binary_and_size);
    tcase_add_test(tc, test_secret_file_is_a_directory);
    tcase_add_test(tc, test_error_buffer_small);
    tcase_add_test(tc, test_idempotency_ttl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
