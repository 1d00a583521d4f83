/*
 * relay.c - delivering the outbox.
 *
 * Order.  Events are fetched from the store lowest seq first, in a way
 * that keeps each order's events in commit order (store_outbox_fetch,
 * core/store.h), and sent one after another; a batch stops at the first
 * event the sink does not acknowledge, and nothing after it is sent until
 * it has been.  So the sink sees each order's events in commit order,
 * except around an event given up on (parking).
 *
 * Acknowledgement.  An event is marked delivered only after the sink
 * acknowledged it (core/sink.h: HTTP 2xx; for files, the batch's fsync), in one
 * transaction per batch.  A crash in between means the batch is sent again,
 * with the same ids: at least once, never lost.  SIGTERM does not cut a
 * send: the send in flight ends, everything acknowledged is recorded, the
 * lease is released.
 *
 * Retries.  A failed event records attempts, last_error and next_attempt_at
 * = now + backoff, where backoff doubles from PUBLISHER_BACKOFF_BASE_MS
 * (100 ms) up to PUBLISHER_BACKOFF_CAP_MS (30 s), or is longer when the
 * sink sent Retry-After.  The event heads the queue, so everything behind it
 * waits, in order.  No jitter: one publisher talks to one sink.
 *
 * Poison.  When the sink is down (connection refused, timeouts, 5xx, and
 * the answers an adapter classes as sink-wide) nothing is ever given up: the
 * sink, not the event, is at fault, and giving up would drain the stream
 * into the parked pile.  When the sink rejects the event itself (other 4xx),
 * or the event's data is not JSON, the event is retried until it has
 * PUBLISHER_MAX_ATTEMPTS (5) attempts, then parked: parked_at is set, an
 * error line is logged, the parked count goes up, and later events move on.
 * attempts counts every failure, so an event that already waited out an
 * outage is parked at its first rejection.  Parked rows are kept (retention
 * does not prune them) for an operator to inspect and, by clearing
 * parked_at, to send again.
 *
 * Lease.  Only the holder of the store's publisher lease delivers (engines
 * whose fetch claims events grant it to every publisher).  It is taken in
 * one write transaction when free, expired or already ours, for
 * PUBLISHER_LEASE_MS (10 s), renewed every second and in every batch's
 * commit, and deleted on a clean exit so a standby takes over at once.  A
 * standby looks at the row (a plain read, no write lock) each time the
 * database changes or every PUBLISHER_POLL_MS.  After kill -9 the row
 * expires and a standby takes over within one lease period.  Before each
 * send the holder makes sure the lease outlives the longest possible send
 * (the HTTP timeout), renewing first if needed, so it never sends while a
 * standby could think the lease expired.  What this cannot cover is a
 * process frozen (SIGSTOP, a VM pause) for longer than the lease between
 * that check and the send; the cost then is a duplicate, still in order per
 * publisher, never a loss.  Lease times are wall-clock milliseconds because
 * other processes compare them; every sleep is capped at PUBLISHER_POLL_MS,
 * so a clock step cannot make the loop oversleep.
 *
 * Wake-ups.  Idle, the loop sleeps on the store's change signal (wake.c)
 * and re-reads the events only when store_data_version says another
 * connection committed.  On SQLite a WAL commit becomes visible only after
 * its fsync, which comes after the write inotify reports; so after a
 * change notice that is not visible yet,
 * data_version is re-read 1, 2, then every 4 ms, for up to 250 ms.  The
 * publisher's own commits would trigger that too, so their notices are
 * dropped right after each of them (wake_discard).
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cloudevent.h"
#include "clock.h"
#include "log.h"
#include "trace_context.h"
#include "sink.h"

#define RELAY_RENEW_EVERY_MS 1000
#define RELAY_LEASE_MARGIN_MS 500
#define RELAY_PRUNE_EVERY_MS 60000
#define RELAY_PRUNE_CHUNK 1000
#define RELAY_PRUNE_MAX_CHUNKS 100
#define RELAY_SETTLE_STEP_MS 4
#define RELAY_SETTLE_FOR_MS 250

struct relay {
    const struct publisher_config *cfg;
    struct store *st;
    struct sink *sink;
    struct wake *wake;
    bool once;
    char holder[160];
    bool leased;
    long long lease_expires;  /* what we last wrote into the row */
    long long lease_renewed;
    long long lease_wait_started; /* 0: not waiting */
    long long next_prune;
    bool quiet;               /* the last look found nothing due */
    long long quiet_version;  /* data_version at that look */
    long long due_at;         /* quiet because the head backs off until then; 0: none */
    long long settle_ms;      /* next re-read after a change notice; 0: none pending */
    long long settle_until;
    bool check_now;           /* compare data_version before sleeping again */
    long long delivered_total;
    long long parked_total;
    struct outbox_batch batch;
    long long *acked;         /* seqs of the batch the sink acknowledged */
    struct sink_message *msgs; /* one sink call's worth of rendered events */
    char **rendered;          /* their envelopes, owned */
};

