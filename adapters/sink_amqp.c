/*
 * sink_amqp.c - EVENT_SINK=amqp://user:pass@host:port/vhost?exchange=orders&mode=structured
 * (or amqps://, TLS verifying the broker's certificate and name against
 * cacert=PATH, default the system's CA bundle): RabbitMQ, AMQP 0-9-1, with
 * librabbitmq.
 *
 * What is sent.  One persistent message (delivery_mode 2) per event to the
 * exchange (a durable topic exchange, declared when missing), routing key =
 * the event type, mandatory (an unroutable message comes back), with
 * message_id = the event id, type, timestamp (seconds), app_id and
 * content_type.  Structured mode: the body is the whole CloudEvent,
 * application/cloudevents+json.  Binary mode (the CloudEvents AMQP binding):
 * the body is the data, application/json, and every other attribute is a
 * "cloudEvents_" header (cloudEvents_id, cloudEvents_source, ...; the
 * underscore form, which JMS and most clients accept in header names).
 *
 * Acknowledgement: publisher confirms.  A batch is published in one go,
 * then the confirms are awaited (one round trip per batch, not per event).
 * An event counts as delivered only when its basic.ack arrived and no
 * basic.return came for it before.  A basic.nack, a basic.return (no queue
 * bound for the routing key: 312 NO_ROUTE), a channel or connection closed
 * by the broker, a lost connection or no confirm within
 * PUBLISHER_HTTP_TIMEOUT_MS: the events from the first one without an ack
 * on are not delivered and are sent again later, in order, on a new
 * connection (a closed channel or a timeout leaves the connection in an
 * unknown state, so it is always replaced).
 *
 * Poison.  RabbitMQ has no answer about one message except refusing it for
 * its size, which closes the channel with 406 PRECONDITION_FAILED; every
 * other failure (nack, return, 403 ACCESS_REFUSED, 404 NOT_FOUND for a
 * missing vhost, connection trouble) is the sink's and is retried forever.
 * A 406 while publishing a batch cannot say which message it was about, so
 * the next attempt sends the head event alone; a 406 for a lone message is
 * a rejection of that event (parked after PUBLISHER_MAX_ATTEMPTS).
 *
 * Known limit: a broker that stops reading its socket (RabbitMQ's memory
 * or disk alarm blocks publishers that way) can hold a publish past the
 * budget; the lease may then pass to a standby, costing duplicates, never
 * losses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "sink_util.h"
#include "sinks.h"

#define SINK_AMQP_CHANNEL 1
#define SINK_AMQP_DEFAULT_CACERT "/etc/ssl/certs/ca-certificates.crt"
#define SINK_AMQP_HEADERS 7
/* Messages published before waiting for their confirms. */
#define SINK_AMQP_BATCH 1000

static const char *const sink_amqp_params[] = {"exchange", "mode", "cacert", NULL};

struct sink_amqp {
    struct sink base;
    char *base_url;              /* amqp_parse_url points into it */
    struct amqp_connection_info info;
    char *exchange;
    char *cacert;
    bool binary;
    long long connect_timeout_ms, timeout_ms;
    amqp_connection_state_t conn; /* NULL: not connected */
    uint64_t next_tag;           /* delivery tag of the next publish */
    /* one batch's outcome, per message */
    int cap;
    unsigned char *acked, *failed;
    struct sink_why why;         /* the first failure, for the result */
};

static long long sink_amqp_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

