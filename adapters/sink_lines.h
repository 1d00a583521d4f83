/*
 * sink_lines.h - a batch of structured-mode CloudEvents written as JSON
 * Lines (one event per line) to a file descriptor, with as few write(2)
 * calls as the batch allows.  Shared by the stdout and file sinks.
 */
#ifndef ORDERS_ADAPTERS_SINK_LINES_H
#define ORDERS_ADAPTERS_SINK_LINES_H

#include "sink.h"

struct sink_lines {
    char *buf;
    size_t len, cap;
};

/* Returns 0 when every line was written, or -1 with errno set; some of the
 * batch may then have been written (the caller decides what to undo). */
int sink_lines_write(struct sink_lines *b, int fd, const struct sink_message *msgs, int count);
void sink_lines_free(struct sink_lines *b);

#endif
