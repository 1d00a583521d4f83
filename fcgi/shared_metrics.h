/*
 * shared_metrics.h - where the pool's struct metrics (core/metrics.h) lives.
 *
 * A memfd the master creates, named to its children by ORDERS_METRICS_FD,
 * inherited across fork and exec and mapped shared by every worker, so that
 * each adds into the same counters with lock-free atomics and any of them
 * can answer GET /metrics for the whole pool.  It survives a reload: the
 * new workers attach to the master's counters.
 */
#ifndef ORDERS_FCGI_SHARED_METRICS_H
#define ORDERS_FCGI_SHARED_METRICS_H

#include "metrics.h"

/* In the master.  Returns the mapping, or NULL with errno set. */
struct metrics *shared_metrics_create(void);

/* In a worker.  Returns the master's counters, or NULL after one line on
 * stderr (not started by a master, or a master older than this binary). */
struct metrics *shared_metrics_attach(void);

#endif
