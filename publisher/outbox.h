/*
 * outbox.h - the publisher's side of the events table (migrations/002):
 * reading undelivered events in commit order, recording what the sink made
 * of them, the single-publisher lease, and retention pruning.
 *
 *     struct outbox *ob;
 *     outbox_open(&ob, path, true, err, sizeof err);   -> OUTBOX_NOT_READY: retry later
 *     outbox_lease_acquire(ob, holder, now, now + ttl, &got, &other);
 *     outbox_fetch(ob, 256, &batch);                   -> seq order
 *     ... deliver ...
 *     outbox_commit(ob, &commit, &lease_kept);         -> one transaction
 *     outbox_close(ob);
 *
 * Every function returns 0 on success and -1 on a database error, whose text
 * is then outbox_errmsg(ob).  Times are milliseconds since the Unix epoch
 * (wall clock: other processes compare them).
 */
#ifndef ORDERS_PUBLISHER_OUTBOX_H
#define ORDERS_PUBLISHER_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

struct outbox;

enum outbox_status { OUTBOX_OK, OUTBOX_NOT_READY, OUTBOX_ERROR };

struct outbox_event {
    long long seq;
    char *id;
    char *type;
    char *source;
    char *subject;
    char *time;
    char *traceparent;        /* NULL when the request had none */
    char *data;               /* JSON text */
    long long attempts;       /* failed attempts so far */
    long long next_attempt_at; /* 0: due now */
};

struct outbox_batch {
    struct outbox_event *events;
    int count;
};

/* What became of one event that was not delivered. */
struct outbox_failure {
    long long seq;
    long long attempts;        /* including this one */
    const char *error;
    long long next_attempt_at; /* when not parked */
    long long parked_at;       /* 0: not parked */
};

/* One transaction's worth of results. */
struct outbox_commit {
    const long long *delivered; /* seqs the sink acknowledged */
    int delivered_count;
    long long delivered_at;
    const struct outbox_failure *failure; /* NULL when none */
    const char *holder;        /* lease renewed in the same transaction */
    long long lease_expires_at;
};

/* OUTBOX_NOT_READY: the file does not exist yet or the workers have not yet
 * migrated it (no events / publisher_lease table); err says which. */
enum outbox_status outbox_open(struct outbox **out, const char *path, bool synchronous_full,
                               char *err, size_t errlen);
void outbox_close(struct outbox *ob);
const char *outbox_errmsg(struct outbox *ob);

/* Changes whenever another connection committed (PRAGMA data_version). */
int outbox_data_version(struct outbox *ob, long long *out);

/* Up to limit undelivered, unparked events, lowest seq first.  The batch's
 * previous contents are freed first. */
int outbox_fetch(struct outbox *ob, int limit, struct outbox_batch *batch);
void outbox_batch_free(struct outbox_batch *batch);

/* Marks delivered, records a failure and renews the lease atomically.
 * lease_kept is false when another holder has taken the lease meanwhile
 * (the deliveries are recorded anyway: they did happen). */
int outbox_commit(struct outbox *ob, const struct outbox_commit *c, bool *lease_kept);

/* The lease row as it stands; *present is false when there is none. */
int outbox_lease_peek(struct outbox *ob, char *holder, size_t holder_len,
                      long long *expires_at, bool *present);

/* Takes the lease when it is free, expired or already ours (BEGIN
 * IMMEDIATE, so two contenders cannot both win).  When another live holder
 * has it, *acquired is false and other_expires_at says until when. */
int outbox_lease_acquire(struct outbox *ob, const char *holder, long long now,
                         long long expires_at, bool *acquired, long long *other_expires_at);

/* *kept is false when the lease is no longer ours. */
int outbox_lease_renew(struct outbox *ob, const char *holder, long long expires_at, bool *kept);

/* Gives the lease up so that a standby can take over at once. */
int outbox_lease_release(struct outbox *ob, const char *holder);

/* Deletes at most limit delivered rows delivered before cutoff, in one short
 * transaction; *deleted says how many went. */
int outbox_prune(struct outbox *ob, long long cutoff, int limit, int *deleted);

#endif
