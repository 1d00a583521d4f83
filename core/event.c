#include "event.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int event_build(struct event_row *ev, const struct order *o,
                const enum order_status *previous,
                const struct event_meta *meta, long long now_ms)
{
    memset(ev, 0, sizeof *ev);
    if (uuid_v7_generate(now_ms, ev->id) != 0 ||
        clock_format_rfc3339(now_ms, ev->time) != 0)
        return -1;
    cJSON *data = order_to_json(o);
    if (data == NULL)
        return -1;
    if (previous != NULL &&
        cJSON_AddStringToObject(data, "previousStatus",
                                order_status_name(*previous)) == NULL) {
        cJSON_Delete(data);
        return -1;
    }
    ev->data = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (ev->data == NULL)
        return -1;
    ev->type = previous ? EVENT_TYPE_UPDATED : EVENT_TYPE_CREATED;
    ev->source = meta->source;
    ev->subject = o->id;
    ev->traceparent = meta->traceparent;
    ev->committed_ms = now_ms;
    return 0;
}

void event_free(struct event_row *ev)
{
    free(ev->data);
    ev->data = NULL;
}
