/*
 * wake.c - signalfd + inotify + poll(2).
 */
#include "wake.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

struct wake {
    int signal_fd;
    int inotify_fd;    /* -1 when not watching */
    char *db_name;     /* basename of the database: its -wal, -shm, -journal share it */
    size_t db_name_len;
    int stop_signal;   /* 0 until asked to stop */
};

int wake_open(struct wake **out, char *err, size_t errlen)
{
    struct wake *w = calloc(1, sizeof(*w));
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigset_t set;

    *out = NULL;
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->inotify_fd = -1;
    if (sigemptyset(&set) != 0 || sigaddset(&set, SIGTERM) != 0 || sigaddset(&set, SIGINT) != 0 ||
        sigprocmask(SIG_BLOCK, &set, NULL) != 0 || sigemptyset(&ignore.sa_mask) != 0 ||
        sigaction(SIGPIPE, &ignore, NULL) != 0 ||
        (w->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "setting up signals: %s", strerror(errno));
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void wake_close(struct wake *w)
{
    if (w == NULL)
        return;
    (void)close(w->signal_fd);
    if (w->inotify_fd >= 0)
        (void)close(w->inotify_fd);
    free(w->db_name);
    free(w);
}

/* Splits db_path into the directory to watch and the file name to match. */
static int wake_split(const char *db_path, char **dir, char **name)
{
    const char *slash = strrchr(db_path, '/');

    if (slash == NULL) {
        *dir = strdup(".");
        *name = strdup(db_path);
    } else {
        *dir = slash == db_path ? strdup("/") : strndup(db_path, (size_t)(slash - db_path));
        *name = strdup(slash + 1);
    }
    if (*dir == NULL || *name == NULL) {
        free(*dir);
        free(*name);
        return -1;
    }
    return 0;
}

int wake_watch(struct wake *w, const char *db_path)
{
    char *dir = NULL, *name = NULL;
    int fd;

    if (w->inotify_fd >= 0)
        return 0;
    if (wake_split(db_path, &dir, &name) != 0)
        return -1;
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        if (fd >= 0)
            (void)close(fd);
        free(dir);
        free(name);
        return -1;
    }
    free(dir);
    free(w->db_name);
    w->db_name = name;
    w->db_name_len = strlen(name);
    w->inotify_fd = fd;
    return 0;
}

bool wake_watching(const struct wake *w)
{
    return w->inotify_fd >= 0;
}

static void wake_read_signal(struct wake *w)
{
    struct signalfd_siginfo si;
    ssize_t n = read(w->signal_fd, &si, sizeof(si));

    if (n == (ssize_t)sizeof(si) && w->stop_signal == 0)
        w->stop_signal = (int)si.ssi_signo;
}

/* Is one queued inotify record about the database's files? */
static bool wake_relevant(const struct wake *w, const struct inotify_event *ev, const char *name)
{
    if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
        return true; /* lost track: assume the worst, look at the database */
    return ev->len > 0 && strncmp(name, w->db_name, w->db_name_len) == 0;
}

/* Drains the inotify queue; true when any record concerned the database.
 * The directory watch going away (IN_IGNORED) ends watching: timeouts
 * carry on alone. */
static bool wake_drain(struct wake *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool relevant = false, gone = false;
    ssize_t n;

    while ((n = read(w->inotify_fd, buf, sizeof(buf))) > 0) {
        for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
            struct inotify_event ev;

            memcpy(&ev, buf + off, sizeof(ev));
            relevant |= wake_relevant(w, &ev, buf + off + sizeof(ev));
            gone |= (ev.mask & IN_IGNORED) != 0;
            off += sizeof(ev) + ev.len;
        }
    }
    if (gone) {
        (void)close(w->inotify_fd);
        w->inotify_fd = -1;
    }
    return relevant;
}

static int wake_poll_timeout(long long deadline)
{
    long long left = deadline - (long long)clock_monotonic_ms();

    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

enum wake_reason wake_wait(struct wake *w, long long timeout_ms)
{
    long long deadline = (long long)clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    while (w->stop_signal == 0) {
        struct pollfd fds[2] = {{.fd = w->signal_fd, .events = POLLIN},
                                {.fd = w->inotify_fd, .events = POLLIN}};
        int n = poll(fds, w->inotify_fd >= 0 ? 2 : 1, wake_poll_timeout(deadline));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return WAKE_TIMEOUT; /* n < 0 cannot happen with valid fds */
        if (fds[0].revents & POLLIN) {
            wake_read_signal(w);
            continue;
        }
        if (!(fds[1].revents & POLLIN))
            return WAKE_TIMEOUT; /* an error condition: do not spin on it */
        if (wake_drain(w))
            return WAKE_CHANGE;
    }
    return WAKE_STOP;
}

void wake_discard(struct wake *w)
{
    if (w->inotify_fd >= 0)
        (void)wake_drain(w);
}

bool wake_stop_requested(struct wake *w)
{
    if (w->stop_signal == 0)
        wake_read_signal(w);
    return w->stop_signal != 0;
}

const char *wake_stop_signal(const struct wake *w)
{
    switch (w->stop_signal) {
    case 0:
        return NULL;
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "signal";
    }
}
