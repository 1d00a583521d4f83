/*
 * sink_file.h - what the file sink exposes beyond its row in the table:
 * the fsync it calls, replaceable by tests that must see which descriptors
 * (the file, its directory) are synced and when.
 */
#ifndef ORDERS_ADAPTERS_SINK_FILE_H
#define ORDERS_ADAPTERS_SINK_FILE_H

/* Tests only; NULL restores fsync(2). */
void sink_file_set_fsync(int (*fn)(int fd));

#endif
