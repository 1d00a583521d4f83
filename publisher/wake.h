/*
 * wake.h - sleeping until there may be work: a commit by a worker, a
 * timeout, or SIGTERM/SIGINT.
 *
 * A commit is noticed through inotify on the database's directory: in WAL
 * mode every commit appends to DATABASE_PATH-wal.  inotify only says the
 * files were touched, not that a commit is visible, so callers confirm with
 * PRAGMA data_version.  Without inotify (another file system, no watches
 * left) wake_wait simply times out, and callers poll.
 *
 *     wake_open(&w, err, sizeof err);   first thing in main, before threads
 *     wake_watch(w, db_path);
 *     switch (wake_wait(w, 1000)) { case WAKE_STOP: ... }
 */
#ifndef ORDERS_PUBLISHER_WAKE_H
#define ORDERS_PUBLISHER_WAKE_H

#include <stdbool.h>
#include <stddef.h>

struct wake;

enum wake_reason { WAKE_TIMEOUT, WAKE_CHANGE, WAKE_STOP };

/* Blocks SIGTERM and SIGINT (they are read from a signalfd instead, so a
 * signal can never cut a write or a transaction in half) and ignores
 * SIGPIPE (a closed stdout is an error to report, not a reason to die).
 * Must run before any thread is started: threads inherit the mask. */
int wake_open(struct wake **out, char *err, size_t errlen);
void wake_close(struct wake *w);

/* Watches the directory of db_path.  -1 when inotify is not available; the
 * caller then relies on timeouts alone. */
int wake_watch(struct wake *w, const char *db_path);
bool wake_watching(const struct wake *w);

/* Waits up to timeout_ms for a change to the database files or a stop
 * signal.  Changes to other files in the directory do not wake. */
enum wake_reason wake_wait(struct wake *w, long long timeout_ms);

/* Drops queued change notices.  For right after this process's own commit:
 * they are about that commit (SQLite has one writer at a time, so no other
 * commit can be half-visible then).  The caller should still compare
 * data_version, since a commit finished just before ours is not announced
 * again. */
void wake_discard(struct wake *w);

/* Without waiting: has SIGTERM or SIGINT arrived?  Sticky once true. */
bool wake_stop_requested(struct wake *w);

/* The signal that asked to stop ("SIGTERM", "SIGINT"), or NULL. */
const char *wake_stop_signal(const struct wake *w);

#endif
