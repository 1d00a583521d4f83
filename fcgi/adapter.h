/*
 * adapter.h - FastCGI <-> core: the worker's serving threads.
 *
 * Turns each FastCGI request's params and body into a core request, calls
 * app_handle(), and writes the core response back as a CGI response.
 * Nothing about orders lives here.
 */
#ifndef ORDERS_FCGI_ADAPTER_H
#define ORDERS_FCGI_ADAPTER_H

#include <signal.h>

#include "app.h"
#include "scoreboard.h"

/* The most serving threads one worker runs (WORKER_THREADS). */
#define FCGI_MAX_THREADS 64

/* Serves requests on the listening socket at fd 0 (where spawn-fcgi puts
 * it) with `threads` threads, thread i handing its requests to apps[i] (an
 * app, and so a store connection, per thread), until *stop becomes non-zero
 * or max_requests have been served by all of them (0: no limit).  The
 * threads share the worker's connections: each takes the next one with a
 * request (or the listening socket, to accept), so a connection nginx keeps
 * alive ties up no thread; a retiring worker stops accepting and waits for
 * nginx to close the connections it has.  A request still
 * running after watchdog_s seconds kills the process (SIGALRM's default
 * action): the pool replaces it, and SQLite rolls back whatever it had not
 * committed.  on_ready (may be NULL) is called once, when the worker is set
 * up and about to accept its first connection.  The worker keeps its
 * slot of the pool's scoreboard (may be NULL) up to date.  Returns the
 * number served. */
unsigned long fcgi_serve(struct app *const *apps, int threads,
                         volatile sig_atomic_t *stop, unsigned long max_requests,
                         unsigned watchdog_s, int (*on_ready)(void),
                         struct scoreboard *sb);

#endif
