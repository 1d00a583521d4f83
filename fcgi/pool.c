#include "pool.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define POOL_MAX_WORKERS 256
/* A worker that dies this soon after its start is crash-looping; the pool
 * then waits a little before refilling, so a broken database or binary gives
 * a slow, logged loop rather than a fork storm.  The pool never gives a slot
 * up, however often it happens. */
#define POOL_QUICK_DEATH_MS 1000
#define POOL_RESPAWN_PAUSE_MS 200

struct pool_slot {
    pid_t pid;          /* 0: free */
    bool retiring;      /* replaced by a reload; not refilled when it exits */
    double started_ms;
};

/* Twice the pool size: during a reload the new workers start before the
 * old ones are told to stop, so the socket always has acceptors. */
struct pool {
    const struct pool_settings *s;
    pool_worker_fn fn;
    void *arg;
    const struct logger *log;
    struct pool_slot slot[2 * POOL_MAX_WORKERS];
    int nslots;
    double respawn_not_before_ms;
    sigset_t handled;
    unsigned long restarts;
};

static pid_t pool_spawn(struct pool *p, struct pool_slot *slot)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &p->handled, NULL);
        _exit(p->fn(p->arg));
    }
    if (pid < 0) {
        log_emit(p->log, LOG_ERROR, NULL, "fork failed",
                 (struct log_field[]){LOG_STR("error", strerror(errno))}, 1);
        p->respawn_not_before_ms = clock_monotonic_ms() + POOL_RESPAWN_PAUSE_MS;
        return -1;
    }
    slot->pid = pid;
    slot->retiring = false;
    slot->started_ms = clock_monotonic_ms();
    return pid;
}

static int pool_count(const struct pool *p, bool active_only)
{
    int n = 0;
    for (int i = 0; i < p->nslots; i++)
        n += p->slot[i].pid != 0 && !(active_only && p->slot[i].retiring);
    return n;
}

static void pool_log_exit(struct pool *p, pid_t pid, int status, bool retired)
{
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    struct log_field fields[] = {
        LOG_INT("pid", pid),
        LOG_INT("exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
        LOG_INT("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
        LOG_INT("worker_restarts", (long long)p->restarts),
    };
    const char *msg = retired ? "worker retired after reload"
                      : clean ? "worker exited (recycled); replacing it"
                              : "worker died; replacing it";
    log_emit(p->log, clean ? LOG_INFO : LOG_WARN, NULL, msg, fields, 4);
}

/* Reaps every exited worker; a slot that was not retiring is refilled by
 * pool_fill, after a pause when the worker died young. */
static void pool_reap(struct pool *p, bool stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < p->nslots; i++) {
            struct pool_slot *slot = &p->slot[i];
            if (slot->pid != pid)
                continue;
            bool retired = slot->retiring;
            slot->pid = 0;
            slot->retiring = false;
            if (stopping)
                break;
            if (!retired) {
                p->restarts++;
                if (p->s->restarts != NULL)
                    atomic_fetch_add(p->s->restarts, 1);
                double now = clock_monotonic_ms();
                if (now - slot->started_ms < POOL_QUICK_DEATH_MS)
                    p->respawn_not_before_ms = now + POOL_RESPAWN_PAUSE_MS;
            }
            pool_log_exit(p, pid, status, retired);
            break;
        }
    }
}

static void pool_fill(struct pool *p)
{
    if (clock_monotonic_ms() < p->respawn_not_before_ms)
        return;
    for (int i = 0; i < p->nslots && pool_count(p, true) < p->s->workers; i++)
        if (p->slot[i].pid == 0 && pool_spawn(p, &p->slot[i]) < 0)
            return;
}

static void pool_signal(struct pool *p, int sig, bool retiring_only)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slot[i].pid != 0 && (!retiring_only || p->slot[i].retiring))
            kill(p->slot[i].pid, sig);
}

/* Graceful reload (SIGHUP): fresh workers first, then the old ones finish
 * what they serve and exit.  Both generations accept on the same socket in
 * between, so no connection waits on an empty pool. */
static void pool_reload(struct pool *p)
{
    log_emit(p->log, LOG_INFO, NULL, "reloading workers", NULL, 0);
    for (int i = 0; i < p->nslots; i++)
        if (p->slot[i].pid != 0)
            p->slot[i].retiring = true;
    p->respawn_not_before_ms = 0;
    pool_fill(p);
    pool_signal(p, SIGTERM, true);
}

/* SIGTERM lets each worker finish the request it is serving and exit; past
 * the deadline the rest are killed. */
static void pool_stop(struct pool *p)
{
    pool_signal(p, SIGTERM, false);
    double deadline = clock_monotonic_ms() + p->s->stop_timeout_ms;
    while (pool_count(p, false) > 0 && clock_monotonic_ms() < deadline) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        siginfo_t info;
        sigtimedwait(&p->handled, &info, &tick);
        pool_reap(p, true);
    }
    if (pool_count(p, false) > 0) {
        log_emit(p->log, LOG_WARN, NULL, "stop deadline passed; killing workers",
                 (struct log_field[]){LOG_INT("alive", pool_count(p, false))}, 1);
        pool_signal(p, SIGKILL, false);
        while (pool_count(p, false) > 0 && waitpid(-1, NULL, 0) > 0)
            pool_reap(p, true);
    }
}

int pool_run(const struct pool_settings *s, pool_worker_fn fn, void *arg,
             const struct logger *log)
{
    if (s->workers < 1 || s->workers > POOL_MAX_WORKERS)
        return 1;
    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return 1;
    p->s = s;
    p->fn = fn;
    p->arg = arg;
    p->log = log;
    p->nslots = 2 * s->workers;
    sigemptyset(&p->handled);
    sigaddset(&p->handled, SIGCHLD);
    sigaddset(&p->handled, SIGTERM);
    sigaddset(&p->handled, SIGINT);
    sigaddset(&p->handled, SIGHUP);
    /* Signals are taken synchronously with sigtimedwait: no handler races
     * with the slot table. */
    sigprocmask(SIG_BLOCK, &p->handled, NULL);
    log_emit(log, LOG_INFO, NULL, "pool starting",
             (struct log_field[]){LOG_INT("workers", s->workers)}, 1);
    for (;;) {
        pool_fill(p);
        struct timespec tick = {0, 50 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&p->handled, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            pool_reload(p);
        pool_reap(p, false);
    }
    log_emit(log, LOG_INFO, NULL, "pool stopping", NULL, 0);
    pool_stop(p);
    free(p);
    return 0;
}
