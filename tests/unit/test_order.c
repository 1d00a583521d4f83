/*
 * test_order.c - the order's rules: status names and the 4x4 transition
 * matrix, create/update body validation (every violation named), the page
 * query (percent-encoding, duplicates, bounds, garbage) and order_to_json.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "order.h"

/* The cursor key of the page tests, from any secret. */
static struct cursor_key page_key;

static void page_key_setup(void)
{
    ck_assert_int_eq(cursor_key_init(&page_key, (const unsigned char *)"page test secret", 16), 0);
}

static void page_key_teardown(void)
{
    cursor_key_free(&page_key);
}

/* ---- helpers ----------------------------------------------------------- */

/* Copies text into a heap buffer of exactly its length, without a NUL:
 * the adapter's body is not terminated, and ASan/valgrind then catch any
 * read past it. */
static char *unterminated(const char *text, size_t *len)
{
    *len = strlen(text);
    char *buf = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, text, *len);
    return buf;
}

static int parse_create(const char *body, struct order *o, char **detail)
{
    size_t len;
    char *buf = unterminated(body, &len);
    int rc = order_parse_create(buf, len, o, detail);
    free(buf);
    return rc;
}

/* Expects refusal with exactly this detail. */
static void create_refused(const char *body, const char *expected)
{
    struct order o;
    char *detail = NULL;
    ck_assert_msg(parse_create(body, &o, &detail) == -1, "accepted: %s", body);
    ck_assert_msg(detail != NULL, "no detail for: %s", body);
    ck_assert_msg(strcmp(detail, expected) == 0,
                  "body %s\n  detail:   '%s'\n  expected: '%s'", body, detail,
                  expected);
    ck_assert_ptr_null(o.customer_id);
    ck_assert_ptr_null(o.items_json);
    free(detail);
}

static void create_accepted(const char *body, const char *customer,
                            const char *items_json)
{
    struct order o;
    char *detail = NULL;
    int rc = parse_create(body, &o, &detail);
    ck_assert_msg(rc == 0, "refused %s: %s", body, detail ? detail : "(oom)");
    ck_assert_ptr_null(detail);
    ck_assert_str_eq(o.customer_id, customer);
    ck_assert_str_eq(o.items_json, items_json);
    ck_assert_int_eq(o.status, ORDER_PENDING);
    order_free(&o);
}

static char *repeat(const char *unit, int n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * (size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < n; i++)
        memcpy(s + u * (size_t)i, unit, u);
    s[u * (size_t)n] = '\0';
    return s;
}

/* {"customerId":"<customer>","items":[<items>]} */
static char *body_with(const char *customer, const char *items)
{
    size_t n = strlen(customer) + strlen(items) + 64;
    char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    snprintf(b, n, "{\"customerId\":\"%s\",\"items\":[%s]}", customer, items);
    return b;
}

/* ---- status ------------------------------------------------------------ */

START_TEST(test_status_names_round_trip)
{
    static const char *const names[] = {"pending", "paid", "shipped", "delivered"};
    for (int i = 0; i < 4; i++) {
        enum order_status s = (enum order_status)99;
        ck_assert_str_eq(order_status_name((enum order_status)i), names[i]);
        ck_assert(order_status_parse(names[i], &s));
        ck_assert_int_eq(s, i);
    }
    static const char *const bad[] = {"Pending", "PAID", "", " paid", "paid ",
                                      "cancelled", "pend", "deliveredx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum order_status s = ORDER_SHIPPED;
        ck_assert_msg(!order_status_parse(bad[i], &s), "parsed '%s'", bad[i]);
        ck_assert_int_eq(s, ORDER_SHIPPED); /* untouched on failure */
    }
    enum order_status s;
    ck_assert(!order_status_parse(NULL, &s));
}
END_TEST

