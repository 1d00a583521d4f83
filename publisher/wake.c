/*
 * wake.c - signalfd + the store's change signal + poll(2).
 */
#include "wake.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

struct wake {
    int signal_fd;
    struct store *store; /* whose change signal wakes; NULL: none */
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
    free(w);
}

void wake_watch(struct wake *w, struct store *st)
{
    w->store = st;
}

/* The store's descriptor, asked anew each time: a store may lose its
 * signal (a watch removed, a connection lost) or gain one. */
static int wake_store_fd(const struct wake *w)
{
    return w->store != NULL ? store_change_fd(w->store) : -1;
}

bool wake_watching(const struct wake *w)
{
    return wake_store_fd(w) >= 0;
}

static void wake_read_signal(struct wake *w)
{
    struct signalfd_siginfo si;
    ssize_t n = read(w->signal_fd, &si, sizeof(si));

    if (n == (ssize_t)sizeof(si) && w->stop_signal == 0)
        w->stop_signal = (int)si.ssi_signo;
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

    /* Notices the store already read (libpq queues NOTIFYs that arrive
     * during a query) leave nothing on the descriptor to wake poll. */
    if (w->stop_signal == 0 && w->store != NULL && wake_store_fd(w) >= 0 &&
        store_change_drain(w->store))
        return WAKE_CHANGE;
    while (w->stop_signal == 0) {
        int store_fd = wake_store_fd(w);
        struct pollfd fds[2] = {{.fd = w->signal_fd, .events = POLLIN},
                                {.fd = store_fd, .events = POLLIN}};
        int n = poll(fds, store_fd >= 0 ? 2 : 1, wake_poll_timeout(deadline));

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
        if (store_change_drain(w->store))
            return WAKE_CHANGE;
    }
    return WAKE_STOP;
}

void wake_discard(struct wake *w)
{
    if (wake_store_fd(w) >= 0)
        (void)store_change_drain(w->store);
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
