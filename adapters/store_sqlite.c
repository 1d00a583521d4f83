/*
 * store_sqlite.c - the store port on SQLite: all SQL of this engine (with
 * migrations/NNN_*.sql), for the workers and the publisher alike.
 *
 * One connection per thread (a worker has several) in WAL mode: readers
 * never wait for the writer, and a commit is one append.  Every write is one BEGIN IMMEDIATE
 * transaction holding the order change and its outbox event, so both or
 * neither are committed, and concurrent writers queue on the database lock
 * instead of failing half-way.  SQLite has one writer at a time, so the
 * events' seq (AUTOINCREMENT) and the orders' seq are commit order.
 *
 * Statements are prepared once (parsing SQL on every request costs more
 * than running it) and reset right after use: a statement left mid-step
 * holds a read snapshot open, and an open snapshot stops WAL checkpoints
 * from finishing, so the WAL would grow without bound.
 */
#include "store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "embedded_migrations.h"
#include "log.h"
#include "metrics.h"

/* The writers' turns and the group commit's counters, in the first bytes
 * of DATABASE-wlock, mapped shared by every process that writes
 * (sqlite_wlock_*, sqlite_group_*).  The turns compare by the sign of
 * their difference, so they may wrap; the group commit's points are 64-bit
 * and never do. */
struct wlock_turns {
    _Atomic uint32_t next;    /* the ticket the next writer draws */
    _Atomic uint32_t serving; /* the ticket whose turn it is */
    _Atomic uint32_t waiting; /* writers asleep on serving (futex) */
    uint32_t reserved;
    /* Group commit: points in the commit order (one per commit, and one per
     * write transaction rolled back, each taken with the write lock held),
     * the highest point a completed sync covers, and the highest a failed
     * sync was to cover. */
    _Atomic uint64_t points;
    _Atomic uint64_t synced;
    _Atomic uint64_t sync_failed;
    /* The token of the writer syncing now (0: none; futex waits), and the
     * source of tokens. */
    _Atomic uint32_t syncer;
    _Atomic uint32_t syncer_tokens;
};
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the writers' turns must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the group commit's points must be lock-free");

enum sqlite_stmt {
    STMT_BEGIN_IMMEDIATE,
    STMT_BEGIN_READ,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_ORDER_INSERT,
    STMT_ORDER_GET,
    STMT_ORDER_SET_STATUS,
    STMT_PAGE_ALL,             /* the page statements: by filter, in this order */
    STMT_PAGE_STATUS,
    STMT_PAGE_CUSTOMER,
    STMT_PAGE_CUSTOMER_STATUS,
    STMT_ORDER_TOTAL,          /* the totals: by filter, in the same order */
    STMT_TOTAL_STATUS,
    STMT_TOTAL_CUSTOMER,
    STMT_TOTAL_CUSTOMER_STATUS,
    STMT_EVENT_INSERT,
    STMT_IDEMPOTENCY_GET,
    STMT_IDEMPOTENCY_PUT,
    STMT_IDEMPOTENCY_PRUNE,
    STMT_WORKER_COUNT, /* the statements above are prepared at migration */
    STMT_STATS_PENDING = STMT_WORKER_COUNT,
    STMT_STATS_OLDEST,
    STMT_STATS_PARKED,
    STMT_STATS_SEQUENCE,
    STMT_STATS_FAILURES,
    STMT_STATS_SINKS,
    STMT_DATA_VERSION,
    STMT_FETCH,
    STMT_MARK,
    STMT_FAIL,
    STMT_SINK_COUNT,
    STMT_LEASE_PEEK,
    STMT_LEASE_TAKE,
    STMT_LEASE_RENEW,
    STMT_LEASE_RELEASE,
    STMT_PRUNE,
    STMT_SCHEMA_TABLE,
    STMT_SCHEMA_VERSION,
    STMT_COUNT
};

#define SQL_STATS_PENDING \
    "SELECT count(*) FROM events WHERE delivered_at IS NULL AND parked_at IS NULL"
#define SQL_STATS_OLDEST \
    "SELECT committed_at FROM events WHERE delivered_at IS NULL AND parked_at IS NULL" \
    " ORDER BY seq LIMIT 1"
#define SQL_STATS_PARKED "SELECT count(*) FROM events WHERE parked_at IS NOT NULL"
/* sqlite_sequence has one row per AUTOINCREMENT table: one here. */
#define SQL_STATS_SEQUENCE \
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"
#define SQL_STATS_FAILURES "SELECT delivery_failures FROM outbox_counters WHERE singleton = 1"
/* A handful of rows, one per transport ever used (migrations/005). */
#define SQL_STATS_SINKS \
    "SELECT sink, deliveries, failures FROM publisher_sink_counters ORDER BY sink LIMIT 8"

const char *const store_sqlite_stats_sql[] = {
    SQL_STATS_PENDING, SQL_STATS_OLDEST, SQL_STATS_PARKED, SQL_STATS_SEQUENCE, SQL_STATS_FAILURES,
    SQL_STATS_SINKS,
};
const size_t store_sqlite_stats_sql_count =
    sizeof store_sqlite_stats_sql / sizeof store_sqlite_stats_sql[0];

static const char *const sqlite_sql[STMT_COUNT] = {
    [STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STMT_BEGIN_READ] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    /* seq: the next in creation order.  max(seq) is one step down the
     * unique index orders_by_seq, and the write lock is held, so no two
     * orders can draw the same number (migrations/004). */
    [STMT_ORDER_INSERT] =
        "INSERT INTO orders (seq, id, customer_id, items, status, created_at, updated_at)"
        " VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM orders), ?1, ?2, ?3, ?4, ?5, ?5)",
    [STMT_ORDER_GET] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE id = ?1",
    /* Conditional on the status read in the same transaction: even if the
     * lock discipline were ever loosened, a stale read cannot win. */
    [STMT_ORDER_SET_STATUS] =
        "UPDATE orders SET status = ?1, updated_at = ?2, version = version + 1"
        " WHERE id = ?3 AND status = ?4",
    /* Pages (migrations/006): each walks one index newest first from the
     * cursor's position (:after; the largest seq for offset pages) and
     * stops after :limit rows, so a cursor page costs the same at any
     * depth.  One statement per filter combination, so that SQLite plans
     * each with its own index rather than one plan for all. */
    [STMT_PAGE_ALL] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE seq < :after ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    [STMT_PAGE_STATUS] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE status = :status AND seq < :after"
        " ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    [STMT_PAGE_CUSTOMER] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE customer_id = :customer AND seq < :after"
        " ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    [STMT_PAGE_CUSTOMER_STATUS] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE customer_id = :customer AND status = :status AND seq < :after"
        " ORDER BY seq DESC LIMIT :limit OFFSET :offset",
    /* Totals: the unfiltered and by-status ones are trigger-kept rows; a
     * customer's are counted on its index range. */
    [STMT_ORDER_TOTAL] = "SELECT total FROM order_count WHERE singleton = 1",
    [STMT_TOTAL_STATUS] = "SELECT total FROM order_status_count WHERE status = :status",
    [STMT_TOTAL_CUSTOMER] = "SELECT count(*) FROM orders WHERE customer_id = :customer",
    [STMT_TOTAL_CUSTOMER_STATUS] =
        "SELECT count(*) FROM orders WHERE customer_id = :customer AND status = :status",
    [STMT_IDEMPOTENCY_GET] =
        "SELECT fingerprint, order_id, expires_at FROM idempotency_keys"
        " WHERE caller = ?1 AND key = ?2",
    /* OR REPLACE: an expired row of the same key gives way. */
    [STMT_IDEMPOTENCY_PUT] =
        "INSERT OR REPLACE INTO idempotency_keys"
        " (caller, key, fingerprint, order_id, created_at, expires_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* A few expired keys per keyed create, oldest first, through the
     * expiry index: the table stays the size of one TTL's keys without a
     * sweeper and without a long transaction. */
    [STMT_IDEMPOTENCY_PRUNE] =
        "DELETE FROM idempotency_keys WHERE (caller, key) IN"
        " (SELECT caller, key FROM idempotency_keys WHERE expires_at <= ?1"
        " ORDER BY expires_at LIMIT 16)",
    [STMT_EVENT_INSERT] =
        "INSERT INTO events (id, type, source, subject, time, traceparent, data,"
        " committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* /metrics, on a request worker: each reads one row or walks a partial
     * index that holds only the rows it counts (tests check the plans).
     * Delivered rows are pruned after the retention period, so deliveries
     * are derived from the sequence (every event ever committed is
     * delivered, pending or parked; parked rows are never pruned), and
     * failures come from a trigger-kept counter (migrations/003).  The
     * WHERE clauses repeat the partial indexes' word for word, which is
     * what lets SQLite use them. */
    [STMT_STATS_PENDING] = SQL_STATS_PENDING,
    [STMT_STATS_OLDEST] = SQL_STATS_OLDEST,
    [STMT_STATS_PARKED] = SQL_STATS_PARKED,
    [STMT_STATS_SEQUENCE] = SQL_STATS_SEQUENCE,
    [STMT_STATS_FAILURES] = SQL_STATS_FAILURES,
    [STMT_STATS_SINKS] = SQL_STATS_SINKS,
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_FETCH] =
        "SELECT seq, id, type, source, subject, time, traceparent, data,"
        " attempts, COALESCE(next_attempt_at, 0)"
        " FROM events WHERE delivered_at IS NULL AND parked_at IS NULL"
        " ORDER BY seq LIMIT ?1",
    [STMT_MARK] = "UPDATE events SET delivered_at = ?1"
                  " WHERE seq = ?2 AND delivered_at IS NULL",
    [STMT_FAIL] = "UPDATE events SET attempts = ?2, last_error = ?3,"
                  " next_attempt_at = ?4, parked_at = ?5"
                  " WHERE seq = ?1 AND delivered_at IS NULL",
    [STMT_SINK_COUNT] =
        "INSERT INTO publisher_sink_counters (sink, deliveries, failures) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (sink) DO UPDATE SET deliveries = deliveries + excluded.deliveries,"
        " failures = failures + excluded.failures",
    [STMT_LEASE_PEEK] = "SELECT holder, expires_at FROM publisher_lease WHERE singleton = 1",
    [STMT_LEASE_TAKE] = "INSERT OR REPLACE INTO publisher_lease (singleton, holder, expires_at)"
                        " VALUES (1, ?1, ?2)",
    [STMT_LEASE_RENEW] = "UPDATE publisher_lease SET expires_at = ?2"
                         " WHERE singleton = 1 AND holder = ?1",
    [STMT_LEASE_RELEASE] = "DELETE FROM publisher_lease WHERE singleton = 1 AND holder = ?1",
    [STMT_PRUNE] = "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                   " WHERE delivered_at IS NOT NULL AND delivered_at < ?1 LIMIT ?2)",
    [STMT_SCHEMA_TABLE] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    [STMT_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
};


