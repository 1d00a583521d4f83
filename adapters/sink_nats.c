/*
 * sink_nats.c - EVENT_SINK=nats://user:pass@host:4222?subject=orders.events&stream=ORDERS&mode=structured
 * (or tls://, verifying the server's certificate against cacert=PATH, by
 * default the system's CA bundle): NATS JetStream, with nats.c.
 *
 * What is sent.  One message per event on the subject (default
 * orders.events) with the header Nats-Msg-Id = the event id, so the stream
 * drops a redelivery within its duplicate window (two minutes by default).
 * Structured mode: the body is the whole CloudEvent, header content-type
 * application/cloudevents+json.  Binary mode: the body is the data,
 * content-type application/json, the other attributes in ce-* headers
 * (ce-specversion, ce-id, ce-source, ce-type, ce-subject, ce-time,
 * ce-traceparent), as the CloudEvents NATS binding names them.
 *
 * Acknowledgement: a batch is published asynchronously, then the stream's
 * publish acknowledgements are awaited together; an event counts as
 * delivered only on its own positive acknowledgement (a duplicate's counts:
 * the stream already holds it).
 *
 * The stream.  With stream=NAME the publisher creates a file-backed stream
 * of that name capturing the subject when it does not exist (checked on
 * each connection).  Without it the stream is the operator's: when none
 * captures the subject, the server answers "no responders", which is
 * retried (and logged by the relay as a failed delivery) until one does;
 * nothing is dropped.
 *
 * Poison.  The only answers about one event are a message over the
 * server's max_payload (refused by the client library before sending) and
 * JetStream's 10054 "message size exceeds maximum allowed" for the stream:
 * rejections, parked after PUBLISHER_MAX_ATTEMPTS.  Everything else (no
 * responders, timeouts, closed connections, other JetStream errors) is the
 * sink's and retried forever, on a new connection.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <nats/nats.h>

#include "sink_util.h"
#include "sinks.h"

#define SINK_NATS_DEFAULT_CACERT "/etc/ssl/certs/ca-certificates.crt"
/* Messages published before waiting for their acknowledgements. */
#define SINK_NATS_BATCH 1000

enum sink_nats_state { NATS_PENDING, NATS_ACKED, NATS_FAILED };

static const char *const sink_nats_params[] = {"subject", "stream", "mode", "cacert", NULL};

struct sink_nats {
    struct sink base;
    char *url;             /* without the query: nats.c reads credentials from it */
    char *subject, *stream, *cacert;
    bool binary, tls;
    long long connect_timeout_ms, timeout_ms;
    char *secrets[3];      /* user, password, token as written in the URL */
    char *host;            /* the name a TLS certificate must carry */
    natsConnection *nc;    /* NULL: not connected */
    jsCtx *js;
    /* One batch, shared with the acknowledgement callback (nats.c thread). */
    pthread_mutex_t lock;
    const struct sink_message *msgs;
    int count, cap;
    unsigned char *state;
    bool rejected;         /* the first failure is about its event */
    struct sink_why why;   /* the batch's first failure */
};

static long long sink_nats_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

/* ---- the URL ------------------------------------------------------------ */

static int sink_nats_check(const char *spec, char *err, size_t errlen)
{
    int binary = 0;

    if (!sink_url_has_host(spec)) {
        snprintf(err, errlen, "EVENT_SINK: malformed nats URL (nats://user:password@host:4222?subject=...)");
        return -1;
    }
    if (sink_query_check(spec, "nats", sink_nats_params, err, errlen) != 0 ||
        sink_query_mode(spec, &binary, err, errlen) != 0)
        return -1;
    return 0;
}

/* The credentials as written in the URL, to scrub from error texts, and
 * the host name. */
static int sink_nats_secrets(struct sink_nats *s)
{
    static const CURLUPart parts[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_PASSWORD};
    CURLU *u = curl_url();
    int rc = 0;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, s->url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(u);
        return -1;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && rc == 0; i++) {
        char *v = NULL;

        if (curl_url_get(u, parts[i], &v, i == 2 ? CURLU_URLDECODE : 0) == CURLUE_OK && v != NULL &&
            (s->secrets[i] = strdup(v)) == NULL)
            rc = -1;
        curl_free(v);
    }
    if (rc == 0) {
        char *v = NULL;

        if (curl_url_get(u, CURLUPART_HOST, &v, 0) != CURLUE_OK || (s->host = strdup(v)) == NULL)
            rc = -1;
        curl_free(v);
    }
    curl_url_cleanup(u);
    return rc;
}

