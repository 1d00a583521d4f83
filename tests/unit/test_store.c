/*
 * test_store.c - the store against a real SQLite file in a temporary
 * directory: migrations, the order and its outbox event in one
 * transaction, the status machine under the write lock, the page order,
 * sharing the file between connections, and SQLITE_BUSY.
 *
 * The database is also read through a second, raw sqlite3 connection, so
 * the assertions are about what is on disk, not what the store says.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "embedded_migrations.h"
#include "metrics.h"
#include "store.h"
#include "store_sqlite.h"
#include "testdir.h"

static char tmpdir[4096];
static char dbpath[4200];
static struct store *st;

static const struct event_meta META = {
    .source = "/orders",
    .traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
};

static void base_setup(void)
{
    testdir_create("store");
}

static void base_teardown(void)
{
    testdir_remove();
}

/* A store on path through the port's selection table, as the binaries
 * open it; clock NULL is the real one. */
static struct store *open_store(const char *path, int busy_ms, long long (*clock)(void),
                                char *err, size_t errlen)
{
    const struct store_options opt = {.location = path, .synchronous_full = true,
                                      .busy_timeout_ms = busy_ms, .create = true,
                                      .clock_ms = clock};
    struct store *out = NULL;
    enum store_status s = store_open(&opt, &out, err, errlen);
    ck_assert(s == STORE_OK ? out != NULL : out == NULL);
    return out;
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test-XXXXXX", testdir_path());
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(dbpath, sizeof dbpath, "%s/orders.db", tmpdir);
    char err[256] = "";
    st = open_store(dbpath, STORE_BUSY_TIMEOUT_MS, NULL, err, sizeof err);
    ck_assert_msg(st != NULL, "store_open: %s", err);
    ck_assert_str_eq(store_engine(st), "sqlite");
    ck_assert_msg(store_migrate(st, err, sizeof err) == STORE_OK, "migrate: %s", err);
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    testdir_remove_tree(tmpdir);
}

static sqlite3 *raw_open(void)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/* The single integer a query returns (-1 when it returns no row). */
static long long raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

static long long count_rows(const char *table)
{
    sqlite3 *db = raw_open();
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    long long n = raw_int(db, sql);
    sqlite3_close(db);
    return n;
}

static enum store_status create(const char *customer, const char *items_json,
                                struct order *o)
{
    memset(o, 0, sizeof *o);
    o->customer_id = strdup(customer);
    o->items_json = strdup(items_json);
    return store_order_create(st, o, &META, NULL);
}

