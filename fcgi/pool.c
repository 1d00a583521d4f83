#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* A worker that dies this soon after its start is crash-looping; the pool
 * then waits a little before refilling, so a broken database or binary gives
 * a slow, logged loop rather than a fork storm.  The pool never gives a slot
 * up, however often it happens. */
#define POOL_QUICK_DEATH_MS 1000
#define POOL_RESPAWN_PAUSE_MS 200

/* The worker finds the write end of its readiness pipe here. */
#define POOL_READY_FD_ENV "ORDERS_POOL_READY_FD"

struct pool_slot {
    pid_t pid;          /* 0: free */
    bool retiring;      /* told to finish; not refilled when it exits */
    bool candidate;     /* started by a reload that has not succeeded yet */
    bool ready;         /* reported ready through its pipe */
    int ready_fd;       /* read end of the readiness pipe, or -1 */
    double started_ms;
};

/* How often the master samples each worker's memory (the listen queue:
 * every tick). */
#define POOL_PSS_SAMPLE_MS 2000

struct pool {
    const struct pool_settings *s;
    const struct logger *log;
    struct pool_slot slot[POOL_SLOTS_PER_WORKER * POOL_MAX_WORKERS];
    int nslots;
    double respawn_not_before_ms;
    sigset_t handled;
    unsigned long restarts;
    int binary_fd;     /* the binary the serving workers were started from */
    /* A reload in progress: its binary, its deadline, and why it failed
     * (the first candidate's death), if it did. */
    int candidate_fd;  /* -1: no reload in progress */
    double reload_deadline_ms;
    bool reload_failed;
    int failed_exit_code, failed_signal;
    pid_t failed_pid;
};

/* The worker's environment: the master's, with its slot and the number of
 * its readiness pipe.  Built before fork, because the master may have
 * threads (the JWKS fetcher): between fork and exec the child may only make
 * async-signal-safe calls, which setenv is not.  Free with free(). */
