/*
 * test_app.c - the service end to end through app_handle: a real store in
 * a temporary directory, a config built here, tokens minted with test_mint (mint.h).
 * Every route; every error of the contract's table with its headers; the
 * order of checks (auth before media type, body and existence); and the
 * access log, which must never carry a token.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "mint.h"
#include "embedded.h"
#include "testdir.h"

static const char SECRET[] = "app-test-secret-0123456789abcdef-0123456789";
static const char OTHER_SECRET[] = "some-other-secret-0123456789abcdef-012345";

#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACEPARENT "00-" TRACE_ID "-00f067aa0ba902b7-01"
#define MISSING_ID "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60"

static char tmpdir[4096];
static char dbpath[4200];
static char logpath[4200];
static struct config cfg;
static struct store *st;

/* A store on path through the port's selection table, as the worker opens it. */
static struct store *open_test_store(const char *path, int busy_ms, char *err, size_t errlen)
{
    const struct store_options opt = {.location = path, .busy_timeout_ms = busy_ms,
                                      .create = true};
    struct store *out = NULL;
    (void)store_open(&opt, &out, err, errlen);
    return out;
}
static struct app app;

/* "Bearer <jwt>" headers. */
static char *auth_rw, *auth_r, *auth_w, *auth_none, *auth_expired, *auth_other;
static char *tok_rw; /* the bare token, to look for it in the logs */

static char *bearer_for(const unsigned char *secret, size_t len, const char *scopes,
                        time_t now, long lifetime, char **bare)
{
    struct auth_settings s = {
        .secret = secret,
        .secret_len = len,
        .algorithm = "HS256",
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    char *tok = test_mint(&s, "user-42", scopes, now, lifetime);
    ck_assert_msg(tok != NULL, "test_mint failed");
    size_t n = strlen(tok) + sizeof "Bearer ";
    char *h = malloc(n);
    snprintf(h, n, "Bearer %s", tok);
    if (bare != NULL)
        *bare = tok;
    else
        free(tok);
    return h;
}

static void base_setup(void)
{
    testdir_create("app");
}

static void base_teardown(void)
{
    testdir_remove();
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test-XXXXXX", testdir_path());
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(dbpath, sizeof dbpath, "%s/orders.db", tmpdir);
    snprintf(logpath, sizeof logpath, "%s/access.log", tmpdir);

    memset(&cfg, 0, sizeof cfg);
    cfg.runtime_dir = tmpdir;
    cfg.database_path = dbpath;
    cfg.synchronous_full = false;
    cfg.busy_timeout_ms = STORE_BUSY_TIMEOUT_MS;
    cfg.request_timeout_s = 30;
    cfg.idempotency_ttl_ms = IDEMPOTENCY_TTL_HOURS_DEFAULT * 3600LL * 1000;
    cfg.jwt_secret = (unsigned char *)SECRET;
    cfg.jwt_secret_len = sizeof SECRET - 1;
    cfg.jwt_algorithm = "HS256";
    cfg.event_sink = "stdout";
    cfg.event_source = "/orders";
    cfg.log_level = LOG_INFO;

    char err[256] = "";
    st = open_test_store(dbpath, STORE_BUSY_TIMEOUT_MS, err, sizeof err);
    ck_assert_msg(st != NULL, "store_open: %s", err);
    ck_assert_msg(store_migrate(st, err, sizeof err) == STORE_OK, "migrate: %s", err);
    ck_assert_msg(app_init(&app, &cfg, st, NULL, err, sizeof err) == 0, "app_init: %s", err);
    app.log.fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(app.log.fd, 0);

    time_t now = time(NULL);
    const unsigned char *sec = (const unsigned char *)SECRET;
    size_t len = sizeof SECRET - 1;
    auth_rw = bearer_for(sec, len, "orders.read orders.write", now, 3600, &tok_rw);
    auth_r = bearer_for(sec, len, "orders.read", now, 3600, NULL);
    auth_w = bearer_for(sec, len, "orders.write", now, 3600, NULL);
    auth_none = bearer_for(sec, len, NULL, now, 3600, NULL);
    auth_expired = bearer_for(sec, len, "orders.read orders.write", now - 7200, 600, NULL);
    auth_other = bearer_for((const unsigned char *)OTHER_SECRET, sizeof OTHER_SECRET - 1,
                            "orders.read orders.write", now, 3600, NULL);
}

static void teardown(void)
{
    close(app.log.fd);
    app_free(&app);
    store_close(st);
    st = NULL;
    free(auth_rw);
    free(auth_r);
    free(auth_w);
    free(auth_none);
    free(auth_expired);
    free(auth_other);
    free(tok_rw);
    testdir_remove_tree(tmpdir);
}

/* ---- requests ----------------------------------------------------------- */

static struct request req(const char *method, const char *path)
{
    struct request r;
    memset(&r, 0, sizeof r);
    r.method = method;
    r.path = path;
    r.query = "";
    return r;
}

static struct request req_auth(const char *method, const char *path, const char *authz)
{
    struct request r = req(method, path);
    r.authorization = authz;
    r.authorization_count = authz ? 1 : 0;
    return r;
}

static struct request req_body(const char *method, const char *path, const char *authz,
                               const char *body)
{
    struct request r = req_auth(method, path, authz);
    r.content_type = "application/json";
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    return r;
}

/* Runs one request; the body is copied into an exact-size heap buffer
 * without a terminator, as the adapter hands it over. */
static void run(const struct request *r, struct response *res)
{
    struct request copy = *r;
    char *body = NULL;
    if (r->body != NULL && r->body_len > 0) {
        body = malloc(r->body_len);
        memcpy(body, r->body, r->body_len);
        copy.body = body;
    }
    response_init(res);
    app_handle(&app, &copy, res);
    free(body);
}

static cJSON *json_of(const struct response *res)
{
    ck_assert_ptr_nonnull(res->body);
    cJSON *doc = cJSON_ParseWithLength(res->body, res->body_len);
    ck_assert_msg(doc != NULL, "not JSON: %.*s", (int)res->body_len, res->body);
    return doc;
}

static const char *str_of(const cJSON *doc, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, key);
    ck_assert_msg(cJSON_IsString(m), "member %s missing or not a string", key);
    return m->valuestring;
}

