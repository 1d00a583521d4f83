/*
 * embedded.h - documents and SQL compiled into the binaries (tools/embed.c).
 */
#ifndef ORDERS_EMBEDDED_H
#define ORDERS_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name;          /* file name, e.g. "001_orders.sql" */
    const unsigned char *data; /* NUL-terminated; len excludes the NUL */
    size_t len;
};

extern const unsigned char *const embedded_openapi;
extern const size_t embedded_openapi_len;

/* Each engine's migrations are declared by its adapter
 * (adapters/embedded_migrations.h). */

#endif
