/*
 * outbox.c - SQL for the publisher, in one place.
 *
 * Statements are prepared once and reset right after use: a statement left
 * mid-step holds a read snapshot open, and an open snapshot stops the
 * workers' WAL checkpoints from finishing, so the WAL would grow without
 * bound.
 */
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

/* A worker's write transaction is short; five seconds of waiting for the
 * write lock means something is wrong and is better reported than hidden. */
#define OUTBOX_BUSY_TIMEOUT_MS 5000

enum outbox_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_DATA_VERSION,
    STMT_FETCH,
    STMT_MARK,
    STMT_FAIL,
    STMT_LEASE_PEEK,
    STMT_LEASE_TAKE,
    STMT_LEASE_RENEW,
    STMT_LEASE_RELEASE,
    STMT_PRUNE,
    STMT_COUNT
};

static const char *const outbox_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    /* The WHERE clause repeats the partial index events_pending word for
     * word, which is what lets SQLite use it. */
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
    [STMT_LEASE_PEEK] = "SELECT holder, expires_at FROM publisher_lease WHERE singleton = 1",
    [STMT_LEASE_TAKE] = "INSERT OR REPLACE INTO publisher_lease (singleton, holder, expires_at)"
                        " VALUES (1, ?1, ?2)",
    [STMT_LEASE_RENEW] = "UPDATE publisher_lease SET expires_at = ?2"
                         " WHERE singleton = 1 AND holder = ?1",
    [STMT_LEASE_RELEASE] = "DELETE FROM publisher_lease WHERE singleton = 1 AND holder = ?1",
    [STMT_PRUNE] = "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                   " WHERE delivered_at IS NOT NULL AND delivered_at < ?1 LIMIT ?2)",
};

struct outbox {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
};

const char *outbox_errmsg(struct outbox *ob)
{
    return sqlite3_errmsg(ob->db);
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
static int outbox_exec(struct outbox *ob, enum outbox_stmt which)
{
    sqlite3_stmt *st = ob->stmt[which];
    int rc;

    do
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int outbox_exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* The workers create both tables in one migration; until both exist there
 * is nothing to publish and nowhere to keep the lease. */
static enum outbox_status outbox_tables_ready(sqlite3 *db, char *err, size_t errlen)
{
    static const char sql[] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('events', 'publisher_lease')";
    sqlite3_stmt *st = NULL;
    int rc, n = 0;

    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || (rc == SQLITE_ROW && n != 2)) {
        snprintf(err, errlen, "the events table does not exist yet");
        return OUTBOX_NOT_READY;
    }
    if (rc != SQLITE_ROW) {
        snprintf(err, errlen, "reading the schema: %s", sqlite3_errmsg(db));
        return OUTBOX_ERROR;
    }
    return OUTBOX_OK;
}

/* WAL lets the publisher read while a worker writes.  The workers switch
 * the database to WAL at migration; asking again is a no-op then. */
static int outbox_configure(sqlite3 *db, bool synchronous_full, char *err, size_t errlen)
{
    if (outbox_exec_sql(db, "PRAGMA journal_mode = WAL", err, errlen) != 0)
        return -1;
    return outbox_exec_sql(db, synchronous_full ? "PRAGMA synchronous = FULL"
                                                : "PRAGMA synchronous = NORMAL",
                           err, errlen);
}

static int outbox_prepare_all(struct outbox *ob, char *err, size_t errlen)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(ob->db, outbox_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &ob->stmt[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "preparing \"%s\": %s", outbox_sql[i], sqlite3_errmsg(ob->db));
            return -1;
        }
    }
    return 0;
}

static enum outbox_status outbox_connect(struct outbox *ob, const char *path,
                                         bool synchronous_full, char *err, size_t errlen)
{
    enum outbox_status st;
    /* No SQLITE_OPEN_CREATE: the workers own the database's creation (and
     * its permissions); a publisher that started first waits for them. */
    int rc = sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc == SQLITE_CANTOPEN && access(path, F_OK) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "the database %s does not exist yet", path);
        return OUTBOX_NOT_READY;
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "opening %s: %s", path,
                 ob->db != NULL ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc));
        return OUTBOX_ERROR;
    }
    if (sqlite3_busy_timeout(ob->db, OUTBOX_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        snprintf(err, errlen, "setting busy_timeout: %s", sqlite3_errmsg(ob->db));
        return OUTBOX_ERROR;
    }
    st = outbox_tables_ready(ob->db, err, errlen);
    if (st != OUTBOX_OK)
        return st;
    if (outbox_configure(ob->db, synchronous_full, err, errlen) != 0) {
        /* A worker mid-migration can hold the lock past busy_timeout. */
        rc = sqlite3_errcode(ob->db);
        return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? OUTBOX_NOT_READY : OUTBOX_ERROR;
    }
    if (outbox_prepare_all(ob, err, errlen) != 0)
        return OUTBOX_ERROR;
    return OUTBOX_OK;
}

