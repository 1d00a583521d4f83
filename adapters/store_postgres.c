/*
 * store_postgres.c - the store port on PostgreSQL (libpq): all SQL of this
 * engine, with migrations/postgres/NNN_*.sql.  Selected by
 * DATABASE_URL=postgresql://... or postgres://... (store_select.c).
 *
 * One connection per store: each serving thread of each worker, and each
 * publisher, holds its own; statements are prepared once per connection.  Several hosts share the database, so
 * nothing here relies on being the only writer:
 *
 * - A create is one statement: the order and its event in one implicit
 *   transaction (a data-modifying CTE; a trigger keeps the list's count).
 * - A status change reads the order, checks the transition in C, then
 *   updates it only if the status is still the one read, inserting the
 *   event from the updated row in the same statement.  Two hosts racing on
 *   one order: the second waits on the row lock, finds the status changed,
 *   updates nothing, re-reads, and answers 409.  Exactly one winner.
 * - The list follows orders.seq (an identity drawn at insert): an order
 *   created after another was acknowledged always lists above it.
 * - Migrations run under pg_advisory_lock, each in its own transaction, so
 *   workers starting at once on many hosts apply each exactly once.
 *
 * The outbox.  events.seq is drawn before commit and becomes visible in
 * commit order, so "everything after the last seq sent" would skip an event
 * whose transaction committed late.  The publisher therefore never reads
 * by position: each fetch claims, with FOR UPDATE SKIP LOCKED, the oldest
 * undelivered event of each order (the head of its queue), takes the events
 * of that order behind it along, and holds the claim (an open transaction)
 * until it records what the sink made of them.
 * Events of one order are created under that order's row lock, so within
 * an order seq is commit order; the next event of an order becomes a head
 * only once the previous one is recorded delivered (or parked).  Hence,
 * with any number of publishers: each order's events reach the sink in
 * commit order, none skipped; a publisher that dies mid-batch loses its
 * claim with its connection, and its events are sent again (at least
 * once).  Across orders there is no promise (a batch is in seq order, so
 * one publisher that keeps up delivers in commit order, but an event whose
 * seq was drawn early and committed late comes after later ones), and no
 * lease: every publisher delivers, each the orders it claimed.
 *
 * Wake-up: a trigger NOTIFYs orders_events at each commit that added
 * events; publishers LISTEN on their connection, and fall back to polling
 * when the connection is lost.
 *
 * The slow log's times (store_take_timing): see pg_timed.
 *
 * Unreachable database: every operation first makes sure the connection is
 * alive (a server restart leaves a closed socket, noticed without a query)
 * and reconnects; when it cannot, it answers STORE_BUSY (503 with
 * Retry-After) and tries again no sooner than PG_RECONNECT_MS after that
 * failed attempt, and the worker migrates on its first success if it could
 * not at start.  Only a failed attempt holds the next one back: a
 * connection lost however soon after it was made is replaced at once.  A
 * write whose connection failed before its outcome was known is answered
 * STORE_BUSY, never acknowledged.
 */
#include "store_postgres.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "embedded_migrations.h"
#include "log.h"
#include "metrics.h"

#define PG_RECONNECT_MS 500
#define PG_MIGRATION_LOCK 727364501 /* pg_advisory_lock key: "orders migrate" */
#define PG_RECHECK_MS 1000          /* events claimed by another publisher */
#define PG_COUNTER_SLOTS 16

enum pg_stmt {
    PG_ORDER_CREATE,
    PG_ORDER_CREATE_KEYED,
    PG_IDEMPOTENCY_GET,
    PG_IDEMPOTENCY_PRUNE,
    PG_ORDER_GET,
    PG_ORDER_SET_STATUS,
    PG_PAGE_ALL, /* the page statements: by filter, in this order */
    PG_PAGE_STATUS,
    PG_PAGE_CUSTOMER,
    PG_PAGE_CUSTOMER_STATUS,
    PG_STATS,
    PG_SCHEMA_VERSION,
    PG_CLAIM,
    PG_NEXT_DUE,
    PG_MARK,
    PG_FAIL,
    PG_PRUNE,
    PG_STATS_SINKS,
    PG_SINK_COUNT,
    PG_STMT_COUNT
};

/* The server's time in the statement so far, in ms: selected after the
 * rows a write statement changed were read, so it covers its wait for row
 * and key locks (store_take_timing's lock_wait_ms). */
#define PG_SERVER_MS "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::float8"

