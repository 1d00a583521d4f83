/*
 * fuzz_page_query.c - libFuzzer target for order_parse_page_query, the
 * query string of GET /orders.
 *
 * The input, NUL-terminated (as QUERY_STRING arrives), is the raw query
 * without '?'.  An accepted query gives a limit and offset in range, and
 * re-rendering them parses back to the same page; a query that never names
 * limit or offset is the default page; a refusal names its violation.
 * Cursors and filters: an accepted cursor decoded with the key (and came
 * without offset), an accepted status is one of the four, an accepted
 * customerId is 1 to 128 characters; a query naming none of them has none.
 *
 *   tests/fuzz/run.sh page_query
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "order.h"

static struct cursor_key key;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (cursor_key_init(&key, (const unsigned char *)"fuzz secret", 11) != 0)
        abort();
    return 0;
}

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_page_query: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Whether some &-separated pair has the raw name name (the parser does not
 * decode names). */
static bool query_names(const char *q, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = q;;) {
        size_t pair = strcspn(s, "&");
        if (pair >= n && strncmp(s, name, n) == 0 && (pair == n || s[n] == '='))
            return true;
        s += pair;
        if (*s == '\0')
            return false;
        s++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (q == NULL)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';

    struct page_query page;
    char *detail = (char *)"not touched";
    int rc = order_parse_page_query(q, &key, &page, &detail);
    if (rc == 0) {
        CHECK(detail == NULL);
        CHECK(page.limit >= 1 && page.limit <= PAGE_LIMIT_MAX);
        CHECK(page.offset >= 0 && page.offset <= 1000000000000LL);
        if (!query_names(q, "limit"))
            CHECK(page.limit == PAGE_LIMIT_DEFAULT);
        if (!query_names(q, "offset"))
            CHECK(page.offset == 0);
        char again[64];
        snprintf(again, sizeof again, "offset=%lld&limit=%lld", page.offset,
                 page.limit);
        struct page_query back;
        char *d2 = NULL;
        CHECK(order_parse_page_query(again, &key, &back, &d2) == 0);
        CHECK(back.limit == page.limit && back.offset == page.offset);
        if (page.has_cursor) {
            long long pos;
            CHECK(!query_names(q, "offset"));
            CHECK(cursor_decode(&key, page.cursor, &pos) && pos == page.after);
        }
        CHECK(page.has_cursor == query_names(q, "cursor"));
        CHECK(page.has_status == query_names(q, "status"));
        CHECK(page.has_customer == query_names(q, "customerId"));
        if (page.has_status)
            CHECK(page.status >= ORDER_PENDING && page.status <= ORDER_DELIVERED);
        if (page.has_customer)
            CHECK(page.customer_id[0] != '\0' && strlen(page.customer_id) <= PAGE_CUSTOMER_MAX);
    } else {
        CHECK(rc == -1);
        CHECK(detail != NULL && detail[0] != '\0' && strlen(detail) < 1024);
        CHECK(query_names(q, "limit") || query_names(q, "offset") ||
              query_names(q, "cursor") || query_names(q, "status") ||
              query_names(q, "customerId"));
        free(detail);
    }
    free(q);
    return 0;
}