static double num_of(const cJSON *doc, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, key);
    ck_assert_msg(cJSON_IsNumber(m), "member %s missing or not a number", key);
    return m->valuedouble;
}

/* Checks a problem response; returns its detail (owned by the caller). */
static char *expect_problem(const struct response *res, int status, const char *type,
                            const char *instance)
{
    ck_assert_msg(res->status == status, "status %d, want %d: %.*s", res->status, status,
                  (int)res->body_len, res->body ? res->body : "");
    ck_assert_str_eq(res->content_type, "application/problem+json");
    cJSON *doc = json_of(res);
    ck_assert_str_eq(str_of(doc, "type"), type);
    ck_assert_int_eq((int)num_of(doc, "status"), status);
    ck_assert_uint_gt(strlen(str_of(doc, "title")), 0);
    if (instance != NULL)
        ck_assert_str_eq(str_of(doc, "instance"), instance);
    char *detail = strdup(str_of(doc, "detail"));
    cJSON_Delete(doc);
    return detail;
}

static void expect_problem_only(const struct response *res, int status, const char *type)
{
    free(expect_problem(res, status, type, NULL));
}

/* Creates an order through the API; returns its id (static buffer per call). */
static void create_order(const char *customer, char id[UUID_STR_LEN + 1])
{
    char body[256];
    snprintf(body, sizeof body, "{\"customerId\":\"%s\",\"items\":[\"item-1\"]}", customer);
    struct request r = req_body("POST", "/orders", auth_rw, body);
    struct response res;
    run(&r, &res);
    ck_assert_msg(res.status == 201, "create: %d %.*s", res.status, (int)res.body_len, res.body);
    cJSON *doc = json_of(&res);
    snprintf(id, UUID_STR_LEN + 1, "%s", str_of(doc, "id"));
    cJSON_Delete(doc);
    response_free(&res);
}

static long long count_rows(const char *table)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    long long n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* ---- public routes ------------------------------------------------------ */

START_TEST(test_service_info)
{
    struct request r = req("GET", "/");
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/json");
    cJSON *doc = json_of(&res);
    ck_assert_str_eq(str_of(doc, "name"), "orders");
    ck_assert_str_eq(str_of(doc, "version"), ORDERS_VERSION);
    ck_assert_uint_gt(strlen(str_of(doc, "description")), 0);
    const cJSON *links = cJSON_GetObjectItem(doc, "links");
    ck_assert(cJSON_IsObject(links));
    ck_assert_str_eq(str_of(links, "openapi"), "/openapi.json");
    ck_assert_str_eq(str_of(links, "health"), "/healthz");
    ck_assert_str_eq(str_of(links, "ready"), "/readyz");
    cJSON_Delete(doc);
    response_free(&res);
    /* The app's copy survives a response being freed: ask twice. */
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.body_len, app.service_info_len);
    response_free(&res);
}
END_TEST

START_TEST(test_openapi_byte_for_byte)
{
    struct request r = req("GET", "/openapi.json");
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_nonnull(res.content_type);
    ck_assert_ptr_nonnull(strstr(res.content_type, "json"));
    ck_assert_uint_eq(res.body_len, embedded_openapi_len);
    ck_assert(memcmp(res.body, embedded_openapi, res.body_len) == 0);
    cJSON *doc = json_of(&res);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "openapi"));
    cJSON_Delete(doc);

    /* And the embedded copy is the project's file, byte for byte. */
    const char *path = getenv("OPENAPI_PATH");
    if (path != NULL) {
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
        char *file = malloc(res.body_len + 2);
        size_t n = fread(file, 1, res.body_len + 1, f);
        fclose(f);
        ck_assert_uint_eq(n, res.body_len);
        ck_assert(memcmp(file, res.body, n) == 0);
        free(file);
    }
    response_free(&res);
}
END_TEST

START_TEST(test_healthz)
{
    struct request r = req("GET", "/healthz");
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/json");
    ck_assert_uint_eq(res.body_len, strlen("{\"status\":\"ok\"}"));
    ck_assert(memcmp(res.body, "{\"status\":\"ok\"}", res.body_len) == 0);
    response_free(&res);
}
END_TEST

START_TEST(test_public_routes_ignore_tokens)
{
    /* No scope is needed; a broken token on a public route is not a 401. */
    static const char *const paths[] = {"/", "/healthz", "/readyz", "/openapi.json"};
    for (size_t i = 0; i < 4; i++) {
        struct request r = req_auth("GET", paths[i], "Bearer garbage");
        struct response res;
        run(&r, &res);
        ck_assert_msg(res.status == 200, "%s: %d", paths[i], res.status);
        response_free(&res);
    }
}
END_TEST

START_TEST(test_readyz)
{
    struct request r = req("GET", "/readyz");
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    cJSON *doc = json_of(&res);
    ck_assert_str_eq(str_of(doc, "status"), "ready");
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_readyz_unmigrated)
{
    char path[4300], err[256];
    snprintf(path, sizeof path, "%s/empty.db", tmpdir);
    struct store *fresh = open_test_store(path, STORE_BUSY_TIMEOUT_MS, err, sizeof err);
    ck_assert_ptr_nonnull(fresh);
    struct store *saved = app.store;
    app.store = fresh;
    struct request r = req("GET", "/readyz");
    struct response res;
    run(&r, &res);
    app.store = saved;
    expect_problem_only(&res, 503, "service_unavailable");
    ck_assert_ptr_nonnull(response_header(&res, "Retry-After"));
    response_free(&res);
    store_close(fresh);
}
END_TEST

START_TEST(test_readyz_newer_schema)
{
    /* A database migrated by a newer binary is not ours to serve. */
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "INSERT INTO schema_migrations (version, name, applied_at)"
                                  " VALUES (999, '999_future.sql', 0)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct request r = req("GET", "/readyz");
    struct response res;
    run(&r, &res);
    char *detail = expect_problem(&res, 503, "service_unavailable", "/readyz");
    ck_assert_ptr_nonnull(strstr(detail, "schema"));
    free(detail);
    response_free(&res);
}
END_TEST

/* ---- routing errors ----------------------------------------------------- */

