/*
 * fuzz_traceparent.c - libFuzzer target for the W3C traceparent header
 * (trace_parse_traceparent, trace_begin, trace_format_traceparent).
 *
 * The input, NUL-terminated, is the header value.  Checked: an accepted
 * header renders back to itself (version 00; a future version renders as
 * 00 with the same three fields, which is what we send on), with ids that
 * are lowercase hex and not all zero; trace_begin continues exactly the
 * accepted traces and starts a fresh, well-formed one otherwise.
 *
 *   tests/fuzz/run.sh traceparent
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_traceparent: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static bool id_ok(const char *s, size_t n)
{
    bool nonzero = false;
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = malloc(size + 1);
    if (h == NULL)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';

    struct trace_context tc;
    memset(&tc, 0, sizeof tc);
    bool ok = trace_parse_traceparent(h, &tc);
    if (ok) {
        size_t len = strlen(h);
        CHECK(len >= TRACEPARENT_LEN);
        CHECK(!(h[0] == 'f' && h[1] == 'f'));
        CHECK(id_ok(tc.trace_id, 32) && id_ok(tc.parent_span_id, 16));
        /* Render with the caller's span in our slot: the header again. */
        struct trace_context shown = tc;
        memcpy(shown.span_id, tc.parent_span_id, sizeof shown.span_id);
        char out[TRACEPARENT_LEN + 1];
        trace_format_traceparent(&shown, out);
        CHECK(strlen(out) == TRACEPARENT_LEN);
        CHECK(memcmp(out, "00", 2) == 0);
        CHECK(memcmp(out + 2, h + 2, TRACEPARENT_LEN - 2) == 0);
        if (h[0] == '0' && h[1] == '0')
            CHECK(len == TRACEPARENT_LEN);
        else if (len > TRACEPARENT_LEN)
            CHECK(h[TRACEPARENT_LEN] == '-');
        /* The rendering is itself a valid header with the same fields. */
        struct trace_context again;
        CHECK(trace_parse_traceparent(out, &again));
        CHECK(strcmp(again.trace_id, tc.trace_id) == 0 &&
              strcmp(again.parent_span_id, tc.parent_span_id) == 0 &&
              again.flags == tc.flags);
    }

    struct trace_context begun;
    CHECK(trace_begin(h, &begun) == 0);
    CHECK(id_ok(begun.trace_id, 32) && id_ok(begun.span_id, 16));
    if (ok) {
        CHECK(strcmp(begun.trace_id, tc.trace_id) == 0);
        CHECK(strcmp(begun.parent_span_id, tc.parent_span_id) == 0);
        CHECK(begun.flags == tc.flags);
    } else {
        CHECK(begun.parent_span_id[0] == '\0' && begun.flags == 0x01);
    }
    char out[TRACEPARENT_LEN + 1];
    trace_format_traceparent(&begun, out);
    struct trace_context again;
    CHECK(trace_parse_traceparent(out, &again));
    free(h);
    return 0;
}