static const char *const pg_sql[PG_STMT_COUNT] = {
    [PG_ORDER_CREATE] =
        "WITH o AS (INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)"
        "           VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING seq),"
        " e AS (INSERT INTO events (id, type, source, subject, time, traceparent, data, committed_at)"
        "       VALUES ($5, $6, $7, $1, $8, $9, $10, $4))"
        " SELECT seq, " PG_SERVER_MS " FROM o",
    /* With an Idempotency-Key: the key is taken first, in the same
     * statement; a key another create holds makes this one wait for it
     * (the unique index), and a live key, committed, makes it insert
     * nothing at all.  An expired key gives way. */
    [PG_ORDER_CREATE_KEYED] =
        "WITH k AS (INSERT INTO idempotency_keys AS k"
        "           (caller, key, fingerprint, order_id, created_at, expires_at)"
        "           VALUES ($11, $12, decode($13, 'hex'), $1, $4, $14)"
        "           ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
        "             order_id = excluded.order_id, created_at = excluded.created_at,"
        "             expires_at = excluded.expires_at"
        "           WHERE k.expires_at <= excluded.created_at RETURNING 1),"
        " o AS (INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)"
        "       SELECT $1, $2, $3, 'pending', $4, $4 WHERE EXISTS (SELECT 1 FROM k) RETURNING seq),"
        " e AS (INSERT INTO events (id, type, source, subject, time, traceparent, data, committed_at)"
        "       SELECT $5, $6, $7, $1, $8, $9, $10, $4 WHERE EXISTS (SELECT 1 FROM k))"
        " SELECT o.seq, " PG_SERVER_MS " FROM (VALUES (1)) AS one LEFT JOIN o ON true",
    [PG_IDEMPOTENCY_GET] =
        "SELECT encode(fingerprint, 'hex'), order_id, expires_at FROM idempotency_keys"
        " WHERE caller = $1 AND key = $2",
    /* A few expired keys after each keyed create, through the expiry index. */
    [PG_IDEMPOTENCY_PRUNE] =
        "DELETE FROM idempotency_keys WHERE (caller, key) IN"
        " (SELECT caller, key FROM idempotency_keys WHERE expires_at <= $1"
        " ORDER BY expires_at LIMIT 16)",
    [PG_ORDER_GET] =
        "SELECT id, customer_id, items, status, created_at, updated_at, version, seq"
        " FROM orders WHERE id = $1",
    /* Conditional on the status and version read: If-Match was checked on
     * that version, and a change by another host in between makes this
     * update nothing (then the caller reads again). */
    [PG_ORDER_SET_STATUS] =
        "WITH u AS (UPDATE orders SET status = $2, updated_at = $3, version = version + 1"
        "           WHERE id = $1 AND status = $4 AND version = $11 RETURNING id),"
        " e AS (INSERT INTO events (id, type, source, subject, time, traceparent, data, committed_at)"
        "       SELECT $5, $6, $7, u.id, $8, $9, $10, $3 FROM u)"
        " SELECT count(*), " PG_SERVER_MS " FROM u",
    /* One statement, one snapshot: the total never disagrees with the page.
     * Each walks one index newest first from the cursor's position ($1; the
     * largest seq for offset pages) and stops after $2 rows ($2 = 0: the
     * total alone).  Totals: trigger-kept rows, or a customer's index range. */
#define PG_PAGE(total, where)                                                                   \
    "WITH t AS (" total "),"                                                                    \
    " p AS (SELECT id, customer_id, items, status, created_at, updated_at, version, seq"        \
    "       FROM orders WHERE seq < $1" where " ORDER BY seq DESC LIMIT $2 OFFSET $3)"         \
    " SELECT t.total, p.id, p.customer_id, p.items, p.status, p.created_at, p.updated_at,"      \
    " p.version, p.seq FROM t LEFT JOIN p ON true ORDER BY p.seq DESC NULLS LAST"
    [PG_PAGE_ALL] = PG_PAGE("SELECT sum(total)::bigint AS total FROM order_count", ""),
    [PG_PAGE_STATUS] = PG_PAGE("SELECT sum(total)::bigint AS total FROM order_status_count"
                               " WHERE status = $4",
                               " AND status = $4"),
    [PG_PAGE_CUSTOMER] = PG_PAGE("SELECT count(*) AS total FROM orders WHERE customer_id = $4",
                                 " AND customer_id = $4"),
    [PG_PAGE_CUSTOMER_STATUS] = PG_PAGE("SELECT count(*) AS total FROM orders"
                                        " WHERE customer_id = $4 AND status = $5",
                                        " AND customer_id = $4 AND status = $5"),
    /* Each figure reads one row or a partial index of just the rows counted. */
    [PG_STATS] =
        "SELECT (SELECT count(*) FROM events WHERE delivered_at IS NULL AND parked_at IS NULL),"
        " (SELECT committed_at FROM events WHERE delivered_at IS NULL AND parked_at IS NULL"
        "  ORDER BY seq LIMIT 1),"
        " (SELECT count(*) FROM events WHERE parked_at IS NOT NULL),"
        " delivered, delivery_failures FROM outbox_counters WHERE singleton = 1",
    [PG_SCHEMA_VERSION] =
        "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN -1 ELSE 0 END",
    /* The heads of the orders' queues that are due, oldest first, skipping
     * those another publisher holds (see the top of this file), then with
     * each head the events of its order behind it: the batch, in seq order,
     * is the commit order of each order, and of the whole stream when one
     * publisher keeps up.  Only the heads are locked: no other publisher
     * takes an event of an order whose head is pending. */
    [PG_CLAIM] =
        "WITH h AS (SELECT e.seq, e.subject FROM events e"
        "           WHERE e.delivered_at IS NULL AND e.parked_at IS NULL"
        "             AND coalesce(e.next_attempt_at, 0) <= $2"
        "             AND NOT EXISTS (SELECT 1 FROM events p WHERE p.subject = e.subject"
        "                             AND p.seq < e.seq AND p.delivered_at IS NULL"
        "                             AND p.parked_at IS NULL)"
        "           ORDER BY e.seq LIMIT $1 FOR UPDATE OF e SKIP LOCKED)"
        " SELECT x.seq, x.id, x.type, x.source, x.subject, x.time, x.traceparent, x.data,"
        " x.attempts, coalesce(x.next_attempt_at, 0)"
        " FROM events x JOIN h ON x.subject = h.subject AND x.seq >= h.seq"
        " WHERE x.delivered_at IS NULL AND x.parked_at IS NULL"
        " ORDER BY x.seq LIMIT $1",
    /* Nothing claimable: when to look again.  A retry's time, or soon when
     * another publisher holds events (it may die with them). */
    [PG_NEXT_DUE] =
        "SELECT min(CASE WHEN coalesce(next_attempt_at, 0) > $1 THEN next_attempt_at"
        "                ELSE $1 + 1000 END)"
        " FROM events WHERE delivered_at IS NULL AND parked_at IS NULL",
    [PG_MARK] =
        "WITH d AS (UPDATE events SET delivered_at = $1"
        "           WHERE seq = ANY ($2::bigint[]) AND delivered_at IS NULL RETURNING 1)"
        " UPDATE outbox_counters SET delivered = delivered + (SELECT count(*) FROM d)"
        " WHERE singleton = 1",
    [PG_FAIL] =
        "WITH f AS (UPDATE events SET attempts = $2, last_error = $3, next_attempt_at = $4,"
        "           parked_at = $5 WHERE seq = $1 AND delivered_at IS NULL RETURNING 1)"
        " UPDATE outbox_counters SET delivery_failures = delivery_failures + (SELECT count(*) FROM f)"
        " WHERE singleton = 1",
    /* A handful of rows, one per transport ever used (migrations/postgres/002). */
    [PG_STATS_SINKS] =
        "SELECT sink, deliveries, failures FROM publisher_sink_counters ORDER BY sink LIMIT 8",
    [PG_SINK_COUNT] =
        "INSERT INTO publisher_sink_counters AS c (sink, deliveries, failures) VALUES ($1, $2, $3)"
        " ON CONFLICT (sink) DO UPDATE SET deliveries = c.deliveries + excluded.deliveries,"
        " failures = c.failures + excluded.failures",
    [PG_PRUNE] =
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
        " WHERE delivered_at IS NOT NULL AND delivered_at < $1 LIMIT $2)",
};

struct pg_store {
    struct store base; /* first: core sees only this */
    PGconn *conn;
    char *url;
    bool prepared[PG_STMT_COUNT];
    bool migrate_wanted; /* a worker: migrate on the first connection that can */
    bool migrated;
    bool listening;      /* the publisher asked for the change signal */
    bool in_claim;       /* a fetch's transaction is open */
    long long notices;   /* NOTIFYs received */
    double next_connect_ms;
    int busy_timeout_ms;
    long long (*clock_ms)(void);
    struct store_timing timing; /* since the last store_take_timing */
    char error[512];
};

static struct pg_store *pg_of(struct store *st)
{
    return (struct pg_store *)st;
}

static const char *pg_last_error(const struct store *st)
{
    const struct pg_store *s = (const struct pg_store *)st;
    return s->error[0] != '\0' ? s->error : "no error";
}

