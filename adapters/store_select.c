/*
 * store_select.c - which engine serves a database location.
 *
 * A table of prefixes: the first row whose prefix begins the location wins,
 * and a row without a prefix (a file path) ends the table.  A new engine is
 * an adapter file and a row here.
 */
#include <stdio.h>
#include <string.h>

#include "libpq_load.h"
#include "store.h"
#include "store_postgres.h"
#include "store_sqlite.h"

static const struct store_engine_row {
    const char *prefix; /* NULL: anything else */
    const struct store_ops *ops;
    /* Run before the engine's first open: loads its client library
     * (libpq_load.h).  NULL: nothing to load. */
    int (*load)(char *err, size_t errlen);
} store_engines[] = {
    {"postgresql://", &store_postgres_ops, libpq_load}, /* DATABASE_URL */
    {"postgres://", &store_postgres_ops, libpq_load},
    {NULL, &store_sqlite_ops, NULL}, /* DATABASE_PATH: a file */
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
        if (row->prefix != NULL && strncmp(opt->location, row->prefix, strlen(row->prefix)) != 0)
            continue;
        if (row->load != NULL && row->load(err, errlen) != 0)
            return STORE_ERROR;
        return row->ops->open(opt, out, err, errlen);
    }
    snprintf(err, errlen, "no store engine for this location");
    return STORE_ERROR;
}

/* scheme://user@host:port/path of a URL (no password, no query, whose
 * parameters may hold one); a file path as it is. */
void store_describe(const char *location, char *out, size_t outlen)
{
    const char *scheme_end = location != NULL ? strstr(location, "://") : NULL;
    if (outlen == 0)
        return;
    if (scheme_end == NULL) {
        snprintf(out, outlen, "%s", location != NULL ? location : "");
        return;
    }
    const char *authority = scheme_end + 3;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = memchr(authority, '@', authority_len);
    const char *host = at != NULL ? at + 1 : authority;
    size_t user_len = 0;
    if (at != NULL)
        user_len = strcspn(authority, ":@");
    const char *path = authority + authority_len;
    size_t path_len = *path == '/' ? strcspn(path, "?#") : 0;
    snprintf(out, outlen, "%.*s%.*s%s%.*s%.*s", (int)(authority - location), location,
             (int)user_len, authority, at != NULL ? "@" : "",
             (int)(authority + authority_len - host), host, (int)path_len, path);
}
