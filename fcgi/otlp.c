/*
 * otlp.c - spans as OTLP/HTTP JSON, for the exporter.
 *
 * The encoding follows the OTLP specification's JSON mapping of
 * ExportTraceServiceRequest (opentelemetry-proto, trace/v1): ids as hex
 * strings, 64-bit integers as decimal strings, enums as integers.  Every
 * string a span holds is already valid UTF-8 (core/span.c makes it so);
 * cJSON escapes the rest.
 */
#include "otlp.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* {"key": k, "value": {"stringValue": v}} or {"intValue": "n"} */
static cJSON *span_key_value(const char *key, const char *str, const long long *num)
{
    cJSON *kv = cJSON_CreateObject();
    cJSON *value = cJSON_CreateObject();
    char digits[24];
    if (num != NULL)
        snprintf(digits, sizeof digits, "%lld", *num);
    if (kv == NULL || value == NULL || cJSON_AddStringToObject(kv, "key", key) == NULL ||
        (num ? cJSON_AddStringToObject(value, "intValue", digits)
             : cJSON_AddStringToObject(value, "stringValue", str)) == NULL ||
        !cJSON_AddItemToObject(kv, "value", value)) {
        cJSON_Delete(kv);
        cJSON_Delete(value);
        return NULL;
    }
    return kv;
}

static int span_add_nanos(cJSON *obj, const char *key, long long ns)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", ns);
    return cJSON_AddStringToObject(obj, key, digits) ? 0 : -1;
}

static cJSON *span_to_json(const struct span *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *attrs = cJSON_AddArrayToObject(o, "attributes");
    cJSON *status = cJSON_CreateObject();
    if (o == NULL || attrs == NULL || status == NULL ||
        cJSON_AddStringToObject(o, "traceId", s->trace_id) == NULL ||
        cJSON_AddStringToObject(o, "spanId", s->span_id) == NULL ||
        (s->parent_span_id[0] &&
         cJSON_AddStringToObject(o, "parentSpanId", s->parent_span_id) == NULL) ||
        cJSON_AddStringToObject(o, "name", s->name) == NULL ||
        cJSON_AddNumberToObject(o, "kind", s->kind) == NULL ||
        span_add_nanos(o, "startTimeUnixNano", s->start_ns) != 0 ||
        span_add_nanos(o, "endTimeUnixNano", s->end_ns) != 0 ||
        cJSON_AddNumberToObject(status, "code", s->error ? 2 : 0) == NULL ||
        !cJSON_AddItemToObject(o, "status", status)) {
        cJSON_Delete(o);
        cJSON_Delete(status);
        return NULL;
    }
    for (int i = 0; i < s->attr_count; i++) {
        const struct span_attr *a = &s->attrs[i];
        cJSON *kv = span_key_value(a->key, a->str, a->is_int ? &a->num : NULL);
        if (kv == NULL || !cJSON_AddItemToArray(attrs, kv)) {
            cJSON_Delete(kv);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static cJSON *span_resource(const char *name, const char *version)
{
    cJSON *resource = cJSON_CreateObject();
    cJSON *attrs = cJSON_AddArrayToObject(resource, "attributes");
    cJSON *a = span_key_value("service.name", name, NULL);
    cJSON *b = span_key_value("service.version", version, NULL);
    if (resource == NULL || attrs == NULL || a == NULL || b == NULL ||
        !cJSON_AddItemToArray(attrs, a)) {
        cJSON_Delete(a);
        cJSON_Delete(b);
        cJSON_Delete(resource);
        return NULL;
    }
    if (!cJSON_AddItemToArray(attrs, b)) {
        cJSON_Delete(b);
        cJSON_Delete(resource);
        return NULL;
    }
    return resource;
}

char *otlp_encode_spans(const struct span *spans, size_t n,
                            const char *service_name, const char *service_version)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *rs_list = cJSON_AddArrayToObject(root, "resourceSpans");
    cJSON *rs = cJSON_CreateObject();
    char *text = NULL;
    if (root == NULL || rs_list == NULL || rs == NULL || !cJSON_AddItemToArray(rs_list, rs)) {
        cJSON_Delete(rs);
        goto out;
    }
    cJSON *resource = span_resource(service_name, service_version);
    if (resource == NULL || !cJSON_AddItemToObject(rs, "resource", resource)) {
        cJSON_Delete(resource);
        goto out;
    }
    cJSON *ss_list = cJSON_AddArrayToObject(rs, "scopeSpans");
    cJSON *ss = cJSON_CreateObject();
    if (ss_list == NULL || ss == NULL || !cJSON_AddItemToArray(ss_list, ss)) {
        cJSON_Delete(ss);
        goto out;
    }
    cJSON *scope = cJSON_AddObjectToObject(ss, "scope");
    cJSON *list = cJSON_AddArrayToObject(ss, "spans");
    if (scope == NULL || list == NULL ||
        cJSON_AddStringToObject(scope, "name", service_name) == NULL ||
        cJSON_AddStringToObject(scope, "version", service_version) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = span_to_json(&spans[i]);
        if (s == NULL || !cJSON_AddItemToArray(list, s)) {
            cJSON_Delete(s);
            goto out;
        }
    }
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}
