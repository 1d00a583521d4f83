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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

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

/* Secrets in decreasing (length, index) order: each round takes the
 * largest key below the previous round's. */
void sink_scrub_all(char *text, size_t size, const char *const *secrets, size_t count)
{
    size_t prev_len = SIZE_MAX, prev_i = SIZE_MAX;

    for (size_t round = 0; round < count; round++) {
        size_t pick = SIZE_MAX, pick_len = 0;

        for (size_t i = 0; i < count; i++) {
            size_t len = secrets[i] != NULL ? strlen(secrets[i]) : 0;
            bool below_prev = len < prev_len || (len == prev_len && i < prev_i);
            bool above_pick = pick == SIZE_MAX || len > pick_len || (len == pick_len && i > pick);

            if (below_prev && above_pick) {
                pick = i;
                pick_len = len;
            }
        }
        if (pick == SIZE_MAX)
            break;
        sink_scrub(text, size, secrets[pick]);
        prev_len = pick_len;
        prev_i = pick;
    }
}

void sink_why_clear(struct sink_why *why)
{
    why->text[0] = '\0';
}

void sink_why_note(struct sink_why *why, const char *fmt, ...)
{
    va_list ap;

    if (why->text[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof(why->text), fmt, ap);
    va_end(ap);
    sink_scrub_all(why->text, sizeof(why->text), why->secrets, SINK_WHY_SECRETS);
}

/* The query: from after '?' to the fragment; len 0 when there is none. */
static const char *sink_query(const char *url, size_t *len)
{
    const char *q = strchr(url, '?');
    const char *hash = strchr(url, '#');

    if (q == NULL || (hash != NULL && hash < q)) {
        *len = 0;
        return "";
    }
    q++;
    *len = strcspn(q, "#");
    return q;
}

/* Calls fn on each key=value pair; stops and returns fn's first non-zero. */
static int sink_query_each(const char *url,
                           int (*fn)(const char *key, size_t klen, const char *val, size_t vlen,
                                     bool has_value, void *arg),
                           void *arg)
{
    size_t qlen, i = 0;
    const char *q = sink_query(url, &qlen);

    while (i < qlen) {
        size_t end = i, eq;
        int rc;

        while (end < qlen && q[end] != '&')
            end++;
        for (eq = i; eq < end && q[eq] != '='; eq++)
            ;
        if (end > i) {
            rc = fn(q + i, eq - i, q + eq + (eq < end), eq < end ? end - eq - 1 : 0, eq < end, arg);
            if (rc != 0)
                return rc;
        }
        i = end + 1;
    }
    return 0;
}

struct sink_query_checking {
    const char *adapter;
    const char *const *allowed;
    char *err;
    size_t errlen;
};

static int sink_query_check_one(const char *key, size_t klen, const char *val, size_t vlen,
                                bool has_value, void *arg)
{
    struct sink_query_checking *c = arg;
    char names[160] = "";
    size_t used = 0;

    (void)val;
    if (sink_key_kept(key, klen, c->allowed)) {
        if (has_value && vlen > 0)
            return 0;
        snprintf(c->err, c->errlen, "EVENT_SINK: parameter \"%.*s\" needs a value", (int)klen, key);
        return -1;
    }
    for (size_t i = 0; c->allowed[i] != NULL && used < sizeof(names); i++) {
        int n = snprintf(names + used, sizeof(names) - used, "%s%s", i > 0 ? ", " : "", c->allowed[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    snprintf(c->err, c->errlen, "EVENT_SINK: unknown parameter \"%.*s\" (%s takes %s)",
             (int)(klen > 32 ? 32 : klen), key, c->adapter, names);
    return -1;
}

int sink_query_check(const char *url, const char *adapter, const char *const *allowed,
                     char *err, size_t errlen)
{
    struct sink_query_checking c = {adapter, allowed, err, errlen};

    return sink_query_each(url, sink_query_check_one, &c);
}

struct sink_query_lookup {
    const char *key;
    char *value;
    int nomem;
};

static int sink_query_get_one(const char *key, size_t klen, const char *val, size_t vlen,
                              bool has_value, void *arg)
{
    struct sink_query_lookup *l = arg;

    if (!has_value || strlen(l->key) != klen || strncmp(l->key, key, klen) != 0)
        return 0;
    free(l->value); /* the last one wins */
    l->value = strndup(val, vlen);
    l->nomem = l->value == NULL;
    return 0;
}

char *sink_query_get(const char *url, const char *key, int *nomem)
{
    struct sink_query_lookup l = {key, NULL, 0};

    (void)sink_query_each(url, sink_query_get_one, &l);
    if (nomem != NULL)
        *nomem = l.nomem;
    return l.value;
}

char *sink_url_base(const char *url)
{
    return strndup(url, strcspn(url, "?#"));
}

int sink_query_mode(const char *url, int *binary, char *err, size_t errlen)
{
    int nomem = 0;
    char *mode = sink_query_get(url, "mode", &nomem);
    int rc = 0;

    *binary = 0;
    if (nomem) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else if (mode != NULL && strcmp(mode, "binary") == 0) {
        *binary = 1;
    } else if (mode != NULL && strcmp(mode, "structured") != 0) {
        snprintf(err, errlen, "EVENT_SINK: mode must be structured or binary");
        rc = -1;
    }
    free(mode);
    return rc;
}

int sink_url_has_host(const char *url)
{
    CURLU *u = curl_url();
    char *base = sink_url_base(url), *host = NULL;
    int ok;

    ok = u != NULL && base != NULL &&
         curl_url_set(u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
         curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0';
    curl_free(host);
    curl_url_cleanup(u);
    free(base);
    return ok;
}