/* libpq's messages end in a newline and may span lines: one line for logs. */
static void pg_set_error(struct pg_store *s, const char *what, const char *message)
{
    snprintf(s->error, sizeof s->error, "%s%s%s", what, message != NULL ? ": " : "",
             message != NULL ? message : "");
    /* line breaks and tabs become one space each run */
    char *to = s->error;
    for (const char *p = s->error; *p != '\0'; p++) {
        bool blank = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
        if (blank && (to == s->error || to[-1] == ' '))
            continue;
        *to++ = blank ? ' ' : *p;
    }
    *to = '\0';
    size_t n = strlen(s->error);
    while (n > 0 && s->error[n - 1] == ' ')
        s->error[--n] = '\0';
}

/* SQLSTATE classes into the outcomes core knows. */
static enum store_status pg_status_of(const PGresult *res, const PGconn *conn)
{
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        return STORE_BUSY;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return STORE_BUSY; /* no answer from the server at all */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
        strcmp(state, "53300") == 0)
        return STORE_BUSY;
    if (strncmp(state, "53", 2) == 0 || strcmp(state, "58030") == 0)
        return STORE_FULL;
    return STORE_ERROR;
}

/* ---- the connection ------------------------------------------------------- */

static void pg_drop(struct pg_store *s)
{
    if (s->conn != NULL)
        PQfinish(s->conn);
    s->conn = NULL;
    s->in_claim = false;
    memset(s->prepared, 0, sizeof s->prepared);
}

#define PG_ALIVE_READS 4

/* A server that restarted (or closed us) leaves on the socket its last
 * words (a FATAL "terminating connection") and then EOF: read what is
 * there without a query, and let PQstatus say.  libpq returns from a read
 * that got data without looking further, so the EOF behind the message
 * takes another read: read while the socket stays readable (a few times:
 * notices are short).  Done before the first statement of every operation,
 * it finds the connection a restart broke before anything is sent on it,
 * so the operation reconnects instead of failing. */
static void pg_check_alive(struct pg_store *s)
{
    for (int i = 0; i < PG_ALIVE_READS; i++) {
        if (s->conn == NULL)
            return;
        if (PQstatus(s->conn) != CONNECTION_OK) {
            pg_set_error(s, "connection lost", PQerrorMessage(s->conn));
            pg_drop(s);
            return;
        }
        struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
        if (p.fd < 0 || poll(&p, 1, 0) <= 0)
            return;
        if (PQconsumeInput(s->conn) == 0 || PQstatus(s->conn) != CONNECTION_OK) {
            pg_set_error(s, "connection lost", PQerrorMessage(s->conn));
            pg_drop(s);
            return;
        }
        PGnotify *n;
        while ((n = PQnotifies(s->conn)) != NULL) {
            s->notices++;
            PQfreemem(n);
        }
    }
}

static bool pg_simple(struct pg_store *s, const char *sql, enum store_status *why)
{
    PGresult *res = PQexec(s->conn, sql);
    ExecStatusType t = PQresultStatus(res);
    bool ok = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
    if (!ok) {
        pg_set_error(s, sql, PQresultErrorMessage(res));
        if (why != NULL)
            *why = pg_status_of(res, s->conn);
    }
    PQclear(res);
    return ok;
}

/* BEGIN; a connection it finds lost is dropped (for pg_retry). */
static bool pg_begin(struct pg_store *s, enum store_status *why)
{
    if (pg_simple(s, "BEGIN", why))
        return true;
    if (PQstatus(s->conn) != CONNECTION_OK)
        pg_drop(s);
    return false;
}

static enum store_status pg_migrate_now(struct pg_store *s);

/* What the server says besides results (a NOTICE that a table exists, a
 * WARNING, the FATAL "terminating connection" it sends before closing a
 * connection at shutdown) goes to the process's JSON log, not to libpq's
 * default of raw lines on stderr: notices at debug, the rest at warn. */
static void pg_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    bool minor = severity == NULL || strcmp(severity, "NOTICE") == 0 ||
                 strcmp(severity, "INFO") == 0 || strcmp(severity, "LOG") == 0 ||
                 strcmp(severity, "DEBUG") == 0;
    struct log_field f[] = {LOG_STR("severity", severity != NULL ? severity : "?"),
                            LOG_STR("sqlstate", state != NULL ? state : ""),
                            LOG_STR("detail", message != NULL ? message : "")};
    log_emit(log_process(), minor ? LOG_DEBUG : LOG_WARN, NULL, "database message", f,
             LOG_COUNT(f));
}

/* Connected, configured and (for a worker) migrated; else STORE_BUSY or
 * what the migration met. */
static enum store_status pg_ready(struct pg_store *s)
{
    pg_check_alive(s);
    if (s->conn == NULL) {
        double now = clock_monotonic_ms();
        if (now < s->next_connect_ms)
            return STORE_BUSY; /* s->error still says why */
        /* Held back if this attempt fails; lifted below once it succeeds. */
        s->next_connect_ms = now + PG_RECONNECT_MS;
        /* Defaults first: what the URL says wins (expand_dbname). */
        const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *const values[] = {"2", "orders", s->url, NULL};
        s->conn = PQconnectdbParams(keys, values, 1);
        if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
            pg_set_error(s, "cannot connect",
                         s->conn != NULL ? PQerrorMessage(s->conn) : "out of memory");
            pg_drop(s);
            return STORE_BUSY;
        }
        PQsetNoticeReceiver(s->conn, pg_notice, NULL);
        char sql[96];
        /* A writer waits for a row lock at most the busy timeout, then 503. */
        snprintf(sql, sizeof sql, "SET lock_timeout = %d", s->busy_timeout_ms);
        enum store_status why = STORE_BUSY;
        if (!pg_simple(s, sql, &why) ||
            (s->listening && !pg_simple(s, "LISTEN orders_events", &why))) {
            pg_drop(s);
            return why;
        }
        /* Connected: the throttle is for a server that refused us, not
         * for one that accepted.  Kept, a connection lost within
         * PG_RECONNECT_MS of being made (a restart right after a
         * reconnect) left the thread answering 503 without trying while
         * the server accepted connections. */
        s->next_connect_ms = 0;
    }
    if (s->migrate_wanted && !s->migrated)
        return pg_migrate_now(s);
    return STORE_OK;
}

/* After an operation's statement failed on a connection pg_ready had
 * found alive: whether to run it again, once, on a fresh connection (no
 * throttle holds it back: that connection was made successfully).  Only
 * when the connection was lost (dropped: s->conn is NULL) and the statement
 * changed nothing whatever reached the server: a read, or a BEGIN.  Never
 * after a write or COMMIT whose outcome is unknown (the caller answers
 * STORE_BUSY: 503, nothing acknowledged, nothing applied twice).  A server
 * that restarted while the connection sat idle is found by pg_check_alive
 * before anything is sent; this covers a restart that closed it between
 * that check and the first statement. */
