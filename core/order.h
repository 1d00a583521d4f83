/*
 * order.h - the order: its states, the one rule for moving between them, and
 * the validation of what clients send.  Pure functions; no storage here.
 */
#ifndef ORDERS_ORDER_H
#define ORDERS_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "uuid.h"

#define ORDER_CUSTOMER_MAX 128
#define ORDER_ITEM_MAX 128
#define ORDER_ITEMS_MAX 100
#define PAGE_LIMIT_DEFAULT 20
#define PAGE_LIMIT_MAX 100

enum order_status { ORDER_PENDING, ORDER_PAID, ORDER_SHIPPED, ORDER_DELIVERED };

struct order {
    char id[UUID_STR_LEN + 1];
    char *customer_id;  /* malloc'ed */
    char *items_json;   /* malloc'ed JSON array of strings, as stored */
    enum order_status status;
    long long created_ms;
    long long updated_ms;
    long long version; /* 1 at creation, +1 with every change: the ETag */
    long long seq;     /* the store's creation sequence: list order, cursors */
};

/* Offset pages deeper than this are refused (400, pointing to cursor) unless
 * the offset is at or past the total: skipping N entries costs N index
 * steps, so one request must not walk a whole table of millions.  Keyset
 * pages (cursor) cost the same at any depth. */
#define PAGE_OFFSET_MAX 10000
/* A cursor is CURSOR_TEXT_LEN characters (cursor.h); a longer value is not
 * one of ours and is refused without being read further. */
#define PAGE_CURSOR_MAX 64
/* customerId filter: 128 characters of up to 4 UTF-8 bytes each. */
#define PAGE_CUSTOMER_MAX (ORDER_CUSTOMER_MAX * 4)

/* GET /orders: limit, and either offset or cursor, and the filters. */
struct page_query {
    long long limit;
    long long offset;
    bool has_cursor;
    char cursor[PAGE_CURSOR_MAX + 1]; /* as sent, checked by cursor_decode */
    long long after;                  /* the cursor's position, once decoded */
    bool has_status;
    enum order_status status;
    bool has_customer;
    char customer_id[PAGE_CUSTOMER_MAX + 1]; /* decoded */
};

const char *order_status_name(enum order_status s);
bool order_status_parse(const char *s, enum order_status *out);

/* The status machine: pending -> paid -> shipped -> delivered, one step
 * forward at a time.  Everything else, staying put included, is refused. */
bool order_transition_allowed(enum order_status from, enum order_status to);

void order_free(struct order *o);

/* Each parser returns 0, or -1 with *detail set to a malloc'ed sentence that
 * names every violation ("customerId should not be empty, items must contain
 * at least 1 elements").  On -1 with *detail NULL, memory ran out. */
int order_parse_create(const char *body, size_t len, struct order *out,
                       char **detail);
int order_parse_update(const char *body, size_t len, enum order_status *to,
                       char **detail);
/* key: the cursor key; a cursor is checked with it (NULL: not checked, its
 * position is then 0). */
struct cursor_key;
int order_parse_page_query(const char *query, const struct cursor_key *key,
                           struct page_query *out, char **detail);

/* The order as the API shows it.  Returns a cJSON object or NULL. */
struct cJSON;
struct cJSON *order_to_json(const struct order *o);

#endif
