#include "adapter.h"

#include "clock.h"
#include "problem.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The request as FastCGI gave it.  Params are borrowed from libfcgi until
 * FCGX_Finish_r(), which is after the response is written, so nothing needs
 * copying. */
struct fcgi_exchange {
    FCGX_Request *fr;
    struct request req;
    bool head_only; /* HEAD: the head of the GET response, no body */
    bool delivered; /* the last response reached nginx */
    struct scoreboard *sb;
    char body[HTTP_MAX_BODY];
    /* Repeated If-Match / If-None-Match headers joined into one list;
     * nginx's header buffers (4 x 8k) bound what can arrive. */
    char if_match[8192];
    char if_none_match[8192];
};

static const char *fcgi_param(FCGX_Request *fr, const char *name)
{
    return FCGX_GetParam(name, fr->envp);
}

/* nginx 1.22 passes a repeated header as repeated params; FCGX_GetParam
 * would silently pick the first.  Count them so that two Authorization
 * headers are refused rather than guessed between. */
static int fcgi_param_count(FCGX_Request *fr, const char *name)
{
    size_t len = strlen(name);
    int n = 0;
    for (char **e = fr->envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            n++;
    return n;
}

/* The field value of a list header (If-Match, ...): the value itself when
 * it came once, all of them joined with ", " when it came more than once,
 * as RFC 9110 (5.3) reads repeated list fields.  A join that does not fit
 * becomes an invalid list (a 400), never a shortened one. */
static const char *fcgi_param_list(FCGX_Request *fr, const char *name, char *buf,
                                   size_t cap)
{
    if (fcgi_param_count(fr, name) <= 1)
        return fcgi_param(fr, name);
    size_t len = strlen(name), used = 0;
    for (char **e = fr->envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, len) != 0 || (*e)[len] != '=')
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", *e + len + 1);
        if (w < 0 || (size_t)w >= cap - used) {
            snprintf(buf, cap, "%s", "\x01");
            return buf;
        }
        used += (size_t)w;
    }
    return buf;
}

/* Reads exactly CONTENT_LENGTH bytes.  A body over the limit is drained and
 * flagged (nginx enforces the same limit first; this is the backstop).  The
 * whole body is always consumed: libfcgi cannot accept the next request on a
 * kept-alive connection whose stdin was left unread. */
static int fcgi_read_body(struct fcgi_exchange *x)
{
    const char *cl = fcgi_param(x->fr, "CONTENT_LENGTH");
    long long want = 0;
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        errno = 0;
        want = strtoll(cl, &end, 10);
        if (errno != 0 || *end != '\0' || want < 0)
            return -1;
    }
    if (want > HTTP_MAX_BODY) {
        x->req.body_too_large = 1;
        char sink[4096];
        while (FCGX_GetStr(sink, sizeof sink, x->fr->in) > 0)
            ;
        return 0;
    }
    int got = FCGX_GetStr(x->body, (int)want, x->fr->in);
    if (got != want)
        return -1;
    x->req.body = want > 0 ? x->body : NULL;
    x->req.body_len = (size_t)want;
    return 0;
}

static void fcgi_build_request(struct fcgi_exchange *x)
{
    FCGX_Request *fr = x->fr;
    struct request *req = &x->req;
    memset(req, 0, sizeof *req);
    req->method = fcgi_param(fr, "REQUEST_METHOD");
    /* DOCUMENT_URI is nginx's normalised path ($uri is decoded; we want the
     * raw one without query), so take REQUEST_URI up to '?'. */
    req->path = fcgi_param(fr, "ORDERS_PATH");
    req->query = fcgi_param(fr, "QUERY_STRING");
    req->content_type = fcgi_param(fr, "CONTENT_TYPE");
    req->authorization = fcgi_param(fr, "HTTP_AUTHORIZATION");
    req->authorization_count = fcgi_param_count(fr, "HTTP_AUTHORIZATION");
    req->traceparent = fcgi_param(fr, "HTTP_TRACEPARENT");
    req->idempotency_key = fcgi_param(fr, "HTTP_IDEMPOTENCY_KEY");
    req->idempotency_key_count = fcgi_param_count(fr, "HTTP_IDEMPOTENCY_KEY");
    req->if_match = fcgi_param_list(fr, "HTTP_IF_MATCH", x->if_match, sizeof x->if_match);
    req->if_none_match = fcgi_param_list(fr, "HTTP_IF_NONE_MATCH", x->if_none_match,
                                         sizeof x->if_none_match);
    req->request_id = fcgi_param(fr, "REQUEST_ID");
    if (req->method == NULL)
        req->method = "GET";
    if (req->path == NULL)
        req->path = fcgi_param(fr, "DOCUMENT_URI");
    if (req->path == NULL)
        req->path = "/";
    if (req->query == NULL)
        req->query = "";
    if (req->content_type != NULL && req->content_type[0] == '\0')
        req->content_type = NULL;
}

/* The CGI response head is formatted here with snprintf: libfcgi's own
 * FCGX_FPrintF knows no %zu and silently writes garbage for it. */
