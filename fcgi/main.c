/*
 * orders-fcgi - the FastCGI worker pool of the Orders Service.
 *
 *   spawn-fcgi -n -s SOCKET -- orders-fcgi       serve (prefork master)
 *   orders-fcgi --migrate                        apply migrations and exit
 *   orders-fcgi --worker                         one worker (the master execs it)
 *
 * The listening socket is fd 0, as spawn-fcgi leaves it.  Configuration is
 * the environment (core/config.h); WORKERS sets the pool size (default: the
 * number of CPUs, as nproc counts them; the installed systemd unit and the
 * container's entrypoint set twice that), WORKER_THREADS the serving threads in each (default 4,
 * fcgi/adapter.h), WORKER_MAX_REQUESTS recycles a worker after that many
 * requests (default 0: never), WORKER_USER names the account workers run
 * as when started as root (default www-data).
 *
 * The master execs every worker afresh instead of running the forked copy,
 * so a reload (SIGHUP) brings up the binary that is on disk now: deploy new
 * binaries, send SIGHUP, and the socket never closes.  The old workers
 * retire only once the new ones are ready; a broken binary fails the reload
 * and the old ones serve on (fcgi/pool.h).  The pool's metrics live in a
 * memfd that survives the exec (fcgi/shared_metrics.h), and so does the
 * JWT secret the master hands to its workers (common/secret.h).
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "app.h"
#include "config.h"
#include "exporter.h"
#include "jwks_fetch.h"
#include "jwks_share.h"
#include "pool.h"
#include "privileges.h"
#include "secret.h"
#include "shared_metrics.h"
#include "settings.h"
#include "store.h"

#define STOP_TIMEOUT_MS 15000
/* A reload's new workers open the database and apply migrations before they
 * report ready; one that takes longer than this counts as broken and the
 * old workers serve on. */
#define READY_TIMEOUT_MS 30000
/* nginx answers 504 at REQUEST_TIMEOUT; a worker still busy a little later
 * is stuck, and the watchdog's SIGALRM ends it so the pool replaces it. */
#define WATCHDOG_GRACE_S 5
/* Serving threads per worker (WORKER_THREADS): enough that the connections
 * nginx keeps alive to the pool (UPSTREAM_KEEPALIVE per nginx worker) park
 * only some of them, with threads to spare for fresh connections
 * (README.md, "Performance"). */
#define WORKER_THREADS_DEFAULT 4

static volatile sig_atomic_t worker_stop;

/* The adapter keeps SIGTERM/SIGINT blocked except while it waits in
 * accept (fcgi/adapter.c explains why); the handler only sets the flag. */
static void worker_on_term(int sig)
{
    (void)sig;
    worker_stop = 1;
}

static int worker_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = worker_on_term;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* serve_unreachable: a worker keeps going when the database cannot be
 * reached (it answers 503 and migrates once it can) instead of exiting
 * into a restart loop; the migrate command does not, and *unreachable then
 * tells it why it failed. */
static struct store *open_store(const struct config *cfg, bool migrate, bool serve_unreachable,
                                bool *unreachable)
{
    char err[512];
    const struct store_options opt = {.location = cfg->database_path,
                                      .synchronous_full = cfg->synchronous_full,
                                      .busy_timeout_ms = cfg->busy_timeout_ms,
                                      .create = true};
    struct store *st = NULL;
    if (store_open(&opt, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "orders-fcgi: cannot open database %s\n", err);
        return NULL;
    }
    enum store_status migrated = migrate ? store_migrate(st, err, sizeof err) : STORE_OK;
    if (migrated == STORE_BUSY && serve_unreachable) {
        fprintf(stderr, "orders-fcgi: the database is unreachable (%s); answering 503 until it"
                        " returns\n", err);
        return st;
    }
    if (migrated != STORE_OK) {
        if (migrated == STORE_BUSY && unreachable != NULL) {
            /* One line for the journal: what, where (no password), why,
             * and that it is worth trying again (exit 75). */
            char where[256];
            store_describe(cfg->database_path, where, sizeof where);
            fprintf(stderr,
                    "orders-fcgi: migrations not applied: the database %s is unreachable or"
                    " busy now (%s); exit 75, try again later\n",
                    where, err);
            *unreachable = true;
        } else {
            fprintf(stderr, "orders-fcgi: %s\n", err);
        }
        store_close(st);
        return NULL;
    }
    return st;
}

struct worker_args {
    const struct config *cfg;
    unsigned long max_requests;
    int threads;
    struct metrics *metrics; /* shared by the whole pool */
    struct scoreboard *scoreboard; /* the pool's status, or NULL */
};

