#include "scoreboard.h"
#include "adapter.h" /* FCGI_MAX_THREADS */

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "text.h"

#define SCOREBOARD_FD_ENV "ORDERS_SCOREBOARD_FD"
#define SCOREBOARD_SLOT_ENV "ORDERS_POOL_SLOT"
#define SCOREBOARD_MAGIC 0x4f524453u /* "ORDS" */
#define SCOREBOARD_VERSION 1u

#define SB_METHOD_LEN 8
#define SB_ROUTE_LEN 48

/* One worker.  Its own cache line(s): workers never write each other's.
 * method, route and the request's times form one record that the worker
 * writes under the sequence counter seq (a seqlock: odd while it writes),
 * so a reader never shows one request's method with another's route. */
struct sb_slot {
    alignas(64) atomic_uint seq;
    atomic_int pid;              /* master */
    atomic_int state;            /* enum worker_state; master and worker */
    atomic_bool retiring;        /* master */
    atomic_ullong requests;      /* worker */
    atomic_llong pss_bytes;      /* master; -1: not sampled yet */
    atomic_llong spawned_at_ms;  /* master; wall clock */
    /* under seq, written by the worker */
    char method[SB_METHOD_LEN];
    char route[SB_ROUTE_LEN];
    double request_started_ms;   /* monotonic */
    double duration_ms;          /* of the last request, once it ended */
    int status;                  /* of the last request; 0 while running */
};

struct sb_shared {
    unsigned magic, version;
    size_t size;
    int nslots, workers;
    long long start_time_ms;     /* wall clock */
    atomic_ullong accepted;      /* connections accepted */
    atomic_int max_active;       /* most workers active at once */
    atomic_bool all_busy;        /* in a saturated episode */
    atomic_ullong saturated;     /* episodes: a request took the last idle worker */
    atomic_int listen_queue;     /* last sample; -1 unknown */
    atomic_int listen_queue_max;
    atomic_int listen_backlog;   /* the queue's capacity; -1 unknown */
    struct sb_slot slot[];
};

struct scoreboard {
    struct sb_shared *sh;
    size_t size;
    int fd;          /* the master's memfd; -1 in a worker */
    int self;        /* a worker's slot; -1 in the master */
    int diag_fd;     /* NETLINK_SOCK_DIAG, opened on first use */
    double pss_sampled_ms;
    /* A worker's serving threads share its slot (fcgi/adapter.c): under
     * this lock, the one writer of the slot's record at a time, how many
     * of them are in a request, and which one's request the slot shows:
     * the oldest still running (a stuck request stays in view however many
     * others come and go), else the last one begun. */
    pthread_mutex_t lock;
    int threads, busy;
    int shown;          /* index in running[] of the request shown */
    bool shown_running;
    /* Every serving thread's current request, so that when the one shown
     * ends the slot can move on to the oldest still running: showing only
     * "the first begun while none was shown" lost a long request for good
     * once a short one had been shown and had ended beside it. */
    int nthreads_seen;
    struct sb_running {
        bool running;
        double started_ms;
        char method[SB_METHOD_LEN], route[SB_ROUTE_LEN];
    } running[FCGI_MAX_THREADS];
};

/* A serving thread's index in running[], given on its first request;
 * -1 beyond FCGI_MAX_THREADS (the setting's bound, so never). */
static _Thread_local int sb_thread_ix = -1;

static struct scoreboard *sb_new(void)
{
    struct scoreboard *sb = calloc(1, sizeof *sb);
    if (sb != NULL) {
        sb->fd = sb->diag_fd = -1;
        sb->self = -1;
        sb->threads = 1;
        pthread_mutex_init(&sb->lock, NULL); /* cannot fail without attributes */
    }
    return sb;
}