static char **pool_worker_env(int slot, int ready_wr)
{
    size_t n = 0;
    for (char **e = environ; *e != NULL; e++)
        n++;
    char **envp = malloc((n + 3) * sizeof *envp + 2 * 48);
    if (envp == NULL)
        return NULL;
    char *ready_var = (char *)(envp + n + 3), *slot_var = ready_var + 48;
    size_t k = 0, rlen = strlen(POOL_READY_FD_ENV);
    for (char **e = environ; *e != NULL; e++)
        if (!(strncmp(*e, POOL_READY_FD_ENV, rlen) == 0 && (*e)[rlen] == '=') &&
            !scoreboard_is_slot_var(*e))
            envp[k++] = *e;
    snprintf(ready_var, 48, "%s=%d", POOL_READY_FD_ENV, ready_wr);
    scoreboard_slot_var(slot, slot_var, 48);
    envp[k++] = ready_var;
    envp[k++] = slot_var;
    envp[k] = NULL;
    return envp;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void pool_child_exec(const struct pool *p, int binary_fd, int ready_wr,
                            char **envp)
{
    sigprocmask(SIG_UNBLOCK, &p->handled, NULL);
    /* Both descriptors were opened close-on-exec so that no other worker
     * inherits them; this one passes them on.  The binary's descriptor must
     * survive the exec too, for tools that re-exec it by its /proc path
     * (valgrind --trace-children). */
    if (fcntl(binary_fd, F_SETFD, 0) != 0 || fcntl(ready_wr, F_SETFD, 0) != 0)
        _exit(127);
    fexecve(binary_fd, p->s->argv, envp);
    static const char msg[] = "{\"level\":\"error\",\"service\":\"orders\","
                              "\"message\":\"pool: cannot exec the worker binary\"}\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static pid_t pool_spawn(struct pool *p, struct pool_slot *slot, bool candidate)
{
    int binary_fd = candidate ? p->candidate_fd : p->binary_fd;
    int pipefd[2] = {-1, -1};
    char **envp = NULL;
    if (pipe2(pipefd, O_CLOEXEC) != 0 ||
        (envp = pool_worker_env((int)(slot - p->slot), pipefd[1])) == NULL) {
        log_emit(p->log, LOG_ERROR, NULL, "cannot prepare a worker",
                 (struct log_field[]){LOG_STR("error", strerror(errno))}, 1);
        if (envp == NULL && pipefd[0] >= 0) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        p->respawn_not_before_ms = clock_monotonic_ms() + POOL_RESPAWN_PAUSE_MS;
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        pool_child_exec(p, binary_fd, pipefd[1], envp);
    }
    free(envp);
    close(pipefd[1]);
    if (pid < 0) {
        log_emit(p->log, LOG_ERROR, NULL, "fork failed",
                 (struct log_field[]){LOG_STR("error", strerror(errno))}, 1);
        close(pipefd[0]);
        p->respawn_not_before_ms = clock_monotonic_ms() + POOL_RESPAWN_PAUSE_MS;
        return -1;
    }
    /* Non-blocking: the master only looks whether the byte has come. */
    int fl = fcntl(pipefd[0], F_GETFL);
    if (fl < 0 || fcntl(pipefd[0], F_SETFL, fl | O_NONBLOCK) != 0) {
        close(pipefd[0]);
        pipefd[0] = -1; /* never seen ready: a reload fails safe */
    }
    slot->pid = pid;
    slot->retiring = false;
    slot->candidate = candidate;
    slot->ready = false;
    slot->ready_fd = pipefd[0];
    slot->started_ms = clock_monotonic_ms();
    scoreboard_slot_spawned(p->s->scoreboard, (int)(slot - p->slot), pid);
    return pid;
}

int pool_worker_ready(void)
{
    const char *v = getenv(POOL_READY_FD_ENV);
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    unsetenv(POOL_READY_FD_ENV);
    if (errno != 0 || *end != '\0' || fd < 3 || fd > 65535)
        return -1;
    ssize_t w;
    do {
        w = write((int)fd, "r", 1);
    } while (w < 0 && errno == EINTR);
    close((int)fd);
    return w == 1 ? 0 : -1;
}

static void pool_close_ready_fd(struct pool_slot *slot)
{
    if (slot->ready_fd >= 0)
        close(slot->ready_fd);
    slot->ready_fd = -1;
}

/* Picks up the readiness bytes that have come since the last look. */
static void pool_poll_ready(struct pool *p)
{
    for (int i = 0; i < p->nslots; i++) {
        struct pool_slot *slot = &p->slot[i];
        if (slot->pid == 0 || slot->ready_fd < 0)
            continue;
        char c;
        ssize_t n = read(slot->ready_fd, &c, 1);
        if (n == 1) {
            slot->ready = true;
            /* its first memory figure: the sample taken at fork time was
             * the master's copy */
            scoreboard_sample_worker(p->s->scoreboard, i);
        }
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            pool_close_ready_fd(slot); /* ready, or gone without a word */
    }
}

/* Serving workers: neither retiring nor a reload's candidates. */
static int pool_count_serving(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nslots; i++)
        n += p->slot[i].pid != 0 && !p->slot[i].retiring && !p->slot[i].candidate;
    return n;
}

static int pool_count_alive(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nslots; i++)
        n += p->slot[i].pid != 0;
    return n;
}

static void pool_log_exit(struct pool *p, pid_t pid, int status, const char *msg)
{
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    struct log_field fields[] = {
        LOG_INT("pid", pid),
        LOG_INT("exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
        LOG_INT("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0),
        LOG_INT("worker_restarts", (long long)p->restarts),
    };
    log_emit(p->log, clean ? LOG_INFO : LOG_WARN, NULL, msg, fields, 4);
}

/* Reaps every exited worker.  A serving worker's slot is refilled by
 * pool_fill, after a pause when it died young; a candidate's death fails
 * its reload (pool_reload_progress). */
static void pool_reap(struct pool *p, bool stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < p->nslots; i++) {
            struct pool_slot *slot = &p->slot[i];
            if (slot->pid != pid)
                continue;
            bool retired = slot->retiring, candidate = slot->candidate;
            scoreboard_slot_exited(p->s->scoreboard, i);
            slot->pid = 0;
            slot->retiring = slot->candidate = slot->ready = false;
            pool_close_ready_fd(slot);
            if (stopping)
                break;
            if (candidate) {
                if (!p->reload_failed) {
                    p->reload_failed = true;
                    p->failed_pid = pid;
                    p->failed_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                    p->failed_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
                }
                pool_log_exit(p, pid, status, "new worker exited during a reload");
            } else if (retired) {
                pool_log_exit(p, pid, status, "worker retired");
            } else {
                p->restarts++;
                if (p->s->restarts != NULL)
                    atomic_fetch_add(p->s->restarts, 1);
                double now = clock_monotonic_ms();
                if (now - slot->started_ms < POOL_QUICK_DEATH_MS)
                    p->respawn_not_before_ms = now + POOL_RESPAWN_PAUSE_MS;
                bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                pool_log_exit(p, pid, status,
                              clean ? "worker exited (recycled); replacing it"
                                    : "worker died; replacing it");
            }
            break;
        }
    }
}

