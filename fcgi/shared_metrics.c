/*
 * shared_metrics.c - the pool's counters in shared memory (shared_metrics.h).
 */
#include "shared_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define METRICS_FD_ENV "ORDERS_METRICS_FD"

struct metrics *shared_metrics_create(void)
{
    /* not close-on-exec: the workers the master execs inherit it */
    int fd = memfd_create("orders-metrics", 0);
    if (fd < 0)
        return NULL;
    struct metrics *m = MAP_FAILED;
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    if (ftruncate(fd, sizeof *m) != 0 ||
        (m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED ||
        setenv(METRICS_FD_ENV, num, 1) != 0) {
        if (m != MAP_FAILED)
            munmap(m, sizeof *m);
        close(fd);
        return NULL;
    }
    return m;
}

struct metrics *shared_metrics_attach(void)
{
    const char *v = getenv(METRICS_FD_ENV);
    int fd = v ? atoi(v) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "orders-fcgi: --worker is started by the pool master only\n");
        return NULL;
    }
    struct metrics *m = MAP_FAILED;
    /* A master started before an upgrade that grew the counters made a
     * smaller memfd; mapping past its end would fault at the first count.
     * Refusing to start fails the reload, and the old workers serve on. */
    if ((size_t)st.st_size < sizeof *m)
        fprintf(stderr, "orders-fcgi: the pool master predates this worker's "
                        "metrics; restart the service instead of reloading it\n");
    else
        m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return m == MAP_FAILED ? NULL : m;
}
