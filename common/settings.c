/*
 * settings.c - reads and checks the environment once, at start.
 *
 * Limits live in the tables and are deliberately generous but finite: a
 * typo such as PUBLISHER_BATCH=1000000 is refused at start, not discovered
 * as an out-of-memory at three in the morning.
 */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

const char *settings_env(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static int settings_number(const struct setting *row, const char *v, long long *out,
                           char *err, size_t errlen)
{
    *out = row->int_default;
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < row->min || n > row->max) {
        snprintf(err, errlen, "%s must be an integer from %lld to %lld, not '%s'",
                 row->name, row->min, row->max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int settings_choice(const struct setting *row, const char *v, int *out,
                           char *err, size_t errlen)
{
    *out = 0;
    if (v == NULL)
        return 0;
    for (int i = 0; row->choices[i] != NULL; i++) {
        if (strcasecmp(v, row->choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    /* "must be a, b or c" */
    int n = snprintf(err, errlen, "%s must be ", row->name);
    for (int i = 0; row->choices[i] != NULL && n >= 0 && (size_t)n < errlen; i++) {
        const char *sep = i == 0 ? "" : row->choices[i + 1] == NULL ? " or " : ", ";
        n += snprintf(err + n, errlen - (size_t)n, "%s%s", sep, row->choices[i]);
    }
    if (n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ", not '%s'", v);
    return -1;
}

static int settings_row(const struct setting *row, char *err, size_t errlen)
{
    const char *v = settings_env(row->name);
    long long n;
    switch (row->type) {
    case SETTING_TEXT: {
        char **out = row->out;
        const char *text = v != NULL ? v : row->text_default;
        *out = NULL;
        if (text != NULL && (*out = strdup(text)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    case SETTING_INT:
        if (settings_number(row, v, &n, err, errlen) != 0)
            return -1;
        *(int *)row->out = (int)n; /* the limits of an INT row fit an int */
        return 0;
    case SETTING_LLONG:
        return settings_number(row, v, row->out, err, errlen);
    case SETTING_CHOICE:
        return settings_choice(row, v, row->out, err, errlen);
    case SETTING_LOG_LEVEL:
        *(enum log_level *)row->out = LOG_INFO;
        if (v != NULL && !log_level_parse(v, row->out)) {
            snprintf(err, errlen, "%s must be debug, info, warn or error, not '%s'",
                     row->name, v);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "%s: unknown setting type", row->name);
    return -1;
}

int settings_read(const struct setting *rows, size_t count, char *err, size_t errlen)
{
    for (size_t i = 0; i < count; i++) {
        if (settings_row(&rows[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}

int settings_database(char **runtime_dir, char **database_path, bool *synchronous_full,
                      char *err, size_t errlen)
{
    static const char *const sync_modes[] = {"full", "normal", NULL};
    char *dir = NULL, *url = NULL;
    int sync = 0;
    const struct setting rows[] = {
        SETTING_TEXT_ROW("RUNTIME_DIR", "./var", &dir),
        SETTING_TEXT_ROW("DATABASE_PATH", NULL, database_path),
        SETTING_TEXT_ROW("DATABASE_URL", NULL, &url),
        SETTING_CHOICE_ROW("DB_SYNCHRONOUS", sync_modes, &sync),
    };
    *database_path = NULL;
    if (settings_read(rows, SETTING_COUNT(rows), err, errlen) != 0)
        goto fail;
    if (url != NULL) {
        /* The URL is never repeated: it may hold a password. */
        if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
            snprintf(err, errlen, "DATABASE_URL must be a postgresql:// or postgres:// URL");
            free(url);
            goto fail;
        }
        free(*database_path);
        *database_path = url;
    }
    if (*database_path == NULL &&
        asprintf(database_path, "%s/orders.db", dir) < 0) {
        *database_path = NULL;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *synchronous_full = sync == 0;
    if (runtime_dir != NULL)
        *runtime_dir = dir;
    else
        free(dir);
    return 0;
fail:
    free(dir);
    free(*database_path);
    *database_path = NULL;
    return -1;
}