static void pool_fill(struct pool *p)
{
    if (clock_monotonic_ms() < p->respawn_not_before_ms)
        return;
    for (int i = 0; i < p->nslots && pool_count_serving(p) < p->s->workers; i++)
        if (p->slot[i].pid == 0 && pool_spawn(p, &p->slot[i], false) < 0)
            return;
}

static void pool_signal_all(struct pool *p, int sig)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slot[i].pid != 0)
            kill(p->slot[i].pid, sig);
}

/* Ends a reload that did not succeed: its candidates go, the serving
 * workers stay.  A candidate that is ready may already hold a connection,
 * so it is asked to finish (SIGTERM); one that never got ready has not
 * accepted anything and may hang in its start, so it is killed. */
static void pool_abandon_reload(struct pool *p, const char *why, bool superseded)
{
    /* Every candidate is asked to stop first: from its SIGTERM on, a
     * worker accepts nothing (fcgi/adapter.c, fcgi_accept_one), so one
     * whose readiness byte has not come even after the SIGTERM never
     * accepted a connection and can be killed, in case it hangs in its
     * start.  Killing on the byte read before the SIGTERM would race with a
     * worker that reports ready and accepts in between: a dropped request. */
    int stopped = 0;
    bool stopping[POOL_SLOTS_PER_WORKER * POOL_MAX_WORKERS] = {false};
    for (int i = 0; i < p->nslots; i++) {
        struct pool_slot *slot = &p->slot[i];
        if (slot->pid == 0 || !slot->candidate)
            continue;
        slot->candidate = false;
        slot->retiring = true;
        scoreboard_slot_retiring(p->s->scoreboard, i);
        kill(slot->pid, SIGTERM);
        stopping[i] = true;
        stopped++;
    }
    pool_poll_ready(p);
    for (int i = 0; i < p->nslots; i++)
        if (stopping[i] && p->slot[i].pid != 0 && !p->slot[i].ready)
            kill(p->slot[i].pid, SIGKILL);
    struct log_field fields[] = {
        LOG_STR("reason", why),
        LOG_STR("binary", p->s->binary),
        LOG_INT("pid", p->reload_failed ? p->failed_pid : 0),
        LOG_INT("exit_code", p->reload_failed ? p->failed_exit_code : 0),
        LOG_INT("signal", p->reload_failed ? p->failed_signal : 0),
        LOG_INT("new_workers_stopped", stopped),
        LOG_INT("workers_serving", pool_count_serving(p)),
    };
    if (superseded)
        log_emit(p->log, LOG_INFO, NULL, "reload superseded by a newer one",
                 fields + 1, 1);
    else
        log_emit(p->log, LOG_ERROR, NULL,
                 "reload failed: the workers already running keep serving",
                 fields, (int)(sizeof fields / sizeof fields[0]));
    close(p->candidate_fd);
    p->candidate_fd = -1;
    p->reload_failed = false;
}

/* Once every candidate is ready, they become the pool and the workers
 * they replace finish what they serve and exit. */
static void pool_commit_reload(struct pool *p)
{
    int retired = 0, started = 0;
    for (int i = 0; i < p->nslots; i++) {
        struct pool_slot *slot = &p->slot[i];
        if (slot->pid == 0 || slot->retiring)
            continue;
        if (slot->candidate) {
            slot->candidate = false;
            started++;
        } else {
            slot->retiring = true;
            scoreboard_slot_retiring(p->s->scoreboard, i);
            kill(slot->pid, SIGTERM);
            retired++;
        }
    }
    close(p->binary_fd);
    p->binary_fd = p->candidate_fd;
    p->candidate_fd = -1;
    log_emit(p->log, LOG_INFO, NULL, "reload complete: the new workers serve",
             (struct log_field[]){LOG_INT("new_workers", started),
                                  LOG_INT("old_workers_retiring", retired)}, 2);
}

static void pool_reload_progress(struct pool *p)
{
    if (p->candidate_fd < 0)
        return;
    if (p->reload_failed) {
        pool_abandon_reload(p, "a new worker exited before it was ready "
                               "(its own error is logged above)", false);
        return;
    }
    int candidates = 0, ready = 0;
    for (int i = 0; i < p->nslots; i++) {
        if (p->slot[i].pid != 0 && p->slot[i].candidate) {
            candidates++;
            ready += p->slot[i].ready;
        }
    }
    if (candidates > 0 && ready == candidates) {
        pool_commit_reload(p);
        return;
    }
    if (candidates == 0) {
        pool_abandon_reload(p, "no new worker could be started", false);
        return;
    }
    if (clock_monotonic_ms() >= p->reload_deadline_ms)
        pool_abandon_reload(p, "the new workers were not ready in time", false);
}

