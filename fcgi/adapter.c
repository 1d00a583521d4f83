#include "adapter.h"

#include "clock.h"
#include "problem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
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
 * per request.  Instead the request loop only stores when the current
 * request began (busy_since_ms, 0 when idle), and one alarm stays armed
 * while requests keep coming: when it fires, the handler compares the
 * clock with busy_since_ms and either ends the process (stuck past the
 * limit), re-arms for the rest of the current request's allowance, or,
 * idle, lets the timer lapse; the loop re-arms it at the next request.
 * Under load that is one alarm() per watchdog period instead of two per
 * request, and an idle worker gets no wake-ups.
 *
 * The handler runs in the request thread (the exporter thread blocks every
 * signal), so it interleaves with the loop only between instructions; the
 * loop writes busy_since_ms before it reads watchdog_armed, so a request
 * that begins while the timer lapses is always covered by one or the other.
 * alarm(), clock_monotonic_ms(), sigaction() and raise() are async-signal-safe,
 * and the atomics are lock-free (checked below).
 */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the watchdog's clock must be lock-free");

static _Atomic long long busy_since_ms;     /* CLOCK_MONOTONIC; 0: idle */
static volatile sig_atomic_t watchdog_armed;
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
    long long since = atomic_load(&busy_since_ms);
    if (since == 0) {
        watchdog_armed = 0; /* idle: the next request re-arms */
        errno = saved;
        return;
    }
    long long limit_ms = (long long)watchdog_limit_s * 1000;
    long long left_ms = since + limit_ms - watchdog_now_ms();
    if (left_ms > 0) {
        /* a later request than the one the timer was set for: give it the
         * rest of its own allowance (alarm's resolution is a second) */
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
static void watchdog_begin(double now_ms)
{
    if (watchdog_limit_s == 0)
        return;
    atomic_store(&busy_since_ms, (long long)now_ms + 1); /* as watchdog_now_ms */
    if (!watchdog_armed) {
        watchdog_armed = 1;
        alarm(watchdog_limit_s);
    }
}

static void watchdog_end(void)
{
    atomic_store(&busy_since_ms, 0);
}

/* Waits for a connection on the listening socket with SIGTERM/SIGINT
 * deliverable only here (ppoll's mask), so a stop never interrupts a read
 * in the middle of a kept-alive connection.  Returns the connected socket,
 * or -1 when asked to stop. */
static int fcgi_accept(int listen_fd, volatile sig_atomic_t *stop,
                       const sigset_t *wait_mask)
{
    while (!*stop) {
        struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
        int n = ppoll(&pfd, 1, NULL, wait_mask);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        /* Several workers poll one socket; the losers get EAGAIN. */
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED)
            return -1;
    }
    return -1;
}

/* Blocks until nginx either sends the next request on a kept connection
 * (true) or closes it (false: EOF or an error).  SIGTERM is blocked here,
 * as in libfcgi's own read, and the watchdog's SA_RESTART resumes it. */
static bool fcgi_next_request_coming(int fd)
{
    char c;
    ssize_t n;
    do {
        n = recv(fd, &c, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/* The worker accepts connections itself and hands each to libfcgi, which
 * is given no listening socket of its own.  libfcgi alone would, when nginx
 * closes a kept-alive connection, go straight back to accept() inside
 * FCGX_Accept_r; and a stop signal arriving while it reads a kept-alive
 * connection makes it close that connection under nginx's feet, which turns
 * the next request nginx sends on it into a 502 (nginx never retries a
 * POST).  Here the worker never closes a connection first: nginx asks it to
 * keep every connection (fastcgi_keep_conn on) and, having no upstream
 * keepalive cache (nginx/orders.conf.in says why), closes each one itself
 * right after its response; stop (SIGTERM), reload and recycling all wait
 * for that close, then the worker exits instead of accepting again.  The
 * same holds if upstream keepalive is ever turned back on: then nginx's
 * keepalive_requests and keepalive_timeout bound the wait. */
unsigned long fcgi_serve(struct app *app, volatile sig_atomic_t *stop,
                         unsigned long max_requests, unsigned watchdog_s,
                         int (*on_ready)(void), struct scoreboard *sb)
{
    FCGX_Request fr;
    unsigned long served = 0;
    sigset_t blocked, wait_mask;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    struct fcgi_exchange *x = malloc(sizeof *x);
    if (x == NULL || sigprocmask(SIG_BLOCK, &blocked, &wait_mask) != 0 ||
        FCGX_Init() != 0 || FCGX_InitRequest(&fr, -1, 0) != 0) {
        free(x);
        return 0;
    }
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    int flags = fcntl(0, F_GETFL);
    if (flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) != 0 ||
        watchdog_install(watchdog_s) != 0) {
        free(x);
        return 0;
    }
    x->fr = &fr;
    x->sb = sb;
    scoreboard_worker_ready(sb);
    if (on_ready != NULL && on_ready() != 0) {
        /* The master would count this worker as never started. */
        FCGX_Free(&fr, 1);
        free(x);
        return 0;
    }
    bool fresh = false; /* ipcFd was just accepted: its request is coming */
    for (;;) {
        /* After a response on a kept connection, wait for what nginx does
         * next.  Done here rather than in FCGX_Accept_r: libfcgi answers
         * EOF with shutdown, poll, read, close and an accept on the absent
         * listening socket; this is one recv and one close.  A response is
         * never cut short by it: nginx has already closed its end. */
        if (fr.ipcFd >= 0 && !fresh && !fcgi_next_request_coming(fr.ipcFd)) {
            close(fr.ipcFd);
            fr.ipcFd = -1;
        }
        if (fr.ipcFd < 0) {
            bool retiring = *stop || (max_requests != 0 && served >= max_requests);
            int fd = retiring ? -1 : fcgi_accept(0, stop, &wait_mask);
            if (fd < 0)
                break;
            scoreboard_connection_accepted(sb);
            fr.ipcFd = fd;
            fresh = true;
            /* FCGX_Accept_r first finishes the "previous" request and
             * closes the connection unless keepConnection is set. */
            fr.keepConnection = 1;
        }
        /* With no listening socket libfcgi cannot accept: when the
         * connection ends it returns < 0 with ipcFd closed (-1). */
        int accepted = FCGX_Accept_r(&fr);
        fresh = false;
        if (accepted < 0) {
            fr.ipcFd = -1;
            continue;
        }
        double begun_ms = clock_monotonic_ms();
        watchdog_begin(begun_ms);
        fcgi_handle_one(app, x, begun_ms);
        FCGX_Finish_r(&fr);
        watchdog_end();
        served++;
    }
    FCGX_Free(&fr, 1);
    free(x);
    return served;
}