enum relay_step { STEP_WORKED, STEP_IDLE, STEP_SINK_DOWN, STEP_ERROR };

static long long relay_min(long long a, long long b)
{
    return a < b ? a : b;
}

/* hostname:pid:random, so that a restarted process with a recycled pid
 * (likely in a container, where the publisher is often pid 7 every time)
 * does not mistake its predecessor's lease for its own. */
static void relay_make_holder(char *out, size_t len)
{
    char host[65] = "unknown";
    unsigned int nonce;

    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    if (getrandom(&nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        nonce = (unsigned int)clock_now_ms() ^ ((unsigned int)getpid() << 16);
    snprintf(out, len, "%s:%ld:%08x", host, (long)getpid(), nonce);
}

static void relay_db_error(struct relay *r, const char *what)
{
    struct log_field f[] = {LOG_STR("operation", what), LOG_STR("error", store_last_error(r->st))};
    log_emit(log_process(), LOG_ERROR, NULL, "database error", f, LOG_COUNT(f));
}

/* Our own commit: its change notices are not news, but a commit that ended
 * just before ours may be, and its notice was just dropped with ours. */
static void relay_wrote(struct relay *r)
{
    wake_discard(r->wake);
    r->check_now = true;
}

/* ---- the lease ---------------------------------------------------------- */

static void relay_lease_lost(struct relay *r, const char *why)
{
    struct log_field f[] = {LOG_STR("holder", r->holder), LOG_STR("reason", why)};

    r->leased = false;
    log_emit(log_process(), LOG_WARN, NULL, "lease lost; standing by", f, LOG_COUNT(f));
}

/* Returns whether the lease is (still) ours and long enough for a send. */
static bool relay_lease_renew(struct relay *r, long long now)
{
    bool kept = false;
    long long expires = now + r->cfg->lease_ms;

    if (store_lease_renew(r->st, r->holder, expires, &kept) != 0) {
        relay_db_error(r, "renewing the lease");
        if (r->lease_expires - now < RELAY_LEASE_MARGIN_MS)
            relay_lease_lost(r, "could not renew in time");
        return false;
    }
    if (!kept) {
        relay_lease_lost(r, "taken by another publisher");
        return false;
    }
    r->lease_expires = expires;
    r->lease_renewed = now;
    relay_wrote(r);
    return true;
}

static void relay_lease_won(struct relay *r, long long now, const char *previous, bool expired)
{
    struct log_field f[] = {LOG_STR("holder", r->holder),
                             LOG_STR("previous_holder", previous[0] != '\0' ? previous : NULL),
                             LOG_INT("lease_ms", r->cfg->lease_ms)};

    r->leased = true;
    r->lease_expires = now + r->cfg->lease_ms;
    r->lease_renewed = now;
    r->lease_wait_started = 0;
    r->next_prune = now; /* housekeeping at start, then once a minute */
    r->quiet = false;
    relay_wrote(r);
    log_emit(log_process(), LOG_INFO, NULL, expired ? "lease taken over from an expired holder" : "lease acquired",
         f, LOG_COUNT(f));
}

/* One attempt: a read first, so that a standby does not queue for the
 * write lock every time the holder commits.  When someone else holds the
 * lease, other/other_expires say who and until when. */
static int relay_lease_try(struct relay *r, long long now, char *other, size_t other_len,
                           long long *other_expires)
{
    long long expires = 0;
    bool present = false, acquired = false;

    if (store_lease_peek(r->st, other, other_len, &expires, &present) != 0)
        return -1;
    if (present && strcmp(other, r->holder) != 0 && expires > now) {
        *other_expires = expires;
        return 0;
    }
    if (store_lease_acquire(r->st, r->holder, now, now + r->cfg->lease_ms, &acquired, other_expires) != 0)
        return -1;
    if (acquired)
        relay_lease_won(r, now, present ? other : "", present && strcmp(other, r->holder) != 0);
    return 0;
}

static void relay_lease_standby(struct relay *r, long long now, const char *other, long long other_expires)
{
    if (r->lease_wait_started == 0) {
        struct log_field f[] = {LOG_STR("holder", other), LOG_INT("expires_in_ms", other_expires - now)};
        log_emit(log_process(), LOG_INFO, NULL, "another publisher holds the lease; standing by",
                 f, LOG_COUNT(f));
        r->lease_wait_started = now;
    }
    /* A released lease shows up as a change; an expiring one at its time. */
    (void)wake_wait(r->wake, relay_min(r->cfg->poll_ms, other_expires - now + 1));
}

/* true: we hold the lease.  false: we waited (or must stop); try again.
 * *give_up is set when --once has waited long enough for a live holder. */
static bool relay_hold_lease(struct relay *r, bool *give_up)
{
    long long now = clock_now_ms(), other_expires = now + r->cfg->poll_ms;
    char other[256] = "";

    if (r->leased) {
        if (now - r->lease_renewed >= RELAY_RENEW_EVERY_MS)
            (void)relay_lease_renew(r, now);
        if (r->leased)
            return true;
    }
    if (relay_lease_try(r, now, other, sizeof(other), &other_expires) != 0) {
        relay_db_error(r, "acquiring the lease");
        (void)wake_wait(r->wake, r->cfg->poll_ms);
        return false;
    }
    if (r->leased)
        return true;
    /* A dead holder's lease lapses within lease_ms; one still renewing
     * after that is alive, and --once does not queue behind a daemon. */
    if (r->once && r->lease_wait_started != 0 &&
        now - r->lease_wait_started > r->cfg->lease_ms + r->cfg->poll_ms) {
        *give_up = true;
        return false;
    }
    relay_lease_standby(r, now, other, other_expires);
    return false;
}

/* Before a send: the lease must outlive it by a margin. */
static bool relay_lease_cover(struct relay *r)
{
    long long now = clock_now_ms();

    if (r->lease_expires - now >= sink_send_budget_ms(r->sink) + RELAY_LEASE_MARGIN_MS)
        return true;
    return relay_lease_renew(r, now);
}

static void relay_lease_release(struct relay *r)
{
    if (!r->leased)
        return;
    r->leased = false;
    if (store_lease_release(r->st, r->holder) != 0) {
        relay_db_error(r, "releasing the lease"); /* it expires by itself */
        return;
    }
    struct log_field f[] = {LOG_STR("holder", r->holder)};
    log_emit(log_process(), LOG_INFO, NULL, "lease released", f, LOG_COUNT(f));
}

/* ---- housekeeping ------------------------------------------------------- */

/* Short transactions of RELAY_PRUNE_CHUNK rows each so that workers never
 * wait long for the write lock; a big backlog is worked off over several
 * rounds, a minute apart. */
static void relay_prune(struct relay *r)
{
    long long now = clock_now_ms(), total = 0;
    int deleted = RELAY_PRUNE_CHUNK;

    if (r->cfg->retention_ms == 0 || now < r->next_prune)
        return;
    r->next_prune = now + RELAY_PRUNE_EVERY_MS;
    for (int i = 0; i < RELAY_PRUNE_MAX_CHUNKS && deleted == RELAY_PRUNE_CHUNK; i++) {
        if (wake_stop_requested(r->wake))
            break;
        if (store_outbox_prune(r->st, now - r->cfg->retention_ms, RELAY_PRUNE_CHUNK, &deleted) != 0) {
            relay_db_error(r, "pruning delivered events");
            return;
        }
        total += deleted;
    }
    relay_wrote(r);
    if (total > 0) {
        struct log_field f[] = {LOG_INT("deleted", total),
                                 LOG_INT("retention_hours", r->cfg->retention_ms / 3600000LL)};
        log_emit(log_process(), LOG_INFO, NULL, "pruned delivered events", f, LOG_COUNT(f));
    }
}

/* ---- one batch ---------------------------------------------------------- */

static long long relay_backoff_ms(const struct publisher_config *cfg, long long attempts, long long retry_after)
{
    long long d = cfg->backoff_base_ms;

    for (long long i = 1; i < attempts && d < cfg->backoff_cap_ms; i++)
        d *= 2;
    d = relay_min(d, cfg->backoff_cap_ms);
    if (retry_after > d)
        d = relay_min(retry_after, cfg->backoff_cap_ms);
    return d;
}

/* The trace of the request that caused the event, as the line's trace_id,
 * so the operator can join publisher lines to the worker's; "" when there
 * is none. */
static void relay_trace(const struct outbox_event *ev, struct trace_context *tc)
{
    memset(tc, 0, sizeof *tc);
    if (ev->traceparent != NULL && strlen(ev->traceparent) >= 35 && ev->traceparent[2] == '-') {
        memcpy(tc->trace_id, ev->traceparent + 3, 32);
        tc->trace_id[32] = '\0';
    }
}

static void relay_log_failure(struct relay *r, const struct outbox_event *ev,
                              const struct outbox_failure *f, long long now)
{
    struct trace_context tc;

    relay_trace(ev, &tc);
    if (f->parked_at != 0) {
        struct log_field lf[] = {
            LOG_STR("event_id", ev->id), LOG_INT("seq", ev->seq), LOG_STR("type", ev->type),
            LOG_INT("attempts", f->attempts), LOG_STR("error", f->error),
            LOG_INT("parked_total", r->parked_total)};
        log_emit(log_process(), LOG_ERROR, &tc,
                 "event parked: the sink keeps rejecting it; later events go on", lf, LOG_COUNT(lf));
        return;
    }
    struct log_field lf[] = {
        LOG_STR("event_id", ev->id), LOG_INT("seq", ev->seq), LOG_INT("attempts", f->attempts),
        LOG_STR("error", f->error), LOG_INT("retry_in_ms", f->next_attempt_at - now)};
    log_emit(log_process(), LOG_WARN, &tc, "delivery failed; will retry", lf, LOG_COUNT(lf));
}

static void relay_failure_for(struct relay *r, const struct outbox_event *ev,
                              const struct sink_result *res, long long now, struct outbox_failure *f)
{
    f->seq = ev->seq;
    f->attempts = ev->attempts + 1;
    f->error = res->error;
    f->parked_at = 0;
    f->next_attempt_at = 0;
    if (res->status == SINK_REJECTED && f->attempts >= r->cfg->max_attempts)
        f->parked_at = now;
    else
        f->next_attempt_at = now + relay_backoff_ms(r->cfg, f->attempts, res->retry_after_ms);
}

/* Records the outcome of a batch: acked events delivered, the failed one
 * (if any) rescheduled or parked, and the lease renewed, atomically. */
static enum relay_step relay_record(struct relay *r, int acked, int failed,
                                    const struct sink_result *res)
{
    long long now = clock_now_ms();
    struct outbox_failure f;
    bool kept = true;
    struct outbox_commit c = {.delivered = r->acked, .delivered_count = acked, .delivered_at = now,
                              .holder = r->holder, .lease_expires_at = now + r->cfg->lease_ms,
                              .sink = sink_name(r->sink)};

    if (failed >= 0) {
        relay_failure_for(r, &r->batch.events[failed], res, now, &f);
        c.failure = &f;
    }
    if (store_outbox_commit(r->st, &c, &kept) != 0) {
        relay_db_error(r, "recording deliveries"); /* they will be sent again */
        return STEP_ERROR;
    }
    relay_wrote(r);
    if (kept) {
        r->lease_expires = c.lease_expires_at;
        r->lease_renewed = now;
    }
    r->delivered_total += acked;
    if (acked > 0) {
        struct log_field lf[] = {LOG_INT("count", acked), LOG_INT("first_seq", r->acked[0]),
                                  LOG_INT("last_seq", r->acked[acked - 1])};
        log_emit(log_process(), LOG_DEBUG, NULL, "delivered", lf, LOG_COUNT(lf));
    }
    if (failed >= 0) {
        r->parked_total += f.parked_at != 0;
        relay_log_failure(r, &r->batch.events[failed], &f, now);
    }
    if (!kept && r->leased)
        relay_lease_lost(r, "taken by another publisher during the batch");
    if (failed >= 0 && res->status == SINK_RETRY)
        return STEP_SINK_DOWN;
    return STEP_WORKED;
}

/* Renders events from index first on, at most max of them, into r->msgs;
 * stops before an event that cannot be rendered.  Returns how many were
 * rendered; 0 means events[first] itself failed, as res says. */
static int relay_render(struct relay *r, int first, int max, struct sink_result *res)
{
    int n = 0;

    for (int i = first; i < r->batch.count && n < max; i++, n++) {
        const struct outbox_event *ev = &r->batch.events[i];
        size_t len = 0;

        if (i > first && ev->next_attempt_at > clock_now_ms())
            break;
        switch (cloudevent_render(ev, &r->rendered[n], &len)) {
        case CLOUDEVENT_OK:
            break;
        case CLOUDEVENT_INVALID:
            if (n == 0) {
                /* Counted as a rejection rather than parked at once: cJSON
                 * cannot tell bad JSON from a failed allocation, and
                 * retrying costs little. */
                res->status = SINK_REJECTED;
                res->retry_after_ms = 0;
                snprintf(res->error, sizeof(res->error), "data column is not valid JSON");
            }
            return n;
        case CLOUDEVENT_NOMEM:
            if (n == 0) {
                res->status = SINK_RETRY;
                res->retry_after_ms = 0;
                snprintf(res->error, sizeof(res->error), "out of memory rendering the event");
            }
            return n;
        }
        r->msgs[n] = (struct sink_message){.id = ev->id, .type = ev->type, .source = ev->source,
                                   .subject = ev->subject, .time = ev->time,
                                   .traceparent = ev->traceparent, .envelope = r->rendered[n],
                                   .envelope_len = len, .data = ev->data,
                                   .data_len = strlen(ev->data)};
    }
    return n;
}

static void relay_unrender(struct relay *r, int n)
{
    for (int i = 0; i < n; i++) {
        cloudevent_free(r->rendered[i]);
        r->rendered[i] = NULL;
    }
}

/* Hands the batch to the sink in calls of at most sink_max_batch events,
 * from the head, until one is not acknowledged, the lease cannot cover
 * another call, or a stop was asked for.  Returns how many were acked;
 * *failed is the index of the event that was not, or -1. */
static int relay_send_batch(struct relay *r, struct sink_result *res, int *failed)
{
    int acked = 0;

    *failed = -1;
    while (acked < r->batch.count) {
        int n, got, max = sink_max_batch(r->sink); /* an adapter may narrow it */

        if (acked > 0 && (r->batch.events[acked].next_attempt_at > clock_now_ms() ||
                          wake_stop_requested(r->wake)))
            break;
        if (!relay_lease_cover(r))
            break;
        n = relay_render(r, acked, max, res);
        got = n > 0 ? sink_send(r->sink, r->msgs, n, res) : 0;
        relay_unrender(r, n);
        for (int i = 0; i < got; i++)
            r->acked[acked + i] = r->batch.events[acked + i].seq;
        acked += got;
        if (got < n || n == 0) {
            *failed = acked;
            break;
        }
    }
    return acked;
}

static enum relay_step relay_deliver(struct relay *r)
{
    struct sink_result res = {.status = SINK_OK};
    int failed = -1, acked = relay_send_batch(r, &res, &failed);

    if (acked == 0 && failed < 0)
        return STEP_ERROR; /* the lease could not cover a send */
    return relay_record(r, acked, failed, &res);
}

static enum relay_step relay_step(struct relay *r)
{
    long long version;

    if (store_data_version(r->st, &version) != 0 ||
        store_outbox_fetch(r->st, r->cfg->batch, clock_now_ms(), &r->batch) != 0) {
        relay_db_error(r, "reading events");
        return STEP_ERROR;
    }
    r->settle_ms = 0;
    r->check_now = false;
    if (r->batch.count == 0 || r->batch.events[0].next_attempt_at > clock_now_ms()) {
        r->quiet = true;
        r->quiet_version = version;
        r->due_at = r->batch.count == 0 ? r->batch.next_due : r->batch.events[0].next_attempt_at;
        return STEP_IDLE;
    }
    return relay_deliver(r);
}

/* ---- sleeping ----------------------------------------------------------- */

static long long relay_idle_timeout(const struct relay *r, long long now)
{
    long long t = r->cfg->poll_ms;

    if (r->check_now)
        return 0;
    if (r->due_at != 0)
        t = relay_min(t, r->due_at - now);
    if (r->leased)
        t = relay_min(t, r->lease_renewed + RELAY_RENEW_EVERY_MS - now);
    if (r->settle_ms != 0)
        t = relay_min(t, r->settle_ms);
    return t > 0 ? t : 0;
}

/* After a change notice whose commit is not visible yet, look again soon. */
static void relay_settle(struct relay *r, enum wake_reason why, long long now)
{
    if (why == WAKE_CHANGE) {
        if (r->settle_ms == 0)
            r->settle_until = now + RELAY_SETTLE_FOR_MS;
        r->settle_ms = 1;
    } else if (r->settle_ms != 0) {
        r->settle_ms = now >= r->settle_until ? 0 : relay_min(r->settle_ms * 2, RELAY_SETTLE_STEP_MS);
    }
}

/* Sleeps while quiet; leaves quiet when another connection committed or the
 * head's backoff is over. */
static void relay_idle(struct relay *r)
{
    enum wake_reason why = wake_wait(r->wake, relay_idle_timeout(r, clock_now_ms()));
    long long version, now;

    r->check_now = false;
    if (why == WAKE_STOP)
        return;
    if (store_data_version(r->st, &version) != 0) {
        relay_db_error(r, "reading data_version");
        r->quiet = false; /* let the fetch report or recover */
        return;
    }
    now = clock_now_ms();
    if (version != r->quiet_version || (r->due_at != 0 && now >= r->due_at)) {
        r->quiet = false;
        return;
    }
    relay_settle(r, why, now);
}

/* ---- the loop ----------------------------------------------------------- */

static void relay_log_stop(struct relay *r, const char *message)
{
    const char *sig = wake_stop_signal(r->wake);
    struct log_field f[] = {LOG_STR("signal", sig), LOG_INT("delivered", r->delivered_total),
                             LOG_INT("parked", r->parked_total)};
    log_emit(log_process(), LOG_INFO, NULL, message, f, LOG_COUNT(f));
}

/* What --once makes of a step; -1: carry on. */
static int relay_once_exit(struct relay *r, enum relay_step step)
{
    if (step == STEP_IDLE && r->due_at == 0)
        return RELAY_EXIT_OK;
    if (step == STEP_SINK_DOWN || step == STEP_ERROR) {
        log_emit(log_process(), LOG_ERROR, NULL, "--once: stopping with events left undelivered",
                 NULL, 0);
        return RELAY_EXIT_FAILED;
    }
    return -1;
}

static int relay_loop(struct relay *r)
{
    while (!wake_stop_requested(r->wake)) {
        bool give_up = false;
        enum relay_step step;
        int code;

        if (!relay_hold_lease(r, &give_up)) {
            if (give_up) {
                log_emit(log_process(), LOG_ERROR, NULL,
                         "--once: another live publisher holds the lease", NULL, 0);
                return RELAY_EXIT_LEASE;
            }
            continue;
        }
        relay_prune(r);
        if (r->quiet) {
            relay_idle(r);
            continue;
        }
        step = relay_step(r);
        if (r->once && (code = relay_once_exit(r, step)) >= 0)
            return code;
        if (step == STEP_ERROR)
            (void)wake_wait(r->wake, r->cfg->poll_ms);
    }
    return RELAY_EXIT_OK;
}

enum relay_exit relay_run(const struct publisher_config *cfg, struct store *st, struct sink *sink,
                          struct wake *w, bool once)
{
    struct relay r = {.cfg = cfg, .st = st, .sink = sink, .wake = w, .once = once};
    int code;

    r.acked = calloc((size_t)cfg->batch, sizeof(*r.acked));
    r.msgs = calloc((size_t)cfg->batch, sizeof(*r.msgs));
    r.rendered = calloc((size_t)cfg->batch, sizeof(*r.rendered));
    if (r.acked == NULL || r.msgs == NULL || r.rendered == NULL) {
        log_emit(log_process(), LOG_ERROR, NULL, "out of memory", NULL, 0);
        free(r.acked);
        free(r.msgs);
        free(r.rendered);
        return RELAY_EXIT_FAILED;
    }
    relay_make_holder(r.holder, sizeof(r.holder));
    code = relay_loop(&r);
    relay_lease_release(&r);
    relay_log_stop(&r, code == RELAY_EXIT_OK ? "publisher stopped" : "publisher stopped with events left");
    outbox_batch_free(&r.batch);
    free(r.acked);
    free(r.msgs);
    free(r.rendered);
    return (enum relay_exit)code;
}
