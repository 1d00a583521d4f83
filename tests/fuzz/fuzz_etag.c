/*
 * fuzz_etag.c - libFuzzer target for the If-Match / If-None-Match list
 * parser (core/precondition.c).
 *
 * The input, NUL-terminated (as a header value arrives), is the field value.
 * Checked: both comparisons agree on what is malformed; a strong match is a
 * weak match too; "*" matches; appending our own tag to a well-formed list
 * makes it match, appending garbage makes it malformed.
 *
 *   tests/fuzz/run.sh etag
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precondition.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_etag: check failed: %s (line %d)\n",     \
                    #cond, __LINE__);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *h = malloc(size + 64);
    if (h == NULL)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    size_t len = strlen(h);
    long long version = size > 0 ? data[0] % 8 : 1;

    enum etag_match strong = etag_list_match_strong(h, version);
    enum etag_match weak = etag_list_match_weak(h, version);
    CHECK((strong == ETAG_MALFORMED) == (weak == ETAG_MALFORMED));
    if (strong == ETAG_MATCH)
        CHECK(weak == ETAG_MATCH);
    struct precondition p = {h, NULL};
    CHECK(precondition_valid(&p) == (strong != ETAG_MALFORMED));
    if (strong != ETAG_MALFORMED && strchr(h, '*') == NULL) {
        char tag[ETAG_MAX];
        etag_format(version, tag);
        snprintf(h + len, 64, ", %s", tag);
        CHECK(etag_list_match_strong(h, version) == ETAG_MATCH);
        snprintf(h + len, 64, ", v%lld", version);
        CHECK(etag_list_match_strong(h, version) == ETAG_MALFORMED);
    }
    CHECK(etag_list_match_strong("*", version) == ETAG_MATCH);
    free(h);
    return 0;
}
