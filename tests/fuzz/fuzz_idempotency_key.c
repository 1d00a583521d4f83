/*
 * fuzz_idempotency_key.c - libFuzzer target for idempotency_key_parse
 * (core/idempotency.c), the Idempotency-Key header of POST /orders.
 *
 * The input, NUL-terminated, is the field value.  An accepted key is 1 to
 * 255 visible ASCII characters; a bare value is accepted as itself exactly
 * when it is such a key and not in quotes; a refusal says why; the key,
 * quoted again as an RFC 8941 string, parses back to itself.
 *
 *   tests/fuzz/run.sh idempotency_key
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz_idempotency_key: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                              \
            abort();                                                               \
        }                                                                          \
    } while (0)

static bool all_visible(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char *v = malloc(size + 1);
    if (v == NULL)
        return 0;
    memcpy(v, data, size);
    v[size] = '\0';
    size_t len = strlen(v);

    char key[IDEMPOTENCY_KEY_MAX + 1];
    const char *why = NULL;
    bool ok = idempotency_key_parse(v, 1, key, &why);
    bool quoted = len >= 2 && v[0] == '"' && v[len - 1] == '"';
    if (ok) {
        size_t n = strlen(key);
        CHECK(n >= 1 && n <= IDEMPOTENCY_KEY_MAX && all_visible(key, n));
        if (!quoted)
            CHECK(strcmp(key, v) == 0);
        /* Quote it again (escaping " and \) and parse it back. */
        char again[2 * IDEMPOTENCY_KEY_MAX + 3];
        size_t o = 0;
        again[o++] = '"';
        for (size_t i = 0; i < n; i++) {
            if (key[i] == '"' || key[i] == '\\')
                again[o++] = '\\';
            again[o++] = key[i];
        }
        again[o++] = '"';
        again[o] = '\0';
        char back[IDEMPOTENCY_KEY_MAX + 1];
        CHECK(idempotency_key_parse(again, 1, back, &why));
        CHECK(strcmp(back, key) == 0);
        CHECK(!idempotency_key_parse(v, 2, back, &why));
    } else {
        CHECK(why != NULL && why[0] != '\0');
        if (!quoted)
            CHECK(len == 0 || len > IDEMPOTENCY_KEY_MAX || !all_visible(v, len));
    }
    free(v);
    return 0;
}
