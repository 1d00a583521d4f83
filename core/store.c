#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "embedded.h"
#include "metrics.h"

/* Prepared once per process: parsing SQL on every request costs more than
 * running it. */
enum store_stmt {
    STMT_BEGIN_IMMEDIATE,
    STMT_BEGIN_READ,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_ORDER_INSERT,
    STMT_ORDER_GET,
    STMT_ORDER_SET_STATUS,
    STMT_ORDER_PAGE,
    STMT_ORDER_TOTAL,
    STMT_EVENT_INSERT,
    STMT_COUNT
};

static const char *const store_sql[STMT_COUNT] = {
    [STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STMT_BEGIN_READ] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_ORDER_INSERT] =
        "INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [STMT_ORDER_GET] =
        "SELECT id, customer_id, items, status, created_at, updated_at"
        " FROM orders WHERE id = ?1",
    /* Conditional on the status read in the same transaction: even if the
     * lock discipline were ever loosened, a stale read cannot win. */
    [STMT_ORDER_SET_STATUS] =
        "UPDATE orders SET status = ?1, updated_at = ?2"
        " WHERE id = ?3 AND status = ?4",
    [STMT_ORDER_PAGE] =
        "SELECT id, customer_id, items, status, created_at, updated_at"
        " FROM orders ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2",
    [STMT_ORDER_TOTAL] = "SELECT total FROM order_count WHERE singleton = 1",
    [STMT_EVENT_INSERT] =
        "INSERT INTO events (id, type, source, subject, time, traceparent, data,"
        " committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
    int busy_timeout_ms;
    /* When the current wait for the lock gives up (CLOCK_MONOTONIC ms).
     * Set by store_begin_write for all its attempts together; otherwise by
     * the busy handler at the start of each wait. */
    double busy_deadline_ms;
    bool begin_deadline;
    int wlock_fd;    /* the writers' queue (store_wlock_*); -1: none */
    bool wlock_held;
};

static enum store_status store_status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return STORE_FULL;
    default:
        return STORE_ERROR;
    }
}

const char *store_last_error(const struct store *st)
{
    return st && st->db ? sqlite3_errmsg(st->db) : "no database";
}

/* Runs a statement without results to its end and resets it. */
static int store_step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int store_exec(struct store *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

/* How long to sleep between two attempts at a lock, by how long the wait
 * has lasted: see store_busy_wait. */
static void store_lock_pause(double waited_ms, double left_ms)
{
    long step_us = waited_ms < 2 ? 50 : waited_ms < 20 ? 200 : 1000;
    if (step_us > left_ms * 1000)
        step_us = (long)(left_ms * 1000) + 1;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = step_us * 1000};
    nanosleep(&ts, NULL); /* EINTR: just an earlier attempt */
}

/*
 * Waiting for the write lock.  SQLite's own busy timeout sleeps 1 ms, then
 * 2, 5, 10 ms... between attempts, while the write transaction it waits for
 * takes well under a millisecond (plus its fsync): two workers writing at
 * once then spend most of their time asleep with the lock free, and two
 * workers write no faster than one.  This handler polls instead: 50 us
 * steps for the first 2 ms of a wait, 200 us up to 20 ms, then 1 ms, so a
 * writer takes the lock within a fraction of a transaction after it is
 * released, and a long wait (a lock held by a slow or stuck connection)
 * still costs little CPU.  The deadline is the configured busy timeout,
 * measured from the start of the wait (or of store_begin_write), so a
 * writer still waits at most busy_timeout_ms before STORE_BUSY.
 */
static int store_busy_wait(void *arg, int count)
{
    struct store *st = arg;
    double now = clock_monotonic_ms();
    if (count == 0 && !st->begin_deadline)
        st->busy_deadline_ms = now + st->busy_timeout_ms;
    double left_ms = st->busy_deadline_ms - now;
    if (left_ms <= 0)
        return 0; /* SQLITE_BUSY */
    store_lock_pause(st->busy_timeout_ms - left_ms, left_ms);
    return 1;
}

