#include "order.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cursor.h"

static const char *const order_status_names[] = {"pending", "paid", "shipped",
                                                 "delivered"};

const char *order_status_name(enum order_status s)
{
    return (unsigned)s < 4 ? order_status_names[s] : "pending";
}

bool order_status_parse(const char *s, enum order_status *out)
{
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcmp(s, order_status_names[i]) == 0) {
            *out = (enum order_status)i;
            return true;
        }
    }
    return false;
}

bool order_transition_allowed(enum order_status from, enum order_status to)
{
    return from != ORDER_DELIVERED && (int)to == (int)from + 1;
}

void order_free(struct order *o)
{
    free(o->customer_id);
    free(o->items_json);
    o->customer_id = NULL;
    o->items_json = NULL;
}

/* Violations are collected, not returned at the first: the contract wants
 * every one named in `detail`. */
struct violations {
    char text[1024];
    size_t len;
    int count;
};

static void violation_add(struct violations *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation_add(struct violations *v, const char *fmt, ...)
{
    char one[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    v->count++;
    int w = snprintf(v->text + v->len, sizeof v->text - v->len, "%s%s",
                     v->len ? ", " : "", one);
    if (w > 0 && (size_t)w < sizeof v->text - v->len)
        v->len += (size_t)w;
    else /* keep the detail bounded; the first violations are named */
        v->len = strlen(v->text);
}

static int violations_finish(const struct violations *v, char **detail)
{
    if (v->count == 0)
        return 0;
    *detail = strdup(v->text);
    return -1;
}

/* Counts code points of a UTF-8 string, or returns -1 when it is not valid
 * UTF-8 (overlong forms, surrogates and values past U+10FFFF included). */
static long utf8_length(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        unsigned c = *p, extra, min;
        if (c < 0x80) { extra = 0; min = 0; }
        else if ((c & 0xe0) == 0xc0) { extra = 1; min = 0x80; c &= 0x1f; }
        else if ((c & 0xf0) == 0xe0) { extra = 2; min = 0x800; c &= 0x0f; }
        else if ((c & 0xf8) == 0xf0) { extra = 3; min = 0x10000; c &= 0x07; }
        else return -1;
        p++;
        for (unsigned i = 0; i < extra; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return -1;
            c = (c << 6) | (*p & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return -1;
        n++;
    }
    return n;
}

static bool text_is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* The shared rule of customerId and each item: a non-blank string of 1 to
 * max characters. */
static void validate_text(struct violations *v, const cJSON *value,
                          const char *name, long max)
{
    if (!cJSON_IsString(value)) {
        violation_add(v, "%s must be a string", name);
        return;
    }
    long len = utf8_length(value->valuestring);
    if (len < 0)
        violation_add(v, "%s must be valid UTF-8", name);
    else if (len == 0 || text_is_blank(value->valuestring))
        violation_add(v, "%s should not be empty", name);
    else if (len > max)
        violation_add(v, "%s must be shorter than or equal to %ld characters",
                      name, max);
}

static void validate_items(struct violations *v, const cJSON *items)
{
    if (items == NULL) {
        violation_add(v, "items is required");
        return;
    }
    if (!cJSON_IsArray(items)) {
        violation_add(v, "items must be an array");
        return;
    }
    int n = cJSON_GetArraySize(items);
    if (n < 1)
        violation_add(v, "items must contain at least 1 elements");
    else if (n > ORDER_ITEMS_MAX)
        violation_add(v, "items must contain no more than %d elements",
                      ORDER_ITEMS_MAX);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, items) {
        char name[32];
        snprintf(name, sizeof name, "items[%d]", i++);
        validate_text(v, item, name, ORDER_ITEM_MAX);
        if (v->count >= 20) /* a 100-item body of numbers: name the first */
            break;
    }
}

/* What cJSON 1.7 lets through and we must not: a raw control character in
 * a string (RFC 8259, section 7 forbids them), and U+0000, raw or escaped.
 * cJSON stores strings NUL-terminated, so "abc\u0000def" would silently
 * become "abc", and a member "customerId\u0000x" would count as customerId:
 * the service would accept something the client did not send. */
enum json_text_check { JSON_TEXT_OK, JSON_TEXT_INVALID, JSON_TEXT_NUL };

static enum json_text_check json_text_check(const char *s, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0') /* never valid JSON text, in a string or out */
            return JSON_TEXT_INVALID;
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            return JSON_TEXT_INVALID;
        } else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && s[i + 2] == '0' && s[i + 3] == '0' &&
                s[i + 4] == '0' && s[i + 5] == '0')
                return JSON_TEXT_NUL;
            i++; /* the escaped character */
        }
    }
    return JSON_TEXT_OK;
}