/* GET /status and the pool's /metrics lines, from the scoreboard; the
 * listening socket is fd 0. */
static char *pool_status_json(void *ctx, bool full, size_t *len)
{
    const struct worker_args *wa = ctx;
    return scoreboard_render_json(wa->scoreboard, wa->metrics, 0, full, len);
}

static char *pool_metrics_text(void *ctx, size_t *len)
{
    const struct worker_args *wa = ctx;
    return scoreboard_render_metrics(wa->scoreboard, 0, len);
}

/* What one serving thread uses: its own store connection (a store is used
 * by one thread, core/store.h) and its own app around it. */
struct worker_thread_state {
    struct store *store;
    struct app app;
    bool app_ready;
};

static void worker_threads_free(struct worker_thread_state *ts, int n)
{
    for (int i = 0; i < n; i++) {
        if (ts[i].app_ready)
            app_free(&ts[i].app);
        if (ts[i].store != NULL)
            store_close(ts[i].store);
    }
    free(ts);
}

/* Opens a store and builds an app for each serving thread; the first
 * store applies the migrations.  NULL after a line on stderr. */
static struct worker_thread_state *worker_threads_new(const struct worker_args *wa,
                                                      const struct auth_key_source *keys)
{
    struct worker_thread_state *ts = calloc((size_t)wa->threads, sizeof *ts);
    if (ts == NULL) {
        fprintf(stderr, "orders-fcgi: out of memory\n");
        return NULL;
    }
    for (int i = 0; i < wa->threads; i++) {
        char err[256];
        ts[i].store = open_store(wa->cfg, i == 0, true, NULL);
        if (ts[i].store == NULL) {
            worker_threads_free(ts, wa->threads);
            return NULL;
        }
        if (app_init(&ts[i].app, wa->cfg, ts[i].store, keys, err, sizeof err) != 0) {
            fprintf(stderr, "orders-fcgi: %s\n", err);
            worker_threads_free(ts, wa->threads);
            return NULL;
        }
        ts[i].app_ready = true;
        app_use_metrics(&ts[i].app, wa->metrics);
        if (wa->scoreboard != NULL)
            ts[i].app.pool = (struct app_pool_report){.ctx = (void *)wa,
                                                      .status_json = pool_status_json,
                                                      .metrics_text = pool_metrics_text};
    }
    return ts;
}

static int worker_main(const struct worker_args *wa)
{
    if (worker_install_signals() != 0 || privileges_drop("orders-fcgi") != 0)
        return 1;
    /* glibc's own heap settings are left as they are here (the idle trim
     * changes them for a moment, and then keeps the trim threshold at
     * 1 MiB: fcgi/adapter.c, fcgi_trim_arenas).  A 32 KiB
     * M_TRIM_THRESHOLD with no M_TOP_PAD (free() giving a heap's top back
     * at once, so that the serving threads' arenas, whose tops malloc_trim
     * does not shorten, kept 0.3 MiB less) cost POST /orders 40% of its
     * throughput (2,070 to 2,190 against 1,200 to 1,350 req/s, three
     * alternated 5 s runs on a quiet machine, p99 66 against 124 to
     * 146 ms): every write's allocations grew and shrank the heap, and
     * setting either also turns off glibc's adaptive mmap threshold.  The
     * idle trim (fcgi/adapter.c) gives back what it can.
     *
     * The arenas themselves are left as they are (glibc gives each thread
     * one of its own, up to 8 per CPU).  One arena for all the threads
     * (mallopt M_ARENA_MAX 1) cut a worker's Pss by about 0.4 MiB (threads
     * 1-3 each kept an arena of 320 to 480 KiB resident), but measured on a
     * quiet machine (2 workers of 4 threads, wrk -t2 -c32, 1,000 orders,
     * three alternated 5 s runs) GET /orders?limit=20 fell from 11,898 to
     * 9,771 req/s and its worker CPU rose from 86 to 105 us per request:
     * the threads queue on the arena's lock for the JSON trees' many small
     * allocations. */
    /* A writer waiting for another's transaction polls the lock every 50 us
     * (adapters/store_sqlite.c); the kernel's default 50 us timer slack would double
     * each of those naps.  Best effort: without it the wait is only longer.
     * Set before the serving threads start, which inherit it. */
    prctl(PR_SET_TIMERSLACK, 5000UL, 0UL, 0UL, 0UL);
    /* The identity provider's key set, as the master fetched it for the
     * whole pool (fcgi/jwks_share.h); every thread's verifier reads it. */
    struct jwks_share *jwks = NULL;
    struct auth_key_source keys;
    if (config_has_jwks(wa->cfg)) {
        char err[256];
        if ((jwks = jwks_share_attach(err, sizeof err)) == NULL) {
            fprintf(stderr, "orders-fcgi: %s\n", err);
            return 1;
        }
        keys = jwks_share_source(jwks);
    }
    struct worker_thread_state *ts = worker_threads_new(wa, jwks != NULL ? &keys : NULL);
    if (ts == NULL) {
        jwks_share_unmap(jwks);
        return 1;
    }
    /* Every connection was opened here, and read the schema into a page
     * cache of its own (with room for 20 pages, 85 KiB, kept until the
     * cache is emptied): a serving thread frees its cache once it goes idle
     * after serving (fcgi/adapter.c), but a thread that has not served yet
     * kept it, 0.25 MiB of an idle worker's memory with four threads.
     * Freed now, and the heap trimmed once, before any thread runs. */
    for (int i = 0; i < wa->threads; i++)
        store_release_memory(ts[i].store);
    malloc_trim(0);
    struct app *apps[FCGI_MAX_THREADS];
    for (int i = 0; i < wa->threads; i++)
        apps[i] = &ts[i].app;
    struct exporter *exp = NULL;
    if (wa->cfg->otlp_endpoint != NULL) {
        exp = exporter_start(wa->cfg->otlp_endpoint, &wa->metrics->spans_exported,
                             &wa->metrics->spans_dropped);
        if (exp == NULL)
            fprintf(stderr, "orders-fcgi: trace export disabled: cannot start the exporter\n");
        else
            for (int i = 0; i < wa->threads; i++)
                ts[i].app.spans = exporter_sink(exp); /* its queue has a lock */
    }
    fcgi_serve(apps, wa->threads, &worker_stop, wa->max_requests,
               (unsigned)wa->cfg->request_timeout_s + WATCHDOG_GRACE_S,
               pool_worker_ready, wa->scoreboard);
    exporter_stop(exp);
    worker_threads_free(ts, wa->threads);
    jwks_share_unmap(jwks);
    return 0;
}

