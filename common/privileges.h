/*
 * privileges.h - giving root up, for the binaries that may be started as root.
 *
 * Kept out of core/ (which never sees the process) and shared by the worker
 * pool and the publisher, so both drop to the same account the same way.
 */
#ifndef ORDERS_PRIVILEGES_H
#define ORDERS_PRIVILEGES_H

/* When running as root, switches to WORKER_USER (default www-data): its
 * group, no supplementary groups, its uid, and checks root cannot be
 * regained.  Does nothing for any other user, nor when WORKER_USER names
 * root itself (the caller's explicit choice).  Returns 0, or -1 after
 * printing why to stderr (prefixed with prog). */
int privileges_drop(const char *prog);

#endif