/* One events row, by seq, as text columns. */
struct event_text {
    char *id, *type, *source, *subject, *time, *traceparent, *data;
    long long committed_at, attempts;
    int delivered_is_null;
};

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static int read_event(long long seq, struct event_text *e)
{
    sqlite3 *db = raw_open();
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT id, type, source, subject, time, traceparent,"
                                        " data, committed_at, attempts, delivered_at IS NULL"
                                        " FROM events WHERE seq = ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, seq);
    int found = sqlite3_step(s) == SQLITE_ROW;
    if (found) {
        e->id = col_dup(s, 0);
        e->type = col_dup(s, 1);
        e->source = col_dup(s, 2);
        e->subject = col_dup(s, 3);
        e->time = col_dup(s, 4);
        e->traceparent = col_dup(s, 5);
        e->data = col_dup(s, 6);
        e->committed_at = sqlite3_column_int64(s, 7);
        e->attempts = sqlite3_column_int64(s, 8);
        e->delivered_is_null = sqlite3_column_int(s, 9);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return found;
}

static void event_text_free(struct event_text *e)
{
    free(e->id);
    free(e->type);
    free(e->source);
    free(e->subject);
    free(e->time);
    free(e->traceparent);
    free(e->data);
}

/* ---- open and migrate --------------------------------------------------- */

START_TEST(test_open_fails_cleanly)
{
    char path[4300], err[256] = "";
    snprintf(path, sizeof path, "%s/no/such/dir/orders.db", tmpdir);
    struct store *bad = open_store(path, 0, NULL, err, sizeof err);
    ck_assert_ptr_null(bad);
    ck_assert_msg(strstr(err, path) != NULL, "error does not name the path: %s", err);
}
END_TEST

START_TEST(test_schema_version_latest)
{
    int applied = -1;
    ck_assert_int_eq(store_schema_version(st, &applied), STORE_OK);
    ck_assert_int_eq(applied, store_schema_latest(st));
    ck_assert_int_ge(store_schema_latest(st), 4);
    ck_assert_int_eq(store_schema_latest(st),
                     atoi(embedded_sqlite_migrations[embedded_sqlite_migrations_count - 1].name));
    ck_assert_int_eq(count_rows("schema_migrations"), (long long)embedded_sqlite_migrations_count);
}
END_TEST

START_TEST(test_schema_version_unmigrated)
{
    char path[4300], err[256];
    snprintf(path, sizeof path, "%s/fresh.db", tmpdir);
    struct store *fresh = open_store(path, 0, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(fresh);
    int applied = 42;
    /* Not an error: version 0, which /readyz and the publisher tell from
     * the latest. */
    ck_assert_int_eq(store_schema_version(fresh, &applied), STORE_OK);
    ck_assert_int_eq(applied, 0);
    ck_assert_int_ne(applied, store_schema_latest(fresh));
    store_close(fresh);
}
END_TEST

START_TEST(test_migrate_twice_is_idempotent)
{
    struct order o;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    order_free(&o);
    char err[256];
    ck_assert_msg(store_migrate(st, err, sizeof err) == STORE_OK, "%s", err);
    ck_assert_msg(store_migrate(st, err, sizeof err) == STORE_OK, "%s", err);
    ck_assert_int_eq(count_rows("schema_migrations"), (long long)embedded_sqlite_migrations_count);
    /* Nothing re-run: the counter row is not re-seeded, data is intact. */
    ck_assert_int_eq(count_rows("order_count"), 1);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("events"), 1);
    struct order *items;
    size_t n;
    long long total;
    bool more = false;
    struct page_query q = {.limit = 10, .offset = 0};
    ck_assert_int_eq(store_order_page(st, &q, &items, &n, &total, &more), STORE_OK);
    ck_assert_int_eq(total, 1);
    ck_assert_uint_eq(n, 1);
    order_free(&items[0]);
    free(items);
    int applied;
    ck_assert_int_eq(store_schema_version(st, &applied), STORE_OK);
    ck_assert_int_eq(applied, store_schema_latest(st));
}
END_TEST

START_TEST(test_wal_mode)
{
    sqlite3 *db = raw_open();
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}
END_TEST

/* An idle thread's store gives its page cache back: SQLite's memory in
 * use falls once pages read by a list are released. */
START_TEST(test_release_memory_frees_the_page_cache)
{
    for (int i = 0; i < 200; i++) {
        struct order o;
        ck_assert_int_eq(create("customer-release", "[\"item-1\",\"item-2\"]", &o), STORE_OK);
        order_free(&o);
    }
    struct order *items;
    size_t n;
    long long total;
    bool more;
    const struct page_query q = {.limit = 100};
    ck_assert_int_eq(store_order_page(st, &q, &items, &n, &total, &more), STORE_OK);
    for (size_t i = 0; i < n; i++)
        order_free(&items[i]);
    free(items);
    sqlite3_int64 before = sqlite3_memory_used();
    store_release_memory(st);
    sqlite3_int64 after = sqlite3_memory_used();
    ck_assert_msg(after < before, "SQLite's memory in use: %lld before, %lld after",
                  (long long)before, (long long)after);
    store_release_memory(NULL); /* no store: nothing to do */
}
END_TEST

START_TEST(test_last_error_and_close_null)
{
    ck_assert_ptr_nonnull(store_last_error(st));
    ck_assert_str_eq(store_last_error(NULL), "no database");
    store_close(NULL);
}
END_TEST

/* ---- create and get ---------------------------------------------------- */

START_TEST(test_create_writes_order_and_event)
{
    long long before = clock_now_ms();
    struct order o;
    ck_assert_int_eq(create("customer-123", "[\"item-1\",\"item-2\"]", &o), STORE_OK);
    long long after = clock_now_ms();

    ck_assert(uuid_is_canonical(o.id));
    ck_assert_int_eq(o.id[14], '7');
    ck_assert_int_eq(o.status, ORDER_PENDING);
    ck_assert_int_ge(o.created_ms, before);
    ck_assert_int_le(o.created_ms, after);
    ck_assert_int_eq(o.updated_ms, o.created_ms);

    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("events"), 1);

    struct event_text e;
    ck_assert(read_event(1, &e));
    ck_assert_str_eq(e.type, "order.created");
    ck_assert_str_eq(e.subject, o.id);
    ck_assert_str_eq(e.source, "/orders");
    ck_assert_str_eq(e.traceparent, META.traceparent);
    ck_assert(uuid_is_canonical(e.id));
    ck_assert_str_ne(e.id, o.id);
    ck_assert_int_eq(e.attempts, 0);
    ck_assert(e.delivered_is_null);
    ck_assert_int_eq(e.committed_at, o.created_ms);

    /* data is the order exactly as the API shows it. */
    cJSON *want = order_to_json(&o);
    cJSON *data = cJSON_Parse(e.data);
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(cJSON_Compare(want, data, 1), "event data %s", e.data);
    ck_assert_ptr_null(cJSON_GetObjectItem(data, "previousStatus"));
    ck_assert_str_eq(e.time, cJSON_GetObjectItem(data, "createdAt")->valuestring);
    cJSON_Delete(want);
    cJSON_Delete(data);
    event_text_free(&e);

    /* The stored row reads back the same. */
    struct order got;
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    ck_assert_str_eq(got.id, o.id);
    ck_assert_str_eq(got.customer_id, "customer-123");
    ck_assert_str_eq(got.items_json, "[\"item-1\",\"item-2\"]");
    ck_assert_int_eq(got.status, ORDER_PENDING);
    ck_assert_int_eq(got.created_ms, o.created_ms);
    ck_assert_int_eq(got.updated_ms, o.updated_ms);
    order_free(&got);
    order_free(&o);
}
END_TEST

