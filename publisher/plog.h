/*
 * plog.h - the publisher's structured logs: one JSON object per line on
 * stderr, with timestamp, level, service ("orders-publisher"), message, then
 * the caller's fields (event_id, seq, attempts, error, ...).
 *
 *     struct plog_field f[] = {PLOG_STR("event_id", id), PLOG_INT("seq", seq)};
 *     plog(PLOG_WARN, "delivery failed", f, PLOG_COUNT(f));
 *
 * Event data is never passed here: it is the customer's, not the operator's.
 * Each line is one write(2), so lines never interleave with other writers of
 * the same pipe or O_APPEND file.
 */
#ifndef ORDERS_PUBLISHER_PLOG_H
#define ORDERS_PUBLISHER_PLOG_H

#include <stdbool.h>

enum plog_level { PLOG_DEBUG, PLOG_INFO, PLOG_WARN, PLOG_ERROR };

enum plog_kind { PLOG_FIELD_STR, PLOG_FIELD_INT };

struct plog_field {
    const char *key;
    enum plog_kind kind;
    const char *str; /* NULL renders as JSON null */
    long long num;
};

#define PLOG_STR(k, v) ((struct plog_field){.key = (k), .kind = PLOG_FIELD_STR, .str = (v)})
#define PLOG_INT(k, v) ((struct plog_field){.key = (k), .kind = PLOG_FIELD_INT, .num = (v)})
#define PLOG_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parses "debug", "info", "warn"/"warning", "error" in any case. */
bool plog_level_parse(const char *s, enum plog_level *out);

/* Lines below this level are dropped; the default is info. */
void plog_set_level(enum plog_level level);
bool plog_enabled(enum plog_level level);

void plog(enum plog_level level, const char *message,
          const struct plog_field *fields, int field_count);

/* A line without fields. */
void plog_msg(enum plog_level level, const char *message);

#endif
