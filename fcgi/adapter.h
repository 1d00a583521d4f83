/*
 * adapter.h - FastCGI <-> core: the worker's accept loop.
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

/* Serves requests on the listening socket at fd 0 (where spawn-fcgi puts
 * it) until *stop becomes non-zero or max_requests have been served (0: no
 * limit).  A request still running after watchdog_s seconds kills the
 * process (SIGALRM's default action): the pool replaces it, and SQLite rolls
 * back whatever it had not committed.  on_ready (may be NULL) is called
 * once, when the worker is set up and about to accept its first
 * connection.  The worker keeps its slot of the pool's scoreboard (may be
 * NULL) up to date.  Returns the number served. */
unsigned long fcgi_serve(struct app *app, volatile sig_atomic_t *stop,
                         unsigned long max_requests, unsigned watchdog_s,
                         int (*on_ready)(void), struct scoreboard *sb);

#endif