START_TEST(test_create_without_traceparent)
{
    struct event_meta meta = {.source = "/shop", .traceparent = NULL};
    struct order o = {0};
    o.customer_id = strdup("c");
    o.items_json = strdup("[\"a\"]");
    ck_assert_int_eq(store_order_create(st, &o, &meta, NULL), STORE_OK);
    struct event_text e;
    ck_assert(read_event(1, &e));
    ck_assert_ptr_null(e.traceparent);
    ck_assert_str_eq(e.source, "/shop");
    event_text_free(&e);
    order_free(&o);
}
END_TEST

START_TEST(test_create_unicode_round_trip)
{
    struct order o, got;
    ck_assert_int_eq(create("J\xc3\xbcrgen \xf0\x9f\x98\x80 'q\" ;--",
                            "[\"caf\\u00e9\",\"\xe2\x82\xac\"]", &o),
                     STORE_OK);
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    ck_assert_str_eq(got.customer_id, "J\xc3\xbcrgen \xf0\x9f\x98\x80 'q\" ;--");
    ck_assert_str_eq(got.items_json, o.items_json);
    order_free(&got);
    order_free(&o);
}
END_TEST

START_TEST(test_ids_distinct_and_time_ordered)
{
    enum { N = 30 };
    struct order o[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(create("c", "[\"a\"]", &o[i]), STORE_OK);
    for (int i = 1; i < N; i++) {
        ck_assert_str_ne(o[i].id, o[i - 1].id);
        ck_assert_int_ge(o[i].created_ms, o[i - 1].created_ms);
    }
    for (int i = 0; i < N; i++)
        order_free(&o[i]);
    ck_assert_int_eq(count_rows("events"), N);
    /* Every event's subject is an order; every order has exactly one event. */
    sqlite3 *db = raw_open();
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM orders o WHERE"
                                 " (SELECT count(*) FROM events e WHERE e.subject = o.id) != 1"),
                     0);
    ck_assert_int_eq(raw_int(db, "SELECT count(DISTINCT id) FROM events"), N);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_get_not_found)
{
    struct order o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(store_order_get(st, "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60", &o),
                     STORE_NOT_FOUND);
    ck_assert_ptr_null(o.customer_id);
    /* SQL metacharacters are data, not SQL. */
    ck_assert_int_eq(store_order_get(st, "' OR '1'='1", &o), STORE_NOT_FOUND);
}
END_TEST

/* ---- transitions -------------------------------------------------------- */

START_TEST(test_transition_allowed)
{
    struct order o, out;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    enum order_status from = ORDER_DELIVERED;
    ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_OK);
    ck_assert_int_eq(from, ORDER_PENDING);
    ck_assert_int_eq(out.status, ORDER_PAID);
    ck_assert_str_eq(out.id, o.id);
    ck_assert_str_eq(out.customer_id, "c");
    ck_assert_int_eq(out.created_ms, o.created_ms);
    ck_assert_int_ge(out.updated_ms, out.created_ms);

    ck_assert_int_eq(count_rows("events"), 2);
    struct event_text e;
    ck_assert(read_event(2, &e));
    ck_assert_str_eq(e.type, "order.updated");
    ck_assert_str_eq(e.subject, o.id);
    cJSON *data = cJSON_Parse(e.data);
    ck_assert_str_eq(cJSON_GetObjectItem(data, "status")->valuestring, "paid");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "previousStatus")->valuestring, "pending");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "id")->valuestring, o.id);
    cJSON_DeleteItemFromObject(data, "previousStatus");
    cJSON *api = order_to_json(&out);
    ck_assert(cJSON_Compare(api, data, 1));
    ck_assert_str_eq(e.time, cJSON_GetObjectItem(api, "updatedAt")->valuestring);
    cJSON_Delete(api);
    cJSON_Delete(data);
    event_text_free(&e);

    struct order got;
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    ck_assert_int_eq(got.status, ORDER_PAID);
    ck_assert_int_eq(got.updated_ms, out.updated_ms);
    order_free(&got);
    order_free(&out);
    order_free(&o);
}
END_TEST

START_TEST(test_transition_full_chain)
{
    struct order o, out;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    static const enum order_status chain[] = {ORDER_PAID, ORDER_SHIPPED, ORDER_DELIVERED};
    enum order_status from;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(store_order_transition(st, o.id, chain[i], NULL, &META, &out, &from),
                         STORE_OK);
        ck_assert_int_eq(from, (enum order_status)i);
        ck_assert_int_eq(out.status, chain[i]);
        order_free(&out);
    }
    ck_assert_int_eq(count_rows("events"), 4);
    /* Delivered is final. */
    for (int to = 0; to < 4; to++) {
        ck_assert_int_eq(store_order_transition(st, o.id, (enum order_status)to, NULL, &META,
                                                &out, &from),
                         STORE_CONFLICT);
        ck_assert_int_eq(from, ORDER_DELIVERED);
        ck_assert_int_eq(out.status, ORDER_DELIVERED);
        order_free(&out);
    }
    ck_assert_int_eq(count_rows("events"), 4);
    order_free(&o);
}
END_TEST