static int fcgi_format_head(char *buf, size_t cap, const struct response *res)
{
    size_t used = 0;
    int w = snprintf(buf, cap, "Status: %d %s\r\n", res->status,
                     http_reason_phrase(res->status));
    if (w < 0 || (size_t)w >= cap)
        return -1;
    used = (size_t)w;
    if (res->content_type != NULL) {
        w = snprintf(buf + used, cap - used, "Content-Type: %s\r\n", res->content_type);
        if (w < 0 || (size_t)w >= cap - used)
            return -1;
        used += (size_t)w;
    }
    w = snprintf(buf + used, cap - used, "Content-Length: %zu\r\n", res->body_len);
    if (w < 0 || (size_t)w >= cap - used)
        return -1;
    used += (size_t)w;
    for (int i = 0; i < res->header_count; i++) {
        w = snprintf(buf + used, cap - used, "%s: %s\r\n", res->headers[i].name,
                     res->headers[i].value);
        if (w < 0 || (size_t)w >= cap - used)
            return -1;
        used += (size_t)w;
    }
    if (cap - used < 3)
        return -1;
    memcpy(buf + used, "\r\n", 3);
    return (int)used + 2;
}

/* Writes the response and ends the FastCGI request's streams (the end-of-
 * request record included), so that every write that can fail has failed
 * by the time this returns.  Returns 0 when all of it went to nginx, -1
 * when nginx had closed the connection: the client gave up (nginx logs 499)
 * and the response reached nobody.  libfcgi's FCGX_Finish_r, which runs
 * after, reports nothing; it only frees what is left. */
static int fcgi_send_response(void *ctx, const struct response *res)
{
    struct fcgi_exchange *x = ctx;
    FCGX_Request *fr = x->fr;
    char head[2048];
    int n = fcgi_format_head(head, sizeof head, res);
    int failed = 0;
    if (n < 0) {
        static const char fallback[] = "Status: 500 Internal Server Error\r\n"
                                       "Content-Length: 0\r\n\r\n";
        failed |= FCGX_PutStr(fallback, (int)sizeof fallback - 1, fr->out) < 0;
    } else {
        failed |= FCGX_PutStr(head, n, fr->out) < 0;
        if (!x->head_only && res->body_len > 0)
            failed |= FCGX_PutStr(res->body, (int)res->body_len, fr->out) < 0;
    }
    /* err before out, as FCGX_Finish_r does: closing out writes the
     * end-of-request record and flushes. */
    failed |= FCGX_FClose(fr->err) != 0;
    failed |= FCGX_FClose(fr->out) != 0;
    x->delivered = !failed;
    return failed ? -1 : 0;
}

static void fcgi_routed(void *ctx, const char *route)
{
    struct fcgi_exchange *x = ctx;
    scoreboard_request_routed(x->sb, route);
}

static void fcgi_handle_one(struct app *app, struct fcgi_exchange *x, double begun_ms)
{
    struct response res;
    response_init(&res);
    fcgi_build_request(x);
    scoreboard_request_begin(x->sb, x->req.method, begun_ms);
    x->head_only = strcmp(x->req.method, "HEAD") == 0;
    x->delivered = false;
    x->req.routed = fcgi_routed;
    x->req.send = fcgi_send_response;
    x->req.transport_ctx = x;
    if (fcgi_read_body(x) != 0) {
        problem_render(&res, PROBLEM_VALIDATION,
                       "the request body is shorter than its Content-Length",
                       x->req.path);
        /* Not through app_handle: no route, no access log (nginx logs
         * it), and nothing to count whether or not it arrives. */
        (void)fcgi_send_response(x, &res);
    } else {
        app_handle(app, &x->req, &res);
    }
    scoreboard_request_end(x->sb, x->delivered ? res.status : HTTP_STATUS_CLIENT_GONE,
                           clock_monotonic_ms());
    response_free(&res);
}

/*
 * The watchdog: a request still running watchdog_s seconds after it began
 * kills the worker with SIGALRM's default action, and the pool replaces it.
 *
 * alarm(n) before and alarm(0) after every request were two system calls
 * per request.  Instead each serving thread only stores when its current
 * request began (busy_since_ms[thread], 0 when idle), and one alarm stays
 * armed while requests keep coming: when it fires, the handler looks at the
 * oldest request in progress and either ends the process (stuck past the
 * limit), re-arms for the rest of that request's allowance, or, all idle,
 * lets the timer lapse; the next request re-arms it.  Under load that is
 * one alarm() per watchdog period instead of two per request, and an idle
 * worker gets no wake-ups.
 *
 * The handler runs in whichever serving thread the kernel picks (the
 * exporter thread blocks every signal), concurrently with the others.  The
 * order that keeps every request covered: a thread stores busy_since_ms
 * before it swaps watchdog_armed to 1 (and arms when it was 0); the handler
 * clears watchdog_armed before it reads busy_since_ms.  Either the thread's
 * swap sees the cleared flag and arms, or the handler's read sees the
 * request and re-arms (sequentially consistent atomics).  alarm(),
 * clock_monotonic_ms(), sigaction() and raise() are async-signal-safe, and
 * the atomics are lock-free (checked below).
 */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the watchdog's clock must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the watchdog's flag must be lock-free");

static _Atomic long long busy_since_ms[FCGI_MAX_THREADS]; /* 0: idle */
static atomic_int watchdog_armed;
static unsigned watchdog_limit_s;

static long long watchdog_now_ms(void)
{
    /* +1: never 0, which means idle */
    return (long long)clock_monotonic_ms() + 1;
}