struct sqlite_store {
    struct store base; /* first: core sees only this */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
    long long (*clock_ms)(void);
    char *path;
    int busy_timeout_ms;
    bool synchronous_full; /* how it was opened, for sqlite_reopen */
    bool create;
    /* The extended code of the failure that ended the last write, taken
     * before its ROLLBACK (0: see sqlite3_extended_errcode). */
    int failure_code;
    bool reconnect; /* the last sqlite_reopen failed: try again */
    /* When the current wait for the lock gives up (CLOCK_MONOTONIC ms).
     * Set by sqlite_begin_write for all its attempts together; otherwise by
     * the busy handler at the start of each wait. */
    double busy_deadline_ms;
    bool begin_deadline;
    /* store_take_timing: ms since the last take, and when the write
     * transaction under way took the lock (0: none) */
    struct store_timing timing;
    double tx_started_ms;
    int wlock_fd;    /* the writers' queue (sqlite_wlock_*); -1: none */
    bool wlock_held;
    struct wlock_turns *turns; /* the queue's order, mapped from the lock
                                * file; NULL: the flock alone */
    uint32_t ticket;           /* this writer's turn, while wlock_held */
    /* Group commit (sqlite_group_*): on when DB_SYNCHRONOUS=full and the
     * turns are mapped. */
    bool group_commit;
    int inotify_fd;  /* the change signal; -1: not (yet) watching */
    bool inotify_failed;
    char *db_name;   /* basename of the file: its -wal, -shm, -journal share it */
    size_t db_name_len;
};

/* A bind that runs only when every earlier one succeeded, so that a chain
 * of them keeps the first failure. */
#define SQLITE_BIND(rc, call) ((rc) = (rc) == SQLITE_OK ? (call) : (rc))

static struct sqlite_store *sqlite_of(struct store *st)
{
    return (struct sqlite_store *)st;
}

static enum store_status sqlite_status_of(int rc)
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

/* For a statement that was expected to return a row or finish: a code that
 * maps to STORE_OK here is still a failure. */
static enum store_status sqlite_failure_of(int rc)
{
    enum store_status s = sqlite_status_of(rc);
    return s == STORE_OK ? STORE_ERROR : s;
}

static const char *sqlite_last_error(const struct store *st)
{
    const struct sqlite_store *s = (const struct sqlite_store *)st;
    return s->db != NULL ? sqlite3_errmsg(s->db) : "no database";
}

/* The statement, prepared on first use (those the workers need are all
 * prepared at migration, so a broken one stops the start, not a request). */
static sqlite3_stmt *sqlite_stmt(struct sqlite_store *s, enum sqlite_stmt which)
{
    if (s->stmt[which] == NULL &&
        sqlite3_prepare_v3(s->db, sqlite_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                           &s->stmt[which], NULL) != SQLITE_OK)
        return NULL;
    return s->stmt[which];
}