/*
 * The writers' queue: an flock on DATABASE-wlock, taken before BEGIN
 * IMMEDIATE and released after COMMIT or ROLLBACK.
 *
 * Why: a writer that waits inside SQLite (the busy handler above) starts a
 * read transaction at every attempt, and while some connection is reading,
 * a committing writer cannot restart the WAL from its beginning.  With two
 * workers writing back to back one of them is nearly always in such an
 * attempt: the WAL then grew past 100 MB in a 5 s benchmark instead of
 * cycling at ~4 MB, and every commit after the first thousand pages ran a
 * checkpoint with an extra fsync, so two workers wrote slower than one.
 * Waiting on this lock instead touches no SQLite lock: the one writer
 * inside SQLite commits, its WAL restarts, and the next writer follows.
 *
 * It only orders writers that use a store (the workers); the publisher, the
 * sqlite3 shell and migrations still meet in SQLite's own locking, which
 * remains what makes a write safe.  An flock is released by the kernel when
 * its holder dies, so a killed worker never leaves it held.  Where the lock
 * file cannot be created (":memory:", a read-only directory) writers queue
 * in SQLite as before.
 */
static int store_wlock_open(const char *path)
{
    if (path == NULL || path[0] == '\0' || path[0] == ':' || strncmp(path, "file:", 5) == 0)
        return -1;
    char lock_path[4096];
    int n = snprintf(lock_path, sizeof lock_path, "%s-wlock", path);
    if (n < 0 || (size_t)n >= sizeof lock_path)
        return -1;
    return open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
}

/* Polls with the busy handler's pauses, so a writer takes the lock within
 * a fraction of a transaction after it is released; false when the
 * deadline passed first. */
static bool store_wlock_acquire(struct store *st, double deadline_ms)
{
    if (st->wlock_fd < 0 || st->wlock_held)
        return true;
    double start = clock_monotonic_ms();
    for (;;) {
        if (flock(st->wlock_fd, LOCK_EX | LOCK_NB) == 0) {
            st->wlock_held = true;
            return true;
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return true; /* the lock does not work here: SQLite alone */
        double now = clock_monotonic_ms();
        if (now >= deadline_ms)
            return false;
        store_lock_pause(now - start, deadline_ms - now);
    }
}

static void store_wlock_release(struct store *st)
{
    if (st->wlock_held) {
        flock(st->wlock_fd, LOCK_UN);
        st->wlock_held = false;
    }
}

struct store *store_open(const char *path, bool synchronous_full, char *err,
                         size_t errlen)
{
    struct store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->wlock_fd = -1;
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    st->busy_timeout_ms = STORE_BUSY_TIMEOUT_MS;
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_handler(st->db, store_busy_wait, st);
    /* WAL: readers never wait for the writer, and a commit is one append.
     * synchronous=FULL syncs the WAL on every commit, so an acknowledged
     * order survives a power cut; NORMAL syncs only at checkpoints. */
    if (rc == SQLITE_OK)
        rc = store_exec(st, "PRAGMA journal_mode=WAL");
    if (rc == SQLITE_OK)
        rc = store_exec(st, synchronous_full ? "PRAGMA synchronous=FULL"
                                             : "PRAGMA synchronous=NORMAL");
    if (rc == SQLITE_OK)
        rc = store_exec(st, "PRAGMA foreign_keys=ON");
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        store_close(st);
        return NULL;
    }
    st->wlock_fd = store_wlock_open(path);
    return st;
}

void store_set_busy_timeout(struct store *st, int ms)
{
    st->busy_timeout_ms = ms < 0 ? 0 : ms;
}

/* BEGIN IMMEDIATE takes the write lock up front, so a transaction never
 * fails half-way on a lock it could not upgrade.  SQLite can still answer
 * SQLITE_BUSY without waiting out the busy timeout (a WAL recovery by
 * another connection, for one), so a begin that failed early is retried a
 * bounded number of times; one that waited the whole timeout is not, so a
 * writer never waits longer than DB_BUSY_TIMEOUT_MS. */
#define STORE_BEGIN_ATTEMPTS 3