enum outbox_status outbox_open(struct outbox **out, const char *path, bool synchronous_full,
                               char *err, size_t errlen)
{
    struct outbox *ob = calloc(1, sizeof(*ob));
    enum outbox_status st;

    *out = NULL;
    if (ob == NULL) {
        snprintf(err, errlen, "out of memory");
        return OUTBOX_ERROR;
    }
    st = outbox_connect(ob, path, synchronous_full, err, errlen);
    if (st != OUTBOX_OK) {
        outbox_close(ob);
        return st;
    }
    *out = ob;
    return OUTBOX_OK;
}

void outbox_close(struct outbox *ob)
{
    if (ob == NULL)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(ob->stmt[i]);
    /* sqlite3_close only fails with statements left open, and all are
     * finalized above; a database handle is closed even on a failed open. */
    sqlite3_close(ob->db);
    free(ob);
}

int outbox_data_version(struct outbox *ob, long long *out)
{
    sqlite3_stmt *st = ob->stmt[STMT_DATA_VERSION];
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* ---- fetching ---------------------------------------------------------- */

static void outbox_event_free(struct outbox_event *ev)
{
    free(ev->id);
    free(ev->type);
    free(ev->source);
    free(ev->subject);
    free(ev->time);
    free(ev->traceparent);
    free(ev->data);
    memset(ev, 0, sizeof(*ev));
}

void outbox_batch_free(struct outbox_batch *batch)
{
    for (int i = 0; i < batch->count; i++)
        outbox_event_free(&batch->events[i]);
    free(batch->events);
    batch->events = NULL;
    batch->count = 0;
}

/* NULL stays NULL; anything else is copied (NULL then means no memory). */
static char *outbox_column_text(sqlite3_stmt *st, int col, bool *oom)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    char *copy;

    if (text == NULL) {
        if (sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
            *oom = true;
        return NULL;
    }
    copy = strdup((const char *)text);
    if (copy == NULL)
        *oom = true;
    return copy;
}

static int outbox_read_row(sqlite3_stmt *st, struct outbox_event *ev)
{
    bool oom = false;

    ev->seq = sqlite3_column_int64(st, 0);
    ev->id = outbox_column_text(st, 1, &oom);
    ev->type = outbox_column_text(st, 2, &oom);
    ev->source = outbox_column_text(st, 3, &oom);
    ev->subject = outbox_column_text(st, 4, &oom);
    ev->time = outbox_column_text(st, 5, &oom);
    ev->traceparent = outbox_column_text(st, 6, &oom);
    ev->data = outbox_column_text(st, 7, &oom);
    ev->attempts = sqlite3_column_int64(st, 8);
    ev->next_attempt_at = sqlite3_column_int64(st, 9);
    /* The schema says NOT NULL; a NULL here is memory running out. */
    if (oom || ev->id == NULL || ev->type == NULL || ev->source == NULL ||
        ev->subject == NULL || ev->time == NULL || ev->data == NULL) {
        outbox_event_free(ev);
        return -1;
    }
    return 0;
}

int outbox_fetch(struct outbox *ob, int limit, struct outbox_batch *batch)
{
    sqlite3_stmt *st = ob->stmt[STMT_FETCH];
    int rc = SQLITE_DONE;

    outbox_batch_free(batch);
    batch->events = calloc((size_t)limit, sizeof(*batch->events));
    if (batch->events == NULL)
        return -1;
    if (sqlite3_bind_int(st, 1, limit) != SQLITE_OK)
        return -1;
    while (batch->count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (outbox_read_row(st, &batch->events[batch->count]) != 0)
            break;
        batch->count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return -1;
    if (rc == SQLITE_ROW && batch->count < limit)
        return -1; /* a row could not be copied */
    return 0;
}

/* ---- recording results ------------------------------------------------- */

static int outbox_mark(struct outbox *ob, long long seq, long long at)
{
    sqlite3_stmt *st = ob->stmt[STMT_MARK];

    if (sqlite3_bind_int64(st, 1, at) != SQLITE_OK || sqlite3_bind_int64(st, 2, seq) != SQLITE_OK)
        return -1;
    return outbox_exec(ob, STMT_MARK);
}

static int outbox_bind_ms_or_null(sqlite3_stmt *st, int idx, long long ms)
{
    return ms != 0 ? sqlite3_bind_int64(st, idx, ms) : sqlite3_bind_null(st, idx);
}

static int outbox_fail(struct outbox *ob, const struct outbox_failure *f)
{
    sqlite3_stmt *st = ob->stmt[STMT_FAIL];

    if (sqlite3_bind_int64(st, 1, f->seq) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, f->attempts) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, f->error, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        outbox_bind_ms_or_null(st, 4, f->parked_at != 0 ? 0 : f->next_attempt_at) != SQLITE_OK ||
        outbox_bind_ms_or_null(st, 5, f->parked_at) != SQLITE_OK)
        return -1;
    return outbox_exec(ob, STMT_FAIL);
}

static int outbox_renew_bound(struct outbox *ob, const char *holder, long long expires_at,
                              bool *kept)
{
    sqlite3_stmt *st = ob->stmt[STMT_LEASE_RENEW];

    if (sqlite3_bind_text(st, 1, holder, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, expires_at) != SQLITE_OK || outbox_exec(ob, STMT_LEASE_RENEW) != 0)
        return -1;
    *kept = sqlite3_changes(ob->db) == 1;
    return 0;
}

/* ROLLBACK after a failed statement; its own failure changes nothing (the
 * transaction may already be gone), so only the first error is kept. */
static int outbox_abort(struct outbox *ob)
{
    if (sqlite3_get_autocommit(ob->db) == 0)
        (void)outbox_exec(ob, STMT_ROLLBACK);
    return -1;
}

static int outbox_commit_body(struct outbox *ob, const struct outbox_commit *c, bool *lease_kept)
{
    if (outbox_renew_bound(ob, c->holder, c->lease_expires_at, lease_kept) != 0)
        return -1;
    for (int i = 0; i < c->delivered_count; i++) {
        if (outbox_mark(ob, c->delivered[i], c->delivered_at) != 0)
            return -1;
    }
    if (c->failure != NULL && outbox_fail(ob, c->failure) != 0)
        return -1;
    return 0;
}

int outbox_commit(struct outbox *ob, const struct outbox_commit *c, bool *lease_kept)
{
    if (outbox_exec(ob, STMT_BEGIN) != 0)
        return -1;
    if (outbox_commit_body(ob, c, lease_kept) != 0 || outbox_exec(ob, STMT_COMMIT) != 0)
        return outbox_abort(ob);
    return 0;
}

/* ---- the lease ---------------------------------------------------------- */

int outbox_lease_peek(struct outbox *ob, char *holder, size_t holder_len,
                      long long *expires_at, bool *present)
{
    sqlite3_stmt *st = ob->stmt[STMT_LEASE_PEEK];
    int rc = sqlite3_step(st);

    *present = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 0);
        snprintf(holder, holder_len, "%s", h != NULL ? (const char *)h : "");
        *expires_at = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : -1;
}