static void watchdog_fire(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&watchdog_armed, 0);
    long long oldest = 0;
    for (int i = 0; i < FCGI_MAX_THREADS; i++) {
        long long since = atomic_load(&busy_since_ms[i]);
        if (since != 0 && (oldest == 0 || since < oldest))
            oldest = since;
    }
    if (oldest == 0) { /* all idle: the next request re-arms */
        errno = saved;
        return;
    }
    long long limit_ms = (long long)watchdog_limit_s * 1000;
    long long left_ms = oldest + limit_ms - watchdog_now_ms();
    if (left_ms > 0) {
        /* a later request than the one the timer was set for: give it the
         * rest of its own allowance (alarm's resolution is a second) */
        atomic_store(&watchdog_armed, 1);
        alarm((unsigned)((left_ms + 999) / 1000));
        errno = saved;
        return;
    }
    static const char msg[] = "{\"level\":\"error\",\"service\":\"orders\","
                              "\"message\":\"watchdog: a request ran past the "
                              "time limit; the worker ends and is replaced\"}\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    /* delivered, with the default action, as soon as this handler returns
     * and unblocks SIGALRM */
    raise(SIGALRM);
}

static int watchdog_install(unsigned limit_s)
{
    watchdog_limit_s = limit_s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_fire;
    sigemptyset(&sa.sa_mask);
    /* system calls interrupted by the timer resume; the accept loop's
     * ppoll, which never resumes, already treats EINTR as "look again" */
    sa.sa_flags = SA_RESTART;
    return limit_s == 0 ? 0 : sigaction(SIGALRM, &sa, NULL);
}

/* now_ms: CLOCK_MONOTONIC, read once per request for the watchdog and the
 * scoreboard together (on a busy VM a clock read costs ~100 ns). */
static void watchdog_begin(int thread, double now_ms)
{
    if (watchdog_limit_s == 0)
        return;
    atomic_store(&busy_since_ms[thread], (long long)now_ms + 1); /* as watchdog_now_ms */
    if (atomic_exchange(&watchdog_armed, 1) == 0)
        alarm(watchdog_limit_s);
}

static void watchdog_end(int thread)
{
    atomic_store(&busy_since_ms[thread], 0);
}

/*
 * The serving threads.  One epoll set per worker holds the listening
 * socket and every connection the worker has accepted, each registered
 * one-shot: a thread takes the next ready one, serves it (one request; or
 * one accept, and that connection's first request), and re-arms it.  So a
 * connection that nginx keeps alive between requests costs a worker
 * nothing while idle, no thread is parked on it, and requests are served
 * in the order they became ready, whether they came on a kept connection
 * or a fresh one: with a thread blocked on
 * each kept connection instead (libfcgi's own threaded model), nginx,
 * which reuses its most recently freed connection first, kept a few
 * threads busy in a loop on its kept connections while the connections it
 * opened beyond those waited in the accept backlog: POST p99 near 2 s.
 *
 * The listening socket is one-shot too, so one thread accepts at a time
 * and a worker accepts only as fast as its threads come free; several
 * workers share the socket, and the losers of a race get EAGAIN.  A thread
 * that accepted serves the new connection's first request itself when it
 * is already there (fcgi_accept_one); when it is not, it leaves the
 * listening socket disarmed until that request has been taken by a
 * thread: re-armed at once, the socket could hand the same thread (epoll
 * finds the listening socket ready before nginx has written on the new
 * connection) a second connection, and a third, which then wait behind
 * whatever request that thread serves next, however long, while other
 * workers sit idle.
 *
 * An accept that fails for want of a resource (EMFILE: the worker is at
 * its RLIMIT_NOFILE; ENFILE, ENOBUFS, ENOMEM) leaves the connection in the
 * backlog, so the listening socket, re-armed at once, is ready again at
 * once: the threads spun on accept4 at full CPU until a descriptor came
 * free.  So such a failure pauses accepting instead, as nginx and OpenBSD's
 * httpd do: the listening socket stays disarmed, and the pause timer (a
 * timerfd in the same set, one-shot too) re-arms it FCGI_ACCEPT_PAUSE_MS
 * later, or a connection's close does, earlier, since that freed a
 * descriptor.  The pause holds the socket's one re-arm: whichever of the
 * two ends it first (accept_paused, swapped) re-arms, the other finds
 * nothing to do.  The threads serve the connections the worker has
 * meanwhile; nothing sleeps.
 */
#define FCGI_IDLE_TICK_MS 1000   /* a sleeping thread looks at the stop flag */
#define FCGI_TRIM_IDLE_MS 200    /* ... and, requests served since the last
                                  * trim, at whether the worker went quiet */
#define FCGI_RETIRE_TICK_MS 50   /* ... and, once retiring, at the connections */
#define FCGI_ACCEPT_PAUSE_MS 100 /* no accept after one failed for want of a
                                  * resource, unless a connection closes */
#define FCGI_ACCEPT_WARN_MS 1000 /* at most one warning line a second about it */

