/*
 * relay.h - the publisher's loop: hold the lease, read undelivered events in
 * commit order, hand them to the sink, record the outcome, sleep until
 * something changes.  The policies (order, retries, parking, lease) are
 * described at the top of relay.c.
 */
#ifndef ORDERS_PUBLISHER_RELAY_H
#define ORDERS_PUBLISHER_RELAY_H

#include <stdbool.h>

#include "config.h"
#include "store.h"
#include "sink.h"
#include "wake.h"

/* Exit statuses of relay_run, and so of the program. */
enum relay_exit {
    RELAY_EXIT_OK = 0,     /* stopped by a signal, or --once delivered everything */
    RELAY_EXIT_FAILED = 1, /* --once: the sink or the database failed, events remain */
    RELAY_EXIT_LEASE = 3,  /* --once: another live publisher holds the lease */
};

/* Runs until SIGTERM/SIGINT (always finishing and recording the send in
 * flight, then releasing the lease) or, with once, until nothing is left
 * to deliver.  The caller keeps ownership of st, sink and w. */
enum relay_exit relay_run(const struct publisher_config *cfg, struct store *st, struct sink *sink,
                          struct wake *w, bool once);

#endif
