/*
 * test_group_commit.c - the SQLite store's group commit (adapters/
 * store_sqlite.c): with DB_SYNCHRONOUS=full, writers share WAL syncs made
 * after they give up the write lock, and nothing is acknowledged before a
 * sync covering it has completed.
 *
 * SQLite runs here on a VFS shim around the default one (the real files,
 * the real fsyncs), which counts the WAL's writes and syncs: every WAL
 * write gets a number, and a completed sync makes durable every write
 * numbered before it began.  A write call that returns STORE_OK must have
 * its own WAL writes durable by then; the store cannot see the shim.  The
 * shim can also fail a WAL sync, or block it (a syncer that hangs or is
 * killed mid-fsync).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "testdir.h"

/* ---- the VFS shim ------------------------------------------------------- */

struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* right behind this struct, real_vfs->szOsFile bytes */
    int wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;

static _Atomic unsigned long long wal_writes; /* WAL writes completed */
static _Atomic unsigned long long wal_durable; /* the last write a completed sync covers */
static _Atomic unsigned long long wal_syncs;
static _Thread_local unsigned long long my_last_wal_write;
static _Atomic unsigned long long wal_commits; /* commit frames written */
static _Atomic unsigned long long hold_sync_until; /* the next WAL sync waits for this many */
static _Atomic int fail_wal_syncs;
static _Atomic int block_wal_syncs_fd = -1; /* writes one byte there, then blocks */

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((struct shim_file *)f)->real;
}

static int shim_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}

static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

static int shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    int rc = real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
    if (rc == SQLITE_OK && ((struct shim_file *)f)->wal) {
        my_last_wal_write = atomic_fetch_add(&wal_writes, 1) + 1;
        /* a frame's 24-byte header (written apart from its page): bytes 4
         * to 7 are the database's size after a commit, 0 in other frames */
        const unsigned char *h = buf;
        if (n == 24 && off >= 32 && (h[4] | h[5] | h[6] | h[7]) != 0)
            atomic_fetch_add(&wal_commits, 1);
    }
    return rc;
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
    if (!((struct shim_file *)f)->wal)
        return real_of(f)->pMethods->xSync(real_of(f), flags);
    if (atomic_load(&fail_wal_syncs))
        return SQLITE_IOERR_FSYNC;
    unsigned long long until = atomic_exchange(&hold_sync_until, 0);
    for (int i = 0; until != 0 && atomic_load(&wal_commits) < until && i < 20000; i++)
        usleep(1000); /* bounded: 20 s */
    int fd = atomic_load(&block_wal_syncs_fd);
    if (fd >= 0) {
        if (write(fd, "s", 1) != 1)
            _exit(3);
        for (;;)
            pause(); /* until killed */
    }
    unsigned long long before = atomic_load(&wal_writes);
    int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
    if (rc == SQLITE_OK) {
        unsigned long long cur = atomic_load(&wal_durable);
        while (cur < before && !atomic_compare_exchange_weak(&wal_durable, &cur, before))
            ;
        atomic_fetch_add(&wal_syncs, 1);
    }
    return rc;
}

static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int shim_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int shim_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int shim_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int shim_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int shim_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int shim_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, pp);
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods shim_io = {
    .iVersion = 3,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_file_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_check_reserved,
    .xFileControl = shim_file_control,
    .xSectorSize = shim_sector_size,
    .xDeviceCharacteristics = shim_device_characteristics,
    .xShmMap = shim_shm_map,
    .xShmLock = shim_shm_lock,
    .xShmBarrier = shim_shm_barrier,
    .xShmUnmap = shim_shm_unmap,
    .xFetch = shim_fetch,
    .xUnfetch = shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct shim_file *s = (struct shim_file *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    /* the default VFS's files are version 3: every method above exists */
    s->base.pMethods = s->real->pMethods != NULL ? &shim_io : NULL;
    return rc;
}

static void shim_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL) {
        fprintf(stderr, "no default SQLite VFS\n");
        exit(EXIT_FAILURE);
    }
    shim_vfs = *real_vfs;
    shim_vfs.zName = "group-commit-shim";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
    shim_vfs.pNext = NULL;
    if (sqlite3_vfs_register(&shim_vfs, 1) != SQLITE_OK) {
        fprintf(stderr, "cannot register the VFS shim\n");
        exit(EXIT_FAILURE);
    }
}

