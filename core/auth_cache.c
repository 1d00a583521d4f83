/*
 * auth_cache.c - accepted tokens by their exact bytes (see auth_cache.h).
 *
 * The slot is the first byte of the token's signature: the signature of
 * an accepted token is the output of a MAC or signature over its content,
 * as evenly spread as any hash of the token would be, and it costs nothing
 * to read.  Nobody can aim a token at a slot without the signing key; a
 * client whose identity provider hands it many tokens could at worst make
 * another client's token miss, which costs that request the full check
 * the cache would have saved, nothing more.  Whether a slot holds this
 * very token is decided by comparing all its bytes in constant time
 * (CRYPTO_memcmp), so the timing of a lookup tells a client nothing about
 * another client's token.
 *
 * Bounded: AUTH_CACHE_SLOTS direct-mapped slots, allocated once (untouched
 * slots cost no resident memory), wiped when freed.  What is kept is what
 * a request already carries: the token, its sub and scope bits and its
 * time claims; the key stays in the verifier.
 */
#include "auth_cache.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define AUTH_CACHE_SLOTS 64

struct auth_cache_entry {
    size_t len; /* 0: empty */
    struct auth_times times;
    struct auth_principal principal;
    char token[AUTH_CACHE_TOKEN_MAX];
};

struct auth_cache {
    struct auth_cache_entry slot[AUTH_CACHE_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
    return calloc(1, sizeof(struct auth_cache));
}

void auth_cache_free(struct auth_cache *c)
{
    if (c == NULL)
        return;
    crypto_wipe(c, sizeof *c);
    free(c);
}

void auth_cache_clear(struct auth_cache *c)
{
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
        if (c->slot[i].len != 0)
            crypto_wipe(&c->slot[i], sizeof c->slot[i]);
}

/* The first byte of the signature segment (after the last '.'), or -1
 * when the token cannot be cached (too long, or no two characters of
 * signature to decode). */
static int slot_of(const char *tok, size_t len)
{
    if (len == 0 || len > AUTH_CACHE_TOKEN_MAX)
        return -1;
    const char *dot = memrchr(tok, '.', len);
    if (dot == NULL || (size_t)(tok + len - dot) < 3)
        return -1;
    unsigned char b[CRYPTO_B64URL_DECODED_MAX(2)];
    size_t n = 0;
    if (!crypto_b64url_decode(dot + 1, 2, b, &n) || n != 1)
        return -1;
    return b[0] % AUTH_CACHE_SLOTS;
}

bool auth_cache_lookup(const struct auth_cache *c, const char *tok, size_t len,
                       struct auth_principal *principal,
                       struct auth_times *times)
{
    int s = slot_of(tok, len);
    if (s < 0)
        return false;
    const struct auth_cache_entry *e = &c->slot[s];
    if (e->len != len || !crypto_equal(e->token, tok, len))
        return false;
    *principal = e->principal;
    *times = e->times;
    return true;
}

void auth_cache_store(struct auth_cache *c, const char *tok, size_t len,
                      const struct auth_principal *principal,
                      const struct auth_times *times)
{
    int s = slot_of(tok, len);
    if (s < 0)
        return;
    struct auth_cache_entry *e = &c->slot[s];
    e->len = len;
    memcpy(e->token, tok, len);
    e->principal = *principal;
    e->times = *times;
}
