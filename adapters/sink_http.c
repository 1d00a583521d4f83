/*
 * sink_http.c - EVENT_SINK=http://... or https://...: the CloudEvents HTTP
 * protocol binding, structured mode.
 *
 * One POST per event, Content-Type application/cloudevents+json, one curl
 * handle per sink so the connection is kept alive between events.  Only a
 * 2xx acknowledges; other answers are classified in sink_http_classify.
 * A send call takes one event (max_batch 1) so that the relay can check its
 * lease before each POST, whose budget is PUBLISHER_HTTP_TIMEOUT_MS.
 *
 * Credentials: the URL may carry a user name and password (basic auth) or
 * a token in its query.  sink_describe shows neither, and every error text
 * from curl is scrubbed of them before it reaches a result.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "sink_util.h"
#include "sinks.h"

struct sink_http {
    struct sink base;
    CURL *curl;
    struct curl_slist *headers;
    char *secrets[4]; /* user, password, both URL-decoded, and the query */
    char curl_error[CURL_ERROR_SIZE];
    char reply[160];
    size_t reply_len;
};

static int sink_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void sink_http_global_cleanup(void)
{
    curl_global_cleanup();
}

static int sink_http_check(const char *spec, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    CURLUcode rc;
    char *host = NULL;
    bool ok;

    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = curl_url_set(u, CURLUPART_URL, spec, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    ok = rc == CURLUE_OK && host != NULL && host[0] != '\0';
    /* curl's texts name the fault, never the URL. */
    if (!ok)
        snprintf(err, errlen, "EVENT_SINK: malformed http(s) URL (%s)",
                 rc != CURLUE_OK ? curl_url_strerror(rc) : "no host");
    curl_free(host);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

/* Keeps the start of the answer for last_error; the rest is discarded. */
static size_t sink_http_reply(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sink_http *s = userdata;
    size_t n = size * nmemb;

    for (size_t i = 0; i < n && s->reply_len < sizeof(s->reply) - 1; i++) {
        unsigned char c = (unsigned char)data[i];
        s->reply[s->reply_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    s->reply[s->reply_len] = '\0';
    return n;
}

/*
 * Which non-2xx answers blame the event and which blame the sink.
 *
 * A sink that is down, overloaded or misconfigured refuses every event
 * alike; parking events then would quietly empty the stream into the
 * parked pile.  So only answers that can be about this one event count as
 * rejections (400, 409, 413, 422 and the other 4xx not listed below).
 * 408 and 429 say "later"; 401, 403, 404, 405, 407, 410, 415, 421 and 426
 * say our URL, credentials or protocol are wrong for every event.  All
 * 1xx, 3xx (redirects are not followed: a POST must not silently change
 * target) and 5xx are the sink's trouble too.
 */
static enum sink_status sink_http_classify(long code)
{
    static const long sink_wide[] = {401, 403, 404, 405, 407, 408, 410, 415, 421, 426, 429};

    if (code >= 200 && code <= 299)
        return SINK_OK;
    if (code < 400 || code > 499)
        return SINK_RETRY;
    for (size_t i = 0; i < sizeof(sink_wide) / sizeof(sink_wide[0]); i++) {
        if (code == sink_wide[i])
            return SINK_RETRY;
    }
    return SINK_REJECTED;
}

static void sink_http_scrub(struct sink_http *s, struct sink_result *r)
{
    sink_scrub_all(r->error, sizeof(r->error), (const char *const *)s->secrets,
                   sizeof(s->secrets) / sizeof(s->secrets[0]));
}

static void sink_http_answer(struct sink_http *s, long code, struct sink_result *r)
{
    curl_off_t retry_after = 0;
    enum sink_status status = sink_http_classify(code);

    if (status == SINK_OK) {
        sink_result_ok(r);
        return;
    }
    sink_result_set(r, status, "HTTP %ld%s%s", code, s->reply_len > 0 ? ": " : "", s->reply);
    if (curl_easy_getinfo(s->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        r->retry_after_ms = retry_after > 86400 ? 86400000LL : (long long)retry_after * 1000LL;
}

static bool sink_http_post(struct sink_http *s, const struct sink_message *m, struct sink_result *r)
{
    CURLcode rc;
    long code = 0;

    s->reply_len = 0;
    s->reply[0] = '\0';
    s->curl_error[0] = '\0';
    rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->envelope_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, m->envelope);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(s->curl);
    if (rc != CURLE_OK) {
        sink_result_set(r, SINK_RETRY, "%s%s%s", curl_easy_strerror(rc),
                        s->curl_error[0] != '\0' ? ": " : "", s->curl_error);
    } else if (curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) {
        sink_result_set(r, SINK_RETRY, "no HTTP status");
    } else {
        sink_http_answer(s, code, r);
    }
    sink_http_scrub(s, r);
    return r->status == SINK_OK;
}

static int sink_http_send(struct sink *base, const struct sink_message *msgs, int count,
                          struct sink_result *r)
{
    struct sink_http *s = (struct sink_http *)base;

    for (int i = 0; i < count; i++) {
        if (!sink_http_post(s, &msgs[i], r))
            return i;
    }
    sink_result_ok(r);
    return count;
}

static int sink_http_headers(struct sink_http *s, const char *user_agent)
{
    char ua[128];
    /* "Expect:" turns off curl's 100-continue dance for bodies over 1 KiB,
     * which costs a round trip (or a one second stall) per event. */
    const char *lines[] = {"Content-Type: application/cloudevents+json; charset=utf-8",
                           "Expect:", ua};

    snprintf(ua, sizeof(ua), "User-Agent: %s", user_agent);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *l = curl_slist_append(s->headers, lines[i]);
        if (l == NULL)
            return -1;
        s->headers = l;
    }
    return 0;
}

static CURLcode sink_http_options(struct sink_http *s, const char *url, const struct sink_options *opt)
{
    CURLcode rc = curl_easy_setopt(s->curl, CURLOPT_URL, url);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK) /* signals stay with the main loop (wake.c) */
        rc = curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)opt->connect_timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, (long)opt->timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, s->headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->curl_error);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, sink_http_reply);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, (void *)s);
    return rc;
}