/* ---- fixtures ----------------------------------------------------------- */

static char tmpdir[4096];
static char dbpath[4200];

static const struct event_meta META = {.source = "/orders"};

static struct store *open_store(bool synchronous_full)
{
    const struct store_options opt = {.location = dbpath, .synchronous_full = synchronous_full,
                                      .busy_timeout_ms = STORE_BUSY_TIMEOUT_MS, .create = true};
    struct store *out = NULL;
    char err[256] = "";
    ck_assert_msg(store_open(&opt, &out, err, sizeof err) == STORE_OK, "store_open: %s", err);
    return out;
}

static void base_setup(void)
{
    testdir_create("group-commit");
}

static void base_teardown(void)
{
    testdir_remove();
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test-XXXXXX", testdir_path());
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(dbpath, sizeof dbpath, "%s/orders.db", tmpdir);
    struct store *st = open_store(true);
    char err[256] = "";
    ck_assert_msg(store_migrate(st, err, sizeof err) == STORE_OK, "migrate: %s", err);
    store_close(st);
    atomic_store(&fail_wal_syncs, 0);
    atomic_store(&block_wal_syncs_fd, -1);
    atomic_store(&hold_sync_until, 0);
}

static void teardown(void)
{
    testdir_remove_tree(tmpdir);
}

static enum store_status create(struct store *st, struct order *o)
{
    memset(o, 0, sizeof *o);
    o->customer_id = strdup("customer-1");
    o->items_json = strdup("[\"item-1\"]");
    ck_assert(o->customer_id != NULL && o->items_json != NULL);
    return store_order_create(st, o, &META, NULL);
}

/* ---- tests -------------------------------------------------------------- */

#define WRITERS 6
#define WRITES_EACH 60

struct writer {
    pthread_t thread;
    int ok, late; /* writes acknowledged; of those, before their sync */
    int failed;
};

/* Counts one write's outcome; true when it was acknowledged. */
static bool writer_count(struct writer *w, enum store_status s)
{
    if (s != STORE_OK) {
        w->failed++;
        return false;
    }
    w->ok++;
    if (atomic_load(&wal_durable) < my_last_wal_write)
        w->late++;
    return true;
}

/* Runs each writer on a thread of its own, and adds up their counts. */
static struct writer run_writers(struct writer *w, int n, void *(*body)(void *))
{
    struct writer total = {0};
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&w[i].thread, NULL, body, &w[i]), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(pthread_join(w[i].thread, NULL), 0);
        total.ok += w[i].ok;
        total.late += w[i].late;
        total.failed += w[i].failed;
    }
    return total;
}

static void *writer_run(void *arg)
{
    struct writer *w = arg;
    struct store *st = open_store(true);
    for (int i = 0; i < WRITES_EACH; i++) {
        struct order o;
        if (writer_count(w, create(st, &o))) {
            /* a status change too: a second kind of write transaction */
            struct order out;
            enum order_status from;
            if (writer_count(w, store_order_transition(st, o.id, ORDER_PAID, NULL, &META, &out,
                                                       &from)))
                order_free(&out);
        }
        order_free(&o);
    }
    store_close(st);
    return NULL;
}

/* Writers on six connections at once, as a pool's threads and processes
 * write: every acknowledged write's WAL frames were synced before its
 * answer. */
