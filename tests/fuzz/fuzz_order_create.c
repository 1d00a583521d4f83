/*
 * fuzz_order_create.c - libFuzzer target for order_parse_create, the
 * validation of a POST /orders body.
 *
 * The input is the raw body, exactly as a client sends it (not
 * NUL-terminated: the parser gets a length, as from FastCGI).  Besides "no
 * crash, no leak", the parser's contract is checked: a refusal always names
 * its violations; an acceptance gives a customerId and items that obey the
 * rules, and the order renders (order_to_json) to a document that parses
 * back to the same customerId and items.
 *
 *   tests/fuzz/run.sh order_create
 */
#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_json.h"
#include "order.h"

/* A check that failed is a finding: abort so libFuzzer saves the input. */
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_order_create: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Code points of valid UTF-8, or -1: an independent count to hold the
 * parser's own to. */
static long utf8_count(const unsigned char *s)
{
    long n = 0;
    for (; *s; s++)
        if ((*s & 0xc0) != 0x80)
            n++;
    return n;
}

static bool text_ok(const char *s, long max)
{
    long n = utf8_count((const unsigned char *)s);
    if (n < 1 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return true;
    return false; /* blank */
}

static void check_accepted(const struct order *o)
{
    CHECK(o->customer_id != NULL && o->items_json != NULL);
    CHECK(o->status == ORDER_PENDING);
    CHECK(text_ok(o->customer_id, ORDER_CUSTOMER_MAX));

    cJSON *items = cJSON_Parse(o->items_json);
    CHECK(cJSON_IsArray(items));
    int n = cJSON_GetArraySize(items);
    CHECK(n >= 1 && n <= ORDER_ITEMS_MAX);
    const cJSON *item;
    cJSON_ArrayForEach(item, items) {
        CHECK(cJSON_IsString(item));
        CHECK(text_ok(item->valuestring, ORDER_ITEM_MAX));
    }

    /* The API's rendering of the order, parsed back. */
    struct order shown = *o;
    memcpy(shown.id, "0190a6f2-6c1e-7a3b-8c4d-5e6f708192a3", UUID_STR_LEN + 1);
    shown.created_ms = 1700000000123LL;
    shown.updated_ms = 1700000000456LL;
    cJSON *json = order_to_json(&shown);
    CHECK(json != NULL);
    char *text = cJSON_PrintUnformatted(json);
    CHECK(text != NULL);
    cJSON *back = cJSON_Parse(text);
    CHECK(back != NULL);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(back, "customerId");
    CHECK(cJSON_IsString(c) && strcmp(c->valuestring, o->customer_id) == 0);
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(back, "items"), items, 1));
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(back, "status");
    CHECK(cJSON_IsString(st) && strcmp(st->valuestring, "pending") == 0);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(back, "id");
    CHECK(cJSON_IsString(id) && strcmp(id->valuestring, shown.id) == 0);
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(json);
    cJSON_Delete(items);
}

/* The same body with each NUL made U+0001 must give the same order:
 * else a NUL cut something short (fuzz_json.h). */
static void check_nul_escapes(const char *body, size_t size, const struct order *o)
{
    char *copy = malloc(size);
    CHECK(copy != NULL);
    memcpy(copy, body, size);
    if (json_defuse_nuls(copy, size) > 0) {
        struct order again;
        char *detail = NULL;
        int rc = order_parse_create(copy, size, &again, &detail);
        if (rc != 0 || strcmp(again.customer_id, o->customer_id) != 0 ||
            strcmp(again.items_json, o->items_json) != 0) {
            fprintf(stderr, "fuzz_order_create: a NUL (\\u0000 or raw) was accepted "
                            "and cut the value short: customerId \"%s\", items %s\n",
                    o->customer_id, o->items_json);
            abort();
        }
        order_free(&again);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly size bytes, so ASan sees any read past the
     * end of the body. */
    char *body = size ? malloc(size) : NULL;
    if (size && body == NULL)
        return 0;
    if (size)
        memcpy(body, data, size);

    struct order o;
    char *detail = (char *)"not touched";
    int rc = order_parse_create(body, size, &o, &detail);
    if (rc == 0) {
        CHECK(detail == NULL);
        check_accepted(&o);
        check_nul_escapes(body, size, &o);
        order_free(&o);
    } else {
        CHECK(rc == -1);
        CHECK(detail != NULL && detail[0] != '\0' && strlen(detail) < 1024);
        CHECK(o.customer_id == NULL && o.items_json == NULL);
        free(detail);
    }
    free(body);
    return 0;
}