/* What the serving threads of one worker share. */
struct fcgi_pool {
    volatile sig_atomic_t *stop;   /* set by the worker's SIGTERM handler */
    unsigned long max_requests;    /* 0: no limit */
    atomic_ulong served;
    atomic_ulong trimmed_at;       /* served when memory was last given back */
    atomic_int caching_threads;    /* threads whose store has cached since
                                    * they were last idle */
    atomic_bool trim_arenas;       /* fcgi_trim_arenas may set glibc's trim
                                    * settings; cleared for good when glibc
                                    * refuses one */
    atomic_bool retiring;          /* no more accepts */
    atomic_int open_conns;         /* accepted and not yet closed */
    atomic_bool accept_paused;     /* the pause holds the listening socket's
                                    * re-arm: fcgi_end_pause */
    atomic_ullong accept_failures; /* failed accepts since the last warning */
    _Atomic long long accept_warned_ms; /* monotonic ms of that warning, 0: none */
    int epoll_fd;
    int listen_fd;
    int pause_fd;                  /* timerfd: the pause's end */
    sigset_t wait_mask;            /* the mask while waiting in epoll */
    struct scoreboard *sb;         /* this worker's slot of the pool's status */
    struct fcgi_thread *threads;   /* all of them, for fcgi_wake_threads */
    int thread_count;
    pthread_mutex_t threads_lock;  /* their started and exited flags */
};

/* One serving thread: its own FastCGI request and its own app (and so its
 * own store connection). */
struct fcgi_thread {
    struct fcgi_pool *pool;
    struct app *app;
    int index;
    FCGX_Request fr;
    struct fcgi_exchange *x;
    bool caching; /* served since it last released its store's cache */
    _Atomic(void *) arena_probe; /* FCGI_ARENA_PROBE bytes from its own arena
                                  * or NULL, freed by the idle trim
                                  * (fcgi_trim_arenas) */
    pthread_t tid;
    bool started; /* tid is set (thread 0: the worker's own); threads_lock */
    bool exited;  /* out of its loop, about to be joined; threads_lock */
};

/* The first thread to see the worker retire wakes the others from their
 * epoll wait, which would otherwise last up to FCGI_IDLE_TICK_MS: a stop
 * took a second for nothing (every stop of a test stack, every reload).
 * SIGTERM is what they can receive there (wait_mask); a thread busy with a
 * request gets it when it next waits, at once, and sees the worker
 * retiring either way.  The worker's handler only sets the stop flag, and
 * a recycling worker retires just as a stopped one does.  Under
 * threads_lock, so that no thread is signalled once it has left its loop
 * (it may have been joined, its id no longer valid). */
static void fcgi_wake_threads(struct fcgi_pool *p)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&p->threads_lock);
    for (int i = 0; i < p->thread_count; i++) {
        struct fcgi_thread *t = &p->threads[i];
        if (t->started && !t->exited && !pthread_equal(t->tid, self))
            pthread_kill(t->tid, SIGTERM);
    }
    pthread_mutex_unlock(&p->threads_lock);
}

static void fcgi_thread_exited(struct fcgi_thread *t)
{
    pthread_mutex_lock(&t->pool->threads_lock);
    t->exited = true;
    pthread_mutex_unlock(&t->pool->threads_lock);
}

/* True once the worker stops accepting: asked to stop, or recycled after
 * max_requests.  The first thread to see it takes the listening socket out
 * of the epoll set; the connections already accepted are served until
 * nginx closes them. */
static bool fcgi_retiring(struct fcgi_pool *p)
{
    if (atomic_load(&p->retiring))
        return true;
    if (!*p->stop && (p->max_requests == 0 || atomic_load(&p->served) < p->max_requests))
        return false;
    if (!atomic_exchange(&p->retiring, true)) {
        epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, p->listen_fd, NULL);
        fcgi_wake_threads(p);
    }
    return true;
}

/* An epoll entry's data: the descriptor, and whether it is a connection
 * whose first request has not been taken yet (fresh). */
#define FCGI_FRESH ((uint64_t)1 << 32)
#define FCGI_ARENA_PROBE (72 * 1024) /* a serving thread's block in its own arena:
                                     * fcgi_trim_arenas */

static int fcgi_arm(struct fcgi_pool *p, int op, int fd, bool fresh)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
                             .data.u64 = (uint32_t)fd | (fresh ? FCGI_FRESH : 0)};
    return epoll_ctl(p->epoll_fd, op, fd, &ev);
}

/* Accepting again, once the last connection accepted has had its first
 * request taken (or was closed).  A retiring worker has taken the socket
 * out: then this fails, as it should. */
static void fcgi_resume_accepting(struct fcgi_pool *p)
{
    if (!atomic_load(&p->retiring))
        fcgi_arm(p, EPOLL_CTL_MOD, p->listen_fd, false);
}

/* Ends a pause of accepting, if one is on: re-arms the listening socket,
 * once per pause however many closes and timer events come (the swap). */
static void fcgi_end_pause(struct fcgi_pool *p)
{
    if (atomic_load(&p->accept_paused) && atomic_exchange(&p->accept_paused, false))
        fcgi_resume_accepting(p);
}

/* The pause timer fired.  Its count is read so that the timerfd is not
 * ready when next armed; nothing to read (EAGAIN) when a later pause set
 * it again meanwhile, and then this ends that pause a little early, which
 * is harmless: still one re-arm for the one disarm. */