START_TEST(test_unknown_route_404)
{
    static const char *const paths[] = {"/nope", "/orders/a/b", "/order", "/healthz//",
                                        "/openapi.yaml", "/orders/a/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct request r = req_auth("GET", paths[i], auth_rw);
        struct response res;
        run(&r, &res);
        char *d = expect_problem(&res, 404, "not_found", paths[i]);
        free(d);
        ck_assert_ptr_null(response_header(&res, "Allow"));
        response_free(&res);
    }
}
END_TEST

START_TEST(test_method_not_allowed_405)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"DELETE", "/orders", "POST, GET"},
        {"PUT", "/orders/", "POST, GET"},
        {"DELETE", "/orders/" MISSING_ID, "GET, PATCH"},
        {"POST", "/orders/abc", "GET, PATCH"},
        {"POST", "/healthz", "GET"},
        {"DELETE", "/", "GET"},
        {"PATCH", "/openapi.json", "GET"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Without a token too: the method is refused before auth. */
        struct request r = req(cases[i].method, cases[i].path);
        struct response res;
        run(&r, &res);
        expect_problem_only(&res, 405, "method_not_allowed");
        const char *allow = response_header(&res, "Allow");
        ck_assert_msg(allow != NULL, "%s %s: no Allow", cases[i].method, cases[i].path);
        ck_assert_str_eq(allow, cases[i].allow);
        response_free(&res);
    }
}
END_TEST

/* ---- authentication and authorisation ---------------------------------- */

static const struct {
    const char *method, *path, *body;
} protected_routes[] = {
    {"POST", "/orders", "{\"customerId\":\"c\",\"items\":[\"a\"]}"},
    {"GET", "/orders", NULL},
    {"GET", "/orders/" MISSING_ID, NULL},
    {"PATCH", "/orders/" MISSING_ID, "{\"status\":\"paid\"}"},
};
#define NPROTECTED (sizeof protected_routes / sizeof protected_routes[0])

START_TEST(test_401_without_token)
{
    for (size_t i = 0; i < NPROTECTED; i++) {
        struct request r = req_body(protected_routes[i].method, protected_routes[i].path,
                                    NULL, protected_routes[i].body);
        struct response res;
        run(&r, &res);
        expect_problem_only(&res, 401, "unauthorized");
        const char *www = response_header(&res, "WWW-Authenticate");
        ck_assert_msg(www != NULL, "%s %s: no WWW-Authenticate", protected_routes[i].method,
                      protected_routes[i].path);
        ck_assert(strncmp(www, "Bearer", 6) == 0);
        /* RFC 6750 3: no error attribute when no credentials came. */
        ck_assert_msg(strstr(www, "error=") == NULL, "%s", www);
        response_free(&res);
    }
    /* An empty or blank header is no credentials as well. */
    struct request r = req_auth("GET", "/orders", "   ");
    struct response res;
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    ck_assert_ptr_null(strstr(response_header(&res, "WWW-Authenticate"), "error="));
    response_free(&res);
    ck_assert_int_eq(count_rows("orders"), 0);
}
END_TEST

START_TEST(test_401_bad_tokens)
{
    const char *bad[] = {"Bearer garbage", "Bearer a.b.c", auth_expired, auth_other,
                         "Basic dXNlcjpwYXNz", "Bearer"};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        for (size_t i = 0; i < NPROTECTED; i++) {
            struct request r = req_body(protected_routes[i].method,
                                        protected_routes[i].path, bad[t],
                                        protected_routes[i].body);
            struct response res;
            run(&r, &res);
            char *d = expect_problem(&res, 401, "unauthorized", protected_routes[i].path);
            free(d);
            const char *www = response_header(&res, "WWW-Authenticate");
            ck_assert_ptr_nonnull(www);
            ck_assert(strncmp(www, "Bearer", 6) == 0);
            ck_assert_msg(strstr(www, "error=\"invalid_token\"") != NULL,
                          "token #%zu on %s %s: %s", t, protected_routes[i].method,
                          protected_routes[i].path, www);
            response_free(&res);
        }
    }
    ck_assert_int_eq(count_rows("orders"), 0);
}
END_TEST

static void expect_403(const char *method, const char *path, const char *authz,
                       const char *body, const char *scope)
{
    struct request r = req_body(method, path, authz, body);
    struct response res;
    run(&r, &res);
    char *d = expect_problem(&res, 403, "forbidden", path);
    ck_assert_ptr_nonnull(strstr(d, scope));
    free(d);
    const char *www = response_header(&res, "WWW-Authenticate");
    ck_assert_ptr_nonnull(www);
    ck_assert_msg(strstr(www, "error=\"insufficient_scope\"") != NULL, "%s", www);
    char want[64];
    snprintf(want, sizeof want, "scope=\"%s\"", scope);
    ck_assert_msg(strstr(www, want) != NULL, "%s lacks %s", www, want);
    response_free(&res);
}

START_TEST(test_403_insufficient_scope)
{
    expect_403("POST", "/orders", auth_r, protected_routes[0].body, "orders.write");
    expect_403("PATCH", "/orders/" MISSING_ID, auth_r, "{\"status\":\"paid\"}",
               "orders.write");
    expect_403("GET", "/orders", auth_w, NULL, "orders.read");
    expect_403("GET", "/orders/" MISSING_ID, auth_w, NULL, "orders.read");
    expect_403("GET", "/orders", auth_none, NULL, "orders.read");
    expect_403("POST", "/orders", auth_none, protected_routes[0].body, "orders.write");
    ck_assert_int_eq(count_rows("orders"), 0);
}
END_TEST