struct scoreboard *scoreboard_create(int nslots, int workers)
{
    struct scoreboard *sb = sb_new();
    if (sb == NULL)
        return NULL;
    sb->size = sizeof(struct sb_shared) + (size_t)nslots * sizeof(struct sb_slot);
    /* Not close-on-exec: every worker the master execs inherits it. */
    sb->fd = memfd_create("orders-scoreboard", 0);
    char num[16];
    snprintf(num, sizeof num, "%d", sb->fd);
    if (sb->fd < 0 || ftruncate(sb->fd, (off_t)sb->size) != 0 ||
        setenv(SCOREBOARD_FD_ENV, num, 1) != 0)
        goto fail;
    sb->sh = mmap(NULL, sb->size, PROT_READ | PROT_WRITE, MAP_SHARED, sb->fd, 0);
    if (sb->sh == MAP_FAILED) {
        sb->sh = NULL;
        goto fail;
    }
    struct sb_shared *sh = sb->sh; /* zero-filled by ftruncate */
    sh->magic = SCOREBOARD_MAGIC;
    sh->version = SCOREBOARD_VERSION;
    sh->size = sb->size;
    sh->nslots = nslots;
    sh->workers = workers;
    sh->start_time_ms = clock_now_ms();
    atomic_store(&sh->listen_queue, -1);
    atomic_store(&sh->listen_backlog, -1);
    for (int i = 0; i < nslots; i++)
        atomic_store(&sh->slot[i].pss_bytes, -1);
    return sb;
fail:;
    int saved = errno;
    scoreboard_destroy(sb);
    errno = saved;
    return NULL;
}

void scoreboard_destroy(struct scoreboard *sb)
{
    if (sb == NULL)
        return;
    if (sb->sh != NULL)
        munmap(sb->sh, sb->size);
    if (sb->fd >= 0)
        close(sb->fd);
    if (sb->diag_fd >= 0)
        close(sb->diag_fd);
    pthread_mutex_destroy(&sb->lock);
    free(sb);
}

void scoreboard_detach(struct scoreboard *sb)
{
    scoreboard_destroy(sb);
}

static struct sb_slot *sb_slot(struct scoreboard *sb, int slot)
{
    if (sb == NULL || sb->sh == NULL || slot < 0 || slot >= sb->sh->nslots)
        return NULL;
    return &sb->sh->slot[slot];
}

/* The seqlock's writer side (one writer per slot). */
static void sb_write_begin(struct sb_slot *s)
{
    unsigned q = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void sb_write_end(struct sb_slot *s)
{
    unsigned q = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, q + 1, memory_order_release);
}

static void sb_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

void scoreboard_slot_spawned(struct scoreboard *sb, int slot, int pid)
{
    struct sb_slot *s = sb_slot(sb, slot);
    if (s == NULL)
        return;
    sb_write_begin(s);
    s->method[0] = s->route[0] = '\0';
    s->request_started_ms = s->duration_ms = 0;
    s->status = 0;
    sb_write_end(s);
    atomic_store(&s->requests, 0);
    atomic_store(&s->pss_bytes, -1);
    atomic_store(&s->spawned_at_ms, clock_now_ms());
    atomic_store(&s->retiring, false);
    atomic_store(&s->state, WORKER_STARTING);
    atomic_store(&s->pid, pid);
}

void scoreboard_slot_retiring(struct scoreboard *sb, int slot)
{
    struct sb_slot *s = sb_slot(sb, slot);
    if (s != NULL)
        atomic_store(&s->retiring, true);
}

void scoreboard_slot_exited(struct scoreboard *sb, int slot)
{
    struct sb_slot *s = sb_slot(sb, slot);
    if (s == NULL)
        return;
    atomic_store(&s->pid, 0);
    atomic_store(&s->state, WORKER_FREE);
    /* a worker that died serving ends the saturated episode it was in */
    atomic_store(&sb->sh->all_busy, false);
}

void scoreboard_slot_var(int slot, char *buf, size_t len)
{
    snprintf(buf, len, "%s=%d", SCOREBOARD_SLOT_ENV, slot);
}

bool scoreboard_is_slot_var(const char *e)
{
    size_t n = strlen(SCOREBOARD_SLOT_ENV);
    return strncmp(e, SCOREBOARD_SLOT_ENV, n) == 0 && e[n] == '=';
}

/* ---- the listen queue --------------------------------------------------- */

/* sock_diag for a unix socket: the kernel's own count of connections
 * waiting in the accept queue (what `ss -xl` shows as Recv-Q), and the
 * backlog (Send-Q). */
