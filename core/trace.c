#include "trace.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crypto.h"

static bool trace_is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool trace_is_all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

static unsigned trace_hex_value(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* traceparent = version "-" trace-id "-" parent-id "-" trace-flags
 * (W3C Trace Context, section 3.2).  Version ff is invalid.  For version 00
 * the header is exactly 55 characters; a higher version may append
 * "-"-prefixed fields, which we ignore as the spec's "future versions"
 * rule asks. */
bool trace_parse_traceparent(const char *h, struct trace_context *out)
{
    if (h == NULL)
        return false;
    size_t len = strnlen(h, 512);
    if (len < TRACEPARENT_LEN)
        return false;
    if (!trace_is_lower_hex(h, 2) || h[2] != '-' || h[35] != '-' || h[52] != '-')
        return false;
    if (h[0] == 'f' && h[1] == 'f')
        return false;
    bool v00 = h[0] == '0' && h[1] == '0';
    if (v00 && len != TRACEPARENT_LEN)
        return false;
    if (!v00 && len > TRACEPARENT_LEN && h[TRACEPARENT_LEN] != '-')
        return false;
    if (!trace_is_lower_hex(h + 3, 32) || trace_is_all_zero(h + 3, 32))
        return false;
    if (!trace_is_lower_hex(h + 36, 16) || trace_is_all_zero(h + 36, 16))
        return false;
    if (!trace_is_lower_hex(h + 53, 2))
        return false;
    memcpy(out->trace_id, h + 3, 32);
    out->trace_id[32] = '\0';
    memcpy(out->parent_span_id, h + 36, 16);
    out->parent_span_id[16] = '\0';
    out->flags = (unsigned char)(trace_hex_value(h[53]) << 4 | trace_hex_value(h[54]));
    return true;
}

/*
 * Ids come from the kernel's generator (crypto_random), drawn TRACE_POOL
 * bytes at a time.  Trace and span ids only need to be unique and not
 * guessable by chance (they travel in traceparent headers and logs), but
 * every request needs two, and a draw has a fixed cost (OpenSSL 3.0's
 * RAND_bytes, used before, about 2 us: one call per id was measured at
 * 4.6 us per request); a refill of the pool serves about 170 requests and
 * costs about 7 us (getrandom, 4 KiB; RAND_bytes took 2.4 us), 0.04 us a
 * request.  Bytes handed out are wiped from the pool.  A
 * forked child drops the pool it inherited (pthread_atfork), so that two
 * processes never hand out the same ids.
 */
#define TRACE_POOL 4096

struct trace_pool {
    unsigned char bytes[TRACE_POOL];
    size_t used; /* TRACE_POOL: empty */
};

static _Thread_local struct trace_pool trace_pool = {.used = TRACE_POOL};
static pthread_once_t trace_pool_once = PTHREAD_ONCE_INIT;

/* In the child of a fork only the forking thread exists. */
static void trace_pool_drop(void)
{
    crypto_wipe(&trace_pool, sizeof trace_pool);
    trace_pool.used = TRACE_POOL;
}

static void trace_pool_register_fork(void)
{
    pthread_atfork(NULL, NULL, trace_pool_drop);
}

static int trace_random_bytes(unsigned char *out, size_t len)
{
    struct trace_pool *p = &trace_pool;
    if (len > TRACE_POOL)
        return -1;
    if (TRACE_POOL - p->used < len) {
        pthread_once(&trace_pool_once, trace_pool_register_fork);
        if (crypto_random(p->bytes, TRACE_POOL) != 0)
            return -1;
        p->used = 0;
    }
    memcpy(out, p->bytes + p->used, len);
    memset(p->bytes + p->used, 0, len);
    p->used += len;
    return 0;
}

int trace_random_hex(char *buf, unsigned len)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char raw[32];
    if (len > sizeof raw)
        return -1;
    if (trace_random_bytes(raw, len) != 0)
        return -1;
    for (unsigned i = 0; i < len; i++) {
        buf[2 * i] = digits[raw[i] >> 4];
        buf[2 * i + 1] = digits[raw[i] & 15];
    }
    buf[2 * len] = '\0';
    return 0;
}

/* A random id of all zeros is invalid on the wire; the odds are 2^-64, but
 * the retry costs nothing. */
static int trace_random_id(char *buf, unsigned len)
{
    do {
        if (trace_random_hex(buf, len) != 0)
            return -1;
    } while (trace_is_all_zero(buf, 2 * len));
    return 0;
}

int trace_begin(const char *header, struct trace_context *out)
{
    memset(out, 0, sizeof *out);
    if (!trace_parse_traceparent(header, out)) {
        memset(out, 0, sizeof *out);
        out->flags = 0x01; /* we record what we start */
        if (trace_random_id(out->trace_id, 16) != 0)
            return -1;
    }
    return trace_random_id(out->span_id, 8);
}

void trace_format_traceparent(const struct trace_context *tc, char *out)
{
    static const char digits[] = "0123456789abcdef";
    memcpy(out, "00-", 3);
    memcpy(out + 3, tc->trace_id, 32);
    out[35] = '-';
    memcpy(out + 36, tc->span_id, 16);
    out[52] = '-';
    out[53] = digits[tc->flags >> 4];
    out[54] = digits[tc->flags & 15];
    out[55] = '\0';
}
