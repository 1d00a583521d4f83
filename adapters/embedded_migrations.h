/*
 * embedded_migrations.h - each engine's migrations, compiled in
 * (adapters/meson.build), in the order they apply.
 */
#ifndef ORDERS_EMBEDDED_MIGRATIONS_H
#define ORDERS_EMBEDDED_MIGRATIONS_H

#include "embedded.h"

/* migrations/NNN_*.sql */
extern const struct embedded_file embedded_sqlite_migrations[];
extern const size_t embedded_sqlite_migrations_count;

/* migrations/postgres/NNN_*.sql */
extern const struct embedded_file embedded_postgres_migrations[];
extern const size_t embedded_postgres_migrations_count;

#endif
