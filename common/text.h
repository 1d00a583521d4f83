/*
 * text.h - a growable text buffer for rendering documents (the /metrics
 * exposition, the pool's status) with printf-style appends.
 *
 *     struct text t = {0};
 *     text_printf(&t, "%s %llu\n", name, value);
 *     char *doc = text_take(&t, &len);   NULL when any append failed
 *
 * An append that cannot grow the buffer marks it failed; later appends do
 * nothing, so a renderer checks once at the end instead of after every line.
 */
#ifndef ORDERS_TEXT_H
#define ORDERS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Hands the NUL-terminated text and its length to the caller (free() it),
 * or frees the buffer and returns NULL when an append failed or nothing was
 * written.  The struct is left empty either way. */
char *text_take(struct text *t, size_t *len);

#endif