static bool pg_retry(struct pg_store *s, enum store_status r, int *retried)
{
    if (r != STORE_BUSY || s->conn != NULL || *retried > 0)
        return false;
    (*retried)++;
    return true;
}

/* Opens the publisher's claim transaction: a BEGIN that failed changed
 * nothing, so it is tried once more on a fresh connection. */
static enum store_status pg_begin_claim(struct pg_store *s)
{
    int retried = 0;
    enum store_status why;
    bool begun;
    do {
        why = pg_ready(s);
        if (why != STORE_OK)
            return why;
        begun = pg_begin(s, &why);
    } while (!begun && pg_retry(s, why, &retried));
    if (!begun)
        return why;
    s->in_claim = true;
    return STORE_OK;
}

/* Runs a prepared statement (prepared on first use on this connection).
 * Returns the result, or NULL with *why and the error set. */
static PGresult *pg_run(struct pg_store *s, enum pg_stmt which, int n, const char *const *params,
                        enum store_status *why)
{
    char name[16];
    snprintf(name, sizeof name, "s%d", (int)which);
    if (!s->prepared[which]) {
        PGresult *prep = PQprepare(s->conn, name, pg_sql[which], 0, NULL);
        if (PQresultStatus(prep) != PGRES_COMMAND_OK) {
            pg_set_error(s, "prepare", PQresultErrorMessage(prep));
            *why = pg_status_of(prep, s->conn);
            PQclear(prep);
            if (PQstatus(s->conn) != CONNECTION_OK)
                pg_drop(s);
            return NULL;
        }
        PQclear(prep);
        s->prepared[which] = true;
    }
    PGresult *res = PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
        return res;
    pg_set_error(s, "query", PQresultErrorMessage(res));
    *why = pg_status_of(res, s->conn);
    PQclear(res);
    if (PQstatus(s->conn) != CONNECTION_OK)
        pg_drop(s);
    return NULL;
}

/* A write statement's share of store_take_timing, from its round trip
 * (started_ms to now) and the server's time in it (column col of res):
 * PostgreSQL has no write lock to wait for, but a write waits inside its
 * statement for the row and key locks of other writers (a status change
 * for a concurrent one on the same order, a keyed create for a create
 * with the same key, any write for an explicit LOCK).  The server's time
 * is that wait plus the statement's own work (a fraction of a ms for these
 * one-row statements): lock_wait_ms.  The rest of the round trip, the
 * network, the commit of the statement's implicit transaction and its
 * flush, is transaction_ms.  The two never overlap, as on SQLite.  A
 * table lock the statement takes when it is bound (an operator's LOCK
 * TABLE) is waited for before the server's clock starts: transaction_ms. */
static void pg_timed(struct pg_store *s, double started_ms, const PGresult *res, int col)
{
    double round_trip = clock_monotonic_ms() - started_ms;
    double server = 0;
    if (res != NULL && PQntuples(res) >= 1 && PQnfields(res) > col && !PQgetisnull(res, 0, col))
        server = atof(PQgetvalue(res, 0, col));
    if (server < 0)
        server = 0;
    if (server > round_trip)
        server = round_trip;
    s->timing.lock_wait_ms += server;
    s->timing.transaction_ms += round_trip - server;
}

static void pg_take_timing(struct store *st, struct store_timing *out)
{
    struct pg_store *s = pg_of(st);
    *out = s->timing;
    memset(&s->timing, 0, sizeof s->timing);
}

static void pg_close(struct store *st)
{
    struct pg_store *s = pg_of(st);
    pg_drop(s);
    free(s->url);
    free(s);
}

static enum store_status pg_open(const struct store_options *opt, struct store **out, char *err,
                                 size_t errlen)
{
    *out = NULL;
    struct pg_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->url = strdup(opt->location)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->base.ops = &store_postgres_ops;
    s->clock_ms = opt->clock_ms != NULL ? opt->clock_ms : clock_now_ms;
    s->busy_timeout_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 0;
    /* A worker's store (create) migrates on its first connection, whichever
     * thread or process gets there first (the advisory lock orders them);
     * the publisher's waits for the workers. */
    s->migrate_wanted = opt->create;
    /* A malformed URL is a configuration error; an unreachable server is
     * not (the service starts, answers 503, and connects when it can). */
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(opt->location, &perr);
    if (parsed == NULL) {
        /* libpq's message quotes the URL, password and all: not repeated. */
        snprintf(err, errlen, "DATABASE_URL is not a valid PostgreSQL URL (libpq's URI form)");
        PQfreemem(perr);
        pg_close(&s->base);
        return STORE_ERROR;
    }
    PQconninfoFree(parsed);
    (void)pg_ready(s); /* a first attempt; failing is not fatal here */
    *out = &s->base;
    return STORE_OK;
}

/* ---- migrations ------------------------------------------------------------ */

static int pg_schema_latest(void)
{
    return atoi(embedded_postgres_migrations[embedded_postgres_migrations_count - 1].name);
}

static enum store_status pg_apply(struct pg_store *s, const struct embedded_file *m)
{
    enum store_status why = STORE_ERROR;
    char version[16];
    snprintf(version, sizeof version, "%d", atoi(m->name));
    const char *params[] = {version, m->name};
    if (!pg_simple(s, "BEGIN", &why))
        return why;
    PGresult *res = PQexecParams(s->conn, "SELECT 1 FROM schema_migrations WHERE version = $1",
                                 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    bool applied = ok && PQntuples(res) > 0;
    if (!ok) {
        pg_set_error(s, "migration", PQresultErrorMessage(res));
        why = pg_status_of(res, s->conn);
    }
    PQclear(res);
    if (ok && !applied)
        ok = pg_simple(s, (const char *)m->data, &why);
    if (ok && !applied) {
        res = PQexecParams(s->conn,
                           "INSERT INTO schema_migrations (version, name, applied_at)"
                           " VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                           2, NULL, params, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            pg_set_error(s, "migration", PQresultErrorMessage(res));
            why = pg_status_of(res, s->conn);
        }
        PQclear(res);
    }
    if (ok && pg_simple(s, "COMMIT", &why))
        return STORE_OK;
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        (void)pg_simple(s, "ROLLBACK", NULL);
    return why;
}

/* Under the advisory lock: every migration not yet recorded, each in its
 * own transaction.  The lock is the session's; a process that dies holding
 * it releases it with its connection. */
static enum store_status pg_migrate_now(struct pg_store *s)
{
    enum store_status why = STORE_ERROR;
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", PG_MIGRATION_LOCK);
    if (!pg_simple(s, "SET lock_timeout = 0", &why) || !pg_simple(s, lock, &why)) {
        pg_drop(s);
        return why;
    }
    enum store_status result =
        pg_simple(s, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at bigint NOT NULL)", &why)
            ? STORE_OK
            : why;
    for (size_t i = 0; result == STORE_OK && i < embedded_postgres_migrations_count; i++)
        result = pg_apply(s, &embedded_postgres_migrations[i]);
    char unlock[96], timeout[64];
    snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%d)", PG_MIGRATION_LOCK);
    snprintf(timeout, sizeof timeout, "SET lock_timeout = %d", s->busy_timeout_ms);
    if (s->conn == NULL || !pg_simple(s, unlock, NULL) || !pg_simple(s, timeout, NULL)) {
        pg_drop(s); /* the lock goes with the connection */
        return result == STORE_OK ? STORE_BUSY : result;
    }
    if (result == STORE_OK)
        s->migrated = true;
    return result;
}