/* ---- errors ------------------------------------------------------------- */

static void sink_nats_why_status(struct sink_nats *s, const char *step, natsStatus st)
{
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);

    sink_why_note(&s->why, "%s: %s%s%s", step, natsStatus_GetText(st),
                  detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
}

/* ---- the connection ----------------------------------------------------- */

static void sink_nats_drop(struct sink_nats *s)
{
    if (s->js != NULL)
        jsCtx_Destroy(s->js);
    if (s->nc != NULL) {
        natsConnection_Close(s->nc);
        natsConnection_Destroy(s->nc);
    }
    s->js = NULL;
    s->nc = NULL;
}

static void sink_nats_acked(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

static natsStatus sink_nats_options(struct sink_nats *s, natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);

    if (st == NATS_OK)
        st = natsOptions_SetURL(o, s->url);
    if (st == NATS_OK)
        st = natsOptions_SetName(o, "orders-publisher");
    if (st == NATS_OK)
        st = natsOptions_SetTimeout(o, s->connect_timeout_ms);
    /* Reconnecting is ours to do, between batches: a batch in flight must
     * fail and be sent again, not wait in a reconnect buffer. */
    if (st == NATS_OK)
        st = natsOptions_SetAllowReconnect(o, false);
    if (st == NATS_OK && s->tls)
        st = natsOptions_SetSecure(o, true);
    if (st == NATS_OK && s->tls)
        st = natsOptions_LoadCATrustedCertificates(o, s->cacert);
    /* The certificate must name the host of the URL, not just any host
     * the CA vouches for. */
    if (st == NATS_OK && s->tls)
        st = natsOptions_SetExpectedHostname(o, s->host);
    if (st != NATS_OK) {
        natsOptions_Destroy(o);
        o = NULL;
    }
    *out = o;
    return st;
}

/* With stream=, makes sure the stream exists. */
static bool sink_nats_stream(struct sink_nats *s)
{
    jsStreamInfo *si = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    const char *subjects[1] = {s->subject};
    natsStatus st;

    if (s->stream == NULL)
        return true;
    st = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);
    if (st == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return true;
    }
    if (st != NATS_NOT_FOUND) {
        sink_nats_why_status(s, "looking up the stream", st);
        return false;
    }
    jsStreamConfig_Init(&cfg);
    cfg.Name = s->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    st = js_AddStream(&si, s->js, &cfg, NULL, &jerr);
    if (st != NATS_OK) {
        sink_nats_why_status(s, "creating the stream", st);
        return false;
    }
    jsStreamInfo_Destroy(si);
    return true;
}

static bool sink_nats_connect(struct sink_nats *s, long long deadline)
{
    natsOptions *o = NULL;
    jsOptions jo;
    natsStatus st = sink_nats_options(s, &o);

    if (st == NATS_OK)
        st = natsConnection_Connect(&s->nc, o);
    natsOptions_Destroy(o);
    if (st != NATS_OK) {
        s->nc = NULL;
        sink_nats_why_status(s, "connecting", st);
        return false;
    }
    jsOptions_Init(&jo);
    jo.Wait = deadline - sink_nats_now_ms() > 1 ? deadline - sink_nats_now_ms() : 1;
    jo.PublishAsync.MaxPending = SINK_NATS_BATCH;
    jo.PublishAsync.AckHandler = sink_nats_acked;
    jo.PublishAsync.AckHandlerClosure = s;
    st = natsConnection_JetStream(&s->js, s->nc, &jo);
    if (st != NATS_OK) {
        s->js = NULL;
        sink_nats_why_status(s, "starting JetStream", st);
        sink_nats_drop(s);
        return false;
    }
    if (!sink_nats_stream(s)) {
        sink_nats_drop(s);
        return false;
    }
    return true;
}

/* ---- one batch ---------------------------------------------------------- */