static void fcgi_pause_over(struct fcgi_pool *p)
{
    uint64_t expirations;
    ssize_t n = read(p->pause_fd, &expirations, sizeof expirations);
    (void)n;
    fcgi_end_pause(p);
}

/* A connection is gone (closed here, or by libfcgi): a descriptor came
 * free, so a pause for want of one can end now. */
static void fcgi_conn_gone(struct fcgi_pool *p)
{
    atomic_fetch_sub(&p->open_conns, 1);
    fcgi_end_pause(p);
}

static void fcgi_close_conn(struct fcgi_pool *p, int fd)
{
    close(fd); /* which also takes it out of the epoll set */
    fcgi_conn_gone(p);
}

/* True for the accept failures that the next try may not repeat: another
 * worker took the connection (EAGAIN), a signal, a connection reset while
 * it waited.  Anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, or an error
 * no try would clear) pauses accepting. */
static bool fcgi_accept_retry_now(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED;
}

/* One structured warning a second at most per worker, never one per
 * failed accept: during a pause they come ten a second. */
static void fcgi_warn_accept_failed(struct fcgi_thread *t, int err)
{
    struct fcgi_pool *p = t->pool;
    atomic_fetch_add(&p->accept_failures, 1);
    long long now = (long long)clock_monotonic_ms();
    long long last = atomic_load(&p->accept_warned_ms);
    if ((last != 0 && now - last < FCGI_ACCEPT_WARN_MS) ||
        !atomic_compare_exchange_strong(&p->accept_warned_ms, &last, now))
        return;
    struct rlimit files;
    long long limit = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                          ? (long long)files.rlim_cur
                          : -1;
    struct log_field f[] = {
        LOG_STR("error", strerror(err)),
        LOG_INT("failed_accepts", (long long)atomic_exchange(&p->accept_failures, 0)),
        LOG_INT("open_connections", atomic_load(&p->open_conns)),
        LOG_INT("open_files_limit", limit),
        LOG_INT("pause_ms", FCGI_ACCEPT_PAUSE_MS)};
    log_emit(&t->app->log, LOG_WARN, NULL,
             "cannot accept a connection; accepting again after a pause or a close",
             f, LOG_COUNT(f));
}

/* The listening socket stays disarmed until the pause ends
 * (fcgi_end_pause).  The timer is set before its entry is re-armed, so
 * that no count left from an earlier pause makes it ready at once. */
static void fcgi_pause_accepting(struct fcgi_thread *t, int err)
{
    struct fcgi_pool *p = t->pool;
    fcgi_warn_accept_failed(t, err);
    struct itimerspec when = {.it_value = {.tv_sec = FCGI_ACCEPT_PAUSE_MS / 1000,
                                           .tv_nsec = FCGI_ACCEPT_PAUSE_MS % 1000 * 1000000L}};
    atomic_store(&p->accept_paused, true);
    if (timerfd_settime(p->pause_fd, 0, &when, NULL) != 0 ||
        fcgi_arm(p, EPOLL_CTL_MOD, p->pause_fd, false) != 0)
        fcgi_end_pause(p); /* no timer (EINVAL, ENOMEM): accept again at once */
}

static void fcgi_serve_conn(struct fcgi_thread *t, int fd, bool fresh, bool registered);

/* The listening socket was ready: accept one connection and, when its
 * first request is already there (nginx writes it right after connecting,
 * so it nearly always is), serve it in this thread at once, and only then
 * put the connection in the set.  The thread was free to take the accept,
 * so it is free to serve: a new connection waits for a thread once, like a
 * request on a kept one, and the listening socket is armed again before
 * the request is served, so another free thread can take the next.  Accept
 * first and queue the request, as before, and a new connection's request
 * waited for a thread twice, and the worker accepted one connection per
 * such wait: nginx renews its kept connections after keepalive_time, many
 * of them at once (those opened together expire together), and the
 * requests on the last ones renewed waited for every accept before them:
 * POST p99 56-66 ms against 24 ms with the connections never renewed (32
 * connections, 2 workers; with 1 worker of 8 threads 157 ms). */
static void fcgi_accept_one(struct fcgi_thread *t)
{
    struct fcgi_pool *p = t->pool;
    /* From its SIGTERM on, a worker accepts nothing, even while the signal
     * is still pending (epoll_pwait returns a ready socket before it
     * delivers one): the pool kills a reload's new worker that had not
     * reported ready when it was told to stop, trusting that it holds no
     * connection (fcgi/pool.c, pool_abandon_reload).  Only on this path:
     * a new connection, not every request. */
    sigset_t pending;
    if (*p->stop || (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 ||
                                                   sigismember(&pending, SIGINT) == 1))) {
        *p->stop = 1;
        fcgi_retiring(p); /* takes the listening socket out */
        return;
    }
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (fcgi_accept_retry_now(err))
            fcgi_resume_accepting(p);
        else
            fcgi_pause_accepting(t, err);
        return;
    }
    atomic_fetch_add(&p->open_conns, 1);
    scoreboard_connection_accepted(p->sb);
    fcgi_serve_conn(t, fd, true, false);
}

/* A connection was ready: nginx sent a request, or closed it.  The worker
 * never closes a connection first: nginx asks it to keep every one
 * (fastcgi_keep_conn on) and closes each itself, right after its response
 * without upstream keepalive, or after keepalive_time, keepalive_timeout or
 * keepalive_requests with it (nginx/orders.conf.in).  So stopping,
 * reloading or recycling never closes a connection nginx is about to send a
 * request on (no 502 for a POST: nginx never retries one). */
