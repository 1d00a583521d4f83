#include "trace.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

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
 * Ids come from a ChaCha20 keystream keyed once per process (per thread)
 * from getrandom, instead of a getrandom call per id: two system calls per
 * request were a measurable share of a cheap request, and a keystream block
 * (64 bytes, ~2.5 ids) costs well under a microsecond.
 *
 * The trade-off: trace and span ids only need to be unique and not
 * guessable by chance, not secret (they travel in traceparent headers and
 * logs).  A ChaCha20 stream under a 256-bit random key is as unique as
 * fresh random bytes and cannot be predicted from ids already seen, but it
 * is a deterministic function of the key: anyone who could read the
 * worker's memory could compute its past and future ids.  That is no loss
 * for ids that are public anyway; nothing secret (tokens, order ids) comes
 * from this stream.  A fork would duplicate the stream, so a forked child
 * (pthread_atfork) reseeds before its first id.
 */
struct trace_rng {
    uint32_t state[16]; /* constants, key, 64-bit counter, 64-bit nonce */
    unsigned char block[64];
    unsigned used;      /* bytes of block handed out; 64: none left */
    bool seeded;
};

static _Thread_local struct trace_rng trace_rng;
static pthread_once_t trace_rng_once = PTHREAD_ONCE_INIT;

static void trace_rng_forget(void)
{
    volatile unsigned char *p = (volatile unsigned char *)&trace_rng;
    for (size_t i = 0; i < sizeof trace_rng; i++)
        p[i] = 0;
}

/* In the child of a fork only the forking thread exists. */
static void trace_rng_register_fork(void)
{
    pthread_atfork(NULL, NULL, trace_rng_forget);
}

#define TRACE_ROTL(v, n) ((uint32_t)((v) << (n)) | ((v) >> (32 - (n))))
#define TRACE_QR(a, b, c, d)                                                   \
    do {                                                                       \
        a += b; d ^= a; d = TRACE_ROTL(d, 16);                                 \
        c += d; b ^= c; b = TRACE_ROTL(b, 12);                                 \
        a += b; d ^= a; d = TRACE_ROTL(d, 8);                                  \
        c += d; b ^= c; b = TRACE_ROTL(b, 7);                                  \
    } while (0)

/* One ChaCha20 block (RFC 8439, 2.3) into r->block; advances the counter. */
static void trace_rng_refill(struct trace_rng *r)
{
    uint32_t x[16];
    memcpy(x, r->state, sizeof x);
    for (int i = 0; i < 10; i++) {
        TRACE_QR(x[0], x[4], x[8], x[12]);
        TRACE_QR(x[1], x[5], x[9], x[13]);
        TRACE_QR(x[2], x[6], x[10], x[14]);
        TRACE_QR(x[3], x[7], x[11], x[15]);
        TRACE_QR(x[0], x[5], x[10], x[15]);
        TRACE_QR(x[1], x[6], x[11], x[12]);
        TRACE_QR(x[2], x[7], x[8], x[13]);
        TRACE_QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + r->state[i];
        r->block[4 * i] = (unsigned char)v;
        r->block[4 * i + 1] = (unsigned char)(v >> 8);
        r->block[4 * i + 2] = (unsigned char)(v >> 16);
        r->block[4 * i + 3] = (unsigned char)(v >> 24);
    }
    if (++r->state[12] == 0)
        r->state[13]++;
    r->used = 0;
}

static int trace_rng_seed(struct trace_rng *r)
{
    pthread_once(&trace_rng_once, trace_rng_register_fork);
    uint32_t seed[10]; /* 256-bit key, 64-bit nonce */
    if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        return -1;
    static const uint32_t sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    memcpy(r->state, sigma, sizeof sigma);
    memcpy(r->state + 4, seed, 8 * sizeof seed[0]);
    r->state[12] = r->state[13] = 0;
    r->state[14] = seed[8];
    r->state[15] = seed[9];
    r->used = sizeof r->block;
    r->seeded = true;
    return 0;
}

static int trace_rng_bytes(unsigned char *out, unsigned len)
{
    struct trace_rng *r = &trace_rng;
    if (!r->seeded && trace_rng_seed(r) != 0)
        return -1;
    while (len > 0) {
        if (r->used == sizeof r->block)
            trace_rng_refill(r);
        unsigned n = (unsigned)sizeof r->block - r->used;
        if (n > len)
            n = len;
        memcpy(out, r->block + r->used, n);
        /* what was handed out is not kept */
        memset(r->block + r->used, 0, n);
        r->used += n;
        out += n;
        len -= n;
    }
    return 0;
}

int trace_random_hex(char *buf, unsigned len)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char raw[32];
    if (len > sizeof raw)
        return -1;
    if (trace_rng_bytes(raw, len) != 0)
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
