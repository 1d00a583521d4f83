/*
 * store.h - the store port: everything the workers and the publisher ask of
 * the database, as one table of operations that each engine's adapter fills
 * (adapters/store_sqlite.c, ...), in the manner of SQLite's sqlite3_vfs.
 *
 *     struct store_options opt = {.location = "var/orders.db", .create = true};
 *     struct store *st;
 *     if (store_open(&opt, &st, err, sizeof err) != STORE_OK) ...   (adapters/store_select.c)
 *     store_migrate(st, err, sizeof err);
 *     store_order_create(st, &order, &meta);
 *     store_close(st);
 *
 * A store is one connection, used by one thread.  Its handle is opaque to
 * core: every adapter's own struct begins with a struct store, whose ops
 * say which engine it is.  core/ never sees a database driver; it knows the
 * few outcomes below, into which each adapter classifies its errors.
 *
 * What every engine must hold (the contract's "Storage" section):
 *   - a write and its outbox event commit together or not at all;
 *   - a status change is conditional on the status read, so of two racing
 *     writers (processes or hosts) exactly one wins;
 *   - orders are listed by a sequence the store assigns at creation, newest
 *     first, never by the clock;
 *   - the outbox hands out events so that those of one order reach the
 *     sink in commit order, none skipped.
 */
#ifndef ORDERS_STORE_H
#define ORDERS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "idempotency.h"
#include "order.h"
#include "precondition.h"

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,
    STORE_CONFLICT, /* transition not allowed from the current status */
    STORE_BUSY,     /* busy or unavailable (locked past the busy timeout,
                     * server unreachable, schema not ready): retry later */
    STORE_FULL,     /* disk full or I/O error: nothing was written */
    STORE_ERROR,    /* anything else: a bug or a corrupt database */
    /* Version 2 (issue 16): */
    STORE_REPLAYED,            /* a create's key and body were remembered: the
                                * order it made is returned, nothing written */
    STORE_KEY_REUSED,          /* a remembered key with another body */
    STORE_KEY_IN_PROGRESS,     /* a create with this key is not committed yet
                                * (engines that can tell; SQLite serialises) */
    STORE_PRECONDITION_FAILED, /* If-Match / If-None-Match did not hold */
};

#define STORE_BUSY_TIMEOUT_MS 5000

struct store_options {
    const char *location;   /* a file path, or a URL the selection table knows */
    bool synchronous_full;  /* DB_SYNCHRONOUS=full (engines that have the choice) */
    int busy_timeout_ms;    /* how long a writer waits for a lock (or a
                             * connection) before STORE_BUSY; 0: not at all */
    bool create;            /* create the database when missing (the workers);
                             * the publisher waits for them instead */
    long long (*clock_ms)(void); /* the wall clock; NULL: clock_now_ms.  Tests
                                  * inject one to make every write fall in
                                  * one millisecond. */
};

/* ---- the outbox, as the publisher sees it ------------------------------ */

struct outbox_event {
    long long seq;
    char *id;
    char *type;
    char *source;
    char *subject;
    char *time;
    char *traceparent;        /* NULL when the request had none */
    char *data;               /* JSON text */
    long long attempts;       /* failed attempts so far */
    long long next_attempt_at; /* 0: due now */
};

struct outbox_batch {
    struct outbox_event *events;
    int count;
    long long next_due;       /* when empty: the earliest retry the engine
                               * held back (ms), 0 when none */
};

/* What became of one event that was not delivered. */
struct outbox_failure {
    long long seq;
    long long attempts;        /* including this one */
    const char *error;
    long long next_attempt_at; /* when not parked */
    long long parked_at;       /* 0: not parked */
};

/* One transaction's worth of results. */
struct outbox_commit {
    const long long *delivered; /* seqs the sink acknowledged */
    int delivered_count;
    long long delivered_at;
    const struct outbox_failure *failure; /* NULL when none */
    const char *holder;        /* lease renewed in the same transaction */
    long long lease_expires_at;
    /* The transport's name (sink_name(): "amqp", ...): its deliveries and
     * failures counters grow in the same transaction.  NULL: none. */
    const char *sink;
};

/* The outbox figures of GET /metrics (struct outbox_stats, metrics.h). */
struct outbox_stats;

/* Where one connection's time went, in milliseconds: waiting for the write
 * lock, and inside write transactions (from holding the lock to COMMIT or
 * ROLLBACK).  The slow log reports them per request. */
struct store_timing {
    double lock_wait_ms;
    double transaction_ms;
};

/* ---- the port ----------------------------------------------------------- */

struct store;