/* The CPUs this process may run on, as nproc counts them (its affinity
 * mask, which a container's or a unit's CPU set narrows), so that "the
 * number of CPUs" means one number whoever starts the pool. */
static long pool_cpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* The pool's own settings, read by the common rules (common/settings.h).
 * Returns 0, or -1 after one line on stderr. */
static int pool_read_settings(int *workers, int *max_requests, int *threads)
{
    long ncpu = pool_cpus();
    long fallback = ncpu < 1 ? 1 : ncpu > POOL_MAX_WORKERS ? POOL_MAX_WORKERS : ncpu;
    char err[256];
    const struct setting rows[] = {
        SETTING_INT_ROW("WORKERS", fallback, 1, POOL_MAX_WORKERS, workers),
        SETTING_INT_ROW("WORKER_MAX_REQUESTS", 0, 0, 1000000000, max_requests),
        SETTING_INT_ROW("WORKER_THREADS", WORKER_THREADS_DEFAULT, 1, FCGI_MAX_THREADS, threads),
    };
    if (settings_read(rows, SETTING_COUNT(rows), err, sizeof err) != 0) {
        fprintf(stderr, "orders-fcgi: configuration: %s\n", err);
        return -1;
    }
    return 0;
}

/* --migrate's status when the database cannot be reached now (sysexits'
 * EX_TEMPFAIL): run-stack starts anyway, the workers migrate when it
 * returns. */
#define MIGRATE_EXIT_UNREACHABLE 75

static int run_migrate(const struct config *cfg)
{
    if (privileges_drop("orders-fcgi") != 0)
        return 1;
    bool unreachable = false;
    struct store *st = open_store(cfg, true, false, &unreachable);
    if (st == NULL)
        return unreachable ? MIGRATE_EXIT_UNREACHABLE : 1;
    int applied = 0;
    store_schema_version(st, &applied);
    char where[256];
    store_describe(cfg->database_path, where, sizeof where);
    printf("database %s at schema version %d\n", where, applied);
    store_close(st);
    return 0;
}

static int run_worker(const struct config *cfg)
{
    int workers, max_requests, threads;
    if (pool_read_settings(&workers, &max_requests, &threads) != 0)
        return 1;
    struct worker_args wa = {
        .cfg = cfg,
        .max_requests = (unsigned long)max_requests,
        .threads = threads,
        .metrics = shared_metrics_attach(),
    };
    if (wa.metrics == NULL)
        return 1;
    wa.scoreboard = scoreboard_attach();
    int rc = worker_main(&wa);
    scoreboard_detach(wa.scoreboard);
    return rc;
}