static void fcgi_serve_conn(struct fcgi_thread *t, int fd, bool fresh, bool registered)
{
    struct fcgi_pool *p = t->pool;
    /* a connection just accepted joins the set once served (ADD), one
     * that was taken from it is re-armed (MOD) */
    int op = registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    char c;
    ssize_t n;
    do {
        n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* not there yet: one-shot, its first request is taken by
         * whichever thread is free when it arrives, and that thread
         * resumes accepting */
        if (fcgi_arm(p, op, fd, fresh) == 0)
            return;
        fcgi_close_conn(p, fd); /* nginx sees the close before any request */
        if (fresh)
            fcgi_resume_accepting(p);
        return;
    }
    if (fresh)
        fcgi_resume_accepting(p); /* before serving: another thread may be free */
    if (n <= 0) { /* nginx closed it: EOF, or an error */
        fcgi_close_conn(p, fd);
        return;
    }
    if (!t->caching) {
        t->caching = true;
        atomic_fetch_add(&p->caching_threads, 1);
    }
    FCGX_Request *fr = &t->fr;
    fr->ipcFd = fd;
    /* FCGX_Accept_r would close the connection after the request unless
     * told to keep it. */
    fr->keepConnection = 1;
    /* With no listening socket of its own libfcgi cannot accept: on a
     * broken request it closes the connection and returns < 0. */
    if (FCGX_Accept_r(fr) < 0) {
        fr->ipcFd = -1;
        fcgi_conn_gone(p);
        return;
    }
    double begun_ms = clock_monotonic_ms();
    watchdog_begin(t->index, begun_ms);
    fcgi_handle_one(t->app, t->x, begun_ms);
    FCGX_Finish_r(fr); /* keeps the connection open */
    watchdog_end(t->index);
    fr->ipcFd = -1;
    atomic_fetch_add(&p->served, 1);
    if (fcgi_arm(p, op, fd, false) != 0)
        fcgi_close_conn(p, fd); /* cannot happen short of a kernel out of memory */
}

/* The process's resident anonymous memory in KiB (resident minus shared
 * pages, /proc/self/statm), or -1: for the trim's debug line only. */
static long long fcgi_anon_kib(void)
{
    long long size, resident, shared;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL)
        return -1;
    int n = fscanf(f, "%lld %lld %lld", &size, &resident, &shared);
    fclose(f);
    return n == 3 ? (resident - shared) * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* The serving threads' heaps.  glibc gives each thread an arena of its own
 * at its first malloc (up to 8 per CPU), and what a thread's arena grew to
 * under load stays at its top: malloc_trim gives back the free pages inside
 * every arena but shortens only the main heap, and free() shortens a
 * thread's arena only when a free of 64 KiB or more leaves its top above
 * M_TRIM_THRESHOLD (twice the largest block glibc has mapped and unmapped
 * so far: 534 KiB in a worker, after the configuration check's 267 KiB),
 * and then keeps M_TOP_PAD (128 KiB) of it.  So each thread that served
 * takes a block of FCGI_ARENA_PROBE bytes from its own arena when it goes
 * idle (never touched: one page resident), and the idle trim frees them all
 * with both settings at 0: each free shortens that block's arena to what
 * is in use.  200 KiB less anonymous memory per worker after a load (1,790
 * against 1,580 KiB, Pss 3.12 against 2.90 MiB, three alternated runs, 2
 * workers of 4 threads).
 *
 * A thread takes its block before it counts itself idle (caching_threads),
 * and the trim runs only once every thread is idle, so a trim after
 * requests always finds a block to free.  The settings are glibc's
 * globals, so a thread that starts serving meanwhile frees with them too
 * (trims a little more, for that moment).  Afterwards M_TOP_PAD is glibc's
 * default again and M_TRIM_THRESHOLD 1 MiB, above what glibc had set by
 * itself: under load a heap's top is kept (giving it back on every write's
 * free cost POST 40% when tried at 32 KiB), and the idle trim gives it
 * back.  Setting either also fixes glibc's mmap threshold where it stands
 * (by then raised past the configuration check's block).  An operator who
 * tuned glibc's heap (MALLOC_TOP_PAD_, MALLOC_TRIM_THRESHOLD_ or
 * glibc.malloc tunables in GLIBC_TUNABLES) keeps those settings: the
 * threads' arenas are then not trimmed.  Under ASan mallopt refuses and
 * nothing is freed; under valgrind the blocks go back to valgrind's own
 * allocator. */
#define FCGI_GLIBC_TOP_PAD (128 * 1024)
#define FCGI_TRIM_THRESHOLD (1024 * 1024)

/* True unless the environment tunes glibc's heap trimming itself. */
static bool fcgi_may_set_malloc(void)
{
    const char *tunables = getenv("GLIBC_TUNABLES");
    return getenv("MALLOC_TOP_PAD_") == NULL && getenv("MALLOC_TRIM_THRESHOLD_") == NULL &&
           (tunables == NULL || (strstr(tunables, "glibc.malloc.top_pad") == NULL &&
                                 strstr(tunables, "glibc.malloc.trim_threshold") == NULL));
}