static int sb_unix_queue(struct scoreboard *sb, int fd, int *queue, int *backlog)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    if (sb->diag_fd < 0)
        sb->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (sb->diag_fd < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = ~0u;
    msg.req.udiag_ino = (__u32)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (send(sb->diag_fd, &msg, sizeof msg, 0) != (ssize_t)sizeof msg)
        return -1;
    /* The kernel answers within send(): never wait here. */
    alignas(struct nlmsghdr) char buf[1024];
    ssize_t n = recv(sb->diag_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0)
        return -1;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            return -1; /* NLMSG_ERROR: no such socket, or not allowed */
        struct unix_diag_msg *m = NLMSG_DATA(h);
        int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
        for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
             a = RTA_NEXT(a, alen)) {
            if (a->rta_type == UNIX_DIAG_RQLEN &&
                RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                struct unix_diag_rqlen q;
                memcpy(&q, RTA_DATA(a), sizeof q);
                *queue = (int)q.udiag_rqueue;
                *backlog = (int)q.udiag_wqueue;
                return 0;
            }
        }
    }
    return -1;
}

/* TCP: for a listening socket, tcpi_unacked is the accept queue and
 * tcpi_sacked its capacity. */
static int sb_tcp_queue(int fd, int *queue, int *backlog)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state != 10 /* LISTEN */)
        return -1;
    *queue = (int)ti.tcpi_unacked;
    *backlog = (int)ti.tcpi_sacked;
    return 0;
}

static int sb_listen_queue(struct scoreboard *sb, int fd)
{
    if (sb == NULL || sb->sh == NULL || fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int queue = -1, backlog = -1, rc = -1;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_UNIX)
            rc = sb_unix_queue(sb, fd, &queue, &backlog);
        else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
            rc = sb_tcp_queue(fd, &queue, &backlog);
    }
    if (rc != 0)
        return -1;
    struct sb_shared *sh = sb->sh;
    atomic_store(&sh->listen_queue, queue);
    atomic_store(&sh->listen_backlog, backlog);
    int max = atomic_load(&sh->listen_queue_max);
    while (queue > max && !atomic_compare_exchange_weak(&sh->listen_queue_max, &max, queue))
        ;
    return queue;
}

/* ---- memory ------------------------------------------------------------- */

static long long sb_pss_bytes(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Pss: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

void scoreboard_sample_worker(struct scoreboard *sb, int slot)
{
    struct sb_slot *s = sb_slot(sb, slot);
    int pid = s != NULL ? atomic_load(&s->pid) : 0;
    if (pid > 0)
        atomic_store(&s->pss_bytes, sb_pss_bytes(pid));
}

void scoreboard_sample(struct scoreboard *sb, int listen_fd, double pss_every_ms)
{
    if (sb == NULL || sb->sh == NULL)
        return;
    sb_listen_queue(sb, listen_fd);
    double now = clock_monotonic_ms();
    if (now - sb->pss_sampled_ms < pss_every_ms)
        return;
    sb->pss_sampled_ms = now;
    for (int i = 0; i < sb->sh->nslots; i++) {
        struct sb_slot *s = &sb->sh->slot[i];
        int pid = atomic_load(&s->pid);
        if (pid > 0)
            atomic_store(&s->pss_bytes, sb_pss_bytes(pid));
    }
}

/* ---- a worker ----------------------------------------------------------- */

struct scoreboard *scoreboard_attach(void)
{
    const char *fdv = getenv(SCOREBOARD_FD_ENV);
    const char *slotv = getenv(SCOREBOARD_SLOT_ENV);
    if (fdv == NULL || slotv == NULL)
        return NULL;
    int fd = atoi(fdv), slot = atoi(slotv);
    unsetenv(SCOREBOARD_FD_ENV);
    unsetenv(SCOREBOARD_SLOT_ENV);
    struct stat st;
    struct scoreboard *sb = NULL;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct sb_shared))
        goto out;
    sb = sb_new();
    if (sb == NULL)
        goto out;
    sb->size = (size_t)st.st_size;
    sb->sh = mmap(NULL, sb->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sb->sh == MAP_FAILED) {
        sb->sh = NULL;
    } else if (sb->sh->magic != SCOREBOARD_MAGIC || sb->sh->version != SCOREBOARD_VERSION ||
               sb->sh->size != sb->size || slot < 0 || slot >= sb->sh->nslots) {
        /* a master of another version: serve, without a status */
        munmap(sb->sh, sb->size);
        sb->sh = NULL;
    }
    if (sb->sh == NULL) {
        free(sb);
        sb = NULL;
    } else {
        sb->self = slot;
    }