/* Runs a statement to its end and resets it (rows, if any, are ignored). */
static int sqlite_step_done(sqlite3_stmt *q)
{
    int rc;
    if (q == NULL)
        return SQLITE_ERROR;
    do
        rc = sqlite3_step(q);
    while (rc == SQLITE_ROW);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int sqlite_run(struct sqlite_store *s, enum sqlite_stmt which)
{
    return sqlite_step_done(sqlite_stmt(s, which));
}

/* One integer from a one-row statement (0 when the value is NULL). */
static int sqlite_one_int(struct sqlite_store *s, enum sqlite_stmt which, long long *out)
{
    sqlite3_stmt *q = sqlite_stmt(s, which);
    if (q == NULL)
        return SQLITE_ERROR;
    int rc = sqlite3_step(q);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_ERROR : rc;
}

static int sqlite_exec(struct sqlite_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* ---- waiting for the write lock ---------------------------------------- */

/* How long to sleep between two attempts at a lock, by how long the wait
 * has lasted: see sqlite_busy_wait. */
static void sqlite_lock_pause(double waited_ms, double left_ms)
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
 * measured from the start of the wait (or of sqlite_begin_write), so a
 * writer still waits at most busy_timeout_ms before STORE_BUSY.
 */
static int sqlite_busy_wait(void *arg, int count)
{
    struct sqlite_store *s = arg;
    double now = clock_monotonic_ms();
    if (count == 0 && !s->begin_deadline)
        s->busy_deadline_ms = now + s->busy_timeout_ms;
    double left_ms = s->busy_deadline_ms - now;
    if (left_ms <= 0)
        return 0; /* SQLITE_BUSY */
    sqlite_lock_pause(s->busy_timeout_ms - left_ms, left_ms);
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
 * It orders the transactions begun here (workers and publisher); the
 * sqlite3 shell, migrations and single-statement writes still meet in
 * SQLite's own locking, which remains what makes a write safe.  An flock is
 * released by the kernel when its holder dies, so a killed process never
 * leaves it held.  Where the lock file cannot be created (":memory:", a
 * read-only directory) writers queue in SQLite as before.
 */
static int sqlite_wlock_open(const char *path)
{
    if (path == NULL || path[0] == '\0' || path[0] == ':' || strncmp(path, "file:", 5) == 0)
        return -1;
    char lock_path[4096];
    int n = snprintf(lock_path, sizeof lock_path, "%s-wlock", path);
    if (n < 0 || (size_t)n >= sizeof lock_path)
        return -1;
    return open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
}

/*
 * Turns: the flock alone is not fair.  A writer that has just committed and
 * comes straight back with its next write (a thread on a kept-alive
 * connection, the publisher's next batch) polls again at once, while the
 * others are asleep between polls: with 8 writers or more POST's p99 went
 * to a second.  So the writers also take a ticket in a queue shared through
 * the lock file (a ticket lock: `next` to draw, `serving` to wait for,
 * futex waits on the shared mapping) and poll the flock only once it is
 * their turn: first come, first served, across threads and processes.
 *
 * The flock stays what excludes; the tickets only order.  A writer that
 * died with a ticket (killed holding the lock or waiting for it) would
 * stop the queue, so a writer that sees `serving` stand still for
 * WLOCK_STALL_MS moves it on by one; the flock still keeps any overtaking
 * writer out until the holder, if alive, is done.  A writer whose busy
 * timeout ends while waiting leaves its ticket behind, which is skipped the
 * same way.  Where the file cannot be mapped the writers use the flock
 * alone, as before.
 */
#define WLOCK_STALL_MS 250.0

static struct wlock_turns *sqlite_wlock_map(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return NULL;
    /* Two processes growing it at once both write zeros: no harm. */
    if (st.st_size < (off_t)sizeof(struct wlock_turns) &&
        ftruncate(fd, (off_t)sizeof(struct wlock_turns)) != 0)
        return NULL;
    void *m = mmap(NULL, sizeof(struct wlock_turns), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return m == MAP_FAILED ? NULL : m;
}

static long sqlite_futex(_Atomic uint32_t *addr, int op, uint32_t val,
                         const struct timespec *timeout)
{
    /* not FUTEX_PRIVATE_FLAG: the waiters are in several processes */
    return syscall(SYS_futex, (uint32_t *)addr, op, val, timeout, NULL, 0);
}

/* Waits until it is this writer's turn; false when the deadline passed
 * first (its ticket is then skipped by those behind it). */
static bool sqlite_wlock_wait_turn(struct sqlite_store *s, double deadline_ms)
{
    struct wlock_turns *t = s->turns;
    uint32_t my = s->ticket = atomic_fetch_add(&t->next, 1);
    uint32_t seen = atomic_load(&t->serving);
    double seen_since = clock_monotonic_ms();
    for (;;) {
        uint32_t cur = atomic_load(&t->serving);
        if ((int32_t)(my - cur) <= 0)
            return true;
        double now = clock_monotonic_ms();
        if (cur != seen) {
            seen = cur;
            seen_since = now;
        } else if (now - seen_since >= WLOCK_STALL_MS) {
            /* the writer whose turn it is seems gone: its turn passes */
            atomic_compare_exchange_strong(&t->serving, &cur, cur + 1);
            seen_since = now;
            continue;
        }
        if (now >= deadline_ms)
            return false;
        double wait_ms = deadline_ms - now;
        double stall_left = seen_since + WLOCK_STALL_MS - now;
        if (stall_left < wait_ms)
            wait_ms = stall_left;
        if (wait_ms < 0.05)
            wait_ms = 0.05;
        long long wait_ns = (long long)(wait_ms * 1e6);
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000),
                              .tv_nsec = (long)(wait_ns % 1000000000)};
        atomic_fetch_add(&t->waiting, 1);
        /* returns at once when serving is no longer cur */
        sqlite_futex(&t->serving, FUTEX_WAIT, cur, &ts);
        atomic_fetch_sub(&t->waiting, 1);
    }
}

/* Ends this writer's turn: the next ticket's writer goes. */
static void sqlite_wlock_pass_turn(struct sqlite_store *s)
{
    struct wlock_turns *t = s->turns;
    uint32_t my = s->ticket;
    /* fails when a stalled queue was moved past us: nothing to pass on */
    atomic_compare_exchange_strong(&t->serving, &my, my + 1);
    if (atomic_load(&t->waiting) > 0)
        sqlite_futex(&t->serving, FUTEX_WAKE, INT_MAX, NULL);
}

/* Waits for this writer's turn, then polls the flock with the busy
 * handler's pauses (it is free at once unless a writer outside the turns,
 * or one that overtook a stalled queue, holds it); false when the deadline
 * passed first. */
static bool sqlite_wlock_acquire(struct sqlite_store *s, double deadline_ms)
{
    if (s->wlock_fd < 0 || s->wlock_held)
        return true;
    if (s->turns != NULL && !sqlite_wlock_wait_turn(s, deadline_ms))
        return false;
    double start = clock_monotonic_ms();
    bool unusable = false;
    for (;;) {
        if (flock(s->wlock_fd, LOCK_EX | LOCK_NB) == 0) {
            s->wlock_held = true;
            return true;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            unusable = true; /* the lock does not work here: SQLite alone */
            break;
        }
        double now = clock_monotonic_ms();
        if (now >= deadline_ms)
            break;
        sqlite_lock_pause(now - start, deadline_ms - now);
    }
    if (s->turns != NULL)
        sqlite_wlock_pass_turn(s);
    return unusable;
}

static void sqlite_wlock_release(struct sqlite_store *s)
{
    if (s->wlock_held) {
        flock(s->wlock_fd, LOCK_UN);
        s->wlock_held = false;
        if (s->turns != NULL)
            sqlite_wlock_pass_turn(s);
    }
}

/*
 * Group commit.  With synchronous=FULL every COMMIT syncs the WAL while it
 * holds the write lock, so the writers of all processes take turns at the
 * disk's flush: one commit per fsync, and each turn handed to a thread of
 * another process that must first be scheduled (POST ran at 45% of one
 * process committing in a loop).  Instead, with DB_SYNCHRONOUS=full the
 * connections run synchronous=NORMAL (a commit appends its frames to the
 * WAL and syncs nothing), and each writer, with the lock still held after
 * its COMMIT, takes the next point in the commit order; it gives up the
 * lock and waits until a sync of the WAL that began after its point was
 * taken has completed, before its answer.  One writer at a time syncs, for
 * every point taken so far; those who took theirs while it synced are
 * covered by the next sync.  The lock is held only for the appends, and
 * one fsync makes many commits durable.
 *
 * What must hold:
 *   - Nothing is acknowledged before it is on disk.  A write transaction
 *     that rolls back (a replayed create, a status conflict) also takes a
 *     point and waits for it: a sync that began after the point covers
 *     everything it read, whoever committed it (counted or not: a writer
 *     killed between its COMMIT and its point, a COMMIT that reported an
 *     error after committing).
 *   - A sync that fails fails every waiter whose point it was to cover
 *     (STORE_FULL, a 503: the outcome unknown to the client), even if a
 *     later sync succeeds: after a failed fsync Linux may have dropped the
 *     pages, and the next fsync of the file reports success.  Later
 *     commits go on as with SQLite's own FULL, which has the same limit.
 *   - The WAL stays consistent: synchronous=NORMAL in WAL mode is safe from
 *     corruption (SQLite syncs the WAL before each checkpoint, the database
 *     after it, and the WAL's header when the WAL is reused), and a sync of
 *     the file covers every frame written before it began, whoever wrote
 *     them.
 *   - The trade-off: a commit is visible to other connections from the end
 *     of its COMMIT, up to one fsync before it is durable.  A reader (a GET,
 *     a list) can see an order a power cut then takes back, one whose
 *     creator had not yet had its 201.  The publisher never delivers such
 *     an event: with DB_SYNCHRONOUS=full it syncs the WAL after each fetch
 *     that found events (sqlite_outbox_fetch), whether or not its own
 *     process could map the counters.
 *   - A syncer that died (killed mid-fsync) holds its token: a waiter that
 *     sees neither `synced` nor the token move for SYNC_STALL_MS takes the
 *     token over.  Two syncs at once are harmless.
 *   - Waiters sleep on the token, which the syncer clears after it has
 *     raised `synced`: a waiter that read the token before it was cleared
 *     is woken, one that reads it after sees the new `synced`.
 */
#define SYNC_STALL_MS 250.0

/* A place in the commit order to wait for: the point, and the last failed
 * sync as it stood before the point was taken. */
struct sqlite_durable {
    uint64_t point;
    uint64_t failed_before;
};

/* Raises *at to value unless it is already there or past it. */
static void sqlite_raise(_Atomic uint64_t *at, uint64_t value)
{
    uint64_t cur = atomic_load(at);
    while (cur < value && !atomic_compare_exchange_weak(at, &cur, value))
        ;
}

/* Takes the next point (the write lock held, the transaction ended). */
static struct sqlite_durable sqlite_durable_point(struct sqlite_store *s)
{
    struct sqlite_durable d;
    d.failed_before = atomic_load(&s->turns->sync_failed);
    d.point = atomic_fetch_add(&s->turns->points, 1) + 1;
    return d;
}

/* Syncs the WAL: every frame written before this call is on disk when it
 * returns SQLITE_OK, and with the counters mapped, every point taken
 * before it is durable.  A connection with no journal file open (an
 * in-memory database) has nothing to sync. */
static int sqlite_wal_sync(struct sqlite_store *s)
{
    struct wlock_turns *t = s->turns;
    uint64_t upto = t != NULL ? atomic_load(&t->points) : 0;
    sqlite3_file *wal = NULL;
    int rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
    if (rc == SQLITE_OK && wal != NULL && wal->pMethods != NULL)
        rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
        if (t != NULL)
            sqlite_raise(&t->sync_failed, upto);
        struct log_field f[] = {LOG_STR("database", s->path), LOG_STR("error", sqlite3_errstr(rc))};
        log_emit(log_process(), LOG_ERROR, NULL,
                 "syncing the database's WAL failed: the writes waiting for it are answered"
                 " 503, their outcome unknown",
                 f, LOG_COUNT(f));
        return rc;
    }
    if (t != NULL)
        sqlite_raise(&t->synced, upto);
    return SQLITE_OK;
}

/* Waits until d's point is durable, syncing for everyone when nobody else
 * is; SQLITE_IOERR_FSYNC when a sync that was to cover it failed. */
static int sqlite_group_wait(struct sqlite_store *s, struct sqlite_durable d)
{
    struct wlock_turns *t = s->turns;
    uint64_t seen_synced = atomic_load(&t->synced);
    uint32_t seen_syncer = atomic_load(&t->syncer);
    double seen_since = clock_monotonic_ms();
    for (;;) {
        uint64_t failed = atomic_load(&t->sync_failed);
        if (failed != d.failed_before && failed >= d.point)
            return SQLITE_IOERR_FSYNC;
        uint64_t synced = atomic_load(&t->synced);
        if (synced >= d.point)
            return SQLITE_OK;
        uint32_t syncer = atomic_load(&t->syncer);
        double now = clock_monotonic_ms();
        if (synced != seen_synced || syncer != seen_syncer) {
            seen_synced = synced;
            seen_syncer = syncer;
            seen_since = now;
        }
        if (syncer == 0 || now - seen_since >= SYNC_STALL_MS) {
            uint32_t mine = atomic_fetch_add(&t->syncer_tokens, 1) + 1;
            if (mine == 0)
                mine = atomic_fetch_add(&t->syncer_tokens, 1) + 1;
            if (!atomic_compare_exchange_strong(&t->syncer, &syncer, mine))
                continue; /* another writer took it first: wait for that one */
            int rc = sqlite_wal_sync(s);
            /* fails when a waiter took a stalled token over: it is theirs */
            atomic_compare_exchange_strong(&t->syncer, &mine, 0);
            sqlite_futex(&t->syncer, FUTEX_WAKE, INT_MAX, NULL);
            if (rc != SQLITE_OK)
                return rc;
            continue;
        }
        double wait_ms = seen_since + SYNC_STALL_MS - now;
        long long wait_ns = (long long)(wait_ms * 1e6) + 1;
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000),
                              .tv_nsec = (long)(wait_ns % 1000000000)};
        /* returns at once when the token is no longer the one read */
        sqlite_futex(&t->syncer, FUTEX_WAIT, syncer, &ts);
    }
}

/* BEGIN IMMEDIATE takes the write lock up front, so a transaction never
 * fails half-way on a lock it could not upgrade.  SQLite can still answer
 * SQLITE_BUSY without waiting out the busy timeout (a WAL recovery by
 * another connection, for one), so a begin that failed early is retried a
 * bounded number of times; one that waited the whole timeout is not, so a
 * writer never waits longer than DB_BUSY_TIMEOUT_MS. */
#define SQLITE_BEGIN_ATTEMPTS 3

