#include "exporter.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcurl.h"
#include "otlp.h"

#define EXPORTER_RING 2048       /* spans buffered per worker */
#define EXPORTER_BATCH 256       /* spans per POST */
#define EXPORTER_INTERVAL_MS 1000
#define EXPORTER_TIMEOUT_MS 2000

/* libcurl, loaded by the first exporter_start (fcgi/libcurl.h). */
static const struct libcurl *curl;

struct exporter {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    struct span ring[EXPORTER_RING];
    struct span batch[EXPORTER_BATCH]; /* the exporter thread's alone */
    size_t head, count; /* ring[head .. head+count) mod size */
    bool stopping;
    char url[1024];
    CURL *curl;
    struct curl_slist *headers;
    atomic_ullong *exported, *dropped;
};

static void exporter_count(atomic_ullong *c, size_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void exporter_emit(void *ctx, const struct span *s)
{
    struct exporter *e = ctx;
    pthread_mutex_lock(&e->lock);
    if (e->count == EXPORTER_RING) {
        pthread_mutex_unlock(&e->lock);
        exporter_count(e->dropped, 1);
        return;
    }
    e->ring[(e->head + e->count) % EXPORTER_RING] = *s;
    e->count++;
    if (e->count >= EXPORTER_BATCH)
        pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

struct span_sink exporter_sink(struct exporter *e)
{
    return (struct span_sink){.emit = exporter_emit, .ctx = e};
}

static size_t exporter_discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* One POST of one batch; the lock is not held. */
static void exporter_post(struct exporter *e, const struct span *batch, size_t n)
{
    char *body = otlp_encode_spans(batch, n, "orders", ORDERS_VERSION);
    if (body == NULL) {
        exporter_count(e->dropped, n);
        return;
    }
    curl->easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl->easy_perform(e->curl);
    long status = 0;
    curl->easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    free(body);
    /* OTLP/HTTP: 2xx is success; anything else is a lost batch.  Retrying
     * would hold spans the ring needs for newer requests. */
    if (rc == CURLE_OK && status >= 200 && status < 300)
        exporter_count(e->exported, n);
    else
        exporter_count(e->dropped, n);
}

static void *exporter_main(void *arg)
{
    struct exporter *e = arg;
    struct span *batch = e->batch;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->count < EXPORTER_BATCH && !e->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += EXPORTER_INTERVAL_MS / 1000;
            pthread_cond_timedwait(&e->wake, &e->lock, &until);
        }
        size_t n = e->count < EXPORTER_BATCH ? e->count : EXPORTER_BATCH;
        for (size_t i = 0; i < n; i++)
            batch[i] = e->ring[(e->head + i) % EXPORTER_RING];
        e->head = (e->head + n) % EXPORTER_RING;
        e->count -= n;
        bool done = e->stopping && e->count == 0;
        pthread_mutex_unlock(&e->lock);
        if (n > 0)
            exporter_post(e, batch, n);
        pthread_mutex_lock(&e->lock);
        if (done || (e->stopping && e->count == 0))
            break;
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static int exporter_setup_curl(struct exporter *e, const char *endpoint)
{
    size_t len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/')
        len--;
    bool has_path = len >= 10 && strncmp(endpoint + len - 10, "/v1/traces", 10) == 0;
    int w = snprintf(e->url, sizeof e->url, "%.*s%s", (int)len, endpoint,
                     has_path ? "" : "/v1/traces");
    if (w < 0 || (size_t)w >= sizeof e->url)
        return -1;
    e->curl = curl->easy_init();
    e->headers = curl->slist_append(NULL, "Content-Type: application/json");
    if (e->curl == NULL || e->headers == NULL)
        return -1;
    if (curl->easy_setopt(e->curl, CURLOPT_URL, e->url) != CURLE_OK ||
        curl->easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers) != CURLE_OK ||
        curl->easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)EXPORTER_TIMEOUT_MS) != CURLE_OK ||
        curl->easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L) != CURLE_OK ||
        curl->easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl->easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, exporter_discard) != CURLE_OK)
        return -1;
    return 0;
}

static void exporter_free(struct exporter *e)
{
    if (e->curl != NULL)
        curl->easy_cleanup(e->curl);
    if (e->headers != NULL)
        curl->slist_free_all(e->headers);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

struct exporter *exporter_start(const char *endpoint, atomic_ullong *exported,
                                atomic_ullong *dropped)
{
    if (curl == NULL && (curl = libcurl_load()) == NULL)
        return NULL;
    struct exporter *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->exported = exported;
    e->dropped = dropped;
    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e);
        return NULL;
    }
    if (pthread_cond_init(&e->wake, NULL) != 0) {
        pthread_mutex_destroy(&e->lock);
        free(e);
        return NULL;
    }
    /* The thread must not take the worker's SIGTERM: the accept loop needs
     * it to stop, so it is blocked here and inherited by the thread. */
    sigset_t all, old;
    sigfillset(&all);
    if (exporter_setup_curl(e, endpoint) != 0 ||
        pthread_sigmask(SIG_BLOCK, &all, &old) != 0) {
        exporter_free(e);
        return NULL;
    }
    int rc = pthread_create(&e->thread, NULL, exporter_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        exporter_free(e);
        return NULL;
    }
    return e;
}

void exporter_stop(struct exporter *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    exporter_free(e);
}
