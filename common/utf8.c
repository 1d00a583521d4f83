#include "utf8.h"

#include <string.h>

int utf8_sequence_len(const unsigned char *c)
{
    int n;
    unsigned cp;
    if (c[0] >= 0xc2 && c[0] <= 0xdf) { n = 2; cp = c[0] & 0x1fu; }
    else if (c[0] >= 0xe0 && c[0] <= 0xef) { n = 3; cp = c[0] & 0x0fu; }
    else if (c[0] >= 0xf0 && c[0] <= 0xf4) { n = 4; cp = c[0] & 0x07u; }
    else return 0;
    /* stops at the NUL terminator, which is not a continuation byte */
    for (int i = 1; i < n; i++) {
        if ((c[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (c[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

size_t utf8_copy(char *dst, size_t cap, const char *src)
{
    size_t at = 0;
    for (const unsigned char *c = (const unsigned char *)src; *c != '\0';) {
        const char *piece = (const char *)c;
        size_t len = 1;
        if (*c >= 0x80) {
            int n = utf8_sequence_len(c);
            if (n == 0) {
                piece = UTF8_REPLACEMENT;
                len = sizeof UTF8_REPLACEMENT - 1;
            } else {
                len = (size_t)n;
            }
            c += n == 0 ? 1 : n;
        } else {
            c++;
        }
        if (at + len >= cap)
            break;
        memcpy(dst + at, piece, len);
        at += len;
    }
    dst[at] = '\0';
    return at;
}