struct store_ops {
    const char *engine; /* "sqlite", "postgresql": logs and db.system */

    enum store_status (*open)(const struct store_options *opt, struct store **out,
                              char *err, size_t errlen);
    void (*close)(struct store *st);
    /* The engine's text of the last error, for logs (never for clients,
     * never with a credential). */
    const char *(*last_error)(const struct store *st);

    /* Applies the migrations not yet recorded, each exactly once even when
     * many processes start at once. */
    enum store_status (*migrate)(struct store *st, char *err, size_t errlen);
    enum store_status (*schema_version)(struct store *st, int *applied);
    int (*schema_latest)(void);

    enum store_status (*order_create)(struct store *st, struct order *o,
                                      const struct event_meta *meta,
                                      const struct idempotency_claim *claim);
    enum store_status (*order_get)(struct store *st, const char *id, struct order *out);
    enum store_status (*order_transition)(struct store *st, const char *id,
                                          enum order_status to,
                                          const struct precondition *pre,
                                          const struct event_meta *meta,
                                          struct order *out, enum order_status *from);
    enum store_status (*order_page)(struct store *st, const struct page_query *q,
                                    struct order **items, size_t *count, long long *total,
                                    bool *more);
    enum store_status (*order_count)(struct store *st, const struct page_query *q,
                                     long long *total);
    enum store_status (*outbox_stats)(struct store *st, long long now_ms,
                                      struct outbox_stats *out);

    enum store_status (*outbox_fetch)(struct store *st, int limit, long long now_ms,
                                      struct outbox_batch *batch);
    enum store_status (*outbox_commit)(struct store *st, const struct outbox_commit *c,
                                       bool *lease_kept);
    enum store_status (*lease_peek)(struct store *st, char *holder, size_t holder_len,
                                    long long *expires_at, bool *present);
    enum store_status (*lease_acquire)(struct store *st, const char *holder, long long now,
                                       long long expires_at, bool *acquired,
                                       long long *other_expires_at);
    enum store_status (*lease_renew)(struct store *st, const char *holder,
                                     long long expires_at, bool *kept);
    enum store_status (*lease_release)(struct store *st, const char *holder);
    enum store_status (*outbox_prune)(struct store *st, long long cutoff, int limit,
                                      int *deleted);

    /* Where the connection's time went since the last call (optional:
     * NULL reads as zeros).  See store_take_timing. */
    void (*take_timing)(struct store *st, struct store_timing *out);
    /* Frees what the connection caches (optional).  See
     * store_release_memory. */
    void (*release_memory)(struct store *st);

    int (*change_fd)(struct store *st);
    bool (*change_drain)(struct store *st);
    enum store_status (*data_version)(struct store *st, long long *out);
};

/* Every adapter's handle begins with this. */
struct store {
    const struct store_ops *ops;
};

/* Picks the engine for opt->location from the selection table
 * (adapters/store_select.c) and opens a connection.  STORE_NOT_FOUND: the
 * database does not exist and opt->create is false; STORE_BUSY: not
 * reachable now.  *out is NULL on failure. */
enum store_status store_open(const struct store_options *opt, struct store **out,
                             char *err, size_t errlen);
void store_close(struct store *st);
/* A location fit for logs: a URL without its password or query. */
void store_describe(const char *location, char *out, size_t outlen);
const char *store_engine(const struct store *st);
const char *store_last_error(const struct store *st);
/* The timing accumulated since the previous call, which starts it afresh;
 * zeros for an engine that does not measure.  Cheap: no system call. */
void store_take_timing(struct store *st, struct store_timing *out);
/* Frees the memory the connection keeps for speed (SQLite's page cache),
 * for a thread that has gone idle: the next request reads its pages again
 * (from the OS's cache).  Does nothing for an engine without such a cache. */
void store_release_memory(struct store *st);

/* Migrations: each in its own transaction under the engine's lock, so that
 * several workers (on several hosts) starting at once apply each exactly
 * once and none sees half of one.  STORE_BUSY: the database cannot be
 * reached now, and the store migrates by itself once it can (engines that
 * reconnect); any other failure is final. */
enum store_status store_migrate(struct store *st, char *err, size_t errlen);
/* The latest applied migration, and the latest this binary knows for the
 * store's engine.  The schema is ready when the two agree. */
enum store_status store_schema_version(struct store *st, int *applied);
int store_schema_latest(const struct store *st);

