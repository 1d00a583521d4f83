#include "adapter.h"

#include "problem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The request as FastCGI gave it.  Params are borrowed from libfcgi until
 * FCGX_Finish_r(), which is after the response is written, so nothing needs
 * copying. */
struct fcgi_exchange {
    FCGX_Request *fr;
    struct request req;
    char body[HTTP_MAX_BODY];
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

static void fcgi_write_response(FCGX_Request *fr, const struct response *res,
                                int head_only)
{
    char head[2048];
    int n = fcgi_format_head(head, sizeof head, res);
    if (n < 0) {
        static const char fallback[] = "Status: 500 Internal Server Error\r\n"
                                       "Content-Length: 0\r\n\r\n";
        FCGX_PutStr(fallback, (int)sizeof fallback - 1, fr->out);
        return;
    }
    FCGX_PutStr(head, n, fr->out);
    if (!head_only && res->body_len > 0)
        FCGX_PutStr(res->body, (int)res->body_len, fr->out);
}

static void fcgi_handle_one(struct app *app, struct fcgi_exchange *x)
{
    struct response res;
    response_init(&res);
    fcgi_build_request(x);
    if (fcgi_read_body(x) != 0) {
        problem_render(&res, PROBLEM_VALIDATION,
                       "the request body is shorter than its Content-Length",
                       x->req.path);
    } else {
        app_handle(app, &x->req, &res);
    }
    fcgi_write_response(x->fr, &res, strcmp(x->req.method, "HEAD") == 0);
    response_free(&res);
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

/* The worker accepts connections itself and hands each to libfcgi, which
 * is given no listening socket of its own.  libfcgi alone would, when nginx
 * closes a kept-alive connection, go straight back to accept() inside
 * FCGX_Accept_r; and a stop signal arriving while it reads a kept-alive
 * connection makes it close that connection under nginx's feet, which turns
 * the next request nginx sends on it into a 502 (nginx never retries a
 * POST).  Here, stop (SIGTERM), reload and recycling all wait until nginx
 * itself closes the connection (upstream keepalive_requests and
 * keepalive_timeout bound that), then the worker exits instead of
 * accepting again. */
unsigned long fcgi_serve(struct app *app, volatile sig_atomic_t *stop,
                         unsigned long max_requests, unsigned watchdog_s)
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
    if (flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) != 0) {
        free(x);
        return 0;
    }
    x->fr = &fr;
    for (;;) {
        if (fr.ipcFd < 0) {
            bool retiring = *stop || (max_requests != 0 && served >= max_requests);
            int fd = retiring ? -1 : fcgi_accept(0, stop, &wait_mask);
            if (fd < 0)
                break;
            fr.ipcFd = fd;
            /* FCGX_Accept_r first finishes the "previous" request and
             * closes the connection unless keepConnection is set. */
            fr.keepConnection = 1;
        }
        /* With no listening socket libfcgi cannot accept: when the
         * connection ends it returns < 0 with ipcFd closed (-1). */
        if (FCGX_Accept_r(&fr) < 0) {
            fr.ipcFd = -1;
            continue;
        }
        alarm(watchdog_s);
        fcgi_handle_one(app, x);
        FCGX_Finish_r(&fr);
        alarm(0);
        served++;
    }
    FCGX_Free(&fr, 1);
    free(x);
    return served;
}