out:
    if (fd >= 0)
        close(fd);
    return sb;
}

static struct sb_slot *sb_self(struct scoreboard *sb)
{
    return sb == NULL ? NULL : sb_slot(sb, sb->self);
}

void scoreboard_worker_ready(struct scoreboard *sb, int threads)
{
    struct sb_slot *s = sb_self(sb);
    if (s == NULL)
        return;
    sb->threads = threads < 1 ? 1 : threads;
    atomic_store(&s->state, WORKER_IDLE);
}

void scoreboard_connection_accepted(struct scoreboard *sb)
{
    if (sb != NULL && sb->sh != NULL)
        atomic_fetch_add_explicit(&sb->sh->accepted, 1, memory_order_relaxed);
}

/* Shows running[ix] in the slot (under sb->lock). */
static void sb_show(struct scoreboard *sb, struct sb_slot *s, int ix)
{
    const struct sb_running *r = &sb->running[ix];
    sb->shown = ix;
    sb->shown_running = true;
    sb_write_begin(s);
    sb_copy(s->method, sizeof s->method, r->method);
    sb_copy(s->route, sizeof s->route, r->route);
    s->request_started_ms = r->started_ms;
    s->duration_ms = 0;
    s->status = 0;
    sb_write_end(s);
}

void scoreboard_request_begin(struct scoreboard *sb, const char *method, double now_ms)
{
    struct sb_slot *s = sb_self(sb);
    if (s == NULL)
        return;
    pthread_mutex_lock(&sb->lock);
    sb->busy++;
    if (sb_thread_ix < 0 && sb->nthreads_seen < FCGI_MAX_THREADS)
        sb_thread_ix = sb->nthreads_seen++;
    int ix = sb_thread_ix;
    if (ix >= 0) {
        struct sb_running *r = &sb->running[ix];
        r->running = true;
        r->started_ms = now_ms;
        sb_copy(r->method, sizeof r->method, method);
        r->route[0] = '\0';
        if (!sb->shown_running)
            sb_show(sb, s, ix);
    }
    atomic_store(&s->state, WORKER_ACTIVE);
    /* How many are busy now, this one included: a scan of the slots'
     * states, a few cache lines, rather than a counter that a worker
     * killed mid-request would leave wrong for good. */
    struct sb_shared *sh = sb->sh;
    int active = 0;
    for (int i = 0; i < sh->nslots; i++)
        active += atomic_load_explicit(&sh->slot[i].state, memory_order_relaxed) == WORKER_ACTIVE;
    int max = atomic_load_explicit(&sh->max_active, memory_order_relaxed);
    while (active > max && !atomic_compare_exchange_weak(&sh->max_active, &max, active))
        ;
    /* Every worker busy, and every thread of this one: the next connection
     * may wait in the listen queue.  Counted once per episode, which ends
     * when any thread gets free. */
    if (active >= sh->workers && sb->busy >= sb->threads &&
        !atomic_exchange(&sh->all_busy, true))
        atomic_fetch_add_explicit(&sh->saturated, 1, memory_order_relaxed);
    pthread_mutex_unlock(&sb->lock);
}

void scoreboard_request_routed(struct scoreboard *sb, const char *route)
{
    struct sb_slot *s = sb_self(sb);
    if (s == NULL)
        return;
    pthread_mutex_lock(&sb->lock);
    int ix = sb_thread_ix;
    if (ix >= 0) {
        sb_copy(sb->running[ix].route, sizeof sb->running[ix].route, route);
        if (sb->shown_running && sb->shown == ix) {
            sb_write_begin(s);
            sb_copy(s->route, sizeof s->route, route);
            sb_write_end(s);
        }
    }
    pthread_mutex_unlock(&sb->lock);
}

