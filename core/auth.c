/*
 * auth.c - OAuth2 bearer JWT verification, with libjwt 1.10 as the parser.
 *
 * libjwt 1.10 decodes the token (header checks, claims parsed by jansson);
 * the HMAC is checked here (see "signature": libjwt would do it through
 * OpenSSL, whose first use costs every worker megabytes).  Everything
 * libjwt does not do, or does too leniently, is done here, before and
 * after it:
 *
 *  - libjwt takes the algorithm from the token's header, and its name
 *    parsing is case-insensitive ("hs256", "NONE").  So the header is
 *    decoded here first and its "alg" must equal the configured one byte
 *    for byte, in a header with no duplicate member (libjwt's JSON parser,
 *    jansson, keeps the last of duplicate members where ours, cJSON, finds
 *    the first), and the MAC is always computed with the configured
 *    algorithm, never one the token names.
 *  - A verifier cannot exist without a secret (32 bytes at least).
 *  - libb64, which libjwt decodes with, skips characters that are not
 *    base64; the token's alphabet is checked here so that what is verified
 *    is exactly what was sent.
 *  - No time claim is looked at by libjwt: exp/nbf/iat are checked here
 *    (RFC 7519 4.1.4, 4.1.5, and PyJWT's reading of iat).
 *
 * Claims are read from the object libjwt decoded (jwt_get_grants_json), so
 * jansson's reading of the payload (UTF-8 checked, no NUL, integers that
 * overflow refused) is the one source of truth.
 *
 * That full check costs tens of microseconds (two JSON parsers, a
 * re-serialisation, the MAC), the largest single cost of a read request.
 * A client sends the same token for its whole lifetime, so each verifier
 * keeps a small cache of tokens it has fully accepted (see "cache" below):
 * a hit re-checks the time claims against the clock and skips everything
 * else, which cannot change for the same bytes under the same settings.
 */
#include "auth.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>
#include <jwt.h>

/* A real token is a few hundred bytes; the bound keeps the work per request
 * (and the fuzzer's search space) small. */
#define AUTH_TOKEN_MAX 8192
/* RFC 7518 3.2 wants a key at least as long as the hash; 256 bits is the
 * floor for every HS algorithm here and matches CONFIG_MIN_SECRET_LEN. */
#define AUTH_SECRET_MIN 32
#define AUTH_LEEWAY_MAX 3600
/* A JOSE header has a handful of members; the bound keeps the duplicate
 * check cheap. */
#define AUTH_HEADER_MEMBERS_MAX 32

struct auth_cache;

struct auth_verifier {
    struct auth_cache *cache; /* NULL: every token is fully verified */
    unsigned char *secret;
    int secret_len; /* jwt_decode takes an int */
    jwt_alg_t alg;
    const char *alg_name; /* canonical spelling, static */
    char *issuer;
    char *audience;
    long leeway;
};

static const struct {
    const char *name;
    jwt_alg_t alg;
} hmac_algs[] = {
    {"HS256", JWT_ALG_HS256},
    {"HS384", JWT_ALG_HS384},
    {"HS512", JWT_ALG_HS512},
};

/* Exact and case-sensitive: JWT_ALGORITHM=hs256 is refused at start rather
 * than guessed at.  Only HMAC: there is no public-key configuration. */
static bool alg_lookup(const char *name, jwt_alg_t *alg, const char **canon)
{
    if (name == NULL)
        name = "HS256";
    for (size_t i = 0; i < sizeof hmac_algs / sizeof hmac_algs[0]; i++) {
        if (strcmp(name, hmac_algs[i].name) == 0) {
            *alg = hmac_algs[i].alg;
            *canon = hmac_algs[i].name;
            return true;
        }
    }
    return false;
}

/* Shared by the verifier and auth_mint so that the tool can never mint
 * what the service would refuse to verify. */
static const char *settings_problem(const struct auth_settings *s,
                                    jwt_alg_t *alg, const char **canon)
{
    if (s == NULL)
        return "no auth settings";
    if (!alg_lookup(s->algorithm, alg, canon))
        return "unsupported JWT algorithm (want HS256, HS384 or HS512)";
    if (s->secret == NULL || s->secret_len == 0)
        return "empty JWT secret";
    if (s->secret_len < AUTH_SECRET_MIN)
        return "JWT secret shorter than 32 bytes";
    if (s->secret_len > INT_MAX)
        return "JWT secret too long";
    if (s->leeway_seconds < 0 || s->leeway_seconds > AUTH_LEEWAY_MAX)
        return "JWT leeway out of range (0..3600 seconds)";
    return NULL;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Empty issuer/audience strings count as unset: an operator who exports
 * JWT_AUDIENCE= means "no audience", not "audience is the empty string". */
static bool dup_optional(const char *src, char **dst)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0')
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}


