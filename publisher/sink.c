/*
 * sink.c - stdout, JSON Lines file and HTTP sinks.
 *
 * Files: a batch is buffered in memory and written with as few write(2)
 * calls as possible, then fsync'ed once.  If anything fails the file is
 * truncated back to where the batch began, so a retry never appends after
 * half a line.  A kill -9 between two writes of one batch, or a power cut
 * before the fsync, can still leave a torn last line; sink_begin cuts it off
 * before appending, which is safe because nothing after the last newline
 * was ever acknowledged (acknowledgement waits for the fsync).  The file is
 * reopened when it was renamed or removed (log rotation).
 *
 * HTTP: the CloudEvents HTTP protocol binding, structured mode: one POST
 * per event, Content-Type application/cloudevents+json, one curl handle for
 * the process so the connection is kept alive between events.  Only a 2xx
 * acknowledges.  Other answers are classified in sink_http_classify.
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "plog.h"

/* Write out a file batch early once this much is buffered, so a large
 * batch of large events does not all sit in memory. */
#define SINK_WRITE_CHUNK (1024 * 1024)

/* Appending and fsyncing one batch; beyond this the lease could lapse. */
#define SINK_FILE_BUDGET_MS 1000

enum sink_kind { SINK_STDOUT, SINK_FILE, SINK_HTTP };

struct sink {
    enum sink_kind kind;
    char *describe;
    /* stdout and file */
    int fd;
    char *path;
    char *buf;
    size_t len, cap;
    off_t batch_start;
    /* http */
    CURL *curl;
    struct curl_slist *headers;
    long long timeout_ms;
    char curl_error[CURL_ERROR_SIZE];
    char reply[160];
    size_t reply_len;
};

static void sink_ok(struct sink_result *r)
{
    r->status = SINK_OK;
    r->retry_after_ms = 0;
    r->error[0] = '\0';
}

