/*
 * store_select.c - which engine serves a database location.
 *
 * A table of prefixes: the first row whose prefix begins the location wins,
 * and a row without a prefix (a file path) ends the table.  A new engine is
 * an adapter file and a row here.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "store_sqlite.h"

static const struct store_engine_row {
    const char *prefix; /* NULL: anything else */
    const struct store_ops *ops;
} store_engines[] = {
    {NULL, &store_sqlite_ops}, /* DATABASE_PATH: a file */
};

enum store_status store_open(const struct store_options *opt, struct store **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    if (opt->location == NULL || opt->location[0] == '\0') {
        snprintf(err, errlen, "no database location");
        return STORE_ERROR;
    }
    for (size_t i = 0; i < sizeof store_engines / sizeof store_engines[0]; i++) {
        const struct store_engine_row *row = &store_engines[i];
        if (row->prefix == NULL || strncmp(opt->location, row->prefix, strlen(row->prefix)) == 0)
            return row->ops->open(opt, out, err, errlen);
    }
    snprintf(err, errlen, "no store engine for this location");
    return STORE_ERROR;
}
