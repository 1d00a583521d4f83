/*
 * fuzz_request.c - libFuzzer target for the whole request path: app_handle
 * with routing, auth, media type, body and query validation, the handlers,
 * a real SQLite store, problem documents and the access log.
 *
 * Input: fields separated by '\n', the last taking the rest (so a body may
 * hold newlines):
 *
 *   method '\n' path '\n' query '\n' content-type '\n' authorization '\n'
 *   traceparent '\n' body
 *
 * A traceparent field starting with '~' carries the headers of version 2
 * instead: "~idempotency-key|if-match|if-none-match" (an empty part is an
 * absent header; a key starting with '+' came twice).
 *
 * Missing trailing fields are absent.  An empty content-type,
 * authorization or traceparent is an absent header (what the adapter in
 * fcgi/ passes on); an empty body is no body.  A method starting with '!'
 * marks the body as over the size limit (the adapter's body_too_large).
 * An authorization starting with '+' came twice.  Random bytes never make
 * a valid signature, so an authorization of "@rw", "@r", "@w", "@none" or
 * "@expired" is replaced by a bearer token minted at start with those
 * scopes; "@id" in the path is replaced by the id of the last order created,
 * so PATCH and GET reach orders that exist.
 *
 * Checked for every response: the status is one the contract lists and
 * never 500 (abort, so libFuzzer keeps the input); the body is one JSON
 * value of a JSON media type; an error is a problem document whose status
 * is the response's; 401 carries WWW-Authenticate, 405 Allow, 201 Location.
 *
 * FUZZ_VERBOSE=1 prints each request's status, to check what seeds reach.
 *
 * The app is built once, on a store in a fresh temporary directory
 * ($TMPDIR), migrated, with a fixed 48-byte secret.  Every few hundred
 * writes the tables are emptied through a second connection, which keeps
 * the database small and, since that needs the write lock at once, also
 * proves that no request left a transaction open.
 *
 * Tokens are minted by libjwt (tests/unit/mint.c), not by the code under test.
 *
 *   tests/fuzz/run.sh request
 */
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "mint.h"
#include "uuid.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_request: check failed: %s (line %d)\n",    \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define PURGE_EVERY_WRITES 256

static const char SECRET[] = "fuzz-secret-0123456789abcdef0123456789abcdef0123";

static char dir[4096], db_path[4200];
static struct config cfg;
static struct store *store;
static struct app app;
static sqlite3 *side; /* the second connection, for purging */
static int writes;
static int verbose; /* FUZZ_VERBOSE=1: one line per request, for seeds */
static char last_id[UUID_STR_LEN + 1];

static struct token {
    const char *name;
    const char *scopes;
    long issued_ago;
    long lifetime;
    char *header;
} tokens[] = {
    {"@rw", "orders.read orders.write", 0, 10L * 365 * 86400, NULL},
    {"@r", "orders.read", 0, 10L * 365 * 86400, NULL},
    {"@w", "orders.write", 0, 10L * 365 * 86400, NULL},
    {"@none", "", 0, 10L * 365 * 86400, NULL},
    {"@expired", "orders.read orders.write", 7200, 600, NULL},
};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_request: %s: %s\n", what, why);
    abort();
}