START_TEST(test_transition_matrix)
{
    /* allowed[from][to]: one step forward, nothing else. */
    static const bool allowed[4][4] = {
        /*            pending paid   shipped delivered */
        /* pending */ {false, true, false, false},
        /* paid    */ {false, false, true, false},
        /* shipped */ {false, false, false, true},
        /* deliv.  */ {false, false, false, false},
    };
    for (int from = 0; from < 4; from++)
        for (int to = 0; to < 4; to++)
            ck_assert_msg(order_transition_allowed((enum order_status)from,
                                                   (enum order_status)to) ==
                              allowed[from][to],
                          "%s -> %s", order_status_name((enum order_status)from),
                          order_status_name((enum order_status)to));
}
END_TEST

/* ---- create ------------------------------------------------------------ */

START_TEST(test_create_valid)
{
    create_accepted("{\"customerId\":\"customer-123\",\"items\":[\"item-1\",\"item-2\"]}",
                    "customer-123", "[\"item-1\",\"item-2\"]");
    /* Whitespace around and inside is fine; items are stored compactly. */
    create_accepted(" \n{ \"items\" : [ \"a\" ] , \"customerId\" : \"c\" }\r\n\t",
                    "c", "[\"a\"]");
    /* Unknown members are ignored. */
    create_accepted("{\"customerId\":\"c\",\"items\":[\"a\"],\"note\":{\"x\":1}}", "c",
                    "[\"a\"]");
    /* Inner spaces are not blankness. */
    create_accepted("{\"customerId\":\" c \",\"items\":[\" a b \"]}", " c ",
                    "[\" a b \"]");
    /* Escapes are decoded. */
    create_accepted("{\"customerId\":\"\\u00e9\\\"q\",\"items\":[\"x\\/y\"]}",
                    "\xc3\xa9\"q", "[\"x/y\"]");
}
END_TEST

START_TEST(test_create_contract_example)
{
    create_refused("{\"customerId\":\"\",\"items\":[]}",
                   "customerId should not be empty, items must contain at least 1 elements");
}
END_TEST

START_TEST(test_create_missing_fields)
{
    create_refused("{}", "customerId is required, items is required");
    create_refused("{\"items\":[\"a\"]}", "customerId is required");
    create_refused("{\"customerId\":\"c\"}", "items is required");
    /* Names are case-sensitive: customerid is not customerId. */
    create_refused("{\"customerid\":\"c\",\"Items\":[\"a\"]}",
                   "customerId is required, items is required");
}
END_TEST

START_TEST(test_create_wrong_types)
{
    create_refused("{\"customerId\":5,\"items\":\"a\"}",
                   "customerId must be a string, items must be an array");
    create_refused("{\"customerId\":null,\"items\":null}",
                   "customerId must be a string, items must be an array");
    create_refused("{\"customerId\":[\"c\"],\"items\":{\"0\":\"a\"}}",
                   "customerId must be a string, items must be an array");
    create_refused("{\"customerId\":true,\"items\":[\"a\"]}",
                   "customerId must be a string");
    create_refused("{\"customerId\":\"c\",\"items\":[1,\"\",null,\"ok\",[\"x\"]]}",
                   "items[0] must be a string, items[1] should not be empty, "
                   "items[2] must be a string, items[4] must be a string");
}
END_TEST

START_TEST(test_create_blank_strings)
{
    create_refused("{\"customerId\":\"   \",\"items\":[\"a\"]}",
                   "customerId should not be empty");
    create_refused("{\"customerId\":\" \\t\\r\\n\",\"items\":[\"a\",\"\\t\"]}",
                   "customerId should not be empty, items[1] should not be empty");
}
END_TEST

