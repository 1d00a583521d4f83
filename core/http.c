#include "http.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void response_init(struct response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 500;
}

void response_free(struct response *res)
{
    for (int i = 0; i < res->header_count; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    if (!res->body_is_static)
        free(res->body);
    response_init(res);
}

int response_add_header(struct response *res, const char *name,
                        const char *value)
{
    if (res->header_count >= RESPONSE_MAX_HEADERS)
        return -1;
    char *n = strdup(name);
    char *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    res->headers[res->header_count].name = n;
    res->headers[res->header_count].value = v;
    res->header_count++;
    return 0;
}

const char *response_header(const struct response *res, const char *name)
{
    for (int i = 0; i < res->header_count; i++)
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

void response_set_body(struct response *res, int status,
                       const char *content_type, char *body, size_t len)
{
    if (!res->body_is_static)
        free(res->body);
    res->body_is_static = 0;
    res->status = status;
    res->content_type = content_type;
    res->body = body;
    res->body_len = len;
}

void response_set_json(struct response *res, int status, const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        response_set_body(res, 500, NULL, NULL, 0);
        return;
    }
    response_set_body(res, status, "application/json", text, strlen(text));
}

const char *http_reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

bool http_is_json_media_type(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t len = strcspn(ct, "; \t");
    if (len == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    if (len > 17 && strncasecmp(ct, "application/", 12) == 0 &&
        strncasecmp(ct + len - 5, "+json", 5) == 0)
        return true;
    return false;
}