/* o has customer_id and items_json set; the store fills id, status, times,
 * version (1) and seq, and appends the order.created event in the same
 * transaction.
 *
 * With a claim (an Idempotency-Key), in that same transaction: when the
 * caller's key is remembered and not expired, nothing is written and the
 * answer is STORE_REPLAYED with o replaced by the order that create made
 * (as it is now; the caller renders it as created) when the fingerprint is
 * the same, STORE_KEY_REUSED when it is not; otherwise the order is created
 * and the key remembered with it until now + claim->ttl_ms, and a few
 * expired keys are pruned.  Concurrent creates with one key make one order:
 * the others get STORE_REPLAYED (or STORE_KEY_IN_PROGRESS where the engine
 * cannot wait for the first to commit).  Nothing is remembered for a create
 * that failed. */
enum store_status store_order_create(struct store *st, struct order *o,
                                     const struct event_meta *meta,
                                     const struct idempotency_claim *claim);

enum store_status store_order_get(struct store *st, const char *id,
                                  struct order *out);

/* Moves the order to `to` when precondition_holds(pre, its version) (pre
 * NULL: no condition) and then order_transition_allowed(), both checked on
 * the row read inside the write transaction; the version grows by one.  On
 * STORE_OK out is the updated order and *from the status it had; on
 * STORE_CONFLICT and STORE_PRECONDITION_FAILED out is the unchanged order
 * and nothing was written. */
enum store_status store_order_transition(struct store *st, const char *id,
                                         enum order_status to,
                                         const struct precondition *pre,
                                         const struct event_meta *meta,
                                         struct order *out,
                                         enum order_status *from);

/* A page in creation order (the store's sequence), newest first: with
 * q->has_cursor the orders whose seq is below q->after, else from
 * q->offset; only those matching q's status and customer filters.  *items
 * is a malloc'ed array of *count orders (free each with order_free, then the
 * array); *more says whether an order follows the page's last; *total
 * counts the orders matching the filters.  One snapshot for all three.  A
 * page costs the same at any cursor depth: it reads one index range. */
enum store_status store_order_page(struct store *st,
                                   const struct page_query *q,
                                   struct order **items, size_t *count,
                                   long long *total, bool *more);

/* Only the total of store_order_page (for the deep-offset rule). */
enum store_status store_order_count(struct store *st, const struct page_query *q,
                                    long long *total);

/* Every figure O(1) or read through an index: it runs on a request worker. */
enum store_status store_outbox_stats(struct store *st, long long now_ms,
                                     struct outbox_stats *out);

/*
 * The publisher's side.
 *
 * fetch: up to limit undelivered, unparked events, lowest seq first, such
 * that delivering them in that order keeps every order's events in commit
 * order.  An engine may hand out only the head event of each order and
 * hold it (a claim) until the next commit or fetch, so that several
 * publishers never send events of one order concurrently; it may leave out
 * events whose retry is not due at now_ms (batch->next_due then says when).
 * The batch's previous contents are freed first.
 *
 * commit: marks the acknowledged events delivered, records a failure and
 * renews the lease, in one transaction.  lease_kept is false when another
 * holder has taken the lease meanwhile (the deliveries are recorded anyway:
 * they did happen).
 *
 * The lease: only its holder delivers, on engines that need one publisher
 * at a time (SQLite); engines whose fetch claims grant it to everyone.
 * acquire takes it when free, expired or already ours; when another live
 * holder has it, *acquired is false and other_expires_at says until when.
 *
 * prune: deletes at most limit rows delivered before cutoff, in one short
 * transaction.
 *
 * The change signal: change_fd is a descriptor that becomes readable when
 * another connection may have committed an event (-1: none, poll instead);
 * change_drain consumes what woke it and says whether it concerned this
 * database; data_version changes whenever another connection committed.
 */
enum store_status store_outbox_fetch(struct store *st, int limit, long long now_ms,
                                     struct outbox_batch *batch);
void outbox_batch_free(struct outbox_batch *batch);
enum store_status store_outbox_commit(struct store *st, const struct outbox_commit *c,
                                      bool *lease_kept);
enum store_status store_lease_peek(struct store *st, char *holder, size_t holder_len,
                                   long long *expires_at, bool *present);
enum store_status store_lease_acquire(struct store *st, const char *holder, long long now,
                                      long long expires_at, bool *acquired,
                                      long long *other_expires_at);
enum store_status store_lease_renew(struct store *st, const char *holder,
                                    long long expires_at, bool *kept);
enum store_status store_lease_release(struct store *st, const char *holder);
enum store_status store_outbox_prune(struct store *st, long long cutoff, int limit,
                                     int *deleted);
int store_change_fd(struct store *st);
bool store_change_drain(struct store *st);
enum store_status store_data_version(struct store *st, long long *out);

#endif