/* The end of a wait for the write lock, and of a write transaction. */
static void sqlite_lock_waited(struct sqlite_store *s, double since_ms, bool got_it)
{
    double now = clock_monotonic_ms();
    s->timing.lock_wait_ms += now - since_ms;
    s->tx_started_ms = got_it ? now : 0;
}

static void sqlite_tx_ended(struct sqlite_store *s)
{
    if (s->tx_started_ms > 0)
        s->timing.transaction_ms += clock_monotonic_ms() - s->tx_started_ms;
    s->tx_started_ms = 0;
}

static void sqlite_take_timing(struct store *st, struct store_timing *out)
{
    struct sqlite_store *s = sqlite_of(st);
    *out = s->timing;
    memset(&s->timing, 0, sizeof s->timing);
}

static int sqlite_begin_write(struct sqlite_store *s)
{
    int rc = SQLITE_BUSY;
    double start = clock_monotonic_ms();
    double deadline = start + s->busy_timeout_ms;
    if (!sqlite_wlock_acquire(s, deadline)) {
        sqlite_lock_waited(s, start, false);
        return SQLITE_BUSY;
    }
    /* every attempt's waiting counts against the one deadline */
    s->busy_deadline_ms = deadline;
    s->begin_deadline = true;
    for (int attempt = 0; attempt < SQLITE_BEGIN_ATTEMPTS && (rc & 0xff) == SQLITE_BUSY;
         attempt++) {
        if (attempt > 0) {
            if (clock_monotonic_ms() + 10 * attempt >= deadline)
                break;
            sqlite3_sleep(10 * attempt);
        }
        rc = sqlite_run(s, STMT_BEGIN_IMMEDIATE);
    }
    s->begin_deadline = false;
    sqlite_lock_waited(s, start, rc == SQLITE_OK);
    if (rc != SQLITE_OK)
        sqlite_wlock_release(s);
    return rc;
}

static bool sqlite_in_transaction(const struct sqlite_store *s)
{
    return s->db != NULL && !sqlite3_get_autocommit(s->db);
}

/* Ends a write transaction without its changes.  What it read (a
 * replayed create's order, the status of a conflict) is answered only
 * once durable (see group commit): with the counters, by a point of its
 * own; without them (a process that could not map them, while others may
 * group-commit), by a sync of the WAL. */
static enum store_status sqlite_rollback(struct sqlite_store *s, enum store_status why)
{
    bool began = s->tx_started_ms > 0; /* a write transaction, not a failed begin */
    if (s->failure_code == 0)
        s->failure_code = sqlite3_extended_errcode(s->db);
    /* After SQLITE_FULL or an I/O error SQLite may already have rolled the
     * transaction back; a failing ROLLBACK then changes nothing. */
    if (sqlite_in_transaction(s))
        sqlite_run(s, STMT_ROLLBACK);
    struct sqlite_durable d = {0, 0};
    if (began && s->group_commit)
        d = sqlite_durable_point(s);
    sqlite_tx_ended(s);
    sqlite_wlock_release(s);
    int rc = SQLITE_OK;
    if (began && s->group_commit)
        rc = sqlite_group_wait(s, d);
    else if (began && s->synchronous_full)
        rc = sqlite_wal_sync(s);
    if (rc != SQLITE_OK && why != STORE_BUSY && why != STORE_ERROR)
        why = STORE_FULL;
    return why;
}

/* COMMIT, then (group commit) takes the commit's point while still holding
 * the lock, gives the lock up and waits for the point's sync.  A failed
 * COMMIT keeps the transaction and the lock for the caller's
 * sqlite_rollback (which takes a point of its own: a COMMIT can fail after
 * committing); a failed sync leaves neither, and its code in failure_code. */
static int sqlite_commit(struct sqlite_store *s)
{
    int rc = sqlite_run(s, STMT_COMMIT);
    if (rc != SQLITE_OK)
        return rc;
    struct sqlite_durable d = {0, 0};
    if (s->group_commit)
        d = sqlite_durable_point(s);
    sqlite_tx_ended(s);
    sqlite_wlock_release(s);
    if (s->group_commit && (rc = sqlite_group_wait(s, d)) != SQLITE_OK)
        s->failure_code = rc;
    return rc;
}

/* ---- opening ------------------------------------------------------------ */

static void sqlite_close(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* sqlite3_close only fails with statements left open, and all are
     * finalized above; a handle is closed even after a failed open. */
    sqlite3_close(s->db);
    if (s->turns != NULL)
        munmap(s->turns, sizeof *s->turns);
    if (s->wlock_fd >= 0)
        close(s->wlock_fd); /* releases the lock too */
    if (s->inotify_fd >= 0)
        close(s->inotify_fd);
    free(s->path);
    free(s->db_name);
    free(s);
}

/* SQLite's synchronous setting for s: FULL syncs the WAL in every COMMIT;
 * group commit (and DB_SYNCHRONOUS=normal) runs NORMAL, which syncs it
 * only at checkpoints. */
static int sqlite_synchronous(const struct sqlite_store *s, sqlite3 *db)
{
    return sqlite3_exec(db, s->synchronous_full && !s->group_commit ? "PRAGMA synchronous=FULL"
                                                                    : "PRAGMA synchronous=NORMAL",
                        NULL, NULL, NULL);
}

/* Opens a connection to s->path as s says (create, synchronous) and sets it
 * up: the one path of sqlite_open and sqlite_reopen.  *db is set even on
 * failure (NULL only when out of memory); the caller closes it. */
static int sqlite_connect(struct sqlite_store *s, sqlite3 **db)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (s->create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(s->path, db, flags, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_handler(*db, sqlite_busy_wait, s);
    /* WAL: readers never wait for the writer, and a commit is one append.
     * DB_SYNCHRONOUS=full: an acknowledged order survives a power cut,
     * through the group commit's syncs (SQLite's NORMAL) or, where there
     * is no shared lock file to coordinate them, SQLite's FULL, which syncs
     * the WAL in every COMMIT.  normal: SQLite syncs only at checkpoints. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite_synchronous(s, *db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    return rc;
}

static enum store_status sqlite_open(const struct store_options *opt, struct store **out,
                                     char *err, size_t errlen)
{
    *out = NULL;
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(opt->location)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->base.ops = &store_sqlite_ops;
    s->wlock_fd = -1;
    s->inotify_fd = -1;
    s->clock_ms = opt->clock_ms != NULL ? opt->clock_ms : clock_now_ms;
    s->busy_timeout_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 0;
    s->synchronous_full = opt->synchronous_full;
    /* Without create (the publisher), the workers own the database's
     * creation and its permissions: a publisher that started first waits. */
    s->create = opt->create;
    int rc = sqlite_connect(s, &s->db);
    if (rc == SQLITE_CANTOPEN && !opt->create && access(opt->location, F_OK) != 0 &&
        errno == ENOENT) {
        snprintf(err, errlen, "the database %s does not exist yet", opt->location);
        sqlite_close(&s->base);
        return STORE_NOT_FOUND;
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", opt->location,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite_close(&s->base);
        /* a worker mid-migration can hold the lock past the timeout */
        return sqlite_failure_of(rc) == STORE_BUSY ? STORE_BUSY : STORE_ERROR;
    }
    s->wlock_fd = sqlite_wlock_open(opt->location);
    s->turns = sqlite_wlock_map(s->wlock_fd);
    if (s->synchronous_full && s->turns != NULL) {
        s->group_commit = true;
        rc = sqlite_synchronous(s, s->db);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", opt->location, sqlite3_errmsg(s->db));
            sqlite_close(&s->base);
            return STORE_ERROR;
        }
    }
    *out = &s->base;
    return STORE_OK;
}

/* ---- a connection that became read-only -------------------------------- */

/*
 * A connection that opened the database while its -wal or -shm was not
 * writable to this process (created by another user or with another mode
 * by a tool or a harness; SQLite itself, run as root, gives the files it
 * creates to the database's owner) holds them read-only for its whole life:
 * every write then fails with SQLITE_READONLY (or _RECOVERY, _CANTINIT,
 * _DIRECTORY...), long after the files have become writable again.  So a
 * write that failed that way is retried once on a new connection, opened
 * as the first was (sqlite_connect) with the same statements prepared.
 *
 * The retry cannot apply anything twice: a write transaction that failed
 * was rolled back (sqlite_rollback) and a failed autocommit statement
 * wrote nothing, and the retry happens only when no transaction is open.
 * A write still read-only on the new connection answers as before
 * (STORE_FULL: a 503 with Retry-After), with a line naming the files'
 * owners and modes and the process's user.
 *
 * Within one process SQLite shares the -shm mapping among its connections
 * to one file, so a read-only -shm is given up only when the process's
 * last connection to it closes (the publisher has one; a worker has one
 * per serving thread); a -wal is each connection's own.
 */
static bool sqlite_write_failed_readonly(const struct sqlite_store *s, enum store_status status)
{
    int code = s->failure_code != 0 ? s->failure_code : sqlite3_extended_errcode(s->db);
    return status == STORE_FULL && (code & 0xff) == SQLITE_READONLY;
}

/* Closes the connection first: SQLite keeps one -shm mapping per file and
 * process, so a new connection opened beside the old one would share its
 * read-only mapping.  When the new one cannot be set up, s->reconnect
 * makes the next write try again (until then every call fails cleanly:
 * SQLite answers SQLITE_MISUSE for a NULL handle). */