/* ---- cache of accepted tokens ------------------------------------------ */

/*
 * Keyed by the exact token bytes: a hit means these very bytes were
 * verified by this verifier (same secret, algorithm, issuer, audience), so
 * signature, header, iss/aud and scopes need no second look.  Only the
 * time claims depend on the moment; they are kept as numbers and checked
 * against `now` on every hit exactly as times_ok() does, so an expired
 * cached token is refused.  Only accepted tokens are stored: a forged or
 * refused token always takes the full path and cannot evict anything.
 *
 * Bounded: AUTH_CACHE_SLOTS direct-mapped slots, allocated once per
 * verifier (untouched slots cost no resident memory); a longer token than
 * AUTH_CACHE_TOKEN_MAX is verified every time.  What is kept is what a
 * request already carries (the token, its sub and scope bits); the secret
 * stays only in the verifier, and the cache is wiped when it is freed.
 * The slot index comes from a hash seeded per verifier from getrandom, and
 * the comparison of the token bytes is constant-time, so neither the slot
 * nor the timing of a lookup tells a client anything about another
 * client's token.
 *
 * Not thread-safe: a verifier belongs to one worker process, which serves
 * one request at a time.
 */
#define AUTH_CACHE_SLOTS 64
#define AUTH_CACHE_TOKEN_MAX 1024

struct auth_cached_times {
    double exp;
    double nbf, iat;
    bool has_nbf, has_iat;
};

struct auth_cache_entry {
    size_t len; /* 0: empty */
    uint64_t hash;
    struct auth_cached_times times;
    unsigned scopes;
    char sub[AUTH_SUB_MAX + 1];
    char token[AUTH_CACHE_TOKEN_MAX];
};

struct auth_cache {
    uint64_t seed;
    struct auth_cache_entry slot[AUTH_CACHE_SLOTS];
};

static struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    /* A fixed seed would still be correct; a random one keeps clients
     * from choosing tokens that fight over one slot. */
    if (getrandom(&c->seed, sizeof c->seed, GRND_NONBLOCK) != (ssize_t)sizeof c->seed)
        c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15u;
    return c;
}

/* FNV-1a, seeded, with a final avalanche (splitmix64's) so that the low
 * bits used for the slot depend on every byte. */