START_TEST(test_every_acknowledged_write_was_synced)
{
    struct writer w[WRITERS];
    memset(w, 0, sizeof w);
    unsigned long long syncs_before = atomic_load(&wal_syncs);
    struct writer total = run_writers(w, WRITERS, writer_run);
    unsigned long long syncs = atomic_load(&wal_syncs) - syncs_before;
    printf("group commit: %d writes acknowledged with %llu WAL syncs\n", total.ok, syncs);
    ck_assert_int_eq(total.failed, 0);
    ck_assert_int_eq(total.ok, WRITERS * WRITES_EACH * 2);
    ck_assert_msg(total.late == 0, "%d of %d writes were acknowledged before their WAL sync",
                  total.late, total.ok);
    ck_assert(syncs > 0);
}
END_TEST

static void *one_create(void *arg)
{
    struct writer *w = arg;
    struct store *st = open_store(true);
    struct order o;
    writer_count(w, create(st, &o));
    order_free(&o);
    store_close(st);
    return NULL;
}

/* The syncs are shared: the first writer's sync is held (in the shim)
 * until three more writers have committed; they commit meanwhile (the lock
 * is free during a sync) and one sync after it covers all three: four
 * commits, two syncs. */
START_TEST(test_writers_share_a_sync)
{
    struct store *st = open_store(true);
    struct order o;
    ck_assert_int_eq(create(st, &o), STORE_OK); /* the WAL's header synced */
    order_free(&o);
    unsigned long long syncs_before = atomic_load(&wal_syncs);
    atomic_store(&hold_sync_until, atomic_load(&wal_commits) + 4);
    struct writer w[4];
    memset(w, 0, sizeof w);
    struct writer total = run_writers(w, 4, one_create);
    ck_assert_int_eq(total.ok, 4);
    ck_assert_int_eq(total.late, 0);
    ck_assert_uint_eq(atomic_load(&hold_sync_until), 0); /* the hold was used */
    ck_assert_uint_eq(atomic_load(&wal_syncs) - syncs_before, 2);
    store_close(st);
}
END_TEST

/* With DB_SYNCHRONOUS=normal nothing waits for a sync: the setting still
 * means what it says. */
START_TEST(test_normal_does_not_sync_each_write)
{
    struct store *st = open_store(false);
    unsigned long long syncs_before = atomic_load(&wal_syncs);
    for (int i = 0; i < 20; i++) {
        struct order o;
        ck_assert_int_eq(create(st, &o), STORE_OK);
        order_free(&o);
    }
    /* SQLite itself syncs the WAL's header when it starts the WAL over */
    ck_assert_uint_le(atomic_load(&wal_syncs) - syncs_before, 2);
    store_close(st);
}
END_TEST

/* A WAL sync that fails: the write is not acknowledged (STORE_FULL, a 503
 * whose outcome is unknown to the client); the next one, once syncs work
 * again, is.  One write first, so that the failing sync is the group
 * commit's, not SQLite's sync of a new WAL's header inside COMMIT. */
START_TEST(test_failed_sync_is_not_acknowledged)
{
    struct store *st = open_store(true);
    struct order o;
    ck_assert_int_eq(create(st, &o), STORE_OK);
    order_free(&o);
    atomic_store(&fail_wal_syncs, 1);
    ck_assert_int_eq(create(st, &o), STORE_FULL);
    order_free(&o);
    atomic_store(&fail_wal_syncs, 0);
    ck_assert_int_eq(create(st, &o), STORE_OK);
    ck_assert(atomic_load(&wal_durable) >= my_last_wal_write);
    order_free(&o);
    store_close(st);
}
END_TEST

/* A syncer killed in the middle of its fsync leaves its token in the
 * shared queue: the next writer must take it over, not wait forever. */
START_TEST(test_dead_syncer_is_taken_over)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(ready[0]);
        struct store *st = open_store(true);
        struct order o;
        if (create(st, &o) != STORE_OK) /* the WAL's header synced, in COMMIT */
            _exit(2);
        order_free(&o);
        atomic_store(&block_wal_syncs_fd, ready[1]);
        (void)create(st, &o); /* blocks in the group commit's sync, holding its token */
        _exit(2);
    }
    close(ready[1]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1); /* the child is in its sync */
    close(ready[0]);
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    int wstatus;
    ck_assert_int_eq(waitpid(child, &wstatus, 0), child);
    ck_assert(WIFSIGNALED(wstatus));

    struct store *st = open_store(true);
    struct order o;
    ck_assert_int_eq(create(st, &o), STORE_OK);
    ck_assert(atomic_load(&wal_durable) >= my_last_wal_write);
    order_free(&o);
    /* and the queue works at full speed again: no token left behind */
    ck_assert_int_eq(create(st, &o), STORE_OK);
    order_free(&o);
    store_close(st);
}
END_TEST