static void sink_set(struct sink_result *r, enum sink_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sink_set(struct sink_result *r, enum sink_status status, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->retry_after_ms = 0;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

int sink_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void sink_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- buffered stdout and file ------------------------------------------ */

static int sink_buffer_append(struct sink *s, const char *data, size_t len)
{
    if (s->cap - s->len < len + 1) {
        size_t cap = s->cap != 0 ? s->cap : 64 * 1024;
        char *p;

        while (cap - s->len < len + 1) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        p = realloc(s->buf, cap);
        if (p == NULL)
            return -1;
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len++] = '\n';
    return 0;
}

static int sink_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Whatever failed, the batch's bytes must not stay behind half written. */
static void sink_file_rollback(struct sink *s)
{
    int saved = errno;

    s->len = 0;
    if (s->kind == SINK_FILE && ftruncate(s->fd, s->batch_start) != 0) {
        struct plog_field f[] = {PLOG_STR("path", s->path), PLOG_STR("error", strerror(errno))};
        plog(PLOG_ERROR, "cannot truncate the event file after a failed write", f, PLOG_COUNT(f));
    }
    errno = saved;
}

static int sink_flush_buffer(struct sink *s)
{
    if (sink_write_all(s->fd, s->buf, s->len) != 0)
        return -1;
    s->len = 0;
    return 0;
}

static int sink_file_open(struct sink *s)
{
    /* Read access too: sink_file_repair_tail looks at the last line. */
    int fd = open(s->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    if (s->fd >= 0)
        (void)close(s->fd); /* the old, rotated file: nothing buffered in it */
    s->fd = fd;
    return 0;
}

/* Reopens when the path no longer names the file we hold (rotated away). */
static int sink_file_follow(struct sink *s)
{
    struct stat by_path, by_fd;

    if (stat(s->path, &by_path) != 0 || fstat(s->fd, &by_fd) != 0 ||
        by_path.st_dev != by_fd.st_dev || by_path.st_ino != by_fd.st_ino)
        return sink_file_open(s);
    return 0;
}

/* Finds where the torn tail begins: just after the last newline. */
static int sink_file_last_newline_end(int fd, off_t size, off_t *end)
{
    char chunk[4096];
    off_t pos = size;

    while (pos > 0) {
        size_t want = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
        ssize_t n = pread(fd, chunk, want, pos - (off_t)want);

        if (n != (ssize_t)want)
            return -1;
        pos -= (off_t)want;
        for (size_t i = want; i > 0; i--) {
            if (chunk[i - 1] == '\n') {
                *end = pos + (off_t)i;
                return 0;
            }
        }
    }
    *end = 0;
    return 0;
}

static int sink_file_repair_tail(struct sink *s, off_t size, off_t *good)
{
    char last;
    off_t end;

    *good = size;
    if (size == 0)
        return 0;
    if (pread(s->fd, &last, 1, size - 1) != 1)
        return -1;
    if (last == '\n')
        return 0;
    if (sink_file_last_newline_end(s->fd, size, &end) != 0 || ftruncate(s->fd, end) != 0)
        return -1;
    *good = end;
    struct plog_field f[] = {PLOG_STR("path", s->path), PLOG_INT("bytes", (long long)(size - end))};
    plog(PLOG_WARN, "cut an unacknowledged torn line off the end of the event file", f, PLOG_COUNT(f));
    return 0;
}

static void sink_file_begin(struct sink *s, struct sink_result *r)
{
    struct stat st;

    s->len = 0;
    if (sink_file_follow(s) != 0 || fstat(s->fd, &st) != 0 ||
        sink_file_repair_tail(s, st.st_size, &s->batch_start) != 0) {
        sink_set(r, SINK_RETRY, "%s: %s", s->path, strerror(errno));
        return;
    }
    sink_ok(r);
}

static void sink_buffered_send(struct sink *s, const char *body, size_t len, struct sink_result *r)
{
    if (sink_buffer_append(s, body, len) != 0) {
        sink_set(r, SINK_RETRY, "out of memory buffering the batch");
        return;
    }
    if (s->len >= SINK_WRITE_CHUNK && sink_flush_buffer(s) != 0) {
        sink_set(r, SINK_RETRY, "writing %s: %s", s->describe, strerror(errno));
        sink_file_rollback(s);
        return;
    }
    sink_ok(r);
}

/* stdout may be a pipe or a terminal, where fsync means nothing (EINVAL);
 * when it is redirected to a regular file it gets the file's durability. */
static int sink_sync(struct sink *s)
{
    struct stat st;

    if (s->kind == SINK_STDOUT && (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)))
        return 0;
    return fsync(s->fd);
}

static void sink_buffered_finish(struct sink *s, struct sink_result *r)
{
    if (sink_flush_buffer(s) != 0 || sink_sync(s) != 0) {
        sink_set(r, SINK_RETRY, "writing %s: %s", s->describe, strerror(errno));
        sink_file_rollback(s);
        return;
    }
    sink_ok(r);
}

/* ---- HTTP --------------------------------------------------------------- */

/* Keeps the start of the answer for last_error; the rest is discarded. */
static size_t sink_http_reply(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
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

static void sink_http_answer(struct sink *s, long code, struct sink_result *r)
{
    curl_off_t retry_after = 0;

    enum sink_status status = sink_http_classify(code);

    if (status == SINK_OK) {
        sink_ok(r);
        return;
    }
    sink_set(r, status, "HTTP %ld%s%s", code, s->reply_len > 0 ? ": " : "", s->reply);
    if (curl_easy_getinfo(s->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        r->retry_after_ms = retry_after > 86400 ? 86400000LL : (long long)retry_after * 1000LL;
}

static void sink_http_send(struct sink *s, const char *body, size_t len, struct sink_result *r)
{
    CURLcode rc;
    long code = 0;

    s->reply_len = 0;
    s->reply[0] = '\0';
    s->curl_error[0] = '\0';
    rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(s->curl);
    if (rc != CURLE_OK) {
        sink_set(r, SINK_RETRY, "%s%s%s", curl_easy_strerror(rc),
                 s->curl_error[0] != '\0' ? ": " : "", s->curl_error);
        return;
    }
    if (curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) {
        sink_set(r, SINK_RETRY, "no HTTP status");
        return;
    }
    sink_http_answer(s, code, r);
}

static int sink_http_headers(struct sink *s, const char *user_agent)
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

static CURLcode sink_http_options(struct sink *s, const char *url, const struct sink_options *opt)
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

/* The URL as logs may show it: scheme, host, port and path only. */
static char *sink_http_describe(const char *url)
{
    CURLU *u = curl_url();
    char *out = NULL, *clean = NULL;

    if (u == NULL)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK)
        out = strdup(clean);
    curl_free(clean);
    curl_url_cleanup(u);
    return out;
}

static int sink_http_open(struct sink *s, const char *url, const struct sink_options *opt,
                          char *err, size_t errlen)
{
    CURLcode rc;

    s->kind = SINK_HTTP;
    s->timeout_ms = opt->timeout_ms;
    s->describe = sink_http_describe(url);
    if (s->describe == NULL) {
        snprintf(err, errlen, "EVENT_SINK is not a URL curl accepts");
        return -1;
    }
    s->curl = curl_easy_init();
    if (s->curl == NULL || sink_http_headers(s, opt->user_agent) != 0) {
        snprintf(err, errlen, "cannot set up curl");
        return -1;
    }
    rc = sink_http_options(s, url, opt);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "EVENT_SINK: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- the interface ------------------------------------------------------ */

static int sink_local_open(struct sink *s, const char *spec, char *err, size_t errlen)
{
    if (strcmp(spec, "stdout") == 0) {
        s->kind = SINK_STDOUT;
        s->fd = STDOUT_FILENO;
        s->describe = strdup("stdout");
        if (s->describe == NULL)
            snprintf(err, errlen, "out of memory");
        return s->describe != NULL ? 0 : -1;
    }
    s->kind = SINK_FILE;
    s->path = strdup(spec + 5);
    s->describe = strdup(spec);
    if (s->path == NULL || s->describe == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sink_file_open(s) != 0) {
        snprintf(err, errlen, "opening %s: %s", s->path, strerror(errno));
        return -1;
    }
    return 0;
}

int sink_open(struct sink **out, const char *spec, const struct sink_options *opt,
              char *err, size_t errlen)
{
    struct sink *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->fd = -1;
    if (strncasecmp(spec, "http://", 7) == 0 || strncasecmp(spec, "https://", 8) == 0)
        rc = sink_http_open(s, spec, opt, err, errlen);
    else
        rc = sink_local_open(s, spec, err, errlen);
    if (rc != 0) {
        sink_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sink_close(struct sink *s)
{
    if (s == NULL)
        return;
    if (s->kind == SINK_FILE && s->fd >= 0)
        (void)close(s->fd); /* everything acknowledged was fsync'ed already */
    if (s->curl != NULL)
        curl_easy_cleanup(s->curl);
    curl_slist_free_all(s->headers);
    free(s->buf);
    free(s->path);
    free(s->describe);
    free(s);
}

const char *sink_describe(const struct sink *s)
{
    return s->describe;
}

long long sink_send_budget_ms(const struct sink *s)
{
    return s->kind == SINK_HTTP ? s->timeout_ms : SINK_FILE_BUDGET_MS;
}

void sink_begin(struct sink *s, struct sink_result *r)
{
    if (s->kind == SINK_FILE) {
        sink_file_begin(s, r);
        return;
    }
    s->len = 0;
    sink_ok(r);
}

void sink_send(struct sink *s, const char *body, size_t len, struct sink_result *r)
{
    if (s->kind == SINK_HTTP)
        sink_http_send(s, body, len, r);
    else
        sink_buffered_send(s, body, len, r);
}

void sink_finish(struct sink *s, struct sink_result *r)
{
    if (s->kind == SINK_HTTP)
        sink_ok(r);
    else
        sink_buffered_finish(s, r);
}
