/*
 * jwks_share.c - the key set in shared memory (see jwks_share.h).
 *
 * One writer (the master's fetcher thread), many readers (the workers), in
 * different processes: the document is guarded by a sequence counter (a
 * seqlock), odd while the writer is copying.  A reader copies the document
 * and takes the copy only if the counter was even and unchanged across the
 * copy; a torn copy is retried a few times, and a reader that still fails
 * keeps the set it has until its next request.  Readers never block the
 * writer, and the writer never waits for a reader.
 */
#include "jwks_share.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth_jwk.h"

#define JWKS_SHARE_MAGIC 0x6a776b7331ull /* "jwks1": the layout below */
#define JWKS_READ_TRIES 8
#define JWKS_WAIT_STEP_MS 5

struct jwks_share {
    uint64_t magic;
    int32_t min_refresh_ms;     /* written once, before any worker starts */
    atomic_uint_fast64_t seq;   /* odd: the writer is copying */
    atomic_uint_fast64_t generation; /* of doc; 0: none yet */
    atomic_uint_fast64_t requests;   /* fetches asked for by workers */
    atomic_uint_fast64_t fetches;    /* fetches ended */
    atomic_int_fast64_t last_fetch_ms; /* when the last one started; 0: never */
    atomic_uint_fast32_t len;
    char doc[AUTH_JWKS_MAX];
};

int64_t jwks_share_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct jwks_share *jwks_share_create(int min_refresh_ms)
{
    int fd = memfd_create("orders-jwks", 0);
    if (fd < 0)
        return NULL;
    struct jwks_share *s = MAP_FAILED;
    if (ftruncate(fd, sizeof *s) == 0)
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    if (s == MAP_FAILED || setenv(JWKS_FD_ENV, num, 1) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    /* A fresh memfd reads as zeros: generation 0, nothing fetched. */
    s->magic = JWKS_SHARE_MAGIC;
    s->min_refresh_ms = min_refresh_ms;
    return s;
}

struct jwks_share *jwks_share_attach(char *err, size_t errlen)
{
    const char *v = getenv(JWKS_FD_ENV);
    int fd = v ? atoi(v) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "no key set from the pool master (%s)", JWKS_FD_ENV);
        return NULL;
    }
    struct jwks_share *s = MAP_FAILED;
    if ((size_t)st.st_size == sizeof *s)
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (s != MAP_FAILED && s->magic != JWKS_SHARE_MAGIC) {
        munmap(s, sizeof *s);
        s = MAP_FAILED;
    }
    if (s == MAP_FAILED) {
        snprintf(err, errlen, "the pool master's key set is of another version; "
                              "restart the service instead of reloading it");
        return NULL;
    }
    return s;
}

void jwks_share_unmap(struct jwks_share *s)
{
    if (s != NULL)
        munmap(s, sizeof *s);
}

/* ---- the workers' side --------------------------------------------------- */

static uint64_t share_generation(void *ctx)
{
    struct jwks_share *s = ctx;
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

static uint64_t share_read(void *ctx, char *buf, size_t cap, size_t *len)
{
    struct jwks_share *s = ctx;
    for (int i = 0; i < JWKS_READ_TRIES; i++) {
        uint64_t before = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (before % 2 == 1)
            continue;
        uint64_t gen = atomic_load_explicit(&s->generation, memory_order_relaxed);
        size_t n = atomic_load_explicit(&s->len, memory_order_relaxed);
        if (n > cap || n > sizeof s->doc)
            return 0;
        memcpy(buf, s->doc, n);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == before) {
            *len = n;
            return gen;
        }
    }
    return 0;
}

/*
 * Asks for a fetch and waits for one to end, unless the last one started
 * less than min_refresh_ms ago and a set is in hand: then no fetch will
 * come now (the fetcher defers the ask), and waiting would only hold the
 * request.  With no set yet the fetcher retries on its own every second,
 * so waiting is worth it.
 */
static uint64_t share_refresh(void *ctx, int max_ms)
{
    struct jwks_share *s = ctx;
    int64_t now = jwks_share_now_ms();
    int64_t last = atomic_load_explicit(&s->last_fetch_ms, memory_order_acquire);
    uint64_t gen = atomic_load_explicit(&s->generation, memory_order_acquire);
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_release);
    if (gen != 0 && last != 0 && now - last < s->min_refresh_ms)
        return gen;
    uint64_t ended = atomic_load_explicit(&s->fetches, memory_order_acquire);
    const struct timespec step = {0, JWKS_WAIT_STEP_MS * 1000000L};
    for (int waited = 0; waited < max_ms; waited += JWKS_WAIT_STEP_MS) {
        nanosleep(&step, NULL);
        if (atomic_load_explicit(&s->fetches, memory_order_acquire) != ended)
            break;
    }
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

struct auth_key_source jwks_share_source(struct jwks_share *s)
{
    return (struct auth_key_source){
        .ctx = s,
        .generation = share_generation,
        .read = share_read,
        .refresh = share_refresh,
    };
}

/* ---- the fetcher's side -------------------------------------------------- */

uint64_t jwks_share_requests(const struct jwks_share *s)
{
    return atomic_load_explicit(&s->requests, memory_order_acquire);
}

void jwks_share_fetch_started(struct jwks_share *s, int64_t now_ms)
{
    atomic_store_explicit(&s->last_fetch_ms, now_ms, memory_order_release);
}

void jwks_share_fetch_ended(struct jwks_share *s)
{
    atomic_fetch_add_explicit(&s->fetches, 1, memory_order_release);
}

uint64_t jwks_share_generation(const struct jwks_share *s)
{
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

bool jwks_share_publish(struct jwks_share *s, const char *doc, size_t len)
{
    if (len > sizeof s->doc)
        return false;
    size_t cur = atomic_load_explicit(&s->len, memory_order_relaxed);
    if (atomic_load_explicit(&s->generation, memory_order_relaxed) != 0 &&
        cur == len && memcmp(s->doc, doc, len) == 0)
        return false;
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel); /* odd */
    atomic_thread_fence(memory_order_release);
    memcpy(s->doc, doc, len);
    atomic_store_explicit(&s->len, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->generation, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_release); /* even */
    return true;
}