START_TEST(test_transition_conflict_changes_nothing)
{
    struct order o, out;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    sqlite3 *db = raw_open();
    /* Make updated_at recognisable so a stray write would show. */
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE orders SET updated_at = 12345 WHERE id = '%s'", o.id);
    raw_exec(db, sql);

    static const enum order_status bad[] = {ORDER_PENDING, ORDER_SHIPPED, ORDER_DELIVERED};
    for (size_t i = 0; i < 3; i++) {
        enum order_status from = ORDER_DELIVERED;
        ck_assert_int_eq(store_order_transition(st, o.id, bad[i], NULL, &META, &out, &from),
                         STORE_CONFLICT);
        ck_assert_int_eq(from, ORDER_PENDING);
        /* out is the unchanged order, for the 409's detail. */
        ck_assert_int_eq(out.status, ORDER_PENDING);
        ck_assert_str_eq(out.id, o.id);
        ck_assert_int_eq(out.updated_ms, 12345);
        order_free(&out);
    }
    snprintf(sql, sizeof sql, "SELECT updated_at FROM orders WHERE id = '%s'"
             " AND status = 'pending'", o.id);
    ck_assert_int_eq(raw_int(db, sql), 12345);
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM events"), 1);
    /* And no transaction was left open: a raw writer gets the lock at once. */
    raw_exec(db, "BEGIN IMMEDIATE; ROLLBACK;");
    sqlite3_close(db);
    order_free(&o);
}
END_TEST

START_TEST(test_transition_not_found)
{
    struct order out;
    memset(&out, 0, sizeof out);
    enum order_status from = ORDER_SHIPPED;
    ck_assert_int_eq(store_order_transition(st, "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
                                            ORDER_PAID, NULL, &META, &out, &from),
                     STORE_NOT_FOUND);
    ck_assert_ptr_null(out.customer_id);
    ck_assert_int_eq(count_rows("events"), 0);
    /* The store still writes afterwards (no dangling transaction). */
    struct order o;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    order_free(&o);
}
END_TEST

/* ---- page --------------------------------------------------------------- */

static void page(long long limit, long long offset, struct order **items,
                 size_t *n, long long *total)
{
    struct page_query q = {.limit = limit, .offset = offset};
    bool more = false;
    ck_assert_int_eq(store_order_page(st, &q, items, n, total, &more), STORE_OK);
    ck_assert(more == (offset + (long long)*n < *total));
}

static void free_page(struct order *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order_free(&items[i]);
    free(items);
}

START_TEST(test_page_empty)
{
    struct order *items;
    size_t n = 99;
    long long total = 99;
    page(20, 0, &items, &n, &total);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(total, 0);
    free_page(items, n);
}
END_TEST

START_TEST(test_page_follows_the_sequence)
{
    /* Rows whose creation sequence disagrees with their times and ids: the
     * page follows the sequence alone, newest (highest) first. */
    sqlite3 *db = raw_open();
    raw_exec(db,
             "INSERT INTO orders (seq, id, customer_id, items, status, created_at, updated_at) VALUES"
             " (1, '00000000-0000-7000-8000-00000000000a', 'c', '[\"a\"]', 'pending', 3000, 3000),"
             " (2, '00000000-0000-7000-8000-00000000000c', 'c', '[\"a\"]', 'paid',    2000, 2000),"
             " (3, '00000000-0000-7000-8000-00000000000b', 'c', '[\"a\"]', 'pending', 2000, 2000),"
             " (4, '00000000-0000-7000-8000-00000000000d', 'c', '[\"a\"]', 'pending', 2000, 2500),"
             " (5, '00000000-0000-7000-8000-000000000001', 'c', '[\"a\"]', 'shipped', 1000, 1000)");
    sqlite3_close(db);
    static const char *const expected[] = {
        "00000000-0000-7000-8000-000000000001", /* seq 5 */
        "00000000-0000-7000-8000-00000000000d",
        "00000000-0000-7000-8000-00000000000b",
        "00000000-0000-7000-8000-00000000000c",
        "00000000-0000-7000-8000-00000000000a", /* seq 1 */
    };
    struct order *items;
    size_t n;
    long long total;
    page(100, 0, &items, &n, &total);
    ck_assert_int_eq(total, 5); /* the counter follows raw inserts too */
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(items[i].id, expected[i]);
    ck_assert_int_eq(items[0].status, ORDER_SHIPPED);
    ck_assert_int_eq(items[3].status, ORDER_PAID);
    free_page(items, n);

    /* Pages tile the list without gaps or repeats. */
    for (long long off = 0; off < 5; off += 2) {
        page(2, off, &items, &n, &total);
        ck_assert_int_eq(total, 5);
        ck_assert_uint_eq(n, off + 2 <= 5 ? 2 : 1);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(items[i].id, expected[off + (long long)i]);
        free_page(items, n);
    }

    /* The next order created follows them all. */
    struct order o;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    page(1, 0, &items, &n, &total);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0].id, o.id);
    free_page(items, n);
    order_free(&o);
}
END_TEST