/* A thread going idle after serving: its block, unless it has one (NULL
 * when malloc failed: that arena is then not trimmed). */
static void fcgi_take_arena_block(struct fcgi_thread *t)
{
    if (atomic_load(&t->pool->trim_arenas) && atomic_load(&t->arena_probe) == NULL)
        atomic_store(&t->arena_probe, malloc(FCGI_ARENA_PROBE));
}

/* Frees every thread's block with glibc's trim settings at 0.  Returns how
 * many were freed.  A setting refused (only a malloc that is not glibc's
 * refuses these) ends the arena trims for the worker's life. */
static int fcgi_trim_arenas(struct fcgi_pool *p)
{
    if (!atomic_load(&p->trim_arenas))
        return 0;
    if (mallopt(M_TOP_PAD, 0) != 1) {
        atomic_store(&p->trim_arenas, false); /* not glibc's malloc: ASan's */
        return 0;
    }
    if (mallopt(M_TRIM_THRESHOLD, 0) != 1) {
        atomic_store(&p->trim_arenas, false);
        mallopt(M_TOP_PAD, FCGI_GLIBC_TOP_PAD);
        return 0;
    }
    int freed = 0;
    for (int i = 0; i < p->thread_count; i++) {
        void *block = atomic_exchange(&p->threads[i].arena_probe, NULL);
        freed += block != NULL;
        free(block);
    }
    if (mallopt(M_TRIM_THRESHOLD, FCGI_TRIM_THRESHOLD) != 1 ||
        mallopt(M_TOP_PAD, FCGI_GLIBC_TOP_PAD) != 1)
        atomic_store(&p->trim_arenas, false);
    return freed;
}

/* A worker in which no request has ended for FCGI_TRIM_IDLE_MS gives the
 * memory its requests freed back to the kernel: glibc returns only the top
 * of each heap by itself, and the pages freed below it (the last burst's
 * response bodies, JSON trees, statement results, SQLite pages dropped from
 * a connection's cache) stay resident, and count in the worker's Pss, until
 * they are reused.  Once per quiet spell (the first thread whose wait ran
 * out with no request ended meanwhile, once every thread that served has
 * freed its store's page cache: 0.3 MiB of an idle worker's memory at
 * 1,000 orders), never on a request's path; the next burst faults the
 * pages back in (SQLite reads them again from the OS's cache).
 * malloc_trim gives back the free pages inside every arena; the serving
 * threads' arenas' tops are fcgi_trim_arenas's.
 *
 * Quiet for 200 ms rather than a thread's 1 s tick: until the trim, the
 * pages freed but kept were 0.4 MiB of a worker's Pss after the write load
 * at 1,000 orders and 7.7 MiB after reads at 1,000,000 orders (most of it
 * in the serving threads' arenas), and anyone who reads the worker's
 * memory within a second of its last request (a monitoring scrape)
 * counted them.  A spell of 200 ms comes at most five times a second, below about 20 requests a second; a trim
 * costs a few hundred microseconds, and the pages it gave back are faulted
 * in again by the next request. */
static void fcgi_idle_trim(struct fcgi_thread *t, unsigned long served_before)
{
    struct fcgi_pool *p = t->pool;
    unsigned long last = atomic_load(&p->trimmed_at);
    if (atomic_load(&p->served) != served_before || served_before == last ||
        !atomic_compare_exchange_strong(&p->trimmed_at, &last, served_before))
        return;
    if (t->app->log.level > LOG_DEBUG) {
        fcgi_trim_arenas(p);
        malloc_trim(0);
        return;
    }
    long long before = fcgi_anon_kib();
    int arenas = fcgi_trim_arenas(p);
    malloc_trim(0);
    struct log_field f[] = {LOG_INT("requests", (long long)(served_before - last)),
                            LOG_INT("arena_blocks_freed", arenas),
                            LOG_INT("anon_kib_before", before),
                            LOG_INT("anon_kib_after", fcgi_anon_kib())};
    log_emit(&t->app->log, LOG_DEBUG, NULL, "idle worker gave freed memory back", f,
             LOG_COUNT(f));
}

/* One thread's loop: the next ready connection or accept, until the worker
 * retires and nginx has closed every connection it had. */
static void fcgi_thread_serve(struct fcgi_thread *t)
{
    struct fcgi_pool *p = t->pool;
    for (;;) {
        bool retiring = fcgi_retiring(p);
        if (retiring && atomic_load(&p->open_conns) == 0)
            break;
        struct epoll_event ev;
        unsigned long served = atomic_load(&p->served);
        int wait_ms = retiring ? FCGI_RETIRE_TICK_MS
                      : t->caching || served != atomic_load(&p->trimmed_at) ? FCGI_TRIM_IDLE_MS
                                                                             : FCGI_IDLE_TICK_MS;
        /* SIGTERM/SIGINT are deliverable only here (the mask), so a stop
         * never interrupts a request. */
        int n = epoll_pwait(p->epoll_fd, &ev, 1, wait_ms, &p->wait_mask);
        if (n < 0 && errno != EINTR) {
            *p->stop = 1; /* a broken epoll set: retire, the pool replaces us */
            continue;
        }
        if (n == 0 && !retiring) {
            /* Its own store only (a connection belongs to one thread); the
             * last thread to release trims, so that the trim gives back
             * the caches' pages too. */
            if (t->caching) {
                store_release_memory(t->app->store);
                fcgi_take_arena_block(t);
                t->caching = false;
                atomic_fetch_sub(&p->caching_threads, 1);
            }
            if (atomic_load(&p->caching_threads) == 0)
                fcgi_idle_trim(t, served);
        }
        if (n <= 0)
            continue;
        int fd = (int)(uint32_t)ev.data.u64;
        if (fd == p->listen_fd)
            fcgi_accept_one(t);
        else if (fd == p->pause_fd)
            fcgi_pause_over(p);
        else
            fcgi_serve_conn(t, fd, (ev.data.u64 & FCGI_FRESH) != 0, true);
    }
}

