/*
 * fuzz_page_query.c - libFuzzer target for order_parse_page_query, the
 * query string of GET /orders.
 *
 * The input, NUL-terminated (as QUERY_STRING arrives), is the raw query
 * without '?'.  An accepted query gives a limit and offset in range, and
 * re-rendering them parses back to the same page; a query that never names
 * limit or offset is the default page; a refusal names its violation.
 *
 *   tests/fuzz/run.sh page_query
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

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
    int rc = order_parse_page_query(q, &page, &detail);
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
        CHECK(order_parse_page_query(again, &back, &d2) == 0);
        CHECK(back.limit == page.limit && back.offset == page.offset);
    } else {
        CHECK(rc == -1);
        CHECK(detail != NULL && detail[0] != '\0' && strlen(detail) < 1024);
        CHECK(query_names(q, "limit") || query_names(q, "offset"));
        free(detail);
    }
    free(q);
    return 0;
}