/* A clock stopped at one millisecond: every order gets the same created_at,
 * and ids of one millisecond are random, so only the store's sequence can
 * list them in the order they were made (issue 11). */
static long long frozen_clock(void)
{
    return 1767225600000LL; /* 2026-01-01T00:00:00.000Z */
}

START_TEST(test_same_millisecond_listed_in_creation_order)
{
    enum { N = 24 };
    char err[256];
    store_close(st);
    st = open_store(dbpath, STORE_BUSY_TIMEOUT_MS, frozen_clock, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
    struct order made[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(create("c", "[\"a\"]", &made[i]), STORE_OK);
        ck_assert_int_eq(made[i].created_ms, frozen_clock());
    }
    struct order *items;
    size_t n;
    long long total;
    page(100, 0, &items, &n, &total);
    ck_assert_uint_eq(n, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(strcmp(items[i].id, made[N - 1 - i].id) == 0,
                      "position %d holds %s, expected the order made %dth", i, items[i].id,
                      N - i);
    free_page(items, n);
    for (int i = 0; i < N; i++)
        order_free(&made[i]);
}
END_TEST

START_TEST(test_page_offsets)
{
    struct order o[5];
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(create("c", "[\"a\"]", &o[i]), STORE_OK);
    }
    struct order *items;
    size_t n;
    long long total;
    page(2, 0, &items, &n, &total);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(total, 5);
    /* The newest is first: created last. */
    ck_assert_str_eq(items[0].id, o[4].id);
    ck_assert_str_eq(items[1].id, o[3].id);
    free_page(items, n);

    page(10, 4, &items, &n, &total);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(total, 5);
    free_page(items, n);

    page(10, 5, &items, &n, &total);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(total, 5);
    free_page(items, n);

    page(100, 1000000, &items, &n, &total);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(total, 5);
    free_page(items, n);

    page(1, 0, &items, &n, &total);
    ck_assert_uint_eq(n, 1);
    free_page(items, n);

    for (int i = 0; i < 5; i++)
        order_free(&o[i]);
}
END_TEST

START_TEST(test_page_sees_updates)
{
    struct order o, out;
    enum order_status from;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_OK);
    struct order *items;
    size_t n;
    long long total;
    page(10, 0, &items, &n, &total);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(total, 1); /* a transition is not a new order */
    ck_assert_int_eq(items[0].status, ORDER_PAID);
    free_page(items, n);
    order_free(&out);
    order_free(&o);
}
END_TEST

/* ---- sharing the file ---------------------------------------------------- */

START_TEST(test_second_store_sees_data)
{
    char err[256];
    struct store *other = open_store(dbpath, STORE_BUSY_TIMEOUT_MS, NULL, err, sizeof err);
    ck_assert_msg(other != NULL, "%s", err);
    ck_assert_msg(store_migrate(other, err, sizeof err) == STORE_OK, "%s", err);
    ck_assert_int_eq(count_rows("schema_migrations"), (long long)embedded_sqlite_migrations_count);

    struct order o, got;
    ck_assert_int_eq(create("shared", "[\"a\"]", &o), STORE_OK);
    ck_assert_int_eq(store_order_get(other, o.id, &got), STORE_OK);
    ck_assert_str_eq(got.customer_id, "shared");
    order_free(&got);

    /* A write through the other store is visible here, and a conflicting
     * second transition is refused whichever store asks. */
    struct order out;
    enum order_status from;
    ck_assert_int_eq(store_order_transition(other, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_OK);
    order_free(&out);
    ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_CONFLICT);
    ck_assert_int_eq(from, ORDER_PAID);
    order_free(&out);
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    ck_assert_int_eq(got.status, ORDER_PAID);
    order_free(&got);

    struct order *items;
    size_t n;
    long long total;
    bool more = false;
    struct page_query q = {.limit = 10, .offset = 0};
    ck_assert_int_eq(store_order_page(other, &q, &items, &n, &total, &more), STORE_OK);
    ck_assert_int_eq(total, 1);
    free_page(items, n);
    ck_assert_int_eq(count_rows("events"), 2);
    store_close(other);
    order_free(&o);
}
END_TEST

START_TEST(test_reads_while_writer_holds_lock)
{
    /* WAL: a reader is not blocked by a writer and sees only what was
     * committed. */
    struct order o;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    sqlite3 *db = raw_open();
    raw_exec(db, "BEGIN IMMEDIATE");
    raw_exec(db, "INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)"
                 " VALUES ('00000000-0000-7000-8000-000000000000', 'x', '[]', 'pending', 1, 1)");
    double t0 = clock_monotonic_ms();
    struct order *items;
    size_t n;
    long long total;
    page(10, 0, &items, &n, &total);
    ck_assert_int_eq(total, 1);
    ck_assert_uint_eq(n, 1);
    free_page(items, n);
    struct order got;
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    order_free(&got);
    ck_assert_double_lt(clock_monotonic_ms() - t0, 1000.0);
    raw_exec(db, "ROLLBACK");
    sqlite3_close(db);
    order_free(&o);
}
END_TEST