static uint64_t auth_cache_hash(const struct auth_cache *c, const char *tok,
                                size_t len)
{
    uint64_t h = 0xcbf29ce484222325u ^ c->seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tok[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    h ^= h >> 31;
    return h;
}

static bool same_bytes(const char *a, const char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static const struct auth_cache_entry *auth_cache_find(const struct auth_cache *c,
                                                      const char *tok, size_t len,
                                                      uint64_t h)
{
    const struct auth_cache_entry *e = &c->slot[h % AUTH_CACHE_SLOTS];
    if (e->len != len || e->hash != h || !same_bytes(e->token, tok, len))
        return NULL;
    return e;
}

static void auth_cache_wipe(struct auth_cache *c)
{
    volatile unsigned char *p = (volatile unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++)
        p[i] = 0;
}

struct auth_verifier *auth_verifier_new(const struct auth_settings *s,
                                        char *err, size_t errlen)
{
    jwt_alg_t alg;
    const char *canon;
    const char *problem = settings_problem(s, &alg, &canon);
    if (problem != NULL) {
        set_err(err, errlen, problem);
        return NULL;
    }

    struct auth_verifier *v = calloc(1, sizeof *v);
    if (v == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    v->secret = malloc(s->secret_len);
    v->cache = auth_cache_new();
    if (v->secret == NULL || v->cache == NULL ||
        !dup_optional(s->issuer, &v->issuer) ||
        !dup_optional(s->audience, &v->audience)) {
        auth_verifier_free(v);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(v->secret, s->secret, s->secret_len);
    v->secret_len = (int)s->secret_len;
    v->alg = alg;
    v->alg_name = canon;
    v->leeway = s->leeway_seconds;
    return v;
}

/* volatile so that the compiler cannot drop the wipe of memory about to be
 * freed. */
static void wipe(unsigned char *p, size_t n)
{
    volatile unsigned char *vp = p;
    while (n-- > 0)
        *vp++ = 0;
}

void auth_verifier_free(struct auth_verifier *v)
{
    if (v == NULL)
        return;
    if (v->secret != NULL)
        wipe(v->secret, (size_t)v->secret_len);
    free(v->secret);
    if (v->cache != NULL)
        auth_cache_wipe(v->cache);
    free(v->cache);
    free(v->issuer);
    free(v->audience);
    free(v);
}

const char *auth_scope_name(enum auth_scope scope)
{
    switch (scope) {
    case AUTH_SCOPE_READ:
        return "orders.read";
    case AUTH_SCOPE_WRITE:
        return "orders.write";
    }
    return "";
}

/* ---- the Authorization header ---------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/*
 * RFC 6750 2.1: credentials = "Bearer" 1*SP b64token, the scheme
 * case-insensitive (RFC 9110 11.1).  Leading and trailing OWS are not part
 * of a field value (RFC 9110 5.5), so a header of only whitespace is as
 * good as absent.  Any other scheme is a credential we do not accept, so
 * it is an invalid token rather than no credentials.
 */
static enum auth_result split_bearer(const char *h, const char **tok,
                                     size_t *toklen, const char **why)
{
    if (h == NULL)
        return AUTH_NO_CREDENTIALS;
    size_t b = 0, n = strlen(h);
    while (b < n && is_ows(h[b]))
        b++;
    while (n > b && is_ows(h[n - 1]))
        n--;
    if (b == n)
        return AUTH_NO_CREDENTIALS;

    static const char scheme[] = "bearer";
    size_t slen = sizeof scheme - 1;
    if (n - b <= slen || h[b + slen] != ' ') {
        *why = "not a Bearer credential";
        return AUTH_INVALID_TOKEN;
    }
    for (size_t i = 0; i < slen; i++) {
        if (ascii_lower((unsigned char)h[b + i]) != scheme[i]) {
            *why = "not a Bearer credential";
            return AUTH_INVALID_TOKEN;
        }
    }
    size_t p = b + slen;
    while (p < n && h[p] == ' ')
        p++;
    if (p == n) {
        *why = "empty bearer token";
        return AUTH_INVALID_TOKEN;
    }
    if (n - p > AUTH_TOKEN_MAX) {
        *why = "token too long";
        return AUTH_INVALID_TOKEN;
    }
    *tok = h + p;
    *toklen = n - p;
    return AUTH_OK;
}

/* ---- compact serialisation -------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* A segment is unpadded base64url (RFC 7515 2).  A length of 4k+1 cannot
 * be produced by any encoder. */
static bool segment_ok(const char *s, size_t len)
{
    if (len == 0 || len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

/* header.payload.signature, each a valid segment.  The signature must be
 * there: every algorithm we accept has one. */
static bool token_shape_ok(const char *tok, size_t len, size_t *hdr_len)
{
    const char *d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return false;
    size_t l1 = (size_t)(d1 - tok);
    const char *rest = d1 + 1;
    size_t rlen = len - l1 - 1;
    const char *d2 = memchr(rest, '.', rlen);
    if (d2 == NULL)
        return false;
    size_t l2 = (size_t)(d2 - rest);
    const char *sig = d2 + 1;
    size_t l3 = rlen - l2 - 1;
    if (!segment_ok(tok, l1) || !segment_ok(rest, l2) || !segment_ok(sig, l3))
        return false;
    *hdr_len = l1;
    return true;
}

/* Caller has checked the alphabet and length (segment_ok); out holds at
 * least len * 3 / 4 + 1 bytes.  Leftover bits of the last character are
 * ignored, as every mainstream decoder does. */
static size_t b64url_decode(const char *s, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static bool has_duplicate_member(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a != NULL; a = a->next)
        for (const cJSON *b = a->next; b != NULL; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return true;
    return false;
}

static bool member_count_ok(const cJSON *obj)
{
    int n = 0;
    for (const cJSON *a = obj->child; a != NULL; a = a->next)
        if (++n > AUTH_HEADER_MEMBERS_MAX)
            return false;
    return true;
}

/*
 * The algorithm is pinned: the header must name exactly the configured one
 * (so "none", "NONE", "hs256" and a different HS size all fail here).  A
 * "crit" member names extensions that must be understood (RFC 7515
 * 4.1.11); we understand none, so any is refused.
 */
static bool header_ok(const struct auth_verifier *v, const char *seg,
                      size_t len, const char **why)
{
    unsigned char buf[AUTH_TOKEN_MAX / 4 * 3 + 4];
    size_t n = b64url_decode(seg, len, buf);
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        *why = "malformed token header";
        return false;
    }
    cJSON *h = cJSON_ParseWithLengthOpts((const char *)buf, n + 1, NULL, 1);
    bool ok = false;
    *why = "malformed token header";
    if (h != NULL && cJSON_IsObject(h) && member_count_ok(h) &&
        !has_duplicate_member(h)) {
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
        if (!cJSON_IsString(alg) || strcmp(alg->valuestring, v->alg_name) != 0)
            *why = "token algorithm not accepted";
        else if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
            *why = "token header has critical extensions";
        else
            ok = true;
    }
    cJSON_Delete(h);
    return ok;
}

/* ---- signature --------------------------------------------------------- */

/*
 * HMAC-SHA-256/384/512 (RFC 2104, FIPS 180-4), computed here rather than by
 * libjwt.  libjwt verifies through OpenSSL, and OpenSSL 3's first use loads
 * its configuration and registers every algorithm of its default provider:
 * about 3.4 MiB of libcrypto pages resident in every worker, for three hash
 * functions of a hundred lines.  libjwt still parses the token (below), so
 * what is accepted is exactly what it accepted before; only the MAC is
 * ours, checked the way libjwt 1.10 checks it (the canonical unpadded
 * base64url of the MAC must equal the signature segment), in constant time.
 * tests/unit/test_auth.c cross-checks it against OpenSSL's HMAC.
 */
#define SHA_BLOCK_MAX 128
#define SHA_DIGEST_MAX 64

struct sha_ctx {
    uint64_t h[8];
    uint64_t bytes;                   /* message length so far */
    unsigned char buf[SHA_BLOCK_MAX]; /* partial block */
    size_t fill;
    int wide;                         /* 0: SHA-256; 1: SHA-384/512 */
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static const uint64_t sha512_k[80] = {
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
    0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
    0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
    0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
    0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
    0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
    0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
    0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
};

static uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static uint64_t ror64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static void sha256_block(uint64_t h64[8], const unsigned char *p)
{
    uint32_t w[64], h[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    for (int i = 0; i < 8; i++)
        h[i] = (uint32_t)h64[i];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha256_k[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h64[0] = (uint32_t)(h[0] + a); h64[1] = (uint32_t)(h[1] + b);
    h64[2] = (uint32_t)(h[2] + c); h64[3] = (uint32_t)(h[3] + d);
    h64[4] = (uint32_t)(h[4] + e); h64[5] = (uint32_t)(h[5] + f);
    h64[6] = (uint32_t)(h[6] + g); h64[7] = (uint32_t)(h[7] + k);
}

static void sha512_block(uint64_t h[8], const unsigned char *p)
{
    uint64_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = 0;
        for (int j = 0; j < 8; j++)
            w[i] = w[i] << 8 | p[8 * i + j];
    }
    for (int i = 16; i < 80; i++) {
        uint64_t s0 = ror64(w[i - 15], 1) ^ ror64(w[i - 15], 8) ^ (w[i - 15] >> 7);
        uint64_t s1 = ror64(w[i - 2], 19) ^ ror64(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 80; i++) {
        uint64_t t1 = k + (ror64(e, 14) ^ ror64(e, 18) ^ ror64(e, 41)) + ((e & f) ^ (~e & g)) +
                      sha512_k[i] + w[i];
        uint64_t t2 = (ror64(a, 28) ^ ror64(a, 34) ^ ror64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

/* The hash of a verifier's algorithm; block and digest sizes in bytes. */
struct sha_alg {
    int wide;
    size_t block, digest;
    uint64_t iv[8];
};

static const struct sha_alg sha256_alg = {
    0, 64, 32,
    {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
     0x5be0cd19}};
static const struct sha_alg sha384_alg = {
    1, 128, 48,
    {0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17, 0x152fecd8f70e5939,
     0x67332667ffc00b31, 0x8eb44a8768581511, 0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4}};
static const struct sha_alg sha512_alg = {
    1, 128, 64,
    {0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
     0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179}};

static void sha_init(struct sha_ctx *c, const struct sha_alg *a)
{
    memcpy(c->h, a->iv, sizeof c->h);
    c->bytes = 0;
    c->fill = 0;
    c->wide = a->wide;
}

static void sha_update(struct sha_ctx *c, const unsigned char *p, size_t n)
{
    size_t block = c->wide ? 128 : 64;
    c->bytes += n;
    while (n > 0) {
        size_t take = block - c->fill < n ? block - c->fill : n;
        memcpy(c->buf + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill == block) {
            if (c->wide)
                sha512_block(c->h, c->buf);
            else
                sha256_block(c->h, c->buf);
            c->fill = 0;
        }
    }
}

/* Padding: 0x80, zeros, then the length in bits big-endian (8 bytes for
 * SHA-256, 16 for SHA-384/512, whose high half is 0 here). */
static void sha_final(struct sha_ctx *c, const struct sha_alg *a, unsigned char *out)
{
    size_t block = a->block, lenbytes = a->wide ? 16 : 8;
    uint64_t bits = c->bytes * 8;
    unsigned char pad[SHA_BLOCK_MAX + 16] = {0x80};
    size_t padlen = (c->fill < block - lenbytes ? block : 2 * block) - c->fill - lenbytes;
    sha_update(c, pad, padlen);
    unsigned char len[16] = {0};
    for (int i = 0; i < 8; i++)
        len[lenbytes - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha_update(c, len, lenbytes);
    size_t word = a->wide ? 8 : 4;
    for (size_t i = 0; i < a->digest; i++)
        out[i] = (unsigned char)(c->h[i / word] >> (8 * (word - 1 - i % word)));
}

static const struct sha_alg *sha_of(jwt_alg_t alg)
{
    return alg == JWT_ALG_HS512 ? &sha512_alg : alg == JWT_ALG_HS384 ? &sha384_alg : &sha256_alg;
}

static void hmac_sha(const struct sha_alg *a, const unsigned char *key, size_t keylen,
                     const unsigned char *msg, size_t msglen, unsigned char *out)
{
    unsigned char k[SHA_BLOCK_MAX] = {0}, pad[SHA_BLOCK_MAX], inner[SHA_DIGEST_MAX];
    struct sha_ctx c;
    if (keylen > a->block) {
        sha_init(&c, a);
        sha_update(&c, key, keylen);
        sha_final(&c, a, k);
    } else {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < a->block; i++)
        pad[i] = k[i] ^ 0x36;
    sha_init(&c, a);
    sha_update(&c, pad, a->block);
    sha_update(&c, msg, msglen);
    sha_final(&c, a, inner);
    for (size_t i = 0; i < a->block; i++)
        pad[i] = k[i] ^ 0x5c;
    sha_init(&c, a);
    sha_update(&c, pad, a->block);
    sha_update(&c, inner, a->digest);
    sha_final(&c, a, out);
    wipe(k, sizeof k);
    wipe(pad, sizeof pad);
    wipe((unsigned char *)&c, sizeof c);
}

/* header "." payload signed with the verifier's key and algorithm: the
 * signature segment must be the unpadded base64url of the MAC, exactly. */
static bool signature_ok(const struct auth_verifier *v, const char *tok, size_t len)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *dot = memrchr(tok, '.', len);
    if (dot == NULL)
        return false;
    const struct sha_alg *a = sha_of(v->alg);
    unsigned char mac[SHA_DIGEST_MAX];
    hmac_sha(a, v->secret, (size_t)v->secret_len, (const unsigned char *)tok,
             (size_t)(dot - tok), mac);
    char want[(SHA_DIGEST_MAX + 2) / 3 * 4 + 1];
    size_t n = 0, i = 0;
    for (; i + 2 < a->digest; i += 3) {
        uint32_t w = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 | mac[i + 2];
        want[n++] = abc[w >> 18 & 63];
        want[n++] = abc[w >> 12 & 63];
        want[n++] = abc[w >> 6 & 63];
        want[n++] = abc[w & 63];
    }
    if (a->digest - i == 1) {
        want[n++] = abc[mac[i] >> 2];
        want[n++] = abc[(mac[i] & 3) << 4];
    } else if (a->digest - i == 2) {
        uint32_t w = (uint32_t)mac[i] << 8 | mac[i + 1];
        want[n++] = abc[w >> 10 & 63];
        want[n++] = abc[w >> 4 & 63];
        want[n++] = abc[(w & 15) << 2];
    }
    wipe(mac, sizeof mac);
    const char *sig = dot + 1;
    size_t siglen = len - (size_t)(sig - tok);
    if (siglen != n)
        return false;
    unsigned char diff = 0;
    for (size_t j = 0; j < n; j++)
        diff |= (unsigned char)(want[j] ^ sig[j]);
    return diff == 0;
}

/* The signature is checked here (signature_ok); libjwt, given no key,
 * decodes the header and claims exactly as it does when it verifies (the
 * same alg and typ checks, the same jansson parse) and skips only its own
 * MAC check.  header_ok has already pinned the algorithm on a header with
 * no duplicate members, so jansson reads the same alg. */
static cJSON *verified_claims(const struct auth_verifier *v, const char *tok,
                              size_t len, const char **why)
{
    if (!signature_ok(v, tok, len)) {
        *why = "bad token signature or encoding";
        return NULL;
    }
    char buf[AUTH_TOKEN_MAX + 1];
    memcpy(buf, tok, len);
    buf[len] = '\0';

    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, buf, NULL, 0);
    if (rc != 0 || jwt == NULL) {
        jwt_free(jwt);
        *why = "bad token signature or encoding";
        return NULL;
    }
    char *json = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    if (json == NULL) {
        *why = "unreadable token claims";
        return NULL;
    }
    cJSON *claims = cJSON_Parse(json);
    free(json);
    if (claims == NULL || !cJSON_IsObject(claims)) {
        cJSON_Delete(claims);
        *why = "unreadable token claims";
        return NULL;
    }
    return claims;
}

/* ---- claims ------------------------------------------------------------ */

static const cJSON *claim(const cJSON *claims, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(claims, name);
}

/* NumericDate (RFC 7519 2): any JSON number, fractions allowed.  Compared
 * as doubles so that no huge value is converted to time_t (which would be
 * undefined). */
static bool numeric_date(const cJSON *c, double *out)
{
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
        return false;
    *out = c->valuedouble;
    return true;
}

/*
 * exp is required (the contract says so; RFC 7519 leaves it optional).
 * Expired means now >= exp (RFC 7519 4.1.4: "on or after"), shifted by the
 * leeway.  nbf and iat may not lie further in the future than the leeway;
 * rejecting a future iat follows PyJWT, which minted the test vectors.
 */
static bool times_ok(const struct auth_verifier *v, const cJSON *claims,
                     time_t now, const char **why)
{
    double t, dnow = (double)now, leeway = (double)v->leeway;
    const cJSON *c = claim(claims, "exp");
    if (c == NULL) {
        *why = "token has no exp";
        return false;
    }
    if (!numeric_date(c, &t)) {
        *why = "token exp is not a number";
        return false;
    }
    if (t + leeway <= dnow) {
        *why = "token expired";
        return false;
    }
    static const char *const not_future[] = {"nbf", "iat"};
    for (size_t i = 0; i < 2; i++) {
        c = claim(claims, not_future[i]);
        if (c == NULL)
            continue;
        if (!numeric_date(c, &t)) {
            *why = "token nbf/iat is not a number";
            return false;
        }
        if (t - leeway > dnow) {
            *why = "token not yet valid";
            return false;
        }
    }
    return true;
}

static bool aud_contains(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return false;
    for (const cJSON *e = aud->child; e != NULL; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, want) == 0)
            return true;
    return false;
}

/*
 * iss must equal the configured issuer.  For aud, RFC 7519 4.1.3 says a
 * recipient that does not identify itself with a value of a present "aud"
 * MUST reject the token; with no audience configured we identify with
 * nothing, so a token carrying aud is refused (PyJWT does the same).  The
 * operator's answer is to set JWT_AUDIENCE.
 */
static bool iss_aud_ok(const struct auth_verifier *v, const cJSON *claims,
                       const char **why)
{
    if (v->issuer != NULL) {
        const cJSON *iss = claim(claims, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0) {
            *why = "token issuer not accepted";
            return false;
        }
    }
    const cJSON *aud = claim(claims, "aud");
    if (v->audience == NULL) {
        if (aud != NULL) {
            *why = "token has an audience but none is configured";
            return false;
        }
        return true;
    }
    if (!aud_contains(aud, v->audience)) {
        *why = "token audience not accepted";
        return false;
    }
    return true;
}

/* Exact, case-sensitive names; "orders.readonly" grants nothing. */
static unsigned scope_bit(const char *s, size_t len)
{
    static const char rd[] = "orders.read", wr[] = "orders.write";
    if (len == sizeof rd - 1 && memcmp(s, rd, len) == 0)
        return AUTH_SCOPE_READ;
    if (len == sizeof wr - 1 && memcmp(s, wr, len) == 0)
        return AUTH_SCOPE_WRITE;
    return 0;
}

/* RFC 6749 3.3: scope = scope-token *( SP scope-token ).  Extra spaces are
 * tolerated; they only produce empty tokens, which grant nothing. */
static unsigned scopes_in_string(const char *s)
{
    unsigned bits = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, " ");
        bits |= scope_bit(s, len);
        s += len;
        while (*s == ' ')
            s++;
    }
    return bits;
}

/* Each element is one scope name, not a space-separated list. */
static bool scopes_in_array(const cJSON *arr, unsigned *bits)
{
    for (const cJSON *e = arr->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e))
            return false;
        *bits |= scope_bit(e->valuestring, strlen(e->valuestring));
    }
    return true;
}

/*
 * The union of scope (string), scp (string or array) and scopes (array).
 * A scope claim of another type makes the token invalid rather than
 * silently scopeless: a 403 would tell the client to ask for a scope it
 * may already have, when the real fault is a malformed token.
 */
static bool scopes_ok(const cJSON *claims, unsigned *bits, const char **why)
{
    static const struct {
        const char *name;
        bool string_ok, array_ok;
    } kinds[] = {
        {"scope", true, false},
        {"scp", true, true},
        {"scopes", false, true},
    };
    *bits = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const cJSON *c = claim(claims, kinds[i].name);
        if (c == NULL)
            continue;
        if (kinds[i].string_ok && cJSON_IsString(c))
            *bits |= scopes_in_string(c->valuestring);
        else if (kinds[i].array_ok && cJSON_IsArray(c) &&
                 scopes_in_array(c, bits))
            continue;
        else {
            *why = "token scope claim has the wrong type";
            return false;
        }
    }
    return true;
}

/* Truncates on a UTF-8 character boundary so that the log and event
 * writers never see half a character.  jansson has already refused
 * invalid UTF-8 and NUL, so the string is well-formed. */
static void copy_sub(const cJSON *claims, char *dst)
{
    dst[0] = '\0';
    const cJSON *sub = claim(claims, "sub");
    if (!cJSON_IsString(sub))
        return;
    const char *s = sub->valuestring;
    size_t n = strlen(s);
    if (n > AUTH_SUB_MAX) {
        n = AUTH_SUB_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The time claims of an accepted token, for the cache.  times_ok() has
 * passed, so every one present is a finite number. */
static void cached_times_of(const cJSON *claims, struct auth_cached_times *t)
{
    memset(t, 0, sizeof *t);
    t->exp = claim(claims, "exp")->valuedouble;
    const cJSON *c = claim(claims, "nbf");
    if ((t->has_nbf = c != NULL))
        t->nbf = c->valuedouble;
    c = claim(claims, "iat");
    if ((t->has_iat = c != NULL))
        t->iat = c->valuedouble;
}

/* times_ok() for a cached token: the same comparisons in the same order,
 * on the numbers kept from its claims. */
static bool cached_times_ok(const struct auth_verifier *v,
                            const struct auth_cached_times *t, time_t now,
                            const char **why)
{
    double dnow = (double)now, leeway = (double)v->leeway;
    if (t->exp + leeway <= dnow) {
        *why = "token expired";
        return false;
    }
    if ((t->has_nbf && t->nbf - leeway > dnow) ||
        (t->has_iat && t->iat - leeway > dnow)) {
        *why = "token not yet valid";
        return false;
    }
    return true;
}

static enum auth_result check_claims(const struct auth_verifier *v,
                                     const cJSON *claims, time_t now,
                                     struct auth_principal *out,
                                     const char **why)
{
    unsigned bits;
    if (!times_ok(v, claims, now, why) || !iss_aud_ok(v, claims, why) ||
        !scopes_ok(claims, &bits, why))
        return AUTH_INVALID_TOKEN;
    out->scopes = bits;
    copy_sub(claims, out->sub);
    return AUTH_OK;
}

/* The full check: shape, pinned header, signature, every claim. */
static enum auth_result verify_full(const struct auth_verifier *v,
                                    const char *tok, size_t len, time_t now,
                                    struct auth_principal *out,
                                    struct auth_cached_times *times,
                                    const char **why)
{
    size_t hdr_len;
    if (!token_shape_ok(tok, len, &hdr_len)) {
        *why = "malformed token";
        return AUTH_INVALID_TOKEN;
    }
    if (!header_ok(v, tok, hdr_len, why))
        return AUTH_INVALID_TOKEN;
    cJSON *claims = verified_claims(v, tok, len, why);
    if (claims == NULL)
        return AUTH_INVALID_TOKEN;
    enum auth_result r = check_claims(v, claims, now, out, why);
    if (r == AUTH_OK)
        cached_times_of(claims, times);
    cJSON_Delete(claims);
    return r;
}

enum auth_result auth_verify(const struct auth_verifier *v,
                             const char *authorization, time_t now,
                             struct auth_principal *out, const char **why)
{
    const char *dummy_why;
    if (why == NULL)
        why = &dummy_why;
    *why = NULL;
    if (out == NULL || v == NULL) {
        *why = "verifier not configured";
        return AUTH_INVALID_TOKEN;
    }
    out->sub[0] = '\0';
    out->scopes = 0;

    const char *tok = NULL;
    size_t len = 0;
    enum auth_result r = split_bearer(authorization, &tok, &len, why);
    if (r == AUTH_NO_CREDENTIALS)
        *why = "no credentials";
    if (r != AUTH_OK)
        return r;

    struct auth_cache *cache = len <= AUTH_CACHE_TOKEN_MAX ? v->cache : NULL;
    uint64_t h = 0;
    if (cache != NULL) {
        h = auth_cache_hash(cache, tok, len);
        const struct auth_cache_entry *e = auth_cache_find(cache, tok, len, h);
        if (e != NULL) {
            if (!cached_times_ok(v, &e->times, now, why))
                return AUTH_INVALID_TOKEN;
            out->scopes = e->scopes;
            memcpy(out->sub, e->sub, sizeof out->sub);
            *why = "ok";
            return AUTH_OK;
        }
    }

    struct auth_cached_times times;
    r = verify_full(v, tok, len, now, out, &times, why);
    if (r != AUTH_OK) {
        out->sub[0] = '\0';
        out->scopes = 0;
        return r;
    }
    *why = "ok";
    if (cache != NULL) {
        /* The newest accepted token takes the slot. */
        struct auth_cache_entry *e = &cache->slot[h % AUTH_CACHE_SLOTS];
        e->len = len;
        e->hash = h;
        e->times = times;
        e->scopes = out->scopes;
        memcpy(e->sub, out->sub, sizeof e->sub);
        memcpy(e->token, tok, len);
    }
    return AUTH_OK;
}

/* ---- minting ----------------------------------------------------------- */

/* iss and aud come from the settings so that a token minted with the
 * service's own settings is one the service accepts. */
static bool add_claims(jwt_t *jwt, const struct auth_settings *s,
                       const char *sub, const char *scopes, time_t now,
                       long lifetime)
{
    long iat = (long)now;
    if ((lifetime > 0 && iat > LONG_MAX - lifetime) ||
        (lifetime < 0 && iat < LONG_MIN - lifetime))
        return false;
    long exp = iat + lifetime;
    if (sub != NULL && jwt_add_grant(jwt, "sub", sub) != 0)
        return false;
    if (scopes != NULL && scopes[0] != '\0' &&
        jwt_add_grant(jwt, "scope", scopes) != 0)
        return false;
    if (s->issuer != NULL && s->issuer[0] != '\0' &&
        jwt_add_grant(jwt, "iss", s->issuer) != 0)
        return false;
    if (s->audience != NULL && s->audience[0] != '\0' &&
        jwt_add_grant(jwt, "aud", s->audience) != 0)
        return false;
    return jwt_add_grant_int(jwt, "iat", iat) == 0 &&
           jwt_add_grant_int(jwt, "exp", exp) == 0;
}

char *auth_mint(const struct auth_settings *s, const char *sub,
                const char *scopes, time_t now, long lifetime_seconds)
{
    jwt_alg_t alg;
    const char *canon;
    if (settings_problem(s, &alg, &canon) != NULL)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0 || jwt == NULL)
        return NULL;
    char *token = NULL;
    if (add_claims(jwt, s, sub, scopes, now, lifetime_seconds) &&
        jwt_set_alg(jwt, alg, s->secret, (int)s->secret_len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}
