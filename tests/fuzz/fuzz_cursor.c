/*
 * fuzz_cursor.c - libFuzzer target for cursor_decode (core/cursor.c), the
 * cursor of GET /orders, which clients hand back to us.
 *
 * The input, NUL-terminated, is the cursor text.  Nothing made up is ever
 * accepted unless it is exactly what cursor_encode writes for its position
 * (so an accepted cursor is one this key made); a cursor built from the
 * input's first bytes round-trips, and any one character changed in it is
 * refused.
 *
 *   tests/fuzz/run.sh cursor
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_cursor: check failed: %s (line %d)\n",   \
                    #cond, __LINE__);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char *t = malloc(size + 1);
    if (t == NULL)
        return 0;
    memcpy(t, data, size);
    t[size] = '\0';

    long long pos = -1;
    char again[CURSOR_TEXT_LEN + 1];
    if (cursor_decode(&key, t, &pos)) {
        CHECK(pos >= 0);
        CHECK(cursor_encode(&key, pos, again) == 0);
        CHECK(strcmp(again, t) == 0);
    }

    /* A real cursor for a position taken from the input. */
    uint64_t p = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        p = (p << 8) | data[i];
    p &= INT64_MAX;
    CHECK(cursor_encode(&key, (long long)p, again) == 0);
    CHECK(cursor_decode(&key, again, &pos) && pos == (long long)p);
    if (size > 0) {
        size_t at = data[0] % CURSOR_TEXT_LEN;
        char c = (char)data[size - 1];
        if (c != again[at] && c != '\0') {
            again[at] = c;
            CHECK(!cursor_decode(&key, again, &pos));
        }
    }
    free(t);
    return 0;
}