static enum store_status pg_migrate(struct store *st, char *err, size_t errlen)
{
    struct pg_store *s = pg_of(st);
    s->migrate_wanted = true;
    enum store_status r = pg_ready(s);
    if (r != STORE_OK)
        snprintf(err, errlen, "%s", s->error);
    return r;
}

static enum store_status pg_schema_version(struct store *st, int *applied)
{
    struct pg_store *s = pg_of(st);
    *applied = 0;
    enum store_status why = pg_ready(s);
    if (why != STORE_OK)
        return why;
    PGresult *res = pg_run(s, PG_SCHEMA_VERSION, 0, NULL, &why);
    if (res == NULL)
        return why;
    bool exists = PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) == 0;
    PQclear(res);
    if (!exists)
        return STORE_OK;
    /* Not prepared: the table may not have existed when this connection
     * began. */
    res = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_set_error(s, "schema version", PQresultErrorMessage(res));
        why = pg_status_of(res, s->conn);
        PQclear(res);
        return why;
    }
    *applied = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return STORE_OK;
}

/* ---- orders ------------------------------------------------------------------ */

static int pg_read_order(const PGresult *res, int row, int col, struct order *out)
{
    memset(out, 0, sizeof *out);
    for (int c = col; c < col + 8; c++)
        if (PQgetisnull(res, row, c))
            return -1;
    if (!order_status_parse(PQgetvalue(res, row, col + 3), &out->status))
        return -1;
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, row, col));
    out->customer_id = strdup(PQgetvalue(res, row, col + 1));
    out->items_json = strdup(PQgetvalue(res, row, col + 2));
    out->created_ms = atoll(PQgetvalue(res, row, col + 4));
    out->updated_ms = atoll(PQgetvalue(res, row, col + 5));
    out->version = atoll(PQgetvalue(res, row, col + 6));
    out->seq = atoll(PQgetvalue(res, row, col + 7));
    if (out->customer_id == NULL || out->items_json == NULL) {
        order_free(out);
        return -1;
    }
    return 0;
}

/* The event's columns as parameters $5..$10 of the create and update. */
static void pg_event_params(const struct event_row *ev, const char **p)
{
    p[0] = ev->id;
    p[1] = ev->type;
    p[2] = ev->source;
    p[3] = ev->time;
    p[4] = ev->traceparent;
    p[5] = ev->data;
}

static enum store_status pg_get(struct pg_store *s, const char *id, struct order *out);

/* A remembered, live key of the caller: STORE_REPLAYED with the order it
 * made in o, or STORE_KEY_REUSED; STORE_OK when there is none. */