/* The busy timeout is shortened to keep the test fast; the behaviour does
 * not depend on its length. */
#define TEST_BUSY_MS 300

static void reopen_with_busy_timeout(int ms)
{
    char err[256];
    store_close(st);
    st = open_store(dbpath, ms, NULL, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
}

START_TEST(test_busy_when_write_locked)
{
    struct order o, out;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    reopen_with_busy_timeout(TEST_BUSY_MS);
    sqlite3 *db = raw_open();
    raw_exec(db, "BEGIN IMMEDIATE");

    double t0 = clock_monotonic_ms();
    struct order o2;
    ck_assert_int_eq(create("c", "[\"a\"]", &o2), STORE_BUSY);
    double waited = clock_monotonic_ms() - t0;
    /* It waited for the lock rather than failing at once. */
    ck_assert_msg(waited >= TEST_BUSY_MS * 0.9, "gave up after %.0f ms", waited);
    order_free(&o2);

    enum order_status from;
    memset(&out, 0, sizeof out);
    ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_BUSY);
    ck_assert_ptr_null(out.customer_id);

    raw_exec(db, "ROLLBACK");
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM orders"), 1);
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM events"), 1);
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM orders WHERE status = 'pending'"), 1);
    sqlite3_close(db);

    /* Once the lock is gone the same store writes again. */
    ck_assert_int_eq(create("c", "[\"a\"]", &o2), STORE_OK);
    ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_OK);
    order_free(&out);
    ck_assert_int_eq(count_rows("orders"), 2);
    ck_assert_int_eq(count_rows("events"), 3);
    order_free(&o2);
    order_free(&o);
}
END_TEST

/* The bounded BEGIN IMMEDIATE retry is for SQLITE_BUSY answered without
 * waiting; after a full busy-timeout wait it does not retry, so a writer
 * waits about one timeout before STORE_BUSY. */
START_TEST(test_busy_wait_bounded_by_timeout)
{
    reopen_with_busy_timeout(TEST_BUSY_MS);
    sqlite3 *db = raw_open();
    raw_exec(db, "BEGIN IMMEDIATE");
    double t0 = clock_monotonic_ms();
    struct order o;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_BUSY);
    double waited = clock_monotonic_ms() - t0;
    raw_exec(db, "ROLLBACK");
    sqlite3_close(db);
    order_free(&o);
    ck_assert_msg(waited < TEST_BUSY_MS * 1.8, "waited %.0f ms for a %d ms busy timeout",
                  waited, TEST_BUSY_MS);
}
END_TEST

START_TEST(test_event_insert_failure_rolls_back_order)
{
    /* Both or neither: make the outbox insert fail and check the order
     * row did not survive it. */
    sqlite3 *db = raw_open();
    raw_exec(db, "CREATE TRIGGER events_fail BEFORE INSERT ON events"
                 " BEGIN SELECT RAISE(ABORT, 'outbox refused'); END");
    struct order o;
    enum store_status s = create("c", "[\"a\"]", &o);
    ck_assert_int_ne(s, STORE_OK);
    ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM orders"), 0);
    ck_assert_int_eq(raw_int(db, "SELECT total FROM order_count"), 0);
    order_free(&o);
    raw_exec(db, "DROP TRIGGER events_fail");
    sqlite3_close(db);
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    order_free(&o);
}
END_TEST

START_TEST(test_transition_event_failure_rolls_back)
{
    struct order o, out;
    enum order_status from;
    ck_assert_int_eq(create("c", "[\"a\"]", &o), STORE_OK);
    sqlite3 *db = raw_open();
    raw_exec(db, "CREATE TRIGGER events_fail BEFORE INSERT ON events"
                 " BEGIN SELECT RAISE(ABORT, 'outbox refused'); END");
    memset(&out, 0, sizeof out);
    ck_assert_int_ne(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                     STORE_OK);
    ck_assert_ptr_null(out.customer_id); /* freed by the store on failure */
    raw_exec(db, "DROP TRIGGER events_fail");
    sqlite3_close(db);
    struct order got;
    ck_assert_int_eq(store_order_get(st, o.id, &got), STORE_OK);
    ck_assert_int_eq(got.status, ORDER_PENDING);
    order_free(&got);
    ck_assert_int_eq(count_rows("events"), 1);
    order_free(&o);
}
END_TEST

/* ---- the outbox through the port ------------------------------------------ */

/* Every /metrics statement reads through an index or one row: no plan step
 * may scan the events or orders table itself (issue 11: the parked count
 * scanned events on every scrape). */
START_TEST(test_stats_query_plans_use_indexes)
{
    sqlite3 *db = raw_open();
    for (size_t i = 0; i < store_sqlite_stats_sql_count; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", store_sqlite_stats_sql[i]);
        sqlite3_stmt *q = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        int steps = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(q, 3);
            ck_assert_ptr_nonnull(detail);
            steps++;
            bool scan = strncmp(detail, "SCAN ", 5) == 0;
            bool big_table = strstr(detail, "events") != NULL || strstr(detail, "orders") != NULL;
            ck_assert_msg(!(scan && big_table && strstr(detail, "INDEX") == NULL),
                          "\"%s\" scans a table: %s", store_sqlite_stats_sql[i], detail);
        }
        sqlite3_finalize(q);
        ck_assert_int_gt(steps, 0);
    }
    sqlite3_close(db);
}
END_TEST