void scoreboard_request_end(struct scoreboard *sb, int status, double now_ms)
{
    struct sb_slot *s = sb_self(sb);
    if (s == NULL)
        return;
    pthread_mutex_lock(&sb->lock);
    int ix = sb_thread_ix;
    if (ix >= 0) {
        sb->running[ix].running = false;
        if (sb->shown_running && sb->shown == ix) {
            sb->shown_running = false;
            sb_write_begin(s);
            s->duration_ms = now_ms - s->request_started_ms;
            s->status = status;
            sb_write_end(s);
            /* The oldest request still running on another thread, if
             * any, is shown from now on (else this one stays, ended). */
            int oldest = -1;
            for (int i = 0; i < sb->nthreads_seen; i++)
                if (sb->running[i].running &&
                    (oldest < 0 || sb->running[i].started_ms < sb->running[oldest].started_ms))
                    oldest = i;
            if (oldest >= 0)
                sb_show(sb, s, oldest);
        }
    }
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (--sb->busy == 0)
        atomic_store(&s->state, WORKER_IDLE);
    if (atomic_load_explicit(&sb->sh->all_busy, memory_order_relaxed))
        atomic_store(&sb->sh->all_busy, false);
    pthread_mutex_unlock(&sb->lock);
}

/* ---- reading ------------------------------------------------------------ */

struct sb_view {
    int pid, state;
    bool retiring;
    unsigned long long requests;
    long long pss_bytes, spawned_at_ms;
    char method[SB_METHOD_LEN], route[SB_ROUTE_LEN];
    double request_started_ms, duration_ms;
    int status;
};

/* A consistent copy of one slot; false when it is free.  The record is
 * retried while its worker writes it, a bounded number of times: a worker
 * stopped in the middle of a write (SIGSTOP, a debugger) leaves it blank
 * rather than hanging the reader. */
static bool sb_read(const struct sb_slot *s, struct sb_view *v)
{
    memset(v, 0, sizeof *v);
    v->pid = atomic_load(&s->pid);
    v->state = atomic_load(&s->state);
    if (v->pid == 0 || v->state == WORKER_FREE)
        return false;
    v->retiring = atomic_load(&s->retiring);
    v->requests = atomic_load(&s->requests);
    v->pss_bytes = atomic_load(&s->pss_bytes);
    v->spawned_at_ms = atomic_load(&s->spawned_at_ms);
    for (int tries = 0; tries < 1000; tries++) {
        unsigned q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (q1 & 1u)
            continue;
        memcpy(v->method, s->method, sizeof v->method);
        memcpy(v->route, s->route, sizeof v->route);
        v->request_started_ms = s->request_started_ms;
        v->duration_ms = s->duration_ms;
        v->status = s->status;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q1) {
            v->method[SB_METHOD_LEN - 1] = v->route[SB_ROUTE_LEN - 1] = '\0';
            return true;
        }
    }
    v->method[0] = v->route[0] = '\0';
    v->request_started_ms = v->duration_ms = 0;
    v->status = 0;
    return true;
}

static const char *sb_state_name(int state)
{
    switch (state) {
    case WORKER_STARTING: return "starting";
    case WORKER_IDLE: return "idle";
    case WORKER_ACTIVE: return "active";
    default: return "unknown";
    }
}

struct sb_counts {
    int idle, active, starting;
};

static struct sb_counts sb_count(const struct sb_shared *sh)
{
    struct sb_counts c = {0, 0, 0};
    for (int i = 0; i < sh->nslots; i++) {
        const struct sb_slot *s = &sh->slot[i];
        if (atomic_load(&s->pid) == 0)
            continue;
        switch (atomic_load(&s->state)) {
        case WORKER_IDLE: c.idle++; break;
        case WORKER_ACTIVE: c.active++; break;
        case WORKER_STARTING: c.starting++; break;
        default: break;
        }
    }
    return c;
}

