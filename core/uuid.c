#include "uuid.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Layout (RFC 9562, 5.7): 48 bits of Unix milliseconds, version 7, 12 bits
 * and 62 bits of randomness around the variant bits.  Ids of one millisecond
 * are not ordered among themselves, so the list orders by the store's
 * creation sequence instead (adapters/store_*.c). */
int uuid_v7_generate(long long unix_ms, char *out)
{
    unsigned char b[16];
    if (getrandom(b + 6, 10, 0) != 10)
        return -1;
    unsigned long long ms = (unsigned long long)unix_ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    snprintf(out, UUID_STR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

bool uuid_is_canonical(const char *s)
{
    if (s == NULL || strlen(s) != UUID_STR_LEN)
        return false;
    for (int i = 0; i < UUID_STR_LEN; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}