START_TEST(test_create_lengths)
{
    /* 128 characters is the limit, counted in characters, not bytes. */
    char *c128 = repeat("c", 128);
    char *c129 = repeat("c", 129);
    char *e128 = repeat("\xc3\xa9", 128);  /* 128 characters, 256 bytes */
    char *e129 = repeat("\xc3\xa9", 129);
    char *emoji128 = repeat("\xf0\x9f\x98\x80", 128); /* 4-byte UTF-8 */

    char *b = body_with(c128, "\"a\"");
    create_accepted(b, c128, "[\"a\"]");
    free(b);
    b = body_with(e128, "\"a\"");
    create_accepted(b, e128, "[\"a\"]");
    free(b);
    b = body_with(emoji128, "\"a\"");
    create_accepted(b, emoji128, "[\"a\"]");
    free(b);

    b = body_with(c129, "\"a\"");
    create_refused(b, "customerId must be shorter than or equal to 128 characters");
    free(b);
    b = body_with(e129, "\"a\"");
    create_refused(b, "customerId must be shorter than or equal to 128 characters");
    free(b);

    /* Items share the rule. */
    size_t n = 300;
    char *items = malloc(n);
    snprintf(items, n, "\"%s\",\"%s\"", c128, c129);
    b = body_with("c", items);
    create_refused(b, "items[1] must be shorter than or equal to 128 characters");
    free(b);
    free(items);

    free(c128);
    free(c129);
    free(e128);
    free(e129);
    free(emoji128);
}
END_TEST

START_TEST(test_create_item_count)
{
    /* 100 items: fine.  101: refused. */
    char *hundred = repeat("\"i\",", 100);
    hundred[strlen(hundred) - 1] = '\0'; /* drop the last comma */
    char *b = body_with("c", hundred);
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(parse_create(b, &o, &detail), 0);
    cJSON *arr = cJSON_Parse(o.items_json);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 100);
    cJSON_Delete(arr);
    order_free(&o);
    free(b);
    free(hundred);

    char *hundred_one = repeat("\"i\",", 101);
    hundred_one[strlen(hundred_one) - 1] = '\0';
    b = body_with("c", hundred_one);
    create_refused(b, "items must contain no more than 100 elements");
    free(b);
    free(hundred_one);
}
END_TEST

START_TEST(test_create_many_violations_bounded)
{
    /* 100 numbers: the detail names violations, stays bounded, and still
     * begins with the first. */
    char *nums = repeat("1,", 100);
    nums[strlen(nums) - 1] = '\0';
    char *b = body_with("", nums);
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(parse_create(b, &o, &detail), -1);
    ck_assert_ptr_nonnull(detail);
    static const char first[] =
        "customerId should not be empty, items[0] must be a string, ";
    ck_assert_msg(strncmp(detail, first, sizeof first - 1) == 0, "%s", detail);
    ck_assert_uint_lt(strlen(detail), 1024);
    ck_assert_ptr_null(strstr(detail, "items[99]"));
    free(detail);
    free(b);
    free(nums);

    /* Long item names in every slot cannot overflow the detail either. */
    char *long_items = repeat("\"\",", 100);
    long_items[strlen(long_items) - 1] = '\0';
    b = body_with("c", long_items);
    ck_assert_int_eq(parse_create(b, &o, &detail), -1);
    ck_assert_uint_lt(strlen(detail), 1024);
    ck_assert_ptr_nonnull(strstr(detail, "items[0] should not be empty"));
    free(detail);
    free(b);
    free(long_items);
}
END_TEST