/* A replayed create answers with an order its first attempt committed:
 * that order must be durable first.  The first attempt's sync fails (its
 * 503 says the outcome is unknown); the replay must not be answered while
 * syncs still fail, and is once they work. */
START_TEST(test_replay_waits_for_durability)
{
    struct store *st = open_store(true);
    struct order o;
    ck_assert_int_eq(create(st, &o), STORE_OK); /* past the WAL header's sync */
    order_free(&o);
    struct idempotency_claim claim = {.caller = "client-1", .ttl_ms = 3600000};
    snprintf(claim.key, sizeof claim.key, "key-1");
    memset(claim.fingerprint, 7, sizeof claim.fingerprint);

    atomic_store(&fail_wal_syncs, 1);
    memset(&o, 0, sizeof o);
    o.customer_id = strdup("customer-1");
    o.items_json = strdup("[\"item-1\"]");
    ck_assert_int_eq(store_order_create(st, &o, &META, &claim), STORE_FULL);
    order_free(&o);
    memset(&o, 0, sizeof o);
    o.customer_id = strdup("customer-1");
    o.items_json = strdup("[\"item-1\"]");
    ck_assert_int_eq(store_order_create(st, &o, &META, &claim), STORE_FULL);
    order_free(&o);

    atomic_store(&fail_wal_syncs, 0);
    memset(&o, 0, sizeof o);
    o.customer_id = strdup("customer-1");
    o.items_json = strdup("[\"item-1\"]");
    ck_assert_int_eq(store_order_create(st, &o, &META, &claim), STORE_REPLAYED);
    ck_assert(atomic_load(&wal_durable) >= atomic_load(&wal_writes));
    order_free(&o);
    store_close(st);
}
END_TEST

/* The publisher never delivers an event that is not durable: a commit made
 * without a sync (here by a plain connection at synchronous=NORMAL) is
 * synced by the fetch that reads it. */
START_TEST(test_fetch_syncs_what_it_returns)
{
    struct store *st = open_store(true);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "PRAGMA synchronous=NORMAL;"
                                  "INSERT INTO events (id, type, source, subject, time, data,"
                                  " committed_at) VALUES ('e-1', 'orders.order.created',"
                                  " '/orders', 'o-1', '2026-11-30T00:00:00Z', '{}', 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    unsigned long long written = my_last_wal_write;
    ck_assert(atomic_load(&wal_durable) < written); /* not synced yet */
    struct outbox_batch batch = {0};
    ck_assert_int_eq(store_outbox_fetch(st, 10, 0, &batch), STORE_OK);
    ck_assert_int_eq(batch.count, 1);
    ck_assert(atomic_load(&wal_durable) >= written);
    outbox_batch_free(&batch);
    sqlite3_close(db);
    store_close(st);
}
END_TEST

static Suite *group_commit_suite(void)
{
    Suite *s = suite_create("group_commit");
    TCase *t = tcase_create("group_commit");
    tcase_add_unchecked_fixture(t, base_setup, base_teardown);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_every_acknowledged_write_was_synced);
    tcase_add_test(t, test_writers_share_a_sync);
    tcase_add_test(t, test_normal_does_not_sync_each_write);
    tcase_add_test(t, test_failed_sync_is_not_acknowledged);
    tcase_add_test(t, test_dead_syncer_is_taken_over);
    tcase_add_test(t, test_replay_waits_for_durability);
    tcase_add_test(t, test_fetch_syncs_what_it_returns);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    shim_register();
    SRunner *sr = srunner_create(group_commit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
