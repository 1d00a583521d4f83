/*
 * orders-publisher - delivers the Orders Service's events (the transactional
 * outbox, through the store port core/store.h) to EVENT_SINK as
 * CloudEvents 1.0.
 *
 * Usage: orders-publisher [--once | --check-config] [--help] [--version]
 *
 * Environment (every variable has a default; an empty one counts as unset):
 *
 *   RUNTIME_DIR                 ./var      where the database lives by default
 *   DATABASE_PATH               $RUNTIME_DIR/orders.db
 *   DATABASE_URL                unset      postgresql://... : PostgreSQL
 *                                          instead of the SQLite file
 *   DB_SYNCHRONOUS              full       or normal (see the contract)
 *   EVENT_SINK                  stdout     stdout | file:PATH | http(s)://URL |
 *                                          amqp(s)://URL | nats://URL | tls://URL
 *                                          (adapters/sinks.h has the table)
 *   LOG_LEVEL                   info       debug | info | warn | error
 *   PUBLISHER_BATCH             256        events per batch: one fsync and
 *                                          one transaction each; bigger is
 *                                          faster to a file, but is also what
 *                                          a crash may send twice
 *   PUBLISHER_MAX_ATTEMPTS      5          rejections (HTTP 4xx about the
 *                                          event) before it is parked
 *   PUBLISHER_RETENTION_HOURS   168        delivered rows older than this are
 *                                          deleted (at start, then each
 *                                          minute); 0 keeps them forever.
 *                                          Parked rows are never deleted
 *   PUBLISHER_BACKOFF_BASE_MS   100        first retry delay, doubling ...
 *   PUBLISHER_BACKOFF_CAP_MS    30000      ... up to this
 *   PUBLISHER_LEASE_MS          10000      how long a crashed publisher
 *                                          blocks a standby; at least
 *                                          PUBLISHER_HTTP_TIMEOUT_MS + 1000
 *   PUBLISHER_POLL_MS           1000       longest sleep: the fallback poll
 *                                          without a change signal
 *   PUBLISHER_HTTP_TIMEOUT_MS   5000       a whole POST
 *   PUBLISHER_CONNECT_TIMEOUT_MS 2000      connecting to the sink
 *   WORKER_USER                 www-data   the account it runs as when
 *                                          started as root
 *
 * Exit status: 0 after SIGTERM/SIGINT, a complete --once or a good
 * --check-config; 1 when --once left events undelivered (sink or database
 * failure) or on a fatal error; 2 for bad arguments or settings (one line on
 * stderr naming the setting, never its credentials); 3 when --once found
 * another live publisher holding the lease.
 *
 * Delivery, retry, poison and lease policies: see relay.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "privileges.h"
#include "relay.h"
#include "secret.h"
#include "sinks.h"
#include "store.h"
#include "wake.h"

#ifndef ORDERS_VERSION
#define ORDERS_VERSION "dev"
#endif

#define MAIN_EXIT_USAGE 2

static void main_usage(FILE *out)
{
    fputs("usage: orders-publisher [--once | --check-config] [--help] [--version]\n"
          "\n"
          "Delivers the Orders Service's events, in commit order and at least once,\n"
          "to EVENT_SINK (stdout, file:PATH, an http(s):// URL, RabbitMQ at amqp(s)://\n"
          "or NATS JetStream at nats:// or tls://) as CloudEvents 1.0.\n"
          "\n"
          "  --once     deliver everything deliverable now, then exit (status 1 if\n"
          "             the sink failed and events remain)\n"
          "  --check-config  check every setting, EVENT_SINK included, without\n"
          "             connecting to anything; exit 2 with one line naming the\n"
          "             bad setting (what the run command and the units do first)\n"
          "  --help     this text\n"
          "  --version  the version\n"
          "\n"
          "Settings come from the environment: RUNTIME_DIR, DATABASE_PATH,\n"
          "DATABASE_URL, DB_SYNCHRONOUS, EVENT_SINK, LOG_LEVEL and PUBLISHER_BATCH,\n"
          "PUBLISHER_MAX_ATTEMPTS, PUBLISHER_RETENTION_HOURS,\n"
          "PUBLISHER_BACKOFF_BASE_MS, PUBLISHER_BACKOFF_CAP_MS, PUBLISHER_LEASE_MS,\n"
          "PUBLISHER_POLL_MS, PUBLISHER_HTTP_TIMEOUT_MS, PUBLISHER_CONNECT_TIMEOUT_MS.\n",
          out);
}

/* Returns -1 to carry on, or an exit status. */
static int main_args(int argc, char **argv, bool *once, bool *check)
{
    *once = false;
    *check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            *once = true;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            *check = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            main_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("orders-publisher %s\n", ORDERS_VERSION);
            return 0;
        } else {
            fprintf(stderr, "orders-publisher: unknown argument \"%s\"\n", argv[i]);
            main_usage(stderr);
            return MAIN_EXIT_USAGE;
        }
    }
    return -1;
}

static void main_fatal(const char *message, const char *error)
{
    struct log_field f[] = {LOG_STR("error", error)};
    log_emit(log_process(), LOG_ERROR, NULL, message, f, LOG_COUNT(f));
}

/* Opens the store and checks that the workers have migrated it to the
 * schema this binary knows.  STORE_BUSY or STORE_NOT_FOUND: not yet. */