START_TEST(test_create_invalid_utf8)
{
    static const struct {
        const char *bytes;
        const char *why;
    } bad[] = {
        {"\xff", "invalid byte"},
        {"a\xc3", "truncated sequence"},
        {"\xc0\xaf", "overlong slash"},
        {"\xe0\x80\xaf", "overlong 3-byte"},
        {"\xed\xa0\x80", "UTF-16 surrogate"},
        {"\xf4\x90\x80\x80", "past U+10FFFF"},
        {"\x80", "lone continuation"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b = body_with(bad[i].bytes, "\"a\"");
        struct order o;
        char *detail = NULL;
        ck_assert_msg(parse_create(b, &o, &detail) == -1, "accepted %s", bad[i].why);
        ck_assert_msg(detail && strcmp(detail, "customerId must be valid UTF-8") == 0,
                      "%s: %s", bad[i].why, detail ? detail : "(null)");
        free(detail);
        free(b);
    }
    char *b = body_with("c", "\"\xff\"");
    create_refused(b, "items[0] must be valid UTF-8");
    free(b);
}
END_TEST

START_TEST(test_create_not_an_object)
{
    static const char *const not_json[] = {
        "{", "{\"customerId\":", "nope", "{\"customerId\":\"c\",}",
        "{'customerId':'c'}", "{\"customerId\":\"c\",\"items\":[\"a\"]} trailing",
        "{\"customerId\":\"c\",\"items\":[\"a\"]}{}",
    };
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++)
        create_refused(not_json[i], "request body is not valid JSON");
    static const char *const not_object[] = {"[]", "\"s\"", "42", "null", "true",
                                             "[{\"customerId\":\"c\"}]"};
    for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++)
        create_refused(not_object[i], "request body must be a JSON object");
}
END_TEST

START_TEST(test_create_empty_body)
{
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_create(NULL, 0, &o, &detail), -1);
    ck_assert_str_eq(detail, "request body is required");
    free(detail);
    detail = NULL;
    ck_assert_int_eq(order_parse_create("{}", 0, &o, &detail), -1);
    ck_assert_str_eq(detail, "request body is required");
    free(detail);
}
END_TEST

START_TEST(test_create_respects_length)
{
    /* Bytes past len are not the body, valid or not. */
    static const char text[] = "{\"customerId\":\"c\",\"items\":[\"a\"]}GARBAGE";
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_create(text, strlen(text) - 7, &o, &detail), 0);
    ck_assert_str_eq(o.customer_id, "c");
    order_free(&o);
    /* And a body cut short is not completed by what follows in memory. */
    ck_assert_int_eq(order_parse_create(text, 20, &o, &detail), -1);
    ck_assert_str_eq(detail, "request body is not valid JSON");
    free(detail);
}
END_TEST

START_TEST(test_create_embedded_nul)
{
    /* A NUL byte inside the body is not JSON whitespace. */
    static const char text[] = "{\"customerId\":\"c\",\"items\":[\"a\"]}\0{}";
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_create(text, sizeof text - 1, &o, &detail), -1);
    ck_assert_str_eq(detail, "request body is not valid JSON");
    free(detail);
}
END_TEST

/* ---- update ------------------------------------------------------------ */

START_TEST(test_update_valid)
{
    static const char *const names[] = {"pending", "paid", "shipped", "delivered"};
    for (int i = 0; i < 4; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"status\":\"%s\"}", names[i]);
        size_t len;
        char *buf = unterminated(body, &len);
        enum order_status to = (enum order_status)99;
        char *detail = NULL;
        ck_assert_int_eq(order_parse_update(buf, len, &to, &detail), 0);
        ck_assert_ptr_null(detail);
        ck_assert_int_eq(to, i);
        free(buf);
    }
    enum order_status to;
    char *detail = NULL;
    static const char extra[] = "{\"status\":\"paid\",\"comment\":\"ok\"}";
    ck_assert_int_eq(order_parse_update(extra, strlen(extra), &to, &detail), 0);
    ck_assert_int_eq(to, ORDER_PAID);
}
END_TEST

static void update_refused(const char *body, const char *expected)
{
    size_t len;
    char *buf = unterminated(body, &len);
    enum order_status to;
    char *detail = NULL;
    ck_assert_msg(order_parse_update(buf, len, &to, &detail) == -1, "accepted %s", body);
    ck_assert_msg(detail != NULL && strcmp(detail, expected) == 0,
                  "body %s: '%s'", body, detail ? detail : "(null)");
    free(detail);
    free(buf);
}