static bool sqlite_reopen(struct sqlite_store *s)
{
    bool prepared[STMT_COUNT] = {false};
    if (sqlite_in_transaction(s) || s->wlock_held)
        return false; /* never with a transaction open */
    for (int i = 0; i < STMT_COUNT; i++) {
        prepared[i] = s->stmt[i] != NULL;
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    sqlite3_close(s->db); /* every statement of it is finalized above */
    s->db = NULL;
    int rc = sqlite_connect(s, &s->db);
    for (int i = 0; rc == SQLITE_OK && i < STMT_COUNT; i++)
        if (prepared[i] && sqlite_stmt(s, (enum sqlite_stmt)i) == NULL)
            rc = SQLITE_ERROR;
    s->reconnect = rc != SQLITE_OK;
    return rc == SQLITE_OK;
}

/* A write is about to run (its failure, if any, is recorded afresh). */
static void sqlite_write_starts(struct sqlite_store *s)
{
    s->failure_code = 0;
    if (s->reconnect)
        (void)sqlite_reopen(s);
}

/* After a write's first attempt: true when it failed on a read-only
 * connection and a new connection is in place for one more attempt. */
static bool sqlite_write_retry(struct sqlite_store *s, enum store_status status)
{
    if (!sqlite_write_failed_readonly(s, status) || !sqlite_reopen(s))
        return false;
    sqlite_write_starts(s);
    return true;
}

/* "uid 0, mode 0644" of one of the database's files, or why not. */
static void sqlite_describe_file(const char *path, const char *suffix, char *out, size_t len)
{
    char name[4096];
    struct stat st;
    snprintf(name, sizeof name, "%s%s", path, suffix);
    if (stat(name, &st) != 0)
        snprintf(out, len, "%s", strerror(errno));
    else
        snprintf(out, len, "uid %ld, gid %ld, mode %04o", (long)st.st_uid, (long)st.st_gid,
                 (unsigned)(st.st_mode & 07777));
}

/* The end of a write: one line when the connection recovered, one naming
 * the files when the database is still read-only to this process. */
static enum store_status sqlite_write_ends(struct sqlite_store *s, enum store_status status,
                                           bool retried)
{
    if (!sqlite_write_failed_readonly(s, status)) {
        if (retried) {
            struct log_field f[] = {LOG_STR("database", s->path)};
            log_emit(log_process(), LOG_WARN, NULL,
                     "the database connection was read-only (its -wal or -shm file was not"
                     " writable when it opened); reopened it, writes work again",
                     f, LOG_COUNT(f));
        }
        return status;
    }
    char db[96], wal[96], shm[96], uid[32];
    sqlite_describe_file(s->path, "", db, sizeof db);
    sqlite_describe_file(s->path, "-wal", wal, sizeof wal);
    sqlite_describe_file(s->path, "-shm", shm, sizeof shm);
    snprintf(uid, sizeof uid, "uid %ld, gid %ld", (long)geteuid(), (long)getegid());
    struct log_field f[] = {LOG_STR("database", s->path), LOG_STR("database_file", db),
                            LOG_STR("wal_file", wal), LOG_STR("shm_file", shm),
                            LOG_STR("process", uid),
                            LOG_STR("error", sqlite3_errstr(s->failure_code != 0
                                                                ? s->failure_code
                                                                : sqlite3_extended_errcode(s->db)))};
    log_emit(log_process(), LOG_ERROR, NULL,
             "the database is read-only to this process, even on a new connection: its"
             " directory, -wal or -shm file must be writable by the service's user (were"
             " they created by another user?)",
             f, LOG_COUNT(f));
    return status;
}

/* ---- migrations --------------------------------------------------------- */

/* "001_orders.sql" -> 1 */
static int migration_version(const char *name)
{
    return atoi(name);
}

static int sqlite_schema_latest(void)
{
    return migration_version(
        embedded_sqlite_migrations[embedded_sqlite_migrations_count - 1].name);
}

static int sqlite_migration_applied(struct sqlite_store *s, int version, bool *applied)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM schema_migrations WHERE version = ?1",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_bind_int(q, 1, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    *applied = rc == SQLITE_ROW;
    sqlite3_finalize(q);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
}

static int sqlite_record_migration(struct sqlite_store *s, int version, const char *name)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO schema_migrations (version, name, applied_at)"
                                " VALUES (?1, ?2, ?3)",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    SQLITE_BIND(rc, sqlite3_bind_int(q, 1, version));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 3, clock_now_ms()));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One migration, one IMMEDIATE transaction: the first worker to take the
 * write lock applies it; the others wait on the lock, then find it
 * recorded and skip it. */
static int sqlite_apply_migration(struct sqlite_store *s, const struct embedded_file *m)
{
    int version = migration_version(m->name);
    bool applied = false;
    int rc = sqlite_exec(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite_exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                        " applied_at INTEGER NOT NULL)");
    if (rc == SQLITE_OK)
        rc = sqlite_migration_applied(s, version, &applied);
    if (rc == SQLITE_OK && !applied)
        rc = sqlite_exec(s, (const char *)m->data);
    if (rc == SQLITE_OK && !applied)
        rc = sqlite_record_migration(s, version, m->name);
    if (rc == SQLITE_OK)
        rc = sqlite_exec(s, "COMMIT");
    if (rc != SQLITE_OK)
        sqlite_exec(s, "ROLLBACK");
    return rc;
}

static enum store_status sqlite_migrate(struct store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = sqlite_of(st);
    for (size_t i = 0; i < embedded_sqlite_migrations_count; i++) {
        int rc = sqlite_apply_migration(s, &embedded_sqlite_migrations[i]);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "migration %s: %s", embedded_sqlite_migrations[i].name,
                     sqlite3_errmsg(s->db));
            return STORE_ERROR; /* never BUSY: this store does not migrate later */
        }
    }
    /* Migrations commit outside the write queue: made durable here. */
    int rc = s->group_commit ? sqlite_wal_sync(s) : SQLITE_OK;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "syncing the migrations: %s", sqlite3_errstr(rc));
        return STORE_ERROR;
    }
    for (int i = 0; i < STMT_WORKER_COUNT; i++) {
        if (sqlite_stmt(s, (enum sqlite_stmt)i) == NULL) {
            snprintf(err, errlen, "prepare: %s", sqlite3_errmsg(s->db));
            return STORE_ERROR;
        }
    }
    return STORE_OK;
}

/* 0 before the first migration. */
static enum store_status sqlite_schema_version(struct store *st, int *applied)
{
    struct sqlite_store *s = sqlite_of(st);
    long long tables = 0, version = 0;
    *applied = 0;
    int rc = sqlite_one_int(s, STMT_SCHEMA_TABLE, &tables);
    if (rc == SQLITE_OK && tables > 0)
        rc = sqlite_one_int(s, STMT_SCHEMA_VERSION, &version);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    *applied = (int)version;
    return STORE_OK;
}

/* ---- orders ------------------------------------------------------------- */

static int sqlite_insert_event(struct sqlite_store *s, const struct event_row *ev)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_EVENT_INSERT);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, ev->id, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 2, ev->type, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 3, ev->source, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 4, ev->subject, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 5, ev->time, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, ev->traceparent != NULL
                        ? sqlite3_bind_text(q, 6, ev->traceparent, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(q, 6));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 7, ev->data, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 8, ev->committed_ms));
    if (rc != SQLITE_OK) {
        if (q != NULL)
            sqlite3_clear_bindings(q);
        return rc;
    }
    return sqlite_step_done(q);
}

static int sqlite_insert_order(struct sqlite_store *s, const struct order *o)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_ORDER_INSERT);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, o->id, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 2, o->customer_id, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 3, o->items_json, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 4, order_status_name(o->status), -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 5, o->created_ms));
    if (rc != SQLITE_OK) {
        if (q != NULL)
            sqlite3_clear_bindings(q);
        return rc;
    }
    return sqlite_step_done(q);
}

/* Writes the order's event inside the open transaction, then commits. */
static enum store_status sqlite_commit_with_event(struct sqlite_store *s, int rc,
                                                  const struct order *o,
                                                  const enum order_status *previous,
                                                  const struct event_meta *meta)
{
    struct event_row ev;
    if (rc != SQLITE_OK)
        return sqlite_rollback(s, sqlite_failure_of(rc));
    if (event_build(&ev, o, previous, meta, o->updated_ms) != 0)
        return sqlite_rollback(s, STORE_ERROR);
    rc = sqlite_insert_event(s, &ev);
    event_free(&ev);
    if (rc == SQLITE_OK)
        rc = sqlite_commit(s);
    if (rc != SQLITE_OK)
        return sqlite_rollback(s, sqlite_failure_of(rc));
    return STORE_OK;
}

static enum store_status sqlite_order_get(struct store *st, const char *id,
                                          struct order *out);

/* Deletes a few expired keys (STMT_IDEMPOTENCY_PRUNE). */
static int sqlite_bind_run_prune(struct sqlite_store *s, long long now)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_IDEMPOTENCY_PRUNE);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 1, now));
    if (rc != SQLITE_OK) {
        if (q != NULL)
            sqlite3_clear_bindings(q);
        return rc;
    }
    return sqlite_step_done(q);
}

/* A remembered key of the caller: STORE_OK with *found false when none
 * (or only an expired one), else STORE_REPLAYED with the order it made in
 * o, or STORE_KEY_REUSED.  Inside the open write transaction. */