START_TEST(test_auth_before_everything_else)
{
    struct response res;
    /* Invalid body, no token: 401, not 400. */
    struct request r = req_body("POST", "/orders", NULL, "{\"customerId\":\"\",\"items\":[]}");
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    /* Not JSON at all, wrong media type, no token: still 401. */
    r = req_body("POST", "/orders", NULL, "customerId=c");
    r.content_type = "application/x-www-form-urlencoded";
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    /* Wrong media type, read-only token: 403, not 415. */
    r = req_body("POST", "/orders", auth_r, "x");
    r.content_type = "text/plain";
    run(&r, &res);
    expect_problem_only(&res, 403, "forbidden");
    response_free(&res);
    /* Invalid body with a read-only token: 403, not 400. */
    r = req_body("PATCH", "/orders/" MISSING_ID, auth_r, "{\"status\":\"bogus\"}");
    run(&r, &res);
    expect_problem_only(&res, 403, "forbidden");
    response_free(&res);
    /* Unknown id without the read scope: 403, not 404. */
    r = req_auth("GET", "/orders/" MISSING_ID, auth_w);
    run(&r, &res);
    expect_problem_only(&res, 403, "forbidden");
    response_free(&res);
    /* Malformed id without a token: 401, not 404. */
    r = req_auth("GET", "/orders/not-a-uuid", NULL);
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    r = req_body("PATCH", "/orders/not-a-uuid", NULL, "{\"status\":\"paid\"}");
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    /* Bad query without a token: 401, not 400. */
    r = req("GET", "/orders");
    r.query = "limit=0";
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    /* Existing order, expired token: 401 (existence not revealed). */
    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);
    r = req_auth("GET", path, auth_expired);
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
}
END_TEST

START_TEST(test_duplicate_authorization_refused)
{
    /* Two Authorization headers, even when the one read is valid. */
    struct request r = req_body("POST", "/orders", auth_rw,
                                "{\"customerId\":\"c\",\"items\":[\"a\"]}");
    r.authorization_count = 2;
    struct response res;
    run(&r, &res);
    ck_assert_msg(res.status == 400 || res.status == 401, "status %d", res.status);
    ck_assert_str_eq(res.content_type, "application/problem+json");
    ck_assert_ptr_nonnull(response_header(&res, "WWW-Authenticate"));
    response_free(&res);
    ck_assert_int_eq(count_rows("orders"), 0);

    r = req_auth("GET", "/orders", auth_rw);
    r.authorization_count = 3;
    run(&r, &res);
    ck_assert_msg(res.status == 400 || res.status == 401, "status %d", res.status);
    response_free(&res);
}
END_TEST

/* ---- create ------------------------------------------------------------- */

START_TEST(test_create_201)
{
    long long before = (long long)time(NULL);
    struct request r = req_body("POST", "/orders", auth_w,
                                "{\"customerId\":\"customer-123\",\"items\":[\"item-1\",\"item-2\"]}");
    r.traceparent = TRACEPARENT;
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 201);
    ck_assert_str_eq(res.content_type, "application/json");
    cJSON *doc = json_of(&res);
    const char *id = str_of(doc, "id");
    ck_assert(uuid_is_canonical(id));
    char location[64];
    snprintf(location, sizeof location, "/orders/%s", id);
    ck_assert_str_eq(response_header(&res, "Location"), location);
    ck_assert_str_eq(str_of(doc, "customerId"), "customer-123");
    ck_assert_str_eq(str_of(doc, "status"), "pending");
    const cJSON *items = cJSON_GetObjectItem(doc, "items");
    ck_assert_int_eq(cJSON_GetArraySize(items), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(items, 1)->valuestring, "item-2");
    const char *created = str_of(doc, "createdAt");
    ck_assert_uint_eq(strlen(created), 24);
    ck_assert_int_eq(created[23], 'Z');
    ck_assert_int_eq(created[19], '.');
    ck_assert_str_eq(created, str_of(doc, "updatedAt"));
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(created, "%Y-%m-%dT%H:%M:%S", &tm));
    long long secs = (long long)timegm(&tm);
    ck_assert_int_ge(secs, before - 1);
    ck_assert_int_le(secs, (long long)time(NULL) + 1);
    ck_assert_int_eq(cJSON_GetArraySize(doc), 6);

    /* GET shows the same document. */
    struct request g = req_auth("GET", location, auth_r);
    struct response got;
    run(&g, &got);
    ck_assert_int_eq(got.status, 200);
    cJSON *gdoc = json_of(&got);
    ck_assert(cJSON_Compare(doc, gdoc, 1));
    cJSON_Delete(gdoc);
    response_free(&got);

    /* One event, continuing the caller's trace with our own span. */
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT type, subject, traceparent, data FROM events",
                                        -1, &s, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "order.created");
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 1), id);
    const char *tp = (const char *)sqlite3_column_text(s, 2);
    ck_assert_ptr_nonnull(tp);
    ck_assert_uint_eq(strlen(tp), 55);
    ck_assert(strncmp(tp, "00-" TRACE_ID "-", 36) == 0);
    ck_assert(strncmp(tp + 36, "00f067aa0ba902b7", 16) != 0);
    cJSON *data = cJSON_Parse((const char *)sqlite3_column_text(s, 3));
    ck_assert(cJSON_Compare(doc, data, 1));
    cJSON_Delete(data);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_create_trailing_slash_and_media_params)
{
    struct request r = req_body("POST", "/orders/", auth_rw,
                                "{\"customerId\":\"c\",\"items\":[\"a\"]}");
    r.content_type = "application/json; charset=utf-8";
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 201);
    ck_assert(strncmp(response_header(&res, "Location"), "/orders/", 8) == 0);
    response_free(&res);
    ck_assert_int_eq(count_rows("orders"), 1);
}
END_TEST

START_TEST(test_create_400_contract_example)
{
    struct request r = req_body("POST", "/orders", auth_rw, "{\"customerId\":\"\",\"items\":[]}");
    struct response res;
    run(&r, &res);
    char *d = expect_problem(&res, 400, "validation_error", "/orders");
    ck_assert_str_eq(d, "customerId should not be empty, items must contain at least 1 elements");
    free(d);
    response_free(&res);

    static const char *const bad[] = {"", "not json", "[]", "{}", "{\"customerId\":1}",
                                      "{\"customerId\":\"c\",\"items\":[\"a\"]} {}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = req_body("POST", "/orders", auth_rw, bad[i]);
        run(&r, &res);
        expect_problem_only(&res, 400, "validation_error");
        response_free(&res);
    }
    ck_assert_int_eq(count_rows("orders"), 0);
    ck_assert_int_eq(count_rows("events"), 0);
}
END_TEST