START_TEST(test_update_invalid)
{
    static const char enum_msg[] =
        "status must be one of the following values: pending, paid, shipped, delivered";
    update_refused("{}", "status is required");
    update_refused("{\"Status\":\"paid\"}", "status is required");
    update_refused("{\"status\":\"cancelled\"}", enum_msg);
    update_refused("{\"status\":\"PAID\"}", enum_msg);
    update_refused("{\"status\":\"\"}", enum_msg);
    update_refused("{\"status\":1}", enum_msg);
    update_refused("{\"status\":null}", enum_msg);
    update_refused("{\"status\":[\"paid\"]}", enum_msg);
    update_refused("[\"paid\"]", "request body must be a JSON object");
    update_refused("status=paid", "request body is not valid JSON");
    update_refused("{\"status\":\"paid\"} x", "request body is not valid JSON");

    enum order_status to;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_update(NULL, 0, &to, &detail), -1);
    ck_assert_str_eq(detail, "request body is required");
    free(detail);
}
END_TEST

/* ---- page query -------------------------------------------------------- */

static void page_ok(const char *query, long long limit, long long offset)
{
    struct page_query q = {.limit = -1, .offset = -1};
    char *detail = NULL;
    int rc = order_parse_page_query(query, &page_key, &q, &detail);
    ck_assert_msg(rc == 0, "query '%s' refused: %s", query ? query : "(null)",
                  detail ? detail : "(null)");
    ck_assert_ptr_null(detail);
    ck_assert_msg(q.limit == limit && q.offset == offset,
                  "query '%s': limit %lld offset %lld, want %lld %lld",
                  query ? query : "(null)", q.limit, q.offset, limit, offset);
}

static void page_refused(const char *query, const char *expected)
{
    struct page_query q;
    char *detail = NULL;
    int rc = order_parse_page_query(query, &page_key, &q, &detail);
    ck_assert_msg(rc == -1, "query '%s' accepted: limit %lld offset %lld", query,
                  q.limit, q.offset);
    ck_assert_msg(detail != NULL && strcmp(detail, expected) == 0,
                  "query '%s'\n  detail:   '%s'\n  expected: '%s'", query,
                  detail ? detail : "(null)", expected);
    free(detail);
}

#define LIMIT_MSG "limit must be an integer between 1 and 100"
#define OFFSET_MSG "offset must be an integer greater than or equal to 0"

START_TEST(test_page_defaults)
{
    page_ok("", PAGE_LIMIT_DEFAULT, 0);
    page_ok(NULL, PAGE_LIMIT_DEFAULT, 0);
    page_ok("limit=10&offset=0", 10, 0);
    page_ok("offset=7&limit=3", 3, 7);
    page_ok("limit=1", 1, 0);
    page_ok("limit=100", 100, 0);
    page_ok("offset=0", 20, 0);
    page_ok("offset=1000000", 20, 1000000);
    /* Other parameters and empty pairs are ignored. */
    page_ok("foo=bar&limit=5&&sort=desc&", 5, 0);
    page_ok("limitx=0&xlimit=0&offsets=-1", 20, 0);
    /* Leading zeros are still the number. */
    page_ok("limit=007", 7, 0);
}
END_TEST

START_TEST(test_page_percent_encoding)
{
    page_ok("limit=%31%30", 10, 0);
    page_ok("limit=1%30&offset=%32", 10, 2);
    page_ok("limit=%35", 5, 0);
    page_ok("limit=%31%30%30", 100, 0);
}
END_TEST

START_TEST(test_page_percent_encoding_bad)
{
    page_refused("limit=%", LIMIT_MSG);
    page_refused("limit=%3", LIMIT_MSG);
    page_refused("limit=1%3", LIMIT_MSG);
    page_refused("limit=%zz", LIMIT_MSG);
    page_refused("limit=%g1", LIMIT_MSG);
    page_refused("limit=%2B5", LIMIT_MSG);   /* "+5" */
    page_refused("limit=%2D1", LIMIT_MSG);   /* "-1" */
    page_refused("limit=%205", LIMIT_MSG);   /* " 5" */
    page_refused("limit=5+", LIMIT_MSG);     /* '+' is a space */
    page_refused("limit=+5", LIMIT_MSG);
}
END_TEST