static enum store_status pg_idempotency_check(struct pg_store *s, struct order *o,
                                              const struct idempotency_claim *claim, long long now)
{
    enum store_status why = STORE_ERROR;
    const char *p[2] = {claim->caller, claim->key};
    PGresult *res = pg_run(s, PG_IDEMPOTENCY_GET, 2, p, &why);
    if (res == NULL)
        return why;
    enum store_status r = STORE_OK;
    char order_id[UUID_STR_LEN + 1] = "";
    if (PQntuples(res) == 1 && atoll(PQgetvalue(res, 0, 2)) > now) {
        char hex[2 * IDEMPOTENCY_FINGERPRINT_LEN + 1];
        for (int i = 0; i < IDEMPOTENCY_FINGERPRINT_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", claim->fingerprint[i]);
        if (strcmp(PQgetvalue(res, 0, 0), hex) == 0) {
            snprintf(order_id, sizeof order_id, "%s", PQgetvalue(res, 0, 1));
            r = STORE_REPLAYED;
        } else {
            r = STORE_KEY_REUSED;
        }
    }
    PQclear(res);
    if (r == STORE_REPLAYED) {
        struct order made;
        enum store_status got = pg_get(s, order_id, &made);
        if (got != STORE_OK)
            return got == STORE_NOT_FOUND ? STORE_ERROR : got;
        order_free(o);
        *o = made;
    }
    return r;
}

/* The create's statement: the order and its event (and with a claim, the
 * key) in one implicit transaction.  *taken: with a claim, whether the key
 * was ours to take. */
static enum store_status pg_insert_order(struct pg_store *s, struct order *o,
                                         const struct event_meta *meta,
                                         const struct idempotency_claim *claim, bool *taken)
{
    struct event_row ev;
    if (event_build(&ev, o, NULL, meta, o->updated_ms) != 0)
        return STORE_ERROR;
    char created[24], expires[24], hex[2 * IDEMPOTENCY_FINGERPRINT_LEN + 1] = "";
    snprintf(created, sizeof created, "%lld", o->created_ms);
    snprintf(expires, sizeof expires, "%lld", o->created_ms + (claim != NULL ? claim->ttl_ms : 0));
    if (claim != NULL)
        for (int i = 0; i < IDEMPOTENCY_FINGERPRINT_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", claim->fingerprint[i]);
    const char *p[14] = {o->id, o->customer_id, o->items_json, created};
    pg_event_params(&ev, p + 4);
    if (claim != NULL) {
        p[10] = claim->caller;
        p[11] = claim->key;
        p[12] = hex;
        p[13] = expires;
    }
    enum store_status why = STORE_ERROR;
    double started = clock_monotonic_ms();
    PGresult *res = pg_run(s, claim != NULL ? PG_ORDER_CREATE_KEYED : PG_ORDER_CREATE,
                           claim != NULL ? 14 : 10, p, &why);
    pg_timed(s, started, res, 1);
    event_free(&ev);
    if (res == NULL)
        return why;
    /* one row; its seq is NULL when the key was not ours to take */
    *taken = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (*taken)
        o->seq = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return *taken || claim != NULL ? STORE_OK : STORE_ERROR;
}

#define PG_KEY_ATTEMPTS 3

static enum store_status pg_order_create(struct store *st, struct order *o,
                                         const struct event_meta *meta,
                                         const struct idempotency_claim *claim)
{
    struct pg_store *s = pg_of(st);
    enum store_status why = pg_ready(s);
    if (why != STORE_OK)
        return why;
    long long now = s->clock_ms();
    o->created_ms = o->updated_ms = now;
    o->status = ORDER_PENDING;
    o->version = 1;
    o->seq = 0;
    if (uuid_v7_generate(o->created_ms, o->id) != 0)
        return STORE_ERROR;
    /* With a key: a live one answers at once; else the statement takes it.
     * If another create took it meanwhile, the statement waited for that
     * one to commit and wrote nothing, and the key is looked up again. */
    int retried = 0;
    for (int attempt = 0; attempt < PG_KEY_ATTEMPTS; attempt++) {
        if (claim != NULL) {
            /* a read first: repeated on a fresh connection if it was lost */
            enum store_status known = pg_idempotency_check(s, o, claim, now);
            while (pg_retry(s, known, &retried)) {
                known = pg_ready(s);
                if (known == STORE_OK)
                    known = pg_idempotency_check(s, o, claim, now);
            }
            if (known != STORE_OK)
                return known;
        }
        bool taken = false;
        why = pg_insert_order(s, o, meta, claim, &taken);
        if (why != STORE_OK || taken) {
            if (why == STORE_OK && claim != NULL) {
                char cutoff[24];
                snprintf(cutoff, sizeof cutoff, "%lld", now);
                const char *p[1] = {cutoff};
                enum store_status ignored;
                PQclear(pg_run(s, PG_IDEMPOTENCY_PRUNE, 1, p, &ignored)); /* best effort */
            }
            return why;
        }
    }
    return STORE_KEY_IN_PROGRESS;
}

static enum store_status pg_get(struct pg_store *s, const char *id, struct order *out)
{
    enum store_status why = STORE_ERROR;
    const char *p[1] = {id};
    PGresult *res = pg_run(s, PG_ORDER_GET, 1, p, &why);
    if (res == NULL)
        return why;
    enum store_status r = PQntuples(res) == 0          ? STORE_NOT_FOUND
                          : pg_read_order(res, 0, 0, out) == 0 ? STORE_OK
                                                               : STORE_ERROR;
    PQclear(res);
    return r;
}

/* pg_get, repeated once on a fresh connection when the connection was
 * lost under it (a read changed nothing). */
static enum store_status pg_get_retrying(struct pg_store *s, const char *id, struct order *out,
                                         int *retried)
{
    enum store_status r = pg_get(s, id, out);
    while (pg_retry(s, r, retried)) {
        r = pg_ready(s);
        if (r == STORE_OK)
            r = pg_get(s, id, out);
    }
    return r;
}

static enum store_status pg_order_get(struct store *st, const char *id, struct order *out)
{
    struct pg_store *s = pg_of(st);
    enum store_status r = pg_ready(s);
    int retried = 0;
    return r == STORE_OK ? pg_get_retrying(s, id, out, &retried) : r;
}

#define PG_TRANSITION_ATTEMPTS 4

static enum store_status pg_order_transition(struct store *st, const char *id,
                                             enum order_status to,
                                             const struct precondition *pre,
                                             const struct event_meta *meta,
                                             struct order *out, enum order_status *from)
{
    struct pg_store *s = pg_of(st);
    enum store_status r = pg_ready(s);
    if (r != STORE_OK)
        return r;
    int retried = 0;
    /* A writer on another host may change the status between our read and
     * our update; then the update matches nothing, and we look again.  The
     * read may be repeated on a fresh connection; the update never is. */
    for (int attempt = 0; attempt < PG_TRANSITION_ATTEMPTS; attempt++) {
        r = pg_get_retrying(s, id, out, &retried);
        if (r != STORE_OK)
            return r;
        *from = out->status;
        /* The precondition first (RFC 9110, 13.2.2), on the version the
         * update below is conditional on. */
        if (!precondition_holds(pre, out->version))
            return STORE_PRECONDITION_FAILED;
        if (!order_transition_allowed(out->status, to))
            return STORE_CONFLICT;
        long long read_version = out->version;
        out->status = to;
        out->version++;
        out->updated_ms = s->clock_ms();
        if (out->updated_ms < out->created_ms) /* the wall clock stepped back */
            out->updated_ms = out->created_ms;
        struct event_row ev;
        if (event_build(&ev, out, from, meta, out->updated_ms) != 0) {
            order_free(out);
            return STORE_ERROR;
        }
        char updated[24], version[24];
        snprintf(updated, sizeof updated, "%lld", out->updated_ms);
        snprintf(version, sizeof version, "%lld", read_version);
        const char *p[11] = {out->id, order_status_name(to), updated, order_status_name(*from)};
        pg_event_params(&ev, p + 4);
        p[10] = version;
        enum store_status why = STORE_ERROR;
        double started = clock_monotonic_ms();
        PGresult *res = pg_run(s, PG_ORDER_SET_STATUS, 11, p, &why);
        pg_timed(s, started, res, 1);
        event_free(&ev);
        if (res == NULL) {
            order_free(out);
            return why;
        }
        bool won = PQntuples(res) == 1 && atoll(PQgetvalue(res, 0, 0)) == 1;
        PQclear(res);
        if (won)
            return STORE_OK;
        order_free(out);
    }
    return STORE_BUSY;
}

/* Runs q's page statement for up to rows orders (0: the total alone). */
static PGresult *pg_page_query(struct pg_store *s, const struct page_query *q, long long rows,
                               enum store_status *why)
{
    char after[24], limit[24], offset[24];
    snprintf(after, sizeof after, "%lld", q->has_cursor ? q->after : INT64_MAX);
    snprintf(limit, sizeof limit, "%lld", rows);
    snprintf(offset, sizeof offset, "%lld", q->has_cursor ? 0 : q->offset);
    const char *p[5] = {after, limit, offset};
    int n = 3;
    if (q->has_customer)
        p[n++] = q->customer_id;
    if (q->has_status)
        p[n++] = order_status_name(q->status);
    enum pg_stmt which =
        (enum pg_stmt)(PG_PAGE_ALL + (q->has_status ? 1 : 0) + (q->has_customer ? 2 : 0));
    return pg_run(s, which, n, p, why);
}

static enum store_status pg_page_once(struct pg_store *s, const struct page_query *q,
                                      struct order *items, size_t *count, long long *total,
                                      bool *more)
{
    enum store_status why = STORE_ERROR;
    /* one more than the page, to learn whether one follows */
    PGresult *res = pg_page_query(s, q, q->limit + 1, &why);
    if (res == NULL)
        return why;
    int rows = PQntuples(res);
    enum store_status r = rows >= 1 ? STORE_OK : STORE_ERROR;
    if (r == STORE_OK)
        *total = PQgetisnull(res, 0, 0) ? 0 : atoll(PQgetvalue(res, 0, 0));
    for (int i = 0; r == STORE_OK && i < rows; i++) {
        if (PQgetisnull(res, i, 1))
            break; /* the empty page's one row: the total alone */
        if (*count == (size_t)q->limit) {
            *more = true;
            break;
        }
        if (pg_read_order(res, i, 1, &items[*count]) != 0)
            r = STORE_ERROR;
        else
            (*count)++;
    }
    PQclear(res);
    return r;
}

static enum store_status pg_order_page(struct store *st, const struct page_query *q,
                                       struct order **items, size_t *count, long long *total,
                                       bool *more)
{
    struct pg_store *s = pg_of(st);
    *items = calloc((size_t)q->limit, sizeof **items);
    *count = 0;
    *more = false;
    if (*items == NULL)
        return STORE_ERROR;
    int retried = 0;
    enum store_status r;
    do {
        r = pg_ready(s);
        if (r != STORE_OK)
            break;
        r = pg_page_once(s, q, *items, count, total, more);
        if (r != STORE_OK) {
            for (size_t i = 0; i < *count; i++)
                order_free(&(*items)[i]);
            *count = 0;
            *more = false;
        }
    } while (pg_retry(s, r, &retried));
    if (r != STORE_OK) {
        free(*items);
        *items = NULL;
    }
    return r;
}

static enum store_status pg_order_count(struct store *st, const struct page_query *q,
                                        long long *total)
{
    struct pg_store *s = pg_of(st);
    int retried = 0;
    PGresult *res = NULL;
    enum store_status why;
    do {
        why = pg_ready(s);
        if (why != STORE_OK)
            return why;
        res = pg_page_query(s, q, 0, &why);
    } while (res == NULL && pg_retry(s, why, &retried));
    if (res == NULL)
        return why;
    enum store_status r = PQntuples(res) >= 1 ? STORE_OK : STORE_ERROR;
    if (r == STORE_OK)
        *total = PQgetisnull(res, 0, 0) ? 0 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return r;
}

static enum store_status pg_outbox_stats(struct store *st, long long now_ms,
                                         struct outbox_stats *out)
{
    struct pg_store *s = pg_of(st);
    memset(out, 0, sizeof *out);
    int retried = 0;
    PGresult *res = NULL;
    enum store_status why;
    do {
        why = pg_ready(s);
        if (why != STORE_OK)
            return why;
        res = pg_run(s, PG_STATS, 0, NULL, &why);
    } while (res == NULL && pg_retry(s, why, &retried));
    if (res == NULL)
        return why;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return STORE_ERROR;
    }
    out->pending = atoll(PQgetvalue(res, 0, 0));
    if (!PQgetisnull(res, 0, 1)) {
        long long oldest = atoll(PQgetvalue(res, 0, 1));
        if (now_ms > oldest)
            out->oldest_pending_age_s = (double)(now_ms - oldest) / 1000.0;
    }
    out->parked = atoll(PQgetvalue(res, 0, 2));
    out->delivered_total = atoll(PQgetvalue(res, 0, 3));
    out->delivery_failures_total = atoll(PQgetvalue(res, 0, 4));
    PQclear(res);
    res = pg_run(s, PG_STATS_SINKS, 0, NULL, &why);
    if (res == NULL)
        return why;
    for (int i = 0; i < PQntuples(res) && out->sink_count < OUTBOX_STATS_SINKS; i++) {
        struct outbox_sink_stats *k = &out->sinks[out->sink_count++];
        snprintf(k->name, sizeof k->name, "%s", PQgetvalue(res, i, 0));
        k->deliveries = atoll(PQgetvalue(res, i, 1));
        k->failures = atoll(PQgetvalue(res, i, 2));
    }
    PQclear(res);
    return STORE_OK;
}

/* ---- the outbox --------------------------------------------------------------- */

/* A claim left open (a batch that was never recorded) is given up, so its
 * events can be claimed again, by us or another publisher. */
static void pg_end_claim(struct pg_store *s)
{
    if (s->in_claim && s->conn != NULL)
        (void)pg_simple(s, "ROLLBACK", NULL);
    s->in_claim = false;
}

static char *pg_text(const PGresult *res, int row, int col, bool *oom)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    char *copy = strdup(PQgetvalue(res, row, col));
    if (copy == NULL)
        *oom = true;
    return copy;
}

