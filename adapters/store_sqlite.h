/*
 * store_sqlite.h - the SQLite engine of the store port (core/store.h).
 *
 * Selected for any DATABASE_PATH (adapters/store_select.c).  One connection
 * per process in WAL mode, its statements prepared once.  What only tests
 * need besides the operations is declared here too.
 */
#ifndef ORDERS_STORE_SQLITE_H
#define ORDERS_STORE_SQLITE_H

#include "store.h"

extern const struct store_ops store_sqlite_ops;

/* The statements /metrics runs, in the order store_outbox_stats runs them:
 * tests check each one's query plan uses an index (issue 11). */
extern const char *const store_sqlite_stats_sql[];
extern const size_t store_sqlite_stats_sql_count;

#endif