/* Regression: "%00" decoded to a NUL inside the value, strtoll stopped there
 * and "limit=5%00junk" was served as limit=5 (core/order.c, query_decode). */
START_TEST(test_page_percent_encoded_nul)
{
    /* "5%00" decodes to "5" followed by a NUL byte and more: that is not
     * the integer 5, and garbage after it must not ride along. */
    page_refused("limit=5%00", LIMIT_MSG);
    page_refused("limit=5%00junk", LIMIT_MSG);
    page_refused("offset=0%00-1", OFFSET_MSG);
}
END_TEST

START_TEST(test_page_out_of_range)
{
    page_refused("limit=0", LIMIT_MSG);
    page_refused("limit=101", LIMIT_MSG);
    page_refused("limit=-1", LIMIT_MSG);
    page_refused("limit=99999999999999999999999", LIMIT_MSG);
    page_refused("offset=-1", OFFSET_MSG);
    page_refused("offset=99999999999999999999", OFFSET_MSG);
    page_refused("offset=9223372036854775808", OFFSET_MSG);
}
END_TEST

START_TEST(test_page_garbage)
{
    static const char *const bad_limits[] = {
        "limit=", "limit", "limit=abc", "limit=1.5", "limit=1e2", "limit=0x10",
        "limit= 5", "limit=5 ", "limit=5a", "limit=ten", "limit==5", "limit=1,2",
    };
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++)
        page_refused(bad_limits[i], LIMIT_MSG);
    page_refused("offset=", OFFSET_MSG);
    page_refused("offset=x", OFFSET_MSG);
    /* Both wrong: both named, in the order they came. */
    page_refused("limit=0&offset=-5", LIMIT_MSG ", " OFFSET_MSG);
    page_refused("offset=-5&limit=0", OFFSET_MSG ", " LIMIT_MSG);
}
END_TEST

START_TEST(test_page_duplicates)
{
    page_refused("limit=5&limit=5", "limit must be given at most once");
    page_refused("limit=5&limit=6&limit=7", "limit must be given at most once");
    page_refused("offset=1&offset=2", "offset must be given at most once");
    page_refused("limit=5&offset=1&limit=5&offset=1",
                 "limit must be given at most once, offset must be given at most once");
    /* A bad first value and a duplicate: both reported. */
    page_refused("limit=0&limit=5",
                 LIMIT_MSG ", limit must be given at most once");
}
END_TEST

START_TEST(test_page_filters)
{
    struct page_query q;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_page_query("status=paid&customerId=c%2B1+x", &page_key, &q, &detail), 0);
    ck_assert(q.has_status && q.status == ORDER_PAID);
    ck_assert(q.has_customer);
    ck_assert_str_eq(q.customer_id, "c+1 x");
    ck_assert(!q.has_cursor);
    ck_assert_int_eq(order_parse_page_query("limit=5", &page_key, &q, &detail), 0);
    ck_assert(!q.has_status && !q.has_customer && !q.has_cursor);
    /* UTF-8 counts characters: 128 of them, 2 bytes each, is fine. */
    char query[2048] = "customerId=";
    for (int i = 0; i < 128; i++)
        strcat(query, "%C3%A9");
    ck_assert_int_eq(order_parse_page_query(query, &page_key, &q, &detail), 0);
    ck_assert_uint_eq(strlen(q.customer_id), 256);
    strcat(query, "x");
    page_refused(query, "customerId must be shorter than or equal to 128 characters");
    page_refused("status=PAID", "status must be one of the following values: "
                                "pending, paid, shipped, delivered");
    page_refused("status=", "status must be one of the following values: "
                            "pending, paid, shipped, delivered");
    page_refused("customerId=", "customerId should not be empty");
    page_refused("customerId=+%20", "customerId should not be empty");
    page_refused("customerId=%FF", "customerId must be valid UTF-8");
    page_refused("customerId=%zz", "customerId must be shorter than or equal to 128 characters");
    page_refused("status=paid&status=paid", "status must be given at most once");
    page_refused("customerId=a&customerId=b", "customerId must be given at most once");
    /* Every violation named. */
    page_refused("limit=0&status=lost&customerId=",
                 LIMIT_MSG ", status must be one of the following values: pending, paid, "
                 "shipped, delivered, customerId should not be empty");
}
END_TEST