static struct timeval sink_amqp_tv(long long ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* ---- the URL ------------------------------------------------------------ */

/* Parses spec into s (when not NULL).  amqp_parse_url works in place, so
 * the copy it parsed must outlive info. */
static int sink_amqp_parse(const char *spec, struct sink_amqp *s, char *err, size_t errlen)
{
    struct amqp_connection_info info;
    char *base = sink_url_base(spec);
    int binary = 0;

    if (base == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    amqp_default_connection_info(&info);
    /* amqp_parse_url's own error says nothing but "bad URL"; it never
     * repeats the URL. */
    if (!sink_url_has_host(spec) || amqp_parse_url(base, &info) != AMQP_STATUS_OK ||
        info.host[0] == '\0') {
        snprintf(err, errlen, "EVENT_SINK: malformed amqp(s) URL (amqp://user:password@host:port/vhost)");
        free(base);
        return -1;
    }
    if (sink_query_check(spec, "amqp", sink_amqp_params, err, errlen) != 0 ||
        sink_query_mode(spec, &binary, err, errlen) != 0) {
        free(base);
        return -1;
    }
    if (s == NULL) {
        free(base);
        return 0;
    }
    /* "amqp://host/" names the empty vhost by the letter of the AMQP URI
     * spec, which RabbitMQ does not have: take it, like most clients, as
     * the default vhost "/" (write %2f to be explicit). */
    if (info.vhost[0] == '\0')
        info.vhost = "/";
    s->base_url = base;
    s->info = info;
    s->why.secrets[0] = s->info.password;
    s->why.secrets[1] = s->info.user;
    s->binary = binary != 0;
    s->exchange = sink_query_get(spec, "exchange", NULL);
    if (s->exchange == NULL)
        s->exchange = strdup("orders");
    s->cacert = sink_query_get(spec, "cacert", NULL);
    if (s->cacert == NULL)
        s->cacert = strdup(SINK_AMQP_DEFAULT_CACERT);
    if (s->exchange == NULL || s->cacert == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int sink_amqp_check(const char *spec, char *err, size_t errlen)
{
    return sink_amqp_parse(spec, NULL, err, errlen);
}

/* ---- errors ------------------------------------------------------------- */

/* The broker's words for a closed channel or connection. */
static void sink_amqp_why_close(struct sink_amqp *s, const char *what, uint16_t code, amqp_bytes_t text)
{
    sink_why_note(&s->why, "the broker closed the %s: %u %.*s", what, code,
                  (int)(text.len > 150 ? 150 : text.len), (const char *)text.bytes);
}

/* Whether an RPC succeeded; if not, says why (and which step). */
static bool sink_amqp_rpc_ok(struct sink_amqp *s, amqp_rpc_reply_t reply, const char *step)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return true;
    case AMQP_RESPONSE_NONE:
        sink_why_note(&s->why, "%s: no reply", step);
        return false;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        sink_why_note(&s->why, "%s: %s", step, amqp_error_string2(reply.library_error));
        return false;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *c = reply.reply.decoded;
            sink_why_note(&s->why, "%s: the broker closed the connection: %u %.*s", step, c->reply_code,
                          (int)(c->reply_text.len > 150 ? 150 : c->reply_text.len),
                          (const char *)c->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *c = reply.reply.decoded;
            sink_why_note(&s->why, "%s: the broker closed the channel: %u %.*s", step, c->reply_code,
                          (int)(c->reply_text.len > 150 ? 150 : c->reply_text.len),
                          (const char *)c->reply_text.bytes);
        } else {
            sink_why_note(&s->why, "%s: unexpected answer from the broker", step);
        }
        return false;
    }
    return false;
}

/* ---- the connection ----------------------------------------------------- */

static void sink_amqp_drop(struct sink_amqp *s)
{
    if (s->conn != NULL)
        (void)amqp_destroy_connection(s->conn); /* closes the socket */
    s->conn = NULL;
}

static bool sink_amqp_socket(struct sink_amqp *s, long long deadline)
{
    amqp_socket_t *sock;
    struct timeval tv;
    int rc;

    if (s->info.ssl) {
        sock = amqp_ssl_socket_new(s->conn);
        if (sock == NULL) {
            sink_why_note(&s->why, "cannot set up TLS");
            return false;
        }
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        rc = amqp_ssl_socket_set_cacert(sock, s->cacert);
        if (rc != AMQP_STATUS_OK) {
            sink_why_note(&s->why, "loading the CA certificates %s: %s", s->cacert, amqp_error_string2(rc));
            return false;
        }
    } else {
        sock = amqp_tcp_socket_new(s->conn);
        if (sock == NULL) {
            sink_why_note(&s->why, "cannot set up a socket");
            return false;
        }
    }
    tv = sink_amqp_tv(deadline - sink_amqp_now_ms() < s->connect_timeout_ms
                          ? deadline - sink_amqp_now_ms()
                          : s->connect_timeout_ms);
    rc = amqp_socket_open_noblock(sock, s->info.host, s->info.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        sink_why_note(&s->why, "connecting to %s:%d: %s", s->info.host, s->info.port, amqp_error_string2(rc));
        return false;
    }
    return true;
}

/* Connects, logs in, opens a confirming channel and declares the exchange,
 * all before deadline. */
static bool sink_amqp_connect(struct sink_amqp *s, long long deadline)
{
    struct timeval tv;

    s->conn = amqp_new_connection();
    if (s->conn == NULL) {
        sink_why_note(&s->why, "out of memory");
        return false;
    }
    if (!sink_amqp_socket(s, deadline))
        goto fail;
    tv = sink_amqp_tv(deadline - sink_amqp_now_ms());
    if (amqp_set_handshake_timeout(s->conn, &tv) != AMQP_STATUS_OK ||
        amqp_set_rpc_timeout(s->conn, &tv) != AMQP_STATUS_OK) {
        sink_why_note(&s->why, "cannot set timeouts");
        goto fail;
    }
    /* No heartbeat: the publisher may sleep for minutes between events,
     * and a dead connection shows on the next publish anyway. */
    if (!sink_amqp_rpc_ok(s, amqp_login(s->conn, s->info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                        s->info.user, s->info.password),
                          "logging in"))
        goto fail;
    amqp_channel_open(s->conn, SINK_AMQP_CHANNEL);
    if (!sink_amqp_rpc_ok(s, amqp_get_rpc_reply(s->conn), "opening a channel"))
        goto fail;
    amqp_confirm_select(s->conn, SINK_AMQP_CHANNEL);
    if (!sink_amqp_rpc_ok(s, amqp_get_rpc_reply(s->conn), "turning on publisher confirms"))
        goto fail;
    amqp_exchange_declare(s->conn, SINK_AMQP_CHANNEL, amqp_cstring_bytes(s->exchange),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (!sink_amqp_rpc_ok(s, amqp_get_rpc_reply(s->conn), "declaring the exchange"))
        goto fail;
    s->next_tag = 1;
    return true;
fail:
    sink_amqp_drop(s);
    return false;
}

/* ---- one batch ---------------------------------------------------------- */

static uint64_t sink_amqp_timestamp(const char *rfc3339)
{
    struct tm tm = {0};
    const char *end = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
    time_t t;

    if (end == NULL)
        return 0;
    t = timegm(&tm);
    return t < 0 ? 0 : (uint64_t)t;
}

static amqp_table_entry_t sink_amqp_header(const char *key, const char *value)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

static int sink_amqp_publish(struct sink_amqp *s, const struct sink_message *m)
{
    amqp_table_entry_t headers[SINK_AMQP_HEADERS];
    amqp_basic_properties_t p = {0};
    amqp_bytes_t body;
    int n = 0;

    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
               AMQP_BASIC_APP_ID_FLAG;
    p.delivery_mode = 2; /* persistent */
    p.message_id = amqp_cstring_bytes(m->id);
    p.type = amqp_cstring_bytes(m->type);
    p.timestamp = sink_amqp_timestamp(m->time);
    p.app_id = amqp_cstring_bytes("orders-publisher");
    if (s->binary) {
        headers[n++] = sink_amqp_header("cloudEvents_specversion", "1.0");
        headers[n++] = sink_amqp_header("cloudEvents_id", m->id);
        headers[n++] = sink_amqp_header("cloudEvents_source", m->source);
        headers[n++] = sink_amqp_header("cloudEvents_type", m->type);
        headers[n++] = sink_amqp_header("cloudEvents_subject", m->subject);
        headers[n++] = sink_amqp_header("cloudEvents_time", m->time);
        if (m->traceparent != NULL)
            headers[n++] = sink_amqp_header("cloudEvents_traceparent", m->traceparent);
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers.num_entries = n;
        p.headers.entries = headers;
        p.content_type = amqp_cstring_bytes("application/json");
        body = (amqp_bytes_t){.len = m->data_len, .bytes = (void *)m->data};
    } else {
        p.content_type = amqp_cstring_bytes("application/cloudevents+json");
        body = (amqp_bytes_t){.len = m->envelope_len, .bytes = (void *)m->envelope};
    }
    return amqp_basic_publish(s->conn, SINK_AMQP_CHANNEL, amqp_cstring_bytes(s->exchange),
                              amqp_cstring_bytes(m->type), 1, 0, &p, body);
}

static int sink_amqp_grow(struct sink_amqp *s, int count)
{
    unsigned char *a, *f;

    if (count <= s->cap)
        return 0;
    a = realloc(s->acked, (size_t)count);
    if (a == NULL)
        return -1;
    s->acked = a;
    f = realloc(s->failed, (size_t)count);
    if (f == NULL)
        return -1;
    s->failed = f;
    s->cap = count;
    return 0;
}

/* Marks the tags an ack or nack covers; returns how many were new. */
static int sink_amqp_settle(struct sink_amqp *s, uint64_t first, int count, uint64_t tag,
                            bool multiple, bool ack)
{
    int settled = 0;

    for (int i = 0; i < count; i++) {
        uint64_t t = first + (uint64_t)i;

        if (t > tag || (!multiple && t != tag) || s->acked[i] || s->failed[i] == 1)
            continue;
        if (ack)
            s->acked[i] = 1;
        else
            s->failed[i] = 1;
        settled++;
    }
    return settled;
}

/* A basic.return: the message follows; find which one by its message_id. */
static bool sink_amqp_returned(struct sink_amqp *s, const struct sink_message *msgs, int count,
                               const amqp_basic_return_t *ret)
{
    amqp_message_t msg;
    amqp_rpc_reply_t reply;

    sink_why_note(&s->why, "returned by the broker: %u %.*s (exchange %s, routing key %.*s)", ret->reply_code,
                  (int)(ret->reply_text.len > 80 ? 80 : ret->reply_text.len),
                  (const char *)ret->reply_text.bytes, s->exchange,
                  (int)(ret->routing_key.len > 60 ? 60 : ret->routing_key.len),
                  (const char *)ret->routing_key.bytes);
    reply = amqp_read_message(s->conn, SINK_AMQP_CHANNEL, &msg, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
        return false;
    for (int i = 0; i < count; i++) {
        const amqp_bytes_t *id = &msg.properties.message_id;

        if ((msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) && id->len == strlen(msgs[i].id) &&
            memcmp(id->bytes, msgs[i].id, id->len) == 0)
            s->failed[i] = 2; /* returned: its ack, which follows, does not count */
    }
    amqp_destroy_message(&msg);
    return true;
}

enum sink_amqp_wait { WAIT_DONE, WAIT_BROKEN, WAIT_REJECTED };

/* Reads confirms until every message of the batch is settled, the
 * connection breaks or the deadline passes. */
static enum sink_amqp_wait sink_amqp_confirms(struct sink_amqp *s, const struct sink_message *msgs,
                                              int count, uint64_t first, long long deadline)
{
    int open = count;

    while (open > 0) {
        amqp_frame_t frame;
        struct timeval tv;
        long long left = deadline - sink_amqp_now_ms();
        int rc;

        if (left <= 0) {
            sink_why_note(&s->why, "no confirm from the broker within %lld ms", s->timeout_ms);
            return WAIT_BROKEN;
        }
        tv = sink_amqp_tv(left);
        amqp_maybe_release_buffers(s->conn);
        rc = amqp_simple_wait_frame_noblock(s->conn, &frame, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            sink_why_note(&s->why, "waiting for confirms: %s", amqp_error_string2(rc));
            return WAIT_BROKEN;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *a = frame.payload.method.decoded;
            open -= sink_amqp_settle(s, first, count, a->delivery_tag, a->multiple, true);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *n = frame.payload.method.decoded;
            sink_why_note(&s->why, "the broker could not take the message (basic.nack)");
            open -= sink_amqp_settle(s, first, count, n->delivery_tag, n->multiple, false);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            if (!sink_amqp_returned(s, msgs, count, frame.payload.method.decoded))
                return WAIT_BROKEN;
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            const amqp_channel_close_t *c = frame.payload.method.decoded;
            sink_amqp_why_close(s, "channel", c->reply_code, c->reply_text);
            return c->reply_code == AMQP_PRECONDITION_FAILED ? WAIT_REJECTED : WAIT_BROKEN;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            const amqp_connection_close_t *c = frame.payload.method.decoded;
            sink_amqp_why_close(s, "connection", c->reply_code, c->reply_text);
            return WAIT_BROKEN;
        }
        default:
            break;
        }
    }
    return WAIT_DONE;
}

static int sink_amqp_send(struct sink *base, const struct sink_message *msgs, int count,
                          struct sink_result *r)
{
    struct sink_amqp *s = (struct sink_amqp *)base;
    long long deadline = sink_amqp_now_ms() + s->timeout_ms;
    enum sink_amqp_wait waited = WAIT_BROKEN;
    uint64_t first;
    int n = count, acked = 0;

    sink_why_clear(&s->why);
    if (sink_amqp_grow(s, n) != 0) {
        sink_result_set(r, SINK_RETRY, "out of memory");
        return 0;
    }
    memset(s->acked, 0, (size_t)n);
    memset(s->failed, 0, (size_t)n);
    if (s->conn == NULL && !sink_amqp_connect(s, deadline)) {
        sink_result_set(r, SINK_RETRY, "%s", s->why.text);
        return 0;
    }
    first = s->next_tag;
    for (int i = 0; i < n; i++) {
        int rc = sink_amqp_publish(s, &msgs[i]);

        if (rc != AMQP_STATUS_OK) {
            sink_why_note(&s->why, "publishing: %s", amqp_error_string2(rc));
            n = i; /* the ones before may still be confirmed */
            break;
        }
        s->next_tag++;
    }
    if (n > 0)
        waited = sink_amqp_confirms(s, msgs, n, first, deadline);
    while (acked < n && s->acked[acked] && s->failed[acked] == 0)
        acked++;
    if (waited != WAIT_DONE || acked < count)
        sink_amqp_drop(s); /* its state is unknown, or the channel is gone */
    s->base.max_batch = SINK_AMQP_BATCH;
    if (acked == count) {
        sink_result_ok(r);
        return count;
    }
    if (waited == WAIT_REJECTED && n == 1 && acked == 0) {
        sink_result_set(r, SINK_REJECTED, "%s", s->why.text);
        return 0;
    }
    if (waited == WAIT_REJECTED)
        s->base.max_batch = 1; /* the next call finds out which event it was about */
    sink_result_set(r, SINK_RETRY, "%s", s->why.text[0] != '\0' ? s->why.text : "not confirmed");
    return acked;
}

/* ---- life cycle ---------------------------------------------------------- */

static void sink_amqp_close(struct sink *base)
{
    struct sink_amqp *s = (struct sink_amqp *)base;

    if (s->conn != NULL) {
        /* Everything acknowledged is confirmed already: a polite close,
         * bounded by the RPC timeout, then the socket goes. */
        (void)amqp_channel_close(s->conn, SINK_AMQP_CHANNEL, AMQP_REPLY_SUCCESS);
        (void)amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
        sink_amqp_drop(s);
    }
    free(s->acked);
    free(s->failed);
    free(s->exchange);
    free(s->cacert);
    free(s->base_url);
    free(s);
}

static int sink_amqp_open(struct sink **out, const char *spec, const struct sink_options *opt,
                          char *err, size_t errlen)
{
    static const char *const shown[] = {"exchange", "mode", "cacert", NULL};
    struct sink_amqp *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (sink_amqp_parse(spec, s, err, errlen) != 0) {
        sink_amqp_close(&s->base);
        return -1;
    }
    s->base.adapter = &sink_amqp_adapter;
    s->base.max_batch = SINK_AMQP_BATCH;
    s->base.send_budget_ms = opt->timeout_ms;
    s->connect_timeout_ms = opt->connect_timeout_ms;
    s->timeout_ms = opt->timeout_ms;
    sink_url_describe(spec, shown, s->base.describe, sizeof(s->base.describe));
    /* Connecting waits for the first batch: a broker that is down at start
     * is retried like one that goes down later. */
    *out = &s->base;
    return 0;
}

const struct sink_adapter sink_amqp_adapter = {
    .name = "amqp",
    .check = sink_amqp_check,
    .open = sink_amqp_open,
    .send = sink_amqp_send,
    .close = sink_amqp_close,
};
