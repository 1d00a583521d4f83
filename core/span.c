/*
 * span.c - filling a span.  Attribute strings and the name may be the
 * client's raw bytes (url.path, an unknown method): they are stored as
 * valid UTF-8, cut on a character boundary, because a strict OTLP
 * collector rejects a whole batch over one bad string.
 */
#include "span.h"

#include "utf8.h"

void span_set_name(struct span *s, const char *name)
{
    utf8_copy(s->name, sizeof s->name, name);
}

void span_add_str(struct span *s, const char *key, const char *value)
{
    if (s->attr_count >= SPAN_MAX_ATTRS || value == NULL)
        return;
    struct span_attr *a = &s->attrs[s->attr_count++];
    a->key = key;
    a->is_int = 0;
    utf8_copy(a->str, sizeof a->str, value);
}

void span_add_int(struct span *s, const char *key, long long value)
{
    if (s->attr_count >= SPAN_MAX_ATTRS)
        return;
    struct span_attr *a = &s->attrs[s->attr_count++];
    a->key = key;
    a->is_int = 1;
    a->num = value;
}