static cJSON *sb_worker_json(const struct sb_view *v, double now_mono_ms)
{
    cJSON *w = cJSON_CreateObject();
    cJSON *r = cJSON_CreateObject();
    char started[CLOCK_RFC3339_LEN + 1] = "";
    clock_format_rfc3339(v->spawned_at_ms, started);
    bool running = v->state == WORKER_ACTIVE;
    if (w == NULL || r == NULL || cJSON_AddNumberToObject(w, "pid", v->pid) == NULL ||
        cJSON_AddStringToObject(w, "state", sb_state_name(v->state)) == NULL ||
        cJSON_AddBoolToObject(w, "retiring", v->retiring) == NULL ||
        cJSON_AddStringToObject(w, "start_time", started) == NULL ||
        cJSON_AddNumberToObject(w, "requests", (double)v->requests) == NULL ||
        (v->pss_bytes >= 0
             ? cJSON_AddNumberToObject(w, "memory_pss_bytes", (double)v->pss_bytes)
             : cJSON_AddNullToObject(w, "memory_pss_bytes")) == NULL) {
        cJSON_Delete(r);
        cJSON_Delete(w);
        return NULL;
    }
    if (v->method[0] == '\0') { /* no request yet */
        cJSON_Delete(r);
        if (cJSON_AddNullToObject(w, "request") != NULL)
            return w;
        cJSON_Delete(w);
        return NULL;
    }
    double duration = running ? now_mono_ms - v->request_started_ms : v->duration_ms;
    if (cJSON_AddStringToObject(r, "method", v->method) == NULL ||
        (v->route[0] ? cJSON_AddStringToObject(r, "route", v->route)
                     : cJSON_AddNullToObject(r, "route")) == NULL ||
        cJSON_AddNumberToObject(r, "duration_ms", duration < 0 ? 0 : duration) == NULL ||
        cJSON_AddBoolToObject(r, "running", running) == NULL ||
        (running ? cJSON_AddNullToObject(r, "status")
                 : cJSON_AddNumberToObject(r, "status", v->status)) == NULL ||
        !cJSON_AddItemToObject(w, "request", r)) {
        cJSON_Delete(r);
        cJSON_Delete(w);
        return NULL;
    }
    return w;
}