static enum store_status sqlite_idempotency_check(struct sqlite_store *s, struct order *o,
                                                  const struct idempotency_claim *claim,
                                                  long long now)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_IDEMPOTENCY_GET);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, claim->caller, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 2, claim->key, -1, SQLITE_STATIC));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    enum store_status result = STORE_OK;
    char order_id[UUID_STR_LEN + 1] = "";
    if (rc == SQLITE_ROW) {
        const void *fp = sqlite3_column_blob(q, 0);
        int fp_len = sqlite3_column_bytes(q, 0);
        const unsigned char *id = sqlite3_column_text(q, 1);
        long long expires_at = sqlite3_column_int64(q, 2);
        if (expires_at > now) {
            if (fp_len == IDEMPOTENCY_FINGERPRINT_LEN && fp != NULL &&
                memcmp(fp, claim->fingerprint, IDEMPOTENCY_FINGERPRINT_LEN) == 0 && id != NULL) {
                snprintf(order_id, sizeof order_id, "%s", (const char *)id);
                result = STORE_REPLAYED;
            } else {
                result = STORE_KEY_REUSED;
            }
        }
    } else if (rc != SQLITE_DONE) {
        result = sqlite_failure_of(rc);
    }
    if (q != NULL) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
    if (result == STORE_REPLAYED) {
        struct order made;
        enum store_status got = sqlite_order_get(&s->base, order_id, &made);
        if (got != STORE_OK)
            return got == STORE_NOT_FOUND ? STORE_ERROR : got;
        order_free(o);
        *o = made;
    }
    return result;
}

static int sqlite_idempotency_remember(struct sqlite_store *s, const struct order *o,
                                       const struct idempotency_claim *claim)
{
    long long now = o->created_ms;
    int rc = sqlite_bind_run_prune(s, now);
    sqlite3_stmt *q = rc == SQLITE_OK ? sqlite_stmt(s, STMT_IDEMPOTENCY_PUT) : NULL;
    if (rc == SQLITE_OK && q == NULL)
        rc = SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, claim->caller, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 2, claim->key, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_blob(q, 3, claim->fingerprint, IDEMPOTENCY_FINGERPRINT_LEN,
                                      SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 4, o->id, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 5, now));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 6, now + claim->ttl_ms));
    if (rc != SQLITE_OK) {
        if (q != NULL)
            sqlite3_clear_bindings(q);
        return rc;
    }
    return sqlite_step_done(q);
}

static enum store_status sqlite_order_create_once(struct store *st, struct order *o,
                                             const struct event_meta *meta,
                                             const struct idempotency_claim *claim)
{
    struct sqlite_store *s = sqlite_of(st);
    int rc = sqlite_begin_write(s);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    /* The clock is read under the write lock so that created_at never runs
     * backwards in commit order (the list's order is the sequence anyway). */
    long long now = s->clock_ms();
    /* Under the write lock, so of concurrent creates with one key the
     * first commits its order and key and the others find them here. */
    if (claim != NULL) {
        enum store_status known = sqlite_idempotency_check(s, o, claim, now);
        if (known != STORE_OK)
            return sqlite_rollback(s, known);
    }
    o->created_ms = o->updated_ms = now;
    o->status = ORDER_PENDING;
    o->version = 1;
    o->seq = 0;
    if (uuid_v7_generate(o->created_ms, o->id) != 0)
        return sqlite_rollback(s, STORE_ERROR);
    rc = sqlite_insert_order(s, o);
    if (rc == SQLITE_OK && claim != NULL)
        rc = sqlite_idempotency_remember(s, o, claim);
    return sqlite_commit_with_event(s, rc, o, NULL, meta);
}

/* Reads the current row of q into out (q has just returned SQLITE_ROW). */
static int sqlite_read_order(sqlite3_stmt *q, struct order *out)
{
    const unsigned char *id = sqlite3_column_text(q, 0);
    const unsigned char *customer = sqlite3_column_text(q, 1);
    const unsigned char *items = sqlite3_column_text(q, 2);
    const unsigned char *status = sqlite3_column_text(q, 3);
    memset(out, 0, sizeof *out);
    if (id == NULL || customer == NULL || items == NULL || status == NULL ||
        !order_status_parse((const char *)status, &out->status))
        return -1;
    snprintf(out->id, sizeof out->id, "%s", (const char *)id);
    out->customer_id = strdup((const char *)customer);
    out->items_json = strdup((const char *)items);
    out->created_ms = sqlite3_column_int64(q, 4);
    out->updated_ms = sqlite3_column_int64(q, 5);
    out->version = sqlite3_column_int64(q, 6);
    out->seq = sqlite3_column_int64(q, 7);
    if (out->customer_id == NULL || out->items_json == NULL) {
        order_free(out);
        return -1;
    }
    return 0;
}

static enum store_status sqlite_order_get(struct store *st, const char *id, struct order *out)
{
    sqlite3_stmt *q = sqlite_stmt(sqlite_of(st), STMT_ORDER_GET);
    if (q == NULL)
        return STORE_ERROR;
    int rc = sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    enum store_status result;
    if (rc == SQLITE_ROW)
        result = sqlite_read_order(q, out) == 0 ? STORE_OK : STORE_ERROR;
    else if (rc == SQLITE_DONE)
        result = STORE_NOT_FOUND;
    else
        result = sqlite_failure_of(rc);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return result;
}

static int sqlite_set_status(struct sqlite_store *s, const struct order *o,
                             enum order_status from)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_ORDER_SET_STATUS);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, order_status_name(o->status), -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, o->updated_ms));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 3, o->id, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 4, order_status_name(from), -1, SQLITE_STATIC));
    if (rc != SQLITE_OK) {
        if (q != NULL)
            sqlite3_clear_bindings(q);
        return rc;
    }
    rc = sqlite_step_done(q);
    if (rc == SQLITE_OK && sqlite3_changes(s->db) != 1)
        rc = SQLITE_CONSTRAINT; /* cannot happen under the write lock */
    return rc;
}

static enum store_status sqlite_order_transition_once(struct store *st, const char *id,
                                                 enum order_status to,
                                                 const struct precondition *pre,
                                                 const struct event_meta *meta,
                                                 struct order *out, enum order_status *from)
{
    struct sqlite_store *s = sqlite_of(st);
    int rc = sqlite_begin_write(s);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    enum store_status found = sqlite_order_get(st, id, out);
    if (found != STORE_OK)
        return sqlite_rollback(s, found);
    *from = out->status;
    /* The precondition first (RFC 9110, 13.2.2), on the row this
     * transaction holds: nothing can change it between check and write. */
    if (!precondition_holds(pre, out->version))
        return sqlite_rollback(s, STORE_PRECONDITION_FAILED);
    if (!order_transition_allowed(out->status, to))
        return sqlite_rollback(s, STORE_CONFLICT);
    out->status = to;
    out->version++;
    out->updated_ms = s->clock_ms();
    if (out->updated_ms < out->created_ms) /* the wall clock stepped back */
        out->updated_ms = out->created_ms;
    rc = sqlite_set_status(s, out, *from);
    enum store_status result = sqlite_commit_with_event(s, rc, out, from, meta);
    if (result != STORE_OK)
        order_free(out);
    return result;
}

/* The page or total statement for q's filters (the enum lists them in the
 * order none, status, customer, both). */
static enum sqlite_stmt sqlite_filtered(enum sqlite_stmt base, const struct page_query *q)
{
    return (enum sqlite_stmt)(base + (q->has_status ? 1 : 0) + (q->has_customer ? 2 : 0));
}

/* Binds the named parameters a page or total statement has. */
static int sqlite_bind_page(sqlite3_stmt *q, const struct page_query *pq, bool extra_row)
{
    int rc = SQLITE_OK, i;
    if ((i = sqlite3_bind_parameter_index(q, ":after")) > 0)
        SQLITE_BIND(rc, sqlite3_bind_int64(q, i, pq->has_cursor ? pq->after : INT64_MAX));
    if ((i = sqlite3_bind_parameter_index(q, ":limit")) > 0)
        SQLITE_BIND(rc, sqlite3_bind_int64(q, i, pq->limit + (extra_row ? 1 : 0)));
    if ((i = sqlite3_bind_parameter_index(q, ":offset")) > 0)
        SQLITE_BIND(rc, sqlite3_bind_int64(q, i, pq->has_cursor ? 0 : pq->offset));
    if ((i = sqlite3_bind_parameter_index(q, ":status")) > 0)
        SQLITE_BIND(rc, sqlite3_bind_text(q, i, order_status_name(pq->status), -1, SQLITE_STATIC));
    if ((i = sqlite3_bind_parameter_index(q, ":customer")) > 0)
        SQLITE_BIND(rc, sqlite3_bind_text(q, i, pq->customer_id, -1, SQLITE_STATIC));
    return rc;
}

static int sqlite_page_total(struct sqlite_store *s, const struct page_query *pq,
                             long long *total)
{
    sqlite3_stmt *q = sqlite_stmt(s, sqlite_filtered(STMT_ORDER_TOTAL, pq));
    if (q == NULL)
        return SQLITE_ERROR;
    int rc = sqlite_bind_page(q, pq, false);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_ERROR : rc;
}

/* Reads up to limit orders, and one more to learn whether one follows. */
static enum store_status sqlite_read_page(struct sqlite_store *s, const struct page_query *pq,
                                          struct order *items, size_t *count, bool *more)
{
    sqlite3_stmt *q = sqlite_stmt(s, sqlite_filtered(STMT_PAGE_ALL, pq));
    if (q == NULL)
        return STORE_ERROR;
    int rc = sqlite_bind_page(q, pq, true);
    enum store_status result = rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
    while (result == STORE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*count == (size_t)pq->limit) {
            *more = true;
            break;
        }
        if (sqlite_read_order(q, &items[*count]) != 0) {
            result = STORE_ERROR;
            break;
        }
        (*count)++;
    }
    if (result == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        result = sqlite_failure_of(rc);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return result;
}