static int pg_read_event(const PGresult *res, int row, struct outbox_event *ev)
{
    bool oom = false;
    ev->seq = atoll(PQgetvalue(res, row, 0));
    ev->id = pg_text(res, row, 1, &oom);
    ev->type = pg_text(res, row, 2, &oom);
    ev->source = pg_text(res, row, 3, &oom);
    ev->subject = pg_text(res, row, 4, &oom);
    ev->time = pg_text(res, row, 5, &oom);
    ev->traceparent = pg_text(res, row, 6, &oom);
    ev->data = pg_text(res, row, 7, &oom);
    ev->attempts = atoll(PQgetvalue(res, row, 8));
    ev->next_attempt_at = atoll(PQgetvalue(res, row, 9));
    return oom || ev->id == NULL || ev->type == NULL || ev->source == NULL ||
                   ev->subject == NULL || ev->time == NULL || ev->data == NULL
               ? -1
               : 0;
}

static enum store_status pg_outbox_fetch(struct store *st, int limit, long long now_ms,
                                         struct outbox_batch *batch)
{
    struct pg_store *s = pg_of(st);
    outbox_batch_free(batch);
    pg_end_claim(s);
    enum store_status why = pg_begin_claim(s);
    if (why != STORE_OK)
        return why;
    char lim[16], now[24];
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(now, sizeof now, "%lld", now_ms);
    const char *p[2] = {lim, now};
    PGresult *res = pg_run(s, PG_CLAIM, 2, p, &why);
    if (res == NULL) {
        pg_end_claim(s);
        return why;
    }
    int rows = PQntuples(res);
    if (rows > 0 && (batch->events = calloc((size_t)rows, sizeof *batch->events)) == NULL) {
        PQclear(res);
        pg_end_claim(s);
        return STORE_ERROR;
    }
    for (int i = 0; i < rows; i++) {
        batch->count++; /* counted first, so batch_free frees a partial row */
        if (pg_read_event(res, i, &batch->events[i]) != 0) {
            PQclear(res);
            outbox_batch_free(batch);
            pg_end_claim(s);
            return STORE_ERROR;
        }
    }
    PQclear(res);
    if (rows > 0)
        return STORE_OK; /* the claim stays open until the commit */
    const char *q[1] = {now};
    res = pg_run(s, PG_NEXT_DUE, 1, q, &why);
    if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        batch->next_due = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (s->in_claim && !pg_simple(s, "COMMIT", &why)) {
        s->in_claim = false;
        return why;
    }
    s->in_claim = false;
    return res != NULL ? STORE_OK : why;
}