static int outbox_lease_take(struct outbox *ob, const char *holder, long long expires_at)
{
    sqlite3_stmt *st = ob->stmt[STMT_LEASE_TAKE];

    if (sqlite3_bind_text(st, 1, holder, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, expires_at) != SQLITE_OK)
        return -1;
    return outbox_exec(ob, STMT_LEASE_TAKE);
}

int outbox_lease_acquire(struct outbox *ob, const char *holder, long long now,
                         long long expires_at, bool *acquired, long long *other_expires_at)
{
    char current[256];
    long long current_expires = 0;
    bool present;

    *acquired = false;
    if (outbox_exec(ob, STMT_BEGIN) != 0)
        return -1;
    if (outbox_lease_peek(ob, current, sizeof(current), &current_expires, &present) != 0)
        return outbox_abort(ob);
    if (present && strcmp(current, holder) != 0 && current_expires > now) {
        *other_expires_at = current_expires;
        (void)outbox_abort(ob);
        return 0;
    }
    if (outbox_lease_take(ob, holder, expires_at) != 0 || outbox_exec(ob, STMT_COMMIT) != 0)
        return outbox_abort(ob);
    *acquired = true;
    return 0;
}

int outbox_lease_renew(struct outbox *ob, const char *holder, long long expires_at, bool *kept)
{
    return outbox_renew_bound(ob, holder, expires_at, kept);
}

int outbox_lease_release(struct outbox *ob, const char *holder)
{
    sqlite3_stmt *st = ob->stmt[STMT_LEASE_RELEASE];

    if (sqlite3_bind_text(st, 1, holder, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return -1;
    return outbox_exec(ob, STMT_LEASE_RELEASE);
}

/* ---- retention ---------------------------------------------------------- */

int outbox_prune(struct outbox *ob, long long cutoff, int limit, int *deleted)
{
    sqlite3_stmt *st = ob->stmt[STMT_PRUNE];

    *deleted = 0;
    if (sqlite3_bind_int64(st, 1, cutoff) != SQLITE_OK || sqlite3_bind_int(st, 2, limit) != SQLITE_OK ||
        outbox_exec(ob, STMT_PRUNE) != 0)
        return -1;
    *deleted = sqlite3_changes(ob->db);
    return 0;
}
