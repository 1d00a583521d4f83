/*
 * scoreboard.h - the pool's status, like php-fpm's status page (and
 * Apache's scoreboard it descends from).
 *
 * One shared memory area (a memfd the master creates and every worker it
 * execs maps): a header with the pool's figures and one slot per worker.
 * A worker writes only its own slot and a few pool counters, with plain
 * stores and atomic adds, around each request: no system call, no lock.
 * The master writes what only it knows: which slot holds which pid, which
 * are retiring, each worker's memory, and the listen queue, which it
 * samples on every tick of its loop (50 ms; the worker that answers
 * GET /status samples it once more).  Any worker renders the whole pool
 * for GET /status and GET /metrics.
 *
 * The listen queue is read from the listening socket itself: for a unix
 * socket (the default) through sock_diag (NETLINK_SOCK_DIAG,
 * UNIX_DIAG_RQLEN: connections waiting to be accepted, and the backlog),
 * for TCP through TCP_INFO (tcpi_unacked, tcpi_sacked).  Where neither
 * answers, the queue reads -1 ("unknown") rather than a false 0.
 *
 * Memory is each worker's Pss (proportional set size: its private pages
 * plus its share of the pages it shares) from /proc/PID/smaps_rollup,
 * sampled by the master every few seconds: workers that dropped their
 * privileges cannot read each other's, and the hot path never pays for it.
 */
#ifndef ORDERS_FCGI_SCOREBOARD_H
#define ORDERS_FCGI_SCOREBOARD_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct scoreboard;

enum worker_state {
    WORKER_FREE = 0, /* no process in this slot */
    WORKER_STARTING, /* forked, not yet ready to accept */
    WORKER_IDLE,
    WORKER_ACTIVE,   /* serving a request */
};

/* ---- the master --------------------------------------------------------- */

/* Creates the area for nslots workers, workers of which are the pool's
 * size, and names it in the environment the workers inherit.  NULL on
 * failure (errno set). */
struct scoreboard *scoreboard_create(int nslots, int workers);
void scoreboard_destroy(struct scoreboard *sb);

void scoreboard_slot_spawned(struct scoreboard *sb, int slot, int pid);
void scoreboard_slot_retiring(struct scoreboard *sb, int slot);
void scoreboard_slot_exited(struct scoreboard *sb, int slot);
/* The environment entry that tells a worker its slot ("NAME=slot"), for
 * the environment the master builds for it; and whether e is one. */
void scoreboard_slot_var(int slot, char *buf, size_t len);
bool scoreboard_is_slot_var(const char *e);

/* Samples the listen queue of the socket at listen_fd, and every
 * pss_every_ms each worker's memory.  For the master's loop. */
void scoreboard_sample(struct scoreboard *sb, int listen_fd, double pss_every_ms);
/* Samples one worker's memory now (when it has just become ready). */
void scoreboard_sample_worker(struct scoreboard *sb, int slot);

/* ---- a worker ----------------------------------------------------------- */

/* Maps the area the master named, and finds this worker's slot.  NULL when
 * the process was not started by the pool (the status then stays empty). */
struct scoreboard *scoreboard_attach(void);
void scoreboard_detach(struct scoreboard *sb);

/* The worker's life, in its own slot.  sb may be NULL (no pool): then
 * every call does nothing.  The worker's serving threads (threads of them)
 * share the slot: it is active while any of them serves a request, and
 * shows the oldest request still running (else the last one); the calls
 * below are safe from any of them. */
void scoreboard_worker_ready(struct scoreboard *sb, int threads);
void scoreboard_connection_accepted(struct scoreboard *sb);
void scoreboard_request_begin(struct scoreboard *sb, const char *method,
                              double now_ms);
void scoreboard_request_routed(struct scoreboard *sb, const char *route);
void scoreboard_request_end(struct scoreboard *sb, int status, double now_ms);

/* ---- reading ------------------------------------------------------------ */

/* GET /status: JSON, with one object per worker when full.  listen_fd is
 * sampled for the current queue.  m gives the slow requests and restarts.
 * Returns a malloc'ed string, or NULL. */
char *scoreboard_render_json(struct scoreboard *sb, const struct metrics *m,
                             int listen_fd, bool full, size_t *len);

/* The pool's lines for GET /metrics (Prometheus text format). */
char *scoreboard_render_metrics(struct scoreboard *sb, int listen_fd, size_t *len);

#endif