static enum store_status pg_outbox_commit(struct store *st, const struct outbox_commit *c,
                                          bool *lease_kept)
{
    struct pg_store *s = pg_of(st);
    enum store_status why = STORE_ERROR;
    *lease_kept = true;
    if (!s->in_claim) {
        why = pg_begin_claim(s);
        if (why != STORE_OK)
            return why;
    }
    bool ok = true;
    if (c->delivered_count > 0) {
        /* {1,2,3}: the acknowledged seqs as one array parameter */
        size_t cap = (size_t)c->delivered_count * 21 + 3, len = 0;
        char *list = malloc(cap);
        ok = list != NULL;
        if (ok) {
            list[len++] = '{';
            for (int i = 0; i < c->delivered_count; i++)
                len += (size_t)snprintf(list + len, cap - len, "%s%lld", i > 0 ? "," : "",
                                        c->delivered[i]);
            snprintf(list + len, cap - len, "}");
            char at[24];
            snprintf(at, sizeof at, "%lld", c->delivered_at);
            const char *p[2] = {at, list};
            PGresult *res = pg_run(s, PG_MARK, 2, p, &why);
            ok = res != NULL;
            PQclear(res);
            free(list);
        }
    }
    if (ok && c->failure != NULL) {
        const struct outbox_failure *f = c->failure;
        char seq[24], attempts[24], next[24], parked[24];
        snprintf(seq, sizeof seq, "%lld", f->seq);
        snprintf(attempts, sizeof attempts, "%lld", f->attempts);
        snprintf(next, sizeof next, "%lld", f->next_attempt_at);
        snprintf(parked, sizeof parked, "%lld", f->parked_at);
        const char *p[5] = {seq, attempts, f->error, f->parked_at != 0 ? NULL : next,
                            f->parked_at != 0 ? parked : NULL};
        PGresult *res = pg_run(s, PG_FAIL, 5, p, &why);
        ok = res != NULL;
        PQclear(res);
    }
    if (ok && c->sink != NULL && (c->delivered_count > 0 || c->failure != NULL)) {
        char deliveries[24];
        snprintf(deliveries, sizeof deliveries, "%d", c->delivered_count);
        const char *p[3] = {c->sink, deliveries, c->failure != NULL ? "1" : "0"};
        PGresult *res = pg_run(s, PG_SINK_COUNT, 3, p, &why);
        ok = res != NULL;
        PQclear(res);
    }
    if (ok && s->conn != NULL)
        ok = pg_simple(s, "COMMIT", &why);
    else
        ok = false;
    if (!ok)
        pg_end_claim(s);
    s->in_claim = false;
    return ok ? STORE_OK : why;
}

/* No lease: claims keep each order's events in order whatever the number
 * of publishers, so every publisher delivers. */
static enum store_status pg_lease_peek(struct store *st, char *holder, size_t holder_len,
                                       long long *expires_at, bool *present)
{
    (void)st;
    (void)expires_at;
    if (holder_len > 0)
        holder[0] = '\0';
    *present = false;
    return STORE_OK;
}

static enum store_status pg_lease_acquire(struct store *st, const char *holder, long long now,
                                          long long expires_at, bool *acquired,
                                          long long *other_expires_at)
{
    (void)st;
    (void)holder;
    (void)now;
    (void)expires_at;
    (void)other_expires_at;
    *acquired = true;
    return STORE_OK;
}

static enum store_status pg_lease_renew(struct store *st, const char *holder,
                                        long long expires_at, bool *kept)
{
    (void)st;
    (void)holder;
    (void)expires_at;
    *kept = true;
    return STORE_OK;
}

static enum store_status pg_lease_release(struct store *st, const char *holder)
{
    (void)st;
    (void)holder;
    return STORE_OK;
}

static enum store_status pg_outbox_prune(struct store *st, long long cutoff, int limit,
                                         int *deleted)
{
    struct pg_store *s = pg_of(st);
    *deleted = 0;
    pg_end_claim(s);
    enum store_status why = pg_ready(s);
    if (why != STORE_OK)
        return why;
    char c[24], l[16];
    snprintf(c, sizeof c, "%lld", cutoff);
    snprintf(l, sizeof l, "%d", limit);
    const char *p[2] = {c, l};
    PGresult *res = pg_run(s, PG_PRUNE, 2, p, &why);
    if (res == NULL)
        return why;
    *deleted = atoi(PQcmdTuples(res));
    PQclear(res);
    return STORE_OK;
}

/* ---- the change signal ---------------------------------------------------------- */

static int pg_change_fd(struct store *st)
{
    struct pg_store *s = pg_of(st);
    if (!s->listening) {
        s->listening = true;
        if (s->conn != NULL && !pg_simple(s, "LISTEN orders_events", NULL))
            pg_drop(s);
    }
    if (s->conn == NULL)
        (void)pg_ready(s); /* not within PG_RECONNECT_MS of a failed attempt */
    return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK ? PQsocket(s->conn) : -1;
}

static bool pg_change_drain(struct store *st)
{
    struct pg_store *s = pg_of(st);
    if (s->conn == NULL)
        return true; /* lost track: look at the database */
    if (s->in_claim)
        return true; /* notices wait for the end of our transaction: look */
    long long before = s->notices;
    if (PQconsumeInput(s->conn) == 0 || PQstatus(s->conn) != CONNECTION_OK) {
        pg_set_error(s, "connection lost", PQerrorMessage(s->conn));
        pg_drop(s);
        return true;
    }
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        s->notices++;
        PQfreemem(n);
    }
    return s->notices != before;
}

/* Changes with every notice; without a live LISTEN, also every second, so
 * a publisher that lost its signal still looks (the polling fallback). */
static enum store_status pg_data_version(struct store *st, long long *out)
{
    struct pg_store *s = pg_of(st);
    if (!s->in_claim)
        (void)pg_change_drain(st);
    long long v = s->notices;
    if (s->conn == NULL || !s->listening)
        v += (long long)(clock_monotonic_ms() / PG_RECHECK_MS) << 32;
    *out = v;
    return s->conn != NULL ? STORE_OK : pg_ready(s);
}

const struct store_ops store_postgres_ops = {
    .engine = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .last_error = pg_last_error,
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .schema_latest = pg_schema_latest,
    .order_create = pg_order_create,
    .order_get = pg_order_get,
    .order_transition = pg_order_transition,
    .order_page = pg_order_page,
    .order_count = pg_order_count,
    .outbox_stats = pg_outbox_stats,
    .outbox_fetch = pg_outbox_fetch,
    .outbox_commit = pg_outbox_commit,
    .lease_peek = pg_lease_peek,
    .lease_acquire = pg_lease_acquire,
    .lease_renew = pg_lease_renew,
    .lease_release = pg_lease_release,
    .outbox_prune = pg_outbox_prune,
    .take_timing = pg_take_timing,
    .change_fd = pg_change_fd,
    .change_drain = pg_change_drain,
    .data_version = pg_data_version,
};