static int store_begin_write(struct store *st)
{
    int rc = SQLITE_BUSY;
    double deadline = clock_monotonic_ms() + st->busy_timeout_ms;
    if (!store_wlock_acquire(st, deadline))
        return SQLITE_BUSY;
    /* every attempt's waiting counts against the one deadline */
    st->busy_deadline_ms = deadline;
    st->begin_deadline = true;
    for (int attempt = 0; attempt < STORE_BEGIN_ATTEMPTS && (rc & 0xff) == SQLITE_BUSY;
         attempt++) {
        if (attempt > 0) {
            if (clock_monotonic_ms() + 10 * attempt >= deadline)
                break;
            sqlite3_sleep(10 * attempt);
        }
        rc = store_step_done(st->stmt[STMT_BEGIN_IMMEDIATE]);
    }
    st->begin_deadline = false;
    if (rc != SQLITE_OK)
        store_wlock_release(st);
    return rc;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    if (st->wlock_fd >= 0)
        close(st->wlock_fd); /* releases the lock too */
    free(st);
}

/* "001_orders.sql" -> 1 */
static int migration_version(const char *name)
{
    return atoi(name);
}

int store_schema_latest(void)
{
    return migration_version(embedded_migrations[embedded_migrations_count - 1].name);
}

static int store_migration_applied(struct store *st, int version, bool *applied)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int(s, 1, version);
    rc = sqlite3_step(s);
    *applied = rc == SQLITE_ROW;
    sqlite3_finalize(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
}

static int store_record_migration(struct store *st, int version, const char *name)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "INSERT INTO schema_migrations (version, name, applied_at)"
                                " VALUES (?1, ?2, ?3)",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int(s, 1, version);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, clock_now_ms());
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One migration, one IMMEDIATE transaction: the first worker to take the
 * write lock applies it; the others wait on the lock, then find it
 * recorded and skip it. */
static int store_apply_migration(struct store *st, const struct embedded_file *m)
{
    int version = migration_version(m->name);
    bool applied = false;
    int rc = store_exec(st, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return rc;
    rc = store_exec(st, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                        " applied_at INTEGER NOT NULL)");
    if (rc == SQLITE_OK)
        rc = store_migration_applied(st, version, &applied);
    if (rc == SQLITE_OK && !applied)
        rc = store_exec(st, (const char *)m->data);
    if (rc == SQLITE_OK && !applied)
        rc = store_record_migration(st, version, m->name);
    if (rc == SQLITE_OK)
        rc = store_exec(st, "COMMIT");
    if (rc != SQLITE_OK)
        store_exec(st, "ROLLBACK");
    return rc;
}

static int store_prepare_all(struct store *st)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        if (st->stmt[i] != NULL)
            continue;
        int rc = sqlite3_prepare_v3(st->db, store_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

enum store_status store_migrate(struct store *st, char *err, size_t errlen)
{
    for (size_t i = 0; i < embedded_migrations_count; i++) {
        int rc = store_apply_migration(st, &embedded_migrations[i]);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "migration %s: %s", embedded_migrations[i].name,
                     sqlite3_errmsg(st->db));
            return store_status_of(rc);
        }
    }
    int rc = store_prepare_all(st);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "prepare: %s", sqlite3_errmsg(st->db));
        return store_status_of(rc);
    }
    return STORE_OK;
}