/* nats.c calls this from its own thread, once per published message. */
static void sink_nats_acked(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct sink_nats *s = closure;
    const char *id = NULL;

    (void)js;
    (void)pa;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
        id = NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; id != NULL && i < s->count; i++) {
        if (s->state[i] != NATS_PENDING || strcmp(s->msgs[i].id, id) != 0)
            continue;
        if (pae == NULL) {
            s->state[i] = NATS_ACKED;
        } else {
            s->state[i] = NATS_FAILED;
            if (s->why.text[0] == '\0')
                s->rejected = pae->ErrCode == JSStreamMessageExceedsMaximumErr;
            if (pae->Err == NATS_NO_RESPONDERS)
                sink_why_note(&s->why, "no JetStream stream captures subject %s (create one, or add "
                                 "stream=NAME to EVENT_SINK)", s->subject);
            else
                sink_why_note(&s->why, "the stream refused the message: %s%s%s (%d)", natsStatus_GetText(pae->Err),
                              pae->ErrText != NULL ? ": " : "", pae->ErrText != NULL ? pae->ErrText : "",
                              (int)pae->ErrCode);
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    natsMsg_Destroy(msg);
}

static natsStatus sink_nats_header(natsMsg *m, const char *key, const char *value, natsStatus st)
{
    return st == NATS_OK ? natsMsgHeader_Set(m, key, value) : st;
}

static natsStatus sink_nats_message(struct sink_nats *s, const struct sink_message *e, natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus st;

    if (s->binary)
        st = natsMsg_Create(&m, s->subject, NULL, e->data, (int)e->data_len);
    else
        st = natsMsg_Create(&m, s->subject, NULL, e->envelope, (int)e->envelope_len);
    st = sink_nats_header(m, "Nats-Msg-Id", e->id, st);
    if (s->binary) {
        st = sink_nats_header(m, "content-type", "application/json", st);
        st = sink_nats_header(m, "ce-specversion", "1.0", st);
        st = sink_nats_header(m, "ce-id", e->id, st);
        st = sink_nats_header(m, "ce-source", e->source, st);
        st = sink_nats_header(m, "ce-type", e->type, st);
        st = sink_nats_header(m, "ce-subject", e->subject, st);
        st = sink_nats_header(m, "ce-time", e->time, st);
        if (e->traceparent != NULL)
            st = sink_nats_header(m, "ce-traceparent", e->traceparent, st);
    } else {
        st = sink_nats_header(m, "content-type", "application/cloudevents+json", st);
    }
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        m = NULL;
    }
    *out = m;
    return st;
}

static int sink_nats_grow(struct sink_nats *s, int count)
{
    unsigned char *p;

    if (count <= s->cap)
        return 0;
    p = realloc(s->state, (size_t)count);
    if (p == NULL)
        return -1;
    s->state = p;
    s->cap = count;
    return 0;
}

/* Publishes msgs[0..count); returns how many went out (the rest were not
 * sent).  *alone_rejected: msgs[0] itself is too large to send. */
static int sink_nats_publish(struct sink_nats *s, const struct sink_message *msgs, int count,
                             bool *too_large)
{
    *too_large = false;
    for (int i = 0; i < count; i++) {
        natsMsg *m = NULL;
        natsStatus st = sink_nats_message(s, &msgs[i], &m);

        if (st == NATS_OK)
            st = js_PublishMsgAsync(s->js, &m, NULL);
        natsMsg_Destroy(m); /* NULL when the library took it */
        if (st != NATS_OK) {
            pthread_mutex_lock(&s->lock);
            sink_nats_why_status(s, "publishing", st);
            pthread_mutex_unlock(&s->lock);
            *too_large = st == NATS_MAX_PAYLOAD;
            return i;
        }
    }
    return count;
}

/* Gives back what was never acknowledged, so that no late callback refers
 * to this batch. */
static void sink_nats_abandon(struct sink_nats *s)
{
    natsMsgList pending;

    if (s->js != NULL && js_PublishAsyncGetPendingList(&pending, s->js) == NATS_OK)
        natsMsgList_Destroy(&pending);
}

static int sink_nats_send(struct sink *base, const struct sink_message *msgs, int count,
                          struct sink_result *r)
{
    struct sink_nats *s = (struct sink_nats *)base;
    long long deadline = sink_nats_now_ms() + s->timeout_ms;
    jsPubOptions po;
    natsStatus st = NATS_OK;
    bool too_large = false, complete;
    int sent, acked = 0;

