/*
 * pool.h - a small prefork master, in the spirit of php-fpm's static pool.
 *
 * spawn-fcgi binds the socket and execs us once (-n); this master starts
 * the workers that share that socket, each exec'ed afresh from the worker
 * binary, replaces any that exits or is killed, for as long as it runs,
 * and stops them all on SIGTERM/SIGINT.  spawn-fcgi -F alone never replaces
 * a child, and multiwatch gives a slot up after a few quick failures; a
 * pool that silently shrinks is worse than a crash loop that is logged and
 * slowed down.
 *
 * Reload (SIGHUP) is transactional.  The master opens the binary now on
 * disk and starts a full set of new workers from it while the old ones keep
 * serving; only when every new worker has reported itself ready (it has
 * its configuration, its database and is about to accept: pool_worker_ready)
 * are the old ones told to finish and exit.  A new worker that exits first,
 * or is not ready within ready_timeout_ms, fails the reload: the new
 * workers are stopped, the old pool serves on and the log says why.
 *
 * Replacements of dead or recycled workers are exec'ed from the binary the
 * pool last started successfully, through a descriptor held open since
 * (fexecve), never from the path: a broken binary put on disk cannot enter
 * the pool through a crash or a recycle either.
 */
#ifndef ORDERS_FCGI_POOL_H
#define ORDERS_FCGI_POOL_H

#include <stdatomic.h>

#include "log.h"
#include "scoreboard.h"

#define POOL_MAX_WORKERS 256

struct pool_settings {
    int workers;          /* processes to keep running */
    int stop_timeout_ms;  /* SIGTERM -> SIGKILL grace for in-flight requests */
    int ready_timeout_ms; /* a reload fails if its workers are not ready by then */
    const char *binary;   /* absolute path of the worker program */
    char *const *argv;    /* its arguments (argv[0] included), NULL-terminated */
    atomic_ullong *restarts; /* shared counter for /metrics, or NULL */
    struct scoreboard *scoreboard; /* sized for POOL_SLOTS_PER_WORKER * workers, or NULL */
    int listen_fd;        /* the workers' listening socket, for its queue */
};

/* Slots a pool of n workers needs: the serving workers, a reload's new
 * ones, and those a previous reload retired that are still finishing
 * their connection. */
#define POOL_SLOTS_PER_WORKER 3

/* Returns the master's exit status once stopped. */
int pool_run(const struct pool_settings *s, const struct logger *log);

/* In a worker: tells the master it is ready to serve (call it right before
 * the first accept).  Does nothing in a process the pool did not start.
 * Returns 0, or -1 if the master could not be told. */
int pool_worker_ready(void);

#endif
