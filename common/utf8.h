/*
 * utf8.h - keeping text that leaves the process valid UTF-8 (RFC 3629).
 *
 * Request paths and methods are the client's raw bytes; a JSON log line or
 * an OTLP batch holding an invalid sequence is rejected whole by strict
 * readers.  Both the logger and the span attributes use these.
 */
#ifndef ORDERS_UTF8_H
#define ORDERS_UTF8_H

#include <stddef.h>

/* "\xEF\xBF\xBD", the replacement character U+FFFD, stands in for each
 * byte that does not start a valid sequence. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* Length (2..4) of the valid multi-byte sequence at s, or 0 when there is
 * none: overlong forms, surrogates, values past U+10FFFF and truncated
 * sequences included.  s is NUL-terminated; an ASCII byte also gives 0. */
int utf8_sequence_len(const unsigned char *s);

/* Copies src into dst (cap bytes, cap > 0), always NUL-terminated and
 * valid UTF-8: invalid bytes become U+FFFD, and a character that does not
 * fit whole is left out rather than cut.  Returns the bytes written, NUL
 * excluded. */
size_t utf8_copy(char *dst, size_t cap, const char *src);

#endif
