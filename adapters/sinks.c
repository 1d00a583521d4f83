/*
 * sinks.c - the table.  A row is a scheme and the adapter serving it;
 * "stdout" is a word of its own and "file:" takes a path, everything else is
 * a URL "scheme://...".  Schemes compare without regard to case.
 */
#include "sinks.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sink_util.h"

enum sink_form { SINK_WORD, SINK_PATH, SINK_URL };

struct sink_row {
    const char *scheme;
    enum sink_form form;
    const struct sink_adapter *adapter;
};

static const struct sink_row sink_rows[] = {
    {"stdout", SINK_WORD, &sink_stdout_adapter},
    {"file", SINK_PATH, &sink_file_adapter},
    {"http", SINK_URL, &sink_http_adapter},
    {"https", SINK_URL, &sink_http_adapter},
    {"amqp", SINK_URL, &sink_amqp_adapter},
    {"amqps", SINK_URL, &sink_amqp_adapter},
    {"nats", SINK_URL, &sink_nats_adapter},
    {"tls", SINK_URL, &sink_nats_adapter},
};

#define SINK_ROW_COUNT (sizeof(sink_rows) / sizeof(sink_rows[0]))

/* "stdout, file:PATH, http://..., https://..." from the table. */
static void sinks_forms(char *out, size_t outlen)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < SINK_ROW_COUNT && used < outlen; i++) {
        const struct sink_row *row = &sink_rows[i];
        const char *tail = row->form == SINK_WORD ? "" : row->form == SINK_PATH ? ":PATH" : "://...";
        int n = snprintf(out + used, outlen - used, "%s%s%s", i > 0 ? ", " : "", row->scheme, tail);

        if (n < 0)
            return;
        used += (size_t)n;
    }
}

static bool sinks_row_matches(const struct sink_row *row, const char *spec, size_t url_scheme_len,
                              bool is_url)
{
    size_t n = strlen(row->scheme);

    switch (row->form) {
    case SINK_WORD:
        return strncasecmp(spec, row->scheme, n) == 0 && (spec[n] == '\0' || spec[n] == ':');
    case SINK_PATH:
        return !is_url && strncasecmp(spec, row->scheme, n) == 0 && spec[n] == ':';
    case SINK_URL:
        return is_url && url_scheme_len == n && strncasecmp(spec, row->scheme, n) == 0;
    }
    return false;
}

const struct sink_adapter *sinks_find(const char *spec, char *err, size_t errlen)
{
    char forms[256];
    size_t scheme_len = 0;
    bool is_url = sink_url_scheme(spec, &scheme_len) != 0;

    for (size_t i = 0; i < SINK_ROW_COUNT; i++) {
        if (sinks_row_matches(&sink_rows[i], spec, scheme_len, is_url))
            return sink_rows[i].adapter;
    }
    sinks_forms(forms, sizeof(forms));
    /* The scheme is safe to repeat; anything else might be a password. */
    if (is_url)
        snprintf(err, errlen, "EVENT_SINK: unknown scheme \"%.*s\"; use one of %s",
                 (int)(scheme_len > 32 ? 32 : scheme_len), spec, forms);
    else
        snprintf(err, errlen, "EVENT_SINK is not a sink this publisher knows; use one of %s", forms);
    return NULL;
}

int sinks_check(const char *spec, char *err, size_t errlen)
{
    const struct sink_adapter *a = sinks_find(spec, err, errlen);

    return a == NULL ? -1 : a->check(spec, err, errlen);
}

int sinks_open(struct sink **out, const char *spec, const struct sink_options *opt,
               char *err, size_t errlen)
{
    const struct sink_adapter *a = sinks_find(spec, err, errlen);

    *out = NULL;
    if (a == NULL || a->check(spec, err, errlen) != 0)
        return -1;
    if (a->global_init != NULL && a->global_init() != 0) {
        snprintf(err, errlen, "cannot set up the %s library", a->name);
        return -1;
    }
    if (a->open(out, spec, opt, err, errlen) != 0) {
        *out = NULL;
        if (a->global_cleanup != NULL)
            a->global_cleanup();
        return -1;
    }
    return 0;
}

void sink_close(struct sink *s)
{
    const struct sink_adapter *a;

    if (s == NULL)
        return;
    a = s->adapter;
    a->close(s);
    if (a->global_cleanup != NULL)
        a->global_cleanup();
}
