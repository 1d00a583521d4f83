/*
 * settings.h - configuration from the environment, for every binary.
 *
 * Each binary describes what it reads as a table of rows (name, type,
 * default, limits, where the value goes) and hands it to settings_read();
 * core/config.c and publisher/config.c are such tables.  The rules are
 * the same everywhere: unset and empty mean the default (an operator
 * blanking a variable in a unit file means "the default", not ""), a bad
 * value is refused with ONE line naming the variable and what it must be,
 * never guessed at.  Secrets are not read here (common/secret.h): their
 * values must never reach a message.
 *
 *     int workers;
 *     const struct setting rows[] = {
 *         SETTING_INT_ROW("WORKERS", 4, 1, 256, &workers),
 *     };
 *     if (settings_read(rows, SETTING_COUNT(rows), err, sizeof err) != 0) ...
 */
#ifndef ORDERS_SETTINGS_H
#define ORDERS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

enum setting_type {
    SETTING_TEXT,      /* char **: strdup of the value or of text_default (NULL stays NULL) */
    SETTING_INT,       /* int *: decimal within [min, max] */
    SETTING_LLONG,     /* long long *: decimal within [min, max] */
    SETTING_CHOICE,    /* int *: index in choices (any case); default index 0 */
    SETTING_LOG_LEVEL, /* enum log_level *: debug, info, warn, error; default info */
};

struct setting {
    const char *name;
    enum setting_type type;
    const char *text_default;
    long long int_default, min, max;
    const char *const *choices; /* NULL-terminated */
    void *out;
};

#define SETTING_TEXT_ROW(n, def, o) \
    ((struct setting){.name = (n), .type = SETTING_TEXT, .text_default = (def), .out = (o)})
#define SETTING_INT_ROW(n, def, lo, hi, o) \
    ((struct setting){.name = (n), .type = SETTING_INT, .int_default = (def), .min = (lo), .max = (hi), .out = (o)})
#define SETTING_LLONG_ROW(n, def, lo, hi, o) \
    ((struct setting){.name = (n), .type = SETTING_LLONG, .int_default = (def), .min = (lo), .max = (hi), .out = (o)})
#define SETTING_CHOICE_ROW(n, list, o) \
    ((struct setting){.name = (n), .type = SETTING_CHOICE, .choices = (list), .out = (o)})
#define SETTING_LOG_LEVEL_ROW(n, o) \
    ((struct setting){.name = (n), .type = SETTING_LOG_LEVEL, .out = (o)})
#define SETTING_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The variable's value, NULL when unset or empty. */
const char *settings_env(const char *name);

/* Reads every row in order; stops at the first bad one.  Returns 0, or -1
 * with one line in err ("out of memory" included).  TEXT rows already
 * filled stay allocated: the caller's free function owns them. */
int settings_read(const struct setting *rows, size_t count, char *err, size_t errlen);

/* The rows of every binary that opens the database, read one way:
 * RUNTIME_DIR (default ./var), DATABASE_PATH (default
 * $RUNTIME_DIR/orders.db), DB_SYNCHRONOUS (full, the default, or normal).
 * DATABASE_URL (postgresql:// or postgres://), when set, is the database
 * instead, and *database_path is the URL: the store's location
 * (store_open), which may hold a password and must never be logged as is
 * (store_describe).
 * runtime_dir may be NULL when the caller does not keep it.  Returns 0 or
 * -1 as settings_read(). */
int settings_database(char **runtime_dir, char **database_path, bool *synchronous_full,
                      char *err, size_t errlen);

#endif