static void *fcgi_thread_main(void *arg)
{
    fcgi_thread_serve(arg);
    fcgi_thread_exited(arg);
    return NULL;
}

unsigned long fcgi_serve(struct app *const *apps, int threads,
                         volatile sig_atomic_t *stop, unsigned long max_requests,
                         unsigned watchdog_s, int (*on_ready)(void),
                         struct scoreboard *sb)
{
    if (threads < 1 || threads > FCGI_MAX_THREADS)
        return 0;
    struct fcgi_pool pool = {.stop = stop, .max_requests = max_requests,
                             .epoll_fd = -1, .listen_fd = 0, .pause_fd = -1, .sb = sb,
                             .threads_lock = PTHREAD_MUTEX_INITIALIZER};
    atomic_init(&pool.served, 0);
    atomic_init(&pool.trimmed_at, 0);
    atomic_init(&pool.caching_threads, 0);
    atomic_init(&pool.trim_arenas, fcgi_may_set_malloc());
    atomic_init(&pool.retiring, false);
    atomic_init(&pool.open_conns, 0);
    atomic_init(&pool.accept_paused, false);
    atomic_init(&pool.accept_failures, 0);
    atomic_init(&pool.accept_warned_ms, 0);
    struct fcgi_thread *t = calloc((size_t)threads, sizeof *t);
    pool.threads = t;
    pool.thread_count = t != NULL ? threads : 0;
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    int flags = fcntl(pool.listen_fd, F_GETFL);
    bool ok = t != NULL && sigprocmask(SIG_BLOCK, &blocked, &pool.wait_mask) == 0 &&
              FCGX_Init() == 0 && flags >= 0 &&
              fcntl(pool.listen_fd, F_SETFL, flags | O_NONBLOCK) == 0 &&
              watchdog_install(watchdog_s) == 0 &&
              (pool.epoll_fd = epoll_create1(EPOLL_CLOEXEC)) >= 0 &&
              fcgi_arm(&pool, EPOLL_CTL_ADD, pool.listen_fd, false) == 0 &&
              (pool.pause_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) >= 0 &&
              fcgi_arm(&pool, EPOLL_CTL_ADD, pool.pause_fd, false) == 0;
    sigdelset(&pool.wait_mask, SIGTERM);
    sigdelset(&pool.wait_mask, SIGINT);
    int ready = 0; /* threads whose request and exchange are set up */
    for (; ok && ready < threads; ready++) {
        t[ready].pool = &pool;
        t[ready].app = apps[ready];
        t[ready].index = ready;
        t[ready].x = malloc(sizeof *t[ready].x);
        if (t[ready].x == NULL || FCGX_InitRequest(&t[ready].fr, -1, 0) != 0) {
            free(t[ready].x);
            break;
        }
        t[ready].x->fr = &t[ready].fr;
        t[ready].x->sb = sb;
    }
    if (t != NULL) {
        t[0].tid = pthread_self(); /* no other thread runs yet */
        t[0].started = true;
    }
    /* The master would count this worker as never started when any of it
     * failed, or when on_ready does. */
    if (ok && ready == threads)
        scoreboard_worker_ready(sb, threads);
    ok = ok && ready == threads && (on_ready == NULL || on_ready() == 0);
    /* Threads inherit the mask: SIGTERM/SIGINT only in epoll_pwait.
     * Thread 0 is this one. */
    for (int i = 1; ok && i < threads; i++) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, fcgi_thread_main, &t[i]) != 0) {
            /* serve with the threads there are, and retire at once so that
             * the pool replaces this worker */
            fprintf(stderr, "orders-fcgi: cannot start a serving thread\n");
            *stop = 1;
            break;
        }
        pthread_mutex_lock(&pool.threads_lock);
        t[i].tid = tid;
        t[i].started = true;
        pthread_mutex_unlock(&pool.threads_lock);
    }
    if (ok) {
        fcgi_thread_serve(&t[0]);
        fcgi_thread_exited(&t[0]);
    }
    /* every thread has been created (or has failed to be): started no
     * longer changes */
    for (int i = 1; t != NULL && i < threads; i++)
        if (t[i].started)
            pthread_join(t[i].tid, NULL);
    for (int i = 0; i < ready; i++) {
        FCGX_Free(&t[i].fr, 1);
        free(t[i].x);
        free(atomic_load(&t[i].arena_probe));
    }
    if (pool.pause_fd >= 0)
        close(pool.pause_fd);
    if (pool.epoll_fd >= 0)
        close(pool.epoll_fd);
    free(t);
    return atomic_load(&pool.served);
}