/* Parses a body that must be exactly one JSON object (trailing bytes other
 * than whitespace are an error).  On failure adds the violation. */
static cJSON *parse_object(const char *body, size_t len, struct violations *v)
{
    if (body == NULL || len == 0) {
        violation_add(v, "request body is required");
        return NULL;
    }
    enum json_text_check text = json_text_check(body, len);
    if (text == JSON_TEXT_NUL) {
        violation_add(v, "request body must not contain U+0000");
        return NULL;
    }
    if (text == JSON_TEXT_INVALID) {
        violation_add(v, "request body is not valid JSON");
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (doc == NULL) {
        violation_add(v, "request body is not valid JSON");
        return NULL;
    }
    for (; end < body + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(doc);
            violation_add(v, "request body is not valid JSON");
            return NULL;
        }
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        violation_add(v, "request body must be a JSON object");
        return NULL;
    }
    return doc;
}

int order_parse_create(const char *body, size_t len, struct order *out,
                       char **detail)
{
    struct violations v = {.len = 0, .count = 0};
    *detail = NULL;
    memset(out, 0, sizeof *out);
    cJSON *doc = parse_object(body, len, &v);
    if (doc == NULL)
        return violations_finish(&v, detail);
    const cJSON *customer = cJSON_GetObjectItemCaseSensitive(doc, "customerId");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (customer == NULL)
        violation_add(&v, "customerId is required");
    else
        validate_text(&v, customer, "customerId", ORDER_CUSTOMER_MAX);
    validate_items(&v, items);
    if (v.count > 0) {
        cJSON_Delete(doc);
        return violations_finish(&v, detail);
    }
    out->customer_id = strdup(customer->valuestring);
    out->items_json = cJSON_PrintUnformatted(items);
    cJSON_Delete(doc);
    if (out->customer_id == NULL || out->items_json == NULL) {
        order_free(out);
        return -1;
    }
    out->status = ORDER_PENDING;
    return 0;
}

