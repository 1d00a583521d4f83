/*
 * wake.h - sleeping until there may be work: a commit by a worker, a
 * timeout, or SIGTERM/SIGINT.
 *
 * A commit is noticed through the store's change signal (core/store.h:
 * inotify on SQLite's files, LISTEN on PostgreSQL).  The signal only says
 * something may have changed, so callers confirm with store_data_version.
 * Without a signal wake_wait simply times out, and callers poll.
 *
 *     wake_open(&w, err, sizeof err);   first thing in main, before threads
 *     wake_watch(w, store);
 *     switch (wake_wait(w, 1000)) { case WAKE_STOP: ... }
 */
#ifndef ORDERS_PUBLISHER_WAKE_H
#define ORDERS_PUBLISHER_WAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct wake;

enum wake_reason { WAKE_TIMEOUT, WAKE_CHANGE, WAKE_STOP };

/* Blocks SIGTERM and SIGINT (they are read from a signalfd instead, so a
 * signal can never cut a write or a transaction in half) and ignores
 * SIGPIPE (a closed stdout is an error to report, not a reason to die).
 * Must run before any thread is started: threads inherit the mask. */
int wake_open(struct wake **out, char *err, size_t errlen);
void wake_close(struct wake *w);

/* Wakes on st's change signal from now on (NULL: no longer).  The caller
 * keeps st open while it is watched. */
void wake_watch(struct wake *w, struct store *st);
/* Whether the watched store has a change signal (else: timeouts alone). */
bool wake_watching(const struct wake *w);

/* Waits up to timeout_ms for a change signal of the store or a stop
 * signal.  Signals the store finds irrelevant do not wake. */
enum wake_reason wake_wait(struct wake *w, long long timeout_ms);

/* Drops queued change notices.  For right after this process's own commit:
 * they are about that commit.  The caller should still compare
 * data_version, since a commit finished just before ours is not announced
 * again. */
void wake_discard(struct wake *w);

/* Without waiting: has SIGTERM or SIGINT arrived?  Sticky once true. */
bool wake_stop_requested(struct wake *w);

/* The signal that asked to stop ("SIGTERM", "SIGINT"), or NULL. */
const char *wake_stop_signal(const struct wake *w);

#endif