static int run_master(const struct config *cfg, const char *argv0)
{
    int workers, max_requests, threads; /* the workers read the last two again */
    if (pool_read_settings(&workers, &max_requests, &threads) != 0)
        return 1;
    char *path = realpath(argv0, NULL);
    if (path == NULL) {
        fprintf(stderr, "orders-fcgi: cannot resolve %s: %s\n", argv0, strerror(errno));
        return 1;
    }
    struct metrics *shared = shared_metrics_create();
    if (shared == NULL) {
        fprintf(stderr, "orders-fcgi: cannot create shared metrics: %s\n", strerror(errno));
        free(path);
        return 1;
    }
    struct scoreboard *board = scoreboard_create(POOL_SLOTS_PER_WORKER * workers, workers);
    if (board == NULL) {
        fprintf(stderr, "orders-fcgi: cannot create the pool's scoreboard: %s\n", strerror(errno));
        munmap(shared, sizeof *shared);
        free(path);
        return 1;
    }
    char *worker_argv[] = {path, "--worker", NULL};
    struct pool_settings ps = {
        .workers = workers,
        .stop_timeout_ms = STOP_TIMEOUT_MS,
        .ready_timeout_ms = READY_TIMEOUT_MS,
        .binary = path,
        .argv = worker_argv,
        .restarts = &shared->worker_restarts,
        .scoreboard = board,
        .listen_fd = 0,
    };
    struct logger log = {.level = cfg->log_level, .fd = 2};
    /* One fetcher for the whole pool, started before the workers so that
     * they find the shared key set (and its fd) when they start. */
    struct jwks_fetcher *fetcher = NULL;
    if (config_has_jwks(cfg)) {
        char err[256];
        struct jwks_share *js = jwks_share_create(cfg->jwks_min_refresh_s * 1000);
        struct jwks_fetch_settings fs = {
            .url = cfg->jwks_url,
            .file = cfg->jwks_file,
            .refresh_s = cfg->jwks_refresh_s,
            .min_refresh_s = cfg->jwks_min_refresh_s,
        };
        if (js == NULL)
            snprintf(err, sizeof err, "cannot create the shared key set: %s", strerror(errno));
        if (js == NULL || (fetcher = jwks_fetcher_start(&fs, js, &log, err, sizeof err)) == NULL) {
            fprintf(stderr, "orders-fcgi: %s\n", err);
            scoreboard_destroy(board);
            munmap(shared, sizeof *shared);
            free(path);
            return 1;
        }
    }
    int rc = pool_run(&ps, &log);
    jwks_fetcher_stop(fetcher);
    scoreboard_destroy(board);
    munmap(shared, sizeof *shared);
    free(path);
    return rc;
}

int main(int argc, char **argv)
{
    umask(027); /* the database and its WAL are not world-readable */
    enum { MASTER, WORKER, MIGRATE } mode = MASTER;
    if (argc == 2 && strcmp(argv[1], "--migrate") == 0)
        mode = MIGRATE;
    else if (argc == 2 && strcmp(argv[1], "--worker") == 0)
        mode = WORKER;
    else if (argc > 1) {
        fprintf(stderr, "usage: spawn-fcgi -n -s SOCKET -- %s\n"
                        "       %s --migrate\n", argv[0], argv[0]);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    /* libcurl is not initialised here: the exporter loads it only in a
     * worker with an OTLP endpoint (fcgi/exporter.c). */
    /* The master generates the JWT secret on the first run (when no
     * source has one) and hands it to the workers it execs, so that it
     * need not stay in anyone's environment (common/secret.h). */
    struct config cfg;
    char err[512];
    enum config_secret secret = mode == MIGRATE  ? CONFIG_NO_SECRET
                                : mode == WORKER ? CONFIG_SECRET
                                                 : CONFIG_SECRET_OR_GENERATE;
    if (config_load(&cfg, secret, err, sizeof err) != 0) {
        fprintf(stderr, "orders-fcgi: configuration: %s\n", err);
        return 1;
    }
    if (mode == MASTER) {
        struct secret key = {cfg.jwt_secret, cfg.jwt_secret_len};
        if (secret_hand_over(&key, err, sizeof err) != 0) {
            fprintf(stderr, "orders-fcgi: %s\n", err);
            config_free(&cfg);
            return 1;
        }
    }
    int rc = mode == MIGRATE ? run_migrate(&cfg)
             : mode == WORKER ? run_worker(&cfg)
                              : run_master(&cfg, argv[0]);
    config_free(&cfg);
    return rc;
}