int order_parse_update(const char *body, size_t len, enum order_status *to,
                       char **detail)
{
    struct violations v = {.len = 0, .count = 0};
    *detail = NULL;
    cJSON *doc = parse_object(body, len, &v);
    if (doc == NULL)
        return violations_finish(&v, detail);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    if (status == NULL)
        violation_add(&v, "status is required");
    else if (!cJSON_IsString(status) || !order_status_parse(status->valuestring, to))
        violation_add(&v, "status must be one of the following values: "
                          "pending, paid, shipped, delivered");
    cJSON_Delete(doc);
    return violations_finish(&v, detail);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out (at most cap-1 bytes; '+' is a space as
 * in HTML forms).  Returns false when the value is too long or malformed. */
static bool query_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            /* "%00" would end the C string early: "limit=5%00junk" must not
             * read as limit=5. */
            if (c == '\0')
                return false;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

/* A whole decimal integer in [min, max]; no sign, spaces or exponent. */
static bool parse_bounded_int(const char *s, long long min, long long max,
                              long long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

struct query_param {
    const char *name;
    long long min, max;
    long long *dst;
    const char *violation;
    int seen;
};

static void query_apply(struct query_param *p, const char *raw, size_t n,
                        struct violations *v)
{
    char value[32];
    if (++p->seen > 1) {
        if (p->seen == 2)
            violation_add(v, "%s must be given at most once", p->name);
        return;
    }
    if (!query_decode(raw, n, value, sizeof value) ||
        !parse_bounded_int(value, p->min, p->max, p->dst))
        violation_add(v, "%s", p->violation);
}

/* The text parameters: each at most once, decoded into its buffer. */
enum page_text { PAGE_CURSOR, PAGE_STATUS, PAGE_CUSTOMER, PAGE_TEXTS };

static void page_text_check(struct page_query *out, enum page_text which,
                            const char *value, const struct cursor_key *key,
                            struct violations *v)
{
    switch (which) {
    case PAGE_CURSOR:
    {
        out->has_cursor = true;
        size_t n = strnlen(value, PAGE_CURSOR_MAX); /* decoded with that cap */
        memcpy(out->cursor, value, n);
        out->cursor[n] = '\0';
        if (key != NULL && !cursor_decode(key, value, &out->after))
            violation_add(v, "cursor is not valid: use the next link of a page as it is");
        break;
    }
    case PAGE_STATUS:
        out->has_status = true;
        if (!order_status_parse(value, &out->status))
            violation_add(v, "status must be one of the following values: "
                             "pending, paid, shipped, delivered");
        break;
    case PAGE_CUSTOMER: {
        out->has_customer = true;
        snprintf(out->customer_id, sizeof out->customer_id, "%s", value);
        long len = utf8_length(value);
        if (len < 0)
            violation_add(v, "customerId must be valid UTF-8");
        else if (len == 0 || text_is_blank(value))
            violation_add(v, "customerId should not be empty");
        else if (len > ORDER_CUSTOMER_MAX)
            violation_add(v, "customerId must be shorter than or equal to %d characters",
                          ORDER_CUSTOMER_MAX);
        break;
    }
    default:
        break;
    }
}

int order_parse_page_query(const char *query, const struct cursor_key *key,
                           struct page_query *out, char **detail)
{
    struct violations v = {.len = 0, .count = 0};
    *detail = NULL;
    memset(out, 0, sizeof *out);
    out->limit = PAGE_LIMIT_DEFAULT;
    out->offset = 0;
    struct query_param params[] = {
        {"limit", 1, PAGE_LIMIT_MAX, &out->limit,
         "limit must be an integer between 1 and 100", 0},
        {"offset", 0, 1000000000000LL, &out->offset,
         "offset must be an integer greater than or equal to 0", 0},
    };
    static const char *const text_names[PAGE_TEXTS] = {"cursor", "status", "customerId"};
    static const char *const text_bad[PAGE_TEXTS] = {
        "cursor is not valid: use the next link of a page as it is",
        "status must be one of the following values: pending, paid, shipped, delivered",
        "customerId must be shorter than or equal to 128 characters",
    };
    int text_seen[PAGE_TEXTS] = {0};
    const char *s = query ? query : "";
    while (*s) {
        size_t pair = strcspn(s, "&");
        const char *eq = memchr(s, '=', pair);
        size_t name_len = eq ? (size_t)(eq - s) : pair;
        const char *raw = eq ? eq + 1 : s + pair;
        size_t raw_len = eq ? pair - name_len - 1 : 0;
        for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
            if (strlen(params[i].name) == name_len &&
                memcmp(s, params[i].name, name_len) == 0)
                query_apply(&params[i], raw, raw_len, &v);
        }
        for (int t = 0; t < PAGE_TEXTS; t++) {
            if (strlen(text_names[t]) != name_len || memcmp(s, text_names[t], name_len) != 0)
                continue;
            if (++text_seen[t] > 1) {
                if (text_seen[t] == 2)
                    violation_add(&v, "%s must be given at most once", text_names[t]);
                continue;
            }
            /* The largest buffer; each kind checks its own length. */
            char value[PAGE_CUSTOMER_MAX + 1];
            size_t cap = t == PAGE_CURSOR ? PAGE_CURSOR_MAX + 1 : sizeof value;
            if (!query_decode(raw, raw_len, value, cap)) {
                violation_add(&v, "%s", text_bad[t]);
                if (t == PAGE_CURSOR)
                    out->has_cursor = true;
                continue;
            }
            page_text_check(out, (enum page_text)t, value, key, &v);
        }
        s += pair;
        if (*s == '&')
            s++;
    }
    if (out->has_cursor && params[1].seen > 0)
        violation_add(&v, "cursor and offset cannot be used together: a cursor page "
                          "continues where its cursor points");
    return violations_finish(&v, detail);
}

cJSON *order_to_json(const struct order *o)
{
    char created[CLOCK_RFC3339_LEN + 1], updated[CLOCK_RFC3339_LEN + 1];
    if (clock_format_rfc3339(o->created_ms, created) != 0 ||
        clock_format_rfc3339(o->updated_ms, updated) != 0)
        return NULL;
    cJSON *json = cJSON_CreateObject();
    cJSON *items = cJSON_Parse(o->items_json);
    if (json == NULL || items == NULL ||
        cJSON_AddStringToObject(json, "id", o->id) == NULL ||
        cJSON_AddStringToObject(json, "customerId", o->customer_id) == NULL ||
        !cJSON_AddItemToObject(json, "items", items)) {
        cJSON_Delete(json);
        cJSON_Delete(items);
        return NULL;
    }
    if (cJSON_AddStringToObject(json, "status", order_status_name(o->status)) == NULL ||
        cJSON_AddStringToObject(json, "createdAt", created) == NULL ||
        cJSON_AddStringToObject(json, "updatedAt", updated) == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}