    sink_why_clear(&s->why);
    s->rejected = false;
    if (sink_nats_grow(s, count) != 0) {
        sink_result_set(r, SINK_RETRY, "out of memory");
        return 0;
    }
    if (s->nc != NULL && natsConnection_IsClosed(s->nc))
        sink_nats_drop(s);
    if (s->nc == NULL && !sink_nats_connect(s, deadline)) {
        sink_result_set(r, SINK_RETRY, "%s", s->why.text);
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    s->msgs = msgs;
    s->count = count;
    memset(s->state, NATS_PENDING, (size_t)count);
    pthread_mutex_unlock(&s->lock);

    sent = sink_nats_publish(s, msgs, count, &too_large);
    if (sent > 0) {
        jsPubOptions_Init(&po);
        po.MaxWait = deadline - sink_nats_now_ms() > 1 ? deadline - sink_nats_now_ms() : 1;
        st = js_PublishAsyncComplete(s->js, &po);
    }
    complete = st == NATS_OK;
    if (!complete)
        sink_nats_abandon(s);

    pthread_mutex_lock(&s->lock);
    if (!complete)
        sink_why_note(&s->why, "no acknowledgement from the stream within %lld ms (%s)", s->timeout_ms,
                      natsStatus_GetText(st));
    while (acked < sent && s->state[acked] == NATS_ACKED)
        acked++;
    s->msgs = NULL;
    s->count = 0;
    pthread_mutex_unlock(&s->lock);

    if (acked == count) {
        sink_result_ok(r);
        return count;
    }
    if ((too_large && sent == 0) || (s->rejected && acked < sent && s->state[acked] == NATS_FAILED)) {
        sink_result_set(r, SINK_REJECTED, "%s", s->why.text);
        return acked;
    }
    sink_nats_drop(s); /* start afresh: the connection may be half dead */
    sink_result_set(r, SINK_RETRY, "%s", s->why.text[0] != '\0' ? s->why.text : "not acknowledged");
    return acked;
}

/* ---- life cycle ---------------------------------------------------------- */

static void sink_nats_close(struct sink *base)
{
    struct sink_nats *s = (struct sink_nats *)base;

    sink_nats_drop(s);
    pthread_mutex_destroy(&s->lock);
    for (size_t i = 0; i < sizeof(s->secrets) / sizeof(s->secrets[0]); i++)
        free(s->secrets[i]);
    free(s->state);
    free(s->host);
    free(s->url);
    free(s->subject);
    free(s->stream);
    free(s->cacert);
    free(s);
}

static int sink_nats_open(struct sink **out, const char *spec, const struct sink_options *opt,
                          char *err, size_t errlen)
{
    static const char *const shown[] = {"subject", "stream", "mode", "cacert", NULL};
    struct sink_nats *s;
    int binary = 0;

    if (sink_nats_check(spec, err, errlen) != 0 || sink_query_mode(spec, &binary, err, errlen) != 0)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->base.adapter = &sink_nats_adapter;
    s->base.max_batch = SINK_NATS_BATCH;
    s->base.send_budget_ms = opt->timeout_ms;
    s->connect_timeout_ms = opt->connect_timeout_ms;
    s->timeout_ms = opt->timeout_ms;
    s->binary = binary != 0;
    s->tls = strncasecmp(spec, "tls://", 6) == 0;
    sink_url_describe(spec, shown, s->base.describe, sizeof(s->base.describe));
    s->url = sink_url_base(spec);
    s->subject = sink_query_get(spec, "subject", NULL);
    if (s->subject == NULL)
        s->subject = strdup("orders.events");
    s->stream = sink_query_get(spec, "stream", NULL);
    s->cacert = sink_query_get(spec, "cacert", NULL);
    if (s->cacert == NULL)
        s->cacert = strdup(SINK_NATS_DEFAULT_CACERT);
    if (s->url == NULL || s->subject == NULL || s->cacert == NULL || sink_nats_secrets(s) != 0) {
        sink_nats_close(&s->base);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    _Static_assert(sizeof(s->secrets) / sizeof(s->secrets[0]) <= SINK_WHY_SECRETS, "room for the secrets");
    for (size_t i = 0; i < sizeof(s->secrets) / sizeof(s->secrets[0]); i++)
        s->why.secrets[i] = s->secrets[i];
    /* Connecting waits for the first batch, like a server down later. */
    *out = &s->base;
    return 0;
}

static int sink_nats_global_init(void)
{
    return nats_Open(-1) == NATS_OK ? 0 : -1;
}

static void sink_nats_global_cleanup(void)
{
    /* Waits for the library's threads, so nothing runs after main. */
    (void)nats_CloseAndWait(2000);
}

const struct sink_adapter sink_nats_adapter = {
    .name = "nats",
    .check = sink_nats_check,
    .open = sink_nats_open,
    .send = sink_nats_send,
    .close = sink_nats_close,
    .global_init = sink_nats_global_init,
    .global_cleanup = sink_nats_global_cleanup,
};
