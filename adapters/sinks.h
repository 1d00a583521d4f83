/*
 * sinks.h - the table of sink adapters, chosen by the form of EVENT_SINK:
 *
 *     stdout                  adapters/sink_stdout.c
 *     file:PATH               adapters/sink_file.c
 *     http://... https://...  adapters/sink_http.c
 *     amqp://... amqps://...  adapters/sink_amqp.c   (RabbitMQ)
 *     nats://... tls://...    adapters/sink_nats.c   (NATS JetStream)
 *
 * Adding a transport is adding its file and a row in sinks.c.
 */
#ifndef ORDERS_ADAPTERS_SINKS_H
#define ORDERS_ADAPTERS_SINKS_H

#include <stddef.h>

#include "sink.h"

extern const struct sink_adapter sink_stdout_adapter;
extern const struct sink_adapter sink_file_adapter;
extern const struct sink_adapter sink_http_adapter;
extern const struct sink_adapter sink_amqp_adapter;
extern const struct sink_adapter sink_nats_adapter;

/* The adapter for spec, or NULL (then err says why, naming EVENT_SINK and
 * the forms it accepts, without repeating the value: it may hold a
 * password). */
const struct sink_adapter *sinks_find(const char *spec, char *err, size_t errlen);

/* sinks_find, then the adapter's own parse: what --check-config runs.
 * Returns 0, or -1 with one line in err. */
int sinks_check(const char *spec, char *err, size_t errlen);

/* Finds, sets up and opens the sink; sink_close undoes all of it. */
int sinks_open(struct sink **out, const char *spec, const struct sink_options *opt,
               char *err, size_t errlen);
void sink_close(struct sink *s);

#endif
