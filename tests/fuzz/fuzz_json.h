/*
 * fuzz_json.h - what the body targets need to know of JSON text beyond
 * what cJSON tells them.
 *
 * cJSON 1.7.15 decodes the escape \u0000 to a NUL byte inside valuestring
 * (and inside a member name), and copies a raw NUL byte in a string the
 * same way, so everything after it is silently cut off: a body naming
 * "abc\u0000def" would be taken as "abc", and a member named
 * "customerId\u0000x" as customerId.  A validator must refuse such input,
 * never accept it as something the client did not send.  The targets check
 * that by parsing a second time with every NUL in a string made U+0001: if
 * the NUL was in a member nobody reads, nothing changes; if it was in one
 * that matters, the two outcomes differ.
 */
#ifndef ORDERS_FUZZ_JSON_H
#define ORDERS_FUZZ_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Turns every \u0000 escape inside a string of [s, s+n) into \u0001 and
 * every raw NUL byte there into 0x01, in place; returns how many there
 * were.  Exact for what cJSON accepts. */
static inline int json_defuse_nuls(char *s, size_t n)
{
    bool in_string = false;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = false;
        } else if (s[i] == '\0') {
            s[i] = '\x01';
            found++;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && s[i + 2] == '0' &&
                s[i + 3] == '0' && s[i + 4] == '0' && s[i + 5] == '0') {
                s[i + 5] = '1';
                found++;
            }
            i++; /* the escaped character */
        }
    }
    return found;
}

#endif