START_TEST(test_create_415)
{
    static const char *const types[] = {"text/plain", "application/xml",
                                        "application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct request r = req_body("POST", "/orders", auth_rw,
                                    "{\"customerId\":\"c\",\"items\":[\"a\"]}");
        r.content_type = types[i];
        struct response res;
        run(&r, &res);
        expect_problem_only(&res, 415, "unsupported_media_type");
        response_free(&res);
    }
    struct request r = req_body("POST", "/orders", auth_rw,
                                "{\"customerId\":\"c\",\"items\":[\"a\"]}");
    r.content_type = NULL;
    struct response res;
    run(&r, &res);
    expect_problem_only(&res, 415, "unsupported_media_type");
    response_free(&res);
    ck_assert_int_eq(count_rows("orders"), 0);
}
END_TEST

START_TEST(test_413_body_too_large)
{
    struct request r = req_auth("POST", "/orders", auth_rw);
    r.content_type = "application/json";
    r.body_too_large = 1;
    struct response res;
    run(&r, &res);
    char *d = expect_problem(&res, 413, "payload_too_large", "/orders");
    ck_assert_ptr_nonnull(strstr(d, "65536"));
    free(d);
    response_free(&res);

    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);
    r = req_auth("PATCH", path, auth_rw);
    r.content_type = "application/json";
    r.body_too_large = 1;
    run(&r, &res);
    expect_problem_only(&res, 413, "payload_too_large");
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 1); /* only the create */
}
END_TEST

START_TEST(test_instance_is_uri_reference)
{
    /* Raw bytes a URI may not hold are percent-encoded in `instance`;
     * existing escapes are kept as they are. */
    struct request r = req("GET", "/nope/a b{x}|\"\xff\x01%41%zz");
    struct response res;
    run(&r, &res);
    char *d = expect_problem(&res, 404, "not_found", "/nope/a%20b%7Bx%7D%7C%22%FF%01%41%25zz");
    free(d);
    response_free(&res);
}
END_TEST

/* ---- get and update ----------------------------------------------------- */

START_TEST(test_get_404)
{
    static const char *const paths[] = {
        "/orders/" MISSING_ID,
        "/orders/not-a-uuid",
        "/orders/019378A2-8A1E-7C3D-9A5E-1B2C3D4E5F60", /* uppercase is not canonical */
        "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f6",
        "/orders/'OR'1'='1",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct request r = req_auth("GET", paths[i], auth_r);
        struct response res;
        run(&r, &res);
        char *d = expect_problem(&res, 404, "not_found", paths[i]);
        free(d);
        response_free(&res);
    }
}
END_TEST

START_TEST(test_update_flow_and_409)
{
    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);

    struct request r = req_body("PATCH", path, auth_w, "{\"status\":\"paid\"}");
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    cJSON *doc = json_of(&res);
    ck_assert_str_eq(str_of(doc, "id"), id);
    ck_assert_str_eq(str_of(doc, "status"), "paid");
    ck_assert_int_ge(strcmp(str_of(doc, "updatedAt"), str_of(doc, "createdAt")), 0);
    cJSON_Delete(doc);
    response_free(&res);

    /* Skipping, going back and staying put are all 409. */
    static const char *const bad[] = {"{\"status\":\"delivered\"}", "{\"status\":\"pending\"}",
                                      "{\"status\":\"paid\"}"};
    for (size_t i = 0; i < 3; i++) {
        r = req_body("PATCH", path, auth_w, bad[i]);
        run(&r, &res);
        char *d = expect_problem(&res, 409, "conflict", path);
        ck_assert_ptr_nonnull(strstr(d, "paid"));
        free(d);
        response_free(&res);
    }

    /* Unchanged. */
    r = req_auth("GET", path, auth_r);
    run(&r, &res);
    doc = json_of(&res);
    ck_assert_str_eq(str_of(doc, "status"), "paid");
    cJSON_Delete(doc);
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 2);

    r = req_body("PATCH", path, auth_w, "{\"status\":\"shipped\"}");
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    response_free(&res);
    r = req_body("PATCH", path, auth_w, "{\"status\":\"delivered\"}");
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    response_free(&res);
    r = req_body("PATCH", path, auth_w, "{\"status\":\"delivered\"}");
    run(&r, &res);
    expect_problem_only(&res, 409, "conflict");
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 4);
}
END_TEST

/* Version 2: ETag, If-None-Match (304), If-Match (412), checked in the
 * store's write transaction. */
START_TEST(test_conditional_requests)
{
    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);
    struct request r = req_auth("GET", path, auth_r);
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(response_header(&res, "ETag"), "\"v1\"");
    response_free(&res);

    r.if_none_match = "W/\"v1\"";
    run(&r, &res);
    ck_assert_int_eq(res.status, 304);
    ck_assert_ptr_null(res.body);
    ck_assert_ptr_null(res.content_type);
    ck_assert_str_eq(response_header(&res, "ETag"), "\"v1\"");
    response_free(&res);
    r.if_none_match = "v1"; /* not a list of entity-tags */
    run(&r, &res);
    expect_problem_only(&res, 400, "validation_error");
    response_free(&res);

    r = req_body("PATCH", path, auth_w, "{\"status\":\"paid\"}");
    r.if_match = "\"v2\", W/\"v1\"";
    run(&r, &res);
    char *d = expect_problem(&res, 412, "precondition_failed", path);
    ck_assert_ptr_nonnull(strstr(d, "\"v1\""));
    free(d);
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 1);

    r.if_match = "\"v1\"";
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(response_header(&res, "ETag"), "\"v2\"");
    response_free(&res);
    /* A precondition that holds does not lift the status rule. */
    r.if_match = "*";
    run(&r, &res);
    expect_problem_only(&res, 409, "conflict");
    response_free(&res);
    /* Authentication first. */
    r = req_body("PATCH", path, NULL, "{\"status\":\"shipped\"}");
    r.if_match = "garbage";
    run(&r, &res);
    expect_problem_only(&res, 401, "unauthorized");
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 2);
}
END_TEST

