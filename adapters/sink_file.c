/*
 * sink_file.c - EVENT_SINK=file:PATH: JSON Lines appended to PATH.
 *
 * A batch is written with as few write(2) calls as possible, then fsync'ed
 * once: one fsync per batch is what makes thousands of events per second
 * possible.  Only then is it acknowledged.
 *
 * Durability of the name as well as the bytes: whenever the file is
 * created (the first open, or a reopen after log rotation renamed or
 * removed it), its directory is fsync'ed before anything written to it is
 * acknowledged.  Without that, a power cut could take the new directory
 * entry, and with it events already marked delivered.
 *
 * If a write fails the file is truncated back to where the batch began, so
 * a retry never appends after half a line.  A kill -9 between two writes of
 * one batch, or a power cut before the fsync, can still leave a torn last
 * line; each batch first cuts it off, which is safe because nothing after
 * the last newline was ever acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sink_file.h"
#include "sink_lines.h"
#include "sink_util.h"
#include "sinks.h"

/* Appending and fsyncing one batch; beyond this the lease could lapse. */
#define SINK_FILE_BUDGET_MS 1000

struct sink_file {
    struct sink base;
    int fd;
    char *path;
    struct sink_lines lines;
};

static int (*sink_file_fsync)(int fd) = fsync;

void sink_file_set_fsync(int (*fn)(int fd))
{
    sink_file_fsync = fn != NULL ? fn : fsync;
}

static int sink_file_check(const char *spec, char *err, size_t errlen)
{
    if (strncmp(spec, "file:", 5) != 0 || spec[5] == '\0') {
        snprintf(err, errlen, "EVENT_SINK: file: needs a path, as in file:/var/lib/orders/events.jsonl");
        return -1;
    }
    return 0;
}

/* Makes the file's directory entry durable. */
static int sink_file_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc, saved;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    saved = errno;
    free(dir);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    rc = sink_file_fsync(fd);
    saved = errno;
    (void)close(fd);
    errno = saved;
    return rc;
}

static int sink_file_reopen(struct sink_file *s)
{
    /* Read access too: sink_file_repair_tail looks at the last line. */
    int fd = open(s->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    if (sink_file_sync_dir(s->path) != 0) {
        int saved = errno;
        (void)close(fd);
        errno = saved;
        return -1;
    }
    if (s->fd >= 0)
        (void)close(s->fd); /* the old, rotated file: everything in it was fsync'ed */
    s->fd = fd;
    return 0;
}

/* Reopens when the path no longer names the file we hold (rotated away). */
static int sink_file_follow(struct sink_file *s)
{
    struct stat by_path, by_fd;

    if (stat(s->path, &by_path) != 0 || fstat(s->fd, &by_fd) != 0 ||
        by_path.st_dev != by_fd.st_dev || by_path.st_ino != by_fd.st_ino)
        return sink_file_reopen(s);
    return 0;
}

/* Finds where the torn tail begins: just after the last newline. */
static int sink_file_last_newline_end(int fd, off_t size, off_t *end)
{
    char chunk[4096];
    off_t pos = size;

    while (pos > 0) {
        size_t want = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
        ssize_t n = pread(fd, chunk, want, pos - (off_t)want);

        if (n != (ssize_t)want)
            return -1;
        pos -= (off_t)want;
        for (size_t i = want; i > 0; i--) {
            if (chunk[i - 1] == '\n') {
                *end = pos + (off_t)i;
                return 0;
            }
        }
    }
    *end = 0;
    return 0;
}

static int sink_file_repair_tail(struct sink_file *s, off_t size, off_t *good)
{
    char last;
    off_t end;

    *good = size;
    if (size == 0)
        return 0;
    if (pread(s->fd, &last, 1, size - 1) != 1)
        return -1;
    if (last == '\n')
        return 0;
    if (sink_file_last_newline_end(s->fd, size, &end) != 0 || ftruncate(s->fd, end) != 0)
        return -1;
    *good = end;
    struct log_field f[] = {LOG_STR("path", s->path), LOG_INT("bytes", (long long)(size - end))};
    log_emit(log_process(), LOG_WARN, NULL,
             "cut an unacknowledged torn line off the end of the event file", f, LOG_COUNT(f));
    return 0;
}

/* Whatever failed, the batch's bytes must not stay behind half written. */
static void sink_file_rollback(struct sink_file *s, off_t batch_start)
{
    int saved = errno;

    if (ftruncate(s->fd, batch_start) != 0) {
        struct log_field f[] = {LOG_STR("path", s->path), LOG_STR("error", strerror(errno))};
        log_emit(log_process(), LOG_ERROR, NULL,
                 "cannot truncate the event file after a failed write", f, LOG_COUNT(f));
    }
    errno = saved;
}

static int sink_file_send(struct sink *base, const struct sink_message *msgs, int count,
                          struct sink_result *r)
{
    struct sink_file *s = (struct sink_file *)base;
    struct stat st;
    off_t batch_start;

    if (sink_file_follow(s) != 0 || fstat(s->fd, &st) != 0 ||
        sink_file_repair_tail(s, st.st_size, &batch_start) != 0) {
        sink_result_set(r, SINK_RETRY, "%s: %s", s->path, strerror(errno));
        return 0;
    }
    if (sink_lines_write(&s->lines, s->fd, msgs, count) != 0 || sink_file_fsync(s->fd) != 0) {
        sink_result_set(r, SINK_RETRY, "writing %s: %s", s->path, strerror(errno));
        sink_file_rollback(s, batch_start);
        return 0;
    }
    sink_result_ok(r);
    return count;
}

static void sink_file_close(struct sink *base)
{
    struct sink_file *s = (struct sink_file *)base;

    if (s->fd >= 0)
        (void)close(s->fd); /* everything acknowledged was fsync'ed already */
    sink_lines_free(&s->lines);
    free(s->path);
    free(s);
}

static int sink_file_open(struct sink **out, const char *spec, const struct sink_options *opt,
                          char *err, size_t errlen)
{
    struct sink_file *s;

    (void)opt;
    if (sink_file_check(spec, err, errlen) != 0)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->path = strdup(spec + 5)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->base.adapter = &sink_file_adapter;
    s->base.max_batch = INT_MAX;
    s->base.send_budget_ms = SINK_FILE_BUDGET_MS;
    snprintf(s->base.describe, sizeof(s->base.describe), "%s", spec);
    s->fd = -1;
    if (sink_file_reopen(s) != 0) {
        snprintf(err, errlen, "opening %s: %s", s->path, strerror(errno));
        sink_file_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}

const struct sink_adapter sink_file_adapter = {
    .name = "file",
    .check = sink_file_check,
    .open = sink_file_open,
    .send = sink_file_send,
    .close = sink_file_close,
};
