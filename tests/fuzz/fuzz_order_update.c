/*
 * fuzz_order_update.c - libFuzzer target for order_parse_update, the
 * validation of a PATCH /orders/{id} body.
 *
 * The input is the raw body (not NUL-terminated).  An acceptance must name
 * one of the four statuses, and only a body whose "status" member is that
 * status' exact name may be accepted; a refusal always names its violation.
 *
 *   tests/fuzz/run.sh order_update
 */
#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_json.h"
#include "order.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_order_update: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = size ? malloc(size) : NULL;
    if (size && body == NULL)
        return 0;
    if (size)
        memcpy(body, data, size);

    enum order_status to = (enum order_status)-1;
    char *detail = (char *)"not touched";
    int rc = order_parse_update(body, size, &to, &detail);
    if (rc == 0) {
        CHECK(detail == NULL);
        CHECK(to >= ORDER_PENDING && to <= ORDER_DELIVERED);
        /* "paid\u0000x" is not "paid": the body with each NUL made
         * U+0001 must give the same answer (fuzz_json.h). */
        char *copy = malloc(size);
        CHECK(copy != NULL);
        memcpy(copy, body, size);
        if (json_defuse_nuls(copy, size) > 0) {
            enum order_status again;
            char *d2 = NULL;
            if (order_parse_update(copy, size, &again, &d2) != 0 || again != to) {
                fprintf(stderr, "fuzz_order_update: a NUL (\\u0000 or raw) "
                                "was accepted and cut the value short\n");
                abort();
            }
        }
        free(copy);
        /* Independently: the body is one JSON object whose status member
         * names exactly this status. */
        cJSON *doc = cJSON_ParseWithLength(body, size);
        CHECK(cJSON_IsObject(doc));
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
        CHECK(cJSON_IsString(st) &&
              strcmp(st->valuestring, order_status_name(to)) == 0);
        cJSON_Delete(doc);
    } else {
        CHECK(rc == -1);
        CHECK(detail != NULL && detail[0] != '\0' && strlen(detail) < 1024);
        free(detail);
    }
    free(body);
    return 0;
}
