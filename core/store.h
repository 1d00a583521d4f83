/*
 * store.h - all SQL of the service, behind one small interface.
 *
 * One store per worker process: one SQLite connection in WAL mode with its
 * prepared statements, kept for the life of the process.  Every write is one
 * BEGIN IMMEDIATE transaction holding the order change and its outbox event,
 * so both or neither are committed, and concurrent writers queue on the
 * database lock (busy timeout) instead of failing half-way.
 */
#ifndef ORDERS_STORE_H
#define ORDERS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "order.h"

enum store_status {
    STORE_OK,
    STORE_NOT_FOUND,
    STORE_CONFLICT, /* transition not allowed from the current status */
    STORE_BUSY,     /* the database stayed locked past the busy timeout */
    STORE_FULL,     /* disk full or I/O error: nothing was written */
    STORE_ERROR,
};

#define STORE_BUSY_TIMEOUT_MS 5000

struct store;

/* Opens (creating if needed) the database at path.  Returns NULL with a
 * message in err. */
struct store *store_open(const char *path, bool synchronous_full, char *err,
                         size_t errlen);
void store_close(struct store *st);

/* How long a writer waits for the database lock before STORE_BUSY
 * (default STORE_BUSY_TIMEOUT_MS). */
void store_set_busy_timeout(struct store *st, int ms);

/* Applies the embedded migrations not yet recorded, each in its own
 * IMMEDIATE transaction, so that several workers starting at once apply
 * each exactly once and none sees half of one.  Then prepares statements. */
enum store_status store_migrate(struct store *st, char *err, size_t errlen);

/* The latest applied migration, and the latest this binary knows. */
enum store_status store_schema_version(struct store *st, int *applied);
int store_schema_latest(void);

/* o has customer_id and items_json set; the store fills id, status and times,
 * and appends the order.created event in the same transaction. */
enum store_status store_order_create(struct store *st, struct order *o,
                                     const struct event_meta *meta);

enum store_status store_order_get(struct store *st, const char *id,
                                  struct order *out);

/* Moves the order to `to` when order_transition_allowed(); on STORE_OK out is
 * the updated order and *from the status it had; on STORE_CONFLICT out is
 * the unchanged order. */
enum store_status store_order_transition(struct store *st, const char *id,
                                         enum order_status to,
                                         const struct event_meta *meta,
                                         struct order *out,
                                         enum order_status *from);

/* A page, newest first.  *items is a malloc'ed array of *count orders (free
 * each with order_free, then the array). */
enum store_status store_order_page(struct store *st,
                                   const struct page_query *q,
                                   struct order **items, size_t *count,
                                   long long *total);

/* The outbox figures of GET /metrics (struct outbox_stats, metrics.h). */
struct outbox_stats;
enum store_status store_outbox_stats(struct store *st, long long now_ms,
                                     struct outbox_stats *out);

/* The text of the last SQLite error, for logs (never for clients). */
const char *store_last_error(const struct store *st);

#endif