static enum store_status sqlite_order_page(struct store *st, const struct page_query *q,
                                           struct order **items, size_t *count,
                                           long long *total, bool *more)
{
    struct sqlite_store *s = sqlite_of(st);
    *items = calloc((size_t)q->limit, sizeof **items);
    *count = 0;
    *more = false;
    if (*items == NULL)
        return STORE_ERROR;
    /* One read transaction: the total and the page come from the same
     * snapshot, so total never disagrees with what the page shows. */
    int rc = sqlite_run(s, STMT_BEGIN_READ);
    if (rc == SQLITE_OK)
        rc = sqlite_page_total(s, q, total);
    enum store_status result = rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
    if (result == STORE_OK)
        result = sqlite_read_page(s, q, *items, count, more);
    if (sqlite_in_transaction(s))
        sqlite_run(s, result == STORE_OK ? STMT_COMMIT : STMT_ROLLBACK);
    if (result != STORE_OK) {
        for (size_t i = 0; i < *count; i++)
            order_free(&(*items)[i]);
        free(*items);
        *items = NULL;
        *count = 0;
        *more = false;
    }
    return result;
}

static enum store_status sqlite_order_count(struct store *st, const struct page_query *q,
                                            long long *total)
{
    int rc = sqlite_page_total(sqlite_of(st), q, total);
    return rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
}

static int sqlite_sink_stats(struct sqlite_store *s, struct outbox_stats *out)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_STATS_SINKS);
    int rc;

    if (q == NULL)
        return SQLITE_ERROR;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && out->sink_count < OUTBOX_STATS_SINKS) {
        struct outbox_sink_stats *k = &out->sinks[out->sink_count++];
        const unsigned char *name = sqlite3_column_text(q, 0);
        snprintf(k->name, sizeof k->name, "%s", name != NULL ? (const char *)name : "");
        k->deliveries = sqlite3_column_int64(q, 1);
        k->failures = sqlite3_column_int64(q, 2);
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static enum store_status sqlite_outbox_stats(struct store *st, long long now_ms,
                                             struct outbox_stats *out)
{
    struct sqlite_store *s = sqlite_of(st);
    long long sequence = 0, oldest = 0;
    memset(out, 0, sizeof *out);
    /* One snapshot, so the derived delivered count is consistent. */
    int rc = sqlite_run(s, STMT_BEGIN_READ);
    if (rc == SQLITE_OK)
        rc = sqlite_one_int(s, STMT_STATS_PENDING, &out->pending);
    if (rc == SQLITE_OK && out->pending > 0)
        rc = sqlite_one_int(s, STMT_STATS_OLDEST, &oldest);
    if (rc == SQLITE_OK)
        rc = sqlite_one_int(s, STMT_STATS_PARKED, &out->parked);
    if (rc == SQLITE_OK)
        rc = sqlite_one_int(s, STMT_STATS_SEQUENCE, &sequence);
    if (rc == SQLITE_OK)
        rc = sqlite_one_int(s, STMT_STATS_FAILURES, &out->delivery_failures_total);
    if (rc == SQLITE_OK)
        rc = sqlite_sink_stats(s, out);
    if (sqlite_in_transaction(s))
        sqlite_run(s, rc == SQLITE_OK ? STMT_COMMIT : STMT_ROLLBACK);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    if (out->pending > 0 && now_ms > oldest)
        out->oldest_pending_age_s = (double)(now_ms - oldest) / 1000.0;
    out->delivered_total = sequence - out->pending - out->parked;
    return STORE_OK;
}

/* ---- the outbox --------------------------------------------------------- */

/* NULL stays NULL; anything else is copied (NULL then means no memory). */
static char *sqlite_column_text(sqlite3_stmt *q, int col, bool *oom)
{
    const unsigned char *text = sqlite3_column_text(q, col);
    char *copy;

    if (text == NULL) {
        if (sqlite3_errcode(sqlite3_db_handle(q)) == SQLITE_NOMEM)
            *oom = true;
        return NULL;
    }
    copy = strdup((const char *)text);
    if (copy == NULL)
        *oom = true;
    return copy;
}

static int sqlite_read_event(sqlite3_stmt *q, struct outbox_event *ev)
{
    bool oom = false;

    ev->seq = sqlite3_column_int64(q, 0);
    ev->id = sqlite_column_text(q, 1, &oom);
    ev->type = sqlite_column_text(q, 2, &oom);
    ev->source = sqlite_column_text(q, 3, &oom);
    ev->subject = sqlite_column_text(q, 4, &oom);
    ev->time = sqlite_column_text(q, 5, &oom);
    ev->traceparent = sqlite_column_text(q, 6, &oom);
    ev->data = sqlite_column_text(q, 7, &oom);
    ev->attempts = sqlite3_column_int64(q, 8);
    ev->next_attempt_at = sqlite3_column_int64(q, 9);
    /* The schema says NOT NULL; a NULL here is memory running out. */
    return oom || ev->id == NULL || ev->type == NULL || ev->source == NULL ||
                   ev->subject == NULL || ev->time == NULL || ev->data == NULL
               ? -1
               : 0;
}

/* Lowest seq first, every undelivered event, due or not: one publisher
 * holds the lease, and seq is commit order, so an event that waits for
 * its retry holds back everything behind it (relay.c). */
static enum store_status sqlite_outbox_fetch(struct store *st, int limit, long long now_ms,
                                             struct outbox_batch *batch)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *q = sqlite_stmt(s, STMT_FETCH);
    int rc = SQLITE_DONE;

    (void)now_ms;
    outbox_batch_free(batch);
    if (q == NULL)
        return STORE_ERROR;
    batch->events = calloc((size_t)limit, sizeof(*batch->events));
    if (batch->events == NULL)
        return STORE_ERROR;
    if (sqlite3_bind_int(q, 1, limit) != SQLITE_OK)
        return STORE_ERROR;
    while (batch->count < limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        batch->count++; /* counted first, so batch_free frees a partial row */
        if (sqlite_read_event(q, &batch->events[batch->count - 1]) != 0)
            break;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sqlite_failure_of(rc);
    if (rc == SQLITE_ROW && batch->count < limit) {
        outbox_batch_free(batch);
        return STORE_ERROR; /* a row could not be copied */
    }
    /* An event is delivered only once durable (see group commit): its
     * commit may have been read before its writer's sync. */
    if (batch->count > 0 && s->synchronous_full && (rc = sqlite_wal_sync(s)) != SQLITE_OK) {
        outbox_batch_free(batch);
        return sqlite_failure_of(rc);
    }
    return STORE_OK;
}

static int sqlite_mark(struct sqlite_store *s, long long seq, long long at)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_MARK);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 1, at));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, seq));
    return rc == SQLITE_OK ? sqlite_step_done(q) : rc;
}

static int sqlite_bind_ms_or_null(sqlite3_stmt *q, int idx, long long ms)
{
    return ms != 0 ? sqlite3_bind_int64(q, idx, ms) : sqlite3_bind_null(q, idx);
}

static int sqlite_fail(struct sqlite_store *s, const struct outbox_failure *f)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_FAIL);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 1, f->seq));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, f->attempts));
    SQLITE_BIND(rc, sqlite3_bind_text(q, 3, f->error, -1, SQLITE_TRANSIENT));
    SQLITE_BIND(rc, sqlite_bind_ms_or_null(q, 4, f->parked_at != 0 ? 0 : f->next_attempt_at));
    SQLITE_BIND(rc, sqlite_bind_ms_or_null(q, 5, f->parked_at));
    return rc == SQLITE_OK ? sqlite_step_done(q) : rc;
}

static int sqlite_renew(struct sqlite_store *s, const char *holder, long long expires_at,
                        bool *kept)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_LEASE_RENEW);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, holder, -1, SQLITE_TRANSIENT));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, expires_at));
    if (rc == SQLITE_OK)
        rc = sqlite_step_done(q);
    *kept = rc == SQLITE_OK && sqlite3_changes(s->db) == 1;
    return rc;
}

static int sqlite_count_sink(struct sqlite_store *s, const char *sink, long long deliveries,
                             long long failures)
{
    sqlite3_stmt *q = sqlite_stmt(s, STMT_SINK_COUNT);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, sink, -1, SQLITE_STATIC));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, deliveries));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 3, failures));
    return rc == SQLITE_OK ? sqlite_step_done(q) : rc;
}

static int sqlite_commit_body(struct sqlite_store *s, const struct outbox_commit *c,
                              bool *lease_kept)
{
    int rc = sqlite_renew(s, c->holder, c->lease_expires_at, lease_kept);
    for (int i = 0; rc == SQLITE_OK && i < c->delivered_count; i++)
        rc = sqlite_mark(s, c->delivered[i], c->delivered_at);
    if (rc == SQLITE_OK && c->failure != NULL)
        rc = sqlite_fail(s, c->failure);
    if (rc == SQLITE_OK && c->sink != NULL && (c->delivered_count > 0 || c->failure != NULL))
        rc = sqlite_count_sink(s, c->sink, c->delivered_count, c->failure != NULL ? 1 : 0);
    return rc;
}

static enum store_status sqlite_outbox_commit_once(struct store *st, const struct outbox_commit *c,
                                              bool *lease_kept)
{
    struct sqlite_store *s = sqlite_of(st);
    int rc = sqlite_begin_write(s);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    rc = sqlite_commit_body(s, c, lease_kept);
    if (rc == SQLITE_OK)
        rc = sqlite_commit(s);
    return rc == SQLITE_OK ? STORE_OK : sqlite_rollback(s, sqlite_failure_of(rc));
}

