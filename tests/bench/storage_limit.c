/*
 * storage_limit - the most POST /orders can ever do on this machine: one
 * process running nothing but the service's write transaction
 *
 *     BEGIN IMMEDIATE; INSERT INTO orders ...; INSERT INTO events ...; COMMIT
 *
 * with the service's SQLite settings as they were before group commit
 * (adapters/store_sqlite.c: WAL, synchronous FULL or NORMAL from
 * DB_SYNCHRONOUS, foreign_keys, busy_timeout; statements prepared once) in
 * a loop for N seconds: one fsync per commit, the limit of a writer that
 * waits for its own sync.  The service's writers share their syncs (group
 * commit), so POST /orders can go past it.  Rows have the shape and size of
 * the service's own (UUIDv7 ids, the order JSON as event data), and the
 * schema is the project's (the database must be migrated first, e.g. with
 * orders-fcgi --migrate, so the order_count trigger runs too).
 *
 *   storage_limit DATABASE SECONDS      prints "transactions/s: N", and one
 *                                       transaction's time (p50_us, p99_us,
 *                                       max_us): the disk's own tail
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void uuid7(long long ms, char out[37])
{
    unsigned char b[16];
    if (getrandom(b + 6, 10, 0) != 10)
        abort();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((unsigned long long)ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
}

/* 2026-11-25T12:34:56.789Z */
static void rfc3339(long long ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "storage_limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void step_done(sqlite3 *db, sqlite3_stmt *s, const char *what)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        die(db, what);
    sqlite3_reset(s);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: storage_limit DATABASE SECONDS\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    if (seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "storage_limit: SECONDS must be in (0, 3600]\n");
        return 2;
    }
    const char *sync = getenv("DB_SYNCHRONOUS");
    int full = sync == NULL || sync[0] == '\0' || strcasecmp(sync, "full") == 0;

    sqlite3 *db;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        die(db, "open");
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "pragmas");

    static const char *const sql[] = {
        "BEGIN IMMEDIATE",
        "INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        "INSERT INTO events (id, type, source, subject, time, traceparent, data,"
        " committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        "COMMIT",
    };
    sqlite3_stmt *st[4];
    for (int i = 0; i < 4; i++)
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK)
            die(db, "prepare (is the database migrated?)");

    const char *customer = "customer-123", *items = "[\"item-1\",\"item-2\"]";
    long long n = 0;
    /* Each transaction's time, for the limit's own latency tail: bounded,
     * the count past the cap is still timed into the rate. */
    enum { LAT_CAP = 1 << 20 };
    static double lat_us[LAT_CAP];
    double start = mono_s(), end = start + seconds, t = start;
    while (t < end) {
        double began = t;
        char order_id[37], event_id[37], when[32], data[512];
        step_done(db, st[0], "BEGIN IMMEDIATE");
        long long ms = now_ms(); /* read under the write lock, as the store does */
        uuid7(ms, order_id);
        sqlite3_bind_text(st[1], 1, order_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[1], 2, customer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[1], 3, items, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[1], 4, "pending", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st[1], 5, ms);
        step_done(db, st[1], "INSERT orders");
        uuid7(ms, event_id);
        rfc3339(ms, when);
        snprintf(data, sizeof data,
                 "{\"id\":\"%s\",\"customerId\":\"%s\",\"items\":%s,\"status\":\"pending\","
                 "\"createdAt\":\"%s\",\"updatedAt\":\"%s\"}",
                 order_id, customer, items, when, when);
        sqlite3_bind_text(st[2], 1, event_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 2, "order.created", -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 3, "/orders", -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 4, order_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 5, when, -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 6, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          -1, SQLITE_STATIC);
        sqlite3_bind_text(st[2], 7, data, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st[2], 8, ms);
        step_done(db, st[2], "INSERT events");
        step_done(db, st[3], "COMMIT");
        t = mono_s();
        if (n < LAT_CAP)
            lat_us[n] = (t - began) * 1e6;
        n++;
    }
    double elapsed = t - start;
    printf("transactions: %lld\nseconds: %.3f\ntransactions/s: %.1f\n", n, elapsed,
           elapsed > 0 ? (double)n / elapsed : 0.0);
    /* nearest rank; all 0 when nothing committed (the rate says so too) */
    size_t timed = n < LAT_CAP ? (size_t)n : LAT_CAP;
    double p50 = 0, p99 = 0, max = 0;
    if (timed > 0) {
        qsort(lat_us, timed, sizeof lat_us[0], by_value);
        p50 = lat_us[(timed - 1) / 2];
        p99 = lat_us[(timed * 99 + 99) / 100 - 1];
        max = lat_us[timed - 1];
    }
    printf("p50_us: %.0f\np99_us: %.0f\nmax_us: %.0f\n", p50, p99, max);
    for (int i = 0; i < 4; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    return 0;
}