/* Graceful reload (SIGHUP): a full set of new workers from the binary on
 * disk first; the old ones retire only once all of those are ready
 * (pool_reload_progress).  Both generations accept on the same socket in
 * between, so no connection waits on an empty pool. */
static void pool_reload(struct pool *p)
{
    if (p->candidate_fd >= 0)
        pool_abandon_reload(p, "a newer reload was requested", true);
    int fd = open(p->s->binary, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_emit(p->log, LOG_ERROR, NULL,
                 "reload failed: cannot open the worker binary; the workers "
                 "already running keep serving",
                 (struct log_field[]){LOG_STR("binary", p->s->binary),
                                      LOG_STR("error", strerror(errno))}, 2);
        return;
    }
    log_emit(p->log, LOG_INFO, NULL, "reloading workers",
             (struct log_field[]){LOG_STR("binary", p->s->binary),
                                  LOG_INT("workers", p->s->workers)}, 2);
    p->candidate_fd = fd;
    p->reload_failed = false;
    p->reload_deadline_ms = clock_monotonic_ms() + p->s->ready_timeout_ms;
    int started = 0;
    for (int i = 0; i < p->nslots && started < p->s->workers; i++) {
        if (p->slot[i].pid != 0)
            continue;
        if (pool_spawn(p, &p->slot[i], true) < 0)
            break;
        started++;
    }
    /* Judged from here on: all ready, one dead, or the deadline. */
    pool_reload_progress(p);
}

/* SIGTERM lets each worker finish the request it is serving and exit; past
 * the deadline the rest are killed. */
static void pool_stop(struct pool *p)
{
    pool_signal_all(p, SIGTERM);
    double deadline = clock_monotonic_ms() + p->s->stop_timeout_ms;
    while (pool_count_alive(p) > 0 && clock_monotonic_ms() < deadline) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        siginfo_t info;
        sigtimedwait(&p->handled, &info, &tick);
        pool_reap(p, true);
    }
    if (pool_count_alive(p) > 0) {
        log_emit(p->log, LOG_WARN, NULL, "stop deadline passed; killing workers",
                 (struct log_field[]){LOG_INT("alive", pool_count_alive(p))}, 1);
        pool_signal_all(p, SIGKILL);
        while (pool_count_alive(p) > 0 && waitpid(-1, NULL, 0) > 0)
            pool_reap(p, true);
    }
}

int pool_run(const struct pool_settings *s, const struct logger *log)
{
    if (s->workers < 1 || s->workers > POOL_MAX_WORKERS || s->binary == NULL ||
        s->argv == NULL || s->argv[0] == NULL)
        return 1;
    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return 1;
    p->s = s;
    p->log = log;
    p->nslots = POOL_SLOTS_PER_WORKER * s->workers;
    for (int i = 0; i < p->nslots; i++)
        p->slot[i].ready_fd = -1;
    p->candidate_fd = -1;
    p->binary_fd = open(s->binary, O_RDONLY | O_CLOEXEC);
    if (p->binary_fd < 0) {
        fprintf(stderr, "orders-fcgi: cannot open %s: %s\n", s->binary, strerror(errno));
        free(p);
        return 1;
    }
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
        /* A reload waits on readiness bytes, which raise no signal: look
         * often then, rarely otherwise. */
        long tick_ns = (p->candidate_fd >= 0 ? 10 : 50) * 1000L * 1000L;
        struct timespec tick = {0, tick_ns};
        siginfo_t info;
        int sig = sigtimedwait(&p->handled, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        pool_reap(p, false);
        pool_poll_ready(p);
        scoreboard_sample(s->scoreboard, s->listen_fd, POOL_PSS_SAMPLE_MS);
        if (sig == SIGHUP)
            pool_reload(p);
        else
            pool_reload_progress(p);
    }
    log_emit(log, LOG_INFO, NULL, "pool stopping", NULL, 0);
    pool_stop(p);
    for (int i = 0; i < p->nslots; i++)
        pool_close_ready_fd(&p->slot[i]);
    if (p->candidate_fd >= 0)
        close(p->candidate_fd);
    close(p->binary_fd);
    free(p);
    return 0;
}