static enum store_status sqlite_lease_peek(struct store *st, char *holder, size_t holder_len,
                                           long long *expires_at, bool *present)
{
    sqlite3_stmt *q = sqlite_stmt(sqlite_of(st), STMT_LEASE_PEEK);
    if (q == NULL)
        return STORE_ERROR;
    int rc = sqlite3_step(q);

    *present = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(q, 0);
        snprintf(holder, holder_len, "%s", h != NULL ? (const char *)h : "");
        *expires_at = sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? STORE_OK : sqlite_failure_of(rc);
}

static enum store_status sqlite_lease_acquire_once(struct store *st, const char *holder, long long now,
                                              long long expires_at, bool *acquired,
                                              long long *other_expires_at)
{
    struct sqlite_store *s = sqlite_of(st);
    char current[256];
    long long current_expires = 0;
    bool present;

    *acquired = false;
    int rc = sqlite_begin_write(s);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    enum store_status peeked = sqlite_lease_peek(st, current, sizeof(current),
                                                 &current_expires, &present);
    if (peeked != STORE_OK)
        return sqlite_rollback(s, peeked);
    if (present && strcmp(current, holder) != 0 && current_expires > now) {
        *other_expires_at = current_expires;
        return sqlite_rollback(s, STORE_OK);
    }
    sqlite3_stmt *q = sqlite_stmt(s, STMT_LEASE_TAKE);
    rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, holder, -1, SQLITE_TRANSIENT));
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 2, expires_at));
    if (rc == SQLITE_OK)
        rc = sqlite_step_done(q);
    if (rc == SQLITE_OK)
        rc = sqlite_commit(s);
    if (rc != SQLITE_OK)
        return sqlite_rollback(s, sqlite_failure_of(rc));
    *acquired = true;
    return STORE_OK;
}

static enum store_status sqlite_lease_renew_once(struct store *st, const char *holder,
                                            long long expires_at, bool *kept)
{
    int rc = sqlite_renew(sqlite_of(st), holder, expires_at, kept);
    return rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
}

static enum store_status sqlite_lease_release_once(struct store *st, const char *holder)
{
    sqlite3_stmt *q = sqlite_stmt(sqlite_of(st), STMT_LEASE_RELEASE);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;
    SQLITE_BIND(rc, sqlite3_bind_text(q, 1, holder, -1, SQLITE_TRANSIENT));
    if (rc == SQLITE_OK)
        rc = sqlite_step_done(q);
    return rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
}

static enum store_status sqlite_outbox_prune_once(struct store *st, long long cutoff, int limit,
                                             int *deleted)
{
    struct sqlite_store *s = sqlite_of(st);
    sqlite3_stmt *q = sqlite_stmt(s, STMT_PRUNE);
    int rc = q != NULL ? SQLITE_OK : SQLITE_ERROR;

    *deleted = 0;
    SQLITE_BIND(rc, sqlite3_bind_int64(q, 1, cutoff));
    SQLITE_BIND(rc, sqlite3_bind_int(q, 2, limit));
    if (rc == SQLITE_OK)
        rc = sqlite_step_done(q);
    if (rc != SQLITE_OK)
        return sqlite_failure_of(rc);
    *deleted = sqlite3_changes(s->db);
    return STORE_OK;
}

/* ---- the change signal -------------------------------------------------- */

/*
 * inotify on the database's directory: in WAL mode every commit appends to
 * DATABASE_PATH-wal.  inotify only says the files were touched, not that a
 * commit is visible, so callers confirm with data_version.  Without inotify
 * (another file system, no watches left) there is no descriptor, and the
 * publisher polls.
 */
static int sqlite_change_fd(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    if (s->inotify_fd >= 0 || s->inotify_failed)
        return s->inotify_fd;
    const char *slash = strrchr(s->path, '/');
    char *dir = slash == NULL   ? strdup(".")
                : slash == s->path ? strdup("/")
                                   : strndup(s->path, (size_t)(slash - s->path));
    char *name = strdup(slash == NULL ? s->path : slash + 1);
    int fd = dir != NULL && name != NULL ? inotify_init1(IN_NONBLOCK | IN_CLOEXEC) : -1;
    if (fd >= 0 && inotify_add_watch(fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        close(fd);
        fd = -1;
    }
    free(dir);
    if (fd < 0) {
        free(name);
        s->inotify_failed = true;
        return -1;
    }
    s->db_name = name;
    s->db_name_len = strlen(name);
    s->inotify_fd = fd;
    return fd;
}

/* Is one queued inotify record about the database's files? */
static bool sqlite_change_relevant(const struct sqlite_store *s, const struct inotify_event *ev,
                                   const char *name)
{
    if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
        return true; /* lost track: assume the worst, look at the database */
    return ev->len > 0 && strncmp(name, s->db_name, s->db_name_len) == 0;
}

/* Drains the inotify queue; true when any record concerned the database.
 * The directory watch going away (IN_IGNORED) ends watching: timeouts
 * carry on alone. */
static bool sqlite_change_drain(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool relevant = false, gone = false;
    ssize_t n;

    if (s->inotify_fd < 0)
        return false;
    while ((n = read(s->inotify_fd, buf, sizeof(buf))) > 0) {
        for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
            struct inotify_event ev;

            memcpy(&ev, buf + off, sizeof(ev));
            relevant |= sqlite_change_relevant(s, &ev, buf + off + sizeof(ev));
            gone |= (ev.mask & IN_IGNORED) != 0;
            off += sizeof(ev) + ev.len;
        }
    }
    if (gone) {
        close(s->inotify_fd);
        s->inotify_fd = -1;
        s->inotify_failed = true;
    }
    return relevant;
}

static enum store_status sqlite_data_version(struct store *st, long long *out)
{
    int rc = sqlite_one_int(sqlite_of(st), STMT_DATA_VERSION, out);
    return rc == SQLITE_OK ? STORE_OK : sqlite_failure_of(rc);
}

/* ---- the writes, retried once on a new connection ---------------------- */

/* Each write op: its first attempt, and a second one on a new connection
 * when the first found this connection read-only (sqlite_reopen). */
#define SQLITE_WRITE(s, attempt)                                                  \
    do {                                                                          \
        sqlite_write_starts(s);                                                   \
        enum store_status status_ = (attempt);                                    \
        bool retried_ = sqlite_write_retry((s), status_);                         \
        if (retried_)                                                             \
            status_ = (attempt);                                                  \
        return sqlite_write_ends((s), status_, retried_);                         \
    } while (0)

/* A connection's page cache holds what its last requests read, up to 2 MB
 * (SQLite's default cache_size), and keeps it while the thread is idle:
 * with four serving threads per worker that was 0.3 MiB of an idle
 * worker's memory at 1,000 orders. */
static void sqlite_release_memory(struct store *st)
{
    struct sqlite_store *s = sqlite_of(st);
    if (s->db != NULL && !sqlite_in_transaction(s))
        (void)sqlite3_db_release_memory(s->db); /* only ever SQLITE_OK */
}

static enum store_status sqlite_order_create(struct store *st, struct order *o,
                                             const struct event_meta *meta,
                                             const struct idempotency_claim *claim)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_order_create_once(st, o, meta, claim));
}

static enum store_status sqlite_order_transition(struct store *st, const char *id,
                                                 enum order_status to,
                                                 const struct precondition *pre,
                                                 const struct event_meta *meta,
                                                 struct order *out, enum order_status *from)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_order_transition_once(st, id, to, pre, meta, out, from));
}

static enum store_status sqlite_outbox_commit(struct store *st, const struct outbox_commit *c,
                                              bool *lease_kept)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_outbox_commit_once(st, c, lease_kept));
}

static enum store_status sqlite_lease_acquire(struct store *st, const char *holder, long long now,
                                              long long expires_at, bool *acquired,
                                              long long *other_expires_at)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_lease_acquire_once(st, holder, now, expires_at, acquired,
                                                          other_expires_at));
}

static enum store_status sqlite_lease_renew(struct store *st, const char *holder,
                                            long long expires_at, bool *kept)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_lease_renew_once(st, holder, expires_at, kept));
}

static enum store_status sqlite_lease_release(struct store *st, const char *holder)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_lease_release_once(st, holder));
}

static enum store_status sqlite_outbox_prune(struct store *st, long long cutoff, int limit,
                                             int *deleted)
{
    SQLITE_WRITE(sqlite_of(st), sqlite_outbox_prune_once(st, cutoff, limit, deleted));
}

const struct store_ops store_sqlite_ops = {
    .engine = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .last_error = sqlite_last_error,
    .migrate = sqlite_migrate,
    .schema_version = sqlite_schema_version,
    .schema_latest = sqlite_schema_latest,
    .order_create = sqlite_order_create,
    .order_get = sqlite_order_get,
    .order_transition = sqlite_order_transition,
    .order_page = sqlite_order_page,
    .order_count = sqlite_order_count,
    .outbox_stats = sqlite_outbox_stats,
    .outbox_fetch = sqlite_outbox_fetch,
    .outbox_commit = sqlite_outbox_commit,
    .lease_peek = sqlite_lease_peek,
    .lease_acquire = sqlite_lease_acquire,
    .lease_renew = sqlite_lease_renew,
    .lease_release = sqlite_lease_release,
    .outbox_prune = sqlite_outbox_prune,
    .change_fd = sqlite_change_fd,
    .change_drain = sqlite_change_drain,
    .data_version = sqlite_data_version,
    .take_timing = sqlite_take_timing,
    .release_memory = sqlite_release_memory,
};
