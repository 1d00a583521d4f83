/*
 * jwks_fetch.c - fetching the key set in the pool master (see
 * jwks_fetch.h).
 */
#include "jwks_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth_jwk.h"
#include "libcurl.h"

#define JWKS_POLL_MS 20

struct jwks_fetcher {
    struct jwks_fetch_settings set;
    struct jwks_share *share;
    const struct logger *log;
    const struct libcurl *curl;
    pthread_t thread;
    atomic_bool stopping;
    char *buf; /* AUTH_JWKS_MAX + 1 bytes */
    size_t len;
    bool too_big;
};

/* ---- one fetch ------------------------------------------------------------ */

static size_t fetch_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct jwks_fetcher *f = arg;
    size_t n = size * nmemb;
    if (n > AUTH_JWKS_MAX - f->len) {
        f->too_big = true;
        return 0; /* ends the transfer */
    }
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return n;
}

static int fetch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                          curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct jwks_fetcher *f = arg;
    return atomic_load(&f->stopping) ? 1 : 0;
}

/* Reads the URL into f->buf; false with why set. */
static bool fetch_url(struct jwks_fetcher *f, char *why, size_t whylen)
{
    const struct libcurl *c = f->curl;
    CURL *h = c->easy_init();
    if (h == NULL) {
        snprintf(why, whylen, "libcurl cannot start a transfer");
        return false;
    }
    bool ok = c->easy_setopt(h, CURLOPT_URL, f->set.url) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)JWKS_FETCH_TIMEOUT_MS) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)JWKS_FETCH_CONNECT_MS) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_WRITEDATA, f) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fetch_progress) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_XFERINFODATA, f) == CURLE_OK &&
              c->easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
    if (!ok) {
        snprintf(why, whylen, "libcurl refused an option");
    } else {
        CURLcode rc = c->easy_perform(h);
        long status = 0;
        c->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (f->too_big)
            snprintf(why, whylen, "larger than %d bytes", AUTH_JWKS_MAX);
        else if (rc != CURLE_OK)
            snprintf(why, whylen, "%s", c->easy_strerror(rc));
        else if (status != 200)
            snprintf(why, whylen, "HTTP status %ld", status);
        ok = !f->too_big && rc == CURLE_OK && status == 200;
    }
    c->easy_cleanup(h);
    return ok;
}

static bool fetch_file(struct jwks_fetcher *f, char *why, size_t whylen)
{
    int fd = open(f->set.file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    bool ok = true;
    for (;;) {
        ssize_t n = read(fd, f->buf + f->len, AUTH_JWKS_MAX + 1 - f->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            ok = false;
            break;
        }
        if (n == 0)
            break;
        f->len += (size_t)n;
        if (f->len > AUTH_JWKS_MAX) {
            snprintf(why, whylen, "larger than %d bytes", AUTH_JWKS_MAX);
            ok = false;
            break;
        }
    }
    close(fd);
    return ok;
}

static void fetch_once(struct jwks_fetcher *f)
{
    char why[256] = "";
    f->len = 0;
    f->too_big = false;
    jwks_share_fetch_started(f->share, jwks_share_now_ms());
    bool got = f->set.url != NULL ? fetch_url(f, why, sizeof why)
                                  : fetch_file(f, why, sizeof why);
    struct auth_keyset *set = NULL;
    if (got && (set = auth_keyset_parse(f->buf, f->len, why, sizeof why)) == NULL)
        got = false;
    /* The setting's name, not its value: a URL may carry credentials. */
    const char *where = f->set.url != NULL ? "JWT_JWKS_URL" : "JWT_JWKS_FILE";
    if (!got) {
        log_emit(f->log, LOG_WARN, NULL, "key set refused; the last good one stays",
                 (struct log_field[]){LOG_STR("source", where), LOG_STR("reason", why)}, 2);
    } else if (jwks_share_publish(f->share, f->buf, f->len)) {
        log_emit(f->log, LOG_INFO, NULL, "key set published",
                 (struct log_field[]){LOG_STR("source", where),
                                      LOG_INT("keys", (long long)set->count),
                                      LOG_INT("generation",
                                              (long long)jwks_share_generation(f->share))},
                 3);
    }
    auth_keyset_free(set);
    jwks_share_fetch_ended(f->share);
}

/* ---- the thread ------------------------------------------------------------- */

static void *fetcher_main(void *arg)
{
    struct jwks_fetcher *f = arg;
    const int64_t refresh = (int64_t)f->set.refresh_s * 1000;
    const int64_t min_refresh = (int64_t)f->set.min_refresh_s * 1000;
    const struct timespec poll = {0, JWKS_POLL_MS * 1000000L};
    int64_t last = 0;
    uint64_t served = jwks_share_requests(f->share);
    bool first = true;
    while (!atomic_load(&f->stopping)) {
        int64_t now = jwks_share_now_ms();
        bool have = jwks_share_generation(f->share) != 0;
        int64_t since = now - last;
        uint64_t asked = jwks_share_requests(f->share);
        bool due = first || since >= (have ? refresh : JWKS_RETRY_UNTIL_FIRST_MS);
        bool ask = asked != served &&
                   (!have || since >= (min_refresh < JWKS_RETRY_UNTIL_FIRST_MS
                                           ? JWKS_RETRY_UNTIL_FIRST_MS : min_refresh));
        if (due || ask) {
            served = asked;
            last = now;
            first = false;
            fetch_once(f);
        } else {
            nanosleep(&poll, NULL);
        }
    }
    return NULL;
}

struct jwks_fetcher *jwks_fetcher_start(const struct jwks_fetch_settings *s,
                                        struct jwks_share *share,
                                        const struct logger *log,
                                        char *err, size_t errlen)
{
    struct jwks_fetcher *f = calloc(1, sizeof *f);
    if (f == NULL || (f->buf = malloc(AUTH_JWKS_MAX + 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        if (f != NULL)
            free(f);
        return NULL;
    }
    f->set = *s;
    f->share = share;
    f->log = log;
    atomic_init(&f->stopping, false);
    if (s->url != NULL && (f->curl = libcurl_load()) == NULL) {
        snprintf(err, errlen, "JWT_JWKS_URL needs libcurl (libcurl4), which cannot be loaded");
        free(f->buf);
        free(f);
        return NULL;
    }
    /* The pool's signals are the master's main thread's business. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&f->thread, NULL, fetcher_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the key set fetcher: %s", strerror(rc));
        free(f->buf);
        free(f);
        return NULL;
    }
    return f;
}

void jwks_fetcher_stop(struct jwks_fetcher *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stopping, true);
    pthread_join(f->thread, NULL);
    free(f->buf);
    free(f);
}