/* The parts of the URL an error text must never show. */
static int sink_http_secrets(struct sink_http *s, const char *url)
{
    static const struct {
        CURLUPart part;
        unsigned int flags;
    } parts[] = {{CURLUPART_USER, 0}, {CURLUPART_PASSWORD, 0},
                 {CURLUPART_PASSWORD, CURLU_URLDECODE}, {CURLUPART_QUERY, 0}};
    CURLU *u = curl_url();
    int rc = 0;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return -1;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && rc == 0; i++) {
        char *v = NULL;
        CURLUcode got = curl_url_get(u, parts[i].part, &v, parts[i].flags);

        if (got == CURLUE_OK && v != NULL && (s->secrets[i] = strdup(v)) == NULL)
            rc = -1;
        curl_free(v);
    }
    curl_url_cleanup(u);
    return rc;
}

static void sink_http_close(struct sink *base)
{
    struct sink_http *s = (struct sink_http *)base;

    if (s->curl != NULL)
        curl_easy_cleanup(s->curl);
    curl_slist_free_all(s->headers);
    for (size_t i = 0; i < sizeof(s->secrets) / sizeof(s->secrets[0]); i++)
        free(s->secrets[i]);
    free(s);
}

static int sink_http_open(struct sink **out, const char *spec, const struct sink_options *opt,
                          char *err, size_t errlen)
{
    struct sink_http *s;
    CURLcode rc;

    if (sink_http_check(spec, err, errlen) != 0)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->base.adapter = &sink_http_adapter;
    s->base.max_batch = 1;
    s->base.send_budget_ms = opt->timeout_ms;
    sink_url_describe(spec, NULL, s->base.describe, sizeof(s->base.describe));
    s->curl = curl_easy_init();
    if (s->curl == NULL || sink_http_secrets(s, spec) != 0 ||
        sink_http_headers(s, opt->user_agent) != 0) {
        snprintf(err, errlen, "cannot set up curl");
        sink_http_close(&s->base);
        return -1;
    }
    rc = sink_http_options(s, spec, opt);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "EVENT_SINK: %s", curl_easy_strerror(rc));
        sink_http_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}

const struct sink_adapter sink_http_adapter = {
    .name = "http",
    .check = sink_http_check,
    .open = sink_http_open,
    .send = sink_http_send,
    .close = sink_http_close,
    .global_init = sink_http_global_init,
    .global_cleanup = sink_http_global_cleanup,
};
