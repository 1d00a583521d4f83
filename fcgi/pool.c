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
/* A worker that dies this soon after its start is crash-looping; its slot is
 * refilled after a pause instead of at once, so a broken database or binary
 * gives a slow, logged loop rather than a fork storm.  The pool never gives a
 * slot up. */
#define POOL_QUICK_DEATH_MS 1000
#define POOL_RESPAWN_PAUSE_MS 200

struct pool_slot {
    pid_t pid;
    double started_ms;
    double respawn_at_ms; /* 0: now */
};

struct pool {
    const struct pool_settings *s;
    pool_worker_fn fn;
    void *arg;
    const struct logger *log;
    struct pool_slot slot[POOL_MAX_WORKERS];
    sigset_t handled;
    unsigned long restarts;
};

static pid_t pool_spawn(struct pool *p, int i)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &p->handled, NULL);
        _exit(p->fn(p->arg));
    }
    if (pid < 0) {
        log_emit(p->log, LOG_ERROR, NULL, "fork failed",
                 (struct log_field[]){LOG_STR("error", strerror(errno))}, 1);
        p->slot[i].respawn_at_ms = clock_monotonic_ms() + POOL_RESPAWN_PAUSE_MS;
        return -1;
    }
    p->slot[i].pid = pid;
    p->slot[i].started_ms = clock_monotonic_ms();
    p->slot[i].respawn_at_ms = 0;
    return pid;
}

static void pool_log_exit(struct pool *p, pid_t pid, int status)
{
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    struct log_field fields[] = {
        LOG_INT("pid", pid),
        LOG_INT("exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
        LOG_INT("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
        LOG_INT("worker_restarts", (long long)p->restarts),
    };
    log_emit(p->log, clean ? LOG_INFO : LOG_WARN, NULL,
             clean ? "worker exited (recycled)" : "worker died; replacing it",
             fields, 4);
}

/* Reaps every exited worker and schedules its slot for refilling. */
static void pool_reap(struct pool *p, bool stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < p->s->workers; i++) {
            if (p->slot[i].pid != pid)
                continue;
            p->slot[i].pid = 0;
            if (stopping)
                break;
            p->restarts++;
            if (p->s->restarts != NULL)
                atomic_fetch_add(p->s->restarts, 1);
            pool_log_exit(p, pid, status);
            double now = clock_monotonic_ms();
            if (now - p->slot[i].started_ms < POOL_QUICK_DEATH_MS)
                p->slot[i].respawn_at_ms = now + POOL_RESPAWN_PAUSE_MS;
            break;
        }
    }
}

static void pool_fill(struct pool *p)
{
    double now = clock_monotonic_ms();
    for (int i = 0; i < p->s->workers; i++)
        if (p->slot[i].pid == 0 && p->slot[i].respawn_at_ms <= now)
            pool_spawn(p, i);
}

static int pool_alive(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->s->workers; i++)
        n += p->slot[i].pid != 0;
    return n;
}

static void pool_signal_all(struct pool *p, int sig)
{
    for (int i = 0; i < p->s->workers; i++)
        if (p->slot[i].pid != 0)
            kill(p->slot[i].pid, sig);
}

/* SIGTERM lets each worker finish the request it is serving and exit; past
 * the deadline the rest are killed. */
static void pool_stop(struct pool *p)
{
    pool_signal_all(p, SIGTERM);
    double deadline = clock_monotonic_ms() + p->s->stop_timeout_ms;
    while (pool_alive(p) > 0 && clock_monotonic_ms() < deadline) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        siginfo_t info;
        sigtimedwait(&p->handled, &info, &tick);
        pool_reap(p, true);
    }
    if (pool_alive(p) > 0) {
        log_emit(p->log, LOG_WARN, NULL, "stop deadline passed; killing workers",
                 (struct log_field[]){LOG_INT("alive", pool_alive(p))}, 1);
        pool_signal_all(p, SIGKILL);
        while (pool_alive(p) > 0 && waitpid(-1, NULL, 0) > 0)
            pool_reap(p, true);
    }
}

int pool_run(const struct pool_settings *s, pool_worker_fn fn, void *arg,
             const struct logger *log)
{
    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL || s->workers < 1 || s->workers > POOL_MAX_WORKERS) {
        free(p);
        return 1;
    }
    p->s = s;
    p->fn = fn;
    p->arg = arg;
    p->log = log;
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
        struct timespec tick = {0, 100 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&p->handled, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) /* graceful reload: fresh workers, same socket */
            pool_signal_all(p, SIGTERM);
        pool_reap(p, false);
    }
    log_emit(log, LOG_INFO, NULL, "pool stopping", NULL, 0);
    pool_stop(p);
    free(p);
    return 0;
}
