/*
 * store_postgres.h - the PostgreSQL engine of the store port (core/store.h),
 * selected by DATABASE_URL=postgresql://... or postgres://...
 * (adapters/store_select.c).  Its guarantees are at the top of
 * store_postgres.c.
 */
#ifndef ORDERS_STORE_POSTGRES_H
#define ORDERS_STORE_POSTGRES_H

#include "store.h"

extern const struct store_ops store_postgres_ops;

#endif
