/*
 * cloudevent.h - an events row rendered as a structured-mode CloudEvents 1.0
 * JSON object (https://github.com/cloudevents/spec, json-format.md):
 *
 *     {"specversion":"1.0","id":...,"source":...,"type":...,"subject":...,
 *      "time":...,"datacontenttype":"application/json",
 *      "traceparent":... (only when the row has one), "data":{...}}
 *
 * The rendering is a pure function of the row, so a redelivered event is
 * byte for byte the event sent before, with the same id.
 */
#ifndef ORDERS_PUBLISHER_CLOUDEVENT_H
#define ORDERS_PUBLISHER_CLOUDEVENT_H

#include <stddef.h>

#include "store.h"

enum cloudevent_status { CLOUDEVENT_OK, CLOUDEVENT_INVALID, CLOUDEVENT_NOMEM };

/* On CLOUDEVENT_OK *out is one line of JSON (no newline), to be released
 * with cloudevent_free.  CLOUDEVENT_INVALID: the data column is not JSON, so
 * no sink could ever accept the event. */
enum cloudevent_status cloudevent_render(const struct outbox_event *ev, char **out, size_t *len);
void cloudevent_free(char *rendered);

#endif