static void cleanup(void)
{
    char p[4300];
    if (dir[0] == '\0')
        return;
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_request.XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", dir);
    snprintf(db_path, sizeof db_path, "%s/orders.db", dir);
    atexit(cleanup);
    verbose = getenv("FUZZ_VERBOSE") != NULL;

    cfg.runtime_dir = dir;
    cfg.database_path = db_path;
    cfg.synchronous_full = false; /* speed; durability is not under test */
    cfg.jwt_secret = (unsigned char *)SECRET;
    cfg.idempotency_ttl_ms = IDEMPOTENCY_TTL_HOURS_DEFAULT * 3600LL * 1000;
    cfg.jwt_secret_len = sizeof SECRET - 1;
    cfg.jwt_algorithm = (char *)"HS256";
    cfg.event_sink = (char *)"stdout";
    cfg.event_source = (char *)"/orders";
    cfg.log_level = LOG_DEBUG; /* every log line is rendered: fuzzed too */

    char err[256];
    const struct store_options opt = {.location = db_path,
                                      .synchronous_full = cfg.synchronous_full,
                                      .busy_timeout_ms = STORE_BUSY_TIMEOUT_MS,
                                      .create = true};
    if (store_open(&opt, &store, err, sizeof err) != STORE_OK)
        die("store_open", err);
    if (store_migrate(store, err, sizeof err) != STORE_OK)
        die("store_migrate", err);
    if (app_init(&app, &cfg, store, NULL, err, sizeof err) != 0)
        die("app_init", err);
    app.log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (app.log.fd < 0)
        die("open", "/dev/null");

    struct auth_settings s = {
        .secret = cfg.jwt_secret,
        .secret_len = cfg.jwt_secret_len,
        .algorithm = "HS256",
        .leeway_seconds = AUTH_LEEWAY_SECONDS,
    };
    time_t now = time(NULL);
    for (size_t i = 0; i < NTOKENS; i++) {
        char *t = test_mint(&s, "fuzz-user", tokens[i].scopes,
                            now - tokens[i].issued_ago, tokens[i].lifetime);
        if (t == NULL)
            die("test_mint", tokens[i].name);
        size_t n = strlen(t) + sizeof "Bearer ";
        tokens[i].header = malloc(n);
        if (tokens[i].header == NULL)
            die("malloc", "token");
        snprintf(tokens[i].header, n, "Bearer %s", t);
        free(t);
    }

    if (sqlite3_open_v2(db_path, &side, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die("sqlite3_open_v2", sqlite3_errmsg(side));
    sqlite3_busy_timeout(side, 2000);
    return 0;
}

static void purge(void)
{
    char *msg = NULL;
    if (sqlite3_exec(side,
                     /* Idempotency keys go with the orders they name: a
                      * key left behind would replay an order deleted here,
                      * which the service itself never deletes. */
                     "BEGIN IMMEDIATE; DELETE FROM idempotency_keys;"
                     " DELETE FROM orders; DELETE FROM events;"
                     " COMMIT; PRAGMA wal_checkpoint(TRUNCATE);",
                     NULL, NULL, &msg) != SQLITE_OK) {
        /* The store holds the write lock between requests: a leaked
         * transaction. */
        die("purge (a request left a transaction open?)", msg ? msg : "?");
    }
    writes = 0;
    last_id[0] = '\0';
}

/* Takes the next '\n'-terminated field of [*p, end), NUL-terminating it in
 * place; NULL when the input has run out. */
static char *next_field(char **p, char *end)
{
    if (*p == NULL || *p > end)
        return NULL;
    char *f = *p;
    char *nl = memchr(f, '\n', (size_t)(end - f));
    if (nl == NULL) {
        *p = NULL;
        return f;
    }
    *nl = '\0';
    *p = nl + 1;
    return f;
}

static const char *optional(const char *f)
{
    return f != NULL && f[0] != '\0' ? f : NULL;
}

static bool status_in_contract(int status)
{
    static const int codes[] = {200, 201, 304, 400, 401, 403, 404, 405, 409, 412,
                                413, 415, 422, 503};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (status == codes[i])
            return true;
    return false;
}

static void check_response(const struct request *req, const struct response *res)
{
    if (res->status == 500 || !status_in_contract(res->status)) {
        fprintf(stderr, "fuzz_request: %s %s -> %d: %.*s\n", req->method,
                req->path, res->status, (int)(res->body_len < 2000 ? res->body_len : 2000),
                res->body ? res->body : "");
        abort();
    }
    if (res->status == 304) { /* If-None-Match: no body, the ETag */
        CHECK(res->body == NULL && res->content_type == NULL);
        CHECK(response_header(res, "ETag") != NULL);
        return;
    }
    CHECK(res->body != NULL && res->body_len > 0);
    CHECK(res->content_type != NULL);
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(res->body, res->body_len, &end, 0);
    CHECK(doc != NULL);
    /* One value; only whitespace after it (openapi.json ends in '\n'). */
    for (; end < res->body + res->body_len; end++)
        CHECK(*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t');
    if (res->status >= 400) {
        CHECK(strcmp(res->content_type, "application/problem+json") == 0);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
        CHECK(cJSON_IsNumber(st) && st->valueint == res->status);
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "type")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "title")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "detail")));
    } else {
        CHECK(strcmp(res->content_type, "application/json") == 0);
    }
    if (res->status == 401)
        CHECK(response_header(res, "WWW-Authenticate") != NULL);
    if (res->status == 405)
        CHECK(response_header(res, "Allow") != NULL);
    /* Every answer with one order has its strong ETag. */
    if (res->status == 201 || (res->status == 200 && strncmp(req->path, "/orders/", 8) == 0 &&
                               req->path[8] != '\0')) {
        const char *etag = response_header(res, "ETag");
        CHECK(etag != NULL && strncmp(etag, "\"v", 2) == 0);
    }
    if (res->status == 201) {
        const char *loc = response_header(res, "Location");
        CHECK(loc != NULL && strncmp(loc, "/orders/", 8) == 0 &&
              uuid_is_canonical(loc + 8));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
        CHECK(cJSON_IsString(id) && strcmp(id->valuestring, loc + 8) == 0);
        memcpy(last_id, loc + 8, UUID_STR_LEN + 1);
    }
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf, *end = buf + size;

    char *method = next_field(&p, end);
    char *path = next_field(&p, end);
    char *query = next_field(&p, end);
    char *ctype = next_field(&p, end);
    char *authz = next_field(&p, end);
    char *tparent = next_field(&p, end);
    char *body = p; /* the rest, newlines and NULs included */
    size_t body_len = p ? (size_t)(end - p) : 0;

    struct request req;
    memset(&req, 0, sizeof req);
    req.method = method ? method : "GET";
    if (req.method[0] == '!') {
        req.body_too_large = 1;
        req.method++;
    }

    char path_buf[512];
    req.path = path ? path : "/";
    char *at = path ? strstr(path, "@id") : NULL;
    if (at != NULL && strlen(path) < 400) {
        snprintf(path_buf, sizeof path_buf, "%.*s%s%s", (int)(at - path), path,
                 last_id[0] ? last_id : "0190a6f2-6c1e-7a3b-8c4d-5e6f708192a3",
                 at + 3);
        req.path = path_buf;
    }
    req.query = query ? query : "";
    req.content_type = optional(ctype);
    req.authorization = optional(authz);
    req.authorization_count = req.authorization ? 1 : 0;
    if (req.authorization && req.authorization[0] == '+') {
        req.authorization++;
        req.authorization_count = 2;
    }
    for (size_t i = 0; req.authorization && i < NTOKENS; i++)
        if (strcmp(req.authorization, tokens[i].name) == 0)
            req.authorization = tokens[i].header;
    req.traceparent = optional(tparent);
    if (tparent != NULL && tparent[0] == '~') {
        req.traceparent = NULL;
        char *parts[3] = {tparent + 1, NULL, NULL};
        for (int i = 1; i < 3 && parts[i - 1] != NULL; i++) {
            char *bar = strchr(parts[i - 1], '|');
            if (bar != NULL) {
                *bar = '\0';
                parts[i] = bar + 1;
            }
        }
        req.idempotency_key = optional(parts[0]);
        req.idempotency_key_count = req.idempotency_key ? 1 : 0;
        if (req.idempotency_key && req.idempotency_key[0] == '+') {
            req.idempotency_key++;
            req.idempotency_key_count = 2;
        }
        req.if_match = optional(parts[1]);
        req.if_none_match = optional(parts[2]);
    }
    req.request_id = "fuzz";
    /* The body in its own exact-size allocation, so that ASan sees a read
     * past its end (the adapter's is not NUL-terminated either). */
    char *body_copy = NULL;
    if (body_len > 0 && !req.body_too_large) {
        body_copy = malloc(body_len);
        if (body_copy == NULL) {
            free(buf);
            return 0;
        }
        memcpy(body_copy, body, body_len);
        req.body = body_copy;
        req.body_len = body_len;
    }

    struct response res;
    response_init(&res);
    app_handle(&app, &req, &res);
    if (verbose)
        fprintf(stderr, "fuzz_request: %s %s -> %d\n", req.method, req.path,
                res.status);
    check_response(&req, &res);
    if ((res.status == 201 || (res.status == 200 && strcmp(req.method, "PATCH") == 0)) &&
        ++writes >= PURGE_EVERY_WRITES)
        purge();
    response_free(&res);
    free(body_copy);
    free(buf);
    return 0;
}
