/*
 * cloudevent.c - the envelope.
 *
 * data is parsed and printed again rather than pasted in as text: the
 * result is then certain to be one line (JSON Lines sinks depend on that)
 * and certain to be JSON, whatever a future writer of the column does.  The
 * cost: cJSON holds numbers as doubles, so an integer beyond 2^53 would be
 * altered; the order has no numbers, and a schema that adds some should keep
 * them in that range (as JSON interoperability advice says anyway).
 */
#include "cloudevent.h"

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

static bool cloudevent_attributes(cJSON *obj, const struct outbox_event *ev)
{
    return cJSON_AddStringToObject(obj, "specversion", "1.0") != NULL &&
           cJSON_AddStringToObject(obj, "id", ev->id) != NULL &&
           cJSON_AddStringToObject(obj, "source", ev->source) != NULL &&
           cJSON_AddStringToObject(obj, "type", ev->type) != NULL &&
           cJSON_AddStringToObject(obj, "subject", ev->subject) != NULL &&
           cJSON_AddStringToObject(obj, "time", ev->time) != NULL &&
           cJSON_AddStringToObject(obj, "datacontenttype", "application/json") != NULL &&
           (ev->traceparent == NULL ||
            cJSON_AddStringToObject(obj, "traceparent", ev->traceparent) != NULL);
}

enum cloudevent_status cloudevent_render(const struct outbox_event *ev, char **out, size_t *len)
{
    cJSON *obj, *data;
    char *text;

    *out = NULL;
    *len = 0;
    data = cJSON_ParseWithOpts(ev->data, NULL, 1);
    if (data == NULL)
        return CLOUDEVENT_INVALID; /* or no memory: cJSON cannot tell; see relay.c */
    obj = cJSON_CreateObject();
    if (obj == NULL || !cloudevent_attributes(obj, ev) ||
        !cJSON_AddItemToObject(obj, "data", data)) {
        cJSON_Delete(obj);
        cJSON_Delete(data);
        return CLOUDEVENT_NOMEM;
    }
    text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj); /* also frees data */
    if (text == NULL)
        return CLOUDEVENT_NOMEM;
    *out = text;
    *len = strlen(text);
    return CLOUDEVENT_OK;
}

void cloudevent_free(char *rendered)
{
    cJSON_free(rendered);
}
