/*
 * sink_stdout.c - EVENT_SINK=stdout: JSON Lines on standard output.
 *
 * What "delivered" promises here: the whole batch was accepted by write(2).
 * On a pipe or a terminal that means the kernel holds the bytes for the
 * reader, not that the reader processed or stored them: if the reader (a
 * log shipper, the journal) loses them, the outbox does not send them
 * again.  When stdout is a regular file, the batch is also fsync'ed, which
 * gives it the file sink's durability for the data (not for a file the
 * shell has just created: use file:PATH for that).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink_lines.h"
#include "sinks.h"
#include "sink_util.h"

/* Writing a batch to a pipe that drains; beyond this the lease could lapse. */
#define SINK_STDOUT_BUDGET_MS 1000

struct sink_stdout {
    struct sink base;
    struct sink_lines lines;
};

static int sink_stdout_check(const char *spec, char *err, size_t errlen)
{
    if (strcmp(spec, "stdout") != 0) {
        snprintf(err, errlen, "EVENT_SINK: stdout takes nothing after it");
        return -1;
    }
    return 0;
}

static int sink_stdout_open(struct sink **out, const char *spec, const struct sink_options *opt,
                            char *err, size_t errlen)
{
    struct sink_stdout *s;

    (void)opt;
    if (sink_stdout_check(spec, err, errlen) != 0)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->base.adapter = &sink_stdout_adapter;
    snprintf(s->base.describe, sizeof(s->base.describe), "stdout");
    s->base.max_batch = INT_MAX;
    s->base.send_budget_ms = SINK_STDOUT_BUDGET_MS;
    *out = &s->base;
    return 0;
}

/* fsync means nothing on a pipe or terminal (EINVAL). */
static int sink_stdout_sync(void)
{
    struct stat st;

    if (fstat(STDOUT_FILENO, &st) != 0)
        return -1;
    return S_ISREG(st.st_mode) ? fsync(STDOUT_FILENO) : 0;
}

static int sink_stdout_send(struct sink *base, const struct sink_message *msgs, int count,
                            struct sink_result *r)
{
    struct sink_stdout *s = (struct sink_stdout *)base;

    if (sink_lines_write(&s->lines, STDOUT_FILENO, msgs, count) != 0 || sink_stdout_sync() != 0) {
        sink_result_set(r, SINK_RETRY, "writing stdout: %s", strerror(errno));
        return 0;
    }
    sink_result_ok(r);
    return count;
}

static void sink_stdout_close(struct sink *base)
{
    struct sink_stdout *s = (struct sink_stdout *)base;

    sink_lines_free(&s->lines);
    free(s);
}

const struct sink_adapter sink_stdout_adapter = {
    .name = "stdout",
    .check = sink_stdout_check,
    .open = sink_stdout_open,
    .send = sink_stdout_send,
    .close = sink_stdout_close,
};
