/*
 * pool.h - a small prefork master, in the spirit of php-fpm's static pool.
 *
 * spawn-fcgi binds the socket and execs us once (-n); this master forks the
 * workers that share that socket, replaces any that exits or is killed, for
 * as long as it runs, and stops them all on SIGTERM/SIGINT.  spawn-fcgi -F
 * alone never replaces a child, and multiwatch gives a slot up after a few
 * quick failures; a pool that silently shrinks is worse than a crash loop
 * that is logged and slowed down.
 */
#ifndef ORDERS_FCGI_POOL_H
#define ORDERS_FCGI_POOL_H

#include <stdatomic.h>

#include "log.h"

/* Runs in each forked worker, with signals unblocked; its return value is
 * the worker's exit status. */
typedef int (*pool_worker_fn)(void *arg);

struct pool_settings {
    int workers;          /* processes to keep running */
    int stop_timeout_ms;  /* SIGTERM -> SIGKILL grace for in-flight requests */
    atomic_ullong *restarts; /* shared counter for /metrics, or NULL */
};

/* Returns the master's exit status once stopped. */
int pool_run(const struct pool_settings *s, pool_worker_fn fn, void *arg,
             const struct logger *log);

#endif
