/*
 * store.c - the store port's dispatch: each call goes to the operations of
 * the engine that opened the store.  No SQL and no driver here; the
 * adapters (adapters/store_*.c) hold all of it, and the selection table
 * (adapters/store_select.c) implements store_open.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

void store_close(struct store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

const char *store_engine(const struct store *st)
{
    return st != NULL ? st->ops->engine : "none";
}

const char *store_last_error(const struct store *st)
{
    return st != NULL ? st->ops->last_error(st) : "no database";
}

void store_take_timing(struct store *st, struct store_timing *out)
{
    memset(out, 0, sizeof *out);
    if (st != NULL && st->ops->take_timing != NULL)
        st->ops->take_timing(st, out);
}

void store_release_memory(struct store *st)
{
    if (st != NULL && st->ops->release_memory != NULL)
        st->ops->release_memory(st);
}

enum store_status store_migrate(struct store *st, char *err, size_t errlen)
{
    return st->ops->migrate(st, err, errlen);
}

enum store_status store_schema_version(struct store *st, int *applied)
{
    return st->ops->schema_version(st, applied);
}

int store_schema_latest(const struct store *st)
{
    return st->ops->schema_latest();
}

enum store_status store_order_create(struct store *st, struct order *o,
                                     const struct event_meta *meta,
                                     const struct idempotency_claim *claim)
{
    return st->ops->order_create(st, o, meta, claim);
}

enum store_status store_order_get(struct store *st, const char *id, struct order *out)
{
    return st->ops->order_get(st, id, out);
}

enum store_status store_order_transition(struct store *st, const char *id,
                                         enum order_status to,
                                         const struct precondition *pre,
                                         const struct event_meta *meta,
                                         struct order *out, enum order_status *from)
{
    return st->ops->order_transition(st, id, to, pre, meta, out, from);
}

enum store_status store_order_page(struct store *st, const struct page_query *q,
                                   struct order **items, size_t *count, long long *total,
                                   bool *more)
{
    return st->ops->order_page(st, q, items, count, total, more);
}

/* An engine without a count of its own answers through a one-row page of
 * the same filters (its total), so a new adapter is correct before it is
 * fast. */
enum store_status store_order_count(struct store *st, const struct page_query *q,
                                    long long *total)
{
    if (st->ops->order_count != NULL)
        return st->ops->order_count(st, q, total);
    struct page_query first = *q;
    first.limit = 1;
    first.offset = 0;
    first.has_cursor = false;
    struct order *items = NULL;
    size_t count = 0;
    bool more = false;
    enum store_status status = st->ops->order_page(st, &first, &items, &count, total, &more);
    for (size_t i = 0; i < count; i++)
        order_free(&items[i]);
    free(items);
    return status;
}

enum store_status store_outbox_stats(struct store *st, long long now_ms,
                                     struct outbox_stats *out)
{
    return st->ops->outbox_stats(st, now_ms, out);
}

enum store_status store_outbox_fetch(struct store *st, int limit, long long now_ms,
                                     struct outbox_batch *batch)
{
    return st->ops->outbox_fetch(st, limit, now_ms, batch);
}

static void outbox_event_free(struct outbox_event *ev)
{
    free(ev->id);
    free(ev->type);
    free(ev->source);
    free(ev->subject);
    free(ev->time);
    free(ev->traceparent);
    free(ev->data);
    memset(ev, 0, sizeof(*ev));
}

void outbox_batch_free(struct outbox_batch *batch)
{
    for (int i = 0; i < batch->count; i++)
        outbox_event_free(&batch->events[i]);
    free(batch->events);
    batch->events = NULL;
    batch->count = 0;
    batch->next_due = 0;
}

enum store_status store_outbox_commit(struct store *st, const struct outbox_commit *c,
                                      bool *lease_kept)
{
    return st->ops->outbox_commit(st, c, lease_kept);
}

enum store_status store_lease_peek(struct store *st, char *holder, size_t holder_len,
                                   long long *expires_at, bool *present)
{
    return st->ops->lease_peek(st, holder, holder_len, expires_at, present);
}

enum store_status store_lease_acquire(struct store *st, const char *holder, long long now,
                                      long long expires_at, bool *acquired,
                                      long long *other_expires_at)
{
    return st->ops->lease_acquire(st, holder, now, expires_at, acquired, other_expires_at);
}

enum store_status store_lease_renew(struct store *st, const char *holder,
                                    long long expires_at, bool *kept)
{
    return st->ops->lease_renew(st, holder, expires_at, kept);
}

enum store_status store_lease_release(struct store *st, const char *holder)
{
    return st->ops->lease_release(st, holder);
}

enum store_status store_outbox_prune(struct store *st, long long cutoff, int limit,
                                     int *deleted)
{
    return st->ops->outbox_prune(st, cutoff, limit, deleted);
}

int store_change_fd(struct store *st)
{
    return st->ops->change_fd(st);
}

bool store_change_drain(struct store *st)
{
    return st->ops->change_drain(st);
}

enum store_status store_data_version(struct store *st, long long *out)
{
    return st->ops->data_version(st, out);
}
