/*
 * sink_util.c - results and credential-free rendering for the adapters.
 *
 * Redaction is by position, not by parsing the URL the way the transport
 * library will: it must hide credentials even in a URL that library would
 * refuse, because that refusal is exactly when a URL gets printed.
 */
#include "sink_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void sink_result_ok(struct sink_result *r)
{
    r->status = SINK_OK;
    r->retry_after_ms = 0;
    r->error[0] = '\0';
}

void sink_result_set(struct sink_result *r, enum sink_status status, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->retry_after_ms = 0;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

int sink_url_scheme(const char *s, size_t *scheme_len)
{
    size_t i = 0;

    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    if (strncmp(s + i, "://", 3) != 0)
        return 0;
    *scheme_len = i;
    return 1;
}

/* Appends at most n bytes of s; out stays terminated, excess is dropped. */
static void sink_append(char *out, size_t outlen, size_t *used, const char *s, size_t n)
{
    if (*used + 1 >= outlen)
        return;
    if (n > outlen - 1 - *used)
        n = outlen - 1 - *used;
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
}

static bool sink_key_kept(const char *key, size_t len, const char *const *keep)
{
    for (size_t i = 0; keep != NULL && keep[i] != NULL; i++) {
        if (strlen(keep[i]) == len && strncmp(keep[i], key, len) == 0)
            return true;
    }
    return false;
}

static void sink_describe_query(const char *q, size_t qlen, const char *const *keep,
                                char *out, size_t outlen, size_t *used)
{
    size_t i = 0;

    sink_append(out, outlen, used, "?", 1);
    while (i < qlen) {
        size_t end = i, eq;

        while (end < qlen && q[end] != '&')
            end++;
        for (eq = i; eq < end && q[eq] != '='; eq++)
            ;
        if (i > 0)
            sink_append(out, outlen, used, "&", 1);
        sink_append(out, outlen, used, q + i, eq - i);
        if (eq < end) {
            if (sink_key_kept(q + i, eq - i, keep))
                sink_append(out, outlen, used, q + eq, end - eq);
            else
                sink_append(out, outlen, used, "=***", 4);
        }
        i = end + 1;
    }
}

void sink_url_describe(const char *url, const char *const *keep, char *out, size_t outlen)
{
    size_t used = 0, scheme_len, rest_len, query_len = 0;
    const char *rest, *at = NULL, *query = NULL;

    if (outlen == 0)
        return;
    out[0] = '\0';
    if (!sink_url_scheme(url, &scheme_len)) {
        sink_append(out, outlen, &used, "(not a URL)", 11);
        return;
    }
    rest = url + scheme_len + 3;
    rest_len = strcspn(rest, "?#");
    for (size_t i = 0; i < rest_len; i++) {
        if (rest[i] == '@')
            at = rest + i;
    }
    if (rest[rest_len] == '?') {
        query = rest + rest_len + 1;
        query_len = strcspn(query, "#");
    }
    sink_append(out, outlen, &used, url, scheme_len + 3);
    if (at != NULL) {
        sink_append(out, outlen, &used, "***@", 4);
        rest_len -= (size_t)(at + 1 - rest);
        rest = at + 1;
    }
    sink_append(out, outlen, &used, rest, rest_len);
    if (query != NULL && query_len > 0)
        sink_describe_query(query, query_len, keep, out, outlen, &used);
}

void sink_scrub(char *text, size_t size, const char *secret)
{
    size_t slen = secret != NULL ? strlen(secret) : 0;
    char *p;

    if (slen == 0 || size == 0)
        return;
    p = text;
    while ((p = strstr(p, secret)) != NULL) {
        size_t off = (size_t)(p - text), tail = strlen(p + slen), room;

        /* "***" is longer than a secret of one or two bytes: the text may
         * then lose its end, never its terminator. */
        if (off + 4 > size) {
            *p = '\0';
            return;
        }
        room = size - off - 4;
        if (tail > room)
            tail = room;
        memmove(p + 3, p + slen, tail);
        memcpy(p, "***", 3);
        p[3 + tail] = '\0';
        p += 3;
    }
}