START_TEST(test_idempotent_create)
{
    const char *body = "{\"customerId\":\"idem\",\"items\":[\"a\"]}";
    struct request r = req_body("POST", "/orders", auth_rw, body);
    r.idempotency_key = "\"k-1\"";
    r.idempotency_key_count = 1;
    struct response first, again;
    run(&r, &first);
    ck_assert_int_eq(first.status, 201);
    ck_assert_ptr_null(response_header(&first, "Idempotent-Replayed"));
    r.idempotency_key = "k-1"; /* the same key, bare */
    run(&r, &again);
    ck_assert_int_eq(again.status, 201);
    ck_assert_str_eq(response_header(&again, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(response_header(&again, "Location"), response_header(&first, "Location"));
    ck_assert_str_eq(response_header(&again, "ETag"), "\"v1\"");
    ck_assert_uint_eq(again.body_len, first.body_len);
    ck_assert_mem_eq(again.body, first.body, first.body_len);
    response_free(&first);
    response_free(&again);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("events"), 1);

    r = req_body("POST", "/orders", auth_rw, "{\"customerId\":\"idem\",\"items\":[\"b\"]}");
    r.idempotency_key = "k-1";
    r.idempotency_key_count = 1;
    run(&r, &again);
    expect_problem_only(&again, 422, "idempotency_key_reused");
    response_free(&again);
    r.idempotency_key_count = 2;
    run(&r, &again);
    expect_problem_only(&again, 400, "validation_error");
    response_free(&again);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("idempotency_keys"), 1);
}
END_TEST

START_TEST(test_list_cursor_and_filters)
{
    char ids[5][UUID_STR_LEN + 1];
    for (int i = 0; i < 5; i++)
        create_order(i % 2 ? "odd" : "even", ids[i]);
    struct request r = req_auth("GET", "/orders", auth_r);
    r.query = "limit=2&customerId=even";
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    cJSON *doc = json_of(&res);
    ck_assert_int_eq((int)num_of(doc, "total"), 3);
    char next[512];
    snprintf(next, sizeof next, "%s", str_of(doc, "next"));
    cJSON_Delete(doc);
    response_free(&res);
    ck_assert_ptr_nonnull(strstr(next, "&customerId=even"));
    ck_assert_int_eq(strncmp(next, "/orders?limit=2&cursor=", 23), 0);
    r.query = next + strlen("/orders?");
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    doc = json_of(&res);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    ck_assert_int_eq(cJSON_GetArraySize(items), 1);
    ck_assert_str_eq(str_of(cJSON_GetArrayItem(items, 0), "id"), ids[0]);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "next")));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(doc, "offset"));
    cJSON_Delete(doc);
    response_free(&res);
    /* A deep offset past the total: an empty page (below the total it is
     * refused: tests/integration/test_api_v2.py, which has the rows). */
    r.query = "offset=20000";
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    response_free(&res);
}
END_TEST

START_TEST(test_update_errors)
{
    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);
    struct response res;

    struct request r = req_body("PATCH", "/orders/" MISSING_ID, auth_w, "{\"status\":\"paid\"}");
    run(&r, &res);
    expect_problem_only(&res, 404, "not_found");
    response_free(&res);

    r = req_body("PATCH", "/orders/not-a-uuid", auth_w, "{\"status\":\"paid\"}");
    run(&r, &res);
    expect_problem_only(&res, 404, "not_found");
    response_free(&res);

    r = req_body("PATCH", path, auth_w, "{\"status\":\"cancelled\"}");
    run(&r, &res);
    char *d = expect_problem(&res, 400, "validation_error", path);
    ck_assert_ptr_nonnull(strstr(d, "status must be one of"));
    free(d);
    response_free(&res);

    r = req_body("PATCH", path, auth_w, "{\"status\":\"paid\"}");
    r.content_type = "text/plain";
    run(&r, &res);
    expect_problem_only(&res, 415, "unsupported_media_type");
    response_free(&res);

    /* A merge-patch media type is JSON too. */
    r = req_body("PATCH", path, auth_w, "{\"status\":\"paid\"}");
    r.content_type = "application/merge-patch+json";
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    response_free(&res);
    ck_assert_int_eq(count_rows("events"), 2);
}
END_TEST

/* ---- list --------------------------------------------------------------- */

START_TEST(test_list_pagination)
{
    char ids[3][UUID_STR_LEN + 1];
    for (int i = 0; i < 3; i++)
        create_order("c", ids[i]);

    struct request r = req_auth("GET", "/orders", auth_r);
    r.query = "limit=2";
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/json");
    cJSON *doc = json_of(&res);
    ck_assert_int_eq((int)num_of(doc, "total"), 3);
    ck_assert_int_eq((int)num_of(doc, "limit"), 2);
    ck_assert_int_eq((int)num_of(doc, "offset"), 0);
    const cJSON *items = cJSON_GetObjectItem(doc, "items");
    ck_assert_int_eq(cJSON_GetArraySize(items), 2);
    /* Newest first, in the order they were created (the store's
     * sequence), whatever their milliseconds and ids. */
    ck_assert_str_eq(str_of(cJSON_GetArrayItem(items, 0), "id"), ids[2]);
    ck_assert_str_eq(str_of(cJSON_GetArrayItem(items, 1), "id"), ids[1]);
    ck_assert_str_eq(str_of(cJSON_GetArrayItem(items, 0), "status"), "pending");
    cJSON_Delete(doc);
    response_free(&res);

    r.query = "limit=2&offset=2";
    run(&r, &res);
    doc = json_of(&res);
    items = cJSON_GetObjectItem(doc, "items");
    ck_assert_int_eq(cJSON_GetArraySize(items), 1);
    ck_assert_int_eq((int)num_of(doc, "offset"), 2);
    ck_assert_str_eq(str_of(cJSON_GetArrayItem(items, 0), "id"), ids[0]);
    cJSON_Delete(doc);
    response_free(&res);

    r.query = "offset=10";
    run(&r, &res);
    doc = json_of(&res);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "items")), 0);
    ck_assert_int_eq((int)num_of(doc, "total"), 3);
    ck_assert_int_eq((int)num_of(doc, "limit"), 20);
    cJSON_Delete(doc);
    response_free(&res);

    /* The collection with a trailing slash is the same resource. */
    r = req_auth("GET", "/orders/", auth_r);
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    doc = json_of(&res);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "items")), 3);
    cJSON_Delete(doc);
    response_free(&res);
}
END_TEST