char *scoreboard_render_json(struct scoreboard *sb, const struct metrics *m,
                             int listen_fd, bool full, size_t *len)
{
    if (sb == NULL || sb->sh == NULL)
        return NULL;
    struct sb_shared *sh = sb->sh;
    sb_listen_queue(sb, listen_fd); /* now, not the master's last tick */
    struct sb_counts c = sb_count(sh);
    char started[CLOCK_RFC3339_LEN + 1] = "";
    clock_format_rfc3339(sh->start_time_ms, started);
    long long since_s = (clock_now_ms() - sh->start_time_ms) / 1000;
    cJSON *doc = cJSON_CreateObject();
    bool ok = doc != NULL &&
        cJSON_AddStringToObject(doc, "pool", "orders") != NULL &&
        cJSON_AddStringToObject(doc, "start_time", started) != NULL &&
        cJSON_AddNumberToObject(doc, "start_since_s", (double)since_s) != NULL &&
        cJSON_AddNumberToObject(doc, "accepted_connections",
                                (double)atomic_load(&sh->accepted)) != NULL &&
        cJSON_AddNumberToObject(doc, "listen_queue", atomic_load(&sh->listen_queue)) != NULL &&
        cJSON_AddNumberToObject(doc, "listen_queue_max",
                                atomic_load(&sh->listen_queue_max)) != NULL &&
        cJSON_AddNumberToObject(doc, "listen_queue_len",
                                atomic_load(&sh->listen_backlog)) != NULL &&
        cJSON_AddNumberToObject(doc, "idle_workers", c.idle) != NULL &&
        cJSON_AddNumberToObject(doc, "active_workers", c.active) != NULL &&
        cJSON_AddNumberToObject(doc, "total_workers", c.idle + c.active + c.starting) != NULL &&
        cJSON_AddNumberToObject(doc, "configured_workers", sh->workers) != NULL &&
        cJSON_AddNumberToObject(doc, "max_active_workers",
                                atomic_load(&sh->max_active)) != NULL &&
        cJSON_AddNumberToObject(doc, "saturated", (double)atomic_load(&sh->saturated)) != NULL &&
        cJSON_AddNumberToObject(doc, "slow_requests",
                                m ? (double)atomic_load(&m->slow_requests) : 0) != NULL &&
        cJSON_AddNumberToObject(doc, "worker_restarts",
                                m ? (double)atomic_load(&m->worker_restarts) : 0) != NULL;
    if (ok && full) {
        cJSON *list = cJSON_AddArrayToObject(doc, "workers");
        double now = clock_monotonic_ms();
        ok = list != NULL;
        for (int i = 0; ok && i < sh->nslots; i++) {
            struct sb_view v;
            if (!sb_read(&sh->slot[i], &v))
                continue;
            cJSON *w = sb_worker_json(&v, now);
            ok = w != NULL && cJSON_AddItemToArray(list, w);
            if (w != NULL && !ok)
                cJSON_Delete(w);
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

char *scoreboard_render_metrics(struct scoreboard *sb, int listen_fd, size_t *len)
{
    if (sb == NULL || sb->sh == NULL)
        return NULL;
    struct sb_shared *sh = sb->sh;
    sb_listen_queue(sb, listen_fd);
    struct sb_counts c = sb_count(sh);
    struct text t = {0};
    text_printf(&t, "# HELP orders_pool_start_time_seconds When the pool master started (Unix time).\n"
                  "# TYPE orders_pool_start_time_seconds gauge\n"
                  "orders_pool_start_time_seconds %.3f\n",
              (double)sh->start_time_ms / 1000.0);
    text_printf(&t, "# HELP orders_pool_workers Workers by state (starting ones are in neither).\n"
                  "# TYPE orders_pool_workers gauge\n"
                  "orders_pool_workers{state=\"idle\"} %d\n"
                  "orders_pool_workers{state=\"active\"} %d\n",
              c.idle, c.active);
    text_printf(&t, "# HELP orders_pool_max_active_workers The most workers active at once since the start.\n"
                  "# TYPE orders_pool_max_active_workers gauge\n"
                  "orders_pool_max_active_workers %d\n",
              atomic_load(&sh->max_active));
    text_printf(&t, "# HELP orders_pool_saturated_total Times every worker was busy (a request took the last idle one; php-fpm's max children reached).\n"
                  "# TYPE orders_pool_saturated_total counter\n"
                  "orders_pool_saturated_total %llu\n",
              (unsigned long long)atomic_load(&sh->saturated));
    /* An unknown queue (no sock_diag, an unusual socket) has no sample
     * rather than a false 0. */
    int queue = atomic_load(&sh->listen_queue);
    text_printf(&t, "# HELP orders_pool_listen_queue Connections waiting for a worker to accept them.\n"
                  "# TYPE orders_pool_listen_queue gauge\n");
    if (queue >= 0)
        text_printf(&t, "orders_pool_listen_queue %d\n", queue);
    text_printf(&t, "# HELP orders_pool_listen_queue_max The longest listen queue seen since the start.\n"
                  "# TYPE orders_pool_listen_queue_max gauge\n");
    if (queue >= 0)
        text_printf(&t, "orders_pool_listen_queue_max %d\n", atomic_load(&sh->listen_queue_max));
    text_printf(&t, "# HELP orders_pool_accepted_connections_total Connections the workers accepted.\n"
                  "# TYPE orders_pool_accepted_connections_total counter\n"
                  "orders_pool_accepted_connections_total %llu\n",
              (unsigned long long)atomic_load(&sh->accepted));
    text_printf(&t, "# HELP orders_worker_memory_pss_bytes Each worker's proportional set size, sampled every few seconds.\n"
                  "# TYPE orders_worker_memory_pss_bytes gauge\n");
    for (int i = 0; i < sh->nslots; i++) {
        const struct sb_slot *s = &sh->slot[i];
        int pid = atomic_load(&s->pid);
        long long pss = atomic_load(&s->pss_bytes);
        if (pid > 0 && pss >= 0)
            text_printf(&t, "orders_worker_memory_pss_bytes{pid=\"%d\"} %lld\n", pid, pss);
    }
    return text_take(&t, len);
}
