/*
 * plog.c - JSON log lines on stderr.
 *
 * cJSON does the escaping so that an error text from curl or SQLite (which
 * may hold quotes or control characters) cannot break the line.  When memory
 * runs out the line degrades to a fixed message rather than vanishing: an
 * operator should at least learn that something happened.
 */
#include "plog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static enum plog_level plog_threshold = PLOG_INFO;

static const char *const plog_names[] = {"debug", "info", "warn", "error"};

bool plog_level_parse(const char *s, enum plog_level *out)
{
    for (int i = 0; i < PLOG_COUNT(plog_names); i++) {
        if (strcasecmp(s, plog_names[i]) == 0) {
            *out = (enum plog_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = PLOG_WARN;
        return true;
    }
    return false;
}

void plog_set_level(enum plog_level level)
{
    plog_threshold = level;
}

bool plog_enabled(enum plog_level level)
{
    return level >= plog_threshold;
}

/* RFC 3339 UTC with milliseconds, as the contract asks of every timestamp. */
static void plog_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL ||
        (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000L));
}

static void plog_write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* stderr is gone: nowhere left to complain */
        buf += n;
        len -= (size_t)n;
    }
}

static bool plog_add_field(cJSON *obj, const struct plog_field *f)
{
    if (f->kind == PLOG_FIELD_INT)
        return cJSON_AddNumberToObject(obj, f->key, (double)f->num) != NULL;
    if (f->str == NULL)
        return cJSON_AddNullToObject(obj, f->key) != NULL;
    return cJSON_AddStringToObject(obj, f->key, f->str) != NULL;
}

static char *plog_render(enum plog_level level, const char *message,
                         const struct plog_field *fields, int field_count)
{
    char ts[64];
    cJSON *obj = cJSON_CreateObject();
    char *line = NULL;
    bool ok;

    if (obj == NULL)
        return NULL;
    plog_timestamp(ts, sizeof(ts));
    ok = cJSON_AddStringToObject(obj, "timestamp", ts) != NULL &&
         cJSON_AddStringToObject(obj, "level", plog_names[level]) != NULL &&
         cJSON_AddStringToObject(obj, "service", "orders-publisher") != NULL &&
         cJSON_AddStringToObject(obj, "message", message) != NULL;
    for (int i = 0; ok && i < field_count; i++)
        ok = plog_add_field(obj, &fields[i]);
    if (ok)
        line = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return line;
}

void plog(enum plog_level level, const char *message,
          const struct plog_field *fields, int field_count)
{
    static const char fallback[] =
        "{\"level\":\"error\",\"service\":\"orders-publisher\","
        "\"message\":\"out of memory while logging\"}\n";
    char *line;
    size_t len;

    if (!plog_enabled(level))
        return;
    line = plog_render(level, message, fields, field_count);
    if (line == NULL) {
        plog_write_all(fallback, sizeof(fallback) - 1);
        return;
    }
    /* cJSON's buffer has room only for the NUL; swap it for the newline and
     * write length + 1 so the line still goes out in one write(2). */
    len = strlen(line);
    line[len] = '\n';
    plog_write_all(line, len + 1);
    cJSON_free(line);
}

void plog_msg(enum plog_level level, const char *message)
{
    plog(level, message, NULL, 0);
}