START_TEST(test_list_bad_query_400)
{
    static const char *const bad[] = {"limit=0", "limit=101", "limit=abc", "offset=-1",
                                      "limit=5&limit=6", "limit=", "offset=1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct request r = req_auth("GET", "/orders", auth_r);
        r.query = bad[i];
        struct response res;
        run(&r, &res);
        char *d = expect_problem(&res, 400, "validation_error", "/orders");
        ck_assert_msg(strstr(d, "limit") != NULL || strstr(d, "offset") != NULL,
                      "query %s: %s", bad[i], d);
        free(d);
        response_free(&res);
    }
}
END_TEST

/* ---- busy database --------------------------------------------------------- */

START_TEST(test_busy_database_503)
{
    char id[UUID_STR_LEN + 1], path[64];
    create_order("c", id);
    snprintf(path, sizeof path, "/orders/%s", id);
    /* The app's store, for this test, gives up on the lock after 50 ms. */
    char err[256];
    struct store *quick = open_test_store(dbpath, 50, err, sizeof err), *saved = app.store;
    ck_assert_msg(quick != NULL, "%s", err);
    app.store = quick;
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct request r = req_body("POST", "/orders", auth_rw,
                                "{\"customerId\":\"c\",\"items\":[\"a\"]}");
    struct response res;
    run(&r, &res);
    char *d = expect_problem(&res, 503, "service_unavailable", "/orders");
    ck_assert_ptr_null(strstr(d, "SQLITE"));  /* no internals */
    ck_assert_ptr_null(strstr(d, "locked"));
    free(d);
    ck_assert_str_eq(response_header(&res, "Retry-After"), "1");
    response_free(&res);

    r = req_body("PATCH", path, auth_rw, "{\"status\":\"paid\"}");
    run(&r, &res);
    expect_problem_only(&res, 503, "service_unavailable");
    ck_assert_ptr_nonnull(response_header(&res, "Retry-After"));
    response_free(&res);

    /* Reads are not blocked by a writer (WAL). */
    r = req_auth("GET", path, auth_rw);
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    response_free(&res);

    ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    app.store = saved;
    store_close(quick);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("events"), 1);
}
END_TEST

/* ---- metrics and spans ------------------------------------------------------ */

START_TEST(test_metrics)
{
    char id[UUID_STR_LEN + 1];
    create_order("c", id);
    struct request r = req_auth("GET", "/nope", NULL);
    struct response res;
    run(&r, &res);
    response_free(&res);

    r = req("GET", "/metrics");
    run(&r, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_nonnull(res.content_type);
    ck_assert(strncmp(res.content_type, "text/plain", 10) == 0);
    char *text = strndup(res.body, res.body_len);
    ck_assert_ptr_nonnull(strstr(text, "orders_orders_created_total 1\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "orders_http_requests_total{route=\"POST /orders\",status=\"201\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "status=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "orders_events_pending 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "orders_database_up 1\n"));
    free(text);
    response_free(&res);

    r = req("POST", "/metrics");
    run(&r, &res);
    expect_problem_only(&res, 405, "method_not_allowed");
    ck_assert_str_eq(response_header(&res, "Allow"), "GET");
    response_free(&res);
}
END_TEST

#define MAX_SPANS 16
static struct span spans[MAX_SPANS];
static int span_count;

static void collect_span(void *ctx, const struct span *s)
{
    (void)ctx;
    if (span_count < MAX_SPANS)
        spans[span_count] = *s;
    span_count++;
}

static const struct span_attr *span_attr(const struct span *s, const char *key)
{
    for (int i = 0; i < s->attr_count; i++)
        if (strcmp(s->attrs[i].key, key) == 0)
            return &s->attrs[i];
    return NULL;
}

START_TEST(test_spans)
{
    span_count = 0;
    app.spans.emit = collect_span;
    app.spans.ctx = NULL;
    struct request r = req_body("POST", "/orders", auth_rw,
                                "{\"customerId\":\"c\",\"items\":[\"a\"]}");
    r.traceparent = TRACEPARENT;
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 201);
    response_free(&res);

    /* One database span, child of the one server span, same trace. */
    ck_assert_int_eq(span_count, 2);
    const struct span *db = &spans[0], *server = &spans[1];
    if (db->kind == SPAN_KIND_SERVER) {
        db = &spans[1];
        server = &spans[0];
    }
    ck_assert_int_eq(server->kind, SPAN_KIND_SERVER);
    ck_assert_int_eq(db->kind, SPAN_KIND_CLIENT);
    ck_assert_str_eq(server->trace_id, TRACE_ID);
    ck_assert_str_eq(server->parent_span_id, "00f067aa0ba902b7");
    ck_assert_str_eq(db->trace_id, TRACE_ID);
    ck_assert_str_eq(db->parent_span_id, server->span_id);
    ck_assert_str_ne(db->span_id, server->span_id);
    ck_assert_str_eq(server->name, "POST /orders");
    ck_assert_int_le(server->start_ns, server->end_ns);
    ck_assert_int_eq(server->error, 0);
    const struct span_attr *a = span_attr(server, "http.response.status_code");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->num, 201);
    a = span_attr(server, "http.route");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->str, "/orders");
    a = span_attr(server, "enduser.id");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->str, "user-42");

    /* A 401 is a server span without a database span. */
    span_count = 0;
    r = req_auth("GET", "/orders", NULL);
    run(&r, &res);
    response_free(&res);
    ck_assert_int_eq(span_count, 1);
    ck_assert_int_eq(spans[0].kind, SPAN_KIND_SERVER);
    ck_assert_ptr_null(span_attr(&spans[0], "enduser.id"));
    app.spans.emit = NULL;
}
END_TEST

