/*
 * sink_lines.c - the buffer is written out early once it holds
 * SINK_LINES_CHUNK bytes, so a large batch of large events does not all
 * sit in memory at once.
 */
#include "sink_lines.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINK_LINES_CHUNK (1024 * 1024)

static int sink_lines_append(struct sink_lines *b, const char *data, size_t len)
{
    if (b->cap - b->len < len + 1) {
        size_t cap = b->cap != 0 ? b->cap : 64 * 1024;
        char *p;

        while (cap - b->len < len + 1) {
            if (cap > SIZE_MAX / 2) {
                errno = ENOMEM;
                return -1;
            }
            cap *= 2;
        }
        p = realloc(b->buf, cap);
        if (p == NULL)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    b->buf[b->len++] = '\n';
    return 0;
}

static int sink_lines_flush(struct sink_lines *b, int fd)
{
    const char *p = b->buf;
    size_t left = b->len;

    while (left > 0) {
        ssize_t n = write(fd, p, left);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            b->len = 0;
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    b->len = 0;
    return 0;
}

int sink_lines_write(struct sink_lines *b, int fd, const struct sink_message *msgs, int count)
{
    b->len = 0;
    for (int i = 0; i < count; i++) {
        if (sink_lines_append(b, msgs[i].envelope, msgs[i].envelope_len) != 0)
            return -1;
        if (b->len >= SINK_LINES_CHUNK && sink_lines_flush(b, fd) != 0)
            return -1;
    }
    return sink_lines_flush(b, fd);
}

void sink_lines_free(struct sink_lines *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}