START_TEST(test_outbox_fetch_commit_and_stats)
{
    struct order o[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(create("c", "[\"a\"]", &o[i]), STORE_OK);
    struct outbox_batch b = {0};
    ck_assert_int_eq(store_outbox_fetch(st, 10, clock_now_ms(), &b), STORE_OK);
    ck_assert_int_eq(b.count, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(b.events[i].subject, o[i].id);
        ck_assert_str_eq(b.events[i].type, "order.created");
        if (i > 0)
            ck_assert_int_gt(b.events[i].seq, b.events[i - 1].seq);
    }
    bool acquired = false, kept = false;
    long long other = 0, now = clock_now_ms();
    ck_assert_int_eq(store_lease_acquire(st, "me", now, now + 10000, &acquired, &other), STORE_OK);
    ck_assert(acquired);
    long long delivered[1] = {b.events[0].seq};
    struct outbox_failure f = {.seq = b.events[1].seq, .attempts = 5, .error = "rejected",
                               .parked_at = now};
    struct outbox_commit c = {.delivered = delivered, .delivered_count = 1, .delivered_at = now,
                              .failure = &f, .holder = "me", .lease_expires_at = now + 10000,
                              .sink = "amqp"};
    ck_assert_int_eq(store_outbox_commit(st, &c, &kept), STORE_OK);
    ck_assert(kept);

    ck_assert_int_eq(store_outbox_fetch(st, 10, clock_now_ms(), &b), STORE_OK);
    ck_assert_int_eq(b.count, 1);
    ck_assert_str_eq(b.events[0].subject, o[2].id);
    outbox_batch_free(&b);

    struct outbox_stats stats;
    ck_assert_int_eq(store_outbox_stats(st, now + 2000, &stats), STORE_OK);
    ck_assert_int_eq(stats.pending, 1);
    ck_assert_int_eq(stats.parked, 1);
    ck_assert_int_eq(stats.delivered_total, 1);
    ck_assert_int_eq(stats.delivery_failures_total, 5); /* 0 -> 5 attempts */
    ck_assert(stats.oldest_pending_age_s > 1.0);
    /* Per transport: one delivered, one failed attempt, from this commit. */
    ck_assert_int_eq(stats.sink_count, 1);
    ck_assert_str_eq(stats.sinks[0].name, "amqp");
    ck_assert_int_eq(stats.sinks[0].deliveries, 1);
    ck_assert_int_eq(stats.sinks[0].failures, 1);

    /* Another holder cannot take a live lease; ours is released on request. */
    ck_assert_int_eq(store_lease_acquire(st, "other", now, now + 10000, &acquired, &other),
                     STORE_OK);
    ck_assert(!acquired);
    ck_assert_int_eq(other, now + 10000);
    ck_assert_int_eq(store_lease_release(st, "me"), STORE_OK);
    ck_assert_int_eq(store_lease_acquire(st, "other", now, now + 10000, &acquired, &other),
                     STORE_OK);
    ck_assert(acquired);

    int deleted = -1;
    ck_assert_int_eq(store_outbox_prune(st, now + 1, 100, &deleted), STORE_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(count_rows("events"), 2);
    ck_assert_int_eq(store_outbox_stats(st, now, &stats), STORE_OK);
    ck_assert_int_eq(stats.delivered_total, 1); /* pruning does not lower it */
    for (int i = 0; i < 3; i++)
        order_free(&o[i]);
}
END_TEST

/* The publisher does not create the database: the workers do. */
/* Filtered totals, from the engine's count and, for an engine without one,
 * through the port's fallback (a one-row page of the same filters). */
START_TEST(test_count_with_filters_and_fallback)
{
    struct order o;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(create(i < 3 ? "alice" : "bob", "[\"x\"]", &o), STORE_OK);
        if (i == 0) {
            struct order out;
            enum order_status from;
            ck_assert_int_eq(store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out, &from),
                             STORE_OK);
            ck_assert_int_eq(out.version, 2);
            order_free(&out);
        }
        order_free(&o);
    }
    struct page_query q = {.limit = 1, .offset = 0};
    long long total = -1;
    const struct store_ops *real = st->ops;
    struct store_ops without = *real;
    without.order_count = NULL;
    for (int pass = 0; pass < 2; pass++) {
        st->ops = pass == 0 ? real : &without;
        q.has_customer = false;
        q.has_status = false;
        ck_assert_int_eq(store_order_count(st, &q, &total), STORE_OK);
        ck_assert_int_eq(total, 5);
        snprintf(q.customer_id, sizeof q.customer_id, "alice");
        q.has_customer = true;
        ck_assert_int_eq(store_order_count(st, &q, &total), STORE_OK);
        ck_assert_int_eq(total, 3);
        q.has_status = true;
        q.status = ORDER_PAID;
        ck_assert_int_eq(store_order_count(st, &q, &total), STORE_OK);
        ck_assert_int_eq(total, 1);
        q.has_customer = false;
        q.status = ORDER_PENDING;
        ck_assert_int_eq(store_order_count(st, &q, &total), STORE_OK);
        ck_assert_int_eq(total, 4);
    }
    st->ops = real;
}
END_TEST