#define CURSOR_MSG "cursor is not valid: use the next link of a page as it is"

START_TEST(test_page_cursor)
{
    char c[CURSOR_TEXT_LEN + 1];
    ck_assert_int_eq(cursor_encode(&page_key, 12345, c), 0);
    char query[256];
    snprintf(query, sizeof query, "limit=3&cursor=%s&status=pending", c);
    struct page_query q;
    char *detail = NULL;
    ck_assert_int_eq(order_parse_page_query(query, &page_key, &q, &detail), 0);
    ck_assert(q.has_cursor);
    ck_assert_int_eq(q.after, 12345);
    ck_assert_str_eq(q.cursor, c);
    ck_assert_int_eq(q.limit, 3);
    /* With offset, even offset=0: refused. */
    snprintf(query, sizeof query, "cursor=%s&offset=0", c);
    page_refused(query, "cursor and offset cannot be used together: a cursor page "
                        "continues where its cursor points");
    /* One character changed, anywhere: refused. */
    for (size_t i = 0; i < CURSOR_TEXT_LEN; i++) {
        char bad[CURSOR_TEXT_LEN + 1];
        memcpy(bad, c, sizeof bad);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        snprintf(query, sizeof query, "cursor=%s", bad);
        page_refused(query, CURSOR_MSG);
    }
    page_refused("cursor=", CURSOR_MSG);
    page_refused("cursor=abc", CURSOR_MSG);
    char longer[256];
    snprintf(longer, sizeof longer, "cursor=%s%s", c, c);
    page_refused(longer, CURSOR_MSG);
    snprintf(query, sizeof query, "cursor=%s&cursor=%s", c, c);
    page_refused(query, "cursor must be given at most once");
    /* Another key's cursor is not ours. */
    struct cursor_key other;
    ck_assert_int_eq(cursor_key_init(&other, (const unsigned char *)"another secret", 14), 0);
    ck_assert_int_eq(cursor_encode(&other, 12345, c), 0);
    cursor_key_free(&other);
    snprintf(query, sizeof query, "cursor=%s", c);
    page_refused(query, CURSOR_MSG);
}
END_TEST

/* ---- order_to_json ----------------------------------------------------- */

START_TEST(test_to_json)
{
    struct order o = {
        .id = "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
        .customer_id = strdup("customer-123"),
        .items_json = strdup("[\"item-1\",\"item-2\"]"),
        .status = ORDER_SHIPPED,
        .created_ms = 1795610096789LL, /* 2026-11-25T12:34:56.789Z */
        .updated_ms = 1795610097000LL,
    };
    cJSON *j = order_to_json(&o);
    ck_assert_ptr_nonnull(j);
    char *text = cJSON_PrintUnformatted(j);
    ck_assert_str_eq(text,
                     "{\"id\":\"019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60\","
                     "\"customerId\":\"customer-123\","
                     "\"items\":[\"item-1\",\"item-2\"],"
                     "\"status\":\"shipped\","
                     "\"createdAt\":\"2026-11-25T12:34:56.789Z\","
                     "\"updatedAt\":\"2026-11-25T12:34:57.000Z\"}");
    free(text);
    cJSON_Delete(j);

    /* A corrupt stored items column yields no JSON rather than a lie. */
    free(o.items_json);
    o.items_json = strdup("[\"unterminated");
    ck_assert_ptr_null(order_to_json(&o));
    /* Nor does an unrepresentable time. */
    free(o.items_json);
    o.items_json = strdup("[]");
    o.created_ms = -1;
    ck_assert_ptr_null(order_to_json(&o));

    order_free(&o);
    ck_assert_ptr_null(o.customer_id);
    ck_assert_ptr_null(o.items_json);
    order_free(&o); /* twice is harmless */
}
END_TEST

