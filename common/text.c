#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void text_printf(struct text *t, const char *fmt, ...)
{
    while (!t->failed) {
        va_list ap;
        va_start(ap, fmt);
        /* With no buffer yet, vsnprintf(NULL, 0) only measures. */
        int n = vsnprintf(t->p != NULL ? t->p + t->len : NULL,
                          t->p != NULL ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        /* Doubling keeps a long render to O(log n) reallocations. */
        size_t cap = t->cap * 2 + (size_t)n + 256;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

char *text_take(struct text *t, size_t *len)
{
    char *p = t->p;
    bool ok = !t->failed && p != NULL;
    if (ok && len != NULL)
        *len = t->len;
    *t = (struct text){0};
    if (!ok) {
        free(p);
        return NULL;
    }
    return p;
}