START_TEST(test_open_without_create)
{
    char path[4300], err[256] = "";
    snprintf(path, sizeof path, "%s/absent.db", tmpdir);
    const struct store_options opt = {.location = path, .create = false};
    struct store *out = NULL;
    ck_assert_int_eq(store_open(&opt, &out, err, sizeof err), STORE_NOT_FOUND);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "does not exist") != NULL, "%s", err);
}
END_TEST

/* A location in a log line never carries a password (issue 13). */
START_TEST(test_describe_hides_credentials)
{
    char out[256];
    store_describe("postgresql://orders:s3cret@db.internal:5432/orders?sslmode=require&password=x",
                   out, sizeof out);
    ck_assert_str_eq(out, "postgresql://orders@db.internal:5432/orders");
    store_describe("postgres://db.internal/orders", out, sizeof out);
    ck_assert_str_eq(out, "postgres://db.internal/orders");
    store_describe("postgresql://u:p@h", out, sizeof out);
    ck_assert_str_eq(out, "postgresql://u@h");
    store_describe("/var/lib/orders/orders.db", out, sizeof out);
    ck_assert_str_eq(out, "/var/lib/orders/orders.db");
}
END_TEST

/* The selection table: a URL goes to PostgreSQL, which refuses a malformed
 * one at open without repeating it; a path goes to SQLite. */
START_TEST(test_selection_by_location)
{
    char err[256] = "";
    const struct store_options bad = {.location = "postgresql://u:s3cret@[::1", .create = true};
    struct store *out = NULL;
    ck_assert_int_eq(store_open(&bad, &out, err, sizeof err), STORE_ERROR);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "s3cret") == NULL, "%s", err);
    ck_assert_msg(strstr(err, "DATABASE_URL") != NULL, "%s", err);
    ck_assert_str_eq(store_engine(st), "sqlite");
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *m = tcase_create("schema");
    tcase_add_unchecked_fixture(m, base_setup, base_teardown);
    tcase_add_checked_fixture(m, setup, teardown);
    tcase_add_test(m, test_open_fails_cleanly);
    tcase_add_test(m, test_schema_version_latest);
    tcase_add_test(m, test_schema_version_unmigrated);
    tcase_add_test(m, test_migrate_twice_is_idempotent);
    tcase_add_test(m, test_wal_mode);
    tcase_add_test(m, test_last_error_and_close_null);
    tcase_add_test(m, test_release_memory_frees_the_page_cache);
    suite_add_tcase(s, m);

    TCase *c = tcase_create("orders");
    tcase_add_unchecked_fixture(c, base_setup, base_teardown);
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, test_create_writes_order_and_event);
    tcase_add_test(c, test_create_without_traceparent);
    tcase_add_test(c, test_create_unicode_round_trip);
    tcase_add_test(c, test_ids_distinct_and_time_ordered);
    tcase_add_test(c, test_get_not_found);
    tcase_add_test(c, test_transition_allowed);
    tcase_add_test(c, test_transition_full_chain);
    tcase_add_test(c, test_transition_conflict_changes_nothing);
    tcase_add_test(c, test_transition_not_found);
    tcase_add_test(c, test_event_insert_failure_rolls_back_order);
    tcase_add_test(c, test_transition_event_failure_rolls_back);
    suite_add_tcase(s, c);

    TCase *p = tcase_create("page");
    tcase_add_unchecked_fixture(p, base_setup, base_teardown);
    tcase_add_checked_fixture(p, setup, teardown);
    tcase_add_test(p, test_page_empty);
    tcase_add_test(p, test_page_follows_the_sequence);
    tcase_add_test(p, test_same_millisecond_listed_in_creation_order);
    tcase_add_test(p, test_page_offsets);
    tcase_add_test(p, test_count_with_filters_and_fallback);
    tcase_add_test(p, test_page_sees_updates);
    suite_add_tcase(s, p);

    TCase *sh = tcase_create("sharing");
    tcase_add_unchecked_fixture(sh, base_setup, base_teardown);
    tcase_add_checked_fixture(sh, setup, teardown);
    tcase_set_timeout(sh, 120);
    tcase_add_test(sh, test_second_store_sees_data);
    tcase_add_test(sh, test_stats_query_plans_use_indexes);
    tcase_add_test(sh, test_outbox_fetch_commit_and_stats);
    tcase_add_test(sh, test_open_without_create);
    tcase_add_test(sh, test_describe_hides_credentials);
    tcase_add_test(sh, test_selection_by_location);
    tcase_add_test(sh, test_reads_while_writer_holds_lock);
    tcase_add_test(sh, test_busy_when_write_locked);
    tcase_add_test(sh, test_busy_wait_bounded_by_timeout);
    suite_add_tcase(s, sh);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