static enum store_status main_try_store(const struct publisher_config *cfg, struct store **st,
                                        char *err, size_t errlen)
{
    const struct store_options opt = {.location = cfg->database_path,
                                      .synchronous_full = cfg->synchronous_full,
                                      .busy_timeout_ms = STORE_BUSY_TIMEOUT_MS};
    int applied = 0;
    enum store_status s = store_open(&opt, st, err, errlen);

    if (s != STORE_OK)
        return s;
    s = store_schema_version(*st, &applied);
    if (s == STORE_OK && applied < store_schema_latest(*st)) {
        snprintf(err, errlen, "the schema is at version %d, this publisher needs %d", applied,
                 store_schema_latest(*st));
        s = STORE_BUSY;
    } else if (s != STORE_OK) {
        snprintf(err, errlen, "reading the schema version: %s", store_last_error(*st));
    }
    if (s != STORE_OK) {
        store_close(*st);
        *st = NULL;
    }
    return s;
}

/* The workers create and migrate the database; a publisher started beside
 * them waits instead of failing, looking again every MAIN_WAIT_MS (it
 * cannot watch a database that does not exist yet).  --once is for batch
 * use, where waiting for something that may never come is worse than
 * saying so.  Returns 0 when open, 1 when asked to stop while waiting, -1
 * on error. */
#define MAIN_WAIT_MS 100

static int main_open_store(const struct publisher_config *cfg, struct wake *w, bool once,
                           struct store **st)
{
    char err[512];
    bool told = false;

    for (;;) {
        enum store_status s = main_try_store(cfg, st, err, sizeof(err));
        if (s == STORE_OK)
            return 0;
        if ((s != STORE_BUSY && s != STORE_NOT_FOUND) || once) {
            main_fatal("cannot open the database", err);
            return -1;
        }
        if (!told) {
            char where[256];
            store_describe(cfg->database_path, where, sizeof where);
            struct log_field f[] = {LOG_STR("database", where), LOG_STR("reason", err)};
            log_emit(log_process(), LOG_INFO, NULL,
                     "waiting for the workers to create the database", f, LOG_COUNT(f));
            told = true;
        }
        if (wake_wait(w, cfg->poll_ms < MAIN_WAIT_MS ? cfg->poll_ms : MAIN_WAIT_MS) == WAKE_STOP)
            return 1;
    }
}

static void main_log_start(const struct publisher_config *cfg, const struct sink *sink, bool once,
                           const struct store *st, bool watching)
{
    char where[256];
    store_describe(cfg->database_path, where, sizeof where);
    struct log_field f[] = {
        LOG_STR("version", ORDERS_VERSION), LOG_STR("database", where),
        LOG_STR("engine", store_engine(st)),
        LOG_STR("sink", sink_describe(sink)), LOG_STR("transport", sink_name(sink)), LOG_STR("mode", once ? "once" : "daemon"),
        LOG_STR("wake", watching ? "change signal" : "poll"), LOG_INT("batch", cfg->batch),
        LOG_INT("max_attempts", cfg->max_attempts)};
    log_emit(log_process(), LOG_INFO, NULL, "publisher started", f, LOG_COUNT(f));
}

static int main_run(const struct publisher_config *cfg, struct wake *w, bool once)
{
    const struct sink_options opt = {.connect_timeout_ms = cfg->connect_timeout_ms,
                                     .timeout_ms = cfg->http_timeout_ms,
                                     .user_agent = "orders-publisher/" ORDERS_VERSION};
    struct sink *sink = NULL;
    struct store *st = NULL;
    char err[512];
    int code, rc;

    if (sinks_open(&sink, cfg->event_sink, &opt, err, sizeof(err)) != 0) {
        main_fatal("cannot open EVENT_SINK", err);
        return 1;
    }
    rc = main_open_store(cfg, w, once, &st);
    if (rc != 0) {
        sink_close(sink);
        return rc < 0 ? 1 : 0;
    }
    wake_watch(w, st);
    if (!wake_watching(w))
        log_emit(log_process(), LOG_WARN, NULL,
                 "no change signal: polling the database every PUBLISHER_POLL_MS", NULL, 0);
    main_log_start(cfg, sink, once, st, wake_watching(w));
    code = (int)relay_run(cfg, st, sink, w, once);
    wake_watch(w, NULL);
    store_close(st);
    sink_close(sink);
    return code;
}

int main(int argc, char **argv)
{
    struct publisher_config cfg;
    struct wake *w = NULL;
    char err[512];
    bool once, check;
    int code = main_args(argc, argv, &once, &check);

    if (code >= 0)
        return code;
    log_process()->service = "orders-publisher";
    /* The publisher never verifies a token: a JWT secret handed to it by
     * mistake is dropped before anything else runs. */
    secret_scrub_environment();
    if (publisher_config_load(&cfg, err, sizeof(err)) != 0) {
        /* For --check-config a plain line: the run command and systemd
         * show it as the one reason the service did not start. */
        if (check)
            fprintf(stderr, "orders-publisher: %s\n", err);
        else
            main_fatal("bad configuration", err);
        return MAIN_EXIT_USAGE;
    }
    if (check) {
        publisher_config_free(&cfg);
        return 0;
    }
    log_process()->level = cfg.log_level;
    /* Started as root (scripts/run-stack in CI), deliver as WORKER_USER,
     * the owner of the database, so no file of it ever becomes root's. */
    if (privileges_drop("orders-publisher") != 0) {
        publisher_config_free(&cfg);
        return 1;
    }
    /* Signals are blocked before a sink's library (curl's resolver) can
     * start a thread. */
    if (wake_open(&w, err, sizeof(err)) != 0) {
        main_fatal("cannot start", err);
        publisher_config_free(&cfg);
        return 1;
    }
    code = main_run(&cfg, w, once);
    wake_close(w);
    publisher_config_free(&cfg);
    return code;
}