/* ---- the access log ------------------------------------------------------ */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20, n;
    char *buf = malloc(cap);
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_access_log_lines)
{
    char id[UUID_STR_LEN + 1];
    create_order("log-customer", id);
    struct request r = req_auth("GET", "/orders/" MISSING_ID, auth_rw);
    r.traceparent = TRACEPARENT;
    r.request_id = "req-123";
    struct response res;
    run(&r, &res);
    ck_assert_int_eq(res.status, 404);
    response_free(&res);
    r = req_auth("GET", "/orders", "Bearer garbage");
    run(&r, &res);
    response_free(&res);

    char *text = read_file(logpath);
    /* The token, whole or its signature, is never written. */
    ck_assert_ptr_null(strstr(text, tok_rw));
    ck_assert_ptr_null(strstr(text, strrchr(tok_rw, '.') + 1));
    ck_assert_ptr_null(strstr(text, "Bearer"));
    ck_assert_ptr_null(strstr(text, SECRET));

    int requests = 0, found_404 = 0, found_created = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        cJSON *doc = cJSON_Parse(line);
        ck_assert_msg(doc != NULL, "log line is not JSON: %s", line);
        ck_assert_str_eq(str_of(doc, "service"), "orders");
        ck_assert_uint_eq(strlen(str_of(doc, "trace_id")), 32);
        ck_assert_uint_eq(strlen(str_of(doc, "span_id")), 16);
        const char *msg = str_of(doc, "message");
        if (strcmp(msg, "request") == 0) {
            requests++;
            ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "duration_ms"));
            if ((int)num_of(doc, "status") == 404) {
                found_404 = 1;
                ck_assert_str_eq(str_of(doc, "trace_id"), TRACE_ID);
                ck_assert_str_eq(str_of(doc, "method"), "GET");
                ck_assert_str_eq(str_of(doc, "path"), "/orders/" MISSING_ID);
                ck_assert_str_eq(str_of(doc, "route"), "GET /orders/{id}");
                ck_assert_str_eq(str_of(doc, "request_id"), "req-123");
                ck_assert_str_eq(str_of(doc, "sub"), "user-42");
            }
        } else if (strcmp(msg, "Order created") == 0) {
            found_created = 1;
            ck_assert_str_eq(str_of(doc, "order_id"), id);
            ck_assert_str_eq(str_of(doc, "customer_id"), "log-customer");
        }
        cJSON_Delete(doc);
    }
    ck_assert_int_eq(requests, 3);
    ck_assert(found_404);
    ck_assert(found_created);
    free(text);
}
END_TEST

/* The transport could not deliver: the request is logged and counted as
 * 499 (client gone), with what the handler answered beside it. */
static int sends;
static int send_fails(void *ctx, const struct response *res)
{
    (void)ctx;
    ck_assert_int_eq(res->status, 200);
    sends++;
    return -1;
}

START_TEST(test_undelivered_response_counted_as_client_gone)
{
    struct request r = req("GET", "/healthz");
    r.send = send_fails;
    struct response res;
    sends = 0;
    run(&r, &res);
    response_free(&res);
    ck_assert_int_eq(sends, 1);

    r = req("GET", "/metrics");
    run(&r, &res);
    char *text = strndup(res.body, res.body_len);
    ck_assert_ptr_nonnull(
        strstr(text, "orders_http_requests_total{route=\"GET /healthz\",status=\"499\"} 1\n"));
    ck_assert_ptr_null(strstr(text, "route=\"GET /healthz\",status=\"200\""));
    free(text);
    response_free(&res);

    text = read_file(logpath);
    ck_assert_ptr_nonnull(strstr(text, "\"status\":499"));
    ck_assert_ptr_nonnull(strstr(text, "\"handler_status\":200"));
    ck_assert_ptr_nonnull(strstr(text, "\"client_gone\":1"));
    free(text);
}
END_TEST

static Suite *app_suite(void)
{
    Suite *s = suite_create("app");
    TCase *pub = tcase_create("public");
    tcase_add_unchecked_fixture(pub, base_setup, base_teardown);
    tcase_add_checked_fixture(pub, setup, teardown);
    tcase_add_test(pub, test_service_info);
    tcase_add_test(pub, test_openapi_byte_for_byte);
    tcase_add_test(pub, test_healthz);
    tcase_add_test(pub, test_public_routes_ignore_tokens);
    tcase_add_test(pub, test_readyz);
    tcase_add_test(pub, test_readyz_unmigrated);
    tcase_add_test(pub, test_readyz_newer_schema);
    tcase_add_test(pub, test_unknown_route_404);
    tcase_add_test(pub, test_method_not_allowed_405);
    tcase_add_test(pub, test_instance_is_uri_reference);
    suite_add_tcase(s, pub);

    TCase *au = tcase_create("auth");
    tcase_add_unchecked_fixture(au, base_setup, base_teardown);
    tcase_add_checked_fixture(au, setup, teardown);
    tcase_add_test(au, test_401_without_token);
    tcase_add_test(au, test_401_bad_tokens);
    tcase_add_test(au, test_403_insufficient_scope);
    tcase_add_test(au, test_auth_before_everything_else);
    tcase_add_test(au, test_duplicate_authorization_refused);
    suite_add_tcase(s, au);

    TCase *orders_tc = tcase_create("orders");
    tcase_add_unchecked_fixture(orders_tc, base_setup, base_teardown);
    tcase_add_checked_fixture(orders_tc, setup, teardown);
    tcase_add_test(orders_tc, test_create_201);
    tcase_add_test(orders_tc, test_create_trailing_slash_and_media_params);
    tcase_add_test(orders_tc, test_create_400_contract_example);
    tcase_add_test(orders_tc, test_create_415);
    tcase_add_test(orders_tc, test_413_body_too_large);
    tcase_add_test(orders_tc, test_get_404);
    tcase_add_test(orders_tc, test_update_flow_and_409);
    tcase_add_test(orders_tc, test_update_errors);
    tcase_add_test(orders_tc, test_conditional_requests);
    tcase_add_test(orders_tc, test_idempotent_create);
    tcase_add_test(orders_tc, test_list_cursor_and_filters);
    tcase_add_test(orders_tc, test_list_pagination);
    tcase_add_test(orders_tc, test_list_bad_query_400);
    tcase_add_test(orders_tc, test_access_log_lines);
    tcase_add_test(orders_tc, test_busy_database_503);
    tcase_add_test(orders_tc, test_metrics);
    tcase_add_test(orders_tc, test_undelivered_response_counted_as_client_gone);
    tcase_add_test(orders_tc, test_spans);
    suite_add_tcase(s, orders_tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(app_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