enum store_status store_schema_version(struct store *st, int *applied)
{
    sqlite3_stmt *s;
    *applied = 0;
    int rc = sqlite3_prepare_v2(st->db, "SELECT max(version) FROM schema_migrations",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store_status_of(rc);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *applied = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return store_status_of(rc);
}

static enum store_status store_rollback(struct store *st, enum store_status why)
{
    /* After SQLITE_FULL or an I/O error SQLite may already have rolled the
     * transaction back; a failing ROLLBACK then changes nothing. */
    if (!sqlite3_get_autocommit(st->db))
        store_step_done(st->stmt[STMT_ROLLBACK]);
    store_wlock_release(st);
    return why;
}

static int store_insert_event(struct store *st, const struct event_row *ev)
{
    sqlite3_stmt *s = st->stmt[STMT_EVENT_INSERT];
    sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ev->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ev->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ev->time, -1, SQLITE_STATIC);
    if (ev->traceparent != NULL)
        sqlite3_bind_text(s, 6, ev->traceparent, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_text(s, 7, ev->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, ev->committed_ms);
    return store_step_done(s);
}

static int store_insert_order(struct store *st, const struct order *o)
{
    sqlite3_stmt *s = st->stmt[STMT_ORDER_INSERT];
    sqlite3_bind_text(s, 1, o->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, o->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, o->items_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, order_status_name(o->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, o->created_ms);
    return store_step_done(s);
}

/* Writes the order and its event inside an open transaction, then commits. */
static enum store_status store_commit_with_event(struct store *st, int rc,
                                                 const struct order *o,
                                                 const enum order_status *previous,
                                                 const struct event_meta *meta)
{
    struct event_row ev;
    if (rc != SQLITE_OK)
        return store_rollback(st, store_status_of(rc));
    if (event_build(&ev, o, previous, meta, o->updated_ms) != 0)
        return store_rollback(st, STORE_ERROR);
    rc = store_insert_event(st, &ev);
    event_free(&ev);
    if (rc == SQLITE_OK)
        rc = store_step_done(st->stmt[STMT_COMMIT]);
    if (rc != SQLITE_OK)
        return store_rollback(st, store_status_of(rc));
    store_wlock_release(st);
    return STORE_OK;
}

enum store_status store_order_create(struct store *st, struct order *o,
                                     const struct event_meta *meta)
{
    int rc = store_begin_write(st);
    if (rc != SQLITE_OK)
        return store_status_of(rc);
    /* The clock is read under the write lock so that created_at never runs
     * backwards in commit order. */
    o->created_ms = o->updated_ms = clock_now_ms();
    o->status = ORDER_PENDING;
    if (uuid_v7_generate(o->created_ms, o->id) != 0)
        return store_rollback(st, STORE_ERROR);
    rc = store_insert_order(st, o);
    return store_commit_with_event(st, rc, o, NULL, meta);
}

/* Reads the current row of stmt into out (the statement has just returned
 * SQLITE_ROW). */
static int store_read_order(sqlite3_stmt *s, struct order *out)
{
    const unsigned char *id = sqlite3_column_text(s, 0);
    const unsigned char *customer = sqlite3_column_text(s, 1);
    const unsigned char *items = sqlite3_column_text(s, 2);
    const unsigned char *status = sqlite3_column_text(s, 3);
    memset(out, 0, sizeof *out);
    if (id == NULL || customer == NULL || items == NULL || status == NULL ||
        !order_status_parse((const char *)status, &out->status))
        return -1;
    snprintf(out->id, sizeof out->id, "%s", (const char *)id);
    out->customer_id = strdup((const char *)customer);
    out->items_json = strdup((const char *)items);
    out->created_ms = sqlite3_column_int64(s, 4);
    out->updated_ms = sqlite3_column_int64(s, 5);
    if (out->customer_id == NULL || out->items_json == NULL) {
        order_free(out);
        return -1;
    }
    return 0;
}

static enum store_status store_get_in_txn(struct store *st, const char *id,
                                          struct order *out)
{
    sqlite3_stmt *s = st->stmt[STMT_ORDER_GET];
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    enum store_status result;
    if (rc == SQLITE_ROW)
        result = store_read_order(s, out) == 0 ? STORE_OK : STORE_ERROR;
    else if (rc == SQLITE_DONE)
        result = STORE_NOT_FOUND;
    else
        result = store_status_of(rc) == STORE_OK ? STORE_ERROR : store_status_of(rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return result;
}

enum store_status store_order_get(struct store *st, const char *id,
                                  struct order *out)
{
    return store_get_in_txn(st, id, out);
}

static int store_set_status(struct store *st, const struct order *o,
                            enum order_status from)
{
    sqlite3_stmt *s = st->stmt[STMT_ORDER_SET_STATUS];
    sqlite3_bind_text(s, 1, order_status_name(o->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, o->updated_ms);
    sqlite3_bind_text(s, 3, o->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, order_status_name(from), -1, SQLITE_STATIC);
    int rc = store_step_done(s);
    if (rc == SQLITE_OK && sqlite3_changes(st->db) != 1)
        rc = SQLITE_CONSTRAINT; /* cannot happen under the write lock */
    return rc;
}

enum store_status store_order_transition(struct store *st, const char *id,
                                         enum order_status to,
                                         const struct event_meta *meta,
                                         struct order *out,
                                         enum order_status *from)
{
    int rc = store_begin_write(st);
    if (rc != SQLITE_OK)
        return store_status_of(rc);
    enum store_status found = store_get_in_txn(st, id, out);
    if (found != STORE_OK)
        return store_rollback(st, found);
    *from = out->status;
    if (!order_transition_allowed(out->status, to))
        return store_rollback(st, STORE_CONFLICT);
    out->status = to;
    out->updated_ms = clock_now_ms();
    if (out->updated_ms < out->created_ms) /* the wall clock stepped back */
        out->updated_ms = out->created_ms;
    rc = store_set_status(st, out, *from);
    enum store_status result = store_commit_with_event(st, rc, out, from, meta);
    if (result != STORE_OK) {
        order_free(out);
    }
    return result;
}

static enum store_status store_read_total(struct store *st, long long *total)
{
    sqlite3_stmt *s = st->stmt[STMT_ORDER_TOTAL];
    int rc = sqlite3_step(s);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_status_of(rc) == STORE_OK ? STORE_ERROR : store_status_of(rc);
}

static enum store_status store_read_page(struct store *st, const struct page_query *q,
                                         struct order *items, size_t *count)
{
    sqlite3_stmt *s = st->stmt[STMT_ORDER_PAGE];
    sqlite3_bind_int64(s, 1, q->limit);
    sqlite3_bind_int64(s, 2, q->offset);
    enum store_status result = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *count < (size_t)q->limit) {
        if (store_read_order(s, &items[*count]) != 0) {
            result = STORE_ERROR;
            break;
        }
        (*count)++;
    }
    if (result == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        result = store_status_of(rc) == STORE_OK ? STORE_ERROR : store_status_of(rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return result;
}

enum store_status store_order_page(struct store *st, const struct page_query *q,
                                   struct order **items, size_t *count,
                                   long long *total)
{
    *items = calloc((size_t)q->limit, sizeof **items);
    *count = 0;
    if (*items == NULL)
        return STORE_ERROR;
    /* One read transaction: the total and the page come from the same
     * snapshot, so total never disagrees with what the page shows. */
    int rc = store_step_done(st->stmt[STMT_BEGIN_READ]);
    enum store_status result = store_status_of(rc);
    if (result == STORE_OK)
        result = store_read_total(st, total);
    if (result == STORE_OK)
        result = store_read_page(st, q, *items, count);
    if (!sqlite3_get_autocommit(st->db))
        store_step_done(st->stmt[result == STORE_OK ? STMT_COMMIT : STMT_ROLLBACK]);
    if (result != STORE_OK) {
        for (size_t i = 0; i < *count; i++)
            order_free(&(*items)[i]);
        free(*items);
        *items = NULL;
        *count = 0;
    }
    return result;
}

/* Scrape-time only, so prepared on demand.  Delivered rows are pruned
 * after the retention period, so deliveries are derived from the sequence
 * (every event ever committed is delivered, pending or parked; parked rows
 * are never pruned), and failures come from a trigger-kept counter
 * (migrations/003_outbox_counters.sql). */
enum store_status store_outbox_stats(struct store *st, long long now_ms,
                                     struct outbox_stats *out)
{
    static const char sql[] =
        "SELECT"
        " (SELECT count(*) FROM events WHERE delivered_at IS NULL AND parked_at IS NULL),"
        " (SELECT min(committed_at) FROM events WHERE delivered_at IS NULL AND parked_at IS NULL),"
        " (SELECT count(*) FROM events WHERE parked_at IS NOT NULL),"
        " (SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)),"
        " (SELECT delivery_failures FROM outbox_counters WHERE singleton = 1)";
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store_status_of(rc);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->pending = sqlite3_column_int64(s, 0);
        if (sqlite3_column_type(s, 1) != SQLITE_NULL)
            out->oldest_pending_age_s = (double)(now_ms - sqlite3_column_int64(s, 1)) / 1000.0;
        if (out->oldest_pending_age_s < 0)
            out->oldest_pending_age_s = 0;
        out->parked = sqlite3_column_int64(s, 2);
        out->delivered_total = sqlite3_column_int64(s, 3) - out->pending - out->parked;
        out->delivery_failures_total = sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? STORE_OK : store_status_of(rc) == STORE_OK ? STORE_ERROR : store_status_of(rc);
}