START_TEST(test_created_round_trip_to_json)
{
    /* What parse_create stores, to_json shows unchanged. */
    struct order o;
    char *detail = NULL;
    ck_assert_int_eq(parse_create("{\"customerId\":\"\\u00e9 c\",\"items\":[\"a\\\"b\",\"\\\\\"]}",
                                  &o, &detail),
                     0);
    snprintf(o.id, sizeof o.id, "%s", "00000000-0000-7000-8000-000000000000");
    o.created_ms = o.updated_ms = 0;
    cJSON *j = order_to_json(&o);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "customerId")->valuestring, "\xc3\xa9 c");
    const cJSON *items = cJSON_GetObjectItem(j, "items");
    ck_assert_int_eq(cJSON_GetArraySize(items), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(items, 0)->valuestring, "a\"b");
    ck_assert_str_eq(cJSON_GetArrayItem(items, 1)->valuestring, "\\");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "pending");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "createdAt")->valuestring,
                     "1970-01-01T00:00:00.000Z");
    cJSON_Delete(j);
    order_free(&o);
}
END_TEST

static Suite *order_suite(void)
{
    Suite *s = suite_create("order");
    TCase *st = tcase_create("status");
    tcase_add_test(st, test_status_names_round_trip);
    tcase_add_test(st, test_transition_matrix);
    suite_add_tcase(s, st);

    TCase *cr = tcase_create("create");
    tcase_add_test(cr, test_create_valid);
    tcase_add_test(cr, test_create_contract_example);
    tcase_add_test(cr, test_create_missing_fields);
    tcase_add_test(cr, test_create_wrong_types);
    tcase_add_test(cr, test_create_blank_strings);
    tcase_add_test(cr, test_create_lengths);
    tcase_add_test(cr, test_create_item_count);
    tcase_add_test(cr, test_create_many_violations_bounded);
    tcase_add_test(cr, test_create_invalid_utf8);
    tcase_add_test(cr, test_create_not_an_object);
    tcase_add_test(cr, test_create_empty_body);
    tcase_add_test(cr, test_create_respects_length);
    tcase_add_test(cr, test_create_embedded_nul);
    suite_add_tcase(s, cr);

    TCase *up = tcase_create("update");
    tcase_add_test(up, test_update_valid);
    tcase_add_test(up, test_update_invalid);
    suite_add_tcase(s, up);

    TCase *pg = tcase_create("page");
    tcase_add_checked_fixture(pg, page_key_setup, page_key_teardown);
    tcase_add_test(pg, test_page_defaults);
    tcase_add_test(pg, test_page_percent_encoding);
    tcase_add_test(pg, test_page_percent_encoding_bad);
    tcase_add_test(pg, test_page_percent_encoded_nul);
    tcase_add_test(pg, test_page_out_of_range);
    tcase_add_test(pg, test_page_garbage);
    tcase_add_test(pg, test_page_duplicates);
    tcase_add_test(pg, test_page_filters);
    tcase_add_test(pg, test_page_cursor);
    suite_add_tcase(s, pg);

    TCase *js = tcase_create("json");
    tcase_add_test(js, test_to_json);
    tcase_add_test(js, test_created_round_trip_to_json);
    suite_add_tcase(s, js);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(order_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
